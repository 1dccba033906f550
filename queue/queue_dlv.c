/*
 * queue_dlv.c - the delivery side of the queue: jobs handed out against
 * the credit delivery gave with READY, content served a chunk per request
 * (delivery pulls, so neither side holds a whole message), and results
 * applied to the recipients. In-flight recipients of a delivery worker
 * that goes away return to the queue.
 */
#include "queue/queue.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every recipient of a job fits in its MSG_D_JOB. */
_Static_assert(QUEUE_JOB_MAX_RCPTS <= IPC_JOB_MAX_RCPTS, "a job's recipients fit MSG_D_JOB");

static struct queue_job *queue_job_find(struct queue *q, uint64_t jobid)
{
	return idmap_get(&q->jobs, jobid);
}

static void queue_job_free(struct queue *q, struct queue_job *j)
{
	idmap_del(&q->jobs, j->jobid);
	free(j->trace);
	free(j);
}

static void queue_job_send(struct queue *q, const struct queue_pick *pk)
{
	struct queue_job *j = xcalloc(1, sizeof(*j));
	struct ipc_msg_d_job m;
	struct ipc_wr wr;

	j->jobid = ++q->next_jobid;
	memcpy(j->qid, pk->msg.qid, sizeof(j->qid));
	snprintf(j->domain, sizeof(j->domain), "%s", pk->domain);
	j->nchunks = pk->msg.nchunks;
	j->n = pk->n;
	for (size_t i = 0; i < pk->n; i++)
		j->rcptid[i] = pk->rcpts[i].id;
	if (idmap_put(&q->jobs, j->jobid, j) < 0)
		fatal("queue: job id %llu used twice", (unsigned long long)j->jobid);

	m.jobid = j->jobid;
	m.qid = ipc_str(pk->msg.qid);
	m.sender = ipc_str(pk->msg.sender);
	m.domain = ipc_str(pk->domain);
	m.size = pk->msg.size;
	m.body_flags = pk->msg.body_flags;
	m.arrival = pk->msg.arrival;
	m.arrival_usec = pk->msg.arrival_usec;
	m.dsn_ret = pk->msg.dsn_ret;
	m.envid = ipc_str(pk->msg.envid);
	m.nrcpt = (uint32_t)pk->n;
	for (size_t i = 0; i < pk->n; i++) {
		m.rcpts[i].rcptid = (uint64_t)pk->rcpts[i].id;
		m.rcpts[i].address = ipc_str(pk->rcpts[i].address);
		m.rcpts[i].notify = pk->rcpts[i].notify;
		m.rcpts[i].orcpt = ipc_str(pk->rcpts[i].orcpt);
	}
	ipc_wr_init(&wr);
	ipc_msg_d_job_encode(&wr, &m);
	ipc_send_wr(q->dlv->ch, MSG_D_JOB, &wr);
	ipc_wr_free(&wr);
	log_debug("job %llu: %s for %s, %zu recipient(s)", (unsigned long long)j->jobid,
		  pk->msg.qid, pk->domain, pk->n);
}

void queue_dlv_schedule(struct queue *q)
{
	struct queue_pick *pk;
	if (q->dlv == NULL || q->credits == 0)
		return;
	pk = xmalloc(sizeof(*pk));
	while (q->dlv != NULL && q->credits > 0) {
		int rc;
		if (queue_txn(q) < 0 || (rc = queue_sched_pick(q->st, q->now(), pk)) < 0) {
			queue_txn_abort(q);
			break;
		}
		if (rc == 0)
			break;
		q->credits--;
		queue_job_send(q, pk);
	}
	free(pk);
}

int queue_dlv_ready(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct ipc_msg_d_ready m;
	if (ipc_msg_d_ready_decode(rd, &m) < 0)
		return -1;
	p->q->credits += m.n;
	queue_kick(p->q);
	return 0;
}

static void queue_dlv_job_fail(struct ipc_chan *ch, uint64_t jobid)
{
	struct ipc_msg_id m = {jobid};
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_msg_id_encode(&wr, &m);
	ipc_send_wr(ch, MSG_D_JOB_FAIL, &wr);
	ipc_wr_free(&wr);
}

