/*
 * sts: MTA-STS (RFC 8461) for the delivery engine, on the loop thread.
 *
 * Owns: the policy of each recipient domain as the relay knows it: in
 * memory, in the spool (sts_policies, so a restart keeps it until max_age),
 * refreshed when the _mta-sts TXT id changes or the cached copy expires,
 * fetched from https://mta-sts.DOMAIN/.well-known/mta-sts.txt (port 443,
 * certificate verified, no redirects, size and time bounded). A failed
 * fetch keeps a cached policy (RFC 8461 5.1); with none, the domain has no
 * policy (RFC 8461 5) and the failure is reported (TLS-RPT).
 * Never: connects to an MX, decides a delivery's TLS level (tlspol.c does,
 * from what sts reports), or blocks the loop.
 */
#ifndef MXRELAY_STS_H
#define MXRELAY_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mta/delivery/tlsreq.h"
#include "mta/shared/sts.h" /* enum sts_mode */

struct server;
struct resolver;
struct sts;
struct sts_wait;

/* What is known of a domain's policy; valid only during the callback. */
struct sts_view {
	enum sts_mode mode;		/* STS_MODE_NONE: no policy applies */
	const char *id;			/* the policy's TXT id ("" when none) */
	const char *const *mx;		/* the policy's mx patterns */
	size_t nmx;
	const char *policy_text;	/* the policy as fetched, for TLS-RPT policy-string */
	/* a fetch or TXT problem seen on the way (TLSRES_OK when none): reported
	 * even when a cached policy still applies */
	enum tls_result problem;
	const char *problem_detail;
};

/*
 * Reading a view (sts.c): mode ENFORCE/TESTING with problem OK: a policy
 * applies (fetched now, from memory or from the spool); with a problem: a
 * cached policy still applies although this round's TXT or fetch failed
 * (RFC 8461 5.1: report it, keep enforcing). Mode NONE with a problem: the
 * domain announced a policy that could not be fetched and none is cached:
 * deliver as without MTA-STS (RFC 8461 5), report the problem. Mode NONE
 * without a problem: no MTA-STS (or the policy says mode none).
 */
typedef void (*sts_cb)(void *arg, const struct sts_view *v);

/* The per-process MTA-STS state; NULL when mta_sts = no. */
struct sts *sts_new(struct server *srv, struct resolver *res);
void sts_free(struct sts *s);
/* Reload: policy fetches verify with trust (tls_ca_file) from now on (https_set_trust). */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
void sts_set_trust(struct sts *s, struct ssl_ctx_st *trust);

/*
 * The policy for domain (A-label, lower case). cb fires exactly once,
 * never inside this call, unless sts_cancel comes first. Returns NULL only
 * when s is NULL (then cb never fires: treat as no policy).
 */
struct sts_wait *sts_get(struct sts *s, const char *domain, sts_cb cb, void *arg);
void sts_cancel(struct sts_wait *w);

/*
 * Free the domains that remember nothing in force at now (unix seconds):
 * policy expired (or none) and no failed fetch waiting for its retry time,
 * with no round running (s NULL: 0). A timer does it every 10 minutes; tests call it
 * with a later now. Returns how many domains are still held.
 */
size_t sts_sweep(struct sts *s, int64_t now);

#endif
