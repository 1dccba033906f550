/*
 * smtp_path.c - a recursive-descent parser for RFC 5321 paths. Every
 * production is one function over a cursor; lengths are checked while
 * parsing so nothing is copied past the RFC limits.
 */
#include "smtp_path.h"
#include "common/idn.h"
#include "common/printable.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

struct path_cur {
	const unsigned char *p;
	size_t n, i;
	unsigned flags;
	int utf8;     /* non-ASCII seen */
	int bad_utf8; /* non-ASCII while not allowed */
};

static int cur_peek(const struct path_cur *c)
{
	return c->i < c->n ? c->p[c->i] : -1;
}

/* Consumes one non-ASCII UTF-8 character; 0 if there is none. */
static int cur_utf8(struct path_cur *c)
{
	if (c->i >= c->n || c->p[c->i] < 0x80)
		return 0;
	size_t k = printable_utf8_len(c->p + c->i, c->n - c->i);
	if (k == 0)
		return 0;
	if (!(c->flags & SMTP_PATH_UTF8))
		c->bad_utf8 = 1;
	c->utf8 = 1;
	c->i += k;
	return 1;
}

static int is_atext(int ch)
{
	return ch > 0 && ch < 128 &&
	       ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

static int is_letdig(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Dot-string = Atom *("." Atom); Atom = 1*atext (UTF-8 with SMTPUTF8). */
static int path_dot_string(struct path_cur *c)
{
	for (;;) {
		size_t start = c->i;
		for (;;) {
			if (is_atext(cur_peek(c)))
				c->i++;
			else if (!cur_utf8(c))
				break;
		}
		if (c->i == start)
			return -1;
		if (cur_peek(c) != '.')
			return 0;
		c->i++;
	}
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
static int path_quoted_string(struct path_cur *c)
{
	c->i++; /* the opening quote */
	for (;;) {
		int ch = cur_peek(c);
		if (ch == '"') {
			c->i++;
			return 0;
		}
		if (ch == '\\') {
			c->i++;
			ch = cur_peek(c);
			if (ch < 32 || ch > 126)
				return -1;
			c->i++;
		} else if (ch >= 32 && ch <= 126)
			c->i++;
		else if (!cur_utf8(c))
			return -1;
	}
}

/* Domain = sub-domain *("." sub-domain), labels of 1..63 octets. */
static int path_domain(struct path_cur *c)
{
	for (;;) {
		size_t start = c->i;
		int last = -1;
		for (;;) {
			int ch = cur_peek(c);
			if (is_letdig(ch) || (ch == '-' && c->i > start)) {
				last = ch;
				c->i++;
			} else if (cur_utf8(c))
				last = 'u';
			else
				break;
		}
		if (c->i == start || last == '-' || c->i - start > 63)
			return -1;
		if (cur_peek(c) != '.')
			return 0;
		c->i++;
	}
}

/* address-literal: [IPv4] or [IPv6:addr]. General literals are refused. */
static int path_literal(struct path_cur *c)
{
	size_t start = ++c->i;
	while (c->i < c->n && c->p[c->i] != ']' && c->p[c->i] != '>')
		c->i++;
	if (cur_peek(c) != ']')
		return -1;
	size_t len = c->i - start;
	c->i++;
	char text[64];
	unsigned char bin[16];
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, c->p + start, len);
	text[len] = '\0';
	if (strncasecmp(text, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, text + 5, bin) == 1 ? 0 : -1;
	return inet_pton(AF_INET, text, bin) == 1 ? 0 : -1;
}

int smtp_helo_valid(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	if (s[0] == '[') {
		struct path_cur c = {.p = (const unsigned char *)s, .n = n};
		return path_literal(&c) == 0 && c.i == n;
	}
	for (size_t i = 0;; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return 0;
			if (s[i] == '\0')
				return 1;
			label = 0;
			continue;
		}
		if (!is_letdig(s[i]) && s[i] != '_' && !(s[i] == '-' && label > 0))
			return 0;
		label++;
	}
}

/* A-d-l = At-domain *( "," At-domain ) ":" */
static int path_route(struct path_cur *c)
{
	for (;;) {
		if (cur_peek(c) != '@')
			return -1;
		c->i++;
		if (path_domain(c) < 0)
			return -1;
		if (cur_peek(c) == ':') {
			c->i++;
			return 0;
		}
		if (cur_peek(c) != ',')
			return -1;
		c->i++;
	}
}

static void copy_span(char *dst, const unsigned char *p, size_t n)
{
	memcpy(dst, p, n);
	dst[n] = '\0';
}

int smtp_path_parse(const char *s, size_t len, unsigned flags, struct smtp_path *out,
		    enum smtp_reply_id *err)
{
	struct path_cur c = {.p = (const unsigned char *)s, .n = len, .flags = flags};
	enum smtp_reply_id bad = (flags & SMTP_PATH_SENDER) ? SR_BAD_SENDER : SR_BAD_RCPT;

	memset(out, 0, sizeof(*out));
	/* Nothing longer than a path is looked at. */
	if (c.n > SMTP_PATH_MAX + 1)
		c.n = SMTP_PATH_MAX + 1;
	if (cur_peek(&c) != '<')
		goto fail;
	c.i++;
	if (cur_peek(&c) == '>') {
		if (!(flags & SMTP_PATH_SENDER))
			goto fail;
		out->is_null = 1;
		return 2;
	}
	if (cur_peek(&c) == '@') {
		if (path_route(&c) < 0)
			goto fail;
		out->had_route = 1;
	}

	size_t lstart = c.i;
	int quoted = cur_peek(&c) == '"';
	if ((quoted ? path_quoted_string(&c) : path_dot_string(&c)) < 0)
		goto fail;
	size_t llen = c.i - lstart;

	if (cur_peek(&c) == '>' && !(flags & SMTP_PATH_SENDER) && !quoted && !out->had_route &&
	    llen == 10 && strncasecmp((const char *)c.p + lstart, "postmaster", 10) == 0) {
		copy_span(out->local, c.p + lstart, llen);
		copy_span(out->addr, c.p + lstart, llen);
		out->is_postmaster = 1;
		return (int)c.i + 1;
	}
	if (llen > SMTP_LOCAL_MAX) {
		*err = SR_LOCAL_TOO_LONG;
		return -1;
	}
	if (cur_peek(&c) != '@')
		goto fail;
	c.i++;

	size_t dstart = c.i;
	if (cur_peek(&c) == '[') {
		if (path_literal(&c) < 0)
			goto fail;
		out->is_literal = 1;
	} else if (path_domain(&c) < 0)
		goto fail;
	/* A domain over 255 octets makes the path too long: caught below. */
	size_t dlen = c.i - dstart;
	if (cur_peek(&c) != '>')
		goto fail;
	c.i++;
	if (c.i > SMTP_PATH_MAX) {
		*err = SR_PATH_TOO_LONG;
		return -1;
	}
	if (c.bad_utf8) {
		*err = SR_NEED_SMTPUTF8;
		return -1;
	}

	copy_span(out->local, c.p + lstart, llen);
	copy_span(out->domain, c.p + dstart, dlen);
	/* A U-label domain must have an A-label form: the DNS knows no other. */
	char adom[SMTP_DOMAIN_MAX + 1], why[128];
	if (!out->is_literal && !idn_is_ascii(out->domain) &&
	    idn_domain_to_ascii(out->domain, adom, sizeof(adom), why, sizeof(why)) < 0) {
		*err = (flags & SMTP_PATH_SENDER) ? SR_BAD_IDN_SENDER : SR_BAD_IDN_RCPT;
		return -1;
	}
	copy_span(out->addr, c.p + lstart, c.i - 1 - lstart);
	out->utf8 = c.utf8 ? 1 : 0;
	/* Inside quotes the characters count as written: "user@dom"@relay. */
	for (size_t k = 0; k < llen; k++)
		if (strchr("%!@", out->local[k]) != NULL)
			out->relay_chars = 1;
	return (int)c.i;
fail:
	/* A path cut off by the length limit reads as too long, not as bad. */
	if (len > SMTP_PATH_MAX && c.i >= SMTP_PATH_MAX)
		*err = SR_PATH_TOO_LONG;
	else
		*err = c.bad_utf8 ? SR_NEED_SMTPUTF8 : bad;
	return -1;
}
