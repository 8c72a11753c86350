/* sched: due-time heap and in-flight budget (see sched.h). */
#include "mta/sched.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mta/core/util.h"

struct entry {
	time_t due;
	int64_t id;
};

struct sched {
	struct event_base *base;
	struct event *timer;
	struct entry *heap;
	size_t n, cap;
	size_t inflight, max_inflight;
	sched_start_fn start;
	void *arg;
	bool stopped;
	bool armed;
};

static void
swap(struct entry *a, struct entry *b)
{
	struct entry t = *a;
	*a = *b;
	*b = t;
}

static void
heap_push(struct sched *s, struct entry e)
{
	size_t i;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->heap = xrealloc(s->heap, s->cap * sizeof(*s->heap));
	}
	i = s->n++;
	s->heap[i] = e;
	while (i > 0 && s->heap[(i - 1) / 2].due > s->heap[i].due) {
		swap(&s->heap[(i - 1) / 2], &s->heap[i]);
		i = (i - 1) / 2;
	}
}

static struct entry
heap_pop(struct sched *s)
{
	struct entry top = s->heap[0];
	size_t i = 0;
	s->heap[0] = s->heap[--s->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->n && s->heap[l].due < s->heap[m].due)
			m = l;
		if (r < s->n && s->heap[r].due < s->heap[m].due)
			m = r;
		if (m == i)
			break;
		swap(&s->heap[m], &s->heap[i]);
		i = m;
	}
	return top;
}

static void
arm(struct sched *s)
{
	struct timeval tv = {0, 0};
	time_t now = time(NULL);

	if (s->stopped || s->n == 0 || s->inflight >= s->max_inflight)
		return;
	if (s->heap[0].due > now)
		tv.tv_sec = s->heap[0].due - now;
	evtimer_add(s->timer, &tv);	/* re-adding moves the deadline */
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	time_t now = time(NULL);

	/* start() may call back into sched (sched_done on an immediate error): fine, the heap is consistent */
	while (!s->stopped && s->n > 0 && s->heap[0].due <= now && s->inflight < s->max_inflight) {
		struct entry e = heap_pop(s);
		s->inflight++;
		s->start(e.id, s->arg);
	}
	arm(s);
}

struct sched *
sched_new(struct event_base *base, size_t max_inflight, sched_start_fn start, void *arg)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->timer = evtimer_new(base, on_timer, s);
	s->max_inflight = max_inflight ? max_inflight : 1;
	s->start = start;
	s->arg = arg;
	return s;
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	event_free(s->timer);
	free(s->heap);
	free(s);
}

void
sched_add(struct sched *s, int64_t id, time_t due)
{
	struct entry e = {due, id};
	heap_push(s, e);
	if (s->heap[0].id == id)
		arm(s);
}

void
sched_done(struct sched *s, int64_t id)
{
	if (s->inflight > 0)
		s->inflight--;
	arm(s);
}

void
sched_flush(struct sched *s)
{
	size_t i;
	for (i = 0; i < s->n; i++)
		s->heap[i].due = 0;	/* all equal: still a valid heap */
	arm(s);
}

void
sched_stop(struct sched *s)
{
	s->stopped = true;
	evtimer_del(s->timer);
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
