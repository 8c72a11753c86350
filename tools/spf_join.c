/*
 * tools/spf_join: several SPF records at one name joined into one that
 * authorises everything any of them did (see spf_join in tools/spf.h).
 *
 * Why it exists: a domain with two SPF records gets permerror everywhere
 * (RFC 7208 4.5). Keeping one and dropping the other silently removes the
 * senders only the other listed (a tenant's include of Exchange Online,
 * say), so the join keeps every term and only ever tightens all.
 */
#include "tools/spf.h"
#include "tools/spf_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mta/shared/util.h"

/* Strictness of an all qualifier: -all 3, ~all 2, ?all 1, +all / all 0 (RFC 7208 4.6.2). */
static int
all_rank(char qual)
{
	return qual == '-' ? 3 : qual == '~' ? 2 : qual == '?' ? 1 : 0;
}

static const char *const all_text[] = {"+all", "?all", "~all", "-all"};

/* Append " text" to *s (malloc'ed); false when out of memory. */
static bool
put(char **s, size_t *len, const char *text, size_t n)
{
	char *ns = realloc(*s, *len + n + 2);

	if (ns == NULL)
		return false;
	*s = ns;
	ns[(*len)++] = ' ';
	memcpy(ns + *len, text, n);
	*len += n;
	ns[*len] = '\0';
	return true;
}

/* The target of include:/redirect= term m into buf; false for macros or none. */
static bool target_of(const struct term *m, char *buf, size_t len);

/*
 * The effective default of a record: its first all, else (RFC 7208 6.1)
 * its redirect target's, followed statically up to 10 deep, else neutral
 * (4.7). A redirect that cannot be followed counts as neutral.
 */
static int
effective_all(const char *record, spf_fetch_fn fetch, void *ctx, int depth)
{
	struct terms t;
	char target[256], why[200], *rec;
	int rank = 1;
	const struct term *redirect = NULL;

	if (spf_split_terms(record, &t, NULL, 0) != 0)
		return 1;
	for (size_t i = 0; i < t.n; i++) {
		if (t.v[i].kind == TK_ALL) {
			rank = all_rank(t.v[i].qual);
			redirect = NULL;
			break;
		}
		if (t.v[i].kind == TK_REDIRECT && redirect == NULL)
			redirect = &t.v[i];
	}
	if (redirect != NULL && fetch != NULL && depth < 10 &&
	    target_of(redirect, target, sizeof target) &&
	    fetch(ctx, target, &rec, why, sizeof why) == 0) {
		rank = effective_all(rec, fetch, ctx, depth + 1);
		free(rec);
	}
	free(t.v);
	return rank;
}

/*
 * Why record r cannot be joined inline, into why; false when it can: only
 * pass mechanisms, then at most one all and nothing but exp= or unknown
 * modifiers after it (an -/~/? term would override another record's pass,
 * 4.6.2; a redirect or terms after an all change meaning once moved, 6.1).
 */
static bool
not_inline(const struct terms *t, size_t r, char *why, size_t whylen)
{
	bool after_all = false;

	for (size_t i = 0; i < t->n; i++) {
		const struct term *m = &t->v[i];
		bool mech = spf_is_mechanism(m->kind);

		if (after_all && (mech || m->kind == TK_REDIRECT))
			return snprintf(
			           why, whylen,
			           "record %zu has %.*s after its all (never evaluated today, RFC "
			           "7208 4.6.2): merging inline would make it count",
			           r + 1, (int)m->len, m->text) > 0;
		if (m->kind == TK_REDIRECT)
			return snprintf(
			           why, whylen,
			           "record %zu has %.*s: merged inline it would apply before or "
			           "instead of the other records' terms (RFC 7208 6.1)",
			           r + 1, (int)m->len, m->text) > 0;
		if (m->kind == TK_ALL)
			after_all = true;
		else if (mech && m->qual != 0 && m->qual != '+')
			return snprintf(
			           why, whylen,
			           "record %zu has %.*s before a pass term: merging inline would "
			           "fail addresses another record passes (RFC 7208 4.6.2)",
			           r + 1, (int)m->len, m->text) > 0;
	}
	return false;
}

/* The exp= of every record is the same (or absent); false with why otherwise. */
static bool
exp_agree(const struct terms *t, size_t n, char *why, size_t whylen)
{
	const struct term *first = NULL;

	for (size_t r = 0; r < n; r++)
		for (size_t i = 0; i < t[r].n; i++) {
			const struct term *m = &t[r].v[i];

			if (m->kind != TK_EXP)
				continue;
			if (first != NULL &&
			    (first->len != m->len || memcmp(first->text, m->text, m->len) != 0)) {
				snprintf(
				    why, whylen,
				    "the records give different exp= explanations (one allowed, "
				    "RFC 7208 6)");
				return false;
			}
			first = m;
		}
	return true;
}

