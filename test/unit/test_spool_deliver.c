/*
 * Unit tests for the delivery side of spool/ (spool_deliver.c): the startup
 * schedule load, per-attempt work loads (pending recipients only, byte-exact
 * bodies), and spool_apply's group commit: mixed outcomes, the delete of a
 * finished message, a bounce committed in the same transaction, and all or
 * nothing on caller errors and on a real SQLITE_FULL; claims (attempts that
 * never finished) counted, cleared and turned into a hold; results-only
 * updates (one destination's outcomes) that leave the message row alone.
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

#define KiB 1024
#define MiB (1024 * 1024)
#define T0 1700000000

struct fx {
	char base[64];
	char dir[96];
	struct spool *sp;
};

/* A message to insert: the spool_msg_in plus the storage it borrows. */
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
	char err[256] = "";

	if (fx == NULL)
		return -1;
	snprintf(fx->base, sizeof fx->base, "/tmp/test_spool_deliver.XXXXXX");
	if (mkdtemp(fx->base) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->dir, sizeof fx->dir, "%s/spool", fx->base);
	if (spool_open(&fx->sp, fx->dir, err, sizeof err) != 0) {
		fprintf(stderr, "spool_open: %s\n", err);
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

/* Every byte value, NULs included, different per seed. */
static char *
gen_body(size_t len, unsigned seed)
{
	char *b = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 7;
	size_t i;

	assert_non_null(b);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (char)(i % 5 == 0 ? i & 0xff : x & 0xff);
	}
	return b;
}

static void
build(struct built *b, unsigned n, size_t nrcpts, size_t body_len)
{
	size_t i;

	memset(b, 0, sizeof *b);
	assert_true(nrcpts <= 8);
	snprintf(b->in.qid, sizeof b->in.qid, "%016x", n);
	b->body = gen_body(body_len, n);
	for (i = 0; i < nrcpts; i++) {
		snprintf(b->rcpt_buf[i], sizeof b->rcpt_buf[i], "r%zu.%u@example.test", i, n);
		b->rcpts[i] = b->rcpt_buf[i];
	}
	b->in.sender = "sender@example.test";
	b->in.rcpts = b->rcpts;
	b->in.nrcpts = nrcpts;
	b->in.body = b->body;
	b->in.body_len = body_len;
	b->in.received = T0 + (time_t)n;
	b->in.client_ip = "192.0.2.7";
	b->in.helo = "client.example";
	b->in.auth_user = n % 2 ? "copier" : NULL;
	b->in.flags = n % 2 ? SPOOL_F_8BITMIME : 0;
}

static void
unbuild(struct built *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(b[i].body);
}

static void
insert_ok(struct spool *sp, struct built *b, size_t n)
{
	struct spool_msg_in *p[8];
	char err[256] = "";
	int full = -1;
	size_t i;

	assert_true(n <= 8);
	for (i = 0; i < n; i++)
		p[i] = &b[i].in;
	if (spool_insert_batch(sp, p, n, &full, err, sizeof err) != 0)
		fail_msg("insert: %s", err);
	assert_int_equal(full, 0);
}

