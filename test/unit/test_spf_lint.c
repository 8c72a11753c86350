/*
 * Unit tests for tools/spf_lint (the findings of one record's terms and
 * the record to publish instead) and tools/spf_join (several records made
 * one). The tree walk needs DNS: test/integration/test_dns_spf.py runs it
 * against nsd. Every joined record and every fix is also checked with
 * spf_validate (libspf2). Each table reports every failing row, then
 * fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tools/spf.h"
#include "tools/spf_lint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lint_case {
	const char *record;
	enum spf_fcode code;
	int count;
	const char *what; /* a part of the finding's list */
};

static const struct lint_case lint_cases[] = {
    {"v=spf1 ip4:192.0.2.300 -all", SPF_F_SYNTAX, 1, "not an IPv4 address"},
    {"v=spf1 ip4:192.0.2.1/33 -all", SPF_F_SYNTAX, 1, "prefix length out of range"},
    {"v=spf1 ip4:192.0.2.1/08 -all", SPF_F_SYNTAX, 1, "prefix length"},
    {"v=spf1 ip6:2001:db8::/129 -all", SPF_F_SYNTAX, 1, "prefix length"},
    {"v=spf1 ip6:192.0.2.1 -all", SPF_F_SYNTAX, 1, "not an IPv6 address"},
    {"v=spf1 a//129 a/33 -all", SPF_F_SYNTAX, 2, "IPv4 prefix length"},
    {"v=spf1 include: -all", SPF_F_SYNTAX, 1, "an empty domain"},
    {"v=spf1 include -all", SPF_F_SYNTAX, 1, "needs a domain"},
    {"v=spf1 exists -all", SPF_F_SYNTAX, 1, "needs a domain"},
    {"v=spf1 include:example.com/24 -all", SPF_F_SYNTAX, 1, "takes no prefix length"},
    {"v=spf1 ptr/24 -all", SPF_F_SYNTAX, 1, "takes no prefix length"},
    {"v=spf1 all:x.example -all", SPF_F_SYNTAX, 1, "all takes no argument"},
    {"v=spf1 mx:foo -all", SPF_F_SYNTAX, 1, "single label"},
    {"v=spf1 a:foo.123 -all", SPF_F_SYNTAX, 1, "top label"},
    {"v=spf1 a:foo.-bar -all", SPF_F_SYNTAX, 1, "top label"},
    {"v=spf1 exists:%{q}.example.com -all", SPF_F_SYNTAX, 1, "macro letter"},
    {"v=spf1 exists:%{i.example.com -all", SPF_F_SYNTAX, 1, "closing }"},
    {"v=spf1 exists:%x.example.com -all", SPF_F_SYNTAX, 1, "not followed by"},
    {"v=spf1 exists:%{c}.example.com -all", SPF_F_SYNTAX, 1, "macro letter"},
    {"v=spf1 redirect=%{d}%", SPF_F_SYNTAX, 1, "'%' at the end"},
    {"v=spf1 -all foo-bar!=x", SPF_F_SYNTAX, 1, "modifier name"},
    {"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", SPF_F_SYNTAX, 0, ""},
    {"v=spf1 a:mail.example.com. mx:x.1-2 ip6:::1 -all", SPF_F_SYNTAX, 0, ""},
    {"v=spf1 -all exp=explain._spf.%{d} moo=%{l}", SPF_F_SYNTAX, 0, ""},
    {"v=spf1 foo:bar.example ip4:192.0.2.1 -all", SPF_F_UNKNOWN, 1, "foo:bar.example"},
    {"v=spf1 -redirect=x.example -all", SPF_F_UNKNOWN, 1, "-redirect=x.example"},
    {"v=spf1 redirect=a.example redirect=b.example", SPF_F_TWICE, 1, "redirect= 2 times"},
    {"v=spf1 -all exp=a.example exp=b.example", SPF_F_TWICE, 1, "exp= 2 times"},
    {"v=spf1 ip4:192.0.2.1 +all", SPF_F_PLUS_ALL, 1, "+all"},
    {"v=spf1 ip4:192.0.2.1 all", SPF_F_PLUS_ALL, 1, "all"},
    {"v=spf1 ip4:192.0.2.1 ?all", SPF_F_NEUTRAL_ALL, 1, "?all"},
    {"v=spf1 ip4:192.0.2.1", SPF_F_NO_ALL, 1, "no all"},
    {"v=spf1 ip4:192.0.2.1 redirect=x.example", SPF_F_NO_ALL, 0, ""},
    {"v=spf1 ip4:192.0.2.1 -all redirect=x.example", SPF_F_REDIRECT_IGN, 1, "redirect= with -all"},
    {"v=spf1 -all ip4:192.0.2.1 a", SPF_F_AFTER_ALL, 2, "ip4:192.0.2.1; a"},
    {"v=spf1 -all exp=x.example", SPF_F_AFTER_ALL, 0, ""},
    {"v=spf1 ptr ptr:example.com -all", SPF_F_PTR, 2, "ptr; ptr:example.com"},
    {"v=spf1 ip4:192.0.2.5/24 -all", SPF_F_HOST_BITS, 1, "matches 192.0.2.0/24"},
    {"v=spf1 ip6:2001:db8::1/32 -all", SPF_F_HOST_BITS, 1, "matches 2001:db8::/32"},
    {"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", SPF_F_HOST_BITS, 0, ""},
    {"v=spf1 ip4:0.0.0.0/0 -all", SPF_F_WIDE, 1, "ip4:0.0.0.0/0"},
    {"v=spf1 ip4:64.0.0.0/2 ip6:::/0 -all", SPF_F_WIDE, 2, "ip6:::/0"},
    {"v=spf1 ip4:10.0.0.0/8 -all", SPF_F_WIDE, 0, ""},
    {"v=spf1 a/24 mx//64 a:x.example/32//128 -all", SPF_F_CIDR, 2, "a/24; mx//64"},
};

