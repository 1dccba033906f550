/*
 * test_intake_anvil.c - the failed-AUTH table: the limit and its window,
 * the log-once answer, IPv6 counted per /64 and mapped IPv4 as IPv4, the
 * limit 0 (off), and the bound: a flood of addresses never grows the table
 * past its size, the oldest address is the one forgotten.
 */
#include "relayd/intake/intake_anvil.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static int fail_at(struct intake_anvil *a, const char *ip, uint64_t now, unsigned limit,
		unsigned window)
{
	struct sockaddr_storage ss = addr(ip);
	return intake_anvil_fail(a, SA(ss), now, limit, window);
}

static int blocked(struct intake_anvil *a, const char *ip, uint64_t now, unsigned limit,
		   unsigned window, unsigned *retry)
{
	struct sockaddr_storage ss = addr(ip);
	return intake_anvil_blocked(a, SA(ss), now, limit, window, retry);
}

START_TEST(test_limit_and_window)
{
	struct intake_anvil *a = intake_anvil_new(16);
	unsigned retry = 0;
	uint64_t t0 = 1000000;

	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(blocked(a, "192.0.2.1", t0 + i, 3, 600, NULL), 0);
		/* Only the failure that reaches the limit says so (one log line). */
		ck_assert_int_eq(fail_at(a, "192.0.2.1", t0 + i, 3, 600), i == 3);
	}
	ck_assert_int_eq(blocked(a, "192.0.2.1", t0 + 10, 3, 600, &retry), 1);
	ck_assert_uint_eq(retry, 600);
	/* Other addresses are not concerned. */
	ck_assert_int_eq(blocked(a, "192.0.2.2", t0 + 10, 3, 600, NULL), 0);
	/* Failures past the limit (sessions already under way) do not log again. */
	ck_assert_int_eq(fail_at(a, "192.0.2.1", t0 + 20, 3, 600), 0);
	ck_assert_int_eq(blocked(a, "192.0.2.1", t0 + 599000, 3, 600, &retry), 1);
	ck_assert_uint_eq(retry, 2);
	/* The window counts from the first failure; at its end all is forgotten. */
	ck_assert_int_eq(blocked(a, "192.0.2.1", t0 + 1 + 600000, 3, 600, NULL), 0);
	ck_assert_uint_eq(intake_anvil_size(a), 0);
	ck_assert_int_eq(fail_at(a, "192.0.2.1", t0 + 700000, 3, 600), 0);
	ck_assert_int_eq(blocked(a, "192.0.2.1", t0 + 700000, 3, 600, NULL), 0);
	intake_anvil_free(a);
}
END_TEST

START_TEST(test_failures_spread_out)
{
	struct intake_anvil *a = intake_anvil_new(16);
	/* Two failures per window never reach 3. */
	for (uint64_t t = 0; t < 10; t++) {
		uint64_t now = 5000 + t * 601000;
		ck_assert_int_eq(fail_at(a, "198.51.100.7", now, 3, 600), 0);
		ck_assert_int_eq(fail_at(a, "198.51.100.7", now + 1000, 3, 600), 0);
		ck_assert_int_eq(blocked(a, "198.51.100.7", now + 2000, 3, 600, NULL), 0);
	}
	intake_anvil_free(a);
}
END_TEST

START_TEST(test_ipv6_prefix_and_mapped)
{
	struct intake_anvil *a = intake_anvil_new(16);
	/* One /64: hopping addresses inside it does not help. */
	ck_assert_int_eq(fail_at(a, "2001:db8:1:2::1", 10, 2, 60), 0);
	ck_assert_int_eq(fail_at(a, "2001:db8:1:2:ffff::9", 11, 2, 60), 1);
	ck_assert_int_eq(blocked(a, "2001:db8:1:2:abcd::5", 12, 2, 60, NULL), 1);
	ck_assert_int_eq(blocked(a, "2001:db8:1:3::1", 12, 2, 60, NULL), 0);
	/* ::ffff:192.0.2.9 is 192.0.2.9. */
	ck_assert_int_eq(fail_at(a, "::ffff:192.0.2.9", 10, 2, 60), 0);
	ck_assert_int_eq(fail_at(a, "192.0.2.9", 11, 2, 60), 1);
	ck_assert_int_eq(blocked(a, "::ffff:192.0.2.9", 12, 2, 60, NULL), 1);
	ck_assert_int_eq(blocked(a, "192.0.2.10", 12, 2, 60, NULL), 0);
	/* 0.0.0.0 and :: are not the same key. */
	ck_assert_int_eq(fail_at(a, "0.0.0.0", 10, 1, 60), 1);
	ck_assert_int_eq(blocked(a, "::", 10, 1, 60, NULL), 0);
	intake_anvil_free(a);
}
END_TEST

START_TEST(test_limit_zero_is_off)
{
	struct intake_anvil *a = intake_anvil_new(16);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(fail_at(a, "192.0.2.1", (uint64_t)i, 0, 600), 0);
	ck_assert_int_eq(blocked(a, "192.0.2.1", 100, 0, 600, NULL), 0);
	ck_assert_uint_eq(intake_anvil_size(a), 0);
	intake_anvil_free(a);
}
END_TEST

/* A peer with many addresses pushes on the bound. */
START_TEST(test_bounded)
{
	const size_t max = 1000;
	struct intake_anvil *a = intake_anvil_new(max);
	char ip[64];

	/* The first address reaches its limit, then 100,000 others fail once each. */
	ck_assert_int_eq(fail_at(a, "203.0.113.1", 1, 1, 600), 1);
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
		fail_at(a, ip, 2 + i / 1000, 5, 600);
		ck_assert_uint_le(intake_anvil_size(a), max);
	}
	ck_assert_uint_eq(intake_anvil_size(a), max);
	/* The oldest (the first address) was forgotten; the newest are there. */
	ck_assert_int_eq(blocked(a, "203.0.113.1", 200, 1, 600, NULL), 0);
	for (unsigned i = 100000 - 10; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
		for (int k = 0; k < 4; k++)
			fail_at(a, ip, 200, 5, 600);
		ck_assert_int_eq(blocked(a, ip, 200, 5, 600, NULL), 1);
	}
	ck_assert_uint_eq(intake_anvil_size(a), max);
	intake_anvil_free(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("intake_anvil");
	TCase *tc = tcase_create("anvil");
	tcase_add_test(tc, test_limit_and_window);
	tcase_add_test(tc, test_failures_spread_out);
	tcase_add_test(tc, test_ipv6_prefix_and_mapped);
	tcase_add_test(tc, test_limit_zero_is_off);
	tcase_add_test(tc, test_bounded);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
