/*
 * tlsrpt (control): the daily SMTP TLS reports (RFC 8460) and the control
 * verb TLS-SEND-REPORTS [YYYY-MM-DD] (a complete UTC day: before today).
 *
 * A run: (1) on a worker, read the outbound TLS counters of the days asked
 * for from spool.db (read-only handle, spool_tlsrpt_due) of every (day,
 * domain) that has no tlsrpt_sent row yet, at most RPT_ITEMS_MAX pairs
 * (event=tlsrpt_capped: the next run takes the rest); (2) on the loop, one
 * (day, domain) after the other: TXT _smtp._tls.DOMAIN through delivery's
 * resolver (rptnet.h), tlsrpt_txt_parse, the JSON report gzipped once, then
 * per rua URI: mailto: -> a multipart/report message handed to intake like
 * a local submission (DKIM-signed with tlsrpt_from's domain key, spooled
 * and delivered by the relay itself; without such a key mailto: is skipped
 * and logged, event=tlsrpt_unsigned, RFC 8460 3), then a tlsrpt_sent row
 * through the writer. A day is reported once per rua: a message queued and
 * then a crash before the mark may send that report twice, with the same
 * report-id (DAY.DOMAIN@HOSTNAME), so the receiver can tell.
 *
 * https: URIs get the same gzip body in a POST (Content-Type
 * application/tlsrpt+gzip, RFC 8460 5.4) through delivery's HTTPS client
 * (https.h: our resolver, the SMTP client's trust store, no redirects); any
 * 2xx counts as sent. A refused or failed URI is logged and not marked; the
 * day counts as reported once any URI of it is marked, so a failed URI is
 * not tried again when another one got the report.
 * A domain with no (valid) record is marked "no policy"; a DNS failure
 * leaves the day unmarked for the next run.
 *
 * The timer: every day at 00:10 UTC plus 0-30 minutes of jitter, reporting
 * the last 7 complete UTC days not yet reported (RFC 8460 4.1: the period is
 * one UTC day; the jitter spreads the load on report receivers). Report
 * messages go through the relay like any mail; their own TLS sessions are
 * counted as well (they are few: one per domain and day).
 */
#include "mta/control/control_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mta/async.h"
#include "mta/control/jsonw.h"
#include "mta/delivery/https.h"
#include "mta/delivery/rptnet.h"
#include "mta/intake/dkimsign.h"
#include "mta/intake/intake.h"
#include "mta/server.h"
#include "mta/shared/addr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/tlsrpt.h"
#include "mta/shared/util.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define RPT_DAYS_BACK 7      /* the timer reports this many complete days at most */
#define RPT_AT (10 * 60)     /* seconds after 00:00 UTC */
#define RPT_JITTER (30 * 60) /* plus up to this many */
#define RPT_ITEMS_MAX 10000  /* (day, domain) pairs per run */

/* One (day, domain) to report, with copies of its counters. */
struct item {
	int64_t day;
	char *domain;
	struct tlsrpt_row *rows;
	size_t nrows;
	struct tlsrpt_failure *fails;
	size_t nfails;
};

struct run {
	struct tlsrpt_job *job;
	struct ctl_conn *c; /* NULL for the timer's run */
	int64_t from, to;   /* days */
	char *data_dir;
	char err[256];
	int failed_read;
	int capped; /* more than RPT_ITEMS_MAX pairs were due */
	struct item *items;
	size_t nitems, cur;
	/* the current item */
	struct rptnet_txt *q;
	struct tlsrpt_rua rua;
	size_t ucur;
	char report_id[600]; /* DAY.DOMAIN@HOSTNAME */
	unsigned char *gz;
	size_t gzlen;
	/* the current submission */
	char qid[SPOOL_QID_LEN + 1];
	char *from_addr, *rcpt;
	char status[300];
	struct writer_job wj;
	/* totals for the reply and the log */
	unsigned sent, no_policy, failed;
	struct https_req *post; /* the POST in flight */
};

struct tlsrpt_job {
	struct server *srv;
	struct daily *timer;
	struct run *run;     /* at most one at a time */
	struct https *https; /* made at the first https: rua, freed with the job */
};

