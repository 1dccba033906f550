/*
 * queue_client.h - a worker's channel to the queue worker, for intake and
 * delivery alike: connect to queue.sock, say HELLO with the role, take the
 * queue's frames only once its HELLO_OK shows that a queue worker serves
 * the channel, and reconnect after a loss.
 *
 * The queue socket is made by the master, so a connect succeeds even when
 * no queue worker runs: the connection waits in the listener's backlog
 * until one accepts it. Without HELLO_OK in QUEUE_CLIENT_HELLO_MS the
 * client says so in the log and keeps waiting; reconnecting would only
 * leave a dead connection in that backlog each time, and a full backlog
 * blocks connect().
 */
#ifndef RELAYD_QUEUE_CLIENT_H
#define RELAYD_QUEUE_CLIENT_H

#include "event.h"
#include "ipc.h"
#include "ipc_dispatch.h"

#include <stddef.h>
#include <stdint.h>

#define QUEUE_CLIENT_RETRY_MS 1000
#define QUEUE_CLIENT_HELLO_MS 2000

struct worker;

struct queue_client {
	/* Set by the role before queue_client_start. */
	struct worker *w;
	uint32_t role;                    /* enum ipc_role */
	const struct ipc_handler *table;  /* the queue's frames after HELLO_OK */
	size_t ntable;
	void *arg;                        /* the handlers' and callbacks' ctx */
	void (*on_ready)(void *arg);      /* HELLO_OK came (optional) */
	/* The channel is gone (after HELLO_OK or not). Returns 1 to
	 * reconnect, 0 when the worker is stopping. */
	int (*on_lost)(void *arg);
	void (*on_drain)(void *arg);      /* optional: the channel drained (ipc_set_drain) */
	const char *late_note;            /* ends the "no queue worker answers" line */

	struct ipc_chan *ch;              /* NULL or closed while the queue is away */
	int ready;                        /* HELLO_OK came on ch */
	struct ev_timer retry;
	struct ev_timer hello_late;
};

/*
 * Connects (and keeps reconnecting). With wait_ms > 0, waits that long at
 * most for the queue's answer to be there to read, so that a worker
 * starting alongside the queue does not serve before it is connected.
 */
void queue_client_start(struct queue_client *qc, int wait_ms);
/* 1 when a queue worker answered HELLO on an open channel. */
int queue_client_up(const struct queue_client *qc);

#endif
