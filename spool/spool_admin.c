/*
 * spool_admin: what mxrelayctl's queue commands read and change (list,
 * show, summary, the ids of one destination domain, hold / release,
 * delete). Reads run in one read transaction each; writes in one IMMEDIATE
 * transaction each and are meant for the daemon's writer thread.
 *
 * These run rarely and by hand, so their statements are prepared per call
 * instead of joining the cache in spool.c. Nothing here is on the path of
 * an accepted message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

#define QMSG_COLS                                                                                  \
	"id, qid, sender, received, size, client_ip, helo, auth_user, state, attempts, next_try, "     \
	"listener, message_id"


static int
prep(struct spool *sp, const char *sql, sqlite3_stmt **st, const char *what, char *err,
     size_t errlen)
{
	if (sqlite3_prepare_v2(sp->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	spool_seterr(err, errlen, "spool: %s: %s", what, sqlite3_errmsg(sp->db));
	return -1;
}

static void
qmsg_clear(struct spool_qmsg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].address);
		free(m->rcpts[i].last_reply);
	}
	free(m->rcpts);
	free(m->sender);
	free(m->client_ip);
	free(m->helo);
	free(m->auth_user);
	free(m->listener);
	free(m->message_id);
	free(m->last_reply);
	memset(m, 0, sizeof *m);
}

void
spool_qmsgs_free(struct spool_qmsg *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		qmsg_clear(&v[i]);
	free(v);
}

/* Fill m from a QMSG_COLS row. 0 / -1 (out of memory). */
static int
qmsg_row(struct spool_qmsg *m, sqlite3_stmt *st)
{
	const unsigned char *qid = sqlite3_column_text(st, 1);
	int oom = 0;

	m->id = sqlite3_column_int64(st, 0);
	if (qid != NULL)
		snprintf(m->qid, sizeof m->qid, "%s", (const char *)qid);
	m->sender = spool_col_dup(st, 2, &oom);
	m->received = (time_t)sqlite3_column_int64(st, 3);
	m->size = (size_t)sqlite3_column_int64(st, 4);
	m->client_ip = spool_col_dup(st, 5, &oom);
	m->helo = spool_col_dup(st, 6, &oom);
	m->auth_user = spool_col_dup(st, 7, &oom);
	m->state = sqlite3_column_int(st, 8);
	m->attempts = sqlite3_column_int(st, 9);
	m->next_try = (time_t)sqlite3_column_int64(st, 10);
	m->listener = spool_col_dup(st, 11, &oom);
	m->message_id = spool_col_dup(st, 12, &oom);
	return oom || m->sender == NULL ? -1 : 0;
}

/*
 * Recipients of m: counts by state, and kept in m->rcpts: every recipient
 * (max_rcpts == 0) or the first max_rcpts PENDING ones. m->last_reply is
 * the first reply stored for a pending recipient.
 */
static int
qmsg_rcpts(struct spool *sp, struct spool_qmsg *m, size_t max_rcpts, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, oom = 0, ret = -1;

	if (prep(sp,
	         "SELECT address, state, attempts, next_try, last_reply FROM recipients"
	         " WHERE msg_id = ?1 ORDER BY id",
	         &st, "queue", err, errlen) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, m->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int state = sqlite3_column_int(st, 1);
		struct spool_qrcpt *r;

		if (state == SPOOL_RCPT_PENDING)
			m->npending++;
		else if (state == SPOOL_RCPT_DONE)
			m->ndone++;
		else
			m->nfailed++;
		if (state == SPOOL_RCPT_PENDING && m->last_reply == NULL)
			m->last_reply = spool_col_dup(st, 4, &oom);
		if (max_rcpts != 0 && (state != SPOOL_RCPT_PENDING || m->nrcpts >= max_rcpts))
			continue;
		if (m->nrcpts == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			if ((r = realloc(m->rcpts, ncap * sizeof *r)) == NULL)
				goto oom;
			m->rcpts = r;
			cap = ncap;
		}
		r = &m->rcpts[m->nrcpts++];
		memset(r, 0, sizeof *r);
		r->address = spool_col_dup(st, 0, &oom);
		r->state = state;
		r->attempts = sqlite3_column_int(st, 2);
		r->next_try = (time_t)sqlite3_column_int64(st, 3);
		r->last_reply = spool_col_dup(st, 4, &oom);
		if (oom || r->address == NULL)
			goto oom;
	}
	if (oom)
		goto oom;
	if (rc != SQLITE_DONE)
		spool_seterr(err, errlen, "spool: queue %s: %s", m->qid, sqlite3_errmsg(sp->db));
	else
		ret = 0;
	goto done;
oom:
	spool_seterr(err, errlen, "spool: queue %s: out of memory", m->qid);
done:
	sqlite3_finalize(st);
	return ret;
}

