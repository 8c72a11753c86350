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
 * The daemon adds a Received header naming the submitter's uid
 * (SO_PEERCRED: the kernel's word, not the client's) and hands the message
 * to intake (intake/intake.h), the same path as SMTP DATA: the same content
 * and sender rules, signing, logs and counters. Its result becomes
 * {"queued": "QID"} (only after the spool commit) or
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

#include "mta/control/jsonw.h"
#include "mta/intake/content.h"
#include "mta/intake/intake.h"
#include "mta/metrics.h"
#include "mta/reply.h"
#include "mta/server.h"
#include "mta/shared/addr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "spool/spool.h"

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
	struct content *d;
	char who[48], who_accepted[80]; /* log keys, borrowed by intake */
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
	content_free(sub->d);
	free(sub);
}

/* {"error": text, "code": "5xx x.y.z"} for reply id (args: the template's strings). */
static void
error_id(struct ctl_conn *c, enum reply_id id, const char *a0, const char *a1, char *text,
         size_t textlen)
{
	char code[16];

	snprintf(code, sizeof(code), "%u %s", reply_code(id), reply_status(id));
	reply_format_text(text, textlen, id, a0, a1);
	ctl_error(c, code, "%s", text);
}

/* An envelope refusal, logged as SMTP intake logs its refusals. */
static void
refuse(struct submit *sub, enum reply_id id, const char *a0, const char *a1)
{
	char text[600], q[300];

	sub->state = SUB_DONE;
	reply_format_text(text, sizeof(text), id, a0, a1);
	log_warn("%s qid=%s event=rejected ip=local uid=%u from=\"<%s>\" code=%u dsn=%s "
	         "reason=\"%s\"",
	         sub->c->id, sub->qid, (unsigned)sub->c->uid, LOG_Q(q, sub->from ? sub->from : ""),
	         reply_code(id), reply_status(id), text);
	error_id(sub->c, id, a0, a1, text, sizeof(text));
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
		char text[100];
		error_id(c, R_SUBMIT_SHUTTING_DOWN, NULL, NULL, text, sizeof(text));
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
	char addr[ADDR_MAX], shown[257];
	unsigned flags = ADDR_F_UTF8 | (rcpt ? ADDR_F_STRICT : ADDR_F_NULL_OK);
	enum addr_status st;
	const char *params = NULL;

	st = addr_parse_path(*arg ? arg : "<>", flags, addr, sizeof(addr), &params);
	if (st == ADDR_OK && *params)
		st = ADDR_SYNTAX;
	if (st == ADDR_OK && rcpt && addr[0] == '\0')
		st = ADDR_SYNTAX;
	if (st != ADDR_OK) {
		snprintf(shown, sizeof(shown), "%s", arg); /* at most 256 octets of it */
		refuse(sub, rcpt ? R_SUBMIT_BAD_RCPT : R_SUBMIT_BAD_SENDER, shown,
		       addr_strerror(st));
		return NULL;
	}
	if (rcpt && !config_literal_routed(sub->c->srv->cfg, addr)) {
		refuse(sub, R_LITERAL_NO_ROUTE, addr, NULL);
		return NULL;
	}
	/* dkim_unsigned = refuse: as SMTP does at MAIL FROM (smtpd/cmd.c) */
	if (!rcpt && intake_sender_refusal(sub->c->srv, addr) != R_NONE) {
		metrics_inc(M_REJ_SENDER);
		refuse(sub, R_SENDER_NO_DKIM_KEY, addr, NULL);
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
		refuse(sub, R_SUBMIT_NO_ENVELOPE, NULL, NULL);
		return;
	}
	if (*arg < '0' || *arg > '9' || *end) {
		refuse(sub, R_SUBMIT_DATA_SIZE, NULL, NULL);
		return;
	}
	if (n > cfg->max_message_size + SUBMIT_SLACK) {
		refuse(sub, R_MSG_TOO_BIG, NULL, NULL);
		return;
	}
	make_received(sub, received, sizeof(received));
	sub->d = content_new(sub->c->srv, sub->qid, sub->from, received);
	sub->left = n;
	sub->state = SUB_BODY;
}

