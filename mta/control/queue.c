/*
 * ctl_queue: mxrelayctl's queue commands on the daemon side.
 *
 * Reads (list, show, summary, the lookups of flush and bounce) run on a
 * worker with that worker's spool handle; changes (hold, release, delete,
 * bounce) run on the writer thread so every spool write stays serialized
 * with intake and delivery outcomes. The schedule is told on the loop only
 * after the change is durable: a hold that failed to commit never stops
 * delivery, a release never starts one for a message still held on disk.
 *
 * In flight: hold and delete let the current attempt finish (its outcome
 * for a deleted message is skipped by spool_apply) but it is not started
 * again; bounce refuses a message being tried at that moment, since the
 * attempt's own outcome would collide with the bounce.
 */
#include "mta/control/control_int.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mta/async.h"
#include "mta/delivery/bounce.h"
#include "mta/delivery/dlvlog.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/provider.h"
#include "mta/shared/util.h"
#include "mta/control/jsonw.h"
#include "mta/reply.h"
#include "mta/reader.h"
#include "mta/delivery/sched.h"
#include "mta/server.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define LIST_DEFAULT 1000 /* messages in one listing unless asked */
#define LIST_MAX 100000   /* bound on one reply's size */
#define LIST_RCPTS 5      /* pending recipients shown per message in a listing */
#define SUMMARY_DOMAINS 1000

/* One queue command in progress; owned by its completion, which frees it. */
struct qop {
	struct ctl_conn *c;
	char qid[SPOOL_QID_LEN + 1];
	char domain[256];
	char dir[4096];
	char hostname[256];
	char pm[320]; /* postmaster_bounce_copy, "" for none */
	size_t limit;
	time_t now;
	int64_t id;
	int state;
	int rc;
	char err[256];
	struct spool_qmsg *msgs;
	size_t nmsgs;
	struct spool_qsummary sum;
	int64_t *ids;
	size_t nids;
	/* bounce */
	struct spool_work *w;
	struct spool_result *res;
	char *dsn;
	size_t dsn_len;
	struct spool_msg_in bounce;
	const char *bounce_rcpt;
	char reply[64]; /* R_ADMIN_BOUNCE, recorded for every recipient */
	struct bounce_copy bcopy; /* postmaster_bounce_copy (issue 16): body NULL when none */
	bool was_queued;
	int removed; /* spool_update.removed of the bounce */
	struct writer_job wj;
};

static struct qop *
qop_new(struct ctl_conn *c)
{
	struct qop *op = xcalloc(1, sizeof(*op));

	op->c = c;
	op->now = time(NULL);
	snprintf(op->dir, sizeof(op->dir), "%s", c->srv->cfg->data_dir);
	snprintf(op->hostname, sizeof(op->hostname), "%s", c->srv->cfg->hostname);
	snprintf(op->pm, sizeof(op->pm), "%s",
	         c->srv->cfg->postmaster_bounce_copy ? c->srv->cfg->postmaster_bounce_copy : "");
	c->waiting = true;
	return op;
}

static void
qop_free(struct qop *op)
{
	spool_qmsgs_free(op->msgs, op->nmsgs);
	spool_qsummary_free(&op->sum);
	free(op->ids);
	spool_work_free(op->w);
	free(op->res);
	free(op->dsn);
	bounce_copy_clear(&op->bcopy);
	free(op);
}

static struct sched *
sched_of(struct ctl_conn *c)
{
	return c->srv->sched;
}

/* Queue ids are 16 hex digits; accept upper case. 0 / -1 (replied). */
static int
parse_qid(struct ctl_conn *c, const char *arg, char *qid)
{
	char q[300];
	size_t i;

	for (i = 0; i < SPOOL_QID_LEN && isxdigit((unsigned char)arg[i]); i++)
		qid[i] = (char)tolower((unsigned char)arg[i]);
	qid[i] = '\0';
	if (i == SPOOL_QID_LEN && arg[i] == '\0')
		return 0;
	if (*arg == '\0')
		ctl_error(c, NULL, "a queue id is needed");
	else
		ctl_error(c, NULL, "\"%s\" is not a queue id (16 hex digits)", LOG_Q(q, arg));
	return -1;
}

/* The operation for the queue id in arg; NULL when it is none (replied). */
static struct qop *
qop_for_qid(struct ctl_conn *c, const char *arg)
{
	char qid[SPOOL_QID_LEN + 1];
	struct qop *op;

	if (parse_qid(c, arg, qid) != 0)
		return NULL;
	op = qop_new(c);
	memcpy(op->qid, qid, sizeof(qid));
	return op;
}

