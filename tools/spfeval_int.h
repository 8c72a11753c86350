/*
 * tools/spfeval_int.h: the pieces of tools/spfeval shared by its files
 * (spfeval.c evaluates, spfeval_parse.c checks a record's syntax,
 * spfeval_macro.c expands macros). Not for other modules: they use
 * tools/spfeval.h.
 */
#ifndef MXRELAY_TOOLS_SPFEVAL_INT_H
#define MXRELAY_TOOLS_SPFEVAL_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/spfeval.h"

enum spfe_kind {
	SPFE_ALL,
	SPFE_INCLUDE,
	SPFE_A,
	SPFE_MX,
	SPFE_PTR,
	SPFE_IP4,
	SPFE_IP6,
	SPFE_EXISTS,
};

/* One mechanism of a record (RFC 7208 5). */
struct spfe_term {
	enum spfe_kind kind;
	char qual; /* '+', '-', '~' or '?' (4.6.2) */
	const char
	    *spec; /* domain-spec as written (points into the record copy), NULL = <domain> */
	size_t speclen;
	struct spf_ip net; /* ip4/ip6 */
	int cidr4, cidr6;  /* prefix lengths (32 and 128 when not given) */
	const char *text;  /* the term as written, for why and the trace */
	size_t textlen;
};

/* A record whose whole syntax was checked (4.6). */
struct spfe_record {
	char *buf;               /* the record's copy every pointer points into */
	struct spfe_term *terms; /* mechanisms in order */
	size_t n;
	const char *redirect; /* redirect= domain-spec, or NULL (6.1) */
	size_t redirectlen;
	const char *exp; /* exp= domain-spec, or NULL (6.2) */
	size_t explen;
};

/*
 * Check txt's syntax against RFC 7208 section 12 and split it into rec.
 * 0, or -1 with the reason in why (a permerror, 4.6). Free with
 * spfe_record_free, also after -1.
 */
int spfe_parse(const char *txt, struct spfe_record *rec, char *why, size_t whylen);
void spfe_record_free(struct spfe_record *rec);

/* Whether spec (len bytes) ends as a domain-spec must: "." toplabel ["."] or a macro (7.1). */
bool spfe_domain_end_ok(const char *spec, size_t len);

/*
 * Check the macro-string s (len bytes) (7.1). exp: the explanation text
 * of 6.2, where c, r and t are allowed and SP too. 0 or -1 with why.
 */
int spfe_macro_check(const char *s, size_t len, bool exp, char *why, size_t whylen);

/* What the macros expand to (7.3). p is computed only when a %{p} needs it. */
struct spfe_macro_env {
	const char *sender; /* %{s}: local@domain */
	const char *local;  /* %{l} */
	const char *odom;   /* %{o} */
	const char *domain; /* %{d}: the current domain */
	const char *helo;   /* %{h} */
	const char *receiver;
	const struct spf_ip *ip;
	long long now;
	/* %{p}: the validated name (or "unknown"); NULL stops the expansion (a limit passed). */
	const char *(*pname)(void *ctx);
	void *ctx;
};

/*
 * Expand the checked macro-string s (len bytes) into a malloc'ed string
 * in *out. A domain-spec (exp false) loses a trailing dot and is cut from
 * the left, label by label, to at most 253 characters (7.3). -1 when
 * pname stopped it or memory ran out.
 */
int spfe_macro_expand(const struct spfe_macro_env *env, const char *s, size_t len, bool exp,
                      char **out);

/*
 * The address of ip as the %{i} macro writes it: dotted decimal, or the
 * 32 nibbles of IPv6, dotted, upper or lowercase (7.3). len >= 64.
 */
void spfe_ip_dotted(const struct spf_ip *ip, bool upper, char *buf, size_t len);

#endif
