/*
 * mxrelayctl dns check: look up what a domain publishes and say, check by
 * check, whether mail the relay sends for it will be trusted, and how to fix
 * what is not.
 *
 * Checks (name: what passes):
 *   spf                  exactly one SPF record, libspf2 compiles it, no +all
 *   spf-ip IP            libspf2 evaluates pass for IP, MAIL FROM
 *                        postmaster@DOMAIN, HELO helo_name (one per egress IP)
 *   spf-lookups          at most 10 DNS-querying terms, through includes
 *   dkim SELECTOR        the published key record matches the configured key
 *   dmarc                one v=DMARC1 record that parses, at _dmarc.DOMAIN or
 *                        a parent domain
 *   dmarc-alignment      DKIM (d=DOMAIN) and SPF (MAIL FROM in DOMAIN) pass
 *                        aligned with From: DOMAIN
 *   fcrdns IP            IP -> PTR name -> A/AAAA holds IP, and the name is
 *                        helo_name
 *   mx                   DOMAIN has an MX (bounces and reports reach it)
 * Each is pass, warn or fail; the exit status is 1 when any fails.
 *
 * Lookups are blocking (tools/dnsq, libspf2's own resolver): a CLI may wait.
 * The SPF checks are in tools/ctl_check_spf.c, the report and its output in
 * tools/ctl_check_report.c, the state they share in tools/ctl_check.h.
 */
#include "tools/ctl_check.h"
#include "tools/dmarc.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
#include "dkim/keys.h"
#include "dkim/txt.h"
#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define PROG "mxrelayctl dns check"

/* ---- DKIM ---- */

