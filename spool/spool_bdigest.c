/*
 * spool_bdigest: the bounce_digest tables (schema 9): failures waiting for
 * a bounce owner's daily digest (bounce_owner = WHO ADDRESS digest). Rows
 * are added inside spool_apply's transaction, with the failures that
 * caused them, so a crash can neither lose an entry nor add one twice; the
 * digest job reads an owner's rows (read transaction) and, once its
 * message is queued, removes them (writer). Rare statements: prepared per
 * call, not in spool_sql[].
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

static int
sql_fail(struct spool *sp, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
	int rc = sqlite3_errcode(sp->db);

	spool_seterr(err, errlen, "spool: bounce digest %s: %s", what, sqlite3_errmsg(sp->db));
	sqlite3_finalize(st);
	return rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_ERROR : rc;
}

static int
add_one(struct spool *sp, const struct spool_bdigest *e, bool full, char *err, size_t errlen)
{
	static const char ins[] = "INSERT INTO bounce_digest"
	                          " (owner, failed_at, qid, sender, rcpt, status, reason)"
	                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	/* past the cap only counted: memory and disk stay bounded whatever fails */
	static const char drop[] = "INSERT INTO bounce_digest_dropped (owner, n) VALUES (?1, 1)"
	                           " ON CONFLICT(owner) DO UPDATE SET n = n + 1";
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sp->db, full ? drop : ins, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, e->owner, -1, SQLITE_STATIC) != SQLITE_OK)
		return sql_fail(sp, st, "add", err, errlen);
	if (!full && (sqlite3_bind_int64(st, 2, (int64_t)e->when) != SQLITE_OK ||
	              sqlite3_bind_text(st, 3, e->qid, -1, SQLITE_STATIC) != SQLITE_OK ||
	              sqlite3_bind_text(st, 4, e->sender, -1, SQLITE_STATIC) != SQLITE_OK ||
	              sqlite3_bind_text(st, 5, e->rcpt, -1, SQLITE_STATIC) != SQLITE_OK ||
	              sqlite3_bind_text(st, 6, e->status, -1, SQLITE_STATIC) != SQLITE_OK ||
	              sqlite3_bind_text(st, 7, e->reason, -1, SQLITE_STATIC) != SQLITE_OK))
		return sql_fail(sp, st, "add", err, errlen);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(sp, st, "add", err, errlen);
	sqlite3_finalize(st);
	return SQLITE_OK;
}

int
spool_bdigest_add(struct spool *sp, const struct spool_bdigest *v, size_t n, char *err,
                  size_t errlen)
{
	int64_t rows = 0;
	int rc = SQLITE_OK;

	if (v == NULL)
		return SQLITE_OK;
	if (spool_pragma_int(sp->db, "SELECT count(*) FROM bounce_digest", &rows) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: bounce digest count: %s", sqlite3_errmsg(sp->db));
		return sqlite3_errcode(sp->db);
	}
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++, rows++)
		rc = add_one(sp, &v[i], rows >= SPOOL_BDIGEST_MAX, err, errlen);
	return rc;
}

static void
copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	snprintf(dst, len, "%s", spool_col_text(st, col));
}

/* The next owner after `after` into out->owner ("" when none). */
static int
next_owner(struct spool *sp, const char *after, struct spool_bdigest_set *out, char *err,
           size_t errlen)
{
	static const char sql[] = "SELECT owner FROM bounce_digest WHERE owner > ?1 UNION"
	                          " SELECT owner FROM bounce_digest_dropped WHERE owner > ?1"
	                          " ORDER BY 1 LIMIT 1";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC) != SQLITE_OK)
		return sql_fail(sp, st, "owner", err, errlen), -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		copy_col(out->owner, sizeof out->owner, st, 0);
	else if (rc != SQLITE_DONE)
		return sql_fail(sp, st, "owner", err, errlen), -1;
	sqlite3_finalize(st);
	return 0;
}