static sqlite3 *
db_open(const char *dir)
{
	char path[128];
	sqlite3 *db = NULL;

	snprintf(path, sizeof path, "%s/spool.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

/* First column of the first row as an integer (-1 when no row). */
static int64_t
db_int(const char *dir, const char *sql, const char *arg)
{
	sqlite3 *db = db_open(dir);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

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

/* First column of the first row as a malloc'd string ("(null)" for NULL). */
static char *
db_text(const char *dir, const char *sql)
{
	sqlite3 *db = db_open(dir);
	sqlite3_stmt *st = NULL;
	const unsigned char *s;
	char *v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	s = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	v = strdup(s ? (const char *)s : "(null)");
	assert_non_null(v);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
db_exec(const char *dir, const char *sql)
{
	sqlite3 *db = db_open(dir);

	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Every row of every table as text: "nothing changed" means this is equal. */
static char *
snapshot(const char *dir)
{
	char *s =
	    db_text(dir, "SELECT (SELECT group_concat(x, '|') FROM (SELECT id || ',' || qid || ','"
	                 " || sender || ',' || ifnull(next_try, '-') || ',' || attempts AS x"
	                 " FROM messages ORDER BY id)) || '#' || (SELECT group_concat(x, '|') FROM"
	                 " (SELECT id || ',' || msg_id || ',' || state || ',' || ifnull(next_try,"
	                 " '-') || ',' || attempts || ',' || ifnull(last_reply, '-') AS x FROM"
	                 " recipients ORDER BY id)) || '#' || (SELECT count(*) || ',' ||"
	                 " ifnull(sum(length(data)), 0) FROM bodies)");

	/* A NULL anywhere (an empty table) would make every snapshot equal. */
	assert_string_not_equal(s, "(null)");
	return s;
}

static int64_t
msg_id(const char *dir, const char *qid)
{
	return db_int(dir, "SELECT id FROM messages WHERE qid = ?1", qid);
}

static int64_t
rcpt_id(const char *dir, const char *address)
{
	return db_int(dir, "SELECT id FROM recipients WHERE address = ?1", address);
}

static int
apply(struct spool *sp, const struct spool_update *u, size_t n, int *full, char *err, size_t errlen)
{
	return spool_apply(sp, u, n, full, err, errlen);
}

static void
apply_ok(struct spool *sp, const struct spool_update *u, size_t n)
{
	char err[256] = "";
	int full = -1;

	if (apply(sp, u, n, &full, err, sizeof err) != 0)
		fail_msg("apply: %s", err);
	assert_int_equal(full, 0);
}

/* spool_load_pending, checking the promised order (ascending ids). */
static size_t
load_pending(struct spool *sp, struct spool_due **out)
{
	char err[256] = "";
	size_t n = 99, i;

	if (spool_load_pending(sp, out, &n, err, sizeof err) != 0)
		fail_msg("load pending: %s", err);
	for (i = 1; i < n; i++)
		assert_true((*out)[i - 1].id < (*out)[i].id);
	return n;
}

static void
test_load_pending_empty(void **state)
{
	struct fx *fx = *state;
	struct spool_due *due = (struct spool_due *)1;

	assert_int_equal(load_pending(fx->sp, &due), 0);
	free(due);
}

static void
test_load_pending(void **state)
{
	struct fx *fx = *state;
	struct spool_due *due = NULL;
	struct built b[4];
	size_t i, n;

	for (i = 0; i < 4; i++)
		build(&b[i], (unsigned)i + 1, 2, 100);
	insert_ok(fx->sp, b, 4);
	/* Message 2: nothing pending (left by a crash or a hand edit). Message 3: half done. */
	db_exec(fx->dir, "UPDATE recipients SET state = 1 WHERE address LIKE 'r_.2@%'");
	db_exec(fx->dir, "UPDATE recipients SET state = 2 WHERE address = 'r0.3@example.test'");
	db_exec(fx->dir, "UPDATE messages SET next_try = 12345 WHERE qid = '0000000000000004'");
	n = load_pending(fx->sp, &due);
	assert_int_equal(n, 3);
	assert_int_equal(due[0].id, msg_id(fx->dir, b[0].in.qid));
	assert_int_equal(due[0].next_try, b[0].in.received);
	assert_int_equal(due[1].id, msg_id(fx->dir, b[2].in.qid));
	assert_int_equal(due[1].next_try, b[2].in.received);
	assert_int_equal(due[2].id, msg_id(fx->dir, b[3].in.qid));
	assert_int_equal(due[2].next_try, 12345);
	free(due);
	unbuild(b, 4);
}

/*
 * The startup load must stay one pass in rowid order with in-order index
 * probes and no sort: think of a 1M-message queue. (Scanning messages_due
 * instead probes recipients in random order: 7x slower at 1M.) The SQL is
 * ST_PENDING's in spool/spool.c: keep the two the same.
 */
static void
test_load_pending_plan(void **state)
{
	static const char sql[] =
	    "EXPLAIN QUERY PLAN SELECT m.id, m.next_try FROM messages AS m WHERE EXISTS"
	    " (SELECT 1 FROM recipients AS r WHERE r.msg_id = m.id AND r.state = 0) ORDER BY m.id";
	struct fx *fx = *state;
	sqlite3 *db = db_open(fx->dir);
	sqlite3_stmt *st = NULL;
	int scan = 0, probe = 0, bad = 0;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);

		scan |= strcmp(d, "SCAN m") == 0;
		probe |= strstr(d, "SEARCH r USING COVERING INDEX recipients_msg") != NULL;
		bad |= strstr(d, "TEMP B-TREE") != NULL || strstr(d, "SCAN r") != NULL;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(scan);
	assert_true(probe);
	assert_false(bad);
}

static void
test_load_work(void **state)
{
	struct fx *fx = *state;
	struct spool_work *w = NULL;
	struct built b[2];
	char err[256] = "";

	build(&b[0], 1, 4, 600 * KiB + 3); /* three chunks */
	build(&b[1], 2, 1, 0);
	insert_ok(fx->sp, b, 2);
	db_exec(fx->dir, "UPDATE recipients SET state = 1 WHERE address = 'r1.1@example.test'");
	db_exec(fx->dir, "UPDATE recipients SET state = 2, attempts = 3 WHERE address ="
	                 " 'r2.1@example.test'");
	db_exec(fx->dir, "UPDATE recipients SET attempts = 2 WHERE address = 'r3.1@example.test'");
	db_exec(fx->dir, "UPDATE messages SET attempts = 2, unfinished = 1 WHERE qid ="
	                 " '0000000000000001'");

	if (spool_load_work(fx->sp, msg_id(fx->dir, b[0].in.qid), &w, err, sizeof err) != 0)
		fail_msg("load work: %s", err);
	assert_int_equal(w->id, msg_id(fx->dir, b[0].in.qid));
	assert_string_equal(w->qid, b[0].in.qid);
	assert_string_equal(w->sender, b[0].in.sender);
	assert_int_equal(w->received, b[0].in.received);
	assert_int_equal(w->flags, SPOOL_F_8BITMIME);
	assert_int_equal(w->attempts, 2);
	assert_int_equal(w->state, SPOOL_MSG_QUEUED);
	assert_int_equal(w->unfinished, 1);
	assert_string_equal(w->client_ip, "192.0.2.7");
	assert_string_equal(w->helo, "client.example");
	assert_string_equal(w->auth_user, "copier");
	assert_int_equal(w->nrcpts, 2); /* r1 done, r2 failed: only r0 and r3 */
	assert_string_equal(w->rcpts[0].address, "r0.1@example.test");
	assert_int_equal(w->rcpts[0].id, rcpt_id(fx->dir, "r0.1@example.test"));
	assert_int_equal(w->rcpts[0].attempts, 0);
	assert_string_equal(w->rcpts[1].address, "r3.1@example.test");
	assert_int_equal(w->rcpts[1].id, rcpt_id(fx->dir, "r3.1@example.test"));
	assert_int_equal(w->rcpts[1].attempts, 2);
	assert_int_equal(w->body_len, b[0].in.body_len);
	assert_memory_equal(w->body, b[0].body, b[0].in.body_len);
	assert_int_equal(w->body[w->body_len], '\0');
	spool_work_free(w);

	/* Empty body, no auth user: a valid zero-length buffer and NULL. */
	if (spool_load_work(fx->sp, msg_id(fx->dir, b[1].in.qid), &w, err, sizeof err) != 0)
		fail_msg("load work: %s", err);
	assert_int_equal(w->body_len, 0);
	assert_non_null(w->body);
	assert_int_equal(w->body[0], '\0');
	assert_null(w->auth_user);
	assert_int_equal(w->nrcpts, 1);
	assert_int_equal(w->unfinished, 0);
	spool_work_free(w);
	spool_work_free(NULL);
	unbuild(b, 2);
}

static void
test_load_work_errors(void **state)
{
	struct fx *fx = *state;
	struct spool_work *w = (struct spool_work *)1;
	struct built b;
	char err[256] = "";
	int64_t id;

	assert_int_equal(spool_load_work(fx->sp, 4242, &w, err, sizeof err), -1);
	assert_null(w);
	if (strstr(err, "no such message") == NULL)
		fail_msg("err: %s", err);

	build(&b, 1, 1, 300 * KiB);
	insert_ok(fx->sp, &b, 1);
	id = msg_id(fx->dir, b.in.qid);
	db_exec(fx->dir, "DELETE FROM bodies WHERE seq = 1");
	w = (struct spool_work *)1;
	assert_int_equal(spool_load_work(fx->sp, id, &w, err, sizeof err), -1);
	assert_null(w);
	if (strstr(err, "damaged") == NULL)
		fail_msg("err: %s", err);
	unbuild(&b, 1);
}

/* One attempt's outcomes for a four-recipient message. */
static const struct {
	const char *label;
	const char *rcpt; /* address; NULL ends the table */
	int state;        /* result given; -1: no result for this recipient */
	time_t next_try;
	const char *reply;
	int want_attempts;
} mixed[] = {
    {"delivered", "r0.1@example.test", SPOOL_RCPT_DONE, 0, "250 2.0.0 ok", 1},
    {"failed", "r1.1@example.test", SPOOL_RCPT_FAILED, 0, "550 5.1.1 no such user", 1},
    {"deferred", "r2.1@example.test", SPOOL_RCPT_PENDING, T0 + 600, "451 4.3.0 try later", 1},
    {"deferred, local reason", "r3.1@example.test", SPOOL_RCPT_PENDING, T0 + 900, NULL, 1},
    {"not tried", "r4.1@example.test", -1, 0, NULL, 0},
};
#define NMIXED (sizeof mixed / sizeof mixed[0])

static void
test_apply_mixed(void **state)
{
	struct fx *fx = *state;
	struct spool_result res[NMIXED];
	struct spool_update u = {0};
	struct spool_work *w = NULL;
	struct spool_due *due = NULL;
	struct built b;
	char err[256] = "", sql[160], *reply;
	size_t i, nres = 0;

	build(&b, 1, NMIXED, 1000);
	insert_ok(fx->sp, &b, 1);
	for (i = 0; i < NMIXED; i++) {
		if (mixed[i].state < 0)
			continue;
		res[nres].rcpt_id = rcpt_id(fx->dir, mixed[i].rcpt);
		res[nres].state = mixed[i].state;
		res[nres].next_try = mixed[i].next_try;
		res[nres].reply = mixed[i].reply;
		nres++;
	}
	u.msg_id = msg_id(fx->dir, b.in.qid);
	u.results = res;
	u.nresults = nres;
	u.next_try = T0 + 600;
	u.attempts = 1;
	apply_ok(fx->sp, &u, 1);

	for (i = 0; i < NMIXED; i++) {
		int want_state = mixed[i].state < 0 ? SPOOL_RCPT_PENDING : mixed[i].state;

		snprintf(sql, sizeof sql, "SELECT state FROM recipients WHERE id = %lld",
		         (long long)rcpt_id(fx->dir, mixed[i].rcpt));
		if (db_int(fx->dir, sql, NULL) != want_state)
			fail_msg("%s: state", mixed[i].label);
		snprintf(sql, sizeof sql, "SELECT attempts FROM recipients WHERE address = '%s'",
		         mixed[i].rcpt);
		if (db_int(fx->dir, sql, NULL) != mixed[i].want_attempts)
			fail_msg("%s: attempts", mixed[i].label);
		snprintf(sql, sizeof sql, "SELECT last_reply FROM recipients WHERE address = '%s'",
		         mixed[i].rcpt);
		reply = db_text(fx->dir, sql);
		if (strcmp(reply, mixed[i].reply ? mixed[i].reply : "(null)") != 0)
			fail_msg("%s: last_reply %s", mixed[i].label, reply);
		free(reply);
		if (mixed[i].state == SPOOL_RCPT_PENDING) {
			snprintf(sql, sizeof sql,
			         "SELECT next_try FROM recipients WHERE address = '%s'",
			         mixed[i].rcpt);
			assert_int_equal(db_int(fx->dir, sql, NULL), mixed[i].next_try);
		}
	}
	assert_int_equal(db_int(fx->dir, "SELECT next_try FROM messages", NULL), T0 + 600);
	assert_int_equal(db_int(fx->dir, "SELECT attempts FROM messages", NULL), 1);

	/* The schedule and the next attempt see the new state. */
	assert_int_equal(load_pending(fx->sp, &due), 1);
	assert_int_equal(due[0].next_try, T0 + 600);
	free(due);
	assert_int_equal(spool_load_work(fx->sp, u.msg_id, &w, err, sizeof err), 0);
	assert_int_equal(w->nrcpts, 3);
	assert_int_equal(w->attempts, 1);
	assert_string_equal(w->rcpts[0].address, "r2.1@example.test");
	assert_int_equal(w->rcpts[0].attempts, 1);
	assert_string_equal(w->rcpts[2].address, "r4.1@example.test");
	spool_work_free(w);
	unbuild(&b, 1);
}

/* The last pending recipient resolved: the message and its body go. */
static void
test_apply_deletes_finished(void **state)
{
	struct fx *fx = *state;
	struct spool_result res[3];
	struct spool_update u[2];
	struct spool_work *w = NULL;
	struct spool_due *due = NULL;
	struct built b[2];
	char err[256] = "";
	int64_t keep;
	int removed[2] = {-1, -1}; /* spool_update.removed: the delivery log's event=removed */

	build(&b[0], 1, 3, 700 * KiB);
	build(&b[1], 2, 1, 10);
	insert_ok(fx->sp, b, 2);
	keep = msg_id(fx->dir, b[1].in.qid);
	memset(u, 0, sizeof u);
	res[0] = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_DONE, 0,
	                               "250 ok"};
	res[1] = (struct spool_result){rcpt_id(fx->dir, "r1.1@example.test"), SPOOL_RCPT_PENDING,
	                               T0 + 300, "421 busy"};
	res[2] = (struct spool_result){rcpt_id(fx->dir, "r2.1@example.test"), SPOOL_RCPT_FAILED, 0,
	                               "550 no"};
	u[0] = (struct spool_update){.msg_id = msg_id(fx->dir, b[0].in.qid),
	                             .results = res,
	                             .nresults = 3,
	                             .next_try = T0 + 300,
	                             .attempts = 1};
	/* Same group commit: a reschedule of the other message without results. */
	u[1] = (struct spool_update){.msg_id = keep, .next_try = T0 + 50, .attempts = 0};
	u[0].removed = &removed[0];
	u[1].removed = &removed[1];
	apply_ok(fx->sp, u, 2);
	assert_int_equal(removed[0], 0);
	assert_int_equal(removed[1], 0);
	assert_int_equal(db_int(fx->dir, "SELECT count(*) FROM messages", NULL), 2);
	assert_int_equal(
	    db_int(fx->dir, "SELECT next_try FROM messages WHERE qid = ?1", b[1].in.qid), T0 + 50);

	res[1].state = SPOOL_RCPT_DONE;
	u[0].results = &res[1];
	u[0].nresults = 1;
	u[0].attempts = 2;
	apply_ok(fx->sp, u, 1);
	assert_int_equal(removed[0], 1); /* its last pending recipient: deleted by this update */
	assert_int_equal(db_int(fx->dir, "SELECT count(*) FROM messages", NULL), 1);
	assert_int_equal(db_int(fx->dir,
	                        "SELECT count(*) FROM recipients WHERE msg_id NOT IN"
	                        " (SELECT id FROM messages)",
	                        NULL),
	                 0);
	assert_int_equal(db_int(fx->dir,
	                        "SELECT count(*) FROM bodies WHERE msg_id NOT IN"
	                        " (SELECT id FROM messages)",
	                        NULL),
	                 0);
	assert_int_equal(spool_load_work(fx->sp, u[0].msg_id, &w, err, sizeof err), -1);
	assert_non_null(strstr(err, "no such message"));
	assert_int_equal(load_pending(fx->sp, &due), 1);
	assert_int_equal(due[0].id, keep);
	free(due);

	/* A late update for the deleted message is skipped, the rest applies. */
	u[1].next_try = T0 + 77;
	apply_ok(fx->sp, u, 2);
	assert_int_equal(removed[0], 0); /* skipped: it was removed once, not again */
	assert_int_equal(removed[1], 0);
	assert_int_equal(db_int(fx->dir, "SELECT next_try FROM messages", NULL), T0 + 77);
	unbuild(b, 2);
}

/* The DSN for a failed recipient, as the deliver code would make it. */
static void
make_bounce(struct built *dsn, unsigned n, size_t body_len, const char *to)
{
	build(dsn, n, 1, body_len);
	dsn->in.sender = "";
	dsn->rcpts[0] = to;
	dsn->in.client_ip = NULL;
	dsn->in.helo = NULL;
	dsn->in.auth_user = NULL;
}

static void
test_apply_bounce(void **state)
{
	struct fx *fx = *state;
	struct spool_result res;
	struct spool_update u = {0};
	struct spool_msg *m = NULL;
	struct built b, dsn;
	char err[256] = "", *body = NULL;
	size_t len;

	build(&b, 1, 1, 2000);
	insert_ok(fx->sp, &b, 1);
	make_bounce(&dsn, 100, 5000, "sender@example.test");
	res = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_FAILED, 0,
	                            "550 5.1.1 unknown"};
	u = (struct spool_update){.msg_id = msg_id(fx->dir, b.in.qid),
	                          .results = &res,
	                          .nresults = 1,
	                          .attempts = 1,
	                          .bounce = &dsn.in};
	dsn.in.id = -1;
	apply_ok(fx->sp, &u, 1);
	/* The original is gone, the bounce is queued and due at once. */
	assert_int_equal(msg_id(fx->dir, b.in.qid), -1);
	assert_int_equal(dsn.in.id, msg_id(fx->dir, dsn.in.qid)); /* for the scheduler */
	assert_int_equal(spool_get(fx->sp, dsn.in.qid, &m, err, sizeof err), 0);
	assert_string_equal(m->sender, "");
	assert_int_equal(m->nrcpts, 1);
	assert_string_equal(m->rcpts[0], "sender@example.test");
	assert_int_equal(m->rcpt_state[0], SPOOL_RCPT_PENDING);
	spool_msg_free(m);
	assert_int_equal(db_int(fx->dir, "SELECT next_try FROM messages", NULL), dsn.in.received);
	assert_int_equal(spool_read_body(fx->sp, dsn.in.qid, &body, &len, err, sizeof err), 0);
	assert_int_equal(len, 5000);
	assert_memory_equal(body, dsn.body, len);
	free(body);
	unbuild(&b, 1);
	unbuild(&dsn, 1);
}


/* A DSN's id is valid only after the commit that inserted it: an apply rolled back
 * (here by a trigger) and retried after the message was deleted must not leave the
 * rolled-back id behind, or the queue counts would gain a message that is not there. */
static void
test_apply_retry_forgets_bounce_id(void **state)
{
	struct fx *fx = *state;
	struct spool_result res;
	struct spool_update u;
	struct built b, dsn;
	char err[256] = "";
	int full = 0;
	int64_t mid;
	sqlite3 *db;

	build(&b, 1, 1, 2000);
	insert_ok(fx->sp, &b, 1);
	make_bounce(&dsn, 100, 5000, "sender@example.test");
	mid = msg_id(fx->dir, b.in.qid);
	res = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_FAILED, 0,
	                            "550 5.1.1 unknown"};
	u = (struct spool_update){.msg_id = mid, .results = &res, .nresults = 1, .attempts = 1,
	                          .bounce = &dsn.in};
	db = db_open(fx->dir);
	assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER t BEFORE INSERT ON bodies BEGIN"
	                                  " SELECT RAISE(ABORT, 'injected'); END", 0, 0, 0), SQLITE_OK);
	dsn.in.id = 0;
	assert_int_equal(apply(fx->sp, &u, 1, &full, err, sizeof err), -1); /* 1st try fails */
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER t", 0, 0, 0), SQLITE_OK);
	/* operator deletes the message while record.c waits to retry */
	assert_int_equal(sqlite3_exec(db, "DELETE FROM messages", 0, 0, 0), SQLITE_OK);
	sqlite3_close(db);
	apply_ok(fx->sp, &u, 1); /* retry: gone, returns 0 */
	assert_int_equal(dsn.in.id, 0); /* what deliver.c's job_applied assumes */
	unbuild(&b, 1);
	unbuild(&dsn, 1);
}

