/*
 * intake_rdns.c - the verified names of intake's clients: a cache of
 * answers by address (a hash for finding, a use-ordered list for
 * eviction), one lookup in flight per address with every session that
 * wants it waiting on its entry, and a budget after which the waiting
 * sessions go on without a name.
 *
 * Why a budget and not the banner: Postfix looks the name up before its
 * greeting; here the lookup starts at connect and runs while the greeting,
 * EHLO and STARTTLS go back and forth, and only MAIL waits for it (see
 * smtp_session.c), at most what is left of INTAKE_RDNS_BUDGET_MS. A
 * client never waits for a DNS server that answers, and a dead one costs
 * at most that budget per address and cache age.
 */
#include "intake_rdns.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From connect to giving up on the name (the 5 s). */
#define INTAKE_RDNS_BUDGET_MS 5000
/* Entries kept; more distinct clients than this push the oldest out. */
#define INTAKE_RDNS_MAX 4096
/* Ages: an answer for 10 minutes, not knowing (DNS trouble) for 1. */
#define INTAKE_RDNS_TTL_MS (10u * 60 * 1000)
#define INTAKE_RDNS_TEMP_TTL_MS (60u * 1000)

struct rdns_cache {
	struct rdns_entry **buckets;
	size_t nbuckets;              /* a power of two */
	size_t n, max;
	struct rdns_entry *oldest, *newest;
};

struct intake_rdns {
	struct ev_loop *loop;
	struct resolver *res;
	struct rdns_cache *cache;
};

/* ---- the cache ---- */

struct rdns_cache *rdns_cache_new(size_t max)
{
	struct rdns_cache *c = xcalloc(1, sizeof(*c));

	c->max = max > 0 ? max : 1;
	c->nbuckets = 16;
	while (c->nbuckets < c->max)
		c->nbuckets *= 2;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

int rdns_key_of(const struct sockaddr *sa, struct rdns_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->family = AF_INET;
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		k->family = AF_INET;
		memcpy(k->addr, &a6->s6_addr[12], 4);
	} else {
		k->family = AF_INET6;
		memcpy(k->addr, a6, 16);
	}
	return 0;
}

/* FNV-1a over the key. */
static size_t rdns_hash(const struct rdns_cache *c, const struct rdns_key *k)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)k->family;

	for (size_t i = 0; i < sizeof(k->addr); i++)
		h = (h ^ k->addr[i]) * 1099511628211ull;
	return (size_t)(h & (c->nbuckets - 1));
}

static void rdns_lru_unlink(struct rdns_cache *c, struct rdns_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	e->older = e->newer = NULL;
}

