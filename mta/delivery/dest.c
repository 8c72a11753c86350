/*
 * dest: destinations (one per recipient domain) and their connections.
 *
 * A destination queues groups, resolves its MX targets (dns/, cached by TTL), and runs up to
 * `window` connections: the window starts at domain_concurrency_start, grows by one on each
 * successful session and halves when every target failed. A connection walks the target list
 * (next MX on connect failure, timeout, or 4xx/5xx greeting), retries a target in plaintext
 * when its TLS handshake fails (opportunistic TLS), carries one group per transaction, and
 * stays open IDLE_SECONDS for the next group. No connection opens for a group, and no
 * transaction starts, before the group's message is claimed (the owner's claim callback): a
 * crash in either is counted.
 * Never: calls its owner (deliver.c, claim.c) but through struct dest_cbs.
 */
#include "mta/delivery/dest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <idn2.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"
#include "mta/delivery/dest_int.h"
#include "mta/delivery/resolver.h"
#include "mta/delivery/tlspol.h"
#include "mta/delivery/tlsstats.h"
#include "mta/event.h"
#include "mta/metrics.h"
#include "mta/reply.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

static void dest_pump(struct dest *d);
static void conn_connect(struct dconn *k);

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 16777619u;
	}
	return h % DEST_BUCKETS;
}

static struct dest *
dest_get(struct dests *ds, const char *domain, bool tls_report)
{
	unsigned h = hash(domain);
	struct dest *d;
	for (d = ds->buckets[h]; d; d = d->next)
		if (strcasecmp(d->domain, domain) == 0 && d->tls_report == tls_report)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->ds = ds;
	d->tls_report = tls_report;
	snprintf(d->domain, sizeof(d->domain), "%s", domain);
	d->window = ds->srv->cfg->domain_concurrency_start;
	d->tp = tlspol_dest_new();
	d->next = ds->buckets[h];
	ds->buckets[h] = d;
	return d;
}

static struct dgroup *
pop_group(struct dest *d)
{
	struct dgroup *g = d->qhead;
	if (g) {
		d->qhead = g->next;
		if (d->qhead == NULL)
			d->qtail = NULL;
		d->qlen--;
		g->next = NULL;
	}
	return g;
}

/* Take g out of d's queue, wherever it is. */
static void
group_unlink(struct dest *d, struct dgroup *g)
{
	struct dgroup **pp = &d->qhead, *prev = NULL;

	while (*pp != NULL && *pp != g) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = g->next;
	if (d->qtail == g)
		d->qtail = prev;
	d->qlen--;
	g->next = NULL;
}

/* The same outcome for every recipient of g, then g is done. */
static void
group_fail(struct dests *ds, struct dgroup *g, int code, const char *text, const char *relay,
           const struct tls_outcome *o)
{
	for (size_t k = 0; k < g->m.nrcpts; k++)
		ds->cbs.outcome(g, k, code, text, relay, o);
	ds->cbs.done(g);
}

/* Every queued group gets the same outcome (DNS failure, all MX down). */
static void
fail_queue(struct dest *d, int code, const char *text, const char *relay,
           const struct tls_outcome *o)
{
	struct dgroup *g;
	while ((g = pop_group(d)) != NULL)
		group_fail(d->ds, g, code, text, relay, o);
}

/* The same with a reply from the table (mta/reply.h); a, b fill its "%s" marks. */
static void
fail_queue_r(struct dest *d, enum reply_id id, const char *a, const char *b)
{
	char text[700];

	reply_format(text, sizeof(text), id, a, b);
	fail_queue(d, (int)reply_code(id), text, NULL, NULL);
}

/* Pump every destination that has work: a global connection slot came free. */
static void
pump_all(struct dests *ds)
{
	for (size_t i = 0; i < DEST_BUCKETS; i++)
		for (struct dest *d = ds->buckets[i]; d; d = d->next)
			if (d->qhead)
				dest_pump(d);
}

static void
conn_close(struct dconn *k)
{
	struct dest *d = k->d;
	struct dests *ds = d->ds;
	bool at_cap = ds->nconns >= ds->srv->cfg->delivery_concurrency;

	loop_timer_free(k->idle_ev);
	loop_timer_free(k->hold_ev);
	if (k->tq)
		dns_cancel(k->tq);
	tls_req_clear(&k->req);
	for (struct dconn **pp = &d->conns; *pp; pp = &(*pp)->next_conn)
		if (*pp == k) {
			*pp = k->next_conn;
			break;
		}
	if (!k->ready)
		d->connecting--;
	dest_provider_close(k);
	d->active--;
	ds->nconns--;
	smtpc_free(k->c); /* safe inside its own callback */
	free(k->t);
	free(k);
	if (at_cap)
		pump_all(ds);
	else
		dest_pump(d);
}

