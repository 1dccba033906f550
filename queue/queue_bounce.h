/*
 * queue_bounce.h - builds delivery status notifications (RFC 3464, with
 * RFC 3461's DSN fields and RFC 6533 for UTF-8): multipart/report;
 * report-type=delivery-status from MAILER-DAEMON with a human-readable
 * part, a message/delivery-status part (message/global-delivery-status
 * when an address is UTF-8), and the original message (message/rfc822 or
 * message/global) or its headers (text/rfc822-headers or
 * message/global-headers). Every part with 8-bit octets says so in its
 * Content-Transfer-Encoding. Pure text building: the caller decides when
 * a report is due, what it returns, and enqueues it.
 */
#ifndef RELAYD_QUEUE_BOUNCE_H
#define RELAYD_QUEUE_BOUNCE_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

enum queue_dsn_action { DSN_FAILED, DSN_DELAYED, DSN_RELAYED };

struct queue_dsn_rcpt {
	const char *address;
	const char *orcpt;      /* ORCPT= decoded, "rfc822;addr" or "utf-8;addr"; "" or NULL */
	const char *status;     /* enhanced code "5.1.1"; "" for the action's default */
	const char *text;       /* for people: "host X said: 550 ... (in reply to RCPT TO)" */
	const char *reply;      /* the remote reply itself ("550 5.1.1 ..."); "" when relayd
				   decided, then the text goes out as an X-Relayd diagnostic */
	const char *remote_mta; /* "mx.example.org[192.0.2.1]:25"; "" or "none" when unknown */
};

struct queue_dsn {
	enum queue_dsn_action action;
	int postmaster_copy;       /* a report about a report, to the postmaster */
	const char *hostname;      /* reporting MTA */
	const char *qid;           /* the report's own queue id (Message-ID, boundary) */
	const char *orig_qid;
	const char *to;            /* the report goes to this address */
	const char *envid;         /* ENVID= of the original, "" or NULL */
	int64_t arrival;           /* of the original message */
	int64_t now;
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *transcript;    /* queue_trace_brief(): the dialogue, or NULL */
	const char *content;       /* the original message, or its header section */
	size_t content_len;
	int full;                  /* content is the whole message */
	int utf8;                  /* the original is SMTPUTF8: message/global(-headers)
				      when its headers are UTF-8 */
};

/* The whole report, header and body, CRLF line ends, into out. */
void queue_dsn_build(const struct queue_dsn *d, struct buf *out);
/* The header section of a message (up to and without the blank line),
 * at most max bytes: its length in p. */
size_t queue_dsn_header_len(const char *p, size_t n, size_t max);

#endif
