/*
 * master_metrics.c - `metrics-listen`: the Prometheus endpoint (GET
 * /metrics, text exposition format 0.0.4), served by the master.
 *
 * The master polls every worker once a second with a "metrics" control
 * request and keeps the latest figures; a scrape is answered from them at
 * once, so a scrape never waits for (or blocks) a worker, and a worker that
 * is slow to answer only makes the figures a second older. Workers count
 * since they started: when one dies, the master folds its last counters
 * into totals of its own, so counters survive worker restarts (increments
 * made after the last poll before the death, at most a second's worth, are
 * lost). Gauges come only from running workers.
 *
 * HTTP is libmicrohttpd in its epoll mode without threads: its epoll fd
 * sits in the master's loop and MHD_run() runs from there. Hostile peers
 * are bounded by MHD: a connection cap, an idle timeout and a per
 * connection memory limit that caps the request size.
 */
#include "master.h"
#include "common/buf.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_POLL_MS 1000
#define METRICS_MAX_SERIES 512
#define METRICS_HTTP_CONNECTIONS 16
#define METRICS_HTTP_TIMEOUT_S 10
#define METRICS_HTTP_MEMORY (16 * 1024) /* a request's headers must fit */
/* A worker's answer, at most: its lines beyond it are left out. */
#define METRICS_ANSWER_MAX (256 * 1024)

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

static const char *const metric_type_names[] = {
	[M_COUNTER] = "counter", [M_GAUGE] = "gauge", [M_HISTOGRAM] = "histogram",
};

/* Every family the endpoint shows; workers' lines name one of these. */
static const struct metric_family {
	const char *name;
	enum metric_type type;
	const char *help;
} metric_families[] = {
	{"relayd_connections_in_total", M_COUNTER, "SMTP connections accepted by intake."},
	{"relayd_connections_in_active", M_GAUGE, "SMTP sessions open in intake now."},
	{"relayd_tls_in_total", M_COUNTER, "TLS sessions established by intake clients."},
	{"relayd_messages_received_total", M_COUNTER, "Messages accepted and queued."},
	{"relayd_messages_rejected_total", M_COUNTER,
	 "SMTP commands and connections refused by policy."},
	{"relayd_connections_out_total", M_COUNTER, "Outbound SMTP connections made."},
	{"relayd_connect_failures_total", M_COUNTER, "Outbound connections that failed."},
	{"relayd_tls_out_total", M_COUNTER, "Outbound TLS sessions established."},
	{"relayd_recipients_delivered_total", M_COUNTER, "Recipients delivered."},
	{"relayd_recipients_deferred_total", M_COUNTER, "Temporary delivery failures."},
	{"relayd_recipients_bounced_total", M_COUNTER, "Recipients given up on (bounced)."},
	{"relayd_nexthop_deliveries_total", M_COUNTER,
	 "Recipient outcomes by next hop (the first ones seen; the rest as \"other\")."},
	{"relayd_queue_messages", M_GAUGE, "Messages in the queue."},
	{"relayd_queue_recipients", M_GAUGE, "Recipients in the queue by state."},
	{"relayd_queue_oldest_message_age_seconds", M_GAUGE,
	 "Age of the oldest message in the queue (0: empty)."},
	{"relayd_delivery_latency_seconds", M_HISTOGRAM,
	 "Time from arrival to a recipient's final outcome (sent or bounced)."},
	{"relayd_worker_restarts_total", M_COUNTER, "Workers restarted after they died."},
	{"relayd_worker_up", M_GAUGE, "1 when the worker runs."},
};

#define METRICS_NFAMILIES (sizeof(metric_families) / sizeof(metric_families[0]))

struct metric_series {
	char key[192];                   /* name{labels} */
	size_t family;
	double base;                     /* folded from dead workers, and the master's own */
	double cur[MASTER_NWORKERS];     /* the latest poll of each running worker */
	unsigned has_cur;                /* bit per worker */
	int has_base;
};

struct master_metrics {
	struct master *m;
	struct MHD_Daemon *httpd;
	int listen_fd;
	int epoll_fd;
	struct ev_timer http_timer;
	struct ev_timer poll_timer;
	struct metric_series series[METRICS_MAX_SERIES];
	size_t nseries;
	int full_warned;
	struct buf part[MASTER_NWORKERS]; /* a long answer's parts so far */
	/* bit per worker: a poll is out, unanswered. A slow worker gets no
	 * other, so polls never pile up in its channel. */
	unsigned polled;
};

