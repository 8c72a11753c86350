/*
 * submit: local submission through the submit socket (mxrelay-sendmail).
 *
 * After the request line "SUBMIT" the client sends its envelope, one line
 * each, then the message:
 *
 *   FROM <sender>        once; empty for the null sender
 *   TO <recipient>       1 to max_recipients times
 *   DATA <octets>        then exactly that many octets: the message with
 *                        CRLF line ends, dot-stuffed as in SMTP DATA
 *                        (RFC 5321 4.5.2), no terminating "."
 *
 * The daemon judges the content with the DATA rules (content.h: limits,
 * bare CR/LF, Date and Message-ID added when missing), adds a Received
 * header naming the submitter's uid (SO_PEERCRED: the kernel's word, not
 * the client's), signs with DKIM as SMTP intake does, and answers
 * {"queued": "QID"} only after the spool commit; failures are
 * {"error": text, "code": "5xx x.y.z"} so the client can pick sendmail's
 * exit status. Addresses must be fully qualified: the client qualifies
 * bare names with the daemon's hostname (INFO).
 */
#include "mta/control/control_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/async.h"
#include "mta/shared/config.h"
#include "mta/intake/content.h"
#include "mta/shared/addr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/delivery/sched.h"
#include "mta/intake/dkimsign.h"
#include "mta/control/jsonw.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define DATA_LINE_MAX 1000       /* as smtpd/data.c: RFC 5321 4.5.3.1.6 */
#define SUBMIT_SLACK (64 * 1024) /* dot-stuffing may add this much over the size limit */

enum sub_state { SUB_ENVELOPE, SUB_BODY, SUB_DONE };

struct submit {
	struct ctl_conn *c;
	enum sub_state state;
	char qid[SPOOL_QID_LEN + 1];
	char client[64]; /* "local (uid N)": the spool's client_ip column */
	char *from;      /* NULL until FROM */
	char **rcpts;
	size_t nrcpts;
	unsigned flags; /* SPOOL_F_SMTPUTF8 for non-ASCII addresses */
	uint64_t left;  /* body octets still to come */
	bool midline;   /* dropping the rest of an over-long line */
	struct smtpd_data *d;
	char *body;
	size_t body_len;
	struct writer_job wj;
};

struct sub_sign {
	struct submit *sub;
	struct dkimsign *dk; /* a reference: SIGHUP may replace srv->dkim meanwhile */
	char domain[256];
	char *headers;
	char err[256];
	int rc;
};

void
submit_free(struct submit *sub)
{
	size_t i;

	if (sub == NULL)
		return;
	for (i = 0; i < sub->nrcpts; i++)
		free(sub->rcpts[i]);
	free(sub->rcpts);
	free(sub->from);
	smtpd_content_free(sub->d);
	free(sub->body);
	free(sub);
}

/* "550 5.6.0 text": error text with the reply code apart. */
static void
refuse(struct submit *sub, const char *reply)
{
	char code[16], q[300];
	const char *sp = strchr(reply, ' ');
	const char *text = sp ? strchr(sp + 1, ' ') : NULL;

	sub->state = SUB_DONE;
	if (text == NULL || text - reply >= (long)sizeof(code)) {
		ctl_error(sub->c, NULL, "%s", reply);
		return;
	}
	snprintf(code, sizeof(code), "%.*s", (int)(text - reply), reply);
	log_warn("%s qid=%s event=rejected ip=local uid=%u from=\"<%s>\" reason=\"%s\"", sub->c->id,
	         sub->qid, (unsigned)sub->c->uid, LOG_Q(q, sub->from ? sub->from : ""), text + 1);
	ctl_error(sub->c, code, "%s", text + 1);
}