int
spool_queue_list(struct spool *sp, size_t max, size_t max_rcpts, struct spool_qmsg **out, size_t *n,
                 char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct spool_qmsg *v = NULL;
	size_t cap = 0, len = 0;
	int rc, ret = -1;

	*out = NULL;
	*n = 0;
	if (max_rcpts == 0)
		max_rcpts = 1;
	if (spool_read_begin(sp, "queue list", err, errlen) < 0)
		return -1;
	if (prep(sp, "SELECT " QMSG_COLS " FROM messages ORDER BY id LIMIT ?1", &st, "queue list",
	         err, errlen) < 0)
		goto done;
	sqlite3_bind_int64(st, 1, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct spool_qmsg *p = realloc(v, ncap * sizeof *p);
			if (p == NULL)
				goto oom;
			v = p;
			cap = ncap;
		}
		memset(&v[len], 0, sizeof v[len]);
		if (qmsg_row(&v[len++], st) < 0)
			goto oom;
		if (qmsg_rcpts(sp, &v[len - 1], max_rcpts, err, errlen) < 0)
			goto done;
	}
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: queue list: %s", sqlite3_errmsg(sp->db));
		goto done;
	}
	*out = v;
	*n = len;
	v = NULL;
	ret = 0;
	goto done;
oom:
	spool_seterr(err, errlen, "spool: queue list: out of memory");
done:
	sqlite3_finalize(st);
	spool_read_end(sp);
	spool_qmsgs_free(v, len);
	return ret;
}

/* The message qid and its recipients into m (inside the caller's read transaction). 0 / -1. */
static int
qmsg_by_qid(struct spool *sp, const char *qid, const char *what, struct spool_qmsg *m, char *err,
            size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	if (prep(sp, "SELECT " QMSG_COLS " FROM messages WHERE qid = ?1", &st, what, err, errlen) < 0)
		return -1;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		spool_seterr(err, errlen, "no such message %s", qid);
	else if (rc != SQLITE_ROW)
		spool_seterr(err, errlen, "spool: %s %s: %s", what, qid, sqlite3_errmsg(sp->db));
	else if (qmsg_row(m, st) < 0)
		spool_seterr(err, errlen, "spool: %s %s: out of memory", what, qid);
	else if (qmsg_rcpts(sp, m, 0, err, errlen) == 0)
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

int
spool_queue_show(struct spool *sp, const char *qid, struct spool_qmsg **out, char *err,
                 size_t errlen)
{
	struct spool_qmsg *m = calloc(1, sizeof *m);
	int ret = -1;

	*out = NULL;
	if (m == NULL) {
		spool_seterr(err, errlen, "spool: queue show: out of memory");
		return -1;
	}
	if (spool_read_begin(sp, "queue show", err, errlen) < 0) {
		free(m);
		return -1;
	}
	ret = qmsg_by_qid(sp, qid, "queue show", m, err, errlen);
	spool_read_end(sp);
	if (ret == 0)
		*out = m;
	else
		spool_qmsgs_free(m, 1);
	return ret;
}

int
spool_queue_find(struct spool *sp, const char *qid, int64_t *id, int *state, char *err,
                 size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	if (prep(sp, "SELECT id, state FROM messages WHERE qid = ?1", &st, "queue find", err,
	         errlen) < 0)
		return -1;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		if (state != NULL)
			*state = sqlite3_column_int(st, 1);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		spool_seterr(err, errlen, "no such message %s", qid);
	} else {
		spool_seterr(err, errlen, "spool: queue find %s: %s", qid, sqlite3_errmsg(sp->db));
	}
	sqlite3_finalize(st);
	return ret;
}

