/*
 * spool_tlsstats: the write side of the outbound TLS counters (schema 6,
 * tables tls_stats and tls_failures; spool.h spool_tls_add).
 *
 * The daemon aggregates in memory (mta/delivery/tlsstats.c) and hands a
 * batch here every minute on the writer: one transaction adds the batch to
 * the counts (UPSERT, count = count + new) and prunes days older than 40, so
 * the tables stay small (TLS-RPT reports one day, RFC 8460 4.1; the admin
 * report looks back a month at most). Never reads them: spool_tlsread.c.
 */
#include <stdio.h>

#include "spool_int.h"

#define KEEP_DAYS 40

static const char SQL_ROW[] =
    "INSERT INTO tls_stats (day, domain, policy, policy_string, mx, sessions_ok,"
    " sessions_failed, delivered, verified) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (day, domain, policy, mx) DO UPDATE SET"
    " policy_string = CASE WHEN excluded.policy_string <> '' THEN excluded.policy_string"
    " ELSE policy_string END,"
    " sessions_ok = sessions_ok + excluded.sessions_ok,"
    " sessions_failed = sessions_failed + excluded.sessions_failed,"
    " delivered = delivered + excluded.delivered, verified = verified + excluded.verified";

static const char SQL_FAIL[] =
    "INSERT INTO tls_failures (day, domain, policy, result_type, sending_ip, mx, mx_ip, detail,"
    " count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (day, domain, policy, result_type, sending_ip, mx, mx_ip) DO UPDATE SET"
    " detail = excluded.detail, count = count + excluded.count";

static const char *
nz(const char *s)
{
	return s ? s : "";
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, nz(s), -1, SQLITE_STATIC);
}

/* Run the bound statement once and make it ready for the next row: SQLITE_OK or the error. */
static int
step_once(sqlite3_stmt *st)
{
	int rc =
	    sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(sqlite3_db_handle(st));

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int
add_rows(sqlite3_stmt *st, const struct spool_tls_row *rows, size_t n)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		const struct spool_tls_row *r = &rows[i];
		sqlite3_bind_int64(st, 1, r->day);
		bind_text(st, 2, r->domain);
		bind_text(st, 3, r->policy);
		bind_text(st, 4, r->policy_string);
		bind_text(st, 5, r->mx);
		sqlite3_bind_int64(st, 6, r->sessions_ok);
		sqlite3_bind_int64(st, 7, r->sessions_failed);
		sqlite3_bind_int64(st, 8, r->delivered);
		sqlite3_bind_int64(st, 9, r->verified);
		rc = step_once(st);
	}
	return rc;
}

static int
add_fails(sqlite3_stmt *st, const struct spool_tls_failure *f, size_t n)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_bind_int64(st, 1, f[i].day);
		bind_text(st, 2, f[i].domain);
		bind_text(st, 3, f[i].policy);
		bind_text(st, 4, f[i].result_type);
		bind_text(st, 5, f[i].sending_ip);
		bind_text(st, 6, f[i].mx);
		bind_text(st, 7, f[i].mx_ip);
		bind_text(st, 8, f[i].detail);
		sqlite3_bind_int64(st, 9, f[i].count);
		rc = step_once(st);
	}
	return rc;
}

static int
prune(sqlite3 *db, int64_t today)
{
	static const char *const sql[] = {"DELETE FROM tls_stats WHERE day < ?1",
	                                  "DELETE FROM tls_failures WHERE day < ?1"};
	int rc = SQLITE_OK;

	for (size_t i = 0; i < 2 && rc == SQLITE_OK; i++) {
		sqlite3_stmt *st = NULL;
		rc = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, today - KEEP_DAYS);
			rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
		}
		sqlite3_finalize(st);
	}
	return rc;
}

int
spool_tls_add(struct spool *sp, const struct spool_tls_row *rows, size_t nrows,
              const struct spool_tls_failure *fails, size_t nfails, int64_t today, char *err,
              size_t errlen)
{
	sqlite3_stmt *srow = NULL, *sfail = NULL;
	int rc;

	rc = spool_step_done(sp, ST_BEGIN_WRITE, "tls stats: begin", NULL, err, errlen);
	if (rc != SQLITE_OK)
		return -1;
	rc = sqlite3_prepare_v2(sp->db, SQL_ROW, -1, &srow, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(sp->db, SQL_FAIL, -1, &sfail, NULL);
	if (rc == SQLITE_OK)
		rc = add_rows(srow, rows, nrows);
	if (rc == SQLITE_OK)
		rc = add_fails(sfail, fails, nfails);
	if (rc == SQLITE_OK)
		rc = prune(sp->db, today);
	sqlite3_finalize(srow);
	sqlite3_finalize(sfail);
	if (rc != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: tls stats: %s", sqlite3_errmsg(sp->db));
		spool_rollback(sp);
		return -1;
	}
	return spool_step_done(sp, ST_COMMIT, "tls stats: commit", NULL, err, errlen) == SQLITE_OK
	           ? 0
	           : (spool_rollback(sp), -1);
}