static bool
looks_like_qid(const char *arg)
{
	size_t i;
	for (i = 0; isxdigit((unsigned char)arg[i]); i++)
		;
	return i == SPOOL_QID_LEN && arg[i] == '\0';
}

/* Send the document in b and free op (the connection goes with the reply). */
static void
reply_doc(struct qop *op, struct evbuffer *b)
{
	ctl_reply(op->c, b);
	evbuffer_free(b);
	qop_free(op);
}

static void
reply_err(struct qop *op, const char *text)
{
	ctl_error(op->c, NULL, "%s", text);
	qop_free(op);
}

/* ---- formatting ----------------------------------------------------------- */

static const char *
rcpt_state_name(int st)
{
	return st == SPOOL_RCPT_PENDING ? "pending"
	       : st == SPOOL_RCPT_DONE  ? "delivered"
	                                : "failed";
}


/* A large provider's known reply (mta/shared/provider.h): its reason code and the fix, or nulls. */
static void
put_provider(struct jw *w, const char *last_reply)
{
	const struct provider_reply *pr = provider_classify_from(last_reply, NULL);

	if (pr == NULL) {
		jw_null(w, "reason_code");
		jw_null(w, "fix");
		return;
	}
	jw_str(w, "reason_code", pr->code);
	jw_str(w, "fix", pr->fix);
}
static void
put_msg(struct jw *w, const struct spool_qmsg *m, struct sched *s, time_t now, bool full)
{
	bool held = m->state == SPOOL_MSG_HELD;
	size_t i;

	jw_obj(w, NULL);
	jw_str(w, "qid", m->qid);
	jw_str(w, "state", held ? "held" : "queued");
	jw_int(w, "received", (int64_t)m->received);
	jw_int(w, "age", (int64_t)(now - m->received));
	jw_int(w, "size", (int64_t)m->size);
	jw_str(w, "sender", m->sender);
	jw_int(w, "attempts", m->attempts);
	if (held)
		jw_null(w, "next_try");
	else
		jw_int(w, "next_try", (int64_t)m->next_try);
	jw_bool(w, "in_flight", s && sched_where(s, m->id) == SCHED_INFLIGHT);
	jw_int(w, "pending", (int64_t)m->npending);
	jw_int(w, "delivered", (int64_t)m->ndone);
	jw_int(w, "failed", (int64_t)m->nfailed);
	jw_str(w, "last_reply", m->last_reply);
	if (!full) {
		jw_arr(w, "to");
		for (i = 0; i < m->nrcpts; i++)
			jw_str(w, NULL, m->rcpts[i].address);
		jw_end(w);
		jw_end(w);
		return;
	}
	jw_str(w, "client_ip", m->client_ip);
	jw_str(w, "helo", m->helo);
	jw_str(w, "auth_user", m->auth_user);
	jw_arr(w, "recipients");
	for (i = 0; i < m->nrcpts; i++) {
		const struct spool_qrcpt *r = &m->rcpts[i];
		jw_obj(w, NULL);
		jw_str(w, "address", r->address);
		jw_str(w, "state", rcpt_state_name(r->state));
		jw_int(w, "attempts", r->attempts);
		if (r->state == SPOOL_RCPT_PENDING && !held)
			jw_int(w, "next_try", (int64_t)r->next_try);
		else
			jw_null(w, "next_try");
		jw_str(w, "last_reply", r->last_reply);
		put_provider(w, r->last_reply);
		jw_end(w);
	}
	jw_end(w);
	jw_end(w);
}

/* ---- list, show, summary ------------------------------------------------- */

static struct spool *
op_reader(struct qop *op)
{
	struct spool *sp = reader_spool(op->dir, op->err, sizeof(op->err));
	op->rc = sp ? 0 : -1;
	return sp;
}

static void
list_work(void *arg)
{
	struct qop *op = arg;
	struct spool *sp = op_reader(op);

	if (sp)
		op->rc = spool_queue_list(sp, op->limit + 1, LIST_RCPTS, &op->msgs, &op->nmsgs,
		                          op->err, sizeof(op->err));
}

