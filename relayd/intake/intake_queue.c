/*
 * intake_queue.c - intake's channel to the queue worker: connect, say
 * hello and wait for the queue's HELLO_OK before taking mail, route the
 * queue's verdicts to the sessions waiting for them, reconnect after a
 * loss, and the flow control that pauses clients while the channel is
 * full and resumes them from its drain.
 */
#include "intake.h"
#include "smtp_session.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/worker.h"

#include <poll.h>
#include <string.h>
#include <unistd.h>

#define INTAKE_QUEUE_RETRY_MS 1000
/*
 * The queue socket is made by the master, so a connect succeeds even when
 * no queue worker runs: the connection waits in the listener's backlog
 * until one accepts it. Without HELLO_OK by this time we say so in the
 * log and keep waiting; reconnecting would only leave a dead connection
 * in that backlog each time, and a full backlog blocks connect().
 */
#define INTAKE_HELLO_MS 2000
/* Safety net for a queue worker that took the message and hangs: a commit
 * normally takes one fsync. */
#define INTAKE_VERDICT_MS 120000

int intake_queue_up(const struct intake *in)
{
	return in->queue != NULL && ipc_is_open(in->queue) && in->queue_ready;
}

int intake_queue_busy(const struct intake *in)
{
	return intake_queue_up(in) && ipc_full(in->queue);
}

static struct smtp_session *intake_session_by_sid(struct intake *in, uint64_t sid)
{
	for (struct smtp_session *s = in->sessions; s != NULL; s = s->next)
		if (s->tx != NULL && s->tx->sid == sid && s->input == SI_WAIT)
			return s;
	return NULL;
}

static void intake_on_hello_ok(struct intake *in, struct ipc_rd *rd)
{
	uint32_t role = ipc_get_u32(rd);
	uint32_t pid = ipc_get_u32(rd);

	if (ipc_rd_done(rd) < 0 || role != ROLE_INTAKE || in->queue_ready) {
		ipc_fail(in->queue, "bad MSG_Q_HELLO_OK");
		return;
	}
	in->queue_ready = 1;
	ev_timer_stop(in->loop, &in->queue_hello);
	log_info("connected to the queue worker (pid %u)", pid);
}

static void intake_on_queue_frame(struct ipc_chan *ch, uint32_t type, const uint8_t *p,
				  size_t len, void *arg)
{
	struct intake *in = arg;
	struct ipc_rd rd;
	char qid[32], enhanced[16], text[256];

	ipc_rd_init(&rd, p, len);
	if (type == MSG_Q_HELLO_OK) {
		intake_on_hello_ok(in, &rd);
		return;
	}
	if (!in->queue_ready) {
		ipc_fail(ch, "message from the queue before HELLO_OK");
		return;
	}
	uint64_t sid = ipc_get_u64(&rd);
	switch (type) {
	case MSG_Q_COMMITTED: {
		ipc_get_str(&rd, qid, sizeof(qid));
		if (ipc_rd_done(&rd) < 0)
			break;
		struct smtp_session *s = intake_session_by_sid(in, sid);
		if (s != NULL)
			smtp_session_committed(s, qid);
		else
			log_msg(LOG_INFO, qid, "committed after its client left");
		return;
	}
	case MSG_Q_FAILED: {
		uint32_t code = ipc_get_u32(&rd);
		ipc_get_str(&rd, enhanced, sizeof(enhanced));
		ipc_get_str(&rd, text, sizeof(text));
		if (ipc_rd_done(&rd) < 0)
			break;
		struct smtp_session *s = intake_session_by_sid(in, sid);
		if (s != NULL)
			smtp_session_failed(s, (int)code, enhanced, text);
		return;
	}
	default:
		ipc_fail(ch, "unexpected message from the queue");
		return;
	}
	ipc_fail(ch, "malformed message from the queue");
}

/* Every session paused for the channel goes on (it may pause again). */
static void intake_flow_resume(struct intake *in)
{
	if (!in->flow_waiting)
		return;
	in->flow_waiting = 0;
	for (struct smtp_session *s = in->sessions, *next; s != NULL; s = next) {
		next = s->next;
		if (s->flow_paused)
			smtp_session_resume(s);
	}
}

