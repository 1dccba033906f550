/*
 * ipc_dispatch.h - the shape every process gives its incoming frames: a
 * table of (message type, sender, handler), looked up in one place, so that
 * the messages a process takes are read in one list and a new one is a row.
 */
#ifndef RELAYD_IPC_DISPATCH_H
#define RELAYD_IPC_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

struct ipc_chan;
struct ipc_rd;

/* A frame's payload for ctx (decoded with ipc_msg.h); -1 when it is malformed. */
typedef int (*ipc_handler_fn)(void *ctx, struct ipc_rd *rd);

struct ipc_handler {
	uint32_t type;
	/* The sender this row is for: on a channel whose peers have roles (the
	 * queue's: 0 before HELLO, then enum ipc_role), a row is taken only from
	 * a peer of exactly that role; on the others every sender is 0. */
	int from;
	ipc_handler_fn fn;
};

/*
 * Runs the row of table for type and the sender's role. A type not in the
 * table for that sender, or a malformed payload, closes ch with a log line
 * naming the peer (ipc_fail).
 */
void ipc_dispatch(const struct ipc_handler *table, size_t n, struct ipc_chan *ch, void *ctx,
		  int from, uint32_t type, const uint8_t *p, size_t len);
#define IPC_DISPATCH_FROM(table, ch, ctx, from, type, p, len) \
	ipc_dispatch(table, sizeof(table) / sizeof((table)[0]), ch, ctx, from, type, p, len)
#define IPC_DISPATCH(table, ch, ctx, type, p, len) IPC_DISPATCH_FROM(table, ch, ctx, 0, type, p, len)

#endif