static void
test_lint_terms(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof lint_cases / sizeof lint_cases[0]; i++) {
		const struct lint_case *lc = &lint_cases[i];
		struct spf_findings f;

		if (spf_lint_terms(lc->record, &f) != 0) {
			print_error("lint \"%s\": -1\n", lc->record);
			bad++;
			continue;
		}
		if (f.f[lc->code].count != lc->count ||
		    strstr(f.f[lc->code].what, lc->what) == NULL) {
			print_error("lint \"%s\" %s: count %d \"%s\", want %d with \"%s\"\n",
			            lc->record, spf_finding_name(lc->code), f.f[lc->code].count,
			            f.f[lc->code].what, lc->count, lc->what);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_lint_length_and_not_spf(void **state)
{
	char rec[600] = "v=spf1";
	struct spf_findings f;

	(void)state;
	for (int i = 1; i <= 30; i++)
		snprintf(rec + strlen(rec), sizeof rec - strlen(rec), " ip4:198.51.100.%d", i);
	strcat(rec, " -all");
	assert_int_equal(spf_lint_terms(rec, &f), 0);
	assert_int_equal(f.f[SPF_F_LENGTH].count, 1);
	assert_int_equal(spf_lint_terms("v=spf10 -all", &f), -1);
	assert_int_equal(spf_lint_terms("google-site-verification=x", &f), -1);
}

struct fix_case {
	const char *record;
	enum spf_fcode code;
	const char *want; /* NULL: no automatic fix */
};

static const struct fix_case fix_cases[] = {
    {"v=spf1 ip4:192.0.2.1 +all", SPF_F_PLUS_ALL, "v=spf1 ip4:192.0.2.1 ~all"},
    {"v=spf1 ip4:192.0.2.1 ?all", SPF_F_NEUTRAL_ALL, "v=spf1 ip4:192.0.2.1 ~all"},
    {"v=spf1 ip4:192.0.2.1 exp=x.example", SPF_F_NO_ALL, "v=spf1 ip4:192.0.2.1 ~all exp=x.example"},
    {"v=spf1 a -all redirect=x.example", SPF_F_REDIRECT_IGN, "v=spf1 a -all"},
    {"v=spf1 redirect=a.example redirect=b.example", SPF_F_TWICE, "v=spf1 redirect=a.example"},
    {"v=spf1 -all a mx exp=e.example", SPF_F_AFTER_ALL, "v=spf1 a mx -all exp=e.example"},
    {"v=spf1 -ip4:192.0.2.5/24 ip6:2001:db8::1/32 -all", SPF_F_HOST_BITS,
     "v=spf1 -ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"},
    {"v=spf1 ip4:0.0.0.0/0 a -all", SPF_F_WIDE, "v=spf1 a -all"},
    {"v=spf1 ip4:192.0.2.1 foo:x.example -all", SPF_F_UNKNOWN, "v=spf1 ip4:192.0.2.1 -all"},
    {"v=spf1 ip4:192.0.2.300 a -all", SPF_F_SYNTAX, "v=spf1 a -all"},
    {"v=spf1 ptr -all", SPF_F_PTR, NULL},
    {"v=spf1 a/24 -all", SPF_F_CIDR, NULL},
    {"v=spf1 include:x.example -all", SPF_F_LOOKUPS, NULL},
};

static void
test_lint_fix(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof fix_cases / sizeof fix_cases[0]; i++) {
		const struct fix_case *fc = &fix_cases[i];
		char *got = spf_lint_fix(fc->record, fc->code), why[256];
		struct spf_findings f;

		if ((got == NULL) != (fc->want == NULL) ||
		    (got != NULL && strcmp(got, fc->want) != 0)) {
			print_error("fix \"%s\" %s: \"%s\", want \"%s\"\n", fc->record,
			            spf_finding_name(fc->code), got ? got : "(none)",
			            fc->want ? fc->want : "(none)");
			bad++;
		} else if (got != NULL &&
		           (spf_validate(got, why, sizeof why) != 0 ||
		            spf_lint_terms(got, &f) != 0 || f.f[fc->code].count != 0)) {
			print_error("fix \"%s\": \"%s\" still has %s (%s)\n", fc->record, got,
			            spf_finding_name(fc->code), why);
			bad++;
		}
		free(got);
	}
	assert_int_equal(bad, 0);
}

struct join_case {
	const char *label;
	const char *records[3];
	const char *want;
	const char *all;
	unsigned duplicates;
	bool by_include, all_differed;
	const char *part1; /* by_include: the record for _spf1.example.org */
};

static const struct join_case join_cases[] = {
    {"tenant: ~all and an include with -all",
     {"v=spf1 ip4:198.51.100.20 ~all", "v=spf1 include:spf.protection.outlook.com -all"},
     "v=spf1 ip4:198.51.100.20 include:spf.protection.outlook.com -all",
     "-all",
     0,
     false,
     true,
     NULL},
    {"same all, duplicates byte-exact only",
     {"v=spf1 mx ip4:192.0.2.1 -all", "V=SPF1 mx IP4:192.0.2.1 a -all"},
     "v=spf1 mx ip4:192.0.2.1 IP4:192.0.2.1 a -all",
     "-all",
     1,
     false,
     false,
     NULL},
    {"macro letter case is not folded (%{L} url-escapes, RFC 7208 7.3)",
     {"v=spf1 exists:%{l}.x.example -all", "v=spf1 exists:%{L}.x.example -all"},
     "v=spf1 exists:%{l}.x.example exists:%{L}.x.example -all",
     "-all",
     0,
     false,
     false,
     NULL},
    {"?all and ~all: ~all",
     {"v=spf1 a:a.example ?all", "v=spf1 mx:m.example ~all", "v=spf1 ptr ?all"},
     "v=spf1 a:a.example mx:m.example ptr ~all",
     "~all",
     0,
     false,
     true,
     NULL},
    {"+all with ?all: never +all",
     {"v=spf1 a +all", "v=spf1 mx ?all"},
     "v=spf1 a mx ?all",
     "?all",
     0,
     false,
     true,
     NULL},
    {"no all anywhere: ?all (4.7)",
     {"v=spf1 a", "v=spf1 mx"},
     "v=spf1 a mx ?all",
     "?all",
     0,
     false,
     false,
     NULL},
    {"-ip4 before a pass: by inclusion",
     {"v=spf1 -ip4:203.0.113.0/24 ip4:198.51.100.1 -all",
      "v=spf1 ip4:198.51.100.2 ip4:203.0.113.7 -all"},
     "v=spf1 include:_spf1.example.org include:_spf2.example.org -all",
     "-all",
     0,
     true,
     false,
     "v=spf1 -ip4:203.0.113.0/24 ip4:198.51.100.1 -all"},
    {"bare a and mx name the domain once moved",
     {"v=spf1 ?ip4:192.0.2.0/24 mx a/24 -all", "v=spf1 a:out.example.org -all"},
     "v=spf1 include:_spf1.example.org include:_spf2.example.org -all",
     "-all",
     0,
     true,
     false,
     "v=spf1 ?ip4:192.0.2.0/24 mx:example.org a:example.org/24 -all"},
    {"redirect beside an all stays inside its record (6.1)",
     {"v=spf1 ip4:198.51.100.1 -all redirect=gone.example", "v=spf1 a:out.example.org -all"},
     "v=spf1 include:_spf1.example.org include:_spf2.example.org -all",
     "-all",
     0,
     true,
     false,
     "v=spf1 ip4:198.51.100.1 -all redirect=gone.example"},
    {"terms after an all stay dead",
     {"v=spf1 ip4:198.51.100.1 -all include:gone.example", "v=spf1 mx -all"},
     "v=spf1 include:_spf1.example.org include:_spf2.example.org -all",
     "-all",
     0,
     true,
     false,
     "v=spf1 ip4:198.51.100.1 -all include:gone.example"},
    {"two redirects, no all: included, never weaker than ?all",
     {"v=spf1 redirect=a.example.com", "v=spf1 redirect=b.example.com"},
     "v=spf1 include:_spf1.example.org include:_spf2.example.org ?all",
     "?all",
     0,
     true,
     false,
     "v=spf1 redirect=a.example.com"},
    {"different exp: by inclusion",
     {"v=spf1 a:a.example -all exp=one.example.com", "v=spf1 mx:m.example -all exp=two.example"},
     "v=spf1 include:_spf1.example.org include:_spf2.example.org -all",
     "-all",
     0,
     true,
     false,
     "v=spf1 a:a.example -all exp=one.example.com"},
    {"one exp and unknown modifiers: inline, modifiers last",
     {"v=spf1 a:a.example -all exp=one.example.com", "v=spf1 mx:m.example moo=x -all"},
     "v=spf1 a:a.example mx:m.example -all exp=one.example.com moo=x",
     "-all",
     0,
     false,
     false,
     NULL},
};

static void
test_join(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof join_cases / sizeof join_cases[0]; i++) {
		const struct join_case *jc = &join_cases[i];
		size_t n = 0;
		struct spf_join j;
		char err[256], why[256];

		while (n < 3 && jc->records[n] != NULL)
			n++;
		if (spf_join("example.org", jc->records, n, NULL, NULL, &j, err, sizeof err) != 0) {
			print_error("join \"%s\": -1 (%s)\n", jc->label, err);
			bad++;
			continue;
		}
		if (strcmp(j.record, jc->want) != 0 || strcmp(j.all, jc->all) != 0 ||
		    j.duplicates != jc->duplicates || j.by_include != jc->by_include ||
		    j.all_differed != jc->all_differed || j.records != n ||
		    (jc->part1 != NULL &&
		     (j.nparts != n || strcmp(j.part_record[0], jc->part1) != 0 ||
		      strcmp(j.part_name[0], "_spf1.example.org") != 0))) {
			print_error("join \"%s\":\n  got  \"%s\" all %s dup %u incl %d differed %d "
			            "part1 \"%s\"\n  want \"%s\" all %s dup %u incl %d differed %d "
			            "part1 \"%s\"\n",
			            jc->label, j.record, j.all, j.duplicates, j.by_include,
			            j.all_differed, j.nparts ? j.part_record[0] : "", jc->want,
			            jc->all, jc->duplicates, jc->by_include, jc->all_differed,
			            jc->part1 ? jc->part1 : "");
			bad++;
		} else if (spf_validate(j.record, why, sizeof why) != 0) {
			print_error("join \"%s\": \"%s\" does not validate: %s\n", jc->label,
			            j.record, why);
			bad++;
		}
		spf_join_free(&j);
	}
	assert_int_equal(bad, 0);
}

