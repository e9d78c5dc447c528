/* test_err.c - error names, the sysexits mapping, ts_err_worst, ts_fail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sysexits.h>

#include "err.h"

static void test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(ts_err_exit(TS_OK), 0);
	assert_int_equal(ts_err_exit(TS_ERR_USAGE), 64);
	assert_int_equal(ts_err_exit(TS_ERR_DATA), 65);
	assert_int_equal(ts_err_exit(TS_ERR_PERMANENT), 69);
	assert_int_equal(ts_err_exit(TS_ERR_INTERNAL), 70);
	assert_int_equal(ts_err_exit(TS_ERR_NOMEM), 70);
	assert_int_equal(ts_err_exit(TS_ERR_IO), 70);
	assert_int_equal(ts_err_exit(TS_ERR_TRANSIENT), 75);
	assert_int_equal(ts_err_exit(TS_ERR_CONFIG), 78);
	/* the same numbers sysexits.h gives */
	assert_int_equal(ts_err_exit(TS_ERR_USAGE), EX_USAGE);
	assert_int_equal(ts_err_exit(TS_ERR_CONFIG), EX_CONFIG);
	/* out of range is a software error, never success */
	assert_int_equal(ts_err_exit((ts_err)TS_ERR__COUNT), EX_SOFTWARE);
	assert_int_equal(ts_err_exit((ts_err)-1), EX_SOFTWARE);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = 0; e < TS_ERR__COUNT; e++) {
		const char *s = ts_strerror((ts_err)e);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		/* every code has its own name */
		for (int f = 0; f < e; f++)
			assert_string_not_equal(s, ts_strerror((ts_err)f));
	}
	assert_string_equal(ts_strerror(TS_ERR_DATA), "invalid input");
	assert_non_null(ts_strerror((ts_err)TS_ERR__COUNT));
	assert_non_null(ts_strerror((ts_err)12345));
}

static void test_worst_order(void **state)
{
	(void)state;
	/* 75 > 69 > 65 > 0, whichever side each comes from */
	assert_int_equal(ts_err_worst(TS_OK, TS_ERR_DATA), TS_ERR_DATA);
	assert_int_equal(ts_err_worst(TS_ERR_DATA, TS_OK), TS_ERR_DATA);
	assert_int_equal(ts_err_worst(TS_ERR_DATA, TS_ERR_PERMANENT), TS_ERR_PERMANENT);
	assert_int_equal(ts_err_worst(TS_ERR_PERMANENT, TS_ERR_DATA), TS_ERR_PERMANENT);
	assert_int_equal(ts_err_worst(TS_ERR_PERMANENT, TS_ERR_TRANSIENT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_err_worst(TS_ERR_TRANSIENT, TS_ERR_PERMANENT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_err_worst(TS_ERR_DATA, TS_ERR_TRANSIENT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_err_worst(TS_ERR_TRANSIENT, TS_ERR_DATA), TS_ERR_TRANSIENT);
	assert_int_equal(ts_err_worst(TS_OK, TS_OK), TS_OK);
	/* any failure beats success */
	for (int e = 1; e < TS_ERR__COUNT; e++) {
		assert_int_equal(ts_err_worst(TS_OK, (ts_err)e), e);
		assert_int_equal(ts_err_worst((ts_err)e, TS_OK), e);
	}
}

/* A run's exit status, folded over outcomes in any order. */
static int fold(const ts_err *v, size_t n)
{
	ts_err w = TS_OK;

	for (size_t i = 0; i < n; i++)
		w = ts_err_worst(w, v[i]);
	return ts_err_exit(w);
}

static void test_worst_fold(void **state)
{
	static const ts_err a[] = { TS_ERR_DATA, TS_OK, TS_ERR_TRANSIENT, TS_ERR_PERMANENT, TS_OK };
	static const ts_err b[] = { TS_ERR_TRANSIENT, TS_ERR_PERMANENT, TS_ERR_DATA };
	static const ts_err c[] = { TS_OK, TS_ERR_DATA, TS_ERR_PERMANENT, TS_ERR_DATA };
	static const ts_err e[] = { TS_ERR_DATA, TS_OK, TS_ERR_DATA };

	(void)state;
	assert_int_equal(fold(a, 5), 75);
	assert_int_equal(fold(b, 3), 75);
	assert_int_equal(fold(c, 4), 69);
	assert_int_equal(fold(e, 3), 65);
	assert_int_equal(fold(NULL, 0), 0);
}

static void test_fail_formats(void **state)
{
	ts_detail d;
	ts_err r;

	(void)state;
	memset(&d, 'x', sizeof d);
	r = ts_fail(&d, TS_ERR_DATA, "payload.to[2]", "not %s (%d)", "an address", 7);
	assert_int_equal(r, TS_ERR_DATA);
	assert_string_equal(d.field, "payload.to[2]");
	assert_string_equal(d.msg, "not an address (7)");

	r = ts_fail(&d, TS_ERR_CONFIG, NULL, "plain");
	assert_int_equal(r, TS_ERR_CONFIG);
	assert_string_equal(d.field, "");
	assert_string_equal(d.msg, "plain");

	/* a NULL detail is allowed and the code still comes back */
	assert_int_equal(ts_fail(NULL, TS_ERR_IO, "f", "m %d", 1), TS_ERR_IO);
}

static void test_fail_truncates(void **state)
{
	char longfield[600], longmsg[2000];
	ts_detail d;

	(void)state;
	memset(longfield, 'f', sizeof longfield - 1);
	longfield[sizeof longfield - 1] = '\0';
	memset(longmsg, 'm', sizeof longmsg - 1);
	longmsg[sizeof longmsg - 1] = '\0';
	ts_fail(&d, TS_ERR_DATA, longfield, "%s", longmsg);
	assert_int_equal(strlen(d.field), sizeof d.field - 1);
	assert_int_equal(strlen(d.msg), sizeof d.msg - 1);
	assert_int_equal(d.field[0], 'f');
	assert_int_equal(d.msg[sizeof d.msg - 2], 'm');
}

static void test_detail_clear(void **state)
{
	ts_detail d;

	(void)state;
	ts_fail(&d, TS_ERR_DATA, "a", "b");
	ts_detail_clear(&d);
	assert_string_equal(d.field, "");
	assert_string_equal(d.msg, "");
	ts_detail_clear(NULL); /* must not crash */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_worst_order),
		cmocka_unit_test(test_worst_fold),
		cmocka_unit_test(test_fail_formats),
		cmocka_unit_test(test_fail_truncates),
		cmocka_unit_test(test_detail_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
