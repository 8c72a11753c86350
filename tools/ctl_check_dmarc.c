/*
 * ctl_check_dmarc: the DMARC checks of mxrelayctl dns check (dmarc,
 * dmarc-alignment; see tools/ctl_check.c).
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "tools/ctl_dmarc.h"
#include "tools/dmarc.h"
#include "tools/orgdomain.h"

#include "mta/shared/config.h"

/* ---- DMARC ---- */

/* A fix: record r as dmarc_propose writes it (never weaker than r). */
static char *
record_fix(struct ctx *c, const char *where, const struct dmarc_record *r, const char *lead)
{
	char *rec = NULL, *changes = NULL, *fix, err[256], rua[300];

	snprintf(rua, sizeof rua, "mailto:dmarc@%s", where + strlen("_dmarc."));
	if (dmarc_propose(r, r->rua ? NULL : rua, &rec, &changes, err, sizeof err) != 0)
		return check_fmt("%s: mxrelayctl dns dmarc %s", lead, c->domain);
	fix = check_fmt("%s: %s. IN TXT \"%s\" (mxrelayctl dns dmarc %s prints it)", lead, where,
	                rec, c->domain);
	free(rec);
	free(changes);
	return fix;
}

/* The starter record as a fix (no usable record published). */
static char *
starter_fix(struct ctx *c, const char *lead)
{
	char rua[300], *rec = NULL, *fix, err[256];

	snprintf(rua, sizeof rua, "mailto:dmarc@%s", c->domain);
	if (dmarc_starter(rua, &rec, err, sizeof err) != 0)
		return check_fmt("%s: mxrelayctl dns dmarc %s", lead, c->domain);
	fix = check_fmt("%s: _dmarc.%s. IN TXT \"%s\" (mxrelayctl dns dmarc %s prints it)", lead,
	                c->domain, rec, c->domain);
	free(rec);
	return fix;
}

/* One WARN line per note of a record receivers apply (pct, fo, rf, typo tags). */
static void
dmarc_notes(struct ctx *c, const char *where)
{
	for (size_t i = 0; i < c->dmarc.nnotes; i++) {
		const struct dmarc_note *nt = &c->dmarc.notes[i];
		struct dmarc_record fixed = c->dmarc;
		char name[64];

		snprintf(name, sizeof name, "dmarc %s", nt->tag);
		if (strcmp(nt->tag, "pct") == 0)
			fixed.pct = 100;
		if (strcmp(nt->tag, "rf") == 0)
			fixed.rf[0] = '\0';
		check_add(c, name, ST_WARN, check_fmt("%s: %s", where, nt->text),
		          record_fix(c, where, &fixed,
		                     strcmp(nt->tag, "pct") == 0
		                         ? "once the reports are clean, publish"
		                         : "publish"));
	}
}

/* The domain of a "mailto:local@domain!size" URI into out; false for other schemes. */
static bool
mailto_domain(const char *uri, size_t len, char *out, size_t outlen)
{
	const char *at = NULL, *end = uri + len;

	while (uri < end && (*uri == ' ' || *uri == '\t'))
		uri++;
	if (end - uri < 7 || strncasecmp(uri, "mailto:", 7) != 0)
		return false;
	for (const char *p = uri; p < end && *p != '!'; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return false;
	len = strcspn(at + 1, "! \t,");
	if (len == 0 || len >= outlen || at + 1 + len > end)
		return false;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)at[1 + i]);
	out[len] = '\0';
	return true;
}

/* RFC 7489 7.1: AT._report._dmarc.RDOMAIN must hold v=DMARC1 for an external report domain. */
static void
report_auth(struct ctx *c, const char *at, const char *rdomain, const char *tag)
{
	struct dnsq_list l = {NULL, 0};
	char name[600], label[300];
	enum dnsq_status st;
	bool ok = false;

	snprintf(label, sizeof label, "dmarc-report %s", rdomain);
	for (size_t i = 0; i < c->r.n; i++)
		if (strcmp(c->r.v[i].name, label) == 0)
			return; /* rua and ruf in the same domain: one line */
	snprintf(name, sizeof name, "%s._report._dmarc.%s", at, rdomain);
	st = dnsq_txt(name, &l);
	for (size_t i = 0; st == DNSQ_OK && i < l.n; i++)
		ok = ok || dmarc_is_record(l.v[i]);
	dnsq_list_free(&l);
	if (ok)
		check_add(c, label, ST_PASS,
		          check_fmt("%s (%s=) is another organisational domain and authorises "
		                    "reports for %s at %s (RFC 7489 7.1)",
		                    rdomain, tag, at, name),
		          NULL);
	else
		check_add(
		    c, label, st == DNSQ_FAIL ? ST_FAIL : ST_WARN,
		    check_fmt("%s (%s=) is another organisational domain and %s holds no "
		              "v=DMARC1 record%s: receivers send it no reports (RFC 7489 7.1)",
		              rdomain, tag, name, st == DNSQ_FAIL ? " (the lookup failed)" : ""),
		    check_fmt("%s's DNS must publish: %s. IN TXT \"v=DMARC1\"", rdomain, name));
}

