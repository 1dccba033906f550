/*
 * queue_intake.c - SMTP transactions streaming in from intake: BEGIN,
 * RCPT, CONTENT pieces, END or ABORT, tied by a session id. Content goes
 * into the open write transaction in chunks of at most IPC_CHUNK_SIZE as
 * it arrives; END marks the message complete and waits for the group
 * commit, after which (and only after which) COMMITTED is sent.
 */
#include "queue/queue.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* What intake tells its client when the queue cannot take a message. */
static const struct queue_fail_reply {
	int sqlite_rc; /* 0: any other */
	uint32_t code;
	const char *enh;
	const char *text;
} queue_fail_replies[] = {
	{SQLITE_FULL, 452, "4.3.1", "Insufficient system storage"},
	{SQLITE_CONSTRAINT, 451, "4.3.0", "Duplicate queue id"},
	{0, 451, "4.3.0", "Queue error, try again later"},
};

static const struct queue_fail_reply *queue_fail_reply(int rc)
{
	size_t i = 0;
	while (queue_fail_replies[i].sqlite_rc != 0 && queue_fail_replies[i].sqlite_rc != (rc & 0xff))
		i++;
	return &queue_fail_replies[i];
}

static struct queue_sess **queue_sess_slot(struct queue_peer *p, uint64_t sid)
{
	struct queue_sess **sp = &p->sess[sid % QUEUE_SESS_BUCKETS];
	while (*sp && (*sp)->sid != sid)
		sp = &(*sp)->next;
	return sp;
}

static struct queue_sess *queue_sess_find(struct queue_peer *p, uint64_t sid)
{
	return *queue_sess_slot(p, sid);
}

/* Unlinks from the peer (the session may still wait for its commit). */
static void queue_sess_unlink(struct queue_sess *s)
{
	if (s->peer == NULL)
		return;
	struct queue_sess **sp = queue_sess_slot(s->peer, s->sid);
	if (*sp == s)
		*sp = s->next;
	s->peer = NULL;
}

static void queue_sess_free(struct queue_sess *s)
{
	queue_sess_unlink(s);
	buf_free(&s->pending);
	free(s);
}

static void queue_sess_reply_failed(struct queue_sess *s, int rc)
{
	const struct queue_fail_reply *r = queue_fail_reply(rc);
	struct ipc_wr wr;
	if (s->peer == NULL)
		return;
	ipc_wr_init(&wr);
	ipc_put_u64(&wr, s->sid);
	ipc_put_u32(&wr, r->code);
	ipc_put_str(&wr, r->enh);
	ipc_put_str(&wr, r->text);
	ipc_send_wr(s->peer->ch, MSG_Q_FAILED, &wr);
	ipc_wr_free(&wr);
	log_msg(LOG_WARNING, s->msg.qid, "not queued: %u %s %s", r->code, r->enh, r->text);
}

/* The session's rows were lost or are unwanted: FAILED, and ignore the rest of its stream. */
static void queue_sess_fail(struct queue_sess *s, int rc)
{
	queue_sess_reply_failed(s, rc);
	s->failed = 1;
	buf_free(&s->pending);
	buf_init(&s->pending);
}

/* A store call failed while s wrote: the whole transaction goes, and s with it. */
static int queue_sess_write_failed(struct queue *q, struct queue_sess *s)
{
	if (s != NULL)
		s->gen = q->gen;
	queue_txn_abort(q);
	return 0;
}

/* Writes whole chunks from the pending buffer (all of it when final). */
static int queue_sess_flush(struct queue *q, struct queue_sess *s, int final)
{
	while (buf_avail(&s->pending) >= IPC_CHUNK_SIZE ||
	       (final && buf_avail(&s->pending) > 0)) {
		size_t n = buf_avail(&s->pending);
		if (n > IPC_CHUNK_SIZE)
			n = IPC_CHUNK_SIZE;
		if (queue_txn(q) < 0 ||
		    queue_store_chunk_add(q->st, s->msg.qid, s->nchunks, buf_head(&s->pending), n) < 0)
			return -1;
		s->gen = q->gen;
		s->nchunks++;
		buf_consume(&s->pending, n);
	}
	if (buf_avail(&s->pending) == 0)
		buf_reset(&s->pending);
	return 0;
}

