/* fuzz_task.c - the envelope and payload validator (lib/task.h).
 *
 * Input: one byte of options, then the JSON bytes handed to ts_task_parse().
 * Whatever is accepted must serialise (ts_task_to_json), that text must
 * parse again to the same task, and serialising that must give the very
 * same text (a dead letter piped back in is the same task).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

static void check(int ok, const char *what, const char *a, const char *b)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_task: %s\n  first:  %s\n  second: %s\n", what,
		a ? a : "(null)", b ? b : "(null)");
	abort();
}

static void same_task(const ts_task *a, const ts_task *b, const char *ja,
		      const char *jb)
{
	check(strcmp(a->task_id, b->task_id) == 0, "taskId changed", ja, jb);
	check(strcmp(a->task_type, b->task_type) == 0, "taskType changed", ja, jb);
	check(strcmp(a->created_at, b->created_at) == 0, "createdAt changed", ja, jb);
	check((!a->key && !b->key) || (a->key && b->key && strcmp(a->key, b->key) == 0),
	      "key changed", ja, jb);
	check(cJSON_Compare(a->payload, b->payload, 1), "payload changed", ja, jb);
	check(strcmp(ts_task_record_key(a), ts_task_record_key(b)) == 0,
	      "record key changed", ja, jb);
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
	err = ts_task_parse(buf, size, &opts, &t1, &d);
	free(buf);
	if (err) {
		check(err == TS_ERR_DATA || err == TS_ERR_USAGE, "unexpected error class", d.msg, d.field);
		check(memchr(d.msg, 0, sizeof d.msg) != NULL, "detail not terminated", "", "");
		check(memchr(d.field, 0, sizeof d.field) != NULL, "field not terminated", "", "");
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
