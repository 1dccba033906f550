/*
 * smtp_cmd.c - command line framing and the MAIL/RCPT argument grammar.
 * ESMTP parameters are a table: keyword, the verbs that take it, whether
 * it has a value, and its parser.
 */
#include "smtp_cmd.h"
#include "common/ipc_types.h"
#include "common/xtext.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

enum smtp_line_status smtp_line_next(struct smtp_line_reader *lr, const uint8_t *p, size_t n,
				     size_t *used, size_t *linelen, enum smtp_reply_id *err)
{
	if (lr->skip_err != SR_NONE) {
		/* Only a real CRLF ends a bad line: a bare LF in it ends nothing. */
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '\n' && (i > 0 ? p[i - 1] == '\r' : lr->skip_cr)) {
				*used = i + 1;
				*err = lr->skip_err;
				lr->skip_err = SR_NONE;
				lr->skip_cr = 0;
				return SMTP_LINE_ERR;
			}
		}
		lr->skip_cr = n > 0 && p[n - 1] == '\r';
		*used = n;
		return SMTP_LINE_MORE;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 == n)
				break;
			if (p[i + 1] == '\n') {
				*used = i + 2;
				*linelen = i;
				return SMTP_LINE_OK;
			}
			lr->skip_err = SR_BARE_CRLF;
		} else if (p[i] == '\0' || p[i] == '\n')
			lr->skip_err = SR_BARE_CRLF;
		else if (i >= SMTP_LINE_MAX - 2)
			lr->skip_err = SR_LINE_TOO_LONG;
		if (lr->skip_err != SR_NONE) {
			/* Discard the rest of the bad line (maybe all of it is here). */
			size_t rest;
			lr->skip_cr = 0;
			enum smtp_line_status st =
				smtp_line_next(lr, p + i + 1, n - i - 1, &rest, linelen, err);
			*used = i + 1 + rest;
			return st;
		}
	}
	*used = 0;
	return SMTP_LINE_MORE;
}

void smtp_cmd_split(const char *line, struct smtp_cmd *cmd)
{
	size_t k = 0;
	const char *p = line;

	while (*p != '\0' && *p != ' ') {
		if (k + 1 < sizeof(cmd->verb))
			cmd->verb[k] = (char)toupper((unsigned char)*p);
		k++;
		p++;
	}
	if (k + 1 > sizeof(cmd->verb))
		k = 0;
	cmd->verb[k] = '\0';
	while (*p == ' ')
		p++;
	cmd->args = p;
}

/* Where the parameters of one command go; each parser fills its verb's. */
struct smtp_params {
	struct smtp_mail_args *mail;
	struct smtp_rcpt_args *rcpt;
	int smtputf8; /* the transaction is SMTPUTF8: ORCPT=utf-8 may be raw UTF-8 */
};

/* Parameter parsers: SR_NONE or the reply. */
static enum smtp_reply_id param_size(struct smtp_params *o, const char *v)
{
	uint64_t size = 0;
	size_t k = 0;

	for (; v[k] != '\0'; k++) {
		if (!isdigit((unsigned char)v[k]) || k >= 20)
			return SR_BAD_PARAM;
		uint64_t d = (uint64_t)(v[k] - '0');
		if (size > (UINT64_MAX - d) / 10)
			return SR_BAD_PARAM;
		size = size * 10 + d;
	}
	o->mail->size = size;
	o->mail->has_size = 1;
	return SR_NONE;
}

static enum smtp_reply_id param_body(struct smtp_params *o, const char *v)
{
	if (strcasecmp(v, "7BIT") == 0)
		o->mail->body_8bit = 0;
	else if (strcasecmp(v, "8BITMIME") == 0)
		o->mail->body_8bit = 1;
	else
		return SR_BAD_PARAM;
	return SR_NONE;
}

static enum smtp_reply_id param_smtputf8(struct smtp_params *o, const char *v)
{
	(void)v;
	o->mail->smtputf8 = 1;
	return SR_NONE;
}

/* RET=FULL|HDRS (RFC 3461 4.3). */
static enum smtp_reply_id param_ret(struct smtp_params *o, const char *v)
{
	if (strcasecmp(v, "FULL") == 0)
		o->mail->ret = DSN_RET_FULL;
	else if (strcasecmp(v, "HDRS") == 0)
		o->mail->ret = DSN_RET_HDRS;
	else
		return SR_BAD_RET;
	return SR_NONE;
}

/* ENVID=xtext, printable ASCII once decoded (RFC 3461 4.4). */
static enum smtp_reply_id param_envid(struct smtp_params *o, const char *v)
{
	if (xtext_decode(v, o->mail->envid, sizeof(o->mail->envid)) <= 0)
		return SR_BAD_ENVID;
	return SR_NONE;
}

/* NOTIFY=NEVER, or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static enum smtp_reply_id param_notify(struct smtp_params *o, const char *v)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
		{"NEVER", DSN_NOTIFY_NEVER},
		{"SUCCESS", DSN_NOTIFY_SUCCESS},
		{"FAILURE", DSN_NOTIFY_FAILURE},
		{"DELAY", DSN_NOTIFY_DELAY},
	};
	unsigned notify = 0;

	for (;;) {
		size_t n = strcspn(v, ","), i;
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i].name) == n && strncasecmp(v, words[i].name, n) == 0)
				break;
		if (i == sizeof(words) / sizeof(words[0]) || (notify & words[i].bit))
			return SR_BAD_NOTIFY;
		notify |= words[i].bit;
		if (v[n] == '\0')
			break;
		v += n + 1;
	}
	if ((notify & DSN_NOTIFY_NEVER) && notify != DSN_NOTIFY_NEVER)
		return SR_BAD_NOTIFY;
	o->rcpt->notify = notify;
	return SR_NONE;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2): rfc822 (xtext) or utf-8 (RFC 6533). */
