/*
 * smtp_cmd.h - the command side of the SMTP input: cutting command lines
 * out of the input buffer (CRLF only, at most 512 octets), splitting the
 * verb from its arguments, and the arguments of MAIL and RCPT with their
 * ESMTP parameters (SIZE, BODY, SMTPUTF8, and DSN's RET, ENVID, NOTIFY,
 * ORCPT of RFC 3461).
 */
#ifndef RELAYD_SMTP_CMD_H
#define RELAYD_SMTP_CMD_H

#include "smtp_path.h"
#include "smtp_reply.h"

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SMTP_LINE_MAX 512

enum smtp_line_status {
	SMTP_LINE_MORE, /* no whole line yet: consume *used octets, read more */
	SMTP_LINE_OK,   /* a line of *linelen octets (CRLF not counted) */
	SMTP_LINE_ERR,  /* a bad line ended: reply *err */
};

/* Carries a bad line across reads until its end is seen. */
struct smtp_line_reader {
	enum smtp_reply_id skip_err; /* SR_NONE: not inside a bad line */
	int skip_cr;                 /* the last octet skipped was a CR */
};

/*
 * Looks for the next command line in p[0..n). *used is how many octets to
 * consume in every case. A line is bad when it is longer than 512 octets
 * or holds a bare CR, a bare LF or a NUL; a bad line is discarded up to
 * the next CRLF and answered then, so replies stay in order and nothing
 * after a bare LF is ever taken for a command.
 */
enum smtp_line_status smtp_line_next(struct smtp_line_reader *lr, const uint8_t *p, size_t n,
				     size_t *used, size_t *linelen, enum smtp_reply_id *err);

/* A command line split into its verb and the arguments after it. */
struct smtp_cmd {
	char verb[16];    /* upper case; "" when the verb is too long */
	const char *args; /* into the line, leading blanks skipped; "" if none */
};
void smtp_cmd_split(const char *line, struct smtp_cmd *cmd);

/* RFC 3461 4.4: an ENVID is at most 100 characters; 4.2: an ORCPT 500. */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

struct smtp_mail_args {
	struct smtp_path path;
	uint64_t size;  /* SIZE=, 0 when not given */
	int has_size;
	int body_8bit;  /* BODY=8BITMIME */
	int smtputf8;
	unsigned ret;   /* RET=: DSN_RET_*, 0 when not given */
	char envid[SMTP_ENVID_MAX + 1]; /* ENVID=, xtext-decoded; "" */
};

struct smtp_rcpt_args {
	struct smtp_path path;
	unsigned notify; /* NOTIFY=: DSN_NOTIFY_*, 0 when not given */
	/* ORCPT=, decoded: "rfc822;user@example.org" or "utf-8;..."; "" */
	char orcpt[SMTP_ORCPT_MAX + 1];
};

/* "FROM:<path> [params]": SR_NONE, or the reply for what is wrong. */
enum smtp_reply_id smtp_parse_mail(const char *args, struct smtp_mail_args *out);
/* "TO:<path> [params]"; smtputf8: the transaction's MAIL had SMTPUTF8. */
enum smtp_reply_id smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_rcpt_args *out);

#endif
