/* util.h - small helpers every module needs: time, ids, durations, sizes,
 * files, growable buffers.
 */
#ifndef TS_UTIL_H
#define TS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Current UTC time as RFC 3339 with milliseconds, "2026-11-29T07:00:00.123Z"
 * (24 chars + NUL). buf must hold at least 25 bytes. */
void ts_now_rfc3339(char *buf, size_t size);

/* Milliseconds since the epoch (wall clock) and from a monotonic clock. */
int64_t ts_now_ms(void);
int64_t ts_mono_ms(void);

/* A random UUID v4 as 36 lowercase characters + NUL into buf (at least 37
 * bytes). The bytes come from a per-thread pool filled by the kernel
 * (getrandom(2)) the first time, by OpenSSL's DRBG (seeded by the kernel)
 * after that; a forked child starts with an empty pool.
 * Errors: TS_ERR_INTERNAL when there is no randomness. */
ts_err ts_uuid4(char *buf, size_t size);

/* Fill buf with len random bytes: up to 64 bytes through a per-thread pool
 * (filled by the kernel, getrandom(2), its first 16 times, by OpenSSL's
 * DRBG seeded by the kernel after that; a forked child starts with an
 * empty pool), more straight from the kernel. TS_ERR_INTERNAL on failure. */
ts_err ts_random(void *buf, size_t len);

/* Parse a duration: "250ms", "5s", "2m", "1h", or a bare number of seconds
 * ("1.5" allowed). Result in milliseconds. Errors: TS_ERR_CONFIG (with a
 * message in d) for anything else, negatives or overflow. */
ts_err ts_parse_duration(const char *s, int64_t *ms, ts_detail *d);

/* Parse a size: "512", "64KiB", "1MiB", "1GiB" (also K/KB/M/MB/G/GB as
 * powers of 1000 and KiB/MiB/GiB as powers of 1024). Errors: TS_ERR_CONFIG. */
ts_err ts_parse_size(const char *s, int64_t *bytes, ts_detail *d);

/* Parse a whole decimal integer within [min, max]. TS_ERR_CONFIG otherwise. */
ts_err ts_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
		    ts_detail *d);

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees).
 * max_len bounds the size (0: no bound). len may be NULL.
 * Errors: TS_ERR_IO (cannot open/read, too large), TS_ERR_NOMEM. */
ts_err ts_read_file(const char *path, size_t max_len, char **out, size_t *len,
		    ts_detail *d);

/* Read a secret from a file: like ts_read_file, then strips one trailing
 * newline (CRLF or LF). The detail never contains the content. */
ts_err ts_read_secret_file(const char *path, char **out, ts_detail *d);

/* A growable byte buffer; always NUL-terminated after a successful append. */
typedef struct ts_buf {
	char *data;
	size_t len;
	size_t cap;
} ts_buf;

/* Append len bytes. TS_ERR_NOMEM on failure (the buffer stays valid). */
ts_err ts_buf_append(ts_buf *b, const void *data, size_t len);
ts_err ts_buf_appendf(ts_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
ts_err ts_buf_reserve(ts_buf *b, size_t extra);
/* Append s as a JSON string: quoted, '"', '\\' and control bytes escaped,
 * other bytes (UTF-8) as they are; NULL appends null. */
ts_err ts_buf_append_json(ts_buf *b, const char *s);
/* Append v in decimal. */
ts_err ts_buf_append_int(ts_buf *b, int64_t v);
void ts_buf_reset(ts_buf *b);   /* len = 0, keeps memory */
void ts_buf_free(ts_buf *b);    /* frees memory, zeroes b */

/* Compare two byte strings in time that depends only on the lengths. */
int ts_consttime_eq(const void *a, size_t alen, const void *b, size_t blen);

/* v in decimal at o, which has room for TS_INT_CHARS; returns the end
 * (no NUL written). */
#define TS_INT_CHARS 20
char *ts_put_int(char *o, int64_t v);

/* strdup that returns NULL for NULL. */
char *ts_strdup0(const char *s);

/* Zero a secret before freeing it. NULL is fine. */
void ts_free_secret(char *s);

#endif
