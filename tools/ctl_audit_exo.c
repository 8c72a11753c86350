/*
 * mxrelayctl audit import-exo FILE.csv: read Microsoft 365's "SMTP AUTH
 * Clients" report export and keep a normalised copy in
 * DATA_DIR/exo-inventory.csv for `audit plan` and `m365 --plan`.
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
 * optional UTF-8 BOM. Bounded: EXO_MAX_FILE bytes, EXO_MAX_ROWS rows,
 * EXO_MAX_FIELD bytes per field, MAX_COLS columns.
 */
#include "tools/ctl.h"
#include "tools/ctl_exo.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/shared/config.h"

#define PROG "mxrelayctl audit import-exo"
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

/* Read at most EXO_MAX_FILE bytes of path into *buf (malloc'd). */
static int
read_all(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*buf = malloc(EXO_MAX_FILE + 1);
	if (!*buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	n = fread(*buf, 1, EXO_MAX_FILE + 1, f);
	fclose(f);
	if (n > EXO_MAX_FILE) {
		free(*buf);
		snprintf(err, errlen, "%s: larger than %u bytes: export a shorter date range", path,
		         EXO_MAX_FILE);
		return -1;
	}
	*len = n;
	return 0;
}

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

static int
valid_sender(const char *v)
{
	const char *at = strrchr(v, '@');
	if (!at || at == v || !at[1] || strlen(v) > 254)
		return 0;
	for (; *v; v++)
		if ((unsigned char)*v <= ' ' || *v == '<' || *v == '>' || *v == ',' || *v == '"')
			return 0;
	return 1;
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
	if (!valid_sender(s->f[colof[COL_SENDER]]))
		return field_error(s, colof[COL_SENDER], COL_SENDER,
		                   "not a mail address (want user@domain)", err, errlen);
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
exo_parse(const char *path, struct exo_row **rows, size_t *n, char *err, size_t errlen)
{
	struct csv *s;
	char *buf;
	size_t len;
	int rc;

	*rows = NULL;
	*n = 0;
	if (read_all(path, &buf, &len, err, errlen) != 0)
		return -1;
	s = calloc(1, sizeof *s);
	if (!s) {
		free(buf);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	s->path = path;
	s->p = buf;
	s->end = buf + len;
	s->line = 1;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		s->p += 3; /* the UTF-8 BOM Excel and the admin center write */
	rc = parse_rows(s, rows, n, err, errlen);
	free(s);
	free(buf);
	if (rc != 0) {
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

void
exo_store_path(const struct config *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", c->data_dir, EXO_STORE_NAME);
}

int
exo_store_load(const struct config *c, struct exo_row **rows, size_t *n, char *err,
               size_t errlen)
{
	char path[4096];

	exo_store_path(c, path, sizeof path);
	if (access(path, F_OK) != 0) {
		snprintf(err, errlen,
		         "no Exchange Online inventory at %s: run mxrelayctl audit import-exo "
		         "FILE.csv first",
		         path);
		return -1;
	}
	return exo_parse(path, rows, n, err, errlen);
}

/* The rows, normalised, to path.tmp (0600) then renamed over path. */
static int
store_write(const char *path, const struct exo_row *rows, size_t n, char *err, size_t errlen)
{
	char tmp[4200];
	FILE *f;
	int fd, bad;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fputs("Sender address,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent\r\n", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s,%g,%g,%g,%lld\r\n", rows[i].sender, rows[i].tls10, rows[i].tls11,
		        rows[i].tls12, (long long)rows[i].messages);
	bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

void
ctl_audit_import_usage(FILE *f)
{
	fputs("  audit import-exo FILE.csv [-c CONF]\n"
	      "      keep Microsoft 365's SMTP AUTH clients report (CSV export) in\n"
	      "      DATA_DIR/" EXO_STORE_NAME " for audit plan and m365 --plan\n",
	      f);
}

int
ctl_audit_import_exo(int argc, char **argv)
{
	const char *conf = NULL, *file = NULL;
	struct exo_row *rows = NULL;
	struct config *c = NULL;
	char err[1024], path[4096];
	size_t n = 0;
	int64_t total = 0, legacy = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return ctl_help(ctl_audit_import_usage);
		else if (argv[i][0] == '-' && argv[i][1])
			return ctl_usage_error(PROG, ctl_audit_import_usage, "unknown option", argv[i]);
		else if (file)
			return ctl_usage_error(PROG, ctl_audit_import_usage, "unexpected argument", argv[i]);
		else
			file = argv[i];
	}
	if (!file)
		return ctl_usage_error(PROG, ctl_audit_import_usage, "missing FILE.csv", NULL);
	if (ctl_load_config(PROG, conf, &c) != 0)
		return 1;
	exo_store_path(c, path, sizeof path);
	config_free(c);
	if (exo_parse(file, &rows, &n, err, sizeof err) != 0 ||
	    store_write(path, rows, n, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		free(rows);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		total += rows[i].messages;
		legacy += rows[i].tls10 > 0 || rows[i].tls11 > 0;
	}
	printf("imported %zu senders (%lld messages, %lld with TLS 1.0/1.1) into %s\n", n,
	       (long long)total, (long long)legacy, path);
	free(rows);
	return 0;
}
