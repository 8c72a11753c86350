/*
 * spool_backup: an online copy of spool.db for mxrelayctl backup, taken
 * while the daemon runs. The SQLite backup API copies every page inside ONE
 * read transaction of the live database (one step of all pages: a stepwise
 * copy restarts whenever the daemon writes, and under load might never
 * end); in WAL mode that transaction does not stop the daemon's writers,
 * and the copy is the database as it was when the transaction began, every
 * message whole or absent. The copy is then made a single file (rollback
 * journal, no -wal beside it), checked (integrity_check, foreign_key_check)
 * and counted. The destination file is the caller's: it makes it (mode
 * 0600, its owner) before, so no copy of the mail is ever readable by others.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "spool_int.h"

#define BACKUP_BUSY_TRIES 100 /* 100 ms apart: the daemon's checkpoint holds a lock briefly */

static int
db_error(sqlite3 *db, const char *what, const char *path, char *err, size_t errlen)
{
	spool_seterr(err, errlen, "spool: backup: %s %s: %s", what, path,
	             db ? sqlite3_errmsg(db) : "out of memory");
	return -1;
}

/* Every page of src into dst, in one read transaction of src. */
static int
copy_pages(sqlite3 *src, sqlite3 *dst, const char *dest, char *err, size_t errlen)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc, tries = 0;

	if (b == NULL)
		return db_error(dst, "start", dest, err, errlen);
	do {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(100);
	} while ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ++tries < BACKUP_BUSY_TRIES);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: backup into %s: %s", dest, sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/* integrity_check and foreign_key_check of the copy: 0, or -1 with the first problem. */
static int
check_copy(sqlite3 *dst, struct spool_backup_info *info, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		spool_seterr(err, errlen, "spool: backup: integrity_check: %s", sqlite3_errmsg(dst));
		goto done;
	}
	snprintf(info->integrity, sizeof(info->integrity), "%s",
	         (const char *)sqlite3_column_text(st, 0));
	if (strcmp(info->integrity, "ok") != 0) {
		spool_seterr(err, errlen, "spool: backup: the copy fails integrity_check: %s",
		             info->integrity);
		goto done;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(dst, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: backup: foreign_key_check: %s", sqlite3_errmsg(dst));
		goto done;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(info->integrity, sizeof(info->integrity), "foreign key broken in %s",
		         (const char *)sqlite3_column_text(st, 0));
		spool_seterr(err, errlen, "spool: backup: the copy has a %s", info->integrity);
		goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}

/* The copy as one file (no -wal), its counts. */
static int
finish_copy(sqlite3 *dst, const char *dest, struct spool_backup_info *info, char *err,
            size_t errlen)
{
	int64_t size = 0;

	/* the source's WAL mark came with page 1: back to a rollback journal, one file */
	if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
		return db_error(dst, "journal mode of", dest, err, errlen);
	if (check_copy(dst, info, err, errlen) != 0)
		return -1;
	if (spool_pragma_int(dst, "SELECT count(*) FROM messages", &info->messages) != SQLITE_OK ||
	    spool_pragma_int(dst, "SELECT count(*) FROM recipients WHERE state = 0" /* PENDING */,
	                     &info->pending) != SQLITE_OK ||
	    spool_pragma_int(dst, "PRAGMA page_count", &info->pages) != SQLITE_OK ||
	    spool_pragma_int(dst, "PRAGMA page_size", &size) != SQLITE_OK)
		return db_error(dst, "count in", dest, err, errlen);
	info->bytes = info->pages * size;
	return 0;
}

int
spool_backup(const char *dir, const char *dest, struct spool_backup_info *info, char *err,
             size_t errlen)
{
	char src_path[4096];
	sqlite3 *src = NULL, *dst = NULL;
	struct stat sb;
	int ret = -1;

	memset(info, 0, sizeof(*info));
	snprintf(src_path, sizeof(src_path), "%s/spool.db", dir);
	/* never create it: SQLite would make an empty file for a mistyped data_dir */
	if (stat(src_path, &sb) != 0) {
		if (errno == ENOENT)
			spool_seterr(err, errlen, "no spool database at %s", src_path);
		else
			spool_seterr(err, errlen, "%s: %s", src_path, strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		db_error(src, "open", src_path, err, errlen);
		goto done;
	}
	sqlite3_busy_timeout(src, 10000);
	/* the caller made dest (empty, 0600): open it, never create it */
	if (sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		db_error(dst, "open", dest, err, errlen);
		goto done;
	}
	sqlite3_busy_timeout(dst, 10000);
	if (copy_pages(src, dst, dest, err, errlen) == 0 &&
	    finish_copy(dst, dest, info, err, errlen) == 0)
		ret = 0;
done:
	sqlite3_close(dst);
	sqlite3_close(src);
	return ret;
}
