/* writer: group-commit spool writer thread (see writer.h). */
#include "mta/writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/async.h"
#include "mta/space.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

#define BATCH_MAX 512 /* messages per transaction at most */

struct writer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct writer_job *head, *tail;
	int stopping;
	int stopped; /* writer_stop returned: submissions fail at once */
	struct spool *sp;
	struct space *space; /* NULL: no space policy (tests) */
	struct async *async;
	uint64_t nmsgs, ncommits;
};

struct batch {
	struct writer_job *jobs;
};

static void
batch_done(void *arg)
{
	struct batch *b = arg;
	struct writer_job *j = b->jobs, *n;
	for (; j; j = n) {
		n = j->next;
		j->done(j);
	}
	free(b);
}

static void
count(struct writer *w, uint64_t msgs)
{
	pthread_mutex_lock(&w->mu);
	w->nmsgs += msgs;
	w->ncommits++;
	pthread_mutex_unlock(&w->mu);
}

/* One transaction for n jobs of one kind. */
static int
run_batch(struct writer *w, struct writer_job **v, size_t n, int *full, char *err, size_t errlen)
{
	if (v[0]->kind == WRITER_INSERT) {
		struct spool_msg_in *in[BATCH_MAX];
		for (size_t i = 0; i < n; i++)
			in[i] = &v[i]->in;
		return spool_insert_batch(w->sp, in, n, full, err, errlen);
	}
	if (v[0]->kind == WRITER_CLAIM) {
		struct spool_claim *cl[BATCH_MAX];
		for (size_t i = 0; i < n; i++)
			cl[i] = &v[i]->claim;
		*full = 0;
		return spool_claim(w->sp, cl, n, err, errlen);
	}
	struct spool_update up[BATCH_MAX];
	for (size_t i = 0; i < n; i++)
		up[i] = v[i]->upd;
	return spool_apply(w->sp, up, n, full, err, errlen);
}

/*
 * A result, claim or unclaim batch that failed for lack of space gets the
 * reserve and one more try: these records are what drains the queue (and
 * an unrecorded result is a duplicate delivery later). Inserts never do:
 * new mail waits for space instead (space_intake). 1 when the retry stored it.
 */
static int
retry_reserved(struct writer *w, struct writer_job **v, size_t n, int *full, char *err,
               size_t errlen)
{
	if (v[0]->kind == WRITER_INSERT || w->space == NULL || !spool_take_full(w->sp))
		return 0;
	if (space_use_reserve(w->space) != 0)
		return 0;
	return run_batch(w, v, n, full, err, errlen) == 0;
}

/* Store a batch of one kind; on a failure that is not "disk full", retry one
 * by one so one bad job cannot make its neighbours fail. */
static void
store_kind(struct writer *w, struct writer_job **v, size_t n)
{
	char err[256];
	int full = 0;
	size_t i;

	if (n == 0)
		return;
	spool_take_full(w->sp);
	if (run_batch(w, v, n, &full, err, sizeof(err)) == 0 ||
	    retry_reserved(w, v, n, &full, err, sizeof(err))) {
		for (i = 0; i < n; i++)
			v[i]->status = 0;
		count(w, n);
		return;
	}
	for (i = 0; i < n; i++) {
		struct writer_job *j = v[i];
		int f = full;
		if (!full && n > 1 && run_batch(w, &v[i], 1, &f, j->err, sizeof(j->err)) == 0) {
			j->status = 0;
			count(w, 1);
			continue;
		}
		if (full || n == 1)
			snprintf(j->err, sizeof(j->err), "%s", err);
		j->status = -1;
		j->disk_full = f;
	}
}

/*
 * queue_minfree, spool_max_size and a reserve in use refuse new mail before
 * SQLite sees it: every insert job fails as "disk full" (452 4.3.1). 1 when
 * the batch was refused.
 */
static int
insert_space(struct writer *w, struct writer_job **v, size_t n)
{
	uint64_t incoming = 0;
	char err[256];
	size_t i;

	if (n == 0 || w->space == NULL)
		return 0;
	for (i = 0; i < n; i++)
		incoming += v[i]->in.body_len;
	if (space_intake(w->space, incoming, err, sizeof(err)) == 0)
		return 0;
	for (i = 0; i < n; i++) {
		snprintf(v[i]->err, sizeof(v[i]->err), "%s", err);
		v[i]->status = -1;
		v[i]->disk_full = 1;
	}
	return 1;
}

/* Queue control (delete, bounce...) owns its transaction: a failure for lack of space gets
 * the reserve and one more run, as results do (a rolled-back run changed nothing). */
static void
run_fn(struct writer *w, struct writer_job *j)
{
	spool_take_full(w->sp);
	j->status = j->fn(w->sp, j->arg, j->err, sizeof(j->err));
	if (j->status != 0 && w->space != NULL && spool_take_full(w->sp) &&
	    space_use_reserve(w->space) == 0)
		j->status = j->fn(w->sp, j->arg, j->err, sizeof(j->err));
}

