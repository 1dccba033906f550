/*
 * queue_sched.c - job selection, result handling, backoff, expiry and
 * the decision to send a bounce or a delay notice.
 */
#include "queue/queue_sched.h"
#include "queue/queue_bounce.h"
#include "queue/queue_trace.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/qid.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned queue_backoff(unsigned failures, unsigned min, unsigned max)
{
	uint64_t d = min ? min : 1;
	for (unsigned i = 1; i < failures && d < max; i++)
		d *= 2;
	return (unsigned)(d > max ? max : d);
}

unsigned queue_jitter(unsigned delay, unsigned pct)
{
	uint64_t span = (uint64_t)delay * pct / 100;
	return span == 0 ? delay : delay - arc4random_uniform((uint32_t)span + 1);
}

/* A growable list of recipients collected from a query. */
struct queue_rlist {
	struct queue_rcpt *v;
	size_t n, cap;
	int state; /* only this state; -1 all */
};

static void queue_rlist_push(struct queue_rlist *l, const struct queue_rcpt *r)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = *r;
}

static int queue_rlist_add(const struct queue_rcpt *r, void *arg)
{
	struct queue_rlist *l = arg;
	if (l->state < 0 || r->state == l->state)
		queue_rlist_push(l, r);
	return 0;
}

/* The failed and the relayed recipients of a message, from one query. */
struct queue_settled {
	struct queue_rlist failed, relayed;
};

static int queue_settled_add(const struct queue_rcpt *r, void *arg)
{
	struct queue_settled *st = arg;
	if (r->state == RS_FAILED)
		queue_rlist_push(&st->failed, r);
	else if (r->state == RS_RELAYED)
		queue_rlist_push(&st->relayed, r);
	return 0;
}

static int queue_pick_add(const struct queue_rcpt *r, void *arg)
{
	struct queue_pick *p = arg;
	p->rcpts[p->n].id = r->id;
	snprintf(p->rcpts[p->n].address, sizeof(p->rcpts[p->n].address), "%s", r->address);
	p->rcpts[p->n].notify = r->notify;
	memcpy(p->rcpts[p->n].orcpt, r->orcpt, sizeof(p->rcpts[p->n].orcpt));
	return ++p->n == QUEUE_JOB_MAX_RCPTS;
}

int queue_sched_pick(struct queue_store *st, int64_t now, struct queue_pick *p)
{
	struct queue_rcpt first;
	for (;;) {
		int rc = queue_store_first_due(st, now, &first);
		if (rc <= 0)
			return rc;
		rc = queue_store_msg_get(st, first.qid, &p->msg);
		if (rc < 0)
			return -1;
		if (rc == 1 && p->msg.complete)
			break;
		/* Cannot happen through this code; repair rather than loop. */
		log_warnx("queue.db: recipient %lld of missing message %s removed",
			  (long long)first.id, first.qid);
		if (queue_store_rcpt_delete(st, first.id) < 0)
			return -1;
	}
	snprintf(p->domain, sizeof(p->domain), "%s", first.domain);
	p->n = 0;
	if (queue_store_due_group(st, first.qid, first.domain, now, queue_pick_add, p) < 0)
		return -1;
	for (size_t i = 0; i < p->n; i++)
		if (queue_store_rcpt_set_state(st, p->rcpts[i].id, RS_INFLIGHT) < 0)
			return -1;
	return 1;
}

void queue_msg_headers(struct queue_store *st, const struct queue_msg *m, struct buf *out)
{
	for (uint32_t seq = 0; seq < m->nchunks; seq++) {
		if (queue_store_chunk_get(st, m->qid, seq, out) <= 0)
			break;
		size_t n = queue_dsn_header_len((const char *)buf_head(out), buf_avail(out),
						QUEUE_DSN_MAX_HEADERS);
		if (n < buf_avail(out) || n == QUEUE_DSN_MAX_HEADERS) {
			out->len = out->off + n;
			return;
		}
	}
}

