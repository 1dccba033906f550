/*
 * queue_ctl.c - the relayctl commands the queue answers (queue, show,
 * flush, hold, release, delete, stats), one table row each, and the
 * master's metrics poll. Commands that
 * change the queue commit before they answer. What they print is safe for
 * a terminal, and --json is valid UTF-8 whatever bytes were stored.
 */
#include "queue/queue.h"
#include "queue/queue_trace.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/printable.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*queue_ctl_fn)(struct queue *q, int argc, char **argv, struct buf *out);

static void queue_ctl_time(int64_t t, char *dst, size_t dstsz)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(dst, dstsz, "%Y-%m-%d %H:%M:%S", &tm);
}

static int queue_no_such(struct buf *out, const char *qid)
{
	buf_appendf(out, "relayctl: no such message: %s\n", qid);
	return 1;
}

/* A complete message by id: 1 found, 0 not (message in out), -1 store error. */
static int queue_ctl_msg(struct queue *q, const char *qid, struct queue_msg *m, struct buf *out)
{
	int rc = queue_store_msg_get(q->st, qid, m);
	if (rc == 1 && m->complete)
		return 1;
	if (rc < 0) {
		buf_appendf(out, "relayctl: queue error: %s\n", queue_store_errmsg(q->st));
		return -1;
	}
	queue_no_such(out, qid);
	return 0;
}

/* Commits what a command changed; its status. */
static int queue_ctl_commit(struct queue *q, struct buf *out)
{
	if (queue_commit(q) < 0) {
		buf_reset(out);
		buf_appendf(out, "relayctl: queue error: the change was not saved\n");
		return 1;
	}
	queue_kick(q);
	return 0;
}

struct queue_list_ctx {
	struct queue *q;
	struct buf *out;
	int json;
	int first_rcpt;
	size_t n;         /* entries listed */
};

static int queue_list_rcpt(const struct queue_rcpt *r, void *arg)
{
	struct queue_list_ctx *c = arg;
	char next[32];
	if (c->json) {
		buf_appendf(c->out, "%s{\"address\":", c->first_rcpt ? "" : ",");
		printable_json(c->out, r->address);
		buf_appendf(c->out, ",\"state\":\"%s\",\"attempts\":%u,\"next_attempt\":%lld,"
			    "\"last_error\":", queue_rstate_name(r->state), r->attempts,
			    (long long)r->next_attempt);
		printable_json(c->out, r->last_error);
		buf_appendf(c->out, ",\"last_enh\":");
		printable_json(c->out, r->last_enh);
		buf_appendf(c->out, "}");
		c->first_rcpt = 0;
		return 0;
	}
	queue_ctl_time(r->next_attempt, next, sizeof(next));
	buf_appendf(c->out, "    <%s> %s attempts=%u next=%s", r->address,
		    queue_rstate_name(r->state), r->attempts, next);
	if (r->last_error[0])
		buf_appendf(c->out, " last error: %s %s", r->last_enh, r->last_error);
	buf_appendf(c->out, "\n");
	return 0;
}

/* One message with its recipients. */
static int queue_list_entry(const struct queue_msg *m, struct queue_list_ctx *c)
{
	char when[32];
	if (c->json) {
		buf_appendf(c->out, "{\"qid\":\"%s\",\"arrival\":%lld,\"size\":%llu,\"sender\":",
			    m->qid, (long long)m->arrival, (unsigned long long)m->size);
		printable_json(c->out, m->sender);
		buf_appendf(c->out, ",\"hold\":%s,\"recipients\":[", m->hold ? "true" : "false");
		c->first_rcpt = 1;
	} else {
		queue_ctl_time(m->arrival, when, sizeof(when));
		buf_appendf(c->out, "%-16s %10llu %s  <%s>%s\n", m->qid, (unsigned long long)m->size,
			    when, m->sender, m->hold ? " (hold)" : "");
	}
	if (queue_store_rcpts_of(c->q->st, m->qid, queue_list_rcpt, c) < 0)
		return -1;
	if (c->json)
		buf_appendf(c->out, "]}");
	return 0;
}

