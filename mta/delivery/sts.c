/*
 * sts: MTA-STS (RFC 8461) per recipient domain, on the loop thread (see
 * sts.h). One struct sts_dom per domain ever asked about: its cached policy
 * (loaded from the spool at start-up, then fetched), and while a TXT lookup
 * or fetch runs, the waiters that share it.
 *
 * Per sts_get: the TXT record _mta-sts.DOMAIN (c-ares; cached by the dns
 * module for its TTL), then a fetch only when its id differs from the cached
 * policy's or the cached policy has expired (RFC 8461 5.1). A failed fetch
 * keeps the cached policy and is not tried again for the same id for
 * STS_RETRY_S. With no TXT record a cached policy applies until it expires
 * (5.1: a vanished record is not a reason to drop the policy early).
 */
#include "mta/delivery/sts.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "mta/delivery/https.h"
#include "mta/delivery/resolver.h"
#include "mta/event.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/sts.h"
#include "mta/shared/util.h"
#include "mta/writer.h"

#define STS_BUCKETS 1024
#define STS_RETRY_S 300 /* a failed fetch for one id is not repeated sooner */
/*
 * The shortest time a fetched policy is cached, whatever its max_age (0
 * included): without it a tiny max_age means a GET and a spool write on
 * every delivery round. RFC 8461 3.2 says clients SHOULD cache a policy
 * "for up to" max_age; the floor outlives it only while the TXT id stays
 * the same (a new id is fetched at once, 3.1: the id changes with the
 * policy), i.e. a policy is applied at most 5 minutes after its record
 * vanished or its max_age ran out.
 */
#define STS_MIN_CACHE_S 300
#define STS_SWEEP_S 600 /* how often domains that remember nothing in force are freed */

enum sts_src { SRC_NONE, SRC_SPOOL, SRC_FETCH, SRC_CACHE };

struct sts_wait {
	struct sts_dom *d;
	struct sts_wait **head; /* the list it is on: d->waiters or d->firing */
	struct sts_wait *next, *prev;
	sts_cb cb;
	void *arg;
};

struct sts_dom {
	struct sts *s;
	struct sts_dom *next;  /* bucket chain */
	struct sts_dom *knext; /* s->kicked list */
	char *domain;
	/* the cached policy (RFC 8461 5.1) */
	bool have;
	char id[STS_ID_MAX + 1];
	struct sts_policy pol;
	char *text;
	int64_t fetched, expires; /* unix seconds */
	enum sts_src src;         /* where the cached policy came from; logged once per source */
	bool logged;
	/* the last failed fetch: not retried for that id before retry_at */
	char fail_id[STS_ID_MAX + 1];
	int64_t retry_at;
	/* this round */
	bool busy, kicked;
	char txt_id[STS_ID_MAX + 1];
	enum tls_result problem;
	char detail[256];
	struct dns_query *dq;
	struct https_req *hr;
	struct sts_wait *waiters, *firing;
};

struct sts {
	struct server *srv;
	struct dns *dns;
	struct https *https;
	struct event *kick;  /* delivers rounds that ended inside sts_get */
	struct event *sweep; /* frees expired domains (sts_sweep) */
	struct sts_dom *kicked;
	struct sts_dom *buckets[STS_BUCKETS];
};

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static size_t
bucket(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (STS_BUCKETS - 1);
}

static struct sts_dom *
dom_find(struct sts *s, const char *domain, bool create)
{
	size_t b = bucket(domain);
	struct sts_dom *d;

	for (d = s->buckets[b]; d; d = d->next)
		if (strcmp(d->domain, domain) == 0)
			return d;
	if (!create)
		return NULL;
	d = xcalloc(1, sizeof *d);
	d->s = s;
	d->domain = xstrdup(domain);
	d->next = s->buckets[b];
	s->buckets[b] = d;
	return d;
}

/*
 * Free d when nothing runs for it and it remembers nothing still in force
 * at now: no unexpired policy, no failed fetch whose retry time is ahead.
 * Domains without MTA-STS cost no memory between deliveries; expired ones
 * (up to STS_POLICY_MAX of text each) go at the latest with the next sweep.
 * true: d was freed.
 */
static bool
dom_forget(struct sts_dom *d, int64_t now)
{
	struct sts_dom **pp = &d->s->buckets[bucket(d->domain)];

	if (d->busy || d->kicked || d->waiters || d->firing || (d->have && d->expires > now) ||
	    (d->fail_id[0] && d->retry_at > now))
		return false;
	while (*pp != d)
		pp = &(*pp)->next;
	*pp = d->next;
	sts_policy_free(&d->pol);
	free(d->text);
	free(d->domain);
	free(d);
	return true;
}

