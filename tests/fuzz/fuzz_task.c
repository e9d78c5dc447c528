/* fuzz_task.c - the envelope and payload validator (lib/task.h).
 *
 * Input: one byte of options, then the JSON bytes handed to ts_task_parse().
 * Whatever is accepted must serialise (ts_task_to_json, and
 * ts_task_serialize byte for byte the same), that text must parse again to
 * the same task, and serialising that must give the very same text (a dead
 * letter piped back in is the same task). ts_task_encode(), the fast path,
 * must give the same error (code, field, message) or the same envelope
 * (up to a generated taskId and createdAt) as parse + serialise.
 * ts_task_encode_prefix(), given the whole input as ts-submit gives it what
 * it has read and not split, may take only the object the splitter would
 * return first, and must then encode it as ts_task_encode() does.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"
#include "task.h"

static void check(int ok, const char *what, const char *a, const char *b)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_task: %s\n  first:  %s\n  second: %s\n", what,
		a ? a : "(null)", b ? b : "(null)");
	abort();
}

/* Structural equality in order, linear in size (cJSON_Compare checks
 * objects both ways at every level: exponential in the depth). Numbers
 * within one DBL_EPSILON: cJSON prints 15 significant digits when that
 * reads back within it (0.30000000000000004 goes out as 0.3). */
static int same_json(const cJSON *a, const cJSON *b)
{
	if ((a->type & 0xff) != (b->type & 0xff))
		return 0;
	if (cJSON_IsNumber(a)) {
		double x = a->valuedouble, y = b->valuedouble;
		double m = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
		return x == y || fabs(x - y) <= m * DBL_EPSILON;
	}
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (!cJSON_IsArray(a) && !cJSON_IsObject(a))
		return 1;
	const cJSON *x = a->child, *y = b->child;
	for (; x && y; x = x->next, y = y->next) {
		if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0)
			return 0;
		if (!same_json(x, y))
			return 0;
	}
	return !x && !y;
}

static void same_task(const ts_task *a, const ts_task *b, const char *ja,
		      const char *jb)
{
	check(strcmp(a->task_id, b->task_id) == 0, "taskId changed", ja, jb);
	check(strcmp(a->task_type, b->task_type) == 0, "taskType changed", ja, jb);
	check(strcmp(a->created_at, b->created_at) == 0, "createdAt changed", ja, jb);
	check((!a->key && !b->key) || (a->key && b->key && strcmp(a->key, b->key) == 0),
	      "key changed", ja, jb);
	check(same_json(a->payload, b->payload), "payload changed", ja, jb);
	check(strcmp(ts_task_record_key(a), ts_task_record_key(b)) == 0,
	      "record key changed", ja, jb);
}

/* s with the first occurrence of from replaced by to (same length), in
 * place; from and to are taskIds or timestamps. */
static void swap_once(char *s, const char *from, const char *to)
{
	char *p = strstr(s, from);

	if (p && strlen(from) == strlen(to))
		memcpy(p, to, strlen(to));
}

/* The fast path against the slow one on the same input. */
static void check_encode(const char *buf, size_t size, const ts_task_opts *opts,
			 ts_err err1, const ts_detail *d1, const ts_task *t1,
			 const char *j1)
{
	ts_task t2;
	ts_detail d2;
	ts_buf out = { 0 };
	ts_err err2 = ts_task_encode(buf, size, opts, &t2, &out, &d2);

	if (err2 != err1) {
		fprintf(stderr, "parse: %d %s: %s / encode: %d %s: %s\n", err1,
			d1->field, d1->msg, err2, d2.field, d2.msg);
		check(0, "ts_task_encode and ts_task_parse disagree", j1, out.data);
	}
	if (err1) {
		check(strcmp(d1->field, d2.field) == 0 && strcmp(d1->msg, d2.msg) == 0,
		      "ts_task_encode gives another error detail", d1->msg, d2.msg);
	} else {
		check(out.data && strlen(out.data) == out.len, "encode output", j1, out.data);
		swap_once(out.data, t2.task_id, t1->task_id);
		swap_once(out.data, t2.created_at, t1->created_at);
		check(strcmp(j1, out.data) == 0, "ts_task_encode envelope differs", j1, out.data);
		check(strcmp(t1->task_type, t2.task_type) == 0, "encode: taskType", j1, t2.task_type);
		check((!t1->key && !t2.key) || (t1->key && t2.key && strcmp(t1->key, t2.key) == 0),
		      "encode: key", j1, t2.key);
		check((!t1->traceparent && !t2.traceparent) ||
		      (t1->traceparent && t2.traceparent && strcmp(t1->traceparent, t2.traceparent) == 0),
		      "encode: traceparent", j1, t2.traceparent);
	}
	ts_buf_free(&out);
	ts_task_free(&t2);
}

static int first_value(void *ctx, const ts_jsonvalue *v, ts_err err,
		       const ts_detail *d)
{
	ts_jsonvalue *first = ctx;

	(void)d;
	*first = *v;
	if (err)
		first->data = NULL;
	return 1;
}

