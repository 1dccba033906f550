/*
 * test_queue_trace.c - what a notification quotes of the transcripts:
 * the last attempt only, no DNS lines, only its own recipients' RCPT and
 * their replies, paired also when the commands were pipelined; only the
 * domains of its recipients.
 */
#include "queue/queue_trace.h"
#include "common/log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char pipelined[] =
	"2026-01-01 10:00:00 UTC attempt for 2 recipient(s) at ex.example, next hop: MX\n"
	"10:00:00.001 * connecting to mx.ex.example[192.0.2.1]:25\n"
	"10:00:00.002 < 220 mx.ex.example ESMTP\n"
	"10:00:00.003 > EHLO relay.example\n"
	"10:00:00.004 < 250-mx.ex.example\n"
	"10:00:00.004 < 250 PIPELINING\n"
	"10:00:00.005 > MAIL FROM:<s@relay.example>\n"
	"10:00:00.005 > RCPT TO:<a@ex.example>\n"
	"10:00:00.005 > RCPT TO:<B@ex.example>\n"
	"10:00:00.005 > DATA\n"
	"10:00:00.006 < 250 2.1.0 Ok\n"
	"10:00:00.006 < 250 2.1.5 Ok for a\n"
	"10:00:00.006 < 550-5.1.1 no b\n"
	"10:00:00.006 < 550 5.1.1 really no b\n"
	"10:00:00.006 < 354 go on\n"
	"10:00:00.007 > (message content, 10 bytes as sent, ending with \".\")\n"
	"10:00:00.008 < 250 2.0.0 Ok\n";

static const char *brief(struct queue_store *st, const char *addr, struct buf *out)
{
	struct queue_rcpt r;
	memset(&r, 0, sizeof(r));
	snprintf(r.address, sizeof(r.address), "%s", addr);
	buf_reset(out);
	queue_trace_brief(st, "Q1", &r, 1, out);
	return (const char *)buf_head(out);
}

START_TEST(notification_quotes_its_own_recipients)
{
	char dir[] = "/tmp/test_queue_trace.XXXXXX", path[64], cmd[96];
	struct buf out;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	struct queue_store *st = queue_store_open(path);
	ck_assert_ptr_nonnull(st);
	buf_init(&out);
	ck_assert_int_eq(queue_store_begin(st), 0);
	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.qid, sizeof(m.qid), "Q1");
	ck_assert_int_eq(queue_store_msg_add(st, &m), 0);
	ck_assert_int_eq(queue_store_rcpt_add(st, "Q1", "a@ex.example", 0, ""), 0);
	ck_assert_int_eq(queue_store_msg_complete(st, "Q1", 0, 0, 100), 0);
	/* An older attempt first: only the last one is quoted. */
	char text[4096];
	snprintf(text, sizeof(text), "2026-01-01 09:00:00 UTC attempt (old)\n"
		 "09:00:00.001 * DNS: ex.example. MX 10 mx.ex.example.\n%s", pipelined);
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "ex.example", 100, text), 0);
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "other.example", 101,
					       "2026-01-01 10:00:00 UTC attempt at other\n"), 0);
	ck_assert_int_eq(queue_store_commit(st), 0);

	const char *s = brief(st, "b@EX.example", &out);
	ck_assert_ptr_nonnull(strstr(s, "<recipients at ex.example>\n2026-01-01 10:00:00 UTC"));
	ck_assert_ptr_null(strstr(s, "(old)"));
	ck_assert_ptr_null(strstr(s, "DNS:"));
	ck_assert_ptr_null(strstr(s, "other.example"));
	ck_assert_ptr_null(strstr(s, "a@ex.example"));
	ck_assert_ptr_null(strstr(s, "Ok for a"));
	ck_assert_ptr_nonnull(strstr(s, "> RCPT TO:<B@ex.example>\n10:00:00.005 > DATA\n"
				       "10:00:00.006 < 250 2.1.0 Ok\n10:00:00.006 < 550-5.1.1 no b\n"
				       "10:00:00.006 < 550 5.1.1 really no b\n10:00:00.006 < 354 go on\n"));
	ck_assert_ptr_nonnull(strstr(s, "< 250 2.0.0 Ok\n    (2 line(s) about other recipients "
				       "left out)\n"));
	ck_assert_ptr_nonnull(strstr(s, "< 220 mx.ex.example ESMTP\n"));  /* the greeting */

	s = brief(st, "a@ex.example", &out);
	ck_assert_ptr_nonnull(strstr(s, "< 250 2.1.5 Ok for a\n"));
	ck_assert_ptr_null(strstr(s, "no b"));
	ck_assert_ptr_null(strstr(s, "B@ex"));

	s = brief(st, "c@third.example", &out);  /* no transcript of its domain */
	ck_assert_str_eq(s, "");

	buf_free(&out);
	queue_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
	log_init("test", 1, 0);
	Suite *s = suite_create("queue_trace");
	TCase *tc = tcase_create("trace");
	tcase_add_test(tc, notification_quotes_its_own_recipients);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
