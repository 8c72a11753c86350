/*
 * ctl_check_spf: the checks of mxrelayctl dns check about the published
 * SPF record (spf, spf-lookups; see tools/ctl_check.c). Record text work is
 * tools/spf's; the verdict per address is ctl_check_spfip.c's.
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"
#include "tools/spf_lint.h"
#include "tools/spfeval.h"

/* libspf2 needs struct in_addr declared before its header (TESTING.md) */
#include <netinet/in.h>
#include <spf2/spf.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The warnings of the published record, joined, or NULL when there are none. */
static char *
spf_warnings(unsigned w)
{
	char *s = NULL, *t;

	for (unsigned b = 0; b < SPF_W_COUNT; b++) {
		if (!(w & (1u << b)))
			continue;
		t = s ? check_fmt("%s; %s", s, spf_warning_text((enum spf_warning)(1u << b)))
		      : check_fmt("%s", spf_warning_text((enum spf_warning)(1u << b)));
		free(s);
		s = t;
	}
	return s;
}

/* What a finding means: its status and detail (the count and the terms involved). */
static enum status
finding_detail(enum spf_fcode code, const struct spf_finding *f, char **detail)
{
	static const struct {
		enum status st;
		const char *fmt;
	} d[SPF_F_COUNT] = {
	    [SPF_F_SYNTAX] = {ST_FAIL, "%d term(s) do not parse, so receivers answer permerror "
	                               "for every sender (RFC 7208 4.6, 12): %s"},
	    [SPF_F_UNKNOWN] = {ST_FAIL, "%d unknown mechanism(s): a permerror for every sender "
	                                "(RFC 7208 5): %s"},
	    [SPF_F_TWICE] = {ST_FAIL, "%d modifier(s) given more than once: a permerror for every "
	                              "sender (RFC 7208 6): %s"},
	    [SPF_F_PLUS_ALL] = {ST_FAIL, "%d: %s lets every host on the internet pass (RFC 7208 "
	                                 "5.1)"},
	    [SPF_F_NEUTRAL_ALL] = {ST_WARN, "%d: %s gives everyone else neutral, which protects "
	                                    "nothing (RFC 7208 8.2)"},
	    [SPF_F_NO_ALL] = {ST_WARN, "%d: %s: senders not listed get neutral (RFC 7208 4.7)"},
	    [SPF_F_REDIRECT_IGN] = {ST_WARN, "%d: %s: redirect= is never used when the record "
	                                     "has all (RFC 7208 6.1)"},
	    [SPF_F_AFTER_ALL] = {ST_WARN, "%d term(s) after all are never evaluated (RFC 7208 "
	                                  "5.1): %s"},
	    [SPF_F_PTR] = {ST_WARN, "%d ptr term(s): slow and unreliable, RFC 7208 5.5 says SHOULD "
	                            "NOT be used: %s"},
	    [SPF_F_HOST_BITS] = {ST_WARN, "%d ip4/ip6 term(s) with bits set past the prefix "
	                                  "length, which receivers ignore (RFC 7208 5.6): %s"},
	    [SPF_F_WIDE] = {ST_FAIL, "%d ip4/ip6 term(s) authorise a large part of the internet "
	                             "(RFC 7208 5.6): %s"},
	    [SPF_F_CIDR] = {ST_WARN, "%d a/mx term(s) with a prefix length: every neighbour of "
	                             "each address passes too (RFC 7208 5.3, 5.4): %s"},
	    [SPF_F_LENGTH] = {ST_WARN, "%d: the record is %s, over 450: the answer may not fit "
	                               "in UDP (RFC 7208 3.4)"},
	    [SPF_F_TARGET] = {ST_FAIL, "%d include/redirect target(s) without exactly one valid "
	                               "SPF record: a permerror for senders whose evaluation "
	                               "reaches it (RFC 7208 4.6, 5.2, 6.1): %s"},
	    [SPF_F_LOOP] = {ST_FAIL, "%d include/redirect loop(s): a permerror (RFC 7208 5.2): %s"},
	    [SPF_F_VOID] = {ST_FAIL, "%d void lookups (names that answer nothing), over the limit "
	                             "of 2: receivers answer permerror (RFC 7208 4.6.4): %s"},
	    [SPF_F_MX_NAMES] = {ST_FAIL, "%d mx term(s) over 10 MX names: a permerror (RFC 7208 "
	                                 "4.6.4): %s"},
	    [SPF_F_PTR_NAMES] = {ST_WARN, "%d address(es) with over 10 PTR names: a ptr checks "
	                                  "only the first 10 (RFC 7208 4.6.4): %s"},
	};

	*detail = check_fmt(d[code].fmt, f->count, f->what);
	return d[code].st;
}

