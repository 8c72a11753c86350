/*
 * auth: failed-AUTH throttling per client address.
 *
 * Each failure from an address delays the answer (250 ms doubling, at most
 * 4 s); after auth_max_failures failures within auth_block_time the address
 * is refused AUTH (454 4.7.0) until the block time passes (IPv6: per /64).
 * A password check still running counts as a failure until it succeeds, so
 * parallel connections get no more checks than one connection would. The
 * auth_blocked log line is written once per address per AUTHFAIL_LOG_EVERY
 * seconds, with the count of refusals since the last one.
 * Only the address is slowed: the account keeps working from every other address, so a
 * guessing attacker cannot lock a copier out. The table is bounded: the
 * oldest entry is dropped when it is full.
 */
#include "mta/server.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "mta/config.h"
#include "mta/core/util.h"

#define AUTHFAIL_MAX 4096
#define AUTHFAIL_LOG_EVERY 60	/* seconds between auth_blocked log lines per address */

struct afail {
	unsigned char addr[16];
	unsigned failures;
	unsigned inflight;	/* password checks running now */
	time_t last;
	time_t blocked_until;
	time_t log_after;	/* no auth_blocked line before this */
	unsigned unlogged;	/* refusals not logged yet */
};

struct auth_table {
	struct afail v[AUTHFAIL_MAX];
	size_t n;
};

struct auth_table *
authfail_new(void)
{
	return xcalloc(1, sizeof(struct auth_table));
}

void
authfail_free(struct auth_table *t)
{
	free(t);
}

static void
key_of(const struct sockaddr *sa, unsigned char k[16])
{
	memset(k, 0, 16);
	if (sa->sa_family == AF_INET) {
		k[10] = k[11] = 0xff;
		memcpy(k + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		/*
		 * One IPv6 client usually owns a whole /64: count failures per /64,
		 * or rotating the interface id would dodge the throttle.
		 */
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		memcpy(k, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
	}
}

/* Find the entry for sa, dropping expired ones on the way (linear: bounded table). */
static struct afail *
lookup(struct server *srv, const struct sockaddr *sa, time_t now, int create)
{
	struct auth_table *t = srv->authfail;
	unsigned window = srv->cfg->auth_block_time;
	unsigned char k[16];
	size_t i, oldest = 0;

	key_of(sa, k);
	for (i = 0; i < t->n;) {
		struct afail *a = &t->v[i];
		if (a->blocked_until <= now && a->last + (time_t)window <= now && a->inflight == 0) {
			t->v[i] = t->v[--t->n];
			continue;
		}
		if (memcmp(a->addr, k, 16) == 0)
			return a;
		if (a->last < t->v[oldest].last)
			oldest = i;
		i++;
	}
	if (!create)
		return NULL;
	if (t->n == AUTHFAIL_MAX)
		i = oldest;
	else
		i = t->n++;
	memset(&t->v[i], 0, sizeof(t->v[i]));
	memcpy(t->v[i].addr, k, 16);
	return &t->v[i];
}

unsigned
authfail_blocked(struct server *srv, const struct sockaddr *sa, time_t now)
{
	struct afail *a = lookup(srv, sa, now, 0);

	if (a == NULL)
		return 0;
	if (a->blocked_until > now)
		return (unsigned)(a->blocked_until - now);
	/* checks in flight count as failures: 20 parallel tries get no more than 1 would */
	return a->failures + a->inflight >= srv->cfg->auth_max_failures ? 1 : 0;
}

void
authfail_begin(struct server *srv, const struct sockaddr *sa, time_t now)
{
	struct afail *a = lookup(srv, sa, now, 1);

	a->inflight++;
	a->last = now;
}

static void
end_check(struct afail *a)
{
	if (a->inflight > 0)
		a->inflight--;	/* 0 when the table dropped the entry meanwhile */
}

unsigned
authfail_refused(struct server *srv, const struct sockaddr *sa, time_t now)
{
	struct afail *a = lookup(srv, sa, now, 1);
	unsigned n = ++a->unlogged;

	if (now < a->log_after)
		return 0;
	a->log_after = now + AUTHFAIL_LOG_EVERY;
	a->unlogged = 0;
	return n;
}

unsigned
authfail_record(struct server *srv, const struct sockaddr *sa, time_t now)
{
	struct afail *a = lookup(srv, sa, now, 1);
	unsigned shift;

	end_check(a);
	a->failures++;
	a->last = now;
	if (a->failures >= srv->cfg->auth_max_failures)
		a->blocked_until = now + srv->cfg->auth_block_time;
	shift = a->failures > 5 ? 4 : a->failures - 1;
	return 250u << shift;
}

void
authfail_clear(struct server *srv, const struct sockaddr *sa)
{
	struct afail *a = lookup(srv, sa, time(NULL), 0);
	if (a != NULL) {
		end_check(a);
		a->failures = 0;
	}
}
