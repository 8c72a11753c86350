/*
 * The CSV side of `mxrelayctl audit import-exo` (issue 15 item 7): Microsoft
 * 365's "SMTP AUTH Clients" report export, parsed from memory (so the fuzz
 * target runs the same code as the command).
 *
 * The report (Exchange admin center, Reports > Mail flow > SMTP AUTH
 * clients; learn.microsoft.com/exchange/monitoring/mail-flow-reports/
 * mfr-smtp-auth-clients-report) lists per sender: Sender address, Domain,
 * TLS 1.0, TLS 1.1, TLS 1.2 (percentages) and Messages sent. Columns are
 * found by header name, compared on letters and digits only and without
 * case, so "TLS 1.0 (%)", "tls1.0" and "TLS 1.0 percentage" all match; the
 * column order and any extra columns do not matter.
 *
 * The CSV is RFC 4180 (quoted fields, "" inside quotes, CRLF or LF), an
 * optional UTF-8 BOM. Bounded: the caller's buffer (EXO_MAX_FILE bytes from
 * a file), EXO_MAX_ROWS rows, EXO_MAX_FIELD bytes per field, MAX_COLS
 * columns. Never: reads files, prints, or touches the network.
 */
#include "tools/ctl_exo.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 64

enum col { COL_SENDER, COL_TLS10, COL_TLS11, COL_TLS12, COL_MESSAGES, COL__N };

/* Header names taken per column, as letters and digits in lower case. */
static const char *const col_names[COL__N][6] = {
    [COL_SENDER] = {"senderaddress", "sender", "userprincipalname", "upn", "mailbox", NULL},
    [COL_TLS10] = {"tls10", "tls10percentage", "tls10percent", NULL},
    [COL_TLS11] = {"tls11", "tls11percentage", "tls11percent", NULL},
    [COL_TLS12] = {"tls12", "tls12percentage", "tls12percent", NULL},
    [COL_MESSAGES] = {"messagessent", "messages", "messagecount", "count", NULL},
};
static const char *const col_label[COL__N] = {"Sender address", "TLS 1.0", "TLS 1.1", "TLS 1.2",
                                              "Messages sent"};

struct csv {
	const char *path;
	const char *p, *end;
	int line;
	char f[MAX_COLS][EXO_MAX_FIELD];
	size_t nf;
	int rec_line; /* where the current record starts */
};

/* One field into s->f[s->nf]; *eol set at the record's end. 0 / -1. */
static int
csv_field(struct csv *s, int *eol, char *err, size_t errlen)
{
	char *out = s->f[s->nf];
	size_t o = 0;
	int quoted = s->p < s->end && *s->p == '"';

	if (quoted)
		s->p++;
	for (;;) {
		char ch;
		if (s->p >= s->end) {
			if (quoted) {
				snprintf(err, errlen, "%s:%d: column %zu: quoted field not closed",
				         s->path, s->rec_line, s->nf + 1);
				return -1;
			}
			*eol = 1;
			break;
		}
		ch = *s->p++;
		if (quoted && ch == '"') {
			if (s->p < s->end && *s->p == '"') {
				s->p++;
			} else {
				quoted = 0;
				continue;
			}
		} else if (!quoted && ch == ',') {
			break;
		} else if (!quoted && (ch == '\n' || ch == '\r')) {
			if (ch == '\r' && s->p < s->end && *s->p == '\n')
				s->p++;
			s->line++;
			*eol = 1;
			break;
		} else if (ch == '\n' || ch == '\r' || ch == '\0') {
			snprintf(err, errlen, "%s:%d: column %zu: line break or NUL inside a field",
			         s->path, s->rec_line, s->nf + 1);
			return -1;
		}
		if (o + 1 >= EXO_MAX_FIELD) {
			snprintf(err, errlen, "%s:%d: column %zu: field longer than %d bytes",
			         s->path, s->rec_line, s->nf + 1, EXO_MAX_FIELD - 1);
			return -1;
		}
		out[o++] = ch;
	}
	out[o] = '\0';
	s->nf++;
	return 0;
}

