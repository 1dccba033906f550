/*
 * queue_store.h - the queue's durable state in SQLite (STATE_DIR/queue.db,
 * WAL, synchronous=FULL): messages, their content in bounded chunks, and
 * one row per recipient with its delivery state and schedule.
 *
 * The store knows SQL and nothing of policy or IPC. Writes happen inside
 * one transaction that the caller opens and commits (group commit): a
 * message becomes visible as complete in the transaction that marks it so.
 * Functions that can fail return -1 and leave the SQLite result code in
 * queue_store_errcode(); lookups return 1 found, 0 not found, -1 error.
 * Time is always passed in (unix seconds), so tests can drive the clock.
 */
#ifndef RELAYD_QUEUE_STORE_H
#define RELAYD_QUEUE_STORE_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define QUEUE_SCHEMA_VERSION 4
#define QUEUE_QID_MAX 33
#define QUEUE_ADDR_MAX 512

/*
 * Recipient states, stored as integers (the names are what relayctl shows).
 * Macros with literal numbers rather than an enum, so that the SQL of
 * queue_store.c is written with them (RS_SQL(RS_QUEUED) is "1"): a state
 * renumbered here changes the C code and every statement together. The
 * numbers are in queue.db: changing one needs a schema version.
 */
#define RS_NEW 0      /* message still streaming in: not schedulable */
#define RS_QUEUED 1   /* due at next_attempt */
#define RS_INFLIGHT 2 /* handed to delivery */
#define RS_DEFERRED 3 /* failed temporarily, due at next_attempt */
#define RS_HOLD 4     /* the message is on hold */
#define RS_FAILED 5   /* given up: reported (and removed) when the delivery pass ends */
#define RS_RELAYED 6  /* sent to a next hop without DSN, NOTIFY=SUCCESS: reported
			 ("relayed") and removed when the delivery pass ends */
#define RS_NSTATES 7
#define RS_SQL_(v) #v
#define RS_SQL(v) RS_SQL_(v)
/* The states that wait for their next attempt, as an SQL list. */
#define RS_SQL_DUE "(" RS_SQL(RS_QUEUED) ", " RS_SQL(RS_DEFERRED) ")"
const char *queue_rstate_name(int state);

struct queue_msg {
	char qid[QUEUE_QID_MAX];
	char sender[QUEUE_ADDR_MAX];
	int64_t arrival;
	uint32_t arrival_usec;    /* the microseconds of arrival (delay=) */
	uint64_t size;
	char client[64];
	char helo[256];
	char auth_user[256];
	uint32_t body_flags;
	uint32_t nchunks;
	int complete;
	int hold;
	uint32_t dsn_ret;       /* DSN_RET_*, 0 */
	char envid[128];        /* ENVID=, decoded; "" */
	int kind;               /* QUEUE_KIND_* */
};

/* What a message is, for the reports about it. */
#define QUEUE_KIND_MAIL 0
#define QUEUE_KIND_REPORT 1        /* a report relayd made */
#define QUEUE_KIND_DOUBLE_BOUNCE 2 /* a report about a report, to the postmaster */

struct queue_rcpt {
	int64_t id;
	char qid[QUEUE_QID_MAX];
	char address[QUEUE_ADDR_MAX];
	char domain[256];
	int state;
	unsigned attempts;
	int64_t next_attempt;
	char last_error[512];
	char last_enh[16];
	char relay[256];
	int warned;
	uint32_t notify;        /* DSN_NOTIFY_*, 0 */
	char orcpt[520];        /* "type;address" decoded, "" */
	char reply[512];        /* the last remote reply itself, "" when relayd decided */
};

struct queue_store;

/* Opens (creating or upgrading the schema), NULL on error with a log line. */
struct queue_store *queue_store_open(const char *path);
void queue_store_close(struct queue_store *st);
int queue_store_errcode(const struct queue_store *st);
const char *queue_store_errmsg(const struct queue_store *st);

/* The write transaction. begin is a no-op when one is open. */
int queue_store_begin(struct queue_store *st);
int queue_store_in_txn(const struct queue_store *st);
int queue_store_commit(struct queue_store *st);
void queue_store_rollback(struct queue_store *st);

/* Start-up: deletes incomplete messages, returns in-flight recipients to
 * the queue. Counts are reported through the pointers. */
int queue_store_recover(struct queue_store *st, int64_t now, long *incomplete,
			long *inflight, long *messages);
/* In-flight recipients back to queued, due at now (delivery went away). */
int queue_store_requeue_inflight(struct queue_store *st, int64_t now, long *n);

/* Intake: an incomplete message, its recipients (RS_NEW) and chunks. */
int queue_store_msg_add(struct queue_store *st, const struct queue_msg *m);
int queue_store_rcpt_add(struct queue_store *st, const char *qid, const char *address,
			 uint32_t notify, const char *orcpt);
int queue_store_chunk_add(struct queue_store *st, const char *qid, uint32_t seq, const void *p,
			  size_t n);
/* Marks complete: size, chunk count, recipients queued and due at now. */
int queue_store_msg_complete(struct queue_store *st, const char *qid, uint64_t size,
			     uint32_t nchunks, int64_t now);
