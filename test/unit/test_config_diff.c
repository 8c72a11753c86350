/*
 * Unit tests for mta/shared/config_diff: which changes a reload reports as
 * needing a restart. Table rows: a running configuration, the next one,
 * and the exact notes (one per line) config_restart_notes returns; keys a
 * reload applies (relay_from, cert, key, tls_ca_file, ...) give none.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "mta/shared/config.h"
#include "mta/shared/config_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[128];

static int
setup_dir(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/test_config_diff.XXXXXX", base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

static struct config *
load_text(const char *name, const char *text)
{
	struct config *c = NULL;
	char path[256], err[1024] = "";
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	if (config_load(&c, path, err, sizeof err) != 0)
		fail_msg("config_load failed: %s\n--- file ---\n%s", err, text);
	return c;
}

#define BASE "hostname = mx.example.com\n"
#define LIS "[listener main]\naddress = 127.0.0.1:2525\n"

static const struct row {
	const char *label, *running, *next, *notes;
} rows[] = {
    {"same", BASE LIS, BASE LIS, ""},
    {"reloadable keys only", BASE LIS,
     BASE "relay_from = 192.0.2.0/24\ntls_ca_file = /etc/ssl/certs/ca-certificates.crt\n"
          "max_recipients = 7\n" LIS "cert = /a.pem\nkey = /a.key\n",
     ""},
    {"data_dir and max_inflight", BASE "data_dir = /var/lib/a\n" LIS,
     BASE "data_dir = /var/lib/b\nmax_inflight = 3\n" LIS,
     /* the sockets live in data_dir unless set: they move with it */
     "data_dir changes need a restart\ncontrol_socket changes need a restart\n"
     "submit_socket changes need a restart\nmax_inflight changes need a restart"},
    {"resolver keys", BASE LIS, BASE "dns_servers = 127.0.0.1:53\ndns_timeout = 9s\n" LIS,
     "dns_servers changes need a restart\ndns_timeout changes need a restart"},
    {"log and sockets", BASE LIS,
     BASE "log = syslog\ncontrol_socket = /run/x.sock\nmetrics_listen = 127.0.0.1:9100\n" LIS,
     "log changes need a restart\ncontrol_socket changes need a restart\n"
     "metrics_listen changes need a restart"},
    {"listener address", BASE LIS, BASE "[listener main]\naddress = 127.0.0.1:2526\n",
     "listener main: address and other listener keys but cert and key need a restart"},
    {"listener tls mode", BASE LIS, BASE LIS "tls = none\n",
     "listener main: address and other listener keys but cert and key need a restart"},
    {"listener proxy_from", BASE LIS "proxy_protocol = v2\nproxy_from = 10.0.0.0/8\n",
     BASE LIS "proxy_protocol = v2\nproxy_from = 10.1.0.0/16\n",
     "listener main: address and other listener keys but cert and key need a restart"},
    {"listener added and removed", BASE LIS,
     BASE "[listener other]\naddress = 127.0.0.1:2527\n",
     "listener main removed: needs a restart\nlistener other added: needs a restart"},
};

static void
test_restart_notes(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct config *a = load_text("a.conf", rows[i].running);
		struct config *b = load_text("b.conf", rows[i].next);
		char out[2048];
		int n = config_restart_notes(a, b, out, sizeof out);
		int want = 0;
		for (const char *p = rows[i].notes; *p; p++)
			want += *p == '\n';
		want += rows[i].notes[0] != '\0';
		if (strcmp(out, rows[i].notes) != 0 || n != want) {
			print_error("%s: got %d notes \"%s\", want %d \"%s\"\n", rows[i].label, n, out,
			            want, rows[i].notes);
			bad++;
		}
		config_free(a);
		config_free(b);
	}
	assert_int_equal(bad, 0);
}

/* A buffer too small: cut, still a string, every change counted. */
static void
test_small_buffer(void **state)
{
	struct config *a, *b;
	char out[8];

	(void)state;
	a = load_text("a.conf", BASE LIS);
	b = load_text("b.conf", BASE "data_dir = /x\nmax_inflight = 3\n" LIS);
	assert_int_equal(config_restart_notes(a, b, out, sizeof out), 4);
	assert_true(strlen(out) < sizeof out);
	assert_int_equal(config_restart_notes(a, b, out, 0), 0);
	assert_ptr_equal(config_listener_find(a->listeners, "main"), a->listeners);
	assert_null(config_listener_find(b->listeners, "other"));
	config_free(a);
	config_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restart_notes),
	    cmocka_unit_test(test_small_buffer),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
