/*
 * tools/dnsq: blocking DNS lookups for mxrelayctl, on c-ares: the servers
 * the config's dns_servers names (dnsq_set_servers), else the system's
 * (/etc/resolv.conf), within bounded time (dnsq_set_timeout).
 *
 * Owns: TXT, MX, A/AAAA and PTR answers as lists of text. A CLI may block,
 * so this is deliberately simple: one channel for the process, one query
 * at a time. The daemon uses dns/ (its event loop) and never links this.
 *
 * Must never: print. Every function returns a dnsq_status; a list is
 * filled only on DNSQ_OK and is freed with dnsq_list_free (also safe on an
 * empty list).
 */
#ifndef MXRELAY_TOOLS_DNSQ_H
#define MXRELAY_TOOLS_DNSQ_H

#include <stddef.h>

enum dnsq_status {
	DNSQ_OK = 0,   /* at least one record of the type */
	DNSQ_NXDOMAIN, /* the name does not exist */
	DNSQ_NODATA,   /* the name exists, no record of the type */
	DNSQ_FAIL,     /* SERVFAIL, REFUSED, timeout, malformed answer */
};

struct dnsq_list {
	char **v;
	size_t n;
};

/* "ok", "no such domain (NXDOMAIN)", "no record of that type", "DNS lookup failed" */
const char *dnsq_strerror(enum dnsq_status st);

/* TXT records of name, each one's character-strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2). */
enum dnsq_status dnsq_txt(const char *name, struct dnsq_list *out);

/*
 * MX records of name: "PREF HOST" with HOST lowercase and without the
 * trailing dot; a null MX (RFC 7505) is "0 .".
 */
enum dnsq_status dnsq_mx(const char *name, struct dnsq_list *out);

/* A and AAAA records of name as address text. DNSQ_FAIL if either lookup failed. */
enum dnsq_status dnsq_addrs(const char *name, struct dnsq_list *out);

/* A (family AF_INET) or AAAA (AF_INET6) records of name only, as address text. */
enum dnsq_status dnsq_a(const char *name, int family, struct dnsq_list *out);

/*
 * Send every later lookup to servers, the config's dns_servers syntax
 * ("127.0.0.1", "127.0.0.1:5300,[::1]:53"); NULL or "" = /etc/resolv.conf.
 * -1 with err for a list that does not parse.
 */
int dnsq_set_servers(const char *servers, char *err, size_t errlen);

/*
 * Bound every later lookup: timeout_ms for the first try, c-ares doubling
 * it on each later round over the servers, tries rounds (the config's
 * dns_timeout and dns_tries). 0 = the default, 2000 ms and 2 tries.
 */
void dnsq_set_timeout(unsigned timeout_ms, unsigned tries);

/* PTR names for an IPv4 or IPv6 address (text), lowercase without the trailing dot. */
enum dnsq_status dnsq_ptr(const char *ip, struct dnsq_list *out);

/* Whether name exists at all (any answer but NXDOMAIN; DNSQ_FAIL when unknown). */
enum dnsq_status dnsq_exists(const char *name);

void dnsq_list_free(struct dnsq_list *l);

#endif
