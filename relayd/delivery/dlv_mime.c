/*
 * dlv_mime.c - the 8BITMIME / SMTPUTF8 downgrade of one message (see
 * dlv_mime.h): a recursive walk of its MIME tree, writing each entity's
 * headers (re-encoded where they hold raw 8-bit), then its body:
 * multipart bodies part by part between their delimiter lines,
 * message/rfc822 as a message of its own, leaf bodies encoded when they
 * hold 8-bit octets.
 */
#include "relayd/delivery/dlv_mime.h"
#include "common/idn.h"
#include "common/base64.h"
#include "common/xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mime_ctx {
	unsigned allow;
	struct buf *out;
	enum dlv_mime_result res;  /* DLV_MIME_SAME until something changes or fails */
	char *why;
	size_t whysz;
	const char *field;         /* the header being encoded, for the reasons */
};

/* What a body of a given type becomes when it holds 8-bit octets. */
enum mime_kind { MK_QP, MK_B64, MK_MULTI, MK_EMBED, MK_FORBID };

/* Longest prefix first where they overlap; the first match wins. */
static const struct {
	const char *type; /* a full type, or a prefix ending in '/' */
	enum mime_kind kind;
} mime_kinds[] = {
	{"multipart/", MK_MULTI},
	{"message/rfc822", MK_EMBED},
	/* RFC 2046 5.2.3, 5.2.4: these may only be 7bit. */
	{"message/partial", MK_FORBID},
	{"message/external-body", MK_FORBID},
	/* Read as header blocks (RFC 3464, 8098): quoted-printable keeps them readable. */
	{"message/delivery-status", MK_QP},
	{"message/disposition-notification", MK_QP},
	/* RFC 6533's forms of a report's parts: the status fields as above; a
	 * returned header block converted like the headers of an embedded message. */
	{"message/global-delivery-status", MK_QP},
	{"message/global-headers", MK_EMBED},
	{"text/", MK_QP},
};

/* How a header field holding raw 8-bit can be made 7-bit. */
enum mime_hkind { HK_TEXT, HK_ADDR, HK_PARAM, HK_STRUCT, HK_TRACE };

/* Fields not named here are unstructured (RFC 5322 3.6.8): encoded-words. */
static const struct {
	const char *name;
	enum mime_hkind kind;
} mime_hkinds[] = {
	{"from", HK_ADDR}, {"sender", HK_ADDR}, {"reply-to", HK_ADDR}, {"to", HK_ADDR},
	{"cc", HK_ADDR}, {"bcc", HK_ADDR}, {"resent-from", HK_ADDR}, {"resent-sender", HK_ADDR},
	{"resent-to", HK_ADDR}, {"resent-cc", HK_ADDR}, {"resent-bcc", HK_ADDR},
	{"disposition-notification-to", HK_ADDR},
	{"content-type", HK_PARAM}, {"content-disposition", HK_PARAM},
	{"date", HK_STRUCT}, {"resent-date", HK_STRUCT}, {"message-id", HK_STRUCT},
	{"resent-message-id", HK_STRUCT}, {"in-reply-to", HK_STRUCT}, {"references", HK_STRUCT},
	{"received", HK_TRACE}, {"return-path", HK_STRUCT}, {"mime-version", HK_STRUCT},
	{"content-transfer-encoding", HK_STRUCT}, {"content-id", HK_STRUCT},
	{"dkim-signature", HK_STRUCT}, {"authentication-results", HK_STRUCT},
	{"list-id", HK_STRUCT},
};

/* One header field: the whole of it (continuation lines, CRLF) and its name. */
struct mime_field {
	const uint8_t *p;
	size_t n, nlen;
};

/* ---- small helpers ---- */

static int mime_has8(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] & 0x80)
			return 1;
	return 0;
}

