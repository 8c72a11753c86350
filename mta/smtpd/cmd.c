/*
 * smtpd_cmd: the command table and the envelope commands (RFC 5321 4.1.1,
 * RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3207 STARTTLS).
 * Every refusal carries an RFC 3463 enhanced status code.
 */
#include "mta/smtpd/smtpd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/shared/config.h"
#include "mta/intake/audit.h"
#include "mta/intake/intake.h"
#include "mta/shared/addr.h"
#include "mta/shared/creds.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/metrics.h"
#include "mta/smtpd/parse.h"
#include "mta/smtpd/ratelimit.h"

#define F_PRE_HELO 0x01 /* allowed before HELO/EHLO */
#define F_PRE_TLS 0x02  /* allowed before STARTTLS where TLS is required */
#define F_LONG 0x04     /* may exceed the 512-octet command limit (AUTH) */
#define F_NO_WORK 0x08  /* moves no transaction on: keeps no session from eviction (limits.c) */

struct cmd {
	const char *verb;
	void (*fn)(struct session *s, char *arg);
	unsigned flags;
};

static void
cmd_helo_common(struct session *s, char *arg, bool esmtp)
{
	char clean[256];
	if (*arg == '\0') {
		smtpd_reply_id(s, R_HELO_SYNTAX, esmtp ? "EHLO" : "HELO");
		s->bad_cmds++;
		return;
	}
	smtpd_tx_reset(s);
	free(s->helo);
	s->helo = xstrdup(log_sanitize(clean, sizeof(clean), arg, strlen(arg)));
	s->esmtp = esmtp;
}

static void
cmd_helo(struct session *s, char *arg)
{
	cmd_helo_common(s, arg, false);
	if (s->helo)
		smtpd_reply_id(s, R_HELO, s->srv->cfg->hostname);
}

static void
cmd_ehlo(struct session *s, char *arg)
{
	const char *ext[10];
	char size[40];
	int n = 0, i;

	cmd_helo_common(s, arg, true);
	if (s->helo == NULL || !s->esmtp)
		return;
	snprintf(size, sizeof(size), "SIZE %llu",
	         (unsigned long long)s->srv->cfg->max_message_size);
	ext[n++] = "PIPELINING";
	ext[n++] = size;
	ext[n++] = "8BITMIME";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "ENHANCEDSTATUSCODES";
	if (s->lis->conf->tls != LTLS_NONE && !s->tls)
		ext[n++] = "STARTTLS";
	if (smtpd_auth_offered(s)) {
		ext[n++] = "AUTH PLAIN LOGIN";
		ext[n++] = "AUTH=PLAIN LOGIN"; /* for pre-RFC 4954 Outlook-era clients */
	}
	ext[n++] = "HELP";
	smtpd_reply_more(s, R_EHLO_HELLO, s->srv->cfg->hostname, s->ip);
	for (i = 0; i < n - 1; i++)
		smtpd_reply_more(s, R_HELO, ext[i]);
	smtpd_reply_id(s, R_HELO, ext[n - 1]);
}

/* Parse MAIL parameters (smtpd/parse.h). 0 / -1 (replied). */
static int
mail_params(struct session *s, char *p)
{
	enum reply_id reply;

	if (smtpd_mail_params(p, s->esmtp, s->srv->cfg->max_message_size, &s->mail_flags, &reply) ==
	    0)
		return 0;
	smtpd_reply_id(s, reply);
	return -1;
}

static void
reply_addr_error(struct session *s, enum addr_status st, bool rcpt)
{
	switch (st) {
	case ADDR_NEED_UTF8:
		smtpd_reply_id(s, R_ADDR_NEED_UTF8);
		break;
	case ADDR_ROUTE:
	case ADDR_PERCENT:
	case ADDR_BANG:
	case ADDR_QUOTED_AT:
		smtpd_reply_id(s, R_ADDR_REJECTED, addr_strerror(st));
		break;
	default:
		smtpd_reply_id(s, rcpt ? R_RCPT_BAD : R_SENDER_BAD, addr_strerror(st));
	}
}

