/*
 * queue.c - the queue worker: opens queue.db and recovers it, accepts
 * intake and delivery on queue.sock, dispatches their frames from one
 * table, and owns the single write transaction (group commit): writes of
 * every peer go into it, and it is committed at the end of the loop
 * iteration in which something needs to be durable (an END, a delivery
 * result), so one fsync covers every message that finished meanwhile.
 */
#include "queue/queue.h"
#include "common/ipc_dispatch.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/peercred.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Retries come up to 5% early: a small spread, never past retry-max. */
#define QUEUE_JITTER_PCT 5
/* Longest sleep of the retry timer: bounds the effect of wall clock jumps. */
#define QUEUE_WAKE_MAX_MS (3600 * 1000)

static int queue_hello(void *ctx, struct ipc_rd *rd);

/* Which peer may send what: the sender column is the peer's role (0 until HELLO). */
static const struct ipc_handler queue_handlers[] = {
	{MSG_Q_HELLO, 0, queue_hello},
	{MSG_Q_BEGIN, ROLE_INTAKE, queue_in_begin},
	{MSG_Q_RCPT, ROLE_INTAKE, queue_in_rcpt},
	{MSG_Q_CONTENT, ROLE_INTAKE, queue_in_content},
	{MSG_Q_END, ROLE_INTAKE, queue_in_end},
	{MSG_Q_ABORT, ROLE_INTAKE, queue_in_abort},
	{MSG_D_READY, ROLE_DELIVERY, queue_dlv_ready},
	{MSG_D_CHUNK_REQ, ROLE_DELIVERY, queue_dlv_chunk_req},
	{MSG_D_RESULT, ROLE_DELIVERY, queue_dlv_result},
	{MSG_D_DONE, ROLE_DELIVERY, queue_dlv_done},
	{MSG_D_SUSPENDED, ROLE_DELIVERY, queue_dlv_suspended},
	{MSG_D_TRACE, ROLE_DELIVERY, queue_dlv_trace},
};

static int64_t queue_wallclock(void)
{
	return ev_wallclock();
}

void queue_policy_load(struct queue *q)
{
	const struct config *cfg = q->w->cfg;
	q->pol.retry_min = cfg->retry_min;
	q->pol.retry_max = cfg->retry_max < cfg->retry_min ? cfg->retry_min : cfg->retry_max;
	q->pol.lifetime = cfg->queue_lifetime;
	q->pol.delay_warning = cfg->delay_warning;
	q->pol.jitter_pct = QUEUE_JITTER_PCT;
	q->pol.hostname = cfg->hostname;
	q->pol.bounce_size_limit = cfg->bounce_size_limit;
	q->pol.postmaster = cfg->postmaster;
}

/*
 * The longest a write transaction stays open. An END commits at once (group
 * commit); content of a message still streaming, in-flight marks of the
 * scheduler and deletions after an ABORT have nothing to wait for, and must
 * not hold the write lock and the WAL until the next END comes.
 */
#define QUEUE_TXN_MAX_MS 20

int queue_txn(struct queue *q)
{
	if (queue_store_in_txn(q->st))
		return 0;
	/* Counted even when BEGIN fails: writers of this attempt are told apart. */
	q->gen++;
	if (!ev_timer_pending(&q->txn_timer))
		ev_timer_start(q->w->loop, &q->txn_timer, QUEUE_TXN_MAX_MS);
	return queue_store_begin(q->st);
}

static void queue_on_txn_timer(void *arg)
{
	struct queue *q = arg;
	if (queue_store_in_txn(q->st))
		queue_commit(q);
}

/*
 * How long the queue hands out no job after a lost transaction (disk full,
 * I/O error): retry-min, within these bounds. Handing the same mail out
 * again at once would deliver it again and again, each result failing to
 * commit, and flood the log.
 */
#define QUEUE_TROUBLE_MIN_S 5
#define QUEUE_TROUBLE_MAX_S 60

/* What the failed transaction held is gone: tell its senders, and bring
 * the in-flight marks back in line with the jobs in memory. */
