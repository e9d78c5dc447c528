/* jsonstream.c - find top-level JSON value boundaries in a byte stream. */
#include "jsonstream.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

void ts_jsonstream_init(ts_jsonstream *s, int fd, size_t max_value)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->max_value = max_value;
	s->line = 1;
}

void ts_jsonstream_free(ts_jsonstream *s)
{
	if (s->fd >= 0)
		ts_buf_free(&s->buf);
	memset(&s->buf, 0, sizeof s->buf);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Drop bytes before s->start so the buffer holds only the current value. */
static void compact(ts_jsonstream *s)
{
	if (s->start == 0)
		return;
	memmove(s->buf.data, s->buf.data + s->start, s->buf.len - s->start);
	s->buf.len -= s->start;
	s->scan -= s->start;
	s->start = 0;
}

/* With s->stop: wait until fd is readable (0) or *s->stop is set (1). */
static int wait_readable(ts_jsonstream *s)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	int r = poll(&pfd, 1, 0);

	if (r > 0 || (r < 0 && errno != EINTR))
		return 0;
	if (s->on_wait)
		s->on_wait(s->wait_ctx);
	while (!*s->stop) {
		r = poll(&pfd, 1, 100);

		if (r > 0 || (r < 0 && errno != EINTR))
			return 0; /* readable, hung up, or an error read() reports */
	}
	return 1;
}

/* A UTF-8 byte order mark, which Windows editors and PowerShell put at the
 * start of a file. RFC 8259 lets a parser ignore it; cJSON does, so
 * ts-httpd and ts-worker take such a value, and so does the splitter. */
static const char BOM[3] = { '\xef', '\xbb', '\xbf' };

/* At the start of the input: 1 when the bytes there may still become a
 * byte order mark (fewer than three so far); else 0, the mark (if it is
 * one) skipped and never looked for again. */
static int skip_bom(ts_jsonstream *s)
{
	size_t have = s->buf.len - s->start;

	if (have < sizeof BOM && !s->eof &&
	    memcmp(s->buf.data + s->start, BOM, have) == 0)
		return 1;
	s->bom_checked = 1;
	if (have >= sizeof BOM &&
	    memcmp(s->buf.data + s->start, BOM, sizeof BOM) == 0)
		s->start = s->scan = s->start + sizeof BOM;
	return 0;
}

/* Read more input. Returns 0 with data, 1 at EOF, -1 on error. */
static int fill(ts_jsonstream *s)
{
	ssize_t n;

	if (s->fd < 0 || s->eof)
		return 1;
	compact(s);
	if (ts_buf_reserve(&s->buf, CHUNK) != TS_OK)
		return -1;
	do {
		if (s->stop && wait_readable(s)) {
			s->eof = s->stopped = 1;
			return 1;
		}
		n = read(s->fd, s->buf.data + s->buf.len, CHUNK);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0) {
		s->eof = 1;
		if (!s->bom_checked)
			skip_bom(s);
		return 1;
	}
	s->buf.len += (size_t)n;
	if (!s->bom_checked && skip_bom(s)) {
		/* one or two bytes of a mark: read on (at the end of the
		 * input they are still there to be scanned: an error) */
		int r = fill(s);
		return r > 0 ? 0 : r;
	}
	return 0;
}

static void reset_value(ts_jsonstream *s)
{
	s->depth = 0;
	s->in_string = s->escape = s->started = s->scalar = 0;
	s->skipping = 0;
}

/* Finish the current value, which ends before s->scan. */
static int emit(ts_jsonstream *s, ts_jsonvalue *v, ts_detail *d)
{
	int skipped = s->skipping;

	v->data = s->buf.data + s->start;
	v->len = s->scan - s->start;
	v->line = s->value_line;
	s->start = s->scan;
	reset_value(s);
	if (skipped) {
		v->len = 0;
		return ts_fail(d, TS_ERR_DATA, NULL,
			       "value larger than %zu bytes", s->max_value);
	}
	return TS_OK;
}

/* The current value broke off before s->scan (see scan_container). */
static int cut_off(ts_jsonstream *s, ts_jsonvalue *v, ts_detail *d)
{
	long next_line = s->line;
	int skipped = s->skipping;

	emit(s, v, d);
	if (skipped)
		return ts_fail(d, TS_ERR_DATA, NULL,
			       "value larger than %zu bytes", s->max_value);
	if (v->line == next_line)
		return ts_fail(d, TS_ERR_DATA, NULL,
			       "truncated: a string runs into the end of the line");
	return ts_fail(d, TS_ERR_DATA, NULL,
		       "truncated: this value is still open where line %ld starts a new one",
		       next_line);
}

/* After an error: drop everything up to the end of the line. */
static int skip_line(ts_jsonstream *s)
{
	for (;;) {
		while (s->scan < s->buf.len) {
			if (s->buf.data[s->scan++] == '\n') {
				s->line++;
				s->start = s->scan;
				return 0;
			}
		}
		s->start = s->scan;
		int r = fill(s);
		if (r)
			return r;
	}
}

