/*
 * spool_tlsread: the read side of the outbound TLS counters (schema 6) and
 * the TLS-RPT bookkeeping.
 *
 * spool_tls_list, spool_tlsrpt_due, spool_tlsrpt_sent and spool_sts_policy_text open spool.db
 * read-only on their own handle (like spool_audit_list): mxrelayctl uses
 * them while the daemon runs, the daily report job on a worker thread. spool_tlsrpt_mark writes
 * one tlsrpt_sent row on the writer's handle (autocommit: one statement).
 * Never creates the file and never migrates it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spool_int.h"

#define TLS_SCHEMA 6 /* the first schema with tls_stats, tls_failures, tlsrpt_sent */

/* Open DIR/spool.db read-only and check it has the TLS tables. 0 / -1. */
static int
open_ro(const char *dir, const char *what, sqlite3 **db, char *err, size_t errlen)
{
	size_t len = strlen(dir) + sizeof "/spool.db";
	char *path = malloc(len);
	struct stat sb;
	int64_t v = 0;
	int ret = -1;

	*db = NULL;
	if (path == NULL) {
		spool_seterr(err, errlen, "spool: %s: out of memory", what);
		return -1;
	}
	snprintf(path, len, "%s/spool.db", dir);
	/* never create it: SQLite would make an empty file for a mistyped data_dir */
	if (stat(path, &sb) != 0) {
		spool_seterr(err, errlen, errno == ENOENT ? "no spool database at %s%s" : "%s: %s",
		             path, errno == ENOENT ? "" : strerror(errno));
		goto done;
	}
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: %s %s: %s", what, path,
		             *db ? sqlite3_errmsg(*db) : "out of memory");
		goto done;
	}
	sqlite3_busy_timeout(*db, 5000);
	if (spool_pragma_int(*db, "PRAGMA user_version", &v) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: %s %s: %s", what, path, sqlite3_errmsg(*db));
		goto done;
	}
	if (v < TLS_SCHEMA || v > SPOOL_SCHEMA_VERSION) {
		spool_seterr(err, errlen,
		             v < TLS_SCHEMA
		                 ? "%s has schema version %lld, which has no TLS counters"
		                   " yet: start this version of mxrelayd once to upgrade it"
		                 : "%s: schema version %lld is newer than this mxrelay",
		             path, (long long)v);
		goto done;
	}
	ret = 0;
done:
	if (ret != 0 && *db) {
		sqlite3_close(*db);
		*db = NULL;
	}
	free(path);
	return ret;
}

/* The day range and pair cap of a query: ?1 from, ?2 to, ?3 the most pairs (those it uses). */
struct span {
	int64_t from, to, max;
};

static void
bind_span(sqlite3_stmt *st, const struct span *sp)
{
	int n = sqlite3_bind_parameter_count(st);

	if (n >= 1)
		sqlite3_bind_int64(st, 1, sp->from);
	if (n >= 2)
		sqlite3_bind_int64(st, 2, sp->to);
	if (n >= 3)
		sqlite3_bind_int64(st, 3, sp->max);
}

static const char rows_all[] =
    "SELECT day, domain, policy, policy_string, mx, sessions_ok, sessions_failed,"
    " delivered, verified FROM tls_stats WHERE day >= ?1 ORDER BY day, domain, policy, mx";
static const char fails_all[] =
    "SELECT day, domain, policy, result_type, sending_ip, mx, mx_ip, detail, count"
    " FROM tls_failures WHERE day >= ?1"
    " ORDER BY day, domain, policy, result_type, mx, mx_ip, sending_ip";

/* The caller's callbacks for tls_stats rows and tls_failures rows (either may be NULL). */
struct tls_sink {
	int (*row_cb)(void *arg, const struct spool_tls_row *r);
	int (*fail_cb)(void *arg, const struct spool_tls_failure *f);
	void *arg;
};

