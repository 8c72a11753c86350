/* ctl internals shared by control.c (sockets, connections), control/queue.c (queue
 * commands) and submit.c (SUBMIT). Not for other modules: they use control.h. */
#ifndef MXRELAY_CTL_INT_H
#define MXRELAY_CTL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mta/control/conn.h"
#include "mta/control/control.h"
#include "mta/intake/intake.h"

#define CTL_LINE_MAX 1024 /* request and envelope lines, incl. LF */

struct evbuffer;

/* control/queue.c: one handler per control verb; arg is the rest of the line (may be "") */
void ctlq_list(struct ctl_conn *c, char *arg);
void ctlq_show(struct ctl_conn *c, char *arg);
void ctlq_summary(struct ctl_conn *c, char *arg);
void ctlq_flush(struct ctl_conn *c, char *arg);
void ctlq_hold(struct ctl_conn *c, char *arg);
void ctlq_release(struct ctl_conn *c, char *arg);
void ctlq_delete(struct ctl_conn *c, char *arg);
void ctlq_bounce(struct ctl_conn *c, char *arg);

/*
 * qbulk.c (issue 16): HOLD, RELEASE, DELETE, BOUNCE and FLUSH of ALL, of
 * several queue ids, or by from=ADDR to=ADDR domain=DOMAIN, in batches; one
 * reply with the counts. queue.c hands it every request that is not a lone
 * queue id (or, for FLUSH, nothing, "all" or a lone domain).
 */
enum ctlq_verb { CTLQ_HOLD, CTLQ_RELEASE, CTLQ_DELETE, CTLQ_BOUNCE, CTLQ_FLUSH };
void qbulk_start(struct ctl_conn *c, enum ctlq_verb verb, const char *arg);
/* ops.c: MAILQ [N] (mailq, mxrelay-sendmail -bp), BLOCKS and UNBLOCK ALL|NET (mxrelayctl unblock) */
void ops_mailq(struct ctl_conn *c, char *arg);
void ops_blocks(struct ctl_conn *c, char *arg);
void ops_unblock(struct ctl_conn *c, char *arg);

/* submit.c: "SUBMIT" read; the envelope and body follow on the same connection */
void submit_start(struct ctl_conn *c, char *arg);
/* Consume input of a SUBMIT in progress (it may reply and finish). */
void submit_feed(struct ctl_conn *c, struct evbuffer *in);
void submit_free(struct submit *sub);

/* daily.c: fn(arg) once a day, at seconds after 00:00 UTC plus 0 .. jitter - 1 more
 * (0: none), never while draining; daily_free stops it. Loop thread. */
struct daily;
struct daily *daily_new(struct server *srv, int at, int jitter, void (*fn)(void *arg), void *arg);
void daily_free(struct daily *d);
/* A job's message (CRLF lines, len octets; copied) into intake with env (its qid, sender,
 * recipients) under "Received: ... with local id QID (WHAT)"; done as intake_submit's. */
void daily_submit(struct server *srv, const struct intake_env *env, const char *what,
                  const char *msg, size_t len, intake_done_fn done, void *arg);

/* tlsrpt.c: the daily TLS-RPT job (timer made here, freed by ctl_free) and the
 * verb TLS-SEND-REPORTS [YYYY-MM-DD] (its reply comes when the run ends) */
struct tlsrpt_job;
struct tlsrpt_job *tlsrpt_job_new(struct server *srv);
void tlsrpt_job_free(struct tlsrpt_job *job);
void tlsrpt_verb(struct tlsrpt_job *job, struct ctl_conn *c, char *arg);
/* 1 while a run is under way (the drain waits: it stops at its next step), else 0 */
unsigned tlsrpt_busy(const struct tlsrpt_job *job);

/* bdigest_job.c: bounce owners' daily digests (issue 15; timer made here, freed by
 * ctl_free) and the verb BOUNCE-DIGEST (its reply comes when the digests are queued) */
struct bdigest_job;
struct bdigest_job *bdigest_job_new(struct server *srv);
void bdigest_job_free(struct bdigest_job *job);
void bdigest_verb(struct bdigest_job *job, struct ctl_conn *c, char *arg);
unsigned bdigest_busy(const struct bdigest_job *job);

#endif