int queue_in_begin(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	struct queue_sess *s = xcalloc(1, sizeof(*s));
	s->sid = ipc_get_u64(rd);
	ipc_get_str(rd, s->msg.qid, sizeof(s->msg.qid));
	ipc_get_str(rd, s->msg.sender, sizeof(s->msg.sender));
	ipc_get_str(rd, s->msg.client, sizeof(s->msg.client));
	ipc_get_str(rd, s->msg.helo, sizeof(s->msg.helo));
	ipc_get_str(rd, s->msg.auth_user, sizeof(s->msg.auth_user));
	s->msg.body_flags = ipc_get_u32(rd);
	s->msg.arrival = ipc_get_i64(rd);
	if (ipc_rd_done(rd) < 0 || s->msg.qid[0] == '\0' || queue_sess_find(p, s->sid) != NULL) {
		free(s);
		return -1;
	}
	buf_init(&s->pending);
	s->peer = p;
	struct queue_sess **sp = queue_sess_slot(p, s->sid);
	*sp = s;
	if (queue_txn(q) < 0)
		return queue_sess_write_failed(q, s);
	if (queue_store_msg_add(q->st, &s->msg) < 0) {
		/* A duplicate queue id fails this session only; anything else, the transaction. */
		if ((queue_store_errcode(q->st) & 0xff) == SQLITE_CONSTRAINT) {
			queue_sess_fail(s, SQLITE_CONSTRAINT);
			return 0;
		}
		return queue_sess_write_failed(q, s);
	}
	s->owns_row = 1;
	s->gen = q->gen;
	return 0;
}

/* The session a frame is about; NULL (after reading the rest) when it
 * failed earlier or its stream is already over. */
static struct queue_sess *queue_in_sess(struct queue_peer *p, uint64_t sid)
{
	struct queue_sess *s = queue_sess_find(p, sid);
	if (s == NULL || s->failed || s->ended)
		return NULL;
	return s;
}

int queue_in_rcpt(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	char rcpt[QUEUE_ADDR_MAX];
	uint64_t sid = ipc_get_u64(rd);
	ipc_get_str(rd, rcpt, sizeof(rcpt));
	if (ipc_rd_done(rd) < 0 || queue_sess_find(p, sid) == NULL)
		return -1;
	struct queue_sess *s = queue_in_sess(p, sid);
	if (s == NULL)
		return 0;
	if (queue_txn(q) < 0 || queue_store_rcpt_add(q->st, s->msg.qid, rcpt) < 0)
		return queue_sess_write_failed(q, s);
	s->gen = q->gen;
	s->nrcpt++;
	return 0;
}

int queue_in_content(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	size_t n;
	uint64_t sid = ipc_get_u64(rd);
	const uint8_t *data = ipc_get_bytes(rd, &n);
	if (ipc_rd_done(rd) < 0 || n > IPC_CHUNK_SIZE || queue_sess_find(p, sid) == NULL)
		return -1;
	struct queue_sess *s = queue_in_sess(p, sid);
	if (s == NULL)
		return 0;
	buf_append(&s->pending, data, n);
	s->bytes += n;
	if (queue_sess_flush(q, s, 0) < 0)
		return queue_sess_write_failed(q, s);
	return 0;
}

int queue_in_end(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	uint64_t sid = ipc_get_u64(rd);
	uint64_t size = ipc_get_u64(rd);
	struct queue_sess *s = queue_sess_find(p, sid);
	if (ipc_rd_done(rd) < 0 || s == NULL || s->ended)
		return -1;
	if (s->failed) {
		/* FAILED was sent already; the session is over. */
		queue_sess_free(s);
		return 0;
	}
	if (size != s->bytes)
		log_msg(LOG_WARNING, s->msg.qid, "intake says %llu bytes, %llu arrived",
			(unsigned long long)size, (unsigned long long)s->bytes);
	if (s->nrcpt == 0) {
		log_msg(LOG_WARNING, s->msg.qid, "message without recipients refused");
		queue_sess_reply_failed(s, 0);
		char qid[QUEUE_QID_MAX];
		memcpy(qid, s->msg.qid, sizeof(qid));
		queue_sess_free(s);
		if (queue_txn(q) < 0 || queue_store_msg_delete(q->st, qid) < 0)
			return queue_sess_write_failed(q, NULL);
		return 0;
	}
	if (queue_sess_flush(q, s, 1) < 0 || queue_txn(q) < 0 ||
	    queue_store_msg_complete(q->st, s->msg.qid, s->bytes, s->nchunks, q->now()) < 0)
		return queue_sess_write_failed(q, s);
	s->gen = q->gen;
	s->ended = 1;
	s->wnext = NULL;
	*q->waiting_tail = s;
	q->waiting_tail = &s->wnext;
	q->want_commit = 1;
	queue_kick(q);
	return 0;
}

