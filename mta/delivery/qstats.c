/*
 * qstats: the queue's counts for `mxrelayctl queue summary` and the queue
 * metrics, kept on the loop as messages come and go (see sched.h), so a
 * summary costs O(domains + distinct received seconds), never a spool scan
 * (issue 12: 3.3 s at 400,000 messages when it was SQL).
 *
 * One record per message in the spool (held or not): its received time and,
 * per destination domain, how many of its recipients are still pending
 * there. Per domain: messages with a pending recipient there, pending
 * recipients, and a count of those messages per received second (a sorted
 * array, appended to in the common case) whose first entry is the oldest.
 * The same per-second count over all messages gives the age buckets.
 *
 * A domain is what follows the address's LAST '@' (the whole address
 * without one), ASCII lower case: the same rule as recipients.domain in the
 * spool (spool_int.h SPOOL_DOMAIN_OF), so the counts match SQL's.
 *
 * Must never: read the spool after start-up, or decide anything: it only
 * counts what intake, delivery and queue control report once durable.
 */
#include "mta/delivery/sched.h"

#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"
#include "spool/spool.h"

/* Messages per received second, ascending; entries [head, len) are live. */
struct tc_ent {
	int64_t t;
	int64_t n;
};

struct tcount {
	struct tc_ent *v;
	size_t head, len, cap, zeros;
};

struct qs_dom {
	char *name; /* lower case */
	size_t len;
	uint64_t hash;
	size_t messages, rcpts;
	struct tcount ages;
	struct qs_dom *next;
};

struct qs_ref {
	struct qs_dom *d;
	uint32_t n; /* pending recipients of the message in d */
};

struct qs_msg {
	int64_t id;
	time_t received;
	struct qs_msg *next;
	uint32_t held, nref;
	struct qs_ref ref0;  /* the only domain, when refs is NULL */
	struct qs_ref *refs; /* nref entries when the message has several domains */
};

/* The id next to the record: the start-up's search reads one array, not the records. */
struct qs_load {
	int64_t id;
	struct qs_msg *m;
};

struct qstats {
	struct qs_msg **mtab;
	size_t mbuckets, messages, held, rcpts;
	struct qs_dom **dtab;
	size_t dbuckets, ndoms;
	struct tcount ages;
	/* start-up only (qstats_load_done frees it): the messages in id order */
	struct qs_load *load_v;
	size_t load_n, load_cap, load_pos;
};

/* ---- per-second counts ----------------------------------------------------- */

static size_t
tc_find(const struct tcount *tc, int64_t t)
{
	size_t lo = tc->head, hi = tc->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tc->v[mid].t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
tc_add(struct tcount *tc, int64_t t)
{
	size_t i = tc->len > tc->head && tc->v[tc->len - 1].t < t ? tc->len : tc_find(tc, t);

	if (i < tc->len && tc->v[i].t == t) {
		tc->zeros -= tc->v[i].n == 0;
		tc->v[i].n++;
		return;
	}
	if (i == tc->head && tc->head > 0) { /* older than all: room before head */
		tc->v[--tc->head] = (struct tc_ent){t, 1};
		return;
	}
	if (tc->len == tc->cap) {
		tc->cap = tc->cap ? tc->cap * 2 : 8;
		tc->v = xrealloc(tc->v, tc->cap * sizeof(*tc->v));
	}
	memmove(&tc->v[i + 1], &tc->v[i], (tc->len - i) * sizeof(*tc->v));
	tc->v[i] = (struct tc_ent){t, 1};
	tc->len++;
}

/* Drop the empty seconds (at the ends at once, inside when they pile up). */
static void
tc_trim(struct tcount *tc)
{
	size_t i, o;

	while (tc->head < tc->len && tc->v[tc->head].n == 0)
		tc->head++, tc->zeros--;
	while (tc->len > tc->head && tc->v[tc->len - 1].n == 0)
		tc->len--, tc->zeros--;
	if (tc->head == tc->len) {
		tc->head = tc->len = 0;
		return;
	}
	if (tc->zeros <= (tc->len - tc->head) / 2 + 64 && tc->head <= tc->cap / 2)
		return;
	for (i = tc->head, o = 0; i < tc->len; i++)
		if (tc->v[i].n > 0)
			tc->v[o++] = tc->v[i];
	tc->head = 0;
	tc->len = o;
	tc->zeros = 0;
}

static void
tc_del(struct tcount *tc, int64_t t)
{
	size_t i = tc_find(tc, t);

	if (i >= tc->len || tc->v[i].t != t || tc->v[i].n == 0)
		return; /* never counted: nothing to take back */
	if (--tc->v[i].n == 0) {
		tc->zeros++;
		tc_trim(tc);
	}
}

static time_t
tc_first(const struct tcount *tc)
{
	return tc->head < tc->len ? (time_t)tc->v[tc->head].t : 0;
}

/* ---- domains ----------------------------------------------------------------- */

static const char *
addr_dom(const char *address, size_t *len)
{
	const char *at = strrchr(address, '@');
	const char *d = at ? at + 1 : address;

	*len = strlen(d);
	return d;
}

static char
lc(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static uint64_t
dom_hash(const char *d, size_t len)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)lc(d[i])) * UINT64_C(1099511628211);
	return h;
}

