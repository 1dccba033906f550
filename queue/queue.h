/*
 * queue.h - the queue worker's own state, shared by its files: queue.c
 * (entry point, peers on queue.sock, the write transaction and group
 * commit, the scheduler's timers), queue_intake.c (SMTP transactions
 * streaming in), queue_dlv.c (jobs, content, results) and queue_ctl.c
 * (relayctl commands).
 */
#ifndef RELAYD_QUEUE_H
#define RELAYD_QUEUE_H

#include "queue/queue_sched.h"
#include "queue/queue_store.h"
#include "common/buf.h"
#include "common/event.h"
#include "common/idmap.h"
#include "common/ipc.h"

#include <stdint.h>

struct worker;
struct queue;

/* One SMTP transaction of an intake peer. */
struct queue_sess {
	struct queue_sess *wnext;     /* in q->waiting, once END arrived */
	struct queue_peer *peer;      /* NULL once the peer went away */
	uint64_t sid;
	struct queue_msg msg;         /* envelope, for the log line */
	unsigned nrcpt;
	uint32_t nchunks;
	uint64_t bytes;
	struct buf pending;           /* content not yet a whole chunk */
	uint64_t gen;                 /* transaction of its last write */
	unsigned owns_row : 1;        /* its messages row was inserted */
	unsigned ended : 1;           /* END seen: waits for the commit */
	unsigned failed : 1;          /* FAILED sent: ignore until END/ABORT */
};

/* A delivery job: recipients of one message and domain, handed out. */
struct queue_job {
	uint64_t jobid;
	char qid[QUEUE_QID_MAX];
	char domain[256];         /* the recipients' domain: its transcript's key */
	uint32_t nchunks;
	size_t n;
	int64_t rcptid[QUEUE_JOB_MAX_RCPTS];
	uint8_t resolved[QUEUE_JOB_MAX_RCPTS];
	char *trace;              /* its transcript, until a result needs it stored */
	int failed;               /* a result other than "sent" came */
};

struct queue_peer {
	struct queue_peer *next;
	struct queue *q;
	struct ipc_chan *ch;
	int role;                     /* 0 until HELLO, then enum ipc_role */
	struct idmap sess;            /* its SMTP transactions by session id */
};

struct queue {
	struct worker *w;
	struct queue_store *st;
	struct queue_policy pol;
	struct queue_counters cnt;
	int64_t (*now)(void);         /* wall clock; tests may replace it */
	int listen_fd;
	struct queue_peer *peers;
	struct queue_peer *dlv;       /* the delivery worker, when connected */
	uint32_t credits;             /* jobs delivery asked for and did not get */
	struct idmap jobs;            /* jobs handed out, by job id */
	uint64_t next_jobid;
	uint64_t gen;                 /* number of the open (or last) transaction */
	int want_commit;              /* something in the transaction needs to be durable */
	struct queue_sess *waiting;   /* sessions whose END is in the transaction, */
	struct queue_sess **waiting_tail; /* in arrival order */
	struct ev_timer kick;         /* 0 ms: commit, then schedule */
	struct ev_timer wake;         /* the earliest next attempt */
	struct ev_timer txn_timer;    /* commits a transaction nothing else commits */
	int64_t trouble_until;        /* after a lost transaction: no jobs before then */
	int64_t trouble_logged;       /* when "rolled back" was last logged */
	unsigned long trouble_quiet;  /* rollbacks not logged since */
};

/* queue.c */
int queue_txn(struct queue *q);
/* A store call failed: roll back, fail what the transaction held. */
void queue_txn_abort(struct queue *q);
/* Commits now, replying to the sessions in the transaction. 0 ok, -1 failed. */
int queue_commit(struct queue *q);
/* Commit and schedule at the end of this loop iteration. */
void queue_kick(struct queue *q);
void queue_policy_load(struct queue *q);

/* queue_intake.c: the handlers take a struct queue_peer (queue.c's table) */
int queue_in_begin(void *peer, struct ipc_rd *rd);
int queue_in_rcpt(void *peer, struct ipc_rd *rd);
int queue_in_content(void *peer, struct ipc_rd *rd);
int queue_in_end(void *peer, struct ipc_rd *rd);
int queue_in_abort(void *peer, struct ipc_rd *rd);
void queue_in_gone(struct queue_peer *p);
/* After a commit: COMMITTED (ok) or FAILED (rc: SQLite code) to the waiting sessions. */
void queue_in_committed(struct queue *q);
void queue_in_rolled_back(struct queue *q, int rc);

/* queue_dlv.c: likewise */
int queue_dlv_ready(void *peer, struct ipc_rd *rd);
int queue_dlv_chunk_req(void *peer, struct ipc_rd *rd);
int queue_dlv_result(void *peer, struct ipc_rd *rd);
int queue_dlv_done(void *peer, struct ipc_rd *rd);
/* Deferred without a connection: the job's recipients wait for the hop's memory to end. */
int queue_dlv_suspended(void *peer, struct ipc_rd *rd);
int queue_dlv_trace(void *peer, struct ipc_rd *rd);
/* relayctl flush: delivery forgets the failed next hops of qid (all when NULL). */
int queue_dlv_flush(struct queue *q, const char *qid);
void queue_dlv_gone(struct queue *q);
/* Hands out jobs while delivery has credit. */
void queue_dlv_schedule(struct queue *q);
/* In-flight state on disk back in line with the jobs in memory. */
void queue_dlv_resync(struct queue *q);

/* queue_ctl.c */
void queue_ctl(struct worker *w, uint32_t reqid, int argc, char **argv);

/* The role's entry point (see common/worker.h). */
void queue_main(struct worker *w);

#endif
