/*
 * dlv_main.c - the delivery worker: its channel to the queue (jobs in,
 * content pulled piece by piece, results and credits out), the
 * destinations that group jobs by next hop, bound their connections and
 * keep their rate limits (dlv_rate.h says where a limited job waits), and
 * the log line of every recipient's outcome.
 */
#include "relayd/delivery/dlv.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/xmalloc.h"
#include "resolver/resolver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const dlv_status_names[] = {
	[DLV_SENT] = "sent",
	[DLV_DEFERRED] = "deferred",
	[DLV_BOUNCED] = "bounced",
};

/* Jobs the queue may have in flight here: enough to keep every connection busy. */
static unsigned dlv_credits(const struct config *cfg)
{
	unsigned n = cfg->delivery_concurrency * 2;
	return n < 4 ? 4 : n;
}

double dlv_delay(int64_t arrival, uint32_t arrival_usec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	double d = (double)(ts.tv_sec - arrival) + ts.tv_nsec / 1e9 - arrival_usec / 1e6;
	return d < 0 ? 0 : d;
}

/* ---- jobs ---- */

static struct dlv_job *dlv_job_find(struct dlv_ctx *ctx, uint64_t id)
{
	return idmap_get(&ctx->jobs, id);
}

static void dlv_job_free(struct dlv_ctx *ctx, struct dlv_job *job)
{
	idmap_del(&ctx->jobs, job->id);
	for (size_t i = 0; i < job->nrcpts; i++) {
		free(job->rcpts[i].addr);
		free(job->rcpts[i].orcpt);
	}
	free(job->rcpts);
	free(job->sender);
	free(job->envid);
	dlv_trace_free(&job->trace);
	free(job);
}

/* The job's transcript to the queue, when it changed since it last went. */
static void dlv_trace_send(struct dlv_ctx *ctx, struct dlv_job *job)
{
	struct buf text;
	struct ipc_wr wr;

	if (!job->trace.dirty)
		return;
	job->trace.dirty = 0;
	buf_init(&text);
	dlv_trace_text(&job->trace, &text);
	struct ipc_msg_d_trace m = {job->id, ipc_str((const char *)buf_head(&text))};
	ipc_wr_init(&wr);
	ipc_msg_d_trace_encode(&wr, &m);
	ipc_send_wr(ctx->queue.ch, MSG_D_TRACE, &wr);
	ipc_wr_free(&wr);
	buf_free(&text);
}

static void dlv_send_ready(struct dlv_ctx *ctx, unsigned n)
{
	struct ipc_msg_d_ready m = {n};
	struct ipc_wr wr;

	ipc_wr_init(&wr);
	ipc_msg_d_ready_encode(&wr, &m);
	ipc_send_wr(ctx->queue.ch, MSG_D_READY, &wr);
	ipc_wr_free(&wr);
}

/* The outcome's log line and counters; the recipient is decided. */
static void dlv_rcpt_log(struct dlv_ctx *ctx, struct dlv_job *job, size_t i,
			 const struct dlv_outcome *o)
{
	struct dlv_rcpt *r = &job->rcpts[i];
	char conn_use[32] = "";

	if (r->done)
		fatal("%s: second outcome for <%s>", job->qid, r->addr);
	r->done = 1;
	if (o->conn_use > 1)
		snprintf(conn_use, sizeof(conn_use), ", conn_use=%u", o->conn_use);
	log_msg(LOG_INFO, job->qid, "to=<%s>, relay=%s%s, delay=%.2f, dsn=%s, status=%s (%s)",
		r->addr, o->relay ? o->relay : "none", conn_use,
		dlv_delay(job->arrival, job->arrival_usec), o->enh,
		dlv_status_names[o->cls], o->text);
	if (o->cls == DLV_SENT)
		ctx->stats.rcpt_sent++;
	else if (o->cls == DLV_DEFERRED)
		ctx->stats.rcpt_deferred++;
	else
		ctx->stats.rcpt_bounced++;
	dlv_metrics_count(ctx, job->dest ? job->dest->key : job->domain, o->cls);
}

