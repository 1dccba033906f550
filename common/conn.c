/*
 * conn.c - buffered non-blocking I/O with an optional TLS layer.
 */
#include "conn.h"
#include "event.h"
#include "log.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_READ_STEP 16384

static void conn_io(int fd, uint32_t events, void *arg);

/* Whether the peer's input is wanted now (the handshake reads on its own). */
static int conn_reading(const struct conn *c)
{
	return !c->read_paused && !c->closing && !(c->out_full && !c->read_when_full);
}

static void conn_update(struct conn *c)
{
	if (c->closed || c->fd < 0)
		return;
	uint32_t ev = 0;
	if (c->connecting)
		ev = EPOLLOUT;
	else {
		if (conn_reading(c) || c->handshaking)
			ev |= EPOLLIN;
		if (buf_avail(&c->out) > 0 || c->want_write)
			ev |= EPOLLOUT;
	}
	if (ev != c->cur_events) {
		ev_io_mod(c->loop, c->fd, ev);
		c->cur_events = ev;
	}
}

static struct conn *conn_alloc(struct ev_loop *loop, int fd, uint32_t events,
			       conn_read_cb on_read, conn_close_cb on_close, void *arg)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return NULL;
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->on_read = on_read;
	c->on_close = on_close;
	c->arg = arg;
	c->cur_events = events;
	c->out_high = CONN_OUT_HIGH;
	c->out_low = CONN_OUT_LOW;
	buf_init(&c->in);
	buf_init(&c->out);
	if (ev_io_add(loop, fd, events, conn_io, c) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

struct conn *conn_new(struct ev_loop *loop, int fd, conn_read_cb on_read,
		      conn_close_cb on_close, void *arg)
{
	struct conn *c = conn_alloc(loop, fd, EPOLLIN, on_read, on_close, arg);
	if (c == NULL)
		close(fd);
	return c;
}

struct conn *conn_connect(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
			  conn_event_cb on_connected, conn_read_cb on_read,
			  conn_close_cb on_close, void *arg)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	struct conn *c = conn_alloc(loop, fd, EPOLLOUT, on_read, on_close, arg);
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->connecting = 1;
	c->on_connected = on_connected;
	return c;
}

static void conn_release_now(struct conn *c)
{
	if (c->fd >= 0) {
		ev_io_del(c->loop, c->fd);
		close(c->fd);
	}
	if (c->ssl)
		SSL_free(c->ssl);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->holds > 0) {
		c->freed = 1;
		c->closed = 1;
		return;
	}
	conn_release_now(c);
}

void conn_hold(struct conn *c)
{
	c->holds++;
}

int conn_release(struct conn *c)
{
	if (--c->holds == 0 && c->freed) {
		conn_release_now(c);
		return 1;
	}
	return c->freed;
}

/* Reports the end of the connection to the owner once. */
static void conn_fail(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = 1;
	snprintf(c->err, sizeof(c->err), "%s", why);
	if (c->fd >= 0)
		ev_io_del(c->loop, c->fd);
	c->on_close(c, c->arg, c->err);
}

static void conn_fail_errno(struct conn *c, const char *what)
{
	char why[128];
	snprintf(why, sizeof(why), "%s: %s", what, strerror(errno));
	conn_fail(c, why);
}

/* EPOLLHUP or EPOLLERR: the socket's pending error, if it has one. */
static void conn_fail_hangup(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
		errno = err;
		conn_fail_errno(c, "socket");
		return;
	}
	conn_fail(c, "connection closed by peer");
}

static void conn_fail_ssl(struct conn *c, const char *what)
{
	char why[128];
	unsigned long e = ERR_get_error();
	if (e)
		snprintf(why, sizeof(why), "%s: %s", what, ERR_reason_error_string(e));
	else
		snprintf(why, sizeof(why), "%s failed", what);
	ERR_clear_error();
	conn_fail(c, why);
}

void conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->closed || c->closing)
		return;
	buf_append(&c->out, p, n);
	if (buf_avail(&c->out) > c->out_high)
		c->out_full = 1;
	conn_update(c);
}

void conn_close_after_flush(struct conn *c)
{
	if (c->closed)
		return;
	c->closing = 1;
	c->read_paused = 1;
	if (buf_avail(&c->out) == 0 && !c->want_write) {
		conn_fail(c, "closed");
		return;
	}
	conn_update(c);
}

void conn_pause_read(struct conn *c, int paused)
{
	c->read_paused = paused ? 1 : 0;
	conn_update(c);
}

void conn_set_watermarks(struct conn *c, size_t high, size_t low, int read_when_full)
{
	if (low > high)
		fatal("conn_set_watermarks: low %zu above high %zu", low, high);
	c->out_high = high;
	c->out_low = low;
	c->read_when_full = read_when_full ? 1 : 0;
	c->out_full = buf_avail(&c->out) > high;
	conn_update(c);
}

/* Returns bytes read, 0 at EOF, -1 when nothing more now, -2 on error. */
static ssize_t conn_read_some(struct conn *c, uint8_t *dst, size_t n)
{
	if (c->ssl == NULL) {
		ssize_t r = read(c->fd, dst, n);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return -1;
		if (r < 0) {
			conn_fail_errno(c, "read");
			return -2;
		}
		return r;
	}
	ERR_clear_error();
	int r = SSL_read(c->ssl, dst, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = 1;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		conn_fail_ssl(c, "TLS read");
		return -2;
	}
}

