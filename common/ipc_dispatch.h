/*
 * ipc_dispatch.h - the shape every process gives its incoming frames: a
 * table of (message type, handler), looked up in one place, so that the
 * messages a process takes are read in one list and a new one is a row.
 */
#ifndef RELAYD_IPC_DISPATCH_H
#define RELAYD_IPC_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

struct ipc_chan;

/* A frame's payload for ctx; -1 when it is malformed. */
typedef int (*ipc_handler_fn)(void *ctx, const uint8_t *p, size_t len);

struct ipc_handler {
	uint32_t type;
	ipc_handler_fn fn;
};

/*
 * Runs the row of table for type. A type not in the table, or a malformed
 * payload, closes ch with a log line naming the peer (ipc_fail).
 */
void ipc_dispatch(const struct ipc_handler *table, size_t n, struct ipc_chan *ch, void *ctx,
		  uint32_t type, const uint8_t *p, size_t len);
#define IPC_DISPATCH(table, ch, ctx, type, p, len) \
	ipc_dispatch(table, sizeof(table) / sizeof((table)[0]), ch, ctx, type, p, len)

#endif
