/*
 * cache: answers per (name, type) until their expiry time.
 *
 * A hash table of chains for lookups plus one LRU list: a hit moves the
 * entry to the front, a put over the bound drops the back. Expired entries
 * go when they are looked up or reach the back. Names are compared without
 * case (RFC 4343).
 */
#include "dns/dns_int.h"

#include <stdlib.h>
#include <string.h>

struct centry {
	struct centry *hnext;         /* hash chain */
	struct centry *newer, *older; /* LRU list */
	int type;
	int64_t expires;
	struct dns_answer *a;
	char name[];
};

struct dns_cache {
	size_t max, count, nbuckets;
	struct centry **buckets;
	struct centry *newest, *oldest;
};

static uint32_t
hash(const char *name, int type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (; *name; name++) {
		unsigned char ch = (unsigned char)*name;
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		h = (h ^ ch) * 16777619u;
	}
	return h;
}

struct dns_cache *
dns__cache_new(size_t max)
{
	struct dns_cache *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->max = max ? max : 1;
	c->nbuckets = 64;
	while (c->nbuckets < c->max && c->nbuckets < (1u << 20))
		c->nbuckets <<= 1;
	if ((c->buckets = calloc(c->nbuckets, sizeof *c->buckets)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

static struct centry **
slot_of(struct dns_cache *c, const char *name, int type)
{
	struct centry **pp = &c->buckets[hash(name, type) & (c->nbuckets - 1)];

	while (*pp && !((*pp)->type == type && dns__name_eq((*pp)->name, name)))
		pp = &(*pp)->hnext;
	return pp;
}

static void
lru_unlink(struct dns_cache *c, struct centry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
lru_push(struct dns_cache *c, struct centry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

/* Remove the entry *pp points at (a hash chain link). */
static void
drop(struct dns_cache *c, struct centry **pp)
{
	struct centry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	dns__answer_unref(e->a);
	free(e);
	c->count--;
}

struct dns_answer *
dns__cache_get(struct dns_cache *c, const char *name, int type, int64_t now)
{
	struct centry **pp = slot_of(c, name, type);
	struct centry *e = *pp;

	if (e == NULL)
		return NULL;
	if (e->expires <= now) {
		drop(c, pp);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	return e->a;
}

void
dns__cache_put(struct dns_cache *c, const char *name, int type, struct dns_answer *a,
               int64_t expires)
{
	struct centry **pp = slot_of(c, name, type);
	size_t nlen = strlen(name);
	struct centry *e;

	if (*pp)
		drop(c, pp);
	if ((e = calloc(1, sizeof *e + nlen + 1)) == NULL)
		return; /* not caching is always correct */
	memcpy(e->name, name, nlen + 1);
	e->type = type;
	e->expires = expires;
	e->a = a;
	a->refs++;
	pp = &c->buckets[hash(name, type) & (c->nbuckets - 1)];
	e->hnext = *pp;
	*pp = e;
	lru_push(c, e);
	c->count++;
	while (c->count > c->max) {
		struct centry *old = c->oldest;
		drop(c, slot_of(c, old->name, old->type));
	}
}

size_t
dns__cache_count(const struct dns_cache *c)
{
	return c->count;
}

void
dns__cache_flush(struct dns_cache *c)
{
	while (c->oldest)
		drop(c, slot_of(c, c->oldest->name, c->oldest->type));
}

void
dns__cache_free(struct dns_cache *c)
{
	if (c == NULL)
		return;
	dns__cache_flush(c);
	free(c->buckets);
	free(c);
}