static bool
dom_is(const struct qs_dom *x, const char *d, size_t len, uint64_t h)
{
	if (x->hash != h || x->len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (x->name[i] != lc(d[i]))
			return false;
	return true;
}

static void
dom_grow(struct qstats *q)
{
	size_t nb = q->dbuckets ? q->dbuckets * 2 : 256;
	struct qs_dom **t = xcalloc(nb, sizeof(*t));

	for (size_t i = 0; i < q->dbuckets; i++)
		for (struct qs_dom *x = q->dtab[i], *next; x; x = next) {
			next = x->next;
			x->next = t[x->hash & (nb - 1)];
			t[x->hash & (nb - 1)] = x;
		}
	free(q->dtab);
	q->dtab = t;
	q->dbuckets = nb;
}

/* The domain of address, created when create is set (else NULL when unknown). */
static struct qs_dom *
dom_get(struct qstats *q, const char *address, bool create)
{
	size_t len;
	const char *d = addr_dom(address, &len);
	uint64_t h = dom_hash(d, len);
	struct qs_dom *x;

	for (x = q->dbuckets ? q->dtab[h & (q->dbuckets - 1)] : NULL; x; x = x->next)
		if (dom_is(x, d, len, h))
			return x;
	if (!create)
		return NULL;
	if (q->ndoms >= q->dbuckets)
		dom_grow(q);
	x = xcalloc(1, sizeof(*x));
	x->name = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		x->name[i] = lc(d[i]);
	x->name[len] = '\0';
	x->len = len;
	x->hash = h;
	x->next = q->dtab[h & (q->dbuckets - 1)];
	q->dtab[h & (q->dbuckets - 1)] = x;
	q->ndoms++;
	return x;
}

/* A domain without messages any more leaves, so memory follows the queue. */
static void
dom_put(struct qstats *q, struct qs_dom *x)
{
	struct qs_dom **p;

	if (x->messages > 0)
		return;
	for (p = &q->dtab[x->hash & (q->dbuckets - 1)]; *p != x; p = &(*p)->next)
		;
	*p = x->next;
	q->ndoms--;
	free(x->ages.v);
	free(x->name);
	free(x);
}

/* ---- messages ---------------------------------------------------------------- */

static size_t
msg_bucket(const struct qstats *q, int64_t id)
{
	return util_id_bucket(id, q->mbuckets);
}

static struct qs_msg *
msg_find(const struct qstats *q, int64_t id)
{
	struct qs_msg *m;

	if (q->mbuckets == 0)
		return NULL;
	for (m = q->mtab[msg_bucket(q, id)]; m; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

static void
msg_grow(struct qstats *q)
{
	struct qs_msg **old = q->mtab;
	size_t nb = q->mbuckets;

	q->mbuckets = nb ? nb * 2 : 1024;
	q->mtab = xcalloc(q->mbuckets, sizeof(*q->mtab));
	for (size_t i = 0; i < nb; i++)
		for (struct qs_msg *m = old[i], *next; m; m = next) {
			next = m->next;
			m->next = q->mtab[msg_bucket(q, m->id)];
			q->mtab[msg_bucket(q, m->id)] = m;
		}
	free(old);
}

static struct qs_ref *
msg_refs(struct qs_msg *m)
{
	return m->refs ? m->refs : &m->ref0;
}

/* One more pending recipient of m in the domain of address. */
static void
ref_add(struct qstats *q, struct qs_msg *m, const char *address)
{
	struct qs_dom *d = dom_get(q, address, true);
	struct qs_ref *r = msg_refs(m);
	uint32_t i;

	d->rcpts++;
	q->rcpts++;
	for (i = 0; i < m->nref; i++)
		if (r[i].d == d) {
			r[i].n++;
			return;
		}
	d->messages++;
	tc_add(&d->ages, m->received);
	if (m->nref == 0) {
		m->ref0 = (struct qs_ref){d, 1};
	} else {
		if (m->refs == NULL) { /* a second domain: the list moves to the heap */
			m->refs = xmalloc(2 * sizeof(*m->refs));
			m->refs[0] = m->ref0;
		} else if ((m->nref & (m->nref - 1)) == 0) {
			m->refs = xrealloc(m->refs, 2 * (size_t)m->nref * sizeof(*m->refs));
		}
		m->refs[m->nref] = (struct qs_ref){d, 1};
	}
	m->nref++;
}

/* m no longer counts in the domain of ref i (with its n pending recipients). */
static void
ref_drop(struct qstats *q, struct qs_msg *m, uint32_t i)
{
	struct qs_ref *r = msg_refs(m);
	struct qs_dom *d = r[i].d;

	d->rcpts -= r[i].n;
	q->rcpts -= r[i].n;
	d->messages--;
	tc_del(&d->ages, m->received);
	dom_put(q, d);
	r[i] = r[--m->nref];
}

static struct qs_msg *
msg_new(struct qstats *q, int64_t id, time_t received, bool held)
{
	struct qs_msg *m = xcalloc(1, sizeof(*m));

	if (q->messages >= q->mbuckets)
		msg_grow(q);
	m->id = id;
	m->received = received;
	m->held = held;
	m->next = q->mtab[msg_bucket(q, id)];
	q->mtab[msg_bucket(q, id)] = m;
	q->messages++;
	q->held += held;
	tc_add(&q->ages, received);
	return m;
}

/* ---- the interface (sched.h) --------------------------------------------- */

struct qstats *
qstats_new(void)
{
	return xcalloc(1, sizeof(struct qstats));
}

void
qstats_free(struct qstats *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->mbuckets; i++)
		for (struct qs_msg *m = q->mtab[i], *next; m; m = next) {
			next = m->next;
			free(m->refs);
			free(m);
		}
	for (size_t i = 0; i < q->dbuckets; i++)
		for (struct qs_dom *x = q->dtab[i], *next; x; x = next) {
			next = x->next;
			free(x->ages.v);
			free(x->name);
			free(x);
		}
	free(q->mtab);
	free(q->dtab);
	free(q->ages.v);
	free(q->load_v);
	free(q);
}

void
qstats_add(struct qstats *q, int64_t id, time_t received, bool held, const char *const *rcpts,
           size_t n)
{
	struct qs_msg *m;

	if (q == NULL || msg_find(q, id) != NULL)
		return; /* counted already */
	m = msg_new(q, id, received, held);
	for (size_t i = 0; i < n; i++)
		ref_add(q, m, rcpts[i]);
}

/*
 * The message id among those of the start-up's first pass. Its second pass
 * comes per domain in id order, so the search gallops on from the last hit:
 * a walk along memory in id order instead of a hash probe per recipient
 * (the probes were most of the start-up at 1,000,000 messages).
 */
static struct qs_msg *
load_find(struct qstats *q, int64_t id)
{
	struct qs_load *v = q->load_v;
	size_t n = q->load_n, lo = 0, hi, step = 1;

	if (q->load_pos < n && v[q->load_pos].id <= id)
		lo = q->load_pos;
	for (hi = lo; hi < n && v[hi].id < id; step *= 2) {
		lo = hi;
		hi += step;
	}
	if (hi > n)
		hi = n;
	while (lo < hi) { /* the first entry >= id in [lo, hi) */
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n || v[lo].id != id)
		return NULL;
	q->load_pos = lo;
	return v[lo].m;
}

void
qstats_load_done(struct qstats *q)
{
	if (q == NULL)
		return;
	free(q->load_v);
	q->load_v = NULL;
	q->load_n = q->load_cap = q->load_pos = 0;
}

void
qstats_load_row(void *arg, int64_t id, time_t received, int held, const char *address)
{
	struct qstats *q = arg;
	struct qs_msg *m;

	if (q == NULL)
		return;
	if (address == NULL) { /* the messages pass: each id once (the primary key) */
		m = msg_new(q, id, received, held != 0);
		if (q->load_n > 0 && q->load_v[q->load_n - 1].id >= id) {
			qstats_load_done(q); /* not in id order after all: hash probes */
			q->load_cap = SIZE_MAX;
		}
		if (q->load_cap == SIZE_MAX)
			return;
		if (q->load_n == q->load_cap) {
			q->load_cap = q->load_cap ? q->load_cap * 2 : 1024;
			q->load_v = xrealloc(q->load_v, q->load_cap * sizeof(*q->load_v));
		}
		q->load_v[q->load_n++] = (struct qs_load){id, m};
		return;
	}
	m = q->load_v ? load_find(q, id) : msg_find(q, id);
	/* a domain is its own domain by the rule (no '@', lower case already) */
	if (m != NULL)
		ref_add(q, m, address);
}

void
qstats_remove(struct qstats *q, int64_t id)
{
	struct qs_msg *m = q ? msg_find(q, id) : NULL, **p;

	if (m == NULL)
		return;
	while (m->nref > 0)
		ref_drop(q, m, m->nref - 1);
	for (p = &q->mtab[msg_bucket(q, id)]; *p != m; p = &(*p)->next)
		;
	*p = m->next;
	qstats_load_done(q); /* the start-up's list must not outlive a message */
	q->messages--;
	q->held -= m->held;
	tc_del(&q->ages, m->received);
	free(m->refs);
	free(m);
}

void
qstats_rcpt_done(struct qstats *q, int64_t id, const char *address)
{
	struct qs_msg *m = q ? msg_find(q, id) : NULL;
	struct qs_dom *d = m ? dom_get(q, address, false) : NULL;
	struct qs_ref *r;
	uint32_t i;

	if (d == NULL)
		return;
	r = msg_refs(m);
	for (i = 0; i < m->nref && r[i].d != d; i++)
		;
	if (i == m->nref)
		return;
	if (r[i].n > 1) {
		r[i].n--;
		d->rcpts--;
		q->rcpts--;
		return;
	}
	ref_drop(q, m, i);
	/* nothing pending any more: spool_apply deleted it in the same commit */
	if (m->nref == 0)
		qstats_remove(q, id);
}

void
qstats_set_held(struct qstats *q, int64_t id, bool held)
{
	struct qs_msg *m = q ? msg_find(q, id) : NULL;

	if (m == NULL || m->held == (uint32_t)held)
		return;
	m->held = held;
	if (held)
		q->held++;
	else
		q->held--;
}

void
qstats_count(const struct qstats *q, size_t *messages, size_t *held)
{
	*messages = q ? q->messages : 0;
	*held = q ? q->held : 0;
}

static int
dom_order(const void *a, const void *b)
{
	const struct qs_dom *x = *(const struct qs_dom *const *)a;
	const struct qs_dom *y = *(const struct qs_dom *const *)b;

	/* as the SQL it replaces: ORDER BY messages DESC, domain */
	if (x->messages != y->messages)
		return x->messages > y->messages ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
age_bucket(int64_t age)
{
	return age < 300 ? 0 : age < 3600 ? 1 : age < 86400 ? 2 : 3;
}

void
qstats_summary(const struct qstats *q, time_t now, size_t max_domains, struct spool_qsummary *out)
{
	struct qs_dom **all;
	size_t i, n = 0;

	memset(out, 0, sizeof(*out));
	if (q == NULL)
		return;
	out->messages = q->messages;
	out->held = q->held;
	out->rcpts = q->rcpts;
	out->oldest = tc_first(&q->ages);
	for (i = q->ages.head; i < q->ages.len; i++) {
		const struct tc_ent *e = &q->ages.v[i];
		int b = age_bucket((int64_t)now - e->t);
		if (e->n == 0)
			continue;
		out->age_messages[b] += (size_t)e->n;
		if (out->age_oldest[b] == 0)
			out->age_oldest[b] = (time_t)e->t;
	}
	all = xcalloc(q->ndoms + 1, sizeof(*all));
	for (i = 0; i < q->dbuckets; i++)
		for (struct qs_dom *x = q->dtab[i]; x; x = x->next)
			all[n++] = x;
	qsort(all, n, sizeof(*all), dom_order);
	out->ndomains_total = n;
	out->ndomains = n < max_domains ? n : max_domains;
	out->domains = xcalloc(out->ndomains + 1, sizeof(*out->domains));
	for (i = 0; i < out->ndomains; i++) {
		out->domains[i].domain = xstrdup(all[i]->name);
		out->domains[i].messages = all[i]->messages;
		out->domains[i].rcpts = all[i]->rcpts;
		out->domains[i].oldest = tc_first(&all[i]->ages);
	}
	free(all);
}
