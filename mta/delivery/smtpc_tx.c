/*
 * smtpc_tx: the mail transaction of an outbound connection (see smtpc.h):
 * what MAIL, RCPT, DATA (one write with PIPELINING, RFC 2920, else one at a
 * time) and the final dot answered, per recipient, and which state each
 * reply leads to. smtpc.c enters that state (and sends its command); this
 * file only decides and records, and writes the body's bytes when asked.
 *
 * Only a 354 to DATA leads to the body, and only the reply read after our
 * final dot went out is the message's outcome (RFC 5321 4.3.2); every other
 * reply where it does not belong is a protocol error.
 * Never: sends a command or changes c->state (smtpc.c's enter does).
 */
#include "mta/delivery/smtpc_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"

void
smtpc__local_reply(struct smtpc_reply *r, enum reply_id id, const char *a, const char *b,
                   const char *c)
{
	r->code = (int)reply_code(id);
	reply_format(r->text, sizeof(r->text), id, a, b, c);
}

void
smtpc_tx_begin(struct smtpc *c, const struct smtpc_msg *m)
{
	size_t n = m->nrcpts;

	c->m = *m;
	free(c->rr);
	free(c->rcpt_ok);
	c->rr = xcalloc(n, sizeof(*c->rr));
	c->rcpt_ok = xcalloc(n, sizeof(*c->rcpt_ok));
	c->mail_ok = c->any_ok = c->dot_ok = false;
	c->rcpt = 0;
	c->pipelined = (c->caps.flags & SMTPC_CAP_PIPELINING) != 0;
}

void
smtpc_tx_mail_params(const struct smtpc *c, char *buf, size_t len)
{
	const struct smtpc_msg *m = &c->m;

	buf[0] = '\0';
	if (c->caps.flags & SMTPC_CAP_SIZE) /* RFC 1870 */
		snprintf(buf, len, " SIZE=%zu", m->body_len);
	if (m->need_8bit && (c->caps.flags & SMTPC_CAP_8BITMIME)) /* RFC 6152 */
		snprintf(buf + strlen(buf), len - strlen(buf), " BODY=8BITMIME");
	if (m->need_utf8) /* RFC 6531 */
		snprintf(buf + strlen(buf), len - strlen(buf), " SMTPUTF8");
}

/* Queue the body, dot-stuffed (RFC 5321 4.5.2), then the final dot. */
void
smtpc_tx_body(const struct smtpc *c, struct evbuffer *out)
{
	const char *p = c->m.body, *end = p + c->m.body_len;

	if (!c->any_ok) {
		/* RFC 2920 3.1: 354 with no valid recipient: end it with a lone dot */
		evbuffer_add(out, ".\r\n", 3);
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl + 1 : end;
		if (*p == '.')
			evbuffer_add(out, ".", 1);
		/* the body outlives the write: add by reference, no copy */
		evbuffer_add_reference(out, p, (size_t)(stop - p), NULL, NULL);
		p = stop;
	}
	if (c->m.body_len > 0 && end[-1] != '\n')
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
}

/* A 421 inside a transaction (RFC 5321 3.8): the server is closing. */
static enum cstate
closing(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rr[i].code == 0 || c->rcpt_ok[i])
			c->rr[i] = *r;
	return C_DEAD;
}

/* A protocol error: its reason in proto, and the connection ends. */
static enum cstate
proto_error(char *proto, size_t len, const char *what, int code)
{
	if (code)
		snprintf(proto, len, "%d %s", code, what);
	else
		snprintf(proto, len, "%s", what);
	return C_DEAD;
}

static enum cstate
mail_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, char *proto, size_t len)
{
	int cls = r->code / 100;

	if (r->code != 250 && cls != 4 && cls != 5) /* RFC 5321 4.3.2 */
		return proto_error(proto, len, "reply to MAIL", r->code);
	c->mail_ok = r->code == 250;
	if (!c->mail_ok)
		for (size_t i = 0; i < c->m.nrcpts; i++)
			c->rr[i] = *r;
	if (c->pipelined) /* the first RCPT's reply comes next in the group */
		return C_RCPT;
	if (extra)
		return proto_error(proto, len, "data after the reply to MAIL", 0);
	return c->mail_ok ? C_RCPT : C_READY;
}