static void next_item(struct run *r);
static void next_uri(struct run *r);
static void post_https(struct run *r, const char *uri);

/* ---- the counters, read on a worker --------------------------------------- */

static char *
dup0(const char *s)
{
	return xstrdup(s ? s : "");
}

static struct item *
item_for(struct run *r, int64_t day, const char *domain)
{
	struct item *it;

	if (r->nitems > 0) {
		it = &r->items[r->nitems - 1];
		if (it->day == day && strcasecmp(it->domain, domain) == 0)
			return it; /* the listing comes in (day, domain) order */
	}
	for (size_t i = 0; i < r->nitems; i++)
		if (r->items[i].day == day && strcasecmp(r->items[i].domain, domain) == 0)
			return &r->items[i];
	if (r->nitems >= RPT_ITEMS_MAX)
		return NULL;
	r->items = xrealloc(r->items, (r->nitems + 1) * sizeof *r->items);
	it = &r->items[r->nitems++];
	memset(it, 0, sizeof *it);
	it->day = day;
	it->domain = xstrdup(domain);
	return it;
}

static int
on_row(void *arg, const struct spool_tls_row *w)
{
	struct run *r = arg;
	struct item *it;

	if (w->day > r->to || (it = item_for(r, w->day, w->domain)) == NULL)
		return 0;
	it->rows = xrealloc(it->rows, (it->nrows + 1) * sizeof *it->rows);
	it->rows[it->nrows++] = (struct tlsrpt_row){
	    w->day,      it->domain,     dup0(w->policy),    dup0(w->policy_string),
	    dup0(w->mx), w->sessions_ok, w->sessions_failed,
	};
	return 0;
}

static int
on_fail(void *arg, const struct spool_tls_failure *f)
{
	struct run *r = arg;
	struct item *it;

	if (f->day > r->to || (it = item_for(r, f->day, f->domain)) == NULL)
		return 0;
	it->fails = xrealloc(it->fails, (it->nfails + 1) * sizeof *it->fails);
	it->fails[it->nfails++] = (struct tlsrpt_failure){
	    f->day,
	    it->domain,
	    dup0(f->policy),
	    dup0(f->result_type),
	    dup0(f->sending_ip),
	    dup0(f->mx),
	    dup0(f->mx_ip),
	    dup0(f->detail),
	    f->count,
	};
	return 0;
}

static void
item_free(struct item *it)
{
	size_t i;

	for (i = 0; i < it->nrows; i++) {
		free((char *)it->rows[i].policy);
		free((char *)it->rows[i].policy_string);
		free((char *)it->rows[i].mx);
	}
	for (i = 0; i < it->nfails; i++) {
		const struct tlsrpt_failure *f = &it->fails[i];
		free((char *)f->policy);
		free((char *)f->result_type);
		free((char *)f->sending_ip);
		free((char *)f->mx);
		free((char *)f->mx_ip);
		free((char *)f->detail);
	}
	free(it->rows);
	free(it->fails);
	free(it->domain);
}

/*
 * MTA-STS rows carry no policy text: add one row without sessions holding
 * the policy cached now, for the report's policy-string and mx-host (RFC
 * 8460 4.4; the cache may be newer than the day reported).
 */
static void
add_sts_text(struct run *r, struct item *it)
{
	char *text = NULL, err[256];
	size_t i;
	bool sts = false;

	for (i = 0; i < it->nrows && !sts; i++)
		sts = strcmp(it->rows[i].policy, "mta-sts") == 0;
	for (i = 0; i < it->nfails && !sts; i++)
		sts = strcmp(it->fails[i].policy, "mta-sts") == 0;
	if (!sts || spool_sts_policy_text(r->data_dir, it->domain, &text, err, sizeof err) != 0 ||
	    text == NULL)
		return;
	it->rows = xrealloc(it->rows, (it->nrows + 1) * sizeof *it->rows);
	it->rows[it->nrows++] =
	    (struct tlsrpt_row){it->day, it->domain, xstrdup("mta-sts"), text, xstrdup(""), 0, 0};
}