static void
envelope_line(struct submit *sub, char *line)
{
	char *arg = line + strcspn(line, " ");
	char n[24], lq[300];
	size_t i;

	if (*arg)
		*arg++ = '\0';
	if (strcmp(line, "FROM") == 0) {
		if (sub->from) {
			refuse(sub, R_SUBMIT_FROM_TWICE, NULL, NULL);
			return;
		}
		sub->from = parse_addr(sub, arg, false);
	} else if (strcmp(line, "TO") == 0) {
		char *a = parse_addr(sub, arg, true);
		if (a == NULL)
			return;
		if (sub->nrcpts >= sub->c->srv->cfg->max_recipients) {
			free(a);
			snprintf(n, sizeof(n), "%u", sub->c->srv->cfg->max_recipients);
			refuse(sub, R_SUBMIT_TOO_MANY_RCPTS, n, NULL);
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
		refuse(sub, R_SUBMIT_UNKNOWN_LINE, LOG_Q(lq, line), NULL);
	}
}

/*
 * Feed body lines to the content rules as they arrive; memory stays bounded
 * by the rules (a refused message stops growing). true once all octets came.
 */
static bool
body_feed(struct submit *sub, struct evbuffer *in)
{
	char line[CONTENT_LINE_MAX + 1];

	while (sub->left > 0) {
		size_t avail = evbuffer_get_length(in), lim, n;
		struct evbuffer_ptr eol;

		if (avail == 0)
			return false;
		lim = avail < sub->left ? avail : (size_t)sub->left;
		eol = evbuffer_search(in, "\n", 1, NULL);
		if (eol.pos >= 0 && (size_t)eol.pos < lim) {
			n = (size_t)eol.pos + 1;
		} else if (lim == sub->left || lim > CONTENT_LINE_MAX) {
			n = lim; /* the last octets (no LF: refused as bare) or too long */
		} else {
			return false;
		}
		if (sub->midline || n > CONTENT_LINE_MAX) {
			/* over-long: counted and refused, never stored */
			content_line(sub->d, NULL, n);
			evbuffer_drain(in, n);
			sub->midline = !(eol.pos >= 0 && (size_t)eol.pos < lim);
		} else {
			evbuffer_remove(in, line, n);
			content_line(sub->d, line, n);
		}
		sub->left -= n;
	}
	return true;
}

/* intake's one answer (see intake.h), as the submit socket says it. */
static void
submitted(void *arg, const struct intake_result *res)
{
	struct submit *sub = arg;
	struct evbuffer *b;
	struct jw w;

	if (res->id == R_NONE) {
		/* nobody waits for an answer: like an SMTP client gone before the 250 */
		ctl_error(sub->c, NULL, "gone");
		return;
	}
	if (res->id != R_QUEUED) {
		ctl_error(sub->c, res->code, "%s", res->text);
		return;
	}
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "queued", sub->qid);
	jw_end(&w);
	ctl_reply(sub->c, b);
	evbuffer_free(b);
}

static void
finish(struct submit *sub)
{
	struct ctl_conn *c = sub->c;
	struct intake_env env = {0};
	struct content *ct = sub->d;

	sub->d = NULL; /* intake's now */
	sub->state = SUB_DONE;
	snprintf(sub->who, sizeof(sub->who), "ip=local uid=%u", (unsigned)c->uid);
	snprintf(sub->who_accepted, sizeof(sub->who_accepted), "ip=local uid=%u pid=%ld",
	         (unsigned)c->uid, (long)c->pid);
	env.log_id = c->id;
	env.qid = sub->qid;
	env.sender = sub->from;
	env.rcpts = (const char *const *)sub->rcpts;
	env.nrcpts = sub->nrcpts;
	env.flags = sub->flags;
	env.client_ip = sub->client;
	env.log_who = sub->who;
	env.log_who_accepted = sub->who_accepted;
	env.gone = &c->closed;
	c->waiting = true;
	intake_submit(c->srv, &env, ct, submitted, sub);
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
			refuse(sub, R_SUBMIT_LINE_TOO_LONG, NULL, NULL);
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
