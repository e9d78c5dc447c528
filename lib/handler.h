/* handler.h - run a task through a user-named handler: a command or an
 * HTTP endpoint (ts-worker --handler TYPE=COMMAND | TYPE=http(s)://URL).
 *
 * Command: run as `/bin/sh -c COMMAND` in its own process group, the task
 * envelope on stdin, nothing of the task in its argv. Exit 0 is done, 75
 * (EX_TEMPFAIL) transient, any other exit permanent; killed by a signal or
 * by the timeout (SIGTERM, then SIGKILL half a second later, to the whole
 * group) is transient. Its stdout and stderr are captured (bounded) for the
 * caller to log. The environment is the caller's minus TaskStream's own
 * secrets (TS_* variables naming a PASSWORD, AUTHKEY, TOKEN or SECRET),
 * plus TS_TASK_ID, TS_TASK_TYPE, TS_ATTEMPT and TRACEPARENT (when the task
 * has one).
 *
 * HTTP: POST the envelope (Content-Type: application/json) with headers
 * Idempotency-Key (the taskId, so the endpoint can spot a repeat),
 * TaskStream-Attempt and traceparent. 2xx is done; 408, 429, 5xx and
 * network failures transient (Retry-After kept); other statuses permanent
 * (classify.h).
 *
 * Threads: a ts_handler is read-only once parsed and may be shared. A
 * ts_handler_runner holds per-thread state (the HTTP connection, kept
 * alive between calls): one per thread.
 */
#ifndef TS_HANDLER_H
#define TS_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "task.h"
#include "util.h"

typedef enum ts_handler_kind {
	TS_HANDLER_COMMAND,
	TS_HANDLER_HTTP,
} ts_handler_kind;

typedef struct ts_handler {
	char type[TS_TASK_TYPE_MAX + 1];
	ts_handler_kind kind;
	char *target;    /* the command, or the URL (may hold credentials) */
	char *describe;  /* for logs: the command, or the URL with any
			    user:password replaced by *** */
} ts_handler;

/* Parse "TYPE=COMMAND" or "TYPE=http(s)://URL" into h (caller frees with
 * ts_handler_free). TYPE must be a valid task type.
 * Errors: TS_ERR_CONFIG (no '=', bad type, empty command, URL with
 * whitespace), TS_ERR_NOMEM. */
ts_err ts_handler_parse(const char *spec, ts_handler *h, ts_detail *d);

void ts_handler_free(ts_handler *h);

/* One call. body is the envelope (not necessarily NUL-terminated). */
typedef struct ts_handler_call {
	const char *body;
	size_t len;
	const char *task_id;
	const char *task_type;
	const char *traceparent;  /* NULL: none */
	int attempt;              /* 1 for the first */
	int64_t timeout_ms;       /* > 0 */
} ts_handler_call;

#define TS_HANDLER_CAPTURE_MAX 65536

typedef struct ts_handler_result {
	ts_err err;              /* TS_OK, TS_ERR_TRANSIENT, TS_ERR_PERMANENT */
	int64_t retry_after_ms;  /* HTTP Retry-After, or -1 */
	int status;              /* exit status, HTTP status; -1 when none */
	int timed_out;
	char msg[384];           /* what happened ("exit 1: <last stderr
				    line>", "HTTP 503: <body start>") */
	ts_buf out;              /* command stdout / HTTP reply body (bounded) */
	ts_buf errout;           /* command stderr (bounded) */
} ts_handler_result;

/* Free the buffers of r (r itself is the caller's). */
void ts_handler_result_free(ts_handler_result *r);

typedef struct ts_handler_runner ts_handler_runner;

/* Per-thread state. http_timeout_ms bounds each HTTP request.
 * Errors: TS_ERR_NOMEM. */
ts_err ts_handler_runner_new(int64_t http_timeout_ms, ts_handler_runner **out);
void ts_handler_runner_free(ts_handler_runner *rn);

/* Run one call. Always fills r (zero it first; free with
 * ts_handler_result_free). */
void ts_handler_run(ts_handler_runner *rn, const ts_handler *h,
		    const ts_handler_call *c, ts_handler_result *r);

/* SIGKILL the process group of every handler command running now (a
 * drain that ran out of time). Async-signal-unsafe; thread-safe. */
void ts_handler_kill_all(void);

#endif
