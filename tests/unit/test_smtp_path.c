/*
 * test_smtp_path.c - the RFC 5321 path grammar: good paths with what they
 * parse to, bad paths with the reply they earn.
 */
#include "relayd/intake/smtp_path.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S SMTP_PATH_SENDER
#define U SMTP_PATH_UTF8

static const struct {
	const char *in;
	unsigned flags;
	const char *addr, *domain; /* what the mailbox reads as */
	int used;                  /* octets consumed */
} path_good[] = {
	{"<user@example.org>", 0, "user@example.org", "example.org", 18},
	{"<user@example.org> SIZE=10", S, "user@example.org", "example.org", 18},
	{"<>", S, "", "", 2},
	{"<Postmaster>", 0, "Postmaster", "", 12},
	{"<postmaster>", 0, "postmaster", "", 12},
	{"<POSTMASTER@example.org>", 0, "POSTMASTER@example.org", "example.org", 24},
	{"<first.last@sub.example.org>", 0, "first.last@sub.example.org", "sub.example.org", 28},
	{"<a+tag@example.org>", 0, "a+tag@example.org", "example.org", 19},
	{"<!#$%&'*+-/=?^_`{|}~@example.org>", 0, "!#$%&'*+-/=?^_`{|}~@example.org", "example.org", 33},
	{"<\"john doe\"@example.org>", 0, "\"john doe\"@example.org", "example.org", 24},
	{"<\"a\\\"b\"@example.org>", 0, "\"a\\\"b\"@example.org", "example.org", 20},
	{"<\"\"@example.org>", 0, "\"\"@example.org", "example.org", 16},
	{"<user@[192.0.2.1]>", 0, "user@[192.0.2.1]", "[192.0.2.1]", 18},
	{"<user@[IPv6:2001:db8::1]>", 0, "user@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", 25},
	{"<user@[ipv6:::1]>", 0, "user@[ipv6:::1]", "[ipv6:::1]", 17},
	{"<@relay.example:user@example.org>", 0, "user@example.org", "example.org", 33},
	{"<@a.example,@b.example:user@example.org>", 0, "user@example.org", "example.org", 40},
	{"<user@x>", 0, "user@x", "x", 8},
	{"<user@1-2.example>", 0, "user@1-2.example", "1-2.example", 18},
	{"<user@123.example>", 0, "user@123.example", "123.example", 18},
	{"<u\xc3\xa9@example.org>", U, "u\xc3\xa9@example.org", "example.org", 17},
	{"<user@b\xc3\xbc\x63her.example>", U, "user@b\xc3\xbc\x63her.example", "b\xc3\xbc\x63her.example", 22},
	{"<\"caf\xc3\xa9\"@example.org>", U, "\"caf\xc3\xa9\"@example.org", "example.org", 21},
	{"<user%other.example@relay.example>", 0, "user%other.example@relay.example", "relay.example", 34},
	{"<\"user@other.example\"@relay.example>", 0, "\"user@other.example\"@relay.example", "relay.example", 36},
};

START_TEST(test_good)
{
	struct smtp_path p;
	enum smtp_reply_id err = SR_NONE;
	const char *in = path_good[_i].in;
	int n = smtp_path_parse(in, strlen(in), path_good[_i].flags, &p, &err);
	ck_assert_msg(n == path_good[_i].used, "%s: used %d err %d", in, n, err);
	ck_assert_str_eq(p.addr, path_good[_i].addr);
	ck_assert_str_eq(p.domain, path_good[_i].domain);
}
END_TEST

static char long_local[160], long_domain[300], long_path[400], ok_local[80];

