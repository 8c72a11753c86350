/*
 * Unit tests for mta/shared/tlsrpt.c (RFC 8460 text) and spool/spool_tlsread.c:
 * the _smtp._tls TXT table, the JSON report's fields and grouping, gzip
 * decoded by zlib's own inflate, the report message's headers and part, and
 * the read-only listing and the sent marks on a real spool file.
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
#include <openssl/evp.h>
#include <sqlite3.h>
#include <zlib.h>

#include "mta/shared/tlsrpt.h"
#include "spool/spool.h"

/* ---- TXT ------------------------------------------------------------------ */

struct txt_case {
	const char *label;
	const char *recs[3];
	int ok;
	size_t n;            /* URIs kept */
	const char *first;   /* first URI's address (mailto) or uri (https) */
	const char *errpart; /* part of the error text */
};

static const struct txt_case txt_cases[] = {
    {"mailto", {"v=TLSRPTv1; rua=mailto:rpt@example.com"}, 1, 1, "rpt@example.com", NULL},
    {"https",
     {"v=TLSRPTv1;rua=https://r.example.com/tls"},
     1,
     1,
     "https://r.example.com/tls",
     NULL},
    {"both, spaces",
     {"v=TLSRPTv1 ; rua=mailto:a@x.example , https://h.example/r ;"},
     1,
     2,
     "a@x.example",
     NULL},
    {"percent and query",
     {"v=TLSRPTv1; rua=mailto:a%2Bb@x.example?subject=hi"},
     1,
     1,
     "a+b@x.example",
     NULL},
    {"other records ignored",
     {"v=spf1 -all", "v=TLSRPTv1; rua=mailto:r@x.example"},
     1,
     1,
     "r@x.example",
     NULL},
    {"unknown scheme skipped",
     {"v=TLSRPTv1; rua=ftp://x.example,mailto:r@x.example"},
     1,
     1,
     "r@x.example",
     NULL},
    {"extension ignored", {"v=TLSRPTv1; ext=1; rua=mailto:r@x.example"}, 1, 1, "r@x.example", NULL},
    {"none", {"v=spf1 -all"}, 0, 0, NULL, "no v=TLSRPTv1"},
    {"two records",
     {"v=TLSRPTv1; rua=mailto:a@x.example", "v=TLSRPTv1; rua=mailto:b@x.example"},
     0,
     0,
     NULL,
     "more than one"},
    {"version prefix only", {"v=TLSRPTv10; rua=mailto:a@x.example"}, 0, 0, NULL, "no v="},
    {"no rua", {"v=TLSRPTv1"}, 0, 0, NULL, "no rua"},
    {"only unknown schemes", {"v=TLSRPTv1; rua=ftp://x.example"}, 0, 0, NULL, "no mailto"},
    {"bad mailto", {"v=TLSRPTv1; rua=mailto:nobody"}, 0, 0, NULL, "not one mail address"},
    {"two addresses in one mailto",
     {"v=TLSRPTv1; rua=mailto:a@x.example%2Cb@x.example"},
     0,
     0,
     NULL,
     "not one mail address"},
    {"bad percent", {"v=TLSRPTv1; rua=mailto:a%4@x.example"}, 0, 0, NULL, "not one"},
    {"https without host", {"v=TLSRPTv1; rua=https:///x"}, 0, 0, NULL, "no host"},
    {"rua twice",
     {"v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example"},
     0,
     0,
     NULL,
     "twice"},
    {"garbage field", {"v=TLSRPTv1; rua"}, 0, 0, NULL, "name=value"},
    {"missing semicolon", {"v=TLSRPTv1 rua=mailto:a@x.example"}, 0, 0, NULL, "expected ';'"},
};

static void
test_txt_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof txt_cases / sizeof txt_cases[0]; i++) {
		const struct txt_case *c = &txt_cases[i];
		struct tlsrpt_rua rua;
		char err[256] = "";
		size_t n = 0;
		int rc;

		while (n < 3 && c->recs[n])
			n++;
		rc = tlsrpt_txt_parse(c->recs, n, &rua, err, sizeof err);
		if ((rc == 0) != c->ok)
			fail_msg("%s: rc %d err \"%s\"", c->label, rc, err);
		if (!c->ok) {
			if (strstr(err, c->errpart) == NULL)
				fail_msg("%s: error \"%s\" lacks \"%s\"", c->label, err,
				         c->errpart);
			continue;
		}
		if (rua.n != c->n)
			fail_msg("%s: %zu URIs, want %zu", c->label, rua.n, c->n);
		const char *got = rua.u[0].kind == TLSRPT_MAILTO ? rua.u[0].addr : rua.u[0].uri;
		if (strcmp(got, c->first) != 0)
			fail_msg("%s: first \"%s\", want \"%s\"", c->label, got, c->first);
	}
}

