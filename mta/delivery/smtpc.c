/*
 * smtpc: outbound SMTP client state machine (see smtpc.h).
 * One shape for every state: entering a state sends its command(s), in
 * enter(), the one place c->state changes; the reply decides the next
 * state, in on_reply() (smtpc_tx.c decides for the transaction's states);
 * connection events (connected, TLS up, lost, timeout) in handle_event().
 * With PIPELINING, MAIL, every RCPT and DATA go out in one write when
 * C_MAIL is entered, and entering C_RCPT and C_DATA then sends nothing:
 * their replies are matched in order (RFC 2920 3.1).
 *
 * Replies are counted: `outstanding` is the number of commands sent whose
 * reply has not come. A reply with nothing outstanding, or bytes already
 * waiting when the last outstanding reply is read (the server cannot have
 * seen our next command yet), is a protocol error. The reader
 * (smtpc_reply.c) only parses.
 *
 * Deferred free (mta/event.h): every libevent entry point holds c->ref
 * while it runs, so a callback, or a TLS filter that reports a failure from
 * inside bufferevent_enable, can call smtpc_free at any depth: the object is
 * only marked and freed when the outermost entry point returns.
 */
#include "mta/delivery/smtpc_int.h"
#include "mta/delivery/smtpc_tls.h"

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

#define IDLE_TIMEOUT 300 /* seconds a parked connection waits for a transaction */
#define QUIT_TIMEOUT 5   /* seconds for the reply to QUIT */

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void enter(struct smtpc *c, enum cstate st);

static void
real_free(void *arg)
{
	struct smtpc *c = arg;

	if (c->bev)
		bufferevent_free(c->bev);
	smtpc_rd_free(c->rd);
	tls_req_clear(&c->req);
	SSL_CTX_free(c->conf.tls); /* the reference taken at connect */
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
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evref_close(&c->ref); /* freed now, or when the event being handled ends */
}

/* Stop handling the current event: closed, failed, or TLS has the socket now. */
static bool
stopped(const struct smtpc *c)
{
	return evref_closing(&c->ref) || c->state == C_DEAD || c->state == C_HANDSHAKE;
}

static bool
in_tx(enum cstate st)
{
	return st >= C_MAIL && st <= C_RSET;
}

