/*
 * printable.c - replacing control characters and ill-formed UTF-8 in
 * untrusted text, for logs and terminals and for JSON (see printable.h).
 */
#include "printable.h"

#include <string.h>

size_t printable_utf8_len(const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	unsigned char c = p[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return len;
}

/* U+0080..U+009F: encoded as C2 80..C2 9F. */
static int printable_is_c1(const unsigned char *p, size_t len)
{
	return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

char *printable_except(char *s, char repl, const char *keep)
{
	unsigned char *p = (unsigned char *)s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t len = printable_utf8_len(p + i, n - i);
		int bad = len == 0 || printable_is_c1(p + i, len) ||
			  (len == 1 && (p[i] < 0x20 || p[i] == 0x7f) && strchr(keep, p[i]) == NULL);
		if (len == 0)
			len = 1; /* one octet at a time: resynchronise on the next */
		if (bad)
			memset(p + i, (unsigned char)repl, len);
		i += len;
	}
	return s;
}

void printable_json(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t len = printable_utf8_len(p + i, n - i);
		if (len == 0) {
			buf_append(out, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
			continue;
		}
		if (len == 1 && (p[i] == '"' || p[i] == '\\'))
			buf_appendf(out, "\\%c", p[i]);
		else if (len == 1 && (p[i] < 0x20 || p[i] == 0x7f))
			buf_appendf(out, "\\u%04x", p[i]);
		else if (printable_is_c1(p + i, len))
			buf_appendf(out, "\\u%04x", p[i + 1]);
		else
			buf_append(out, p + i, len);
		i += len;
	}
	buf_append(out, "\"", 1);
}
