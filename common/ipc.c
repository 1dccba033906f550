/*
 * ipc.c - framing and payload codec for the messages of ipc_types.h, on top
 * of a buffered connection.
 */
#include "ipc.h"
#include "conn.h"
#include "log.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A frame that cannot fit the input buffer would stall its channel. */
_Static_assert(IPC_HDR_SIZE + IPC_MAX_FRAME <= CONN_MAX_INPUT, "IPC_MAX_FRAME too big");

struct ipc_chan {
	struct conn *c;
	char name[32];
	ipc_frame_cb on_frame;
	ipc_close_cb on_close;
	ipc_drain_cb on_drain;
	void *arg;
	int closed;
};

enum ipc_parse_result ipc_parse_frame(const uint8_t *p, size_t n, uint32_t *type, uint32_t *len)
{
	if (n < IPC_HDR_SIZE)
		return IPC_PARSE_NEED_MORE;
	memcpy(type, p, 4);
	memcpy(len, p + 4, 4);
	if (*len > IPC_MAX_FRAME)
		return IPC_PARSE_TOO_BIG;
	if (n - IPC_HDR_SIZE < *len)
		return IPC_PARSE_NEED_MORE;
	return IPC_PARSE_FRAME;
}

static void ipc_closed(struct ipc_chan *ch)
{
	if (ch->closed)
		return;
	ch->closed = 1;
	conn_pause_read(ch->c, 1);
	if (ch->on_close)
		ch->on_close(ch, ch->arg);
}

void ipc_fail(struct ipc_chan *ch, const char *why)
{
	if (ch->closed)
		return;
	log_warnx("ipc channel to %s closed: %s", ch->name, why);
	ipc_closed(ch);
}

static void ipc_on_read(struct conn *c, void *arg)
{
	struct ipc_chan *ch = arg;
	uint32_t type, len;

	while (!ch->closed) {
		switch (ipc_parse_frame(buf_head(&c->in), buf_avail(&c->in), &type, &len)) {
		case IPC_PARSE_NEED_MORE:
			/* The conn stops reading at CONN_MAX_INPUT; what was whole is gone now. */
			if (c->read_paused)
				conn_pause_read(c, 0);
			return;
		case IPC_PARSE_TOO_BIG:
			ipc_fail(ch, "oversized frame");
			return;
		case IPC_PARSE_FRAME:
			break;
		}
		/* The frame stays in the buffer while the handler runs. */
		const uint8_t *payload = buf_head(&c->in) + IPC_HDR_SIZE;
		conn_hold(c);
		ch->on_frame(ch, type, payload, len, ch->arg);
		if (conn_release(c))
			return;
		buf_consume(&c->in, IPC_HDR_SIZE + len);
	}
}

static void ipc_on_close(struct conn *c, void *arg, const char *why)
{
	struct ipc_chan *ch = arg;
	(void)c;
	if (!ch->closed)
		log_debug("ipc channel to %s closed: %s", ch->name, why);
	ipc_closed(ch);
}

static void ipc_on_drain(struct conn *c, void *arg)
{
	struct ipc_chan *ch = arg;
	(void)c;
	if (!ch->closed && ch->on_drain)
		ch->on_drain(ch, ch->arg);
}

struct ipc_chan *ipc_chan_new(struct ev_loop *loop, int fd, const char *peer_name,
			      ipc_frame_cb on_frame, ipc_close_cb on_close, void *arg)
{
	struct ipc_chan *ch = xcalloc(1, sizeof(*ch));
	snprintf(ch->name, sizeof(ch->name), "%s", peer_name);
	ch->on_frame = on_frame;
	ch->on_close = on_close;
	ch->arg = arg;
	ch->c = conn_new(loop, fd, ipc_on_read, ipc_on_close, ch);
	if (ch->c == NULL) {
		free(ch);
		return NULL;
	}
	conn_set_watermarks(ch->c, IPC_OUT_HIGH, IPC_OUT_LOW, 1);
	ch->c->on_drain = ipc_on_drain;
	return ch;
}

