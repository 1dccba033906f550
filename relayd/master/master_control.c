/*
 * master_control.c - control.sock: relayctl's requests. The master answers
 * status and reload itself (reload once the workers have answered) and
 * forwards the rest, per the table in
 * common/ctl.c, to the worker(s) that own the data; stats from several
 * workers are merged into one list. A single worker's long answer comes in
 * MSG_CTL_PART frames that go straight on to the client as they arrive, so
 * the master never holds a whole listing in a request of its own; a slow
 * client's unsent part waits in that client's channel buffer.
 */
#include "master.h"
#include "common/buf.h"
#include "common/ctl.h"
#include "common/ipc.h"
#include "common/ipc_dispatch.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/peercred.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CTL_TIMEOUT_MS 15000
#define CTL_MAX_STATS 32

struct master_client {
	struct master *m;
	struct ipc_chan *ch;
	struct peercred cred;
};

struct master_req {
	struct master_req *next;
	struct master *m;
	uint32_t id;
	struct master_client *client; /* NULL once the client left */
	uint32_t client_reqid;
	const struct ctl_command *cmd;
	int json;
	unsigned waiting;             /* targets that have not answered */
	int status;
	struct buf out;
	struct {
		char key[32];
		unsigned long long value;
	} stats[CTL_MAX_STATS];
	size_t nstats;
	struct ev_timer timer;
};

static void ctl_send(struct master_client *cl, uint32_t reqid, int status, const char *text)
{
	struct ipc_msg_ctl_rep m = {reqid, (uint32_t)status, ipc_str(text)};
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_msg_ctl_rep_encode(&wr, &m);
	ipc_send_wr(cl->ch, MSG_CTL_REP, &wr);
	ipc_wr_free(&wr);
}

/* Adds a worker's "key value" lines to the merged stats. */
static void ctl_stats_merge(struct master_req *rq, const char *text)
{
	char key[32];
	unsigned long long v;
	const char *line = text;
	while (*line) {
		if (sscanf(line, "%31s %llu", key, &v) == 2) {
			size_t i;
			for (i = 0; i < rq->nstats; i++)
				if (strcmp(rq->stats[i].key, key) == 0)
					break;
			if (i == rq->nstats && rq->nstats < CTL_MAX_STATS)
				snprintf(rq->stats[rq->nstats++].key, sizeof(rq->stats[0].key), "%s", key);
			if (i < rq->nstats)
				rq->stats[i].value += v;
		}
		const char *nl = strchr(line, '\n');
		if (nl == NULL)
			break;
		line = nl + 1;
	}
}

static void ctl_stats_format(struct master_req *rq)
{
	buf_reset(&rq->out);
	if (rq->json)
		buf_append(&rq->out, "{", 1);
	for (size_t i = 0; i < rq->nstats; i++) {
		if (rq->json)
			buf_appendf(&rq->out, "%s\"%s\": %llu", i ? ", " : "", rq->stats[i].key,
				    rq->stats[i].value);
		else
			buf_appendf(&rq->out, "%-20s %llu\n", rq->stats[i].key, rq->stats[i].value);
	}
	if (rq->json)
		buf_append(&rq->out, "}\n", 2);
}

static void ctl_req_finish(struct master *m, struct master_req *rq)
{
	for (struct master_req **pp = &m->reqs; *pp; pp = &(*pp)->next) {
		if (*pp == rq) {
			*pp = rq->next;
			break;
		}
	}
	ev_timer_stop(m->loop, &rq->timer);
	if (rq->cmd->targets & (rq->cmd->targets - 1))
		ctl_stats_format(rq);
	if (rq->client) {
		buf_append(&rq->out, "", 1);
		ctl_send(rq->client, rq->client_reqid, rq->status, (const char *)buf_head(&rq->out));
	}
	buf_free(&rq->out);
	free(rq);
}

static struct master_worker *ctl_worker(struct master *m, unsigned target)
{
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (m->workers[i].ctl_target == target)
			return &m->workers[i];
	return NULL;
}

