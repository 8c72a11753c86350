/*
 * creds_file: rewriting the credentials file for mxrelayctl passwd: lock,
 * re-read, update or delete one user, write a temp file, fsync, rename,
 * fsync the directory. Keeps every other line and comment as it was.
 */
#include "mta/shared/creds_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- rewriting the file (mxrelayctl passwd) ---- */

/*
 * Open and flock PATH, creating it empty (0640) when absent. Writers replace
 * the file by rename, so after the lock is ours check that PATH still names
 * the inode we locked; if not, a writer got in between: start over.
 */
static int
lock_path(const char *path, int *fdp, int *createdp, struct stat *st, char *err, size_t errlen)
{
	struct stat now;
	int tries, fd;

	for (tries = 0; tries < 100; tries++) {
		*createdp = 0;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT) {
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_CREAT | O_EXCL, 0640);
			if (fd < 0 && errno == EEXIST)
				continue;
			if (fd < 0 && errno == ENOENT) {
				util_seterrf(err, errlen, "%s: cannot create: no such directory",
				             path);
				return -1;
			}
			*createdp = fd >= 0;
		}
		if (fd < 0) {
			util_seterrf(err, errlen, "%s: %s", path,
			             errno == ELOOP ? "is a symbolic link; refusing to replace it"
			                            : strerror(errno));
			return -1;
		}
		if (flock(fd, LOCK_EX) < 0 || fstat(fd, st) < 0) {
			util_seterrf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st->st_mode)) {
			util_seterrf(err, errlen, "%s: not a regular file", path);
			goto fail;
		}
		if (stat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino) {
			*fdp = fd;
			return 0;
		}
		close(fd);
	}
	util_seterrf(err, errlen, "%s: file keeps changing; cannot lock it", path);
	return -1;
fail:
	if (*createdp)
		unlink(path);
	close(fd);
	return -1;
}

