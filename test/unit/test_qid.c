/*
 * Unit tests for util_make_qid (mta/shared/util.c): queue ids are 16 lower-case
 * hex characters, sort by arrival second, and never repeat in one process,
 * even at rates far above any intake (the spool's UNIQUE constraint would
 * refuse a repeated one with 451: seen in the end-to-end benchmark at 2000
 * messages a second, when the tail was seven random hex digits).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/shared/util.h"

#define N 300000

static int
cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* 300,000 ids, most of them in the same second: every one different */
static void
test_unique(void **state)
{
	char(*ids)[17] = malloc(sizeof(*ids) * N);
	int dups = 0;

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < N; i++)
		util_make_qid(ids[i]);
	qsort(ids, N, sizeof(*ids), cmp);
	for (int i = 1; i < N; i++)
		if (memcmp(ids[i - 1], ids[i], 16) == 0)
			dups++;
	if (dups != 0)
		fail_msg("%d repeated queue ids among %d", dups, N);
	free(ids);
}

/* 16 hex digits; the first nine are the time in seconds */
static void
test_format(void **state)
{
	char id[17], want[10];
	time_t before = time(NULL), after;

	(void)state;
	util_make_qid(id);
	after = time(NULL);
	assert_int_equal(strlen(id), 16);
	assert_int_equal(strspn(id, "0123456789abcdef"), 16);
	snprintf(want, sizeof want, "%09llx", (unsigned long long)before);
	if (strncmp(id, want, 9) != 0) {
		snprintf(want, sizeof want, "%09llx", (unsigned long long)after);
		assert_memory_equal(id, want, 9);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
