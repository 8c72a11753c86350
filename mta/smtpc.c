/*
 * smtpc: outbound SMTP client state machine (see smtpc.h).
 * One shape for every state: entering a state sends its command(s); the
 * reply decides the next state. With PIPELINING, MAIL, every RCPT and DATA
 * go out in one write and their replies are matched in order (RFC 2920 3.1).
 *
 * Replies are counted: `outstanding` is the number of commands sent whose
 * reply has not come. A reply with nothing outstanding, or bytes already
 * waiting when the last outstanding reply is read (the server cannot have
 * seen our next command yet), is a protocol error. The reader
 * (smtpc_reply.c) only parses; what a reply means is decided here.
 *
 * Deferred free (Redis' close-asap idea): every libevent entry point holds
 * the object (`busy`) while it runs, so a callback, or a TLS filter that
 * reports a failure from inside bufferevent_enable, can call smtpc_free at
 * any depth: the object is only marked and freed when the outermost entry
 * point returns. Nothing below may touch c after hold_end returned false.
 */
#include "mta/smtpc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mta/core/cidr.h"
#include "mta/core/log.h"
#include "mta/core/util.h"

#define IDLE_TIMEOUT 300	/* seconds a parked connection waits for a transaction */

enum cstate { C_CONNECTING, C_BANNER, C_EHLO, C_HELO, C_STARTTLS, C_HANDSHAKE, C_EHLO2,
	      C_READY, C_TX, C_RSET, C_DOT, C_QUIT, C_DEAD };

