/*
 * intake: judge, sign, store, then log, count and schedule one message
 * (see intake.h). The order matters: nothing is counted as accepted, and
 * no 250 can go out, before the spool writer's commit.
 */
#include "mta/intake/intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/async.h"
#include "mta/delivery/sched.h"
#include "mta/intake/audit.h"
#include "mta/intake/content.h"
#include "mta/intake/dkimsign.h"
#include "mta/intake/hdrfrom.h"
#include "mta/intake/repair.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/shared/addr.h"
#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/writer.h"

struct intake_job {
	struct server *srv;
	struct intake_env env; /* the caller's envelope (its pointers borrowed) */
	intake_done_fn done;
	void *arg;
	char *body; /* the message, owned; the signature goes on top */
	size_t len;
	char from[ADDR_MAX]; /* the header From mailbox, for the audit */
	struct audit_msg audit;
	struct writer_job wj;
	struct dkimsign *dk; /* a reference: SIGHUP may replace srv->dkim meanwhile */
	char domain[256];
	char *headers; /* DKIM-Signature fields from the worker */
	char err[256];
	int rc;
	bool at_once; /* still inside intake_submit: no wait began */
	size_t bare_lf; /* lines whose bare LF content.c normalised */
	bool repaired;  /* header_repair changed the header */
	char shown[ADDR_MAX]; /* display_name_address: the refusal's argument */
	char msgid[CONTENT_MSGID_MAX + 1]; /* content_msgid: logged and stored */
	int64_t arrival_ms; /* util_wall_ms when stored: spool_msg_in.received is its second */
};

/*
 * The audit's bare_lf and repaired counts, once the outcome is known: a
 * repair counts only for a message stored (after the spool commit), a
 * normalised bare LF for every message that had one.
 */
static void
count_changes(struct intake_job *j, bool stored)
{
	if (j->bare_lf > 0)
		audit_event(j->srv, j->env.client_ip, j->env.auth_user, AUDIT_EV_BARE_LF);
	if (stored && j->repaired)
		audit_event(j->srv, j->env.client_ip, j->env.auth_user, AUDIT_EV_REPAIRED);
}

/* Render the result, hand it to the caller, free the job. */
static void
report(struct intake_job *j, enum reply_id id, const char *a0, const char *a1, const char *a2)
{
	char reply[1024], text[1024], code[16] = "";
	struct intake_result res = {id, reply, text, code, !j->at_once};

	reply[0] = text[0] = '\0';
	if (id != R_NONE) {
		reply_format(reply, sizeof(reply), id, a0, a1, a2);
		reply_format_text(text, sizeof(text), id, a0, a1, a2);
		snprintf(code, sizeof(code), "%u %s", reply_code(id), reply_status(id));
	}
	j->done(j->arg, &res);
	free(j->body);
	free(j->headers);
	free(j);
}

static void
reject(struct intake_job *j, enum reply_id id, const char *a0, const char *a1, const char *a2)
{
	char text[1024], qa[300];

	j->srv->rejected++;
	metrics_reject(reply_class(id));
	count_changes(j, false);
	reply_format_text(text, sizeof(text), id, a0, a1, a2);
	log_warn("%s qid=%s event=rejected %s from=\"<%s>\" code=%u dsn=%s reason=\"%s\"",
	         j->env.log_id, j->env.qid, j->env.log_who, LOG_Q(qa, j->env.sender),
	         reply_code(id), reply_status(id), text);
	report(j, id, a0, a1, a2);
}

/*
 * The Message-ID for event=accepted: one token (no space, quote or control
 * byte, so a hostile value cannot add keys), or "none" when empty.
 */
static const char *
msgid_log(char *out, size_t outlen, const char *msgid)
{
	if (msgid[0] == '\0')
		return "none";
	log_sanitize(out, outlen, msgid, strlen(msgid));
	for (char *p = out; *p; p++)
		if (*p == ' ')
			*p = '?';
	return out;
}

