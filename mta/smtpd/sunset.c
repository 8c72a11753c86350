/*
 * smtpd_sunset: the dates after which a legacy way in stops working (issue
 * 15): a credential's sunset (credentials file), a listener's
 * legacy_tls_until (TLS 1.0/1.1) and auth_without_tls_until (AUTH before
 * STARTTLS). From SUNSET_WARN_DAYS before the date each use is logged as
 * event=sunset_near and counted in the audit; after it the caller (auth.c)
 * sends a 5xx that names the date and the fix, logged here as
 * event=sunset_refused. Also the "rule=" of a refused TLS handshake and the
 * start-up warnings. Sends no reply itself: io.c calls in here.
 */
#include "mta/smtpd/smtpd_int.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "mta/intake/audit.h"
#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/shared/creds.h"
#include "mta/shared/log.h"
#include "mta/server.h"

#define SUNSET_WARN_DAYS 30

/*
 * Whole days from today (UTC) to the last working day: 0 on the last day
 * itself, -1 once it has passed. UNTIL is the first second that no longer
 * works (creds_parse_date, config legacy_tls_until).
 */
static long
days_left(time_t until, time_t now)
{
	if (now >= until)
		return -1;
	return (long)((until - 86400 - (now - now % 86400)) / 86400);
}

/* Log and count a use within the warning window against USER ("": none, allowlisted). */
static void
warn_near(struct session *s, const char *user, const char *rule, time_t until)
{
	char day[16];
	long left = days_left(until, time(NULL));

	if (left < 0 || left > SUNSET_WARN_DAYS)
		return;
	creds_format_date(until, day, sizeof day);
	log_warn("s=%s event=sunset_near ip=%s listener=%s user=%s rule=%s date=%s days_left=%ld",
	         s->id, s->ip, s->lis->conf->name, *user ? user : "-", rule, day, left);
	audit_event(s->srv, s->ip, *user ? user : NULL, AUDIT_EV_SUNSET_WARN);
}

static void
log_refused(struct session *s, const char *user, const char *rule, const char *day)
{
	log_warn("s=%s event=sunset_refused ip=%s listener=%s user=%s rule=%s date=%s", s->id,
	         s->ip, s->lis->conf->name, user ? user : "-", rule, day);
	audit_event(s->srv, s->ip, user, AUDIT_EV_SUNSET_REFUSED);
}

void
smtpd_sunset_tls(struct session *s)
{
	time_t until = s->lis->conf->legacy_until;
	long left;

	if (!s->tls_legacy || until == 0)
		return;
	left = days_left(until, time(NULL));
	/* the user is not known yet: counted once, at MAIL (smtpd_sunset_mail) */
	s->sunset_tls_due = left >= 0 && left <= SUNSET_WARN_DAYS;
}

void
smtpd_sunset_mail(struct session *s)
{
	if (!s->sunset_tls_due)
		return;
	s->sunset_tls_due = false;
	warn_near(s, s->auth_user ? s->auth_user : "", "legacy_tls_until",
	          s->lis->conf->legacy_until);
}

void
smtpd_sunset_auth_ok(struct session *s)
{
	if (!s->sunset_auth_due)
		return;
	s->sunset_auth_due = false;
	warn_near(s, s->auth_user, "auth_without_tls_until", s->lis->conf->auth_without_tls_until);
}

bool
smtpd_sunset_auth_cmd(struct session *s, char *day, size_t daylen)
{
	time_t until = s->lis->conf->auth_without_tls_until;
	long left;

	s->sunset_auth_due = false;
	if (s->tls || until == 0)
		return true;
	left = days_left(until, time(NULL));
	creds_format_date(until, day, daylen);
	if (left < 0) {
		log_refused(s, NULL, "auth_without_tls_until", day);
		return false;
	}
	/* counted against the user once AUTH succeeds (smtpd_sunset_auth_ok): a failed
	 * or cancelled AUTH must not raise the counts */
	s->sunset_auth_due = left <= SUNSET_WARN_DAYS;
	return true;
}

bool
smtpd_sunset_auth_passed(const struct session *s)
{
	time_t until = s->lis->conf->auth_without_tls_until;

	return !s->tls && until != 0 && time(NULL) >= until;
}

bool
smtpd_sunset_cred(struct session *s, const char *user, char *day, size_t daylen)
{
	const struct cred *c = s->srv->creds ? creds_find(s->srv->creds, user) : NULL;
	long left;

	if (c == NULL || c->sunset == 0)
		return true;
	left = days_left(c->sunset, time(NULL));
	creds_format_date(c->sunset, day, daylen);
	if (left < 0) {
		log_refused(s, user, "credential", day);
		return false;
	}
	if (left <= SUNSET_WARN_DAYS) {
		log_warn("s=%s event=sunset_near ip=%s listener=%s user=%s rule=credential date=%s "
		         "days_left=%ld",
		         s->id, s->ip, s->lis->conf->name, user, day, left);
		audit_event(s->srv, s->ip, user, AUDIT_EV_SUNSET_WARN);
	}
	return true;
}

const char *
smtpd_tls_refusal_rule(const struct session *s, unsigned long err, char *day, size_t daylen)
{
	const struct listener_conf *l = s->lis->conf;
	int r = ERR_GET_REASON(err);

	day[0] = '\0';
	if (r != SSL_R_UNSUPPORTED_PROTOCOL && r != SSL_R_VERSION_TOO_LOW)
		return NULL;
	if ((l->legacy_tls || cidr_list_match(&l->legacy_from, (struct sockaddr *)&s->peer)) &&
	    l->legacy_until != 0 && time(NULL) >= l->legacy_until) {
		creds_format_date(l->legacy_until, day, daylen);
		return "legacy_tls_until";
	}
	if (!l->legacy_tls && l->legacy_from.n > 0)
		return "legacy_tls_from";
	return "tls_min_version";
}

/* One start-up line for a date within the warning window or past. */
static void
warn_startup(const char *what, const char *rule, time_t until, time_t now)
{
	char day[16];
	long left = days_left(until, now);

	if (until == 0 || left > SUNSET_WARN_DAYS)
		return;
	creds_format_date(until, day, sizeof day);
	if (left < 0)
		log_warn("event=sunset_past %s rule=%s date=%s", what, rule, day);
	else
		log_warn("event=sunset_near %s rule=%s date=%s days_left=%ld", what, rule, day,
		         left);
}

void
smtpd_sunset_startup(const struct config *c, const struct creds *cr, time_t now)
{
	char what[256];

	for (const struct listener_conf *l = c->listeners; l; l = l->next) {
		snprintf(what, sizeof what, "listener=%s", l->name);
		if (l->legacy_tls || l->legacy_from.n > 0)
			warn_startup(what, "legacy_tls_until", l->legacy_until, now);
		if (l->auth_without_tls)
			warn_startup(what, "auth_without_tls_until", l->auth_without_tls_until, now);
	}
	for (size_t i = 0; cr && i < creds_count(cr); i++) {
		const struct cred *u = creds_at(cr, i);

		if (u->disabled)
			continue;
		snprintf(what, sizeof what, "user=%s", u->user);
		warn_startup(what, "credential", u->sunset, now);
	}
}
