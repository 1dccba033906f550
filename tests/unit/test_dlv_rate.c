/*
 * test_dlv_rate.c - the outbound rate limiter (relayd/delivery/dlv_rate.c)
 * on a clock of its own: the spacing of N/PERIOD, which arrivals wait in
 * memory and which are promised a later moment in the queue, the promises
 * never shared, a flush voiding them; and a simulation of a backlog whose
 * returning messages come back late as the queue's whole seconds make them,
 * checked to start never closer than the spacing, all of them, each sent
 * back at most once.
 */
#include "relayd/delivery/dlv_rate.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	unsigned n, period;
	uint64_t ms;
} intervals[] = {
	{0, 0, 0}, {1, 1, 1000}, {2, 1, 500}, {1000, 1, 1}, {3, 1, 334}, {6, 60, 10000},
	{60, 60, 1000}, {7, 60, 8572}, {1, 3600, 3600000}, {100, 3600, 36000},
};

START_TEST(test_interval)
{
	struct cfg_rate r = {intervals[_i].n, intervals[_i].period};
	ck_assert_uint_eq(dlv_rate_interval(&r), intervals[_i].ms);
}
END_TEST

/* Starts spaced: at once when idle, then never before one spacing more. */
START_TEST(test_spacing)
{
	struct dlv_rate rs = {0, 0};

	ck_assert_uint_eq(dlv_rate_wait(&rs, 5000), 0);
	dlv_rate_take(&rs, 1000, 5000);
	ck_assert_uint_eq(dlv_rate_wait(&rs, 5000), 1000);
	ck_assert_uint_eq(dlv_rate_wait(&rs, 5999), 1);
	ck_assert_uint_eq(dlv_rate_wait(&rs, 6000), 0);
	ck_assert(dlv_rate_live(&rs, 5999));
	ck_assert(!dlv_rate_live(&rs, 6000));
	/* No burst saved up: after a long pause, still one spacing after a start. */
	dlv_rate_take(&rs, 1000, 60000);
	ck_assert_uint_eq(dlv_rate_wait(&rs, 60000), 1000);
}
END_TEST

/* Kept while the wait is within DLV_RATE_KEEP_MS; beyond, a slot each. */
START_TEST(test_admit)
{
	struct dlv_rate rs = {0, 0};
	uint64_t slot = 0, now = 100000, t = 1000;

	ck_assert_int_eq(dlv_rate_admit(&rs, t, now, 0, &slot), 1);
	dlv_rate_take(&rs, t, now);
	/* Behind one started and 0, 1 kept: they go at +1 s and +2 s. */
	ck_assert_int_eq(dlv_rate_admit(&rs, t, now, 0, &slot), 1);
	ck_assert_int_eq(dlv_rate_admit(&rs, t, now, 1, &slot), 1);
	/* The next would wait 3 s: promised +3 s, the one after +4 s, +5 s. */
	ck_assert_int_eq(dlv_rate_admit(&rs, t, now, 2, &slot), 0);
	ck_assert_uint_eq(slot, now + 3000);
	ck_assert_int_eq(dlv_rate_admit(&rs, t, now, 2, &slot), 0);
	ck_assert_uint_eq(slot, now + 4000);
	ck_assert_int_eq(dlv_rate_admit(&rs, t, now + 10, 2, &slot), 0);
	ck_assert_uint_eq(slot, now + 5000);
	ck_assert(dlv_rate_live(&rs, now + 5999));
	/* A flush brought them back: promises start again from the rate's next moment. */
	dlv_rate_unbook(&rs);
	ck_assert_int_eq(dlv_rate_admit(&rs, t, now, 2, &slot), 0);
	ck_assert_uint_eq(slot, now + 3000);
	/* A slow rate: even the first behind a start waits in the queue. */
	struct dlv_rate slow = {0, 0};
	dlv_rate_take(&slow, 10000, now);
	ck_assert_int_eq(dlv_rate_admit(&slow, 10000, now + 500, 0, &slot), 0);
	ck_assert_uint_eq(slot, now + 10000);
	/* Memory is bounded even at a fast rate. */
	struct dlv_rate fast = {0, 0};
	ck_assert_int_eq(dlv_rate_admit(&fast, 1, now, DLV_RATE_KEEP_MAX - 1, &slot), 1);
	ck_assert_int_eq(dlv_rate_admit(&fast, 1, now, DLV_RATE_KEEP_MAX, &slot), 0);
}
END_TEST

/*
 * A backlog of 40 messages arriving together at a destination limited to
 * one per interval, driven as delivery drives the limiter: kept ones start
 * when the wait ends; the others come back at their slot rounded up to a
 * whole second, plus up to a second of the queue's own lateness.
 */
static const uint64_t sim_intervals[] = {250, 1000, 3000, 10000};

START_TEST(test_backlog)
{
	enum { N = 40 };
	const uint64_t t = sim_intervals[_i];
	struct dlv_rate rs = {0, 0};
	uint64_t due[N], starts[N];
	unsigned sent_back[N];
	size_t kept[N], nkept = 0, nstarted = 0;
	uint64_t now = 1000000, slot;

	memset(sent_back, 0, sizeof(sent_back));
	for (size_t i = 0; i < N; i++)
		due[i] = now;
	srandom(7 + (unsigned)_i);
	for (; nstarted < N && now < 1000000 + 3600000; now += 10) {
		/* Arrivals due now join, or go back to the queue. */
		for (size_t i = 0; i < N; i++) {
			if (due[i] == 0 || due[i] > now)
				continue;
			due[i] = 0;
			if (dlv_rate_admit(&rs, t, now, nkept, &slot)) {
				kept[nkept++] = i;
				continue;
			}
			ck_assert_uint_ge(slot, now);
			sent_back[i]++;
			uint64_t secs = (slot - now + 999) / 1000;
			due[i] = now + secs * 1000 + (uint64_t)(random() % 1000);
		}
		/* The dispatcher: the first kept one starts when the rate allows. */
		if (nkept > 0 && dlv_rate_wait(&rs, now) == 0) {
			dlv_rate_take(&rs, t, now);
			starts[nstarted++] = now;
			memmove(kept, kept + 1, --nkept * sizeof(kept[0]));
		}
	}
	ck_assert_uint_eq(nstarted, N);
	for (size_t i = 1; i < N; i++)
		ck_assert_msg(starts[i] - starts[i - 1] >= t, "start %zu only %llu ms after the last",
			      i, (unsigned long long)(starts[i] - starts[i - 1]));
	/* Each sent back at most twice (a late return can lose its slot once),
	 * and the whole no slower than the rate plus the queue's lateness. */
	unsigned twice = 0;
	for (size_t i = 0; i < N; i++) {
		ck_assert_uint_le(sent_back[i], 2);
		twice += sent_back[i] == 2;
	}
	ck_assert_uint_le(twice, N / 10);
	ck_assert_uint_le(starts[N - 1] - starts[0], (N - 1) * t + 2000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_rate");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_interval, 0, sizeof(intervals) / sizeof(intervals[0]));
	tcase_add_test(tc, test_spacing);
	tcase_add_test(tc, test_admit);
	tcase_add_loop_test(tc, test_backlog, 0, sizeof(sim_intervals) / sizeof(sim_intervals[0]));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
