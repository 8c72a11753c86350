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
 * Each is pass, warn or fail; the exit status is 1 when any fails.
 *
 * Lookups are blocking (tools/dnsq, libspf2's own resolver): a CLI may wait.
 * This file is the command: its options, the order of the checks, the
 * exit status. The checks themselves are in tools/ctl_check_spf.c (spf,
 * spf-lookups), ctl_check_spfip.c (spf-ip, through tools/spfeval),
 * ctl_check_dkim.c, ctl_check_dmarc.c and ctl_check_host.c (fcrdns, mx);
 * the report and its output in tools/ctl_check_report.c, the state they
 * share in tools/ctl_check.h.
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
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

#define PROG "mxrelayctl dns check"

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
	check_spf_no_false_pass(&c);
	check_dkim(&c);
	check_dmarc(&c);
	check_alignment(&c);
	for (size_t i = 0; i < c.nips; i++)
		check_fcrdns(&c, i);
	check_mx(&c);
	worst = check_print(&c, o.json);
	check_report_free(&c.r);
	free(c.spf_record);
	free(c.spf_find);
	config_free(cfg);
	return worst == ST_FAIL ? 1 : 0;
}
