/*
 * test_printable.c - untrusted bytes made safe to show: the UTF-8 sequence
 * check, printable() for logs and terminals (with and without kept
 * characters), and JSON strings that are valid UTF-8 whatever the input.
 */
#include "common/printable.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *in;
	size_t n;   /* octets given */
	size_t len; /* the answer */
} utf8_cases[] = {
	{"a", 1, 1},
	{"\x7f", 1, 1},
	{"\xc3\xa9", 2, 2},           /* é */
	{"\xc3\xa9", 1, 0},           /* cut short */
	{"\xe2\x82\xac", 3, 3},       /* € */
	{"\xf0\x9f\x98\x80", 4, 4},   /* U+1F600 */
	{"\xf4\x8f\xbf\xbf", 4, 4},   /* U+10FFFF */
	{"\xf4\x90\x80\x80", 4, 0},   /* above U+10FFFF */
	{"\xc0\xaf", 2, 0},           /* overlong '/' */
	{"\xc1\xbf", 2, 0},
	{"\xe0\x80\xaf", 3, 0},       /* overlong */
	{"\xf0\x80\x80\xaf", 4, 0},   /* overlong */
	{"\xed\xa0\x80", 3, 0},       /* surrogate U+D800 */
	{"\x80", 1, 0},               /* lone continuation */
	{"\xbf", 1, 0},
	{"\xff", 1, 0},
	{"\xfe", 1, 0},
	{"\xf5\x80\x80\x80", 4, 0},
	{"\xe2\x28\xa1", 3, 0},       /* bad second octet */
	{"\xe2\x82\x28", 3, 0},       /* bad third octet */
	{"", 0, 0},
};

START_TEST(test_utf8_len)
{
	size_t got = printable_utf8_len((const unsigned char *)utf8_cases[_i].in, utf8_cases[_i].n);
	ck_assert_msg(got == utf8_cases[_i].len, "case %d: got %zu want %zu", _i, got,
		      utf8_cases[_i].len);
}
END_TEST

static const struct {
	const char *in, *keep, *want;
} printable_cases[] = {
	{"plain text", "", "plain text"},
	{"", "", ""},
	/* A forged log line and a terminal escape: the attack of issue 9. */
	{"alice\nJan  1 00:00:00 host relayd: forged\x1b[2J", "",
	 "alice?Jan  1 00:00:00 host relayd: forged?[2J"},
	{"a\rb\tc\x01\x1f\x7f", "", "a?b?c???"},
	{"tab\tkept\nnewline", "\t\n", "tab\tkept\nnewline"},
	{"cr\r\x1b", "\t\n", "cr??"},
	/* Well-formed UTF-8 stays (SMTPUTF8 addresses); C1 controls do not. */
	{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
	{"csi\xc2\x9b" "2J", "", "csi??2J"},
	{"nbsp\xc2\xa0ok", "", "nbsp\xc2\xa0ok"},
	/* Ill-formed UTF-8: each octet replaced, the rest resynchronised. */
	{"bad\xff\xfe!", "", "bad??" "!"},
	{"raw8bit\x9b" "2J", "", "raw8bit?2J"},
	{"cut\xe2\x82", "", "cut??"},
	{"\xe2\x82" "ab", "", "??ab"},
	{"\xc0\xaf", "", "??"},
	{"\xed\xa0\x80x", "", "???x"},
	{"\xc3\xa9\x80\xc3\xa9", "", "\xc3\xa9?\xc3\xa9"},
};

START_TEST(test_printable)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", printable_cases[_i].in);
	size_t len = strlen(buf);
	char *r = printable_except(buf, '?', printable_cases[_i].keep);
	ck_assert_ptr_eq(r, buf);
	ck_assert_str_eq(buf, printable_cases[_i].want);
	ck_assert_uint_eq(strlen(buf), len);
}
END_TEST

START_TEST(test_printable_macro)
{
	char buf[] = "a\tb\nc";
	ck_assert_str_eq(printable(buf, '_'), "a_b_c");
}
END_TEST

/* Every octet value alone and after a lead octet: the output is clean. */
START_TEST(test_printable_all_octets)
{
	for (int lead = 0; lead < 256; lead += 17) {
		for (int c = 1; c < 256; c++) {
			char buf[4] = {(char)(lead ? lead : 'x'), (char)c, 'z', 0};
			printable(buf, '?');
			for (size_t i = 0; buf[i]; i++) {
				unsigned char o = (unsigned char)buf[i];
				ck_assert_msg(o >= 0x20 && o != 0x7f, "octet %02x after %02x left %02x",
					      c, lead, o);
			}
			size_t k = 0, n = strlen(buf);
			while (k < n) {
				size_t l = printable_utf8_len((unsigned char *)buf + k, n - k);
				ck_assert_msg(l > 0, "octets %02x %02x: ill-formed output", lead, c);
				k += l;
			}
		}
	}
}
END_TEST

static const struct {
	const char *in, *want;
} json_cases[] = {
	{"", "\"\""},
	{"plain", "\"plain\""},
	{"q\"b\\s/", "\"q\\\"b\\\\s/\""},
	{"nl\ncr\rtab\tesc\x1b del\x7f", "\"nl\\u000acr\\u000dtab\\u0009esc\\u001b del\\u007f\""},
	{"\x01\x1f", "\"\\u0001\\u001f\""},
	{"caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""},
	{"c1\xc2\x9b", "\"c1\\u009b\""},
	/* Ill-formed UTF-8: U+FFFD per octet. */
	{"bad\xff", "\"bad\xef\xbf\xbd\""},
	{"451 4.3.0 \xe9t\xe9", "\"451 4.3.0 \xef\xbf\xbdt\xef\xbf\xbd\""},
	{"cut\xe2\x82", "\"cut\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
};

START_TEST(test_json)
{
	struct buf b;
	buf_init(&b);
	printable_json(&b, json_cases[_i].in);
	buf_append(&b, "", 1);
	ck_assert_str_eq((const char *)buf_head(&b), json_cases[_i].want);
	buf_free(&b);
}
END_TEST

/* Whatever the bytes, the JSON string is well-formed UTF-8 without raw controls. */
START_TEST(test_json_all_octets)
{
	struct buf b;
	buf_init(&b);
	for (int lead = 0; lead < 256; lead += 5) {
		for (int c = 1; c < 256; c++) {
			char in[4] = {(char)(lead ? lead : 'x'), (char)c, '"', 0};
			buf_reset(&b);
			printable_json(&b, in);
			const unsigned char *p = buf_head(&b);
			size_t n = buf_avail(&b), k = 0;
			while (k < n) {
				size_t l = printable_utf8_len(p + k, n - k);
				ck_assert_msg(l > 0, "%02x %02x: ill-formed JSON", lead, c);
				ck_assert_msg(l > 1 || (p[k] >= 0x20 && p[k] != 0x7f),
					      "%02x %02x: raw control", lead, c);
				k += l;
			}
		}
	}
	buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("printable");
	TCase *tc = tcase_create("printable");
	tcase_add_loop_test(tc, test_utf8_len, 0, N(utf8_cases));
	tcase_add_loop_test(tc, test_printable, 0, N(printable_cases));
	tcase_add_test(tc, test_printable_macro);
	tcase_add_test(tc, test_printable_all_octets);
	tcase_add_loop_test(tc, test_json, 0, N(json_cases));
	tcase_add_test(tc, test_json_all_octets);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
