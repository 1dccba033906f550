/*
 * test_smtp_cmd.c - command line framing (CRLF only, 512 octets, no bare
 * CR/LF/NUL), verb splitting, and MAIL/RCPT arguments with parameters.
 */
#include "relayd/intake/smtp_cmd.h"
#include "common/ipc_types.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feeds input in one piece and in pieces of every size; the sequence of
 * lines and errors must be the same. Writes "L:<line>|" or "BARE|" / "LONG|". */
static void run_lines(const char *in, size_t n, size_t step, char *dst, size_t dstsz)
{
	struct smtp_line_reader lr = {SR_NONE};
	char pending[2048];
	size_t plen = 0, off = 0;

	dst[0] = '\0';
	while (off < n || plen > 0) {
		size_t take = n - off < step ? n - off : step;
		memcpy(pending + plen, in + off, take);
		plen += take;
		off += take;
		for (;;) {
			size_t used = 0, len = 0;
			enum smtp_reply_id err = SR_NONE;
			enum smtp_line_status st =
				smtp_line_next(&lr, (uint8_t *)pending, plen, &used, &len, &err);
			char item[600];
			item[0] = '\0';
			if (st == SMTP_LINE_OK)
				snprintf(item, sizeof(item), "L:%.*s|", (int)len, pending);
			else if (st == SMTP_LINE_ERR)
				snprintf(item, sizeof(item), "%s|",
					 err == SR_BARE_CRLF ? "BARE" : err == SR_LINE_TOO_LONG ? "LONG" : "?");
			strncat(dst, item, dstsz - strlen(dst) - 1);
			memmove(pending, pending + used, plen - used);
			plen -= used;
			if (st == SMTP_LINE_MORE)
				break;
		}
		if (take == 0)
			break;
	}
}

static char long510[600], long511[600];

