/*
 * spool_util: the helpers every spool_*.c file uses, and nothing else.
 *
 * The lowest file of spool/: it calls no other spool file, so spool.c and
 * spool_schema.c (which spool.c runs at open) can both use it without
 * depending on each other.
 */
#include <stdarg.h>
#include <stdio.h>

#include "spool_int.h"

void
spool_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
spool_pragma_int(sqlite3 *db, const char *sql, int64_t *val)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*val = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_ERROR; /* PRAGMA unknown to this SQLite build */
	}
	sqlite3_finalize(st);
	return rc;
}

const char *
spool_col_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s ? s : "";
}

int
spool_step_rows(sqlite3_stmt *st, int (*each)(void *ctx, sqlite3_stmt *st), void *ctx)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (each(ctx, st) != 0)
			return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}
