/*
 * Unit tests for the writer's space rule (mta/space.c: space_judge) on
 * numbers, and for the spool's reserve file and WAL-index check
 * (spool/spool_space.c) in a mkdtemp directory on the real file system.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mta/space.h"
#include "spool/spool.h"

#define MiB (1ULL << 20)

static void
test_judge_table(void **state)
{
	static const struct {
		const char *label;
		uint64_t free_b, minfree, reserve;
		int used, want;
	} cases[] = {
	    {"floor off", 0, 0, 0, 0, 0},
	    {"above the floor", 5 * MiB, 4 * MiB, 16 * MiB, 0, 0},
	    {"at the floor", 4 * MiB, 4 * MiB, 16 * MiB, 0, 0},
	    {"one byte under", 4 * MiB - 1, 4 * MiB, 16 * MiB, 0, -1},
	    {"nothing free", 0, 4 * MiB, 0, 0, -1},
	    {"reserve used: floor alone is not enough", 5 * MiB, 4 * MiB, 16 * MiB, 1, -1},
	    {"reserve used: floor + reserve", 20 * MiB, 4 * MiB, 16 * MiB, 1, 0},
	    {"reserve used, floor off", 15 * MiB, 0, 16 * MiB, 1, -1},
	    {"reserve used, floor off, room", 16 * MiB, 0, 16 * MiB, 1, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got =
		    space_judge(cases[i].free_b, cases[i].minfree, cases[i].reserve, cases[i].used);
		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].label, got, cases[i].want);
	}
}

static void
test_reserve_fill_release(void **state)
{
	char dir[] = "/tmp/mxspace-XXXXXX", path[64], err[256];
	struct stat sb;
	(void)state;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(spool_reserve_size(dir), 0);
	assert_int_equal(spool_reserve_fill(dir, 1 * MiB, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/spool.reserve", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* allocated, not sparse: releasing it must free real blocks */
	assert_true(spool_reserve_size(dir) >= 1 * MiB);
	assert_int_equal(spool_reserve_fill(dir, 256 * 1024, err, sizeof err), 0);
	assert_int_equal(spool_reserve_size(dir), 256 * 1024);
	assert_int_equal(spool_reserve_release(dir, err, sizeof err), 0);
	assert_int_equal(spool_reserve_size(dir), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void
test_preflight_empty_dir_and_spool(void **state)
{
	char dir[] = "/tmp/mxspace-XXXXXX", err[256];
	struct spool *sp;
	uint64_t used = 0, reusable = 0;
	int released = -1;
	(void)state;

	assert_non_null(mkdtemp(dir));
	/* a new spool on a disk with room: nothing to release, nothing refused */
	assert_int_equal(spool_open_preflight(dir, &released, err, sizeof err), 0);
	assert_int_equal(released, 0);
	assert_int_equal(spool_open(&sp, dir, err, sizeof err), 0);
	assert_int_equal(spool_bytes(sp, &used, &reusable, err, sizeof err), 0);
	assert_true(used > 0);
	assert_int_equal(spool_checkpoint(sp), 0);
	assert_int_equal(spool_take_full(sp), 0);
	spool_close(sp);
	assert_int_equal(spool_open_preflight(dir, &released, err, sizeof err), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_judge_table),
	    cmocka_unit_test(test_reserve_fill_release),
	    cmocka_unit_test(test_preflight_empty_dir_and_spool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
