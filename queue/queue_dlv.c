/*
 * queue_dlv.c - the delivery side of the queue: jobs handed out against
 * the credit delivery gave with READY, content served a chunk per request
 * (delivery pulls, so neither side holds a whole message), and results
 * applied to the recipients. In-flight recipients of a delivery worker
 * that goes away return to the queue.
 */
#include "queue/queue.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

static struct queue_job *queue_job_find(struct queue *q, uint64_t jobid)
{
	struct queue_job *j = q->jobs;
	while (j && j->jobid != jobid)
		j = j->next;
	return j;
}

static void queue_job_free(struct queue *q, struct queue_job *j)
{
	for (struct queue_job **jp = &q->jobs; *jp; jp = &(*jp)->next) {
		if (*jp == j) {
			*jp = j->next;
			break;
		}
	}
	free(j);
}

static void queue_job_send(struct queue *q, const struct queue_pick *pk)
{
	struct queue_job *j = xcalloc(1, sizeof(*j));
	struct ipc_wr wr;

	j->jobid = ++q->next_jobid;
	memcpy(j->qid, pk->msg.qid, sizeof(j->qid));
	j->nchunks = pk->msg.nchunks;
	j->n = pk->n;
	for (size_t i = 0; i < pk->n; i++)
		j->rcptid[i] = pk->rcpts[i].id;
	j->next = q->jobs;
	q->jobs = j;

	ipc_wr_init(&wr);
	ipc_put_u64(&wr, j->jobid);
	ipc_put_str(&wr, pk->msg.qid);
	ipc_put_str(&wr, pk->msg.sender);
	ipc_put_str(&wr, pk->domain);
	ipc_put_u64(&wr, pk->msg.size);
	ipc_put_u32(&wr, pk->msg.body_flags);
	ipc_put_i64(&wr, pk->msg.arrival);
	ipc_put_u32(&wr, (uint32_t)pk->n);
	for (size_t i = 0; i < pk->n; i++) {
		ipc_put_u64(&wr, (uint64_t)pk->rcpts[i].id);
		ipc_put_str(&wr, pk->rcpts[i].address);
	}
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

int queue_dlv_ready(struct queue_peer *p, struct ipc_rd *rd)
{
	uint32_t n = ipc_get_u32(rd);
	if (ipc_rd_done(rd) < 0)
		return -1;
	p->q->credits += n;
	queue_kick(p->q);
	return 0;
}

static void queue_dlv_job_fail(struct ipc_chan *ch, uint64_t jobid)
{
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_u64(&wr, jobid);
	ipc_send_wr(ch, MSG_D_JOB_FAIL, &wr);
	ipc_wr_free(&wr);
}

int queue_dlv_chunk_req(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	uint64_t jobid = ipc_get_u64(rd);
	uint32_t seq = ipc_get_u32(rd);
	if (ipc_rd_done(rd) < 0)
		return -1;
	struct queue_job *j = queue_job_find(q, jobid);
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_u64(&wr, jobid);
	ipc_put_u32(&wr, seq);
	ipc_put_u32(&wr, seq + 1 >= (j ? j->nchunks : 0));
	/* The bytes field: its length is patched in once the chunk is read. */
	size_t lenoff = buf_avail(&wr.b);
	ipc_put_u32(&wr, 0);
	size_t before = buf_avail(&wr.b);
	int rc = j == NULL ? 0 : queue_store_chunk_get(q->st, j->qid, seq, &wr.b);
	/* An empty message has no chunk 0 but is fine. */
	if (j != NULL && rc == 0 && seq == 0 && j->nchunks == 0)
		rc = 1;
	if (rc <= 0) {
		if (j != NULL)
			log_msg(LOG_WARNING, j->qid, "content chunk %u unavailable", seq);
		queue_dlv_job_fail(p->ch, jobid);
	} else {
		uint32_t n = (uint32_t)(buf_avail(&wr.b) - before);
		memcpy(buf_head(&wr.b) + lenoff, &n, sizeof(n));
		ipc_send_wr(p->ch, MSG_D_CHUNK, &wr);
	}
	ipc_wr_free(&wr);
	return 0;
}

/* Applies one result; the transaction is committed at the end of this iteration. */
static void queue_dlv_apply(struct queue *q, const struct queue_result *res)
{
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

int queue_dlv_result(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	char enh[16], text[1024], relay[300];
	struct queue_result res = {.suspended_until = 0};
	uint64_t jobid = ipc_get_u64(rd);
	res.rcptid = (int64_t)ipc_get_u64(rd);
	res.dclass = ipc_get_u32(rd);
	res.code = ipc_get_u32(rd);
	ipc_get_str(rd, enh, sizeof(enh));
	ipc_get_str(rd, text, sizeof(text));
	ipc_get_str(rd, relay, sizeof(relay));
	if (ipc_rd_done(rd) < 0 || res.dclass < DLV_SENT || res.dclass > DLV_BOUNCED)
		return -1;
	res.enh = enh;
	res.text = text;
	res.relay = relay;
	struct queue_job *j = queue_job_find(q, jobid);
	int i = j ? queue_job_rcpt(j, res.rcptid) : -1;
	if (i < 0 || j->resolved[i]) {
		log_debug("result for job %llu recipient %lld ignored", (unsigned long long)jobid,
			  (long long)res.rcptid);
		return 0;
	}
	j->resolved[i] = 1;
	queue_dlv_apply(q, &res);
	return 0;
}

int queue_dlv_suspended(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	char enh[16], text[1024];
	uint64_t jobid = ipc_get_u64(rd);
	int64_t until = ipc_get_i64(rd);
	ipc_get_str(rd, enh, sizeof(enh));
	ipc_get_str(rd, text, sizeof(text));
	if (ipc_rd_done(rd) < 0 || until <= 0)
		return -1;
	struct queue_job *j = queue_job_find(q, jobid);
	for (size_t i = 0; j != NULL && i < j->n; i++) {
		if (j->resolved[i])
			continue;
		struct queue_result res = {
			.rcptid = j->rcptid[i], .dclass = DLV_DEFERRED, .enh = enh, .text = text,
			.relay = "none", .suspended_until = until,
		};
		j->resolved[i] = 1;
		queue_dlv_apply(q, &res);
	}
	return 0;
}

/* Tells delivery to forget the failed next hop of each domain, once. */
static int queue_dlv_flush_domain(const struct queue_rcpt *r, void *arg)
{
	struct queue *q = arg;
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_str(&wr, r->domain);
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

int queue_dlv_done(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	uint64_t jobid = ipc_get_u64(rd);
	if (ipc_rd_done(rd) < 0)
		return -1;
	struct queue_job *j = queue_job_find(q, jobid);
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
		queue_dlv_apply(q, &res);
	}
	queue_job_free(q, j);
	return 0;
}

void queue_dlv_gone(struct queue *q)
{
	long n = 0;
	while (q->jobs)
		queue_job_free(q, q->jobs);
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
	for (struct queue_job *j = q->jobs; j; j = j->next)
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
