/*
 * dns: the MX pipeline of the relay on top of c-ares 1.18.
 *
 * Owns: one c-ares channel, a TTL cache of answers per (name, type) and the
 * MX resolution rules: null MX (RFC 7505), implicit MX (RFC 5321 5.1),
 * preference order with ties shuffled (RFC 5321 5.1), A/AAAA per MX host,
 * CNAME chains, and the address policy (loopback, private and link-local
 * addresses refused unless allowed).
 *
 * Must never: own an event loop, block, or link anything but libc and
 * c-ares. The caller owns the loop: the module reports which sockets it
 * wants watched through dns_sock_cb, the caller calls dns_process() when one
 * is ready and dns_timeouts() when dns_next_timeout() expires.
 *
 * Callback rules: a result callback never fires inside the call that
 * started the query (answers from the cache or immediate failures are queued
 * and delivered from the next dns_process()/dns_timeouts(); while any are
 * queued dns_next_timeout() returns 0), and never after dns_cancel().
 * Single-threaded: every function must be called from the loop thread.
 */
#ifndef MXRELAY_DNS_H
#define MXRELAY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct dns;
struct dns_query;

enum dns_family {
	DNS_FAMILY_ANY = 0, /* AAAA and A; a host's addresses interleaved, IPv6 first */
	DNS_FAMILY_IPV4,    /* A only */
	DNS_FAMILY_IPV6,    /* AAAA only */
};

/*
 * Options. A zeroed struct gives the defaults. Nothing is kept: dns_new
 * copies what it needs. c-ares 1.18 doubles the timeout for every round
 * over the servers, so with one dead server a query gives up after
 * timeout * (2^tries - 1): 75 s with the defaults (5 s, 4 tries), 6 s with
 * 2000 ms and 2 tries. SERVFAIL and REFUSED are not retried elsewhere.
 */
struct dns_opts {
	const char *servers;     /* "127.0.0.1:5355,[::1]:53"; NULL or "" = resolv_conf */
	const char *resolv_conf; /* NULL = /etc/resolv.conf (tests name a file of their own) */
	enum dns_family family;
	bool allow_private; /* accept loopback, RFC 1918/4193, link-local MX addresses */
	int timeout_ms;     /* first try's timeout; 0 = resolv.conf "timeout:" or 5 s */
	int tries;          /* attempts per server; 0 = resolv.conf "attempts:" or 4 */
	int max_mx;         /* MX hosts used, best first; 0 = 10 */
	int max_addrs;      /* addresses used per MX host; 0 = 4 */
	int cache_size;     /* cached answers; 0 = 4096, < 0 = no cache */
	int min_ttl;        /* seconds an answer is cached at least; 0 = 5 (max is 1 day) */
};

/* Mapping to the SMTP outcome is the caller's, but this is the intent. */
enum dns_status {
	DNS_OK = 0,      /* targets has at least one address */
	DNS_NXDOMAIN,    /* domain does not exist, or (implicit MX) has no MX and no address
	                    record: permanent, 5.1.2 */
	DNS_NULL_MX,     /* RFC 7505 null MX: permanent at once, 5.1.10, no retries */
	DNS_NO_ADDRESS,  /* MX hosts exist but none has a usable address (not found, or every
	                    address refused by policy): defer, reason says which */
	DNS_TEMPFAIL,    /* SERVFAIL, REFUSED, timeout, network error: defer and retry */
	DNS_MX_NXDOMAIN, /* MX records exist but every MX host name is NXDOMAIN (none
	                    SERVFAIL or timed out): permanent, 5.4.4, as Postfix's "Host or
	                    domain name not found" */
};

/* One address to try. Port is 0: the caller sets it. */
struct dns_target {
	char host[256]; /* the MX host name (the domain itself for implicit MX) */
	int pref;       /* its MX preference (0 for implicit MX) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool secure; /* the host's address records were DNSSEC-validated (AD, RFC 7672 2.1.1) */
};