static int queue_list_msg(const struct queue_msg *m, void *arg)
{
	struct queue_list_ctx *c = arg;
	/* Any length: worker_ctl_reply sends a long listing in parts. */
	if (c->json && c->n > 0)
		buf_append(c->out, ",", 1);
	if (queue_list_entry(m, c) < 0)
		return -1;
	c->n++;
	return 0;
}

/* queue --summary: the busiest domains get a row each, the rest one row. */
#define QUEUE_SHAPE_TOP 50

static const char *const queue_shape_cols[QUEUE_SHAPE_NBUCKETS] = {
	"5m", "10m", "20m", "40m", "80m", "160m", "320m", "640m", "1280m", "1280m+",
};

struct queue_shape_row {
	char domain[256];
	int other;         /* the folded rest (a domain may be "": an address without one) */
	int64_t total, cell[QUEUE_SHAPE_NBUCKETS];
};

struct queue_shape {
	struct queue_shape_row rows[QUEUE_SHAPE_TOP + 1], all;
	size_t n;
	int64_t ndomains;
};

static void queue_shape_cell(const char *domain, unsigned bucket, int64_t n, int64_t rank,
			     void *arg)
{
	struct queue_shape *sh = arg;
	const char *name = domain ? domain : "";
	struct queue_shape_row *last = sh->n > 0 ? &sh->rows[sh->n - 1] : NULL;
	if (bucket >= QUEUE_SHAPE_NBUCKETS)
		fatal("queue shape: bucket %u", bucket);
	/* Rows come grouped, busiest first, the folded rest last. */
	if (last == NULL || last->other != (domain == NULL) || strcmp(last->domain, name) != 0) {
		if (sh->n == QUEUE_SHAPE_TOP + 1)
			fatal("queue shape: more rows than asked for");
		snprintf(sh->rows[sh->n].domain, sizeof(sh->rows[0].domain), "%s", name);
		sh->rows[sh->n++].other = domain == NULL;
	}
	struct queue_shape_row *r = &sh->rows[sh->n - 1];
	r->cell[bucket] += n;
	r->total += n;
	sh->all.cell[bucket] += n;
	sh->all.total += n;
	if (rank > sh->ndomains)
		sh->ndomains = rank;
}

static void queue_shape_json_row(struct buf *out, const struct queue_shape_row *r)
{
	buf_appendf(out, "\"count\":%lld,\"ages\":{", (long long)r->total);
	for (int b = 0; b < QUEUE_SHAPE_NBUCKETS; b++)
		buf_appendf(out, "%s\"%s\":%lld", b ? "," : "", queue_shape_cols[b],
			    (long long)r->cell[b]);
	buf_appendf(out, "}");
}

static void queue_shape_text_row(struct buf *out, const char *name, const struct queue_shape_row *r)
{
	buf_appendf(out, "%-32s %6lld", name, (long long)r->total);
	for (int b = 0; b < QUEUE_SHAPE_NBUCKETS; b++)
		buf_appendf(out, " %6lld", (long long)r->cell[b]);
	buf_appendf(out, "\n");
}

