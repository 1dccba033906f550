/*
 * test_event.c - the epoll loop: timers in due order, stopping and
 * re-arming (also from inside callbacks), fd callbacks, removing an fd from
 * inside a callback, and signals through signalfd.
 */
#include "common/event.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every test runs under a guard timer, so that a bug fails instead of hanging. */
#define GUARD_MS 2000

static struct ev_loop *loop;
static struct ev_timer guard;
static int guard_fired;

static void guard_cb(void *arg)
{
	(void)arg;
	guard_fired = 1;
	ev_break(loop);
}

static void setup(void)
{
	loop = ev_loop_new();
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, NULL);
	ev_timer_start(loop, &guard, GUARD_MS);
}

static void teardown(void)
{
	ev_loop_free(loop);
	loop = NULL;
}

static void run(void)
{
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_msg(!guard_fired, "the loop did not finish in time");
}

/* Timers record the order they fire in; the one marked last ends the loop. */

struct rec_timer {
	struct ev_timer t;
	int id;
	int last;
};

static int fired[16], nfired;

static void rec_cb(void *arg)
{
	struct rec_timer *r = arg;
	ck_assert_int_lt(nfired, 16);
	fired[nfired++] = r->id;
	if (r->last)
		ev_break(loop);
}

static void rec_init(struct rec_timer *r, int id, int last)
{
	r->id = id;
	r->last = last;
	ev_timer_init(&r->t, rec_cb, r);
}

/* Started out of order: {start order, delay ms}, fire in delay order. */
static const struct {
	unsigned n;
	unsigned delays[8];
	int want[8];
} orders[] = {
	{4, {30, 10, 20, 0}, {3, 1, 2, 0}},
	{6, {50, 40, 30, 20, 10, 5}, {5, 4, 3, 2, 1, 0}},
	{5, {1, 15, 2, 30, 3}, {0, 2, 4, 1, 3}},
	{1, {0}, {0}},
};

START_TEST(test_timer_order)
{
	struct rec_timer r[8];
	unsigned n = orders[_i].n, max = 0;
	nfired = 0;
	for (unsigned i = 0; i < n; i++)
		if (orders[_i].delays[i] > max)
			max = orders[_i].delays[i];
	for (unsigned i = 0; i < n; i++) {
		rec_init(&r[i], (int)i, orders[_i].delays[i] == max);
		ev_timer_start(loop, &r[i].t, orders[_i].delays[i]);
		ck_assert(ev_timer_pending(&r[i].t));
	}
	uint64_t t0 = ev_now(loop);
	run();
	ck_assert_int_eq(nfired, (int)n);
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(fired[i], orders[_i].want[i]);
	for (unsigned i = 0; i < n; i++)
		ck_assert(!ev_timer_pending(&r[i].t));
	/* Not early: the loop's clock moved at least by the longest delay. */
	ck_assert_uint_ge(ev_now(loop) - t0, max);
}
END_TEST

START_TEST(test_timer_stop)
{
	struct rec_timer a, b, c;
	nfired = 0;
	rec_init(&a, 1, 0);
	rec_init(&b, 2, 0);
	rec_init(&c, 3, 1);
	ev_timer_start(loop, &a.t, 5);
	ev_timer_start(loop, &b.t, 10);
	ev_timer_start(loop, &c.t, 30);
	ev_timer_stop(loop, &a.t);
	ck_assert(!ev_timer_pending(&a.t));
	/* Stopping twice, or a timer never started, is harmless. */
	ev_timer_stop(loop, &a.t);
	struct rec_timer never;
	rec_init(&never, 9, 0);
	ev_timer_stop(loop, &never.t);
	run();
	ck_assert_int_eq(nfired, 2);
	ck_assert_int_eq(fired[0], 2);
	ck_assert_int_eq(fired[1], 3);
}
END_TEST

