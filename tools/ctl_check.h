/*
 * ctl_check: the state of one `mxrelayctl dns check` run, shared by
 * tools/ctl_check.c (the command) and the files of its checks:
 * ctl_check_spf.c (the published SPF record and its limits),
 * ctl_check_spfip.c (spf-ip: tools/spfeval's verdict per egress address),
 * ctl_check_dkim.c, ctl_check_dmarc.c (dmarc, dmarc-alignment),
 * ctl_check_host.c (fcrdns, mx, exchange-online), ctl_check_dnsbl.c,
 * ctl_check_port25.c and ctl_check_report.c (the report: check_add,
 * output, the --all summary table). Private to those files.
 */
#ifndef MXRELAY_TOOLS_CTL_CHECK_H
#define MXRELAY_TOOLS_CTL_CHECK_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>

#include "tools/ctl.h"
#include "tools/dmarc.h"
#include "tools/spf.h"

struct spf_findings;

enum status { ST_PASS, ST_WARN, ST_FAIL };

struct check {
	char *name;
	enum status st;
	char *detail;
	char *fix; /* NULL when there is nothing to do */
};

struct report {
	struct check *v;
	size_t n;
};

struct ctx {
	const char *domain;
	const char *conf_name;
	const char *helo;
	const struct config *cfg;
	struct spf_ip ips[CTL_MAX_IPS];
	size_t nips;
	char ipstr[CTL_MAX_IPS][INET6_ADDRSTRLEN];
	bool spf_ok;       /* exactly one record that compiles */
	char *spf_record;  /* that record */
	bool spf_ips_pass; /* every egress IP passes SPF */
	int dkim_pass;     /* selectors whose record matches */
	bool dmarc_ok;
	struct dmarc_record dmarc;
	/* the findings of spf_record (tools/spf_lint.h), NULL if none */
	struct spf_findings *spf_find;
	/* a finding makes spf_record a permerror for every address */
	bool spf_permerror;
	struct report r;
};

/* printf into a new string; a CLI may abort on out-of-memory */
char *check_fmt(const char *f, ...);

/*
 * Add a check; detail and fix are strings from check_fmt() (fix may be
 * NULL), owned by the report from then on.
 */
void check_add(struct ctx *c, const char *name, enum status st, char *detail, char *fix);

/*
 * Print the report (text, or JSON when json) on stdout; returns the worst
 * status of its checks.
 */
enum status check_print(const struct ctx *c, bool json);
/*
 * dns check --all: the host's checks (host->r), then each domain's report
 * (doms[0..n)), as the summary table with the details of what did not
 * pass, or as one JSON document. Returns the worst status of them all.
 */
enum status check_print_all(const struct ctx *host, const struct ctx *doms, size_t n, bool json);
/* The exit status for a worst status: 0 pass, 3 warn, 1 fail. */
int check_exit_status(enum status worst);
/* Free the checks of r (and their strings); r is empty afterwards. */
void check_report_free(struct report *r);

/* dkim SELECTOR: one check per dkim_key of the domain (sets dkim_pass). */
void check_dkim(struct ctx *c);
/* dmarc: the published policy (sets dmarc_ok and dmarc). */
void check_dmarc(struct ctx *c);
/* dmarc-alignment: from dkim_pass and spf_ips_pass; nothing when !dmarc_ok. */
void check_alignment(struct ctx *c);
/* fcrdns IP: egress address ips[i] -> PTR -> A/AAAA, and the HELO name. */
void check_fcrdns(struct ctx *c, size_t i);
/*
 * egress IP: the relay's outgoing address per family and where it comes
 * from (given: --ip4/--ip6 were); WARN behind NAT. A detected public address
 * joins ips when none was given or set (tools/ctl_check_egress.c).
 */
void check_egress(struct ctx *c, bool given);
/* mx: the domain receives mail (bounces and reports reach it); exchange-online. */
void check_mx(struct ctx *c);
/* dnsbl: the egress addresses on the config's (or built-in) blocklists (ctl_check_dnsbl.c). */
void check_dnsbl(struct ctx *c);
/* port25 DOMAIN: DOMAIN's MX answers on port 25 from here (ctl_check_port25.c). */
void check_port25(struct ctx *c, const char *domain);

/* spf: the published record (sets spf_ok and spf_record). */
void check_spf_record(struct ctx *c);
/* spf-ip: tools/spfeval's verdict for each egress address (sets spf_ips_pass; tools/ctl_check_spfip.c). */
void check_spf_ips(struct ctx *c);
/* spf-lookups: the DNS lookups of the record, through includes. */
void check_spf_lookups(struct ctx *c);
/*
 * When check_host() answers permerror for an egress address, the spf and
 * spf-* lines that say pass become fail with its reason: nothing in the
 * report says PASS for SPF where receivers answer permerror
 * (ctl_check_spf.c; the spf-ip lines are the evaluator's own).
 */
void check_spf_no_false_pass(struct ctx *c);
/* Silence libspf2's warning and info hooks for the rest of the run. */
void check_spf_quiet(void);

#endif
