/*
 * Spool fixture pieces shared by the spool unit tests (header-only: each test
 * is one program). Include after <cmocka.h> and "spool/spool.h".
 */
#ifndef MXRELAY_SPOOLFX_H
#define MXRELAY_SPOOLFX_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