static int
sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rc;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Write LINES to FD (always closed) and make them durable. errno on -1. */
static int
write_lines(int fd, const struct lines *l)
{
	FILE *f = fdopen(fd, "w");
	size_t i;
	int rc = 0, saved;

	if (!f) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	for (i = 0; i < l->n; i++) {
		fputs(l->v[i], f);
		putc('\n', f);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -1;
	saved = errno;
	if (fclose(f) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	errno = saved;
	return rc;
}

/*
 * Write LINES to a temp file beside PATH with PATH's mode, owner and group
 * (0640 and ours when CREATED), fsync, rename over PATH, fsync the directory.
 * *renamed tells the caller PATH now holds the new content even on error.
 */
static int
replace_file(const char *path, const struct lines *l, int created, const struct stat *st,
             int *renamed, char *err, size_t errlen)
{
	char *tmp = NULL;
	int fd = -1, rc = -1;

	*renamed = 0;
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		util_seterrf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		util_seterrf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	/* the daemon reads this file through its group: losing the group would
	 * lock it out on the next reload, so that is an error, not a warning */
	if (!created && (st->st_uid != geteuid() || st->st_gid != getegid()) &&
	    fchown(fd, st->st_uid, st->st_gid) < 0) {
		util_seterrf(err, errlen, "%s: cannot keep the file's owner and group: %s", path,
		             strerror(errno));
		goto done;
	}
	if (fchmod(fd, created ? 0640 : st->st_mode & 07777) < 0) {
		util_seterrf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	rc = write_lines(fd, l);
	fd = -1;
	if (rc < 0) {
		util_seterrf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	rc = -1;
	if (rename(tmp, path) < 0) {
		util_seterrf(err, errlen, "%s: rename: %s", path, strerror(errno));
		goto done;
	}
	*renamed = 1;
	if (sync_dir(path) < 0) {
		util_seterrf(err, errlen, "%s: fsync of the directory: %s", path, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	if (!*renamed)
		unlink(tmp);
	free(tmp);
	return rc;
}

static int
join_senders(char *const *v, size_t n, char *out, size_t outlen)
{
	size_t used = 0, i, len;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		len = strlen(v[i]);
		if (used + len + 2 > outlen)
			return -1;
		if (i > 0)
			out[used++] = ',';
		memcpy(out + used, v[i], len + 1);
		used += len;
	}
	return 0;
}

/* The new line for USER: the given fields, the existing entry's otherwise. */
static int
build_line(char *line, size_t size, const char *user, const char *hash, const char *senders,
           int disabled, time_t sunset, const struct entry *e, char *err, size_t errlen)
{
	char list[CREDS_MAX_LINE + 1], *copy = NULL, **v = NULL, opt[32] = "";
	size_t n = 0;
	int len, rc = -1;

	if (senders) {
		copy = strdup(senders);
		if (!copy) {
			util_seterrf(err, errlen, "out of memory");
			goto done;
		}
		if (creds_parse_senders(copy, &v, &n, err, errlen) < 0)
			goto done;
	} else if (e) {
		v = e->cred.senders;
		n = e->cred.nsenders;
	}
	if (join_senders(v, n, list, sizeof list) < 0)
		goto toolong;
	if (disabled < 0)
		disabled = e ? e->cred.disabled : 0;
	if (sunset < 0)
		sunset = e ? e->cred.sunset : 0;
	if (sunset > 0) {
		memcpy(opt, ":sunset=", 9);
		creds_format_date(sunset, opt + 8, sizeof opt - 8);
	}
	len = snprintf(line, size, "%s:%s:%s:%s%s", user, hash ? hash : e->cred.hash,
	               disabled ? "disabled" : "enabled", list, opt);
	if (len < 0 || (size_t)len >= size || len > CREDS_MAX_LINE)
		goto toolong;
	rc = 0;
	goto done;
toolong:
	util_seterrf(err, errlen, "the line for user '%s' would be longer than %d bytes", user,
	             CREDS_MAX_LINE);
done:
	if (copy)
		free(v);
	free(copy);
	return rc;
}

/* The arguments of creds_update_file, checked before the file is touched. */
static int
check_update(const char *user, const char *hash, const char *senders, int disabled, char *err,
             size_t errlen)
{
	char why[256];

	if (creds_check_user(user, err, errlen) < 0)
		return -1;
	if (hash && creds_check_hash(hash, why, sizeof why) < 0) {
		util_seterrf(err, errlen, "%s", why);
		return -1;
	}
	if (senders && creds_check_senders(senders, err, errlen) < 0)
		return -1;
	if (disabled < -1 || disabled > 1) {
		util_seterrf(err, errlen, "disabled must be -1, 0 or 1");
		return -1;
	}
	return 0;
}

/* LINE replaces the entry E's line in place (order and comments kept), or is appended. */
static int
put_line(struct lines *l, const struct entry *e, const char *line, char *err, size_t errlen)
{
	if (e) {
		char *copy = strdup(line);

		if (!copy) {
			util_seterrf(err, errlen, "out of memory");
			return -1;
		}
		free(l->v[e->line - 1]);
		l->v[e->line - 1] = copy;
	} else if (creds_lines_push(l, line) < 0) {
		util_seterrf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
creds_update_file(const char *path, const char *user, const char *hash, const char *senders,
                  int disabled, char *err, size_t errlen)
{
	return creds_update_file_sunset(path, user, hash, senders, disabled, -1, err, errlen);
}

/* The file locked and read: fd holds the flock, lines every raw line, c the users. */
struct locked {
	int fd, created;
	struct stat st;
	struct creds *c;
	struct lines lines;
};

/* Lock PATH (create: an absent file is made empty) and read it. 0 / -1 (unlock_free still due). */
static int
lock_load(const char *path, int create, struct locked *lk, char *err, size_t errlen)
{
	FILE *in = NULL;
	int dupfd, rc = -1;

	memset(lk, 0, sizeof(*lk));
	lk->fd = -1;
	if (!create && access(path, F_OK) != 0) {
		util_seterrf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (lock_path(path, &lk->fd, &lk->created, &lk->st, err, errlen) < 0)
		return -1;
	if (lk->created && !create) {
		util_seterrf(err, errlen, "%s: no such file", path);
		return -1;
	}
	lk->c = calloc(1, sizeof *lk->c);
	dupfd = fcntl(lk->fd, F_DUPFD_CLOEXEC, 0);
	/* read through a dup: closing the FILE must not drop the lock on fd */
	in = dupfd >= 0 ? fdopen(dupfd, "r") : NULL;
	if (!lk->c || !in) {
		util_seterrf(err, errlen, "%s: %s", path, strerror(errno));
		if (dupfd >= 0 && !in)
			close(dupfd);
	} else {
		rc = creds_load_stream(lk->c, in, path, &lk->lines, err, errlen);
	}
	if (in)
		fclose(in);
	return rc;
}

/* Unlock and free; an empty file lock_load made is removed unless renamed over. */
static void
unlock_free(const char *path, struct locked *lk, int renamed)
{
	if (lk->created && !renamed)
		unlink(path);
	if (lk->fd >= 0)
		close(lk->fd);
	creds_lines_free(&lk->lines);
	creds_free(lk->c);
}

int
creds_update_file_sunset(const char *path, const char *user, const char *hash,
                         const char *senders, int disabled, time_t sunset, char *err,
                         size_t errlen)
{
	char line[CREDS_MAX_LINE + 2];
	struct locked lk;
	struct entry *e;
	int renamed = 0, rc = -1;

	if (check_update(user, hash, senders, disabled, err, errlen) < 0)
		return -1;
	if (lock_load(path, 1, &lk, err, errlen) < 0)
		goto done;
	e = creds_find_entry(lk.c, user);
	if (!e && !hash) {
		util_seterrf(err, errlen,
		             "%s: user '%s' does not exist; a new user needs a password", path,
		             user);
		goto done;
	}
	if (build_line(line, sizeof line, user, hash, senders, disabled, sunset, e, err, errlen) < 0)
		goto done;
	if (put_line(&lk.lines, e, line, err, errlen) < 0)
		goto done;
	rc = replace_file(path, &lk.lines, lk.created, &lk.st, &renamed, err, errlen);
done:
	unlock_free(path, &lk, renamed);
	return rc;
}

int
creds_delete_user(const char *path, const char *user, char *err, size_t errlen)
{
	struct locked lk;
	struct entry *e;
	int renamed = 0, rc = -1;
	size_t i;

	if (creds_check_user(user, err, errlen) < 0)
		return -1;
	if (lock_load(path, 0, &lk, err, errlen) < 0)
		goto done;
	if ((e = creds_find_entry(lk.c, user)) == NULL) {
		util_seterrf(err, errlen, "%s: no user '%s'", path, user);
		goto done;
	}
	/* its one line goes; every other line and comment stays as it was */
	i = e->line - 1;
	free(lk.lines.v[i]);
	memmove(&lk.lines.v[i], &lk.lines.v[i + 1], (lk.lines.n - i - 1) * sizeof(*lk.lines.v));
	lk.lines.n--;
	rc = replace_file(path, &lk.lines, 0, &lk.st, &renamed, err, errlen);
done:
	unlock_free(path, &lk, renamed);
	return rc;
}
