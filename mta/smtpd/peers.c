/*
 * peers: the per-address table (peers.h): sessions per client address for
 * the connection caps, and failed-AUTH throttling.
 *
 * AUTH throttling: each failure from an address delays the answer (250 ms
 * doubling, at most 4 s); after auth_max_failures failures within
 * auth_block_time the address is refused AUTH (454 4.7.0) until the block
 * time passes (IPv6: per /64). A password check still running counts as a
 * failure until it succeeds, so parallel connections get no more checks
 * than one connection would.
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
 * guessing attacker cannot lock a copier out. The AUTH part is bounded: the
 * oldest address's AUTH state is dropped when PEERS_AUTH_MAX are held.
 */
#include "mta/smtpd/peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/server.h"
#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/shared/util.h"

#define PEER_BUCKETS 1024
#define AUTHFAIL_LOG_EVERY 60 /* seconds between auth_blocked log lines per address */
#define AUTHFAIL_USERS 4      /* user names per address whose failures a login can forgive */

/* The failures of one user name from one address. */
struct ufail {
	uint64_t user; /* hash of the name; 0: slot free */
	unsigned failures;
	time_t last; /* they age out auth_block_time after this */
};

/* The failed-AUTH state of one address (IPv6: of one /64). */
struct afail {
	/* [AUTHFAIL_USERS]: every other name, forgiven by no login */
	struct ufail u[AUTHFAIL_USERS + 1];
	unsigned inflight; /* password checks running now */
	time_t last;
	time_t blocked_until;
	time_t log_after;  /* no auth_blocked line before this */
	unsigned unlogged; /* refusals not logged yet */
};

struct peer {
	unsigned char key[16];
	struct peer *next; /* in its bucket */
	unsigned sessions; /* sessions counted by peers_take */
	bool has_auth;     /* auth is in use (counted in nauth) */
	struct afail auth;
};

struct peers {
	struct peer *b[PEER_BUCKETS];
	size_t nauth;  /* entries with has_auth */
	size_t naddrs; /* entries holding a session: the fair share divides by it */
};

struct peers *
peers_new(void)
{
	return xcalloc(1, sizeof(struct peers));
}

void
peers_free(struct peers *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < PEER_BUCKETS; i++) {
		struct peer *p, *n;
		for (p = t->b[i]; p; p = n) {
			n = p->next;
			free(p);
		}
	}
	free(t);
}

static struct peers *
table(struct server *srv)
{
	if (srv->peers == NULL)
		srv->peers = peers_new();
	return srv->peers;
}

/*
 * The 16-byte key of sa; IPv4 and IPv4-mapped IPv6 give the same key.
 * per64: the key for AUTH failures, where one IPv6 client usually owns a
 * whole /64: counted per /64, or rotating the interface id would dodge the
 * throttle.
 */
static void
addr_key(const struct sockaddr *sa, unsigned char k[16], bool per64)
{
	memset(k, 0, 16);
	if (sa->sa_family == AF_INET) {
		k[10] = k[11] = 0xff;
		memcpy(k + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		memcpy(k, a, !per64 || memcmp(a, mapped, 12) == 0 ? 16 : 8);
	}
}

/* The link that points at key's entry (or the bucket's end). FNV-1a over the key. */
static struct peer **
slot(struct peers *t, const unsigned char key[16])
{
	uint32_t h = 2166136261u;
	struct peer **pp;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	for (pp = &t->b[h % PEER_BUCKETS]; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, 16) == 0)
			break;
	return pp;
}

static struct peer *
entry(struct peers *t, const unsigned char key[16], bool create)
{
	struct peer **pp = slot(t, key);

	if (*pp == NULL && create) {
		*pp = xcalloc(1, sizeof(**pp));
		memcpy((*pp)->key, key, 16);
	}
	return *pp;
}

/* Free p when it counts no session and holds no AUTH state. */
static void
entry_tidy(struct peers *t, struct peer *p)
{
	struct peer **pp;

	if (p->sessions > 0 || p->has_auth)
		return;
	pp = slot(t, p->key);
	*pp = p->next;
	free(p);
}

int
peers_take(struct server *srv, const struct sockaddr *sa, unsigned cap)
{
	struct peers *t = table(srv);
	unsigned char k[16];
	struct peer *p;

	addr_key(sa, k, false);
	p = entry(t, k, true);
	if (p->sessions >= cap) {
		entry_tidy(t, p);
		return -1;
	}
	if (p->sessions++ == 0)
		t->naddrs++;
	return 0;
}

void
peers_release(struct server *srv, const struct sockaddr *sa)
{
	struct peers *t = table(srv);
	unsigned char k[16];
	struct peer *p;

	addr_key(sa, k, false);
	p = entry(t, k, false);
	if (p == NULL || p->sessions == 0)
		return;
	if (--p->sessions == 0)
		t->naddrs--;
	entry_tidy(t, p);
}

unsigned
peers_sessions(struct server *srv, const struct sockaddr *sa)
{
	unsigned char k[16];
	struct peer *p;

	addr_key(sa, k, false);
	p = entry(table(srv), k, false);
	return p ? p->sessions : 0;
}

unsigned
peers_addresses(struct server *srv)
{
	return (unsigned)table(srv)->naddrs;
}

bool
peers_same(const struct sockaddr *a, const struct sockaddr *b)
{
	unsigned char ka[16], kb[16];

	addr_key(a, ka, false);
	addr_key(b, kb, false);
	return memcmp(ka, kb, 16) == 0;
}

/* ---- failed AUTH ------------------------------------------------------------ */

static bool
auth_expired(const struct afail *a, unsigned window, time_t now)
{
	return a->blocked_until <= now && a->last + (time_t)window <= now && a->inflight == 0;
}

