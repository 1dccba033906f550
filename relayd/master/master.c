/*
 * master.c - the composition root: which roles relayd runs, what each is
 * given, and their supervision. Each worker is this program exec'd again
 * (`relayd -W ROLE`): a fresh address space that holds nothing of the
 * master's but the descriptors and the configuration part handed to it. A
 * worker that dies is restarted at once, or after a growing pause when it
 * keeps dying soon after start. SIGTERM stops everything within 5 seconds;
 * SIGHUP reloads (master_config.c).
 */
#include "master.h"
#include "proctitle.h"
#include "common/ctl.h"
#include "common/ipc.h"
#include "common/ipc_dispatch.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "queue/queue.h"
#include "relayd/delivery/dlv.h"
#include "relayd/intake/intake.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MASTER_STOP_GRACE_MS 4000
#define MASTER_HEALTH_MS 10000
#define MASTER_QUICK_DEATH_S 10
#define MASTER_RESTART_MAX_MS 30000

/* The roles, and the descriptors the master passes to each. */
enum master_fds { FDS_NONE, FDS_LISTEN, FDS_QUEUE };

static const struct {
	const char *role;
	void (*main)(struct worker *w);
	unsigned ctl_target;
	enum master_fds fds;
} master_roles[MASTER_NWORKERS] = {
	/* The queue first: the others connect to it. */
	{"queue", queue_main, CTL_QUEUE, FDS_QUEUE},
	{"intake", intake_main, CTL_INTAKE, FDS_LISTEN},
	{"delivery", delivery_main, CTL_DELIVERY, FDS_NONE},
};

static void master_start_worker(struct master *m, struct master_worker *mw);

/* The descriptors a role gets, from WORKER_FIRST_FD on, in order. */
static size_t master_role_fds(const struct master *m, const struct master_worker *mw,
			      const int **fds)
{
	switch (master_roles[mw - m->workers].fds) {
	case FDS_LISTEN:
		*fds = m->listen_fds;
		return m->nlisten_fds;
	case FDS_QUEUE:
		*fds = &m->queue_fd;
		return 1;
	case FDS_NONE:
		break;
	}
	*fds = NULL;
	return 0;
}

/*
 * In the child: the channel becomes WORKER_MASTER_FD, the role's sockets
 * follow it, everything else is closed, and relayd starts anew as the
 * worker. Copies above the targets first, so that no dup2 overwrites a
 * descriptor still to be moved.
 */
static void master_exec_role(struct master *m, struct master_worker *mw, int chan_fd)
{
	const int *fds;
	size_t n = master_role_fds(m, mw, &fds);
	int top = WORKER_FIRST_FD + (int)n;
	int tmp_chan = fcntl(chan_fd, F_DUPFD, top);
	int *tmp = xcalloc(n ? n : 1, sizeof(int));
	for (size_t i = 0; i < n; i++)
		tmp[i] = fcntl(fds[i], F_DUPFD, top);
	if (tmp_chan < 0 || dup2(tmp_chan, WORKER_MASTER_FD) < 0)
		_exit(127);
	for (size_t i = 0; i < n; i++)
		if (tmp[i] < 0 || dup2(tmp[i], WORKER_FIRST_FD + (int)i) < 0)
			_exit(127);
	close_range((unsigned)top, ~0u, 0);
	/* Blocked across exec: a stop that comes while the worker starts waits
	 * for its signalfd (ev_signal_add) instead of killing it mid-start. */
	sigset_t held;
	sigemptyset(&held);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGINT);
	sigaddset(&held, SIGHUP);
	sigprocmask(SIG_SETMASK, &held, NULL);
	signal(SIGCHLD, SIG_DFL);
	char *argv[] = {"relayd", "-W", (char *)mw->role, NULL, NULL, NULL};
	int argc = 3;
	if (m->foreground)
		argv[argc++] = "-d";
	if (m->verbose)
		argv[argc++] = "-v";
	execv(m->exe, argv);
	_exit(127);
}

