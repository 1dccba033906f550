/*
 * dlv_trace.c - the bounded transcript of a job's SMTP dialogue.
 */
#include "relayd/delivery/dlv_trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A line longer than this is cut: a transcript is read by people. */
#define DLV_TRACE_LINE 600

void dlv_trace_init(struct dlv_trace *t)
{
	buf_init(&t->head);
	buf_init(&t->tail);
	t->omitted = 0;
	t->dirty = 0;
}

void dlv_trace_free(struct dlv_trace *t)
{
	buf_free(&t->head);
	buf_free(&t->tail);
}

/* Drops whole lines from the front of the tail until n more bytes fit. */
static void dlv_trace_make_room(struct dlv_trace *t, size_t n)
{
	size_t limit = DLV_TRACE_MAX - DLV_TRACE_HEAD;

	while (buf_avail(&t->tail) > 0 && buf_avail(&t->tail) + n > limit) {
		const char *p = (const char *)buf_head(&t->tail);
		const char *nl = memchr(p, '\n', buf_avail(&t->tail));
		buf_consume(&t->tail, nl ? (size_t)(nl - p) + 1 : buf_avail(&t->tail));
		t->omitted++;
	}
}

static void dlv_trace_line(struct dlv_trace *t, const char *prefix, const char *fmt, va_list ap)
{
	char line[DLV_TRACE_LINE];
	int pn = snprintf(line, sizeof(line), "%s", prefix);
	vsnprintf(line + pn, sizeof(line) - (size_t)pn, fmt, ap);
	/* One line each: a server's CR, LF or other control bytes become '?'. */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	size_t n = strlen(line);
	struct buf *b = buf_avail(&t->head) + n + 1 <= DLV_TRACE_HEAD && t->omitted == 0 &&
				buf_avail(&t->tail) == 0 ? &t->head : &t->tail;
	if (b == &t->tail)
		dlv_trace_make_room(t, n + 1);
	buf_append(b, line, n);
	buf_append(b, "\n", 1);
	t->dirty = 1;
}

void dlv_trace_add(struct dlv_trace *t, char mark, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char prefix[32];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(prefix, sizeof(prefix), "%02d:%02d:%02d.%03ld %c ", tm.tm_hour, tm.tm_min,
		 tm.tm_sec, ts.tv_nsec / 1000000, mark);
	va_start(ap, fmt);
	dlv_trace_line(t, prefix, fmt, ap);
	va_end(ap);
}

void dlv_trace_begin(struct dlv_trace *t, const char *fmt, ...)
{
	char prefix[48];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(prefix, sizeof(prefix), "%Y-%m-%d %H:%M:%S UTC ", &tm);
	va_start(ap, fmt);
	dlv_trace_line(t, prefix, fmt, ap);
	va_end(ap);
}

void dlv_trace_text(const struct dlv_trace *t, struct buf *out)
{
	buf_append(out, buf_head(&t->head), buf_avail(&t->head));
	if (t->omitted > 0)
		buf_appendf(out, "    ... %zu line(s) not kept ...\n", t->omitted);
	buf_append(out, buf_head(&t->tail), buf_avail(&t->tail));
	buf_append(out, "", 1);
}