static void
store(struct writer *w, struct writer_job *list, size_t n)
{
	struct writer_job *ins[BATCH_MAX], *app[BATCH_MAX], *cls[BATCH_MAX], *fns[BATCH_MAX], *j;
	size_t ni = 0, na = 0, nc = 0, nf = 0, i;

	for (j = list; j; j = j->next) {
		if (j->kind == WRITER_INSERT)
			ins[ni++] = j;
		else if (j->kind == WRITER_APPLY)
			app[na++] = j;
		else if (j->kind == WRITER_CLAIM)
			cls[nc++] = j;
		else
			fns[nf++] = j;
	}
	if (!insert_space(w, ins, ni))
		store_kind(w, ins, ni);
	store_kind(w, app, na);
	store_kind(w, cls, nc);
	for (i = 0; i < nf; i++)
		run_fn(w, fns[i]);
}

/* Wait for work at most a quarter second (w->mu held); ETIMEDOUT when none came. */
static int
idle_wait(struct writer *w)
{
	struct timespec ts;
	int rc = 0;

	/* a quarter second: a pause for space (refused at MAIL FROM from its figure)
	 * lifts soon after space returns */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 250 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (w->head == NULL && !w->stopping && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	return w->head == NULL && !w->stopping ? rc : 0;
}

/*
 * Idle (w->mu held): one small step of giving freed spool pages back
 * (spool_vacuum.c, issue 12). 1 when there is more to do right away, 2
 * when in a second (a reader held a checkpoint up, or the WAL waits for
 * writes to stop), else 0.
 */
static int
writer_vacuum(struct writer *w)
{
	struct spool_vacuum v;
	char err[256];
	int r;

	pthread_mutex_unlock(&w->mu);
	r = spool_vacuum_step(w->sp, &v, err, sizeof(err));
	pthread_mutex_lock(&w->mu);
	if (r < 0)
		log_warn("event=spool_error op=vacuum error=\"%s\"", err);
	else if (v.pending)
		log_warn("event=vacuum_pending live_bytes=%lld reason=\"spool.db made before"
		         " auto_vacuum and too big to convert now: tried at the next start\"",
		         (long long)v.live_bytes);
	else if (v.converted)
		log_info("event=vacuum_converted live_bytes=%lld freed_pages=%lld",
		         (long long)v.live_bytes, (long long)v.freed_pages);
	return r < 0 ? 0 : v.more ? 1 : v.later ? 2 : 0;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;

	for (;;) {
		struct writer_job *list, *last;
		size_t n = 0;

		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stopping) {
			/* idle: give freed pages back one step at a time, and watch free
			 * space (other files, the reserve) every quarter second */
			if (writer_vacuum(w) == 1)
				continue;
			if (idle_wait(w) == ETIMEDOUT && w->space) {
				pthread_mutex_unlock(&w->mu);
				space_tick(w->space);
				pthread_mutex_lock(&w->mu);
			}
		}
		if (w->head == NULL) {
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		/* take everything waiting, up to BATCH_MAX: that is the group commit */
		list = last = w->head;
		for (n = 1; last->next && n < BATCH_MAX; n++)
			last = last->next;
		w->head = last->next;
		if (w->head == NULL)
			w->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&w->mu);

		store(w, list, n);
		struct batch *b = xmalloc(sizeof(*b));
		b->jobs = list;
		async_post(w->async, batch_done, b);
		/* a writer kept busy by results alone must still see space come back */
		if (w->space)
			space_tick(w->space);
	}
}

struct writer *
writer_new(const char *data_dir, const struct space_conf *space, struct async *a, char *err,
           size_t errlen)
{
	struct writer *w = xcalloc(1, sizeof(*w));
	int released = 0;

	/* the daemon's first open of the spool: the one that rebuilds the WAL index */
	if (space && spool_open_preflight(data_dir, &released, err, errlen) != 0)
		goto fail;
	if (spool_open(&w->sp, data_dir, err, errlen) != 0)
		goto fail;
	if (space)
		w->space = space_new(data_dir, w->sp, space, released);
	w->async = a;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		snprintf(err, errlen, "cannot start spool writer thread");
		goto fail;
	}
	return w;
fail:
	space_free(w->space);
	if (w->sp)
		spool_close(w->sp);
	free(w);
	return NULL;
}

void
writer_submit(struct writer *w, struct writer_job *job)
{
	job->next = NULL;
	job->status = -1;
	job->disk_full = 0;
	job->err[0] = '\0';
	if (w->stopped) {
		/* shutting down: answered as a failure, on the loop, like any batch */
		struct batch *b = xmalloc(sizeof(*b));
		snprintf(job->err, sizeof(job->err), "spool writer stopped (shutting down)");
		b->jobs = job;
		async_post(w->async, batch_done, b);
		return;
	}
	pthread_mutex_lock(&w->mu);
	if (w->tail)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
writer_stats(struct writer *w, uint64_t *msgs, uint64_t *commits)
{
	pthread_mutex_lock(&w->mu);
	*msgs = w->nmsgs;
	*commits = w->ncommits;
	pthread_mutex_unlock(&w->mu);
}

void
writer_stop(struct writer *w)
{
	if (w->stopped)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->stopped = 1;
}

void
writer_free(struct writer *w)
{
	writer_stop(w);
	spool_close(w->sp);
	space_free(w->space);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
