/*
 * ipc_dispatch.c - table lookup for incoming frames.
 */
#include "ipc_dispatch.h"
#include "ipc.h"

void ipc_dispatch(const struct ipc_handler *table, size_t n, struct ipc_chan *ch, void *ctx,
		  uint32_t type, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].type != type)
			continue;
		if (table[i].fn(ctx, p, len) < 0)
			ipc_fail(ch, "malformed message");
		return;
	}
	ipc_fail(ch, "unexpected message");
}
