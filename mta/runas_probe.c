/*
 * runas_probe: can the daemon's account reach the paths mxrelayd needs (see
 * runas.h)? A child process takes that account's uid, gid and supplementary
 * groups and walks each path with stat(2) and access(2): every folder on the
 * way must be searchable, the end readable or writable as needed. The
 * kernel answers, so ACLs, symlinks and groups count exactly as they will
 * after the switch. The parent turns the first failure into one line.
 */
#include "mta/runas.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/util.h"

enum need {
	N_READ,		/* a file read by the daemon */
	N_RW,		/* a file of its own in data_dir */
	N_DIR,		/* data_dir: searchable, and readable and writable (or creatable) */
	N_SOCKDIR,	/* the folder of a socket: writable and searchable */
};

enum pstatus { P_OK, P_PARENT, P_SELF, P_CREATE, P_OTHER };

struct probe {
	const char *label;	/* the configuration key */
	const char *shown;	/* the path as configured */
	int line;		/* where the key was set, 0: default */
	enum need need;
	bool reload;		/* read again on SIGHUP */
	bool own;		/* a file mxrelayd made in data_dir */
	char abs[PATH_MAX];
};

struct result {
	int status;
	int at;			/* length of the failing prefix of abs */
	int err;
};

struct probes {
	struct probe *v;
	size_t n, cap;
};

/* path made absolute against the working directory, empty and "." components removed. */
static int
abs_path(const char *path, char *out, size_t outlen)
{
	char tmp[PATH_MAX], cwd[PATH_MAX] = "";
	size_t o = 0;

	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", cwd, path) >= sizeof(tmp))
		return -1;
	for (char *save = NULL, *comp = strtok_r(tmp, "/", &save); comp != NULL;
	     comp = strtok_r(NULL, "/", &save)) {
		size_t n = strlen(comp);
		if (strcmp(comp, ".") == 0)
			continue;
		if (o + n + 2 > outlen)
			return -1;
		out[o++] = '/';
		memcpy(out + o, comp, n);
		o += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

static void
add(struct probes *ps, const char *label, const char *path, int line, enum need need)
{
	struct probe *p;

	if (path == NULL)
		return;
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->v = xrealloc(ps->v, ps->cap * sizeof(*ps->v));
	}
	p = &ps->v[ps->n];
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->shown = path;
	p->line = line;
	p->need = need;
	if (abs_path(path, p->abs, sizeof(p->abs)) != 0)
		return; /* too long to probe: the open itself will say so */
	ps->n++;
}

/* The folder holding a socket, unless it is data_dir (probed as such). */
static void
add_sockdir(struct probes *ps, const char *label, const char *sock, int line, const char *data_abs)
{
	char dir[PATH_MAX];
	size_t before = ps->n;

	add(ps, label, sock, line, N_SOCKDIR);
	if (ps->n == before)
		return;
	snprintf(dir, sizeof(dir), "%s", ps->v[before].abs);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (strcmp(dir, data_abs) == 0)
		ps->n--;
	else
		snprintf(ps->v[before].abs, sizeof(ps->v[before].abs), "%s", dir);
}

/* data_dir's own files: taken over at a root start, so checked only without one. */
static void
add_own_files(struct probes *ps, const struct config *c)
{
	static const char *const names[] = {"spool.db", "spool.db-wal", "spool.db-shm",
					    "tls-cert.pem", "tls-key.pem"};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", c->data_dir, names[i]);
		size_t before = ps->n;
		add(ps, "data_dir", c->data_dir, c->data_dir_line, i < 3 ? N_RW : N_READ);
		if (ps->n > before) {
			ps->v[before].own = true;
			abs_path(path, ps->v[before].abs, sizeof(ps->v[before].abs));
		}
	}
}

