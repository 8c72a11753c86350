/*
 * qbulk: the bulk forms of mxrelayctl's queue commands (issue 16): HOLD,
 * RELEASE, DELETE, BOUNCE and FLUSH of ALL messages, of several queue ids,
 * or of those matching from=ADDR, to=ADDR, domain=DOMAIN (all that are
 * given must match). One request, one reply with the counts.
 *
 * The selection is read on a worker in one snapshot (ids, queue ids and
 * sizes: 24 bytes a message). The changes then go in batches, each one
 * write transaction on the writer (at most QB_BATCH messages and
 * QB_BATCH_BYTES of them, a delete frees that much), and the scheduler and
 * the queue counts learn of each batch on the loop once it is durable, so
 * a million messages never hold the loop, the writer or intake for long.
 * A message that went away meanwhile is skipped.
 *
 * Whole messages: hold (queued ones), release (held ones), delete, flush
 * (queued ones due now). Recipients: bounce, and delete with to= or
 * domain=, change only the matching pending recipients (the others stay
 * queued and are tried at once); they skip a message being delivered right
 * now (counted in in_flight), since that attempt records its own outcome
 * for the same recipients. Each message a batch of those changes is taken
 * out of the schedule before it is loaded, so no attempt can start between
 * the load and the commit.
 */
#include "mta/control/control_int.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mta/async.h"
#include "mta/delivery/bounce.h"
#include "mta/delivery/dlvlog.h"
#include "mta/delivery/sched.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/control/jsonw.h"
#include "mta/event.h"
#include "mta/reader.h"
#include "mta/reply.h"
#include "mta/server.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define QB_IDS_MAX 64              /* queue ids in one request (the line has 1,023 octets) */
#define QB_BATCH 1000              /* messages per write transaction */
#define QB_BATCH_BYTES (64u << 20) /* ...and at most these message bytes (unless one is more) */
#define QB_RCPT_BATCH 100          /* messages per bounce batch: each is loaded, may get a DSN */
#define QB_FLUSH_TURN 10000        /* flushes per turn of the loop */
#define QB_BEAT 10 /* seconds between the spaces a long run sends (mxrelayctl waits 60 s) */

/* A message of a recipient batch (bounce; delete with to= or domain=). */
struct qb_msg {
	struct spool_work *w;
	struct spool_result *res; /* the selected pending recipients */
	size_t nres;
	char *dsn;
	size_t dsn_len;
	struct spool_msg_in bounce;
	const char *bounce_rcpt;
	struct bounce_copy bcopy; /* postmaster_bounce_copy: body NULL when none */
	bool was_queued, skip;
};

struct qbulk {
	struct ctl_conn *c;
	enum ctlq_verb verb;
	bool per_rcpt; /* bounce; delete with to= or domain= */
	char dir[4096], hostname[256], reply[64];
	char pm[320]; /* postmaster_bounce_copy, "" for none */
	time_t now;
	bool all;
	char qids[QB_IDS_MAX][SPOOL_QID_LEN + 1];
	const char *qidp[QB_IDS_MAX];
	size_t nqids;
	const char *from, *to, *domain; /* into line, NULL when not given */
	char line[CTL_LINE_MAX + 1];    /* the request's words (NUL-separated) */
	char request[CTL_LINE_MAX + 1]; /* as it came, for the log */
	struct spool_qhit *hits;
	size_t nhits, pos, bn; /* the batch: hits[pos .. pos + bn) */
	int64_t *ids;          /* whole-message batch */
	unsigned char *done;
	struct qb_msg *m; /* recipient batch */
	struct spool_update *upd;
	size_t nupd;
	size_t messages, rcpts, inflight, held, dsns, removed;
	int rc;
	char err[256];
	time_t beat;        /* the last sign of life sent (heartbeat) */
	struct event *turn; /* flush: the next turn */
	struct writer_job wj;
};

static const char *const verb_done[] = {
    [CTLQ_HOLD] = "held",      [CTLQ_RELEASE] = "released", [CTLQ_DELETE] = "deleted",
    [CTLQ_BOUNCE] = "bounced", [CTLQ_FLUSH] = "flushed",
};

static void next_batch(struct qbulk *b);

static void
rcpt_batch_clear(struct qbulk *b)
{
	for (size_t i = 0; b->m && i < b->bn; i++) {
		spool_work_free(b->m[i].w);
		free(b->m[i].res);
		free(b->m[i].dsn);
		bounce_copy_clear(&b->m[i].bcopy);
	}
	free(b->m);
	free(b->upd);
	b->m = NULL;
	b->upd = NULL;
	b->nupd = 0;
}

