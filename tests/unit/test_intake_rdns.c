/*
 * test_intake_rdns.c - the cache of client names, on a clock the test
 * moves: answers kept for their age and no longer, the size bound pushed
 * (least recently used entries go, entries with a lookup in flight never
 * do), waiters told in order and able to leave, address keys (IPv4-mapped
 * IPv6 is IPv4).
 */
#include "relayd/intake/intake_rdns.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rdns_key key4(const char *ip)
{
	struct sockaddr_in sin;
	struct rdns_key k;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	ck_assert_int_eq(rdns_key_of((struct sockaddr *)&sin, &k), 0);
	return k;
}

/* An entry for ip, answered at now. */
static struct rdns_entry *put(struct rdns_cache *c, const char *ip, enum rdns_result res,
			      const char *name, uint64_t now, uint64_t ttl)
{
	struct rdns_key k = key4(ip);
	struct rdns_entry *e = rdns_cache_add(c, &k);

	ck_assert_ptr_nonnull(e);
	e->inflight = 0;
	rdns_cache_answer(e, res, name, now, ttl);
	return e;
}

static struct rdns_entry *get(struct rdns_cache *c, const char *ip, uint64_t now)
{
	struct rdns_key k = key4(ip);
	return rdns_cache_find(c, &k, now);
}

START_TEST(test_answer_kept_for_its_age)
{
	struct rdns_cache *c = rdns_cache_new(8);

	put(c, "192.0.2.1", RDNS_VERIFIED, "mail.example.org", 1000, 500);
	struct rdns_entry *e = get(c, "192.0.2.1", 1499);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->res, RDNS_VERIFIED);
	ck_assert_str_eq(e->name, "mail.example.org");
	ck_assert_ptr_null(get(c, "192.0.2.2", 1499));
	/* At its age it is gone, and takes no room. */
	ck_assert_ptr_null(get(c, "192.0.2.1", 1500));
	ck_assert_uint_eq(rdns_cache_count(c), 0);
	/* An unverified answer has no name, whatever was given. */
	e = put(c, "192.0.2.3", RDNS_UNVERIFIED, "liar.example", 0, 100);
	ck_assert_str_eq(e->name, "");
	rdns_cache_free(c);
}
END_TEST

START_TEST(test_bound_pushes_out_least_recently_used)
{
	struct rdns_cache *c = rdns_cache_new(4);
	char ip[32];

	for (int i = 1; i <= 4; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		put(c, ip, RDNS_VERIFIED, "h.example", 0, 1000000);
	}
	ck_assert_uint_eq(rdns_cache_count(c), 4);
	/* .1 is used again: .2 is now the least recently used. */
	ck_assert_ptr_nonnull(get(c, "198.51.100.1", 10));
	put(c, "198.51.100.5", RDNS_VERIFIED, "h.example", 20, 1000000);
	ck_assert_uint_eq(rdns_cache_count(c), 4);
	ck_assert_ptr_null(get(c, "198.51.100.2", 30));
	ck_assert_ptr_nonnull(get(c, "198.51.100.1", 30));
	ck_assert_ptr_nonnull(get(c, "198.51.100.3", 30));
	/* A thousand more distinct clients: never more than the bound. */
	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 250, i % 250);
		put(c, ip, RDNS_UNVERIFIED, "", 40, 1000000);
		ck_assert_uint_le(rdns_cache_count(c), 4);
	}
	ck_assert_uint_eq(rdns_cache_count(c), 4);
	ck_assert_ptr_nonnull(get(c, "10.3.249.1", 50));
	ck_assert_ptr_null(get(c, "198.51.100.1", 50));
	rdns_cache_free(c);
}
END_TEST

