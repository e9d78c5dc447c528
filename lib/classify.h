/* classify.h - the one failure classifier every tool uses (DESIGN.md,
 * "Failure classes"). Transient means "try again later"; permanent means
 * retrying will not fix it.
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

/* Parse a Retry-After value (delta-seconds or an HTTP-date) into
 * milliseconds from now; -1 when absent or unparseable. */
int64_t ts_parse_retry_after(const char *value);

#endif
