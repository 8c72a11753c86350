/*
 * ctl_dkim_rotfile: the files and peers `dkim rotate` touches: its state
 * file, the atomic config rewrite (postconf -e style: temp file, same owner
 * and mode, a .bak, rename), the TXT lookup (tools/dnsq on the config's
 * dns_servers, the servers the daemon's dkim_require_published check asks),
 * and the reload of a running mxrelayd (INFO on its control socket for the
 * pid, then SIGHUP).
 *
 * Must never: change a file other than the config, the state file and
 * PATH.bak, nor install a config that does not load.
 */
#include "tools/ctl_dkim.h"
#include "tools/ctlsock.h"
#include "tools/json.h"
#include "tools/dnsq.h"
#include "mta/shared/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAX (64 * 1024) /* a state file is a few lines */
#define CONF_MAX (16u << 20)  /* a config above this is not ours to rewrite */

void
rot_state_path(const char *conf, const char *domain, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.dkim-rotate.%s", conf, domain);
}

char *
rot_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = cap >= CONF_MAX ? NULL : realloc(buf, cap + 65536);
			if (nb == NULL) {
				snprintf(err, errlen, "%s: too large", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
	fclose(f);
	return buf;
}

/* One "key = value" line of a state file into s. 0 / -1. */
static int
state_line(struct rot_state *s, const char *key, const char *val)
{
	struct rot_key *k;
	char alg[16];
	long long t;

	if (strcmp(key, "domain") == 0)
		return snprintf(s->domain, sizeof s->domain, "%s", val) < (int)sizeof s->domain
		           ? 0
		           : -1;
	if (strcmp(key, "phase") == 0) {
		s->phase = strcmp(val, "pending") == 0    ? ROT_PENDING
		           : strcmp(val, "switched") == 0 ? ROT_SWITCHED
		                                          : ROT_NONE;
		return s->phase == ROT_NONE ? -1 : 0;
	}
	if (strcmp(key, "started") == 0 || strcmp(key, "switched") == 0) {
		if (sscanf(val, "%lld", &t) != 1 || t < 0)
			return -1;
		*(key[1] == 't' ? &s->started : &s->switched) = (time_t)t;
		return 0;
	}
	if (strcmp(key, "retire_after_days") == 0)
		return sscanf(val, "%ld", &s->retire_days) == 1 && s->retire_days >= 0 ? 0 : -1;
	if (strcmp(key, "old") != 0 && strcmp(key, "new") != 0)
		return -1;
	if ((key[0] == 'o' ? s->nold : s->nnew) >= ROT_MAX_KEYS)
		return -1;
	k = key[0] == 'o' ? &s->old[s->nold++] : &s->new[s->nnew++];
	if (sscanf(val, "%63s %15s %4095s", k->selector, alg, k->path) != 3)
		return -1;
	k->alg = strcmp(alg, "ed25519") == 0 ? MXDKIM_ED25519 : MXDKIM_RSA;
	return 0;
}

int
rot_state_load(const char *path, struct rot_state *s, char *err, size_t errlen)
{
	size_t len, lineno = 0;
	char *text, *line, *next;

	memset(s, 0, sizeof *s);
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if ((text = rot_read_file(path, &len, err, errlen)) == NULL)
		return -1;
	for (line = text; line != NULL && *line != '\0'; line = next) {
		char key[32], val[4400];

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (strlen(line) >= sizeof val ||
		    sscanf(line, "%31s = %4399[^\n]", key, val) != 2 ||
		    state_line(s, key, val) != 0) {
			snprintf(err, errlen, "%s:%zu: not a line this tool wrote", path, lineno);
			free(text);
			return -1;
		}
	}
	free(text);
	if (s->phase == ROT_NONE || s->domain[0] == '\0' || s->nnew == 0 || s->nold == 0) {
		snprintf(err, errlen, "%s: incomplete (phase, domain, old and new keys needed)",
		         path);
		return -1;
	}
	return 0;
}

/* Write len bytes to a new temp file beside path, fsync'ed, with mode; its name into tmp. */
static int
write_temp(const char *path, const char *text, size_t len, mode_t mode, char *tmp, size_t tmplen,
           char *err, size_t errlen)
{
	int fd;

	snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto fail;
	return close(fd) == 0 ? 0
	                      : (unlink(tmp), snprintf(err, errlen, "cannot write %s", tmp), -1);
fail:
	snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	unlink(tmp);
	return -1;
}

int
rot_state_save(const char *path, const struct rot_state *s, char *err, size_t errlen)
{
	char buf[STATE_MAX], tmp[PATH_MAX + 32];
	size_t n = 0;

	n += (size_t)snprintf(buf + n, sizeof buf - n,
	                      "# mxrelayctl dkim rotate: the key rotation of %s (written by the "
	                      "tool; see mxrelayctl dkim rotate %s --status)\n"
	                      "domain = %s\nphase = %s\nstarted = %lld\nswitched = %lld\n"
	                      "retire_after_days = %ld\n",
	                      s->domain, s->domain, s->domain,
	                      s->phase == ROT_SWITCHED ? "switched" : "pending",
	                      (long long)s->started, (long long)s->switched, s->retire_days);
	for (size_t i = 0; i < s->nold && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "old = %s %s %s\n",
		                      s->old[i].selector, mxdkim_alg_name(s->old[i].alg),
		                      s->old[i].path);
	for (size_t i = 0; i < s->nnew && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "new = %s %s %s\n",
		                      s->new[i].selector, mxdkim_alg_name(s->new[i].alg),
		                      s->new[i].path);
	if (n >= sizeof buf) {
		snprintf(err, errlen, "%s: state too large", path);
		return -1;
	}
	if (write_temp(path, buf, n, 0600, tmp, sizeof tmp, err, errlen) != 0)
		return -1;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
rot_conf_writable(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
	if (access(path, W_OK) != 0 || access(dir, W_OK) != 0) {
		snprintf(
		    err, errlen,
		    "%s is not writable (%s): the rotation edits it, with a temp file and a .bak "
		    "in %s",
		    path, strerror(errno), dir);
		return -1;
	}
	return 0;
}

/* Make the directory entry of a rename durable. */
static void
sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
}

int
rot_replace_config(const char *conf, const char *old, size_t oldlen, const char *text, char *bak,
                   size_t baklen, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 32], btmp[PATH_MAX + 48], e[1024], path[PATH_MAX];
	struct config *c = NULL;
	struct stat st, bst;

	/* a symlinked config: replace the file it points to, keep the link */
	if (realpath(conf, path) == NULL) {
		snprintf(err, errlen, "%s: %s", conf, strerror(errno));
		return -1;
	}

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (rot_conf_writable(path, err, errlen) != 0)
		return -1;
	if (write_temp(path, text, strlen(text), st.st_mode & 07777, tmp, sizeof tmp, err,
	               errlen) != 0)
		return -1;
	if (chown(tmp, st.st_uid, st.st_gid) != 0 && geteuid() == 0) {
		snprintf(err, errlen, "cannot give %s the owner of %s: %s", tmp, path,
		         strerror(errno));
		goto fail;
	}
	if (config_load(&c, tmp, e, sizeof e) != 0) {
		snprintf(err, errlen, "the edited config would not load, left unchanged: %s", e);
		goto fail;
	}
	config_free(c);
	/* never overwrite an earlier backup (the switch's, when retiring; the admin's own) */
	snprintf(bak, baklen, "%s.bak", path);
	for (int i = 1; lstat(bak, &bst) == 0; i++) {
		if (i == 100) {
			snprintf(err, errlen, "%s.bak and .bak.1 to .bak.99 exist: remove old ones",
			         path);
			goto fail;
		}
		snprintf(bak, baklen, "%s.bak.%d", path, i);
	}
	if (write_temp(bak, old, oldlen, st.st_mode & 0600, btmp, sizeof btmp, err, errlen) != 0)
		goto fail;
	if (rename(btmp, bak) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
		unlink(btmp);
		goto fail;
	}
	sync_dir_of(path);
	return 0;
fail:
	unlink(tmp);
	return -1;
}

