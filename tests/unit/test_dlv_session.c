/*
 * test_dlv_session.c - the delivery worker end to end without the rest of
 * relayd: delivery_main runs in a child process; this test plays the
 * queue on STATE_DIR/queue.sock (jobs, content pieces, results) and runs
 * scripted SMTP servers (forked, on loopback) that record what they got.
 * Next hops are numeric routes, so no DNS is involved; DNS cases are in
 * tests/integration/test_delivery_*.py.
 */
#include "common/config.h"
#include "common/event.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/worker.h"
#include "relayd/delivery/dlv.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 10000

/* ---- scripted SMTP server ---- */

struct script {
	const char *greeting;  /* default "220 fake ESMTP" */
	const char *ehlo;      /* whole reply; default: PIPELINING, SIZE, 8BITMIME */
	const char *mail;      /* default "250 2.1.0 Ok" */
	const char *data;      /* default "354 go ahead" */
	const char *dot;       /* default "250 2.0.0 Ok: queued as FAKE" */
	int conns;             /* connections served before exiting */
	int silent;            /* accept, then say nothing (timeouts) */
};

static char tmpdir[256];

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* The log is flushed first: once the client has a reply, the test may read it. */
static void reply(FILE *log, int fd, const char *line)
{
	fflush(log);
	send_str(fd, line);
	if (line[strlen(line) - 1] != '\n')
		send_str(fd, "\r\n");
}

static const char *rcpt_reply(const char *line)
{
	if (strstr(line, "bad"))
		return "550 5.1.1 User unknown";
	if (strstr(line, "tmp"))
		return "451 4.2.0 Try again later";
	if (strstr(line, "bye"))
		return "421 4.3.2 Closing now";
	return "250 2.1.5 Ok";
}

