/*
 * ctl_report: `mxrelayctl report`, a pflogsumm-like summary of mxrelayd's
 * log (see ctl_report.h; the fields it reads: README "Log lines").
 *
 * Counted per day: received (event=accepted) and their bytes, delivered,
 * deferred and bounced recipients (event=delivery status=...), of the
 * bounced those that expired in the queue (event=expired), messages
 * rejected at intake (event=rejected and the refusals of MAIL and RCPT),
 * failed AUTHs. Then, over the days read: top senders, top recipient
 * domains, deferral, bounce and rejection reasons (a provider's reason_code
 * where the relay knew the reply, else the DSN code and reply text) and
 * failed AUTHs by client address. Memory is bounded whatever the log holds
 * (ctl_report_tab.c: past a cap, keys count as "others"; days past
 * MAX_DAYS count in the total only).
 */
#include "tools/ctl_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/ctl.h"
#include "tools/json.h"

#define MAX_DAYS 1000
#define TAB_CAP 10000
#define TOP_N 10

enum {
	C_RECEIVED,
	C_BYTES,
	C_DELIVERED,
	C_DEFERRED,
	C_BOUNCED,
	C_EXPIRED,
	C_REJECTED,
	C_AUTH_FAILED,
	C__COUNT
};
static const char *const cname[C__COUNT] = {"received", "bytes",   "delivered", "deferred",
                                            "bounced",  "expired", "rejected",  "auth_failed"};

enum { T_SENDERS, T_DOMAINS, T_DEFERRALS, T_BOUNCES, T_REJECTS, T_AUTH_IPS, T__COUNT };
static const char *const tname[T__COUNT] = {"senders",          "recipient_domains",
                                            "deferral_reasons", "bounce_reasons",
                                            "reject_reasons",   "auth_failures"};
static const char *const ttitle[T__COUNT] = {
    "Senders (messages received)",   "Recipient domains (recipients delivered)",
    "Deferral reasons (recipients)", "Bounce reasons (recipients)",
    "Rejections at intake",          "Failed AUTH by client address"};

struct rday {
	char day[11];
	long long c[C__COUNT];
};

struct report {
	const char *only_day; /* --day, or NULL */
	int year;             /* for RFC 3164 stamps */
	struct rday *days;
	size_t ndays;
	long long total[C__COUNT];
	long long lines, ours, days_over;
	struct rtab *t[T__COUNT];
};

void
ctl_report_usage(FILE *f)
{
	fputs(
	    "  report [--day YYYY-MM-DD] [--year YYYY] [--json] [FILE|-]\n"
	    "                                 summary of mxrelayd's log (FILE, or standard\n"
	    "                                 input: journalctl -u mxrelayd -o short-iso | ...)\n",
	    f);
}

static long long *
day_counts(struct report *r, const char *day)
{
	for (size_t i = r->ndays; i > 0; i--) /* the last day first: logs are in order */
		if (strcmp(r->days[i - 1].day, day) == 0)
			return r->days[i - 1].c;
	if (r->ndays >= MAX_DAYS) {
		r->days_over++;
		return NULL;
	}
	r->days = realloc(r->days, (r->ndays + 1) * sizeof(*r->days));
	if (r->days == NULL) {
		fputs("mxrelayctl: report: out of memory\n", stderr);
		exit(1);
	}
	memset(&r->days[r->ndays], 0, sizeof(*r->days));
	snprintf(r->days[r->ndays].day, sizeof(r->days[0].day), "%s", day);
	return r->days[r->ndays++].c;
}

static void
count(struct report *r, long long *dc, int which, long long n)
{
	r->total[which] += n;
	if (dc != NULL)
		dc[which] += n;
}

/* "reason_code" when the relay knew the provider's reply, else "DSN reply text". */
static void
reason_key(const struct rlog_line *l, char *out, size_t outlen)
{
	char code[64], dsn[32], reply[RLOG_VALUE_MAX], text[256];

	if (rlog_get(l, "reason_code", code, sizeof(code)) && strcmp(code, "none") != 0) {
		snprintf(out, outlen, "%s", code);
		return;
	}
	rlog_get(l, "dsn", dsn, sizeof(dsn));
	rlog_get(l, "reply", reply, sizeof(reply));
	rlog_reason(reply, text, sizeof(text));
	snprintf(out, outlen, "%s %s", dsn, text);
}

static void
on_delivery(struct report *r, const struct rlog_line *l, long long *dc)
{
	char status[32], to[RLOG_VALUE_MAX], dom[256], key[320];

	rlog_get(l, "status", status, sizeof(status));
	if (strcmp(status, "sent") == 0) {
		count(r, dc, C_DELIVERED, 1);
		rlog_get(l, "to", to, sizeof(to));
		rlog_domain(to, dom, sizeof(dom));
		rtab_add(r->t[T_DOMAINS], dom, 1);
	} else if (strcmp(status, "deferred") == 0) {
		count(r, dc, C_DEFERRED, 1);
		reason_key(l, key, sizeof(key));
		rtab_add(r->t[T_DEFERRALS], key, 1);
	} else if (strcmp(status, "bounced") == 0) {
		count(r, dc, C_BOUNCED, 1);
		reason_key(l, key, sizeof(key));
		rtab_add(r->t[T_BOUNCES], key, 1);
	}
}

