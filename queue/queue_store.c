/*
 * queue_store.c - the SQLite queue: schema, pragmas and every statement,
 * prepared once at open from one table.
 */
#include "queue/queue_store.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Schema version 1. Content chunks are a rowid table: WITHOUT ROWID suits
 * small rows only. The partial indexes hold exactly the schedulable rows
 * and the in-flight ones (requeued when delivery goes away). */
static const char queue_schema_v1[] =
	"CREATE TABLE messages ("
	" qid TEXT PRIMARY KEY, sender TEXT NOT NULL, arrival INTEGER NOT NULL,"
	" size INTEGER NOT NULL DEFAULT 0, client TEXT NOT NULL DEFAULT '',"
	" helo TEXT NOT NULL DEFAULT '', auth_user TEXT NOT NULL DEFAULT '',"
	" body_flags INTEGER NOT NULL DEFAULT 0, nchunks INTEGER NOT NULL DEFAULT 0,"
	" complete INTEGER NOT NULL DEFAULT 0, hold INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE chunks ("
	" qid TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE (qid, seq));"
	"CREATE TABLE recipients ("
	" id INTEGER PRIMARY KEY, qid TEXT NOT NULL, address TEXT NOT NULL,"
	" domain TEXT NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
	" last_enh TEXT NOT NULL DEFAULT '', relay TEXT NOT NULL DEFAULT '',"
	" warned INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX recipients_qid ON recipients (qid);"
	"CREATE INDEX recipients_due ON recipients (next_attempt) WHERE state IN " RS_SQL_DUE ";"
	"CREATE INDEX recipients_inflight ON recipients (state) WHERE state = " RS_SQL(RS_INFLIGHT) ";"
	"PRAGMA user_version = 1;";

/*
 * The way from each version to the next ([v - 1]: from v), applied in
 * order, in one transaction, to an older file and to a fresh one after
 * version 1: every queue.db, old or new, ends with the same schema.
 */
static const char *const queue_upgrades[] = {
	/* 2: the microseconds of arrival, so that delay= is exact */
	"ALTER TABLE messages ADD COLUMN arrival_usec INTEGER NOT NULL DEFAULT 0;"
	"PRAGMA user_version = 2;",
	/* 3: the transcripts of delivery attempts (relayctl trace), one row per
	 * destination domain of a message, the latest attempt's */
	"CREATE TABLE traces ("
	" qid TEXT NOT NULL, domain TEXT NOT NULL, time INTEGER NOT NULL, text TEXT NOT NULL,"
	" UNIQUE (qid, domain));"
	"PRAGMA user_version = 3;",
	/* 4: DSN (RFC 3461) per message and recipient, the remote reply apart
	 * from its explanation, and what kind of message a report is */
	"ALTER TABLE messages ADD COLUMN dsn_ret INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN envid TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE recipients ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE recipients ADD COLUMN orcpt TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE recipients ADD COLUMN reply TEXT NOT NULL DEFAULT '';"
	"PRAGMA user_version = 4;",
};
_Static_assert(sizeof(queue_upgrades) / sizeof(queue_upgrades[0]) == QUEUE_SCHEMA_VERSION - 1,
	       "one upgrade per schema version after 1");

#define RCPT_COLS "id, qid, address, domain, state, attempts, next_attempt, last_error," \
		  " last_enh, relay, warned, notify, orcpt, reply"
#define MSG_COLS "qid, sender, arrival, size, client, helo, auth_user, body_flags, nchunks," \
		 " complete, hold, arrival_usec, dsn_ret, envid, kind"

enum queue_stmt {
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
	Q_MSG_ADD, Q_RCPT_ADD, Q_CHUNK_ADD, Q_MSG_COMPLETE, Q_RCPT_READY,
	Q_MSG_DEL, Q_CHUNK_DEL, Q_RCPT_DEL_MSG,
	Q_MSG_GET, Q_CHUNK_GET, Q_NEXT_DUE, Q_FIRST_DUE, Q_DUE_GROUP, Q_RCPTS_OF, Q_MSGS,
	Q_RCPT_GET, Q_RCPT_STATE, Q_RCPT_UPDATE, Q_RCPT_DEL, Q_RCPT_WARNED, Q_INFLIGHT_OF,
	Q_RCPT_COUNT, Q_FAILED_DEL, Q_DOMAINS_OF,
	Q_MSG_HOLD, Q_RCPT_HOLD, Q_RCPT_RELEASE, Q_FLUSH_ONE, Q_FLUSH_ALL, Q_COUNT,
	Q_REQUEUE, Q_INCOMPLETE_CHUNKS, Q_INCOMPLETE_RCPTS, Q_INCOMPLETE_MSGS,
	Q_ALL_CHUNKS, Q_ALL_RCPTS, Q_ALL_MSGS,
	Q_SHAPE, Q_RCPT_STATES, Q_OLDEST,
	Q_TRACE_PUT, Q_TRACE_TRIM, Q_TRACES_OF, Q_TRACE_DEL_MSG, Q_ALL_TRACES, Q_INCOMPLETE_TRACES,
	Q_NSTMT
};