/* Advance over one byte inside a started value. Returns 1 when the value
 * ends after this byte, 2 when it ends before it, 0 to go on. */
static int step(ts_jsonstream *s, char c)
{
	if (c == '\n')
		s->line++;
	if (s->in_string) {
		if (s->escape)
			s->escape = 0;
		else if (c == '\\')
			s->escape = 1;
		else if (c == '"') {
			s->in_string = 0;
			if (s->scalar && s->depth == 0)
				return 1;
		}
		return 0;
	}
	if (s->scalar && s->depth == 0) {
		if (is_space(c) || strchr("{}[]\",", c)) {
			if (c == '\n')
				s->line--; /* counted again when rescanned */
			return 2;
		}
		return 0;
	}
	switch (c) {
	case '"':
		s->in_string = 1;
		break;
	case '{':
	case '[':
		s->depth++;
		break;
	case '}':
	case ']':
		if (--s->depth == 0)
			return 1;
		break;
	}
	return 0;
}

/* Bytes that end a run of plain string content: quote, backslash, LF. */
static const unsigned char string_stop[256] = {
	['"'] = 1, ['\\'] = 1, ['\n'] = 1,
};

/* The first byte of data[i..n) that ends a run of plain string content,
 * or n. Strings are most of the input, so sixteen bytes are tested at a
 * time with SSE2 (every x86-64 has it), else eight in a word (a word holds
 * a byte equal to c when (w ^ c*ONES) has a zero byte; the lowest flagged
 * byte is always a true one, whatever the borrows above). */
static size_t string_run(const char *data, size_t i, size_t n)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"');
	const __m128i bslash = _mm_set1_epi8('\\');
	const __m128i lf = _mm_set1_epi8('\n');

	while (n - i >= 16) {
		__m128i w = _mm_loadu_si128((const __m128i *)(const void *)(data + i));
		unsigned hit = (unsigned)_mm_movemask_epi8(_mm_or_si128(
			_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bslash)),
			_mm_cmpeq_epi8(w, lf)));

		if (hit)
			return i + (size_t)__builtin_ctz(hit);
		i += 16;
	}
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101u;
	const uint64_t highs = 0x8080808080808080u;

	while (n - i >= 8) {
		uint64_t w, q, b, l, hit;

		memcpy(&w, data + i, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		l = w ^ (ones * '\n');
		hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((l - ones) & ~l);
		hit &= highs;
		if (hit)
			return i + ((size_t)__builtin_ctzll(hit) >> 3);
		i += 8;
	}
#endif
	while (i < n && !string_stop[(unsigned char)data[i]])
		i++;
	return i;
}

/* String content from data[*ip] on (*escape: a backslash came just
 * before). Returns 0 with *ip just past the closing quote; 1 when the
 * buffer ran out first (*escape says whether on a backslash); 2 at a raw
 * line feed, escaped or not (never valid JSON), with *ip on it. */
static inline int scan_string(const char *data, size_t *ip, size_t n,
			      int *escape)
{
	size_t i = *ip;
	int r;

	if (*escape) {
		if (i >= n) {
			r = 1;
			goto out;
		}
		if (data[i] == '\n') {
			r = 2;
			goto out;
		}
		i++;
		*escape = 0;
	}
	for (;;) {
		i = string_run(data, i, n);
		if (i >= n) {
			r = 1;
			break;
		}
		if (data[i] == '"') {
			i++;
			r = 0;
			break;
		}
		if (data[i] == '\n') {
			r = 2;
			break;
		}
		i++; /* a backslash: the next byte is taken as it is */
		if (i >= n) {
			*escape = 1;
			r = 1;
			break;
		}
		if (data[i] == '\n') {
			*escape = 1;
			r = 2;
			break;
		}
		i++;
	}
out:
	*ip = i;
	return r;
}

/* step() over every buffered byte of an object or array (nearly every
 * value), with the state in locals and each string scanned in one go. Returns 1 when the value ended (s->scan is just past its
 * closing bracket), 0 when the buffer ran out first, and 2 when the value
 * was cut off: a raw line feed inside a string (never valid JSON), or a
 * '{' at the very start of a line while the value is still open (no
 * pretty-printer puts a nested object there; a new task line does).
 * s->scan is then where the next value may start, so one broken line does
 * not swallow the tasks after it. */