/*
 * Worker: the counters of [from, to], minus what was reported already. The
 * spool leaves sent pairs out before the cap (RPT_ITEMS_MAX), so a capped
 * run takes the oldest due pairs and the next run the rest.
 */
static void
read_work(void *arg)
{
	struct run *r = arg;
	size_t i;

	if (spool_tlsrpt_due(r->data_dir, r->from, r->to, RPT_ITEMS_MAX, on_row, on_fail, r,
	                     &r->capped, r->err, sizeof r->err) != 0) {
		r->failed_read = 1;
		return;
	}
	for (i = 0; i < r->nitems; i++)
		add_sts_text(r, &r->items[i]);
}

/* ---- the end of a run ------------------------------------------------------ */

static void
run_free(struct run *r)
{
	size_t i;

	rptnet_txt_cancel(r->q);
	if (r->post)
		https_cancel(r->post);
	for (i = 0; i < r->nitems; i++)
		item_free(&r->items[i]);
	free(r->items);
	free(r->gz);
	free(r->from_addr);
	free(r->rcpt);
	free(r->data_dir);
	free(r);
}

static void
run_end(struct run *r)
{
	char from[16], to[16];

	tlsrpt_day_name(r->from, from, sizeof from);
	tlsrpt_day_name(r->to, to, sizeof to);
	log_info("event=tlsrpt_run from=%s to=%s sent=%u no_policy=%u failed=%u%s%s%s", from, to,
	         r->sent, r->no_policy, r->failed, r->failed_read ? " error=\"" : "",
	         r->failed_read ? r->err : "", r->failed_read ? "\"" : "");
	if (r->c) {
		struct evbuffer *b = evbuffer_new();
		struct jw w;
		jw_init(&w, b);
		jw_obj(&w, NULL);
		jw_str(&w, "from", from);
		jw_str(&w, "to", to);
		jw_int(&w, "sent", r->sent);
		jw_int(&w, "no_policy", r->no_policy);
		jw_int(&w, "failed", r->failed);
		if (r->failed_read)
			jw_str(&w, "error", r->err);
		jw_end(&w);
		ctl_reply(r->c, b);
		evbuffer_free(b);
	}
	r->job->run = NULL;
	run_free(r);
}

/* Loop: the worker's read is done. */
static void
read_done(void *arg)
{
	struct run *r = arg;

	if (r->capped)
		log_warn("event=tlsrpt_capped pairs=%zu note=\"more (day, domain) pairs are due:"
		         " the next run reports them\"",
		         r->nitems);
	if (r->job->srv->draining) {
		run_end(r);
		return;
	}
	r->cur = 0;
	next_item(r);
}

/* ---- marking -------------------------------------------------------------- */

/* Writer thread. */
static int
mark_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct run *r = arg;
	const struct item *it = &r->items[r->cur];
	const char *rua = r->ucur < r->rua.n ? r->rua.u[r->ucur].uri : "";

	return spool_tlsrpt_mark(sp, it->day, it->domain, rua, r->report_id, (int64_t)time(NULL),
	                         r->status, err, errlen);
}

static void
mark_done(struct writer_job *job)
{
	struct run *r = job->arg;

	if (job->status != 0)
		log_warn("event=tlsrpt_mark domain=%s error=\"%s\"", r->items[r->cur].domain,
		         job->err);
	if (r->ucur < r->rua.n) {
		r->ucur++;
		next_uri(r);
	} else {
		r->cur++;
		next_item(r);
	}
}

/* Record r->status for the current URI (or the whole item when ucur == rua.n). */
static void
mark(struct run *r)
{
	memset(&r->wj, 0, sizeof r->wj);
	r->wj.kind = WRITER_FN;
	r->wj.fn = mark_fn;
	r->wj.arg = r;
	r->wj.done = mark_done;
	writer_submit(r->job->srv->writer, &r->wj);
}

/* ---- one report message ---------------------------------------------------- */