static int metrics_worker_index(const struct master *m, const struct master_worker *mw)
{
	return (int)(mw - m->workers);
}

/* The series a histogram family x has besides x itself: x_bucket{le=...}... */
static const char *const metric_histogram_suffixes[] = {"_bucket", "_sum", "_count"};

/* The family of a series name ("x_bucket{le=...}" is x's), or -1. */
static int metrics_family_of(const char *key)
{
	size_t n = strcspn(key, "{");
	for (size_t i = 0; i < METRICS_NFAMILIES; i++) {
		const struct metric_family *f = &metric_families[i];
		size_t fl = strlen(f->name);
		if (n < fl || strncmp(key, f->name, fl) != 0)
			continue;
		if (n == fl)
			return (int)i;
		if (f->type != M_HISTOGRAM)
			continue;
		for (size_t j = 0; j < sizeof(metric_histogram_suffixes) /
					       sizeof(metric_histogram_suffixes[0]); j++)
			if (strlen(metric_histogram_suffixes[j]) == n - fl &&
			    strncmp(key + fl, metric_histogram_suffixes[j], n - fl) == 0)
				return (int)i;
	}
	return -1;
}

static struct metric_series *metrics_series(struct master_metrics *mm, const char *key)
{
	for (size_t i = 0; i < mm->nseries; i++)
		if (strcmp(mm->series[i].key, key) == 0)
			return &mm->series[i];
	int fam = metrics_family_of(key);
	if (fam < 0 || strlen(key) >= sizeof(mm->series[0].key))
		return NULL;
	if (mm->nseries == METRICS_MAX_SERIES) {
		if (!mm->full_warned)
			log_warnx("metrics: more than %d series; new ones are left out",
				  METRICS_MAX_SERIES);
		mm->full_warned = 1;
		return NULL;
	}
	struct metric_series *s = &mm->series[mm->nseries++];
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->family = (size_t)fam;
	return s;
}

/* One worker's answer, "series value" lines: its figures now. */
static void metrics_take(struct master_metrics *mm, int w, const char *text)
{
	unsigned bit = 1u << w;
	for (size_t i = 0; i < mm->nseries; i++)
		mm->series[i].has_cur &= ~bit;
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char key[256];
		double v;
		const char *sp = memrchr(line, ' ', len);
		if (sp != NULL && (size_t)(sp - line) < sizeof(key) &&
		    sscanf(sp + 1, "%lf", &v) == 1) {
			memcpy(key, line, (size_t)(sp - line));
			key[sp - line] = '\0';
			struct metric_series *s = metrics_series(mm, key);
			if (s != NULL) {
				s->cur[w] = v;
				s->has_cur |= bit;
			}
		}
		line += len + (nl != NULL);
	}
}

/* A piece of a worker's answer, kept up to METRICS_ANSWER_MAX. */
static void metrics_part_add(struct master_metrics *mm, int w, const void *p, size_t n)
{
	size_t have = buf_avail(&mm->part[w]);
	if (have >= METRICS_ANSWER_MAX)
		return;
	buf_append(&mm->part[w], p, n < METRICS_ANSWER_MAX - have ? n : METRICS_ANSWER_MAX - have);
}

void master_metrics_reply(struct master_worker *mw, const struct ipc_msg_ctl_rep *rep)
{
	struct master_metrics *mm = mw->m->metrics;
	if (mm == NULL)
		return;
	int w = metrics_worker_index(mw->m, mw);
	mm->polled &= ~(1u << w);
	metrics_part_add(mm, w, rep->text.p, rep->text.n);
	buf_append(&mm->part[w], "", 1);
	char *text = (char *)buf_head(&mm->part[w]);
	if (buf_avail(&mm->part[w]) > METRICS_ANSWER_MAX) {
		/* Cut: its last line may be cut in a figure, which would be read wrong. */
		char *nl = strrchr(text, '\n');
		*(nl ? nl + 1 : text) = '\0';
		log_warnx("metrics: the %s worker's answer reached %d bytes; the rest is left out",
			  mw->role, METRICS_ANSWER_MAX);
	}
	if (rep->status == 0)
		metrics_take(mm, w, text);
	else
		log_warnx("metrics: the %s worker did not answer: %s", mw->role,
			  (const char *)buf_head(&mm->part[w]));
	buf_reset(&mm->part[w]);
}

