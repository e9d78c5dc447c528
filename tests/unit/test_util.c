/* test_util.c - durations, sizes, integers, buffers, files, time, ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util.h"

#include "testutil.h"

/* ---- durations ---------------------------------------------------------- */

static void dur_ok(const char *s, int64_t want)
{
	ts_detail d;
	int64_t ms = -12345;
	ts_err r = ts_parse_duration(s, &ms, &d);

	if (r != TS_OK)
		fail_msg("duration '%s' rejected: %s", s, d.msg);
	if (ms != want)
		fail_msg("duration '%s': got %lld ms, want %lld", s,
			 (long long)ms, (long long)want);
}

static void dur_bad(const char *s)
{
	ts_detail d;
	int64_t ms = -12345;
	ts_err r = ts_parse_duration(s, &ms, &d);

	if (r != TS_ERR_CONFIG)
		fail_msg("duration '%s' accepted (%lld ms, err %d)", s,
			 (long long)ms, r);
	assert_contains(d.msg, "not a duration");
	if (s)
		assert_contains(d.msg, s);
	assert_int_equal(ms, -12345); /* output untouched on error */
}

static void test_duration_good(void **state)
{
	(void)state;
	dur_ok("250ms", 250);
	dur_ok("5s", 5000);
	dur_ok("2m", 120000);
	dur_ok("1h", 3600000);
	dur_ok("1.5", 1500);
	dur_ok("5", 5000);
	dur_ok("0", 0);
	dur_ok("0ms", 0);
	dur_ok("0.25s", 250);
	dur_ok(".5", 500);
	dur_ok("1500ms", 1500);
	dur_ok("90m", 5400000);
}

static void test_duration_bad(void **state)
{
	(void)state;
	dur_bad("5x");
	dur_bad("-1");
	dur_bad("-5s");
	dur_bad("");
	dur_bad("ms");
	dur_bad("s");
	dur_bad("5 s");
	dur_bad(" 5s");
	dur_bad("5s ");
	dur_bad("5S");
	dur_bad("5sec");
	dur_bad("1d");
	dur_bad("inf");
	dur_bad("nan");
	dur_bad("1e400");
	dur_bad("99999999999999999999h");
	/* only digits and one fraction are a number here */
	dur_bad("0x10");
	dur_bad("0x10s");
	dur_bad("1e3");
	dur_bad("1.2.3");
	dur_bad(NULL);
}

/* ---- sizes -------------------------------------------------------------- */

static void size_ok(const char *s, int64_t want)
{
	ts_detail d;
	int64_t n = -1;

	if (ts_parse_size(s, &n, &d) != TS_OK)
		fail_msg("size '%s' rejected: %s", s, d.msg);
	if (n != want)
		fail_msg("size '%s': got %lld, want %lld", s, (long long)n,
			 (long long)want);
}

static void size_bad(const char *s)
{
	ts_detail d;
	int64_t n = -1;

	if (ts_parse_size(s, &n, &d) != TS_ERR_CONFIG)
		fail_msg("size '%s' accepted (%lld)", s, (long long)n);
	assert_contains(d.msg, "not a size");
	assert_contains(d.msg, s);
	assert_int_equal(n, -1);
}

static void test_size(void **state)
{
	(void)state;
	size_ok("512", 512);
	size_ok("0", 0);
	size_ok("64KiB", 65536);
	size_ok("1MiB", 1048576);
	size_ok("1GiB", 1073741824LL);
	size_ok("1.5KiB", 1536);
	size_ok("1K", 1000);
	size_ok("1KB", 1000);
	size_ok("2MB", 2000000);
	size_ok("1G", 1000000000LL);
	size_ok("100B", 100);

	size_bad("");
	size_bad("-1");
	size_bad("1TiB");
	size_bad("KiB");
	size_bad("12 MiB");
	size_bad("64kib");
	size_bad("0.5");     /* not a whole number of bytes */
	size_bad("1.3B");
	size_bad("99999999999GiB");
	size_bad("0x100");
}

/* ---- integers ----------------------------------------------------------- */