void
submit_start(struct ctl_conn *c, char *arg)
{
	struct submit *sub;

	if (*arg) {
		ctl_error(c, NULL, "SUBMIT takes no argument");
		return;
	}
	if (c->srv->draining) {
		ctl_error(c, "421 4.3.2", "mxrelayd is shutting down; try again later");
		return;
	}
	sub = xcalloc(1, sizeof(*sub));
	sub->c = c;
	util_make_qid(sub->qid);
	snprintf(sub->client, sizeof(sub->client), "local (uid %u)", (unsigned)c->uid);
	c->sub = sub;
}

static bool
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s & 0x80)
			return true;
	return false;
}

/* Parse an envelope address; "" is the null sender (FROM only). NULL: refused. */
static char *
parse_addr(struct submit *sub, const char *arg, bool rcpt)
{
	char addr[ADDR_MAX], reply[400];
	unsigned flags = ADDR_F_UTF8 | (rcpt ? ADDR_F_STRICT : ADDR_F_NULL_OK);
	enum addr_status st;
	const char *params = NULL;

	st = addr_parse_path(*arg ? arg : "<>", flags, addr, sizeof(addr), &params);
	if (st == ADDR_OK && *params)
		st = ADDR_SYNTAX;
	if (st == ADDR_OK && rcpt && addr[0] == '\0')
		st = ADDR_SYNTAX;
	if (st != ADDR_OK) {
		snprintf(reply, sizeof(reply), "553 %s Bad %s address <%.256s>: %s",
		         rcpt ? "5.1.3" : "5.1.7", rcpt ? "recipient" : "sender", arg,
		         addr_strerror(st));
		refuse(sub, reply);
		return NULL;
	}
	if (rcpt && !config_literal_routed(sub->c->srv->cfg, addr)) {
		snprintf(reply, sizeof(reply),
		         "550 5.1.2 <%s>: Address literals are not relayed (no route for them)",
		         addr);
		refuse(sub, reply);
		return NULL;
	}
	if (has_8bit(addr))
		sub->flags |= SPOOL_F_SMTPUTF8;
	return xstrdup(addr);
}

/* Received: header for local mail (RFC 5321 4.4). */
static void
make_received(struct submit *sub, char *out, size_t outlen)
{
	char date[64], rcpt[ADDR_MAX + 16] = "";

	util_rfc5322_date(date, sizeof(date), time(NULL));
	if (sub->nrcpts == 1 && !has_8bit(sub->rcpts[0]))
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", sub->rcpts[0]);
	snprintf(
	    out, outlen,
	    "Received: from local (uid %u)\r\n\tby %s (mxrelay) with local id %s%s;\r\n\t%s\r\n",
	    (unsigned)sub->c->uid, sub->c->srv->cfg->hostname, sub->qid, rcpt, date);
}