static void rdns_lru_push(struct rdns_cache *c, struct rdns_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

/* Only an entry nobody waits on and no lookup will answer. */
static void rdns_entry_drop(struct rdns_cache *c, struct rdns_entry *e)
{
	struct rdns_entry **pp = &c->buckets[rdns_hash(c, &e->key)];

	if (e->inflight || e->waiters != NULL)
		fatal("intake: dropping a client name entry still in use");
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	rdns_lru_unlink(c, e);
	c->n--;
	free(e);
}

struct rdns_entry *rdns_cache_find(struct rdns_cache *c, const struct rdns_key *k, uint64_t now)
{
	struct rdns_entry *e = c->buckets[rdns_hash(c, k)];

	while (e != NULL && memcmp(&e->key, k, sizeof(*k)) != 0)
		e = e->hnext;
	if (e == NULL)
		return NULL;
	if (e->answered && !e->inflight && now >= e->expires) {
		rdns_entry_drop(c, e);
		return NULL;
	}
	rdns_lru_unlink(c, e);
	rdns_lru_push(c, e);
	return e;
}

struct rdns_entry *rdns_cache_add(struct rdns_cache *c, const struct rdns_key *k)
{
	/* Room: the least recently used entries that can go, go. */
	for (struct rdns_entry *e = c->oldest; c->n >= c->max && e != NULL;) {
		struct rdns_entry *next = e->newer;
		if (!e->inflight)
			rdns_entry_drop(c, e);
		e = next;
	}
	if (c->n >= c->max)
		return NULL;
	struct rdns_entry *e = xcalloc(1, sizeof(*e));
	size_t b = rdns_hash(c, k);
	e->key = *k;
	e->inflight = 1;
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	rdns_lru_push(c, e);
	c->n++;
	return e;
}

void rdns_cache_answer(struct rdns_entry *e, enum rdns_result res, const char *name,
		       uint64_t now, uint64_t ttl)
{
	e->answered = 1;
	e->res = res;
	snprintf(e->name, sizeof(e->name), "%s", res == RDNS_VERIFIED ? name : "");
	e->expires = now + ttl;
	/* Each waiter leaves the list before its callback, which may end its session. */
	while (e->waiters != NULL) {
		struct intake_rdns_wait *w = e->waiters;
		intake_rdns_cancel(w);
		w->cb(w, e->res, e->name);
	}
}

size_t rdns_cache_count(const struct rdns_cache *c)
{
	return c->n;
}

void rdns_cache_clear(struct rdns_cache *c)
{
	for (struct rdns_entry *e = c->oldest; e != NULL;) {
		struct rdns_entry *next = e->newer;
		if (!e->inflight && e->waiters == NULL)
			rdns_entry_drop(c, e);
		e = next;
	}
}

void rdns_cache_free(struct rdns_cache *c)
{
	if (c == NULL)
		return;
	while (c->oldest != NULL) {
		struct rdns_entry *e = c->oldest;
		rdns_lru_unlink(c, e);
		free(e);
	}
	free(c->buckets);
	free(c);
}

/* ---- waiting ---- */

static void rdns_wait_on(struct rdns_entry *e, struct intake_rdns_wait *w)
{
	/* At the tail: waiters are answered in the order they came. */
	struct intake_rdns_wait **pp = &e->waiters;
	while (*pp != NULL)
		pp = &(*pp)->next;
	w->next = NULL;
	w->prevp = pp;
	*pp = w;
}

void intake_rdns_cancel(struct intake_rdns_wait *w)
{
	if (w->prevp == NULL)
		return;
	*w->prevp = w->next;
	if (w->next != NULL)
		w->next->prevp = w->prevp;
	w->next = NULL;
	w->prevp = NULL;
}

/* ---- intake's lookups ---- */

static uint64_t rdns_ttl(enum rdns_result res)
{
	return res == RDNS_TEMPFAIL ? INTAKE_RDNS_TEMP_TTL_MS : INTAKE_RDNS_TTL_MS;
}

/* The budget ran out: the waiters go on without a name; the lookup goes on for the cache. */
static void intake_rdns_budget(void *arg)
{
	struct rdns_entry *e = arg;

	rdns_cache_answer(e, RDNS_TEMPFAIL, "", ev_now(e->ir->loop), INTAKE_RDNS_TEMP_TTL_MS);
}

static void intake_rdns_answer(enum rdns_result res, const char *name, void *arg)
{
	struct rdns_entry *e = arg;

	ev_timer_stop(e->ir->loop, &e->budget);
	e->inflight = 0;
	rdns_cache_answer(e, res, name, ev_now(e->ir->loop), rdns_ttl(res));
}

void intake_rdns_lookup(struct intake_rdns *ir, const struct sockaddr *sa,
			struct intake_rdns_wait *w)
{
	struct rdns_key k;
	struct rdns_entry *e;

	w->next = NULL;
	w->prevp = NULL;
	if (ir == NULL || rdns_key_of(sa, &k) < 0) {
		w->cb(w, RDNS_TEMPFAIL, "");
		return;
	}
	e = rdns_cache_find(ir->cache, &k, ev_now(ir->loop));
	if (e != NULL && e->answered) {
		w->cb(w, e->res, e->name);
		return;
	}
	if (e != NULL) {
		rdns_wait_on(e, w);
		return;
	}
	e = rdns_cache_add(ir->cache, &k);
	if (e == NULL) {
		/* Every entry is a lookup in flight: this client goes without. */
		w->cb(w, RDNS_TEMPFAIL, "");
		return;
	}
	e->ir = ir;
	rdns_wait_on(e, w);
	ev_timer_init(&e->budget, intake_rdns_budget, e);
	ev_timer_start(ir->loop, &e->budget, INTAKE_RDNS_BUDGET_MS);
	/* May answer at once (and call w back) before returning. */
	rdns_verify(ir->res, sa, intake_rdns_answer, e);
}

struct intake_rdns *intake_rdns_new(struct ev_loop *loop, const struct config *cfg)
{
	char err[256];
	struct resolver *res = resolver_new(loop, cfg, err, sizeof(err));

	if (res == NULL) {
		log_warnx("intake: no client name lookups: %s", err);
		return NULL;
	}
	struct intake_rdns *ir = xcalloc(1, sizeof(*ir));
	ir->loop = loop;
	ir->res = res;
	ir->cache = rdns_cache_new(INTAKE_RDNS_MAX);
	return ir;
}

void intake_rdns_reload(struct intake_rdns *ir, const struct config *cfg)
{
	char err[256];

	if (ir == NULL)
		return;
	if (resolver_reload(ir->res, cfg, err, sizeof(err)) < 0)
		log_warnx("intake: client name lookups keep the old DNS servers: %s", err);
	rdns_cache_clear(ir->cache);
}

void intake_rdns_free(struct intake_rdns *ir)
{
	if (ir == NULL)
		return;
	/* Lookups in flight end now (RDNS_TEMPFAIL), their entries with them. */
	resolver_free(ir->res);
	rdns_cache_free(ir->cache);
	free(ir);
}