static int mime_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static void mime_trim(const uint8_t **p, size_t *n)
{
	while (*n > 0 && mime_wsp((*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && mime_wsp((*p)[*n - 1]))
		(*n)--;
}

/* The length of the UTF-8 sequence at p[0..n), or 0 if it is not one. */
static size_t mime_utf8_len(const uint8_t *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
				  : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (len == 0 || len > n || (len == 2 && p[0] < 0xc2))
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	return len;
}

static int mime_utf8_valid(const uint8_t *p, size_t n)
{
	for (size_t i = 0, k; i < n; i += k)
		if ((k = mime_utf8_len(p + i, n - i)) == 0)
			return 0;
	return 1;
}

/* The first failure is the one reported. */
static void __attribute__((format(printf, 3, 4)))
mime_fail(struct mime_ctx *m, enum dlv_mime_result res, const char *fmt, ...)
{
	va_list ap;

	if (m->res == DLV_MIME_BAD_BODY || m->res == DLV_MIME_BAD_HEADER)
		return;
	m->res = res;
	va_start(ap, fmt);
	vsnprintf(m->why, m->whysz, fmt, ap);
	va_end(ap);
}

static int mime_failed(const struct mime_ctx *m)
{
	return m->res == DLV_MIME_BAD_BODY || m->res == DLV_MIME_BAD_HEADER;
}

static void mime_append_hex(struct buf *out, char lead, uint8_t c)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3] = {lead, hex[c >> 4], hex[c & 15]};
	buf_append(out, e, 3);
}

/* ---- RFC 2047, 2231 ---- */

/*
 * s[0..n) as Q encoded-words (RFC 2047 4.2, with the narrow set of 5(3)
 * so that they fit in phrases too), each at most 75 characters, folded
 * between words; a UTF-8 character is never split across two words.
 */
static void mime_ew(struct buf *out, const uint8_t *s, size_t n)
{
	int utf8 = mime_utf8_valid(s, n);
	const char *cs = utf8 ? "utf-8" : "unknown-8bit";
	size_t max = 75 - (2 + strlen(cs) + 3) - 2, used = 0;
	int open = 0;

	for (size_t i = 0; i < n;) {
		size_t clen = utf8 ? mime_utf8_len(s + i, n - i) : 1;
		struct buf e;
		buf_init(&e);
		for (size_t k = 0; k < clen; k++) {
			uint8_t c = s[i + k];
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    (c && strchr("!*+-/", c)))
				buf_append(&e, &c, 1);
			else if (c == ' ')
				buf_append(&e, "_", 1);
			else
				mime_append_hex(&e, '=', c);
		}
		if (open && used + buf_avail(&e) > max) {
			buf_append(out, "?=\r\n ", 5);
			open = 0;
		}
		if (!open) {
			buf_appendf(out, "=?%s?q?", cs);
			open = 1;
			used = 0;
		}
		buf_append(out, buf_head(&e), buf_avail(&e));
		used += buf_avail(&e);
		buf_free(&e);
		i += clen;
	}
	if (open)
		buf_append(out, "?=", 2);
}

/* Does the word p[0..n) look like an encoded-word (its neighbour's blank would be eaten)? */
static int mime_ew_like(const uint8_t *p, size_t n)
{
	return n >= 4 && p[0] == '=' && p[1] == '?' && p[n - 2] == '?' && p[n - 1] == '=';
}

/* The end of the word or blank run that starts at i. */
static size_t mime_run_end(const uint8_t *v, size_t n, size_t i, int blank)
{
	while (i < n && mime_wsp(v[i]) == blank)
		i++;
	return i;
}

/*
 * Unstructured text (RFC 2047 5(1)): only the runs of words that hold
 * 8-bit become encoded-words, so the rest stays readable. A blank between
 * an encoded-word and another one is dropped by decoders, so a blank next
 * to a word that already looks encoded goes inside the encoding.
 */
static void mime_text(struct buf *out, const uint8_t *v, size_t n)
{
	size_t pos = 0, prev_s = 0, prev_e = 0; /* the last plain word */
	int have_prev = 0;

	for (size_t i = mime_run_end(v, n, 0, 1); i < n;) {
		size_t we = mime_run_end(v, n, i, 0);
		if (!mime_has8(v + i, we - i)) {
			prev_s = i;
			prev_e = we;
			have_prev = 1;
			i = mime_run_end(v, n, we, 1);
			continue;
		}
		/* A run of 8-bit words, with the blanks between them. */
		size_t re = we, next = mime_run_end(v, n, we, 1);
		while (next < n) {
			size_t ne = mime_run_end(v, n, next, 0);
			if (!mime_has8(v + next, ne - next))
				break;
			re = ne;
			next = mime_run_end(v, n, ne, 1);
		}
		size_t a = i, b = re;
		if (have_prev && mime_ew_like(v + prev_s, prev_e - prev_s))
			a = prev_e;
		size_t ne = mime_run_end(v, n, next, 0);
		if (next < n && mime_ew_like(v + next, ne - next))
			b = next;
		buf_append(out, v + pos, a - pos);
		if (a != i)
			buf_append(out, " ", 1);
		mime_ew(out, v + a, b - a);
		if (b != re)
			buf_append(out, " ", 1);
		pos = b;
		have_prev = 0;
		i = next;
	}
	buf_append(out, v + pos, n - pos);
}

