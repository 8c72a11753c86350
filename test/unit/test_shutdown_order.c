/*
 * Unit tests for the daemon's teardown order (main.c: writer_stop, then
 * async_free, then writer_free): a completion that runs while the worker
 * pool shuts down may hand the spool writer one more job or start more work.
 * The job must fail at once with its done() called (never touch a freed
 * writer), work started then must still run, and every completion must run
 * before async_free returns. Runs on a real spool in a mkdtemp directory;
 * under ASan a use of the freed writer would abort the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/async.h"
#include "mta/writer.h"

struct late {
	struct writer *w;
	struct async *a;
	struct writer_job job;
	int worked, work_done, job_done, job_status;
};

static void
job_done(struct writer_job *job)
{
	struct late *l = job->arg;
	l->job_done++;
	l->job_status = job->status;
}

static void
late_work(void *arg)
{
	((struct late *)arg)->worked++;
}

static void
late_work_done(void *arg)
{
	((struct late *)arg)->work_done++;
}

/* A completion that runs inside async_free: more work, and a job for the writer. */
static void
first_done(void *arg)
{
	struct late *l = arg;

	async_run(l->a, late_work, late_work_done, l);
	memset(&l->job, 0, sizeof(l->job));
	l->job.kind = WRITER_FN;
	l->job.done = job_done;
	l->job.arg = l;
	writer_submit(l->w, &l->job);
}

static void
nothing(void *arg)
{
	(void)arg;
}

static void
test_late_writer_job_fails_and_late_work_runs(void **state)
{
	char dir[] = "/tmp/test_shutdown_order.XXXXXX", err[256] = "";
	struct event_base *base = event_base_new();
	struct late l = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	l.a = async_new(base, 1, err, sizeof(err));
	assert_non_null(l.a);
	l.w = writer_new(dir, 0, l.a, err, sizeof(err));
	if (l.w == NULL)
		fail_msg("writer_new: %s", err);
	/* queued while running; its done() comes only when async_free drains */
	async_run(l.a, nothing, first_done, &l);

	writer_stop(l.w);
	async_free(l.a);
	assert_int_equal(l.worked, 1);
	assert_int_equal(l.work_done, 1);
	assert_int_equal(l.job_done, 1);
	assert_int_equal(l.job_status, -1);
	assert_non_null(strstr(l.job.err, "stopped"));
	writer_free(l.w);
	event_base_free(base);
	assert_int_equal(tu_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_late_writer_job_fails_and_late_work_runs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
