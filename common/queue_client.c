/*
 * queue_client.c - connect, HELLO, HELLO_OK, reconnect (queue_client.h).
 */
#include "queue_client.h"
#include "ipc_msg.h"
#include "ipc_types.h"
#include "log.h"
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A connected non-blocking socket to queue.sock, or -1 (EAGAIN: backlog full). */
static int queue_client_socket(const struct config *cfg)
{
	/* Non-blocking: a full backlog (no queue worker accepting) is EAGAIN, not a stall. */
	return worker_state_connect(cfg, "queue.sock", SOCK_NONBLOCK);
}

int queue_client_up(const struct queue_client *qc)
{
	return qc->ch != NULL && ipc_is_open(qc->ch) && qc->ready;
}

static void queue_client_hello_ok(struct queue_client *qc, const uint8_t *p, size_t len)
{
	struct ipc_msg_q_hello_ok m;
	struct ipc_rd rd;

	ipc_rd_init(&rd, p, len);
	if (ipc_msg_q_hello_ok_decode(&rd, &m) < 0 || m.role != qc->role || qc->ready) {
		ipc_fail(qc->ch, "bad MSG_Q_HELLO_OK");
		return;
	}
	qc->ready = 1;
	ev_timer_stop(qc->w->loop, &qc->hello_late);
	log_info("connected to the queue worker (pid %u)", m.pid);
	if (qc->on_ready)
		qc->on_ready(qc->arg);
}

static void queue_client_on_frame(struct ipc_chan *ch, uint32_t type, const uint8_t *p,
				  size_t len, void *arg)
{
	struct queue_client *qc = arg;

	if (type == MSG_Q_HELLO_OK)
		queue_client_hello_ok(qc, p, len);
	else if (!qc->ready)
		ipc_fail(ch, "message from the queue before HELLO_OK");
	else
		ipc_dispatch(qc->table, qc->ntable, ch, qc->arg, 0, type, p, len);
}

static void queue_client_on_drain(struct ipc_chan *ch, void *arg)
{
	struct queue_client *qc = arg;
	(void)ch;
	qc->on_drain(qc->arg);
}

static void queue_client_on_close(struct ipc_chan *ch, void *arg)
{
	struct queue_client *qc = arg;

	(void)ch;
	qc->ready = 0;
	ev_timer_stop(qc->w->loop, &qc->hello_late);
	/* The channel is freed from the timer: we are inside its own callback. */
	if (qc->on_lost(qc->arg))
		ev_timer_start(qc->w->loop, &qc->retry, QUEUE_CLIENT_RETRY_MS);
}

/*
 * HELLO is written before the socket joins the loop (a dozen bytes into a
 * new socket do not block), so a caller may wait for the answer at once.
 * Returns the channel's fd, or -1 (and a retry is armed).
 */
static int queue_client_connect(struct queue_client *qc)
{
	struct ipc_msg_q_hello m = {qc->role};
	struct ipc_wr wr;

	if (qc->ch != NULL) {
		ipc_chan_free(qc->ch);
		qc->ch = NULL;
	}
	qc->ready = 0;
	int fd = queue_client_socket(qc->w->cfg);
	if (fd < 0) {
		log_debug("queue not reachable yet; retrying");
		goto fail;
	}
	ipc_wr_init(&wr);
	ipc_msg_q_hello_encode(&wr, &m);
	int rc = ipc_write_frame_blocking(fd, MSG_Q_HELLO, buf_head(&wr.b), buf_avail(&wr.b));
	ipc_wr_free(&wr);
	if (rc < 0) {
		log_warnx("queue.sock: cannot send HELLO; retrying");
		close(fd);
		goto fail;
	}
	qc->ch = ipc_chan_new(qc->w->loop, fd, "queue", queue_client_on_frame,
			      queue_client_on_close, qc);
	if (qc->ch == NULL)
		goto fail; /* the fd is closed */
	if (qc->on_drain)
		ipc_set_drain(qc->ch, queue_client_on_drain);
	ev_timer_start(qc->w->loop, &qc->hello_late, QUEUE_CLIENT_HELLO_MS);
	log_debug("connected to queue.sock; waiting for the queue worker's HELLO_OK");
	return fd;
fail:
	ev_timer_start(qc->w->loop, &qc->retry, QUEUE_CLIENT_RETRY_MS);
	return -1;
}

static void queue_client_retry(void *arg)
{
	queue_client_connect(arg);
}

static void queue_client_hello_late(void *arg)
{
	struct queue_client *qc = arg;
	log_warnx("no queue worker answers on queue.sock after %d s; %s",
		  QUEUE_CLIENT_HELLO_MS / 1000, qc->late_note);
}

void queue_client_start(struct queue_client *qc, int wait_ms)
{
	ev_timer_init(&qc->retry, queue_client_retry, qc);
	ev_timer_init(&qc->hello_late, queue_client_hello_late, qc);
	int fd = queue_client_connect(qc);
	/* The loop reads the answer first thing; clients connecting meanwhile
	 * wait in the listen backlog rather than get 451 for a race. */
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	if (fd >= 0 && wait_ms > 0 && poll(&pfd, 1, wait_ms) == 0)
		log_debug("no answer from the queue worker at start; going on without it");
}
