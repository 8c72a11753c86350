/*
 * smtpd_data: the DATA phase's SMTP framing. Sends the 354, reads the
 * content line by line from the input buffer and hands each line to the
 * content rules (intake/content.h), finds the end (CRLF "." CRLF), and
 * passes the finished message to intake (intake/intake.h), whose one
 * result becomes the reply; the 250 goes out only after the spool commit.
 *
 * Smuggling (CVE-2023-51764 class): the content ends ONLY at CRLF "." CRLF
 * where the previous line also ended in CRLF. A bare LF or bare CR anywhere
 * marks the whole message as refused (content.c); the refusal is sent after
 * the real end, so nothing inside a message can ever start a second one.
 *
 * bare_lf = normalize (the listener default, issue 15) keeps that end rule
 * unchanged: content.c stores a line ending in LF alone with CRLF, but
 * only a "." CRLF after a line that really ended in CRLF ends DATA, never
 * after a normalised LF. So "LF . LF", "CR LF . LF" and "LF . CR LF" end
 * nothing here; content.c refuses a message holding such a "." line
 * (R_BARE_DOT) after the real end. Postfix's smtpd_forbid_bare_newline =
 * normalize (postconf(5), Postfix 3.9) likewise accepts LF line ends yet
 * requires the standard CR LF . CR LF to end DATA.
 *
 * A device that ends DATA with "LF . LF" waits for a reply that the rule
 * above never gives: when the input stops right after such a "." line for
 * LF_DOT_QUIET_MS (or after a QUIT pipelined right behind it),
 * smtpd_data_stalled refuses the message (R_LF_DOT_END)
 * and closes: what such a client sends next cannot be told apart from the
 * rest of its message, so none of it may be read as a command.
 */
#include "mta/smtpd/smtpd_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mta/intake/audit.h"
#include "mta/intake/content.h"
#include "mta/intake/intake.h"
#include "mta/intake/repair.h"
#include "mta/metrics.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

#define LF_DOT_QUIET_MS 5000 /* silence after a "." LF that means the client is done */

struct smtpd_data {
	struct content *c;
	bool prev_crlf; /* the last line ended in CRLF (or DATA just began) */
	bool midline;   /* dropping the tail of an over-long line */
	bool tail_cr;   /* ... and the octets dropped so far ended in CR */
	bool last_dot;  /* the last line was "." that did not end DATA ("." LF, LF "." CRLF) */
	bool dot_wait;  /* ... and nothing came after it yet */
	/* what intake borrows until its answer: log keys and the audit's view */
	char log_id[24], who[80], tail[128];
	struct audit_client audit;
};

void
smtpd_data_free(struct session *s)
{
	if (s->data) {
		content_free(s->data->c);
		free(s->data);
		s->data = NULL;
	}
}

/* The transaction is over (RSET, HELO, STARTTLS, the end of DATA, the free): forget it. */
void
smtpd_tx_reset(struct session *s)
{
	size_t i;
	smtpd_data_free(s);
	free(s->mail_from);
	s->mail_from = NULL;
	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->mail_flags = 0;
	s->in_tx = false;
}

/* Received: header, RFC 5321 4.4 with RFC 3848 protocol names. */
static void
make_received(struct session *s, char *out, size_t outlen)
{
	char date[64], tls[160] = "", rcpt[300] = "";
	const char *proto =
	    s->auth_user ? (s->tls ? "ESMTPSA" : "ESMTPA") : (s->tls ? "ESMTPS" : "ESMTP");

	if (!s->esmtp)
		proto = "SMTP";
	util_rfc5322_date(date, sizeof(date), time(NULL));
	if (s->tls_done)
		snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s)", s->tls_version,
		         s->tls_cipher);
	if (s->nrcpts == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", s->rcpts[0]);
	snprintf(out, outlen,
	         "Received: from %s ([%s])\r\n\tby %s (mxrelay) with %s id %s%s%s;\r\n\t%s\r\n",
	         s->helo, s->ip, s->srv->cfg->hostname, proto, s->qid, tls, rcpt, date);
}

void
smtpd_data_begin(struct session *s)
{
	struct smtpd_data *d = xcalloc(1, sizeof(*d));
	char received[2048];

	util_make_qid(s->qid);
	make_received(s, received, sizeof(received));
	d->c = content_new(s->srv, s->qid, s->mail_from, received);
	content_options(d->c, s->lis->conf->bare_lf == BARE_LF_NORMALIZE,
	                repair_choose(s->srv->cfg, s->auth_user, s->lis->conf->name,
	                              (const struct sockaddr *)&s->peer));
	d->prev_crlf = true;
	s->data = d;
	s->state = SS_DATA;
	s->data_start = util_now_ms(); /* data_deadline and min_data_rate count from here */
	s->data_bytes = 0;
	smtpd_reply_id(s, R_DATA_START);
}

static void
finish_reply(struct session *s)
{
	smtpd_tx_reset(s);
	s->ntx++;
	s->state = SS_CMD;
	if (s->srv->draining) {
		smtpd_reply_id(s, R_SHUTTING_DOWN, s->srv->cfg->hostname);
		smtpd_close_after_reply(s);
	}
}

