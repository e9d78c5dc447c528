/* util.c - time, ids, durations, sizes, files, buffers. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

void ts_now_rfc3339(char *buf, size_t size)
{
	/* Called once per task by producers: the date and time part changes
	 * once a second, so it is formatted once a second (per thread). */
	static __thread time_t base_sec = -1;
	static __thread char base[32];
	struct timespec ts;
	char out[40];
	size_t n;
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != base_sec) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
		base_sec = ts.tv_sec;
	}
	n = strlen(base);
	memcpy(out, base, n);
	ms = ts.tv_nsec / 1000000L;
	out[n++] = '.';
	out[n++] = (char)('0' + ms / 100);
	out[n++] = (char)('0' + ms / 10 % 10);
	out[n++] = (char)('0' + ms % 10);
	out[n++] = 'Z';
	if (size == 0)
		return;
	if (n >= size)
		n = size - 1; /* truncated like snprintf */
	memcpy(buf, out, n);
	buf[n] = '\0';
}

int64_t ts_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ts_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* getrandom(2) until len bytes are in. */
static ts_err fill_random(unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return TS_ERR_INTERNAL;
		}
		p += n;
		len -= (size_t)n;
	}
	return TS_OK;
}

/* Small requests (a UUID: one per task produced; a MIME boundary, a jitter
 * draw) come from a per-thread pool of 4 KiB; large ones go straight to
 * the kernel. The kernel's generator cost 16 ms of CPU per 300,000 ids
 * (ChaCha20 in plain C, a twentieth of ts-submit's main thread); OpenSSL's
 * CTR-DRBG (AES, seeded from the kernel, reseeded by OpenSSL after a fork)
 * gives the same 4.8 MB in 2 ms. Its first use costs about 2 ms of set-up
 * (as much as the kernel spends on 40,000 ids), so a thread's first 16
 * pools come from the kernel and OpenSSL serves only a thread that draws
 * more: a run of a few thousand tasks pays nothing.
 * A forked child never draws from the parent's copy of the pool (its
 * thread's pool is emptied by an atfork handler). */
#define RANDOM_POOL 4096
#define RANDOM_SMALL 64
#define RANDOM_KERNEL_POOLS 16

static __thread unsigned char random_pool[RANDOM_POOL];
static __thread size_t random_used = RANDOM_POOL;
static __thread unsigned random_refills;
static pthread_once_t random_once = PTHREAD_ONCE_INIT;

static void random_pool_forget(void)
{
	/* the child's one thread is the one that forked */
	random_used = RANDOM_POOL;
	random_refills = 0;
}

static void random_atfork(void)
{
	pthread_atfork(NULL, NULL, random_pool_forget);
}

ts_err ts_random(void *buf, size_t len)
{
	if (len > RANDOM_SMALL)
		return fill_random(buf, len);
	if (random_used + len > RANDOM_POOL) {
		pthread_once(&random_once, random_atfork);
		if (random_refills < RANDOM_KERNEL_POOLS ||
		    RAND_bytes(random_pool, RANDOM_POOL) != 1) {
			if (fill_random(random_pool, RANDOM_POOL) != TS_OK)
				return TS_ERR_INTERNAL;
		}
		if (random_refills < RANDOM_KERNEL_POOLS)
			random_refills++;
		random_used = 0;
	}
	memcpy(buf, random_pool + random_used, len);
	random_used += len;
	return TS_OK;
}

#ifdef __SSE2__
#include <emmintrin.h>

/* One per task produced (ts-submit, ts-httpd): the 16 bytes become 32 hex
 * digits in a few vector operations, then go to their places in the
 * 8-4-4-4-12 form (143 instructions a task with a table lookup per byte,
 * about 50 this way). The random bytes are not wiped: they are the
 * published id. */