static void
idle_remove(struct dconn *k)
{
	struct dconn **pp;
	for (pp = &k->d->idle; *pp; pp = &(*pp)->next_idle)
		if (*pp == k) {
			*pp = k->next_idle;
			break;
		}
	k->next_idle = NULL;
	loop_timer_stop(k->idle_ev);
}

static void
on_idle_timeout(void *arg)
{
	struct dconn *k = arg;
	idle_remove(k);
	smtpc_quit(k->c); /* it closes itself; we forget it */
	k->c = NULL;
	conn_close(k);
}

static void
conn_idle(struct dconn *k)
{
	if (k->idle_ev == NULL)
		k->idle_ev = loop_timer_new(k->d->ds->srv->base, false, on_idle_timeout, k);
	k->next_idle = k->d->idle;
	k->d->idle = k;
	loop_timer_add(k->idle_ev, IDLE_SECONDS * 1000);
}

/*
 * Claims from the group at index `from` on: true when that group's message
 * is claimed. While it is not, the claims of the n - 1 groups after it are
 * asked for too, so that the connections about to take them share one writer
 * transaction instead of waiting for each other's.
 */
static bool
claimed_from(struct dest *d, unsigned from, unsigned n)
{
	struct dgroup *g;
	int r;
	bool cancelled = false;

	for (;;) {
		unsigned i = from;
		for (g = d->qhead; i > 0 && g != NULL; i--)
			g = g->next;
		if (g == NULL)
			return !cancelled; /* the queue shrank under us: nothing to start */
		r = d->ds->cbs.claim(g, d);
		if (r != DEST_CLAIM_CANCEL)
			break;
		group_unlink(d, g);
		cancelled = true;
		d->ds->cbs.done(g); /* called off: nothing was sent for it */
	}
	/* a cancelled group further on is taken out when its turn comes */
	for (; r == DEST_CLAIM_WAIT && n > 1 && (g = g->next) != NULL; n--)
		d->ds->cbs.claim(g, d);
	return r == DEST_CLAIM_OK;
}

static unsigned
idle_count(const struct dest *d)
{
	unsigned n = 0;

	for (const struct dconn *k = d->idle; k; k = k->next_idle)
		n++;
	return n;
}

/* Give the connection its next group, or park it idle (also while its message is claimed). */
static void
conn_next(struct dconn *k)
{
	struct dgroup *g;
	struct smtpc_reply why;

	if (k->d->qhead != NULL && !dest_tls_reusable(k)) {
		/* never carry mail under a weaker TLS request than the one in force */
		log_info("event=conn_retired domain=%s relay=%s reason=\"TLS policy changed\"",
		         k->d->domain, smtpc_peer(k->c));
		smtpc_quit(k->c); /* it closes itself; we forget it */
		k->c = NULL;
		conn_close(k);
		return;
	}
	/* a transaction starts: its message is claimed first (the idle ones' next too) */
	while (k->d->qhead != NULL && claimed_from(k->d, 0, 1 + idle_count(k->d))) {
		g = pop_group(k->d);
		if (smtpc_check(k->c, &g->m, &why) != 0) {
			/* never downgrade or mangle: a clear permanent failure instead */
			group_fail(k->d->ds, g, why.code, why.text, smtpc_peer(k->c),
			           smtpc_tls_outcome(k->c));
			continue;
		}
		if (smtpc_send(k->c, &g->m) == 0) {
			k->cur = g;
			return;
		}
		/* not usable after all: put the group back and drop the connection */
		g->next = k->d->qhead;
		k->d->qhead = g;
		if (k->d->qtail == NULL)
			k->d->qtail = g;
		k->d->qlen++;
		conn_close(k);
		return;
	}
	conn_idle(k);
}

static void
on_ready(struct smtpc *c, void *arg)
{
	struct dconn *k = arg;
	struct dest *d = k->d;

	k->ready = true;
	d->connecting--;
	if (d->window < d->ds->srv->cfg->domain_concurrency)
		d->window++;
	log_debug("event=connected domain=%s relay=%s tls=%s", d->domain, smtpc_peer(c),
	          smtpc_tls_version(c));
	dest_tls_stats(k, smtpc_tls_outcome(c), true, true);
	conn_next(k);
}