/* One target's part of a request is over, answered or not. */
static void ctl_req_part_done(struct master *m, struct master_req *rq, unsigned target,
			      int status, const char *text)
{
	if (!(rq->waiting & target))
		return;
	rq->waiting &= ~target;
	if (status > rq->status)
		rq->status = status;
	if (rq->cmd->targets & (rq->cmd->targets - 1)) {
		if (status == 0)
			ctl_stats_merge(rq, text);
	} else {
		buf_appendf(&rq->out, "%s", text);
	}
	if (rq->waiting == 0)
		ctl_req_finish(m, rq);
}

static void ctl_req_timeout(void *arg)
{
	struct master_req *rq = arg;
	for (unsigned t = 1; rq->waiting; t <<= 1) {
		if (rq->waiting & t) {
			struct master_worker *mw = ctl_worker(rq->m, t);
			char msg[128];
			snprintf(msg, sizeof(msg), "relayd: no answer from the %s worker\n",
				 mw ? mw->role : "?");
			ctl_req_part_done(rq->m, rq, t, CTL_EXIT_FAIL, msg);
		}
	}
}

static struct master_req *ctl_req_find(struct master *m, uint32_t id)
{
	for (struct master_req *rq = m->reqs; rq; rq = rq->next)
		if (rq->id == (id & ~0xffu))
			return rq;
	return NULL;
}

void master_control_reply(struct master *m, const struct ipc_msg_ctl_rep *rep)
{
	char *text = ipc_str_dup(rep->text);
	/* The id's low bits say which target answered. */
	struct master_req *rq = ctl_req_find(m, rep->reqid);
	if (rq != NULL)
		ctl_req_part_done(m, rq, rep->reqid & 0xffu, rep->status > 2 ? 1 : (int)rep->status,
				  text);
	free(text);
}

void master_control_part(struct master *m, const struct ipc_msg_ctl_part *part)
{
	uint32_t id = part->reqid;
	struct master_req *rq = ctl_req_find(m, id);
	/* Late (after a timeout), or the client left: nobody to show it to. */
	if (rq == NULL || !(rq->waiting & id & 0xffu) || rq->client == NULL)
		return;
	/* Merged answers are a few short lines each, never sent in parts. */
	if (rq->cmd->targets & (rq->cmd->targets - 1)) {
		log_warnx("control reply part for a merged command ignored");
		return;
	}
	struct ipc_msg_ctl_part out = {rq->client_reqid, part->text};
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_msg_ctl_part_encode(&wr, &out);
	ipc_send_wr(rq->client->ch, MSG_CTL_PART, &wr);
	ipc_wr_free(&wr);
}

void master_control_worker_gone(struct master *m, struct master_worker *mw)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "relayd: the %s worker went away\n", mw->role);
	struct master_req *rq = m->reqs;
	while (rq) {
		struct master_req *next = rq->next;
		ctl_req_part_done(m, rq, mw->ctl_target, CTL_EXIT_FAIL, msg);
		rq = next;
	}
}

static void ctl_uptime(char *dst, size_t n, int64_t secs)
{
	if (secs >= 86400)
		snprintf(dst, n, "%lldd%02lldh", (long long)secs / 86400, (long long)secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(dst, n, "%lldh%02lldm", (long long)secs / 3600, (long long)secs % 3600 / 60);
	else
		snprintf(dst, n, "%lldm%02llds", (long long)secs / 60, (long long)secs % 60);
}

static void ctl_status(struct master *m, struct buf *out)
{
	char up[32];
	int64_t now = ev_wallclock();
	buf_appendf(out, "%-10s %-8s %s\n", "PROCESS", "PID", "UPTIME");
	ctl_uptime(up, sizeof(up), now - m->started);
	buf_appendf(out, "%-10s %-8d %s\n", "master", (int)getpid(), up);
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		if (!mw->enabled)
			continue;
		if (mw->pid == 0) {
			buf_appendf(out, "%-10s %-8s %s\n", mw->role, "-", "not running");
			continue;
		}
		ctl_uptime(up, sizeof(up), now - mw->started);
		buf_appendf(out, "%-10s %-8d %s\n", mw->role, (int)mw->pid, up);
	}
}