static const char *const queue_sql[Q_NSTMT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_MSG_ADD] = "INSERT INTO messages (qid, sender, arrival, client, helo, auth_user,"
		      " body_flags, arrival_usec, dsn_ret, envid, kind)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[Q_RCPT_ADD] = "INSERT INTO recipients (qid, address, domain, state, notify, orcpt)"
		       " VALUES (?1, ?2, ?3, " RS_SQL(RS_NEW) ", ?4, ?5)",
	[Q_CHUNK_ADD] = "INSERT INTO chunks (qid, seq, data) VALUES (?1, ?2, ?3)",
	[Q_MSG_COMPLETE] = "UPDATE messages SET complete = 1, size = ?2, nchunks = ?3"
			   " WHERE qid = ?1 AND complete = 0",
	[Q_RCPT_READY] = "UPDATE recipients SET state = " RS_SQL(RS_QUEUED) ", next_attempt = ?2"
			 " WHERE qid = ?1 AND state = " RS_SQL(RS_NEW),
	[Q_MSG_DEL] = "DELETE FROM messages WHERE qid = ?1",
	[Q_CHUNK_DEL] = "DELETE FROM chunks WHERE qid = ?1",
	[Q_RCPT_DEL_MSG] = "DELETE FROM recipients WHERE qid = ?1",
	[Q_MSG_GET] = "SELECT " MSG_COLS " FROM messages WHERE qid = ?1",
	[Q_CHUNK_GET] = "SELECT data FROM chunks WHERE qid = ?1 AND seq = ?2",
	[Q_NEXT_DUE] = "SELECT next_attempt FROM recipients WHERE state IN " RS_SQL_DUE
		       " ORDER BY next_attempt LIMIT 1",
	[Q_FIRST_DUE] = "SELECT " RCPT_COLS " FROM recipients WHERE state IN " RS_SQL_DUE
			" AND next_attempt <= ?1 ORDER BY next_attempt LIMIT 1",
	[Q_DUE_GROUP] = "SELECT " RCPT_COLS " FROM recipients WHERE qid = ?1 AND domain = ?2"
			" AND state IN " RS_SQL_DUE " AND next_attempt <= ?3 ORDER BY id",
	[Q_RCPTS_OF] = "SELECT " RCPT_COLS " FROM recipients WHERE qid = ?1 ORDER BY id",
	[Q_MSGS] = "SELECT " MSG_COLS " FROM messages WHERE complete = 1 ORDER BY arrival, qid",
	[Q_RCPT_GET] = "SELECT " RCPT_COLS " FROM recipients WHERE id = ?1",
	[Q_RCPT_STATE] = "UPDATE recipients SET state = ?2 WHERE id = ?1",
	[Q_RCPT_UPDATE] = "UPDATE recipients SET state = ?2, attempts = ?3, next_attempt = ?4,"
			  " last_error = ?5, last_enh = ?6, relay = ?7, reply = ?8 WHERE id = ?1",
	[Q_RCPT_DEL] = "DELETE FROM recipients WHERE id = ?1",
	[Q_RCPT_WARNED] = "UPDATE recipients SET warned = 1 WHERE qid = ?1",
	[Q_INFLIGHT_OF] = "SELECT count(*) FROM recipients WHERE qid = ?1 AND state = " RS_SQL(RS_INFLIGHT),
	[Q_DOMAINS_OF] = "SELECT min(id), qid, '', domain, 0, 0, 0, '', '', '', 0, 0, '', ''"
			 " FROM recipients WHERE qid = ?1 GROUP BY domain ORDER BY 1",
	[Q_RCPT_COUNT] = "SELECT count(*) FROM recipients WHERE qid = ?1",
	[Q_FAILED_DEL] = "DELETE FROM recipients WHERE qid = ?1 AND state IN (" RS_SQL(RS_FAILED)
			 ", " RS_SQL(RS_RELAYED) ")",
	[Q_MSG_HOLD] = "UPDATE messages SET hold = ?2 WHERE qid = ?1 AND complete = 1",
	[Q_RCPT_HOLD] = "UPDATE recipients SET state = " RS_SQL(RS_HOLD) " WHERE qid = ?1 AND state IN " RS_SQL_DUE,
	[Q_RCPT_RELEASE] = "UPDATE recipients SET state = CASE WHEN attempts > 0 THEN " RS_SQL(RS_DEFERRED) " ELSE " RS_SQL(RS_QUEUED) " END"
			   " WHERE qid = ?1 AND state = " RS_SQL(RS_HOLD),
	[Q_FLUSH_ONE] = "UPDATE recipients SET next_attempt = ?2 WHERE qid = ?1 AND state IN " RS_SQL_DUE,
	[Q_FLUSH_ALL] = "UPDATE recipients SET next_attempt = ?1 WHERE state IN " RS_SQL_DUE
			" AND next_attempt > ?1",
	[Q_COUNT] = "SELECT count(*) FROM messages WHERE complete = 1",
	[Q_REQUEUE] = "UPDATE recipients SET state = " RS_SQL(RS_QUEUED) ", next_attempt = ?1 WHERE state = " RS_SQL(RS_INFLIGHT),
	[Q_INCOMPLETE_CHUNKS] = "DELETE FROM chunks WHERE qid NOT IN"
				" (SELECT qid FROM messages WHERE complete = 1)",
	[Q_INCOMPLETE_RCPTS] = "DELETE FROM recipients WHERE qid NOT IN"
			       " (SELECT qid FROM messages WHERE complete = 1)",
	[Q_INCOMPLETE_MSGS] = "DELETE FROM messages WHERE complete = 0",
	[Q_ALL_CHUNKS] = "DELETE FROM chunks",
	[Q_ALL_RCPTS] = "DELETE FROM recipients",
	[Q_ALL_MSGS] = "DELETE FROM messages",
	/* qshape: recipients per (domain, age bucket), the busiest ?2 domains
	 * by name (rank in column 3), the rest summed in rows whose domain is
	 * NULL (column 4: the number of domains so far). Buckets double from
	 * 5 minutes: bucket k holds ages under 300 * 2^k seconds. */
	[Q_SHAPE] = "WITH g AS (SELECT r.domain AS d, CASE"
		    " WHEN ?1 - m.arrival < 300 THEN 0 WHEN ?1 - m.arrival < 600 THEN 1"
		    " WHEN ?1 - m.arrival < 1200 THEN 2 WHEN ?1 - m.arrival < 2400 THEN 3"
		    " WHEN ?1 - m.arrival < 4800 THEN 4 WHEN ?1 - m.arrival < 9600 THEN 5"
		    " WHEN ?1 - m.arrival < 19200 THEN 6 WHEN ?1 - m.arrival < 38400 THEN 7"
		    " WHEN ?1 - m.arrival < 76800 THEN 8 ELSE 9 END AS b, count(*) AS n"
		    " FROM recipients r JOIN messages m ON m.qid = r.qid WHERE m.complete = 1"
		    " GROUP BY d, b),"
		    " rk AS (SELECT d, row_number() OVER (ORDER BY sum(n) DESC, d) AS rn"
		    " FROM g GROUP BY d)"
		    " SELECT CASE WHEN rk.rn <= ?2 THEN g.d END AS dom, g.b, sum(g.n), max(rk.rn)"
		    " FROM g JOIN rk ON rk.d = g.d GROUP BY dom, g.b"
		    " ORDER BY dom IS NULL, min(rk.rn), g.b",
	[Q_RCPT_STATES] = "SELECT state, count(*) FROM recipients WHERE state <> " RS_SQL(RS_NEW)
			  " GROUP BY state",
	[Q_OLDEST] = "SELECT min(arrival) FROM messages WHERE complete = 1",
	/* Only for a message still there (relayctl delete may have come first). */
	[Q_TRACE_PUT] = "INSERT INTO traces (qid, domain, time, text) SELECT ?1, ?2, ?3, ?4"
			" WHERE EXISTS (SELECT 1 FROM messages WHERE qid = ?1)"
			" ON CONFLICT (qid, domain) DO UPDATE SET time = ?3, text = ?4",
	/* The newest transcripts of a message while they fit in ?3 bytes; the
	 * one just written (domain ?2) always stays. */
	[Q_TRACE_TRIM] = "DELETE FROM traces WHERE qid = ?1 AND domain != ?2 AND rowid IN"
			 " (SELECT rowid FROM (SELECT rowid, sum(length(text)) OVER"
			 " (ORDER BY time DESC, rowid DESC) AS total FROM traces WHERE qid = ?1)"
			 " WHERE total > ?3)",
	[Q_TRACES_OF] = "SELECT domain, time, text FROM traces WHERE qid = ?1 ORDER BY time, rowid",
	[Q_TRACE_DEL_MSG] = "DELETE FROM traces WHERE qid = ?1",
	[Q_ALL_TRACES] = "DELETE FROM traces",
	[Q_INCOMPLETE_TRACES] = "DELETE FROM traces WHERE qid NOT IN"
				" (SELECT qid FROM messages WHERE complete = 1)",
};

