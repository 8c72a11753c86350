/*
 * mxrelayctl dns dmarc DOMAIN: the DMARC record to publish for DOMAIN and
 * how to tighten it (see tools/ctl_dns.c). Record text work is
 * tools/dmarc's.
 */
#include "tools/ctl.h"
#include "tools/dmarc.h"
#include "tools/dnsq.h"
#include "tools/spf.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dns dmarc ---- */

#define DMARC_PROG "mxrelayctl dns dmarc"

/* What _dmarc.DOMAIN holds now, as a note; a missing domain is an error (-1). */
static int
dmarc_published(const char *domain, const char *name)
{
	struct dnsq_list l;
	enum dnsq_status st = dnsq_exists(domain);

	if (st == DNSQ_NXDOMAIN) {
		fprintf(stderr, DMARC_PROG ": %s: no such domain (NXDOMAIN)\n", domain);
		return -1;
	}
	if (st != DNSQ_OK) {
		printf("\n"
		       "note: could not look up %s (%s); the record above does not depend on it\n",
		       domain, dnsq_strerror(st));
		return 0;
	}
	st = dnsq_txt(name, &l);
	if (st == DNSQ_OK) {
		for (size_t i = 0; i < l.n; i++)
			printf("\n%s publishes now: %s (replace it)\n", name, l.v[i]);
		dnsq_list_free(&l);
	} else if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		printf("\n%s publishes nothing yet.\n", name);
	}
	return 0;
}

static void
dmarc_advice(const char *domain, const struct dmarc_rua *r)
{
	printf("\n"
	       "Tighten it later, once the reports show that everything sending as %s\n"
	       "passes SPF or DKIM aligned (a few weeks of reports):\n"
	       "  1. p=quarantine; pct=25   then raise pct to 100\n"
	       "  2. p=reject               failing mail is refused\n"
	       "  3. adkim=s                when all mail is signed with d=%s exactly\n"
	       "     (aspf=s likewise when every envelope sender is in %s)\n",
	       domain, domain, domain);
	for (size_t i = 0; i < r->n; i++) {
		if (!dmarc_rua_external(domain, r->domain[i]))
			continue;
		printf("\n"
		       "note: reports go to %s, another domain: it must publish\n"
		       "  %s._report._dmarc.%s. IN TXT \"v=DMARC1\"\n"
		       "  (RFC 7489 7.1) or receivers send it nothing\n",
		       r->domain[i], domain, r->domain[i]);
	}
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
	char domain[256], name[300], rua_buf[300], err[512], *rec = NULL, *zone = NULL;
	const char *rua = NULL, *conf = NULL;
	struct dmarc_rua r;
	int ch, rc = 1;

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
		return ctl_usage_error(DMARC_PROG, ctl_dns_usage, "expected exactly one DOMAIN", NULL);
	if (ctl_domain_arg(DMARC_PROG, argv[optind], domain) != 0 ||
	    ctl_dns_setup(DMARC_PROG, conf) != 0) /* the config's dns_servers */
		return 1;
	if (rua == NULL) {
		snprintf(rua_buf, sizeof rua_buf, "mailto:dmarc@%s", domain);
		rua = rua_buf;
	}
	if (dmarc_starter(rua, &rec, err, sizeof err) != 0 ||
	    dmarc_rua_parse(rua, &r, err, sizeof err) != 0) {
		fprintf(stderr, DMARC_PROG ": --rua: %s\n", err);
		goto done;
	}
	snprintf(name, sizeof name, "_dmarc.%s", domain);
	if (spf_zone_line(name, rec, &zone) != 0) {
		fprintf(stderr, DMARC_PROG ": out of memory\n");
		goto done;
	}
	printf("DMARC record for %s (a starter: p=none only collects reports)\n"
	       "\n",
	       domain);
	ctl_print_txt(stdout, name, zone, rec);
	if (dmarc_published(domain, name) != 0)
		goto done;
	dmarc_advice(domain, &r);
	rc = 0;
done:
	free(rec);
	free(zone);
	return rc;
}
