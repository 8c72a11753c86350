/* ctl internals shared by control.c (sockets, connections), control/queue.c (queue
 * commands) and submit.c (SUBMIT). Not for other modules: they use control.h. */
#ifndef MXRELAY_CTL_INT_H
#define MXRELAY_CTL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mta/control/control.h"
#include "mta/event.h"

#define CTL_LINE_MAX 1024 /* request and envelope lines, incl. LF */

struct bufferevent;
struct evbuffer;
struct submit;

struct ctl_conn {
	struct ctl *ctl;
	struct server *srv;
	struct bufferevent *bev;
	struct ctl_conn *prev, *next;
	char id[16];      /* "c=..." in logs */
	bool submit_sock; /* came in on the submit socket */
	uid_t uid;        /* peer credentials (SO_PEERCRED) */
	pid_t pid;
	struct evref ref; /* callbacks and the wait hold it (mta/event.h) */
	bool waiting;     /* a worker or the writer has work for us: input paused */
	bool wait_held;   /* the wait's hold on ref, given back by ctl_reply */
	bool closed;      /* the peer left while we waited: free when the wait ends */
	bool replied;
	struct submit *sub; /* SUBMIT in progress (submit.c) */
};

/*
 * Send doc's content (one JSON document) and a newline, then close once it is
 * written. doc is drained, not freed. If the peer already left, the connection
 * is simply released. The connection must not be used after this call.
 * It also ends the wait a handler started by setting c->waiting (work handed
 * to a worker or the writer): every such wait ends in one ctl_reply/ctl_error.
 */
void ctl_reply(struct ctl_conn *c, struct evbuffer *doc);

/* {"error": text[, "code": code]} through ctl_reply. code may be NULL. */
void ctl_error(struct ctl_conn *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* control/queue.c: one handler per control verb; arg is the rest of the line (may be "") */
void ctlq_list(struct ctl_conn *c, char *arg);
void ctlq_show(struct ctl_conn *c, char *arg);
void ctlq_summary(struct ctl_conn *c, char *arg);
void ctlq_flush(struct ctl_conn *c, char *arg);
void ctlq_hold(struct ctl_conn *c, char *arg);
void ctlq_release(struct ctl_conn *c, char *arg);
void ctlq_delete(struct ctl_conn *c, char *arg);
void ctlq_bounce(struct ctl_conn *c, char *arg);

/* submit.c: "SUBMIT" read; the envelope and body follow on the same connection */
void submit_start(struct ctl_conn *c, char *arg);
/* Consume input of a SUBMIT in progress (it may reply and finish). */
void submit_feed(struct ctl_conn *c, struct evbuffer *in);
void submit_free(struct submit *sub);

#endif
