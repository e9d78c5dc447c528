/* http.h - a small HTTP client for the transports: one libcurl easy handle
 * per ts_http, reused between requests (keep-alive).
 *
 * Threads: a ts_http is used by one thread at a time. ts_http_new() does
 * libcurl's global initialisation once, under a lock.
 */
#ifndef TS_HTTP_H
#define TS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

typedef struct ts_http ts_http;

typedef struct ts_http_reply {
	int curlcode;          /* CURLcode; 0 when an HTTP reply came */
	long status;           /* HTTP status, 0 when none */
	int64_t retry_after_ms;/* from Retry-After, or -1 */
	ts_buf body;           /* the reply body (bounded), NUL-terminated */
	char error[256];       /* libcurl's message when curlcode != 0 */
} ts_http_reply;

/* A request. headers: NULL-terminated "Name: value" strings or NULL.
 * user/pass: HTTP basic auth when user is non-NULL. */
typedef struct ts_http_request {
	const char *url;
	const char *content_type;
	const char *body;
	size_t body_len;
	const char *const *headers;
	const char *user;
	const char *pass;
} ts_http_request;

/* New client: timeout_ms bounds connecting and the whole request;
 * insecure skips certificate and host name checks (https).
 * Errors: TS_ERR_NOMEM, TS_ERR_INTERNAL (libcurl would not initialise). */
ts_err ts_http_new(int64_t timeout_ms, int insecure, ts_http **out);

/* POST req and fill r (always; free r with ts_http_reply_free()).
 * Returns TS_OK when an HTTP reply of any status came, else
 * TS_ERR_TRANSIENT or TS_ERR_PERMANENT as classify.h says of the libcurl
 * error (r->curlcode, r->error), or TS_ERR_NOMEM. */
ts_err ts_http_post(ts_http *h, const ts_http_request *req, ts_http_reply *r);

void ts_http_reply_free(ts_http_reply *r);

/* Free the client. NULL is fine. */
void ts_http_free(ts_http *h);

/* Percent-encode s for a form body or a URL path segment (RFC 3986
 * unreserved characters kept). Appends to out. */
ts_err ts_http_escape(ts_buf *out, const char *s);

#endif
