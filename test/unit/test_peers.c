/*
 * Unit tests for mta/smtpd/peers.c, the one per-address table: session caps
 * per client address and failed-AUTH throttling (IPv6 per /64) in the same
 * entries. Scenarios are tables of steps (operation, address, user, time,
 * expected); each runs on a fresh table and reports every wrong step, then
 * fails once. A separate test fills the AUTH part to PEERS_AUTH_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mta/smtpd/peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "mta/server.h"
#include "mta/shared/cidr.h"
#include "mta/shared/config.h"

#define T0 1000000 /* the scenarios' time 0 */
#define MAX_FAILURES 3
#define BLOCK_TIME 60

enum op {
	END,
	TAKE,    /* peers_take(arg = cap): want 0 / -1 */
	RELEASE, /* peers_release */
	FAIL,    /* authfail_begin + authfail_record: want the delay in ms */
	LOGIN,   /* authfail_begin + authfail_clear */
	BEGIN,   /* authfail_begin alone: a password check still running */
	BLOCKED, /* authfail_blocked: want seconds (0: not blocked) */
	REFUSED, /* authfail_refused: want the count to log now */
};

struct step {
	enum op op;
	const char *addr;
	const char *user;
	int t; /* seconds after T0 */
	unsigned arg;
	long want;
};

struct scenario {
	const char *label;
	struct step steps[16];
};

static const struct scenario scenarios[] = {
    {"sessions are capped per address",
     {{TAKE, "192.0.2.1", NULL, 0, 2, 0},
      {TAKE, "192.0.2.1", NULL, 0, 2, 0},
      {TAKE, "192.0.2.1", NULL, 0, 2, -1},
      {TAKE, "192.0.2.2", NULL, 0, 2, 0},
      {RELEASE, "192.0.2.1", NULL, 0, 0, 0},
      {TAKE, "192.0.2.1", NULL, 0, 2, 0},
      {TAKE, "192.0.2.1", NULL, 0, 2, -1}}},
    {"a cap of 0 refuses and leaves nothing behind",
     {{TAKE, "192.0.2.9", NULL, 0, 0, -1},
      {RELEASE, "192.0.2.9", NULL, 0, 0, 0},
      {TAKE, "192.0.2.9", NULL, 0, 1, 0},
      {TAKE, "192.0.2.9", NULL, 0, 1, -1}}},
    {"IPv4-mapped IPv6 is the IPv4 address",
     {{TAKE, "192.0.2.1", NULL, 0, 1, 0},
      {TAKE, "::ffff:192.0.2.1", NULL, 0, 1, -1},
      {FAIL, "::ffff:192.0.2.1", "u", 0, 0, 250},
      {FAIL, "::ffff:192.0.2.1", "u", 0, 0, 500},
      {FAIL, "::ffff:192.0.2.1", "u", 0, 0, 1000},
      {BLOCKED, "192.0.2.1", NULL, 0, 0, BLOCK_TIME},
      {BLOCKED, "192.0.2.2", NULL, 0, 0, 0}}},
    {"IPv6: sessions per address, AUTH failures per /64",
     {{TAKE, "2001:db8::1", NULL, 0, 1, 0},
      {TAKE, "2001:db8::2", NULL, 0, 1, 0},
      {TAKE, "2001:db8::2", NULL, 0, 1, -1},
      {FAIL, "2001:db8::1", "a", 0, 0, 250},
      {FAIL, "2001:db8::2", "b", 0, 0, 500},
      {FAIL, "2001:db8::3", "c", 0, 0, 1000},
      {BLOCKED, "2001:db8::ffff", NULL, 1, 0, BLOCK_TIME - 1},
      {BLOCKED, "2001:db8:0:1::1", NULL, 1, 0, 0}}},
    {"one entry holds a session count and its /64's AUTH state",
     {{TAKE, "2001:db8::", NULL, 0, 1, 0},
      {FAIL, "2001:db8::", "u", 0, 0, 250},
      {FAIL, "2001:db8::", "u", 0, 0, 500},
      {FAIL, "2001:db8::", "u", 0, 0, 1000},
      {RELEASE, "2001:db8::", NULL, 1, 0, 0},
      {BLOCKED, "2001:db8::", NULL, 1, 0, BLOCK_TIME - 1},
      {TAKE, "2001:db8::", NULL, 1, 1, 0},
      {BLOCKED, "2001:db8::", NULL, BLOCK_TIME, 0, 0},
      {TAKE, "2001:db8::", NULL, BLOCK_TIME, 1, -1},
      {FAIL, "2001:db8::", "u", BLOCK_TIME, 0, 250}}},
    {"delays double up to 4 s",
     {{FAIL, "198.51.100.1", "u", 0, 0, 250},
      {FAIL, "198.51.100.1", "u", 0, 0, 500},
      {FAIL, "198.51.100.1", "u", 0, 0, 1000},
      {FAIL, "198.51.100.1", "u", 0, 0, 2000},
      {FAIL, "198.51.100.1", "u", 0, 0, 4000},
      {FAIL, "198.51.100.1", "u", 0, 0, 4000}}},
    {"a login forgives its own user only",
     {{FAIL, "198.51.100.2", "u1", 0, 0, 250},
      {FAIL, "198.51.100.2", "u2", 0, 0, 500},
      {LOGIN, "198.51.100.2", "u1", 0, 0, 0},
      {BLOCKED, "198.51.100.2", NULL, 0, 0, 0},
      {FAIL, "198.51.100.2", "u3", 0, 0, 500},
      {FAIL, "198.51.100.2", "u1", 0, 0, 1000},
      {BLOCKED, "198.51.100.2", NULL, 0, 0, BLOCK_TIME}}},
    {"failures age out after auth_block_time",
     {{FAIL, "198.51.100.3", "u", 0, 0, 250},
      {FAIL, "198.51.100.3", "u", 10, 0, 500},
      {BLOCKED, "198.51.100.3", NULL, 69, 0, 0},
      {FAIL, "198.51.100.3", "u", 70, 0, 250}}},
    {"a check in flight counts as a failure",
     {{FAIL, "198.51.100.4", "u", 0, 0, 250},
      {FAIL, "198.51.100.4", "u", 0, 0, 500},
      {BLOCKED, "198.51.100.4", NULL, 0, 0, 0},
      {BEGIN, "198.51.100.4", NULL, 0, 0, 0},
      {BLOCKED, "198.51.100.4", NULL, 0, 0, 1}, /* 1 s: until the check ends */
      {BLOCKED, "198.51.100.5", NULL, 0, 0, 0},
      {LOGIN, "198.51.100.5", "x", 0, 0, 0}}},
    {"one auth_blocked log line per address per minute",
     {{FAIL, "198.51.100.6", "u", 0, 0, 250},
      {FAIL, "198.51.100.6", "u", 0, 0, 500},
      {FAIL, "198.51.100.6", "u", 0, 0, 1000},
      {REFUSED, "198.51.100.6", NULL, 0, 0, 1},
      {REFUSED, "198.51.100.6", NULL, 1, 0, 0},
      {REFUSED, "198.51.100.6", NULL, 30, 0, 0},
      {FAIL, "198.51.100.6", "u", 50, 0, 2000},
      {REFUSED, "198.51.100.6", NULL, 60, 0, 3},
      {REFUSED, "198.51.100.6", NULL, 61, 0, 0}}},
};

