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

struct buf {
	char *s;
	size_t len, cap;
	char **keys; /* normalised terms already written, for duplicates */
	size_t nkeys;
	bool oom;
};

/* Strictness of an all term: -all 3, ~all 2, ?all 1, +all / all 0 (RFC 7208 4.6.2). */
static int
all_rank(char qual)
{
	return qual == '-' ? 3 : qual == '~' ? 2 : qual == '?' ? 1 : 0;
}

/* The comparison key of a term: lowercase, "+" dropped (it is the default qualifier). */
static char *
term_key(const char *text, size_t len)
{
	char *k;

	if (len > 0 && text[0] == '+') {
		text++;
		len--;
	}
	k = malloc(len + 1);
	if (k == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		k[i] = (char)tolower((unsigned char)text[i]);
	k[len] = '\0';
	return k;
}

/* Grow b to hold len more bytes and one more key; false when out of memory. */
static bool
grow(struct buf *b, size_t len)
{
	char **nk = realloc(b->keys, (b->nkeys + 1) * sizeof *nk), *ns;

	if (nk == NULL)
		return false;
	b->keys = nk;
	if (b->len + len + 2 <= b->cap)
		return true;
	ns = realloc(b->s, (b->len + len + 2) * 2);
	if (ns == NULL)
		return false;
	b->s = ns;
	b->cap = (b->len + len + 2) * 2;
	return true;
}

/* Append " text" unless an equal term is there already; true when written. */
static bool
put(struct buf *b, const char *text, size_t len)
{
	char *k = term_key(text, len);

	if (k == NULL || !grow(b, len)) {
		free(k);
		b->oom = true;
		return false;
	}
	for (size_t i = 0; i < b->nkeys; i++)
		if (strcmp(b->keys[i], k) == 0) {
			free(k);
			return false;
		}
	b->keys[b->nkeys++] = k;
	b->s[b->len++] = ' ';
	memcpy(b->s + b->len, text, len);
	b->len += len;
	b->s[b->len] = '\0';
	return true;
}

/* include:TARGET for a redirect=TARGET term. */
static bool
put_redirect_as_include(struct buf *b, const struct term *t)
{
	char inc[300];
	int n = snprintf(inc, sizeof inc, "include:%.*s", (int)t->arglen, t->arg);

	if (n < 0 || (size_t)n >= sizeof inc) {
		b->oom = true;
		return false;
	}
	return put(b, inc, (size_t)n);
}

/* The all to keep and how many redirect= terms there are, over every record. */
static const struct term *
pick_all(const struct terms *t, size_t n, struct spf_join *out, unsigned *redirects)
{
	const struct term *best = NULL;
	int first_rank = -1;

	*redirects = 0;
	for (size_t r = 0; r < n; r++) {
		bool seen = false;

		for (size_t i = 0; i < t[r].n; i++) {
			const struct term *m = &t[r].v[i];

			*redirects += m->kind == TK_REDIRECT;
			if (m->kind != TK_ALL || seen)
				continue;
			seen = true;
			if (first_rank >= 0 && all_rank(m->qual) != first_rank)
				out->all_differed = true;
			if (first_rank < 0)
				first_rank = all_rank(m->qual);
			if (best == NULL || all_rank(m->qual) > all_rank(best->qual))
				best = m;
		}
	}
	return best;
}

/* The mechanisms of one record (all aside), a redirect= as include: where it ends. */
static void
put_record(struct buf *b, const struct terms *t, bool keep_redirect, struct spf_join *out)
{
	const struct term *redirect = NULL;
	bool after_all = false;

	for (size_t i = 0; i < t->n; i++) {
		const struct term *m = &t->v[i];

		if (m->kind == TK_ALL)
			after_all = true;
		else if (m->kind == TK_REDIRECT && redirect == NULL)
			redirect = m;
		else if (!spf_is_mechanism(m->kind))
			continue; /* modifiers go after the all: put_modifiers */
		else if (!put(b, m->text, m->len))
			out->duplicates++;
		else if (after_all)
			out->revived++;
	}
	/* 6.1: a redirect applies after every mechanism of its record */
	if (redirect != NULL && !keep_redirect && put_redirect_as_include(b, redirect))
		out->redirects++;
}

static void
put_modifiers(struct buf *b, const struct terms *t, size_t n, bool keep_redirect,
              struct spf_join *out)
{
	bool exp_seen = false;

	for (size_t r = 0; r < n; r++)
		for (size_t i = 0; i < t[r].n; i++) {
			const struct term *m = &t[r].v[i];

			if (m->kind == TK_REDIRECT && keep_redirect)
				out->redirect_kept = put(b, m->text, m->len);
			if (m->kind == TK_EXP && exp_seen)
				out->exp_dropped++;
			else if (m->kind == TK_EXP)
				exp_seen = put(b, m->text, m->len);
			if (m->kind == TK_MODIFIER && !put(b, m->text, m->len))
				out->duplicates++;
		}
}

int
spf_join(const char *const *records, size_t n, struct spf_join *out, char *err, size_t errlen)
{
	struct terms *t = calloc(n ? n : 1, sizeof *t);
	struct buf b = {0};
	const struct term *all;
	unsigned redirects;
	bool keep_redirect;
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->records = n;
	if (t == NULL)
		return spf_fail(err, errlen, "out of memory");
	for (size_t r = 0; r < n; r++) {
		if (spf_split_terms(records[r], &t[r], err, errlen) != 0)
			goto done;
		for (size_t i = 0; i < t[r].n; i++)
			if (t[r].v[i].kind == TK_UNKNOWN) {
				spf_fail(err, errlen, "record %zu has an unknown term '%.*s'", r + 1,
				     (int)t[r].v[i].len, t[r].v[i].text);
				goto done;
			}
	}
	all = pick_all(t, n, out, &redirects);
	keep_redirect = all == NULL && redirects == 1;
	b.s = strdup("v=spf1");
	b.len = b.s != NULL ? 6 : 0;
	b.cap = b.s != NULL ? 7 : 0;
	if (b.s == NULL)
		b.oom = true;
	for (size_t r = 0; r < n && !b.oom; r++)
		put_record(&b, &t[r], keep_redirect, out);
	if (all != NULL && !b.oom) {
		put(&b, all->text, all->len);
		snprintf(out->all, sizeof out->all, "%.*s", (int)all->len, all->text);
	}
	put_modifiers(&b, t, n, keep_redirect, out);
	if (b.oom) {
		spf_fail(err, errlen, "out of memory");
		goto done;
	}
	out->record = b.s;
	b.s = NULL;
	rc = 0;
done:
	for (size_t r = 0; r < n; r++)
		free(t[r].v);
	free(t);
	for (size_t i = 0; i < b.nkeys; i++)
		free(b.keys[i]);
	free(b.keys);
	free(b.s);
	return rc;
}

void
spf_join_free(struct spf_join *j)
{
	free(j->record);
	j->record = NULL;
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