/* The whole content of a message appended to out; -1 when a chunk is missing. */
static int queue_msg_content(struct queue_store *st, const struct queue_msg *m, struct buf *out)
{
	for (uint32_t seq = 0; seq < m->nchunks; seq++)
		if (queue_store_chunk_get(st, m->qid, seq, out) <= 0)
			return -1;
	return 0;
}

/*
 * Whether a message's header section holds 8-bit octets. Such a message
 * comes back as its headers only: a report must reach old next hops too,
 * and the downgrade can encode a header block, while a whole message with
 * a UTF-8 address in From: cannot be made 7-bit.
 */
static int queue_headers_8bit(const struct buf *m)
{
	const char *p = (const char *)buf_head(m);
	size_t n = queue_dsn_header_len(p, buf_avail(m), buf_avail(m));
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

static int queue_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

int queue_dsn_enqueue(struct queue_store *st, const struct queue_policy *pol,
		      const struct queue_msg *orig, int action, const struct queue_rcpt *rcpts,
		      size_t n, const char *to, int64_t now, char newqid[QUEUE_QID_MAX])
{
	struct buf content, text, transcript;
	struct queue_dsn_rcpt *dr = xcalloc(n ? n : 1, sizeof(*dr));
	struct queue_msg m;
	int postmaster_copy = strcmp(to, orig->sender) != 0;
	int ret = -1;

	buf_init(&content);
	buf_init(&text);
	buf_init(&transcript);
	/* The whole message with a failure report, as Postfix, unless it is
	 * big or the sender asked for headers only (RET=HDRS). */
	int full = action == DSN_FAILED && orig->size <= pol->bounce_size_limit &&
		   orig->dsn_ret != DSN_RET_HDRS;
	if (full && (queue_msg_content(st, orig, &content) < 0 || queue_headers_8bit(&content))) {
		buf_reset(&content);
		full = 0;
	}
	if (!full)
		queue_msg_headers(st, orig, &content);
	queue_trace_brief(st, orig->qid, rcpts, n, &transcript);
	for (size_t i = 0; i < n; i++) {
		dr[i].address = rcpts[i].address;
		dr[i].orcpt = rcpts[i].orcpt;
		dr[i].status = rcpts[i].last_enh;
		dr[i].text = rcpts[i].last_error;
		dr[i].reply = rcpts[i].reply;
		dr[i].remote_mta = rcpts[i].relay;
	}
	qid_new(newqid);
	struct queue_dsn d = {
		.action = (enum queue_dsn_action)action, .postmaster_copy = postmaster_copy,
		.hostname = pol->hostname, .qid = newqid, .orig_qid = orig->qid, .to = to,
		.envid = orig->envid, .arrival = orig->arrival, .now = now, .rcpts = dr,
		.nrcpts = n, .transcript = (const char *)buf_head(&transcript),
		.content = (const char *)buf_head(&content), .content_len = buf_avail(&content),
		.full = full, .utf8 = (orig->body_flags & BODY_SMTPUTF8) != 0,
	};
	queue_dsn_build(&d, &text);

	memset(&m, 0, sizeof(m));
	snprintf(m.qid, sizeof(m.qid), "%s", newqid);
	m.arrival = now;
	snprintf(m.helo, sizeof(m.helo), "%s", pol->hostname);
	m.kind = postmaster_copy ? QUEUE_KIND_DOUBLE_BOUNCE : QUEUE_KIND_REPORT;
	/* BODY= and SMTPUTF8 only as needed, so that a report reaches old hosts. */
	for (size_t i = 0; i < buf_avail(&text) && !(m.body_flags & BODY_8BITMIME); i++)
		if (buf_head(&text)[i] >= 0x80)
			m.body_flags |= BODY_8BITMIME;
	if (!queue_ascii(to) || (orig->body_flags & BODY_SMTPUTF8))
		m.body_flags |= BODY_SMTPUTF8;
	if (queue_store_msg_add(st, &m) < 0 || queue_store_rcpt_add(st, newqid, to, 0, "") < 0)
		goto fail;
	uint32_t seq = 0;
	for (size_t off = 0; off < buf_avail(&text); off += IPC_CHUNK_SIZE, seq++) {
		size_t len = buf_avail(&text) - off;
		if (queue_store_chunk_add(st, newqid, seq, buf_head(&text) + off,
					  len > IPC_CHUNK_SIZE ? IPC_CHUNK_SIZE : len) < 0)
			goto fail;
	}
	if (queue_store_msg_complete(st, newqid, buf_avail(&text), seq, now) < 0)
		goto fail;
	static const char *const what[] = {
		[DSN_FAILED] = "non-delivery", [DSN_DELAYED] = "delay", [DSN_RELAYED] = "success",
	};
	log_msg(LOG_INFO, orig->qid, "%s%s notification: %s",
		postmaster_copy ? "postmaster " : "sender ", what[action], newqid);
	log_msg(LOG_INFO, newqid, "from=<>, size=%zu, nrcpt=1", buf_avail(&text));
	ret = 0;
fail:
	buf_free(&content);
	buf_free(&text);
	buf_free(&transcript);
	free(dr);
	return ret;
}

/* Whether a recipient's NOTIFY asks for a report of this kind (none given:
 * failures and delays, RFC 3461 4.1). */
static int queue_notify_wants(const struct queue_rcpt *r, uint32_t bit)
{
	return r->notify == 0 ? bit != DSN_NOTIFY_SUCCESS : (r->notify & bit) != 0;
}

/* Keeps the recipients of l whose NOTIFY asks for bit; the others are logged. */
static void queue_notify_filter(struct queue_rlist *l, uint32_t bit, const char *what)
{
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (queue_notify_wants(&l->v[i], bit))
			l->v[k++] = l->v[i];
		else
			log_msg(LOG_INFO, l->v[i].qid, "to=<%s>: no %s notification (NOTIFY)",
				l->v[i].address, what);
	}
	l->n = k;
}

