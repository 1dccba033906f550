/*
 * smtp_reply.h - every reply intake sends after the greeting, with its
 * RFC 3463 enhanced status code, in one table. Parsers return a reply id
 * so that the code, the enhanced code and the wording live in one place.
 */
#ifndef RELAYD_SMTP_REPLY_H
#define RELAYD_SMTP_REPLY_H

#include "common/buf.h"

enum smtp_reply_id {
	SR_NONE = 0,            /* no reply: success of a parser */
	SR_OK,
	SR_MAIL_OK,
	SR_RCPT_OK,
	SR_DATA_GO,
	SR_QUIT,
	SR_VRFY,
	SR_HELP,
	SR_STARTTLS_GO,
	SR_AUTH_OK,
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
	SR_UNKNOWN_PARAM,
	SR_BAD_PARAM,
	SR_EXPN,
	SR_NEED_HELO,
	SR_NEED_MAIL,
	SR_NEED_RCPT,
	SR_NESTED_MAIL,
	SR_BAD_SEQUENCE,
	SR_TOO_BIG,
	SR_TOO_MANY_RCPTS,
	SR_RELAY_DENIED,
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

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id);
/* Appends "CODE ENH TEXT\r\n" to out; arg fills a %s in the text. */
void smtp_reply_format(struct buf *out, enum smtp_reply_id id, const char *arg);
/* 1 for permanent failures: the replies counted toward too many errors. */
int smtp_reply_is_error(enum smtp_reply_id id);

#endif