void master_metrics_part(struct master_worker *mw, const struct ipc_msg_ctl_part *part)
{
	struct master_metrics *mm = mw->m->metrics;
	if (mm != NULL)
		metrics_part_add(mm, metrics_worker_index(mw->m, mw), part->text.p, part->text.n);
}

/* A worker died: its counters so far become the master's. */
void master_metrics_worker_gone(struct master_worker *mw, int restarting)
{
	struct master_metrics *mm = mw->m->metrics;
	if (mm == NULL)
		return;
	int w = metrics_worker_index(mw->m, mw);
	unsigned bit = 1u << w;
	for (size_t i = 0; i < mm->nseries; i++) {
		struct metric_series *s = &mm->series[i];
		if ((s->has_cur & bit) && metric_families[s->family].type != M_GAUGE) {
			s->base += s->cur[w];
			s->has_base = 1;
		}
		s->has_cur &= ~bit;
	}
	mm->polled &= ~bit;
	buf_reset(&mm->part[w]);
	if (!restarting)
		return;
	char key[128];
	snprintf(key, sizeof(key), "relayd_worker_restarts_total{role=\"%s\"}", mw->role);
	struct metric_series *s = metrics_series(mm, key);
	if (s != NULL) {
		s->base += 1;
		s->has_base = 1;
	}
}

static void metrics_poll(void *arg)
{
	struct master_metrics *mm = arg;
	struct master *m = mm->m;
	char *argv[] = {"metrics"};
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		if (!mw->enabled || mw->pid == 0 || mw->chan == NULL || !ipc_is_open(mw->chan) ||
		    (mm->polled & (1u << i)))
			continue;
		mm->polled |= 1u << i;
		struct ipc_msg_ctl_req req = {.reqid = MASTER_METRICS_REQID | mw->ctl_target,
					      .argc = 1};
		req.argv[0] = ipc_str(argv[0]);
		struct ipc_wr wr;
		ipc_wr_init(&wr);
		ipc_msg_ctl_req_encode(&wr, &req);
		ipc_send_wr(mw->chan, MSG_CTL_REQ, &wr);
		ipc_wr_free(&wr);
	}
	ev_timer_start(m->loop, &mm->poll_timer, METRICS_POLL_MS);
}

static void metrics_render(struct master_metrics *mm, struct buf *out)
{
	const struct master *m = mm->m;
	for (size_t f = 0; f < METRICS_NFAMILIES; f++) {
		const struct metric_family *fam = &metric_families[f];
		buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
			    metric_type_names[fam->type]);
		if (strcmp(fam->name, "relayd_worker_up") == 0) {
			for (int i = 0; i < MASTER_NWORKERS; i++)
				if (m->workers[i].enabled)
					buf_appendf(out, "relayd_worker_up{role=\"%s\"} %d\n",
						    m->workers[i].role, m->workers[i].pid != 0);
			continue;
		}
		for (size_t i = 0; i < mm->nseries; i++) {
			const struct metric_series *s = &mm->series[i];
			if (s->family != f || (!s->has_base && s->has_cur == 0))
				continue;
			double v = fam->type == M_GAUGE ? 0 : s->base;
			for (int w = 0; w < MASTER_NWORKERS; w++)
				if (s->has_cur & (1u << w))
					v += s->cur[w];
			if (fam->type == M_GAUGE && s->has_cur == 0)
				continue;
			buf_appendf(out, "%s %.17g\n", s->key, v);
		}
	}
}

