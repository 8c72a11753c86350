/* event: deferred free and timers on the loop (see event.h). */
#include "mta/event.h"

#include <event2/event.h>
#include <stdlib.h>

void
evref_init(struct evref *r, void (*free_fn)(void *obj), void *obj)
{
	r->holds = 0;
	r->closing = false;
	r->free_fn = free_fn;
	r->obj = obj;
}

void
evref_enter(struct evref *r)
{
	r->holds++;
}

bool
evref_leave(struct evref *r)
{
	if (r->holds > 0)
		r->holds--;
	if (r->holds == 0 && r->closing) {
		r->closing = false; /* free_fn runs once, even if it re-enters */
		r->holds = 1;
		r->free_fn(r->obj);
		return false;
	}
	return true;
}

void
evref_close(struct evref *r)
{
	if (r->closing)
		return;
	r->closing = true;
	if (r->holds == 0) {
		r->holds = 1;
		r->closing = false;
		r->free_fn(r->obj);
	}
}

bool
evref_closing(const struct evref *r)
{
	return r->closing;
}

/* A timer's context: the callback and its argument, freed with the event. */
struct loop_timer {
	loop_timer_fn fn;
	void *arg;
};

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct loop_timer *t = arg;
	t->fn(t->arg);
}

struct event *
loop_timer_new(struct event_base *base, bool repeat, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t = malloc(sizeof(*t));
	struct event *ev;

	if (t == NULL)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	ev = event_new(base, -1, repeat ? EV_PERSIST : 0, on_timer, t);
	if (ev == NULL)
		free(t);
	return ev;
}

void
loop_timer_add(struct event *ev, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(ev, &tv);
}

void
loop_timer_stop(struct event *ev)
{
	if (ev)
		event_del(ev);
}

void
loop_timer_free(struct event *ev)
{
	if (ev == NULL)
		return;
	free(event_get_callback_arg(ev));
	event_free(ev);
}
