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
#define SPOOL_SCHEMA_VERSION 9

/* message flags */
#define SPOOL_F_8BITMIME 0x01	/* BODY=8BITMIME was given */
#define SPOOL_F_SMTPUTF8 0x02	/* SMTPUTF8 was given */
#define SPOOL_F_TLSRPT 0x04	/* an RFC 8460 TLS report (control/tlsrpt.c): delivered under
				   opportunistic TLS whatever the policy, not counted */

/* recipient states */
enum spool_rcpt_state {
	SPOOL_RCPT_PENDING = 0,	/* not yet tried or waiting for next_try */
	SPOOL_RCPT_DONE = 1,	/* delivered */
	SPOOL_RCPT_FAILED = 2,	/* permanently failed (bounce due) */
};

struct spool;
struct spool_audit_in;

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
	const char *listener;		/* name of the accepting listener; NULL = none (local submit) */
	const char *message_id;		/* Message-ID field value as sent, bounded; NULL = none */
	unsigned flags;			/* SPOOL_F_* */
	const struct spool_audit_in *audit;	/* NULL, or the client's audit row update */
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
	char *listener, *message_id;	/* NULL when not stored (schema 8) */
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

/* What one spool_vacuum_step did (all zero: nothing to do now). */
struct spool_vacuum {
	int more;		/* call again when idle: there is more to give back */
	int later;		/* call again in a second (a busy reader, or waiting for quiet) */
	int converted;		/* this step turned an old file into auto_vacuum = INCREMENTAL */
	int pending;		/* old file too big to convert now: left for the next start */
	int64_t live_bytes;	/* with converted or pending: the live data in the file */
	int64_t freed_pages;	/* pages this step gave back to the file system */
	int dropped_old;	/* this step dropped the emptied pre-version-4 body table */
};

/*
 * Give freed space back to the file system, one small step per call, so
 * a caller that runs it between its writes never holds them up for long
 * (the daemon's writer thread runs it while it has nothing queued).
 * The first call converts a spool made before auto_vacuum existed (one
 * VACUUM, only when its live data is under 64 MB, else *v says pending and
 * it is left alone until the next handle). After that a step is one
 * PRAGMA incremental_vacuum of at most 256 pages, taken only when the free
 * list is both large and a big part of the file, or, at the end of a run, a
 * TRUNCATE checkpoint that gives the WAL back too (never waiting for a
 * reader: when one is busy it is retried later); a WAL file over 1 MB is
 * also trimmed that way once nothing was written for 2 s (v->later asks
 * to be called again meanwhile). After an error the step
 * does nothing for 10 s, so a caller logging errors logs few. Fills *v;
 * 0, or -1 with err.
 */
int spool_vacuum_step(struct spool *sp, struct spool_vacuum *v, char *err, size_t errlen);

/*
 * Disk space (spool_space.c). spool_fs_free: bytes an unprivileged writer
 * may still use on DIR's file system (statvfs f_bavail). The reserve is the
 * file DIR/spool.reserve (0600), kept allocated (posix_fallocate, no holes)
 * so that releasing it frees real blocks: spool_reserve_fill allocates it to
 * BYTES (all or nothing: on failure it is left empty), spool_reserve_release
 * truncates it to 0, spool_reserve_size says how many bytes it holds now.
 * spool_bytes: *bytes the spool uses, the pages in use (page_count -
 * freelist_count, committed WAL frames included), and *reusable, its free
 * pages (SQLite fills them before it grows the file: room for the spool too).
 * spool_checkpoint: a PASSIVE WAL checkpoint, 0 / -1.
 * spool_take_full: 1 when a statement of this handle failed for lack of
 * space (SQLITE_FULL or an I/O error) since the last call, which it clears.
 */
int spool_fs_free(const char *dir, uint64_t *bytes, char *err, size_t errlen);
int spool_reserve_fill(const char *dir, uint64_t bytes, char *err, size_t errlen);
int spool_reserve_release(const char *dir, char *err, size_t errlen);
uint64_t spool_reserve_size(const char *dir);
int spool_bytes(struct spool *sp, uint64_t *bytes, uint64_t *reusable, char *err, size_t errlen);
int spool_checkpoint(struct spool *sp);
int spool_take_full(struct spool *sp);

/*
 * Before the daemon's first spool_open of DIR: check that the file system
 * has the free blocks SQLite's WAL index (-shm) will need for the WAL as it
 * is (SQLite maps that file with holes and a store into a hole on a full
 * file system is SIGBUS). If short, release DIR/spool.reserve (*released =
 * 1) and check again; if still short, -1 with "spool: open DIR: file system
 * full (N bytes free, M needed ...)".
 */
