/*
 * event: the daemon's small layer over libevent for what every connection
 * type needs, so that SMTP sessions, PROXY header readers, control and
 * submit connections and outgoing SMTP connections all live and die the
 * same way.
 *
 * Deferred free, one idiom for all: a connection embeds a struct evref.
 * Every entry point from the loop (a bufferevent or timer callback, the
 * completion of work handed to a worker or to the spool writer) is
 * bracketed by evref_enter/evref_leave, and so is every wait for such a
 * completion (enter when handing the work over, leave in its done()). A
 * close from any depth (evref_close) only marks the object; it is freed by
 * the last leave, or at once when nothing holds it. After evref_leave
 * returned false the object is gone and must not be touched.
 *
 * Timers: loop_timer_* wrap one-shot and repeating libevent timers in
 * milliseconds.
 */
#ifndef MXRELAY_EVENT_H
#define MXRELAY_EVENT_H

#include <stdbool.h>

struct event_base;
struct event;

struct evref {
	unsigned holds; /* handlers running plus outstanding waits */
	bool closing;   /* evref_close was called: free at holds == 0 */
	void (*free_fn)(void *obj);
	void *obj;
};

/* free_fn(obj) frees the connection (and must not call back into evref). */
void evref_init(struct evref *r, void (*free_fn)(void *obj), void *obj);

/* A handler starts, or a wait for a worker/writer completion begins. */
void evref_enter(struct evref *r);

/* The handler or the wait ends. false: the object was freed just now. */
bool evref_leave(struct evref *r);

/* Free the object as soon as nothing holds it (now, if nothing does). Idempotent. */
void evref_close(struct evref *r);

/* evref_close was called: the object is going away, start nothing new on it. */
bool evref_closing(const struct evref *r);

typedef void (*loop_timer_fn)(void *arg);

/*
 * A timer on base; fn(arg) runs on the loop thread, once per arming, or
 * every period while armed when repeat. NULL only on allocation failure.
 */
struct event *loop_timer_new(struct event_base *base, bool repeat, loop_timer_fn fn, void *arg);

/* (Re)arm: fire after ms milliseconds (and every ms milliseconds when repeating). */
void loop_timer_add(struct event *ev, unsigned ms);

/* Disarm without freeing. */
void loop_timer_stop(struct event *ev);

/* Disarm and free; NULL is fine. */
void loop_timer_free(struct event *ev);

#endif