static int
age_bucket(time_t age)
{
	return age < 300 ? 0 : age < 3600 ? 1 : age < 86400 ? 2 : 3;
}

/* Totals and age buckets: one pass over the messages table. */
static int
summary_ages(struct spool *sp, time_t now, struct spool_qsummary *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (prep(sp, "SELECT received, state FROM messages", &st, "queue summary", err, errlen) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		time_t rcv = (time_t)sqlite3_column_int64(st, 0);
		int b = age_bucket(now - rcv);

		s->messages++;
		if (sqlite3_column_int(st, 1) == SPOOL_MSG_HELD)
			s->held++;
		if (s->oldest == 0 || rcv < s->oldest)
			s->oldest = rcv;
		s->age_messages[b]++;
		if (s->age_oldest[b] == 0 || rcv < s->age_oldest[b])
			s->age_oldest[b] = rcv;
	}
	if (rc != SQLITE_DONE)
		spool_seterr(err, errlen, "spool: queue summary: %s", sqlite3_errmsg(sp->db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Pending recipients per destination domain, biggest first; the first max kept. */
static int
summary_domains(struct spool *sp, size_t max, struct spool_qsummary *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE, oom = 0;

	if (prep(sp,
	         "SELECT r.domain AS dom, count(DISTINCT r.msg_id), count(*), min(m.received)"
	         " FROM recipients AS r JOIN messages AS m ON m.id = r.msg_id"
	         " WHERE r.state = 0 GROUP BY dom ORDER BY 2 DESC, dom",
	         &st, "queue summary", err, errlen) < 0)
		return -1;
	if (max > 0 && (s->domains = calloc(max, sizeof *s->domains)) == NULL)
		oom = 1;
	while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct spool_qdomain *d;

		s->ndomains_total++;
		s->rcpts += (size_t)sqlite3_column_int64(st, 2);
		if (s->ndomains >= max)
			continue;
		d = &s->domains[s->ndomains++];
		d->domain = spool_col_dup(st, 0, &oom);
		d->messages = (size_t)sqlite3_column_int64(st, 1);
		d->rcpts = (size_t)sqlite3_column_int64(st, 2);
		d->oldest = (time_t)sqlite3_column_int64(st, 3);
		if (d->domain == NULL)
			oom = 1;
	}
	if (oom)
		spool_seterr(err, errlen, "spool: queue summary: out of memory");
	else if (rc != SQLITE_DONE)
		spool_seterr(err, errlen, "spool: queue summary: %s", sqlite3_errmsg(sp->db));
	sqlite3_finalize(st);
	return !oom && rc == SQLITE_DONE ? 0 : -1;
}

void
spool_qsummary_free(struct spool_qsummary *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ndomains; i++)
		free(s->domains[i].domain);
	free(s->domains);
	memset(s, 0, sizeof *s);
}

int
spool_queue_summary(struct spool *sp, time_t now, size_t max_domains, struct spool_qsummary *out,
                    char *err, size_t errlen)
{
	int ret = -1;

	memset(out, 0, sizeof *out);
	if (spool_read_begin(sp, "queue summary", err, errlen) < 0)
		return -1;
	if (summary_ages(sp, now, out, err, errlen) == 0 &&
	    summary_domains(sp, max_domains, out, err, errlen) == 0)
		ret = 0;
	spool_read_end(sp);
	if (ret < 0)
		spool_qsummary_free(out);
	return ret;
}

int
spool_queue_domain_ids(struct spool *sp, const char *domain, int64_t **ids, size_t *n, char *err,
                       size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t *v = NULL;
	size_t cap = 0, len = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (prep(sp,
	         /* a range of recipients_dom (schema 5), not a scan of every recipient */
	         "SELECT DISTINCT r.msg_id FROM recipients AS r JOIN messages AS m ON m.id = "
	         "r.msg_id WHERE r.domain = lower(?1) AND r.state = 0 AND m.state = 0",
	         &st, "queue flush", err, errlen) < 0)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			int64_t *p = realloc(v, ncap * sizeof *p);
			if (p == NULL) {
				spool_seterr(err, errlen, "spool: queue flush: out of memory");
				goto fail;
			}
			v = p;
			cap = ncap;
		}
		v[len++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: queue flush: %s", sqlite3_errmsg(sp->db));
		goto fail;
	}
	sqlite3_finalize(st);
	*ids = v;
	*n = len;
	return 0;
fail:
	sqlite3_finalize(st);
	free(v);
	return -1;
}