/* The failure report of a pass: to the sender, or for a message from <>
 * (a report itself) to the postmaster; a postmaster copy that fails is
 * dropped, or two MTAs could bounce reports at each other for ever. */
static int queue_settle_failed(struct queue_store *st, const struct queue_policy *pol,
			       const struct queue_msg *m, struct queue_rlist *failed, int64_t now)
{
	char newqid[QUEUE_QID_MAX];

	if (failed->n == 0)
		return 0;
	if (m->sender[0] != '\0') {
		queue_notify_filter(failed, DSN_NOTIFY_FAILURE, "failure");
		if (failed->n == 0)
			return 0;
		return queue_dsn_enqueue(st, pol, m, DSN_FAILED, failed->v, failed->n, m->sender,
					 now, newqid);
	}
	if (pol->postmaster != NULL && pol->postmaster[0] != '\0' &&
	    m->kind != QUEUE_KIND_DOUBLE_BOUNCE)
		return queue_dsn_enqueue(st, pol, m, DSN_FAILED, failed->v, failed->n,
					 pol->postmaster, now, newqid);
	log_msg(LOG_INFO, m->qid, "undeliverable report discarded (sender <>%s)",
		m->kind == QUEUE_KIND_DOUBLE_BOUNCE ? ", a postmaster copy" : ", no postmaster");
	return 0;
}

