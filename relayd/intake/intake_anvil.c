/*
 * intake_anvil.c - the failed-AUTH table of intake (see intake_anvil.h): a
 * hash of addresses (seeded at random, so that no client can choose
 * colliding addresses) and a list in the order the windows started, which
 * is the order entries were made: expiry and eviction both take the head.
 */
#include "intake_anvil.h"
#include "common/xmalloc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ANVIL_KEY_LEN 17 /* family, then 4 (IPv4) or 8 (IPv6 /64) octets */

struct anvil_entry {
	struct anvil_entry *hnext;         /* same bucket */
	struct anvil_entry *older, *newer; /* by window start */
	uint8_t key[ANVIL_KEY_LEN];
	uint64_t start_ms;
	unsigned fails;
};

struct intake_anvil {
	struct anvil_entry **buckets;
	size_t nbuckets; /* a power of two, at least 2 * max */
	size_t n, max;
	struct anvil_entry *oldest, *newest;
	uint64_t seed;
};

struct intake_anvil *intake_anvil_new(size_t max)
{
	struct intake_anvil *a = xcalloc(1, sizeof(*a));

	a->max = max ? max : 1;
	a->nbuckets = 16;
	while (a->nbuckets < 2 * a->max)
		a->nbuckets *= 2;
	a->buckets = xcalloc(a->nbuckets, sizeof(*a->buckets));
	/* Without randomness the table still works; only collisions get easier. */
	if (getrandom(&a->seed, sizeof(a->seed), GRND_NONBLOCK) != sizeof(a->seed))
		a->seed = (uint64_t)(uintptr_t)a;
	return a;
}

void intake_anvil_free(struct intake_anvil *a)
{
	if (a == NULL)
		return;
	while (a->oldest != NULL) {
		struct anvil_entry *e = a->oldest;
		a->oldest = e->newer;
		free(e);
	}
	free(a->buckets);
	free(a);
}

size_t intake_anvil_size(const struct intake_anvil *a)
{
	return a->n;
}

/* IPv4-mapped IPv6 counts as the IPv4 address it is. */
static void anvil_key(const struct sockaddr *sa, uint8_t key[ANVIL_KEY_LEN])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(key, 0, ANVIL_KEY_LEN);
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
			key[0] = 4;
			memcpy(key + 1, a6 + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a6, 8);
		}
	} else {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

/* FNV-1a over the seed and the key. */
static size_t anvil_bucket(const struct intake_anvil *a, const uint8_t *key)
{
	uint64_t h = 0xcbf29ce484222325ull ^ a->seed;
	for (size_t i = 0; i < ANVIL_KEY_LEN; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29;
	return (size_t)h & (a->nbuckets - 1);
}

static struct anvil_entry *anvil_find(const struct intake_anvil *a, const uint8_t *key)
{
	for (struct anvil_entry *e = a->buckets[anvil_bucket(a, key)]; e != NULL; e = e->hnext)
		if (memcmp(e->key, key, ANVIL_KEY_LEN) == 0)
			return e;
	return NULL;
}

static void anvil_remove(struct intake_anvil *a, struct anvil_entry *e)
{
	struct anvil_entry **pp = &a->buckets[anvil_bucket(a, e->key)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		a->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		a->newest = e->older;
	a->n--;
	free(e);
}

/* Forgets every address whose window has ended. */
static void anvil_expire(struct intake_anvil *a, uint64_t now_ms, unsigned window_s)
{
	uint64_t window_ms = (uint64_t)window_s * 1000;
	while (a->oldest != NULL && now_ms - a->oldest->start_ms >= window_ms)
		anvil_remove(a, a->oldest);
}

/* The entry of sa's address (key filled in), after forgetting ended windows. */
static struct anvil_entry *anvil_lookup(struct intake_anvil *a, const struct sockaddr *sa,
					uint64_t now_ms, unsigned window_s,
					uint8_t key[ANVIL_KEY_LEN])
{
	anvil_expire(a, now_ms, window_s);
	anvil_key(sa, key);
	return anvil_find(a, key);
}

int intake_anvil_blocked(struct intake_anvil *a, const struct sockaddr *sa, uint64_t now_ms,
			 unsigned limit, unsigned window_s, unsigned *retry_s)
{
	uint8_t key[ANVIL_KEY_LEN];

	if (limit == 0)
		return 0;
	struct anvil_entry *e = anvil_lookup(a, sa, now_ms, window_s, key);
	if (e == NULL || e->fails < limit)
		return 0;
	if (retry_s != NULL)
		*retry_s = (unsigned)((e->start_ms + (uint64_t)window_s * 1000 - now_ms + 999) / 1000);
	return 1;
}

int intake_anvil_fail(struct intake_anvil *a, const struct sockaddr *sa, uint64_t now_ms,
		      unsigned limit, unsigned window_s)
{
	uint8_t key[ANVIL_KEY_LEN];

	if (limit == 0)
		return 0;
	struct anvil_entry *e = anvil_lookup(a, sa, now_ms, window_s, key);
	if (e == NULL) {
		if (a->n == a->max)
			anvil_remove(a, a->oldest);
		e = xcalloc(1, sizeof(*e));
		memcpy(e->key, key, ANVIL_KEY_LEN);
		e->start_ms = now_ms;
		size_t b = anvil_bucket(a, key);
		e->hnext = a->buckets[b];
		a->buckets[b] = e;
		e->older = a->newest;
		if (a->newest)
			a->newest->newer = e;
		else
			a->oldest = e;
		a->newest = e;
		a->n++;
	}
	e->fails++;
	return e->fails == limit;
}