static void
qb_free(struct qbulk *b)
{
	rcpt_batch_clear(b);
	loop_timer_free(b->turn);
	free(b->hits);
	free(b->ids);
	free(b->done);
	free(b);
}

static const char *
qid_text(uint64_t q, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64, q);
	return buf;
}

/* ---- the request ------------------------------------------------------------------ */

static bool
domain_ok(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-')
		return false;
	for (; *d; d++)
		if (!isalnum((unsigned char)*d) && !strchr(".-_", *d) &&
		    !((unsigned char)*d & 0x80))
			return false;
	return true;
}

/* "<a@b>" -> "a@b"; "<>" -> "" (the null sender). In place. */
static char *
unbracket(char *a)
{
	size_t n = strlen(a);

	if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
		a[n - 1] = '\0';
		return a + 1;
	}
	return a;
}

/* One word of the request into b. NULL, or what is wrong with it. */
static const char *
parse_word(struct qbulk *b, char *w)
{
	size_t i;

	if (strcasecmp(w, "ALL") == 0) {
		b->all = true;
	} else if (strncmp(w, "from=", 5) == 0) {
		b->from = unbracket(w + 5);
	} else if (strncmp(w, "to=", 3) == 0) {
		b->to = unbracket(w + 3);
		if (*b->to == '\0' || !strchr(b->to, '@'))
			return "to= needs a recipient address";
	} else if (strncmp(w, "domain=", 7) == 0) {
		b->domain = w + 7;
		for (char *p = w + 7; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!domain_ok(b->domain))
			return "domain= needs a domain name";
	} else {
		for (i = 0; i < SPOOL_QID_LEN && isxdigit((unsigned char)w[i]); i++)
			;
		if (i != SPOOL_QID_LEN || w[i] != '\0')
			return "is not a queue id (16 hex digits), ALL, or from=, to=, domain=";
		if (b->nqids == QB_IDS_MAX)
			return "is one queue id too many for one request";
		for (i = 0; i < SPOOL_QID_LEN; i++)
			b->qids[b->nqids][i] = (char)tolower((unsigned char)w[i]);
		for (i = 0; i < b->nqids; i++) /* twice is once: a batch holds a message once */
			if (strcmp(b->qids[i], b->qids[b->nqids]) == 0)
				return NULL;
		b->qidp[b->nqids] = b->qids[b->nqids];
		b->nqids++;
	}
	return NULL;
}

/* The words of arg into b. 0, or -1 with the error replied. */
static int
parse(struct qbulk *b, const char *arg)
{
	char *w, *save = NULL, q[300];
	const char *why = NULL;
	bool filter;

	snprintf(b->line, sizeof(b->line), "%s", arg);
	snprintf(b->request, sizeof(b->request), "%s", arg);
	for (w = strtok_r(b->line, " ", &save); w && !why; w = strtok_r(NULL, " ", &save))
		if ((why = parse_word(b, w)) != NULL)
			break;
	filter = b->from || b->to || b->domain;
	if (why) {
		ctl_error(b->c, NULL, "\"%s\" %s", LOG_Q(q, w), why);
		return -1;
	}
	if (b->nqids == 0 && !b->all && !filter) {
		ctl_error(b->c, NULL, "a queue id, ALL, or from=, to=, domain= is needed");
		return -1;
	}
	if ((b->nqids > 0) + b->all + filter > 1) {
		ctl_error(b->c, NULL,
		          "give queue ids, ALL, or filters (from=, to=, domain=), "
		          "not several of them");
		return -1;
	}
	b->per_rcpt = b->verb == CTLQ_BOUNCE || (b->verb == CTLQ_DELETE && (b->to || b->domain));
	return 0;
}

/* ---- the reply -------------------------------------------------------------------- */

static bool
found(const struct qbulk *b, const char *qid)
{
	uint64_t q = strtoull(qid, NULL, 16);

	for (size_t i = 0; i < b->nhits; i++)
		if (b->hits[i].qid == q)
			return true;
	return false;
}

