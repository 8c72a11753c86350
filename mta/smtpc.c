/*
 * smtpc: outbound SMTP client state machine (see smtpc.h).
 * One shape for every state: entering a state sends its command(s); the
 * reply decides the next state. With PIPELINING, MAIL, every RCPT and DATA
 * go out in one write and their replies are matched in order (RFC 2920 3.1).
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

#define REPLY_LINE_MAX 2048
#define REPLY_LINES_MAX 256

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
	bool ext_pipelining, ext_8bit, ext_utf8, ext_starttls, ext_size;
	unsigned long long size_max;
	bool tls_on;
	char tls_ver[16];
	struct smtpc_reply cur;		/* reply being read */
	int cur_lines;
	bool cur_first_done;
	/* the transaction */
	struct smtpc_msg m;
	struct smtpc_reply *rr;		/* per recipient */
	bool *rcpt_ok;
	struct smtpc_reply mail_reply;
	bool mail_ok, any_ok;
	size_t expect;			/* 0 MAIL, 1..n RCPT, n+1 DATA */
	int in_cb;
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
	if (c->in_cb) {
		c->free_pending = true;
		return;
	}
	real_free(c);
}

/* After a callback: false when the object is gone and must not be touched. */
static bool
cb_end(struct smtpc *c)
{
	if (--c->in_cb == 0 && c->free_pending) {
		real_free(c);
		return false;
	}
	return true;
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
}

static void
set_timeout(struct smtpc *c, unsigned read_s)
{
	struct timeval r = {(time_t)read_s, 0}, w = {(time_t)c->conf.t_block, 0};
	bufferevent_set_timeouts(c->bev, &r, &w);
}

static void
local_reply(struct smtpc_reply *r, int code, const char *fmt, ...)
{
	va_list ap;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* The connection failed outside a transaction. Returns false: c may be gone. */
static bool
fail(struct smtpc *c, enum smtpc_stage st, const struct smtpc_reply *why)
{
	c->state = C_DEAD;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->cbs.fail == NULL)
		return true;
	c->in_cb++;
	c->cbs.fail(c, c->arg, st, why);
	return cb_end(c);
}

static bool
ready(struct smtpc *c)
{
	c->state = C_READY;
	set_timeout(c, 300);	/* idle in the connection cache */
	if (c->cbs.ready == NULL)
		return true;
	c->in_cb++;
	c->cbs.ready(c, c->arg);
	return cb_end(c);
}

/* The transaction is over: hand every recipient's reply to the owner. */
static bool
finish(struct smtpc *c, bool alive)
{
	c->state = alive ? C_READY : C_DEAD;
	if (alive)
		set_timeout(c, 300);
	if (c->cbs.result == NULL)
		return true;
	c->in_cb++;
	c->cbs.result(c, c->arg, c->rr, c->m.nrcpts);
	return cb_end(c);
}

static void
send_ehlo(struct smtpc *c, enum cstate st)
{
	c->ext_pipelining = c->ext_8bit = c->ext_utf8 = c->ext_starttls = c->ext_size = false;
	c->size_max = 0;
	sendf(c, "%s %s", st == C_HELO ? "HELO" : "EHLO", c->helo);
	c->state = st;
	set_timeout(c, c->conf.t_cmd);
}

/* One EHLO keyword line (without the "250-" prefix). */
static void
ehlo_keyword(struct smtpc *c, const char *kw)
{
	if (util_strncaseeq(kw, "PIPELINING", 11))
		c->ext_pipelining = true;
	else if (util_strncaseeq(kw, "8BITMIME", 9))
		c->ext_8bit = true;
	else if (util_strncaseeq(kw, "SMTPUTF8", 9))
		c->ext_utf8 = true;
	else if (util_strncaseeq(kw, "STARTTLS", 9))
		c->ext_starttls = true;
	else if (util_strncaseeq(kw, "SIZE", 4) && (kw[4] == '\0' || kw[4] == ' ')) {
		c->ext_size = true;
		c->size_max = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
	}
}

static bool
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
	bufferevent_setcb(tb, on_read, NULL, on_event, c);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	c->state = C_HANDSHAKE;
	set_timeout(c, c->conf.t_cmd);
	return true;
fail:
	local_reply(&why, 0, "TLS setup failed");
	return fail(c, SMTPC_TLS, &why);
}

static void
send_next_rcpt_or_data(struct smtpc *c)
{
	/* without PIPELINING: one command at a time, expect is the next to send */
	if (c->expect <= c->m.nrcpts)
		sendf(c, "RCPT TO:<%s>", c->m.rcpts[c->expect - 1]);
	else
		sendf(c, "DATA");
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
	c->state = C_DOT;
	set_timeout(c, c->conf.t_dot);
}

