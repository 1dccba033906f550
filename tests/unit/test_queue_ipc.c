/*
 * test_queue_ipc.c - the queue worker over its real socket, without the
 * master: each test forks queue_main (through worker_run) on a temp state
 * dir and speaks the frames of ipc_types.h as intake, as delivery and as
 * the master forwarding relayctl. Covers commit replies, group commit of
 * pipelined ENDs, abort and broken streams, duplicate ids, jobs against
 * credit, content pulls, results, requeue when delivery goes away, the
 * HELLO_OK handshake, and the payload round trip of every frame the queue
 * reads or writes.
 */
#include "common/config.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/worker.h"
#include "queue/queue.h"
#include "tests/unit/unit_skip.h"

#include <check.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static pid_t child = -1;
static int master_fd = -1;
static uint32_t next_reqid = 1;
/* Now: an old arrival would make a temporary failure expire at once. */
static int64_t arrival;

static void set_timeout(int fd)
{
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* The worker's configuration, as the master sends it: text, then START. */
static void send_config(int fd)
{
	char text[256];
	struct ipc_wr wr;
	int n = snprintf(text, sizeof(text), "hostname relay.test\nstate-dir %s\n", dir);
	ipc_wr_init(&wr);
	ipc_put_str(&wr, "test.conf");
	ipc_put_u32(&wr, 1);
	ipc_put_bytes(&wr, text, (size_t)n);
	ck_assert_int_eq(ipc_write_frame_blocking(fd, MSG_CFG_FILE, buf_head(&wr.b), buf_avail(&wr.b)), 0);
	ipc_wr_free(&wr);
	ipc_wr_init(&wr);
	ipc_put_str(&wr, "test.conf");
	ipc_put_u32(&wr, 1);
	ck_assert_int_eq(ipc_write_frame_blocking(fd, MSG_CFG_START, buf_head(&wr.b), buf_avail(&wr.b)), 0);
	ipc_wr_free(&wr);
}

static void start_worker(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/queue.sock", dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		/* As the master hands them over: the channel, then queue.sock. */
		static struct worker w;
		if (dup2(sp[1], WORKER_MASTER_FD) < 0 || dup2(lfd, WORKER_FIRST_FD) < 0)
			_exit(3);
		w.role = "queue";
		log_init("queue", 1, 1);
		worker_run(&w, queue_main);
	}
	close(sp[1]);
	close(lfd);
	master_fd = sp[0];
	set_timeout(master_fd);
	send_config(master_fd);
}