static void
finish(struct qbulk *b)
{
	struct evbuffer *out = evbuffer_new();
	struct jw w;
	char q[CTL_LINE_MAX + 64];

	log_info("%s event=ctl_bulk uid=%u verb=%s request=\"%s\" matched=%zu messages=%zu "
	         "recipients=%zu in_flight=%zu held=%zu dsns=%zu",
	         b->c->id, (unsigned)b->c->uid, verb_done[b->verb], LOG_Q(q, b->request), b->nhits,
	         b->messages, b->rcpts, b->inflight, b->held, b->dsns);
	jw_init(&w, out);
	jw_obj(&w, NULL);
	jw_str(&w, "action", verb_done[b->verb]);
	jw_int(&w, "matched", (int64_t)b->nhits);
	jw_int(&w, "messages", (int64_t)b->messages);
	if (b->per_rcpt) {
		jw_int(&w, "recipients", (int64_t)b->rcpts);
		jw_int(&w, "removed", (int64_t)b->removed);
	}
	if (b->verb == CTLQ_BOUNCE)
		jw_int(&w, "dsns", (int64_t)b->dsns);
	jw_int(&w, "in_flight", (int64_t)b->inflight);
	if (b->verb == CTLQ_FLUSH)
		jw_int(&w, "held", (int64_t)b->held);
	jw_arr(&w, "not_found");
	for (size_t i = 0; i < b->nqids; i++)
		if (!found(b, b->qids[i]))
			jw_str(&w, NULL, b->qids[i]);
	jw_end(&w);
	jw_end(&w);
	ctl_reply(b->c, out);
	evbuffer_free(out);
	qb_free(b);
}

/* A failure part way: what was done stays done; say how far it got. */
static void
fail(struct qbulk *b, const char *why)
{
	log_err("%s event=ctl_bulk_failed verb=%s messages=%zu error=\"%s\"", b->c->id,
	        verb_done[b->verb], b->messages, why);
	ctl_error(b->c, NULL, "stopped after %zu of %zu messages: %s", b->messages, b->nhits, why);
	qb_free(b);
}

/* ---- whole messages: hold, release, delete ----------------------------------------- */

static int
state_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct qbulk *b = arg;
	enum spool_qb_op op = b->verb == CTLQ_HOLD      ? SPOOL_QB_HOLD
	                      : b->verb == CTLQ_RELEASE ? SPOOL_QB_RELEASE
	                                                : SPOOL_QB_DELETE;

	return spool_queue_batch(sp, op, b->ids, b->bn, b->now, b->done, err, errlen);
}

/* The batch is durable: the schedule and the counts follow, one log line each. */
static void
state_done(struct writer_job *wj)
{
	struct qbulk *b = wj->arg;
	struct sched *s = b->c->srv->sched;
	char qt[SPOOL_QID_LEN + 1];

	if (wj->status != 0) {
		fail(b, wj->err);
		return;
	}
	for (size_t i = 0; i < b->bn; i++) {
		int64_t id = b->ids[i];
		enum sched_where where = SCHED_NONE;

		if (!b->done[i])
			continue; /* gone meanwhile */
		if (b->verb == CTLQ_RELEASE && s)
			sched_release(s, id, b->now);
		else if (s)
			where = sched_remove(s, id);
		if (b->verb == CTLQ_DELETE)
			qstats_remove(sched_qstats(s), id);
		else
			qstats_set_held(sched_qstats(s), id, b->verb == CTLQ_HOLD);
		b->messages++;
		b->inflight += where == SCHED_INFLIGHT;
		qid_text(b->hits[b->pos + i].qid, qt, sizeof(qt));
		log_info("qid=%s event=%s by=ctl uid=%u in_flight=%d", qt, verb_done[b->verb],
		         (unsigned)b->c->uid, where == SCHED_INFLIGHT);
		if (b->verb == CTLQ_DELETE)
			dlvlog_removed(qt, "deleted");
	}
	b->pos += b->bn;
	next_batch(b);
}

/* The next batch size from pos: at most max messages and QB_BATCH_BYTES (at least one). */
static size_t
batch_len(const struct qbulk *b, size_t max)
{
	size_t n = 0;
	uint64_t bytes = 0;

	while (b->pos + n < b->nhits && n < max) {
		bytes += (uint64_t)(b->hits[b->pos + n].size > 0 ? b->hits[b->pos + n].size : 0);
		if (n > 0 && bytes > QB_BATCH_BYTES)
			break;
		n++;
	}
	return n;
}