void master_worker_main(const char *role)
{
	struct worker w;
	char title[64];

	for (int i = 0; i < MASTER_NWORKERS; i++) {
		if (strcmp(master_roles[i].role, role) != 0)
			continue;
		memset(&w, 0, sizeof(w));
		w.role = master_roles[i].role;
		snprintf(title, sizeof(title), "relayd: %s", w.role);
		proctitle_set(title);
		worker_run(&w, master_roles[i].main);
	}
	fatal("-W %s: no such role", role);
}

static int master_msg_health_ok(void *arg, struct ipc_rd *rd)
{
	struct master_worker *mw = arg;
	struct ipc_msg_health m;
	if (ipc_msg_health_decode(rd, &m) < 0)
		return -1;
	mw->health_missed = 0;
	master_notify_answered(mw);
	return 0;
}

static int master_msg_cfg_ready(void *arg, struct ipc_rd *rd)
{
	if (ipc_msg_empty_decode(rd) < 0)
		return -1;
	master_reload_answer(arg, 1, NULL);
	return 0;
}

static int master_msg_cfg_refused(void *arg, struct ipc_rd *rd)
{
	struct ipc_msg_text m;
	char reason[512];
	if (ipc_msg_text_decode(rd, &m) < 0 || ipc_str_copy(reason, sizeof(reason), m.text) < 0)
		return -1;
	master_reload_answer(arg, 0, reason);
	return 0;
}

/* A malformed answer is logged and dropped: relayctl sees a timeout. */
static int master_msg_ctl_rep(void *arg, struct ipc_rd *rd)
{
	struct master_worker *mw = arg;
	struct ipc_msg_ctl_rep m;
	if (ipc_msg_ctl_rep_decode(rd, &m) < 0)
		log_warnx("malformed control reply from a worker");
	else if ((m.reqid & ~0xffu) == MASTER_METRICS_REQID)
		master_metrics_reply(mw, &m);
	else
		master_control_reply(mw->m, &m);
	return 0;
}

static int master_msg_ctl_part(void *arg, struct ipc_rd *rd)
{
	struct master_worker *mw = arg;
	struct ipc_msg_ctl_part m;
	if (ipc_msg_ctl_part_decode(rd, &m) < 0)
		log_warnx("malformed control reply part from a worker");
	else if ((m.reqid & ~0xffu) == MASTER_METRICS_REQID)
		master_metrics_part(mw, &m);
	else
		master_control_part(mw->m, &m);
	return 0;
}

/* What a worker may send the master. */
static const struct ipc_handler master_handlers[] = {
	{MSG_HEALTH_OK, 0, master_msg_health_ok},
	{MSG_CFG_READY, 0, master_msg_cfg_ready},
	{MSG_CFG_REFUSED, 0, master_msg_cfg_refused},
	{MSG_CTL_REP, 0, master_msg_ctl_rep},
	{MSG_CTL_PART, 0, master_msg_ctl_part},
};

static void master_on_worker(struct ipc_chan *ch, uint32_t type, const uint8_t *p, size_t len,
			     void *arg)
{
	IPC_DISPATCH(master_handlers, ch, arg, type, p, len);
}

/* The channel closes before or after SIGCHLD; the pid is what counts. */
static void master_worker_chan_closed(struct ipc_chan *ch, void *arg)
{
	struct master_worker *mw = arg;
	(void)ch;
	master_control_worker_gone(mw->m, mw);
	master_reload_worker_gone(mw);
}

static void master_restart_cb(void *arg)
{
	struct master_worker *mw = arg;
	if (!mw->m->stopping)
		master_start_worker(mw->m, mw);
}