void ipc_set_drain(struct ipc_chan *ch, ipc_drain_cb on_drain)
{
	ch->on_drain = on_drain;
}

int ipc_full(const struct ipc_chan *ch)
{
	return ch != NULL && conn_full(ch->c);
}

void ipc_chan_free(struct ipc_chan *ch)
{
	if (ch == NULL)
		return;
	conn_free(ch->c);
	free(ch);
}

int ipc_is_open(const struct ipc_chan *ch)
{
	return ch != NULL && !ch->closed;
}

size_t ipc_pending(const struct ipc_chan *ch)
{
	return buf_avail(&ch->c->out);
}

int ipc_send(struct ipc_chan *ch, uint32_t type, const void *payload, size_t len)
{
	if (ch == NULL || ch->closed)
		return -1;
	if (len > IPC_MAX_FRAME)
		fatal("ipc_send: frame of %zu bytes", len);
	uint32_t hdr[2] = {type, (uint32_t)len};
	conn_write(ch->c, hdr, sizeof(hdr));
	conn_write(ch->c, payload, len);
	return 0;
}

int ipc_send_wr(struct ipc_chan *ch, uint32_t type, struct ipc_wr *w)
{
	return ipc_send(ch, type, buf_head(&w->b), buf_avail(&w->b));
}

