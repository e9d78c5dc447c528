/* test_jsonstream.c - splitting a byte stream into top-level JSON values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "jsonstream.h"

#include "testutil.h"

/* One result of ts_jsonstream_next, copied out. */
typedef struct item {
	int rc;          /* TS_OK, TS_ERR_DATA, TS_ERR_IO */
	char *data;      /* copy of the value (NUL-terminated) */
	size_t len;
	long line;
	char msg[384];
} item;

typedef struct items {
	item v[64];
	int n;
} items;

static void items_free(items *it)
{
	for (int i = 0; i < it->n; i++)
		free(it->v[i].data);
	it->n = 0;
}

static void add(items *it, int rc, const ts_jsonvalue *v, const ts_detail *d)
{
	item *x;

	assert_true(it->n < 64);
	x = &it->v[it->n++];
	x->rc = rc;
	x->len = v->len;
	x->line = v->line;
	x->data = malloc(v->len + 1);
	assert_non_null(x->data);
	if (v->len)
		memcpy(x->data, v->data, v->len);
	x->data[v->len] = '\0';
	snprintf(x->msg, sizeof x->msg, "%s", rc ? d->msg : "");
}

/* Read everything from fd; the stream must end cleanly (1) and keep
 * answering 1 afterwards. */
static void read_all(int fd, size_t max_value, items *it)
{
	ts_jsonstream s;
	ts_jsonvalue v;
	ts_detail d;
	int rc;

	it->n = 0;
	ts_jsonstream_init(&s, fd, max_value);
	while ((rc = ts_jsonstream_next(&s, &v, &d)) != 1) {
		assert_true(rc == TS_OK || rc == TS_ERR_DATA);
		add(it, rc, &v, &d);
	}
	assert_int_equal(ts_jsonstream_next(&s, &v, &d), 1);
	ts_jsonstream_free(&s);
}

