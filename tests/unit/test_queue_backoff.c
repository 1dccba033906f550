/*
 * test_queue_backoff.c - the queue's policy with an injected clock: the
 * backoff schedule, job picking grouped by message and domain, delivery
 * results (sent, deferred, bounced), expiry after queue-lifetime, one
 * bounce per delivery pass (each recipient reported once), no bounce for
 * <>, one delay notice, hold, deferrals without an attempt (suspended);
 * DSN: NOTIFY for failures, delays and successes relayed to a next hop
 * without DSN, RET and bounce-size-limit for what comes back, and reports
 * about reports going to the postmaster once.
 */
#include "queue/queue_sched.h"
#include "common/ipc_types.h"
#include "common/log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000

static char dir[64];
static struct queue_store *st;
static struct queue_counters cnt;
static const struct queue_policy pol = {
	.retry_min = 300, .retry_max = 3600, .lifetime = 86400, .delay_warning = 0,
	.hostname = "relay.test", .bounce_size_limit = 50 * 1024, .postmaster = "",
};

static void setup(void)
{
	char path[128];
	snprintf(dir, sizeof(dir), "/tmp/test_queue_backoff.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	st = queue_store_open(path);
	ck_assert_ptr_nonnull(st);
	memset(&cnt, 0, sizeof(cnt));
	ck_assert_int_eq(queue_store_begin(st), 0);
}

static void teardown(void)
{
	char cmd[128];
	ck_assert_int_eq(queue_store_commit(st), 0);
	queue_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void add_msg(const char *qid, const char *sender, const char *const *rcpts, int64_t now)
{
	static const char body[] = "From: s@example.com\r\nSubject: test\r\n\r\nbody\r\n";
	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.qid, sizeof(m.qid), "%s", qid);
	snprintf(m.sender, sizeof(m.sender), "%s", sender);
	m.arrival = now;
	ck_assert_int_eq(queue_store_msg_add(st, &m), 0);
	for (size_t i = 0; rcpts[i]; i++)
		ck_assert_int_eq(queue_store_rcpt_add(st, qid, rcpts[i], 0, ""), 0);
	ck_assert_int_eq(queue_store_chunk_add(st, qid, 0, body, strlen(body)), 0);
	ck_assert_int_eq(queue_store_msg_complete(st, qid, strlen(body), 1, now), 0);
}

static int64_t pick_one(int64_t now, const char *want_domain, size_t want_n)
{
	static struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, now, &pk), 1);
	ck_assert_str_eq(pk.domain, want_domain);
	ck_assert_uint_eq(pk.n, want_n);
	return pk.rcpts[0].id;
}

/* A result as delivery gives it: text is also the remote reply. */
static void result(int64_t id, uint32_t dclass, const char *enh, const char *text, int64_t now)
{
	struct queue_result r = {.rcptid = id, .dclass = dclass, .code = 0, .enh = enh,
				 .text = text, .relay = "mx.example.org[192.0.2.7]:25",
				 .reply = text};
	ck_assert_int_eq(queue_result_apply(st, &pol, &r, now, &cnt), 0);
}

/* Every complete message, to find the reports the queue enqueued. */
struct msgs {
	struct queue_msg m[8];
	int n;
};

static int msgs_cb(const struct queue_msg *m, void *arg)
{
	struct msgs *c = arg;
	c->m[c->n++] = *m;
	return 0;
}

static struct msgs list(void)
{
	struct msgs c = {.n = 0};
	ck_assert_int_eq(queue_store_messages(st, msgs_cb, &c), 0);
	return c;
}

