/*
 * ctl_check_dmarc: the DMARC checks of mxrelayctl dns check (dmarc,
 * dmarc-alignment; see tools/ctl_check.c).
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "tools/dmarc.h"

/* ---- DMARC ---- */

/*
 * The TXT records at _dmarc.D for D = domain, then its parents down to two
 * labels (a simple stand-in for the organisational domain, RFC 7489 6.6.3).
 * *where is the name they came from.
 */
static enum dnsq_status
dmarc_lookup(const char *domain, struct dnsq_list *l, char *where, size_t wherelen)
{
	const char *d = domain;
	enum dnsq_status st;

	for (;;) {
		snprintf(where, wherelen, "_dmarc.%s", d);
		st = dnsq_txt(where, l);
		if (st != DNSQ_NXDOMAIN && st != DNSQ_NODATA)
			return st;
		d = strchr(d, '.');
		if (d == NULL || strchr(d + 1, '.') == NULL)
			break;
		d++;
	}
	snprintf(where, wherelen, "_dmarc.%s", domain);
	return st;
}

void
check_dmarc(struct ctx *c)
{
	struct dnsq_list l;
	char where[300], why[512];
	enum dnsq_status st = dmarc_lookup(c->domain, &l, where, sizeof where);
	size_t n = 0, first = 0;
	char *fix_cmd = NULL;

	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		check_add(
		    c, "dmarc", ST_FAIL, check_fmt("no DMARC record at %s", where),
		    check_fmt("publish a starter record: mxrelayctl dns dmarc %s", c->domain));
		return;
	}
	if (st != DNSQ_OK) {
		check_add(c, "dmarc", ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", where, dnsq_strerror(st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
		return;
	}
	for (size_t i = 0; i < l.n; i++)
		if (dmarc_is_record(l.v[i]) && n++ == 0)
			first = i;
	fix_cmd = check_fmt("publish one correct record: mxrelayctl dns dmarc %s", c->domain);
	if (n > 1) {
		check_add(
		    c, "dmarc", ST_FAIL,
		    check_fmt(
		        "%s has %zu DMARC records; receivers then apply none (RFC 7489 6.6.3)",
		        where, n),
		    fix_cmd);
	} else if (dmarc_parse(l.v[first], &c->dmarc, why, sizeof why) != 0) {
		check_add(c, "dmarc", ST_FAIL,
		          check_fmt("%s is malformed: %s: %s", where, why, l.v[first]), fix_cmd);
	} else {
		bool parent = strcmp(where + strlen("_dmarc."), c->domain) != 0;
		const char *policy = parent && c->dmarc.sp[0] ? c->dmarc.sp : c->dmarc.p;

		free(fix_cmd);
		c->dmarc_ok = true;
		check_add(c, "dmarc", ST_PASS,
		          check_fmt("%s: %s=%s%s%s", where, parent && c->dmarc.sp[0] ? "sp" : "p",
		                    policy, parent ? " (the parent domain's record applies)" : "",
		                    strcmp(policy, "none") == 0
		                        ? "; monitoring only: tighten to quarantine, "
		                          "then reject, once the reports are clean"
		                        : ""),
		          NULL);
	}
	dnsq_list_free(&l);
}

/*
 * RFC 7489 3.1: DKIM aligns when d= is the From domain (strict) or shares
 * its organisational domain (relaxed); the relay signs mail from DOMAIN with
 * DOMAIN's own keys, so d= equals the From domain and both modes align.
 * SPF aligns when MAIL FROM is in DOMAIN (postmaster@DOMAIN here).
 */
void
check_alignment(struct ctx *c)
{
	bool dkim = c->dkim_pass > 0, spf = c->spf_ips_pass;

	if (!c->dmarc_ok)
		return;
	if (dkim && spf)
		check_add(
		    c, "dmarc-alignment", ST_PASS,
		    check_fmt("DKIM d=%s and SPF for MAIL FROM in %s both align with From: @%s "
		              "(adkim=%c, aspf=%c)",
		              c->domain, c->domain, c->domain, c->dmarc.adkim, c->dmarc.aspf),
		    NULL);
	else if (dkim)
		check_add(
		    c, "dmarc-alignment", ST_PASS,
		    check_fmt("DKIM d=%s aligns with From: @%s (adkim=%c); SPF %s", c->domain,
		              c->domain, c->dmarc.adkim,
		              c->nips ? "does not pass" : "was not checked (no egress address)"),
		    NULL);
	else if (spf)
		check_add(
		    c, "dmarc-alignment", ST_WARN,
		    check_fmt(
		        "only SPF aligns with From: @%s (MAIL FROM in %s); forwarded mail will "
		        "fail DMARC",
		        c->domain, c->domain),
		    check_fmt("sign with a key of %s: mxrelayctl dkim keygen %s SELECTOR",
		              c->domain, c->domain));
	else
		check_add(
		    c, "dmarc-alignment", ST_FAIL,
		    check_fmt(
		        "neither DKIM nor SPF passes for %s, so DMARC fails for its mail (p=%s)",
		        c->domain, c->dmarc.p),
		    check_fmt("fix the dkim and spf checks above"));
}