/* Out of space (queue_minfree, spool reserve in use): say so before the data is
 * sent, like Postfix; the writer still judges each batch at the end. 1: refused. */
static int
mail_paused(struct session *s, const char *addr)
{
	char qa[300];

	if (metrics_gauge(G_INTAKE_PAUSED) == 0)
		return 0;
	smtpd_reply_id(s, R_SPOOL_FULL);
	metrics_reject(RC_SYSTEM);
	s->srv->rejected++;
	log_warn("s=%s event=mail_refused ip=%s reason=intake_paused from=\"<%s>\"", s->id, s->ip,
	         LOG_Q(qa, addr));
	return 1;
}

/*
 * rate_limit rules (smtpd/ratelimit.c): count msgs messages and rcpts
 * recipients; 1 when a rule is at its limit (451 4.7.1 sent, logged,
 * counted in the audit and metrics), else 0. Only clients that may relay
 * reach here, so a stranger's MAIL never fills the counter table.
 */
static int
rate_limited(struct session *s, unsigned msgs, unsigned rcpts)
{
	struct ratelimit_client cl = {s->auth_user, s->lis->conf->name,
	                              (const struct sockaddr *)&s->peer, s->ip};
	struct ratelimit_hit hit;
	char lim[16], line[16], when[32], qr[RATELIMIT_KEY_MAX + 40], qk[RATELIMIT_KEY_MAX + 40];
	time_t now = time(NULL);
	struct tm tm;

	if (s->srv->cfg->rate_limits == NULL || ratelimit_take(s->srv->cfg, &cl, msgs, rcpts, now,
	                                                       &hit) == 0)
		return 0;
	snprintf(lim, sizeof(lim), "%u", hit.limit);
	snprintf(line, sizeof(line), "%d", hit.line);
	gmtime_r(&hit.free_at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	smtpd_reply_id(s, R_RATE_LIMITED, lim, hit.what, hit.who, line,
	               when);
	metrics_inc(msgs ? M_RATE_LIMITED_MSGS : M_RATE_LIMITED_RCPTS);
	audit_event(s->srv, s->ip, s->auth_user, AUDIT_EV_RATE_LIMITED);
	log_warn("s=%s event=rate_limited ip=%s user=%s rule=\"%s\" line=%d key=\"%s\" limit=%s "
	         "max=%u free_at=%s retry_in=%lld",
	         s->id, s->ip, s->auth_user ? s->auth_user : "-", LOG_Q(qr, hit.rule), hit.line,
	         LOG_Q(qk, hit.key), hit.what, hit.limit, when, (long long)(hit.free_at - now));
	return 1;
}

static void
cmd_mail(struct session *s, char *arg)
{
	char addr[ADDR_MAX], qa[300];
	const char *params = NULL;
	enum addr_status st;
	char pbuf[SMTPD_AUTH_LINE_MAX];

	if (s->in_tx) {
		smtpd_reply_id(s, R_NESTED_MAIL);
		return;
	}
	if (!util_strncaseeq(arg, "FROM:", 5)) {
		smtpd_reply_id(s, R_MAIL_SYNTAX);
		s->bad_cmds++;
		return;
	}
	/* parse liberally first to reach the parameters, then strictly once we know SMTPUTF8 */
	st = addr_parse_path(arg + 5, ADDR_F_NULL_OK | ADDR_F_UTF8, addr, sizeof(addr), &params);
	if (st != ADDR_OK) {
		reply_addr_error(s, st, false);
		return;
	}
	s->mail_flags = 0;
	snprintf(pbuf, sizeof(pbuf), "%s", params);
	if (mail_params(s, pbuf) != 0)
		return;
	if (!(s->mail_flags & SPOOL_F_SMTPUTF8)) {
		st = addr_parse_path(arg + 5, ADDR_F_NULL_OK, addr, sizeof(addr), NULL);
		if (st != ADDR_OK) {
			reply_addr_error(s, st, false);
			return;
		}
	}
	if (s->auth_user != NULL) {
		const struct cred *c = smtpd_cred(s);
		if (c == NULL || c->disabled || creds_sender_allowed(c, addr) != 0) {
			smtpd_reply_id(s, R_MAIL_NOT_ALLOWED, addr);
			metrics_inc(M_REJ_SENDER);
			log_warn("s=%s event=sender_refused ip=%s user=%s from=\"<%s>\"", s->id,
			         s->ip, s->auth_user, LOG_Q(qa, addr));
			return;
		}
	}
	if (mail_paused(s, addr))
		return;
	if ((s->allowlisted || s->auth_user != NULL) && rate_limited(s, 1, 0))
		return;
	/* dkim_unsigned = refuse: say so at MAIL, before the client sends the data */
	if (intake_sender_refusal(s->srv, addr) != R_NONE) {
		smtpd_reply_id(s, R_SENDER_NO_DKIM_KEY, addr);
		metrics_inc(M_REJ_SENDER);
		return;
	}
	smtpd_sunset_mail(s);
	s->mail_from = xstrdup(addr);
	s->in_tx = true;
	smtpd_reply_id(s, R_MAIL_OK);
}

static void
cmd_rcpt(struct session *s, char *arg)
{
	char addr[ADDR_MAX], qa[300];
	const char *params = NULL;
	unsigned flags = ADDR_F_STRICT;
	enum addr_status st;
	size_t i;

	if (!s->in_tx) {
		smtpd_reply_id(s, R_NEED_MAIL);
		return;
	}
	if (!util_strncaseeq(arg, "TO:", 3)) {
		smtpd_reply_id(s, R_RCPT_SYNTAX);
		s->bad_cmds++;
		return;
	}
	if (s->mail_flags & SPOOL_F_SMTPUTF8)
		flags |= ADDR_F_UTF8;
	st = addr_parse_path(arg + 3, flags, addr, sizeof(addr), &params);
	if (st != ADDR_OK) {
		reply_addr_error(s, st, true);
		return;
	}
	if (*params) {
		smtpd_reply_id(s, R_PARAM_UNSUPPORTED);
		return;
	}
	/* never an open relay: allowlisted address or authenticated, nothing else */
	if (!s->allowlisted && s->auth_user == NULL) {
		if (smtpd_auth_offered(s))
			smtpd_reply_id(s, R_AUTH_REQUIRED);
		else
			smtpd_reply_id(s, R_RELAY_DENIED, addr);
		log_warn("s=%s event=relay_denied ip=%s to=\"<%s>\"", s->id, s->ip,
		         LOG_Q(qa, addr));
		metrics_inc(M_REJ_RELAY);
		return;
	}
	/* an address literal has no MX to look up: accepted, it could only bounce later */
	if (!config_literal_routed(s->srv->cfg, addr)) {
		smtpd_reply_id(s, R_LITERAL_NO_ROUTE, addr);
		metrics_inc(M_REJ_RELAY);
		return;
	}
	if (s->nrcpts >= s->srv->cfg->max_recipients) {
		smtpd_reply_id(s, R_TOO_MANY_RCPTS);
		return;
	}
	for (i = 0; i < s->nrcpts; i++)
		if (strcmp(s->rcpts[i], addr) == 0)
			break;
	if (i == s->nrcpts && rate_limited(s, 0, 1))
		return;
	if (i == s->nrcpts) {
		s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(char *));
		s->rcpts[s->nrcpts++] = xstrdup(addr);
	}
	smtpd_reply_id(s, R_RCPT_OK);
}