static void test_parse_int(void **state)
{
	ts_detail d;
	int64_t v;

	(void)state;
	assert_int_equal(ts_parse_int("5", 1, 10, &v, &d), TS_OK);
	assert_int_equal(v, 5);
	assert_int_equal(ts_parse_int("1", 1, 10, &v, &d), TS_OK);
	assert_int_equal(v, 1);
	assert_int_equal(ts_parse_int("10", 1, 10, &v, &d), TS_OK);
	assert_int_equal(v, 10);
	assert_int_equal(ts_parse_int("-3", -5, 0, &v, &d), TS_OK);
	assert_int_equal(v, -3);
	assert_int_equal(ts_parse_int("9223372036854775807", 0, INT64_MAX, &v, &d), TS_OK);
	assert_true(v == INT64_MAX);

	v = 77;
	assert_int_equal(ts_parse_int("0", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_contains(d.msg, "'0'");
	assert_contains(d.msg, "1 to 10");
	assert_int_equal(ts_parse_int("11", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("5x", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("5 ", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int(" 5", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("\t5", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("\n5", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("5.0", 1, 10, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("1e1", 1, 100, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int("9223372036854775808", 0, INT64_MAX, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_parse_int(NULL, 0, 1, &v, &d), TS_ERR_CONFIG);
	assert_int_equal(v, 77);
}

/* ---- buffers ------------------------------------------------------------ */

static void test_buf_growth(void **state)
{
	ts_buf b = { 0 };
	char expect[10001];

	(void)state;
	assert_int_equal(ts_buf_append(&b, "", 0), TS_OK);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 10000; i++) {
		char c = (char)('a' + i % 26);
		expect[i] = c;
		assert_int_equal(ts_buf_append(&b, &c, 1), TS_OK);
		assert_true(b.cap > b.len); /* room for the NUL */
		assert_int_equal(b.data[b.len], '\0');
	}
	expect[10000] = '\0';
	assert_int_equal(b.len, 10000);
	assert_string_equal(b.data, expect);

	/* reset keeps the memory, free zeroes */
	size_t cap = b.cap;
	char *mem = b.data;
	ts_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, mem);
	assert_string_equal(b.data, "");
	ts_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	ts_buf_reset(&b); /* on a freed buffer: no crash */
}

static void test_buf_appendf_and_binary(void **state)
{
	ts_buf b = { 0 };
	char big[5000];

	(void)state;
	assert_int_equal(ts_buf_appendf(&b, "%s=%d", "n", 42), TS_OK);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "n=42");
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(ts_buf_appendf(&b, ";%s;", big), TS_OK);
	assert_int_equal(b.len, 4 + 2 + 4999);
	assert_int_equal(b.data[b.len - 1], ';');
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strlen(b.data), b.len);

	/* embedded NUL bytes are kept: len counts them */
	ts_buf_reset(&b);
	assert_int_equal(ts_buf_append(&b, "a\0b", 3), TS_OK);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);

	/* reserve gives room without changing len */
	assert_int_equal(ts_buf_reserve(&b, 100000), TS_OK);
	assert_true(b.cap >= b.len + 100000 + 1);
	assert_int_equal(b.len, 3);
	/* an impossible reservation fails and leaves the buffer usable */
	assert_int_equal(ts_buf_reserve(&b, SIZE_MAX - 1), TS_ERR_NOMEM);
	assert_int_equal(b.len, 3);
	assert_int_equal(ts_buf_append(&b, "c", 1), TS_OK);
	assert_memory_equal(b.data, "a\0bc", 5);
	ts_buf_free(&b);
}

/* ---- misc --------------------------------------------------------------- */

static void test_buf_append_json(void **state)
{
	ts_buf b = { 0 };
	cJSON *back;

	(void)state;
	assert_int_equal(ts_buf_append_json(&b, NULL), TS_OK);
	assert_string_equal(b.data, "null");
	ts_buf_reset(&b);
	assert_int_equal(ts_buf_append_json(&b, ""), TS_OK);
	assert_string_equal(b.data, "\"\"");
	ts_buf_reset(&b);
	assert_int_equal(ts_buf_append_json(&b, "a\"b\\c\n\r\t\b\f\x01\x1f \xc3\xa9/"), TS_OK);
	assert_string_equal(b.data,
			    "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f \xc3\xa9/\"");
	/* every byte 1..255 round-trips through a JSON parser */
	ts_buf_reset(&b);
	{
		char all[256];
		for (int i = 1; i < 256; i++)
			all[i - 1] = (char)(i < 128 ? i : 'x');
		all[255] = '\0';
		assert_int_equal(ts_buf_append_json(&b, all), TS_OK);
		back = cJSON_Parse(b.data);
		assert_non_null(back);
		assert_true(cJSON_IsString(back));
		assert_string_equal(back->valuestring, all);
		cJSON_Delete(back);
	}
	ts_buf_free(&b);
}

static void test_consttime_eq(void **state)
{
	(void)state;
	assert_true(ts_consttime_eq("secret", 6, "secret", 6));
	assert_false(ts_consttime_eq("secret", 6, "secreT", 6));
	assert_false(ts_consttime_eq("secret", 6, "Secret", 6));
	assert_false(ts_consttime_eq("secret", 6, "secret2", 7));
	assert_false(ts_consttime_eq("secret2", 7, "secret", 6));
	assert_false(ts_consttime_eq("", 0, "a", 1));
	assert_true(ts_consttime_eq("", 0, "", 0));
	assert_true(ts_consttime_eq("a\0b", 3, "a\0b", 3));
	assert_false(ts_consttime_eq("a\0b", 3, "a\0c", 3));
	/* compares bytes, not C strings */
	assert_false(ts_consttime_eq("ab\0x", 4, "ab\0y", 4));
}

static void test_strdup0_free_secret(void **state)
{
	char *s;

	(void)state;
	assert_null(ts_strdup0(NULL));
	s = ts_strdup0("abc");
	assert_non_null(s);
	assert_string_equal(s, "abc");
	ts_free_secret(s);
	ts_free_secret(NULL);
}

/* ---- files -------------------------------------------------------------- */

static char tmpdir[64];

static int files_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ts-util-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int files_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void test_read_file(void **state)
{
	ts_detail d;
	char *out = NULL;
	size_t len = 99;
	const char *p;

	(void)state;
	p = write_tmp("ten", "0123456789", 10);
	assert_int_equal(ts_read_file(p, 0, &out, &len, &d), TS_OK);
	assert_int_equal(len, 10);
	assert_string_equal(out, "0123456789");
	free(out);

	/* exactly at the bound is fine; one over is not */
	assert_int_equal(ts_read_file(p, 10, &out, &len, &d), TS_OK);
	free(out);
	out = NULL;
	assert_int_equal(ts_read_file(p, 9, &out, &len, &d), TS_ERR_IO);
	assert_null(out);
	assert_contains(d.msg, p);
	assert_contains(d.msg, "larger than 9 bytes");

	/* empty file: an empty string, not NULL */
	p = write_tmp("empty", "", 0);
	assert_int_equal(ts_read_file(p, 0, &out, NULL, &d), TS_OK);
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);

	/* binary content and the NUL terminator after it */
	p = write_tmp("bin", "a\0b\n", 4);
	assert_int_equal(ts_read_file(p, 0, &out, &len, &d), TS_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "a\0b\n\0", 5);
	free(out);

	/* larger than one read chunk */
	size_t big = 200000;
	char *data = malloc(big);
	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('A' + i % 23);
	p = write_tmp("big", data, big);
	assert_int_equal(ts_read_file(p, 0, &out, &len, &d), TS_OK);
	assert_int_equal(len, big);
	assert_memory_equal(out, data, big);
	assert_int_equal(out[big], '\0');
	free(out);
	assert_int_equal(ts_read_file(p, big - 1, &out, &len, &d), TS_ERR_IO);
	free(data);

	/* missing file and a directory */
	assert_int_equal(ts_read_file("/nonexistent/x", 0, &out, &len, &d), TS_ERR_IO);
	assert_contains(d.msg, "/nonexistent/x");
	assert_contains(d.msg, "No such file");
	assert_int_equal(ts_read_file(tmpdir, 0, &out, &len, &d), TS_ERR_IO);
	assert_contains(d.msg, tmpdir);
}

static void secret_is(const char *content, size_t n, const char *want)
{
	ts_detail d;
	char *out = NULL;
	const char *p = write_tmp("secret", content, n);

	assert_int_equal(ts_read_secret_file(p, &out, &d), TS_OK);
	assert_non_null(out);
	if (strcmp(out, want) != 0)
		fail_msg("secret file: got \"%s\" want \"%s\"", out, want);
	ts_free_secret(out);
}

static void test_read_secret_file(void **state)
{
	ts_detail d;
	char *out = NULL;

	(void)state;
	secret_is("hunter2", 7, "hunter2");
	secret_is("hunter2\n", 8, "hunter2");
	secret_is("hunter2\r\n", 9, "hunter2");
	/* only one newline goes */
	secret_is("hunter2\n\n", 9, "hunter2\n");
	secret_is("hunter2\r\n\r\n", 11, "hunter2\r\n");
	/* a lone CR is not a newline: it is part of the secret */
	secret_is("hunter2\r", 8, "hunter2\r");
	secret_is("\n", 1, "");
	secret_is("", 0, "");
	secret_is(" pass word \n", 12, " pass word ");

	/* too large (over 64 KiB): an error that never quotes the content */
	size_t big = 70000;
	char *data = malloc(big);
	assert_non_null(data);
	memset(data, 'S', big);
	const char *p = write_tmp("bigsecret", data, big);
	free(data);
	assert_int_equal(ts_read_secret_file(p, &out, &d), TS_ERR_IO);
	assert_null(strstr(d.msg, "SSSS"));
	assert_null(strstr(d.field, "SSSS"));

	assert_int_equal(ts_read_secret_file("/nonexistent/secret", &out, &d), TS_ERR_IO);
	assert_contains(d.msg, "/nonexistent/secret");
}

/* ---- time and ids ------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static int is_rfc3339_ms(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (strlen(s) != sizeof pat - 1)
		return 0;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return 0;
	return 1;
}

static void test_rfc3339(void **state)
{
	char buf[64];
	struct tm tm;
	time_t before, after;

	(void)state;
	before = realtime_sec();
	memset(buf, 'x', sizeof buf);
	ts_now_rfc3339(buf, sizeof buf);
	after = realtime_sec();
	if (!is_rfc3339_ms(buf))
		fail_msg("not RFC 3339 with ms: \"%s\"", buf);
	/* it is now, in UTC */
	memset(&tm, 0, sizeof tm);
	assert_non_null(strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm));
	time_t t = timegm(&tm);
	assert_in_range(t, before, after);

	/* exactly 25 bytes is enough */
	char small[25];
	ts_now_rfc3339(small, sizeof small);
	assert_true(is_rfc3339_ms(small));
}

static void test_clocks(void **state)
{
	int64_t now = ts_now_ms();
	int64_t m1 = ts_mono_ms(), m2;

	(void)state;
	assert_true(now / 1000 >= (int64_t)realtime_sec() - 1);
	assert_true(now / 1000 <= (int64_t)realtime_sec());
	usleep(20000);
	m2 = ts_mono_ms();
	assert_true(m2 >= m1 + 19);
}

/* ts_put_int and ts_buf_append_int against printf, at the edges of every
 * digit count and of int64_t. */
static void test_decimal(void **state)
{
	int64_t v[] = { 0, 1, -1, 9, 10, 99, 100, 101, 999, 1000, -10, -99,
			-100, 12345, 9999999999LL, 10000000000LL, INT64_MAX,
			INT64_MIN, INT64_MIN + 1 };
	char want[32], got[TS_INT_CHARS + 1];
	ts_buf b = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		snprintf(want, sizeof want, "%lld", (long long)v[i]);
		*ts_put_int(got, v[i]) = '\0';
		assert_string_equal(got, want);
		ts_buf_reset(&b);
		assert_int_equal(ts_buf_append(&b, "x", 1), TS_OK);
		assert_int_equal(ts_buf_append_int(&b, v[i]), TS_OK);
		assert_int_equal(b.len, 1 + strlen(want));
		assert_string_equal(b.data + 1, want);
	}
	/* every power of ten and its neighbours */
	for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
		for (int64_t d = -1; d <= 1; d++) {
			snprintf(want, sizeof want, "%lld", (long long)(p + d));
			*ts_put_int(got, p + d) = '\0';
			assert_string_equal(got, want);
		}
	}
	ts_buf_free(&b);
}

static void test_uuid(void **state)
{
	char a[37], b[37], small[36];

	(void)state;
	assert_int_equal(ts_uuid4(a, sizeof a), TS_OK);
	assert_int_equal(ts_uuid4(b, sizeof b), TS_OK);
	if (!is_uuid4(a) || !is_uuid4(b))
		fail_msg("not UUID v4: %s %s", a, b);
	assert_string_not_equal(a, b);
	/* the version and variant bits hold over many draws */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(ts_uuid4(a, sizeof a), TS_OK);
		if (!is_uuid4(a))
			fail_msg("not UUID v4: %s", a);
	}
	assert_int_equal(ts_uuid4(small, sizeof small), TS_ERR_INTERNAL);
}

