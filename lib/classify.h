/* classify.h - the one failure classifier every tool uses (DESIGN.md,
 * "Failure classes"). Transient means "try again later"; permanent means
 * retrying will not fix it.
 *
 * Transient: SMTP 4xx, no SMTP reply, connection refused or reset, DNS
 * failures, timeouts, HTTP 408, 429 and 5xx. Permanent: SMTP 5xx, other HTTP
 * 4xx, a provider's error body, authentication failures, a certificate that
 * fails verification, STARTTLS missing where it is required.
 */
#ifndef TS_CLASSIFY_H
#define TS_CLASSIFY_H

#include <stdint.h>

#include "err.h"

/* SMTP reply code: 2xx TS_OK, 4xx TS_ERR_TRANSIENT, 5xx TS_ERR_PERMANENT,
 * anything else (no reply) TS_ERR_TRANSIENT. */
ts_err ts_classify_smtp(int code);

/* HTTP status: 2xx TS_OK; 408, 429 and 5xx TS_ERR_TRANSIENT; other 4xx (and
 * anything else) TS_ERR_PERMANENT. 0 (no response) TS_ERR_TRANSIENT. */
ts_err ts_classify_http(long status);

/* A libcurl result code (CURLcode as int): connection refused/reset, DNS,
 * timeouts and send/receive errors are TS_ERR_TRANSIENT; certificate
 * failures, bad URLs, and unsupported protocols TS_ERR_PERMANENT. */
ts_err ts_classify_curl(int curlcode);

/* An errno from a network call (connect, send, recv, getaddrinfo's
 * EAI_SYSTEM): refused, reset, unreachable, timed out, interrupted and
 * out-of-resource errors are TS_ERR_TRANSIENT; anything else (EACCES,
 * EAFNOSUPPORT, EINVAL ...) TS_ERR_PERMANENT. 0 is TS_OK. */
ts_err ts_classify_errno(int errnum);

/* Parse a Retry-After value (delta-seconds or an HTTP-date) into
 * milliseconds from now; -1 when absent or unparseable. A date in the past
 * gives 0; values are capped at one day. */
int64_t ts_parse_retry_after(const char *value);

/* The class name used in result lines and dead-letter headers:
 * TS_OK "sent", TS_ERR_TRANSIENT "transient", TS_ERR_DATA "invalid",
 * TS_ERR_PERMANENT and every other code "permanent". Never NULL. */
const char *ts_class_name(ts_err err);

#endif
