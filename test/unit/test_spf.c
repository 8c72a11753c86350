/*
 * Unit tests for tools/spf (SPF merge, lint, lookup counting, validation,
 * zone lines) and tools/dmarc (record parsing, the starter record, rua=).
 * Every record spf_merge produces is also compiled with libspf2 directly,
 * independently of spf_validate. Each table reports every failing row,
 * then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tools/dmarc.h"
#include "tools/spf.h"

#include <netinet/in.h> /* before spf2/spf.h, which uses struct in_addr */
#include <spf2/spf.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IP4 "203.0.113.5"
#define IP6 "2001:db8::5"

/* 0 when libspf2 compiles record without errors. */
static int
libspf2_compiles(const char *record, char *why, size_t whylen)
{
	SPF_server_t *srv = SPF_server_new(SPF_DNS_ZONE, 0);
	SPF_response_t *resp = SPF_response_new(NULL);
	SPF_record_t *rec = NULL;
	SPF_errcode_t e;

	assert_non_null(srv);
	assert_non_null(resp);
	e = SPF_record_compile(srv, resp, &rec, record);
	snprintf(why, whylen, "%s", SPF_strerror(e));
	if (rec != NULL)
		SPF_record_free(rec);
	SPF_response_free(resp);
	SPF_server_free(srv);
	return e == SPF_E_SUCCESS ? 0 : -1;
}

/* Parse a space-separated list of addresses into ips; returns how many. */
static size_t
parse_ips(const char *list, struct spf_ip *ips, size_t max)
{
	char buf[256], *save = NULL, *tok;
	size_t n = 0;

	snprintf(buf, sizeof buf, "%s", list);
	for (tok = strtok_r(buf, " ", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, " ", &save)) {
		assert_int_equal(spf_ip_parse(tok, 0, &ips[n]), 0);
		n++;
	}
	return n;
}

/* ---- spf_merge ---- */

struct merge_case {
	const char *label;
	const char *current; /* NULL: the domain publishes none */
	const char *ips;
	int rc;
	const char *want; /* record on 0; a word of the error on -1 */
	unsigned added, covered, warnings;
};