/* Every digit that comes from a random nibble takes each of its 16 values
 * over 8,000 draws (the chance that a fair position misses one is about
 * 16 * (15/16)^8000, nil), the variant digit each of 8, 9, a, b: a
 * formatter that drops, repeats or misplaces nibbles shows here. The draws
 * span both sources of the pool (the kernel's first 4,096 ids, then
 * OpenSSL's). */
static void test_uuid_digits(void **state)
{
	static const char digits[] = "0123456789abcdef";
	unsigned seen[36] = { 0 };
	char a[37];

	(void)state;
	for (int i = 0; i < 8000; i++) {
		assert_int_equal(ts_uuid4(a, sizeof a), TS_OK);
		for (int j = 0; j < 36; j++) {
			const char *p = strchr(digits, a[j]);

			if (p && a[j])
				seen[j] |= 1u << (p - digits);
		}
	}
	for (int j = 0; j < 36; j++) {
		unsigned want = 0xffff;

		if (j == 8 || j == 13 || j == 18 || j == 23)
			want = 0;
		else if (j == 14)
			want = 1u << 4;
		else if (j == 19)
			want = 0xf00; /* 8, 9, a, b */
		if (seen[j] != want)
			fail_msg("position %d: digits seen %#x, want %#x", j,
				 seen[j], want);
	}
}

