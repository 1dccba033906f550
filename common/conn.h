/*
 * conn.h - a non-blocking buffered connection on the event loop, plain or
 * TLS (OpenSSL slots in under the same buffers after STARTTLS or at once
 * for smtps). The owner reads from c->in in on_read and writes with
 * conn_write; on_close reports EOF or an error once.
 *
 * Callbacks may call conn_free on their own connection: the memory is
 * released when the callback returns (conn_hold/conn_release pair).
 */
#ifndef RELAYD_CONN_H
#define RELAYD_CONN_H

#include "buf.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/socket.h>

struct ev_loop;
struct conn;

typedef void (*conn_read_cb)(struct conn *c, void *arg);
typedef void (*conn_close_cb)(struct conn *c, void *arg, const char *why);
typedef void (*conn_event_cb)(struct conn *c, void *arg);

/* Stop reading when this much input waits unconsumed (bounded memory). */
#define CONN_MAX_INPUT (256 * 1024)
/* Default output water marks (conn_set_watermarks). */
#define CONN_OUT_HIGH (64 * 1024)
#define CONN_OUT_LOW (16 * 1024)

struct conn {
	struct ev_loop *loop;
	int fd;
	struct buf in, out;
	SSL *ssl;
	void *arg;
	conn_read_cb on_read;
	conn_close_cb on_close;
	conn_event_cb on_drain;     /* out fell to the low mark (optional) */
	conn_event_cb on_connected; /* outbound connect finished */
	conn_event_cb on_tls;       /* TLS handshake finished */
	unsigned connecting : 1;
	unsigned handshaking : 1;
	unsigned read_paused : 1;
	unsigned closing : 1;       /* close once out is flushed */
	unsigned closed : 1;        /* on_close was called */
	unsigned want_write : 1;    /* TLS needs the socket writable */
	unsigned freed : 1;
	unsigned out_full : 1;      /* out passed the high mark, not yet drained */
	unsigned read_when_full : 1;
	int holds;
	size_t out_high, out_low;
	uint32_t cur_events;
	char err[128];
};

/* Takes ownership of fd (made non-blocking). NULL if epoll refused it. */
struct conn *conn_new(struct ev_loop *loop, int fd, conn_read_cb on_read,
		      conn_close_cb on_close, void *arg);
/* Starts a non-blocking connect; on_connected or on_close follows. */
struct conn *conn_connect(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
			  conn_event_cb on_connected, conn_read_cb on_read,
			  conn_close_cb on_close, void *arg);
void conn_free(struct conn *c);
void conn_hold(struct conn *c);
/* Returns 1 if the connection was freed while held: do not touch it. */
int conn_release(struct conn *c);

void conn_write(struct conn *c, const void *p, size_t n);
/* Flushes what is queued, then closes (on_close is called with "closed"). */
void conn_close_after_flush(struct conn *c);
void conn_pause_read(struct conn *c, int paused);
/*
 * Backpressure, the one flow contract of every connection: once more than
 * high octets of output wait, the connection is full (conn_full) and stops
 * reading its peer, so a peer that does not read our replies makes us
 * produce no more of them; owners that take input already buffered check
 * conn_full too. When the output falls to low, reading resumes and
 * on_drain is called (also after every write that leaves output at or
 * under low, e.g. emptied). read_when_full keeps reading anyway: for IPC
 * channels, where two processes that both stopped reading while their
 * output waits would wait for each other forever.
 */
void conn_set_watermarks(struct conn *c, size_t high, size_t low, int read_when_full);
static inline int conn_full(const struct conn *c) { return c->out_full; }
/*
 * Starts TLS. Unread input is thrown away first: bytes a client pipelined
 * after STARTTLS must never be answered inside TLS (CVE-2011-0411).
 * sni: for a client, the peer's name (sent as SNI and checked when the
 * context verifies) or its address (checked against the certificate's IP
 * entries), or NULL. on_tls or on_close follows.
 */
int conn_starttls(struct conn *c, SSL_CTX *ctx, int server, const char *sni,
		  conn_event_cb on_tls);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" when not in TLS. */
void conn_tls_desc(const struct conn *c, char *dst, size_t dstsz);

#endif
