/*
 * listener: bound sockets, accept, and the caps checked before the banner
 * (global and per client address). Sockets are bound before privileges are
 * dropped; accepting starts with listeners_enable once the daemon is ready.
 */
#include "mta/smtpd/smtpd_int.h"
#include "mta/reply.h"

#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/cidr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/server.h"

static void
on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	const char *why;
	char ip[64];

	cidr_addr_text(sa, ip, sizeof(ip));
	if (srv->draining) {
		smtpd_refuse_fd(l, fd, R_SHUTTING_DOWN_RETRY);
		log_info("event=refused ip=%s reason=shutting_down", ip);
		return;
	}
	if (l->conf->proxy_protocol) {
		/* the balancer's PROXY header comes first, before caps per client and TLS */
		proxy_accept(l, fd, sa, (socklen_t)salen);
		return;
	}
	if (smtpd_slot_take(srv, sa, &why) == 0) {
		session_start(l, fd, sa, (socklen_t)salen, false);
		return;
	}
	log_warn("event=refused ip=%s reason=%s listener=%s", ip, why, l->conf->name);
	if (l->conf->tls == LTLS_IMPLICIT && strcmp(why, "max_connections_per_ip") == 0) {
		/* counted too: unfinished handshakes must not fill every slot */
		if (peers_take(srv, sa, REFUSAL_CAP(srv->cfg->max_connections_per_ip)) != 0) {
			close(fd);
			return;
		}
		session_start(l, fd, sa, (socklen_t)salen, true);
		return;
	}
	smtpd_refuse_fd(l, fd, R_TOO_MANY_CONNS);
}

static void
on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	/* EMFILE and friends: log, keep listening; libevent retries on the next readiness */
	log_err("event=accept_error listener=%s error=\"%s\"", l->conf->name, strerror(errno));
}

static int
bind_one(const struct listener_conf *lc, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lc->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&lc->addr, lc->addrlen) != 0 || listen(fd, 511) != 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "[listener %s] %s: %s", lc->name, lc->address_text, strerror(errno));
	int e = errno; /* main.c tells a port in use (permanent) from a transient failure */
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

int
listeners_open(struct server *srv, char *err, size_t errlen)
{
	struct listener_conf *lc;
	struct listener **tail = &srv->listeners;

	for (lc = srv->cfg->listeners; lc; lc = lc->next) {
		int fd = bind_one(lc, err, errlen);
		if (fd < 0)
			return -1;
		struct listener *l = xcalloc(1, sizeof(*l));
		l->srv = srv;
		l->conf = lc;
		l->evl = evconnlistener_new(
		    srv->base, on_accept, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, -1, fd);
		if (l->evl == NULL) {
			close(fd);
			free(l);
			snprintf(err, errlen, "[listener %s] cannot watch socket", lc->name);
			return -1;
		}
		evconnlistener_set_error_cb(l->evl, on_accept_error);
		*tail = l;
		tail = &l->next;
	}
	return 0;
}

int
listeners_tls_init(struct server *srv, char *err, size_t errlen)
{
	struct listener *l;
	for (l = srv->listeners; l; l = l->next) {
		char e[512];
		tls_listener_free(&l->tls);
		if (tls_listener_init(&l->tls, l->conf, srv->cfg->data_dir, e, sizeof(e)) != 0) {
			snprintf(err, errlen, "[listener %s] TLS: %s", l->conf->name, e);
			return -1;
		}
	}
	return 0;
}

/* The section of next for l (same name), else l's own. */
static const struct listener_conf *
next_conf(const struct listener *l, const struct listener_conf *next)
{
	for (; next; next = next->next)
		if (strcmp(next->name, l->conf->name) == 0)
			return next;
	return l->conf;
}

int
listeners_tls_prepare(struct server *srv, const struct listener_conf *next,
                      struct tls_listener **out, char *err, size_t errlen)
{
	size_t n = 0, i = 0;
	struct listener *l;
	struct tls_listener *t;

	for (l = srv->listeners; l; l = l->next)
		n++;
	t = xcalloc(n ? n : 1, sizeof(*t));
	for (l = srv->listeners; l; l = l->next, i++) {
		const struct listener_conf *nc = next_conf(l, next);
		struct listener_conf tmp = *l->conf; /* what the socket runs with, new files */
		char e[512];
		tmp.cert = nc->cert;
		tmp.key = nc->key;
		if (tls_listener_init(&t[i], &tmp, srv->cfg->data_dir, e, sizeof(e)) != 0) {
			snprintf(err, errlen, "[listener %s] TLS: %s", l->conf->name, e);
			listeners_tls_discard(srv, t);
			return -1;
		}
	}
	*out = t;
	return 0;
}

void
listeners_tls_commit(struct server *srv, struct listener_conf *next, struct tls_listener *t)
{
	size_t i = 0;

	for (struct listener *l = srv->listeners; l; l = l->next, i++) {
		struct listener_conf *nc = (struct listener_conf *)next_conf(l, next);
		char *c = l->conf->cert, *k = l->conf->key;
		tls_listener_free(&l->tls); /* sessions on TLS hold their own reference */
		l->tls = t[i];
		/* the kept section names the files now loaded; next (freed later) the old ones */
		l->conf->cert = nc->cert;
		l->conf->key = nc->key;
		nc->cert = c;
		nc->key = k;
	}
	free(t);
}

void
listeners_tls_discard(struct server *srv, struct tls_listener *t)
{
	size_t i = 0;

	if (t == NULL)
		return;
	for (struct listener *l = srv->listeners; l; l = l->next, i++)
		tls_listener_free(&t[i]);
	free(t);
}

void
listeners_enable(struct server *srv)
{
	struct listener *l;
	for (l = srv->listeners; l; l = l->next) {
		evconnlistener_enable(l->evl);
		smtpd_limits_start(srv);
		log_info(
		    "event=listening listener=%s address=%s tls=%s", l->conf->name,
		    l->conf->address_text,
		    (const char *[]){"none", "starttls", "required", "implicit"}[l->conf->tls]);
	}
}

void
listeners_free(struct server *srv)
{
	struct listener *l, *n;
	proxy_accept_free_all(srv);
	smtpd_limits_stop(srv);
	for (l = srv->listeners; l; l = n) {
		n = l->next;
		evconnlistener_free(l->evl);
		tls_listener_free(&l->tls);
		free(l);
	}
	srv->listeners = NULL;
}
