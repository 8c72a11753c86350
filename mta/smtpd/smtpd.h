/*
 * smtpd: the public face of mta/smtpd/ for main.c: the listeners, the
 * sessions as a whole (start, drain, abort) and the per-address table
 * (peers.h). Everything else in the folder is internal (smtpd_int.h).
 *
 * Loop thread only. struct server (server.h) holds only opaque pointers to
 * what is defined here.
 */
#ifndef MXRELAY_SMTPD_H
#define MXRELAY_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "mta/smtpd/peers.h"
#include "mta/smtpd/tls.h"

struct server;
struct listener_conf;
struct evconnlistener;

struct listener {
	struct server *srv;
	struct listener_conf *conf; /* owned by srv->cfg; kept across reloads */
	struct evconnlistener *evl;
	struct tls_listener tls;
	struct listener *next;
};

/* listener.c */
int listeners_open(struct server *srv, char *err, size_t errlen); /* bind, as root */
int listeners_tls_init(struct server *srv, char *err, size_t errlen);
void listeners_enable(struct server *srv);
/*
 * Reload, in two steps so that a bad file changes nothing: prepare builds
 * new contexts for every listener from the cert and key of its section in
 * next (same name; its own when next has none), with everything else as
 * the socket runs now; 0, or -1 with err naming the listener and the file
 * (nothing to discard then). commit puts them in place (sessions already
 * on TLS keep the old context: each SSL holds a reference) and swaps the
 * cert/key strings, so the kept sections name the loaded files and next's
 * the old ones; it frees t. discard frees t unused.
 */
int listeners_tls_prepare(struct server *srv, const struct listener_conf *next,
                          struct tls_listener **t, char *err, size_t errlen);
void listeners_tls_commit(struct server *srv, struct listener_conf *next, struct tls_listener *t);
void listeners_tls_discard(struct server *srv, struct tls_listener *t);
/* Close the sockets and the connections still sending a PROXY header. */
void listeners_free(struct server *srv);

/* sunset.c: start-up warnings for sunset dates within 30 days or past */
struct config;
struct creds;
void smtpd_sunset_startup(const struct config *c, const struct creds *cr, time_t now);

/* proxy_accept.c: listeners with proxy_protocol read the header before the session */
/* Take fd from a balancer: check proxy_from and caps, then await its header. */
void proxy_accept(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen);
/* Close every connection still waiting for its header (at exit). */
void proxy_accept_free_all(struct server *srv);

/* session.c */
/*
 * refuse_tls: an implicit-TLS client over its per-address cap: finish the
 * handshake, answer 421 inside TLS and close (counted per address like any
 * session, up to twice the cap; beyond that the connection is just closed).
 * The session owns fd from here, and one peers_take for sa.
 */
void session_start(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen,
                   bool refuse_tls);
/* SIGTERM: close idle sessions now (421), the rest after their transaction. */
void sessions_drain(struct server *srv);
/* Deadline passed: abort every session not waiting for the spool. */
void sessions_abort(struct server *srv);

#endif
