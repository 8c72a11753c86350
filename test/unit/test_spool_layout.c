/*
 * Unit tests for the spool's size on disk (issue 12): schema step 4 (bodies
 * in a rowid table) upgrading a real version-3 spool whose messages keep
 * their bodies in body_chunks, the conversion of such a file to
 * auto_vacuum = INCREMENTAL, the drop of body_chunks once empty, and
 * spool_vacuum_step giving a drained spool's pages back in small steps.
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

/*
 * The schema of a version-3 spool, as spool_schema.c steps 1-3 made it
 * (no auto_vacuum, bodies in the WITHOUT ROWID body_chunks).
 */
static const char v3_schema[] =
    "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, qid TEXT UNIQUE NOT NULL,"
    " sender TEXT NOT NULL, received INTEGER, size INTEGER, client_ip TEXT, helo TEXT,"
    " auth_user TEXT, flags INTEGER, next_try INTEGER, attempts INTEGER DEFAULT 0,"
    " lease_until INTEGER DEFAULT 0, state INTEGER DEFAULT 0);"
    "CREATE TABLE recipients (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL REFERENCES"
    " messages(id) ON DELETE CASCADE, address TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
    " next_try INTEGER, attempts INTEGER DEFAULT 0, last_reply TEXT);"
    "CREATE TABLE body_chunks (msg_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE"
    " CASCADE, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (msg_id, seq))"
    " WITHOUT ROWID;"
    "CREATE INDEX recipients_msg ON recipients(msg_id, state);"
    "CREATE INDEX recipients_due ON recipients(state, next_try);"
    "CREATE INDEX messages_due ON messages(next_try);"
    "CREATE TABLE audit (client_ip TEXT NOT NULL, auth_user TEXT NOT NULL DEFAULT '',"
    " tls_version TEXT NOT NULL DEFAULT '', tls_cipher TEXT NOT NULL DEFAULT '',"
    " worst_tls TEXT NOT NULL DEFAULT '', auth_mech TEXT NOT NULL DEFAULT '',"
    " plaintext_auth INTEGER NOT NULL DEFAULT 0, allowlisted INTEGER NOT NULL DEFAULT 0,"
    " senders TEXT NOT NULL DEFAULT '', header_from TEXT NOT NULL DEFAULT '',"
    " messages INTEGER NOT NULL DEFAULT 0, first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL, PRIMARY KEY (client_ip, auth_user)) WITHOUT ROWID;"
    "CREATE INDEX audit_last_seen ON audit(last_seen);"
    "ALTER TABLE messages ADD COLUMN unfinished INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 3;";

/* Old messages: qid, body size, chunk size the version-3 code used (256 KB). */
static const struct {
	const char *qid;
	size_t len;
} old_msgs[] = {
    {"00000000000000a1", 1562},
    {"00000000000000a2", 300 * 1024}, /* two chunks: 256 KB + 44 KB */
    {"00000000000000a3", 0},
};
#define NOLD (sizeof old_msgs / sizeof old_msgs[0])
#define OLD_CHUNK (256 * 1024)

struct fx {
	char base[64];
	char dir[96];
	char path[128];
	struct spool *sp;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	if (tu_spool_dirs("test_spool_layout", fx->base, sizeof fx->base, fx->dir,
	                  sizeof fx->dir) != 0) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof fx->path, "%s/spool.db", fx->dir);
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

static void
db_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static char *
gen_body(size_t len, unsigned seed)
{
	char *b = malloc(len + 1);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < len; i++)
		b[i] = (char)((i * 31 + seed * 7 + i / 251) & 0xff);
	return b;
}

