/*
 * smtpc_tx: the mail transaction of an outbound connection (see smtpc.h):
 * MAIL, RCPT, DATA (one write with PIPELINING, RFC 2920, else one at a
 * time), the dot-stuffed body and the reply to its final dot.
 *
 * Only a 354 to DATA leads to the body, and only the reply read after our
 * final dot went out is the message's outcome (RFC 5321 4.3.2); every other
 * reply where it does not belong is a protocol error (smtpc__proto_error).
 */
#include "mta/delivery/smtpc_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"

static void
send_next_rcpt_or_data(struct smtpc *c)
{
	/* without PIPELINING: one command at a time, expect is the next to send */
	if (c->expect <= c->m.nrcpts)
		smtpc__sendf(c, "RCPT TO:<%s>", c->m.rcpts[c->expect - 1]);
	else
		smtpc__sendf(c, "DATA");
	smtpc__await(c, c->conf.t_cmd);
}

/* Queue the body, dot-stuffed (RFC 5321 4.5.2), then the final dot. */
static void
send_body(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *p = c->m.body, *end = p + c->m.body_len;

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
	c->outstanding++;
	c->state = C_DOT;
	smtpc__await(c, c->conf.t_dot);
}

/* A 421 inside a transaction (RFC 5321 3.8): the server is closing. */
static void
closing(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rr[i].code == 0 || c->rcpt_ok[i])
			c->rr[i] = *r;
	smtpc__finish(c, false);
}

static void
mail_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	int cls = r->code / 100;

	if (r->code != 250 && cls != 4 && cls != 5) {	/* RFC 5321 4.3.2 */
		smtpc__proto_error(c, r, "%d reply to MAIL", r->code);
		return;
	}
	c->mail_ok = r->code == 250;
	if (!c->mail_ok)
		for (size_t i = 0; i < c->m.nrcpts; i++)
			c->rr[i] = *r;
	c->expect = 1;
	if (c->pipelined)
		return;
	if (extra)
		smtpc__proto_error(c, r, "data after the reply to MAIL");
	else if (!c->mail_ok)
		smtpc__finish(c, true);
	else
		send_next_rcpt_or_data(c);
}

static void
rcpt_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	size_t i = c->expect - 1;
	int cls = r->code / 100;
	bool ok = r->code == 250 || r->code == 251;

	if (!ok && cls != 4 && cls != 5) {	/* RFC 5321 4.3.2 */
		smtpc__proto_error(c, r, "%d reply to RCPT", r->code);
		return;
	}
	if (c->mail_ok) {
		c->rr[i] = *r;
		c->rcpt_ok[i] = ok;
		c->any_ok |= ok;
	}
	c->expect++;
	if (c->pipelined)
		return;
	if (extra) {
		smtpc__proto_error(c, r, "data after the reply to RCPT");
	} else if (c->expect > c->m.nrcpts && !c->any_ok) {
		smtpc__sendf(c, "RSET");
		c->state = C_RSET;
		smtpc__await(c, c->conf.t_cmd);
	} else {
		send_next_rcpt_or_data(c);
	}
}

/* Only a 354 leads to the body (RFC 5321 4.3.2); nothing may follow it. */
static void
data_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	int cls = r->code / 100;

	if (r->code != 354 && cls != 4 && cls != 5) {
		smtpc__proto_error(c, r, "%d reply to DATA (354 expected)", r->code);
		return;
	}
	if (extra) {
		smtpc__proto_error(c, r, "data after the reply to DATA");
		return;
	}
	if (r->code == 354) {
		if (c->any_ok) {
			send_body(c);
			return;
		}
		/* RFC 2920 3.1: 354 with no valid recipient: end it with a lone dot */
		evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
		c->outstanding++;
		c->state = C_DOT;
		smtpc__await(c, c->conf.t_dot);
		return;
	}
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	if (c->mail_ok) {
		/* DATA refused after an accepted MAIL: the server still holds the
		 * transaction, and the next MAIL would read 503 "nested MAIL" */
		smtpc__sendf(c, "RSET");
		c->state = C_RSET;
		smtpc__await(c, c->conf.t_cmd);
		return;
	}
	smtpc__finish(c, true);
}

/* A reply inside the transaction; expect says which command it answers. */
void
smtpc__tx_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	if (r->code == 421)
		closing(c, r);
	else if (c->expect == 0)
		mail_reply(c, r, extra);
	else if (c->expect <= c->m.nrcpts)
		rcpt_reply(c, r, extra);
	else
		data_reply(c, r, extra);
}

/* Only the reply read after the final dot went out is the message's outcome. */
void
smtpc__dot_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	int cls = r->code / 100;

	if (smtpc__out_pending(c) > 0) {
		/* the server cannot have read our final dot yet */
		smtpc__proto_error(c, r, "reply before the end of the message data");
		return;
	}
	if (r->code != 250 && cls != 4 && cls != 5) {
		smtpc__proto_error(c, r, "%d reply to the end of data (250 expected)", r->code);
		return;
	}
	c->dot_ok = r->code == 250;
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	/* bytes after the final reply: the outcome stands, the connection does not */
	smtpc__finish(c, !extra && r->code != 421);
}

int
smtpc_send(struct smtpc *c, const struct smtpc_msg *m)
{
	size_t i, n = m->nrcpts;
	char extra[96] = "";

	if (c->state != C_READY || n == 0)
		return -1;
	c->m = *m;
	free(c->rr);
	free(c->rcpt_ok);
	c->rr = xcalloc(n, sizeof(*c->rr));
	c->rcpt_ok = xcalloc(n, sizeof(*c->rcpt_ok));
	c->mail_ok = c->any_ok = c->dot_ok = false;
	c->expect = 0;
	c->pipelined = (c->caps.flags & SMTPC_CAP_PIPELINING) != 0;
	if (c->caps.flags & SMTPC_CAP_SIZE)
		snprintf(extra, sizeof(extra), " SIZE=%zu", m->body_len);
	if (m->need_8bit && (c->caps.flags & SMTPC_CAP_8BITMIME))
		strcat(extra, " BODY=8BITMIME");
	if (m->need_utf8)
		strcat(extra, " SMTPUTF8");
	smtpc__sendf(c, "MAIL FROM:<%s>%s", m->sender, extra);
	if (c->pipelined) {
		for (i = 0; i < n; i++)
			smtpc__sendf(c, "RCPT TO:<%s>", m->rcpts[i]);
		smtpc__sendf(c, "DATA");
	}
	c->state = C_TX;
	smtpc__await(c, c->conf.t_cmd);
	return 0;
}

/* What the server lacks for this message, as a permanent local reply. 0: nothing. */
int
smtpc_check(const struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *why)
{
	if (m->need_utf8 && !(c->caps.flags & SMTPC_CAP_SMTPUTF8)) {
		smtpc__local_reply(why, 553, "553 5.6.7 %s does not support SMTPUTF8 (RFC 6531)",
				   c->peer);
		return -1;
	}
	if (m->need_8bit && !(c->caps.flags & SMTPC_CAP_8BITMIME)) {
		smtpc__local_reply(why, 554,
				   "554 5.6.3 %s does not support 8BITMIME; conversion is not done",
				   c->peer);
		return -1;
	}
	if ((c->caps.flags & SMTPC_CAP_SIZE) && c->caps.size_max > 0 &&
	    m->body_len > c->caps.size_max) {
		smtpc__local_reply(why, 552, "552 5.3.4 message size %zu exceeds %s's limit %llu",
				   m->body_len, c->peer, c->caps.size_max);
		return -1;
	}
	return 0;
}
