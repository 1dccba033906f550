/*
 * intake.c - the intake worker's entry point: accepting SMTP clients on
 * the listeners the master bound (through a PROXY header on proxy
 * listeners), connection limits and stress mode, the
 * TLS context and auth-users table (rebuilt on reload), and `relayctl
 * stats`.
 */
#include "intake.h"
#include "intake_proxy.h"
#include "smtp_session.h"
#include "common/event.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Postfix's stress mode: with more than 80% of max-connections in use,
 * every timeout is at most 10 s, so that slots held by slow or silent
 * clients come free for new ones. It ends only below 70%, so that one
 * client coming and going at the threshold does not flap it.
 */
#define INTAKE_STRESS_ON_PERCENT 80
#define INTAKE_STRESS_OFF_PERCENT 70
#define INTAKE_STRESS_TIMEOUT_MS 10000
/* Out of descriptors: accept nothing for this long, and say so once. */
#define INTAKE_ACCEPT_PAUSE_MS 1000

/* One listener: its descriptor and mode, the argument of its callback. */
struct intake_listener {
	struct intake *in;
	int fd;
	enum listen_mode mode;
	int proxy; /* a PROXY header comes first */
};

static struct intake intake;

uint64_t intake_timeout_ms(const struct intake *in)
{
	uint64_t ms = (uint64_t)in->w->cfg->smtp_timeout * 1000;
	return in->stress && ms > INTAKE_STRESS_TIMEOUT_MS ? INTAKE_STRESS_TIMEOUT_MS : ms;
}

void intake_sessions_changed(struct intake *in)
{
	uint64_t used = (uint64_t)in->nsessions * 100;
	uint64_t max = in->w->cfg->max_connections;

	if (in->stopping)
		return;
	if (!in->stress && used > max * INTAKE_STRESS_ON_PERCENT) {
		in->stress = 1;
		log_warnx("stress: %zu of %llu connections in use; timeouts cut to %llu s",
			  in->nsessions, (unsigned long long)max,
			  (unsigned long long)intake_timeout_ms(in) / 1000);
		for (struct smtp_session *s = in->sessions; s != NULL; s = s->next)
			smtp_session_stress(s);
	} else if (in->stress && used <= max * INTAKE_STRESS_OFF_PERCENT) {
		in->stress = 0;
		log_info("stress over: %zu of %llu connections in use; timeouts back to %u s",
			 in->nsessions, (unsigned long long)max, in->w->cfg->smtp_timeout);
	}
}

static void intake_on_accept(int lfd, uint32_t events, void *arg);

static void intake_listen(struct intake *in, struct intake_listener *l)
{
	if (ev_io_add(in->loop, l->fd, EPOLLIN, intake_on_accept, l) < 0)
		fatal("intake: cannot watch a listener: %s", strerror(errno));
}

static void intake_accept_resume(void *arg)
{
	struct intake *in = arg;

	for (size_t i = 0; i < in->nlisteners; i++)
		intake_listen(in, &in->listeners[i]);
}

/*
 * accept() failed for want of descriptors or memory: the connection stays
 * in the backlog and every wakeup would fail the same way. Listen again
 * after a pause, with one log line per pause.
 */
static void intake_accept_pause(struct intake *in, int err)
{
	if (ev_timer_pending(&in->accept_timer))
		return;
	log_warnx("accept: %s; not accepting connections for %d s", strerror(err),
		  INTAKE_ACCEPT_PAUSE_MS / 1000);
	for (size_t i = 0; i < in->nlisteners; i++)
		ev_io_del(in->loop, in->listeners[i].fd);
	ev_timer_start(in->loop, &in->accept_timer, INTAKE_ACCEPT_PAUSE_MS);
}

/* Connections from the same address as sa. */
static size_t intake_count_peer(const struct intake *in, const struct sockaddr_storage *sa)
{
	size_t n = 0;
	for (const struct smtp_session *s = in->sessions; s != NULL; s = s->next) {
		if (s->peer.ss_family != sa->ss_family)
			continue;
		if (sa->ss_family == AF_INET6) {
			if (memcmp(&((const struct sockaddr_in6 *)&s->peer)->sin6_addr,
				   &((const struct sockaddr_in6 *)sa)->sin6_addr,
				   sizeof(struct in6_addr)) == 0)
				n++;
		} else if (((const struct sockaddr_in *)&s->peer)->sin_addr.s_addr ==
			   ((const struct sockaddr_in *)sa)->sin_addr.s_addr)
			n++;
	}
	return n;
}

