/*
 * test_conn.c - the flow contract of a connection on the event loop:
 * above its output high mark it stops reading its peer and resumes (with
 * on_drain) once the peer has taken the output down to the low mark;
 * read_when_full keeps reading (IPC); and a connection that is not reading
 * takes a hangup once instead of being woken for it forever.
 */
#include "common/conn.h"
#include "common/event.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Every test runs under a guard timer, so that a bug fails instead of hanging. */
#define GUARD_MS 3000
/* More than a socket pair's buffers take, so that output stays queued in the conn. */
#define BIG_OUTPUT (2 * 1024 * 1024)

struct ct {
	struct ev_loop *loop;
	struct conn *c;
	int peer;
	struct ev_timer guard, step;
	int guard_fired;
	size_t reads, got;
	char first[16];
	int drains;
	int closes;
	char why[128];
	size_t peer_read;
};

static void ct_on_read(struct conn *c, void *arg)
{
	struct ct *t = arg;
	size_t n = buf_avail(&c->in);
	if (t->got == 0)
		memcpy(t->first, buf_head(&c->in), n < sizeof(t->first) - 1 ? n : sizeof(t->first) - 1);
	t->reads++;
	t->got += n;
	buf_consume(&c->in, n);
}

static void ct_on_close(struct conn *c, void *arg, const char *why)
{
	struct ct *t = arg;
	(void)c;
	t->closes++;
	snprintf(t->why, sizeof(t->why), "%s", why);
	ev_break(t->loop);
}

static void ct_on_drain(struct conn *c, void *arg)
{
	struct ct *t = arg;
	(void)c;
	t->drains++;
}

static void ct_guard(void *arg)
{
	struct ct *t = arg;
	t->guard_fired = 1;
	ev_break(t->loop);
}

static void ct_init(struct ct *t)
{
	int sv[2];

	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->loop = ev_loop_new();
	t->peer = sv[1];
	t->c = conn_new(t->loop, sv[0], ct_on_read, ct_on_close, t);
	ck_assert_ptr_nonnull(t->c);
	t->c->on_drain = ct_on_drain;
	ev_timer_init(&t->guard, ct_guard, t);
	ev_timer_start(t->loop, &t->guard, GUARD_MS);
}

static void ct_free(struct ct *t)
{
	conn_free(t->c);
	if (t->peer >= 0)
		close(t->peer);
	ev_loop_free(t->loop);
}

static void ct_break(void *arg)
{
	struct ct *t = arg;
	ev_break(t->loop);
}

/* Runs the loop for ms milliseconds (or until something breaks it). */
static void ct_run_for(struct ct *t, unsigned ms)
{
	ev_timer_init(&t->step, ct_break, t);
	ev_timer_start(t->loop, &t->step, ms);
	ck_assert_int_eq(ev_run(t->loop), 0);
	ev_timer_stop(t->loop, &t->step);
	ck_assert_msg(!t->guard_fired, "the loop did not finish in time");
}

static void ct_fill_output(struct ct *t)
{
	uint8_t *big = malloc(BIG_OUTPUT);
	ck_assert_ptr_nonnull(big);
	memset(big, 'r', BIG_OUTPUT);
	conn_write(t->c, big, BIG_OUTPUT);
	free(big);
	ck_assert(conn_full(t->c));
}

/* The peer takes whatever has arrived, as a client reading its replies. */
static void peer_drain(int fd, uint32_t events, void *arg)
{
	struct ct *t = arg;
	char b[65536];
	(void)events;
	ssize_t r;
	while ((r = read(fd, b, sizeof(b))) > 0)
		t->peer_read += (size_t)r;
	if (t->got > 0)
		ev_break(t->loop);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

START_TEST(test_full_stops_reading_until_drained)
{
	struct ct t;

	ct_init(&t);
	ct_fill_output(&t);
	/* The peer sends a command but does not read our replies. */
	ck_assert_int_eq(write(t.peer, "hello\r\n", 7), 7);
	ct_run_for(&t, 200);
	ck_assert_uint_eq(t.reads, 0);
	ck_assert(conn_full(t.c));
	ck_assert_int_eq(t.closes, 0);
	ck_assert_int_gt(buf_avail(&t.c->out), CONN_OUT_HIGH);

	/* Now it reads: the output drains, on_drain comes, reading resumes. */
	ck_assert_int_eq(fcntl(t.peer, F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(ev_io_add(t.loop, t.peer, EPOLLIN, peer_drain, &t), 0);
	ct_run_for(&t, GUARD_MS - 500);
	ck_assert_int_gt(t.drains, 0);
	ck_assert(!conn_full(t.c));
	ck_assert_uint_eq(t.got, 7);
	ck_assert_str_eq(t.first, "hello\r\n");
	ck_assert_uint_ge(t.peer_read + buf_avail(&t.c->out), BIG_OUTPUT);
	ck_assert_uint_le(buf_avail(&t.c->out), CONN_OUT_LOW);
	ev_io_del(t.loop, t.peer);
	ct_free(&t);
}
END_TEST

START_TEST(test_read_when_full_keeps_reading)
{
	struct ct t;

	ct_init(&t);
	conn_set_watermarks(t.c, 4096, 1024, 1);
	ct_fill_output(&t);
	ck_assert_int_eq(write(t.peer, "frame", 5), 5);
	ct_run_for(&t, 200);
	ck_assert(conn_full(t.c));
	ck_assert_uint_eq(t.got, 5);
	ct_free(&t);
}
END_TEST

/* A small write leaves the output under the low mark: on_drain follows. */
START_TEST(test_drain_after_small_write)
{
	struct ct t;

	ct_init(&t);
	conn_write(t.c, "250 ok\r\n", 8);
	ck_assert(!conn_full(t.c));
	ct_run_for(&t, 100);
	ck_assert_int_ge(t.drains, 1);
	ck_assert_uint_eq(buf_avail(&t.c->out), 0);
	ct_free(&t);
}
END_TEST

/*
 * The peer goes while we are not reading it (paused by the owner, or full):
 * epoll reports EPOLLHUP even to a connection that asked for nothing.
 * It must be taken once (on_close) instead of waking the loop forever.
 */
static void hup_while_not_reading(int full)
{
	struct ct t;

	ct_init(&t);
	if (full)
		ct_fill_output(&t);
	else
		conn_pause_read(t.c, 1);
	ck_assert_int_eq(write(t.peer, "QUIT\r\n", 6), 6);
	close(t.peer);
	t.peer = -1;
	double cpu0 = cpu_seconds();
	ct_run_for(&t, 500);
	double cpu = cpu_seconds() - cpu0;
	ck_assert_msg(t.closes == 1, "no on_close for a peer that went while paused");
	ck_assert_msg(cpu < 0.2, "the loop spun: %.3f s of CPU in 0.5 s", cpu);
	ck_assert_uint_eq(t.reads, 0);
	ct_free(&t);
}

START_TEST(test_hup_while_paused)
{
	hup_while_not_reading(0);
}
END_TEST

START_TEST(test_hup_while_full)
{
	hup_while_not_reading(1);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("flow");
	tcase_add_test(tc, test_full_stops_reading_until_drained);
	tcase_add_test(tc, test_read_when_full_keeps_reading);
	tcase_add_test(tc, test_drain_after_small_write);
	tcase_add_test(tc, test_hup_while_paused);
	tcase_add_test(tc, test_hup_while_full);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conn_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
