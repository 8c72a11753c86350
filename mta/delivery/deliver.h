/*
 * deliver: spooled mail to each recipient's MX. Owns delivery jobs (one per
 * message attempt), destinations (per recipient domain: MX targets, a
 * concurrency window, idle connections for reuse) and outcome recording
 * (per recipient: delivered, deferred with a next try, or failed with a
 * DSN to the sender). Decides nothing about WHEN: that is the
 * server's scheduler's (srv->sched, sched.h), which intake and queue control
 * feed directly.
 */
#ifndef MXRELAY_DELIVER_H
#define MXRELAY_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

struct server;
struct deliver;
struct sched;

/*
 * Build the delivery engine and load srv->sched (made first, with
 * deliver_start and srv as its start callback) from the spool. NULL with err.
 */
struct deliver *deliver_new(struct server *srv, char *err, size_t errlen);

/* sched's start callback (sched.h): arg is the server. */
void deliver_start(int64_t id, void *arg);

/* Stop starting new deliveries (with sched_stop); in-flight ones end by themselves. */
void deliver_stop(struct deliver *dl);

/* Deliveries still running. */
unsigned deliver_busy(const struct deliver *dl);

/*
 * Reload: the outbound TLS client context (tls_ca_file, tls_client_cert/key
 * re-read by main.c) for connections opened from now on; dl takes its own
 * reference. Connections already open keep theirs.
 */
void deliver_set_tls(struct deliver *dl, struct ssl_ctx_st *tls);

/*
 * After the loop, the writer and the worker pool have stopped: give back the
 * claims (spool_claim) of attempts that never ended here, on a spool handle
 * of its own, so a clean shutdown is not counted as an unfinished attempt.
 */
void deliver_free(struct deliver *dl);

#endif