static void master_start_worker(struct master *m, struct master_worker *mw)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_errx("socketpair for %s: %s", mw->role, strerror(errno));
		ev_timer_start(m->loop, &mw->restart, 1000);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_errx("fork %s: %s", mw->role, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		ev_timer_start(m->loop, &mw->restart, 1000);
		return;
	}
	if (pid == 0)
		master_exec_role(m, mw, sv[1]);
	close(sv[1]);
	mw->pid = pid;
	mw->started = ev_wallclock();
	mw->health_missed = 0;
	ipc_chan_free(mw->chan);
	mw->chan = ipc_chan_new(m->loop, sv[0], mw->role, master_on_worker,
				master_worker_chan_closed, mw);
	const int *fds;
	master_config_send(mw, m->cfg, MSG_CFG_START, (uint32_t)master_role_fds(m, mw, &fds));
	master_notify_started(mw);
	log_info("started %s worker, pid %d", mw->role, (int)pid);
}

static struct master_worker *master_worker_by_pid(struct master *m, pid_t pid)
{
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (m->workers[i].pid == pid)
			return &m->workers[i];
	return NULL;
}

static int master_running(const struct master *m)
{
	int n = 0;
	for (int i = 0; i < MASTER_NWORKERS; i++)
		n += m->workers[i].pid != 0;
	return n;
}

static void master_reaped(struct master *m, struct master_worker *mw, int status)
{
	char how[64];
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	mw->pid = 0;
	ipc_chan_free(mw->chan);
	mw->chan = NULL;
	master_control_worker_gone(m, mw);
	master_reload_worker_gone(mw);
	master_metrics_worker_gone(mw, !m->stopping);
	if (m->stopping) {
		log_info("%s worker %s", mw->role, how);
		return;
	}
	/* Backoff only for a worker that keeps dying right after start. */
	if (ev_wallclock() - mw->started < MASTER_QUICK_DEATH_S)
		mw->quick_deaths++;
	else
		mw->quick_deaths = 0;
	uint64_t delay = 0;
	if (mw->quick_deaths > 1) {
		delay = 250u << (mw->quick_deaths > 8 ? 7 : mw->quick_deaths - 2);
		if (delay > MASTER_RESTART_MAX_MS)
			delay = MASTER_RESTART_MAX_MS;
	}
	log_warnx("%s worker %s; restarting in %llu ms", mw->role, how, (unsigned long long)delay);
	ev_timer_start(m->loop, &mw->restart, delay);
}

static void master_sigchld(struct master *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct master_worker *mw = master_worker_by_pid(m, pid);
		if (mw)
			master_reaped(m, mw, status);
	}
	if (m->stopping && master_running(m) == 0)
		ev_break(m->loop);
}

static void master_stop_grace_over(void *arg)
{
	struct master *m = arg;
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		if (m->workers[i].pid != 0) {
			log_warnx("%s worker did not stop; killing it", m->workers[i].role);
			kill(m->workers[i].pid, SIGKILL);
		}
	}
}

static void master_stop(struct master *m)
{
	if (m->stopping)
		return;
	m->stopping = 1;
	log_info("stopping");
	master_notify_stopping();
	master_reload_cancel(m);
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		ev_timer_stop(m->loop, &mw->restart);
		if (mw->pid != 0)
			kill(mw->pid, SIGTERM);
	}
	if (master_running(m) == 0) {
		ev_break(m->loop);
		return;
	}
	ev_timer_start(m->loop, &m->stop_timer, MASTER_STOP_GRACE_MS);
}

static void master_on_signal(int signo, void *arg)
{
	struct master *m = arg;
	switch (signo) {
	case SIGCHLD:
		master_sigchld(m);
		break;
	case SIGHUP:
		master_reload(m, 0);
		break;
	default:
		master_stop(m);
	}
}

/* A worker that stops answering is killed; SIGCHLD then restarts it. */
static void master_health(void *arg)
{
	struct master *m = arg;
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		if (mw->pid == 0)
			continue;
		if (mw->health_missed >= 3) {
			log_warnx("%s worker (pid %d) does not answer; killing it", mw->role,
				  (int)mw->pid);
			kill(mw->pid, SIGKILL);
			continue;
		}
		struct ipc_msg_health hm = {(uint32_t)ev_now(m->loop)};
		struct ipc_wr wr;
		mw->health_missed++;
		ipc_wr_init(&wr);
		ipc_msg_health_encode(&wr, &hm);
		ipc_send_wr(mw->chan, MSG_HEALTH, &wr);
		ipc_wr_free(&wr);
	}
	ev_timer_start(m->loop, &m->health_timer, MASTER_HEALTH_MS);
}