struct queue_store {
	sqlite3 *db;
	sqlite3_stmt *stmt[Q_NSTMT];
	int in_txn;
	int err;
};

static const char *const queue_rstate_names[] = {
	[RS_NEW] = "new", [RS_QUEUED] = "queued", [RS_INFLIGHT] = "inflight",
	[RS_DEFERRED] = "deferred", [RS_HOLD] = "hold", [RS_FAILED] = "failed",
	[RS_RELAYED] = "relayed",
};

const char *queue_rstate_name(int state)
{
	if (state < 0 || (size_t)state >= sizeof(queue_rstate_names) / sizeof(queue_rstate_names[0]))
		fatal("queue: recipient state %d", state);
	return queue_rstate_names[state];
}

int queue_store_errcode(const struct queue_store *st)
{
	return st->err;
}

const char *queue_store_errmsg(const struct queue_store *st)
{
	return sqlite3_errmsg(st->db);
}

void queue_addr_domain(const char *address, char *dst, size_t dstsz)
{
	const char *at = strrchr(address, '@');
	size_t i = 0;
	if (at != NULL)
		for (at++; *at != '\0' && i + 1 < dstsz; at++)
			dst[i++] = (char)tolower((unsigned char)*at);
	dst[i] = '\0';
}

/* Prepared statement with fresh bindings. */
static sqlite3_stmt *queue_stmt(struct queue_store *st, enum queue_stmt id)
{
	sqlite3_stmt *s = st->stmt[id];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_STATIC);
}

