/*
 * Unit tests for mta/event: the deferred-free idiom (evref) that every
 * connection type uses, and the loop timers, on a real libevent base.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/event.h"

#include <event2/event.h>
#include <stdlib.h>

/* A connection stand-in: counts how often it was freed. */
struct obj {
	struct evref ref;
	int *frees;
};

static void
obj_free(void *arg)
{
	struct obj *o = arg;
	(*o->frees)++;
	free(o);
}

static struct obj *
obj_new(int *frees)
{
	struct obj *o = calloc(1, sizeof(*o));
	assert_non_null(o);
	o->frees = frees;
	evref_init(&o->ref, obj_free, o);
	return o;
}

/* Close with nothing held: freed at once. */
static void
test_close_unheld_frees_now(void **state)
{
	int frees = 0;
	struct obj *o = obj_new(&frees);

	(void)state;
	evref_close(&o->ref);
	assert_int_equal(frees, 1);
}

/* Close inside a handler: marked only, freed by the handler's leave. */
static void
test_close_in_handler_frees_at_leave(void **state)
{
	int frees = 0;
	struct obj *o = obj_new(&frees);

	(void)state;
	evref_enter(&o->ref);
	evref_close(&o->ref);
	assert_int_equal(frees, 0);
	assert_true(evref_closing(&o->ref));
	evref_close(&o->ref); /* idempotent */
	assert_int_equal(frees, 0);
	assert_false(evref_leave(&o->ref));
	assert_int_equal(frees, 1);
}

/* Nested enters (a callback inside a handler, a wait for a worker): the outermost leave frees. */
static void
test_nested_enters(void **state)
{
	int frees = 0;
	struct obj *o = obj_new(&frees);

	(void)state;
	evref_enter(&o->ref); /* a bufferevent callback */
	evref_enter(&o->ref); /* work handed to a worker */
	evref_enter(&o->ref); /* a nested callback */
	evref_close(&o->ref);
	assert_true(evref_leave(&o->ref));
	assert_true(evref_leave(&o->ref));
	assert_int_equal(frees, 0);
	assert_false(evref_leave(&o->ref));
	assert_int_equal(frees, 1);
}

/* Enter and leave without a close: nothing is freed, the object lives on. */
static void
test_leave_without_close_keeps(void **state)
{
	int frees = 0;
	struct obj *o = obj_new(&frees);

	(void)state;
	evref_enter(&o->ref);
	assert_true(evref_leave(&o->ref));
	assert_false(evref_closing(&o->ref));
	assert_int_equal(frees, 0);
	evref_close(&o->ref);
	assert_int_equal(frees, 1);
}

struct ticks {
	int n;
	int stop_at; /* a repeating timer stops itself after this many */
	struct event *ev;
};

static void
on_tick(void *arg)
{
	struct ticks *t = arg;
	if (++t->n == t->stop_at)
		loop_timer_stop(t->ev);
}

/* A one-shot timer fires once per arming; the loop then has nothing left. */
static void
test_timer_once(void **state)
{
	struct event_base *b = event_base_new();
	struct ticks t = {0, 0, NULL};

	(void)state;
	t.ev = loop_timer_new(b, false, on_tick, &t);
	assert_non_null(t.ev);
	loop_timer_add(t.ev, 5);
	assert_int_equal(event_base_dispatch(b), 1); /* 1: no events left */
	assert_int_equal(t.n, 1);
	loop_timer_add(t.ev, 1); /* armed again: once more */
	event_base_dispatch(b);
	assert_int_equal(t.n, 2);
	loop_timer_free(t.ev);
	loop_timer_free(NULL);
	event_base_free(b);
}

/* A repeating timer fires every period until stopped. */
static void
test_timer_repeat(void **state)
{
	struct event_base *b = event_base_new();
	struct ticks t = {0, 3, NULL};

	(void)state;
	t.ev = loop_timer_new(b, true, on_tick, &t);
	assert_non_null(t.ev);
	loop_timer_add(t.ev, 2);
	event_base_dispatch(b); /* returns once the timer stopped itself */
	assert_int_equal(t.n, 3);
	loop_timer_free(t.ev);
	event_base_free(b);
}

/* A stopped timer never fires. */
static void
test_timer_stop(void **state)
{
	struct event_base *b = event_base_new();
	struct ticks t = {0, 0, NULL};

	(void)state;
	t.ev = loop_timer_new(b, false, on_tick, &t);
	loop_timer_add(t.ev, 1);
	loop_timer_stop(t.ev);
	event_base_dispatch(b);
	assert_int_equal(t.n, 0);
	loop_timer_free(t.ev);
	event_base_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_close_unheld_frees_now),
	    cmocka_unit_test(test_close_in_handler_frees_at_leave),
	    cmocka_unit_test(test_nested_enters),
	    cmocka_unit_test(test_leave_without_close_keeps),
	    cmocka_unit_test(test_timer_once),
	    cmocka_unit_test(test_timer_repeat),
	    cmocka_unit_test(test_timer_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
