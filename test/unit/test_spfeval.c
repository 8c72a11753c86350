/*
 * Unit tests for tools/spfeval (RFC 7208 check_host()): macro expansion
 * with the examples of RFC 7208 7.4, the syntax verdicts of the record
 * parser (section 12), and evaluations whose DNS answers are a table
 * (test/unit/spftable.h: the evaluator's input). Real DNS and the whole
 * RFC 7208 test suite against pyspf: it.test_spf_suite, it.test_spf_ip.
 * Each table reports every failing row, then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test/unit/spftable.h"
#include "tools/spfeval.h"
#include "tools/spfeval_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
fixed_pname(void *ctx)
{
	return ctx;
}

/* The environment of RFC 7208 7.4's examples, client ip. */
static struct spfe_macro_env
rfc_env(const struct spf_ip *ip)
{
	struct spfe_macro_env env = {
	    .sender = "strong-bad@email.example.com",
	    .local = "strong-bad",
	    .odom = "email.example.com",
	    .domain = "email.example.com",
	    .helo = "mx.example.org",
	    .receiver = "mx.example.net",
	    .ip = ip,
	    .now = 1234567890,
	    .pname = fixed_pname,
	    .ctx = "mx.example.org",
	};

	return env;
}

static const struct {
	const char *ip, *in, *out;
	bool exp;
} macro_rows[] = {
    /* RFC 7208 7.4 */
    {"192.0.2.3", "%{s}", "strong-bad@email.example.com", false},
    {"192.0.2.3", "%{o}", "email.example.com", false},
    {"192.0.2.3", "%{d}", "email.example.com", false},
    {"192.0.2.3", "%{d4}", "email.example.com", false},
    {"192.0.2.3", "%{d3}", "email.example.com", false},
    {"192.0.2.3", "%{d2}", "example.com", false},
    {"192.0.2.3", "%{d1}", "com", false},
    {"192.0.2.3", "%{dr}", "com.example.email", false},
    {"192.0.2.3", "%{d2r}", "example.email", false},
    {"192.0.2.3", "%{l}", "strong-bad", false},
    {"192.0.2.3", "%{l-}", "strong.bad", false},
    {"192.0.2.3", "%{lr}", "strong-bad", false},
    {"192.0.2.3", "%{lr-}", "bad.strong", false},
    {"192.0.2.3", "%{l1r-}", "strong", false},
    {"192.0.2.3", "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com", false},
    {"192.0.2.3", "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com", false},
    {"192.0.2.3", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
     "bad.strong.lp.3.2.0.192.in-addr._spf.example.com", false},
    {"192.0.2.3", "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
     "3.2.0.192.in-addr.strong.lp._spf.example.com", false},
    {"192.0.2.3", "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net",
     false},
    {"2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
     "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com", false},
    /* 7.3: escapes, uppercase URL-escaped, exp-only letters, a trailing dot dropped */
    {"192.0.2.3", "%%%_%-", "% %20", true},
    {"192.0.2.3", "%{S}", "strong-bad%40email.example.com", false},
    {"192.0.2.3", "%{L-}", "strong.bad", false},
    {"192.0.2.3", "%{c} %{r} %{t} %{h} %{p}",
     "192.0.2.3 mx.example.net 1234567890 mx.example.org "
     "mx.example.org",
     true},
    {"2001:db8::cb01", "%{c}", "2001:db8::cb01", true},
    {"2001:db8::cb01", "%{i}", "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1",
     true},
    {"192.0.2.3", "%{d}.", "email.example.com", false},
    {"192.0.2.3", "%{l2-}", "strong.bad", false},
    {"192.0.2.3", "%{d99}", "email.example.com", false},
    {"192.0.2.3", "%{s_-}", "strong.bad@email.example.com", false},
    /* out NULL: the syntax check refuses it (7.1) */
    {"192.0.2.3", "%{s@}", NULL, false}, /* "@" is no delimiter */
    {"192.0.2.3", "%{d0}", NULL, false}, /* a DIGIT transformer is nonzero (7.3) */
    {"192.0.2.3", "%{t}", NULL, false},  /* c, r, t only in exp text (7.2) */
    {"192.0.2.3", "%{x}", NULL, false},
    {"192.0.2.3", "%{d", NULL, false},
    {"192.0.2.3", "50%", NULL, false},
    {"192.0.2.3", "a b", NULL, false}, /* SP only in exp text (6.2) */
};