static void
state_batch(struct qbulk *b)
{
	b->bn = batch_len(b, QB_BATCH);
	for (size_t i = 0; i < b->bn; i++)
		b->ids[i] = b->hits[b->pos + i].id;
	memset(&b->wj, 0, sizeof(b->wj));
	b->wj.kind = WRITER_FN;
	b->wj.fn = state_fn;
	b->wj.arg = b;
	b->wj.done = state_done;
	writer_submit(b->c->srv->writer, &b->wj);
}

/* ---- flush: on the loop, a turn at a time -------------------------------------------- */

static void
flush_turn(void *arg)
{
	struct qbulk *b = arg;
	struct sched *s = b->c->srv->sched;
	size_t end = b->pos + QB_FLUSH_TURN < b->nhits ? b->pos + QB_FLUSH_TURN : b->nhits;

	for (; b->pos < end; b->pos++) {
		enum sched_where where;
		if (b->hits[b->pos].state == SPOOL_MSG_HELD) {
			b->held++; /* release it to deliver it */
			continue;
		}
		where = s ? sched_reschedule(s, b->hits[b->pos].id, b->now) : SCHED_NONE;
		b->messages += where == SCHED_QUEUED;
		b->inflight += where == SCHED_INFLIGHT;
	}
	if (b->pos < b->nhits && b->turn)
		loop_timer_add(b->turn, 0); /* the loop serves others in between */
	else
		finish(b);
}

/* ---- recipients: bounce; delete with to= or domain= ------------------------------- */

static bool
rcpt_selected(const struct qbulk *b, const char *addr)
{
	char dom[256];

	if (b->to && strcasecmp(addr, b->to) != 0)
		return false;
	if (b->domain) {
		spool_qsel_domain(addr, dom, sizeof(dom));
		return strcmp(dom, b->domain) == 0;
	}
	return true;
}

/* Worker: the selected pending recipients of m (loaded) and, for a bounce, its DSN. */
static void
rcpt_prepare(struct qbulk *b, struct qb_msg *m)
{
	struct spool_work *w = m->w;
	struct bounce_rcpt *br = xcalloc(w->nrcpts + 1, sizeof(*br));
	char err[256];

	m->res = xcalloc(w->nrcpts + 1, sizeof(*m->res));
	for (size_t i = 0; i < w->nrcpts; i++) {
		if (!rcpt_selected(b, w->rcpts[i].address))
			continue;
		m->res[m->nres] =
		    (struct spool_result){w->rcpts[i].id, SPOOL_RCPT_FAILED, b->now, b->reply};
		br[m->nres].address = w->rcpts[i].address;
		br[m->nres].status = reply_status(R_ADMIN_BOUNCE);
		br[m->nres++].diagnostic = b->reply;
	}
	/* never a DSN to the null sender or MAILER-DAEMON (RFC 5321 6.1) */
	if (b->verb == CTLQ_BOUNCE && m->nres > 0 && bounce_wanted(w->sender)) {
		struct bounce_info bi = {b->hostname, w->qid,  w->sender, w->received, 0,
		                         br,          m->nres, w->body,   w->body_len, NULL};
		if (bounce_build(&bi, &m->dsn, &m->dsn_len, err, sizeof(err)) != 0)
			m->dsn = NULL; /* the recipients still fail; no notice */
		else if (b->pm[0])     /* a copy that cannot be made costs no notice */
			bounce_copy_make(&m->bcopy, &bi, b->pm, b->now, err, sizeof(err));
	}
	free(br);
}

static void
rcpt_load(void *arg)
{
	struct qbulk *b = arg;
	struct spool *sp = reader_spool(b->dir, b->err, sizeof(b->err));

	b->rc = sp ? 0 : -1;
	for (size_t i = 0; sp && i < b->bn; i++) {
		struct qb_msg *m = &b->m[i];
		if (m->skip)
			continue;
		/* gone since the selection (delivered, deleted): nothing to do */
		if (spool_load_work(sp, b->hits[b->pos + i].id, &m->w, b->err, sizeof(b->err)) !=
		    0) {
			m->skip = true;
			continue;
		}
		rcpt_prepare(b, m);
		if (m->nres == 0)
			m->skip = true;
	}
}

static int
rcpt_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct qbulk *b = arg;
	int full = 0;

	return spool_apply(sp, b->upd, b->nupd, &full, err, errlen);
}