int spool_open_preflight(const char *dir, int *released, char *err, size_t errlen);

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
 * Every message that still has a PENDING recipient and is not held
 * (SPOOL_MSG_HELD), for building the schedule at startup, ordered by id: one pass over the messages table in
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
	int state;			/* SPOOL_MSG_*: held by an operator meanwhile? */
	int unfinished;			/* attempts in a row that never finished (spool_claim) */
	char *client_ip, *helo, *auth_user;	/* NULL when not stored */
	char *listener, *message_id;	/* NULL when not stored (schema 8) */
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
/*
 * bounce_owner ... digest (schema 9, spool_bdigest.c): the failures waiting
 * for an owner's daily digest, kept in the spool so a restart loses none.
 * Entries are added by spool_apply with the failures (and the DSN) that
 * caused them; at most SPOOL_BDIGEST_MAX rows in all, past that an owner's
 * further failures are only counted (bounce_digest_dropped). Text fields
 * arrive cleaned (printable ASCII) and cut to their sizes.
 */
#define SPOOL_BDIGEST_MAX 10000
#define SPOOL_BDIGEST_FIELD 300

struct spool_bdigest {
	time_t when;
	char owner[SPOOL_BDIGEST_FIELD];
	char qid[20];
	char sender[SPOOL_BDIGEST_FIELD];
	char rcpt[SPOOL_BDIGEST_FIELD];
	char status[16];
	char reason[SPOOL_BDIGEST_FIELD];
};

/* One owner's waiting failures, as spool_bdigest_load read them. */
struct spool_bdigest_set {
	char owner[SPOOL_BDIGEST_FIELD];	/* "" when no owner has any waiting */
	struct spool_bdigest *v;	/* malloc'd: the first max entries, oldest first */
	size_t n;
	uint64_t more;		/* failures beyond v: rows past max plus the dropped count */
	int64_t last_id;	/* the newest row read: spool_bdigest_done removes up to it */
	int64_t dropped;	/* the dropped count read */
};

/*
 * The first owner after `after` (byte order; "" for the first) with
 * failures waiting, into *out (spool_bdigest_set_free frees it), in one
 * read transaction. 0 (out->owner "" when there is none) / -1 with err.
 */
int spool_bdigest_load(struct spool *sp, const char *after, size_t max,
		       struct spool_bdigest_set *out, char *err, size_t errlen);
void spool_bdigest_set_free(struct spool_bdigest_set *s);

/*
 * The digest of s->owner is queued: remove its rows up to s->last_id and
 * s->dropped of its dropped count (what arrived since stays for the next
 * digest). Writer handle (WRITER_FN), own transaction. 0 / -1 with err.
 */
int spool_bdigest_done(struct spool *sp, const struct spool_bdigest_set *s, char *err,
		       size_t errlen);

struct spool_update {
	int64_t msg_id;
	const struct spool_result *results;
	size_t nresults;	/* may be 0: only next_try / attempts change */
	time_t next_try;	/* message's next due time */
	int attempts;		/* new attempt count for the message (stored as given) */
	struct spool_msg_in *bounce;	/* NULL, or a DSN to insert in the SAME transaction */
	const struct spool_bdigest *digest;	/* bounce_owner ... digest entries (schema 9) */
	size_t ndigest;		/* inserted in the SAME transaction (spool_bdigest.c) */
	struct spool_msg_in *bounce_copy; /* NULL, or the postmaster's copy of that DSN (issue 16:
				 * postmaster_bounce_copy), inserted with it, id set alike */
	int results_only;	/* 1: only the results (and the delete below); the message's
				 * next_try, attempts and unfinished count stay as they are:
				 * one destination's outcomes, recorded before the attempt ends */
	int *removed;		/* out (NULL: not wanted): 1 when this update deleted the
				 * message (no PENDING recipient left), else 0 */
};

