/*
 * mxrelayctl dns check: look up what a domain publishes and say, check by
 * check, whether mail the relay sends for it will be trusted, and how to fix
 * what is not.
 *
 * Checks (name: what passes):
 *   spf                  exactly one SPF record, libspf2 compiles it, no +all
 *   spf-ip IP            tools/spfeval (RFC 7208) passes IP, MAIL FROM
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
 *   exchange-online      (warn only) the MX is Exchange Online: mail to the
 *                        domain's own mailboxes needs a partner connector
 *   dnsbl [ZONE IP]      no egress address is on a DNS blocklist
 *   port25 DOMAIN        (--port25 DOMAIN) DOMAIN's MX greets us on port 25
 * Each is pass, warn or fail; the exit status is the worst: 0 all pass,
 * 3 a warning, 1 a failure (2 a usage error).
 *
 * --all -c CONF checks every domain with a dkim_key and every domain the
 * credentials file allows as a sender, the host checks (fcrdns, dnsbl,
 * port25) once, and prints a summary table.
 *
 * Lookups are blocking (tools/dnsq, libspf2's own resolver): a CLI may wait.
 * This file is the command: its options, the order of the checks, the
 * exit status. The checks themselves are in tools/ctl_check_spf.c (spf,
 * spf-lookups), ctl_check_spfip.c (spf-ip, through tools/spfeval),
 * ctl_check_dkim.c, ctl_check_dmarc.c, ctl_check_host.c (fcrdns, mx),
 * ctl_check_dnsbl.c and ctl_check_port25.c;
 * the report and its output in tools/ctl_check_report.c, the state they
 * share in tools/ctl_check.h.
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
#include "mta/shared/config.h"
#include "mta/shared/creds.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define PROG "mxrelayctl dns check"

/* ---- the command ---- */

enum { OPT_ALL = CTL_OPT_JSON + 100, OPT_PORT25 };

struct check_opts {
	struct ctl_dns_opts d; /* conf, domain, json, ips */
	bool all;
	const char *port25; /* NULL: no port 25 test */
};

/* -1: go on; otherwise the exit status */
static int
parse_args(int argc, char **argv, struct check_opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"ip4", required_argument, NULL, CTL_OPT_IP4},
	    {"ip6", required_argument, NULL, CTL_OPT_IP6},
	    {"json", no_argument, NULL, CTL_OPT_JSON},
	    {"all", no_argument, NULL, OPT_ALL},
	    {"port25", required_argument, NULL, OPT_PORT25},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, rc;

	memset(o, 0, sizeof *o);
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c') {
			o->d.conf = optarg;
		} else if (ch == CTL_OPT_IP4 || ch == CTL_OPT_IP6) {
			rc = ctl_ip_opt(PROG, optarg, ch == CTL_OPT_IP4 ? AF_INET : AF_INET6,
			                o->d.ips, &o->d.nips);
			if (rc >= 0)
				return rc;
		} else if (ch == CTL_OPT_JSON) {
			o->d.json = true;
		} else if (ch == OPT_ALL) {
			o->all = true;
		} else if (ch == OPT_PORT25) {
			o->port25 = optarg;
		} else {
			return ctl_opt_end(ch, argv, PROG, ctl_dns_usage);
		}
	}
	if (o->all && argc - optind != 0)
		return ctl_usage_error(PROG, ctl_dns_usage, "--all takes no DOMAIN", argv[optind]);
	if (!o->all && argc - optind != 1)
		return ctl_usage_error(PROG, ctl_dns_usage,
		                       "expected exactly one DOMAIN (or --all)", NULL);
	if (!o->all)
		o->d.domain = argv[optind];
	return -1;
}

/* The checks of the domain c->domain (SPF, DKIM, DMARC, MX). */
static void
check_domain(struct ctx *c)
{
	check_spf_record(c);
	check_spf_ips(c);
	check_spf_lookups(c);
	check_spf_no_false_pass(c);
	check_dkim(c);
	check_dmarc(c);
	check_alignment(c);
	check_mx(c);
}

/* The checks of the relay host: reverse DNS, blocklists, port 25 when asked. */
static void
check_host(struct ctx *c, const char *port25)
{
	for (size_t i = 0; i < c->nips; i++)
		check_fcrdns(c, i);
	check_dnsbl(c);
	if (port25 != NULL)
		check_port25(c, port25);
}

static void
ctx_free(struct ctx *c)
{
	check_report_free(&c->r);
	free(c->spf_record);
	c->spf_record = NULL;
	free(c->spf_find);
	c->spf_find = NULL;
}

static int
run_one(struct ctx *base, const struct check_opts *o, const char *domain)
{
	enum dnsq_status st = dnsq_exists(domain);

	if (st != DNSQ_OK) {
		fprintf(stderr, PROG ": %s: %s\n", domain, dnsq_strerror(st));
		return 1;
	}
	base->domain = domain;
	check_domain(base);
	check_host(base, o->port25);
	return check_exit_status(check_print(base, o->d.json));
}

