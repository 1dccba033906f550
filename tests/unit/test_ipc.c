/*
 * test_ipc.c - IPC framing and the payload codec: frames split across
 * reads, several in one read, oversized headers and garbage; codec round
 * trips and malformed payloads; real channels over a socketpair.
 */
#include "common/event.h"
#include "common/ipc.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Frame bytes as a peer writes them: header in host order, then payload. */
static size_t frame(uint8_t *dst, uint32_t type, const void *payload, uint32_t len)
{
	memcpy(dst, &type, 4);
	memcpy(dst + 4, &len, 4);
	if (len)
		memcpy(dst + IPC_HDR_SIZE, payload, len);
	return IPC_HDR_SIZE + len;
}

/* Copies into an exact-size heap block so that valgrind sees any overread. */
static enum ipc_parse_result parse_exact(const uint8_t *p, size_t n, uint32_t *type,
					 uint32_t *len)
{
	uint8_t *copy = malloc(n ? n : 1);
	memcpy(copy, p, n);
	enum ipc_parse_result r = ipc_parse_frame(copy, n, type, len);
	free(copy);
	return r;
}

/* Parser. */

START_TEST(test_parse_split)
{
	static const size_t sizes[] = {0, 1, 7, 8, 100, 4096};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t plen = sizes[s];
		uint8_t *payload = malloc(plen + 1), *buf = malloc(IPC_HDR_SIZE + plen);
		for (size_t i = 0; i < plen; i++)
			payload[i] = (uint8_t)(i * 7);
		size_t n = frame(buf, 42, payload, (uint32_t)plen);
		uint32_t type, len;
		/* Every prefix is incomplete, whatever it cuts. */
		for (size_t k = 0; k < n; k++)
			ck_assert_msg(parse_exact(buf, k, &type, &len) == IPC_PARSE_NEED_MORE,
				      "payload %zu, prefix %zu", plen, k);
		ck_assert_int_eq(parse_exact(buf, n, &type, &len), IPC_PARSE_FRAME);
		ck_assert_uint_eq(type, 42);
		ck_assert_uint_eq(len, plen);
		free(payload);
		free(buf);
	}
}
END_TEST

START_TEST(test_parse_several)
{
	static const char *const payloads[] = {"one", "", "three three", "4"};
	uint8_t buf[256];
	size_t n = 0;
	for (uint32_t i = 0; i < 4; i++)
		n += frame(buf + n, 100 + i, payloads[i], (uint32_t)strlen(payloads[i]));
	/* And half a fifth frame. */
	size_t whole = n;
	n += frame(buf + n, 9, "tail", 4) - 2;

	size_t off = 0;
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t type, len;
		ck_assert_int_eq(ipc_parse_frame(buf + off, n - off, &type, &len), IPC_PARSE_FRAME);
		ck_assert_uint_eq(type, 100 + i);
		ck_assert_uint_eq(len, strlen(payloads[i]));
		ck_assert(memcmp(buf + off + IPC_HDR_SIZE, payloads[i], len) == 0);
		off += IPC_HDR_SIZE + len;
	}
	ck_assert_uint_eq(off, whole);
	uint32_t type, len;
	ck_assert_int_eq(ipc_parse_frame(buf + off, n - off, &type, &len), IPC_PARSE_NEED_MORE);
}
END_TEST

static const struct {
	uint32_t len;
	size_t have; /* bytes available: only the header, or more */
	enum ipc_parse_result want;
} sizes_tbl[] = {
	{IPC_MAX_FRAME, IPC_HDR_SIZE, IPC_PARSE_NEED_MORE},
	{IPC_MAX_FRAME + 1, IPC_HDR_SIZE, IPC_PARSE_TOO_BIG},
	{IPC_MAX_FRAME + 1, IPC_HDR_SIZE + 100, IPC_PARSE_TOO_BIG},
	{0x7fffffffu, IPC_HDR_SIZE, IPC_PARSE_TOO_BIG},
	{0xffffffffu, IPC_HDR_SIZE, IPC_PARSE_TOO_BIG},
	{0x80000000u, IPC_HDR_SIZE, IPC_PARSE_TOO_BIG},
	{0, IPC_HDR_SIZE, IPC_PARSE_FRAME},
};

