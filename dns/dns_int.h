/*
 * dns internals shared by the files of dns/ (and the parser tests).
 * Nothing here is for callers outside dns/.
 */
#ifndef MXRELAY_DNS_INT_H
#define MXRELAY_DNS_INT_H

#include <ares.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

#define DNS_T_A 1
#define DNS_T_CNAME 5
#define DNS_T_SOA 6
#define DNS_T_MX 15
#define DNS_T_TXT 16
#define DNS_T_AAAA 28
#define DNS_T_TLSA 52

#define DNS_MAX_RR 64        /* records of the asked type kept from one answer */
#define DNS_MAX_CHAIN 8      /* CNAME hops followed, inside one answer and across queries */
#define DNS_TTL_MAX 86400    /* positive answers: at most one day */
#define DNS_NEG_TTL_MAX 300  /* NXDOMAIN / NODATA: at most 5 minutes */
#define DNS_NEG_TTL_NOSOA 30 /* negative answer without an SOA to take the TTL from */
#define DNS_TXT_MAX 65536    /* TXT bytes kept from one answer, all records together */
#define DNS_HDR_AD 0x0020    /* header flags: Authentic Data (RFC 4035 3.2.3, RFC 6840 5.7) */

/* ---- parsed answers (parse.c) ---- */

enum dns_akind {
	DNS_A_DATA,     /* records of the asked type for the name (after CNAMEs) */
	DNS_A_NODATA,   /* the name exists, no record of that type */
	DNS_A_NXDOMAIN, /* the name does not exist */
	DNS_A_CNAME,    /* the answer ends at a CNAME whose target it does not cover */
	DNS_A_TEMPFAIL, /* not from the parser: SERVFAIL, timeout... (never cached) */
};

struct dns_rr {
	uint16_t pref;    /* MX */
	uint8_t addr[16]; /* A: 4 bytes, AAAA: 16 bytes */
	char *name;       /* MX exchange, "" for the root (null MX); NULL otherwise */
	uint8_t tlsa[3];  /* TLSA: usage, selector, matching type */
	uint8_t *data;    /* TXT: the strings joined, NUL added; TLSA: association data;
	                     NULL for other types */
	size_t len;       /* bytes in data (without the added NUL) */
};

/* Reference counted; the cache holds one reference. Immutable once built. */
struct dns_answer {
	int refs;
	enum dns_akind kind;
	int type;
	uint32_t ttl; /* seconds, as found (clamping is the cache's) */
	bool secure;  /* the header's AD bit: the resolver validated the whole answer */
	char *cname;  /* DNS_A_CNAME: the name to ask next; NULL otherwise */
	size_t n;
	struct dns_rr rr[];
};

/*
 * Parse a response to (qname, qtype). Returns a new answer (refs 1) or NULL
 * with why filled: a malformed packet or an rcode other than NOERROR and
 * NXDOMAIN. Follows CNAMEs from qname inside the answer section.
 */
struct dns_answer *dns__parse(const unsigned char *buf, size_t len, const char *qname, int qtype,
                              char *why, size_t whylen);
void dns__answer_unref(struct dns_answer *a);

/* ---- cache (cache.c) ---- */

struct dns_cache;
struct dns_cache *dns__cache_new(size_t max);
void dns__cache_free(struct dns_cache *c);
void dns__cache_flush(struct dns_cache *c);
size_t dns__cache_count(const struct dns_cache *c);
/* Borrowed pointer, valid until the next cache call; NULL when absent or expired. */
struct dns_answer *dns__cache_get(struct dns_cache *c, const char *name, int type, int64_t now);
/* Takes a reference to a; replaces an older entry; evicts the least recently used.
   now and expires are dns__now() milliseconds. */
void dns__cache_put(struct dns_cache *c, const char *name, int type, struct dns_answer *a,
                    int64_t expires);

/* ---- the handle (dns.c) ---- */

struct dns {
	ares_channel ch;
	dns_sock_cb sock_cb;
	dns_timer_cb timer_cb;
	void *cbarg;
	enum dns_family family;
	bool allow_private;
	int max_mx, max_addrs, min_ttl;
	struct dns_cache *cache; /* NULL: caching off */
	uint64_t rng;
	struct dns_stats st;
	struct dns_query *live;      /* every query not yet delivered or cancelled */
	struct dns_query *done_head; /* finished, waiting for delivery (FIFO) */
	struct dns_query *done_tail;
	struct dns_query *drain_stop; /* last query the current drain delivers */
	bool draining;
};

/* ---- query bookkeeping, clock, random numbers (query.c, calls no other dns file) ---- */

int64_t dns__now(void); /* monotonic milliseconds */
uint32_t dns__rand(struct dns *d);
/* Tell the caller's loop that c-ares' next timeout may have moved. */
void dns__notify_timer(struct dns *d);
/* A new query joins d's live list; a query with its result is queued for delivery. */
void dns__query_link(struct dns_query *q);
void dns__finished(struct dns_query *q);
/* Take q off whichever list it is on (live or done). */
void dns__query_unlink(struct dns_query *q);

/* ---- (name, type) lookups with cache and CNAME chasing (lookup.c) ---- */

struct dns_lookup;
/*
 * kind and a: the result (a is non-NULL for DATA, borrowed for the call).
 * secure: every answer on the way had AD (CNAME hops across queries
 * included, cached ones too); false for TEMPFAIL.
 * why: short text for failures ("NXDOMAIN", "SERVFAIL", "timeout"...).
 */
typedef void (*dns_lookup_cb)(void *arg, enum dns_akind kind, const struct dns_answer *a,
                              bool secure, const char *why);
/*
 * Start a lookup. cb may run before this returns (cache hit, immediate
 * failure): then NULL is returned. Otherwise the handle, valid until cb
 * runs or dns__lookup_cancel. cb runs exactly once unless cancelled.
 */
struct dns_lookup *dns__lookup(struct dns *d, const char *name, int type, dns_lookup_cb cb,
                               void *arg);
void dns__lookup_cancel(struct dns_lookup *lk);

/* ---- MX pipeline (mx.c) ---- */

struct dns_query {
	struct dns *d;
	struct dns_query *prev, *next; /* d->live or d->done_* list */
	enum { Q_RUNNING, Q_DONE, Q_DELIVERING } state;
	/*
	 * Set by whoever starts the query (dns_resolve_mx), so that dns.c ends
	 * it without naming mx.c. complete: the drain calls back, then frees q.
	 * discard: dns_cancel / dns_free free q without calling back.
	 */
	void (*complete)(struct dns_query *q);
	void (*discard)(struct dns_query *q);
	dns_mx_cb cb;
	void *arg;
	char domain[256];
	bool host_only; /* dns_resolve_addrs: no MX step, domain is the host */
	struct dns_lookup *mxlk;
	struct mx_host *hosts;
	size_t nhosts, pending;
	struct dns_mx_result res;
	struct dns_target *targets;
};

/* ---- address policy (policy.c) ---- */

const char *dns__addr_refusal(int family, const uint8_t *addr, bool allow_private);

/* Lowercase, strip one trailing dot, check syntax. 0 / -1. out has 256 bytes. */
int dns__normalize(const char *in, char *out);
bool dns__name_eq(const char *a, const char *b);

#endif