/*
 * The outcome of dns_resolve_mx. targets are in the order to try them: MX
 * preference, equal preferences shuffled, per host its addresses (shuffled
 * per family, families interleaved for DNS_FAMILY_ANY), duplicates dropped.
 * reason: one line for logs; with DNS_OK it names skipped hosts, if any.
 */
struct dns_mx_result {
	enum dns_status status;
	char reason[256];
	bool implicit;                    /* no MX records: the domain itself was used */
	const struct dns_target *targets; /* may be NULL when ntargets is 0 */
	size_t ntargets;
	/*
	 * The MX RRset (and CNAMEs to it) had AD; with no MX, the denial had
	 * AD; always false from dns_resolve_addrs. An insecure MX RRset does
	 * not rule DANE out: RFC 7672 2.2.1 lets the client use DANE with MX
	 * hosts from an insecure MX RRset, per host whose address records
	 * are secure (dns_target.secure), as Postfix does.
	 */
	bool mx_secure;
};

/*
 * res and everything it points to are valid only during the call; copy
 * what you need. The query handle is freed when the callback returns.
 * Inside the callback you may start queries and cancel other queries;
 * dns_cancel on the query being delivered is a harmless no-op; never call
 * dns_process, dns_timeouts or dns_free from a callback.
 */
typedef void (*dns_mx_cb)(void *arg, const struct dns_mx_result *res);

/*
 * Socket interest: watch fd for reading and/or writing; both false means
 * stop watching it (the socket is about to be closed). Called from inside
 * any dns_* function (also dns_free).
 */
typedef void (*dns_sock_cb)(void *arg, int fd, bool readable, bool writable);

/*
 * The value of dns_next_timeout() may have changed: re-read it and re-arm
 * the timer. Called at the end of dns_resolve_mx, dns_process and
 * dns_timeouts. May be NULL for callers that poll dns_next_timeout().
 */
typedef void (*dns_timer_cb)(void *arg);

/*
 * New handle. sock_cb is required; timer_cb may be NULL; cbarg is passed to
 * both. Returns NULL with err filled (bad servers list, c-ares init error).
 * Free with dns_free.
 */
struct dns *dns_new(const struct dns_opts *o, dns_sock_cb sock_cb, dns_timer_cb timer_cb,
                    void *cbarg, char *err, size_t errlen);

/*
 * Cancel every query (no callback fires), close the sockets (sock_cb is
 * told) and free. Not from inside a callback. NULL is a no-op.
 */
void dns_free(struct dns *d);

/*
 * Resolve the mail exchangers of domain (an ASCII/A-label domain, with or
 * without a trailing dot). cb(arg, res) fires exactly once, later, unless
 * the query is cancelled first. Returns the query handle, valid until its
 * callback returns or dns_cancel; NULL (errno EINVAL: bad domain syntax,
 * ENOMEM) if nothing was started: then cb never fires.
 */
struct dns_query *dns_resolve_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg);

/*
 * ---- DNSSEC-aware lookups for transport security (RFC 7672, 8461, 8460) ----
 *
 * "secure" is the AD bit of the answer from the resolver in dns_servers,
 * ANDed along CNAME hops (RFC 6840 5.7: the query sets AD to ask for it).
 * It means something only when that resolver validates and the path to it
 * cannot be tampered with: see dns_resolver_trusted. Status for these:
 * DNS_OK (records), DNS_NXDOMAIN (the name or the type does not exist:
 * "none"), DNS_TEMPFAIL (SERVFAIL, timeout, malformed answer).
 */

/*
 * One TLSA record (RFC 6698 2.1). data is never empty (an answer with a
 * TLSA rdata of 3 bytes or less is TEMPFAIL, "malformed answer"); whether
 * len fits the matching type (RFC 6698 2.1.3; 1: 32, 2: 64 bytes) is the
 * caller's check: such a record is one unusable record, not a broken
 * answer (OpenSSL's SSL_dane_tlsa_add refuses it). At most 64 records.
 */
