/*
 * deliver_claim: the count of delivery attempts that never finished (issue 8).
 *
 * A message that takes the daemon down must not be tried again and again.
 * Just before a connection is opened for a message, or before its
 * transaction starts on a connection already open, its job claims it:
 * messages.unfinished + 1, durable before anything is sent (job_claim). The
 * recorded outcome sets the count back to 0 (spool_apply) and a clean
 * shutdown gives the claim back (deliver_free). Loading the message, DNS
 * and the wait in a destination's queue are never counted: nothing there
 * talks to a server, and a crash then says nothing about this message.
 *
 * After a restart, a message with a count is a suspect. Suspects are tried
 * one at a time, never two at once (other mail goes on as usual), so a crash
 * counts against the suspect that caused it and not against every suspect
 * in flight with it. At max_unfinished_attempts the message is held.
 *
 * Owns: the job's claim state and deliver.suspect_busy / waiting. Never
 * decides when a message is due: it only hands ids back to sched.
 */
#include "mta/delivery/deliver_int.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/delivery/sched.h"
#include "mta/server.h"

/*
 * The claim is durable (or failed): the destinations that waited for it go on.
 * A failed claim (disk full, any spool error) calls the attempt off: an
 * attempt that goes on when nothing can be written would deliver, fail to
 * record the outcome just the same, and deliver again at every retry.
 */
static void
job_claim_done(struct writer_job *wj)
{
	struct djob *j = wj->arg;
	struct deliver *dl = j->dl;
	/* after the loop (completions run at exit): no new connection, no writer */
	bool live = !event_base_got_exit(dl->srv->base);
	/* every group already ended: no pump below can end j */
	bool finish = j->finish_after_claim;
	struct dest **w = j->claim_waiters;
	size_t n = j->nclaim_waiters;

	j->claim = JOB_CLAIMED;
	if (wj->status != 0) {
		j->cancelled = true;
		log_err("qid=%s event=claim_failed action=cancel retry_in=%u error=\"%s\"",
		        j->w->qid, dl->srv->cfg->retry_min, wj->err);
	} else {
		j->claimed = wj->claim.result == SPOOL_CLAIMED;
	}
	j->claim_waiters = NULL;
	j->nclaim_waiters = 0;
	/* cancelled: each pump hands back the job's groups, the last one may end j */
	for (size_t i = 0; i < n; i++)
		dest_claim_done(w[i], live);
	free(w);
	if (finish && live)
		dl->finish(j);
}

void
job_claim_write(struct djob *j, int op, int max_unfinished, void (*done)(struct writer_job *))
{
	memset(&j->wj, 0, sizeof(j->wj));
	j->wj.kind = WRITER_CLAIM;
	j->wj.claim.msg_id = j->id;
	j->wj.claim.op = op;
	j->wj.claim.max_unfinished = max_unfinished;
	j->wj.done = done;
	j->wj.arg = j;
	writer_submit(j->dl->srv->writer, &j->wj);
}

int
job_claim(struct djob *j, struct dest *d)
{
	size_t i;

	if (j->cancelled)
		return DEST_CLAIM_CANCEL;
	if (j->claim == JOB_CLAIMED)
		return DEST_CLAIM_OK;
	for (i = 0; i < j->nclaim_waiters && j->claim_waiters[i] != d; i++)
		;
	if (i == j->nclaim_waiters) {
		j->claim_waiters = xrealloc(j->claim_waiters, (i + 1) * sizeof(*j->claim_waiters));
		j->claim_waiters[j->nclaim_waiters++] = d;
		dest_claim_wait(d);
	}
	if (j->claim == JOB_UNCLAIMED) {
		/* j->wj is free: nothing was written yet, the outcome waits for this claim */
		j->claim = JOB_CLAIMING;
		job_claim_write(j, SPOOL_CLAIM, 0, job_claim_done);
	}
	return DEST_CLAIM_WAIT;
}