START_TEST(test_parse_oversized)
{
	uint8_t *buf = calloc(1, sizes_tbl[_i].have);
	uint32_t type = 7, got_type, got_len;
	memcpy(buf, &type, 4);
	memcpy(buf + 4, &sizes_tbl[_i].len, 4);
	ck_assert_int_eq(parse_exact(buf, sizes_tbl[_i].have, &got_type, &got_len),
			 sizes_tbl[_i].want);
	free(buf);
}
END_TEST

/* Random bytes: the parser never claims more than it was given. */
START_TEST(test_parse_garbage)
{
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		uint8_t buf[64];
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		/* Small lengths now and then, so that whole frames occur too. */
		if (n >= IPC_HDR_SIZE && round % 2)
			buf[5] = buf[6] = buf[7] = 0, buf[4] %= 64;
		uint32_t type, len;
		switch (parse_exact(buf, n, &type, &len)) {
		case IPC_PARSE_FRAME:
			ck_assert_uint_ge(n, IPC_HDR_SIZE + (size_t)len);
			break;
		case IPC_PARSE_TOO_BIG:
			ck_assert_uint_ge(n, IPC_HDR_SIZE);
			ck_assert_uint_gt(len, IPC_MAX_FRAME);
			break;
		case IPC_PARSE_NEED_MORE:
			ck_assert(n < IPC_HDR_SIZE || n < IPC_HDR_SIZE + (size_t)len);
			break;
		}
	}
}
END_TEST

/* Payload codec. */

START_TEST(test_codec_roundtrip)
{
	struct ipc_wr w;
	static const uint8_t bin[] = {0, 1, 2, 0, 255};
	char s[16];
	size_t n;

	ipc_wr_init(&w);
	ipc_put_u32(&w, 0xdeadbeef);
	ipc_put_u64(&w, 0x0123456789abcdefull);
	ipc_put_i64(&w, -42);
	ipc_put_str(&w, "hello");
	ipc_put_str(&w, "");
	ipc_put_str(&w, NULL);
	ipc_put_bytes(&w, bin, sizeof(bin));
	ipc_put_str(&w, "dup me");
	ipc_put_bytes(&w, NULL, 0);

	struct ipc_rd r;
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_uint_eq(ipc_get_u32(&r), 0xdeadbeef);
	ck_assert_uint_eq(ipc_get_u64(&r), 0x0123456789abcdefull);
	ck_assert_int_eq(ipc_get_i64(&r), -42);
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_str_eq(s, "hello");
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_str_eq(s, "");
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_str_eq(s, "");
	const uint8_t *p = ipc_get_bytes(&r, &n);
	ck_assert_uint_eq(n, sizeof(bin));
	ck_assert(memcmp(p, bin, n) == 0);
	char *d = ipc_get_strdup(&r);
	ck_assert_str_eq(d, "dup me");
	free(d);
	ipc_get_bytes(&r, &n);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(ipc_rd_done(&r), 0);
	ipc_wr_free(&w);
}
END_TEST

/* Every truncation of a valid payload is an error, never a read past it. */
START_TEST(test_codec_truncated)
{
	struct ipc_wr w;
	char s[32];
	size_t n;

	ipc_wr_init(&w);
	ipc_put_u32(&w, 1);
	ipc_put_str(&w, "a string");
	ipc_put_u64(&w, 2);
	ipc_put_bytes(&w, "xyz", 3);
	ipc_put_i64(&w, 3);
	size_t total = buf_avail(&w.b);
	for (size_t k = 0; k < total; k++) {
		uint8_t *copy = malloc(k ? k : 1);
		memcpy(copy, buf_head(&w.b), k);
		struct ipc_rd r;
		ipc_rd_init(&r, copy, k);
		ipc_get_u32(&r);
		ipc_get_str(&r, s, sizeof(s));
		ipc_get_u64(&r);
		ipc_get_bytes(&r, &n);
		int64_t last = ipc_get_i64(&r);
		ck_assert_msg(r.err != 0, "truncated at %zu", k);
		ck_assert_int_eq(ipc_rd_done(&r), -1);
		ck_assert_int_eq(last, 0);
		free(copy);
	}
	ipc_wr_free(&w);
}
END_TEST