static void
on_result(struct smtpc *c, void *arg, const struct smtpc_reply *r, size_t n)
{
	struct dconn *k = arg;
	struct dgroup *g = k->cur;
	struct dests *ds = k->d->ds;

	k->cur = NULL;
	if (n > g->m.nrcpts)
		n = g->m.nrcpts;
	for (size_t i = 0; i < n; i++) {
		if (r[i].code >= 200 && r[i].code < 300 && !k->d->tls_report)
			tlsstats_delivered(ds->stats, k->d->domain, k->t[k->ti].host,
			                   smtpc_tls_outcome(c));
		ds->cbs.outcome(g, i, r[i].code, r[i].text, smtpc_peer(c), smtpc_tls_outcome(c));
	}
	ds->cbs.done(g);
	if (dest_provider_result(k, r, n) && smtpc_usable(c)) {
		/* throttled: an open connection would hold the group's one slot for nothing */
		smtpc_quit(k->c); /* it closes itself; we forget it */
		k->c = NULL;
		conn_close(k);
	} else if (smtpc_usable(c) && dest_provider_wait(k->d))
		conn_idle(k); /* its provider group is backing off: the pump resumes it */
	else if (smtpc_usable(c))
		conn_next(k);
	else
		conn_close(k);
}

/*
 * Every target of k's walk failed: what is queued here would fail the same
 * way now (only when k is d's one connection: another may still get
 * through). A TLS refusal met on the walk is the outcome (4.7.x), else the
 * last failure.
 */
static void
walk_failed(struct dconn *k, const char *why)
{
	struct dest *d = k->d;

	if (d->active == 1 && k->tls_code)
		fail_queue(d, k->tls_code, k->tls_text, k->tls_relay[0] ? k->tls_relay : NULL,
		           &k->tls_out);
	else if (d->active == 1)
		fail_queue_r(d, R_DLV_ALL_MX_FAILED, d->domain, why);
	d->window = d->window > 1 ? d->window / 2 : 1;
	conn_close(k);
}

static void
on_hold(void *arg)
{
	if (!dest_provider_hold(arg, on_hold)) /* the group's delay has passed */
		conn_connect(arg);
}

static void
on_fail(struct smtpc *c, void *arg, enum smtpc_stage stage, const struct smtpc_reply *why)
{
	struct dconn *k = arg;
	struct dest *d = k->d;
	const struct tls_outcome *o = smtpc_tls_outcome(c);
	int code;

	if (stage == SMTPC_LOST) {
		/* an idle connection the server closed */
		idle_remove(k);
		conn_close(k);
		return;
	}
	log_info("event=connect_failed domain=%s relay=%s stage=%s reason=\"%s\"", d->domain,
	         smtpc_peer(c), smtpc_stage_name(stage), why->text);
	dest_provider_fail(k, why, smtpc_peer(c)); /* e.g. a 421 [TSS04] greeting */
	/* a required level is never retried in plaintext (RFC 7672 2.2, RFC 8461 5) */
	code =
	    tlspol_fail_reply(&k->req, stage, smtpc_peer(c), o->detail[0] ? o->detail : why->text,
	                      k->tls_text, sizeof(k->tls_text));
	if (code) {
		k->tls_code = code;
		k->tls_out = *o;
		snprintf(k->tls_relay, sizeof(k->tls_relay), "%s", smtpc_peer(c));
	}
	if (code || o->result != TLSRES_OK)
		dest_tls_stats(k, o, false, true);
	smtpc_free(k->c);
	k->c = NULL;
	if (stage == SMTPC_TLS && !k->no_tls && !code) {
		k->no_tls = true; /* opportunistic TLS: the same host in plaintext */
	} else if (++k->ti >= k->nt) {
		walk_failed(k, why->code > 0 ? k->said : why->text);
		return;
	} else {
		k->no_tls = false;
		if (dest_provider_hold(k, on_hold))
			return; /* the next MX is of a provider backing off: its group's delay */
	}
	conn_connect(k);
}

static const struct smtpc_cbs conn_cbs = {on_ready, on_result, on_fail};

