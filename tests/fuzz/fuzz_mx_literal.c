/*
 * fuzz_mx_literal.c - libFuzzer target for the destination parsers of the
 * resolver: address literals and domain syntax.
 */
#include "resolver/resolver.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct mx_addr a;
	if (mx_parse_literal(s, 25, &a) == 1 && a.len > sizeof(a.ss))
		abort();
	(void)mx_valid_domain(s);
	return 0;
}
