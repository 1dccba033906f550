/*
 * test_worker_cfg.c - a worker's side of the configuration protocol
 * (common/worker.c): START at birth; PREPARE answered READY or REFUSED
 * (config errors, or the role's own refusal) with the running config
 * untouched; COMMIT takes the prepared one, ABORT drops it; files reach
 * the worker only as the master hands them. A forked child runs
 * worker_run with a small role that reports its config through relayctl
 * requests; the test plays the master on the other end of the channel.
 */
#include "common/event.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/worker.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int master_fd = -1;
static pid_t child = -1;

/* The role: "hostname max-recipients smarthost-auth-user" on request. */
static void role_ctl(struct worker *w, uint32_t reqid, int argc, char **argv)
{
	char out[600];
	const char *user = w->cfg->nsmarthosts && w->cfg->smarthosts[0].auth_user
				   ? w->cfg->smarthosts[0].auth_user
				   : "-";
	(void)argc;
	(void)argv;
	snprintf(out, sizeof(out), "%s %u %s", w->cfg->hostname, w->cfg->max_recipients, user);
	worker_ctl_reply(w, reqid, 0, out);
}

static int role_prepare(struct worker *w, const struct config *ncfg, char *err, size_t errsz)
{
	(void)w;
	if (ncfg->max_recipients == 13) {
		snprintf(err, errsz, "unlucky number");
		return -1;
	}
	return 0;
}

static void role_main(struct worker *w)
{
	w->on_ctl = role_ctl;
	w->on_prepare = role_prepare;
	ev_run(w->loop);
}

static void send_frame(uint32_t type, struct ipc_wr *wr)
{
	ck_assert_int_eq(ipc_write_frame_blocking(master_fd, type, buf_head(&wr->b),
						  buf_avail(&wr->b)), 0);
	ipc_wr_free(wr);
}

static void send_file(const char *path, const char *text)
{
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_str(&wr, path);
	ipc_put_u32(&wr, 1);
	ipc_put_bytes(&wr, text, strlen(text));
	send_frame(MSG_CFG_FILE, &wr);
}

static void send_path(uint32_t type, int with_nfds)
{
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_str(&wr, "test.conf");
	if (with_nfds)
		ipc_put_u32(&wr, 0);
	send_frame(type, &wr);
}

static void send_empty(uint32_t type)
{
	ck_assert_int_eq(ipc_write_frame_blocking(master_fd, type, NULL, 0), 0);
}

/* The next frame from the worker: its type, and a string field if any. */
static uint32_t next_frame(char *text, size_t textsz)
{
	uint32_t type;
	uint8_t *p = NULL;
	long n = ipc_read_frame_blocking(master_fd, &type, &p);
	ck_assert_int_ge(n, 0);
	struct ipc_rd rd;
	ipc_rd_init(&rd, p, (size_t)n);
	text[0] = '\0';
	if (type == MSG_CFG_REFUSED)
		ipc_get_str(&rd, text, textsz);
	else if (type == MSG_CTL_REP) {
		ipc_get_u32(&rd);
		ipc_get_u32(&rd);
		ipc_get_str(&rd, text, textsz);
	}
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	free(p);
	return type;
}

/* The config the worker runs with, as the role reports it. */
static const char *running(void)
{
	static char text[600];
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_u32(&wr, 7);
	ipc_put_u32(&wr, 1);
	ipc_put_str(&wr, "show");
	send_frame(MSG_CTL_REQ, &wr);
	ck_assert_uint_eq(next_frame(text, sizeof(text)), MSG_CTL_REP);
	return text;
}

static uint32_t prepare(const char *conf, char *reason, size_t reasonsz)
{
	send_file("test.conf", conf);
	send_path(MSG_CFG_PREPARE, 0);
	return next_frame(reason, reasonsz);
}

static void setup(void)
{
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		static struct worker w;
		close(sp[0]);
		if (dup2(sp[1], WORKER_MASTER_FD) < 0)
			_exit(3);
		w.role = "test";
		worker_run(&w, role_main);
	}
	close(sp[1]);
	master_fd = sp[0];
	struct timeval tv = {.tv_sec = 10};
	setsockopt(master_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	send_file("test.conf", "hostname a.test\nmax-recipients 5\n");
	send_path(MSG_CFG_START, 1);
}

