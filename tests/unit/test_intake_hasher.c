/*
 * test_intake_hasher.c - password checks on the hashing thread, answered on
 * the event loop: right and wrong passwords, an unknown user (known 0) is
 * "no" even with the dummy's own password, a cancelled job never calls
 * back (its owner is gone) while the jobs around it do, and the loop keeps
 * running while a slow hash is being computed.
 */
#include "relayd/intake/intake_hasher.h"
#include "common/event.h"

#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_MS 20000

static struct ev_loop *loop;
static struct ev_timer guard;
static int guard_fired;

struct answer {
	int called;
	int match;
	int ends_loop;
};

static int pending;

static void guard_cb(void *arg)
{
	(void)arg;
	guard_fired = 1;
	ev_break(loop);
}

static void answer_cb(void *arg, int match)
{
	struct answer *a = arg;
	a->called++;
	a->match = match;
	if (--pending == 0)
		ev_break(loop);
}

static void setup(void)
{
	loop = ev_loop_new();
	guard_fired = 0;
	pending = 0;
	ev_timer_init(&guard, guard_cb, NULL);
	ev_timer_start(loop, &guard, GUARD_MS);
}

static void teardown(void)
{
	/* The hasher (and its thread) live as long as intake: not freed here. */
	ev_loop_free(loop);
	loop = NULL;
}

static void run(void)
{
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_msg(!guard_fired, "no answer in time");
}

static const char *make_hash(const char *pass, const char *setting)
{
	static struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	const char *h = crypt_r(pass, setting, &cd);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_ne(h[0], '*');
	return h;
}

START_TEST(test_match_and_mismatch)
{
	struct intake_hasher *h = intake_hasher_new(loop);
	ck_assert_ptr_nonnull(h);
	char hash[256];
	snprintf(hash, sizeof(hash), "%s", make_hash("s3cret", "$6$saltsalt$"));
	struct answer right = {0}, wrong = {0}, unknown = {0};

	intake_hash_start(h, "s3cret", hash, 1, answer_cb, &right);
	intake_hash_start(h, "guess", hash, 1, answer_cb, &wrong);
	/* The dummy's own password must not let an unknown user in. */
	intake_hash_start(h, "s3cret", hash, 0, answer_cb, &unknown);
	pending = 3;
	run();
	ck_assert_int_eq(right.called, 1);
	ck_assert_int_eq(right.match, 1);
	ck_assert_int_eq(wrong.called, 1);
	ck_assert_int_eq(wrong.match, 0);
	ck_assert_int_eq(unknown.called, 1);
	ck_assert_int_eq(unknown.match, 0);
}
END_TEST

START_TEST(test_bad_hash)
{
	struct intake_hasher *h = intake_hasher_new(loop);
	struct answer locked = {0}, empty = {0};
	intake_hash_start(h, "x", "*", 1, answer_cb, &locked);
	intake_hash_start(h, "", "", 1, answer_cb, &empty);
	pending = 2;
	run();
	ck_assert_int_eq(locked.called, 1);
	ck_assert_int_eq(locked.match, 0);
	ck_assert_int_eq(empty.called, 1);
	ck_assert_int_eq(empty.match, 0);
}
END_TEST

START_TEST(test_cancel)
{
	struct intake_hasher *h = intake_hasher_new(loop);
	char hash[256];
	snprintf(hash, sizeof(hash), "%s", make_hash("pw", "$6$rounds=20000$abcdefgh$"));
	struct answer before = {0}, gone = {0}, after = {0};

	intake_hash_start(h, "pw", hash, 1, answer_cb, &before);
	struct intake_hash_job *j = intake_hash_start(h, "pw", hash, 1, answer_cb, &gone);
	intake_hash_start(h, "pw", hash, 1, answer_cb, &after);
	intake_hash_cancel(h, j);
	pending = 2;
	run();
	ck_assert_int_eq(before.called, 1);
	ck_assert_int_eq(before.match, 1);
	ck_assert_int_eq(after.called, 1);
	ck_assert_int_eq(gone.called, 0);
}
END_TEST

/* While a slow hash runs, the loop's timers keep their time. */
static int ticks;
static struct ev_timer tick;

static void tick_cb(void *arg)
{
	(void)arg;
	ticks++;
	ev_timer_start(loop, &tick, 1);
}

START_TEST(test_loop_not_blocked)
{
	struct intake_hasher *h = intake_hasher_new(loop);
	char hash[256];
	/* About 100 ms or more of work. */
	snprintf(hash, sizeof(hash), "%s", make_hash("pw", "$6$rounds=300000$abcdefgh$"));
	struct answer a = {0};

	ticks = 0;
	ev_timer_init(&tick, tick_cb, NULL);
	ev_timer_start(loop, &tick, 1);
	uint64_t t0 = ev_now(loop);
	intake_hash_start(h, "pw", hash, 1, answer_cb, &a);
	pending = 1;
	run();
	ev_now_update(loop);
	uint64_t elapsed = ev_now(loop) - t0;
	ev_timer_stop(loop, &tick);
	ck_assert_int_eq(a.match, 1);
	ck_assert_uint_ge(elapsed, 20);
	/* A 1 ms timer fired all along: at least a few times per 10 ms waited. */
	ck_assert_msg((uint64_t)ticks * 10 >= elapsed, "%d ticks in %llu ms", ticks,
		      (unsigned long long)elapsed);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("intake_hasher");
	TCase *tc = tcase_create("hasher");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_match_and_mismatch);
	tcase_add_test(tc, test_bad_hash);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_loop_not_blocked);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
