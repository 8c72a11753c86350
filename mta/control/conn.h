/*
 * ctl_conn: one control or submit connection's output and lifetime, the
 * lowest file of control/: control.c (sockets, request line, dispatch),
 * queue.c and submit.c (the handlers) all answer through it, and it names
 * nothing of theirs. Not for other modules: they use control.h.
 *
 * Lifetime (mta/event.h): every bufferevent callback holds c while it runs,
 * and so does a wait for a worker or the writer (c->waiting when a callback
 * ends: taken then, given back by ctl_reply, which ends every wait). A close
 * frees c once nothing holds it, through the evref's free_fn that control.c
 * sets at accept (it owns the list of connections and the SUBMIT counts).
 */
#ifndef MXRELAY_CTL_CONN_H
#define MXRELAY_CTL_CONN_H

#include <stdbool.h>
#include <sys/types.h>

#include "mta/event.h"

struct bufferevent;
struct ctl;
struct evbuffer;
struct server;
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

/* The callback is done with c; a wait it started holds c on. c may be freed here. */
void ctl_conn_leave(struct ctl_conn *c);

/* Nothing more on c: freed once no callback or wait holds it (maybe now). */
void ctl_conn_close(struct ctl_conn *c);

#endif
