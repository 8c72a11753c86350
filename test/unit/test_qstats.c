/*
 * qstats (mta/delivery/qstats.c): the daemon's in-memory queue counts.
 * Table-driven cases for the domain rule and the age buckets, then a
 * random walk of adds, recipient outcomes, holds and removes checked after
 * every step against a brute-force count of the same messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mta/delivery/sched.h"
#include "spool/spool.h"

static const struct spool_qdomain *
dom(const struct spool_qsummary *s, const char *name)
{
	for (size_t i = 0; i < s->ndomains; i++)
		if (strcmp(s->domains[i].domain, name) == 0)
			return &s->domains[i];
	return NULL;
}

static void
test_domain_rule(void **state)
{
	/* label, address, the domain it counts under (as SQL's recipients.domain) */
	static const struct {
		const char *label, *address, *domain;
	} cases[] = {
	    {"plain", "a@example.com", "example.com"},
	    {"upper case folds", "B@EXAMPLE.Com", "example.com"},
	    {"last @ wins", "\"x@y\"@z.test", "z.test"},
	    {"no @: all of it", "Postmaster", "postmaster"},
	    {"non-ASCII kept", "u@\xc3\x89t\xc3\xa9.test", "\xc3\x89t\xc3\xa9.test"},
	};
	struct qstats *q = qstats_new();
	struct spool_qsummary s;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r[] = {cases[i].address};
		qstats_add(q, (int64_t)i + 1, 1000, false, r, 1);
	}
	qstats_summary(q, 1000, 100, &s);
	assert_int_equal(s.messages, 5);
	assert_int_equal(s.ndomains_total, 4);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (dom(&s, cases[i].domain) == NULL)
			fail_msg("%s: no domain %s", cases[i].label, cases[i].domain);
	}
	assert_int_equal(dom(&s, "example.com")->messages, 2);
	assert_string_equal(s.domains[0].domain, "example.com"); /* most messages first */
	spool_qsummary_free(&s);
	qstats_free(q);
}

static void
test_ages_and_order(void **state)
{
	/* received relative to now = 100000; buckets < 5m, < 1h, < 1d, older */
	static const struct {
		int64_t age;
		int bucket;
	} cases[] = {{0, 0}, {299, 0}, {300, 1}, {3599, 1}, {3600, 2}, {86399, 2}, {86400, 3}, {-5, 0}};
	const time_t now = 100000;
	struct qstats *q = qstats_new();
	struct spool_qsummary s;
	size_t want[SPOOL_AGE_BUCKETS] = {0};
	const char *r[] = {"a@b.test"};

	(void)state;
	/* added newest first: the per-second counts must still keep the oldest right */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		qstats_add(q, (int64_t)i + 1, now - cases[i].age, false, r, 1);
		want[cases[i].bucket]++;
	}
	qstats_summary(q, now, 100, &s);
	for (int b = 0; b < SPOOL_AGE_BUCKETS; b++)
		assert_int_equal(s.age_messages[b], want[b]);
	assert_int_equal(s.age_oldest[3], now - 86400);
	assert_int_equal(s.age_oldest[2], now - 86399);
	assert_int_equal(s.oldest, now - 86400);
	assert_int_equal(dom(&s, "b.test")->oldest, now - 86400);
	spool_qsummary_free(&s);
	qstats_remove(q, 7); /* the oldest leaves: the next one is the oldest */
	qstats_summary(q, now, 1, &s);
	assert_int_equal(s.oldest, now - 86399);
	assert_int_equal(s.domains[0].oldest, now - 86399);
	assert_int_equal(s.age_messages[3], 0);
	spool_qsummary_free(&s);
	qstats_free(q);
}

static void
same_summary(const struct qstats *a, const struct qstats *b)
{
	struct spool_qsummary x, y;

	qstats_summary(a, 5000, 100, &x);
	qstats_summary(b, 5000, 100, &y);
	assert_int_equal(x.messages, y.messages);
	assert_int_equal(x.held, y.held);
	assert_int_equal(x.rcpts, y.rcpts);
	assert_int_equal(x.oldest, y.oldest);
	assert_int_equal(x.ndomains_total, y.ndomains_total);
	for (size_t i = 0; i < x.ndomains; i++) {
		assert_string_equal(x.domains[i].domain, y.domains[i].domain);
		assert_int_equal(x.domains[i].messages, y.domains[i].messages);
		assert_int_equal(x.domains[i].rcpts, y.domains[i].rcpts);
		assert_int_equal(x.domains[i].oldest, y.domains[i].oldest);
	}
	for (int i = 0; i < SPOOL_AGE_BUCKETS; i++)
		assert_int_equal(x.age_messages[i], y.age_messages[i]);
	spool_qsummary_free(&x);
	spool_qsummary_free(&y);
}

