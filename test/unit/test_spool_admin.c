/*
 * Unit tests for spool/spool_admin: list, show, find, summary per domain
 * and age, the ids of one domain, hold / release (and that
 * spool_load_pending leaves held messages out), delete, and the
 * "no such message QID" errors, the bulk selection and batch of spool_qsel.c.
 * Each test gets its own mkdtemp directory.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "testutil.h"

#include "spool/spool.h"

struct fx {
	char base[64];
	char dir[96];
	struct spool *sp;
	int64_t id[3];
};

static void
insert(struct fx *fx, int i, const char *qid, const char *sender, const char *const *rcpts,
       size_t n, time_t received)
{
	static const char body[] = "Subject: t\r\n\r\nbody\r\n";
	struct spool_msg_in m;
	struct spool_msg_in *v[1] = {&m};
	char err[256] = "";

	memset(&m, 0, sizeof m);
	snprintf(m.qid, sizeof m.qid, "%s", qid);
	m.sender = sender;
	m.rcpts = rcpts;
	m.nrcpts = n;
	m.body = body;
	m.body_len = sizeof body - 1;
	m.received = received;
	m.client_ip = "127.0.0.1";
	if (spool_insert_batch(fx->sp, v, 1, NULL, err, sizeof err) != 0)
		fail_msg("insert: %s", err);
	fx->id[i] = m.id;
}

static int
setup(void **state)
{
	static const char *const r0[] = {"a@one.example", "b@Two.example"};
	static const char *const r1[] = {"c@two.example"};
	static const char *const r2[] = {"d@three.example"};
	struct fx *fx = calloc(1, sizeof *fx);
	char err[256] = "";
	time_t now = time(NULL);

	snprintf(fx->base, sizeof fx->base, "/tmp/test_spool_admin.XXXXXX");
	if (mkdtemp(fx->base) == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "%s/spool", fx->base);
	if (spool_open(&fx->sp, fx->dir, err, sizeof err) != 0) {
		fprintf(stderr, "spool_open: %s\n", err);
		return -1;
	}
	insert(fx, 0, "00000000000000a0", "s@x.example", r0, 2, now - 7200);
	insert(fx, 1, "00000000000000a1", "", r1, 1, now - 60);
	insert(fx, 2, "00000000000000a2", "s@x.example", r2, 1, now - 3 * 86400);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	spool_close(fx->sp);
	tu_rmtree(fx->base);
	free(fx);
	return 0;
}

static void
test_list_and_show(void **state)
{
	struct fx *fx = *state;
	struct spool_qmsg *v = NULL, *m = NULL;
	size_t n = 0;
	char err[256] = "";

	assert_int_equal(spool_queue_list(fx->sp, 2, 1, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].qid, "00000000000000a0");
	assert_int_equal(v[0].npending, 2);
	assert_int_equal(v[0].nrcpts, 1); /* max_rcpts */
	assert_string_equal(v[0].rcpts[0].address, "a@one.example");
	assert_int_equal(v[0].state, SPOOL_MSG_QUEUED);
	assert_null(v[0].last_reply);
	assert_string_equal(v[1].sender, "");
	spool_qmsgs_free(v, n);

	assert_int_equal(spool_queue_show(fx->sp, "00000000000000a0", &m, err, sizeof err), 0);
	assert_int_equal(m->nrcpts, 2);
	assert_string_equal(m->rcpts[1].address, "b@Two.example");
	assert_string_equal(m->client_ip, "127.0.0.1");
	spool_qmsgs_free(m, 1);

	assert_int_equal(spool_queue_show(fx->sp, "00000000000000ff", &m, err, sizeof err), -1);
	assert_string_equal(err, "no such message 00000000000000ff");
	assert_null(m);
}

static void
test_summary(void **state)
{
	struct fx *fx = *state;
	struct spool_qsummary s;
	char err[256] = "";

	assert_int_equal(spool_queue_summary(fx->sp, time(NULL), 10, &s, err, sizeof err), 0);
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.rcpts, 4);
	assert_int_equal(s.ndomains_total, 3);
	/* two.example: 2 messages (domain case folded), first */
	assert_string_equal(s.domains[0].domain, "two.example");
	assert_int_equal(s.domains[0].messages, 2);
	assert_int_equal(s.age_messages[0], 1); /* < 5 min */
	assert_int_equal(s.age_messages[1], 0);
	assert_int_equal(s.age_messages[2], 1); /* < 1 day */
	assert_int_equal(s.age_messages[3], 1);
	spool_qsummary_free(&s);
	assert_int_equal(spool_queue_summary(fx->sp, time(NULL), 1, &s, err, sizeof err), 0);
	assert_int_equal(s.ndomains, 1);
	assert_int_equal(s.ndomains_total, 3);
	spool_qsummary_free(&s);
}