static void
list_done(void *arg)
{
	struct qop *op = arg;
	struct evbuffer *b;
	struct jw w;
	size_t i, n;

	if (op->rc != 0) {
		reply_err(op, op->err);
		return;
	}
	n = op->nmsgs > op->limit ? op->limit : op->nmsgs;
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_int(&w, "now", (int64_t)op->now);
	jw_arr(&w, "messages");
	for (i = 0; i < n; i++)
		put_msg(&w, &op->msgs[i], sched_of(op->c), op->now, false);
	jw_end(&w);
	jw_int(&w, "count", (int64_t)n);
	jw_bool(&w, "truncated", op->nmsgs > op->limit);
	jw_end(&w);
	reply_doc(op, b);
}

void
ctlq_list(struct ctl_conn *c, char *arg)
{
	unsigned long n = LIST_DEFAULT;
	char *end;

	if (*arg) {
		n = strtoul(arg, &end, 10);
		if (*end || n == 0 || n > LIST_MAX || !isdigit((unsigned char)*arg)) {
			ctl_error(c, NULL, "the limit must be a number from 1 to %d", LIST_MAX);
			return;
		}
	}
	struct qop *op = qop_new(c);
	op->limit = n;
	async_run(c->srv->async, list_work, list_done, op);
}

static void
show_work(void *arg)
{
	struct qop *op = arg;
	struct spool *sp = op_reader(op);

	if (sp) {
		op->rc = spool_queue_show(sp, op->qid, &op->msgs, op->err, sizeof(op->err));
		op->nmsgs = op->rc == 0 ? 1 : 0;
	}
}

static void
show_done(void *arg)
{
	struct qop *op = arg;
	struct evbuffer *b;
	struct jw w;

	if (op->rc != 0) {
		reply_err(op, op->err);
		return;
	}
	b = evbuffer_new();
	jw_init(&w, b);
	put_msg(&w, op->msgs, sched_of(op->c), op->now, true);
	reply_doc(op, b);
}

void
ctlq_show(struct ctl_conn *c, char *arg)
{
	struct qop *op = qop_for_qid(c, arg);

	if (op == NULL)
		return;
	async_run(c->srv->async, show_work, show_done, op);
}

static void
summary_reply(struct qop *op)
{
	static const char *const bucket[SPOOL_AGE_BUCKETS] = {"<5m", "<1h", "<1d", "older"};
	struct spool_qsummary *s = &op->sum;
	struct sched *sc = sched_of(op->c);
	struct evbuffer *b;
	struct jw w;
	size_t i;

	/* on the loop from the counts kept there (qstats): no spool read, no worker */
	qstats_summary(sched_qstats(sc), op->now, SUMMARY_DOMAINS, s);
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_int(&w, "now", (int64_t)op->now);
	jw_int(&w, "messages", (int64_t)s->messages);
	jw_int(&w, "held", (int64_t)s->held);
	jw_int(&w, "recipients", (int64_t)s->rcpts);
	jw_int(&w, "in_flight", sc ? (int64_t)sched_inflight(sc) : 0);
	if (s->oldest)
		jw_int(&w, "oldest_age", (int64_t)(op->now - s->oldest));
	else
		jw_null(&w, "oldest_age");
	jw_arr(&w, "domains");
	for (i = 0; i < s->ndomains; i++) {
		jw_obj(&w, NULL);
		jw_str(&w, "domain", s->domains[i].domain);
		jw_int(&w, "messages", (int64_t)s->domains[i].messages);
		jw_int(&w, "recipients", (int64_t)s->domains[i].rcpts);
		jw_int(&w, "oldest_age", (int64_t)(op->now - s->domains[i].oldest));
		jw_end(&w);
	}
	jw_end(&w);
	jw_int(&w, "domains_total", (int64_t)s->ndomains_total);
	jw_arr(&w, "ages");
	for (i = 0; i < SPOOL_AGE_BUCKETS; i++) {
		jw_obj(&w, NULL);
		jw_str(&w, "age", bucket[i]);
		jw_int(&w, "messages", (int64_t)s->age_messages[i]);
		if (s->age_messages[i])
			jw_int(&w, "oldest_age", (int64_t)(op->now - s->age_oldest[i]));
		else
			jw_null(&w, "oldest_age");
		jw_end(&w);
	}
	jw_end(&w);
	jw_end(&w);
	reply_doc(op, b);
}

void
ctlq_summary(struct ctl_conn *c, char *arg)
{
	if (*arg) {
		ctl_error(c, NULL, "SUMMARY takes no argument");
		return;
	}
	summary_reply(qop_new(c));
}

/* ---- flush ------------------------------------------------------------------ */

