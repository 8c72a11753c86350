/*
 * deliver: delivery jobs and their outcomes (see deliver.h).
 *
 * A job loads one message with its pending recipients on a worker thread,
 * splits the recipients into groups per destination domain (at most
 * rcpts_per_transaction each) and hands them to dest.c, which reports each
 * outcome back through the callbacks registered here. When every group has
 * an outcome, the job computes the next try (exponential backoff with
 * jitter), expires recipients past max_queue_lifetime, builds one RFC 3464
 * bounce for the failed ones, and records all of it in ONE spool
 * transaction through the writer thread. Only the 250s of a group done
 * before the last one are recorded earlier, in an apply of their own, so a
 * crash repeats as few deliveries as possible (delivery/record.c, which
 * also retries an apply until it lands). Nothing else in the spool changes
 * before that, so a crash mid-delivery means the message is simply tried
 * again. (Except the count of attempts that never finished: claim.c.)
 */
#include "mta/delivery/deliver_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "mta/async.h"
#include "mta/delivery/bounce.h"
#include "mta/delivery/bowner.h"
#include "mta/delivery/bdigest.h"
#include "mta/delivery/dlvlog.h"
#include "mta/delivery/smtpc_tls.h"
#include "mta/shared/config.h"
#include "mta/shared/addr.h"
#include "mta/shared/log.h"
#include "mta/shared/provider.h"
#include "mta/shared/util.h"
#include "mta/metrics.h"
#include "mta/reader.h"
#include "mta/reply.h"
#include "mta/delivery/resolver.h"
#include "mta/delivery/sched.h"
#include "mta/delivery/sts.h"
#include "mta/server.h"

struct load {
	struct djob *job;
	char dir[4096];
	char err[256];
};

static void
load_work(void *arg)
{
	struct load *l = arg;
	/* each worker thread reads the spool through its own handle */
	struct spool *sp = reader_spool(l->dir, l->err, sizeof(l->err));

	if (sp != NULL)
		spool_load_work(sp, l->job->id, &l->job->w, l->err, sizeof(l->err));
}

static void
job_free(struct djob *j)
{
	size_t i;
	if (j->prev)
		j->prev->next = j->next;
	else
		j->dl->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	job_unrecorded(j); /* at exit only: a job ends once every apply landed */
	if (j->w && j->res)
		for (i = 0; i < j->w->nrcpts; i++) {
			free(j->res[i].reply);
			free(j->res[i].relay);
			free(j->res[i].stored);
		}
	free(j->res);
	free(j->claim_waiters);
	free(j->bounce_body);
	free(j->digest);
	bounce_copy_clear(&j->bcopy);
	spool_work_free(j->w);
	free(j);
}

/* The job is over for the scheduler: sched_done, then freed. */
static void
job_end(struct djob *j)
{
	struct deliver *dl = j->dl;
	bool suspect = j->suspect;

	sched_done(dl->srv->sched, j->id);
	dl->busy--;
	job_free(j);
	suspect_end(dl, suspect);
}

static void
job_unclaimed(struct writer_job *wj)
{
	struct djob *j = wj->arg;
	if (wj->status != 0) /* the count stays one too high: never more than that */
		log_err("qid=%s event=spool_error error=\"%s\"", wj->claim.qid, wj->err);
	job_end(j);
}

/*
 * The attempt ends without an outcome to record: give its claim back. While
 * stopping the writer may be gone before this returns: deliver_free gives
 * it back then.
 */
static void
job_release(struct djob *j)
{
	struct deliver *dl = j->dl;

	if (!j->claimed) {
		job_end(j);
		return;
	}
	if (dl->stopping) {
		dl->abandoned = xrealloc(dl->abandoned, (dl->nabandoned + 1) * sizeof(int64_t));
		dl->abandoned[dl->nabandoned++] = j->id;
		job_end(j);
		return;
	}
	job_claim_write(j, SPOOL_UNCLAIM, 0, job_unclaimed);
}

