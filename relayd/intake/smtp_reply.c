/*
 * smtp_reply.c - the reply table of intake, the EHLO keywords, and the
 * one formatter every reply line goes through. Wording after Postfix where
 * operators know it; enhanced codes from RFC 3463, 4954, 6531 and 7504.
 */
#include "smtp_reply.h"
#include "common/conn.h"
#include "common/xmalloc.h"
#include "common/log.h"

#include <stdio.h>

/* A reply's text with its argument (a hostname of up to 255 octets). */
#define SMTP_REPLY_TEXT_MAX 512
/* Code, separator, enhanced code, text, CRLF. */
#define SMTP_REPLY_LINE_MAX (SMTP_REPLY_TEXT_MAX + 32)

static const struct smtp_reply smtp_replies[SR_COUNT] = {
	[SR_GREETING] = {220, NULL, "%s ESMTP relayd"},
	[SR_EHLO] = {250, NULL, "%s"},
	[SR_HELO] = {250, NULL, "%s"},
	[SR_OK] = {250, "2.0.0", "Ok"},
	[SR_MAIL_OK] = {250, "2.1.0", "Ok"},
	[SR_RCPT_OK] = {250, "2.1.5", "Ok"},
	[SR_DATA_GO] = {354, NULL, "End data with <CR><LF>.<CR><LF>"},
	[SR_QUIT] = {221, "2.0.0", "Bye"},
	[SR_VRFY] = {252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"},
	[SR_HELP] = {214, "2.0.0", "See RFC 5321"},
	[SR_STARTTLS_GO] = {220, "2.0.0", "Ready to start TLS"},
	[SR_AUTH_OK] = {235, "2.7.0", "Authentication successful"},
	[SR_AUTH_GO] = {334, NULL, ""},
	[SR_AUTH_USERNAME] = {334, NULL, "VXNlcm5hbWU6"}, /* "Username:" */
	[SR_AUTH_PASSWORD] = {334, NULL, "UGFzc3dvcmQ6"}, /* "Password:" */
	[SR_QUEUED] = {250, "2.0.0", "Ok: queued as %s"},
	[SR_UNKNOWN_VERB] = {500, "5.5.1", "Error: command not recognized"},
	[SR_LINE_TOO_LONG] = {500, "5.5.2", "Error: line too long"},
	[SR_BARE_CRLF] = {500, "5.5.2", "Error: bare CR, bare LF or NUL in command"},
	[SR_SYNTAX] = {501, "5.5.4", "Syntax error in parameters or arguments"},
	[SR_NO_ARGS] = {501, "5.5.4", "Syntax error: no arguments allowed"},
	[SR_BAD_SENDER] = {501, "5.1.7", "Bad sender address syntax"},
	[SR_BAD_RCPT] = {501, "5.1.3", "Bad recipient address syntax"},
	[SR_LOCAL_TOO_LONG] = {501, "5.5.4", "Local part too long"},
	[SR_PATH_TOO_LONG] = {501, "5.5.4", "Path too long"},
	[SR_NEED_SMTPUTF8] = {553, "5.6.7", "Non-ASCII address needs SMTPUTF8"},
	[SR_BAD_IDN_SENDER] = {553, "5.1.7", "Bad sender address: domain is not a valid IDN (IDNA2008)"},
	[SR_BAD_IDN_RCPT] = {553, "5.1.3", "Bad recipient address: domain is not a valid IDN (IDNA2008)"},
	[SR_UNKNOWN_PARAM] = {555, "5.5.4", "Unsupported parameter"},
	[SR_BAD_PARAM] = {501, "5.5.4", "Bad parameter value"},
	[SR_DUP_PARAM] = {501, "5.5.4", "Error: a parameter given twice"},
	[SR_BAD_RET] = {501, "5.5.4", "Bad RET parameter: FULL or HDRS"},
	[SR_BAD_ENVID] = {501, "5.5.4", "Bad ENVID parameter: xtext of at most 100 printable ASCII characters"},
	[SR_BAD_NOTIFY] = {501, "5.5.4", "Bad NOTIFY parameter: NEVER, or SUCCESS, FAILURE, DELAY separated by commas"},
	[SR_BAD_ORCPT] = {501, "5.5.4", "Bad ORCPT parameter: rfc822;xtext or utf-8;address, at most 500 characters"},
	[SR_EXPN] = {502, "5.5.1", "EXPN not available"},
	[SR_NEED_HELO] = {503, "5.5.1", "Error: send HELO/EHLO first"},
	[SR_NEED_MAIL] = {503, "5.5.1", "Error: need MAIL command"},
	[SR_NEED_RCPT] = {503, "5.5.1", "Error: need RCPT command"},
	[SR_NESTED_MAIL] = {503, "5.5.1", "Error: nested MAIL command"},
	[SR_BAD_SEQUENCE] = {503, "5.5.1", "Error: bad sequence of commands"},
	[SR_TOO_BIG] = {552, "5.3.4", "Message size exceeds fixed limit"},
	[SR_TOO_MANY_RCPTS] = {452, "4.5.3", "Error: too many recipients"},
	[SR_RELAY_DENIED] = {554, "5.7.1", "Relay access denied"},
	[SR_SENDER_NOT_OWNED] = {553, "5.7.1", "Sender address not owned by user %s"},
	[SR_AUTH_REQUIRED] = {530, "5.7.0", "Authentication required"},
	[SR_AUTH_NEEDS_TLS] = {538, "5.7.11", "Encryption required for requested authentication mechanism"},
	[SR_AUTH_FAILED] = {535, "5.7.8", "Authentication credentials invalid"},
	[SR_AUTH_CANCELLED] = {501, "5.7.0", "Authentication cancelled"},
	[SR_AUTH_BAD_B64] = {501, "5.5.2", "Cannot decode response"},
	[SR_AUTH_MECH] = {504, "5.5.4", "Unrecognized authentication type"},
	[SR_AUTH_ALREADY] = {503, "5.5.1", "Error: already authenticated"},
	[SR_TLS_UNAVAILABLE] = {454, "4.7.0", "TLS not available"},
	[SR_TLS_ALREADY] = {503, "5.5.1", "Error: TLS already active"},
	[SR_DATA_BAD_EOL] = {550, "5.6.0", "Message contains bare CR, bare LF or NUL"},
	[SR_DATA_LONG_LINE] = {550, "5.6.0", "Message line longer than 65536 octets"},
	[SR_LOOP] = {554, "5.4.6", "Too many hops (mail loop)"},
	[SR_QUEUE_DOWN] = {451, "4.3.0", "Queue unavailable, try again later"},
	[SR_QUEUE_FAILED] = {451, "4.3.0", "Error: queue failure"},
	[SR_TIMEOUT] = {421, "4.4.2", "Error: timeout exceeded"},
	[SR_TOO_MANY_ERRORS] = {421, "4.7.0", "Error: too many errors"},
	[SR_TOO_MANY_CONNS] = {421, "4.7.0", "Error: too many connections"},
	[SR_AUTH_TOO_MANY] = {421, "4.7.0", "Error: too many authentication failures"},
	[SR_BAD_HELO] = {501, "5.5.2", "Helo command rejected: Invalid name"},
	[SR_AUTH_TEMPFAIL] = {454, "4.7.0", "Temporary authentication failure"},
	[SR_AUTH_THROTTLED] = {454, "4.7.0", "Error: too many authentication failures from your address, try again later"},
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id)
{
	if (id <= SR_NONE || id >= SR_COUNT || smtp_replies[id].code == 0)
		fatal("smtp_reply_get: no reply %d", (int)id);
	return &smtp_replies[id];
}

/* The EHLO keywords (RFC 5321 4.1.1.1), in the order they are sent. */
static const struct smtp_ehlo_kw {
	const char *name;
	unsigned offer;       /* 0: always; else the SMTP_EHLO_* it needs */
	int size;             /* followed by the size limit */
} smtp_ehlo_kws[] = {
	{"PIPELINING", 0, 0},
	{"SIZE", 0, 1},
	{"8BITMIME", 0, 0},
	{"ENHANCEDSTATUSCODES", 0, 0},
	{"SMTPUTF8", 0, 0},
	{"DSN", 0, 0},
	{"STARTTLS", SMTP_EHLO_STARTTLS, 0},
	{"AUTH PLAIN LOGIN", SMTP_EHLO_AUTH, 0},
};

#define SMTP_EHLO_NKWS (sizeof(smtp_ehlo_kws) / sizeof(smtp_ehlo_kws[0]))

/*
 * One reply line into line (SMTP_REPLY_LINE_MAX): "CODE TEXT" or "CODE ENH
 * TEXT", sep '-' after the code when more lines follow; its length.
 */
static size_t smtp_reply_line(char *line, int code, char sep, const char *enhanced,
			      const char *text)
{
	int n;

	if (enhanced)
		n = snprintf(line, SMTP_REPLY_LINE_MAX, "%d%c%s %s\r\n", code, sep, enhanced, text);
	else
		n = snprintf(line, SMTP_REPLY_LINE_MAX, "%d%c%s\r\n", code, sep, text);
	if (n < 0 || n >= SMTP_REPLY_LINE_MAX)
		fatal("smtp_reply_line: %d does not fit", code);
	return (size_t)n;
}

/* The table's reply id, its %s filled with arg; a longer text is cut. */
static size_t smtp_reply_render(char *line, enum smtp_reply_id id, char sep, const char *arg)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	char text[SMTP_REPLY_TEXT_MAX];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(text, sizeof(text), r->text, arg ? arg : "");
#pragma GCC diagnostic pop
	return smtp_reply_line(line, r->code, sep, r->enhanced, text);
}

