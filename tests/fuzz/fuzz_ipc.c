/*
 * fuzz_ipc.c - libFuzzer target for IPC framing and the payload reader:
 * frames are cut from the input as a channel would, and each payload is
 * read as the largest message (a delivery job) would read it.
 */
#include "common/ipc.h"

#include <stdint.h>
#include <stdlib.h>

static void fuzz_read_job(const uint8_t *p, size_t len)
{
	struct ipc_rd rd;
	char small[64];
	ipc_rd_init(&rd, p, len);
	ipc_get_u64(&rd);
	ipc_get_str(&rd, small, sizeof(small));
	free(ipc_get_strdup(&rd));
	ipc_get_i64(&rd);
	uint32_t n = ipc_get_u32(&rd);
	for (uint32_t i = 0; i < n && !rd.err; i++) {
		size_t blen;
		const uint8_t *b = ipc_get_bytes(&rd, &blen);
		if (b != NULL && (b < p || b + blen > p + len))
			abort();
	}
	if (rd.off > rd.len)
		abort();
	(void)ipc_rd_done(&rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	for (;;) {
		uint32_t type, len;
		enum ipc_parse_result r = ipc_parse_frame(data + off, size - off, &type, &len);
		if (r != IPC_PARSE_FRAME)
			break;
		if (len > IPC_MAX_FRAME || IPC_HDR_SIZE + (size_t)len > size - off)
			abort();
		fuzz_read_job(data + off + IPC_HDR_SIZE, len);
		off += IPC_HDR_SIZE + len;
	}
	return 0;
}