/* The check at the limit is written: held (and said so), or tried anew. */
static void
job_held(struct writer_job *wj)
{
	struct djob *j = wj->arg;
	struct deliver *dl = j->dl;
	const struct spool_claim *c = &wj->claim;
	unsigned max = dl->srv->cfg->max_unfinished_attempts;

	if (wj->status != 0) {
		log_err("qid=%s event=spool_error error=\"%s\"", j->w->qid, wj->err);
		sched_add(dl->srv->sched, j->id, time(NULL) + (time_t)dl->srv->cfg->retry_min);
	} else if (c->result == SPOOL_CLAIM_HELD) {
		/* a message that takes the daemon down must not do it again and again */
		qstats_set_held(sched_qstats(dl->srv->sched), j->id, true);
		log_err("qid=%s event=held by=unfinished_attempts unfinished=%d limit=%u "
		        "reason=\"%d delivery attempts in a row never finished (mxrelayd stopped "
		        "during them); release with: mxrelayctl queue release %s\"",
		        c->qid, c->unfinished, max, c->unfinished, c->qid);
	} else if (c->result == SPOOL_CHECKED) {
		/* released since it was loaded: a fresh attempt */
		sched_add(dl->srv->sched, j->id, time(NULL));
	}
	dl->end(j);
}

/*
 * A suspect while another suspect's attempt is under way waits its turn: it
 * stays in the schedule (due after retry_min, so queue control sees it as
 * usual) and suspect_end makes it due at once when its turn comes.
 */
static void
suspect_wait(struct deliver *dl, const struct djob *j)
{
	size_t i;

	for (i = 0; i < dl->nwaiting && dl->waiting[i] != j->id; i++)
		;
	if (i == dl->nwaiting) {
		dl->waiting = xrealloc(dl->waiting, (i + 1) * sizeof(*dl->waiting));
		dl->waiting[dl->nwaiting++] = j->id;
		log_info("qid=%s event=unfinished_wait count=%d note=\"tried alone, after the "
		         "attempt under way of another message with unfinished attempts\"",
		         j->w->qid, j->w->unfinished);
	}
	/* in flight now: it comes back at this time once its end says it is done */
	sched_add(dl->srv->sched, j->id, time(NULL) + (time_t)dl->srv->cfg->retry_min);
}

/* The suspect's turn: it leaves the waiting list (if it came back on its own). */
static void
suspect_start(struct deliver *dl, struct djob *j)
{
	for (size_t i = 0; i < dl->nwaiting; i++)
		if (dl->waiting[i] == j->id) {
			dl->nwaiting--;
			memmove(dl->waiting + i, dl->waiting + i + 1,
			        (dl->nwaiting - i) * sizeof(*dl->waiting));
			break;
		}
	dl->suspect_busy = true;
	j->suspect = true;
}

void
suspect_end(struct deliver *dl, bool suspect)
{
	int64_t id;

	if (suspect)
		dl->suspect_busy = false;
	if (dl->suspect_busy || dl->nwaiting == 0 || dl->stopping)
		return;
	/* no suspect under way: the next one is due now */
	id = dl->waiting[0];
	dl->nwaiting--;
	memmove(dl->waiting, dl->waiting + 1, dl->nwaiting * sizeof(*dl->waiting));
	sched_add(dl->srv->sched, id, time(NULL));
}

bool
job_admit(struct djob *j)
{
	struct deliver *dl = j->dl;
	unsigned max = dl->srv->cfg->max_unfinished_attempts;
	int n = j->w->unfinished;

	if (j->w->state != SPOOL_MSG_QUEUED) { /* held by an operator meanwhile */
		dl->end(j);
		return false;
	}
	if (max > 0 && n >= (int)max) {
		/* hold it, in a write transaction that decides again (job_held) */
		job_claim_write(j, SPOOL_CHECK, (int)max, job_held);
		return false;
	}
	if (n > 0 && max > 0) {
		/* a suspect: one at a time, so a crash counts against the one that caused it */
		if (dl->suspect_busy) {
			suspect_wait(dl, j);
			dl->end(j);
			return false;
		}
		suspect_start(dl, j);
	}
	if (n > 0)
		log_warn("qid=%s event=unfinished_attempts count=%d limit=%u", j->w->qid, n, max);
	return true;
}
