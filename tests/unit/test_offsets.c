/* test_offsets.c - the per-partition commit tracker. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "offsets.h"

static void test_empty(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	assert_int_equal(ts_offsets_commit_point(&o), -1);
	assert_int_equal(ts_offsets_last(&o), -1);
	assert_int_equal(ts_offsets_unfinished(&o), 0);
	assert_int_equal(ts_offsets_done(&o, 0), TS_ERR_DATA);
	ts_offsets_free(&o);
}

static void test_in_order(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	assert_int_equal(ts_offsets_add(&o, 5), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 5);
	assert_int_equal(ts_offsets_done(&o, 5), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 6);
	assert_int_equal(ts_offsets_add(&o, 6), TS_OK);
	assert_int_equal(ts_offsets_add(&o, 7), TS_OK);
	assert_int_equal(ts_offsets_done(&o, 6), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 7);
	assert_int_equal(ts_offsets_unfinished(&o), 1);
	ts_offsets_free(&o);
}

/* The point of the module: a later task finishing first must not move the
 * commit point past an earlier one still running. */
static void test_out_of_order(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	for (int64_t i = 10; i < 15; i++)
		assert_int_equal(ts_offsets_add(&o, i), TS_OK);
	assert_int_equal(ts_offsets_done(&o, 12), TS_OK);
	assert_int_equal(ts_offsets_done(&o, 14), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 10);
	assert_int_equal(ts_offsets_done(&o, 10), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 11);
	assert_int_equal(ts_offsets_done(&o, 11), TS_OK);
	/* 12 was already finished: the point jumps over it to 13 */
	assert_int_equal(ts_offsets_commit_point(&o), 13);
	assert_int_equal(ts_offsets_done(&o, 13), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 15);
	assert_int_equal(ts_offsets_unfinished(&o), 0);
	ts_offsets_free(&o);
}

/* Gaps (compacted or transaction-marker offsets) are never waited for. */
static void test_gaps(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	assert_int_equal(ts_offsets_add(&o, 100), TS_OK);
	assert_int_equal(ts_offsets_add(&o, 103), TS_OK);
	assert_int_equal(ts_offsets_add(&o, 200), TS_OK);
	assert_int_equal(ts_offsets_done(&o, 100), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 103);
	assert_int_equal(ts_offsets_done(&o, 200), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 103);
	assert_int_equal(ts_offsets_done(&o, 101), TS_ERR_DATA);
	assert_int_equal(ts_offsets_done(&o, 103), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 201);
	ts_offsets_free(&o);
}

static void test_errors(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	assert_int_equal(ts_offsets_add(&o, -1), TS_ERR_DATA);
	assert_int_equal(ts_offsets_add(&o, 3), TS_OK);
	assert_int_equal(ts_offsets_add(&o, 3), TS_ERR_DATA);  /* repeat */
	assert_int_equal(ts_offsets_add(&o, 2), TS_ERR_DATA);  /* backwards */
	assert_int_equal(ts_offsets_done(&o, 4), TS_ERR_DATA); /* never added */
	assert_int_equal(ts_offsets_done(&o, 3), TS_OK);
	assert_int_equal(ts_offsets_done(&o, 3), TS_ERR_DATA); /* twice */
	/* still refuses to go backwards after everything was released */
	assert_int_equal(ts_offsets_add(&o, 3), TS_ERR_DATA);
	assert_int_equal(ts_offsets_add(&o, 4), TS_OK);
	ts_offsets_free(&o);
}

static void test_reset(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	assert_int_equal(ts_offsets_add(&o, 50), TS_OK);
	assert_int_equal(ts_offsets_add(&o, 51), TS_OK);
	ts_offsets_reset(&o);
	assert_int_equal(ts_offsets_commit_point(&o), -1);
	assert_int_equal(ts_offsets_unfinished(&o), 0);
	/* after a reassignment the partition may resume lower */
	assert_int_equal(ts_offsets_add(&o, 10), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 10);
	ts_offsets_free(&o);
}

/* An abandoned task (never finished) holds the point forever. */
static void test_abandoned_holds(void **state)
{
	ts_offsets o;

	(void)state;
	ts_offsets_init(&o);
	for (int64_t i = 0; i < 10; i++)
		assert_int_equal(ts_offsets_add(&o, i), TS_OK);
	for (int64_t i = 0; i < 10; i++)
		if (i != 4)
			assert_int_equal(ts_offsets_done(&o, i), TS_OK);
	assert_int_equal(ts_offsets_commit_point(&o), 4);
	assert_int_equal(ts_offsets_unfinished(&o), 1);
	ts_offsets_free(&o);
}

/* Compare with a plain model over many random orders, across ring growth
 * and wrap-around. */
static void test_random_against_model(void **state)
{
	enum { N = 5000 };
	static unsigned char finished[N];
	ts_offsets o;
	unsigned seed = 12345;
	int64_t added = 0;

	(void)state;
	memset(finished, 0, sizeof finished);
	ts_offsets_init(&o);
	while (added < N || ts_offsets_unfinished(&o)) {
		seed = seed * 1103515245u + 12345u;
		if (added < N && (seed >> 16) % 3 != 0) {
			assert_int_equal(ts_offsets_add(&o, added), TS_OK);
			added++;
		} else if (added > 0) {
			/* finish a random unfinished one at or above the point */
			int64_t lo = ts_offsets_commit_point(&o);
			int64_t pick = lo + (int64_t)((seed >> 8) % 64);
			if (pick >= added)
				pick = added - 1;
			while (pick >= lo && finished[pick])
				pick--;
			if (pick >= lo) {
				assert_int_equal(ts_offsets_done(&o, pick), TS_OK);
				finished[pick] = 1;
			}
		}
		int64_t want = 0;
		while (want < added && finished[want])
			want++;
		assert_int_equal(ts_offsets_commit_point(&o),
				 added ? want : -1);
	}
	assert_int_equal(ts_offsets_commit_point(&o), N);
	ts_offsets_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_abandoned_holds),
		cmocka_unit_test(test_random_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