static void
test_macro_rfc_examples(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof macro_rows / sizeof macro_rows[0]; i++) {
		struct spf_ip ip;
		struct spfe_macro_env env;
		char why[160], *out = NULL;

		assert_int_equal(spf_ip_parse(macro_rows[i].ip, 0, &ip), 0);
		env = rfc_env(&ip);
		if (macro_rows[i].out == NULL) {
			if (spfe_macro_check(macro_rows[i].in, strlen(macro_rows[i].in),
			                     macro_rows[i].exp, why, sizeof why) == 0) {
				fprintf(stderr, "row %zu %s: accepted\n", i, macro_rows[i].in);
				bad++;
			}
			continue;
		}
		if (spfe_macro_check(macro_rows[i].in, strlen(macro_rows[i].in), macro_rows[i].exp,
		                     why, sizeof why) != 0 ||
		    spfe_macro_expand(&env, macro_rows[i].in, strlen(macro_rows[i].in),
		                      macro_rows[i].exp, &out) != 0 ||
		    strcmp(out, macro_rows[i].out) != 0) {
			fprintf(stderr, "row %zu %s: got \"%s\", want \"%s\"\n", i,
			        macro_rows[i].in, out ? out : "(error)", macro_rows[i].out);
			bad++;
		}
		free(out);
	}
	assert_int_equal(bad, 0);
}

/* 7.3: a name over 253 characters loses labels on the left until it fits. */
static void
test_macro_long_name(void **state)
{
	struct spf_ip ip;
	struct spfe_macro_env env;
	char spec[400], *out = NULL;
	const char *l63 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

	(void)state;
	assert_int_equal(spf_ip_parse("192.0.2.3", 0, &ip), 0);
	env = rfc_env(&ip);
	env.local = l63;
	/* 5 x 65 + "example.com" = 336 characters: the first two labels go (206 left) */
	snprintf(spec, sizeof spec, "1%%{l}.2%%{l}.3%%{l}.4%%{l}.5%%{l}.example.com");
	assert_int_equal(spfe_macro_expand(&env, spec, strlen(spec), false, &out), 0);
	assert_true(strlen(out) <= 253);
	assert_int_equal(strncmp(out, "3aaa", 4), 0);
	assert_string_equal(out + strlen(out) - 12, ".example.com");
	free(out);
}