static void check_prefix(const char *buf, size_t size, const ts_task_opts *opts)
{
	size_t len = size, used = 0;
	ts_jsonvalue first = { 0 };
	ts_task t1, t2;
	ts_buf o1 = { 0 }, o2 = { 0 };
	ts_detail d;

	if (len == 0 || buf[0] != '{') /* ts-submit peeks from a '{' */
		return;
	if (!ts_task_encode_prefix(buf, len, opts, &t1, &o1, &used)) {
		check(o1.len == 0, "encode_prefix declined but wrote", o1.data, "");
		ts_buf_free(&o1);
		return;
	}
	check(used >= 2 && used <= len, "encode_prefix: length out of range", buf, o1.data);
	ts_json_split(buf, size, first_value, &first);
	check(first.data == buf && first.len == used,
	      "encode_prefix took other bytes than the splitter's first value", buf, o1.data);
	check(ts_task_encode(buf, used, opts, &t2, &o2, &d) == TS_OK,
	      "encode_prefix took what ts_task_encode refuses", buf, d.msg);
	swap_once(o2.data, t2.task_id, t1.task_id);
	swap_once(o2.data, t2.created_at, t1.created_at);
	check(o1.len == o2.len && strcmp(o1.data, o2.data) == 0,
	      "encode_prefix envelope differs", o1.data, o2.data);
	check(strcmp(t1.task_type, t2.task_type) == 0, "encode_prefix: taskType",
	      t1.task_type, t2.task_type);
	check((!t1.key && !t2.key) || (t1.key && t2.key && strcmp(t1.key, t2.key) == 0),
	      "encode_prefix: key", t1.key, t2.key);
	check((!t1.traceparent && !t2.traceparent) ||
	      (t1.traceparent && t2.traceparent && strcmp(t1.traceparent, t2.traceparent) == 0),
	      "encode_prefix: traceparent", t1.traceparent, t2.traceparent);
	ts_buf_free(&o1);
	ts_buf_free(&o2);
	ts_task_free(&t1);
	ts_task_free(&t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { NULL, "email", "sms", "webhook" };
	ts_task_opts opts = { 0 };
	ts_task t1, t2;
	ts_detail d;
	char *j1, *j2;
	ts_err err;

	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	opts.force_type = types[sel & 3];
	if (sel & 4)
		opts.default_id = "idem-key.1:2";
	if (sel & 8)
		opts.default_traceparent =
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	data++, size--;

	/* Not NUL-terminated on purpose: the parser must respect len. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check_prefix(buf, size, &opts);
	err = ts_task_parse(buf, size, &opts, &t1, &d);
	if (err) {
		check(err == TS_ERR_DATA || err == TS_ERR_USAGE, "unexpected error class", d.msg, d.field);
		check(memchr(d.msg, 0, sizeof d.msg) != NULL, "detail not terminated", "", "");
		check(memchr(d.field, 0, sizeof d.field) != NULL, "field not terminated", "", "");
		check_encode(buf, size, &opts, err, &d, &t1, "");
		free(buf);
		ts_task_free(&t1);
		return 0;
	}
	check(ts_valid_task_id(t1.task_id), "accepted a bad taskId", t1.task_id, "");
	check(ts_valid_task_type(t1.task_type), "accepted a bad taskType", t1.task_type, "");
	check(!t1.traceparent || ts_valid_traceparent(t1.traceparent),
	      "accepted a bad traceparent", t1.traceparent, "");
	check(ts_payload_validate(t1.task_type, t1.payload, "payload", &d) == TS_OK,
	      "stored payload does not validate", d.field, d.msg);

	j1 = ts_task_to_json(&t1);
	check(j1 != NULL, "ts_task_to_json returned NULL", "", "");
	ts_buf ser = { 0 };
	check(ts_task_serialize(&t1, &ser) == TS_OK && ser.data &&
	      strcmp(ser.data, j1) == 0, "ts_task_serialize differs from ts_task_to_json",
	      j1, ser.data);
	ts_buf_free(&ser);
	check_encode(buf, size, &opts, TS_OK, &d, &t1, j1);
	free(buf);
	check(ts_json_check_bytes(j1, strlen(j1), &d) == TS_OK,
	      "serialised form fails the byte check", j1, d.msg);
	/* No traceparent in the value: it travels as a header. */
	err = ts_task_parse(j1, strlen(j1), NULL, &t2, &d);
	check(err == TS_OK, "serialised task does not parse again", j1, d.msg);
	same_task(&t1, &t2, j1, "");
	check(t2.traceparent == NULL, "traceparent leaked into the value", j1, "");
	j2 = ts_task_to_json(&t2);
	check(j2 != NULL && strcmp(j1, j2) == 0, "second serialisation differs", j1, j2);

	free(j1);
	free(j2);
	ts_task_free(&t1);
	ts_task_free(&t2);
	return 0;
}
