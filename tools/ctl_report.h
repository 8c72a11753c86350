/*
 * ctl_report: `mxrelayctl report`, a pflogsumm-like summary of mxrelayd's
 * log. The line reader (ctl_report_parse.c) is pure and fuzzed
 * (fuzz_logline): a log file holds text that clients chose (addresses,
 * user names, replies), so nothing in a line is trusted, every copy is
 * bounded and a line that is not ours is skipped, never an error.
 */
#ifndef MXRELAY_TOOLS_CTL_REPORT_H
#define MXRELAY_TOOLS_CTL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define RLOG_LINE_MAX 8192  /* longer lines are cut there (the daemon writes < 2048) */
#define RLOG_VALUE_MAX 1024 /* one value: the longest the daemon writes is msgid= (998) */

/* One line of the log, read by rlog_parse. */
struct rlog_line {
	char day[11];   /* "YYYY-MM-DD" of its time stamp, "" when it has none */
	const char *kv; /* the key=value part ("s=... event=..."), inside the line */
	size_t kvlen;
};

/*
 * Read one line (len bytes, no line end) in any of the forms mxrelayd's log
 * takes: `log = stderr` or a file ("2026-12-06T21:07:36.123Z
 * mxrelayd[42]: level=info ..."), `journalctl -o short-iso` or rsyslog's
 * RFC 3339 form ("2026-12-06T21:07:36+0000 host mxrelayd[42]: ..."), the
 * traditional syslog form ("Dec  6 21:07:36 host mxrelayd[42]: ...", its
 * year taken from year), and bare messages (`journalctl -o cat`, with or
 * without a "<6>" priority and "level=..."). 0 with out filled when the
 * line is one of mxrelayd's with an event= key; -1 for any other line.
 */
int rlog_parse(const char *line, size_t len, int year, struct rlog_line *out);

/*
 * The value of key in l's key=value part (the first one that is a whole
 * key, outside quoted values), quotes removed, cut to outlen - 1 bytes.
 * true when found.
 */
bool rlog_get(const struct rlog_line *l, const char *key, char *out, size_t outlen);

/* The domain of an address value ("<a@b.example>" or "a@b"), lower case, into out. */
void rlog_domain(const char *addr, char *out, size_t outlen);

/*
 * A reply text as a grouping key: "<...>" parts (addresses, message ids)
 * dropped, runs of blanks made one, cut to outlen - 1 bytes.
 */
void rlog_reason(const char *text, char *out, size_t outlen);

/* ---- the counts (ctl_report_tab.c) ---- */

/*
 * A bounded table of string -> count: at most cap distinct keys; a key
 * beyond that is counted in `others`. Keys are cut to 255 bytes.
 */
struct rtab;
struct rtab *rtab_new(size_t cap);
void rtab_free(struct rtab *t);
void rtab_add(struct rtab *t, const char *key, long long n);
/* The top n keys by count (ties by key), into keys/counts; returns how many. */
size_t rtab_top(const struct rtab *t, size_t n, const char **keys, long long *counts);
long long rtab_others(const struct rtab *t);
size_t rtab_size(const struct rtab *t);

/* mxrelayctl report (tools/ctl_report.c) */
int ctl_report(int argc, char **argv);
void ctl_report_usage(FILE *f);

#endif
