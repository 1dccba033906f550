/*
 * dlv_rate.h - the outbound rate limit of one destination (rate= of a
 * route, sender-route or the smarthosts; destination-rate for each MX
 * destination domain): messages start at least period/N apart, as
 * Postfix's destination_rate_delay spaces them; no burst is saved up.
 *
 * The limiter lives in delivery, next to the concurrency limits: only
 * delivery knows which destination a job goes to (dlv_nexthop.c); the
 * queue only knows what is due.
 *
 * Where a message waits: a short wait (DLV_RATE_KEEP_MS) in delivery's
 * memory, on its destination's list; a longer one back in the queue,
 * deferred without an attempt (as for a dead next hop) until a moment
 * promised to it alone. Kept in delivery, every message above the rate
 * would hold one of the queue's job credits and starve the other
 * destinations; sent back all to the same moment, they would come back
 * together and be turned away again each time. So each gets its own slot,
 * one spacing after the last one promised.
 *
 * Every time is ev_now() milliseconds, passed in, so unit tests drive it.
 */
#ifndef RELAYD_DLV_RATE_H
#define RELAYD_DLV_RATE_H

#include "common/config.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Longest wait spent in delivery's memory: covers the queue's whole
 * seconds, so a message that comes back at its slot does not go back again.
 */
#define DLV_RATE_KEEP_MS 2000
/* Messages of one destination kept in memory for its rate, at most. */
#define DLV_RATE_KEEP_MAX 32

struct dlv_rate {
	uint64_t next;   /* the earliest the next message may start; 0: at once */
	uint64_t booked; /* the first moment not promised to a message in the queue */
};

/* The spacing of rate r in ms (0 when r is no limit). */
uint64_t dlv_rate_interval(const struct cfg_rate *r);
/* ms until a message may start (0: now). */
uint64_t dlv_rate_wait(const struct dlv_rate *rs, uint64_t now);
/* A message starts now (dlv_rate_wait said 0): the next waits one spacing. */
void dlv_rate_take(struct dlv_rate *rs, uint64_t interval, uint64_t now);
/*
 * A message arrives behind nahead others kept in memory: 1 when it is to
 * be kept too (it starts within DLV_RATE_KEEP_MS); else 0, and *slot is
 * the moment promised to it, from which the next promise is one spacing on.
 */
int dlv_rate_admit(struct dlv_rate *rs, uint64_t interval, uint64_t now, size_t nahead,
		   uint64_t *slot);
/* The promised moments are void (relayctl flush brought their mail back). */
void dlv_rate_unbook(struct dlv_rate *rs);
/* 1 while the state still limits something at now (else it may be forgotten). */
int dlv_rate_live(const struct dlv_rate *rs, uint64_t now);

#endif
