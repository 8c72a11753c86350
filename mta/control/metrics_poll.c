/*
 * metrics_poll: the queue gauges. The sizes (queued, held) come from the
 * in-memory queue counts (qstats, O(1) on the loop, every second). The oldest message's
 * age needs the spool: one index probe (spool_oldest_received) on a worker
 * thread every few seconds, never on the loop; the worker stores the
 * received time in an atomic and the age is computed when scraped.
 */
#include "mta/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "mta/async.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/delivery/sched.h"
#include "mta/event.h"
#include "mta/server.h"
#include "spool/spool.h"

#define POLL_SECONDS 1
#define AGE_EVERY 5 /* ticks between oldest-message probes */

struct age_job {
	char dir[4096];
	char err[256];
	int rc;
};

static struct {
	struct server *srv;
	struct event *ev;
	unsigned ticks;
	bool age_busy;
} poll_state;

/* Each worker thread keeps its own read handle (spool handles are per thread). */
static pthread_key_t age_key;
static pthread_once_t age_once = PTHREAD_ONCE_INIT;

static void
age_close(void *sp)
{
	spool_close(sp);
}

static void
age_init(void)
{
	pthread_key_create(&age_key, age_close);
}

/* worker thread: only the job's own copy of the data_dir is used */
static void
age_work(void *arg)
{
	struct age_job *j = arg;
	struct spool *sp;
	time_t oldest;

	pthread_once(&age_once, age_init);
	sp = pthread_getspecific(age_key);
	j->rc = -1;
	if (sp == NULL) {
		if (spool_open(&sp, j->dir, j->err, sizeof(j->err)) != 0)
			return;
		pthread_setspecific(age_key, sp);
	}
	j->rc = spool_oldest_received(sp, &oldest, j->err, sizeof(j->err));
	if (j->rc == 0)
		metrics_gauge_set(G_QUEUE_OLDEST, (int64_t)oldest);
}

static void
age_done(void *arg)
{
	struct age_job *j = arg;

	if (j->rc != 0)
		log_warn("event=metrics_queue_age_failed error=\"%s\"", j->err);
	poll_state.age_busy = false;
	free(j);
}

static void
on_tick(void *arg)
{
	struct server *srv = poll_state.srv;
	size_t stored, held;

	if (srv->sched) {
		/* qstats counts held messages too: the scheduler never sees them */
		qstats_count(sched_qstats(srv->sched), &stored, &held);
		metrics_gauge_set(G_QUEUE_MESSAGES, (int64_t)(stored - held));
		metrics_gauge_set(G_QUEUE_HELD, (int64_t)held);
	}
	if (poll_state.ticks++ % AGE_EVERY == 0 && !poll_state.age_busy && srv->async) {
		struct age_job *j = xcalloc(1, sizeof(*j));
		snprintf(j->dir, sizeof(j->dir), "%s", srv->cfg->data_dir);
		poll_state.age_busy = true;
		async_run(srv->async, age_work, age_done, j);
	}
}

void
metrics_poll_start(struct server *srv)
{
	poll_state.srv = srv;
	poll_state.ev = loop_timer_new(srv->base, true, on_tick, NULL);
	loop_timer_add(poll_state.ev, POLL_SECONDS * 1000);
	on_tick(NULL); /* the first scrape already sees the queue */
}

void
metrics_poll_stop(void)
{
	loop_timer_free(poll_state.ev);
	poll_state.ev = NULL;
}
