/*
 * worker.c - the part of every worker that is not its role: the channel to
 * the master (health, reload, stop, relayctl requests) and signals.
 */
#include "worker.h"
#include "event.h"
#include "ipc.h"
#include "ipc_dispatch.h"
#include "ipc_msg.h"
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int worker_state_connect(const struct config *cfg, const char *name, int flags)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	worker_state_path(cfg, name, sun.sun_path, sizeof(sun.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
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

void worker_state_path(const struct config *cfg, const char *name, char *dst, size_t dstsz)
{
	if ((size_t)snprintf(dst, dstsz, "%s/%s", cfg->state_dir, name) >= dstsz)
		fatal("state path too long: %s/%s", cfg->state_dir, name);
}

/* When started as root with `user` set: become that user. */
static void worker_drop_privileges(const struct worker *w)
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
		struct ipc_msg_ctl_part part = {reqid, {(const uint8_t *)text, IPC_CHUNK_SIZE}};
		ipc_wr_init(&wr);
		ipc_msg_ctl_part_encode(&wr, &part);
		ipc_send_wr(w->master, MSG_CTL_PART, &wr);
		ipc_wr_free(&wr);
		text += IPC_CHUNK_SIZE;
		n -= IPC_CHUNK_SIZE;
	}
	struct ipc_msg_ctl_rep rep = {reqid, (uint32_t)status, ipc_str(text)};
	ipc_wr_init(&wr);
	ipc_msg_ctl_rep_encode(&wr, &rep);
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

/* A FILE piece of the configuration. */
static int worker_msg_file(void *arg, struct ipc_rd *rd)
{
	struct worker *w = arg;
	struct ipc_msg_cfg_file m;
	if (ipc_msg_cfg_file_decode(rd, &m) < 0)
		return -1;
	char *path = ipc_str_dup(m.path);
	cfg_files_append(&w->incoming, path, m.first != 0, m.piece.p, m.piece.n);
	free(path);
	return 0;
}

/* The config text and files received so far, parsed; NULL with err. */
static struct config *worker_cfg_parse(struct worker *w, const char *path, char *err,
				       size_t errsz)
{
	struct config *ncfg = xcalloc(1, sizeof(*ncfg));
	char *text = NULL;
	size_t textsz = 0;
	FILE *errs = open_memstream(&text, &textsz);
	int nerr = config_load_given(path, &w->incoming, ncfg, errs);
	if (errs)
		fclose(errs);
	cfg_files_free(&w->incoming);
	if (nerr != 0) {
		snprintf(err, errsz, "%s", text && *text ? text : "config has errors");
		err[strcspn(err, "\n")] = '\0';
		config_free(ncfg);
		free(ncfg);
		ncfg = NULL;
	}
	free(text);
	return ncfg;
}

static void worker_cfg_drop_pending(struct worker *w)
{
	if (w->pending == NULL)
		return;
	config_free(w->pending);
	free(w->pending);
	w->pending = NULL;
}

/* Reload, phase one: parse and let the role build its part, or refuse. */
static int worker_msg_prepare(void *arg, struct ipc_rd *rd)
{
	struct worker *w = arg;
	struct ipc_msg_text m;
	char path[4096], err[512] = "";
	if (ipc_msg_text_decode(rd, &m) < 0 || ipc_str_copy(path, sizeof(path), m.text) < 0)
		return -1;
	worker_cfg_drop_pending(w);
	w->pending = worker_cfg_parse(w, path, err, sizeof(err));
	if (w->pending != NULL && w->on_prepare &&
	    w->on_prepare(w, w->pending, err, sizeof(err)) < 0)
		worker_cfg_drop_pending(w);
	if (w->pending == NULL) {
		log_warnx("reload refused: %s", err);
		struct ipc_msg_text refused = {ipc_str(err)};
		struct ipc_wr wr;
		ipc_wr_init(&wr);
		ipc_msg_text_encode(&wr, &refused);
		ipc_send_wr(w->master, MSG_CFG_REFUSED, &wr);
		ipc_wr_free(&wr);
		return 0;
	}
	ipc_send(w->master, MSG_CFG_READY, NULL, 0);
	return 0;
}

/* Reload, phase two: every worker is ready; the old config goes. */
static int worker_msg_commit(void *arg, struct ipc_rd *rd)
{
	struct worker *w = arg;
	/* COMMIT without a prepared config: a master out of step. */
	if (w->pending == NULL || ipc_msg_empty_decode(rd) < 0)
		return -1;
	config_free(w->cfg);
	*w->cfg = *w->pending;
	free(w->pending);
	w->pending = NULL;
	log_info("configuration reloaded");
	if (w->on_reload)
		w->on_reload(w);
	return 0;
}

static int worker_msg_abort(void *arg, struct ipc_rd *rd)
{
	struct worker *w = arg;
	if (ipc_msg_empty_decode(rd) < 0)
		return -1;
	if (w->pending != NULL && w->on_abort)
		w->on_abort(w);
	worker_cfg_drop_pending(w);
	log_info("reload aborted; the running configuration stays");
	return 0;
}

static int worker_msg_health(void *arg, struct ipc_rd *rd)
{
	struct worker *w = arg;
	struct ipc_msg_health m;
	struct ipc_wr wr;
	if (ipc_msg_health_decode(rd, &m) < 0)
		return -1;
	ipc_wr_init(&wr);
	ipc_msg_health_encode(&wr, &m);
	ipc_send_wr(w->master, MSG_HEALTH_OK, &wr);
	ipc_wr_free(&wr);
	return 0;
}

static int worker_msg_ctl(void *arg, struct ipc_rd *rd)
{
	struct worker *w = arg;
	struct ipc_msg_ctl_req m;
	char *argv[IPC_CTL_MAX_ARGS + 1] = {0};
	if (ipc_msg_ctl_req_decode(rd, &m) < 0)
		return -1;
	for (uint32_t i = 0; i < m.argc; i++)
		argv[i] = ipc_str_dup(m.argv[i]);
	if (w->on_ctl)
		w->on_ctl(w, m.reqid, (int)m.argc, argv);
	else
		worker_ctl_reply(w, m.reqid, 1, "command not supported by this worker\n");
	for (uint32_t i = 0; i < m.argc; i++)
		free(argv[i]);
	return 0;
}

/* What the master may send a worker. */
static const struct ipc_handler worker_handlers[] = {
	{MSG_HEALTH, 0, worker_msg_health},
	{MSG_CFG_FILE, 0, worker_msg_file},
	{MSG_CFG_PREPARE, 0, worker_msg_prepare},
	{MSG_CFG_COMMIT, 0, worker_msg_commit},
	{MSG_CFG_ABORT, 0, worker_msg_abort},
	{MSG_CTL_REQ, 0, worker_msg_ctl},
};

static void worker_on_master(struct ipc_chan *ch, uint32_t type, const uint8_t *p, size_t len,
			     void *arg)
{
	IPC_DISPATCH(worker_handlers, ch, arg, type, p, len);
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

/*
 * Before the loop: FILE pieces, then START with the config path and the
 * number of descriptors passed. The master checked this config before it
 * sent it: a worker that cannot use it is an impossible state.
 */
static void worker_cfg_start(struct worker *w)
{
	char path[4096], err[512];
	for (;;) {
		uint32_t type;
		uint8_t *p = NULL;
		long len = ipc_read_frame_blocking(WORKER_MASTER_FD, &type, &p);
		if (len < 0)
			fatal("no configuration from the master");
		struct ipc_rd rd;
		ipc_rd_init(&rd, p, (size_t)len);
		if (type == MSG_CFG_FILE && worker_msg_file(w, &rd) == 0) {
			free(p);
			continue;
		}
		struct ipc_msg_cfg_start m;
		ipc_rd_init(&rd, p, (size_t)len);
		int bad = type != MSG_CFG_START || ipc_msg_cfg_start_decode(&rd, &m) < 0 ||
			  ipc_str_copy(path, sizeof(path), m.path) < 0 || m.nfds > 1024;
		free(p);
		if (bad)
			fatal("unexpected message from the master before START");
		w->nfds = m.nfds;
		break;
	}
	w->fds = xcalloc(w->nfds ? w->nfds : 1, sizeof(*w->fds));
	for (size_t i = 0; i < w->nfds; i++)
		w->fds[i] = WORKER_FIRST_FD + (int)i;
	w->cfg = worker_cfg_parse(w, path, err, sizeof(err));
	if (w->cfg == NULL)
		fatal("the master's configuration does not load here: %s", err);
}

void worker_run(struct worker *w, void (*role_main)(struct worker *w))
{
	worker_cfg_start(w);
	/* Nothing the workers write is for other users: queue.db, its WAL. */
	umask(077);
	worker_drop_privileges(w);
	w->loop = ev_loop_new();
	w->started = ev_wallclock();
	ev_signal_add(w->loop, SIGTERM, worker_on_signal, w);
	ev_signal_add(w->loop, SIGINT, worker_on_signal, w);
	/* Reload comes from the master as a message, not as a signal. */
	signal(SIGHUP, SIG_IGN);
	w->master = ipc_chan_new(w->loop, WORKER_MASTER_FD, "master", worker_on_master,
				 worker_master_gone, w);
	if (w->master == NULL)
		fatal("cannot watch the master channel");
	role_main(w);
	ipc_chan_free(w->master);
	w->master = NULL;
	ev_loop_free(w->loop);
	worker_cfg_drop_pending(w);
	cfg_files_free(&w->incoming);
	config_free(w->cfg);
	free(w->cfg);
	free(w->fds);
	log_info("exiting");
	exit(0);
}
