/*
 * test_worker_ctl.c - worker_ctl_reply: an answer of any length reaches the
 * master as MSG_CTL_PART frames of IPC_CHUNK_SIZE bytes, in order, then
 * one MSG_CTL_REP with the request id, the status and the rest of the text.
 * A forked child plays the worker on its own event loop; the test reads
 * the frames as the master would.
 */
#include "common/event.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

struct drain {
	struct worker *w;
	struct ev_timer t;
};

static void drain_check(void *arg)
{
	struct drain *d = arg;
	if (ipc_pending(d->w->master) == 0)
		ev_break(d->w->loop);
	else
		ev_timer_start(d->w->loop, &d->t, 1);
}

/* The worker side: one reply, flushed, then exit. */
static void child_reply(int fd, uint32_t reqid, int status, const char *text)
{
	struct worker w = {.role = "test"};
	struct drain d = {.w = &w};
	w.loop = ev_loop_new();
	w.master = ipc_chan_new(w.loop, fd, "master", NULL, NULL, NULL);
	if (w.master == NULL)
		_exit(3);
	worker_ctl_reply(&w, reqid, status, text);
	ev_timer_init(&d.t, drain_check, &d);
	ev_timer_start(w.loop, &d.t, 1);
	ev_run(w.loop);
	_exit(ipc_pending(w.master) == 0 ? 0 : 4);
}

static const struct {
	size_t len;
	size_t parts;
} cases[] = {
	{0, 0},
	{1, 0},
	{IPC_CHUNK_SIZE - 1, 0},
	{IPC_CHUNK_SIZE, 0},
	{IPC_CHUNK_SIZE + 1, 1},
	{3 * IPC_CHUNK_SIZE, 2},
	{3 * IPC_CHUNK_SIZE + 5, 3},
	{IPC_MAX_FRAME + 1, 3},
	{1024 * 1024 + 7, 16},
};

START_TEST(test_reply_split)
{
	size_t len = cases[_i].len;
	uint32_t reqid = 0x1234500u + (uint32_t)_i;
	int status = _i % 2;
	char *text = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		text[i] = (char)('a' + (i * 7 + i / 977) % 26);
	text[len] = '\0';

	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(sp[0]);
		child_reply(sp[1], reqid, status, text);
	}
	close(sp[1]);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(sp[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	size_t got = 0, parts = 0;
	for (;;) {
		uint32_t type;
		uint8_t *p;
		long n = ipc_read_frame_blocking(sp[0], &type, &p);
		ck_assert_int_ge(n, 0);
		struct ipc_rd rd;
		size_t tn;
		ipc_rd_init(&rd, p, (size_t)n);
		ck_assert_uint_eq(ipc_get_u32(&rd), reqid);
		if (type == MSG_CTL_REP)
			ck_assert_uint_eq(ipc_get_u32(&rd), (uint32_t)status);
		else
			ck_assert_uint_eq(type, MSG_CTL_PART);
		const uint8_t *b = ipc_get_bytes(&rd, &tn);
		ck_assert_int_eq(ipc_rd_done(&rd), 0);
		ck_assert_uint_le(tn, IPC_CHUNK_SIZE);
		ck_assert_uint_le(got + tn, len);
		ck_assert(tn == 0 || memcmp(b, text + got, tn) == 0);
		got += tn;
		free(p);
		if (type == MSG_CTL_REP)
			break;
		/* Parts are whole chunks: only the REP carries a short piece. */
		ck_assert_uint_eq(tn, IPC_CHUNK_SIZE);
		parts++;
	}
	ck_assert_uint_eq(got, len);
	ck_assert_uint_eq(parts, cases[_i].parts);
	int ws;
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	close(sp[0]);
	free(text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("worker_ctl");
	TCase *tc = tcase_create("reply");
	tcase_add_loop_test(tc, test_reply_split, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
