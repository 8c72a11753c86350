/*
 * Spool fixture pieces shared by the spool unit tests (header-only: each test
 * is one program). Include after <cmocka.h>, <sqlite3.h> and "spool/spool.h".
 */
#ifndef MXRELAY_SPOOLFX_H
#define MXRELAY_SPOOLFX_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

/* A new directory /tmp/NAME.XXXXXX in base, and dir = base/spool (not made:
 * spool_open makes it). 0 / -1. */
static inline int
tu_spool_dirs(const char *name, char *base, size_t baselen, char *dir, size_t dirlen)
{
	snprintf(base, baselen, "/tmp/%s.XXXXXX", name);
	if (mkdtemp(base) == NULL)
		return -1;
	snprintf(dir, dirlen, "%s/spool", base);
	return 0;
}

/* The end of a spool fixture: close sp, then remove base and everything below it. */
static inline void
tu_spool_close_rm(struct spool *sp, const char *base)
{
	spool_close(sp);
	tu_rmtree(base);
}

/* spool_open that fails the test, naming the error. */
static inline struct spool *
tu_spool_open(const char *dir)
{
	char err[256] = "";
	struct spool *sp = NULL;

	if (spool_open(&sp, dir, err, sizeof err) != 0)
		fail_msg("spool_open %s: %s", dir, err);
	assert_non_null(sp);
	return sp;
}

/* The first column of the first row of sql on the database file at path
 * (-1: no row), read beside the spool's own handle; fails the test when
 * the statement does not compile. */
static inline int64_t
tu_db_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

#endif