static void setup(void)
{
	arrival = (int64_t)time(NULL);
	snprintf(dir, sizeof(dir), "/tmp/test_queue_ipc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	start_worker();
}

static void teardown(void)
{
	char cmd[128];
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	close(master_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void send_wr(int fd, uint32_t type, struct ipc_wr *w)
{
	ck_assert_int_eq(ipc_write_frame_blocking(fd, type, buf_head(&w->b), buf_avail(&w->b)), 0);
	ipc_wr_free(w);
	ipc_wr_init(w);
}

/* Reads the next frame, which must be of type want; its payload in *rd (freed by caller). */
static uint8_t *expect(int fd, uint32_t want, struct ipc_rd *rd)
{
	uint32_t type;
	uint8_t *p = NULL;
	long n = ipc_read_frame_blocking(fd, &type, &p);
	ck_assert_msg(n >= 0, "no frame (wanted %u)", want);
	ck_assert_uint_eq(type, want);
	ipc_rd_init(rd, p, (size_t)n);
	return p;
}

/* Connects to queue.sock and sends HELLO(role), nothing more. */
static int peer_hello(uint32_t role)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/queue.sock", dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	set_timeout(fd);
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u32(&w, role);
	send_wr(fd, MSG_Q_HELLO, &w);
	ipc_wr_free(&w);
	return fd;
}

/* The queue's answer to HELLO: the role echoed and the worker's pid. */
static void expect_hello_ok(int fd, uint32_t role)
{
	struct ipc_rd rd;
	uint8_t *p = expect(fd, MSG_Q_HELLO_OK, &rd);
	ck_assert_uint_eq(ipc_get_u32(&rd), role);
	ck_assert_uint_eq(ipc_get_u32(&rd), (uint32_t)child);
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	free(p);
}

/* A peer the queue has accepted, as intake and delivery see it. */
static int peer(uint32_t role)
{
	int fd = peer_hello(role);
	expect_hello_ok(fd, role);
	return fd;
}

/* The peer's next read finds the channel closed, with no frame before. */
static void expect_closed(int fd)
{
	uint32_t type = 0;
	uint8_t *p = NULL;
	ck_assert_msg(ipc_read_frame_blocking(fd, &type, &p) < 0, "frame %u, wanted a close", type);
	free(p);
}

/* Streams one transaction; end 0 leaves it open. */
static void stream(int fd, uint64_t sid, const char *qid, const char *const *rcpts,
		   const char *body, int end)
{
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u64(&w, sid);
	ipc_put_str(&w, qid);
	ipc_put_str(&w, "sender@example.com");
	ipc_put_str(&w, "192.0.2.1");
	ipc_put_str(&w, "client.example");
	ipc_put_str(&w, "");
	ipc_put_u32(&w, BODY_8BITMIME);
	ipc_put_i64(&w, arrival);
	ipc_put_u32(&w, 654321);
	ipc_put_u32(&w, DSN_RET_HDRS);
	ipc_put_str(&w, "ENV 1");
	send_wr(fd, MSG_Q_BEGIN, &w);
	for (size_t i = 0; rcpts[i]; i++) {
		ipc_put_u64(&w, sid);
		ipc_put_str(&w, rcpts[i]);
		ipc_put_u32(&w, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
		ipc_put_str(&w, "rfc822;orig@example.com");
		send_wr(fd, MSG_Q_RCPT, &w);
	}
	/* Pieces of at most 40000 bytes, at least two: they do not line up with the chunks. */
	size_t len = strlen(body), piece = len / 2 > 40000 ? 40000 : len / 2;
	for (size_t off = 0; off < len; off += piece) {
		ipc_put_u64(&w, sid);
		ipc_put_bytes(&w, body + off, len - off < piece ? len - off : piece);
		send_wr(fd, MSG_Q_CONTENT, &w);
	}
	if (end) {
		ipc_put_u64(&w, sid);
		ipc_put_u64(&w, strlen(body));
		send_wr(fd, MSG_Q_END, &w);
	}
	ipc_wr_free(&w);
}

static void expect_committed(int fd, uint64_t sid, const char *qid)
{
	struct ipc_rd rd;
	char got[64];
	uint8_t *p = expect(fd, MSG_Q_COMMITTED, &rd);
	ck_assert_uint_eq(ipc_get_u64(&rd), sid);
	ipc_get_str(&rd, got, sizeof(got));
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	ck_assert_str_eq(got, qid);
	free(p);
}

/* A relayctl command through the master channel: exit status, output in out. */
static int ctl(char *out, size_t outsz, int argc, const char *const *argv)
{
	struct ipc_wr w;
	struct ipc_rd rd;
	uint32_t reqid = next_reqid++;
	ipc_wr_init(&w);
	ipc_put_u32(&w, reqid);
	ipc_put_u32(&w, (uint32_t)argc);
	for (int i = 0; i < argc; i++)
		ipc_put_str(&w, argv[i]);
	send_wr(master_fd, MSG_CTL_REQ, &w);
	ipc_wr_free(&w);
	uint8_t *p = expect(master_fd, MSG_CTL_REP, &rd);
	ck_assert_uint_eq(ipc_get_u32(&rd), reqid);
	int status = (int)ipc_get_u32(&rd);
	ipc_get_str(&rd, out, outsz);
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	free(p);
	return status;
}

/* Polls ctl until its answer contains want (10 s at most); out holds the last answer. */
static void ctl_wait(char *out, size_t outsz, int argc, const char *const *argv, const char *want)
{
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(ctl(out, outsz, argc, argv), 0);
		if (strstr(out, want) != NULL)
			return;
		usleep(10000);
	}
	ck_abort_msg("relayctl %s never said %s; last: %s", argv[0], want, out);
}

/* One number from queue.db as another reader sees it. */
static long db_count(const char *sql)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	long n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static const char *const rcpts3[] = {"a@x.example", "b@y.example", "c@x.example", NULL};
static const char body[] = "From: sender@example.com\r\nSubject: t\r\n\r\nhello\r\n";

/*
 * HELLO_OK comes only for a valid HELLO, and only once: it is how a peer
 * learns that a queue worker, not just the master's socket, serves it.
 */
START_TEST(hello_ok_handshake)
{
	int in = peer_hello(ROLE_INTAKE);
	int d = peer_hello(ROLE_DELIVERY);
	expect_hello_ok(d, ROLE_DELIVERY);
	expect_hello_ok(in, ROLE_INTAKE);
	close(d);
	close(in);
	static const uint32_t bad_roles[] = {0, 3, 0xffffffffu};
	for (size_t i = 0; i < sizeof(bad_roles) / sizeof(bad_roles[0]); i++) {
		int fd = peer_hello(bad_roles[i]);
		expect_closed(fd);
		close(fd);
	}
	/* A second HELLO is a protocol error, not a second answer. */
	in = peer(ROLE_INTAKE);
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u32(&w, ROLE_INTAKE);
	send_wr(in, MSG_Q_HELLO, &w);
	ipc_wr_free(&w);
	expect_closed(in);
	close(in);
	/* Before HELLO, nothing else is served. */
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/queue.sock", dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	set_timeout(fd);
	ipc_wr_init(&w);
	ipc_put_u32(&w, 1);
	send_wr(fd, MSG_D_READY, &w);
	ipc_wr_free(&w);
	expect_closed(fd);
	close(fd);
}
END_TEST

START_TEST(commit_and_list)
{
	static char out[65536];
	int in = peer(ROLE_INTAKE);
	stream(in, 7, "AAAAAAAAAAAAAAA1", rcpts3, body, 1);
	expect_committed(in, 7, "AAAAAAAAAAAAAAA1");
	const char *const q[] = {"queue", "--json"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, q), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"qid\":\"AAAAAAAAAAAAAAA1\""));
	ck_assert_ptr_nonnull(strstr(out, "\"address\":\"c@x.example\",\"state\":\"queued\""));
	const char *const show[] = {"show", "AAAAAAAAAAAAAAA1"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, show), 0);
	ck_assert_ptr_nonnull(strstr(out, "Subject: t\n"));
	ck_assert_ptr_nonnull(strstr(out, "sender: <sender@example.com>"));
	const char *const st[] = {"stats"};
	ck_assert_int_eq(ctl(out, sizeof(out), 1, st), 0);
	ck_assert_ptr_nonnull(strstr(out, "queued 1\n"));
	close(in);
}
END_TEST

