/*
 * worker.c - the part of every worker that is not its role: the channel to
 * the master (health, reload, stop, relayctl requests), signals, and the
 * connection to the queue worker's socket.
 */
#include "worker.h"
#include "event.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "xmalloc.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_MAX_ARGS 16

/* Configs replaced by reload stay allocated: sessions may still point into them. */
static struct config **worker_old_cfgs;
static size_t worker_nold_cfgs;

void worker_state_path(const struct config *cfg, const char *name, char *dst, size_t dstsz)
{
	if ((size_t)snprintf(dst, dstsz, "%s/%s", cfg->state_dir, name) >= dstsz)
		fatal("state path too long: %s/%s", cfg->state_dir, name);
}

int worker_connect_queue(const struct config *cfg)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	worker_state_path(cfg, "queue.sock", sun.sun_path, sizeof(sun.sun_path));
	/* Non-blocking: a full backlog (no queue worker accepting) is EAGAIN, not a stall. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void worker_drop_privileges(const struct worker *w)
{
	const struct config *cfg = w->cfg;
	if (getuid() != 0 || cfg->user == NULL)
		return;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL)
		fatal("user %s does not exist", cfg->user);
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		fatal("cannot drop privileges to %s: %s", cfg->user, strerror(errno));
}

void worker_ctl_reply(struct worker *w, uint32_t reqid, int status, const char *text)
{
	struct ipc_wr wr;
	size_t n = strlen(text);
	/* Any length: whole chunks go ahead as PARTs, the REP carries the rest. */
	while (n > IPC_CHUNK_SIZE) {
		ipc_wr_init(&wr);
		ipc_put_u32(&wr, reqid);
		ipc_put_bytes(&wr, text, IPC_CHUNK_SIZE);
		ipc_send_wr(w->master, MSG_CTL_PART, &wr);
		ipc_wr_free(&wr);
		text += IPC_CHUNK_SIZE;
		n -= IPC_CHUNK_SIZE;
	}
	ipc_wr_init(&wr);
	ipc_put_u32(&wr, reqid);
	ipc_put_u32(&wr, (uint32_t)status);
	ipc_put_str(&wr, text);
	ipc_send_wr(w->master, MSG_CTL_REP, &wr);
	ipc_wr_free(&wr);
}

static void worker_stop(struct worker *w)
{
	if (w->on_stop)
		w->on_stop(w);
	else
		ev_break(w->loop);
}

static void worker_reload(struct worker *w)
{
	struct config *ncfg = xcalloc(1, sizeof(*ncfg));
	if (config_load(w->cfg->path, ncfg, stderr) != 0) {
		log_warnx("reload: config has errors, keeping the old one");
		config_free(ncfg);
		free(ncfg);
		return;
	}
	struct config *old = xmalloc(sizeof(*old));
	*old = *w->cfg;
	*w->cfg = *ncfg;
	free(ncfg);
	worker_old_cfgs = xreallocarray(worker_old_cfgs, worker_nold_cfgs + 1, sizeof(*worker_old_cfgs));
	worker_old_cfgs[worker_nold_cfgs++] = old;
	log_info("configuration reloaded");
	if (w->on_reload)
		w->on_reload(w);
}

static void worker_ctl(struct worker *w, const uint8_t *p, size_t len)
{
	struct ipc_rd rd;
	char *argv[CTL_MAX_ARGS + 1] = {0};
	ipc_rd_init(&rd, p, len);
	uint32_t reqid = ipc_get_u32(&rd);
	uint32_t argc = ipc_get_u32(&rd);
	if (argc == 0 || argc > CTL_MAX_ARGS) {
		ipc_fail(w->master, "bad control request");
		return;
	}
	for (uint32_t i = 0; i < argc; i++)
		argv[i] = ipc_get_strdup(&rd);
	if (ipc_rd_done(&rd) < 0)
		ipc_fail(w->master, "bad control request");
	else if (w->on_ctl)
		w->on_ctl(w, reqid, (int)argc, argv);
	else
		worker_ctl_reply(w, reqid, 1, "command not supported by this worker\n");
	for (uint32_t i = 0; i < argc; i++)
		free(argv[i]);
}

static void worker_on_master(struct ipc_chan *ch, uint32_t type, const uint8_t *p, size_t len,
			     void *arg)
{
	struct worker *w = arg;
	switch (type) {
	case MSG_HEALTH:
		ipc_send(ch, MSG_HEALTH_OK, p, len);
		break;
	case MSG_RELOAD:
		worker_reload(w);
		break;
	case MSG_CTL_REQ:
		worker_ctl(w, p, len);
		break;
	default:
		ipc_fail(ch, "unexpected message from master");
	}
}

static void worker_master_gone(struct ipc_chan *ch, void *arg)
{
	struct worker *w = arg;
	(void)ch;
	log_warnx("lost the master; exiting");
	ev_break(w->loop);
}

static void worker_on_signal(int signo, void *arg)
{
	struct worker *w = arg;
	if (signo == SIGTERM || signo == SIGINT)
		worker_stop(w);
}

void worker_run(struct worker *w, void (*role_main)(struct worker *w))
{
	w->loop = ev_loop_new();
	w->started = ev_wallclock();
	ev_signal_add(w->loop, SIGTERM, worker_on_signal, w);
	ev_signal_add(w->loop, SIGINT, worker_on_signal, w);
	/* Reload comes from the master as a message, not as a signal. */
	signal(SIGHUP, SIG_IGN);
	w->master = ipc_chan_new(w->loop, w->master_fd, "master", worker_on_master,
				 worker_master_gone, w);
	if (w->master == NULL)
		fatal("cannot watch the master channel");
	if (!w->late_drop)
		worker_drop_privileges(w);
	role_main(w);
	ipc_chan_free(w->master);
	w->master = NULL;
	ev_loop_free(w->loop);
	for (size_t i = 0; i < worker_nold_cfgs; i++) {
		config_free(worker_old_cfgs[i]);
		free(worker_old_cfgs[i]);
	}
	free(worker_old_cfgs);
	config_free(w->cfg);
	log_info("exiting");
	exit(0);
}