int ipc_send_wr_bytes(struct ipc_chan *ch, uint32_t type, struct ipc_wr *head, const void *p,
		      size_t n)
{
	size_t hlen = buf_avail(&head->b);
	if (ch == NULL || ch->closed)
		return -1;
	if (n > IPC_MAX_FRAME || hlen + 4 + n > IPC_MAX_FRAME)
		fatal("ipc_send_wr_bytes: frame of %zu bytes", hlen + 4 + n);
	uint32_t hdr[3] = {type, (uint32_t)(hlen + 4 + n), (uint32_t)n};
	conn_write(ch->c, hdr, 2 * sizeof(uint32_t));
	conn_write(ch->c, buf_head(&head->b), hlen);
	conn_write(ch->c, &hdr[2], sizeof(uint32_t));
	conn_write(ch->c, p, n);
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;
	while (n > 0) {
		ssize_t w = write(fd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	uint8_t *q = p;
	while (n > 0) {
		ssize_t r = read(fd, q, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

int ipc_write_frame_blocking(int fd, uint32_t type, const void *payload, size_t len)
{
	uint32_t hdr[2] = {type, (uint32_t)len};
	if (len > IPC_MAX_FRAME)
		return -1;
	if (write_all(fd, hdr, sizeof(hdr)) < 0)
		return -1;
	return write_all(fd, payload, len);
}

long ipc_read_frame_blocking(int fd, uint32_t *type, uint8_t **out)
{
	uint32_t hdr[2];
	if (read_all(fd, hdr, sizeof(hdr)) < 0)
		return -1;
	if (hdr[1] > IPC_MAX_FRAME)
		return -1;
	*type = hdr[0];
	*out = xmalloc(hdr[1] + 1);
	if (read_all(fd, *out, hdr[1]) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	(*out)[hdr[1]] = '\0';
	return (long)hdr[1];
}

/* Payload codec. */

void ipc_wr_init(struct ipc_wr *w)
{
	buf_init(&w->b);
}

void ipc_wr_free(struct ipc_wr *w)
{
	buf_free(&w->b);
}

void ipc_put_u32(struct ipc_wr *w, uint32_t v)
{
	buf_append(&w->b, &v, sizeof(v));
}

void ipc_put_u64(struct ipc_wr *w, uint64_t v)
{
	buf_append(&w->b, &v, sizeof(v));
}

void ipc_put_i64(struct ipc_wr *w, int64_t v)
{
	buf_append(&w->b, &v, sizeof(v));
}

void ipc_put_bytes(struct ipc_wr *w, const void *p, size_t n)
{
	if (n > IPC_MAX_FRAME)
		fatal("ipc_put_bytes: %zu bytes", n);
	ipc_put_u32(w, (uint32_t)n);
	buf_append(&w->b, p, n);
}

void ipc_put_str(struct ipc_wr *w, const char *s)
{
	ipc_put_bytes(w, s ? s : "", s ? strlen(s) : 0);
}

void ipc_put_strv(struct ipc_wr *w, struct ipc_str s)
{
	ipc_put_bytes(w, s.p, s.n);
}

size_t ipc_put_bytes_open(struct ipc_wr *w)
{
	size_t open = buf_avail(&w->b);
	ipc_put_u32(w, 0);
	return open;
}

void ipc_put_bytes_close(struct ipc_wr *w, size_t open)
{
	size_t n = buf_avail(&w->b) - open - sizeof(uint32_t);
	if (n > IPC_MAX_FRAME)
		fatal("ipc_put_bytes_close: %zu bytes", n);
	uint32_t n32 = (uint32_t)n;
	memcpy(buf_head(&w->b) + open, &n32, sizeof(n32));
}

struct ipc_str ipc_str(const char *s)
{
	return (struct ipc_str){s ? s : "", s ? strlen(s) : 0};
}

int ipc_str_copy(char *dst, size_t dstsz, struct ipc_str s)
{
	if (s.n >= dstsz)
		return -1;
	memcpy(dst, s.p, s.n);
	dst[s.n] = '\0';
	return 0;
}

char *ipc_str_dup(struct ipc_str s)
{
	return xstrndup(s.p, s.n);
}

void ipc_rd_init(struct ipc_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

static const uint8_t *ipc_take(struct ipc_rd *r, size_t n)
{
	if (r->err || r->len - r->off < n) {
		r->err = 1;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint32_t ipc_get_u32(struct ipc_rd *r)
{
	uint32_t v = 0;
	const uint8_t *p = ipc_take(r, sizeof(v));
	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t ipc_get_u64(struct ipc_rd *r)
{
	uint64_t v = 0;
	const uint8_t *p = ipc_take(r, sizeof(v));
	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

int64_t ipc_get_i64(struct ipc_rd *r)
{
	int64_t v = 0;
	const uint8_t *p = ipc_take(r, sizeof(v));
	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

const uint8_t *ipc_get_bytes(struct ipc_rd *r, size_t *n)
{
	uint32_t len = ipc_get_u32(r);
	const uint8_t *p = ipc_take(r, len);
	*n = p ? len : 0;
	return p;
}

struct ipc_str ipc_get_strv(struct ipc_rd *r)
{
	size_t n;
	const uint8_t *p = ipc_get_bytes(r, &n);
	if (p == NULL || memchr(p, '\0', n) != NULL) {
		r->err = 1;
		return (struct ipc_str){"", 0};
	}
	return (struct ipc_str){(const char *)p, n};
}

struct ipc_bytes ipc_get_bytesv(struct ipc_rd *r)
{
	struct ipc_bytes b;
	b.p = ipc_get_bytes(r, &b.n);
	return b;
}

void ipc_get_str(struct ipc_rd *r, char *dst, size_t dstsz)
{
	struct ipc_str s = ipc_get_strv(r);
	if (r->err || ipc_str_copy(dst, dstsz, s) < 0) {
		r->err = 1;
		if (dstsz > 0)
			dst[0] = '\0';
	}
}

char *ipc_get_strdup(struct ipc_rd *r)
{
	struct ipc_str s = ipc_get_strv(r);
	return r->err ? NULL : ipc_str_dup(s);
}

int ipc_rd_done(const struct ipc_rd *r)
{
	return (r->err || r->off != r->len) ? -1 : 0;
}
