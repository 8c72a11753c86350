/*
 * tools/spf_lint: what is wrong with a published SPF record, term by term
 * (RFC 7208 4.6, 5, 6, 7 and 12) and over the whole include tree (the
 * processing limits of 4.6.4), for `mxrelayctl dns check`.
 *
 * Owns: the findings (one code each, with the count and the terms or
 * names involved); the walk of the include/redirect tree in the order a
 * receiver evaluates it for an address that matches nothing, so every term
 * is visited and every lookup it costs is counted.
 *
 * Must never: print, exit, or query DNS other than through the struct
 * spf_dns it is given (tools/spfeval.h). The wording of each finding, its
 * status and its fix are the caller's (tools/ctl_check_spf.c).
 */
#ifndef MXRELAY_TOOLS_SPF_LINT_H
#define MXRELAY_TOOLS_SPF_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/spf.h"
#include "tools/spfeval.h"

enum spf_fcode {
	SPF_F_SYNTAX,       /* a term that does not parse (12, 7.1 macros): permerror */
	SPF_F_UNKNOWN,      /* an unknown mechanism (5): permerror */
	SPF_F_TWICE,        /* redirect= or exp= more than once (6): permerror */
	SPF_F_PLUS_ALL,     /* +all / all: everyone passes */
	SPF_F_NEUTRAL_ALL,  /* ?all: neutral for everyone else, protects nothing */
	SPF_F_NO_ALL,       /* neither all nor redirect: neutral default (4.7) */
	SPF_F_REDIRECT_IGN, /* redirect with all: never used (6.1) */
	SPF_F_AFTER_ALL,    /* terms after all: never evaluated (5.1) */
	SPF_F_PTR,          /* ptr: SHOULD NOT be used (5.5) */
	SPF_F_HOST_BITS,    /* ip4/ip6 with bits set past the prefix (5.6) */
	SPF_F_WIDE,         /* ip4/ip6 prefix that authorises a large part of the internet */
	SPF_F_CIDR,         /* a/mx with a prefix: neighbours of each address pass (5.3, 5.4) */
	SPF_F_LENGTH,       /* over 450 bytes (3.4) */
	SPF_F_TARGET,       /* include/redirect target without one SPF record (5.2, 6.1) */
	SPF_F_LOOP,         /* include or redirect of itself (5.2) */
	SPF_F_LOOKUPS,      /* over 10 DNS-querying terms (4.6.4) */
	SPF_F_VOID,         /* over 2 void lookups (4.6.4) */
	SPF_F_MX_NAMES,     /* an mx with over 10 MX names (4.6.4): permerror */
	SPF_F_PTR_NAMES,    /* a ptr reaching over 10 names: the rest ignored (4.6.4) */
	SPF_F_COUNT,
};

#define SPF_VOID_LIMIT 2   /* RFC 7208 4.6.4 */
#define SPF_NAMES_LIMIT 10 /* RFC 7208 4.6.4: MX names per mx, PTR names per ptr */

struct spf_finding {
	int count;      /* occurrences (terms, names, lookups); 0 = not found */
	char what[600]; /* the terms or names involved, "; "-separated, cut short */
};

struct spf_findings {
	struct spf_finding f[SPF_F_COUNT];
	int lookups;      /* DNS-querying terms over the whole tree (walk) */
	int voids;        /* void lookups over the whole tree (walk) */
	int not_followed; /* targets with macros: cost one lookup, not walked */
	bool walked;      /* spf_lint_tree ran */
};

/* The check name of a finding: "spf-syntax", "spf-lookups"... */
const char *spf_finding_name(enum spf_fcode code);

/* true when a receiver answers permerror for it (whatever the address). */
bool spf_finding_permerror(enum spf_fcode code);

/*
 * The findings in record's own terms (everything but the tree ones:
 * TARGET, LOOP, LOOKUPS, VOID, MX_NAMES, PTR_NAMES). out is cleared
 * first. -1 when record is not an SPF record.
 */
int spf_lint_terms(const char *record, struct spf_findings *out);

/*
 * The record to publish instead of record for one finding of
 * spf_lint_terms, or NULL when it takes a person (ptr, cidr, length, the
 * tree findings): +all and ?all become ~all, a missing all is added as
 * ~all, an ignored redirect= and repeated modifiers are removed, an all
 * with terms after it moves last, ip4/ip6 with host bits are written as
 * their network, and terms that do not parse or authorise most of the
 * internet are removed (with a syntax error the record authorises nobody
 * today). malloc'ed; the caller frees it.
 */
char *spf_lint_fix(const char *record, enum spf_fcode code);

/*
 * Walk record (published at domain) and every include and redirect target
 * through dns, as a receiver evaluates an address that matches nothing:
 * adds the tree findings and the lookups/voids totals to out (which
 * spf_lint_terms may have filled). ips (nips of them, may be 0) are the
 * relay's addresses, for the PTR names of a ptr term. Targets with macros
 * count their lookup and are not walked.
 */
void spf_lint_tree(const char *domain, const char *record, const struct spf_dns *dns,
                   const struct spf_ip *ips, size_t nips, struct spf_findings *out);

#endif