static int
row_each(void *ctx, sqlite3_stmt *st)
{
	const struct tls_sink *k = ctx;
	struct spool_tls_row r = {
	    .day = sqlite3_column_int64(st, 0),
	    .domain = spool_col_text(st, 1),
	    .policy = spool_col_text(st, 2),
	    .policy_string = spool_col_text(st, 3),
	    .mx = spool_col_text(st, 4),
	    .sessions_ok = sqlite3_column_int64(st, 5),
	    .sessions_failed = sqlite3_column_int64(st, 6),
	    .delivered = sqlite3_column_int64(st, 7),
	    .verified = sqlite3_column_int64(st, 8),
	};

	return k->row_cb ? k->row_cb(k->arg, &r) : 0;
}

static int
fail_each(void *ctx, sqlite3_stmt *st)
{
	const struct tls_sink *k = ctx;
	struct spool_tls_failure f = {
	    .day = sqlite3_column_int64(st, 0),
	    .domain = spool_col_text(st, 1),
	    .policy = spool_col_text(st, 2),
	    .result_type = spool_col_text(st, 3),
	    .sending_ip = spool_col_text(st, 4),
	    .mx = spool_col_text(st, 5),
	    .mx_ip = spool_col_text(st, 6),
	    .detail = spool_col_text(st, 7),
	    .count = sqlite3_column_int64(st, 8),
	};

	return k->fail_cb ? k->fail_cb(k->arg, &f) : 0;
}

/*
 * Run sql over the span, each row to each: 0 all read, 1 a callback asked to
 * stop, -1 error (err names table).
 */
static int
list_query(sqlite3 *db, const char *sql, const struct span *sp, const char *table,
           int (*each)(void *, sqlite3_stmt *), const struct tls_sink *k, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		bind_span(st, sp);
		rc = spool_step_rows(st, each, (void *)k);
	}
	if (rc < 0)
		spool_seterr(err, errlen, "spool: %s: %s", table, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

/* Rows then failures of one snapshot: 0 / -1 (a callback's stop is not an error). */
static int
list_both(sqlite3 *db, const char *rows_sql, const char *fails_sql, const struct span *sp,
          const struct tls_sink *k, char *err, size_t errlen)
{
	int rc = list_query(db, rows_sql, sp, "tls_stats", row_each, k, err, errlen);

	if (rc == 0)
		rc = list_query(db, fails_sql, sp, "tls_failures", fail_each, k, err, errlen);
	return rc > 0 ? 0 : rc;
}

int
spool_tls_list(const char *dir, int64_t since_day,
               int (*row_cb)(void *arg, const struct spool_tls_row *r),
               int (*fail_cb)(void *arg, const struct spool_tls_failure *f), void *arg, char *err,
               size_t errlen)
{
	struct span sp = {since_day, 0, 0};
	struct tls_sink k = {row_cb, fail_cb, arg};
	sqlite3 *db;
	int rc = -1;

	if (open_ro(dir, "tls", &db, err, errlen) != 0)
		return -1;
	/* one read transaction: rows and failures from the same snapshot */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: tls: %s", sqlite3_errmsg(db));
		goto done;
	}
	rc = list_both(db, rows_all, fails_all, &sp, &k, err, errlen);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
done:
	sqlite3_close(db);
	return rc;
}

/*
 * The (day, domain) pairs of [?1, ?2] that have counters and no tlsrpt_sent
 * row, oldest day first, at most ?3 of them. Sent pairs are left out here,
 * before the cap, so pairs already reported never take a due one's place.
 */
#define DUE_PAIRS                                                                                  \
	"WITH due(day, domain) AS (SELECT day, domain FROM"                                        \
	" (SELECT day, lower(domain) AS domain FROM tls_stats WHERE day BETWEEN ?1 AND ?2"         \
	" UNION SELECT day, lower(domain) FROM tls_failures WHERE day BETWEEN ?1 AND ?2) AS p"     \
	" WHERE NOT EXISTS (SELECT 1 FROM tlsrpt_sent s"                                           \
	" WHERE s.day = p.day AND s.domain = p.domain)"                                            \
	" ORDER BY day, domain LIMIT ?3) "

static const char rows_due[] =
    DUE_PAIRS "SELECT t.day, t.domain, t.policy, t.policy_string, t.mx, t.sessions_ok,"
              " t.sessions_failed, t.delivered, t.verified FROM tls_stats t"
              " JOIN due ON t.day = due.day AND lower(t.domain) = due.domain"
              " ORDER BY t.day, t.domain, t.policy, t.mx";