static void
test_txt_limits(void **state)
{
	struct tlsrpt_rua rua;
	char rec[6000], err[256];
	const char *recs[1] = {rec};
	size_t i;

	(void)state;
	/* 12 URIs: the first TLSRPT_RUA_MAX are kept */
	snprintf(rec, sizeof rec, "v=TLSRPTv1; rua=");
	for (i = 0; i < 12; i++)
		snprintf(rec + strlen(rec), sizeof rec - strlen(rec), "%smailto:r%zu@x.example",
		         i ? "," : "", i);
	assert_int_equal(tlsrpt_txt_parse(recs, 1, &rua, err, sizeof err), 0);
	assert_int_equal(rua.n, TLSRPT_RUA_MAX);
	assert_string_equal(rua.u[7].addr, "r7@x.example");
	/* a record over TLSRPT_TXT_MAX */
	snprintf(rec, sizeof rec, "v=TLSRPTv1; rua=mailto:r@x.example; x=");
	memset(rec + strlen(rec), 'a', 5000);
	rec[sizeof rec - 1] = '\0';
	assert_int_equal(tlsrpt_txt_parse(recs, 1, &rua, err, sizeof err), -1);
	assert_non_null(strstr(err, "longer than"));
}

/* ---- JSON ------------------------------------------------------------------ */

#define DAY 20428 /* 2025-12-06 */

static const struct tlsrpt_row rows[] = {
    {DAY, "example.net", "mta-sts",
     "version: STSv1\nmode: enforce\nmx: *.mx.example.net\nmax_age: 86400", "mx1.mx.example.net", 7,
     2},
    {DAY, "example.net", "dane", "3 1 1 aabbcc", "mx2.example.net", 3, 0},
    {DAY, "example.net", "opportunistic", "", "mx3.example.net", 4, 0},
    {DAY, "example.net", "plaintext", "", "mx3.example.net", 1, 0},
    {DAY, "other.example", "dane", "3 1 1 ff", "mx.other.example", 50, 0},
    {DAY - 1, "example.net", "dane", "3 1 1 aabbcc", "mx2.example.net", 99, 0},
};

static const struct tlsrpt_failure fails[] = {
    {DAY, "example.net", "mta-sts", "certificate-host-mismatch", "192.0.2.7", "mx1.mx.example.net",
     "198.51.100.1", "hostname mismatch \"x\"", 2},
    {DAY, "example.net", "dane", "validation-failure", "192.0.2.7", "mx9.example.net", "", "", 1},
    {DAY, "other.example", "dane", "validation-failure", "192.0.2.7", "mx.other.example", "", "",
     5},
};

static struct tlsrpt_report
report(void)
{
	struct tlsrpt_report r = {
	    .org = "relay.example.org",
	    .contact = "tlsrpt-noreply@relay.example.org",
	    .submitter = "relay.example.org",
	    .domain = "example.net",
	    .day = DAY,
	    .report_id = "2025-12-06.0123abcd@relay.example.org",
	    .rows = rows,
	    .nrows = sizeof rows / sizeof rows[0],
	    .fails = fails,
	    .nfails = sizeof fails / sizeof fails[0],
	};
	return r;
}

static void
must_have(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("missing %s in:\n%s", needle, hay);
}