/* A refusal at intake: event=rejected's code and reason, else the event's name. */
static void
on_reject(struct report *r, const struct rlog_line *l, const char *ev, long long *dc)
{
	char code[16], dsn[16], reason[RLOG_VALUE_MAX], key[320];

	count(r, dc, C_REJECTED, 1);
	if (strcmp(ev, "rejected") != 0) {
		rtab_add(r->t[T_REJECTS], ev, 1);
		return;
	}
	rlog_get(l, "reason", reason, sizeof(reason));
	if (rlog_get(l, "code", code, sizeof(code)) && rlog_get(l, "dsn", dsn, sizeof(dsn)))
		snprintf(key, sizeof(key), "%s %s %.250s", code, dsn, reason);
	else
		snprintf(key, sizeof(key), "%.300s", reason);
	rtab_add(r->t[T_REJECTS], key, 1);
}

static bool
is_refusal(const char *ev)
{
	static const char *const ev_refused[] = {"rejected",     "relay_denied", "sender_refused",
	                                         "mail_refused", "rate_limited", "sunset_refused"};
	for (size_t i = 0; i < sizeof(ev_refused) / sizeof(ev_refused[0]); i++)
		if (strcmp(ev, ev_refused[i]) == 0)
			return true;
	return false;
}

static void
on_line(struct report *r, const char *line, size_t len)
{
	struct rlog_line l;
	char ev[64], v[RLOG_VALUE_MAX];
	long long *dc;

	r->lines++;
	if (rlog_parse(line, len, r->year, &l) != 0)
		return;
	if (r->only_day && strcmp(l.day, r->only_day) != 0)
		return;
	r->ours++;
	rlog_get(&l, "event", ev, sizeof(ev));
	dc = day_counts(r, l.day[0] ? l.day : "undated");
	if (strcmp(ev, "accepted") == 0) {
		count(r, dc, C_RECEIVED, 1);
		if (rlog_get(&l, "size", v, sizeof(v)))
			count(r, dc, C_BYTES, strtoll(v, NULL, 10));
		rlog_get(&l, "from", v, sizeof(v));
		rtab_add(r->t[T_SENDERS], v, 1);
	} else if (strcmp(ev, "delivery") == 0) {
		on_delivery(r, &l, dc);
	} else if (strcmp(ev, "expired") == 0) {
		count(r, dc, C_EXPIRED, 1);
	} else if (strcmp(ev, "auth_failed") == 0) {
		count(r, dc, C_AUTH_FAILED, 1);
		rlog_get(&l, "ip", v, sizeof(v));
		rtab_add(r->t[T_AUTH_IPS], v, 1);
	} else if (is_refusal(ev)) {
		on_reject(r, &l, ev, dc);
	}
}

/* Every line of f; a line longer than RLOG_LINE_MAX is read in full but cut. */
static int
read_all(struct report *r, FILE *f)
{
	static char buf[RLOG_LINE_MAX + 2];
	bool cut = false;

	while (fgets(buf, sizeof(buf), f) != NULL) {
		size_t n = strlen(buf);
		bool whole = n > 0 && buf[n - 1] == '\n';
		if (whole)
			buf[--n] = '\0';
		if (!cut)
			on_line(r, buf, n);
		cut = !whole; /* the rest of a cut line is not a line of its own */
	}
	return ferror(f) ? -1 : 0;
}

static void
print_counts_text(const char *label, const long long *c)
{
	printf("%-10s", label);
	for (int i = 0; i < C__COUNT; i++)
		printf(" %*lld", i == C_BYTES ? 12 : 9, c[i]);
	printf("\n");
}

static void
print_text(const struct report *r, const char *src)
{
	const char *keys[TOP_N];
	long long n[TOP_N];

	printf("mxrelay log report: %s, %lld lines, %lld of mxrelayd\n\n", src, r->lines, r->ours);
	printf("%-10s", "day");
	for (int i = 0; i < C__COUNT; i++)
		printf(" %*s", i == C_BYTES ? 12 : 9, i == C_AUTH_FAILED ? "authfail" : cname[i]);
	printf("\n");
	for (size_t d = 0; d < r->ndays; d++)
		print_counts_text(r->days[d].day, r->days[d].c);
	print_counts_text("total", r->total);
	if (r->days_over)
		printf("(%lld lines of days past the first %d: in the total only)\n", r->days_over,
		       MAX_DAYS);
	for (int t = 0; t < T__COUNT; t++) {
		size_t k = rtab_top(r->t[t], TOP_N, keys, n);
		printf("\n%s:\n", ttitle[t]);
		if (k == 0)
			printf("  none\n");
		for (size_t i = 0; i < k; i++) {
			printf("  %8lld  ", n[i]);
			json_write_text(stdout, keys[i][0] ? keys[i] : "(empty)");
			printf("\n");
		}
		if (rtab_others(r->t[t]) > 0)
			printf("  %8lld  (others: over %d distinct)\n", rtab_others(r->t[t]),
			       TAB_CAP);
	}
}

