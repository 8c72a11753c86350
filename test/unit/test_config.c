/*
 * Unit tests for mta/shared/config: the embedded default, a full valid file, size
 * and duration units, listener addresses, and a table of bad files, each
 * with the exact "FILE:LINE: KEY: " prefix of its error. Every file lives in
 * a fresh mkdtemp directory. Tables report every failing row, then fail once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[128];

/* ---- helpers ---- */

static int
setup_dir(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/test_config.XXXXXX", base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

/* Write TEXT (LEN bytes) to NAME in the temp directory; the path goes to out. */
static void
write_conf(char *out, size_t outlen, const char *name, const char *text, size_t len)
{
	FILE *f;

	snprintf(out, outlen, "%s/%s", tmpdir, name);
	f = fopen(out, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Load TEXT as a file; fails the test on an error. */
static struct config *
load_text(const char *text)
{
	struct config *c = NULL;
	char path[256], err[1024] = "";

	write_conf(path, sizeof path, "ok.conf", text, strlen(text));
	if (config_load(&c, path, err, sizeof err) != 0)
		fail_msg("config_load failed: %s\n--- file ---\n%s", err, text);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	return c;
}

/* 1-based line of the first line starting with NEEDLE. */
static int
line_of(const char *text, const char *needle)
{
	int line = 1;
	const char *p = text;

	for (;;) {
		if (strncmp(p, needle, strlen(needle)) == 0)
			return line;
		p = strchr(p, '\n');
		if (p == NULL)
			fail_msg("no line starting with \"%s\"", needle);
		p++;
		line++;
	}
}

/* Listener address as "ip port family", e.g. "::1 465 6". */
static void
addr_text(const struct listener_conf *l, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = -1;

	if (l->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&l->addr;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		port = ntohs(s4->sin_port);
		assert_int_equal(l->addrlen, sizeof *s4);
	} else if (l->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&l->addr;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		port = ntohs(s6->sin6_port);
		assert_int_equal(l->addrlen, sizeof *s6);
	}
	snprintf(out, outlen, "%s %d %s", ip, port,
	         l->addr.ss_family == AF_INET    ? "v4"
	         : l->addr.ss_family == AF_INET6 ? "v6"
	                                         : "?");
}

static void
cidrs_text(const struct cidr_list *l, char *out, size_t outlen)
{
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < l->n && n < outlen; i++) {
		char a[INET6_ADDRSTRLEN];
		inet_ntop(l->v[i].family, l->v[i].addr, a, sizeof a);
		n += (size_t)snprintf(out + n, outlen - n, "%s%s/%d", i ? " " : "", a,
		                      l->v[i].prefix);
	}
}

static void
check_default_globals(const struct config *c)
{
	char host[256] = "", cidrs[256];

	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	assert_string_equal(c->hostname, host);
	assert_string_equal(c->data_dir, "./var/mxrelay");
	assert_null(c->user);
	cidrs_text(&c->relay_from, cidrs, sizeof cidrs);
	assert_string_equal(cidrs, "127.0.0.1/32 ::1/128");
	assert_null(c->credentials);
	assert_int_equal(c->max_message_size, 35ULL << 20);
	assert_int_equal(c->max_recipients, 100);
	assert_int_equal(c->max_header_size, 256ULL << 10);
	assert_int_equal(c->max_connections, 500);
	assert_int_equal(c->max_connections_per_ip, 20);
	assert_int_equal(c->auth_max_failures, 5);
	assert_int_equal(c->auth_block_time, 15 * 60);
	assert_int_equal(c->session_timeout, 5 * 60);
	assert_int_equal(c->shutdown_timeout, 30);
	assert_int_equal(c->spool_max_size, 0);
	/* 3 x max_message_size + 64M: a message in the WAL, again at checkpoint, and the WAL */
	assert_int_equal(c->queue_minfree, 3 * (35ULL << 20) + (64ULL << 20));
	assert_int_equal(c->spool_reserve, 16ULL << 20);
	assert_string_equal(c->log, "stderr");
}

static void
check_default_listener(const struct config *c)
{
	const struct listener_conf *l = c->listeners;
	char a[128];

	assert_non_null(l);
	assert_null(l->next);
	assert_string_equal(l->name, "default");
	assert_string_equal(l->address_text, "127.0.0.1:2525");
	addr_text(l, a, sizeof a);
	assert_string_equal(a, "127.0.0.1 2525 v4");
	assert_int_equal(l->tls, LTLS_STARTTLS);
	assert_null(l->cert);
	assert_null(l->key);
	assert_int_equal(l->tls_min_version, TLS1_2_VERSION);
	assert_int_equal(l->auth_without_tls, 0);
	assert_int_equal(l->legacy_tls, 0);
	assert_int_equal(l->legacy_from.n, 0);
	assert_int_equal(l->legacy_until, 0);
}

/* ---- good configurations ---- */

static void
test_embedded_default(void **state)
{
	struct config *c = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
	assert_non_null(c);
	assert_null(c->path);
	check_default_globals(c);
	check_default_listener(c);
	assert_int_equal(c->missing_from, MISSING_FROM_ENVELOPE);
	config_free(c);
	config_free(NULL);
}

/* An empty file, comments only, or global keys only: the embedded listener is used. */
static void
test_files_without_listeners(void **state)
{
	static const char *const texts[] = {
	    "",
	    "\n\n",
	    "# nothing here\n   # indented\n\t\n",
	    "# CRLF\r\n\r\nlog = stderr\r\n",
	};
	struct config *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		c = load_text(texts[i]);
		check_default_globals(c);
		check_default_listener(c);
		config_free(c);
	}
	c = load_text("max_recipients = 7\nrelay_from = 192.0.2.0/24\n");
	assert_int_equal(c->max_recipients, 7);
	assert_int_equal(c->relay_from.n, 1);
	check_default_listener(c);
	config_free(c);
}

static const char full_conf[] = "# every key, with the spacing variants people write\n"
                                "hostname = relay.example.com\n"
                                "data_dir=/var/lib/mxrelay\n"
                                "\tuser   =   mail  \n"
                                "relay_from = 10.0.0.0/8, 192.168.0.0/16 2001:db8::/32\n"
                                "credentials = /etc/mxrelay/passwd\n"
                                "\n"
                                "max_message_size = 50M\n"
                                "max_recipients = 250\r\n"
                                "max_header_size = 512K\n"
                                "max_connections = 1000\n"
                                "max_connections_per_ip = 30\n"
                                "auth_max_failures = 3\n"
                                "auth_block_time = 1h\n"
                                "session_timeout = 10m\n"
                                "shutdown_timeout = 45s\n"
                                "spool_max_size = 2G\n"
                                "log = syslog\n"
                                "missing_from = refuse\n"
                                "\n"
                                "[listener submission]\n"
                                "address = 0.0.0.0:587\n"
                                "tls = required\n"
                                "cert = /etc/ssl/relay.pem\n"
                                "key = /etc/ssl/relay.key\n"
                                "tls_min_version = 1.3\n"
                                "auth_without_tls = no\n"
                                "\n"
                                "  [ listener   smtps ]  \n"
                                "address = [::1]:465\n"
                                "tls = implicit\n"
                                "tls_min_version = 1.0\n"
                                "legacy_tls = yes\n"
                                "legacy_tls_from = 192.0.2.0/24, 2001:db8:1::/48\n"
                                "legacy_tls_until = 2026-06-30\n"
                                "\n"
                                "[listener lan]\n"
                                "# a comment inside a section\n"
                                "address = 192.168.1.10:25\n"
                                "tls = none\n"
                                "auth_without_tls = true\n"
                                "legacy_tls = false\n"
                                "\n"
                                "[listener v6any]\n"
                                "address = [2001:db8::25]:2525\n"
                                "tls = starttls\n"
                                "tls_min_version = 1.1"; /* no final newline */

static void
test_full_file(void **state)
{
	struct config *c;
	const struct listener_conf *l;
	char buf[256];

	(void)state;
	c = load_text(full_conf);
	assert_string_equal(c->hostname, "relay.example.com");
	assert_string_equal(c->data_dir, "/var/lib/mxrelay");
	assert_string_equal(c->user, "mail");
	cidrs_text(&c->relay_from, buf, sizeof buf);
	assert_string_equal(buf, "10.0.0.0/8 192.168.0.0/16 2001:db8::/32");
	assert_string_equal(c->credentials, "/etc/mxrelay/passwd");
	assert_int_equal(c->max_message_size, 50ULL << 20);
	assert_int_equal(c->max_recipients, 250);
	assert_int_equal(c->max_header_size, 512ULL << 10);
	assert_int_equal(c->max_connections, 1000);
	assert_int_equal(c->max_connections_per_ip, 30);
	assert_int_equal(c->auth_max_failures, 3);
	assert_int_equal(c->auth_block_time, 3600);
	assert_int_equal(c->session_timeout, 600);
	assert_int_equal(c->shutdown_timeout, 45);
	assert_int_equal(c->spool_max_size, 2ULL << 30);
	assert_string_equal(c->log, "syslog");
	assert_int_equal(c->missing_from, MISSING_FROM_REFUSE);

	l = c->listeners; /* file order */
	assert_non_null(l);
	assert_string_equal(l->name, "submission");
	assert_int_equal(l->line, line_of(full_conf, "[listener submission]"));
	assert_string_equal(l->address_text, "0.0.0.0:587");
	addr_text(l, buf, sizeof buf);
	assert_string_equal(buf, "0.0.0.0 587 v4");
	assert_int_equal(l->tls, LTLS_REQUIRED);
	assert_string_equal(l->cert, "/etc/ssl/relay.pem");
	assert_string_equal(l->key, "/etc/ssl/relay.key");
	assert_int_equal(l->tls_min_version, TLS1_3_VERSION);
	assert_int_equal(l->auth_without_tls, 0);
	assert_int_equal(l->legacy_tls, 0);
	assert_int_equal(l->legacy_from.n, 0);
	assert_int_equal(l->legacy_until, 0);

	l = l->next;
	assert_non_null(l);
	assert_string_equal(l->name, "smtps");
	assert_int_equal(l->line, line_of(full_conf, "  [ listener   smtps ]"));
	assert_string_equal(l->address_text, "[::1]:465");
	addr_text(l, buf, sizeof buf);
	assert_string_equal(buf, "::1 465 v6");
	assert_int_equal(l->tls, LTLS_IMPLICIT);
	assert_null(l->cert);
	assert_null(l->key);
	assert_int_equal(l->tls_min_version, TLS1_VERSION);
	assert_int_equal(l->legacy_tls, 1);
	cidrs_text(&l->legacy_from, buf, sizeof buf);
	assert_string_equal(buf, "192.0.2.0/24 2001:db8:1::/48");
	/* the sunset date is the last day: legacy TLS stops at 2026-07-01T00:00:00Z */
	assert_int_equal(l->legacy_until, 1782864000);

	l = l->next;
	assert_non_null(l);
	assert_string_equal(l->name, "lan");
	addr_text(l, buf, sizeof buf);
	assert_string_equal(buf, "192.168.1.10 25 v4");
	assert_int_equal(l->tls, LTLS_NONE);
	assert_int_equal(l->auth_without_tls, 1);
	assert_int_equal(l->legacy_tls, 0);
	assert_int_equal(l->tls_min_version, TLS1_2_VERSION);

	l = l->next;
	assert_non_null(l);
	assert_string_equal(l->name, "v6any");
	addr_text(l, buf, sizeof buf);
	assert_string_equal(buf, "2001:db8::25 2525 v6");
	assert_int_equal(l->tls, LTLS_STARTTLS);
	assert_int_equal(l->tls_min_version, TLS1_1_VERSION);
	assert_null(l->next);
	config_free(c);
}

/* The shipped sample must stay loadable (CMake names the checkout: MXRELAY_SRC_DIR). */
static void
test_sample_file(void **state)
{
	const char *path = MXRELAY_SRC_DIR "/etc/mxrelay.conf.sample";
	struct config *c = NULL;
	char err[1024] = "";

	(void)state;
	if (config_load(&c, path, err, sizeof err) != 0)
		fail_msg("sample: %s", err);
	assert_string_equal(c->hostname, "relay.example.com");
	assert_non_null(c->listeners);
	config_free(c);
}

/* ---- units ---- */

static void
test_sizes(void **state)
{
	static const struct {
		const char *value;
		uint64_t want;
	} cases[] = {
	    {"512K", 512ULL << 10},
	    {"35M", 35ULL << 20},
	    {"1G", 1ULL << 30},
	    {"10MB", 10ULL << 20},
	    {"10mb", 10ULL << 20},
	    {"4kB", 4ULL << 10},
	    {"2g", 2ULL << 30},
	    {"1048576", 1048576},
	    {"0", 0},
	    {"0K", 0},
	    {"4096G", 4096ULL << 30},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		char text[128];
		struct config *c;

		snprintf(text, sizeof text, "spool_max_size = %s\n", cases[i].value);
		c = load_text(text);
		if (c->spool_max_size != cases[i].want) {
			print_error("size %s: got %llu, want %llu\n", cases[i].value,
			            (unsigned long long)c->spool_max_size,
			            (unsigned long long)cases[i].want);
			bad++;
		}
		config_free(c);
	}
	if (bad)
		fail_msg("%d of %zu size rows failed", bad, n);
}

static void
test_durations(void **state)
{
	static const struct {
		const char *value;
		unsigned want;
	} cases[] = {
	    {"30s", 30},
	    {"5m", 300},
	    {"2h", 7200},
	    {"1d", 86400},
	    {"90", 90},
	    {"0", 0},
	    {"1", 1},
	    {"365d", 365 * 86400},
	    {"8760h", 365 * 86400},
	    {"31536000", 31536000},
	    {"45s", 45},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		char text[128];
		struct config *c;

		/* shutdown_timeout: a duration key with no lower bound, so "0" is valid */
		snprintf(text, sizeof text, "shutdown_timeout = %s\n", cases[i].value);
		c = load_text(text);
		if (c->shutdown_timeout != cases[i].want) {
			print_error("duration %s: got %u, want %u\n", cases[i].value,
			            c->shutdown_timeout, cases[i].want);
			bad++;
		}
		config_free(c);
	}
	if (bad)
		fail_msg("%d of %zu duration rows failed", bad, n);
}

static void
test_listener_addresses(void **state)
{
	static const struct {
		const char *value;
		const char *want; /* "ip port family" */
	} cases[] = {
	    {"127.0.0.1:25", "127.0.0.1 25 v4"},
	    {"0.0.0.0:1", "0.0.0.0 1 v4"},
	    {"192.0.2.7:65535", "192.0.2.7 65535 v4"},
	    {"[::1]:2525", "::1 2525 v6"},
	    {"[::]:587", ":: 587 v6"},
	    {"[2001:db8::1]:465", "2001:db8::1 465 v6"},
	    {"[::ffff:192.0.2.1]:25", "::ffff:192.0.2.1 25 v6"},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		char text[256], got[128];
		struct config *c;

		snprintf(text, sizeof text, "[listener x]\naddress = %s\n", cases[i].value);
		c = load_text(text);
		addr_text(c->listeners, got, sizeof got);
		if (strcmp(got, cases[i].want) != 0 ||
		    strcmp(c->listeners->address_text, cases[i].value) != 0) {
			print_error("address %s: got \"%s\" (%s), want \"%s\"\n", cases[i].value,
			            got, c->listeners->address_text, cases[i].want);
			bad++;
		}
		config_free(c);
	}
	if (bad)
		fail_msg("%d of %zu address rows failed", bad, n);
}

/* ---- bad configurations ---- */

struct bad_case {
	const char *label;
	const char *text;
	int line;
	const char *key;    /* NULL: the message has no KEY part ("FILE:LINE: reason") */
	const char *reason; /* must appear in the reason; "" only checks it is non-empty */
};

/* listener keys in these rows sit on line 3 */
#define LA "[listener a]\naddress = 127.0.0.1:2525\n"

static const struct bad_case bad_cases[] = {
    /* keys and sections */
    {"unknown key", "hostname = relay.example\nfoo = 1\n", 2, "foo", "unknown key"},
    {"missing_from value", "missing_from = fill\n", 1, "missing_from", "refuse, envelope"},
    {"unknown key in listener", LA "bar = 1\n", 3, "bar", "unknown key"},
    {"misspelled key", "max_recipient = 5\n", 1, "max_recipient", "unknown key"},
    {"keys are case-sensitive", "Hostname = x\n", 1, "Hostname", "unknown key"},
    {"unknown section", "# c\n[server x]\n", 2, NULL, "unknown section"},
    {"section without name", "[listener]\n", 1, NULL, ""},
    {"listener name of two words", "[listener a b]\n", 1, NULL, "one word"},
    {"unclosed section", "[listener a\n", 1, NULL, "[listener NAME]"},
    {"junk after section", "[listener a] x\n", 1, NULL, "[listener NAME]"},
    {"global key inside a section", LA "max_recipients = 5\n", 3, "max_recipients",
     "global key inside"},
    {"listener key outside", "address = 127.0.0.1:25\n", 1, "address", "only allowed inside"},
    {"listener key before first section", "# c\n\ntls = none\n" LA, 3, "tls",
     "only allowed inside"},
    {"missing =", "max_recipients 5\n", 1, NULL, "key = value"},
    {"missing = in listener", LA "tls none\n", 3, NULL, "key = value"},
    {"line count over comments and CRLF", "# a\r\n\r\n  # b\r\nmax_recipients = x\r\n", 4,
     "max_recipients", "not a number"},
    {"error on last line without newline", "hostname = a\nmax_recipients = x", 2, "max_recipients",
     "not a number"},

    /* values */
    {"empty string", "hostname =\n", 1, "hostname", "empty"},
    {"empty path", "data_dir = \t\n", 1, "data_dir", "empty"},
    {"bad log", "log = var/log/mx.log\n", 1, "log", "stderr, syslog or an absolute file path"},
    {"bad size suffix", "max_message_size = 35X\n", 1, "max_message_size", "not a size"},
    {"size with space", "max_message_size = 35 M\n", 1, "max_message_size", "not a size"},
    {"negative size", "max_header_size = -1\n", 1, "max_header_size", "not a size"},
    {"size suffix only", "max_header_size = M\n", 1, "max_header_size", "not a size"},
    {"fractional size", "max_message_size = 1.5M\n", 1, "max_message_size", "not a size"},
    {"size double suffix", "spool_max_size = 10KK\n", 1, "spool_max_size", "not a size"},
    {"empty size", "max_message_size =\n", 1, "max_message_size", ""},
    {"size too many digits", "spool_max_size = 99999999999999999999\n", 1, "spool_max_size",
     "not a size"},
    /* 17179869184G = 2^64 bytes: must not wrap to 0 (= unlimited for spool_max_size) */
    {"size overflow with suffix", "spool_max_size = 17179869184G\n", 1, "spool_max_size",
     "not a size"},
    {"queue_minfree under 2 x max_message_size",
     "max_message_size = 10M\nhostname = a\nqueue_minfree = 15M\n", 3, "queue_minfree",
     "below 2 x max_message_size (20971520 bytes)"},
    {"queue_minfree checked against a later max_message_size",
     "queue_minfree = 20M\nmax_message_size = 11M\n", 1, "queue_minfree", "2 x max_message_size"},
    {"bad spool_reserve", "spool_reserve = lots\n", 1, "spool_reserve", "not a size"},
    {"bad duration unit", "session_timeout = 5x\n", 1, "session_timeout", "not a duration"},
    {"weeks are not a unit", "auth_block_time = 1w\n", 1, "auth_block_time", "not a duration"},
    {"negative duration", "session_timeout = -5\n", 1, "session_timeout", "not a duration"},
    {"duration double unit", "session_timeout = 5mm\n", 1, "session_timeout", "not a duration"},
    {"duration with space", "shutdown_timeout = 5 m\n", 1, "shutdown_timeout", "not a duration"},
    {"duration over a year", "shutdown_timeout = 366d\n", 1, "shutdown_timeout", "not a duration"},
    {"empty duration", "session_timeout =\n", 1, "session_timeout", ""},
    {"zero session timeout", "session_timeout = 0\n", 1, "session_timeout", "at least"},
    {"bad number", "max_recipients = many\n", 1, "max_recipients", "not a number"},
    {"negative number", "max_recipients = -1\n", 1, "max_recipients", "not a number"},
    {"number too big", "max_connections = 1000001\n", 1, "max_connections", "not a number"},
    {"number with suffix", "max_connections = 5k\n", 1, "max_connections", "not a number"},
    {"bad bool", LA "auth_without_tls = maybe\n", 3, "auth_without_tls", "yes or no"},
    {"bool as digit", LA "legacy_tls = 1\n", 3, "legacy_tls", "yes or no"},
    {"bool upper case", LA "legacy_tls = Yes\n", 3, "legacy_tls", "yes or no"},
    {"bad CIDR prefix", "relay_from = 10.0.0.0/33\n", 1, "relay_from", "10.0.0.0/33"},
    {"bad CIDR in list", "relay_from = 10.0.0.0/8 nonsense\n", 1, "relay_from", "nonsense"},
    {"bad legacy CIDR", LA "legacy_tls_from = 300.0.0.0/8\n", 3, "legacy_tls_from", "300.0.0.0/8"},
    {"CIDR host bits", "relay_from = 10.0.0.1/8\n", 1, "relay_from", "host bits"},
    /* every word-valued key names its words (one table-driven setter serves them all) */
    {"bad address_family", "address_family = inet\n", 1, "address_family", "any, ipv4, ipv6"},
    {"bad dkim_unsigned", "dkim_unsigned = drop\n", 1, "dkim_unsigned", "send, refuse"},
    {"bad proxy_protocol", LA "proxy_protocol = v3\n", 3, "proxy_protocol", "no, v1, v2, any"},
    {"bad ms duration", "dns_timeout = 5 ms\n", 1, "dns_timeout", "like 500ms, 2s"},
    {"ms duration under minimum", "dns_timeout = 10ms\n", 1, "dns_timeout", "at least 50ms"},
    {"bad port", "smtp_port = 70000\n", 1, "smtp_port", ""},
    {"bad source_ipv4", "source_ipv4 = ::1\n", 1, "source_ipv4", "not an IPv4 address"},
    /* dns_servers: c-ares' list, checked at load (mxrelayctl and the daemon both use it) */
    {"dns_servers port", "dns_servers = 127.0.0.1:dns\n", 1, "dns_servers", "IPv4[:PORT]"},
    {"dns_servers name", "dns_servers = ns1.example\n", 1, "dns_servers", "IPv6 or [IPv6]:PORT"},
    {"dns_servers port 0", "dns_servers = [::1]:0\n", 1, "dns_servers", "\"[::1]:0\""},
    {"dns_servers brackets", "dns_servers = [::1]\n", 1, "dns_servers", "[IPv6]:PORT"},
    {"dns_servers space", "dns_servers = 127.0.0.1, ::1\n", 1, "dns_servers", "\" ::1\""},
    {"dns_servers empty item", "dns_servers = 127.0.0.1,\n", 1, "dns_servers", "\"\""},
    {"bad source_ipv6", "source_ipv6 = 10.0.0.1\n", 1, "source_ipv6", "not an IPv6 address"},
    {"bad metrics_listen", "metrics_listen = localhost\n", 1, "metrics_listen", "(or off)"},
    {"bad tls mode", LA "tls = on\n", 3, "tls", "none, starttls"},
    {"tls mode upper case", LA "tls = STARTTLS\n", 3, "tls", "none, starttls"},
    {"bad tls version", LA "tls_min_version = 1.4\n", 3, "tls_min_version", "1.0, 1.1"},
    {"tls version as name", LA "tls_min_version = TLSv1.2\n", 3, "tls_min_version", "1.0, 1.1"},
    {"address without port", "[listener a]\naddress = 127.0.0.1\n", 2, "address", "IP:PORT"},
    {"address port 0", "[listener a]\naddress = 127.0.0.1:0\n", 2, "address", "IP:PORT"},
    {"address port 65536", "[listener a]\naddress = 127.0.0.1:65536\n", 2, "address", "IP:PORT"},
    {"address empty port", "[listener a]\naddress = 127.0.0.1:\n", 2, "address", "IP:PORT"},
    {"address junk port", "[listener a]\naddress = 127.0.0.1:25x\n", 2, "address", "IP:PORT"},
    {"address bad IPv4", "[listener a]\naddress = 300.0.0.1:25\n", 2, "address", "IP:PORT"},
    {"address host name", "[listener a]\naddress = localhost:25\n", 2, "address", "IP:PORT"},
    {"address port only", "[listener a]\naddress = :25\n", 2, "address", "IP:PORT"},
    {"IPv6 without port", "[listener a]\naddress = [::1]\n", 2, "address", "IP:PORT"},
    {"IPv6 empty port", "[listener a]\naddress = [::1]:\n", 2, "address", "IP:PORT"},
    {"IPv6 no colon", "[listener a]\naddress = [::1]25\n", 2, "address", "IP:PORT"},
    {"IPv6 unclosed", "[listener a]\naddress = [::1:25\n", 2, "address", "IP:PORT"},
    {"IPv6 bad", "[listener a]\naddress = [::g]:25\n", 2, "address", "IP:PORT"},
    /* README: "IP:PORT or [IPv6]:PORT"; bare "::1:25" is ambiguous (is 25 the port?) */
    {"IPv6 without brackets", "[listener a]\naddress = ::1:25\n", 2, "address", "IP:PORT"},
    {"bad date month", LA "legacy_tls_until = 2026-13-01\n", 3, "legacy_tls_until", "YYYY-MM-DD"},
    {"date in other order", LA "legacy_tls_until = 30.06.2026\n", 3, "legacy_tls_until",
     "YYYY-MM-DD"},
    {"date with junk", LA "legacy_tls_until = 2026-06-30x\n", 3, "legacy_tls_until", "YYYY-MM-DD"},
    {"date as word", LA "legacy_tls_until = soon\n", 3, "legacy_tls_until", "YYYY-MM-DD"},
    {"date that does not exist", LA "legacy_tls_until = 2026-02-30\n", 3, "legacy_tls_until",
     "YYYY-MM-DD"},

    /* listeners as a whole: reported at the section line */
    {"duplicate listener name",
     "[listener a]\naddress = 127.0.0.1:25\n[listener a]\naddress = 127.0.0.1:26\n", 3, NULL,
     "defined twice (first at line 1)"},
    {"two listeners on one address",
     "[listener a]\naddress = 127.0.0.1:25\n\n[listener b]\naddress = 127.0.0.1:25\n", 4, "address",
     "[listener a]"},
    {"one IPv6 address spelled twice",
     "[listener a]\naddress = [::1]:25\n[listener b]\naddress = [0:0::1]:25\n", 3, "address",
     "[listener a]"},
    {"listener without address", "hostname = x\n\n[listener a]\ntls = none\n", 3, "address",
     "missing"},
    {"second listener without address", LA "[listener b]\ntls = none\n", 3, "address", "missing"},
    {"cert without key", LA "cert = /etc/ssl/c.pem\n", 1, "cert", "together"},
    {"key without cert", LA "key = /etc/ssl/k.pem\n", 1, "cert", "together"},
    {"legacy_tls on tls = none", LA "tls = none\nlegacy_tls = yes\n", 1, "legacy_tls",
     "tls = none"},
    {"legacy_tls_from on tls = none", LA "tls = none\nlegacy_tls_from = 10.0.0.0/8\n", 1,
     "legacy_tls", "tls = none"},

    /* lower bounds: reported at the line that set the value */
    {"max_recipients = 0", "hostname = x\nmax_recipients = 0\n", 2, "max_recipients", ""},
    {"max_message_size under 1K", "# c\nmax_message_size = 512\n", 2, "max_message_size", ""},
    {"max_connections = 0", "max_connections = 0\n", 1, "max_connections", ""},
    {"max_connections_per_ip = 0", "max_connections_per_ip = 0\n", 1, "max_connections_per_ip", ""},

    /* metrics: loopback only unless metrics_allow_remote, reported at metrics_listen's line */
    {"metrics not loopback", "hostname = x\nmetrics_listen = 192.0.2.1:9125\n", 2,
     "metrics_listen", "metrics_allow_remote"},
    {"metrics wildcard", "metrics_listen = 0.0.0.0:9125\n", 1, "metrics_listen", "loopback"},
    {"metrics v6 wildcard", "metrics_listen = [::]:9125\n", 1, "metrics_listen", "loopback"},
    {"metrics no port", "metrics_listen = 127.0.0.1\n", 1, "metrics_listen", "IP:PORT"},
    {"metrics name", "metrics_listen = localhost:9125\n", 1, "metrics_listen", "IP:PORT"},
    /* dnsbl = ZONE [DELISTING-URL] | none */
    {"dnsbl empty label", "dnsbl = bl..test\n", 1, "dnsbl", "not a DNS zone name"},
    {"dnsbl one label", "dnsbl = localhost\n", 1, "dnsbl", "not a DNS zone name"},
    {"dnsbl bad character", "dnsbl = bl!.test\n", 1, "dnsbl", "not a DNS zone name"},
    {"dnsbl url scheme", "dnsbl = bl.test ftp://bl.test/\n", 1, "dnsbl", "http:// or https://"},
    {"dnsbl url no host", "dnsbl = bl.test https://\n", 1, "dnsbl", "http:// or https://"},
    {"dnsbl three words", "dnsbl = bl.test https://a b\n", 1, "dnsbl", "ZONE [DELISTING-URL]"},
    {"dnsbl twice", "dnsbl = bl.test\ndnsbl = BL.Test\n", 2, "dnsbl", "already listed on line 1"},
    {"dnsbl after none", "dnsbl = none\ndnsbl = bl.test\n", 2, "dnsbl", "line 1 says"},
    {"dnsbl none after a list", "dnsbl = bl.test\ndnsbl = none\n", 2, "dnsbl", "line 1 names"},
    {"dnsbl zone too long for IPv6 names",
     "dnsbl = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test\n",
     1, "dnsbl", "not a DNS zone name"},
};

/* dnsbl lines: file order, the URL optional, none switches the check off. */
static void
test_dnsbl(void **state)
{
	static const char text[] = "dnsbl = bl.test https://bl.test/delist\n"
	                           "dnsbl = other-list.example\n";
	struct config *c = NULL;
	char path[256], err[1024] = "";

	(void)state;
	write_conf(path, sizeof path, "dnsbl.conf", text, strlen(text));
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	assert_non_null(c->dnsbls);
	assert_string_equal(c->dnsbls->zone, "bl.test");
	assert_string_equal(c->dnsbls->delist, "https://bl.test/delist");
	assert_int_equal(c->dnsbls->line, 1);
	assert_string_equal(c->dnsbls->next->zone, "other-list.example");
	assert_null(c->dnsbls->next->delist);
	assert_null(c->dnsbls->next->next);
	assert_int_equal(c->dnsbl_none, 0);
	config_free(c);
	write_conf(path, sizeof path, "dnsbl.conf", "dnsbl = none\n", 13);
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	assert_null(c->dnsbls);
	assert_int_equal(c->dnsbl_none, 1);
	config_free(c);
	/* no line: the built-in lists (mxrelayctl's), nothing in the config */
	assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
	assert_null(c->dnsbls);
	assert_int_equal(c->dnsbl_none, 0);
	config_free(c);
}

/* Check err against "PATH:LINE: KEY: reason" (or "PATH:LINE: reason"). 0 when it matches. */
static int
check_error(const char *label, const char *path, const char *err, int line, const char *key,
            const char *reason)
{
	char prefix[512];
	const char *rest;

	if (key)
		snprintf(prefix, sizeof prefix, "%s:%d: %s: ", path, line, key);
	else
		snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0) {
		print_error("bad \"%s\": got \"%s\", want prefix \"%s\"\n", label, err, prefix);
		return 1;
	}
	rest = err + strlen(prefix);
	if (*rest == '\0' || strchr(rest, '\n') || strstr(rest, reason) == NULL) {
		print_error("bad \"%s\": reason \"%s\" is empty, multi-line or lacks \"%s\"\n",
		            label, rest, reason);
		return 1;
	}
	return 0;
}

