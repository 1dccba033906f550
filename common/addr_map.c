/*
 * addr_map.c - address patterns, the PATTERN REPLACEMENT maps of
 * rewrite-sender and rewrite-recipient, the USER PATTERN... lines of
 * auth-senders, and the rewriting of the addresses in From:, Sender: and
 * Reply-To:. The header parser is deliberately
 * small: it finds mailboxes (addr-spec or name-addr, in lists and groups)
 * and rewrites only an address that parses as local@domain; every other
 * octet, and any field it cannot follow, is copied unchanged.
 */
#include "addr_map.h"
#include "idn.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ADDR_MAX 512

/* RFC 5322 atext, the characters of an unquoted local part. */
static int addr_atext(int c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL) || c >= 128;
}

/* A dot-atom: atext runs joined by single dots. */
static int addr_dot_atom(const char *s, size_t n, int domain)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i - 1] == '.')
				return 0;
		} else if (domain ? !(isalnum(c) || c == '-' || c >= 128) : !addr_atext(c))
			return 0;
	}
	return 1;
}

static char *addr_lower_dup(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		d[i] = (char)tolower((unsigned char)s[i]);
	d[n] = '\0';
	return d;
}

int addr_pattern_parse(const char *s, struct addr_pattern *p)
{
	const char *at = strrchr(s, '@');
	memset(p, 0, sizeof(*p));
	if (at == NULL)
		return -1;
	const char *dom = at + 1;
	if (*dom == '.') {
		p->subdomains = 1;
		dom++;
	}
	size_t llen = (size_t)(at - s);
	if ((llen > 0 && !addr_dot_atom(s, llen, 0)) || !addr_dot_atom(dom, strlen(dom), 1))
		return -1;
	/* Held in A-labels: an address matches with its domain written either way. */
	char adom[256], err[128];
	if (idn_domain_to_ascii(dom, adom, sizeof(adom), err, sizeof(err)) < 0)
		return -1;
	p->local = llen > 0 ? addr_lower_dup(s, llen) : NULL;
	p->domain = xstrdup(adom);
	return 0;
}

void addr_pattern_free(struct addr_pattern *p)
{
	free(p->local);
	free(p->domain);
	memset(p, 0, sizeof(*p));
}

int addr_pattern_match(const struct addr_pattern *p, const char *addr)
{
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return 0;
	size_t llen = (size_t)(at - addr);
	if (p->local != NULL && (strlen(p->local) != llen || strncasecmp(p->local, addr, llen) != 0))
		return 0;
	const char *dom = at + 1;
	char adom[256], err[128];
	if (!idn_is_ascii(dom)) {
		if (idn_domain_to_ascii(dom, adom, sizeof(adom), err, sizeof(err)) < 0)
			return 0;
		dom = adom;
	}
	size_t dlen = strlen(dom), plen = strlen(p->domain);
	if (!p->subdomains)
		return strcasecmp(dom, p->domain) == 0;
	return dlen > plen + 1 && dom[dlen - plen - 1] == '.' &&
	       strcasecmp(dom + dlen - plen, p->domain) == 0;
}

/* "user@domain" or "@domain" (keep the local part). */
static int addr_replacement_parse(const char *s, struct addr_map_entry *e)
{
	const char *at = strrchr(s, '@');
	if (at == NULL)
		return -1;
	size_t llen = (size_t)(at - s);
	if ((llen > 0 && !addr_dot_atom(s, llen, 0)) || !addr_dot_atom(at + 1, strlen(at + 1), 1))
		return -1;
	e->local = llen > 0 ? xstrndup(s, llen) : NULL;
	e->domain = addr_lower_dup(at + 1, strlen(at + 1));
	return 0;
}

#define ADDR_LINE_ARGS 64