static const struct {
	const char *in;
	unsigned flags;
	enum smtp_reply_id err;
} path_bad[] = {
	{"user@example.org", 0, SR_BAD_RCPT},
	{"<user@example.org", 0, SR_BAD_RCPT},
	{"<user@example.org", S, SR_BAD_SENDER},
	{"<>", 0, SR_BAD_RCPT},
	{"<user>", 0, SR_BAD_RCPT},
	{"<Postmaster>", S, SR_BAD_SENDER},
	{"<@example.org>", 0, SR_BAD_RCPT},
	{"<user@>", 0, SR_BAD_RCPT},
	{"<.user@example.org>", 0, SR_BAD_RCPT},
	{"<user.@example.org>", 0, SR_BAD_RCPT},
	{"<us..er@example.org>", 0, SR_BAD_RCPT},
	{"<us er@example.org>", 0, SR_BAD_RCPT},
	{"<user@exa mple.org>", 0, SR_BAD_RCPT},
	{"<user@example.org.>", 0, SR_BAD_RCPT},
	{"<user@.example.org>", 0, SR_BAD_RCPT},
	{"<user@example..org>", 0, SR_BAD_RCPT},
	{"<user@-example.org>", 0, SR_BAD_RCPT},
	{"<user@example-.org>", 0, SR_BAD_RCPT},
	{"<user@exa_mple.org>", 0, SR_BAD_RCPT},
	{"<user@[192.0.2.256]>", 0, SR_BAD_RCPT},
	{"<user@[192.0.2]>", 0, SR_BAD_RCPT},
	{"<user@[IPv6:2001:db8::g]>", 0, SR_BAD_RCPT},
	{"<user@[2001:db8::1]>", 0, SR_BAD_RCPT},
	{"<user@[x-tag:abc]>", 0, SR_BAD_RCPT},
	{"<user@[]>", 0, SR_BAD_RCPT},
	{"<user@[192.0.2.1>", 0, SR_BAD_RCPT},
	{"<\"unterminated@example.org>", 0, SR_BAD_RCPT},
	{"<\"a\\\x01\"@example.org>", 0, SR_BAD_RCPT},
	{"<\"a\tb\"@example.org>", 0, SR_BAD_RCPT},
	{"<a\"b\"@example.org>", 0, SR_BAD_RCPT},
	{"<user@example.org@relay.example>", 0, SR_BAD_RCPT},
	{"<@relay.example user@example.org>", 0, SR_BAD_RCPT},
	{"<@relay.example:>", 0, SR_BAD_RCPT},
	{"<@:user@example.org>", 0, SR_BAD_RCPT},
	{"<user@example.org>>", 0, SR_NONE}, /* used 18: the caller sees the ">" */
	{"<u\xc3\xa9@example.org>", 0, SR_NEED_SMTPUTF8},
	{"<user@b\xc3\xbc\x63her.example>", 0, SR_NEED_SMTPUTF8},
	/* U-labels IDNA2008 does not allow: a symbol, a leading combining mark. */
	{"<user@a\xe2\x99\xa5.test>", U, SR_BAD_IDN_RCPT},
	{"<user@a\xe2\x99\xa5.test>", S | U, SR_BAD_IDN_SENDER},
	{"<user@\xcc\x81x.test>", U, SR_BAD_IDN_RCPT},
	{"<u\xc3@example.org>", U, SR_BAD_RCPT},          /* truncated UTF-8 */
	{"<u\xc0\xaf@example.org>", U, SR_BAD_RCPT},      /* overlong */
	{"<u\xed\xa0\x80@example.org>", U, SR_BAD_RCPT},  /* surrogate */
	{"<user\x01@example.org>", 0, SR_BAD_RCPT},
	{"", 0, SR_BAD_RCPT},
	{"<", 0, SR_BAD_RCPT},
	{long_local, 0, SR_LOCAL_TOO_LONG},
	/* A domain over 255 octets always makes the path too long as well. */
	{long_domain, 0, SR_PATH_TOO_LONG},
	{long_path, 0, SR_PATH_TOO_LONG},
	{"<user@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example>", 0, SR_BAD_RCPT}, /* 64-octet label */
};

static void make_long_paths(void)
{
	/* A local part of 65 octets, a domain of 257, a path of 257. */
	memset(ok_local, 'a', 64);
	snprintf(long_local, sizeof(long_local), "<%sb@example.org>", ok_local);
	char label[64];
	memset(label, 'd', 62);
	label[62] = '\0';
	snprintf(long_domain, sizeof(long_domain), "<u@%s.%s.%s.%s.%s>", label, label, label, label,
		 "abcde");
	/* 64-octet local part + @ + 190-octet domain + <> = 257 octets. */
	snprintf(long_path, sizeof(long_path), "<%s@%.62s.%.62s.%.62s.x>", ok_local, label, label,
		 label);
}

START_TEST(test_bad)
{
	struct smtp_path p;
	enum smtp_reply_id err = SR_NONE;
	const char *in = path_bad[_i].in;
	int n = smtp_path_parse(in, strlen(in), path_bad[_i].flags, &p, &err);
	if (path_bad[_i].err == SR_NONE) {
		ck_assert_int_eq(n, 18);
		return;
	}
	ck_assert_msg(n == -1, "%s: accepted (%d)", in, n);
	ck_assert_msg(err == path_bad[_i].err, "%s: err %d, want %d", in, err, path_bad[_i].err);
}
END_TEST

START_TEST(test_limits_exact)
{
	/* A 64-octet local part and a 256-octet path are still fine. */
	char in[300], label[64];
	struct smtp_path p;
	enum smtp_reply_id err = SR_NONE;

	memset(label, 'd', 62);
	label[62] = '\0';
	snprintf(in, sizeof(in), "<%s@example.org>", ok_local);
	ck_assert_int_eq(smtp_path_parse(in, strlen(in), 0, &p, &err), (int)strlen(in));
	snprintf(in, sizeof(in), "<%s@%.62s.%.62s.%.61s.x>", ok_local, label, label, label);
	ck_assert_int_eq(strlen(in), 256);
	ck_assert_int_eq(smtp_path_parse(in, strlen(in), 0, &p, &err), 256);
	ck_assert_int_eq(strlen(long_path), 257);
}
END_TEST

