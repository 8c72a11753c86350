/*
 * ctl_check_spf: the checks of mxrelayctl dns check about the published
 * SPF record (spf, spf-lookups; see tools/ctl_check.c). Record text work is
 * tools/spf's; the verdict per address is ctl_check_spfip.c's.
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"

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

void
check_spf_record(struct ctx *c)
{
	struct dnsq_list l;
	struct spf_lint lint;
	enum dnsq_status st = ctl_spf_records(c->domain, &l);
	char why[512], *warn;
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
		check_add(
		    c, "spf", ST_FAIL,
		    check_fmt(
		        "%s publishes %zu SPF records; receivers answer permerror (RFC 7208 4.5)",
		        c->domain, l.n),
		    check_fmt(
		        "publish one record with the terms of all of them and delete the others "
		        "(mxrelayctl dns spf %s --current \"...\" merges the relay into one)",
		        c->domain));
		goto done;
	}
	if (spf_validate(l.v[0], why, sizeof why) != 0 ||
	    spf_lint(l.v[0], &lint, why, sizeof why) != 0) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("the SPF record does not parse: %s: %s", why, l.v[0]),
		          check_fmt(fix_cmd, c->domain));
		goto done;
	}
	c->spf_ok = true;
	c->spf_record = strdup(l.v[0]);
	/* lookups get their own check; a published record was split already */
	lint.warnings &= ~(unsigned)(SPF_W_LOOKUPS | SPF_W_SPLIT);
	if (lint.warnings & SPF_W_PLUS_ALL) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("%s: +all lets every host on the internet pass", l.v[0]),
		          check_fmt("end the record with ~all or -all (mxrelayctl dns spf %s)",
		                    c->domain));
	} else if ((warn = spf_warnings(lint.warnings)) != NULL) {
		check_add(c, "spf", ST_WARN, check_fmt("%s", l.v[0]), warn);
	} else {
		check_add(c, "spf", ST_PASS, check_fmt("%s", l.v[0]), NULL);
	}
done:
	dnsq_list_free(&l);
}

void
check_spf_lookups(struct ctx *c)
{
	struct spf_count cnt;

	if (!c->spf_ok)
		return;
	spf_count_lookups(c->spf_record, ctl_spf_fetch, NULL, &cnt);
	if (cnt.total > SPF_LOOKUP_LIMIT)
		check_add(
		    c, "spf-lookups", ST_FAIL,
		    check_fmt(
		        "%d DNS-querying terms through includes, over the limit of %d: receivers "
		        "answer permerror (RFC 7208 4.6.4)",
		        cnt.total, SPF_LOOKUP_LIMIT),
		    check_fmt("replace includes, a and mx with ip4:/ip6: terms, or drop unused "
		              "includes"));
	else if (cnt.not_followed > 0)
		check_add(c, "spf-lookups", ST_WARN,
		          check_fmt("at least %d of %d DNS lookups; %d include(s) not followed: %s",
		                    cnt.total, SPF_LOOKUP_LIMIT, cnt.not_followed, cnt.problem),
		          check_fmt("make every include publish exactly one SPF record"));
	else
		check_add(c, "spf-lookups", ST_PASS,
		          check_fmt("%d of %d DNS lookups", cnt.total, SPF_LOOKUP_LIMIT), NULL);
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