/* status: answered at once. */
static void ctl_cmd_status(struct master *m, struct master_req *rq)
{
	ctl_status(m, &rq->out);
	rq->status = CTL_EXIT_OK;
	ctl_req_finish(m, rq);
}

/* reload: answered when every worker took the new config, or none did. */
static void ctl_cmd_reload(struct master *m, struct master_req *rq)
{
	rq->waiting = CTL_MASTER;
	ev_timer_start(m->loop, &rq->timer, CTL_TIMEOUT_MS);
	master_reload(m, rq->id | CTL_MASTER);
}

/* The master's own commands. */
static const struct {
	const char *name;
	void (*run)(struct master *m, struct master_req *rq);
} ctl_master_cmds[] = {
	{"status", ctl_cmd_status},
	{"reload", ctl_cmd_reload},
};

static void ctl_master_cmd(struct master *m, struct master_req *rq)
{
	for (size_t i = 0; i < sizeof(ctl_master_cmds) / sizeof(ctl_master_cmds[0]); i++)
		if (strcmp(ctl_master_cmds[i].name, rq->cmd->name) == 0) {
			ctl_master_cmds[i].run(m, rq);
			return;
		}
	fatal("ctl: master command %s not handled", rq->cmd->name);
}

void master_control_done(struct master *m, uint32_t id, int status, const char *text)
{
	struct master_req *rq = ctl_req_find(m, id);
	if (rq != NULL)
		ctl_req_part_done(m, rq, id & 0xffu, status, text);
}

static void ctl_forward(struct master *m, struct master_req *rq, const struct ipc_msg_ctl_req *req)
{
	struct ipc_wr wr;
	for (unsigned t = 1; t <= CTL_DELIVERY; t <<= 1) {
		if (!(rq->cmd->targets & t))
			continue;
		struct master_worker *mw = ctl_worker(m, t);
		rq->waiting |= t;
		if (mw == NULL || mw->pid == 0 || !ipc_is_open(mw->chan)) {
			char msg[128];
			snprintf(msg, sizeof(msg), "relayd: the %s worker is not running\n",
				 mw ? mw->role : "?");
			/* Stats from the workers that run are still worth showing. */
			rq->waiting &= ~t;
			if (!(rq->cmd->targets & (rq->cmd->targets - 1))) {
				rq->status = CTL_EXIT_FAIL;
				buf_appendf(&rq->out, "%s", msg);
			}
			continue;
		}
		struct ipc_msg_ctl_req fwd = *req;
		fwd.reqid = rq->id | t;
		ipc_wr_init(&wr);
		ipc_msg_ctl_req_encode(&wr, &fwd);
		ipc_send_wr(mw->chan, MSG_CTL_REQ, &wr);
		ipc_wr_free(&wr);
	}
}

/* Commands that change the queue or the config: root and control-group. */
static int ctl_may_mutate(const struct master *m, const struct peercred *pc)
{
	return pc->uid == 0 ||
	       (m->cfg->control_group && peercred_in_group(pc, (gid_t)m->cfg->control_gid));
}