static char *content(const char *qid)
{
	struct buf b;
	buf_init(&b);
	for (uint32_t i = 0; queue_store_chunk_get(st, qid, i, &b) == 1; i++)
		;
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* A message of its own body with DSN parameters, one recipient per NOTIFY. */
static void add_dsn_msg(const char *qid, const char *sender, const char *body, uint32_t ret,
			const char *const *rcpts, const uint32_t *notify, int64_t now)
{
	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.qid, sizeof(m.qid), "%s", qid);
	snprintf(m.sender, sizeof(m.sender), "%s", sender);
	snprintf(m.envid, sizeof(m.envid), "ENV-%s", qid);
	m.dsn_ret = ret;
	m.arrival = now;
	ck_assert_int_eq(queue_store_msg_add(st, &m), 0);
	for (size_t i = 0; rcpts[i]; i++)
		ck_assert_int_eq(queue_store_rcpt_add(st, qid, rcpts[i], notify[i], "rfc822;orig@x"), 0);
	ck_assert_int_eq(queue_store_chunk_add(st, qid, 0, body, strlen(body)), 0);
	ck_assert_int_eq(queue_store_msg_complete(st, qid, strlen(body), 1, now), 0);
}

static void result_flags(int64_t id, uint32_t dclass, const char *text, uint32_t flags,
			 int64_t now)
{
	struct queue_result r = {.rcptid = id, .dclass = dclass, .enh = "2.0.0", .text = text,
				 .relay = "mx.example.org[192.0.2.7]:25", .reply = text,
				 .flags = flags};
	ck_assert_int_eq(queue_result_apply(st, &pol, &r, now, &cnt), 0);
}

static const char dsn_body[] = "From: s@example.com\r\nSubject: dsn\r\n\r\nthe body line\r\n";

START_TEST(notify_never_and_success)
{
	static const char *const rc[] = {"never@x.example", "fail@x.example", "succ@x.example",
					 "succ2@x.example", NULL};
	static const uint32_t nt[] = {DSN_NOTIFY_NEVER, DSN_NOTIFY_FAILURE,
				      DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_NOTIFY_SUCCESS};
	add_dsn_msg("AAAA0000000000D1", "s@example.com", dsn_body, DSN_RET_FULL, rc, nt, T0);
	static struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, T0, &pk), 1);
	ck_assert_uint_eq(pk.n, 4);
	ck_assert_uint_eq(pk.rcpts[0].notify, DSN_NOTIFY_NEVER);
	ck_assert_str_eq(pk.rcpts[0].orcpt, "rfc822;orig@x");
	result(pk.rcpts[0].id, DLV_BOUNCED, "5.1.1", "550 5.1.1 never", T0 + 1);
	result(pk.rcpts[1].id, DLV_BOUNCED, "5.1.1", "550 5.1.1 fail", T0 + 1);
	/* To a next hop without DSN: relayed; to one with DSN: nothing from us. */
	result_flags(pk.rcpts[2].id, DLV_SENT, "250 2.0.0 Ok: queued as X", RESULT_DSN_RELAYED,
		     T0 + 1);
	result_flags(pk.rcpts[3].id, DLV_SENT, "250 2.0.0 Ok: queued as Y", 0, T0 + 1);
	struct msgs l = list();
	ck_assert_int_eq(l.n, 2);
	char *a = content(l.m[0].qid), *b = content(l.m[1].qid);
	char *fail = strstr(a, "Action: failed") ? a : b, *relayed = fail == a ? b : a;
	ck_assert_ptr_nonnull(strstr(fail, "Final-Recipient: rfc822; fail@x.example"));
	ck_assert_ptr_null(strstr(fail, "never@x.example"));
	ck_assert_ptr_nonnull(strstr(fail, "Original-Envelope-Id: ENV-AAAA0000000000D1\r\n"));
	ck_assert_ptr_nonnull(strstr(fail, "Original-Recipient: rfc822; orig@x\r\n"));
	/* Small and RET=FULL: the whole message comes back. */
	ck_assert_ptr_nonnull(strstr(fail, "Content-Type: message/rfc822\r\n"));
	ck_assert_ptr_nonnull(strstr(fail, "the body line"));
	ck_assert_ptr_nonnull(strstr(relayed, "Action: relayed\r\n"));
	ck_assert_ptr_nonnull(strstr(relayed, "Final-Recipient: rfc822; succ@x.example"));
	ck_assert_ptr_null(strstr(relayed, "succ2@x.example"));
	ck_assert_ptr_nonnull(strstr(relayed, "Content-Type: text/rfc822-headers\r\n"));
	ck_assert_ptr_null(strstr(relayed, "the body line"));
	free(a);
	free(b);
}
END_TEST