static int queue_ctl_summary(struct queue *q, int json, struct buf *out)
{
	struct queue_shape *sh = xcalloc(1, sizeof(*sh));
	int rc = queue_store_shape(q->st, q->now(), QUEUE_SHAPE_TOP, queue_shape_cell, sh);
	if (rc < 0) {
		buf_appendf(out, "relayctl: queue error: %s\n", queue_store_errmsg(q->st));
		free(sh);
		return 1;
	}
	int folded = sh->n > 0 && sh->rows[sh->n - 1].other;
	if (json) {
		buf_appendf(out, "{\"total\":{");
		queue_shape_json_row(out, &sh->all);
		buf_appendf(out, "},\"domains\":[");
		for (size_t i = 0; i < sh->n - (size_t)folded; i++) {
			buf_appendf(out, "%s{\"domain\":", i ? "," : "");
			printable_json(out, sh->rows[i].domain);
			buf_appendf(out, ",");
			queue_shape_json_row(out, &sh->rows[i]);
			buf_appendf(out, "}");
		}
		buf_appendf(out, "]");
		if (folded) {
			buf_appendf(out, ",\"other\":{\"domains\":%lld,",
				    (long long)(sh->ndomains - QUEUE_SHAPE_TOP));
			queue_shape_json_row(out, &sh->rows[sh->n - 1]);
			buf_appendf(out, "}");
		}
		buf_appendf(out, "}\n");
	} else {
		char other[64];
		buf_appendf(out, "%-32s %6s", "", "T");
		for (int b = 0; b < QUEUE_SHAPE_NBUCKETS; b++)
			buf_appendf(out, " %6s", queue_shape_cols[b]);
		buf_appendf(out, "\n");
		queue_shape_text_row(out, "TOTAL", &sh->all);
		for (size_t i = 0; i < sh->n - (size_t)folded; i++)
			queue_shape_text_row(out, sh->rows[i].domain, &sh->rows[i]);
		snprintf(other, sizeof(other), "(%lld other domains)",
			 (long long)(sh->ndomains - QUEUE_SHAPE_TOP));
		if (folded)
			queue_shape_text_row(out, other, &sh->rows[sh->n - 1]);
	}
	free(sh);
	return 0;
}

static int queue_ctl_queue(struct queue *q, int argc, char **argv, struct buf *out)
{
	int json = 0, summary = 0;
	for (int i = 1; i < argc; i++) {
		json |= strcmp(argv[i], "--json") == 0;
		summary |= strcmp(argv[i], "--summary") == 0;
	}
	if (summary)
		return queue_ctl_summary(q, json, out);
	struct queue_list_ctx c = {.q = q, .out = out, .json = json};
	if (c.json)
		buf_appendf(out, "[");
	if (queue_store_messages(q->st, queue_list_msg, &c) < 0) {
		buf_reset(out);
		buf_appendf(out, "relayctl: queue error: %s\n", queue_store_errmsg(q->st));
		return 1;
	}
	if (c.json)
		buf_appendf(out, "]\n");
	else if (c.n == 0)
		buf_appendf(out, "queue is empty\n");
	else
		buf_appendf(out, "-- %zu message(s)\n", c.n);
	return 0;
}

static int queue_ctl_show(struct queue *q, int argc, char **argv, struct buf *out)
{
	struct queue_msg m;
	struct queue_list_ctx c = {.q = q, .out = out};
	struct buf hdr;
	char when[32];
	(void)argc;
	int rc = queue_ctl_msg(q, argv[1], &m, out);
	if (rc <= 0)
		return 1;
	queue_ctl_time(m.arrival, when, sizeof(when));
	buf_appendf(out, "queue id: %s\narrival: %s\nsize: %llu\nsender: <%s>\n", m.qid, when,
		    (unsigned long long)m.size, m.sender);
	buf_appendf(out, "client: [%s] helo=%s\n", m.client, m.helo);
	if (m.auth_user[0])
		buf_appendf(out, "auth user: %s\n", m.auth_user);
	buf_appendf(out, "body:%s%s\nhold: %s\nrecipients:\n",
		    m.body_flags & BODY_8BITMIME ? " 8BITMIME" : " 7BIT",
		    m.body_flags & BODY_SMTPUTF8 ? " SMTPUTF8" : "", m.hold ? "yes" : "no");
	if (queue_store_rcpts_of(q->st, m.qid, queue_list_rcpt, &c) < 0)
		return 1;
	buf_appendf(out, "headers:\n");
	buf_init(&hdr);
	queue_msg_headers(q->st, &m, &hdr);
	/* Shown with the local line ends. */
	for (size_t i = 0; i < buf_avail(&hdr); i++)
		if (buf_head(&hdr)[i] != '\r')
			buf_append(out, buf_head(&hdr) + i, 1);
	buf_free(&hdr);
	return 0;
}

