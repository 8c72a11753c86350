/*
 * spool_sts: the sts_policies table (schema 6): the last MTA-STS policy
 * fetched per recipient domain, so a restart keeps applying it until its
 * max_age runs out (RFC 8461 5.1) even while the policy host is down.
 * Written from the writer thread (WRITER_FN), read once at start-up.
 * Rare statements: prepared per call, not in spool_sql[].
 */
#include <sqlite3.h>
#include <string.h>

#include "spool_int.h"

static int
sql_fail(struct spool *sp, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
	spool_seterr(err, errlen, "spool: %s: %s", what, sqlite3_errmsg(sp->db));
	sqlite3_finalize(st);
	return -1;
}

int
spool_sts_put(struct spool *sp, const struct spool_sts_row *r, int64_t now, char *err,
              size_t errlen)
{
	static const char del[] = "DELETE FROM sts_policies WHERE expires <= ?1";
	static const char ins[] = "INSERT OR REPLACE INTO sts_policies"
	                          " (domain, id, mode, mx, max_age, policy, fetched, expires)"
	                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	sqlite3_stmt *st = NULL;

	/* expired policies are of no use any more (RFC 8461 5.1): keep the table small */
	if (sqlite3_prepare_v2(sp->db, del, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(sp, st, "sts_policies prune", err, errlen);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(sp->db, ins, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, r->domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, r->id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, r->mode, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, r->mx, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, r->max_age) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, r->policy, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 7, r->fetched) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 8, r->expires) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(sp, st, "sts_policies put", err, errlen);
	sqlite3_finalize(st);
	return 0;
}

/* One sts_policies row to the caller's callback. */
struct sts_sink {
	int (*cb)(void *arg, const struct spool_sts_row *r);
	void *arg;
};

static int
sts_each(void *ctx, sqlite3_stmt *st)
{
	const struct sts_sink *k = ctx;
	struct spool_sts_row r = {
	    .domain = spool_col_text(st, 0),
	    .id = spool_col_text(st, 1),
	    .mode = spool_col_text(st, 2),
	    .mx = spool_col_text(st, 3),
	    .max_age = sqlite3_column_int64(st, 4),
	    .policy = spool_col_text(st, 5),
	    .fetched = sqlite3_column_int64(st, 6),
	    .expires = sqlite3_column_int64(st, 7),
	};

	return k->cb(k->arg, &r);
}

int
spool_sts_load(struct spool *sp, int64_t now, int (*cb)(void *arg, const struct spool_sts_row *r),
               void *arg, char *err, size_t errlen)
{
	static const char sql[] = "SELECT domain, id, mode, mx, max_age, policy, fetched, expires"
	                          " FROM sts_policies WHERE expires > ?1";
	struct sts_sink k = {cb, arg};
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, now) != SQLITE_OK || spool_step_rows(st, sts_each, &k) < 0)
		return sql_fail(sp, st, "sts_policies load", err, errlen);
	sqlite3_finalize(st);
	return 0;
}
