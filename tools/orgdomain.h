/*
 * tools/orgdomain: the organisational domain of RFC 7489 3.2 (the public
 * suffix of a name plus one label), from the Public Suffix List through
 * libpsl.
 *
 * libpsl reads the list the publicsuffix package keeps current
 * (/usr/share/publicsuffix), falling back to the copy built into the
 * library: no hand-written PSL parser to keep in step with the list's
 * wildcard and exception rules.
 *
 * Must never: query DNS or print. The list is loaded once per process.
 */
#ifndef MXRELAY_TOOLS_ORGDOMAIN_H
#define MXRELAY_TOOLS_ORGDOMAIN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The organisational domain of domain into out (lowercase, no trailing
 * dot): "example.co.uk" for "mail.example.co.uk", "example.com" for
 * "a.b.example.com". A name that is itself a public suffix (or has no
 * registrable part) is its own organisational domain. -1 for an empty or
 * over-long name or when out is too small.
 */
int orgdomain_get(const char *domain, char *out, size_t outlen);

/* true when a and b have the same organisational domain (RFC 7489 3.2, 7.1). */
bool orgdomain_same(const char *a, const char *b);

#endif
