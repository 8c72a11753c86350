/*
 * spool: open/close, the statement cache, and the write side (group-commit
 * insert, delete, count). Reads live in spool_read.c, the schema in
 * spool_schema.c, the error-text and PRAGMA helpers in spool_util.c.
 *
 * Every statement is prepared once at open and only reset/bound per call:
 * spool_insert_batch runs on the writer thread for every message we accept,
 * and re-parsing SQL there would cost more than the inserts themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"

#define MSG_COLS "id, qid, sender, received, size, client_ip, helo, auth_user, flags, listener, message_id"

static const char *const spool_sql[ST__COUNT] = {
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INS_MSG] = "INSERT INTO messages (qid, sender, received, size, client_ip, helo,"
                   " auth_user, flags, next_try, listener, message_id)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?3, ?9, ?10)",
    /* domain (schema 5): serves queue flush DOMAIN through recipients_dom */
    [ST_INS_RCPT] = "INSERT INTO recipients (msg_id, address, state, next_try, domain)"
                    " VALUES (?1, ?2, 0, ?3, " SPOOL_DOMAIN_OF("?2") ")",
    [ST_INS_CHUNK] = "INSERT INTO bodies (msg_id, seq, data) VALUES (?1, ?2, ?3)",
    [ST_COUNT_PENDING] = "SELECT count(*) FROM messages AS m WHERE EXISTS (SELECT 1 FROM"
                         " recipients AS r WHERE r.msg_id = m.id AND r.state = 0)",
    [ST_LIST] = "SELECT " MSG_COLS " FROM messages ORDER BY id LIMIT ?1",
    [ST_GET] = "SELECT " MSG_COLS " FROM messages WHERE qid = ?1",
    [ST_RCPTS] = "SELECT address, state FROM recipients WHERE msg_id = ?1 ORDER BY id",
    [ST_BODY_INFO] = "SELECT id, size FROM messages WHERE qid = ?1",
    [ST_CHUNKS] = "SELECT seq, data FROM bodies WHERE msg_id = ?1 ORDER BY seq",
    [ST_DELETE] = "DELETE FROM messages WHERE qid = ?1",
    /* Delivery side (spool_deliver.c). */
    /* By id: the recipients_msg probes then walk that index in order (7x faster at 1M). */
    /* held messages (state 1, mxrelayctl queue hold) stay out of the schedule */
    [ST_PENDING] =
        "SELECT m.id, m.next_try FROM messages AS m WHERE m.state = 0 AND EXISTS (SELECT 1 FROM"
        " recipients AS r WHERE r.msg_id = m.id AND r.state = 0) ORDER BY m.id",
    [ST_WORK_MSG] = "SELECT " MSG_COLS ", attempts, state, unfinished FROM messages WHERE id = ?1",
    [ST_WORK_RCPTS] = "SELECT id, address, attempts FROM recipients"
                      " WHERE msg_id = ?1 AND state = 0 ORDER BY id",
    [ST_UPD_MSG] = "UPDATE messages SET next_try = ?2, attempts = ?3, unfinished = 0"
                   " WHERE id = ?1",
    [ST_UPD_RCPT] = "UPDATE recipients SET state = ?3, next_try = ?4, attempts = attempts + 1,"
                    " last_reply = ?5 WHERE id = ?1 AND msg_id = ?2 AND state = 0",
    [ST_DEL_IF_DONE] = "DELETE FROM messages WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM"
                       " recipients WHERE msg_id = ?1 AND state = 0)",
    /* Audit (spool_audit.c): read the row, merge in C, write it back. */
    [ST_AUDIT_GET] = "SELECT worst_tls, plaintext_auth, allowlisted, senders, header_from,"
                     " messages, first_seen, last_seen FROM audit"
                     " WHERE client_ip = ?1 AND auth_user = ?2",
    [ST_AUDIT_PUT] = "INSERT INTO audit (client_ip, auth_user, tls_version, tls_cipher,"
                     " worst_tls, auth_mech, plaintext_auth, allowlisted, senders,"
                     " header_from, messages, first_seen, last_seen, listener)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                     " ON CONFLICT (client_ip, auth_user) DO UPDATE SET"
                     " tls_version = excluded.tls_version, tls_cipher = excluded.tls_cipher,"
                     " worst_tls = excluded.worst_tls, auth_mech = excluded.auth_mech,"
                     " plaintext_auth = excluded.plaintext_auth,"
                     " allowlisted = excluded.allowlisted, senders = excluded.senders,"
                     " header_from = excluded.header_from, messages = excluded.messages,"
                     " first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
                     " listener = coalesce(excluded.listener, listener)", /* schema 9 */
    /* ids grow with time: the smallest id is the oldest message, one index probe */
    [ST_OLDEST] = "SELECT received FROM messages ORDER BY id LIMIT 1",
    [ST_CLAIM_GET] = "SELECT qid, state, unfinished FROM messages WHERE id = ?1",
    [ST_CLAIM_ADD] = "UPDATE messages SET unfinished = unfinished + 1 WHERE id = ?1",
    [ST_CLAIM_HOLD] = "UPDATE messages SET state = 1 WHERE id = ?1",
    [ST_UNCLAIM] = "UPDATE messages SET unfinished = unfinished - 1"
                   " WHERE id = ?1 AND unfinished > 0",
};

