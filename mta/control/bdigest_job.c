/*
 * bdigest_job (control): the daily digest of a bounce owner's failures
 * (bounce_owner = WHO ADDRESS digest, issue 15 item 5) and the control verb
 * BOUNCE-DIGEST that sends the digests due now (mxrelayctl queue
 * bounce-digest).
 *
 * Every day at 00:20 UTC (daily.c), each owner with failures waiting in the
 * spool (schema 9, spool_bdigest.c: stored by delivery with the failures
 * themselves, so a restart keeps them) gets one plain-text message listing
 * them (time, queue id, sender, recipient, status, reason; at most
 * DIGEST_LINES_MAX, then "N more"), from the null sender <> like a DSN
 * (RFC 3834: automatic mail never answered by more automatic mail), handed
 * to intake like a local submission and delivered by the relay itself. An
 * owner with nothing waiting gets no message. One owner after the other:
 * its entries are read on a worker, and removed through the writer only
 * once intake has queued its digest; a digest refused by intake (logged,
 * event=bounce_digest_refused) keeps them for the next run. A crash between
 * the digest's commit and the removal sends those failures again in the
 * next digest (at least once, never lost).
 */
#include "mta/control/control_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/async.h"
#include "mta/control/jsonw.h"
#include "mta/intake/dkimsign.h"
#include "mta/intake/intake.h"
#include "mta/server.h"
#include "mta/shared/addr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/reader.h"
#include "mta/shared/util.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define DIGEST_AT (20 * 60)      /* seconds after 00:00 UTC */
#define DIGEST_LINES_MAX 1000    /* failures listed per message */

struct bdigest_job {
	struct server *srv;
	struct daily *timer;
	struct drun *run;
};

struct drun {
	struct bdigest_job *job;
	struct ctl_conn *c; /* NULL for the timer's run */
	char *data_dir;
	struct spool_bdigest_set set; /* the owner being sent; set.owner "" at the start */
	char after[SPOOL_BDIGEST_FIELD]; /* owners up to this one are done in this run */
	char *owner;                     /* set.owner as intake's recipient list */
	char qid[SPOOL_QID_LEN + 1];
	struct writer_job wj; /* the removal of a queued digest's entries */
	int rc;
	char err[256];
	unsigned queued, refused;
};

static void next_owner(struct drun *r);

/* Append the header and the list for owner to b (CRLF lines, none over 998 octets). */
static void
digest_text(struct evbuffer *b, const char *host, const char *from_dom, const char *owner,
            const struct spool_bdigest *v, size_t n, uint64_t more)
{
	uint64_t all = n + more;
	char date[64], rnd[17] = "0", stamp[32];
	struct tm tm;
	size_t i;

	util_rfc5322_date(date, sizeof date, time(NULL));
	(void)util_random_hex(rnd, 16);
	evbuffer_add_printf(b,
	                    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
	                    "Subject: Undelivered mail digest: %llu recipient%s\r\nDate: %s\r\n"
	                    "Message-ID: <digest.%s@%s>\r\nAuto-Submitted: auto-generated\r\n"
	                    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	                    from_dom, owner, (unsigned long long)all, all == 1 ? "" : "s", date,
	                    rnd, from_dom);
	evbuffer_add_printf(b,
	                    "This is the mail delivery system at %s.\r\n\r\n"
	                    "The recipients below failed since the last digest, for mail whose\r\n"
	                    "delivery notices go to you (bounce_owner ... digest). Each failure\r\n"
	                    "also had its own notice.\r\n",
	                    host);
	for (i = 0; i < n && i < DIGEST_LINES_MAX; i++) {
		gmtime_r(&v[i].when, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
		evbuffer_add_printf(b, "\r\n%s queue id %s\r\n  from <%s> to <%s>\r\n  %s %s\r\n",
		                    stamp, v[i].qid, v[i].sender, v[i].rcpt, v[i].status,
		                    v[i].reason);
	}
	if (all > i)
		evbuffer_add_printf(b, "\r\n... and %llu more (not listed).\r\n",
		                    (unsigned long long)(all - i));
}

static void
run_end(struct drun *r)
{
	struct bdigest_job *job = r->job;

	if (r->c) {
		struct evbuffer *b = evbuffer_new();
		struct jw w;
		jw_init(&w, b);
		jw_obj(&w, NULL);
		jw_int(&w, "digests", r->queued);
		jw_int(&w, "refused", r->refused);
		jw_end(&w);
		ctl_reply(r->c, b);
		evbuffer_free(b);
	}
	job->run = NULL;
	spool_bdigest_set_free(&r->set);
	free(r->data_dir);
	free(r->owner);
	free(r);
}

static int
forget_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct drun *r = arg;

	return spool_bdigest_done(sp, &r->set, err, errlen);
}

/* The queued digest's entries are removed (or stay, logged, for the next digest). */
static void
forgotten(struct writer_job *wj)
{
	struct drun *r = wj->arg;

	if (wj->status != 0)
		log_warn("event=bounce_digest_keep to=\"<%s>\" error=\"%s\" note=\"the next digest "
		         "lists these failures again\"",
		         r->owner, wj->err);
	next_owner(r);
}