/* Returns 0 when all is written or the socket is full, -1 on error. */
static int conn_flush(struct conn *c)
{
	c->want_write = 0;
	while (buf_avail(&c->out) > 0) {
		size_t n = buf_avail(&c->out);
		if (c->ssl == NULL) {
			ssize_t w = write(c->fd, buf_head(&c->out), n);
			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			if (w < 0) {
				conn_fail_errno(c, "write");
				return -1;
			}
			buf_consume(&c->out, (size_t)w);
			continue;
		}
		ERR_clear_error();
		int w = SSL_write(c->ssl, buf_head(&c->out), n > INT32_MAX ? INT32_MAX : (int)n);
		if (w > 0) {
			buf_consume(&c->out, (size_t)w);
			continue;
		}
		switch (SSL_get_error(c->ssl, w)) {
		case SSL_ERROR_WANT_WRITE:
			c->want_write = 1;
			return 0;
		case SSL_ERROR_WANT_READ:
			return 0;
		default:
			conn_fail_ssl(c, "TLS write");
			return -1;
		}
	}
	return 0;
}

static void conn_handshake(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = 0;
		c->want_write = 0;
		conn_update(c);
		if (c->on_tls)
			c->on_tls(c, c->arg);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->want_write = 0;
		break;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = 1;
		break;
	default:
		conn_fail_ssl(c, "TLS handshake");
		return;
	}
	conn_update(c);
}

static void conn_finish_connect(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		errno = err;
		conn_fail_errno(c, "connect");
		return;
	}
	c->connecting = 0;
	conn_update(c);
	if (c->on_connected)
		c->on_connected(c, c->arg);
}

static void conn_do_read(struct conn *c)
{
	size_t got = 0;
	/* A bounded amount per wakeup keeps one busy peer from starving others. */
	while (conn_reading(c) && !c->closed && got < 4 * CONN_READ_STEP) {
		if (buf_avail(&c->in) >= CONN_MAX_INPUT) {
			c->read_paused = 1;
			conn_update(c);
			break;
		}
		uint8_t *dst = buf_reserve(&c->in, CONN_READ_STEP);
		ssize_t r = conn_read_some(c, dst, CONN_READ_STEP);
		if (r == -2)
			return;
		if (r == -1)
			break;
		if (r == 0) {
			if (got > 0)
				c->on_read(c, c->arg);
			if (!c->freed)
				conn_fail(c, "connection closed by peer");
			return;
		}
		buf_commit(&c->in, (size_t)r);
		got += (size_t)r;
	}
	if (got > 0)
		c->on_read(c, c->arg);
}

static void conn_io(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	(void)fd;

	conn_hold(c);
	if (c->connecting) {
		conn_finish_connect(c);
		goto out;
	}
	if (c->handshaking) {
		conn_handshake(c);
		goto out;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_do_read(c);
	if (c->freed || c->closed)
		goto out;
	/*
	 * epoll reports a hangup or an error even when we asked for nothing:
	 * a connection that is not reading takes it now, once, or the loop
	 * would be woken for it again and again.
	 */
	if ((events & (EPOLLERR | EPOLLHUP)) && !conn_reading(c)) {
		conn_fail_hangup(c);
		goto out;
	}
	if (buf_avail(&c->out) > 0 || c->want_write) {
		if (conn_flush(c) < 0)
			goto out;
		if (buf_avail(&c->out) == 0 && c->closing) {
			conn_fail(c, "closed");
			goto out;
		}
		if (buf_avail(&c->out) <= c->out_low) {
			c->out_full = 0;
			if (c->on_drain)
				c->on_drain(c, c->arg);
		}
	} else if (c->closing) {
		conn_fail(c, "closed");
		goto out;
	}
	if (!c->freed)
		conn_update(c);
out:
	conn_release(c);
}

/*
 * The name a verifying client checks: a host name is also sent as SNI; an
 * address is checked against the certificate's IP entries and never sent
 * as SNI (RFC 6066 allows only host names there).
 */
static void conn_tls_peer_name(SSL *ssl, const char *name)
{
	struct in6_addr a;
	if (name == NULL || *name == '\0')
		return;
	if (inet_pton(AF_INET, name, &a) == 1 || inet_pton(AF_INET6, name, &a) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
		return;
	}
	SSL_set_tlsext_host_name(ssl, name);
	SSL_set1_host(ssl, name);
}

int conn_starttls(struct conn *c, SSL_CTX *ctx, int server, const char *sni,
		  conn_event_cb on_tls)
{
	buf_reset(&c->in);
	/* The reply that said "go ahead" leaves in plaintext first. */
	if (conn_flush(c) < 0 || buf_avail(&c->out) > 0)
		return -1;
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (server)
		SSL_set_accept_state(c->ssl);
	else {
		SSL_set_connect_state(c->ssl);
		conn_tls_peer_name(c->ssl, sni);
	}
	c->on_tls = on_tls;
	c->handshaking = 1;
	c->read_paused = 0;
	conn_handshake(c);
	return 0;
}

void conn_tls_desc(const struct conn *c, char *dst, size_t dstsz)
{
	if (c->ssl == NULL || c->handshaking) {
		snprintf(dst, dstsz, "%s", "");
		return;
	}
	snprintf(dst, dstsz, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}