struct smtpc {
	struct event_base *base;
	struct bufferevent *bev;
	struct smtpc_conf conf;
	char helo[256];
	char mx[256];
	char peer[80];
	struct smtpc_cbs cbs;
	void *arg;
	enum cstate state;
	struct smtpc_caps caps;		/* from the last EHLO reply */
	bool tls_on;
	char tls_ver[16];
	struct smtpc_rd *rd;
	unsigned outstanding;		/* commands sent, reply not yet read */
	unsigned wait_s;		/* time allowed for the awaited reply */
	int64_t deadline_ms;		/* the awaited reply must be complete by then */
	/* the transaction */
	struct smtpc_msg m;
	struct smtpc_reply *rr;		/* per recipient */
	bool *rcpt_ok;
	bool pipelined;			/* this transaction's commands went out together */
	bool mail_ok, any_ok, dot_ok;
	size_t expect;			/* 0 MAIL, 1..n RCPT, n+1 DATA */
	int busy;			/* inside one of our event handlers */
	bool free_pending;
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static enum smtpc_stage stage_of(enum cstate st);

static void
real_free(struct smtpc *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	smtpc_rd_free(c->rd);
	free(c->rr);
	free(c->rcpt_ok);
	free(c);
}

void
smtpc_free(struct smtpc *c)
{
	if (c == NULL)
		return;
	memset(&c->cbs, 0, sizeof(c->cbs));
	if (c->busy) {
		/* an event of ours is being handled further up the stack */
		c->free_pending = true;
		c->state = C_DEAD;
		if (c->bev)
			bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	real_free(c);
}

/* Enter an event handler: c cannot be freed under us until hold_end. */
static void
hold(struct smtpc *c)
{
	c->busy++;
}

/* Leave it: false when c is gone and must not be touched. */
static bool
hold_end(struct smtpc *c)
{
	if (--c->busy == 0 && c->free_pending) {
		real_free(c);
		return false;
	}
	return true;
}

/* Stop handling the current event: freed, failed, or TLS has the socket now. */
static bool
stopped(const struct smtpc *c)
{
	return c->free_pending || c->state == C_DEAD || c->state == C_HANDSHAKE;
}

static void
sendf(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
sendf(struct smtpc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\r\n", 2);
	c->outstanding++;
}

static void
read_timeout(struct smtpc *c, int64_t ms)
{
	struct timeval r = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	struct timeval w = {(time_t)c->conf.t_block, 0};
	bufferevent_set_timeouts(c->bev, &r, &w);
}

/*
 * Await a reply for at most s seconds in all (RFC 5321 4.5.3.2): a server
 * that sends one byte at a time keeps the socket busy but cannot stretch it.
 */
static void
await(struct smtpc *c, unsigned s)
{
	c->wait_s = s;
	c->deadline_ms = util_now_ms() + (int64_t)s * 1000;
	read_timeout(c, (int64_t)s * 1000);
}

static void
local_reply(struct smtpc_reply *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
local_reply(struct smtpc_reply *r, int code, const char *fmt, ...)
{
	va_list ap;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* Octets of ours not yet handed to the kernel (the TLS filter's included). */
static size_t
out_pending(struct smtpc *c)
{
	struct bufferevent *u = bufferevent_get_underlying(c->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	return u ? n + evbuffer_get_length(bufferevent_get_output(u)) : n;
}

static bool
in_tx(const struct smtpc *c)
{
	return c->state == C_TX || c->state == C_DOT || c->state == C_RSET;
}

/* The connection failed outside a transaction. */
static void
fail(struct smtpc *c, enum smtpc_stage st, const struct smtpc_reply *why)
{
	c->state = C_DEAD;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->cbs.fail)
		c->cbs.fail(c, c->arg, st, why);
}

static void
ready(struct smtpc *c)
{
	c->state = C_READY;
	read_timeout(c, (int64_t)IDLE_TIMEOUT * 1000);	/* idle in the connection cache */
	if (c->cbs.ready)
		c->cbs.ready(c, c->arg);
}

/* The transaction is over: hand every recipient's reply to the owner. */
static void
finish(struct smtpc *c, bool alive)
{
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rr[i].code / 100 == 2 && !c->dot_ok)	/* never: see smtpc.h */
			local_reply(&c->rr[i], 451, "451 4.3.0 no 250 to the message data from %s",
				    c->peer);
	c->state = alive ? C_READY : C_DEAD;
	if (alive)
		read_timeout(c, (int64_t)IDLE_TIMEOUT * 1000);
	else
		bufferevent_disable(c->bev, EV_READ);
	if (c->cbs.result)
		c->cbs.result(c, c->arg, c->rr, c->m.nrcpts);
}

/*
 * The server broke the protocol: inside a transaction every recipient is
 * deferred (after one reply out of place none of its replies can be
 * trusted, RFC 2920 3.1); outside, the connection fails. Closed either way.
 */
static void
proto_error(struct smtpc *c, const struct smtpc_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
proto_error(struct smtpc *c, const struct smtpc_reply *r, const char *fmt, ...)
{
	char what[200];
	struct smtpc_reply why;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	local_reply(&why, 0, "protocol error: %s from %s%s%s", what, c->peer, r ? ": " : "",
		    r ? r->text : "");
	log_info("event=smtp_protocol_error relay=%s reason=\"%s\"", c->peer, why.text);
	if (c->state == C_RSET) {
		finish(c, false);	/* every outcome was settled before RSET */
	} else if (in_tx(c)) {
		for (size_t i = 0; i < c->m.nrcpts; i++)
			local_reply(&c->rr[i], 451, "451 4.5.0 %s", why.text);
		finish(c, false);
	} else if (c->state == C_QUIT || c->state == C_DEAD) {
		smtpc_free(c);
	} else {
		fail(c, c->state == C_READY ? SMTPC_LOST : SMTPC_PROTOCOL, &why);
	}
}

static void
send_ehlo(struct smtpc *c, enum cstate st)
{
	memset(&c->caps, 0, sizeof(c->caps));
	sendf(c, "%s %s", st == C_HELO ? "HELO" : "EHLO", c->helo);
	c->state = st;
	await(c, c->conf.t_cmd);
}

static void
start_tls(struct smtpc *c)
{
	SSL *ssl = SSL_new(c->conf.tls);
	struct bufferevent *tb;
	struct smtpc_reply why;

	if (ssl == NULL)
		goto fail;
	SSL_set_tlsext_host_name(ssl, c->mx);	/* SNI = MX name */
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	c->bev = tb;
	c->state = C_HANDSHAKE;
	bufferevent_setcb(tb, on_read, NULL, on_event, c);
	read_timeout(c, (int64_t)c->conf.t_cmd * 1000);
	/* may run the handshake and report its failure at once: c is held by our caller */
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	return;
fail:
	local_reply(&why, 0, "TLS setup failed");
	fail(c, SMTPC_TLS, &why);
}

static void
send_next_rcpt_or_data(struct smtpc *c)
{
	/* without PIPELINING: one command at a time, expect is the next to send */
	if (c->expect <= c->m.nrcpts)
		sendf(c, "RCPT TO:<%s>", c->m.rcpts[c->expect - 1]);
	else
		sendf(c, "DATA");
	await(c, c->conf.t_cmd);
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
	await(c, c->conf.t_dot);
}

/* A 421 inside a transaction (RFC 5321 3.8): the server is closing. */
static void
closing(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rr[i].code == 0 || c->rcpt_ok[i])
			c->rr[i] = *r;
	finish(c, false);
}

static void
mail_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	int cls = r->code / 100;

	if (r->code != 250 && cls != 4 && cls != 5) {	/* RFC 5321 4.3.2 */
		proto_error(c, r, "%d reply to MAIL", r->code);
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
		proto_error(c, r, "data after the reply to MAIL");
	else if (!c->mail_ok)
		finish(c, true);
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
		proto_error(c, r, "%d reply to RCPT", r->code);
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
		proto_error(c, r, "data after the reply to RCPT");
	} else if (c->expect > c->m.nrcpts && !c->any_ok) {
		sendf(c, "RSET");
		c->state = C_RSET;
		await(c, c->conf.t_cmd);
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
		proto_error(c, r, "%d reply to DATA (354 expected)", r->code);
		return;
	}
	if (extra) {
		proto_error(c, r, "data after the reply to DATA");
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
		await(c, c->conf.t_dot);
		return;
	}
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	if (c->mail_ok) {
		/* DATA refused after an accepted MAIL: the server still holds the
		 * transaction, and the next MAIL would read 503 "nested MAIL" */
		sendf(c, "RSET");
		c->state = C_RSET;
		await(c, c->conf.t_cmd);
		return;
	}
	finish(c, true);
}

/* A reply inside the transaction; expect says which command it answers. */
static void
tx_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
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
static void
dot_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra)
{
	int cls = r->code / 100;

	if (out_pending(c) > 0) {
		/* the server cannot have read our final dot yet */
		proto_error(c, r, "reply before the end of the message data");
		return;
	}
	if (r->code != 250 && cls != 4 && cls != 5) {
		proto_error(c, r, "%d reply to the end of data (250 expected)", r->code);
		return;
	}
	c->dot_ok = r->code == 250;
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	/* bytes after the final reply: the outcome stands, the connection does not */
	finish(c, !extra && r->code != 421);
}

static void
ehlo_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool extra)
{
	const struct smtpc_reply *r = &rd->r;
	int cls = r->code / 100;

	if (extra) {
		proto_error(c, r, "data after the reply to %s", c->state == C_HELO ? "HELO" : "EHLO");
	} else if (r->code == 250) {
		if (c->state != C_HELO)
			c->caps = rd->caps;
		if (c->state == C_EHLO && (c->caps.flags & SMTPC_CAP_STARTTLS) && c->conf.tls) {
			sendf(c, "STARTTLS");
			c->state = C_STARTTLS;
			await(c, c->conf.t_cmd);
			return;
		}
		ready(c);
	} else if (c->state == C_EHLO && cls == 5) {
		send_ehlo(c, C_HELO);	/* an old server: RFC 5321 3.2 */
	} else if (cls == 4 || cls == 5) {
		fail(c, SMTPC_EHLO, r);
	} else {
		proto_error(c, r, "%d reply to %s", r->code, c->state == C_HELO ? "HELO" : "EHLO");
	}
}

static void
handle_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool extra)
{
	const struct smtpc_reply *r = &rd->r;
	int cls = r->code / 100;

	switch (c->state) {
	case C_BANNER:
		if (extra)
			proto_error(c, r, "data after the greeting");
		else if (r->code == 220)	/* RFC 5321 4.3.2: 220, or 554 */
			send_ehlo(c, C_EHLO);
		else if (cls == 4 || cls == 5)
			fail(c, SMTPC_BANNER, r);
		else
			proto_error(c, r, "%d greeting", r->code);
		break;
	case C_EHLO:
	case C_EHLO2:
	case C_HELO:
		ehlo_reply(c, rd, extra);
		break;
	case C_STARTTLS:
		if (extra)	/* RFC 3207 5: nothing may come between 220 and TLS */
			proto_error(c, r, "data after the 220 reply to STARTTLS (RFC 3207)");
		else if (r->code == 220)
			start_tls(c);
		else if (cls == 4 || cls == 5)
			ready(c);	/* opportunistic: carry on in plaintext */
		else
			proto_error(c, r, "%d reply to STARTTLS", r->code);
		break;
	case C_TX:
		tx_reply(c, r, extra);
		break;
	case C_RSET:
		finish(c, r->code == 250 && !extra);
		break;
	case C_DOT:
		dot_reply(c, r, extra);
		break;
	case C_QUIT:
		smtpc_free(c);
		break;
	default:
		proto_error(c, r, "unexpected reply");
		break;
	}
}

/* A complete reply: count it against the commands sent, then let the state decide. */
static void
got_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool more)
{
	if (c->outstanding == 0) {
		proto_error(c, &rd->r, "reply to no command");
		return;
	}
	c->outstanding--;
	if (c->outstanding > 0)
		await(c, c->wait_s);	/* the next reply of a pipelined group */
	/* more bytes after the last awaited reply were sent before the server could
	 * have seen our next command: out of place (RFC 2920 3.1, RFC 3207 5) */
	handle_reply(c, rd, c->outstanding == 0 && more);
}