static void
submitted(void *arg, const struct intake_result *res)
{
	struct run *r = arg;
	const struct item *it = &r->items[r->cur];

	if (res->id == R_QUEUED) {
		r->sent++;
		snprintf(r->status, sizeof r->status, "queued %s", r->qid);
		log_info("qid=%s event=tlsrpt_queued domain=%s rua=\"%s\" report_id=%s", r->qid,
		         it->domain, r->rua.u[r->ucur].uri, r->report_id);
		mark(r);
		return;
	}
	/* not marked: the next run tries again (e.g. after a config fix) */
	r->failed++;
	log_warn("event=tlsrpt_refused domain=%s rua=\"%s\" reason=\"%s\"", it->domain,
	         r->rua.u[r->ucur].uri, res->text ? res->text : "");
	r->ucur++;
	next_uri(r);
}

static int
build_message(struct run *r, const char *from, const char *to, char **msg, size_t *len)
{
	const struct config *cfg = r->job->srv->cfg;
	const struct item *it = &r->items[r->cur];
	struct tlsrpt_report rep = {cfg->hostname, from,     cfg->hostname, it->domain, it->day,
	                            r->report_id,  it->rows, it->nrows,     it->fails,  it->nfails};
	char date[64], boundary[40] = "tlsrpt-";

	util_rfc5322_date(date, sizeof date, time(NULL));
	if (util_random_hex(boundary + 7, 24) != 0)
		return -1;
	return tlsrpt_mime(&rep, from, to, date, boundary, r->gz, r->gzlen, msg, len);
}

/* The rua address as SMTP RCPT would take it (the same rules as the submit socket). */
static bool
rua_addr_ok(const struct config *cfg, const char *addr)
{
	char path[TLSRPT_URI_MAX + 3], out[ADDR_MAX];
	const char *params = NULL;

	snprintf(path, sizeof path, "<%s>", addr);
	return addr_parse_path(path, ADDR_F_UTF8 | ADDR_F_STRICT, out, sizeof out, &params) ==
	           ADDR_OK &&
	       *params == '\0' && config_literal_routed(cfg, out);
}

static void
submit_mailto(struct run *r, const char *addr)
{
	struct server *srv = r->job->srv;
	char fbuf[300], *msg;
	const char *from = config_tlsrpt_from(srv->cfg, fbuf, sizeof fbuf);
	struct intake_env env = {0};
	size_t len;

	/* RFC 8460 3: receivers ignore unsigned reports; left due for a run with a key */
	if (!dkimsign_has(srv->dkim, addr_domain(from))) {
		r->failed++;
		log_warn("event=tlsrpt_unsigned domain=%s rua=\"%s\" from=%s reason=\"no dkim_key "
		         "for the From domain: mailed reports must be DKIM-signed\"",
		         r->items[r->cur].domain, r->rua.u[r->ucur].uri, from);
		r->ucur++;
		next_uri(r);
		return;
	}
	if (!rua_addr_ok(srv->cfg, addr)) {
		r->failed++;
		log_warn("event=tlsrpt_refused domain=%s rua=\"%s\" reason=\"not a deliverable "
		         "address (an address literal needs a route)\"",
		         r->items[r->cur].domain, r->rua.u[r->ucur].uri);
		r->ucur++;
		next_uri(r);
		return;
	}
	free(r->from_addr);
	free(r->rcpt);
	r->from_addr = xstrdup(from);
	r->rcpt = xstrdup(addr);
	util_make_qid(r->qid);
	if (build_message(r, r->from_addr, r->rcpt, &msg, &len) != 0) {
		r->failed++;
		r->ucur++;
		next_uri(r);
		return;
	}
	env.log_id = "tlsrpt";
	env.qid = r->qid;
	env.sender = r->from_addr;
	env.rcpts = (const char *const *)&r->rcpt;
	env.nrcpts = 1;
	env.flags = SPOOL_F_TLSRPT; /* RFC 8460 3: delivered despite TLS failures */
	env.client_ip = "local (tlsrpt)";
	env.log_who = "ip=local tlsrpt=yes";
	daily_submit(srv, &env, "TLS report", msg, len, submitted, r);
	free(msg);
}

