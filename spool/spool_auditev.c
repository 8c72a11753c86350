/*
 * spool_auditev: the legacy-client audit's event counts (schema version 7,
 * issue 15): sunset warnings and refusals, rate limits, header repairs and
 * bare LF line ends, counted per (client address, AUTH user) like the rest
 * of the audit row. The daemon hands batches to the writer; each batch is
 * one transaction of upserts (count = count + new), touching only its rows.
 * A client seen only through events gets a row with messages = 0.
 */
#include <stdio.h>

#include "spool_int.h"

static const char SQL_EVENT[] =
    "INSERT INTO audit (client_ip, auth_user, first_seen, last_seen, sunset_warn,"
    " sunset_refused, rate_limited, repaired, bare_lf)"
    " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (client_ip, auth_user) DO UPDATE SET"
    " last_seen = max(last_seen, excluded.last_seen),"
    " sunset_warn = sunset_warn + excluded.sunset_warn,"
    " sunset_refused = sunset_refused + excluded.sunset_refused,"
    " rate_limited = rate_limited + excluded.rate_limited,"
    " repaired = repaired + excluded.repaired, bare_lf = bare_lf + excluded.bare_lf";

_Static_assert(SPOOL_AUDIT_NEVENTS == 5, "one column per event in SQL_EVENT");

static int
add_events(sqlite3_stmt *st, const struct spool_audit_event *v, size_t n)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		if (v[i].client_ip == NULL || v[i].client_ip[0] == '\0')
			continue; /* nothing to key the row on */
		sqlite3_bind_text(st, 1, v[i].client_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, v[i].auth_user ? v[i].auth_user : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)v[i].when);
		for (int k = 0; k < SPOOL_AUDIT_NEVENTS; k++)
			sqlite3_bind_int64(st, 4 + k, v[i].count[k]);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(sqlite3_db_handle(st));
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return rc;
}

int
spool_audit_events(struct spool *sp, const struct spool_audit_event *v, size_t n, char *err,
                   size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (spool_step_done(sp, ST_BEGIN_WRITE, "audit events: begin", NULL, err, errlen) !=
	    SQLITE_OK)
		return -1;
	rc = sqlite3_prepare_v2(sp->db, SQL_EVENT, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = add_events(st, v, n);
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: audit events: %s", sqlite3_errmsg(sp->db));
		spool_rollback(sp);
		return -1;
	}
	return spool_step_done(sp, ST_COMMIT, "audit events: commit", NULL, err, errlen) ==
	               SQLITE_OK
	           ? 0
	           : (spool_rollback(sp), -1);
}
