/*
 * test_dlv_reply.c - the delivery client's reply parser and EHLO
 * extension reader (relayd/delivery/smtpc_reply.c).
 */
#include "relayd/delivery/smtpc_reply.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct reply_case {
	const char *input;
	enum smtpc_parse result;
	int code;
	const char *enh;
	const char *oneline;
	size_t left; /* bytes left in the buffer after the reply */
};

static const struct reply_case reply_cases[] = {
	{"250 2.0.0 Ok\r\n", SMTPC_DONE, 250, "2.0.0", "250 2.0.0 Ok", 0},
	{"250 Ok\r\n", SMTPC_DONE, 250, "", "250 Ok", 0},
	{"250\r\n", SMTPC_DONE, 250, "", "250", 0},
	{"220 mx.example.org ESMTP\n", SMTPC_DONE, 220, "", "220 mx.example.org ESMTP", 0},
	{"250-first\r\n250-second\r\n250 last\r\n", SMTPC_DONE, 250, "", "250 first second last", 0},
	{"550-5.1.1 User\r\n550 5.1.1 unknown\r\n", SMTPC_DONE, 550, "5.1.1",
	 "550 5.1.1 User 5.1.1 unknown", 0},
	{"451 4.3.0 Try later\r\n250 next\r\n", SMTPC_DONE, 451, "4.3.0", "451 4.3.0 Try later", 10},
	/* An enhanced code of the wrong class is text, not a code. */
	{"550 2.1.1 odd\r\n", SMTPC_DONE, 550, "", "550 2.1.1 odd", 0},
	{"550 5.1.10 null MX\r\n", SMTPC_DONE, 550, "5.1.10", "550 5.1.10 null MX", 0},
	{"550 5.1.1234 x\r\n", SMTPC_DONE, 550, "", "550 5.1.1234 x", 0},
	{"550 5.1.1x\r\n", SMTPC_DONE, 550, "", "550 5.1.1x", 0},
	/* Control bytes in the text are masked, tabs kept. */
	{"550 a\x01" "b\x7f\tc\r\n", SMTPC_DONE, 550, "", "550 a?b? c", 0},
	{"250-more", SMTPC_MORE, 0, "", NULL, 8},
	{"250-a\r\n", SMTPC_MORE, 0, "", NULL, 0},
	{"", SMTPC_MORE, 0, "", NULL, 0},
	{"25\r\n", SMTPC_BAD, 0, "", NULL, 0},
	{"abc def\r\n", SMTPC_BAD, 0, "", NULL, 0},
	{"650 too high\r\n", SMTPC_BAD, 0, "", NULL, 0},
	{"150 too low\r\n", SMTPC_BAD, 0, "", NULL, 0},
	{"250x\r\n", SMTPC_BAD, 0, "", NULL, 0},
	{"250-a\r\n251 b\r\n", SMTPC_BAD, 0, "", NULL, 0},
	{"\r\n", SMTPC_BAD, 0, "", NULL, 0},
};

START_TEST(test_reply_table)
{
	const struct reply_case *tc = &reply_cases[_i];
	struct smtpc_reply r;
	struct buf b;

	buf_init(&b);
	buf_append(&b, tc->input, strlen(tc->input));
	smtpc_reply_init(&r);
	enum smtpc_parse res = smtpc_reply_read(&r, &b);
	ck_assert_msg(res == tc->result, "%s: result %d, want %d", tc->input, res, tc->result);
	if (res == SMTPC_DONE) {
		char line[256];
		ck_assert_int_eq(r.code, tc->code);
		ck_assert_str_eq(r.enh, tc->enh);
		smtpc_reply_oneline(&r, line, sizeof(line));
		ck_assert_str_eq(line, tc->oneline);
	}
	if (res != SMTPC_BAD)
		ck_assert_uint_eq(buf_avail(&b), tc->left);
	buf_free(&b);
}
END_TEST

/* A reply split at every byte boundary parses the same as in one piece. */
START_TEST(test_reply_bytewise)
{
	const char *in = "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
	struct smtpc_reply r;
	struct buf b;
	enum smtpc_parse res = SMTPC_MORE;

	buf_init(&b);
	smtpc_reply_init(&r);
	for (size_t i = 0; in[i]; i++) {
		ck_assert_int_eq(res, SMTPC_MORE);
		buf_append(&b, in + i, 1);
		res = smtpc_reply_read(&r, &b);
	}
	ck_assert_int_eq(res, SMTPC_DONE);
	ck_assert_int_eq(r.code, 250);
	ck_assert_uint_eq(r.nlines, 3);
	ck_assert_str_eq(r.text, "mx.example.org\nPIPELINING\nSIZE 1000");
	buf_free(&b);
}
END_TEST