static void
test_bad_files(void **state)
{
	size_t i, n = sizeof bad_cases / sizeof bad_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct config *c = NULL;
		char path[256], err[1024] = "";

		write_conf(path, sizeof path, "bad.conf", bc->text, strlen(bc->text));
		if (config_load(&c, path, err, sizeof err) != -1) {
			print_error("bad \"%s\": loaded, expected \"%s:%d: %s%s...\"\n", bc->label,
			            path, bc->line, bc->key ? bc->key : "", bc->key ? ": " : "");
			config_free(c);
			bad++;
			continue;
		}
		bad += check_error(bc->label, path, err, bc->line, bc->key, bc->reason);
	}
	if (bad)
		fail_msg("%d of %zu bad-file rows failed", bad, n);
}

/* Lines up to 4096 characters are read; longer ones are an error, not split. */
static void
test_line_length(void **state)
{
	static const struct {
		const char *label;
		size_t len;  /* characters before the newline */
		int comment; /* a comment line instead of a hostname */
		int ok;
	} cases[] = {
	    {"4096", 4096, 0, 1},         {"4096 comment", 4096, 1, 1}, {"4097", 4097, 0, 0},
	    {"4097 comment", 4097, 1, 0}, {"10000", 10000, 0, 0},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		char *text = malloc(cases[i].len + 64), path[256], err[1024] = "";
		size_t len = (size_t)sprintf(text, "# first\n"), start = len;
		struct config *c = NULL;
		int rc;

		assert_non_null(text);
		len += (size_t)sprintf(text + len, cases[i].comment ? "#" : "hostname = ");
		memset(text + len, 'h', cases[i].len - (len - start));
		len = start + cases[i].len;
		len += (size_t)sprintf(text + len, "\nlog = syslog\n");
		write_conf(path, sizeof path, "long.conf", text, len);
		rc = config_load(&c, path, err, sizeof err);
		if (cases[i].ok) {
			if (rc != 0) {
				print_error("line \"%s\": %s\n", cases[i].label, err);
				bad++;
			} else if (!cases[i].comment &&
			           strlen(c->hostname) != cases[i].len - strlen("hostname = ")) {
				print_error("line \"%s\": hostname cut\n", cases[i].label);
				bad++;
			} else if (strcmp(c->log, "syslog") != 0) {
				print_error("line \"%s\": next line lost\n", cases[i].label);
				bad++;
			}
			config_free(c);
		} else if (rc != -1) {
			print_error("line \"%s\": loaded, expected an error\n", cases[i].label);
			config_free(c);
			bad++;
		} else {
			bad += check_error(cases[i].label, path, err, 2, NULL, "longer than 4096");
		}
		free(text);
	}
	if (bad)
		fail_msg("%d of %zu line-length rows failed", bad, n);
}

