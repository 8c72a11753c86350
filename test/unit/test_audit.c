/*
 * Unit tests for spool/spool_audit.c: the audit row merge (counts, first and
 * last seen, latest TLS and the oldest one ever, sticky flags, bounded
 * distinct lists, cleaned values), that it commits or rolls back with its
 * message, the read-only listing with --since, errors for a missing or
 * pre-audit spool, and the upgrade of a version-1 spool.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "testutil.h"
#include <sqlite3.h>

#include "spool/spool.h"

struct fx {
	char base[64];
	char dir[96];
	struct spool *sp;
	int seq;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	char err[256];

	if (fx == NULL)
		return -1;
	snprintf(fx->base, sizeof fx->base, "/tmp/test_audit.XXXXXX");
	if (mkdtemp(fx->base) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->dir, sizeof fx->dir, "%s/spool", fx->base);
	if (spool_open(&fx->sp, fx->dir, err, sizeof err) != 0) {
		fprintf(stderr, "spool_open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	spool_close(fx->sp);
	tu_rmtree(fx->base);
	free(fx);
	return 0;
}

/* Store one message carrying audit record a; returns the insert's result. */
static int
store(struct fx *fx, const struct spool_audit_in *a, const char *qid)
{
	static const char *const rcpts[] = {"r@example.net"};
	struct spool_msg_in m, *p = &m;
	char err[256] = "";
	int rc;

	memset(&m, 0, sizeof m);
	if (qid != NULL)
		snprintf(m.qid, sizeof m.qid, "%s", qid);
	else
		snprintf(m.qid, sizeof m.qid, "%016x", ++fx->seq);
	m.sender = a && a->sender ? a->sender : "";
	m.rcpts = rcpts;
	m.nrcpts = 1;
	m.body = "Subject: x\r\n\r\nbody\r\n";
	m.body_len = strlen(m.body);
	m.received = a ? a->when : 1;
	m.client_ip = a ? a->client_ip : NULL;
	m.audit = a;
	rc = spool_insert_batch(fx->sp, &p, 1, NULL, err, sizeof err);
	if (rc != 0 && qid == NULL)
		fail_msg("insert: %s", err);
	return rc;
}

static struct spool_audit_row *
list(struct fx *fx, time_t since, size_t *n)
{
	struct spool_audit_row *rows = NULL;
	char err[256] = "";

	if (spool_audit_list(fx->dir, since, &rows, n, err, sizeof err) != 0)
		fail_msg("spool_audit_list: %s", err);
	return rows;
}

static const struct spool_audit_row *
find(const struct spool_audit_row *rows, size_t n, const char *ip, const char *user)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].client_ip, ip) == 0 && strcmp(rows[i].auth_user, user) == 0)
			return &rows[i];
	fail_msg("no row %s/%s", ip, user);
	return NULL;
}

static void
test_merge(void **state)
{
	struct fx *fx = *state;
	const char *from1[] = {"a@example.com", "b@example.com"};
	const char *from2[] = {"B@EXAMPLE.COM", "c@example.com"};
	/* label, tls, sender, from list, when: one device, three messages */
	struct spool_audit_in a[3] = {
	    {"192.0.2.7", "copier", "TLSv1.2", "AES128-SHA", "PLAIN", 0, 0, "s1@example.com", from1,
	     2, 2000},
	    {"192.0.2.7", "copier", "TLSv1", "AES256-SHA", "LOGIN", 0, 0, "S1@example.com", from2,
	     2, 1000},
	    {"192.0.2.7", "copier", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "PLAIN", 0, 0, "", NULL, 0,
	     3000},
	};
	const struct spool_audit_row *r;
	struct spool_audit_row *rows;
	size_t n, i;

	for (i = 0; i < 3; i++)
		store(fx, &a[i], NULL);
	rows = list(fx, 0, &n);
	assert_int_equal(n, 1);
	r = find(rows, n, "192.0.2.7", "copier");
	assert_int_equal(r->messages, 3);
	assert_int_equal(r->first_seen, 1000); /* min, though it came second */
	assert_int_equal(r->last_seen, 3000);
	assert_string_equal(r->tls_version, "TLSv1.3"); /* latest */
	assert_string_equal(r->tls_cipher, "TLS_AES_128_GCM_SHA256");
	assert_string_equal(r->worst_tls, "TLSv1"); /* oldest ever */
	assert_string_equal(r->auth_mech, "PLAIN");
	assert_string_equal(r->senders, "s1@example.com,<>"); /* case-insensitive distinct */
	assert_string_equal(r->header_from, "a@example.com,b@example.com,c@example.com");
	assert_int_equal(r->plaintext_auth, 0);
	assert_int_equal(r->allowlisted, 0);
	spool_audit_rows_free(rows, n);
}

