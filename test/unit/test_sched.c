/*
 * Unit tests for mta/delivery/sched: due order, the in-flight budget, and the queue
 * control operations (reschedule, remove while queued or in flight,
 * release) on a real libevent base run without blocking.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/delivery/sched.h"

#include <event2/event.h>
#include <string.h>
#include <time.h>

struct rec {
	int64_t started[64];
	size_t n;
};

static void
on_start(int64_t id, void *arg)
{
	struct rec *r = arg;
	if (r->n < 64)
		r->started[r->n++] = id;
}

/* Run the due timer once (it is armed with 0 s when something is due now). */
static void
turn(struct event_base *b)
{
	event_base_loop(b, EVLOOP_NONBLOCK);
	event_base_loop(b, EVLOOP_NONBLOCK);
}

static void
test_due_order_and_budget(void **state)
{
	struct event_base *b = event_base_new();
	struct rec r = {0};
	struct sched *s = sched_new(b, 2, on_start, &r);
	time_t now = time(NULL);

	sched_add(s, 3, now - 1);
	sched_add(s, 1, now - 3);
	sched_add(s, 2, now - 2);
	sched_add(s, 9, now + 3600);
	turn(b);
	assert_int_equal(r.n, 2); /* the in-flight budget */
	assert_int_equal(r.started[0], 1);
	assert_int_equal(r.started[1], 2);
	assert_int_equal(sched_where(s, 1), SCHED_INFLIGHT);
	assert_int_equal(sched_where(s, 3), SCHED_QUEUED);
	sched_done(s, 1);
	turn(b);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.started[2], 3);
	assert_int_equal(sched_where(s, 1), SCHED_NONE); /* done without a re-add */
	assert_int_equal(sched_queued(s), 1);
	sched_free(s);
	event_base_free(b);
}

static void
test_reschedule_and_remove(void **state)
{
	struct event_base *b = event_base_new();
	struct rec r = {0};
	struct sched *s = sched_new(b, 10, on_start, &r);
	time_t now = time(NULL);
	int64_t id;

	for (id = 1; id <= 40; id++)
		sched_add(s, id, now + 3600 + id);
	assert_int_equal(sched_remove(s, 7), SCHED_QUEUED);
	assert_int_equal(sched_remove(s, 7), SCHED_NONE);
	assert_int_equal(sched_reschedule(s, 30, now), SCHED_QUEUED);
	assert_int_equal(sched_reschedule(s, 12, now), SCHED_QUEUED);
	assert_int_equal(sched_reschedule(s, 99, now), SCHED_NONE);
	turn(b);
	assert_int_equal(r.n, 2);
	assert_true((r.started[0] == 30 && r.started[1] == 12) ||
	            (r.started[0] == 12 && r.started[1] == 30));
	assert_int_equal(sched_queued(s), 37);
	/* flush: everything left is due, the removed one never comes */
	sched_flush(s);
	for (int i = 0; i < 5; i++)
		turn(b);
	assert_int_equal(r.n, 10); /* max_inflight */
	for (size_t i = 0; i < r.n; i++)
		assert_int_not_equal(r.started[i], 7);
	sched_free(s);
	event_base_free(b);
}

static void
test_remove_in_flight_drops_its_readd(void **state)
{
	struct event_base *b = event_base_new();
	struct rec r = {0};
	struct sched *s = sched_new(b, 10, on_start, &r);
	time_t now = time(NULL);

	sched_add(s, 5, now);
	sched_add(s, 6, now);
	turn(b);
	assert_int_equal(r.n, 2);
	/* hold 5 while it is tried: its outcome's re-add is ignored */
	assert_int_equal(sched_remove(s, 5), SCHED_INFLIGHT);
	assert_int_equal(sched_where(s, 5), SCHED_INFLIGHT);
	assert_int_equal(sched_reschedule(s, 5, now), SCHED_INFLIGHT);
	sched_add(s, 5, now);
	sched_done(s, 5);
	assert_int_equal(sched_where(s, 5), SCHED_NONE);
	/* 6 is re-added by its outcome: back in the heap once done */
	sched_add(s, 6, now + 100);
	assert_int_equal(sched_where(s, 6), SCHED_INFLIGHT);
	sched_done(s, 6);
	assert_int_equal(sched_where(s, 6), SCHED_QUEUED);
	/* release 5: due at once */
	sched_release(s, 5, now);
	turn(b);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.started[2], 5);
	/* removed and released during one attempt: its own outcome decides */
	assert_int_equal(sched_remove(s, 5), SCHED_INFLIGHT);
	sched_release(s, 5, now);
	sched_add(s, 5, now + 50);
	sched_done(s, 5);
	assert_int_equal(sched_where(s, 5), SCHED_QUEUED);
	sched_free(s);
	event_base_free(b);
}

static void
test_many_ids(void **state)
{
	struct event_base *b = event_base_new();
	struct rec r = {0};
	struct sched *s = sched_new(b, 1, on_start, &r);
	time_t now = time(NULL);
	int64_t id;

	/* past the first table growth, with every other id removed again */
	for (id = 1; id <= 5000; id++)
		sched_add(s, id, now + 10000 - id);
	for (id = 2; id <= 5000; id += 2)
		assert_int_equal(sched_remove(s, id), SCHED_QUEUED);
	assert_int_equal(sched_queued(s), 2500);
	assert_int_equal(sched_reschedule(s, 4999, now - 1), SCHED_QUEUED);
	assert_int_equal(sched_reschedule(s, 1, now - 2), SCHED_QUEUED);
	turn(b);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.started[0], 1);
	sched_done(s, 1);
	turn(b);
	assert_int_equal(r.started[1], 4999);
	sched_free(s);
	event_base_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_due_order_and_budget),
	    cmocka_unit_test(test_reschedule_and_remove),
	    cmocka_unit_test(test_remove_in_flight_drops_its_readd),
	    cmocka_unit_test(test_many_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
