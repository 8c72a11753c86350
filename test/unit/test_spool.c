/*
 * Unit tests for spool/: schema and versioning, byte-exact round trips,
 * all-or-nothing group commits (constraint errors and a real SQLITE_FULL via
 * spool_set_max_size), delete cascades, and two handles sharing one spool.
 * Each test gets its own mkdtemp directory under /tmp, removed afterwards.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include <sqlite3.h>

#include "spool/spool.h"
#include "spoolfx.h"

#define KiB 1024
#define MiB (1024 * 1024)

struct fx {
	char base[64]; /* mkdtemp directory */
	char dir[96];  /* base/spool: spool_open must create it */
	struct spool *sp;
};

/* One message to build: a generated body of body_len bytes and nrcpts recipients. */
struct msg_spec {
	size_t body_len;
	size_t nrcpts;
	const char *sender;
	const char *client_ip, *helo, *auth_user;
	unsigned flags;
	int64_t chunks; /* expected rows in bodies */
};

/* A built message: the spool_msg_in plus the storage it borrows. */
struct built {
	struct spool_msg_in in;
	char *body;
	char rcpt_buf[8][64];
	const char *rcpts[8];
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	if (tu_spool_dirs("test_spool", fx->base, sizeof fx->base, fx->dir, sizeof fx->dir) != 0) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	spool_close(fx->sp);
	tu_rmtree(fx->base);
	free(fx);
	return 0;
}