static void
sql_err(struct spool *sp, const char *what, const char *qid, char *err, size_t errlen)
{
	if (qid != NULL)
		spool_seterr(err, errlen, "spool: %s %s: %s", what, qid, sqlite3_errmsg(sp->db));
	else
		spool_seterr(err, errlen, "spool: %s: %s", what, sqlite3_errmsg(sp->db));
}

int
spool_step_done(struct spool *sp, enum spool_stmt id, const char *what, const char *qid, char *err,
                size_t errlen)
{
	sqlite3_stmt *st = sp->st[id];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	} else {
		/* Read the message before reset can replace it. */
		sql_err(sp, what, qid, err, errlen);
		if (rc == SQLITE_ROW)
			rc = SQLITE_MISUSE;
		/* sticky until spool_take_full: the writer decides on the reserve */
		if ((rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR)
			sp->full_seen = 1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
spool_bind_fail(struct spool *sp, enum spool_stmt id, const char *what, const char *qid, char *err,
                size_t errlen)
{
	int rc = sqlite3_extended_errcode(sp->db);

	sql_err(sp, what, qid, err, errlen);
	sqlite3_reset(sp->st[id]);
	sqlite3_clear_bindings(sp->st[id]);
	return rc == SQLITE_OK ? SQLITE_ERROR : rc;
}

int
spool_read_begin(struct spool *sp, const char *what, char *err, size_t errlen)
{
	return spool_step_done(sp, ST_BEGIN_READ, what, NULL, err, errlen) == SQLITE_OK ? 0 : -1;
}

void
spool_read_end(struct spool *sp)
{
	/* A read-only COMMIT cannot lose data; ROLLBACK only if it failed. */
	if (spool_step_done(sp, ST_COMMIT, "read", NULL, NULL, 0) != SQLITE_OK &&
	    !sqlite3_get_autocommit(sp->db))
		spool_step_done(sp, ST_ROLLBACK, "read", NULL, NULL, 0);
}

/* DIR is created 0700: the spool holds every message and its sender. */
static int
make_dir(const char *dir, char *err, size_t errlen)
{
	struct stat sb;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		spool_seterr(err, errlen, "spool: mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &sb) < 0) {
		spool_seterr(err, errlen, "spool: stat %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		spool_seterr(err, errlen, "spool: %s: not a directory", dir);
		return -1;
	}
	return 0;
}

/*
 * Create spool.db ourselves with 0600 before SQLite does (it would use 0644):
 * SQLite gives the -wal and -shm files the mode of the database file.
 * Only when it does not exist yet: close() of any descriptor of the file
 * drops every POSIX lock this process holds on it, the SHARED locks of the
 * handles already open included, and then another process's last close
 * (sqlite3, a test reading the spool) believes it is alone, checkpoints
 * and deletes the WAL the daemon is still writing to (seen: every spool
 * handle opened after the writer's did this).
 */
static char *
make_db_file(const char *dir, char *err, size_t errlen)
{
	size_t len = strlen(dir) + sizeof "/spool.db";
	char *path = malloc(len);
	int fd;

	if (path == NULL) {
		spool_seterr(err, errlen, "spool: open %s: out of memory", dir);
		return NULL;
	}
	snprintf(path, len, "%s/spool.db", dir);
	if (access(path, F_OK) == 0)
		return path;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return path; /* made meanwhile by another opener */
	if (fd < 0) {
		spool_seterr(err, errlen, "spool: open %s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

/*
 * busy_timeout first so the switch to WAL waits for other openers. WAL and
 * foreign keys are read back: a build or file system that silently ignores
 * them would break durability or the delete cascade. journal_size_limit
 * (16 MB) trims the WAL back after a batch of large messages grew it, and
 * wal_autocheckpoint = 256 pages (1 MB at 4 KB, SQLite's default is 1000)
 * checkpoints early: on a small disk a 4 MB WAL could fill it before the
 * first checkpoint, which then can never run (the db file cannot grow).
 * secure_delete = FAST: Debian builds SQLite with secure_delete on, which
 * zeroes every delivered body through the WAL and again at checkpoint (about
 * 3x the write volume for 100 KB mail, measured); FAST still clears deleted
 * content on b-tree pages but not pages that go to the freelist, so a
 * delivered body may stay on disk until its pages are reused.
 */
static int
apply_pragmas(struct spool *sp, const char *dir, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t fk = 0, pages = 0;
	int wal = 0;

	sqlite3_busy_timeout(sp->db, 5000);
	/*
	 * Only a new file takes these (before its first table; later they
	 * are no-ops): freed pages can go back to the file system
	 * (spool_vacuum.c), and 4 KB pages keep the WAL bytes per small
	 * commit low. An old file is converted by its first spool_vacuum_step.
	 */
	/* only on an empty file: on an existing one, even as a no-op, setting
	 * auto_vacuum writes, and on a full disk every open (readers too) failed */
	if (spool_pragma_int(sp->db, "PRAGMA page_count", &pages) != SQLITE_OK ||
	    (pages == 0 &&
	     sqlite3_exec(sp->db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA page_size = 4096;",
	                  NULL, NULL, NULL) != SQLITE_OK))
		goto sqlerr;
	if (sqlite3_prepare_v2(sp->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	if (sqlite3_step(st) == SQLITE_ROW)
		wal = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal) {
		spool_seterr(err, errlen, "spool: open %s: cannot enable WAL journal mode: %s", dir,
		             sqlite3_errmsg(sp->db));
		return -1;
	}
	if (sqlite3_exec(sp->db,
	                 "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
	                 " PRAGMA journal_size_limit = 16777216; PRAGMA wal_autocheckpoint = 256;"
	                 " PRAGMA secure_delete = FAST;",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    spool_pragma_int(sp->db, "PRAGMA foreign_keys", &fk) != SQLITE_OK ||
	    spool_pragma_int(sp->db, "PRAGMA max_page_count", &sp->default_max_pages) != SQLITE_OK)
		goto sqlerr;
	if (fk != 1) {
		spool_seterr(err, errlen, "spool: open %s: SQLite has no foreign key support", dir);
		return -1;
	}
	return 0;
sqlerr:
	spool_seterr(err, errlen, "spool: open %s: %s", dir, sqlite3_errmsg(sp->db));
	return -1;
}

static int
prepare_all(struct spool *sp, const char *dir, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(sp->db, spool_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &sp->st[i], NULL) != SQLITE_OK) {
			spool_seterr(err, errlen, "spool: open %s: prepare: %s", dir,
			             sqlite3_errmsg(sp->db));
			return -1;
		}
	}
	return 0;
}

int
spool_open(struct spool **out, const char *dir, char *err, size_t errlen)
{
	struct spool *sp = NULL;
	char *path = NULL;
	int ret = -1;

	*out = NULL;
	if (make_dir(dir, err, errlen) < 0 || (path = make_db_file(dir, err, errlen)) == NULL)
		goto done;
	if ((sp = calloc(1, sizeof *sp)) == NULL) {
		spool_seterr(err, errlen, "spool: open %s: out of memory", dir);
		goto done;
	}
	/* NOMUTEX: a handle belongs to one thread (see spool.h). */
	if (sqlite3_open_v2(path, &sp->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: open %s: %s", path,
		             sp->db ? sqlite3_errmsg(sp->db) : "out of memory");
		goto done;
	}
	/* Extended codes tell SQLITE_IOERR_* apart for the disk-full test. */
	sqlite3_extended_result_codes(sp->db, 1);
	if (apply_pragmas(sp, dir, err, errlen) < 0 ||
	    spool_schema_migrate(sp->db, dir, err, errlen) < 0 ||
	    prepare_all(sp, dir, err, errlen) < 0)
		goto done;
	if (spool_pragma_int(sp->db, "PRAGMA page_size", &sp->page_size) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: open %s: %s", dir, sqlite3_errmsg(sp->db));
		goto done;
	}
	*out = sp;
	sp = NULL;
	ret = 0;
done:
	spool_close(sp);
	free(path);
	return ret;
}

void
spool_close(struct spool *sp)
{
	int i;

	if (sp == NULL)
		return;
	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(sp->st[i]);
	sqlite3_close(sp->db);
	free(sp);
}

int
spool_set_max_size(struct spool *sp, int64_t bytes, char *err, size_t errlen)
{
	int64_t page_size, pages;
	char sql[64];

	if (bytes < 0) {
		spool_seterr(err, errlen, "spool: max size: negative size %lld", (long long)bytes);
		return -1;
	}
	if (spool_pragma_int(sp->db, "PRAGMA page_size", &page_size) != SQLITE_OK ||
	    page_size <= 0) {
		spool_seterr(err, errlen, "spool: max size: %s", sqlite3_errmsg(sp->db));
		return -1;
	}
	/* 0 pages would be ignored by SQLite: keep a cap below one page meaningful. */
	pages = bytes == 0 ? sp->default_max_pages : bytes / page_size;
	if (pages < 1)
		pages = 1;
	if (pages > sp->default_max_pages)
		pages = sp->default_max_pages;
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
	if (sqlite3_exec(sp->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: max size: %s", sqlite3_errmsg(sp->db));
		return -1;
	}
	return 0;
}

int
spool_count(struct spool *sp, int64_t *count, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_COUNT_PENDING];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*count = sqlite3_column_int64(st, 0);
	else
		sql_err(sp, "count", NULL, err, errlen);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
spool_delete(struct spool *sp, const char *qid, char *err, size_t errlen)
{
	/* foreign_keys=ON: the cascade removes recipients and body chunks too. */
	if (sqlite3_bind_text(sp->st[ST_DELETE], 1, qid, -1, SQLITE_STATIC) != SQLITE_OK) {
		spool_bind_fail(sp, ST_DELETE, "delete", qid, err, errlen);
		return -1;
	}
	if (spool_step_done(sp, ST_DELETE, "delete", qid, err, errlen) != SQLITE_OK)
		return -1;
	if (sqlite3_changes(sp->db) == 0) {
		spool_seterr(err, errlen, "spool: delete %s: no such message", qid);
		return -1;
	}
	return 0;
}