static const struct merge_case merge_cases[] = {
    {"no record", NULL, IP4 " " IP6, 0, "v=spf1 ip4:" IP4 " ip6:" IP6 " ~all", 2, 0, 0},
    {"empty current is none", "  ", IP4, 0, "v=spf1 ip4:" IP4 " ~all", 1, 0, 0},
    {"outlook include, -all", "v=spf1 include:spf.protection.outlook.com -all", IP4 " " IP6, 0,
     "v=spf1 include:spf.protection.outlook.com ip4:" IP4 " ip6:" IP6 " -all", 2, 0, 0},
    {"~all", "v=spf1 mx ~all", IP4, 0, "v=spf1 mx ip4:" IP4 " ~all", 1, 0, 0},
    {"?all", "v=spf1 a ?all", IP4, 0, "v=spf1 a ip4:" IP4 " ?all", 1, 0, 0},
    {"+all kept (lint warns)", "v=spf1 a +all", IP4, 0, "v=spf1 a ip4:" IP4 " +all", 1, 0, 0},
    {"bare all kept", "v=spf1 all", IP4, 0, "v=spf1 ip4:" IP4 " all", 1, 0, 0},
    /* RFC 7208 6.1: redirect applies when nothing matched, so mechanisms go first */
    {"redirect only", "v=spf1 redirect=_spf.example.com", IP4 " " IP6, 0,
     "v=spf1 ip4:" IP4 " ip6:" IP6 " redirect=_spf.example.com", 2, 0, 0},
    {"mechanism and redirect", "v=spf1 mx redirect=_spf.example.com", IP4, 0,
     "v=spf1 mx ip4:" IP4 " redirect=_spf.example.com", 1, 0, 0},
    {"exp after all stays", "v=spf1 mx -all exp=explain.example.com", IP4, 0,
     "v=spf1 mx ip4:" IP4 " -all exp=explain.example.com", 1, 0, 0},
    {"only a modifier", "v=spf1 exp=explain.example.com", IP4, 0,
     "v=spf1 ip4:" IP4 " exp=explain.example.com", 1, 0, 0},
    {"already has the IP", "v=spf1 ip4:" IP4 " -all", IP4, 0, "v=spf1 ip4:" IP4 " -all", 0, 1, 0},
    {"already has both", "v=spf1 ip4:" IP4 " ip6:" IP6 " include:x.example.com -all", IP4 " " IP6,
     0, "v=spf1 ip4:" IP4 " ip6:" IP6 " include:x.example.com -all", 0, 2, 0},
    {"+ip4 explicit qualifier", "v=spf1 +ip4:" IP4 " -all", IP4, 0, "v=spf1 +ip4:" IP4 " -all", 0,
     1, 0},
    {"ip4 /24 covers", "v=spf1 ip4:203.0.113.0/24 -all", IP4, 0, "v=spf1 ip4:203.0.113.0/24 -all",
     0, 1, 0},
    {"ip4 /30 does not cover .5", "v=spf1 ip4:203.0.113.0/30 -all", IP4, 0,
     "v=spf1 ip4:203.0.113.0/30 ip4:" IP4 " -all", 1, 0, 0},
    {"ip4 /29 covers .5", "v=spf1 ip4:203.0.113.0/29 -all", IP4, 0,
     "v=spf1 ip4:203.0.113.0/29 -all", 0, 1, 0},
    {"ip6 /32 covers", "v=spf1 ip6:2001:db8::/32 -all", IP4 " " IP6, 0,
     "v=spf1 ip6:2001:db8::/32 ip4:" IP4 " -all", 1, 1, 0},
    {"ip6 in another spelling", "v=spf1 ip6:2001:DB8:0:0::5 -all", IP6, 0,
     "v=spf1 ip6:2001:DB8:0:0::5 -all", 0, 1, 0},
    {"ip4 term does not cover ip6", "v=spf1 ip4:203.0.113.0/24 -all", IP6, 0,
     "v=spf1 ip4:203.0.113.0/24 ip6:" IP6 " -all", 1, 0, 0},
    /* D6: the relay goes before the -ip4 that would fail it (first match, RFC 7208 4.6.2) */
    {"-ip4 covering the relay: relay first", "v=spf1 -ip4:" IP4 " ~all", IP4, 0,
     "v=spf1 ip4:" IP4 " -ip4:" IP4 " ~all", 1, 0, 0},
    {"?include before pass terms: relay before it", "v=spf1 a ?include:x.example mx -all", IP4,
     0, "v=spf1 a ip4:" IP4 " ?include:x.example mx -all", 1, 0, 0},
    {"ip after all does not count", "v=spf1 -all ip4:" IP4, IP4, 0,
     "v=spf1 ip4:" IP4 " -all ip4:" IP4, 1, 0, 0},
    {"ptr kept (lint warns)", "v=spf1 ptr -all", IP4, 0, "v=spf1 ptr ip4:" IP4 " -all", 1, 0, 0},
    {"missing all", "v=spf1 mx", IP4, 0, "v=spf1 mx ip4:" IP4, 1, 0, 0},
    {"mixed case version", "V=SPF1 MX -ALL", IP4, 0, "v=spf1 MX ip4:" IP4 " -ALL", 1, 0, 0},
    {"extra spaces", "  v=spf1   mx    include:_spf.example.net   ~all  ", IP4, 0,
     "v=spf1 mx include:_spf.example.net ip4:" IP4 " ~all", 1, 0, 0},
    {"tabs", "v=spf1\tmx\t-all", IP4, 0, "v=spf1 mx ip4:" IP4 " -all", 1, 0, 0},
    {"same IP twice", NULL, IP4 " " IP4, 0, "v=spf1 ip4:" IP4 " ~all", 1, 0, 0},
    {"version only", "v=spf1", IP4, 0, "v=spf1 ip4:" IP4, 1, 0, 0},
    {"not SPF: spf2.0", "v=spf2.0/pra mx -all", IP4, -1, "v=spf1", 0, 0, 0},
    {"not SPF: no v=", "spf1 -all", IP4, -1, "v=spf1", 0, 0, 0},
    {"not SPF: glued", "v=spf1-all", IP4, -1, "v=spf1", 0, 0, 0},
    {"unknown mechanism", "v=spf1 foo:bar -all", IP4, -1, "foo:bar", 0, 0, 0},
    {"qualified modifier", "v=spf1 -redirect=x.example.com", IP4, -1, "redirect", 0, 0, 0},
};

