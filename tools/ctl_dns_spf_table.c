/*
 * ctl_dns_spf_table: what `mxrelayctl dns spf` proves before printing a
 * record: the RFC 7208 check_host() result, today and with the printed
 * record, for the relay and for a sender of each include (see
 * tools/ctl_dns_spf.h).
 *
 * Why: a merge that drops an include (say Exchange Online's) stops that
 * sender's mail from passing, and nobody notices until mail bounces. An
 * address that passed and would not is a bug in the merge: dns spf then
 * refuses to print the record.
 */
#include "tools/ctl.h"
#include "tools/ctl_dns_spf.h"
#include "tools/spfeval.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define OTHER_IP "192.0.2.1" /* TEST-NET-1 (RFC 5737): authorised by nobody */
#define MAX_SOURCES 8        /* published records sampled one by one */
#define PER_SOURCE 16        /* sample addresses taken from each */
#define MAX_SAMPLES (CTL_MAX_IPS + SPF_TARGETS_MAX + MAX_SOURCES * PER_SOURCE + 1)

struct sample {
	struct spf_ip ip;
	char label[300];
	bool must_keep; /* relay and include samples; not the other address */
	enum spf_result before, after;
	enum spf_result best_source; /* pass when any source record alone passes it */
};

struct spf_table {
	char sender[300];
	char before_why[512]; /* why the first sample's before is not pass */
	char after_why[512];  /* why a relay sample does not pass after */
	struct sample v[MAX_SAMPLES];
	size_t n;
	size_t nrelay; /* the first nrelay samples are the relay's addresses */
};

/*
 * The lookups with the inclusion form's _spfN.DOMAIN records answered
 * from memory: the "after" column evaluates them as if published.
 */
static const struct spf_join *overlay;

static enum dnsq_status
overlay_txt(void *ctx, const char *name, struct dnsq_list *out)
{
	size_t n = strlen(name);

	n -= n > 0 && name[n - 1] == '.';
	for (size_t i = 0; overlay != NULL && i < overlay->nparts; i++) {
		if (strlen(overlay->part_name[i]) != n ||
		    strncasecmp(overlay->part_name[i], name, n) != 0)
			continue;
		out->v = calloc(1, sizeof *out->v);
		if (out->v == NULL || (out->v[0] = strdup(overlay->part_record[i])) == NULL) {
			free(out->v);
			return DNSQ_FAIL;
		}
		out->n = 1;
		return DNSQ_OK;
	}
	return spf_dns_system()->txt(ctx, name, out);
}

static const struct spf_dns *
dns_with_overlay(void)
{
	static struct spf_dns d;

	d = *spf_dns_system();
	d.txt = overlay_txt;
	return &d;
}

static enum spf_result
eval(const char *domain, const struct spf_ip *ip, const char *sender, const char *record, char *why,
     size_t whylen)
{
	struct spf_eval ev;
	struct spf_eval_opts o;
	enum spf_result r;

	memset(&ev, 0, sizeof ev);
	memset(&o, 0, sizeof o);
	o.record = record;
	if (spf_eval(dns_with_overlay(), ip, sender, domain, &o, &ev) != 0)
		ev.result = SPF_R_PERMERROR;
	r = ev.result;
	if (why != NULL)
		snprintf(why, whylen, "%s", ev.why);
	spf_eval_free(&ev);
	return r;
}

static bool
have_sample(const struct spf_table *t, const struct spf_ip *ip)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].ip.family == ip->family && memcmp(t->v[i].ip.addr, ip->addr, 16) == 0)
			return true;
	return false;
}

/* With several published records: the first address each authorises, for the per-record check. */
static void
add_source_samples(struct spf_table *t, char *const *sources, size_t nsources)
{
	for (size_t k = 0; k < nsources && k < MAX_SOURCES && nsources > 1; k++) {
		struct spf_ip ips[PER_SOURCE];
		size_t n = spf_sample_ips(sources[k], ctl_spf_fetch, NULL, ips, PER_SOURCE);

		for (size_t i = 0; i < n && t->n < MAX_SAMPLES - 1; i++) {
			struct sample *s = &t->v[t->n];

			if (have_sample(t, &ips[i]))
				continue;
			s->ip = ips[i];
			snprintf(s->label, sizeof s->label, "published record %zu", k + 1);
			s->must_keep = true;
			t->n++;
		}
	}
}