/* A quoted-string's content, unescaped, into out; p[0..n) starts and ends with '"'. */
static void mime_unquote(const uint8_t *p, size_t n, struct buf *out)
{
	for (size_t i = 1; i + 1 < n; i++) {
		if (p[i] == '\\' && i + 2 < n)
			i++;
		buf_append(out, p + i, 1);
	}
}

static int mime_quoted(const uint8_t *p, size_t n)
{
	return n >= 2 && p[0] == '"' && p[n - 1] == '"';
}

/*
 * Splits v[0..n) at the top-level occurrences of sep (outside quoted
 * strings, comments and angle brackets); calls fn on each piece.
 */
static void mime_split(const uint8_t *v, size_t n, uint8_t sep,
		       void (*fn)(struct mime_ctx *, const uint8_t *, size_t, int, void *),
		       struct mime_ctx *m, void *arg)
{
	int quote = 0, comment = 0, angle = 0, first = 1;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		uint8_t c = i < n ? v[i] : sep;
		if (i < n && c == '\\' && (quote || comment)) {
			i++;
			continue;
		}
		if (quote) {
			quote = c != '"';
			if (i < n)
				continue;
		}
		if (c == '"' && !comment && i < n)
			quote = 1;
		else if (c == '(' && i < n)
			comment++;
		else if (c == ')' && comment)
			comment--;
		else if (c == '<' && !comment && i < n)
			angle = 1;
		else if (c == '>' && !comment)
			angle = 0;
		else if (c == sep && (i == n || (!comment && !angle))) {
			fn(m, v + start, i - start, first, arg);
			first = 0;
			start = i + 1;
		}
	}
}

/* One mailbox of an address field: "phrase <addr>" or addr. */
/*
 * An addr-spec, its U-label domain in A-labels (RFC 6531 3.2: such an
 * address has an ASCII form); -1 when only SMTPUTF8 can carry it (a UTF-8
 * local part, a domain that does not convert).
 */
static int mime_addr_spec(struct buf *out, const uint8_t *p, size_t n)
{
	char in[600], a[600];

	if (!mime_has8(p, n)) {
		buf_append(out, p, n);
		return 0;
	}
	if (n >= sizeof(in))
		return -1;
	memcpy(in, p, n);
	in[n] = '\0';
	if (idn_addr_to_ascii(in, a, sizeof(a)) < 0 || !idn_is_ascii(a))
		return -1;
	buf_append(out, a, strlen(a));
	return 0;
}

static void mime_addr_item(struct mime_ctx *m, const uint8_t *p, size_t n, int first, void *arg)
{
	struct buf *out = arg;
	const char *name = m->field;

	mime_trim(&p, &n);
	if (!first)
		buf_append(out, ",\r\n ", 4);
	if (!mime_has8(p, n)) {
		buf_append(out, p, n);
		return;
	}
	const uint8_t *lt = NULL;
	int quote = 0;
	for (size_t i = 0; i < n && lt == NULL; i++) {
		if (p[i] == '\\' && quote)
			i++;
		else if (p[i] == '"')
			quote = !quote;
		else if (p[i] == '<' && !quote)
			lt = p + i;
	}
	size_t plen = lt ? (size_t)(lt - p) : 0;
	const uint8_t *gt = lt ? memchr(lt, '>', n - plen) : NULL;
	if (lt == NULL) {
		if (mime_addr_spec(out, p, n) < 0)
			mime_fail(m, DLV_MIME_BAD_HEADER, "the %s: header holds a UTF-8 address", name);
		return;
	}
	if (gt == NULL || mime_has8(gt, n - (size_t)(gt - p))) {
		mime_fail(m, DLV_MIME_BAD_HEADER, "the %s: header holds a UTF-8 address", name);
		return;
	}
	const uint8_t *ph = p;
	mime_trim(&ph, &plen);
	if (plen > 0) {
		struct buf phrase;
		buf_init(&phrase);
		if (mime_quoted(ph, plen))
			mime_unquote(ph, plen, &phrase);
		else
			buf_append(&phrase, ph, plen);
		if (mime_has8(buf_head(&phrase), buf_avail(&phrase)))
			mime_ew(out, buf_head(&phrase), buf_avail(&phrase));
		else
			buf_append(out, ph, plen);
		buf_free(&phrase);
		buf_append(out, " ", 1);
	}
	buf_append(out, "<", 1);
	if (mime_addr_spec(out, lt + 1, (size_t)(gt - lt - 1)) < 0) {
		mime_fail(m, DLV_MIME_BAD_HEADER, "the %s: header holds a UTF-8 address", name);
		return;
	}
	buf_append(out, gt, n - (size_t)(gt - p));
}