/* A line's words, up to max; more than max gives max + 1. */
static int addr_words(char *line, char **argv, int max)
{
	char *save = NULL;
	int argc = 0;
	for (char *t = strtok_r(line, " \t\r", &save); t && argc <= max;
	     t = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = t;
	return argc > 0 && argv[0][0] == '#' ? 0 : argc;
}

/* One line of a map: 0 (taken or blank), or -1 with the reason in why. */
static int addr_map_line(void *obj, char *line, char *why, size_t whysz)
{
	struct addr_map *m = obj;
	char *argv[3];
	int argc = addr_words(line, argv, 2);
	if (argc == 0)
		return 0;
	if (argc != 2) {
		snprintf(why, whysz, "expected \"PATTERN REPLACEMENT\"");
		return -1;
	}
	struct addr_map_entry e = {0};
	if (addr_pattern_parse(argv[0], &e.pat) < 0) {
		snprintf(why, whysz, "bad pattern \"%.200s\" (user@domain, @domain or @.domain)",
			 argv[0]);
		return -1;
	}
	if (addr_replacement_parse(argv[1], &e) < 0) {
		addr_pattern_free(&e.pat);
		snprintf(why, whysz, "bad replacement \"%.200s\" (user@domain or @domain)", argv[1]);
		return -1;
	}
	m->v = xreallocarray(m->v, m->n + 1, sizeof(*m->v));
	m->v[m->n++] = e;
	return 0;
}

/* The lines of text, each through line(obj, ...); the bad ones reported. */
static int addr_lines(void *obj, int (*line_fn)(void *, char *, char *, size_t), const char *text,
		      size_t len, addr_map_err_fn err, void *arg)
{
	int nerr = 0;
	unsigned lineno = 0;
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - (text + off)) : len - off;
		char *line = xstrndup(text + off, ll);
		char why[300];
		lineno++;
		if (strlen(line) != ll) {
			snprintf(why, sizeof(why), "NUL in line");
			err(arg, lineno, why);
			nerr++;
		} else if (line_fn(obj, line, why, sizeof(why)) < 0) {
			err(arg, lineno, why);
			nerr++;
		}
		free(line);
		off += ll + 1;
	}
	return nerr;
}

int addr_map_parse(struct addr_map *m, const char *text, size_t len, addr_map_err_fn err,
		   void *arg)
{
	return addr_lines(m, addr_map_line, text, len, err, arg);
}

void addr_map_free(struct addr_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		addr_pattern_free(&m->v[i].pat);
		free(m->v[i].local);
		free(m->v[i].domain);
	}
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

int addr_map_apply(const struct addr_map *m, const char *addr, char *out, size_t outsz)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct addr_map_entry *e = &m->v[i];
		if (!addr_pattern_match(&e->pat, addr))
			continue;
		int len = e->local != NULL
			  ? snprintf(out, outsz, "%s@%s", e->local, e->domain)
			  : snprintf(out, outsz, "%.*s@%s", (int)(strrchr(addr, '@') - addr), addr,
				     e->domain);
		return len > 0 && (size_t)len < outsz;
	}
	return 0;
}

/* ---- auth-senders ---- */

/* One "USER PATTERN..." line. */
static int addr_owner_line(void *obj, char *line, char *why, size_t whysz)
{
	struct addr_owners *o = obj;
	char *argv[ADDR_LINE_ARGS + 1];
	int argc = addr_words(line, argv, ADDR_LINE_ARGS);
	if (argc == 0)
		return 0;
	if (argc < 2 || argc > ADDR_LINE_ARGS) {
		snprintf(why, whysz, "expected \"USER ADDRESS-OR-@DOMAIN...\" (up to %d)",
			 ADDR_LINE_ARGS - 1);
		return -1;
	}
	struct addr_pattern pats[ADDR_LINE_ARGS];
	for (int i = 1; i < argc; i++)
		if (addr_pattern_parse(argv[i], &pats[i - 1]) < 0) {
			snprintf(why, whysz, "bad address \"%.200s\" (user@domain, @domain or @.domain)",
				 argv[i]);
			while (--i > 0)
				addr_pattern_free(&pats[i - 1]);
			return -1;
		}
	struct addr_owner *w = NULL;
	for (size_t i = 0; i < o->n && w == NULL; i++)
		if (strcmp(o->v[i].user, argv[0]) == 0)
			w = &o->v[i];
	if (w == NULL) {
		o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
		w = &o->v[o->n++];
		memset(w, 0, sizeof(*w));
		w->user = xstrdup(argv[0]);
	}
	w->pats = xreallocarray(w->pats, w->npats + (size_t)argc - 1, sizeof(*w->pats));
	memcpy(w->pats + w->npats, pats, ((size_t)argc - 1) * sizeof(*pats));
	w->npats += (size_t)argc - 1;
	return 0;
}