static void
addr_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &a->sin_addr), 1);
	}
}

/* Run one step; its result (0 for steps that return nothing). */
static long
run_step(struct server *srv, const struct step *st)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	time_t now = T0 + st->t;

	addr_of(st->addr, &ss);
	switch (st->op) {
	case TAKE:
		return peers_take(srv, sa, st->arg);
	case RELEASE:
		peers_release(srv, sa);
		return 0;
	case FAIL:
		authfail_begin(srv, sa, now);
		return authfail_record(srv, sa, st->user, now);
	case LOGIN:
		authfail_begin(srv, sa, now);
		authfail_clear(srv, sa, st->user);
		return 0;
	case BEGIN:
		authfail_begin(srv, sa, now);
		return 0;
	case BLOCKED:
		return authfail_blocked(srv, sa, now);
	case REFUSED:
		return authfail_refused(srv, sa, now);
	case END:
		break;
	}
	return 0;
}

static void
server_init(struct server *srv, struct config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	memset(cfg, 0, sizeof(*cfg));
	cfg->auth_max_failures = MAX_FAILURES;
	cfg->auth_block_time = BLOCK_TIME;
	srv->cfg = cfg;
	srv->peers = peers_new();
}

static void
test_scenarios(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		struct server srv;
		struct config cfg;

		server_init(&srv, &cfg);
		for (size_t k = 0; scenarios[i].steps[k].op != END; k++) {
			const struct step *st = &scenarios[i].steps[k];
			long got = run_step(&srv, st);
			if (got != st->want) {
				fprintf(stderr, "FAIL %s: step %zu (%s): got %ld, want %ld\n",
				        scenarios[i].label, k + 1, st->addr, got, st->want);
				bad++;
			}
		}
		peers_free(srv.peers);
	}
	assert_int_equal(bad, 0);
}

