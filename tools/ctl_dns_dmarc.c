/*
 * mxrelayctl dns dmarc DOMAIN: the DMARC record to publish for DOMAIN and
 * how to tighten it (see tools/ctl_dns.c). Record text work is
 * tools/dmarc's; finding the record (RFC 7489 6.6.3) is ctl_dmarc_find,
 * shared with dns check (tools/ctl_dmarc.h).
 *
 * Never weaker (issue 14): when DOMAIN or its organisational domain
 * already publishes a valid record, the proposal keeps its policy, pct,
 * alignment modes and report addresses and only adds what is missing; the
 * p=none starter is only for a domain with no usable record.
 */
#include "tools/ctl.h"
#include "tools/ctl_dmarc.h"
#include "tools/dmarc.h"
#include "tools/dnsq.h"
#include "tools/json.h"
#include "tools/orgdomain.h"
#include "tools/spf.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- finding the record (RFC 7489 6.6.3) ---- */

/* The records at _dmarc.AT that start with v=DMARC1 into f (f->st, f->where set). */
static void
find_at(const char *at, struct ctl_dmarc_found *f)
{
	struct dnsq_list all = {NULL, 0};

	snprintf(f->at, sizeof f->at, "%s", at);
	snprintf(f->where, sizeof f->where, "_dmarc.%s", at);
	f->st = dnsq_txt(f->where, &all);
	if (f->st != DNSQ_OK)
		return;
	f->l.v = calloc(all.n, sizeof *f->l.v);
	for (size_t i = 0; f->l.v != NULL && i < all.n; i++) {
		if (dmarc_is_record(all.v[i])) {
			f->l.v[f->l.n++] = all.v[i];
			all.v[i] = NULL;
		}
	}
	if (f->l.n == 0)
		f->st = DNSQ_NODATA; /* 6.6.3 step 3: other TXT records are discarded */
	dnsq_list_free(&all);
}

void
ctl_dmarc_find(const char *domain, struct ctl_dmarc_found *f)
{
	char org[256];

	memset(f, 0, sizeof *f);
	find_at(domain, f);
	if (f->l.n > 0 || f->st == DNSQ_FAIL)
		return;
	/* 6.6.3 step 3: no record at the domain: the organisational domain's */
	if (orgdomain_get(domain, org, sizeof org) != 0 || strcasecmp(org, domain) == 0)
		return;
	ctl_dmarc_found_free(f);
	f->org = true;
	find_at(org, f);
}

void
ctl_dmarc_found_free(struct ctl_dmarc_found *f)
{
	dnsq_list_free(&f->l);
}

/* ---- dns dmarc ---- */

#define DMARC_PROG "mxrelayctl dns dmarc"

static void
print_record(const char *name, const char *rec)
{
	char *zone = NULL;

	if (spf_zone_line(name, rec, &zone) != 0) {
		fprintf(stderr, DMARC_PROG ": out of memory\n");
		return;
	}
	ctl_print_txt(stdout, name, zone, rec);
	free(zone);
}

/* RFC 7489 7.1 for every report address in another organisational domain. */
static void
report_notes(const char *at, const char *rua)
{
	struct dmarc_rua r;
	char err[256];

	if (rua == NULL || rua[0] == '\0' || dmarc_rua_parse(rua, &r, err, sizeof err) != 0)
		return;
	for (size_t i = 0; i < r.n; i++) {
		if (!dmarc_rua_external(at, r.domain[i]))
			continue;
		printf("\n"
		       "note: reports go to %s, another organisational domain: it must publish\n"
		       "  %s._report._dmarc.%s. IN TXT \"v=DMARC1\"\n"
		       "  (RFC 7489 7.1) or receivers send it nothing\n",
		       r.domain[i], at, r.domain[i]);
	}
}

static void
tighten_advice(const char *domain, const struct dmarc_record *r)
{
	if (strcmp(r->p, "reject") == 0 && r->pct == 100)
		return;
	if (strcmp(r->p, "none") != 0) {
		if (r->pct < 100)
			printf("\nRaise pct to 100 once the reports show that everything sending "
			       "as %s\n"
			       "passes SPF or DKIM aligned.\n",
			       domain);
		return;
	}
	printf("\n"
	       "Tighten it later, once the reports show that everything sending as %s\n"
	       "passes SPF or DKIM aligned (a few weeks of reports):\n"
	       "  1. p=quarantine; pct=25   then raise pct to 100\n"
	       "  2. p=reject               failing mail is refused\n"
	       "  3. adkim=s                when all mail is signed with d=%s exactly\n"
	       "     (aspf=s likewise when every envelope sender is in %s)\n",
	       domain, domain, domain);
}

static int
policy_rank(const char *p)
{
	return strcmp(p, "reject") == 0 ? 2 : strcmp(p, "quarantine") == 0 ? 1 : 0;
}

/* The strongest valid record of f into best; false when none parses. */
static bool
strongest(const struct ctl_dmarc_found *f, struct dmarc_record *best, size_t *which)
{
	struct dmarc_record r;
	char why[256];
	bool any = false;

	for (size_t i = 0; i < f->l.n; i++) {
		if (dmarc_parse(f->l.v[i], &r, why, sizeof why) != 0)
			continue;
		if (!any || policy_rank(r.p) > policy_rank(best->p)) {
			*best = r;
			*which = i;
		}
		any = true;
	}
	return any;
}

/*
 * DOMAIN has a valid record (cur, at f->where): keep it, adding only what
 * it lacks: add_rua (--rua, else mailto:dmarc@ when it has no rua=).
 */