/* The SMTP dialogue of the latest attempt per destination (queue_trace.c). */
static int queue_ctl_trace(struct queue *q, int argc, char **argv, struct buf *out)
{
	struct queue_msg m;
	(void)argc;
	if (queue_ctl_msg(q, argv[1], &m, out) <= 0)
		return 1;
	if (queue_trace_show(q->st, m.qid, out) < 0) {
		buf_appendf(out, "relayctl: queue error: %s\n", queue_store_errmsg(q->st));
		return 1;
	}
	return 0;
}

static int queue_ctl_flush(struct queue *q, int argc, char **argv, struct buf *out)
{
	struct queue_msg m;
	const char *qid = argc > 1 ? argv[1] : NULL;
	long n = 0;
	if (qid != NULL && queue_ctl_msg(q, qid, &m, out) <= 0)
		return 1;
	/* Before the recipients are due: their jobs follow on the same channel. */
	if (queue_dlv_flush(q, qid) < 0 ||
	    queue_txn(q) < 0 || queue_store_flush(q->st, qid, q->now(), &n) < 0) {
		queue_txn_abort(q);
		buf_appendf(out, "relayctl: queue error\n");
		return 1;
	}
	q->want_commit = 1;
	log_msg(LOG_INFO, qid, "flush by relayctl: %ld recipient(s) due now", n);
	buf_appendf(out, "%ld recipient(s) due now\n", n);
	return queue_ctl_commit(q, out);
}

static int queue_ctl_hold_release(struct queue *q, char **argv, int hold, struct buf *out)
{
	struct queue_msg m;
	if (queue_ctl_msg(q, argv[1], &m, out) <= 0)
		return 1;
	if (queue_txn(q) < 0 || queue_store_msg_hold(q->st, m.qid, hold) < 0) {
		queue_txn_abort(q);
		buf_appendf(out, "relayctl: queue error\n");
		return 1;
	}
	log_msg(LOG_INFO, m.qid, "%s by relayctl", hold ? "held" : "released");
	buf_appendf(out, "%s: %s\n", m.qid, hold ? "on hold" : "released");
	return queue_ctl_commit(q, out);
}

static int queue_ctl_hold(struct queue *q, int argc, char **argv, struct buf *out)
{
	(void)argc;
	return queue_ctl_hold_release(q, argv, 1, out);
}

static int queue_ctl_release(struct queue *q, int argc, char **argv, struct buf *out)
{
	(void)argc;
	return queue_ctl_hold_release(q, argv, 0, out);
}

static int queue_ctl_delete(struct queue *q, int argc, char **argv, struct buf *out)
{
	struct queue_msg m;
	long n = 0;
	int all = strcmp(argv[1], "all") == 0;
	(void)argc;
	if (!all && queue_ctl_msg(q, argv[1], &m, out) <= 0)
		return 1;
	if (queue_txn(q) < 0 ||
	    (all ? queue_store_delete_all(q->st, &n) : queue_store_msg_delete(q->st, m.qid)) < 0) {
		queue_txn_abort(q);
		buf_appendf(out, "relayctl: queue error\n");
		return 1;
	}
	if (all) {
		log_info("%ld message(s) removed by relayctl", n);
		buf_appendf(out, "%ld message(s) deleted\n", n);
	} else {
		log_msg(LOG_INFO, m.qid, "removed by relayctl");
		buf_appendf(out, "%s: deleted\n", m.qid);
	}
	return queue_ctl_commit(q, out);
}

static int queue_ctl_stats(struct queue *q, int argc, char **argv, struct buf *out)
{
	long queued = 0;
	(void)argc;
	(void)argv;
	if (queue_store_count(q->st, &queued) < 0)
		return 1;
	buf_appendf(out, "delivered %llu\ndeferred %llu\nbounced %llu\nqueued %ld\n",
		    (unsigned long long)q->cnt.delivered, (unsigned long long)q->cnt.deferred,
		    (unsigned long long)q->cnt.bounced, queued);
	return 0;
}