static void teardown(void)
{
	int status;
	close(master_fd);
	/* Losing the master ends the worker, with status 0. */
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

START_TEST(test_start)
{
	ck_assert_str_eq(running(), "a.test 5 -");
}
END_TEST

START_TEST(test_prepare_commit)
{
	char why[512];
	ck_assert_uint_eq(prepare("hostname b.test\nmax-recipients 7\n", why, sizeof(why)),
			  MSG_CFG_READY);
	/* Prepared is not taken: the running config stays until COMMIT. */
	ck_assert_str_eq(running(), "a.test 5 -");
	send_empty(MSG_CFG_COMMIT);
	ck_assert_str_eq(running(), "b.test 7 -");
}
END_TEST

START_TEST(test_prepare_abort)
{
	char why[512];
	ck_assert_uint_eq(prepare("hostname c.test\n", why, sizeof(why)), MSG_CFG_READY);
	send_empty(MSG_CFG_ABORT);
	ck_assert_str_eq(running(), "a.test 5 -");
}
END_TEST

START_TEST(test_config_errors_refused)
{
	char why[512];
	ck_assert_uint_eq(prepare("hostname d.test\nbogus 1\n", why, sizeof(why)),
			  MSG_CFG_REFUSED);
	ck_assert_str_eq(why, "test.conf:2: unknown directive \"bogus\"");
	send_empty(MSG_CFG_ABORT);
	ck_assert_str_eq(running(), "a.test 5 -");
}
END_TEST

START_TEST(test_role_refuses)
{
	char why[512];
	ck_assert_uint_eq(prepare("hostname e.test\nmax-recipients 13\n", why, sizeof(why)),
			  MSG_CFG_REFUSED);
	ck_assert_str_eq(why, "unlucky number");
	send_empty(MSG_CFG_ABORT);
	ck_assert_str_eq(running(), "a.test 5 -");
	/* A later good one still goes through. */
	ck_assert_uint_eq(prepare("hostname f.test\n", why, sizeof(why)), MSG_CFG_READY);
	send_empty(MSG_CFG_COMMIT);
	ck_assert_str_eq(running(), "f.test 1000 -");
}
END_TEST

START_TEST(test_files_only_as_handed)
{
	char why[512];
	/* Not handed: taken without the credentials, nothing read from disk. */
	ck_assert_uint_eq(prepare("hostname h.test\nsmarthost relay.test:587 auth=/etc/passwd\n",
				  why, sizeof(why)),
			  MSG_CFG_READY);
	send_empty(MSG_CFG_COMMIT);
	ck_assert_str_eq(running(), "h.test 1000 -");
	/* Handed: the credentials come from the master's copy. */
	send_file("/relayd-test/auth", "carol s3cret\n");
	ck_assert_uint_eq(prepare("hostname g.test\nsmarthost relay.test:587 auth=/relayd-test/auth\n",
				  why, sizeof(why)),
			  MSG_CFG_READY);
	send_empty(MSG_CFG_COMMIT);
	ck_assert_str_eq(running(), "g.test 1000 carol");
}
END_TEST

START_TEST(test_commit_without_prepare_is_a_protocol_error)
{
	uint32_t type;
	uint8_t *p = NULL;
	send_empty(MSG_CFG_COMMIT);
	/* The worker closes the channel on an impossible state. */
	ck_assert_int_lt(ipc_read_frame_blocking(master_fd, &type, &p), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("worker_cfg");
	TCase *tc = tcase_create("protocol");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_start);
	tcase_add_test(tc, test_prepare_commit);
	tcase_add_test(tc, test_prepare_abort);
	tcase_add_test(tc, test_config_errors_refused);
	tcase_add_test(tc, test_role_refuses);
	tcase_add_test(tc, test_files_only_as_handed);
	tcase_add_test(tc, test_commit_without_prepare_is_a_protocol_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
