/*
 * spool_vacuum: give freed pages back to the file system (issue 12).
 *
 * Delivered mail leaves its pages on SQLite's free list, and with
 * auto_vacuum = NONE a spool that held 2 GB stays 2 GB when the queue is
 * empty. New files are made INCREMENTAL (spool.c, apply_pragmas); the first
 * step converts an old one with VACUUM when it is small. After that every
 * step is one short write transaction (incremental_vacuum of 256 pages, a
 * few ms), so a caller that runs steps between its own writes delays them
 * by one step at most. Also drops the pre-version-4 body table once the
 * messages stored in it are gone (spool_schema.c, step 4).
 */
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

#include "spool_int.h"

#define VAC_STEP_PAGES 256  /* pages per step: 1 MB at 4 KB pages */
#define VAC_KEEP_PAGES 128  /* a run stops here: the next messages reuse these */
#define VAC_START_PAGES 512 /* a run starts at this many free pages (2 MB)... */
#define VAC_START_SHARE 4    /* ...that are also 1/4 of the file: churn reuses fewer */
#define VAC_CONVERT_MAX ((int64_t)64 * 1024 * 1024) /* live bytes: VACUUM at start below */
#define VAC_RETRY_SECS 10    /* after an error: no step for this long */
#define VAC_BUSY_MS 5000     /* the handle's busy timeout, as spool_open sets it */
#define VAC_WAL_KEEP ((int64_t)1024 * 1024) /* a bigger WAL is trimmed once writes stop... */
#define VAC_QUIET_SECS 2     /* ...for this long (whole seconds of time(): at least 1 s) */

static int
fail(struct spool *sp, const char *what, char *err, size_t errlen)
{
	spool_seterr(err, errlen, "spool: vacuum: %s: %s", what, sqlite3_errmsg(sp->db));
	sp->vac_retry_at = time(NULL) + VAC_RETRY_SECS;
	return -1;
}

static int
page_counts(struct spool *sp, int64_t *pages, int64_t *free_pages)
{
	if (spool_pragma_int(sp->db, "PRAGMA page_count", pages) != SQLITE_OK ||
	    spool_pragma_int(sp->db, "PRAGMA freelist_count", free_pages) != SQLITE_OK)
		return -1;
	return 0;
}

/*
 * Nothing writes body_chunks since version 4: once its last message is
 * gone it stays empty, and dropping it gives its pages back.
 */
static int
drop_old_chunks(struct spool *sp, struct spool_vacuum *v, char *err, size_t errlen)
{
	int64_t n;

	if (spool_pragma_int(sp->db,
	                     "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	                     " AND name = 'body_chunks'",
	                     &n) != SQLITE_OK)
		return fail(sp, "read schema", err, errlen);
	if (n == 0)
		return 0;
	if (spool_pragma_int(sp->db, "SELECT EXISTS (SELECT 1 FROM body_chunks)", &n) != SQLITE_OK)
		return fail(sp, "read body_chunks", err, errlen);
	if (n != 0)
		return 0;
	if (sqlite3_exec(sp->db, "DROP TABLE body_chunks", NULL, NULL, NULL) != SQLITE_OK)
		return fail(sp, "drop body_chunks", err, errlen);
	v->dropped_old = 1;
	return 0;
}

/*
 * The first step on a handle. An old file (auto_vacuum = NONE) takes
 * INCREMENTAL only through a VACUUM, which rewrites the whole file in one
 * transaction: 0.13 s for a drained 2 GB spool, but seconds for a big live
 * queue, so only below VAC_CONVERT_MAX live bytes; else it stays as it is
 * (v->pending) and the next start tries again.
 */
