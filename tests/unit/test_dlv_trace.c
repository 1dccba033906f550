/*
 * test_dlv_trace.c - the bounded transcript of delivery attempts: lines
 * kept whole, the first ones and the newest ones kept, the ones between
 * counted; control bytes from a server never reach it as such.
 */
#include "relayd/delivery/dlv_trace.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static const char *text_of(const struct dlv_trace *t, struct buf *b)
{
	buf_reset(b);
	dlv_trace_text(t, b);
	return (const char *)buf_head(b);
}

START_TEST(short_transcript_whole)
{
	struct dlv_trace t;
	struct buf b;
	dlv_trace_init(&t);
	buf_init(&b);
	ck_assert_int_eq(t.dirty, 0);
	dlv_trace_begin(&t, "attempt for %d recipient(s)", 2);
	dlv_trace_add(&t, '>', "EHLO %s", "relay.example");
	dlv_trace_add(&t, '<', "250 %s", "bad\r\nbyte\x01s");
	ck_assert_int_eq(t.dirty, 1);
	const char *s = text_of(&t, &b);
	/* "YYYY-MM-DD HH:MM:SS UTC attempt...", then "HH:MM:SS.mmm > ..." lines. */
	ck_assert_int_eq(s[4], '-');
	ck_assert_ptr_nonnull(strstr(s, " UTC attempt for 2 recipient(s)\n"));
	ck_assert_ptr_nonnull(strstr(s, " > EHLO relay.example\n"));
	ck_assert_ptr_nonnull(strstr(s, " < 250 bad??byte?s\n"));
	ck_assert_ptr_null(strstr(s, "not kept"));
	char *l2 = strchr(s, '\n') + 1;
	ck_assert(l2[2] == ':' && l2[5] == ':' && l2[8] == '.' && l2[12] == ' ' && l2[13] == '>');
	buf_free(&b);
	dlv_trace_free(&t);
}
END_TEST

START_TEST(long_transcript_bounded)
{
	struct dlv_trace t;
	struct buf b;
	char first[32], last[32];
	int n = 1000, kept = 0;
	dlv_trace_init(&t);
	buf_init(&b);
	for (int i = 0; i < n; i++)
		dlv_trace_add(&t, '>', "RCPT TO:<user%04d@example.org> and some more words", i);
	const char *s = text_of(&t, &b);
	ck_assert_uint_le(strlen(s), DLV_TRACE_MAX + 64);
	snprintf(first, sizeof(first), "<user%04d@", 0);
	snprintf(last, sizeof(last), "<user%04d@", n - 1);
	ck_assert_ptr_nonnull(strstr(s, first));
	ck_assert_ptr_nonnull(strstr(s, last));
	for (const char *p = s; (p = strstr(p, "RCPT TO:")) != NULL; p++)
		kept++;
	/* Every line is either kept whole or counted. */
	ck_assert_int_eq(kept + (int)t.omitted, n);
	char marker[64];
	snprintf(marker, sizeof(marker), "    ... %zu line(s) not kept ...\n", t.omitted);
	ck_assert_ptr_nonnull(strstr(s, marker));
	/* The head ends where the marker begins, on a line boundary. */
	ck_assert_int_eq(strstr(s, marker)[-1], '\n');
	buf_free(&b);
	dlv_trace_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_trace");
	TCase *tc = tcase_create("trace");
	tcase_add_test(tc, short_transcript_whole);
	tcase_add_test(tc, long_transcript_bounded);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
