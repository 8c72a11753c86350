/*
 * mxrelayctl tls: the outbound transport security view.
 *
 *   tls report [--since D] [--json]   per recipient domain: deliveries by
 *       the policy they went under (dane, mta-sts, verify, encrypt,
 *       opportunistic TLS, plaintext) and failed TLS sessions by RFC 8460
 *       result type; read-only from spool.db (works while mxrelayd runs,
 *       needs no daemon), like `mxrelayctl audit`.
 *   tls send-reports [--day YYYY-MM-DD]   the daemon sends the due TLS-RPT
 *       reports now (control socket verb TLS-SEND-REPORTS).
 */
#include "tools/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/tlsrpt.h"
#include "spool/spool.h"
#include "tools/ctlsock.h"
#include "tools/json.h"

#define PROG "mxrelayctl tls"
#define NKINDS 6
#define NRESULTS 12

/* The column order of the report: strongest first (tls_kind_name() words). */
static const char *const kinds[NKINDS] = {"dane",    "mta-sts",       "verify",
                                          "encrypt", "opportunistic", "plaintext"};
/* RFC 8460 4.3 result types, and "other" for anything else. */
static const char *const results[NRESULTS] = {"starttls-not-supported", "certificate-host-mismatch",
                                              "certificate-expired",    "certificate-not-trusted",
                                              "validation-failure",     "tlsa-invalid",
                                              "dnssec-invalid",         "dane-required",
                                              "sts-policy-fetch-error", "sts-policy-invalid",
                                              "sts-webpki-invalid",     "other"};

struct dom {
	char domain[256];
	int64_t delivered[NKINDS], verified, sessions_ok, sessions_failed;
	int64_t failures[NRESULTS];
};

struct agg {
	struct dom *d;
	size_t n;
};

struct opts {
	const char *conf, *socket;
	int64_t since; /* day */
	int json;
	const char *day; /* send-reports --day */
};

void
ctl_tls_usage(FILE *f)
{
	fputs("  tls report [-c CONF] [--since 7d|YYYY-MM-DD] [--json]\n"
	      "      per recipient domain: deliveries by TLS policy (dane, mta-sts, verify,\n"
	      "      encrypt, opportunistic, plaintext) and failed TLS sessions by RFC 8460\n"
	      "      result type (default: every day kept, 40 days)\n"
	      "  tls send-reports [-c CONF] [-s SOCKET] [--day YYYY-MM-DD]\n"
	      "      send the due TLS-RPT reports now (default: the last 7 complete days)\n",
	      f);
}

static int
usage_error(const char *what, const char *arg)
{
	return ctl_usage_error(PROG, ctl_tls_usage, what, arg);
}

/* "YYYY-MM-DD" or a duration back from today ("7d"): the first day. 0 / -1. */
static int
parse_since(const char *v, int64_t *day)
{
	uint64_t secs;

	if (tlsrpt_day_parse(v, day) == 0)
		return 0;
	if (config_parse_duration(v, true, 100ULL * 365 * 86400, &secs) != 0)
		return -1;
	*day = (int64_t)((time(NULL) - (time_t)secs) / 86400);
	return 0;
}

/* -1: go on; else the exit status. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_SINCE = 256, OPT_JSON, OPT_DAY };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"since", required_argument, NULL, OPT_SINCE},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"day", required_argument, NULL, OPT_DAY},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof *o);
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case OPT_SINCE:
			if (parse_since(optarg, &o->since) != 0)
				return usage_error("bad --since (like 7d or 2026-12-01)", optarg);
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_DAY:
			if (tlsrpt_day_parse(optarg, &(int64_t){0}) != 0)
				return usage_error("bad --day (YYYY-MM-DD)", optarg);
			o->day = optarg;
			break;
		default:
			return ctl_opt_end(ch, argv, PROG, ctl_tls_usage);
		}
	}
	return -1;
}

/* ---- report ----------------------------------------------------------------- */

static struct dom *
dom_of(struct agg *a, const char *domain)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcasecmp(a->d[i].domain, domain) == 0)
			return &a->d[i];
	a->d = realloc(a->d, (a->n + 1) * sizeof *a->d);
	if (a->d == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	memset(&a->d[a->n], 0, sizeof a->d[a->n]);
	snprintf(a->d[a->n].domain, sizeof a->d[a->n].domain, "%s", domain);
	return &a->d[a->n++];
}

static int
on_row(void *arg, const struct spool_tls_row *r)
{
	struct dom *d = dom_of(arg, r->domain);
	size_t k;

	for (k = 0; k < NKINDS && strcmp(kinds[k], r->policy) != 0; k++)
		;
	if (k < NKINDS)
		d->delivered[k] += r->delivered;
	d->verified += r->verified;
	d->sessions_ok += r->sessions_ok;
	d->sessions_failed += r->sessions_failed;
	return 0;
}

static int
on_fail(void *arg, const struct spool_tls_failure *f)
{
	struct dom *d = dom_of(arg, f->domain);
	size_t k;

	for (k = 0; k < NRESULTS - 1 && strcmp(results[k], f->result_type) != 0; k++)
		;
	d->failures[k] += f->count;
	return 0;
}

static int
by_domain(const void *a, const void *b)
{
	return strcasecmp(((const struct dom *)a)->domain, ((const struct dom *)b)->domain);
}

