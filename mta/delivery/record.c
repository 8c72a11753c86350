/*
 * record: a delivery job's outcomes into the spool, whatever it takes.
 *
 * deliver.c hands each destination group's 250s to the writer as soon as
 * that group is done (so a crash after a 250 repeats as little as
 * possible), and the rest of the outcomes with the message's attempts and
 * next try when the last group is done (struct japply). An outcome read
 * from a server is never thrown away: an apply that fails (disk full, any
 * spool error) is kept and handed to the writer again after 1 s, 2 s, 4 s
 * ... 30 s until it lands. The job stays in flight for the scheduler all
 * that time, so no new attempt can start for the message and deliver it a
 * second time. Only a stop of the daemon before it lands can make a
 * duplicate; each such result is logged (event=result_unrecorded).
 *
 * Owns: the applies' retry timers and the mxrelay_results_unrecorded gauge.
 * Reaches deliver.c only through dl->applied. Never decides an outcome.
 */
#include "mta/delivery/deliver_int.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "mta/event.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000

static void apply_done(struct writer_job *wj);

static void
apply_submit(struct japply *a)
{
	struct spool_update upd = a->wj.upd;

	memset(&a->wj, 0, sizeof(a->wj));
	a->wj.kind = WRITER_APPLY;
	a->wj.upd = upd;
	a->wj.done = apply_done;
	a->wj.arg = a;
	writer_submit(a->job->dl->srv->writer, &a->wj);
}

static void
apply_retry(void *arg)
{
	apply_submit(arg);
}

static void
apply_unlink(struct japply *a)
{
	struct japply **pp = &a->job->applies;

	while (*pp != NULL && *pp != a)
		pp = &(*pp)->next;
	if (*pp != NULL)
		*pp = a->next;
	a->next = NULL;
}

static void
apply_free(struct japply *a)
{
	loop_timer_free(a->timer);
	free(a->sres);
	free(a);
}

static void
apply_done(struct writer_job *wj)
{
	struct japply *a = wj->arg;
	struct djob *j = a->job;
	struct deliver *dl = j->dl;

	if (wj->status == 0) {
		metrics_gauge_add(G_RESULTS_UNRECORDED, -(int64_t)a->n);
		apply_unlink(a);
		dl->applied(j, a);
		apply_free(a);
		return;
	}
	/* after the loop (writer stopped at exit): kept for job_unrecorded */
	if (event_base_got_exit(dl->srv->base))
		return;
	if (a->timer == NULL)
		a->timer = loop_timer_new(dl->srv->base, false, apply_retry, a);
	log_err("qid=%s event=apply_retry results=%zu last=%s retry_ms=%u disk_full=%s "
	        "error=\"%s\"",
	        j->w->qid, a->n, a->last ? "yes" : "no", a->retry_ms, wj->disk_full ? "yes" : "no",
	        wj->err);
	if (a->timer == NULL) { /* out of memory: the writer again at once */
		apply_submit(a);
		return;
	}
	loop_timer_add(a->timer, a->retry_ms);
	a->retry_ms = a->retry_ms >= RETRY_MAX_MS / 2 ? RETRY_MAX_MS : a->retry_ms * 2;
}

void
job_apply(struct djob *j, struct japply *a)
{
	a->job = j;
	a->wj.upd.removed = &a->removed; /* event=removed once it lands (deliver.c) */
	a->retry_ms = RETRY_FIRST_MS;
	a->next = j->applies;
	j->applies = a;
	metrics_gauge_add(G_RESULTS_UNRECORDED, (int64_t)a->n);
	apply_submit(a);
}

static void
unrecorded_one(const struct djob *j, const struct spool_result *r)
{
	const char *to = "";
	char qa[300];

	for (size_t k = 0; k < j->w->nrcpts; k++)
		if (j->w->rcpts[k].id == r->rcpt_id)
			to = j->w->rcpts[k].address;
	log_err("qid=%s event=result_unrecorded to=\"<%s>\" status=%s note=\"not recorded "
	        "before exit: tried again at start (delivered twice if it was sent)\"",
	        j->w->qid, LOG_Q(qa, to),
	        r->state == SPOOL_RCPT_DONE     ? "sent"
	        : r->state == SPOOL_RCPT_FAILED ? "bounced"
	                                        : "deferred");
}

void
job_unrecorded(struct djob *j)
{
	struct japply *a;

	while ((a = j->applies) != NULL) {
		j->applies = a->next;
		for (size_t i = 0; i < a->n; i++)
			unrecorded_one(j, &a->sres[i]);
		if (a->n == 0)
			log_err("qid=%s event=result_unrecorded results=0", j->w->qid);
		metrics_gauge_add(G_RESULTS_UNRECORDED, -(int64_t)a->n);
		apply_free(a);
	}
}