/* The samples: relay addresses, one per include target, the other address. */
static void
add_samples(struct spf_table *t, const char *after, const struct spf_ip *ips, size_t nips)
{
	char targets[SPF_TARGETS_MAX][256], *rec, why[200];
	size_t nt = spf_include_targets(after, targets, SPF_TARGETS_MAX);

	for (size_t i = 0; i < nips && t->n < MAX_SAMPLES; i++, t->n++) {
		t->v[t->n].ip = ips[i];
		snprintf(t->v[t->n].label, sizeof t->v[t->n].label, "the relay");
		t->v[t->n].must_keep = true;
	}
	t->nrelay = t->n;
	for (size_t i = 0; i < nt && t->n < MAX_SAMPLES - 1; i++) {
		struct sample *s = &t->v[t->n];

		if (ctl_spf_fetch(NULL, targets[i], &rec, why, sizeof why) != 0)
			continue;
		if (spf_sample_ip(rec, ctl_spf_fetch, NULL, &s->ip) == 0) {
			snprintf(s->label, sizeof s->label, "include:%s", targets[i]);
			s->must_keep = true;
			t->n++;
		}
		free(rec);
	}
	spf_ip_parse(OTHER_IP, AF_INET, &t->v[t->n].ip);
	snprintf(t->v[t->n].label, sizeof t->v[t->n].label, "an address nobody lists");
	t->n++;
}

struct spf_table *
ctl_spf_table_eval(const char *domain, const char *before_record, char *const *sources,
                   size_t nsources, const char *after, const struct spf_join *join,
                   const struct spf_ip *ips, size_t nips)
{
	struct spf_table *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	overlay = join;
	snprintf(t->sender, sizeof t->sender, "postmaster@%s", domain);
	add_samples(t, after, ips, nips);
	/* the other address stays last */
	t->v[MAX_SAMPLES - 1] = t->v[--t->n];
	add_source_samples(t, sources, nsources);
	t->v[t->n++] = t->v[MAX_SAMPLES - 1];
	for (size_t i = 0; i < t->n; i++) {
		struct sample *s = &t->v[i];
		char why[512];

		s->before = eval(domain, &s->ip, t->sender, before_record, why, sizeof why);
		if (i == 0 && s->before != SPF_R_PASS)
			snprintf(t->before_why, sizeof t->before_why, "%s", why);
		s->after = eval(domain, &s->ip, t->sender, after, why, sizeof why);
		if (i < t->nrelay && s->after != SPF_R_PASS && t->after_why[0] == '\0')
			snprintf(t->after_why, sizeof t->after_why, "%s", why);
		s->best_source = SPF_R_PERMERROR;
		for (size_t k = 0; k < nsources && nsources > 1; k++)
			if (eval(domain, &s->ip, t->sender, sources[k], NULL, 0) == SPF_R_PASS)
				s->best_source = SPF_R_PASS;
	}
	return t;
}

int
ctl_spf_table_check(const struct spf_table *t, FILE *err)
{
	char a[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < t->n; i++) {
		const struct sample *s = &t->v[i];

		if (s->after == SPF_R_PASS)
			continue;
		spf_ip_format(&s->ip, a, sizeof a);
		/* the relay not passing after is the record's failure, whatever it was before */
		if (i < t->nrelay) {
			fprintf(
			    err,
			    "mxrelayctl dns spf: the printed record would not pass the relay %s "
			    "(%s with it: %s): not printing it\n",
			    a, spf_result_name(s->after), t->after_why);
			return -1;
		}
		if (s->before != SPF_R_PASS && s->best_source != SPF_R_PASS)
			continue;
		fprintf(err,
		        "mxrelayctl dns spf: BUG: the merged record would stop %s (%s) from "
		        "passing SPF (%s today%s, %s with the merged record); not printing it\n",
		        a, s->label, spf_result_name(s->before),
		        s->best_source == SPF_R_PASS ? ", pass under one of the published records"
		                                     : "",
		        spf_result_name(s->after));
		return -1;
	}
	return 0;
}

void
ctl_spf_table_print(const struct spf_table *t, FILE *f)
{
	char a[INET6_ADDRSTRLEN];

	fprintf(f, "\nSPF evaluation (RFC 7208 check_host, MAIL FROM %s):\n", t->sender);
	fprintf(f, "  %-40s %-42s %-10s %s\n", "address", "sample of", "before", "after");
	for (size_t i = 0; i < t->n; i++) {
		const struct sample *s = &t->v[i];

		spf_ip_format(&s->ip, a, sizeof a);
		fprintf(f, "  %-40s %-42s %-10s %s\n", a, s->label, spf_result_name(s->before),
		        spf_result_name(s->after));
	}
	if (t->before_why[0] != '\0')
		fprintf(f, "  before: %s\n", t->before_why);
	/* e.g. the relay's terms after an 11th lookup (RFC 7208 4.6.4): say why */
	if (t->after_why[0] != '\0')
		fprintf(f,
		        "  after: %s\nwarning: the printed record is a permerror for the relay: "
		        "remove lookups or includes first (mxrelayctl dns check lists them)\n",
		        t->after_why);
}

void
ctl_spf_table_free(struct spf_table *t)
{
	free(t);
}