/*
 * A NUL byte is refused wherever it is: the line reader used to stop the
 * line there, so "hostname = a<NUL>junk" loaded as hostname a (seen while
 * writing the fuzz_config seeds). Each text is LEN bytes; the error names
 * the line.
 */
static void
test_nul_byte(void **state)
{
	static const struct {
		const char *label;
		const char *text;
		size_t len;
		int line;
	} cases[] = {
	    {"in a value", "hostname = a\0junk\nlog = syslog\n", 31, 1},
	    {"in a comment", "# a\0b\nhostname = x\n", 19, 1},
	    {"alone on a line", "hostname = x\n\0\n", 15, 2},
	    {"after the key", "max_recipients\0 = 5\n", 20, 1},
	    {"on the last line, no newline", "log = syslog\nuser = a\0", 22, 2},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		struct config *c = NULL;
		char path[256], err[1024] = "";

		write_conf(path, sizeof path, "nul.conf", cases[i].text, cases[i].len);
		if (config_load(&c, path, err, sizeof err) != -1) {
			print_error("NUL \"%s\": loaded\n", cases[i].label);
			config_free(c);
			bad++;
			continue;
		}
		bad += check_error(cases[i].label, path, err, cases[i].line, "line", "NUL byte");
	}
	if (bad)
		fail_msg("%d of %zu NUL-byte rows failed", bad, n);
}

