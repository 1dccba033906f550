/*
 * ipc_dispatch.c - table lookup for incoming frames.
 */
#include "ipc_dispatch.h"
#include "ipc.h"

void ipc_dispatch(const struct ipc_handler *table, size_t n, struct ipc_chan *ch, void *ctx,
		  int from, uint32_t type, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].type != type)
			continue;
		if (table[i].from != from)
			break;
		struct ipc_rd rd;
		ipc_rd_init(&rd, p, len);
		if (table[i].fn(ctx, &rd) < 0)
			ipc_fail(ch, "malformed message");
		return;
	}
	ipc_fail(ch, "unexpected message");
}
