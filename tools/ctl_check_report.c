/*
 * ctl_check_report: the report of `mxrelayctl dns check`: checks added one
 * by one (ctl_check.c, ctl_check_spf.c), then printed as text or JSON. It
 * calls neither checking file, so both depend on it one way.
 */
#include "tools/ctl_check.h"
#include "tools/json.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "mxrelayctl dns check"

static const char *const status_name[] = {"pass", "warn", "fail"};

char *
check_fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0) {
		fputs(PROG ": out of memory\n", stderr);
		abort();
	}
	va_end(ap);
	return s;
}

void
check_add(struct ctx *c, const char *name, enum status st, char *detail, char *fix)
{
	struct check *nv = realloc(c->r.v, (c->r.n + 1) * sizeof *nv);

	if (nv == NULL) {
		fputs(PROG ": out of memory\n", stderr);
		abort();
	}
	c->r.v = nv;
	nv[c->r.n].name = check_fmt("%s", name);
	nv[c->r.n].st = st;
	nv[c->r.n].detail = detail;
	nv[c->r.n].fix = fix;
	c->r.n++;
}

/* ---- output ---- */

/* one JSON string writer for tools/ (json.c): strict UTF-8 whatever DNS held */
static void
json_string(FILE *f, const char *s)
{
	json_write_str(f, s);
}

/* The checks of r as a JSON array, one per line. */
static void
print_checks_json(const struct report *r)
{
	printf("[");
	for (size_t i = 0; i < r->n; i++) {
		const struct check *k = &r->v[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		json_string(stdout, k->name);
		printf(", \"status\": \"%s\", \"detail\": ", status_name[k->st]);
		json_string(stdout, k->detail);
		printf(", \"fix\": ");
		json_string(stdout, k->fix);
		printf("}");
	}
	printf("\n]");
}

/* "config", "helo" and "ips" members of c, each followed by ", " */
static void
print_setup_json(const struct ctx *c)
{
	printf("\"config\": ");
	json_string(stdout, c->conf_name);
	printf(", \"helo\": ");
	json_string(stdout, c->helo);
	printf(", \"ips\": [");
	for (size_t i = 0; i < c->nips; i++) {
		printf(i ? ", " : "");
		json_string(stdout, c->ipstr[i]);
	}
	printf("], ");
}

static void
print_json(const struct ctx *c, enum status worst)
{
	printf("{\"domain\": ");
	json_string(stdout, c->domain);
	printf(", ");
	print_setup_json(c);
	printf("\"status\": \"%s\", \"checks\": ", status_name[worst]);
	print_checks_json(&c->r);
	printf("}\n");
}

static const char *const status_upper[] = {"PASS", "WARN", "FAIL"};

/* One check as "FAIL  name  detail" and its fix below. */
static void
print_check(const struct check *k)
{
	printf("%-4s  %-22s ", status_upper[k->st], k->name);
	json_write_text(stdout, k->detail); /* DNS bytes: \xNN, never raw to a terminal */
	if (k->fix != NULL) {
		printf("\n      %-22s fix: ", "");
		json_write_text(stdout, k->fix);
	}
	putchar('\n');
}

static void
print_text(const struct ctx *c)
{
	int count[3] = {0, 0, 0};

	printf("%s: checked with %s, HELO %s, egress", c->domain, c->conf_name, c->helo);
	for (size_t i = 0; i < c->nips; i++)
		printf(" %s", c->ipstr[i]);
	printf("%s\n\n", c->nips ? "" : " unknown");
	for (size_t i = 0; i < c->r.n; i++) {
		count[c->r.v[i].st]++;
		print_check(&c->r.v[i]);
	}
	printf("\n%d passed, %d warnings, %d failed\n", count[ST_PASS], count[ST_WARN],
	       count[ST_FAIL]);
}

/* The worst status of the report's checks. */
static enum status
worst_status(const struct report *r)
{
	enum status worst = ST_PASS;

	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].st > worst)
			worst = r->v[i].st;
	return worst;
}

enum status
check_print(const struct ctx *c, bool json)
{
	enum status worst = worst_status(&c->r);

	if (json)
		print_json(c, worst);
	else
		print_text(c);
	return worst;
}

void
check_report_free(struct report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].detail);
		free(r->v[i].fix);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

int
check_exit_status(enum status worst)
{
	return worst == ST_FAIL ? 1 : worst == ST_WARN ? 3 : 0;
}

/* ---- dns check --all ---- */

/* The columns of the summary table: a domain's checks by family. */
enum family { FAM_SPF, FAM_DKIM, FAM_DMARC, FAM_MX, FAM_N, FAM_ALL };
static const char *const family_name[FAM_N] = {"spf", "dkim", "dmarc", "mx"};

/* The family of a domain check, from the first word of its name. */
static enum family
family_of(const char *name)
{
	size_t len = strcspn(name, " ");

	if (strncmp(name, "spf", 3) == 0)
		return FAM_SPF; /* spf, spf-ip, spf-lookups */
	if (len == 4 && strncmp(name, "dkim", 4) == 0)
		return FAM_DKIM;
	if (strncmp(name, "dmarc", 5) == 0)
		return FAM_DMARC; /* dmarc, dmarc-alignment */
	if ((len == 2 && strncmp(name, "mx", 2) == 0) ||
	    (len == 15 && strncmp(name, "exchange-online", 15) == 0))
		return FAM_MX;
	return FAM_ALL; /* "domain": it does not exist, every column fails */
}