static int queue_fail(struct queue_store *st, sqlite3_stmt *s, int rc)
{
	st->err = rc;
	log_warnx("queue.db: %s", sqlite3_errmsg(st->db));
	if (s)
		sqlite3_reset(s);
	return -1;
}

/* Runs a statement that returns no rows; *changes (if given) gets the row count. */
static int queue_exec(struct queue_store *st, sqlite3_stmt *s, long *changes)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		return queue_fail(st, s, rc);
	if (changes)
		*changes = sqlite3_changes(st->db);
	sqlite3_reset(s);
	return 0;
}

/* One integer from a single-row query; 0 when no row (returns 0), 1 found. */
static int queue_int(struct queue_store *st, sqlite3_stmt *s, int64_t *v)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return queue_fail(st, s, rc);
	*v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 1;
}

static void col_text(sqlite3_stmt *s, int i, char *dst, size_t dstsz)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	snprintf(dst, dstsz, "%s", t ? (const char *)t : "");
}

static void queue_row_rcpt(sqlite3_stmt *s, struct queue_rcpt *r)
{
	r->id = sqlite3_column_int64(s, 0);
	col_text(s, 1, r->qid, sizeof(r->qid));
	col_text(s, 2, r->address, sizeof(r->address));
	col_text(s, 3, r->domain, sizeof(r->domain));
	r->state = sqlite3_column_int(s, 4);
	r->attempts = (unsigned)sqlite3_column_int(s, 5);
	r->next_attempt = sqlite3_column_int64(s, 6);
	col_text(s, 7, r->last_error, sizeof(r->last_error));
	col_text(s, 8, r->last_enh, sizeof(r->last_enh));
	col_text(s, 9, r->relay, sizeof(r->relay));
	r->warned = sqlite3_column_int(s, 10);
	r->notify = (uint32_t)sqlite3_column_int64(s, 11);
	col_text(s, 12, r->orcpt, sizeof(r->orcpt));
	col_text(s, 13, r->reply, sizeof(r->reply));
}

static void queue_row_msg(sqlite3_stmt *s, struct queue_msg *m)
{
	col_text(s, 0, m->qid, sizeof(m->qid));
	col_text(s, 1, m->sender, sizeof(m->sender));
	m->arrival = sqlite3_column_int64(s, 2);
	m->size = (uint64_t)sqlite3_column_int64(s, 3);
	col_text(s, 4, m->client, sizeof(m->client));
	col_text(s, 5, m->helo, sizeof(m->helo));
	col_text(s, 6, m->auth_user, sizeof(m->auth_user));
	m->body_flags = (uint32_t)sqlite3_column_int64(s, 7);
	m->nchunks = (uint32_t)sqlite3_column_int64(s, 8);
	m->complete = sqlite3_column_int(s, 9);
	m->hold = sqlite3_column_int(s, 10);
	m->arrival_usec = (uint32_t)sqlite3_column_int64(s, 11);
	m->dsn_ret = (uint32_t)sqlite3_column_int64(s, 12);
	col_text(s, 13, m->envid, sizeof(m->envid));
	m->kind = sqlite3_column_int(s, 14);
}

