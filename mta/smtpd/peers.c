/*
 * auth: failed-AUTH throttling per client address.
 *
 * Each failure from an address delays the answer (250 ms doubling, at most
 * 4 s); after auth_max_failures failures within auth_block_time the address
 * is refused AUTH (454 4.7.0) until the block time passes (IPv6: per /64).
 * A password check still running counts as a failure until it succeeds, so
 * parallel connections get no more checks than one connection would.
 *
 * Failures are kept per user name within the address's entry. A successful
 * login forgives that user's failures only (the device that mistyped its own
 * password and then got it right), never another user's: a client holding
 * one valid credential must not wipe its guesses at other accounts by
 * logging in between them. A user's failures age out auth_block_time after
 * that user's last failure. Past AUTHFAIL_USERS distinct names, failures go
 * to one shared slot that no login forgives. The
 * auth_blocked log line is written once per address per AUTHFAIL_LOG_EVERY
 * seconds, with the count of refusals since the last one.
 * Only the address is slowed: the account keeps working from every other address, so a
 * guessing attacker cannot lock a copier out. The table is bounded: the
 * oldest entry is dropped when it is full.
 */
#include "mta/server.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/config.h"
#include "mta/shared/util.h"

#define AUTHFAIL_MAX 4096
#define AUTHFAIL_LOG_EVERY 60	/* seconds between auth_blocked log lines per address */
#define AUTHFAIL_USERS 4	/* user names per address whose failures a login can forgive */

/* The failures of one user name from one address. */
struct ufail {
	uint64_t user;		/* hash of the name; 0: slot free */
	unsigned failures;
	time_t last;		/* they age out auth_block_time after this */
};

struct afail {
	unsigned char addr[16];
	/* [AUTHFAIL_USERS]: every other name, forgiven by no login */
	struct ufail u[AUTHFAIL_USERS + 1];
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

/* FNV-1a, never 0 (a free slot). User names are case-sensitive, as in creds. */
static uint64_t
user_hash(const char *user)
{
	uint64_t h = 14695981039346656037ull;

	for (; *user; user++)
		h = (h ^ (unsigned char)*user) * 1099511628211ull;
	return h ? h : 1;
}

/* The address's failures not yet aged out; expired slots are freed on the way. */
static unsigned
failures(struct afail *a, unsigned window, time_t now)
{
	unsigned n = 0;

	for (size_t i = 0; i <= AUTHFAIL_USERS; i++) {
		struct ufail *u = &a->u[i];
		if (u->failures > 0 && u->last + (time_t)window <= now)
			memset(u, 0, sizeof(*u));
		n += u->failures;
	}
	return n;
}

/* user's slot; with create, a free one or the shared last slot. NULL: none. */
static struct ufail *
user_slot(struct afail *a, const char *user, int create)
{
	uint64_t h = user_hash(user);
	struct ufail *free_slot = NULL;

	for (size_t i = 0; i < AUTHFAIL_USERS; i++) {
		if (a->u[i].user == h)
			return &a->u[i];
		if (free_slot == NULL && a->u[i].failures == 0)
			free_slot = &a->u[i];
	}
	if (!create)
		return NULL;
	if (free_slot == NULL)
		return &a->u[AUTHFAIL_USERS];
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->user = h;
	return free_slot;
}

unsigned
authfail_blocked(struct server *srv, const struct sockaddr *sa, time_t now)
{
	struct afail *a = lookup(srv, sa, now, 0);
	unsigned n;

	if (a == NULL)
		return 0;
	if (a->blocked_until > now)
		return (unsigned)(a->blocked_until - now);
	/* checks in flight count as failures: 20 parallel tries get no more than 1 would */
	n = failures(a, srv->cfg->auth_block_time, now) + a->inflight;
	return n >= srv->cfg->auth_max_failures ? 1 : 0;
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
authfail_record(struct server *srv, const struct sockaddr *sa, const char *user, time_t now)
{
	struct afail *a = lookup(srv, sa, now, 1);
	struct ufail *u;
	unsigned n, shift;

	end_check(a);
	n = failures(a, srv->cfg->auth_block_time, now);
	u = user_slot(a, user, 1);
	u->failures++;
	u->last = now;
	n++;
	a->last = now;
	if (n >= srv->cfg->auth_max_failures)
		a->blocked_until = now + srv->cfg->auth_block_time;
	shift = n > 5 ? 4 : n - 1;
	return 250u << shift;
}

void
authfail_clear(struct server *srv, const struct sockaddr *sa, const char *user)
{
	struct afail *a = lookup(srv, sa, time(NULL), 0);
	struct ufail *u;

	if (a == NULL)
		return;
	end_check(a);
	/* this user's own failures only: a login never wipes guesses at other accounts */
	if ((u = user_slot(a, user, 0)) != NULL)
		memset(u, 0, sizeof(*u));
}
