/*
 * mxrelayd: start-up (config, data folder, certificate, credentials, bind,
 * drop privileges, spool), readiness (notify.h), signals (TERM/INT drain,
 * HUP reload, USR1 log reopen) and the loop.
 */
#include <errno.h>
#include <stdbool.h>
#include <event2/event.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/async.h"
#include "mta/event.h"
#include "mta/shared/config.h"
#include "mta/shared/creds.h"
#include "mta/shared/addr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/control/control.h"
#include "mta/delivery/deliver.h"
#include "mta/delivery/sched.h"
#include "mta/delivery/smtpc_tls.h"
#include "mta/metrics.h"
#include "mta/notify.h"
#include "mta/reload.h"
#include "mta/intake/dkimsign.h"
#include "mta/runas.h"
#include "mta/server.h"
#include "mta/space.h"
#include "mta/smtpd/smtpd.h"
#include "mta/writer.h"

#define VERSION MXRELAY_VERSION

static void
usage(FILE *f)
{
	fputs("usage: mxrelayd [-n] [-d] [-c FILE]\n"
	      "  -c, --config FILE  configuration file (default: the embedded loopback default:\n"
	      "                     127.0.0.1:2525, data_dir ./var/mxrelay)\n"
	      "  -n, --check        check the configuration, the files it names and the user's\n"
	      "                     access to them, then exit (0: valid)\n"
	      "  -d, --debug        debug logging\n"
	      "  -V, --version      print the version and exit\n"
	      "  -h, --help         print this help and exit\n"
	      "signals: HUP reloads (as mxrelayctl reload), USR1 reopens the log file,\n"
	      "TERM and INT drain and stop. Under systemd (NOTIFY_SOCKET) it reports\n"
	      "READY=1 once listening. A failed start exits 78 when only the admin can\n"
	      "fix it (the configuration, a file it names, a port in use), else 1.\n",
	      f);
}

/* mkdir -p with mode 0700 for the last component. */
static int
make_dir(const char *path, char *err, size_t errlen)
{
	char buf[4096];
	size_t i;
	if (strlen(path) >= sizeof(buf)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	memcpy(buf, path, strlen(path) + 1); /* length checked above */
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) == 0)
			chmod(buf, 0755); /* umask is 077: parents must stay traversable */
		else if (errno != EEXIST)
			goto fail;
		buf[i] = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "data_dir %s: %s", buf, strerror(errno));
	return -1;
}

/*
 * Choose the account and check that it reaches what it needs (runas.h): a
 * root start reads certificates and keys as root, any other start as the
 * account itself. Problems are errors, except for the embedded default
 * (no configuration file, no `user`) started as root, e.g. README command 1
 * in a private folder: mxrelayd stays root and says why in one warning line.
 */
static int
plan_account(const struct config *c, struct runas *a, char *err, size_t errlen)
{
	char why[1024];
	unsigned which;

	if (runas_plan(c, a, err, errlen) != 0)
		return -1;
	which = RUNAS_AFTER | (a->root_start ? 0 : RUNAS_START);
	if (runas_check(c, a, which, why, sizeof(why)) == 0) {
		if (a->root_start && !a->drop)
			log_warn("event=privileges user=root note=\"running as root: set user = to "
			         "an unprivileged account\"");
		return 0;
	}
	if (!a->fallback) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	log_warn("event=privileges user=root note=\"%s\"", why);
	runas_stay(a);
	return 0;
}

/*
 * -n as root with `user` set: certificates and keys are read as root at a
 * root start, but the systemd unit starts mxrelayd as that user, so say
 * (without failing) what that user could not read.
 */
static void
note_unit_access(const struct config *c, const struct runas *a)
{
	char why[1024];

	if (a->root_start && a->drop && a->strict &&
	    runas_check(c, a, RUNAS_START, why, sizeof(why)) != 0)
		fprintf(stderr,
		        "mxrelayd: note: %s (needed where mxrelayd starts as %s, as under "
		        "the systemd unit; a root start reads it as root)\n",
		        why, a->user);
}