/* metrics: the master's poll for its Prometheus endpoint (master_metrics.c
 * names the families). Counters are since this worker started: the master
 * keeps the totals across restarts. */
static int queue_ctl_metrics(struct queue *q, int argc, char **argv, struct buf *out)
{
	static const uint64_t bounds[] = QUEUE_LATENCY_BOUNDS;
	const struct queue_counters *c = &q->cnt;
	int64_t states[RS_NSTATES], oldest = 0;
	long queued = 0;
	uint64_t cum = 0;
	(void)argc;
	(void)argv;
	/* The master logs the text; the figures stay as last polled. */
	if (queue_store_count(q->st, &queued) < 0 || queue_store_gauges(q->st, states, &oldest) < 0) {
		buf_appendf(out, "queue error: %s\n", queue_store_errmsg(q->st));
		return 1;
	}
	buf_appendf(out, "relayd_recipients_delivered_total %llu\n"
		    "relayd_recipients_deferred_total %llu\n"
		    "relayd_recipients_bounced_total %llu\n"
		    "relayd_queue_messages %ld\n"
		    "relayd_queue_oldest_message_age_seconds %lld\n",
		    (unsigned long long)c->delivered, (unsigned long long)c->deferred,
		    (unsigned long long)c->bounced, queued,
		    (long long)(oldest > 0 && q->now() > oldest ? q->now() - oldest : 0));
	for (int s = RS_QUEUED; s < RS_NSTATES; s++)
		buf_appendf(out, "relayd_queue_recipients{state=\"%s\"} %lld\n",
			    queue_rstate_name(s), (long long)states[s]);
	for (int i = 0; i <= QUEUE_LATENCY_NBUCKETS; i++) {
		cum += c->latency[i];
		if (i < QUEUE_LATENCY_NBUCKETS)
			buf_appendf(out, "relayd_delivery_latency_seconds_bucket{le=\"%llu\"} %llu\n",
				    (unsigned long long)bounds[i], (unsigned long long)cum);
		else
			buf_appendf(out, "relayd_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
				    (unsigned long long)cum);
	}
	buf_appendf(out, "relayd_delivery_latency_seconds_sum %llu\n"
		    "relayd_delivery_latency_seconds_count %llu\n",
		    (unsigned long long)c->latency_sum, (unsigned long long)cum);
	return 0;
}

static const struct queue_ctl_cmd {
	const char *name;
	int min_argc;
	queue_ctl_fn fn;
} queue_ctl_cmds[] = {
	{"queue", 1, queue_ctl_queue},
	{"show", 2, queue_ctl_show},
	{"trace", 2, queue_ctl_trace},
	{"flush", 1, queue_ctl_flush},
	{"hold", 2, queue_ctl_hold},
	{"release", 2, queue_ctl_release},
	{"delete", 2, queue_ctl_delete},
	{"stats", 1, queue_ctl_stats},
	{"metrics", 1, queue_ctl_metrics},
};

void queue_ctl(struct worker *w, uint32_t reqid, int argc, char **argv)
{
	struct queue *q = w->ctx;
	struct buf out;
	int status = 2;
	buf_init(&out);
	for (size_t i = 0; i < sizeof(queue_ctl_cmds) / sizeof(queue_ctl_cmds[0]); i++) {
		const struct queue_ctl_cmd *c = &queue_ctl_cmds[i];
		if (strcmp(c->name, argv[0]) != 0)
			continue;
		if (argc >= c->min_argc)
			status = c->fn(q, argc, argv, &out);
		break;
	}
	if (status == 2)
		buf_appendf(&out, "relayctl: usage error\n");
	buf_append(&out, "", 1);
	/* Senders, HELO names, headers and remote replies are outsiders' bytes;
	 * JSON output is escaped already and passes unchanged. */
	printable_except((char *)buf_head(&out), '?', "\n\t");
	worker_ctl_reply(w, reqid, status, (const char *)buf_head(&out));
	buf_free(&out);
}
