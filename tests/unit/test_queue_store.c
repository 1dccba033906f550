/*
 * test_queue_store.c - the SQLite store: commit and reopen, partial
 * streams discarded by recovery, rollback, duplicate ids, recipient states
 * (in flight, hold/release, flush), due order and grouping, the schema
 * version, the queue's shape (age bucket edges, top domains and the rest)
 * and its gauges.
 */
#include "queue/queue_store.h"
#include "common/log.h"

#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_queue_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/queue.db", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Adds message qid with recipients (NULL-terminated) and body in chunks. */
static void add_msg(struct queue_store *st, const char *qid, const char *sender,
		    const char *const *rcpts, const char *const *chunks, int complete, int64_t now)
{
	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.qid, sizeof(m.qid), "%s", qid);
	snprintf(m.sender, sizeof(m.sender), "%s", sender);
	snprintf(m.client, sizeof(m.client), "192.0.2.1");
	m.arrival = now;
	m.arrival_usec = 987654;
	ck_assert_int_eq(queue_store_msg_add(st, &m), 0);
	for (size_t i = 0; rcpts[i]; i++)
		ck_assert_int_eq(queue_store_rcpt_add(st, qid, rcpts[i], 0, ""), 0);
	uint64_t size = 0;
	uint32_t n = 0;
	for (; chunks[n]; n++) {
		ck_assert_int_eq(queue_store_chunk_add(st, qid, n, chunks[n], strlen(chunks[n])), 0);
		size += strlen(chunks[n]);
	}
	if (complete)
		ck_assert_int_eq(queue_store_msg_complete(st, qid, size, n, now), 0);
}

static const char *const rcpts2[] = {"a@Example.ORG", "b@example.net", NULL};
static const char *const body2[] = {"Subject: hi\r\n\r\n", "hello\r\n", NULL};

struct collect {
	struct queue_rcpt r[16];
	int n;
};

static int collect_cb(const struct queue_rcpt *r, void *arg)
{
	struct collect *c = arg;
	c->r[c->n++] = *r;
	return 0;
}

START_TEST(commit_survives_reopen)
{
	struct queue_store *st = queue_store_open(path);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "AAAA000000000001", "s@example.com", rcpts2, body2, 1, 1000);
	ck_assert_int_eq(queue_store_commit(st), 0);
	queue_store_close(st);

	st = queue_store_open(path);
	ck_assert_ptr_nonnull(st);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 1);
	ck_assert_int_eq(m.complete, 1);
	ck_assert_int_eq(m.nchunks, 2);
	ck_assert_uint_eq(m.size, strlen(body2[0]) + strlen(body2[1]));
	ck_assert_str_eq(m.sender, "s@example.com");
	ck_assert_str_eq(m.client, "192.0.2.1");
	ck_assert_int_eq(m.arrival, 1000);
	ck_assert_uint_eq(m.arrival_usec, 987654);
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(queue_store_chunk_get(st, m.qid, 0, &b), 1);
	ck_assert_int_eq(queue_store_chunk_get(st, m.qid, 1, &b), 1);
	ck_assert_int_eq(queue_store_chunk_get(st, m.qid, 2, &b), 0);
	buf_append(&b, "", 1);
	ck_assert_str_eq((char *)buf_head(&b), "Subject: hi\r\n\r\nhello\r\n");
	buf_free(&b);
	struct collect c = {.n = 0};
	ck_assert_int_eq(queue_store_rcpts_of(st, m.qid, collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.r[0].domain, "example.org");
	ck_assert_int_eq(c.r[0].state, RS_QUEUED);
	ck_assert_int_eq(c.r[0].next_attempt, 1000);
	long n;
	ck_assert_int_eq(queue_store_count(st, &n), 0);
	ck_assert_int_eq(n, 1);
	queue_store_close(st);
}
END_TEST

