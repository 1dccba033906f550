/*
 * test_base64.c - RFC 4648 vectors and strictness of the decoder.
 */
#include "common/base64.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *plain, *enc;
} b64_vectors[] = {
	{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
	{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	{"\xff\xfe\xfd", "//79"}, {"\xfb\xff", "+/8="},
};

START_TEST(test_vectors)
{
	char enc[64];
	uint8_t dec[64];
	const char *plain = b64_vectors[_i].plain, *want = b64_vectors[_i].enc;

	ck_assert_int_eq(base64_encode(plain, strlen(plain), enc, sizeof(enc)), (long)strlen(want));
	ck_assert_str_eq(enc, want);
	ssize_t n = base64_decode(want, strlen(want), dec, sizeof(dec));
	ck_assert_int_eq(n, (long)strlen(plain));
	ck_assert_mem_eq(dec, plain, (size_t)n);
}
END_TEST

static const char *b64_bad[] = {
	"Zg", "Zg=", "Z===", "====", "Zm9v=", "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm!v",
	"Zh==", /* non-zero padding bits */
	"Zm9=", /* "fo" would be Zm8= */
	"=Zm9", "Z=g=",
};

START_TEST(test_bad)
{
	uint8_t dec[64];
	ck_assert_int_eq(base64_decode(b64_bad[_i], strlen(b64_bad[_i]), dec, sizeof(dec)), -1);
}
END_TEST

START_TEST(test_bounds)
{
	uint8_t dec[5];
	char enc[8];
	ck_assert_int_eq(base64_decode("Zm9vYmFy", 8, dec, 5), -1);
	ck_assert_int_eq(base64_decode("Zm9vYmE=", 8, dec, 5), 5);
	ck_assert_int_eq(base64_encode("foobar", 6, enc, 8), -1);
	ck_assert_int_eq(base64_encode("fooba", 5, enc, 9 - 1), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("base64");
	TCase *tc = tcase_create("base64");
	tcase_add_loop_test(tc, test_vectors, 0, sizeof(b64_vectors) / sizeof(b64_vectors[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(b64_bad) / sizeof(b64_bad[0]));
	tcase_add_test(tc, test_bounds);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
