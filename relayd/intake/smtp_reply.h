/*
 * smtp_reply.h - every reply intake writes to a client, from the greeting
 * on, with its RFC 3463 enhanced status code, in one table; the EHLO
 * keywords; and the queue's refusals passed on. Parsers return a reply id
 * so that the code, the enhanced code and the wording live in one place.
 */
#ifndef RELAYD_SMTP_REPLY_H
#define RELAYD_SMTP_REPLY_H

#include "common/buf.h"

struct conn;

enum smtp_reply_id {
	SR_NONE = 0,            /* no reply: success of a parser */
	SR_GREETING,            /* takes the hostname */
	SR_EHLO,                /* takes the hostname; the keywords follow */
	SR_HELO,                /* takes the hostname */
	SR_OK,
	SR_MAIL_OK,
	SR_RCPT_OK,
	SR_DATA_GO,
	SR_QUIT,
	SR_VRFY,
	SR_HELP,
	SR_STARTTLS_GO,
	SR_AUTH_OK,
	SR_AUTH_GO,             /* PLAIN without an initial response */
	SR_AUTH_USERNAME,       /* LOGIN's challenges */
	SR_AUTH_PASSWORD,
	SR_QUEUED,              /* takes the queue id */
	SR_UNKNOWN_VERB,
	SR_LINE_TOO_LONG,
	SR_BARE_CRLF,
	SR_SYNTAX,
	SR_NO_ARGS,
	SR_BAD_SENDER,
	SR_BAD_RCPT,
	SR_LOCAL_TOO_LONG,
	SR_PATH_TOO_LONG,
	SR_NEED_SMTPUTF8,
	SR_BAD_IDN_SENDER,      /* a U-label domain IDNA2008 does not allow */
	SR_BAD_IDN_RCPT,
	SR_UNKNOWN_PARAM,
	SR_BAD_PARAM,
	SR_DUP_PARAM,
	SR_BAD_RET,
	SR_BAD_ENVID,
	SR_BAD_NOTIFY,
	SR_BAD_ORCPT,
	SR_EXPN,
	SR_NEED_HELO,
	SR_NEED_MAIL,
	SR_NEED_RCPT,
	SR_NESTED_MAIL,
	SR_BAD_SEQUENCE,
	SR_TOO_BIG,
	SR_TOO_MANY_RCPTS,
	SR_RELAY_DENIED,
	SR_SENDER_NOT_OWNED,
	SR_AUTH_REQUIRED,
	SR_AUTH_NEEDS_TLS,
	SR_AUTH_FAILED,
	SR_AUTH_CANCELLED,
	SR_AUTH_BAD_B64,
	SR_AUTH_MECH,
	SR_AUTH_ALREADY,
	SR_TLS_UNAVAILABLE,
	SR_TLS_ALREADY,
	SR_DATA_BAD_EOL,
	SR_DATA_LONG_LINE,
	SR_LOOP,
	SR_QUEUE_DOWN,
	SR_QUEUE_FAILED,        /* what the queue's refusal leaves out */
	SR_TIMEOUT,
	SR_TOO_MANY_ERRORS,
	SR_TOO_MANY_CONNS,
	SR_AUTH_TOO_MANY,
	SR_BAD_HELO,
	SR_AUTH_THROTTLED,
	SR_AUTH_TEMPFAIL,
	SR_COUNT
};

struct smtp_reply {
	int code;
	const char *enhanced; /* NULL for replies that carry none (3xx) */
	const char *text;     /* may hold one %s */
};

/* What EHLO offers beyond the keywords every session gets. */
enum { SMTP_EHLO_STARTTLS = 1, SMTP_EHLO_AUTH = 2 };

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id);
/* Appends "CODE ENH TEXT\r\n" to out; arg fills a %s in the text. */
void smtp_reply_format(struct buf *out, enum smtp_reply_id id, const char *arg);
/* The same, written to the client's connection. */
void smtp_reply_write(struct conn *c, enum smtp_reply_id id, const char *arg);
/*
 * The EHLO reply: SR_EHLO's line, then one line per keyword, with the
 * size limit and the SMTP_EHLO_* extras of offer.
 */
void smtp_reply_ehlo(struct conn *c, const char *hostname, unsigned long long size_max,
		     unsigned offer);
/*
 * The queue's refusal (MSG_Q_FAILED) as the queue worded it. What it
 * leaves empty comes from SR_QUEUE_FAILED, and so does the code when it
 * is not a temporary failure: the queue sends no other, and a client must
 * not take a bug for a final answer.
 */
void smtp_reply_queue_failed(struct conn *c, int code, const char *enhanced, const char *text);
/* 1 for permanent failures: the replies counted toward too many errors. */
int smtp_reply_is_error(enum smtp_reply_id id);

#endif