/* A text of ours (code 0: no reply was received) for the fail callback or a log. */
static void note(struct smtpc_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note(struct smtpc_reply *r, const char *fmt, ...)
{
	va_list ap;

	r->code = 0;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
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
vsendf(struct smtpc *c, const char *fmt, va_list ap)
{
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\r\n", 2);
	c->outstanding++;
}

/* Queue one command line (CRLF added) and count the reply it awaits. */
static void sendf(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sendf(struct smtpc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsendf(c, fmt, ap);
	va_end(ap);
}

/* The same, and await its reply for at most s seconds. */
static void __attribute__((format(printf, 3, 4)))
send_cmd(struct smtpc *c, unsigned s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsendf(c, fmt, ap);
	va_end(ap);
	await(c, s);
}

/* Octets of ours not yet handed to the kernel (the TLS filter's included). */
static size_t
out_pending(struct smtpc *c)
{
	struct bufferevent *u = bufferevent_get_underlying(c->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	return u ? n + evbuffer_get_length(bufferevent_get_output(u)) : n;
}

/* The connection fails outside a transaction: the fail callback will say why. */
static enum cstate
failed(struct smtpc *c, enum smtpc_stage stage, const struct smtpc_reply *why)
{
	c->fail_stage = stage;
	c->why = *why;
	return C_DEAD;
}

/*
 * The server broke the protocol (r: its reply, or NULL): inside a
 * transaction every recipient is deferred; outside, the connection fails.
 * Closed either way: the state it leads to is C_DEAD.
 */
static enum cstate
broken(struct smtpc *c, const struct smtpc_reply *r, const char *what)
{
	struct smtpc_reply why;

	note(&why, "protocol error: %s from %s%s%s", what, c->peer, r ? ": " : "",
	     r ? r->text : "");
	log_info("event=smtp_protocol_error relay=%s reason=\"%s\"", c->peer, why.text);
	if (c->state >= C_MAIL && c->state <= C_DOT)
		smtpc_tx_broken(c, why.text);
	else if (c->state != C_RSET && c->state != C_QUIT) /* RSET: all settled before */
		failed(c, c->state == C_READY ? SMTPC_LOST : SMTPC_PROTOCOL, &why);
	return C_DEAD;
}

/* Set up TLS over the connection (RFC 3207); 0, or -1 when it cannot even start. */
static int
start_tls(struct smtpc *c)
{
	SSL *ssl = SSL_new(c->conf.tls);
	struct bufferevent *tb;

	if (ssl == NULL)
		return -1;
	if (smtpc_tls_setup(ssl, &c->req, c->mx) != 0) { /* SNI, names, TLSA */
		SSL_free(ssl);
		return -1;
	}
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                    BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	c->bev = tb;
	bufferevent_setcb(tb, on_read, NULL, on_event, c);
	read_timeout(c, (int64_t)c->conf.t_cmd * 1000);
	/* may run the handshake and report its failure at once: c is held by our caller */
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	return 0;
}

/* MAIL, and with PIPELINING every RCPT and DATA in the same write (RFC 2920 3.1). */
static void
send_mail(struct smtpc *c)
{
	char params[96];

	smtpc_tx_mail_params(c, params, sizeof(params));
	sendf(c, "MAIL FROM:<%s>%s", c->m.sender, params);
	if (c->pipelined) {
		for (size_t i = 0; i < c->m.nrcpts; i++)
			sendf(c, "RCPT TO:<%s>", c->m.rcpts[i]);
		sendf(c, "DATA");
	}
	await(c, c->conf.t_cmd);
}

/* Entering C_READY or C_DEAD from `from`: tell the owner. */
static void
report(struct smtpc *c, enum cstate from)
{
	if (from == C_DEAD)
		return; /* already reported */
	if (in_tx(from)) {
		smtpc_tx_settle(c);
		if (c->cbs.result)
			c->cbs.result(c, c->arg, c->rr, c->m.nrcpts);
	} else if (c->state == C_READY) {
		if (c->cbs.ready)
			c->cbs.ready(c, c->arg);
	} else if (from == C_QUIT) {
		smtpc_free(c); /* its owner has let go of it (smtpc_quit) */
	} else if (c->cbs.fail) {
		c->cbs.fail(c, c->arg, c->fail_stage, &c->why);
	}
}

/* Entering C_CONNECTING: the TCP connection is asked for. */
static void
connect_start(struct smtpc *c)
{
	struct timeval t = {(time_t)c->conf.t_connect, 0};

	bufferevent_set_timeouts(c->bev, &t, &t);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* a failure here is reported through on_event, never synchronously */
	bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->dst, (int)c->dstlen);
}

/* Entering C_HANDSHAKE: TLS starts, or the connection fails at once. */
static void
handshake_start(struct smtpc *c)
{
	struct smtpc_reply why;

	if (start_tls(c) != 0) {
		note(&why, "TLS setup failed");
		smtpc_tls_failed(&c->req, &c->out, why.text);
		enter(c, failed(c, SMTPC_TLS, &why));
	}
}

/*
 * Enter state st: the one place c->state changes. Entering a state sends
 * its command; C_READY and C_DEAD report to the owner instead, whose
 * callback may start the next transaction (a nested enter) or free c.
 */
static void
enter(struct smtpc *c, enum cstate st)
{
	enum cstate from = c->state;

	c->state = st;
	switch (st) {
	case C_CONNECTING:
		connect_start(c);
		break;
	case C_BANNER:
		c->outstanding = 1; /* the greeting (RFC 5321 4.3.1) */
		await(c, c->conf.t_banner);
		break;
	case C_EHLO:
	case C_EHLO2: /* RFC 3207 4.2: start over after TLS */
	case C_HELO:  /* an old server: RFC 5321 3.2 */
		memset(&c->caps, 0, sizeof(c->caps));
		send_cmd(c, c->conf.t_cmd, "%s %s", st == C_HELO ? "HELO" : "EHLO", c->helo);
		break;
	case C_STARTTLS:
		send_cmd(c, c->conf.t_cmd, "STARTTLS");
		break;
	case C_HANDSHAKE:
		handshake_start(c);
		break;
	case C_READY:
		read_timeout(c, (int64_t)IDLE_TIMEOUT * 1000); /* idle in the connection cache */
		report(c, from);
		break;
	case C_MAIL:
		send_mail(c);
		break;
	case C_RCPT:
		c->rcpt = from == C_RCPT ? c->rcpt + 1 : 0;
		if (!c->pipelined) /* else it went out with MAIL */
			send_cmd(c, c->conf.t_cmd, "RCPT TO:<%s>", c->m.rcpts[c->rcpt]);
		break;
	case C_DATA:
		if (!c->pipelined)
			send_cmd(c, c->conf.t_cmd, "DATA");
		break;
	case C_DOT:
		smtpc_tx_body(c, bufferevent_get_output(c->bev));
		c->outstanding++;
		await(c, c->conf.t_dot);
		break;
	case C_RSET:
		send_cmd(c, c->conf.t_cmd, "RSET");
		break;
	case C_QUIT:
		send_cmd(c, QUIT_TIMEOUT, "QUIT");
		break;
	case C_DEAD:
		bufferevent_disable(c->bev, in_tx(from) ? EV_READ : EV_READ | EV_WRITE);
		report(c, from);
		break;
	}
}

/*
 * TLS is required (level ENCRYPT and above) but cannot be had: no STARTTLS
 * in the EHLO reply (r NULL), or a 4xx/5xx to it. Never on in plaintext.
 */
static enum cstate
tls_missing(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_reply why;

	if (r != NULL)
		note(&why, "STARTTLS refused: %s", r->text);
	else
		note(&why, "no STARTTLS in the %s reply", c->state == C_HELO ? "HELO" : "EHLO");
	smtpc_tls_missing(&c->req, &c->out, why.text);
	return failed(c, SMTPC_TLS_REQUIRED, &why);
}

/* A reply to EHLO or HELO. */
static enum cstate
ehlo_next(struct smtpc *c, const struct smtpc_rd_reply *rd, bool extra, char *proto, size_t len)
{
	const struct smtpc_reply *r = &rd->r;
	const char *cmd = c->state == C_HELO ? "HELO" : "EHLO";
	int cls = r->code / 100;

	if (extra) {
		snprintf(proto, len, "data after the reply to %s", cmd);
		return C_DEAD;
	}
	if (r->code == 250) {
		if (c->state != C_HELO)
			c->caps = rd->caps;
		if (c->state == C_EHLO && (c->caps.flags & SMTPC_CAP_STARTTLS) && c->conf.tls &&
		    c->req.level != TLSR_NONE)
			return C_STARTTLS;
		if (c->state != C_EHLO2 && c->req.level >= TLSR_ENCRYPT)
			return tls_missing(c, NULL);
		return C_READY;
	}
	if (c->state == C_EHLO && cls == 5)
		return C_HELO;
	if (cls == 4 || cls == 5)
		return failed(c, SMTPC_EHLO, r);
	snprintf(proto, len, "%d reply to %s", r->code, cmd);
	return C_DEAD;
}

/* A reply to STARTTLS: only 220 leads to TLS (RFC 3207 4). */
static enum cstate
starttls_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, char *proto, size_t len)
{
	int cls = r->code / 100;

	if (extra) /* RFC 3207 5: nothing may come between 220 and TLS */
		snprintf(proto, len, "data after the 220 reply to STARTTLS (RFC 3207)");
	else if (r->code == 220)
		return C_HANDSHAKE;
	else if ((cls == 4 || cls == 5) && c->req.level >= TLSR_ENCRYPT)
		return tls_missing(c, r);
	else if (cls == 4 || cls == 5)
		return C_READY; /* opportunistic: carry on in plaintext */
	else
		snprintf(proto, len, "%d reply to STARTTLS", r->code);
	return C_DEAD;
}

/*
 * The one decision: a complete reply, counted, in the current state, leads
 * to the next state. extra: bytes came after it although no other reply was
 * awaited (RFC 2920 3.1, RFC 3207 5).
 */
static void
on_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool extra)
{
	const struct smtpc_reply *r = &rd->r;
	int cls = r->code / 100;
	char proto[200] = "";
	enum cstate next = C_DEAD;

	switch (c->state) {
	case C_BANNER: /* RFC 5321 4.3.2: 220, or 554 */
		if (extra)
			snprintf(proto, sizeof(proto), "data after the greeting");
		else if (r->code == 220)
			next = C_EHLO;
		else if (cls == 4 || cls == 5)
			next = failed(c, SMTPC_BANNER, r);
		else
			snprintf(proto, sizeof(proto), "%d greeting", r->code);
		break;
	case C_EHLO:
	case C_EHLO2:
	case C_HELO:
		next = ehlo_next(c, rd, extra, proto, sizeof(proto));
		break;
	case C_STARTTLS:
		next = starttls_next(c, r, extra, proto, sizeof(proto));
		break;
	case C_MAIL:
	case C_RCPT:
	case C_DATA:
	case C_DOT:
		next = smtpc_tx_next(c, r, extra, out_pending(c), proto, sizeof(proto));
		break;
	case C_RSET: /* every outcome was settled before RSET */
		next = r->code == 250 && !extra ? C_READY : C_DEAD;
		break;
	case C_QUIT:
		break;
	default:
		snprintf(proto, sizeof(proto), "unexpected reply");
		break;
	}
	if (proto[0])
		next = broken(c, r, proto);
	enter(c, next);
}

/* A complete reply: count it against the commands sent, then let the state decide. */
static void
got_reply(struct smtpc *c, const struct smtpc_rd_reply *rd, bool more)
{
	if (c->outstanding == 0) {
		enter(c, broken(c, &rd->r, "reply to no command"));
		return;
	}
	c->outstanding--;
	if (c->outstanding > 0)
		await(c, c->wait_s); /* the next reply of a pipelined group */
	/* more bytes after the last awaited reply were sent before the server could
	 * have seen our next command: out of place (RFC 2920 3.1, RFC 3207 5) */
	on_reply(c, rd, c->outstanding == 0 && more);
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

/* The connection closed, failed or timed out. */
static void
lost(struct smtpc *c, const char *how)
{
	struct smtpc_reply why;

	if (c->state == C_DEAD)
		return;
	if (c->state >= C_MAIL && c->state <= C_DOT) {
		smtpc_tx_lost(c, how); /* every undecided recipient is deferred */
	} else if (c->state != C_RSET && c->state != C_QUIT) {
		note(&why, "%s %s%s", how, c->state == C_CONNECTING ? "connecting to " : "with ",
		     c->peer);
		failed(c, stage_of(c->state), &why);
	}
	enter(c, C_DEAD);
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
			enter(c, broken(c, NULL, rd.r.text));
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

	evref_enter(&c->ref);
	read_replies(c, bev);
	evref_leave(&c->ref);
}

/*
 * The handshake is done: judge the certificate against the request. When it
 * required a verified one (VERIFY, DANE; RFC 7672 2.2, RFC 8461 5) and did
 * not get it, fail now, before EHLO is sent again: not one byte of mail.
 * report_only (MTA-STS testing, RFC 8461 5) only reports below VERIFY: it
 * never weakens a level that tls_policy or DANE required.
 */
static enum cstate
tls_up(struct smtpc *c)
{
	struct smtpc_reply why;

	c->tls_on = true;
	smtpc_tls_judge(bufferevent_openssl_get_ssl(c->bev), &c->req, &c->out);
	snprintf(c->tls_ver, sizeof(c->tls_ver), "%s", c->out.version);
	if (c->out.verified || c->req.level < TLSR_VERIFY)
		return C_EHLO2;
	note(&why, "%s", c->out.detail);
	return failed(c, SMTPC_TLS_VERIFY, &why);
}

static void
handle_event(struct smtpc *c, struct bufferevent *bev, short what)
{
	struct smtpc_reply why;
	unsigned long e;
	const char *how;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECTING) {
			enter(c, C_BANNER);
		} else if (c->state == C_HANDSHAKE) {
			enter(c, tls_up(c));
		}
		return;
	}
	how = (what & BEV_EVENT_TIMEOUT) ? "timeout"
	      : (what & BEV_EVENT_EOF)
	          ? "connection closed"
	          : strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : EIO);
	e = bufferevent_get_openssl_error(bev);
	/* TLS 1.3: a server refuses our certificate (or its absence) only after
	 * our side of the handshake is done: an alert, or a bare close, comes
	 * instead of the EHLO reply. That is a failed handshake too (a silent
	 * server is not: it times out as at any other command). */
	if (c->state == C_HANDSHAKE || (c->state == C_EHLO2 && !(what & BEV_EVENT_TIMEOUT))) {
		char buf[200];
		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%s%s", how,
			         c->state == C_EHLO2 ? " before the EHLO reply" : "");
		note(&why, "TLS handshake with %s failed: %s", c->peer, buf);
		smtpc_tls_failed(&c->req, &c->out, buf);
		enter(c, failed(c, SMTPC_TLS, &why));
		return;
	}
	lost(c, how);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;

	evref_enter(&c->ref);
	if (!evref_closing(&c->ref))
		handle_event(c, bev, what);
	evref_leave(&c->ref);
}

