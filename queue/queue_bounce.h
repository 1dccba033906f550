/*
 * queue_bounce.h - builds delivery status notifications (RFC 3464):
 * multipart/report; report-type=delivery-status from MAILER-DAEMON with a
 * human-readable part, a message/delivery-status part and the original
 * headers as text/rfc822-headers. Pure text building: the caller decides
 * when a report is due and enqueues it.
 */
#ifndef RELAYD_QUEUE_BOUNCE_H
#define RELAYD_QUEUE_BOUNCE_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

enum queue_dsn_action { DSN_FAILED, DSN_DELAYED };

struct queue_dsn_rcpt {
	const char *address;
	const char *status;     /* enhanced code "5.1.1"; "" for the action's default */
	const char *diagnostic; /* the remote reply or our reason; "" when none */
	const char *remote_mta; /* "mx.example.org[192.0.2.1]:25"; "" or "none" when unknown */
};

struct queue_dsn {
	enum queue_dsn_action action;
	const char *hostname;      /* reporting MTA */
	const char *qid;           /* the report's own queue id (Message-ID, boundary) */
	const char *orig_qid;
	const char *orig_sender;   /* the report goes to this address */
	int64_t arrival;           /* of the original message */
	int64_t now;
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *transcript;    /* queue_trace_brief(): the dialogue, or NULL */
	const char *headers;       /* the original message's header section */
	size_t headers_len;
};

/* The whole report, header and body, CRLF line ends, into out. */
void queue_dsn_build(const struct queue_dsn *d, struct buf *out);
/* The header section of a message (up to and without the blank line),
 * at most max bytes: its length in p. */
size_t queue_dsn_header_len(const char *p, size_t n, size_t max);

#endif
