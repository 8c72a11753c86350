/*
 * ops: the control verbs of the operator's everyday tools (issue 16):
 *
 *   MAILQ [N]        the queue as mailq(1) shows it (mxrelay-sendmail -bp):
 *                    every message with ALL its pending recipients (up to
 *                    OPS_MAILQ_RCPTS) and each one's last reply, read and
 *                    written as JSON on workers, one snapshot; N messages
 *                    at most (default and bound OPS_MAILQ_MAX)
 *   BLOCKS           the addresses with failed-AUTH state (mxrelayctl unblock
 *                    --list): failures, block end
 *   UNBLOCK ALL|NET  forget that state for every address, or those inside
 *                    NET (an address or CIDR; IPv6 is kept per /64, so a
 *                    longer prefix names its /64): they may AUTH again at once
 *
 * The failed-AUTH table is smtpd/'s (peers.c), which this folder may not
 * include: it is reached through srv->authfail, the functions main.c hands
 * over (server.h). Those run on the loop, as this file does.
 */
#include "mta/control/control_int.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/async.h"
#include "mta/control/jsonw.h"
#include "mta/delivery/sched.h"
#include "mta/reader.h"
#include "mta/server.h"
#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "spool/spool.h"

#define OPS_MAILQ_MAX 100000 /* messages in one listing: bounds the reply (as LIST does) */
#define OPS_MAILQ_RCPTS 1000 /* pending recipients listed per message; the count says the rest */
#define OPS_BLOCKS_MAX 4096  /* entries in one reply: peers.c keeps at most as many */

/*
 * One MAILQ in progress, owned by whichever step holds it: the read on a
 * worker, the in-flight marks on the loop (the scheduler is the loop's),
 * the JSON written on a worker, the reply on the loop. A listing of 100,000
 * messages is ~30 MB of JSON: written on the loop, it held the loop for
 * most of a second.
 */
struct mailq_op {
	struct ctl_conn *c;
	char dir[4096];
	size_t limit;
	time_t now;
	int rc;
	char err[256];
	struct spool_qmsg *msgs;
	size_t nmsgs;
	bool *active; /* [nmsgs]: being delivered now */
	struct evbuffer *doc;
};

static void
mailq_free(struct mailq_op *op)
{
	spool_qmsgs_free(op->msgs, op->nmsgs);
	free(op->active);
	if (op->doc)
		evbuffer_free(op->doc);
	free(op);
}

static void
mailq_work(void *arg)
{
	struct mailq_op *op = arg;
	struct spool *sp = reader_spool(op->dir, op->err, sizeof(op->err));

	op->rc = -1;
	if (sp)
		op->rc = spool_queue_list(sp, op->limit + 1, OPS_MAILQ_RCPTS, &op->msgs, &op->nmsgs,
		                          op->err, sizeof(op->err));
}

static void
put_mailq_msg(struct jw *w, const struct spool_qmsg *m, bool active)
{
	jw_obj(w, NULL);
	jw_str(w, "qid", m->qid);
	/* mailq's marks: '!' held, '*' being delivered now */
	jw_str(w, "status", m->state == SPOOL_MSG_HELD ? "held" : active ? "active" : "deferred");
	jw_int(w, "received", (int64_t)m->received);
	jw_int(w, "size", (int64_t)m->size);
	jw_str(w, "sender", m->sender);
	jw_int(w, "pending", (int64_t)m->npending);
	jw_arr(w, "recipients");
	for (size_t i = 0; i < m->nrcpts; i++) {
		jw_obj(w, NULL);
		jw_str(w, "address", m->rcpts[i].address);
		jw_str(w, "last_reply", m->rcpts[i].last_reply);
		jw_end(w);
	}
	jw_end(w);
	jw_end(w);
}

/* On a worker: the document, then the messages are freed there too. */
static void
mailq_format(void *arg)
{
	struct mailq_op *op = arg;
	size_t i, n = op->nmsgs > op->limit ? op->limit : op->nmsgs;
	struct jw w;

	op->doc = evbuffer_new();
	jw_init(&w, op->doc);
	jw_obj(&w, NULL);
	jw_int(&w, "now", (int64_t)op->now);
	jw_arr(&w, "messages");
	for (i = 0; i < n; i++)
		put_mailq_msg(&w, &op->msgs[i], op->active[i]);
	jw_end(&w);
	jw_int(&w, "count", (int64_t)n);
	jw_bool(&w, "truncated", op->nmsgs > op->limit);
	jw_end(&w);
	spool_qmsgs_free(op->msgs, op->nmsgs);
	op->msgs = NULL;
	op->nmsgs = 0;
}

static void
mailq_send(void *arg)
{
	struct mailq_op *op = arg;

	ctl_reply(op->c, op->doc);
	mailq_free(op);
}