static void
flush_reply(struct qop *op, const char *target, size_t flushed, size_t inflight)
{
	struct evbuffer *b = evbuffer_new();
	struct jw w;

	log_info("%s event=ctl_flush uid=%u target=%s flushed=%zu in_flight=%zu", op->c->id,
	         (unsigned)op->c->uid, target, flushed, inflight);
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "flushed", target);
	jw_int(&w, "messages", (int64_t)flushed);
	jw_int(&w, "in_flight", (int64_t)inflight);
	jw_end(&w);
	reply_doc(op, b);
}

static void
flush_id_work(void *arg)
{
	struct qop *op = arg;
	struct spool *sp = op_reader(op);

	if (sp)
		op->rc =
		    spool_queue_find(sp, op->qid, &op->id, &op->state, op->err, sizeof(op->err));
}

static void
flush_id_done(void *arg)
{
	struct qop *op = arg;
	struct sched *s = sched_of(op->c);
	enum sched_where where = SCHED_NONE;
	char text[300];

	if (op->rc != 0) {
		reply_err(op, op->err);
		return;
	}
	if (op->state == SPOOL_MSG_HELD) {
		snprintf(text, sizeof(text), "message %s is held: release it to deliver it",
		         op->qid);
		reply_err(op, text);
		return;
	}
	if (s)
		where = sched_reschedule(s, op->id, op->now);
	flush_reply(op, op->qid, where == SCHED_QUEUED, where == SCHED_INFLIGHT);
}

static void
flush_domain_work(void *arg)
{
	struct qop *op = arg;
	struct spool *sp = op_reader(op);

	if (sp)
		op->rc = spool_queue_domain_ids(sp, op->domain, &op->ids, &op->nids, op->err,
		                                sizeof(op->err));
}

static void
flush_domain_done(void *arg)
{
	struct qop *op = arg;
	struct sched *s = sched_of(op->c);
	size_t i, flushed = 0, inflight = 0;

	if (op->rc != 0) {
		reply_err(op, op->err);
		return;
	}
	for (i = 0; s && i < op->nids; i++) {
		enum sched_where where = sched_reschedule(s, op->ids[i], op->now);
		flushed += where == SCHED_QUEUED;
		inflight += where == SCHED_INFLIGHT;
	}
	flush_reply(op, op->domain, flushed, inflight);
}

static bool
valid_domain(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > 255 || d[0] == '.' || d[0] == '-')
		return false;
	for (; *d; d++)
		if (!isalnum((unsigned char)*d) && *d != '.' && *d != '-' && *d != '_' &&
		    !((unsigned char)*d & 0x80))
			return false;
	return true;
}

void
ctlq_flush(struct ctl_conn *c, char *arg)
{
	struct qop *op;

	if (*arg == '\0' || strcasecmp(arg, "all") == 0) {
		struct sched *s = sched_of(c);
		op = qop_new(c);
		size_t n = s ? sched_queued(s) : 0;
		if (c->srv->sched)
			sched_flush(c->srv->sched);
		flush_reply(op, "all", n, s ? sched_inflight(s) : 0);
		return;
	}
	if (looks_like_qid(arg)) {
		if ((op = qop_for_qid(c, arg)) == NULL)
			return;
		async_run(c->srv->async, flush_id_work, flush_id_done, op);
		return;
	}
	if (!valid_domain(arg)) { /* several ids, or from=, to=, domain= (issue 16) */
		qbulk_start(c, CTLQ_FLUSH, arg);
		return;
	}
	op = qop_new(c);
	snprintf(op->domain, sizeof(op->domain), "%s", arg);
	for (char *p = op->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	async_run(c->srv->async, flush_domain_work, flush_domain_done, op);
}

/* ---- hold, release, delete: through the writer thread -------------------- */

static int
hold_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct qop *op = arg;
	return spool_queue_set_state(sp, op->qid, SPOOL_MSG_HELD, 0, &op->id, err, errlen);
}

static int
release_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct qop *op = arg;
	return spool_queue_set_state(sp, op->qid, SPOOL_MSG_QUEUED, op->now, &op->id, err, errlen);
}

static int
delete_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct qop *op = arg;
	return spool_queue_delete(sp, op->qid, &op->id, err, errlen);
}