/*
 * Record n attempt outcomes in ONE write transaction (group commit from the
 * writer thread, one fsync), all or nothing, returning only once durable.
 * For each update, in order: set the message's next_try and attempts (and
 * clear its unfinished count: this attempt finished), unless results_only
 * (then only the existence is checked); for each result set the recipient's state, next_try, last_reply and
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

/*
 * Claims (schema version 3): a delivery attempt is recorded before it
 * opens a connection or starts a transaction for the message, so an
 * attempt that takes the daemon down with it is counted.
 * messages.unfinished is the number of attempts in a row that never
 * reached spool_apply, which sets it back to 0.
 *
 * SPOOL_CHECK, when spool_load_work read a count at the limit (decided
 * again here, in a write transaction): a message that is gone or held is
 * SKIPPED; one whose count is already max_unfinished (> 0) is HELD
 * (state SPOOL_MSG_HELD, count kept, `mxrelayctl queue release` clears
 * it); any other is CHECKED (count unchanged, returned in unfinished).
 * SPOOL_CLAIM: count + 1 (CLAIMED) for a message that still exists, held
 * or not (the attempt is under way), else SKIPPED. SPOOL_UNCLAIM gives
 * back the claim of an attempt that ended without an outcome to record.
 */
enum spool_claim_op { SPOOL_CLAIM, SPOOL_UNCLAIM, SPOOL_CHECK };
enum spool_claim_result { SPOOL_CLAIMED, SPOOL_CLAIM_HELD, SPOOL_CLAIM_SKIPPED, SPOOL_CHECKED };

struct spool_claim {
	int64_t msg_id;
	int op;				/* enum spool_claim_op */
	int max_unfinished;		/* SPOOL_CHECK: hold at this count; 0: never */
	int result;			/* out: enum spool_claim_result */
	int unfinished;			/* out: the count before this call */
	char qid[SPOOL_QID_LEN + 1];	/* out: "" when the message is gone */
};

/*
 * n claims in ONE write transaction, all or nothing (-1 with err: nothing
 * changed). Committed with synchronous=NORMAL for this transaction only: the
 * WAL is written before the call returns, so a claim survives the process
 * being killed; a power loss may lose it, which costs only a count.
 */
int spool_claim(struct spool *sp, struct spool_claim *const *v, size_t n, char *err,
		size_t errlen);

/*
 * Legacy-client audit (spool_audit.c, schema version 2): one row per
 * (client address, AUTH user or "") saying how that client talks to us, so
 * an admin can list the devices to upgrade. Rows change only through
 * spool_msg_in.audit, inside the transaction that stores the message: an
 * accepted message and its audit update commit together (no extra fsync).
 */
#define SPOOL_AUDIT_LIST_MAX 20		/* distinct senders / From addresses kept per row */
#define SPOOL_AUDIT_VALUE_MAX 255	/* longer values are cut */

/* One accepted message as the audit sees it. All pointers borrowed for the insert call. */
struct spool_audit_in {
	const char *client_ip;		/* required */
	const char *auth_user;		/* NULL or "": no AUTH */
	const char *tls_version;	/* NULL or "": plaintext; else OpenSSL's "TLSv1.2" */
	const char *tls_cipher;		/* NULL or "" with plaintext */
	const char *auth_mech;		/* NULL or "" without AUTH */
	int plaintext_auth;		/* AUTH was used without TLS */
	int allowlisted;		/* sent without AUTH from an allowlisted address */
	const char *sender;		/* envelope sender, "" for the null sender */
	const char *const *header_from;	/* header From mailboxes (the first few) */
	size_t nheader_from;
	time_t when;
};

/*
 * One audit row. tls_version, tls_cipher and auth_mech are the latest
 * message's; worst_tls is the oldest TLS version ever seen ("" if only
 * plaintext); plaintext_auth and allowlisted stick once seen. senders and
 * header_from are comma-joined distinct lists of at most
 * SPOOL_AUDIT_LIST_MAX values (a ',' inside a value is stored as '?').
 */
/*
 * Event counts of the audit row (schema version 7, issue 15), in the order
 * of enum audit_event (mta/intake/audit.h): sunset_warn, sunset_refused,
 * rate_limited, repaired, bare_lf. 0 when read from an older spool.
 */
#define SPOOL_AUDIT_NEVENTS 5

struct spool_audit_row {
	char *client_ip, *auth_user, *tls_version, *tls_cipher, *worst_tls, *auth_mech;
	int plaintext_auth, allowlisted;
	char *senders, *header_from;
	int64_t messages;
	time_t first_seen, last_seen;
	int64_t events[SPOOL_AUDIT_NEVENTS];
	char *listener;			/* the last listener it used; "" unknown (schema 9) */
};

/* Counts to add to one audit row (spool_auditev.c); strings borrowed for the call. */
struct spool_audit_event {
	const char *client_ip; /* NULL or "": skipped */
	const char *auth_user; /* NULL or "": no AUTH */
	int64_t count[SPOOL_AUDIT_NEVENTS];
	time_t when;           /* last_seen becomes at least this; first_seen of a new row */
};

