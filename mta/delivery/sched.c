/*
 * sched: due-time heap and in-flight budget (see sched.h).
 *
 * Every message sched knows has one node, found by id through a hash table:
 * queued nodes sit in the heap (and know their heap index, so one can be
 * re-keyed or removed in O(log n) for mxrelayctl), in-flight nodes remember
 * whether their attempt will put them back (F_READD) or must not (F_DROP,
 * held or deleted meanwhile).
 */
#include "mta/delivery/sched.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mta/event.h"
#include "mta/shared/util.h"

#define F_QUEUED 0x01       /* in the heap at pos */
#define F_INFLIGHT 0x02     /* started, sched_done not yet called */
#define F_READD 0x04        /* in flight; back into the heap at due when done */
#define F_DROP 0x08         /* in flight; removed meanwhile: ignore its re-add */
#define ARM_MAX (24 * 3600) /* seconds the timer is armed for at most */

struct node {
	int64_t id;
	time_t due;
	size_t pos;
	unsigned flags;
	struct node *next; /* hash chain */
};

struct sched {
	struct event_base *base;
	struct event *timer;
	struct node **heap;
	size_t n, cap;
	struct node **tab; /* hash table by id, chained; nbuckets a power of two */
	size_t nbuckets, nnodes;
	size_t inflight, max_inflight;
	sched_start_fn start;
	void *arg;
	struct qstats *stats; /* the queue's counts (qstats.c), owned here */
	struct {
		int64_t id, ms;
	} arrivals[SCHED_ARRIVALS]; /* sched_arrived: slot id % SCHED_ARRIVALS */
	bool stopped;
	bool armed;
};

static size_t
bucket(const struct sched *s, int64_t id)
{
	return util_id_bucket(id, s->nbuckets);
}

static struct node *
find(const struct sched *s, int64_t id)
{
	struct node *n;
	if (s->nbuckets == 0)
		return NULL;
	for (n = s->tab[bucket(s, id)]; n; n = n->next)
		if (n->id == id)
			return n;
	return NULL;
}

static struct node *
node_new(struct sched *s, int64_t id)
{
	struct node *n = xcalloc(1, sizeof(*n)), **old = s->tab;
	size_t i, nb = s->nbuckets;

	if (s->nnodes >= s->nbuckets) {
		/* grow at load factor 1: the table stays O(1) per lookup */
		s->nbuckets = nb ? nb * 2 : 1024;
		s->tab = xcalloc(s->nbuckets, sizeof(*s->tab));
		for (i = 0; i < nb; i++)
			for (struct node *m = old[i], *next; m; m = next) {
				next = m->next;
				m->next = s->tab[bucket(s, m->id)];
				s->tab[bucket(s, m->id)] = m;
			}
		free(old);
	}
	n->id = id;
	n->next = s->tab[bucket(s, id)];
	s->tab[bucket(s, id)] = n;
	s->nnodes++;
	return n;
}

static void
node_free(struct sched *s, struct node *n)
{
	struct node **pp = &s->tab[bucket(s, n->id)];
	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	s->nnodes--;
	free(n);
}

static void
heap_set(struct sched *s, size_t i, struct node *n)
{
	s->heap[i] = n;
	n->pos = i;
}

static void
sift_up(struct sched *s, size_t i)
{
	struct node *n = s->heap[i];
	while (i > 0 && s->heap[(i - 1) / 2]->due > n->due) {
		heap_set(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(s, i, n);
}

static void
sift_down(struct sched *s, size_t i)
{
	struct node *n = s->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = l;
		if (l >= s->n)
			break;
		if (r < s->n && s->heap[r]->due < s->heap[l]->due)
			m = r;
		if (s->heap[m]->due >= n->due)
			break;
		heap_set(s, i, s->heap[m]);
		i = m;
	}
	heap_set(s, i, n);
}

static void
heap_push(struct sched *s, struct node *n, time_t due)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->heap = xrealloc(s->heap, s->cap * sizeof(*s->heap));
	}
	n->due = due;
	n->flags |= F_QUEUED;
	heap_set(s, s->n++, n);
	sift_up(s, n->pos);
}

/* Take n out of the heap (it stays in the table). */
static void
heap_remove(struct sched *s, struct node *n)
{
	size_t i = n->pos;
	struct node *last = s->heap[--s->n];

	n->flags &= ~F_QUEUED;
	if (last == n)
		return;
	heap_set(s, i, last);
	sift_up(s, i);
	sift_down(s, last->pos);
}

static void
arm(struct sched *s)
{
	time_t now = time(NULL), wait = 0;

	if (s->stopped || s->n == 0 || s->inflight >= s->max_inflight)
		return;
	if (s->heap[0]->due > now)
		wait = s->heap[0]->due - now;
	if (wait > ARM_MAX)
		wait = ARM_MAX; /* the timer's milliseconds fit an unsigned; it re-arms on firing */
	loop_timer_add(s->timer, (unsigned)wait * 1000); /* re-adding moves the deadline */
}

