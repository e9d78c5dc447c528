/* task.h - the task envelope: parse, validate, serialise.
 *
 * The envelope is DESIGN.md's Kafka record value:
 *   {"taskId","taskType","payload","createdAt"[,"key"]}
 * plus "traceparent", which travels as a record header, never in the value.
 * Built-in payloads (email, sms) are validated strictly, with errors naming
 * the field path ("payload.to[1]: not an email address").
 */
#ifndef TS_TASK_H
#define TS_TASK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"
#include "util.h"

#define TS_TASK_ID_MAX 128
#define TS_TASK_TYPE_MAX 64
#define TS_TRACEPARENT_MAX 55   /* version 00: 2+1+32+1+16+1+2 */

typedef struct ts_task {
	char task_id[TS_TASK_ID_MAX + 1];
	char task_type[TS_TASK_TYPE_MAX + 1];
	char created_at[40];
	cJSON *payload;        /* owned; a JSON object */
	char *key;             /* owned; NULL when the input gave none */
	char *traceparent;     /* owned; NULL when none */
} ts_task;

/* Options for ts_task_parse(). Zero-initialise for the defaults. */
typedef struct ts_task_opts {
	/* Non-NULL: the whole input object is the payload of a task of this
	 * type (ts-submit --type). */
	const char *force_type;
	/* Non-NULL: use as taskId when the input has none (Idempotency-Key). */
	const char *default_id;
	/* Non-NULL: traceparent when the input has none (TRACEPARENT env). */
	const char *default_traceparent;
	/* Non-zero: default_id is a UUID v4 the caller generated, so its
	 * syntax is not checked again (an input's own taskId always is). */
	int default_id_generated;
	/* Non-NULL: createdAt for a task whose input has none, in place of
	 * the time now (a producer that stamps a whole batch with one clock
	 * read). Taken as it is: an RFC 3339 time the caller formatted. */
	const char *created_at;
} ts_task_opts;

/* Check raw bytes before they reach the JSON parser: valid UTF-8 (no
 * overlongs, no surrogates), no NUL byte, no \u0000 escape. These would
 * otherwise be silently truncated or passed on to SMTP headers.
 * Errors: TS_ERR_DATA with d->msg saying what and where (byte offset). */
ts_err ts_json_check_bytes(const char *buf, size_t len, ts_detail *d);

/* Parse and validate one task from len bytes of JSON (a bare request
 * {"taskType","payload"} or a full envelope). Fills t; on success the caller
 * owns it and frees it with ts_task_free(). Missing taskId -> new UUID v4;
 * missing createdAt -> now.
 * Errors: TS_ERR_DATA (d->field is the path, d->msg the reason),
 *         TS_ERR_NOMEM, TS_ERR_INTERNAL (no randomness for the id). */
ts_err ts_task_parse(const char *json, size_t len, const ts_task_opts *opts,
		     ts_task *t, ts_detail *d);

/* Same, from an already parsed object (not consumed; payload is copied). */
ts_err ts_task_from_json(const cJSON *obj, const ts_task_opts *opts,
			 ts_task *t, ts_detail *d);

/* Validate a payload for a type. Built-in types are checked strictly; any
 * other type only needs an object. Paths are prefixed with prefix
 * ("payload" in envelopes, "" for the notification API's bare bodies).
 * Errors: TS_ERR_DATA. */
ts_err ts_payload_validate(const char *type, const cJSON *payload,
			   const char *prefix, ts_detail *d);

/* Serialise the envelope (the record value: no traceparent) as compact
 * JSON. Returns a malloc'd NUL-terminated string (free with free()) or NULL
 * when out of memory. */
char *ts_task_to_json(const ts_task *t);

/* Append the same envelope as ts_task_to_json(), byte for byte, to out
 * (not NUL-counted in out->len, but NUL-terminated). Cheaper: the payload
 * is printed in place, never copied as a tree. For producers that hand the
 * bytes on at once (ts-submit reuses one buffer).
 * Errors: TS_ERR_NOMEM (out keeps what it had). */
ts_err ts_task_serialize(const ts_task *t, ts_buf *out);

/* ts_task_parse() then ts_task_serialize(), with the same results and the
 * same errors, only faster: a small input of common shape is checked and
 * printed without building a heap tree. On success t is filled except
 * t->payload, which is NULL (the payload exists only as bytes in out);
 * free t with ts_task_free(). The envelope is appended to out.
 * Errors: as ts_task_parse(), and TS_ERR_NOMEM. */
ts_err ts_task_encode(const char *json, size_t len, const ts_task_opts *opts,
		      ts_task *t, ts_buf *out, ts_detail *d);

/* ts_task_encode() of the JSON object json starts with, for a reader that
 * has not split its input yet: the object's end is found here, at most len
 * bytes on, and it must hold no line feed (a JSON Lines splitter would end
 * it there). Only the fast path: returns 1 with *used set to the object's
 * length when ts_task_encode(json, *used, ...) would succeed, with the same
 * t and the same envelope appended to out; else 0, out unchanged, and the
 * caller splits its input and calls ts_task_encode() (a value the fast path
 * does not take, and every error, end up there). */
int ts_task_encode_prefix(const char *json, size_t len,
			  const ts_task_opts *opts, ts_task *t, ts_buf *out,
			  size_t *used);

/* The record key: t->key if given, else the taskId. */
const char *ts_task_record_key(const ts_task *t);

/* Free what t owns and zero it. Safe on a zeroed task. */
void ts_task_free(ts_task *t);

/* Syntax checks, exposed for the other entry points and tests. Each returns
 * non-zero when s is acceptable. */
int ts_valid_task_id(const char *s);
int ts_valid_task_type(const char *s);
int ts_valid_traceparent(const char *s);
int ts_valid_email_address(const char *s);  /* addr-spec, <= 254 chars */
int ts_valid_mobile(const char *s);         /* +? then 8-15 digits */

#endif
