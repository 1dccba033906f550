/*
 * test_ipc_msg.c - every message of ipc_msg.h, from one table: encode a
 * sample, check its bytes against the layout ipc_types.h documents
 * (written here field by field with ipc_put_*), decode it back and compare,
 * and refuse every truncated payload and one with a byte too many. Then
 * the zero-copy heads of the content messages, and the bounds decoders
 * enforce (argument and recipient counts, a NUL inside a string).
 */
#include "common/ipc.h"
#include "common/ipc_msg.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define STR(s) {s, sizeof(s) - 1}
#define BYTES(s) {(const uint8_t *)s, sizeof(s) - 1}

static int str_eq(struct ipc_str a, struct ipc_str b)
{
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int bytes_eq(struct ipc_bytes a, struct ipc_bytes b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Samples: values wide enough that a field written at the wrong width shows. */
static const struct ipc_msg_health s_health = {0xdeadbeef};
static const struct ipc_msg_cfg_file s_cfg_file = {STR("/etc/relayd/key.pem"), 1,
						   BYTES("-----BEGIN\0KEY-----")};
static const struct ipc_msg_cfg_start s_cfg_start = {STR("/etc/relayd.conf"), 3};
static const struct ipc_msg_text s_text = {STR("line 3: unknown directive")};
static const struct ipc_msg_ctl_req s_ctl_req = {0x1234, 3, {STR("queue"), STR("--json"), STR("")}};
static const struct ipc_msg_ctl_rep s_ctl_rep = {0x1201, 2, STR("usage: relayctl ...\n")};
static const struct ipc_msg_ctl_part s_ctl_part = {0x1202, BYTES("part\0of the output")};
static const struct ipc_msg_q_hello s_q_hello = {2};
static const struct ipc_msg_q_hello_ok s_q_hello_ok = {1, 4242};
static const struct ipc_msg_q_begin s_q_begin = {
	0x0102030405060708ULL, STR("4XKQ2N7Z1C0001"), STR("a@lan.test"), STR("192.0.2.1"),
	STR("client.lan.test"), STR(""), 3, -1234567890123LL, 500001, 2, STR("env-42"),
};
static const struct ipc_msg_q_rcpt s_q_rcpt = {0x8000000000000001ULL, STR("b@remote.example"),
					       0xe, STR("rfc822;b@orig.example")};
static const struct ipc_msg_q_content s_q_content = {99, BYTES("Subject: x\r\n\r\nbody\r\n")};
static const struct ipc_msg_q_end s_q_end = {99, 0xffffffff01ULL};
static const struct ipc_msg_id s_id = {0xfedcba9876543210ULL};
static const struct ipc_msg_q_committed s_q_committed = {77, STR("4XKQ2N7Z1C0002")};
static const struct ipc_msg_q_failed s_q_failed = {78, 452, STR("4.3.1"),
						  STR("Insufficient system storage")};
static const struct ipc_msg_d_ready s_d_ready = {400};
static const struct ipc_msg_d_job s_d_job = {
	.jobid = 5, .qid = STR("4XKQ2N7Z1C0003"), .sender = STR(""), .domain = STR("remote.example"),
	.size = 0x100000001ULL, .body_flags = 1, .arrival = 1700000000, .arrival_usec = 999999,
	.dsn_ret = 1, .envid = STR("env 7"), .nrcpt = 2,
	.rcpts = {{11, STR("x@remote.example"), 0, STR("")},
		  {0x7fffffffffffffffULL, STR("y@remote.example"), 1, STR("utf-8;y@r")}},
};
static const struct ipc_msg_d_chunk_req s_d_chunk_req = {5, 0xfffffffe};
static const struct ipc_msg_d_chunk s_d_chunk = {5, 1, 1, BYTES("last piece\r\n")};
static const struct ipc_msg_d_result s_d_result = {
	5, 11, 3, 550, STR("5.1.1"), STR("host mx[192.0.2.9] said: 550 5.1.1 User unknown"),
	STR("mx.remote.example[192.0.2.9]:25"), STR("550 5.1.1 User unknown"), 0x80000001,
};
static const struct ipc_msg_d_suspended s_d_suspended = {
	6, 1767225661, STR("4.4.1"), STR("delivery temporarily suspended: connect refused"),
};
static const struct ipc_msg_d_trace s_d_trace = {
	7, STR("01:02:03.004 > EHLO relay.example\n01:02:03.010 < 250 mx.example\n"),
};

/* The layouts of ipc_types.h, field by field. */
static void gold_health(struct ipc_wr *w)
{
	ipc_put_u32(w, 0xdeadbeef);
}
static void gold_cfg_file(struct ipc_wr *w)
{
	ipc_put_str(w, "/etc/relayd/key.pem");
	ipc_put_u32(w, 1);
	ipc_put_bytes(w, "-----BEGIN\0KEY-----", 19);
}
static void gold_cfg_start(struct ipc_wr *w)
{
	ipc_put_str(w, "/etc/relayd.conf");
	ipc_put_u32(w, 3);
}
static void gold_text(struct ipc_wr *w)
{
	ipc_put_str(w, "line 3: unknown directive");
}
static void gold_ctl_req(struct ipc_wr *w)
{
	ipc_put_u32(w, 0x1234);
	ipc_put_u32(w, 3);
	ipc_put_str(w, "queue");
	ipc_put_str(w, "--json");
	ipc_put_str(w, "");
}
static void gold_ctl_rep(struct ipc_wr *w)
{
	ipc_put_u32(w, 0x1201);
	ipc_put_u32(w, 2);
	ipc_put_str(w, "usage: relayctl ...\n");
}
static void gold_ctl_part(struct ipc_wr *w)
{
	ipc_put_u32(w, 0x1202);
	ipc_put_bytes(w, "part\0of the output", 18);
}
static void gold_q_hello(struct ipc_wr *w)
{
	ipc_put_u32(w, 2);
}
static void gold_q_hello_ok(struct ipc_wr *w)
{
	ipc_put_u32(w, 1);
	ipc_put_u32(w, 4242);
}
static void gold_q_begin(struct ipc_wr *w)
{
	ipc_put_u64(w, 0x0102030405060708ULL);
	ipc_put_str(w, "4XKQ2N7Z1C0001");
	ipc_put_str(w, "a@lan.test");
	ipc_put_str(w, "192.0.2.1");
	ipc_put_str(w, "client.lan.test");
	ipc_put_str(w, NULL);
	ipc_put_u32(w, 3);
	ipc_put_i64(w, -1234567890123LL);
	ipc_put_u32(w, 500001);
	ipc_put_u32(w, 2);
	ipc_put_str(w, "env-42");
}
static void gold_q_rcpt(struct ipc_wr *w)
{
	ipc_put_u64(w, 0x8000000000000001ULL);
	ipc_put_str(w, "b@remote.example");
	ipc_put_u32(w, 0xe);
	ipc_put_str(w, "rfc822;b@orig.example");
}
static void gold_q_content(struct ipc_wr *w)
{
	ipc_put_u64(w, 99);
	ipc_put_bytes(w, "Subject: x\r\n\r\nbody\r\n", 20);
}
static void gold_q_end(struct ipc_wr *w)
{
	ipc_put_u64(w, 99);
	ipc_put_u64(w, 0xffffffff01ULL);
}
static void gold_id(struct ipc_wr *w)
{
	ipc_put_u64(w, 0xfedcba9876543210ULL);
}
static void gold_q_committed(struct ipc_wr *w)
{
	ipc_put_u64(w, 77);
	ipc_put_str(w, "4XKQ2N7Z1C0002");
}
static void gold_q_failed(struct ipc_wr *w)
{
	ipc_put_u64(w, 78);
	ipc_put_u32(w, 452);
	ipc_put_str(w, "4.3.1");
	ipc_put_str(w, "Insufficient system storage");
}
static void gold_d_ready(struct ipc_wr *w)
{
	ipc_put_u32(w, 400);
}
static void gold_d_job(struct ipc_wr *w)
{
	ipc_put_u64(w, 5);
	ipc_put_str(w, "4XKQ2N7Z1C0003");
	ipc_put_str(w, "");
	ipc_put_str(w, "remote.example");
	ipc_put_u64(w, 0x100000001ULL);
	ipc_put_u32(w, 1);
	ipc_put_i64(w, 1700000000);
	ipc_put_u32(w, 999999);
	ipc_put_u32(w, 1);
	ipc_put_str(w, "env 7");
	ipc_put_u32(w, 2);
	ipc_put_u64(w, 11);
	ipc_put_str(w, "x@remote.example");
	ipc_put_u32(w, 0);
	ipc_put_str(w, "");
	ipc_put_u64(w, 0x7fffffffffffffffULL);
	ipc_put_str(w, "y@remote.example");
	ipc_put_u32(w, 1);
	ipc_put_str(w, "utf-8;y@r");
}
static void gold_d_chunk_req(struct ipc_wr *w)
{
	ipc_put_u64(w, 5);
	ipc_put_u32(w, 0xfffffffe);
}
static void gold_d_chunk(struct ipc_wr *w)
{
	ipc_put_u64(w, 5);
	ipc_put_u32(w, 1);
	ipc_put_u32(w, 1);
	ipc_put_bytes(w, "last piece\r\n", 12);
}
static void gold_d_result(struct ipc_wr *w)
{
	ipc_put_u64(w, 5);
	ipc_put_u64(w, 11);
	ipc_put_u32(w, 3);
	ipc_put_u32(w, 550);
	ipc_put_str(w, "5.1.1");
	ipc_put_str(w, "host mx[192.0.2.9] said: 550 5.1.1 User unknown");
	ipc_put_str(w, "mx.remote.example[192.0.2.9]:25");
	ipc_put_str(w, "550 5.1.1 User unknown");
	ipc_put_u32(w, 0x80000001);
}

static void gold_d_suspended(struct ipc_wr *w)
{
	ipc_put_u64(w, 6);
	ipc_put_i64(w, 1767225661);
	ipc_put_str(w, "4.4.1");
	ipc_put_str(w, "delivery temporarily suspended: connect refused");
}

static void gold_d_trace(struct ipc_wr *w)
{
	ipc_put_u64(w, 7);
	ipc_put_str(w, "01:02:03.004 > EHLO relay.example\n01:02:03.010 < 250 mx.example\n");
}

/* Encoders of the samples, and decoders that compare with them: 0 equal,
 * 1 different, -1 refused. */
#define MSG_ROW_FNS(name, sample, equal)                                          \
	static void enc_##name(struct ipc_wr *w)                                   \
	{                                                                          \
		ipc_msg_##name##_encode(w, &sample);                               \
	}                                                                          \
	static int dec_##name(struct ipc_rd *r)                                    \
	{                                                                          \
		struct ipc_msg_##name m;                                           \
		const struct ipc_msg_##name *s = &sample;                          \
		memset(&m, 0xa5, sizeof(m));                                       \
		if (ipc_msg_##name##_decode(r, &m) < 0)                            \
			return -1;                                                 \
		return (equal) ? 0 : 1;                                            \
	}

MSG_ROW_FNS(health, s_health, m.token == s->token)
MSG_ROW_FNS(cfg_file, s_cfg_file,
	    str_eq(m.path, s->path) && m.first == s->first && bytes_eq(m.piece, s->piece))
MSG_ROW_FNS(cfg_start, s_cfg_start, str_eq(m.path, s->path) && m.nfds == s->nfds)
MSG_ROW_FNS(text, s_text, str_eq(m.text, s->text))
MSG_ROW_FNS(ctl_req, s_ctl_req,
	    m.reqid == s->reqid && m.argc == s->argc && str_eq(m.argv[0], s->argv[0]) &&
		    str_eq(m.argv[1], s->argv[1]) && str_eq(m.argv[2], s->argv[2]))
MSG_ROW_FNS(ctl_rep, s_ctl_rep,
	    m.reqid == s->reqid && m.status == s->status && str_eq(m.text, s->text))
MSG_ROW_FNS(ctl_part, s_ctl_part, m.reqid == s->reqid && bytes_eq(m.text, s->text))
MSG_ROW_FNS(q_hello, s_q_hello, m.role == s->role)
MSG_ROW_FNS(q_hello_ok, s_q_hello_ok, m.role == s->role && m.pid == s->pid)
MSG_ROW_FNS(q_begin, s_q_begin,
	    m.sid == s->sid && str_eq(m.qid, s->qid) && str_eq(m.sender, s->sender) &&
		    str_eq(m.client, s->client) && str_eq(m.helo, s->helo) &&
		    str_eq(m.auth_user, s->auth_user) && m.body_flags == s->body_flags &&
		    m.arrival == s->arrival && m.arrival_usec == s->arrival_usec &&
		    m.dsn_ret == s->dsn_ret && str_eq(m.envid, s->envid))
MSG_ROW_FNS(q_rcpt, s_q_rcpt,
	    m.sid == s->sid && str_eq(m.rcpt, s->rcpt) && m.notify == s->notify &&
		    str_eq(m.orcpt, s->orcpt))
MSG_ROW_FNS(q_content, s_q_content, m.sid == s->sid && bytes_eq(m.data, s->data))
MSG_ROW_FNS(q_end, s_q_end, m.sid == s->sid && m.size == s->size)
MSG_ROW_FNS(id, s_id, m.id == s->id)
MSG_ROW_FNS(q_committed, s_q_committed, m.sid == s->sid && str_eq(m.qid, s->qid))
MSG_ROW_FNS(q_failed, s_q_failed,
	    m.sid == s->sid && m.code == s->code && str_eq(m.enh, s->enh) &&
		    str_eq(m.text, s->text))
MSG_ROW_FNS(d_ready, s_d_ready, m.n == s->n)
MSG_ROW_FNS(d_job, s_d_job,
	    m.jobid == s->jobid && str_eq(m.qid, s->qid) && str_eq(m.sender, s->sender) &&
		    str_eq(m.domain, s->domain) && m.size == s->size &&
		    m.body_flags == s->body_flags && m.arrival == s->arrival &&
		    m.arrival_usec == s->arrival_usec && m.dsn_ret == s->dsn_ret &&
		    str_eq(m.envid, s->envid) && m.nrcpt == s->nrcpt &&
		    m.rcpts[0].rcptid == s->rcpts[0].rcptid &&
		    str_eq(m.rcpts[0].address, s->rcpts[0].address) &&
		    m.rcpts[0].notify == s->rcpts[0].notify &&
		    str_eq(m.rcpts[0].orcpt, s->rcpts[0].orcpt) &&
		    m.rcpts[1].rcptid == s->rcpts[1].rcptid &&
		    str_eq(m.rcpts[1].address, s->rcpts[1].address) &&
		    m.rcpts[1].notify == s->rcpts[1].notify &&
		    str_eq(m.rcpts[1].orcpt, s->rcpts[1].orcpt))
MSG_ROW_FNS(d_chunk_req, s_d_chunk_req, m.jobid == s->jobid && m.seq == s->seq)
MSG_ROW_FNS(d_chunk, s_d_chunk,
	    m.jobid == s->jobid && m.seq == s->seq && m.last == s->last &&
		    bytes_eq(m.data, s->data))
MSG_ROW_FNS(d_result, s_d_result,
	    m.jobid == s->jobid && m.rcptid == s->rcptid && m.dclass == s->dclass &&
		    m.code == s->code && str_eq(m.enh, s->enh) && str_eq(m.text, s->text) &&
		    str_eq(m.relay, s->relay) && str_eq(m.reply, s->reply) && m.flags == s->flags)
MSG_ROW_FNS(d_suspended, s_d_suspended,
	    m.jobid == s->jobid && m.until == s->until && str_eq(m.enh, s->enh) &&
		    str_eq(m.text, s->text))
MSG_ROW_FNS(d_trace, s_d_trace, m.jobid == s->jobid && str_eq(m.text, s->text))

static const struct msg_row {
	const char *name;
	void (*enc)(struct ipc_wr *w);
	void (*gold)(struct ipc_wr *w);
	int (*dec)(struct ipc_rd *r);
} msg_rows[] = {
#define ROW(name) {#name, enc_##name, gold_##name, dec_##name}
	ROW(health),  ROW(cfg_file),    ROW(cfg_start), ROW(text),     ROW(ctl_req),
	ROW(ctl_rep), ROW(ctl_part),    ROW(q_hello),   ROW(q_hello_ok), ROW(q_begin),
	ROW(q_rcpt),  ROW(q_content),   ROW(q_end),     ROW(id),       ROW(q_committed),
	ROW(q_failed), ROW(d_ready),    ROW(d_job),     ROW(d_chunk_req), ROW(d_chunk),
	ROW(d_result), ROW(d_suspended), ROW(d_trace),
#undef ROW
};
#define NROWS (sizeof(msg_rows) / sizeof(msg_rows[0]))

/* Decodes exactly n bytes from a heap block of that size (valgrind/ASan see overreads). */
static int dec_exact(const struct msg_row *row, const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	memcpy(copy, p, n);
	struct ipc_rd rd;
	ipc_rd_init(&rd, copy, n);
	int rc = row->dec(&rd);
	free(copy);
	return rc;
}

START_TEST(test_msg_layout)
{
	const struct msg_row *row = &msg_rows[_i];
	struct ipc_wr w, g;
	ipc_wr_init(&w);
	ipc_wr_init(&g);
	row->enc(&w);
	row->gold(&g);
	ck_assert_msg(buf_avail(&w.b) == buf_avail(&g.b) &&
			      memcmp(buf_head(&w.b), buf_head(&g.b), buf_avail(&g.b)) == 0,
		      "%s: encoded bytes differ from the documented layout", row->name);
	ipc_wr_free(&w);
	ipc_wr_free(&g);
}
END_TEST

START_TEST(test_msg_round_trip)
{
	const struct msg_row *row = &msg_rows[_i];
	struct ipc_wr w;
	ipc_wr_init(&w);
	row->enc(&w);
	ck_assert_msg(dec_exact(row, buf_head(&w.b), buf_avail(&w.b)) == 0,
		      "%s: decode(encode(x)) != x", row->name);
	ipc_wr_free(&w);
}
END_TEST

START_TEST(test_msg_truncated)
{
	const struct msg_row *row = &msg_rows[_i];
	struct ipc_wr w;
	ipc_wr_init(&w);
	row->enc(&w);
	size_t n = buf_avail(&w.b);
	for (size_t k = 0; k < n; k++)
		ck_assert_msg(dec_exact(row, buf_head(&w.b), k) == -1,
			      "%s: a payload cut to %zu of %zu bytes was accepted", row->name, k, n);
	/* One byte too many is refused as well. */
	buf_append(&w.b, "x", 1);
	ck_assert_msg(dec_exact(row, buf_head(&w.b), n + 1) == -1,
		      "%s: a trailing byte was accepted", row->name);
	ipc_wr_free(&w);
}
END_TEST

/* The hot path's head, then the bytes as ipc_send_wr_bytes or
 * ipc_put_bytes_open/close add them: the same bytes as _encode. */
START_TEST(test_msg_content_heads)
{
	struct ipc_wr a, b;
	ipc_wr_init(&a);
	ipc_wr_init(&b);
	ipc_msg_q_content_encode(&a, &s_q_content);
	ipc_msg_q_content_head(&b, &s_q_content);
	ipc_put_bytes(&b, s_q_content.data.p, s_q_content.data.n);
	ck_assert_uint_eq(buf_avail(&a.b), buf_avail(&b.b));
	ck_assert(memcmp(buf_head(&a.b), buf_head(&b.b), buf_avail(&a.b)) == 0);

	buf_reset(&a.b);
	buf_reset(&b.b);
	ipc_msg_d_chunk_encode(&a, &s_d_chunk);
	ipc_msg_d_chunk_head(&b, &s_d_chunk);
	size_t open = ipc_put_bytes_open(&b);
	buf_append(&b.b, s_d_chunk.data.p, s_d_chunk.data.n);
	ipc_put_bytes_close(&b, open);
	ck_assert_uint_eq(buf_avail(&a.b), buf_avail(&b.b));
	ck_assert(memcmp(buf_head(&a.b), buf_head(&b.b), buf_avail(&a.b)) == 0);
	ipc_wr_free(&a);
	ipc_wr_free(&b);
}
END_TEST

START_TEST(test_msg_bounds)
{
	struct ipc_wr w;
	struct ipc_rd rd;
	struct ipc_msg_ctl_req req;
	struct ipc_msg_d_job *job = malloc(sizeof(*job));
	struct ipc_msg_q_rcpt rcpt;

	/* A command of no argument, and one of too many. */
	static const uint32_t argcs[] = {0, IPC_CTL_MAX_ARGS + 1};
	for (size_t i = 0; i < 2; i++) {
		ipc_wr_init(&w);
		ipc_put_u32(&w, 1);
		ipc_put_u32(&w, argcs[i]);
		for (uint32_t k = 0; k < argcs[i]; k++)
			ipc_put_str(&w, "a");
		ipc_rd_init(&rd, buf_head(&w.b), buf_avail(&w.b));
		ck_assert_int_eq(ipc_msg_ctl_req_decode(&rd, &req), -1);
		ipc_wr_free(&w);
	}
	/* IPC_CTL_MAX_ARGS is fine. */
	ipc_wr_init(&w);
	ipc_put_u32(&w, 1);
	ipc_put_u32(&w, IPC_CTL_MAX_ARGS);
	for (uint32_t k = 0; k < IPC_CTL_MAX_ARGS; k++)
		ipc_put_str(&w, "a");
	ipc_rd_init(&rd, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_int_eq(ipc_msg_ctl_req_decode(&rd, &req), 0);
	ipc_wr_free(&w);

	/* A job of more recipients than a job holds. */
	memcpy(job, &s_d_job, sizeof(*job));
	job->nrcpt = IPC_JOB_MAX_RCPTS;
	for (uint32_t k = 0; k < IPC_JOB_MAX_RCPTS; k++)
		job->rcpts[k] = s_d_job.rcpts[0];
	ipc_wr_init(&w);
	ipc_msg_d_job_encode(&w, job);
	ipc_rd_init(&rd, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_int_eq(ipc_msg_d_job_decode(&rd, job), 0);
	ck_assert_uint_eq(job->nrcpt, IPC_JOB_MAX_RCPTS);
	ipc_put_u64(&w, 1);
	ipc_put_str(&w, "z@remote.example");
	/* nrcpt sits after u64, 3 strings, u64, u32, i64, u32. */
	size_t off = 8 + (4 + s_d_job.qid.n) + (4 + s_d_job.sender.n) + (4 + s_d_job.domain.n) +
		     8 + 4 + 8 + 4;
	uint32_t more = IPC_JOB_MAX_RCPTS + 1;
	memcpy(buf_head(&w.b) + off, &more, sizeof(more));
	ipc_rd_init(&rd, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_int_eq(ipc_msg_d_job_decode(&rd, job), -1);
	ipc_wr_free(&w);
	free(job);

	/* A NUL inside a string field. */
	ipc_wr_init(&w);
	ipc_put_u64(&w, 1);
	ipc_put_bytes(&w, "a\0b@x", 5);
	ipc_rd_init(&rd, buf_head(&w.b), buf_avail(&w.b));
	ck_assert_int_eq(ipc_msg_q_rcpt_decode(&rd, &rcpt), -1);
	ipc_wr_free(&w);
}
END_TEST

/* The receivers' copies keep their limits: a string that does not fit is refused. */
START_TEST(test_msg_str_copy)
{
	char small[4];
	struct ipc_str s = STR("abc"), big = STR("abcd");
	ck_assert_int_eq(ipc_str_copy(small, sizeof(small), s), 0);
	ck_assert_str_eq(small, "abc");
	ck_assert_int_eq(ipc_str_copy(small, sizeof(small), big), -1);
	char *d = ipc_str_dup(big);
	ck_assert_str_eq(d, "abcd");
	free(d);
	struct ipc_str none = ipc_str(NULL);
	ck_assert_uint_eq(none.n, 0);
	ck_assert_int_eq(ipc_str_copy(small, sizeof(small), none), 0);
	ck_assert_str_eq(small, "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ipc_msg");
	TCase *tc = tcase_create("all");
	tcase_add_loop_test(tc, test_msg_layout, 0, NROWS);
	tcase_add_loop_test(tc, test_msg_round_trip, 0, NROWS);
	tcase_add_loop_test(tc, test_msg_truncated, 0, NROWS);
	tcase_add_test(tc, test_msg_content_heads);
	tcase_add_test(tc, test_msg_bounds);
	tcase_add_test(tc, test_msg_str_copy);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
