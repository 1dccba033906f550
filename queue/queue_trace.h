/*
 * queue_trace.h - the transcripts of delivery attempts as people read
 * them: whole for `relayctl trace QID`, shortened for bounces and delay
 * notices (Postfix's "transcript of session"). The text comes from
 * delivery (relayd/delivery/dlv_trace.c) and lives in queue.db.
 */
#ifndef RELAYD_QUEUE_TRACE_H
#define RELAYD_QUEUE_TRACE_H

#include "common/buf.h"
#include "queue/queue_store.h"

/* What of the transcripts a notification quotes, at most. */
#define QUEUE_TRACE_DSN_MAX 3072

/* relayctl trace: every destination's latest attempt; 0, or -1 on a store error. */
int queue_trace_show(struct queue_store *st, const char *qid, struct buf *out);
/*
 * The shortened transcript for a notification about rcpts of qid,
 * NUL-terminated, into out ("" when none): for each of their domains the
 * last attempt's dialogue, without the DNS lines and the other recipients'
 * RCPT, its end kept when it is too long.
 */
void queue_trace_brief(struct queue_store *st, const char *qid, const struct queue_rcpt *rcpts,
		       size_t nrcpts, struct buf *out);
/* The notification's paragraph quoting it (nothing when transcript is empty). */
void queue_trace_dsn(struct buf *out, const char *transcript);

#endif
