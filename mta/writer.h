/*
 * writer: the spool writer thread (group commit).
 *
 * Sessions hand finished messages, and delivery hands attempt claims and
 * outcomes, to writer_submit; the thread takes every job waiting at that
 * moment and stores them in one spool transaction per kind (one fsync for
 * many; claims need none, see spool_claim), then posts each job's done()
 * back to the loop thread.
 * A 250 reply is sent from done(), so it always follows a durable commit.
 * Owns: its own spool handle; never touches sessions.
 */
#ifndef MXRELAY_WRITER_H
#define MXRELAY_WRITER_H

#include <stdint.h>

#include "spool/spool.h"

struct async;
struct space_conf;
struct writer;

enum writer_kind {
	WRITER_INSERT, /* store an accepted message: in */
	WRITER_APPLY,  /* record a delivery attempt: upd */
	WRITER_FN,     /* run fn(writer's spool, arg) alone (queue control) */
	WRITER_CLAIM,  /* claim a message for an attempt, or give it back: claim */
};

struct writer_job {
	enum writer_kind kind;
	struct spool_msg_in in; /* pointers owned by the submitter until done() */
	struct spool_update upd;
	struct spool_claim claim; /* results filled in before done() */
	/* WRITER_FN: runs on the writer thread after the batch's inserts and
	 * applies, in submission order; 0 / -1 with err (it owns its transaction) */
	int (*fn)(struct spool *sp, void *arg, char *err, size_t errlen);
	int status;    /* 0 stored, -1 failed */
	int disk_full; /* with status -1: storage full / I/O error */
	char err[256];
	void (*done)(struct writer_job *job); /* loop thread */
	void *arg;
	struct writer_job *next; /* writer's private list link */
};

/*
 * Open DATA_DIR's spool on a new thread. space: queue_minfree, spool_reserve
 * and spool_max_size (see mta/space.h; copied), checked before every insert
 * batch, with the start-up check of spool_open_preflight; NULL: none (tests).
 * NULL with err on failure.
 */
struct writer *writer_new(const char *data_dir, const struct space_conf *space, struct async *a,
                          char *err, size_t errlen);

/* Queue job; its done() runs on the loop thread once stored or failed. */
void writer_submit(struct writer *w, struct writer_job *job);

/* Messages committed so far and commits (transactions) done: for logs and the benchmark. */
void writer_stats(struct writer *w, uint64_t *msgs, uint64_t *commits);

/*
 * Finish queued jobs and stop the thread (their done() still comes through
 * the worker pool's completions). A job submitted afterwards fails at once:
 * status -1, its done() posted the same way. Loop thread only.
 */
void writer_stop(struct writer *w);

/* writer_stop if not done yet, close the spool, free. After async_free. */
void writer_free(struct writer *w);

#endif