static void
test_merge(void **state)
{
	size_t n = sizeof merge_cases / sizeof merge_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct merge_case *mc = &merge_cases[i];
		struct spf_ip ips[4];
		size_t nips = parse_ips(mc->ips, ips, 4);
		struct spf_merge m;
		char err[256] = "", why[256];
		int rc = spf_merge(mc->current, ips, nips, &m, err, sizeof err);

		if (rc != mc->rc) {
			print_error("merge \"%s\": rc %d (%s), want %d\n", mc->label, rc, err,
			            mc->rc);
			bad++;
		} else if (rc != 0) {
			if (strstr(err, mc->want) == NULL) {
				print_error("merge \"%s\": error \"%s\" lacks \"%s\"\n", mc->label,
				            err, mc->want);
				bad++;
			}
		} else if (strcmp(m.record, mc->want) != 0 || m.added != mc->added ||
		           m.covered != mc->covered || m.warnings != mc->warnings) {
			print_error(
			    "merge \"%s\":\n  got  \"%s\" added %u covered %u warnings %#x\n"
			    "  want \"%s\" added %u covered %u warnings %#x\n",
			    mc->label, m.record, m.added, m.covered, m.warnings, mc->want,
			    mc->added, mc->covered, mc->warnings);
			bad++;
		} else if (libspf2_compiles(m.record, why, sizeof why) != 0 ||
		           spf_validate(m.record, why, sizeof why) != 0) {
			print_error("merge \"%s\": \"%s\" does not compile: %s\n", mc->label,
			            m.record, why);
			bad++;
		}
		if (rc == 0)
			spf_merge_free(&m);
	}
	if (bad)
		fail_msg("%d of %zu spf_merge rows failed", bad, n);
}

static void
test_merge_added_ips(void **state)
{
	struct spf_ip ips[3];
	struct spf_merge m;
	size_t n = parse_ips("203.0.113.5 2001:db8::5 203.0.113.6", ips, 3);

	(void)state;
	assert_int_equal(spf_merge("v=spf1 ip6:2001:db8::/64 -all", ips, n, &m, NULL, 0), 0);
	assert_int_equal(m.added_ips, 0x5u); /* the two IPv4 addresses */
	assert_string_equal(m.record,
	                    "v=spf1 ip6:2001:db8::/64 ip4:203.0.113.5 ip4:203.0.113.6 -all");
	spf_merge_free(&m);
}

/* ---- spf_lint ---- */

struct lint_case {
	const char *label;
	const char *record;
	unsigned warnings;
	int lookups;
};

#define INCLUDES11                                                                                 \
	"include:a.example include:b.example include:c.example include:d.example "                 \
	"include:e.example include:f.example include:g.example include:h.example "                 \
	"include:i.example include:j.example include:k.example"

static const struct lint_case lint_cases[] = {
    {"-all", "v=spf1 -all", 0, 0},
    {"ip terms only", "v=spf1 ip4:" IP4 " ip6:" IP6 " -all", 0, 0},
    {"+all", "v=spf1 mx +all", SPF_W_PLUS_ALL, 1},
    {"bare all is +all", "v=spf1 all", SPF_W_PLUS_ALL, 0},
    {"~all", "v=spf1 mx ~all", 0, 1},
    {"?all", "v=spf1 ?all", 0, 0},
    {"ptr", "v=spf1 ptr ~all", SPF_W_PTR, 1},
    {"ptr with domain", "v=spf1 ptr:example.com -all", SPF_W_PTR, 1},
    {"missing all", "v=spf1 mx", SPF_W_NO_ALL, 1},
    {"version only", "v=spf1", SPF_W_NO_ALL, 0},
    {"redirect counts", "v=spf1 redirect=_spf.example.com", 0, 1},
    {"redirect ignored with all", "v=spf1 mx -all redirect=_spf.example.com",
     SPF_W_REDIRECT_IGNORED, 1},
    {"terms after all", "v=spf1 -all mx", SPF_W_AFTER_ALL, 1},
    {"modifier after all is fine", "v=spf1 -all exp=e.example.com", 0, 0},
    {"every lookup kind", "v=spf1 a mx ptr exists:%{i}.x.example.com include:y.example.com -all",
     SPF_W_PTR, 5},
    {"a and mx with cidr", "v=spf1 a/24 mx:example.com/28 -all", 0, 2},
    {"ten includes",
     "v=spf1 include:a.example include:b.example include:c.example "
     "include:d.example include:e.example include:f.example include:g.example "
     "include:h.example include:i.example include:j.example -all",
     0, 10},
    {"eleven includes", "v=spf1 " INCLUDES11 " -all", SPF_W_LOOKUPS, 11},
    {"mixed case terms", "V=SPF1 MX PTR -ALL", SPF_W_PTR, 2},
};

