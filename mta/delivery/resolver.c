/* resolver: the dns module on libevent (see resolver.h). */
#include "mta/delivery/resolver.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "mta/event.h"

/* One watched socket. c-ares keeps a handful open (one per server, UDP/TCP). */
struct rsock {
	int fd;
	struct event *ev;
	struct rsock *next;
};

struct resolver {
	struct event_base *base;
	struct dns *dns;
	struct event *timer;
	struct rsock *socks;
};

static void
on_io(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	/* may close fd and free its rsock: touch nothing of it afterwards */
	dns_process(r->dns, (int)fd, (what & EV_READ) != 0, (what & EV_WRITE) != 0);
}

static void
on_timer(void *arg)
{
	struct resolver *r = arg;

	dns_timeouts(r->dns);
}

/* dns_timer_cb: re-arm the timer from dns_next_timeout. */
static void
rearm(void *arg)
{
	struct resolver *r = arg;
	int ms;

	if (r->dns == NULL)
		return; /* still inside dns_new */
	ms = dns_next_timeout(r->dns);
	if (ms < 0)
		loop_timer_stop(r->timer);
	else
		loop_timer_add(r->timer, (unsigned)ms);
}

/* dns_sock_cb: (re)register fd for the wanted directions, or forget it. */
static void
on_sock(void *arg, int fd, bool readable, bool writable)
{
	struct resolver *r = arg;
	struct rsock **pp, *s;
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	for (pp = &r->socks; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	if ((s = *pp) != NULL && s->ev) {
		event_free(s->ev); /* also when called from s->ev's own callback: allowed */
		s->ev = NULL;
	}
	if (what == 0) {
		if (s) {
			*pp = s->next;
			free(s);
		}
		return;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof *s)) == NULL)
			return; /* the query times out instead of hearing its answer */
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	}
	s->ev = event_new(r->base, fd, (short)(what | EV_PERSIST), on_io, r);
	if (s->ev)
		event_add(s->ev, NULL);
}

struct resolver *
resolver_new(struct event_base *base, const struct dns_opts *o, char *err, size_t errlen)
{
	struct resolver *r = calloc(1, sizeof *r);

	if (r == NULL) {
		snprintf(err, errlen, "resolver: out of memory");
		return NULL;
	}
	r->base = base;
	if ((r->timer = loop_timer_new(base, false, on_timer, r)) == NULL) {
		snprintf(err, errlen, "resolver: cannot create timer");
		goto fail;
	}
	if ((r->dns = dns_new(o, on_sock, rearm, r, err, errlen)) == NULL)
		goto fail;
	return r;
fail:
	resolver_free(r);
	return NULL;
}

struct dns *
resolver_dns(struct resolver *r)
{
	return r->dns;
}

void
resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	dns_free(r->dns); /* reports every socket closed through on_sock */
	r->dns = NULL;
	while (r->socks) {
		struct rsock *s = r->socks;
		r->socks = s->next;
		if (s->ev)
			event_free(s->ev);
		free(s);
	}
	loop_timer_free(r->timer);
	free(r);
}
