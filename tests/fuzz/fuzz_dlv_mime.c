/*
 * fuzz_dlv_mime.c - libFuzzer target for delivery's conversions of
 * outgoing content: the 8BITMIME / SMTPUTF8 downgrade of a whole message
 * (with every allow mask the first byte picks), and the long-line breaker
 * over the result in pieces. A conversion for a server that takes neither
 * 8-bit bodies nor UTF-8 headers leaves no 8-bit octet at all; a refusal
 * says why and writes nothing; broken lines never exceed DLV_LINE_MAX.
 */
#include "relayd/delivery/dlv_lines.h"
#include "relayd/delivery/dlv_mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out, tmp, broken;
	struct dlv_lines l;
	char why[256];

	if (size == 0)
		return 0;
	unsigned allow = data[0] & 3u;
	size_t step = (size_t)(data[0] >> 2) + 1;
	data++;
	size--;
	buf_init(&out);
	buf_init(&tmp);
	buf_init(&broken);
	enum dlv_mime_result r = dlv_mime_convert(data, size, allow, &out, why, sizeof(why));
	if (r != DLV_MIME_CONVERTED && buf_avail(&out) != 0)
		abort();
	if ((r == DLV_MIME_BAD_BODY || r == DLV_MIME_BAD_HEADER) && why[0] == '\0')
		abort();
	if (r == DLV_MIME_CONVERTED && allow == 0)
		for (size_t i = 0; i < buf_avail(&out); i++)
			if (buf_head(&out)[i] & 0x80)
				abort();
	const uint8_t *msg = r == DLV_MIME_CONVERTED ? buf_head(&out) : data;
	size_t n = r == DLV_MIME_CONVERTED ? buf_avail(&out) : size;
	dlv_lines_init(&l);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step, got;
		const uint8_t *p = dlv_lines_break(&l, msg + off, k, off + k == n, &tmp, &got);
		buf_append(&broken, p, got);
	}
	size_t col = 0;
	for (size_t i = 0; i < buf_avail(&broken); i++) {
		uint8_t c = buf_head(&broken)[i];
		if (c == '\n')
			col = 0;
		else if (c != '\r' && ++col > DLV_LINE_MAX)
			abort();
	}
	dlv_lines_free(&l);
	buf_free(&out);
	buf_free(&tmp);
	buf_free(&broken);
	return 0;
}