/*
 * mxrelay-sendmail gives bare names ("root", its default sender USER) the
 * domain local_sender, else the hostname. A hostname without a dot is no
 * mail domain: mail from root@HOST cannot be answered and its bounces are
 * lost (issue 15). Said on stderr by -n (fp), else in the log (a warning
 * once a configuration file is in use).
 */
static void
local_sender_warn(const struct config *c, FILE *fp)
{
	if (c->local_sender != NULL || strchr(c->hostname, '.') != NULL)
		return;
	if (fp != NULL)
		fprintf(fp,
		        "mxrelayd: hostname %s has no dot: mxrelay-sendmail's default sender "
		        "USER@%s has no mailbox and bounces to it are lost; set local_sender = "
		        "DOMAIN (or hostname = a fully qualified name)\n",
		        c->hostname, c->hostname);
	else /* the embedded default (a first try) starts free of warnings, as tlsrpt's does */
		log_msg(c->path != NULL ? LOG_LVL_WARN : LOG_LVL_INFO,
		        "event=local_sender_missing hostname=%s note=\"no dot in hostname: "
		        "mxrelay-sendmail's default sender USER@%s has no mailbox; set local_sender "
		        "= DOMAIN\"",
		        c->hostname, c->hostname);
}

/* Check everything -n can check without binding: config, the account, credentials, certificates. */
static int
check_only(const char *path)
{
	struct config *c = NULL;
	struct creds *cr = NULL;
	char err[1024];
	int rc = 1;

	struct dkimsign *dk = NULL;
	struct runas a;
	if (config_load(&c, path, err, sizeof(err)) != 0 ||
	    plan_account(c, &a, err, sizeof(err)) != 0)
		goto done;
	note_unit_access(c, &a);
	if (reload_load_creds(c, &cr, err, sizeof(err)) != 0 ||
	    dkimsign_load(c, &dk, err, sizeof(err)) != 0)
		goto done;
	char from_buf[600];
	const char *from = reload_tlsrpt_unsigned_from(c, dk, from_buf, sizeof from_buf);
	if (from)
		fprintf(stderr,
		        "mxrelayd: tlsrpt: tlsrpt = yes and tlsrpt_from %s has no dkim_key for its "
		        "domain: mailed TLS reports are skipped until one exists (RFC 8460 3 wants "
		        "them DKIM-signed); https: reports are still posted\n",
		        from);
	bdigest_warn_unsigned(c, dk, stderr);
	dkimsign_unref(dk);
	local_sender_warn(c, stderr);
	for (struct listener_conf *l = c->listeners; l; l = l->next) {
		struct tls_listener t;
		if (l->tls == LTLS_NONE || l->cert == NULL)
			continue;
		if (tls_listener_init(&t, l, c->data_dir, err, sizeof(err)) != 0) {
			char e2[1024];
			snprintf(e2, sizeof(e2), "%s:%d: cert: %s", path ? path : "(default)",
			         l->line, err);
			memcpy(err, e2, sizeof(err));
			goto done;
		}
		tls_listener_free(&t);
	}
	SSL_CTX *client = smtpc_tls_ctx_new(c, err, sizeof(err)); /* tls_ca_file, client cert */
	if (client == NULL)
		goto done;
	SSL_CTX_free(client);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	else
		fprintf(stderr, "%s: configuration ok\n", path ? path : "(default)");
	creds_free(cr);
	config_free(c);
	return rc;
}

#define DRAIN_CHECK_MS 5 /* while draining: how often to look whether anything is left */

static struct event *deadline_ev; /* shutdown_timeout after SIGTERM */
static struct event *drain_ev;    /* repeating while draining: on_drain_tick */
static bool deadline_passed;      /* sessions were cut: only their 421s are awaited */

/* Nothing in flight: no session, no delivery, no local submission unanswered. */
static bool
server_idle(struct server *srv)
{
	return srv->nsessions == 0 && (srv->deliver == NULL || deliver_busy(srv->deliver) == 0) &&
	       ctl_busy(srv->ctl) == 0;
}

/*
 * Draining: main.c alone decides when the loop ends. The layers below never
 * call up here; this check runs every DRAIN_CHECK_MS until they are done.
 */