static const char fails_due[] = DUE_PAIRS
    "SELECT t.day, t.domain, t.policy, t.result_type, t.sending_ip, t.mx, t.mx_ip, t.detail,"
    " t.count FROM tls_failures t JOIN due ON t.day = due.day AND lower(t.domain) = due.domain"
    " ORDER BY t.day, t.domain, t.policy, t.result_type, t.mx, t.mx_ip, t.sending_ip";

/* How many due pairs, counting up to sp->max. 0 / -1. */
static int
count_due(sqlite3 *db, const struct span *sp, int64_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(db, DUE_PAIRS "SELECT count(*) FROM due", -1, &st, NULL) !=
	    SQLITE_OK)
		goto done;
	bind_span(st, sp);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto done;
	*n = sqlite3_column_int64(st, 0);
	ret = 0;
done:
	if (ret != 0)
		spool_seterr(err, errlen, "spool: tlsrpt_sent: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return ret;
}

int
spool_tlsrpt_due(const char *dir, int64_t from, int64_t to, size_t max_pairs,
                 int (*row_cb)(void *arg, const struct spool_tls_row *r),
                 int (*fail_cb)(void *arg, const struct spool_tls_failure *f), void *arg,
                 int *capped, char *err, size_t errlen)
{
	struct span sp = {from, to, (int64_t)max_pairs + 1};
	struct tls_sink k = {row_cb, fail_cb, arg};
	int64_t n = 0;
	sqlite3 *db;
	int rc = -1;

	*capped = 0;
	if (open_ro(dir, "tls", &db, err, errlen) != 0)
		return -1;
	/* one read transaction: the pairs, their rows and failures from one snapshot */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: tls: %s", sqlite3_errmsg(db));
		goto done;
	}
	if (count_due(db, &sp, &n, err, errlen) != 0)
		goto end;
	*capped = n > (int64_t)max_pairs;
	sp.max = (int64_t)max_pairs;
	rc = list_both(db, rows_due, fails_due, &sp, &k, err, errlen);
end:
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
done:
	sqlite3_close(db);
	return rc;
}

int
spool_tlsrpt_sent(const char *dir, int64_t day, const char *domain, int *sent, char *err,
                  size_t errlen)
{
	static const char sql[] =
	    "SELECT 1 FROM tlsrpt_sent WHERE day = ?1 AND domain = ?2 COLLATE NOCASE LIMIT 1";
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc, ret = -1;

	*sent = 0;
	if (open_ro(dir, "tlsrpt", &db, err, errlen) != 0)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, day) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	*sent = rc == SQLITE_ROW;
	ret = 0;
	goto done;
fail:
	spool_seterr(err, errlen, "spool: tlsrpt_sent: %s", sqlite3_errmsg(db));
done:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

int
spool_tlsrpt_mark(struct spool *sp, int64_t day, const char *domain, const char *rua,
                  const char *report_id, int64_t when, const char *status, char *err, size_t errlen)
{
	static const char sql[] =
	    "INSERT OR REPLACE INTO tlsrpt_sent (day, domain, rua, report_id, sent, status)"
	    " VALUES (?1, lower(?2), ?3, ?4, ?5, ?6)";
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, day) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, rua, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, report_id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, when) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, status, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: tlsrpt_sent: %s", sqlite3_errmsg(sp->db));
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	return ret;
}

int
spool_sts_policy_text(const char *dir, const char *domain, char **policy, char *err, size_t errlen)
{
	static const char sql[] = "SELECT policy FROM sts_policies WHERE domain = lower(?1)";
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc, ret = -1, oom = 0;

	*policy = NULL;
	if (open_ro(dir, "sts_policies", &db, err, errlen) != 0)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*policy = spool_col_dup(st, 0, &oom);
	else if (rc != SQLITE_DONE)
		goto fail;
	if (oom) {
		spool_seterr(err, errlen, "spool: sts_policies: out of memory");
		goto done;
	}
	ret = 0;
	goto done;
fail:
	spool_seterr(err, errlen, "spool: sts_policies: %s", sqlite3_errmsg(db));
done:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}