enum fault { F_FOREIGN_RCPT, F_DONE_RCPT, F_BAD_STATE, F_DUP_BOUNCE, F_BAD_BOUNCE, F_NULL_RES };

/* Batches that must change nothing: the bad update comes after a good one. */
static const struct {
	const char *label;
	enum fault fault;
	const char *err;
} bad_applies[] = {
    {"recipient of another message", F_FOREIGN_RCPT, "is not pending"},
    {"recipient already delivered", F_DONE_RCPT, "is not pending"},
    {"state out of range", F_BAD_STATE, "bad state 7"},
    {"bounce with a stored qid", F_DUP_BOUNCE, "UNIQUE"},
    {"bounce without recipients", F_BAD_BOUNCE, "no recipients"},
    {"results missing", F_NULL_RES, "NULL results"},
};

static void
test_apply_all_or_nothing(void **state)
{
	struct fx *fx = *state;
	struct spool_result good, bad;
	struct spool_update u[2];
	struct built b[3], dsn;
	size_t c;

	build(&b[0], 1, 2, 100);
	build(&b[1], 2, 2, 100);
	build(&b[2], 3, 1, 100);
	insert_ok(fx->sp, b, 3);
	db_exec(fx->dir, "UPDATE recipients SET state = 1 WHERE address = 'r1.2@example.test'");
	for (c = 0; c < sizeof bad_applies / sizeof bad_applies[0]; c++) {
		char *before = snapshot(fx->dir), *after, err[256] = "";
		int full = -1;

		good = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_DONE,
		                             0, "250 ok"};
		bad = (struct spool_result){rcpt_id(fx->dir, "r0.2@example.test"),
		                            SPOOL_RCPT_FAILED, 0, "550 no"};
		make_bounce(&dsn, 50, 100, "sender@example.test");
		u[0] = (struct spool_update){.msg_id = msg_id(fx->dir, b[0].in.qid),
		                             .results = &good,
		                             .nresults = 1,
		                             .next_try = T0 + 1,
		                             .attempts = 1};
		u[1] = (struct spool_update){.msg_id = msg_id(fx->dir, b[1].in.qid),
		                             .results = &bad,
		                             .nresults = 1,
		                             .next_try = T0 + 2,
		                             .attempts = 1,
		                             .bounce = &dsn.in};
		switch (bad_applies[c].fault) {
		case F_FOREIGN_RCPT:
			bad.rcpt_id = rcpt_id(fx->dir, "r0.3@example.test");
			break;
		case F_DONE_RCPT:
			bad.rcpt_id = rcpt_id(fx->dir, "r1.2@example.test");
			break;
		case F_BAD_STATE:
			bad.state = 7;
			break;
		case F_DUP_BOUNCE:
			memcpy(dsn.in.qid, b[2].in.qid, sizeof dsn.in.qid);
			break;
		case F_BAD_BOUNCE:
			dsn.in.nrcpts = 0;
			break;
		case F_NULL_RES:
			u[1].results = NULL;
			break;
		}
		if (apply(fx->sp, u, 2, &full, err, sizeof err) != -1)
			fail_msg("%s: accepted", bad_applies[c].label);
		assert_int_equal(full, 0);
		if (strstr(err, bad_applies[c].err) == NULL)
			fail_msg("%s: err: %s", bad_applies[c].label, err);
		after = snapshot(fx->dir);
		if (strcmp(before, after) != 0)
			fail_msg("%s: rows changed:\n%s\n%s", bad_applies[c].label, before, after);
		free(before);
		free(after);
		unbuild(&dsn, 1);
	}
	/* No transaction was left open: the good update alone commits. */
	apply_ok(fx->sp, u, 1);
	assert_int_equal(db_int(fx->dir, "SELECT count(*) FROM messages", NULL), 3);
	assert_int_equal(
	    db_int(fx->dir, "SELECT attempts FROM messages WHERE qid = ?1", b[0].in.qid), 1);
	unbuild(b, 3);
}

