/*
 * master_config.c - the master hands each worker its part of the
 * configuration and runs reloads. The master reads the config and every
 * file it names once, as root; a worker gets the config text and only the
 * files its role needs (intake: the TLS certificate and key, auth-users,
 * the rewrite maps and auth-senders;
 * delivery: the auth= credentials, the CA bundle and the DKIM keys; the
 * queue: none).
 *
 * A reload is two-phase, so that every process takes the new configuration
 * or none does: the master loads and checks it, sends it to each running
 * worker with PREPARE; each answers READY or REFUSED (with the reason);
 * then all get COMMIT, or all get ABORT and the running one stays.
 */
#include "master.h"
#include "common/ctl.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A worker that has not answered PREPARE by then refuses by silence. */
#define MASTER_RELOAD_TIMEOUT_MS 10000

static void master_send_file(struct master_worker *mw, const struct config *cfg,
			     const char *path)
{
	const struct cfg_file *f = path ? config_file(cfg, path) : NULL;
	if (f == NULL)
		return;
	size_t off = 0;
	do {
		size_t n = f->len - off > IPC_CHUNK_SIZE ? IPC_CHUNK_SIZE : f->len - off;
		struct ipc_msg_cfg_file m = {ipc_str(f->path), off == 0,
					     {(const uint8_t *)f->data + off, n}};
		struct ipc_wr wr;
		ipc_wr_init(&wr);
		ipc_msg_cfg_file_encode(&wr, &m);
		ipc_send_wr(mw->chan, MSG_CFG_FILE, &wr);
		explicit_bzero(wr.b.data, wr.b.len);
		ipc_wr_free(&wr);
		off += n;
	} while (off < f->len);
}

static void master_files_intake(struct master_worker *mw, const struct config *cfg)
{
	master_send_file(mw, cfg, cfg->tls_cert);
	master_send_file(mw, cfg, cfg->tls_key);
	master_send_file(mw, cfg, cfg->auth_users);
	master_send_file(mw, cfg, cfg->rewrite_sender_file);
	master_send_file(mw, cfg, cfg->rewrite_recipient_file);
	master_send_file(mw, cfg, cfg->auth_senders_file);
}

static void master_files_delivery(struct master_worker *mw, const struct config *cfg)
{
	master_send_file(mw, cfg, cfg->tls_ca_file);
	for (size_t i = 0; i < cfg->ndkim; i++)
		master_send_file(mw, cfg, cfg->dkim[i].keyfile);
	for (size_t i = 0; i < cfg->nsmarthosts; i++)
		master_send_file(mw, cfg, cfg->smarthosts[i].auth_file);
	for (size_t i = 0; i < cfg->nroutes; i++)
		master_send_file(mw, cfg, cfg->routes[i].hop.auth_file);
	for (size_t i = 0; i < cfg->nsender_routes; i++)
		master_send_file(mw, cfg, cfg->sender_routes[i].hop.auth_file);
}

/* Which files each role holds: the only place that decides it. */
static const struct {
	const char *role;
	void (*send)(struct master_worker *mw, const struct config *cfg);
} master_role_files[] = {
	{"intake", master_files_intake},
	{"delivery", master_files_delivery},
};

void master_config_send(struct master_worker *mw, const struct config *cfg, uint32_t type,
			uint32_t nfds)
{
	master_send_file(mw, cfg, cfg->path);
	for (size_t i = 0; i < sizeof(master_role_files) / sizeof(master_role_files[0]); i++)
		if (strcmp(master_role_files[i].role, mw->role) == 0)
			master_role_files[i].send(mw, cfg);
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	if (type == MSG_CFG_START) {
		struct ipc_msg_cfg_start m = {ipc_str(cfg->path), nfds};
		ipc_msg_cfg_start_encode(&wr, &m);
	} else {
		struct ipc_msg_text m = {ipc_str(cfg->path)};
		ipc_msg_text_encode(&wr, &m);
	}
	ipc_send_wr(mw->chan, type, &wr);
	ipc_wr_free(&wr);
}

/* ---- reload ---- */

struct master_reload {
	struct config *cfg;     /* the new one, until commit or abort */
	unsigned waiting;       /* workers (bit per index) yet to answer */
	unsigned asked;         /* workers that got PREPARE */
	char reason[512];       /* the first refusal */
	uint32_t ctl_id;        /* relayctl request waiting for the outcome, or 0 */
	struct ev_timer timer;
};

static void master_reload_finish(struct master *m)
{
	struct master_reload *r = m->reload;
	int ok = r->reason[0] == '\0';
	char text[700];

	ev_timer_stop(m->loop, &r->timer);
	m->reload = NULL;
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		if (mw->pid == 0 || mw->chan == NULL)
			continue;
		if (r->asked & (1u << i))
			ipc_send(mw->chan, ok ? MSG_CFG_COMMIT : MSG_CFG_ABORT, NULL, 0);
		else if (ok) {
			/* Started during the reload with the old config: bring it along. */
			master_config_send(mw, r->cfg, MSG_CFG_PREPARE, 0);
			ipc_send(mw->chan, MSG_CFG_COMMIT, NULL, 0);
		}
	}
	if (ok) {
		config_free(m->cfg);
		*m->cfg = *r->cfg;
		free(r->cfg);
		snprintf(text, sizeof(text), "configuration reloaded\n");
		log_info("configuration reloaded");
	} else {
		config_free(r->cfg);
		free(r->cfg);
		snprintf(text, sizeof(text), "relayd: reload refused: %s; the running configuration stays\n",
			 r->reason);
		log_errx("reload refused: %s; the running configuration stays", r->reason);
	}
	master_notify_reload(m, 0);
	if (r->ctl_id)
		master_control_done(m, r->ctl_id, ok ? CTL_EXIT_OK : CTL_EXIT_FAIL, text);
	free(r);
}

