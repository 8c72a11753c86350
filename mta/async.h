/*
 * async: hand work to threads and get results back on the loop thread.
 *
 * Owns: a small worker pool for CPU-heavy pure work (crypt(3), DKIM signing,
 * spool reads) and a completion queue drained by an eventfd watched by the loop.
 * Workers never touch sessions: work() gets only its own copied inputs.
 * done() always runs on the loop thread, never inside async_run/async_post.
 */
#ifndef MXRELAY_ASYNC_H
#define MXRELAY_ASYNC_H

struct event_base;
struct async;

typedef void (*async_fn)(void *arg);

/*
 * nworkers >= 1: the pool has at least that many threads, and one per online
 * CPU when there are more CPUs (up to 64), so that DKIM signing can use every
 * core. Returns NULL with err on failure.
 */
struct async *async_new(struct event_base *base, int nworkers, char *err, size_t errlen);

/* Run work(arg) on a worker, then done(arg) on the loop thread. Loop thread only. */
void async_run(struct async *a, async_fn work, async_fn done, void *arg);

/* Thread-safe: queue done(arg) to run on the loop thread. */
void async_post(struct async *a, async_fn done, void *arg);

/*
 * Stop workers (pending work is finished first), run every completion, also
 * those that completions cause (work started then runs inline), and free.
 * Loop thread only.
 */
void async_free(struct async *a);

#endif
