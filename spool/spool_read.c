/*
 * spool_read: list, get and body reads. Each call runs in one read
 * transaction so a concurrent delete on another handle can never hand back
 * a message without its recipients or a body with missing chunks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

/* Copy a TEXT column; NULL stays NULL. Sets *oom when malloc fails. */
char *
spool_col_dup(sqlite3_stmt *st, int col, int *oom)
{
	const unsigned char *s;
	size_t len;
	char *p;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	s = sqlite3_column_text(st, col);
	len = (size_t)sqlite3_column_bytes(st, col);
	if (s == NULL || (p = malloc(len + 1)) == NULL) {
		*oom = 1;
		return NULL;
	}
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Build a message from a row of MSG_COLS (see spool.c); recipients come later. */
static struct spool_msg *
row_to_msg(sqlite3_stmt *st)
{
	struct spool_msg *m = calloc(1, sizeof *m);
	const unsigned char *qid;
	int oom = 0;

	if (m == NULL)
		return NULL;
	m->id = sqlite3_column_int64(st, 0);
	qid = sqlite3_column_text(st, 1);
	if (qid != NULL)
		strncpy(m->qid, (const char *)qid, SPOOL_QID_LEN);
	m->sender = spool_col_dup(st, 2, &oom);
	m->received = (time_t)sqlite3_column_int64(st, 3);
	m->body_len = (size_t)sqlite3_column_int64(st, 4);
	m->client_ip = spool_col_dup(st, 5, &oom);
	m->helo = spool_col_dup(st, 6, &oom);
	m->auth_user = spool_col_dup(st, 7, &oom);
	m->flags = (unsigned)sqlite3_column_int64(st, 8);
	m->listener = spool_col_dup(st, 9, &oom);
	m->message_id = spool_col_dup(st, 10, &oom);
	if (m->sender == NULL)
		oom = 1; /* NOT NULL column: only malloc can make it NULL */
	if (oom) {
		spool_msg_free(m);
		return NULL;
	}
	return m;
}

static int
add_rcpt(struct spool_msg *m, size_t *cap, sqlite3_stmt *st)
{
	int oom = 0;

	if (m->nrcpts == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		char **r = realloc(m->rcpts, ncap * sizeof *r);
		int *s;

		if (r == NULL)
			return -1;
		m->rcpts = r;
		if ((s = realloc(m->rcpt_state, ncap * sizeof *s)) == NULL)
			return -1;
		m->rcpt_state = s;
		*cap = ncap;
	}
	m->rcpts[m->nrcpts] = spool_col_dup(st, 0, &oom);
	if (oom || m->rcpts[m->nrcpts] == NULL)
		return -1;
	m->rcpt_state[m->nrcpts++] = sqlite3_column_int(st, 1);
	return 0;
}

static int
load_rcpts(struct spool *sp, struct spool_msg *m, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_RCPTS];
	size_t cap = 0;
	int rc, ret = -1;

	if (sqlite3_bind_int64(st, 1, m->id) != SQLITE_OK) {
		spool_bind_fail(sp, ST_RCPTS, "get", m->qid, err, errlen);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (add_rcpt(m, &cap, st) < 0) {
			spool_seterr(err, errlen, "spool: get %s: out of memory", m->qid);
			goto done;
		}
	}
	if (rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: get %s: %s", m->qid, sqlite3_errmsg(sp->db));
		goto done;
	}
	ret = 0;
done:
	sqlite3_reset(st);
	return ret;
}

/* Step ST_LIST rows into *out; the caller owns the read transaction. */
static int
list_rows(struct spool *sp, struct spool_msg ***out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_LIST];
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct spool_msg **p = realloc(*out, ncap * sizeof *p);

			if (p == NULL)
				goto oom;
			*out = p;
			cap = ncap;
		}
		if (((*out)[*n] = row_to_msg(st)) == NULL)
			goto oom;
		if (load_rcpts(sp, (*out)[(*n)++], err, errlen) < 0)
			return -1;
	}
	if (rc == SQLITE_DONE)
		return 0;
	spool_seterr(err, errlen, "spool: list: %s", sqlite3_errmsg(sp->db));
	return -1;
oom:
	spool_seterr(err, errlen, "spool: list: out of memory");
	return -1;
}

int
spool_list(struct spool *sp, size_t max, struct spool_msg ***out, size_t *n, char *err,
           size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_LIST];
	int ret = -1;
	size_t i;

	*out = NULL;
	*n = 0;
	if (spool_read_begin(sp, "list", err, errlen) < 0)
		return -1;
	if (sqlite3_bind_int64(st, 1, max > INT64_MAX ? INT64_MAX : (int64_t)max) != SQLITE_OK) {
		spool_bind_fail(sp, ST_LIST, "list", NULL, err, errlen);
		goto done;
	}
	ret = list_rows(sp, out, n, err, errlen);
