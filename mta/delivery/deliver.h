/*
 * deliver: spooled mail to each recipient's MX. Owns delivery jobs (one per
 * message attempt), destinations (per recipient domain: MX targets, a
 * concurrency window, idle connections for reuse) and outcome recording
 * (per recipient: delivered, deferred with a next try, or failed with a
 * DSN to the sender). Decides nothing about WHEN: that is sched's.
 */
#ifndef MXRELAY_DELIVER_H
#define MXRELAY_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct server;
struct deliver;
struct sched;

/* Build the delivery engine and load the schedule from the spool. NULL with err. */
struct deliver *deliver_new(struct server *srv, char *err, size_t errlen);

/* A message was accepted (or a bounce made): try it now. */
void deliver_enqueue(struct deliver *dl, int64_t id, time_t due);

/* Retry every queued message now. */
void deliver_flush(struct deliver *dl);

/* The schedule, for queue control (control.c uses sched.h's hold/flush/release). */
struct sched *deliver_sched(struct deliver *dl);

/* Stop starting new deliveries; in-flight ones end by themselves. */
void deliver_stop(struct deliver *dl);

/* Deliveries still running. */
unsigned deliver_busy(const struct deliver *dl);

/* Messages with work left: scheduled plus in flight (O(1), for the queue gauge). */
size_t deliver_queued(const struct deliver *dl);

/*
 * After the loop, the writer and the worker pool have stopped: give back the
 * claims (spool_claim) of attempts that never ended here, on a spool handle
 * of its own, so a clean shutdown is not counted as an unfinished attempt.
 */
void deliver_free(struct deliver *dl);

#endif
