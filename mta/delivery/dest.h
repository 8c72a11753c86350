/*
 * dest: destinations (one per recipient domain) and their connections, for
 * the delivery engine (deliver.c). Its owner hands it groups of recipients
 * and hears back through the callbacks it registered (struct dest_cbs):
 * dest never calls deliver.c or claim.c, and never looks inside a job.
 */
#ifndef MXRELAY_DEST_H
#define MXRELAY_DEST_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mta/delivery/smtpc.h"
#include "mta/delivery/tlsreq.h"

struct server;
struct resolver;
struct dests;
struct sts;
struct dest;
struct djob;

/* Up to rcpts_per_transaction recipients of one message for one destination. */
struct dgroup {
	struct djob *job; /* the owner's; dest never touches it */
	size_t *idx;      /* the owner's: recipient k is idx[k] of its job */
	const char **rcpts;
	size_t n;
	struct smtpc_msg m; /* sender, rcpts/n, body: valid until done() or drop() */
	bool tls_report;    /* an RFC 8460 report (SPOOL_F_TLSRPT): a destination of its own */
	/* the owner's delays= (util_now_ms, 0: not yet): its first claim (a connection is
	 * opened or handed to it) and MAIL FROM sent (m.t_sent points here) */
	int64_t t_slot, t_tx;
	struct dgroup *next;
};

struct dest_cbs {
	/*
	 * Recipient k of g has an outcome for this attempt: the reply code and
	 * text ("550 5.1.1 ..."), the relay ("mx[ip]:port", NULL when no
	 * connection) and what TLS the session achieved against its policy
	 * (NULL: no session was tried, e.g. a DNS failure). The strings and o
	 * are only valid during the call.
	 */
	void (*outcome)(struct dgroup *g, size_t k, int code, const char *text, const char *relay,
	                const struct tls_outcome *o);
	/* Every recipient of g has an outcome: g is the owner's to free now. */
	void (*done)(struct dgroup *g);
	/* At exit (dests_free): free g alone, no outcome. */
	void (*drop)(struct dgroup *g);
	/*
	 * Before a connection opens for g or its transaction starts: is its
	 * message claimed (durably)? DEST_CLAIM_WAIT: not yet; the owner calls
	 * dest_claim_wait(d) now and dest_claim_done(d, ...) once it is.
	 * DEST_CLAIM_CANCEL: the attempt is called off (its claim could not be
	 * written); dest takes g out of its queue and hands it to done() with
	 * no outcome, never sending anything for it.
	 */
	int (*claim)(struct dgroup *g, struct dest *d);
};

/* Answers of dest_cbs.claim. */
enum dest_claim { DEST_CLAIM_WAIT, DEST_CLAIM_OK, DEST_CLAIM_CANCEL };

/* The destinations of one delivery engine; cbs and sts (MTA-STS, NULL: off) must outlive
 * them. Never NULL. */
struct dests *dests_new(struct server *srv, struct resolver *res, SSL_CTX *tls, struct sts *sts,
                        const struct dest_cbs *cbs);

/* At exit: every destination with its connections (idle or busy), queued groups dropped. */
void dests_free(struct dests *ds);

/* Reload: new connections use tls (the caller keeps it alive; open ones hold their own). */
void dests_set_tls(struct dests *ds, SSL_CTX *tls);

/* Queue g for domain's destination (made on first use) and start what can start. */
void dest_enqueue(struct dests *ds, const char *domain, struct dgroup *g);

/* Free destinations with no work, no connection and no lookup for dest_idle_time. */
void dests_sweep(struct dests *ds, time_t now);

/* d waits for a message's claim (not swept meanwhile) / the claim is durable: pump d. */
void dest_claim_wait(struct dest *d);
void dest_claim_done(struct dest *d, bool pump);

#endif