static void
test_json(void **state)
{
	struct tlsrpt_report r = report();
	char *js;
	size_t len;

	(void)state;
	assert_int_equal(tlsrpt_json(&r, &js, &len), 0);
	assert_int_equal(strlen(js), len);
	must_have(js, "\"organization-name\": \"relay.example.org\"");
	must_have(js, "\"start-datetime\": \"2025-12-06T00:00:00Z\", \"end-datetime\": "
	              "\"2025-12-06T23:59:59Z\"");
	must_have(js, "\"contact-info\": \"tlsrpt-noreply@relay.example.org\"");
	must_have(js, "\"report-id\": \"2025-12-06.0123abcd@relay.example.org\"");
	/* sts: policy lines and the mx patterns */
	must_have(js,
	          "\"policy-type\": \"sts\", \"policy-string\": [\"version: STSv1\", \"mode: "
	          "enforce\", \"mx: *.mx.example.net\", \"max_age: 86400\"], \"policy-domain\": "
	          "\"example.net\", \"mx-host\": [\"*.mx.example.net\"]");
	must_have(js,
	          "{\"total-successful-session-count\": 7, \"total-failure-session-count\": 2}");
	must_have(js, "{\"result-type\": \"certificate-host-mismatch\", \"sending-mta-ip\": "
	              "\"192.0.2.7\", \"receiving-mx-hostname\": \"mx1.mx.example.net\", "
	              "\"receiving-ip\": \"198.51.100.1\", \"failed-session-count\": 2, "
	              "\"failure-reason-code\": \"hostname mismatch \\\"x\\\"\"}");
	/* tlsa per MX host; a host seen only in failures counts those */
	must_have(js, "\"policy-type\": \"tlsa\", \"policy-string\": [\"3 1 1 aabbcc\"], "
	              "\"policy-domain\": \"example.net\", \"mx-host\": [\"mx2.example.net\"]");
	must_have(js,
	          "\"mx-host\": [\"mx9.example.net\"]},\n   \"summary\": "
	          "{\"total-successful-session-count\": 0, \"total-failure-session-count\": 1}");
	/* opportunistic and plaintext fold into no-policy-found */
	must_have(js, "\"policy-type\": \"no-policy-found\", \"policy-string\": [], "
	              "\"policy-domain\": \"example.net\"},\n   \"summary\": "
	              "{\"total-successful-session-count\": 5,");
	/* other domains and days are not in it */
	assert_null(strstr(js, "other.example"));
	assert_null(strstr(js, "99"));
	free(js);
}

static void
test_json_escapes(void **state)
{
	struct tlsrpt_row w = {DAY, "x.example", "dane", "a\"b\\c\x01", "mx.x.example", 1, 0};
	struct tlsrpt_report r = {.org = "o",
	                          .contact = "c",
	                          .submitter = "s",
	                          .domain = "X.EXAMPLE",
	                          .day = DAY,
	                          .report_id = "id",
	                          .rows = &w,
	                          .nrows = 1};
	char *js;
	size_t len;

	(void)state;
	assert_int_equal(tlsrpt_json(&r, &js, &len), 0);
	must_have(js, "[\"a\\\"b\\\\c\\u0001\"]"); /* the domain matched case-insensitively */
	free(js);
}

/* RFC 8259 8.1: the report is UTF-8 whatever bytes a policy or an MX reply held. */
static void
test_json_utf8(void **state)
{
	struct tlsrpt_row w = {
	    DAY, "x.example", "dane", "caf\xe9 \xff\xc3\xa9\xed\xa0\x80\xc0\xaf", "mx.x.example", 1,
	    0};
	struct tlsrpt_failure f = {DAY,
	                           "x.example",
	                           "dane",
	                           "validation-failure",
	                           "192.0.2.1",
	                           "mx.x.example",
	                           "",
	                           "bad \xe9\x01\xf0\x9f\x98\x80 \xf0\x9f",
	                           1};
	struct tlsrpt_report r = {.org = "o",
	                          .contact = "c",
	                          .submitter = "s",
	                          .domain = "x.example",
	                          .day = DAY,
	                          .report_id = "id",
	                          .rows = &w,
	                          .nrows = 1,
	                          .fails = &f,
	                          .nfails = 1};
	char *js;
	size_t len;

	(void)state;
	assert_int_equal(tlsrpt_json(&r, &js, &len), 0);
	/* a stray byte, a surrogate and an overlong form: U+FFFD per byte; good UTF-8 kept */
	must_have(js, "[\"caf\xef\xbf\xbd \xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	              "\xef\xbf\xbd\xef\xbf\xbd\"]");
	must_have(js, "\"failure-reason-code\": \"bad \xef\xbf\xbd\\u0001\xf0\x9f\x98\x80 "
	              "\xef\xbf\xbd\xef\xbf\xbd\"");
	for (size_t i = 0; i < len;) { /* the whole text is valid UTF-8 */
		size_t k = tlsrpt_utf8_len(js + i, len - i);
		assert_true(k > 0);
		i += k;
	}
	free(js);
}

