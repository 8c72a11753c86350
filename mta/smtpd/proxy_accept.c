/*
 * proxy_accept: connections on a listener with proxy_protocol (a load
 * balancer such as HAProxy in front of several relays).
 *
 * Before any session exists, the balancer's PROXY header is read from the
 * raw socket: so on an implicit-TLS listener it comes before the handshake,
 * and the session starts with the real client's address, so allowlist,
 * per-address caps, AUTH throttling, legacy-TLS ranges, logs and the spool
 * all see the client, not the balancer.
 *
 * Owns: the trust check (only proxy_from may send a header; a plain
 * connection on such a listener is refused too), the header deadline, and
 * moving the per-address count from the balancer to the client. Never sends
 * a byte before the header is parsed, except a refusal, and never reads a
 * byte past the header: what follows belongs to the session (or TLS).
 *
 * Lifetime (mta/event.h): each callback holds the connection; giving up
 * (pc_close) stops its events at once and frees it when the callback ends.
 */
#include "mta/smtpd/smtpd_int.h"
#include "mta/reply.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/cidr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/event.h"
#include "mta/server.h"
#include "mta/smtpd/proxy.h"

#define PROXY_HEADER_TIMEOUT 5 /* seconds; a balancer sends the header at once */

struct proxy_conn {
	struct evref ref;
	struct listener *lis;
	int fd;
	struct sockaddr_storage lb; /* the balancer: counted in srv->peers until handoff */
	socklen_t lblen;
	char lbip[64];
	struct event *rev;   /* readable */
	struct event *timer; /* absolute deadline: a trickle of bytes must not extend it */
	unsigned char buf[PROXY_HDR_MAX];
	size_t len; /* header bytes consumed from the socket so far */
	struct proxy_conn *prev, *next;
};

/* evref's free_fn: unlink and free pc; the fd is closed unless it was handed on (fd < 0). */
static void
pc_free(void *obj)
{
	struct proxy_conn *pc = obj;
	struct server *srv = pc->lis->srv;

	if (pc->prev)
		pc->prev->next = pc->next;
	else
		srv->proxying = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	srv->nproxying--;
	if (pc->rev)
		event_free(pc->rev); /* safe inside its own callback (libevent 2.1) */
	loop_timer_free(pc->timer);
	if (pc->fd >= 0)
		close(pc->fd);
	free(pc);
}

/* Done with pc: nothing fires on it any more; freed once no callback holds it. */
static void
pc_close(struct proxy_conn *pc)
{
	if (evref_closing(&pc->ref))
		return;
	if (pc->rev)
		event_del(pc->rev);
	loop_timer_stop(pc->timer);
	evref_close(&pc->ref);
}

/* Give up on the connection: refusal (R_NONE: none), release the balancer's slot. */
static void
pc_fail(struct proxy_conn *pc, enum reply_id refusal)
{
	struct server *srv = pc->lis->srv;

	if (refusal != R_NONE) {
		smtpd_refuse_fd(pc->lis, pc->fd, refusal);
		pc->fd = -1;
	}
	peers_release(srv, (struct sockaddr *)&pc->lb);
	pc_close(pc);
}

/* The header is in: start the session as the client (or as the balancer for LOCAL). */
static void
handoff(struct proxy_conn *pc, const struct proxy_hdr *h)
{
	struct listener *l = pc->lis;
	struct server *srv = l->srv;
	static const char *const cmds[] = {"proxy", "local", "unknown"};
	struct sockaddr_storage c; /* the client's (or for LOCAL the balancer's) address */
	socklen_t clen = pc->lblen;
	bool refuse_tls = false;
	char ip[64];
	int fd = pc->fd;

	memcpy(&c, &pc->lb, sizeof(c));
	if (h->cmd == PROXY_CMD_PROXY) {
		memcpy(&c, &h->src, sizeof(c));
		clen = h->srclen;
	}
	cidr_addr_text((struct sockaddr *)&c, ip, sizeof(ip));
	log_info("event=proxy lb=%s ip=%s listener=%s version=%u command=%s", pc->lbip, ip,
	         l->conf->name, h->version, cmds[h->cmd]);
	if (srv->draining) {
		log_info("event=refused ip=%s lb=%s reason=shutting_down", ip, pc->lbip);
		pc_fail(pc, R_SHUTTING_DOWN_RETRY);
		return;
	}
	if (h->cmd == PROXY_CMD_PROXY) {
		/* the per-address cap is the client's, not the balancer's */
		peers_release(srv, (struct sockaddr *)&pc->lb);
		/* as listener.c: an idle session of the client may make room (limits.c) */
		const char *why;
		if (smtpd_slot_take(srv, (struct sockaddr *)&c, &why) != 0) {
			log_warn("event=refused ip=%s lb=%s reason=%s listener=%s", ip, pc->lbip,
			         why, l->conf->name);
			if (l->conf->tls != LTLS_IMPLICIT) {
				smtpd_refuse_fd(l, fd, R_TOO_MANY_CONNS);
				pc->fd = -1;
				pc_close(pc);
				return;
			}
			/* as listener.c: 421 inside TLS, counted up to twice the cap */
			if (peers_take(srv, (struct sockaddr *)&c,
			               REFUSAL_CAP(srv->cfg->max_connections_per_ip)) != 0) {
				pc_close(pc); /* closes fd */
				return;
			}
			refuse_tls = true;
		}
	}
	pc->fd = -1; /* handed to the session */
	pc_close(pc);
	session_start(l, fd, (struct sockaddr *)&c, clen, refuse_tls);
}