/* A forked child does not hand out the ids its parent is about to. */
static void test_uuid_fork(void **state)
{
	char parent[37], child[37] = "";
	int fds[2];
	pid_t pid;

	(void)state;
	assert_int_equal(ts_uuid4(parent, sizeof parent), TS_OK); /* pool filled */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char id[37];

		close(fds[0]);
		if (ts_uuid4(id, sizeof id) != TS_OK ||
		    write(fds[1], id, sizeof id) != (ssize_t)sizeof id)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	assert_int_equal(ts_uuid4(parent, sizeof parent), TS_OK);
	assert_true(is_uuid4(child));
	assert_string_not_equal(parent, child);
}

static void test_random(void **state)
{
	unsigned char a[64] = { 0 }, b[64] = { 0 };

	(void)state;
	assert_int_equal(ts_random(a, sizeof a), TS_OK);
	assert_int_equal(ts_random(b, sizeof b), TS_OK);
	assert_memory_not_equal(a, b, sizeof a);
	assert_int_equal(ts_random(a, 0), TS_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_good),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_buf_appendf_and_binary),
		cmocka_unit_test(test_buf_append_json),
		cmocka_unit_test(test_consttime_eq),
		cmocka_unit_test(test_strdup0_free_secret),
		cmocka_unit_test_setup_teardown(test_read_file, files_setup, files_teardown),
		cmocka_unit_test_setup_teardown(test_read_secret_file, files_setup, files_teardown),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_uuid_digits),
		cmocka_unit_test(test_uuid_fork),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
