/*
 * dlv_session.h - what the two halves of the SMTP client share, private to
 * relayd/delivery: the session, the commands it sends, and the calls each
 * half makes into the other.
 *
 * dlv_session.c walks next hops, hosts and addresses until one greets,
 * takes TLS and AUTH, and reads every reply through one FIFO of expected
 * replies; dlv_txn.c carries the jobs over that connection, MAIL to the
 * final dot, decides their recipients and reuses the connection for the
 * next job.
 */
#ifndef RELAYD_DLV_SESSION_H
#define RELAYD_DLV_SESSION_H

#include "relayd/delivery/dlv.h"
#include "relayd/delivery/dlv_lines.h"
#include "relayd/delivery/smtpc_reply.h"
#include "relayd/delivery/smtpc_stuff.h"
#include "common/buf.h"
#include "common/conn.h"

#include <stddef.h>
#include <stdint.h>

struct mx_plan;

/*
 * RFC 5321 4.5.3.2 timeouts, in seconds (the command table in
 * dlv_session.c holds the rest); a build may divide them for labs, tests
 * through dlv_session_timeout_div().
 */
#define SMTPC_CONNECT_TIMEOUT 30
#define SMTPC_TLS_TIMEOUT 60
#define SMTPC_BLOCK_TIMEOUT 180

enum smtpc_cmd {
	SC_GREETING,
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,
	SC_AUTH,
	SC_AUTH_USER,
	SC_AUTH_PASS,
	SC_MAIL,
	SC_RCPT,
	SC_DATA,
	SC_DOT,
	SC_RSET,
};

/* SC_DOT's argument: 1 when it only closes a DATA nobody wanted. */

struct smtpc_pend {
	uint8_t cmd;
	uint32_t arg;
};

struct dlv_session {
	struct dlv_ctx *ctx;
	struct dlv_dest *dest;
	struct dlv_job *job;
	struct dlv_hop hop;
	size_t hop_idx;
	struct mx_plan *plan;
	size_t host_idx, addr_idx;
	struct conn *c;
	struct ev_timer timer;
	struct smtpc_reply reply;
	struct smtpc_caps caps;
	struct smtpc_stuff stuff;
	struct dlv_dkim_stream *dk;   /* the signing pass, before the content goes */
	struct buf tmp;
	struct dlv_lines lines;       /* long lines broken, in the pass under way */
	struct buf brk;               /* a piece of content with its long lines broken */
	struct buf conv;              /* the message downgraded for this server, whole */
	size_t conv_off;              /* how much of conv has gone */
	struct smtpc_pend *pend;
	size_t pend_head, pend_tail, pend_cap;
	char peer[340];       /* "host[ip]" */
	char relay[350];      /* "host[ip]:port" */
	unsigned conn_use;    /* transactions started on this connection */
	struct dlv_outcome last; /* the error the job is deferred with when all fail */
	unsigned busy;        /* inside one of our callbacks */
	unsigned resolving : 1;
	unsigned closed : 1;  /* ended; freed when not busy nor resolving */
	unsigned handshake : 1;
	unsigned tls_active : 1;
	unsigned plain_retry : 1;  /* this address again, without STARTTLS */
	unsigned starttls_refused : 1;
	unsigned in_txn : 1;
	unsigned mail_ok : 1;
	unsigned in_content : 1;
	unsigned want_chunk : 1;
	unsigned broken : 1;  /* the connection cannot carry another command */
	unsigned loading : 1; /* reading the content into conv, before MAIL */
	unsigned conv_ready : 1; /* conv is sent instead of the queue's content */
	size_t naccepted;
	uint64_t content_bytes;  /* what went after DATA's 354, for the transcript */
};

/* dlv_session.c */
/* Around every callback: the session is freed only when the last one leaves. */
void smtpc_enter(struct dlv_session *s);
void smtpc_leave(struct dlv_session *s);
unsigned smtpc_timeout_ms(unsigned secs);
/* Expects a reply to cmd (already written). */
void smtpc_push(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
/* Sends one command line (CRLF added) and expects its reply. */
void smtpc_send(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A line of the current job's transcript (dlv_trace.h); none without a job. */
void smtpc_trace(struct dlv_session *s, char mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "MAIL FROM", for "(in reply to ...)". */
const char *smtpc_cmd_name(enum smtpc_cmd cmd);
/* The session is over: its connection goes, its destination may start another. */
void smtpc_close(struct dlv_session *s);

/* dlv_txn.c: the reply handlers of the transaction's commands. */
void smtpc_h_mail(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
void smtpc_h_rcpt(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t i);
void smtpc_h_data(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
void smtpc_h_dot(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t discard);
void smtpc_h_rset(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
/* The connection is ready for a job: MAIL (and RCPT, DATA when pipelining). */
void smtpc_start_txn(struct dlv_session *s);
/* The current job is decided: the next one on this connection, or the end. */
void smtpc_job_end(struct dlv_session *s, int need_rset);
/* The transaction cannot go on: every undecided recipient gets o. */
void smtpc_txn_fail(struct dlv_session *s, const struct dlv_outcome *o);
/* An outcome relayd decides itself (no reply said it). */
void smtpc_outcome_local(struct dlv_session *s, struct dlv_outcome *o, enum dlv_class cls,
			 const char *enh, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The outcome the current reply gives to a recipient. */
void smtpc_outcome_reply(struct dlv_session *s, struct dlv_outcome *o, enum smtpc_cmd cmd);
/* The connection's output drained: the next piece of content may be asked for. */
void smtpc_on_drain(struct conn *c, void *arg);
/* Forgets the downgraded message (it was made for one job on one server). */
void smtpc_conv_reset(struct dlv_session *s);

#endif