static void
lost(struct smtpc *c, const char *how)
{
	struct smtpc_reply why;

	if (c->state == C_QUIT) {
		smtpc_free(c);
		return;
	}
	if (c->state == C_DEAD)
		return;
	if (c->state == C_TX || c->state == C_DOT) {
		/* lost mid-transaction: every undecided recipient is deferred */
		for (size_t i = 0; i < c->m.nrcpts; i++)
			if (c->state == C_DOT ? c->rcpt_ok[i] : (c->rr[i].code == 0 || c->rcpt_ok[i]))
				local_reply(&c->rr[i], 451, "451 4.4.2 %s with %s during %s", how,
					    c->peer, c->state == C_DOT ? "data" : "transaction");
		finish(c, false);
		return;
	}
	if (c->state == C_RSET) {
		finish(c, false);	/* every outcome was settled before RSET */
		return;
	}
	local_reply(&why, 0, "%s %s%s", how, c->state == C_CONNECTING ? "connecting to " : "with ",
		    c->peer);
	fail(c, stage_of(c->state), &why);
}

static void
read_replies(struct smtpc *c, struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct smtpc_rd_reply rd;

	while (!stopped(c) && evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_contiguous_space(in), used = 0;
		const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		enum smtpc_rd_status st = smtpc_rd_feed(c->rd, p, len, &used, &rd);
		evbuffer_drain(in, used);
		if (st == SMTPC_RD_ERROR) {
			proto_error(c, NULL, "%s", rd.r.text);
			return;
		}
		if (st == SMTPC_RD_REPLY)
			got_reply(c, &rd, smtpc_rd_partial(c->rd) || evbuffer_get_length(in) > 0);
	}
	if (stopped(c) || c->outstanding == 0 || c->state == C_READY)
		return;
	/* a reply is still awaited: what is left of its time, not a fresh timeout */
	int64_t left = c->deadline_ms - util_now_ms();
	if (left <= 0)
		lost(c, "timeout");
	else
		read_timeout(c, left);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	read_replies(c, bev);
	hold_end(c);
}