START_TEST(test_codec_errors)
{
	struct ipc_wr w;
	struct ipc_rd r;
	char s[8];
	size_t n;

	/* A string longer than the destination. */
	ipc_wr_init(&w);
	ipc_put_str(&w, "12345678");
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_int_ne(r.err, 0);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(ipc_rd_done(&r), -1);
	/* One shorter fits exactly. */
	buf_reset(&w.b);
	ipc_put_str(&w, "1234567");
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(s, "1234567");

	/* A NUL inside a string field. */
	buf_reset(&w.b);
	ipc_put_bytes(&w, "ab\0cd", 5);
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_int_ne(r.err, 0);
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_ptr_null(ipc_get_strdup(&r));
	ck_assert_int_ne(r.err, 0);

	/* A length field larger than what follows. */
	buf_reset(&w.b);
	ipc_put_u32(&w, 1000);
	buf_append(&w.b, "short", 5);
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_ptr_null(ipc_get_bytes(&r, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_ne(r.err, 0);
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_ptr_null(ipc_get_strdup(&r));
	ck_assert_int_ne(r.err, 0);
	/* A huge one does not wrap around. */
	buf_reset(&w.b);
	ipc_put_u32(&w, 0xffffffffu);
	buf_append(&w.b, "x", 1);
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_ptr_null(ipc_get_bytes(&r, &n));
	ck_assert_int_ne(r.err, 0);

	/* After the first error every read gives zero, even if bytes remain. */
	buf_reset(&w.b);
	ipc_put_u32(&w, 5);
	ipc_put_u32(&w, 6);
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	r.err = 1;
	ck_assert_uint_eq(ipc_get_u32(&r), 0);

	/* Left-over bytes make the payload malformed. */
	ipc_rd_init(&r, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_uint_eq(ipc_get_u32(&r), 5);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(ipc_rd_done(&r), -1);
	ck_assert_uint_eq(ipc_get_u32(&r), 6);
	ck_assert_int_eq(ipc_rd_done(&r), 0);
	ipc_wr_free(&w);
}
END_TEST

/* Channels over a socketpair on a real loop. */

#define GUARD_MS 3000

struct got_frame {
	uint32_t type;
	size_t len;
	uint8_t *data;
};

struct chan_test {
	struct ev_loop *loop;
	struct ipc_chan *ch;
	int peer;                 /* the test's end, blocking */
	struct got_frame frames[16];
	int nframes;
	int want_frames;          /* break when reached */
	int closes;
	int free_in_frame;        /* free the channel from on_frame */
	int free_in_close;        /* free the channel from on_close */
	struct ev_timer guard, drip;
	const uint8_t *drip_p;    /* bytes written one per timer tick */
	size_t drip_left;
};

static void ct_on_frame(struct ipc_chan *ch, uint32_t type, const uint8_t *payload, size_t len,
			void *arg)
{
	struct chan_test *t = arg;
	ck_assert_ptr_eq(ch, t->ch);
	ck_assert_int_lt(t->nframes, 16);
	struct got_frame *f = &t->frames[t->nframes++];
	f->type = type;
	f->len = len;
	f->data = malloc(len + 1);
	memcpy(f->data, payload, len);
	if (t->free_in_frame) {
		ipc_chan_free(ch);
		t->ch = NULL;
		ev_break(t->loop);
		return;
	}
	if (t->nframes == t->want_frames)
		ev_break(t->loop);
}

static void ct_on_close(struct ipc_chan *ch, void *arg)
{
	struct chan_test *t = arg;
	ck_assert_ptr_eq(ch, t->ch);
	t->closes++;
	if (t->free_in_close) {
		ipc_chan_free(ch);
		t->ch = NULL;
	}
	ev_break(t->loop);
}

static void ct_guard(void *arg)
{
	struct chan_test *t = arg;
	ck_abort_msg("timed out with %d frames, %d closes", t->nframes, t->closes);
}

static void ct_drip(void *arg)
{
	struct chan_test *t = arg;
	if (t->drip_left == 0)
		return;
	ck_assert_int_eq(write(t->peer, t->drip_p, 1), 1);
	t->drip_p++;
	t->drip_left--;
	if (t->drip_left > 0)
		ev_timer_start(t->loop, &t->drip, 1);
}

static void break_cb(void *loop)
{
	ev_break(loop);
}

static void ct_init(struct chan_test *t)
{
	int sv[2];
	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->loop = ev_loop_new();
	t->peer = sv[1];
	t->ch = ipc_chan_new(t->loop, sv[0], "test", ct_on_frame, ct_on_close, t);
	ck_assert_ptr_nonnull(t->ch);
	ck_assert(ipc_is_open(t->ch));
	ev_timer_init(&t->guard, ct_guard, t);
	ev_timer_start(t->loop, &t->guard, GUARD_MS);
	ev_timer_init(&t->drip, ct_drip, t);
}

static void ct_free(struct chan_test *t)
{
	for (int i = 0; i < t->nframes; i++)
		free(t->frames[i].data);
	ipc_chan_free(t->ch);
	if (t->peer >= 0)
		close(t->peer);
	ev_loop_free(t->loop);
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;
	while (n > 0) {
		ssize_t w = write(fd, q, n);
		ck_assert_int_gt(w, 0);
		q += w;
		n -= (size_t)w;
	}
}

START_TEST(test_chan_batched_and_dribbled)
{
	struct chan_test t;
	static const char *const payloads[] = {"first", "", "third payload", "dribbled frame"};
	uint8_t batch[128], drip[64];
	size_t n = 0;

	ct_init(&t);
	for (uint32_t i = 0; i < 3; i++)
		n += frame(batch + n, 10 + i, payloads[i], (uint32_t)strlen(payloads[i]));
	size_t dn = frame(drip, 13, payloads[3], (uint32_t)strlen(payloads[3]));
	/* Three frames in one write, then one byte per loop tick. */
	write_all(t.peer, batch, n);
	t.drip_p = drip;
	t.drip_left = dn;
	ev_timer_start(t.loop, &t.drip, 1);
	t.want_frames = 4;
	ck_assert_int_eq(ev_run(t.loop), 0);
	ck_assert_int_eq(t.nframes, 4);
	ck_assert_uint_eq(t.drip_left, 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(t.frames[i].type, 10 + (uint32_t)i);
		ck_assert_uint_eq(t.frames[i].len, strlen(payloads[i]));
		ck_assert(memcmp(t.frames[i].data, payloads[i], t.frames[i].len) == 0);
	}
	ck_assert_int_eq(t.closes, 0);
	ck_assert(ipc_is_open(t.ch));
	ct_free(&t);
}
END_TEST

/*
 * The biggest frames allowed get through whole, after a first frame of
 * some size (or none) that shifts where the reads cut them.
 */
static const struct {
	long lead; /* payload of a first small frame, -1: none */
	size_t big;
} max_cases[] = {
	{-1, IPC_MAX_FRAME}, {0, IPC_MAX_FRAME}, {1, IPC_MAX_FRAME}, {1000, IPC_MAX_FRAME},
	{-1, IPC_MAX_FRAME - IPC_HDR_SIZE}, {-1, 200 * 1024}, {5, 200 * 1024},
	/*
	 * Reads of 16K: the input limit is reached just after a whole frame,
	 * with the next one still in the socket; reading must resume.
	 */
	{16 * 1024 - IPC_HDR_SIZE, IPC_MAX_FRAME}, {32 * 1024 - IPC_HDR_SIZE, IPC_MAX_FRAME},
	{48 * 1024 - IPC_HDR_SIZE, IPC_MAX_FRAME},
};

START_TEST(test_chan_max_frame)
{
	struct chan_test t;
	size_t big = max_cases[_i].big, n = 0;
	long lead = max_cases[_i].lead;
	uint8_t *buf = malloc(3 * IPC_HDR_SIZE + big + (lead > 0 ? (size_t)lead : 0) + 1);
	uint8_t *payload = malloc(big);
	for (size_t i = 0; i < big; i++)
		payload[i] = (uint8_t)(i * 13 + 1);
	if (lead >= 0)
		n += frame(buf, 1, payload, (uint32_t)lead);
	n += frame(buf + n, 2, payload, (uint32_t)big);
	n += frame(buf + n, 3, "b", 1);

	ct_init(&t);
	/* The peer writes from a process of its own, as far ahead as it may. */
	int sndbuf = 1 << 20;
	setsockopt(t.peer, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		write_all(t.peer, buf, n);
		_exit(0);
	}
	t.want_frames = lead >= 0 ? 3 : 2;
	ck_assert_int_eq(ev_run(t.loop), 0);
	ck_assert_int_eq(t.nframes, t.want_frames);
	struct got_frame *f = &t.frames[t.nframes - 2];
	ck_assert_uint_eq(f->type, 2);
	ck_assert_uint_eq(f->len, big);
	ck_assert(memcmp(f->data, payload, big) == 0);
	ck_assert_uint_eq(t.frames[t.nframes - 1].type, 3);
	ck_assert_int_eq(t.closes, 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ct_free(&t);
	free(buf);
	free(payload);
}
END_TEST

static const struct {
	int good_first;    /* a good frame precedes the bad header */
	int free_in_close;
} oversized_cases[] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};

START_TEST(test_chan_oversized_closes)
{
	struct chan_test t;
	uint8_t buf[64];
	size_t n = 0;

	ct_init(&t);
	t.free_in_close = oversized_cases[_i].free_in_close;
	if (oversized_cases[_i].good_first)
		n += frame(buf, 5, "ok", 2);
	uint32_t hdr[2] = {6, IPC_MAX_FRAME + 1};
	memcpy(buf + n, hdr, sizeof(hdr));
	n += sizeof(hdr);
	memcpy(buf + n, "garbage follows", 15);
	n += 15;
	write_all(t.peer, buf, n);
	ck_assert_int_eq(ev_run(t.loop), 0);
	ck_assert_int_eq(t.closes, 1);
	ck_assert_int_eq(t.nframes, oversized_cases[_i].good_first);
	if (t.ch) {
		ck_assert(!ipc_is_open(t.ch));
		ck_assert_int_eq(ipc_send(t.ch, 1, "x", 1), -1);
		/* More input after the close reaches nobody. */
		write_all(t.peer, buf, n);
		struct ev_timer stop;
		ev_timer_init(&stop, break_cb, t.loop);
		ev_timer_start(t.loop, &stop, 20);
		ck_assert_int_eq(ev_run(t.loop), 0);
		ck_assert_int_eq(t.closes, 1);
	}
	ck_assert_int_eq(t.nframes, oversized_cases[_i].good_first);
	ct_free(&t);
}
END_TEST

START_TEST(test_chan_peer_closes)
{
	struct chan_test t;
	uint8_t buf[32];
	ct_init(&t);
	/* A whole frame and half a header, then EOF: the frame still arrives. */
	size_t n = frame(buf, 8, "last", 4);
	memcpy(buf + n, "\x01\x00\x00", 3);
	write_all(t.peer, buf, n + 3);
	close(t.peer);
	t.peer = -1;
	ck_assert_int_eq(ev_run(t.loop), 0);
	ck_assert_int_eq(t.nframes, 1);
	ck_assert_uint_eq(t.frames[0].type, 8);
	ck_assert_int_eq(t.closes, 1);
	ck_assert(!ipc_is_open(t.ch));
	ct_free(&t);
}
END_TEST

/* Freed from inside on_frame with more frames buffered: no further calls. */
START_TEST(test_chan_free_in_frame)
{
	struct chan_test t;
	uint8_t buf[64];
	ct_init(&t);
	t.free_in_frame = 1;
	size_t n = frame(buf, 1, "x", 1);
	n += frame(buf + n, 2, "y", 1);
	write_all(t.peer, buf, n);
	ck_assert_int_eq(ev_run(t.loop), 0);
	ck_assert_int_eq(t.nframes, 1);
	ck_assert_ptr_null(t.ch);
	ck_assert_int_eq(t.closes, 0);
	ct_free(&t);
}
END_TEST

/* Sending: frames queued on the channel arrive whole, in order. */
START_TEST(test_chan_send)
{
	struct chan_test t;
	struct ipc_wr w;
	ct_init(&t);
	ck_assert_int_eq(ipc_send(t.ch, 20, "abc", 3), 0);
	ipc_wr_init(&w);
	ipc_put_str(&w, "sender@example.org");
	ipc_put_u64(&w, 99);
	ck_assert_int_eq(ipc_send_wr(t.ch, 21, &w), 0);
	ipc_wr_free(&w);
	ck_assert_int_eq(ipc_send(t.ch, 22, NULL, 0), 0);
	ck_assert_uint_gt(ipc_pending(t.ch), 0);
	/* One loop pass flushes the output. */
	struct ev_timer stop;
	ev_timer_init(&stop, break_cb, t.loop);
	ev_timer_start(t.loop, &stop, 20);
	ck_assert_int_eq(ev_run(t.loop), 0);
	ck_assert_uint_eq(ipc_pending(t.ch), 0);

	uint32_t type;
	uint8_t *p;
	ck_assert_int_eq(ipc_read_frame_blocking(t.peer, &type, &p), 3);
	ck_assert_uint_eq(type, 20);
	ck_assert_str_eq((char *)p, "abc");
	free(p);
	long n = ipc_read_frame_blocking(t.peer, &type, &p);
	ck_assert_uint_eq(type, 21);
	struct ipc_rd r;
	char s[64];
	ipc_rd_init(&r, p, (size_t)n);
	ipc_get_str(&r, s, sizeof(s));
	ck_assert_str_eq(s, "sender@example.org");
	ck_assert_uint_eq(ipc_get_u64(&r), 99);
	ck_assert_int_eq(ipc_rd_done(&r), 0);
	free(p);
	ck_assert_int_eq(ipc_read_frame_blocking(t.peer, &type, &p), 0);
	ck_assert_uint_eq(type, 22);
	free(p);
	ct_free(&t);
}
END_TEST

/* A frame sent with its byte field apart is the frame ipc_put_bytes builds. */
START_TEST(test_chan_send_wr_bytes)
{
	static const size_t sizes[] = {0, 1, 4096, IPC_CHUNK_SIZE};
	struct chan_test t;
	ct_init(&t);
	uint8_t *data = malloc(IPC_CHUNK_SIZE);
	for (size_t i = 0; i < IPC_CHUNK_SIZE; i++)
		data[i] = (uint8_t)(i * 7);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct ipc_wr head, whole;
		ipc_wr_init(&head);
		ipc_put_u64(&head, 1000 + k);
		ck_assert_int_eq(ipc_send_wr_bytes(t.ch, 51, &head, data, sizes[k]), 0);
		ipc_wr_init(&whole);
		ipc_put_u64(&whole, 1000 + k);
		ipc_put_bytes(&whole, data, sizes[k]);
		struct ev_timer stop;
		ev_timer_init(&stop, break_cb, t.loop);
		ev_timer_start(t.loop, &stop, 20);
		ck_assert_int_eq(ev_run(t.loop), 0);
		uint32_t type;
		uint8_t *p;
		long n = ipc_read_frame_blocking(t.peer, &type, &p);
		ck_assert_uint_eq(type, 51);
		ck_assert_int_eq(n, (long)buf_avail(&whole.b));
		ck_assert_mem_eq(p, buf_head(&whole.b), (size_t)n);
		free(p);
		ipc_wr_free(&head);
		ipc_wr_free(&whole);
	}
	free(data);
	ct_free(&t);
}
END_TEST

/* The blocking helpers refuse an oversized frame in both directions. */
START_TEST(test_blocking_oversized)
{
	int sv[2];
	uint32_t type;
	uint8_t *p = NULL;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	uint32_t hdr[2] = {1, IPC_MAX_FRAME + 1};
	write_all(sv[1], hdr, sizeof(hdr));
	ck_assert_int_eq(ipc_read_frame_blocking(sv[0], &type, &p), -1);
	ck_assert_ptr_null(p);
	static uint8_t big[IPC_MAX_FRAME + 1];
	ck_assert_int_eq(ipc_write_frame_blocking(sv[1], 1, big, sizeof(big)), -1);
	/* A truncated frame before EOF is an error, not a short payload. */
	hdr[1] = 10;
	write_all(sv[1], hdr, sizeof(hdr));
	write_all(sv[1], "abc", 3);
	close(sv[1]);
	ck_assert_int_eq(ipc_read_frame_blocking(sv[0], &type, &p), -1);
	ck_assert_ptr_null(p);
	close(sv[0]);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *ipc_suite(void)
{
	Suite *s = suite_create("ipc");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_split);
	tcase_add_test(tc, test_parse_several);
	tcase_add_loop_test(tc, test_parse_oversized, 0, N(sizes_tbl));
	tcase_add_test(tc, test_parse_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("codec");
	tcase_add_test(tc, test_codec_roundtrip);
	tcase_add_test(tc, test_codec_truncated);
	tcase_add_test(tc, test_codec_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("channel");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_chan_batched_and_dribbled);
	tcase_add_loop_test(tc, test_chan_max_frame, 0, N(max_cases));
	tcase_add_loop_test(tc, test_chan_oversized_closes, 0, N(oversized_cases));
	tcase_add_test(tc, test_chan_peer_closes);
	tcase_add_test(tc, test_chan_free_in_frame);
	tcase_add_test(tc, test_chan_send);
	tcase_add_test(tc, test_chan_send_wr_bytes);
	tcase_add_test(tc, test_blocking_oversized);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ipc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
