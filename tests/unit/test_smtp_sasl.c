/*
 * test_smtp_sasl.c - AUTH PLAIN and LOGIN response decoding.
 */
#include "relayd/intake/smtp_sasl.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *line;
	enum smtp_sasl_result r;
	const char *user, *pass;
} plain_cases[] = {
	{"AHVzZXIAc2VjcmV0", SASL_OK, "user", "secret"},           /* \0user\0secret */
	{"dXNlcgB1c2VyAHNlY3JldA==", SASL_OK, "user", "secret"},   /* user\0user\0secret */
	{"AHVzZXIA", SASL_OK, "user", ""},                         /* empty password */
	{"b3RoZXIAdXNlcgBzZWNyZXQ=", SASL_REFUSED, "user", NULL},  /* other\0user\0secret */
	{"dXNlcnNlY3JldA==", SASL_BAD, NULL, NULL},                /* no NUL */
	{"AHVzZXI=", SASL_BAD, NULL, NULL},                        /* one NUL */
	{"AAA=", SASL_BAD, NULL, NULL},                            /* \0\0: no user */
	{"AHVzZXIAc2VjcmV0AHg=", SASL_BAD, NULL, NULL},            /* three NULs */
	{"AHVzZXIAc2VjcmV0!", SASL_BAD, NULL, NULL},
	{"*", SASL_CANCEL, NULL, NULL},
	{"=", SASL_BAD, NULL, NULL},
	{"", SASL_BAD, NULL, NULL},
};

START_TEST(test_plain)
{
	char user[64], pass[64];
	enum smtp_sasl_result r =
		smtp_sasl_plain(plain_cases[_i].line, user, sizeof(user), pass, sizeof(pass));
	ck_assert_msg(r == plain_cases[_i].r, "%s: %d", plain_cases[_i].line, r);
	if (plain_cases[_i].user != NULL)
		ck_assert_str_eq(user, plain_cases[_i].user);
	if (plain_cases[_i].pass != NULL)
		ck_assert_str_eq(pass, plain_cases[_i].pass);
}
END_TEST

static const struct {
	const char *line;
	enum smtp_sasl_result r;
	const char *text;
} login_cases[] = {
	{"dXNlcg==", SASL_OK, "user"},
	{"=", SASL_OK, ""},
	{"*", SASL_CANCEL, NULL},
	{"dXNlcg", SASL_BAD, NULL},
	{"AHVzZXI=", SASL_BAD, NULL}, /* a NUL inside */
	{"dXNl cg==", SASL_BAD, NULL},
	{"YWFhYWFhYWFhYWFhYWFhYQ==", SASL_BAD, NULL}, /* 16 octets into 16: no room for NUL */
};

START_TEST(test_login)
{
	char out[16];
	enum smtp_sasl_result r = smtp_sasl_decode(login_cases[_i].line, 0, out, sizeof(out), NULL);
	ck_assert_msg(r == login_cases[_i].r, "%s: %d", login_cases[_i].line, r);
	if (r == SASL_OK)
		ck_assert_str_eq(out, login_cases[_i].text);
}
END_TEST

START_TEST(test_plain_bounds)
{
	/* user\0user\0<70 x> does not fit a 64-octet password buffer. */
	char user[64], pass[64];
	ck_assert_int_eq(smtp_sasl_plain("AHUAeHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4",
					 user, sizeof(user), pass, sizeof(pass)),
			 SASL_BAD);
	ck_assert_int_eq(smtp_sasl_plain("AHUAeA==", user, 2, pass, 2), SASL_OK);
	ck_assert_int_eq(smtp_sasl_plain("AHV1AHg=", user, 2, pass, 2), SASL_BAD);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("smtp_sasl");
	TCase *tc = tcase_create("sasl");
	tcase_add_loop_test(tc, test_plain, 0, sizeof(plain_cases) / sizeof(plain_cases[0]));
	tcase_add_loop_test(tc, test_login, 0, sizeof(login_cases) / sizeof(login_cases[0]));
	tcase_add_test(tc, test_plain_bounds);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