/* A reply inside the transaction; expect says which command it answers. */
static bool
tx_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	size_t n = c->m.nrcpts, i;
	bool ok = r->code >= 200 && r->code < 300;

	if (c->expect == 0) {
		c->mail_reply = *r;
		c->mail_ok = ok;
		if (!ok)
			for (i = 0; i < n; i++)
				c->rr[i] = *r;
		c->expect = 1;
		if (!c->ext_pipelining) {
			if (!ok)
				return finish(c, true);
			send_next_rcpt_or_data(c);
		}
		return true;
	}
	if (c->expect <= n) {
		i = c->expect - 1;
		if (c->mail_ok) {
			c->rr[i] = *r;
			c->rcpt_ok[i] = ok;
			c->any_ok |= ok;
		}
		c->expect++;
		if (!c->ext_pipelining) {
			if (c->expect > n && !c->any_ok) {
				sendf(c, "RSET");
				c->state = C_RSET;
				return true;
			}
			send_next_rcpt_or_data(c);
		}
		return true;
	}
	/* DATA */
	if (r->code == 354) {
		if (c->any_ok) {
			send_body(c);
			return true;
		}
		/* a server that says 354 with no valid recipient gets an empty message */
		evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
		c->state = C_DOT;
		return true;
	}
	for (i = 0; i < n; i++)
		if (c->rcpt_ok[i])
			c->rr[i] = *r;
	if (c->mail_ok) {
		/* DATA refused after an accepted MAIL: the server still holds the
		 * transaction, and the next MAIL would read 503 "nested MAIL" */
		sendf(c, "RSET");
		c->state = C_RSET;
		return true;
	}
	return finish(c, true);
}

static bool
handle_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	int cls = r->code / 100;
	size_t i;

	switch (c->state) {
	case C_BANNER:
		if (cls != 2)
			return fail(c, SMTPC_BANNER, r);
		send_ehlo(c, C_EHLO);
		return true;
	case C_EHLO:
	case C_EHLO2:
		if (cls == 2) {
			if (c->state == C_EHLO && c->ext_starttls && c->conf.tls) {
				sendf(c, "STARTTLS");
				c->state = C_STARTTLS;
				return true;
			}
			return ready(c);
		}
		if (c->state == C_EHLO && cls == 5) {
			send_ehlo(c, C_HELO);	/* an old server: RFC 5321 3.2 */
			return true;
		}
		return fail(c, SMTPC_EHLO, r);
	case C_HELO:
		return cls == 2 ? ready(c) : fail(c, SMTPC_EHLO, r);
	case C_STARTTLS:
		if (r->code == 220)
			return start_tls(c);
		return ready(c);	/* opportunistic: carry on in plaintext */
	case C_TX:
		return tx_reply(c, r);
	case C_RSET:
		return finish(c, cls == 2);
	case C_DOT:
		for (i = 0; i < c->m.nrcpts; i++)
			if (c->rcpt_ok[i])
				c->rr[i] = *r;
		/* a reply before the server had all of the body: our output still
		 * references the body (freed once the outcome is recorded), and the
		 * rest would be read as commands: never reuse such a connection */
		return finish(c, evbuffer_get_length(bufferevent_get_output(c->bev)) == 0);
	case C_QUIT:
		smtpc_free(c);
		return false;
	default:
		return true;	/* unexpected: ignore */
	}
}

/* Parse one reply line into c->cur. 1: reply complete, 0: more lines, -1: garbage. */
static int
reply_line(struct smtpc *c, const char *line, size_t len)
{
	int code;
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (c->cur_lines > 0 && code != c->cur.code)
		return -1;
	if (++c->cur_lines > REPLY_LINES_MAX)
		return -1;
	c->cur.code = code;
	if ((c->state == C_EHLO || c->state == C_EHLO2) && c->cur_lines > 1 && len > 4)
		ehlo_keyword(c, line + 4);
	if (c->cur_lines == 1 || len <= 3 || line[3] == ' ') {
		/* keep the first line; append the last one when they differ */
		size_t have = c->cur_lines == 1 ? 0 : strlen(c->cur.text);
		char clean[sizeof(c->cur.text)];
		log_sanitize(clean, sizeof(clean), line, len);
		if (c->cur_lines == 1)
			snprintf(c->cur.text, sizeof(c->cur.text), "%s", clean);
		else if (have + 3 < sizeof(c->cur.text))
			snprintf(c->cur.text + have, sizeof(c->cur.text) - have, " / %s", clean);
	}
	return len > 3 && line[3] == '-' ? 0 : 1;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct smtpc_reply why;

	for (;;) {
		size_t len;
		char *line;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX)
				goto garbage;
			return;
		}
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			return;
		int rc = len > REPLY_LINE_MAX ? -1 : reply_line(c, line, len);
		free(line);
		if (rc < 0)
			goto garbage;
		if (rc == 0)
			continue;
		struct smtpc_reply r = c->cur;
		c->cur_lines = 0;
		memset(&c->cur, 0, sizeof(c->cur));
		if (!handle_reply(c, &r))
			return;
		if (c->state == C_DEAD || c->state == C_HANDSHAKE)
			return;	/* the TLS filter reads from here on */
	}