START_TEST(test_timer_rearm)
{
	struct rec_timer a, end;
	nfired = 0;
	rec_init(&a, 1, 0);
	rec_init(&end, 2, 1);
	/* Re-armed sooner: fires once, at the new time, before end. */
	ev_timer_start(loop, &a.t, 1000);
	ev_timer_start(loop, &a.t, 5);
	ev_timer_start(loop, &end.t, 50);
	run();
	ck_assert_int_eq(nfired, 2);
	ck_assert_int_eq(fired[0], 1);
	ck_assert_int_eq(fired[1], 2);

	/* Re-armed later: fires once, after end. */
	nfired = 0;
	rec_init(&end, 2, 0);
	a.last = 1;
	ev_timer_start(loop, &a.t, 5);
	ev_timer_start(loop, &end.t, 20);
	ev_timer_start(loop, &a.t, 60);
	run();
	ck_assert_int_eq(nfired, 2);
	ck_assert_int_eq(fired[0], 2);
	ck_assert_int_eq(fired[1], 1);
}
END_TEST

/* A timer that re-arms itself from its own callback, three times. */
struct periodic {
	struct ev_timer t;
	int count;
};

static void periodic_cb(void *arg)
{
	struct periodic *p = arg;
	ck_assert(!ev_timer_pending(&p->t));
	if (++p->count == 3)
		ev_break(loop);
	else
		ev_timer_start(loop, &p->t, 2);
}

START_TEST(test_timer_rearm_from_callback)
{
	struct periodic p = {.count = 0};
	ev_timer_init(&p.t, periodic_cb, &p);
	ev_timer_start(loop, &p.t, 0);
	run();
	ck_assert_int_eq(p.count, 3);
}
END_TEST

/* A stops B from its callback: B is due in the same iteration or later. */
static struct rec_timer *victim;

static void stopper_cb(void *arg)
{
	rec_cb(arg);
	ev_timer_stop(loop, &victim->t);
}

static const unsigned victim_delays[] = {10, 11, 25};

START_TEST(test_timer_stop_from_callback)
{
	struct rec_timer a, b, c, end;
	nfired = 0;
	rec_init(&a, 1, 0);
	rec_init(&b, 2, 0);
	rec_init(&c, 3, 0);
	rec_init(&end, 4, 1);
	ev_timer_init(&a.t, stopper_cb, &a);
	victim = &b;
	ev_timer_start(loop, &a.t, 10);
	ev_timer_start(loop, &b.t, victim_delays[_i]);
	ev_timer_start(loop, &c.t, 12);
	ev_timer_start(loop, &end.t, 40);
	/* Make both due before the loop looks at them. */
	usleep(15000);
	run();
	/* a ran first unless b is due at the same ms: then b may precede a. */
	ck_assert_int_eq(fired[nfired - 1], 4);
	int saw_a = 0, saw_b = 0, saw_c = 0;
	for (int i = 0; i < nfired; i++) {
		saw_a += fired[i] == 1;
		saw_b += fired[i] == 2;
		saw_c += fired[i] == 3;
	}
	ck_assert_int_eq(saw_a, 1);
	ck_assert_int_eq(saw_c, 1);
	if (victim_delays[_i] > 10)
		ck_assert_int_eq(saw_b, 0);
	else
		ck_assert_int_le(saw_b, 1);
	ck_assert(!ev_timer_pending(&b.t));
}
END_TEST

/* Many timers, stopped in a scattered order: the heap stays consistent. */
enum { HEAP_N = 200 };
static struct ev_timer heap_timers[HEAP_N];
static int heap_fired;
static uint64_t heap_last_due;

static void heap_cb(void *arg)
{
	struct ev_timer *t = arg;
	ck_assert_int_ne((t - heap_timers) % 3, 0);
	/* Due order, not start order: starting them took some time too. */
	ck_assert_uint_ge(t->due_ms, heap_last_due);
	heap_last_due = t->due_ms;
	heap_fired++;
}

START_TEST(test_timer_heap)
{
	struct rec_timer end;
	heap_fired = 0;
	heap_last_due = 0;
	for (int i = 0; i < HEAP_N; i++) {
		ev_timer_init(&heap_timers[i], heap_cb, &heap_timers[i]);
		ev_timer_start(loop, &heap_timers[i], (uint64_t)(5 + (i * 37) % 50));
	}
	for (int i = 0; i < HEAP_N; i += 3)
		ev_timer_stop(loop, &heap_timers[i]);
	for (int i = 0; i < HEAP_N; i++)
		ck_assert_int_eq(ev_timer_pending(&heap_timers[i]), i % 3 != 0);
	rec_init(&end, -1, 1);
	ev_timer_start(loop, &end.t, 100);
	run();
	ck_assert_int_eq(heap_fired, HEAP_N - (HEAP_N + 2) / 3);
	for (int i = 0; i < HEAP_N; i++)
		ck_assert(!ev_timer_pending(&heap_timers[i]));
}
END_TEST