/* text already among the first n written terms of s (byte-exact: %{L} is not %{l}, 7.3). */
static bool
written(const char *s, const char *text, size_t len)
{
	for (const char *p = strchr(s, ' '); p != NULL; p = strchr(p + 1, ' ')) {
		size_t n = strcspn(p + 1, " ");

		if (n == len && memcmp(p + 1, text, len) == 0)
			return true;
	}
	return false;
}

/* The inline join: every pass mechanism in order, once; modifiers after the all. */
static int
join_inline(const struct terms *t, size_t n, struct spf_join *out)
{
	size_t len = 6;
	char *s = strdup("v=spf1");
	bool ok = s != NULL;

	for (int pass = 0; pass < 2 && ok; pass++) {
		for (size_t r = 0; r < n && ok; r++)
			for (size_t i = 0; i < t[r].n && ok; i++) {
				const struct term *m = &t[r].v[i];

				if (m->kind == TK_ALL || spf_is_mechanism(m->kind) != (pass == 0))
					continue;
				if (written(s, m->text, m->len))
					out->duplicates += pass == 0;
				else
					ok = put(&s, &len, m->text, m->len);
			}
		if (pass == 0 && ok)
			ok = put(&s, &len, out->all, strlen(out->all));
	}
	if (!ok) {
		free(s);
		return -1;
	}
	out->record = s;
	return 0;
}

/*
 * Record r as published at its own name: unchanged but for a, mx and ptr
 * without a domain, which default to the current domain (5.3, 5.4, 5.5)
 * and so get DOMAIN written out. %{d} would change meaning: refused.
 */
static char *
part_record(const struct terms *t, size_t r, const char *domain, char *err, size_t errlen)
{
	size_t len = 6;
	char *s = strdup("v=spf1"), buf[600];

	for (size_t i = 0; i < t->n && s != NULL; i++) {
		const struct term *m = &t->v[i];
		const char *text = m->text;
		size_t n = m->len, q = m->qual != 0;

		for (size_t k = 0; k + 2 < m->len; k++)
			if (m->text[k] == '%' && m->text[k + 1] == '{' &&
			    (m->text[k + 2] == 'd' || m->text[k + 2] == 'D')) {
				util_failf(err, errlen,
				         "record %zu uses %.*s: %%{d} names the domain being "
				         "checked, which "
				         "changes once the record moves to a name of its own; "
				         "merge by hand",
				         r + 1, (int)m->len, m->text);
				free(s);
				return NULL;
			}
		if ((m->kind == TK_A || m->kind == TK_MX || m->kind == TK_PTR) && m->arg == NULL) {
			size_t name = 0;

			while (q + name < m->len && m->text[q + name] != '/')
				name++;
			int w;

			w = snprintf(buf, sizeof buf, "%.*s:%s%.*s", (int)(q + name), m->text,
			             domain, (int)(m->len - q - name), m->text + q + name);

			if (w < 0 || (size_t)w >= sizeof buf) {
				free(s);
				util_failf(err, errlen, "record %zu: term too long", r + 1);
				return NULL;
			}
			text = buf;
			n = (size_t)w;
		}
		if (!put(&s, &len, text, n)) {
			free(s);
			s = NULL;
		}
	}
	if (s == NULL)
		util_failf(err, errlen, "out of memory");
	return s;
}

/* The inclusion join: each record at _spfN.DOMAIN, the domain's record includes them all. */
static int
join_by_include(const struct terms *t, size_t n, const char *domain, struct spf_join *out,
                char *err, size_t errlen)
{
	size_t len = 6;
	char *s = strdup("v=spf1"), inc[300];

	if (n > SPF_JOIN_MAX || strlen(domain) > 240) {
		free(s);
		return util_failf(err, errlen, "too many records (%zu) or too long a domain to merge",
		                n);
	}
	for (size_t r = 0; r < n && s != NULL; r++) {
		snprintf(out->part_name[r], sizeof out->part_name[r], "_spf%zu.%s", r + 1, domain);
		out->part_record[r] = part_record(&t[r], r, domain, err, errlen);
		if (out->part_record[r] == NULL) {
			free(s);
			return -1;
		}
		out->nparts = r + 1;
		snprintf(inc, sizeof inc, "include:%s", out->part_name[r]);
		if (!put(&s, &len, inc, strlen(inc))) {
			free(s);
			s = NULL;
		}
	}
	if (s == NULL || !put(&s, &len, out->all, strlen(out->all))) {
		free(s);
		return util_failf(err, errlen, "out of memory");
	}
	out->record = s;
	out->by_include = true;
	return 0;
}

int
spf_join(const char *domain, const char *const *records, size_t n, spf_fetch_fn fetch, void *ctx,
         struct spf_join *out, char *err, size_t errlen)
{
	struct terms *t = calloc(n ? n : 1, sizeof *t);
	int rc = -1, best = -1;

