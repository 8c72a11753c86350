/*
 * reload: the daemon's reload path, split out of main.c (and like main.c
 * allowed to include every role, mta/ARCHITECTURE.md): SIGHUP and the
 * control socket's RELOAD re-read the configuration, the credentials, the
 * DKIM keys, the outbound TLS files and every listener's certificate and
 * key, all or nothing (see reload.h).
 */
#include "mta/reload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mta/control/control.h"
#include "mta/delivery/deliver.h"
#include "mta/delivery/sched.h"
#include "mta/delivery/smtpc_tls.h"
#include "mta/intake/dkimsign.h"
#include "mta/notify.h"
#include "mta/server.h"
#include "mta/shared/addr.h"
#include "mta/shared/config.h"
#include "mta/shared/config_diff.h"
#include "mta/shared/creds.h"
#include "mta/shared/log.h"
#include "mta/smtpd/smtpd.h"

int
reload_load_creds(const struct config *c, struct creds **out, char *err, size_t errlen)
{
	*out = NULL;
	if (c->credentials == NULL) {
		smtpd_sunset_startup(c, NULL, time(NULL));
		return 0;
	}
	char e[1024];
	if (creds_load(out, c->credentials, e, sizeof(e)) == 0) {
		creds_set_sender_case(*out, c->sender_case_sensitive);
		smtpd_sunset_startup(c, *out, time(NULL));
		return 0;
	}
	snprintf(err, errlen, "%s:%d: credentials: %s", c->path ? c->path : "(default)",
	         c->credentials_line, e);
	return -1;
}


/*
 * RFC 8460 3: reports sent by mail must be DKIM-signed (receivers ignore
 * unsigned ones), so the report job skips mailto: without a key for
 * tlsrpt_from's domain. The From address (in buf) when that is so, else NULL.
 */
const char *
reload_tlsrpt_unsigned_from(const struct config *c, const struct dkimsign *dk, char *buf, size_t len)
{
	const char *from;

	if (!c->tlsrpt)
		return NULL;
	from = config_tlsrpt_from(c, buf, len);
	return dkimsign_has(dk, addr_domain(from)) ? NULL : from;
}

/*
 * A warning when the admin set up signing (a dkim_key or tlsrpt_from) but
 * not for tlsrpt_from's domain; a relay with neither (a first install) gets
 * the same line at info level, so a default start stays free of warnings.
 */
void
reload_tlsrpt_warn_unsigned(const struct config *c, const struct dkimsign *dk)
{
	char buf[600];
	const char *from = reload_tlsrpt_unsigned_from(c, dk, buf, sizeof buf);
	bool setup = c->dkim_keys != NULL || c->tlsrpt_from != NULL;

	if (from == NULL)
		return;
	log_msg(setup ? LOG_LVL_WARN : LOG_LVL_INFO,
	        "event=tlsrpt_unsigned from=%s note=\"no dkim_key for its domain: mailed TLS "
	        "reports (mailto:) are skipped, https: ones still posted\"",
	        from);
}


/* "accepting on 2 listeners, 3 queued, 0 held, 1 session": systemctl status's line. */
void
reload_status_line(struct server *srv, const char *head, char *buf, size_t len)
{
	size_t nl = 0, stored = 0, held = 0;

	for (struct listener *l = srv->listeners; l; l = l->next)
		nl++;
	if (srv->sched)
		qstats_count(sched_qstats(srv->sched), &stored, &held);
	snprintf(buf, len, "%s%saccepting on %zu listener%s, %zu queued, %zu held, %u session%s",
	         head, *head ? "; " : "", nl, nl == 1 ? "" : "s", stored - held, held,
	         srv->nsessions, srv->nsessions == 1 ? "" : "s");
}

/* "reload failed at ...: why" until a reload succeeds: systemctl status keeps showing it */
static char status_head[1000];

void
reload_status_tick(void *arg)
{
	struct server *srv = arg;
	char st[1200];

	if (srv->draining)
		return;
	reload_status_line(srv, status_head, st, sizeof(st));
	notify_status(st);
}

/*
 * What a reload builds before anything changes: all of it or none is put
 * in place, so a broken file leaves the running daemon exactly as it was.
 */