static void
test_lint(void **state)
{
	size_t n = sizeof lint_cases / sizeof lint_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct lint_case *lc = &lint_cases[i];
		struct spf_lint l;
		char err[256] = "";

		if (spf_lint(lc->record, &l, err, sizeof err) != 0) {
			print_error("lint \"%s\": failed: %s\n", lc->label, err);
			bad++;
		} else if (l.warnings != lc->warnings || l.lookups != lc->lookups ||
		           l.length != strlen(lc->record)) {
			print_error("lint \"%s\": warnings %#x lookups %d, want %#x and %d\n",
			            lc->label, l.warnings, l.lookups, lc->warnings, lc->lookups);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu spf_lint rows failed", bad, n);
}

/* "v=spf1 ip4:... -all" of exactly len bytes. */
static char *
record_of_length(size_t len)
{
	char *s = malloc(len + 32);
	size_t pos;
	unsigned i = 1;

	assert_non_null(s);
	pos = (size_t)sprintf(s, "v=spf1");
	while (pos + 27 < len)
		pos += (size_t)sprintf(s + pos, " ip4:198.51.100.%u", i++ % 250);
	pos += (size_t)sprintf(s + pos, " -all");
	/* pad with a harmless modifier to the exact length */
	if (pos < len) {
		size_t pad = len - pos;

		assert_true(pad >= 4);
		s[pos++] = ' ';
		s[pos++] = 'x';
		s[pos++] = '=';
		memset(s + pos, 'y', pad - 3);
		pos += pad - 3;
		s[pos] = '\0';
	}
	assert_int_equal(strlen(s), len);
	return s;
}

static void
test_lint_lengths(void **state)
{
	static const struct {
		size_t len;
		unsigned warnings;
	} rows[] = {
	    {200, 0},
	    {255, 0},
	    {256, SPF_W_SPLIT},
	    {450, SPF_W_SPLIT},
	    {451, SPF_W_SPLIT | SPF_W_UDP},
	    {900, SPF_W_SPLIT | SPF_W_UDP},
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *rec = record_of_length(rows[i].len), why[256];
		struct spf_lint l;

		assert_int_equal(spf_lint(rec, &l, NULL, 0), 0);
		if (l.warnings != rows[i].warnings || l.length != rows[i].len) {
			print_error("length %zu: warnings %#x, want %#x\n", rows[i].len, l.warnings,
			            rows[i].warnings);
			bad++;
		}
		if (libspf2_compiles(rec, why, sizeof why) != 0) {
			print_error("length %zu: libspf2: %s\n", rows[i].len, why);
			bad++;
		}
		free(rec);
	}
	if (bad)
		fail_msg("%d length rows failed", bad);
}

static void
test_lint_not_spf(void **state)
{
	struct spf_lint l;
	char err[128];

	(void)state;
	assert_int_equal(spf_lint("v=DMARC1; p=none", &l, err, sizeof err), -1);
	assert_non_null(strstr(err, "v=spf1"));
	assert_int_equal(spf_lint("", &l, NULL, 0), -1);
}

static void
test_warning_texts(void **state)
{
	(void)state;
	for (unsigned b = 0; b < SPF_W_COUNT; b++)
		assert_true(strlen(spf_warning_text((enum spf_warning)(1u << b))) > 20);
	assert_string_equal(spf_warning_text((enum spf_warning)(1u << SPF_W_COUNT)), "");
}

/* ---- spf_count_lookups ---- */

struct zone_rec {
	const char *domain;
	const char *record; /* NULL: the domain publishes none */
};

static const struct zone_rec zone[] = {
    {"a.example", "v=spf1 include:b.example mx -all"},
    {"b.example", "v=spf1 a a a -all"},
    {"five.example", "v=spf1 mx mx mx mx mx -all"},
    {"four.example", "v=spf1 a a a a -all"},
    {"loop.example", "v=spf1 include:loop2.example -all"},
    {"loop2.example", "v=spf1 include:loop.example -all"},
    {"redir.example", "v=spf1 mx redirect=b.example"},
    {"txt.example", "some verification token"},
    {"none.example", NULL},
};

static int fetches;

static int
fake_fetch(void *ctx, const char *domain, char **record, char *why, size_t whylen)
{
	(void)ctx;
	fetches++;
	for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
		if (strcmp(zone[i].domain, domain) != 0)
			continue;
		if (zone[i].record == NULL)
			break;
		*record = strdup(zone[i].record);
		return *record != NULL ? 0 : -1;
	}
	snprintf(why, whylen, "publishes no SPF record");
	return -1;
}