static void
on_drain_tick(void *arg)
{
	struct server *srv = arg;

	if (server_idle(srv) ||
	    (deadline_passed && srv->nsessions == 0 && metrics_gauge(G_RESULTS_UNRECORDED) == 0))
		event_base_loopexit(srv->base, NULL);
}

static void
on_deadline(void *arg)
{
	struct server *srv = arg;
	static int rounds;

	if (rounds++ == 0) {
		log_warn("event=shutdown_deadline sessions=%u", srv->nsessions);
		deadline_passed = true;
		sessions_abort(srv);
		/*
		 * The spool writer's answers are all that may remain: give them a
		 * moment. Deliveries still talking to remote servers are left:
		 * nothing was recorded for them, so they are tried again at start.
		 */
		loop_timer_add(deadline_ev, 5000);
		if (srv->nsessions == 0 && metrics_gauge(G_RESULTS_UNRECORDED) == 0)
			event_base_loopexit(srv->base, NULL);
		return;
	}
	event_base_loopexit(srv->base, NULL);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	if (srv->draining)
		return;
	srv->draining = 1;
	log_info("event=shutdown signal=%d sessions=%u deliveries=%u", (int)sig, srv->nsessions,
	         srv->deliver ? deliver_busy(srv->deliver) : 0);
	char st[128];
	snprintf(st, sizeof(st), "draining: %u sessions, %u deliveries", srv->nsessions,
	         srv->deliver ? deliver_busy(srv->deliver) : 0);
	notify_stopping(st);
	if (srv->sched)
		sched_stop(srv->sched);
	if (srv->deliver)
		deliver_stop(srv->deliver);
	sessions_drain(srv);
	if (server_idle(srv))
		event_base_loopexit(srv->base, NULL);
	drain_ev = loop_timer_new(srv->base, true, on_drain_tick, srv);
	if (drain_ev)
		loop_timer_add(drain_ev, DRAIN_CHECK_MS);
	deadline_ev = loop_timer_new(srv->base, false, on_deadline, srv);
	if (deadline_ev) /* in ms: beyond 49 days is forever anyway */
		loop_timer_add(deadline_ev, srv->cfg->shutdown_timeout > UINT_MAX / 1000
		                                ? UINT_MAX
		                                : srv->cfg->shutdown_timeout * 1000);
}

/* Every STATUS_SECONDS under a service manager: the counts in `systemctl status` stay fresh. */
#define STATUS_SECONDS 30
static struct event *status_ev;

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	char err[1024], notes[2048];

	reload_run(arg, err, sizeof(err), notes, sizeof(notes)); /* it logs the outcome */
}

/* SIGUSR1: logrotate renamed the log file (etc/logrotate.d/mxrelay). */
static void
on_usr1(evutil_socket_t sig, short what, void *arg)
{
	if (log_reopen() != 0)
		log_err("event=log_reopen_failed file=%s error=\"%s\"", log_file(), strerror(errno));
	else if (log_file() != NULL)
		log_info("event=log_reopened file=%s", log_file());
}

static int
needs_generated_cert(const struct config *c)
{
	for (const struct listener_conf *l = c->listeners; l; l = l->next)
		if (l->tls != LTLS_NONE && l->cert == NULL)
			return 1;
	return 0;
}

/*
 * Exit statuses of a failed start: EXIT_CONFIG (sysexits' EX_CONFIG) when
 * only the admin can fix it (the configuration, a file it names, an
 * account, a port another program holds): the unit's
 * RestartPreventExitStatus= stops systemd from retrying; 1 for what may
 * pass (the spool, an address not up yet), retried within StartLimitBurst.
 */
#define EXIT_CONFIG 78

/* Bind every listener; a port in use or refused is the admin's to fix. */
static int
open_listeners(struct server *srv, char *err, size_t errlen, int *status)
{
	if (listeners_open(srv, err, errlen) == 0)
		return 0;
	*status = errno == EADDRINUSE || errno == EACCES ? EXIT_CONFIG : 1;
	return -1;
}

