/*
 * spool_schema: the versioned schema of spool.db.
 *
 * PRAGMA user_version holds the version. Step i of migrations[] takes a
 * database from version i to i + 1, inside one IMMEDIATE transaction that
 * also writes the new user_version, so a crash mid-migration leaves the old
 * version intact. Steps are append-only: never edit a released one, add a
 * new step and bump SPOOL_SCHEMA_VERSION.
 */
#include <stdio.h>

#include "spool_int.h"

static const char *const migrations[] = {
    /*
     * 1: the initial schema.
     * AUTOINCREMENT so a message id is never reused after a delete: the
     * scheduler keeps ids in memory and claims by id, and a recycled id
     * would let a stale claim hit a different message.
     * messages.state 0 = queued; next_try starts at received (due now).
     * recipients(msg_id, state) serves the ON DELETE CASCADE lookup, the
     * per-message recipient fetch and spool_count (covering). The two
     * *_due indexes let the scheduler find due work without a scan.
     */
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " qid TEXT UNIQUE NOT NULL,"
    " sender TEXT NOT NULL,"
    " received INTEGER,"
    " size INTEGER,"
    " client_ip TEXT,"
    " helo TEXT,"
    " auth_user TEXT,"
    " flags INTEGER,"
    " next_try INTEGER,"
    " attempts INTEGER DEFAULT 0,"
    " lease_until INTEGER DEFAULT 0,"
    " state INTEGER DEFAULT 0);"
    "CREATE TABLE recipients ("
    " id INTEGER PRIMARY KEY,"
    " msg_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " address TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " next_try INTEGER,"
    " attempts INTEGER DEFAULT 0,"
    " last_reply TEXT);"
    "CREATE TABLE body_chunks ("
    " msg_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " PRIMARY KEY (msg_id, seq)) WITHOUT ROWID;"
    "CREATE INDEX recipients_msg ON recipients(msg_id, state);"
    "CREATE INDEX recipients_due ON recipients(state, next_try);"
    "CREATE INDEX messages_due ON messages(next_try);",
    /*
     * 2: the legacy-client audit (spool_audit.c). One row per client
     * address and AUTH user ('' = none), upserted in the transaction that
     * stores each accepted message. WITHOUT ROWID: the key is the lookup.
     * audit_last_seen serves `mxrelayctl audit --since`.
     */
    "CREATE TABLE audit ("
    " client_ip TEXT NOT NULL,"
    " auth_user TEXT NOT NULL DEFAULT '',"
    " tls_version TEXT NOT NULL DEFAULT '',"
    " tls_cipher TEXT NOT NULL DEFAULT '',"
    " worst_tls TEXT NOT NULL DEFAULT '',"
    " auth_mech TEXT NOT NULL DEFAULT '',"
    " plaintext_auth INTEGER NOT NULL DEFAULT 0,"
    " allowlisted INTEGER NOT NULL DEFAULT 0,"
    " senders TEXT NOT NULL DEFAULT '',"
    " header_from TEXT NOT NULL DEFAULT '',"
    " messages INTEGER NOT NULL DEFAULT 0,"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " PRIMARY KEY (client_ip, auth_user)) WITHOUT ROWID;"
    "CREATE INDEX audit_last_seen ON audit(last_seen);",
    /*
     * 3: delivery attempts that never finished (mxrelayd crashed or was
     * killed during them, issue 8). A claim adds one before an attempt
     * starts, the attempt's outcome (spool_apply) clears it, so after a
     * crash it counts the attempts in a row that took the daemon down with
     * them; at max_unfinished_attempts the message is held.
     */
    "ALTER TABLE messages ADD COLUMN unfinished INTEGER NOT NULL DEFAULT 0;",
    /*
     * 4: bodies in a rowid table (issue 12). body_chunks is WITHOUT ROWID,
     * an index b-tree that keeps at most ~1,000 B of a row on its page and
     * sends the rest to an overflow page of its own: 4.9 KB on disk per
     * 1.5 KB message. A rowid table keeps rows up to the page size on the
     * leaf, packed (spool_insert.c sizes the rows so they pack). The index
     * serves the body read and the ON DELETE CASCADE. Only created here:
     * copying a 2 GB body_chunks inside one transaction would double the
     * file at the worst moment; old messages are read from body_chunks
     * (spool_read.c) and the table is dropped once empty (spool_vacuum.c).
     */
    "CREATE TABLE bodies ("
    " id INTEGER PRIMARY KEY,"
    " msg_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE UNIQUE INDEX bodies_msg ON bodies(msg_id, seq);",
    /*
     * 5: the destination domain of each recipient, kept in its own column
     * so `mxrelayctl queue flush DOMAIN` is an index range instead of a
     * string expression over every pending recipient (3.5 s at 400,000
     * messages). Filled at insert (spool.c ST_INS_RCPT) with the same
     * expression as this backfill.
     */
    "ALTER TABLE recipients ADD COLUMN domain TEXT;"
    "UPDATE recipients SET domain = " SPOOL_DOMAIN_OF("address") ";"
    "CREATE INDEX recipients_dom ON recipients(domain, state, msg_id);",
    /*
     * 6: outbound transport security (issue 13).
     * sts_policies: the last MTA-STS policy fetched per recipient domain
     * (RFC 8461 3.3 and 5.1: used until max_age even while the policy host
     * is down, so a restart keeps it). tls_stats / tls_failures: per UTC day
     * (days since the epoch), what each recipient domain's deliveries were
     * under (policy = tls_kind_name) and which RFC 8460 result types their
     * failures had; the daemon adds to the counts, `mxrelayctl tls report`
     * and the daily TLS-RPT read them. tlsrpt_sent: one row per report sent
     * (or given up), so no day is reported twice to the same rua.
     */
    "CREATE TABLE sts_policies ("
    " domain TEXT PRIMARY KEY,"
    " id TEXT NOT NULL,"
    " mode TEXT NOT NULL,"
    " mx TEXT NOT NULL,"
    " max_age INTEGER NOT NULL,"
    " policy TEXT NOT NULL,"
    " fetched INTEGER NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE tls_stats ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " policy TEXT NOT NULL,"
    " policy_string TEXT NOT NULL DEFAULT '',"
    " mx TEXT NOT NULL DEFAULT '',"
    " sessions_ok INTEGER NOT NULL DEFAULT 0,"
    " sessions_failed INTEGER NOT NULL DEFAULT 0,"
    " delivered INTEGER NOT NULL DEFAULT 0,"
    " verified INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, policy, mx)) WITHOUT ROWID;"
    "CREATE TABLE tls_failures ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " policy TEXT NOT NULL,"
    " result_type TEXT NOT NULL,"
    " sending_ip TEXT NOT NULL DEFAULT '',"
    " mx TEXT NOT NULL DEFAULT '',"
    " mx_ip TEXT NOT NULL DEFAULT '',"
    " detail TEXT NOT NULL DEFAULT '',"
    " count INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, policy, result_type, sending_ip, mx, mx_ip)) WITHOUT ROWID;"
    "CREATE TABLE tlsrpt_sent ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " rua TEXT NOT NULL,"
    " report_id TEXT NOT NULL,"
    " sent INTEGER NOT NULL,"
    " status TEXT NOT NULL,"
    " PRIMARY KEY (day, domain, rua)) WITHOUT ROWID;",
    /*
     * 7: the audit's event counts (issue 15, spool_auditev.c), in the order
     * of SPOOL_AUDIT_NEVENTS. ADD COLUMN with a constant default rewrites
     * nothing: old rows read 0.
     */
    "ALTER TABLE audit ADD COLUMN sunset_warn INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE audit ADD COLUMN sunset_refused INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE audit ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE audit ADD COLUMN repaired INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE audit ADD COLUMN bare_lf INTEGER NOT NULL DEFAULT 0;",
    /*
     * 8: what operations need per message (issue 15/16): the listener that
     * accepted it (bounce_owner and the audit plan match listener: rules)
     * and its Message-ID (log lines, queue tools). NULL on older rows and for
     * messages that had none.
     */
    "ALTER TABLE messages ADD COLUMN listener TEXT;"
    "ALTER TABLE messages ADD COLUMN message_id TEXT;",
    /*
     * 9: bounce owners' digests kept across restarts (issue 15,
     * spool_bdigest.c): the failures waiting per owner, and per owner the
     * count of those past SPOOL_BDIGEST_MAX; the audit's last listener (the
     * audit plan), NULL on older rows and for local submission.
     */
    "CREATE TABLE bounce_digest ("
    " id INTEGER PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " failed_at INTEGER NOT NULL,"
    " qid TEXT NOT NULL,"
    " sender TEXT NOT NULL,"
    " rcpt TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX bounce_digest_owner ON bounce_digest(owner, id);"
    "CREATE TABLE bounce_digest_dropped ("
    " owner TEXT PRIMARY KEY,"
    " n INTEGER NOT NULL) WITHOUT ROWID;"
    "ALTER TABLE audit ADD COLUMN listener TEXT;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == SPOOL_SCHEMA_VERSION,
               "one migration step per schema version");