ts_err ts_uuid4(char *buf, size_t size)
{
	unsigned char r[16];
	char hex[32];

	if (size < 37 || ts_random(r, sizeof r) != TS_OK)
		return TS_ERR_INTERNAL;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */

	__m128i v = _mm_loadu_si128((const __m128i *)r);
	__m128i low4 = _mm_set1_epi8(0x0f);
	__m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
	__m128i lo = _mm_and_si128(v, low4);
	/* each nibble n becomes '0' + n, plus 'a' - '0' - 10 when n > 9 */
	__m128i nine = _mm_set1_epi8(9), zero = _mm_set1_epi8('0');
	__m128i letter = _mm_set1_epi8('a' - '0' - 10);
	__m128i d0 = _mm_unpacklo_epi8(hi, lo), d1 = _mm_unpackhi_epi8(hi, lo);

	d0 = _mm_add_epi8(_mm_add_epi8(d0, zero),
			  _mm_and_si128(_mm_cmpgt_epi8(d0, nine), letter));
	d1 = _mm_add_epi8(_mm_add_epi8(d1, zero),
			  _mm_and_si128(_mm_cmpgt_epi8(d1, nine), letter));
	_mm_storeu_si128((__m128i *)hex, d0);
	_mm_storeu_si128((__m128i *)(hex + 16), d1);
	memcpy(buf, hex, 8);
	buf[8] = '-';
	memcpy(buf + 9, hex + 8, 4);
	buf[13] = '-';
	memcpy(buf + 14, hex + 12, 4);
	buf[18] = '-';
	memcpy(buf + 19, hex + 16, 4);
	buf[23] = '-';
	memcpy(buf + 24, hex + 20, 12);
	buf[36] = '\0';
	return TS_OK;
}
#else
/* Each byte value as two lower-case hex digits, and where each of the 16
 * bytes' digits go in the 8-4-4-4-12 form of a UUID. */
static const char hex_pairs[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
static const unsigned char uuid_pos[16] = {
	0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34
};

/* One per task produced (ts-submit, ts-httpd): no printf, no branch per
 * byte. The random bytes are not wiped: they are the published id. */
ts_err ts_uuid4(char *buf, size_t size)
{
	unsigned char r[16];

	if (size < 37 || ts_random(r, sizeof r) != TS_OK)
		return TS_ERR_INTERNAL;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
#pragma GCC unroll 16
	for (int i = 0; i < 16; i++)
		memcpy(buf + uuid_pos[i], hex_pairs + 2 * r[i], 2);
	buf[8] = buf[13] = buf[18] = buf[23] = '-';
	buf[36] = '\0';
	return TS_OK;
}
#endif

/* Parse "<number><unit>" where the number may have a fraction. Returns the
 * unit suffix through *unit, or -1 if no number leads. */
static int split_number(const char *s, double *num, const char **unit)
{
	char *end;

	if (!s || !*s || !(*s == '.' || (*s >= '0' && *s <= '9')))
		return -1;
	errno = 0;
	*num = strtod(s, &end);
	if (errno || end == s || !isfinite(*num) || *num < 0)
		return -1;
	/* digits and one optional fraction only: strtod also takes hex and
	 * exponents ("0x10", "1e3"), which are not durations or sizes */
	const char *p = s + strspn(s, "0123456789");
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if (p != end)
		return -1;
	*unit = end;
	return 0;
}

ts_err ts_parse_duration(const char *s, int64_t *ms, ts_detail *d)
{
	static const struct { const char *unit; double ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 },
	};
	double num, v;
	const char *unit;

	if (split_number(s, &num, &unit) == 0) {
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			if (strcmp(unit, units[i].unit) != 0)
				continue;
			v = num * units[i].ms;
			if (v > (double)INT64_MAX / 2)
				break;
			*ms = (int64_t)(v + 0.5);
			return TS_OK;
		}
	}
	return ts_fail(d, TS_ERR_CONFIG, NULL,
		       "'%s' is not a duration (write 250ms, 5s, 2m or 1h)",
		       s ? s : "");
}

ts_err ts_parse_size(const char *s, int64_t *bytes, ts_detail *d)
{
	static const struct { const char *unit; double mul; } units[] = {
		{ "", 1 }, { "B", 1 },
		{ "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
		{ "K", 1e3 }, { "KB", 1e3 }, { "k", 1e3 }, { "kB", 1e3 },
		{ "M", 1e6 }, { "MB", 1e6 }, { "G", 1e9 }, { "GB", 1e9 },
	};
	double num, v;
	const char *unit;

	if (split_number(s, &num, &unit) == 0) {
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			if (strcmp(unit, units[i].unit) != 0)
				continue;
			v = num * units[i].mul;
			if (v > (double)INT64_MAX / 2 || v != floor(v))
				break;
			*bytes = (int64_t)v;
			return TS_OK;
		}
	}
	return ts_fail(d, TS_ERR_CONFIG, NULL,
		       "'%s' is not a size (write 512, 64KiB or 1MiB)",
		       s ? s : "");
}