/* Raw SQLite access, as other programs reading the spool would do it. */
static int64_t
db_int(const char *dir, const char *sql, const char *arg)
{
	char path[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	snprintf(path, sizeof path, "%s/spool.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (arg != NULL)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
db_exec(const char *dir, const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;

	snprintf(path, sizeof path, "%s/spool.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Total rows in the three tables: all-or-nothing means this never moves on failure. */
static int64_t
total_rows(const char *dir)
{
	return db_int(dir,
	              "SELECT (SELECT count(*) FROM messages) * 1000000 +"
	              " (SELECT count(*) FROM recipients) * 1000 +"
	              " (SELECT count(*) FROM bodies)",
	              NULL);
}

/* Every byte value, NULs included, in an order that differs per seed. */
static char *
gen_body(size_t len, unsigned seed)
{
	char *b = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	assert_non_null(b);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (char)(i % 7 == 0 ? (i / 7) & 0xff : x & 0xff);
	}
	return b;
}

static void
build(struct built *b, unsigned n, const struct msg_spec *s)
{
	size_t i;

	memset(b, 0, sizeof *b);
	assert_true(s->nrcpts <= 8);
	snprintf(b->in.qid, sizeof b->in.qid, "%016x", n);
	b->body = gen_body(s->body_len, n);
	for (i = 0; i < s->nrcpts; i++) {
		snprintf(b->rcpt_buf[i], sizeof b->rcpt_buf[i], "r%zu.%u@example.test", i, n);
		b->rcpts[i] = b->rcpt_buf[i];
	}
	b->in.sender = s->sender ? s->sender : "sender@example.test";
	b->in.rcpts = b->rcpts;
	b->in.nrcpts = s->nrcpts;
	b->in.body = b->body;
	b->in.body_len = s->body_len;
	b->in.received = 1700000000 + (time_t)n;
	b->in.client_ip = s->client_ip;
	b->in.helo = s->helo;
	b->in.auth_user = s->auth_user;
	b->in.flags = s->flags;
}

static void
unbuild(struct built *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(b[i].body);
}

static int
insert(struct spool *sp, struct built *b, size_t n, int *disk_full, char *err, size_t errlen)
{
	struct spool_msg_in *p[16];
	size_t i;

	assert_true(n <= 16);
	for (i = 0; i < n; i++)
		p[i] = &b[i].in;
	return spool_insert_batch(sp, p, n, disk_full, err, errlen);
}

static void
insert_ok(struct spool *sp, struct built *b, size_t n)
{
	char err[256] = "";
	int full = -1;

	if (insert(sp, b, n, &full, err, sizeof err) != 0)
		fail_msg("insert: %s", err);
	assert_int_equal(full, 0);
}

static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

/* spool_get and spool_read_body give back exactly what went in. */
static void
assert_stored(struct spool *sp, const struct spool_msg_in *in)
{
	char err[256] = "";
	struct spool_msg *m = NULL;
	char *body = NULL;
	size_t len = 0, i;

	if (spool_get(sp, in->qid, &m, err, sizeof err) != 0)
		fail_msg("get %s: %s", in->qid, err);
	assert_string_equal(m->qid, in->qid);
	assert_string_equal(m->sender, in->sender);
	assert_int_equal(m->nrcpts, in->nrcpts);
	for (i = 0; i < in->nrcpts; i++) {
		assert_string_equal(m->rcpts[i], in->rcpts[i]);
		assert_int_equal(m->rcpt_state[i], SPOOL_RCPT_PENDING);
	}
	assert_int_equal(m->body_len, in->body_len);
	assert_int_equal(m->received, in->received);
	assert_str_or_null(m->client_ip, in->client_ip);
	assert_str_or_null(m->helo, in->helo);
	assert_str_or_null(m->auth_user, in->auth_user);
	assert_int_equal(m->flags, in->flags);
	spool_msg_free(m);

	if (spool_read_body(sp, in->qid, &body, &len, err, sizeof err) != 0)
		fail_msg("read body %s: %s", in->qid, err);
	assert_int_equal(len, in->body_len);
	assert_true(len == 0 || memcmp(body, in->body, len) == 0);
	assert_int_equal(body[len], '\0');
	free(body);
}

static void
assert_absent(struct spool *sp, const char *qid)
{
	char err[256] = "";
	struct spool_msg *m = (struct spool_msg *)1;

	assert_int_equal(spool_get(sp, qid, &m, err, sizeof err), -1);
	assert_null(m);
	assert_non_null(strstr(err, "no such message"));
}

static int64_t
count(struct spool *sp)
{
	char err[256] = "";
	int64_t n = -1;

	if (spool_count(sp, &n, err, sizeof err) != 0)
		fail_msg("count: %s", err);
	return n;
}

static const struct msg_spec plain = {.body_len = 100, .nrcpts = 1};

static void
test_open_creates_schema(void **state)
{
	static const char *const columns[][2] = {
	    {"messages", "qid"},        {"messages", "sender"},      {"messages", "received"},
	    {"messages", "size"},       {"messages", "client_ip"},   {"messages", "helo"},
	    {"messages", "auth_user"},  {"messages", "flags"},       {"messages", "next_try"},
	    {"messages", "attempts"},   {"messages", "lease_until"}, {"messages", "state"},
	    {"recipients", "msg_id"},   {"recipients", "address"},   {"recipients", "state"},
	    {"recipients", "next_try"}, {"recipients", "attempts"},  {"recipients", "last_reply"},
	    {"bodies", "msg_id"},       {"bodies", "seq"},           {"bodies", "data"},
	};
	struct fx *fx = *state;
	char path[128], sql[160];
	struct stat sb;
	size_t i;

	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(stat(fx->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof path, "%s/spool.db", fx->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(db_int(fx->dir, "PRAGMA user_version", NULL), SPOOL_SCHEMA_VERSION);
	assert_int_equal(
	    db_int(fx->dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", NULL), 1);
	for (i = 0; i < sizeof columns / sizeof columns[0]; i++) {
		snprintf(sql, sizeof sql,
		         "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
		         columns[i][0], columns[i][1]);
		if (db_int(fx->dir, sql, NULL) != 1)
			fail_msg("missing column %s.%s", columns[i][0], columns[i][1]);
	}
}

/* No due-time or per-message lookup may scan a table: think of a 1M queue. */
static void
test_scans_use_indexes(void **state)
{
	static const struct {
		const char *label, *sql, *want;
	} plans[] = {
	    {"due recipients", "SELECT id FROM recipients WHERE state = 0 AND next_try <= 5",
	     "recipients_due"},
	    {"due messages", "SELECT id FROM messages WHERE next_try <= 5", "messages_due"},
	    {"cascade and rcpt fetch", "SELECT address FROM recipients WHERE msg_id = 5",
	     "recipients_msg"},
	    {"body chunks", "SELECT data FROM bodies WHERE msg_id = 5", "bodies_msg"},
	    {"by qid", "SELECT id FROM messages WHERE qid = 'x'", "autoindex_messages"},
	    {"spool_count",
	     "SELECT count(*) FROM messages AS m WHERE EXISTS (SELECT 1 FROM"
	     " recipients AS r WHERE r.msg_id = m.id AND r.state = 0)",
	     "COVERING INDEX recipients_msg"},
	};
	struct fx *fx = *state;
	char path[128];
	size_t i;

	fx->sp = tu_spool_open(fx->dir);
	snprintf(path, sizeof path, "%s/spool.db", fx->dir);
	for (i = 0; i < sizeof plans / sizeof plans[0]; i++) {
		char p[256];
		sqlite3 *db;
		sqlite3_stmt *st;
		int found = 0;

		snprintf(p, sizeof p, "EXPLAIN QUERY PLAN %s", plans[i].sql);
		assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, p, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW)
			found |=
			    strstr((const char *)sqlite3_column_text(st, 3), plans[i].want) != NULL;
		sqlite3_finalize(st);
		sqlite3_close(db);
		if (!found)
			fail_msg("%s: plan does not use %s", plans[i].label, plans[i].want);
	}
}

static void
test_reopen_idempotent(void **state)
{
	struct fx *fx = *state;
	struct built b;
	int round;

	build(&b, 1, &plain);
	fx->sp = tu_spool_open(fx->dir);
	insert_ok(fx->sp, &b, 1);
	for (round = 0; round < 3; round++) {
		spool_close(fx->sp);
		fx->sp = tu_spool_open(fx->dir);
		assert_int_equal(db_int(fx->dir, "PRAGMA user_version", NULL),
		                 SPOOL_SCHEMA_VERSION);
		assert_int_equal(count(fx->sp), 1);
		assert_stored(fx->sp, &b.in);
	}
	unbuild(&b, 1);
}

static void
test_newer_version_refused(void **state)
{
	struct fx *fx = *state;
	char err[256] = "", want[96], sql[64];
	struct spool *sp = (struct spool *)1;

	fx->sp = tu_spool_open(fx->dir);
	spool_close(fx->sp);
	fx->sp = NULL;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SPOOL_SCHEMA_VERSION + 1);
	db_exec(fx->dir, sql);
	assert_int_equal(spool_open(&sp, fx->dir, err, sizeof err), -1);
	assert_null(sp);
	snprintf(want, sizeof want, "spool.db schema version %d is newer than this mxrelay (%d)",
	         SPOOL_SCHEMA_VERSION + 1, SPOOL_SCHEMA_VERSION);
	if (strstr(err, want) == NULL)
		fail_msg("err: %s", err);
	/* Refusing must not touch the database. */
	assert_int_equal(db_int(fx->dir, "PRAGMA user_version", NULL), SPOOL_SCHEMA_VERSION + 1);
}

static void
test_open_errors(void **state)
{
	struct fx *fx = *state;
	char err[256] = "", path[128];
	struct spool *sp = (struct spool *)1;
	FILE *f;

	snprintf(path, sizeof path, "%s/file", fx->base);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(spool_open(&sp, path, err, sizeof err), -1);
	assert_null(sp);
	assert_non_null(strstr(err, "not a directory"));

	snprintf(path, sizeof path, "%s/no/such/dir", fx->base);
	assert_int_equal(spool_open(&sp, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "mkdir"));
}

/* Chunk boundaries, empty and 1 MB bodies, the null sender, optional fields. */
static const struct msg_spec roundtrip[] = {
    {.body_len = 0, .nrcpts = 1, .sender = "", .chunks = 0},
    {.body_len = 1, .nrcpts = 2, .client_ip = "192.0.2.1", .chunks = 1},
    {.body_len = 1280, .nrcpts = 1, .chunks = 1}, /* 5/16 of a 4 KB page: one row */
    {.body_len = 1562, .nrcpts = 1, .chunks = 2}, /* cut: two rows pack 2.6 per page */
    {.body_len = 4096, .nrcpts = 1, .chunks = 4},
    {.body_len = 4097, .nrcpts = 1, .chunks = 1}, /* over a page: overflow pages, whole */
    {.body_len = 256 * KiB - 1, .nrcpts = 3, .helo = "client.example", .chunks = 1},
    {.body_len = 256 * KiB, .nrcpts = 1, .auth_user = "copier", .chunks = 1},
    {.body_len = 256 * KiB + 1, .nrcpts = 8, .flags = SPOOL_F_8BITMIME, .chunks = 2},
    {.body_len = 1 * MiB,
     .nrcpts = 5,
     .sender = "b\xc3\xbcro@example.test",
     .client_ip = "2001:db8::1",
     .helo = "[2001:db8::1]",
     .auth_user = "crm",
     .flags = SPOOL_F_8BITMIME | SPOOL_F_SMTPUTF8,
     .chunks = 4},
    {.body_len = 1 * MiB + 3, .nrcpts = 1, .chunks = 5},
};
#define NROUNDTRIP (sizeof roundtrip / sizeof roundtrip[0])

static void
test_batch_roundtrip(void **state)
{
	struct fx *fx = *state;
	struct built b[NROUNDTRIP];
	struct spool_msg **list = NULL;
	char err[256] = "";
	size_t i, n = 0;

	fx->sp = tu_spool_open(fx->dir);
	for (i = 0; i < NROUNDTRIP; i++)
		build(&b[i], (unsigned)i + 1, &roundtrip[i]);
	insert_ok(fx->sp, b, NROUNDTRIP);
	assert_int_equal(count(fx->sp), NROUNDTRIP);
	for (i = 0; i < NROUNDTRIP; i++) {
		assert_stored(fx->sp, &b[i].in);
		assert_int_equal(db_int(fx->dir,
		                        "SELECT count(*) FROM bodies WHERE msg_id ="
		                        " (SELECT id FROM messages WHERE qid = ?1)",
		                        b[i].in.qid),
		                 roundtrip[i].chunks);
		/* Due at once: the scheduler picks new mail up by next_try. */
		assert_int_equal(
		    db_int(fx->dir, "SELECT next_try FROM messages WHERE qid = ?1", b[i].in.qid),
		    b[i].in.received);
	}
	assert_int_equal(db_int(fx->dir, "SELECT max(length(data)) FROM bodies", NULL), 256 * KiB);

	assert_int_equal(spool_list(fx->sp, 100, &list, &n, err, sizeof err), 0);
	assert_int_equal(n, NROUNDTRIP);
	for (i = 0; i < n; i++) {
		assert_string_equal(list[i]->qid, b[i].in.qid); /* oldest first */
		assert_int_equal(list[i]->nrcpts, roundtrip[i].nrcpts);
		spool_msg_free(list[i]);
	}
	free(list);
	unbuild(b, NROUNDTRIP);
}

static void
test_list_max(void **state)
{
	struct fx *fx = *state;
	struct built b[5];
	struct spool_msg **list = NULL;
	char err[256] = "";
	size_t i, n = 99;

	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(spool_list(fx->sp, 10, &list, &n, err, sizeof err), 0);
	assert_int_equal(n, 0);
	free(list);
	for (i = 0; i < 5; i++) {
		build(&b[i], (unsigned)i + 1, &plain);
		insert_ok(fx->sp, &b[i], 1); /* five separate commits */
	}
	assert_int_equal(spool_list(fx->sp, 3, &list, &n, err, sizeof err), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		assert_string_equal(list[i]->qid, b[i].in.qid);
		assert_string_equal(list[i]->rcpts[0], b[i].rcpts[0]);
		spool_msg_free(list[i]);
	}
	free(list);
	unbuild(b, 5);
}

enum fault { F_NONE, F_NULL_SENDER, F_NULL_RCPT, F_NO_RCPTS, F_BAD_QID };

/* Batches that must fail as a whole: the bad message is in the middle. */
static const struct {
	const char *label;
	unsigned ids[3];  /* qid numbers; 100 is already stored */
	enum fault fault; /* applied to the middle message */
	const char *err;
} bad_batches[] = {
    {"duplicate of a stored qid", {1, 100, 2}, F_NONE, "UNIQUE"},
    {"duplicate inside the batch", {3, 4, 3}, F_NONE, "UNIQUE"},
    {"NULL sender", {5, 6, 7}, F_NULL_SENDER, "NOT NULL"},
    {"NULL recipient", {8, 9, 10}, F_NULL_RCPT, "NOT NULL"},
    {"no recipients", {11, 12, 13}, F_NO_RCPTS, "no recipients"},
    {"unterminated qid", {14, 15, 16}, F_BAD_QID, "bad queue id"},
};

static void
test_all_or_nothing(void **state)
{
	const struct msg_spec big = {.body_len = 600 * KiB, .nrcpts = 3};
	struct fx *fx = *state;
	struct built stored, b[3];
	size_t c, i;

	fx->sp = tu_spool_open(fx->dir);
	build(&stored, 100, &plain);
	insert_ok(fx->sp, &stored, 1);
	for (c = 0; c < sizeof bad_batches / sizeof bad_batches[0]; c++) {
		int64_t before = total_rows(fx->dir);
		char err[256] = "";
		int full = -1;

		for (i = 0; i < 3; i++)
			build(&b[i], bad_batches[c].ids[i], &big);
		if (bad_batches[c].fault == F_NULL_SENDER)
			b[1].in.sender = NULL;
		else if (bad_batches[c].fault == F_NULL_RCPT)
			b[1].rcpts[2] = NULL;
		else if (bad_batches[c].fault == F_NO_RCPTS)
			b[1].in.nrcpts = 0;
		else if (bad_batches[c].fault == F_BAD_QID)
			memset(b[1].in.qid, 'a', sizeof b[1].in.qid);
		if (insert(fx->sp, b, 3, &full, err, sizeof err) != -1)
			fail_msg("%s: batch was accepted", bad_batches[c].label);
		assert_int_equal(full, 0);
		if (strstr(err, bad_batches[c].err) == NULL)
			fail_msg("%s: err: %s", bad_batches[c].label, err);
		if (total_rows(fx->dir) != before)
			fail_msg("%s: rows changed", bad_batches[c].label);
		assert_absent(fx->sp, b[0].in.qid);
		unbuild(b, 3);
	}
	assert_int_equal(count(fx->sp), 1);
	assert_stored(fx->sp, &stored.in);
	/* No transaction was left open: the next batch commits. */
	build(&b[0], 200, &big);
	insert_ok(fx->sp, b, 1);
	assert_int_equal(count(fx->sp), 2);
	unbuild(b, 1);
	unbuild(&stored, 1);
}

static void
test_disk_full(void **state)
{
	const struct msg_spec small = {.body_len = 10 * KiB, .nrcpts = 2};
	const struct msg_spec huge = {.body_len = 1 * MiB, .nrcpts = 2};
	struct fx *fx = *state;
	struct built old[3], b[2];
	char err[256] = "";
	int64_t size, before;
	int full = -1;
	size_t i;

	fx->sp = tu_spool_open(fx->dir);
	for (i = 0; i < 3; i++)
		build(&old[i], (unsigned)i + 1, &huge);
	insert_ok(fx->sp, old, 3);
	build(&b[0], 10, &small);
	build(&b[1], 11, &huge);
	before = total_rows(fx->dir);

	/* Room for the small message and a few chunks of the big one, not all. */
	size = db_int(fx->dir,
	              "SELECT page_count * page_size FROM pragma_page_count,"
	              " pragma_page_size",
	              NULL);
	assert_int_equal(spool_set_max_size(fx->sp, size + 512 * KiB, err, sizeof err), 0);
	assert_int_equal(insert(fx->sp, b, 2, &full, err, sizeof err), -1);
	assert_int_equal(full, 1);
	/* It failed on the second message: the first was already written. */
	if (strstr(err, "database or disk is full") == NULL || strstr(err, b[1].in.qid) == NULL)
		fail_msg("err: %s", err);
	assert_int_equal(total_rows(fx->dir), before);
	assert_int_equal(count(fx->sp), 3);
	assert_absent(fx->sp, b[0].in.qid);
	for (i = 0; i < 3; i++)
		assert_stored(fx->sp, &old[i].in);
	assert_int_equal(
	    db_int(fx->dir, "SELECT integrity_check = 'ok' FROM pragma_integrity_check", NULL), 1);

	/* Raising the cap makes room again on the same handle. */
	assert_int_equal(spool_set_max_size(fx->sp, 0, err, sizeof err), 0);
	insert_ok(fx->sp, b, 2);
	assert_int_equal(count(fx->sp), 5);
	spool_close(fx->sp);
	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(count(fx->sp), 5);
	assert_stored(fx->sp, &b[1].in);
	assert_stored(fx->sp, &old[0].in);
	unbuild(old, 3);
	unbuild(b, 2);
}

static void
test_set_max_size_errors(void **state)
{
	struct fx *fx = *state;
	char err[256] = "";

	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(spool_set_max_size(fx->sp, -1, err, sizeof err), -1);
	assert_non_null(strstr(err, "negative"));
}

static void
test_delete_cascades(void **state)
{
	const struct msg_spec spec = {.body_len = 700 * KiB, .nrcpts = 4};
	struct fx *fx = *state;
	struct built b[2];
	char err[256] = "", *body = NULL;
	size_t len;

	fx->sp = tu_spool_open(fx->dir);
	build(&b[0], 1, &spec);
	build(&b[1], 2, &spec);
	insert_ok(fx->sp, b, 2);
	assert_int_equal(total_rows(fx->dir), 2 * 1000000 + 8 * 1000 + 6);
	assert_int_equal(spool_delete(fx->sp, b[0].in.qid, err, sizeof err), 0);
	assert_int_equal(total_rows(fx->dir), 1 * 1000000 + 4 * 1000 + 3);
	assert_int_equal(db_int(fx->dir,
	                        "SELECT count(*) FROM recipients WHERE msg_id NOT IN"
	                        " (SELECT id FROM messages)",
	                        NULL),
	                 0);
	assert_absent(fx->sp, b[0].in.qid);
	assert_int_equal(spool_read_body(fx->sp, b[0].in.qid, &body, &len, err, sizeof err), -1);
	assert_non_null(strstr(err, "no such message"));
	assert_int_equal(spool_delete(fx->sp, b[0].in.qid, err, sizeof err), -1);
	assert_non_null(strstr(err, "no such message"));
	assert_stored(fx->sp, &b[1].in);
	unbuild(b, 2);
}

static void
test_count_pending_only(void **state)
{
	const struct msg_spec spec = {.body_len = 10, .nrcpts = 2};
	struct fx *fx = *state;
	struct built b[2];
	struct spool_msg *m = NULL;
	char err[256] = "";

	fx->sp = tu_spool_open(fx->dir);
	build(&b[0], 1, &spec);
	build(&b[1], 2, &spec);
	insert_ok(fx->sp, b, 2);
	assert_int_equal(count(fx->sp), 2);
	/* One recipient done: the message still counts. */
	db_exec(fx->dir, "UPDATE recipients SET state = 1 WHERE address = 'r0.1@example.test'");
	assert_int_equal(count(fx->sp), 2);
	db_exec(fx->dir, "UPDATE recipients SET state = 2 WHERE address = 'r1.1@example.test'");
	assert_int_equal(count(fx->sp), 1);
	assert_int_equal(spool_get(fx->sp, b[0].in.qid, &m, err, sizeof err), 0);
	assert_int_equal(m->rcpt_state[0], SPOOL_RCPT_DONE);
	assert_int_equal(m->rcpt_state[1], SPOOL_RCPT_FAILED);
	spool_msg_free(m);
	unbuild(b, 2);
}

/* The writer thread and a reader (scheduler, mxrelayctl) each hold a handle. */
static void
test_two_handles(void **state)
{
	struct fx *fx = *state;
	struct spool *reader;
	struct built b[2];
	char err[256] = "";

	fx->sp = tu_spool_open(fx->dir);
	reader = tu_spool_open(fx->dir);
	build(&b[0], 1, &roundtrip[5]);
	build(&b[1], 2, &plain);
	assert_int_equal(count(reader), 0);
	insert_ok(fx->sp, b, 2);
	assert_int_equal(count(reader), 2);
	assert_stored(reader, &b[0].in);
	assert_int_equal(spool_delete(reader, b[1].in.qid, err, sizeof err), 0);
	assert_absent(fx->sp, b[1].in.qid);
	assert_int_equal(count(fx->sp), 1);
	insert_ok(fx->sp, &b[1], 1); /* the qid is free again */
	assert_stored(reader, &b[1].in);
	spool_close(reader);
	unbuild(b, 2);
}

static void
test_empty_batch(void **state)
{
	struct fx *fx = *state;
	char err[256] = "";
	int full = -1;

	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(spool_insert_batch(fx->sp, NULL, 0, &full, err, sizeof err), 0);
	assert_int_equal(full, 0);
	assert_int_equal(count(fx->sp), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_open_creates_schema),
	    T(test_scans_use_indexes),
	    T(test_reopen_idempotent),
	    T(test_newer_version_refused),
	    T(test_open_errors),
	    T(test_batch_roundtrip),
	    T(test_list_max),
	    T(test_all_or_nothing),
	    T(test_disk_full),
	    T(test_set_max_size_errors),
	    T(test_delete_cascades),
	    T(test_count_pending_only),
	    T(test_two_handles),
	    T(test_empty_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