done:
	sqlite3_reset(st);
	spool_read_end(sp);
	if (ret < 0) {
		for (i = 0; i < *n; i++)
			spool_msg_free((*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

int
spool_get(struct spool *sp, const char *qid, struct spool_msg **out, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_GET];
	struct spool_msg *m = NULL;
	int rc, ret = -1;

	*out = NULL;
	if (spool_read_begin(sp, "get", err, errlen) < 0)
		return -1;
	if (sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC) != SQLITE_OK) {
		spool_bind_fail(sp, ST_GET, "get", qid, err, errlen);
		goto done;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && (m = row_to_msg(st)) == NULL)
		spool_seterr(err, errlen, "spool: get %s: out of memory", qid);
	else if (rc == SQLITE_DONE)
		spool_seterr(err, errlen, "spool: get %s: no such message", qid);
	else if (rc != SQLITE_ROW)
		spool_seterr(err, errlen, "spool: get %s: %s", qid, sqlite3_errmsg(sp->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (m == NULL || load_rcpts(sp, m, err, errlen) < 0)
		goto done;
	*out = m;
	m = NULL;
	ret = 0;
done:
	spool_read_end(sp);
	spool_msg_free(m);
	return ret;
}

/* Look up the row id and stored size of QID. */
static int
body_info(struct spool *sp, const char *qid, int64_t *id, int64_t *size, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_BODY_INFO];
	int rc;

	if (sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC) != SQLITE_OK) {
		spool_bind_fail(sp, ST_BODY_INFO, "read body", qid, err, errlen);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*size = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: read body %s: no such message", qid);
	} else {
		spool_seterr(err, errlen, "spool: read body %s: %s", qid, sqlite3_errmsg(sp->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Step ST (one message's body rows: seq, data) into buf. Rows must be
 * numbered 0, 1, 2... and add up to exactly size: anything else is a
 * damaged spool, and delivering a silently truncated message is worse
 * than an error. *rows says how many rows there were.
 */
static int
copy_rows(struct spool *sp, sqlite3_stmt *st, const char *qid, char *buf, size_t size,
          int64_t *rows, char *err, size_t errlen)
{
	size_t off = 0, len;
	int64_t seq = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 1);

		len = (size_t)sqlite3_column_bytes(st, 1);
		if (sqlite3_column_int64(st, 0) != seq++ || len > size - off ||
		    (data == NULL && len > 0))
			break;
		if (len > 0)
			memcpy(buf + off, data, len);
		off += len;
	}
	*rows = seq;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		spool_seterr(err, errlen, "spool: read body %s: %s", qid, sqlite3_errmsg(sp->db));
		return -1;
	}
	if (rc == SQLITE_ROW || off != size) {
		spool_seterr(err, errlen,
		             "spool: read body %s: body chunks damaged (%zu of %zu bytes)", qid,
		             off, size);
		return -1;
	}
	return 0;
}

/*
 * A message stored before schema version 4 has its body in body_chunks
 * (spool_schema.c). Prepared per call: such messages only exist until the
 * queue that held them at the upgrade drains, and the table may be gone
 * (spool_vacuum.c drops it once empty), which reads as no rows.
 */
static int
copy_old_rows(struct spool *sp, const char *qid, int64_t id, char *buf, size_t size, char *err,
              size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t rows;
	int ret;

	if (sqlite3_prepare_v2(sp->db,
	                       "SELECT seq, data FROM body_chunks WHERE msg_id = ?1 ORDER BY seq",
	                       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		sqlite3_finalize(st);
		spool_seterr(err, errlen,
		             "spool: read body %s: body chunks damaged (0 of %zu bytes)", qid, size);
		return -1;
	}
	ret = copy_rows(sp, st, qid, buf, size, &rows, err, errlen);
	sqlite3_finalize(st);
	return ret;
}

/* Copy the body of message ID into buf (size bytes): bodies, else body_chunks. */
int
spool_copy_chunks(struct spool *sp, const char *qid, int64_t id, char *buf, size_t size, char *err,
                  size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_CHUNKS];
	int64_t rows = 0;
	int ret;

	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		spool_bind_fail(sp, ST_CHUNKS, "read body", qid, err, errlen);
		return -1;
	}
	ret = copy_rows(sp, st, qid, buf, size, &rows, err, errlen);
	sqlite3_reset(st);
	if (ret < 0 && rows == 0 && size > 0)
		ret = copy_old_rows(sp, qid, id, buf, size, err, errlen);
	return ret;
}

int
spool_read_body(struct spool *sp, const char *qid, char **body, size_t *len, char *err,
                size_t errlen)
{
	int64_t id, size;
	char *buf = NULL;
	int ret = -1;

	*body = NULL;
	*len = 0;
	if (spool_read_begin(sp, "read body", err, errlen) < 0)
		return -1;
	if (body_info(sp, qid, &id, &size, err, errlen) < 0)
		goto done;
	if (size < 0 || (uint64_t)size >= SIZE_MAX) {
		spool_seterr(err, errlen, "spool: read body %s: bad size %lld", qid,
		             (long long)size);
		goto done;
	}
	/* One spare byte: the body comes back NUL-terminated for text callers. */
	if ((buf = malloc((size_t)size + 1)) == NULL) {
		spool_seterr(err, errlen, "spool: read body %s: out of memory", qid);
		goto done;
	}
	if (spool_copy_chunks(sp, qid, id, buf, (size_t)size, err, errlen) < 0)
		goto done;
	buf[size] = '\0';
	*body = buf;
	*len = (size_t)size;
	buf = NULL;
	ret = 0;
done:
	spool_read_end(sp);
	free(buf);
	return ret;
}

void
spool_msg_free(struct spool_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->rcpt_state);
	free(m->sender);
	free(m->client_ip);
	free(m->helo);
	free(m->auth_user);
	free(m->listener);
	free(m->message_id);
	free(m);
}