/* Steps through recipient rows; cb returning non-zero stops early. */
static int queue_each_rcpt(struct queue_store *st, sqlite3_stmt *s, queue_rcpt_fn cb, void *arg)
{
	struct queue_rcpt r;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		queue_row_rcpt(s, &r);
		if (cb(&r, arg) != 0) {
			sqlite3_reset(s);
			return 0;
		}
	}
	if (rc != SQLITE_DONE)
		return queue_fail(st, s, rc);
	sqlite3_reset(s);
	return 0;
}

static int queue_pragmas(sqlite3 *db)
{
	static const char *const pragmas[] = {
		"PRAGMA journal_mode = WAL",
		"PRAGMA synchronous = FULL",
		"PRAGMA foreign_keys = OFF",
		"PRAGMA busy_timeout = 5000",
	};
	for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++)
		if (sqlite3_exec(db, pragmas[i], NULL, NULL, NULL) != SQLITE_OK)
			return -1;
	return 0;
}

/* Creates the schema on a fresh file, upgrades an older one; refuses one from the future. */
static int queue_schema(sqlite3 *db)
{
	sqlite3_stmt *s;
	int version = -1, rc = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version == QUEUE_SCHEMA_VERSION)
		return 0;
	if (version < 0 || version > QUEUE_SCHEMA_VERSION) {
		log_errx("queue.db: schema version %d, this relayd knows %d", version,
			 QUEUE_SCHEMA_VERSION);
		return -1;
	}
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (version == 0)
		rc = sqlite3_exec(db, queue_schema_v1, NULL, NULL, NULL);
	for (int v = version ? version : 1; rc == SQLITE_OK && v < QUEUE_SCHEMA_VERSION; v++)
		rc = sqlite3_exec(db, queue_upgrades[v - 1], NULL, NULL, NULL);
	if (rc != SQLITE_OK || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_errx("queue.db: %s the schema: %s", version ? "upgrading" : "creating",
			 sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (version == 0)
		log_info("queue.db: created schema version %d", QUEUE_SCHEMA_VERSION);
	else
		log_info("queue.db: schema version %d upgraded to %d", version,
			 QUEUE_SCHEMA_VERSION);
	return 0;
}

struct queue_store *queue_store_open(const char *path)
{
	struct queue_store *st = xcalloc(1, sizeof(*st));
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	if (queue_pragmas(st->db) < 0 || queue_schema(st->db) < 0)
		goto fail;
	for (int i = 0; i < Q_NSTMT; i++)
		if (sqlite3_prepare_v3(st->db, queue_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK)
			goto fail;
	return st;
fail:
	if (st->db == NULL || sqlite3_errcode(st->db) != SQLITE_OK)
		log_errx("queue.db %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
	queue_store_close(st);
	return NULL;
}

void queue_store_close(struct queue_store *st)
{
	if (st == NULL)
		return;
	if (st->in_txn)
		queue_store_rollback(st);
	for (int i = 0; i < Q_NSTMT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st);
}

int queue_store_begin(struct queue_store *st)
{
	if (st->in_txn)
		return 0;
	if (queue_exec(st, queue_stmt(st, Q_BEGIN), NULL) < 0)
		return -1;
	st->in_txn = 1;
	return 0;
}

int queue_store_in_txn(const struct queue_store *st)
{
	return st->in_txn;
}

int queue_store_commit(struct queue_store *st)
{
	if (!st->in_txn)
		return 0;
	if (queue_exec(st, queue_stmt(st, Q_COMMIT), NULL) < 0) {
		/* A failed COMMIT may leave the transaction open: end it. */
		if (!sqlite3_get_autocommit(st->db)) {
			int err = st->err;
			queue_store_rollback(st);
			st->err = err;
		}
		st->in_txn = 0;
		return -1;
	}
	st->in_txn = 0;
	return 0;
}

void queue_store_rollback(struct queue_store *st)
{
	for (int i = 0; i < Q_NSTMT; i++)
		sqlite3_reset(st->stmt[i]);
	/* SQLite may already have rolled back by itself (SQLITE_FULL, IOERR). */
	if (!sqlite3_get_autocommit(st->db))
		queue_exec(st, queue_stmt(st, Q_ROLLBACK), NULL);
	st->in_txn = 0;
}

int queue_store_recover(struct queue_store *st, int64_t now, long *incomplete, long *inflight,
			long *messages)
{
	int64_t n = 0;
	if (queue_store_begin(st) < 0)
		return -1;
	if (queue_exec(st, queue_stmt(st, Q_INCOMPLETE_CHUNKS), NULL) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_INCOMPLETE_TRACES), NULL) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_INCOMPLETE_RCPTS), NULL) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_INCOMPLETE_MSGS), incomplete) < 0 ||
	    queue_store_requeue_inflight(st, now, inflight) < 0 ||
	    queue_int(st, queue_stmt(st, Q_COUNT), &n) < 0) {
		queue_store_rollback(st);
		return -1;
	}
	*messages = (long)n;
	return queue_store_commit(st);
}

