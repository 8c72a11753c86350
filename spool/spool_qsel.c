/*
 * spool_qsel: the bulk side of mxrelayctl's queue commands (issue 16):
 * which messages a selection names (ALL, several queue ids, --from, --to,
 * --domain), read in one snapshot on a worker's handle, and hold, release
 * or delete of a batch of them in one write transaction on the writer's.
 *
 * The daemon cuts a large selection into batches (mta/control/qbulk.c),
 * so no single transaction here holds the writer for long. Statements are
 * prepared per call: these run by hand and rarely.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

void
spool_qsel_domain(const char *addr, char *out, size_t outlen)
{
	/* the rule of recipients.domain (SPOOL_DOMAIN_OF): after the LAST '@', ASCII lower case */
	const char *at = strrchr(addr, '@');
	size_t i;

	snprintf(out, outlen, "%s", at ? at + 1 : addr);
	for (i = 0; out[i]; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
}

/* The SELECT for a selection without explicit ids; ?1 sender, ?2 address, ?3 domain, ?4 state. */
static void
select_sql(const struct spool_qsel *sel, char *sql, size_t len)
{
	bool rcpt = sel->to != NULL || sel->domain != NULL;

	snprintf(sql, len,
	         "SELECT %s m.id, m.qid, m.size, m.state FROM %s WHERE 1%s%s%s%s ORDER BY m.id",
	         rcpt ? "DISTINCT" : "",
	         rcpt ? "recipients AS r JOIN messages AS m ON m.id = r.msg_id" : "messages AS m",
	         /* a range of recipients_dom (schema 5): (domain, state, msg_id) */
	         rcpt ? " AND r.domain = ?3 AND r.state = 0" : "",
	         sel->to ? " AND r.address = ?2 COLLATE NOCASE" : "",
	         sel->from ? " AND m.sender = ?1 COLLATE NOCASE" : "",
	         sel->state >= 0 ? " AND m.state = ?4" : "");
}

/* Append the current row (id, qid, size, state) to *v. 0 / -1 out of memory. */
static int
hit_add(sqlite3_stmt *st, struct spool_qhit **v, size_t *n, size_t *cap)
{
	const char *qid = (const char *)sqlite3_column_text(st, 1);
	struct spool_qhit *h;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct spool_qhit *p = realloc(*v, ncap * sizeof(*p));
		if (p == NULL)
			return -1;
		*v = p;
		*cap = ncap;
	}
	h = &(*v)[(*n)++];
	h->id = sqlite3_column_int64(st, 0);
	h->qid = qid ? strtoull(qid, NULL, 16) : 0;
	h->size = sqlite3_column_int64(st, 2);
	h->state = sqlite3_column_int(st, 3);
	return 0;
}

/* Step st into *v; SQLITE_DONE, an error code, or SQLITE_NOMEM. */
static int
collect(sqlite3_stmt *st, struct spool_qhit **v, size_t *n, size_t *cap)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (hit_add(st, v, n, cap) < 0)
			return SQLITE_NOMEM;
	return rc;
}

int
spool_queue_select(struct spool *sp, const struct spool_qsel *sel, struct spool_qhit **out,
                   size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct spool_qhit *v = NULL;
	size_t len = 0, cap = 0, i;
	char sql[512], dom[256] = "";
	int rc = SQLITE_DONE;

	*out = NULL;
	*n = 0;
	if (spool_read_begin(sp, "queue select", err, errlen) < 0)
		return -1;
	if (sel->nqids > 0)
		snprintf(sql, sizeof(sql),
		         "SELECT id, qid, size, state FROM messages WHERE qid = ?1");
	else
		select_sql(sel, sql, sizeof(sql));
	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: queue select: %s", sqlite3_errmsg(sp->db));
		goto fail;
	}
	for (i = 0; i < sel->nqids && rc == SQLITE_DONE; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, sel->qids[i], -1, SQLITE_STATIC);
		rc = collect(st, &v, &len, &cap);
	}
	if (sel->nqids == 0) {
		if (sel->domain)
			snprintf(dom, sizeof(dom), "%s", sel->domain);
		else if (sel->to)
			spool_qsel_domain(sel->to, dom, sizeof(dom));
		/* unused numbers are out of range for this statement: ignored */
		sqlite3_bind_text(st, 1, sel->from ? sel->from : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, sel->to ? sel->to : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, dom, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, sel->state);
		rc = collect(st, &v, &len, &cap);
	}
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: queue select: %s",
		             rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(sp->db));
		goto fail;
	}
	sqlite3_finalize(st);
	spool_read_end(sp);
	*out = v;
	*n = len;
	return 0;
fail:
	sqlite3_finalize(st);
	spool_read_end(sp);
	free(v);
	return -1;
}

static const char *const batch_sql[] = {
    [SPOOL_QB_HOLD] = "UPDATE messages SET state = 1 WHERE id = ?1",
    /* a release is due at once and starts the count of unfinished attempts over */
    [SPOOL_QB_RELEASE] =
        "UPDATE messages SET state = 0, next_try = ?2, unfinished = 0 WHERE id = ?1",
    /* foreign_keys=ON: the cascade removes recipients and body rows */
    [SPOOL_QB_DELETE] = "DELETE FROM messages WHERE id = ?1",
};

int
spool_queue_batch(struct spool *sp, enum spool_qb_op op, const int64_t *ids, size_t n,
                  time_t next_try, unsigned char *done, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc;

	if ((unsigned)op > SPOOL_QB_DELETE) {
		spool_seterr(err, errlen, "spool: queue batch: bad operation %d", (int)op);
		return -1;
	}
	spool_rollback(sp);
	if (spool_step_done(sp, ST_BEGIN_WRITE, "queue batch: begin", NULL, err, errlen) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(sp->db, batch_sql[op], -1, &st, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: queue batch: %s", sqlite3_errmsg(sp->db));
		goto fail;
	}
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ids[i]);
		if (op == SPOOL_QB_RELEASE)
			sqlite3_bind_int64(st, 2, (int64_t)next_try);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
			spool_is_disk_full(sp, rc);
			spool_seterr(err, errlen, "spool: queue batch: %s", sqlite3_errmsg(sp->db));
			goto fail;
		}
		done[i] = sqlite3_changes(sp->db) > 0; /* 0: gone meanwhile */
	}
	sqlite3_finalize(st);
	st = NULL;
	if (spool_step_done(sp, ST_COMMIT, "queue batch: commit", NULL, err, errlen) == SQLITE_OK)
		return 0;
fail:
	sqlite3_finalize(st);
	spool_rollback(sp);
	return -1;
}