static const struct {
	const char *record, *why; /* why NULL: valid */
} syntax_rows[] = {
    {"v=spf1", NULL},
    {"v=spf1 -all", NULL},
    {"V=SPF1 A MX -ALL", NULL},
    {"v=spf1  a/24//64   mx:%{d}/27 ?ptr ~exists:%{ir}.%{v}.x.example -all  ", NULL},
    {"v=spf1 a//64 mx/0", NULL},
    {"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:::ffff:1.2.3.4 +all", NULL},
    {"v=spf1 foo=bar x.y_z-1=%{d} -all", NULL},
    {"v=spf1 exp=e.%{d} redirect=_spf.example.com", NULL},
    {"v=spf1 a:example.com. a:foo.1-2 mx:%{d}", NULL},
    {"v=spf1 -mx:%%%_/.Clara.de/27", NULL},
    {"v=spf10", "not an SPF record"},
    {"v=spf1 a:foo.123", "top label"},
    {"v=spf1 a:museum", "top label"},
    {"v=spf1 a:museum.", "top label"},
    {"v=spf1 a:foo.-com", "top label"},
    {"v=spf1 a:", "empty domain-spec"},
    {"v=spf1 moo", "unknown mechanism"},
    {"v=spf1 -exist:a.example", "unknown mechanism"},
    {"v=spf1 ip4:192.0.2.3/33", "prefix length"},
    {"v=spf1 ip4:192.0.2.3/032", "prefix length"},
    {"v=spf1 ip6:::1/129", "prefix length"},
    {"v=spf1 ip4:192.0.2.3//64", "prefix length"},
    {"v=spf1 ip4:192.0.02.3", "bad address"},
    {"v=spf1 ip4:", "bad address"},
    {"v=spf1 ip6:2001:db8:zz::", "bad address"},
    {"v=spf1 ip4", "needs an address"},
    {"v=spf1 a/33", "prefix length"},
    {"v=spf1 mx//129", "prefix length"},
    {"v=spf1 redirect=a.example redirect=b.example", "redirect= appears twice"},
    {"v=spf1 exp=a.example EXP=b.example", "exp= appears twice"},
    {"v=spf1 include", "needs a domain"},
    {"v=spf1 exists", "needs a domain"},
    {"v=spf1 -foo=bar", "no qualifier"},
    {"v=spf1 a:%{x}.example.com", "bad macro"},
    {"v=spf1 a:%{c}.example.com", "bad macro"},
    {"v=spf1 exists:%{d0}.example.com", "bad macro"},
    {"v=spf1 exists:%{d}%.example.com", "bad macro"},
    {"v=spf1 foo=%", "bad macro"},
    {"v=spf1 all:x", "unexpected"},
    {"v=spf1 ptr/24", "unexpected"},
    {"v=spf1 a:foo.example\t-all", "character 0x09"},
    {"v=spf1 a:b\xc3\xa9.example", "character 0xc3"},
};

static void
test_parse_verdicts(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof syntax_rows / sizeof syntax_rows[0]; i++) {
		struct spfe_record rec;
		char why[400] = "";
		int rc = spfe_parse(syntax_rows[i].record, &rec, why, sizeof why);
		const char *want = syntax_rows[i].why;

		if (want == NULL ? rc != 0 : rc == 0 || strstr(why, want) == NULL) {
			fprintf(stderr, "row %zu \"%s\": rc %d why \"%s\", want %s\n", i,
			        syntax_rows[i].record, rc, why, want ? want : "valid");
			bad++;
		}
		spfe_record_free(&rec);
	}
	assert_int_equal(bad, 0);
}

/* ---- evaluations over a table of answers ---- */

static const struct spftable_row zone[] = {
    {"many.test", "TXT",
     "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test a:h6.test "
     "a:h7.test a:h8.test a:h9.test a:h10.test a:h11.test ip4:192.0.2.3"},
    {"inc.test", "TXT", "v=spf1 include:nine.test ip4:192.0.2.3 -all"},
    {"nine.test", "TXT",
     "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test a:h6.test "
     "a:h7.test a:h8.test a:h9.test -all"},
    {"void.test", "TXT", "v=spf1 a:n1.test mx:n2.test exists:n3.test ip4:192.0.2.3"},
    {"void2.test", "TXT", "v=spf1 a:n1.test mx:n2.test ip4:192.0.2.3"},
    {"mx.test", "TXT", "v=spf1 mx -all"},
    {"two.test", "TXT", "v=spf1 -all"},
    {"two.test", "TXT", "v=spf1 +all"},
    {"other.test", "TXT", "v=spf10 +all"},
    {"other.test", "TXT", "spf1 is not this"},
    {"incnone.test", "TXT", "v=spf1 include:other.test +all"},
    {"incfail.test", "TXT", "v=spf1 include:timeout.test +all"},
    {"timeout.test", "TIMEOUT", ""},
    {"redir.test", "TXT", "v=spf1 redirect=other.test"},
    {"aerr.test", "TXT", "v=spf1 a:timeout.test +all"},
    {"exp.test", "TXT", "v=spf1 -ip4:192.0.2.0/24 ?all exp=why.%{d}"},
    {"why.exp.test", "TXT", "%{i} may not send for %{d} (%{l})"},
    {"badexp.test", "TXT", "v=spf1 -all exp=timeout.test"},
    {"ptr.test", "TXT", "v=spf1 ptr -all"},
    {"3.2.0.192.in-addr.arpa", "PTR", "x.ptr.test"},
    {"x.ptr.test", "A", "192.0.2.3"},
    {"h1.test", "A", "198.51.100.1"},
    {"h2.test", "A", "198.51.100.2"},
    {"h3.test", "A", "198.51.100.3"},
    {"h4.test", "A", "198.51.100.4"},
    {"h5.test", "A", "198.51.100.5"},
    {"h6.test", "A", "198.51.100.6"},
    {"h7.test", "A", "198.51.100.7"},
    {"h8.test", "A", "198.51.100.8"},
    {"h9.test", "A", "198.51.100.9"},
    {"h10.test", "A", "198.51.100.10"},
    {"h11.test", "A", "198.51.100.11"},
    {"m0.test", "A", "192.0.2.3"},
    {"mx.test", "MX", "0 m0.test"},
    {"mx.test", "MX", "1 h1.test"},
    {"mx.test", "MX", "2 h2.test"},
    {"mx.test", "MX", "3 h3.test"},
    {"mx.test", "MX", "4 h4.test"},
    {"mx.test", "MX", "5 h5.test"},
    {"mx.test", "MX", "6 h6.test"},
    {"mx.test", "MX", "7 h7.test"},
    {"mx.test", "MX", "8 h8.test"},
    {"mx.test", "MX", "9 h9.test"}, /* 10 names: the limit of 4.6.4 */
};

