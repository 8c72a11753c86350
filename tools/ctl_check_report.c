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

static void
print_json(const struct ctx *c, enum status worst)
{
	printf("{\"domain\": ");
	json_string(stdout, c->domain);
	printf(", \"config\": ");
	json_string(stdout, c->conf_name);
	printf(", \"helo\": ");
	json_string(stdout, c->helo);
	printf(", \"ips\": [");
	for (size_t i = 0; i < c->nips; i++) {
		printf(i ? ", " : "");
		json_string(stdout, c->ipstr[i]);
	}
	printf("], \"status\": \"%s\", \"checks\": [", status_name[worst]);
	for (size_t i = 0; i < c->r.n; i++) {
		const struct check *k = &c->r.v[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		json_string(stdout, k->name);
		printf(", \"status\": \"%s\", \"detail\": ", status_name[k->st]);
		json_string(stdout, k->detail);
		printf(", \"fix\": ");
		json_string(stdout, k->fix);
		printf("}");
	}
	printf("\n]}\n");
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
		const struct check *k = &c->r.v[i];

		count[k->st]++;
		printf("%-4s  %-22s ",
		       k->st == ST_PASS   ? "PASS"
		       : k->st == ST_WARN ? "WARN"
		                          : "FAIL",
		       k->name);
		json_write_text(stdout, k->detail); /* DNS bytes: \xNN, never raw to a terminal */
		if (k->fix != NULL) {
			printf("\n      %-22s fix: ", "");
			json_write_text(stdout, k->fix);
		}
		putchar('\n');
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