static enum smtpc_stage
stage_of(enum cstate st)
{
	switch (st) {
	case C_CONNECTING:
		return SMTPC_CONNECT;
	case C_BANNER:
		return SMTPC_BANNER;
	case C_HANDSHAKE:
		return SMTPC_TLS;
	case C_READY:
		return SMTPC_LOST;
	default:
		return SMTPC_EHLO;
	}
}

static void
handle_event(struct smtpc *c, struct bufferevent *bev, short what)
{
	const char *how;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECTING) {
			c->state = C_BANNER;
			c->outstanding = 1;	/* the greeting */
			await(c, c->conf.t_banner);
		} else if (c->state == C_HANDSHAKE) {
			SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
			c->tls_on = true;
			snprintf(c->tls_ver, sizeof(c->tls_ver), "%s", SSL_get_version(ssl));
			send_ehlo(c, C_EHLO2);	/* RFC 3207 4.2: start over after TLS */
		}
		return;
	}
	how = (what & BEV_EVENT_TIMEOUT) ? "timeout"
	      : (what & BEV_EVENT_EOF)	 ? "connection closed"
					 : strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : EIO);
	if (c->state == C_HANDSHAKE) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		struct smtpc_reply why;
		char buf[200];
		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		local_reply(&why, 0, "TLS handshake with %s failed: %s", c->peer, e ? buf : how);
		fail(c, SMTPC_TLS, &why);
		return;
	}
	lost(c, how);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	handle_event(c, bev, what);
	hold_end(c);
}