ts_err ts_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
		    ts_detail *d)
{
	char *end;
	long long v;

	if (s && *s && !isspace((unsigned char)*s)) { /* strtoll skips it */
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!errno && *end == '\0' && v >= min && v <= max) {
			*out = v;
			return TS_OK;
		}
	}
	return ts_fail(d, TS_ERR_CONFIG, NULL,
		       "'%s' is not a whole number from %lld to %lld",
		       s ? s : "", (long long)min, (long long)max);
}

ts_err ts_read_file(const char *path, size_t max_len, char **out, size_t *len,
		    ts_detail *d)
{
	ts_buf b = { 0 };
	char chunk[65536];
	ts_err err = TS_OK;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ts_fail(d, TS_ERR_IO, NULL, "%s: %s", path, strerror(errno));
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = ts_fail(d, TS_ERR_IO, NULL, "%s: %s", path,
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (max_len && b.len + (size_t)n > max_len) {
			err = ts_fail(d, TS_ERR_IO, NULL,
				      "%s: larger than %zu bytes", path, max_len);
			goto out;
		}
		if (ts_buf_append(&b, chunk, (size_t)n) != TS_OK) {
			err = ts_fail(d, TS_ERR_NOMEM, NULL, "%s: out of memory",
				      path);
			goto out;
		}
	}
	if (ts_buf_reserve(&b, 1) != TS_OK) {
		err = ts_fail(d, TS_ERR_NOMEM, NULL, "%s: out of memory", path);
		goto out;
	}
	b.data[b.len] = '\0';
	*out = b.data;
	if (len)
		*len = b.len;
	b.data = NULL;
out:
	close(fd);
	ts_buf_free(&b);
	return err;
}

ts_err ts_read_secret_file(const char *path, char **out, ts_detail *d)
{
	size_t len;
	ts_err err = ts_read_file(path, 65536, out, &len, d);

	if (err)
		return err;
	if (len > 0 && (*out)[len - 1] == '\n') {
		(*out)[--len] = '\0';
		if (len > 0 && (*out)[len - 1] == '\r') /* CRLF; a lone CR stays */
			(*out)[--len] = '\0';
	}
	return TS_OK;
}

ts_err ts_buf_reserve(ts_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return TS_ERR_NOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return TS_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return TS_ERR_NOMEM;
	b->data = p;
	b->cap = cap;
	return TS_OK;
}

ts_err ts_buf_append(ts_buf *b, const void *data, size_t len)
{
	if (ts_buf_reserve(b, len) != TS_OK)
		return TS_ERR_NOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return TS_OK;
}

/* "00" to "99": two digits per division (offsets, lines and counts on
 * every result line and access log line). */
static const char digit_pairs[201] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Counting the digits first and writing them in place is cheaper than
 * writing them backwards into a scratch buffer and copying. */
char *ts_put_int(char *o, int64_t v)
{
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	char *end;
	int n = 1;

	if (v < 0)
		*o++ = '-';
	for (uint64_t t = u; t >= 10; t /= 10)
		n++;
	end = o + n;
	while (u >= 100) {
		end -= 2;
		memcpy(end, digit_pairs + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10)
		memcpy(end - 2, digit_pairs + 2 * u, 2);
	else
		end[-1] = (char)('0' + u);
	return o + n;
}

ts_err ts_buf_append_int(ts_buf *b, int64_t v)
{
	if (ts_buf_reserve(b, TS_INT_CHARS) != TS_OK)
		return TS_ERR_NOMEM;
	b->len = (size_t)(ts_put_int(b->data + b->len, v) - b->data);
	b->data[b->len] = '\0';
	return TS_OK;
}

ts_err ts_buf_appendf(ts_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || ts_buf_reserve(b, (size_t)n) != TS_OK)
		return TS_ERR_NOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return TS_OK;
}

ts_err ts_buf_append_json(ts_buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	ts_err err;

	if (!s)
		return ts_buf_append(out, "null", 4);
	if ((err = ts_buf_append(out, "\"", 1)))
		return err;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = { '\\', 0, '0', '0', 0, 0 };
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((err = ts_buf_append(out, run, (size_t)(s - run))))
			return err;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			n = 6;
		}
		if ((err = ts_buf_append(out, esc, n)))
			return err;
		run = s + 1;
	}
	if ((err = ts_buf_append(out, run, (size_t)(s - run))))
		return err;
	return ts_buf_append(out, "\"", 1);
}

void ts_buf_reset(ts_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void ts_buf_free(ts_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int ts_consttime_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	unsigned char diff = (unsigned char)(alen != blen);
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(x[i] ^ y[i]);
	return diff == 0;
}

char *ts_strdup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

void ts_free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
