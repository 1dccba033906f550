/*
 * intake_queue.c - intake's channel to the queue worker: connect and
 * say hello, route the queue's verdicts to the sessions waiting for them,
 * reconnect after a loss, and the flow control that pauses clients while
 * the channel is backed up.
 */
#include "intake.h"
#include "smtp_session.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/worker.h"

#include <string.h>

#define INTAKE_QUEUE_RETRY_MS 1000
#define INTAKE_FLOW_POLL_MS 5
/*
 * The queue socket is made by the master, so a connect succeeds even when
 * no queue worker accepts it. A channel that never answered gets a short
 * time for its first verdict; once the queue has answered, a long one
 * (a commit waits for fsync).
 */
#define INTAKE_VERDICT_FIRST_MS 5000
#define INTAKE_VERDICT_MS 120000

int intake_queue_up(const struct intake *in)
{
	return in->queue != NULL && ipc_is_open(in->queue);
}

int intake_queue_busy(const struct intake *in)
{
	return intake_queue_up(in) && ipc_pending(in->queue) > INTAKE_QUEUE_HIGH;
}

static struct smtp_session *intake_session_by_sid(struct intake *in, uint64_t sid)
{
	for (struct smtp_session *s = in->sessions; s != NULL; s = s->next)
		if (s->tx != NULL && s->tx->sid == sid && s->input == SI_WAIT)
			return s;
	return NULL;
}

static void intake_on_queue_frame(struct ipc_chan *ch, uint32_t type, const uint8_t *p,
				  size_t len, void *arg)
{
	struct intake *in = arg;
	struct ipc_rd rd;
	char qid[32], enhanced[16], text[256];

	in->queue_alive = 1;
	ipc_rd_init(&rd, p, len);
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

static void intake_queue_retry(void *arg)
{
	intake_queue_connect(arg);
}

static void intake_on_queue_close(struct ipc_chan *ch, void *arg)
{
	struct intake *in = arg;
	(void)ch;

	log_warnx("lost the queue worker; open transactions fail with 451 4.3.0");
	/* Sessions may close while we go through them: take next first. */
	for (struct smtp_session *s = in->sessions, *next; s != NULL; s = next) {
		next = s->next;
		smtp_session_queue_lost(s);
	}
	if (!in->stopping)
		ev_timer_start(in->loop, &in->queue_retry, INTAKE_QUEUE_RETRY_MS);
}

void intake_queue_connect(struct intake *in)
{
	struct ipc_wr wr;

	if (in->queue != NULL) {
		ipc_chan_free(in->queue);
		in->queue = NULL;
	}
	int fd = worker_connect_queue(in->w->cfg);
	if (fd < 0) {
		log_debug("queue not reachable yet; retrying");
		ev_timer_start(in->loop, &in->queue_retry, INTAKE_QUEUE_RETRY_MS);
		return;
	}
	in->queue_alive = 0;
	in->queue = ipc_chan_new(in->loop, fd, "queue", intake_on_queue_frame,
				 intake_on_queue_close, in);
	if (in->queue == NULL) {
		ev_timer_start(in->loop, &in->queue_retry, INTAKE_QUEUE_RETRY_MS);
		return;
	}
	ipc_wr_init(&wr);
	ipc_put_u32(&wr, ROLE_INTAKE);
	ipc_send_wr(in->queue, MSG_Q_HELLO, &wr);
	ipc_wr_free(&wr);
	log_debug("connected to the queue");
}

uint64_t intake_verdict_timeout_ms(const struct intake *in)
{
	return in->queue_alive ? INTAKE_VERDICT_MS : INTAKE_VERDICT_FIRST_MS;
}

void intake_queue_late(struct intake *in, struct smtp_session *s)
{
	if (!in->queue_alive && intake_queue_up(in)) {
		/* Fails every open transaction, s among them, and reconnects. */
		ipc_fail(in->queue, "no answer from the queue worker");
		return;
	}
	log_warnx("no verdict from the queue in time for [%s]", s->ip);
	smtp_session_queue_lost(s);
}

static void intake_flow_poll(void *arg)
{
	struct intake *in = arg;

	if (intake_queue_up(in) && ipc_pending(in->queue) > INTAKE_QUEUE_LOW) {
		ev_timer_start(in->loop, &in->flow_timer, INTAKE_FLOW_POLL_MS);
		return;
	}
	for (struct smtp_session *s = in->sessions, *next; s != NULL; s = next) {
		next = s->next;
		if (s->flow_paused)
			smtp_session_resume(s);
	}
}

void intake_flow_wait(struct intake *in)
{
	if (!ev_timer_pending(&in->flow_timer))
		ev_timer_start(in->loop, &in->flow_timer, INTAKE_FLOW_POLL_MS);
}

void intake_queue_init(struct intake *in)
{
	ev_timer_init(&in->queue_retry, intake_queue_retry, in);
	ev_timer_init(&in->flow_timer, intake_flow_poll, in);
	intake_queue_connect(in);
}