/* The fix of a finding: the record to publish instead, or what a person must do. */
static char *
finding_fix(const struct ctx *c, enum spf_fcode code, const char *record)
{
	char *fixed = spf_lint_fix(record, code), *s;

	if (fixed != NULL) {
		s = check_fmt("publish instead: %s (or run mxrelayctl dns spf %s, which prints "
		              "the record with the relay added)",
		              fixed, c->domain);
		free(fixed);
		return s;
	}
	switch (code) {
	case SPF_F_PTR:
	case SPF_F_PTR_NAMES:
		return check_fmt("replace ptr with ip4:/ip6: terms for the hosts it meant "
		                 "(mxrelayctl dns spf %s prints the record with the relay)",
		                 c->domain);
	case SPF_F_CIDR:
		return check_fmt("write the neighbours that really send as ip4:/ip6: terms, "
		                 "or drop the prefix length");
	case SPF_F_LENGTH:
		return check_fmt("replace includes and names with shorter ip4:/ip6: ranges, or "
		                 "move senders to an include of your own");
	case SPF_F_TARGET:
	case SPF_F_LOOP:
		return check_fmt("remove these includes, or make each target publish exactly one "
		                 "SPF record (mxrelayctl dns spf %s prints the record)",
		                 c->domain);
	case SPF_F_VOID:
		return check_fmt("remove the terms whose names answer nothing (listed above), "
		                 "then run mxrelayctl dns spf %s",
		                 c->domain);
	default:
		return check_fmt("mxrelayctl dns spf %s prints the record to publish", c->domain);
	}
}

/* The worst status among the findings' lines. */
static enum status
worst_finding(const struct ctx *c)
{
	enum status worst = ST_PASS, st;
	char *detail;

	for (int code = 0; code < SPF_F_COUNT; code++) {
		if (c->spf_find->f[code].count == 0)
			continue;
		st = finding_detail((enum spf_fcode)code, &c->spf_find->f[code], &detail);
		free(detail);
		if (st > worst)
			worst = st;
	}
	return worst;
}

/* One check line per finding of the record (spf-lookups aside: check_spf_lookups). */
static void
add_findings(struct ctx *c, const char *record)
{
	for (int code = 0; code < SPF_F_COUNT; code++) {
		const struct spf_finding *f = &c->spf_find->f[code];
		char *detail;
		enum status st;

		if (f->count == 0 || code == SPF_F_LOOKUPS)
			continue;
		st = finding_detail((enum spf_fcode)code, f, &detail);
		check_add(c, spf_finding_name((enum spf_fcode)code), st, detail,
		          finding_fix(c, (enum spf_fcode)code, record));
	}
}

