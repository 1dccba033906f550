/*
 * test_addr_map.c - address patterns, the PATTERN REPLACEMENT map parser
 * (its errors by line), first-match rewriting, and the header address
 * rewriter over name-addrs, addr-specs, lists, groups, comments and what
 * must be left byte for byte.
 */
#include "common/addr_map.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *pat, *addr;
	int ok, match;
} pattern_cases[] = {
	{"root@printer.lan", "root@printer.lan", 1, 1},
	{"root@printer.lan", "ROOT@Printer.LAN", 1, 1},
	{"root@printer.lan", "root2@printer.lan", 1, 0},
	{"@example.org", "anyone@example.org", 1, 1},
	{"@example.org", "a@sub.example.org", 1, 0},
	{"@.lan.test", "a@web3.lan.test", 1, 1},
	{"@.lan.test", "a@x.y.lan.test", 1, 1},
	{"@.lan.test", "a@lan.test", 1, 0},
	{"@.lan.test", "a@xlan.test", 1, 0},
	{"root@.lan.test", "root@web3.lan.test", 1, 1},
	{"root@.lan.test", "www@web3.lan.test", 1, 0},
	{"@example.org", "", 1, 0},
	{"@example.org", "postmaster", 1, 0},
	{"example.org", NULL, 0, 0},
	{"@", NULL, 0, 0},
	{"@.", NULL, 0, 0},
	{"a..b@x.org", NULL, 0, 0},
	{"@x..org", NULL, 0, 0},
	{"a b@x.org", NULL, 0, 0},
	{"<a@x.org>", NULL, 0, 0},
	{"@x_y.org", NULL, 0, 0},
	/* IDN: the pattern and the address may each be in U-labels or A-labels. */
	{"@b\xc3\xbc\x63her.test", "a@xn--bcher-kva.test", 1, 1},
	{"@xn--bcher-kva.test", "a@b\xc3\xbc\x63her.test", 1, 1},
	{"@.b\xc3\xbc\x63her.test", "a@shop.B\xc3\x9c\x43HER.test", 1, 1},
	{"@b\xc3\xbc\x63her.test", "a@bucher.test", 1, 0},
	{"@xn--bcher-kva.test", "a@a\xe2\x99\xa5.test", 1, 0},
	{"@a\xe2\x99\xa5.test", NULL, 0, 0}, /* not allowed by IDNA2008 */
};

START_TEST(test_pattern)
{
	struct addr_pattern p;
	int rc = addr_pattern_parse(pattern_cases[_i].pat, &p);
	ck_assert_msg((rc == 0) == pattern_cases[_i].ok, "case %d: parse %d", _i, rc);
	if (rc == 0) {
		ck_assert_int_eq(addr_pattern_match(&p, pattern_cases[_i].addr),
				 pattern_cases[_i].match);
		addr_pattern_free(&p);
	}
}
END_TEST

/* Collects the errors of a map parse as "LINE: message" lines. */
static void collect(void *arg, unsigned line, const char *msg)
{
	char *acc = arg;
	size_t l = strlen(acc);
	snprintf(acc + l, 1024 - l, "%u: %s\n", line, msg);
}

static const char map_text[] =
	"# the LAN's hosts leave as the organisation\n"
	"\n"
	"root@printer.lan   it@example.org\r\n"
	"  @.lan.test\t@example.org\n"
	"@lan.test @example.org\n"
	"bogus\n"
	"@lan.test @example.org extra\n"
	"bad..pat@x.org @example.org\n"
	"@x.org not-an-address\n"
	"@printer.lan catchall@example.org";

static const struct {
	const char *in, *out; /* out NULL: not rewritten */
} map_cases[] = {
	{"root@printer.lan", "it@example.org"},
	{"lp@printer.lan", "catchall@example.org"},
	{"www-data@web3.lan.test", "www-data@example.org"},
	{"alice@lan.test", "alice@example.org"},
	{"alice@example.org", NULL},
	{"", NULL},
};

