/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol parser: any
 * input, fed whole and then octet by octet, must give one verdict, and a
 * header taken must lie within its bounds and the input.
 */
#include "relayd/intake/intake_proxy.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h;
	const char *why;
	enum proxy_status st = proxy_parse(data, size, &h, &why);

	if (st == PROXY_BAD && why == NULL)
		abort();
	if (st == PROXY_DONE) {
		if (h.len > size || h.len > PROXY_MAX || (h.version == 1 && h.len > PROXY_V1_MAX))
			abort();
		if (!h.local && h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6)
			abort();
	}
	/* A verdict on a prefix never changes as octets come: MORE until it. */
	for (size_t n = 0; n < size; n++) {
		struct proxy_hdr p;
		enum proxy_status s = proxy_parse(data, n, &p, &why);
		if (s == PROXY_MORE)
			continue;
		if (s != st || (s == PROXY_DONE && p.len != h.len))
			abort();
		break;
	}
	return 0;
}