void intake_refuse(struct intake *in, int fd, const char *why)
{
	struct buf b;

	buf_init(&b);
	smtp_reply_format(&b, SR_TOO_MANY_CONNS, NULL);
	if (write(fd, buf_head(&b), buf_avail(&b)) < 0)
		log_debug("refusing a client: %s", strerror(errno));
	buf_free(&b);
	close(fd);
	in->stats.rejected++;
	log_info("connection refused: %s", why);
}

/*
 * Full: a client from an address that holds no connection takes the place
 * of the waiting session nearest its deadline, so that a few addresses
 * holding every slot (slowloris) cannot keep newcomers out until their
 * timeouts run out. Returns 1 when room was made.
 */
static int intake_make_room(struct intake *in, const struct sockaddr_storage *sa)
{
	struct smtp_session *victim = NULL;

	if (intake_count_peer(in, sa) > 0)
		return 0;
	for (struct smtp_session *s = in->sessions; s != NULL; s = s->next)
		if (smtp_session_evictable(s) &&
		    (victim == NULL || s->timer.due_ms < victim->timer.due_ms))
			victim = s;
	if (victim == NULL)
		return 0;
	log_info("max-connections reached: [%s] makes room for a new address", victim->ip);
	smtp_session_evict(victim);
	return 1;
}

void intake_admit(struct intake *in, int fd, const struct sockaddr *sa, socklen_t salen,
		  enum listen_mode mode)
{
	const struct config *cfg = in->w->cfg;
	const struct sockaddr_storage *ss = (const struct sockaddr_storage *)sa;

	if (in->nsessions + in->nproxy_waits >= cfg->max_connections &&
	    !intake_make_room(in, ss)) {
		intake_refuse(in, fd, "max-connections reached");
		return;
	}
	if (intake_count_peer(in, ss) >= cfg->max_connections_per_ip) {
		intake_refuse(in, fd, "max-connections-per-ip reached");
		return;
	}
	smtp_session_new(in, fd, sa, salen, mode);
}

static void intake_on_accept(int lfd, uint32_t events, void *arg)
{
	struct intake_listener *l = arg;
	struct intake *in = l->in;
	const struct config *cfg = in->w->cfg;
	(void)events;

	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				intake_accept_pause(in, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				 errno != ECONNABORTED)
				log_warnx("accept: %s", strerror(errno));
			return;
		}
		if (in->stopping) {
			close(fd);
			continue;
		}
		if (l->mode == LISTEN_LOCAL) {
			intake_local_accept(in, fd);
			continue;
		}
		/* The client's address comes with the header: only the total now. */
		if (l->proxy) {
			if (in->nsessions + in->nproxy_waits >= cfg->max_connections)
				intake_refuse(in, fd, "max-connections reached");
			else
				intake_proxy_accept(in, fd, (struct sockaddr *)&sa, salen, l->mode);
			continue;
		}
		intake_admit(in, fd, (struct sockaddr *)&sa, salen, l->mode);
	}
}

/*
 * Reload, phase one: the TLS context and auth-users of ncfg, set aside
 * until the commit. A certificate that does not load refuses the reload,
 * so that a bad file never leaves intake without TLS or AUTH.
 */
static int intake_prepare(struct worker *w, const struct config *ncfg, char *err, size_t errsz)
{
	struct intake *in = w->ctx;
	const struct cfg_file *cf = ncfg->tls_cert ? config_file(ncfg, ncfg->tls_cert) : NULL;
	const struct cfg_file *kf = ncfg->tls_key ? config_file(ncfg, ncfg->tls_key) : NULL;
	const struct cfg_file *uf = ncfg->auth_users ? config_file(ncfg, ncfg->auth_users) : NULL;

	SSL_CTX_free(in->next_tls);
	in->next_tls = NULL;
	smtp_auth_free(&in->next_auth);
	if ((ncfg->tls_cert && (cf == NULL || kf == NULL)) || (ncfg->auth_users && uf == NULL)) {
		snprintf(err, errsz, "intake was not handed its TLS or auth-users files");
		return -1;
	}
	if (cf && kf) {
		in->next_tls = tls_server_ctx(cf->data, cf->len, kf->data, kf->len, err, errsz);
		if (in->next_tls == NULL)
			return -1;
	}
	if (uf)
		smtp_auth_load(&in->next_auth, ncfg->auth_users, uf->data);
	return 0;
}