START_TEST(test_map)
{
	struct addr_map m = {0};
	char errs[1024] = "", out[256];
	int nerr = addr_map_parse(&m, map_text, strlen(map_text), collect, errs);
	ck_assert_int_eq(nerr, 4);
	ck_assert_uint_eq(m.n, 4);
	ck_assert_str_eq(errs, "6: expected \"PATTERN REPLACEMENT\"\n"
			       "7: expected \"PATTERN REPLACEMENT\"\n"
			       "8: bad pattern \"bad..pat@x.org\" (user@domain, @domain or @.domain)\n"
			       "9: bad replacement \"not-an-address\" (user@domain or @domain)\n");
	for (size_t i = 0; i < N(map_cases); i++) {
		int r = addr_map_apply(&m, map_cases[i].in, out, sizeof(out));
		ck_assert_msg(r == (map_cases[i].out != NULL), "%s: %d", map_cases[i].in, r);
		if (r)
			ck_assert_str_eq(out, map_cases[i].out);
	}
	/* A result that does not fit leaves the address alone. */
	ck_assert_int_eq(addr_map_apply(&m, "root@printer.lan", out, 8), 0);
	addr_map_free(&m);
}
END_TEST

static const char owners_text[] =
	"alice alice@lan.test @sales.example.org\n"
	"bob\n"
	"carol carol@example.org bad@@x\n"
	"alice alice2@lan.test\n";

static const struct {
	const char *user, *sender;
	int allow;
} owner_cases[] = {
	{"alice", "alice@lan.test", 1},
	{"alice", "ALICE@LAN.TEST", 1},
	{"alice", "alice2@lan.test", 1}, /* from her second line */
	{"alice", "x@sales.example.org", 1},
	{"alice", "x@sub.sales.example.org", 0},
	{"alice", "bob@lan.test", 0},
	{"Alice", "alice@lan.test", 0}, /* user names are exact */
	{"bob", "bob@lan.test", 0},     /* his line was bad */
	{"carol", "carol@example.org", 0},
	{"dave", "dave@lan.test", 0},
};

START_TEST(test_owners)
{
	struct addr_owners o = {0};
	char errs[1024] = "";
	ck_assert_int_eq(addr_owners_parse(&o, owners_text, strlen(owners_text), collect, errs), 2);
	ck_assert_str_eq(errs, "2: expected \"USER ADDRESS-OR-@DOMAIN...\" (up to 63)\n"
			       "3: bad address \"bad@@x\" (user@domain, @domain or @.domain)\n");
	ck_assert_uint_eq(o.n, 1);
	for (size_t i = 0; i < N(owner_cases); i++)
		ck_assert_msg(addr_owners_allow(&o, owner_cases[i].user, owner_cases[i].sender) ==
				      owner_cases[i].allow,
			      "%s %s", owner_cases[i].user, owner_cases[i].sender);
	addr_owners_free(&o);
}
END_TEST

static const struct {
	const char *in, *out;
	unsigned n;
} header_cases[] = {
	{" root@printer.lan", " it@example.org", 1},
	{" Printer <root@printer.lan>", " Printer <it@example.org>", 1},
	{" \"Root, the admin\" <root@printer.lan>", " \"Root, the admin\" <it@example.org>", 1},
	{" root@printer.lan (Printer daemon)", " it@example.org (Printer daemon)", 1},
	{" a@web3.lan.test, Bob <b@lan.test>,\r\n\tc@other.org",
	 " a@example.org, Bob <b@example.org>,\r\n\tc@other.org", 2},
	{" Team: a@web3.lan.test, <b@lan.test>; , d@lan.test",
	 " Team: a@example.org, <b@example.org>; , d@example.org", 3},
	{" Undisclosed recipients:;", " Undisclosed recipients:;", 0},
	{" < root@printer.lan >", " < it@example.org >", 1},
	/* Display names that look like addresses are names: left alone. */
	{" \"root@printer.lan\" <x@other.org>", " \"root@printer.lan\" <x@other.org>", 0},
	{" root@printer.lan <x@other.org>", " root@printer.lan <x@other.org>", 0},
	/* Quoted local parts: the domain is matched, the local part kept as written. */
	{" \"john smith\"@lan.test", " \"john smith\"@example.org", 1},
	/* What does not parse goes byte for byte. */
	{" <root@printer.lan", " <root@printer.lan", 0},
	{" \"unclosed <root@printer.lan>", " \"unclosed <root@printer.lan>", 0},
	{" (open comment root@printer.lan", " (open comment root@printer.lan", 0},
	{" <@relay.org:root@printer.lan>", " <@relay.org:root@printer.lan>", 0},
	{" root@[10.0.0.1]", " root@[10.0.0.1]", 0},
	{" two words@lan.test", " two words@lan.test", 0},
	{"", "", 0},
};