static void
collect(const struct config *c, const struct runas *a, unsigned which, struct probes *ps)
{
	if (which & RUNAS_AFTER) {
		add(ps, "data_dir", c->data_dir, c->data_dir_line, N_DIR);
		if (ps->n == 0)
			return;
		char data_abs[PATH_MAX];
		snprintf(data_abs, sizeof(data_abs), "%s", ps->v[0].abs);
		if (!a->drop)
			add_own_files(ps, c);
		add_sockdir(ps, "control_socket", c->control_socket, c->control_socket_line,
			    data_abs);
		add_sockdir(ps, "submit_socket", c->submit_socket, c->submit_socket_line,
			    data_abs);
		size_t before = ps->n;
		add(ps, "config", c->path, 0, N_READ);
		add(ps, "credentials", c->credentials, c->credentials_line, N_READ);
		for (size_t i = before; i < ps->n; i++)
			ps->v[i].reload = a->drop;
	}
	if (which & RUNAS_START) {
		for (const struct listener_conf *l = c->listeners; l; l = l->next) {
			if (l->tls == LTLS_NONE || l->cert == NULL)
				continue; /* the generated pair is data_dir's own */
			add(ps, "cert", l->cert, l->line, N_READ);
			add(ps, "key", l->key, l->line, N_READ);
		}
		for (const struct dkim_key_conf *k = c->dkim_keys; k; k = k->next)
			add(ps, "dkim_key", k->path, k->line, N_READ);
		/* outbound TLS (delivery/smtpc_tls.c): read once at start, like the keys above */
		add(ps, "tls_ca_file", c->tls_ca_file, c->tls_ca_file_line, N_READ);
		add(ps, "tls_client_cert", c->tls_client_cert, c->tls_client_cert_line, N_READ);
		add(ps, "tls_client_key", c->tls_client_key, c->tls_client_key_line, N_READ);
	}
}

/* ---- the child: walk each path as the account ---------------------------- */

static void
walk_missing(const struct probe *p, bool root_creates, size_t last, int err, struct result *r)
{
	char buf[PATH_MAX];

	if (err != ENOENT) {
		r->status = P_OTHER;
		r->err = err;
		return;
	}
	/* a missing file is for its reader to report; data_dir gets created */
	if (p->need != N_DIR || root_creates)
		return;
	memcpy(buf, p->abs, last);
	buf[last] = '\0';
	if (access(buf, W_OK | X_OK) != 0) {
		r->status = P_CREATE;
		r->at = (int)last;
		r->err = errno;
	}
}

static void
walk(const struct probe *p, bool root_creates, struct result *r)
{
	static const int modes[] = {[N_READ] = R_OK, [N_RW] = R_OK | W_OK,
				    [N_DIR] = R_OK | W_OK | X_OK, [N_SOCKDIR] = W_OK | X_OK};
	char buf[PATH_MAX];
	size_t len = strlen(p->abs), last = 1;
	struct stat st;

	memset(r, 0, sizeof(*r));
	for (size_t k = 0; k < len; k++) {
		if (p->abs[k] != '/')
			continue;
		size_t n = k == 0 ? 1 : k; /* "/", "/a", "/a/b": the folders on the way */
		memcpy(buf, p->abs, n);
		buf[n] = '\0';
		if (stat(buf, &st) != 0)
			return walk_missing(p, root_creates, last, errno, r);
		r->at = (int)n;
		if (!S_ISDIR(st.st_mode)) {
			r->status = P_OTHER;
			r->err = ENOTDIR;
			return;
		}
		if (access(buf, X_OK) != 0) {
			r->status = P_PARENT;
			r->err = errno;
			return;
		}
		last = n;
	}
	r->at = (int)len;
	if (stat(p->abs, &st) != 0)
		return walk_missing(p, root_creates, last, errno, r);
	if (p->need == N_DIR && root_creates)
		return; /* handed to the account at the switch */
	if ((p->need == N_DIR || p->need == N_SOCKDIR) && !S_ISDIR(st.st_mode)) {
		r->status = P_OTHER;
		r->err = ENOTDIR;
	} else if (access(p->abs, modes[p->need]) != 0) {
		r->status = P_SELF;
		r->err = errno;
	}
}

