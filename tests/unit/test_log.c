/* test_log.c - one stderr line per message, text or JSON, by level. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"

static int saved_fd = -1;
static char capture_path[64];
static char *out;      /* what the last capture saw */

/* Send stderr to a temp file until end_capture(). */
static void begin_capture(void)
{
	int fd;

	snprintf(capture_path, sizeof capture_path, "/tmp/ts-log-XXXXXX");
	fd = mkstemp(capture_path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_fd = dup(STDERR_FILENO);
	assert_true(saved_fd >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

/* Restore stderr and read what was written into out. */
static void end_capture(void)
{
	FILE *f;
	long n;

	if (saved_fd < 0)
		return;
	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	saved_fd = -1;
	free(out);
	f = fopen(capture_path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
	out[n] = '\0';
	fclose(f);
	unlink(capture_path);
}

static int setup(void **state)
{
	(void)state;
	ts_log_init("ts-test");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	end_capture(); /* if a test failed while capturing */
	free(out);
	out = NULL;
	ts_log_init("ts-test");
	return 0;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_text_format(void **state)
{
	(void)state;
	ts_log_init("ts-submit");
	assert_string_equal(ts_log_tool(), "ts-submit");
	begin_capture();
	ts_log_error("tasks.jsonl:3: payload.to: %s", "required");
	ts_log_warn("broker %d is slow", 2);
	ts_log_error("%s", "100% literal");
	end_capture();
	assert_string_equal(out,
			    "ts-submit: tasks.jsonl:3: payload.to: required\n"
			    "ts-submit: warning: broker 2 is slow\n"
			    "ts-submit: 100% literal\n");
}

static void test_levels(void **state)
{
	(void)state;
	/* default: warnings and errors */
	assert_int_equal(ts_log_get_level(), TS_LOG_WARN);
	begin_capture();
	ts_log_debug("d1");
	ts_log_info("i1");
	ts_log_warn("w1");
	ts_log_error("e1");
	end_capture();
	assert_string_equal(out, "ts-test: warning: w1\nts-test: e1\n");

	/* -q: errors only */
	ts_log_set_level(TS_LOG_ERROR);
	begin_capture();
	ts_log_debug("d2");
	ts_log_info("i2");
	ts_log_warn("w2");
	ts_log_error("e2");
	end_capture();
	assert_string_equal(out, "ts-test: e2\n");

	/* -v: info, -vv: debug; neither carries a prefix */
	ts_log_set_level(TS_LOG_INFO);
	begin_capture();
	ts_log_debug("d3");
	ts_log_info("i3");
	end_capture();
	assert_string_equal(out, "ts-test: i3\n");
	ts_log_set_level(TS_LOG_DEBUG);
	begin_capture();
	ts_log_debug("d4");
	ts_log(TS_LOG_INFO, "i4");
	end_capture();
	assert_string_equal(out, "ts-test: d4\nts-test: i4\n");

	/* out of range clamps */
	ts_log_set_level((ts_log_level)99);
	assert_int_equal(ts_log_get_level(), TS_LOG_DEBUG);
	ts_log_set_level((ts_log_level)-3);
	assert_int_equal(ts_log_get_level(), TS_LOG_ERROR);

	/* init resets level and format */
	ts_log_set_level(TS_LOG_DEBUG);
	ts_log_set_json(1);
	ts_log_init("ts-other");
	assert_int_equal(ts_log_get_level(), TS_LOG_WARN);
	begin_capture();
	ts_log_info("hidden");
	ts_log_error("shown");
	end_capture();
	assert_string_equal(out, "ts-other: shown\n");
}

static void test_newlines_flattened(void **state)
{
	(void)state;
	begin_capture();
	ts_log_error("line one\nline two\r\nthree\r");
	ts_log_warn("%s", "\n");
	end_capture();
	assert_string_equal(out, "ts-test: line one line two  three \nts-test: warning:  \n");
	assert_int_equal(count_lines(out), 2);
}

static void test_long_message(void **state)
{
	char *big = malloc(5001);
	size_t n;

	(void)state;
	assert_non_null(big);
	memset(big, 'y', 5000);
	big[5000] = '\0';
	begin_capture();
	ts_log_warn("%s", big);
	ts_log_error("after");
	end_capture();
	free(big);
	/* truncated, but still one whole line, and the next one intact */
	assert_int_equal(count_lines(out), 2);
	n = strcspn(out, "\n");
	assert_true(n > 1000 && n < 2300);
	assert_memory_equal(out, "ts-test: warning: yyy", 21);
	assert_string_equal(out + n + 1, "ts-test: after\n");
}

static cJSON *parse_line(const char *line, size_t len)
{
	char *copy = strndup(line, len);
	cJSON *o;

	assert_non_null(copy);
	o = cJSON_Parse(copy);
	if (!o)
		fail_msg("not JSON: %s", copy);
	free(copy);
	return o;
}

static void check_json_line(const char *line, size_t len, const char *level,
			    const char *msg)
{
	cJSON *o = parse_line(line, len);
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
	const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, "level");
	const cJSON *tool = cJSON_GetObjectItemCaseSensitive(o, "tool");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "msg");
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	assert_int_equal(cJSON_GetArraySize(o), 4);
	assert_true(cJSON_IsString(ts) && cJSON_IsString(lv) &&
		    cJSON_IsString(tool) && cJSON_IsString(m));
	assert_int_equal(strlen(ts->valuestring), sizeof pat - 1);
	for (size_t i = 0; pat[i]; i++)
		assert_true(pat[i] == 'd' ? isdigit((unsigned char)ts->valuestring[i])
					   : ts->valuestring[i] == pat[i]);
	assert_string_equal(lv->valuestring, level);
	assert_string_equal(tool->valuestring, "ts-json");
	assert_string_equal(m->valuestring, msg);
	cJSON_Delete(o);
}

static void test_json_format(void **state)
{
	const char *p, *nl;
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	static const char *const msgs[] = {
		"tasks.jsonl:3: payload.to: required",
		"quote \" backslash \\ tab \t ctl \x01 done",
		"caf\xc3\xa9 \xe2\x82\xac",
		"a b  c",
	};

	(void)state;
	ts_log_init("ts-json");
	ts_log_set_json(1);
	ts_log_set_level(TS_LOG_DEBUG);
	begin_capture();
	ts_log_error("%s", msgs[0]);
	ts_log_warn("%s", msgs[1]);
	ts_log_info("%s", msgs[2]);
	ts_log_debug("a\nb\r\nc");
	end_capture();
	assert_int_equal(count_lines(out), 4);
	p = out;
	for (int i = 0; i < 4; i++) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		check_json_line(p, (size_t)(nl - p), levels[i], msgs[i]);
		p = nl + 1;
	}
	assert_string_equal(p, "");

	/* filtering applies to JSON too */
	ts_log_set_level(TS_LOG_WARN);
	begin_capture();
	ts_log_info("dropped");
	ts_log_debug("dropped");
	end_capture();
	assert_string_equal(out, "");

	/* back to text */
	ts_log_set_json(0);
	begin_capture();
	ts_log_error("plain");
	end_capture();
	assert_string_equal(out, "ts-json: plain\n");
}

static void test_json_long_message(void **state)
{
	char *big = malloc(8001);

	(void)state;
	assert_non_null(big);
	memset(big, 'q', 8000);
	big[8000] = '\0';
	ts_log_init("ts-json");
	ts_log_set_json(1);
	begin_capture();
	ts_log_error("%s", big);
	end_capture();
	free(big);
	assert_int_equal(count_lines(out), 1);
	cJSON *o = parse_line(out, strlen(out) - 1);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "msg");
	assert_true(cJSON_IsString(m));
	assert_true(strlen(m->valuestring) > 1000);
	assert_true(strspn(m->valuestring, "q") == strlen(m->valuestring));
	cJSON_Delete(o);
}

#define THREADS 4
#define LINES 200

static void *log_many(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < LINES; i++)
		ts_log_error("t%d n%03d %s", id, i,
			     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	return NULL;
}

static void test_threads_whole_lines(void **state)
{
	pthread_t th[THREADS];
	int seen[THREADS][LINES] = { { 0 } };
	char *line, *save = NULL;
	int total = 0;

	(void)state;
	begin_capture();
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_many, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	end_capture();
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int id, n;
		char rest[200];
		if (sscanf(line, "ts-test: t%d n%d %199s", &id, &n, rest) != 3 ||
		    id < 0 || id >= THREADS || n < 0 || n >= LINES ||
		    strlen(rest) != 100 || strspn(rest, "x") != 100)
			fail_msg("torn line: %s", line);
		seen[id][n]++;
		total++;
	}
	assert_int_equal(total, THREADS * LINES);
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < LINES; j++)
			assert_int_equal(seen[i][j], 1);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T_(test_text_format),
		T_(test_levels),
		T_(test_newlines_flattened),
		T_(test_long_message),
		T_(test_json_format),
		T_(test_json_long_message),
		T_(test_threads_whole_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
