/*
 * bdigest: the failures waiting for a bounce owner's daily digest
 * (bounce_owner = WHO ADDRESS digest, issue 15 item 5). deliver.c adds one
 * entry per failed recipient whose DSN went to such an owner; the digest
 * job (control/bdigest_job.c) takes an owner's entries and mails them.
 * Kept in memory on the loop thread only: a restart loses the failures not
 * mailed yet (each of them still had its own DSN). Bounded: at most
 * BDIGEST_MAX entries in all; past that an owner's further failures are
 * only counted ("N more").
 */
#ifndef MXRELAY_BDIGEST_H
#define MXRELAY_BDIGEST_H

#include <stddef.h>
#include <time.h>

#define BDIGEST_MAX 10000
#define BDIGEST_FIELD_MAX 300 /* each text field is cut to this (sanitised: printable ASCII) */

struct bdigest_entry {
	time_t when;
	char qid[20];
	char sender[BDIGEST_FIELD_MAX];
	char rcpt[BDIGEST_FIELD_MAX];
	char status[16];
	char reason[BDIGEST_FIELD_MAX];
};

/* Add one failure for owner (strings copied and cleaned; any may hold hostile bytes). */
void bdigest_add(const char *owner, const char *qid, const char *sender, const char *rcpt,
                 const char *status, const char *reason);

/*
 * The first owner with entries waiting, or NULL (valid until the next call
 * of bdigest_take or bdigest_add).
 */
const char *bdigest_next_owner(void);

/*
 * Take owner's entries: *out (malloc'd, the caller frees) holds *n of them
 * in the order they failed, *dropped how many more were only counted. The
 * owner is forgotten. 0, or -1 when it has nothing waiting.
 */
int bdigest_take(const char *owner, struct bdigest_entry **out, size_t *n, size_t *dropped);

/* Forget everything (exit, unit tests). */
void bdigest_clear(void);

#endif