int queue_store_requeue_inflight(struct queue_store *st, int64_t now, long *n)
{
	sqlite3_stmt *s = queue_stmt(st, Q_REQUEUE);
	sqlite3_bind_int64(s, 1, now);
	return queue_exec(st, s, n);
}

int queue_store_msg_add(struct queue_store *st, const struct queue_msg *m)
{
	sqlite3_stmt *s = queue_stmt(st, Q_MSG_ADD);
	bind_text(s, 1, m->qid);
	bind_text(s, 2, m->sender);
	sqlite3_bind_int64(s, 3, m->arrival);
	bind_text(s, 4, m->client);
	bind_text(s, 5, m->helo);
	bind_text(s, 6, m->auth_user);
	sqlite3_bind_int64(s, 7, m->body_flags);
	sqlite3_bind_int64(s, 8, m->arrival_usec);
	sqlite3_bind_int64(s, 9, m->dsn_ret);
	bind_text(s, 10, m->envid);
	sqlite3_bind_int(s, 11, m->kind);
	return queue_exec(st, s, NULL);
}

int queue_store_rcpt_add(struct queue_store *st, const char *qid, const char *address,
			 uint32_t notify, const char *orcpt)
{
	char domain[256];
	queue_addr_domain(address, domain, sizeof(domain));
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_ADD);
	bind_text(s, 1, qid);
	bind_text(s, 2, address);
	bind_text(s, 3, domain);
	sqlite3_bind_int64(s, 4, notify);
	bind_text(s, 5, orcpt);
	return queue_exec(st, s, NULL);
}

int queue_store_chunk_add(struct queue_store *st, const char *qid, uint32_t seq, const void *p,
			  size_t n)
{
	sqlite3_stmt *s = queue_stmt(st, Q_CHUNK_ADD);
	bind_text(s, 1, qid);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_blob(s, 3, n ? p : "", (int)n, SQLITE_STATIC);
	return queue_exec(st, s, NULL);
}

int queue_store_msg_complete(struct queue_store *st, const char *qid, uint64_t size,
			     uint32_t nchunks, int64_t now)
{
	long changed = 0;
	sqlite3_stmt *s = queue_stmt(st, Q_MSG_COMPLETE);
	bind_text(s, 1, qid);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	sqlite3_bind_int64(s, 3, nchunks);
	if (queue_exec(st, s, &changed) < 0)
		return -1;
	if (changed != 1)
		fatal("queue: completing %s, which is not an incomplete message", qid);
	s = queue_stmt(st, Q_RCPT_READY);
	bind_text(s, 1, qid);
	sqlite3_bind_int64(s, 2, now);
	return queue_exec(st, s, NULL);
}

int queue_store_msg_delete(struct queue_store *st, const char *qid)
{
	static const enum queue_stmt order[] = {Q_CHUNK_DEL, Q_TRACE_DEL_MSG, Q_RCPT_DEL_MSG,
						Q_MSG_DEL};
	long changed = 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		sqlite3_stmt *s = queue_stmt(st, order[i]);
		bind_text(s, 1, qid);
		if (queue_exec(st, s, &changed) < 0)
			return -1;
	}
	return changed > 0;
}

int queue_store_delete_all(struct queue_store *st, long *n)
{
	int64_t count = 0;
	if (queue_int(st, queue_stmt(st, Q_COUNT), &count) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_ALL_CHUNKS), NULL) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_ALL_TRACES), NULL) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_ALL_RCPTS), NULL) < 0 ||
	    queue_exec(st, queue_stmt(st, Q_ALL_MSGS), NULL) < 0)
		return -1;
	*n = (long)count;
	return 0;
}