/* fd callbacks. */

struct io_rec {
	int fd;
	int calls;
	uint32_t events;
	char data[64];
	size_t len;
	int del_self;
	struct io_rec *other; /* deleted (and closed) from this callback */
};

static void io_cb(int fd, uint32_t events, void *arg)
{
	struct io_rec *r = arg;
	ck_assert_int_eq(fd, r->fd);
	r->calls++;
	r->events |= events;
	if (events & EPOLLIN) {
		ssize_t n = read(fd, r->data + r->len, sizeof(r->data) - 1 - r->len);
		if (n > 0)
			r->len += (size_t)n;
	}
	if (r->del_self)
		ev_io_del(loop, fd);
	if (r->other && r->other->fd >= 0) {
		ev_io_del(loop, r->other->fd);
		close(r->other->fd);
		r->other->fd = -1;
	}
}

static void end_soon(void *arg)
{
	(void)arg;
	ev_break(loop);
}

static void run_for(uint64_t ms)
{
	struct ev_timer t;
	ev_timer_init(&t, end_soon, NULL);
	ev_timer_start(loop, &t, ms);
	run();
	ev_timer_stop(loop, &t);
}

START_TEST(test_io_read_write)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	struct io_rec r = {.fd = p[0]}, w = {.fd = p[1]};
	ck_assert_int_eq(ev_io_add(loop, p[0], EPOLLIN, io_cb, &r), 0);
	ck_assert_int_eq(ev_io_add(loop, p[1], EPOLLOUT, io_cb, &w), 0);
	ck_assert_int_eq(write(p[1], "hello", 5), 5);
	run_for(20);
	ck_assert_int_ge(r.calls, 1);
	ck_assert(r.events & EPOLLIN);
	ck_assert_uint_eq(r.len, 5);
	ck_assert(memcmp(r.data, "hello", 5) == 0);
	ck_assert_int_ge(w.calls, 1);
	ck_assert(w.events & EPOLLOUT);

	/* Modified to nothing: no more calls even though writable. */
	ck_assert_int_eq(ev_io_mod(loop, p[1], 0), 0);
	w.calls = 0;
	r.calls = 0;
	run_for(20);
	ck_assert_int_eq(w.calls, 0);
	ck_assert_int_eq(r.calls, 0);

	/* Removed: closing the writer does not call the reader's callback. */
	ev_io_del(loop, p[0]);
	ev_io_del(loop, p[0]);
	close(p[1]);
	run_for(20);
	ck_assert_int_eq(r.calls, 0);
	close(p[0]);
}
END_TEST

