/*
 * mxrelayctl audit: the legacy-client audit, read straight from spool.db
 * (read-only: works while mxrelayd runs, needs no daemon).
 *
 * One line per (client address, AUTH user), riskiest first, so an admin
 * can see which devices to upgrade before a provider or a policy switches
 * off what they still use:
 *   1. plaintext-auth   AUTH without TLS: the password crossed the wire in clear
 *   2. tls1.0           TLS 1.0 (or SSLv3) seen
 *   3. tls1.1           TLS 1.1 seen
 *   4. noauth-plain     relayed by allowlist, no AUTH, no TLS
 *   5. ok               the rest
 * Within a class, the most recently seen first.
 */
#include "tools/ctl.h"
#include "tools/ctl_exo.h"
#include "tools/json.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/shared/config.h"
#include "spool/spool.h"

#define PROG "mxrelayctl audit"
#define LIST_SHOWN 3 /* senders / From addresses shown per table cell */

struct opts {
	const char *conf;
	time_t since; /* 0: everything */
	int json;
};

static const char *const risk_names[] = {"plaintext-auth", "tls1.0", "tls1.1", "noauth-plain",
                                         "ok"};

void
ctl_audit_usage(FILE *f)
{
	fputs("  audit [-c CONF] [--since DURATION] [--json]\n"
	      "      clients by risk: AUTH without TLS, TLS 1.0, TLS 1.1, allowlisted\n"
	      "      without AUTH or TLS, then the rest; with TLS, AUTH, senders, counts.\n"
	      "      --since 7d   only clients seen in the last 7 days (s, m, h, d, w)\n",
	      f);
	ctl_audit_exo_usage(f);
}

static int
usage_error(const char *what, const char *arg)
{
	return ctl_usage_error(PROG, ctl_audit_usage, what, arg);
}

/* "7d", "12h", "30m", "90s", "2w" or bare seconds, back from now. 0 / -1. */
static int
parse_since(const char *v, time_t now, time_t *out)
{
	uint64_t secs;
	if (config_parse_duration(v, true, 100ULL * 365 * 86400, &secs) != 0)
		return -1;
	*out = now - (time_t)secs;
	return 0;
}

/* 0, or the exit status when the caller must stop. */
static int
parse_args(int argc, char **argv, struct opts *o, int *stop)
{
	enum { OPT_SINCE = 256, OPT_JSON };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"since", required_argument, NULL, OPT_SINCE},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	*stop = 0;
	memset(o, 0, sizeof *o);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case OPT_SINCE:
			if (parse_since(optarg, time(NULL), &o->since) != 0) {
				*stop = 1;
				return usage_error("bad duration (like 7d, 12h, 30m)", optarg);
			}
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		default:
			*stop = 1;
			return ctl_opt_end(ch, argv, PROG, ctl_audit_usage);
		}
	}
	if (optind != argc) {
		*stop = 1;
		return usage_error("unexpected argument", argv[optind]);
	}
	return 0;
}

static int
risk_of(const struct spool_audit_row *r)
{
	if (r->plaintext_auth)
		return 0;
	if (strcmp(r->worst_tls, "TLSv1") == 0 || strcmp(r->worst_tls, "SSLv3") == 0)
		return 1;
	if (strcmp(r->worst_tls, "TLSv1.1") == 0)
		return 2;
	if (r->allowlisted && r->tls_version[0] == '\0')
		return 3;
	return 4;
}

static int
by_risk(const void *pa, const void *pb)
{
	const struct spool_audit_row *a = pa, *b = pb;
	int ra = risk_of(a), rb = risk_of(b), c;

	if (ra != rb)
		return ra - rb;
	if (a->last_seen != b->last_seen)
		return a->last_seen > b->last_seen ? -1 : 1;
	if ((c = strcmp(a->client_ip, b->client_ip)) != 0)
		return c;
	return strcmp(a->auth_user, b->auth_user);
}

static void
utc(char *out, size_t len, time_t t, int iso)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M", &tm);
}