/*
 * Add the counts of v[0..n) to their audit rows (a new row has messages =
 * 0) in one transaction on the writer's handle. 0 / -1 with err.
 */
int spool_audit_events(struct spool *sp, const struct spool_audit_event *v, size_t n, char *err,
		       size_t errlen);

/*
 * Read every audit row last seen at or after `since` (0: all) from
 * DIR/spool.db, opened read-only: works while mxrelayd runs (WAL) and never
 * creates, migrates or locks out the daemon. *out is one malloc'd array of
 * *n rows (free with spool_audit_rows_free), in no particular order.
 * -1 with err when the database does not exist ("no spool database at
 * PATH"), predates the audit (schema version 1), or cannot be read.
 */
int spool_audit_list(const char *dir, time_t since, struct spool_audit_row **out, size_t *n,
		     char *err, size_t errlen);
void spool_audit_rows_free(struct spool_audit_row *rows, size_t n);

/*
 * The received time of the oldest message still queued (one index probe:
 * ids grow with time), or 0 with an empty queue. For the queue-age gauge.
 */
int spool_oldest_received(struct spool *sp, time_t *oldest, char *err, size_t errlen);


/* What spool_backup copied (counted in the copy). */
struct spool_backup_info {
	int64_t messages, pending; /* messages; recipients still to deliver */
	int64_t pages, bytes;
	char integrity[256]; /* "ok", or the first problem integrity_check found */
};

/*
 * An online backup of DIR/spool.db (spool_backup.c, mxrelayctl backup) into
 * dest, an EMPTY file the caller has made (mode 0600: it holds mail): every
 * page in one read transaction of the live database (WAL: the daemon's
 * writers go on; the copy is consistent as of the transaction's start),
 * then made a single file (journal_mode=DELETE) and checked. 0, or -1 with
 * err (a copy that fails integrity_check or foreign_key_check is -1).
 */
int spool_backup(const char *dir, const char *dest, struct spool_backup_info *info, char *err,
		 size_t errlen);

/*
 * Queue administration (spool_admin.c), for mxrelayctl's queue commands
 * through the daemon. messages.state: SPOOL_MSG_QUEUED, or SPOOL_MSG_HELD
 * (kept, never delivered, not loaded by spool_load_pending). Errors about a
 * missing message read exactly "no such message QID".
 */
#define SPOOL_MSG_QUEUED 0
#define SPOOL_MSG_HELD 1

struct spool_qrcpt {
	char *address;
	int state;		/* enum spool_rcpt_state */
	int attempts;
	time_t next_try;
	char *last_reply;	/* NULL: not tried yet */
};

struct spool_qmsg {
	int64_t id;
	char qid[SPOOL_QID_LEN + 1];
	char *sender;			/* "" for the null sender */
	time_t received;
	size_t size;
	int state;			/* SPOOL_MSG_* */
	int attempts;
	time_t next_try;
	char *client_ip, *helo, *auth_user;	/* NULL when not stored */
	char *listener, *message_id;	/* NULL when not stored (schema 8) */
	size_t npending, ndone, nfailed;	/* recipients by state */
	struct spool_qrcpt *rcpts;	/* list: the first few PENDING; show: all, in order */
	size_t nrcpts;
	char *last_reply;		/* first stored reply of a pending recipient, or NULL */
};

/*
 * The first max messages (oldest first) with up to max_rcpts pending
 * recipients each, in one snapshot. *out: malloc'd array of *n, free with
 * spool_qmsgs_free(*out, *n).
 */
int spool_queue_list(struct spool *sp, size_t max, size_t max_rcpts, struct spool_qmsg **out,
		     size_t *n, char *err, size_t errlen);
/* One message with every recipient. Free with spool_qmsgs_free(*out, 1). */
int spool_queue_show(struct spool *sp, const char *qid, struct spool_qmsg **out, char *err,
		     size_t errlen);
void spool_qmsgs_free(struct spool_qmsg *v, size_t n);

/* Row id (and state, if not NULL) of QID. */
int spool_queue_find(struct spool *sp, const char *qid, int64_t *id, int *state, char *err,
		     size_t errlen);

struct spool_qdomain {
	char *domain;		/* lower case */
	size_t messages, rcpts;	/* with a pending recipient there / pending recipients */
	time_t oldest;		/* received time of the oldest such message */
};