static int
newer_error(const char *dir, int64_t v, char *err, size_t errlen)
{
	spool_seterr(err, errlen,
	             "spool: open %s: spool.db schema version %lld is newer than this mxrelay (%d)",
	             dir, (long long)v, SPOOL_SCHEMA_VERSION);
	return -1;
}

/*
 * Apply step I unless the database is already past it. The version is read
 * again under the write lock: another process may have migrated meanwhile.
 */
static int
apply_step(sqlite3 *db, size_t i, const char *dir, char *err, size_t errlen)
{
	char sql[64];
	int64_t v;
	int ret = -1;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlerr;
	if (spool_pragma_int(db, "PRAGMA user_version", &v) != SQLITE_OK)
		goto sqlerr;
	if (v > SPOOL_SCHEMA_VERSION) {
		newer_error(dir, v, err, errlen);
		goto done;
	}
	if (v == (int64_t)i) {
		snprintf(sql, sizeof sql, "PRAGMA user_version = %zu", i + 1);
		if (sqlite3_exec(db, migrations[i], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto sqlerr;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlerr;
	ret = 0;
	goto done;
sqlerr:
	spool_seterr(err, errlen, "spool: open %s: schema step %zu: %s", dir, i + 1,
	             sqlite3_errmsg(db));
done:
	if (ret < 0 && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int
spool_schema_migrate(sqlite3 *db, const char *dir, char *err, size_t errlen)
{
	int64_t v;
	size_t i;

	if (spool_pragma_int(db, "PRAGMA user_version", &v) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: open %s: %s", dir, sqlite3_errmsg(db));
		return -1;
	}
	if (v > SPOOL_SCHEMA_VERSION)
		return newer_error(dir, v, err, errlen);
	if (v < 0) {
		spool_seterr(err, errlen, "spool: open %s: bad schema version %lld", dir,
		             (long long)v);
		return -1;
	}
	for (i = (size_t)v; i < SPOOL_SCHEMA_VERSION; i++)
		if (apply_step(db, i, dir, err, errlen) < 0)
			return -1;
	return 0;
}