int queue_dlv_chunk_req(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_d_chunk_req req;
	if (ipc_msg_d_chunk_req_decode(rd, &req) < 0)
		return -1;
	uint32_t seq = req.seq;
	struct queue_job *j = queue_job_find(q, req.jobid);
	struct ipc_msg_d_chunk m = {req.jobid, seq, seq + 1 >= (j ? j->nchunks : 0), {NULL, 0}};
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_msg_d_chunk_head(&wr, &m);
	/* The bytes field: the chunk is read from the store straight into the frame. */
	size_t open = ipc_put_bytes_open(&wr);
	int rc = j == NULL ? 0 : queue_store_chunk_get(q->st, j->qid, seq, &wr.b);
	/* An empty message has no chunk 0 but is fine. */
	if (j != NULL && rc == 0 && seq == 0 && j->nchunks == 0)
		rc = 1;
	if (rc <= 0) {
		if (j != NULL)
			log_msg(LOG_WARNING, j->qid, "content chunk %u unavailable", seq);
		queue_dlv_job_fail(p->ch, req.jobid);
	} else {
		ipc_put_bytes_close(&wr, open);
		ipc_send_wr(p->ch, MSG_D_CHUNK, &wr);
	}
	ipc_wr_free(&wr);
	return 0;
}

/*
 * A job's transcript replaces the one of its domain's previous attempt. It
 * is written once a result that is not "sent" has come (a notification may
 * quote it), or at the job's end if the message is still queued: most
 * jobs deliver everything, and their message leaves with its transcript,
 * so the queue writes nothing for them.
 */
static void queue_job_trace_store(struct queue *q, struct queue_job *j)
{
	if (j->trace == NULL)
		return;
	if (queue_txn(q) < 0 || queue_store_trace_put(q->st, j->qid, j->domain, q->now(), j->trace) < 0)
		queue_txn_abort(q);
	else
		q->want_commit = 1;
	free(j->trace);
	j->trace = NULL;
}

/* Applies one result; the transaction is committed at the end of this iteration. */
static void queue_dlv_apply(struct queue *q, struct queue_job *j, const struct queue_result *res)
{
	if (res->dclass != DLV_SENT) {
		j->failed = 1;
		queue_job_trace_store(q, j);
	}
	if (queue_txn(q) < 0 ||
	    queue_result_apply(q->st, &q->pol, res, q->now(), &q->cnt) < 0) {
		queue_txn_abort(q);
		return;
	}
	q->want_commit = 1;
	queue_kick(q);
}

static int queue_job_rcpt(const struct queue_job *j, int64_t rcptid)
{
	for (size_t i = 0; i < j->n; i++)
		if (j->rcptid[i] == rcptid)
			return (int)i;
	return -1;
}

int queue_dlv_result(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	char enh[16], text[1024], relay[300], reply[1024];
	struct queue_result res = {.suspended_until = 0};
	struct ipc_msg_d_result m;
	if (ipc_msg_d_result_decode(rd, &m) < 0 || ipc_str_copy(enh, sizeof(enh), m.enh) < 0 ||
	    ipc_str_copy(text, sizeof(text), m.text) < 0 ||
	    ipc_str_copy(reply, sizeof(reply), m.reply) < 0 ||
	    ipc_str_copy(relay, sizeof(relay), m.relay) < 0 || m.dclass < DLV_SENT ||
	    m.dclass > DLV_BOUNCED)
		return -1;
	uint64_t jobid = m.jobid;
	res.rcptid = (int64_t)m.rcptid;
	res.dclass = m.dclass;
	res.code = m.code;
	res.enh = enh;
	res.text = text;
	res.relay = relay;
	res.reply = reply;
	res.flags = m.flags;
	struct queue_job *j = queue_job_find(q, jobid);
	int i = j ? queue_job_rcpt(j, res.rcptid) : -1;
	if (i < 0 || j->resolved[i]) {
		log_debug("result for job %llu recipient %lld ignored", (unsigned long long)jobid,
			  (long long)res.rcptid);
		return 0;
	}
	j->resolved[i] = 1;
	queue_dlv_apply(q, j, &res);
	return 0;
}

