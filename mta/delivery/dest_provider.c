/*
 * dest_provider: provider-aware pacing of the destinations (dest_int.h).
 *
 * A large provider throttles by sending IP across all of its MX hosts
 * (Microsoft 4.7.650, Gmail 4.7.28, Yahoo TSS04: mta/shared/provider.c), so
 * backing off the one host that said so only moves the load to the next MX
 * and to every other domain it hosts. The destinations are grouped by MX
 * host suffix instead: after a rate-limit reply from any host of a group,
 * the whole group runs one connection at a time, each new connection or
 * transaction waiting `delay` after the previous start. The delay starts at
 * provider_backoff_min, doubles with each further rate-limit reply up to
 * provider_backoff_max, and halves with each 2xx until below the minimum,
 * where the backoff ends. Destinations outside every group are untouched.
 * Never: fails or defers a recipient (the reply itself does that).
 */
#include <stdio.h>

#include "mta/delivery/dest_int.h"
#include "mta/event.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

#define PROV_POLL_MS 250 /* recheck of a destination waiting for its group's one connection */

static enum provider_group
dest_group(const struct dest *d)
{
	return d->nt > 0 ? provider_group_of_host(d->t[0].host) : PROVIDER_NONE;
}

static void
set_delay(struct dests *ds, enum provider_group g, unsigned delay, const char *state,
          const char *why)
{
	ds->prov[g].delay = delay;
	metrics_gauge_set((enum metric_gauge)(G_PROV_BACKOFF_MICROSOFT + g), delay);
	log_info("event=provider_backoff group=%s delay=%u state=%s reason_code=%s",
	         provider_group_name(g), delay, state, why);
}

void
dest_provider_reply(struct dconn *k, int code, const char *text)
{
	struct dests *ds = k->d->ds;
	const struct config *cfg = ds->srv->cfg;
	enum provider_group g = provider_group_of_host(k->t[k->ti].host);
	const struct provider_reply *pr;
	struct prov_state *ps;
	unsigned d;

	if (g == PROVIDER_NONE)
		return;
	ps = &ds->prov[g];
	if (code >= 200 && code < 300) {
		/* recovering one step per success (halving), not all at once */
		if (ps->delay == 0)
			return;
		d = ps->delay / 2 >= cfg->provider_backoff_min ? ps->delay / 2 : 0;
		set_delay(ds, g, d, d ? "recovering" : "recovered", "none");
		return;
	}
	pr = provider_classify(text);
	if (pr == NULL || !pr->rate_limit || pr->group != g)
		return; /* only a provider's own reply slows its group */
	d = ps->delay ? ps->delay * 2 : cfg->provider_backoff_min;
	if (d > cfg->provider_backoff_max || d < ps->delay)
		d = cfg->provider_backoff_max;
	ps->next_ms = util_now_ms() + (int64_t)d * 1000;
	metrics_inc((enum metric_counter)(M_PROV_BACKOFF_MICROSOFT + g));
	set_delay(ds, g, d, "backoff", pr->code);
}

bool
dest_provider_hold(struct dconn *k, loop_timer_fn resume)
{
	enum provider_group g = provider_group_of_host(k->t[k->ti].host);
	struct prov_state *ps;
	int64_t now = util_now_ms();

	if (g == PROVIDER_NONE || k->d->ds->prov[g].delay == 0)
		return false;
	ps = &k->d->ds->prov[g];
	if (ps->next_ms <= now) {
		ps->next_ms = now + (int64_t)ps->delay * 1000; /* this start counts */
		return false;
	}
	if (k->hold_ev == NULL)
		k->hold_ev = loop_timer_new(k->d->ds->srv->base, false, resume, k);
	if (k->hold_ev == NULL)
		return false;
	log_info("event=provider_hold domain=%s host=%s group=%s wait_ms=%lld", k->d->domain,
	         k->t[k->ti].host, provider_group_name(g), (long long)(ps->next_ms - now));
	loop_timer_add(k->hold_ev, (unsigned)(ps->next_ms - now));
	return true;
}

void
dest_provider_fail(struct dconn *k, const struct smtpc_reply *why, const char *peer)
{
	if (why->code <= 0)
		return;
	dest_provider_reply(k, why->code, why->text);
	/* only the provider of the host that said it may classify it (provider.h) */
	provider_said(k->said, sizeof(k->said), peer, why->text);
}

bool
dest_provider_result(struct dconn *k, const struct smtpc_reply *r, size_t n)
{
	size_t ok = n;

	/* one step per transaction: a rate-limit reply wins over the 2xx of others */
	for (size_t i = 0; i < n; i++) {
		const struct provider_reply *pr = provider_classify(r[i].text);
		if (pr != NULL && pr->rate_limit) {
			dest_provider_reply(k, r[i].code, r[i].text);
			return true;
		}
		if (r[i].code >= 200 && r[i].code < 300 && ok == n)
			ok = i;
	}
	if (ok < n)
		dest_provider_reply(k, r[ok].code, r[ok].text);
	return false;
}

static void
on_prov_timer(void *arg)
{
	struct dest *d = arg;

	d->ds->pump(d);
}

bool
dest_provider_wait(struct dest *d)
{
	enum provider_group g = dest_group(d);
	const struct prov_state *ps;
	int64_t now, wait;

	if (g == PROVIDER_NONE || d->ds->prov[g].delay == 0)
		return false;
	ps = &d->ds->prov[g];
	now = util_now_ms();
	if (now >= ps->next_ms && (ps->active == 0 || d->idle != NULL))
		return false;
	wait = ps->next_ms > now ? ps->next_ms - now : PROV_POLL_MS;
	if (d->prov_ev == NULL)
		d->prov_ev = loop_timer_new(d->ds->srv->base, false, on_prov_timer, d);
	if (d->prov_ev != NULL)
		loop_timer_add(d->prov_ev, (unsigned)(wait < PROV_POLL_MS ? PROV_POLL_MS : wait));
	return true;
}

void
dest_provider_go(struct dest *d, struct dconn *k)
{
	enum provider_group g = dest_group(d);
	struct prov_state *ps;

	if (k != NULL)
		k->grp = g;
	if (g == PROVIDER_NONE)
		return;
	ps = &d->ds->prov[g];
	if (k != NULL)
		ps->active++;
	if (ps->delay > 0)
		ps->next_ms = util_now_ms() + (int64_t)ps->delay * 1000;
}

void
dest_provider_close(struct dconn *k)
{
	if (k->grp != PROVIDER_NONE && k->d->ds->prov[k->grp].active > 0)
		k->d->ds->prov[k->grp].active--;
}

void
dest_provider_free(struct dest *d)
{
	loop_timer_free(d->prov_ev);
	d->prov_ev = NULL;
}
