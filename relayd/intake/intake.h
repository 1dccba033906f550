/*
 * intake.h - the intake worker's own state: listeners, every SMTP session
 * on one event loop, the channel to the queue worker, TLS and AUTH
 * settings derived from the config, and the counters relayctl shows.
 */
#ifndef RELAYD_INTAKE_H
#define RELAYD_INTAKE_H

#include "smtp_auth.h"
#include "common/event.h"
#include "common/worker.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

struct ipc_chan;
struct smtp_session;
struct intake_hasher;
struct intake_anvil;

/* Flow control toward the queue: stop reading clients above HIGH queued
 * octets, resume below LOW. */
#define INTAKE_QUEUE_HIGH (1024 * 1024)
#define INTAKE_QUEUE_LOW (256 * 1024)

struct intake {
	struct worker *w;
	struct ev_loop *loop;
	SSL_CTX *tls;                  /* NULL: no certificate configured */
	struct smtp_auth_db auth;
	SSL_CTX *next_tls;             /* built by a reload's PREPARE, until COMMIT */
	struct smtp_auth_db next_auth;
	struct intake_hasher *hasher;  /* made at the first AUTH (smtp_session.c) */
	struct intake_anvil *anvil;    /* failed AUTH per client address, likewise */
	struct ipc_chan *queue;        /* NULL or closed while the queue is away */
	int queue_ready;               /* HELLO_OK came: a queue worker serves the channel */
	struct ev_timer queue_retry;
	struct ev_timer queue_hello;   /* logs a queue worker slow to answer HELLO */
	struct ev_timer flow_timer;    /* polls the queue channel while sessions wait */
	struct smtp_session *sessions; /* every session, a doubly linked list */
	size_t nsessions;
	uint64_t next_sid;
	int stopping;
	struct {
		uint64_t connections, received, rejected;
	} stats;
};

/* The role's entry point (see common/worker.h). */
void intake_main(struct worker *w);

/* intake_queue.c */
/* Connects to the queue; waits a little for its answer before we serve. */
void intake_queue_init(struct intake *in);
/* 1 when a queue worker answered HELLO on an open channel: mail can be taken. */
int intake_queue_up(const struct intake *in);
/* 1 when the channel has so much queued that clients should wait. */
int intake_queue_busy(const struct intake *in);
/* How long a session waits for COMMITTED/FAILED after END (a safety net). */
uint64_t intake_verdict_timeout_ms(const struct intake *in);
/* No verdict in time for s: it gets 451 4.3.0, with a log line. */
void intake_queue_late(struct intake *in, struct smtp_session *s);
/* A session waits for the queue channel to drain (flow_timer resumes it). */
void intake_flow_wait(struct intake *in);

#endif