START_TEST(group_commit_pipelined)
{
	int in = peer(ROLE_INTAKE);
	char qid[32];
	/* Every transaction written before any reply is read. */
	for (uint64_t sid = 1; sid <= 50; sid++) {
		snprintf(qid, sizeof(qid), "B%015llu", (unsigned long long)sid);
		stream(in, sid, qid, rcpts3, body, 1);
	}
	int seen[51] = {0};
	for (int i = 0; i < 50; i++) {
		struct ipc_rd rd;
		uint8_t *p = expect(in, MSG_Q_COMMITTED, &rd);
		uint64_t sid = ipc_get_u64(&rd);
		ck_assert(sid >= 1 && sid <= 50 && !seen[sid]);
		seen[sid] = 1;
		free(p);
	}
	static char out[262144];
	const char *const st[] = {"stats"};
	ck_assert_int_eq(ctl(out, sizeof(out), 1, st), 0);
	ck_assert_ptr_nonnull(strstr(out, "queued 50\n"));
	close(in);
}
END_TEST

START_TEST(abort_and_broken_stream_leave_nothing)
{
	static char out[65536];
	int in = peer(ROLE_INTAKE);
	stream(in, 1, "CCCCCCCCCCCCCCC1", rcpts3, body, 0);
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u64(&w, 1);
	send_wr(in, MSG_Q_ABORT, &w);
	ipc_wr_free(&w);
	stream(in, 2, "CCCCCCCCCCCCCCC2", rcpts3, body, 1);
	expect_committed(in, 2, "CCCCCCCCCCCCCCC2");
	/* Intake dies in the middle of DATA. */
	int in2 = peer(ROLE_INTAKE);
	stream(in2, 3, "CCCCCCCCCCCCCCC3", rcpts3, body, 0);
	close(in2);
	/* Every table holds the committed message alone, once the queue has
	 * dropped what it had of the broken stream. */
	static const char *const left =
		"SELECT (SELECT count(*) FROM messages WHERE qid <> 'CCCCCCCCCCCCCCC2')"
		" + (SELECT count(*) FROM recipients WHERE qid <> 'CCCCCCCCCCCCCCC2')"
		" + (SELECT count(*) FROM chunks WHERE qid <> 'CCCCCCCCCCCCCCC2')";
	for (int i = 0; i < 1000 && db_count(left) != 0; i++)
		usleep(10000);
	ck_assert_int_eq(db_count(left), 0);
	ck_assert_int_eq(db_count("SELECT count(*) FROM messages WHERE complete = 1"), 1);
	ck_assert_int_eq(db_count("SELECT count(*) FROM recipients"), 3);
	ck_assert_int_eq(db_count("SELECT count(*) FROM chunks"), 1);
	const char *const q[] = {"queue", "--json"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, q), 0);
	ck_assert_ptr_null(strstr(out, "CCCCCCCCCCCCCCC1"));
	ck_assert_ptr_nonnull(strstr(out, "CCCCCCCCCCCCCCC2"));
	ck_assert_ptr_null(strstr(out, "CCCCCCCCCCCCCCC3"));
	const char *const show[] = {"show", "CCCCCCCCCCCCCCC3"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, show), 1);
	ck_assert_str_eq(out, "relayctl: no such message: CCCCCCCCCCCCCCC3\n");
	close(in);
}
END_TEST

