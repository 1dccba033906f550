/*
 * dlv_trace.h - the transcript of a job's delivery attempts (relayctl
 * trace): every command the client sent and every reply it read, with
 * times, the TLS and connection events, AUTH secrets masked and the
 * message content reduced to its size.
 *
 * Bounded: the first DLV_TRACE_HEAD bytes of lines stay (where the attempt
 * began), then the most recent ones up to DLV_TRACE_MAX in all (where it
 * ended); the lines in between are counted, not kept. The queue gets the
 * text before the job's last result, so a bounce can quote it.
 */
#ifndef RELAYD_DLV_TRACE_H
#define RELAYD_DLV_TRACE_H

#include "common/buf.h"

#include <stddef.h>

#define DLV_TRACE_MAX 8192
#define DLV_TRACE_HEAD 2048

struct dlv_trace {
	struct buf head;    /* the first lines, up to DLV_TRACE_HEAD */
	struct buf tail;    /* the latest lines, oldest dropped first */
	size_t omitted;     /* lines dropped between the two */
	int dirty;          /* changed since the queue last got it */
};

void dlv_trace_init(struct dlv_trace *t);
void dlv_trace_free(struct dlv_trace *t);
/* One line: "HH:MM:SS.mmm MARK text" (MARK ">" sent, "<" received, "*" event). */
void dlv_trace_add(struct dlv_trace *t, char mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A line with the date, where an attempt starts. */
void dlv_trace_begin(struct dlv_trace *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The whole text, NUL-terminated, into out (appended). */
void dlv_trace_text(const struct dlv_trace *t, struct buf *out);

#endif
