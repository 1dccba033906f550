/*
 * dlv.h - the delivery worker's own state, shared by its files: jobs from
 * the queue (dlv_main.c), the destinations that group and limit them, the
 * SMTP client sessions that carry them out (dlv_session.c finds a server,
 * dlv_txn.c runs the transactions), and relayctl's route and stats answers
 * (dlv_ctl.c).
 *
 * A job belongs to exactly one place at a time: its destination's waiting
 * list, or the session delivering it. Every recipient of a job gets exactly
 * one outcome (dlv_rcpt_outcome) before the job ends (dlv_job_finish).
 */
#ifndef RELAYD_DLV_H
#define RELAYD_DLV_H

#include "common/event.h"
#include "common/idmap.h"
#include "common/ipc_types.h"
#include "common/queue_client.h"
#include "common/worker.h"
#include "relayd/delivery/dlv_dkim.h"
#include "relayd/delivery/dlv_nexthop.h"
#include "relayd/delivery/dlv_rate.h"
#include "relayd/delivery/dlv_trace.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct dlv_session;
struct dlv_dest;

/* How long a next hop whose every address failed is left alone (at most retry-min). */
#define DLV_DEST_HOLD_MS (60 * 1000)
/*
 * Destinations whose rate memory is kept, at most: a message for one more
 * waits in the queue until one of them is forgotten, rather than go
 * unlimited.
 */
#define DLV_RATE_MAX_DESTS 4096
/* What the queue keeps of a result's text and relay (queue_dlv.c). */
#define DLV_RESULT_TEXT_MAX 1000
#define DLV_RESULT_RELAY_MAX 300

struct dlv_rcpt {
	uint64_t id;
	char *addr;
	unsigned notify; /* DSN_NOTIFY_*, 0 */
	char *orcpt;   /* decoded "type;address", NULL when none */
	int done;      /* its outcome was reported */
	int accepted;  /* RCPT accepted: waits for the end of DATA */
};

struct dlv_job {
	uint64_t id;
	char qid[64];
	char *sender;
	char domain[256];
	uint64_t size;
	uint32_t body;            /* BODY_* */
	int64_t arrival;          /* unix seconds */
	uint32_t arrival_usec;    /* and microseconds */
	unsigned dsn_ret;         /* DSN_RET_*, 0 */
	char *envid;              /* decoded ENVID=, NULL when none */
	struct dlv_rcpt *rcpts;
	size_t nrcpts;
	struct dlv_dest *dest;
	struct dlv_session *sess; /* NULL while it waits */
	uint32_t chunk_seq;       /* the next piece of content to ask for */
	int chunk_pending;        /* a request is out */
	uint64_t rate_slot;       /* ev_now() when its rate let it start; 0: no rate */
	struct dlv_trace trace;   /* relayctl trace: the dialogue of its attempts */
	TAILQ_ENTRY(dlv_job) wait_entry;
};

TAILQ_HEAD(dlv_job_list, dlv_job);

struct dlv_dest {
	char key[300];            /* dlv_dest_key() */
	struct dlv_job_list waiting;
	size_t nwaiting;
	unsigned nsessions;
	uint64_t hold_until;      /* ev_now() ms: recently failed, do not connect; 0 none */
	char hold_text[1600];     /* the failure its jobs are deferred with */
	char hold_enh[16];
	uint64_t rate_interval;   /* ms between two messages; 0: no rate limit */
	struct dlv_rate rate;
	char rate_desc[320];      /* dlv_hop.rate_desc, for the log lines */
	int rated;                /* counted in dlv_ctx.nrated */
	LIST_ENTRY(dlv_dest) entry;
};

LIST_HEAD(dlv_dest_list, dlv_dest);

/* Next hops with a label of their own in the metrics. */
#define DLV_METRIC_HOPS 20

struct dlv_stats {
	uint64_t connections_out;   /* TCP connections made */
	uint64_t connect_failures;  /* refused, timed out, unreachable */
	uint64_t tls_out;           /* TLS sessions established */
	uint64_t conn_reuse;        /* transactions on an already used connection */
	uint64_t rcpt_sent, rcpt_deferred, rcpt_bounced;
	/* outcomes by next hop (dlv_metrics.c); hops[DLV_METRIC_HOPS] is "other" */
	struct {
		char hop[128];
		uint64_t n[DLV_BOUNCED + 1]; /* by enum dlv_class */
	} hops[DLV_METRIC_HOPS + 1];
	size_t nhops;
};