START_TEST(test_inflight_never_pushed_out)
{
	struct rdns_cache *c = rdns_cache_new(2);
	struct rdns_key a = key4("203.0.113.1"), b = key4("203.0.113.2"), d = key4("203.0.113.3");

	struct rdns_entry *ea = rdns_cache_add(c, &a);
	struct rdns_entry *eb = rdns_cache_add(c, &b);
	ck_assert_ptr_nonnull(ea);
	ck_assert_ptr_nonnull(eb);
	/* Full of lookups in flight: no room, and nothing is lost. */
	ck_assert_ptr_null(rdns_cache_add(c, &d));
	ck_assert_uint_eq(rdns_cache_count(c), 2);
	/* An answer given by the budget still leaves the lookup in flight. */
	rdns_cache_answer(ea, RDNS_TEMPFAIL, "", 0, 0);
	ck_assert_ptr_null(rdns_cache_add(c, &d));
	ck_assert_ptr_eq(rdns_cache_find(c, &a, 5), ea);
	/* Once the lookup is over, the entry can make room. */
	eb->inflight = 0;
	rdns_cache_answer(eb, RDNS_VERIFIED, "b.example", 0, 1000);
	ck_assert_ptr_nonnull(rdns_cache_add(c, &d));
	ck_assert_ptr_null(rdns_cache_find(c, &b, 5));
	ck_assert_ptr_eq(rdns_cache_find(c, &a, 5), ea);
	/* clear keeps what is in flight. */
	rdns_cache_clear(c);
	ck_assert_uint_eq(rdns_cache_count(c), 2);
	rdns_cache_free(c);
}
END_TEST

/* Waiters record the order they were told in. */
static char told[256];

static void waiter_cb(struct intake_rdns_wait *w, enum rdns_result res, const char *name)
{
	char one[64];
	snprintf(one, sizeof(one), "%p:%d:%s;", (void *)w, (int)res, name);
	strncat(told, one, sizeof(told) - strlen(told) - 1);
	ck_assert_ptr_null(w->prevp);
}

START_TEST(test_waiters)
{
	struct rdns_cache *c = rdns_cache_new(4);
	struct rdns_key k = key4("192.0.2.9");
	struct intake_rdns_wait w[3];
	char want[256];

	memset(w, 0, sizeof(w));
	told[0] = '\0';
	struct rdns_entry *e = rdns_cache_add(c, &k);
	for (int i = 0; i < 3; i++) {
		w[i].cb = waiter_cb;
		/* As intake_rdns_lookup does: at the tail. */
		struct intake_rdns_wait **pp = &e->waiters;
		while (*pp)
			pp = &(*pp)->next;
		w[i].prevp = pp;
		*pp = &w[i];
	}
	/* The one in the middle leaves (its session closed). */
	intake_rdns_cancel(&w[1]);
	intake_rdns_cancel(&w[1]);
	e->inflight = 0;
	rdns_cache_answer(e, RDNS_VERIFIED, "nine.example", 0, 1000);
	snprintf(want, sizeof(want), "%p:%d:nine.example;%p:%d:nine.example;", (void *)&w[0],
		 (int)RDNS_VERIFIED, (void *)&w[2], (int)RDNS_VERIFIED);
	ck_assert_str_eq(told, want);
	ck_assert_ptr_null(e->waiters);
	rdns_cache_free(c);
}
END_TEST

START_TEST(test_keys)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	struct rdns_key k6, k4;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	ck_assert_int_eq(rdns_key_of((struct sockaddr *)&sin6, &k6), 0);
	k4 = key4("192.0.2.1");
	ck_assert_int_eq(memcmp(&k6, &k4, sizeof(k4)), 0);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ck_assert_int_eq(rdns_key_of((struct sockaddr *)&sin6, &k6), 0);
	ck_assert_int_eq(k6.family, AF_INET6);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_UNIX;
	ck_assert_int_eq(rdns_key_of((struct sockaddr *)&sin, &k4), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("intake_rdns");
	TCase *tc = tcase_create("cache");
	tcase_add_test(tc, test_answer_kept_for_its_age);
	tcase_add_test(tc, test_bound_pushes_out_least_recently_used);
	tcase_add_test(tc, test_inflight_never_pushed_out);
	tcase_add_test(tc, test_waiters);
	tcase_add_test(tc, test_keys);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