/* A non-blocking socket to dst, bound to conf->src when it is of dst's family; -1 on error. */
static int
open_socket(const struct smtpc_conf *conf, const struct sockaddr *dst)
{
	int fd, one = 1;

	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (conf->src && conf->src->sa_family == dst->sa_family) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, conf->src, conf->srclen) != 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

struct smtpc *
smtpc_connect(struct event_base *base, const struct smtpc_conf *conf, const char *mxname,
              const struct sockaddr *dst, socklen_t dstlen, const struct smtpc_cbs *cbs, void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));
	char ip[64];
	uint16_t port;
	int fd;

	c->base = base;
	c->conf = *conf;
	/* a reload may replace the context before this session's STARTTLS */
	if (c->conf.tls != NULL && SSL_CTX_up_ref(c->conf.tls) != 1)
		c->conf.tls = NULL;
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
	tls_req_init(&c->req);
	if (conf->req != NULL)
		tls_req_copy(&c->req, conf->req);
	c->conf.req = &c->req;
	c->out.kind = TLSK_PLAINTEXT;
	snprintf(c->out.version, sizeof(c->out.version), "none");
	c->rd = smtpc_rd_new();
	memcpy(&c->dst, dst, dstlen < sizeof(c->dst) ? dstlen : sizeof(c->dst));
	c->dstlen = dstlen < sizeof(c->dst) ? dstlen : sizeof(c->dst);
	evref_init(&c->ref, real_free, c);

	fd = open_socket(conf, dst);
	if (fd < 0 || (c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		if (fd >= 0)
			close(fd);
		real_free(c); /* the reader and the request's TLSA copies too */
		return NULL;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	enter(c, C_CONNECTING);
	return c;
}

bool
smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY && !evref_closing(&c->ref);
}

int
smtpc_send(struct smtpc *c, const struct smtpc_msg *m)
{
	if (!smtpc_usable(c) || m->nrcpts == 0)
		return -1;
	smtpc_tx_begin(c, m);
	if (m->t_sent != NULL)
		*m->t_sent = util_now_ms();
	enter(c, C_MAIL);
	return 0;
}

const char *
smtpc_stage_name(enum smtpc_stage st)
{
	static const char *const name[] = {"connect", "banner",   "ehlo",         "starttls",
	                                   "lost",    "protocol", "tls_required", "tls_verify"};

	return (unsigned)st < sizeof(name) / sizeof(name[0]) ? name[st] : "unknown";
}

void
smtpc_quit(struct smtpc *c)
{
	memset(&c->cbs, 0, sizeof(c->cbs));
	if (!smtpc_usable(c)) {
		smtpc_free(c);
		return;
	}
	enter(c, C_QUIT);
}

const struct tls_outcome *
smtpc_tls_outcome(const struct smtpc *c)
{
	return &c->out;
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
