/*
 * sendmail_msg.c - reading the message and rewriting its header section
 * (see sendmail_msg.h). A header field is a name of printable characters
 * up to a colon, with its continuation lines; the first line that is
 * neither starts the body, and an empty line is put before it.
 */
#include "sendmail_msg.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum sendmail_read sendmail_msg_read(FILE *f, int ignore_dots, uint64_t max, struct buf *out)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	enum sendmail_read rc = SENDMAIL_READ_OK;

	while ((n = getline(&line, &cap, f)) > 0) {
		size_t len = (size_t)n;
		if (line[len - 1] == '\n')
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!ignore_dots && len == 1 && line[0] == '.')
			break;
		if (buf_avail(out) + len + 2 > max) {
			rc = SENDMAIL_READ_TOO_BIG;
			break;
		}
		buf_append(out, line, len);
		buf_append(out, "\r\n", 2);
	}
	if (rc == SENDMAIL_READ_OK && ferror(f))
		rc = SENDMAIL_READ_ERROR;
	free(line);
	return rc;
}

char *sendmail_qualify(const char *addr, const char *hostname)
{
	size_t n = strlen(addr) + strlen(hostname) + 2;
	char *q = xmalloc(n);
	if (addr[0] == '\0' || strchr(addr, '@') != NULL)
		snprintf(q, n, "%s", addr);
	else
		snprintf(q, n, "%s@%s", addr, hostname);
	return q;
}

/* One element of an address list: the <address> if there is one, else the bare text. */
static void sendmail_addr_flush(struct buf *bare, struct buf *angle, int has_angle,
				const char *hostname, char ***v, size_t *n)
{
	struct buf *b = has_angle ? angle : bare;
	buf_append(b, "", 1);
	const char *a = (const char *)buf_head(b);
	/* An obsolete source route "@a,@b:user@x" leads to user@x. */
	if (a[0] == '@' && strchr(a, ':') != NULL)
		a = strchr(a, ':') + 1;
	if (a[0] != '\0') {
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		(*v)[(*n)++] = sendmail_qualify(a, hostname);
	}
	buf_reset(bare);
	buf_reset(angle);
}

void sendmail_addr_list(const char *value, const char *hostname, char ***v, size_t *n)
{
	struct buf bare, angle;
	int depth = 0, quoted = 0, in_angle = 0, has_angle = 0;

	buf_init(&bare);
	buf_init(&angle);
	for (const char *p = value; *p != '\0'; p++) {
		struct buf *dst = in_angle ? &angle : &bare;
		char c = *p;
		if (quoted) {
			buf_append(dst, p, 1);
			if (c == '\\' && p[1] != '\0')
				buf_append(dst, ++p, 1);
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		switch (c) {
		case '"':
			quoted = 1;
			buf_append(dst, p, 1);
			break;
		case '(':
			depth = 1;
			break;
		case '<':
			in_angle = has_angle = 1;
			buf_reset(&angle);
			break;
		case '>':
			in_angle = 0;
			break;
		case ':':
			if (in_angle) {
				buf_append(dst, p, 1);
				break;
			}
			buf_reset(&bare); /* a group's name */
			break;
		case ',':
		case ';':
			if (in_angle) {
				buf_append(dst, p, 1);
				break;
			}
			sendmail_addr_flush(&bare, &angle, has_angle, hostname, v, n);
			has_angle = 0;
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			break;
		default:
			buf_append(dst, p, 1);
		}
	}
	sendmail_addr_flush(&bare, &angle, has_angle, hostname, v, n);
	buf_free(&bare);
	buf_free(&angle);
}

/* Header fields whose addresses -t takes, and which go from the message. */
enum hdr_kind { HDR_OTHER, HDR_RCPT, HDR_BCC, HDR_RESENT_RCPT, HDR_RESENT_BCC, HDR_FROM,
		HDR_DATE, HDR_MSGID };

static const struct {
	const char *name;
	enum hdr_kind kind;
} sendmail_hdrs[] = {
	{"to", HDR_RCPT},
	{"cc", HDR_RCPT},
	{"bcc", HDR_BCC},
	{"resent-to", HDR_RESENT_RCPT},
	{"resent-cc", HDR_RESENT_RCPT},
	{"resent-bcc", HDR_RESENT_BCC},
	{"from", HDR_FROM},
	{"date", HDR_DATE},
	{"message-id", HDR_MSGID},
};

static enum hdr_kind sendmail_hdr_kind(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(sendmail_hdrs) / sizeof(sendmail_hdrs[0]); i++)
		if (strlen(sendmail_hdrs[i].name) == n && strncasecmp(sendmail_hdrs[i].name, name, n) == 0)
			return sendmail_hdrs[i].kind;
	return HDR_OTHER;
}

