/*
 * smtp_session.h - one SMTP client connection of intake: its state, the
 * verbs that drive it, and its open transaction with the queue worker.
 * Every session lives on intake's one event loop; memory per idle
 * session is the struct and its connection buffers.
 */
#ifndef RELAYD_SMTP_SESSION_H
#define RELAYD_SMTP_SESSION_H

#include "intake.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_reply.h"
#include "smtp_sasl.h"
#include "common/qid.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/event.h"

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct conn;
struct intake_hash_job;

/* Where the dialogue is, for the verb table (bit masks). */
enum smtp_state { SS_INIT, SS_HELO, SS_MAIL, SS_RCPT, SS_NSTATES };

/* What the next input octets are. */
enum smtp_input {
	SI_TLS_ACCEPT, /* smtps: handshake before the greeting */
	SI_CMD,        /* command lines */
	SI_AUTH,       /* a SASL response line */
	SI_AUTH_CHECK, /* a password is being checked off the loop: input waits */
	SI_DATA,       /* message content */
	SI_WAIT,       /* end of data sent, waiting for the queue's verdict */
	SI_CLOSING,    /* last reply queued, closing */
};

enum smtp_auth_step { SA_NONE, SA_PLAIN, SA_LOGIN_USER, SA_LOGIN_PASS };

/* One mail transaction: MAIL, RCPTs, and its content on the way. */
struct smtp_tx {
	uint64_t sid;
	struct smtp_session *sess;    /* set at BEGIN: the queue's verdict finds it by sid */
	char qid[QID_LEN];
	char sender[SMTP_PATH_MAX + 1];
	unsigned body_flags;          /* BODY_8BITMIME, BODY_SMTPUTF8 */
	char **rcpts;
	size_t nrcpts;
	struct smtp_data data;
	struct buf out;               /* content not yet sent to the queue */
	int64_t arrival;
	uint64_t sent;                /* octets sent to the queue */
	unsigned begun : 1;           /* MSG_Q_BEGIN sent */
	unsigned headers_sent : 1;    /* the trace headers are out */
	unsigned ended : 1;           /* END or ABORT sent: nothing more goes */
	unsigned queue_lost : 1;      /* the queue went away mid-transaction */
	unsigned sender_rewritten : 1; /* rewrite-sender changed the envelope sender */
};

struct smtp_session {
	struct smtp_session *next, *prev;
	struct intake *in;
	struct conn *c;
	enum listen_mode mode;
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage peer;
	unsigned mynet : 1;
	unsigned tls : 1;
	unsigned esmtp : 1;
	unsigned flow_paused : 1;
	unsigned dead : 1;            /* freed once the running handler returns */
	unsigned line_open : 1;       /* part of a command line came: its deadline runs */
	int busy;                     /* inside smtp_process */
	uint64_t lines;               /* command lines and messages taken */
	size_t in_left;               /* input left unprocessed by the last pass */
	enum smtp_state state;
	enum smtp_input input;
	struct smtp_line_reader lr;
	char helo[256];
	char auth_user[SMTP_SASL_FIELD_MAX];
	enum smtp_auth_step auth_step;
	/* LOGIN's username, then the identity whose password is being checked */
	char auth_try_user[SMTP_SASL_FIELD_MAX];
	struct intake_hash_job *auth_job; /* the check in flight, or NULL */
	unsigned auth_failures;
	const char *auth_mech;        /* "PLAIN" or "LOGIN": the AUTH under way */
	unsigned errors;
	/* what smtp_log.c's reject lines name: the command being answered
	 * ("CONNECT" before any, "END-OF-MESSAGE" after content) and the
	 * address it gave, while its handler runs */
	const char *cmd_verb;
	const char *cmd_addr;
	unsigned rejects_logged, rejects_unlogged;
	uid_t uid;                    /* LISTEN_LOCAL: who submits (SO_PEERCRED, file owner) */
	struct ev_timer timer;
	struct smtp_tx *tx;
};

/*
 * Takes an accepted socket; sends the greeting (or starts smtps TLS).
 * NULL when the session could not start (it is gone already).
 */
struct smtp_session *smtp_session_new(struct intake *in, int fd, const struct sockaddr *sa,
				      socklen_t salen, enum listen_mode mode);
/* Drops the connection at once (shutdown). */
void smtp_session_free(struct smtp_session *s);
/* The queue's verdict on the session's transaction. */
void smtp_session_committed(struct smtp_session *s, const char *qid);
void smtp_session_failed(struct smtp_session *s, int code, const char *enhanced,
			 const char *text);
/* The queue channel is gone: open transactions fail with 451 4.3.0. */
void smtp_session_queue_lost(struct smtp_session *s);
/* Reading was paused for flow control and may go on. */
void smtp_session_resume(struct smtp_session *s);
/* Stress began: a deadline further than the stress timeout is brought in. */
void smtp_session_stress(struct smtp_session *s);
/* Waiting for a command (not in a transfer): may give its place to a newcomer. */
int smtp_session_evictable(const struct smtp_session *s);
/* Gives its place: 421 4.7.0 and close, or dropped at once if output is stuck. */
void smtp_session_evict(struct smtp_session *s);

/* smtp_handoff.c: the transaction's stream to the queue. */
void smtp_tx_free(struct smtp_tx *tx);
/* MSG_Q_BEGIN and the RCPTs: 0, or -1 if the queue is away. */
int smtp_handoff_begin(struct smtp_session *s);
/* Sends what the DATA reader produced so far (trace headers first). */
void smtp_handoff_content(struct smtp_session *s, int at_end);
void smtp_handoff_end(struct smtp_session *s);
void smtp_handoff_abort(struct smtp_session *s);

#endif