static void
dmarc_reports(struct ctx *c, const char *at)
{
	const char *lists[2] = {c->dmarc.rua_list, c->dmarc.ruf_list};

	for (int t = 0; t < 2; t++) {
		const char *p = lists[t];

		while (*p) {
			size_t len = strcspn(p, ",");
			char rdomain[256];

			if (mailto_domain(p, len, rdomain, sizeof rdomain) &&
			    !orgdomain_same(at, rdomain))
				report_auth(c, at, rdomain, t == 0 ? "rua" : "ruf");
			p += len;
			if (*p == ',')
				p++;
		}
	}
}

static void
dmarc_valid(struct ctx *c, const struct ctl_dmarc_found *f)
{
	const char *policy = f->org && c->dmarc.sp[0] ? c->dmarc.sp : c->dmarc.p;

	c->dmarc_ok = true;
	check_add(
	    c, "dmarc", ST_PASS,
	    check_fmt("%s: %s=%s%s%s", f->where, f->org && c->dmarc.sp[0] ? "sp" : "p", policy,
	              f->org ? " (the organisational domain's record applies, RFC 7489 "
	                       "6.6.3)"
	                     : "",
	              strcmp(policy, "none") == 0 ? "; monitoring only: tighten to quarantine, "
	                                            "then reject, once the reports are clean"
	                                          : ""),
	    NULL);
	dmarc_notes(c, f->where);
	if (!c->dmarc.rua)
		check_add(
		    c, "dmarc rua", ST_WARN,
		    check_fmt("%s has no rua=: nobody receives the aggregate reports that show "
		              "what fails (RFC 7489 7.2)",
		              f->where),
		    record_fix(c, f->where, &c->dmarc, "publish"));
	dmarc_reports(c, f->at);
}

void
check_dmarc(struct ctx *c)
{
	struct ctl_dmarc_found f;
	char why[512];

	ctl_dmarc_find(c->domain, &f);
	if (f.l.n == 0 && f.st == DNSQ_FAIL) {
		check_add(c, "dmarc", ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", f.where, dnsq_strerror(f.st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
	} else if (f.l.n == 0) {
		check_add(c, "dmarc", ST_FAIL,
		          check_fmt("no DMARC record at _dmarc.%s%s%s", c->domain,
		                    f.org ? " nor at " : "", f.org ? f.where : ""),
		          starter_fix(c, "publish a starter record"));
	} else if (f.l.n > 1) {
		check_add(c, "dmarc", ST_FAIL,
		          check_fmt("%s has %zu DMARC records; receivers then apply none "
		                    "(RFC 7489 6.6.3)",
		                    f.where, f.l.n),
		          check_fmt("keep only one: mxrelayctl dns dmarc %s", c->domain));
	} else if (dmarc_parse(f.l.v[0], &c->dmarc, why, sizeof why) != 0) {
		check_add(
		    c, "dmarc", ST_FAIL,
		    check_fmt("%s is malformed (RFC 7489 6.3): %s: %s", f.where, why, f.l.v[0]),
		    starter_fix(c, "publish a correct record"));
	} else {
		dmarc_valid(c, &f);
	}
	ctl_dmarc_found_free(&f);
}

/* true when the configuration has a dkim_key for the domain (its dkim lines say why it fails) */
static bool
has_dkim_key(const struct ctx *c)
{
	for (const struct dkim_key_conf *k = c->cfg->dkim_keys; k != NULL; k = k->next)
		if (strcasecmp(k->domain, c->domain) == 0)
			return true;
	return false;
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
	bool dkim = c->dkim_pass > 0, spf = c->spf_ips_pass && c->nips > 0;

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
		    has_dkim_key(c)
		        ? check_fmt("fix the dkim lines above: DKIM does not pass for %s",
		                    c->domain)
		        : check_fmt("sign with a key of %s: mxrelayctl dkim keygen %s SELECTOR",
		                    c->domain, c->domain));
	else
		check_add(
		    c, "dmarc-alignment", ST_FAIL,
		    check_fmt(
		        "neither DKIM nor SPF passes for %s, so DMARC fails for its mail (p=%s)",
		        c->domain, c->dmarc.p),
		    check_fmt("fix the dkim and spf checks above"));
}