/* The length of a field name at p (up to its colon), or 0 when the line is no field. */
static size_t sendmail_field_name(const char *p, size_t linelen)
{
	size_t i = 0;
	while (i < linelen && p[i] != ':' && p[i] > 32 && p[i] < 127)
		i++;
	while (i < linelen && (p[i] == ' ' || p[i] == '\t'))
		i++; /* "Subject :" (obsolete syntax) */
	return i > 0 && i < linelen && p[i] == ':' ? i : 0;
}

/* Appends the display name, quoted when it holds specials (RFC 5322 3.2.3). */
static void sendmail_display_name(struct buf *out, const char *name)
{
	if (strcspn(name, "()<>[]:;@\\,.\"") == strlen(name)) {
		buf_appendf(out, "%s", name);
		return;
	}
	buf_append(out, "\"", 1);
	for (const char *p = name; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, p, 1);
	}
	buf_append(out, "\"", 1);
}

void sendmail_msg_headers(const char *in, size_t len, const struct sendmail_hdr_params *p,
			  struct buf *out, char ***rcpts, size_t *nrcpts)
{
	const char *pos = in, *end = in + len;
	int seen[HDR_MSGID + 1] = {0};
	char **plain = NULL, **resent = NULL;
	size_t nplain = 0, nresent = 0;

	/* An mbox "From " line is no header. */
	if (len >= 5 && memcmp(in, "From ", 5) == 0) {
		const char *nl = memchr(in, '\n', len);
		pos = nl ? nl + 1 : end;
	}
	while (pos < end) {
		const char *eol = memchr(pos, '\n', (size_t)(end - pos));
		const char *next = eol ? eol + 1 : end;
		size_t linelen = (size_t)((eol ? eol : end) - pos);
		if (linelen > 0 && pos[linelen - 1] == '\r')
			linelen--;
		if (linelen == 0) {
			pos = next;
			break;
		}
		size_t nlen = sendmail_field_name(pos, linelen);
		if (nlen == 0)
			break; /* the body starts without its empty line */
		/* The field with its continuation lines. */
		while (next < end && (*next == ' ' || *next == '\t')) {
			const char *e = memchr(next, '\n', (size_t)(end - next));
			next = e ? e + 1 : end;
		}
		size_t namelen = nlen;
		while (namelen > 0 && (pos[namelen - 1] == ' ' || pos[namelen - 1] == '\t'))
			namelen--;
		enum hdr_kind kind = sendmail_hdr_kind(pos, namelen);
		seen[kind] = 1;
		if (p->extract && kind != HDR_OTHER && kind <= HDR_RESENT_BCC) {
			size_t vlen = (size_t)(next - pos) - nlen - 1;
			char *value = xmalloc(vlen + 1);
			memcpy(value, pos + nlen + 1, vlen);
			value[vlen] = '\0';
			if (kind == HDR_RCPT || kind == HDR_BCC)
				sendmail_addr_list(value, p->hostname, &plain, &nplain);
			else
				sendmail_addr_list(value, p->hostname, &resent, &nresent);
			free(value);
		}
		if (kind != HDR_BCC && kind != HDR_RESENT_BCC)
			buf_append(out, pos, (size_t)(next - pos));
		pos = next;
	}
	/* A last header line without its line end. */
	if (buf_avail(out) > 0 && buf_head(out)[buf_avail(out) - 1] != '\n')
		buf_append(out, "\r\n", 2);
	if (!seen[HDR_FROM]) {
		char *from = sendmail_qualify(p->sender[0] ? p->sender : "MAILER-DAEMON", p->hostname);
		buf_appendf(out, "From: ");
		if (p->fullname && p->fullname[0]) {
			sendmail_display_name(out, p->fullname);
			buf_appendf(out, " <%s>\r\n", from);
		} else
			buf_appendf(out, "%s\r\n", from);
		free(from);
	}
	if (!seen[HDR_DATE])
		buf_appendf(out, "Date: %s\r\n", p->date);
	if (!seen[HDR_MSGID])
		buf_appendf(out, "Message-ID: %s\r\n", p->msgid);
	buf_append(out, "\r\n", 2);
	if (pos < end)
		buf_append(out, pos, (size_t)(end - pos));
	/* Being resent: the Resent- fields name the recipients. */
	char **take = nresent > 0 ? resent : plain, **drop = nresent > 0 ? plain : resent;
	size_t ntake = nresent > 0 ? nresent : nplain, ndrop = nresent > 0 ? nplain : nresent;
	for (size_t i = 0; i < ntake; i++) {
		*rcpts = xreallocarray(*rcpts, *nrcpts + 1, sizeof(**rcpts));
		(*rcpts)[(*nrcpts)++] = take[i];
	}
	for (size_t i = 0; i < ndrop; i++)
		free(drop[i]);
	free(plain);
	free(resent);
}