/* RET=HDRS, or a message over bounce-size-limit: the headers only. */
START_TEST(ret_hdrs_and_size_limit)
{
	static const char *const rc[] = {"a@x.example", NULL};
	static const uint32_t nt[] = {0};
	struct queue_policy small = pol;
	add_dsn_msg("AAAA0000000000D2", "s@example.com", dsn_body, DSN_RET_HDRS, rc, nt, T0);
	int64_t a = pick_one(T0, "x.example", 1);
	result(a, DLV_BOUNCED, "5.1.1", "550 5.1.1 no", T0 + 1);
	struct msgs l = list();
	ck_assert_int_eq(l.n, 1);
	char *t = content(l.m[0].qid);
	ck_assert_ptr_nonnull(strstr(t, "Content-Type: text/rfc822-headers\r\n"));
	ck_assert_ptr_null(strstr(t, "the body line"));
	free(t);
	ck_assert_int_ge(queue_store_msg_delete(st, l.m[0].qid), 0);

	small.bounce_size_limit = 10;
	add_dsn_msg("AAAA0000000000D3", "s@example.com", dsn_body, 0, rc, nt, T0);
	a = pick_one(T0, "x.example", 1);
	struct queue_result r = {.rcptid = a, .dclass = DLV_BOUNCED, .enh = "5.1.1",
				 .text = "550 5.1.1 no", .relay = "", .reply = "550 5.1.1 no"};
	ck_assert_int_eq(queue_result_apply(st, &small, &r, T0 + 1, &cnt), 0);
	l = list();
	ck_assert_int_eq(l.n, 1);
	t = content(l.m[0].qid);
	ck_assert_ptr_nonnull(strstr(t, "Content-Type: text/rfc822-headers\r\n"));
	ck_assert_ptr_null(strstr(t, "the body line"));
	free(t);
}
END_TEST

/* A report from <> that fails goes to the postmaster, once: a postmaster
 * copy that fails in turn is dropped. */
