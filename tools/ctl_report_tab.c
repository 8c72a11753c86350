/*
 * ctl_report_tab: bounded string -> count tables for `mxrelayctl report`
 * (see ctl_report.h). A log can hold millions of distinct senders: past
 * `cap` distinct keys a new key is counted in `others`, so memory stays
 * O(cap) whatever the log holds.
 */
#include "tools/ctl_report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"

#define KEY_MAX 255

struct rent {
	char *key; /* NULL: free slot */
	long long n;
};

struct rtab {
	struct rent *v;
	size_t nslots, used, cap;
	long long others;
};

struct rtab *
rtab_new(size_t cap)
{
	struct rtab *t = xcalloc(1, sizeof(*t));

	t->cap = cap ? cap : 1;
	t->nslots = 16;
	while (t->nslots < t->cap * 2)
		t->nslots *= 2;
	t->v = xcalloc(t->nslots, sizeof(*t->v));
	return t;
}

void
rtab_free(struct rtab *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nslots; i++)
		free(t->v[i].key);
	free(t->v);
	free(t);
}

/* FNV-1a over at most KEY_MAX bytes (the stored key is cut there too). */
static uint64_t
hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

void
rtab_add(struct rtab *t, const char *key, long long n)
{
	size_t len = strnlen(key, KEY_MAX);
	size_t i = (size_t)hash(key, len) & (t->nslots - 1);

	for (;; i = (i + 1) & (t->nslots - 1)) {
		struct rent *e = &t->v[i];
		if (e->key == NULL)
			break;
		if (strlen(e->key) == len && memcmp(e->key, key, len) == 0) {
			e->n += n;
			return;
		}
	}
	if (t->used >= t->cap) {
		t->others += n;
		return;
	}
	t->v[i].key = xstrndup(key, len);
	t->v[i].n = n;
	t->used++;
}

size_t
rtab_top(const struct rtab *t, size_t n, const char **keys, long long *counts)
{
	size_t got = 0;

	/* insertion into a short sorted list: n is small (a top 10) */
	for (size_t i = 0; i < t->nslots; i++) {
		const struct rent *e = &t->v[i];
		size_t k;
		if (e->key == NULL)
			continue;
		for (k = got; k > 0; k--) {
			if (counts[k - 1] > e->n ||
			    (counts[k - 1] == e->n && strcmp(keys[k - 1], e->key) < 0))
				break;
			if (k < n) {
				keys[k] = keys[k - 1];
				counts[k] = counts[k - 1];
			}
		}
		if (k < n) {
			keys[k] = e->key;
			counts[k] = e->n;
			if (got < n)
				got++;
		}
	}
	return got;
}

long long
rtab_others(const struct rtab *t)
{
	return t->others;
}

size_t
rtab_size(const struct rtab *t)
{
	return t->used;
}