int queue_store_msg_get(struct queue_store *st, const char *qid, struct queue_msg *m)
{
	sqlite3_stmt *s = queue_stmt(st, Q_MSG_GET);
	bind_text(s, 1, qid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return queue_fail(st, s, rc);
	queue_row_msg(s, m);
	sqlite3_reset(s);
	return 1;
}

int queue_store_chunk_get(struct queue_store *st, const char *qid, uint32_t seq, struct buf *out)
{
	sqlite3_stmt *s = queue_stmt(st, Q_CHUNK_GET);
	bind_text(s, 1, qid);
	sqlite3_bind_int64(s, 2, seq);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return queue_fail(st, s, rc);
	const void *p = sqlite3_column_blob(s, 0);
	int n = sqlite3_column_bytes(s, 0);
	if (n > 0)
		buf_append(out, p, (size_t)n);
	sqlite3_reset(s);
	return 1;
}

/* The one recipient row s selects: 1, 0 when none, -1 on error. */
static int queue_one_rcpt(struct queue_store *st, sqlite3_stmt *s, struct queue_rcpt *r)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return queue_fail(st, s, rc);
	queue_row_rcpt(s, r);
	sqlite3_reset(s);
	return 1;
}

int queue_store_next_due(struct queue_store *st, int64_t *when)
{
	return queue_int(st, queue_stmt(st, Q_NEXT_DUE), when);
}

int queue_store_first_due(struct queue_store *st, int64_t now, struct queue_rcpt *r)
{
	sqlite3_stmt *s = queue_stmt(st, Q_FIRST_DUE);
	sqlite3_bind_int64(s, 1, now);
	return queue_one_rcpt(st, s, r);
}

int queue_store_due_group(struct queue_store *st, const char *qid, const char *domain,
			  int64_t now, queue_rcpt_fn cb, void *arg)
{
	sqlite3_stmt *s = queue_stmt(st, Q_DUE_GROUP);
	bind_text(s, 1, qid);
	bind_text(s, 2, domain);
	sqlite3_bind_int64(s, 3, now);
	return queue_each_rcpt(st, s, cb, arg);
}

int queue_store_rcpts_of(struct queue_store *st, const char *qid, queue_rcpt_fn cb, void *arg)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPTS_OF);
	bind_text(s, 1, qid);
	return queue_each_rcpt(st, s, cb, arg);
}

int queue_store_domains_of(struct queue_store *st, const char *qid, queue_rcpt_fn cb, void *arg)
{
	sqlite3_stmt *s = queue_stmt(st, Q_DOMAINS_OF);
	bind_text(s, 1, qid);
	return queue_each_rcpt(st, s, cb, arg);
}