START_TEST(duplicate_qid_fails)
{
	int in = peer(ROLE_INTAKE);
	stream(in, 1, "DDDDDDDDDDDDDDD1", rcpts3, body, 1);
	expect_committed(in, 1, "DDDDDDDDDDDDDDD1");
	stream(in, 2, "DDDDDDDDDDDDDDD1", rcpts3, body, 1);
	struct ipc_rd rd;
	char enh[16], text[128];
	uint8_t *p = expect(in, MSG_Q_FAILED, &rd);
	ck_assert_uint_eq(ipc_get_u64(&rd), 2);
	ck_assert_uint_eq(ipc_get_u32(&rd), 451);
	ipc_get_str(&rd, enh, sizeof(enh));
	ipc_get_str(&rd, text, sizeof(text));
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	ck_assert_str_eq(enh, "4.3.0");
	free(p);
	/* The channel still works, and the first message is untouched. */
	stream(in, 3, "DDDDDDDDDDDDDDD3", rcpts3, body, 1);
	expect_committed(in, 3, "DDDDDDDDDDDDDDD3");
	close(in);
}
END_TEST

struct job {
	uint64_t jobid;
	char qid[64], domain[256];
	uint32_t n;
	uint64_t ids[8];
	char addrs[8][64];
};

static void read_job(int fd, struct job *j)
{
	struct ipc_rd rd;
	char sender[256];
	uint8_t *p = expect(fd, MSG_D_JOB, &rd);
	j->jobid = ipc_get_u64(&rd);
	ipc_get_str(&rd, j->qid, sizeof(j->qid));
	ipc_get_str(&rd, sender, sizeof(sender));
	ipc_get_str(&rd, j->domain, sizeof(j->domain));
	ck_assert_uint_eq(ipc_get_u64(&rd), strlen(body));
	ck_assert_uint_eq(ipc_get_u32(&rd), BODY_8BITMIME);
	ck_assert_int_eq(ipc_get_i64(&rd), arrival);
	/* The microseconds of arrival come back as intake gave them. */
	ck_assert_uint_eq(ipc_get_u32(&rd), 654321);
	/* The DSN parameters intake gave come out with the job. */
	char dsn[64];
	ck_assert_uint_eq(ipc_get_u32(&rd), DSN_RET_HDRS);
	ipc_get_str(&rd, dsn, sizeof(dsn));
	ck_assert_str_eq(dsn, "ENV 1");
	j->n = ipc_get_u32(&rd);
	ck_assert(j->n <= 8);
	for (uint32_t i = 0; i < j->n; i++) {
		j->ids[i] = ipc_get_u64(&rd);
		ipc_get_str(&rd, j->addrs[i], sizeof(j->addrs[i]));
		ck_assert_uint_eq(ipc_get_u32(&rd), DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
		ipc_get_str(&rd, dsn, sizeof(dsn));
		ck_assert_str_eq(dsn, "rfc822;orig@example.com");
	}
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	ck_assert_str_eq(sender, "sender@example.com");
	free(p);
}

static void send_u32(int fd, uint32_t type, uint32_t v)
{
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u32(&w, v);
	send_wr(fd, type, &w);
	ipc_wr_free(&w);
}

static void send_result(int fd, uint64_t jobid, uint64_t rcptid, uint32_t dclass)
{
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u64(&w, jobid);
	ipc_put_u64(&w, rcptid);
	ipc_put_u32(&w, dclass);
	ipc_put_u32(&w, dclass == DLV_SENT ? 250 : 451);
	ipc_put_str(&w, dclass == DLV_SENT ? "2.0.0" : "4.4.1");
	ipc_put_str(&w, dclass == DLV_SENT ? "250 ok" : "connection refused");
	ipc_put_str(&w, "mx.example[192.0.2.5]:25");
	ipc_put_str(&w, dclass == DLV_SENT ? "250 ok" : "");
	ipc_put_u32(&w, 0);
	send_wr(fd, MSG_D_RESULT, &w);
	ipc_wr_free(&w);
}

/* The next frame is MSG_D_FLUSH for domain. */
static void expect_flush(int fd, const char *domain)
{
	struct ipc_rd rd;
	char got[256];
	uint8_t *p = expect(fd, MSG_D_FLUSH, &rd);
	ipc_get_str(&rd, got, sizeof(got));
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	ck_assert_str_eq(got, domain);
	free(p);
}

static void send_suspended(int fd, uint64_t jobid, int64_t until)
{
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u64(&w, jobid);
	ipc_put_i64(&w, until);
	ipc_put_str(&w, "4.4.1");
	ipc_put_str(&w, "delivery temporarily suspended: connection refused");
	send_wr(fd, MSG_D_SUSPENDED, &w);
	ipc_wr_free(&w);
}

START_TEST(jobs_content_results)
{
	static char out[65536];
	int in = peer(ROLE_INTAKE);
	stream(in, 1, "EEEEEEEEEEEEEEE1", rcpts3, body, 1);
	expect_committed(in, 1, "EEEEEEEEEEEEEEE1");
	int d = peer(ROLE_DELIVERY);
	/* One credit: one job, grouped by domain. */
	send_u32(d, MSG_D_READY, 1);
	struct job j1, j2;
	read_job(d, &j1);
	ck_assert_str_eq(j1.qid, "EEEEEEEEEEEEEEE1");
	ck_assert_str_eq(j1.domain, "x.example");
	ck_assert_uint_eq(j1.n, 2);
	ck_assert_str_eq(j1.addrs[0], "a@x.example");
	ck_assert_str_eq(j1.addrs[1], "c@x.example");
	/* Pull the content. */
	struct ipc_wr w;
	struct ipc_rd rd;
	ipc_wr_init(&w);
	ipc_put_u64(&w, j1.jobid);
	ipc_put_u32(&w, 0);
	send_wr(d, MSG_D_CHUNK_REQ, &w);
	ipc_wr_free(&w);
	uint8_t *p = expect(d, MSG_D_CHUNK, &rd);
	ck_assert_uint_eq(ipc_get_u64(&rd), j1.jobid);
	ck_assert_uint_eq(ipc_get_u32(&rd), 0);
	ck_assert_uint_eq(ipc_get_u32(&rd), 1);
	size_t n;
	const uint8_t *data = ipc_get_bytes(&rd, &n);
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	ck_assert_uint_eq(n, strlen(body));
	ck_assert_int_eq(memcmp(data, body, n), 0);
	free(p);
	/* No credit left: the second domain waits for READY. */
	send_u32(d, MSG_D_READY, 1);
	read_job(d, &j2);
	ck_assert_str_eq(j2.domain, "y.example");
	send_result(d, j1.jobid, j1.ids[0], DLV_SENT);
	send_result(d, j1.jobid, j1.ids[1], DLV_SENT);
	send_result(d, j2.jobid, j2.ids[0], DLV_DEFERRED);
	/* Results are handled in order: once the last shows, so do the others. */
	const char *const q[] = {"queue", "--json"};
	ctl_wait(out, sizeof(out), 2, q, "\"address\":\"b@y.example\",\"state\":\"deferred\","
					 "\"attempts\":1");
	ck_assert_ptr_null(strstr(out, "a@x.example"));
	ck_assert_ptr_nonnull(strstr(out, "\"last_error\":\"connection refused\""));
	/* Flush makes it due again, after telling delivery to forget its next
	 * hop; delivery gets it with the next credit. */
	const char *const fl[] = {"flush", "EEEEEEEEEEEEEEE1"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, fl), 0);
	expect_flush(d, "y.example");
	send_u32(d, MSG_D_READY, 1);
	read_job(d, &j2);
	ck_assert_str_eq(j2.addrs[0], "b@y.example");
	send_result(d, j2.jobid, j2.ids[0], DLV_SENT);
	const char *const st[] = {"stats"};
	ctl_wait(out, sizeof(out), 1, st, "queued 0\n");
	ck_assert_str_eq(out, "delivered 3\ndeferred 1\nbounced 0\nqueued 0\n");
	close(d);
	close(in);
}
END_TEST

