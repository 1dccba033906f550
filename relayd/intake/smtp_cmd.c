/*
 * smtp_cmd.c - command line framing and the MAIL/RCPT argument grammar.
 * ESMTP parameters are a table: keyword, the verbs that take it, whether
 * it has a value, and its parser.
 */
#include "smtp_cmd.h"

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

/* Parameter parsers: SR_NONE or the reply. */
static enum smtp_reply_id param_size(struct smtp_mail_args *m, const char *v)
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
	m->size = size;
	m->has_size = 1;
	return SR_NONE;
}

static enum smtp_reply_id param_body(struct smtp_mail_args *m, const char *v)
{
	if (strcasecmp(v, "7BIT") == 0)
		m->body_8bit = 0;
	else if (strcasecmp(v, "8BITMIME") == 0)
		m->body_8bit = 1;
	else
		return SR_BAD_PARAM;
	return SR_NONE;
}

static enum smtp_reply_id param_smtputf8(struct smtp_mail_args *m, const char *v)
{
	(void)v;
	m->smtputf8 = 1;
	return SR_NONE;
}

#define PARAM_MAIL 0x1u
#define PARAM_RCPT 0x2u

static const struct smtp_param {
	const char *keyword;
	unsigned verbs;
	int has_value;
	enum smtp_reply_id (*parse)(struct smtp_mail_args *m, const char *value);
} smtp_params[] = {
	{"SIZE", PARAM_MAIL, 1, param_size},
	{"BODY", PARAM_MAIL, 1, param_body},
	{"SMTPUTF8", PARAM_MAIL, 0, param_smtputf8},
};
#define NPARAMS (sizeof(smtp_params) / sizeof(smtp_params[0]))

/* esmtp-param = esmtp-keyword ["=" esmtp-value], separated by blanks. */
static enum smtp_reply_id parse_params(const char *p, unsigned verb, struct smtp_mail_args *m)
{
	unsigned seen = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return SR_NONE;
		char kw[32], val[64];
		size_t kl = 0, vl = 0;
		for (; isalnum((unsigned char)*p) || (*p == '-' && kl > 0); p++) {
			if (kl + 1 >= sizeof(kw))
				return SR_UNKNOWN_PARAM;
			kw[kl++] = *p;
		}
		kw[kl] = '\0';
		int has_value = *p == '=';
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
		if (has_value != smtp_params[i].has_value || (seen & (1u << i)))
			return SR_BAD_PARAM;
		seen |= 1u << i;
		enum smtp_reply_id r = smtp_params[i].parse(m, val);
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
	err = parse_params(p + n, PARAM_MAIL, out);
	if (err == SR_NONE && out->path.utf8 && !out->smtputf8)
		err = SR_NEED_SMTPUTF8;
	return err;
}

enum smtp_reply_id smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_path *out)
{
	enum smtp_reply_id err = SR_NONE;
	struct smtp_mail_args unused;

	const char *p = skip_prefix(args, "TO:");
	if (p == NULL) {
		memset(out, 0, sizeof(*out));
		return SR_SYNTAX;
	}
	int n = smtp_path_parse(p, strlen(p), smtputf8 ? SMTP_PATH_UTF8 : 0, out, &err);
	if (n < 0)
		return err;
	if (p[n] != ' ' && p[n] != '\0')
		return SR_BAD_RCPT;
	return parse_params(p + n, PARAM_RCPT, &unused);
}
