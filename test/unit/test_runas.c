/*
 * runas: the DKIM key rule (table: mode, group, who runs the daemon ->
 * warning or not, and the fix) and the access check's one-line messages.
 * Runs as root (ctest under tools/run-tests.sh): it plans for the account
 * nobody and chowns files to nogroup.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "mta/shared/config.h"
#include "mta/runas.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[128];

static int
setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_runas: must run as root (it checks access for user nobody)\n");
		return -1;
	}
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_runas.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

/* A config from text (written to the temp folder), or fails the test. */
static struct config *
conf(const char *text)
{
	char path[256], err[1024];
	struct config *c = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/mxrelay.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0644);
	if (config_load(&c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	return c;
}

struct keycase {
	const char *label;
	const char *user_line;	/* "" or "user = nobody\n" */
	mode_t mode;
	bool nogroup;		/* file group nogroup (nobody's), else root */
	const char *why;	/* NULL: no warning */
	const char *fix;	/* the fix before the path: "chmod 0600", or "chgrp" (+ 0640) */
};

static const struct keycase keycases[] = {
    {"owner only", "", 0600, false, NULL, NULL},
    {"owner read only", "user = nobody\n", 0400, false, NULL, NULL},
    {"daemon group, user set", "user = nobody\n", 0640, true, NULL, NULL},
    {"daemon group, automatic user", "", 0640, true, NULL, NULL},
    {"world readable, root reads", "", 0644, false, "readable by every user (mode 0644, group root)",
     "chmod 0600"},
    {"world readable, user set", "user = nobody\n", 0644, false,
     "readable by every user (mode 0644, group root)", "chgrp"},
    {"world writable", "", 0602, false, "writable by every user (mode 0602, group root)",
     "chmod 0600"},
    {"group writable", "user = nobody\n", 0660, true,
     "writable by its group (mode 0660, group nogroup)", "chgrp"},
    {"other group, root reads", "", 0640, false,
     "readable by its group, which is not the daemon's (mode 0640, group root)", "chmod 0600"},
    {"daemon group but world readable, root reads", "", 0644, true,
     "readable by every user (mode 0644, group nogroup)", "chmod 0640"},
};

static void
test_key_rule(void **state)
{
	struct group *ng = getgrnam("nogroup");
	char path[256], why[512], fix[1024], want[1024], err[1024], text[256];

	(void)state;
	assert_non_null(ng);
	snprintf(path, sizeof path, "%s/key.pem", tmpdir);
	for (size_t i = 0; i < sizeof keycases / sizeof keycases[0]; i++) {
		const struct keycase *k = &keycases[i];
		struct runas a;
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
		assert_int_equal(chown(path, 0, k->nogroup ? ng->gr_gid : 0), 0);
		assert_int_equal(chmod(path, k->mode), 0);
		snprintf(text, sizeof text, "%sdata_dir = %s/data\n", k->user_line, tmpdir);
		struct config *c = conf(text);
		if (runas_plan(c, &a, err, sizeof err) != 0)
			fail_msg("%s: %s", k->label, err);
		int got = runas_key_exposed(path, why, sizeof why, fix, sizeof fix);
		if (k->why == NULL) {
			if (got != 0)
				fail_msg("%s: warned \"%s\"", k->label, why);
		} else {
			if (strcmp(k->fix, "chgrp") == 0)
				snprintf(want, sizeof want, "chgrp nogroup %s && chmod 0640 %s", path,
				         path);
			else
				snprintf(want, sizeof want, "%s %s", k->fix, path);
			if (got != 1 || strcmp(why, k->why) != 0 || strcmp(fix, want) != 0)
				fail_msg("%s: got %d \"%s\" \"%s\", want \"%s\" \"%s\"", k->label, got,
				         got ? why : "", got ? fix : "", k->why, want);
		}
		config_free(c);
	}
}

/* data_dir below a 0700 folder: the one line the issue asked for. */
static void
test_check_message(void **state)
{
	char text[512], want[1024], err[1024], top[256];
	struct runas a;
	struct config *c;

	(void)state;
	snprintf(top, sizeof top, "%s/private", tmpdir);
	assert_int_equal(mkdir(top, 0700), 0);
	chmod(tmpdir, 0755);
	snprintf(text, sizeof text, "user = nobody\ndata_dir = %s/var/mxrelay\n", top);
	c = conf(text);
	assert_int_equal(runas_plan(c, &a, err, sizeof err), 0);
	assert_true(a.drop && a.strict);
	assert_int_equal(runas_check(c, &a, RUNAS_AFTER, err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "%s/mxrelay.conf:2: data_dir %s/var/mxrelay: not reachable by user nobody (parent "
	         "%s is mode 0700, owner root:root): set data_dir under /var/lib or run without "
	         "dropping privileges (user = root)",
	         tmpdir, top, top);
	assert_string_equal(err, want);
	/* searchable now: nothing to say, though data_dir does not exist yet (root makes it) */
	chmod(top, 0711);
	assert_int_equal(runas_check(c, &a, RUNAS_AFTER, err, sizeof err), 0);
	config_free(c);

	/* a configuration file without a user line fails the same way: only the
	 * embedded default falls back to root (it.test_startup) */
	snprintf(text, sizeof text, "data_dir = %s/var/mxrelay\n", top);
	chmod(top, 0700);
	c = conf(text);
	assert_int_equal(runas_plan(c, &a, err, sizeof err), 0);
	assert_false(a.strict);
	assert_false(a.fallback);
	assert_int_equal(runas_check(c, &a, RUNAS_AFTER, err, sizeof err), -1);
	assert_null(strstr(err, "running as root instead"));
	assert_non_null(strstr(err, "run without dropping privileges (user = root)"));
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_rule),
	    cmocka_unit_test(test_check_message),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
