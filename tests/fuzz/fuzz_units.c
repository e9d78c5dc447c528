/* fuzz_units.c - the duration, size and integer parsers (lib/util.h).
 *
 * Every accepted value is non-negative; printed back in the base unit it
 * parses to the same number; parsing is deterministic.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void fail(const char *what, const char *in, int64_t a, int64_t b)
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
	free(s);
	return 0;
}