static struct addr_map header_map(void)
{
	static const char t[] = "root@printer.lan it@example.org\n@.lan.test @example.org\n"
				"@lan.test @example.org\n";
	struct addr_map m = {0};
	char errs[1024] = "";
	ck_assert_int_eq(addr_map_parse(&m, t, strlen(t), collect, errs), 0);
	return m;
}

START_TEST(test_header)
{
	struct addr_map m = header_map();
	struct buf b;
	buf_init(&b);
	const char *in = header_cases[_i].in;
	unsigned n = addr_header_rewrite(&m, in, strlen(in), &b);
	ck_assert_msg(buf_avail(&b) == strlen(header_cases[_i].out) &&
			      (buf_avail(&b) == 0 ||
			       memcmp(buf_head(&b), header_cases[_i].out, buf_avail(&b)) == 0),
		      "case %d: got \"%.*s\"", _i, (int)buf_avail(&b), (char *)buf_head(&b));
	ck_assert_uint_eq(n, header_cases[_i].n);
	buf_free(&b);
	addr_map_free(&m);
}
END_TEST

static const struct {
	const char *in, *out;
	int final;
	unsigned n;
} section_cases[] = {
	{"From: Root <root@printer.lan>\r\nTo: root@printer.lan\r\nreply-TO : a@lan.test\r\n"
	 "Sender: x@web3.lan.test\r\nSubject: root@printer.lan\r\n\r\nFrom: root@printer.lan\r\n",
	 "From: Root <it@example.org>\r\nTo: root@printer.lan\r\nreply-TO : a@example.org\r\n"
	 "Sender: x@example.org\r\nSubject: root@printer.lan\r\n\r\nFrom: root@printer.lan\r\n",
	 1, 3},
	/* Folded fields are one field. */
	{"From: A <a@lan.test>,\r\n B <b@lan.test>\r\n\r\n",
	 "From: A <a@example.org>,\r\n B <b@example.org>\r\n\r\n", 1, 2},
	/* The last field may go on in the next piece: not touched yet. */
	{"From: a@lan.test\r\n", "From: a@lan.test\r\n", 0, 0},
	{"To: x@y\r\nFrom: a@lan.test\r\n", "To: x@y\r\nFrom: a@lan.test\r\n", 0, 0},
	{"From: a@lan.test\r\nTo: x@y\r\n", "From: a@example.org\r\nTo: x@y\r\n", 0, 1},
	{"From: a@lan.", "From: a@lan.", 0, 0},
	/* A line that is no header ends the section. */
	{"not a header\r\nFrom: a@lan.test\r\n\r\n", "not a header\r\nFrom: a@lan.test\r\n\r\n", 1,
	 0},
};

START_TEST(test_section)
{
	struct addr_map m = header_map();
	struct buf b;
	buf_init(&b);
	const char *in = section_cases[_i].in;
	unsigned n = addr_header_section_rewrite(&m, in, strlen(in), section_cases[_i].final, &b);
	ck_assert_msg(buf_avail(&b) == strlen(section_cases[_i].out) &&
			      memcmp(buf_head(&b), section_cases[_i].out, buf_avail(&b)) == 0,
		      "case %d: got \"%.*s\"", _i, (int)buf_avail(&b), (char *)buf_head(&b));
	ck_assert_uint_eq(n, section_cases[_i].n);
	buf_free(&b);
	addr_map_free(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("addr_map");
	TCase *tc = tcase_create("addr_map");
	tcase_add_loop_test(tc, test_pattern, 0, N(pattern_cases));
	tcase_add_test(tc, test_map);
	tcase_add_test(tc, test_owners);
	tcase_add_loop_test(tc, test_header, 0, N(header_cases));
	tcase_add_loop_test(tc, test_section, 0, N(section_cases));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
