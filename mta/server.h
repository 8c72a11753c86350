/*
 * server: the daemon's shared state, owned by the loop thread.
 * Sessions reach configuration only through srv->cfg at the moment of use
 * (never caching pointers across events), so SIGHUP can swap it safely.
 */
#ifndef MXRELAY_SERVER_H
#define MXRELAY_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "mta/smtpd/tls.h"

struct event_base;
struct event;
struct evconnlistener;
struct config;
struct creds;
struct async;
struct writer;
struct deliver;
struct sched;
struct ctl;
struct dkimsign;
struct session;
struct peer_table;
struct auth_table;
struct proxy_conn;

struct listener {
	struct server *srv;
	struct listener_conf *conf; /* owned by srv->cfg; kept across reloads */
	struct evconnlistener *evl;
	struct tls_listener tls;
	struct listener *next;
};

struct server {
	struct event_base *base;
	struct config *cfg;
	struct creds *creds; /* NULL: no credentials file, AUTH not offered */
	struct async *async;
	struct writer *writer;
	struct sched *sched;     /* when each message is tried (delivery/sched.h); NULL in tests */
	struct deliver *deliver; /* NULL only in tests that run intake alone */
	struct ctl *ctl;         /* control and submit sockets (control.h); NULL in tests */
	struct dkimsign *dkim;   /* NULL: no dkim_key configured */
	struct listener *listeners;
	struct session *sessions; /* all live sessions, for shutdown */
	unsigned nsessions;
	struct peer_table *peers;    /* sessions per client address */
	struct auth_table *authfail; /* failed AUTH per client address */
	struct proxy_conn *proxying; /* connections still sending their PROXY header */
	unsigned nproxying;          /* count of those, within max_connections */
	int draining;                /* SIGTERM seen: refuse new mail */
	uint64_t accepted, rejected; /* messages, for logs */
};

/*
 * Per-address slots an implicit-TLS client may hold in all, refusal
 * handshakes included: bounded (one address can't fill every slot) but with
 * room for a few refusals still closing.
 */
#define REFUSAL_CAP(cap) (2 * (cap) + 4)

/* listener.c */
int listeners_open(struct server *srv, char *err, size_t errlen); /* bind, as root */
int listeners_tls_init(struct server *srv, char *err, size_t errlen);
void listeners_enable(struct server *srv);
void listeners_free(struct server *srv);
/* Count one more session for sa unless it is at cap. 0 / -1. */
int peers_take(struct server *srv, const struct sockaddr *sa, unsigned cap);
void peers_release(struct server *srv, const struct sockaddr *sa);

/* proxy_accept.c: listeners with proxy_protocol read the header before the session */
/* Take fd from a balancer: check proxy_from and caps, then await its header. */
void proxy_accept(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen);
/* Close every connection still waiting for its header (at exit). */
void proxy_accept_free_all(struct server *srv);

/* smtpd/peers.c: failed-AUTH throttling per client address */
struct auth_table *authfail_new(void);
void authfail_free(struct auth_table *t);
/* Seconds the address is still refused AUTH (0: not blocked; checks in flight count). */
unsigned authfail_blocked(struct server *srv, const struct sockaddr *sa, time_t now);
/* A password check starts; it ends with authfail_record or authfail_clear. */
void authfail_begin(struct server *srv, const struct sockaddr *sa, time_t now);
/* A check for user failed: record it; returns the delay in milliseconds before answering it. */
unsigned authfail_record(struct server *srv, const struct sockaddr *sa, const char *user,
                         time_t now);
/* A check for user succeeded: user's failures from this address are forgiven, no other's. */
void authfail_clear(struct server *srv, const struct sockaddr *sa, const char *user);
/*
 * A blocked address was refused once more. Returns the refusals to log now
 * (this one included) or 0 to stay silent: one log line per address per minute.
 */
unsigned authfail_refused(struct server *srv, const struct sockaddr *sa, time_t now);

/* main.c: leave the loop once draining and nothing is left in flight */
void server_maybe_exit(struct server *srv);

/* smtpd/session.c */
/*
 * refuse_tls: an implicit-TLS client over its per-address cap: finish the
 * handshake, answer 421 inside TLS and close (counted per address like any
 * session, up to twice the cap; beyond that the connection is just closed).
 */
void session_start(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen,
                   bool refuse_tls);
/* SIGTERM: close idle sessions now (421), the rest after their transaction. */
void sessions_drain(struct server *srv);
/* Deadline passed: abort every session not waiting for the spool. */
void sessions_abort(struct server *srv);

#endif