static void
check_dkim_key(struct ctx *c, const struct dkim_key_conf *k)
{
	struct mxdkim_key *key = NULL;
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st;
	char name[64 + 300], label[128], err[512];
	struct stat sb;

	snprintf(label, sizeof label, "dkim %s", k->selector);
	snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, c->domain);
	if (mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s:%d: cannot load the key: %s", c->conf_name, k->line, err),
		          check_fmt("fix the path, or make a key: mxrelayctl dkim keygen %s %s",
		                    c->domain, k->selector));
		return;
	}
	st = dnsq_txt(name, &l);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		check_add(
		    c, label, ST_FAIL, check_fmt("no DKIM record at %s", name),
		    check_fmt("publish the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (st != DNSQ_OK) {
		check_add(c, label, ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", name, dnsq_strerror(st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
	} else if (l.n > 1) {
		check_add(
		    c, label, ST_FAIL,
		    check_fmt(
		        "%s has %zu TXT records; verifiers need exactly one (RFC 6376 3.6.2.2)",
		        name, l.n),
		    check_fmt("keep only the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (mxdkim_txt_matches(key, l.v[0], err, sizeof err) != 0) {
		check_add(
		    c, label, ST_FAIL, check_fmt("%s does not match %s: %s", name, k->path, err),
		    check_fmt("publish the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (stat(k->path, &sb) == 0 && (sb.st_mode & S_IROTH)) {
		c->dkim_pass++;
		check_add(c, label, ST_WARN,
		          check_fmt("%s matches %s, but every user can read that key file", name,
		                    k->path),
		          check_fmt("chmod o-rwx %s", k->path));
	} else {
		c->dkim_pass++;
		check_add(c, label, ST_PASS,
		          check_fmt("%s matches %s (%s)", name, k->path,
		                    mxdkim_alg_name(mxdkim_key_alg(key))),
		          NULL);
	}
	dnsq_list_free(&l);
	mxdkim_key_free(key);
}

static void
check_dkim(struct ctx *c)
{
	int keys = 0;

	for (const struct dkim_key_conf *k = c->cfg->dkim_keys; k != NULL; k = k->next) {
		if (strcasecmp(k->domain, c->domain) != 0)
			continue;
		keys++;
		check_dkim_key(c, k);
	}
	if (keys == 0)
		check_add(
		    c, "dkim", ST_WARN,
		    check_fmt("%s has no dkim_key for %s: its mail goes out unsigned", c->conf_name,
		              c->domain),
		    check_fmt(
		        "mxrelayctl dkim keygen %s SELECTOR, add the dkim_key line, publish the "
		        "record",
		        c->domain));
}

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

static void
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
static void
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

/* ---- reverse DNS ---- */

static bool
same_ip(const char *a, const struct spf_ip *ip)
{
	struct spf_ip b;

	return spf_ip_parse(a, ip->family, &b) == 0 && memcmp(b.addr, ip->addr, 16) == 0;
}

/* The first PTR name whose A/AAAA records hold ip (FCrDNS), or NULL. */
static const char *
confirmed_name(const struct dnsq_list *ptr, const struct spf_ip *ip, const char *helo)
{
	const char *found = NULL;

	for (size_t i = 0; i < ptr->n; i++) {
		struct dnsq_list a;

		if (dnsq_addrs(ptr->v[i], &a) != DNSQ_OK)
			continue;
		for (size_t k = 0; k < a.n; k++) {
			if (!same_ip(a.v[k], ip))
				continue;
			/* prefer the name that is also the HELO name */
			if (found == NULL || strcasecmp(ptr->v[i], helo) == 0)
				found = ptr->v[i];
		}
		dnsq_list_free(&a);
	}
	return found;
}

static void
check_fcrdns(struct ctx *c, size_t i)
{
	struct dnsq_list ptr;
	enum dnsq_status st = dnsq_ptr(c->ipstr[i], &ptr);
	const char *ip = c->ipstr[i], *name;
	char label[64];

	snprintf(label, sizeof label, "fcrdns %s", ip);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s has no PTR record; many receivers refuse such mail", ip),
		          check_fmt("ask whoever owns %s (your provider) to set its PTR to %s", ip,
		                    c->helo));
		return;
	}
	if (st != DNSQ_OK) {
		check_add(c, label, ST_FAIL,
		          check_fmt("PTR lookup of %s: %s", ip, dnsq_strerror(st)),
		          check_fmt("check again later"));
		return;
	}
	name = confirmed_name(&ptr, &c->ips[i], c->helo);
	if (name == NULL)
		check_add(c, label, ST_FAIL,
		          check_fmt("%s -> %s, but %s does not resolve back to %s (FCrDNS fails)",
		                    ip, ptr.v[0], ptr.v[0], ip),
		          check_fmt("publish %s %s %s, or point the PTR at a name that has it",
		                    ptr.v[0], c->ips[i].family == AF_INET ? "A" : "AAAA", ip));
	else if (strcasecmp(name, c->helo) != 0)
		check_add(
		    c, label, ST_WARN,
		    check_fmt("%s -> %s -> %s, but the relay says HELO %s", ip, name, ip, c->helo),
		    check_fmt("set helo_name = %s in the config (or change the PTR to %s)", name,
		              c->helo));
	else
		check_add(c, label, ST_PASS,
		          check_fmt("%s -> %s -> %s, the HELO name", ip, name, ip), NULL);
	dnsq_list_free(&ptr);
}

/* ---- MX ---- */

static void
check_mx(struct ctx *c)
{
	struct dnsq_list l, a;
	enum dnsq_status st = dnsq_mx(c->domain, &l);

	if (st == DNSQ_OK) {
		if (l.n == 1 && strcmp(l.v[0], "0 .") == 0)
			check_add(
			    c, "mx", ST_FAIL,
			    check_fmt("%s publishes a null MX (RFC 7505): it receives no mail, so "
			              "bounces and DMARC reports to it are lost",
			              c->domain),
			    check_fmt("publish an MX for the server that receives %s's mail",
			              c->domain));
		else
			check_add(c, "mx", ST_PASS,
			          check_fmt("MX %s%s", l.v[0], l.n > 1 ? " and more" : ""), NULL);
		dnsq_list_free(&l);
		return;
	}
	if (st == DNSQ_FAIL) {
		check_add(c, "mx", ST_FAIL,
		          check_fmt("MX lookup of %s: %s", c->domain, dnsq_strerror(st)),
		          check_fmt("check again later"));
		return;
	}
	if (dnsq_addrs(c->domain, &a) == DNSQ_OK) {
		check_add(
		    c, "mx", ST_WARN,
		    check_fmt(
		        "%s has no MX; mail to it goes to its address %s (implicit MX, RFC 5321 "
		        "5.1)",
		        c->domain, a.v[0]),
		    check_fmt("publish an MX record for %s", c->domain));
		dnsq_list_free(&a);
		return;
	}
	check_add(
	    c, "mx", ST_FAIL,
	    check_fmt("%s has no MX and no address: bounces to postmaster@%s cannot be delivered",
	              c->domain, c->domain),
	    check_fmt("publish an MX record for %s pointing at the server that receives its mail",
	              c->domain));
}

/* ---- the command ---- */

/* -1: go on; otherwise the exit status */
static int
parse_args(int argc, char **argv, struct ctl_dns_opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"ip4", required_argument, NULL, CTL_OPT_IP4},
	    {"ip6", required_argument, NULL, CTL_OPT_IP6},
	    {"json", no_argument, NULL, CTL_OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	return ctl_dns_args(argc, argv, PROG, longopts, o);
}

int
ctl_dns_check(int argc, char **argv)
{
	struct ctl_dns_opts o;
	struct ctx c;
	struct config *cfg = NULL;
	char domain[256];
	enum dnsq_status st;
	enum status worst;
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (ctl_domain_arg(PROG, o.domain, domain) != 0 || ctl_load_config(PROG, o.conf, &cfg) != 0)
		return 1;
	st = dnsq_exists(domain);
	if (st != DNSQ_OK) {
		fprintf(stderr, PROG ": %s: %s\n", domain, dnsq_strerror(st));
		config_free(cfg);
		return 1;
	}
	memset(&c, 0, sizeof c);
	c.domain = domain;
	c.cfg = cfg;
	c.conf_name = ctl_config_name(cfg);
	c.helo = ctl_helo_name(cfg);
	if (o.nips > 0) {
		memcpy(c.ips, o.ips, sizeof c.ips);
		c.nips = o.nips;
	} else {
		c.nips = ctl_config_ips(cfg, c.ips);
	}
	for (size_t i = 0; i < c.nips; i++)
		spf_ip_format(&c.ips[i], c.ipstr[i], sizeof c.ipstr[i]);
	check_spf_quiet();
	check_spf_record(&c);
	check_spf_ips(&c);
	check_spf_lookups(&c);
	check_dkim(&c);
	check_dmarc(&c);
	check_alignment(&c);
	for (size_t i = 0; i < c.nips; i++)
		check_fcrdns(&c, i);
	check_mx(&c);
	worst = check_print(&c, o.json);
	check_report_free(&c.r);
	free(c.spf_record);
	config_free(cfg);
	return worst == ST_FAIL ? 1 : 0;
}
