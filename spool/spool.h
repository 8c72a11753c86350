/*
 * spool: the durable message queue, one SQLite database in WAL mode with
 * synchronous=FULL.
 *
 * Owns: the schema (versioned in PRAGMA user_version, migrated on open), the
 * message / recipient / body-chunk tables, and every SQL statement.
 * Never: starts threads, sets timers, opens sockets or logs. Every call
 * returns 0 on success or -1 with a one-line reason in the caller's err buffer.
 *
 * A struct spool is NOT thread-safe: use one handle per thread (SQLite WAL
 * allows one writer and many readers across handles/processes).
 */
#ifndef MXRELAY_SPOOL_H
#define MXRELAY_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SPOOL_QID_LEN 16	/* queue ids are 16 lowercase hex characters */
#define SPOOL_SCHEMA_VERSION 1

/* message flags */
#define SPOOL_F_8BITMIME 0x01	/* BODY=8BITMIME was given */
#define SPOOL_F_SMTPUTF8 0x02	/* SMTPUTF8 was given */

/* recipient states */
enum spool_rcpt_state {
	SPOOL_RCPT_PENDING = 0,	/* not yet tried or waiting for next_try */
	SPOOL_RCPT_DONE = 1,	/* delivered */
	SPOOL_RCPT_FAILED = 2,	/* permanently failed (bounce due) */
};

struct spool;

/*
 * One message handed to spool_insert_batch. All pointers are borrowed for
 * the duration of the call only. body is the whole message (headers and
 * body), CRLF line endings, already dot-unstuffed.
 */
struct spool_msg_in {
	char qid[SPOOL_QID_LEN + 1];	/* caller-made, unique */
	const char *sender;		/* envelope MAIL FROM, "" for the null sender */
	const char *const *rcpts;	/* envelope recipients */
	size_t nrcpts;
	const char *body;
	size_t body_len;
	time_t received;
	const char *client_ip;		/* may be NULL */
	const char *helo;		/* may be NULL */
	const char *auth_user;		/* may be NULL when not authenticated */
	unsigned flags;			/* SPOOL_F_* */
	int64_t id;			/* out: row id given by the insert, for the scheduler */
};

/* A message summary, as returned by spool_list / spool_get. Free with spool_msg_free. */
struct spool_msg {
	int64_t id;
	char qid[SPOOL_QID_LEN + 1];
	char *sender;
	char **rcpts;
	int *rcpt_state;		/* enum spool_rcpt_state per recipient */
	size_t nrcpts;
	size_t body_len;
	time_t received;
	char *client_ip, *helo, *auth_user;	/* NULL when not stored */
	unsigned flags;
};

/*
 * Open (creating when needed) DIR/spool.db, creating DIR with mode 0700 if it
 * does not exist. Applies pragmas (WAL, synchronous=FULL, foreign keys,
 * busy_timeout) and migrates the schema up to SPOOL_SCHEMA_VERSION. A
 * database with a NEWER user_version than this code knows is refused.
 * On success *sp owns the handle; close it with spool_close.
 */
int spool_open(struct spool **sp, const char *dir, char *err, size_t errlen);
void spool_close(struct spool *sp);

/*
 * Store n messages in ONE transaction (one fsync for all): message row,
 * recipients, and the body split into chunks of at most 256 KiB. All or
 * nothing: on failure the transaction is rolled back, nothing is stored, and
 * -1 is returned; *disk_full (if not NULL) is set to 1 when the cause was
 * SQLITE_FULL / ENOSPC / SQLITE_IOERR, so the caller can answer 452 4.3.1.
 * Returns only after the commit is durable. A message with an empty or
 * unterminated qid, no recipients, or a duplicate qid fails the whole batch
 * (*disk_full = 0). New messages and recipients are due at once
 * (next_try = received). n == 0 is a no-op returning 0.
 */
int spool_insert_batch(struct spool *sp, struct spool_msg_in *const *msgs, size_t n,
		       int *disk_full, char *err, size_t errlen);

/* Count messages that still have at least one PENDING recipient. */
int spool_count(struct spool *sp, int64_t *count, char *err, size_t errlen);

/*
 * List up to max messages (oldest first). *out is a malloc'd array of
 * *n malloc'd entries: free each with spool_msg_free and then free(*out).
 * With no messages *n is 0 and *out may be NULL (free(NULL) is fine).
 */
int spool_list(struct spool *sp, size_t max, struct spool_msg ***out, size_t *n,
	       char *err, size_t errlen);

/* Fetch one message by queue id. -1 with "no such message" if absent. */
int spool_get(struct spool *sp, const char *qid, struct spool_msg **out, char *err, size_t errlen);

/*
 * Read the whole body of a message into a malloc'd buffer (*body, *len);
 * the caller frees *body. The buffer has one extra NUL byte after *len
 * bytes (not counted in *len), so text callers may treat it as a string.
 * -1 with "no such message" if absent.
 */
int spool_read_body(struct spool *sp, const char *qid, char **body, size_t *len,
		    char *err, size_t errlen);

