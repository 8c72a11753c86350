/*
 * deliver internals shared by deliver.c (jobs, outcomes) and claim.c (the
 * count of unfinished attempts). Calls go deliver.c -> claim.c -> dest.c
 * and deliver.c -> dest.c: claim.c reaches deliver.c only through the two
 * function pointers in struct deliver, dest.c through struct dest_cbs.
 */
#ifndef MXRELAY_DELIVER_INT_H
#define MXRELAY_DELIVER_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dns/dns.h"
#include "mta/delivery/bounce.h"
#include "mta/delivery/deliver.h"
#include "mta/delivery/dest.h"
#include "mta/writer.h"
#include "spool/spool.h"

struct resolver;
struct sts;
struct sched;
struct djob;
struct japply;
struct event;

struct deliver {
	struct server *srv;
	struct resolver *res;
	SSL_CTX *tls;        /* client context: TLS 1.2+, opportunistic */
	struct dests *dests; /* destinations and their connections (dest.h) */
	struct sts *sts;     /* MTA-STS policies (sts.h); NULL with mta_sts = no */
	unsigned busy;       /* jobs in flight */
	bool stopping;
	struct djob *jobs;  /* every job, for the claims left at exit */
	int64_t *abandoned; /* claims of jobs that ended while stopping */
	size_t nabandoned;
	/* suspects (delivery/claim.c): one attempt under way at a time */
	bool suspect_busy;
	int64_t *waiting; /* suspects waiting their turn, oldest first */
	size_t nwaiting;
	/* deliver.c's, for claim.c: the job is over for the scheduler (then freed) /
	 * every group has an outcome: record them all */
	void (*end)(struct djob *j);
	void (*finish)(struct djob *j);
	/* deliver.c's, for record.c: apply a of j is durable (then record.c frees a) */
	void (*applied)(struct djob *j, struct japply *a);
};

/* The late claim of a job (job_claim). */
enum job_claim_state { JOB_UNCLAIMED, JOB_CLAIMING, JOB_CLAIMED };

/* Per-recipient outcome of this attempt. */
struct rres {
	int state; /* SPOOL_RCPT_*; PENDING = deferred (or undecided) */
	bool decided;
	bool recorded; /* handed to an apply of its own group already (record.c) */
	char dsn[16]; /* "2.0.0", "4.4.1", "5.1.1" */
	char *reply;
	char *relay; /* "mx[ip]:port", NULL when no connection */
	char *stored; /* reply as last_reply: "host RELAY said: REPLY", NULL without relay */
};

/* One message being delivered. */
struct djob {
	struct deliver *dl;
	int64_t id;
	struct spool_work *w;
	struct rres *res; /* per w->rcpts[i] */
	size_t groups_left;
	bool need_8bit, need_utf8;
	int64_t start_ms;
	/* delays= (deliver.c): when sched started this attempt, monotonic and wall clock */
	int64_t pickup_ms, pickup_wall_ms, arrival_ms;
	struct writer_job wj; /* the claim's (claim.c); applies have their own (struct japply) */
	struct japply *applies; /* handed to the writer, not yet durable (record.c) */
	bool finished;          /* the last apply is durable: the job ends with the others */
	bool cancelled;         /* the claim failed: nothing is sent, tried anew after retry_min */
	struct spool_msg_in bounce;
	char *bounce_body;
	const char *bounce_rcpt;
	bool has_bounce;
	struct spool_bdigest *digest; /* bounce_owner ... digest entries, stored with the apply */
	size_t ndigest;
	struct bounce_copy bcopy; /* postmaster_bounce_copy (issue 16): body NULL when none */
	enum job_claim_state claim;
	bool claimed;            /* counted in messages.unfinished (spool_claim): give it back */
	bool finish_after_claim; /* every group ended while the claim was written */
	struct dest **claim_waiters; /* pumped once the claim is durable */
	size_t nclaim_waiters;
	bool suspect;             /* the one suspect under way (deliver.suspect_busy) */
	struct djob *prev, *next; /* deliver.jobs */
};

/*
 * One WRITER_APPLY of a job (delivery/record.c): the 250s of one
 * destination group as soon as that group is done, or the job's last apply
 * (every other outcome, the message's attempts and next_try, the bounce).
 * A failed apply is kept and handed to the writer again, never thrown away:
 * the outcome was read from a server, and re-running the attempt would
 * deliver the message again.
 */
struct japply {
	struct writer_job wj;
	struct djob *job;
	struct spool_result *sres; /* owned; sres[i].reply borrows job->res[].reply */
	size_t n;
	bool last;
	int removed; /* spool_update.removed: this apply deleted the message */
	unsigned retry_ms;   /* the wait after the next failure (1 s doubling to 30 s) */
	struct event *timer; /* armed while waiting to be handed to the writer again */
	struct japply *next; /* djob.applies */
};

/* delivery/record.c: applies that land, whatever it takes */
/* Hand a (filled in: sres, n, last, wj.upd) to the writer; j owns it until dl->applied. */
void job_apply(struct djob *j, struct japply *a);
/* At exit: log each result never recorded (event=result_unrecorded), free j's applies. */
void job_unrecorded(struct djob *j);

/* delivery/claim.c: the count of attempts that never finished */
/*
 * The message is loaded: true to go on. False when j was ended or handed to
 * the writer: held by an operator, held at max_unfinished_attempts, or a
 * suspect (a count above 0) while another suspect's attempt is under way.
 */
bool job_admit(struct djob *j);
/*
 * Claim j's message for this attempt (spool_claim, count + 1) before a
 * connection is opened for it or its transaction starts: DEST_CLAIM_OK once
 * the claim is durable. DEST_CLAIM_WAIT while it is being written (d is
 * pumped again when it is: dest_claim_done); DEST_CLAIM_CANCEL once it
 * failed (the attempt is called off). Waiting in DNS or in a destination queue is never
 * counted: only what can crash while talking to a server about it.
 */
int job_claim(struct djob *j, struct dest *d);
/* Hand the writer j's claim operation (enum spool_claim_op) on j->wj; done() on the loop. */
void job_claim_write(struct djob *j, int op, int max_unfinished, void (*done)(struct writer_job *));
/* A job ended (suspect: it was the suspect under way): the next suspect's turn. */
void suspect_end(struct deliver *dl, bool suspect);

/* deliver_bounce.c: j's DSN (j->bounce, j->bcopy, j->digest) for its failed recipients; 0 / -1 */
int job_make_bounce(struct djob *j);

#endif