struct reload_parts {
	struct config *cfg;
	struct creds *creds;
	struct dkimsign *dkim;     /* every key file read again (a renewed key at the same path) */
	SSL_CTX *client_tls;       /* tls_ca_file, tls_client_cert/key read again */
	struct tls_listener *tls;  /* each listener's cert and key read again */
};

static int
reload_prepare(struct server *srv, struct reload_parts *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (config_load(&p->cfg, srv->cfg->path, err, errlen) != 0 ||
	    reload_load_creds(p->cfg, &p->creds, err, errlen) != 0 ||
	    dkimsign_load(p->cfg, &p->dkim, err, errlen) != 0)
		return -1;
	p->client_tls = smtpc_tls_ctx_new(p->cfg, err, errlen);
	if (p->client_tls == NULL)
		return -1;
	return listeners_tls_prepare(srv, p->cfg->listeners, &p->tls, err, errlen);
}

static void
reload_discard(struct server *srv, struct reload_parts *p)
{
	listeners_tls_discard(srv, p->tls);
	SSL_CTX_free(p->client_tls);
	dkimsign_unref(p->dkim);
	creds_free(p->creds);
	config_free(p->cfg);
	memset(p, 0, sizeof(*p));
}

static void
reload_commit(struct server *srv, struct reload_parts *p)
{
	struct config *old = srv->cfg;
	struct listener_conf *tmp;

	listeners_tls_commit(srv, p->cfg->listeners, p->tls);
	/* sockets stay bound as they are: the running listener sections are kept */
	tmp = p->cfg->listeners;
	p->cfg->listeners = old->listeners;
	old->listeners = tmp;
	srv->cfg = p->cfg;
	srv->cfg_gen++;
	config_free(old);
	creds_free(srv->creds);
	srv->creds = p->creds;
	dkimsign_unref(srv->dkim); /* jobs signing now hold their own reference */
	srv->dkim = p->dkim;
	if (srv->deliver != NULL)
		deliver_set_tls(srv->deliver, p->client_tls); /* takes its own reference */
	SSL_CTX_free(srv->client_tls);
	srv->client_tls = p->client_tls;
	memset(p, 0, sizeof(*p));
}

/* One event=reload line per restart-only change (config_diff.h). */
static void
log_notes(const char *notes)
{
	const char *s = notes;

	while (*s) {
		size_t n = strcspn(s, "\n");
		log_warn("event=reload note=\"%.*s\"", (int)n, s);
		s += n + (s[n] == '\n');
	}
}

/*
 * SIGHUP's work, and the control socket's RELOAD (srv->reload, server.h):
 * the configuration, credentials, DKIM keys, outbound TLS files and every
 * listener's certificate and key, all or nothing. The log file is reopened
 * too. 0, or -1 with err (the running configuration stays); notes: what
 * needs a restart, one per line.
 */
int
reload_run(struct server *srv, char *err, size_t errlen, char *notes, size_t noteslen)
{
	struct reload_parts p;
	char st[1200];

	notes[0] = '\0';
	notify_reloading();
	if (reload_prepare(srv, &p, err, errlen) != 0) {
		reload_discard(srv, &p);
		log_err("event=reload_failed error=\"%s\" (keeping the running configuration)",
		        err);
		time_t now = time(NULL);
		struct tm tm;
		char at[32];
		gmtime_r(&now, &tm);
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(status_head, sizeof(status_head), "reload failed at %s: %.900s", at, err);
		reload_status_line(srv, status_head, st, sizeof(st));
		notify_ready(st);
		return -1;
	}
	status_head[0] = '\0';
	config_restart_notes(srv->cfg, p.cfg, notes, noteslen);
	reload_commit(srv, &p);
	if (log_reopen() != 0)
		log_err("event=log_reopen_failed file=%s error=\"%s\"", log_file(), strerror(errno));
	log_notes(notes);
	reload_tlsrpt_warn_unsigned(srv->cfg, srv->dkim);
	bdigest_warn_unsigned(srv->cfg, srv->dkim, NULL);
	log_info("event=reloaded config=%s credentials=%s",
	         srv->cfg->path ? srv->cfg->path : "(default)",
	         srv->cfg->credentials ? srv->cfg->credentials : "none");
	reload_status_line(srv, "", st, sizeof(st));
	notify_ready(st);
	return 0;
}