static void
test_flags_stick_and_keys(void **state)
{
	struct fx *fx = *state;
	struct spool_audit_in a = {"192.0.2.8",     NULL, "", "", "", 0, 1,
	                           "x@example.com", NULL, 0,  10};
	const struct spool_audit_row *r;
	struct spool_audit_row *rows;
	size_t n;

	store(fx, &a, NULL); /* allowlisted, plaintext */
	a.tls_version = "TLSv1.3";
	a.allowlisted = 0;
	a.when = 20;
	store(fx, &a, NULL); /* later over TLS: allowlisted sticks, worst stays a version */
	a.auth_user = "dev";
	a.auth_mech = "LOGIN";
	a.tls_version = "";
	a.plaintext_auth = 1;
	store(fx, &a, NULL);
	a.tls_version = "TLSv1.2";
	a.plaintext_auth = 0;
	store(fx, &a, NULL);
	a.client_ip = NULL; /* not from a client: no row */
	store(fx, &a, NULL);
	store(fx, NULL, NULL); /* a bounce: no audit at all */
	rows = list(fx, 0, &n);
	assert_int_equal(n, 2);
	r = find(rows, n, "192.0.2.8", "");
	assert_int_equal(r->messages, 2);
	assert_int_equal(r->allowlisted, 1);
	assert_string_equal(r->tls_version, "TLSv1.3");
	assert_string_equal(r->worst_tls, "TLSv1.3"); /* plaintext is not a TLS version */
	r = find(rows, n, "192.0.2.8", "dev");
	assert_int_equal(r->plaintext_auth, 1); /* once is enough */
	assert_string_equal(r->tls_version, "TLSv1.2");
	assert_string_equal(r->auth_mech, "LOGIN");
	spool_audit_rows_free(rows, n);
}

static void
test_bounded_lists(void **state)
{
	struct fx *fx = *state;
	char sender[64], longv[400], *fromv[1];
	struct spool_audit_in a = {"192.0.2.9", "u",  "TLSv1.3", "c", "PLAIN", 0,
	                           0,           NULL, NULL,      0,   5};
	struct spool_audit_row *rows;
	size_t n, commas = 0;
	const char *p;

	for (int i = 0; i < SPOOL_AUDIT_LIST_MAX + 5; i++) {
		snprintf(sender, sizeof sender, "s%d@example.com", i);
		a.sender = sender;
		store(fx, &a, NULL);
	}
	/* commas and control bytes cannot break the list; long values are cut */
	memset(longv, 'x', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	memcpy(longv, "\"a,b\tc\"@", 8);
	fromv[0] = longv;
	a.header_from = (const char *const *)fromv;
	a.nheader_from = 1;
	store(fx, &a, NULL);
	rows = list(fx, 0, &n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].messages, SPOOL_AUDIT_LIST_MAX + 6);
	for (p = rows[0].senders; *p; p++)
		commas += *p == ',';
	assert_int_equal(commas, SPOOL_AUDIT_LIST_MAX - 1); /* the first 20 kept */
	assert_non_null(strstr(rows[0].senders, "s19@example.com"));
	assert_null(strstr(rows[0].senders, "s20@example.com"));
	assert_int_equal(strlen(rows[0].header_from), SPOOL_AUDIT_VALUE_MAX);
	assert_memory_equal(rows[0].header_from, "\"a?b?c\"@x", 9);
	spool_audit_rows_free(rows, n);
}

static void
test_rollback_with_message(void **state)
{
	static const char *const rcpts[] = {"r@example.net"};
	struct fx *fx = *state;
	struct spool_audit_in a = {"192.0.2.10", "u",  "TLSv1.3", "c", "PLAIN", 0, 0,
	                           "a@x",        NULL, 0,         5};
	struct spool_audit_in b = a;
	struct spool_msg_in m[2], *p[2] = {&m[0], &m[1]};
	struct spool_audit_row *rows;
	char err[256];
	size_t n;

	assert_int_equal(store(fx, &a, "00000000000000aa"), 0);
	/* a batch whose first message (and audit update) is fine and whose second
	 * repeats a queue id: all or nothing, the audit update included */
	b.sender = "b@x";
	memset(m, 0, sizeof m);
	for (int i = 0; i < 2; i++) {
		m[i].sender = "b@x";
		m[i].rcpts = rcpts;
		m[i].nrcpts = 1;
		m[i].received = 6;
		m[i].client_ip = b.client_ip;
		m[i].audit = &b;
	}
	snprintf(m[0].qid, sizeof m[0].qid, "00000000000000bb");
	snprintf(m[1].qid, sizeof m[1].qid, "00000000000000aa");
	assert_int_equal(spool_insert_batch(fx->sp, p, 2, NULL, err, sizeof err), -1);
	rows = list(fx, 0, &n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].messages, 1);
	assert_string_equal(rows[0].senders, "a@x");
	assert_int_equal(rows[0].last_seen, 5);
	spool_audit_rows_free(rows, n);
}

