/*
 * intake_rdns.h - the client's verified name for intake: one lookup
 * (resolver/rdns.c) per client address at a time, whatever the number of
 * its connections, with a time budget; the answers kept in a cache that
 * is bounded in size and in age.
 */
#ifndef RELAYD_INTAKE_RDNS_H
#define RELAYD_INTAKE_RDNS_H

#include "common/event.h"
#include "resolver/resolver.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A session waiting for the name of its client; embedded in the session. */
struct intake_rdns_wait {
	struct intake_rdns_wait *next, **prevp; /* prevp NULL: not waiting */
	void (*cb)(struct intake_rdns_wait *w, enum rdns_result res, const char *name);
};

/* ---- the cache, without I/O (the unit tests drive it with their own clock) ---- */

struct rdns_key {
	int family;
	unsigned char addr[16];
};

struct rdns_entry {
	struct rdns_key key;
	int answered;                  /* res and name are set */
	int inflight;                  /* a lookup runs: the entry cannot go */
	enum rdns_result res;
	char name[256];
	uint64_t expires;              /* ms, for an answered entry */
	struct intake_rdns_wait *waiters;
	struct intake_rdns *ir;        /* intake's, for its lookup */
	struct ev_timer budget;        /* intake's deadline for the first answer */
	struct rdns_entry *hnext;      /* hash chain */
	struct rdns_entry *older, *newer; /* use order, for eviction */
};

struct rdns_cache;
struct intake_rdns;

/* A cache of at most max entries. */
struct rdns_cache *rdns_cache_new(size_t max);
void rdns_cache_free(struct rdns_cache *c);
/* The key of an address (an IPv4-mapped one as IPv4); -1 for other families. */
int rdns_key_of(const struct sockaddr *sa, struct rdns_key *k);
/* The entry of k, now in use; an answered one past its age is dropped first. */
struct rdns_entry *rdns_cache_find(struct rdns_cache *c, const struct rdns_key *k, uint64_t now);
/*
 * A new entry for k (not answered, in flight), making room by dropping
 * the least recently used entries not in flight; NULL when every entry
 * is in flight.
 */
struct rdns_entry *rdns_cache_add(struct rdns_cache *c, const struct rdns_key *k);
/* The answer: kept ttl ms from now; the waiters are told (in order). */
void rdns_cache_answer(struct rdns_entry *e, enum rdns_result res, const char *name,
		       uint64_t now, uint64_t ttl);
size_t rdns_cache_count(const struct rdns_cache *c);
/* Drops every entry not in flight. */
void rdns_cache_clear(struct rdns_cache *c);

/* ---- intake's use of it ---- */

/* NULL when c-ares cannot start (then every client is unknown). */
struct intake_rdns *intake_rdns_new(struct ev_loop *loop, const struct config *cfg);
/* New DNS servers after a reload; answers from the old ones are forgotten. */
void intake_rdns_reload(struct intake_rdns *ir, const struct config *cfg);
/* Waiters are dropped unanswered: call when no session is left. */
void intake_rdns_free(struct intake_rdns *ir);
/*
 * w's cb is called once with the client's name: at once from the cache,
 * or when the lookup ends or its budget does. ir NULL: RDNS_TEMPFAIL now.
 */
void intake_rdns_lookup(struct intake_rdns *ir, const struct sockaddr *sa,
			struct intake_rdns_wait *w);
/* w is no longer waiting (its session goes). */
void intake_rdns_cancel(struct intake_rdns_wait *w);

#endif