static int master_roles_enable(struct master *m, const char *roles)
{
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		mw->m = m;
		mw->role = master_roles[i].role;
		mw->ctl_target = master_roles[i].ctl_target;
		mw->enabled = roles == NULL;
		ev_timer_init(&mw->restart, master_restart_cb, mw);
	}
	if (roles == NULL)
		return 0;
	char *copy = xstrdup(roles), *save = NULL;
	int rc = 0;
	for (char *r = strtok_r(copy, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		int found = 0;
		for (int i = 0; i < MASTER_NWORKERS; i++) {
			if (strcmp(r, m->workers[i].role) == 0) {
				m->workers[i].enabled = 1;
				found = 1;
			}
		}
		if (!found) {
			fprintf(stderr, "relayd: unknown role \"%s\" (intake, queue, delivery)\n", r);
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

static int master_role_enabled(const struct master *m, const char *role)
{
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (strcmp(m->workers[i].role, role) == 0)
			return m->workers[i].enabled;
	return 0;
}

int master_run(struct config *cfg, int foreground, int verbose, const char *roles)
{
	struct master m;
	char path[512];
	int rc = 1;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.foreground = foreground;
	m.verbose = verbose;
	m.queue_fd = m.control_fd = -1;
	m.started = ev_wallclock();
	if (master_roles_enable(&m, roles) < 0)
		return 2;
	ssize_t n = readlink("/proc/self/exe", m.exe, sizeof(m.exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(m.exe) - 1) {
		log_errx("cannot find this program (/proc/self/exe)");
		return 1;
	}
	m.exe[n] = '\0';
	m.loop = ev_loop_new();
	ev_timer_init(&m.stop_timer, master_stop_grace_over, &m);
	ev_timer_init(&m.health_timer, master_health, &m);
	signal(SIGPIPE, SIG_IGN);
	if (ev_signal_add(m.loop, SIGCHLD, master_on_signal, &m) < 0 ||
	    ev_signal_add(m.loop, SIGTERM, master_on_signal, &m) < 0 ||
	    ev_signal_add(m.loop, SIGINT, master_on_signal, &m) < 0 ||
	    ev_signal_add(m.loop, SIGHUP, master_on_signal, &m) < 0)
		fatal("signals: %s", strerror(errno));

	if (master_role_enabled(&m, "intake") && master_listen_open(&m) < 0)
		goto out;
	worker_state_path(cfg, "queue.sock", path, sizeof(path));
	m.queue_fd = master_unix_listen(path, 0700);
	if (m.queue_fd < 0) {
		log_errx("%s: %s", path, strerror(errno));
		goto out;
	}
	master_unix_hand_over(cfg, path, (gid_t)-1, 0700);
	if (master_control_open(&m) < 0 || master_metrics_open(&m) < 0)
		goto out;

	proctitle_set("relayd: master");
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (m.workers[i].enabled)
			master_start_worker(&m, &m.workers[i]);
	ev_timer_start(m.loop, &m.health_timer, MASTER_HEALTH_MS);
	log_info("relayd started as %s", cfg->hostname);
	ev_run(m.loop);
	rc = 0;
out:
	master_stop(&m);
	if (master_running(&m) > 0)
		ev_run(m.loop);
	master_control_close(&m);
	master_metrics_close(&m);
	if (m.queue_fd >= 0) {
		close(m.queue_fd);
		unlink(path);
	}
	master_listen_close(&m);
	for (size_t i = 0; i < m.nlisten_fds; i++)
		if (m.listen_fds[i] >= 0)
			close(m.listen_fds[i]);
	free(m.listen_fds);
	for (int i = 0; i < MASTER_NWORKERS; i++)
		ipc_chan_free(m.workers[i].chan);
	ev_loop_free(m.loop);
	log_info("stopped");
	return rc;
}