/* "550 5.1.1 text" -> "5.1.1" (RFC 3463); without one, the class default. */
static void
dsn_of(int code, const char *text, char *out, size_t outlen)
{
	unsigned rc, a, b, c;

	if (reply_parse(text, &rc, &a, &b, &c) && (int)a == code / 100) {
		snprintf(out, outlen, "%u.%u.%u", a, b, c);
		return;
	}
	snprintf(out, outlen, "%d.0.0", code / 100 == 2 ? 2 : code / 100 == 5 ? 5 : 4);
}

/* A provider's reason code only for a reply from one of its MX hosts (relay
 * "host[ip]"): another MX's 5.7.606 must not get Microsoft's delisting page. */
static const struct provider_reply *
reply_provider(int code, const char *text, const char *relay)
{
	return code >= 400 ? provider_classify_from(text, relay) : NULL;
}

/*
 * delays=a/b/c/d of an outcome now (README "Log lines"): a from arrival to
 * this attempt's start (job_arrival);
 * b to the group's first claim (a connection opened or handed to it); c to
 * MAIL FROM; d to now. Stages not reached take no time: with no claim (a DNS
 * failure, an expiry) all is b, with no MAIL FROM all after the claim is c.
 */
static char *
delays_of(const struct djob *j, const struct dgroup *g, char *out, size_t outlen)
{
	int64_t now = util_now_ms(), slot = g && g->t_slot ? g->t_slot : now;
	int64_t tx = g && g->t_tx ? g->t_tx : now;

	return dlvlog_delays(out, outlen, (double)(j->pickup_wall_ms - j->arrival_ms) / 1000.0,
	                     (double)(slot - j->pickup_ms) / 1000.0, (double)(tx - slot) / 1000.0,
	                     (double)(now - tx) / 1000.0);
}

static void
job_record(struct djob *j, const struct dgroup *g, size_t i, int code, const char *text,
           const char *relay, const struct tls_outcome *o)
{
	struct rres *r = &j->res[i];
	const char *status;
	char q[600], qa[300], dl[64];
	/* a large provider's known reply: its reason code (README: provider-aware delivery) */
	const struct provider_reply *pr = reply_provider(code, text, relay);

	/* copy before freeing: callers may pass r->reply or r->relay back in */
	char *nreply = xstrdup(text), *nrelay = relay ? xstrdup(relay) : NULL;
	r->decided = true;
	dsn_of(code, text, r->dsn, sizeof(r->dsn));
	free(r->reply);
	r->reply = nreply;
	free(r->relay);
	r->relay = nrelay;
	free(r->stored);
	r->stored = NULL;
	if (relay) { /* the spool's last_reply names the host (queue show reads it alike) */
		/* the copies: relay and text may be the r->relay and r->reply freed above */
		size_t n = strlen(r->relay) + strlen(r->reply) + 32;
		r->stored = xmalloc(n);
		provider_said(r->stored, n, r->relay, r->reply);
	}
	if (code >= 200 && code < 300) {
		r->state = SPOOL_RCPT_DONE;
		status = "sent";
	} else if (code >= 500) {
		r->state = SPOOL_RCPT_FAILED;
		status = "bounced";
	} else {
		r->state = SPOOL_RCPT_PENDING;
		status = "deferred";
	}
	if (pr != NULL)
		metrics_inc((enum metric_counter)(M_PROV_MS_IP_THROTTLED + pr->reason));
	/* delays= after the keys that were there before it: existing greps keep matching */
	log_info("qid=%s event=delivery to=\"<%s>\" relay=%s delay=%.1f attempt_time=%.1f delays=%s "
	         "dsn=%s status=%s tls=%s tls_policy=%s tls_verified=%s reason_code=%s reply=\"%s\"",
	         j->w->qid, LOG_Q(qa, j->w->rcpts[i].address), r->relay ? r->relay : "none",
	         (double)(util_wall_ms() - j->arrival_ms) / 1000.0,
	         (util_now_ms() - j->start_ms) / 1000.0, delays_of(j, g, dl, sizeof(dl)), r->dsn,
	         status, o && o->tls ? o->version : "none",
	         o ? tls_kind_name(o->kind) : "none", o && o->verified ? "yes" : "no",
	         pr ? pr->code : "none", log_sanitize(q, sizeof(q), r->reply, strlen(r->reply)));
}

