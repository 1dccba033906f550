/*
 * worker.h - what every worker process shares: its event loop, the config,
 * its channel to the master (health, reload, stop, relayctl requests), and
 * the descriptors the master made for it before the fork.
 *
 * A role's entry point (intake_main, queue_main, delivery_main) fills in
 * the hooks, sets up its own state on w->loop, calls ev_run(w->loop) itself
 * and returns when the loop ends (on_stop calls ev_break once the role has
 * finished what it must); the process then exits.
 */
#ifndef RELAYD_WORKER_H
#define RELAYD_WORKER_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct ipc_chan;
struct worker;

typedef void (*worker_ctl_fn)(struct worker *w, uint32_t reqid, int argc, char **argv);
typedef void (*worker_fn)(struct worker *w);

struct worker {
	const char *role;        /* "intake", "queue", "delivery" */
	struct ev_loop *loop;
	struct config *cfg;      /* replaced in place on reload */
	struct ipc_chan *master;
	int master_fd;           /* the master's end, wrapped by worker_run */
	int *listen_fds;         /* intake: one per cfg->listens entry */
	size_t nlisten_fds;
	int queue_listen_fd;     /* queue: the listening STATE_DIR/queue.sock */
	int64_t started;         /* unix seconds */
	int late_drop;           /* the role calls worker_drop_privileges itself */
	worker_ctl_fn on_ctl;    /* a relayctl command for this worker */
	worker_fn on_reload;     /* after cfg was reread */
	worker_fn on_stop;       /* SIGTERM from the master; default: ev_break */
	void *ctx;               /* the role's own state */
};

/* Runs a worker role in this (forked) process; does not return. */
void worker_run(struct worker *w, void (*role_main)(struct worker *w)) __attribute__((noreturn));
/*
 * When started as root with `user` set: become that user. worker_run does
 * it before the role starts, unless late_drop is set, for a role that must
 * first read files only root may read (intake's TLS key).
 */
void worker_drop_privileges(const struct worker *w);
/* Answers a relayctl request: status 0 ok, 1 failed; text is the output. */
void worker_ctl_reply(struct worker *w, uint32_t reqid, int status, const char *text);
/* A connected non-blocking socket to queue.sock, or -1 (EAGAIN: backlog full). */
int worker_connect_queue(const struct config *cfg);
/* "STATE_DIR/name" into dst. */
void worker_state_path(const struct config *cfg, const char *name, char *dst, size_t dstsz);

/* The roles. */
void intake_main(struct worker *w);
void queue_main(struct worker *w);
void delivery_main(struct worker *w);

#endif