static void
posted(void *arg, const struct https_result *res)
{
	struct run *r = arg;
	const char *domain = r->items[r->cur].domain, *uri = r->rua.u[r->ucur].uri;

	r->post = NULL;
	if (res->status == HTTPS_OK) {
		r->sent++;
		snprintf(r->status, sizeof r->status, "posted %ld", res->http_code);
		log_info("event=tlsrpt_posted domain=%s rua=\"%s\" http=%ld report_id=%s", domain,
		         uri, res->http_code, r->report_id);
		mark(r);
		return;
	}
	r->failed++;
	log_warn("event=tlsrpt_post_failed domain=%s rua=\"%s\" http=%ld error=\"%s: %s\"", domain,
	         uri, res->http_code, https_status_name(res->status), res->error);
	r->ucur++;
	next_uri(r);
}

/* RFC 8460 5.4: the gzip body, Content-Type application/tlsrpt+gzip. */
static void
post_https(struct run *r, const char *uri)
{
	struct tlsrpt_job *job = r->job;
	char err[256] = "";

	if (job->https == NULL)
		job->https = rptnet_https_new(job->srv->deliver, err, sizeof err);
	if (job->https)
		r->post = https_post(job->https, uri, "application/tlsrpt+gzip", r->gz, r->gzlen,
		                     posted, r);
	if (r->post == NULL) {
		r->failed++;
		log_warn("event=tlsrpt_post_failed domain=%s rua=\"%s\" error=\"%s\"",
		         r->items[r->cur].domain, uri,
		         *err ? err : "not an https URL with a host name");
		r->ucur++;
		next_uri(r);
	}
}

/* The current item's next rua URI, or the next item. */
static void
next_uri(struct run *r)
{
	const struct tlsrpt_uri *u;

	if (r->job->srv->draining) {
		run_end(r);
		return;
	}
	if (r->ucur >= r->rua.n) {
		r->cur++;
		next_item(r);
		return;
	}
	u = &r->rua.u[r->ucur];
	if (u->kind == TLSRPT_MAILTO) {
		submit_mailto(r, u->addr);
		return;
	}
	post_https(r, u->uri);
}

/* ---- one (day, domain) ------------------------------------------------------ */

static int
make_report(struct run *r)
{
	const struct config *cfg = r->job->srv->cfg;
	const struct item *it = &r->items[r->cur];
	char fbuf[300], day[16], *js;
	struct tlsrpt_report rep = {0};
	size_t len;
	int rc;

	tlsrpt_day_name(it->day, day, sizeof day);
	/* the same for a report sent again after a crash, so receivers see the duplicate */
	snprintf(r->report_id, sizeof r->report_id, "%s.%s@%s", day, it->domain, cfg->hostname);
	rep = (struct tlsrpt_report){cfg->hostname, config_tlsrpt_from(cfg, fbuf, sizeof fbuf),
	                             cfg->hostname, it->domain,
	                             it->day,       r->report_id,
	                             it->rows,      it->nrows,
	                             it->fails,     it->nfails};
	if (tlsrpt_json(&rep, &js, &len) != 0)
		return -1;
	free(r->gz);
	r->gz = NULL;
	rc = tlsrpt_gzip((const unsigned char *)js, len, &r->gz, &r->gzlen);
	free(js);
	return rc;
}

static void
on_txt(void *arg, enum rptnet_status st, const char *const *txts, size_t n, const char *reason)
{
	struct run *r = arg;
	const char *domain = r->items[r->cur].domain;
	char why[256] = "no TXT record";

	r->q = NULL;
	if (st == RPTNET_TEMPFAIL) {
		r->failed++;
		log_warn("event=tlsrpt_dns domain=%s error=\"%s\"", domain, reason);
		r->cur++;
		next_item(r);
		return;
	}
	if (st == RPTNET_NONE || tlsrpt_txt_parse(txts, n, &r->rua, why, sizeof why) != 0) {
		r->no_policy++;
		r->rua.n = 0;
		r->ucur = 0;
		snprintf(r->status, sizeof r->status, "no policy: %s", why);
		log_info("event=tlsrpt_no_policy domain=%s reason=\"%s\"", domain, why);
		mark(r); /* ucur == rua.n: the whole item */
		return;
	}
	if (make_report(r) != 0) {
		r->failed++;
		log_warn("event=tlsrpt_build domain=%s error=\"out of memory\"", domain);
		r->cur++;
		next_item(r);
		return;
	}
	r->ucur = 0;
	next_uri(r);
}

