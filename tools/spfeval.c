/*
 * tools/spfeval: RFC 7208 check_host() (see tools/spfeval.h).
 *
 * One evaluation is a struct st: the client, the sender, the counters of
 * 4.6.4 shared by every include and redirect, the first error's reason.
 * check_host() recurses for include and redirect; each of those counts as
 * a DNS-querying term, so the depth is bounded by the limit of 10 (and
 * DEPTH_MAX guards it regardless).
 */
#include "tools/spfeval_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define TERMS_MAX 10 /* DNS-querying terms per evaluation, RFC 7208 4.6.4 */
#define VOID_MAX 2   /* void lookups per evaluation, 4.6.4 */
#define MX_MAX 10    /* MX names per mx mechanism, 4.6.4 */
#define PTR_MAX 10   /* PTR names per ptr mechanism or %{p}, 4.6.4 */
#define DEPTH_MAX 12

enum match { M_NO, M_YES, M_TEMP, M_PERM };

struct st {
	const struct spf_dns *dns;
	struct spf_ip ip;
	char ipstr[64];
	char *sender, *local;
	const char *odom, *helo;
	const struct spf_eval_opts *opts;
	struct spf_eval *out;
	const char *domain;    /* the current <domain>, for %{d} and %{p} */
	struct dnsq_list ptrs; /* validated PTR names, once computed */
	bool ptrs_done;
	bool stopped; /* a limit was passed inside a %{p} expansion */
};

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
	    [SPF_R_NONE] = "none",           [SPF_R_NEUTRAL] = "neutral",
	    [SPF_R_PASS] = "pass",           [SPF_R_FAIL] = "fail",
	    [SPF_R_SOFTFAIL] = "softfail",   [SPF_R_TEMPERROR] = "temperror",
	    [SPF_R_PERMERROR] = "permerror",
	};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "permerror";
}

static void
trace(struct st *st, const char *fmt, ...)
{
	struct spf_eval *o = st->out;
	char line[512];
	va_list ap;

	if (o->ntrace >= SPF_EVAL_TRACE_MAX) {
		o->trace_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if ((o->trace[o->ntrace] = strdup(line)) != NULL)
		o->ntrace++;
}

/* Record the first error's reason; returns res so callers can return it. */
static enum spf_result
error(struct st *st, enum spf_result res, bool limit, const char *fmt, ...)
{
	va_list ap;

	if (st->out->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(st->out->why, sizeof st->out->why, fmt, ap);
		va_end(ap);
		if (limit)
			st->out->over_limit = true;
		trace(st, "error: %s", st->out->why);
	}
	return res;
}

/* A name DNS can hold: labels of 1-63 octets, at most 253 in all, one trailing dot allowed (4.3).
 */
static bool
name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '.') {
			label++;
			continue;
		}
		if (label == 0 || label > 63)
			return false;
		label = 0;
	}
	return true;
}

enum qtype { Q_TXT, Q_ADDRS, Q_MX, Q_PTR };

/*
 * One lookup through st->dns. M_YES with l filled, M_NO for a void answer
 * (NXDOMAIN or no records: counted, 4.6.4), M_TEMP for a DNS failure,
 * M_PERM when this void lookup is one too many. count_void false for the
 * exp= text, which 4.6.4 does not count.
 */
static enum match
lookup(struct st *st, enum qtype q, const char *name, int family, struct dnsq_list *l,
       bool count_void)
{
	static const char *const qn[] = {"TXT", "A/AAAA", "MX", "PTR"};
	enum dnsq_status s = DNSQ_NXDOMAIN;

	memset(l, 0, sizeof *l);
	if (q == Q_PTR || name_ok(name)) {
		s = q == Q_TXT     ? st->dns->txt(st->dns->ctx, name, l)
		    : q == Q_ADDRS ? st->dns->addrs(st->dns->ctx, name, family, l)
		    : q == Q_MX    ? st->dns->mx(st->dns->ctx, name, l)
		                   : st->dns->ptr(st->dns->ctx, name, l);
	}
	if (s == DNSQ_OK && l->n == 0)
		s = DNSQ_NODATA;
	trace(st, "lookup %s %s: %s (%zu)", qn[q], name, dnsq_strerror(s), l->n);
	if (s == DNSQ_OK)
		return M_YES;
	dnsq_list_free(l);
	if (s == DNSQ_FAIL)
		return M_TEMP;
	if (count_void && ++st->out->void_lookups > VOID_MAX) {
		error(st, SPF_R_PERMERROR, true,
		      "more than %d void lookups (RFC 7208 4.6.4), the last %s %s", VOID_MAX, qn[q],
		      name);
		return M_PERM;
	}
	return M_NO;
}