/* Removes a message with its chunks and recipients. */
int queue_store_msg_delete(struct queue_store *st, const char *qid);
/* Removes every message; *n gets the count. */
int queue_store_delete_all(struct queue_store *st, long *n);

int queue_store_msg_get(struct queue_store *st, const char *qid, struct queue_msg *m);
/* Chunk seq of a message appended to out (1), 0 when there is none. */
int queue_store_chunk_get(struct queue_store *st, const char *qid, uint32_t seq,
			  struct buf *out);

/* Scheduling: the earliest due time of a queued/deferred recipient (1), 0 if none. */
int queue_store_next_due(struct queue_store *st, int64_t *when);
/* The earliest recipient due at now (1), 0 when none is due. */
int queue_store_first_due(struct queue_store *st, int64_t now, struct queue_rcpt *r);

typedef int (*queue_rcpt_fn)(const struct queue_rcpt *r, void *arg);
typedef int (*queue_msg_fn)(const struct queue_msg *m, void *arg);
/* Recipients of qid for domain due at now; cb returning non-zero stops. */
int queue_store_due_group(struct queue_store *st, const char *qid, const char *domain,
			  int64_t now, queue_rcpt_fn cb, void *arg);
/* Every recipient of a message, in insertion order. */
int queue_store_rcpts_of(struct queue_store *st, const char *qid, queue_rcpt_fn cb, void *arg);
/* One row per destination domain of qid (id and domain set, the rest empty). */
int queue_store_domains_of(struct queue_store *st, const char *qid, queue_rcpt_fn cb, void *arg);
/* Every complete message, oldest first. */
int queue_store_messages(struct queue_store *st, queue_msg_fn cb, void *arg);

int queue_store_rcpt_get(struct queue_store *st, int64_t id, struct queue_rcpt *r);
int queue_store_rcpt_set_state(struct queue_store *st, int64_t id, int state);
/* Records an attempt's outcome; state RS_DEFERRED, RS_HOLD, RS_FAILED or
 * RS_RELAYED; reply: the remote reply itself ("" when relayd decided). */
int queue_store_rcpt_update(struct queue_store *st, int64_t id, int state, unsigned attempts,
			    int64_t next_attempt, const char *error, const char *enh,
			    const char *relay, const char *reply);
int queue_store_rcpt_delete(struct queue_store *st, int64_t id);
int queue_store_rcpts_warned(struct queue_store *st, const char *qid);
/* Recipients of qid in flight: while there are, its delivery pass goes on. */
int queue_store_inflight_of(struct queue_store *st, const char *qid, long *n);
/* Recipients of qid left, in any state. */
int queue_store_rcpt_count(struct queue_store *st, const char *qid, long *n);
/* Removes the failed and relayed recipients of qid (once their reports are queued). */
int queue_store_failed_delete(struct queue_store *st, const char *qid);

/* hold 1: message held, its waiting recipients RS_HOLD; 0: back to
 * queued/deferred. 0 when the message does not exist, 1 done. */
int queue_store_msg_hold(struct queue_store *st, const char *qid, int hold);
/* Deferred recipients (of qid, or all when NULL) due at now; *n changed. */
int queue_store_flush(struct queue_store *st, const char *qid, int64_t now, long *n);
/* Complete messages in the queue. */
int queue_store_count(struct queue_store *st, long *messages);

/* The queue's shape (relayctl queue --summary): recipients by destination
 * domain and age bucket (QUEUE_SHAPE_NBUCKETS, doubling from 5 minutes),
 * one call per non-empty cell, busiest domain first; rank is the domain's
 * place (1: busiest). Beyond the top domains, domain is NULL and rank the
 * highest among the domains folded into that cell. */
#define QUEUE_SHAPE_NBUCKETS 10
typedef void (*queue_shape_fn)(const char *domain, unsigned bucket, int64_t n,
			       int64_t rank, void *arg);
int queue_store_shape(struct queue_store *st, int64_t now, unsigned top, queue_shape_fn cb,
		      void *arg);
/* Recipients per state (RS_NEW not counted) and the oldest complete
 * message's arrival (0: the queue is empty). */
int queue_store_gauges(struct queue_store *st, int64_t counts[RS_NSTATES], int64_t *oldest);
/*
 * Transcripts of delivery attempts (relayctl trace): one per destination
 * domain of a message, replaced by each attempt's; the newest are kept
 * while they fit in QUEUE_TRACE_MAX bytes per message. They go with the
 * message.
 */
#define QUEUE_TRACE_MAX 8192
int queue_store_trace_put(struct queue_store *st, const char *qid, const char *domain,
			  int64_t now, const char *text);
typedef int (*queue_trace_fn)(const char *domain, int64_t time, const char *text, void *arg);
/* Oldest first; cb returning non-zero stops. */
int queue_store_traces_of(struct queue_store *st, const char *qid, queue_trace_fn cb, void *arg);

/* The domain part of an address, lower-cased ("" when there is none). */
void queue_addr_domain(const char *address, char *dst, size_t dstsz);

#endif
