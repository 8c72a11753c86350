/* Small helpers shared by the unit tests (header-only: each test is one program). */
#ifndef MXRELAY_TESTUTIL_H
#define MXRELAY_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
tu_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove a temporary directory tree (files first). 0 / -1. */
static inline int
tu_rmtree(const char *dir)
{
	return nftw(dir, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
