/* offsets.h - per-partition commit tracker: the lowest unfinished offset.
 *
 * A consumer that runs many tasks of one partition at once finishes them
 * out of order. It may commit only up to the first offset that is not yet
 * finished: committing offset C tells the group "everything below C is
 * done", so a restart resumes at C and repeats whatever was still running,
 * but never skips a task. This tracker holds the offsets handed out (in
 * increasing order, gaps allowed: compaction and transaction markers leave
 * holes) and which of them are finished.
 *
 * Offsets are added in increasing order and finished in any order. Memory
 * is nine bytes per outstanding offset in a ring that grows as needed;
 * finished offsets at the head are released at once. add, commit_point are
 * O(1), done is O(log n).
 *
 * Not thread-safe: one owner (the consumer's main thread).
 */
#ifndef TS_OFFSETS_H
#define TS_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ts_offsets {
	int64_t *off;       /* ring of outstanding offsets, increasing */
	unsigned char *done;
	size_t cap;         /* a power of two, or 0 */
	size_t head;        /* index of the oldest outstanding offset */
	size_t len;         /* outstanding offsets (finished or not) */
	size_t unfinished;  /* of those, not yet finished */
	int64_t next;       /* commit point when len == 0; -1 before any add */
} ts_offsets;

/* Start empty. Never fails (memory is taken on the first add). */
void ts_offsets_init(ts_offsets *o);

/* Free the memory; o is empty (as after init) afterwards. */
void ts_offsets_free(ts_offsets *o);

/* Forget everything (partition revoked or reassigned); keeps the memory. */
void ts_offsets_reset(ts_offsets *o);

/* Record that offset was handed out and is not finished yet.
 * Errors: TS_ERR_DATA when offset is negative or not above every offset
 * added before (a repeat delivery: the caller should drop it);
 * TS_ERR_NOMEM. */
ts_err ts_offsets_add(ts_offsets *o, int64_t offset);

/* Mark offset finished.
 * Errors: TS_ERR_DATA when offset is not outstanding (never added,
 * already finished, or released). */
ts_err ts_offsets_done(ts_offsets *o, int64_t offset);

/* The offset to commit: the lowest unfinished one, or one past the highest
 * added when all are finished. -1 before the first add (nothing to commit). */
int64_t ts_offsets_commit_point(const ts_offsets *o);

/* Offsets added and not yet finished. */
size_t ts_offsets_unfinished(const ts_offsets *o);

/* The highest offset added so far, or -1. */
int64_t ts_offsets_last(const ts_offsets *o);

#endif