static enum cstate
rcpt_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, char *proto, size_t len)
{
	size_t i = c->rcpt;
	int cls = r->code / 100;
	bool ok = r->code == 250 || r->code == 251;
	bool last = i + 1 >= c->m.nrcpts;

	if (!ok && cls != 4 && cls != 5) /* RFC 5321 4.3.2 */
		return proto_error(proto, len, "reply to RCPT", r->code);
	if (c->mail_ok) {
		c->rr[i] = *r;
		c->rcpt_ok[i] = ok;
		c->any_ok |= ok;
	}
	if (c->pipelined)
		return last ? C_DATA : C_RCPT;
	if (extra)
		return proto_error(proto, len, "data after the reply to RCPT", 0);
	if (last && !c->any_ok)
		return C_RSET; /* no recipient: DATA would only be refused */
	return last ? C_DATA : C_RCPT;
}

/* Only a 354 leads to the body (RFC 5321 4.3.2); nothing may follow it. */
static enum cstate
data_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, char *proto, size_t len)
{
	int cls = r->code / 100;

	if (r->code != 354 && cls != 4 && cls != 5)
		return proto_error(proto, len, "reply to DATA (354 expected)", r->code);
	if (extra)
		return proto_error(proto, len, "data after the reply to DATA", 0);
	if (r->code == 354)
		return C_DOT;
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	/* DATA refused after an accepted MAIL: the server still holds the
	 * transaction, and the next MAIL would read 503 "nested MAIL" */
	return c->mail_ok ? C_RSET : C_READY;
}

/* Only the reply read after the final dot went out is the message's outcome. */
static enum cstate
dot_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, size_t unsent, char *proto,
         size_t len)
{
	int cls = r->code / 100;

	if (unsent > 0) /* the server cannot have read our final dot yet */
		return proto_error(proto, len, "reply before the end of the message data", 0);
	if (r->code != 250 && cls != 4 && cls != 5)
		return proto_error(proto, len, "reply to the end of data (250 expected)", r->code);
	c->dot_ok = r->code == 250;
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	/* bytes after the final reply: the outcome stands, the connection does not */
	return !extra && r->code != 421 ? C_READY : C_DEAD;
}

enum cstate
smtpc_tx_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, size_t unsent, char *proto,
              size_t protolen)
{
	if (c->state == C_DOT)
		return dot_next(c, r, extra, unsent, proto, protolen);
	if (r->code == 421)
		return closing(c, r);
	if (c->state == C_MAIL)
		return mail_next(c, r, extra, proto, protolen);
	if (c->state == C_RCPT)
		return rcpt_next(c, r, extra, proto, protolen);
	return data_next(c, r, extra, proto, protolen);
}

void
smtpc_tx_broken(struct smtpc *c, const char *why)
{
	/* after one reply out of place none of its replies can be trusted */
	for (size_t i = 0; i < c->m.nrcpts; i++)
		smtpc__local_reply(&c->rr[i], R_DLV_PROTOCOL, why, NULL, NULL);
}

void
smtpc_tx_lost(struct smtpc *c, const char *how)
{
	bool data = c->state == C_DOT;

	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (data ? c->rcpt_ok[i] : (c->rr[i].code == 0 || c->rcpt_ok[i]))
			smtpc__local_reply(&c->rr[i], R_DLV_LOST, how, c->peer,
			                   data ? "data" : "transaction");
}

void
smtpc_tx_settle(struct smtpc *c)
{
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rr[i].code / 100 == 2 && !c->dot_ok) /* never: see smtpc.h */
			smtpc__local_reply(&c->rr[i], R_DLV_NO_DOT_250, c->peer, NULL, NULL);
}

/* What the server lacks for this message, as a permanent local reply. 0: nothing. */
int
smtpc_check(const struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *why)
{
	char size[24], limit[24];

	if (m->need_utf8 && !(c->caps.flags & SMTPC_CAP_SMTPUTF8)) {
		smtpc__local_reply(why, R_DLV_NO_SMTPUTF8, c->peer, NULL, NULL);
		return -1;
	}
	if (m->need_8bit && !(c->caps.flags & SMTPC_CAP_8BITMIME)) {
		smtpc__local_reply(why, R_DLV_NO_8BITMIME, c->peer, NULL, NULL);
		return -1;
	}
	if ((c->caps.flags & SMTPC_CAP_SIZE) && c->caps.size_max > 0 &&
	    m->body_len > c->caps.size_max) {
		snprintf(size, sizeof(size), "%zu", m->body_len);
		snprintf(limit, sizeof(limit), "%llu", c->caps.size_max);
		smtpc__local_reply(why, R_DLV_TOO_BIG, size, c->peer, limit);
		return -1;
	}
	return 0;
}