/* One piece of a Content-Type or Content-Disposition: the value, then parameters. */
static void mime_param_item(struct mime_ctx *m, const uint8_t *p, size_t n, int first, void *arg)
{
	struct buf *out = arg;
	const char *name = m->field;

	mime_trim(&p, &n);
	if (!first)
		buf_append(out, ";\r\n\t", 4);
	if (!mime_has8(p, n)) {
		buf_append(out, p, n);
		return;
	}
	const uint8_t *eq = first ? NULL : memchr(p, '=', n);
	size_t alen = eq ? (size_t)(eq - p) : 0;
	const uint8_t *attr = p, *val = eq ? eq + 1 : NULL;
	size_t vlen = eq ? n - alen - 1 : 0;
	mime_trim(&attr, &alen);
	mime_trim(&val, &vlen);
	if (eq == NULL || alen == 0 || mime_has8(attr, alen) || attr[alen - 1] == '*') {
		mime_fail(m, DLV_MIME_BAD_HEADER, "the %s: header holds 8-bit outside a parameter "
			  "value", name);
		return;
	}
	/* RFC 2231 4: attribute*=charset''percent-encoded */
	struct buf v;
	buf_init(&v);
	if (mime_quoted(val, vlen))
		mime_unquote(val, vlen, &v);
	else
		buf_append(&v, val, vlen);
	buf_append(out, attr, alen);
	buf_appendf(out, "*=%s''", mime_utf8_valid(buf_head(&v), buf_avail(&v)) ? "utf-8"
										  : "unknown-8bit");
	for (size_t i = 0; i < buf_avail(&v); i++) {
		uint8_t c = buf_head(&v)[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr("!#$&+-.^_`|~", c)))
			buf_append(out, &c, 1);
		else
			mime_append_hex(out, '%', c);
	}
	buf_free(&v);
}

static enum mime_hkind mime_hkind_of(const uint8_t *name, size_t n)
{
	for (size_t i = 0; i < sizeof(mime_hkinds) / sizeof(mime_hkinds[0]); i++)
		if (strlen(mime_hkinds[i].name) == n &&
		    strncasecmp(mime_hkinds[i].name, (const char *)name, n) == 0)
			return mime_hkinds[i].kind;
	return HK_TEXT;
}

/*
 * A Received: field whose 8-bit is all in its "for <address>" clause (our
 * own, for a UTF-8 recipient) loses that clause, as RFC 6857 3.1.9 has a
 * downgrade do: the clause is optional, the rest of the trace stays.
 */
static int mime_trace(struct mime_ctx *m, const struct mime_field *f)
{
	const uint8_t *p = f->p, *end = f->p + f->n;

	for (const uint8_t *q = p + f->nlen; q + 5 < end; q++) {
		if (!mime_wsp(*q) || strncasecmp((const char *)q + 1, "for", 3) != 0)
			continue;
		const uint8_t *a = q + 4;
		while (a < end && (mime_wsp(*a) || *a == '\r' || *a == '\n'))
			a++;
		if (a == q + 4 || a >= end || *a != '<')
			continue;
		const uint8_t *gt = memchr(a, '>', (size_t)(end - a));
		if (gt == NULL || mime_has8(p, (size_t)(q - p)) ||
		    mime_has8(gt + 1, (size_t)(end - gt - 1)))
			return -1;
		buf_append(m->out, p, (size_t)(q - p));
		buf_append(m->out, gt + 1, (size_t)(end - gt - 1));
		return 0;
	}
	return -1;
}