struct dlv_ctx {
	struct worker *w;
	struct ev_loop *loop;
	struct resolver *res;
	struct queue_client queue;      /* jobs in, results out */
	struct ev_timer dispatch_timer; /* start sessions outside of callbacks */
	SSL_CTX *tls_ctx;               /* no chain check: may, starttls, smtps */
	SSL_CTX *tls_verify_ctx;        /* verify; made when first needed */
	struct dlv_dkim *dkim;          /* the signing keys (none: nothing signed) */
	struct dlv_dkim *next_dkim;     /* a reload's, until it commits */
	struct dlv_dest_list dests;
	struct idmap jobs;              /* every job here, by job id */
	unsigned nsessions;
	size_t nrated;                  /* destinations with a rate limit */
	struct dlv_stats stats;
};

/* One recipient's outcome: what goes to the queue and into the log. */
struct dlv_outcome {
	enum dlv_class cls;
	int code;                 /* the remote reply code, 0 when relayd decided */
	char enh[16];             /* always set: "2.0.0", "4.4.1", ... */
	char text[1600];          /* "250 2.0.0 Ok", "host H[ip] said: ..." */
	const char *relay;        /* "host[ip]:port", or NULL: none */
	unsigned conn_use;        /* > 1: the connection was reused */
	char reply[1024];         /* the remote reply itself, "" when relayd decided */
	unsigned flags;           /* RESULT_* */
};

/* dlv_main.c */
/* The role's entry point (see common/worker.h). */
void delivery_main(struct worker *w);
void dlv_rcpt_outcome(struct dlv_ctx *ctx, struct dlv_job *job, size_t i,
		      const struct dlv_outcome *o);
/* Gives every undecided recipient the same outcome. */
void dlv_job_outcome_all(struct dlv_ctx *ctx, struct dlv_job *job, const struct dlv_outcome *o);
/* Reports the job done to the queue (all recipients decided) and frees it. */
void dlv_job_finish(struct dlv_ctx *ctx, struct dlv_job *job);
void dlv_job_request_chunk(struct dlv_ctx *ctx, struct dlv_job *job);
/*
 * The job's content cannot be had or made (the queue lost it, signing
 * failed): its connection goes without the final dot, so nothing is
 * delivered, and its recipients are deferred with text.
 */
void dlv_job_content_failed(struct dlv_ctx *ctx, struct dlv_job *job, const char *text);
/*
 * The next waiting job of dest that may start now, taken off its list; NULL
 * if none, or when its rate makes it wait (a timer dispatches it then).
 */
struct dlv_job *dlv_dest_take(struct dlv_ctx *ctx, struct dlv_dest *dest);
/*
 * Puts a job a session could not start back at the head of its list; the
 * rate slot it took is given back when no job started after it.
 */
void dlv_dest_requeue(struct dlv_ctx *ctx, struct dlv_job *job);
/*
 * Every address of dest's next hop failed: remember it for a while (at
 * most retry-min; relayctl flush and reload forget it) and suspend its
 * waiting jobs with the same error, without connecting.
 */
void dlv_dest_failed(struct dlv_ctx *ctx, struct dlv_dest *dest, const struct dlv_outcome *o);
/* A session ended: lets waiting jobs start (from a timer, not from here). */
void dlv_session_ended(struct dlv_ctx *ctx, struct dlv_dest *dest);
/* The client context for a policy; NULL with err when it cannot be made. */
SSL_CTX *dlv_tls_ctx(struct dlv_ctx *ctx, enum tls_policy policy, char *err, size_t errsz);
/* Seconds since arrival (to the microsecond), for delay=. */
double dlv_delay(int64_t arrival, uint32_t arrival_usec);

/* dlv_session.c, dlv_txn.c */
/* Starts delivering job (already off its destination's list). */
void dlv_session_start(struct dlv_ctx *ctx, struct dlv_dest *dest, struct dlv_job *job);
/* A piece of the current job's content arrived. */
void dlv_session_chunk(struct dlv_session *s, const uint8_t *p, size_t n, int last);
/* Drops the session and its job without results (queue gone, content gone). */
void dlv_session_abort(struct dlv_session *s);
/* Divides every SMTP timeout (tests that wait for one); 1 is RFC 5321. */
void dlv_session_timeout_div(unsigned div);

/* dlv_ctl.c */
void dlv_ctl(struct worker *w, uint32_t reqid, int argc, char **argv);

/* dlv_metrics.c */
/* One recipient outcome at a next hop (its dlv_dest key). */
void dlv_metrics_count(struct dlv_ctx *ctx, const char *hop, enum dlv_class cls);
/* The master's metrics poll: "series value" lines. */
void dlv_metrics_answer(struct dlv_ctx *ctx, uint32_t reqid);

#endif