START_TEST(suspended_then_flush)
{
	static char out[65536];
	char want[256];
	int in = peer(ROLE_INTAKE);
	stream(in, 1, "SSSSSSSSSSSSSSS1", rcpts3, body, 1);
	expect_committed(in, 1, "SSSSSSSSSSSSSSS1");
	int d = peer(ROLE_DELIVERY);
	send_u32(d, MSG_D_READY, 4);
	struct job jx, jy;
	read_job(d, &jx);
	read_job(d, &jy);
	ck_assert_str_eq(jx.domain, "x.example");
	/* x.example deferred without a connection, y.example after a real try. */
	int64_t until = ev_wallclock() + 100;
	send_suspended(d, jx.jobid, until);
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u64(&w, jx.jobid);
	send_wr(d, MSG_D_DONE, &w);
	ipc_wr_free(&w);
	send_result(d, jy.jobid, jy.ids[0], DLV_DEFERRED);
	const char *const q[] = {"queue", "--json"};
	ctl_wait(out, sizeof(out), 2, q, "\"address\":\"b@y.example\",\"state\":\"deferred\","
					 "\"attempts\":1");
	/* No attempt counted; due when the next hop's memory ends, not after a backoff. */
	for (size_t i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "{\"address\":\"%s\",\"state\":\"queued\","
			 "\"attempts\":0,\"next_attempt\":%lld,\"last_error\":\"delivery "
			 "temporarily suspended: connection refused\"", i ? "c@x.example" : "a@x.example",
			 (long long)until);
		ck_assert_msg(strstr(out, want) != NULL, "%s not in %s", want, out);
	}
	/* flush QID: delivery forgets each of the message's next hops, once, then the jobs come. */
	const char *const fl[] = {"flush", "SSSSSSSSSSSSSSS1"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, fl), 0);
	expect_flush(d, "x.example");
	expect_flush(d, "y.example");
	read_job(d, &jx);
	read_job(d, &jy);
	ck_assert_uint_eq(jx.n + jy.n, 3);
	/* flush without a QID: every next hop. */
	const char *const all[] = {"flush"};
	ck_assert_int_eq(ctl(out, sizeof(out), 1, all), 0);
	expect_flush(d, "");
	close(d);
	close(in);
}
END_TEST

