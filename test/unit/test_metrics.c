/*
 * Unit tests for mta/metrics.c: the Prometheus text (every family with one
 * # HELP and one # TYPE, samples after their TYPE), reply-to-reason and
 * TLS-version mapping (table-driven), histogram buckets (boundaries,
 * cumulative, +Inf = _count, sum), the queue age, and snprintf-like
 * truncation of the render.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mta/metrics.h"

#define BUF (64 * 1024)

static char buf[BUF];

static int
reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

/* The value of the sample line that starts with "prefix " (-1 if absent). */
static double
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = text;

	while ((p = strstr(p, prefix)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static size_t
count_of(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
test_render_zero(void **state)
{
	static const char *const families[] = {
	    "mxrelay_sessions_total counter",
	    "mxrelay_accepted_total counter",
	    "mxrelay_rejected_total counter",
	    "mxrelay_delivered_total counter",
	    "mxrelay_deferred_total counter",
	    "mxrelay_bounced_total counter",
	    "mxrelay_tls_sessions_total counter",
	    "mxrelay_auth_total counter",
	    "mxrelay_sessions gauge",
	    "mxrelay_queue_messages gauge",
	    "mxrelay_queue_oldest_age_seconds gauge",
	    "mxrelay_results_unrecorded gauge",
	    "mxrelay_dns_lookup_seconds histogram",
	    "mxrelay_delivery_attempt_seconds histogram",
	};
	char want[128];
	size_t n, i;
	const char *ln;

	(void)state;
	n = metrics_render(buf, sizeof buf, 1000);
	assert_int_equal(n, strlen(buf));
	assert_true(n > 0 && buf[n - 1] == '\n');
	for (i = 0; i < sizeof families / sizeof families[0]; i++) {
		snprintf(want, sizeof want, "# TYPE %s\n", families[i]);
		if (count_of(buf, want) != 1)
			fail_msg("want exactly one '%s'", want);
		snprintf(want, sizeof want, "# HELP %.*s ", (int)strcspn(families[i], " "),
		         families[i]);
		if (count_of(buf, want) != 1)
			fail_msg("want exactly one '%s'", want);
	}
	/* every sample line: mxrelay_ name, optional one label, a value; all zero now */
	for (ln = buf; *ln; ln = strchr(ln, '\n') + 1) {
		if (*ln == '#')
			continue;
		assert_memory_equal(ln, "mxrelay_", 8);
		const char *sp = strchr(ln, ' ');
		assert_non_null(sp);
		if (strtod(sp + 1, NULL) != 0)
			fail_msg("not zero after reset: %.*s", (int)strcspn(ln, "\n"), ln);
	}
	assert_true(sample(buf, "mxrelay_rejected_total{reason=\"size\"}") == 0);
	assert_true(sample(buf, "mxrelay_dns_lookup_seconds_bucket{le=\"+Inf\"}") == 0);
}

static void
test_reject_classes(void **state)
{
	static const struct {
		const char *label;
		enum reply_id id;
		const char *sample;
	} cases[] = {
	    {"size", R_MSG_TOO_BIG, "reason=\"size\""},
	    {"header size", R_HEADER_TOO_BIG, "reason=\"size\""},
	    {"bare LF", R_BARE_LINE_END, "reason=\"content\""},
	    {"NUL", R_NUL_BYTE, "reason=\"content\""},
	    {"long line", R_LINE_TOO_LONG, "reason=\"content\""},
	    {"From", R_FROM_NOT_ALLOWED, "reason=\"policy\""},
	    {"two From", R_FROM_MANY, "reason=\"policy\""},
	    {"no DKIM key", R_DKIM_NO_KEY, "reason=\"policy\""},
	    {"disk", R_SPOOL_FULL, "reason=\"system\""},
	    {"local", R_LOCAL_ERROR, "reason=\"system\""},
	    {"DKIM failed", R_DKIM_FAILED, "reason=\"system\""},
	    {"no class", R_NONE, "reason=\"policy\""},
	};
	char key[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		metrics_reset();
		metrics_reject(reply_class(cases[i].id));
		metrics_render(buf, sizeof buf, 0);
		snprintf(key, sizeof key, "mxrelay_rejected_total{%s}", cases[i].sample);
		if (sample(buf, key) != 1)
			fail_msg("%s: %s not counted", cases[i].label, key);
		if (count_of(buf, "mxrelay_rejected_total{") != 6)
			fail_msg("%s: reason set changed", cases[i].label);
	}
}

static void
test_tls_versions(void **state)
{
	static const struct {
		const char *in, *label;
	} cases[] = {
	    {"TLSv1", "TLSv1"},     {"TLSv1.1", "TLSv1.1"}, {"TLSv1.2", "TLSv1.2"},
	    {"TLSv1.3", "TLSv1.3"}, {"SSLv3", "other"},     {NULL, "other"},
	};
	char key[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		metrics_tls_seen(cases[i].in);
	metrics_render(buf, sizeof buf, 0);
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof key, "mxrelay_tls_sessions_total{version=\"%s\"}",
		         cases[i].label);
		assert_true(sample(buf, key) == 1);
	}
	assert_true(sample(buf, "mxrelay_tls_sessions_total{version=\"other\"}") == 2);
}

static void
test_histogram(void **state)
{
	/* boundaries are inclusive (le): 0.001 falls in le="0.001" */
	static const double obs[] = {0, 0.0005, 0.001, 0.3, 0.3, 100, -1, NAN};
	static const struct {
		const char *le;
		double want;
	} cum[] = {{"0.001", 5}, {"0.005", 5}, {"0.25", 5}, {"0.5", 7},
	           {"2.5", 7},   {"10", 7},    {"+Inf", 8}};
	char key[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof obs / sizeof obs[0]; i++)
		metrics_observe(H_DNS_SECONDS, obs[i]);
	metrics_render(buf, sizeof buf, 0);
	for (i = 0; i < sizeof cum / sizeof cum[0]; i++) {
		snprintf(key, sizeof key, "mxrelay_dns_lookup_seconds_bucket{le=\"%s\"}",
		         cum[i].le);
		if (sample(buf, key) != cum[i].want)
			fail_msg("%s: got %g, want %g", key, sample(buf, key), cum[i].want);
	}
	assert_true(sample(buf, "mxrelay_dns_lookup_seconds_count") == 8);
	assert_true(fabs(sample(buf, "mxrelay_dns_lookup_seconds_sum") - 100.6015) < 1e-6);
	/* the other histogram is untouched */
	assert_true(sample(buf, "mxrelay_delivery_attempt_seconds_count") == 0);
}

static void
test_gauges_and_age(void **state)
{
	(void)state;
	metrics_gauge_add(G_SESSIONS, 3);
	metrics_gauge_add(G_SESSIONS, -1);
	metrics_gauge_set(G_QUEUE_MESSAGES, 1234567);
	metrics_gauge_set(G_QUEUE_OLDEST, 5000);
	metrics_render(buf, sizeof buf, 5042);
	assert_true(sample(buf, "mxrelay_sessions") == 2);
	assert_true(sample(buf, "mxrelay_queue_messages{state=\"queued\"}") == 1234567);
	metrics_gauge_set(G_QUEUE_HELD, 7);
	metrics_render(buf, sizeof buf, 5042);
	assert_true(sample(buf, "mxrelay_queue_messages{state=\"held\"}") == 7);
	assert_true(sample(buf, "mxrelay_queue_oldest_age_seconds") == 42);
	/* a clock that went back, or an empty queue: never negative */
	metrics_render(buf, sizeof buf, 4000);
	assert_true(sample(buf, "mxrelay_queue_oldest_age_seconds") == 0);
	metrics_gauge_set(G_QUEUE_OLDEST, 0);
	metrics_render(buf, sizeof buf, 5042);
	assert_true(sample(buf, "mxrelay_queue_oldest_age_seconds") == 0);
}

static void
test_truncation(void **state)
{
	char small[100];
	size_t full, n;

	(void)state;
	metrics_inc(M_ACCEPTED);
	full = metrics_render(buf, sizeof buf, 0);
	memset(small, 'x', sizeof small);
	n = metrics_render(small, sizeof small, 0);
	assert_int_equal(n, full);
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_memory_equal(small, buf, sizeof small - 1);
	assert_int_equal(metrics_render(NULL, 0, 0), full);
	assert_int_equal(metrics_counter(M_ACCEPTED), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_render_zero, reset),
	    cmocka_unit_test_setup(test_reject_classes, reset),
	    cmocka_unit_test_setup(test_tls_versions, reset),
	    cmocka_unit_test_setup(test_histogram, reset),
	    cmocka_unit_test_setup(test_gauges_and_age, reset),
	    cmocka_unit_test_setup(test_truncation, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
