/*
 * test_qid.c - queue ids and RFC 5322 dates (common/qid.c).
 */
#include "common/qid.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

START_TEST(qid_format_and_uniqueness)
{
	char ids[64][QID_LEN];
	for (int i = 0; i < 64; i++) {
		qid_new(ids[i]);
		ck_assert_uint_eq(strlen(ids[i]), 16);
		ck_assert_uint_eq(strspn(ids[i], "0123456789ABCDEF"), 16);
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
	}
}
END_TEST

static const struct {
	const char *tz;
	int64_t t;
	const char *want;
} date_cases[] = {
	{"UTC0", 0, "Thu, 1 Jan 1970 00:00:00 +0000"},
	{"UTC0", 1795325581, "Sun, 22 Nov 2026 05:33:01 +0000"},
	{"CET-1", 1795325581, "Sun, 22 Nov 2026 06:33:01 +0100"},
	{"EST5", 1795325581, "Sun, 22 Nov 2026 00:33:01 -0500"},
	{"IST-5:30", 951782400, "Tue, 29 Feb 2000 05:30:00 +0530"},
};

/* English names and a numeric offset whatever the zone. */
START_TEST(date_rfc5322)
{
	char got[64];
	setenv("TZ", date_cases[_i].tz, 1);
	tzset();
	qid_date(date_cases[_i].t, got, sizeof(got));
	ck_assert_str_eq(got, date_cases[_i].want);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qid");
	TCase *tc = tcase_create("qid");
	tcase_add_test(tc, qid_format_and_uniqueness);
	tcase_add_loop_test(tc, date_rfc5322, 0, sizeof(date_cases) / sizeof(date_cases[0]));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
