/*
 * queue_bounce.c - the text of RFC 3464 delivery status notifications.
 * What differs between "failed", "delayed" and "relayed" lives in one
 * table; the report is built part by part into buffers first, so that
 * each part's headers can say whether it holds 8-bit octets.
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
		"failed", "5.0.0", "Undelivered Message",
	},
	[DSN_DELAYED] = {
		"Delayed Mail (still being retried)",
		"This is only a notice about a delay in delivery; you do not need\r\n"
		"to send the message again. The mail system will keep trying.\r\n",
		"delayed", "4.0.0", "Delayed Message",
	},
	[DSN_RELAYED] = {
		"Successful Mail Delivery Report",
		"Your message was relayed to the destination(s) listed below.\r\n"
		"The next mail system does not offer delivery notifications, so\r\n"
		"you may hear nothing more about it, even when it is delivered.\r\n",
		"relayed", "2.0.0", "Relayed Message",
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

static int queue_dsn_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

static int queue_dsn_8bit_str(const char *s)
{
	return s != NULL && queue_dsn_8bit(s, strlen(s));
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

/* The original content, with whole CRLF lines only. */
static void queue_dsn_lines(struct buf *out, const char *p, size_t n)
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

/* "rfc822; addr", or "utf-8; addr" for a UTF-8 address (RFC 6533 3). */
static void queue_dsn_address(struct buf *out, const char *type, const char *addr)
{
	if (type == NULL)
		type = queue_dsn_8bit_str(addr) ? "utf-8" : "rfc822";
	buf_appendf(out, "%s; ", type);
	queue_dsn_field(out, addr);
}

/* Part 1, for people. */
static void queue_dsn_human(const struct queue_dsn *d, const struct queue_dsn_kind *k,
			    struct buf *b)
{
	buf_appendf(b, "This is the mail system at host %s.\r\n\r\n%s\r\n", d->hostname,
		    d->postmaster_copy ? "A report about undeliverable mail could not be\r\n"
					 "delivered itself; it is returned to the postmaster.\r\n"
				       : k->intro);
	buf_appendf(b, "The mail system (queue id %s)\r\n\r\n", d->orig_qid);
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];
		buf_appendf(b, "<");
		queue_dsn_field(b, r->address);
		buf_appendf(b, ">: ");
		if (d->action == DSN_RELAYED && queue_dsn_known(r->remote_mta)) {
			buf_appendf(b, "relayed to ");
			queue_dsn_field(b, r->remote_mta);
			buf_appendf(b, ": ");
		}
		queue_dsn_field(b, r->text);
		buf_appendf(b, "\r\n");
	}
	buf_appendf(b, "\r\n");
	queue_trace_dsn(b, d->transcript);
}

/* Part 2, for programs (RFC 3464 section 2). */
static void queue_dsn_status(const struct queue_dsn *d, const struct queue_dsn_kind *k,
			     struct buf *b)
{
	char now[64], arrival[64];

	qid_date(d->now, now, sizeof(now));
	qid_date(d->arrival, arrival, sizeof(arrival));
	if (d->envid != NULL && d->envid[0] != '\0') {
		buf_appendf(b, "Original-Envelope-Id: ");
		queue_dsn_field(b, d->envid);
		buf_appendf(b, "\r\n");
	}
	buf_appendf(b, "Reporting-MTA: dns; %s\r\nX-Relayd-Queue-ID: %s\r\n"
		       "Arrival-Date: %s\r\n", d->hostname, d->orig_qid, arrival);
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];
		const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
		buf_appendf(b, "\r\n");
		if (semi != NULL) {
			char type[16];
			snprintf(type, sizeof(type), "%.*s", (int)(semi - r->orcpt), r->orcpt);
			buf_appendf(b, "Original-Recipient: ");
			queue_dsn_address(b, type, semi + 1);
			buf_appendf(b, "\r\n");
		}
		buf_appendf(b, "Final-Recipient: ");
		queue_dsn_address(b, NULL, r->address);
		buf_appendf(b, "\r\nAction: %s\r\nStatus: ", k->action);
		queue_dsn_field(b, queue_dsn_known(r->status) ? r->status : k->default_status);
		buf_appendf(b, "\r\n");
		if (queue_dsn_known(r->remote_mta)) {
			/* The name only: "mx.example.org[192.0.2.1]:25" gives mx.example.org. */
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(r->remote_mta, "["),
				 r->remote_mta);
			buf_appendf(b, "Remote-MTA: dns; ");
			queue_dsn_field(b, name);
			buf_appendf(b, "\r\n");
		}
		/* The remote reply as it came (RFC 3464 2.3.6); relayd's own
		 * findings under a type of its own, explained in part 1. */
		if (queue_dsn_known(r->reply)) {
			buf_appendf(b, "Diagnostic-Code: smtp; ");
			queue_dsn_field(b, r->reply);
			buf_appendf(b, "\r\n");
		} else if (queue_dsn_known(r->text)) {
			buf_appendf(b, "Diagnostic-Code: X-Relayd; ");
			queue_dsn_field(b, r->text);
			buf_appendf(b, "\r\n");
		}
		if (d->action == DSN_DELAYED)
			buf_appendf(b, "Last-Attempt-Date: %s\r\n", now);
	}
}