/* One row of the owner's entries: kept while fewer than max, else only counted. */
static void
entry_row(struct spool_bdigest_set *out, size_t max, sqlite3_stmt *st)
{
	struct spool_bdigest *e;

	out->last_id = sqlite3_column_int64(st, 0);
	if (out->n >= max) {
		out->more++;
		return;
	}
	e = &out->v[out->n++];
	snprintf(e->owner, sizeof e->owner, "%s", out->owner);
	e->when = (time_t)sqlite3_column_int64(st, 1);
	copy_col(e->qid, sizeof e->qid, st, 2);
	copy_col(e->sender, sizeof e->sender, st, 3);
	copy_col(e->rcpt, sizeof e->rcpt, st, 4);
	copy_col(e->status, sizeof e->status, st, 5);
	copy_col(e->reason, sizeof e->reason, st, 6);
}

static int
load_entries(struct spool *sp, size_t max, struct spool_bdigest_set *out, char *err,
             size_t errlen)
{
	static const char sql[] = "SELECT id, failed_at, qid, sender, rcpt, status, reason"
	                          " FROM bounce_digest WHERE owner = ?1 ORDER BY id";
	static const char dropped[] = "SELECT n FROM bounce_digest_dropped WHERE owner = ?1";
	sqlite3_stmt *st = NULL;
	int rc;

	out->v = calloc(max ? max : 1, sizeof *out->v);
	if (out->v == NULL) {
		spool_seterr(err, errlen, "spool: bounce digest load: out of memory");
		return -1;
	}
	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, out->owner, -1, SQLITE_STATIC) != SQLITE_OK)
		return sql_fail(sp, st, "load", err, errlen), -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		entry_row(out, max, st);
	if (rc != SQLITE_DONE)
		return sql_fail(sp, st, "load", err, errlen), -1;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(sp->db, dropped, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, out->owner, -1, SQLITE_STATIC) != SQLITE_OK)
		return sql_fail(sp, st, "load", err, errlen), -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		out->dropped = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return sql_fail(sp, st, "load", err, errlen), -1;
	sqlite3_finalize(st);
	out->more += out->dropped > 0 ? (uint64_t)out->dropped : 0;
	return 0;
}

int
spool_bdigest_load(struct spool *sp, const char *after, size_t max,
                   struct spool_bdigest_set *out, char *err, size_t errlen)
{
	int ret;

	memset(out, 0, sizeof *out);
	if (spool_read_begin(sp, "bounce digest load", err, errlen) != 0)
		return -1;
	ret = next_owner(sp, after ? after : "", out, err, errlen);
	if (ret == 0 && out->owner[0] != '\0')
		ret = load_entries(sp, max, out, err, errlen);
	spool_read_end(sp);
	if (ret != 0)
		spool_bdigest_set_free(out);
	return ret;
}

void
spool_bdigest_set_free(struct spool_bdigest_set *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* A transaction left open by a failed step would hold the write lock. */
static void
rollback(struct spool *sp)
{
	if (!sqlite3_get_autocommit(sp->db))
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
exec_owner(struct spool *sp, const char *sql, const char *owner, int64_t n, char *err,
           size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, n) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(sp, st, "done", err, errlen), -1;
	sqlite3_finalize(st);
	return 0;
}

int
spool_bdigest_done(struct spool *sp, const struct spool_bdigest_set *s, char *err,
                   size_t errlen)
{
	int ret;

	rollback(sp);
	if (sqlite3_exec(sp->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: bounce digest done: %s", sqlite3_errmsg(sp->db));
		return -1;
	}
	ret = exec_owner(sp, "DELETE FROM bounce_digest WHERE owner = ?1 AND id <= ?2", s->owner,
	                 s->last_id, err, errlen);
	if (ret == 0)
		ret = exec_owner(sp,
		                 "UPDATE bounce_digest_dropped SET n = n - ?2 WHERE owner = ?1",
		                 s->owner, s->dropped, err, errlen);
	if (ret == 0)
		ret = exec_owner(sp, "DELETE FROM bounce_digest_dropped WHERE owner = ?1 AND n <= ?2",
		                 s->owner, 0, err, errlen);
	if (ret == 0 && sqlite3_exec(sp->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: bounce digest done: %s", sqlite3_errmsg(sp->db));
		ret = -1;
	}
	if (ret != 0)
		rollback(sp);
	return ret;
}