static void
stored(struct writer_job *wj)
{
	struct intake_job *j = wj->arg;
	const struct intake_env *e = &j->env;
	char qa[300], lf[32], mid[CONTENT_MSGID_MAX + 4];

	if (e->spooling)
		*e->spooling = false;
	if (wj->status != 0) {
		j->srv->rejected++; /* the stop line's count of refusals includes these 452s */
		metrics_reject(RC_SYSTEM);
		log_err("%s qid=%s event=spool_error %s disk_full=%s error=\"%s\"", e->log_id,
		        e->qid, e->log_who, wj->disk_full ? "yes" : "no", wj->err);
		count_changes(j, false);
		report(j, wj->disk_full ? R_SPOOL_FULL : R_LOCAL_ERROR, NULL, NULL, NULL);
		return;
	}
	j->srv->accepted++;
	metrics_inc(M_ACCEPTED);
	snprintf(lf, sizeof(lf), " bare_lf=%zu", j->bare_lf);
	log_info("%s qid=%s event=accepted %s from=\"<%s>\" nrcpt=%zu size=%zu%s%s msgid=%s",
	         e->log_id, e->qid, e->log_who_accepted ? e->log_who_accepted : e->log_who,
	         LOG_Q(qa, e->sender), e->nrcpts, wj->in.body_len,
	         e->log_accepted_tail ? e->log_accepted_tail : "", j->bare_lf ? lf : "",
	         msgid_log(mid, sizeof(mid), j->msgid));
	count_changes(j, true);
	qstats_add(sched_qstats(j->srv->sched), wj->in.id, wj->in.received, false, wj->in.rcpts,
	           wj->in.nrcpts);
	/* queued whether or not the client is still there to hear it */
	sched_arrived(j->srv->sched, wj->in.id, j->arrival_ms); /* delays= to the millisecond */
	if (j->srv->sched)
		sched_add(j->srv->sched, wj->in.id, time(NULL));
	report(j, R_QUEUED, e->qid, NULL, NULL);
}

static void
spool_it(struct intake_job *j)
{
	const struct intake_env *e = &j->env;
	struct writer_job *w = &j->wj;

	memset(w, 0, sizeof(*w));
	w->kind = WRITER_INSERT;
	snprintf(w->in.qid, sizeof(w->in.qid), "%s", e->qid);
	w->in.sender = e->sender;
	w->in.rcpts = e->rcpts;
	w->in.nrcpts = e->nrcpts;
	w->in.body = j->body;
	w->in.body_len = j->len;
	j->arrival_ms = util_wall_ms();
	w->in.received = (time_t)(j->arrival_ms / 1000);
	w->in.client_ip = e->client_ip;
	w->in.helo = e->helo;
	w->in.auth_user = e->auth_user;
	w->in.listener = e->listener;
	w->in.flags = e->flags;
	w->in.message_id = j->msgid[0] ? j->msgid : NULL;
	if (e->audit)
		w->in.audit = audit_fill(&j->audit, e->audit, j->from, strlen(j->from));
	w->done = stored;
	w->arg = j;
	if (e->spooling)
		*e->spooling = true;
	writer_submit(j->srv->writer, w);
}

static void
sign_work(void *arg)
{
	struct intake_job *j = arg;
	j->rc =
	    dkimsign_sign(j->dk, j->domain, j->body, j->len, &j->headers, j->err, sizeof(j->err));
}

static void
sign_done(void *arg)
{
	struct intake_job *j = arg;
	char *buf;
	size_t hl;

	dkimsign_unref(j->dk);
	j->dk = NULL;
	if (j->env.gone && *j->env.gone) {
		/* nobody waits for the answer: store nothing */
		report(j, R_NONE, NULL, NULL, NULL);
		return;
	}
	if (j->rc != 0) {
		log_err("%s qid=%s event=dkim_failed domain=%s error=\"%s\"", j->env.log_id,
		        j->env.qid, j->domain, j->err);
		/* a key that worked at start-up fails now: let the client retry later */
		reject(j, R_DKIM_FAILED, NULL, NULL, NULL);
		return;
	}
	/* the signature goes on top: signing covers the header below it, not Received */
	hl = strlen(j->headers);
	buf = xmalloc(hl + j->len);
	memcpy(buf, j->headers, hl);
	memcpy(buf + hl, j->body, j->len);
	free(j->body);
	j->body = buf;
	j->len += hl;
	log_debug("%s qid=%s event=dkim_signed domain=%s", j->env.log_id, j->env.qid, j->domain);
	spool_it(j);
}

/*
 * What content.c changed for bare_lf = normalize and header_repair (SMTP
 * only): counted in the audit once per message (count_changes), each repair logged. The
 * repairs are already in j->body, so the signature made next covers them.
 */