static void
test_since_and_readonly(void **state)
{
	struct fx *fx = *state;
	struct spool_audit_in a = {"192.0.2.11", "", "", "", "", 0, 1, "a@x", NULL, 0, 100};
	struct spool_audit_row *rows;
	size_t n;

	store(fx, &a, NULL);
	a.client_ip = "192.0.2.12";
	a.when = 200;
	store(fx, &a, NULL);
	/* fx->sp stays open (as the daemon's writer would): the list reads beside it */
	rows = list(fx, 150, &n);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].client_ip, "192.0.2.12");
	spool_audit_rows_free(rows, n);
	rows = list(fx, 201, &n);
	assert_int_equal(n, 0);
	spool_audit_rows_free(rows, n);
	rows = list(fx, 0, &n);
	assert_int_equal(n, 2);
	spool_audit_rows_free(rows, n);
}

static void
test_list_errors(void **state)
{
	struct fx *fx = *state;
	struct spool_audit_row *rows = (struct spool_audit_row *)1;
	char dir[128], path[160], err[256] = "";
	sqlite3 *db;
	size_t n = 7;
	struct stat sb;

	snprintf(dir, sizeof dir, "%s/none", fx->base);
	assert_int_equal(spool_audit_list(dir, 0, &rows, &n, err, sizeof err), -1);
	assert_null(rows);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, "no spool database at"));
	assert_int_equal(stat(dir, &sb), -1); /* nothing created */

	snprintf(dir, sizeof dir, "%s/v1", fx->base);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/spool.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(spool_audit_list(dir, 0, &rows, &n, err, sizeof err), -1);
	assert_non_null(strstr(err, "schema version 1"));
}

/* A version-1 spool (as released) is migrated: its mail stays, the audit table appears. */
static void
test_upgrade_from_v1(void **state)
{
	struct fx *fx = *state;
	struct spool_audit_in a = {"192.0.2.13", "", "", "", "", 0, 1, "a@x", NULL, 0, 100};
	char path[160], err[256] = "";
	struct spool_audit_row *rows;
	sqlite3 *db;
	int64_t count = -1;
	size_t n;

	store(fx, NULL, NULL);
	spool_close(fx->sp);
	fx->sp = NULL;
	snprintf(path, sizeof path, "%s/spool.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DROP TABLE audit; DROP INDEX IF EXISTS audit_last_seen;"
	                              " INSERT INTO body_chunks SELECT msg_id, seq, data FROM bodies;"
	                              " DROP TABLE bodies;"
	                              " DROP TABLE bounce_digest;" /* 9 */
	                              " DROP TABLE bounce_digest_dropped;"
	                              " ALTER TABLE messages DROP COLUMN listener;" /* 8 */
	                              " ALTER TABLE messages DROP COLUMN message_id;"
	                              " ALTER TABLE messages DROP COLUMN unfinished;"
	                              " DROP TABLE sts_policies; DROP TABLE tls_stats;" /* 6 */
	                              " DROP TABLE tls_failures; DROP TABLE tlsrpt_sent;"
	                              " DROP INDEX recipients_dom;" /* schema 5 */
	                              " ALTER TABLE recipients DROP COLUMN domain;"
	                              " PRAGMA user_version = 1",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(spool_open(&fx->sp, fx->dir, err, sizeof err), 0);
	assert_int_equal(spool_count(fx->sp, &count, err, sizeof err), 0);
	assert_int_equal(count, 1);
	store(fx, &a, NULL);
	rows = list(fx, 0, &n);
	assert_int_equal(n, 1);
	spool_audit_rows_free(rows, n);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_merge),
	    T(test_flags_stick_and_keys),
	    T(test_bounded_lists),
	    T(test_rollback_with_message),
	    T(test_since_and_readonly),
	    T(test_list_errors),
	    T(test_upgrade_from_v1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
