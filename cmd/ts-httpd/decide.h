/* decide.h - what ts-httpd does with a request, decided from its method,
 * URL, headers and body alone: no socket, no Kafka, no threads.
 *
 * server.c calls these from libmicrohttpd's callbacks (headers first, the
 * body once it is complete), tasks.c and notify.c build their answers with
 * them once the outcome is in, and tests/fuzz/fuzz_httpd.c drives the very
 * same functions with fuzzed requests. Every answer is a httpd_reply: the
 * status, the headers that depend on the request, and a JSON body.
 */
#ifndef TS_HTTPD_DECIDE_H
#define TS_HTTPD_DECIDE_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "kafka.h"
#include "task.h"
#include "transport.h"
#include "util.h"

enum route {
	ROUTE_TASKS,
	ROUTE_EMAIL,
	ROUTE_SMS,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_OTHER,
	ROUTE__COUNT
};

/* Generated taskIds come in runs on one partition, or a group of them
 * (ts_kafka_new_id);
 * the partition count is what the main thread's metadata requests say. */
typedef struct httpd_steer {
	ts_steer run;             /* the event thread's alone */
	atomic_int partitions;    /* 0: not known, or keys not placed by murmur2 */
} httpd_steer;

/* What the decisions depend on besides the request (from the options). */
typedef struct httpd_rules {
	const char *token;        /* --token-file content, or NULL: no auth */
	size_t token_len;
	int64_t max_body;         /* --max-body */
	int64_t max_task;         /* --max-task */
	int email, sms;           /* a transport is configured for it */
	int retry_after_s;        /* Retry-After of a 503 from Kafka */
	const char *topic;        /* named in 202 answers (Kafka's alphabet) */
	httpd_steer *steer;       /* NULL: generated ids are not steered */
} httpd_rules;

/* Looks up a request header by name (case-insensitively); NULL if absent.
 * The value must stay valid as long as the request does. */
typedef const char *(*httpd_header_fn)(void *ctx, const char *name);

/* An answer. content_type and allow are static strings. */
typedef struct httpd_reply {
	unsigned status;
	const char *content_type;
	const char *allow;        /* Allow header (405), or NULL */
	int retry_after_s;        /* > 0: a Retry-After header */
	ts_buf body;              /* owned; JSON (NDJSON for a batch) */
} httpd_reply;

/* What to do next. */
enum httpd_next {
	HTTPD_FAIL = -1,          /* out of memory: drop the connection */
	HTTPD_ANSWER,             /* send the reply */
	HTTPD_READ,               /* read the body, then httpd_decide_body() */
	HTTPD_HEALTHZ,            /* GET/HEAD /healthz: the server's state */
	HTTPD_METRICS,            /* GET/HEAD /metrics */
	HTTPD_PRODUCE,            /* produce the plan's items of status 0 */
	HTTPD_DELIVER,            /* deliver the plan's payload now */
};

/* What the headers said, for the body's turn. */
typedef struct httpd_head {
	enum route route;
	int ndjson;               /* POST /tasks with application/x-ndjson */
	int64_t expect_len;       /* Content-Length, or -1 */
	const char *idem_key;     /* valid Idempotency-Key, or NULL */
	const char *traceparent;  /* valid traceparent header, or NULL */
} httpd_head;

struct request;

/* One task of POST /tasks: the one of a JSON body, or one NDJSON line. */
typedef struct item {
	struct request *req;      /* the server's, NULL here */
	long line;
	int status;               /* 0: to be produced; 202, 400, 413, 500, 502, 503 */
	int32_t partition;
	int64_t offset;
	int64_t produced_us;      /* the server's, for the latency histogram */
	char *error;              /* malloc'd, for status >= 400 */
	char *field;              /* malloc'd or NULL */
	char task_id[TS_TASK_ID_MAX + 1]; /* once parsed; else "" */
	size_t src_off, src_len;  /* where its JSON is in the body */
	/* the record, while status is 0 (the producer takes env's memory) */
	ts_buf env;               /* the value: the envelope */
	char *key;                /* malloc'd record key; NULL: the taskId */
	char *traceparent;        /* malloc'd record header, or NULL */
} item;

