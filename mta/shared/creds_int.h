/*
 * creds internals shared by creds.c (parsing, lookup, passwords) and
 * creds_file.c (rewriting the file for mxrelayctl passwd). Not for other modules.
 */
#ifndef MXRELAY_CREDS_INT_H
#define MXRELAY_CREDS_INT_H

#include <stdio.h>

#include "mta/shared/creds.h"

struct entry {
	struct cred cred; /* first member: creds_find hands out &entry->cred */
	char *buf;        /* copy of the line; user, hash and senders point into it */
	size_t line;      /* 1-based line number in the file */
};

struct creds {
	struct entry *v; /* sorted by user (then line) once loaded */
	size_t n;
	size_t cap;
};

/* Every raw line of a file, kept to rewrite it (creds_update_file). */
struct lines {
	char **v;
	size_t n;
	size_t cap;
};

enum { LINE_NUL = -3, LINE_LONG = -2, LINE_IOERR = -1, LINE_EOF = 0, LINE_OK = 1 };

#include "mta/shared/util.h" /* util_seterrf: the error text of the 0 / -1 functions */
int creds_lines_push(struct lines *l, const char *s);
void creds_lines_free(struct lines *l);
/* Parse an open file into c; every raw line also goes to keep when it is not NULL. */
int creds_load_stream(struct creds *c, FILE *f, const char *path, struct lines *keep, char *err,
		      size_t errlen);
struct entry *creds_find_entry(const struct creds *c, const char *user);
/* 0 when hash is a crypt(3) string libcrypt can verify; -1 with why. */
int creds_check_hash(const char *hash, char *why, size_t whylen);
int creds_parse_senders(char *field, char ***outv, size_t *outn, char *why, size_t whylen);

#endif
