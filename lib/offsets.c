/* offsets.c - ring of outstanding offsets with finished flags. */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

void ts_offsets_init(ts_offsets *o)
{
	memset(o, 0, sizeof *o);
	o->next = -1;
}

void ts_offsets_free(ts_offsets *o)
{
	free(o->off);
	free(o->done);
	ts_offsets_init(o);
}

void ts_offsets_reset(ts_offsets *o)
{
	o->head = 0;
	o->len = 0;
	o->unfinished = 0;
	o->next = -1;
}

static size_t slot(const ts_offsets *o, size_t i)
{
	return (o->head + i) & (o->cap - 1);
}

static ts_err grow(ts_offsets *o)
{
	size_t cap = o->cap ? o->cap * 2 : 64;
	int64_t *off = malloc(cap * sizeof *off);
	unsigned char *done = malloc(cap);

	if (!off || !done) {
		free(off);
		free(done);
		return TS_ERR_NOMEM;
	}
	for (size_t i = 0; i < o->len; i++) {
		off[i] = o->off[slot(o, i)];
		done[i] = o->done[slot(o, i)];
	}
	free(o->off);
	free(o->done);
	o->off = off;
	o->done = done;
	o->cap = cap;
	o->head = 0;
	return TS_OK;
}

ts_err ts_offsets_add(ts_offsets *o, int64_t offset)
{
	ts_err err;

	if (offset < 0 || offset <= ts_offsets_last(o))
		return TS_ERR_DATA;
	if (o->len == o->cap && (err = grow(o)))
		return err;
	o->off[slot(o, o->len)] = offset;
	o->done[slot(o, o->len)] = 0;
	o->len++;
	o->unfinished++;
	o->next = offset + 1;
	return TS_OK;
}

/* Binary search over the ring, which is sorted from head on. */
static int find(const ts_offsets *o, int64_t offset, size_t *at)
{
	size_t lo = 0, hi = o->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t v = o->off[slot(o, mid)];
		if (v == offset) {
			*at = mid;
			return 1;
		}
		if (v < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

ts_err ts_offsets_done(ts_offsets *o, int64_t offset)
{
	size_t i;

	if (!o->len || !find(o, offset, &i) || o->done[slot(o, i)])
		return TS_ERR_DATA;
	o->done[slot(o, i)] = 1;
	o->unfinished--;
	while (o->len && o->done[o->head]) {
		o->head = (o->head + 1) & (o->cap - 1);
		o->len--;
	}
	return TS_OK;
}

int64_t ts_offsets_commit_point(const ts_offsets *o)
{
	if (o->len)
		return o->off[o->head];
	return o->next;
}

size_t ts_offsets_unfinished(const ts_offsets *o)
{
	return o->unfinished;
}

int64_t ts_offsets_last(const ts_offsets *o)
{
	return o->next < 0 ? -1 : o->next - 1;
}