static void
on_tlsa(void *arg, const struct dns_tlsa_result *res)
{
	struct dconn *k = arg;

	k->tq = NULL;
	tlspol_dest_tlsa_put(k->d->tp, k->t[k->ti].host, res);
	conn_connect(k);
}

static void
conn_connect(struct dconn *k)
{
	const struct config *cfg = k->d->ds->srv->cfg;
	struct smtpc_conf sc;
	bool tried = k->ti > 0;

	for (; k->ti < k->nt; k->ti++) {
		const struct dns_target *t = &k->t[k->ti];
		const struct sockaddr_storage *src =
		    t->addr.ss_family == AF_INET6 ? &cfg->source_ipv6 : &cfg->source_ipv4;
		if (!dest_tls_target(k, t, on_tlsa)) {
			if (k->tq != NULL)
				return; /* on_tlsa comes back here */
			continue;
		}
		memset(&sc, 0, sizeof(sc));
		sc.helo = cfg->helo_name ? cfg->helo_name : cfg->hostname;
		if (src->ss_family != 0) {
			sc.src = (const struct sockaddr *)src;
			sc.srclen = src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
			                                       : sizeof(struct sockaddr_in);
		}
		sc.tls = k->no_tls || k->req.level == TLSR_NONE ? NULL : k->d->ds->tls;
		sc.req = &k->req;
		sc.t_connect = cfg->smtp_connect_timeout;
		sc.t_banner = sc.t_cmd = cfg->smtp_command_timeout;
		sc.t_data = sc.t_block = sc.t_dot = cfg->smtp_data_timeout;
		k->c = smtpc_connect(k->d->ds->srv->base, &sc, t->host,
		                     (const struct sockaddr *)&t->addr, t->addrlen, &conn_cbs, k);
		if (k->c != NULL)
			return;
		log_warn("event=connect_failed domain=%s host=%s reason=\"socket or bind failed\"",
		         k->d->domain, t->host);
	}
	if (k->tls_code && tried) {
		walk_failed(k, k->tls_text); /* the rest of the walk was skipped for TLS */
		return;
	}
	/* no target could even be tried: a local fault (socket, bind) or a TLS
	 * policy that rules out every MX, which the next conn_open would meet at
	 * once too. Defer what is queued even when another connection is busy,
	 * or conn_close -> dest_pump -> conn_open would recurse without end. */
	if (k->tls_code)
		fail_queue(k->d, k->tls_code, k->tls_text, k->tls_relay[0] ? k->tls_relay : NULL,
		           &k->tls_out);
	else
		fail_queue_r(k->d, R_DLV_NO_CONNECTION, NULL, NULL);
	conn_close(k);
}

static void
conn_open(struct dest *d)
{
	struct dconn *k = xcalloc(1, sizeof(*k));
	k->d = d;
	k->t = xcalloc(d->nt, sizeof(*k->t));
	memcpy(k->t, d->t, d->nt * sizeof(*k->t));
	k->nt = d->nt;
	k->next_conn = d->conns;
	d->conns = k;
	d->active++;
	d->connecting++;
	d->ds->nconns++;
	dest_provider_go(d, k);
	conn_connect(k);
}

static void
on_resolved(void *arg, const struct dns_mx_result *res)
{
	struct dest *d = arg;
	const struct config *cfg = d->ds->srv->cfg;
	const struct route *rt = config_route(cfg, d->domain);

	d->q = NULL;
	if (d->q_start_ms) { /* 0 for a route to an IP literal: no DNS involved */
		metrics_observe(H_DNS_SECONDS, (double)(util_now_ms() - d->q_start_ms) / 1000.0);
		d->q_start_ms = 0;
	}
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_MX_NXDOMAIN: /* no such domain (5.1.2) / no MX host exists (5.4.4) */
		fail_queue_r(d, res->status == DNS_NXDOMAIN ? R_DLV_NXDOMAIN : R_DLV_MX_NXDOMAIN,
		             res->reason, NULL);
		return;
	case DNS_NULL_MX:
		/* RFC 7505 3: the domain accepts no mail, permanently */
		fail_queue_r(d, R_DLV_NULL_MX, d->domain, NULL);
		return;
	default:
		fail_queue_r(d, R_DLV_DNS_FAILED, res->reason, NULL);
		return;
	}
	free(d->t);
	d->t = xcalloc(res->ntargets, sizeof(*d->t));
	memcpy(d->t, res->targets, res->ntargets * sizeof(*d->t));
	d->nt = res->ntargets;
	d->t_at = time(NULL);
	tlspol_dest_reset(d->tp); /* TLSA asked again for the new targets */
	for (size_t i = 0; i < d->nt; i++) {
		unsigned port = rt && rt->port ? rt->port : cfg->smtp_port;
		struct sockaddr_storage *ss = &d->t[i].addr;
		if (ss->ss_family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		else
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	}
	dest_pump(d);
}

