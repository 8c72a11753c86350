/*
 * Unit tests for mta/shared/sts (RFC 8461): the _mta-sts TXT record (3.1),
 * the policy file (3.2, 3.3 size bound) and the MX pattern match (4.1).
 * Table-driven; each table reports every failing row, then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/shared/sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct txt_case {
	const char *label;
	const char *recs[3]; /* NULL-terminated */
	enum sts_txt_status want;
	const char *id;
};

static const struct txt_case txt_cases[] = {
    {"plain", {"v=STSv1; id=20160831085700Z", NULL}, STS_TXT_OK, "20160831085700Z"},
    {"no space", {"v=STSv1;id=abc", NULL}, STS_TXT_OK, "abc"},
    {"trailing delim", {"v=STSv1; id=abc;", NULL}, STS_TXT_OK, "abc"},
    {"wsp around delim", {"v=STSv1 ;\tid=abc ; ", NULL}, STS_TXT_OK, "abc"},
    {"extension ignored", {"v=STSv1; ext-1.x=foo; id=A1", NULL}, STS_TXT_OK, "A1"},
    {"others ignored", {"v=spf1 -all", "v=STSv1; id=1", "hello"}, STS_TXT_OK, "1"},
    {"32 chars",
     {"v=STSv1; id=abcdefghijabcdefghijabcdefghij12", NULL},
     STS_TXT_OK,
     "abcdefghijabcdefghijabcdefghij12"},
    {"none", {"v=spf1 -all", NULL}, STS_TXT_NONE, ""},
    {"no records", {NULL}, STS_TXT_NONE, ""},
    {"other version", {"v=STSv2; id=1", NULL}, STS_TXT_NONE, ""},
    {"prefix only", {"v=STSv1x; id=1", NULL}, STS_TXT_NONE, ""},
    {"two records", {"v=STSv1; id=1", "v=STSv1; id=2"}, STS_TXT_INVALID, ""},
    {"two identical", {"v=STSv1; id=1", "v=STSv1; id=1"}, STS_TXT_INVALID, ""},
    {"33 chars", {"v=STSv1; id=abcdefghijabcdefghijabcdefghij123", NULL}, STS_TXT_INVALID, ""},
    {"id not alnum", {"v=STSv1; id=ab-c", NULL}, STS_TXT_INVALID, ""},
    {"empty id", {"v=STSv1; id=", NULL}, STS_TXT_INVALID, ""},
    {"no id", {"v=STSv1; foo=bar", NULL}, STS_TXT_INVALID, ""},
    {"no fields", {"v=STSv1", NULL}, STS_TXT_INVALID, ""},
    {"id twice", {"v=STSv1; id=1; id=2", NULL}, STS_TXT_INVALID, ""},
    {"no delimiter", {"v=STSv1 id=1", NULL}, STS_TXT_INVALID, ""},
    {"uppercase key", {"v=STSv1; ID=1", NULL}, STS_TXT_INVALID, ""},
};