static void
change_done(struct writer_job *wj)
{
	struct qop *op = wj->arg;
	struct sched *s = sched_of(op->c);
	enum sched_where where = SCHED_NONE;
	const char *verb = wj->fn == hold_fn      ? "held"
	                   : wj->fn == release_fn ? "released"
	                                          : "deleted";
	struct evbuffer *b;
	struct jw w;

	if (wj->status != 0) {
		reply_err(op, wj->err);
		return;
	}
	/* durable now: only from here may delivery learn about it */
	if (s && wj->fn == release_fn)
		sched_release(s, op->id, op->now);
	else if (s)
		where = sched_remove(s, op->id);
	if (wj->fn == delete_fn)
		qstats_remove(sched_qstats(s), op->id);
	else
		qstats_set_held(sched_qstats(s), op->id, wj->fn == hold_fn);
	log_info("qid=%s event=%s by=ctl uid=%u in_flight=%d", op->qid, verb, (unsigned)op->c->uid,
	         where == SCHED_INFLIGHT);
	if (wj->fn == delete_fn)
		dlvlog_removed(op->qid, "deleted");
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, verb, op->qid);
	jw_bool(&w, "in_flight", where == SCHED_INFLIGHT);
	jw_end(&w);
	reply_doc(op, b);
}

static void
change(struct ctl_conn *c, char *arg, int (*fn)(struct spool *, void *, char *, size_t))
{
	struct qop *op = qop_for_qid(c, arg);

	if (op == NULL)
		return;
	op->wj.kind = WRITER_FN;
	op->wj.fn = fn;
	op->wj.arg = op;
	op->wj.done = change_done;
	writer_submit(c->srv->writer, &op->wj);
}

/* A lone queue id keeps its reply of old; ALL, several ids and filters go to qbulk.c. */
void
ctlq_hold(struct ctl_conn *c, char *arg)
{
	if (looks_like_qid(arg))
		change(c, arg, hold_fn);
	else
		qbulk_start(c, CTLQ_HOLD, arg);
}

void
ctlq_release(struct ctl_conn *c, char *arg)
{
	if (looks_like_qid(arg))
		change(c, arg, release_fn);
	else
		qbulk_start(c, CTLQ_RELEASE, arg);
}

void
ctlq_delete(struct ctl_conn *c, char *arg)
{
	if (looks_like_qid(arg))
		change(c, arg, delete_fn);
	else
		qbulk_start(c, CTLQ_DELETE, arg);
}

/* ---- bounce -------------------------------------------------------------- */

/* Worker: load the pending recipients and the body, build the DSN. */
static void
bounce_work(void *arg)
{
	struct qop *op = arg;
	struct spool *sp = op_reader(op);
	struct bounce_rcpt *br;
	size_t i;

	if (sp == NULL)
		return;
	if ((op->rc = spool_queue_find(sp, op->qid, &op->id, NULL, op->err, sizeof(op->err))) !=
	        0 ||
	    (op->rc = spool_load_work(sp, op->id, &op->w, op->err, sizeof(op->err))) != 0)
		return;
	if (op->w->nrcpts == 0) {
		snprintf(op->err, sizeof(op->err), "message %s has no pending recipient", op->qid);
		op->rc = -1;
		return;
	}
	op->res = xcalloc(op->w->nrcpts, sizeof(*op->res));
	br = xcalloc(op->w->nrcpts, sizeof(*br));
	for (i = 0; i < op->w->nrcpts; i++) {
		op->res[i].rcpt_id = op->w->rcpts[i].id;
		op->res[i].state = SPOOL_RCPT_FAILED;
		op->res[i].next_try = op->now;
		op->res[i].reply = op->reply;
		br[i].address = op->w->rcpts[i].address;
		br[i].status = reply_status(R_ADMIN_BOUNCE);
		br[i].diagnostic = op->reply;
	}
	/* never a DSN to the null sender or MAILER-DAEMON (RFC 5321 6.1) */
	if (bounce_wanted(op->w->sender)) {
		struct bounce_info bi = {op->hostname,    op->w->qid,  op->w->sender,
		                         op->w->received, 0,           br,
		                         op->w->nrcpts,   op->w->body, op->w->body_len,
		                         NULL /* bounce_owner: not for admin bounces yet */};
		if (bounce_build(&bi, &op->dsn, &op->dsn_len, op->err, sizeof(op->err)) != 0)
			op->dsn = NULL; /* logged on the loop; the recipients still fail */
		else if (op->pm[0])     /* a copy that cannot be made costs no notice */
			bounce_copy_make(&op->bcopy, &bi, op->pm, op->now, op->err,
			                 sizeof(op->err));
	}
	free(br);
}