size_t
sts_sweep(struct sts *s, int64_t now)
{
	size_t left = 0;

	if (s == NULL)
		return 0;
	for (size_t b = 0; b < STS_BUCKETS; b++) {
		struct sts_dom *d = s->buckets[b], *next;
		for (; d; d = next) {
			next = d->next;
			left += dom_forget(d, now) ? 0 : 1;
		}
	}
	return left;
}

static void
on_sweep(void *arg)
{
	struct sts *s = arg;
	size_t left = sts_sweep(s, now_s());

	log_debug("event=sts_sweep domains=%zu", left);
}

static void
set_problem(struct sts_dom *d, enum tls_result r, const char *detail)
{
	d->problem = r;
	/* logged as reason="..." and reported: no quotes, no control bytes */
	log_sanitize(d->detail, sizeof d->detail, detail, strlen(detail));
}

/* ---- waiters ------------------------------------------------------------ */

static void
wait_unlink(struct sts_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		*w->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
}

static void
wait_push(struct sts_wait **head, struct sts_wait *w)
{
	w->head = head;
	w->prev = NULL;
	w->next = *head;
	if (*head)
		(*head)->prev = w;
	*head = w;
}

static bool
usable(const struct sts_dom *d, bool fresh)
{
	return d->have && (fresh || d->expires > now_s());
}

static void
log_use(struct sts_dom *d, enum sts_src src)
{
	static const char *const names[] = {"none", "spool", "fetch", "cache"};

	if (src == SRC_CACHE && d->logged) {
		log_debug("event=sts_policy domain=%s id=%s mode=%s source=cache", d->domain, d->id,
		          sts_mode_name(d->pol.mode));
		return;
	}
	log_info("event=sts_policy domain=%s id=%s mode=%s source=%s max_age=%ld expires=%lld",
	         d->domain, d->id, sts_mode_name(d->pol.mode),
	         names[src == SRC_CACHE ? d->src : src], d->pol.max_age, (long long)d->expires);
	d->logged = true;
}

/* End the round: every waiter hears the same view (RFC 8461 5.1 cache rules applied). */
static void
round_end(struct sts_dom *d, bool fresh)
{
	struct sts_view v = {.mode = STS_MODE_NONE, .id = "", .policy_text = ""};
	struct sts_wait *w;
	char detail[sizeof d->detail];

	d->busy = false;
	if (usable(d, fresh)) {
		v.mode = d->pol.mode;
		v.id = d->id;
		v.mx = (const char *const *)d->pol.mx;
		v.nmx = d->pol.nmx;
		v.policy_text = d->text;
		log_use(d, fresh ? SRC_FETCH : SRC_CACHE);
	}
	/* a copy: a waiter starting a new round clears d->detail for the later ones */
	v.problem = d->problem;
	memcpy(detail, d->detail, sizeof detail);
	v.problem_detail = detail;
	/* waiters may start a new round (d->waiters) or cancel others (d->firing) */
	d->firing = d->waiters;
	for (w = d->firing; w; w = w->next)
		w->head = &d->firing;
	d->waiters = NULL;
	while ((w = d->firing) != NULL) {
		wait_unlink(w);
		w->cb(w->arg, &v);
		free(w);
	}
	dom_forget(d, now_s());
}

/* ---- the spool copy ------------------------------------------------------ */

struct sts_put {
	struct writer_job job;
	struct spool_sts_row row;
	char *domain, *id, *mode, *mx, *policy;
};

static int
put_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct sts_put *p = arg;

	return spool_sts_put(sp, &p->row, now_s(), err, errlen);
}

static void
put_done(struct writer_job *job)
{
	struct sts_put *p = job->arg;

	if (job->status != 0)
		log_warn("event=sts_store_failed domain=%s reason=\"%s\"", p->domain, job->err);
	free(p->domain);
	free(p->id);
	free(p->mode);
	free(p->mx);
	free(p->policy);
	free(p);
}

/* Keep the fetched policy across restarts (sts_policies, through the writer). */
static void
store(struct sts_dom *d)
{
	struct sts_put *p;
	size_t n = 1;

	if (d->s->srv->writer == NULL)
		return; /* tests without a spool */
	p = xcalloc(1, sizeof *p);
	for (size_t i = 0; i < d->pol.nmx; i++)
		n += strlen(d->pol.mx[i]) + 1;
	p->mx = xcalloc(1, n);
	for (size_t i = 0; i < d->pol.nmx; i++)
		strcat(strcat(p->mx, i ? "\n" : ""), d->pol.mx[i]);
	p->domain = xstrdup(d->domain);
	p->id = xstrdup(d->id);
	p->mode = xstrdup(sts_mode_name(d->pol.mode));
	p->policy = xstrdup(d->text);
	p->row = (struct spool_sts_row){p->domain, p->id,          p->mode,    p->mx,
	                                p->policy, d->pol.max_age, d->fetched, d->expires};
	p->job.kind = WRITER_FN;
	p->job.fn = put_fn;
	p->job.arg = p;
	p->job.done = put_done;
	writer_submit(d->s->srv->writer, &p->job);
}

