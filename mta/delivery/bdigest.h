/*
 * bdigest: the digest entries of a DSN (bounce_owner = WHO ADDRESS digest,
 * issue 15 item 5). deliver.c makes one entry per failed recipient whose
 * DSN goes to such an owner; spool_apply stores them in the spool with the
 * failures that caused them (schema 9, spool_bdigest.c), so a restart
 * loses none; the digest job (control/bdigest_job.c) reads an owner's
 * entries and mails them. Pure: keeps no state.
 */
#ifndef MXRELAY_BDIGEST_H
#define MXRELAY_BDIGEST_H

#include <time.h>

#include "spool/spool.h"

/*
 * One failure for owner into e: owner copied as it is (a configured
 * mailbox), every other string as printable ASCII
 * (anything else '?', runs of blanks one space) and cut to its field; any
 * may hold hostile bytes (the remote reply does). reason may be NULL.
 */
void bdigest_fill(struct spool_bdigest *e, const char *owner, const char *qid, const char *sender,
                  const char *rcpt, const char *status, const char *reason, time_t when);

#endif