static void master_reload_refuse(struct master *m, int idx, const char *why)
{
	struct master_reload *r = m->reload;
	if (r->reason[0] == '\0')
		snprintf(r->reason, sizeof(r->reason), "%s", why);
	if (idx >= 0)
		r->waiting &= ~(1u << idx);
}

static void master_reload_timeout(void *arg)
{
	struct master *m = arg;
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (m->reload->waiting & (1u << i)) {
			char why[128];
			snprintf(why, sizeof(why), "the %s worker did not answer", m->workers[i].role);
			master_reload_refuse(m, i, why);
		}
	master_reload_finish(m);
}

void master_reload_answer(struct master_worker *mw, int ready, const char *reason)
{
	struct master *m = mw->m;
	int idx = (int)(mw - m->workers);
	if (m->reload == NULL || !(m->reload->waiting & (1u << idx))) {
		/* A worker brought along after a commit; nothing waits for it. */
		if (!ready)
			log_warnx("%s worker refused the configuration: %s", mw->role, reason);
		return;
	}
	if (ready)
		m->reload->waiting &= ~(1u << idx);
	else {
		char why[512];
		snprintf(why, sizeof(why), "%s worker: %.400s", mw->role, reason);
		master_reload_refuse(m, idx, why);
	}
	if (m->reload->waiting == 0)
		master_reload_finish(m);
}

void master_reload_worker_gone(struct master_worker *mw)
{
	struct master *m = mw->m;
	int idx = (int)(mw - m->workers);
	if (m->reload == NULL || !(m->reload->waiting & (1u << idx)))
		return;
	char why[128];
	snprintf(why, sizeof(why), "the %s worker went away", mw->role);
	master_reload_refuse(m, idx, why);
	m->reload->asked &= ~(1u << idx);
	if (m->reload->waiting == 0)
		master_reload_finish(m);
}

/* Changes a running relayd cannot take: the why, or NULL. */
static const char *master_reload_unchangeable(const struct config *old, const struct config *new)
{
	if (strcmp(old->state_dir, new->state_dir) != 0)
		return "state-dir changed (restart relayd for that)";
	if ((old->user == NULL) != (new->user == NULL) ||
	    (old->user && strcmp(old->user, new->user) != 0))
		return "user changed (restart relayd for that)";
	/* The sockets stay those bound at start: a restarted intake must not
	 * pair them with other modes (a public port taking PROXY headers). */
	int same = old->nlistens == new->nlistens;
	for (size_t i = 0; same && i < old->nlistens; i++)
		same = strcmp(old->listens[i].text, new->listens[i].text) == 0 &&
		       old->listens[i].mode == new->listens[i].mode &&
		       old->listens[i].proxy == new->listens[i].proxy;
	if (!same)
		return "listen lines changed (restart relayd for that)";
	if (strcmp(old->metrics_listen.text, new->metrics_listen.text) != 0)
		return "metrics-listen changed (restart relayd for that)";
	return NULL;
}

int master_reload(struct master *m, uint32_t ctl_id)
{
	char *errs = NULL;
	size_t errsz = 0;
	const char *why;

	if (m->reload != NULL) {
		if (ctl_id)
			master_control_done(m, ctl_id, CTL_EXIT_FAIL,
					    "relayd: a reload is already in progress\n");
		return -1;
	}
	struct master_reload *r = xcalloc(1, sizeof(*r));
	r->cfg = xcalloc(1, sizeof(*r->cfg));
	r->ctl_id = ctl_id;
	ev_timer_init(&r->timer, master_reload_timeout, m);
	m->reload = r;
	master_notify_reload(m, 1);
	FILE *ef = open_memstream(&errs, &errsz);
	int nerr = config_load(m->cfg->path, r->cfg, ef);
	if (ef)
		fclose(ef);
	if (nerr != 0) {
		/* The first error line says where; all of them go to the log. */
		if (errs && *errs)
			log_errx("reload: %.*s", (int)strcspn(errs, "\n"), errs);
		master_reload_refuse(m, -1, errs && *errs ? errs : "the config has errors");
		r->reason[strcspn(r->reason, "\n")] = '\0';
	} else if ((why = master_reload_unchangeable(m->cfg, r->cfg)) != NULL)
		master_reload_refuse(m, -1, why);
	free(errs);
	if (r->reason[0] == '\0') {
		log_info("reloading configuration");
		for (int i = 0; i < MASTER_NWORKERS; i++) {
			struct master_worker *mw = &m->workers[i];
			if (mw->pid == 0 || mw->chan == NULL || !ipc_is_open(mw->chan))
				continue;
			master_config_send(mw, r->cfg, MSG_CFG_PREPARE, 0);
			r->asked |= 1u << i;
		}
		r->waiting = r->asked;
	}
	if (r->waiting == 0) {
		master_reload_finish(m);
		return 0;
	}
	ev_timer_start(m->loop, &r->timer, MASTER_RELOAD_TIMEOUT_MS);
	return 0;
}

void master_reload_cancel(struct master *m)
{
	if (m->reload == NULL)
		return;
	master_reload_refuse(m, -1, "relayd is stopping");
	m->reload->waiting = 0;
	master_reload_finish(m);
}
