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
#include "tools/ctl_dns_spf.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
#include "tools/spf_lint.h"
#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
		         "%s, the kernel's choice for outgoing IPv%c, is %s: behind NAT receivers "
		         "see another address",
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
		if (o->nips > 0 && nat[0] != '\0')
			printf("note: not authorised: %s; add the public one with --ip4/--ip6\n\n",
			       nat);
	}
	if (o->nips == 0) {
		fprintf(stderr,
		        SPF_PROG ": %s sets no source_ipv4 or source_ipv6%s%s: give the relay's "
		                 "addresses with --ip4/--ip6\n",
		        ctl_config_name(c), nat[0] ? ", and " : "", nat);
		*rc = 2;
	}
	config_free(c);
	return o->nips > 0 ? 0 : -1;
}

/*
 * The records to merge into: --current, or the SPF records DOMAIN
 * publishes (cur->n 0: none). -1 after printing why.
 */
static int
spf_current(const struct ctl_dns_opts *o, const char *domain, struct dnsq_list *cur)
{
	enum dnsq_status st;

	cur->v = NULL;
	cur->n = 0;
	if (o->current != NULL) {
		if (!spf_is_record(o->current)) {
			fprintf(
			    stderr, SPF_PROG
			    ": --current is not an SPF record (it must start with \"v=spf1\")\n");
			return -1;
		}
		cur->v = malloc(sizeof *cur->v);
		if (cur->v == NULL || (cur->v[0] = strdup(o->current)) == NULL)
			return -1;
		cur->n = 1;
		return 0;
	}
	st = ctl_spf_records(domain, cur);
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
	return 0;
}

/* What the join of several records did, one line each (RFC 7208 4.5). */
static void
spf_print_join(const struct spf_join *j)
{
	if (!j->by_include) {
		printf("  merged:        %zu records merged into one: every term of each kept, in "
		       "order",
		       j->records);
		if (j->duplicates > 0)
			printf(" (%u duplicate%s written once)", j->duplicates,
			       j->duplicates == 1 ? "" : "s");
		printf("\n");
	} else {
		printf(
		    "  merged:        %zu records, each published unchanged at a name of its own "
		    "and included (an include passes exactly when its record passes, RFC 7208 "
		    "5.2): %s\n",
		    j->records, j->why);
	}
	printf("  all:           %s%s\n", j->all,
	       j->all_differed ? " (the strictest of the records' defaults: -all > ~all > ?all; "
	                         "a redirect= counts with its target's)"
	                       : "");
}

/* The inclusion form's records, as zone lines to add before changing the domain's. */
static void
spf_print_parts(const struct spf_join *j)
{
	char *zone = NULL;

	if (!j->by_include)
		return;
	printf("Publish first (each record as it is today, at its own name):\n");
	for (size_t i = 0; i < j->nparts; i++) {
		if (spf_zone_line(j->part_name[i], j->part_record[i], &zone) == 0)
			printf("  %s\n", zone);
		free(zone);
		zone = NULL;
	}
	printf("then replace the records at the domain with:\n");
}

/* spf_fetch_fn that answers the inclusion form's names from j, else DNS. */
static int
spf_fetch_joined(void *ctx, const char *domain, char **record, char *why, size_t whylen)
{
	const struct spf_join *j = ctx;

	for (size_t i = 0; j != NULL && i < j->nparts; i++)
		if (strcasecmp(j->part_name[i], domain) == 0) {
			*record = strdup(j->part_record[i]);
			return *record != NULL ? 0 : -1;
		}
	return ctl_spf_fetch(NULL, domain, record, why, whylen);
}

static void
spf_print(const char *domain, const struct dnsq_list *cur, const struct spf_join *j,
          const struct ctl_dns_opts *o, const struct spf_merge *m, unsigned warnings,
          const struct spf_count *cnt)
{
	char *zone = NULL, mech[64];

	printf("SPF record for %s\n", domain);
	if (cur->n <= 1)
		printf("  published now: %s\n", cur->n == 1 ? cur->v[0] : "(none)");
	else
		printf("  published now: %zu SPF records, a permerror for every sender (RFC 7208 "
		       "4.5):\n",
		       cur->n);
	for (size_t i = 0; i < cur->n && cur->n > 1; i++)
		printf("    %zu: %s\n", i + 1, cur->v[i]);
	if (j->record != NULL)
		spf_print_join(j);
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
	spf_print_parts(j);
	if (spf_zone_line(domain, m->record, &zone) == 0)
		ctl_print_txt(stdout, domain, zone, m->record);
	free(zone);
	printf("\nDNS lookups: %d of %d", cnt->total, SPF_LOOKUP_LIMIT);
	if (cnt->not_followed > 0)
		printf(" or more (%d not followed: %s)", cnt->not_followed, cnt->problem);
	printf("\n");
	if (cur->n == 0)
		printf("note: a new record ends in %s (softfail); once the relay and the servers "
		       "listed are the only senders for %s, change it to -all\n",
		       SPF_NEW_ALL, domain);
	for (unsigned b = 0; b < SPF_W_COUNT; b++)
		if (warnings & (1u << b))
			printf("warning: %s\n", spf_warning_text((enum spf_warning)(1u << b)));
}