static void
txt_table(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof txt_cases / sizeof txt_cases[0]; i++) {
		const struct txt_case *c = &txt_cases[i];
		struct sts_txt r[3];
		size_t n = 0;
		char id[STS_ID_MAX + 1], err[128] = "";
		enum sts_txt_status got;

		for (; n < 3 && c->recs[n]; n++)
			r[n] = (struct sts_txt){c->recs[n], strlen(c->recs[n])};
		got = sts_txt_parse(r, n, id, err, sizeof err);
		if (got != c->want || strcmp(id, c->id) != 0 ||
		    (got == STS_TXT_INVALID && err[0] == '\0')) {
			fprintf(stderr, "txt %s: got %d id '%s' err '%s'\n", c->label, got, id,
			        err);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* A NUL inside the record is not a valid value character. */
static void
txt_nul(void **state)
{
	struct sts_txt r = {"v=STSv1; id=a\0b", 15};
	char id[STS_ID_MAX + 1];

	(void)state;
	assert_int_equal(sts_txt_parse(&r, 1, id, NULL, 0), STS_TXT_INVALID);
}

struct pol_case {
	const char *label;
	const char *text;
	int want; /* 0 / -1 */
	enum sts_mode mode;
	long max_age;
	const char *mx; /* patterns joined by ',' or, with want -1, the error text */
};

static const struct pol_case pol_cases[] = {
    {"rfc example",
     "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
     "mx: backupmx.example.com\nmax_age: 604800\n",
     0, STS_MODE_ENFORCE, 604800, "mail.example.com,*.example.net,backupmx.example.com"},
    {"crlf, no final term",
     "version: STSv1\r\nmode: testing\r\nmx: MX.Example.COM.\r\nmax_age: 86400", 0,
     STS_MODE_TESTING, 86400, "mx.example.com"},
    {"no wsp, trailing wsp", "version:STSv1 \nmode:none\t\nmax_age:0\n", 0, STS_MODE_NONE, 0, ""},
    {"unknown keys ignored",
     "version: STSv1\nfoo_bar: anything at all\nmode: enforce\nmx: a.b\n"
     "max_age: 31557600\n",
     0, STS_MODE_ENFORCE, 31557600, "a.b"},
    {"first repeat wins",
     "version: STSv1\nmode: testing\nmode: enforce\nmx: a.b\nmax_age: 5\n"
     "max_age: 7\n",
     0, STS_MODE_TESTING, 5, "a.b"},
    {"blank lines", "\nversion: STSv1\n\nmode: none\nmax_age: 1\n\n", 0, STS_MODE_NONE, 1, ""},
    {"bad version", "version: STSv2\nmode: none\nmax_age: 1\n", -1, 0, 0,
     "line 1: version is not STSv1"},
    {"version case", "version: stsv1\nmode: none\nmax_age: 1\n", -1, 0, 0,
     "line 1: version is not STSv1"},
    {"bad mode", "version: STSv1\nmode: Enforce\nmax_age: 1\n", -1, 0, 0,
     "line 2: mode is not enforce, testing or none"},
    {"max_age too big", "version: STSv1\nmode: none\nmax_age: 31557601\n", -1, 0, 0,
     "line 3: max_age above 31557600"},
    {"max_age 11 digits", "version: STSv1\nmode: none\nmax_age: 00000000001\n", -1, 0, 0,
     "line 3: max_age is not 1 to 10 digits"},
    {"max_age sign", "version: STSv1\nmode: none\nmax_age: -1\n", -1, 0, 0,
     "line 3: max_age is not 1 to 10 digits"},
    {"no colon", "version: STSv1\nmode enforce\n", -1, 0, 0, "line 2: no ':' after the field name"},
    {"no version", "mode: none\nmax_age: 1\n", -1, 0, 0, "no version field"},
    {"no mode", "version: STSv1\nmax_age: 1\n", -1, 0, 0, "no mode field"},
    {"no max_age", "version: STSv1\nmode: none\n", -1, 0, 0, "no max_age field"},
    {"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", -1, 0, 0,
     "no mx field (required unless mode is none)"},
    {"wildcard inside", "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n", -1, 0, 0,
     "line 3: mx is not a host name or *.host name"},
    {"bare wildcard", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", -1, 0, 0,
     "line 3: mx is not a host name or *.host name"},
    {"empty label", "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n", -1, 0, 0,
     "line 3: mx is not a host name or *.host name"},
    {"html", "<html><body>hi</body></html>\n", -1, 0, 0, "line 1: no ':' after the field name"},
    {"bad key", "version: STSv1\nfoo bar: x\n", -1, 0, 0, "line 2: malformed field name"},
};

static void
join_mx(const struct sts_policy *p, char *out, size_t outlen)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->nmx && off < outlen; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? "," : "", p->mx[i]);
}

