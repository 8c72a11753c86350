/*
 * smtpd_limits: time limits that count work, and slots shared fairly.
 *
 * session_timeout (libevent's read/write timeouts, io.c) only measures
 * silence: a client sending one byte every few seconds never trips it. So
 * once a second every session is checked against limits on the work itself:
 *  - command_deadline: from the first byte of a command line (or an AUTH
 *    line) to its CRLF (RFC 5321 4.5.3.2.7 is the ceiling),
 *  - data_deadline: the whole DATA phase, 354 to the final dot (4.5.3.2.6),
 *  - min_data_rate: bytes per second averaged over DATA, judged once a grace
 *    of min(30 s, command_deadline) has passed,
 *  - under stress (more than 80 % of max_connections in use) the command
 *    deadline and the idle time both fall to stress_timeout, as Postfix's
 *    stress-dependent smtpd_timeout does.
 * Expiry sends 421 4.4.2 and closes after it.
 *
 * Slots: the per-address cap shrinks from max_connections_per_ip (up to
 * 80 % load) to max(2, max_connections / (addresses + 1)) at 100 %, so one
 * flooding address cannot take the room the others need. At a cap, the
 * newcomer is not refused while an idle session can make room: the one
 * whose last command that moved a transaction on is oldest (NOOP, RSET,
 * HELP, VRFY, EXPN do not count: cmd.c's F_NO_WORK), of the same address
 * for the per-address cap, of the address holding the most sessions for
 * the global cap, gets 421 4.7.0 and the newcomer its slot. Never evicted: a session
 * waiting for a worker or the spool, and one in DATA keeping the minimum
 * rate. Evicted sessions give their slot back at once (srv->nevicting).
 *
 * Calls io.c (replies, close) and peers.c; called by listener.c and
 * proxy_accept.c (the client address from a PROXY header).
 */
#include "mta/smtpd/smtpd_int.h"

#include <stdio.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/event.h"
#include "mta/metrics.h"

#define SWEEP_MS 1000
#define RATE_GRACE_MAX 30 /* seconds of DATA before its rate is judged */

/* Sessions holding a slot: the evicted ones are on their way out. */
static unsigned
live(const struct server *srv)
{
	return srv->nsessions - srv->nevicting;
}

/* More than 80 % of max_connections in use. */
static bool
stressed(const struct server *srv)
{
	return (uint64_t)live(srv) * 5 > (uint64_t)srv->cfg->max_connections * 4;
}

static int64_t
secs_ms(unsigned secs)
{
	return (int64_t)secs * 1000;
}

/* In DATA and keeping min_data_rate (always so within the grace, or with the rate off). */
static bool
rate_ok(const struct session *s, int64_t now)
{
	const struct config *cfg = s->srv->cfg;
	unsigned grace =
	    cfg->command_deadline < RATE_GRACE_MAX ? cfg->command_deadline : RATE_GRACE_MAX;
	int64_t elapsed = now - s->data_start;

	if (cfg->min_data_rate == 0 || elapsed < secs_ms(grace))
		return true;
	return s->data_bytes * 1000 >= cfg->min_data_rate * (uint64_t)elapsed;
}

/* A limit that closed a session: its log word and its counter. */
struct expiry {
	const char *name;
	enum metric_counter counter;
};
static const struct expiry EXP_LINE = {"line", M_CLOSED_LINE};
static const struct expiry EXP_DATA = {"data", M_CLOSED_DATA};
static const struct expiry EXP_RATE = {"rate", M_CLOSED_RATE};
static const struct expiry EXP_IDLE = {"idle", M_CLOSED_IDLE};

/* Which limit s is past now, or NULL. */
static const struct expiry *
expired(const struct session *s, int64_t now, bool stress)
{
	const struct config *cfg = s->srv->cfg;
	unsigned line = cfg->command_deadline, idle = cfg->session_timeout;

	if (stress) {
		line = line < cfg->stress_timeout ? line : cfg->stress_timeout;
		idle = idle < cfg->stress_timeout ? idle : cfg->stress_timeout;
	}
	if (s->state == SS_CMD || s->state == SS_AUTH) {
		if (s->line_start != 0 && now - s->line_start >= secs_ms(line))
			return &EXP_LINE;
	} else if (s->state == SS_DATA) {
		if (now - s->data_start >= secs_ms(cfg->data_deadline))
			return &EXP_DATA;
		if (!rate_ok(s, now))
			return &EXP_RATE;
	} else {
		return NULL; /* waiting for us, or closing already */
	}
	/* without stress, libevent's timeouts measure silence (io.c) */
	if (stress && now - s->last_read >= secs_ms(idle))
		return &EXP_IDLE;
	return NULL;
}

static void
check(struct session *s, int64_t now, bool stress)
{
	const struct expiry *why;

	if (s->evicted || s->closed || evref_closing(&s->ref))
		return;
	if (smtpd_data_stalled(s, now))
		return; /* the LF.LF device: its own 5xx, not a timeout (data.c) */
	if ((why = expired(s, now, stress)) == NULL)
		return;
	log_info("s=%s event=timeout ip=%s reason=%s state=%s stress=%s", s->id, s->ip, why->name,
	         smtpd_state_name(s->state), stress ? "yes" : "no");
	metrics_inc(why->counter);
	if (s->tls && !s->tls_done) {
		smtpd_session_drop(s); /* no reply can go out before the handshake */
		return;
	}
	smtpd_reply_id(s, R_TIMEOUT, s->srv->cfg->hostname);
	smtpd_close_after_reply(s);
}