/* ---- gzip ------------------------------------------------------------------- */

static unsigned char *
gunzip(const unsigned char *gz, size_t n, size_t *outlen)
{
	size_t cap = 1 << 20;
	unsigned char *out = malloc(cap);
	z_stream z;

	memset(&z, 0, sizeof z);
	assert_int_equal(inflateInit2(&z, 31), Z_OK); /* gzip only */
	z.next_in = (Bytef *)(uintptr_t)gz;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = z.total_out;
	inflateEnd(&z);
	return out;
}

static void
test_gzip_round_trip(void **state)
{
	struct tlsrpt_report r = report();
	unsigned char *gz, *back;
	size_t len, gzlen, blen;
	char *js;

	(void)state;
	assert_int_equal(tlsrpt_json(&r, &js, &len), 0);
	assert_int_equal(tlsrpt_gzip((unsigned char *)js, len, &gz, &gzlen), 0);
	assert_true(gzlen > 18);
	assert_int_equal(gz[0], 0x1f); /* RFC 1952 2.3.1: ID1 ID2 CM=8 */
	assert_int_equal(gz[1], 0x8b);
	assert_int_equal(gz[2], 8);
	assert_true(gzlen < len); /* it did compress */
	back = gunzip(gz, gzlen, &blen);
	assert_int_equal(blen, len);
	assert_memory_equal(back, js, len);
	free(back);
	free(gz);
	/* empty input is still a valid gzip member */
	assert_int_equal(tlsrpt_gzip((const unsigned char *)"", 0, &gz, &gzlen), 0);
	back = gunzip(gz, gzlen, &blen);
	assert_int_equal(blen, 0);
	free(back);
	free(gz);
	free(js);
}

/* ---- MIME ------------------------------------------------------------------- */