static void
test_hold_release_pending(void **state)
{
	struct fx *fx = *state;
	struct spool_due *due = NULL;
	int64_t id = 0, *ids = NULL;
	size_t n = 0;
	int st = -1;
	char err[256] = "";

	assert_int_equal(spool_queue_set_state(fx->sp, "00000000000000a1", SPOOL_MSG_HELD, 0, &id,
	                                       err, sizeof err),
	                 0);
	assert_int_equal(id, fx->id[1]);
	assert_int_equal(spool_queue_find(fx->sp, "00000000000000a1", &id, &st, err, sizeof err),
	                 0);
	assert_int_equal(st, SPOOL_MSG_HELD);
	assert_int_equal(spool_load_pending(fx->sp, &due, &n, err, sizeof err), 0);
	assert_int_equal(n, 2); /* the held one is not scheduled */
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(due[i].id, fx->id[1]);
	free(due);
	/* flush two.example: only the queued message */
	assert_int_equal(spool_queue_domain_ids(fx->sp, "TWO.example", &ids, &n, err, sizeof err),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], fx->id[0]);
	free(ids);

	assert_int_equal(spool_queue_set_state(fx->sp, "00000000000000a1", SPOOL_MSG_QUEUED, 12345,
	                                       &id, err, sizeof err),
	                 0);
	assert_int_equal(spool_load_pending(fx->sp, &due, &n, err, sizeof err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(due[1].next_try, 12345);
	free(due);
	assert_int_equal(spool_queue_set_state(fx->sp, "00000000000000ff", SPOOL_MSG_HELD, 0, &id,
	                                       err, sizeof err),
	                 -1);
	assert_string_equal(err, "no such message 00000000000000ff");
}

static void
test_delete(void **state)
{
	struct fx *fx = *state;
	struct spool_qmsg *v = NULL;
	int64_t id = 0;
	size_t n = 0;
	char err[256] = "";

	assert_int_equal(spool_queue_delete(fx->sp, "00000000000000a2", &id, err, sizeof err), 0);
	assert_int_equal(id, fx->id[2]);
	assert_int_equal(spool_queue_list(fx->sp, 100, 5, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	spool_qmsgs_free(v, n);
	assert_int_equal(spool_queue_delete(fx->sp, "00000000000000a2", &id, err, sizeof err), -1);
	assert_string_equal(err, "no such message 00000000000000a2");
}

/* spool_qsel.c (issue 16): which messages a selection names, then a batch change. */
static void
test_select_and_batch(void **state)
{
	static const char *const two[] = {"00000000000000a2", "00000000000000a0", "0000000000000bad"};
	static const struct {
		const char *label;
		struct spool_qsel sel;
		size_t n;
		uint64_t first;
	} cases[] = {
	    {"ALL", {NULL, 0, NULL, NULL, NULL, -1}, 3, 0xa0},
	    {"ALL queued", {NULL, 0, NULL, NULL, NULL, SPOOL_MSG_QUEUED}, 3, 0xa0},
	    {"ALL held", {NULL, 0, NULL, NULL, NULL, SPOOL_MSG_HELD}, 0, 0},
	    {"from, any case", {NULL, 0, "S@X.EXAMPLE", NULL, NULL, -1}, 2, 0xa0},
	    {"from the null sender", {NULL, 0, "", NULL, NULL, -1}, 1, 0xa1},
	    {"to, any case", {NULL, 0, NULL, "B@two.example", NULL, -1}, 1, 0xa0},
	    {"domain", {NULL, 0, NULL, NULL, "two.example", -1}, 2, 0xa0},
	    {"domain and from", {NULL, 0, "", NULL, "two.example", -1}, 1, 0xa1},
	    {"to and another domain", {NULL, 0, NULL, "c@two.example", "one.example", -1}, 0, 0},
	    {"ids, one unknown", {two + 1, 2, NULL, NULL, NULL, -1}, 1, 0xa0},
	};
	struct fx *fx = *state;
	struct spool_qhit *h = NULL;
	size_t n = 0, i;
	char err[256] = "";
	int64_t ids[2];
	unsigned char done[2] = {0, 0};

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (spool_queue_select(fx->sp, &cases[i].sel, &h, &n, err, sizeof err) != 0)
			fail_msg("%s: %s", cases[i].label, err);
		if (n != cases[i].n || (n && h[0].qid != cases[i].first))
			fail_msg("%s: %zu hits, first %llx", cases[i].label, n,
			         n ? (unsigned long long)h[0].qid : 0ULL);
		free(h);
		h = NULL;
	}
	/* hold two, one of them gone meanwhile: done says which */
	ids[0] = fx->id[2];
	ids[1] = 999999;
	assert_int_equal(spool_queue_batch(fx->sp, SPOOL_QB_HOLD, ids, 2, 0, done, err, sizeof err), 0);
	assert_int_equal(done[0], 1);
	assert_int_equal(done[1], 0);
	struct spool_qsel held = {NULL, 0, NULL, NULL, NULL, SPOOL_MSG_HELD};
	assert_int_equal(spool_queue_select(fx->sp, &held, &h, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].id, fx->id[2]);
	assert_int_equal(h[0].state, SPOOL_MSG_HELD);
	free(h);
	assert_int_equal(spool_queue_batch(fx->sp, SPOOL_QB_DELETE, ids, 1, 0, done, err, sizeof err),
	                 0);
	assert_int_equal(spool_queue_select(fx->sp, &held, &h, &n, err, sizeof err), 0);
	assert_int_equal(n, 0);
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_list_and_show, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hold_release_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_select_and_batch, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
