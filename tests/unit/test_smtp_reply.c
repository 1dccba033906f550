/*
 * test_smtp_reply.c - the exact octets of intake's replies that carry
 * more than the table's fixed text: the greeting and HELO with the
 * hostname, the EHLO reply and its keywords, the AUTH challenges, the
 * queue's refusals passed on; and that the buffer and the connection
 * formatters write the same line.
 */
#include "relayd/intake/smtp_reply.h"
#include "common/buf.h"
#include "common/conn.h"
#include "common/event.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection whose output is looked at, never sent. */
struct rt {
	struct ev_loop *loop;
	struct conn *c;
	int peer;
};

static void rt_read(struct conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static void rt_close(struct conn *c, void *arg, const char *why)
{
	(void)c;
	(void)arg;
	(void)why;
}

static void rt_init(struct rt *t)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->loop = ev_loop_new();
	ck_assert_ptr_nonnull(t->loop);
	t->peer = sv[1];
	t->c = conn_new(t->loop, sv[0], rt_read, rt_close, t);
	ck_assert_ptr_nonnull(t->c);
}

static void rt_free(struct rt *t)
{
	conn_free(t->c);
	close(t->peer);
	ev_loop_free(t->loop);
}

/* What was written to the connection, as a string; then forgets it. */
static void rt_take(struct rt *t, char *dst, size_t dstsz)
{
	size_t n = buf_avail(&t->c->out);

	ck_assert_uint_lt(n, dstsz);
	memcpy(dst, buf_head(&t->c->out), n);
	dst[n] = '\0';
	buf_reset(&t->c->out);
}

static const struct {
	enum smtp_reply_id id;
	const char *arg;
	const char *want;
} reply_lines[] = {
	{SR_GREETING, "mx.example", "220 mx.example ESMTP relayd\r\n"},
	{SR_HELO, "mx.example", "250 mx.example\r\n"},
	{SR_AUTH_GO, NULL, "334 \r\n"},
	{SR_AUTH_USERNAME, NULL, "334 VXNlcm5hbWU6\r\n"},
	{SR_AUTH_PASSWORD, NULL, "334 UGFzc3dvcmQ6\r\n"},
	{SR_DATA_GO, NULL, "354 End data with <CR><LF>.<CR><LF>\r\n"},
	{SR_QUEUED, "4Xm2kQ7cZ0aB", "250 2.0.0 Ok: queued as 4Xm2kQ7cZ0aB\r\n"},
	{SR_QUEUE_DOWN, NULL, "451 4.3.0 Queue unavailable, try again later\r\n"},
	{SR_TOO_MANY_CONNS, NULL, "421 4.7.0 Error: too many connections\r\n"},
};

START_TEST(test_line)
{
	struct rt t;
	struct buf b;
	char got[1024];

	rt_init(&t);
	buf_init(&b);
	smtp_reply_write(t.c, reply_lines[_i].id, reply_lines[_i].arg);
	rt_take(&t, got, sizeof(got));
	ck_assert_str_eq(got, reply_lines[_i].want);
	smtp_reply_format(&b, reply_lines[_i].id, reply_lines[_i].arg);
	ck_assert_uint_eq(buf_avail(&b), strlen(reply_lines[_i].want));
	ck_assert_int_eq(memcmp(buf_head(&b), reply_lines[_i].want, buf_avail(&b)), 0);
	buf_free(&b);
	rt_free(&t);
}
END_TEST

/* A hostname of 255 octets reaches the greeting whole. */
START_TEST(test_long_hostname)
{
	struct rt t;
	char host[256], want[300], got[1024];

	memset(host, 'h', 255);
	host[255] = '\0';
	snprintf(want, sizeof(want), "220 %s ESMTP relayd\r\n", host);
	rt_init(&t);
	smtp_reply_write(t.c, SR_GREETING, host);
	rt_take(&t, got, sizeof(got));
	ck_assert_str_eq(got, want);
	rt_free(&t);
}
END_TEST

#define EHLO_BASE                                                                          \
	"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"        \
	"250-ENHANCEDSTATUSCODES\r\n"

static const struct {
	unsigned offer;
	const char *want;
} ehlo_cases[] = {
	{0, EHLO_BASE "250-SMTPUTF8\r\n250 DSN\r\n"},
	{SMTP_EHLO_STARTTLS, EHLO_BASE "250-SMTPUTF8\r\n250-DSN\r\n250 STARTTLS\r\n"},
	{SMTP_EHLO_AUTH, EHLO_BASE "250-SMTPUTF8\r\n250-DSN\r\n250 AUTH PLAIN LOGIN\r\n"},
	{SMTP_EHLO_STARTTLS | SMTP_EHLO_AUTH,
	 EHLO_BASE "250-SMTPUTF8\r\n250-DSN\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"},
};

START_TEST(test_ehlo)
{
	struct rt t;
	char got[1024];

	rt_init(&t);
	smtp_reply_ehlo(t.c, "mx.example", 10485760ULL, ehlo_cases[_i].offer);
	rt_take(&t, got, sizeof(got));
	ck_assert_str_eq(got, ehlo_cases[_i].want);
	rt_free(&t);
}
END_TEST

static const struct {
	int code;
	const char *enh, *text, *want;
} failed_cases[] = {
	{452, "4.3.1", "Insufficient system storage", "452 4.3.1 Insufficient system storage\r\n"},
	{451, "4.3.0", "Duplicate queue id", "451 4.3.0 Duplicate queue id\r\n"},
	/* What the queue leaves empty is filled in. */
	{451, "", "", "451 4.3.0 Error: queue failure\r\n"},
	/* Only a temporary failure may come from the queue: anything else is a bug. */
	{250, "2.0.0", "Ok", "451 2.0.0 Ok\r\n"},
	{550, "", "no", "451 4.3.0 no\r\n"},
	{0, "", "", "451 4.3.0 Error: queue failure\r\n"},
};

START_TEST(test_queue_failed)
{
	struct rt t;
	char got[1024];

	rt_init(&t);
	smtp_reply_queue_failed(t.c, failed_cases[_i].code, failed_cases[_i].enh,
				failed_cases[_i].text);
	rt_take(&t, got, sizeof(got));
	ck_assert_str_eq(got, failed_cases[_i].want);
	rt_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("smtp_reply");
	TCase *tc = tcase_create("reply");
	tcase_add_loop_test(tc, test_line, 0, sizeof(reply_lines) / sizeof(reply_lines[0]));
	tcase_add_test(tc, test_long_hostname);
	tcase_add_loop_test(tc, test_ehlo, 0, sizeof(ehlo_cases) / sizeof(ehlo_cases[0]));
	tcase_add_loop_test(tc, test_queue_failed, 0, sizeof(failed_cases) / sizeof(failed_cases[0]));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