/* A file descriptor holding exactly these bytes (a regular file). */
static int mem_fd(const char *data, size_t len)
{
	int fd = memfd_create("jsonstream-test", MFD_CLOEXEC);
	size_t off = 0;

	assert_true(fd >= 0);
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void split_fd(const char *data, size_t len, size_t max_value, items *it)
{
	int fd = mem_fd(data, len);

	read_all(fd, max_value, it);
	close(fd);
}

#define SPLIT(lit, max, it) split_fd((lit), strlen(lit), (max), (it))

static void want_value(const items *it, int i, const char *data, long line)
{
	if (i >= it->n)
		fail_msg("only %d values, wanted #%d (%s)", it->n, i, data);
	const item *x = &it->v[i];
	if (x->rc != TS_OK)
		fail_msg("#%d: error %d (%s), wanted value %s", i, x->rc, x->msg, data);
	if (x->len != strlen(data) || memcmp(x->data, data, x->len) != 0)
		fail_msg("#%d: got \"%s\" (%zu bytes), want \"%s\"", i, x->data, x->len, data);
	if (x->line != line)
		fail_msg("#%d (%s): line %ld, want %ld", i, data, x->line, line);
}

static void want_error(const items *it, int i, long line, const char *msg)
{
	if (i >= it->n)
		fail_msg("only %d values, wanted error #%d", it->n, i);
	const item *x = &it->v[i];
	if (x->rc != TS_ERR_DATA)
		fail_msg("#%d: got %d (\"%s\"), want an error", i, x->rc, x->data);
	if (x->line != line)
		fail_msg("#%d: error on line %ld, want %ld (%s)", i, x->line, line, x->msg);
	assert_contains(x->msg, msg);
}

/* ---- shapes of input ---------------------------------------------------- */

static void test_json_lines(void **state)
{
	items it;

	(void)state;
	SPLIT("{\"a\":1}\n{\"b\":2}\n[3]\n", 0, &it);
	assert_int_equal(it.n, 3);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_value(&it, 1, "{\"b\":2}", 2);
	want_value(&it, 2, "[3]", 3);
	items_free(&it);

	/* no final newline */
	SPLIT("{\"a\":1}\n{\"b\":2}", 0, &it);
	assert_int_equal(it.n, 2);
	want_value(&it, 1, "{\"b\":2}", 2);
	items_free(&it);

	/* CRLF line ends */
	SPLIT("{\"a\":1}\r\n{\"b\":2}\r\n\r\n{\"c\":3}\r\n", 0, &it);
	assert_int_equal(it.n, 3);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_value(&it, 1, "{\"b\":2}", 2);
	want_value(&it, 2, "{\"c\":3}", 4);
	items_free(&it);
}

static void test_concatenated(void **state)
{
	items it;

	(void)state;
	SPLIT("{\"a\":1}{\"b\":2}", 0, &it);
	assert_int_equal(it.n, 2);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_value(&it, 1, "{\"b\":2}", 1);
	items_free(&it);

	SPLIT("{\"a\":1} \t{\"b\":{\"c\":[1,{}]}}[][{}]{}", 0, &it);
	assert_int_equal(it.n, 5);
	want_value(&it, 1, "{\"b\":{\"c\":[1,{}]}}", 1);
	want_value(&it, 2, "[]", 1);
	want_value(&it, 3, "[{}]", 1);
	want_value(&it, 4, "{}", 1);
	items_free(&it);
}

static void test_pretty_printed(void **state)
{
	items it;
	const char *in =
		"{\n"                       /* 1 */
		"  \"taskType\": \"email\",\n"
		"  \"payload\": {\n"
		"    \"to\": [\"a@example.com\",\n"
		"           \"b@example.com\"]\n"
		"  }\n"
		"}\n"                       /* 7 */
		"{\"b\":\n"                 /* 8 */
		" 2}\n"
		"\n"
		"\n"
		"   {\"c\":3}   {\"d\":\n"   /* 12 */
		"4}\n";

	(void)state;
	SPLIT(in, 0, &it);
	assert_int_equal(it.n, 4);
	assert_int_equal(it.v[0].line, 1);
	assert_int_equal(it.v[0].data[0], '{');
	assert_int_equal(it.v[0].data[it.v[0].len - 1], '}');
	assert_non_null(strstr(it.v[0].data, "b@example.com\"]\n  }\n}"));
	want_value(&it, 1, "{\"b\":\n 2}", 8);
	want_value(&it, 2, "{\"c\":3}", 12);
	want_value(&it, 3, "{\"d\":\n4}", 12);
	items_free(&it);
}

static void test_whitespace_only(void **state)
{
	items it;

	(void)state;
	SPLIT("", 0, &it);
	assert_int_equal(it.n, 0);
	SPLIT("\n\n  \t\r\n", 0, &it);
	assert_int_equal(it.n, 0);
	SPLIT("\n\n\n   {\"a\":1}   \n\n", 0, &it);
	assert_int_equal(it.n, 1);
	want_value(&it, 0, "{\"a\":1}", 4);
	items_free(&it);
}

static void test_strings_with_brackets(void **state)
{
	items it;

	(void)state;
	SPLIT("{\"a\":\"}\"}\n"
	      "{\"a\":\"{{{[[[\"}\n"
	      "{\"a\":\"\\\"}\"}\n"          /* {"a":"\"}"} */
	      "{\"a\":\"\\\\\"}\n"           /* {"a":"\\"} */
	      "{\"a\":\"\\\\\\\"}\"}\n"      /* {"a":"\\\"}"} */
	      "{\"}\":\"]\",\"x\":[\"}\"]}\n",
	      0, &it);
	assert_int_equal(it.n, 6);
	want_value(&it, 0, "{\"a\":\"}\"}", 1);
	want_value(&it, 1, "{\"a\":\"{{{[[[\"}", 2);
	want_value(&it, 2, "{\"a\":\"\\\"}\"}", 3);
	want_value(&it, 3, "{\"a\":\"\\\\\"}", 4);
	want_value(&it, 4, "{\"a\":\"\\\\\\\"}\"}", 5);
	want_value(&it, 5, "{\"}\":\"]\",\"x\":[\"}\"]}", 6);
	items_free(&it);
}

static void test_scalars(void **state)
{
	items it;

	(void)state;
	SPLIT("1 23\n\"x}\" true null\n-4.5e3{\"a\":1}\"s\"[1]", 0, &it);
	assert_int_equal(it.n, 9);
	want_value(&it, 0, "1", 1);
	want_value(&it, 1, "23", 1);
	want_value(&it, 2, "\"x}\"", 2);
	want_value(&it, 3, "true", 2);
	want_value(&it, 4, "null", 2);
	want_value(&it, 5, "-4.5e3", 3);
	want_value(&it, 6, "{\"a\":1}", 3);
	want_value(&it, 7, "\"s\"", 3);
	want_value(&it, 8, "[1]", 3);
	items_free(&it);
}

/* ---- errors ------------------------------------------------------------- */

static void test_stray_closer(void **state)
{
	items it;

	(void)state;
	SPLIT("}\n{\"a\":1}\n", 0, &it);
	assert_int_equal(it.n, 2);
	want_error(&it, 0, 1, "unexpected '}'");
	want_value(&it, 1, "{\"a\":1}", 2);
	items_free(&it);

	/* after a value on the same line: the rest of that line is dropped */
	SPLIT("{\"a\":1}} junk {\"x\":1}\n{\"b\":2}\n]\n\n[1]", 0, &it);
	assert_int_equal(it.n, 5);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_error(&it, 1, 1, "unexpected '}'");
	want_value(&it, 2, "{\"b\":2}", 2);
	want_error(&it, 3, 3, "unexpected ']'");
	want_value(&it, 4, "[1]", 5);
	items_free(&it);

	/* a stray closer on the last line, no newline */
	SPLIT("{\"a\":1}\n}", 0, &it);
	assert_int_equal(it.n, 2);
	want_error(&it, 1, 2, "unexpected");
	items_free(&it);
}

static void test_truncated(void **state)
{
	items it;

	(void)state;
	SPLIT("{\"a\":1}\n{\"b\":", 0, &it);
	assert_int_equal(it.n, 2);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_error(&it, 1, 2, "truncated");
	assert_string_equal(it.v[1].data, "{\"b\":"); /* what was there */
	items_free(&it);

	SPLIT("\n\n{\"b\":{\"c\":[1,\n2", 0, &it);
	assert_int_equal(it.n, 1);
	want_error(&it, 0, 3, "truncated");
	items_free(&it);

	/* inside a string */
	SPLIT("{\"a\":\"}}}", 0, &it);
	assert_int_equal(it.n, 1);
	want_error(&it, 0, 1, "truncated");
	items_free(&it);
	SPLIT("\"abc", 0, &it);
	assert_int_equal(it.n, 1);
	want_error(&it, 0, 1, "truncated");
	items_free(&it);
	/* a bare scalar at the end is complete */
	SPLIT("{}\n42", 0, &it);
	assert_int_equal(it.n, 2);
	want_value(&it, 1, "42", 2);
	items_free(&it);
}

/* A cut-off line must not swallow the tasks after it. */
static void test_cut_off_line_resyncs(void **state)
{
	items it;

	(void)state;
	/* an object left open, then a new task at the start of a line */
	SPLIT("{\"a\":1}\n{\"b\":{\"c\":2}\n{\"d\":3}\n{\"e\":4}\n", 0, &it);
	assert_int_equal(it.n, 4);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_error(&it, 1, 2, "still open where line 3 starts");
	assert_string_equal(it.v[1].data, "{\"b\":{\"c\":2}\n");
	want_value(&it, 2, "{\"d\":3}", 3);
	want_value(&it, 3, "{\"e\":4}", 4);
	items_free(&it);

	/* a string left open runs into the end of its line */
	SPLIT("{\"a\":\"x}\n{\"d\":3}\n", 0, &it);
	assert_int_equal(it.n, 2);
	want_error(&it, 0, 1, "string runs into the end of the line");
	want_value(&it, 1, "{\"d\":3}", 2);
	items_free(&it);

	/* nested objects indented as pretty-printers do are one value */
	SPLIT("{\n  \"a\": {\n    \"b\": 1\n  }\n}\n{\"c\":2}", 0, &it);
	assert_int_equal(it.n, 2);
	want_value(&it, 0, "{\n  \"a\": {\n    \"b\": 1\n  }\n}", 1);
	want_value(&it, 1, "{\"c\":2}", 6);
	items_free(&it);
}

static void test_max_value(void **state)
{
	items it;

	(void)state;
	/* exactly max_value bytes is fine */
	SPLIT("{\"a\":1}\n", 7, &it);
	assert_int_equal(it.n, 1);
	want_value(&it, 0, "{\"a\":1}", 1);
	items_free(&it);

	/* one byte more is an error, whichever byte makes it too long */
	SPLIT("{\"ab\":1}\n{\"b\":2}\n", 7, &it);
	assert_int_equal(it.n, 2);
	want_error(&it, 0, 1, "larger than 7 bytes");
	want_value(&it, 1, "{\"b\":2}", 2);
	items_free(&it);

	/* a long multi-line value: the error names its first line, and the
	 * following values keep their line numbers */
	SPLIT("{\"a\":1}\n{\"big\":\n[1,2,3,4,5,6,7,8,9,10,\n11,12]\n}\n{\"c\":3}\n[\"xxxxxxxxxxxxxxxxxxxx\"] [1]\n",
	      10, &it);
	assert_int_equal(it.n, 5);
	want_value(&it, 0, "{\"a\":1}", 1);
	want_error(&it, 1, 2, "larger than 10 bytes");
	want_value(&it, 2, "{\"c\":3}", 6);
	want_error(&it, 3, 7, "larger than 10 bytes");
	want_value(&it, 4, "[1]", 7);
	items_free(&it);

	/* long strings and scalars count too */
	SPLIT("\"0123456789abc\" 12345678901234 1\n", 10, &it);
	assert_int_equal(it.n, 3);
	want_error(&it, 0, 1, "larger than");
	want_error(&it, 1, 1, "larger than");
	want_value(&it, 2, "1", 1);
	items_free(&it);

	/* an oversized value cut off by the end of input is still an error */
	SPLIT("{\"a\":\"0123456789", 10, &it);
	assert_int_equal(it.n, 1);
	assert_int_equal(it.v[0].rc, TS_ERR_DATA);
	items_free(&it);
}

/* ---- buffering ---------------------------------------------------------- */

static void test_value_across_chunks(void **state)
{
	/* a value that starts just before the first 64 KiB read ends, and one
	 * much larger than a read */
	size_t pad = 65530, big = 300000;
	size_t cap = pad + big + 1000, n = 0;
	char *in = malloc(cap), *want = malloc(big + 20);
	items it;

	(void)state;
	assert_non_null(in);
	assert_non_null(want);
	memset(in, ' ', pad);
	n = pad;
	n += (size_t)sprintf(in + n, "{\"first\":\"0123456789\"}\n");
	size_t w = (size_t)sprintf(want, "{\"s\":\"");
	for (size_t i = 0; i < big; i++)
		want[w++] = (char)('a' + i % 26);
	w += (size_t)sprintf(want + w, "\"}");
	memcpy(in + n, want, w);
	n += w;
	n += (size_t)sprintf(in + n, "\n{\"last\":1}");
	split_fd(in, n, 0, &it);
	assert_int_equal(it.n, 3);
	want_value(&it, 0, "{\"first\":\"0123456789\"}", 1);
	want[w] = '\0';
	want_value(&it, 1, want, 2);
	want_value(&it, 2, "{\"last\":1}", 3);
	items_free(&it);
	free(in);
	free(want);
}

static void test_stray_closer_at_chunk_end(void **state)
{
	/* The stray '}' is the last byte of the first 64 KiB read and the
	 * line goes on into the next reads: what the error hands back must
	 * still be that byte (or nothing), not whatever the next read put
	 * there. */
	size_t pad = 65535, tail = 70000, n;
	char *in = malloc(pad + tail + 100);
	ts_jsonstream s;
	ts_jsonvalue v;
	ts_detail d;
	int fd, rc;

	(void)state;
	assert_non_null(in);
	memset(in, ' ', pad);
	in[pad] = '}';
	memset(in + pad + 1, 'z', tail);
	n = pad + 1 + tail;
	n += (size_t)sprintf(in + n, "\n{\"a\":1}\n");
	fd = mem_fd(in, n);
	free(in);
	ts_jsonstream_init(&s, fd, 0);
	rc = ts_jsonstream_next(&s, &v, &d);
	assert_int_equal(rc, TS_ERR_DATA);
	assert_int_equal(v.line, 1);
	assert_contains(d.msg, "unexpected '}'");
	if (v.len != 0 && !(v.len == 1 && v.data[0] == '}'))
		fail_msg("error value is %zu bytes starting '%c', not the stray '}'",
			 v.len, v.data[0]);
	rc = ts_jsonstream_next(&s, &v, &d);
	assert_int_equal(rc, TS_OK);
	assert_int_equal(v.len, 7);
	assert_memory_equal(v.data, "{\"a\":1}", 7);
	assert_int_equal(v.line, 2);
	assert_int_equal(ts_jsonstream_next(&s, &v, &d), 1);
	ts_jsonstream_free(&s);
	close(fd);
}

struct writer {
	int fd;
	const char *data;
	size_t len;
	size_t chunk;
};

static void *write_slowly(void *arg)
{
	struct writer *w = arg;
	size_t off = 0;

	while (off < w->len) {
		size_t n = w->len - off < w->chunk ? w->len - off : w->chunk;
		ssize_t r = write(w->fd, w->data + off, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(w->fd);
	return NULL;
}

/* Feed data through a pipe in chunk-byte writes from a thread. */
static void split_pipe(const char *data, size_t len, size_t chunk,
		       size_t max_value, items *it)
{
	int p[2];
	pthread_t th;
	struct writer w;

	assert_int_equal(pipe(p), 0);
	w = (struct writer){ p[1], data, len, chunk };
	assert_int_equal(pthread_create(&th, NULL, write_slowly, &w), 0);
	read_all(p[0], max_value, it);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(p[0]);
}

static void compare_items(const items *a, const items *b)
{
	assert_int_equal(a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		assert_int_equal(a->v[i].rc, b->v[i].rc);
		assert_int_equal(a->v[i].line, b->v[i].line);
		if (a->v[i].rc == TS_OK) {
			assert_int_equal(a->v[i].len, b->v[i].len);
			assert_string_equal(a->v[i].data, b->v[i].data);
		}
	}
}

static void test_pipe_one_byte_writes(void **state)
{
	const char *in =
		"{\"taskType\":\"email\",\"payload\":{\"to\":\"a@example.com\",\"subject\":\"}{\\\"\",\"body\":\"b\"}}\n"
		"{\"a\":1}{\"b\":\n2}\n"
		"\n"
		"  [1, {\"c\": \"\\\\\"}]\r\n"
		"}\n"
		"{\n  \"pretty\": true\n}\n"
		"\"str\" 42 {\"big\":\"0123456789012345678901234567890123456789\"}\n"
		"{\"last\":";
	items a, b;

	(void)state;
	split_fd(in, strlen(in), 0, &a);
	assert_int_equal(a.n, 10);
	want_value(&a, 1, "{\"a\":1}", 2);
	want_value(&a, 2, "{\"b\":\n2}", 2);
	want_value(&a, 3, "[1, {\"c\": \"\\\\\"}]", 5);
	want_error(&a, 4, 6, "unexpected");
	want_value(&a, 5, "{\n  \"pretty\": true\n}", 7);
	want_value(&a, 6, "\"str\"", 10);
	want_value(&a, 7, "42", 10);
	want_error(&a, 9, 11, "truncated");

	/* the same through a pipe, one byte per write, and with a limit */
	split_pipe(in, strlen(in), 1, 0, &b);
	compare_items(&a, &b);
	items_free(&b);
	split_pipe(in, strlen(in), 3, 0, &b);
	compare_items(&a, &b);
	items_free(&b);
	items_free(&a);

	split_fd(in, strlen(in), 40, &a);
	want_error(&a, 0, 1, "larger than 40");
	want_error(&a, 8, 10, "larger than 40");
	split_pipe(in, strlen(in), 1, 40, &b);
	compare_items(&a, &b);
	items_free(&a);
	items_free(&b);
}

/* A UTF-8 byte order mark at the very start is skipped (by a file, a pipe
 * that delivers it a byte at a time, and the memory splitter). Anywhere
 * else, or cut short, its bytes are left for the parser to refuse (the
 * splitter does not parse); an input that is only a mark is empty. */
static void test_byte_order_mark(void **state)
{
	const char *in = "\xef\xbb\xbf{\"a\":1}\n\xef\xbb\xbf{\"b\":2}\n";
	items a, b;

	(void)state;
	split_fd(in, strlen(in), 0, &a);
	assert_int_equal(a.n, 3);
	want_value(&a, 0, "{\"a\":1}", 1);
	want_value(&a, 1, "\xef\xbb\xbf", 2);
	want_value(&a, 2, "{\"b\":2}", 2);
	split_pipe(in, strlen(in), 1, 0, &b);
	compare_items(&a, &b);
	items_free(&b);
	items_free(&a);

	SPLIT("\xef\xbb\xbf", 0, &a);
	assert_int_equal(a.n, 0);
	SPLIT("\xef\xbb\xbf \n", 0, &a);
	assert_int_equal(a.n, 0);
	SPLIT("\xef\xbb", 0, &a);
	assert_int_equal(a.n, 1);
	want_value(&a, 0, "\xef\xbb", 1);
	split_pipe("\xef\xbb", 2, 1, 0, &b);
	compare_items(&a, &b);
	items_free(&b);
	items_free(&a);
	SPLIT("\xef\xbb{\"a\":1}", 0, &a);
	assert_true(a.n >= 1 && memcmp(a.v[0].data, "\xef\xbb", 2) == 0);
	items_free(&a);
}

static void test_pipe_large_value(void **state)
{
	size_t big = 500000, n;
	char *in = malloc(big + 100);
	items it;

	(void)state;
	assert_non_null(in);
	n = (size_t)sprintf(in, "{\"s\":\"");
	memset(in + n, 'q', big);
	n += big;
	n += (size_t)sprintf(in + n, "\"}\n{\"n\":2}\n");
	split_pipe(in, n, 4093, 0, &it);
	assert_int_equal(it.n, 2);
	assert_int_equal(it.v[0].rc, TS_OK);
	assert_int_equal(it.v[0].len, big + 8);
	assert_memory_equal(it.v[0].data, in, big + 8);
	want_value(&it, 1, "{\"n\":2}", 2);
	items_free(&it);
	/* over the limit: an error, and the next value still comes */
	split_pipe(in, n, 4093, 100000, &it);
	assert_int_equal(it.n, 2);
	want_error(&it, 0, 1, "larger than 100000");
	want_value(&it, 1, "{\"n\":2}", 2);
	items_free(&it);
	free(in);
}

static void test_read_error(void **state)
{
	int fd = open("/", O_RDONLY | O_DIRECTORY);
	ts_jsonstream s;
	ts_jsonvalue v;
	ts_detail d;

	(void)state;
	assert_true(fd >= 0);
	ts_jsonstream_init(&s, fd, 0);
	assert_int_equal(ts_jsonstream_next(&s, &v, &d), TS_ERR_IO);
	assert_true(strlen(d.msg) > 0);
	ts_jsonstream_free(&s);
	close(fd);
}

/* ---- memory buffers ----------------------------------------------------- */

struct collected {
	items it;
	int stop_after;
};

static int collect(void *ctx, const ts_jsonvalue *v, ts_err err,
		   const ts_detail *d)
{
	struct collected *c = ctx;

	add(&c->it, err, v, d);
	return c->stop_after && c->it.n >= c->stop_after;
}

static void test_split_buffer(void **state)
{
	/* a string literal: read-only memory, so any write would crash */
	static const char in[] =
		"{\"a\":1}\n"
		"{\"b\":\n[2]}{\"c\":3}\n"
		"} oops {\"lost\":1}\n"
		"\n"
		"[4]\n"
		"{\"d\":";
	struct collected c = { 0 };
	items fromfd;

	(void)state;
	ts_json_split(in, sizeof in - 1, collect, &c);
	assert_int_equal(c.it.n, 6);
	want_value(&c.it, 0, "{\"a\":1}", 1);
	want_value(&c.it, 1, "{\"b\":\n[2]}", 2);
	want_value(&c.it, 2, "{\"c\":3}", 3);
	want_error(&c.it, 3, 4, "unexpected '}'");
	want_value(&c.it, 4, "[4]", 6);
	want_error(&c.it, 5, 7, "truncated");
	/* exactly what the stream reader finds */
	split_fd(in, sizeof in - 1, 0, &fromfd);
	compare_items(&c.it, &fromfd);
	items_free(&fromfd);
	items_free(&c.it);

	/* the callback can stop it */
	c.stop_after = 2;
	ts_json_split(in, sizeof in - 1, collect, &c);
	assert_int_equal(c.it.n, 2);
	items_free(&c.it);

	/* len bounds it: the rest of the buffer is not looked at */
	c.stop_after = 0;
	ts_json_split("{\"a\":1}{\"b\":2}", 7, collect, &c);
	assert_int_equal(c.it.n, 1);
	want_value(&c.it, 0, "{\"a\":1}", 1);
	items_free(&c.it);

	ts_json_split("", 0, collect, &c);
	assert_int_equal(c.it.n, 0);
	ts_json_split(" \n \n", 4, collect, &c);
	assert_int_equal(c.it.n, 0);

	/* a byte order mark at the start of the buffer is skipped */
	ts_json_split("\xef\xbb\xbf{\"a\":1}\n{\"b\":2}", 18, collect, &c);
	assert_int_equal(c.it.n, 2);
	want_value(&c.it, 0, "{\"a\":1}", 1);
	want_value(&c.it, 1, "{\"b\":2}", 2);
	items_free(&c.it);
}

static void test_split_buffer_exact_size(void **state)
{
	/* a heap buffer with nothing after it: reads past the end would show
	 * under AddressSanitizer */
	static const char src[] = "{\"a\":\"x\"} \"tail";
	char *buf = malloc(sizeof src - 1);
	struct collected c = { 0 };

	(void)state;
	assert_non_null(buf);
	memcpy(buf, src, sizeof src - 1);
	ts_json_split(buf, sizeof src - 1, collect, &c);
	assert_int_equal(c.it.n, 2);
	want_value(&c.it, 0, "{\"a\":\"x\"}", 1);
	want_error(&c.it, 1, 1, "truncated");
	items_free(&c.it);
	free(buf);
}

/* Plain string content is skipped eight bytes at a time: put a quote, a
 * backslash or a line feed at every offset of a word (and strings of every
 * length up to the end of the buffer) and check the values still end where
 * they do. */
static void test_string_runs(void **state)
{
	static const char *const stops[] = { "\\\"", "\\\\", "\\n", "}{[]", "\xc3\xa9" };
	char s[96], in[384], want[160];
	struct collected c = { 0 };
	items it;

	(void)state;
	for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
		for (int at = 0; at <= 40; at++) {
			memset(s, 'a', (size_t)at);
			snprintf(s + at, sizeof s - (size_t)at, "%sbcdefghijk", stops[k]);
			snprintf(want, sizeof want, "{\"k\":\"%s\"}", s);
			snprintf(in, sizeof in, "%s\n[\"%s\"]{\"x\":1}\n", want, s);
			SPLIT(in, 0, &it);
			assert_int_equal(it.n, 3);
			want_value(&it, 0, want, 1);
			want_value(&it, 2, "{\"x\":1}", 2);
			items_free(&it);
		}
	}
	/* a raw line feed inside a string, at every offset */
	for (int at = 0; at <= 40; at++) {
		memset(s, 'a', (size_t)at);
		s[at] = '\0';
		snprintf(in, sizeof in, "{\"k\":\"%s\n{\"x\":\"bcdefghijk\"}\n", s);
		SPLIT(in, 0, &it);
		assert_int_equal(it.n, 2);
		want_error(&it, 0, 1, "string runs into the end of the line");
		want_value(&it, 1, "{\"x\":\"bcdefghijk\"}", 2);
		items_free(&it);
	}
	/* a string open to the very end of an exact-size buffer */
	for (int len = 0; len <= 40; len++) {
		char *buf = malloc((size_t)len + 6);

		assert_non_null(buf);
		memcpy(buf, "{\"k\":\"", 6);
		memset(buf + 6, 'a', (size_t)len);
		ts_json_split(buf, (size_t)len + 6, collect, &c);
		assert_int_equal(c.it.n, 1);
		want_error(&c.it, 0, 1, "truncated");
		items_free(&c.it);
		free(buf);
	}
}

/* One value read as ts-submit reads: peek, and take the JSON object cJSON
 * finds at the start of what peek gives when it holds no line feed; else
 * next. Returns next's code, with *taken set when peek and take gave it. */
static int next_peeking(ts_jsonstream *s, ts_jsonvalue *v, ts_detail *d,
			int *taken)
{
	*taken = 0;
	if (ts_jsonstream_peek(s, v)) {
		const char *end = NULL;
		cJSON *o = cJSON_ParseWithLengthOpts(v->data, v->len, &end, 0);
		int ok = o && cJSON_IsObject(o) &&
			 !memchr(v->data, '\n', (size_t)(end - v->data));

		cJSON_Delete(o);
		assert_true(v->len > 0 && v->data[0] == '{');
		assert_true(s->max_value == 0 || v->len <= s->max_value);
		if (ok) {
			v->len = (size_t)(end - v->data);
			ts_jsonstream_take(s, v->len);
			*taken = 1;
			return TS_OK;
		}
	}
	return ts_jsonstream_next(s, v, d);
}

/* Both ways over the same bytes, in step: the same values, errors and
 * lines. Returns how many values peek and take gave. */
static int peek_matches_next(const char *data, size_t len, size_t max_value)
{
	int fa = mem_fd(data, len), fb = mem_fd(data, len);
	ts_jsonstream a, b;
	ts_jsonvalue va, vb;
	ts_detail da, db;
	int ra, rb, taken, total = 0;

	ts_jsonstream_init(&a, fa, max_value);
	ts_jsonstream_init(&b, fb, max_value);
	do {
		ra = ts_jsonstream_next(&a, &va, &da);
		rb = next_peeking(&b, &vb, &db, &taken);
		total += taken;
		assert_int_equal(ra, rb);
		assert_int_equal(va.line, vb.line);
		if (ra == TS_OK) {
			assert_int_equal(va.len, vb.len);
			assert_memory_equal(va.data, vb.data, va.len);
		}
	} while (ra != 1);
	ts_jsonstream_free(&a);
	ts_jsonstream_free(&b);
	close(fa);
	close(fb);
	return total;
}

static void test_peek_take(void **state)
{
	static const char *const inputs[] = {
		"{\"a\":1}\n{\"b\":[1,{\"c\":\"}\"}]}\r\n\n  {\"d\":2}",
		"{\"a\":1}{\"b\":2} {\"c\":3}\n[4]{\"e\":5}\n",
		"{\"a\":\n{\"b\":1}}\n{\"c\":2}\n",
		"{\"a\":\n1}\n{\"c\":\n\"d\"}{\"e\":1}\n",
		"{\"a\":\"x\n{\"b\":1}\n",
		"{\"a\":1} x {\"b\":2}\n} {\"c\":3}\n",
		"\xef\xbb\xbf{\"a\":1}\n{\"b\":\"\\\"}\"}\n",
		"{\"a\":\"0123456789012345678901234567890123456789\"}\n{\"b\":1}",
		"{\"a\":1",
		"  \n\t",
	};
	int total = 0;

	(void)state;
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
		for (size_t max = 0; max <= 40; max += 10)
			total += peek_matches_next(inputs[i], strlen(inputs[i]), max);
	assert_true(total >= 20); /* the shortcut was taken */

	/* lines across 64 KiB chunks: a line not buffered whole is next's */
	size_t cap = 3 * 65536, len = 0;
	char *big = malloc(cap);
	int k = 0;

	assert_non_null(big);
	while (len + 64 < cap) {
		len += (size_t)sprintf(big + len, "{\"n\":%d,\"s\":\"%.*s\"}\n", k,
				       k % 17, "abcdefghijklmnopq");
		k++;
	}
	total = peek_matches_next(big, len, 0);
	assert_true(total > k - 10 && total < k);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_concatenated),
		cmocka_unit_test(test_pretty_printed),
		cmocka_unit_test(test_whitespace_only),
		cmocka_unit_test(test_strings_with_brackets),
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_stray_closer),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_cut_off_line_resyncs),
		cmocka_unit_test(test_max_value),
		cmocka_unit_test(test_value_across_chunks),
		cmocka_unit_test(test_stray_closer_at_chunk_end),
		cmocka_unit_test(test_pipe_one_byte_writes),
		cmocka_unit_test(test_byte_order_mark),
		cmocka_unit_test(test_pipe_large_value),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_split_buffer),
		cmocka_unit_test(test_split_buffer_exact_size),
		cmocka_unit_test(test_string_runs),
		cmocka_unit_test(test_peek_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