static void
on_sweep(void *arg)
{
	struct server *srv = arg;
	int64_t now = util_now_ms();
	bool stress = stressed(srv);
	struct session *s, *n;

	for (s = srv->sessions; s; s = n) {
		n = s->next; /* s may be freed */
		check(s, now, stress);
	}
}

void
smtpd_limits_start(struct server *srv)
{
	if (srv->smtpd_sweep == NULL)
		srv->smtpd_sweep = loop_timer_new(srv->base, true, on_sweep, srv);
	loop_timer_add(srv->smtpd_sweep, SWEEP_MS);
}

void
smtpd_limits_stop(struct server *srv)
{
	loop_timer_free(srv->smtpd_sweep);
	srv->smtpd_sweep = NULL;
}

/* The per-address cap now: max_connections_per_ip, shrinking as the global cap nears. */
static unsigned
ip_cap(struct server *srv)
{
	unsigned max = srv->cfg->max_connections, cap = srv->cfg->max_connections_per_ip;
	unsigned knee = max - max / 5, n = live(srv), floor;

	if (n <= knee || max == knee)
		return cap;
	floor = max / (peers_addresses(srv) + 1);
	floor = floor < 2 ? 2 : floor;
	if (floor >= cap)
		return cap;
	if (n >= max)
		return floor;
	/* linear from cap at 80 % down to floor at 100 % */
	return cap - (unsigned)((uint64_t)(cap - floor) * (n - knee) / (max - knee));
}

/* s could make room: not waiting for us, not spooling, not in DATA at the minimum rate. */
static bool
evictable(const struct session *s, int64_t now)
{
	if (s->evicted || s->closed || s->spooling || evref_closing(&s->ref))
		return false;
	if (s->state == SS_CMD || s->state == SS_AUTH)
		return true;
	return s->state == SS_DATA && !rate_ok(s, now);
}

static void
evict(struct session *s, const char *cap, int64_t now)
{
	struct server *srv = s->srv;

	log_info("s=%s event=evicted ip=%s cap=%s state=%s idle_ms=%lld sessions=%u", s->id, s->ip,
	         cap, smtpd_state_name(s->state), (long long)(now - s->last_work), srv->nsessions);
	metrics_inc(M_CLOSED_EVICTED);
	s->evicted = true;
	srv->nevicting++;
	peers_release(srv, (struct sockaddr *)&s->peer); /* the slot is the newcomer's now */
	if (s->tls && !s->tls_done) {
		smtpd_session_drop(s);
		return;
	}
	smtpd_reply_id(s, R_EVICTED, srv->cfg->hostname);
	smtpd_close_after_reply(s);
}

/*
 * The per-address cap: sa's own oldest idle session makes room. 0 / -1.
 * The list runs newest first, so on a tie (same millisecond) "<=" picks
 * the older session.
 */
static int
evict_same(struct server *srv, const struct sockaddr *sa, int64_t now)
{
	struct session *s, *best = NULL;

	for (s = srv->sessions; s; s = s->next)
		if (peers_same((struct sockaddr *)&s->peer, sa) && evictable(s, now) &&
		    (best == NULL || s->last_work <= best->last_work))
			best = s;
	if (best == NULL)
		return -1;
	evict(best, "max_connections_per_ip", now);
	return 0;
}

/*
 * The global cap: the address holding the most sessions gives up its
 * oldest idle one, so a flood pays first and a lone client last. 0 / -1.
 */
static int
evict_global(struct server *srv, int64_t now)
{
	struct session *s, *best = NULL;
	unsigned best_n = 0;

	for (s = srv->sessions; s; s = s->next) {
		unsigned n;
		if (!evictable(s, now))
			continue;
		n = peers_sessions(srv, (struct sockaddr *)&s->peer);
		if (best == NULL || n > best_n ||
		    (n == best_n && s->last_work <= best->last_work)) {
			best = s;
			best_n = n;
		}
	}
	if (best == NULL)
		return -1;
	evict(best, "max_connections", now);
	return 0;
}

int
smtpd_slot_take(struct server *srv, const struct sockaddr *sa, const char **why)
{
	int64_t now = util_now_ms();
	unsigned cap = ip_cap(srv), have = peers_sessions(srv, sa);

	if (have >= cap) {
		if (evict_same(srv, sa, now) != 0) {
			*why = "max_connections_per_ip";
			return -1;
		}
		cap = have; /* one for one: an address over a shrunk cap never grows */
	}
	if (live(srv) >= srv->cfg->max_connections && evict_global(srv, now) != 0) {
		*why = "max_connections";
		return -1;
	}
	if (peers_take(srv, sa, cap) != 0) {
		*why = "max_connections_per_ip";
		return -1;
	}
	return 0;
}