/* A header field with raw 8-bit, made 7-bit: "Name: value" CRLF, or a failure. */
static void mime_header(struct mime_ctx *m, const struct mime_field *f)
{
	char name[80];
	struct buf v, enc;
	enum mime_hkind kind = mime_hkind_of(f->p, f->nlen);

	snprintf(name, sizeof(name), "%.*s", (int)(f->nlen < 60 ? f->nlen : 60), f->p);
	if (kind == HK_TRACE && mime_trace(m, f) == 0)
		return;
	if (mime_has8(f->p, f->nlen) || kind == HK_STRUCT || kind == HK_TRACE) {
		mime_fail(m, DLV_MIME_BAD_HEADER,
			  "the %s: header holds 8-bit where it cannot be encoded", name);
		return;
	}
	/* The value unfolded (RFC 5322 2.2.3): CR and LF go, the blanks stay. */
	buf_init(&v);
	buf_init(&enc);
	for (size_t i = f->nlen + 1; i < f->n; i++)
		if (f->p[i] != '\r' && f->p[i] != '\n')
			buf_append(&v, f->p + i, 1);
	const uint8_t *val = buf_head(&v);
	size_t vlen = buf_avail(&v);
	mime_trim(&val, &vlen);
	m->field = name;
	if (kind == HK_ADDR)
		mime_split(val, vlen, ',', mime_addr_item, m, &enc);
	else if (kind == HK_PARAM)
		mime_split(val, vlen, ';', mime_param_item, m, &enc);
	else
		mime_text(&enc, val, vlen);
	m->field = NULL;
	buf_append(m->out, f->p, f->nlen);
	buf_append(m->out, ": ", 2);
	buf_append(m->out, buf_head(&enc), buf_avail(&enc));
	buf_append(m->out, "\r\n", 2);
	buf_free(&v);
	buf_free(&enc);
}

/* ---- bodies ---- */

/* Quoted-printable (RFC 2045 6.7): CRLF stays a line break, lines of at most 76. */
static void mime_qp(struct buf *out, const uint8_t *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
			buf_append(out, "\r\n", 2);
			col = 0;
			i++;
			continue;
		}
		int at_end = i + 1 == n || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n');
		int plain = (c >= 33 && c <= 126 && c != '=') || (mime_wsp(c) && !at_end);
		size_t len = plain ? 1 : 3;
		if (col + len > 75) {
			buf_append(out, "=\r\n", 3);
			col = 0;
		}
		if (plain)
			buf_append(out, &c, 1);
		else
			mime_append_hex(out, '=', c);
		col += len;
	}
}

/* A quoted-printable body with raw 8-bit octets: those are escaped, the rest stays. */
static void mime_qp_escape8(struct buf *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] & 0x80)
			mime_append_hex(out, '=', p[i]);
		else
			buf_append(out, p + i, 1);
	}
}

/* Base64 in lines of 76 (RFC 2045 6.8), CRLF between them. */
static void mime_b64(struct buf *out, const uint8_t *p, size_t n)
{
	size_t elen = BASE64_ENCODED_LEN(n);
	char *e = xmalloc(elen + 1);

	base64_encode(p, n, e, elen + 1);
	for (size_t i = 0; i < elen; i += 76) {
		if (i > 0)
			buf_append(out, "\r\n", 2);
		buf_append(out, e + i, elen - i < 76 ? elen - i : 76);
	}
	free(e);
}

/* ---- entities ---- */

static void mime_entity(struct mime_ctx *m, const uint8_t *p, size_t n, int depth, int top,
			const char *deftype);