static void
policy_table(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof pol_cases / sizeof pol_cases[0]; i++) {
		const struct pol_case *c = &pol_cases[i];
		struct sts_policy p;
		char err[128] = "", mx[256];
		int got = sts_policy_parse(c->text, strlen(c->text), &p, err, sizeof err);

		join_mx(&p, mx, sizeof mx);
		if (got != c->want ||
		    (got == 0 &&
		     (p.mode != c->mode || p.max_age != c->max_age || strcmp(mx, c->mx))) ||
		    (got != 0 && (strcmp(err, c->mx) != 0 || p.nmx != 0))) {
			fprintf(stderr, "policy %s: got %d mode %d max_age %ld mx '%s' err '%s'\n",
			        c->label, got, p.mode, p.max_age, mx, err);
			bad++;
		}
		sts_policy_free(&p);
	}
	assert_int_equal(bad, 0);
}

/* 64 KiB is the limit (RFC 8461 3.3 lets senders bound it); a NUL is a control byte. */
static void
policy_limits(void **state)
{
	const char *head = "version: STSv1\nmode: none\nmax_age: 1\n";
	size_t n = STS_POLICY_MAX;
	char *buf = malloc(n + 1), err[128];
	struct sts_policy p;

	(void)state;
	memset(buf, '\n', n + 1);
	memcpy(buf, head, strlen(head));
	assert_int_equal(sts_policy_parse(buf, n, &p, err, sizeof err), 0);
	sts_policy_free(&p);
	assert_int_equal(sts_policy_parse(buf, n + 1, &p, err, sizeof err), -1);
	assert_string_equal(err, "policy larger than 65536 bytes");
	free(buf);
	assert_int_equal(sts_policy_parse("version: STS\0v1\n", 16, &p, err, sizeof err), -1);
	assert_string_equal(err, "line 1: control character");
}

/* More than STS_MX_MAX mx lines make the policy invalid rather than silently cut. */
static void
policy_many_mx(void **state)
{
	char *buf = malloc(64 * 1024), err[128];
	size_t off = 0;
	struct sts_policy p;

	(void)state;
	off += (size_t)sprintf(buf, "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i < STS_MX_MAX; i++)
		off += (size_t)sprintf(buf + off, "mx: m%d.example\n", i);
	assert_int_equal(sts_policy_parse(buf, off, &p, err, sizeof err), 0);
	assert_int_equal(p.nmx, STS_MX_MAX);
	sts_policy_free(&p);
	off += (size_t)sprintf(buf + off, "mx: one-more.example\n");
	assert_int_equal(sts_policy_parse(buf, off, &p, err, sizeof err), -1);
	assert_string_equal(err, "line 132: more than 128 mx lines");
	free(buf);
}

struct mx_case {
	const char *pattern, *host;
	bool want;
};

static const struct mx_case mx_cases[] = {
    {"mail.example.com", "mail.example.com", true},
    {"mail.example.com", "MAIL.Example.Com.", true},
    {"mail.example.com.", "mail.example.com", true},
    {"mail.example.com", "mail.example.co", false},
    {"mail.example.com", "xmail.example.com", false},
    {"*.example.com", "mx1.example.com", true},
    {"*.Example.COM", "MX1.example.com.", true},
    {"*.example.com", "example.com", false},
    {"*.example.com", "a.b.example.com", false},
    {"*.example.com", ".example.com", false},
    {"*.example.com", "mx1.example.net", false},
    {"*.example.com", "mx1example.com", false},
    {"*.com", "example.com", true},
    {"*", "example", false},
    {"", "", false},
    {"example.com", "", false},
    {"mx.*.com", "mx.example.com", false},
};

static void
mx_table(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof mx_cases / sizeof mx_cases[0]; i++) {
		const struct mx_case *c = &mx_cases[i];
		if (sts_mx_match(c->pattern, c->host) != c->want) {
			fprintf(stderr, "mx '%s' vs '%s': want %d\n", c->pattern, c->host, c->want);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(txt_table),      cmocka_unit_test(txt_nul),
	    cmocka_unit_test(policy_table),   cmocka_unit_test(policy_limits),
	    cmocka_unit_test(policy_many_mx), cmocka_unit_test(mx_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