static int
first_step(struct spool *sp, struct spool_vacuum *v, char *err, size_t errlen)
{
	int64_t mode, pages, free_pages, after, unused;

	sp->vac_started = 1;
	if (drop_old_chunks(sp, v, err, errlen) < 0)
		return -1;
	if (spool_pragma_int(sp->db, "PRAGMA auto_vacuum", &mode) != SQLITE_OK ||
	    page_counts(sp, &pages, &free_pages) < 0)
		return fail(sp, "read", err, errlen);
	if (mode != 0) {
		sp->vac_off = mode != 2; /* FULL gives pages back at every commit itself */
		return 0;
	}
	v->live_bytes = (pages - free_pages) * sp->page_size;
	/* no incremental steps on a file that is not INCREMENTAL: they would do nothing */
	sp->vac_off = 1;
	if (v->live_bytes >= VAC_CONVERT_MAX) {
		v->pending = 1;
		return 0;
	}
	if (sqlite3_exec(sp->db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", NULL, NULL, NULL) !=
	        SQLITE_OK ||
	    page_counts(sp, &after, &unused) < 0)
		return fail(sp, "convert", err, errlen);
	sp->vac_off = 0;
	v->converted = 1;
	v->freed_pages = pages - after;
	v->more = 1;
	sp->vac_ckpt = 1;
	return 0;
}

/* One incremental_vacuum transaction of at most VAC_STEP_PAGES pages. */
static int
give_back(struct spool *sp, struct spool_vacuum *v, int64_t pages, int64_t free_pages, char *err,
          size_t errlen)
{
	int64_t n = free_pages - VAC_KEEP_PAGES, after, unused;
	char sql[64];

	if (n > VAC_STEP_PAGES)
		n = VAC_STEP_PAGES;
	snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)", (long long)n);
	if (sqlite3_exec(sp->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    page_counts(sp, &after, &unused) < 0)
		return fail(sp, "incremental_vacuum", err, errlen);
	v->freed_pages = pages - after;
	v->more = v->freed_pages > 0;
	sp->vac_running = v->more; /* nothing moved: never spin on it */
	sp->vac_ckpt |= v->more;
	return 0;
}

/*
 * The pages given back are only cut off the file at a checkpoint, and the
 * WAL file keeps its largest size (journal_size_limit): TRUNCATE does both.
 * It needs every reader on the newest snapshot; with no busy wait a reader
 * never holds the caller up, the step is just tried again a second later.
 */
static int
checkpoint(struct spool *sp, struct spool_vacuum *v, char *err, size_t errlen)
{
	int rc;

	sqlite3_busy_timeout(sp->db, 0);
	rc = sqlite3_wal_checkpoint_v2(sp->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(sp->db, VAC_BUSY_MS);
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
		sp->vac_retry_at = time(NULL) + 1;
		v->later = 1;
		return 0;
	}
	if (rc != SQLITE_OK)
		return fail(sp, "checkpoint", err, errlen);
	sp->vac_ckpt = 0;
	return drop_old_chunks(sp, v, err, errlen);
}

static int64_t
wal_bytes(struct spool *sp)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(sp->db, "main"));
	struct stat sb;

	return wal != NULL && stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/*
 * The WAL file keeps the largest size it reached (up to journal_size_limit)
 * even with the queue empty. Once nothing was written on this handle (the
 * daemon's only writer) for VAC_QUIET_SECS, one TRUNCATE checkpoint gives
 * it back; while writes go on, the checkpoint would only be redone.
 */
static int
trim_wal(struct spool *sp, struct spool_vacuum *v, char *err, size_t errlen)
{
	int64_t changes = sqlite3_total_changes64(sp->db);
	time_t now = time(NULL);

	if (wal_bytes(sp) <= VAC_WAL_KEEP)
		return 0;
	if (changes != sp->vac_changes || sp->vac_quiet == 0) {
		sp->vac_changes = changes;
		sp->vac_quiet = now;
	}
	if (now - sp->vac_quiet < VAC_QUIET_SECS) {
		v->later = 1;
		return 0;
	}
	sp->vac_ckpt = 1; /* until it is done: a busy retry asks to be called again */
	return checkpoint(sp, v, err, errlen);
}

int
spool_vacuum_step(struct spool *sp, struct spool_vacuum *v, char *err, size_t errlen)
{
	int64_t pages, free_pages;

	memset(v, 0, sizeof *v);
	if (sp->vac_retry_at != 0 && time(NULL) < sp->vac_retry_at) {
		v->later = sp->vac_ckpt;
		return 0;
	}
	sp->vac_retry_at = 0;
	if (!sp->vac_started)
		return first_step(sp, v, err, errlen);
	if (sp->vac_off)
		return trim_wal(sp, v, err, errlen);
	if (page_counts(sp, &pages, &free_pages) < 0)
		return fail(sp, "read", err, errlen);
	if (!sp->vac_running && free_pages >= VAC_START_PAGES &&
	    free_pages * VAC_START_SHARE >= pages)
		sp->vac_running = 1;
	if (sp->vac_running && free_pages > VAC_KEEP_PAGES)
		return give_back(sp, v, pages, free_pages, err, errlen);
	sp->vac_running = 0;
	if (sp->vac_ckpt)
		return checkpoint(sp, v, err, errlen);
	return trim_wal(sp, v, err, errlen);
}