/* Everything before the spool: read as the starting account. */
static int
start_files(struct server *srv, struct runas *acct, char *err, size_t errlen, int *status)
{
	struct config *c = srv->cfg;

	*status = EXIT_CONFIG;
	/* before anything is created: whom the files will belong to */
	if (plan_account(c, acct, err, errlen) != 0)
		return -1;
	if (make_dir(c->data_dir, err, errlen) != 0)
		return -1;
	if (needs_generated_cert(c) &&
	    tls_ensure_selfsigned(c->data_dir, c->hostname, err, errlen) != 0)
		return -1;
	if (reload_load_creds(c, &srv->creds, err, errlen) != 0)
		return -1;
	if (dkimsign_load(c, &srv->dkim, err, errlen) != 0) /* keys are root-only */
		return -1;
	reload_tlsrpt_warn_unsigned(c, srv->dkim);
	bdigest_warn_unsigned(c, srv->dkim, NULL);
	local_sender_warn(c, NULL);
	srv->client_tls = smtpc_tls_ctx_new(c, err, errlen); /* so may tls_client_key be */
	if (srv->client_tls == NULL)
		return -1;
	if (acct->drop && log_file_chown(acct->drop_uid, acct->drop_gid) != 0) {
		snprintf(err, errlen, "log %s: %s", log_file(), strerror(errno));
		return -1;
	}
	return 0;
}

/* Start-up; -1 with err and the exit status in *status. */
static int
start(struct server *srv, char *err, size_t errlen, int *status)
{
	struct config *c = srv->cfg;
	struct runas acct;

	if (start_files(srv, &acct, err, errlen, status) != 0)
		return -1;
	srv->peers = peers_new();
	srv->authfail = &peers_authfail_ops; /* mxrelayctl unblock (control/ops.c) */
	if (open_listeners(srv, err, errlen, status) != 0)
		return -1;
	*status = EXIT_CONFIG;
	if (listeners_tls_init(srv, err, errlen) != 0 ||
	    runas_switch(&acct, c->data_dir, err, errlen) != 0)
		return -1;
	*status = 1; /* the spool: a full disk or a lock may pass */
	srv->async = async_new(srv->base, 2, err, errlen);
	if (srv->async == NULL)
		return -1;
	struct space_conf sc = {c->queue_minfree, c->spool_reserve, c->spool_max_size};
	srv->writer = writer_new(c->data_dir, &sc, srv->async, err, errlen);
	if (srv->writer == NULL)
		return -1;
	srv->sched = sched_new(srv->base, c->max_inflight, deliver_start, srv);
	srv->deliver = deliver_new(srv, err, errlen);
	if (srv->deliver == NULL)
		return -1;
	*status = EXIT_CONFIG; /* another daemon on the sockets, the metrics port taken */
	/* after the drop: the socket files belong to the daemon user */
	srv->ctl = ctl_open(srv, err, errlen);
	if (srv->ctl == NULL)
		return -1;
	/* after the drop: the HTTP thread never runs as root */
	if (metrics_start(srv, err, errlen) != 0)
		return -1;
	return 0;
}

/* Free whatever start-up built, in the order the parts depend on each other. */
static void
teardown(struct server *srv)
{
	/*
	 * Completions still queued run inside async_free, so deliver must outlive
	 * it; one that hands the writer a job after writer_stop gets a failure
	 * (never a freed writer), so the writer is freed only after them.
	 */
	if (srv->writer)
		writer_stop(srv->writer);
	if (srv->async)
		async_free(srv->async);
	if (srv->writer)
		writer_free(srv->writer);
	ctl_free(srv->ctl); /* after the completions above: they may still answer a client */
	metrics_stop();
	deliver_free(srv->deliver);
	SSL_CTX_free(srv->client_tls); /* after deliver, which holds a reference */
	if (srv->sched)
		sched_free(srv->sched);
	listeners_free(srv);
	peers_free(srv->peers);
	creds_free(srv->creds);
	dkimsign_unref(srv->dkim);
	config_free(srv->cfg);
	if (srv->base)
		event_base_free(srv->base);
}