/* One pass of the stats load: columns id, received, state, text (NULL in the first pass). */
static int
stats_pass(struct spool *sp, const char *sql, spool_stats_row_fn fn, void *arg, char *err,
           size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (prep(sp, sql, &st, "queue stats", err, errlen) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, sqlite3_column_int64(st, 0), (time_t)sqlite3_column_int64(st, 1),
		   sqlite3_column_int(st, 2) == SPOOL_MSG_HELD, (const char *)sqlite3_column_text(st, 3));
	if (rc != SQLITE_DONE)
		spool_seterr(err, errlen, "spool: queue stats: %s", sqlite3_errmsg(sp->db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
spool_queue_stats_load(struct spool *sp, spool_stats_row_fn fn, void *arg, char *err,
                       size_t errlen)
{
	int ret = -1;

	if (spool_read_begin(sp, "queue stats", err, errlen) < 0)
		return -1;
	/*
	 * Two scans, no join: the messages table, then the covering index
	 * recipients_dom (schema 5) for the pending recipients' domains. A join
	 * probing recipients per message took twice as long.
	 */
	if (stats_pass(sp, "SELECT id, received, state, NULL FROM messages ORDER BY id", fn, arg,
	               err, errlen) == 0 &&
	    stats_pass(sp,
	               "SELECT msg_id, 0, 0, domain FROM recipients INDEXED BY recipients_dom"
	               " WHERE state = 0",
	               fn, arg, err, errlen) == 0)
		ret = 0;
	spool_read_end(sp);
	return ret;
}

/*
 * Run one change of message QID in its own write transaction: sql is bound
 * with ?1 = id and, when it has them, ?2 = a, ?3 = b. *id is the row id.
 */
static int
change(struct spool *sp, const char *qid, const char *sql, int64_t a, int64_t b, int64_t *id,
       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	spool_rollback(sp);
	rc = spool_step_done(sp, ST_BEGIN_WRITE, "queue: begin", NULL, err, errlen);
	if (rc != SQLITE_OK)
		return -1;
	if (spool_queue_find(sp, qid, id, NULL, err, errlen) < 0 ||
	    prep(sp, sql, &st, "queue", err, errlen) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, *id);
	if (sqlite3_bind_parameter_count(st) >= 3) {
		sqlite3_bind_int64(st, 2, a);
		sqlite3_bind_int64(st, 3, b);
	}
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: queue %s: %s", qid, sqlite3_errmsg(sp->db));
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (spool_step_done(sp, ST_COMMIT, "queue: commit", qid, err, errlen) == SQLITE_OK)
		return 0;
fail:
	sqlite3_finalize(st);
	spool_rollback(sp);
	return -1;
}

int
spool_queue_set_state(struct spool *sp, const char *qid, int state, time_t next_try, int64_t *id,
                      char *err, size_t errlen)
{
	if (state != SPOOL_MSG_QUEUED && state != SPOOL_MSG_HELD) {
		spool_seterr(err, errlen, "spool: queue %s: bad state %d", qid, state);
		return -1;
	}
	return change(sp, qid,
	              "UPDATE messages SET state = ?2,"
	              " next_try = CASE WHEN ?3 > 0 THEN ?3 ELSE next_try END,"
	              /* a release starts the count of unfinished attempts over */
	              " unfinished = CASE WHEN ?2 = 0 THEN 0 ELSE unfinished END WHERE id = ?1",
	              state, (int64_t)next_try, id, err, errlen);
}

int
spool_queue_delete(struct spool *sp, const char *qid, int64_t *id, char *err, size_t errlen)
{
	/* foreign_keys=ON: the cascade removes recipients and body chunks */
	return change(sp, qid, "DELETE FROM messages WHERE id = ?1", 0, 0, id, err, errlen);
}

/* ---- queue cat: read-only, on a handle of its own ------------------------------------- */

/* DIR/spool.db opened read-only, at this schema version; never created. */
static int
cat_open(const char *dir, sqlite3 **db, char *err, size_t errlen)
{
	char path[4096];
	int64_t v = 0;

	snprintf(path, sizeof path, "%s/spool.db", dir);
	*db = NULL;
	/* SQLITE_OPEN_READONLY never creates the file, so a mistyped data_dir reads as missing */
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    spool_pragma_int(*db, "PRAGMA user_version", &v) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: queue cat: %s: %s", path,
		             *db ? sqlite3_errmsg(*db) : "out of memory");
		goto fail;
	}
	if (v != SPOOL_SCHEMA_VERSION) {
		spool_seterr(
		    err, errlen,
		    "%s has schema version %lld, this mxrelayctl reads %d: run the mxrelayd of "
		    "the same version",
		    path, (long long)v, SPOOL_SCHEMA_VERSION);
		goto fail;
	}
	sqlite3_busy_timeout(*db, 5000);
	return 0;
fail:
	sqlite3_close(*db);
	*db = NULL;
	return -1;
}

/* The stored bytes of message id (bodies; body_chunks for a message older than schema 4). */
static int
cat_body(sqlite3 *db, const struct spool_qmsg *m, char **body, size_t *len, char *err,
         size_t errlen)
{
	static const char *const sql[] = {
	    "SELECT data FROM bodies WHERE msg_id = ?1 ORDER BY seq",
	    "SELECT data FROM body_chunks WHERE msg_id = ?1 ORDER BY seq"};
	char *buf = malloc(m->size + 1);
	size_t off = 0;

	for (size_t k = 0; buf != NULL && k < 2 && off == 0; k++) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, sql[k], -1, &st, NULL) != SQLITE_OK)
			break; /* body_chunks is dropped once empty */
		sqlite3_bind_int64(st, 1, m->id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			size_t n = (size_t)sqlite3_column_bytes(st, 0);
			if (n > m->size - off) {
				off = m->size + 1; /* more than the message's size: damaged */
				break;
			}
			memcpy(buf + off, sqlite3_column_blob(st, 0), n);
			off += n;
		}
		sqlite3_finalize(st);
	}
	if (buf == NULL || off != m->size) {
		spool_seterr(err, errlen, "spool: queue cat %s: %s", m->qid,
		             buf ? "body damaged (its rows do not add up to its size)"
		                 : "out of memory");
		free(buf);
		return -1;
	}
	buf[off] = '\0';
	*body = buf;
	*len = off;
	return 0;
}

int
spool_queue_cat(const char *dir, const char *qid, struct spool_qmsg **msg, char **body, size_t *len,
                char *err, size_t errlen)
{
	struct spool ro;
	struct spool_qmsg *m = calloc(1, sizeof *m);
	int ret = -1;

	*msg = NULL;
	*body = NULL;
	*len = 0;
	memset(&ro, 0, sizeof ro);
	if (m == NULL || cat_open(dir, &ro.db, err, errlen) < 0)
		goto done;
	/* one snapshot: the envelope, the recipients and the body agree */
	if (sqlite3_exec(ro.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		spool_seterr(err, errlen, "spool: queue cat %s: %s", qid, sqlite3_errmsg(ro.db));
	else if (qmsg_by_qid(&ro, qid, "queue cat", m, err, errlen) == 0 &&
	         cat_body(ro.db, m, body, len, err, errlen) == 0)
		ret = 0;
done:
	if (ro.db)
		sqlite3_close(ro.db); /* ends the read transaction */
	if (ret == 0)
		*msg = m;
	else
		spool_qmsgs_free(m, m ? 1 : 0);
	return ret;
}
