/* writer: group-commit spool writer thread (see writer.h). */
#include "mta/writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/async.h"
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
	if (run_batch(w, v, n, &full, err, sizeof(err)) == 0) {
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
	store_kind(w, ins, ni);
	store_kind(w, app, na);
	store_kind(w, cls, nc);
	for (i = 0; i < nf; i++)
		fns[i]->status = fns[i]->fn(w->sp, fns[i]->arg, fns[i]->err, sizeof(fns[i]->err));
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
			int vac = writer_vacuum(w);
			struct timespec ts;

			if (vac == 1)
				continue;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (vac == 2 && w->head == NULL && !w->stopping)
				pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			else if (vac == 0 && w->head == NULL && !w->stopping)
				pthread_cond_wait(&w->cv, &w->mu);
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
	}
}

struct writer *
writer_new(const char *data_dir, int64_t max_size, struct async *a, char *err, size_t errlen)
{
	struct writer *w = xcalloc(1, sizeof(*w));

	if (spool_open(&w->sp, data_dir, err, errlen) != 0)
		goto fail;
	if (max_size > 0 && spool_set_max_size(w->sp, max_size, err, errlen) != 0)
		goto fail;
	w->async = a;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		snprintf(err, errlen, "cannot start spool writer thread");
		goto fail;
	}
	return w;
fail:
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
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