/* The spf line for the one published record, then one line per finding. */
static void
check_one_record(struct ctx *c, const char *record)
{
	struct spf_lint lint;
	char why[512], *warn;
	bool perm = false;

	c->spf_find = calloc(1, sizeof *c->spf_find);
	if (c->spf_find == NULL || spf_lint_terms(record, c->spf_find) != 0)
		abort();
	spf_lint_tree(c->domain, record, spf_dns_system(), c->ips, c->nips, c->spf_find);
	for (int code = 0; code < SPF_F_COUNT; code++)
		if (c->spf_find->f[code].count > 0 && spf_finding_permerror((enum spf_fcode)code))
			perm = true;
	c->spf_permerror = perm;
	c->spf_record = strdup(record);
	if (spf_validate(record, why, sizeof why) != 0 ||
	    spf_lint(record, &lint, why, sizeof why) != 0) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("the SPF record does not parse: %s: %s", why, record),
		          check_fmt("see the spf-* lines; mxrelayctl dns spf %s prints a record",
		                    c->domain));
		c->spf_permerror = true;
		add_findings(c, record);
		return;
	}
	c->spf_ok = true;
	/* lookups get their own check; a published record was split already */
	lint.warnings &= ~(unsigned)(SPF_W_LOOKUPS | SPF_W_SPLIT);
	warn = spf_warnings(lint.warnings);
	if (lint.warnings & SPF_W_PLUS_ALL) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("%s: +all lets every host on the internet pass", record),
		          check_fmt("end the record with ~all or -all (mxrelayctl dns spf %s)",
		                    c->domain));
		free(warn);
	} else if (perm) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("%s: receivers answer permerror (see the spf-* lines)", record),
		          warn ? warn : check_fmt("fix the spf-* lines below"));
	} else if (warn != NULL) {
		check_add(c, "spf", ST_WARN, check_fmt("%s", record), warn);
	} else if (worst_finding(c) != ST_PASS) {
		check_add(c, "spf", worst_finding(c), check_fmt("%s", record),
		          check_fmt("see the spf-* lines below"));
	} else {
		check_add(c, "spf", ST_PASS, check_fmt("%s", record), NULL);
	}
	add_findings(c, record);
}

void
check_spf_record(struct ctx *c)
{
	struct dnsq_list l;
	enum dnsq_status st = ctl_spf_records(c->domain, &l);
	const char *fix_cmd = "run mxrelayctl dns spf %s and publish the record it prints";

	if (st == DNSQ_NODATA || st == DNSQ_NXDOMAIN) {
		check_add(c, "spf", ST_FAIL, check_fmt("%s publishes no SPF record", c->domain),
		          check_fmt(fix_cmd, c->domain));
		return;
	}
	if (st != DNSQ_OK) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", c->domain, dnsq_strerror(st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
		return;
	}
	if (l.n > 1) {
		c->spf_permerror = true;
		check_add(
		    c, "spf", ST_FAIL,
		    check_fmt(
		        "%s publishes %zu SPF records; receivers answer permerror (RFC 7208 4.5)",
		        c->domain, l.n),
		    check_fmt("run mxrelayctl dns spf %s: it merges all %zu records into one that "
		              "keeps every term, publish it and delete the others",
		              c->domain, l.n));
	} else {
		check_one_record(c, l.v[0]);
	}
	dnsq_list_free(&l);
}

/*
 * Targets with macros are not walked: check_host() for an address nobody
 * lists (192.0.2.1, TEST-NET-1) expands them and visits every term, so its
 * counts stand for the walk's (RFC 7208 4.6.4).
 */
static void
count_with_evaluator(struct ctx *c, int *lookups, int *voids, char *why, size_t whylen)
{
	struct spf_eval ev;
	struct spf_ip ip;
	char from[300];

	snprintf(from, sizeof from, "postmaster@%s", c->domain);
	memset(&ev, 0, sizeof ev);
	spf_ip_parse("192.0.2.1", AF_INET, &ip);
	if (spf_eval(spf_dns_system(), &ip, from, c->helo, NULL, &ev) != 0)
		return;
	if (ev.lookups > *lookups)
		*lookups = ev.lookups;
	if (ev.void_lookups > *voids)
		*voids = ev.void_lookups;
	snprintf(why, whylen, "%s", ev.why);
	spf_eval_free(&ev);
}