static const struct {
	const char *ip, *sender, *record; /* record: opts.record, or NULL */
	enum spf_result want;
	const char *why, *explanation;
	bool over_limit;
} eval_rows[] = {
    {"192.0.2.3", "a@many.test", NULL, SPF_R_PERMERROR, "the 11th is \"a:h11.test\"", "", true},
    {"192.0.2.3", "a@inc.test", NULL, SPF_R_PASS, "ip4:192.0.2.3", "", false},
    {"192.0.2.3", "a@x.test", "v=spf1 include:inc.test -all", SPF_R_PERMERROR,
     "more than 10 DNS-querying terms", "", true},
    {"192.0.2.3", "a@void.test", NULL, SPF_R_PERMERROR, "more than 2 void lookups", "", true},
    {"192.0.2.3", "a@void2.test", NULL, SPF_R_PASS, "ip4:192.0.2.3", "", false},
    {"192.0.2.3", "a@mx.test", NULL, SPF_R_PASS, "mx", "", false},
    {"192.0.2.3", "a@x.test", "v=spf1 mx:mx.test/24 -all", SPF_R_PASS, "mx:mx.test/24", "", false},
    {"::ffff:192.0.2.3", "a@inc.test", NULL, SPF_R_PASS, "ip4:192.0.2.3", "", false},
    {"2001:db8::3", "a@x.test", "v=spf1 ip4:192.0.2.3 -all", SPF_R_FAIL, "-all", "", false},
    /* an IPv6 client: nine.test's a: terms find no AAAA, the 3rd void lookup is too many */
    {"2001:db8::3", "a@inc.test", NULL, SPF_R_PERMERROR, "void lookups", "", true},
    {"192.0.2.3", "a@two.test", NULL, SPF_R_PERMERROR, "2 SPF records", "", false},
    {"192.0.2.3", "a@other.test", NULL, SPF_R_NONE, "no SPF record", "", false},
    {"192.0.2.3", "a@nothing.test", NULL, SPF_R_NONE, "no SPF record", "", false},
    {"192.0.2.3", "a@nodot", NULL, SPF_R_NONE, "4.3", "", false},
    {"192.0.2.3", "a@incnone.test", NULL, SPF_R_PERMERROR, "include:other.test has no SPF", "",
     false},
    {"192.0.2.3", "a@incfail.test", NULL, SPF_R_TEMPERROR, "timeout.test", "", false},
    {"192.0.2.3", "a@timeout.test", NULL, SPF_R_TEMPERROR, "failed", "", false},
    {"192.0.2.3", "a@redir.test", NULL, SPF_R_PERMERROR, "6.1", "", false},
    {"192.0.2.3", "a@aerr.test", NULL, SPF_R_TEMPERROR, "a:timeout.test", "", false},
    {"192.0.2.3", "strong@exp.test", NULL, SPF_R_FAIL, "-ip4:192.0.2.0/24",
     "192.0.2.3 may not send for exp.test (strong)", false},
    {"192.0.2.3", "@exp.test", NULL, SPF_R_FAIL, "-ip4:192.0.2.0/24",
     "192.0.2.3 may not send for exp.test (postmaster)", false},
    {"198.51.100.1", "a@exp.test", NULL, SPF_R_NEUTRAL, "?all", "", false},
    {"192.0.2.3", "a@badexp.test", NULL, SPF_R_FAIL, "-all", "", false},
    {"192.0.2.3", "a@ptr.test", NULL, SPF_R_PASS, "ptr", "", false},
    {"192.0.2.4", "a@ptr.test", NULL, SPF_R_FAIL, "-all", "", false},
    {"192.0.2.3", "", NULL, SPF_R_PASS, "ip4:192.0.2.3", "", false}, /* postmaster@inc.test */
    {"192.0.2.3", "a@x.test", "v=spf1 exists:%{p}.ok.test", SPF_R_NEUTRAL, "4.7", "", false},
    {"192.0.2.3", "a@x.test", "v=spf1 moo -all", SPF_R_PERMERROR, "unknown mechanism", "", false},
};