/* Messages of the batch that still have pending recipients go back to the schedule. */
static void
rcpt_requeue(struct qbulk *b, bool all)
{
	struct sched *s = b->c->srv->sched;

	for (size_t i = 0; s && i < b->bn; i++) {
		struct qb_msg *m = &b->m[i];
		if (m->was_queued && (all || m->skip || m->nres < m->w->nrcpts))
			sched_add(s, b->hits[b->pos + i].id, b->now);
	}
}

static void rcpt_applied(struct writer_job *wj);

/* Loop: the batch is loaded; store it (or go on when nothing in it changes). */
static void
rcpt_loaded(void *arg)
{
	struct qbulk *b = arg;

	if (b->rc != 0) {
		rcpt_requeue(b, true);
		fail(b, b->err);
		return;
	}
	b->upd = xcalloc(b->bn + 1, sizeof(*b->upd));
	for (size_t i = 0; i < b->bn; i++) {
		struct qb_msg *m = &b->m[i];
		if (m->skip)
			continue;
		if (m->dsn)
			bounce_msg_in(&m->bounce, &m->bounce_rcpt, m->w->sender, m->dsn, m->dsn_len,
			              b->now);
		b->upd[b->nupd++] = (struct spool_update){
		    .msg_id = m->w->id,
		    .results = m->res,
		    .nresults = m->nres,
		    .bounce = m->dsn ? &m->bounce : NULL,
		    .bounce_copy = m->dsn && m->bcopy.body ? &m->bcopy.in : NULL,
		    .results_only = 1};
	}
	memset(&b->wj, 0, sizeof(b->wj));
	b->wj.kind = WRITER_FN;
	b->wj.fn = rcpt_fn;
	b->wj.arg = b;
	b->wj.done = rcpt_applied;
	if (b->nupd == 0) {
		b->wj.status = 0;
		rcpt_applied(&b->wj);
		return;
	}
	writer_submit(b->c->srv->writer, &b->wj);
}

/* One message's recipients are durable: counts, log lines, its DSN into the schedule. */
static void
rcpt_message_done(struct qbulk *b, struct qb_msg *m)
{
	struct sched *s = b->c->srv->sched;
	char qa[300];

	for (size_t k = 0; k < m->nres; k++) {
		const char *addr = NULL;
		for (size_t i = 0; i < m->w->nrcpts && !addr; i++)
			if (m->w->rcpts[i].id == m->res[k].rcpt_id)
				addr = m->w->rcpts[i].address;
		qstats_rcpt_done(sched_qstats(s), m->w->id, addr);
		if (b->verb == CTLQ_BOUNCE)
			log_info(
			    "qid=%s event=delivery to=\"<%s>\" relay=none dsn=%s status=bounced "
			    "by=ctl uid=%u reply=\"%s\"",
			    m->w->qid, LOG_Q(qa, addr), reply_status(R_ADMIN_BOUNCE),
			    (unsigned)b->c->uid, b->reply);
		else
			log_info("qid=%s event=deleted to=\"<%s>\" by=ctl uid=%u", m->w->qid,
			         LOG_Q(qa, addr), (unsigned)b->c->uid);
	}
	b->messages++;
	b->rcpts += m->nres;
	if (m->dsn && m->bounce.id > 0) {
		log_info("qid=%s event=bounce bounce_qid=%s to=\"<%s>\" failed=%zu", m->w->qid,
		         m->bounce.qid, LOG_Q(qa, m->w->sender), m->nres);
		qstats_add(sched_qstats(s), m->bounce.id, m->bounce.received, false,
		           m->bounce.rcpts, m->bounce.nrcpts);
		if (s)
			sched_add(s, m->bounce.id, b->now);
		b->dsns++;
	}
	if (m->dsn && m->bcopy.body && m->bcopy.in.id > 0) {
		log_info("qid=%s event=bounce_copy bounce_qid=%s to=\"<%s>\"", m->w->qid,
		         m->bcopy.in.qid, LOG_Q(qa, b->pm));
		qstats_add(sched_qstats(s), m->bcopy.in.id, b->now, false, m->bcopy.in.rcpts, 1);
		if (s)
			sched_add(s, m->bcopy.in.id, b->now);
	}
	if (m->nres == m->w->nrcpts) { /* nothing pending: spool_apply removed it */
		dlvlog_removed(m->w->qid, b->verb == CTLQ_BOUNCE ? "bounced" : "deleted");
		b->removed++;
	}
}

