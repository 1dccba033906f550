/*
 * queue_trace.c - the transcripts of delivery attempts, for relayctl and
 * for delivery status notifications.
 */
#include "queue/queue_trace.h"

#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int queue_trace_show_one(const char *domain, int64_t when, const char *text, void *arg)
{
	struct buf *out = arg;
	time_t t = (time_t)when;
	struct tm tm;
	char date[32];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	buf_appendf(out, "--- recipients at %s: the latest attempt (recorded %s UTC)\n%s%s",
		    domain, date, text, *text && text[strlen(text) - 1] != '\n' ? "\n" : "");
	return 0;
}

int queue_trace_show(struct queue_store *st, const char *qid, struct buf *out)
{
	size_t before = buf_avail(out);

	if (queue_store_traces_of(st, qid, queue_trace_show_one, out) < 0)
		return -1;
	if (buf_avail(out) == before)
		buf_appendf(out, "%s: no delivery attempt recorded yet\n", qid);
	return 0;
}

/* What a notification quotes: the transcripts of its recipients' domains. */
struct queue_trace_brief_ctx {
	struct buf *out;
	size_t per_domain;
	const struct queue_rcpt *rcpts;  /* the recipients the notification is about */
	size_t nrcpts;
};

static int queue_trace_ours(const struct queue_trace_brief_ctx *c, const char *addr, size_t len)
{
	for (size_t i = 0; i < c->nrcpts; i++)
		if (strlen(c->rcpts[i].address) == len &&
		    strncasecmp(c->rcpts[i].address, addr, len) == 0)
			return 1;
	return 0;
}

/*
 * The lines of one attempt a notification may quote: not the DNS answers,
 * and not the RCPT of another recipient nor its reply (the sender hears
 * about each recipient in its own notification). Replies come in the
 * order of their commands, pipelined or not, so a FIFO of the commands'
 * verdicts pairs them; the greeting answers no command.
 */
static void queue_trace_filter(const struct queue_trace_brief_ctx *c, const char *p,
			       struct buf *b)
{
	size_t nlines = 1, head = 0, tail = 0, left_out = 0;
	for (const char *q = p; *q; q++)
		nlines += *q == '\n';
	uint8_t *keep = xcalloc(nlines, 1);

	while (*p) {
		size_t len = strcspn(p, "\n");
		/* "HH:MM:SS.mmm M text"; other lines (the dated start) are kept. */
		char mark = len > 15 && p[2] == ':' && p[12] == ' ' ? p[13] : '*';
		const char *t = p + 15;
		int ok = 1;
		if (mark == '*' && len > 15 && strncmp(t, "DNS: ", 5) == 0) {
			ok = 0;
		} else if (mark == '>') {
			if (strncmp(t, "RCPT TO:<", 9) == 0) {
				const char *a = t + 9, *e = memchr(a, '>', len - 24);
				ok = e != NULL && queue_trace_ours(c, a, (size_t)(e - a));
				left_out += !ok;
			}
			keep[tail++] = (uint8_t)ok;
		} else if (mark == '<') {
			if (head < tail) {
				ok = keep[head];
				left_out += !ok;
				/* "250-..." goes on; "250 ..." or "250" ends the reply. */
				if (len < 19 || t[3] != '-')
					head++;
			}
		}
		if (ok) {
			buf_append(b, p, len);
			buf_append(b, "\n", 1);
		}
		p += len + (p[len] == '\n');
	}
	if (left_out > 0)
		buf_appendf(b, "    (%zu line(s) about other recipients left out)\n", left_out);
	free(keep);
}

static int queue_trace_brief_one(const char *domain, int64_t when, const char *text, void *arg)
{
	struct queue_trace_brief_ctx *c = arg;
	const char *p = text, *last = text;
	char rd[256];
	struct buf b;
	size_t i;

	(void)when;
	for (i = 0; i < c->nrcpts; i++) {
		queue_addr_domain(c->rcpts[i].address, rd, sizeof(rd));
		if (strcmp(rd, domain) == 0)
			break;
	}
	if (i == c->nrcpts)
		return 0;  /* none of this notification's recipients is there */
	/* The last attempt begins at its last dated line ("2026-..."). */
	for (p = text; *p;) {
		size_t len = strcspn(p, "\n");
		if (len > 4 && p[0] >= '0' && p[0] <= '9' && p[4] == '-')
			last = p;
		p += len + (p[len] == '\n');
	}
	buf_init(&b);
	queue_trace_filter(c, last, &b);
	buf_appendf(c->out, "<recipients at %s>\n", domain);
	const char *s = (const char *)buf_head(&b);
	size_t n = buf_avail(&b);
	if (n > c->per_domain) {
		/* Where it ended tells why: keep the end, from a line start. */
		const char *cut = s + n - c->per_domain, *nl = memchr(cut, '\n', c->per_domain);
		buf_appendf(c->out, "    ...\n");
		n -= nl ? (size_t)(nl + 1 - s) : (size_t)(cut - s);
		s += buf_avail(&b) - n;
	}
	buf_append(c->out, s, n);
	buf_free(&b);
	return 0;
}

void queue_trace_brief(struct queue_store *st, const char *qid, const struct queue_rcpt *rcpts,
		       size_t nrcpts, struct buf *out)
{
	struct queue_trace_brief_ctx c = {out, QUEUE_TRACE_DSN_MAX, rcpts, nrcpts};
	size_t start = buf_avail(out);

	if (queue_store_traces_of(st, qid, queue_trace_brief_one, &c) < 0)
		out->len = out->off + start;  /* no transcript rather than half of one */
	if (buf_avail(out) - start > QUEUE_TRACE_DSN_MAX) {
		/* Many destinations: each gets its share, the text is made again. */
		out->len = out->off + start;
		c.per_domain = QUEUE_TRACE_DSN_MAX / 4;
		if (queue_store_traces_of(st, qid, queue_trace_brief_one, &c) < 0)
			out->len = out->off + start;
	}
	if (buf_avail(out) - start > QUEUE_TRACE_DSN_MAX) {
		/* Still too long (many destinations): the first ones, whole lines. */
		const char *s = (const char *)buf_head(out) + start;
		size_t n = QUEUE_TRACE_DSN_MAX;
		while (n > 0 && s[n - 1] != '\n')
			n--;
		out->len = out->off + start + n;
		buf_appendf(out, "    ... (more destinations)\n");
	}
	buf_append(out, "", 1);
}

void queue_trace_dsn(struct buf *out, const char *transcript)
{
	if (transcript == NULL || *transcript == '\0')
		return;
	buf_appendf(out, "Transcript of the latest delivery attempt(s) (> sent, < received,\r\n"
			 "* events; times UTC):\r\n\r\n");
	for (const char *p = transcript; *p;) {
		size_t len = strcspn(p, "\n");
		buf_append(out, p, len);
		buf_append(out, "\r\n", 2);
		p += len + (p[len] == '\n');
	}
	buf_appendf(out, "\r\n");
}
