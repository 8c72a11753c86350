/*
 * tlsstats: outbound TLS counters for `mxrelayctl tls report` and the daily
 * TLS-RPT (RFC 8460 4.4), on the loop thread.
 *
 * Owns: an in-memory aggregate keyed (UTC day, recipient domain, policy,
 * MX host) plus failure rows (result type, sending IP, MX, MX IP), fed by
 * dest.c on every session end and every delivered recipient, and the
 * Prometheus counters (metrics.h) fed at the same time. Flushed every 60 s
 * on the writer (WRITER_FN -> spool_tls_add) and at exit on a handle of its
 * own: a kill -9 loses at most a minute of counts. Never blocks the loop.
 */
#ifndef MXRELAY_TLSSTATS_H
#define MXRELAY_TLSSTATS_H

#include <stdbool.h>

#include "mta/delivery/tlsreq.h"

struct server;
struct tlsstats;

/* Never NULL. srv->writer may be NULL (tests): then only tlsstats_free writes. */
struct tlsstats *tlsstats_new(struct server *srv);
/* At exit (after the writer stopped): write what is left, then free. */
void tlsstats_free(struct tlsstats *t);
/* Hand the counts so far to the writer now (also runs every 60 s). */
void tlsstats_flush(struct tlsstats *t);

/*
 * A session with mx (address mx_ip, "" when no connection was made) ended
 * or was never started for policy reasons: ok says whether the policy was
 * met. A failure (o->result != TLSRES_OK) is recorded also when ok (MTA-STS
 * testing, RFC 8461 5: delivered, reported), and the session then counts as
 * failed, not as a success. policy_string: the MTA-STS policy text or ""
 * (RFC 8460 4.4 policy-string).
 */
void tlsstats_session(struct tlsstats *t, const char *domain, const char *mx, const char *mx_ip,
                      const char *sending_ip, const struct tls_outcome *o, bool ok,
                      const char *policy_string);
/* A failure that is no session's (an MTA-STS fetch): a failure row only. */
void tlsstats_problem(struct tlsstats *t, const char *domain, const struct tls_outcome *o,
                      const char *policy_string);
/* One recipient delivered over a session with outcome o. */
void tlsstats_delivered(struct tlsstats *t, const char *domain, const char *mx,
                        const struct tls_outcome *o);

#endif