START_TEST(delivery_gone_requeues)
{
	int in = peer(ROLE_INTAKE);
	static const char *const one[] = {"a@x.example", NULL};
	stream(in, 1, "FFFFFFFFFFFFFFF1", one, body, 1);
	expect_committed(in, 1, "FFFFFFFFFFFFFFF1");
	int d = peer(ROLE_DELIVERY);
	send_u32(d, MSG_D_READY, 5);
	struct job j;
	read_job(d, &j);
	close(d);
	d = peer(ROLE_DELIVERY);
	send_u32(d, MSG_D_READY, 5);
	struct job j2;
	read_job(d, &j2);
	ck_assert_str_eq(j2.qid, "FFFFFFFFFFFFFFF1");
	ck_assert_uint_eq(j2.ids[0], j.ids[0]);
	ck_assert(j2.jobid != j.jobid);
	close(d);
	close(in);
}
END_TEST

START_TEST(ctl_hold_release_delete)
{
	static char out[65536];
	int in = peer(ROLE_INTAKE);
	static const char *const one[] = {"a@x.example", NULL};
	stream(in, 1, "GGGGGGGGGGGGGGG1", one, body, 1);
	expect_committed(in, 1, "GGGGGGGGGGGGGGG1");
	const char *const hold[] = {"hold", "GGGGGGGGGGGGGGG1"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, hold), 0);
	/* Held: delivery gets nothing. */
	int d = peer(ROLE_DELIVERY);
	send_u32(d, MSG_D_READY, 5);
	const char *const q[] = {"queue"};
	ck_assert_int_eq(ctl(out, sizeof(out), 1, q), 0);
	ck_assert_ptr_nonnull(strstr(out, "<a@x.example> hold"));
	const char *const rel[] = {"release", "GGGGGGGGGGGGGGG1"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, rel), 0);
	struct job j;
	read_job(d, &j);
	ck_assert_str_eq(j.qid, "GGGGGGGGGGGGGGG1");
	const char *const del[] = {"delete", "GGGGGGGGGGGGGGG1"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, del), 0);
	ck_assert_int_eq(ctl(out, sizeof(out), 2, del), 1);
	ck_assert_str_eq(out, "relayctl: no such message: GGGGGGGGGGGGGGG1\n");
	/* The deleted message's content is gone: the job fails. */
	struct ipc_wr w;
	struct ipc_rd rd;
	ipc_wr_init(&w);
	ipc_put_u64(&w, j.jobid);
	ipc_put_u32(&w, 0);
	send_wr(d, MSG_D_CHUNK_REQ, &w);
	ipc_wr_free(&w);
	uint8_t *p = expect(d, MSG_D_JOB_FAIL, &rd);
	ck_assert_uint_eq(ipc_get_u64(&rd), j.jobid);
	free(p);
	static const char *const unknown[][2] = {{"hold", "X"}, {"release", "X"}, {"flush", "X"},
						 {"show", "X"}, {"delete", "X"}};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ck_assert_int_eq(ctl(out, sizeof(out), 2, unknown[i]), 1);
		ck_assert_str_eq(out, "relayctl: no such message: X\n");
	}
	stream(in, 2, "GGGGGGGGGGGGGGG2", one, body, 1);
	expect_committed(in, 2, "GGGGGGGGGGGGGGG2");
	const char *const all[] = {"delete", "all"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, all), 0);
	ck_assert_str_eq(out, "1 message(s) deleted\n");
	ck_assert_int_eq(ctl(out, sizeof(out), 1, q), 0);
	ck_assert_str_eq(out, "queue is empty\n");
	close(d);
	close(in);
}
END_TEST