/* On the loop: which messages are in flight (O(log n) each), then the JSON on a worker. */
static void
mailq_marks(void *arg)
{
	struct mailq_op *op = arg;
	struct sched *s = op->c->srv->sched;

	if (op->rc != 0) {
		ctl_error(op->c, NULL, "%s", op->err);
		mailq_free(op);
		return;
	}
	op->active = xcalloc(op->nmsgs ? op->nmsgs : 1, sizeof(*op->active));
	for (size_t i = 0; s && i < op->nmsgs; i++)
		op->active[i] = sched_where(s, op->msgs[i].id) == SCHED_INFLIGHT;
	async_run(op->c->srv->async, mailq_format, mailq_send, op);
}

void
ops_mailq(struct ctl_conn *c, char *arg)
{
	unsigned long n = OPS_MAILQ_MAX;
	struct mailq_op *op;
	char *end;

	if (*arg) {
		n = strtoul(arg, &end, 10);
		if (*end || n == 0 || n > OPS_MAILQ_MAX || !isdigit((unsigned char)*arg)) {
			ctl_error(c, NULL, "the limit must be a number from 1 to %d",
			          OPS_MAILQ_MAX);
			return;
		}
	}
	op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->limit = n;
	op->now = time(NULL);
	snprintf(op->dir, sizeof(op->dir), "%s", c->srv->cfg->data_dir);
	c->waiting = true;
	async_run(c->srv->async, mailq_work, mailq_marks, op);
}

/* ---- failed-AUTH blocks ------------------------------------------------ */

static void
put_block(struct jw *w, const struct authfail_info *a, time_t now)
{
	jw_obj(w, NULL);
	jw_str(w, "address", a->addr);
	jw_int(w, "prefix", a->prefix);
	jw_int(w, "failures", a->failures);
	jw_bool(w, "blocked", a->blocked_until > now);
	if (a->blocked_until > now)
		jw_int(w, "blocked_until", (int64_t)a->blocked_until);
	else
		jw_null(w, "blocked_until");
	jw_int(w, "last", (int64_t)a->last);
	jw_end(w);
}

/* {"now": T, KEY: [entries], "count": N}: N may exceed the entries shown. */
static void
reply_blocks(struct ctl_conn *c, const char *key, const struct authfail_info *v, size_t n,
             size_t total, time_t now)
{
	struct evbuffer *b = evbuffer_new();
	struct jw w;

	jw_init(&w, b);
	jw_obj(&w, NULL);
	jw_int(&w, "now", (int64_t)now);
	jw_arr(&w, key);
	for (size_t i = 0; i < n; i++)
		put_block(&w, &v[i], now);
	jw_end(&w);
	jw_int(&w, "count", (int64_t)total);
	jw_end(&w);
	ctl_reply(c, b);
	evbuffer_free(b);
}

void
ops_blocks(struct ctl_conn *c, char *arg)
{
	struct authfail_info *v;
	time_t now = time(NULL);
	size_t total;

	if (*arg) {
		ctl_error(c, NULL, "BLOCKS takes no argument");
		return;
	}
	if (c->srv->authfail == NULL) {
		reply_blocks(c, "blocks", NULL, 0, 0, now);
		return;
	}
	v = xcalloc(OPS_BLOCKS_MAX, sizeof(*v));
	total = c->srv->authfail->list(c->srv, now, v, OPS_BLOCKS_MAX);
	reply_blocks(c, "blocks", v, total < OPS_BLOCKS_MAX ? total : OPS_BLOCKS_MAX, total, now);
	free(v);
}

void
ops_unblock(struct ctl_conn *c, char *arg)
{
	struct authfail_info *v;
	struct cidr net, *netp = NULL;
	time_t now = time(NULL);
	char err[256], q[300];
	size_t n;

	if (*arg == '\0') {
		ctl_error(c, NULL, "UNBLOCK needs ALL, an address or a CIDR");
		return;
	}
	if (strcmp(arg, "ALL") != 0) {
		if (cidr_parse(&net, arg, err, sizeof(err)) != 0) {
			ctl_error(c, NULL, "\"%s\" is not an address or CIDR: %s", LOG_Q(q, arg),
			          err);
			return;
		}
		netp = &net;
	}
	if (c->srv->authfail == NULL) {
		reply_blocks(c, "cleared", NULL, 0, 0, now);
		return;
	}
	v = xcalloc(OPS_BLOCKS_MAX, sizeof(*v));
	n = c->srv->authfail->clear(c->srv, netp, now, v, OPS_BLOCKS_MAX);
	for (size_t i = 0; i < n && i < OPS_BLOCKS_MAX; i++)
		log_info("%s event=auth_unblocked ip=%s prefix=%d failures=%u blocked=%s uid=%u",
		         c->id, v[i].addr, v[i].prefix, v[i].failures,
		         v[i].blocked_until > now ? "yes" : "no", (unsigned)c->uid);
	reply_blocks(c, "cleared", v, n < OPS_BLOCKS_MAX ? n : OPS_BLOCKS_MAX, n, now);
	free(v);
}