/* A real SQLITE_FULL while inserting the bounce: nothing at all changes. */
static void
test_apply_disk_full(void **state)
{
	struct fx *fx = *state;
	struct spool_result res[2];
	struct spool_update u[2];
	struct built b[3], dsn;
	char err[256] = "", *before, *after;
	struct spool_msg *m = NULL;
	int64_t size;
	int full = -1;

	build(&b[0], 1, 1, 1 * MiB);
	build(&b[1], 2, 2, 1 * MiB);
	build(&b[2], 3, 1, 1 * MiB);
	insert_ok(fx->sp, b, 3);
	make_bounce(&dsn, 100, 1 * MiB, "sender@example.test");
	res[0] = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_PENDING,
	                               T0 + 300, "451 later"};
	res[1] = (struct spool_result){rcpt_id(fx->dir, "r0.2@example.test"), SPOOL_RCPT_FAILED, 0,
	                               "550 5.1.1 unknown"};
	memset(u, 0, sizeof u);
	u[0] = (struct spool_update){.msg_id = msg_id(fx->dir, b[0].in.qid),
	                             .results = &res[0],
	                             .nresults = 1,
	                             .next_try = T0 + 300,
	                             .attempts = 1};
	u[1] = (struct spool_update){.msg_id = msg_id(fx->dir, b[1].in.qid),
	                             .results = &res[1],
	                             .nresults = 1,
	                             .next_try = T0 + 300,
	                             .attempts = 1,
	                             .bounce = &dsn.in};
	before = snapshot(fx->dir);
	size =
	    db_int(fx->dir,
	           "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size", NULL);
	/* Room for the state changes and a few chunks of the bounce, not all. */
	assert_int_equal(spool_set_max_size(fx->sp, size + 256 * KiB, err, sizeof err), 0);
	assert_int_equal(apply(fx->sp, u, 2, &full, err, sizeof err), -1);
	assert_int_equal(full, 1);
	if (strstr(err, "database or disk is full") == NULL)
		fail_msg("err: %s", err);
	after = snapshot(fx->dir);
	assert_string_equal(before, after);
	free(after);
	assert_int_equal(
	    db_int(fx->dir, "SELECT integrity_check = 'ok' FROM pragma_integrity_check", NULL), 1);

	/* With room again the same batch commits on the same handle, bounce and all. */
	assert_int_equal(spool_set_max_size(fx->sp, 0, err, sizeof err), 0);
	apply_ok(fx->sp, u, 2);
	after = snapshot(fx->dir);
	assert_string_not_equal(before, after);
	free(after);
	assert_int_equal(spool_get(fx->sp, dsn.in.qid, &m, err, sizeof err), 0);
	assert_string_equal(m->rcpts[0], "sender@example.test");
	spool_msg_free(m);
	assert_int_equal(
	    db_int(fx->dir, "SELECT state FROM recipients WHERE address = ?1", "r0.2@example.test"),
	    SPOOL_RCPT_FAILED);
	free(before);
	unbuild(b, 3);
	unbuild(&dsn, 1);
}

