/* runas: the account mxrelayd runs as, the switch to it, the DKIM key rule (see runas.h). */
#include "mta/runas.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"

/* The plan in force, for runas_key_exposed (set by runas_plan and runas_stay). */
static struct runas current;
static bool current_set;

static void
name_of_group(gid_t gid, char *out, size_t outlen)
{
	struct group *gr = getgrgid(gid);
	if (gr != NULL)
		snprintf(out, outlen, "%s", gr->gr_name);
	else
		snprintf(out, outlen, "%u", (unsigned)gid);
}

/* "FILE:LINE: " when the key was set on a line of a file, else "". */
static void
where(const struct config *c, int line, char *out, size_t outlen)
{
	if (c->path != NULL && line > 0)
		snprintf(out, outlen, "%s:%d: ", c->path, line);
	else
		out[0] = '\0';
}

/* The account a root start switches to: `user`, else mxrelay, else nobody. */
static int
plan_drop(const struct config *c, struct runas *a, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	char at[512];

	if (c->user != NULL)
		pw = getpwnam(c->user);
	else if ((pw = getpwnam("mxrelay")) == NULL)
		pw = getpwnam("nobody");
	if (pw == NULL) {
		where(c, c->user_line, at, sizeof(at));
		if (c->user != NULL)
			snprintf(err, errlen,
				 "%suser: \"%s\" does not exist: create it (useradd --system "
				 "--home-dir /var/lib/mxrelay --shell /usr/sbin/nologin %s) or set "
				 "user to an existing account",
				 at, c->user, c->user);
		else
			snprintf(err, errlen, "user: neither mxrelay nor nobody exists: set user "
					      "to the account mxrelayd should run as");
		return -1;
	}
	a->drop_uid = pw->pw_uid;
	a->drop_gid = pw->pw_gid;
	snprintf(a->drop_user, sizeof(a->drop_user), "%s", pw->pw_name);
	name_of_group(pw->pw_gid, a->drop_group, sizeof(a->drop_group));
	return 0;
}

int
runas_plan(const struct config *c, struct runas *a, char *err, size_t errlen)
{
	struct passwd *pw;

	memset(a, 0, sizeof(*a));
	a->root_start = geteuid() == 0;
	if ((a->root_start || c->user != NULL) && plan_drop(c, a, err, errlen) != 0)
		return -1;
	if (a->root_start) {
		a->uid = a->drop_uid;
		a->gid = a->drop_gid;
		snprintf(a->user, sizeof(a->user), "%s", a->drop_user);
		snprintf(a->group, sizeof(a->group), "%s", a->drop_group);
		a->drop = a->uid != 0;
		a->strict = c->user != NULL;
		/* only the embedded default (README command 1) may fall back to root */
		a->fallback = c->user == NULL && c->path == NULL;
	} else {
		/* not root: no switch; `user` only names the daemon's group for the key rule */
		a->uid = geteuid();
		a->gid = getegid();
		if ((pw = getpwuid(a->uid)) != NULL)
			snprintf(a->user, sizeof(a->user), "%s", pw->pw_name);
		else
			snprintf(a->user, sizeof(a->user), "uid %u", (unsigned)a->uid);
		name_of_group(a->gid, a->group, sizeof(a->group));
		a->strict = true;
		if (c->user == NULL) {
			a->drop_uid = a->uid;
			a->drop_gid = a->gid;
			snprintf(a->drop_user, sizeof(a->drop_user), "%s", a->user);
			snprintf(a->drop_group, sizeof(a->drop_group), "%s", a->group);
		}
	}
	current = *a;
	current_set = true;
	return 0;
}

void
runas_stay(struct runas *a)
{
	a->uid = geteuid();
	a->gid = getegid();
	snprintf(a->user, sizeof(a->user), "root");
	name_of_group(a->gid, a->group, sizeof(a->group));
	a->drop = false;
	current = *a;
}

/*
 * Hand the files mxrelayd made in data_dir to the daemon user too: a spool
 * left by a run that stayed root would be unwritable after the switch.
 * Never through a symlink or a hard link (data_dir may belong to that user
 * already, who could plant one pointing at a root file).
 */
static void
chown_own_files(const char *data_dir, uid_t uid, gid_t gid)
{
	static const char *const names[] = {"spool.db", "spool.db-wal", "spool.db-shm",
					    "tls-cert.pem", "tls-key.pem"};
	char path[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", data_dir, names[i]);
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    (st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) != 0)
			log_warn("event=privileges path=%s error=\"chown: %s\"", path,
				 strerror(errno));
		close(fd);
	}
}

int
runas_switch(const struct runas *a, const char *data_dir, char *err, size_t errlen)
{
	if (!a->drop)
		return 0;
	if (chown(data_dir, a->uid, a->gid) != 0) {
		snprintf(err, errlen, "chown %s: %s", data_dir, strerror(errno));
		return -1;
	}
	chown_own_files(data_dir, a->uid, a->gid);
	/* the user's supplementary groups too, as systemd's User= gives them */
	if (initgroups(a->user, a->gid) != 0 || setgid(a->gid) != 0 || setuid(a->uid) != 0 ||
	    setuid(0) == 0) {
		snprintf(err, errlen, "cannot drop privileges to %s: %s", a->user, strerror(errno));
		return -1;
	}
	log_info("event=privileges user=%s uid=%u", a->user, (unsigned)a->uid);
	return 0;
}

/* Which bits of mode expose the key, as words; "" when none. */
static const char *
exposure(const struct stat *st, bool group_ok)
{
	mode_t m = st->st_mode & 0777;

	if (m & 0002)
		return "writable by every user";
	if (m & 0004)
		return "readable by every user";
	if (m & 0020)
		return "writable by its group";
	if ((m & 0040) && !group_ok)
		return "readable by its group, which is not the daemon's";
	return "";
}

int
runas_key_exposed(const char *path, char *why, size_t whylen, char *fix, size_t fixlen)
{
	struct runas a = current;
	struct stat st;
	char gname[64], dname[64];

	if (!current_set) {
		a.uid = geteuid();
		a.gid = a.drop_gid = getegid();
	}
	if (stat(path, &st) != 0)
		return 0;
	bool group_ok = st.st_gid == a.gid || st.st_gid == a.drop_gid;
	const char *w = exposure(&st, group_ok);
	if (*w == '\0')
		return 0;
	name_of_group(st.st_gid, gname, sizeof(gname));
	snprintf(why, whylen, "%s (mode %04o, group %s)", w, (unsigned)(st.st_mode & 07777),
		 gname);
	/*
	 * The fix keeps the key readable by whoever reads it: its owner, or root
	 * at a root start that has no `user` line (then the daemon's group may be
	 * nogroup: no reason to let it in). Otherwise the daemon account reads
	 * it through the daemon's group, as under the systemd unit, and after
	 * SIGHUP for a changed key.
	 */
	if (st.st_uid == a.uid || a.uid == 0 || (a.root_start && !a.strict)) {
		mode_t keep = (st.st_mode & 0600) | (group_ok ? (st.st_mode & 0040) : 0);
		snprintf(fix, fixlen, "chmod %04o %s", (unsigned)keep, path);
	} else {
		name_of_group(a.drop_gid, dname, sizeof(dname));
		snprintf(fix, fixlen, "chgrp %s %s && chmod 0640 %s", dname, path, path);
	}
	return 1;
}