/* The work a body asks for. items points at one when there is a single
 * task, so a plan must not be copied once decided. */
typedef struct httpd_plan {
	item *items;
	size_t nitems;
	size_t nready;            /* items of status 0 */
	item one;
	ts_channel channel;       /* HTTPD_DELIVER */
	cJSON *payload;           /* HTTPD_DELIVER; owned */
} httpd_plan;

enum route httpd_route_of(const char *url);
/* "/tasks", ..., "other": for metrics. */
const char *httpd_route_name(enum route route);

/* Decide from the request line and headers, before any of the body is
 * read: 404, 405 (with Allow), 401, 415, 400 (Idempotency-Key), 413 (by
 * Content-Length); else HTTPD_READ for a POST, HTTPD_HEALTHZ or
 * HTTPD_METRICS for a GET. Fills head; on HTTPD_ANSWER, reply (free it with
 * httpd_reply_free). */
enum httpd_next httpd_decide_head(const httpd_rules *rules, const char *method,
				  const char *url, httpd_header_fn header,
				  void *ctx, httpd_head *head,
				  httpd_reply *reply);

/* May a body of have bytes take more? (--max-body) */
int httpd_body_fits(const httpd_rules *rules, size_t have, size_t more);

/* Decide from the whole body: 400, 413, 501 (HTTPD_ANSWER); HTTPD_PRODUCE
 * with plan->items (each either ready with status 0, or with its error);
 * HTTPD_DELIVER with plan->channel and plan->payload. A body over
 * --max-body is answered 413. Free plan with httpd_plan_free. */
enum httpd_next httpd_decide_body(const httpd_rules *rules,
				  const httpd_head *head, const char *body,
				  size_t len, httpd_plan *plan,
				  httpd_reply *reply);
void httpd_plan_free(httpd_plan *plan);

/* The 413 of a body over --max-body. Errors: TS_ERR_NOMEM. */
ts_err httpd_reply_too_large(const httpd_rules *rules, httpd_reply *reply);
/* {"error":msg,"field":field}; an empty field is null. A 503 gets
 * retry_after_s. Errors: TS_ERR_NOMEM. */
ts_err httpd_reply_error(httpd_reply *reply, unsigned status, const char *msg,
			 const char *field, const char *allow,
			 int retry_after_s);
/* The answer of POST /tasks once every item has its outcome (202 with
 * partition and offset, or an error). Errors: TS_ERR_NOMEM. */
ts_err httpd_reply_tasks(const httpd_rules *rules, const httpd_head *head,
			 const httpd_plan *plan, httpd_reply *reply);
/* The answer of a notification after its delivery. Errors: TS_ERR_NOMEM. */
ts_err httpd_reply_sent(const ts_send_result *sent, httpd_reply *reply);
void httpd_reply_free(httpd_reply *reply);

/* An item's outcome is an error (msg copied; field may be NULL). */
void httpd_item_fail(item *it, int status, const char *msg, const char *field);
/* An item's outcome for metrics: index of httpd_result_names. */
enum { RESULT_ACCEPTED, RESULT_INVALID, RESULT_UNAVAILABLE, RESULT_FAILED,
       RESULT__COUNT };
extern const char *const httpd_result_names[RESULT__COUNT];
int httpd_item_result(int status);
/* The record key of a ready item. */
static inline const char *httpd_item_key(const item *it)
{
	return it->key ? it->key : it->task_id;
}

/* A plain string, without printf (JSON strings: ts_buf_append_json,
 * integers: ts_buf_append_int). Errors: TS_ERR_NOMEM. */
ts_err httpd_append(ts_buf *b, const char *s);

#endif
