/*
 * Unit tests for the bounce owners' digest entries in the spool (schema 9,
 * spool/spool_bdigest.c): added by spool_apply with the outcome of their
 * message (none for a message that is gone), read per owner in owner
 * order with a line limit ("more"), capped at SPOOL_BDIGEST_MAX rows with
 * the rest only counted, and removed by spool_bdigest_done up to what was
 * read, so entries that arrive meanwhile stay for the next digest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include <sqlite3.h>

#include "spool/spool.h"
#include "spoolfx.h"

struct fx {
	char base[64];
	char dir[96];
	char db[128];
	struct spool *sp;
	int64_t msg_id;
};

static int
setup(void **state)
{
	static const char *const rcpts[] = {"r@example.test"};
	struct fx *fx = calloc(1, sizeof *fx);
	struct spool_msg_in in = {.sender = "scanner@example.test", .rcpts = rcpts, .nrcpts = 1,
	                          .body = "Subject: x\r\n\r\nx\r\n", .body_len = 17,
	                          .received = 1700000000, .client_ip = "192.0.2.7"};
	struct spool_msg_in *p = &in;
	char err[256] = "";
	int full = 0;

	assert_non_null(fx);
	assert_int_equal(tu_spool_dirs("test_bdigest", fx->base, sizeof fx->base, fx->dir,
	                               sizeof fx->dir),
	                 0);
	snprintf(fx->db, sizeof fx->db, "%s/spool.db", fx->dir);
	fx->sp = tu_spool_open(fx->dir);
	snprintf(in.qid, sizeof in.qid, "00000000000000aa");
	if (spool_insert_batch(fx->sp, &p, 1, &full, err, sizeof err) != 0)
		fail_msg("insert: %s", err);
	fx->msg_id = in.id;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	tu_spool_close_rm(fx->sp, fx->base);
	free(fx);
	return 0;
}

/* n entries for owner, rcpt "r<first + i>@sink.test", through a results-only apply. */
static int
add(struct fx *fx, int64_t msg_id, const char *owner, size_t first, size_t n)
{
	struct spool_bdigest *v = calloc(n, sizeof *v);
	struct spool_update u = {.msg_id = msg_id, .results_only = 1, .digest = v, .ndigest = n};
	char err[256] = "";
	int full = 0, rc;

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i].when = 1700000000 + (time_t)(first + i);
		snprintf(v[i].owner, sizeof v[i].owner, "%s", owner);
		snprintf(v[i].qid, sizeof v[i].qid, "00000000000000aa");
		snprintf(v[i].sender, sizeof v[i].sender, "scanner@example.test");
		snprintf(v[i].rcpt, sizeof v[i].rcpt, "r%zu@sink.test", first + i);
		snprintf(v[i].status, sizeof v[i].status, "5.1.1");
		snprintf(v[i].reason, sizeof v[i].reason, "550 5.1.1 no such user");
	}
	rc = spool_apply(fx->sp, &u, 1, &full, err, sizeof err);
	free(v);
	return rc;
}

static void
load(struct fx *fx, const char *after, size_t max, struct spool_bdigest_set *s)
{
	char err[256] = "";

	if (spool_bdigest_load(fx->sp, after, max, s, err, sizeof err) != 0)
		fail_msg("load: %s", err);
}

static void
done(struct fx *fx, const struct spool_bdigest_set *s)
{
	char err[256] = "";

	if (spool_bdigest_done(fx->sp, s, err, sizeof err) != 0)
		fail_msg("done: %s", err);
}

static void
test_owners_in_order_and_taken(void **state)
{
	struct fx *fx = *state;
	struct spool_bdigest_set s;

	load(fx, "", 10, &s);
	assert_string_equal(s.owner, ""); /* nothing waits */
	spool_bdigest_set_free(&s);
	assert_int_equal(add(fx, fx->msg_id, "b@owner.test", 0, 1), 0);
	assert_int_equal(add(fx, fx->msg_id, "a@owner.test", 1, 3), 0);
	load(fx, "", 2, &s);
	assert_string_equal(s.owner, "a@owner.test");
	assert_int_equal(s.n, 2);
	assert_int_equal(s.more, 1); /* past the line limit: counted */
	assert_string_equal(s.v[0].rcpt, "r1@sink.test");
	assert_string_equal(s.v[1].rcpt, "r2@sink.test");
	assert_string_equal(s.v[0].reason, "550 5.1.1 no such user");
	assert_int_equal(s.v[0].when, 1700000001);
	/* one more arrives after the read: it stays for the next digest */
	assert_int_equal(add(fx, fx->msg_id, "a@owner.test", 9, 1), 0);
	done(fx, &s);
	spool_bdigest_set_free(&s);
	load(fx, "", 10, &s);
	assert_string_equal(s.owner, "a@owner.test");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].rcpt, "r9@sink.test");
	spool_bdigest_set_free(&s);
	load(fx, "a@owner.test", 10, &s); /* the run goes on after a */
	assert_string_equal(s.owner, "b@owner.test");
	assert_int_equal(s.n, 1);
	spool_bdigest_set_free(&s);
}

static void
test_gone_message_adds_nothing(void **state)
{
	struct fx *fx = *state;

	/* an operator deleted the message: its outcome and its entries are not recorded */
	assert_int_equal(add(fx, fx->msg_id + 100, "a@owner.test", 0, 2), 0);
	assert_int_equal(tu_db_int(fx->db, "SELECT count(*) FROM bounce_digest"), 0);
}

static void
test_cap_counts_the_rest(void **state)
{
	struct fx *fx = *state;
	struct spool_bdigest_set s;
	size_t i;

	for (i = 0; i < SPOOL_BDIGEST_MAX; i += 2000)
		assert_int_equal(add(fx, fx->msg_id, "a@owner.test", i, 2000), 0);
	assert_int_equal(add(fx, fx->msg_id, "a@owner.test", i, 3), 0);
	assert_int_equal(add(fx, fx->msg_id, "b@owner.test", i + 3, 2), 0);
	assert_int_equal(tu_db_int(fx->db, "SELECT count(*) FROM bounce_digest"), SPOOL_BDIGEST_MAX);
	assert_int_equal(tu_db_int(fx->db, "SELECT n FROM bounce_digest_dropped WHERE owner ="
	                                   " 'a@owner.test'"),
	                 3);
	load(fx, "", 1000, &s);
	assert_string_equal(s.owner, "a@owner.test");
	assert_int_equal(s.n, 1000);
	assert_int_equal(s.more, SPOOL_BDIGEST_MAX - 1000 + 3);
	done(fx, &s);
	spool_bdigest_set_free(&s);
	/* b has only a dropped count: still an owner with something to report */
	load(fx, "", 1000, &s);
	assert_string_equal(s.owner, "b@owner.test");
	assert_int_equal(s.n, 0);
	assert_int_equal(s.more, 2);
	done(fx, &s);
	spool_bdigest_set_free(&s);
	load(fx, "", 1000, &s);
	assert_string_equal(s.owner, "");
	spool_bdigest_set_free(&s);
	assert_int_equal(tu_db_int(fx->db, "SELECT count(*) FROM bounce_digest_dropped"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_owners_in_order_and_taken),
	    T(test_gone_message_adds_nothing),
	    T(test_cap_counts_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