/* Count one DNS-querying term (4.6.4); false when it is one too many. */
static bool
count_term(struct st *st, const char *text, size_t len)
{
	if (++st->out->lookups <= TERMS_MAX)
		return true;
	error(st, SPF_R_PERMERROR, true,
	      "more than %d DNS-querying terms (RFC 7208 4.6.4), the 11th is \"%.*s\"", TERMS_MAX,
	      (int)len, text);
	return false;
}

static bool
in_net(const struct spf_ip *ip, const struct spf_ip *net, int prefix)
{
	int bytes = prefix / 8, bits = prefix % 8;

	if (ip->family != net->family)
		return false;
	if (memcmp(ip->addr, net->addr, (size_t)bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	return ((ip->addr[bytes] ^ net->addr[bytes]) & (0xff << (8 - bits)) & 0xff) == 0;
}

/* Whether any address text of l is in the client's network at its prefix. */
static bool
list_match(const struct st *st, const struct dnsq_list *l, int cidr4, int cidr6)
{
	for (size_t i = 0; i < l->n; i++) {
		struct spf_ip a;

		if (spf_ip_parse(l->v[i], st->ip.family, &a) == 0 &&
		    in_net(&st->ip, &a, st->ip.family == AF_INET ? cidr4 : cidr6))
			return true;
	}
	return false;
}

/*
 * The client's validated PTR names (5.5): at most PTR_MAX of the names
 * its PTR lookup gives, each kept when its A/AAAA records hold the client.
 * Computed once per evaluation. M_PERM when a void lookup was too many.
 */
static enum match
validated_ptrs(struct st *st)
{
	struct dnsq_list names;
	enum match m;

	if (st->ptrs_done)
		return M_YES;
	st->ptrs_done = true;
	m = lookup(st, Q_PTR, st->ipstr, 0, &names, true);
	if (m != M_YES) /* a failed PTR lookup makes ptr not match (5.5) */
		return m == M_PERM ? M_PERM : M_YES;
	for (size_t i = 0; i < names.n && i < PTR_MAX; i++) {
		struct dnsq_list addrs;

		m = lookup(st, Q_ADDRS, names.v[i], st->ip.family, &addrs, true);
		if (m == M_PERM)
			break;
		if (m == M_YES && list_match(st, &addrs, 32, 128)) {
			char *d = strdup(names.v[i]), **nv;

			nv = d ? realloc(st->ptrs.v, (st->ptrs.n + 1) * sizeof *nv) : NULL;
			if (nv == NULL) {
				free(d);
			} else {
				st->ptrs.v = nv;
				st->ptrs.v[st->ptrs.n++] = d;
			}
		}
		dnsq_list_free(&addrs);
	}
	dnsq_list_free(&names);
	return m == M_PERM ? M_PERM : M_YES;
}

/* name equals domain or is a subdomain of it (5.5), without case. */
static bool
is_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n < d || strncasecmp(name + n - d, domain, d) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* %{p} (7.3): the current domain if validated, else a validated subdomain of it, else any. */
static const char *
pname(void *ctx)
{
	struct st *st = ctx;

	if (validated_ptrs(st) == M_PERM) {
		st->stopped = true;
		return NULL;
	}
	for (size_t i = 0; i < st->ptrs.n; i++)
		if (strcasecmp(st->ptrs.v[i], st->domain) == 0)
			return st->ptrs.v[i];
	for (size_t i = 0; i < st->ptrs.n; i++)
		if (is_within(st->ptrs.v[i], st->domain))
			return st->ptrs.v[i];
	return st->ptrs.n > 0 ? st->ptrs.v[0] : "unknown";
}

/* Expand a checked domain-spec (or the exp text) for the current domain. */
static char *
expand(struct st *st, const char *spec, size_t len, bool exp)
{
	struct spfe_macro_env env = {
	    .sender = st->sender,
	    .local = st->local,
	    .odom = st->odom,
	    .domain = st->domain,
	    .helo = st->helo,
	    .receiver = st->opts ? st->opts->receiver : NULL,
	    .ip = &st->ip,
	    .now = st->opts ? st->opts->now : 0,
	    .pname = pname,
	    .ctx = st,
	};
	char *out;

	if (spfe_macro_expand(&env, spec, len, exp, &out) != 0) {
		if (!st->stopped)
			error(st, SPF_R_PERMERROR, false, "cannot expand \"%.*s\"", (int)len, spec);
		return NULL;
	}
	return out;
}

static enum match
mech_a(struct st *st, const char *target, int cidr4, int cidr6)
{
	struct dnsq_list l;
	enum match m = lookup(st, Q_ADDRS, target, st->ip.family, &l, true);

	if (m != M_YES)
		return m;
	m = list_match(st, &l, cidr4, cidr6) ? M_YES : M_NO;
	dnsq_list_free(&l);
	return m;
}

static int
mx_cmp(const void *a, const void *b)
{
	return atoi(*(char *const *)a) - atoi(*(char *const *)b);
}

/* mx (5.4): more than MX_MAX names is a permerror; each name's addresses at the prefix. */
static enum match
mech_mx(struct st *st, const char *target, int cidr4, int cidr6)
{
	struct dnsq_list l;
	enum match m = lookup(st, Q_MX, target, 0, &l, true);

	if (m != M_YES)
		return m;
	if (l.n > MX_MAX) {
		dnsq_list_free(&l);
		error(st, SPF_R_PERMERROR, true, "%s has more than %d MX names (RFC 7208 4.6.4)",
		      target, MX_MAX);
		return M_PERM;
	}
	qsort(l.v, l.n, sizeof *l.v, mx_cmp);
	m = M_NO;
	for (size_t i = 0; i < l.n && m == M_NO; i++) {
		const char *host = strchr(l.v[i], ' ');

		m = mech_a(st, host ? host + 1 : l.v[i], cidr4, cidr6);
	}
	dnsq_list_free(&l);
	return m;
}

static enum match
mech_exists(struct st *st, const char *target)
{
	struct dnsq_list l;
	/* 5.7: always an A lookup, whatever the client's family */
	enum match m = lookup(st, Q_ADDRS, target, AF_INET, &l, true);

	dnsq_list_free(&l);
	return m;
}

static enum match
mech_ptr(struct st *st, const char *target)
{
	if (validated_ptrs(st) == M_PERM)
		return M_PERM;
	for (size_t i = 0; i < st->ptrs.n; i++)
		if (is_within(st->ptrs.v[i], target))
			return M_YES;
	return M_NO;
}

static enum spf_result check_host(struct st *st, const char *domain, const char *record, int depth,
                                  bool top);

/* include (5.2): its result mapped by the table of 5.2. */
static enum match
mech_include(struct st *st, const char *target, int depth)
{
	const char *saved = st->domain;
	enum spf_result r;

	trace(st, "include %s", target);
	r = check_host(st, target, NULL, depth + 1, false);
	st->domain = saved;
	switch (r) {
	case SPF_R_PASS:
		return M_YES;
	case SPF_R_TEMPERROR:
		return M_TEMP;
	case SPF_R_NONE:
		error(st, SPF_R_PERMERROR, false, "include:%s has no SPF record (RFC 7208 5.2)",
		      target);
		return M_PERM;
	case SPF_R_PERMERROR:
		return M_PERM;
	default:
		return M_NO;
	}
}

/* One mechanism of the current record. */
static enum match
mechanism(struct st *st, const struct spfe_term *t, int depth)
{
	char *target;
	enum match m;

	if (t->kind == SPFE_ALL)
		return M_YES;
	if (t->kind == SPFE_IP4 || t->kind == SPFE_IP6)
		return in_net(&st->ip, &t->net, t->kind == SPFE_IP4 ? t->cidr4 : t->cidr6) ? M_YES
		                                                                           : M_NO;
	if (!count_term(st, t->text, t->textlen))
		return M_PERM;
	target = t->spec ? expand(st, t->spec, t->speclen, false) : strdup(st->domain);
	if (target == NULL)
		return M_PERM;
	switch (t->kind) {
	case SPFE_INCLUDE:
		m = mech_include(st, target, depth);
		break;
	case SPFE_A:
		m = mech_a(st, target, t->cidr4, t->cidr6);
		break;
	case SPFE_MX:
		m = mech_mx(st, target, t->cidr4, t->cidr6);
		break;
	case SPFE_PTR:
		m = mech_ptr(st, target);
		break;
	default:
		m = mech_exists(st, target);
		break;
	}
	if (m == M_TEMP)
		error(st, SPF_R_TEMPERROR, false, "DNS lookup failed for \"%.*s\" (%s)",
		      (int)t->textlen, t->text, target);
	free(target);
	return m;
}

/* 6.2: the exp= text for a fail; any failure leaves it empty. */
static void
explain(struct st *st, const struct spfe_record *rec)
{
	struct dnsq_list l = {0};
	char *name, *text = NULL, why[160];

	if (rec->exp == NULL || (name = expand(st, rec->exp, rec->explen, false)) == NULL)
		return;
	if (lookup(st, Q_TXT, name, 0, &l, false) == M_YES && l.n == 1 &&
	    spfe_macro_check(l.v[0], strlen(l.v[0]), true, why, sizeof why) == 0)
		text = expand(st, l.v[0], strlen(l.v[0]), true);
	if (text != NULL)
		snprintf(st->out->explanation, sizeof st->out->explanation, "%s", text);
	free(text);
	free(name);
	dnsq_list_free(&l);
}

/* The one SPF record of domain (4.4, 4.5) in *rec, or the result that ends check_host(). */
static enum spf_result
fetch_record(struct st *st, const char *domain, char **rec)
{
	struct dnsq_list l;
	enum match m = lookup(st, Q_TXT, domain, 0, &l, true);
	size_t found = 0;

	*rec = NULL;
	if (m == M_TEMP)
		return error(st, SPF_R_TEMPERROR, false, "DNS lookup of %s's TXT records failed",
		             domain);
	if (m == M_PERM)
		return SPF_R_PERMERROR;
	for (size_t i = 0; i < l.n; i++) {
		if (strncasecmp(l.v[i], "v=spf1", 6) != 0 ||
		    (l.v[i][6] != ' ' && l.v[i][6] != '\0'))
			continue;
		if (found++ == 0)
			*rec = strdup(l.v[i]);
	}
	dnsq_list_free(&l);
	if (found > 1) {
		free(*rec);
		*rec = NULL;
		return error(st, SPF_R_PERMERROR, false,
		             "%s publishes %zu SPF records (RFC 7208 4.5: exactly one)", domain,
		             found);
	}
	return found == 0 ? SPF_R_NONE : *rec ? SPF_R_PASS : SPF_R_TEMPERROR;
}

static enum spf_result
qual_result(char q)
{
	return q == '-'   ? SPF_R_FAIL
	       : q == '~' ? SPF_R_SOFTFAIL
	       : q == '?' ? SPF_R_NEUTRAL
	                  : SPF_R_PASS;
}

/* No mechanism matched: redirect= (6.1) or the default neutral (4.7). */
static enum spf_result
no_match(struct st *st, const struct spfe_record *rec, int depth, bool top)
{
	enum spf_result r;
	char *target;

	if (rec->redirect == NULL) {
		if (top)
			snprintf(st->out->why, sizeof st->out->why,
			         "no term matched: neutral by default (RFC 7208 4.7)");
		return SPF_R_NEUTRAL;
	}
	if (!count_term(st, rec->redirect - 9, rec->redirectlen + 9))
		return SPF_R_PERMERROR;
	if ((target = expand(st, rec->redirect, rec->redirectlen, false)) == NULL)
		return SPF_R_PERMERROR;
	trace(st, "redirect %s", target);
	r = check_host(st, target, NULL, depth + 1, top);
	if (r == SPF_R_NONE) /* 6.1: a redirect to no record is a permerror */
		r = error(st, SPF_R_PERMERROR, false,
		          "redirect=%s has no SPF record (RFC 7208 6.1)", target);
	free(target);
	return r;
}

/* Evaluate the checked record rec for st->domain (4.6). */
static enum spf_result
eval_record(struct st *st, const struct spfe_record *rec, int depth, bool top)
{
	for (size_t i = 0; i < rec->n; i++) {
		const struct spfe_term *t = &rec->terms[i];
		enum match m = mechanism(st, t, depth);

		if (m == M_TEMP)
			return SPF_R_TEMPERROR;
		if (m == M_PERM || st->stopped)
			return SPF_R_PERMERROR;
		if (m == M_NO)
			continue;
		trace(st, "match %.*s at %s", (int)t->textlen, t->text, st->domain);
		if (top) {
			snprintf(st->out->why, sizeof st->out->why, "%.*s", (int)t->textlen,
			         t->text);
			if (t->qual == '-')
				explain(st, rec);
		}
		return qual_result(t->qual);
	}
	return no_match(st, rec, depth, top);
}

/* check_host() of 4 for domain; record: the text to use instead of looking it up. */
static enum spf_result
check_host(struct st *st, const char *domain, const char *record, int depth, bool top)
{
	struct spfe_record rec;
	char *txt = NULL, why[400];
	enum spf_result r;

	if (depth > DEPTH_MAX)
		return error(st, SPF_R_PERMERROR, true, "includes nested too deep");
	st->domain = domain;
	if (record == NULL) {
		r = fetch_record(st, domain, &txt);
		if (r != SPF_R_PASS) {
			if (r == SPF_R_NONE && top && depth == 0)
				snprintf(st->out->why, sizeof st->out->why,
				         "%s publishes no SPF record", domain);
			return r;
		}
		record = txt;
	}
	trace(st, "record %s: %s", domain, record);
	if (spfe_parse(record, &rec, why, sizeof why) != 0) {
		r = error(st, SPF_R_PERMERROR, false, "%s's SPF record: %s", domain, why);
	} else {
		r = eval_record(st, &rec, depth, top);
		st->domain = domain;
	}
	spfe_record_free(&rec);
	free(txt);
	return r;
}

/* 4.3: a domain check_host() can evaluate: labels of 1-63 octets, at least two of them. */
static bool
domain_ok(const char *d)
{
	return d[0] != '[' && strchr(d, '.') != NULL && name_ok(d);
}

/* Split sender into st's %{s}, %{l}, %{o} (4.3: no local part is "postmaster"). */
static int
set_sender(struct st *st, const char *sender, const char *helo)
{
	const char *at = sender ? strrchr(sender, '@') : NULL;
	const char *dom = sender == NULL || sender[0] == '\0' ? helo : at ? at + 1 : sender;
	size_t llen = at && at > sender ? (size_t)(at - sender) : 0;
	size_t n;

	st->local = llen ? strndup(sender, llen) : strdup("postmaster");
	n = (st->local ? strlen(st->local) : 0) + strlen(dom) + 2;
	st->sender = malloc(n);
	if (st->local == NULL || st->sender == NULL)
		return -1;
	snprintf(st->sender, n, "%s@%s", st->local, dom);
	st->odom = st->sender + strlen(st->local) + 1;
	return 0;
}

int
spf_eval(const struct spf_dns *dns, const struct spf_ip *ip, const char *sender, const char *helo,
         const struct spf_eval_opts *opts, struct spf_eval *out)
{
	static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
	struct st st = {.dns = dns, .ip = *ip, .opts = opts, .out = out};
	char *domain;
	size_t dlen;

	memset(out, 0, sizeof *out);
	out->result = SPF_R_PERMERROR;
	if (dns == NULL || helo == NULL || (ip->family != AF_INET && ip->family != AF_INET6)) {
		snprintf(out->why, sizeof out->why, "bad arguments");
		return -1;
	}
	/* 5: an IPv4-mapped IPv6 client (::ffff:a.b.c.d) is evaluated as IPv4 */
	if (ip->family == AF_INET6 && memcmp(ip->addr, mapped, 12) == 0) {
		st.ip.family = AF_INET;
		memmove(st.ip.addr, ip->addr + 12, 4);
		memset(st.ip.addr + 4, 0, 12);
	}
	inet_ntop(st.ip.family, st.ip.addr, st.ipstr, sizeof st.ipstr);
	st.helo = helo;
	if (set_sender(&st, sender, helo) != 0) {
		snprintf(out->why, sizeof out->why, "out of memory");
		free(st.local);
		free(st.sender);
		return -1;
	}
	domain = strdup(st.odom);
	dlen = domain ? strlen(domain) : 0;
	if (dlen > 1 && domain[dlen - 1] == '.')
		domain[dlen - 1] = '\0';
	if (domain == NULL || !domain_ok(domain)) {
		out->result = SPF_R_NONE;
		snprintf(out->why, sizeof out->why, "\"%s\" is not a valid domain (RFC 7208 4.3)",
		         st.odom);
	} else {
		out->result = check_host(&st, domain, opts ? opts->record : NULL, 0, true);
	}
	if (out->result != SPF_R_FAIL)
		out->explanation[0] = '\0';
	free(domain);
	dnsq_list_free(&st.ptrs);
	free(st.local);
	free(st.sender);
	return 0;
}

static enum dnsq_status
sys_txt(void *ctx, const char *name, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_txt(name, out);
}

static enum dnsq_status
sys_addrs(void *ctx, const char *name, int family, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_a(name, family, out);
}

static enum dnsq_status
sys_mx(void *ctx, const char *name, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_mx(name, out);
}

static enum dnsq_status
sys_ptr(void *ctx, const char *ip, struct dnsq_list *out)
{
	(void)ctx;
	return dnsq_ptr(ip, out);
}

const struct spf_dns *
spf_dns_system(void)
{
	static const struct spf_dns sys = {NULL, sys_txt, sys_addrs, sys_mx, sys_ptr};

	return &sys;
}

void
spf_eval_free(struct spf_eval *out)
{
	for (size_t i = 0; i < out->ntrace; i++)
		free(out->trace[i]);
	out->ntrace = 0;
	out->trace_dropped = 0;
}
