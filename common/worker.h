/*
 * worker.h - what every worker process shares: its event loop, the config,
 * its channel to the master (health, reload, stop, relayctl requests), and
 * the descriptors the master made for it before the fork.
 *
 * A worker is a program of its own: the master forks and execs relayd
 * with `-W ROLE`, the channel to the master on WORKER_MASTER_FD and the
 * descriptors the role needs from WORKER_FIRST_FD on. The worker gets its
 * configuration (text and the files its role may hold) from the master,
 * drops privileges, and runs the role's entry point, which fills in the
 * hooks, sets up its own state on w->loop, calls ev_run(w->loop) itself
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
/* Builds what the role needs from ncfg, kept aside until commit or abort. */
typedef int (*worker_prepare_fn)(struct worker *w, const struct config *ncfg, char *err,
				 size_t errsz);

#define WORKER_MASTER_FD 3
#define WORKER_FIRST_FD 4

struct worker {
	const char *role;        /* "intake", "queue", "delivery" */
	struct ev_loop *loop;
	struct config *cfg;      /* replaced in place on reload */
	struct ipc_chan *master;
	int *fds;                /* passed by the master: intake's listening */
	size_t nfds;             /* sockets, the queue's queue.sock */
	int64_t started;         /* unix seconds */
	worker_ctl_fn on_ctl;    /* a relayctl command for this worker */
	worker_prepare_fn on_prepare; /* reload, phase one (optional) */
	worker_fn on_reload;     /* reload committed: cfg is the new one */
	worker_fn on_abort;      /* reload refused somewhere: drop what was prepared */
	worker_fn on_stop;       /* SIGTERM from the master; default: ev_break */
	void *ctx;               /* the role's own state */
	struct config *pending;  /* parsed by PREPARE, waiting for COMMIT */
	struct cfg_files incoming; /* FILE pieces received so far */
};

/*
 * The program of a worker (relayd -W ROLE): takes the configuration from
 * the master, drops privileges, runs role_main; does not return.
 */
void worker_run(struct worker *w, void (*role_main)(struct worker *w)) __attribute__((noreturn));
/* Answers a relayctl request: status 0 ok, 1 failed; text is the output. */
void worker_ctl_reply(struct worker *w, uint32_t reqid, int status, const char *text);
/* "STATE_DIR/name" into dst. */
void worker_state_path(const struct config *cfg, const char *name, char *dst, size_t dstsz);
/* A socket connected to STATE_DIR/name (type flags: SOCK_NONBLOCK), or -1 with errno. */
int worker_state_connect(const struct config *cfg, const char *name, int flags);

#endif
