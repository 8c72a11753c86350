/*
 * spool_deliver: the delivery side of the spool. Startup loads the schedule
 * (spool_load_pending), each attempt loads its work (spool_load_work), and
 * the writer thread records outcomes in group commits (spool_apply).
 *
 * spool_apply is where a message's life ends: recipient states, the DSN that
 * a failure causes, and the delete of a finished message commit in one
 * transaction. Splitting them would let a crash lose a bounce or, on the
 * retry that follows, send it twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

int
spool_load_pending(struct spool *sp, struct spool_due **out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_PENDING];
	struct spool_due *v = NULL;
	size_t cap = 0, len = 0;
	int rc;

	*out = NULL;
	*n = 0;
	/* One statement is its own snapshot: no explicit read transaction needed. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct spool_due *p = realloc(v, ncap * sizeof *p);

			if (p == NULL) {
				spool_seterr(err, errlen, "spool: load pending: out of memory");
				goto fail;
			}
			v = p;
			cap = ncap;
		}
		v[len].id = sqlite3_column_int64(st, 0);
		v[len].next_try = (time_t)sqlite3_column_int64(st, 1);
		len++;
	}
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: load pending: %s", sqlite3_errmsg(sp->db));
		goto fail;
	}
	sqlite3_reset(st);
	*out = v;
	*n = len;
	return 0;
fail:
	sqlite3_reset(st);
	free(v);
	return -1;
}

/* Fill W from a row of ST_WORK_MSG (MSG_COLS, attempts, state, unfinished: spool.c). */
static int
work_row(struct spool_work *w, sqlite3_stmt *st)
{
	const unsigned char *qid = sqlite3_column_text(st, 1);
	int64_t size = sqlite3_column_int64(st, 4);
	int oom = 0;

	w->id = sqlite3_column_int64(st, 0);
	if (qid != NULL)
		strncpy(w->qid, (const char *)qid, SPOOL_QID_LEN);
	w->sender = spool_col_dup(st, 2, &oom);
	w->received = (time_t)sqlite3_column_int64(st, 3);
	w->client_ip = spool_col_dup(st, 5, &oom);
	w->helo = spool_col_dup(st, 6, &oom);
	w->auth_user = spool_col_dup(st, 7, &oom);
	w->flags = (unsigned)sqlite3_column_int64(st, 8);
	w->listener = spool_col_dup(st, 9, &oom);
	w->message_id = spool_col_dup(st, 10, &oom);
	w->attempts = sqlite3_column_int(st, 11);
	w->state = sqlite3_column_int(st, 12);
	w->unfinished = sqlite3_column_int(st, 13);
	if (oom || w->sender == NULL)
		return -1; /* sender is NOT NULL: only malloc makes it NULL */
	if (size < 0 || (uint64_t)size >= SIZE_MAX)
		return -2;
	w->body_len = (size_t)size;
	return 0;
}

static int
load_msg(struct spool *sp, int64_t id, struct spool_work *w, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_WORK_MSG];
	int rc, ret = -1;

	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		spool_bind_fail(sp, ST_WORK_MSG, "load work", NULL, err, errlen);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		spool_seterr(err, errlen, "spool: load work %lld: no such message", (long long)id);
	else if (rc != SQLITE_ROW)
		spool_seterr(err, errlen, "spool: load work %lld: %s", (long long)id,
		             sqlite3_errmsg(sp->db));
	else if ((rc = work_row(w, st)) == -1)
		spool_seterr(err, errlen, "spool: load work %lld: out of memory", (long long)id);
	else if (rc == -2)
		spool_seterr(err, errlen, "spool: load work %s: bad size", w->qid);
	else
		ret = 0;
	sqlite3_reset(st);
	return ret;
}

