/*
 * spool_insert: the group commit. Many messages, one IMMEDIATE transaction,
 * one fsync; all or nothing.
 *
 * The caller answers 250 only after this returns 0, so a failure must leave
 * no trace of the batch: every error path ends in ROLLBACK.
 */
#include <errno.h>
#include <string.h>

#include "spool_int.h"

/*
 * Only the shape is checked (non-empty, terminated inside the array): the
 * caller makes the ids, and uniqueness is the UNIQUE constraint's job.
 */
static int
check_msg(const struct spool_msg_in *m, char *err, size_t errlen)
{
	const char *why = NULL;

	if (m == NULL || m->qid[0] == '\0' || memchr(m->qid, '\0', sizeof m->qid) == NULL) {
		spool_seterr(err, errlen, "spool: insert: %s", m ? "bad queue id" : "NULL message");
		return -1;
	}
	if (m->nrcpts == 0 || m->rcpts == NULL)
		why = "no recipients"; /* RFC 5321 3.3: DATA needs an accepted RCPT */
	else if (m->body == NULL && m->body_len > 0)
		why = "NULL body";
	if (why == NULL)
		return 0;
	spool_seterr(err, errlen, "spool: insert %s: %s", m->qid, why);
	return -1;
}

static int
insert_rcpts(struct spool *sp, const struct spool_msg_in *m, int64_t msg_id, char *err,
             size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_INS_RCPT];
	size_t i;
	int rc;

	for (i = 0; i < m->nrcpts; i++) {
		if (sqlite3_bind_int64(st, 1, msg_id) != SQLITE_OK ||
		    sqlite3_bind_text(st, 2, m->rcpts[i], -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 3, (int64_t)m->received) != SQLITE_OK)
			return spool_bind_fail(sp, ST_INS_RCPT, "insert", m->qid, err, errlen);
		rc = spool_step_done(sp, ST_INS_RCPT, "insert", m->qid, err, errlen);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/*
 * The length of the next body row, LEFT bytes still to store (issue 12).
 * A row up to about the page size stays whole on its leaf page and packs
 * with the rows around it; but 1.3-4 KB rows pack badly in 4 KB pages (two
 * 1.6 KB rows fill 77 %), so a tail of that size is cut into equal pieces
 * of at most 5/16 of a page. Measured on 4 KB pages, 1-6 KB bodies: 1.04x
 * to 1.19x the body bytes, against up to 1.65x uncut. Longer rows go to
 * overflow pages, which SQLite fills whole.
 */
static size_t
row_len(size_t left, int64_t page_size)
{
	size_t page = page_size > 0 ? (size_t)page_size : 4096;
	size_t piece = page * 5 / 16, k;

	if (left > SPOOL_CHUNK_MAX)
		return SPOOL_CHUNK_MAX;
	if (left <= piece || left > page)
		return left;
	k = (left + piece - 1) / piece;
	return (left + k - 1) / k;
}

/* SQLITE_STATIC: the body is borrowed, and every step is reset before return. */
static int
insert_chunks(struct spool *sp, const struct spool_msg_in *m, int64_t msg_id, char *err,
              size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_INS_CHUNK];
	size_t off, len;
	int64_t seq;
	int rc;

	for (off = 0, seq = 0; off < m->body_len; off += len, seq++) {
		len = row_len(m->body_len - off, sp->page_size);
		if (sqlite3_bind_int64(st, 1, msg_id) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, seq) != SQLITE_OK ||
		    sqlite3_bind_blob64(st, 3, m->body + off, len, SQLITE_STATIC) != SQLITE_OK)
			return spool_bind_fail(sp, ST_INS_CHUNK, "insert", m->qid, err, errlen);
		rc = spool_step_done(sp, ST_INS_CHUNK, "insert", m->qid, err, errlen);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

int
spool_insert_one(struct spool *sp, struct spool_msg_in *m, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_INS_MSG];
	int64_t msg_id;
	int rc;

	if (check_msg(m, err, errlen) < 0)
		return SQLITE_MISUSE;
	if (sqlite3_bind_text(st, 1, m->qid, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, m->sender, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (int64_t)m->received) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, (int64_t)m->body_len) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, m->client_ip, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, m->helo, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 7, m->auth_user, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 8, (int64_t)m->flags) != SQLITE_OK ||
	    sqlite3_bind_text(st, 9, m->listener, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 10, m->message_id, -1, SQLITE_STATIC) != SQLITE_OK)
		return spool_bind_fail(sp, ST_INS_MSG, "insert", m->qid, err, errlen);
	rc = spool_step_done(sp, ST_INS_MSG, "insert", m->qid, err, errlen);
	if (rc != SQLITE_OK)
		return rc;
	msg_id = sqlite3_last_insert_rowid(sp->db);
	m->id = msg_id;
	rc = insert_rcpts(sp, m, msg_id, err, errlen);
	if (rc != SQLITE_OK)
		return rc;
	rc = insert_chunks(sp, m, msg_id, err, errlen);
	/* the audit row commits with the message it counts: same transaction, same fsync */
	if (rc == SQLITE_OK && m->audit != NULL)
		rc = spool_audit_record(sp, m->audit, m->qid, m->listener, err, errlen);
	return rc;
}

/*
 * Out of space shows up as SQLITE_FULL (also our own max_page_count cap),
 * as an I/O error from write/fsync, or as a failed create of the WAL or shm
 * file with ENOSPC. Only the last needs errno, which may be stale otherwise.
 */
int
spool_is_disk_full(struct spool *sp, int rc)
{
	int primary = rc & 0xff;

	if (primary == SQLITE_FULL || primary == SQLITE_IOERR)
		return 1;
	return primary == SQLITE_CANTOPEN && sqlite3_system_errno(sp->db) == ENOSPC;
}

/*
 * SQLite rolls back by itself after some errors (FULL, IOERR, NOMEM), and a
 * second ROLLBACK would fail: only roll back a transaction still open.
 */
void
spool_rollback(struct spool *sp)
{
	if (!sqlite3_get_autocommit(sp->db))
		spool_step_done(sp, ST_ROLLBACK, "rollback", NULL, NULL, 0);
}

int
spool_insert_batch(struct spool *sp, struct spool_msg_in *const *msgs, size_t n, int *disk_full,
                   char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (disk_full != NULL)
		*disk_full = 0;
	if (n == 0)
		return 0;
	if (msgs == NULL) {
		spool_seterr(err, errlen, "spool: insert: NULL batch");
		return -1;
	}
	/* A transaction left open by an earlier failed ROLLBACK would hold the write lock. */
	spool_rollback(sp);
	rc = spool_step_done(sp, ST_BEGIN_WRITE, "insert: begin", NULL, err, errlen);
	for (i = 0; rc == SQLITE_OK && i < n; i++)
		rc = spool_insert_one(sp, msgs[i], err, errlen);
	if (rc == SQLITE_OK)
		rc = spool_step_done(sp, ST_COMMIT, "insert: commit", NULL, err, errlen);
	if (rc == SQLITE_OK)
		return 0;
	if (disk_full != NULL && spool_is_disk_full(sp, rc))
		*disk_full = 1;
	spool_rollback(sp);
	return -1;
}
