/*
 * spool internals shared by the spool_*.c files. Not part of the public API:
 * nothing outside spool/ includes this.
 */
#ifndef MXRELAY_SPOOL_INT_H
#define MXRELAY_SPOOL_INT_H

#include <sqlite3.h>

#include "spool.h"

/*
 * A 25 MB message becomes ~100 rows instead of one giant blob, so reading it
 * never needs one 25 MB SQLite value on top of the caller's buffer.
 */
#define SPOOL_CHUNK_MAX (256 * 1024)

/*
 * Domain of an address in SQL: the text after its LAST '@' (all of it
 * without one), ASCII lower case. recipients.domain (schema 5) holds it;
 * qstats.c computes the same in C, so the two always agree.
 */
#define SPOOL_DOMAIN_OF(a)                                                                         \
	"lower(substr(" a ", length(rtrim(" a ", replace(" a ", '@', ''))) + 1))"

/* Every statement the spool runs, prepared once at open (see spool_sql[]). */
enum spool_stmt {
	ST_BEGIN_WRITE,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INS_MSG,
	ST_INS_RCPT,
	ST_INS_CHUNK,
	ST_COUNT_PENDING,
	ST_LIST,
	ST_GET,
	ST_RCPTS,
	ST_BODY_INFO,
	ST_CHUNKS,
	ST_DELETE,
	ST_PENDING, /* spool_deliver.c from here on */
	ST_WORK_MSG,
	ST_WORK_RCPTS,
	ST_UPD_MSG,
	ST_UPD_RCPT,
	ST_DEL_IF_DONE,
	ST_AUDIT_GET, /* spool_audit.c */
	ST_AUDIT_PUT,
	ST_OLDEST,
	ST_CLAIM_GET, /* spool_claim (spool_deliver.c) */
	ST_CLAIM_ADD,
	ST_CLAIM_HOLD,
	ST_UNCLAIM,
	ST__COUNT
};

struct spool {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	int64_t default_max_pages; /* max_page_count at open: "unlimited" */
	int full_seen;             /* a step failed for lack of space (spool_take_full) */
	int64_t page_size;         /* read at open: spool_insert.c sizes body rows by it */
	/* spool_vacuum.c: where this handle's vacuum steps stand */
	int vac_started;     /* the first step (conversion of an old file) is done */
	int vac_off;         /* the file is not auto_vacuum = INCREMENTAL: no steps */
	int vac_running;     /* giving back until the free list is small */
	int vac_ckpt;        /* pages were given back: a TRUNCATE checkpoint is due */
	time_t vac_retry_at; /* after an error or a busy checkpoint: no step before */
	int64_t vac_changes; /* sqlite3_total_changes64 at the last step... */
	time_t vac_quiet;    /* ...and since when it has not moved */
};

/*
 * spool_util.c (the lowest file: it calls no other spool file).
 * spool_seterr formats into err when err is not NULL and errlen > 0.
 * spool_pragma_int runs a PRAGMA (or any one-row query) and reads its first
 * column as an integer; SQLITE_OK or the SQLite error code.
 */
void spool_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int spool_pragma_int(sqlite3 *db, const char *sql, int64_t *val);

/*
 * Step statement ID once, expecting no row, then reset it and clear its
 * bindings (blobs are bound SQLITE_STATIC, so no borrowed pointer may
 * outlive the call). Returns SQLITE_OK, or the extended SQLite error code
 * with "spool: WHAT[ QID]: sqlite message" in err.
 */
int spool_step_done(struct spool *sp, enum spool_stmt id, const char *what, const char *qid,
                    char *err, size_t errlen);

/* After a failed bind: fill err, reset statement ID, return the error code. */
int spool_bind_fail(struct spool *sp, enum spool_stmt id, const char *what, const char *qid,
                    char *err, size_t errlen);

/*
 * A read transaction gives list/get/read_body one consistent snapshot while
 * another handle writes or deletes. spool_read_end always closes it.
 */
int spool_read_begin(struct spool *sp, const char *what, char *err, size_t errlen);
void spool_read_end(struct spool *sp);

/*
 * spool_insert.c, shared with spool_apply so a bounce is stored by the same
 * code as accepted mail. spool_insert_one stores one message inside the
 * caller's write transaction and returns SQLITE_OK or an error code (err
 * filled). spool_is_disk_full says whether such a code means "out of
 * space". spool_rollback rolls back only a transaction still open.
 */
/* Copy a TEXT column into a malloc'd string; NULL stays NULL; *oom set when malloc fails. */
char *spool_col_dup(sqlite3_stmt *st, int col, int *oom);

/* A TEXT column, "" for NULL; valid until the next step or finalize of st. */
const char *spool_col_text(sqlite3_stmt *st, int col);

/*
 * Step st (prepared and bound by the caller, who finalizes it), handing
 * each row to each; a nonzero return from each stops early. 0 when every
 * row was read, 1 when each stopped, -1 on an SQLite error (errmsg on the
 * statement's handle).
 */
int spool_step_rows(sqlite3_stmt *st, int (*each)(void *ctx, sqlite3_stmt *st), void *ctx);

int spool_insert_one(struct spool *sp, struct spool_msg_in *m, char *err, size_t errlen);
/* spool_bdigest.c: n digest entries inside spool_apply's transaction; SQLITE_OK or a code. */
int spool_bdigest_add(struct spool *sp, const struct spool_bdigest *v, size_t n, char *err,
                      size_t errlen);
int spool_is_disk_full(struct spool *sp, int rc);
void spool_rollback(struct spool *sp);

/*
 * spool_read.c: copy the chunks of message ID into buf (exactly size bytes)
 * inside the caller's read transaction; -1 with err on a damaged body.
 */
int spool_copy_chunks(struct spool *sp, const char *qid, int64_t id, char *buf, size_t size,
                      char *err, size_t errlen);

/*
 * spool_audit.c: merge one accepted message into its audit row inside the
 * caller's write transaction, with the message's listener (NULL keeps the
 * row's). SQLITE_OK or an error code (err filled).
 */
int spool_audit_record(struct spool *sp, const struct spool_audit_in *a, const char *qid,
                       const char *listener, char *err, size_t errlen);

/* spool_schema.c: bring the schema up to SPOOL_SCHEMA_VERSION. */
int spool_schema_migrate(sqlite3 *db, const char *dir, char *err, size_t errlen);

#endif