/* The value of parameter name in a Content-Type value, into dst (unquoted); -1 if none. */
static int mime_param(const uint8_t *v, size_t n, const char *name, char *dst, size_t dstsz)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n; i++) {
		if (v[i] == '"') {
			while (++i < n && v[i] != '"')
				if (v[i] == '\\')
					i++;
			continue;
		}
		if (v[i] != ';')
			continue;
		size_t j = i + 1;
		while (j < n && (mime_wsp(v[j]) || v[j] == '\r' || v[j] == '\n'))
			j++;
		if (n - j <= nl || strncasecmp((const char *)v + j, name, nl) != 0)
			continue;
		j += nl;
		while (j < n && mime_wsp(v[j]))
			j++;
		if (j >= n || v[j] != '=')
			continue;
		j++;
		while (j < n && mime_wsp(v[j]))
			j++;
		size_t k = 0;
		if (j < n && v[j] == '"') {
			for (j++; j < n && v[j] != '"' && k + 1 < dstsz; j++) {
				if (v[j] == '\\' && j + 1 < n)
					j++;
				dst[k++] = (char)v[j];
			}
		} else {
			for (; j < n && v[j] != ';' && !mime_wsp(v[j]) && v[j] != '\r' &&
			       k + 1 < dstsz;
			     j++)
				dst[k++] = (char)v[j];
		}
		dst[k] = '\0';
		return k > 0 ? 0 : -1;
	}
	return -1;
}

/* "type/subtype" of a Content-Type value, lower-cased, into dst. */
static void mime_ctype(const uint8_t *v, size_t n, char *dst, size_t dstsz)
{
	size_t i = 0, k = 0;

	while (i < n && (mime_wsp(v[i]) || v[i] == '\r' || v[i] == '\n'))
		i++;
	for (; i < n && v[i] != ';' && !mime_wsp(v[i]) && v[i] != '\r' && v[i] != '(' &&
	       k + 1 < dstsz;
	     i++)
		dst[k++] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
	dst[k] = '\0';
}

static enum mime_kind mime_kind_of(const char *type)
{
	for (size_t i = 0; i < sizeof(mime_kinds) / sizeof(mime_kinds[0]); i++) {
		size_t l = strlen(mime_kinds[i].type);
		if (mime_kinds[i].type[l - 1] == '/' ? strncmp(type, mime_kinds[i].type, l) == 0
						     : strcmp(type, mime_kinds[i].type) == 0)
			return mime_kinds[i].kind;
	}
	return MK_B64;
}

static int mime_name_is(const struct mime_field *f, const char *name)
{
	return f->nlen == strlen(name) && strncasecmp((const char *)f->p, name, f->nlen) == 0;
}

/* Text of the preamble or epilogue: no encoding can apply to it. */
static void mime_bare_text(struct mime_ctx *m, const uint8_t *p, size_t n)
{
	if (!(m->allow & DLV_MIME_8BIT) && mime_has8(p, n))
		mime_fail(m, DLV_MIME_BAD_BODY, "8-bit text in the preamble or epilogue of a multipart");
	buf_append(m->out, p, n);
}

/* Is the line p[0..n) (with its CRLF) a delimiter of boundary b? *close: the last one. */
static int mime_delim(const uint8_t *p, size_t n, const char *b, size_t bl, int *close)
{
	if (n < 2 + bl || p[0] != '-' || p[1] != '-' || memcmp(p + 2, b, bl) != 0)
		return 0;
	size_t i = 2 + bl;
	*close = n - i >= 2 && p[i] == '-' && p[i + 1] == '-';
	if (*close)
		i += 2;
	while (i < n && (mime_wsp(p[i]) || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i == n;
}

static void mime_multipart(struct mime_ctx *m, const uint8_t *p, size_t n, const char *b,
			   int depth, const char *subdef)
{
	size_t bl = strlen(b), seg = 0, i = 0;
	int parts = 0, closed = 0;

	while (i < n && !closed && !mime_failed(m)) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t le = nl ? (size_t)(nl - p) + 1 : n;
		int close;
		if (mime_delim(p + i, le - i, b, bl, &close)) {
			/* The CRLF before a delimiter is the delimiter's (RFC 2046 5.1.1). */
			size_t end = i;
			if (end >= seg + 2 && p[end - 2] == '\r' && p[end - 1] == '\n')
				end -= 2;
			else if (end >= seg + 1 && p[end - 1] == '\n')
				end--;
			if (parts++ == 0)
				mime_bare_text(m, p + seg, end - seg);
			else
				mime_entity(m, p + seg, end - seg, depth + 1, 0, subdef);
			buf_append(m->out, p + end, le - end);
			seg = le;
			closed = close;
		}
		i = le;
	}
	if (closed || parts == 0)
		mime_bare_text(m, p + seg, n - seg);
	else
		mime_entity(m, p + seg, n - seg, depth + 1, 0, subdef);
}

/* Where the header section of p[0..n) ends; its fields into *fs. */
static size_t mime_fields(const uint8_t *p, size_t n, struct mime_field **fs, size_t *nf,
			  int *blank)
{
	size_t i = 0;

	*fs = NULL;
	*nf = 0;
	*blank = 0;
	while (i < n) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			*blank = 1;
			return i + 2;
		}
		const uint8_t *colon = NULL;
		size_t j = i;
		for (; j < n && p[j] != '\n'; j++)
			if (p[j] == ':' && colon == NULL)
				colon = p + j;
		if (colon == NULL || colon == p + i || mime_wsp(p[i]))
			return i; /* not a field: the body starts here */
		while (j < n && j + 1 < n && mime_wsp(p[j + 1]))
			for (j++; j < n && p[j] != '\n'; j++)
				;
		j = j < n ? j + 1 : n;
		size_t nlen = (size_t)(colon - (p + i));
		while (nlen > 0 && mime_wsp(p[i + nlen - 1]))
			nlen--;
		*fs = xreallocarray(*fs, *nf + 1, sizeof(**fs));
		(*fs)[*nf].p = p + i;
		(*fs)[*nf].n = j - i;
		(*fs)[*nf].nlen = nlen;
		(*nf)++;
		i = j;
	}
	return n;
}

