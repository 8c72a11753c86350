/*
 * ctl: the control and submit sockets, their connections, the request line
 * and the dispatch (see control.h). The queue commands live in control/queue.c,
 * SUBMIT in submit.c; all three answer through conn.c, the lowest file.
 */
#include "mta/control/control_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/control/jsonw.h"
#include "mta/event.h"
#include "mta/server.h"

#define CTL_GROUP "mxrelay"
#define CTL_CONNS_MAX 64           /* per socket: a local client cannot hold more */
#define CTL_TIMEOUT 30             /* seconds of silence before a connection is dropped */
#define CTL_INPUT_MAX (256 * 1024) /* stop reading while this much input waits */
#define CTL_VERSION MXRELAY_VERSION

struct ctl_sock {
	struct ctl *ctl;
	char *path; /* NULL: not created */
	struct evconnlistener *evl;
	bool submit;
	unsigned nconns;
};

struct ctl {
	struct server *srv;
	struct ctl_sock socks[2]; /* control, submit */
	struct ctl_conn *conns;
	unsigned nsubmits; /* connections that sent SUBMIT, until freed */
	struct tlsrpt_job *rpt; /* the daily TLS reports (tlsrpt.c) */
	struct bdigest_job *digest; /* bounce owners' daily digests (bdigest_job.c) */
	uint64_t seq;
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* ---- connections ------------------------------------------------------ */

/*
 * evref's free_fn (conn.h's lifetime), and ctl_free's for every connection
 * left at exit: the list and the counts are this file's.
 */
static void
conn_free(void *obj)
{
	struct ctl_conn *c = obj;
	struct ctl *ctl = c->ctl;
	struct ctl_sock *cs = &ctl->socks[c->submit_sock ? 1 : 0];

	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	cs->nconns--;
	if (c->sub) {
		submit_free(c->sub);
		ctl->nsubmits--;
	}
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

/* ---- requests ----------------------------------------------------------- */

static void
ctl_info(struct ctl_conn *c, char *arg)
{
	const struct config *cfg = c->srv->cfg;
	struct evbuffer *b = evbuffer_new();
	struct jw w;

	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "version", CTL_VERSION);
	jw_str(&w, "hostname", cfg->hostname);
	if (cfg->local_sender != NULL) /* mxrelay-sendmail's domain for bare names (issue 15) */
		jw_str(&w, "local_sender", cfg->local_sender);
	jw_int(&w, "max_message_size", (int64_t)cfg->max_message_size);
	jw_int(&w, "max_recipients", cfg->max_recipients);
	jw_int(&w, "session_timeout", cfg->session_timeout); /* mxrelay-sendmail -bs's silence */
	jw_int(&w, "pid", (int64_t)getpid());
	jw_bool(&w, "draining", c->srv->draining != 0);
	jw_end(&w);
	ctl_reply(c, b);
	evbuffer_free(b);
}

static void
ctl_tls_reports(struct ctl_conn *c, char *arg)
{
	tlsrpt_verb(c->ctl->rpt, c, arg);
}

static void
ctl_bounce_digest(struct ctl_conn *c, char *arg)
{
	bdigest_verb(c->ctl->digest, c, arg);
}

/*
 * RELOAD: what SIGHUP does, with its outcome for `mxrelayctl reload`
 * (systemctl reload's ExecReload): {"reloaded": true, "notes": [...]}
 * (changes that need a restart) or {"error": "FILE:LINE: KEY: reason"}.
 */
static void
ctl_reload(struct ctl_conn *c, char *arg)
{
	char err[1024], notes[2048];
	struct evbuffer *b;
	struct jw w;

	if (c->srv->reload == NULL) {
		ctl_error(c, NULL, "reload is not available here");
		return;
	}
	log_info("%s event=reload_request uid=%u", c->id, (unsigned)c->uid);
	if (c->srv->reload(c->srv, err, sizeof(err), notes, sizeof(notes)) != 0) {
		ctl_error(c, NULL, "%s", err);
		return;
	}
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_bool(&w, "reloaded", true);
	jw_str(&w, "config", c->srv->cfg->path ? c->srv->cfg->path : "(default)");
	jw_arr(&w, "notes");
	for (char *s = notes, *nl; *s; s = nl ? nl + 1 : s + strlen(s)) {
		nl = strchr(s, '\n');
		if (nl)
			*nl = '\0';
		jw_str(&w, NULL, s);
	}
	jw_end(&w);
	jw_end(&w);
	ctl_reply(c, b);
	evbuffer_free(b);
}

/* LOG-REOPEN: SIGUSR1's work, for logrotate's postrotate (etc/logrotate.d/mxrelay). */
static void
ctl_log_reopen(struct ctl_conn *c, char *arg)
{
	struct evbuffer *b;
	struct jw w;

	if (log_reopen() != 0) {
		log_err("event=log_reopen_failed file=%s error=\"%s\"", log_file(), strerror(errno));
		ctl_error(c, NULL, "log %s: %s", log_file(), strerror(errno));
		return;
	}
	if (log_file() != NULL)
		log_info("event=log_reopened file=%s", log_file());
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "log", log_file() ? log_file() : c->srv->cfg->log);
	jw_bool(&w, "reopened", log_file() != NULL);
	jw_end(&w);
	ctl_reply(c, b);
	evbuffer_free(b);
}