static void
test_join_refuses(void **state)
{
	const char *unknown[] = {"v=spf1 a -all", "v=spf1 foo:x.example -all"};
	const char *not_spf[] = {"v=spf1 a -all", "hello"};
	struct spf_join j;
	char err[256];

	(void)state;
	assert_int_equal(spf_join("example.org", unknown, 2, NULL, NULL, &j, err, sizeof err), -1);
	assert_non_null(strstr(err, "record 2 has an unknown term 'foo:x.example'"));
	assert_int_equal(spf_join("example.org", not_spf, 2, NULL, NULL, &j, err, sizeof err), -1);
	assert_non_null(strstr(err, "not an SPF record"));
	{
		const char *dmacro[] = {"v=spf1 -a -all", "v=spf1 exists:%{d}.x.example -all"};

		assert_int_equal(
		    spf_join("example.org", dmacro, 2, NULL, NULL, &j, err, sizeof err), -1);
		assert_non_null(strstr(err, "record 2 uses exists:%{d}.x.example"));
	}
}

static void
test_include_targets(void **state)
{
	char t[SPF_TARGETS_MAX][256];

	(void)state;
	assert_int_equal(spf_include_targets("v=spf1 redirect=R.example. include:A.example "
	                                     "include:%{d}.x.example include:b.example",
	                                     t, SPF_TARGETS_MAX),
	                 3);
	assert_string_equal(t[0], "a.example");
	assert_string_equal(t[1], "b.example");
	assert_string_equal(t[2], "r.example");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lint_terms),   cmocka_unit_test(test_lint_length_and_not_spf),
	    cmocka_unit_test(test_lint_fix),     cmocka_unit_test(test_join),
	    cmocka_unit_test(test_join_refuses), cmocka_unit_test(test_include_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
