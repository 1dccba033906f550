/*
 * intake_queue.c - intake's channel to the queue worker (a queue_client):
 * route the queue's verdicts to the sessions waiting for them, fail open
 * transactions when the queue goes away, and the flow control that pauses
 * clients while the channel is full and resumes them from its drain.
 */
#include "intake.h"
#include "smtp_session.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"

#include <string.h>

/* Safety net for a queue worker that took the message and hangs: a commit
 * normally takes one fsync. */
#define INTAKE_VERDICT_MS 120000

int intake_queue_up(const struct intake *in)
{
	return queue_client_up(&in->queue);
}

int intake_queue_busy(const struct intake *in)
{
	return intake_queue_up(in) && ipc_full(in->queue.ch);
}

/* The session whose transaction sid waits for the queue's verdict. */
static struct smtp_session *intake_session_by_sid(struct intake *in, uint64_t sid)
{
	struct smtp_session *s = idmap_get(&in->by_sid, sid);
	if (s != NULL && s->tx != NULL && s->tx->sid == sid && s->input == SI_WAIT)
		return s;
	return NULL;
}

static int intake_msg_committed(void *arg, struct ipc_rd *rd)
{
	struct intake *in = arg;
	struct ipc_msg_q_committed m;
	char qid[32];

	if (ipc_msg_q_committed_decode(rd, &m) < 0 || ipc_str_copy(qid, sizeof(qid), m.qid) < 0)
		return -1;
	struct smtp_session *s = intake_session_by_sid(in, m.sid);
	if (s != NULL)
		smtp_session_committed(s, qid);
	else
		log_msg(LOG_INFO, qid, "committed after its client left");
	return 0;
}

static int intake_msg_failed(void *arg, struct ipc_rd *rd)
{
	struct intake *in = arg;
	struct ipc_msg_q_failed m;
	char enhanced[16], text[256];

	if (ipc_msg_q_failed_decode(rd, &m) < 0 ||
	    ipc_str_copy(enhanced, sizeof(enhanced), m.enh) < 0 ||
	    ipc_str_copy(text, sizeof(text), m.text) < 0)
		return -1;
	struct smtp_session *s = intake_session_by_sid(in, m.sid);
	if (s != NULL)
		smtp_session_failed(s, (int)m.code, enhanced, text);
	return 0;
}

/* What the queue sends intake, once it said HELLO_OK. */
static const struct ipc_handler intake_queue_handlers[] = {
	{MSG_Q_COMMITTED, 0, intake_msg_committed},
	{MSG_Q_FAILED, 0, intake_msg_failed},
};

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

static void intake_on_queue_drain(void *arg)
{
	intake_flow_resume(arg);
}

void intake_flow_wait(struct intake *in)
{
	in->flow_waiting = 1;
}

static int intake_on_queue_lost(void *arg)
{
	struct intake *in = arg;

	log_warnx("lost the queue worker; open transactions fail with 451 4.3.0");
	/* Sessions may close while we go through them: take next first. */
	for (struct smtp_session *s = in->sessions, *next; s != NULL; s = next) {
		next = s->next;
		smtp_session_queue_lost(s);
	}
	/* Paused sessions read on to the end of their data and get their 451. */
	intake_flow_resume(in);
	return !in->stopping;
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
	struct queue_client *qc = &in->queue;

	qc->w = in->w;
	qc->role = ROLE_INTAKE;
	qc->table = intake_queue_handlers;
	qc->ntable = sizeof(intake_queue_handlers) / sizeof(intake_queue_handlers[0]);
	qc->arg = in;
	qc->on_lost = intake_on_queue_lost;
	qc->on_drain = intake_on_queue_drain;
	qc->late_note = "mail gets 451 4.3.0 until one does";
	/* At start, the queue worker comes up alongside us: wait a little for it. */
	queue_client_start(qc, QUEUE_CLIENT_HELLO_MS);
}