static void
begin_data(struct submit *sub, const char *arg)
{
	const struct config *cfg = sub->c->srv->cfg;
	char received[1024], *end;
	unsigned long long n = strtoull(arg, &end, 10);

	if (sub->from == NULL || sub->nrcpts == 0) {
		refuse(sub, "503 5.5.1 FROM and at least one TO come before DATA");
		return;
	}
	if (*arg < '0' || *arg > '9' || *end) {
		refuse(sub, "501 5.5.4 DATA needs the size in octets");
		return;
	}
	if (n > cfg->max_message_size + SUBMIT_SLACK) {
		refuse(sub, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	make_received(sub, received, sizeof(received));
	sub->d = smtpd_content_new(sub->c->srv, sub->qid, sub->from, received);
	sub->left = n;
	sub->state = SUB_BODY;
}

static void
envelope_line(struct submit *sub, char *line)
{
	char *arg = line + strcspn(line, " ");
	char q[400], lq[300];
	size_t i;

	if (*arg)
		*arg++ = '\0';
	if (strcmp(line, "FROM") == 0) {
		if (sub->from) {
			refuse(sub, "503 5.5.1 FROM given twice");
			return;
		}
		sub->from = parse_addr(sub, arg, false);
	} else if (strcmp(line, "TO") == 0) {
		char *a = parse_addr(sub, arg, true);
		if (a == NULL)
			return;
		if (sub->nrcpts >= sub->c->srv->cfg->max_recipients) {
			free(a);
			snprintf(q, sizeof(q), "552 5.5.3 Too many recipients (at most %u)",
			         sub->c->srv->cfg->max_recipients);
			refuse(sub, q);
			return;
		}
		for (i = 0; i < sub->nrcpts && strcmp(sub->rcpts[i], a) != 0; i++)
			;
		if (i < sub->nrcpts) {
			free(a); /* the same recipient twice gets one copy */
			return;
		}
		sub->rcpts = xrealloc(sub->rcpts, (sub->nrcpts + 1) * sizeof(char *));
		sub->rcpts[sub->nrcpts++] = a;
	} else if (strcmp(line, "DATA") == 0) {
		begin_data(sub, arg);
	} else {
		snprintf(q, sizeof(q), "500 5.5.2 Unknown envelope line \"%s\"", LOG_Q(lq, line));
		refuse(sub, q);
	}
}

/*
 * Feed body lines to the content rules as they arrive; memory stays bounded
 * by the rules (a refused message stops growing). true once all octets came.
 */
static bool
body_feed(struct submit *sub, struct evbuffer *in)
{
	char line[DATA_LINE_MAX + 1];

	while (sub->left > 0) {
		size_t avail = evbuffer_get_length(in), lim, n;
		struct evbuffer_ptr eol;

		if (avail == 0)
			return false;
		lim = avail < sub->left ? avail : (size_t)sub->left;
		eol = evbuffer_search(in, "\n", 1, NULL);
		if (eol.pos >= 0 && (size_t)eol.pos < lim) {
			n = (size_t)eol.pos + 1;
		} else if (lim == sub->left || lim > DATA_LINE_MAX) {
			n = lim; /* the last octets (no LF: refused as bare) or too long */
		} else {
			return false;
		}
		if (sub->midline || n > DATA_LINE_MAX) {
			/* over-long: counted and refused, never stored */
			smtpd_content_line(sub->d, NULL, n);
			evbuffer_drain(in, n);
			sub->midline = !(eol.pos >= 0 && (size_t)eol.pos < lim);
		} else {
			evbuffer_remove(in, line, n);
			smtpd_content_line(sub->d, line, n);
		}
		sub->left -= n;
	}
	return true;
}

static void
stored(struct writer_job *wj)
{
	struct submit *sub = wj->arg;
	struct ctl_conn *c = sub->c;
	struct evbuffer *b;
	struct jw w;
	char qa[300];

	if (wj->status != 0) {
		metrics_inc(M_REJ_SYSTEM);
		log_err("%s qid=%s event=spool_error ip=local uid=%u disk_full=%d error=\"%s\"",
		        c->id, sub->qid, (unsigned)c->uid, wj->disk_full, wj->err);
		if (wj->disk_full)
			ctl_error(c, "452 4.3.1", "Insufficient system storage");
		else
			ctl_error(c, "451 4.3.0", "Local error in processing");
		return;
	}
	c->srv->accepted++;
	metrics_inc(M_ACCEPTED);
	log_info(
	    "%s qid=%s event=accepted ip=local uid=%u pid=%ld from=\"<%s>\" nrcpt=%zu size=%zu",
	    c->id, sub->qid, (unsigned)c->uid, (long)c->pid, LOG_Q(qa, sub->from), sub->nrcpts,
	    sub->body_len);
	/* queued whether or not the client is still there to hear it */
	if (c->srv->sched)
		sched_add(c->srv->sched, wj->in.id, time(NULL));
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "queued", sub->qid);
	jw_end(&w);
	ctl_reply(c, b);
	evbuffer_free(b);
}

static void
spool_it(struct submit *sub)
{
	struct writer_job *j = &sub->wj;

	memset(j, 0, sizeof(*j));
	j->kind = WRITER_INSERT;
	memcpy(j->in.qid, sub->qid, sizeof(j->in.qid));
	j->in.sender = sub->from;
	j->in.rcpts = (const char *const *)sub->rcpts;
	j->in.nrcpts = sub->nrcpts;
	j->in.body = sub->body;
	j->in.body_len = sub->body_len;
	j->in.received = time(NULL);
	j->in.client_ip = sub->client;
	j->in.flags = sub->flags;
	j->done = stored;
	j->arg = sub;
	sub->c->waiting = true;
	writer_submit(sub->c->srv->writer, j);
}

static void
sign_work(void *arg)
{
	struct sub_sign *sj = arg;
	sj->rc = dkimsign_sign(sj->dk, sj->domain, sj->sub->body, sj->sub->body_len, &sj->headers,
	                       sj->err, sizeof(sj->err));
}

static void
sign_done(void *arg)
{
	struct sub_sign *sj = arg;
	struct submit *sub = sj->sub;

	dkimsign_unref(sj->dk);
	if (sub->c->closed) {
		/* nobody waits for an answer: like an SMTP client gone before the 250 */
		free(sj->headers);
		free(sj);
		ctl_error(sub->c, NULL, "gone");
		return;
	}
	if (sj->rc != 0) {
		log_err("%s qid=%s event=dkim_failed domain=%s error=\"%s\"", sub->c->id, sub->qid,
		        sj->domain, sj->err);
		free(sj);
		sub->c->waiting = false;
		refuse(sub, "451 4.3.0 DKIM signing failed, try again later");
		return;
	}
	/* on top: the signature covers the header below it */
	size_t hl = strlen(sj->headers);
	char *buf = xmalloc(hl + sub->body_len + 1);
	memcpy(buf, sj->headers, hl);
	memcpy(buf + hl, sub->body, sub->body_len);
	free(sub->body);
	sub->body = buf;
	sub->body_len += hl;
	free(sj->headers);
	free(sj);
	spool_it(sub);
}

static void
finish(struct submit *sub)
{
	struct server *srv = sub->c->srv;
	char dom[256];
	const char *refusal = smtpd_content_end(sub->d, dom, sizeof(dom));

	sub->state = SUB_DONE;
	if (refusal) {
		srv->rejected++;
		metrics_reject_reply(refusal); /* size, content or policy (header From) */
		refuse(sub, refusal);
		return;
	}
	sub->body = smtpd_content_take(sub->d, &sub->body_len);
	if (dom[0] && dkimsign_has(srv->dkim, dom)) {
		struct sub_sign *sj = xcalloc(1, sizeof(*sj));
		sj->sub = sub;
		sj->dk = dkimsign_ref(srv->dkim);
		snprintf(sj->domain, sizeof(sj->domain), "%s", dom);
		sub->c->waiting = true;
		async_run(srv->async, sign_work, sign_done, sj);
		return;
	}
	if (srv->cfg->dkim_refuse_unsigned) {
		refuse(sub,
		       "550 5.7.1 No DKIM key for the header From domain; mail would be unsigned");
		return;
	}
	spool_it(sub);
}

void
submit_feed(struct ctl_conn *c, struct evbuffer *in)
{
	struct submit *sub = c->sub;
	char line[CTL_LINE_MAX + 1];

	while (sub->state == SUB_ENVELOPE && !c->replied) {
		struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
		if (eol.pos < 0 ? evbuffer_get_length(in) >= CTL_LINE_MAX
		                : eol.pos >= CTL_LINE_MAX) {
			refuse(sub, "500 5.5.2 Envelope line too long");
			return;
		}
		if (eol.pos < 0)
			return;
		evbuffer_remove(in, line, (size_t)eol.pos + 1);
		line[eol.pos] = '\0';
		envelope_line(sub, line);
	}
	if (sub->state == SUB_BODY && !c->replied && body_feed(sub, in))
		finish(sub);
}