int queue_in_abort(struct queue_peer *p, struct ipc_rd *rd)
{
	struct queue *q = p->q;
	uint64_t sid = ipc_get_u64(rd);
	if (ipc_rd_done(rd) < 0)
		return -1;
	struct queue_sess *s = queue_sess_find(p, sid);
	/* Unknown (never begun), or too late: an END is being committed. */
	if (s == NULL || s->ended)
		return 0;
	int owns = s->owns_row && !s->failed;
	char qid[QUEUE_QID_MAX];
	memcpy(qid, s->msg.qid, sizeof(qid));
	queue_sess_free(s);
	if (owns && (queue_txn(q) < 0 || queue_store_msg_delete(q->st, qid) < 0))
		return queue_sess_write_failed(q, NULL);
	return 0;
}

/* The intake peer went away: its unfinished transactions are discarded;
 * the ones already ended still commit (nobody will hear of it). */
void queue_in_gone(struct queue_peer *p)
{
	struct queue *q = p->q;
	int failed = 0;
	for (size_t b = 0; b < QUEUE_SESS_BUCKETS; b++) {
		while (p->sess[b]) {
			struct queue_sess *s = p->sess[b];
			if (s->ended) {
				queue_sess_unlink(s);
				continue;
			}
			if (s->owns_row && !s->failed && !failed &&
			    (queue_txn(q) < 0 || queue_store_msg_delete(q->st, s->msg.qid) < 0))
				failed = 1;
			queue_sess_free(s);
		}
	}
	if (failed)
		queue_txn_abort(q);
}

void queue_in_committed(struct queue *q)
{
	while (q->waiting) {
		struct queue_sess *s = q->waiting;
		q->waiting = s->wnext;
		log_msg(LOG_INFO, s->msg.qid, "from=<%s>, size=%llu, nrcpt=%u, client=[%s]",
			s->msg.sender, (unsigned long long)s->bytes, s->nrcpt, s->msg.client);
		if (s->peer != NULL) {
			struct ipc_wr wr;
			ipc_wr_init(&wr);
			ipc_put_u64(&wr, s->sid);
			ipc_put_str(&wr, s->msg.qid);
			ipc_send_wr(s->peer->ch, MSG_Q_COMMITTED, &wr);
			ipc_wr_free(&wr);
		}
		queue_sess_free(s);
	}
	q->waiting_tail = &q->waiting;
}

/* Rows a failed session may have left in earlier, committed transactions. */
static void queue_in_cleanup(struct queue *q, char (*qids)[QUEUE_QID_MAX], size_t n)
{
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (queue_txn(q) < 0 || queue_store_msg_delete(q->st, qids[i]) < 0)
			break;
	/* If this fails too, start-up recovery removes the incomplete rows. */
	if (queue_store_in_txn(q->st) && queue_store_commit(q->st) < 0)
		log_warnx("queue.db: cleanup after rollback failed: %s",
			  queue_store_errmsg(q->st));
}

void queue_in_rolled_back(struct queue *q, int rc)
{
	char (*qids)[QUEUE_QID_MAX] = NULL;
	size_t n = 0, cap = 0;

	while (q->waiting) {
		struct queue_sess *s = q->waiting;
		q->waiting = s->wnext;
		queue_sess_reply_failed(s, rc);
		qids = xreallocarray(qids, ++cap, sizeof(*qids));
		memcpy(qids[n++], s->msg.qid, QUEUE_QID_MAX);
		queue_sess_free(s);
	}
	q->waiting_tail = &q->waiting;
	/* Sessions still streaming lost pieces if they wrote in that transaction. */
	for (struct queue_peer *p = q->peers; p; p = p->next) {
		for (size_t b = 0; b < QUEUE_SESS_BUCKETS; b++) {
			for (struct queue_sess *s = p->sess[b]; s; s = s->next) {
				if (s->failed || s->gen != q->gen)
					continue;
				if (s->owns_row) {
					qids = xreallocarray(qids, ++cap, sizeof(*qids));
					memcpy(qids[n++], s->msg.qid, QUEUE_QID_MAX);
				}
				queue_sess_fail(s, rc);
			}
		}
	}
	queue_in_cleanup(q, qids, n);
	free(qids);
}