struct dns_tlsa_rec {
	unsigned usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

struct dns_tlsa_result {
	enum dns_status status;
	bool secure;
	char reason[256];
	const struct dns_tlsa_rec *recs;
	size_t n;
};
typedef void (*dns_tlsa_cb)(void *arg, const struct dns_tlsa_result *res);

/*
 * TLSA of _PORT._tcp.HOST (RFC 6698 3; port 1-65535). Same handle rules
 * as dns_resolve_mx (EINVAL: bad host or port). res->recs point into the
 * answer: valid during the callback only.
 */
struct dns_query *dns_resolve_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_cb cb,
                                   void *arg);

/* One TXT record: its character-strings concatenated (RFC 7208 3.3, 8461 3.1). */
struct dns_txt {
	const char *data; /* NUL-terminated as well; may hold NUL bytes, len counts */
	size_t len;
};

struct dns_txt_result {
	enum dns_status status;
	bool secure;
	char reason[256];
	const struct dns_txt *txt;
	size_t n;
};
typedef void (*dns_txt_cb)(void *arg, const struct dns_txt_result *res);

/*
 * TXT records of name (underscore labels allowed: _mta-sts.D, _smtp._tls.D),
 * at most 64 records and 64 KB of text per answer. Same handle rules as
 * dns_resolve_mx; res->txt valid during the callback only.
 */
struct dns_query *dns_resolve_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg);

/*
 * The addresses of one host (A/AAAA per the family option, the address
 * policy applied), delivered as a dns_mx_result with implicit set and every
 * target named host (e.g. mta-sts.DOMAIN for the policy fetch), each with
 * its own secure flag. DNS_NXDOMAIN: no such host or no address record;
 * DNS_NO_ADDRESS: every address refused by the policy; DNS_TEMPFAIL.
 * Same handle rules as dns_resolve_mx.
 */
struct dns_query *dns_resolve_addrs(struct dns *d, const char *host, dns_mx_cb cb, void *arg);

/*
 * true when every configured resolver is on loopback (127.0.0.0/8, ::1):
 * only then is an AD bit worth trusting (RFC 7672 2.1.1, RFC 4035 4.9.3).
 */
bool dns_resolver_trusted(const struct dns *d);

/* Stop a query: its callback never fires afterwards. The handle is freed. */
void dns_cancel(struct dns_query *q);

/* fd is ready: read and/or write it, then deliver finished queries. */
void dns_process(struct dns *d, int fd, bool readable, bool writable);

/* The timeout expired: run c-ares timeouts, then deliver finished queries. */
void dns_timeouts(struct dns *d);

/*
 * Milliseconds until dns_timeouts() should run: -1 = nothing pending,
 * 0 = results are waiting to be delivered (call dns_timeouts now).
 */
int dns_next_timeout(struct dns *d);

/* Counters, for tests and the control socket. */
struct dns_stats {
	unsigned long queries_sent; /* DNS queries handed to c-ares */
	unsigned long cache_hits;   /* (name, type) answered from the cache */
	unsigned long cache_entries;
};
void dns_get_stats(const struct dns *d, struct dns_stats *st);

/* Drop every cached answer (e.g. on SIGHUP). */
void dns_cache_flush(struct dns *d);

/* Static text for a status. */
const char *dns_strerror(enum dns_status s);

/*
 * Address policy, shared with callers that route to address literals:
 * NULL if sa (AF_INET or AF_INET6) may be connected to, else a static
 * reason ("loopback address", "private address", ...). Unspecified,
 * multicast, broadcast and reserved addresses are refused even with
 * allow_private; IPv4-mapped IPv6 addresses are judged as IPv4.
 */
const char *dns_addr_refusal(const struct sockaddr *sa, bool allow_private);

#endif
