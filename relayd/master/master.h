/*
 * master.h - the supervisor process: owns the sockets, forks the workers,
 * restarts them, reloads, stops, and answers relayctl on control.sock.
 */
#ifndef RELAYD_MASTER_H
#define RELAYD_MASTER_H

#include "common/config.h"
#include "common/event.h"
#include "common/worker.h"
#include "relayd/sendmail/maildrop.h"

#include <sys/types.h>

struct ipc_chan;
struct ipc_msg_ctl_part;
struct ipc_msg_ctl_rep;
struct master_req;
struct master_reload;
struct master_metrics;

struct master;

struct master_worker {
	struct master *m;
	const char *role;
	unsigned ctl_target;         /* enum ctl_target bit */
	int enabled;                 /* -X can leave a role out */
	pid_t pid;                   /* 0: not running */
	int64_t started;
	struct ipc_chan *chan;
	struct ev_timer restart;
	unsigned quick_deaths;       /* deaths soon after start, for backoff */
	int health_missed;
	int answered;                /* answered HEALTH since its start: it runs */
};

#define MASTER_NWORKERS 3

struct master {
	struct ev_loop *loop;
	struct config *cfg;
	int foreground;
	int *listen_fds;
	size_t nlisten_fds;
	int queue_fd;
	int control_fd;
	int64_t started;
	struct master_worker workers[MASTER_NWORKERS];
	int stopping;
	struct ev_timer stop_timer;
	struct ev_timer health_timer;
	struct master_req *reqs;
	uint32_t next_reqid;
	struct master_reload *reload; /* the reload in progress, or NULL */
	char exe[4096];               /* this program, exec'd for each worker */
	int verbose;
	int ready_told;               /* READY=1 went to the service manager */
	struct master_metrics *metrics; /* metrics-listen, or NULL */
};

/* roles: NULL for all, or "intake,queue". Returns the exit status. */
int master_run(struct config *cfg, int foreground, int verbose, const char *roles);
/* relayd -W ROLE: the program of one worker; does not return. */
void master_worker_main(const char *role) __attribute__((noreturn));

/* master_config.c */
/* The config text and the role's files, then a frame of type (START: with nfds). */
void master_config_send(struct master_worker *mw, const struct config *cfg, uint32_t type,
			uint32_t nfds);
/*
 * Rereads the config and its files and runs the two-phase reload; the
 * outcome goes to the relayctl request ctl_id (0: none, e.g. SIGHUP).
 */
int master_reload(struct master *m, uint32_t ctl_id);
/* A worker's READY (ready 1) or REFUSED answer to PREPARE. */
void master_reload_answer(struct master_worker *mw, int ready, const char *reason);
void master_reload_worker_gone(struct master_worker *mw);
void master_reload_cancel(struct master *m);

/* master_control.c */
int master_control_open(struct master *m);
void master_control_close(struct master *m);
/* A worker answered a forwarded request. */
void master_control_reply(struct master *m, const struct ipc_msg_ctl_rep *rep);
/* A worker sent a piece of a long answer ahead of its reply. */
void master_control_part(struct master *m, const struct ipc_msg_ctl_part *part);
/* A worker went away: its pending requests get an error. */
void master_control_worker_gone(struct master *m, struct master_worker *mw);
/* The master's own answer to a request it kept waiting (reload). */
void master_control_done(struct master *m, uint32_t id, int status, const char *text);

/* master_metrics.c: the Prometheus endpoint (metrics-listen). */
/* Its polls of the workers use this control request id (and the target
 * bit); relayctl's requests never do: theirs start at 1 << 8. */
#define MASTER_METRICS_REQID 0u
int master_metrics_open(struct master *m);
void master_metrics_close(struct master *m);
/* A worker's answer to a poll, and the parts of a long one. */
void master_metrics_reply(struct master_worker *mw, const struct ipc_msg_ctl_rep *rep);
void master_metrics_part(struct master_worker *mw, const struct ipc_msg_ctl_part *part);
/* A worker died (restarting: the master starts it again). */
void master_metrics_worker_gone(struct master_worker *mw, int restarting);

/* master_notify.c: readiness, reload and stop told to systemd (sd_notify). */
/* A worker just started: probe it; its answer shows it runs its loop. */
void master_notify_started(struct master_worker *mw);
/* Its HEALTH answer: READY=1 once every enabled worker has answered. */
void master_notify_answered(struct master_worker *mw);
/* RELOADING=1 (begin) or READY=1 (the reload's outcome is known). */
void master_notify_reload(struct master *m, int begin);
void master_notify_stopping(void);

/* master_statedir.c */
/* Makes, hands over and checks state-dir and its maildrop; -1 with the reason in err. */
int master_state_dir(const struct config *cfg, char *err, size_t errsz);
/* The workers' uid and gid: `user`'s when started as root, else our own. */
void master_owner(const struct config *cfg, uid_t *uid, gid_t *gid);

/* master_sockets.c */
/* intake's sockets: the TCP listeners, then submit.sock (the last one). */
int master_listen_open(struct master *m);
/* Removes submit.sock (at exit). */
void master_listen_close(struct master *m);
int master_unix_listen(const char *path, mode_t mode);
/* A listening TCP socket (non-blocking, close-on-exec); -1 + errno. */
int master_tcp_listen(const struct cfg_listen *l);
/* chown to the workers' uid and gid (-1: keep the group's), then chmod. */
void master_unix_hand_over(const struct config *cfg, const char *path, gid_t gid, mode_t mode);

#endif
