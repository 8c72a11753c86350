/*
 * tlspol: which TLS one SMTP session must achieve, per MX host, from the
 * admin's tls_policy, DANE (RFC 7672) and MTA-STS (RFC 8461), and the
 * per-destination memory that decision needs (TLSA answers per MX host).
 *
 * Owns: the precedence of the three (tlspol_decide, pure and table-tested),
 * the TLSA cache of one destination, the mapping of a refused session to its
 * 4.7.x reply. Never: opens connections, fetches MTA-STS policies (sts.c),
 * or judges certificates (smtpc_tls.c).
 */
#ifndef MXRELAY_TLSPOL_H
#define MXRELAY_TLSPOL_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/dns.h"
#include "mta/delivery/smtpc.h"
#include "mta/delivery/tlsreq.h"
#include "mta/shared/config.h"

/* What the TLSA lookup of one MX host said (only asked for a secure host). */
enum tlspol_tlsa {
	TLSPOL_TLSA_NONE,     /* not asked, not secure, or a secure denial (NXDOMAIN/NODATA) */
	TLSPOL_TLSA_USABLE,   /* secure, at least one usable record (usage 2 or 3) */
	TLSPOL_TLSA_UNUSABLE, /* secure, records present, none usable (RFC 7672 2.2, 3.1.3) */
	TLSPOL_TLSA_FAILED, /* the host is secure but its TLSA lookup failed (SERVFAIL, timeout) */
};

/* MTA-STS as it applies to the recipient domain (sts.h: sts_view, copied). */
enum tlspol_sts { TLSPOL_STS_NONE, TLSPOL_STS_TESTING, TLSPOL_STS_ENFORCE };

struct tlspol_in {
	const char *domain;              /* the recipient domain (policy_domain) */
	const char *host;                /* the MX (or route) host name */
	enum tls_level floor;            /* the tls_policy entry's level ... */
	bool has_floor;                  /* ... when there is one */
	bool dane_on;                    /* dane = yes and dns_resolver_trusted() */
	bool literal;                    /* a route to an IP literal: its tls_policy only */
	bool named_route;                /* a named route: DANE for its host, never MTA-STS */
	bool host_secure;                /* the host's address records had AD */
	enum tlspol_tlsa tlsa;           /* see above */
	const struct dns_tlsa_rec *recs; /* the secure TLSA RRset (USABLE/UNUSABLE) */
	size_t nrecs;
	enum tlspol_sts sts;       /* the domain's MTA-STS mode */
	const char *const *sts_mx; /* the policy's mx patterns */
	size_t sts_nmx;
	const char *sts_id; /* the policy id, "" or NULL when none */
	/* a TLS report (RFC 8460 3: delivered despite any TLS failure): opportunistic,
	 * whatever DANE, MTA-STS or a tls_policy floor say; only `none` still applies */
	bool tls_report;
};

/* The verdict for one host: go with a request, or skip the host (with why). */
enum tlspol_verdict {
	TLSPOL_GO,
	TLSPOL_SKIP_TLSA_FAILED,   /* RFC 7672 2.2: never downgrade after a failed lookup */
	TLSPOL_SKIP_DANE_REQUIRED, /* tls_policy dane, and no usable secure TLSA */
	TLSPOL_SKIP_STS_MX,        /* MTA-STS enforce: the host is not in the policy's mx list */
};

/*
 * The request for in->host (RFC 7672 2.2, RFC 8461 2 and 5, Postfix's
 * smtp_tls_policy_maps levels): out is initialised here (tls_req_init) and
 * holds copies of the usable TLSA records (free with tls_req_clear, also
 * when the verdict is a skip). -1 only when out of memory.
 */
int tlspol_decide(const struct tlspol_in *in, struct tls_req *out, enum tlspol_verdict *verdict);

/* Whether the TLSA of a host is worth asking for (DANE could apply to it). */
bool tlspol_want_tlsa(const struct tlspol_in *in);

/* RFC 6698 2.1 usable for SMTP per RFC 7672 3.1.3: usage 2 or 3, known selector and length. */
bool tlspol_tlsa_usable(const struct dns_tlsa_rec *r);

/* The TLSA classification of a lookup result, for tlspol_in.tlsa. */
enum tlspol_tlsa tlspol_tlsa_class(const struct dns_tlsa_result *res);

/*
 * The 4.7.x reply of a session refused for TLS (stage SMTPC_TLS_REQUIRED,
 * SMTPC_TLS_VERIFY, or SMTPC_TLS under a required level) into text, and
 * its code; 0 when the failure is not a TLS policy failure (stage SMTPC_TLS
 * under MAY: the plaintext retry may go on). relay: "mx[ip]:port".
 */
int tlspol_fail_reply(const struct tls_req *req, enum smtpc_stage stage, const char *relay,
                      const char *why, char *text, size_t len);

/* The 4.7.x reply for a skipped host (verdict != TLSPOL_GO); returns the code. */
int tlspol_skip_reply(enum tlspol_verdict v, const char *domain, const char *host,
                      const char *sts_id, const char *why, char *text, size_t len);

/* "dane", "tls_policy verify", ...: what a 4.7.x reply says required TLS. */
const char *tlspol_required_by(const struct tls_req *req);

/*
 * ---- Per destination (dest.c): what the decision needs to remember ----
 * The TLSA answer of each MX host (asked once per target list: dest.c
 * resets it when the MX answer is refreshed) and the domain's MTA-STS
 * policy as sts.c last reported it.
 */
struct tlspol_dest;

struct tlspol_dest *tlspol_dest_new(void);
void tlspol_dest_free(struct tlspol_dest *p);
/* Forget the TLSA answers (new MX targets). */
void tlspol_dest_reset(struct tlspol_dest *p);
/*
 * Fill in->tlsa/recs/nrecs from the cached answer for in->host: 0, or -1
 * when that host was not asked yet. The records stay p's (valid until the
 * next reset or put).
 */
int tlspol_dest_tlsa(const struct tlspol_dest *p, struct tlspol_in *in);
/* Remember res for host (copied); why is kept for the 4.7.5 reply. */
void tlspol_dest_tlsa_put(struct tlspol_dest *p, const char *host,
                          const struct dns_tlsa_result *res);
/* The reason a host's TLSA lookup failed ("" when it did not). */
const char *tlspol_dest_tlsa_why(const struct tlspol_dest *p, const char *host);
/* Remember the domain's MTA-STS mode, patterns, id and policy text (copied). */
void tlspol_dest_sts_put(struct tlspol_dest *p, enum tlspol_sts mode, const char *const *mx,
                         size_t nmx, const char *id, const char *text);
/* The MTA-STS policy text ("" when none), for TLS-RPT policy-string (RFC 8460 4.4). */
const char *tlspol_dest_sts_text(const struct tlspol_dest *p);
/* Fill in->sts/sts_mx/sts_nmx/sts_id (p's storage). */
void tlspol_dest_sts(const struct tlspol_dest *p, struct tlspol_in *in);

#endif