static int
keep_published(const char *domain, const char *add_rua, const struct ctl_dmarc_found *f,
               const struct dmarc_record *cur, size_t which)
{
	char *rec = NULL, *changes = NULL, err[256];

	if (dmarc_propose(cur, add_rua, &rec, &changes, err, sizeof err) != 0) {
		fprintf(stderr, DMARC_PROG ": %s\n", err);
		return 1;
	}
	if (f->org)
		printf("%s has no record of its own: %s's applies to it with %s=%s "
		       "(RFC 7489 6.6.3).\n\n",
		       domain, f->at, cur->sp[0] ? "sp" : "p", cur->sp[0] ? cur->sp : cur->p);
	if (changes[0] == '\0' && f->l.n == 1) {
		printf("%s publishes a valid DMARC record (p=%s): keep it.\n\n  ", f->where,
		       cur->p);
		json_write_text(stdout, f->l.v[which]); /* DNS data: no escape sequences */
		putchar('\n');
	} else {
		printf(
		    "DMARC record for %s: the published policy (p=%s) kept, never weakened%s%s\n\n",
		    f->at, cur->p, changes[0] ? "; it " : "", changes);
		print_record(f->where, rec);
		for (size_t i = 0; i < f->l.n; i++) {
			printf("\n%s publishes now: ", f->where);
			json_write_text(stdout, f->l.v[i]);
			printf(" (replace it%s)\n",
			       f->l.n > 1 ? ": with several records none applies, RFC 7489 6.6.3"
			                  : "");
		}
	}
	tighten_advice(f->at, cur);
	report_notes(f->at, cur->rua_list);
	if (strstr(changes, "adds rua=") != NULL)
		report_notes(f->at, add_rua);
	report_notes(f->at, cur->ruf_list);
	free(rec);
	free(changes);
	return 0;
}

/* No usable record: the p=none starter at _dmarc.DOMAIN. */
static int
starter(const char *domain, const char *rua, const struct ctl_dmarc_found *f)
{
	char name[300], err[512], *rec = NULL;
	struct dmarc_record none = {.p = "none", .pct = 100};

	if (dmarc_starter(rua, &rec, err, sizeof err) != 0) {
		fprintf(stderr, DMARC_PROG ": --rua: %s\n", err);
		return 1;
	}
	snprintf(name, sizeof name, "_dmarc.%s", domain);
	printf("DMARC record for %s (a starter: p=none only collects reports)\n\n", domain);
	print_record(name, rec);
	if (f->l.n == 0) /* a failed lookup never gets here (lookup_failed) */
		printf("\n%s publishes nothing yet.\n", name);
	for (size_t i = 0; i < f->l.n; i++) {
		printf("\n%s publishes now: ", f->where);
		json_write_text(stdout, f->l.v[i]);
		printf(" (not valid: replace it)\n");
	}
	tighten_advice(domain, &none);
	report_notes(domain, rua);
	free(rec);
	return 0;
}

/* true (with the error printed) when what DOMAIN publishes is unknown: a proposal could weaken it */
static bool
lookup_failed(const char *domain, enum dnsq_status st, const struct ctl_dmarc_found *f)
{
	if (st == DNSQ_OK && !(f->l.n == 0 && f->st == DNSQ_FAIL))
		return false;
	if (st == DNSQ_NXDOMAIN) {
		fprintf(stderr, DMARC_PROG ": %s: no such domain (NXDOMAIN)\n", domain);
		return true;
	}
	fprintf(stderr,
	        DMARC_PROG ": lookup of %s failed (%s): cannot tell which policy it publishes, "
	                   "so no record is proposed; fix the DNS answer and run again\n",
	        st != DNSQ_OK ? domain : f->where, dnsq_strerror(st != DNSQ_OK ? st : f->st));
	return true;
}

int
ctl_dns_dmarc(int argc, char **argv)
{
	enum { OPT_RUA = 256 };
	static const struct option longopts[] = {
	    {"rua", required_argument, NULL, OPT_RUA},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char domain[256], rua_buf[300], err[512];
	const char *rua = NULL, *conf = NULL;
	struct ctl_dmarc_found f;
	struct dmarc_record cur;
	struct dmarc_rua r;
	enum dnsq_status st;
	size_t which = 0;
	int ch, rc;

	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_RUA:
			rua = optarg;
			break;
		case 'c':
			conf = optarg;
			break;
		default:
			return ctl_opt_end(ch, argv, DMARC_PROG, ctl_dns_usage);
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error(DMARC_PROG, ctl_dns_usage, "expected exactly one DOMAIN",
		                       NULL);
	if (ctl_domain_arg(DMARC_PROG, argv[optind], domain) != 0 ||
	    ctl_dns_setup(DMARC_PROG, conf) != 0) /* the config's dns_servers */
		return 1;
	snprintf(rua_buf, sizeof rua_buf, "mailto:dmarc@%s", domain);
	if (dmarc_rua_parse(rua ? rua : rua_buf, &r, err, sizeof err) != 0) {
		fprintf(stderr, DMARC_PROG ": --rua: %s\n", err);
		return 1;
	}
	st = dnsq_exists(domain);
	memset(&f, 0, sizeof f);
	if (st == DNSQ_OK)
		ctl_dmarc_find(domain, &f);
	if (lookup_failed(domain, st, &f)) {
		ctl_dmarc_found_free(&f);
		return 1;
	}
	if (strongest(&f, &cur, &which)) {
		snprintf(rua_buf, sizeof rua_buf, "mailto:dmarc@%s", f.at);
		rc = keep_published(domain, rua ? rua : cur.rua ? NULL : rua_buf, &f, &cur, which);
	} else {
		rc = starter(domain, rua ? rua : rua_buf, &f);
	}
	ctl_dmarc_found_free(&f);
	return rc;
}