struct count_case {
	const char *label;
	const char *record;
	int follow;
	int total, not_followed;
	const char *problem; /* a word of the first problem, or "" */
};

static const struct count_case count_cases[] = {
    {"top level only", "v=spf1 include:a.example mx -all", 0, 2, 0, ""},
    {"nested includes", "v=spf1 include:a.example -all", 1, 6, 0, ""},
    {"eleven through includes", "v=spf1 include:five.example include:four.example -all", 1, 11, 0,
     ""},
    {"trailing dot and case", "v=spf1 include:A.Example. -all", 1, 6, 0, ""},
    {"missing include target", "v=spf1 include:none.example mx -all", 1, 2, 1, "none.example"},
    {"include of a non-SPF TXT", "v=spf1 include:txt.example -all", 1, 1, 1, "not an SPF"},
    {"loop", "v=spf1 include:loop.example -all", 1, 3, 1, "loop"},
    {"macro target", "v=spf1 include:%{d}.spf.example -all", 1, 1, 1, "macros"},
    {"redirect followed", "v=spf1 redirect=a.example", 1, 6, 0, ""},
    {"redirect ignored with all", "v=spf1 -all redirect=a.example", 1, 0, 0, ""},
    {"redirect inside include", "v=spf1 include:redir.example -all", 1, 6, 0, ""},
    {"ip terms cost nothing", "v=spf1 ip4:" IP4 " ip6:" IP6 " -all", 1, 0, 0, ""},
};