/* The command line. -1: go on and run; else the exit status. */
static int
parse_args(int argc, char **argv, const char **path, int *check)
{
	int opt;
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'n'},
	    {"debug", no_argument, NULL, 'd'},        {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};

	while ((opt = getopt_long(argc, argv, "c:ndhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			*path = optarg;
			break;
		case 'n':
			*check = 1;
			break;
		case 'd':
			log_set_debug(1);
			break;
		case 'V':
			printf("mxrelayd %s\n", VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mxrelayd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* Signals on the loop: TERM and INT drain, HUP reloads, USR1 reopens the log file. */
#define NSIGS 4
static void
signals_add(struct server *srv, struct event *ev[NSIGS])
{
	ev[0] = evsignal_new(srv->base, SIGTERM, on_term, srv);
	ev[1] = evsignal_new(srv->base, SIGINT, on_term, srv);
	ev[2] = evsignal_new(srv->base, SIGHUP, on_hup, srv);
	ev[3] = evsignal_new(srv->base, SIGUSR1, on_usr1, srv);
	for (int i = 0; i < NSIGS; i++)
		evsignal_add(ev[i], NULL);
}

/*
 * A failure before the loop, on stderr as well as in the log (the log may
 * be syslog or a file): under journald at priority err ("<3>", sd-daemon(3))
 * so that `journalctl -p err` shows why a start failed, and only once when
 * the log line went to the journal already.
 */
static void
say_failed(const char *err)
{
	if (!log_stderr_is_journal())
		fprintf(stderr, "mxrelayd: %s\n", err);
	else if (!log_to_stderr())
		fprintf(stderr, "<3>mxrelayd: %s\n", err);
}

/* Listening, the spool open, privileges dropped: tell the service manager. */
static void
ready(struct server *srv, const char *path)
{
	char st[256];

	listeners_enable(srv);
	log_info("event=ready version=%s config=%s data_dir=%s hostname=%s", VERSION,
	         path ? path : "(default)", srv->cfg->data_dir, srv->cfg->hostname);
	reload_status_line(srv, "", st, sizeof(st));
	notify_ready(st);
	if (notify_enabled()) {
		status_ev = loop_timer_new(srv->base, true, reload_status_tick, srv);
		if (status_ev)
			loop_timer_add(status_ev, STATUS_SECONDS * 1000);
	}
}

int
main(int argc, char **argv)
{
	struct server srv;
	const char *path = NULL;
	int check = 0, rc;
	char err[1024];
	struct event *sigs[NSIGS];

	if ((rc = parse_args(argc, argv, &path, &check)) >= 0)
		return rc;
	if (check)
		return check_only(path);

	memset(&srv, 0, sizeof(srv));
	if (config_load(&srv.cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s%s\n", log_stderr_is_journal() ? "<3>" : "", err);
		return EXIT_CONFIG;
	}
	if (log_init("mxrelayd", srv.cfg->log) != 0) {
		snprintf(err, sizeof(err), "%s: log %s: %s", srv.cfg->path ? srv.cfg->path : "(default)",
		         srv.cfg->log, strerror(errno));
		fprintf(stderr, "%smxrelayd: %s\n", log_stderr_is_journal() ? "<3>" : "", err);
		config_free(srv.cfg);
		return EXIT_CONFIG;
	}
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	srv.reload = reload_run;
	srv.base = event_base_new();
	rc = 1;
	if (srv.base == NULL || start(&srv, err, sizeof(err), &rc) != 0) {
		if (srv.base == NULL)
			snprintf(err, sizeof(err), "cannot create the event loop");
		log_err("event=startup_failed error=\"%s\"", err);
		say_failed(err);
		teardown(&srv);
		return rc;
	}
	signals_add(&srv, sigs);
	ready(&srv, path);
	event_base_dispatch(srv.base);

	log_info("event=stopping accepted=%llu rejected=%llu", (unsigned long long)srv.accepted,
	         (unsigned long long)srv.rejected);
	for (int i = 0; i < NSIGS; i++)
		event_free(sigs[i]);
	loop_timer_free(status_ev);
	loop_timer_free(drain_ev);
	loop_timer_free(deadline_ev);
	teardown(&srv);
	return 0;
}