static void
cmd_data(struct session *s, char *arg)
{
	if (*arg) {
		smtpd_reply_id(s, R_DATA_ARGS);
		return;
	}
	if (!s->in_tx) {
		smtpd_reply_id(s, R_NEED_MAIL);
		return;
	}
	if (s->nrcpts == 0) {
		/* RFC 2920 3.1: with pipelining, a DATA after failed RCPTs gets 554 */
		smtpd_reply_id(s, R_NO_RCPTS);
		return;
	}
	smtpd_data_begin(s);
}

static void
cmd_rset(struct session *s, char *arg)
{
	smtpd_tx_reset(s);
	smtpd_reply_id(s, R_OK_DONE);
}

static void
cmd_noop(struct session *s, char *arg)
{
	smtpd_reply_id(s, R_OK_DONE);
}

static void
cmd_quit(struct session *s, char *arg)
{
	smtpd_reply_id(s, R_BYE, s->srv->cfg->hostname);
	smtpd_close_after_reply(s);
}

static void
cmd_help(struct session *s, char *arg)
{
	smtpd_reply_more(s, R_HELP_COMMANDS);
	smtpd_reply_id(s, R_HELP_MORE);
}

static void
cmd_vrfy(struct session *s, char *arg)
{
	smtpd_reply_id(s, R_VRFY);
}

