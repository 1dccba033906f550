/*
 * fuzz_addr_map.c - libFuzzer target for the map parser and the header
 * address rewriter (common/addr_map.c): any map text and any header
 * section, split where the input says. The rewriter must copy what it does
 * not rewrite, so with a map that matches nothing the output is the input.
 */
#include "common/addr_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_err(void *arg, unsigned line, const char *msg)
{
	(void)arg;
	(void)line;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char fixed[] = "@.lan.test @example.org\nroot@printer.lan it@example.org\n"
				    "@lan.test x@example.org\n";
	struct addr_map m = {0}, none = {0};
	struct addr_owners o = {0};
	struct buf b;
	/* The first octet says how much of the rest is a map of its own. */
	size_t split = size > 0 ? (size_t)data[0] * (size - 1) / 255 : 0;
	const char *map = (const char *)data + 1, *hdr = map + split;
	size_t hlen = size > 0 ? size - 1 - split : 0;

	addr_map_parse(&m, fixed, strlen(fixed), fuzz_err, NULL);
	if (size > 0) {
		addr_map_parse(&m, map, split, fuzz_err, NULL);
		addr_owners_parse(&o, map, split, fuzz_err, NULL);
	}
	(void)addr_owners_allow(&o, "alice", "alice@lan.test");
	buf_init(&b);
	addr_header_section_rewrite(&m, hdr, hlen, size & 1, &b);
	buf_reset(&b);
	addr_header_rewrite(&m, hdr, hlen, &b);
	buf_reset(&b);
	/* Nothing to rewrite: every octet goes as it came. */
	if (addr_header_rewrite(&none, hdr, hlen, &b) != 0 || buf_avail(&b) != hlen ||
	    (hlen > 0 && memcmp(buf_head(&b), hdr, hlen) != 0))
		abort();
	buf_free(&b);
	addr_map_free(&m);
	addr_owners_free(&o);
	return 0;
}