/* One body part: its headers (with the transfer encoding its octets need) and body. */
static void queue_dsn_part(struct buf *out, const char *boundary, const char *description,
			   const char *type, const struct buf *body)
{
	const char *p = (const char *)buf_head(body);
	size_t n = buf_avail(body);

	buf_appendf(out, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n", boundary,
		    description, type);
	if (queue_dsn_8bit(p, n))
		buf_appendf(out, "Content-Transfer-Encoding: 8bit\r\n");
	buf_appendf(out, "\r\n");
	buf_append(out, p, n);
}

void queue_dsn_build(const struct queue_dsn *d, struct buf *out)
{
	const struct queue_dsn_kind *k = &queue_dsn_kinds[d->action];
	char now[64], boundary[80];
	struct buf human, status, content;
	int utf8_addr = 0;

	buf_init(&human);
	buf_init(&status);
	buf_init(&content);
	queue_dsn_human(d, k, &human);
	queue_dsn_status(d, k, &status);
	for (size_t i = 0; i < d->nrcpts; i++)
		utf8_addr |= queue_dsn_8bit_str(d->rcpts[i].address) |
			     queue_dsn_8bit_str(d->rcpts[i].orcpt);
	queue_dsn_lines(&content, d->content, d->content_len);
	/* UTF-8 headers of an SMTPUTF8 message: message/global(-headers), RFC
	 * 6533 6.3; raw 8-bit in a message without SMTPUTF8 is not UTF-8 mail
	 * (RFC 6532) and keeps the classic types. */
	size_t hlen = queue_dsn_header_len(d->content, d->content_len, d->content_len);
	int utf8_hdrs = d->utf8 && queue_dsn_8bit(d->content, hlen);

	qid_date(d->now, now, sizeof(now));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", d->qid, (long long)d->now, d->hostname);
	buf_appendf(out, "Date: %s\r\n", now);
	buf_appendf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d->hostname);
	buf_appendf(out, "To: <");
	queue_dsn_field(out, d->to);
	buf_appendf(out, ">\r\nSubject: %s%s\r\n", d->postmaster_copy ? "Postmaster Copy: " : "",
		    k->subject);
	buf_appendf(out, "Message-ID: <%s@%s>\r\n", d->qid, d->hostname);
	buf_appendf(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_appendf(out, "Content-Type: multipart/report; report-type=%s;\r\n"
			 "\tboundary=\"%s\"\r\n\r\n",
		    utf8_addr ? "global-delivery-status" : "delivery-status", boundary);
	buf_appendf(out, "This is a MIME-encapsulated message.\r\n\r\n");

	char description[64];
	queue_dsn_part(out, boundary, "Notification", "text/plain; charset=utf-8", &human);
	buf_appendf(out, "\r\n");
	queue_dsn_part(out, boundary, "Delivery report",
		       utf8_addr ? "message/global-delivery-status" : "message/delivery-status",
		       &status);
	buf_appendf(out, "\r\n");
	snprintf(description, sizeof(description), "%s%s", k->part_description,
		 d->full ? "" : " Headers");
	queue_dsn_part(out, boundary, description,
		       d->full ? (utf8_hdrs ? "message/global" : "message/rfc822")
			       : (utf8_hdrs ? "message/global-headers" : "text/rfc822-headers"),
		       &content);
	buf_appendf(out, "\r\n--%s--\r\n", boundary);
	buf_free(&human);
	buf_free(&status);
	buf_free(&content);
}