static void
test_apply_empty(void **state)
{
	struct fx *fx = *state;
	char err[256] = "";
	int full = -1;

	assert_int_equal(spool_apply(fx->sp, NULL, 0, &full, err, sizeof err), 0);
	assert_int_equal(full, 0);
	assert_int_equal(spool_apply(fx->sp, NULL, 1, &full, err, sizeof err), -1);
	assert_non_null(strstr(err, "NULL updates"));
}

/* The writer applies on its handle; the scheduler's handle sees it at once. */
static void
test_two_handles(void **state)
{
	struct fx *fx = *state;
	struct spool *reader = NULL;
	struct spool_result res;
	struct spool_update u = {0};
	struct spool_due *due = NULL;
	struct built b;
	char err[256] = "";

	assert_int_equal(spool_open(&reader, fx->dir, err, sizeof err), 0);
	build(&b, 1, 1, 100);
	insert_ok(fx->sp, &b, 1);
	assert_int_equal(load_pending(reader, &due), 1);
	free(due);
	res = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_DONE, 0,
	                            "250 ok"};
	u = (struct spool_update){
	    .msg_id = msg_id(fx->dir, b.in.qid), .results = &res, .nresults = 1, .attempts = 1};
	apply_ok(fx->sp, &u, 1);
	assert_int_equal(load_pending(reader, &due), 0);
	free(due);
	spool_close(reader);
	unbuild(&b, 1);
}

