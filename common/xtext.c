/*
 * xtext.c - xtext (RFC 3461) and utf-8-addr-xtext (RFC 6533) decoding
 * and encoding, for the DSN parameters ENVID= and ORCPT=.
 */
#include "common/xtext.h"
#include "common/printable.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int xtext_hexupper(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* HEXDIG of ABNF, where letters may be of either case (RFC 5234 2.3). */
static int xtext_hexany(int c)
{
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : xtext_hexupper(c);
}

static int xtext_put(char *dst, size_t dstsz, size_t *n, const char *p, size_t k)
{
	if (*n + k >= dstsz)
		return -1;
	memcpy(dst + *n, p, k);
	*n += k;
	dst[*n] = '\0';
	return 0;
}

int xtext_decode(const char *s, char *dst, size_t dstsz)
{
	size_t n = 0;

	if (dstsz == 0)
		return -1;
	dst[0] = '\0';
	for (; *s != '\0'; s++) {
		int c = (unsigned char)*s;
		if (c == '+') {
			int hi = xtext_hexupper((unsigned char)s[1]);
			int lo = hi < 0 ? -1 : xtext_hexupper((unsigned char)s[2]);
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			s += 2;
			/* The decoded value is printable ASCII (RFC 3461 4.2, 4.4). */
			if (c < ' ' || c > '~')
				return -1;
		} else if (c < '!' || c > '~' || c == '=')
			return -1;
		char ch = (char)c;
		if (xtext_put(dst, dstsz, &n, &ch, 1) < 0)
			return -1;
	}
	return (int)n;
}

int xtext_encode(const char *s, char *dst, size_t dstsz)
{
	size_t n = 0;

	if (dstsz == 0)
		return -1;
	dst[0] = '\0';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char hex[4];
		if (c >= '!' && c <= '~' && c != '+' && c != '=') {
			if (xtext_put(dst, dstsz, &n, (const char *)s, 1) < 0)
				return -1;
			continue;
		}
		snprintf(hex, sizeof(hex), "+%02X", c);
		if (xtext_put(dst, dstsz, &n, hex, 3) < 0)
			return -1;
	}
	return (int)n;
}

/* The UTF-8 form of code point cp (not a surrogate, <= U+10FFFF): its length. */
static size_t xtext_utf8_put(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* "\x{HEX}" at s (HEXPOINT: 2..6 digits, no leading zero beyond two, a
 * code point that is neither ASCII printable nor a surrogate). Its length
 * in s, or 0. */
static size_t xtext_embedded(const char *s, uint32_t *cp)
{
	size_t i = 3, digits = 0;
	uint32_t v = 0;

	if (strncmp(s, "\\x{", 3) != 0)
		return 0;
	for (; xtext_hexany((unsigned char)s[i]) >= 0 && digits < 7; i++, digits++)
		v = v * 16 + (uint32_t)xtext_hexany((unsigned char)s[i]);
	if (s[i] != '}' || digits < 2 || digits > 6 || (digits > 2 && s[3] == '0'))
		return 0;
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (v > ' ' && v < 0x7f && v != '+' &&
							     v != '=' && v != '\\'))
		return 0;
	/* Controls are no part of an address. */
	if (v < ' ' || v == 0x7f || (v >= 0x80 && v < 0xa0))
		return 0;
	*cp = v;
	return i + 1;
}

int xtext_decode_utf8(const char *s, int utf8, char *dst, size_t dstsz)
{
	size_t n = 0;

	if (dstsz == 0)
		return -1;
	dst[0] = '\0';
	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;
		char out[4];
		uint32_t cp;
		size_t k;
		if (c >= '!' && c <= '~' && c != '+' && c != '=' && c != '\\') {
			k = 1;
			memcpy(out, s, 1);
			s++;
		} else if (c == '\\' && (k = xtext_embedded(s, &cp)) > 0) {
			s += k;
			k = xtext_utf8_put(cp, out);
		} else if (c >= 0x80 && utf8 &&
			   (k = printable_utf8_len((const unsigned char *)s, strlen(s))) > 0) {
			memcpy(out, s, k);
			s += k;
		} else
			return -1;
		if (xtext_put(dst, dstsz, &n, out, k) < 0)
			return -1;
	}
	return (int)n;
}

int xtext_encode_utf8(const char *s, char *dst, size_t dstsz)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	if (dstsz == 0)
		return -1;
	dst[0] = '\0';
	while (*p != '\0') {
		char esc[16];
		size_t k = printable_utf8_len(p, strlen((const char *)p));
		uint32_t cp;
		if (k == 0)
			return -1;
		if (k == 1)
			cp = p[0];
		else if (k == 2)
			cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		else if (k == 3)
			cp = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
			     (p[2] & 0x3f);
		else
			cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
			     ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
		p += k;
		if (cp > ' ' && cp < 0x7f && cp != '+' && cp != '=' && cp != '\\') {
			char ch = (char)cp;
			if (xtext_put(dst, dstsz, &n, &ch, 1) < 0)
				return -1;
			continue;
		}
		snprintf(esc, sizeof(esc), "\\x{%02X}", (unsigned)cp);
		if (xtext_put(dst, dstsz, &n, esc, strlen(esc)) < 0)
			return -1;
	}
	return (int)n;
}