/* ---- fetch ---------------------------------------------------------------- */

static void
fetch_failed(struct sts_dom *d, enum tls_result r, const char *why)
{
	metrics_inc(M_STS_FETCH_ERR);
	set_problem(d, r, why);
	snprintf(d->fail_id, sizeof d->fail_id, "%s", d->txt_id);
	d->retry_at = now_s() + STS_RETRY_S;
	log_warn("event=sts_fetch_failed domain=%s id=%s result=%s cached=%s reason=\"%s\"",
	         d->domain, d->txt_id, tls_result_name(r), usable(d, false) ? d->id : "none",
	         d->detail);
	round_end(d, false); /* RFC 8461 5.1: a cached policy keeps applying */
}

/* Install a policy: text parsed already into pol (taken over). */
static void
adopt(struct sts_dom *d, const char *id, struct sts_policy *pol, const char *text, size_t len,
      int64_t fetched, int64_t expires)
{
	sts_policy_free(&d->pol);
	free(d->text);
	d->pol = *pol;
	memset(pol, 0, sizeof *pol);
	d->text = xstrndup(text, len);
	snprintf(d->id, sizeof d->id, "%s", id);
	d->fetched = fetched;
	d->expires = expires;
	d->have = true;
	d->logged = false;
}

static void
on_fetch(void *arg, const struct https_result *r)
{
	struct sts_dom *d = arg;
	struct sts_policy pol;
	char err[200], why[300];
	int64_t t = now_s();

	d->hr = NULL;
	if (r->status != HTTPS_OK) {
		snprintf(why, sizeof why, "%s: %s", https_status_name(r->status), r->error);
		fetch_failed(d,
		             r->status == HTTPS_E_CERT ? TLSRES_STS_WEBPKI_INVALID
		                                       : TLSRES_STS_POLICY_FETCH_ERROR,
		             why);
		return;
	}
	if (sts_policy_parse(r->body, r->len, &pol, err, sizeof err) != 0) {
		snprintf(why, sizeof why, "policy: %s", err);
		fetch_failed(d, TLSRES_STS_POLICY_INVALID, why);
		return;
	}
	/* RFC 8461 3.3/5.1: the id is the TXT record's; max_age counts from now */
	adopt(d, d->txt_id, &pol, r->body, r->len, t,
	      t + (pol.max_age > STS_MIN_CACHE_S ? pol.max_age : STS_MIN_CACHE_S));
	metrics_inc(M_STS_FETCH_OK);
	d->src = SRC_FETCH;
	d->fail_id[0] = '\0';
	store(d);
	round_end(d, true);
}

static void
fetch(struct sts_dom *d)
{
	char url[320];

	snprintf(url, sizeof url, "https://mta-sts.%s/.well-known/mta-sts.txt", d->domain);
	d->hr = https_get(d->s->https, url, "text/plain", STS_POLICY_MAX, on_fetch, d);
	if (d->hr == NULL)
		fetch_failed(d, TLSRES_STS_POLICY_FETCH_ERROR, "bad policy URL");
}

/* ---- the TXT record --------------------------------------------------------- */

static void
on_txt(void *arg, const struct dns_txt_result *res)
{
	struct sts_dom *d = arg;
	struct sts_txt recs[64];
	size_t n = 0;
	char err[200];
	enum sts_txt_status st = STS_TXT_NONE;

	d->dq = NULL;
	if (res->status == DNS_TEMPFAIL) {
		log_debug("event=sts_txt_failed domain=%s reason=\"%s\"", d->domain, res->reason);
		round_end(d, false); /* the cached policy, if any (RFC 8461 5.1) */
		return;
	}
	for (; res->status == DNS_OK && n < res->n && n < 64; n++)
		recs[n] = (struct sts_txt){res->txt[n].data, res->txt[n].len};
	if (n)
		st = sts_txt_parse(recs, n, d->txt_id, err, sizeof err);
	if (st == STS_TXT_INVALID)
		set_problem(d, TLSRES_STS_POLICY_INVALID, err);
	if (st != STS_TXT_OK) {
		round_end(d, false); /* no (valid) record: a cached policy still applies */
		return;
	}
	if (usable(d, false) && strcmp(d->id, d->txt_id) == 0) {
		round_end(d, false);
		return;
	}
	if (strcmp(d->fail_id, d->txt_id) == 0 && now_s() < d->retry_at) {
		set_problem(d, TLSRES_STS_POLICY_FETCH_ERROR,
		            "fetch failed recently; retried later");
		round_end(d, false);
		return;
	}
	fetch(d);
}