void smtp_reply_format(struct buf *out, enum smtp_reply_id id, const char *arg)
{
	char line[SMTP_REPLY_LINE_MAX];

	buf_append(out, line, smtp_reply_render(line, id, ' ', arg));
}

void smtp_reply_write(struct conn *c, enum smtp_reply_id id, const char *arg)
{
	char line[SMTP_REPLY_LINE_MAX];

	conn_write(c, line, smtp_reply_render(line, id, ' ', arg));
}

void smtp_reply_ehlo(struct conn *c, const char *hostname, unsigned long long size_max,
		     unsigned offer)
{
	const struct smtp_reply *r = smtp_reply_get(SR_EHLO);
	char line[SMTP_REPLY_LINE_MAX], kw[64];
	size_t last = 0;

	for (size_t i = 0; i < SMTP_EHLO_NKWS; i++)
		if ((smtp_ehlo_kws[i].offer & ~offer) == 0)
			last = i;
	conn_write(c, line, smtp_reply_render(line, SR_EHLO, '-', hostname));
	for (size_t i = 0; i < SMTP_EHLO_NKWS; i++) {
		const struct smtp_ehlo_kw *k = &smtp_ehlo_kws[i];
		if ((k->offer & ~offer) != 0)
			continue;
		if (k->size)
			snprintf(kw, sizeof(kw), "%s %llu", k->name, size_max);
		else
			snprintf(kw, sizeof(kw), "%s", k->name);
		conn_write(c, line, smtp_reply_line(line, r->code, i == last ? ' ' : '-', NULL, kw));
	}
}

void smtp_reply_queue_failed(struct conn *c, int code, const char *enhanced, const char *text)
{
	const struct smtp_reply *r = smtp_reply_get(SR_QUEUE_FAILED);
	char line[SMTP_REPLY_LINE_MAX], cut[SMTP_REPLY_TEXT_MAX];

	if (code / 100 != r->code / 100)
		code = r->code;
	snprintf(cut, sizeof(cut), "%s", text[0] ? text : r->text);
	conn_write(c, line, smtp_reply_line(line, code, ' ', enhanced[0] ? enhanced : r->enhanced,
					    cut));
}

int smtp_reply_is_error(enum smtp_reply_id id)
{
	return smtp_reply_get(id)->code >= 500;
}
