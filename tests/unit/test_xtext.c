/*
 * test_xtext.c - xtext (RFC 3461) and utf-8-addr-xtext (RFC 6533): good
 * and bad input from tables, the limits of the buffer, and encode then
 * decode giving back every printable ASCII and some UTF-8.
 */
#include "common/xtext.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *in;
	const char *out; /* NULL: refused */
} xtext_cases[] = {
	{"abc", "abc"},
	{"a+2Bb", "a+b"},
	{"+3D+20+7E", "= ~"},
	{"", ""},
	{"a+2b", NULL},   /* hex is upper case */
	{"a+2", NULL},    /* cut short */
	{"a+", NULL},
	{"a=b", NULL},    /* "=" is never bare */
	{"a b", NULL},    /* nor a blank */
	{"a+0Ab", NULL},  /* a control character decoded */
	{"a+C3+A9", NULL}, /* 8-bit decoded */
	{"\xc3\xa9", NULL},
};

START_TEST(test_xtext_decode)
{
	char out[64];
	int n = xtext_decode(xtext_cases[_i].in, out, sizeof(out));
	if (xtext_cases[_i].out == NULL) {
		ck_assert_msg(n < 0, "%s accepted", xtext_cases[_i].in);
		return;
	}
	ck_assert_int_eq(n, (int)strlen(xtext_cases[_i].out));
	ck_assert_str_eq(out, xtext_cases[_i].out);
}
END_TEST

static const struct {
	const char *in;
	int utf8;
	const char *out;
} utf8_cases[] = {
	{"j\\x{F6}rg@x", 0, "j\xc3\xb6rg@x"},
	{"j\xc3\xb6rg@x", 1, "j\xc3\xb6rg@x"},
	{"j\xc3\xb6rg@x", 0, NULL},            /* raw UTF-8 only with SMTPUTF8 */
	{"a\\x{2B}b\\x{3D}\\x{5C}", 0, "a+b=\\"},
	{"\\x{1F600}", 0, "\xf0\x9f\x98\x80"},
	{"\\x{41}", 0, NULL},                  /* printable ASCII is never escaped */
	{"\\x{0041}", 0, NULL},
	{"\\x{D800}", 0, NULL},                /* a surrogate */
	{"\\x{110000}", 0, NULL},
	{"\\x{0A}", 0, NULL},
	{"\\x{f6}", 0, "\xc3\xb6"},       /* ABNF's HEXDIG: either case */
	{"a+b", 0, NULL},
	{"a\\b", 0, NULL},
	{"\\x{F6", 0, NULL},
};

START_TEST(test_xtext_decode_utf8)
{
	char out[64];
	int n = xtext_decode_utf8(utf8_cases[_i].in, utf8_cases[_i].utf8, out, sizeof(out));
	if (utf8_cases[_i].out == NULL) {
		ck_assert_msg(n < 0, "%s accepted", utf8_cases[_i].in);
		return;
	}
	ck_assert_str_eq(out, utf8_cases[_i].out);
}
END_TEST

START_TEST(test_xtext_roundtrip)
{
	char ascii[96], enc[400], dec[100];
	for (int c = ' '; c <= '~'; c++)
		ascii[c - ' '] = (char)c;
	ascii[95] = '\0';
	ck_assert_int_gt(xtext_encode(ascii, enc, sizeof(enc)), 0);
	ck_assert_ptr_null(strpbrk(enc, " ="));
	ck_assert_int_eq(xtext_decode(enc, dec, sizeof(dec)), 95);
	ck_assert_str_eq(dec, ascii);
	static const char u[] = "j\xc3\xb6rg+x=y\\z \xf0\x9f\x98\x80@b\xc3\xbc" "cher.example";
	ck_assert_int_gt(xtext_encode_utf8(u, enc, sizeof(enc)), 0);
	for (const char *p = enc; *p; p++)
		ck_assert((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f);
	ck_assert_int_gt(xtext_decode_utf8(enc, 0, dec, sizeof(dec)), 0);
	ck_assert_str_eq(dec, u);
	/* Too small a buffer is a refusal, never a cut. */
	ck_assert_int_eq(xtext_encode("a+b", enc, 4), -1);
	ck_assert_int_eq(xtext_decode("abcd", dec, 4), -1);
	ck_assert_int_eq(xtext_decode("abc", dec, 4), 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xtext");
	TCase *tc = tcase_create("xtext");
	tcase_add_loop_test(tc, test_xtext_decode, 0, sizeof(xtext_cases) / sizeof(xtext_cases[0]));
	tcase_add_loop_test(tc, test_xtext_decode_utf8, 0, sizeof(utf8_cases) / sizeof(utf8_cases[0]));
	tcase_add_test(tc, test_xtext_roundtrip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