static void
submitted(void *arg, const struct intake_result *res)
{
	struct drun *r = arg;

	if (res->id != R_QUEUED) {
		r->refused++;
		log_warn("event=bounce_digest_refused to=\"<%s>\" reason=\"%s\" note=\"kept for the "
		         "next digest\"",
		         r->owner, res->text ? res->text : "");
		next_owner(r);
		return;
	}
	r->queued++;
	log_info("qid=%s event=bounce_digest to=\"<%s>\" failures=%llu", r->qid, r->owner,
	         (unsigned long long)(r->set.n + r->set.more));
	memset(&r->wj, 0, sizeof r->wj);
	r->wj.kind = WRITER_FN;
	r->wj.fn = forget_fn;
	r->wj.done = forgotten;
	r->wj.arg = r;
	writer_submit(r->job->srv->writer, &r->wj);
}

/* The loaded owner's digest into intake. */
static void
submit_one(struct drun *r)
{
	struct server *srv = r->job->srv;
	struct evbuffer *b = evbuffer_new();
	struct intake_env env = {0};

	free(r->owner);
	r->owner = xstrdup(r->set.owner);
	if (b == NULL) { /* out of memory: the entries stay for the next digest */
		r->refused++;
		next_owner(r);
		return;
	}
	digest_text(b, srv->cfg->hostname, bdigest_from_domain(srv->cfg, srv->dkim, r->owner),
	            r->owner, r->set.v, r->set.n, r->set.more);
	util_make_qid(r->qid);
	env.log_id = "bdigest";
	env.qid = r->qid;
	env.sender = "";
	env.rcpts = (const char *const *)&r->owner;
	env.nrcpts = 1;
	env.client_ip = "local (bounce digest)";
	env.log_who = "ip=local bounce_digest=yes";
	daily_submit(srv, &env, "bounce digest", (const char *)evbuffer_pullup(b, -1),
	             evbuffer_get_length(b), submitted, r);
	evbuffer_free(b);
}

/* Worker: the next owner's entries (read-only handle). */
static void
load_work(void *arg)
{
	struct drun *r = arg;
	struct spool *sp = reader_spool(r->data_dir, r->err, sizeof r->err);

	spool_bdigest_set_free(&r->set);
	r->rc = sp ? spool_bdigest_load(sp, r->after, DIGEST_LINES_MAX, &r->set, r->err,
	                                sizeof r->err)
	           : -1;
}

static void
load_done(void *arg)
{
	struct drun *r = arg;

	if (r->rc != 0)
		log_warn("event=bounce_digest_failed error=\"%s\"", r->err);
	if (r->rc != 0 || r->set.owner[0] == '\0' || r->job->srv->draining) {
		run_end(r);
		return;
	}
	snprintf(r->after, sizeof r->after, "%s", r->set.owner);
	submit_one(r);
}

static void
next_owner(struct drun *r)
{
	if (r->job->srv->draining) {
		run_end(r);
		return;
	}
	async_run(r->job->srv->async, load_work, load_done, r);
}

static int
run_start(struct bdigest_job *job, struct ctl_conn *c)
{
	struct drun *r;

	if (job->run)
		return -1;
	r = xcalloc(1, sizeof(*r));
	r->job = job;
	r->c = c;
	r->data_dir = xstrdup(job->srv->cfg->data_dir);
	job->run = r;
	if (c)
		c->waiting = true;
	next_owner(r);
	return 0;
}

static void
on_timer(void *arg)
{
	(void)run_start(arg, NULL);
}

struct bdigest_job *
bdigest_job_new(struct server *srv)
{
	struct bdigest_job *job = xcalloc(1, sizeof(*job));

	job->srv = srv;
	job->timer = daily_new(srv, DIGEST_AT, 0, on_timer, job);
	return job;
}

unsigned
bdigest_busy(const struct bdigest_job *job)
{
	return job && job->run ? 1 : 0;
}

void
bdigest_job_free(struct bdigest_job *job)
{
	if (job == NULL)
		return;
	if (job->run) {
		job->run->c = NULL; /* its connection is closed by ctl_free */
		run_end(job->run);
	}
	daily_free(job->timer);
	free(job);
}

void
bdigest_verb(struct bdigest_job *job, struct ctl_conn *c, char *arg)
{
	if (*arg) {
		ctl_error(c, NULL, "BOUNCE-DIGEST takes no argument");
		return;
	}
	if (c->srv->draining) {
		ctl_error(c, NULL, "shutting down");
		return;
	}
	if (run_start(job, c) != 0)
		ctl_error(c, NULL, "a digest run is in progress; try again later");
}

const char *
bdigest_from_domain(const struct config *c, const struct dkimsign *dk, const char *owner)
{
	const char *dom = addr_domain(owner);

	if (dkimsign_has(dk, c->hostname) || dom == NULL || !dkimsign_has(dk, dom))
		return c->hostname;
	return dom;
}

void
bdigest_warn_unsigned(const struct config *c, const struct dkimsign *dk, FILE *fp)
{
	if (!c->dkim_refuse_unsigned)
		return;
	for (const struct bounce_owner_conf *o = c->bounce_owners; o; o = o->next) {
		const char *dom = bdigest_from_domain(c, dk, o->address);
		if (!o->digest || dkimsign_has(dk, dom))
			continue;
		if (fp)
			fprintf(fp,
			        "mxrelayd: %s:%d: bounce_owner: dkim_unsigned = refuse and no "
			        "dkim_key for %s or %s: the digests to %s are refused until one "
			        "exists\n",
			        c->path ? c->path : "(default)", o->line, c->hostname,
			        addr_domain(o->address) ? addr_domain(o->address) : "?", o->address);
		else
			log_warn("event=bounce_digest_unsigned to=\"<%s>\" line=%d note=\"dkim_unsigned "
			         "= refuse and no dkim_key for %s or the owner's domain: its digests "
			         "are refused (kept for the next run) until one exists\"",
			         o->address, o->line, c->hostname);
	}
}
