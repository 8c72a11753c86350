/*
 * resolver: runs the dns module (dns/dns.h) on the libevent loop.
 *
 * Owns: one struct dns, one libevent event per socket c-ares wants watched
 * and one timer for c-ares timeouts and queued deliveries. Queries go
 * straight to the dns module: dns_resolve_mx(resolver_dns(r), ...), and
 * their callbacks run from this loop's events. Loop thread only.
 */
#ifndef MXRELAY_RESOLVER_H
#define MXRELAY_RESOLVER_H

#include <stddef.h>

#include "dns/dns.h"

struct event_base;
struct resolver;

/* o as for dns_new (copied). Returns NULL with err on failure. Free with resolver_free. */
struct resolver *resolver_new(struct event_base *base, const struct dns_opts *o, char *err,
                              size_t errlen);

/* The dns handle for queries; owned by r, valid until resolver_free. */
struct dns *resolver_dns(struct resolver *r);

/*
 * Cancel every query (no callback fires), close the sockets, free. Not
 * from inside a dns callback. NULL is a no-op.
 */
void resolver_free(struct resolver *r);

#endif