static void
test_missing_file(void **state)
{
	struct config *c = NULL;
	char path[256], err[1024] = "";

	(void)state;
	snprintf(path, sizeof path, "%s/no-such.conf", tmpdir);
	assert_int_equal(config_load(&c, path, err, sizeof err), -1);
	assert_null(c);
	/* the message starts with the file name and says why */
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, "No such file"));

	/* a directory is not a configuration file either */
	assert_int_equal(config_load(&c, tmpdir, err, sizeof err), -1);
	assert_int_equal(strncmp(err, tmpdir, strlen(tmpdir)), 0);
}

/* A small error buffer is cut, never overrun. */
static void
test_small_err_buffer(void **state)
{
	struct config *c = NULL;
	char path[256], *err = malloc(16);

	(void)state;
	assert_non_null(err);
	write_conf(path, sizeof path, "bad.conf", "foo = 1\n", 8);
	assert_int_equal(config_load(&c, path, err, 16), -1);
	assert_int_equal(strlen(err), 15);
	assert_int_equal(strncmp(err, path, 15), 0);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_embedded_default),
	    cmocka_unit_test(test_files_without_listeners),
	    cmocka_unit_test(test_full_file),
	    cmocka_unit_test(test_sample_file),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_listener_addresses),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_dnsbl),
	    cmocka_unit_test(test_line_length),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_small_err_buffer),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