static time_t
backoff(const struct config *c, int attempts)
{
	uint64_t d = c->retry_min;
	uint32_t rnd = 0;
	for (int i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	if (d > c->retry_max)
		d = c->retry_max;
	/* +-10% jitter so a burst of deferrals does not come back as one burst */
	if (getrandom(&rnd, sizeof(rnd), 0) == sizeof(rnd) && d >= 10)
		d = d - d / 10 + rnd % (d / 5 + 1);
	return (time_t)d;
}

/* The recipients of apply a that have an outcome leave the queue counts. */
static void
qstats_applied(struct djob *j, const struct japply *a)
{
	struct qstats *q = sched_qstats(j->dl->srv->sched);

	for (size_t i = 0; i < a->n; i++) {
		if (a->sres[i].state == SPOOL_RCPT_PENDING)
			continue;
		for (size_t k = 0; k < j->w->nrcpts; k++)
			if (j->w->rcpts[k].id == a->sres[i].rcpt_id) {
				qstats_rcpt_done(q, j->id, j->w->rcpts[k].address);
				break;
			}
	}
}

/* The postmaster's copy of j's DSN is in the spool: counted, scheduled, logged. */
static void
bcopy_queued(struct djob *j)
{
	struct sched *s = j->dl->srv->sched;
	char qa[300];

	log_info("qid=%s event=bounce_copy bounce_qid=%s to=\"<%s>\"", j->w->qid, j->bcopy.in.qid,
	         LOG_Q(qa, j->bcopy.rcpt));
	qstats_add(sched_qstats(s), j->bcopy.in.id, j->bcopy.in.received, false, j->bcopy.in.rcpts,
	           j->bcopy.in.nrcpts);
	sched_add(s, j->bcopy.in.id, time(NULL));
}

/* dl->applied (record.c): apply a of j is durable. */
static void
job_applied(struct djob *j, struct japply *a)
{
	struct deliver *dl = j->dl;

	qstats_applied(j, a);
	if (a->removed) /* gone from the spool with this apply: exactly once (spool_apply) */
		dlvlog_removed(j->w->qid, "done");
	/* counted once the outcome is durable, so a crash never counts an attempt twice */
	for (size_t i = 0; i < a->n; i++) {
		int st = a->sres[i].state;
		metrics_inc(st == SPOOL_RCPT_DONE     ? M_DELIVERED
		            : st == SPOOL_RCPT_FAILED ? M_BOUNCED
		                                      : M_DEFERRED);
	}
	if (a->last) {
		j->claimed = false; /* spool_apply cleared the count */
		j->finished = true;
		for (size_t i = 0; i < j->w->nrcpts; i++)
			if (j->res[i].state == SPOOL_RCPT_PENDING) {
				sched_add(dl->srv->sched, j->id, a->wj.upd.next_try);
				break;
			}
		/* bounce.id 0: skipped, the message was deleted meanwhile */
		if (j->has_bounce && j->bounce.id > 0) {
			qstats_add(sched_qstats(dl->srv->sched), j->bounce.id, j->bounce.received,
			           false, j->bounce.rcpts, j->bounce.nrcpts);
			sched_add(dl->srv->sched, j->bounce.id, time(NULL));
		}
		if (j->has_bounce && j->bcopy.body && j->bcopy.in.id > 0)
			bcopy_queued(j);
	}
	/* in flight for the scheduler until every apply landed: no attempt starts meanwhile */
	if (j->finished && j->applies == NULL)
		job_end(j);
}

/* RFC 3463 4.4.7: delivery time expired; the pending recipient i fails. */
static void
job_expire(struct djob *j, size_t i, time_t now, int attempts)
{
	unsigned life = j->dl->srv->cfg->max_queue_lifetime;
	struct rres *r = &j->res[i];
	char text[700], qa[300], n[16];

	log_info("qid=%s event=expired to=\"<%s>\" age=%lld lifetime=%u attempts=%d", j->w->qid,
	         LOG_Q(qa, j->w->rcpts[i].address), (long long)(now - j->w->received), life,
	         attempts);
	snprintf(n, sizeof(n), "%u",
	         life >= 86400  ? life / 86400
	         : life >= 3600 ? life / 3600
	                        : life);
	reply_format(text, sizeof(text), R_DLV_EXPIRED, n,
	             life >= 86400  ? " days"
	             : life >= 3600 ? " hours"
	                            : " seconds",
	             r->reply ? r->reply : "not tried");
	job_record(j, NULL, i, (int)reply_code(R_DLV_EXPIRED), text, r->relay, NULL);
	snprintf(r->dsn, sizeof(r->dsn), "4.4.7");
}

/* Every group has an outcome: record them all (after the claim, if one is being written). */
static void
job_finish(struct djob *j)
{
	const struct config *c = j->dl->srv->cfg;
	time_t now = time(NULL);
	int attempts = j->w->attempts + 1;
	time_t next = now + backoff(c, attempts);
	/* strictly past: received has whole seconds, so ">=" could expire up to 1 s early */
	bool expired = now - j->w->received > (time_t)c->max_queue_lifetime;
	size_t i, nfailed = 0;

	if (j->claim == JOB_CLAIMING) {
		/* the writer stores claims after outcomes: let the claim land first, or the
		 * outcome's reset to 0 would come before the +1 */
		j->finish_after_claim = true;
		return;
	}
	if (j->cancelled) { /* the claim failed: nothing was sent, nothing to record */
		sched_add(j->dl->srv->sched, j->id, now + (time_t)c->retry_min);
		job_release(j);
		return;
	}
	metrics_observe(H_DELIVERY_SECONDS, (double)(util_now_ms() - j->start_ms) / 1000.0);
	struct japply *a = xcalloc(1, sizeof(*a));
	a->sres = xcalloc(j->w->nrcpts, sizeof(*a->sres));
	for (i = 0; i < j->w->nrcpts; i++) {
		struct rres *r = &j->res[i];
		if (r->state == SPOOL_RCPT_PENDING && expired)
			job_expire(j, i, now, attempts);
		if (r->state == SPOOL_RCPT_FAILED)
			nfailed++;
		if (r->recorded) /* a 250 of an earlier group: its own apply has it */
			continue;
		a->sres[a->n].rcpt_id = j->w->rcpts[i].id;
		a->sres[a->n].state = r->state;
		a->sres[a->n].next_try = next;
		a->sres[a->n++].reply = r->stored ? r->stored : r->reply;
	}
	/* never a bounce for a bounce (RFC 5321 6.1, 3464) */
	if (nfailed && bounce_wanted(j->w->sender))
		job_make_bounce(j);
	a->last = true;
	a->wj.upd.msg_id = j->id;
	a->wj.upd.results = a->sres;
	a->wj.upd.nresults = a->n;
	a->wj.upd.next_try = next;
	a->wj.upd.attempts = attempts;
	a->wj.upd.bounce = j->has_bounce ? &j->bounce : NULL;
	a->wj.upd.digest = j->digest;
	a->wj.upd.ndigest = j->ndigest;
	a->wj.upd.bounce_copy = j->has_bounce && j->bcopy.body ? &j->bcopy.in : NULL;
	job_apply(j, a);
}

/*
 * A group done before the job's last one: its 250s are recorded at once, not
 * after the slowest other destination (a crash in between would deliver
 * them again). Failures and deferrals wait for the last apply: a bounce
 * commits with the failures that caused it, and a deferral lost in a crash
 * costs nothing.
 */
static void
group_record(struct djob *j, const struct dgroup *g)
{
	struct japply *a = xcalloc(1, sizeof(*a));

	a->sres = xcalloc(g->n, sizeof(*a->sres));
	for (size_t k = 0; k < g->n; k++) {
		struct rres *r = &j->res[g->idx[k]];
		if (r->state != SPOOL_RCPT_DONE)
			continue;
		r->recorded = true;
		a->sres[a->n].rcpt_id = j->w->rcpts[g->idx[k]].id;
		a->sres[a->n].state = r->state;
		a->sres[a->n++].reply = r->stored ? r->stored : r->reply;
	}
	if (a->n == 0) {
		free(a->sres);
		free(a);
		return;
	}
	a->wj.upd.msg_id = j->id;
	a->wj.upd.results = a->sres;
	a->wj.upd.nresults = a->n;
	a->wj.upd.results_only = 1;
	job_apply(j, a);
}

/* dest_cbs.outcome: recipient k of g has an outcome for this attempt. */
static void
group_outcome(struct dgroup *g, size_t k, int code, const char *text, const char *relay,
              const struct tls_outcome *o)
{
	job_record(g->job, g, g->idx[k], code, text, relay, o);
}

/* dest_cbs.drop: free g alone, its job untouched (at exit). */
static void
group_free(struct dgroup *g)
{
	free(g->idx);
	free(g->rcpts);
	free(g);
}

/*
 * dest_cbs.done: g has every outcome (or was called off: j->cancelled); its
 * 250s are recorded now, and the job's last group finishes the job.
 */
static void
group_done(struct dgroup *g)
{
	struct djob *j = g->job;

	if (--j->groups_left > 0 && !j->cancelled)
		group_record(j, g);
	group_free(g);
	if (j->groups_left == 0)
		job_finish(j);
}

/* dest_cbs.claim: the message is claimed before anything is sent for it (claim.c). */
static int
group_claim(struct dgroup *g, struct dest *d)
{
	if (g->t_slot == 0) /* delays=: the end of b */
		g->t_slot = util_now_ms();
	return job_claim(g->job, d);
}

static const struct dest_cbs group_cbs = {group_outcome, group_done, group_free, group_claim};

static bool
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

/* Split the pending recipients into groups per domain and hand them out. */
static void
job_dispatch(struct djob *j)
{
	const struct config *c = j->dl->srv->cfg;
	size_t n = j->w->nrcpts, i, k, ngroups = 0;
	struct dgroup **groups = xcalloc(n, sizeof(*groups));
	const char **gdom = xcalloc(n, sizeof(*gdom));

	for (i = 0; i < n; i++) {
		const char *dom = addr_domain(j->w->rcpts[i].address);
		if (dom == NULL)
			dom = "";
		/* the open group for this domain, if it still has room */
		for (k = 0; k < ngroups; k++)
			if (strcasecmp(gdom[k], dom) == 0 &&
			    groups[k]->n < c->rcpts_per_transaction)
				break;
		if (k == ngroups) {
			struct dgroup *g = xcalloc(1, sizeof(*g));
			g->job = j;
			g->idx = xcalloc(c->rcpts_per_transaction, sizeof(*g->idx));
			g->rcpts = xcalloc(c->rcpts_per_transaction, sizeof(*g->rcpts));
			groups[ngroups] = g;
			gdom[ngroups++] = dom;
		}
		groups[k]->idx[groups[k]->n] = i;
		groups[k]->rcpts[groups[k]->n++] = j->w->rcpts[i].address;
	}
	/* count all first: a group may finish before the last one is handed out */
	j->groups_left = ngroups;
	for (k = 0; k < ngroups; k++) {
		struct dgroup *g = groups[k];
		/* t_sent: MAIL FROM stamps g->t_tx, the end of c in delays= */
		struct smtpc_msg m = {j->w->sender,   g->rcpts,     g->n,         j->w->body,
		                      j->w->body_len, j->need_8bit, j->need_utf8, &g->t_tx};
		g->m = m;
		g->tls_report = (j->w->flags & SPOOL_F_TLSRPT) != 0;
		dest_enqueue(j->dl->dests, gdom[k], g);
	}
	free(groups);
	free(gdom);
}

/*
 * The message's arrival in milliseconds for delay= and delays=: intake's
 * note (sched_arrived) when it is there and agrees with the stored second (a
 * row id used again by a DSN must not take an old message's), else the
 * stored second.
 */
static void
job_arrival(struct djob *j)
{
	int64_t ms = sched_arrival(j->dl->srv->sched, j->id);

	if (ms / 1000 == (int64_t)j->w->received)
		j->arrival_ms = ms;
	else
		j->arrival_ms = (int64_t)j->w->received * 1000;
}

static void
job_loaded(void *arg)
{
	struct load *l = arg;
	struct djob *j = l->job;

	if (j->w == NULL) {
		log_err("id=%lld event=load_failed error=\"%s\"", (long long)j->id, l->err);
		/* a passing fault (EMFILE, SQLITE_BUSY) must not drop it from the schedule */
		if (strstr(l->err, "no such message") == NULL)
			sched_add(j->dl->srv->sched, j->id,
			          time(NULL) + (time_t)j->dl->srv->cfg->retry_min);
		free(l);
		job_release(j);
		return;
	}
	free(l);
	if (j->w->nrcpts == 0 || j->dl->stopping) {
		job_release(j);
		return;
	}
	if (!job_admit(j))
		return;
	j->res = xcalloc(j->w->nrcpts, sizeof(*j->res));
	j->need_utf8 = (j->w->flags & SPOOL_F_SMTPUTF8) != 0;
	j->need_8bit = (j->w->flags & SPOOL_F_8BITMIME) || has_8bit(j->w->body, j->w->body_len);
	j->start_ms = util_now_ms();
	job_arrival(j);
	job_dispatch(j);
}

static void
job_load(struct djob *j)
{
	struct load *l = xcalloc(1, sizeof(*l));

	l->job = j;
	snprintf(l->dir, sizeof(l->dir), "%s", j->dl->srv->cfg->data_dir);
	async_run(j->dl->srv->async, load_work, job_loaded, l);
}

/* The scheduler's start callback: load the message (a worker thread); job_loaded goes on. */
void
deliver_start(int64_t id, void *arg)
{
	struct deliver *dl = ((struct server *)arg)->deliver;
	struct djob *j = xcalloc(1, sizeof(*j));

	j->dl = dl;
	j->id = id;
	j->pickup_ms = util_now_ms(); /* delays=: the end of a */
	j->pickup_wall_ms = util_wall_ms();
	j->next = dl->jobs;
	if (dl->jobs)
		dl->jobs->prev = j;
	dl->jobs = j;
	dl->busy++;
	job_load(j);
}

/* Fill the schedule from the spool: every message with a pending recipient. */
static int
load_schedule(struct deliver *dl, char *err, size_t errlen)
{
	struct spool *sp;
	struct spool_due *due = NULL;
	size_t n = 0, i, stored, held;
	int64_t t0 = util_now_ms();

	if (spool_open(&sp, dl->srv->cfg->data_dir, err, errlen) != 0)
		return -1;
	/* the queue's counts (qstats) in the same start-up, one more pass */
	if (spool_load_pending(sp, &due, &n, err, errlen) != 0 ||
	    spool_queue_stats_load(sp, qstats_load_row, sched_qstats(dl->srv->sched), err,
	                           errlen) != 0) {
		spool_close(sp);
		return -1;
	}
	spool_close(sp);
	qstats_load_done(sched_qstats(dl->srv->sched));
	for (i = 0; i < n; i++)
		sched_add(dl->srv->sched, due[i].id, due[i].next_try);
	free(due);
	qstats_count(sched_qstats(dl->srv->sched), &stored, &held);
	log_info("event=queue_loaded messages=%zu stored=%zu held=%zu ms=%lld", n, stored, held,
	         (long long)(util_now_ms() - t0));
	return 0;
}

struct deliver *
deliver_new(struct server *srv, char *err, size_t errlen)
{
	const struct config *c = srv->cfg;
	struct deliver *dl = xcalloc(1, sizeof(*dl));
	struct dns_opts o;

	dl->srv = srv;
	dl->end = job_end;
	dl->finish = job_finish;
	dl->applied = job_applied;
	memset(&o, 0, sizeof(o));
	o.servers = c->dns_servers;
	o.family = c->address_family == FAM_IPV4   ? DNS_FAMILY_IPV4
	           : c->address_family == FAM_IPV6 ? DNS_FAMILY_IPV6
	                                           : DNS_FAMILY_ANY;
	o.allow_private = c->allow_private_mx;
	o.timeout_ms = (int)c->dns_timeout_ms;
	o.tries = (int)c->dns_tries;
	dl->res = resolver_new(srv->base, &o, err, errlen);
	if (dl->res == NULL)
		goto fail;
	/* main.c made it before the privilege drop (smtpc_tls.h); tests may not have */
	if (srv->client_tls != NULL && SSL_CTX_up_ref(srv->client_tls) == 1)
		dl->tls = srv->client_tls;
	else
		dl->tls = smtpc_tls_ctx_new(c, err, errlen);
	if (dl->tls == NULL)
		goto fail;
	dl->sts = sts_new(srv, dl->res); /* NULL with mta_sts = no */
	dl->dests = dests_new(srv, dl->res, dl->tls, dl->sts, &group_cbs);
	if (load_schedule(dl, err, errlen) != 0)
		goto fail;
	return dl;
fail:
	deliver_free(dl);
	return NULL;
}

void
deliver_stop(struct deliver *dl)
{
	dl->stopping = true;
}

unsigned
deliver_busy(const struct deliver *dl)
{
	return dl->busy;
}

void
deliver_set_tls(struct deliver *dl, SSL_CTX *tls)
{
	if (tls == NULL || SSL_CTX_up_ref(tls) != 1)
		return;
	SSL_CTX_free(dl->tls);
	dl->tls = tls;
	dests_set_tls(dl->dests, tls);
	sts_set_trust(dl->sts, tls); /* MTA-STS policy fetches: the same tls_ca_file */
}

/* Claims of attempts that did not end before exit (see deliver.h). */
static void
release_claims(struct deliver *dl)
{
	struct spool_claim *cl, **v;
	struct spool *sp;
	size_t n = dl->nabandoned, i = 0;
	char err[256];

	for (struct djob *j = dl->jobs; j; j = j->next)
		n += j->claimed;
	if (n == 0)
		return;
	cl = xcalloc(n, sizeof(*cl));
	v = xcalloc(n, sizeof(*v));
	for (size_t k = 0; k < dl->nabandoned; k++)
		cl[i++].msg_id = dl->abandoned[k];
	for (struct djob *j = dl->jobs; j; j = j->next)
		if (j->claimed)
			cl[i++].msg_id = j->id;
	for (i = 0; i < n; i++) {
		cl[i].op = SPOOL_UNCLAIM;
		v[i] = &cl[i];
	}
	if (spool_open(&sp, dl->srv->cfg->data_dir, err, sizeof(err)) != 0 ||
	    spool_claim(sp, v, n, err, sizeof(err)) != 0)
		log_err("event=spool_error error=\"%s\"", err);
	else
		log_info("event=attempts_abandoned messages=%zu", n);
	if (sp)
		spool_close(sp);
	free(cl);
	free(v);
}

void
deliver_free(struct deliver *dl)
{
	if (dl == NULL)
		return;
	release_claims(dl);
	free(dl->abandoned);
	free(dl->waiting);
	dests_free(dl->dests);
	while (dl->jobs) /* attempts still under way at exit (job_free unlinks) */
		job_free(dl->jobs);
	sts_free(dl->sts); /* before the resolver it queries */
	if (dl->res)
		resolver_free(dl->res);
	SSL_CTX_free(dl->tls);
	free(dl);
}
