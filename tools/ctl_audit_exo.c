/*
 * mxrelayctl audit import-exo FILE.csv: read Microsoft 365's "SMTP AUTH
 * Clients" report export (parsed by tools/exo_csv.c) and keep a normalised
 * copy in DATA_DIR/exo-inventory.csv for `audit plan` and `m365 --plan`.
 */
#include "tools/ctl.h"
#include "tools/ctl_exo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/shared/config.h"

#define PROG "mxrelayctl audit import-exo"

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

int
exo_parse(const char *path, struct exo_row **rows, size_t *n, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	*rows = NULL;
	*n = 0;
	if (read_all(path, &buf, &len, err, errlen) != 0)
		return -1;
	rc = exo_parse_buf(path, buf, len, rows, n, err, errlen);
	free(buf);
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
		/* saturating: a report's counts are untrusted (up to INT64_MAX each) */
		total = rows[i].messages > INT64_MAX - total ? INT64_MAX : total + rows[i].messages;
		legacy += rows[i].tls10 > 0 || rows[i].tls11 > 0;
	}
	printf("imported %zu senders (%lld messages, %lld with TLS 1.0/1.1) into %s\n", n,
	       (long long)total, (long long)legacy, path);
	free(rows);
	return 0;
}