static void
json_list(FILE *f, const char *joined)
{
	const char *p = joined;
	int first = 1;

	fputc('[', f);
	while (*p) {
		size_t n = strcspn(p, ",");
		char v[SPOOL_AUDIT_VALUE_MAX + 1];
		snprintf(v, sizeof v, "%.*s",
		         (int)(n < SPOOL_AUDIT_VALUE_MAX ? n : SPOOL_AUDIT_VALUE_MAX), p);
		if (!first)
			fputs(", ", f);
		json_write_str(f, v);
		first = 0;
		p += n;
		if (*p == ',')
			p++;
	}
	fputc(']', f);
}

static void
print_json(const struct spool_audit_row *rows, size_t n)
{
	char first[32], last[32];
	size_t i;

	fputs("[", stdout);
	for (i = 0; i < n; i++) {
		const struct spool_audit_row *r = &rows[i];
		utc(first, sizeof first, r->first_seen, 1);
		utc(last, sizeof last, r->last_seen, 1);
		fputs(i ? ",\n {" : "\n {", stdout);
		printf("\"risk\": \"%s\", \"risk_rank\": %d, \"client_ip\": ",
		       risk_names[risk_of(r)], risk_of(r) + 1);
		json_write_str(stdout, r->client_ip);
		fputs(", \"user\": ", stdout);
		json_write_str(stdout, r->auth_user);
		fputs(", \"tls_version\": ", stdout);
		json_write_str(stdout, r->tls_version);
		fputs(", \"tls_cipher\": ", stdout);
		json_write_str(stdout, r->tls_cipher);
		fputs(", \"worst_tls\": ", stdout);
		json_write_str(stdout, r->worst_tls);
		fputs(", \"auth_mech\": ", stdout);
		json_write_str(stdout, r->auth_mech);
		printf(", \"plaintext_auth\": %s, \"allowlisted\": %s, \"messages\": %lld,"
		       " \"senders\": ",
		       r->plaintext_auth ? "true" : "false", r->allowlisted ? "true" : "false",
		       (long long)r->messages);
		json_list(stdout, r->senders);
		fputs(", \"header_from\": ", stdout);
		json_list(stdout, r->header_from);
		printf(", \"first_seen\": \"%s\", \"last_seen\": \"%s\", \"first_seen_unix\": %lld,"
		       " \"last_seen_unix\": %lld}",
		       first, last, (long long)r->first_seen, (long long)r->last_seen);
	}
	fputs(n ? "\n]\n" : "]\n", stdout);
}

/* The first LIST_SHOWN values of a comma-joined list, then "+N". */
static void
short_list(char *out, size_t len, const char *joined)
{
	size_t n = 0, shown = 0, o = 0;
	const char *p = joined;

	out[0] = '\0';
	if (*p == '\0') {
		snprintf(out, len, "-");
		return;
	}
	while (*p) {
		size_t k = strcspn(p, ",");
		if (shown < LIST_SHOWN && o < len) {
			int w = snprintf(out + o, len - o, "%s%.*s", shown ? "," : "", (int)k, p);
			o += w > 0 ? (size_t)w : 0;
			shown++;
		}
		n++;
		p += k;
		if (*p == ',')
			p++;
	}
	if (n > shown && o < len)
		snprintf(out + o, len - o, " +%zu", n - shown);
}

enum col {
	C_RISK,
	C_IP,
	C_USER,
	C_TLS,
	C_CIPHER,
	C_AUTH,
	C_MSGS,
	C_SENDERS,
	C_FROM,
	C_FIRST,
	C_LAST,
	C__N
};

static const char *const col_names[C__N] = {"RISK",        "CLIENT",     "USER",     "TLS",
                                            "CIPHER",      "AUTH",       "MSGS",     "SENDERS",
                                            "HEADER FROM", "FIRST SEEN", "LAST SEEN"};

