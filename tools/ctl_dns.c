/*
 * mxrelayctl dns: the DNS records that make the relay's mail trusted.
 *
 *   dns spf DOMAIN    the SPF record for the relay's addresses, merged into
 *                     what DOMAIN publishes (tools/spf does the text work)
 *   dns dmarc DOMAIN  a starter DMARC record and how to tighten it
 *                     (tools/ctl_dns_dmarc.c)
 *   dns dkim DOMAIN   the records of the configured keys (tools/ctl_dkim.c)
 *   dns check DOMAIN  what is published, checked (tools/ctl_check.c)
 *   dns spf-eval IP SENDER  RFC 7208 check_host() (tools/ctl_spfeval.c)
 *
 * The helpers those commands share are tools/ctl_dns_common.c's. Lookups
 * block (tools/dnsq); nothing here changes DNS: the admin publishes what is
 * printed.
 */
#include "tools/ctl.h"
#include "tools/dmarc.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int
usage_error(const char *prog, const char *what, const char *arg)
{
	return ctl_usage_error(prog, ctl_dns_usage, what, arg);
}

/* ---- dns spf ---- */

#define SPF_PROG "mxrelayctl dns spf"

/* -1: go on; otherwise the exit status */
static int
spf_args(int argc, char **argv, struct ctl_dns_opts *o)
{
	static const struct option longopts[] = {
	    {"ip4", required_argument, NULL, CTL_OPT_IP4},
	    {"ip6", required_argument, NULL, CTL_OPT_IP6},
	    {"current", required_argument, NULL, CTL_OPT_CURRENT},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	return ctl_dns_args(argc, argv, SPF_PROG, longopts, o);
}

/*
 * One family's egress address appended to o->ips: source_ipv4/6, else the
 * kernel's choice (said on stdout, with how to pin it). A detected address
 * behind NAT is never authorised: nat says why instead.
 */
static void
spf_egress(const struct config *c, int family, struct ctl_dns_opts *o, char *nat, size_t natlen)
{
	const char *key = family == AF_INET ? "source_ipv4" : "source_ipv6", *why;
	char v = family == AF_INET ? '4' : '6', text[INET6_ADDRSTRLEN];
	struct spf_ip ip;
	enum ctl_egress_from from = ctl_egress_ip(c, family, &ip);

	if (from == CTL_EGRESS_NONE)
		return;
	spf_ip_format(&ip, text, sizeof text);
	if (from == CTL_EGRESS_KERNEL && (why = ctl_ip_nonpublic(&ip)) != NULL) {
		snprintf(nat, natlen,
		         ", and %s, the kernel's choice for outgoing IPv%c, is %s: behind NAT "
		         "receivers see another address",
		         text, v, why);
		return;
	}
	if (from == CTL_EGRESS_KERNEL)
		printf("note: %s sets no %s: %s is the address the kernel picks for outgoing IPv%c "
		       "(detected); pin it with \"%s %s\" in %s\n\n",
		       ctl_config_name(c), key, text, v, key, text, ctl_config_name(c));
	o->ips[o->nips++] = ip;
}

/*
 * The relay's egress addresses when none were given (spf_egress per
 * family). The config is loaded either way: its dns_servers serve every
 * lookup. -1: exit status in *rc.
 */
static int
spf_relay_ips(struct ctl_dns_opts *o, int *rc)
{
	struct config *c;
	char nat[300] = "";

	if (ctl_load_config(SPF_PROG, o->conf, &c) != 0) {
		*rc = 1;
		return -1;
	}
	if (o->nips == 0) {
		spf_egress(c, AF_INET, o, nat, sizeof nat);
		spf_egress(c, AF_INET6, o, nat, sizeof nat);
	}
	if (o->nips == 0) {
		fprintf(stderr,
		        SPF_PROG ": %s sets no source_ipv4 or source_ipv6%s: give the relay's "
		                 "addresses with --ip4/--ip6\n",
		        ctl_config_name(c), nat);
		*rc = 2;
	}
	config_free(c);
	return o->nips > 0 ? 0 : -1;
}

/*
 * The record to merge into: --current, or the one DOMAIN publishes (NULL:
 * none). *multiple is set when DNS holds several. -1 after printing why.
 */
static int
spf_current(const struct ctl_dns_opts *o, const char *domain, char **current, bool *multiple)
{
	struct dnsq_list l;
	enum dnsq_status st;

	*current = NULL;
	*multiple = false;
	if (o->current != NULL) {
		if (!spf_is_record(o->current)) {
			fprintf(
			    stderr, SPF_PROG
			    ": --current is not an SPF record (it must start with \"v=spf1\")\n");
			return -1;
		}
		*current = strdup(o->current);
		return *current != NULL ? 0 : -1;
	}
	st = ctl_spf_records(domain, &l);
	if (st == DNSQ_NODATA)
		return 0;
	if (st == DNSQ_NXDOMAIN) {
		fprintf(stderr, SPF_PROG ": %s: no such domain (NXDOMAIN)\n", domain);
		return -1;
	}
	if (st != DNSQ_OK) {
		fprintf(stderr,
		        SPF_PROG
		        ": cannot look up the SPF record of %s (%s): give it with --current\n",
		        domain, dnsq_strerror(st));
		return -1;
	}
	*multiple = l.n > 1;
	*current = l.v[0];
	for (size_t i = 1; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return 0;
}

static void
spf_print(const char *domain, const char *current, const struct ctl_dns_opts *o,
          const struct spf_merge *m, unsigned warnings, const struct spf_count *cnt)
{
	char *zone = NULL, mech[64];

	printf("SPF record for %s\n", domain);
	printf("  published now: %s\n", current != NULL ? current : "(none)");
	printf("  added:        ");
	if (m->added == 0)
		printf(" nothing (the relay's addresses are already authorised)");
	for (size_t i = 0; i < o->nips && i < 32; i++) {
		if (m->added_ips & (1u << i)) {
			spf_ip_mechanism(&o->ips[i], mech, sizeof mech);
			printf(" %s", mech);
		}
	}
	printf("\n\n");
	if (spf_zone_line(domain, m->record, &zone) == 0)
		ctl_print_txt(stdout, domain, zone, m->record);
	free(zone);
	printf("\nDNS lookups: %d of %d", cnt->total, SPF_LOOKUP_LIMIT);
	if (cnt->not_followed > 0)
		printf(" or more (%d not followed: %s)", cnt->not_followed, cnt->problem);
	printf("\n");
	if (current == NULL)
		printf("note: a new record ends in %s (softfail); once the relay and the servers "
		       "listed are the only senders for %s, change it to -all\n",
		       SPF_NEW_ALL, domain);
	for (unsigned b = 0; b < SPF_W_COUNT; b++)
		if (warnings & (1u << b))
			printf("warning: %s\n", spf_warning_text((enum spf_warning)(1u << b)));
}

static int
dns_spf(int argc, char **argv)
{
	struct ctl_dns_opts o;
	struct spf_merge m = {0};
	struct spf_lint lint;
	struct spf_count cnt;
	char domain[256], why[512], *current = NULL;
	bool multiple;
	int rc = spf_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	rc = 1;
	if (ctl_domain_arg(SPF_PROG, o.domain, domain) != 0 || spf_relay_ips(&o, &rc) != 0)
		return rc;
	rc = 1;
	if (spf_current(&o, domain, &current, &multiple) != 0)
		goto done;
	if (current != NULL && spf_validate(current, why, sizeof why) != 0) {
		fprintf(stderr, SPF_PROG ": the current SPF record of %s is malformed: %s\n",
		        domain, why);
		goto done;
	}
	if (spf_merge(current, o.ips, o.nips, &m, why, sizeof why) != 0 ||
	    spf_validate(m.record, why, sizeof why) != 0 ||
	    spf_lint(m.record, &lint, why, sizeof why) != 0) {
		fprintf(stderr, SPF_PROG ": %s: %s\n", domain, why);
		goto done;
	}
	spf_count_lookups(m.record, ctl_spf_fetch, NULL, &cnt);
	lint.warnings &= ~(unsigned)SPF_W_LOOKUPS;
	if (cnt.total > SPF_LOOKUP_LIMIT)
		lint.warnings |= SPF_W_LOOKUPS;
	spf_print(domain, current, &o, &m,
	          lint.warnings | m.warnings | (multiple ? SPF_W_MULTIPLE : 0), &cnt);
	rc = 0;
done:
	spf_merge_free(&m);
	free(current);
	return rc;
}

/* ---- dispatch ---- */

int
ctl_dns(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
	    {"spf", dns_spf},
	    {"dmarc", ctl_dns_dmarc},
	    {"spf-eval", ctl_dns_spf_eval},
	    {"dkim", ctl_dns_dkim},
	    {"check", ctl_dns_check},
	};

	if (argc < 2)
		return usage_error("mxrelayctl dns", "expected spf, dmarc, dkim, check or spf-eval", NULL);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		return ctl_help(ctl_dns_usage);
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	return usage_error("mxrelayctl dns", "unknown sub-command", argv[1]);
}