static void intake_on_queue_drain(struct ipc_chan *ch, void *arg)
{
	(void)ch;
	intake_flow_resume(arg);
}

void intake_flow_wait(struct intake *in)
{
	in->flow_waiting = 1;
}

static int intake_queue_connect(struct intake *in);

static void intake_queue_retry(void *arg)
{
	intake_queue_connect(arg);
}

static void intake_on_queue_close(struct ipc_chan *ch, void *arg)
{
	struct intake *in = arg;
	(void)ch;

	in->queue_ready = 0;
	ev_timer_stop(in->loop, &in->queue_hello);
	log_warnx("lost the queue worker; open transactions fail with 451 4.3.0");
	/* Sessions may close while we go through them: take next first. */
	for (struct smtp_session *s = in->sessions, *next; s != NULL; s = next) {
		next = s->next;
		smtp_session_queue_lost(s);
	}
	/* Paused sessions read on to the end of their data and get their 451. */
	intake_flow_resume(in);
	if (!in->stopping)
		ev_timer_start(in->loop, &in->queue_retry, INTAKE_QUEUE_RETRY_MS);
}

/*
 * Connects and says HELLO; the queue's HELLO_OK makes the channel usable.
 * HELLO is written before the socket joins the loop (a dozen bytes into a
 * new socket do not block), so a caller may wait for the answer at once.
 * Returns the channel's fd, or -1 (and a retry is armed).
 */
static int intake_queue_connect(struct intake *in)
{
	struct ipc_wr wr;

	if (in->queue != NULL) {
		ipc_chan_free(in->queue);
		in->queue = NULL;
	}
	in->queue_ready = 0;
	int fd = worker_connect_queue(in->w->cfg);
	if (fd < 0) {
		log_debug("queue not reachable yet; retrying");
		goto fail;
	}
	ipc_wr_init(&wr);
	ipc_put_u32(&wr, ROLE_INTAKE);
	int rc = ipc_write_frame_blocking(fd, MSG_Q_HELLO, buf_head(&wr.b), buf_avail(&wr.b));
	ipc_wr_free(&wr);
	if (rc < 0) {
		log_warnx("queue.sock: cannot send HELLO; retrying");
		close(fd);
		goto fail;
	}
	in->queue = ipc_chan_new(in->loop, fd, "queue", intake_on_queue_frame,
				 intake_on_queue_close, in);
	if (in->queue == NULL)
		goto fail; /* the fd is closed */
	ipc_set_drain(in->queue, intake_on_queue_drain);
	ev_timer_start(in->loop, &in->queue_hello, INTAKE_HELLO_MS);
	log_debug("connected to queue.sock; waiting for the queue worker's HELLO_OK");
	return fd;
fail:
	ev_timer_start(in->loop, &in->queue_retry, INTAKE_QUEUE_RETRY_MS);
	return -1;
}

static void intake_queue_hello_late(void *arg)
{
	(void)arg;
	log_warnx("no queue worker answers on queue.sock after %d s; mail gets 451 4.3.0 "
		  "until one does", INTAKE_HELLO_MS / 1000);
}

uint64_t intake_verdict_timeout_ms(const struct intake *in)
{
	(void)in;
	return INTAKE_VERDICT_MS;
}

void intake_queue_late(struct intake *in, struct smtp_session *s)
{
	(void)in;
	log_warnx("no verdict from the queue worker within %d s for [%s]; 451 4.3.0",
		  INTAKE_VERDICT_MS / 1000, s->ip);
	smtp_session_queue_lost(s);
}

void intake_queue_init(struct intake *in)
{
	ev_timer_init(&in->queue_retry, intake_queue_retry, in);
	ev_timer_init(&in->queue_hello, intake_queue_hello_late, in);
	int fd = intake_queue_connect(in);
	/*
	 * At start, the queue worker comes up alongside us. Before serving
	 * anyone, wait (at most INTAKE_HELLO_MS) until its answer is there to
	 * read, so that clients connecting meanwhile wait in the listen
	 * backlog rather than get 451 for a race; the loop reads it first.
	 */
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	if (fd >= 0 && poll(&pfd, 1, INTAKE_HELLO_MS) == 0)
		log_debug("no answer from the queue worker at start; serving without it");
}
