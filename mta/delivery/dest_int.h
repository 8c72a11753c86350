/*
 * dest_int: the structures of dest.c, shared with dest_tls.c (the outbound
 * TLS policy of a destination's connections). Private to mta/delivery/dest*.c.
 */
#ifndef MXRELAY_DEST_INT_H
#define MXRELAY_DEST_INT_H

#include "dns/dns.h"
#include "mta/delivery/dest.h"
#include "mta/delivery/sts.h"
#include "mta/delivery/tlspol.h"
#include "mta/delivery/tlsstats.h"
#include "mta/event.h"
#include "mta/shared/provider.h"

#define DEST_BUCKETS 1024
#define IDLE_SECONDS 5   /* keep an idle connection this long for reuse */
#define TARGETS_FRESH 30 /* seconds before asking dns/ again (it caches by TTL) */
#define SWEEP_MAX 60     /* seconds between sweeps at most */

struct dconn;

/* One provider group's backoff (dest_provider.c). */
struct prov_state {
	unsigned delay;  /* seconds between new connections to the group; 0: no backoff */
	int64_t next_ms; /* no new connection (or transaction) to the group before this */
	unsigned active; /* connections open to the group's MX hosts */
};

struct dests {
	struct server *srv;
	struct resolver *res;
	SSL_CTX *tls;           /* client context: TLS 1.2+, judged per session (smtpc_tls.h) */
	bool resolver_trusted;  /* DANE possible: dns_resolver_trusted() at start-up */
	struct tlsstats *stats; /* outbound TLS counters (TLS-RPT, tls report, metrics) */
	struct sts *sts;        /* MTA-STS policies (NULL: mta_sts = no) */
	struct dest_cbs cbs;
	struct dest *buckets[DEST_BUCKETS];
	unsigned nconns;     /* connections open, all destinations */
	struct event *sweep; /* frees destinations unused for a while */
	struct prov_state prov[PROVIDER__COUNT];
	void (*pump)(struct dest *d); /* dest.c's: start what can start (dest_provider.c's timer) */
};

struct dest {
	struct dests *ds;
	char domain[256];
	struct dgroup *qhead, *qtail;
	size_t qlen;
	unsigned active;     /* connections: connecting, busy or idle */
	unsigned connecting; /* not yet ready: each will take a group */
	unsigned window;
	struct dconn *idle;
	struct dconn *conns; /* every connection, idle or busy (for dests_free) */
	struct dns_query *q;
	int64_t q_start_ms; /* when q began, for the DNS latency histogram; 0: none */
	struct dns_target *t;
	size_t nt;
	time_t t_at;
	time_t used;            /* last group queued here */
	unsigned claim_waits;   /* messages' claims this waits for (cbs.claim) */
	struct tlspol_dest *tp; /* TLSA answers per MX host, MTA-STS policy */
	struct sts_wait *sw;    /* the MTA-STS policy being asked for, with the MX query */
	bool literal;           /* routed to an IP literal: only its tls_policy applies */
	/* TLS reports only (RFC 8460 3): opportunistic TLS, no MTA-STS, no TLSA, not
	 * counted; never shares connections with the domain's other mail */
	bool tls_report;
	unsigned sts_gen; /* bumped when the MTA-STS mode or id changes */
	struct event *prov_ev; /* pumps d when its provider group's pause is over */
	struct dest *next;
};

struct dconn {
	struct dest *d;
	struct smtpc *c;
	struct dns_target *t;
	size_t nt, ti;
	struct dgroup *cur;
	bool no_tls, ready;
	struct dns_query *tq; /* the TLSA lookup of t[ti], before connecting */
	struct tls_req req;   /* what the session with t[ti] must achieve */
	int tls_code;         /* a 4.7.x reply met on this walk (0: none) ... */
	char tls_text[512];   /* ... its text, and the TLS outcome with it */
	struct tls_outcome tls_out;
	char tls_relay[300]; /* ... and the relay that refused ("": a skipped host) */
	struct event *idle_ev;
	struct dconn *next_idle;
	struct dconn *next_conn; /* dest.conns */
	/* req was decided under these srv->cfg_gen and d->sts_gen (dest_tls_reusable) */
	unsigned gen_cfg, gen_sts;
	enum provider_group grp; /* counted in ds->prov[grp].active (PROVIDER_NONE: none) */
	struct event *hold_ev;   /* waiting for its provider group before t[ti] */
	char said[700];          /* the last failed connection's reply, with its host */
};

/*
 * dest_tls.c. dest_tls_target: the TLS request for k's target t into
 * k->req; false when t is skipped (its 4.7.x reply kept in k->tls_code,
 * tls_text, tls_out) or while its TLSA lookup runs (k->tq set: on_tlsa is
 * called with k when it ends).
 */
bool dest_tls_target(struct dconn *k, const struct dns_target *t, dns_tlsa_cb on_tlsa);
/* A session with k's current target ended (or was skipped): the TLS counters. */
void dest_tls_stats(struct dconn *k, const struct tls_outcome *o, bool ok, bool connected);
/* The domain's MTA-STS policy as sts.c reports it (sts_get's callback): kept in d->tp. */
void dest_tls_sts(struct dest *d, const struct sts_view *v);
/*
 * Before k's open session takes another group: false when the request its
 * target would get now differs from the one it was opened under (a reload
 * changed tls_policy, dane or mta_sts, or the MTA-STS policy changed): the
 * caller closes it, and a new connection meets the new request.
 */
bool dest_tls_reusable(struct dconn *k);
/* What the admin switched off, said once at start-up. */
void dest_tls_startup(const struct dests *ds);

/*
 * dest_provider.c: provider-aware pacing. A rate-limit reply (provider.h)
 * from any MX host of a group backs off the whole group; a 2xx steps it back.
 * dest_provider_reply: a reply read from k's current host (code, text).
 * dest_provider_wait: true when d may not start a transaction now (its
 * group is paused, or at its one connection while backing off): a timer
 * pumps d later. dest_provider_go: d starts one (k: a new connection, NULL:
 * an idle one reused). dest_provider_close: k is gone. dest_provider_free:
 * d's timer, when d is freed.
 */
void dest_provider_reply(struct dconn *k, int code, const char *text);
/*
 * dest_provider_hold: k's walk goes on to t[ti] after a failed host (e.g. a
 * rate-limit reply at the greeting or EHLO). When t[ti] is in a group that
 * is backing off (a provider throttles the sending IP on all its MX hosts,
 * whichever MX of the domain it is), true: resume(k) is called once the
 * group's delay has passed (k keeps its slot meanwhile). Else false (the
 * start is counted).
 */
bool dest_provider_hold(struct dconn *k, loop_timer_fn resume);
/*
 * A connection failed with why (why->code > 0: the remote's reply, from
 * peer): the provider group's backoff, and the reply quoted with its host
 * into k->said ("host PEER said: ..."), the outcome if the walk ends here.
 */
void dest_provider_fail(struct dconn *k, const struct smtpc_reply *why, const char *peer);
/* The replies of one transaction (one step: a rate-limit reply, else a 2xx): true for a
 * rate-limit reply (the caller closes the connection). */
bool dest_provider_result(struct dconn *k, const struct smtpc_reply *r, size_t n);
bool dest_provider_wait(struct dest *d);
void dest_provider_go(struct dest *d, struct dconn *k);
void dest_provider_close(struct dconn *k);
void dest_provider_free(struct dest *d);

#endif
