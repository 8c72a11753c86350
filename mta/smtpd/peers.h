/*
 * peers: what the SMTP server knows per client address, in one table.
 *
 * Each entry is keyed by a 16-byte address key (IPv4 as IPv4-mapped IPv6)
 * and holds the sessions counted for that address (the per-address
 * connection cap) and its failed-AUTH state (the throttle, peers.c). Sessions
 * are counted per address; AUTH failures of IPv6 clients per /64 (an entry
 * keyed by the /64 prefix), so one entry may carry either part or both.
 * An entry lives while it counts a session or holds AUTH state; the AUTH
 * part is bounded (PEERS_AUTH_MAX addresses, the oldest dropped when full).
 *
 * Loop thread only. The table belongs to srv->peers (peers_new at start,
 * peers_free at exit); the functions below create it on first use if needed.
 */
#ifndef MXRELAY_SMTPD_PEERS_H
#define MXRELAY_SMTPD_PEERS_H

#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

struct server;
struct peers;

/*
 * Per-address slots an implicit-TLS client may hold in all, refusal
 * handshakes included: bounded (one address can't fill every slot) but with
 * room for a few refusals still closing.
 */
#define REFUSAL_CAP(cap) (2 * (cap) + 4)

/* Addresses (IPv6: /64s) whose failed-AUTH state is kept at most. */
#define PEERS_AUTH_MAX 4096

struct peers *peers_new(void);
/* Free the table and every entry in it; NULL is fine. */
void peers_free(struct peers *t);

/* Count one more session for sa unless it is at cap. 0 / -1. */
int peers_take(struct server *srv, const struct sockaddr *sa, unsigned cap);
/* One session of sa ended (one peers_take that returned 0). */
void peers_release(struct server *srv, const struct sockaddr *sa);

/* Sessions counted for sa's address now. */
unsigned peers_sessions(struct server *srv, const struct sockaddr *sa);
/* Distinct addresses holding at least one session. */
unsigned peers_addresses(struct server *srv);
/* a and b are the same client address for the caps (IPv4-mapped IPv6 = IPv4). */
bool peers_same(const struct sockaddr *a, const struct sockaddr *b);

/* Seconds the address is still refused AUTH (0: not blocked; checks in flight count). */
unsigned authfail_blocked(struct server *srv, const struct sockaddr *sa, time_t now);
/* A password check starts; it ends with authfail_record or authfail_clear. */
void authfail_begin(struct server *srv, const struct sockaddr *sa, time_t now);
/* A check for user failed: record it; returns the delay in milliseconds before answering it. */
unsigned authfail_record(struct server *srv, const struct sockaddr *sa, const char *user,
                         time_t now);
/* A check for user succeeded: user's failures from this address are forgiven, no other's. */
void authfail_clear(struct server *srv, const struct sockaddr *sa, const char *user);
/*
 * A blocked address was refused once more. Returns the refusals to log now
 * (this one included) or 0 to stay silent: one log line per address per minute.
 */
unsigned authfail_refused(struct server *srv, const struct sockaddr *sa, time_t now);

/*
 * The failed-AUTH table for the control socket (mxrelayctl unblock, server.h):
 * main.c sets srv->authfail to this.
 */
extern const struct authfail_ops peers_authfail_ops;

#endif