/* A route to an IP literal ("192.0.2.7", "[2001:db8::7]"): no DNS at all. */
static bool
route_literal(struct dest *d, const char *host)
{
	struct dns_target t;
	struct dns_mx_result res;
	char ip[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);

	memset(&t, 0, sizeof(t));
	if (host[0] == '[' && n > 2 && host[n - 1] == ']' && n - 2 < sizeof(ip)) {
		memcpy(ip, host + 1, n - 2);
		ip[n - 2] = '\0';
	} else {
		snprintf(ip, sizeof(ip), "%s", host);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t.addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t.addr;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		t.addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		t.addrlen = sizeof(*s6);
	} else {
		return false;
	}
	/* an admin's explicit route is trusted: no private-address policy here */
	snprintf(t.host, sizeof(t.host), "%s", host);
	d->literal = true;
	memset(&res, 0, sizeof(res));
	res.status = DNS_OK;
	res.targets = &t;
	res.ntargets = 1;
	on_resolved(d, &res);
	return true;
}

static void
on_sts(void *arg, const struct sts_view *v)
{
	struct dest *d = arg;

	d->sw = NULL;
	dest_tls_sts(d, v);
	dest_pump(d);
}

static void
dest_resolve(struct dest *d)
{
	const struct route *rt = config_route(d->ds->srv->cfg, d->domain);
	/* a route names the host to use instead of the domain's MX */
	const char *name = rt ? rt->host : d->domain;
	char *alabel = NULL;

	d->literal = false;
	if (rt && route_literal(d, rt->host))
		return;
	/* SMTPUTF8 domains (RFC 6531) are looked up by their A-label (RFC 5891) */
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p >= 0x80) {
			if (idn2_to_ascii_8z(name, &alabel, IDN2_NONTRANSITIONAL) != IDN2_OK) {
				fail_queue_r(d, R_DLV_BAD_IDN, name, NULL);
				return;
			}
			name = alabel;
			break;
		}
	/* MTA-STS (RFC 8461) is about the domain's own MX set: never for a route */
	if (rt == NULL && d->ds->srv->cfg->mta_sts && d->sw == NULL && !d->tls_report) {
		char low[256];
		size_t i;
		for (i = 0; name[i] && i < sizeof(low) - 1; i++)
			low[i] = (char)tolower((unsigned char)name[i]);
		low[i] = '\0';
		d->sw = sts_get(d->ds->sts, low, on_sts, d);
	}
	d->q_start_ms = util_now_ms();
	d->q = dns_resolve_mx(resolver_dns(d->ds->res), name, on_resolved, d);
	free(alabel);
	if (d->q != NULL)
		return;
	d->q_start_ms = 0;
	if (errno == EINVAL)
		fail_queue_r(d, R_DLV_BAD_DOMAIN, name, NULL);
	else
		fail_queue_r(d, R_DLV_DNS_START, NULL, NULL);
}

/* Connections that could be opened for d now. */
static unsigned
open_room(const struct dest *d)
{
	const struct config *cfg = d->ds->srv->cfg;
	unsigned a = d->window - d->active, b = cfg->delivery_concurrency - d->ds->nconns;
	unsigned c = (unsigned)d->qlen - d->connecting;

	return a < b ? (a < c ? a : c) : (b < c ? b : c);
}

static void
dest_pump(struct dest *d)
{
	const struct config *cfg = d->ds->srv->cfg;

	while (d->qhead) {
		if (dest_provider_wait(d))
			return; /* its provider group is backing off: a timer pumps d */
		if (d->idle) {
			struct dconn *k = d->idle;
			/* a transaction starts now: its message is claimed first */
			if (!claimed_from(d, 0, idle_count(d)))
				return;
			idle_remove(k);
			dest_provider_go(d, NULL);
			conn_next(k);
			continue;
		}
		if (d->qlen <= d->connecting || d->active >= d->window ||
		    d->ds->nconns >= cfg->delivery_concurrency)
			return;
		if (d->nt == 0 || time(NULL) - d->t_at > TARGETS_FRESH) {
			if (d->q == NULL)
				dest_resolve(d);
			return;
		}
		if (d->sw != NULL)
			return; /* the MX targets wait for the MTA-STS policy (on_sts pumps) */
		/*
		 * A new connection is for the first group that no connection being
		 * opened will take (index `connecting`): its message is claimed before
		 * the connection opens, so a crash in the greeting, EHLO or TLS counts.
		 */
		if (!claimed_from(d, d->connecting, open_room(d)))
			return;
		conn_open(d);
	}
}