/* ---- rounds ---------------------------------------------------------------- */

static void
on_kick(void *arg)
{
	struct sts *s = arg;
	struct sts_dom *d;

	while ((d = s->kicked) != NULL) {
		s->kicked = d->knext;
		d->kicked = false;
		round_end(d, false);
	}
}

/* Start a round: the TXT lookup; when even that cannot start, end it from the kick timer. */
static void
round_start(struct sts_dom *d)
{
	char name[300];

	d->busy = true;
	d->problem = TLSRES_OK;
	d->detail[0] = '\0';
	snprintf(name, sizeof name, "_mta-sts.%s", d->domain);
	d->dq = dns_resolve_txt(d->s->dns, name, on_txt, d);
	if (d->dq == NULL) {
		set_problem(d, TLSRES_STS_POLICY_FETCH_ERROR, "cannot look up the TXT record");
		d->kicked = true;
		d->knext = d->s->kicked;
		d->s->kicked = d;
		loop_timer_add(d->s->kick, 0);
	}
}

struct sts_wait *
sts_get(struct sts *s, const char *domain, sts_cb cb, void *arg)
{
	struct sts_dom *d;
	struct sts_wait *w;

	if (s == NULL)
		return NULL;
	d = dom_find(s, domain, true);
	w = xcalloc(1, sizeof *w);
	w->d = d;
	w->cb = cb;
	w->arg = arg;
	wait_push(&d->waiters, w);
	if (!d->busy)
		round_start(d);
	return w;
}

void
sts_cancel(struct sts_wait *w)
{
	if (w == NULL)
		return;
	wait_unlink(w); /* the round goes on: its result fills the cache */
	free(w);
}

/* ---- start-up and end --------------------------------------------------------- */

/* One sts_policies row: the policy text is parsed again, so memory and spool agree. */
static int
load_row(void *arg, const struct spool_sts_row *r)
{
	struct sts *s = arg;
	struct sts_policy pol;
	struct sts_dom *d;
	char err[200];

	if (sts_policy_parse(r->policy, strlen(r->policy), &pol, err, sizeof err) != 0) {
		log_warn("event=sts_spool_skipped domain=%s reason=\"%s\"", r->domain, err);
		return 0;
	}
	d = dom_find(s, r->domain, true);
	adopt(d, r->id, &pol, r->policy, strlen(r->policy), r->fetched, r->expires);
	d->src = SRC_SPOOL;
	return 0;
}

static void
load_spool(struct sts *s)
{
	struct spool *sp;
	char err[256];

	if (spool_open(&sp, s->srv->cfg->data_dir, err, sizeof err) != 0) {
		log_warn("event=sts_load_failed reason=\"%s\"", err);
		return;
	}
	if (spool_sts_load(sp, now_s(), load_row, s, err, sizeof err) != 0)
		log_warn("event=sts_load_failed reason=\"%s\"", err);
	spool_close(sp);
}

struct sts *
sts_new(struct server *srv, struct resolver *res)
{
	struct sts *s;
	char err[256];

	if (!srv->cfg->mta_sts)
		return NULL;
	s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->dns = resolver_dns(res);
	s->kick = loop_timer_new(srv->base, false, on_kick, s);
	s->sweep = loop_timer_new(srv->base, true, on_sweep, s);
	s->https = https_new(srv->base, s->dns, srv->client_tls, err, sizeof err);
	if (s->https == NULL || s->kick == NULL || s->sweep == NULL) {
		log_err("event=sts_off reason=\"%s\"", s->https ? "no timer" : err);
		sts_free(s);
		return NULL;
	}
	if (srv->cfg->data_dir)
		load_spool(s);
	loop_timer_add(s->sweep, STS_SWEEP_S * 1000);
	return s;
}

void
sts_free(struct sts *s)
{
	if (s == NULL)
		return;
	for (size_t b = 0; b < STS_BUCKETS; b++) {
		struct sts_dom *d;
		while ((d = s->buckets[b]) != NULL) {
			s->buckets[b] = d->next;
			if (d->dq)
				dns_cancel(d->dq);
			https_cancel(d->hr);
			while (d->waiters)
				sts_cancel(d->waiters);
			sts_policy_free(&d->pol);
			free(d->text);
			free(d->domain);
			free(d);
		}
	}
	https_free(s->https); /* cancels fetches: their callbacks never fire */
	loop_timer_free(s->kick);
	loop_timer_free(s->sweep);
	free(s);
}

void
sts_set_trust(struct sts *s, struct ssl_ctx_st *trust)
{
	if (s != NULL)
		https_set_trust(s->https, trust);
}
