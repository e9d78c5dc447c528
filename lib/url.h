/* url.h - split a transport URL (DESIGN.md, "Transport URLs") into parts.
 *
 *   scheme://[user[:pass]@]host[:port][/path][?key=value&...]
 *   scheme:PATH        (maildir:, file:; also scheme:///abs/path)
 *   -                  (dry run)
 *
 * The user and password are percent-decoded; so are query values, which may
 * also be given plain (?api=http://127.0.0.1:8025): only '&' separates
 * pairs and only the first '=' splits a pair. The userinfo ends at the last
 * '@' of the authority, so a password may hold an unencoded '@'; '/', '?'
 * and '#' in it must be written %2F, %3F, %23.
 */
#ifndef TS_URL_H
#define TS_URL_H

#include <stddef.h>

#include "err.h"

#define TS_URL_MAX_QUERY 16

typedef struct ts_url {
	char *scheme;  /* lower case: "smtp", "maildir", "-" ... */
	char *user;    /* decoded; NULL when absent */
	char *pass;    /* decoded; NULL when absent (a secret: zeroed on free) */
	char *host;    /* decoded; IPv6 literals without brackets; "" if none */
	int port;      /* 0 when absent */
	char *path;    /* "/x/y" (hierarchical) or the PATH of scheme:PATH */
	int opaque;    /* 1 for scheme:PATH and "-" */
	int nquery;
	char *qkey[TS_URL_MAX_QUERY];
	char *qval[TS_URL_MAX_QUERY]; /* decoded */
} ts_url;

/* Parse s into u (zeroed first). On success the caller frees u with
 * ts_url_free(). Errors: TS_ERR_CONFIG (d->msg says what is wrong, never
 * quoting the password), TS_ERR_NOMEM. */
ts_err ts_url_parse(const char *s, ts_url *u, ts_detail *d);

/* The decoded value of query key (exact match), or NULL. */
const char *ts_url_query(const ts_url *u, const char *key);

/* Every query key must be one of the NULL-terminated list allowed.
 * Errors: TS_ERR_CONFIG naming the first unknown key. */
ts_err ts_url_check_query(const ts_url *u, const char *const *allowed,
			  ts_detail *d);

/* A query flag: absent -> def; "1", "yes", "true", "on" -> 1; "0", "no",
 * "false", "off" -> 0; anything else -> -1. */
int ts_url_flag(const ts_url *u, const char *key, int def);

/* Percent-decode len bytes of s into a new NUL-terminated string. A '%' not
 * followed by two hex digits, or a decoded NUL byte, is an error (NULL with
 * *bad set); NULL with *bad clear means out of memory. */
char *ts_pct_decode(const char *s, size_t len, int *bad);

/* Rebuild the URL for logs with the password (and, when hide_user, the
 * user too) replaced by "***". Returns a malloc'd string or NULL. */
char *ts_url_describe(const ts_url *u, int hide_user);

/* Free what u owns (the password is zeroed first) and zero u. */
void ts_url_free(ts_url *u);

#endif