/* One old message as the version-3 code stored it, through raw SQL. */
static void
put_old(sqlite3 *db, int64_t id, const char *qid, const char *body, size_t len)
{
	sqlite3_stmt *st = NULL;
	size_t off;
	int64_t seq;
	char sql[256];

	snprintf(sql, sizeof sql,
	         "INSERT INTO messages (id, qid, sender, received, size, flags, next_try)"
	         " VALUES (%lld, '%s', 's@example.test', 1700000000, %zu, 0, 1700000000);"
	         "INSERT INTO recipients (msg_id, address, next_try)"
	         " VALUES (%lld, 'r@example.test', 1700000000);",
	         (long long)id, qid, len, (long long)id);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "INSERT INTO body_chunks VALUES (?1, ?2, ?3)", -1, &st, NULL),
	    SQLITE_OK);
	for (off = 0, seq = 0; off < len; off += OLD_CHUNK, seq++) {
		size_t n = len - off < OLD_CHUNK ? len - off : OLD_CHUNK;

		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_blob(st, 3, body + off, (int)n, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
}

/* A version-3 spool in WAL mode holding old_msgs[], made as mxrelay 3 made it. */
static void
make_v3_spool(struct fx *fx, char **bodies)
{
	sqlite3 *db = NULL;
	size_t i;

	assert_int_equal(mkdir(fx->dir, 0700), 0);
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL; BEGIN;", NULL, NULL, NULL),
	                 SQLITE_OK);
	if (sqlite3_exec(db, v3_schema, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("v3 schema: %s", sqlite3_errmsg(db));
	for (i = 0; i < NOLD; i++) {
		bodies[i] = gen_body(old_msgs[i].len, (unsigned)i);
		put_old(db, (int64_t)i + 1, old_msgs[i].qid, bodies[i], old_msgs[i].len);
	}
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA auto_vacuum"), 0);
}

static void
assert_body(struct spool *sp, const char *qid, const char *want, size_t len)
{
	char err[256] = "";
	char *body = NULL;
	size_t got = 0;

	if (spool_read_body(sp, qid, &body, &got, err, sizeof err) != 0)
		fail_msg("read body %s: %s", qid, err);
	assert_int_equal(got, len);
	assert_true(len == 0 || memcmp(body, want, len) == 0);
	free(body);
}

/* What a delivery attempt loads: the body of an old message, byte for byte. */
static void
assert_deliverable(struct spool *sp, int64_t id, const char *want, size_t len)
{
	char err[256] = "";
	struct spool_work *w = NULL;

	if (spool_load_work(sp, id, &w, err, sizeof err) != 0)
		fail_msg("load work %lld: %s", (long long)id, err);
	assert_int_equal(w->nrcpts, 1);
	assert_int_equal(w->body_len, len);
	assert_true(len == 0 || memcmp(w->body, want, len) == 0);
	spool_work_free(w);
}

static void
vacuum_ok(struct spool *sp, struct spool_vacuum *v)
{
	char err[256] = "";

	if (spool_vacuum_step(sp, v, err, sizeof err) != 0)
		fail_msg("vacuum step: %s", err);
}

/*
 * Schema step 4 on a version-3 spool with mail in it: the old bodies stay
 * readable and deliverable, new mail goes to bodies, the first vacuum step
 * converts the small old file to INCREMENTAL, and body_chunks is dropped
 * by the first step after a restart once its messages are gone.
 */
static void
test_upgrade_from_v3(void **state)
{
	struct fx *fx = *state;
	char *bodies[NOLD], *nbody = gen_body(1562, 99), err[256] = "";
	struct spool_msg_in in = {.qid = "00000000000000b1",
	                          .sender = "",
	                          .body = nbody,
	                          .body_len = 1562,
	                          .received = 1700000100};
	const char *rcpt = "n@example.test";
	struct spool_msg_in *p = &in;
	struct spool_vacuum v;
	size_t i;

	make_v3_spool(fx, bodies);
	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA user_version"), SPOOL_SCHEMA_VERSION);
	assert_true(SPOOL_SCHEMA_VERSION >= 4);
	for (i = 0; i < NOLD; i++) {
		assert_body(fx->sp, old_msgs[i].qid, bodies[i], old_msgs[i].len);
		assert_deliverable(fx->sp, (int64_t)i + 1, bodies[i], old_msgs[i].len);
	}
	in.rcpts = &rcpt;
	in.nrcpts = 1;
	assert_int_equal(spool_insert_batch(fx->sp, &p, 1, NULL, err, sizeof err), 0);
	assert_int_equal(tu_db_int(fx->path, "SELECT count(*) FROM bodies WHERE msg_id = 4"), 2);
	assert_body(fx->sp, in.qid, nbody, in.body_len);

	vacuum_ok(fx->sp, &v); /* the first step: convert, keep the non-empty body_chunks */
	assert_int_equal(v.converted, 1);
	assert_int_equal(v.dropped_old, 0);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA auto_vacuum"), 2);
	for (i = 0; i < NOLD; i++) {
		assert_body(fx->sp, old_msgs[i].qid, bodies[i], old_msgs[i].len);
		assert_int_equal(spool_delete(fx->sp, old_msgs[i].qid, err, sizeof err), 0);
	}
	assert_int_equal(tu_db_int(fx->path, "SELECT count(*) FROM body_chunks"), 0);

	spool_close(fx->sp); /* a restart */
	fx->sp = tu_spool_open(fx->dir);
	vacuum_ok(fx->sp, &v);
	assert_int_equal(v.dropped_old, 1);
	assert_int_equal(v.converted, 0);
	assert_int_equal(v.pending, 0);
	assert_int_equal(
	    tu_db_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name = 'body_chunks'"),
	    0);
	assert_body(fx->sp, in.qid, nbody, in.body_len);
	for (i = 0; i < NOLD; i++)
		free(bodies[i]);
	free(nbody);
}

/*
 * An old spool holding 64 MB or more is left as it is (one VACUUM would
 * hold the writer for seconds): pending, and later steps do nothing. Once
 * the queue is small, the next start converts it.
 */
static void
test_big_old_spool_pending(void **state)
{
	struct fx *fx = *state;
	char *bodies[NOLD];
	struct spool_vacuum v;
	size_t i;

	make_v3_spool(fx, bodies);
	db_exec(fx->path,
	        "INSERT INTO messages (id, qid, sender, received, size, flags, next_try) VALUES"
	        " (10, '00000000000000c1', 's@example.test', 1700000000, 68157440, 0, 1700000000);"
	        "INSERT INTO recipients (msg_id, address) VALUES (10, 'r@example.test');"
	        "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 259)"
	        " INSERT INTO body_chunks SELECT 10, n, zeroblob(262144) FROM s");
	fx->sp = tu_spool_open(fx->dir);
	vacuum_ok(fx->sp, &v);
	assert_int_equal(v.pending, 1);
	assert_int_equal(v.converted, 0);
	assert_true(v.live_bytes >= 64 * 1024 * 1024);
	vacuum_ok(fx->sp, &v);
	assert_int_equal(v.pending + v.converted + v.more + (int)v.freed_pages, 0);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA auto_vacuum"), 0);

	db_exec(fx->path, "PRAGMA foreign_keys = ON; DELETE FROM messages WHERE id = 10");
	spool_close(fx->sp); /* the next start */
	fx->sp = tu_spool_open(fx->dir);
	vacuum_ok(fx->sp, &v);
	assert_int_equal(v.converted, 1);
	assert_int_equal(v.pending, 0);
	assert_true(v.freed_pages > 64 * 1024 * 1024 / 4096);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA auto_vacuum"), 2);
	for (i = 0; i < NOLD; i++) {
		assert_body(fx->sp, old_msgs[i].qid, bodies[i], old_msgs[i].len);
		free(bodies[i]);
	}
}

static int64_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static int64_t
fx_spool_bytes(const struct fx *fx)
{
	char wal[160];

	snprintf(wal, sizeof wal, "%s-wal", fx->path);
	return file_size(fx->path) + file_size(wal);
}

#define NFILL 4000
#define FILL_LEN 1562 /* what smtp-source -l 1300 makes once spooled */

static void
fill(struct spool *sp, const char *body)
{
	static struct spool_msg_in in[NFILL];
	struct spool_msg_in *p[500];
	const char *rcpt = "r@example.test";
	char err[256] = "";
	size_t i, j;

	for (i = 0; i < NFILL; i += 500) {
		for (j = 0; j < 500; j++) {
			struct spool_msg_in *m = &in[i + j];

			memset(m, 0, sizeof *m);
			snprintf(m->qid, sizeof m->qid, "%016zx", i + j + 1);
			m->sender = "s@example.test";
			m->rcpts = &rcpt;
			m->nrcpts = 1;
			m->body = body;
			m->body_len = FILL_LEN;
			m->received = 1700000000;
			p[j] = m;
		}
		if (spool_insert_batch(sp, p, 500, NULL, err, sizeof err) != 0)
			fail_msg("insert: %s", err);
	}
}

/*
 * A drained spool gives its pages back in steps of at most 256 pages and
 * ends below 10 % of its full size, WAL included; a full one gives nothing.
 * Bodies take at most 1.5x their bytes on disk (4,934 B per 1,562 B
 * message before step 4).
 */
static void
test_vacuum_shrinks_drained(void **state)
{
	struct fx *fx = *state;
	char *body = gen_body(FILL_LEN, 7);
	struct spool_vacuum v;
	int64_t peak, pages, steps = 0;

	fx->sp = tu_spool_open(fx->dir);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA auto_vacuum"), 2);
	assert_int_equal(tu_db_int(fx->path, "PRAGMA page_size"), 4096);
	fill(fx->sp, body);
	do
		vacuum_ok(fx->sp, &v);
	while (v.more && ++steps < 10);
	assert_int_equal(v.freed_pages, 0);
	pages = tu_db_int(fx->path, "PRAGMA page_count");
	if (pages * 4096 > (int64_t)NFILL * FILL_LEN * 3 / 2)
		fail_msg("%lld B per %d B message", (long long)(pages * 4096 / NFILL), FILL_LEN);
	peak = fx_spool_bytes(fx);

	db_exec(fx->path, "PRAGMA foreign_keys = ON; DELETE FROM messages");
	for (steps = 0; steps < 1000; steps++) {
		vacuum_ok(fx->sp, &v);
		/* 256 free pages, and the pointer-map page among them when it is cut off */
		if (v.freed_pages > 257)
			fail_msg("step %lld freed %lld pages", (long long)steps,
			         (long long)v.freed_pages);
		if (v.later)
			sleep(1);
		else if (!v.more)
			break;
	}
	if (fx_spool_bytes(fx) * 10 >= peak)
		fail_msg("drained spool %lld B, full %lld B", (long long)fx_spool_bytes(fx),
		         (long long)peak);
	fill(fx->sp, body); /* and it still takes mail */
	vacuum_ok(fx->sp, &v);
	assert_int_equal(v.freed_pages, 0);
	free(body);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_upgrade_from_v3),
	    T(test_big_old_spool_pending),
	    T(test_vacuum_shrinks_drained),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