/* The next record into s->f / s->nf (nf 0 at the end). Blank lines skipped. */
static int
csv_record(struct csv *s, char *err, size_t errlen)
{
	int eol = 0;

	s->nf = 0;
	while (s->p < s->end && (*s->p == '\n' || *s->p == '\r')) {
		if (*s->p == '\n')
			s->line++;
		else if (s->p + 1 >= s->end || s->p[1] != '\n')
			s->line++;
		s->p++;
	}
	if (s->p >= s->end)
		return 0;
	s->rec_line = s->line;
	while (!eol) {
		if (s->nf == MAX_COLS) {
			snprintf(err, errlen, "%s:%d: more than %d columns", s->path, s->rec_line,
			         MAX_COLS);
			return -1;
		}
		if (csv_field(s, &eol, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* Letters and digits of s in lower case. */
static void
header_key(const char *s, char *out, size_t len)
{
	size_t o = 0;
	for (; *s && o + 1 < len; s++)
		if (isalnum((unsigned char)*s))
			out[o++] = (char)tolower((unsigned char)*s);
	out[o] = '\0';
}

/* The column of each wanted field from the header record; -1 with err. */
static int
map_header(struct csv *s, int colof[COL__N], char *err, size_t errlen)
{
	char key[EXO_MAX_FIELD];

	for (int c = 0; c < COL__N; c++)
		colof[c] = -1;
	for (size_t i = 0; i < s->nf; i++) {
		header_key(s->f[i], key, sizeof key);
		for (int c = 0; c < COL__N; c++)
			for (int k = 0; col_names[c][k]; k++)
				if (colof[c] < 0 && strcmp(key, col_names[c][k]) == 0)
					colof[c] = (int)i;
	}
	for (int c = 0; c < COL__N; c++) {
		if (colof[c] < 0) {
			snprintf(err, errlen,
			         "%s:%d: column '%s': not in the header: export the SMTP AUTH "
			         "clients report (Exchange admin center, Reports > Mail flow) as CSV",
			         s->path, s->rec_line, col_label[c]);
			return -1;
		}
	}
	return 0;
}

/* A share: "", "12", "12.5", "12.5%", " 12 % " -> 0..100. 0 / -1. */
static int
parse_share(const char *v, double *out)
{
	char buf[64], *end;
	size_t n = 0;

	for (; *v && n + 1 < sizeof buf; v++)
		if (*v != ' ' && *v != '%')
			buf[n++] = *v;
	buf[n] = '\0';
	if (n == 0) {
		*out = 0;
		return 0;
	}
	errno = 0;
	*out = strtod(buf, &end);
	if (errno || *end || !isfinite(*out) || *out < 0 || *out > 100)
		return -1;
	return 0;
}

/* A count: digits, spaces and thousands separators allowed. 0 / -1. */
static int
parse_count(const char *v, int64_t *out)
{
	int64_t n = 0;
	int digits = 0;

	for (; *v; v++) {
		if (*v == ' ' || *v == ',')
			continue;
		if (!isdigit((unsigned char)*v) || n > INT64_MAX / 10 - 10)
			return -1;
		n = n * 10 + (*v - '0');
		digits++;
	}
	*out = n;
	return digits ? 0 : -1;
}

/* the domain is printed into -SenderDomains and shell lines (ctl_m365.c):
 * no '*', no blank, no shell character may get there (see ctl_exo.h) */
int
exo_domain_ok(const char *d)
{
	size_t label = 0, labels = 1, n = strlen(d);

	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || d[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (label == 0 || d[i - 1] == '-')
				return 0;
			label = 0;
			labels++;
			continue;
		}
		if (!isalnum((unsigned char)d[i]) && !(d[i] == '-' && label > 0))
			return 0;
		if (++label > 63)
			return 0;
	}
	return labels >= 2;
}

/* 1, 0 (not user@domain), or -1 (the domain is not a host name). */
static int
valid_sender(const char *v)
{
	const char *at = strrchr(v, '@');
	if (!at || at == v || !at[1] || strlen(v) > 254)
		return 0;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == '"')
			return 0;
	return exo_domain_ok(at + 1) ? 1 : -1;
}

static int
field_error(struct csv *s, int col, enum col c, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: column %d '%s': %s '%s'", s->path, s->rec_line, col + 1,
	         col_label[c], why, s->f[col]);
	return -1;
}

/* One data record into r. 0 / -1. */
static int
parse_row(struct csv *s, const int colof[COL__N], struct exo_row *r, char *err, size_t errlen)
{
	double *share[3] = {&r->tls10, &r->tls11, &r->tls12};

	for (int c = 0; c < COL__N; c++) {
		if ((size_t)colof[c] >= s->nf) {
			snprintf(err, errlen, "%s:%d: column %d '%s': missing: the row has %zu columns",
			         s->path, s->rec_line, colof[c] + 1, col_label[c], s->nf);
			return -1;
		}
	}
	memset(r, 0, sizeof *r);
	r->line = s->rec_line;
	switch (valid_sender(s->f[colof[COL_SENDER]])) {
	case 0:
		return field_error(s, colof[COL_SENDER], COL_SENDER,
		                   "not a mail address (want user@domain)", err, errlen);
	case -1:
		return field_error(s, colof[COL_SENDER], COL_SENDER,
		                   "its domain is not a host name (letters, digits and '-' in "
		                   "dot-separated labels, an IDN as its xn-- A-label; no '*')",
		                   err, errlen);
	}
	snprintf(r->sender, sizeof r->sender, "%s", s->f[colof[COL_SENDER]]);
	for (int c = COL_TLS10; c <= COL_TLS12; c++)
		if (parse_share(s->f[colof[c]], share[c - COL_TLS10]) != 0)
			return field_error(s, colof[c], (enum col)c,
			                   "not a percentage from 0 to 100", err, errlen);
	if (parse_count(s->f[colof[COL_MESSAGES]], &r->messages) != 0)
		return field_error(s, colof[COL_MESSAGES], COL_MESSAGES,
		                   "not a count of messages", err, errlen);
	return 0;
}

/* Every data record of s after its header. */
static int
parse_rows(struct csv *s, struct exo_row **rows, size_t *n, char *err, size_t errlen)
{
	int colof[COL__N];
	size_t cap = 0;

	if (csv_record(s, err, errlen) != 0)
		return -1;
	if (s->nf == 0) {
		snprintf(err, errlen, "%s:1: empty file: no header line", s->path);
		return -1;
	}
	if (map_header(s, colof, err, errlen) != 0)
		return -1;
	for (;;) {
		if (csv_record(s, err, errlen) != 0)
			return -1;
		if (s->nf == 0)
			return 0;
		if (s->nf == 1 && s->f[0][0] == '\0')
			continue;
		if (*n == EXO_MAX_ROWS) {
			snprintf(err, errlen, "%s:%d: more than %d senders", s->path, s->rec_line,
			         EXO_MAX_ROWS);
			return -1;
		}
		if (*n == cap) {
			struct exo_row *g = realloc(*rows, (cap = cap ? cap * 2 : 64) * sizeof *g);
			if (!g) {
				snprintf(err, errlen, "%s: out of memory", s->path);
				return -1;
			}
			*rows = g;
		}
		if (parse_row(s, colof, &(*rows)[*n], err, errlen) != 0)
			return -1;
		(*n)++;
	}
}

int
exo_parse_buf(const char *name, const char *buf, size_t len, struct exo_row **rows, size_t *n,
              char *err, size_t errlen)
{
	struct csv *s = calloc(1, sizeof *s);
	int rc;

	*rows = NULL;
	*n = 0;
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	s->path = name;
	s->p = buf;
	s->end = buf + len;
	s->line = 1;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		s->p += 3; /* the UTF-8 BOM Excel and the admin center write */
	rc = parse_rows(s, rows, n, err, errlen);
	free(s);
	if (rc != 0) {
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}