static const struct verb {
	const char *name;
	void (*fn)(struct ctl_conn *c, char *arg);
	bool control, submit; /* allowed on which socket */
} verbs[] = {
    {"INFO", ctl_info, true, true},         {"LIST", ctlq_list, true, false},
    {"SHOW", ctlq_show, true, false},       {"SUMMARY", ctlq_summary, true, false},
    {"FLUSH", ctlq_flush, true, false},     {"HOLD", ctlq_hold, true, false},
    {"RELEASE", ctlq_release, true, false}, {"DELETE", ctlq_delete, true, false},
    {"BOUNCE", ctlq_bounce, true, false},   {"SUBMIT", submit_start, false, true},
    {"TLS-SEND-REPORTS", ctl_tls_reports, true, false},
    {"BOUNCE-DIGEST", ctl_bounce_digest, true, false},
    {"RELOAD", ctl_reload, true, false},
    {"LOG-REOPEN", ctl_log_reopen, true, false},
    {"MAILQ", ops_mailq, true, false}, {"BLOCKS", ops_blocks, true, false},
    {"UNBLOCK", ops_unblock, true, false},
};

static void
dispatch(struct ctl_conn *c, char *line)
{
	char *arg = line + strcspn(line, " ");
	char q[300];
	size_t i;

	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " ");
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, line) != 0)
			continue;
		if (c->submit_sock ? !verbs[i].submit : !verbs[i].control) {
			ctl_error(c, NULL, "%s is not allowed on the %s socket", line,
			          c->submit_sock ? "submit" : "control");
			return;
		}
		log_debug("%s event=ctl_request uid=%u verb=%s", c->id, (unsigned)c->uid, line);
		verbs[i].fn(c, arg);
		return;
	}
	ctl_error(c, NULL, "unknown request \"%s\"", LOG_Q(q, line));
}

/* One request per connection: nothing more is read while it is worked on. */
static void
pause_if_waiting(struct ctl_conn *c)
{
	if (c->waiting && !evref_closing(&c->ref))
		bufferevent_disable(c->bev, EV_READ);
}

