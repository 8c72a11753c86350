/*
 * tools/spf_int: the term model shared by the SPF record modules
 * (tools/spf.c, spf_lint.c, spf_join.c). Private to them: callers use
 * tools/spf.h and tools/spf_lint.h.
 */
#ifndef MXRELAY_TOOLS_SPF_INT_H
#define MXRELAY_TOOLS_SPF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/spf.h"

enum term_kind {
	TK_ALL,
	TK_INCLUDE,
	TK_A,
	TK_MX,
	TK_PTR,
	TK_IP4,
	TK_IP6,
	TK_EXISTS,
	TK_REDIRECT,
	TK_EXP,
	TK_MODIFIER, /* unknown modifiers are ignored by receivers (6) */
	TK_UNKNOWN,  /* an unknown mechanism is a permerror (5) */
};

struct term {
	const char *text; /* the whole term, not NUL-terminated */
	size_t len;
	char qual; /* '+', '-', '~', '?', or 0 when omitted (= '+') */
	enum term_kind kind;
	const char *arg; /* after ':' (mechanism) or '=' (modifier); NULL if none */
	size_t arglen;
};

struct terms {
	struct term *v;
	size_t n;
};

/*
 * Split rec into its terms after the version (RFC 7208 4.6.1; any run of
 * blanks separates). t->v is malloc'ed (NULL when empty) and points into
 * rec, which must outlive it. -1 when rec is not an SPF record.
 */
int spf_split_terms(const char *rec, struct terms *t, char *err, size_t errlen);

/* A mechanism (5), not a modifier (6). */
bool spf_is_mechanism(enum term_kind k);

/* RFC 7208 4.6.4: the mechanisms that cost a DNS query (redirect is counted apart). */
bool spf_costs_lookup(enum term_kind k);

/* true when the ip4/ip6 term t matches ip (its address, or a prefix holding it). */
bool spf_term_covers(const struct term *t, const struct spf_ip *ip);

#endif