static int
add_rcpt(struct spool_work *w, size_t *cap, sqlite3_stmt *st)
{
	struct spool_rcpt *r;
	int oom = 0;

	if (w->nrcpts == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;

		if ((r = realloc(w->rcpts, ncap * sizeof *r)) == NULL)
			return -1;
		w->rcpts = r;
		*cap = ncap;
	}
	r = &w->rcpts[w->nrcpts];
	r->id = sqlite3_column_int64(st, 0);
	r->attempts = sqlite3_column_int(st, 2);
	r->address = spool_col_dup(st, 1, &oom);
	if (oom || r->address == NULL)
		return -1;
	w->nrcpts++;
	return 0;
}

static int
load_rcpts(struct spool *sp, struct spool_work *w, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_WORK_RCPTS];
	size_t cap = 0;
	int rc, ret = -1;

	if (sqlite3_bind_int64(st, 1, w->id) != SQLITE_OK) {
		spool_bind_fail(sp, ST_WORK_RCPTS, "load work", w->qid, err, errlen);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (add_rcpt(w, &cap, st) < 0) {
			spool_seterr(err, errlen, "spool: load work %s: out of memory", w->qid);
			goto done;
		}
	}
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: load work %s: %s", w->qid,
		             sqlite3_errmsg(sp->db));
		goto done;
	}
	ret = 0;
done:
	sqlite3_reset(st);
	return ret;
}

int
spool_load_work(struct spool *sp, int64_t id, struct spool_work **out, char *err, size_t errlen)
{
	struct spool_work *w = NULL;
	int ret = -1;

	*out = NULL;
	if ((w = calloc(1, sizeof *w)) == NULL) {
		spool_seterr(err, errlen, "spool: load work %lld: out of memory", (long long)id);
		return -1;
	}
	/* One snapshot: an operator's delete can't leave us rows without a body. */
	if (spool_read_begin(sp, "load work", err, errlen) < 0) {
		spool_work_free(w);
		return -1;
	}
	if (load_msg(sp, id, w, err, errlen) < 0 || load_rcpts(sp, w, err, errlen) < 0)
		goto done;
	/* One spare byte: the body comes back NUL-terminated, as spool_read_body's. */
	if ((w->body = malloc(w->body_len + 1)) == NULL) {
		spool_seterr(err, errlen, "spool: load work %s: out of memory", w->qid);
		goto done;
	}
	if (spool_copy_chunks(sp, w->qid, w->id, w->body, w->body_len, err, errlen) < 0)
		goto done;
	w->body[w->body_len] = '\0';
	*out = w;
	w = NULL;
	ret = 0;
done:
	spool_read_end(sp);
	spool_work_free(w);
	return ret;
}

void
spool_work_free(struct spool_work *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nrcpts; i++)
		free(w->rcpts[i].address);
	free(w->rcpts);
	free(w->sender);
	free(w->client_ip);
	free(w->helo);
	free(w->auth_user);
	free(w->listener);
	free(w->message_id);
	free(w->body);
	free(w);
}

static int
apply_rcpt(struct spool *sp, int64_t msg_id, const struct spool_result *r, const char *tag,
           char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_UPD_RCPT];
	int rc;

	if (r->state != SPOOL_RCPT_PENDING && r->state != SPOOL_RCPT_DONE &&
	    r->state != SPOOL_RCPT_FAILED) {
		spool_seterr(err, errlen, "spool: apply %s: recipient %lld: bad state %d", tag,
		             (long long)r->rcpt_id, r->state);
		return SQLITE_MISUSE;
	}
	if (sqlite3_bind_int64(st, 1, r->rcpt_id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, msg_id) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, r->state) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, (int64_t)r->next_try) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, r->reply, -1, SQLITE_STATIC) != SQLITE_OK)
		return spool_bind_fail(sp, ST_UPD_RCPT, "apply", tag, err, errlen);
	rc = spool_step_done(sp, ST_UPD_RCPT, "apply", tag, err, errlen);
	if (rc == SQLITE_OK && sqlite3_changes(sp->db) != 1) {
		/* Not ours or already final: recording it would count an attempt twice. */
		spool_seterr(err, errlen, "spool: apply %s: recipient %lld is not pending", tag,
		             (long long)r->rcpt_id);
		rc = SQLITE_MISUSE;
	}
	return rc;
}

