/* fuzz_units.c - the duration, size and integer parsers (lib/util.h), and
 * the two small parsers of what servers send back: Retry-After
 * (lib/classify.h) and form escaping of payload text (lib/http.h).
 *
 * Every accepted value is non-negative; printed back in the base unit it
 * parses to the same number; parsing is deterministic. Retry-After is -1
 * or 0 to one day. An escaped string holds only unreserved characters and
 * %XX, and decodes back to the input.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "http.h"
#include "util.h"

__attribute__((noreturn)) static void fail(const char *what, const char *in, int64_t a, int64_t b)
{
	fprintf(stderr, "fuzz_units: %s: input '%s': %" PRId64 " vs %" PRId64 "\n",
		what, in, a, b);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char back[64];
	int64_t v, w, min, max;
	ts_detail d;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (ts_parse_duration(s, &v, &d) == TS_OK) {
		if (v < 0)
			fail("negative duration", s, v, 0);
		snprintf(back, sizeof back, "%" PRId64 "ms", v);
		if (ts_parse_duration(back, &w, &d) != TS_OK || w != v)
			fail("duration does not round trip", s, v, w);
	} else if (!d.msg[0]) {
		fail("duration error without a message", s, 0, 0);
	}

	if (ts_parse_size(s, &v, &d) == TS_OK) {
		if (v < 0)
			fail("negative size", s, v, 0);
		snprintf(back, sizeof back, "%" PRId64, v);
		if (ts_parse_size(back, &w, &d) != TS_OK || w != v)
			fail("size does not round trip", s, v, w);
	} else if (!d.msg[0]) {
		fail("size error without a message", s, 0, 0);
	}

	min = size > 0 ? -(int64_t)data[0] * 1000 : 0;
	max = size > 1 ? (int64_t)data[1] * 1000000 : INT64_MAX;
	if (min > max)
		min = max;
	if (ts_parse_int(s, min, max, &v, &d) == TS_OK) {
		if (v < min || v > max)
			fail("integer out of range accepted", s, v, max);
		snprintf(back, sizeof back, "%" PRId64, v);
		if (ts_parse_int(back, min, max, &w, &d) != TS_OK || w != v)
			fail("integer does not round trip", s, v, w);
	}
	int64_t ra = ts_parse_retry_after(s);
	if (ra < -1 || ra > 86400000)
		fail("Retry-After out of range", s, ra, 0);

	ts_buf b = { 0 };
	if (ts_http_escape(&b, s) == TS_OK && b.data) {
		size_t o = 0;
		for (size_t i = 0; i < b.len; i++) {
			char c = b.data[i];
			if (c == '%') {
				unsigned v = 0;
				if (i + 2 >= b.len || !isxdigit((unsigned char)b.data[i + 1]) ||
				    !isxdigit((unsigned char)b.data[i + 2]) ||
				    sscanf(b.data + i + 1, "%2x", &v) != 1)
					fail("bad %XX in an escaped string", s, 0, 0);
				if ((char)v != s[o++])
					fail("escaped string does not decode back", s, 0, 0);
				i += 2;
			} else if (isalnum((unsigned char)c) || strchr("-._~", c)) {
				if (c != s[o++])
					fail("escaped string does not decode back", s, 0, 0);
			} else {
				fail("reserved character left in an escaped string", s, c, 0);
			}
		}
		if (o != strlen(s))
			fail("escaped string decodes to a different length", s, (int64_t)o, 0);
	}
	ts_buf_free(&b);
	free(s);
	return 0;
}