const char *
rot_fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
	return buf;
}

void
rot_append(char **buf, size_t *len, const char *s, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	if (*buf == NULL)
		abort();
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* ---- DNS: tools/dnsq, on the config's dns_servers (set by ctl_load_config) ---- */

int
rot_lookup_txt(const char *name, char **txt, char *why, size_t whylen)
{
	struct dnsq_list l;
	enum dnsq_status st = dnsq_txt(name, &l);

	*txt = NULL;
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA)
		snprintf(why, whylen, "no TXT record at %s (not published yet?)", name);
	else if (st != DNSQ_OK)
		snprintf(why, whylen, "%s", dnsq_strerror(st));
	else if (l.n != 1)
		snprintf(why, whylen,
		         "%zu TXT records at %s: publish exactly one (RFC 6376 3.6.2.2)", l.n,
		         name);
	else if ((*txt = strdup(l.v[0])) == NULL)
		snprintf(why, whylen, "out of memory");
	dnsq_list_free(&l);
	return *txt != NULL ? 0 : -1;
}

/* ---- reload ---- */

int
rot_reload(const struct config *c, char *msg, size_t msglen)
{
	const char *path = c->control_socket;
	struct json *doc = NULL;
	char err[4200];
	long long pid;
	int rc = -1;

	switch (ctlsock_ask(path, "INFO\n", 5, &doc, NULL, err, sizeof err)) {
	case CTLSOCK_OK:
		break;
	case CTLSOCK_DOWN:
		snprintf(msg, msglen, "mxrelayd is not running (control socket %s)", err);
		return 1;
	case CTLSOCK_BADJSON:
		snprintf(msg, msglen, "control socket %s: no pid in mxrelayd's INFO reply", path);
		return -1;
	default:
		snprintf(msg, msglen, "cannot reach mxrelayd (control socket %s)", err);
		return -1;
	}
	if ((pid = json_geti(doc, "pid", 0)) <= 1) {
		snprintf(msg, msglen, "control socket %s: no pid in mxrelayd's INFO reply", path);
		goto done;
	}
	if (kill((pid_t)pid, SIGHUP) != 0) {
		snprintf(msg, msglen, "cannot signal mxrelayd (pid %lld): %s", pid,
		         strerror(errno));
		goto done;
	}
	snprintf(msg, msglen,
	         "Reloaded mxrelayd: SIGHUP sent to pid %lld (from INFO on its control socket %s); "
	         "it logs event=reloaded, or event=reload_failed and keeps the old keys",
	         pid, path);
	rc = 0;
done:
	json_free(doc);
	return rc;
}
