/*
 * intake.h - the intake worker's own state: listeners, every SMTP session
 * on one event loop, the channel to the queue worker, TLS and AUTH
 * settings derived from the config, and the counters relayctl shows.
 */
#ifndef RELAYD_INTAKE_H
#define RELAYD_INTAKE_H

#include "smtp_auth.h"
#include "common/event.h"
#include "common/idmap.h"
#include "common/queue_client.h"
#include "common/worker.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

struct ipc_chan;
struct smtp_session;
struct intake_hasher;
struct intake_anvil;
struct intake_listener;
struct intake_local;
struct intake_proxy_wait;

struct intake {
	struct worker *w;
	struct ev_loop *loop;
	SSL_CTX *tls;                  /* NULL: no certificate configured */
	struct smtp_auth_db auth;
	SSL_CTX *next_tls;             /* built by a reload's PREPARE, until COMMIT */
	struct smtp_auth_db next_auth;
	struct intake_hasher *hasher;  /* made at the first AUTH (smtp_session.c) */
	struct intake_anvil *anvil;    /* failed AUTH per client address, likewise */
	struct queue_client queue;     /* the channel to the queue worker */
	struct idmap by_sid;           /* sessions by the sid of their begun transaction */
	int flow_waiting;              /* sessions wait for the queue channel's drain */
	struct smtp_session *sessions; /* every session, a doubly linked list */
	size_t nsessions;
	int stress;                    /* many connections: timeouts are short */
	struct intake_listener *listeners;
	size_t nlisteners;
	struct ev_timer accept_timer;  /* accepting again after EMFILE and the like */
	uint64_t next_sid;
	struct intake_local *local;    /* maildrop pickup (intake_local.c) */
	/* proxy listeners' connections waiting for their header (intake_proxy.c) */
	struct intake_proxy_wait *proxy_waits;
	size_t nproxy_waits;
	int stopping;
	struct {
		uint64_t connections, received, rejected, tls;
	} stats;
};

/* The role's entry point (see common/worker.h). */
void intake_main(struct worker *w);
/* intake.c */
/* smtp-timeout, or the stress timeout when it is shorter and we are under stress. */
uint64_t intake_timeout_ms(const struct intake *in);
/* A session came or went: enters or leaves stress mode. */
void intake_sessions_changed(struct intake *in);
/*
 * A client whose address is known (at accept, or from its PROXY header):
 * the connection limits, then its session.
 */
void intake_admit(struct intake *in, int fd, const struct sockaddr *sa, socklen_t salen,
		  enum listen_mode mode);
/* Refuses a client at connect: 421 4.7.0, best effort, then close. */
void intake_refuse(struct intake *in, int fd, const char *why);

/* intake_local.c: local submission (sendmail). */
/* A client on submit.sock: a session as its user (SO_PEERCRED). */
void intake_local_accept(struct intake *in, int fd);
/* Starts the maildrop pickup; stop ends it (the file being handed in stays). */
void intake_local_init(struct intake *in);
void intake_local_stop(struct intake *in);

/* intake_queue.c */
/* Connects to the queue; waits a little for its answer before we serve. */
void intake_queue_init(struct intake *in);
/* 1 when a queue worker answered HELLO on an open channel: mail can be taken. */
int intake_queue_up(const struct intake *in);
/* 1 when the channel is full (ipc_full): clients wait for its drain. */
int intake_queue_busy(const struct intake *in);
/* How long a session waits for COMMITTED/FAILED after END (a safety net). */
uint64_t intake_verdict_timeout_ms(const struct intake *in);
/* No verdict in time for s: it gets 451 4.3.0, with a log line. */
void intake_queue_late(struct intake *in, struct smtp_session *s);
/* A session waits for the queue channel to drain (its drain resumes it). */
void intake_flow_wait(struct intake *in);

#endif
