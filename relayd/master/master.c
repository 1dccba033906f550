/*
 * master.c - forks and supervises the workers. A worker that dies is
 * restarted at once, or after a growing pause when it keeps dying soon
 * after start. SIGTERM stops everything within 5 seconds; SIGHUP rereads
 * the config and tells the workers to do the same.
 */
#include "master.h"
#include "proctitle.h"
#include "common/ctl.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MASTER_STOP_GRACE_MS 4000
#define MASTER_HEALTH_MS 10000
#define MASTER_QUICK_DEATH_S 10
#define MASTER_RESTART_MAX_MS 30000

static const struct {
	const char *role;
	void (*main)(struct worker *w);
	unsigned ctl_target;
} master_roles[MASTER_NWORKERS] = {
	/* The queue first: the others connect to it. */
	{"queue", queue_main, CTL_QUEUE},
	{"intake", intake_main, CTL_INTAKE},
	{"delivery", delivery_main, CTL_DELIVERY},
};

static void master_start_worker(struct master *m, struct master_worker *mw);

/* In the child: keep only the descriptors this role needs. */
static void master_child_fds(struct master *m, struct master_worker *mw, int keep_fd)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		fatal("opendir /proc/self/fd: %s", strerror(errno));
	int dfd = dirfd(d);
	/* Tools like valgrind keep descriptors above the limit they report. */
	struct rlimit rl;
	int maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (int)rl.rlim_cur : 1024;
	struct dirent *de;
	int *close_list = NULL;
	size_t nclose = 0;
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd <= 2 || fd >= maxfd || fd == dfd || fd == keep_fd)
			continue;
		if (strcmp(mw->role, "queue") == 0 && fd == m->queue_fd)
			continue;
		int is_listen = 0;
		for (size_t i = 0; i < m->nlisten_fds; i++)
			is_listen |= (fd == m->listen_fds[i]);
		if (is_listen && strcmp(mw->role, "intake") == 0)
			continue;
		close_list = xreallocarray(close_list, nclose + 1, sizeof(int));
		close_list[nclose++] = fd;
	}
	closedir(d);
	for (size_t i = 0; i < nclose; i++)
		close(close_list[i]);
	free(close_list);
}

static void master_exec_role(struct master *m, struct master_worker *mw, int fd)
{
	char title[64];
	sigset_t none;

	log_close();
	master_child_fds(m, mw, fd);
	log_init(mw->role, m->foreground, log_verbose());
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	snprintf(title, sizeof(title), "relayd: %s", mw->role);
	proctitle_set(title);
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.role = mw->role;
	w.cfg = m->cfg;
	w.master_fd = fd;
	w.queue_listen_fd = strcmp(mw->role, "queue") == 0 ? m->queue_fd : -1;
	if (strcmp(mw->role, "intake") == 0) {
		w.listen_fds = m->listen_fds;
		w.nlisten_fds = m->nlisten_fds;
		/* Intake reads the TLS key and auth-users before it drops. */
		w.late_drop = 1;
	}
	worker_run(&w, mw->main);
}

static void master_on_worker(struct ipc_chan *ch, uint32_t type, const uint8_t *p, size_t len,
			     void *arg)
{
	struct master_worker *mw = arg;
	switch (type) {
	case MSG_HEALTH_OK:
		mw->health_missed = 0;
		break;
	case MSG_CTL_REP:
		master_control_reply(mw->m, p, len);
		break;
	case MSG_CTL_PART:
		master_control_part(mw->m, p, len);
		break;
	default:
		ipc_fail(ch, "unexpected message from worker");
	}
}

/* The channel closes before or after SIGCHLD; the pid is what counts. */
static void master_worker_chan_closed(struct ipc_chan *ch, void *arg)
{
	struct master_worker *mw = arg;
	(void)ch;
	master_control_worker_gone(mw->m, mw);
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

int master_reload(struct master *m)
{
	struct config ncfg;
	if (config_load(m->cfg->path, &ncfg, stderr) != 0) {
		log_errx("reload: %s has errors; keeping the running configuration", m->cfg->path);
		config_free(&ncfg);
		return -1;
	}
	/* Sockets stay as they are: listen changes need a restart. */
	config_free(m->cfg);
	*m->cfg = ncfg;
	log_info("reloading configuration");
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (m->workers[i].pid != 0)
			ipc_send(m->workers[i].chan, MSG_RELOAD, NULL, 0);
	return 0;
}

static void master_on_signal(int signo, void *arg)
{
	struct master *m = arg;
	switch (signo) {
	case SIGCHLD:
		master_sigchld(m);
		break;
	case SIGHUP:
		master_reload(m);
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
		uint32_t token = (uint32_t)ev_now(m->loop);
		mw->health_missed++;
		ipc_send(mw->chan, MSG_HEALTH, &token, sizeof(token));
	}
	ev_timer_start(m->loop, &m->health_timer, MASTER_HEALTH_MS);
}

static int master_roles_enable(struct master *m, const char *roles)
{
	for (int i = 0; i < MASTER_NWORKERS; i++) {
		struct master_worker *mw = &m->workers[i];
		mw->m = m;
		mw->role = master_roles[i].role;
		mw->main = master_roles[i].main;
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

static int master_state_dir(const struct config *cfg)
{
	if (mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST) {
		log_errx("state-dir %s: %s", cfg->state_dir, strerror(errno));
		return -1;
	}
	if (getuid() == 0 && cfg->user) {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw == NULL || chown(cfg->state_dir, pw->pw_uid, pw->pw_gid) < 0) {
			log_errx("state-dir %s: cannot hand it to %s", cfg->state_dir, cfg->user);
			return -1;
		}
	}
	return 0;
}

int master_run(struct config *cfg, int foreground, const char *roles)
{
	struct master m;
	char path[512];
	int rc = 1;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.foreground = foreground;
	m.queue_fd = m.control_fd = -1;
	m.started = ev_wallclock();
	if (master_roles_enable(&m, roles) < 0)
		return 2;
	if (master_state_dir(cfg) < 0)
		return 1;
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
	if (getuid() == 0 && cfg->user) {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw && chown(path, pw->pw_uid, pw->pw_gid) < 0)
			log_warnx("chown %s: %s", path, strerror(errno));
	}
	if (master_control_open(&m) < 0)
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
	if (m.queue_fd >= 0) {
		close(m.queue_fd);
		unlink(path);
	}
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