static void
bounce_applied(struct writer_job *wj)
{
	struct qop *op = wj->arg;
	struct sched *s = sched_of(op->c);
	struct evbuffer *b;
	struct jw w;
	char qa[300];
	size_t i;

	if (wj->status != 0) {
		/* nothing changed: the message goes on as it was */
		if (s && op->was_queued)
			sched_add(s, op->id, op->now);
		reply_err(op, wj->err);
		return;
	}
	for (i = 0; i < op->w->nrcpts; i++)
		qstats_rcpt_done(sched_qstats(s), op->id, op->w->rcpts[i].address);
	for (i = 0; i < op->w->nrcpts; i++)
		log_info("qid=%s event=delivery to=\"<%s>\" relay=none dsn=%s status=bounced "
		         "by=ctl uid=%u reply=\"%s\"",
		         op->qid, LOG_Q(qa, op->w->rcpts[i].address), reply_status(R_ADMIN_BOUNCE),
		         (unsigned)op->c->uid, op->reply);
	if (op->removed)
		dlvlog_removed(op->qid, "bounced");
	if (op->dsn && op->bounce.id > 0) {
		log_info("qid=%s event=bounce bounce_qid=%s to=\"<%s>\" failed=%zu", op->qid,
		         op->bounce.qid, LOG_Q(qa, op->w->sender), op->w->nrcpts);
		qstats_add(sched_qstats(s), op->bounce.id, op->bounce.received, false,
		           op->bounce.rcpts, op->bounce.nrcpts);
		if (op->c->srv->sched)
			sched_add(op->c->srv->sched, op->bounce.id, op->now);
	}
	if (op->dsn && op->bcopy.body && op->bcopy.in.id > 0) {
		log_info("qid=%s event=bounce_copy bounce_qid=%s to=\"<%s>\"", op->qid,
		         op->bcopy.in.qid, LOG_Q(qa, op->pm));
		qstats_add(sched_qstats(s), op->bcopy.in.id, op->now, false, op->bcopy.in.rcpts, 1);
		if (s)
			sched_add(s, op->bcopy.in.id, op->now);
	}
	b = evbuffer_new();
	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_str(&w, "bounced", op->qid);
	jw_int(&w, "recipients", (int64_t)op->w->nrcpts);
	jw_str(&w, "dsn", op->dsn && op->bounce.id > 0 ? op->bounce.qid : NULL);
	jw_end(&w);
	reply_doc(op, b);
}

static void
bounce_loaded(void *arg)
{
	struct qop *op = arg;
	struct sched *s = sched_of(op->c);
	char text[300];

	if (op->rc != 0) {
		reply_err(op, op->err);
		return;
	}
	if (s && sched_where(s, op->id) == SCHED_INFLIGHT) {
		snprintf(text, sizeof(text),
		         "message %s is being delivered right now; try again when the attempt ends",
		         op->qid);
		reply_err(op, text);
		return;
	}
	if (bounce_wanted(op->w->sender) && op->dsn == NULL)
		log_err("qid=%s event=bounce_failed error=\"%s\"", op->qid, op->err);
	/* out of the schedule first: no attempt may start before the commit */
	op->was_queued = s && sched_remove(s, op->id) == SCHED_QUEUED;
	if (op->dsn) {
		bounce_msg_in(&op->bounce, &op->bounce_rcpt, op->w->sender, op->dsn, op->dsn_len,
		              op->now);
	}
	op->wj.kind = WRITER_APPLY;
	op->wj.upd.msg_id = op->id;
	op->wj.upd.results = op->res;
	op->wj.upd.nresults = op->w->nrcpts;
	op->wj.upd.next_try = op->now;
	op->wj.upd.attempts = op->w->attempts;
	op->wj.upd.bounce = op->dsn ? &op->bounce : NULL;
	op->wj.upd.bounce_copy = op->dsn && op->bcopy.body ? &op->bcopy.in : NULL;
	op->wj.upd.removed = &op->removed;
	op->wj.done = bounce_applied;
	op->wj.arg = op;
	writer_submit(op->c->srv->writer, &op->wj);
}

void
ctlq_bounce(struct ctl_conn *c, char *arg)
{
	struct qop *op;

	if (!looks_like_qid(arg)) {
		qbulk_start(c, CTLQ_BOUNCE, arg);
		return;
	}
	op = qop_for_qid(c, arg);

	if (op == NULL)
		return;
	reply_format(op->reply, sizeof(op->reply), R_ADMIN_BOUNCE);
	async_run(c->srv->async, bounce_work, bounce_loaded, op);
}