garbage:
	local_reply(&why, 0, "protocol error: malformed reply from %s", c->peer);
	if (c->state == C_TX || c->state == C_DOT || c->state == C_RSET) {
		for (size_t i = 0; i < c->m.nrcpts; i++)
			if (c->state != C_DOT || c->rcpt_ok[i] || c->expect <= i + 1)
				local_reply(&c->rr[i], 451, "451 4.5.0 %s", why.text);
		finish(c, false);
		return;
	}
	/* on a parked connection (C_READY) this is SMTPC_LOST, never a connect failure */
	fail(c, stage_of(c->state), &why);
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
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_reply why;
	const char *how;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECTING) {
			c->state = C_BANNER;
			set_timeout(c, c->conf.t_banner);
			return;
		}
		if (c->state == C_HANDSHAKE) {
			SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
			c->tls_on = true;
			snprintf(c->tls_ver, sizeof(c->tls_ver), "%s", SSL_get_version(ssl));
			send_ehlo(c, C_EHLO2);	/* RFC 3207 4.2: start over after TLS */
		}
		return;
	}
	if (c->state == C_QUIT) {
		smtpc_free(c);
		return;
	}
	how = (what & BEV_EVENT_TIMEOUT) ? "timeout"
	      : (what & BEV_EVENT_EOF)	 ? "connection closed"
					 : strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : EIO);
	if (c->state == C_HANDSHAKE) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e) {
			char buf[200];
			ERR_error_string_n(e, buf, sizeof(buf));
			local_reply(&why, 0, "TLS handshake with %s failed: %s", c->peer, buf);
			fail(c, SMTPC_TLS, &why);
			return;
		}
	}
	if (c->state == C_TX || c->state == C_DOT || c->state == C_RSET) {
		/* lost mid-transaction: every undecided recipient is deferred */
		for (size_t i = 0; i < c->m.nrcpts; i++)
			if (c->state == C_DOT ? c->rcpt_ok[i] : (c->rr[i].code == 0 || c->rcpt_ok[i]))
				local_reply(&c->rr[i], 451, "451 4.4.2 %s with %s during %s", how,
					    c->peer, c->state == C_DOT ? "data" : "transaction");
		finish(c, false);
		return;
	}
	local_reply(&why, 0, "%s %s%s", how,
		    c->state == C_CONNECTING ? "connecting to " : "with ", c->peer);
	fail(c, stage_of(c->state), &why);
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
	c->mail_ok = c->any_ok = false;
	c->expect = 0;
	if (c->ext_size)
		snprintf(extra, sizeof(extra), " SIZE=%zu", m->body_len);
	if (m->need_8bit && c->ext_8bit)
		strcat(extra, " BODY=8BITMIME");
	if (m->need_utf8)
		strcat(extra, " SMTPUTF8");
	sendf(c, "MAIL FROM:<%s>%s", m->sender, extra);
	if (c->ext_pipelining) {
		for (i = 0; i < n; i++)
			sendf(c, "RCPT TO:<%s>", m->rcpts[i]);
		sendf(c, "DATA");
	}
	c->state = C_TX;
	set_timeout(c, c->conf.t_cmd);
	return 0;
}

/* What the server lacks for this message, as a permanent local reply. 0: nothing. */
int
smtpc_check(const struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *why)
{
	if (m->need_utf8 && !c->ext_utf8) {
		local_reply(why, 553, "553 5.6.7 %s does not support SMTPUTF8 (RFC 6531)", c->peer);
		return -1;
	}
	if (m->need_8bit && !c->ext_8bit) {
		local_reply(why, 554,
			    "554 5.6.3 %s does not support 8BITMIME; conversion is not done", c->peer);
		return -1;
	}
	if (c->ext_size && c->size_max > 0 && m->body_len > c->size_max) {
		local_reply(why, 552, "552 5.3.4 message size %zu exceeds %s's limit %llu",
			    m->body_len, c->peer, c->size_max);
		return -1;
	}
	return 0;
}

bool
smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY;
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
	set_timeout(c, 5);
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