/* Each published record compiles; several are joined into j. The base record or NULL. */
static int
spf_base(const char *domain, const struct dnsq_list *cur, struct spf_join *j, const char **base)
{
	char why[512];

	*base = NULL;
	for (size_t i = 0; i < cur->n; i++) {
		if (spf_validate(cur->v[i], why, sizeof why) != 0) {
			fprintf(stderr,
			        SPF_PROG ": the current SPF record of %s is malformed: %s\n",
			        domain, why);
			return -1;
		}
	}
	if (cur->n == 1)
		*base = cur->v[0];
	if (cur->n > 1) {
		if (spf_join(domain, (const char *const *)cur->v, cur->n, ctl_spf_fetch, NULL, j,
		             why, sizeof why) != 0) {
			fprintf(stderr, SPF_PROG ": %s: cannot merge its SPF records: %s\n", domain,
			        why);
			return -1;
		}
		*base = j->record;
	}
	return 0;
}

/* The merged record passes the evaluator's syntax rules (RFC 7208 4.6, 12). */
static int
spf_syntax_ok(const char *record, char *why, size_t whylen)
{
	struct spf_findings f;

	if (spf_lint_terms(record, &f) != 0)
		return -1;
	for (int code = SPF_F_SYNTAX; code <= SPF_F_TWICE; code++)
		if (f.f[code].count > 0) {
			snprintf(why, whylen, "the merged record breaks RFC 7208 (%s: %s)",
			         spf_finding_name((enum spf_fcode)code), f.f[code].what);
			return -1;
		}
	return 0;
}

static int
dns_spf(int argc, char **argv)
{
	struct ctl_dns_opts o;
	struct spf_merge m = {0};
	struct spf_join j = {0};
	struct spf_lint lint;
	struct spf_count cnt;
	struct dnsq_list cur = {NULL, 0};
	struct spf_table *table = NULL;
	char domain[256], why[512];
	const char *base;
	int rc = spf_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	rc = 1;
	if (ctl_domain_arg(SPF_PROG, o.domain, domain) != 0 || spf_relay_ips(&o, &rc) != 0)
		return rc;
	rc = 1;
	if (spf_current(&o, domain, &cur) != 0 || spf_base(domain, &cur, &j, &base) != 0)
		goto done;
	/* joined records: the relay first, so no record's -/~/? term can fail it (4.6.2) */
	if ((cur.n > 1 ? spf_merge_first : spf_merge)(base, o.ips, o.nips, &m, why, sizeof why) !=
	        0 ||
	    spf_validate(m.record, why, sizeof why) != 0 ||
	    spf_syntax_ok(m.record, why, sizeof why) != 0 ||
	    spf_lint(m.record, &lint, why, sizeof why) != 0) {
		fprintf(stderr, SPF_PROG ": %s: %s\n", domain, why);
		goto done;
	}
	spf_count_lookups(m.record, spf_fetch_joined, &j, &cnt);
	if (cur.n > 1 && cnt.total > SPF_LOOKUP_LIMIT) {
		fprintf(stderr,
		        SPF_PROG
		        ": %s: the %zu records together need %d DNS lookups, over the limit "
		        "of %d (RFC 7208 4.6.4: receivers answer permerror once a sender's "
		        "evaluation reaches the 11th): drop includes no longer used and "
		        "replace a/mx terms by the ip4:/ip6: addresses they stand for, then "
		        "run this again\n",
		        domain, cur.n, cnt.total, SPF_LOOKUP_LIMIT);
		goto done;
	}
	table = ctl_spf_table_eval(domain, o.current, cur.n > 1 ? cur.v : NULL, cur.n, m.record,
	                           cur.n > 1 ? &j : NULL, o.ips, o.nips);
	if (table == NULL || ctl_spf_table_check(table, stderr) != 0)
		goto done;
	lint.warnings &= ~(unsigned)SPF_W_LOOKUPS;
	if (cnt.total > SPF_LOOKUP_LIMIT)
		lint.warnings |= SPF_W_LOOKUPS;
	spf_print(domain, &cur, &j, &o, &m,
	          lint.warnings | m.warnings | (cur.n > 1 ? SPF_W_MULTIPLE : 0), &cnt);
	ctl_spf_table_print(table, stdout);
	rc = 0;
done:
	ctl_spf_table_free(table);
	spf_merge_free(&m);
	spf_join_free(&j);
	dnsq_list_free(&cur);
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
