/*
 * tools/spf_lint: findings on a published SPF record (see tools/spf_lint.h).
 *
 * The syntax is RFC 7208 section 12's ABNF, checked term by term the way a
 * receiver checks the whole record before evaluating anything (4.6): one
 * term that does not parse makes the record a permerror for every sender.
 */
#include "tools/spf_lint.h"
#include "tools/spf_int.h"
#include "tools/spfeval_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define WALK_DEPTH 10   /* include/redirect nesting followed */
#define WALK_GIVE_UP 60 /* far past the limit: stop querying */
#define WIDE_IP4 8      /* ip4 prefixes shorter than this: 1/256 of IPv4 or more */
#define WIDE_IP6 16     /* ip6 prefixes shorter than this */

static const char *const names[SPF_F_COUNT] = {
    [SPF_F_SYNTAX] = "spf-syntax",
    [SPF_F_UNKNOWN] = "spf-unknown",
    [SPF_F_TWICE] = "spf-modifiers",
    [SPF_F_PLUS_ALL] = "spf-all",
    [SPF_F_NEUTRAL_ALL] = "spf-all",
    [SPF_F_NO_ALL] = "spf-all",
    [SPF_F_REDIRECT_IGN] = "spf-redirect",
    [SPF_F_AFTER_ALL] = "spf-after-all",
    [SPF_F_PTR] = "spf-ptr",
    [SPF_F_HOST_BITS] = "spf-host-bits",
    [SPF_F_WIDE] = "spf-wide",
    [SPF_F_CIDR] = "spf-cidr",
    [SPF_F_LENGTH] = "spf-length",
    [SPF_F_TARGET] = "spf-include",
    [SPF_F_LOOP] = "spf-loop",
    [SPF_F_LOOKUPS] = "spf-lookups",
    [SPF_F_VOID] = "spf-void-lookups",
    [SPF_F_MX_NAMES] = "spf-mx-names",
    [SPF_F_PTR_NAMES] = "spf-ptr-names",
};

const char *
spf_finding_name(enum spf_fcode code)
{
	return (unsigned)code < SPF_F_COUNT ? names[code] : "spf";
}

bool
spf_finding_permerror(enum spf_fcode code)
{
	switch (code) {
	case SPF_F_SYNTAX:
	case SPF_F_UNKNOWN:
	case SPF_F_TWICE:
	case SPF_F_TARGET:
	case SPF_F_LOOP:
	case SPF_F_LOOKUPS:
	case SPF_F_VOID:
	case SPF_F_MX_NAMES:
		return true;
	default:
		return false;
	}
}

/* Count one occurrence of code and append its term or name to the list. */
static void
note(struct spf_findings *out, enum spf_fcode code, const char *fmt, ...)
{
	struct spf_finding *f = &out->f[code];
	size_t len = strlen(f->what);
	va_list ap;

	f->count++;
	if (len + 8 >= sizeof f->what)
		return;
	if (len > 0) {
		memcpy(f->what + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(f->what + len, sizeof f->what - len, fmt, ap);
	va_end(ap);
}

/* ---- syntax (RFC 7208 12) ---- */

/* A macro-string (7.1); c, r and t are for exp= explanations only (7.2). */
static const char *
macro_error(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x21 || ch > 0x7e)
			return "a character outside printable ASCII";
		if (ch != '%')
			continue;
		if (++i >= n)
			return "'%' at the end (write %% for a percent sign)";
		if (s[i] == '%' || s[i] == '_' || s[i] == '-')
			continue;
		if (s[i] != '{')
			return "'%' not followed by {, %, _ or - (RFC 7208 7.1)";
		if (++i >= n || strchr("slodiphv", tolower((unsigned char)s[i])) == NULL)
			return "a macro letter other than s l o d i p h v (RFC 7208 7.2)";
		i++;
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
		if (i < n && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < n && strchr(".-+,/_=", s[i]) != NULL)
			i++;
		if (i >= n || s[i] != '}')
			return "a macro without its closing } (RFC 7208 7.1)";
	}
	return NULL;
}

