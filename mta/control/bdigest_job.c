/*
 * bdigest_job (control): the daily digest of a bounce owner's failures
 * (bounce_owner = WHO ADDRESS digest, issue 15 item 5) and the control verb
 * BOUNCE-DIGEST that sends the digests due now (mxrelayctl queue
 * bounce-digest).
 *
 * Every day at 00:20 UTC, each owner with failures waiting in
 * delivery/bdigest.c gets one plain-text message listing them (time, queue
 * id, sender, recipient, status, reason; at most DIGEST_LINES_MAX, then "N
 * more"), from the null sender <> like a DSN (RFC 3834: automatic mail
 * never answered by more automatic mail), handed to intake like a local
 * submission and delivered by the relay itself. An owner with nothing
 * waiting gets no message. The entries are taken when the message is built:
 * a digest refused by intake (logged, event=bounce_digest_refused) is lost;
 * each failure had its own DSN anyway.
 */
#include "mta/control/control_int.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/control/jsonw.h"
#include "mta/delivery/bdigest.h"
#include "mta/intake/content.h"
#include "mta/intake/dkimsign.h"
#include "mta/intake/intake.h"
#include "mta/server.h"
#include "mta/shared/addr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "spool/spool.h"

#define DIGEST_AT (20 * 60)      /* seconds after 00:00 UTC */
#define DIGEST_LINES_MAX 1000    /* failures listed per message */

struct bdigest_job {
	struct server *srv;
	struct event *timer;
	struct drun *run;
};

struct drun {
	struct bdigest_job *job;
	struct ctl_conn *c; /* NULL for the timer's run */
	char *owner;
	char qid[SPOOL_QID_LEN + 1];
	unsigned queued, refused;
};

static void next_owner(struct drun *r);

/* Append the header and the list for owner to b (CRLF lines, none over 998 octets). */
static void
digest_text(struct evbuffer *b, const char *host, const char *from_dom, const char *owner,
            const struct bdigest_entry *v, size_t n, size_t dropped)
{
	char date[64], rnd[17] = "0", stamp[32];
	struct tm tm;
	size_t i;

	util_rfc5322_date(date, sizeof date, time(NULL));
	(void)util_random_hex(rnd, 16);
	evbuffer_add_printf(b,
	                    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
	                    "Subject: Undelivered mail digest: %zu recipient%s\r\nDate: %s\r\n"
	                    "Message-ID: <digest.%s@%s>\r\nAuto-Submitted: auto-generated\r\n"
	                    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	                    from_dom, owner, n + dropped, n + dropped == 1 ? "" : "s", date, rnd,
	                    from_dom);
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
	if (n + dropped > i)
		evbuffer_add_printf(b, "\r\n... and %zu more (not listed).\r\n", n + dropped - i);
}

/* Feed msg (CRLF lines) to the content rules, dot-stuffed as DATA is. */
static void
feed(struct content *ct, const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		content_line_unstuffed(ct, p, n);
		p += n;
	}
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
	free(r->owner);
	free(r);
}

static void
submitted(void *arg, const struct intake_result *res)
{
	struct drun *r = arg;

	if (res->id == R_QUEUED) {
		r->queued++;
		log_info("qid=%s event=bounce_digest to=\"<%s>\"", r->qid, r->owner);
	} else {
		r->refused++;
		log_warn("event=bounce_digest_refused to=\"<%s>\" reason=\"%s\"", r->owner,
		         res->text ? res->text : "");
	}
	next_owner(r);
}

/* One owner's digest into intake; 0, or -1 when none is waiting. */
static int
submit_one(struct drun *r, const char *owner)
{
	struct server *srv = r->job->srv;
	struct evbuffer *b = evbuffer_new();
	struct bdigest_entry *v;
	struct intake_env env = {0};
	char received[512], date[64];
	size_t n, dropped;
	struct content *ct;

	free(r->owner);
	r->owner = xstrdup(owner);
	if (b == NULL || bdigest_take(r->owner, &v, &n, &dropped) != 0) {
		if (b)
			evbuffer_free(b);
		return -1;
	}
	digest_text(b, srv->cfg->hostname, bdigest_from_domain(srv->cfg, srv->dkim, r->owner),
	            r->owner, v, n, dropped);
	free(v);
	util_make_qid(r->qid);
	util_rfc5322_date(date, sizeof date, time(NULL));
	snprintf(received, sizeof received,
	         "Received: by %s (mxrelay) with local id %s\r\n\t(bounce digest);\r\n\t%s\r\n",
	         srv->cfg->hostname, r->qid, date);
	ct = content_new(srv, r->qid, "", received);
	feed(ct, (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
	env.log_id = "bdigest";
	env.qid = r->qid;
	env.sender = "";
	env.rcpts = (const char *const *)&r->owner;
	env.nrcpts = 1;
	env.client_ip = "local (bounce digest)";
	env.log_who = "ip=local bounce_digest=yes";
	intake_submit(srv, &env, ct, submitted, r);
	return 0;
}

static void
next_owner(struct drun *r)
{
	const char *owner;

	while ((owner = bdigest_next_owner()) != NULL && !r->job->srv->draining)
		if (submit_one(r, owner) == 0)
			return; /* submitted() goes on */
	run_end(r);
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
	job->run = r;
	if (c)
		c->waiting = true;
	next_owner(r);
	return 0;
}

/* Seconds from now to the next 00:20 UTC. */
static time_t
next_delay(void)
{
	time_t now = time(NULL);
	time_t at = (now / 86400) * 86400 + DIGEST_AT;

	return (at > now ? at : at + 86400) - now;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bdigest_job *job = arg;
	struct timeval tv = {next_delay(), 0};

	(void)fd;
	(void)what;
	if (!job->srv->draining)
		(void)run_start(job, NULL);
	evtimer_add(job->timer, &tv);
}

struct bdigest_job *
bdigest_job_new(struct server *srv)
{
	struct bdigest_job *job = xcalloc(1, sizeof(*job));
	struct timeval tv = {next_delay(), 0};

	job->srv = srv;
	job->timer = evtimer_new(srv->base, on_timer, job);
	if (job->timer)
		evtimer_add(job->timer, &tv);
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
	if (job->timer)
		event_free(job->timer);
	bdigest_clear();
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
			         "are refused until one exists\"",
			         o->address, o->line, c->hostname);
	}
}
