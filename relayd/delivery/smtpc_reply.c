/*
 * smtpc_reply.c - parsing SMTP server replies and EHLO extensions for the
 * delivery client.
 */
#include "relayd/delivery/smtpc_reply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void smtpc_reply_init(struct smtpc_reply *r)
{
	r->code = 0;
	r->pending_code = 0;
	r->enh[0] = '\0';
	r->text[0] = '\0';
	r->textlen = 0;
	r->nlines = 0;
}

/* "c.d.d": class digit matching the reply, then 1-3 digit subject and detail. */
static void smtpc_parse_enh(struct smtpc_reply *r, const char *p, size_t len, int cls)
{
	size_t i = 0;

	if (len < 5 || p[0] != '0' + cls || p[1] != '.')
		return;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && isdigit((unsigned char)p[i]) && i - start < 3)
			i++;
		if (i == start)
			return;
		if (part == 0) {
			if (i >= len || p[i] != '.')
				return;
			i++;
		}
	}
	if (i < len && p[i] != ' ')
		return;
	memcpy(r->enh, p, i);
	r->enh[i] = '\0';
}

static void smtpc_text_append(struct smtpc_reply *r, const char *p, size_t len)
{
	size_t room = sizeof(r->text) - 1 - r->textlen;

	if (r->nlines > 0 && room > 0) {
		r->text[r->textlen++] = '\n';
		room--;
	}
	if (len > room)
		len = room;
	/* Control bytes from a server never reach logs or bounces as such. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		r->text[r->textlen++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
	}
	r->text[r->textlen] = '\0';
}

enum smtpc_parse smtpc_reply_line(struct smtpc_reply *r, const char *line, size_t len)
{
	if (len < 3 || len > SMTPC_LINE_MAX)
		return SMTPC_BAD;
	if (line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return SMTPC_BAD;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTPC_BAD;
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	/* Every line of one reply carries the same code (RFC 5321 4.2.1). */
	if (r->nlines > 0 && code != r->pending_code)
		return SMTPC_BAD;
	const char *text = len > 4 ? line + 4 : "";
	size_t tlen = len > 4 ? len - 4 : 0;
	if (r->nlines == 0) {
		r->pending_code = code;
		smtpc_parse_enh(r, text, tlen, line[0] - '0');
	}
	smtpc_text_append(r, text, tlen);
	r->nlines++;
	if (len > 3 && line[3] == '-')
		return SMTPC_MORE;
	r->code = code;
	return SMTPC_DONE;
}

enum smtpc_parse smtpc_reply_read(struct smtpc_reply *r, struct buf *in)
{
	for (;;) {
		const char *p = (const char *)buf_head(in);
		size_t n = buf_avail(in);
		if (n == 0)
			return SMTPC_MORE;
		const char *nl = memchr(p, '\n', n);
		if (nl == NULL)
			return n > SMTPC_LINE_MAX ? SMTPC_BAD : SMTPC_MORE;
		size_t len = (size_t)(nl - p);
		/* Servers' bare LF is tolerated on input; relayd never sends one. */
		if (len > 0 && p[len - 1] == '\r')
			len--;
		enum smtpc_parse res = smtpc_reply_line(r, p, len);
		buf_consume(in, (size_t)(nl - p) + 1);
		if (res != SMTPC_MORE)
			return res;
	}
}

void smtpc_reply_oneline(const struct smtpc_reply *r, char *dst, size_t dstsz)
{
	int n = snprintf(dst, dstsz, "%d %s", r->code, r->text);
	if (n < 0)
		return;
	for (char *p = dst; *p; p++)
		if (*p == '\n' || (unsigned char)*p < 0x20)
			*p = ' ';
	/* A reply without text leaves a trailing blank: drop it. */
	size_t len = strlen(dst);
	if (len > 0 && dst[len - 1] == ' ')
		dst[len - 1] = '\0';
}

struct smtpc_ext_row {
	const char *keyword;
	unsigned flag;
};

static const struct smtpc_ext_row smtpc_ext_table[] = {
	{"PIPELINING", SMTPC_EXT_PIPELINING},
	{"8BITMIME", SMTPC_EXT_8BITMIME},
	{"STARTTLS", SMTPC_EXT_STARTTLS},
	{"SIZE", SMTPC_EXT_SIZE},
	{"AUTH", SMTPC_EXT_AUTH},
	{"SMTPUTF8", SMTPC_EXT_SMTPUTF8},
	{"ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCED},
	{"DSN", SMTPC_EXT_DSN},
};

static const struct smtpc_ext_row smtpc_auth_table[] = {
	{"PLAIN", SMTPC_AUTH_PLAIN},
	{"LOGIN", SMTPC_AUTH_LOGIN},
};

static unsigned smtpc_lookup(const struct smtpc_ext_row *tab, size_t n, const char *word,
			     size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(tab[i].keyword) == len && strncasecmp(tab[i].keyword, word, len) == 0)
			return tab[i].flag;
	return 0;
}

/* One extension line: keyword, then blank-separated parameters. */
static void smtpc_caps_line(struct smtpc_caps *caps, const char *p, size_t len)
{
	size_t kw = 0;

	/* Old servers wrote "AUTH=PLAIN LOGIN"; '=' ends the keyword too. */
	while (kw < len && p[kw] != ' ' && p[kw] != '=')
		kw++;
	unsigned flag = smtpc_lookup(smtpc_ext_table, sizeof(smtpc_ext_table) /
				     sizeof(smtpc_ext_table[0]), p, kw);
	caps->ext |= flag;
	size_t i = kw;
	while (i < len) {
		while (i < len && (p[i] == ' ' || p[i] == '='))
			i++;
		size_t start = i;
		while (i < len && p[i] != ' ')
			i++;
		if (i == start)
			break;
		if (flag == SMTPC_EXT_AUTH)
			caps->auth |= smtpc_lookup(smtpc_auth_table, sizeof(smtpc_auth_table) /
						   sizeof(smtpc_auth_table[0]), p + start,
						   i - start);
		else if (flag == SMTPC_EXT_SIZE && start == kw + 1) {
			char num[24];
			size_t nlen = i - start < sizeof(num) - 1 ? i - start : sizeof(num) - 1;
			memcpy(num, p + start, nlen);
			num[nlen] = '\0';
			char *end;
			unsigned long long v = strtoull(num, &end, 10);
			if (*end == '\0' && isdigit((unsigned char)num[0]))
				caps->size_max = v;
		}
	}
}

void smtpc_caps_parse(const struct smtpc_reply *r, struct smtpc_caps *caps)
{
	const char *p = r->text, *end = r->text + r->textlen;

	memset(caps, 0, sizeof(*caps));
	/* The first line is the server's name and greeting, not an extension. */
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return;
	p = nl + 1;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		smtpc_caps_line(caps, p, (size_t)(le - p));
		p = le + 1;
	}
}