static void
test_count(void **state)
{
	size_t n = sizeof count_cases / sizeof count_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct count_case *cc = &count_cases[i];
		struct spf_count c;

		fetches = 0;
		assert_int_equal(
		    spf_count_lookups(cc->record, cc->follow ? fake_fetch : NULL, NULL, &c), 0);
		if (c.total != cc->total || c.not_followed != cc->not_followed ||
		    strstr(c.problem, cc->problem) == NULL || (!cc->follow && fetches != 0)) {
			print_error(
			    "count \"%s\": total %d not_followed %d problem \"%s\", want %d %d "
			    "\"%s\"\n",
			    cc->label, c.total, c.not_followed, c.problem, cc->total,
			    cc->not_followed, cc->problem);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu spf_count_lookups rows failed", bad, n);
	assert_int_equal(spf_count_lookups("not spf", NULL, NULL, &(struct spf_count){0}), -1);
}

/* ---- spf_validate ---- */

struct validate_case {
	const char *record;
	int rc;
	const char *word; /* on -1 */
};

static const struct validate_case validate_cases[] = {
    {"v=spf1 -all", 0, NULL},
    {"v=spf1 include:spf.protection.outlook.com ip4:" IP4 " ip6:" IP6 " -all", 0, NULL},
    {"V=SPF1 MX -ALL", 0, NULL},
    {"v=spf1 redirect=_spf.example.com", 0, NULL},
    {"v=spf1 a:%{i}.example.com/24 -all", 0, NULL},
    {"v=spf1 ip4:1.2.3.400 -all", -1, "IPv4"},
    {"v=spf1 ip4:1.2.3.4/33 -all", -1, "CIDR"},
    {"v=spf1 ip6:zz -all", -1, "IPv6"},
    {"v=spf1 foo:bar -all", -1, "nknown"},
    {"v=spf1 include -all", -1, "requires"},
    {"v=spf1 redirect=a.example.com redirect=b.example.com", -1, "redirect="},
    {"v=spf1 exp=a.example.com exp=b.example.com -all", -1, "exp="},
    {"spf1 -all", -1, "v=spf1"},
    {"v=spf10 -all", -1, "v=spf1"},
};

static void
test_validate(void **state)
{
	size_t n = sizeof validate_cases / sizeof validate_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct validate_case *vc = &validate_cases[i];
		char why[256] = "";
		int rc = spf_validate(vc->record, why, sizeof why);

		if (rc != vc->rc || (rc != 0 && strstr(why, vc->word) == NULL)) {
			print_error("validate \"%s\": rc %d \"%s\", want %d \"%s\"\n", vc->record,
			            rc, why, vc->rc, vc->word ? vc->word : "");
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu spf_validate rows failed", bad, n);
}

/* ---- addresses, is_record, zone lines ---- */

static void
test_ip_parse(void **state)
{
	struct spf_ip ip;
	char buf[64];

	(void)state;
	assert_int_equal(spf_ip_parse(IP4, 0, &ip), 0);
	assert_int_equal(ip.family, AF_INET);
	spf_ip_mechanism(&ip, buf, sizeof buf);
	assert_string_equal(buf, "ip4:" IP4);
	assert_int_equal(spf_ip_parse("2001:DB8:0:0:0:0:0:5", 0, &ip), 0);
	spf_ip_mechanism(&ip, buf, sizeof buf);
	assert_string_equal(buf, "ip6:" IP6);
	assert_int_equal(spf_ip_parse(IP4, AF_INET6, &ip), -1);
	assert_int_equal(spf_ip_parse(IP6, AF_INET, &ip), -1);
	assert_int_equal(spf_ip_parse("203.0.113.500", 0, &ip), -1);
	assert_int_equal(spf_ip_parse("203.0.113.0/24", 0, &ip), -1);
	assert_int_equal(spf_ip_parse("", 0, &ip), -1);
	assert_int_equal(spf_ip_parse(NULL, 0, &ip), -1);
}

static void
test_is_record(void **state)
{
	(void)state;
	assert_true(spf_is_record("v=spf1"));
	assert_true(spf_is_record("v=spf1 -all"));
	assert_true(spf_is_record("V=SpF1 -all"));
	assert_true(spf_is_record("  v=spf1\t-all"));
	assert_false(spf_is_record("v=spf10 -all"));
	assert_false(spf_is_record("v=spf1-all"));
	assert_false(spf_is_record("v=spf"));
	assert_false(spf_is_record("google-site-verification=abc"));
	assert_false(spf_is_record(""));
	assert_false(spf_is_record(NULL));
}

static void
test_zone_line(void **state)
{
	char *out = NULL, *rec = record_of_length(600), *p;
	size_t chunks = 0, joined_len = 0;

	(void)state;
	assert_int_equal(spf_zone_line("example.com", "v=spf1 -all", &out), 0);
	assert_string_equal(out, "example.com. IN TXT \"v=spf1 -all\"");
	free(out);
	assert_int_equal(spf_zone_line("example.com.", "v=spf1 exp=a\"b -all", &out), 0);
	assert_string_equal(out, "example.com. IN TXT \"v=spf1 exp=a\\\"b -all\"");
	free(out);
	/* 600 bytes: strings of 255, 255 and 90, joined they give the record back */
	assert_int_equal(spf_zone_line("example.com", rec, &out), 0);
	p = strchr(out, '"');
	while (p != NULL) {
		char *end = strchr(p + 1, '"');

		assert_non_null(end);
		assert_true(end - p - 1 <= SPF_STRING_MAX);
		assert_memory_equal(p + 1, rec + joined_len, (size_t)(end - p - 1));
		joined_len += (size_t)(end - p - 1);
		chunks++;
		p = strchr(end + 1, '"');
	}
	assert_int_equal(chunks, 3);
	assert_int_equal(joined_len, 600);
	free(out);
	free(rec);
	assert_int_equal(spf_zone_line("", "v=spf1 -all", &out), -1);
	assert_int_equal(spf_zone_line("example.com", "", &out), -1);
}

/* ---- the OpenSPF RFC 7208 suite's records ---- */

/*
 * The value of a "- SPF: ..." or "- TXT: ..." line of the suite's YAML when
 * it is one plain or quoted string without escapes; NULL otherwise.
 */
static char *
suite_value(char *line)
{
	char *p = strstr(line, "- SPF:"), *end;

	if (p == NULL)
		p = strstr(line, "- TXT:");
	if (p == NULL)
		return NULL;
	p += 6;
	while (*p == ' ')
		p++;
	p[strcspn(p, "\r\n")] = '\0';
	if (*p == '"' || *p == '\'') {
		end = strrchr(p + 1, *p);
		if (end == NULL || strchr(p, '\\') != NULL)
			return NULL;
		*end = '\0';
		p++;
	} else if (*p == '[') {
		return NULL;
	}
	return p;
}

/* Every term of a, in order, is a term of b (b may have more). */
static int
terms_kept(const char *a, const char *b)
{
	char ta[1024], tb[1024], *sa, *sb, *x, *y;

	snprintf(ta, sizeof ta, "%s", a);
	snprintf(tb, sizeof tb, "%s", b);
	x = strtok_r(ta, " \t", &sa);
	y = strtok_r(tb, " \t", &sb);
	for (x = strtok_r(NULL, " \t", &sa); x != NULL; x = strtok_r(NULL, " \t", &sa)) {
		do
			y = strtok_r(NULL, " \t", &sb);
		while (y != NULL && strcmp(x, y) != 0);
		if (y == NULL)
			return 0;
	}
	return 1;
}

/*
 * Over every SPF record of the RFC 7208 test suite: lint and the lookup
 * counter agree, and merging never turns a record libspf2 compiles into
 * one it does not, nor drops or reorders a term.
 */
static void
test_suite_records(void **state)
{
	const char *path = MXRELAY_TESTDATA_DIR "/spf/rfc7208-tests.yml";
	char line[2048], why[256];
	struct spf_ip ips[2];
	FILE *f;
	int records = 0, merged = 0, bad = 0;

	(void)state;
	/* the suite lives in the checkout (test/data): missing is a failure, never a skip */
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("test fixture %s: %s (see test/data/README.md)", path, strerror(errno));
	parse_ips(IP4 " " IP6, ips, 2);
	while (fgets(line, sizeof line, f) != NULL) {
		char *v = suite_value(line);
		struct spf_lint l;
		struct spf_count c;
		struct spf_merge m;

		if (v == NULL || !spf_is_record(v))
			continue;
		records++;
		if (spf_lint(v, &l, why, sizeof why) != 0 ||
		    spf_count_lookups(v, NULL, NULL, &c) != 0 || c.total != l.lookups) {
			print_error("suite \"%s\": lint/count disagree (%d vs %d)\n", v, l.lookups,
				    c.total);
			bad++;
		}
		if (spf_merge(v, ips, 2, &m, why, sizeof why) != 0)
			continue; /* a term the merge refuses (unknown mechanism) */
		merged++;
		if (!terms_kept(v, m.record)) {
			print_error("suite \"%s\": merged \"%s\" lost a term\n", v, m.record);
			bad++;
		}
		if (libspf2_compiles(v, why, sizeof why) == 0 &&
		    libspf2_compiles(m.record, why, sizeof why) != 0) {
			print_error("suite \"%s\": merged \"%s\" does not compile: %s\n", v,
				    m.record, why);
			bad++;
		}
		spf_merge_free(&m);
	}
	fclose(f);
	print_message("%d suite records, %d merged\n", records, merged);
	assert_true(records > 100);
	if (bad)
		fail_msg("%d suite records failed", bad);
}

/* ---- DMARC ---- */

struct dmarc_case {
	const char *label;
	const char *txt;
	int rc;
	const char *want; /* on 0: "p sp adkim aspf pct rua"; on -1: a word of why */
};

static const struct dmarc_case dmarc_cases[] = {
    {"starter", "v=DMARC1; p=none; rua=mailto:dmarc@example.com; adkim=r; aspf=r; fo=1", 0,
     "none - r r 100 1"},
    {"minimal", "v=DMARC1; p=reject", 0, "reject - r r 100 0"},
    {"spaces and trailing ;", " v = DMARC1 ;p = quarantine ; pct=25 ; ", 0,
     "quarantine - r r 25 0"},
    {"strict, sp", "v=DMARC1; p=reject; sp=none; adkim=s; aspf=S", 0, "reject none s s 100 0"},
    {"policy case-insensitive", "v=DMARC1; p=Reject", 0, "reject - r r 100 0"},
    {"two rua and size", "v=DMARC1; p=none; rua=mailto:a@example.com!10m,mailto:b@example.net", 0,
     "none - r r 100 1"},
    {"unknown tag ignored", "v=DMARC1; p=none; xyz=1", 0, "none - r r 100 0"},
    {"fo list", "v=DMARC1; p=none; fo=0:1:d:s", 0, "none - r r 100 0"},
    {"v not first", "p=reject; v=DMARC1", -1, "v=DMARC1"},
    {"lowercase version", "v=dmarc1; p=none", -1, "v=DMARC1"},
    {"DMARC2", "v=DMARC2; p=none", -1, "v=DMARC1"},
    {"no p", "v=DMARC1; rua=mailto:d@example.com", -1, "p= is missing"},
    {"bad p", "v=DMARC1; p=maybe", -1, "p=maybe"},
    {"bad sp", "v=DMARC1; p=none; sp=all", -1, "sp=all"},
    /* RFC 7489 6.3: a bad tag other than v/p/sp is dropped (default), the record applies */
    {"bad adkim", "v=DMARC1; p=none; adkim=x", 0, "none - r r 100 0"},
    {"pct over 100", "v=DMARC1; p=none; pct=101", 0, "none - r r 100 0"},
    {"pct not a number", "v=DMARC1; p=quarantine; pct=ten", 0, "quarantine - r r 100 0"},
    {"bad fo", "v=DMARC1; p=none; fo=2", 0, "none - r r 100 0"},
    {"rua not a URI", "v=DMARC1; p=none; rua=dmarc@example.com", 0, "none - r r 100 0"},
    {"tag twice", "v=DMARC1; p=none; p=reject", 0, "reject - r r 100 0"},
    {"not a tag", "v=DMARC1; p=reject; hello", 0, "reject - r r 100 0"},
    {"empty", "", -1, "v=DMARC1"},
};

static void
test_dmarc_parse(void **state)
{
	size_t n = sizeof dmarc_cases / sizeof dmarc_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct dmarc_case *dc = &dmarc_cases[i];
		struct dmarc_record r;
		char why[256] = "", got[300];
		int rc = dmarc_parse(dc->txt, &r, why, sizeof why);

		if (rc == 0)
			snprintf(got, sizeof got, "%s %s %c %c %d %d", r.p, r.sp[0] ? r.sp : "-",
			         r.adkim, r.aspf, r.pct, r.rua);
		else
			snprintf(got, sizeof got, "%s", why);
		if (rc != dc->rc ||
		    (rc == 0 ? strcmp(got, dc->want) != 0 : strstr(got, dc->want) == NULL)) {
			print_error("dmarc \"%s\": rc %d \"%s\", want %d \"%s\"\n", dc->label, rc,
			            got, dc->rc, dc->want);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu dmarc_parse rows failed", bad, n);
}

static void
test_dmarc_starter(void **state)
{
	struct dmarc_record r;
	struct dmarc_rua rua;
	char *rec = NULL, err[256];

	(void)state;
	assert_int_equal(dmarc_starter("mailto:dmarc@example.com", &rec, err, sizeof err), 0);
	assert_string_equal(
	    rec, "v=DMARC1; p=none; rua=mailto:dmarc@example.com; adkim=r; aspf=r; fo=1");
	assert_int_equal(dmarc_parse(rec, &r, err, sizeof err), 0);
	free(rec);

	assert_int_equal(dmarc_rua_parse("mailto:a@Reports.Example.NET!5m,mailto:b@example.com",
	                                 &rua, err, sizeof err),
	                 0);
	assert_int_equal(rua.n, 2);
	assert_string_equal(rua.domain[0], "reports.example.net");
	assert_true(dmarc_rua_external("example.com", rua.domain[0]));
	assert_false(dmarc_rua_external("example.com", rua.domain[1]));
	assert_false(dmarc_rua_external("example.com", "reports.example.com"));
	assert_true(dmarc_rua_external("example.com", "badexample.com"));

	assert_int_equal(dmarc_starter("dmarc@example.com", &rec, err, sizeof err), -1);
	assert_non_null(strstr(err, "mailto:"));
	assert_null(rec);
	assert_int_equal(
	    dmarc_rua_parse("mailto:dmarc@example.com; p=reject", &rua, err, sizeof err), -1);
	assert_int_equal(dmarc_rua_parse("https://example.com/r", &rua, err, sizeof err), -1);
	assert_int_equal(dmarc_rua_parse("mailto:nobody", &rua, err, sizeof err), -1);
	assert_int_equal(dmarc_rua_parse("mailto:a@localhost", &rua, err, sizeof err), -1);
	assert_int_equal(dmarc_rua_parse("", &rua, err, sizeof err), -1);

	assert_true(dmarc_same_or_sub("a.example.com", "example.com"));
	assert_true(dmarc_same_or_sub("Example.com.", "example.COM"));
	assert_false(dmarc_same_or_sub("example.com", "a.example.com"));
	assert_false(dmarc_same_or_sub("xexample.com", "example.com"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_merge_added_ips),
	    cmocka_unit_test(test_lint),
	    cmocka_unit_test(test_lint_lengths),
	    cmocka_unit_test(test_lint_not_spf),
	    cmocka_unit_test(test_warning_texts),
	    cmocka_unit_test(test_count),
	    cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_ip_parse),
	    cmocka_unit_test(test_is_record),
	    cmocka_unit_test(test_zone_line),
	    cmocka_unit_test(test_suite_records),
	    cmocka_unit_test(test_dmarc_parse),
	    cmocka_unit_test(test_dmarc_starter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
