/* async: worker pool and loop-thread completions (see async.h). */
#include <stddef.h>
#include "mta/async.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mta/shared/util.h"

#define ASYNC_MAX_WORKERS 64

struct job {
	async_fn work, done;
	void *arg;
	struct job *next;
};

struct jobq {
	struct job *head, *tail;
};

struct async {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobq todo;     /* for workers */
	struct jobq finished; /* for the loop */
	int stopping;
	int joined; /* the workers have exited (async_free): async_run works inline */
	int efd;
	struct event *ev;
	pthread_t *threads;
	int nthreads;
};

static void
q_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *
q_pop(struct jobq *q)
{
	struct job *j = q->head;
	if (j) {
		q->head = j->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return j;
}

static void
wake_loop(struct async *a)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is already non-zero: the loop will wake anyway */
	while (write(a->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void *
worker_main(void *arg)
{
	struct async *a = arg;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&a->mu);
		while ((j = q_pop(&a->todo)) == NULL && !a->stopping)
			pthread_cond_wait(&a->cv, &a->mu);
		pthread_mutex_unlock(&a->mu);
		if (j == NULL)
			return NULL;
		j->work(j->arg);
		pthread_mutex_lock(&a->mu);
		q_push(&a->finished, j);
		pthread_mutex_unlock(&a->mu);
		wake_loop(a);
	}
}

static void
on_eventfd(evutil_socket_t fd, short what, void *arg)
{
	struct async *a = arg;
	struct jobq batch;
	struct job *j;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&a->mu);
	batch = a->finished;
	a->finished.head = a->finished.tail = NULL;
	pthread_mutex_unlock(&a->mu);
	while ((j = q_pop(&batch)) != NULL) {
		j->done(j->arg);
		free(j);
	}
}

struct async *
async_new(struct event_base *base, int nworkers, char *err, size_t errlen)
{
	struct async *a = xcalloc(1, sizeof(*a));
	int i;

	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(a);
		return NULL;
	}
	a->ev = event_new(base, a->efd, EV_READ | EV_PERSIST, on_eventfd, a);
	event_add(a->ev, NULL);
	/* one worker per core at least: DKIM signing runs here, CPU-bound (issue 10) */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu > nworkers)
		nworkers = ncpu > ASYNC_MAX_WORKERS ? ASYNC_MAX_WORKERS : (int)ncpu;
	a->threads = xcalloc((size_t)nworkers, sizeof(pthread_t));
	for (i = 0; i < nworkers; i++) {
		if (pthread_create(&a->threads[i], NULL, worker_main, a) != 0) {
			snprintf(err, errlen, "pthread_create failed");
			break;
		}
		a->nthreads++;
	}
	if (a->nthreads == 0) {
		async_free(a);
		return NULL;
	}
	return a;
}

void
async_run(struct async *a, async_fn work, async_fn done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&a->mu);
	if (a->joined) {
		/* async_free is running completions and the workers are gone: a
		 * completion that starts more work gets it done here, on the loop */
		pthread_mutex_unlock(&a->mu);
		work(arg);
		pthread_mutex_lock(&a->mu);
		q_push(&a->finished, j);
	} else {
		q_push(&a->todo, j);
		pthread_cond_signal(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
}

static void
no_work(void *arg)
{
	(void)arg;
}

void
async_post(struct async *a, async_fn done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));
	j->work = no_work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&a->mu);
	q_push(&a->finished, j);
	pthread_mutex_unlock(&a->mu);
	wake_loop(a);
}

void
async_free(struct async *a)
{
	int i;
	pthread_mutex_lock(&a->mu);
	a->stopping = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	for (i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	pthread_mutex_lock(&a->mu);
	a->joined = 1;
	pthread_mutex_unlock(&a->mu);
	/*
	 * Run what finished so owners can release their objects, until nothing
	 * is left: a completion may start more work or post more completions
	 * (a stopped writer fails its late jobs through async_post).
	 */
	for (;;) {
		pthread_mutex_lock(&a->mu);
		bool more = a->finished.head != NULL;
		pthread_mutex_unlock(&a->mu);
		if (!more)
			break;
		on_eventfd(a->efd, EV_READ, a);
	}
	event_free(a->ev);
	close(a->efd);
	free(a->threads);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}
