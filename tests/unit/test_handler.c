/* test_handler.c - --handler specs, and running commands: exit codes,
 * stdin, output capture, the timeout, the environment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handler.h"
#include "util.h"

static void test_parse(void **state)
{
	ts_handler h;
	ts_detail d;

	(void)state;
	assert_int_equal(ts_handler_parse("invoice=/usr/bin/make-invoice --fast", &h, &d), TS_OK);
	assert_string_equal(h.type, "invoice");
	assert_int_equal(h.kind, TS_HANDLER_COMMAND);
	assert_string_equal(h.target, "/usr/bin/make-invoice --fast");
	ts_handler_free(&h);

	assert_int_equal(ts_handler_parse("hook=https://u:secret@hooks.example.com/x?a=1", &h, &d), TS_OK);
	assert_int_equal(h.kind, TS_HANDLER_HTTP);
	assert_string_equal(h.describe, "https://***@hooks.example.com/x?a=1");
	assert_null(strstr(h.describe, "secret"));
	ts_handler_free(&h);

	/* an @ after the host is not user info */
	assert_int_equal(ts_handler_parse("a=http://h.example/p@q", &h, &d), TS_OK);
	assert_string_equal(h.describe, "http://h.example/p@q");
	ts_handler_free(&h);

	assert_int_equal(ts_handler_parse("no-equals-sign", &h, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_handler_parse("=cmd", &h, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_handler_parse("Bad=cmd", &h, &d), TS_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "not a task type"));
	assert_int_equal(ts_handler_parse("x=   ", &h, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_handler_parse("x=http://a b", &h, &d), TS_ERR_CONFIG);
}

static void run(const char *spec, const char *body, int64_t timeout_ms,
		ts_handler_result *r)
{
	ts_handler h;
	ts_handler_runner *rn;
	ts_handler_call c;
	ts_detail d;

	assert_int_equal(ts_handler_parse(spec, &h, &d), TS_OK);
	assert_int_equal(ts_handler_runner_new(5000, &rn), TS_OK);
	memset(&c, 0, sizeof c);
	c.body = body;
	c.len = strlen(body);
	c.task_id = "task-1";
	c.task_type = h.type;
	c.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	c.attempt = 2;
	c.timeout_ms = timeout_ms;
	memset(r, 0, sizeof *r);
	ts_handler_run(rn, &h, &c, r);
	ts_handler_runner_free(rn);
	ts_handler_free(&h);
}

static void test_exit_codes(void **state)
{
	ts_handler_result r;

	(void)state;
	run("t=exit 0", "", 5000, &r);
	assert_int_equal(r.err, TS_OK);
	assert_int_equal(r.status, 0);
	ts_handler_result_free(&r);

	run("t=echo later >&2; exit 75", "", 5000, &r);
	assert_int_equal(r.err, TS_ERR_TRANSIENT);
	assert_string_equal(r.msg, "exit 75: later");
	ts_handler_result_free(&r);

	run("t=printf 'first\\nlast line\\n' >&2; exit 3", "", 5000, &r);
	assert_int_equal(r.err, TS_ERR_PERMANENT);
	assert_int_equal(r.status, 3);
	assert_string_equal(r.msg, "exit 3: last line");
	ts_handler_result_free(&r);

	run("t=kill -9 $$", "", 5000, &r);
	assert_int_equal(r.err, TS_ERR_TRANSIENT);
	assert_non_null(strstr(r.msg, "killed by signal 9"));
	ts_handler_result_free(&r);
}

static void test_stdin_and_env(void **state)
{
	ts_handler_result r;

	(void)state;
	run("t=cat; echo; echo \"$TS_TASK_ID $TS_TASK_TYPE $TS_ATTEMPT $TRACEPARENT\"; "
	    "env | grep -c '^TS_SMTP_PASSWORD=' >&2; true",
	    "{\"taskId\":\"task-1\"}", 5000, &r);
	assert_int_equal(r.err, TS_OK);
	assert_string_equal(r.out.data,
		"{\"taskId\":\"task-1\"}\ntask-1 t 2 "
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n");
	assert_string_equal(r.errout.data, "0\n");
	ts_handler_result_free(&r);
}

/* A body bigger than a pipe holds, read slowly: no deadlock. */
static void test_big_body(void **state)
{
	ts_handler_result r;
	size_t n = 1 << 20;
	char *big = malloc(n + 1);

	(void)state;
	memset(big, 'x', n);
	big[n] = '\0';
	run("t=sleep 0.1; wc -c", big, 10000, &r);
	assert_int_equal(r.err, TS_OK);
	assert_int_equal(atoi(r.out.data), (int)n);
	ts_handler_result_free(&r);
	/* one that never reads its stdin still finishes */
	run("t=exit 0", big, 10000, &r);
	assert_int_equal(r.err, TS_OK);
	ts_handler_result_free(&r);
	free(big);
}

static void test_timeout_kills_the_group(void **state)
{
	ts_handler_result r;
	int64_t t0 = ts_mono_ms();

	(void)state;
	run("t=sleep 30.123 & sleep 31; echo never", "", 300, &r);
	assert_int_equal(r.err, TS_ERR_TRANSIENT);
	assert_true(r.timed_out);
	assert_string_equal(r.msg, "timed out after 300 ms");
	assert_true(ts_mono_ms() - t0 < 5000);
	ts_handler_result_free(&r);
	/* the background sleep went with it */
	assert_int_not_equal(system("pgrep -x -f 'sleep 30.123' >/dev/null"), 0);
}

static void test_capture_is_bounded(void **state)
{
	ts_handler_result r;

	(void)state;
	run("t=head -c 300000 /dev/zero | tr '\\0' y", "", 10000, &r);
	assert_int_equal(r.err, TS_OK);
	assert_int_equal(r.out.len, TS_HANDLER_CAPTURE_MAX);
	ts_handler_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_stdin_and_env),
		cmocka_unit_test(test_big_body),
		cmocka_unit_test(test_timeout_kills_the_group),
		cmocka_unit_test(test_capture_is_bounded),
	};
	setenv("TS_SMTP_PASSWORD", "hunter2", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