void dlv_rcpt_outcome(struct dlv_ctx *ctx, struct dlv_job *job, size_t i,
		      const struct dlv_outcome *o)
{
	struct dlv_rcpt *r = &job->rcpts[i];
	char text[DLV_RESULT_TEXT_MAX], relay[DLV_RESULT_RELAY_MAX], reply[DLV_RESULT_TEXT_MAX];
	struct ipc_wr wr;

	dlv_rcpt_log(ctx, job, i, o);
	/* The job's last result may end the message's pass and make its bounce:
	 * the transcript goes first. Earlier results cannot, so one frame per job. */
	size_t undecided = 0;
	for (size_t k = 0; k < job->nrcpts; k++)
		undecided += !job->rcpts[k].done;
	if (undecided == 0)
		dlv_trace_send(ctx, job);
	/* The queue keeps bounded copies: cut here rather than have the frame refused. */
	snprintf(text, sizeof(text), "%.*s", (int)sizeof(text) - 1, o->text);
	snprintf(relay, sizeof(relay), "%.*s", (int)sizeof(relay) - 1, o->relay ? o->relay : "");
	snprintf(reply, sizeof(reply), "%.*s", (int)sizeof(reply) - 1, o->reply);
	struct ipc_msg_d_result m = {
		.jobid = job->id, .rcptid = r->id, .dclass = (uint32_t)o->cls,
		.code = (uint32_t)o->code, .enh = ipc_str(o->enh), .text = ipc_str(text),
		.relay = ipc_str(relay), .reply = ipc_str(reply), .flags = o->flags,
	};
	ipc_wr_init(&wr);
	ipc_msg_d_result_encode(&wr, &m);
	ipc_send_wr(ctx->queue.ch, MSG_D_RESULT, &wr);
	ipc_wr_free(&wr);
}

void dlv_job_outcome_all(struct dlv_ctx *ctx, struct dlv_job *job, const struct dlv_outcome *o)
{
	for (size_t i = 0; i < job->nrcpts; i++)
		if (!job->rcpts[i].done)
			dlv_rcpt_outcome(ctx, job, i, o);
}

void dlv_job_finish(struct dlv_ctx *ctx, struct dlv_job *job)
{
	struct ipc_wr wr;

	for (size_t i = 0; i < job->nrcpts; i++)
		if (!job->rcpts[i].done)
			fatal("%s: job ends with <%s> undecided", job->qid, job->rcpts[i].addr);
	dlv_trace_send(ctx, job);
	struct ipc_msg_id m = {job->id};
	ipc_wr_init(&wr);
	ipc_msg_id_encode(&wr, &m);
	ipc_send_wr(ctx->queue.ch, MSG_D_DONE, &wr);
	ipc_wr_free(&wr);
	dlv_job_free(ctx, job);
	dlv_send_ready(ctx, 1);
}

void dlv_job_request_chunk(struct dlv_ctx *ctx, struct dlv_job *job)
{
	struct ipc_msg_d_chunk_req m = {job->id, job->chunk_seq};
	struct ipc_wr wr;

	job->chunk_pending = 1;
	ipc_wr_init(&wr);
	ipc_msg_d_chunk_req_encode(&wr, &m);
	ipc_send_wr(ctx->queue.ch, MSG_D_CHUNK_REQ, &wr);
	ipc_wr_free(&wr);
}

/* ---- destinations ---- */

/* dsn= of a message deferred by its rate limit (RFC 3463: mail system congestion). */
#define DLV_RATE_ENH "4.4.5"

static struct dlv_dest *dlv_dest_find(struct dlv_ctx *ctx, const char *key)
{
	struct dlv_dest *d;

	LIST_FOREACH(d, &ctx->dests, entry)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

static struct dlv_dest *dlv_dest_new(struct dlv_ctx *ctx, const char *key)
{
	struct dlv_dest *d = xcalloc(1, sizeof(*d));