static void
on_timer(void *arg)
{
	struct sched *s = arg;
	time_t now = time(NULL);

	/* start() may call back into sched (sched_done on an immediate error): fine, the heap is
	 * consistent */
	while (!s->stopped && s->n > 0 && s->heap[0]->due <= now && s->inflight < s->max_inflight) {
		struct node *n = s->heap[0];
		heap_remove(s, n);
		n->flags = F_INFLIGHT;
		s->inflight++;
		s->start(n->id, s->arg);
	}
	arm(s);
}

struct sched *
sched_new(struct event_base *base, size_t max_inflight, sched_start_fn start, void *arg)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->timer = loop_timer_new(base, false, on_timer, s);
	s->max_inflight = max_inflight ? max_inflight : 1;
	s->start = start;
	s->arg = arg;
	s->stats = qstats_new();
	return s;
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	loop_timer_free(s->timer);
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct node *n = s->tab[i], *next; n; n = next) {
			next = n->next;
			free(n);
		}
	free(s->tab);
	free(s->heap);
	qstats_free(s->stats);
	free(s);
}

struct qstats *
sched_qstats(struct sched *s)
{
	return s ? s->stats : NULL;
}

void
sched_add(struct sched *s, int64_t id, time_t due)
{
	struct node *n = find(s, id);

	if (n == NULL) {
		n = node_new(s, id);
		heap_push(s, n, due);
	} else if (n->flags & F_INFLIGHT) {
		/* the attempt's own outcome: back in the heap once it is done */
		if (n->flags & F_DROP)
			return;
		if (!(n->flags & F_READD) || due < n->due)
			n->due = due;
		n->flags |= F_READD;
		return;
	} else if (due < n->due) {
		n->due = due; /* already queued: the earlier time wins */
		sift_up(s, n->pos);
	}
	if (s->heap[0] == n)
		arm(s);
}

void
sched_done(struct sched *s, int64_t id)
{
	struct node *n = find(s, id);

	if (s->inflight > 0)
		s->inflight--;
	if (n != NULL && (n->flags & F_INFLIGHT)) {
		if ((n->flags & (F_READD | F_DROP)) == F_READD) {
			n->flags = 0;
			heap_push(s, n, n->due);
		} else {
			node_free(s, n);
		}
	}
	arm(s);
}

void
sched_flush(struct sched *s)
{
	size_t i;
	for (i = 0; i < s->n; i++)
		s->heap[i]->due = 0; /* all equal: still a valid heap */
	arm(s);
}

enum sched_where
sched_where(const struct sched *s, int64_t id)
{
	const struct node *n = find(s, id);
	if (n == NULL)
		return SCHED_NONE;
	return (n->flags & F_INFLIGHT) ? SCHED_INFLIGHT : SCHED_QUEUED;
}

enum sched_where
sched_reschedule(struct sched *s, int64_t id, time_t due)
{
	struct node *n = find(s, id);

	if (n == NULL)
		return SCHED_NONE;
	if (n->flags & F_INFLIGHT)
		return SCHED_INFLIGHT;
	n->due = due;
	sift_up(s, n->pos);
	sift_down(s, n->pos);
	arm(s);
	return SCHED_QUEUED;
}

enum sched_where
sched_remove(struct sched *s, int64_t id)
{
	struct node *n = find(s, id);

	if (n == NULL)
		return SCHED_NONE;
	if (n->flags & F_INFLIGHT) {
		n->flags = (n->flags & ~F_READD) | F_DROP;
		return SCHED_INFLIGHT;
	}
	heap_remove(s, n);
	node_free(s, n);
	arm(s);
	return SCHED_QUEUED;
}

void
sched_release(struct sched *s, int64_t id, time_t due)
{
	struct node *n = find(s, id);

	/* in flight: its own outcome decides when it comes back, as without a hold */
	if (n != NULL && (n->flags & F_INFLIGHT))
		n->flags &= ~F_DROP;
	else
		sched_add(s, id, due);
}

void
sched_stop(struct sched *s)
{
	s->stopped = true;
	loop_timer_stop(s->timer);
}

size_t
sched_queued(const struct sched *s)
{
	return s->n;
}

size_t
sched_inflight(const struct sched *s)
{
	return s->inflight;
}

void
sched_arrived(struct sched *s, int64_t id, int64_t wall_ms)
{
	if (s == NULL)
		return;
	/* row ids grow by one: the last SCHED_ARRIVALS messages never share a slot */
	s->arrivals[(uint64_t)id % SCHED_ARRIVALS].id = id;
	s->arrivals[(uint64_t)id % SCHED_ARRIVALS].ms = wall_ms;
}

int64_t
sched_arrival(const struct sched *s, int64_t id)
{
	if (s == NULL || s->arrivals[(uint64_t)id % SCHED_ARRIVALS].id != id)
		return 0;
	return s->arrivals[(uint64_t)id % SCHED_ARRIVALS].ms;
}
