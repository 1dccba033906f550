/*
 * test_smtp_data.c - the DATA reader: unstuffing, the end of data, header
 * bookkeeping, limits, and every SMTP smuggling sequence, each fed in one
 * piece and in chunks of every size.
 */
#include "relayd/intake/smtp_data.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct data_run {
	int ends;        /* how many times the reader said "done" */
	size_t consumed; /* octets consumed through the first end */
	struct buf out;
	struct smtp_data d;
};

/* Feeds in[0..n) in chunks of step octets; stops consuming at the first end. */
static void data_run(const char *in, size_t n, size_t step, uint64_t max, struct data_run *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->out);
	smtp_data_init(&r->d, max);
	size_t off = 0;
	while (off < n && r->ends == 0) {
		size_t take = n - off < step ? n - off : step;
		int done = 0;
		size_t used = smtp_data_feed(&r->d, (const uint8_t *)in + off, take, &r->out, &done);
		ck_assert_uint_le(used, take);
		if (!done)
			ck_assert_uint_eq(used, take);
		off += used;
		if (done) {
			r->ends++;
			r->consumed = off;
		}
	}
}

static const struct {
	const char *in;
	const char *out;
	enum smtp_reply_id err;
} data_cases[] = {
	{".\r\n", "", SR_NONE},
	{"a\r\n.\r\n", "a\r\n", SR_NONE},
	{"a\r\n..b\r\n.\r\n", "a\r\n.b\r\n", SR_NONE},
	{"..\r\n.\r\n", ".\r\n", SR_NONE},
	{".x\r\n.\r\n", "x\r\n", SR_NONE},
	{"...\r\n.\r\n", "..\r\n", SR_NONE},
	{"a.\r\nb\r\n.\r\n", "a.\r\nb\r\n", SR_NONE},
	{"\r\n\r\n.\r\n", "\r\n\r\n", SR_NONE},
	{"8bit \xc3\xa9\r\n.\r\n", "8bit \xc3\xa9\r\n", SR_NONE},
	{"a\nb\r\n.\r\n", NULL, SR_DATA_BAD_EOL},
	{"a\rb\r\n.\r\n", NULL, SR_DATA_BAD_EOL},
	{"a\r\r\n.\r\n", NULL, SR_DATA_BAD_EOL},
	{".\rx\r\n.\r\n", NULL, SR_DATA_BAD_EOL},
	{".\n\r\n.\r\n", NULL, SR_DATA_BAD_EOL},
};

START_TEST(test_cases)
{
	const char *in = data_cases[_i].in;
	size_t n = strlen(in);
	for (size_t step = 1; step <= n; step++) {
		struct data_run r;
		data_run(in, n, step, 1000, &r);
		ck_assert_int_eq(r.ends, 1);
		ck_assert_uint_eq(r.consumed, n);
		ck_assert_int_eq(r.d.err, data_cases[_i].err);
		if (data_cases[_i].out) {
			ck_assert_uint_eq(buf_avail(&r.out), strlen(data_cases[_i].out));
			if (buf_avail(&r.out) > 0)
				ck_assert_mem_eq(buf_head(&r.out), data_cases[_i].out,
						 buf_avail(&r.out));
			ck_assert_uint_eq(r.d.size, strlen(data_cases[_i].out));
		}
		buf_free(&r.out);
	}
}
END_TEST

/* What follows a fake end of data in the smuggling attack. */
#define SMUGGLED "MAIL FROM:<admin@victim.example>\r\nRCPT TO:<x@victim.example>\r\nDATA\r\n" \
		 "From: admin@victim.example\r\n\r\nsmuggled\r\n"

/* sizeof keeps the NULs some sequences hold. */
#define SEQ(s) {s, sizeof(s) - 1}
static const struct {
	const char *s;
	size_t len;
} smuggle_seqs[] = {
	SEQ("\n.\n"), SEQ("\n.\r\n"), SEQ("\r.\r"), SEQ("\r.\n"), SEQ("\r\n.\r"),
	SEQ("\r\n.\n"), SEQ("\n.\r"), SEQ("\r.\r\n"), SEQ("\r\n\x00.\r\n"),
	SEQ("\r\n.\x00\r\n"), SEQ("\r\n.\r\x00\n"), SEQ("\r\n.\r\r"), SEQ("\n\n.\n\n"),
	SEQ("\r\r.\r\r"), SEQ("\r\n.\n\r"), SEQ("\n\r.\r\n"),
	SEQ("\r\n.\r \n"), SEQ("\r\n\r.\r\n"), SEQ("\n\r\n.\n"), SEQ("\x00\r\n.\n"),
};

START_TEST(test_smuggling)
{
	char in[512];
	size_t k = 0;
	const char *head = "Subject: test\r\n\r\nbody";
	memcpy(in + k, head, strlen(head));
	k += strlen(head);
	memcpy(in + k, smuggle_seqs[_i].s, smuggle_seqs[_i].len);
	k += smuggle_seqs[_i].len;
	memcpy(in + k, SMUGGLED, strlen(SMUGGLED));
	k += strlen(SMUGGLED);
	const char *tail = "\r\n.\r\nQUIT\r\n";
	memcpy(in + k, tail, strlen(tail));
	k += strlen(tail);

	for (size_t step = 1; step <= k; step++) {
		struct data_run r;
		data_run(in, k, step, 1 << 20, &r);
		/* One end, at the real <CRLF>.<CRLF>: QUIT is left for the command reader. */
		ck_assert_int_eq(r.ends, 1);
		ck_assert_uint_eq(r.consumed, k - 6);
		/* And the message is refused: nothing of it may be queued. */
		ck_assert_msg(r.d.err == SR_DATA_BAD_EOL, "seq %d step %zu err %d", _i, step,
			      r.d.err);
		buf_free(&r.out);
	}
}
END_TEST

