/*
 * Unit tests for mta/smtpd/ratelimit.c (rate_limit rules, issue 15): each
 * matching rule counts with its own counter, a refusal counts nowhere, the
 * window frees a counter, "*" counts per sender, a changed rule is a new
 * counter, and past RATELIMIT_KEYS_MAX counters the oldest is dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/smtpd/ratelimit.h"

#define T0 1000000

static struct rate_limit_conf rules[4];
static struct config cfg;
static struct sockaddr_in sa;

/* rules[i] = WHO MSGS RCPTS, chained in order; who: "*", "user:NAME" or a CIDR. */
static void
rule(int i, const char *who, unsigned msgs, unsigned rcpts)
{
	char err[128];
	struct rate_limit_conf *r = &rules[i];

	memset(r, 0, sizeof(*r));
	if (strcmp(who, "*") == 0) {
		r->who.kind = WHO_ALL;
	} else if (strncmp(who, "user:", 5) == 0) {
		r->who.kind = WHO_USER;
		r->who.name = (char *)who + 5;
	} else {
		r->who.kind = WHO_CIDR;
		assert_int_equal(cidr_parse(&r->who.net, who, err, sizeof(err)), 0);
	}
	r->messages = msgs;
	r->recipients = rcpts;
	r->line = 10 + i;
	if (i > 0)
		rules[i - 1].next = r;
	else
		cfg.rate_limits = r;
}

static struct ratelimit_client
client(const char *user, const char *ip)
{
	struct ratelimit_client cl = {user, "main", (const struct sockaddr *)&sa, ip};

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sa.sin_addr);
	return cl;
}

static int
setup(void **state)
{
	(void)state;
	ratelimit_reset();
	memset(&cfg, 0, sizeof(cfg));
	return 0;
}

static void
test_user_and_cidr_both_count(void **state)
{
	struct ratelimit_hit hit;
	struct ratelimit_client cl = client("scanner", "192.0.2.5");

	(void)state;
	rule(0, "user:scanner", 10, 0);
	rule(1, "192.0.2.0/28", 2, 0);
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0, &hit), 0);
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 1, &hit), 0);
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 2, &hit), -1);
	assert_string_equal(hit.rule, "192.0.2.0/28 2 0");
	assert_string_equal(hit.who, "192.0.2.0/28");
	assert_string_equal(hit.what, "messages");
	assert_int_equal(hit.limit, 2);
	assert_int_equal(hit.line, 11);
	assert_int_equal(hit.free_at, T0 + 3600);
	/* another address of the network shares the counter; recipients are not limited */
	cl = client(NULL, "192.0.2.6");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 3, &hit), -1);
	assert_int_equal(ratelimit_take(&cfg, &cl, 0, 50, T0 + 3, &hit), 0);
	/* the refusals counted nowhere: the user rule holds 2 of its 10 */
	cl = client("scanner", "198.51.100.1");
	for (int i = 0; i < 8; i++)
		assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 4, &hit), 0);
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 4, &hit), -1);
	assert_string_equal(hit.rule, "user:scanner 10 0");
	/* the window moves on */
	cl = client(NULL, "192.0.2.6");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 3600, &hit), 0);
}

static void
test_recipients_and_star_per_sender(void **state)
{
	struct ratelimit_hit hit;
	struct ratelimit_client a = client("a", "127.0.0.1"), b;

	(void)state;
	rule(0, "*", 0, 3);
	assert_int_equal(ratelimit_take(&cfg, &a, 0, 3, T0, &hit), 0);
	assert_int_equal(ratelimit_take(&cfg, &a, 0, 1, T0, &hit), -1);
	assert_string_equal(hit.what, "recipients");
	assert_string_equal(hit.key, "* 0 3 user:a");
	assert_int_equal(ratelimit_take(&cfg, &a, 1, 0, T0, &hit), 0); /* messages: no limit */
	b = client(NULL, "127.0.0.2");
	assert_int_equal(ratelimit_take(&cfg, &b, 0, 3, T0, &hit), 0);
	assert_int_equal(ratelimit_take(&cfg, &b, 0, 1, T0, &hit), -1);
	assert_string_equal(hit.key, "* 0 3 ip:127.0.0.2");
	/* a changed rule (SIGHUP) is a new counter; the same rule keeps its own */
	rule(0, "*", 0, 4);
	assert_int_equal(ratelimit_take(&cfg, &b, 0, 4, T0, &hit), 0);
	rule(0, "*", 0, 3);
	assert_int_equal(ratelimit_take(&cfg, &b, 0, 1, T0, &hit), -1);
}

static void
test_table_full_drops_the_oldest(void **state)
{
	struct ratelimit_hit hit;
	struct ratelimit_client cl;
	char ip[32];
	int i;

	(void)state;
	rule(0, "*", 1, 0);
	for (i = 0; i < RATELIMIT_KEYS_MAX; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		cl = client(NULL, ip);
		/* all inside one window; ties go to the first slot */
		assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + i / 4, &hit), 0);
	}
	cl = client(NULL, "10.0.0.1");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + i / 4, &hit), -1);
	/* one more sender: the oldest counter (10.0.0.1's) makes room */
	cl = client(NULL, "172.16.0.1");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + i / 4, &hit), 0);
	cl = client(NULL, "10.0.0.1");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + i / 4, &hit), 0);
	/* the others keep theirs */
	cl = client(NULL, "10.0.5.1");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + i / 4, &hit), -1);
}

/* A full table drops per-address counters before a shared CIDR (or user:) one. */
static void
test_table_full_keeps_shared_counters(void **state)
{
	struct ratelimit_hit hit;
	struct ratelimit_client cl;
	char ip[32];
	int i;

	(void)state;
	rule(0, "192.0.2.0/24", 1, 0);
	rule(1, "*", 1, 0);
	/* the oldest two: the network's shared counter and 192.0.2.5's own */
	cl = client(NULL, "192.0.2.5");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0, &hit), 0);
	for (i = 2; i < RATELIMIT_KEYS_MAX; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		cl = client(NULL, ip);
		assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 1, &hit), 0);
	}
	/* the table is full: a new sender evicts 192.0.2.5's counter, not the network's */
	cl = client(NULL, "172.16.0.1");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 2, &hit), 0);
	cl = client(NULL, "192.0.2.9");
	assert_int_equal(ratelimit_take(&cfg, &cl, 1, 0, T0 + 2, &hit), -1);
	assert_string_equal(hit.who, "192.0.2.0/24");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_user_and_cidr_both_count, setup),
	    cmocka_unit_test_setup(test_recipients_and_star_per_sender, setup),
	    cmocka_unit_test_setup(test_table_full_drops_the_oldest, setup),
	    cmocka_unit_test_setup(test_table_full_keeps_shared_counters, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