/* One table row as text cells (cell[] points into buf). */
static void
cells_of(const struct spool_audit_row *r, char buf[C__N][1100], const char *cell[C__N])
{
	int i;

	for (i = 0; i < C__N; i++)
		cell[i] = buf[i];
	snprintf(buf[C_RISK], 1100, "%s", risk_names[risk_of(r)]);
	snprintf(buf[C_IP], 1100, "%s", r->client_ip);
	snprintf(buf[C_USER], 1100, "%s", r->auth_user[0] ? r->auth_user : "-");
	if (r->tls_version[0] == '\0' && r->worst_tls[0] == '\0')
		snprintf(buf[C_TLS], 1100, "none");
	else if (strcmp(r->tls_version, r->worst_tls) == 0 || r->worst_tls[0] == '\0')
		snprintf(buf[C_TLS], 1100, "%s", r->tls_version);
	else /* latest first, the oldest version ever seen after it */
		snprintf(buf[C_TLS], 1100, "%s(min %s)",
		         r->tls_version[0] ? r->tls_version : "none", r->worst_tls);
	snprintf(buf[C_CIPHER], 1100, "%s", r->tls_cipher[0] ? r->tls_cipher : "-");
	snprintf(buf[C_AUTH], 1100, "%s", r->auth_mech[0] ? r->auth_mech : "-");
	snprintf(buf[C_MSGS], 1100, "%lld", (long long)r->messages);
	short_list(buf[C_SENDERS], 1100, r->senders);
	short_list(buf[C_FROM], 1100, r->header_from);
	utc(buf[C_FIRST], 1100, r->first_seen, 0);
	utc(buf[C_LAST], 1100, r->last_seen, 0);
}

static void
print_table(const struct spool_audit_row *rows, size_t n)
{
	static char buf[C__N][1100];
	const char *cell[C__N];
	size_t width[C__N], i;
	int c;

	for (c = 0; c < C__N; c++)
		width[c] = strlen(col_names[c]);
	for (i = 0; i < n; i++) {
		cells_of(&rows[i], buf, cell);
		for (c = 0; c < C__N; c++)
			if (strlen(cell[c]) > width[c])
				width[c] = strlen(cell[c]);
	}
	for (c = 0; c < C__N - 1; c++)
		printf("%-*s  ", (int)width[c], col_names[c]);
	printf("%s\n", col_names[C__N - 1]);
	for (i = 0; i < n; i++) {
		cells_of(&rows[i], buf, cell);
		for (c = 0; c < C__N; c++) {
			if (c == C__N - 1)
				printf("%s\n", cell[c]);
			else if (c == C_MSGS)
				printf("%*s  ", (int)width[c], cell[c]);
			else
				printf("%-*s  ", (int)width[c], cell[c]);
		}
	}
}

int
ctl_audit(int argc, char **argv)
{
	struct spool_audit_row *rows = NULL;
	struct config *c = NULL;
	struct opts o;
	char err[512], when[32];
	size_t n = 0;
	int stop, rc;

	if (argc > 1 && ctl_audit_exo_cmd(argv[1]))
		return ctl_audit_exo_run(argc - 1, argv + 1);
	rc = parse_args(argc, argv, &o, &stop);
	if (stop)
		return rc;
	if (ctl_load_config(PROG, o.conf, &c) != 0)
		return 1;
	if (spool_audit_list(c->data_dir, o.since, &rows, &n, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		if (strncmp(err, "no spool database", 17) == 0)
			fprintf(stderr,
			        PROG ": data_dir of %s is %s: has mxrelayd run with it yet?\n",
			        ctl_config_name(c), c->data_dir);
		config_free(c);
		return 1;
	}
	config_free(c);
	if (n > 1)
		qsort(rows, n, sizeof *rows, by_risk);
	if (o.json) {
		print_json(rows, n);
	} else if (n == 0) {
		if (o.since) {
			utc(when, sizeof when, o.since, 0);
			printf("no clients seen since %s UTC\n", when);
		} else {
			printf("no clients recorded yet\n");
		}
	} else {
		print_table(rows, n);
	}
	spool_audit_rows_free(rows, n);
	return 0;
}