static void
note_changes(struct intake_job *j, const struct content *c, bool accepted)
{
	const struct intake_env *e = &j->env;
	unsigned done = content_repaired(c);

	j->bare_lf = content_bare_lf(c);
	if (!accepted || done == 0)
		return;
	j->repaired = true; /* counted once stored (count_changes) */
	if (done & HREPAIR_FROM_AT)
		log_info("%s qid=%s event=header_repair repair=from_at %s", e->log_id, e->qid,
		         e->log_who);
	if (done & HREPAIR_ADD_TO)
		log_info("%s qid=%s event=header_repair repair=add_to %s", e->log_id, e->qid,
		         e->log_who);
}

/* The content and author rules; R_NONE when acceptable. */
static enum reply_id
judge(const struct intake_env *e, struct content *c, struct hdrfrom_refusal *r)
{
	memset(r, 0, sizeof(*r));
	r->id = content_end(c);
	if (r->id != R_NONE)
		return r->id;
	/* an AUTH user's credential also covers Sender and Resent-* (hdrfrom.h) */
	if (e->auth_user)
		return hdrfrom_cred_refusal(content_hdrfrom(c), e->cred, r);
	return hdrfrom_refusal(content_hdrfrom(c), r);
}

/*
 * display_name_address (dispname.h): a From that shows another domain's
 * address in its display name is refused (the default), logged, or let
 * through, by the client's best matching rule.
 */
static enum reply_id
display_policy(struct intake_job *j, const struct content *c, struct hdrfrom_refusal *r)
{
	const struct intake_env *e = &j->env;
	const char *shown = hdrfrom_shown(content_hdrfrom(c));
	struct sockaddr_storage ss;
	char qa[300], qs[300];
	int line, act;

	if (r->id != R_NONE || shown[0] == '\0')
		return r->id;
	act = config_display_name_action(j->srv->cfg, e->auth_user, e->listener,
	                                 cidr_addr_parse(e->client_ip, &ss), &line);
	snprintf(j->shown, sizeof(j->shown), "%s", shown);
	if (act == DNA_WARN)
		log_warn("%s qid=%s event=display_name_address action=warn %s from=\"<%s>\" "
		         "shown=\"%s\" line=%d",
		         e->log_id, e->qid, e->log_who, LOG_Q(qa, hdrfrom_mailbox(content_hdrfrom(c))),
		         LOG_Q(qs, j->shown), line);
	if (act == DNA_REFUSE) {
		r->id = R_FROM_DISPLAY_ADDRESS;
		r->arg[0] = j->shown;
	}
	return r->id;
}

void
intake_submit(struct server *srv, const struct intake_env *env, struct content *content,
              intake_done_fn done, void *arg)
{
	struct intake_job *j = xcalloc(1, sizeof(*j));
	struct hdrfrom_refusal r;
	const char *dom;

	j->srv = srv;
	j->env = *env;
	j->done = done;
	j->arg = arg;
	j->at_once = true;
	judge(env, content, &r);
	display_policy(j, content, &r);
	note_changes(j, content, r.id == R_NONE);
	snprintf(j->from, sizeof(j->from), "%s", hdrfrom_mailbox(content_hdrfrom(content)));
	snprintf(j->msgid, sizeof(j->msgid), "%s", content_msgid(content));
	j->body = content_take(content, &j->len);
	content_free(content);
	if (r.id != R_NONE) {
		reject(j, r.id, r.arg[0], r.arg[1], r.arg[2]);
		return;
	}
	/* From is exactly one mailbox here: its domain alone decides signing */
	dom = addr_domain(j->from);
	if (dkimsign_has(srv->dkim, dom)) {
		j->dk = dkimsign_ref(srv->dkim);
		snprintf(j->domain, sizeof(j->domain), "%s", dom);
		j->at_once = false;
		async_run(srv->async, sign_work, sign_done, j);
		return;
	}
	if (srv->cfg->dkim_refuse_unsigned) {
		reject(j, R_DKIM_NO_KEY, NULL, NULL, NULL);
		return;
	}
	if (srv->dkim)
		log_warn("%s qid=%s event=unsigned domain=%s reason=no_key", env->log_id, env->qid,
		         dom ? dom : "(no From)");
	j->at_once = false;
	spool_it(j);
}

enum reply_id
intake_sender_refusal(const struct server *srv, const char *sender)
{
	/* dkim_unsigned = refuse: say so before the client sends the data */
	if (srv->cfg->dkim_refuse_unsigned && sender[0] != '\0' &&
	    !dkimsign_has(srv->dkim, addr_domain(sender)))
		return R_SENDER_NO_DKIM_KEY;
	return R_NONE;
}