/* Input: the request line, or more of a SUBMIT. */
static void
read_input(struct ctl_conn *c, struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[CTL_LINE_MAX + 1];

	if (evref_closing(&c->ref) || c->waiting || c->replied)
		return;
	if (c->sub) {
		submit_feed(c, in);
		pause_if_waiting(c);
		return;
	}
	struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
	if (eol.pos < 0 ? evbuffer_get_length(in) >= CTL_LINE_MAX : eol.pos >= CTL_LINE_MAX) {
		ctl_error(c, NULL, "request line longer than %d octets", CTL_LINE_MAX - 1);
		return;
	}
	if (eol.pos < 0)
		return;
	evbuffer_remove(in, line, (size_t)eol.pos + 1);
	line[eol.pos] = '\0';
	if (eol.pos > 0 && line[eol.pos - 1] == '\r')
		line[eol.pos - 1] = '\0';
	dispatch(c, line);
	if (c->sub) {
		c->ctl->nsubmits++;
		if (evbuffer_get_length(in) > 0 && !c->waiting && !c->replied)
			submit_feed(c, in);
	}
	pause_if_waiting(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;

	evref_enter(&c->ref);
	read_input(c, bev);
	ctl_conn_leave(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;

	evref_enter(&c->ref);
	if (c->replied && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_conn_close(c);
	ctl_conn_leave(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *c = arg;

	evref_enter(&c->ref);
	if (what & BEV_EVENT_TIMEOUT)
		log_info("%s event=ctl_timeout uid=%u", c->id, (unsigned)c->uid);
	/* a worker or the writer may still hold c: it is freed when they answer */
	if (c->waiting)
		c->closed = true;
	ctl_conn_close(c);
	ctl_conn_leave(c);
}

static void
on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_sock *cs = arg;
	struct ctl *ctl = cs->ctl;
	struct ucred uc;
	socklen_t ul = sizeof(uc);
	struct timeval tv = {CTL_TIMEOUT, 0};
	struct ctl_conn *c;

	if (cs->nconns >= CTL_CONNS_MAX || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0) {
		log_warn("event=ctl_refused socket=%s reason=%s", cs->path,
		         cs->nconns >= CTL_CONNS_MAX ? "too_many_connections"
		                                     : "no_peer_credentials");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	evref_init(&c->ref, conn_free, c);
	c->ctl = ctl;
	c->srv = ctl->srv;
	c->submit_sock = cs->submit;
	c->uid = uc.uid;
	c->pid = uc.pid;
	snprintf(c->id, sizeof(c->id), "c=%llu", (unsigned long long)++ctl->seq);
	c->bev = bufferevent_socket_new(ctl->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CTL_INPUT_MAX);
	bufferevent_enable(c->bev, EV_READ);
	c->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->prev = c;
	ctl->conns = c;
	cs->nconns++;
}

/* ---- sockets ------------------------------------------------------------ */

/*
 * Make the socket's folder searchable by those the socket is for (bits), if
 * it is ours: data_dir is 0700, and a socket inside it is unreachable else.
 * Search without read permission lists nothing: spool.db stays 0600.
 */
static void
parent_searchable(const char *path, mode_t bits)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & bits) == bits)
		return;
	if (chmod(dir, (st.st_mode & 07777) | bits) == 0)
		log_info(
		    "event=ctl_dir dir=%s mode=%04o note=\"searchable so local clients reach %s\"",
		    dir, (unsigned)((st.st_mode & 07777) | bits), path);
}

/* 0: nothing answers at path (stale file removed); -1 with err otherwise. */
static int
remove_stale(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;
	int fd, answered;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	answered = fd >= 0 && connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	if (fd >= 0)
		close(fd);
	if (answered) {
		snprintf(err, errlen, "%s: another mxrelayd is running (it answers on this socket)",
		         path);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
sock_open(struct ctl *ctl, struct ctl_sock *cs, const char *path, mode_t mode, gid_t gid,
          mode_t dirbits, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: socket path longer than %zu bytes", path,
		         sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (remove_stale(path, &sun, err, errlen) != 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	cs->ctl = ctl;
	cs->path = xstrdup(path);
	/* bind made it under umask 077; now the mode it is meant to have */
	if (chmod(path, mode) != 0 || (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0))
		log_warn("event=ctl_socket path=%s error=\"%s\" note=\"check its mode and group\"",
		         path, strerror(errno));
	parent_searchable(path, dirbits);
	cs->evl = evconnlistener_new(ctl->srv->base, on_accept, cs,
	                             LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64, fd);
	if (cs->evl == NULL) {
		snprintf(err, errlen, "%s: cannot listen", path);
		close(fd);
		return -1;
	}
	return 0;
}

struct ctl *
ctl_open(struct server *srv, char *err, size_t errlen)
{
	struct ctl *ctl = xcalloc(1, sizeof(*ctl));
	struct group *gr = getgrnam(CTL_GROUP);
	gid_t gid = gr ? gr->gr_gid : getegid();

	ctl->srv = srv;
	ctl->socks[1].submit = true;
	if (sock_open(ctl, &ctl->socks[0], srv->cfg->control_socket, 0660, gid, 0010, err,
	              errlen) != 0 ||
	    sock_open(ctl, &ctl->socks[1], srv->cfg->submit_socket, 0666, (gid_t)-1, 0011, err,
	              errlen) != 0) {
		ctl_free(ctl);
		return NULL;
	}
	ctl->rpt = tlsrpt_job_new(srv);
	ctl->digest = bdigest_job_new(srv);
	log_info("event=ctl_ready control_socket=%s group=%s submit_socket=%s",
	         srv->cfg->control_socket, gr ? CTL_GROUP : "(daemon's)", srv->cfg->submit_socket);
	return ctl;
}

unsigned
ctl_busy(const struct ctl *ctl)
{
	return ctl ? ctl->nsubmits + tlsrpt_busy(ctl->rpt) + bdigest_busy(ctl->digest) : 0;
}

void
ctl_free(struct ctl *ctl)
{
	if (ctl == NULL)
		return;
	tlsrpt_job_free(ctl->rpt);
	bdigest_job_free(ctl->digest);
	while (ctl->conns)
		conn_free(ctl->conns);
	for (int i = 0; i < 2; i++) {
		struct ctl_sock *cs = &ctl->socks[i];
		if (cs->evl)
			evconnlistener_free(cs->evl);
		if (cs->path)
			unlink(cs->path);
		free(cs->path);
	}
	free(ctl);
}