int addr_owners_parse(struct addr_owners *o, const char *text, size_t len, addr_map_err_fn err,
		      void *arg)
{
	return addr_lines(o, addr_owner_line, text, len, err, arg);
}

void addr_owners_free(struct addr_owners *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].user);
		for (size_t j = 0; j < o->v[i].npats; j++)
			addr_pattern_free(&o->v[i].pats[j]);
		free(o->v[i].pats);
	}
	free(o->v);
	o->v = NULL;
	o->n = 0;
}

int addr_owners_allow(const struct addr_owners *o, const char *user, const char *sender)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->v[i].user, user) != 0)
			continue;
		for (size_t j = 0; j < o->v[i].npats; j++)
			if (addr_pattern_match(&o->v[i].pats[j], sender))
				return 1;
	}
	return 0;
}

/* ---- header fields ---- */

#define HDR_BAD SIZE_MAX

/* Past a quoted string or a (nested) comment starting at v[i]; HDR_BAD if unclosed. */
static size_t hdr_skip(const char *v, size_t i, size_t n)
{
	char open = v[i], close = open == '"' ? '"' : ')';
	int depth = 1;
	for (i++; i < n; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == close && --depth == 0)
			return i + 1;
		else if (open == '(' && v[i] == '(')
			depth++;
	}
	return HDR_BAD;
}

static int hdr_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A local@domain in v[s..e): the address it rewrites to, or 0. */
static int hdr_addr_spec(const struct addr_map *m, const char *v, size_t s, size_t e, char *out,
			 size_t outsz)
{
	char addr[ADDR_MAX];
	size_t at = HDR_BAD;
	if (e - s >= sizeof(addr))
		return 0;
	for (size_t i = s; i < e; i++) {
		if (v[i] == '"') {
			if (i != s || (i = hdr_skip(v, i, e)) == HDR_BAD)
				return 0;
			i--;
		} else if (v[i] == '@')
			at = i;
	}
	if (at == HDR_BAD || at == s)
		return 0;
	int quoted = v[s] == '"';
	if ((quoted ? hdr_skip(v, s, at) != at : !addr_dot_atom(v + s, at - s, 0)) ||
	    !addr_dot_atom(v + at + 1, e - at - 1, 1))
		return 0;
	memcpy(addr, v + s, e - s);
	addr[e - s] = '\0';
	return addr_map_apply(m, addr, out, outsz);
}

/* One mailbox, v[a..b), holding an angle address at [la, ra] or none (la == HDR_BAD). */
static unsigned hdr_mailbox(const struct addr_map *m, const char *v, size_t a, size_t b,
			    size_t la, size_t ra, size_t *copied, struct buf *out)
{
	size_t s, e;
	char repl[ADDR_MAX];

	if (la != HDR_BAD) {
		for (s = la + 1; s < ra && hdr_wsp(v[s]); s++)
			;
		for (e = ra; e > s && hdr_wsp(v[e - 1]); e--)
			;
	} else {
		/* A bare addr-spec: one word among blanks and comments. */
		unsigned words = 0;
		s = e = HDR_BAD;
		for (size_t i = a; i < b;) {
			if (hdr_wsp(v[i]))
				i++;
			else if (v[i] == '(')
				i = hdr_skip(v, i, b);
			else {
				size_t w = i;
				while (i < b && !hdr_wsp(v[i]) && v[i] != '(')
					i = v[i] == '"' ? hdr_skip(v, i, b) : i + 1;
				if (i == HDR_BAD)
					return 0;
				s = w;
				e = i;
				words++;
			}
			if (i == HDR_BAD)
				return 0;
		}
		if (words != 1)
			return 0;
	}
	if (!hdr_addr_spec(m, v, s, e, repl, sizeof(repl)))
		return 0;
	buf_append(out, v + *copied, s - *copied);
	buf_append(out, repl, strlen(repl));
	*copied = e;
	return 1;
}