int queue_msg_settle(struct queue_store *st, const struct queue_policy *pol, const char *qid,
		     int64_t now)
{
	struct queue_settled done = {{.state = RS_FAILED}, {.state = RS_RELAYED}};
	struct queue_rlist *failed = &done.failed, *relayed = &done.relayed;
	struct queue_msg m;
	char newqid[QUEUE_QID_MAX];
	long inflight = 0, left = 0;
	int ret = -1;

	if (queue_store_inflight_of(st, qid, &inflight) < 0)
		return -1;
	if (inflight > 0)
		return 0;
	int rc = queue_store_msg_get(st, qid, &m);
	if (rc <= 0)
		return rc;
	if (queue_store_rcpts_of(st, qid, queue_settled_add, &done) < 0)
		goto fail;
	size_t reported = failed->n + relayed->n;
	if (queue_settle_failed(st, pol, &m, failed, now) < 0)
		goto fail;
	/* RS_RELAYED rows exist only for NOTIFY=SUCCESS: the sender is not <>. */
	if (relayed->n > 0 && m.sender[0] != '\0' &&
	    queue_dsn_enqueue(st, pol, &m, DSN_RELAYED, relayed->v, relayed->n, m.sender, now,
			      newqid) < 0)
		goto fail;
	/* Reported once: the failed and relayed rows go with their reports. */
	if (reported > 0 && queue_store_failed_delete(st, qid) < 0)
		goto fail;
	if (queue_store_rcpt_count(st, qid, &left) < 0)
		goto fail;
	if (left == 0) {
		if (queue_store_msg_delete(st, qid) < 0)
			goto fail;
		log_msg(LOG_INFO, qid, "removed");
	}
	ret = 0;
fail:
	free(failed->v);
	free(relayed->v);
	return ret;
}

/* One delay notice per message, listing its deferred recipients. */
static int queue_delay_notice(struct queue_store *st, const struct queue_policy *pol,
			      const struct queue_msg *m, int64_t now)
{
	struct queue_rlist deferred = {.state = RS_DEFERRED};
	char newqid[QUEUE_QID_MAX];
	int ret = -1;
	if (queue_store_rcpts_of(st, m->qid, queue_rlist_add, &deferred) < 0)
		goto fail;
	queue_notify_filter(&deferred, DSN_NOTIFY_DELAY, "delay");
	if (deferred.n > 0 && queue_dsn_enqueue(st, pol, m, DSN_DELAYED, deferred.v, deferred.n,
						m->sender, now, newqid) < 0)
		goto fail;
	ret = queue_store_rcpts_warned(st, m->qid);
fail:
	free(deferred.v);
	return ret;
}

/* The delay notice, once the message is old enough (never for <>). */
static int queue_delay_due(struct queue_store *st, const struct queue_policy *pol,
			   const struct queue_rcpt *r, const struct queue_msg *m, int64_t now)
{
	/* Only a recipient that wants one (NOTIFY) sets the message's one notice off. */
	if (pol->delay_warning > 0 && !r->warned && m->sender[0] != '\0' &&
	    queue_notify_wants(r, DSN_NOTIFY_DELAY) &&
	    now - m->arrival >= (int64_t)pol->delay_warning)
		return queue_delay_notice(st, pol, m, now);
	return 0;
}

/* A recipient's final outcome, counted in the latency histogram. */
static void queue_count_final(struct queue_counters *cnt, int64_t delay)
{
	static const int64_t bounds[] = QUEUE_LATENCY_BOUNDS;
	size_t i = 0;
	if (delay < 0)
		delay = 0;
	while (i < QUEUE_LATENCY_NBUCKETS && delay > bounds[i])
		i++;
	cnt->latency[i]++;
	cnt->latency_sum += (uint64_t)delay;
}

/* A temporary failure: retry later, or give up when the message is too old. */
static int queue_result_defer(struct queue_store *st, const struct queue_policy *pol,
			      const struct queue_rcpt *r, const struct queue_msg *m,
			      const struct queue_result *res, int64_t now,
			      struct queue_counters *cnt)
{
	unsigned attempts = r->attempts + 1;
	int64_t age = now - m->arrival;
	int64_t expires = m->arrival + pol->lifetime;

