/*
 * mxrelayctl backup FILE: an online backup of the spool while mxrelayd
 * runs (spool/spool_backup.c: SQLite's backup API, one consistent snapshot).
 *
 * The copy holds mail, so it is never readable by others, whatever the
 * umask: it is written into a new file beside FILE, made with O_CREAT|O_EXCL
 * mode 0600 (mkostemp) and fchmod'ed to 0600, owned by the caller; only a
 * complete copy that passed integrity_check gets the name FILE, by link(2)
 * (which refuses an existing FILE) or, with --force, rename(2). A sqlite3
 * `.backup` made under the usual umask 022 is 0644: readable mail (issue 16).
 */
#include "tools/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "spool/spool.h"

#define PROG "mxrelayctl backup"

struct bopts {
	const char *conf;
	bool force;
	const char *dest;
};

void
ctl_backup_usage(FILE *f)
{
	fputs("  backup [-c FILE] [--force] BACKUP\n"
	      "      an online copy of spool.db while mxrelayd runs (one consistent\n"
	      "      snapshot; the daemon keeps accepting and delivering), written as a\n"
	      "      new file mode 0600 owned by you, then checked (integrity_check).\n"
	      "      An existing BACKUP is refused unless --force. data_dir comes from FILE\n"
	      "      (default " CTL_DEFAULT_CONF " if present); reading it needs root or\n"
	      "      the daemon's user. Restore: stop mxrelayd, install -m 0600 -o mxrelay\n"
	      "      -g mxrelay BACKUP DATA_DIR/spool.db, remove spool.db-wal and\n"
	      "      spool.db-shm, start it; mail delivered since the backup goes again\n",
	      f);
}

static int
usage_error(const char *what, const char *arg)
{
	return ctl_usage_error(PROG, ctl_backup_usage, what, arg);
}

static int
parse_opts(int argc, char **argv, struct bopts *o)
{
	enum { OPT_FORCE = 256 };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			o->conf = optarg;
		else if (ch == OPT_FORCE)
			o->force = true;
		else
			return ctl_opt_end(ch, argv, PROG, ctl_backup_usage);
	}
	if (argc - optind != 1)
		return usage_error("name one BACKUP file", NULL);
	o->dest = argv[optind];
	return -1;
}

/* The new file's name: "DEST.XXXXXX", made 0600 and exclusive. fd, or -1 after a message. */
static int
make_temp(const char *dest, char **tmp)
{
	int fd;

	if (asprintf(tmp, "%s.XXXXXX", dest) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	/* mkostemp: O_CREAT|O_EXCL, 0600 before the umask; fchmod: exactly 0600 after it */
	if ((fd = mkostemp(*tmp, O_CLOEXEC)) < 0 || fchmod(fd, 0600) != 0) {
		fprintf(stderr, PROG ": cannot create %s: %s\n", *tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(*tmp);
		}
		free(*tmp);
		*tmp = NULL;
		return -1;
	}
	return fd;
}

/* The temp file and what SQLite may have left beside it. */
static void
remove_temp(const char *tmp)
{
	static const char *const sfx[] = {"", "-journal", "-wal", "-shm"};
	char p[4200];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", tmp, sfx[i]);
		unlink(p);
	}
}

/* tmp (complete, checked) becomes dest. 0, or -1 after a message. */
static int
place(const char *tmp, const char *dest, bool force)
{
	if (force) {
		if (rename(tmp, dest) == 0)
			return 0;
		fprintf(stderr, PROG ": rename %s to %s: %s\n", tmp, dest, strerror(errno));
		return -1;
	}
	/* link(2) refuses an existing dest atomically: no check-then-write race */
	if (link(tmp, dest) == 0) {
		unlink(tmp);
		return 0;
	}
	if (errno == EEXIST)
		fprintf(stderr, PROG ": %s exists (--force replaces it)\n", dest);
	else
		fprintf(stderr, PROG ": link %s to %s: %s\n", tmp, dest, strerror(errno));
	return -1;
}

/* The copy into dest. 0, or 1 after a message. */
static int
backup(const char *dir, const struct bopts *o)
{
	struct spool_backup_info info;
	char err[1024], *tmp = NULL;
	int fd, rc = 1;

	if ((fd = make_temp(o->dest, &tmp)) < 0)
		return 1;
	if (spool_backup(dir, tmp, &info, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto done;
	}
	if (fsync(fd) != 0) {
		fprintf(stderr, PROG ": fsync %s: %s\n", tmp, strerror(errno));
		goto done;
	}
	if (place(tmp, o->dest, o->force) != 0)
		goto done;
	printf("backup %s: %lld messages, %lld recipients to deliver, %lld bytes, "
	       "integrity %s, mode 0600\n",
	       o->dest, (long long)info.messages, (long long)info.pending, (long long)info.bytes,
	       info.integrity);
	rc = 0;
done:
	close(fd);
	if (rc != 0)
		remove_temp(tmp);
	free(tmp);
	return rc;
}

int
ctl_backup(int argc, char **argv)
{
	struct bopts o = {0};
	struct config *c = NULL;
	char src[4200];
	struct stat st;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (!o.force && lstat(o.dest, &st) == 0) {
		fprintf(stderr, PROG ": %s exists (--force replaces it)\n", o.dest);
		return 1;
	}
	if (ctl_load_config(PROG, o.conf, &c) != 0)
		return 1;
	snprintf(src, sizeof(src), "%s/spool.db", c->data_dir);
	if (access(src, R_OK) != 0 && errno != ENOENT) {
		fprintf(stderr, PROG ": cannot read %s: %s (root or the daemon's user may)\n", src,
		        strerror(errno));
		config_free(c);
		return 1;
	}
	rc = backup(c->data_dir, &o);
	config_free(c);
	return rc;
}