	snprintf(d->key, sizeof(d->key), "%s", key);
	TAILQ_INIT(&d->waiting);
	LIST_INSERT_HEAD(&ctx->dests, d, entry);
	return d;
}

/* Nothing waits, runs, is held or rate-limited: the destination may go. */
static int dlv_dest_idle(const struct dlv_dest *d, uint64_t now)
{
	return d->nwaiting == 0 && d->nsessions == 0 && d->hold_until <= now &&
	       !dlv_rate_live(&d->rate, now);
}

static void dlv_dest_free(struct dlv_ctx *ctx, struct dlv_dest *d)
{
	if (d->rated)
		ctx->nrated--;
	LIST_REMOVE(d, entry);
	free(d);
}

/* The destination's rate as the config now says (a reload may change it). */
static void dlv_dest_set_rate(struct dlv_ctx *ctx, struct dlv_dest *d, const struct dlv_hop *hop)
{
	d->rate_interval = dlv_rate_interval(&hop->rate);
	snprintf(d->rate_desc, sizeof(d->rate_desc), "%s", hop->rate_desc);
	/* Counted while it has a rate: one a reload took away makes room. */
	if ((d->rate_interval > 0) != d->rated) {
		d->rated = d->rate_interval > 0;
		if (d->rated)
			ctx->nrated++;
		else
			ctx->nrated--;
	}
}

/* The next waiting job, whatever the rate. */
static struct dlv_job *dlv_dest_pop(struct dlv_dest *dest)
{
	struct dlv_job *job = TAILQ_FIRST(&dest->waiting);

	if (job == NULL)
		return NULL;
	TAILQ_REMOVE(&dest->waiting, job, wait_entry);
	dest->nwaiting--;
	return job;
}

struct dlv_job *dlv_dest_take(struct dlv_ctx *ctx, struct dlv_dest *dest)
{
	uint64_t now = ev_now(ctx->loop);