START_TEST(malformed_frame_closes_only_that_peer)
{
	int bad = peer(ROLE_INTAKE);
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u32(&w, 1); /* a RCPT without its fields */
	send_wr(bad, MSG_Q_RCPT, &w);
	ipc_wr_free(&w);
	uint32_t type;
	uint8_t *p = NULL;
	ck_assert_int_lt(ipc_read_frame_blocking(bad, &type, &p), 0);
	close(bad);
	int in = peer(ROLE_INTAKE);
	static const char *const one[] = {"a@x.example", NULL};
	stream(in, 1, "HHHHHHHHHHHHHHH1", one, body, 1);
	expect_committed(in, 1, "HHHHHHHHHHHHHHH1");
	close(in);
}
END_TEST

/* The state dir on a small tmpfs (root only), so the disk can really fill up. */
static int mounted;

static void setup_small_disk(void)
{
	arrival = (int64_t)time(NULL);
	snprintf(dir, sizeof(dir), "/tmp/test_queue_ipc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	mounted = mount("tmpfs", dir, "tmpfs", 0, "size=4m") == 0;
	start_worker();
}

static void teardown_small_disk(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	close(master_fd);
	if (mounted)
		ck_assert_int_eq(umount(dir), 0);
	rmdir(dir);
}

/* A FAILED frame; its session id is returned. */
static uint64_t expect_failed(int fd, uint32_t code, const char *enh)
{
	struct ipc_rd rd;
	char got_enh[16], text[128];
	uint8_t *p = expect(fd, MSG_Q_FAILED, &rd);
	uint64_t sid = ipc_get_u64(&rd);
	ck_assert_uint_eq(ipc_get_u32(&rd), code);
	ipc_get_str(&rd, got_enh, sizeof(got_enh));
	ipc_get_str(&rd, text, sizeof(text));
	ck_assert_int_eq(ipc_rd_done(&rd), 0);
	ck_assert_str_eq(got_enh, enh);
	free(p);
	return sid;
}

START_TEST(disk_full_fails_then_recovers)
{
	static char out[65536];
	if (!mounted)
		UNIT_SKIP("cannot mount a small tmpfs (needs root)");
	static const char *const one[] = {"a@x.example", NULL};
	int in = peer(ROLE_INTAKE);
	stream(in, 1, "KKKKKKKKKKKKKKK1", one, body, 1);
	expect_committed(in, 1, "KKKKKKKKKKKKKKK1");
	/* Fill the disk, leaving about 200 KB. */
	char filler[128];
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	struct statvfs sv;
	ck_assert_int_eq(statvfs(dir, &sv), 0);
	size_t fill = (size_t)sv.f_bavail * sv.f_frsize - 200 * 1024;
	FILE *f = fopen(filler, "w");
	ck_assert_ptr_nonnull(f);
	char *zeros = calloc(1, fill);
	ck_assert_uint_eq(fwrite(zeros, 1, fill, f), fill);
	ck_assert_int_eq(fclose(f), 0);
	free(zeros);
	/* A 1 MB message cannot fit: 452 4.3.1. (Content of messages still
	 * streaming is committed every 20 ms, so whether another session
	 * shares the failing transaction is a matter of timing: not tested.) */
	char *big = malloc(1024 * 1024 + 1);
	memset(big, 'x', 1024 * 1024);
	big[1024 * 1024] = '\0';
	stream(in, 2, "KKKKKKKKKKKKKKK2", one, big, 1);
	ck_assert_uint_eq(expect_failed(in, 452, "4.3.1"), 2);
	free(big);
	/* Space comes back: the queue serves again, and lost nothing committed. */
	ck_assert_int_eq(unlink(filler), 0);
	stream(in, 4, "KKKKKKKKKKKKKKK4", one, body, 1);
	expect_committed(in, 4, "KKKKKKKKKKKKKKK4");
	const char *const q[] = {"queue", "--json"};
	ck_assert_int_eq(ctl(out, sizeof(out), 2, q), 0);
	ck_assert_ptr_nonnull(strstr(out, "KKKKKKKKKKKKKKK1"));
	ck_assert_ptr_null(strstr(out, "KKKKKKKKKKKKKKK2"));
	ck_assert_ptr_null(strstr(out, "KKKKKKKKKKKKKKK3"));
	ck_assert_ptr_nonnull(strstr(out, "KKKKKKKKKKKKKKK4"));
	close(in);
}
END_TEST

int main(void)
{
	log_init("test", 1, 0);
	Suite *s = suite_create("queue_ipc");
	TCase *tc = tcase_create("ipc");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hello_ok_handshake);
	tcase_add_test(tc, commit_and_list);
	tcase_add_test(tc, group_commit_pipelined);
	tcase_add_test(tc, abort_and_broken_stream_leave_nothing);
	tcase_add_test(tc, duplicate_qid_fails);
	tcase_add_test(tc, jobs_content_results);
	tcase_add_test(tc, suspended_then_flush);
	tcase_add_test(tc, delivery_gone_requeues);
	tcase_add_test(tc, ctl_hold_release_delete);
	tcase_add_test(tc, malformed_frame_closes_only_that_peer);
	suite_add_tcase(s, tc);
	TCase *full = tcase_create("full");
	tcase_set_timeout(full, 30);
	tcase_add_checked_fixture(full, setup_small_disk, teardown_small_disk);
	tcase_add_test(full, disk_full_fails_then_recovers);
	suite_add_tcase(s, full);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