/* One claim or unclaim of message id; returns the claim with its results. */
static struct spool_claim
claim(struct spool *sp, int64_t id, int op, int max)
{
	struct spool_claim c = {.msg_id = id, .op = op, .max_unfinished = max};
	struct spool_claim *v = &c;
	char err[256] = "";

	if (spool_claim(sp, &v, 1, err, sizeof err) != 0)
		fail_msg("claim: %s", err);
	return c;
}

/*
 * Attempts that never finish (issue 8): a check before each attempt holds a
 * message whose count reached max_unfinished, each claim (when the attempt
 * opens a connection for it) counts one, the outcome clears the count; a
 * release starts over; held and deleted messages are skipped by the check.
 */
static void
test_claims(void **state)
{
	struct fx *fx = *state;
	struct built b[2];
	struct spool_claim c;
	struct spool_due *due = NULL;
	int64_t id, id2, rid;
	char err[256] = "";
	const char *cnt = "SELECT unfinished FROM messages WHERE qid = ?1";

	build(&b[0], 1, 1, 100);
	build(&b[1], 2, 1, 100);
	insert_ok(fx->sp, b, 2);
	id = msg_id(fx->dir, b[0].in.qid);
	id2 = msg_id(fx->dir, b[1].in.qid);
	c = claim(fx->sp, id, SPOOL_CHECK, 2);
	assert_int_equal(c.result, SPOOL_CHECKED);
	assert_int_equal(c.unfinished, 0);
	assert_string_equal(c.qid, b[0].in.qid);
	assert_int_equal(db_int(fx->dir, cnt, b[0].in.qid), 0); /* a check counts nothing */
	c = claim(fx->sp, id, SPOOL_CLAIM, 0);
	assert_int_equal(c.result, SPOOL_CLAIMED);
	assert_int_equal(c.unfinished, 0);
	/* the daemon died: the next start checks and claims it again, then it is held */
	c = claim(fx->sp, id, SPOOL_CHECK, 2);
	assert_int_equal(c.result, SPOOL_CHECKED);
	assert_int_equal(c.unfinished, 1);
	c = claim(fx->sp, id, SPOOL_CLAIM, 0);
	assert_int_equal(c.result, SPOOL_CLAIMED);
	c = claim(fx->sp, id, SPOOL_CHECK, 2);
	assert_int_equal(c.result, SPOOL_CLAIM_HELD);
	assert_int_equal(c.unfinished, 2);
	assert_int_equal(db_int(fx->dir, "SELECT state FROM messages WHERE qid = ?1", b[0].in.qid),
	                 SPOOL_MSG_HELD);
	assert_int_equal(load_pending(fx->sp, &due), 1); /* only the other one */
	assert_int_equal(due[0].id, id2);
	free(due);
	c = claim(fx->sp, id, SPOOL_CHECK, 2);
	assert_int_equal(c.result, SPOOL_CLAIM_SKIPPED);	/* held: no attempt */
	/* an attempt already under way is counted even when held meanwhile */
	c = claim(fx->sp, id, SPOOL_CLAIM, 0);
	assert_int_equal(c.result, SPOOL_CLAIMED);
	assert_int_equal(db_int(fx->dir, cnt, b[0].in.qid), 3);
	/* a release starts the count over */
	assert_int_equal(spool_queue_set_state(fx->sp, b[0].in.qid, SPOOL_MSG_QUEUED, T0, &rid,
	                                       err, sizeof err), 0);
	assert_int_equal(db_int(fx->dir, cnt, b[0].in.qid), 0);
	/* an unclaim gives one back, never below zero; 0 means never hold */
	c = claim(fx->sp, id2, SPOOL_CLAIM, 0);
	c = claim(fx->sp, id2, SPOOL_CLAIM, 0);
	c = claim(fx->sp, id2, SPOOL_CLAIM, 0);
	assert_int_equal(c.result, SPOOL_CLAIMED);
	assert_int_equal(db_int(fx->dir, cnt, b[1].in.qid), 3);
	c = claim(fx->sp, id2, SPOOL_CHECK, 0);
	assert_int_equal(c.result, SPOOL_CHECKED);
	assert_int_equal(c.unfinished, 3);
	claim(fx->sp, id2, SPOOL_UNCLAIM, 0);
	assert_int_equal(db_int(fx->dir, cnt, b[1].in.qid), 2);
	/* an attempt's outcome clears the count */
	struct spool_result res = {rcpt_id(fx->dir, "r0.2@example.test"), SPOOL_RCPT_PENDING,
	                           T0 + 60, "451 later"};
	struct spool_update u = {.msg_id = id2, .results = &res, .nresults = 1, .attempts = 1,
	                         .next_try = T0 + 60};
	apply_ok(fx->sp, &u, 1);
	assert_int_equal(db_int(fx->dir, cnt, b[1].in.qid), 0);
	claim(fx->sp, id2, SPOOL_UNCLAIM, 0);
	assert_int_equal(db_int(fx->dir, cnt, b[1].in.qid), 0);
	/* gone */
	assert_int_equal(spool_delete(fx->sp, b[1].in.qid, err, sizeof err), 0);
	c = claim(fx->sp, id2, SPOOL_CHECK, 2);
	assert_int_equal(c.result, SPOOL_CLAIM_SKIPPED);
	assert_string_equal(c.qid, "");
	c = claim(fx->sp, id2, SPOOL_CLAIM, 0);
	assert_int_equal(c.result, SPOOL_CLAIM_SKIPPED);
	unbuild(b, 2);
}