static enum MHD_Result metrics_answer(struct MHD_Connection *c, unsigned status,
				      const char *type, const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The request's headers are in; a body, if any, is not read. */
static enum MHD_Result metrics_request(void *cls, struct MHD_Connection *c, const char *url,
				       const char *method, const char *version,
				       const char *upload, size_t *upload_size, void **con_cls)
{
	struct master_metrics *mm = cls;
	static const char text_type[] = "text/plain; charset=utf-8";
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return metrics_answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, text_type,
				      "method not allowed\n", 19);
	if (strcmp(url, "/metrics") != 0)
		return metrics_answer(c, MHD_HTTP_NOT_FOUND, text_type, "try /metrics\n", 13);
	struct buf out;
	buf_init(&out);
	metrics_render(mm, &out);
	enum MHD_Result ret = metrics_answer(c, MHD_HTTP_OK,
					     "text/plain; version=0.0.4; charset=utf-8",
					     (const char *)buf_head(&out), buf_avail(&out));
	buf_free(&out);
	return ret;
}

/* MHD_run when MHD asks for it: its fds are ready, or a timeout is due. */
static unsigned metrics_http_conns(struct master_metrics *mm)
{
	const union MHD_DaemonInfo *i =
		MHD_get_daemon_info(mm->httpd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return i ? i->num_connections : 0;
}

static void metrics_http_run(struct master_metrics *mm)
{
	MHD_UNSIGNED_LONG_LONG ms;
	unsigned before = metrics_http_conns(mm);
	MHD_run(mm->httpd);
	/* At the connection cap MHD takes its listening socket out of its
	 * epoll set and puts it back only at the start of a run: after one
	 * that closed connections, run again or new ones wait unseen. */
	if (metrics_http_conns(mm) < before)
		MHD_run(mm->httpd);
	if (MHD_get_timeout(mm->httpd, &ms) == MHD_YES)
		ev_timer_start(mm->m->loop, &mm->http_timer, ms);
	else
		ev_timer_stop(mm->m->loop, &mm->http_timer);
}

static void metrics_http_io(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	metrics_http_run(arg);
}

static void metrics_http_timeout(void *arg)
{
	metrics_http_run(arg);
}

static void metrics_mhd_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];
	(void)arg;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("metrics http: %s", msg);
}

int master_metrics_open(struct master *m)
{
	const struct cfg_listen *l = &m->cfg->metrics_listen;
	if (l->addrlen == 0)
		return 0;
	struct master_metrics *mm = xcalloc(1, sizeof(*mm));
	mm->m = m;
	mm->epoll_fd = mm->listen_fd = -1;
	for (int i = 0; i < MASTER_NWORKERS; i++)
		buf_init(&mm->part[i]);
	ev_timer_init(&mm->http_timer, metrics_http_timeout, mm);
	ev_timer_init(&mm->poll_timer, metrics_poll, mm);
	m->metrics = mm;
	mm->listen_fd = master_tcp_listen(l);
	if (mm->listen_fd < 0) {
		log_errx("metrics-listen %s: %s", l->text, strerror(errno));
		return -1;
	}
	mm->httpd = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, metrics_request, mm,
		MHD_OPTION_EXTERNAL_LOGGER, metrics_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, mm->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_MEMORY,
		MHD_OPTION_END);
	if (mm->httpd == NULL) {
		log_errx("metrics-listen %s: the HTTP server did not start", l->text);
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(mm->httpd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || ev_io_add(m->loop, info->epoll_fd, EPOLLIN, metrics_http_io, mm) < 0) {
		log_errx("metrics-listen %s: cannot watch the HTTP server", l->text);
		return -1;
	}
	mm->epoll_fd = info->epoll_fd;
	ev_timer_start(m->loop, &mm->poll_timer, 0);
	log_info("metrics on http://%s/metrics", l->text);
	return 0;
}

void master_metrics_close(struct master *m)
{
	struct master_metrics *mm = m->metrics;
	if (mm == NULL)
		return;
	ev_timer_stop(m->loop, &mm->poll_timer);
	ev_timer_stop(m->loop, &mm->http_timer);
	if (mm->epoll_fd >= 0)
		ev_io_del(m->loop, mm->epoll_fd);
	/* MHD closes the listening socket it was given. */
	if (mm->httpd != NULL)
		MHD_stop_daemon(mm->httpd);
	else if (mm->listen_fd >= 0)
		close(mm->listen_fd);
	for (int i = 0; i < MASTER_NWORKERS; i++)
		buf_free(&mm->part[i]);
	free(mm);
	m->metrics = NULL;
}
