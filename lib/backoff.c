/* backoff.c - full-jitter exponential back-off honouring Retry-After. */
#include "backoff.h"

#include <math.h>
#include <time.h>

#include "util.h"

int64_t ts_backoff_ceiling(const ts_backoff *b, int retry)
{
	double c;
	int64_t max = b->max_ms < 0 ? 0 : b->max_ms;

	if (retry < 1)
		retry = 1;
	if (b->initial_ms <= 0)
		return 0;
	/* pow() saturates to inf, which the comparison below turns into max. */
	c = (double)b->initial_ms * pow(b->factor < 1.0 ? 1.0 : b->factor,
					 (double)(retry - 1));
	if (!(c < (double)max))
		return max;
	return (int64_t)c;
}

int64_t ts_backoff_delay_u(const ts_backoff *b, int retry,
			   int64_t retry_after_ms, double u)
{
	int64_t ceiling = ts_backoff_ceiling(b, retry);
	int64_t max = b->max_ms < 0 ? 0 : b->max_ms;
	int64_t wait;

	if (!(u >= 0.0))
		u = 0.0;
	if (u >= 1.0)
		u = 0.9999999999;
	wait = (int64_t)(u * (double)(ceiling + 1));
	if (wait > ceiling)
		wait = ceiling;
	if (retry_after_ms > 0) {
		int64_t floor_ms = retry_after_ms < max ? retry_after_ms : max;
		if (wait < floor_ms)
			wait = floor_ms;
	}
	return wait;
}

/* xorshift64*: fast, per thread, seeded once from the kernel. Jitter needs
 * spread, not secrecy. */
static _Thread_local uint64_t rng_state;

static double next_u(void)
{
	uint64_t x = rng_state;

	if (x == 0) {
		if (ts_random(&x, sizeof x) != TS_OK || x == 0)
			x = (uint64_t)ts_mono_ms() * 0x9E3779B97F4A7C15ULL + 1;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

int64_t ts_backoff_delay(const ts_backoff *b, int retry,
			 int64_t retry_after_ms)
{
	return ts_backoff_delay_u(b, retry, retry_after_ms, next_u());
}