START_TEST(double_bounce_to_postmaster)
{
	static const char *const rc[] = {"gone@x.example", NULL};
	static const uint32_t nt[] = {0};
	struct queue_policy pm = pol;
	pm.postmaster = "admin@relay.test";
	add_dsn_msg("AAAA0000000000D4", "", dsn_body, 0, rc, nt, T0);
	int64_t a = pick_one(T0, "x.example", 1);
	struct queue_result r = {.rcptid = a, .dclass = DLV_BOUNCED, .enh = "5.1.1",
				 .text = "550 5.1.1 no", .relay = "", .reply = "550 5.1.1 no"};
	ck_assert_int_eq(queue_result_apply(st, &pm, &r, T0 + 1, &cnt), 0);
	struct msgs l = list();
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_eq(l.m[0].kind, QUEUE_KIND_DOUBLE_BOUNCE);
	char *t = content(l.m[0].qid);
	ck_assert_ptr_nonnull(strstr(t, "To: <admin@relay.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(t, "Subject: Postmaster Copy: "));
	free(t);
	/* The copy itself fails: dropped, nothing new. */
	a = pick_one(T0 + 1, "relay.test", 1);
	r.rcptid = a;
	ck_assert_int_eq(queue_result_apply(st, &pm, &r, T0 + 2, &cnt), 0);
	ck_assert_int_eq(list().n, 0);
}
END_TEST

/* Expiry is relayd's finding: X-Relayd, not a remote reply. */
START_TEST(expiry_is_x_relayd)
{
	static const char *const rc[] = {"later@x.example", NULL};
	static const uint32_t nt[] = {DSN_NOTIFY_FAILURE};
	add_dsn_msg("AAAA0000000000D5", "s@example.com", dsn_body, 0, rc, nt, T0);
	int64_t a = pick_one(T0, "x.example", 1);
	result(a, DLV_DEFERRED, "4.2.0", "450 4.2.0 later", T0 + pol.lifetime);
	struct msgs l = list();
	ck_assert_int_eq(l.n, 1);
	char *t = content(l.m[0].qid);
	ck_assert_ptr_nonnull(strstr(t, "Diagnostic-Code: X-Relayd; gave up after "));
	ck_assert_ptr_null(strstr(t, "Diagnostic-Code: smtp;"));
	free(t);
}
END_TEST

START_TEST(backoff_table)
{
	static const struct {
		unsigned failures, min, max, want;
	} cases[] = {
		{1, 300, 3600, 300}, {2, 300, 3600, 600}, {3, 300, 3600, 1200},
		{4, 300, 3600, 2400}, {5, 300, 3600, 3600}, {6, 300, 3600, 3600},
		{1000, 300, 3600, 3600}, {1, 60, 60, 60}, {3, 1, 5, 4}, {4, 1, 5, 5},
		{0, 300, 3600, 300},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(queue_backoff(cases[i].failures, cases[i].min, cases[i].max) ==
			      cases[i].want, "case %zu", i);
}
END_TEST

START_TEST(jitter_bounds)
{
	ck_assert_uint_eq(queue_jitter(300, 0), 300);
	ck_assert_uint_eq(queue_jitter(10, 5), 10); /* under a whole second: none */
	unsigned lo = 3600, hi = 0;
	for (int i = 0; i < 2000; i++) {
		unsigned d = queue_jitter(3600, 5);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	ck_assert_uint_ge(lo, 3420);
	ck_assert_uint_le(hi, 3600);
	ck_assert_uint_lt(lo, hi); /* it does spread */
}
END_TEST

START_TEST(pick_groups_by_domain)
{
	static const char *const rc[] = {"a@x.example", "b@y.example", "c@x.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, T0 - 1, &pk), 0);
	pick_one(T0, "x.example", 2);
	pick_one(T0, "y.example", 1);
	ck_assert_int_eq(queue_sched_pick(st, T0 + 10, &pk), 0);
	long n;
	ck_assert_int_eq(queue_store_requeue_inflight(st, T0 + 5, &n), 0);
	ck_assert_int_eq(n, 3);
}
END_TEST

START_TEST(deferred_backs_off_then_expires)
{
	static const char *const rc[] = {"a@x.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	struct queue_rcpt r;
	int64_t now = T0;
	unsigned want[] = {300, 600, 1200, 2400, 3600, 3600};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int64_t id = pick_one(now, "x.example", 1);
		result(id, DLV_DEFERRED, "4.4.1", "connection refused", now);
		ck_assert_int_eq(queue_store_rcpt_get(st, id, &r), 1);
		ck_assert_int_eq(r.state, RS_DEFERRED);
		ck_assert_int_eq(r.attempts, i + 1);
		/* One second more: now is rounded down (queue_result_defer). */
		ck_assert_int_eq(r.next_attempt, now + 1 + want[i]);
		struct queue_pick pk;
		ck_assert_int_eq(queue_sched_pick(st, now + want[i], &pk), 0);
		now += want[i] + 1;
	}
	ck_assert_int_eq(cnt.deferred, 6);
	/* The last retry is put at the expiry, not after it. */
	now = T0 + 86400 - 100;
	int64_t id = pick_one(now, "x.example", 1);
	result(id, DLV_DEFERRED, "4.4.1", "connection refused", now);
	ck_assert_int_eq(queue_store_rcpt_get(st, id, &r), 1);
	ck_assert_int_eq(r.next_attempt, T0 + 86400);
	/* At the expiry a temporary failure bounces: original gone, one report queued. */
	now = T0 + 86400;
	id = pick_one(now, "x.example", 1);
	result(id, DLV_DEFERRED, "4.4.1", "connection refused", now);
	ck_assert_int_eq(cnt.bounced, 1);
	struct msgs l = list();
	ck_assert_int_eq(l.n, 1);
	ck_assert_str_ne(l.m[0].qid, "AAAA000000000001");
	ck_assert_str_eq(l.m[0].sender, "");
	ck_assert_int_eq(strlen(l.m[0].qid), 16);
	char *text = content(l.m[0].qid);
	ck_assert_ptr_nonnull(strstr(text, "Final-Recipient: rfc822; a@x.example\r\n"));
	ck_assert_ptr_nonnull(strstr(text, "Action: failed\r\nStatus: 4.4.1\r\n"));
	ck_assert_ptr_nonnull(strstr(text, "Subject: test\r\n"));
	free(text);
}
END_TEST

START_TEST(one_bounce_for_all_failures)
{
	static const char *const rc[] = {"a@x.example", "b@y.example", "c@z.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	int64_t a = pick_one(T0, "x.example", 1);
	int64_t b = pick_one(T0, "y.example", 1);
	int64_t c = pick_one(T0, "z.example", 1);
	result(a, DLV_BOUNCED, "5.1.1", "550 5.1.1 no such user", T0 + 1);
	result(b, DLV_SENT, "2.0.0", "250 ok", T0 + 1);
	/* Still pending: no report yet. */
	ck_assert_int_eq(list().n, 1);
	result(c, DLV_BOUNCED, "5.7.1", "554 5.7.1 rejected", T0 + 2);
	struct msgs l = list();
	ck_assert_int_eq(l.n, 1);
	ck_assert_str_ne(l.m[0].qid, "AAAA000000000001");
	char *text = content(l.m[0].qid);
	ck_assert_ptr_nonnull(strstr(text, "Final-Recipient: rfc822; a@x.example"));
	ck_assert_ptr_nonnull(strstr(text, "Final-Recipient: rfc822; c@z.example"));
	ck_assert_ptr_null(strstr(text, "b@y.example"));
	ck_assert_ptr_nonnull(strstr(text, "Diagnostic-Code: smtp; 550 5.1.1 no such user"));
	ck_assert_ptr_nonnull(strstr(text, "Remote-MTA: dns; mx.example.org\r\n"));
	ck_assert_ptr_nonnull(strstr(text, "To: <s@example.com>"));
	free(text);
	ck_assert_int_eq(cnt.delivered, 1);
	ck_assert_int_eq(cnt.bounced, 2);
	/* A stale result changes nothing. */
	result(a, DLV_SENT, "2.0.0", "250 ok", T0 + 3);
	ck_assert_int_eq(cnt.delivered, 1);
}
END_TEST

START_TEST(all_sent_removes_message)
{
	static const char *const rc[] = {"a@x.example", "b@x.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	static struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, T0, &pk), 1);
	result(pk.rcpts[0].id, DLV_SENT, "2.0.0", "250 ok", T0);
	ck_assert_int_eq(list().n, 1);
	result(pk.rcpts[1].id, DLV_SENT, "2.0.0", "250 ok", T0);
	ck_assert_int_eq(list().n, 0);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 0);
}
END_TEST

START_TEST(no_bounce_for_null_sender)
{
	static const char *const rc[] = {"a@x.example", NULL};
	add_msg("AAAA000000000001", "", rc, T0);
	int64_t a = pick_one(T0, "x.example", 1);
	result(a, DLV_BOUNCED, "5.1.1", "550 no", T0);
	ck_assert_int_eq(list().n, 0);
}
END_TEST

START_TEST(one_delay_notice)
{
	static const char *const rc[] = {"a@x.example", "b@x.example", NULL};
	struct queue_policy p = pol;
	p.delay_warning = 1000;
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	static struct queue_pick pk;
	/* Before delay-warning: no notice. */
	ck_assert_int_eq(queue_sched_pick(st, T0, &pk), 1);
	for (size_t i = 0; i < 2; i++) {
		struct queue_result r = {.rcptid = pk.rcpts[i].id, .dclass = DLV_DEFERRED,
					 .enh = "4.4.1", .text = "refused", .relay = ""};
		ck_assert_int_eq(queue_result_apply(st, &p, &r, T0 + 10, &cnt), 0);
	}
	ck_assert_int_eq(list().n, 1);
	/* After it: one notice (listing what is deferred at that moment), and no second one. */
	for (int round = 0; round < 2; round++) {
		int64_t now = T0 + 2000 + round * 4000;
		ck_assert_int_eq(queue_sched_pick(st, now, &pk), 1);
		if (strcmp(pk.domain, "example.com") == 0) {
			/* The notice itself, due at once: keep it in the queue. */
			ck_assert_int_eq(queue_store_rcpt_set_state(st, pk.rcpts[0].id, RS_HOLD), 0);
			ck_assert_int_eq(queue_sched_pick(st, now, &pk), 1);
		}
		ck_assert_str_eq(pk.domain, "x.example");
		ck_assert_uint_eq(pk.n, 2);
		for (size_t i = 0; i < 2; i++) {
			struct queue_result r = {.rcptid = pk.rcpts[i].id, .dclass = DLV_DEFERRED,
						 .enh = "4.4.1", .text = "refused", .relay = ""};
			ck_assert_int_eq(queue_result_apply(st, &p, &r, now, &cnt), 0);
		}
	}
	struct msgs l = list();
	ck_assert_int_eq(l.n, 2);
	const char *dsn = strcmp(l.m[0].qid, "AAAA000000000001") ? l.m[0].qid : l.m[1].qid;
	char *text = content(dsn);
	ck_assert_ptr_nonnull(strstr(text, "Action: delayed"));
	ck_assert_ptr_nonnull(strstr(text, "Final-Recipient: rfc822; a@x.example"));
	ck_assert_ptr_nonnull(strstr(text, "Subject: Delayed Mail"));
	free(text);
	struct queue_rcpt r;
	ck_assert_int_eq(queue_store_rcpt_get(st, pk.rcpts[1].id, &r), 1);
	ck_assert_int_eq(r.warned, 1);
}
END_TEST

START_TEST(deferred_while_held_stays_held)
{
	static const char *const rc[] = {"a@x.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	int64_t a = pick_one(T0, "x.example", 1);
	ck_assert_int_eq(queue_store_msg_hold(st, "AAAA000000000001", 1), 1);
	result(a, DLV_DEFERRED, "4.4.1", "refused", T0);
	struct queue_rcpt r;
	ck_assert_int_eq(queue_store_rcpt_get(st, a, &r), 1);
	ck_assert_int_eq(r.state, RS_HOLD);
	struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, T0 + 100000, &pk), 0);
	ck_assert_int_eq(queue_store_msg_hold(st, "AAAA000000000001", 0), 1);
	ck_assert_int_eq(queue_store_rcpt_get(st, a, &r), 1);
	ck_assert_int_eq(r.state, RS_DEFERRED);
}
END_TEST

/* The reports in the queue (messages from <>), their text in order of qid. */
static int reports(char *texts[], int max)
{
	struct msgs l = list();
	int n = 0;
	for (int i = 0; i < l.n && n < max; i++)
		if (l.m[i].sender[0] == '\0')
			texts[n++] = content(l.m[i].qid);
	return n;
}

static void free_reports(char *texts[], int n)
{
	for (int i = 0; i < n; i++)
		free(texts[i]);
}

/* The next job for domain; reports picked on the way stay in the queue, held. */
static void pick_domain(int64_t now, const char *domain, struct queue_pick *pk)
{
	for (;;) {
		ck_assert_int_eq(queue_sched_pick(st, now, pk), 1);
		if (strcmp(pk->domain, domain) == 0)
			return;
		ck_assert_str_eq(pk->domain, "example.com");
		ck_assert_int_eq(queue_store_rcpt_set_state(st, pk->rcpts[0].id, RS_HOLD), 0);
	}
}

START_TEST(prompt_bounce_per_pass)
{
	static const char *const rc[] = {"good@x.example", "bad@x.example", "later@x.example",
					 NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	static struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, T0, &pk), 1);
	ck_assert_uint_eq(pk.n, 3);
	int64_t good = pk.rcpts[0].id, bad = pk.rcpts[1].id, later = pk.rcpts[2].id;
	result(good, DLV_SENT, "2.0.0", "250 ok", T0 + 1);
	result(bad, DLV_BOUNCED, "5.1.1", "550 5.1.1 no such user", T0 + 1);
	/* later@ still in flight: the pass goes on, no report yet. */
	char *t[4];
	ck_assert_int_eq(reports(t, 4), 0);
	result(later, DLV_DEFERRED, "4.3.0", "451 4.3.0 try later", T0 + 1);
	/* The pass ended: bad@ reported at once, later@ keeps its retry. */
	int n = reports(t, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(t[0], "Final-Recipient: rfc822; bad@x.example\r\n"));
	ck_assert_ptr_null(strstr(t[0], "later@"));
	ck_assert_ptr_null(strstr(t[0], "good@"));
	free_reports(t, n);
	struct queue_rcpt r;
	ck_assert_int_eq(queue_store_rcpt_get(st, bad, &r), 0); /* reported: gone */
	ck_assert_int_eq(queue_store_rcpt_get(st, later, &r), 1);
	ck_assert_int_eq(r.state, RS_DEFERRED);
	/* One second more than the step: now is rounded down (queue_result_defer). */
	ck_assert_int_eq(r.next_attempt, T0 + 1 + 1 + 300);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 1);

	/* The retry fails permanently: a second report, naming later@ only. */
	pick_domain(T0 + 302, "x.example", &pk);
	ck_assert_uint_eq(pk.n, 1);
	result(pk.rcpts[0].id, DLV_BOUNCED, "5.1.1", "550 5.1.1 gone now", T0 + 303);
	n = reports(t, 4);
	ck_assert_int_eq(n, 2);
	int second = strstr(t[0], "later@") ? 0 : 1;
	ck_assert_ptr_nonnull(strstr(t[second], "Final-Recipient: rfc822; later@x.example\r\n"));
	ck_assert_ptr_null(strstr(t[second], "bad@"));
	ck_assert_ptr_null(strstr(t[1 - second], "later@"));
	free_reports(t, n);
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 0);
	ck_assert_int_eq(cnt.bounced, 2);
}
END_TEST

START_TEST(expiry_reports_the_rest_alone)
{
	static const char *const rc[] = {"bad@x.example", "later@x.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	static struct queue_pick pk;
	ck_assert_int_eq(queue_sched_pick(st, T0, &pk), 1);
	result(pk.rcpts[0].id, DLV_BOUNCED, "5.1.1", "550 no", T0);
	result(pk.rcpts[1].id, DLV_DEFERRED, "4.3.0", "451 later", T0);
	char *t[4];
	int n = reports(t, 4);
	ck_assert_int_eq(n, 1);
	free_reports(t, n);
	/* At the lifetime the deferral gives up: its own report, bad@ not again. */
	int64_t now = T0 + 86400;
	pick_domain(now, "x.example", &pk);
	result(pk.rcpts[0].id, DLV_DEFERRED, "4.3.0", "451 later", now);
	n = reports(t, 4);
	ck_assert_int_eq(n, 2);
	int second = strstr(t[0], "later@") ? 0 : 1;
	ck_assert_ptr_nonnull(strstr(t[second], "Action: failed\r\nStatus: 4.3.0"));
	ck_assert_ptr_null(strstr(t[second], "bad@"));
	ck_assert_ptr_null(strstr(t[1 - second], "later@"));
	free_reports(t, n);
}
END_TEST

START_TEST(suspended_keeps_attempts_and_step)
{
	static const char *const rc[] = {"a@x.example", NULL};
	add_msg("AAAA000000000001", "s@example.com", rc, T0);
	struct queue_rcpt r;
	int64_t id = pick_one(T0, "x.example", 1);
	result(id, DLV_DEFERRED, "4.4.1", "connection refused", T0);
	ck_assert_int_eq(queue_store_rcpt_get(st, id, &r), 1);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_int_eq(r.next_attempt, T0 + 1 + 300);
	/* Due again; delivery still remembers the hop as dead for 20 s. */
	for (int i = 0; i < 3; i++) {
		int64_t now = T0 + 301 + i * 20;
		ck_assert_int_eq(pick_one(now, "x.example", 1), id);
		struct queue_result s = {.rcptid = id, .dclass = DLV_DEFERRED, .enh = "4.4.1",
					 .text = "delivery temporarily suspended: refused",
					 .relay = "", .suspended_until = now + 20};
		ck_assert_int_eq(queue_result_apply(st, &pol, &s, now, &cnt), 0);
		ck_assert_int_eq(queue_store_rcpt_get(st, id, &r), 1);
		ck_assert_int_eq(r.state, RS_DEFERRED);
		ck_assert_int_eq(r.attempts, 1);
		ck_assert_int_eq(r.next_attempt, now + 20);
		ck_assert_str_eq(r.last_error, "delivery temporarily suspended: refused");
	}
	/* The next real failure takes the second step of the backoff. */
	int64_t now = T0 + 361;
	ck_assert_int_eq(pick_one(now, "x.example", 1), id);
	result(id, DLV_DEFERRED, "4.4.1", "connection refused", now);
	ck_assert_int_eq(queue_store_rcpt_get(st, id, &r), 1);
	ck_assert_int_eq(r.attempts, 2);
	ck_assert_int_eq(r.next_attempt, now + 1 + 600);
	/* Suspended past the lifetime: it gives up like any deferral. */
	now = T0 + 86400;
	ck_assert_int_eq(pick_one(now, "x.example", 1), id);
	struct queue_result s = {.rcptid = id, .dclass = DLV_DEFERRED, .enh = "4.4.1",
				 .text = "delivery temporarily suspended: refused", .relay = "",
				 .suspended_until = now + 20};
	ck_assert_int_eq(queue_result_apply(st, &pol, &s, now, &cnt), 0);
	ck_assert_int_eq(queue_store_rcpt_get(st, id, &r), 0);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 0);
	char *t[4];
	int n = reports(t, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(t[0], "delivery temporarily suspended: refused"));
	free_reports(t, n);
}
END_TEST

START_TEST(suspended_untried_stays_queued)
{
	static const char *const rc[] = {"b@y.example", NULL};
	add_msg("AAAA000000000002", "s@example.com", rc, T0);
	int64_t b = pick_one(T0, "y.example", 1);
	/* The memory outlasts the lifetime: the recipient comes back at the expiry. */
	struct queue_result s = {.rcptid = b, .dclass = DLV_DEFERRED, .enh = "4.4.1",
				 .text = "delivery temporarily suspended: refused", .relay = "",
				 .suspended_until = T0 + 100000};
	ck_assert_int_eq(queue_result_apply(st, &pol, &s, T0, &cnt), 0);
	struct queue_rcpt r;
	ck_assert_int_eq(queue_store_rcpt_get(st, b, &r), 1);
	ck_assert_int_eq(r.state, RS_QUEUED);
	ck_assert_int_eq(r.attempts, 0);
	ck_assert_int_eq(r.next_attempt, T0 + 86400);
	ck_assert_int_eq(cnt.deferred, 1);
	ck_assert_int_eq(list().n, 1);
}
END_TEST

int main(void)
{
	log_init("test", 1, 0);
	Suite *s = suite_create("queue_sched");
	TCase *tc = tcase_create("sched");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, backoff_table);
	tcase_add_test(tc, jitter_bounds);
	tcase_add_test(tc, pick_groups_by_domain);
	tcase_add_test(tc, deferred_backs_off_then_expires);
	tcase_add_test(tc, one_bounce_for_all_failures);
	tcase_add_test(tc, all_sent_removes_message);
	tcase_add_test(tc, no_bounce_for_null_sender);
	tcase_add_test(tc, one_delay_notice);
	tcase_add_test(tc, deferred_while_held_stays_held);
	tcase_add_test(tc, prompt_bounce_per_pass);
	tcase_add_test(tc, expiry_reports_the_rest_alone);
	tcase_add_test(tc, suspended_keeps_attempts_and_step);
	tcase_add_test(tc, suspended_untried_stays_queued);
	tcase_add_test(tc, notify_never_and_success);
	tcase_add_test(tc, ret_hdrs_and_size_limit);
	tcase_add_test(tc, double_bounce_to_postmaster);
	tcase_add_test(tc, expiry_is_x_relayd);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