/* The value of a field, after its colon, up to its CRLF. */
static void mime_value(const struct mime_field *f, const uint8_t **v, size_t *n)
{
	const uint8_t *colon = memchr(f->p, ':', f->n);
	*v = colon + 1;
	*n = f->n - (size_t)(*v - f->p);
}

/*
 * What a leaf body becomes: "" when it stays as it is, else the new
 * Content-Transfer-Encoding; *enc says how the body is written.
 */
enum mime_enc { ME_COPY, ME_QP, ME_B64, ME_QP8 };

static const char *mime_leaf_plan(struct mime_ctx *m, enum mime_kind kind, const char *cte,
				  const uint8_t *body, size_t bn, enum mime_enc *enc)
{
	int plain = !*cte || !strcmp(cte, "7bit") || !strcmp(cte, "8bit") || !strcmp(cte, "binary");
	int has8 = mime_has8(body, bn);

	*enc = ME_COPY;
	if (m->allow & DLV_MIME_8BIT)
		return "";
	if (!has8)
		/* Labelled 8-bit but 7-bit in fact: only the label changes. */
		return plain && *cte && strcmp(cte, "7bit") ? "7bit" : "";
	if (kind == MK_FORBID) {
		mime_fail(m, DLV_MIME_BAD_BODY, "8-bit octets in a message/partial or "
			  "message/external-body part, which must be 7-bit");
		return "";
	}
	if (!strcmp(cte, "quoted-printable")) {
		*enc = ME_QP8;
		return "";
	}
	if (!plain) {
		mime_fail(m, DLV_MIME_BAD_BODY, "8-bit octets in a part with "
			  "Content-Transfer-Encoding %s", cte);
		return "";
	}
	*enc = kind == MK_QP ? ME_QP : ME_B64;
	return kind == MK_QP ? "quoted-printable" : "base64";
}