/* Age buckets of spool_qsummary: < 5 min, < 1 h, < 1 day, older. */
#define SPOOL_AGE_BUCKETS 4

struct spool_qsummary {
	size_t messages, held, rcpts;	/* rcpts: pending recipients */
	time_t oldest;			/* 0: empty queue */
	size_t age_messages[SPOOL_AGE_BUCKETS];
	time_t age_oldest[SPOOL_AGE_BUCKETS];
	struct spool_qdomain *domains;	/* most messages first, at most max_domains */
	size_t ndomains, ndomains_total;
};

/* Counts per destination domain and per age (relative to now), one snapshot. */
int spool_queue_summary(struct spool *sp, time_t now, size_t max_domains,
			struct spool_qsummary *out, char *err, size_t errlen);
void spool_qsummary_free(struct spool_qsummary *s);

/*
 * Ids of the queued (not held) messages with a pending recipient in domain
 * (case-insensitive). *ids is malloc'd (the caller frees).
 */
int spool_queue_domain_ids(struct spool *sp, const char *domain, int64_t **ids, size_t *n,
			   char *err, size_t errlen);

/*
 * The start-up pass of the daemon's queue statistics, in one snapshot: fn
 * is called once per message with address NULL (id order; held: state
 * SPOOL_MSG_HELD), then once per pending recipient with its msg_id and, as
 * address, its domain (recipients.domain: lower case, no '@'; received and
 * held 0). address is valid during the call only.
 */
typedef void (*spool_stats_row_fn)(void *arg, int64_t id, time_t received, int held,
				   const char *address);
int spool_queue_stats_load(struct spool *sp, spool_stats_row_fn fn, void *arg, char *err,
			   size_t errlen);

/*
 * Write side, one transaction each (the writer thread's handle).
 * set_state: hold (SPOOL_MSG_HELD) or release (SPOOL_MSG_QUEUED); next_try
 * > 0 also sets the message's next try. delete: the message, its
 * recipients and body. Both give the row id in *id.
 */
int spool_queue_set_state(struct spool *sp, const char *qid, int state, time_t next_try,
			  int64_t *id, char *err, size_t errlen);
int spool_queue_delete(struct spool *sp, const char *qid, int64_t *id, char *err, size_t errlen);

/*
 * Bulk queue commands (spool_qsel.c, issue 16). A selection is either
 * explicit queue ids (lower case; any state), or every message (ALL) that
 * matches all of the given filters: from (the envelope sender, ASCII
 * case-insensitive, "" the null sender), to (a PENDING recipient's address,
 * same), domain (a PENDING recipient's domain, lower case) and state
 * (SPOOL_MSG_QUEUED, SPOOL_MSG_HELD, or -1 for both).
 */
struct spool_qsel {
	const char *const *qids;
	size_t nqids;
	const char *from, *to, *domain; /* NULL: no such filter */
	int state;
};

struct spool_qhit {
	int64_t id;
	uint64_t qid; /* the 16 hex digits as a number: "%016llx" prints it again */
	int64_t size; /* bytes: the daemon bounds a batch by them */
	int state;    /* SPOOL_MSG_* */
};

/*
 * The matching messages in id order, one snapshot: *out is malloc'd (*n
 * entries; the caller frees it). An explicit id that is not in the spool is
 * simply not in *out.
 */
int spool_queue_select(struct spool *sp, const struct spool_qsel *sel, struct spool_qhit **out,
		       size_t *n, char *err, size_t errlen);

/* The domain of a recipient address as recipients.domain has it (after the last '@'). */
void spool_qsel_domain(const char *addr, char *out, size_t outlen);

/*
 * Hold, release (due at next_try, unfinished count cleared) or delete the
 * messages ids[0..n) in ONE write transaction (the writer's handle):
 * done[i] = 1 for each message that still existed. All or nothing.
 */
enum spool_qb_op { SPOOL_QB_HOLD, SPOOL_QB_RELEASE, SPOOL_QB_DELETE };
int spool_queue_batch(struct spool *sp, enum spool_qb_op op, const int64_t *ids, size_t n,
		      time_t next_try, unsigned char *done, char *err, size_t errlen);

/*
 * `mxrelayctl queue cat` (spool_admin.c): message QID with every recipient
 * (*msg, free with spool_qmsgs_free(*msg, 1)) and its stored bytes (*body,
 * NUL-terminated, *len without the NUL; the caller frees), read from
 * DIR/spool.db opened read-only in one snapshot: works while mxrelayd runs
 * and never changes the file. "no such message QID" when it is not there.
 */
