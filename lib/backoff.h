/* backoff.h - how long to wait before retrying a transient failure.
 *
 * Exponential back-off with full jitter (the AWS architecture blog's name
 * for it): the n-th retry waits a uniformly random time in
 * [0, min(max, initial * factor^(n-1))]. Jitter spreads the retries of many
 * tasks that failed together (a mail server restart) so they do not hit the
 * server again in one burst.
 *
 * A server's Retry-After is a floor: the wait is never shorter than what the
 * server asked for, but it is capped at max as well, so one answer cannot
 * hold a task (and the commit of its partition) for an hour.
 */
#ifndef TS_BACKOFF_H
#define TS_BACKOFF_H

#include <stdint.h>

typedef struct ts_backoff {
	int64_t initial_ms;   /* ceiling of the first retry's wait; >= 0 */
	double factor;        /* growth per retry; >= 1 */
	int64_t max_ms;       /* no wait is longer than this; >= 0 */
} ts_backoff;

/* The ceiling of the jittered wait before retry number `retry` (1 for the
 * first retry): min(max_ms, initial_ms * factor^(retry-1)), without
 * overflow for any retry count. retry < 1 is taken as 1. */
int64_t ts_backoff_ceiling(const ts_backoff *b, int retry);

/* The wait before retry number `retry`, given u, a uniform random number
 * in [0, 1) (values outside are clamped), and the server's Retry-After in
 * milliseconds (-1 when it gave none): a wait in [0, ceiling] chosen by u
 * (0 gives 0, u near 1 gives the ceiling), raised to min(retry_after_ms,
 * max_ms) when that is longer. Pure: for tests. */
int64_t ts_backoff_delay_u(const ts_backoff *b, int retry,
			   int64_t retry_after_ms, double u);

/* Same, with u drawn from a per-thread generator seeded from the kernel.
 * Thread-safe. */
int64_t ts_backoff_delay(const ts_backoff *b, int retry,
			 int64_t retry_after_ms);

#endif
