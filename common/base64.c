/*
 * base64.c - strict RFC 4648 base64 decoding and encoding.
 */
#include "base64.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t base64_decode(const char *src, size_t srclen, uint8_t *dst, size_t dstsz)
{
	size_t out = 0;

	if (srclen % 4 != 0)
		return -1;
	for (size_t i = 0; i < srclen; i += 4) {
		int last = i + 4 == srclen;
		int v[4], npad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)src[i + k];
			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				npad++;
				continue;
			}
			/* A data character after padding: "ab=c". */
			if (npad > 0)
				return -1;
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t q = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		/* Bits below the last whole byte must be zero (canonical form). */
		if ((npad == 1 && (q & 0xff)) || (npad == 2 && (q & 0xffff)))
			return -1;
		size_t nbytes = 3 - (size_t)npad;
		if (dstsz - out < nbytes || out > dstsz)
			return -1;
		uint8_t bytes[3] = {(uint8_t)(q >> 16), (uint8_t)(q >> 8), (uint8_t)q};
		for (size_t k = 0; k < nbytes; k++)
			dst[out++] = bytes[k];
	}
	return (ssize_t)out;
}

ssize_t base64_encode(const void *src, size_t n, char *dst, size_t dstsz)
{
	const uint8_t *p = src;
	size_t need = BASE64_ENCODED_LEN(n);
	size_t o = 0;

	if (n > ((size_t)-1) / 2 || dstsz < need + 1)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		size_t left = n - i;
		uint32_t q = (uint32_t)p[i] << 16;
		if (left > 1)
			q |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			q |= p[i + 2];
		dst[o++] = b64_alphabet[(q >> 18) & 63];
		dst[o++] = b64_alphabet[(q >> 12) & 63];
		dst[o++] = left > 1 ? b64_alphabet[(q >> 6) & 63] : '=';
		dst[o++] = left > 2 ? b64_alphabet[q & 63] : '=';
	}
	dst[o] = '\0';
	return (ssize_t)o;
}