/* Reload, phase two; sessions in TLS hold their own reference to the old context. */
static void intake_on_reload(struct worker *w)
{
	struct intake *in = w->ctx;
	SSL_CTX_free(in->tls);
	in->tls = in->next_tls;
	in->next_tls = NULL;
	smtp_auth_free(&in->auth);
	in->auth = in->next_auth;
	memset(&in->next_auth, 0, sizeof(in->next_auth));
}

static void intake_on_abort(struct worker *w)
{
	struct intake *in = w->ctx;
	SSL_CTX_free(in->next_tls);
	in->next_tls = NULL;
	smtp_auth_free(&in->next_auth);
}

static void intake_on_stop(struct worker *w)
{
	struct intake *in = w->ctx;

	in->stopping = 1;
	intake_local_stop(in);
	intake_proxy_stop(in);
	while (in->sessions != NULL)
		smtp_session_free(in->sessions);
	ev_break(in->loop);
}

static void intake_on_ctl(struct worker *w, uint32_t reqid, int argc, char **argv)
{
	struct intake *in = w->ctx;
	char out[256];

	if (argc >= 1 && strcmp(argv[0], "stats") == 0) {
		snprintf(out, sizeof(out), "connections %llu\nreceived %llu\nrejected %llu\n",
			 (unsigned long long)in->stats.connections,
			 (unsigned long long)in->stats.received,
			 (unsigned long long)in->stats.rejected);
		worker_ctl_reply(w, reqid, 0, out);
		return;
	}
	/* The master's poll for its Prometheus endpoint (master_metrics.c). */
	if (argc >= 1 && strcmp(argv[0], "metrics") == 0) {
		snprintf(out, sizeof(out),
			 "relayd_connections_in_total %llu\nrelayd_connections_in_active %zu\n"
			 "relayd_tls_in_total %llu\nrelayd_messages_received_total %llu\n"
			 "relayd_messages_rejected_total %llu\n",
			 (unsigned long long)in->stats.connections, in->nsessions,
			 (unsigned long long)in->stats.tls, (unsigned long long)in->stats.received,
			 (unsigned long long)in->stats.rejected);
		worker_ctl_reply(w, reqid, 0, out);
		return;
	}
	snprintf(out, sizeof(out), "intake: unknown command \"%s\"\n", argc >= 1 ? argv[0] : "");
	worker_ctl_reply(w, reqid, 1, out);
}

void intake_main(struct worker *w)
{
	struct intake *in = &intake;
	const struct config *cfg = w->cfg;

	memset(in, 0, sizeof(*in));
	in->w = w;
	in->loop = w->loop;
	w->ctx = in;
	w->on_ctl = intake_on_ctl;
	w->on_prepare = intake_prepare;
	w->on_reload = intake_on_reload;
	w->on_abort = intake_on_abort;
	w->on_stop = intake_on_stop;
	char err[256];
	if (intake_prepare(w, cfg, err, sizeof(err)) < 0)
		fatal("intake: %s", err);
	intake_on_reload(w);

	struct intake_listener *ls = xcalloc(w->nfds ? w->nfds : 1, sizeof(*ls));
	in->listeners = ls;
	ev_timer_init(&in->accept_timer, intake_accept_resume, in);
	for (size_t i = 0; i < w->nfds && i < cfg->nlistens; i++) {
		ls[i].in = in;
		ls[i].fd = w->fds[i];
		ls[i].mode = cfg->listens[i].mode;
		ls[i].proxy = cfg->listens[i].proxy;
		in->nlisteners = i + 1;
		int fl = fcntl(ls[i].fd, F_GETFL);
		if (fl < 0 || fcntl(ls[i].fd, F_SETFL, fl | O_NONBLOCK) < 0)
			fatal("intake: cannot watch listener %s: %s", cfg->listens[i].text,
			      strerror(errno));
		intake_listen(in, &ls[i]);
		if (ls[i].mode == LISTEN_SMTPS && in->tls == NULL)
			log_warnx("listener %s is smtps but no certificate is usable",
				  cfg->listens[i].text);
		log_info("listening on %s%s", cfg->listens[i].text,
			 ls[i].proxy ? " (PROXY protocol)" : "");
	}
	/* The master hands submit.sock over after the TCP listeners. */
	if (w->nfds > cfg->nlistens) {
		struct intake_listener *l = &ls[in->nlisteners++];
		l->in = in;
		l->fd = w->fds[cfg->nlistens];
		l->mode = LISTEN_LOCAL;
		intake_listen(in, l);
	}
	intake_queue_init(in);
	intake_local_init(in);
	ev_run(in->loop);
	free(ls);
}
