/*
 * query: the bookkeeping of queries on a handle, and the handle's clock,
 * random numbers and timer notification.
 *
 * The lowest file of the query path: lookup.c, mx.c and dns.c call it, it
 * calls none of them. A query is on exactly one list: d->live while it
 * runs, the done FIFO once finished (dns.c drains it and ends each query
 * through the query's own complete/discard pointers), none while delivering.
 */
#include "dns/dns_int.h"

#include <time.h>

int64_t
dns__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t
dns__rand(struct dns *d)
{
	/* xorshift64*: shuffling MX ties needs spread, not secrecy */
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (uint32_t)((d->rng * 2685821657736338717ull) >> 32);
}

void
dns__notify_timer(struct dns *d)
{
	if (d->timer_cb)
		d->timer_cb(d->cbarg);
}

void
dns__query_unlink(struct dns_query *q)
{
	struct dns *d = q->d;

	if (q->state == Q_DONE && d->drain_stop == q)
		d->drain_stop = q->prev; /* NULL: q was next, the drain ends here */
	if (q->prev)
		q->prev->next = q->next;
	else if (q->state == Q_DONE)
		d->done_head = q->next;
	else
		d->live = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else if (q->state == Q_DONE)
		d->done_tail = q->prev;
	q->prev = q->next = NULL;
}

void
dns__query_link(struct dns_query *q)
{
	struct dns *d = q->d;

	q->state = Q_RUNNING;
	q->prev = NULL;
	q->next = d->live;
	if (d->live)
		d->live->prev = q;
	d->live = q;
}

void
dns__finished(struct dns_query *q)
{
	struct dns *d = q->d;

	dns__query_unlink(q);
	q->state = Q_DONE;
	q->prev = d->done_tail;
	if (d->done_tail)
		d->done_tail->next = q;
	else
		d->done_head = q;
	d->done_tail = q;
}
