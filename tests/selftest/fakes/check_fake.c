/*
 * check_fake.c - a real Check program for the runner's self-test
 * (tests/selftest/test_run_sh.py), built with -DFAKE_MODE='"MODE"', one of:
 *   skips            tests that pass, skip with UNIT_SKIP, and a loop test
 *                    that skips one of its iterations
 *   fails            one test passes, one fails
 *   skip_then_fails  a test skips, then its teardown fails
 *   crash            a test passes, then it aborts after its 100% summary
 */
#include "tests/unit/unit_skip.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(passes)
{
	ck_assert_int_eq(1 + 1, 2);
}
END_TEST

START_TEST(skips)
{
	UNIT_SKIP("needs %s", "a device this host lacks");
}
END_TEST

START_TEST(loop_skips_one)
{
	if (_i == 1)
		UNIT_SKIP("iteration %d cannot run here", _i);
	ck_assert_int_ge(_i, 0);
}
END_TEST

START_TEST(fails)
{
	ck_assert_int_eq(1 + 1, 3);
}
END_TEST

static void teardown_fails(void)
{
	ck_assert_msg(0, "teardown failed");
}

static int mode(const char *m)
{
	return strcmp(FAKE_MODE, m) == 0;
}

int main(void)
{
	Suite *s = suite_create("fake");
	TCase *tc = tcase_create("fake");
	tcase_add_test(tc, passes);
	if (mode("skips")) {
		tcase_add_test(tc, skips);
		tcase_add_loop_test(tc, loop_skips_one, 0, 3);
	} else if (mode("fails")) {
		tcase_add_test(tc, fails);
	} else if (mode("skip_then_fails")) {
		TCase *td = tcase_create("teardown");
		tcase_add_checked_fixture(td, NULL, teardown_fails);
		tcase_add_test(td, skips);
		suite_add_tcase(s, td);
	} else if (!mode("crash")) {
		abort(); /* a mode this file does not know */
	}
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (mode("crash"))
		abort();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
