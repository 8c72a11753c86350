/*
 * smtpd_auth: AUTH PLAIN and LOGIN (RFC 4954, RFC 4616), with and without
 * initial response. The crypt(3) check runs on a worker thread; a failure is
 * answered after a growing delay per client address (smtpd/peers.c), and never says
 * whether the user exists or is disabled (the log does). A blocked address is
 * refused at the AUTH command and again when a dialog's last line arrives
 * (the block may have begun meanwhile); a session refused more than
 * SMTPD_AUTH_REFUSALS_MAX times is closed.
 */
#include "mta/smtpd/smtpd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/async.h"
#include "mta/shared/config.h"
#include "mta/shared/creds.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/metrics.h"
#include "mta/smtpd/parse.h"

struct auth_job {
	struct session *s;
	char *user, *pass, *hash;
	bool disabled, unknown;
	int result;
};

bool
smtpd_auth_offered(const struct session *s)
{
	return s->srv->creds != NULL && s->auth_user == NULL &&
	       (s->tls || (s->lis->conf->auth_without_tls && !smtpd_sunset_auth_passed(s)));
}

const struct cred *
smtpd_cred(const struct session *s)
{
	if (s->auth_user == NULL || s->srv->creds == NULL)
		return NULL;
	return creds_find(s->srv->creds, s->auth_user);
}

void
smtpd_auth_cleanup(struct session *s)
{
	if (s->auth_login_user) {
		explicit_bzero(s->auth_login_user, strlen(s->auth_login_user));
		free(s->auth_login_user);
		s->auth_login_user = NULL;
	}
}

static void
job_free(struct auth_job *j)
{
	if (j->pass) {
		explicit_bzero(j->pass, strlen(j->pass));
		free(j->pass);
	}
	free(j->user);
	free(j->hash);
	free(j);
}

/* worker thread: only the job's own copies are touched here */
static void
auth_work(void *arg)
{
	struct auth_job *j = arg;
	if (j->hash == NULL) {
		creds_dummy_check(j->pass);
		j->result = -1;
		return;
	}
	struct cred c = {.user = j->user, .hash = j->hash};
	j->result = creds_check_password(&c, j->pass);
}

static void
on_fail_timer(void *arg)
{
	struct session *s = arg;
	if (!s->closed) {
		smtpd_reply_id(s, R_AUTH_FAILED);
		s->state = SS_CMD;
	}
	smtpd_resume(s);
}

/*
 * The address is blocked: 454 (and a rate-limited log line), or 421 and
 * close once this session was refused too often. Returns true when refused.
 */
static bool
auth_refused(struct session *s)
{
	const struct sockaddr *peer = (const struct sockaddr *)&s->peer;
	time_t now = time(NULL);
	unsigned n;

	if (authfail_blocked(s->srv, peer, now) == 0)
		return false;
	n = authfail_refused(s->srv, peer, now);
	if (n > 0)
		log_warn("s=%s event=auth_blocked ip=%s refused=%u", s->id, s->ip, n);
	smtpd_auth_cleanup(s);
	s->state = SS_CMD;
	if (++s->auth_refusals > SMTPD_AUTH_REFUSALS_MAX) {
		smtpd_reply_id(s, R_AUTH_BLOCKED_CLOSE, s->srv->cfg->hostname);
		smtpd_close_after_reply(s);
		return true;
	}
	smtpd_reply_id(s, R_AUTH_BLOCKED);
	return true;
}

static void
auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct session *s = j->s;
	const char *why = j->unknown ? "unknown_user" : j->disabled ? "disabled" : "bad_password";
	char day[16];

	if (s->closed) {
		/* the check ran: it counts, whether or not the client stayed to hear it */
		if (j->result == 0 && !j->disabled)
			authfail_clear(s->srv, (struct sockaddr *)&s->peer, j->user);
		else
			authfail_record(s->srv, (struct sockaddr *)&s->peer, j->user, time(NULL));
		job_free(j);
		smtpd_resume(s);
		return;
	}
	if (j->result == 0 && !j->disabled && !smtpd_sunset_cred(s, j->user, day, sizeof day)) {
		/* the right password: no throttling, but no session either */
		authfail_clear(s->srv, (struct sockaddr *)&s->peer, j->user);
		smtpd_reply_id(s, R_AUTH_SUNSET, j->user, day);
		s->state = SS_CMD;
		job_free(j);
		smtpd_resume(s);
		return;
	}
	if (j->result == 0 && !j->disabled) {
		s->auth_user = j->user;
		j->user = NULL;
		authfail_clear(s->srv, (struct sockaddr *)&s->peer, s->auth_user);
		metrics_inc(M_AUTH_OK);
		smtpd_sunset_auth_ok(s);
		log_info("s=%s event=auth ip=%s user=%s mech=%s tls=%s", s->id, s->ip, s->auth_user,
		         s->auth_mech, s->tls_done ? s->tls_version : "none");
		smtpd_reply_id(s, R_AUTH_OK);
		s->state = SS_CMD;
		job_free(j);
		smtpd_resume(s);
		return;
	}
	unsigned ms = authfail_record(s->srv, (struct sockaddr *)&s->peer, j->user, time(NULL));
	metrics_inc(M_AUTH_FAIL);
	char u[128];
	log_warn("s=%s event=auth_failed ip=%s user=\"%s\" mech=%s reason=%s", s->id, s->ip,
	         log_sanitize(u, sizeof(u), j->user, strlen(j->user)), s->auth_mech, why);
	job_free(j);
	if (s->timer == NULL)
		s->timer = loop_timer_new(s->srv->base, false, on_fail_timer, s);
	loop_timer_add(s->timer, ms);
}