void
dest_claim_wait(struct dest *d)
{
	d->claim_waits++;
}

void
dest_claim_done(struct dest *d, bool pump)
{
	d->claim_waits--;
	if (pump)
		dest_pump(d);
}

void
dest_enqueue(struct dests *ds, const char *domain, struct dgroup *g)
{
	struct dest *d = dest_get(ds, domain, g->tls_report);
	d->used = time(NULL);
	g->next = NULL;
	if (d->qtail)
		d->qtail->next = g;
	else
		d->qhead = g;
	d->qtail = g;
	d->qlen++;
	dest_pump(d);
}

void
dests_sweep(struct dests *ds, time_t now)
{
	for (size_t i = 0; i < DEST_BUCKETS; i++) {
		struct dest **pp = &ds->buckets[i], *d;
		while ((d = *pp) != NULL) {
			if (d->qhead == NULL && d->active == 0 && d->idle == NULL && d->q == NULL &&
			    d->sw == NULL && d->claim_waits == 0 &&
			    now - d->used >= (time_t)ds->srv->cfg->dest_idle_time) {
				log_info("event=dest_released domain=%s", d->domain);
				*pp = d->next;
				dest_provider_free(d);
				tlspol_dest_free(d->tp);
				free(d->t);
				free(d);
				continue;
			}
			pp = &d->next;
		}
	}
}

static void
on_sweep(void *arg)
{
	dests_sweep(arg, time(NULL));
}

struct dests *
dests_new(struct server *srv, struct resolver *res, SSL_CTX *tls, struct sts *sts,
          const struct dest_cbs *cbs)
{
	struct dests *ds = xcalloc(1, sizeof(*ds));
	unsigned idle = srv->cfg->dest_idle_time;

	ds->srv = srv;
	ds->res = res;
	ds->tls = tls;
	ds->sts = sts;
	ds->cbs = *cbs;
	ds->pump = dest_pump;
	ds->resolver_trusted = dns_resolver_trusted(resolver_dns(res));
	ds->stats = tlsstats_new(srv);
	dest_tls_startup(ds);
	/* memory per destination must not grow with every domain ever mailed */
	ds->sweep = loop_timer_new(srv->base, true, on_sweep, ds);
	if (ds->sweep)
		loop_timer_add(ds->sweep, (idle < SWEEP_MAX ? idle : SWEEP_MAX) * 1000);
	return ds;
}

/* At exit: a connection with its group (dropped: its job is freed by deliver_free). */
static void
conn_drop(struct dests *ds, struct dconn *k)
{
	smtpc_free(k->c); /* the loop has stopped: no QUIT exchange now */
	loop_timer_free(k->idle_ev);
	loop_timer_free(k->hold_ev);
	if (k->tq)
		dns_cancel(k->tq);
	tls_req_clear(&k->req);
	if (k->cur)
		ds->cbs.drop(k->cur);
	free(k->t);
	free(k);
}

void
dests_free(struct dests *ds)
{
	if (ds == NULL)
		return;
	loop_timer_free(ds->sweep);
	tlsstats_free(ds->stats);
	for (size_t i = 0; i < DEST_BUCKETS; i++) {
		struct dest *d, *n;
		for (d = ds->buckets[i]; d; d = n) {
			n = d->next;
			while (d->conns) {
				struct dconn *k = d->conns;
				d->conns = k->next_conn;
				conn_drop(ds, k);
			}
			for (struct dgroup *g; (g = pop_group(d)) != NULL;)
				ds->cbs.drop(g);
			if (d->q)
				dns_cancel(d->q);
			if (d->sw)
				sts_cancel(d->sw);
			dest_provider_free(d);
			tlspol_dest_free(d->tp);
			free(d->t);
			free(d);
		}
		ds->buckets[i] = NULL;
	}
	free(ds);
}