static void
rcpt_applied(struct writer_job *wj)
{
	struct qbulk *b = wj->arg;

	if (wj->status != 0) {
		rcpt_requeue(b, true); /* nothing changed */
		fail(b, wj->err);
		return;
	}
	for (size_t i = 0; i < b->bn; i++)
		if (!b->m[i].skip)
			rcpt_message_done(b, &b->m[i]);
	rcpt_requeue(b, false);
	rcpt_batch_clear(b);
	b->pos += b->bn;
	next_batch(b);
}

static void
rcpt_batch(struct qbulk *b)
{
	struct sched *s = b->c->srv->sched;

	b->bn = batch_len(b, QB_RCPT_BATCH);
	b->m = xcalloc(b->bn, sizeof(*b->m));
	for (size_t i = 0; i < b->bn; i++) {
		int64_t id = b->hits[b->pos + i].id;
		if (s && sched_where(s, id) == SCHED_INFLIGHT) {
			b->m[i].skip = true; /* its attempt records these recipients itself */
			b->inflight++;
			continue;
		}
		/* out of the schedule first: no attempt may start before the commit */
		b->m[i].was_queued = s && sched_remove(s, id) == SCHED_QUEUED;
	}
	async_run(b->c->srv->async, rcpt_load, rcpt_loaded, b);
}

/* ---- the run ------------------------------------------------------------------------- */

/*
 * A long run (a bounce of many messages loads and answers each) shows it is
 * alive: mxrelayctl gives up after 60 s without a byte (CTLSOCK_TIMEOUT), and
 * JSON allows whitespace before the reply document.
 */
static void
heartbeat(struct qbulk *b)
{
	time_t now = time(NULL);

	if (now - b->beat < QB_BEAT || b->c->closed || evref_closing(&b->c->ref))
		return;
	b->beat = now;
	bufferevent_write(b->c->bev, " ", 1);
}

static void
next_batch(struct qbulk *b)
{
	heartbeat(b);
	if (b->pos >= b->nhits)
		finish(b);
	else if (b->verb == CTLQ_FLUSH)
		flush_turn(b);
	else if (b->per_rcpt)
		rcpt_batch(b);
	else
		state_batch(b);
}

static void
select_work(void *arg)
{
	struct qbulk *b = arg;
	struct spool *sp = reader_spool(b->dir, b->err, sizeof(b->err));
	struct spool_qsel sel = {b->qidp, b->nqids, b->from, b->to, b->domain, -1};

	/* explicit ids: whatever their state; otherwise only what the verb changes */
	if (b->nqids == 0)
		sel.state = b->verb == CTLQ_RELEASE                         ? SPOOL_MSG_HELD
		            : b->verb == CTLQ_HOLD || b->verb == CTLQ_FLUSH ? SPOOL_MSG_QUEUED
		                                                            : -1;
	b->rc = sp ? spool_queue_select(sp, &sel, &b->hits, &b->nhits, b->err, sizeof(b->err)) : -1;
}

static void
select_done(void *arg)
{
	struct qbulk *b = arg;

	if (b->rc != 0) {
		ctl_error(b->c, NULL, "%s", b->err);
		qb_free(b);
		return;
	}
	b->ids = xcalloc(QB_BATCH, sizeof(*b->ids));
	b->done = xcalloc(QB_BATCH, sizeof(*b->done));
	if (b->verb == CTLQ_FLUSH)
		b->turn = loop_timer_new(b->c->srv->base, false, flush_turn, b);
	next_batch(b);
}

void
qbulk_start(struct ctl_conn *c, enum ctlq_verb verb, const char *arg)
{
	struct qbulk *b = xcalloc(1, sizeof(*b));

	b->c = c;
	b->verb = verb;
	b->now = b->beat = time(NULL);
	if (parse(b, arg) != 0) {
		free(b);
		return;
	}
	snprintf(b->dir, sizeof(b->dir), "%s", c->srv->cfg->data_dir);
	snprintf(b->hostname, sizeof(b->hostname), "%s", c->srv->cfg->hostname);
	snprintf(b->pm, sizeof(b->pm), "%s",
	         c->srv->cfg->postmaster_bounce_copy ? c->srv->cfg->postmaster_bounce_copy : "");
	reply_format(b->reply, sizeof(b->reply),
	             verb == CTLQ_BOUNCE ? R_ADMIN_BOUNCE : R_ADMIN_DELETE);
	c->waiting = true;
	async_run(c->srv->async, select_work, select_done, b);
}