/*
 * results_only (one destination's 250s, recorded before the attempt ends):
 * only the recipients change, never the message's next_try, attempts or
 * unfinished count; the last pending recipient still deletes the message;
 * a message deleted meanwhile is skipped.
 */
static void
test_apply_results_only(void **state)
{
	struct fx *fx = *state;
	struct spool_result res;
	struct spool_update u;
	struct built b;
	int64_t id;

	build(&b, 1, 2, 100);
	insert_ok(fx->sp, &b, 1);
	id = msg_id(fx->dir, b.in.qid);
	assert_int_equal(claim(fx->sp, id, SPOOL_CLAIM, 0).result, SPOOL_CLAIMED);
	db_exec(fx->dir, "UPDATE messages SET next_try = 1700000123, attempts = 4");
	res = (struct spool_result){rcpt_id(fx->dir, "r0.1@example.test"), SPOOL_RCPT_DONE, 0,
	                            "250 ok"};
	u = (struct spool_update){.msg_id = id, .results = &res, .nresults = 1, .results_only = 1};
	apply_ok(fx->sp, &u, 1);
	assert_int_equal(db_int(fx->dir, "SELECT next_try FROM messages", NULL), 1700000123);
	assert_int_equal(db_int(fx->dir, "SELECT attempts FROM messages", NULL), 4);
	assert_int_equal(db_int(fx->dir, "SELECT unfinished FROM messages", NULL), 1);
	assert_int_equal(db_int(fx->dir,
	                        "SELECT state * 10 + attempts FROM recipients WHERE address = ?1",
	                        "r0.1@example.test"),
	                 SPOOL_RCPT_DONE * 10 + 1);
	assert_int_equal(
	    db_int(fx->dir, "SELECT state FROM recipients WHERE address = ?1", "r1.1@example.test"),
	    SPOOL_RCPT_PENDING);
	/* the same result again is a caller bug (counted twice): all or nothing */
	char err[256] = "";
	assert_int_equal(apply(fx->sp, &u, 1, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "not pending"));

	res.rcpt_id = rcpt_id(fx->dir, "r1.1@example.test");
	apply_ok(fx->sp, &u, 1);
	assert_int_equal(db_int(fx->dir, "SELECT count(*) FROM messages", NULL), 0);
	assert_int_equal(db_int(fx->dir, "SELECT count(*) FROM recipients", NULL), 0);
	apply_ok(fx->sp, &u, 1); /* gone: skipped */
	unbuild(&b, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_load_pending_empty),
	    T(test_load_pending),
	    T(test_load_pending_plan),
	    T(test_load_work),
	    T(test_load_work_errors),
	    T(test_apply_mixed),
	    T(test_apply_deletes_finished),
	    T(test_apply_bounce), T(test_apply_retry_forgets_bounce_id),
	    T(test_apply_all_or_nothing),
	    T(test_apply_disk_full),
	    T(test_apply_empty),
	    T(test_two_handles),
	    T(test_claims),
	    T(test_apply_results_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
