/*
 * smtpd_data: the DATA phase. Reads the content line by line from the input
 * buffer, unstuffs dots (RFC 5321 4.5.2), enforces the limits, and hands the
 * finished message to the spool writer; the 250 goes out only after the
 * commit (writer.h).
 *
 * Smuggling (CVE-2023-51764 class): the content ends ONLY at CRLF "." CRLF
 * where the previous line also ended in CRLF. A bare LF or bare CR anywhere
 * marks the whole message as refused; the refusal is sent after the real end,
 * so nothing inside a message can ever start a second one.
 */
#include "mta/smtpd/smtpd_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/intake/audit.h"
#include "mta/shared/config.h"
#include "mta/intake/content.h"
#include "mta/delivery/sched.h"
#include "mta/metrics.h"
#include "mta/intake/dkimsign.h"
#include "mta/async.h"
#include "mta/intake/hdrfrom.h"
#include "mta/shared/addr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

#define DATA_LINE_MAX 1000 /* RFC 5321 4.5.3.1.6, incl. CRLF */

struct smtpd_data {
	struct server *srv; /* limits and hostname at the moment of use (SIGHUP) */
	const char *qid;    /* the owner's queue id (session or local submission) */
	char *buf;
	size_t len, cap;
	uint64_t raw; /* octets received, for the size limit */
	size_t hdr_bytes;
	bool in_header, seen_msgid, seen_date;
	bool prev_crlf; /* the last line ended in CRLF (or DATA just began) */
	bool midline;   /* dropping the tail of an over-long line */
	bool bad_bare, bad_long, too_big, hdr_too_big, bad_nul;
	const char *sender;     /* the envelope sender (borrowed), for missing_from */
	struct hdrfrom hf;      /* From, Sender, Resent-*: read as the header goes by */
	struct audit_msg audit; /* borrowed by the spool writer until data_stored */
};

static void
append(struct smtpd_data *d, const char *p, size_t n)
{
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 65536;
		while (cap < d->len + n)
			cap *= 2;
		d->buf = xrealloc(d->buf, cap);
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
}