START_TEST(test_io_del_self)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	struct io_rec r = {.fd = p[0], .del_self = 1};
	ck_assert_int_eq(ev_io_add(loop, p[0], EPOLLIN, io_cb, &r), 0);
	/* More than one read's worth: level-triggered would call again. */
	static const char many[] = "0123456789012345678901234567890123456789"
				   "012345678901234567890123456789";
	ck_assert_int_eq(write(p[1], many, 70), 70);
	run_for(30);
	ck_assert_int_eq(r.calls, 1);
	/* It can be added again afterwards. */
	r.del_self = 0;
	ck_assert_int_eq(ev_io_add(loop, p[0], EPOLLIN, io_cb, &r), 0);
	run_for(20);
	ck_assert_int_ge(r.calls, 2);
	ev_io_del(loop, p[0]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * Two ready fds in one batch; whichever callback runs first removes and
 * closes the other, and an fd opened at once takes the same number: the
 * stale event of the batch must reach neither the old nor the new owner.
 */
static struct io_rec *fresh;

static void io_fresh_cb(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	fresh->calls++;
}

static void io_killer_cb(int fd, uint32_t events, void *arg)
{
	io_cb(fd, events, arg);
	if (fresh->fd >= 0)
		return;
	/* The other's number is free now: a new pipe gets it. */
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	fresh->fd = p[0];
	fresh->len = (size_t)p[1]; /* the write end, to close later */
	ck_assert_int_eq(ev_io_add(loop, p[0], EPOLLIN, io_fresh_cb, fresh), 0);
}

START_TEST(test_io_del_other)
{
	int a[2], b[2];
	ck_assert_int_eq(pipe2(a, O_NONBLOCK), 0);
	ck_assert_int_eq(pipe2(b, O_NONBLOCK), 0);
	struct io_rec ra = {.fd = a[0]}, rb = {.fd = b[0]}, rf = {.fd = -1};
	ra.other = &rb;
	rb.other = &ra;
	fresh = &rf;
	int lower = a[0] < b[0] ? a[0] : b[0], upper = a[0] < b[0] ? b[0] : a[0];
	ck_assert_int_eq(ev_io_add(loop, a[0], EPOLLIN, io_killer_cb, &ra), 0);
	ck_assert_int_eq(ev_io_add(loop, b[0], EPOLLIN, io_killer_cb, &rb), 0);
	ck_assert_int_eq(write(a[1], "a", 1), 1);
	ck_assert_int_eq(write(b[1], "b", 1), 1);
	run_for(30);
	/* Exactly one ran; the other was closed before its event was served. */
	ck_assert_int_eq(ra.calls + rb.calls, 1);
	ck_assert((ra.fd == -1) != (rb.fd == -1));
	ck_assert(rf.fd == lower || rf.fd == upper);
	ck_assert_int_eq(rf.calls, 0);
	struct io_rec *alive = ra.fd >= 0 ? &ra : &rb;
	ev_io_del(loop, alive->fd);
	close(alive->fd);
	ev_io_del(loop, rf.fd);
	close(rf.fd);
	close((int)rf.len);
	close(a[1]);
	close(b[1]);
}
END_TEST

/* Signals. */

static int got_signo, nsignals;

static void sig_cb(int signo, void *arg)
{
	(void)arg;
	got_signo = signo;
	nsignals++;
	ev_break(loop);
}

static void raise_cb(void *arg)
{
	raise(*(int *)arg);
}

START_TEST(test_signal)
{
	static int usr1 = SIGUSR1;
	struct ev_timer t;
	got_signo = 0;
	nsignals = 0;
	ck_assert_int_eq(ev_signal_add(loop, SIGUSR1, sig_cb, NULL), 0);
	ck_assert_int_eq(ev_signal_add(loop, SIGUSR2, sig_cb, NULL), 0);
	/* Raised from inside the loop. */
	ev_timer_init(&t, raise_cb, &usr1);
	ev_timer_start(loop, &t, 5);
	run();
	ck_assert_int_eq(got_signo, SIGUSR1);
	ck_assert_int_eq(nsignals, 1);
	/* Raised before the loop runs: blocked, then delivered by the loop. */
	raise(SIGUSR2);
	run();
	ck_assert_int_eq(got_signo, SIGUSR2);
	ck_assert_int_eq(nsignals, 2);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}
END_TEST

START_TEST(test_break_from_timer_stops_timers)
{
	/* After ev_break no further due timer runs in that iteration. */
	struct rec_timer a, b;
	nfired = 0;
	rec_init(&a, 1, 1);
	rec_init(&b, 2, 1);
	ev_timer_start(loop, &a.t, 1);
	ev_timer_start(loop, &b.t, 1);
	usleep(5000);
	run();
	ck_assert_int_eq(nfired, 1);
	run();
	ck_assert_int_eq(nfired, 2);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("timers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_timer_order, 0, N(orders));
	tcase_add_test(tc, test_timer_stop);
	tcase_add_test(tc, test_timer_rearm);
	tcase_add_test(tc, test_timer_rearm_from_callback);
	tcase_add_loop_test(tc, test_timer_stop_from_callback, 0, N(victim_delays));
	tcase_add_test(tc, test_timer_heap);
	tcase_add_test(tc, test_break_from_timer_stops_timers);
	suite_add_tcase(s, tc);

	tc = tcase_create("io");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_io_read_write);
	tcase_add_test(tc, test_io_del_self);
	tcase_add_test(tc, test_io_del_other);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_signal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(event_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