START_TEST(partial_stream_discarded_at_recovery)
{
	struct queue_store *st = queue_store_open(path);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "AAAA000000000001", "s@example.com", rcpts2, body2, 1, 1000);
	/* Committed with the group commit but never ended. */
	add_msg(st, "BBBB000000000002", "t@example.com", rcpts2, body2, 0, 1000);
	ck_assert_int_eq(queue_store_commit(st), 0);

	/* Not schedulable while incomplete, not listed. */
	struct queue_rcpt r;
	ck_assert_int_eq(queue_store_first_due(st, 5000, &r), 1);
	ck_assert_str_eq(r.qid, "AAAA000000000001");
	queue_store_close(st);

	st = queue_store_open(path);
	long incomplete = -1, inflight = -1, messages = -1;
	ck_assert_int_eq(queue_store_recover(st, 2000, &incomplete, &inflight, &messages), 0);
	ck_assert_int_eq(incomplete, 1);
	ck_assert_int_eq(inflight, 0);
	ck_assert_int_eq(messages, 1);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "BBBB000000000002", &m), 0);
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(queue_store_chunk_get(st, "BBBB000000000002", 0, &b), 0);
	buf_free(&b);
	struct collect c = {.n = 0};
	ck_assert_int_eq(queue_store_rcpts_of(st, "BBBB000000000002", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 1);
	queue_store_close(st);
}
END_TEST

START_TEST(rollback_keeps_earlier_commits)
{
	struct queue_store *st = queue_store_open(path);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "AAAA000000000001", "s@example.com", rcpts2, body2, 1, 1000);
	ck_assert_int_eq(queue_store_commit(st), 0);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "BBBB000000000002", "t@example.com", rcpts2, body2, 1, 1000);
	queue_store_rollback(st);
	ck_assert_int_eq(queue_store_in_txn(st), 0);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "BBBB000000000002", &m), 0);
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 1);
	queue_store_close(st);
}
END_TEST

START_TEST(duplicate_qid_refused)
{
	struct queue_store *st = queue_store_open(path);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "AAAA000000000001", "s@example.com", rcpts2, body2, 1, 1000);
	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.qid, sizeof(m.qid), "AAAA000000000001");
	ck_assert_int_eq(queue_store_msg_add(st, &m), -1);
	ck_assert_int_eq(queue_store_errcode(st) & 0xff, SQLITE_CONSTRAINT);
	/* The transaction goes on. */
	ck_assert_int_eq(queue_store_commit(st), 0);
	ck_assert_int_eq(queue_store_msg_get(st, "AAAA000000000001", &m), 1);
	ck_assert_str_eq(m.sender, "s@example.com");
	queue_store_close(st);
}
END_TEST