/* Forget p's AUTH state (p may be freed). */
static void
auth_drop(struct peers *t, struct peer *p)
{
	p->has_auth = false;
	memset(&p->auth, 0, sizeof(p->auth));
	t->nauth--;
	entry_tidy(t, p);
}

/* The AUTH part is full: drop the expired states, then the oldest if still full. */
static void
auth_make_room(struct peers *t, unsigned window, time_t now)
{
	struct peer *oldest = NULL;

	for (size_t i = 0; i < PEER_BUCKETS; i++) {
		struct peer *p, *n;
		for (p = t->b[i]; p; p = n) {
			n = p->next;
			if (!p->has_auth)
				continue;
			if (auth_expired(&p->auth, window, now))
				auth_drop(t, p);
			else if (oldest == NULL || p->auth.last < oldest->auth.last)
				oldest = p;
		}
	}
	if (t->nauth >= PEERS_AUTH_MAX && oldest != NULL)
		auth_drop(t, oldest);
}

/* The AUTH state of sa's address; an expired one reads as none. NULL: none (!create). */
static struct afail *
lookup(struct server *srv, const struct sockaddr *sa, time_t now, bool create)
{
	struct peers *t = table(srv);
	unsigned window = srv->cfg->auth_block_time;
	unsigned char k[16];
	struct peer *p;

	addr_key(sa, k, true);
	p = entry(t, k, false);
	if (p != NULL && p->has_auth && auth_expired(&p->auth, window, now))
		auth_drop(t, p);
	p = entry(t, k, false);
	if (p != NULL && p->has_auth)
		return &p->auth;
	if (!create)
		return NULL;
	if (t->nauth >= PEERS_AUTH_MAX)
		auth_make_room(t, window, now);
	p = entry(t, k, true);
	p->has_auth = true;
	t->nauth++;
	return &p->auth;
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
	struct afail *a = lookup(srv, sa, now, false);
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
	struct afail *a = lookup(srv, sa, now, true);

	a->inflight++;
	a->last = now;
}

static void
end_check(struct afail *a)
{
	if (a->inflight > 0)
		a->inflight--; /* 0 when the table dropped the entry meanwhile */
}

unsigned
authfail_refused(struct server *srv, const struct sockaddr *sa, time_t now)
{
	struct afail *a = lookup(srv, sa, now, true);
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
	struct afail *a = lookup(srv, sa, now, true);
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
	struct afail *a = lookup(srv, sa, time(NULL), false);
	struct ufail *u;

	if (a == NULL)
		return;
	end_check(a);
	/* this user's own failures only: a login never wipes guesses at other accounts */
	if ((u = user_slot(a, user, 0)) != NULL)
		memset(u, 0, sizeof(*u));
}

/* ---- the table for the control socket (server.h authfail_ops) ----------------- */

static bool
key_is_v4(const unsigned char k[16])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(k, mapped, 12) == 0;
}

/* Is the entry keyed k (IPv4, or an IPv6 /64) inside net? NULL: every entry is. */
static bool
key_in(const unsigned char k[16], const struct cidr *net)
{
	struct sockaddr_in sin;
	int bits;

	if (net == NULL)
		return true;
	if (net->family == AF_INET) {
		if (!key_is_v4(k))
			return false;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, k + 12, 4);
		return cidr_match(net, (struct sockaddr *)&sin);
	}
	if (key_is_v4(k))
		return false;
	/* failures are kept per /64: a longer prefix names the /64 that holds it */
	bits = net->prefix < 64 ? net->prefix : 64;
	for (int i = 0; i < bits; i++) {
		unsigned m = 0x80u >> (i % 8);
		if ((k[i / 8] & m) != (net->addr[i / 8] & m))
			return false;
	}
	return true;
}

static void
entry_info(struct peer *p, unsigned window, time_t now, struct authfail_info *out)
{
	bool v4 = key_is_v4(p->key);

	memset(out, 0, sizeof(*out));
	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? p->key + 12 : p->key, out->addr,
	          sizeof(out->addr));
	out->prefix = v4 ? 32 : 64;
	out->failures = failures(&p->auth, window, now);
	out->blocked_until = p->auth.blocked_until;
	out->last = p->auth.last;
}

/* Every entry with AUTH state inside net: listed (clear: also forgotten). */
static size_t
authfail_walk(struct server *srv, const struct cidr *net, bool clear, time_t now,
              struct authfail_info *out, size_t max)
{
	struct peers *t = table(srv);
	unsigned window = srv->cfg->auth_block_time;
	size_t n = 0;

	for (size_t i = 0; i < PEER_BUCKETS; i++) {
		struct peer *p, *next;
		for (p = t->b[i]; p; p = next) {
			struct authfail_info info;
			next = p->next;
			if (!p->has_auth || !key_in(p->key, net))
				continue;
			entry_info(p, window, now, &info);
			/* what still counts is shown; a clear forgets checks in flight too */
			if (info.failures > 0 || info.blocked_until > now) {
				if (n < max)
					out[n] = info;
				n++;
			}
			if (clear)
				auth_drop(t, p); /* p may be freed: next was taken first */
		}
	}
	return n;
}

static size_t
authfail_list(struct server *srv, time_t now, struct authfail_info *out, size_t max)
{
	return authfail_walk(srv, NULL, false, now, out, max);
}

static size_t
authfail_clear_net(struct server *srv, const struct cidr *net, time_t now,
                   struct authfail_info *out, size_t max)
{
	return authfail_walk(srv, net, true, now, out, max);
}

const struct authfail_ops peers_authfail_ops = {authfail_list, authfail_clear_net};