static void
test_mime(void **state)
{
	struct tlsrpt_report r = report();
	const unsigned char gz[] = {0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6};
	char *msg, *p, b64[64];
	size_t len;

	(void)state;
	assert_int_equal(tlsrpt_mime(&r, "tlsrpt-noreply@relay.example.org", "rpt@example.net",
	                             "Sun, 07 Dec 2025 00:10:00 +0000", "b0undary", gz, sizeof gz,
	                             &msg, &len),
	                 0);
	assert_int_equal(strlen(msg), len);
	must_have(msg, "From: <tlsrpt-noreply@relay.example.org>\r\nTo: <rpt@example.net>\r\n");
	must_have(msg, "\r\nSubject: Report Domain: example.net Submitter: relay.example.org "
	               "Report-ID: <2025-12-06.0123abcd@relay.example.org>\r\n");
	must_have(msg, "\r\nTLS-Report-Domain: example.net\r\nTLS-Report-Submitter: "
	               "relay.example.org\r\n");
	must_have(msg, "\r\nContent-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
	               "\tboundary=\"b0undary\"\r\n\r\n");
	must_have(msg, "\r\n--b0undary\r\nContent-Type: application/tlsrpt+gzip\r\n"
	               "Content-Transfer-Encoding: base64\r\n");
	/* RFC 8460 5.3 file name: the day's first and last second */
	must_have(msg, "filename=\"relay.example.org!example.net!1764979200!1765065599!"
	               "2025120699859450.json.gz\"");
	/* RFC 8460 5.3: unique-id = 1*(ALPHA / DIGIT), the same for the same (day, domain) */
	p = strstr(msg, "!1765065599!");
	assert_non_null(p);
	for (p += 12; *p != '.'; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'));
	EVP_EncodeBlock((unsigned char *)b64, gz, sizeof gz);
	p = strstr(msg, "json.gz\"\r\n\r\n");
	assert_non_null(p);
	assert_memory_equal(p + 12, b64, strlen(b64));
	assert_non_null(strstr(msg, "\r\n--b0undary--\r\n"));
	/* no bare LF anywhere */
	for (p = msg; *p; p++)
		if (*p == '\n')
			assert_true(p > msg && p[-1] == '\r');
	free(msg);
}

/* ---- spool read side -------------------------------------------------------- */

struct seen {
	int rows, fails;
	int64_t ok;
	char last_domain[64];
};

static int
on_row(void *arg, const struct spool_tls_row *w)
{
	struct seen *s = arg;
	s->rows++;
	s->ok += w->sessions_ok;
	snprintf(s->last_domain, sizeof s->last_domain, "%s", w->domain);
	return 0;
}

static int
on_fail(void *arg, const struct spool_tls_failure *f)
{
	struct seen *s = arg;
	s->fails += (int)f->count;
	return 0;
}

static void
test_spool_list_and_mark(void **state)
{
	char base[64] = "/tmp/test_tlsrpt.XXXXXX", dir[96], path[128], err[256] = "";
	struct spool *sp;
	struct seen s = {0};
	sqlite3 *db;
	int sent = -1;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof dir, "%s/spool", base);
	/* before the file exists: a clear error, and nothing is created */
	assert_int_equal(spool_tls_list(dir, 0, on_row, on_fail, &s, err, sizeof err), -1);
	assert_non_null(strstr(err, "no spool database"));
	assert_int_equal(spool_open(&sp, dir, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/spool.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
	                 "INSERT INTO tls_stats (day, domain, policy, mx, sessions_ok) VALUES"
	                 " (100, 'a.example', 'dane', 'mx.a.example', 3),"
	                 " (101, 'b.example', 'opportunistic', 'mx.b.example', 4),"
	                 " (101, 'a.example', 'plaintext', 'mx.a.example', 5);"
	                 "INSERT INTO tls_failures (day, domain, policy, result_type, count) VALUES"
	                 " (100, 'a.example', 'dane', 'validation-failure', 2),"
	                 " (101, 'a.example', 'dane', 'validation-failure', 7);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(spool_tls_list(dir, 101, on_row, on_fail, &s, err, sizeof err), 0);
	assert_int_equal(s.rows, 2);
	assert_int_equal(s.ok, 9);
	assert_int_equal(s.fails, 7);
	assert_string_equal(s.last_domain, "b.example"); /* (day, domain) order */

	assert_int_equal(spool_tlsrpt_sent(dir, 101, "a.example", &sent, err, sizeof err), 0);
	assert_int_equal(sent, 0);
	assert_int_equal(spool_tlsrpt_mark(sp, 101, "A.example", "mailto:r@a.example", "id1", 5,
	                                   "queued X", err, sizeof err),
	                 0);
	assert_int_equal(spool_tlsrpt_sent(dir, 101, "a.example", &sent, err, sizeof err), 0);
	assert_int_equal(sent, 1);
	assert_int_equal(spool_tlsrpt_sent(dir, 100, "a.example", &sent, err, sizeof err), 0);
	assert_int_equal(sent, 0);

	/* the due pairs of [100, 101]: 101/a.example is sent, so 100/a and 101/b are left */
	int capped = -1;
	memset(&s, 0, sizeof s);
	assert_int_equal(
	    spool_tlsrpt_due(dir, 100, 101, 10, on_row, on_fail, &s, &capped, err, sizeof err), 0);
	assert_int_equal(capped, 0);
	assert_int_equal(s.rows, 2);
	assert_int_equal(s.ok, 3 + 4);
	assert_int_equal(s.fails, 2);
	/* a cap of one: the oldest due pair, and capped says more are due */
	memset(&s, 0, sizeof s);
	assert_int_equal(
	    spool_tlsrpt_due(dir, 100, 101, 1, on_row, on_fail, &s, &capped, err, sizeof err), 0);
	assert_int_equal(capped, 1);
	assert_int_equal(s.rows, 1);
	assert_string_equal(s.last_domain, "a.example");
	/* once 100/a is marked, the cap of one takes 101/b: sent pairs never use it up */
	assert_int_equal(
	    spool_tlsrpt_mark(sp, 100, "a.example", "", "id0", 5, "no policy", err, sizeof err), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(
	    spool_tlsrpt_due(dir, 100, 101, 1, on_row, on_fail, &s, &capped, err, sizeof err), 0);
	assert_int_equal(capped, 0);
	assert_int_equal(s.rows, 1);
	assert_string_equal(s.last_domain, "b.example");
	spool_close(sp);
	tu_rmtree(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt_table), cmocka_unit_test(test_txt_limits),
	    cmocka_unit_test(test_json),      cmocka_unit_test(test_json_escapes),
	    cmocka_unit_test(test_json_utf8), cmocka_unit_test(test_gzip_round_trip),
	    cmocka_unit_test(test_mime),      cmocka_unit_test(test_spool_list_and_mark),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