/* Delete a message with its recipients and body. -1 if absent. */
int spool_delete(struct spool *sp, const char *qid, char *err, size_t errlen);

/* Frees m and everything it points to. NULL is a no-op. */
void spool_msg_free(struct spool_msg *m);

/*
 * Cap the size of spool.db at about BYTES (PRAGMA max_page_count =
 * bytes / page_size); 0 removes the cap. Applies to this handle only and is
 * not stored in the database. A cap below the current size holds the file
 * at its current size. Once the cap is hit, spool_insert_batch fails with
 * *disk_full = 1 exactly as on a full disk (tests use this to get a real
 * SQLITE_FULL; a daemon may use it to keep the spool off the last bytes of
 * a shared file system).
 */
int spool_set_max_size(struct spool *sp, int64_t bytes, char *err, size_t errlen);

/*
 * Delivery side (spool_deliver.c). The daemon keeps an in-memory schedule of
 * (id, next_try); the database stays the durable truth. Ids come from
 * AUTOINCREMENT and are never reused, so a stale id can only miss, never
 * hit another message.
 */

/* One entry of the schedule: a message with work left, and when it is due. */
struct spool_due {
	int64_t id;
	time_t next_try;
};

/*
 * Every message that still has a PENDING recipient, for building the
 * schedule at startup, ordered by id: one pass over the messages table in
 * rowid order with one in-order probe of the recipients_msg index per
 * message, no sort (about 0.6 s for 1M messages here). *out is one malloc'd
 * array of *n entries (the caller frees it; with no messages *n is 0 and
 * *out may be NULL).
 */
int spool_load_pending(struct spool *sp, struct spool_due **out, size_t *n, char *err,
		       size_t errlen);

/* A PENDING recipient as handed to delivery. */
struct spool_rcpt {
	int64_t id;		/* recipient row id: the key for spool_result */
	char *address;
	int attempts;		/* attempts so far for this recipient */
};

/*
 * Everything one delivery attempt needs, read in one snapshot. Free with
 * spool_work_free: it owns every pointer inside.
 */
struct spool_work {
	int64_t id;
	char qid[SPOOL_QID_LEN + 1];
	char *sender;			/* "" for the null sender */
	time_t received;
	unsigned flags;			/* SPOOL_F_* */
	int attempts;			/* message attempts so far */
	char *client_ip, *helo, *auth_user;	/* NULL when not stored */
	struct spool_rcpt *rcpts;	/* PENDING recipients only, in arrival order */
	size_t nrcpts;			/* 0 when nothing is pending any more */
	char *body;			/* whole message, NUL after body_len (not counted) */
	size_t body_len;
};

/*
 * Load message ID with its PENDING recipients and its body (one malloc,
 * byte-exact). -1 with "no such message" if absent, and -1 on a damaged body
 * (missing chunks): never hand out a truncated message. *out is NULL on
 * failure.
 */
int spool_load_work(struct spool *sp, int64_t id, struct spool_work **out, char *err,
		    size_t errlen);

/* Frees w and everything it points to. NULL is a no-op. */
void spool_work_free(struct spool_work *w);

/* The outcome of one attempt for one recipient. */
struct spool_result {
	int64_t rcpt_id;	/* spool_rcpt.id */
	int state;		/* enum spool_rcpt_state: PENDING = deferred, DONE, FAILED */
	time_t next_try;	/* when a deferred recipient is due again */
	const char *reply;	/* remote or local text for last_reply, may be NULL */
};

/* The outcome of one attempt for one message. All pointers are borrowed. */
struct spool_update {
	int64_t msg_id;
	const struct spool_result *results;
	size_t nresults;	/* may be 0: only next_try / attempts change */
	time_t next_try;	/* message's next due time */
	int attempts;		/* new attempt count for the message (stored as given) */
	struct spool_msg_in *bounce;	/* NULL, or a DSN to insert in the SAME transaction */
};

/*
 * Record n attempt outcomes in ONE write transaction (group commit from the
 * writer thread, one fsync), all or nothing, returning only once durable.
 * For each update, in order: set the message's next_try and attempts; for
 * each result set the recipient's state, next_try, last_reply and
 * attempts + 1; insert the bounce exactly as spool_insert_batch would (same
 * checks, due at once, bounce->id set to its new row id: valid only when the
 * call returns 0); then delete the message (cascade) if it has no PENDING
 * recipient left. The bounce commits together with the state change
 * that caused it, so a crash can neither lose a bounce nor let a retry
 * create it twice.
 *
 * An update whose message no longer exists (deleted by an operator while it
 * was in flight) is skipped whole, its bounce included. A result for a
 * recipient that is not a PENDING recipient of that message, or with a state
 * outside enum spool_rcpt_state, fails the whole call (it is a caller bug:
 * applying one outcome twice). On failure nothing at all has changed;
 * *disk_full (if not NULL) is 1 when the cause was lack of space, as in
 * spool_insert_batch. n == 0 is a no-op returning 0.
 */
int spool_apply(struct spool *sp, const struct spool_update *u, size_t n, int *disk_full,
		char *err, size_t errlen);

#endif