static const struct {
	const char *in;
	size_t len; /* 0: strlen */
	const char *want;
} line_cases[] = {
	{"NOOP\r\n", 0, "L:NOOP|"},
	{"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 0, "L:MAIL FROM:<a@b>|L:RCPT TO:<c@d>|L:DATA|"},
	{"NOOP", 0, ""},
	{"NOOP\r", 0, ""},
	{"\r\n", 0, "L:|"},
	{"NOOP\n", 0, ""},
	{"NOOP\nQUIT\r\nNOOP\r\n", 0, "BARE|L:NOOP|"},
	{"NOOP\nMAIL FROM:<a@b>\r\n", 0, "BARE|"},
	{"NO\rOP\r\nQUIT\r\n", 0, "BARE|L:QUIT|"},
	{"NOOP\r\r\nQUIT\r\n", 0, "BARE|L:QUIT|"},
	{"NO\0OP\r\nQUIT\r\n", 13, "BARE|L:QUIT|"},
	{"\n.\nQUIT\r\n", 0, "BARE|"},
	{"\n.\n\r\nQUIT\r\n", 0, "BARE|L:QUIT|"},
	{"A\r\rB\r\nQUIT\r\n", 0, "BARE|L:QUIT|"},
	{long510, 0, NULL}, /* 510 + CRLF = 512: fine */
	{long511, 0, "LONG|L:QUIT|"},
};

START_TEST(test_lines)
{
	const char *in = line_cases[_i].in;
	size_t n = line_cases[_i].len ? line_cases[_i].len : strlen(in);
	char want[700], got[4096];

	if (line_cases[_i].want == NULL)
		snprintf(want, sizeof(want), "L:%.510s|", long510);
	else
		snprintf(want, sizeof(want), "%s", line_cases[_i].want);
	for (size_t step = 1; step <= n; step++) {
		run_lines(in, n, step, got, sizeof(got));
		ck_assert_msg(strcmp(got, want) == 0, "case %d step %zu: got %s", _i, step, got);
	}
}
END_TEST

static const struct {
	const char *line, *verb, *args;
} split_cases[] = {
	{"EHLO client.example", "EHLO", "client.example"},
	{"ehlo client.example", "EHLO", "client.example"},
	{"mAiL FROM:<a@b>", "MAIL", "FROM:<a@b>"},
	{"QUIT", "QUIT", ""},
	{"NOOP   x", "NOOP", "x"},
	{"", "", ""},
	{"AVERYLONGVERBTHATDOESNOTEXIST x", "", "x"},
};

START_TEST(test_split)
{
	struct smtp_cmd cmd;
	smtp_cmd_split(split_cases[_i].line, &cmd);
	ck_assert_str_eq(cmd.verb, split_cases[_i].verb);
	ck_assert_str_eq(cmd.args, split_cases[_i].args);
}
END_TEST

static const struct {
	const char *args;
	enum smtp_reply_id err;
	const char *addr;
	uint64_t size;
	int body8, utf8;
} mail_cases[] = {
	{"FROM:<a@example.org>", SR_NONE, "a@example.org", 0, 0, 0},
	{"from:<a@example.org>", SR_NONE, "a@example.org", 0, 0, 0},
	{"FROM: <a@example.org>", SR_NONE, "a@example.org", 0, 0, 0},
	{"FROM:<>", SR_NONE, "", 0, 0, 0},
	{"FROM:<a@example.org> SIZE=1000", SR_NONE, "a@example.org", 1000, 0, 0},
	{"FROM:<a@example.org> size=0 body=8bitmime", SR_NONE, "a@example.org", 0, 1, 0},
	{"FROM:<a@example.org> BODY=7BIT", SR_NONE, "a@example.org", 0, 0, 0},
	{"FROM:<a@example.org> SMTPUTF8", SR_NONE, "a@example.org", 0, 0, 1},
	{"FROM:<\xc3\xa9@example.org> SMTPUTF8", SR_NONE, "\xc3\xa9@example.org", 0, 0, 1},
	{"FROM:<a@example.org>  SIZE=5  ", SR_NONE, "a@example.org", 5, 0, 0},
	{"FROM:<\xc3\xa9@example.org>", SR_NEED_SMTPUTF8, NULL, 0, 0, 0},
	{"FROM:<a@example.org> FOO=bar", SR_UNKNOWN_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> AUTH=<>", SR_UNKNOWN_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> NOTIFY=NEVER", SR_UNKNOWN_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> RET=hdrs RET=FULL", SR_DUP_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> RET=NONE", SR_BAD_RET, NULL, 0, 0, 0},
	{"FROM:<a@example.org> ENVID=a=b", SR_SYNTAX, NULL, 0, 0, 0},
	{"FROM:<a@example.org> ENVID=a+2", SR_BAD_ENVID, NULL, 0, 0, 0},
	{"FROM:<a@example.org> ENVID=a+0A", SR_BAD_ENVID, NULL, 0, 0, 0},
	{"FROM:<a@example.org> ENVID=a+2b", SR_BAD_ENVID, NULL, 0, 0, 0},
	{"FROM:<a@example.org> ENVID=x ENVID=y", SR_DUP_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> ENVID=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	 SR_BAD_ENVID, NULL, 0, 0, 0},
	{"FROM:<a@example.org> BODY=BINARYMIME", SR_BAD_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> SIZE=abc", SR_BAD_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> SIZE=99999999999999999999999", SR_BAD_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> SIZE", SR_BAD_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> SIZE=", SR_SYNTAX, NULL, 0, 0, 0},
	{"FROM:<a@example.org> SMTPUTF8=yes", SR_BAD_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org> SIZE=1 SIZE=2", SR_DUP_PARAM, NULL, 0, 0, 0},
	{"FROM:<a@example.org>SIZE=1", SR_BAD_SENDER, NULL, 0, 0, 0},
	{"FROM:a@example.org", SR_BAD_SENDER, NULL, 0, 0, 0},
	{"FROM <a@example.org>", SR_SYNTAX, NULL, 0, 0, 0},
	{"TO:<a@example.org>", SR_SYNTAX, NULL, 0, 0, 0},
	{"", SR_SYNTAX, NULL, 0, 0, 0},
};

/* RET= and ENVID= (RFC 3461 4.3, 4.4): decoded values. */
static const struct {
	const char *args;
	unsigned ret;
	const char *envid;
} dsn_mail_cases[] = {
	{"FROM:<a@example.org> RET=HDRS", DSN_RET_HDRS, ""},
	{"FROM:<a@example.org> ret=full ENVID=QQ314159", DSN_RET_FULL, "QQ314159"},
	{"FROM:<a@example.org> ENVID=a+2Bb+20c+3D", 0, "a+b c="},
	{"FROM:<a@example.org> ENVID=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	 0, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
};

START_TEST(test_dsn_mail)
{
	struct smtp_mail_args m;
	enum smtp_reply_id err = smtp_parse_mail(dsn_mail_cases[_i].args, &m);
	ck_assert_msg(err == SR_NONE, "%s: %d", dsn_mail_cases[_i].args, err);
	ck_assert_uint_eq(m.ret, dsn_mail_cases[_i].ret);
	ck_assert_str_eq(m.envid, dsn_mail_cases[_i].envid);
}
END_TEST

START_TEST(test_mail)
{
	struct smtp_mail_args m;
	enum smtp_reply_id err = smtp_parse_mail(mail_cases[_i].args, &m);
	ck_assert_msg(err == mail_cases[_i].err, "%s: %d", mail_cases[_i].args, err);
	if (err != SR_NONE)
		return;
	ck_assert_str_eq(m.path.addr, mail_cases[_i].addr);
	ck_assert_uint_eq(m.size, mail_cases[_i].size);
	ck_assert_int_eq(m.body_8bit, mail_cases[_i].body8);
	ck_assert_int_eq(m.smtputf8, mail_cases[_i].utf8);
}
END_TEST

static const struct {
	const char *args;
	int utf8;
	enum smtp_reply_id err;
} rcpt_cases[] = {
	{"TO:<c@example.org>", 0, SR_NONE},
	{"to: <c@example.org>", 0, SR_NONE},
	{"TO:<Postmaster>", 0, SR_NONE},
	{"TO:<\xc3\xa9@example.org>", 1, SR_NONE},
	{"TO:<\xc3\xa9@example.org>", 0, SR_NEED_SMTPUTF8},
	{"TO:<>", 0, SR_BAD_RCPT},
	{"TO:<c@example.org> SIZE=10", 0, SR_UNKNOWN_PARAM},
	{"TO:<c@example.org> RET=FULL", 0, SR_UNKNOWN_PARAM},
	{"FROM:<c@example.org>", 0, SR_SYNTAX},
	{"TO:c@example.org", 0, SR_BAD_RCPT},
	{"TO:<c@example.org> NOTIFY=NEVER,SUCCESS", 0, SR_BAD_NOTIFY},
	{"TO:<c@example.org> NOTIFY=SUCCESS,SUCCESS", 0, SR_BAD_NOTIFY},
	{"TO:<c@example.org> NOTIFY=SUCCESS,", 0, SR_BAD_NOTIFY},
	{"TO:<c@example.org> NOTIFY=ALWAYS", 0, SR_BAD_NOTIFY},
	{"TO:<c@example.org> NOTIFY=NEVER NOTIFY=NEVER", 0, SR_DUP_PARAM},
	{"TO:<c@example.org> NOTIFY", 0, SR_BAD_PARAM},
	{"TO:<c@example.org> ORCPT=c@example.org", 0, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=x400;c", 0, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=rfc822;", 0, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=rfc822;a+0Db", 0, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=rfc822;a+C3+A9", 0, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=utf-8;j\xc3\xb6rg@x", 0, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=utf-8;a\\x{0A}", 1, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=utf-8;a\\x{41}", 1, SR_BAD_ORCPT},
	{"TO:<c@example.org> ORCPT=rfc822;a ORCPT=rfc822;b", 0, SR_DUP_PARAM},
};

START_TEST(test_rcpt)
{
	struct smtp_rcpt_args r;
	enum smtp_reply_id err = smtp_parse_rcpt(rcpt_cases[_i].args, rcpt_cases[_i].utf8, &r);
	ck_assert_msg(err == rcpt_cases[_i].err, "%s: %d", rcpt_cases[_i].args, err);
}
END_TEST

/* NOTIFY= and ORCPT= (RFC 3461 4.1, 4.2; RFC 6533 3): what is kept. */
static const struct {
	const char *args;
	int utf8;
	unsigned notify;
	const char *orcpt;
} dsn_rcpt_cases[] = {
	{"TO:<c@example.org> NOTIFY=NEVER", 0, DSN_NOTIFY_NEVER, ""},
	{"TO:<c@example.org> notify=delay,Success,FAILURE", 0,
	 DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, ""},
	{"TO:<c@example.org> ORCPT=rfc822;C+2Bx@Example.ORG NOTIFY=FAILURE", 0, DSN_NOTIFY_FAILURE,
	 "rfc822;C+x@Example.ORG"},
	{"TO:<c@example.org> ORCPT=RFC822;a@b", 0, 0, "rfc822;a@b"},
	{"TO:<c@example.org> ORCPT=utf-8;j\\x{F6}rg@x", 0, 0, "utf-8;j\xc3\xb6rg@x"},
	{"TO:<c@example.org> ORCPT=utf-8;j\xc3\xb6rg@x", 1, 0, "utf-8;j\xc3\xb6rg@x"},
	{"TO:<c@example.org> ORCPT=utf-8;a\\x{2B}b", 0, 0, "utf-8;a+b"},
};

START_TEST(test_dsn_rcpt)
{
	struct smtp_rcpt_args r;
	enum smtp_reply_id err = smtp_parse_rcpt(dsn_rcpt_cases[_i].args, dsn_rcpt_cases[_i].utf8, &r);
	ck_assert_msg(err == SR_NONE, "%s: %d", dsn_rcpt_cases[_i].args, err);
	ck_assert_str_eq(r.path.addr, "c@example.org");
	ck_assert_uint_eq(r.notify, dsn_rcpt_cases[_i].notify);
	ck_assert_str_eq(r.orcpt, dsn_rcpt_cases[_i].orcpt);
}
END_TEST

int main(void)
{
	memset(long510, 'x', 510);
	memcpy(long510 + 510, "\r\n", 3);
	memset(long511, 'x', 511);
	memcpy(long511 + 511, "\r\nQUIT\r\n", 9);

	Suite *s = suite_create("smtp_cmd");
	TCase *tc = tcase_create("cmd");
	tcase_add_loop_test(tc, test_lines, 0, sizeof(line_cases) / sizeof(line_cases[0]));
	tcase_add_loop_test(tc, test_split, 0, sizeof(split_cases) / sizeof(split_cases[0]));
	tcase_add_loop_test(tc, test_mail, 0, sizeof(mail_cases) / sizeof(mail_cases[0]));
	tcase_add_loop_test(tc, test_rcpt, 0, sizeof(rcpt_cases) / sizeof(rcpt_cases[0]));
	tcase_add_loop_test(tc, test_dsn_mail, 0, sizeof(dsn_mail_cases) / sizeof(dsn_mail_cases[0]));
	tcase_add_loop_test(tc, test_dsn_rcpt, 0, sizeof(dsn_rcpt_cases) / sizeof(dsn_rcpt_cases[0]));
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