/* Step a statement bound only to ?1 = message id. */
static int
step_msg(struct spool *sp, enum spool_stmt id, int64_t msg_id, const char *tag, char *err,
         size_t errlen)
{
	if (sqlite3_bind_int64(sp->st[id], 1, msg_id) != SQLITE_OK)
		return spool_bind_fail(sp, id, "apply", tag, err, errlen);
	return spool_step_done(sp, id, "apply", tag, err, errlen);
}

static int claim_read(struct spool *sp, struct spool_claim *c, int *state, char *err,
                      size_t errlen);

/* Does the message still exist? *gone = 1 when an operator deleted it meanwhile. */
static int
apply_exists(struct spool *sp, int64_t msg_id, int *gone, char *err, size_t errlen)
{
	struct spool_claim c = {.msg_id = msg_id};
	int state, rc = claim_read(sp, &c, &state, err, errlen);

	*gone = state < 0;
	return rc;
}

/* One update inside the open write transaction; SQLITE_OK or an error code. */
static int
apply_one(struct spool *sp, const struct spool_update *u, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_UPD_MSG];
	char tag[32]; /* names the message in errors: spool_step_done's "qid" */
	size_t i;
	int rc;

	snprintf(tag, sizeof tag, "message %lld", (long long)u->msg_id);
	/* set again below only by an insert in this transaction: a retry after a
	 * rolled-back commit must not report the id that commit never made */
	if (u->bounce != NULL)
		u->bounce->id = 0;
	if (u->bounce_copy != NULL)
		u->bounce_copy->id = 0;
	if (u->removed != NULL)
		*u->removed = 0;
	if (u->nresults > 0 && u->results == NULL) {
		spool_seterr(err, errlen, "spool: apply %s: NULL results", tag);
		return SQLITE_MISUSE;
	}
	if (u->results_only) {
		int gone;
		rc = apply_exists(sp, u->msg_id, &gone, err, errlen);
		if (rc != SQLITE_OK || gone)
			return rc; /* gone (operator delete): nothing to record */
	} else {
		if (sqlite3_bind_int64(st, 1, u->msg_id) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, (int64_t)u->next_try) != SQLITE_OK ||
		    sqlite3_bind_int(st, 3, u->attempts) != SQLITE_OK)
			return spool_bind_fail(sp, ST_UPD_MSG, "apply", tag, err, errlen);
		rc = spool_step_done(sp, ST_UPD_MSG, "apply", tag, err, errlen);
		if (rc != SQLITE_OK || sqlite3_changes(sp->db) == 0)
			return rc; /* gone (operator delete): nothing to record, no bounce */
	}
	for (i = 0; rc == SQLITE_OK && i < u->nresults; i++)
		rc = apply_rcpt(sp, u->msg_id, &u->results[i], tag, err, errlen);
	if (rc == SQLITE_OK && u->bounce != NULL)
		rc = spool_insert_one(sp, u->bounce, err, errlen);
	if (rc == SQLITE_OK && u->ndigest > 0) /* with the failures that caused them */
		rc = spool_bdigest_add(sp, u->digest, u->ndigest, err, errlen);
	if (rc == SQLITE_OK && u->bounce != NULL && u->bounce_copy != NULL)
		rc = spool_insert_one(sp, u->bounce_copy, err, errlen);
	if (rc == SQLITE_OK)
		rc = step_msg(sp, ST_DEL_IF_DONE, u->msg_id, tag, err, errlen);
	/* the message's own row (the cascade is not counted): it left the queue */
	if (rc == SQLITE_OK && u->removed != NULL)
		*u->removed = sqlite3_changes(sp->db) > 0;
	return rc;
}