	if (dest->nwaiting == 0)
		return NULL;
	if (dest->rate_interval > 0) {
		if (dlv_rate_wait(&dest->rate, now) > 0)
			return NULL;
		dlv_rate_take(&dest->rate, dest->rate_interval, now);
	}
	struct dlv_job *job = dlv_dest_pop(dest);
	job->rate_slot = dest->rate_interval > 0 ? now : 0;
	return job;
}

static void dlv_dispatch_soon(struct dlv_ctx *ctx)
{
	ev_timer_start(ctx->loop, &ctx->dispatch_timer, 0);
}

void dlv_dest_requeue(struct dlv_ctx *ctx, struct dlv_job *job)
{
	struct dlv_dest *d = job->dest;

	/* Nothing reached the next hop: the job may start again at once. */
	if (job->rate_slot > 0 && d->rate.next == job->rate_slot + d->rate_interval)
		d->rate.next = job->rate_slot;
	job->sess = NULL;
	TAILQ_INSERT_HEAD(&d->waiting, job, wait_entry);
	d->nwaiting++;
	dlv_dispatch_soon(ctx);
}

/*
 * Defers a job at once, without a connection, and tells the queue when it
 * may come back (until, an ev_now() time): no attempt is counted, no
 * backoff step taken. For a next hop on hold and for a rate limit.
 */
static void dlv_job_suspend(struct dlv_ctx *ctx, struct dlv_job *job, uint64_t until,
			    const char *enh, const char *text)
{
	struct dlv_outcome o;
	struct ipc_wr wr;
	uint64_t now = ev_now(ctx->loop);
	int64_t when = ev_wallclock() + (int64_t)(until > now ? (until - now + 999) / 1000 : 0);

	memset(&o, 0, sizeof(o));
	o.cls = DLV_DEFERRED;
	snprintf(o.enh, sizeof(o.enh), "%s", enh);
	snprintf(o.text, sizeof(o.text), "%.*s", DLV_RESULT_TEXT_MAX - 1, text);
	for (size_t i = 0; i < job->nrcpts; i++)
		if (!job->rcpts[i].done)
			dlv_rcpt_log(ctx, job, i, &o);
	struct ipc_msg_d_suspended m = {
		.jobid = job->id, .until = when, .enh = ipc_str(o.enh), .text = ipc_str(o.text),
	};
	ipc_wr_init(&wr);
	ipc_msg_d_suspended_encode(&wr, &m);
	ipc_send_wr(ctx->queue.ch, MSG_D_SUSPENDED, &wr);
	ipc_wr_free(&wr);
	dlv_job_finish(ctx, job);
}

/*
 * A job for a destination on hold: "delivery temporarily suspended" (as
 * Postfix says), back when the hold ends.
 */
static void dlv_dest_hold_job(struct dlv_ctx *ctx, struct dlv_dest *dest, struct dlv_job *job)
{
	char text[DLV_RESULT_TEXT_MAX];

	snprintf(text, sizeof(text), "delivery temporarily suspended: %.*s",
		 DLV_RESULT_TEXT_MAX - 40, dest->hold_text);
	dlv_job_suspend(ctx, job, dest->hold_until, dest->hold_enh, text);
}

/* A job above its destination's rate waits in the queue until slot. */
static void dlv_job_rate_limited(struct dlv_ctx *ctx, struct dlv_job *job, uint64_t slot,
				 const char *desc, const char *why)
{
	char text[DLV_RESULT_TEXT_MAX];
	uint64_t now = ev_now(ctx->loop);

	snprintf(text, sizeof(text), "delivery rate-limited: %s%s; next try in %llu s", desc, why,
		 (unsigned long long)(slot > now ? (slot - now + 999) / 1000 : 0));
	dlv_job_suspend(ctx, job, slot, DLV_RATE_ENH, text);
}

void dlv_dest_failed(struct dlv_ctx *ctx, struct dlv_dest *dest, const struct dlv_outcome *o)
{
	struct dlv_job *job;
	/* Never longer than retry-min, the queue's shortest wait (Postfix:
	 * minimal_backoff_time), so a retry is not suspended by it. */
	uint64_t hold = (uint64_t)ctx->w->cfg->retry_min * 1000;

	if (hold > DLV_DEST_HOLD_MS)
		hold = DLV_DEST_HOLD_MS;
	dest->hold_until = ev_now(ctx->loop) + hold;
	snprintf(dest->hold_text, sizeof(dest->hold_text), "%s", o->text);
	snprintf(dest->hold_enh, sizeof(dest->hold_enh), "%s", o->enh);
	log_info("next hop %s failed (%s); its mail waits %llu s before the next attempt",
		 dest->key, o->text, (unsigned long long)(hold + 999) / 1000);
	while ((job = dlv_dest_pop(dest)) != NULL)
		dlv_dest_hold_job(ctx, dest, job);
}

/*
 * relayctl flush and reload: the failure memory of the destination of
 * domain (every destination when NULL) ends now. A flush also voids the
 * moments promised to rate-limited mail, which it has just made due: new
 * promises start from the rate's next free moment. The rate itself stays.
 */
static void dlv_dest_forget(struct dlv_ctx *ctx, const char *domain, int unbook)
{
	char key[300];
	struct dlv_dest *d;

	if (domain != NULL)
		dlv_dest_key(ctx->w->cfg, domain, NULL, key, sizeof(key));
	LIST_FOREACH(d, &ctx->dests, entry) {
		/* The domain's mail may also leave by any sender-route. */
		if (domain != NULL && strcmp(d->key, key) != 0 &&
		    strncmp(d->key, "sender-route:", 13) != 0)
			continue;
		if (unbook)
			dlv_rate_unbook(&d->rate);
		if (d->hold_until == 0)
			continue;
		d->hold_until = 0;
		log_info("next hop %s: failure forgotten; its mail goes at the next attempt",
			 d->key);
	}
	dlv_dispatch_soon(ctx);
}

void dlv_session_ended(struct dlv_ctx *ctx, struct dlv_dest *dest)
{
	(void)dest;
	dlv_dispatch_soon(ctx);
}

/*
 * Starts sessions for waiting jobs within the limits, forgets idle
 * destinations, and comes back when the first rate lets a waiting job go.
 */
static void dlv_dispatch(void *arg)
{
	struct dlv_ctx *ctx = arg;
	const struct config *cfg = ctx->w->cfg;
	struct dlv_dest *d, *next;
	struct dlv_job *job;
	uint64_t now = ev_now(ctx->loop), wake = 0;

	for (d = LIST_FIRST(&ctx->dests); d != NULL; d = next) {
		while (d->nwaiting > 0 && d->nsessions < cfg->concurrency_per_destination &&
		       ctx->nsessions < cfg->delivery_concurrency) {
			if (d->hold_until > now) {
				dlv_dest_hold_job(ctx, d, dlv_dest_pop(d));
				continue;
			}
			if ((job = dlv_dest_take(ctx, d)) == NULL)
				break;
			dlv_session_start(ctx, d, job);
		}
		uint64_t wait = d->nwaiting > 0 && d->rate_interval > 0 ?
					dlv_rate_wait(&d->rate, now) : 0;
		if (wait > 0 && (wake == 0 || wait < wake))
			wake = wait;
		next = LIST_NEXT(d, entry);
		if (dlv_dest_idle(d, now))
			dlv_dest_free(ctx, d);
	}
	/* A pending timer is a dispatch asked for since, which comes sooner. */
	if (wake > 0 && !ev_timer_pending(&ctx->dispatch_timer))
		ev_timer_start(ctx->loop, &ctx->dispatch_timer, wake);
}

/*
 * A job for one more rate-limited destination when DLV_RATE_MAX_DESTS are
 * remembered (memory stays bounded): it waits in the queue until the first
 * of them may be forgotten, rather than leave unlimited. 1 when so.
 */
static int dlv_rate_full(struct dlv_ctx *ctx, struct dlv_job *job, const struct dlv_hop *hop)
{
	struct dlv_dest *d, *next;
	uint64_t now = ev_now(ctx->loop), until = 0;
	char why[80];

	for (d = LIST_FIRST(&ctx->dests); d != NULL; d = next) {
		next = LIST_NEXT(d, entry);
		if (dlv_dest_idle(d, now))
			dlv_dest_free(ctx, d);
	}
	if (ctx->nrated < DLV_RATE_MAX_DESTS)
		return 0;
	LIST_FOREACH(d, &ctx->dests, entry) {
		uint64_t end = d->rate.next > d->rate.booked ? d->rate.next : d->rate.booked;
		if (d->rated && (until == 0 || end < until))
			until = end;
	}
	if (until < now + 1000)
		until = now + 1000;
	snprintf(why, sizeof(why), " (%zu destinations are rate-limited already)", ctx->nrated);
	dlv_job_rate_limited(ctx, job, until, hop->rate_desc, why);
	return 1;
}

/*
 * A job from the queue joins its destination: deferred at once when the
 * next hop is on hold, or when its rate would make it wait longer than
 * DLV_RATE_KEEP_MS (then until the moment promised to it).
 */
static void dlv_job_route(struct dlv_ctx *ctx, struct dlv_job *job)
{
	const struct config *cfg = ctx->w->cfg;
	struct dlv_hop hop;
	char key[300];
	uint64_t now = ev_now(ctx->loop), slot;

	dlv_dest_key(cfg, job->domain, job->sender, key, sizeof(key));
	if (dlv_hop_select(cfg, job->domain, job->sender, 0, &hop) < 0)
		fatal("no next hop for %s", job->domain);
	struct dlv_dest *d = dlv_dest_find(ctx, key);
	if (d == NULL) {
		if (hop.rate.n > 0 && ctx->nrated >= DLV_RATE_MAX_DESTS &&
		    dlv_rate_full(ctx, job, &hop))
			return;
		d = dlv_dest_new(ctx, key);
	}
	job->dest = d;
	dlv_dest_set_rate(ctx, d, &hop);
	if (d->hold_until > now) {
		dlv_dest_hold_job(ctx, d, job);
		return;
	}
	if (d->rate_interval > 0 &&
	    !dlv_rate_admit(&d->rate, d->rate_interval, now, d->nwaiting, &slot)) {
		dlv_job_rate_limited(ctx, job, slot, d->rate_desc, "");
		return;
	}
	TAILQ_INSERT_TAIL(&d->waiting, job, wait_entry);
	d->nwaiting++;
	dlv_dispatch_soon(ctx);
}

/* ---- the queue channel ---- */

static int dlv_msg_job(void *arg, struct ipc_rd *rd)
{
	struct dlv_ctx *ctx = arg;
	struct ipc_msg_d_job m;

	if (ipc_msg_d_job_decode(rd, &m) < 0 || m.nrcpt == 0 || m.domain.n == 0 ||
	    dlv_job_find(ctx, m.jobid) != NULL)
		return -1;
	struct dlv_job *job = xcalloc(1, sizeof(*job));
	job->id = m.jobid;
	job->sender = ipc_str_dup(m.sender);
	job->size = m.size;
	job->body = m.body_flags;
	job->arrival = m.arrival;
	job->arrival_usec = m.arrival_usec;
	job->dsn_ret = m.dsn_ret;
	job->envid = m.envid.n > 0 ? ipc_str_dup(m.envid) : NULL;
	dlv_trace_init(&job->trace);
	job->rcpts = xcalloc(m.nrcpt, sizeof(*job->rcpts));
	for (; job->nrcpts < m.nrcpt; job->nrcpts++) {
		struct dlv_rcpt *r = &job->rcpts[job->nrcpts];
		r->id = m.rcpts[job->nrcpts].rcptid;
		r->addr = ipc_str_dup(m.rcpts[job->nrcpts].address);
		r->notify = m.rcpts[job->nrcpts].notify;
		r->orcpt = m.rcpts[job->nrcpts].orcpt.n > 0 ? ipc_str_dup(m.rcpts[job->nrcpts].orcpt)
							    : NULL;
	}
	if (ipc_str_copy(job->qid, sizeof(job->qid), m.qid) < 0 ||
	    ipc_str_copy(job->domain, sizeof(job->domain), m.domain) < 0) {
		dlv_job_free(ctx, job); /* not in the map: its id is free */
		return -1;
	}
	idmap_put(&ctx->jobs, job->id, job);
	log_debug("%s: job %llu for %s, %zu recipient(s)", job->qid,
		  (unsigned long long)job->id, job->domain, job->nrcpts);
	dlv_job_route(ctx, job);
	return 0;
}

static int dlv_msg_chunk(void *arg, struct ipc_rd *rd)
{
	struct dlv_ctx *ctx = arg;
	struct ipc_msg_d_chunk m;

	if (ipc_msg_d_chunk_decode(rd, &m) < 0)
		return -1;
	struct dlv_job *job = dlv_job_find(ctx, m.jobid);
	if (job == NULL || !job->chunk_pending || m.seq != job->chunk_seq) {
		log_warnx("unexpected content piece %u of job %llu", m.seq,
			  (unsigned long long)m.jobid);
		return 0;
	}
	job->chunk_pending = 0;
	job->chunk_seq++;
	if (job->sess)
		dlv_session_chunk(job->sess, m.data.p, m.data.n, m.last != 0);
	return 0;
}

/*
 * The queue cannot give this job's content: the connection goes without
 * the final dot (so nothing is delivered) and the recipients wait.
 */
void dlv_job_content_failed(struct dlv_ctx *ctx, struct dlv_job *job, const char *text)
{
	struct dlv_outcome o;

	if (job->sess) {
		dlv_session_abort(job->sess);
	} else {
		TAILQ_REMOVE(&job->dest->waiting, job, wait_entry);
		job->dest->nwaiting--;
	}
	memset(&o, 0, sizeof(o));
	o.cls = DLV_DEFERRED;
	snprintf(o.enh, sizeof(o.enh), "4.3.0");
	snprintf(o.text, sizeof(o.text), "%s", text);
	dlv_job_outcome_all(ctx, job, &o);
	dlv_job_finish(ctx, job);
}

static int dlv_msg_job_fail(void *arg, struct ipc_rd *rd)
{
	struct dlv_ctx *ctx = arg;
	struct ipc_msg_id m;

	if (ipc_msg_id_decode(rd, &m) < 0)
		return -1;
	struct dlv_job *job = dlv_job_find(ctx, m.id);
	if (job != NULL)
		dlv_job_content_failed(ctx, job, "message content unavailable from the queue");
	return 0;
}

/* MSG_D_FLUSH: the domain whose next hop to forget ("" for every one). */
static int dlv_msg_flush(void *arg, struct ipc_rd *rd)
{
	struct dlv_ctx *ctx = arg;
	struct ipc_msg_text m;
	char domain[256];

	if (ipc_msg_text_decode(rd, &m) < 0 || ipc_str_copy(domain, sizeof(domain), m.text) < 0)
		return -1;
	dlv_dest_forget(ctx, domain[0] ? domain : NULL, 1);
	return 0;
}

/* What the queue sends delivery, once it said HELLO_OK. */
static const struct ipc_handler dlv_queue_handlers[] = {
	{MSG_D_JOB, 0, dlv_msg_job},
	{MSG_D_CHUNK, 0, dlv_msg_chunk},
	{MSG_D_JOB_FAIL, 0, dlv_msg_job_fail},
	{MSG_D_FLUSH, 0, dlv_msg_flush},
};

/* A queue worker serves the channel: now the credits, and jobs can come. */
static void dlv_on_queue_ready(void *arg)
{
	struct dlv_ctx *ctx = arg;
	dlv_send_ready(ctx, dlv_credits(ctx->w->cfg));
}

/* Every job goes: the queue hands them out again once we are back. */
static void dlv_drop_all_jobs(struct dlv_ctx *ctx)
{
	struct dlv_dest *d;
	struct dlv_job *job;
	size_t it = 0;

	LIST_FOREACH(d, &ctx->dests, entry)
		while ((job = dlv_dest_pop(d)) != NULL)
			dlv_job_free(ctx, job);
	while ((job = idmap_next(&ctx->jobs, &it)) != NULL) {
		if (job->sess)
			dlv_session_abort(job->sess);
		dlv_job_free(ctx, job);
	}
}

static int dlv_on_queue_lost(void *arg)
{
	struct dlv_ctx *ctx = arg;

	log_warnx("lost the queue; dropping jobs in progress and reconnecting");
	dlv_drop_all_jobs(ctx);
	return 1;
}

/* ---- TLS and reload ---- */

SSL_CTX *dlv_tls_ctx(struct dlv_ctx *ctx, enum tls_policy policy, char *err, size_t errsz)
{
	int verify = policy == TLS_POLICY_VERIFY;
	SSL_CTX **slot = verify ? &ctx->tls_verify_ctx : &ctx->tls_ctx;

	const struct config *cfg = ctx->w->cfg;
	const struct cfg_file *ca = cfg->tls_ca_file ? config_file(cfg, cfg->tls_ca_file) : NULL;

	if (*slot == NULL)
		*slot = tls_client_ctx(verify, ca ? ca->data : NULL, ca ? ca->len : 0, err, errsz);
	return *slot;
}

/* Reload, phase one: the new keys, or a refusal. */
static int dlv_prepare(struct worker *w, const struct config *ncfg, char *err, size_t errsz)
{
	struct dlv_ctx *ctx = w->ctx;
	dlv_dkim_release(ctx->next_dkim);
	ctx->next_dkim = dlv_dkim_load(ncfg, err, errsz);
	return ctx->next_dkim != NULL ? 0 : -1;
}

static void dlv_abort(struct worker *w)
{
	struct dlv_ctx *ctx = w->ctx;
	dlv_dkim_release(ctx->next_dkim);
	ctx->next_dkim = NULL;
}

static void dlv_reload(struct worker *w)
{
	struct dlv_ctx *ctx = w->ctx;
	char err[256];

	/* A message being signed keeps its reference to the old keys. */
	dlv_dkim_release(ctx->dkim);
	ctx->dkim = ctx->next_dkim;
	ctx->next_dkim = NULL;

	/* Sessions in TLS keep their contexts: OpenSSL counts references. */
	SSL_CTX_free(ctx->tls_ctx);
	SSL_CTX_free(ctx->tls_verify_ctx);
	ctx->tls_ctx = ctx->tls_verify_ctx = NULL;
	if (resolver_reload(ctx->res, w->cfg, err, sizeof(err)) < 0)
		log_warnx("reload: keeping the old DNS servers: %s", err);
	/* Next hops may have changed with the config: try them afresh. */
	dlv_dest_forget(ctx, NULL, 0);
}

void delivery_main(struct worker *w)
{
	struct dlv_ctx *ctx = xcalloc(1, sizeof(*ctx));
	char err[256];

	ctx->w = w;
	ctx->loop = w->loop;
	LIST_INIT(&ctx->dests);
	ev_timer_init(&ctx->dispatch_timer, dlv_dispatch, ctx);
	ctx->res = resolver_new(ctx->loop, w->cfg, err, sizeof(err));
	if (ctx->res == NULL)
		fatal("delivery: cannot start the resolver: %s", err);
	w->ctx = ctx;
	w->on_ctl = dlv_ctl;
	ctx->dkim = dlv_dkim_load(w->cfg, err, sizeof(err));
	if (ctx->dkim == NULL)
		fatal("delivery: %s", err);
	w->on_prepare = dlv_prepare;
	w->on_reload = dlv_reload;
	w->on_abort = dlv_abort;
	ctx->queue.w = w;
	ctx->queue.role = ROLE_DELIVERY;
	ctx->queue.table = dlv_queue_handlers;
	ctx->queue.ntable = sizeof(dlv_queue_handlers) / sizeof(dlv_queue_handlers[0]);
	ctx->queue.arg = ctx;
	ctx->queue.on_ready = dlv_on_queue_ready;
	ctx->queue.on_lost = dlv_on_queue_lost;
	ctx->queue.late_note = "no deliveries until one does";
	queue_client_start(&ctx->queue, 0);
	ev_run(ctx->loop);
}