static void queue_txn_lost(struct queue *q, int rc)
{
	int64_t now = q->now();
	int64_t hold = q->pol.retry_min < QUEUE_TROUBLE_MIN_S ? QUEUE_TROUBLE_MIN_S
		       : q->pol.retry_min > QUEUE_TROUBLE_MAX_S ? QUEUE_TROUBLE_MAX_S
								: q->pol.retry_min;
	/* One line per interval, however often it fails within it. */
	if (now - q->trouble_logged >= hold) {
		log_warnx("queue.db: transaction rolled back (%s); no deliveries for %llds%s",
			  sqlite3_errstr(rc), (long long)hold,
			  q->trouble_quiet ? " (it failed again since the last report)" : "");
		q->trouble_logged = now;
		q->trouble_quiet = 0;
	} else
		q->trouble_quiet++;
	q->trouble_until = now + hold;
	queue_in_rolled_back(q, rc);
	queue_dlv_resync(q);
}

void queue_txn_abort(struct queue *q)
{
	int rc = queue_store_errcode(q->st);
	queue_store_rollback(q->st);
	q->want_commit = 0;
	queue_txn_lost(q, rc);
	queue_kick(q);
}

int queue_commit(struct queue *q)
{
	if (!queue_store_in_txn(q->st))
		return 0;
	if (queue_store_commit(q->st) < 0) {
		q->want_commit = 0;
		queue_txn_lost(q, queue_store_errcode(q->st));
		return -1;
	}
	q->want_commit = 0;
	queue_in_committed(q);
	return 0;
}

void queue_kick(struct queue *q)
{
	if (!ev_timer_pending(&q->kick))
		ev_timer_start(q->w->loop, &q->kick, 0);
}

/* The retry timer for the earliest next attempt, when delivery can take it. */
static void queue_arm_wake(struct queue *q)
{
	int64_t when, now = q->now();
	ev_timer_stop(q->w->loop, &q->wake);
	if (q->dlv == NULL || q->credits == 0)
		return; /* READY or a new delivery peer kicks us */
	if (q->trouble_until > now)
		when = q->trouble_until;
	else if (queue_store_next_due(q->st, &when) != 1)
		return;
	uint64_t ms = when <= now ? 0 : (uint64_t)(when - now) * 1000;
	ev_timer_start(q->w->loop, &q->wake, ms > QUEUE_WAKE_MAX_MS ? QUEUE_WAKE_MAX_MS : ms);
}

static void queue_on_kick(void *arg)
{
	struct queue *q = arg;
	if (q->want_commit)
		queue_commit(q);
	/* Nothing is handed out while an END waits in an open transaction:
	 * delivery must never see a message before it is durable. */
	if (q->waiting == NULL && q->trouble_until <= q->now())
		queue_dlv_schedule(q);
	queue_arm_wake(q);
}

static void queue_on_wake(void *arg)
{
	queue_on_kick(arg);
}

/* A peer is served from its HELLO on; HELLO_OK tells it a worker is here. */
static int queue_hello(void *ctx, struct ipc_rd *rd)
{
	struct queue_peer *p = ctx;
	struct ipc_msg_q_hello m;
	struct ipc_wr wr;
	if (ipc_msg_q_hello_decode(rd, &m) < 0 ||
	    (m.role != ROLE_INTAKE && m.role != ROLE_DELIVERY))
		return -1;
	p->role = (int)m.role;
	struct ipc_msg_q_hello_ok ok = {m.role, (uint32_t)getpid()};
	ipc_wr_init(&wr);
	ipc_msg_q_hello_ok_encode(&wr, &ok);
	ipc_send_wr(p->ch, MSG_Q_HELLO_OK, &wr);
	ipc_wr_free(&wr);
	if (m.role == ROLE_DELIVERY) {
		struct queue *q = p->q;
		if (q->dlv != NULL) {
			log_warnx("a second delivery peer connected; dropping the first");
			ipc_fail(q->dlv->ch, "replaced");
		}
		q->dlv = p;
		q->credits = 0;
	}
	log_debug("%s connected", m.role == ROLE_INTAKE ? "intake" : "delivery");
	return 0;
}

static void queue_on_frame(struct ipc_chan *ch, uint32_t type, const uint8_t *payload, size_t len,
			   void *arg)
{
	struct queue_peer *p = arg;
	IPC_DISPATCH_FROM(queue_handlers, ch, p, p->role, type, payload, len);
}