/* intake's one answer: the reply line to send (see intake.h). */
static void
data_done(void *arg, const struct intake_result *res)
{
	struct session *s = arg;

	if (res->id != R_NONE) {
		if (!s->closed) {
			smtpd_reply_line(s, res->reply);
			finish_reply(s);
		} else {
			smtpd_tx_reset(s);
		}
	}
	if (res->waited) /* the wait is over: read on */
		smtpd_resume(s);
}

static void
finish(struct session *s)
{
	struct smtpd_data *d = s->data;
	struct content *c = d->c;
	struct intake_env env = {0};

	snprintf(d->log_id, sizeof(d->log_id), "s=%s", s->id);
	snprintf(d->who, sizeof(d->who), "ip=%s", s->ip);
	snprintf(d->tail, sizeof(d->tail), " tls=%s auth=%s", s->tls_done ? s->tls_version : "none",
	         s->auth_user ? s->auth_user : "-");
	d->audit = (struct audit_client){
	    s->ip,         s->auth_user,   s->auth_mech, s->tls_done ? s->tls_version : NULL,
	    s->tls_cipher, s->allowlisted, s->mail_from};
	env.log_id = d->log_id;
	env.qid = s->qid;
	env.sender = s->mail_from;
	env.rcpts = (const char *const *)s->rcpts;
	env.nrcpts = s->nrcpts;
	env.flags = s->mail_flags;
	env.client_ip = s->ip;
	env.helo = s->helo;
	env.auth_user = s->auth_user;
	env.listener = s->lis->conf->name; /* stable: a reload keeps the listener sections */
	env.cred = s->auth_user ? smtpd_cred(s) : NULL;
	env.audit = &d->audit;
	env.log_who = d->who;
	env.log_accepted_tail = d->tail;
	env.gone = &s->closed;
	env.spooling = &s->spooling;
	d->c = NULL; /* intake's now */
	s->state = SS_WAIT;
	intake_submit(s->srv, &env, c, data_done, s);
}

/* Peek whether the n-octet line at the front of in ends in CRLF. */
static bool
ends_crlf(struct evbuffer *in, size_t n)
{
	struct evbuffer_ptr p;
	char c;
	if (n < 2 || evbuffer_ptr_set(in, &p, n - 2, EVBUFFER_PTR_SET) != 0)
		return false;
	return evbuffer_copyout_from(in, &p, &c, 1) == 1 && c == '\r';
}

static bool
feed(struct session *s, struct evbuffer *in)
{
	struct smtpd_data *d = s->data;
	char line[CONTENT_LINE_MAX + 1];

	for (;;) {
		struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
		size_t avail = evbuffer_get_length(in), n;

		if (eol.pos < 0) {
			d->dot_wait = d->last_dot && avail == 0;
			if (avail > CONTENT_LINE_MAX) {
				/* surely over-long: drop it now to keep memory bounded */
				d->midline = true;
				d->tail_cr = ends_crlf(in, avail + 1);
				content_line(d->c, NULL, avail);
				evbuffer_drain(in, avail);
			}
			return true;
		}
		n = (size_t)eol.pos + 1;
		if (d->midline || n > CONTENT_LINE_MAX) {
			/* the CR of a CRLF may have gone with the dropped part */
			d->prev_crlf = ends_crlf(in, n) || (d->midline && n == 1 && d->tail_cr);
			d->midline = d->last_dot = false;
			content_line(d->c, NULL, n);
			evbuffer_drain(in, n);
			continue;
		}
		evbuffer_remove(in, line, n);
		if (d->prev_crlf && n == 3 && line[0] == '.' && line[1] == '\r') {
			finish(s);
			return false;
		}
		d->prev_crlf = n >= 2 && line[n - 2] == '\r';
		/* a device may pipeline QUIT right behind its LF . LF: quiet after it too */
		d->last_dot = (line[0] == '.' && (n == 2 || (n == 3 && line[1] == '\r'))) ||
		              (d->last_dot && (n == 5 || (n == 6 && line[4] == '\r')) &&
		               strncasecmp(line, "QUIT", 4) == 0);
		content_line(d->c, line, n);
	}
}

bool
smtpd_data_feed(struct session *s, struct evbuffer *in)
{
	size_t before = evbuffer_get_length(in);
	bool more = feed(s, in);

	s->data_bytes += before - evbuffer_get_length(in); /* for min_data_rate */
	return more;
}

bool
smtpd_data_stalled(struct session *s, int64_t now)
{
	struct smtpd_data *d = s->data;
	char text[512], qa[300];

	if (s->state != SS_DATA || d == NULL || !d->dot_wait ||
	    now - s->last_read < LF_DOT_QUIET_MS)
		return false;
	reply_format_text(text, sizeof(text), R_LF_DOT_END);
	s->srv->rejected++;
	metrics_reject(reply_class(R_LF_DOT_END));
	log_warn("s=%s qid=%s event=rejected ip=%s from=\"<%s>\" code=%u dsn=%s reason=\"%s\" "
	         "quiet_ms=%lld",
	         s->id, s->qid, s->ip, LOG_Q(qa, s->mail_from ? s->mail_from : ""),
	         reply_code(R_LF_DOT_END), reply_status(R_LF_DOT_END), text,
	         (long long)(now - s->last_read));
	audit_event(s->srv, s->ip, s->auth_user, AUDIT_EV_BARE_LF);
	smtpd_reply_id(s, R_LF_DOT_END);
	smtpd_tx_reset(s);
	smtpd_close_after_reply(s);
	return true;
}