static void appendf(struct smtpd_data *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
appendf(struct smtpd_data *d, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		append(d, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void
smtpd_data_free(struct session *s)
{
	if (s->data) {
		free(s->data->buf);
		free(s->data);
		s->data = NULL;
	}
}

/* Received: header, RFC 5321 4.4 with RFC 3848 protocol names. */
static void
add_received(struct session *s, struct smtpd_data *d)
{
	char date[64];
	const char *proto =
	    s->auth_user ? (s->tls ? "ESMTPSA" : "ESMTPA") : (s->tls ? "ESMTPS" : "ESMTP");

	if (!s->esmtp)
		proto = "SMTP";
	util_rfc5322_date(date, sizeof(date), time(NULL));
	appendf(d, "Received: from %s ([%s])\r\n\tby %s (mxrelay) with %s id %s", s->helo, s->ip,
	        s->srv->cfg->hostname, proto, s->qid);
	if (s->tls_done)
		appendf(d, "\r\n\t(using %s with cipher %s)", s->tls_version, s->tls_cipher);
	if (s->nrcpts == 1)
		appendf(d, "\r\n\tfor <%s>", s->rcpts[0]);
	appendf(d, ";\r\n\t%s\r\n", date);
}

/*
 * The header ends: copiers often omit Date and Message-ID, add them here.
 * Devices omit From too: with missing_from = envelope it is the envelope
 * sender, which the AUTH policy already checked at MAIL.
 */
static void
add_missing(struct smtpd_data *d)
{
	char date[64];

	hdrfrom_end(&d->hf);
	if (d->srv->cfg->missing_from == MISSING_FROM_ENVELOPE &&
	    hdrfrom_fill(&d->hf, d->sender) == 0)
		appendf(d, "From: <%s>\r\n", d->sender);
	if (!d->seen_date) {
		util_rfc5322_date(date, sizeof(date), time(NULL));
		appendf(d, "Date: %s\r\n", date);
	}
	if (!d->seen_msgid)
		appendf(d, "Message-ID: <%s@%s>\r\n", d->qid, d->srv->cfg->hostname);
	d->seen_date = d->seen_msgid = true;
}

void
smtpd_data_begin(struct session *s)
{
	struct smtpd_data *d = xcalloc(1, sizeof(*d));

	util_make_qid(s->qid);
	d->srv = s->srv;
	d->qid = s->qid;
	d->in_header = true;
	d->prev_crlf = true;
	d->sender = s->mail_from;
	s->data = d;
	add_received(s, d);
	s->state = SS_DATA;
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static bool
header_is(const char *line, size_t namelen, const char *name)
{
	return strlen(name) == namelen && util_strncaseeq(line, name, namelen);
}

/* One content line (dot-unstuffed, with its line end) while in the header. */
static void
header_line(struct smtpd_data *d, const char *p, size_t n)
{
	const char *colon;
	size_t i, namelen;

	d->hdr_bytes += n;
	if (d->hdr_bytes > d->srv->cfg->max_header_size)
		d->hdr_too_big = true;
	if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		add_missing(d);
		d->in_header = false;
		return;
	}
	if (p[0] == ' ' || p[0] == '\t') {
		hdrfrom_fold(&d->hf, p, n);
		return;
	}
	colon = memchr(p, ':', n);
	for (i = 0; colon && p + i < colon && p[i] > 32 && p[i] < 127; i++)
		;
	namelen = i;
	/* RFC 5322 4.5: obsolete syntax allows WSP before the colon ("From :") */
	for (; colon && p + i < colon; i++)
		if (p[i] != ' ' && p[i] != '\t')
			colon = NULL;
	if (colon == NULL || namelen == 0) {
		/*
		 * Not a header field: the body began without a blank line. Add
		 * one, or a lenient reader could take later lines ("From: ...")
		 * for header fields that were never checked.
		 */
		add_missing(d);
		append(d, "\r\n", 2);
		d->in_header = false;
		return;
	}
	i = (size_t)(colon - p);
	hdrfrom_field(&d->hf, p, namelen, colon + 1, n - i - 1);
	if (header_is(p, namelen, "Message-ID"))
		d->seen_msgid = true;
	if (header_is(p, namelen, "Date"))
		d->seen_date = true;
}

static void
finish_reply(struct session *s)
{
	smtpd_tx_reset(s);
	s->ntx++;
	s->state = SS_CMD;
	if (s->srv->draining) {
		smtpd_reply(s, "421 4.3.2 %s Service shutting down", s->srv->cfg->hostname);
		smtpd_close_after_reply(s);
	}
}

static void
data_stored(struct writer_job *job)
{
	struct session *s = job->arg;
	char qa[300];

	s->spooling = false;
	if (job->status == 0) {
		s->srv->accepted++;
		metrics_inc(M_ACCEPTED);
		log_info("s=%s qid=%s event=accepted ip=%s from=\"<%s>\" nrcpt=%zu size=%zu tls=%s "
		         "auth=%s",
		         s->id, s->qid, s->ip, LOG_Q(qa, s->mail_from), s->nrcpts, job->in.body_len,
		         s->tls_done ? s->tls_version : "none", s->auth_user ? s->auth_user : "-");
		if (!s->closed)
			smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		if (s->srv->sched)
			sched_add(s->srv->sched, job->in.id, time(NULL));
	} else {
		metrics_inc(M_REJ_SYSTEM);
		log_err("s=%s qid=%s event=spool_error ip=%s disk_full=%d error=\"%s\"", s->id,
		        s->qid, s->ip, job->disk_full, job->err);
		if (!s->closed) {
			if (job->disk_full)
				smtpd_reply(s, "452 4.3.1 Insufficient system storage");
			else
				smtpd_reply(s, "451 4.3.0 Local error in processing");
		}
	}
	if (!s->closed)
		finish_reply(s);
	else
		smtpd_tx_reset(s);
	smtpd_resume(s);
}

/* The refusal, if any, for the content alone (shared with local submission). */
static const char *
content_refusal(const struct smtpd_data *d)
{
	if (d->bad_bare)
		return "550 5.6.0 Message contains bare CR or LF (RFC 5321 2.3.8)";
	/* a next hop that drops NUL could see a "." line we never saw */
	if (d->bad_nul)
		return "550 5.6.0 Message contains a NUL byte (RFC 2045 2.8, RFC 6152)";
	if (d->too_big)
		return "552 5.3.4 Message size exceeds fixed limit";
	if (d->hdr_too_big)
		return "552 5.3.4 Message header size exceeds limit";
	if (d->bad_long)
		return "550 5.6.0 Message line longer than 998 characters (RFC 5322 2.1.1)";
	return NULL;
}

/* The refusal, if any, for a complete message. NULL: acceptable. */
static const char *
check_message(struct session *s, struct smtpd_data *d)
{
	const char *r = content_refusal(d);

	if (r)
		return r;
	/* an AUTH user's credential also covers Sender and Resent-* (hdrfrom.h) */
	if (s->auth_user)
		return hdrfrom_cred_refusal(&d->hf, smtpd_cred(s));
	return hdrfrom_refusal(&d->hf);
}

static void
refuse(struct session *s, const char *refusal)
{
	char qa[300];
	s->srv->rejected++;
	metrics_reject_reply(refusal);
	log_warn("s=%s qid=%s event=rejected ip=%s from=\"<%s>\" reason=\"%s\"", s->id, s->qid,
	         s->ip, LOG_Q(qa, s->mail_from), refusal + 10);
	smtpd_reply(s, "%s", refusal);
	finish_reply(s);
}

static void
spool_it(struct session *s)
{
	struct smtpd_data *d = s->data;
	struct writer_job *j = &s->job;
	memset(j, 0, sizeof(*j));
	j->kind = WRITER_INSERT;
	memcpy(j->in.qid, s->qid, sizeof(j->in.qid));
	j->in.sender = s->mail_from;
	j->in.rcpts = (const char *const *)s->rcpts;
	j->in.nrcpts = s->nrcpts;
	j->in.body = d->buf;
	j->in.body_len = d->len;
	j->in.received = time(NULL);
	j->in.client_ip = s->ip;
	j->in.helo = s->helo;
	j->in.auth_user = s->auth_user;
	j->in.flags = s->mail_flags;
	j->in.audit =
	    audit_fill(&d->audit, s, hdrfrom_mailbox(&d->hf), strlen(hdrfrom_mailbox(&d->hf)));
	j->done = data_stored;
	j->arg = s;
	s->spooling = true;
	s->state = SS_WAIT;
	writer_submit(s->srv->writer, j);
}

struct sign_job {
	struct session *s;
	struct dkimsign *dk; /* a reference: SIGHUP may replace srv->dkim meanwhile */
	char domain[256];
	const char *msg; /* the session's buffer: it waits in SS_WAIT */
	size_t len;
	char *headers;
	char err[256];
	int rc;
};

static void
sign_work(void *arg)
{
	struct sign_job *sj = arg;
	sj->rc = dkimsign_sign(sj->dk, sj->domain, sj->msg, sj->len, &sj->headers, sj->err,
	                       sizeof(sj->err));
}

static void
sign_done(void *arg)
{
	struct sign_job *sj = arg;
	struct session *s = sj->s;
	struct smtpd_data *d = s->data;

	dkimsign_unref(sj->dk);
	if (s->closed) {
		free(sj->headers);
		free(sj);
		smtpd_resume(s);
		return;
	}
	if (sj->rc != 0) {
		log_err("s=%s qid=%s event=dkim_failed domain=%s error=\"%s\"", s->id, s->qid,
		        sj->domain, sj->err);
		free(sj);
		/* a key that worked at start-up fails now: let the client retry later */
		refuse(s, "451 4.3.0 DKIM signing failed, try again later");
		smtpd_resume(s);
		return;
	}
	/* the signature goes on top: signing covers the header below it, not Received */
	size_t hl = strlen(sj->headers);
	char *buf = xmalloc(hl + d->len);
	memcpy(buf, sj->headers, hl);
	memcpy(buf + hl, d->buf, d->len);
	free(d->buf);
	d->buf = buf;
	d->len += hl;
	d->cap = d->len;
	log_debug("s=%s qid=%s event=dkim_signed domain=%s", s->id, s->qid, sj->domain);
	free(sj->headers);
	free(sj);
	spool_it(s);
}

/* The domain of the header From's mailbox (its only one: hdrfrom_refusal), or NULL. */
static const char *
from_domain(const struct smtpd_data *d)
{
	return addr_domain(hdrfrom_mailbox(&d->hf));
}

static void
finish(struct session *s)
{
	struct smtpd_data *d = s->data;
	const char *refusal, *dom;

	if (d->in_header)
		add_missing(d);
	refusal = check_message(s, d);
	if (refusal) {
		refuse(s, refusal);
		return;
	}
	/* From is exactly one mailbox here: its domain alone decides signing */
	dom = from_domain(d);
	if (dkimsign_has(s->srv->dkim, dom)) {
		struct sign_job *sj = xcalloc(1, sizeof(*sj));
		sj->s = s;
		sj->dk = dkimsign_ref(s->srv->dkim);
		snprintf(sj->domain, sizeof(sj->domain), "%s", dom);
		sj->msg = d->buf;
		sj->len = d->len;
		s->state = SS_WAIT;
		async_run(s->srv->async, sign_work, sign_done, sj);
		return;
	}
	if (s->srv->cfg->dkim_refuse_unsigned) {
		refuse(s,
		       "550 5.7.1 No DKIM key for the header From domain; mail would be unsigned");
		return;
	}

	if (s->srv->dkim)
		log_warn("s=%s qid=%s event=unsigned domain=%s reason=no_key", s->id, s->qid,
		         dom ? dom : "(no From)");
	spool_it(s);
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

/* Account for one line's octets; store it unless the message is already refused. */
static void
take_line(struct smtpd_data *d, const char *line, size_t n)
{
	/* the last octets of a local submission may come without LF: "x\r*" is no line end */
	bool crlf = n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n';
	const char *p = line;

	if (!crlf || memchr(line, '\r', crlf ? n - 2 : n - 1))
		d->bad_bare = true;
	d->prev_crlf = crlf;
	if (d->raw > d->srv->cfg->max_message_size)
		d->too_big = true;
	if (memchr(line, '\0', n))
		d->bad_nul = true;
	if (d->bad_bare || d->bad_long || d->too_big || d->hdr_too_big || d->bad_nul)
		return; /* refused anyway: don't grow memory */
	if (p[0] == '.') {
		p++; /* RFC 5321 4.5.2 transparency */
		n--;
	}
	if (d->in_header)
		header_line(d, p, n);
	append(d, p, n);
}

bool
smtpd_data_feed(struct session *s, struct evbuffer *in)
{
	struct smtpd_data *d = s->data;
	char line[DATA_LINE_MAX + 1];

	for (;;) {
		struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
		size_t avail = evbuffer_get_length(in), n;

		if (eol.pos < 0) {
			if (avail > DATA_LINE_MAX) {
				/* surely over-long: drop it now to keep memory bounded */
				d->bad_long = d->midline = true;
				d->raw += avail;
				evbuffer_drain(in, avail);
			}
			return true;
		}
		n = (size_t)eol.pos + 1;
		if (d->midline || n > DATA_LINE_MAX) {
			d->bad_long = true;
			d->prev_crlf = ends_crlf(in, n);
			d->midline = false;
			d->raw += n;
			evbuffer_drain(in, n);
			continue;
		}
		evbuffer_remove(in, line, n);
		d->raw += n;
		if (d->prev_crlf && n == 3 && line[0] == '.' && line[1] == '\r') {
			finish(s);
			return false;
		}
		take_line(d, line, n);
	}
}

/*
 * Local submission (submit.c, see content.h): the same content rules as
 * DATA, for a message that arrives without an SMTP session.
 */
struct smtpd_data *
smtpd_content_new(struct server *srv, const char *qid, const char *sender, const char *received)
{
	struct smtpd_data *d = xcalloc(1, sizeof(*d));

	d->srv = srv;
	d->qid = qid;
	d->sender = sender;
	d->in_header = true;
	d->prev_crlf = true;
	append(d, received, strlen(received));
	return d;
}

void
smtpd_content_line(struct smtpd_data *d, const char *line, size_t n)
{
	d->raw += n;
	if (n > DATA_LINE_MAX || line == NULL)
		d->bad_long = true;
	else
		take_line(d, line, n);
}

const char *
smtpd_content_end(struct smtpd_data *d, char *from_dom, size_t from_domlen)
{
	const char *dom, *r;

	if (d->in_header)
		add_missing(d);
	dom = from_domain(d);
	snprintf(from_dom, from_domlen, "%s", dom ? dom : "");
	/* the same header From rules as SMTP intake; no credential applies here */
	r = content_refusal(d);
	return r ? r : hdrfrom_refusal(&d->hf);
}

unsigned
smtpd_content_from_headers(const struct smtpd_data *d)
{
	return d->hf.nfrom;
}

char *
smtpd_content_take(struct smtpd_data *d, size_t *len)
{
	char *buf = d->buf;

	*len = d->len;
	d->buf = NULL;
	d->len = d->cap = 0;
	return buf;
}

void
smtpd_content_free(struct smtpd_data *d)
{
	if (d == NULL)
		return;
	free(d->buf);
	free(d);
}
