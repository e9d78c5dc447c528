/* fuzz_jsonstream.c - the JSON value splitter (lib/jsonstream.h).
 *
 * The whole input goes to ts_json_split() (the HTTP NDJSON path), and the
 * same bytes through a file descriptor to ts_jsonstream_next() (the stdin
 * path, read in 64 KiB chunks, with a boundary placed inside the input). Both must find the same values, errors and lines;
 * every value lies inside the input, values come in order without overlap,
 * and a value the splitter accepts starts with a non-space byte.
 * A third pass over the descriptor with a small max_value must not crash or
 * leak and must never return a value larger than the bound. A fourth reads
 * it as ts-submit does: ts_jsonstream_peek(), and ts_jsonstream_take() of
 * each JSON object cJSON parses at the start of what it gives that holds
 * no line feed; it must find the very values, errors and lines of the
 * first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "jsonstream.h"

#define MAXV 4096

struct got {
	size_t off, len;
	long line;
	int err;
};

struct run {
	const char *base;
	size_t size;
	struct got v[MAXV];
	int n;
	size_t next_off;
};

static void fail(const char *what, const struct run *r, int i)
{
	fprintf(stderr, "fuzz_jsonstream: %s (value %d of %d)\n", what, i, r->n);
	abort();
}

static int on_value(void *ctx, const ts_jsonvalue *v, ts_err err,
		    const ts_detail *d)
{
	struct run *r = ctx;

	if (err == TS_OK) {
		if (v->data < r->base || v->len == 0 ||
		    v->len > r->size || v->data + v->len > r->base + r->size)
			fail("value outside the input", r, r->n);
		size_t off = (size_t)(v->data - r->base);
		if (off < r->next_off)
			fail("values overlap or go backwards", r, r->n);
		char c = v->data[0];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			fail("value starts with white space", r, r->n);
		r->next_off = off + v->len;
	} else if (memchr(d->msg, 0, sizeof d->msg) == NULL || !d->msg[0]) {
		fail("error without a message", r, r->n);
	}
	if (v->line < 1)
		fail("line number below 1", r, r->n);
	if (r->n > 0 && v->line < r->v[r->n - 1].line)
		fail("line numbers go backwards", r, r->n);
	if (r->n < MAXV) {
		r->v[r->n].off = err ? 0 : (size_t)(v->data - r->base);
		r->v[r->n].len = err ? 0 : v->len;
		r->v[r->n].line = v->line;
		r->v[r->n].err = err;
	}
	r->n++;
	return r->n >= MAXV;
}

/* The stream reads 64 KiB at a time: lead the bytes with pad spaces (not
 * newlines, so line numbers stay) to put a chunk boundary inside them. */
static int memfd_with(const uint8_t *data, size_t size, size_t pad)
{
	static const char spaces[4096] = { [0 ... 4095] = ' ' };
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	while (pad > 0) {
		size_t n = pad < sizeof spaces ? pad : sizeof spaces;
		if (write(fd, spaces, n) != (ssize_t)n) {
			close(fd);
			return -1;
		}
		pad -= n;
	}
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* Compare with the first pass only where it has no bound. */
static void peek_pass(ts_jsonstream *s, const struct run *a,
		      const uint8_t *data)
{
	ts_jsonvalue v;
	ts_detail d;
	int n = 0, r = 0;

	while (n < MAXV) {
		size_t len = 0;
		int took = 0;

		if (ts_jsonstream_peek(s, &v)) {
			const char *end = NULL;
			cJSON *o = cJSON_ParseWithLengthOpts(v.data, v.len, &end, 0);

			if (s->max_value && v.len > s->max_value)
				fail("peek gave more than max_value", a, n);
			if (o && cJSON_IsObject(o) && end > v.data &&
			    end <= v.data + v.len &&
			    !memchr(v.data, '\n', (size_t)(end - v.data))) {
				len = (size_t)(end - v.data);
				ts_jsonstream_take(s, len);
				took = 1;
				r = TS_OK;
			}
			cJSON_Delete(o);
		}
		if (!took && (r = ts_jsonstream_next(s, &v, &d)) == 1)
			break;
		if (!took)
			len = v.len;
		if (s->max_value == 0 && n < a->n) {
			const struct got *g = &a->v[n];

			if (r != g->err || v.line != g->line)
				fail("peek and take disagree on an error or line", a, n);
			if (r == TS_OK && (len != g->len ||
					   memcmp(v.data, data + g->off, len) != 0))
				fail("peek and take disagree on a value", a, n);
		}
		n++;
	}
	if (s->max_value == 0 && n < MAXV && n != a->n)
		fail("peek and take find another number of values", a, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b;
	ts_jsonstream s;
	ts_jsonvalue v;
	ts_detail d;
	int fd, r;

	a.n = b.n = 0;
	a.next_off = b.next_off = 0;
	a.base = (const char *)data;
	a.size = size;
	ts_json_split((const char *)data, size, on_value, &a);

	/* Same bytes through a descriptor, one time in 128 across a chunk
	 * boundary. */
	size_t pad = size > 1 && (data[0] & 127) == 127
			     ? 65536 - 1 - 16 * (size_t)(data[1] % 64) : 0;
	if ((fd = memfd_with(data, size, pad)) < 0)
		return 0;
	ts_jsonstream_init(&s, fd, 0);
	b.size = size;
	while (b.n < a.n && b.n < MAXV &&
	       (r = ts_jsonstream_next(&s, &v, &d)) != 1) {
		struct got *g = &a.v[b.n];
		if (r != g->err)
			fail("stream and split disagree on an error", &a, b.n);
		if (v.line != g->line)
			fail("stream and split disagree on a line", &a, b.n);
		if (r == TS_OK &&
		    (v.len != g->len || memcmp(v.data, data + g->off, v.len) != 0))
			fail("stream and split disagree on a value", &a, b.n);
		b.n++;
	}
	if (a.n < MAXV && b.n == a.n && ts_jsonstream_next(&s, &v, &d) != 1)
		fail("stream finds more values than split", &a, b.n);
	if (b.n != a.n && a.n < MAXV)
		fail("stream finds fewer values than split", &a, b.n);
	ts_jsonstream_free(&s);

	/* Peek and take, with cJSON as the reader's own parser. */
	lseek(fd, (off_t)pad, SEEK_SET);
	ts_jsonstream_init(&s, fd, size ? 1 + (size_t)data[size - 1] * 16 : 0);
	if (size && data[size - 1] >= 128) /* a bound one time in two */
		s.max_value = 0;
	peek_pass(&s, &a, data);
	ts_jsonstream_free(&s);

	/* A small bound: oversized values are errors, never returned. */
	lseek(fd, (off_t)pad, SEEK_SET);
	size_t bound = 1 + (size ? data[0] : 0);
	ts_jsonstream_init(&s, fd, bound);
	for (int i = 0; i < 100000; i++) {
		r = ts_jsonstream_next(&s, &v, &d);
		if (r == 1 || r == TS_ERR_IO)
			break;
		if (r == TS_OK && v.len > bound)
			fail("value over max_value returned", &a, i);
	}
	ts_jsonstream_free(&s);
	close(fd);
	return 0;
}