/* Hand user/password to a worker. Takes ownership of both strings. */
static void
auth_check(struct session *s, char *user, char *pass)
{
	struct auth_job *j;
	const struct cred *c;

	/* a dialog opened before the block began: no password check now */
	if (auth_refused(s)) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
		free(user);
		return;
	}
	authfail_begin(s->srv, (struct sockaddr *)&s->peer, time(NULL));
	j = xcalloc(1, sizeof(*j));
	c = creds_find(s->srv->creds, user);
	j->s = s;
	j->user = user;
	j->pass = pass;
	j->unknown = c == NULL;
	if (c) {
		j->hash = xstrdup(c->hash); /* a copy: SIGHUP may free the table meanwhile */
		j->disabled = c->disabled;
	}
	s->state = SS_WAIT;
	async_run(s->srv->async, auth_work, auth_done, j);
}

/* PLAIN: authzid NUL authcid NUL passwd (RFC 4616 2). */
static void
auth_plain(struct session *s, const char *b64)
{
	char *buf;
	const char *user, *pass;
	size_t n;

	if (smtpd_b64_decode(b64, &buf, &n) != 0) {
		smtpd_reply_id(s, R_AUTH_BAD_B64);
		s->state = SS_CMD;
		return;
	}
	if (smtpd_plain_split(buf, n, &user, &pass) != 0) {
		explicit_bzero(buf, n);
		free(buf);
		smtpd_reply_id(s, R_AUTH_BAD_PLAIN);
		s->state = SS_CMD;
		return;
	}
	auth_check(s, xstrdup(user), xstrdup(pass));
	explicit_bzero(buf, n);
	free(buf);
}

void
smtpd_auth_line(struct session *s, char *line)
{
	char *dec;
	size_t n;

	if (strcmp(line, "*") == 0) {
		smtpd_auth_cleanup(s);
		smtpd_reply_id(s, R_AUTH_CANCELLED);
		s->state = SS_CMD;
		return;
	}
	if (strcmp(s->auth_mech, "PLAIN") == 0) {
		auth_plain(s, line);
		return;
	}
	dec = NULL;
	if (smtpd_b64_decode(line, &dec, &n) != 0 || strlen(dec) != n) {
		free(dec);
		smtpd_auth_cleanup(s);
		smtpd_reply_id(s, R_AUTH_BAD_B64);
		s->state = SS_CMD;
		return;
	}
	if (s->auth_step == 0) {
		s->auth_login_user = dec;
		s->auth_step = 1;
		smtpd_reply_id(s, R_AUTH_PASSWORD);
		return;
	}
	char *user = s->auth_login_user;
	s->auth_login_user = NULL;
	auth_check(s, user, dec);
}

/* After auth_without_tls_until: the 538 naming what this client can change to. */
static void
auth_sunset_refuse(struct session *s, const char *day)
{
	const struct listener_conf *l = s->lis->conf, *o;

	if (l->tls != LTLS_NONE) { /* STARTTLS is right here */
		smtpd_reply_id(s, R_AUTH_NO_TLS_SUNSET, day, l->name);
		return;
	}
	for (o = s->srv->cfg->listeners; o; o = o->next)
		if (o->tls != LTLS_NONE)
			break;
	if (o == NULL)
		smtpd_reply_id(s, R_AUTH_NO_TLS_SUNSET_NONE, day, l->name);
	else
		smtpd_reply_id(s, R_AUTH_NO_TLS_SUNSET_MOVE, day, l->name, o->name,
		               o->address_text,
		               o->tls == LTLS_IMPLICIT ? "TLS from the start (RFC 8314)" : "STARTTLS");
}

void
smtpd_cmd_auth(struct session *s, char *arg)
{
	char *mech = arg, *ir, day[16];

	if (s->auth_user) {
		smtpd_reply_id(s, R_AUTH_ALREADY);
		return;
	}
	if (s->srv->creds == NULL) {
		smtpd_reply_id(s, R_AUTH_UNAVAILABLE);
		return;
	}
	if (!s->tls && !s->lis->conf->auth_without_tls) {
		smtpd_reply_id(s, R_AUTH_NEED_TLS);
		return;
	}
	if (!smtpd_sunset_auth_cmd(s, day, sizeof day)) {
		auth_sunset_refuse(s, day);
		return;
	}
	if (s->in_tx) {
		smtpd_reply_id(s, R_AUTH_IN_TX);
		return;
	}
	if (auth_refused(s))
		return;
	ir = strchr(mech, ' ');
	if (ir) {
		*ir++ = '\0';
		while (*ir == ' ')
			ir++;
	}
	s->auth_step = 0;
	s->state = SS_AUTH;
	if (util_strncaseeq(mech, "PLAIN", 6)) {
		s->auth_mech = "PLAIN";
		if (ir == NULL || *ir == '\0')
			smtpd_reply_id(s, R_AUTH_CHALLENGE);
		else
			auth_plain(s, strcmp(ir, "=") == 0 ? "" : ir);
	} else if (util_strncaseeq(mech, "LOGIN", 6)) {
		s->auth_mech = "LOGIN";
		if (ir == NULL || *ir == '\0')
			smtpd_reply_id(s, R_AUTH_USERNAME);
		else
			smtpd_auth_line(s, ir);
	} else {
		s->state = SS_CMD;
		smtpd_reply_id(s, R_AUTH_MECH);
	}
}