/* One connection: replies by the script, everything received goes to log. */
static void serve_conn(const struct script *sc, int fd, FILE *log)
{
	FILE *in = fdopen(dup(fd), "r");
	char line[4096];

	fprintf(log, "CONNECT\n");
	if (sc->silent) {
		fflush(log);
		sleep(30);
		goto out;
	}
	reply(log, fd, sc->greeting ? sc->greeting : "220 fake ESMTP");
	if (sc->greeting && sc->greeting[0] != '2')
		goto out;
	while (fgets(line, sizeof(line), in)) {
		fprintf(log, "%s", line);
		fflush(log);
		if (strncasecmp(line, "EHLO", 4) == 0)
			reply(log, fd, sc->ehlo ? sc->ehlo
						: "250-fake\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"
						  "250 8BITMIME\r\n");
		else if (strncasecmp(line, "HELO", 4) == 0)
			reply(log, fd, "250 fake");
		else if (strncasecmp(line, "MAIL", 4) == 0)
			reply(log, fd, sc->mail ? sc->mail : "250 2.1.0 Ok");
		else if (strncasecmp(line, "RCPT", 4) == 0) {
			const char *r = rcpt_reply(line);
			reply(log, fd, r);
			if (r[0] == '4' && r[1] == '2' && r[2] == '1')
				goto out;
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			const char *d = sc->data ? sc->data : "354 go ahead";
			reply(log, fd, d);
			if (d[0] != '3')
				continue;
			fprintf(log, "<DATA>\n");
			while (fgets(line, sizeof(line), in)) {
				fprintf(log, "%s", line);
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			fprintf(log, "</DATA>\n");
			reply(log, fd, sc->dot ? sc->dot : "250 2.0.0 Ok: queued as FAKE");
		} else if (strncasecmp(line, "RSET", 4) == 0)
			reply(log, fd, "250 Ok");
		else if (strncasecmp(line, "QUIT", 4) == 0) {
			reply(log, fd, "221 Bye");
			break;
		} else
			reply(log, fd, "502 5.5.2 Unknown command");
	}
out:
	fprintf(log, "CLOSE\n");
	fflush(log);
	fclose(in);
	close(fd);
}

static int listen_tcp(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A free port nobody listens on: connections to it are refused. */
static uint16_t dead_port(void)
{
	uint16_t port;
	close(listen_tcp(&port));
	return port;
}

static pid_t server_pids[4];
static int nservers;

static uint16_t smtp_server(const struct script *sc, char *logpath, size_t logsz)
{
	uint16_t port;
	int lfd = listen_tcp(&port);

	snprintf(logpath, logsz, "%s/smtp-%u.log", tmpdir, port);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		FILE *log = fopen(logpath, "w");
		alarm(30);
		for (int i = 0; i < (sc->conns ? sc->conns : 1); i++) {
			int fd = accept(lfd, NULL, NULL);
			if (fd < 0)
				_exit(1);
			serve_conn(sc, fd, log);
		}
		fclose(log);
		_exit(0);
	}
	close(lfd);
	server_pids[nservers++] = pid;
	return port;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char empty[] = "";
	if (f == NULL)
		return strdup(empty);
	char *s = calloc(1, 1 << 20);
	size_t n = fread(s, 1, (1 << 20) - 1, f);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* The server's log once it holds needle (or after 5 s, for the assertion to fail). */
static char *slurp_when(const char *path, const char *needle)
{
	for (int i = 0; i < 100; i++) {
		char *s = slurp(path);
		if (strstr(s, needle))
			return s;
		free(s);
		usleep(50000);
	}
	return slurp(path);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* ---- the delivery worker and the fake queue ---- */

static pid_t dlv_pid = -1;
static int qfd = -1;
static char dlv_log[300];
static struct config cfg;

static void start_delivery(const char *conf_extra)
{
	char path[300], sock[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/relayd.conf", tmpdir);
	f = fopen(path, "w");
	fprintf(f, "hostname relayd.test\nstate-dir %s\n%s", tmpdir, conf_extra);
	fclose(f);
	ck_assert_int_eq(config_load(path, &cfg, stderr), 0);

	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sock, sizeof(sock), "%s/queue.sock", tmpdir);
	ck_assert_uint_lt(strlen(sock), sizeof(sun.sun_path));
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	unlink(sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);

	snprintf(dlv_log, sizeof(dlv_log), "%s/delivery.log", tmpdir);
	dlv_pid = fork();
	ck_assert_int_ge(dlv_pid, 0);
	if (dlv_pid == 0) {
		static struct worker w;
		int lf = open(dlv_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(lf, 2);
		close(lfd);
		alarm(60);
		log_init("delivery", 1, 1);
		w.role = "delivery";
		w.loop = ev_loop_new();
		w.cfg = &cfg;
		/* Timeouts a hundred times shorter: 300 s waits become 3 s. */
		dlv_session_timeout_div(100);
		delivery_main(&w);
		_exit(0);
	}
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	ck_assert_int_eq(poll(&pfd, 1, IO_TIMEOUT_MS), 1);
	qfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(qfd, 0);
	close(lfd);
}

/* Reads one frame from delivery, bounded in time. */
static long read_frame(uint32_t *type, uint8_t **payload)
{
	struct pollfd pfd = {.fd = qfd, .events = POLLIN};
	ck_assert_msg(poll(&pfd, 1, IO_TIMEOUT_MS) == 1, "delivery said nothing for %d ms:\n%s",
		      IO_TIMEOUT_MS, slurp(dlv_log));
	long n = ipc_read_frame_blocking(qfd, type, payload);
	ck_assert_msg(n >= 0, "queue channel closed:\n%s", slurp(dlv_log));
	return n;
}

static void expect_hello(void)
{
	uint32_t type;
	uint8_t *p;
	struct ipc_rd rd;
	long n = read_frame(&type, &p);

	ck_assert_uint_eq(type, MSG_Q_HELLO);
	ipc_rd_init(&rd, p, (size_t)n);
	ck_assert_uint_eq(ipc_get_u32(&rd), ROLE_DELIVERY);
	free(p);
	/* Credits come only once the queue answered. */
	struct pollfd pfd = {.fd = qfd, .events = POLLIN};
	ck_assert_int_eq(poll(&pfd, 1, 100), 0);
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_u32(&w, ROLE_DELIVERY);
	ipc_put_u32(&w, (uint32_t)getpid());
	ck_assert_int_eq(ipc_write_frame_blocking(qfd, MSG_Q_HELLO_OK, buf_head(&w.b),
						  buf_avail(&w.b)), 0);
	ipc_wr_free(&w);
	n = read_frame(&type, &p);
	ck_assert_uint_eq(type, MSG_D_READY);
	ipc_rd_init(&rd, p, (size_t)n);
	ck_assert_uint_gt(ipc_get_u32(&rd), 1);
	free(p);
}

/* A MSG_D_JOB frame appended to frames; send_job writes one at once. */
static void job_frame(struct buf *frames, uint64_t jobid, const char *qid, const char *sender,
		      const char *domain, uint64_t size, uint32_t body, const char *const *rcpts)
{
	struct ipc_wr w;
	uint32_t n = 0;

	while (rcpts[n])
		n++;
	ipc_wr_init(&w);
	ipc_put_u64(&w, jobid);
	ipc_put_str(&w, qid);
	ipc_put_str(&w, sender);
	ipc_put_str(&w, domain);
	ipc_put_u64(&w, size);
	ipc_put_u32(&w, body);
	ipc_put_i64(&w, ev_wallclock());
	ipc_put_u32(&w, 0);
	ipc_put_u32(&w, 0);  /* no RET= */
	ipc_put_str(&w, ""); /* no ENVID= */
	ipc_put_u32(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		ipc_put_u64(&w, jobid * 100 + i);
		ipc_put_str(&w, rcpts[i]);
		ipc_put_u32(&w, 0);  /* no NOTIFY= */
		ipc_put_str(&w, ""); /* no ORCPT= */
	}
	uint32_t hdr[2] = {MSG_D_JOB, (uint32_t)buf_avail(&w.b)};
	buf_append(frames, hdr, sizeof(hdr));
	buf_append(frames, buf_head(&w.b), buf_avail(&w.b));
	ipc_wr_free(&w);
}

/* frames in one write: the worker reads them together. */
static void send_frames(struct buf *frames)
{
	ck_assert_int_eq(write(qfd, buf_head(frames), buf_avail(frames)), (ssize_t)buf_avail(frames));
	buf_free(frames);
}

static void send_job(uint64_t jobid, const char *qid, const char *sender, const char *domain,
		     uint64_t size, uint32_t body, const char *const *rcpts)
{
	struct buf frames;
	buf_init(&frames);
	job_frame(&frames, jobid, qid, sender, domain, size, body, rcpts);
	send_frames(&frames);
}

struct result {
	uint64_t jobid, rcptid;
	uint32_t cls, code;
	char enh[16], text[2048], relay[400], reply[1024];
	uint32_t flags;
};

#define NRESULTS 64
static struct result results[NRESULTS];
static int nresults; /* may pass NRESULTS: the ones past it are counted, not kept */

/* MSG_D_SUSPENDED frames: jobs deferred without a connection. */
struct suspension {
	uint64_t jobid;
	int64_t until;
	char enh[16], text[2048];
};

static struct suspension suspended[16];
static int nsuspended;

/*
 * Plays the queue until njobs DONE frames came: content pieces of at most
 * piece bytes from content[jobid % 100], results recorded.
 */
static void serve_queue(int njobs, const char *const *contents, size_t piece)
{
	int done = 0;

	while (done < njobs) {
		uint32_t type;
		uint8_t *p;
		struct ipc_rd rd;
		long n = read_frame(&type, &p);
		ipc_rd_init(&rd, p, (size_t)n);
		if (type == MSG_D_CHUNK_REQ) {
			uint64_t jobid = ipc_get_u64(&rd);
			uint32_t seq = ipc_get_u32(&rd);
			const char *c = contents[jobid % 100];
			size_t len = strlen(c), off = seq * piece;
			ck_assert_uint_le(off, len);
			size_t k = len - off < piece ? len - off : piece;
			struct ipc_wr w;
			ipc_wr_init(&w);
			ipc_put_u64(&w, jobid);
			ipc_put_u32(&w, seq);
			ipc_put_u32(&w, off + k >= len);
			ipc_put_bytes(&w, c + off, k);
			ipc_write_frame_blocking(qfd, MSG_D_CHUNK, buf_head(&w.b), buf_avail(&w.b));
			ipc_wr_free(&w);
		} else if (type == MSG_D_RESULT) {
			struct result scratch, *r = nresults < NRESULTS ? &results[nresults] : &scratch;
			nresults++;
			r->jobid = ipc_get_u64(&rd);
			r->rcptid = ipc_get_u64(&rd);
			r->cls = ipc_get_u32(&rd);
			r->code = ipc_get_u32(&rd);
			ipc_get_str(&rd, r->enh, sizeof(r->enh));
			ipc_get_str(&rd, r->text, sizeof(r->text));
			ipc_get_str(&rd, r->relay, sizeof(r->relay));
			ipc_get_str(&rd, r->reply, sizeof(r->reply));
			r->flags = ipc_get_u32(&rd);
			ck_assert_int_eq(ipc_rd_done(&rd), 0);
		} else if (type == MSG_D_SUSPENDED) {
			struct suspension *sp = &suspended[nsuspended++];
			sp->jobid = ipc_get_u64(&rd);
			sp->until = ipc_get_i64(&rd);
			ipc_get_str(&rd, sp->enh, sizeof(sp->enh));
			ipc_get_str(&rd, sp->text, sizeof(sp->text));
			ck_assert_int_eq(ipc_rd_done(&rd), 0);
		} else if (type == MSG_D_TRACE) {
			/* Before the results it explains: a transcript of the attempt. */
			struct ipc_msg_d_trace m;
			ck_assert_int_eq(ipc_msg_d_trace_decode(&rd, &m), 0);
			ck_assert_uint_gt(m.text.n, 0);
			ck_assert(memmem(m.text.p, m.text.n, " attempt for ", 13) != NULL);
		} else if (type == MSG_D_DONE) {
			done++;
		} else {
			ck_assert_uint_eq(type, MSG_D_READY);
		}
		free(p);
	}
}

static const struct result *result_for(uint64_t rcptid)
{
	for (int i = 0; i < nresults && i < NRESULTS; i++)
		if (results[i].rcptid == rcptid)
			return &results[i];
	ck_abort_msg("no result for recipient %llu:\n%s", (unsigned long long)rcptid,
		     slurp(dlv_log));
	return NULL;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dlv_session.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	nresults = 0;
	nsuspended = 0;
	nservers = 0;
	signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
	char cmd[300];

	if (dlv_pid > 0) {
		kill(dlv_pid, SIGKILL);
		waitpid(dlv_pid, NULL, 0);
		dlv_pid = -1;
	}
	for (int i = 0; i < nservers; i++) {
		kill(server_pids[i], SIGKILL);
		waitpid(server_pids[i], NULL, 0);
	}
	if (qfd >= 0)
		close(qfd);
	qfd = -1;
	if (getenv("KEEP_TEST_DIRS"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void start_with_route(uint16_t port, const char *more)
{
	char conf[512];
	snprintf(conf, sizeof(conf), "route example.org [127.0.0.1]:%u tls=none\n%s", port,
		 more ? more : "");
	start_delivery(conf);
	expect_hello();
}

/* ---- the cases ---- */

START_TEST(test_pipelined_mixed_outcomes)
{
	struct script sc = {0};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"ok@example.org", "bad@example.org",
					    "tmp@example.org", "ok2@example.org", NULL};
	const char *content = "Subject: t\r\n\r\n.leading dot\r\nline\r\n.\r\nend\r\n";
	const char *contents[100] = {[1] = content};

	start_with_route(port, NULL);
	send_job(1, "QID1", "sender@relayd.test", "example.org", strlen(content), 0, rcpts);
	serve_queue(1, contents, 7);
	ck_assert_int_eq(nresults, 4);
	ck_assert_uint_eq(result_for(100)->cls, DLV_SENT);
	ck_assert_str_eq(result_for(100)->enh, "2.0.0");
	ck_assert_str_eq(result_for(100)->text, "250 2.0.0 Ok: queued as FAKE");
	ck_assert_uint_eq(result_for(101)->cls, DLV_BOUNCED);
	ck_assert_uint_eq(result_for(101)->code, 550);
	ck_assert_str_eq(result_for(101)->enh, "5.1.1");
	ck_assert_ptr_nonnull(strstr(result_for(101)->text, "said: 550 5.1.1 User unknown "
							     "(in reply to RCPT TO)"));
	/* The reply itself travels apart from the explanation, for Diagnostic-Code. */
	ck_assert_str_eq(result_for(101)->reply, "550 5.1.1 User unknown");
	/* The fake offers no DSN: a success is "relayed" as far as NOTIFY goes. */
	ck_assert_uint_eq(result_for(100)->flags, RESULT_DSN_RELAYED);
	ck_assert_uint_eq(result_for(102)->cls, DLV_DEFERRED);
	ck_assert_str_eq(result_for(102)->enh, "4.2.0");
	ck_assert_uint_eq(result_for(103)->cls, DLV_SENT);
	char relay[64];
	snprintf(relay, sizeof(relay), "127.0.0.1[127.0.0.1]:%u", port);
	ck_assert_str_eq(result_for(103)->relay, relay);

	char *t = slurp(slog);
	ck_assert_ptr_nonnull(strstr(t, "MAIL FROM:<sender@relayd.test> SIZE=42\r\n"));
	/* Dot-stuffed on the wire, ending in CRLF.CRLF. */
	ck_assert_ptr_nonnull(strstr(t, "<DATA>\nSubject: t\r\n\r\n..leading dot\r\nline\r\n"
					"..\r\nend\r\n.\r\n</DATA>"));
	free(t);
	char *l = slurp(dlv_log);
	ck_assert_msg(strstr(l, "QID1: to=<ok@example.org>, relay=127.0.0.1[127.0.0.1]:") &&
		      strstr(l, ", dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as FAKE)"), "%s", l);
	ck_assert_ptr_nonnull(strstr(l, "QID1: to=<bad@example.org>"));
	ck_assert_ptr_nonnull(strstr(l, "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] "
					"said: 550 5.1.1 User unknown (in reply to RCPT TO))"));
	ck_assert_ptr_nonnull(strstr(l, "dsn=4.2.0, status=deferred"));
	free(l);
}
END_TEST

START_TEST(test_no_pipelining_mail_rejected)
{
	struct script sc = {.ehlo = "250-fake\r\n250 8BITMIME\r\n",
			    .mail = "451 4.3.0 Mailbox busy"};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.org", "b@example.org", NULL};
	const char *contents[100] = {[2] = "x\r\n"};

	start_with_route(port, NULL);
	send_job(2, "QID2", "", "example.org", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nresults, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(results[i].cls, DLV_DEFERRED);
		ck_assert_uint_eq(results[i].code, 451);
		ck_assert_ptr_nonnull(strstr(results[i].text, "(in reply to MAIL FROM)"));
	}
	char *t = slurp_when(slog, "CLOSE");
	/* Null sender, no SIZE (not offered), and no RCPT after a refused MAIL. */
	ck_assert_ptr_nonnull(strstr(t, "MAIL FROM:<>\r\n"));
	ck_assert_ptr_null(strstr(t, "RCPT"));
	ck_assert_ptr_nonnull(strstr(t, "QUIT"));
	free(t);
}
END_TEST

/*
 * Before MAIL: a message over the server's SIZE bounces; an 8-bit SMTPUTF8
 * message for a server with neither extension is converted (read whole
 * first), its UTF-8 recipient alone bounces 5.6.7 and gets no RCPT, even
 * pipelined; one that grows past SIZE when converted bounces then.
 */
START_TEST(test_size_checked_and_8bit_converted_before_mail)
{
	struct script sc = {.ehlo = "250-fake\r\n250-PIPELINING\r\n250 SIZE 200\r\n", .conns = 3};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const r1[] = {"a@example.org", NULL};
	static const char *const r2[] = {"b@example.org", "j\xc3\xb6rg@example.org", "c@example.org",
					 NULL};
	static char big[300], grows[100];
	memset(big, 'x', 250);
	memcpy(big + 250, "\r\n", 3);
	for (int i = 0; i < 30; i++)
		memcpy(grows + 2 * i, "\xc3\xa9", 2);
	memcpy(grows + 60, "\r\n", 3);
	const char *contents[100] = {[3] = big,
				     [4] = "Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n",
				     [5] = grows};

	start_with_route(port, "concurrency-per-destination 1\n");
	/* The jobs in one write, so that each waits while the one before it goes. */
	struct buf frames;
	buf_init(&frames);
	job_frame(&frames, 3, "QID3", "s@relayd.test", "example.org", strlen(big), 0, r1);
	job_frame(&frames, 4, "QID4", "s@relayd.test", "example.org", 21,
		  BODY_8BITMIME | BODY_SMTPUTF8, r2);
	job_frame(&frames, 5, "QID5", "s@relayd.test", "example.org", strlen(grows), BODY_8BITMIME,
		  r1);
	send_frames(&frames);
	serve_queue(3, contents, 7);
	ck_assert_uint_eq(result_for(300)->cls, DLV_BOUNCED);
	ck_assert_str_eq(result_for(300)->enh, "5.3.4");
	ck_assert_ptr_nonnull(strstr(result_for(300)->text, "message size 252 exceeds size limit 200"));
	ck_assert_uint_eq(result_for(400)->cls, DLV_SENT);
	ck_assert_uint_eq(result_for(402)->cls, DLV_SENT);
	ck_assert_uint_eq(result_for(401)->cls, DLV_BOUNCED);
	ck_assert_str_eq(result_for(401)->enh, "5.6.7");
	ck_assert_ptr_nonnull(strstr(result_for(401)->text, "does not support SMTPUTF8, needed by "
							    "the UTF-8 recipient address"));
	ck_assert_uint_eq(result_for(500)->cls, DLV_BOUNCED);
	ck_assert_str_eq(result_for(500)->enh, "5.3.4");
	ck_assert_ptr_nonnull(strstr(result_for(500)->text, "exceeds size limit 200"));
	char *t = slurp(slog);
	/* One MAIL, the converted size, no BODY= nor SMTPUTF8. */
	ck_assert_int_eq(count(t, "MAIL"), 1);
	ck_assert_ptr_nonnull(strstr(t, "MAIL FROM:<s@relayd.test> SIZE=147\r\n"));
	ck_assert_ptr_nonnull(strstr(t, "RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"));
	ck_assert_ptr_null(strstr(t, "j\xc3\xb6rg"));
	ck_assert_ptr_nonnull(strstr(t, "<DATA>\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
					"Content-Transfer-Encoding: quoted-printable\r\n"
					"MIME-Version: 1.0\r\n"
					"Content-Type: text/plain; charset=utf-8\r\n\r\n"
					"=C3=A9\r\n.\r\n</DATA>"));
	/* All three jobs went over the one connection. */
	ck_assert_int_eq(count(t, "CONNECT"), 1);
	free(t);
}
END_TEST

/*
 * IDN: a route written in U-labels takes mail for the domain; without
 * SMTPUTF8 the addresses go out in A-labels, with it as they came.
 */
START_TEST(test_idn_addresses)
{
	struct script sc = {.conns = 2};
	struct script sc8 = {.ehlo = "250-fake\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"};
	char slog[300], slog8[300], conf[512];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	uint16_t port8 = smtp_server(&sc8, slog8, sizeof(slog8));
	static const char *const rcpts[] = {"user@b\xc3\xbc\x63her.test", NULL};
	static const char *const rcpts8[] = {"user@b\xc3\xbc\x63her.example", NULL};
	const char *contents[100] = {[41] = "x\r\n", [42] = "x\r\n"};

	snprintf(conf, sizeof(conf),
		 "route b\xc3\xbc\x63her.test [127.0.0.1]:%u tls=none\n"
		 "route xn--bcher-kva.example [127.0.0.1]:%u tls=none\n", port, port8);
	start_delivery(conf);
	expect_hello();
	send_job(41, "QID41", "s@m\xc3\xbcller.test", "b\xc3\xbc\x63her.test", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(4100)->cls, DLV_SENT);
	send_job(42, "QID42", "s@m\xc3\xbcller.test", "b\xc3\xbc\x63her.example", 3,
		 BODY_SMTPUTF8, rcpts8);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(4200)->cls, DLV_SENT);

	char *t = slurp(slog);
	ck_assert_msg(strstr(t, "MAIL FROM:<s@xn--mller-kva.test> SIZE=3\r\n") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "RCPT TO:<user@xn--bcher-kva.test>\r\n") != NULL, "%s", t);
	free(t);
	t = slurp(slog8);
	ck_assert_msg(strstr(t, "MAIL FROM:<s@m\xc3\xbcller.test> SMTPUTF8\r\n") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "RCPT TO:<user@b\xc3\xbc\x63her.example>\r\n") != NULL, "%s", t);
	free(t);
}
END_TEST

START_TEST(test_helo_fallback)
{
	struct script sc = {.ehlo = "502 5.5.1 EHLO not implemented\r\n"};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {[5] = "hello\r\n"};

	start_with_route(port, NULL);
	send_job(5, "QID5", "s@relayd.test", "example.org", 7, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(500)->cls, DLV_SENT);
	char *t = slurp(slog);
	ck_assert_ptr_nonnull(strstr(t, "HELO relayd.test\r\n"));
	ck_assert_ptr_nonnull(strstr(t, "MAIL FROM:<s@relayd.test>\r\n"));
	free(t);
}
END_TEST

START_TEST(test_connection_reuse)
{
	struct script sc = {0};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {0};

	start_with_route(port, "concurrency-per-destination 1\n");
	for (int i = 1; i <= 5; i++) {
		char qid[16];
		contents[i] = "body\r\n";
		snprintf(qid, sizeof(qid), "QR%d", i);
		send_job((uint64_t)i, qid, "s@relayd.test", "example.org", 6, 0, rcpts);
	}
	serve_queue(5, contents, 100);
	ck_assert_int_eq(nresults, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(results[i].cls, DLV_SENT);
	char *t = slurp(slog);
	ck_assert_int_eq(count(t, "CONNECT"), 1);
	ck_assert_int_eq(count(t, "MAIL FROM"), 5);
	free(t);
	char *l = slurp(dlv_log);
	ck_assert_msg(strstr(l, "conn_use=5") != NULL, "%s", l);
	free(l);
}
END_TEST

START_TEST(test_refused_then_hold)
{
	uint16_t port = dead_port();
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {0};

	start_with_route(port, NULL);
	send_job(6, "QID6", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(600)->cls, DLV_DEFERRED);
	ck_assert_str_eq(result_for(600)->enh, "4.4.1");
	ck_assert_ptr_nonnull(strstr(result_for(600)->text, "Connection refused"));
	/* The next job for the same next hop is suspended without a connection:
	 * no result (no attempt), one SUSPENDED until the memory ends (60 s at
	 * the default retry-min of 5 minutes). */
	int64_t before = ev_wallclock();
	send_job(7, "QID7", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nresults, 1);
	ck_assert_int_eq(nsuspended, 1);
	ck_assert_uint_eq(suspended[0].jobid, 7);
	ck_assert_int_ge(suspended[0].until, before + 58);
	ck_assert_int_le(suspended[0].until, before + 61);
	ck_assert_str_eq(suspended[0].enh, "4.4.1");
	ck_assert_msg(strncmp(suspended[0].text, "delivery temporarily suspended: connect to ",
			      43) == 0, "%s", suspended[0].text);
	ck_assert_ptr_nonnull(strstr(suspended[0].text, "Connection refused"));
	char *l = slurp(dlv_log);
	ck_assert_ptr_nonnull(strstr(l, "QID7: to=<a@example.org>, relay=none, delay="));
	ck_assert_ptr_nonnull(strstr(l, "status=deferred (delivery temporarily suspended: connect to "
				       "127.0.0.1[127.0.0.1]"));
	ck_assert_int_eq(count(l, "QID6: connect to 127.0.0.1[127.0.0.1]"), 1);
	ck_assert_int_eq(count(l, "QID7: connect to"), 0);
	free(l);
}
END_TEST

/*
 * Rate memory is bounded: with DLV_RATE_MAX_DESTS destinations remembered
 * (rate=1/h on each route: none may be forgotten within the hour), a job
 * for one more waits in the queue, without an attempt, rather than leave
 * unlimited; a job for one already remembered is not turned away by the
 * bound.
 */
START_TEST(test_rate_memory_bounded)
{
	enum { N = DLV_RATE_MAX_DESTS, BATCH = 256 };
	uint16_t port = dead_port();
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {0};
	char domain[32];
	struct buf conf, frames;

	buf_init(&conf);
	for (int i = 0; i <= N; i++)
		buf_appendf(&conf, "route d%d.test [127.0.0.1]:%u tls=none rate=1/h\n", i, port);
	buf_append(&conf, "", 1);
	start_delivery((const char *)buf_head(&conf));
	buf_free(&conf);
	expect_hello();
	for (int i = 0; i < N; i += BATCH) {
		buf_init(&frames);
		for (int j = i; j < i + BATCH; j++) {
			snprintf(domain, sizeof(domain), "d%d.test", j);
			job_frame(&frames, (uint64_t)j + 1, "QIDN", "s@relayd.test", domain, 6, 0, rcpts);
		}
		send_frames(&frames);
		serve_queue(BATCH, contents, 100);
	}
	/* One attempt each (nothing listens): every destination's rate now runs for an hour. */
	ck_assert_int_eq(nresults, N);
	ck_assert_int_eq(nsuspended, 0);
	int64_t before = ev_wallclock();
	snprintf(domain, sizeof(domain), "d%d.test", N);
	send_job(N + 1, "QIDCAP", "s@relayd.test", domain, 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nresults, N);
	ck_assert_int_eq(nsuspended, 1);
	ck_assert_str_eq(suspended[0].enh, "4.4.5");
	char want[200];
	snprintf(want, sizeof(want), "delivery rate-limited: rate=1/h for route d%d.test (%d "
		 "destinations are rate-limited already); next try in ", N, N);
	ck_assert_msg(strncmp(suspended[0].text, want, strlen(want)) == 0, "%s",
		      suspended[0].text);
	/* Until the first of them may be forgotten: an hour after its message. */
	ck_assert_int_ge(suspended[0].until, before + 3600 - 60);
	ck_assert_int_le(suspended[0].until, before + 3600 + 1);
	send_job(N + 2, "QIDOLD", "s@relayd.test", "d0.test", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nsuspended, 2);
	ck_assert_ptr_null(strstr(suspended[1].text, "destinations are rate-limited already"));
}
END_TEST

/* Sends MSG_D_FLUSH for domain ("" : every next hop). */
static void send_flush(const char *domain)
{
	struct ipc_wr w;
	ipc_wr_init(&w);
	ipc_put_str(&w, domain);
	ck_assert_int_eq(ipc_write_frame_blocking(qfd, MSG_D_FLUSH, buf_head(&w.b),
						  buf_avail(&w.b)), 0);
	ipc_wr_free(&w);
}

START_TEST(test_hold_at_most_retry_min_and_flush)
{
	uint16_t port = dead_port();
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {0};

	start_with_route(port, "retry-min 2s\nroute other.org [127.0.0.1]:1 tls=none\n");
	send_job(1, "QA1", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(100)->cls, DLV_DEFERRED);
	/* retry-min 2s: remembered for 2 s, not 60. */
	int64_t before = ev_wallclock();
	send_job(2, "QA2", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nsuspended, 1);
	ck_assert_int_le(suspended[0].until, before + 3);
	/* A flush of another domain leaves it; a flush of its domain forgets it. */
	send_flush("other.org");
	send_job(3, "QA3", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nsuspended, 2);
	send_flush("example.org");
	send_job(4, "QA4", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nsuspended, 2);
	ck_assert_uint_eq(result_for(400)->cls, DLV_DEFERRED);
	/* Failed again, then "" forgets every next hop. */
	send_flush("");
	send_job(5, "QA5", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nsuspended, 2);
	ck_assert_uint_eq(result_for(500)->cls, DLV_DEFERRED);
	char *l = slurp(dlv_log);
	ck_assert_int_eq(count(l, "QA4: connect to 127.0.0.1"), 1);
	ck_assert_int_eq(count(l, "QA5: connect to 127.0.0.1"), 1);
	ck_assert_int_eq(count(l, "QA3: connect to"), 0);
	ck_assert_int_eq(count(l, "failure forgotten"), 2);
	free(l);
}
END_TEST

START_TEST(test_greeting_421_defers)
{
	struct script sc = {.greeting = "421 4.3.2 Busy, try later"};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {0};

	start_with_route(port, NULL);
	send_job(8, "QID8", "s@relayd.test", "example.org", 6, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(800)->cls, DLV_DEFERRED);
	ck_assert_ptr_nonnull(strstr(result_for(800)->text, "421 4.3.2 Busy"));
	ck_assert_str_eq(result_for(800)->enh, "4.3.2");
}
END_TEST

START_TEST(test_421_on_rcpt_defers_all)
{
	struct script sc = {0};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"ok@example.org", "bye@example.org",
					    "later@example.org", NULL};
	const char *contents[100] = {[9] = "x\r\n"};

	start_with_route(port, NULL);
	send_job(9, "QID9", "s@relayd.test", "example.org", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_int_eq(nresults, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(results[i].cls == DLV_DEFERRED, "%s", results[i].text);
}
END_TEST

/* smarthost 1 refuses connections; smarthost 2 takes the mail. */
START_TEST(test_smarthost_order)
{
	struct script sc = {0};
	char slog[300], conf[300];
	uint16_t good = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.net", NULL};
	const char *contents[100] = {[10] = "x\r\n"};

	snprintf(conf, sizeof(conf), "smarthost [127.0.0.1]:%u tls=none\n"
		 "smarthost [127.0.0.1]:%u tls=none\n", dead_port(), good);
	start_delivery(conf);
	expect_hello();
	send_job(10, "QID10", "s@relayd.test", "example.net", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(1000)->cls, DLV_SENT);
	char *l = slurp(dlv_log);
	ck_assert_ptr_nonnull(strstr(l, "trying the next hop: smarthost 2 of 2"));
	free(l);
}
END_TEST

/* AUTH credentials never go over a connection without TLS. */
START_TEST(test_auth_needs_tls)
{
	struct script sc = {.ehlo = "250-fake\r\n250 AUTH PLAIN LOGIN\r\n"};
	char slog[300], conf[600], authf[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.net", NULL};
	const char *contents[100] = {0};

	snprintf(authf, sizeof(authf), "%s/auth", tmpdir);
	FILE *f = fopen(authf, "w");
	fprintf(f, "alice secret\n");
	fclose(f);
	chmod(authf, 0600);
	snprintf(conf, sizeof(conf), "smarthost [127.0.0.1]:%u tls=may auth=%s\n", port, authf);
	start_delivery(conf);
	expect_hello();
	send_job(11, "QID11", "s@relayd.test", "example.net", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(1100)->cls, DLV_DEFERRED);
	ck_assert_str_eq(result_for(1100)->enh, "4.7.0");
	char *t = slurp(slog);
	ck_assert_ptr_null(strstr(t, "AUTH"));
	ck_assert_ptr_null(strstr(t, "MAIL"));
	free(t);
}
END_TEST

/* tls=starttls: a server without STARTTLS does not get the mail. */
START_TEST(test_starttls_required_not_offered)
{
	struct script sc = {0};
	char slog[300], conf[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.org", NULL};
	const char *contents[100] = {0};

	snprintf(conf, sizeof(conf), "route example.org [127.0.0.1]:%u tls=starttls\n", port);
	start_delivery(conf);
	expect_hello();
	send_job(12, "QID12", "s@relayd.test", "example.org", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(1200)->cls, DLV_DEFERRED);
	ck_assert_str_eq(result_for(1200)->enh, "4.7.4");
	ck_assert_ptr_nonnull(strstr(result_for(1200)->text, "TLS is required, but was not "
							       "offered by host 127.0.0.1[127.0.0.1]"));
	char *t = slurp(slog);
	ck_assert_ptr_null(strstr(t, "MAIL"));
	free(t);
}
END_TEST

/* Content in many small pieces, pulled one by one, arrives whole. */
START_TEST(test_content_in_pieces)
{
	struct script sc = {.ehlo = "250-fake\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n"};
	char slog[300];
	uint16_t port = smtp_server(&sc, slog, sizeof(slog));
	static const char *const rcpts[] = {"a@example.org", NULL};
	static char big[200000];
	const char *contents[100] = {[13] = big};
	size_t off = 0;

	for (int i = 0; off + 100 < sizeof(big); i++)
		off += (size_t)snprintf(big + off, sizeof(big) - off, "%sline %d\r\n",
					i % 7 == 0 ? "." : "", i);
	start_with_route(port, NULL);
	send_job(13, "QID13", "s@relayd.test", "example.org", strlen(big), 0, rcpts);
	serve_queue(1, contents, 4096);
	ck_assert_uint_eq(result_for(1300)->cls, DLV_SENT);
	char *t = slurp(slog);
	ck_assert_ptr_nonnull(strstr(t, "<DATA>\n..line 0\r\nline 1\r\n"));
	ck_assert_ptr_nonnull(strstr(t, "\r\n..line 7\r\n"));
	/* Every line arrived, then the end of data. */
	ck_assert_ptr_nonnull(strstr(t, "\r\n.\r\n</DATA>"));
	ck_assert_int_eq(count(t, "line "), count(big, "line "));
	free(t);
}
END_TEST

/* A server that never greets: the greeting timeout, then the next host. */
START_TEST(test_greeting_timeout_then_next_hop)
{
	struct script mute = {.silent = 1}, good = {0};
	char slog1[300], slog2[300], conf[300];
	uint16_t p1 = smtp_server(&mute, slog1, sizeof(slog1));
	uint16_t p2 = smtp_server(&good, slog2, sizeof(slog2));
	static const char *const rcpts[] = {"a@example.net", NULL};
	const char *contents[100] = {[14] = "x\r\n"};

	snprintf(conf, sizeof(conf), "smarthost [127.0.0.1]:%u tls=none\n"
		 "smarthost [127.0.0.1]:%u tls=none\n", p1, p2);
	start_delivery(conf);
	expect_hello();
	send_job(14, "QID14", "s@relayd.test", "example.net", 3, 0, rcpts);
	serve_queue(1, contents, 100);
	ck_assert_uint_eq(result_for(1400)->cls, DLV_SENT);
	char *l = slurp(dlv_log);
	ck_assert_msg(strstr(l, "conversation timed out with 127.0.0.1[127.0.0.1] while receiving "
			     "the initial server greeting") != NULL, "%s", l);
	free(l);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_session");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pipelined_mixed_outcomes);
	tcase_add_test(tc, test_no_pipelining_mail_rejected);
	tcase_add_test(tc, test_size_checked_and_8bit_converted_before_mail);
	tcase_add_test(tc, test_helo_fallback);
	tcase_add_test(tc, test_idn_addresses);
	tcase_add_test(tc, test_connection_reuse);
	tcase_add_test(tc, test_refused_then_hold);
	tcase_add_test(tc, test_hold_at_most_retry_min_and_flush);
	tcase_add_test(tc, test_greeting_421_defers);
	tcase_add_test(tc, test_421_on_rcpt_defers_all);
	tcase_add_test(tc, test_smarthost_order);
	tcase_add_test(tc, test_auth_needs_tls);
	tcase_add_test(tc, test_starttls_required_not_offered);
	tcase_add_test(tc, test_content_in_pieces);
	tcase_add_test(tc, test_greeting_timeout_then_next_hop);
	tcase_add_test(tc, test_rate_memory_bounded);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
