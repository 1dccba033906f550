/*
 * queue_intake.c - SMTP transactions streaming in from intake: BEGIN,
 * RCPT, CONTENT pieces, END or ABORT, tied by a session id. Content goes
 * into the open write transaction in chunks of at most IPC_CHUNK_SIZE as
 * it arrives; END marks the message complete and waits for the group
 * commit, after which (and only after which) COMMITTED is sent.
 */
#include "queue/queue.h"
#include "common/ipc_msg.h"
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

static struct queue_sess *queue_sess_find(struct queue_peer *p, uint64_t sid)
{
	return idmap_get(&p->sess, sid);
}

/* Unlinks from the peer (the session may still wait for its commit). */
static void queue_sess_unlink(struct queue_sess *s)
{
	if (s->peer == NULL)
		return;
	idmap_del(&s->peer->sess, s->sid);
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
	struct ipc_msg_q_failed m = {s->sid, r->code, ipc_str(r->enh), ipc_str(r->text)};
	struct ipc_wr wr;
	if (s->peer == NULL)
		return;
	ipc_wr_init(&wr);
	ipc_msg_q_failed_encode(&wr, &m);
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

int queue_in_begin(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_q_begin m;
	if (ipc_msg_q_begin_decode(rd, &m) < 0)
		return -1;
	struct queue_sess *s = xcalloc(1, sizeof(*s));
	s->sid = m.sid;
	s->msg.body_flags = m.body_flags;
	s->msg.arrival = m.arrival;
	s->msg.arrival_usec = m.arrival_usec < 1000000 ? m.arrival_usec : 0;
	s->msg.dsn_ret = m.dsn_ret;
	if (ipc_str_copy(s->msg.qid, sizeof(s->msg.qid), m.qid) < 0 ||
	    ipc_str_copy(s->msg.envid, sizeof(s->msg.envid), m.envid) < 0 ||
	    ipc_str_copy(s->msg.sender, sizeof(s->msg.sender), m.sender) < 0 ||
	    ipc_str_copy(s->msg.client, sizeof(s->msg.client), m.client) < 0 ||
	    ipc_str_copy(s->msg.helo, sizeof(s->msg.helo), m.helo) < 0 ||
	    ipc_str_copy(s->msg.auth_user, sizeof(s->msg.auth_user), m.auth_user) < 0 ||
	    s->msg.qid[0] == '\0' || idmap_put(&p->sess, s->sid, s) < 0) {
		free(s);
		return -1;
	}
	buf_init(&s->pending);
	s->peer = p;
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

int queue_in_rcpt(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_q_rcpt m;
	char rcpt[QUEUE_ADDR_MAX], orcpt[sizeof(((struct queue_rcpt *)0)->orcpt)];
	if (ipc_msg_q_rcpt_decode(rd, &m) < 0 || ipc_str_copy(rcpt, sizeof(rcpt), m.rcpt) < 0 ||
	    ipc_str_copy(orcpt, sizeof(orcpt), m.orcpt) < 0 || queue_sess_find(p, m.sid) == NULL)
		return -1;
	struct queue_sess *s = queue_in_sess(p, m.sid);
	if (s == NULL)
		return 0;
	if (queue_txn(q) < 0 || queue_store_rcpt_add(q->st, s->msg.qid, rcpt, m.notify, orcpt) < 0)
		return queue_sess_write_failed(q, s);
	s->gen = q->gen;
	s->nrcpt++;
	return 0;
}

int queue_in_content(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_q_content m;
	if (ipc_msg_q_content_decode(rd, &m) < 0 || m.data.n > IPC_CHUNK_SIZE ||
	    queue_sess_find(p, m.sid) == NULL)
		return -1;
	struct queue_sess *s = queue_in_sess(p, m.sid);
	if (s == NULL)
		return 0;
	buf_append(&s->pending, m.data.p, m.data.n);
	s->bytes += m.data.n;
	if (queue_sess_flush(q, s, 0) < 0)
		return queue_sess_write_failed(q, s);
	return 0;
}

int queue_in_end(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_q_end m;
	if (ipc_msg_q_end_decode(rd, &m) < 0)
		return -1;
	uint64_t size = m.size;
	struct queue_sess *s = queue_sess_find(p, m.sid);
	if (s == NULL || s->ended)
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

int queue_in_abort(void *peer, struct ipc_rd *rd)
{
	struct queue_peer *p = peer;
	struct queue *q = p->q;
	struct ipc_msg_id m;
	if (ipc_msg_id_decode(rd, &m) < 0)
		return -1;
	struct queue_sess *s = queue_sess_find(p, m.id);
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
	struct queue_sess *s;
	size_t it = 0;
	while ((s = idmap_next(&p->sess, &it)) != NULL) {
		if (s->ended) {
			queue_sess_unlink(s);
			continue;
		}
		if (s->owns_row && !s->failed && !failed &&
		    (queue_txn(q) < 0 || queue_store_msg_delete(q->st, s->msg.qid) < 0))
			failed = 1;
		queue_sess_free(s);
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
			struct ipc_msg_q_committed m = {s->sid, ipc_str(s->msg.qid)};
			struct ipc_wr wr;
			ipc_wr_init(&wr);
			ipc_msg_q_committed_encode(&wr, &m);
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
		struct queue_sess *s;
		size_t it = 0;
		while ((s = idmap_next(&p->sess, &it)) != NULL) {
			if (s->failed || s->gen != q->gen)
				continue;
			if (s->owns_row) {
				qids = xreallocarray(qids, ++cap, sizeof(*qids));
				memcpy(qids[n++], s->msg.qid, QUEUE_QID_MAX);
			}
			queue_sess_fail(s, rc);
		}
	}
	queue_in_cleanup(q, qids, n);
	free(qids);
}