void
check_spf_lookups(struct ctx *c)
{
	const struct spf_findings *f = c->spf_find;
	int lookups, voids;
	char why[512] = "";

	if (f == NULL || !f->walked)
		return;
	lookups = f->lookups;
	voids = f->voids;
	if (f->not_followed > 0)
		count_with_evaluator(c, &lookups, &voids, why, sizeof why);
	if (voids > SPF_VOID_LIMIT && f->voids <= SPF_VOID_LIMIT)
		check_add(
		    c, "spf-void-lookups", ST_FAIL,
		    check_fmt("%d void lookups through macros, over the limit of %d: receivers "
		              "answer permerror (RFC 7208 4.6.4): %s",
		              voids, SPF_VOID_LIMIT, why),
		    check_fmt("every lookup: mxrelayctl dns spf-eval --trace 192.0.2.1 "
		              "postmaster@%s",
		              c->domain));
	if (lookups > SPF_LOOKUP_LIMIT)
		check_add(
		    c, "spf-lookups", ST_FAIL,
		    check_fmt(
		        "%d DNS-querying terms through includes, over the limit of %d: receivers "
		        "answer permerror for every sender whose evaluation reaches the 11th "
		        "lookup (RFC 7208 4.6.4; senders matched earlier still pass)",
		        lookups, SPF_LOOKUP_LIMIT),
		    check_fmt("replace includes, a and mx with ip4:/ip6: terms, or drop unused "
		              "includes, then run mxrelayctl dns spf %s",
		              c->domain));
	else if (f->not_followed > 0)
		check_add(c, "spf-lookups", ST_PASS,
		          check_fmt("%d of %d DNS lookups (%d target(s) with macros counted by "
		                    "check_host() for 192.0.2.1, RFC 7208 7)",
		                    lookups, SPF_LOOKUP_LIMIT, f->not_followed),
		          NULL);
	else
		check_add(c, "spf-lookups", ST_PASS,
		          check_fmt("%d of %d DNS lookups", lookups, SPF_LOOKUP_LIMIT), NULL);
}

/* The evaluator's permerror for egress address i, into why; false for any other result. */
static bool
eval_permerror(const struct ctx *c, size_t i, char *why, size_t whylen)
{
	struct spf_eval ev;
	char from[300];
	bool perm;

	snprintf(from, sizeof from, "postmaster@%s", c->domain);
	memset(&ev, 0, sizeof ev);
	if (spf_eval(spf_dns_system(), &c->ips[i], from, c->helo, NULL, &ev) != 0)
		return false;
	perm = ev.result == SPF_R_PERMERROR;
	snprintf(why, whylen, "%s", ev.why);
	spf_eval_free(&ev);
	return perm;
}

void
check_spf_no_false_pass(struct ctx *c)
{
	char why[512];
	size_t i;

	for (i = 0; i < c->nips; i++)
		if (eval_permerror(c, i, why, sizeof why))
			break;
	if (i == c->nips)
		return;
	/* the record's own lines (spf, spf-lookups...) saw nothing the evaluator did */
	for (size_t k = 0; k < c->r.n; k++) {
		struct check *ck = &c->r.v[k];

		if (ck->st != ST_PASS || strncmp(ck->name, "spf", 3) != 0 ||
		    (ck->name[3] != '\0' && ck->name[3] != '-') ||
		    strncmp(ck->name, "spf-ip ", 7) == 0)
			continue;
		ck->st = ST_FAIL;
		free(ck->detail);
		ck->detail = check_fmt("RFC 7208 check_host() answers permerror for %s: %s",
		                       c->ipstr[i], why);
		ck->fix =
		    check_fmt("every lookup: mxrelayctl dns spf-eval --trace %s postmaster@%s",
		              c->ipstr[i], c->domain);
	}
}

/* libspf2 reports some DNS trouble through its warning hook: keep our output ours. */
static void
spf_quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

void
check_spf_quiet(void)
{
	SPF_warning_handler = spf_quiet;
	SPF_info_handler = spf_quiet;
}