/* Append dom (lowercased) to the list unless it is there; -1 when it is no domain name. */
static int
add_domain(char (**v)[256], size_t *n, const char *dom)
{
	char name[256], (*nv)[256];

	if (strlen(dom) > 253 || ctl_domain_arg(PROG, dom, name) != 0)
		return -1;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], name) == 0)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (nv == NULL) {
		fputs(PROG ": out of memory\n", stderr);
		abort();
	}
	memcpy(nv[*n], name, sizeof name);
	*v = nv;
	(*n)++;
	return 0;
}

/*
 * Every domain with a dkim_key, then every domain the credentials file
 * allows as a sender ("addr@dom" and "@dom"; "*" names none), in that order.
 */
/* true when d can be checked as a DNS name (not an address literal "[192.0.2.1]", RFC 5321 4.1.3) */
static bool
dns_name(const char *d)
{
	size_t len = strlen(d);

	if (len == 0 || len > 253)
		return false;
	for (; *d; d++)
		if (!isalnum((unsigned char)*d) && *d != '.' && *d != '-' && *d != '_')
			return false;
	return true;
}

static int
all_domains(struct ctx *host, char (**v)[256], size_t *n)
{
	const struct config *cfg = host->cfg;
	struct creds *cr = NULL;
	char err[512];

	*v = NULL;
	*n = 0;
	for (const struct dkim_key_conf *k = cfg->dkim_keys; k != NULL; k = k->next)
		if (add_domain(v, n, k->domain) != 0)
			return -1;
	if (cfg->credentials == NULL)
		return 0;
	if (creds_load(&cr, cfg->credentials, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return -1;
	}
	for (size_t i = 0; i < creds_count(cr); i++) {
		const struct cred *u = creds_at(cr, i);

		for (size_t s = 0; s < u->nsenders; s++) {
			const char *at = strrchr(u->senders[s], '@');

			if (at != NULL && !dns_name(at + 1)) {
				char name[300];

				/* one odd entry must not stop the check of every other domain */
				snprintf(name, sizeof name, "credentials sender %s", u->senders[s]);
				check_add(host, name, ST_PASS,
				          check_fmt("%s (user %s) is not a domain name (an address "
				                    "literal?): no DNS records to check, skipped",
				                    u->senders[s], u->user),
				          NULL);
				continue;
			}
			if (at != NULL && add_domain(v, n, at + 1) != 0) {
				creds_free(cr);
				return -1;
			}
		}
	}
	creds_free(cr);
	return 0;
}

static int
run_all(struct ctx *host, const struct check_opts *o)
{
	char(*names)[256];
	size_t n;
	struct ctx *doms;
	int rc;

	if (all_domains(host, &names, &n) != 0) {
		free(names);
		return 1;
	}
	if (n == 0) {
		fprintf(stderr,
		        PROG ": %s has no dkim_key and its credentials allow no domain: "
		             "nothing to check (give a DOMAIN)\n",
		        host->conf_name);
		return 1;
	}
	doms = calloc(n, sizeof *doms);
	if (doms == NULL)
		abort();
	for (size_t d = 0; d < n; d++) {
		enum dnsq_status st = dnsq_exists(names[d]);

		doms[d] = *host;
		/* the host's lines (egress) stay the host's */
		doms[d].r = (struct report){NULL, 0};
		doms[d].domain = names[d];
		if (st == DNSQ_OK)
			check_domain(&doms[d]);
		else
			check_add(&doms[d], "domain", ST_FAIL,
			          check_fmt("%s: %s", names[d], dnsq_strerror(st)),
			          check_fmt("publish %s's records, or remove it from %s", names[d],
			                    host->conf_name));
	}
	check_host(host, o->port25);
	rc = check_exit_status(check_print_all(host, doms, n, o->d.json));
	for (size_t d = 0; d < n; d++)
		ctx_free(&doms[d]);
	free(doms);
	free(names);
	return rc;
}

int
ctl_dns_check(int argc, char **argv)
{
	struct check_opts o;
	struct ctx c;
	struct config *cfg = NULL;
	char domain[256];
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if ((!o.all && ctl_domain_arg(PROG, o.d.domain, domain) != 0) ||
	    ctl_load_config(PROG, o.d.conf, &cfg) != 0)
		return 1;
	memset(&c, 0, sizeof c);
	c.cfg = cfg;
	c.conf_name = ctl_config_name(cfg);
	c.helo = ctl_helo_name(cfg);
	if (o.d.nips > 0) {
		memcpy(c.ips, o.d.ips, sizeof c.ips);
		c.nips = o.d.nips;
	} else {
		c.nips = ctl_config_ips(cfg, c.ips);
	}
	for (size_t i = 0; i < c.nips; i++)
		spf_ip_format(&c.ips[i], c.ipstr[i], sizeof c.ipstr[i]);
	check_egress(&c, o.d.nips > 0); /* a host check, first: it may add the detected address */
	check_spf_quiet();
	rc = o.all ? run_all(&c, &o) : run_one(&c, &o, domain);
	ctx_free(&c); /* the host's report: egress, fcrdns, dnsbl, port25 */
	config_free(cfg);
	return rc;
}
