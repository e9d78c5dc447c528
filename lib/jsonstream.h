/* jsonstream.h - split a byte stream into top-level JSON values.
 *
 * Input may be JSON Lines or concatenated values with any whitespace
 * between ({"a":1}{"b":2}). A UTF-8 byte order mark at the very start is
 * skipped, as cJSON does for one value. The splitter only finds value
 * boundaries (by bracket depth and string state); it does not parse.
 * Memory is bounded by the largest single value (and max_value), never by
 * the stream length.
 */
#ifndef TS_JSONSTREAM_H
#define TS_JSONSTREAM_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "util.h"

typedef struct ts_jsonstream {
	int fd;
	size_t max_value;     /* 0: no limit */
	ts_buf buf;           /* bytes read, not yet returned */
	size_t start;         /* start of the current value in buf */
	size_t scan;          /* how far the current value was scanned */
	int depth;
	int in_string;
	int escape;
	int started;
	int scalar;           /* the current value is a bare scalar */
	int eof;
	int bom_checked;      /* the start of the input was looked at */
	long line;            /* line number at buf.data[scan] (1-based) */
	long value_line;      /* line where the current value started */
	int skipping;         /* discarding the rest of an oversized value */
	/* Optional: when set, the stream waits for input with poll(2) and
	 * checks *stop at least every 100 ms; once *stop is non-zero the input
	 * ends there (next returns 1, a partly read value is dropped) and
	 * stopped is set. For tools that must stop reading on SIGTERM even when
	 * the writer of a pipe is idle. */
	volatile sig_atomic_t *stop;
	int stopped;
	/* Optional, with stop: called with wait_ctx each time the stream is
	 * about to wait for input that has not arrived yet (a slow pipe), so
	 * the caller can first act on what it has read. */
	void (*on_wait)(void *wait_ctx);
	void *wait_ctx;
} ts_jsonstream;

/* One value: bytes [data, data+len) stay valid until the next call. */
typedef struct ts_jsonvalue {
	const char *data;
	size_t len;
	long line;            /* line of its first byte */
} ts_jsonvalue;

/* Start reading from fd (not closed by the stream). max_value bounds one
 * value's size (0: unbounded). */
void ts_jsonstream_init(ts_jsonstream *s, int fd, size_t max_value);

/* Read the next value.
 * Returns TS_OK with v filled; TS_ERR_DATA for a value that cannot be a JSON
 * text (unbalanced brackets, stray closing bracket, over max_value, or
 * truncated at end of input) with v->line and d set, the stream resyncs to
 * the next line and may be called again; TS_ERR_IO for a read error;
 * and 1 (not a ts_err) at a clean end of input. */
int ts_jsonstream_next(ts_jsonstream *s, ts_jsonvalue *v, ts_detail *d);

/* A shortcut for a caller that parses objects itself (ts-submit): skip
 * the white space before the next value; when that value starts with '{',
 * return 1 with v holding the bytes buffered from the '{' on, at most
 * max_value; else return 0 (call ts_jsonstream_next). Reads nothing,
 * never fails. The object may run past what is buffered: the caller then
 * finds no end and calls ts_jsonstream_next, which reads more. */
int ts_jsonstream_peek(ts_jsonstream *s, ts_jsonvalue *v);

/* After ts_jsonstream_peek() returned 1: take its first n bytes as the
 * next value, as ts_jsonstream_next() would have returned it. Only for a
 * valid JSON object of n bytes found at the start of what peek returned
 * that holds no line feed: then the splitter ends the value there too. */
void ts_jsonstream_take(ts_jsonstream *s, size_t n);

/* Free the buffer. */
void ts_jsonstream_free(ts_jsonstream *s);

/* Split a memory buffer the same way (for HTTP NDJSON bodies): calls fn for
 * each value or error. Stops early when fn returns non-zero. */
typedef int (*ts_jsonsplit_fn)(void *ctx, const ts_jsonvalue *v, ts_err err,
			       const ts_detail *d);
void ts_json_split(const char *buf, size_t len, ts_jsonsplit_fn fn, void *ctx);

#endif