/* 10.x.y.z for i: distinct IPv4 addresses. */
static void
nth_addr(unsigned i, struct sockaddr_storage *ss)
{
	char text[32];

	snprintf(text, sizeof(text), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	addr_of(text, ss);
}

/*
 * Full AUTH part: the next new address drops the oldest state only; that
 * address's session count stays. The window is long: nothing expires here.
 */
static void
test_auth_part_is_bounded(void **state)
{
	struct server srv;
	struct config cfg;
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;

	(void)state;
	server_init(&srv, &cfg);
	cfg.auth_block_time = 1000000;
	nth_addr(0, &ss);
	assert_int_equal(peers_take(&srv, sa, 1), 0);
	for (unsigned i = 0; i <= PEERS_AUTH_MAX; i++) {
		nth_addr(i, &ss);
		assert_int_equal(authfail_record(&srv, sa, "u", T0 + (time_t)i), 250);
	}
	nth_addr(0, &ss); /* the oldest: its failure was forgotten */
	assert_int_equal(authfail_record(&srv, sa, "u", T0 + PEERS_AUTH_MAX + 1), 250);
	assert_int_equal(peers_take(&srv, sa, 1), -1);
	nth_addr(1, &ss); /* the next oldest was dropped for address 0's new state */
	assert_int_equal(authfail_record(&srv, sa, "u", T0 + PEERS_AUTH_MAX + 2), 250);
	nth_addr(PEERS_AUTH_MAX, &ss); /* the newest kept its failure */
	assert_int_equal(authfail_record(&srv, sa, "u", T0 + PEERS_AUTH_MAX + 3), 500);
	peers_free(srv.peers);
}

static void
fail_n(struct server *srv, const char *addr, unsigned n, time_t now)
{
	struct sockaddr_storage ss;

	addr_of(addr, &ss);
	for (unsigned i = 0; i < n; i++)
		authfail_record(srv, (const struct sockaddr *)&ss, "u", now);
}

/* The addresses peers_authfail_ops.clear clears for net (NULL: all), joined with ' '. */
static void
clear_text(struct server *srv, const char *net, char *out, size_t len)
{
	struct authfail_info v[8];
	struct cidr c;
	char err[128];
	size_t n, used = 0;

	if (net)
		assert_int_equal(cidr_parse(&c, net, err, sizeof(err)), 0);
	n = peers_authfail_ops.clear(srv, net ? &c : NULL, T0 + 1, v, 8);
	out[0] = '\0';
	for (size_t i = 0; i < n && i < 8; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s/%d:%u%s", i ? " " : "",
		                         v[i].addr, v[i].prefix, v[i].failures,
		                         v[i].blocked_until > T0 + 1 ? "!" : "");
}

/*
 * mxrelayctl unblock's view (server.h authfail_ops): list shows what counts,
 * clear forgets the entries inside a network (IPv6 by /64, so an address or
 * a longer prefix names its /64) and AUTH works again at once.
 */
static void
test_unblock_ops(void **state)
{
	struct server srv;
	struct config cfg;
	struct authfail_info v[8];
	struct sockaddr_storage ss;
	char got[512];

	(void)state;
	server_init(&srv, &cfg);
	fail_n(&srv, "192.0.2.1", 3, T0);
	fail_n(&srv, "192.0.2.77", 1, T0);
	fail_n(&srv, "2001:db8::1", 2, T0);
	fail_n(&srv, "2001:db8::2", 1, T0);
	fail_n(&srv, "2001:db8:0:1::1", 3, T0);
	assert_int_equal(peers_authfail_ops.list(&srv, T0 + 1, v, 8), 4);
	assert_int_equal(peers_authfail_ops.list(&srv, T0 + 1, v, 2), 4); /* the count in all */
	clear_text(&srv, "2001:db8::99", got, sizeof(got));
	assert_string_equal(got, "2001:db8::/64:3!");
	clear_text(&srv, "192.0.2.0/25", got, sizeof(got));
	assert_true(strcmp(got, "192.0.2.1/32:3! 192.0.2.77/32:1") == 0 ||
	            strcmp(got, "192.0.2.77/32:1 192.0.2.1/32:3!") == 0);
	addr_of("192.0.2.1", &ss);
	assert_int_equal(authfail_blocked(&srv, (const struct sockaddr *)&ss, T0 + 1), 0);
	clear_text(&srv, "192.0.2.1", got, sizeof(got));
	assert_string_equal(got, "");
	clear_text(&srv, NULL, got, sizeof(got));
	assert_string_equal(got, "2001:db8:0:1::/64:3!");
	assert_int_equal(peers_authfail_ops.list(&srv, T0 + 1, v, 8), 0);
	peers_free(srv.peers);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scenarios),
	    cmocka_unit_test(test_auth_part_is_bounded),
	    cmocka_unit_test(test_unblock_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
