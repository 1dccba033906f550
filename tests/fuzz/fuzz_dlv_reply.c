/*
 * fuzz_dlv_reply.c - libFuzzer target for what the delivery client reads
 * from servers: replies fed in arbitrary pieces, the EHLO extension reader
 * on every complete reply, and dot-stuffing of the same bytes as content
 * (its output must never hold a bare CR or LF).
 */
#include "relayd/delivery/smtpc_reply.h"
#include "relayd/delivery/smtpc_stuff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpc_reply r;
	struct smtpc_caps caps;
	struct smtpc_stuff st;
	struct buf in, out;
	char line[256];

	buf_init(&in);
	smtpc_reply_init(&r);
	/* The first byte chooses the piece size, as a socket would split reads. */
	size_t step = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	for (size_t off = 0; off < size; off += step) {
		size_t k = size - off < step ? size - off : step;
		buf_append(&in, data + off, k);
		for (;;) {
			enum smtpc_parse res = smtpc_reply_read(&r, &in);
			if (res == SMTPC_MORE)
				break;
			if (res == SMTPC_BAD) {
				buf_reset(&in);
				smtpc_reply_init(&r);
				break;
			}
			if (r.code < 200 || r.code > 599 || r.textlen >= sizeof(r.text) ||
			    strlen(r.text) != r.textlen)
				abort();
			smtpc_reply_oneline(&r, line, sizeof(line));
			smtpc_caps_parse(&r, &caps);
			smtpc_reply_init(&r);
		}
	}
	buf_free(&in);

	buf_init(&out);
	smtpc_stuff_init(&st);
	smtpc_stuff(&st, data, size, &out);
	smtpc_stuff_end(&st, &out);
	const uint8_t *p = buf_head(&out);
	size_t n = buf_avail(&out);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			abort();
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			abort();
	}
	if (n < 3 || memcmp(p + n - 3, ".\r\n", 3) != 0)
		abort();
	buf_free(&out);
	return 0;
}