/* The worst status per family of r; -1 where it has no check. */
static void
family_worst(const struct report *r, int out[FAM_N])
{
	for (int f = 0; f < FAM_N; f++)
		out[f] = -1;
	for (size_t i = 0; i < r->n; i++) {
		enum family f = family_of(r->v[i].name);

		for (int k = 0; k < FAM_N; k++)
			if ((f == FAM_ALL || (int)f == k) && (int)r->v[i].st > out[k])
				out[k] = (int)r->v[i].st;
	}
}

static void
print_all_json(const struct ctx *host, const struct ctx *doms, size_t n, enum status worst)
{
	int cell[FAM_N];

	printf("{");
	print_setup_json(host);
	printf("\"status\": \"%s\", \"summary\": [", status_name[worst]);
	for (size_t d = 0; d < n; d++) {
		family_worst(&doms[d].r, cell);
		printf("%s\n  {\"domain\": ", d ? "," : "");
		json_string(stdout, doms[d].domain);
		for (int f = 0; f < FAM_N; f++)
			printf(", \"%s\": %s%s%s", family_name[f], cell[f] < 0 ? "" : "\"",
			       cell[f] < 0 ? "null" : status_name[cell[f]],
			       cell[f] < 0 ? "" : "\"");
		printf("}");
	}
	printf("\n], \"host\": {\"status\": \"%s\", \"checks\": ",
	       status_name[worst_status(&host->r)]);
	print_checks_json(&host->r);
	printf("}, \"domains\": [");
	for (size_t d = 0; d < n; d++) {
		printf("%s\n{\"domain\": ", d ? "," : "");
		json_string(stdout, doms[d].domain);
		printf(", \"status\": \"%s\", \"checks\": ", status_name[worst_status(&doms[d].r)]);
		print_checks_json(&doms[d].r);
		printf("}");
	}
	printf("\n]}\n");
}

/* The checks of r that did not pass, under a heading; counts every check. */
static void
print_not_passing(const char *heading, const struct report *r, int count[3])
{
	bool first = true;

	for (size_t i = 0; i < r->n; i++) {
		count[r->v[i].st]++;
		if (r->v[i].st == ST_PASS)
			continue;
		if (first)
			printf("\n%s:\n", heading);
		first = false;
		print_check(&r->v[i]);
	}
}

static bool
same_first_word(const char *a, const char *b)
{
	size_t len = strcspn(a, " ");

	return strcspn(b, " ") == len && strncmp(a, b, len) == 0;
}

static void
print_all_text(const struct ctx *host, const struct ctx *doms, size_t n)
{
	int count[3] = {0, 0, 0}, cell[FAM_N], w = 6;

	for (size_t d = 0; d < n; d++)
		if ((int)strlen(doms[d].domain) > w)
			w = (int)strlen(doms[d].domain);
	printf("%zu domain%s checked with %s, HELO %s, egress", n, n == 1 ? "" : "s",
	       host->conf_name, host->helo);
	for (size_t i = 0; i < host->nips; i++)
		printf(" %s", host->ipstr[i]);
	printf("%s\n\n%-*s  SPF   DKIM  DMARC MX\n", host->nips ? "" : " unknown", w, "DOMAIN");
	for (size_t d = 0; d < n; d++) {
		family_worst(&doms[d].r, cell);
		printf("%-*s", w, doms[d].domain);
		for (int f = 0; f < FAM_N; f++)
			printf("  %-4s", cell[f] < 0 ? "-" : status_upper[cell[f]]);
		printf("\n");
	}
	/* the host row: its checks by name (fcrdns, dnsbl, port25), worst of each */
	printf("%-*s ", w, "(host)");
	for (size_t i = 0; i < host->r.n; i++) {
		const char *name = host->r.v[i].name;
		enum status st = host->r.v[i].st;
		size_t k;

		for (k = 0; k < i && !same_first_word(host->r.v[k].name, name); k++)
			;
		if (k < i)
			continue; /* this family was printed already */
		for (k = i + 1; k < host->r.n; k++)
			if (same_first_word(host->r.v[k].name, name) && host->r.v[k].st > st)
				st = host->r.v[k].st;
		printf(" %.*s %s", (int)strcspn(name, " "), name, status_upper[st]);
	}
	printf("%s\n", host->r.n ? "" : " -");
	for (size_t d = 0; d < n; d++)
		print_not_passing(doms[d].domain, &doms[d].r, count);
	print_not_passing("the relay host", &host->r, count);
	printf("\n%d passed, %d warnings, %d failed\n", count[ST_PASS], count[ST_WARN],
	       count[ST_FAIL]);
}

enum status
check_print_all(const struct ctx *host, const struct ctx *doms, size_t n, bool json)
{
	enum status worst = worst_status(&host->r);

	for (size_t d = 0; d < n; d++)
		if (worst_status(&doms[d].r) > worst)
			worst = worst_status(&doms[d].r);
	if (json)
		print_all_json(host, doms, n, worst);
	else
		print_all_text(host, doms, n);
	return worst;
}