static int scan_container(ts_jsonstream *s)
{
	const char *data = s->buf.data;
	size_t i = s->scan, n = s->buf.len;
	int depth = s->depth, in_string = s->in_string, escape = s->escape;
	int done = 0;
	long line = s->line;

	if (in_string) { /* the buffer ran out inside a string last time */
		int r = scan_string(data, &i, n, &escape);

		if (r) {
			done = r == 2 ? 2 : 0;
			goto out;
		}
		in_string = 0;
	}
	while (i < n && !done) {
		char c = data[i];

		if (c == '{' && i > s->start && data[i - 1] == '\n') {
			done = 2;
			break;
		}
		i++;
		switch (c) {
		case '\n':
			line++;
			break;
		case '"': { /* the whole string in one go */
			int r = scan_string(data, &i, n, &escape);

			if (r) {
				in_string = 1;
				done = r == 2 ? 2 : 0;
			}
			break;
		}
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			done = --depth == 0;
			break;
		}
	}
out:
	s->scan = i;
	s->depth = depth;
	s->in_string = in_string;
	s->escape = escape;
	s->line = line;
	return done;
}

int ts_jsonstream_next(ts_jsonstream *s, ts_jsonvalue *v, ts_detail *d)
{
	ts_detail_clear(d);
	for (;;) {
		if (s->scan >= s->buf.len) {
			int r = fill(s);
			if (r < 0)
				return ts_fail(d, TS_ERR_IO, NULL, "%s",
					       strerror(errno ? errno : ENOMEM));
			if (r > 0)
				break;
			continue;
		}
		char c = s->buf.data[s->scan];
		if (!s->started) {
			s->scan++;
			if (is_space(c)) {
				if (c == '\n')
					s->line++;
				s->start = s->scan;
				continue;
			}
			s->started = 1;
			s->value_line = s->line;
			s->start = s->scan - 1;
			if (c == '}' || c == ']') {
				/* not into buf: skip_line() may refill it */
				v->data = c == '}' ? "}" : "]";
				v->len = 1;
				v->line = s->line;
				reset_value(s);
				if (skip_line(s) < 0)
					return ts_fail(d, TS_ERR_IO, NULL,
						       "read error");
				return ts_fail(d, TS_ERR_DATA, NULL,
					       "unexpected '%c'", c);
			}
			if (c == '{' || c == '[')
				s->depth = 1;
			else if (c == '"')
				s->scalar = s->in_string = 1;
			else
				s->scalar = 1;
			continue;
		}
		if (!s->scalar) {
			int end = scan_container(s);

			if (end == 2)
				return cut_off(s, v, d);

			if (s->max_value && s->scan - s->start > s->max_value) {
				s->skipping = 1;
				if (!end)
					s->start = s->scan; /* let compact() drop it */
			}
			if (end)
				return emit(s, v, d);
			continue;
		}
		int r = step(s, c);
		if (r == 1)
			s->scan++;
		if (r && s->max_value && s->scan - s->start > s->max_value)
			s->skipping = 1; /* its closing byte made it too big */
		if (r)
			return emit(s, v, d);
		s->scan++;
		if (s->max_value && s->scan - s->start > s->max_value) {
			s->skipping = 1;
			s->start = s->scan; /* let compact() drop it */
		}
	}
	/* end of input */
	if (!s->started || s->stopped)
		return 1;
	if (s->scalar && !s->in_string)
		return emit(s, v, d);
	int skipped = s->skipping;
	v->data = s->buf.data + s->start;
	v->len = skipped ? 0 : s->scan - s->start;
	v->line = s->value_line;
	s->start = s->scan;
	reset_value(s);
	if (skipped)
		return ts_fail(d, TS_ERR_DATA, NULL,
			       "value larger than %zu bytes", s->max_value);
	return ts_fail(d, TS_ERR_DATA, NULL,
		       "truncated: the input ends inside this value");
}

int ts_jsonstream_peek(ts_jsonstream *s, ts_jsonvalue *v)
{
	const char *data = s->buf.data;
	size_t i = s->scan, n = s->buf.len;
	long line = s->line;

	if (s->started)
		return 0;
	while (i < n && is_space(data[i])) /* as ts_jsonstream_next skips it */
		line += data[i++] == '\n';
	s->scan = s->start = i;
	s->line = line;
	if (i >= n || data[i] != '{')
		return 0;
	v->data = data + i;
	v->len = n - i;
	v->line = line;
	if (s->max_value && v->len > s->max_value)
		v->len = s->max_value; /* a larger value is next()'s error */
	return 1;
}

void ts_jsonstream_take(ts_jsonstream *s, size_t n)
{
	s->value_line = s->line;
	s->scan += n;
	s->start = s->scan;
}

void ts_json_split(const char *buf, size_t len, ts_jsonsplit_fn fn, void *ctx)
{
	ts_jsonstream s;
	ts_jsonvalue v;
	ts_detail d;
	int r;

	ts_jsonstream_init(&s, -1, 0);
	s.buf.data = (char *)buf; /* never written: fd < 0 means no fill() */
	s.buf.len = len;
	s.buf.cap = len;
	s.eof = 1;
	skip_bom(&s);
	while ((r = ts_jsonstream_next(&s, &v, &d)) != 1) {
		if (fn(ctx, &v, (ts_err)r, &d))
			break;
	}
}
