/*
 * tools/spfeval: the SPF check_host() function of RFC 7208 (section 4),
 * for mxrelayctl: `dns spf-eval`, the spf-ip lines of `dns check`, the
 * before/after evaluation of `dns spf`, and the processing-limit checks.
 *
 * Owns: the whole evaluation: record selection (4.5: none, several
 * records = permerror), the syntax check of the whole record before any
 * term is evaluated (4.6), every mechanism and modifier (5, 6), macro
 * expansion (7), the processing limits (4.6.4: 10 DNS-querying terms over
 * the whole evaluation, 2 void lookups, 10 MX names per mx, 10 PTR names
 * per ptr/%{p}), the explanation string (6.2), and a trace of what was
 * looked up and matched.
 *
 * Must never: query DNS other than through the struct spf_dns it is given
 * (tests and fuzzers hand in their own; mxrelayctl hands in
 * spf_dns_system(), tools/dnsq), print, exit, or keep state between calls.
 *
 * The reference is the RFC 7208 test suite (test/data/spf): every case of
 * it evaluated here must give one of the results the suite allows and the
 * result pyspf gives (test/integration/test_spf_suite.py).
 */
#ifndef MXRELAY_TOOLS_SPFEVAL_H
#define MXRELAY_TOOLS_SPFEVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/dnsq.h"
#include "tools/spf.h"

enum spf_result {
	SPF_R_NONE = 0,
	SPF_R_NEUTRAL,
	SPF_R_PASS,
	SPF_R_FAIL,
	SPF_R_SOFTFAIL,
	SPF_R_TEMPERROR,
	SPF_R_PERMERROR,
};

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" (RFC 7208 2.6). */
const char *spf_result_name(enum spf_result r);

/*
 * The lookups check_host() needs. Each returns a dnsq_status and fills out
 * only on DNSQ_OK (freed by the caller with dnsq_list_free). For the void
 * lookup limit (4.6.4), DNSQ_NXDOMAIN and DNSQ_NODATA both count as void.
 *   txt:   TXT records of name, character-strings joined (3.3)
 *   addrs: A (family AF_INET) or AAAA (AF_INET6) records of name, as text
 *   mx:    MX records of name as "PREF HOST" (dnsq_mx's form)
 *   ptr:   PTR names of an address given as text
 */
struct spf_dns {
	void *ctx;
	enum dnsq_status (*txt)(void *ctx, const char *name, struct dnsq_list *out);
	enum dnsq_status (*addrs)(void *ctx, const char *name, int family, struct dnsq_list *out);
	enum dnsq_status (*mx)(void *ctx, const char *name, struct dnsq_list *out);
	enum dnsq_status (*ptr)(void *ctx, const char *ip, struct dnsq_list *out);
};

/* The lookups of tools/dnsq (the servers set with dnsq_set_servers, else resolv.conf). */
const struct spf_dns *spf_dns_system(void);

struct spf_eval_opts {
	/*
	 * Evaluate this record text as if it were the one SPF record published
	 * at the sender's domain (the top-level check_host() only: includes
	 * and redirects are looked up). NULL: look it up. For `dns spf`'s
	 * "after" column and for checking a record before it is published.
	 */
	const char *record;
	/* The receiving host's name for %{r} (7.3); NULL = "unknown". */
	const char *receiver;
	/* Seconds since the epoch for %{t}; 0 = time(NULL). */
	long long now;
};

#define SPF_EVAL_TRACE_MAX 64

struct spf_eval {
	enum spf_result result;
	/* The term that decided ("ip4:192.0.2.0/24", "-all", "default"), or
	 * the reason for none/temperror/permerror, one line. */
	char why[512];
	/* The expanded exp= explanation for a fail, "" otherwise (6.2). */
	char explanation[1024];
	/* What the evaluation used: DNS-querying terms and void lookups (4.6.4). */
	int lookups;
	int void_lookups;
	/* Set when the result is permerror because a processing limit was passed. */
	bool over_limit;
	/* One line per lookup, include, redirect and match, in order (at most
	 * SPF_EVAL_TRACE_MAX; trace_dropped counts the rest). */
	char *trace[SPF_EVAL_TRACE_MAX];
	size_t ntrace;
	size_t trace_dropped;
};

/*
 * check_host(ip, domain of sender, sender) with helo as the HELO/EHLO
 * identity (RFC 7208 4). sender is "local@domain"; "" or NULL means the
 * null reverse path, evaluated as postmaster@helo (2.4). A sender without
 * '@' is taken as a domain, local part "postmaster" (4.3). The result
 * is in out; returns 0, or -1 only when out could not be filled (bad
 * arguments: out->why says). Free with spf_eval_free.
 */
int spf_eval(const struct spf_dns *dns, const struct spf_ip *ip, const char *sender,
             const char *helo, const struct spf_eval_opts *opts, struct spf_eval *out);

/* Free out's trace; out may be evaluated into again afterwards. */
void spf_eval_free(struct spf_eval *out);

#endif