int queue_store_messages(struct queue_store *st, queue_msg_fn cb, void *arg)
{
	sqlite3_stmt *s = queue_stmt(st, Q_MSGS);
	struct queue_msg m;
	int rc;
	/* The callback may run other statements, but not this one. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		queue_row_msg(s, &m);
		if (cb(&m, arg) != 0) {
			sqlite3_reset(s);
			return 0;
		}
	}
	if (rc != SQLITE_DONE)
		return queue_fail(st, s, rc);
	sqlite3_reset(s);
	return 0;
}

int queue_store_rcpt_get(struct queue_store *st, int64_t id, struct queue_rcpt *r)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_GET);
	sqlite3_bind_int64(s, 1, id);
	return queue_one_rcpt(st, s, r);
}

int queue_store_rcpt_set_state(struct queue_store *st, int64_t id, int state)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_STATE);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, state);
	return queue_exec(st, s, NULL);
}

int queue_store_rcpt_update(struct queue_store *st, int64_t id, int state, unsigned attempts,
			    int64_t next_attempt, const char *error, const char *enh,
			    const char *relay, const char *reply)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_UPDATE);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, state);
	sqlite3_bind_int64(s, 3, attempts);
	sqlite3_bind_int64(s, 4, next_attempt);
	bind_text(s, 5, error);
	bind_text(s, 6, enh);
	bind_text(s, 7, relay);
	bind_text(s, 8, reply);
	return queue_exec(st, s, NULL);
}

int queue_store_rcpt_delete(struct queue_store *st, int64_t id)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_DEL);
	sqlite3_bind_int64(s, 1, id);
	return queue_exec(st, s, NULL);
}

int queue_store_rcpts_warned(struct queue_store *st, const char *qid)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_WARNED);
	bind_text(s, 1, qid);
	return queue_exec(st, s, NULL);
}

/* A count of one message's recipients (statement st->stmt[id], ?1 the qid). */
static int queue_count_of(struct queue_store *st, enum queue_stmt id, const char *qid, long *n)
{
	int64_t v = 0;
	sqlite3_stmt *s = queue_stmt(st, id);
	bind_text(s, 1, qid);
	if (queue_int(st, s, &v) < 0)
		return -1;
	*n = (long)v;
	return 0;
}

int queue_store_inflight_of(struct queue_store *st, const char *qid, long *n)
{
	return queue_count_of(st, Q_INFLIGHT_OF, qid, n);
}

int queue_store_rcpt_count(struct queue_store *st, const char *qid, long *n)
{
	return queue_count_of(st, Q_RCPT_COUNT, qid, n);
}

int queue_store_failed_delete(struct queue_store *st, const char *qid)
{
	sqlite3_stmt *s = queue_stmt(st, Q_FAILED_DEL);
	bind_text(s, 1, qid);
	return queue_exec(st, s, NULL);
}

int queue_store_msg_hold(struct queue_store *st, const char *qid, int hold)
{
	long changed = 0;
	sqlite3_stmt *s = queue_stmt(st, Q_MSG_HOLD);
	bind_text(s, 1, qid);
	sqlite3_bind_int(s, 2, hold);
	if (queue_exec(st, s, &changed) < 0)
		return -1;
	if (changed == 0)
		return 0;
	s = queue_stmt(st, hold ? Q_RCPT_HOLD : Q_RCPT_RELEASE);
	bind_text(s, 1, qid);
	return queue_exec(st, s, NULL) < 0 ? -1 : 1;
}

int queue_store_flush(struct queue_store *st, const char *qid, int64_t now, long *n)
{
	sqlite3_stmt *s;
	if (qid != NULL) {
		s = queue_stmt(st, Q_FLUSH_ONE);
		bind_text(s, 1, qid);
		sqlite3_bind_int64(s, 2, now);
	} else {
		s = queue_stmt(st, Q_FLUSH_ALL);
		sqlite3_bind_int64(s, 1, now);
	}
	return queue_exec(st, s, n);
}

int queue_store_count(struct queue_store *st, long *messages)
{
	int64_t v = 0;
	if (queue_int(st, queue_stmt(st, Q_COUNT), &v) < 0)
		return -1;
	*messages = (long)v;
	return 0;
}

int queue_store_shape(struct queue_store *st, int64_t now, unsigned top, queue_shape_fn cb,
		      void *arg)
{
	sqlite3_stmt *s = queue_stmt(st, Q_SHAPE);
	int rc;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, top);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *dom = sqlite3_column_text(s, 0);
		cb((const char *)dom, (unsigned)sqlite3_column_int(s, 1), sqlite3_column_int64(s, 2),
		   sqlite3_column_int64(s, 3), arg);
	}
	if (rc != SQLITE_DONE)
		return queue_fail(st, s, rc);
	sqlite3_reset(s);
	return 0;
}

int queue_store_trace_put(struct queue_store *st, const char *qid, const char *domain,
			  int64_t now, const char *text)
{
	sqlite3_stmt *s = queue_stmt(st, Q_TRACE_PUT);
	bind_text(s, 1, qid);
	bind_text(s, 2, domain);
	sqlite3_bind_int64(s, 3, now);
	bind_text(s, 4, text);
	long added = 0;
	if (queue_exec(st, s, &added) < 0)
		return -1;
	if (added == 0)
		return 0; /* the message is gone */
	s = queue_stmt(st, Q_TRACE_TRIM);
	bind_text(s, 1, qid);
	bind_text(s, 2, domain);
	sqlite3_bind_int64(s, 3, QUEUE_TRACE_MAX);
	return queue_exec(st, s, NULL);
}

int queue_store_traces_of(struct queue_store *st, const char *qid, queue_trace_fn cb, void *arg)
{
	sqlite3_stmt *s = queue_stmt(st, Q_TRACES_OF);
	int rc;
	bind_text(s, 1, qid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *d = sqlite3_column_text(s, 0), *t = sqlite3_column_text(s, 2);
		if (cb(d ? (const char *)d : "", sqlite3_column_int64(s, 1),
		       t ? (const char *)t : "", arg) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return queue_fail(st, s, rc);
	sqlite3_reset(s);
	return 0;
}

int queue_store_gauges(struct queue_store *st, int64_t counts[RS_NSTATES], int64_t *oldest)
{
	sqlite3_stmt *s = queue_stmt(st, Q_RCPT_STATES);
	int rc;
	for (int i = 0; i < RS_NSTATES; i++)
		counts[i] = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int state = sqlite3_column_int(s, 0);
		if (state >= 0 && state < RS_NSTATES)
			counts[state] = sqlite3_column_int64(s, 1);
	}
	if (rc != SQLITE_DONE)
		return queue_fail(st, s, rc);
	sqlite3_reset(s);
	*oldest = 0;
	return queue_int(st, queue_stmt(st, Q_OLDEST), oldest) < 0 ? -1 : 0;
}
