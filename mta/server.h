/*
 * server: the daemon's shared state, owned by the loop thread.
 * Sessions reach configuration only through srv->cfg at the moment of use
 * (never caching pointers across events), so SIGHUP can swap it safely.
 * What smtpd/ defines is opaque here (smtpd/smtpd.h). Nothing below main.c
 * calls up into it: while draining, main.c itself watches the counts below
 * (and deliver_busy, ctl_busy) to leave the loop.
 */
#ifndef MXRELAY_SERVER_H
#define MXRELAY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct event_base;
struct event;
struct config;
struct creds;
struct async;
struct writer;
struct deliver;
struct sched;
struct ctl;
struct dkimsign;
struct session;
struct listener;
struct peers;
struct proxy_conn;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct cidr;
struct server;

/* One address's failed-AUTH state (smtpd/peers.c), as the control socket shows it. */
struct authfail_info {
	char addr[64];        /* "192.0.2.7", or an IPv6 /64's first address */
	int prefix;           /* 32, or 64: IPv6 failures are kept per /64 */
	unsigned failures;    /* not aged out yet */
	time_t blocked_until; /* AUTH refused until then (past: not blocked) */
	time_t last;          /* the last failure or check */
};

/*
 * smtpd/peers.c's failed-AUTH table as control/ (mxrelayctl unblock) uses
 * it: control/ may not include smtpd/, so main.c points srv->authfail at
 * these. Loop thread only. Each returns how many entries there are (or
 * were cleared) in all and copies the first max of them into out.
 */
struct authfail_ops {
	/* Addresses with failures or a block at now. */
	size_t (*list)(struct server *srv, time_t now, struct authfail_info *out, size_t max);
	/* Forget the state of the addresses inside net (NULL: all): AUTH works at once again. */
	size_t (*clear)(struct server *srv, const struct cidr *net, time_t now,
	                struct authfail_info *out, size_t max);
};

struct server {
	struct event_base *base;
	struct config *cfg;
	unsigned cfg_gen; /* bumped by each reload: what was decided under an older cfg is stale */
	struct creds *creds; /* NULL: no credentials file, AUTH not offered */
	struct async *async;
	struct writer *writer;
	struct sched *sched;     /* when each message is tried (delivery/sched.h); NULL in tests */
	struct deliver *deliver; /* NULL only in tests that run intake alone */
	struct ctl *ctl;         /* control and submit sockets (control.h); NULL in tests */
	struct dkimsign *dkim;   /* NULL: no dkim_key configured */
	/* the outbound TLS client context (delivery/smtpc_tls.h): made before the
	 * privilege drop, as tls_ca_file and tls_client_key may be root's alone */
	struct ssl_ctx_st *client_tls;
	struct listener *listeners; /* smtpd/smtpd.h */
	struct session *sessions;   /* all live sessions, for shutdown */
	unsigned nsessions;
	struct peers *peers;         /* per client address: sessions, failed AUTH (smtpd/peers.h) */
	const struct authfail_ops *authfail; /* peers.c's, for control/ (set by main.c; NULL in tests) */
	struct proxy_conn *proxying; /* connections still sending their PROXY header */
	unsigned nproxying;          /* count of those, within max_connections */
	unsigned nevicting;          /* sessions closing after an eviction: no longer counted */
	struct event *smtpd_sweep;   /* smtpd/limits.c: the once-a-second deadline check */
	int draining;                /* SIGTERM seen: refuse new mail */
	/*
	 * main.c's reload (reload.h's reload_run), for the control socket's
	 * RELOAD: lower layers reach it only through this pointer. NULL in tests.
	 */
	int (*reload)(struct server *srv, char *err, size_t errlen, char *notes, size_t noteslen);
	uint64_t accepted, rejected; /* messages, for logs */
};

#endif
