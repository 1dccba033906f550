/*
 * test_xmalloc.c - xstrndup/xstrdup copy what they should, including the
 * (NULL, 0) case an empty IPC payload can produce.
 */
#include "common/xmalloc.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *s;
	size_t n;
	const char *want;
} strndup_cases[] = {
	{NULL, 0, ""},
	{"abc", 0, ""},
	{"abc", 2, "ab"},
	{"abc", 3, "abc"},
	{"abc", 10, "abc"},	/* stops at the NUL, reads no further */
	{"a\0bc", 4, "a"},
};

START_TEST(test_strndup)
{
	char *d = xstrndup(strndup_cases[_i].s, strndup_cases[_i].n);

	ck_assert_str_eq(d, strndup_cases[_i].want);
	free(d);
}
END_TEST

START_TEST(test_strdup)
{
	char *d = xstrdup("relay");

	ck_assert_str_eq(d, "relay");
	free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xmalloc");
	TCase *tc = tcase_create("core");
	int nf;

	tcase_add_loop_test(tc, test_strndup, 0, sizeof(strndup_cases) / sizeof(strndup_cases[0]));
	tcase_add_test(tc, test_strdup);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