int spool_queue_cat(const char *dir, const char *qid, struct spool_qmsg **msg, char **body,
		    size_t *len, char *err, size_t errlen);

/*
 * Outbound TLS counters (schema 6, issue 13). The daemon adds to them
 * (spool_tls_add, spool_tlsstats.c, on the writer); `mxrelayctl tls report`
 * and the daily TLS-RPT read them (spool_tls_list, spool_tlsread.c). day is
 * UTC days since the epoch; policy is tls_kind_name() (mta/delivery/tlsreq.h),
 * result_type an RFC 8460 result type. Strings borrowed for the call.
 */
struct spool_tls_row {
	int64_t day;
	const char *domain, *policy, *policy_string, *mx;
	int64_t sessions_ok, sessions_failed, delivered, verified;
};

struct spool_tls_failure {
	int64_t day;
	const char *domain, *policy, *result_type, *sending_ip, *mx, *mx_ip, *detail;
	int64_t count;
};

/* Add rows and failures to the counts (upsert, count = count + ?); prune days
 * older than 40 in the same transaction. Writer handle. 0 / -1. */
int spool_tls_add(struct spool *sp, const struct spool_tls_row *rows, size_t nrows,
                  const struct spool_tls_failure *fails, size_t nfails, int64_t today,
                  char *err, size_t errlen);

/* Read-only, for mxrelayctl and the report job: every row and failure from
 * since_day on, in (day, domain) order; the callbacks return 0 to go on. */
int spool_tls_list(const char *dir, int64_t since_day,
                   int (*row_cb)(void *arg, const struct spool_tls_row *r),
                   int (*fail_cb)(void *arg, const struct spool_tls_failure *f), void *arg,
                   char *err, size_t errlen);

/*
 * TLS-RPT bookkeeping (tlsrpt_sent, spool_tlsread.c). spool_tlsrpt_sent:
 * read-only (own handle, like spool_tls_list), *sent = 1 when any report
 * row exists for (day, domain), sent or given up. spool_tlsrpt_mark: writer
 * handle, one row per (day, domain, rua); status is "sent", "queued QID" or
 * why it was given up. 0 / -1 with err.
 */
/*
 * Read-only, for the report job: the rows and failures of the (day, domain)
 * pairs of days [from, to] that have no tlsrpt_sent row yet, at most
 * max_pairs pairs, oldest day first (then domain); *capped = 1 when more
 * pairs were due (the next run takes them). Callbacks as spool_tls_list's.
 */
int spool_tlsrpt_due(const char *dir, int64_t from, int64_t to, size_t max_pairs,
                     int (*row_cb)(void *arg, const struct spool_tls_row *r),
                     int (*fail_cb)(void *arg, const struct spool_tls_failure *f), void *arg,
                     int *capped, char *err, size_t errlen);
int spool_tlsrpt_sent(const char *dir, int64_t day, const char *domain, int *sent, char *err,
                      size_t errlen);
int spool_tlsrpt_mark(struct spool *sp, int64_t day, const char *domain, const char *rua,
                      const char *report_id, int64_t when, const char *status, char *err,
                      size_t errlen);
/*
 * Read-only (own handle): the MTA-STS policy text cached for domain
 * (sts_policies.policy), malloc'ed into *policy, or NULL when none. For the
 * policy-string of TLS reports (RFC 8460 4.4). 0 / -1 with err.
 */
int spool_sts_policy_text(const char *dir, const char *domain, char **policy, char *err,
                          size_t errlen);

/*
 * MTA-STS policies (table sts_policies, spool_sts.c), one row per recipient
 * domain: the policy as fetched (policy), its parsed mode and mx patterns
 * (mx: one per line), max_age, and fetched / expires (unix seconds,
 * expires = fetched + max_age). Strings are borrowed: during the call only.
 */
struct spool_sts_row {
	const char *domain, *id, *mode, *mx, *policy;
	int64_t max_age, fetched, expires;
};

/*
 * Insert or replace r (by domain) and drop rows expired at now. On the
 * writer's handle (WRITER_FN). 0 / -1 with err.
 */
int spool_sts_put(struct spool *sp, const struct spool_sts_row *r, int64_t now, char *err,
                  size_t errlen);

/*
 * cb for every row not expired at now (cb returns non-zero to stop).
 * 0 / -1 with err.
 */
int spool_sts_load(struct spool *sp, int64_t now,
                   int (*cb)(void *arg, const struct spool_sts_row *r), void *arg, char *err,
                   size_t errlen);

#endif
