/*
 * queue_sched.h - the queue's policy on top of the store: which recipients
 * form the next delivery job, what a delivery result does to a recipient
 * (done, retry with backoff, give up), when the failures of a delivery
 * pass go back to the sender in one report, and when a message is
 * finished. Everything runs inside the caller's open transaction with the
 * time passed in, so unit tests drive it with their own clock.
 */
#ifndef RELAYD_QUEUE_SCHED_H
#define RELAYD_QUEUE_SCHED_H

#include "queue/queue_store.h"

#include <stddef.h>
#include <stdint.h>

/* Recipients in one job: keeps a MSG_D_JOB frame well under IPC_MAX_FRAME. */
#define QUEUE_JOB_MAX_RCPTS 100
/* Bytes of the original header section quoted in a report. */
#define QUEUE_DSN_MAX_HEADERS (64 * 1024)

struct queue_policy {
	unsigned retry_min, retry_max; /* seconds */
	unsigned lifetime;             /* queue-lifetime */
	unsigned delay_warning;        /* 0: no delay notices */
	unsigned jitter_pct;           /* retries come up to this much earlier (0: exact) */
	const char *hostname;
};

/* Upper bounds (seconds) of the arrival-to-final-outcome histogram. */
#define QUEUE_LATENCY_BOUNDS {1, 5, 30, 60, 300, 900, 3600, 14400, 86400, 432000}
#define QUEUE_LATENCY_NBUCKETS 10

struct queue_counters {
	uint64_t delivered, deferred, bounced;
	/* recipients that reached a final outcome (sent or bounced), by delay:
	 * latency[i] counts those at most bound i (not cumulative) */
	uint64_t latency[QUEUE_LATENCY_NBUCKETS + 1];
	uint64_t latency_sum;          /* seconds */
};

struct queue_result {
	int64_t rcptid;
	uint32_t dclass; /* enum dlv_class */
	uint32_t code;
	const char *enh, *text, *relay;
	/* DLV_DEFERRED without an attempt (the next hop is remembered as
	 * dead): due again at this time (unix seconds); 0 for a real attempt. */
	int64_t suspended_until;
};

struct queue_pick {
	struct queue_msg msg;
	char domain[256];
	size_t n;
	struct {
		int64_t id;
		char address[QUEUE_ADDR_MAX];
	} rcpts[QUEUE_JOB_MAX_RCPTS];
};

/* The delay after the n-th consecutive failure (n >= 1): min doubling, capped at max. */
unsigned queue_backoff(unsigned failures, unsigned min, unsigned max);
/* The delay less a random part of up to pct percent, so that mail deferred
 * together (a dead host) does not come back all in the same second. */
unsigned queue_jitter(unsigned delay, unsigned pct);


/*
 * The next job: the earliest due recipient and every other due recipient
 * of the same message and domain, marked in flight. 1 picked, 0 nothing due.
 */
int queue_sched_pick(struct queue_store *st, int64_t now, struct queue_pick *p);

/* Applies one delivery result (recipient must be in flight; a stale one
 * is ignored with 0) and settles the message. */
int queue_result_apply(struct queue_store *st, const struct queue_policy *pol,
		       const struct queue_result *res, int64_t now, struct queue_counters *cnt);

/* When a delivery pass of qid ends (no recipient in flight): one report
 * for the recipients that failed in it (none if the sender is <>), which
 * are then removed; the message goes when no recipient is left. */
int queue_msg_settle(struct queue_store *st, const struct queue_policy *pol, const char *qid,
		     int64_t now);

/* The header section of a message (at most QUEUE_DSN_MAX_HEADERS), appended to out. */
void queue_msg_headers(struct queue_store *st, const struct queue_msg *m, struct buf *out);

/* Enqueues a report about rcpts of orig as a new complete message; its qid in newqid. */
int queue_dsn_enqueue(struct queue_store *st, const struct queue_policy *pol,
		      const struct queue_msg *orig, int action, const struct queue_rcpt *rcpts,
		      size_t n, int64_t now, char newqid[QUEUE_QID_MAX]);

#endif