/* The socket is readable: take header bytes, hand off once the header is whole. */
static void
read_header(struct proxy_conn *pc, evutil_socket_t fd)
{
	struct proxy_hdr h;
	ssize_t n, want;

	/*
	 * Peek, so bytes after the header (a TLS ClientHello, pipelined SMTP)
	 * stay in the socket for the session; consume only header bytes.
	 */
	n = recv(fd, pc->buf + pc->len, sizeof(pc->buf) - pc->len, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* a balancer's TCP health check connects and closes: not worth a warning */
		if (pc->len == 0 && n == 0)
			log_debug("event=proxy_closed lb=%s listener=%s", pc->lbip,
			          pc->lis->conf->name);
		else
			log_warn("event=proxy_failed lb=%s listener=%s reason=\"%s\"", pc->lbip,
			         pc->lis->conf->name,
			         n == 0 ? "closed inside the header" : strerror(errno));
		pc_fail(pc, R_NONE);
		return;
	}
	switch (proxy_parse(pc->buf, pc->len + (size_t)n, pc->lis->conf->proxy_protocol, &h)) {
	case PROXY_NEED_MORE:
		want = n; /* every byte so far is header: take them out of the socket */
		break;
	case PROXY_OK:
		if (h.len > pc->len) {
			want = (ssize_t)(h.len - pc->len); /* at most n: the rest is the client's */
			break;
		}
		h.error = "internal: header ends in bytes already taken";
		/* fall through */
	case PROXY_ERROR:
	default:
		log_warn("event=proxy_failed lb=%s listener=%s reason=\"%s\"", pc->lbip,
		         pc->lis->conf->name, h.error);
		/* take the bad bytes out: closing with unread input resets, losing the 421 */
		if (recv(fd, pc->buf + pc->len, (size_t)n, 0) < 0)
			log_debug("event=proxy_drain_failed lb=%s", pc->lbip);
		pc_fail(pc, R_PROXY_BAD);
		return;
	}
	if (recv(fd, pc->buf + pc->len, (size_t)want, 0) != want) {
		/* peeked bytes are there: only a broken socket lands here */
		log_warn("event=proxy_failed lb=%s listener=%s reason=\"%s\"", pc->lbip,
		         pc->lis->conf->name, "short read of peeked header");
		pc_fail(pc, R_NONE);
		return;
	}
	pc->len += (size_t)want;
	if (h.len > 0 && pc->len == h.len)
		handoff(pc, &h);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn *pc = arg;

	evref_enter(&pc->ref);
	if (!evref_closing(&pc->ref))
		read_header(pc, fd);
	evref_leave(&pc->ref);
}

static void
on_timeout(void *arg)
{
	struct proxy_conn *pc = arg;

	evref_enter(&pc->ref);
	if (!evref_closing(&pc->ref)) {
		log_warn(
		    "event=proxy_failed lb=%s listener=%s reason=\"no PROXY header within %ds\"",
		    pc->lbip, pc->lis->conf->name, PROXY_HEADER_TIMEOUT);
		pc_fail(pc, R_PROXY_TIMEOUT);
	}
	evref_leave(&pc->ref);
}

void
proxy_accept(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct server *srv = l->srv;
	struct proxy_conn *pc;
	char ip[64];

	cidr_addr_text(sa, ip, sizeof(ip));
	/* a header from anyone else would let them claim any address, allowlisted ones too */
	if (!cidr_list_match(&l->conf->proxy_from, sa)) {
		log_warn("event=refused ip=%s reason=not_proxy_from listener=%s", ip,
		         l->conf->name);
		smtpd_refuse_fd(l, fd, R_PROXY_UNTRUSTED);
		return;
	}
	/*
	 * Until the header is in, the connection counts against the balancer's
	 * address, and headers still awaited are capped on their own (each is
	 * bounded in time too): the session cap is judged at handoff, where an
	 * idle session can make room (limits.c), as on a plain listener.
	 */
	if (srv->nproxying >= srv->cfg->max_connections ||
	    peers_take(srv, sa, srv->cfg->max_connections_per_ip) != 0) {
		log_warn("event=refused ip=%s reason=%s listener=%s", ip,
		         srv->nproxying >= srv->cfg->max_connections ? "max_connections"
		                                                     : "max_connections_per_ip",
		         l->conf->name);
		smtpd_refuse_fd(l, fd, R_TOO_MANY_CONNS);
		return;
	}
	pc = xcalloc(1, sizeof(*pc));
	evref_init(&pc->ref, pc_free, pc);
	pc->lis = l;
	pc->fd = fd;
	memcpy(&pc->lb, sa, salen);
	pc->lblen = salen;
	memcpy(pc->lbip, ip, sizeof(ip));
	pc->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_readable, pc);
	pc->timer = loop_timer_new(srv->base, false, on_timeout, pc);
	pc->next = srv->proxying;
	if (pc->next)
		pc->next->prev = pc;
	srv->proxying = pc;
	srv->nproxying++;
	if (pc->rev == NULL || pc->timer == NULL || event_add(pc->rev, NULL) != 0) {
		log_err("event=session_error ip=%s reason=\"cannot set up connection\"", ip);
		pc_fail(pc, R_NONE);
		return;
	}
	/* an absolute deadline: a trickle of bytes must not extend it */
	loop_timer_add(pc->timer, PROXY_HEADER_TIMEOUT * 1000);
}

void
proxy_accept_free_all(struct server *srv)
{
	while (srv->proxying)
		pc_fail(srv->proxying, R_NONE);
}