static void mime_entity(struct mime_ctx *m, const uint8_t *p, size_t n, int depth, int top,
			const char *deftype)
{
	struct mime_field *fs;
	size_t nf;
	int blank;
	size_t hend = mime_fields(p, n, &fs, &nf, &blank);
	const uint8_t *body = p + hend;
	size_t bn = n - hend;
	char type[128], boundary[256] = "", cte[64] = "";
	const struct mime_field *ct = NULL, *cte_f = NULL;
	int mimever = 0;

	if (depth > DLV_MIME_DEPTH_MAX) {
		mime_fail(m, DLV_MIME_BAD_BODY, "MIME parts nested deeper than %d", DLV_MIME_DEPTH_MAX);
		free(fs);
		return;
	}
	snprintf(type, sizeof(type), "%s", deftype);
	for (size_t i = 0; i < nf; i++) {
		const uint8_t *v;
		size_t vn;
		mime_value(&fs[i], &v, &vn);
		if (mime_name_is(&fs[i], "content-type") && ct == NULL) {
			ct = &fs[i];
			mime_ctype(v, vn, type, sizeof(type));
			if (mime_param(v, vn, "boundary", boundary, sizeof(boundary)) < 0)
				boundary[0] = '\0';
		} else if (mime_name_is(&fs[i], "content-transfer-encoding") && cte_f == NULL) {
			cte_f = &fs[i];
			mime_ctype(v, vn, cte, sizeof(cte));
		} else if (mime_name_is(&fs[i], "mime-version"))
			mimever = 1;
	}
	enum mime_kind kind = mime_kind_of(type);
	if (mime_has8((const uint8_t *)boundary, strlen(boundary))) {
		/* RFC 2046 5.1.1: 7-bit; its delimiter lines could not be written in 7 bits. */
		mime_fail(m, DLV_MIME_BAD_BODY, "a multipart boundary with 8-bit octets");
		free(fs);
		return;
	}
	int plain = !*cte || !strcmp(cte, "7bit") || !strcmp(cte, "8bit") || !strcmp(cte, "binary");
	if ((kind == MK_MULTI && (!*boundary || !plain)) || (kind == MK_EMBED && !plain))
		kind = MK_B64; /* not walkable: a leaf like any other */
	enum mime_enc enc = ME_COPY;
	const char *newcte;
	if (kind == MK_MULTI || kind == MK_EMBED)
		/* Its parts are made 7-bit: so is it. */
		newcte = !(m->allow & DLV_MIME_8BIT) && *cte && strcmp(cte, "7bit") ? "7bit" : "";
	else
		newcte = mime_leaf_plan(m, kind, cte, body, bn, &enc);
	if (*newcte || enc != ME_COPY)
		m->res = mime_failed(m) ? m->res : DLV_MIME_CONVERTED;

	/* The header section. */
	for (size_t i = 0; i < nf && !mime_failed(m); i++) {
		if (&fs[i] == cte_f && *newcte)
			buf_appendf(m->out, "%.*s: %s\r\n", (int)fs[i].nlen, fs[i].p, newcte);
		else if (!(m->allow & DLV_MIME_UTF8) && mime_has8(fs[i].p, fs[i].n)) {
			mime_header(m, &fs[i]);
			m->res = mime_failed(m) ? m->res : DLV_MIME_CONVERTED;
		} else
			buf_append(m->out, fs[i].p, fs[i].n);
	}
	size_t had = buf_avail(m->out);
	if (cte_f == NULL && *newcte)
		buf_appendf(m->out, "Content-Transfer-Encoding: %s\r\n", newcte);
	if (ct == NULL && (enc == ME_QP || enc == ME_B64)) {
		/* Decoded, the text must still say what it is: text/plain, the default. */
		if (top && !mimever)
			buf_append(m->out, "MIME-Version: 1.0\r\n", 19);
		buf_appendf(m->out, "Content-Type: %s; charset=%s\r\n", type,
			    mime_utf8_valid(body, bn) ? "utf-8" : "unknown-8bit");
	}
	free(fs);
	/* Headers added to a message that had no empty line need one after them. */
	if (blank || buf_avail(m->out) > had)
		buf_append(m->out, "\r\n", 2);
	if (mime_failed(m))
		return;

	/* The body. */
	if (kind == MK_MULTI)
		mime_multipart(m, body, bn, boundary, depth,
			       !strcmp(type, "multipart/digest") ? "message/rfc822" : "text/plain");
	else if (kind == MK_EMBED)
		mime_entity(m, body, bn, depth + 1, 1, "text/plain");
	else if (enc == ME_QP)
		mime_qp(m->out, body, bn);
	else if (enc == ME_B64)
		mime_b64(m->out, body, bn);
	else if (enc == ME_QP8)
		mime_qp_escape8(m->out, body, bn);
	else
		buf_append(m->out, body, bn);
}

enum dlv_mime_result dlv_mime_convert(const uint8_t *msg, size_t len, unsigned allow,
				      struct buf *out, char *why, size_t whysz)
{
	struct buf tmp;
	struct mime_ctx m = {allow, &tmp, DLV_MIME_SAME, why, whysz, NULL};

	buf_init(&tmp);
	mime_entity(&m, msg, len, 0, 1, "text/plain");
	if (m.res == DLV_MIME_CONVERTED)
		buf_append(out, buf_head(&tmp), buf_avail(&tmp));
	buf_free(&tmp);
	return m.res;
}