static void
print_json(const struct agg *a, const char *since)
{
	size_t i, k;

	printf("{\"since\": \"%s\", \"domains\": [", since);
	for (i = 0; i < a->n; i++) {
		const struct dom *d = &a->d[i];
		printf("%s\n {\"domain\": ", i ? "," : "");
		json_write_str(stdout, d->domain);
		printf(", \"delivered\": {");
		for (k = 0; k < NKINDS; k++)
			printf("%s\"%s\": %lld", k ? ", " : "", kinds[k],
			       (long long)d->delivered[k]);
		printf("}, \"verified\": %lld, \"sessions_ok\": %lld, \"sessions_failed\": %lld,"
		       " \"failures\": {",
		       (long long)d->verified, (long long)d->sessions_ok,
		       (long long)d->sessions_failed);
		int first = 1;
		for (k = 0; k < NRESULTS; k++) {
			if (d->failures[k] == 0)
				continue;
			printf("%s\"%s\": %lld", first ? "" : ", ", results[k],
			       (long long)d->failures[k]);
			first = 0;
		}
		printf("}}");
	}
	printf("\n]}\n");
}

static void
print_table(const struct agg *a, const char *since)
{
	size_t i, k;

	printf("outbound TLS since %s (deliveries by policy; failed TLS sessions by kind)\n\n",
	       since);
	printf("%-30s %6s %8s %6s %7s %13s %9s  %s\n", "DOMAIN", "DANE", "MTA-STS", "VERIFY",
	       "ENCRYPT", "OPPORTUNISTIC", "PLAINTEXT", "FAILURES");
	for (i = 0; i < a->n; i++) {
		const struct dom *d = &a->d[i];
		int any = 0;
		printf("%-30s %6lld %8lld %6lld %7lld %13lld %9lld  ", d->domain,
		       (long long)d->delivered[0], (long long)d->delivered[1],
		       (long long)d->delivered[2], (long long)d->delivered[3],
		       (long long)d->delivered[4], (long long)d->delivered[5]);
		for (k = 0; k < NRESULTS; k++)
			if (d->failures[k]) {
				printf("%s%s=%lld", any ? " " : "", results[k],
				       (long long)d->failures[k]);
				any = 1;
			}
		printf("%s\n", any ? "" : "-");
	}
	if (a->n == 0)
		printf("(no outbound deliveries recorded)\n");
}

static int
tls_report(const struct opts *o)
{
	struct config *c = NULL;
	struct agg a = {0};
	char err[512], since[16];

	if (ctl_load_config(PROG, o->conf, &c) != 0)
		return 1;
	if (spool_tls_list(c->data_dir, o->since, on_row, on_fail, &a, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		config_free(c);
		free(a.d);
		return 1;
	}
	config_free(c);
	if (a.n > 1)
		qsort(a.d, a.n, sizeof *a.d, by_domain);
	tlsrpt_day_name(o->since, since, sizeof since);
	if (o->json)
		print_json(&a, since);
	else
		print_table(&a, since);
	free(a.d);
	return 0;
}

/* ---- send-reports ----------------------------------------------------------- */

static int
send_reports(const struct opts *o)
{
	char path[4096], line[64], *raw = NULL;
	struct json *doc = NULL;
	const char *e;
	int rc = 1;

	if (ctl_socket_path(PROG, o->conf, o->socket, path, sizeof path) != 0)
		return 1;
	snprintf(line, sizeof line, "TLS-SEND-REPORTS%s%s\n", o->day ? " " : "",
	         o->day ? o->day : "");
	if (ctl_request(PROG, path, line, &doc, &raw) != 0)
		return 1;
	if ((e = json_gets(doc, "error")) != NULL) {
		fprintf(stderr, PROG ": %s\n", e);
		goto done;
	}
	if (o->json)
		fputs(raw, stdout);
	else
		printf("TLS reports %s .. %s: %lld sent, %lld domains without a reporting policy,"
		       " %lld failed\n",
		       json_gets(doc, "from"), json_gets(doc, "to"),
		       (long long)json_geti(doc, "sent", 0),
		       (long long)json_geti(doc, "no_policy", 0),
		       (long long)json_geti(doc, "failed", 0));
	rc = json_geti(doc, "failed", 0) ? 1 : 0;
done:
	json_free(doc);
	free(raw);
	return rc;
}

int
ctl_tls(int argc, char **argv)
{
	struct opts o;
	const char *cmd;
	int rc;

	if (argc < 2)
		return usage_error("a command is needed (report, send-reports)", NULL);
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
		return ctl_help(ctl_tls_usage);
	if ((rc = parse_args(argc - 1, argv + 1, &o)) >= 0)
		return rc;
	if (optind != argc - 1)
		return usage_error("unexpected argument", argv[1 + optind]);
	if (strcmp(cmd, "report") == 0) {
		if (o.day || o.socket)
			return usage_error("--day and --socket are for send-reports, not", cmd);
		return tls_report(&o);
	}
	if (strcmp(cmd, "send-reports") == 0) {
		if (o.since)
			return usage_error("--since is for report, not", cmd);
		return send_reports(&o);
	}
	return usage_error("unknown tls command", cmd);
}
