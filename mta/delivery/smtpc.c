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
 * (smtpc_reply.c) only parses; what a reply means is decided here and, for
 * the mail transaction, in smtpc_tx.c.
 *
 * Deferred free (Redis' close-asap idea): every libevent entry point holds
 * the object (`busy`) while it runs, so a callback, or a TLS filter that
 * reports a failure from inside bufferevent_enable, can call smtpc_free at
 * any depth: the object is only marked and freed when the outermost entry
 * point returns. Nothing below may touch c after hold_end returned false.
 */
#include "mta/delivery/smtpc_int.h"

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

#include "mta/shared/cidr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

#define IDLE_TIMEOUT 300	/* seconds a parked connection waits for a transaction */

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

void
smtpc__sendf(struct smtpc *c, const char *fmt, ...)
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
void
smtpc__await(struct smtpc *c, unsigned s)
{
	c->wait_s = s;
	c->deadline_ms = util_now_ms() + (int64_t)s * 1000;
	read_timeout(c, (int64_t)s * 1000);
}

void
smtpc__local_reply(struct smtpc_reply *r, int code, const char *fmt, ...)
{
	va_list ap;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* Octets of ours not yet handed to the kernel (the TLS filter's included). */
size_t
smtpc__out_pending(struct smtpc *c)
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
void
smtpc__finish(struct smtpc *c, bool alive)
{
	for (size_t i = 0; i < c->m.nrcpts; i++)
		if (c->rr[i].code / 100 == 2 && !c->dot_ok)	/* never: see smtpc.h */
			smtpc__local_reply(&c->rr[i], 451,
					   "451 4.3.0 no 250 to the message data from %s", c->peer);
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
void
smtpc__proto_error(struct smtpc *c, const struct smtpc_reply *r, const char *fmt, ...)
{
	char what[200];
	struct smtpc_reply why;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	smtpc__local_reply(&why, 0, "protocol error: %s from %s%s%s", what, c->peer,
			   r ? ": " : "", r ? r->text : "");
	log_info("event=smtp_protocol_error relay=%s reason=\"%s\"", c->peer, why.text);
	if (c->state == C_RSET) {
		smtpc__finish(c, false);	/* every outcome was settled before RSET */
	} else if (in_tx(c)) {
		for (size_t i = 0; i < c->m.nrcpts; i++)
			smtpc__local_reply(&c->rr[i], 451, "451 4.5.0 %s", why.text);
		smtpc__finish(c, false);
	} else if (c->state == C_QUIT) {
		smtpc_free(c);	/* its owner has let go of it (smtpc_quit) */
	} else if (c->state == C_DEAD) {
		return;		/* already reported: its owner frees it */
	} else {
		fail(c, c->state == C_READY ? SMTPC_LOST : SMTPC_PROTOCOL, &why);
	}
}

static void
send_ehlo(struct smtpc *c, enum cstate st)
{
	memset(&c->caps, 0, sizeof(c->caps));
	smtpc__sendf(c, "%s %s", st == C_HELO ? "HELO" : "EHLO", c->helo);
	c->state = st;
	smtpc__await(c, c->conf.t_cmd);
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
	smtpc__local_reply(&why, 0, "TLS setup failed");
	fail(c, SMTPC_TLS, &why);
}

static void
ehlo_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool extra)
{
	const struct smtpc_reply *r = &rd->r;
	int cls = r->code / 100;

	if (extra) {
		smtpc__proto_error(c, r, "data after the reply to %s",
				   c->state == C_HELO ? "HELO" : "EHLO");
	} else if (r->code == 250) {
		if (c->state != C_HELO)
			c->caps = rd->caps;
		if (c->state == C_EHLO && (c->caps.flags & SMTPC_CAP_STARTTLS) && c->conf.tls) {
			smtpc__sendf(c, "STARTTLS");
			c->state = C_STARTTLS;
			smtpc__await(c, c->conf.t_cmd);
			return;
		}
		ready(c);
	} else if (c->state == C_EHLO && cls == 5) {
		send_ehlo(c, C_HELO);	/* an old server: RFC 5321 3.2 */
	} else if (cls == 4 || cls == 5) {
		fail(c, SMTPC_EHLO, r);
	} else {
		smtpc__proto_error(c, r, "%d reply to %s", r->code,
				   c->state == C_HELO ? "HELO" : "EHLO");
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
			smtpc__proto_error(c, r, "data after the greeting");
		else if (r->code == 220)	/* RFC 5321 4.3.2: 220, or 554 */
			send_ehlo(c, C_EHLO);
		else if (cls == 4 || cls == 5)
			fail(c, SMTPC_BANNER, r);
		else
			smtpc__proto_error(c, r, "%d greeting", r->code);
		break;
	case C_EHLO:
	case C_EHLO2:
	case C_HELO:
		ehlo_reply(c, rd, extra);
		break;
	case C_STARTTLS:
		if (extra)	/* RFC 3207 5: nothing may come between 220 and TLS */
			smtpc__proto_error(c, r, "data after the 220 reply to STARTTLS (RFC 3207)");
		else if (r->code == 220)
			start_tls(c);
		else if (cls == 4 || cls == 5)
			ready(c);	/* opportunistic: carry on in plaintext */
		else
			smtpc__proto_error(c, r, "%d reply to STARTTLS", r->code);
		break;
	case C_TX:
		smtpc__tx_reply(c, r, extra);
		break;
	case C_RSET:
		smtpc__finish(c, r->code == 250 && !extra);
		break;
	case C_DOT:
		smtpc__dot_reply(c, r, extra);
		break;
	case C_QUIT:
		smtpc_free(c);
		break;
	default:
		smtpc__proto_error(c, r, "unexpected reply");
		break;
	}
}

/* A complete reply: count it against the commands sent, then let the state decide. */
static void
got_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool more)
{
	if (c->outstanding == 0) {
		smtpc__proto_error(c, &rd->r, "reply to no command");
		return;
	}
	c->outstanding--;
	if (c->outstanding > 0)
		smtpc__await(c, c->wait_s);	/* the next reply of a pipelined group */
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
				smtpc__local_reply(&c->rr[i], 451, "451 4.4.2 %s with %s during %s",
						   how, c->peer,
						   c->state == C_DOT ? "data" : "transaction");
		smtpc__finish(c, false);
		return;
	}
	if (c->state == C_RSET) {
		smtpc__finish(c, false);	/* every outcome was settled before RSET */
		return;
	}
	smtpc__local_reply(&why, 0, "%s %s%s", how,
			   c->state == C_CONNECTING ? "connecting to " : "with ", c->peer);
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
			smtpc__proto_error(c, NULL, "%s", rd.r.text);
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
			smtpc__await(c, c->conf.t_banner);
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
		smtpc__local_reply(&why, 0, "TLS handshake with %s failed: %s", c->peer,
				   e ? buf : how);
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
	smtpc__sendf(c, "QUIT");
	c->state = C_QUIT;
	smtpc__await(c, 5);
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