static const struct {
	const char *in;
	int relay_chars;
} path_relay[] = {
	{"<user@relay.example>", 0},
	{"<user%other.example@relay.example>", 1},
	{"<\"user@other.example\"@relay.example>", 1},
	{"<other.example!user@relay.example>", 1},
	{"<\"other.example!user\"@relay.example>", 1},
	{"<@relay.example:user@other.example>", 0},
};

START_TEST(test_relay_chars)
{
	struct smtp_path p;
	enum smtp_reply_id err = SR_NONE;
	const char *in = path_relay[_i].in;
	ck_assert_int_gt(smtp_path_parse(in, strlen(in), 0, &p, &err), 0);
	ck_assert_int_eq(p.relay_chars, path_relay[_i].relay_chars);
	if (strchr(in, ':') != NULL) {
		ck_assert_int_eq(p.had_route, 1);
		ck_assert_str_eq(p.domain, "other.example");
	}
}
END_TEST

START_TEST(test_flags)
{
	struct smtp_path p;
	enum smtp_reply_id err = SR_NONE;
	ck_assert_int_eq(smtp_path_parse("<>", 2, S, &p, &err), 2);
	ck_assert_int_eq(p.is_null, 1);
	ck_assert_int_eq(smtp_path_parse("<Postmaster>", 12, 0, &p, &err), 12);
	ck_assert_int_eq(p.is_postmaster, 1);
	ck_assert_int_eq(smtp_path_parse("<u@[192.0.2.1]>", 15, 0, &p, &err), 15);
	ck_assert_int_eq(p.is_literal, 1);
	ck_assert_int_eq(smtp_path_parse("<u\xc3\xa9@x>", 7, U, &p, &err), 7);
	ck_assert_int_eq(p.utf8, 1);
	/* The length bound is honoured: no reading past len. */
	ck_assert_int_eq(smtp_path_parse("<user@example.org>", 10, 0, &p, &err), -1);
}
END_TEST

/* HELO/EHLO names: the RFC 5321 forms and the real-world ones kept. */
static const struct {
	const char *in;
	int valid;
} helo_cases[] = {
	{"mail.example.org", 1},
	{"localhost", 1},               /* no dots: a Domain of one label */
	{"DESKTOP-ABC123", 1},
	{"my_pc", 1},                   /* Windows names */
	{"my_pc.corp.local", 1},
	{"xn--bcher-kva.example", 1},
	{"192.0.2.1", 1},               /* a bare address is a valid name */
	{"[192.0.2.1]", 1},
	{"[IPv6:2001:db8::1]", 1},
	{"[ipv6:::1]", 1},
	{"a", 1},
	{"x-1.y-2.z", 1},
	{"", 0},
	{"-host", 0},
	{"host-", 0},
	{"a..b", 0},
	{".a", 0},
	{"a.", 0},
	{"[192.0.2.1", 0},
	{"[192.0.2.1]x", 0},
	{"[300.1.1.1]", 0},
	{"[tag:foo]", 0},               /* general literals are not addresses */
	{"[IPv6:zz]", 0},
	{"[]", 0},
	{"ho st", 0},
	{"host\x01", 0},
	{"host\x1b[2J", 0},
	{"host\tname", 0},
	{"caf\xc3\xa9.example", 0},     /* ASCII only */
	{"host\xff", 0},
	{"a/b", 0},
	{"user@example.org", 0},
	{"<client.example>", 0},
};

START_TEST(test_helo)
{
	ck_assert_msg(smtp_helo_valid(helo_cases[_i].in) == helo_cases[_i].valid, "%s",
		      helo_cases[_i].in);
}
END_TEST

START_TEST(test_helo_lengths)
{
	char label[70], name[300];
	memset(label, 'a', 63);
	label[63] = '\0';
	ck_assert_int_eq(smtp_helo_valid(label), 1);
	label[63] = 'a';
	label[64] = '\0';
	ck_assert_int_eq(smtp_helo_valid(label), 0);
	/* 255 octets in all at most. */
	memset(name, 'a', sizeof(name));
	for (size_t i = 60; i < sizeof(name); i += 61)
		name[i] = '.';
	name[255] = '\0';
	ck_assert_int_eq(smtp_helo_valid(name), 1);
	name[255] = 'a';
	name[256] = '\0';
	ck_assert_int_eq(smtp_helo_valid(name), 0);
}
END_TEST

int main(void)
{
	make_long_paths();
	Suite *s = suite_create("smtp_path");
	TCase *tc = tcase_create("path");
	tcase_add_loop_test(tc, test_good, 0, sizeof(path_good) / sizeof(path_good[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(path_bad) / sizeof(path_bad[0]));
	tcase_add_loop_test(tc, test_relay_chars, 0, sizeof(path_relay) / sizeof(path_relay[0]));
	tcase_add_test(tc, test_limits_exact);
	tcase_add_test(tc, test_flags);
	tcase_add_loop_test(tc, test_helo, 0, sizeof(helo_cases) / sizeof(helo_cases[0]));
	tcase_add_test(tc, test_helo_lengths);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
