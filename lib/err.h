/* err.h - error codes shared by every TaskStream module and tool.
 *
 * Library functions return a ts_err and, where they can say more, fill a
 * ts_detail the caller owns. ts_err_exit() is the one place that maps the
 * codes onto the sysexits.h values of DESIGN.md.
 */
#ifndef TS_ERR_H
#define TS_ERR_H

#include <stddef.h>

typedef enum ts_err {
	TS_OK = 0,
	TS_ERR_USAGE,       /* bad command line                     -> 64 */
	TS_ERR_DATA,        /* invalid input                        -> 65 */
	TS_ERR_PERMANENT,   /* delivery refused for good            -> 69 */
	TS_ERR_INTERNAL,    /* a bug or a resource failure          -> 70 */
	TS_ERR_NOMEM,       /* out of memory                        -> 70 */
	TS_ERR_IO,          /* reading or writing a local file      -> 70 */
	TS_ERR_TRANSIENT,   /* try again later                      -> 75 */
	TS_ERR_CONFIG,      /* bad configuration                    -> 78 */
	TS_ERR__COUNT
} ts_err;

/* What went wrong, for a person. field is a dotted path into the input
 * ("payload.to[2]") or empty; msg says why ("required"). Both are always
 * NUL-terminated. Never put secrets in either. */
typedef struct ts_detail {
	char field[128];
	char msg[384];
} ts_detail;

/* A static, human name for the code ("invalid input"). Never NULL. */
const char *ts_strerror(ts_err err);

/* The sysexits.h exit status for the code (0 for TS_OK). */
int ts_err_exit(ts_err err);

/* Which of two outcomes decides a run's exit status: DESIGN.md says 75 wins
 * over 69, 69 over 65, and any failure over success. Returns the stronger. */
ts_err ts_err_worst(ts_err a, ts_err b);

/* Set detail (if not NULL): field may be NULL; msg is printf-style.
 * Returns err so callers can write `return ts_fail(d, TS_ERR_DATA, ...)`. */
ts_err ts_fail(ts_detail *d, ts_err err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Clear a detail to empty strings. */
void ts_detail_clear(ts_detail *d);

#endif