unsigned addr_header_rewrite(const struct addr_map *m, const char *v, size_t n, struct buf *out)
{
	size_t seg = 0, copied = 0, la = HDR_BAD, ra = 0;
	unsigned count = 0;

	for (size_t i = 0; i <= n;) {
		if (i == n || v[i] == ',' || v[i] == ';' || v[i] == ':') {
			/* Before a ':' is a group's name, no address. */
			if (i == n || v[i] != ':')
				count += hdr_mailbox(m, v, seg, i, la, ra, &copied, out);
			la = HDR_BAD;
			seg = ++i;
		} else if (v[i] == '"' || v[i] == '(') {
			if ((i = hdr_skip(v, i, n)) == HDR_BAD)
				break;
		} else if (v[i] == '<') {
			if (la != HDR_BAD)
				break;
			la = i;
			for (i++; i < n && v[i] != '>';)
				if (v[i] == '"') {
					if ((i = hdr_skip(v, i, n)) == HDR_BAD)
						break;
				} else
					i++;
			if (i == HDR_BAD || i == n)
				break;
			ra = i++;
		} else
			i++;
	}
	/* Whatever it could not follow goes as it came. */
	buf_append(out, v + copied, n - copied);
	return count;
}

static const char *const addr_header_names[] = {"from", "sender", "reply-to"};

static int hdr_rewritten_field(const char *p, size_t namelen)
{
	while (namelen > 0 && (p[namelen - 1] == ' ' || p[namelen - 1] == '\t'))
		namelen--;
	for (size_t i = 0; i < sizeof(addr_header_names) / sizeof(addr_header_names[0]); i++)
		if (strlen(addr_header_names[i]) == namelen &&
		    strncasecmp(addr_header_names[i], p, namelen) == 0)
			return 1;
	return 0;
}

unsigned addr_header_section_rewrite(const struct addr_map *m, const char *p, size_t n,
				     int final, struct buf *out)
{
	size_t off = 0;
	unsigned count = 0;

	while (off < n) {
		/* The field's end: a CRLF not followed by a blank (folding). */
		size_t end = off;
		for (;;) {
			const char *cr = memmem(p + end, n - end, "\r\n", 2);
			if (cr == NULL) {
				end = HDR_BAD;
				break;
			}
			end = (size_t)(cr - p) + 2;
			if (end < n ? (p[end] != ' ' && p[end] != '\t') : final)
				break;
			if (end == n) {
				end = HDR_BAD;
				break;
			}
		}
		const char *colon = memchr(p + off, ':', end == HDR_BAD ? n - off : end - off);
		/* Incomplete, the empty line, or no header: the rest goes as it is. */
		if (end == HDR_BAD || end - off == 2 || colon == NULL)
			break;
		size_t c = (size_t)(colon - p);
		if (m->n > 0 && hdr_rewritten_field(p + off, c - off)) {
			buf_append(out, p + off, c + 1 - off);
			count += addr_header_rewrite(m, p + c + 1, end - 2 - (c + 1), out);
			buf_append(out, "\r\n", 2);
		} else
			buf_append(out, p + off, end - off);
		off = end;
	}
	buf_append(out, p + off, n - off);
	return count;
}
