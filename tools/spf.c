/*
 * tools/spf: SPF record text (see tools/spf.h).
 *
 * A record is read as a list of terms split on whitespace (RFC 7208 4.6.1
 * asks for single spaces; a record typed into a web panel often has more,
 * so any run of spaces or tabs separates terms). Terms are kept byte for
 * byte, so merging never rewrites what the domain owner wrote, apart from
 * the version tag, which is normalised to "v=spf1".
 */
#include "tools/spf.h"
#include "tools/spf_int.h"

/* libspf2's headers use struct in_addr without including it (TESTING.md) */
#include <netinet/in.h>
#include <spf2/spf.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mta/shared/util.h"

#define MAX_DEPTH 10     /* include/redirect nesting followed by the counter */
#define COUNT_GIVE_UP 99 /* far past the limit: stop fetching */

static const struct {
	const char *name;
	enum term_kind kind;
} mechanisms[] = {
    {"all", TK_ALL}, {"include", TK_INCLUDE}, {"a", TK_A},     {"mx", TK_MX},
    {"ptr", TK_PTR}, {"ip4", TK_IP4},         {"ip6", TK_IP6}, {"exists", TK_EXISTS},
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
caseeq(const char *a, size_t alen, const char *b)
{
	size_t i;

	if (strlen(b) != alen)
		return false;
	for (i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool
spf_is_mechanism(enum term_kind k)
{
	return k != TK_REDIRECT && k != TK_EXP && k != TK_MODIFIER;
}

bool
spf_costs_lookup(enum term_kind k)
{
	return k == TK_INCLUDE || k == TK_A || k == TK_MX || k == TK_PTR || k == TK_EXISTS;
}

/* Classify one term (RFC 7208 4.6.1 / 12: mechanism or name=value modifier). */
static void
classify(struct term *t)
{
	size_t i = 0, name_start, name_len;

	/* the first of ':', '/', '=' decides: a modifier's name runs up to '=' */
	while (i < t->len && t->text[i] != ':' && t->text[i] != '/' && t->text[i] != '=')
		i++;
	t->qual = 0;
	t->arg = NULL;
	t->arglen = 0;
	if (i < t->len && t->text[i] == '=') {
		t->arg = t->text + i + 1;
		t->arglen = t->len - i - 1;
		t->kind = caseeq(t->text, i, "redirect") ? TK_REDIRECT
		          : caseeq(t->text, i, "exp")    ? TK_EXP
		                                         : TK_MODIFIER;
		/* a modifier name starts with a letter (RFC 7208 12): "-redirect=" is no term */
		if (i == 0 || !((t->text[0] >= 'a' && t->text[0] <= 'z') ||
		                (t->text[0] >= 'A' && t->text[0] <= 'Z')))
			t->kind = TK_UNKNOWN;
		return;
	}
	name_start = 0;
	if (t->len > 0 && strchr("+-~?", t->text[0]) != NULL) {
		t->qual = t->text[0];
		name_start = 1;
	}
	name_len = i - name_start;
	if (i < t->len && t->text[i] == ':') {
		t->arg = t->text + i + 1;
		t->arglen = t->len - i - 1;
	}
	t->kind = TK_UNKNOWN;
	for (size_t m = 0; m < sizeof mechanisms / sizeof mechanisms[0]; m++)
		if (caseeq(t->text + name_start, name_len, mechanisms[m].name))
			t->kind = mechanisms[m].kind;
}

/* The length of a version tag "v=spf1" at the start of s, or 0 (RFC 7208 4.5). */
static size_t
version_len(const char *s)
{
	if (strnlen(s, 6) < 6 || !caseeq(s, 6, "v=spf1"))
		return 0;
	if (s[6] != '\0' && !is_space(s[6]))
		return 0;
	return 6;
}

bool
spf_is_record(const char *txt)
{
	if (txt == NULL)
		return false;
	while (is_space(*txt))
		txt++;
	return version_len(txt) > 0;
}

int
spf_split_terms(const char *rec, struct terms *t, char *err, size_t errlen)
{
	const char *p = rec;
	size_t cap = 0;

	t->v = NULL;
	t->n = 0;
	while (is_space(*p))
		p++;
	if (version_len(p) == 0)
		return util_failf(err, errlen, "not an SPF record (it must start with \"v=spf1\")");
	p += 6;
	for (;;) {
		const char *start;

		while (is_space(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && !is_space(*p))
			p++;
		if (t->n == cap) {
			struct term *nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(t->v, cap * sizeof *nv);
			if (nv == NULL) {
				free(t->v);
				t->v = NULL;
				return util_failf(err, errlen, "out of memory");
			}
			t->v = nv;
		}
		t->v[t->n].text = start;
		t->v[t->n].len = (size_t)(p - start);
		classify(&t->v[t->n]);
		t->n++;
	}
	return 0;
}

/* ---- addresses ---- */

int
spf_ip_parse(const char *text, int family, struct spf_ip *out)
{
	memset(out, 0, sizeof *out);
	if (text == NULL)
		return -1;
	if ((family == 0 || family == AF_INET) && inet_pton(AF_INET, text, out->addr) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if ((family == 0 || family == AF_INET6) && inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -1;
}

void
spf_ip_format(const struct spf_ip *ip, char *buf, size_t len)
{
	if (inet_ntop(ip->family, ip->addr, buf, (socklen_t)len) == NULL && len > 0)
		buf[0] = '\0';
}

void
spf_ip_mechanism(const struct spf_ip *ip, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	spf_ip_format(ip, a, sizeof a);
	snprintf(buf, len, "%s:%s", ip->family == AF_INET ? "ip4" : "ip6", a);
}

bool
spf_term_covers(const struct term *t, const struct spf_ip *ip)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned char net[16];
	int family = t->kind == TK_IP4 ? AF_INET : AF_INET6;
	long bits = family == AF_INET ? 32 : 128;
	size_t full;

	if ((t->kind != TK_IP4 && t->kind != TK_IP6) || ip->family != family || t->arg == NULL ||
	    t->arglen >= sizeof buf)
		return false;
	memcpy(buf, t->arg, t->arglen);
	buf[t->arglen] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL) {
		*slash = '\0';
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == slash + 1 || bits < 0 ||
		    bits > (family == AF_INET ? 32 : 128))
			return false;
	}
	if (inet_pton(family, buf, net) != 1)
		return false;
	full = (size_t)bits / 8;
	if (memcmp(net, ip->addr, full) != 0)
		return false;
	if (bits % 8 != 0) {
		unsigned char mask = (unsigned char)(0xff00u >> (bits % 8));

		if ((net[full] & mask) != (ip->addr[full] & mask))
			return false;
	}
	return true;
}

/* ---- merging ---- */

/* Append s (n bytes) to the growing string *buf (length *len, capacity *cap). */
static int
append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t ncap = (*cap ? *cap : 128);
		char *nb;

		while (*len + n + 1 > ncap)
			ncap *= 2;
		nb = realloc(*buf, ncap);
		if (nb == NULL)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static int
append_term(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	return append(buf, len, cap, " ", 1) != 0 || append(buf, len, cap, s, n) != 0 ? -1 : 0;
}

/*
 * Where new mechanisms go: before the first all or -/~/? mechanism (the
 * first match decides, RFC 7208 4.6.2: a -ip4: covering the relay must not
 * come first), else after the last mechanism.
 */
static size_t
insertion_point(const struct terms *t)
{
	size_t i, after_last = 0;

	for (i = 0; i < t->n; i++) {
		if (t->v[i].kind == TK_ALL ||
		    (spf_is_mechanism(t->v[i].kind) && t->v[i].qual != 0 && t->v[i].qual != '+'))
			return i;
		if (spf_is_mechanism(t->v[i].kind))
			after_last = i + 1;
	}
	return after_last;
}

static int
check_mergeable(const struct terms *t, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct term *m = &t->v[i];

		if (m->kind == TK_UNKNOWN)
			return util_failf(err, errlen, "malformed SPF record: unknown term '%.*s'",
			            (int)m->len, m->text);
	}
	return 0;
}

/*
 * Which relay IPs to add: flags[i] = 1 add, 0 already passed (or a repeat).
 * An earlier ip term with a -, ~ or ? qualifier wins over anything added
 * after it (first match, RFC 7208 4.6.2): that is SPF_W_IP_BLOCKED.
 */
static void
plan_additions(const struct terms *t, size_t ins, const struct spf_ip *ips, size_t nips,
               unsigned char *flags, struct spf_merge *out)
{
	for (size_t i = 0; i < nips; i++) {
		flags[i] = 1;
		for (size_t k = 0; k < i; k++)
			if (ips[k].family == ips[i].family &&
			    memcmp(ips[k].addr, ips[i].addr, 16) == 0)
				flags[i] = 0;
		if (!flags[i])
			continue;
		for (size_t j = 0; j < ins && t != NULL; j++) {
			if (!spf_term_covers(&t->v[j], &ips[i]))
				continue;
			if (t->v[j].qual == 0 || t->v[j].qual == '+') {
				flags[i] = 0;
				out->covered++;
			} else {
				out->warnings |= SPF_W_IP_BLOCKED;
			}
			break;
		}
	}
}

static int merge_at(const char *current, const struct spf_ip *ips, size_t nips, bool first,
                    struct spf_merge *out, char *err, size_t errlen);

int
spf_merge(const char *current, const struct spf_ip *ips, size_t nips, struct spf_merge *out,
          char *err, size_t errlen)
{
	return merge_at(current, ips, nips, false, out, err, errlen);
}

int
spf_merge_first(const char *current, const struct spf_ip *ips, size_t nips, struct spf_merge *out,
                char *err, size_t errlen)
{
	return merge_at(current, ips, nips, true, out, err, errlen);
}

static int
merge_at(const char *current, const struct spf_ip *ips, size_t nips, bool first,
         struct spf_merge *out, char *err, size_t errlen)
{
	struct terms t = {NULL, 0};
	unsigned char *flags = NULL;
	char *buf = NULL, mech[64];
	size_t len = 0, cap = 0, ins = 0, i;
	bool fresh;
	int rc = -1;

	memset(out, 0, sizeof *out);
	fresh = current == NULL || strspn(current, " \t\r\n") == strlen(current);
	if (!fresh && (spf_split_terms(current, &t, err, errlen) != 0 ||
	               check_mergeable(&t, err, errlen) != 0))
		goto done;
	if (!fresh && !first)
		ins = insertion_point(&t);
	flags = calloc(nips ? nips : 1, 1);
	if (flags == NULL || append(&buf, &len, &cap, "v=spf1", 6) != 0)
		goto oom;
	plan_additions(fresh ? NULL : &t, ins, ips, nips, flags, out);
	for (i = 0; i < ins; i++)
		if (append_term(&buf, &len, &cap, t.v[i].text, t.v[i].len) != 0)
			goto oom;
	for (i = 0; i < nips; i++) {
		if (!flags[i])
			continue;
		spf_ip_mechanism(&ips[i], mech, sizeof mech);
		if (append_term(&buf, &len, &cap, mech, strlen(mech)) != 0)
			goto oom;
		out->added++;
		if (i < 32)
			out->added_ips |= 1u << i;
	}
	for (i = ins; i < t.n; i++)
		if (append_term(&buf, &len, &cap, t.v[i].text, t.v[i].len) != 0)
			goto oom;
	if (fresh && append_term(&buf, &len, &cap, SPF_NEW_ALL, strlen(SPF_NEW_ALL)) != 0)
		goto oom;
	out->record = buf;
	buf = NULL;
	rc = 0;
	goto done;
oom:
	util_failf(err, errlen, "out of memory");
done:
	free(buf);
	free(flags);
	free(t.v);
	return rc;
}

void
spf_merge_free(struct spf_merge *m)
{
	free(m->record);
	m->record = NULL;
}

/* ---- lint ---- */

int
spf_lint(const char *record, struct spf_lint *out, char *err, size_t errlen)
{
	struct terms t;
	bool seen_all = false, redirect = false;

	memset(out, 0, sizeof *out);
	if (spf_split_terms(record, &t, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < t.n; i++) {
		const struct term *m = &t.v[i];

		if (seen_all && spf_is_mechanism(m->kind))
			out->warnings |= SPF_W_AFTER_ALL;
		if (m->kind == TK_ALL && !seen_all) {
			seen_all = true;
			if (m->qual == 0 || m->qual == '+')
				out->warnings |= SPF_W_PLUS_ALL;
		}
		if (m->kind == TK_PTR)
			out->warnings |= SPF_W_PTR;
		if (m->kind == TK_REDIRECT)
			redirect = true;
		if (spf_costs_lookup(m->kind))
			out->lookups++;
	}
	if (redirect && seen_all)
		out->warnings |= SPF_W_REDIRECT_IGNORED;
	else if (redirect)
		out->lookups++;
	if (!redirect && !seen_all)
		out->warnings |= SPF_W_NO_ALL;
	if (out->lookups > SPF_LOOKUP_LIMIT)
		out->warnings |= SPF_W_LOOKUPS;
	out->length = strlen(record);
	if (out->length > SPF_STRING_MAX)
		out->warnings |= SPF_W_SPLIT;
	if (out->length > SPF_UDP_MAX)
		out->warnings |= SPF_W_UDP;
	free(t.v);
	return 0;
}

const char *
spf_warning_text(enum spf_warning w)
{
	switch (w) {
	case SPF_W_PLUS_ALL:
		return "the record ends in +all, which passes every host on the internet: use ~all "
		       "or -all";
	case SPF_W_PTR:
		return "the ptr mechanism is slow and unreliable (RFC 7208 5.5 says SHOULD NOT): "
		       "replace it with ip4:/ip6: or a: terms";
	case SPF_W_NO_ALL:
		return "the record has no all and no redirect=, so unlisted senders get neutral: "
		       "end it with ~all or -all";
	case SPF_W_REDIRECT_IGNORED:
		return "redirect= is ignored because the record has an all mechanism (RFC 7208 "
		       "6.1): remove one of them";
	case SPF_W_AFTER_ALL:
		return "terms after all are never evaluated: move them before all";
	case SPF_W_LOOKUPS:
		return "more than 10 DNS-querying terms (include, a, mx, ptr, exists, redirect): "
		       "receivers answer permerror (RFC 7208 4.6.4); replace includes with "
		       "ip4:/ip6:";
	case SPF_W_SPLIT:
		return "longer than 255 characters: publish it as several quoted strings in one "
		       "TXT record (the zone line does this; most web panels split by themselves)";
	case SPF_W_UDP:
		return "longer than 450 characters: the DNS answer may not fit in UDP (RFC 7208 "
		       "3.4); shorten the record";
	case SPF_W_IP_BLOCKED:
		return "an earlier ip4:/ip6: term with -, ~ or ? matches a relay address, so it "
		       "never passes: remove that term";
	case SPF_W_MULTIPLE:
		return "the name has more than one SPF record, which is a permerror (RFC 7208 "
		       "4.5): publish only the one printed here";
	}
	return "";
}

/* ---- lookup counting ---- */

struct counter {
	spf_fetch_fn fetch;
	void *ctx;
	struct spf_count *out;
	char *path[MAX_DEPTH + 1]; /* targets being followed, for loops */
	int depth;
};

static void
not_followed(struct counter *c, const char *target, const char *why)
{
	c->out->not_followed++;
	if (c->out->problem[0] == '\0')
		snprintf(c->out->problem, sizeof c->out->problem, "%s: %s", target, why);
}

static void count_record(struct counter *c, const char *record);

static void
follow(struct counter *c, const char *arg, size_t arglen)
{
	char target[256], *rec = NULL, why[200] = "";
	int i;

	if (c->fetch == NULL || c->out->total > COUNT_GIVE_UP)
		return;
	if (arglen == 0 || arglen >= sizeof target) {
		not_followed(c, "?", "an include or redirect target is empty or too long");
		return;
	}
	memcpy(target, arg, arglen);
	target[arglen] = '\0';
	if (target[arglen - 1] == '.')
		target[arglen - 1] = '\0';
	for (i = 0; target[i] != '\0'; i++)
		target[i] = (char)lower((unsigned char)target[i]);
	if (strchr(target, '%') != NULL) {
		not_followed(c, target, "has macros, counted as one lookup");
		return;
	}
	for (i = 0; i < c->depth; i++) {
		if (strcmp(c->path[i], target) == 0) {
			not_followed(c, target, "includes itself (a loop)");
			return;
		}
	}
	if (c->depth >= MAX_DEPTH) {
		not_followed(c, target, "nested too deeply");
		return;
	}
	if (c->fetch(c->ctx, target, &rec, why, sizeof why) != 0) {
		not_followed(c, target, why[0] ? why : "lookup failed");
		return;
	}
	if (!spf_is_record(rec)) {
		free(rec);
		not_followed(c, target, "not an SPF record");
		return;
	}
	c->path[c->depth++] = target;
	count_record(c, rec);
	c->depth--;
	free(rec);
}

static void
count_record(struct counter *c, const char *record)
{
	struct terms t;
	const struct term *redirect = NULL;
	bool all = false;

	if (spf_split_terms(record, &t, NULL, 0) != 0)
		return;
	for (size_t i = 0; i < t.n; i++) {
		if (t.v[i].kind == TK_ALL)
			all = true;
		if (t.v[i].kind == TK_REDIRECT && redirect == NULL)
			redirect = &t.v[i];
	}
	for (size_t i = 0; i < t.n; i++) {
		if (!spf_costs_lookup(t.v[i].kind))
			continue;
		c->out->total++;
		if (t.v[i].kind == TK_INCLUDE)
			follow(c, t.v[i].arg, t.v[i].arg ? t.v[i].arglen : 0);
	}
	if (redirect != NULL && !all) {
		c->out->total++;
		follow(c, redirect->arg, redirect->arglen);
	}
	free(t.v);
}

int
spf_count_lookups(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_count *out)
{
	struct counter c;

	memset(out, 0, sizeof *out);
	if (!spf_is_record(record))
		return -1;
	memset(&c, 0, sizeof c);
	c.fetch = fetch;
	c.ctx = ctx;
	c.out = out;
	count_record(&c, record);
	return 0;
}

/* ---- validation and output ---- */

static int
duplicate_modifier(const char *record, char *why, size_t whylen)
{
	struct terms t;
	int redirects = 0, exps = 0, rc = 0;

	if (spf_split_terms(record, &t, why, whylen) != 0)
		return -1;
	for (size_t i = 0; i < t.n; i++) {
		redirects += t.v[i].kind == TK_REDIRECT;
		exps += t.v[i].kind == TK_EXP;
	}
	if (redirects > 1 || exps > 1)
		rc = util_failf(why, whylen, "%s= appears more than once (RFC 7208 6)",
		          redirects > 1 ? "redirect" : "exp");
	free(t.v);
	return rc;
}

int
spf_validate(const char *record, char *why, size_t whylen)
{
	SPF_server_t *srv;
	SPF_response_t *resp;
	SPF_record_t *rec = NULL;
	SPF_errcode_t e;
	int rc = 0;

	if (!spf_is_record(record))
		return util_failf(why, whylen, "not an SPF record (it must start with \"v=spf1\")");
	/* the zone resolver never queries anything: compiling needs no DNS */
	srv = SPF_server_new(SPF_DNS_ZONE, 0);
	if (srv == NULL)
		return util_failf(why, whylen, "libspf2: cannot create a server");
	resp = SPF_response_new(NULL);
	if (resp == NULL) {
		SPF_server_free(srv);
		return util_failf(why, whylen, "out of memory");
	}
	e = SPF_record_compile(srv, resp, &rec, record);
	if (e != SPF_E_SUCCESS) {
		const char *msg = SPF_strerror(e);

		for (int i = 0; i < SPF_response_messages(resp); i++) {
			SPF_error_t *m = SPF_response_message(resp, i);

			if (SPF_error_errorp(m)) {
				msg = SPF_error_message(m);
				break;
			}
		}
		rc = util_failf(why, whylen, "%s", msg);
	}
	/* SPF_record_free does not accept NULL (libspf2 1.2.10) */
	if (rec != NULL)
		SPF_record_free(rec);
	SPF_response_free(resp);
	SPF_server_free(srv);
	if (rc == 0)
		rc = duplicate_modifier(record, why, whylen);
	return rc;
}

int
spf_zone_line(const char *name, const char *record, char **out)
{
	size_t nlen, rlen, cap, pos, in_chunk = 0;
	char *buf;

	*out = NULL;
	if (name == NULL || record == NULL || *name == '\0' || *record == '\0') {
		errno = EINVAL;
		return -1;
	}
	nlen = strlen(name);
	rlen = strlen(record);
	cap = nlen + 16 + 2 * rlen + 3 * (rlen / SPF_STRING_MAX + 1) + 4;
	buf = malloc(cap);
	if (buf == NULL)
		return -1;
	pos = (size_t)snprintf(buf, cap, "%s%s IN TXT \"", name, name[nlen - 1] == '.' ? "" : ".");
	for (size_t i = 0; i < rlen; i++) {
		if (in_chunk == SPF_STRING_MAX) {
			memcpy(buf + pos, "\" \"", 3);
			pos += 3;
			in_chunk = 0;
		}
		if (record[i] == '"' || record[i] == '\\')
			buf[pos++] = '\\';
		buf[pos++] = record[i];
		in_chunk++;
	}
	memcpy(buf + pos, "\"", 2);
	*out = buf;
	return 0;
}