struct smtpc *
smtpc_connect(struct event_base *base, const struct smtpc_conf *conf, const char *mxname,
	      const struct sockaddr *dst, socklen_t dstlen, const struct smtpc_cbs *cbs, void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));
	char ip[64];
	int fd, one = 1;
	uint16_t port;

	c->base = base;
	c->conf = *conf;
	snprintf(c->helo, sizeof(c->helo), "%s", conf->helo);
	c->conf.helo = c->helo;
	snprintf(c->mx, sizeof(c->mx), "%s", mxname);
	cidr_addr_text(dst, ip, sizeof(ip));
	port = dst->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)dst)->sin6_port)
					  : ntohs(((const struct sockaddr_in *)dst)->sin_port);
	snprintf(c->peer, sizeof(c->peer), "%s[%s]:%u", mxname, ip, port);
	c->cbs = *cbs;
	c->arg = arg;
	snprintf(c->tls_ver, sizeof(c->tls_ver), "none");
	c->rd = smtpc_rd_new();

	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (conf->src && conf->src->sa_family == dst->sa_family) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, conf->src, conf->srclen) != 0) {
			close(fd);
			goto fail;
		}
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		goto fail;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	{
		struct timeval t = {(time_t)conf->t_connect, 0};
		bufferevent_set_timeouts(c->bev, &t, &t);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = C_CONNECTING;
	/* a failure here is reported through on_event, never synchronously */
	bufferevent_socket_connect(c->bev, dst, (int)dstlen);
	return c;
fail:
	smtpc_rd_free(c->rd);
	free(c);
	return NULL;
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
	sendf(c, "MAIL FROM:<%s>%s", m->sender, extra);
	if (c->pipelined) {
		for (i = 0; i < n; i++)
			sendf(c, "RCPT TO:<%s>", m->rcpts[i]);
		sendf(c, "DATA");
	}
	c->state = C_TX;
	await(c, c->conf.t_cmd);
	return 0;
}

/* What the server lacks for this message, as a permanent local reply. 0: nothing. */
int
smtpc_check(const struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *why)
{
	if (m->need_utf8 && !(c->caps.flags & SMTPC_CAP_SMTPUTF8)) {
		local_reply(why, 553, "553 5.6.7 %s does not support SMTPUTF8 (RFC 6531)", c->peer);
		return -1;
	}
	if (m->need_8bit && !(c->caps.flags & SMTPC_CAP_8BITMIME)) {
		local_reply(why, 554,
			    "554 5.6.3 %s does not support 8BITMIME; conversion is not done", c->peer);
		return -1;
	}
	if ((c->caps.flags & SMTPC_CAP_SIZE) && c->caps.size_max > 0 &&
	    m->body_len > c->caps.size_max) {
		local_reply(why, 552, "552 5.3.4 message size %zu exceeds %s's limit %llu",
			    m->body_len, c->peer, c->caps.size_max);
		return -1;
	}
	return 0;
}

bool
smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY && !c->free_pending;
}

void
smtpc_quit(struct smtpc *c)
{
	memset(&c->cbs, 0, sizeof(c->cbs));
	if (c->state != C_READY) {
		smtpc_free(c);
		return;
	}
	sendf(c, "QUIT");
	c->state = C_QUIT;
	await(c, 5);
}

const char *
smtpc_tls_version(const struct smtpc *c)
{
	return c->tls_ver;
}

const char *
smtpc_peer(const struct smtpc *c)
{
	return c->peer;
}

const char *
smtpc_mxname(const struct smtpc *c)
{
	return c->mx;
}