int
spool_apply(struct spool *sp, const struct spool_update *u, size_t n, int *disk_full, char *err,
            size_t errlen)
{
	size_t i;
	int rc;

	if (disk_full != NULL)
		*disk_full = 0;
	if (n == 0)
		return 0;
	if (u == NULL) {
		spool_seterr(err, errlen, "spool: apply: NULL updates");
		return -1;
	}
	/* A transaction left open by an earlier failed ROLLBACK would hold the write lock. */
	spool_rollback(sp);
	rc = spool_step_done(sp, ST_BEGIN_WRITE, "apply: begin", NULL, err, errlen);
	for (i = 0; rc == SQLITE_OK && i < n; i++)
		rc = apply_one(sp, &u[i], err, errlen);
	if (rc == SQLITE_OK)
		rc = spool_step_done(sp, ST_COMMIT, "apply: commit", NULL, err, errlen);
	if (rc == SQLITE_OK)
		return 0;
	if (disk_full != NULL && spool_is_disk_full(sp, rc))
		*disk_full = 1;
	spool_rollback(sp);
	return -1;
}

/* Read the message's qid, state and count for one claim. SQLITE_OK, also when gone. */
static int
claim_read(struct spool *sp, struct spool_claim *c, int *state, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_CLAIM_GET];
	int rc;

	*state = -1;
	if (sqlite3_bind_int64(st, 1, c->msg_id) != SQLITE_OK)
		return spool_bind_fail(sp, ST_CLAIM_GET, "claim", NULL, err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *qid = sqlite3_column_text(st, 0);
		if (qid != NULL)
			snprintf(c->qid, sizeof c->qid, "%s", (const char *)qid);
		*state = sqlite3_column_int(st, 1);
		c->unfinished = sqlite3_column_int(st, 2);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK; /* deleted meanwhile */
	} else {
		spool_seterr(err, errlen, "spool: claim %lld: %s", (long long)c->msg_id,
		             sqlite3_errmsg(sp->db));
	}
	sqlite3_reset(st);
	return rc;
}

/* One claim inside the open write transaction; SQLITE_OK or an error code. */
static int
claim_one(struct spool *sp, struct spool_claim *c, char *err, size_t errlen)
{
	char tag[32];
	int rc, state;

	snprintf(tag, sizeof tag, "message %lld", (long long)c->msg_id);
	c->result = SPOOL_CLAIM_SKIPPED;
	c->unfinished = 0;
	c->qid[0] = '\0';
	if ((rc = claim_read(sp, c, &state, err, errlen)) != SQLITE_OK || state < 0)
		return rc;
	if (c->op == SPOOL_UNCLAIM)
		return step_msg(sp, ST_UNCLAIM, c->msg_id, tag, err, errlen);
	if (c->op == SPOOL_CLAIM) {
		/* the attempt is under way even if an operator held it meanwhile: count it */
		c->result = SPOOL_CLAIMED;
		return step_msg(sp, ST_CLAIM_ADD, c->msg_id, tag, err, errlen);
	}
	if (state != SPOOL_MSG_QUEUED)
		return SQLITE_OK; /* held by an operator meanwhile */
	if (c->max_unfinished > 0 && c->unfinished >= c->max_unfinished) {
		c->result = SPOOL_CLAIM_HELD;
		return step_msg(sp, ST_CLAIM_HOLD, c->msg_id, tag, err, errlen);
	}
	c->result = SPOOL_CHECKED;
	return SQLITE_OK;
}

int
spool_claim(struct spool *sp, struct spool_claim *const *v, size_t n, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	spool_rollback(sp);
	/* outside a transaction only; FULL again below, whatever happened */
	if (sqlite3_exec(sp->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: claim: %s", sqlite3_errmsg(sp->db));
		return -1;
	}
	rc = spool_step_done(sp, ST_BEGIN_WRITE, "claim: begin", NULL, err, errlen);
	for (i = 0; rc == SQLITE_OK && i < n; i++)
		rc = claim_one(sp, v[i], err, errlen);
	if (rc == SQLITE_OK)
		rc = spool_step_done(sp, ST_COMMIT, "claim: commit", NULL, err, errlen);
	if (rc != SQLITE_OK)
		spool_rollback(sp);
	if (sqlite3_exec(sp->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: claim: cannot restore synchronous=FULL: %s",
		             sqlite3_errmsg(sp->db));
		return -1;
	}
	return rc == SQLITE_OK ? 0 : -1;
}
