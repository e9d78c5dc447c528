/* test_backoff.c - full-jitter exponential back-off and Retry-After. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backoff.h"

static const ts_backoff dflt = { 1000, 2.0, 60000 }; /* DESIGN.md defaults */

static void test_ceiling_grows_and_caps(void **state)
{
	(void)state;
	assert_int_equal(ts_backoff_ceiling(&dflt, 1), 1000);
	assert_int_equal(ts_backoff_ceiling(&dflt, 2), 2000);
	assert_int_equal(ts_backoff_ceiling(&dflt, 3), 4000);
	assert_int_equal(ts_backoff_ceiling(&dflt, 6), 32000);
	assert_int_equal(ts_backoff_ceiling(&dflt, 7), 60000);
	assert_int_equal(ts_backoff_ceiling(&dflt, 1000), 60000); /* no overflow */
	assert_int_equal(ts_backoff_ceiling(&dflt, 0), 1000);     /* clamped */
	assert_int_equal(ts_backoff_ceiling(&dflt, -5), 1000);
}

static void test_ceiling_odd_settings(void **state)
{
	ts_backoff flat = { 500, 1.0, 60000 };
	ts_backoff zero = { 0, 2.0, 60000 };
	ts_backoff small_max = { 1000, 3.0, 250 };
	ts_backoff frac = { 100, 1.5, 100000 };

	(void)state;
	assert_int_equal(ts_backoff_ceiling(&flat, 50), 500);
	assert_int_equal(ts_backoff_ceiling(&zero, 3), 0);
	assert_int_equal(ts_backoff_ceiling(&small_max, 1), 250);
	assert_int_equal(ts_backoff_ceiling(&frac, 3), 225);
}

static void test_full_jitter_range(void **state)
{
	(void)state;
	/* u = 0 waits nothing: full jitter, not "equal jitter" */
	assert_int_equal(ts_backoff_delay_u(&dflt, 1, -1, 0.0), 0);
	assert_int_equal(ts_backoff_delay_u(&dflt, 3, -1, 0.5), 2000);
	/* u just below 1 reaches the ceiling, never above */
	assert_int_equal(ts_backoff_delay_u(&dflt, 3, -1, 0.99999999), 4000);
	assert_int_equal(ts_backoff_delay_u(&dflt, 3, -1, 1.0), 4000);
	assert_int_equal(ts_backoff_delay_u(&dflt, 3, -1, 7.0), 4000);
	assert_int_equal(ts_backoff_delay_u(&dflt, 3, -1, -1.0), 0);
	assert_int_equal(ts_backoff_delay_u(&dflt, 20, -1, 0.99999999), 60000);
}

static void test_retry_after_is_a_floor(void **state)
{
	(void)state;
	/* longer than the jittered wait: honoured */
	assert_int_equal(ts_backoff_delay_u(&dflt, 1, 5000, 0.1), 5000);
	/* shorter: the jittered wait stands */
	assert_int_equal(ts_backoff_delay_u(&dflt, 3, 100, 0.5), 2000);
	/* longer than --backoff-max: capped there */
	assert_int_equal(ts_backoff_delay_u(&dflt, 1, 3600000, 0.1), 60000);
	/* 0 and absent change nothing */
	assert_int_equal(ts_backoff_delay_u(&dflt, 1, 0, 0.0), 0);
	assert_int_equal(ts_backoff_delay_u(&dflt, 1, -1, 0.25), 250);
}

/* The generator: every draw in range, and actually spread out (a constant
 * generator would pass the range check and defeat the jitter). */
static void test_random_spread(void **state)
{
	enum { N = 4000 };
	int buckets[4] = { 0 };

	(void)state;
	for (int i = 0; i < N; i++) {
		int64_t w = ts_backoff_delay(&dflt, 3, -1);
		assert_true(w >= 0 && w <= 4000);
		buckets[w * 4 / 4001]++;
	}
	for (int i = 0; i < 4; i++)
		assert_true(buckets[i] > N / 8); /* each quarter well used */
	assert_int_equal(ts_backoff_delay(&dflt, 1, 3000) >= 3000, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceiling_grows_and_caps),
		cmocka_unit_test(test_ceiling_odd_settings),
		cmocka_unit_test(test_full_jitter_range),
		cmocka_unit_test(test_retry_after_is_a_floor),
		cmocka_unit_test(test_random_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