START_TEST(recipient_states)
{
	struct queue_store *st = queue_store_open(path);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "AAAA000000000001", "s@example.com", rcpts2, body2, 1, 1000);
	struct collect c = {.n = 0};
	queue_store_rcpts_of(st, "AAAA000000000001", collect_cb, &c);
	int64_t a = c.r[0].id, b = c.r[1].id;

	/* In flight, then a crash: recovery queues it again. */
	ck_assert_int_eq(queue_store_rcpt_set_state(st, a, RS_INFLIGHT), 0);
	ck_assert_int_eq(queue_store_rcpt_update(st, b, RS_DEFERRED, 1, 1300, "421 busy", "4.4.2",
						 "mx.example.net[192.0.2.9]:25", "421 busy"), 0);
	ck_assert_int_eq(queue_store_commit(st), 0);
	queue_store_close(st);
	st = queue_store_open(path);
	long incomplete, inflight, messages;
	ck_assert_int_eq(queue_store_recover(st, 1100, &incomplete, &inflight, &messages), 0);
	ck_assert_int_eq(inflight, 1);
	struct queue_rcpt r;
	ck_assert_int_eq(queue_store_rcpt_get(st, a, &r), 1);
	ck_assert_int_eq(r.state, RS_QUEUED);
	ck_assert_int_eq(r.next_attempt, 1100);
	ck_assert_int_eq(queue_store_rcpt_get(st, b, &r), 1);
	ck_assert_int_eq(r.state, RS_DEFERRED);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_str_eq(r.last_error, "421 busy");
	ck_assert_str_eq(r.last_enh, "4.4.2");

	/* Hold takes both out of the schedule; release restores queued/deferred. */
	ck_assert_int_eq(queue_store_begin(st), 0);
	ck_assert_int_eq(queue_store_msg_hold(st, "AAAA000000000001", 1), 1);
	ck_assert_int_eq(queue_store_msg_hold(st, "NOSUCH0000000000", 1), 0);
	ck_assert_int_eq(queue_store_first_due(st, 99999, &r), 0);
	int64_t when;
	ck_assert_int_eq(queue_store_next_due(st, &when), 0);
	ck_assert_int_eq(queue_store_msg_hold(st, "AAAA000000000001", 0), 1);
	ck_assert_int_eq(queue_store_rcpt_get(st, a, &r), 1);
	ck_assert_int_eq(r.state, RS_QUEUED);
	ck_assert_int_eq(queue_store_rcpt_get(st, b, &r), 1);
	ck_assert_int_eq(r.state, RS_DEFERRED);

	/* Due order, then flush makes the deferred one due. */
	ck_assert_int_eq(queue_store_next_due(st, &when), 1);
	ck_assert_int_eq(when, 1100);
	ck_assert_int_eq(queue_store_first_due(st, 1200, &r), 1);
	ck_assert_int_eq(r.id, a);
	ck_assert_int_eq(queue_store_rcpt_delete(st, a), 0);
	ck_assert_int_eq(queue_store_first_due(st, 1200, &r), 0);
	long n;
	ck_assert_int_eq(queue_store_flush(st, NULL, 1200, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(queue_store_first_due(st, 1200, &r), 1);
	ck_assert_int_eq(r.id, b);

	/* In flight, left, and the failed ones removed once reported. */
	ck_assert_int_eq(queue_store_inflight_of(st, "AAAA000000000001", &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(queue_store_rcpt_set_state(st, b, RS_INFLIGHT), 0);
	ck_assert_int_eq(queue_store_inflight_of(st, "AAAA000000000001", &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(queue_store_rcpt_count(st, "AAAA000000000001", &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(queue_store_failed_delete(st, "AAAA000000000001"), 0);
	ck_assert_int_eq(queue_store_rcpt_count(st, "AAAA000000000001", &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(queue_store_rcpt_update(st, b, RS_FAILED, 2, 0, "550 no", "5.1.1", "", ""), 0);
	ck_assert_int_eq(queue_store_inflight_of(st, "AAAA000000000001", &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(queue_store_failed_delete(st, "AAAA000000000001"), 0);
	ck_assert_int_eq(queue_store_rcpt_count(st, "AAAA000000000001", &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(queue_store_msg_delete(st, "AAAA000000000001"), 1);
	ck_assert_int_eq(queue_store_msg_delete(st, "AAAA000000000001"), 0);
	ck_assert_int_eq(queue_store_commit(st), 0);
	queue_store_close(st);
}
END_TEST

START_TEST(due_group_by_message_and_domain)
{
	static const char *const rc[] = {"a@x.example", "b@y.example", "c@X.example", NULL};
	struct queue_store *st = queue_store_open(path);
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "AAAA000000000001", "s@example.com", rc, body2, 1, 1000);
	struct collect c = {.n = 0};
	ck_assert_int_eq(queue_store_due_group(st, "AAAA000000000001", "x.example", 1000,
					       collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.r[0].address, "a@x.example");
	ck_assert_str_eq(c.r[1].address, "c@X.example");
	c.n = 0;
	ck_assert_int_eq(queue_store_due_group(st, "AAAA000000000001", "x.example", 999,
					       collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	long n;
	ck_assert_int_eq(queue_store_delete_all(st, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(queue_store_commit(st), 0);
	queue_store_close(st);
}
END_TEST

START_TEST(schema_versioned)
{
	struct queue_store *st = queue_store_open(path);
	queue_store_close(st);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(s, 0), QUEUE_SCHEMA_VERSION);
	sqlite3_finalize(s);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	/* The due query uses the index instead of scanning. */
	ck_assert_int_eq(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT next_attempt FROM "
					    "recipients WHERE state IN (1, 3) ORDER BY next_attempt LIMIT 1",
					    -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_ptr_nonnull(strstr((const char *)sqlite3_column_text(s, 3), "recipients_due"));
	sqlite3_finalize(s);
	/* A schema from a later version is refused. */
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_null(queue_store_open(path));
}
END_TEST

/* A queue.db of version 1 (before arrival_usec): upgraded in place, its mail kept. */
START_TEST(schema_v1_upgraded)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
		"CREATE TABLE messages (qid TEXT PRIMARY KEY, sender TEXT NOT NULL,"
		" arrival INTEGER NOT NULL, size INTEGER NOT NULL DEFAULT 0,"
		" client TEXT NOT NULL DEFAULT '', helo TEXT NOT NULL DEFAULT '',"
		" auth_user TEXT NOT NULL DEFAULT '', body_flags INTEGER NOT NULL DEFAULT 0,"
		" nchunks INTEGER NOT NULL DEFAULT 0, complete INTEGER NOT NULL DEFAULT 0,"
		" hold INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE chunks (qid TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,"
		" UNIQUE (qid, seq));"
		"CREATE TABLE recipients (id INTEGER PRIMARY KEY, qid TEXT NOT NULL,"
		" address TEXT NOT NULL, domain TEXT NOT NULL, state INTEGER NOT NULL,"
		" attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,"
		" last_error TEXT NOT NULL DEFAULT '', last_enh TEXT NOT NULL DEFAULT '',"
		" relay TEXT NOT NULL DEFAULT '', warned INTEGER NOT NULL DEFAULT 0);"
		"INSERT INTO messages (qid, sender, arrival, complete) VALUES"
		" ('OLD0000000000001', 'old@example.com', 1234, 1);"
		"PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct queue_store *st = queue_store_open(path);
	ck_assert_ptr_nonnull(st);
	struct queue_msg m;
	ck_assert_int_eq(queue_store_msg_get(st, "OLD0000000000001", &m), 1);
	ck_assert_str_eq(m.sender, "old@example.com");
	ck_assert_int_eq(m.arrival, 1234);
	ck_assert_uint_eq(m.arrival_usec, 0);
	/* New mail takes the new column. */
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "NEW0000000000001", "s@example.com", rcpts2, body2, 1, 2000);
	ck_assert_int_eq(queue_store_commit(st), 0);
	ck_assert_int_eq(queue_store_msg_get(st, "NEW0000000000001", &m), 1);
	ck_assert_uint_eq(m.arrival_usec, 987654);
	queue_store_close(st);

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(s, 0), QUEUE_SCHEMA_VERSION);
	sqlite3_finalize(s);
	/* A file from a newer relayd is refused, not changed. */
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_null(queue_store_open(path));
}
END_TEST

START_TEST(addr_domain)
{
	static const struct {
		const char *addr, *domain;
	} cases[] = {
		{"a@Example.ORG", "example.org"},
		{"\"a@b\"@c.example", "c.example"},
		{"postmaster", ""},
		{"", ""},
	};
	char d[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		queue_addr_domain(cases[i].addr, d, sizeof(d));
		ck_assert_str_eq(d, cases[i].domain);
	}
}
END_TEST

struct shape_cell {
	char domain[32]; /* "" for the folded rest */
	unsigned bucket;
	int64_t n, rank;
};

struct shape {
	struct shape_cell c[64];
	int n;
};

static void shape_cb(const char *domain, unsigned bucket, int64_t n, int64_t rank, void *arg)
{
	struct shape *sh = arg;
	ck_assert_int_lt(sh->n, 64);
	struct shape_cell *c = &sh->c[sh->n++];
	snprintf(c->domain, sizeof(c->domain), "%s", domain ? domain : "");
	c->bucket = bucket;
	c->n = n;
	c->rank = rank;
}

/* Bucket k holds ages under 300 * 2^k seconds; the last one the rest. */
START_TEST(shape_buckets_and_fold)
{
	static const struct {
		int64_t age;
		unsigned bucket;
	} edges[] = {
		{0, 0}, {299, 0}, {300, 1}, {599, 1}, {600, 2}, {1199, 2}, {1200, 3}, {2400, 4},
		{4800, 5}, {9600, 6}, {19200, 7}, {38400, 8}, {76799, 8}, {76800, 9}, {86400 * 9, 9},
	};
	const int64_t now = 1000000;
	struct queue_store *st = queue_store_open(path);
	char qid[32], rcpt[64];
	ck_assert_int_eq(queue_store_begin(st), 0);
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		const char *rc[] = {rcpt, NULL};
		snprintf(qid, sizeof(qid), "E%015zu", i);
		snprintf(rcpt, sizeof(rcpt), "e%zu@edge.example", i);
		add_msg(st, qid, "s@example.com", rc, body2, 1, now - edges[i].age);
	}
	/* Two busier domains by name order, a third that folds, and an
	 * incomplete message that is not counted. */
	const char *const two[] = {"a@b.example", "b@b.example", NULL};
	const char *const one[] = {"x@c.example", NULL};
	add_msg(st, "B000000000000001", "s@example.com", two, body2, 1, now);
	add_msg(st, "C000000000000001", "s@example.com", one, body2, 1, now - 700);
	add_msg(st, "D000000000000001", "s@example.com", one, body2, 0, now);
	ck_assert_int_eq(queue_store_commit(st), 0);

	struct shape sh = {.n = 0};
	ck_assert_int_eq(queue_store_shape(st, now, 10, shape_cb, &sh), 0);
	/* edge.example first (15), then b.example (2), then c.example (1). */
	unsigned want[QUEUE_SHAPE_NBUCKETS] = {0};
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		want[edges[i].bucket]++;
	int k = 0;
	for (unsigned b = 0; b < QUEUE_SHAPE_NBUCKETS; b++) {
		ck_assert_str_eq(sh.c[k].domain, "edge.example");
		ck_assert_uint_eq(sh.c[k].bucket, b);
		ck_assert_int_eq(sh.c[k].n, want[b]);
		ck_assert_int_eq(sh.c[k].rank, 1);
		k++;
	}
	ck_assert_str_eq(sh.c[k].domain, "b.example");
	ck_assert_int_eq(sh.c[k].n, 2);
	ck_assert_int_eq(sh.c[k++].rank, 2);
	ck_assert_str_eq(sh.c[k].domain, "c.example");
	ck_assert_uint_eq(sh.c[k].bucket, 2);
	ck_assert_int_eq(sh.c[k++].rank, 3);
	ck_assert_int_eq(sh.n, k);

	/* The top one only: the others fold into NULL rows, by bucket. */
	sh.n = 0;
	ck_assert_int_eq(queue_store_shape(st, now, 1, shape_cb, &sh), 0);
	ck_assert_int_eq(sh.n, QUEUE_SHAPE_NBUCKETS + 2);
	ck_assert_str_eq(sh.c[10].domain, "");
	ck_assert_uint_eq(sh.c[10].bucket, 0);
	ck_assert_int_eq(sh.c[10].n, 2);
	ck_assert_str_eq(sh.c[11].domain, "");
	ck_assert_uint_eq(sh.c[11].bucket, 2);
	ck_assert_int_eq(sh.c[11].n, 1);
	ck_assert_int_eq(sh.c[11].rank, 3);

	/* Gauges: 18 recipients queued (the incomplete one is RS_NEW), the
	 * oldest arrival is the 9-day-old message. */
	int64_t states[RS_NSTATES], oldest;
	ck_assert_int_eq(queue_store_gauges(st, states, &oldest), 0);
	ck_assert_int_eq(states[RS_QUEUED], 18);
	ck_assert_int_eq(states[RS_NEW], 0);
	ck_assert_int_eq(oldest, now - 86400 * 9);
	queue_store_close(st);
}
END_TEST

/* Transcripts: one per domain, replaced by a retry's, the newest kept within
 * QUEUE_TRACE_MAX bytes, gone with their message and at recovery. */
struct traces {
	char domains[8][32];
	size_t len[8];
	int n;
};

static int collect_trace(const char *domain, int64_t when, const char *text, void *arg)
{
	struct traces *t = arg;
	(void)when;
	snprintf(t->domains[t->n], sizeof(t->domains[0]), "%s", domain);
	t->len[t->n++] = strlen(text);
	return 0;
}

START_TEST(traces_bounded_and_removed)
{
	static const char *const rcpts[] = {"a@a.example", NULL};
	static const char *const body[] = {"x\r\n", NULL};
	char big[4001];
	struct traces t;
	struct queue_store *st = queue_store_open(path);
	ck_assert_ptr_nonnull(st);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(queue_store_begin(st), 0);
	add_msg(st, "Q1", "s@x.example", rcpts, body, 1, 100);
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "a.example", 101, "first"), 0);
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "a.example", 102, "second try"), 0);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(queue_store_traces_of(st, "Q1", collect_trace, &t), 0);
	ck_assert_int_eq(t.n, 1);
	ck_assert_uint_eq(t.len[0], strlen("second try"));
	/* Three of 4000 bytes do not fit in 8192: the oldest goes. */
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "b.example", 103, big), 0);
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "c.example", 104, big), 0);
	ck_assert_int_eq(queue_store_trace_put(st, "Q1", "d.example", 105, big), 0);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(queue_store_traces_of(st, "Q1", collect_trace, &t), 0);
	ck_assert_int_eq(t.n, 2);
	ck_assert_str_eq(t.domains[0], "c.example");
	ck_assert_str_eq(t.domains[1], "d.example");
	/* No transcript for a message that is not there (deleted meanwhile). */
	ck_assert_int_eq(queue_store_trace_put(st, "GONE", "a.example", 106, "orphan"), 0);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(queue_store_traces_of(st, "GONE", collect_trace, &t), 0);
	ck_assert_int_eq(t.n, 0);
	/* A transcript whose message is incomplete (a relayd without this
	 * table's cleanup left it) goes at recovery. */
	add_msg(st, "HALF", "s@x.example", rcpts, body, 0, 100);
	ck_assert_int_eq(queue_store_trace_put(st, "HALF", "a.example", 106, "half"), 0);
	ck_assert_int_eq(queue_store_commit(st), 0);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(queue_store_traces_of(st, "HALF", collect_trace, &t), 0);
	ck_assert_int_eq(t.n, 1);
	long inc = 0, infl = 0, msgs = 0;
	ck_assert_int_eq(queue_store_recover(st, 107, &inc, &infl, &msgs), 0);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(queue_store_traces_of(st, "HALF", collect_trace, &t), 0);
	ck_assert_int_eq(t.n, 0);
	ck_assert_int_eq(queue_store_begin(st), 0);
	ck_assert_int_eq(queue_store_msg_delete(st, "Q1"), 1);
	ck_assert_int_eq(queue_store_commit(st), 0);
	ck_assert_int_eq(queue_store_traces_of(st, "Q1", collect_trace, &t), 0);
	ck_assert_int_eq(t.n, 0);
	queue_store_close(st);
}
END_TEST

int main(void)
{
	log_init("test", 1, 0);
	Suite *s = suite_create("queue_store");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, commit_survives_reopen);
	tcase_add_test(tc, partial_stream_discarded_at_recovery);
	tcase_add_test(tc, rollback_keeps_earlier_commits);
	tcase_add_test(tc, duplicate_qid_refused);
	tcase_add_test(tc, recipient_states);
	tcase_add_test(tc, due_group_by_message_and_domain);
	tcase_add_test(tc, schema_versioned);
	tcase_add_test(tc, schema_v1_upgraded);
	tcase_add_test(tc, addr_domain);
	tcase_add_test(tc, shape_buckets_and_fold);
	tcase_add_test(tc, traces_bounded_and_removed);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