	if (age >= (int64_t)pol->lifetime) {
		char why[600];
		const char *enh = res->enh[0] ? res->enh : "4.4.7";
		snprintf(why, sizeof(why), "gave up after %lld s in the queue: %s", (long long)age,
			 res->text);
		log_msg(LOG_INFO, m->qid, "to=<%s>, relay=none, delay=%lld, dsn=%s, status=bounced (%s)",
			r->address, (long long)age, enh, why);
		cnt->bounced++;
		queue_count_final(cnt, age);
		/* relayd's finding: no remote reply stands for it. */
		return queue_store_rcpt_update(st, r->id, RS_FAILED, attempts, 0, why, enh,
					       res->relay, "");
	}
	/* now is in whole seconds, rounded down: one more, or a retry could
	 * come up to a second before retry-min has passed. */
	int64_t next = now + 1 +
		       queue_jitter(queue_backoff(attempts, pol->retry_min, pol->retry_max),
				    pol->jitter_pct);
	/* The last try falls on the expiry, so the bounce is not late. */
	if (next > expires)
		next = expires;
	cnt->deferred++;
	if (queue_store_rcpt_update(st, r->id, m->hold ? RS_HOLD : RS_DEFERRED, attempts, next,
				    res->text, res->enh, res->relay, res->reply) < 0)
		return -1;
	return queue_delay_due(st, pol, r, m, now);
}

/*
 * Deferred without a connection, because delivery remembers the next hop
 * as dead: no attempt was made, so the attempt count and backoff step stay;
 * the recipient comes back when that memory ends. Past the lifetime it
 * gives up like any deferral.
 */
static int queue_result_suspend(struct queue_store *st, const struct queue_policy *pol,
				const struct queue_rcpt *r, const struct queue_msg *m,
				const struct queue_result *res, int64_t now,
				struct queue_counters *cnt)
{
	int64_t expires = m->arrival + pol->lifetime;
	int64_t next = res->suspended_until;
	int state = r->attempts > 0 ? RS_DEFERRED : RS_QUEUED;

	if (now >= expires)
		return queue_result_defer(st, pol, r, m, res, now, cnt);
	if (next > expires)
		next = expires;
	cnt->deferred++;
	if (queue_store_rcpt_update(st, r->id, m->hold ? RS_HOLD : state, r->attempts, next,
				    res->text, res->enh, res->relay, "") < 0)
		return -1;
	return queue_delay_due(st, pol, r, m, now);
}

int queue_result_apply(struct queue_store *st, const struct queue_policy *pol,
		       const struct queue_result *res, int64_t now, struct queue_counters *cnt)
{
	struct queue_rcpt r;
	struct queue_msg m;
	int rc = queue_store_rcpt_get(st, res->rcptid, &r);
	if (rc < 0)
		return -1;
	if (rc == 0 || r.state != RS_INFLIGHT) {
		log_debug("result for recipient %lld that is not in flight", (long long)res->rcptid);
		return 0;
	}
	if ((rc = queue_store_msg_get(st, r.qid, &m)) <= 0)
		return rc;
	switch (res->dclass) {
	case DLV_SENT:
		cnt->delivered++;
		queue_count_final(cnt, now - m.arrival);
		/* A next hop with DSN took NOTIFY on; one without it ends it here. */
		if ((res->flags & RESULT_DSN_RELAYED) && (r.notify & DSN_NOTIFY_SUCCESS))
			rc = queue_store_rcpt_update(st, r.id, RS_RELAYED, r.attempts + 1, 0,
						     res->text, res->enh, res->relay, res->reply);
		else
			rc = queue_store_rcpt_delete(st, r.id);
		break;
	case DLV_BOUNCED:
		cnt->bounced++;
		queue_count_final(cnt, now - m.arrival);
		rc = queue_store_rcpt_update(st, r.id, RS_FAILED, r.attempts + 1, 0, res->text,
					     res->enh, res->relay, res->reply);
		break;
	case DLV_DEFERRED:
		rc = res->suspended_until > 0 ? queue_result_suspend(st, pol, &r, &m, res, now, cnt)
					      : queue_result_defer(st, pol, &r, &m, res, now, cnt);
		break;
	default:
		fatal("queue_result_apply: class %u", res->dclass);
	}
	if (rc < 0)
		return -1;
	return queue_msg_settle(st, pol, r.qid, now);
}