int queue_dlv_suspended(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	char enh[16], text[1024];
	struct ipc_msg_d_suspended m;
	if (ipc_msg_d_suspended_decode(rd, &m) < 0 || m.until <= 0 ||
	    ipc_str_copy(enh, sizeof(enh), m.enh) < 0 || ipc_str_copy(text, sizeof(text), m.text) < 0)
		return -1;
	struct queue_job *j = queue_job_find(q, m.jobid);
	for (size_t i = 0; j != NULL && i < j->n; i++) {
		if (j->resolved[i])
			continue;
		struct queue_result res = {
			.rcptid = j->rcptid[i], .dclass = DLV_DEFERRED, .enh = enh, .text = text,
			.relay = "none", .suspended_until = m.until,
		};
		j->resolved[i] = 1;
		queue_dlv_apply(q, j, &res);
	}
	return 0;
}

int queue_dlv_trace(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_d_trace m;
	if (ipc_msg_d_trace_decode(rd, &m) < 0 || m.text.n > QUEUE_TRACE_MAX + 1024)
		return -1;
	struct queue_job *j = queue_job_find(q, m.jobid);
	if (j == NULL)
		return 0;
	free(j->trace);
	j->trace = ipc_str_dup(m.text);
	if (j->failed)
		queue_job_trace_store(q, j);
	return 0;
}

/* Tells delivery to forget the failed next hop of each domain, once. */
static int queue_dlv_flush_domain(const struct queue_rcpt *r, void *arg)
{
	struct queue *q = arg;
	struct ipc_msg_text m = {ipc_str(r->domain)};
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_msg_text_encode(&wr, &m);
	ipc_send_wr(q->dlv->ch, MSG_D_FLUSH, &wr);
	ipc_wr_free(&wr);
	return 0;
}

int queue_dlv_flush(struct queue *q, const char *qid)
{
	struct queue_rcpt all = {.domain = ""};
	if (q->dlv == NULL)
		return 0; /* a delivery worker that starts remembers nothing */
	if (qid == NULL)
		return queue_dlv_flush_domain(&all, q);
	return queue_store_domains_of(q->st, qid, queue_dlv_flush_domain, q);
}

int queue_dlv_done(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_id m;
	if (ipc_msg_id_decode(rd, &m) < 0)
		return -1;
	struct queue_job *j = queue_job_find(q, m.id);
	if (j == NULL)
		return 0;
	/* Recipients delivery said nothing about: retried like a temporary failure. */
	for (size_t i = 0; i < j->n; i++) {
		if (j->resolved[i])
			continue;
		struct queue_result res = {
			.rcptid = j->rcptid[i], .dclass = DLV_DEFERRED, .code = 451,
			.enh = "4.3.0", .text = "delivery reported no result", .relay = "none",
		};
		j->resolved[i] = 1;
		queue_dlv_apply(q, j, &res);
	}
	queue_job_trace_store(q, j);
	queue_job_free(q, j);
	return 0;
}

void queue_dlv_gone(struct queue *q)
{
	struct queue_job *j;
	size_t it = 0;
	long n = 0;
	while ((j = idmap_next(&q->jobs, &it)) != NULL)
		queue_job_free(q, j);
	q->credits = 0;
	if (queue_txn(q) < 0 || queue_store_requeue_inflight(q->st, q->now(), &n) < 0) {
		queue_txn_abort(q);
		return;
	}
	log_info("delivery went away: %ld in-flight recipient(s) back in the queue", n);
	q->want_commit = 1;
	queue_kick(q);
}

void queue_dlv_resync(struct queue *q)
{
	long n = 0;
	if (queue_txn(q) < 0 || queue_store_requeue_inflight(q->st, q->now(), &n) < 0)
		goto fail;
	struct queue_job *j;
	size_t it = 0;
	while ((j = idmap_next(&q->jobs, &it)) != NULL)
		for (size_t i = 0; i < j->n; i++)
			if (!j->resolved[i] &&
			    queue_store_rcpt_set_state(q->st, j->rcptid[i], RS_INFLIGHT) < 0)
				goto fail;
	if (queue_store_commit(q->st) == 0)
		return;
fail:
	/* Stays as it is on disk; start-up recovery requeues in-flight rows. */
	log_warnx("queue.db: resynchronising in-flight recipients failed: %s",
		  queue_store_errmsg(q->st));
	if (queue_store_in_txn(q->st))
		queue_store_rollback(q->st);
}