/* The start-up load (messages, then recipients per domain in id order) counts as adds do. */
static void
test_load_matches_add(void **state)
{
	static const char *const doms[] = {"a.test", "b.test", "c.test"};
	struct qstats *load = qstats_new(), *add = qstats_new();
	char buf[3][32];
	const char *r[3];

	(void)state;
	for (int64_t id = 1; id <= 3000; id += 1 + id % 3) { /* gaps, as after deletes */
		qstats_load_row(load, id, 1000 + id, id % 7 == 0, NULL);
		for (int k = 0; k < 3; k++) {
			snprintf(buf[k], sizeof(buf[k]), "u%d@%s", k, doms[(id + k * (id % 2)) % 3]);
			r[k] = buf[k];
		}
		qstats_add(add, id, 1000 + id, id % 7 == 0, r, (size_t)(id % 3) + 1);
	}
	qstats_load_row(load, 99999, 1, 0, "a.test"); /* a recipient without its message */
	for (int d = 0; d < 3; d++)
		for (int64_t id = 1; id <= 3000; id += 1 + id % 3)
			for (int k = 0; k < (int)(id % 3) + 1; k++)
				if ((id + k * (id % 2)) % 3 == d)
					qstats_load_row(load, id, 0, 0, doms[d]);
	qstats_load_done(load);
	same_summary(load, add);
	qstats_remove(load, 4);
	qstats_remove(add, 4);
	same_summary(load, add);
	qstats_free(load);
	qstats_free(add);
}

/* ---- random walk against a brute-force model ---------------------------------------------- */

#define NMSG 300
#define NRC 3

struct model {
	bool live, held;
	time_t received;
	int rcpt[NRC]; /* index into addrs */
	bool pending[NRC];
};

/* two spellings of x.test: the domain rule folds case */
static const char *const addrs[] = {"a@x.test", "b@X.test", "c@y.test", "d@z.test", "e@y.test"};
static const int addr_dom[] = {0, 0, 1, 2, 1};
static const char *const names[] = {"x.test", "y.test", "z.test"};

static void
expect_domain(const struct model *m, const struct spool_qsummary *s, int d)
{
	const struct spool_qdomain *x = dom(s, names[d]);
	size_t dm = 0, dr = 0;
	time_t oldest = 0;

	for (int i = 0; i < NMSG; i++) {
		size_t n = 0;
		for (int k = 0; k < NRC; k++)
			n += m[i].live && m[i].pending[k] && addr_dom[m[i].rcpt[k]] == d;
		dm += n > 0;
		dr += n;
		if (n > 0 && (oldest == 0 || m[i].received < oldest))
			oldest = m[i].received;
	}
	assert_int_equal(x ? x->messages : 0, dm);
	assert_int_equal(x ? x->rcpts : 0, dr);
	if (x)
		assert_int_equal(x->oldest, oldest);
}

static void
expect(const struct model *m, const struct spool_qsummary *s)
{
	size_t messages = 0, held = 0, rcpts = 0;

	for (int i = 0; i < NMSG; i++) {
		messages += m[i].live;
		held += m[i].live && m[i].held;
		for (int k = 0; k < NRC; k++)
			rcpts += m[i].live && m[i].pending[k];
	}
	assert_int_equal(s->messages, messages);
	assert_int_equal(s->held, held);
	assert_int_equal(s->rcpts, rcpts);
	for (int d = 0; d < 3; d++)
		expect_domain(m, s, d);
}

static void
step(struct qstats *q, struct model *m, int i, unsigned r)
{
	if (!m[i].live) {
		m[i].live = true;
		m[i].held = false;
		const char *r3[NRC];
		m[i].received = 1000 + (time_t)(r % 500);
		for (int k = 0; k < NRC; k++) {
			m[i].rcpt[k] = (int)((r >> (4 + k * 3)) % 5);
			m[i].pending[k] = true;
			r3[k] = addrs[m[i].rcpt[k]];
		}
		qstats_add(q, i + 1, m[i].received, false, r3, NRC);
		return;
	}
	switch (r % 4) {
	case 0:
		m[i].live = false;
		qstats_remove(q, i + 1);
		break;
	case 1:
		m[i].held = !m[i].held;
		qstats_set_held(q, i + 1, m[i].held);
		break;
	default: {
		int k = (int)(r >> 8) % NRC;
		bool any = false;
		if (!m[i].pending[k])
			break;
		m[i].pending[k] = false;
		qstats_rcpt_done(q, i + 1, addrs[m[i].rcpt[k]]);
		for (int j = 0; j < NRC; j++)
			any |= m[i].pending[j];
		m[i].live = any; /* spool_apply deletes it with its last pending recipient */
	}
	}
}

static void
test_random_walk(void **state)
{
	static struct model m[NMSG];
	struct qstats *q = qstats_new();
	struct spool_qsummary s;
	unsigned seed = 12345;

	(void)state;
	memset(m, 0, sizeof(m));
	for (int n = 0; n < 20000; n++) {
		seed = seed * 1103515245u + 12345u;
		step(q, m, (int)((seed >> 16) % NMSG), seed >> 3);
		if (n % 97 == 0) {
			qstats_summary(q, 2000, 100, &s);
			expect(m, &s);
			spool_qsummary_free(&s);
		}
	}
	qstats_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_domain_rule),
	    cmocka_unit_test(test_ages_and_order),
	    cmocka_unit_test(test_load_matches_add),
	    cmocka_unit_test(test_random_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
