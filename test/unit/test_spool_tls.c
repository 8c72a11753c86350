/*
 * spool_tls_add (spool/spool_tlsstats.c): the outbound TLS counters of
 * schema 6. Rows and failures are added to (count = count + new, not
 * replaced), keys keep apart what RFC 8460 reports apart, and days older
 * than 40 are pruned in the same transaction. Read back with SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "spool/spool.h"
#include "spoolfx.h"

static char base[256], dir[300];

/* One integer from the spool's database. */
static int64_t
q1(const char *sql)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/spool.db", dir);
	return tu_db_int(path, sql);
}

static void
test_add_upsert_prune(void **state)
{
	struct spool *sp;
	char err[256] = "";
	const int64_t today = 20000;
	struct spool_tls_row rows[] = {
	    {today, "dane.test", "dane", "", "mx1.dane.test", 1, 0, 3, 3},
	    {today, "dane.test", "dane", "", "mx2.dane.test", 0, 1, 0, 0},
	    {today - 41, "old.test", "opportunistic", "", "mx.old.test", 1, 0, 1, 0},
	    {today - 40, "kept.test", "encrypt", "", "mx.kept.test", 1, 0, 1, 0},
	};
	struct spool_tls_failure fails[] = {
	    {today, "dane.test", "dane", "validation-failure", "", "mx2.dane.test", "127.0.0.2",
	     "no matching DANE TLSA records", 1},
	    {today, "dane.test", "dane", "starttls-not-supported", "", "mx2.dane.test", "127.0.0.2",
	     "no STARTTLS", 2},
	    {today - 50, "old.test", "dane", "validation-failure", "", "mx", "127.0.0.9", "x", 1},
	};

	(void)state;
	assert_int_equal(tu_spool_dirs("test_spool_tls", base, sizeof(base), dir, sizeof(dir)), 0);
	sp = tu_spool_open(dir);
	if (spool_tls_add(sp, rows, 4, fails, 3, today, err, sizeof(err)) != 0)
		fail_msg("spool_tls_add: %s", err);
	/* the same keys again: added to, not replaced */
	rows[0].delivered = 2;
	rows[0].verified = 1;
	fails[0].count = 4;
	fails[0].detail = "no matching DANE TLSA records (2)";
	if (spool_tls_add(sp, rows, 2, fails, 1, today, err, sizeof(err)) != 0)
		fail_msg("spool_tls_add: %s", err);
	spool_close(sp);

	assert_int_equal(q1("SELECT delivered FROM tls_stats WHERE mx = 'mx1.dane.test'"), 5);
	assert_int_equal(q1("SELECT verified FROM tls_stats WHERE mx = 'mx1.dane.test'"), 4);
	assert_int_equal(q1("SELECT sessions_ok FROM tls_stats WHERE mx = 'mx1.dane.test'"), 2);
	assert_int_equal(q1("SELECT sessions_failed FROM tls_stats WHERE mx = 'mx2.dane.test'"), 2);
	assert_int_equal(q1("SELECT count FROM tls_failures WHERE result_type = "
	                    "'validation-failure' AND domain = 'dane.test'"),
	                 5);
	assert_int_equal(q1("SELECT count(*) FROM tls_failures WHERE detail = "
	                    "'no matching DANE TLSA records (2)'"),
	                 1);
	assert_int_equal(q1("SELECT count FROM tls_failures WHERE result_type = "
	                    "'starttls-not-supported'"),
	                 2);
	/* pruned: older than 40 days; day today - 40 is kept */
	assert_int_equal(q1("SELECT count(*) FROM tls_stats WHERE domain = 'old.test'"), 0);
	assert_int_equal(q1("SELECT count(*) FROM tls_failures WHERE domain = 'old.test'"), 0);
	assert_int_equal(q1("SELECT count(*) FROM tls_stats WHERE domain = 'kept.test'"), 1);
	assert_int_equal(q1("SELECT count(*) FROM tls_stats"), 3);
}

static void
test_empty_batch(void **state)
{
	struct spool *sp;
	char err[256] = "";

	(void)state;
	sp = tu_spool_open(dir);
	/* nothing to add still prunes (a quiet day) and commits */
	assert_int_equal(spool_tls_add(sp, NULL, 0, NULL, 0, 20000 + 100, err, sizeof(err)), 0);
	spool_close(sp);
	assert_int_equal(q1("SELECT count(*) FROM tls_stats"), 0);
	assert_int_equal(q1("SELECT count(*) FROM tls_failures"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_upsert_prune),
	    cmocka_unit_test(test_empty_batch),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