/* Run the walks in a child with a's credentials; results in r[0..n). 0 / -1. */
static int
run_child(const struct runas *a, const struct probes *ps, struct result *r)
{
	int fds[2], status;
	size_t want = ps->n * sizeof(*r), got = 0;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		if (a->drop && (initgroups(a->user, a->gid) != 0 || setgid(a->gid) != 0 ||
				setuid(a->uid) != 0))
			_exit(3);
		for (size_t i = 0; i < ps->n; i++) {
			struct result one;
			walk(&ps->v[i], a->root_start, &one);
			if (write(fds[1], &one, sizeof(one)) != (ssize_t)sizeof(one))
				_exit(4);
		}
		_exit(0);
	}
	close(fds[1]);
	while (got < want) {
		ssize_t k = read(fds[0], (char *)r + got, want - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return got == want && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- the parent: one line per failure ------------------------------------ */

/* "mode 0700, owner root:root" of path (as the parent sees it). */
static void
describe(const char *path, char *out, size_t outlen)
{
	struct stat st;
	struct passwd *pw;
	struct group *gr;
	char u[32], g[32];

	if (stat(path, &st) != 0) {
		snprintf(out, outlen, "%s", strerror(errno));
		return;
	}
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	snprintf(u, sizeof(u), "%u", (unsigned)st.st_uid);
	snprintf(g, sizeof(g), "%u", (unsigned)st.st_gid);
	snprintf(out, outlen, "mode %04o, owner %s:%s", (unsigned)(st.st_mode & 07777),
		 pw ? pw->pw_name : u, gr ? gr->gr_name : g);
}

/* The fix for p's failure, for this deployment. */
static void
fix_for(const struct probe *p, const struct result *r, const struct runas *a, char *out,
	size_t outlen)
{
	if (p->need == N_DIR && a->fallback)
		snprintf(out, outlen, "set data_dir under /var/lib");
	else if (p->need == N_DIR && a->root_start)
		snprintf(out, outlen, "set data_dir under /var/lib or run without dropping "
				      "privileges (user = root)");
	else if (p->need == N_DIR)
		snprintf(out, outlen, "set data_dir to a folder user %s can write", a->user);
	else if (p->need == N_SOCKDIR)
		snprintf(out, outlen, "put %s in data_dir or in a folder user %s can write",
			 p->label, a->user);
	else if (p->own)
		snprintf(out, outlen, "the files in data_dir belong to another account: as root, "
				      "chown -R %s %s (or set another data_dir)",
			 a->user, p->shown);
	else if (r->status == P_PARENT)
		snprintf(out, outlen, "move it to a folder user %s can search (e.g. /etc/mxrelay, "
				      "owner root:%s, mode 0750)",
			 a->user, a->group);
	else
		snprintf(out, outlen, "chgrp %s %s && chmod 0640 %s", a->group, p->shown, p->shown);
}

static void
message(const struct config *c, const struct probe *p, const struct result *r,
	const struct runas *a, char *err, size_t errlen)
{
	static const char *const self[] = {[N_READ] = "not readable", [N_RW] = "not writable",
					   [N_DIR] = "not writable", [N_SOCKDIR] = "not writable"};
	char at[512] = "", prefix[PATH_MAX], detail[256], what[PATH_MAX + 384];
	char fix[PATH_MAX * 2 + 128];

	if (c->path != NULL && p->line > 0)
		snprintf(at, sizeof(at), "%s:%d: ", c->path, p->line);
	snprintf(prefix, sizeof(prefix), "%.*s", r->at, p->abs);
	describe(prefix, detail, sizeof(detail));
	if (r->status == P_PARENT)
		snprintf(what, sizeof(what), "not reachable by user %s (parent %s is %s", a->user,
			 prefix, detail);
	else if (r->status == P_CREATE)
		snprintf(what, sizeof(what), "cannot be created by user %s (%s is %s", a->user,
			 prefix, detail);
	else if (r->status == P_SELF && p->need == N_SOCKDIR)
		snprintf(what, sizeof(what), "folder %s not writable by user %s (%s", prefix,
			 a->user, detail);
	else if (r->status == P_SELF)
		snprintf(what, sizeof(what), "%s by user %s (%s", self[p->need], a->user, detail);
	else
		snprintf(what, sizeof(what), "%s (%s", strerror(r->err), prefix);
	fix_for(p, r, a, fix, sizeof(fix));
	snprintf(err, errlen, "%s%s %s: %s%s)%s%s", at, p->label, p->own ? p->abs : p->shown,
		 what, p->reload ? "; re-read on SIGHUP" : "",
		 a->fallback ? ": running as root instead; to drop privileges, " : ": ", fix);
}

int
runas_check(const struct config *c, const struct runas *a, unsigned which, char *err,
	    size_t errlen)
{
	struct probes ps = {NULL, 0, 0};
	struct result *r = NULL;
	int rc = 0;

	if (a->uid == 0)
		return 0; /* root reaches everything it will need */
	collect(c, a, which, &ps);
	if (ps.n == 0)
		goto done;
	r = xcalloc(ps.n, sizeof(*r));
	if (run_child(a, &ps, r) != 0) {
		snprintf(err, errlen, "cannot check the access of user %s to data_dir %s", a->user,
			 c->data_dir);
		rc = -1;
		goto done;
	}
	for (size_t i = 0; i < ps.n; i++) {
		if (r[i].status == P_OK)
			continue;
		message(c, &ps.v[i], &r[i], a, err, errlen);
		rc = -1;
		break;
	}
done:
	free(r);
	free(ps.v);
	return rc;
}