static void queue_on_peer_close(struct ipc_chan *ch, void *arg)
{
	struct queue_peer *p = arg;
	struct queue *q = p->q;
	if (p->role == ROLE_INTAKE)
		queue_in_gone(p);
	if (q->dlv == p) {
		q->dlv = NULL;
		queue_dlv_gone(q);
	}
	for (struct queue_peer **pp = &q->peers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	ipc_chan_free(ch);
	idmap_free(&p->sess);
	free(p);
}

static void queue_on_accept(int fd, uint32_t events, void *arg)
{
	struct queue *q = arg;
	(void)events;
	for (;;) {
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warnx("queue.sock: accept: %s", strerror(errno));
			return;
		}
		/* Only relayd's workers, which all run as our uid, may queue or take mail. */
		struct peercred pc;
		if (peercred_get(s, &pc) < 0 || pc.uid != geteuid()) {
			log_warnx("queue.sock: refused pid %d, uid %u: not a relayd worker",
				  (int)pc.pid, (unsigned)pc.uid);
			close(s);
			continue;
		}
		struct queue_peer *p = xcalloc(1, sizeof(*p));
		p->q = q;
		p->ch = ipc_chan_new(q->w->loop, s, "queue peer", queue_on_frame,
				     queue_on_peer_close, p);
		if (p->ch == NULL) {
			close(s);
			free(p);
			continue;
		}
		p->next = q->peers;
		q->peers = p;
	}
}

/* Finish what is in the transaction, then leave the loop. */
static void queue_on_stop(struct worker *w)
{
	struct queue *q = w->ctx;
	if (queue_store_in_txn(q->st))
		queue_commit(q);
	ev_break(w->loop);
}

static void queue_on_reload(struct worker *w)
{
	struct queue *q = w->ctx;
	queue_policy_load(q);
	queue_kick(q);
}

/* Mail is readable by relayd alone, also in files an older relayd made. */
static void queue_private_files(const char *db)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char path[4200];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
		if (chmod(path, 0600) < 0 && errno != ENOENT)
			log_warnx("chmod 0600 %s: %s", path, strerror(errno));
	}
}

void queue_main(struct worker *w)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	char path[4096];
	long incomplete = 0, inflight = 0, messages = 0;

	q->w = w;
	q->now = queue_wallclock;
	if (w->nfds != 1)
		fatal("queue: expected queue.sock from the master, got %zu descriptors", w->nfds);
	q->listen_fd = w->fds[0];
	q->waiting_tail = &q->waiting;
	w->ctx = q;
	queue_policy_load(q);
	ev_timer_init(&q->kick, queue_on_kick, q);
	ev_timer_init(&q->wake, queue_on_wake, q);
	ev_timer_init(&q->txn_timer, queue_on_txn_timer, q);

	worker_state_path(w->cfg, "queue.db", path, sizeof(path));
	queue_private_files(path);
	q->st = queue_store_open(path);
	if (q->st == NULL)
		fatal("cannot open the queue %s", path);
	if (queue_store_recover(q->st, q->now(), &incomplete, &inflight, &messages) < 0)
		fatal("cannot recover the queue %s", path);
	log_info("queue: %ld message(s) queued; recovery discarded %ld incomplete message(s), "
		 "requeued %ld in-flight recipient(s)", messages, incomplete, inflight);

	w->on_ctl = queue_ctl;
	w->on_stop = queue_on_stop;
	w->on_reload = queue_on_reload;
	if (ev_io_add(w->loop, q->listen_fd, EPOLLIN, queue_on_accept, q) < 0)
		fatal("queue.sock: %s", strerror(errno));

	ev_run(w->loop);

	ev_io_del(w->loop, q->listen_fd);
	while (q->peers)
		ipc_fail(q->peers->ch, "queue stopping");
	ev_timer_stop(w->loop, &q->kick);
	ev_timer_stop(w->loop, &q->wake);
	ev_timer_stop(w->loop, &q->txn_timer);
	queue_store_close(q->st);
	idmap_free(&q->jobs);
	free(q);
	w->ctx = NULL;
}