START_TEST(test_headers)
{
	struct data_run r;
	const char *in = "Received: from a\r\nreceived: from b\r\n\tby c\r\nMessage-ID: <1@x>\r\n"
			 "DATE: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: hi\r\n\r\n"
			 "Received: in the body\r\n.\r\n";
	data_run(in, strlen(in), strlen(in), 1 << 20, &r);
	ck_assert_int_eq(r.d.received, 2);
	ck_assert_int_eq(r.d.has_msgid, 1);
	ck_assert_int_eq(r.d.has_date, 1);
	ck_assert_int_eq(r.d.in_headers, 0);
	buf_free(&r.out);

	/* Headers past the empty line, a folded "Date:", a name with blanks. */
	in = "Subject: x\r\n Date: folded\r\nX-Name : v\r\n\r\nMessage-ID: <1@x>\r\n.\r\n";
	data_run(in, strlen(in), 3, 1 << 20, &r);
	ck_assert_int_eq(r.d.has_msgid, 0);
	ck_assert_int_eq(r.d.has_date, 0);
	buf_free(&r.out);

	/* A line that is no header ends the headers. */
	in = "no header line\r\nDate: x\r\n.\r\n";
	data_run(in, strlen(in), 1, 1 << 20, &r);
	ck_assert_int_eq(r.d.has_date, 0);
	buf_free(&r.out);

	/* A first line that is folded is no header either. */
	in = " Date: x\r\nMessage-ID: <a@b>\r\n.\r\n";
	data_run(in, strlen(in), 1, 1 << 20, &r);
	ck_assert_int_eq(r.d.has_msgid, 0);
	buf_free(&r.out);
}
END_TEST

static void hops(struct buf *b, int n)
{
	buf_reset(b);
	for (int k = 0; k < n; k++)
		buf_appendf(b, "Received: from hop%d\r\n", k);
	buf_appendf(b, "\r\nbody\r\n.\r\n");
}

START_TEST(test_loop)
{
	struct buf in;
	struct data_run r;
	buf_init(&in);
	hops(&in, 100);
	data_run((char *)buf_head(&in), buf_avail(&in), 7, 1 << 20, &r);
	ck_assert_int_eq(r.d.err, SR_NONE);
	ck_assert_int_eq(r.d.received, 100);
	buf_free(&r.out);
	hops(&in, 101);
	data_run((char *)buf_head(&in), buf_avail(&in), 7, 1 << 20, &r);
	ck_assert_int_eq(r.d.err, SR_LOOP);
	ck_assert_int_eq(r.ends, 1);
	buf_free(&r.out);
	buf_free(&in);
}
END_TEST

START_TEST(test_limits)
{
	size_t max = SMTP_DATA_LINE_MAX;
	char *in = malloc(max + 16);
	struct data_run r;

	/* SMTP_DATA_LINE_MAX octets and CRLF: fine; stuffed, still fine; one more: refused. */
	memset(in, 'x', max);
	memcpy(in + max, "\r\n.\r\n", 6);
	data_run(in, strlen(in), 1000, 1 << 20, &r);
	ck_assert_int_eq(r.d.err, SR_NONE);
	buf_free(&r.out);
	in[0] = '.';
	memset(in + 1, 'x', max);
	memcpy(in + max + 1, "\r\n.\r\n", 6);
	data_run(in, strlen(in), 1000, 1 << 20, &r);
	ck_assert_int_eq(r.d.err, SR_NONE);
	ck_assert_uint_eq(r.d.size, max + 2);
	buf_free(&r.out);
	memset(in, 'x', max + 1);
	memcpy(in + max + 1, "\r\n.\r\n", 6);
	data_run(in, strlen(in), 1000, 1 << 20, &r);
	ck_assert_int_eq(r.d.err, SR_DATA_LONG_LINE);
	ck_assert_int_eq(r.ends, 1);
	buf_free(&r.out);
	free(in);

	/* Size: 12 octets of content against limits of 12 and 11. */
	data_run("0123456789\r\n.\r\n", 15, 4, 12, &r);
	ck_assert_int_eq(r.d.err, SR_NONE);
	buf_free(&r.out);
	data_run("0123456789\r\n.\r\n", 15, 4, 11, &r);
	ck_assert_int_eq(r.d.err, SR_TOO_BIG);
	ck_assert_int_eq(r.ends, 1);
	buf_free(&r.out);
}
END_TEST

START_TEST(test_nothing_after_end)
{
	/* Octets after the end are left alone, whatever they are. */
	struct data_run r;
	const char *in = "a\r\n.\r\n\n.\n";
	data_run(in, strlen(in), strlen(in), 1 << 20, &r);
	ck_assert_int_eq(r.ends, 1);
	ck_assert_uint_eq(r.consumed, 6);
	ck_assert_int_eq(r.d.err, SR_NONE);
	buf_free(&r.out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("smtp_data");
	TCase *tc = tcase_create("data");
	tcase_add_loop_test(tc, test_cases, 0, sizeof(data_cases) / sizeof(data_cases[0]));
	tcase_add_loop_test(tc, test_smuggling, 0, sizeof(smuggle_seqs) / sizeof(smuggle_seqs[0]));
	tcase_add_test(tc, test_headers);
	tcase_add_test(tc, test_loop);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_nothing_after_end);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