/* RFC 7208 12 toplabel: alphanumerics with a letter, or inner hyphens. */
static bool
toplabel_ok(const char *s, size_t n)
{
	bool alpha = false, dash = false;

	if (n == 0 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '-')
			dash = true;
		else if (isalpha((unsigned char)s[i]))
			alpha = true;
		else if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return alpha || dash;
}

/* A domain-spec: a macro-string ending in a macro or in "." toplabel ["."]. */
static const char *
domain_error(const char *s, size_t n)
{
	const char *e = macro_error(s, n);
	size_t dot;

	if (n == 0)
		return "an empty domain";
	if (e != NULL)
		return e;
	if (s[n - 1] == '}' || (n >= 2 && s[n - 2] == '%'))
		return NULL;
	if (s[n - 1] == '.')
		n--;
	for (dot = n; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return "a domain with a single label (RFC 7208 12 wants a dot and a top label)";
	if (!toplabel_ok(s + dot, n - dot))
		return "a top label that is not a valid name (RFC 7208 12)";
	return NULL;
}

/* A prefix length: decimal, no leading zero, at most max. -1 when invalid. */
static int
prefix_len(const char *s, size_t n, int max)
{
	int v = 0;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* dual-cidr-length: "/n", "//m" or "/n//m" (5.3, 5.4); absent ones are -1. */
static const char *
dual_cidr(const char *s, size_t n, int *v4, int *v6)
{
	const char *dd;

	*v4 = -1;
	*v6 = -1;
	if (n == 0)
		return NULL;
	dd = n >= 2 ? strstr(s, "//") : NULL;
	if (dd != NULL && (size_t)(dd - s) >= n)
		dd = NULL;
	if (dd != s && (*v4 = prefix_len(s + 1, (dd ? (size_t)(dd - s) : n) - 1, 32)) < 0)
		return "an IPv4 prefix length that is not 0-32";
	if (dd != NULL && (*v6 = prefix_len(dd + 2, n - (size_t)(dd - s) - 2, 128)) < 0)
		return "an IPv6 prefix length that is not 0-128";
	return NULL;
}

/* Where the domain-spec of a mechanism ends: at the cidr's '/'. */
static size_t
spec_len(const char *arg, size_t arglen)
{
	const char *slash = memchr(arg, '/', arglen);

	return slash != NULL ? (size_t)(slash - arg) : arglen;
}

/* ip4:/ip6: network and prefix; notes host bits and world-wide prefixes. */
static const char *
ip_error(const struct term *t, struct spf_findings *out)
{
	int family = t->kind == TK_IP4 ? AF_INET : AF_INET6, max = family == AF_INET ? 32 : 128;
	size_t sl = t->arg != NULL ? spec_len(t->arg, t->arglen) : 0;
	char buf[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	unsigned char a[16];
	int bits = max;

	if (t->arg == NULL || sl == 0 || sl >= sizeof buf)
		return "no address";
	memcpy(buf, t->arg, sl);
	buf[sl] = '\0';
	if (inet_pton(family, buf, a) != 1)
		return family == AF_INET ? "not an IPv4 address" : "not an IPv6 address";
	if (sl < t->arglen && (bits = prefix_len(t->arg + sl + 1, t->arglen - sl - 1, max)) < 0)
		return "a prefix length out of range";
	if (bits < (family == AF_INET ? WIDE_IP4 : WIDE_IP6))
		note(out, SPF_F_WIDE, "%.*s", (int)t->len, t->text);
	for (int b = bits; b < max; b++) {
		if (a[b / 8] & (0x80 >> (b % 8))) {
			for (int c = bits; c < max; c++)
				a[c / 8] &= (unsigned char)~(0x80 >> (c % 8));
			inet_ntop(family, a, net, sizeof net);
			note(out, SPF_F_HOST_BITS, "%.*s matches %s/%d", (int)t->len, t->text, net,
			     bits);
			break;
		}
	}
	return NULL;
}

/* The text after the mechanism name: ":..." and/or "/..." (or ""). */
static void
mech_rest(const struct term *t, const char **rest, size_t *restlen)
{
	size_t i = t->qual ? 1 : 0;

	while (i < t->len && t->text[i] != ':' && t->text[i] != '/')
		i++;
	*rest = t->text + i;
	*restlen = t->len - i;
}

/* a, mx, ptr, include, exists, all: the domain-spec and cidr rules of each. */
static const char *
mech_error(const struct term *t, struct spf_findings *out)
{
	const char *rest, *e;
	size_t rl, sl = 0;
	bool spec_required = t->kind == TK_INCLUDE || t->kind == TK_EXISTS;
	bool cidr_allowed = t->kind == TK_A || t->kind == TK_MX;
	int v4, v6;

	mech_rest(t, &rest, &rl);
	if (t->kind == TK_ALL)
		return rl == 0 ? NULL : "all takes no argument";
	if (rl > 0 && rest[0] == ':') {
		sl = spec_len(rest + 1, rl - 1);
		if ((e = domain_error(rest + 1, sl)) != NULL)
			return e;
		sl++;
	} else if (spec_required) {
		return "needs a domain after ':'";
	}
	if (sl == rl)
		return NULL;
	if (!cidr_allowed)
		return "takes no prefix length";
	if ((e = dual_cidr(rest + sl, rl - sl, &v4, &v6)) != NULL)
		return e;
	if ((v4 >= 0 && v4 < 32) || (v6 >= 0 && v6 < 128))
		note(out, SPF_F_CIDR, "%.*s", (int)t->len, t->text);
	return NULL;
}

/* modifier name: ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) (12). */
static const char *
modifier_error(const struct term *t)
{
	size_t nl = (size_t)(t->arg - t->text) - 1;

	for (size_t i = 1; i < nl; i++)
		if (!isalnum((unsigned char)t->text[i]) && strchr("-_.", t->text[i]) == NULL)
			return "a modifier name with characters other than letters, digits, - _ .";
	if (t->kind == TK_REDIRECT || t->kind == TK_EXP)
		return domain_error(t->arg, t->arglen);
	return macro_error(t->arg, t->arglen);
}

/* One term: a syntax finding, or the term-level warnings it carries. */
static void
lint_term(const struct term *t, struct spf_findings *out)
{
	const char *e = NULL;

	switch (t->kind) {
	case TK_UNKNOWN:
		note(out, SPF_F_UNKNOWN, "%.*s", (int)t->len, t->text);
		return;
	case TK_IP4:
	case TK_IP6:
		e = ip_error(t, out);
		break;
	case TK_REDIRECT:
	case TK_EXP:
	case TK_MODIFIER:
		e = modifier_error(t);
		break;
	default:
		e = mech_error(t, out);
		break;
	}
	if (e != NULL)
		note(out, SPF_F_SYNTAX, "%.*s: %s", (int)t->len, t->text, e);
	if (t->kind == TK_PTR)
		note(out, SPF_F_PTR, "%.*s", (int)t->len, t->text);
}

int
spf_lint_terms(const char *record, struct spf_findings *out)
{
	struct terms t;
	const struct term *all = NULL;
	int redirects = 0, exps = 0;

	memset(out, 0, sizeof *out);
	if (spf_split_terms(record, &t, NULL, 0) != 0)
		return -1;
	for (size_t i = 0; i < t.n; i++) {
		const struct term *m = &t.v[i];

		lint_term(m, out);
		if (all != NULL && spf_is_mechanism(m->kind))
			note(out, SPF_F_AFTER_ALL, "%.*s", (int)m->len, m->text);
		if (m->kind == TK_ALL && all == NULL)
			all = m;
		redirects += m->kind == TK_REDIRECT;
		exps += m->kind == TK_EXP;
	}
	if (redirects > 1)
		note(out, SPF_F_TWICE, "redirect= %d times", redirects);
	if (exps > 1)
		note(out, SPF_F_TWICE, "exp= %d times", exps);
	if (all != NULL && (all->qual == 0 || all->qual == '+'))
		note(out, SPF_F_PLUS_ALL, "%.*s", (int)all->len, all->text);
	else if (all != NULL && all->qual == '?')
		note(out, SPF_F_NEUTRAL_ALL, "%.*s", (int)all->len, all->text);
	else if (all == NULL && redirects == 0)
		note(out, SPF_F_NO_ALL, "no all, no redirect=");
	if (all != NULL && redirects > 0)
		note(out, SPF_F_REDIRECT_IGN, "redirect= with %.*s", (int)all->len, all->text);
	if (strlen(record) > SPF_UDP_MAX)
		note(out, SPF_F_LENGTH, "%zu bytes", strlen(record));
	free(t.v);
	return 0;
}

/* ---- the record to publish instead ---- */

/* true when term t carries finding code by itself. */
static bool
term_has(const struct term *t, enum spf_fcode code)
{
	struct spf_findings *one = calloc(1, sizeof *one);
	bool has;

	if (one == NULL)
		return false;
	lint_term(t, one);
	has = one->f[code].count > 0;
	free(one);
	return has;
}

/* ip4:/ip6: with the host bits cleared, into buf (the qualifier kept). */
static void
network_term(const struct term *t, char *buf, size_t len)
{
	int family = t->kind == TK_IP4 ? AF_INET : AF_INET6;
	size_t sl = spec_len(t->arg, t->arglen);
	char addr[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	unsigned char a[16];
	int bits = prefix_len(t->arg + sl + 1, t->arglen - sl - 1, family == AF_INET ? 32 : 128);

	snprintf(addr, sizeof addr, "%.*s", (int)sl, t->arg);
	inet_pton(family, addr, a);
	for (int c = bits; c < (family == AF_INET ? 32 : 128); c++)
		a[c / 8] &= (unsigned char)~(0x80 >> (c % 8));
	inet_ntop(family, a, net, sizeof net);
	snprintf(buf, len, "%s%s:%s/%d", t->qual ? (char[2]){t->qual, 0} : "",
	         family == AF_INET ? "ip4" : "ip6", net, bits);
}

/* What becomes of term i for code: written as is, rewritten into buf, or left out. */
static const char *
fix_term(const struct terms *t, size_t i, enum spf_fcode code, int *seen, char *buf, size_t len)
{
	const struct term *m = &t->v[i];

	switch (code) {
	case SPF_F_PLUS_ALL:
	case SPF_F_NEUTRAL_ALL:
		return m->kind == TK_ALL && (*seen)++ == 0 ? "~all" : buf;
	case SPF_F_REDIRECT_IGN:
		return m->kind == TK_REDIRECT ? NULL : buf;
	case SPF_F_TWICE:
		return (m->kind == TK_REDIRECT && (seen[0]++) > 0) ||
		               (m->kind == TK_EXP && (seen[1]++) > 0)
		           ? NULL
		           : buf;
	case SPF_F_AFTER_ALL:
		return m->kind == TK_ALL ? NULL : buf;
	case SPF_F_HOST_BITS:
		if (term_has(m, SPF_F_HOST_BITS))
			network_term(m, buf, len);
		return buf;
	case SPF_F_SYNTAX:
	case SPF_F_UNKNOWN:
	case SPF_F_WIDE:
		return term_has(m, code) ? NULL : buf;
	default:
		return buf;
	}
}

char *
spf_lint_fix(const char *record, enum spf_fcode code)
{
	struct terms t;
	char *out = NULL, term[300];
	size_t cap = 2 * strlen(record) + 128, len = 6, last_mech = 0;
	int seen[2] = {0, 0};
	const struct term *all = NULL;

	if (code == SPF_F_PTR || code == SPF_F_CIDR || code == SPF_F_LENGTH ||
	    code >= SPF_F_TARGET || spf_split_terms(record, &t, NULL, 0) != 0)
		return NULL;
	for (size_t i = 0; i < t.n; i++) {
		if (t.v[i].kind == TK_ALL && all == NULL)
			all = &t.v[i];
		if (spf_is_mechanism(t.v[i].kind))
			last_mech = i;
	}
	if ((out = malloc(cap)) == NULL)
		goto done;
	memcpy(out, "v=spf1", 7);
	for (size_t i = 0; i < t.n; i++) {
		const char *w;

		snprintf(term, sizeof term, "%.*s", (int)t.v[i].len, t.v[i].text);
		w = fix_term(&t, i, code, seen, term, sizeof term);
		if (w != NULL)
			len += (size_t)snprintf(out + len, cap - len, " %s", w);
		if (code == SPF_F_AFTER_ALL && i == last_mech && all != NULL)
			len += (size_t)snprintf(out + len, cap - len, " %.*s", (int)all->len,
			                        all->text);
		if (code == SPF_F_NO_ALL && i == last_mech)
			len += (size_t)snprintf(out + len, cap - len, " ~all");
	}
	if (code == SPF_F_NO_ALL && t.n == 0)
		snprintf(out + len, cap - len, " ~all");
done:
	free(t.v);
	return out;
}

/* ---- the tree walk (RFC 7208 4.6.4) ---- */

struct walker {
	const struct spf_dns *dns;
	const struct spf_ip *ips;
	size_t nips;
	struct spf_findings *out;
	char path[WALK_DEPTH + 1][256]; /* domains being walked, for loops */
	int depth;
};

static void walk_record(struct walker *w, const char *domain, const char *record);

/* NXDOMAIN and NODATA answers are void lookups (4.6.4). */
static bool
is_void(enum dnsq_status st)
{
	return st == DNSQ_NXDOMAIN || st == DNSQ_NODATA;
}

/*
 * The target of a term: its domain-spec lowercased without the trailing
 * dot, or the current domain. false (and the lookup counted as not
 * followed) when it holds a macro, which only an evaluation can expand.
 */
static bool
term_target(struct walker *w, const struct term *t, const char *domain, char *buf, size_t len)
{
	const char *rest;
	size_t rl, sl;

	if (t->kind == TK_REDIRECT) {
		rest = t->arg;
		sl = t->arglen;
	} else {
		mech_rest(t, &rest, &rl);
		if (rl == 0 || rest[0] != ':') {
			snprintf(buf, len, "%s", domain);
			return true;
		}
		rest++;
		sl = spec_len(rest, rl - 1);
	}
	if (memchr(rest, '%', sl) != NULL || sl == 0 || sl >= len) {
		w->out->not_followed++;
		return false;
	}
	for (size_t i = 0; i < sl; i++)
		buf[i] = (char)tolower((unsigned char)rest[i]);
	buf[sl] = '\0';
	if (buf[sl - 1] == '.')
		buf[sl - 1] = '\0';
	return true;
}

/*
 * The evaluator's own parser on a record the walk reaches (RFC 7208 4.6:
 * a term that does not parse is a permerror for every sender whose
 * evaluation reaches the record); false after noting it.
 */
static bool
target_parses(struct walker *w, const char *how, const char *target, const char *rec)
{
	struct spfe_record r;
	char why[300];
	bool ok = spfe_parse(rec, &r, why, sizeof why) == 0;

	spfe_record_free(&r);
	if (!ok)
		note(w->out, SPF_F_TARGET, "%s%s: its record \"%s\" does not parse (%s)", how,
		     target, rec, why);
	return ok;
}

/* include: or redirect=: the target's one SPF record, walked (5.2, 6.1). */
static void
follow(struct walker *w, const struct term *t, const char *target)
{
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st;
	const char *how = t->kind == TK_REDIRECT ? "redirect=" : "include:";
	char *rec = NULL;
	size_t n = 0;

	for (int i = 0; i < w->depth; i++)
		if (strcmp(w->path[i], target) == 0) {
			note(w->out, SPF_F_LOOP, "%s%s from %s", how, target,
			     w->path[w->depth - 1]);
			return;
		}
	st = w->dns->txt(w->dns->ctx, target, &l);
	if (is_void(st)) {
		w->out->voids++;
		note(w->out, SPF_F_VOID, "%s (%s%s)", target, how, target);
	}
	for (size_t i = 0; i < l.n; i++)
		if (spf_is_record(l.v[i]) && n++ == 0)
			rec = l.v[i];
	if (st == DNSQ_FAIL)
		note(w->out, SPF_F_TARGET, "%s%s: %s", how, target, dnsq_strerror(st));
	else if (n == 0)
		note(w->out, SPF_F_TARGET, "%s%s: publishes no SPF record", how, target);
	else if (n > 1)
		note(w->out, SPF_F_TARGET, "%s%s: publishes %zu SPF records", how, target, n);
	else if (w->depth >= WALK_DEPTH)
		note(w->out, SPF_F_TARGET, "%s%s: nested too deeply", how, target);
	else if (!target_parses(w, how, target, rec))
		; /* 4.6: its whole syntax is checked before any term is evaluated */
	else
		walk_record(w, target, rec);
	dnsq_list_free(&l);
}

/* An address lookup of a, exists and each mx host: voids counted. */
static void
addr_lookup(struct walker *w, const char *name, bool counts_void)
{
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st = w->dns->addrs(w->dns->ctx, name, AF_INET, &l);

	if (is_void(st) && counts_void) {
		w->out->voids++;
		note(w->out, SPF_F_VOID, "%s (A)", name);
	}
	dnsq_list_free(&l);
}

static void
mx_lookup(struct walker *w, const char *name)
{
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st = w->dns->mx(w->dns->ctx, name, &l);

	if (is_void(st)) {
		w->out->voids++;
		note(w->out, SPF_F_VOID, "%s (MX)", name);
	}
	if (l.n > SPF_NAMES_LIMIT)
		note(w->out, SPF_F_MX_NAMES, "mx:%s has %zu MX names", name, l.n);
	/* 4.6.4: each MX host's address lookup counts for the void limit too */
	for (size_t i = 0; i < l.n && i < SPF_NAMES_LIMIT; i++) {
		const char *host = strchr(l.v[i], ' ');

		if (host != NULL && host[1] != '\0' && strcmp(host + 1, ".") != 0)
			addr_lookup(w, host + 1, true);
	}
	dnsq_list_free(&l);
}

/* ptr: the relay's PTR names; past 10 the rest are ignored (4.6.4). */
static void
ptr_lookup(struct walker *w)
{
	char ip[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < w->nips; i++) {
		struct dnsq_list l = {NULL, 0};

		spf_ip_format(&w->ips[i], ip, sizeof ip);
		w->dns->ptr(w->dns->ctx, ip, &l);
		if (l.n > SPF_NAMES_LIMIT)
			note(w->out, SPF_F_PTR_NAMES, "%s has %zu PTR names", ip, l.n);
		dnsq_list_free(&l);
	}
}

/* One DNS-querying term, in evaluation order. */
static void
walk_term(struct walker *w, const struct term *t, const char *domain)
{
	char target[256];

	w->out->lookups++;
	if (w->out->lookups > WALK_GIVE_UP)
		return;
	if (t->kind == TK_PTR) {
		ptr_lookup(w);
		return;
	}
	if (!term_target(w, t, domain, target, sizeof target))
		return;
	if (t->kind == TK_INCLUDE || t->kind == TK_REDIRECT)
		follow(w, t, target);
	else if (t->kind == TK_MX)
		mx_lookup(w, target);
	else
		addr_lookup(w, target, true);
}

/* Every term up to the first all (never past it: all always matches). */
static void
walk_record(struct walker *w, const char *domain, const char *record)
{
	struct terms t;
	const struct term *redirect = NULL;
	bool all = false;

	if (spf_split_terms(record, &t, NULL, 0) != 0)
		return;
	snprintf(w->path[w->depth++], sizeof w->path[0], "%s", domain);
	for (size_t i = 0; i < t.n && !all; i++) {
		if (t.v[i].kind == TK_ALL)
			all = true;
		else if (t.v[i].kind == TK_REDIRECT && redirect == NULL)
			redirect = &t.v[i];
		else if (spf_costs_lookup(t.v[i].kind))
			walk_term(w, &t.v[i], domain);
	}
	if (redirect != NULL && !all)
		walk_term(w, redirect, domain);
	w->depth--;
	free(t.v);
}

void
spf_lint_tree(const char *domain, const char *record, const struct spf_dns *dns,
              const struct spf_ip *ips, size_t nips, struct spf_findings *out)
{
	struct walker *w = calloc(1, sizeof *w);

	if (w == NULL)
		return;
	w->dns = dns;
	w->ips = ips;
	w->nips = nips;
	w->out = out;
	walk_record(w, domain, record);
	out->walked = true;
	if (out->lookups > SPF_LOOKUP_LIMIT)
		note(out, SPF_F_LOOKUPS, "%d", out->lookups);
	if (out->voids <= SPF_VOID_LIMIT) {
		out->f[SPF_F_VOID].count = 0;
		out->f[SPF_F_VOID].what[0] = '\0';
	}
	free(w);
}
