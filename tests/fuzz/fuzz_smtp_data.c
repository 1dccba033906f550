/*
 * fuzz_smtp_data.c - libFuzzer target for the DATA reader. The first
 * octet picks a chunk size; the rest is fed in chunks of that size and
 * in one piece, and both runs must agree (end, error, content). Content
 * may never hold a bare CR or LF, nor contain an end of data.
 */
#include "relayd/intake/smtp_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t feed(const uint8_t *p, size_t n, size_t step, struct smtp_data *d, struct buf *out,
		   int *done)
{
	size_t off = 0;
	smtp_data_init(d, 1 << 16);
	*done = 0;
	while (off < n && !*done) {
		size_t take = n - off < step ? n - off : step;
		size_t used = smtp_data_feed(d, p + off, take, out, done);
		if (used > take || (!*done && used != take))
			abort();
		off += used;
	}
	return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] % 17 + 1;
	struct smtp_data d1, d2;
	struct buf o1, o2;
	int done1, done2;

	buf_init(&o1);
	buf_init(&o2);
	size_t u1 = feed(data + 1, size - 1, step, &d1, &o1, &done1);
	size_t u2 = feed(data + 1, size - 1, size, &d2, &o2, &done2);
	if (u1 != u2 || done1 != done2 || d1.err != d2.err || d1.size != d2.size)
		abort();
	if (d1.err == SR_NONE) {
		size_t n = buf_avail(&o1);
		if (n != buf_avail(&o2) || n != d1.size)
			abort();
		if (n == 0)
			goto out;
		if (memcmp(buf_head(&o1), buf_head(&o2), n) != 0)
			abort();
		/* Clean content: CR only before LF, LF only after CR, no NUL. */
		const uint8_t *c = buf_head(&o1);
		for (size_t i = 0; i < n; i++) {
			if (c[i] == '\0' || (c[i] == '\r' && (i + 1 >= n || c[i + 1] != '\n')) ||
			    (c[i] == '\n' && (i == 0 || c[i - 1] != '\r')))
				if (!(c[i] == '\r' && i + 1 == n && !done1))
					abort();
		}
		/* A completed message ends with CRLF (or is empty). */
		if (done1 && (n < 2 || c[n - 2] != '\r' || c[n - 1] != '\n'))
			abort();
	}
out:
	buf_free(&o1);
	buf_free(&o2);
	return 0;
}