	memset(out, 0, sizeof *out);
	out->records = n;
	if (t == NULL)
		return util_failf(err, errlen, "out of memory");
	for (size_t r = 0; r < n; r++) {
		int rank;

		if (spf_split_terms(records[r], &t[r], err, errlen) != 0)
			goto done;
		for (size_t i = 0; i < t[r].n; i++)
			if (t[r].v[i].kind == TK_UNKNOWN) {
				util_failf(err, errlen, "record %zu has an unknown term '%.*s'", r + 1,
				     (int)t[r].v[i].len, t[r].v[i].text);
				goto done;
			}
		rank = effective_all(records[r], fetch, ctx, 0);
		out->all_differed |= r > 0 && rank != best;
		best = rank > best ? rank : best;
	}
	snprintf(out->all, sizeof out->all, "%s", all_text[best < 0 ? 1 : best]);
	for (size_t r = 0; r < n && !out->why[0]; r++)
		not_inline(&t[r], r, out->why, sizeof out->why);
	if (!out->why[0])
		exp_agree(t, n, out->why, sizeof out->why);
	if (!out->why[0])
		rc = join_inline(t, n, out) == 0 ? 0 : util_failf(err, errlen, "out of memory");
	else
		rc = join_by_include(t, n, domain, out, err, errlen);
done:
	for (size_t r = 0; r < n; r++)
		free(t[r].v);
	free(t);
	if (rc != 0)
		spf_join_free(out);
	return rc;
}

void
spf_join_free(struct spf_join *j)
{
	free(j->record);
	j->record = NULL;
	for (size_t i = 0; i < j->nparts; i++) {
		free(j->part_record[i]);
		j->part_record[i] = NULL;
	}
	j->nparts = 0;
}

/* ---- includes and their sample addresses (for dns spf's before/after table) ---- */

/* The target of include:/redirect= term m into buf; false for macros or none. */
static bool
target_of(const struct term *m, char *buf, size_t len)
{
	size_t n = m->arg != NULL ? m->arglen : 0;

	if (n == 0 || n >= len || memchr(m->arg, '%', n) != NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)m->arg[i]);
	buf[n] = '\0';
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return true;
}

size_t
spf_include_targets(const char *record, char (*targets)[256], size_t max)
{
	struct terms t;
	size_t n = 0;

	if (spf_split_terms(record, &t, NULL, 0) != 0)
		return 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < t.n && n < max; i++)
			if (t.v[i].kind == (pass == 0 ? TK_INCLUDE : TK_REDIRECT) &&
			    target_of(&t.v[i], targets[n], sizeof targets[n]))
				n++;
	free(t.v);
	return n;
}

/* The network address of a pass ip4:/ip6: term. */
static bool
term_sample(const struct term *m, struct spf_ip *out)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;

	if ((m->kind != TK_IP4 && m->kind != TK_IP6) || (m->qual != 0 && m->qual != '+') ||
	    m->arg == NULL || m->arglen >= sizeof buf)
		return false;
	memcpy(buf, m->arg, m->arglen);
	buf[m->arglen] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	return spf_ip_parse(buf, m->kind == TK_IP4 ? AF_INET : AF_INET6, out) == 0;
}

static int
sample_in(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_ip *out, int depth)
{
	struct terms t;
	char target[256], *rec, why[200];
	int rc = -1;

	if (depth > 10 || spf_split_terms(record, &t, NULL, 0) != 0)
		return -1;
	for (size_t i = 0; i < t.n && rc != 0; i++) {
		const struct term *m = &t.v[i];

		if (term_sample(m, out))
			rc = 0;
		else if ((m->kind == TK_INCLUDE || m->kind == TK_REDIRECT) &&
		         target_of(m, target, sizeof target) &&
		         fetch(ctx, target, &rec, why, sizeof why) == 0) {
			rc = sample_in(rec, fetch, ctx, out, depth + 1);
			free(rec);
		}
	}
	free(t.v);
	return rc;
}

int
spf_sample_ip(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_ip *out)
{
	return sample_in(record, fetch, ctx, out, 0);
}

/* Every pass ip4/ip6 term's address of record and of its include/redirect targets. */
static size_t
samples_in(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_ip *out, size_t max,
           size_t n, int depth)
{
	struct terms t;
	char target[256], *rec, why[200];

	if (depth > 10 || spf_split_terms(record, &t, NULL, 0) != 0)
		return n;
	for (size_t i = 0; i < t.n && n < max; i++) {
		const struct term *m = &t.v[i];

		if (term_sample(m, &out[n]))
			n++;
		else if ((m->kind == TK_INCLUDE || m->kind == TK_REDIRECT) && fetch != NULL &&
		         target_of(m, target, sizeof target) &&
		         fetch(ctx, target, &rec, why, sizeof why) == 0) {
			n = samples_in(rec, fetch, ctx, out, max, n, depth + 1);
			free(rec);
		}
	}
	free(t.v);
	return n;
}

size_t
spf_sample_ips(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_ip *out, size_t max)
{
	return samples_in(record, fetch, ctx, out, max, 0, 0);
}