static void
cmd_expn(struct session *s, char *arg)
{
	smtpd_reply_id(s, R_EXPN);
}

static void
cmd_starttls(struct session *s, char *arg)
{
	if (s->lis->conf->tls == LTLS_NONE) {
		smtpd_reply_id(s, R_TLS_UNAVAILABLE);
		return;
	}
	if (s->tls) {
		smtpd_reply_id(s, R_TLS_ACTIVE);
		return;
	}
	if (*arg) {
		smtpd_reply_id(s, R_TLS_ARGS);
		return;
	}
	smtpd_reply_id(s, R_TLS_READY);
	/* RFC 3207 4.2: forget everything learned before TLS, a plaintext AUTH too */
	smtpd_tx_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	free(s->auth_user);
	s->auth_user = NULL;
	if (smtpd_starttls(s) != 0) {
		log_err("s=%s event=tls_setup_failed ip=%s", s->id, s->ip);
		smtpd_close_after_reply(s);
	}
}

static const struct cmd commands[] = {
    {"EHLO", cmd_ehlo, F_PRE_HELO | F_PRE_TLS},
    {"HELO", cmd_helo, F_PRE_HELO | F_PRE_TLS},
    {"MAIL", cmd_mail, 0},
    {"RCPT", cmd_rcpt, 0},
    {"DATA", cmd_data, 0},
    {"RSET", cmd_rset, F_PRE_HELO | F_PRE_TLS | F_NO_WORK},
    {"NOOP", cmd_noop, F_PRE_HELO | F_PRE_TLS | F_NO_WORK},
    {"QUIT", cmd_quit, F_PRE_HELO | F_PRE_TLS},
    {"HELP", cmd_help, F_PRE_HELO | F_PRE_TLS | F_NO_WORK},
    {"VRFY", cmd_vrfy, F_PRE_HELO | F_NO_WORK},
    {"EXPN", cmd_expn, F_PRE_HELO | F_NO_WORK},
    {"STARTTLS", cmd_starttls, F_PRE_TLS},
    {"AUTH", smtpd_cmd_auth, F_LONG},
};

void
smtpd_dispatch(struct session *s, char *line, size_t len)
{
	const struct cmd *c = NULL;
	size_t vlen, i;
	char *arg;

	if (s->srv->draining && !s->in_tx) {
		smtpd_reply_id(s, R_SHUTTING_DOWN, s->srv->cfg->hostname);
		smtpd_close_after_reply(s);
		return;
	}
	if (smtpd_split_command(line, len, &vlen, &arg) != 0) {
		smtpd_reply_id(s, R_CMD_NUL);
		s->bad_cmds++;
		return;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].verb) == vlen &&
		    util_strncaseeq(line, commands[i].verb, vlen))
			c = &commands[i];
	if (c == NULL) {
		smtpd_reply_id(s, R_CMD_UNKNOWN);
		s->bad_cmds++;
		return;
	}
	if (len + 2 > SMTPD_CMD_MAX && !(c->flags & F_LONG)) {
		smtpd_reply_id(s, R_CMD_TOO_LONG);
		s->bad_cmds++;
		return;
	}
	if (!(c->flags & F_PRE_HELO) && s->helo == NULL) {
		smtpd_reply_id(s, R_NEED_HELO);
		return;
	}
	if (!(c->flags & F_PRE_TLS) && s->lis->conf->tls == LTLS_REQUIRED && !s->tls) {
		smtpd_reply_id(s, R_NEED_TLS);
		return;
	}
	if (!(c->flags & F_NO_WORK))
		s->last_work = util_now_ms(); /* a NOOP drip must not look busy */
	c->fn(s, arg);
}
