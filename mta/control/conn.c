/*
 * ctl_conn: a control or submit connection's reply and lifetime (conn.h).
 * Below control.c, queue.c and submit.c: it calls none of them.
 */
#include "mta/control/conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>

#include "mta/control/jsonw.h"

void
ctl_conn_leave(struct ctl_conn *c)
{
	if (c->waiting && !c->wait_held && !c->closed) {
		c->wait_held = true;
		evref_enter(&c->ref);
	}
	evref_leave(&c->ref);
}

void
ctl_conn_close(struct ctl_conn *c)
{
	if (evref_closing(&c->ref))
		return;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evref_close(&c->ref);
}

void
ctl_reply(struct ctl_conn *c, struct evbuffer *doc)
{
	evref_enter(&c->ref); /* the wait's completion may end here: c lives to the end */
	if (c->wait_held) {
		c->wait_held = false;
		evref_leave(&c->ref);
	}
	c->waiting = false;
	if (c->closed || evref_closing(&c->ref)) {
		evbuffer_drain(doc, evbuffer_get_length(doc));
		ctl_conn_close(c);
	} else {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		evbuffer_add_buffer(out, doc);
		evbuffer_add(out, "\n", 1);
		c->replied = true;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_enable(c->bev, EV_WRITE);
	}
	evref_leave(&c->ref);
}

void
ctl_error(struct ctl_conn *c, const char *code, const char *fmt, ...)
{
	char text[1024];
	struct evbuffer *b = evbuffer_new();
	struct jw w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "error", text);
	if (code)
		jw_str(&w, "code", code);
	jw_end(&w);
	ctl_reply(c, b);
	evbuffer_free(b);
}
