/*
 * sched: the only code that decides WHEN a message is tried. An in-memory
 * min-heap of (due time, message id), filled from the spool at start and
 * fed by intake and by delivery results; a timer pops due messages while the
 * in-flight budget allows. Nothing here is O(queue) after start-up.
 */
#ifndef MXRELAY_SCHED_H
#define MXRELAY_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct sched;

/* start(id, arg) begins a delivery; the owner calls sched_done(id) when it ends. */
typedef void (*sched_start_fn)(int64_t id, void *arg);

struct sched *sched_new(struct event_base *base, size_t max_inflight, sched_start_fn start,
			void *arg);
void sched_free(struct sched *s);

/* Schedule message id at time due (now or later). A message in flight is not added twice. */
void sched_add(struct sched *s, int64_t id, time_t due);

/* A delivery ended (whatever its outcome); frees one in-flight slot. */
void sched_done(struct sched *s, int64_t id);

/* Try everything now (mxrelayctl queue flush, tests). */
void sched_flush(struct sched *s);

/* Stop starting deliveries (shutdown). */
void sched_stop(struct sched *s);

size_t sched_queued(const struct sched *s);
size_t sched_inflight(const struct sched *s);

#endif