static void
next_item(struct run *r)
{
	char name[300];

	if (r->job->srv->draining || r->cur >= r->nitems) {
		run_end(r);
		return;
	}
	memset(&r->rua, 0, sizeof r->rua);
	snprintf(name, sizeof name, "_smtp._tls.%s", r->items[r->cur].domain);
	r->q = rptnet_txt(r->job->srv->deliver, name, on_txt, r);
	if (r->q == NULL) {
		r->failed++;
		log_warn("event=tlsrpt_dns domain=%s error=\"bad name\"", r->items[r->cur].domain);
		r->cur++;
		next_item(r); /* bounded: one frame per item at most */
	}
}

/* ---- starting runs -------------------------------------------------------- */

static int64_t
today(void)
{
	return (int64_t)(time(NULL) / 86400);
}

/* Start a run over [from, to]; c (may be NULL) gets the reply. 0, or -1 when one runs. */
static int
run_start(struct tlsrpt_job *job, struct ctl_conn *c, int64_t from, int64_t to)
{
	struct run *r;

	if (job->run)
		return -1;
	r = xcalloc(1, sizeof *r);
	r->job = job;
	r->c = c;
	r->from = from;
	r->to = to;
	r->data_dir = xstrdup(job->srv->cfg->data_dir);
	job->run = r;
	if (c)
		c->waiting = true;
	async_run(job->srv->async, read_work, read_done, r);
	return 0;
}

/* The daily run (daily.c: 00:10 UTC plus jitter, never while draining). */
static void
on_timer(void *arg)
{
	struct tlsrpt_job *job = arg;

	if (job->srv->cfg->tlsrpt && run_start(job, NULL, today() - RPT_DAYS_BACK, today() - 1) != 0)
		log_info("event=tlsrpt_run note=\"a run is in progress: this one skipped\"");
}

struct tlsrpt_job *
tlsrpt_job_new(struct server *srv)
{
	struct tlsrpt_job *job = xcalloc(1, sizeof *job);

	job->srv = srv;
	job->timer = daily_new(srv, RPT_AT, RPT_JITTER, on_timer, job);
	return job;
}

unsigned
tlsrpt_busy(const struct tlsrpt_job *job)
{
	return job && job->run ? 1 : 0;
}

void
tlsrpt_job_free(struct tlsrpt_job *job)
{
	if (job == NULL)
		return;
	if (job->run)
		run_free(job->run); /* its connection is closed by ctl_free */
	https_free(job->https);
	daily_free(job->timer);
	free(job);
}

void
tlsrpt_verb(struct tlsrpt_job *job, struct ctl_conn *c, char *arg)
{
	int64_t from = today() - RPT_DAYS_BACK, to = today() - 1;

	if (!c->srv->cfg->tlsrpt) {
		ctl_error(c, NULL, "TLS reports are off (tlsrpt = no)");
		return;
	}
	if (*arg) {
		if (tlsrpt_day_parse(arg, &from) != 0) {
			ctl_error(c, NULL, "bad day \"%.20s\" (YYYY-MM-DD)", arg);
			return;
		}
		/* RFC 8460 4.1: a report covers a whole UTC day; one for a day not
		 * over yet would be marked sent and the rest of the day never reported */
		if (from >= today()) {
			ctl_error(
			    c, NULL,
			    "day %.20s is not over yet (UTC): only complete days are reported",
			    arg);
			return;
		}
		to = from;
	}
	if (c->srv->draining) {
		ctl_error(c, NULL, "shutting down");
		return;
	}
	if (run_start(job, c, from, to) != 0)
		ctl_error(c, NULL, "a report run is in progress; try again later");
}
