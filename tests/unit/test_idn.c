/*
 * test_idn.c - U-labels to A-labels (IDNA2008 with the UTS #46 mapping)
 * and back: the forms a domain takes for the DNS, routes and next hops
 * without SMTPUTF8, and the names that have no such form.
 */
#include "common/idn.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *in;
	const char *want; /* NULL: refused */
} to_ascii_cases[] = {
	{"b\xc3\xbc\x63her.test", "xn--bcher-kva.test"},
	/* UTS #46 mapping: case, and compatibility forms. */
	{"B\xc3\x9c\x43HER.Test", "xn--bcher-kva.test"},
	{"\xe2\x85\xa7.test", "viii.test"},                  /* ROMAN NUMERAL EIGHT */
	/* NFC first: "u" + COMBINING DIAERESIS is "ü". */
	{"bu\xcc\x88\x63her.test", "xn--bcher-kva.test"},
	/* Non-transitional: "ß" stays itself (IDNA2008), not "ss". */
	{"stra\xc3\x9f\x65.de", "xn--strae-oqa.de"},
	{"\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", "xn--r8jz45g.xn--zckzah"},
	{"b\xc3\xbc\x63her.test.", "xn--bcher-kva.test."},
	/* ASCII is only lower-cased, "_" and all. */
	{"Example.ORG", "example.org"},
	{"host_name.example", "host_name.example"},
	{"xn--bcher-kva.test", "xn--bcher-kva.test"},
	{"[192.0.2.1]", "[192.0.2.1]"},
	{"[IPv6:2001:db8::1]", "[ipv6:2001:db8::1]"},
	/* Refused by IDNA2008. */
	{"a\xe2\x99\xa5.test", NULL},                         /* a symbol */
	{"\xcc\x81x.test", NULL},                             /* leading combining mark */
	{"a\xe2\x80\x8d\x62.test", NULL},                     /* ZERO WIDTH JOINER out of context */
	{"\xff\xfe.test", NULL},                              /* not UTF-8 */
};

START_TEST(test_to_ascii)
{
	char out[256], err[128] = "";
	int rc = idn_domain_to_ascii(to_ascii_cases[_i].in, out, sizeof(out), err, sizeof(err));

	if (to_ascii_cases[_i].want == NULL) {
		ck_assert_msg(rc == -1, "case %d converted to %s", _i, out);
		ck_assert_msg(err[0] != '\0', "case %d: no reason given", _i);
		return;
	}
	ck_assert_msg(rc == 0, "case %d refused: %s", _i, err);
	ck_assert_str_eq(out, to_ascii_cases[_i].want);
}
END_TEST

START_TEST(test_to_ascii_fits)
{
	char small[8], err[128];
	/* 18 octets of A-labels do not fit in 8: refused, never cut. */
	ck_assert_int_eq(idn_domain_to_ascii("b\xc3\xbc\x63her.test", small, sizeof(small), err,
					     sizeof(err)), -1);
	ck_assert_int_eq(idn_domain_to_ascii("example.org", small, sizeof(small), err,
					     sizeof(err)), -1);
	/* A label of 64 octets once converted is no domain. */
	char big[128];
	memset(big, 0, sizeof(big));
	memcpy(big, "\xc3\xbc", 2);
	memset(big + 2, 'a', 62);
	strcat(big, ".test");
	ck_assert_int_eq(idn_domain_to_ascii(big, small, sizeof(small), err, sizeof(err)), -1);
}
END_TEST

static const struct {
	const char *in;
	const char *want; /* NULL: nothing to convert */
} to_utf8_cases[] = {
	{"xn--bcher-kva.test", "b\xc3\xbc\x63her.test"},
	{"shop.XN--BCHER-KVA.test", "shop.b\xc3\xbc\x63her.test"},
	{"example.org", NULL},
	{"xn--zz.test", NULL},                                /* bad punycode */
	{"b\xc3\xbc\x63her.test", NULL},                      /* already UTF-8 */
};

START_TEST(test_to_utf8)
{
	char out[256] = "";
	int rc = idn_domain_to_utf8(to_utf8_cases[_i].in, out, sizeof(out));

	if (to_utf8_cases[_i].want == NULL) {
		ck_assert_msg(rc == 0, "case %d converted to %s", _i, out);
		return;
	}
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(out, to_utf8_cases[_i].want);
}
END_TEST

static const struct {
	const char *in, *want;
	int rc;
} addr_cases[] = {
	{"user@b\xc3\xbc\x63her.test", "user@xn--bcher-kva.test", 0},
	/* The local part is kept: a UTF-8 one still needs SMTPUTF8. */
	{"j\xc3\xb6rg@b\xc3\xbc\x63her.test", "j\xc3\xb6rg@xn--bcher-kva.test", 0},
	{"\"a@b\"@b\xc3\xbc\x63her.test", "\"a@b\"@xn--bcher-kva.test", 0},
	{"User@Example.ORG", "User@Example.ORG", 0},
	{"postmaster", "postmaster", 0},
	{"", "", 0},
	{"user@a\xe2\x99\xa5.test", "user@a\xe2\x99\xa5.test", -1},
};

START_TEST(test_addr)
{
	char out[512];
	ck_assert_int_eq(idn_addr_to_ascii(addr_cases[_i].in, out, sizeof(out)), addr_cases[_i].rc);
	ck_assert_str_eq(out, addr_cases[_i].want);
}
END_TEST

START_TEST(test_is_ascii)
{
	ck_assert_int_eq(idn_is_ascii("example.org"), 1);
	ck_assert_int_eq(idn_is_ascii(""), 1);
	ck_assert_int_eq(idn_is_ascii("b\xc3\xbc\x63her.test"), 0);
	ck_assert_int_eq(idn_is_ascii("\x80"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("idn");
	TCase *tc = tcase_create("idn");
	tcase_add_loop_test(tc, test_to_ascii, 0, N(to_ascii_cases));
	tcase_add_test(tc, test_to_ascii_fits);
	tcase_add_loop_test(tc, test_to_utf8, 0, N(to_utf8_cases));
	tcase_add_loop_test(tc, test_addr, 0, N(addr_cases));
	tcase_add_test(tc, test_is_ascii);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