static void
print_counts_json(const long long *c)
{
	for (int i = 0; i < C__COUNT; i++)
		printf("%s\"%s\":%lld", i ? "," : "", cname[i], c[i]);
}

static void
print_json(const struct report *r)
{
	const char *keys[TOP_N];
	long long n[TOP_N];

	printf("{\"lines\":%lld,\"mxrelayd_lines\":%lld,\"days\":[", r->lines, r->ours);
	for (size_t d = 0; d < r->ndays; d++) {
		printf("%s{\"day\":", d ? "," : "");
		json_write_str(stdout, r->days[d].day);
		printf(",");
		print_counts_json(r->days[d].c);
		printf("}");
	}
	printf("],\"total\":{");
	print_counts_json(r->total);
	printf("}");
	for (int t = 0; t < T__COUNT; t++) {
		size_t k = rtab_top(r->t[t], TOP_N, keys, n);
		printf(",\"%s\":[", tname[t]);
		for (size_t i = 0; i < k; i++) {
			printf("%s{\"key\":", i ? "," : "");
			json_write_str(stdout, keys[i]);
			printf(",\"count\":%lld}", n[i]);
		}
		printf("],\"%s_others\":%lld", tname[t], rtab_others(r->t[t]));
	}
	printf("}\n");
}

static bool
valid_day(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	return end != NULL && *end == '\0' && strlen(s) == 10;
}

struct ropts {
	bool json;
	const char *file;
};

static int
parse_args(int argc, char **argv, struct report *r, struct ropts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--day") == 0 || strcmp(a, "--year") == 0) {
			if (i + 1 >= argc)
				return ctl_usage_error("mxrelayctl report", ctl_report_usage,
				                       "missing value after", a);
			const char *v = argv[++i];
			if (a[2] == 'd' && !valid_day(v))
				return ctl_usage_error("mxrelayctl report", ctl_report_usage,
				                       "--day wants YYYY-MM-DD, not", v);
			if (a[2] == 'y' && (strlen(v) != 4 || atoi(v) < 1970))
				return ctl_usage_error("mxrelayctl report", ctl_report_usage,
				                       "--year wants YYYY, not", v);
			if (a[2] == 'd')
				r->only_day = v;
			else
				r->year = atoi(v);
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			return ctl_help(ctl_report_usage) - 1; /* -1: done, exit 0 */
		} else if ((a[0] != '-' || strcmp(a, "-") == 0) && o->file == NULL) {
			o->file = a;
		} else {
			return ctl_usage_error(
			    "mxrelayctl report", ctl_report_usage,
			    a[0] == '-' ? "unknown option" : "one FILE only, not", a);
		}
	}
	return 0;
}

static int
run(struct report *r, const struct ropts *o)
{
	FILE *f = stdin;
	const char *src = "standard input";

	if (o->file != NULL && strcmp(o->file, "-") != 0) {
		f = fopen(o->file, "r");
		if (f == NULL) {
			fprintf(stderr, "mxrelayctl report: %s: %s\n", o->file, strerror(errno));
			return 1;
		}
		src = o->file;
	} else if (o->file == NULL && isatty(STDIN_FILENO)) {
		return ctl_usage_error("mxrelayctl report", ctl_report_usage,
		                       "no FILE and standard input is a terminal; e.g. journalctl "
		                       "-u mxrelayd -o short-iso | mxrelayctl report",
		                       NULL);
	}
	int rc = read_all(r, f);
	if (rc != 0)
		fprintf(stderr, "mxrelayctl report: %s: %s\n", src, strerror(errno));
	if (f != stdin)
		fclose(f);
	if (rc != 0)
		return 1;
	if (o->json)
		print_json(r);
	else
		print_text(r, src);
	return 0;
}

int
ctl_report(int argc, char **argv)
{
	struct report r;
	struct ropts o = {false, NULL};
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = parse_args(argc, argv, &r, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	gmtime_r(&now, &tm);
	/* RFC 3164 stamps have no year: --year, the year of --day, or this one */
	if (r.year == 0)
		r.year = r.only_day ? atoi(r.only_day) : tm.tm_year + 1900;
	for (int t = 0; t < T__COUNT; t++)
		r.t[t] = rtab_new(TAB_CAP);
	rc = run(&r, &o);
	for (int t = 0; t < T__COUNT; t++)
		rtab_free(r.t[t]);
	free(r.days);
	return rc;
}
