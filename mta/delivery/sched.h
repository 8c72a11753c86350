/*
 * sched: the only code that decides WHEN a message is tried. An in-memory
 * min-heap of (due time, message id), filled from the spool at start and
 * fed by intake and by delivery results; a timer pops due messages while the
 * in-flight budget allows. Nothing here is O(queue) after start-up.
 */
#ifndef MXRELAY_SCHED_H
#define MXRELAY_SCHED_H

#include <stdbool.h>
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

/*
 * Schedule message id at time due (now or later). Already queued: the earlier
 * time wins. In flight: it comes back at due once sched_done is called.
 */
void sched_add(struct sched *s, int64_t id, time_t due);

/* A delivery ended (whatever its outcome); frees one in-flight slot. */
void sched_done(struct sched *s, int64_t id);

/* Try everything now (mxrelayctl queue flush, tests). */
void sched_flush(struct sched *s);

/*
 * Queue control (mxrelayctl, through control.c); each O(log n).
 * SCHED_NONE: sched does not have id (held or unknown); SCHED_QUEUED:
 * waiting in the heap; SCHED_INFLIGHT: being tried (even when removed
 * meanwhile: the attempt still runs).
 */
enum sched_where { SCHED_NONE, SCHED_QUEUED, SCHED_INFLIGHT };

enum sched_where sched_where(const struct sched *s, int64_t id);

/* flush ID: a queued id becomes due at `due`; one in flight or unknown is left alone. */
enum sched_where sched_reschedule(struct sched *s, int64_t id, time_t due);

/*
 * hold / delete / bounce: a queued id leaves the heap; one in flight finishes
 * its attempt, but that attempt's sched_add is ignored (never started again).
 */
enum sched_where sched_remove(struct sched *s, int64_t id);

/* release: add id at due, or undo sched_remove of an attempt still in flight. */
void sched_release(struct sched *s, int64_t id, time_t due);

/*
 * The arrival of a message to the millisecond (util_wall_ms), for the
 * delivery line's delays= (the spool keeps whole seconds): intake notes it
 * once the message is stored; delivery asks at each attempt's start and
 * gets 0 when it is not known (then whole seconds serve). The last
 * SCHED_ARRIVALS ids only, by id: fixed memory whatever the queue holds.
 */
#define SCHED_ARRIVALS 4096
void sched_arrived(struct sched *s, int64_t id, int64_t wall_ms);
int64_t sched_arrival(const struct sched *s, int64_t id);

/* Stop starting deliveries (shutdown). */
void sched_stop(struct sched *s);

size_t sched_queued(const struct sched *s);
size_t sched_inflight(const struct sched *s);

/*
 * qstats (delivery/qstats.c): what is in the spool, counted on the loop so
 * `mxrelayctl queue summary` and the queue metrics never scan it. Every
 * message in the spool, held or not, with its pending recipients per
 * destination domain and its received time. sched owns one instance
 * (sched_qstats, NULL for a NULL sched); every call takes NULL as a no-op.
 * The owners of each change report it once it is durable:
 *   intake (stored) and the DSNs delivery and queue control insert: add;
 *   delivery outcomes and queue bounce: rcpt_done per recipient no longer
 *   pending (the message leaves with its last one, as spool_apply deletes it);
 *   queue delete: remove; hold, release, a hold by unfinished attempts: set_held;
 *   start-up: load_row for each row of spool_queue_stats_load (its callback:
 *   messages first, then their pending recipients' domains).
 * Addresses are borrowed for the call only.
 */
struct qstats;
struct spool_qsummary;

struct qstats *sched_qstats(struct sched *s);
struct qstats *qstats_new(void);
void qstats_free(struct qstats *q);
void qstats_add(struct qstats *q, int64_t id, time_t received, bool held,
		const char *const *rcpts, size_t n);
void qstats_load_row(void *q, int64_t id, time_t received, int held, const char *address);
/* The start-up pass is over: frees what only it needed. */
void qstats_load_done(struct qstats *q);
void qstats_rcpt_done(struct qstats *q, int64_t id, const char *address);
void qstats_remove(struct qstats *q, int64_t id);
void qstats_set_held(struct qstats *q, int64_t id, bool held);
void qstats_count(const struct qstats *q, size_t *messages, size_t *held);
/*
 * Fill out as spool_queue_summary does (same fields, same order of
 * domains, at most max_domains of them); free with spool_qsummary_free.
 * O(domains log domains + distinct received seconds).
 */
void qstats_summary(const struct qstats *q, time_t now, size_t max_domains,
		    struct spool_qsummary *out);

#endif
