/*
 * spool_audit: the legacy-client audit table (schema version 2).
 *
 * Write side: spool_audit_record merges one accepted message into the row
 * of (client address, AUTH user) inside the caller's write transaction, so
 * the row and the message commit together. The merge (bounded distinct
 * lists, the oldest TLS version) is done here in C between one keyed read
 * and one UPSERT: both touch only that row, never a scan.
 * Read side: spool_audit_list opens spool.db read-only on its own handle,
 * for mxrelayctl while the daemon runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spool_int.h"

/* A comma-joined list being merged: at most the list's maximum values. */
struct alist {
	char buf[SPOOL_AUDIT_LIST_MAX * (SPOOL_AUDIT_VALUE_MAX + 1) + 1];
	size_t len, n;
};

static const char *
nz(const char *s)
{
	return s ? s : "";
}

/*
 * The rank of a TLS version, lower is older; -1 for "" (plaintext, not a
 * version). Unknown names rank as newest: a future "TLSv1.4" is no risk.
 */
static int
tls_rank(const char *v)
{
	static const char *const order[] = {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
	size_t i;

	if (v == NULL || *v == '\0')
		return -1;
	for (i = 0; i < sizeof order / sizeof order[0]; i++)
		if (strcmp(v, order[i]) == 0)
			return (int)i;
	return (int)(sizeof order / sizeof order[0]);
}

static void
alist_load(struct alist *l, const char *joined)
{
	const char *p;

	l->len = l->n = 0;
	l->buf[0] = '\0';
	joined = nz(joined);
	if (*joined == '\0')
		return;
	l->len = strlen(joined);
	if (l->len >= sizeof l->buf)
		l->len = sizeof l->buf - 1; /* not written by us: cut, still a list */
	memcpy(l->buf, joined, l->len);
	l->buf[l->len] = '\0';
	l->n = 1;
	for (p = l->buf; (p = strchr(p, ',')) != NULL; p++)
		l->n++;
}

/* Is v (already cleaned) in the list? ASCII case-insensitive: domains are. */
static int
alist_has(const struct alist *l, const char *v, size_t vlen)
{
	const char *p = l->buf, *end = l->buf + l->len;

	while (l->n > 0 && p <= end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
		if (n == vlen && sqlite3_strnicmp(p, v, (int)n) == 0)
			return 1;
		if (c == NULL)
			break;
		p = c + 1;
	}
	return 0;
}

/*
 * Add v unless present or the list is full. Commas and control bytes become
 * '?' (the list is comma-joined); values are cut at SPOOL_AUDIT_VALUE_MAX.
 */
static void
alist_add(struct alist *l, const char *v)
{
	char clean[SPOOL_AUDIT_VALUE_MAX + 1];
	size_t i, n;

	if (v == NULL || l->n >= SPOOL_AUDIT_LIST_MAX)
		return;
	for (n = 0; v[n] && n < SPOOL_AUDIT_VALUE_MAX; n++) {
		unsigned char c = (unsigned char)v[n];
		clean[n] = (c == ',' || c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	clean[n] = '\0';
	if (n == 0 || alist_has(l, clean, n))
		return;
	if (l->len + n + 2 > sizeof l->buf)
		return;
	if (l->n > 0)
		l->buf[l->len++] = ',';
	for (i = 0; i < n; i++)
		l->buf[l->len++] = clean[i];
	l->buf[l->len] = '\0';
	l->n++;
}

/* The row as it is before this message; found = 0 when there is none yet. */
struct old_row {
	int found;
	char worst[32];
	int plaintext_auth, allowlisted;
	int64_t messages, first_seen, last_seen;
};

static int
read_row(struct spool *sp, const struct spool_audit_in *a, const char *qid, struct old_row *o,
         struct alist *senders, struct alist *froms, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_AUDIT_GET];
	int rc;

	memset(o, 0, sizeof *o);
	alist_load(senders, NULL);
	alist_load(froms, NULL);
	if (sqlite3_bind_text(st, 1, a->client_ip, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, nz(a->auth_user), -1, SQLITE_STATIC) != SQLITE_OK)
		return spool_bind_fail(sp, ST_AUDIT_GET, "audit", qid, err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		o->found = 1;
		snprintf(o->worst, sizeof o->worst, "%s",
		         nz((const char *)sqlite3_column_text(st, 0)));
		o->plaintext_auth = sqlite3_column_int(st, 1);
		o->allowlisted = sqlite3_column_int(st, 2);
		alist_load(senders, (const char *)sqlite3_column_text(st, 3));
		alist_load(froms, (const char *)sqlite3_column_text(st, 4));
		o->messages = sqlite3_column_int64(st, 5);
		o->first_seen = sqlite3_column_int64(st, 6);
		o->last_seen = sqlite3_column_int64(st, 7);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	} else {
		spool_seterr(err, errlen, "spool: audit %s: %s", qid, sqlite3_errmsg(sp->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
spool_audit_record(struct spool *sp, const struct spool_audit_in *a, const char *qid,
                   const char *listener, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_AUDIT_PUT];
	struct alist lists[2]; /* ~10 KiB on the writer thread's stack */
	struct old_row o;
	const char *worst;
	int64_t first, last, when = (int64_t)a->when;
	size_t i;
	int rc;

	if (a->client_ip == NULL || *a->client_ip == '\0')
		return SQLITE_OK; /* nothing to key the row on (not from a client) */
	rc = read_row(sp, a, qid, &o, &lists[0], &lists[1], err, errlen);
	if (rc != SQLITE_OK)
		return rc;
	alist_add(&lists[0], a->sender == NULL ? NULL : *a->sender ? a->sender : "<>");
	for (i = 0; i < a->nheader_from; i++)
		alist_add(&lists[1], a->header_from[i]);
	worst = o.worst;
	if (tls_rank(a->tls_version) >= 0 &&
	    (tls_rank(o.worst) < 0 || tls_rank(a->tls_version) < tls_rank(o.worst)))
		worst = a->tls_version;
	first = o.found && o.first_seen < when ? o.first_seen : when;
	last = o.found && o.last_seen > when ? o.last_seen : when;
	if (sqlite3_bind_text(st, 1, a->client_ip, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, nz(a->auth_user), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, nz(a->tls_version), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, nz(a->tls_cipher), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, worst, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, nz(a->auth_mech), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 7, o.plaintext_auth || a->plaintext_auth) != SQLITE_OK ||
	    sqlite3_bind_int(st, 8, o.allowlisted || a->allowlisted) != SQLITE_OK ||
	    sqlite3_bind_text(st, 9, lists[0].buf, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 10, lists[1].buf, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 11, o.messages + 1) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 12, first) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 13, last) != SQLITE_OK ||
	    sqlite3_bind_text(st, 14, listener, -1, SQLITE_STATIC) != SQLITE_OK)
		return spool_bind_fail(sp, ST_AUDIT_PUT, "audit", qid, err, errlen);
	return spool_step_done(sp, ST_AUDIT_PUT, "audit", qid, err, errlen);
}

int
spool_oldest_received(struct spool *sp, time_t *oldest, char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_OLDEST];
	int rc = sqlite3_step(st);

	*oldest = 0;
	if (rc == SQLITE_ROW)
		*oldest = (time_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		spool_seterr(err, errlen, "spool: oldest: %s", sqlite3_errmsg(sp->db));
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Read side ------------------------------------------------------------ */

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	return strdup(v ? v : "");
}

void
spool_audit_rows_free(struct spool_audit_row *rows, size_t n)
{
	size_t i;

	for (i = 0; rows != NULL && i < n; i++) {
		free(rows[i].client_ip);
		free(rows[i].auth_user);
		free(rows[i].tls_version);
		free(rows[i].tls_cipher);
		free(rows[i].worst_tls);
		free(rows[i].auth_mech);
		free(rows[i].senders);
		free(rows[i].header_from);
		free(rows[i].listener);
	}
	free(rows);
}

/* Append the current row of st to *rows. 0 / -1 (out of memory). */
static int
take_row(sqlite3_stmt *st, struct spool_audit_row **rows, size_t *n, size_t *cap)
{
	struct spool_audit_row *r;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct spool_audit_row *nr = realloc(*rows, ncap * sizeof *nr);
		if (nr == NULL)
			return -1;
		*rows = nr;
		*cap = ncap;
	}
	r = &(*rows)[*n];
	memset(r, 0, sizeof *r);
	(*n)++; /* counted before filling: a failed strdup leaves NULLs that free() takes */
	r->client_ip = col_dup(st, 0);
	r->auth_user = col_dup(st, 1);
	r->tls_version = col_dup(st, 2);
	r->tls_cipher = col_dup(st, 3);
	r->worst_tls = col_dup(st, 4);
	r->auth_mech = col_dup(st, 5);
	r->plaintext_auth = sqlite3_column_int(st, 6);
	r->allowlisted = sqlite3_column_int(st, 7);
	r->senders = col_dup(st, 8);
	r->header_from = col_dup(st, 9);
	r->messages = sqlite3_column_int64(st, 10);
	r->first_seen = (time_t)sqlite3_column_int64(st, 11);
	r->last_seen = (time_t)sqlite3_column_int64(st, 12);
	for (int k = 0; k < SPOOL_AUDIT_NEVENTS; k++) /* columns 13..: schema 7 */
		r->events[k] = sqlite3_column_count(st) > 13 + k ? sqlite3_column_int64(st, 13 + k) : 0;
	r->listener = sqlite3_column_count(st) > 18 ? col_dup(st, 18) : strdup(""); /* schema 9 */
	if (!r->client_ip || !r->auth_user || !r->tls_version || !r->tls_cipher || !r->worst_tls ||
	    !r->auth_mech || !r->senders || !r->header_from || !r->listener)
		return -1;
	return 0;
}

static int
query_rows(sqlite3 *db, const char *path, int64_t version, time_t since,
           struct spool_audit_row **out, size_t *n, char *err, size_t errlen)
{
	static const char sql[] =
	    "SELECT client_ip, auth_user, tls_version, tls_cipher, worst_tls, auth_mech,"
	    " plaintext_auth, allowlisted, senders, header_from, messages, first_seen, last_seen"
	    " FROM audit WHERE last_seen >= ?1";
	static const char sql7[] =
	    "SELECT client_ip, auth_user, tls_version, tls_cipher, worst_tls, auth_mech,"
	    " plaintext_auth, allowlisted, senders, header_from, messages, first_seen, last_seen,"
	    " sunset_warn, sunset_refused, rate_limited, repaired, bare_lf"
	    " FROM audit WHERE last_seen >= ?1";
	static const char sql9[] =
	    "SELECT client_ip, auth_user, tls_version, tls_cipher, worst_tls, auth_mech,"
	    " plaintext_auth, allowlisted, senders, header_from, messages, first_seen, last_seen,"
	    " sunset_warn, sunset_refused, rate_limited, repaired, bare_lf, listener"
	    " FROM audit WHERE last_seen >= ?1";
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	/* read-only: an older spool is read as it is, without the event columns */
	if (sqlite3_prepare_v2(db, version >= 9 ? sql9 : version >= 7 ? sql7 : sql, -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, (int64_t)since) != SQLITE_OK)
		goto sqlerr;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (take_row(st, out, n, &cap) != 0) {
			spool_seterr(err, errlen, "spool: audit %s: out of memory", path);
			sqlite3_finalize(st);
			return -1;
		}
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	sqlite3_finalize(st);
	return 0;
sqlerr:
	spool_seterr(err, errlen, "spool: audit %s: %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return -1;
}

int
spool_audit_list(const char *dir, time_t since, struct spool_audit_row **out, size_t *n, char *err,
                 size_t errlen)
{
	size_t len = strlen(dir) + sizeof "/spool.db";
	char *path = malloc(len);
	sqlite3 *db = NULL;
	struct stat sb;
	int64_t v = 0;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (path == NULL) {
		spool_seterr(err, errlen, "spool: audit: out of memory");
		return -1;
	}
	snprintf(path, len, "%s/spool.db", dir);
	/* never create it: SQLite would make an empty file for a mistyped data_dir */
	if (stat(path, &sb) != 0) {
		if (errno == ENOENT)
			spool_seterr(err, errlen, "no spool database at %s", path);
		else
			spool_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: audit %s: %s", path,
		             db ? sqlite3_errmsg(db) : "out of memory");
		goto done;
	}
	sqlite3_busy_timeout(db, 5000);
	if (spool_pragma_int(db, "PRAGMA user_version", &v) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: audit %s: %s", path, sqlite3_errmsg(db));
		goto done;
	}
	if (v < 2) {
		spool_seterr(err, errlen,
		             "%s has schema version %lld, which has no audit yet: start this"
		             " version of mxrelayd once to upgrade it",
		             path, (long long)v);
		goto done;
	}
	if (v > SPOOL_SCHEMA_VERSION) {
		spool_seterr(err, errlen, "%s: schema version %lld is newer than this mxrelay (%d)",
		             path, (long long)v, SPOOL_SCHEMA_VERSION);
		goto done;
	}
	if (query_rows(db, path, v, since, out, n, err, errlen) != 0) {
		spool_audit_rows_free(*out, *n);
		*out = NULL;
		*n = 0;
		goto done;
	}
	ret = 0;
done:
	sqlite3_close(db);
	free(path);
	return ret;
}
