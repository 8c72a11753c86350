/*
 * creds: the optional fifth field "sunset=YYYY-MM-DD" (issue 15): parsed,
 * refused when malformed, kept by creds_update_file, set and removed by
 * creds_update_file_sunset; the dates themselves (creds_parse_date).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "mta/shared/creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* sha512-crypt of "Hello world!" from the algorithm's reference test vectors */
#define H                                                                                          \
	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdF"  \
	"CoEOfaS35inz1"

static char tmpdir[128], path[256];

static int
setup_dir(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/test_creds_sunset.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(path, sizeof path, "%s/passwd", tmpdir);
	return 0;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

static void
write_text(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *
read_text(void)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static time_t
sunset_of(const char *user)
{
	struct creds *c = NULL;
	char err[512] = "";
	time_t t;

	if (creds_load(&c, path, err, sizeof err) != 0)
		fail_msg("load: %s", err);
	assert_non_null(creds_find(c, user));
	t = creds_find(c, user)->sunset;
	creds_free(c);
	return t;
}

static void
test_dates(void **state)
{
	char day[16];
	time_t t;

	(void)state;
	assert_int_equal(creds_parse_date("2027-03-31", &t), 0);
	/* the last day still works: the sunset is the next midnight UTC */
	assert_int_equal((long long)t, 1806537600LL);
	creds_format_date(t, day, sizeof day);
	assert_string_equal(day, "2027-03-31");
	assert_int_equal(creds_parse_date("2027-02-29", &t), -1);
	assert_int_equal(creds_parse_date("2028-02-29", &t), 0);
	assert_int_equal(creds_parse_date("2027-3-31x", &t), -1);
	assert_int_equal(creds_parse_date("2027-03-31 ", &t), -1);
	assert_int_equal(creds_parse_date("", &t), -1);
	assert_int_equal(creds_parse_date("0000-01-01", &t), -1);
	assert_int_equal(creds_parse_date("1969-12-31", &t), -1);
	assert_int_equal(creds_parse_date("+202-01-01", &t), -1);
	assert_int_equal(creds_parse_date("2027-1-031", &t), -1);
	assert_int_equal(creds_parse_date("9999-12-31", &t), 0);
	creds_format_date(t, day, sizeof day);
	assert_string_equal(day, "9999-12-31");
}

static void
test_parse(void **state)
{
	struct creds *c = NULL;
	char err[512] = "";
	static const char *const bad[] = {
	    "a:" H ":enabled:*:sunset=2027-02-30\n",
	    "a:" H ":enabled:*:sunset=\n",
	    "a:" H ":enabled:*:until=2027-03-31\n",
	    "a:" H ":enabled:*:sunset=2027-03-31:more\n",
	};

	(void)state;
	write_text("old:" H ":enabled:a@x.org\nnew:" H ":enabled:a@x.org:sunset=2027-03-31\n");
	assert_int_equal(sunset_of("old"), 0);
	assert_int_equal((long long)sunset_of("new"), 1806537600LL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_text(bad[i]);
		if (creds_load(&c, path, err, sizeof err) == 0)
			fail_msg("accepted: %s", bad[i]);
		if (!strstr(err, ":1: "))
			fail_msg("no line number for %s: %s", bad[i], err);
	}
}

static void
test_update_keeps_and_sets(void **state)
{
	char err[512] = "";
	time_t t;

	(void)state;
	write_text("# devices\nscan:" H ":enabled:scan@x.org:sunset=2027-03-31\n");
	/* a change of senders or state keeps the sunset */
	assert_int_equal(creds_update_file(path, "scan", NULL, "@x.org", 1, err, sizeof err), 0);
	assert_string_equal(read_text(),
	                    "# devices\nscan:" H ":disabled:@x.org:sunset=2027-03-31\n");
	assert_int_equal(creds_parse_date("2026-12-31", &t), 0);
	assert_int_equal(creds_update_file_sunset(path, "scan", NULL, NULL, 0, t, err, sizeof err),
	                 0);
	assert_string_equal(read_text(), "# devices\nscan:" H ":enabled:@x.org:sunset=2026-12-31\n");
	assert_int_equal(creds_update_file_sunset(path, "scan", NULL, NULL, -1, 0, err, sizeof err),
	                 0);
	assert_string_equal(read_text(), "# devices\nscan:" H ":enabled:@x.org\n");
	assert_int_equal(sunset_of("scan"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_update_keeps_and_sets),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