START_TEST(test_reply_long_line)
{
	struct smtpc_reply r;
	struct buf b;
	char *junk = malloc(SMTPC_LINE_MAX + 10);

	memset(junk, 'a', SMTPC_LINE_MAX + 10);
	memcpy(junk, "250 ", 4);
	buf_init(&b);
	buf_append(&b, junk, SMTPC_LINE_MAX + 10);
	smtpc_reply_init(&r);
	ck_assert_int_eq(smtpc_reply_read(&r, &b), SMTPC_BAD);
	buf_free(&b);
	free(junk);
}
END_TEST

/* Text beyond SMTPC_TEXT_MAX is cut, never overflows. */
START_TEST(test_reply_text_bounded)
{
	struct smtpc_reply r;
	char line[600];

	smtpc_reply_init(&r);
	memset(line, 'x', sizeof(line));
	memcpy(line, "250-", 4);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(smtpc_reply_line(&r, line, sizeof(line)), SMTPC_MORE);
	line[3] = ' ';
	ck_assert_int_eq(smtpc_reply_line(&r, line, sizeof(line)), SMTPC_DONE);
	ck_assert_uint_eq(r.textlen, SMTPC_TEXT_MAX - 1);
	ck_assert_uint_eq(strlen(r.text), SMTPC_TEXT_MAX - 1);
}
END_TEST

struct caps_case {
	const char *input;
	unsigned ext;
	unsigned long long size_max;
	unsigned auth;
};

static const struct caps_case caps_cases[] = {
	{"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
	 "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n",
	 SMTPC_EXT_PIPELINING | SMTPC_EXT_SIZE | SMTPC_EXT_8BITMIME | SMTPC_EXT_STARTTLS |
	 SMTPC_EXT_ENHANCED | SMTPC_EXT_SMTPUTF8, 10240000, 0},
	{"250-mx\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 size\r\n",
	 SMTPC_EXT_AUTH | SMTPC_EXT_SIZE, 0, SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN},
	{"250-mx\r\n250-AUTH=LOGIN\r\n250 AUTH CRAM-MD5\r\n", SMTPC_EXT_AUTH, 0, SMTPC_AUTH_LOGIN},
	{"250-mx\r\n250 SIZE abc\r\n", SMTPC_EXT_SIZE, 0, 0},
	{"250-mx\r\n250 SIZE 12x\r\n", SMTPC_EXT_SIZE, 0, 0},
	/* The greeting line is a name, not an extension. */
	{"250 PIPELINING\r\n", 0, 0, 0},
	{"250-mx\r\n250-PIPELININGX\r\n250-X-UNKNOWN PIPELINING\r\n250 DELIVERBY\r\n", 0, 0, 0},
	{"250-mx\r\n250 DSN\r\n", SMTPC_EXT_DSN, 0, 0},
};

START_TEST(test_caps_table)
{
	const struct caps_case *tc = &caps_cases[_i];
	struct smtpc_reply r;
	struct smtpc_caps caps;
	struct buf b;

	buf_init(&b);
	buf_append(&b, tc->input, strlen(tc->input));
	smtpc_reply_init(&r);
	ck_assert_int_eq(smtpc_reply_read(&r, &b), SMTPC_DONE);
	smtpc_caps_parse(&r, &caps);
	ck_assert_uint_eq(caps.ext, tc->ext);
	ck_assert_uint_eq(caps.size_max, tc->size_max);
	ck_assert_uint_eq(caps.auth, tc->auth);
	buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_reply");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_reply_table, 0, sizeof(reply_cases) / sizeof(reply_cases[0]));
	tcase_add_test(tc, test_reply_bytewise);
	tcase_add_test(tc, test_reply_long_line);
	tcase_add_test(tc, test_reply_text_bounded);
	tcase_add_loop_test(tc, test_caps_table, 0, sizeof(caps_cases) / sizeof(caps_cases[0]));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