static void
test_eval_table(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof eval_rows / sizeof eval_rows[0]; i++) {
		struct spftable t = {zone, sizeof zone / sizeof zone[0], 0};
		struct spf_dns dns = spftable_dns(&t);
		struct spf_eval_opts opts = {.record = eval_rows[i].record};
		struct spf_eval ev;
		struct spf_ip ip;

		assert_int_equal(spf_ip_parse(eval_rows[i].ip, 0, &ip), 0);
		assert_int_equal(spf_eval(&dns, &ip, eval_rows[i].sender, "inc.test", &opts, &ev),
		                 0);
		if (ev.result != eval_rows[i].want || strstr(ev.why, eval_rows[i].why) == NULL ||
		    strcmp(ev.explanation, eval_rows[i].explanation) != 0 ||
		    ev.over_limit != eval_rows[i].over_limit) {
			fprintf(stderr,
			        "row %zu %s %s: %s \"%s\" exp \"%s\" limit %d; want %s \"%s\"\n", i,
			        eval_rows[i].ip, eval_rows[i].sender, spf_result_name(ev.result),
			        ev.why, ev.explanation, ev.over_limit,
			        spf_result_name(eval_rows[i].want), eval_rows[i].why);
			bad++;
		}
		spf_eval_free(&ev);
	}
	assert_int_equal(bad, 0);
}

/* 4.6.4: an mx of 11 names is a permerror before any of their addresses is looked up. */
static void
test_eval_mx_limit(void **state)
{
	struct spftable_row rows[sizeof zone / sizeof zone[0] + 1];
	struct spftable t = {rows, 0, 0};
	struct spf_dns dns = spftable_dns(&t);
	struct spf_eval ev;
	struct spf_ip ip;

	(void)state;
	memcpy(rows, zone, sizeof zone);
	rows[sizeof zone / sizeof zone[0]] = (struct spftable_row){"mx.test", "MX", "11 h11.test"};
	t.n = sizeof rows / sizeof rows[0];
	assert_int_equal(spf_ip_parse("192.0.2.3", 0, &ip), 0);
	assert_int_equal(spf_eval(&dns, &ip, "a@mx.test", "h.test", NULL, &ev), 0);
	assert_int_equal(ev.result, SPF_R_PERMERROR);
	assert_true(ev.over_limit);
	assert_non_null(strstr(ev.why, "more than 10 MX names"));
	assert_int_equal(t.queries, 2); /* the TXT and the MX lookups, no address */
	spf_eval_free(&ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_macro_rfc_examples), cmocka_unit_test(test_macro_long_name),
	    cmocka_unit_test(test_parse_verdicts),     cmocka_unit_test(test_eval_table),
	    cmocka_unit_test(test_eval_mx_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