static int ctl_msg_req(void *arg, struct ipc_rd *rd)
{
	struct master_client *cl = arg;
	struct master *m = cl->m;
	struct ipc_msg_ctl_req req;
	char *argv[IPC_CTL_MAX_ARGS + 1] = {0};

	if (ipc_msg_ctl_req_decode(rd, &req) < 0)
		return -1;
	uint32_t reqid = req.reqid, argc = req.argc;
	for (uint32_t i = 0; i < argc; i++)
		argv[i] = ipc_str_dup(req.argv[i]);
	const struct ctl_command *cmd;
	if (ctl_command_check((int)argc, argv, &cmd) < 0) {
		ctl_send(cl, reqid, CTL_EXIT_USAGE, ctl_usage());
		goto out;
	}
	if (cmd->mutates && !ctl_may_mutate(m, &cl->cred)) {
		char msg[256];
		log_warnx("control: refused \"%s\" to uid %u (root or control-group only)",
			  cmd->name, (unsigned)cl->cred.uid);
		snprintf(msg, sizeof(msg), "relayd: permission denied: %s is for root%s%s\n",
			 cmd->name, m->cfg->control_group ? " and group " : "",
			 m->cfg->control_group ? m->cfg->control_group : "");
		ctl_send(cl, reqid, CTL_EXIT_FAIL, msg);
		goto out;
	}
	struct master_req *rq = xcalloc(1, sizeof(*rq));
	rq->m = m;
	rq->id = (++m->next_reqid) << 8;
	if (rq->id == MASTER_METRICS_REQID) /* wrapped: that id is the metrics poll's */
		rq->id = (++m->next_reqid) << 8;
	rq->client = cl;
	rq->client_reqid = reqid;
	rq->cmd = cmd;
	rq->json = argc == 2 && strcmp(argv[1], "--json") == 0;
	buf_init(&rq->out);
	ev_timer_init(&rq->timer, ctl_req_timeout, rq);
	rq->next = m->reqs;
	m->reqs = rq;
	if (cmd->targets == CTL_MASTER) {
		ctl_master_cmd(m, rq);
		goto out;
	}
	ctl_forward(m, rq, &req);
	if (rq->waiting == 0)
		ctl_req_finish(m, rq);
	else
		ev_timer_start(m->loop, &rq->timer, CTL_TIMEOUT_MS);
out:
	for (uint32_t i = 0; i < argc; i++)
		free(argv[i]);
	return 0;
}

/* What relayctl may send. */
static const struct ipc_handler ctl_handlers[] = {
	{MSG_CTL_REQ, 0, ctl_msg_req},
};

static void ctl_on_frame(struct ipc_chan *ch, uint32_t type, const uint8_t *p, size_t len,
			 void *arg)
{
	IPC_DISPATCH(ctl_handlers, ch, arg, type, p, len);
}

static void ctl_on_close(struct ipc_chan *ch, void *arg)
{
	struct master_client *cl = arg;
	for (struct master_req *rq = cl->m->reqs; rq; rq = rq->next)
		if (rq->client == cl)
			rq->client = NULL;
	ipc_chan_free(ch);
	free(cl);
}

static void ctl_accept(int fd, uint32_t events, void *arg)
{
	struct master *m = arg;
	(void)events;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warnx("control accept: %s", strerror(errno));
		return;
	}
	struct master_client *cl = xcalloc(1, sizeof(*cl));
	if (peercred_get(cfd, &cl->cred) < 0) {
		log_warnx("control: peer credentials: %s", strerror(errno));
		close(cfd);
		free(cl);
		return;
	}
	cl->m = m;
	cl->ch = ipc_chan_new(m->loop, cfd, "relayctl", ctl_on_frame, ctl_on_close, cl);
	if (cl->ch == NULL)
		free(cl);
}

int master_control_open(struct master *m)
{
	char path[512];
	worker_state_path(m->cfg, "control.sock", path, sizeof(path));
	/* Who may connect is the socket's mode (0600 for root and `user`, 0660
	 * with control-group); what each peer may do is decided per command
	 * from its credentials. */
	m->control_fd = master_unix_listen(path, 0600);
	if (m->control_fd < 0) {
		log_errx("%s: %s", path, strerror(errno));
		return -1;
	}
	if (m->cfg->control_group)
		master_unix_hand_over(m->cfg, path, (gid_t)m->cfg->control_gid, 0660);
	else
		master_unix_hand_over(m->cfg, path, (gid_t)-1, 0600);
	if (ev_io_add(m->loop, m->control_fd, EPOLLIN, ctl_accept, m) < 0)
		fatal("control socket: %s", strerror(errno));
	return 0;
}

void master_control_close(struct master *m)
{
	char path[512];
	while (m->reqs) {
		struct master_req *rq = m->reqs;
		m->reqs = rq->next;
		ev_timer_stop(m->loop, &rq->timer);
		buf_free(&rq->out);
		free(rq);
	}
	if (m->control_fd < 0)
		return;
	ev_io_del(m->loop, m->control_fd);
	close(m->control_fd);
	m->control_fd = -1;
	worker_state_path(m->cfg, "control.sock", path, sizeof(path));
	unlink(path);
}
