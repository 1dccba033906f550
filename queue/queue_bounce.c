/*
 * queue_bounce.c - the text of RFC 3464 delivery status notifications.
 * What differs between "failed" and "delayed" lives in one table.
 */
#include "queue/queue_bounce.h"
#include "queue/queue_trace.h"
#include "common/qid.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct queue_dsn_kind {
	const char *subject;
	const char *intro;
	const char *action;
	const char *default_status;
	const char *part_description;
};

static const struct queue_dsn_kind queue_dsn_kinds[] = {
	[DSN_FAILED] = {
		"Undelivered Mail Returned to Sender",
		"I'm sorry to have to inform you that your message could not\r\n"
		"be delivered to one or more recipients. It's attached below.\r\n",
		"failed", "5.0.0", "Undelivered Message Headers",
	},
	[DSN_DELAYED] = {
		"Delayed Mail (still being retried)",
		"This is only a notice about a delay in delivery; you do not need\r\n"
		"to send the message again. The mail system will keep trying.\r\n",
		"delayed", "4.0.0", "Delayed Message Headers",
	},
};

/* A field value on one line: CR, LF and other controls become spaces. */
static void queue_dsn_field(struct buf *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_append(out, c < 0x20 || c == 0x7f ? " " : s, 1);
	}
}

size_t queue_dsn_header_len(const char *p, size_t n, size_t max)
{
	if (n > max)
		n = max;
	if (n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 0;
	for (size_t i = 0; i + 3 < n; i++)
		if (memcmp(p + i, "\r\n\r\n", 4) == 0)
			return i + 2;
	return n;
}

/* The original headers, with whole CRLF lines only. */
static void queue_dsn_headers(struct buf *out, const char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n' && p[i] != '\r')
			continue;
		buf_append(out, p + start, i - start);
		buf_append(out, "\r\n", 2);
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	if (start < n) {
		buf_append(out, p + start, n - start);
		buf_append(out, "\r\n", 2);
	}
}

static int queue_dsn_known(const char *s)
{
	return s != NULL && *s != '\0' && strcmp(s, "none") != 0;
}

void queue_dsn_build(const struct queue_dsn *d, struct buf *out)
{
	const struct queue_dsn_kind *k = &queue_dsn_kinds[d->action];
	char now[64], arrival[64], boundary[80];

	qid_date(d->now, now, sizeof(now));
	qid_date(d->arrival, arrival, sizeof(arrival));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", d->qid, (long long)d->now, d->hostname);

	buf_appendf(out, "Date: %s\r\n", now);
	buf_appendf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d->hostname);
	buf_appendf(out, "To: <");
	queue_dsn_field(out, d->orig_sender);
	buf_appendf(out, ">\r\nSubject: %s\r\n", k->subject);
	buf_appendf(out, "Message-ID: <%s@%s>\r\n", d->qid, d->hostname);
	buf_appendf(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_appendf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			 "\tboundary=\"%s\"\r\n\r\n", boundary);
	buf_appendf(out, "This is a MIME-encapsulated message.\r\n\r\n");

	/* 1: for people. */
	buf_appendf(out, "--%s\r\nContent-Description: Notification\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n\r\n", boundary);
	buf_appendf(out, "This is the mail system at host %s.\r\n\r\n%s\r\n", d->hostname,
		    k->intro);
	buf_appendf(out, "The mail system (queue id %s)\r\n\r\n", d->orig_qid);
	for (size_t i = 0; i < d->nrcpts; i++) {
		buf_appendf(out, "<");
		queue_dsn_field(out, d->rcpts[i].address);
		buf_appendf(out, ">: ");
		queue_dsn_field(out, d->rcpts[i].diagnostic);
		buf_appendf(out, "\r\n");
	}
	buf_appendf(out, "\r\n");
	queue_trace_dsn(out, d->transcript);

	/* 2: for programs (RFC 3464 section 2). */
	buf_appendf(out, "--%s\r\nContent-Description: Delivery report\r\n"
			 "Content-Type: message/delivery-status\r\n\r\n", boundary);
	buf_appendf(out, "Reporting-MTA: dns; %s\r\nX-Relayd-Queue-ID: %s\r\n"
			 "Arrival-Date: %s\r\n", d->hostname, d->orig_qid, arrival);
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];
		buf_appendf(out, "\r\nFinal-Recipient: rfc822; ");
		queue_dsn_field(out, r->address);
		buf_appendf(out, "\r\nAction: %s\r\nStatus: ", k->action);
		queue_dsn_field(out, queue_dsn_known(r->status) ? r->status : k->default_status);
		buf_appendf(out, "\r\n");
		if (queue_dsn_known(r->remote_mta)) {
			/* The name only: "mx.example.org[192.0.2.1]:25" gives mx.example.org. */
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(r->remote_mta, "["),
				 r->remote_mta);
			buf_appendf(out, "Remote-MTA: dns; ");
			queue_dsn_field(out, name);
			buf_appendf(out, "\r\n");
		}
		if (queue_dsn_known(r->diagnostic)) {
			buf_appendf(out, "Diagnostic-Code: smtp; ");
			queue_dsn_field(out, r->diagnostic);
			buf_appendf(out, "\r\n");
		}
		if (d->action == DSN_DELAYED)
			buf_appendf(out, "Last-Attempt-Date: %s\r\n", now);
	}
	buf_appendf(out, "\r\n");

	/* 3: the original headers. */
	buf_appendf(out, "--%s\r\nContent-Description: %s\r\n"
			 "Content-Type: text/rfc822-headers\r\n\r\n", boundary, k->part_description);
	queue_dsn_headers(out, d->headers, d->headers_len);
	buf_appendf(out, "\r\n--%s--\r\n", boundary);
}