static enum smtp_reply_id param_orcpt(struct smtp_params *o, const char *v)
{
	char *dst = o->rcpt->orcpt;
	size_t dstsz = sizeof(o->rcpt->orcpt);
	const char *semi = strchr(v, ';');
	int n;

	if (semi == NULL || strlen(v) > SMTP_ORCPT_MAX)
		return SR_BAD_ORCPT;
	size_t tl = (size_t)(semi - v);
	if (tl == 6 && strncasecmp(v, "rfc822", 6) == 0) {
		memcpy(dst, "rfc822;", 7);
		n = xtext_decode(semi + 1, dst + 7, dstsz - 7);
	} else if (tl == 5 && strncasecmp(v, "utf-8", 5) == 0) {
		memcpy(dst, "utf-8;", 6);
		n = xtext_decode_utf8(semi + 1, o->smtputf8, dst + 6, dstsz - 6);
	} else
		n = -1;
	if (n <= 0) {
		dst[0] = '\0';
		return SR_BAD_ORCPT;
	}
	return SR_NONE;
}

#define PARAM_MAIL 0x1u
#define PARAM_RCPT 0x2u

static const struct smtp_param {
	const char *keyword;
	unsigned verbs;
	int has_value;
	enum smtp_reply_id (*parse)(struct smtp_params *o, const char *value);
} smtp_params[] = {
	{"SIZE", PARAM_MAIL, 1, param_size},
	{"BODY", PARAM_MAIL, 1, param_body},
	{"SMTPUTF8", PARAM_MAIL, 0, param_smtputf8},
	{"RET", PARAM_MAIL, 1, param_ret},
	{"ENVID", PARAM_MAIL, 1, param_envid},
	{"NOTIFY", PARAM_RCPT, 1, param_notify},
	{"ORCPT", PARAM_RCPT, 1, param_orcpt},
};
#define NPARAMS (sizeof(smtp_params) / sizeof(smtp_params[0]))

/* esmtp-param = esmtp-keyword ["=" esmtp-value], separated by blanks. */
static enum smtp_reply_id parse_params(const char *p, unsigned verb, struct smtp_params *o)
{
	unsigned seen = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return SR_NONE;
		char kw[32], val[SMTP_LINE_MAX];
		size_t kl = 0, vl = 0;
		for (; isalnum((unsigned char)*p) || (*p == '-' && kl > 0); p++) {
			if (kl + 1 >= sizeof(kw))
				return SR_UNKNOWN_PARAM;
			kw[kl++] = *p;
		}
		kw[kl] = '\0';
		int has_value = *p == '=';
		/* esmtp-value is ASCII; with SMTPUTF8, ORCPT=utf-8 may hold UTF-8 (RFC 6533). */
		if (has_value)
			for (p++; (unsigned char)*p > ' ' && *p != '=' && *p != 0x7f; p++) {
				if (vl + 1 >= sizeof(val))
					return SR_BAD_PARAM;
				val[vl++] = *p;
			}
		val[vl] = '\0';
		if (kl == 0 || (*p != ' ' && *p != '\0') || (has_value && vl == 0))
			return SR_SYNTAX;
		size_t i;
		for (i = 0; i < NPARAMS; i++)
			if (strcasecmp(smtp_params[i].keyword, kw) == 0)
				break;
		if (i == NPARAMS || !(smtp_params[i].verbs & verb))
			return SR_UNKNOWN_PARAM;
		if (seen & (1u << i))
			return SR_DUP_PARAM;
		if (has_value != smtp_params[i].has_value)
			return SR_BAD_PARAM;
		seen |= 1u << i;
		enum smtp_reply_id r = smtp_params[i].parse(o, val);
		if (r != SR_NONE)
			return r;
	}
}

/* "KEYWORD:" then optional blanks (tolerated, as most servers do). */
static const char *skip_prefix(const char *args, const char *kw)
{
	size_t n = strlen(kw);
	if (strncasecmp(args, kw, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}

enum smtp_reply_id smtp_parse_mail(const char *args, struct smtp_mail_args *out)
{
	enum smtp_reply_id err = SR_NONE;

	memset(out, 0, sizeof(*out));
	const char *p = skip_prefix(args, "FROM:");
	if (p == NULL)
		return SR_SYNTAX;
	int n = smtp_path_parse(p, strlen(p), SMTP_PATH_SENDER | SMTP_PATH_UTF8, &out->path, &err);
	if (n < 0)
		return err;
	if (p[n] != ' ' && p[n] != '\0')
		return SR_BAD_SENDER;
	struct smtp_params o = {.mail = out};
	err = parse_params(p + n, PARAM_MAIL, &o);
	if (err == SR_NONE && out->path.utf8 && !out->smtputf8)
		err = SR_NEED_SMTPUTF8;
	return err;
}

enum smtp_reply_id smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_rcpt_args *out)
{
	enum smtp_reply_id err = SR_NONE;

	memset(out, 0, sizeof(*out));
	const char *p = skip_prefix(args, "TO:");
	if (p == NULL)
		return SR_SYNTAX;
	int n = smtp_path_parse(p, strlen(p), smtputf8 ? SMTP_PATH_UTF8 : 0, &out->path, &err);
	if (n < 0)
		return err;
	if (p[n] != ' ' && p[n] != '\0')
		return SR_BAD_RCPT;
	struct smtp_params o = {.rcpt = out, .smtputf8 = smtputf8};
	return parse_params(p + n, PARAM_RCPT, &o);
}
