/* test_task.c - the task envelope, built-in payloads and hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "task.h"
#include "util.h"

#include "testutil.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static ts_task T;     /* the last parsed task, freed between parses */
static ts_detail D;

static int task_setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof T);
	memset(&D, 0, sizeof D);
	return 0;
}

static int task_teardown(void **state)
{
	(void)state;
	ts_task_free(&T);
	return 0;
}

/* ts_task_encode() promises ts_task_parse()'s results and errors, and
 * ts_task_to_json()'s bytes: hold it to that on every input of this file. */
static void same_as_encode(const char *copy, size_t len, const ts_task_opts *o,
			   ts_err r)
{
	ts_task t2;
	ts_detail d2;
	ts_buf out = { 0 };
	ts_err r2 = ts_task_encode(copy, len, o, &t2, &out, &d2);

	if (r2 != r)
		fail_msg("ts_task_encode: %d (%s: %s), ts_task_parse: %d (%s: %s)\n  input: %.*s",
			 r2, d2.field, d2.msg, r, D.field, D.msg,
			 (int)(len < 300 ? len : 300), copy);
	if (r != TS_OK) {
		if (strcmp(d2.field, D.field) != 0 || strcmp(d2.msg, D.msg) != 0)
			fail_msg("ts_task_encode: \"%s: %s\", ts_task_parse: \"%s: %s\"\n  input: %.*s",
				 d2.field, d2.msg, D.field, D.msg,
				 (int)(len < 300 ? len : 300), copy);
	} else {
		/* the same envelope, but for a generated id and time */
		ts_task same = T;
		char *want;

		assert_null(t2.payload);
		assert_string_equal(t2.task_type, T.task_type);
		assert_true((t2.key == NULL) == (T.key == NULL));
		if (T.key)
			assert_string_equal(t2.key, T.key);
		assert_true((t2.traceparent == NULL) == (T.traceparent == NULL));
		if (T.traceparent)
			assert_string_equal(t2.traceparent, T.traceparent);
		memcpy(same.task_id, t2.task_id, sizeof same.task_id);
		memcpy(same.created_at, t2.created_at, sizeof same.created_at);
		want = ts_task_to_json(&same);
		assert_non_null(want);
		assert_non_null(out.data);
		if (strcmp(out.data, want) != 0)
			fail_msg("ts_task_encode wrote\n  %.300s\nts_task_to_json\n  %.300s",
				 out.data, want);
		free(want);
	}
	ts_task_free(&t2);
	ts_buf_free(&out);
}

/* Parse from an exact-size heap copy with no NUL after it, so that a read
 * past the end shows up under AddressSanitizer. */
static ts_err parse_n(const char *json, size_t len, const ts_task_opts *o)
{
	char *copy = malloc(len ? len : 1);
	ts_err r;

	assert_non_null(copy);
	memcpy(copy, json, len);
	ts_task_free(&T);
	r = ts_task_parse(copy, len, o, &T, &D);
	same_as_encode(copy, len, o, r);
	free(copy);
	return r;
}

static void ok_at(int line, const char *json, size_t len, const ts_task_opts *o)
{
	ts_err r = parse_n(json, len, o);

	if (r != TS_OK)
		fail_msg("line %d: rejected (%d) %s: %s\n  input: %.*s", line,
			 r, D.field, D.msg, (int)(len < 300 ? len : 300), json);
	assert_non_null(T.payload);
	assert_true(cJSON_IsObject(T.payload));
}

static void bad_at(int line, const char *json, size_t len,
		   const ts_task_opts *o, ts_err want, const char *field,
		   const char *msg)
{
	ts_err r = parse_n(json, len, o);

	if (r != want)
		fail_msg("line %d: got %d (%s: %s), want %d\n  input: %.*s",
			 line, r, D.field, D.msg, want,
			 (int)(len < 300 ? len : 300), json);
	if (field && strcmp(D.field, field) != 0)
		fail_msg("line %d: field \"%s\", want \"%s\" (msg: %s)", line,
			 D.field, field, D.msg);
	if (msg && !strstr(D.msg, msg))
		fail_msg("line %d: msg \"%s\" lacks \"%s\"", line, D.msg, msg);
	/* a failed parse leaves nothing behind */
	assert_null(T.payload);
	assert_null(T.key);
	assert_null(T.traceparent);
}

#define OK(json) ok_at(__LINE__, (json), strlen(json), NULL)
#define OKO(json, o) ok_at(__LINE__, (json), strlen(json), (o))
#define BAD(json, field, msg) \
	bad_at(__LINE__, (json), strlen(json), NULL, TS_ERR_DATA, (field), (msg))
#define BADO(json, o, err, field, msg) \
	bad_at(__LINE__, (json), strlen(json), (o), (err), (field), (msg))
/* raw bytes, including NUL: a string literal's length */
#define BADRAW(lit, msg) \
	bad_at(__LINE__, (lit), sizeof(lit) - 1, NULL, TS_ERR_DATA, NULL, (msg))
#define OKRAW(lit) ok_at(__LINE__, (lit), sizeof(lit) - 1, NULL)

/* {"taskType":"email","payload":<payload>} in a static buffer. */
static const char *email(const char *payload)
{
	static char buf[65536];
	int n = snprintf(buf, sizeof buf, "{\"taskType\":\"email\",\"payload\":%s}", payload);

	assert_true(n > 0 && (size_t)n < sizeof buf);
	return buf;
}

static const char *sms(const char *payload)
{
	static char buf[4096];
	int n = snprintf(buf, sizeof buf, "{\"taskType\":\"sms\",\"payload\":%s}", payload);

	assert_true(n > 0 && (size_t)n < sizeof buf);
	return buf;
}

#define MAIL "\"to\":\"user@example.com\",\"subject\":\"Hello\",\"body\":\"Welcome!\""


static int is_rfc3339_ms(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (strlen(s) != sizeof pat - 1)
		return 0;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return 0;
	return 1;
}

/* The serialised envelope of T, parsed back. Caller deletes. */
static cJSON *envelope_json(void)
{
	char *s = ts_task_to_json(&T);
	cJSON *o;

	assert_non_null(s);
	o = cJSON_Parse(s);
	free(s);
	assert_non_null(o);
	return o;
}

/* ---- envelope ----------------------------------------------------------- */

static void test_bare_request(void **state)
{
	cJSON *want, *env;

	(void)state;
	OK("{\"taskType\":\"email\",\"payload\":{" MAIL "}}");
	assert_string_equal(T.task_type, "email");
	if (!is_uuid4(T.task_id))
		fail_msg("generated taskId is not a UUID v4: %s", T.task_id);
	if (!is_rfc3339_ms(T.created_at))
		fail_msg("generated createdAt: %s", T.created_at);
	assert_null(T.key);
	assert_null(T.traceparent);
	assert_string_equal(ts_task_record_key(&T), T.task_id);
	want = cJSON_Parse("{" MAIL "}");
	assert_true(cJSON_Compare(T.payload, want, 1));
	cJSON_Delete(want);

	/* the envelope: exactly the four fields, no key */
	env = envelope_json();
	assert_int_equal(cJSON_GetArraySize(env), 4);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(env, "taskId")->valuestring, T.task_id);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(env, "taskType")->valuestring, "email");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(env, "createdAt")->valuestring, T.created_at);
	assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(env, "payload"), T.payload, 1));
	assert_null(cJSON_GetObjectItemCaseSensitive(env, "key"));
	cJSON_Delete(env);
}

static void test_createdat_generated_is_now(void **state)
{
	struct tm tm;
	time_t before = realtime_sec(), t;

	(void)state;
	OK("{\"taskType\":\"x\",\"payload\":{}}");
	memset(&tm, 0, sizeof tm);
	assert_non_null(strptime(T.created_at, "%Y-%m-%dT%H:%M:%S", &tm));
	t = timegm(&tm);
	assert_in_range(t, before, realtime_sec());
}

static void test_full_envelope(void **state)
{
	const char *in =
		"{\"taskId\":\"1b4e28ba-2fa1-4d2e-9c4a-5f8e1d2a3b4c\",\"taskType\":\"email\","
		"\"payload\":{" MAIL "},\"createdAt\":\"2026-11-29T07:00:00.123Z\","
		"\"key\":\"customer-42\",\"traceparent\":\"" TP "\"}";
	cJSON *env;
	char *s, *s2;

	(void)state;
	OK(in);
	assert_string_equal(T.task_id, "1b4e28ba-2fa1-4d2e-9c4a-5f8e1d2a3b4c");
	assert_string_equal(T.created_at, "2026-11-29T07:00:00.123Z");
	assert_string_equal(T.key, "customer-42");
	assert_string_equal(T.traceparent, TP);
	assert_string_equal(ts_task_record_key(&T), "customer-42");

	/* key stays in the value, traceparent leaves it */
	s = ts_task_to_json(&T);
	assert_non_null(s);
	assert_null(strstr(s, "traceparent"));
	assert_null(strstr(s, "4bf92f3577b34da6"));
	env = cJSON_Parse(s);
	assert_non_null(env);
	assert_int_equal(cJSON_GetArraySize(env), 5);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(env, "key")->valuestring, "customer-42");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(env, "taskId")->valuestring, T.task_id);
	cJSON_Delete(env);

	/* a dead-lettered value piped back in gives the same envelope */
	OK(s);
	s2 = ts_task_to_json(&T);
	assert_string_equal(s, s2);
	assert_string_equal(ts_task_record_key(&T), "customer-42");
	assert_null(T.traceparent);
	free(s);
	free(s2);
}

static void test_generated_ids_differ(void **state)
{
	char first[TS_TASK_ID_MAX + 1];

	(void)state;
	OK("{\"taskType\":\"x\",\"payload\":{}}");
	snprintf(first, sizeof first, "%s", T.task_id);
	OK("{\"taskType\":\"x\",\"payload\":{}}");
	assert_true(is_uuid4(first));
	assert_true(is_uuid4(T.task_id));
	assert_string_not_equal(first, T.task_id);
}

static void test_task_id(void **state)
{
	char buf[512], id[200];

	(void)state;
	OK("{\"taskId\":\"a.b_c:d-E9\",\"taskType\":\"x\",\"payload\":{}}");
	assert_string_equal(T.task_id, "a.b_c:d-E9");
	assert_string_equal(ts_task_record_key(&T), "a.b_c:d-E9");

	memset(id, 'a', 128);
	id[128] = '\0';
	snprintf(buf, sizeof buf, "{\"taskId\":\"%s\",\"taskType\":\"x\",\"payload\":{}}", id);
	OK(buf);
	assert_string_equal(T.task_id, id);
	id[128] = 'a';
	id[129] = '\0';
	snprintf(buf, sizeof buf, "{\"taskId\":\"%s\",\"taskType\":\"x\",\"payload\":{}}", id);
	BAD(buf, "taskId", "1-128");

	BAD("{\"taskId\":\"\",\"taskType\":\"x\",\"payload\":{}}", "taskId", NULL);
	BAD("{\"taskId\":\"a b\",\"taskType\":\"x\",\"payload\":{}}", "taskId", NULL);
	BAD("{\"taskId\":\"a/b\",\"taskType\":\"x\",\"payload\":{}}", "taskId", NULL);
	BAD("{\"taskId\":\"caf\xc3\xa9\",\"taskType\":\"x\",\"payload\":{}}", "taskId", NULL);
	BAD("{\"taskId\":42,\"taskType\":\"x\",\"payload\":{}}", "taskId", "must be a string");
	BAD("{\"taskId\":null,\"taskType\":\"x\",\"payload\":{}}", "taskId", "must be a string");
}

static void test_key(void **state)
{
	char buf[2200], key[1100];

	(void)state;
	memset(key, 'k', 1024);
	key[1024] = '\0';
	snprintf(buf, sizeof buf, "{\"key\":\"%s\",\"taskType\":\"x\",\"payload\":{}}", key);
	OK(buf);
	assert_string_equal(ts_task_record_key(&T), key);
	key[1024] = 'k';
	key[1025] = '\0';
	snprintf(buf, sizeof buf, "{\"key\":\"%s\",\"taskType\":\"x\",\"payload\":{}}", key);
	BAD(buf, "key", NULL);
	BAD("{\"key\":\"\",\"taskType\":\"x\",\"payload\":{}}", "key", NULL);
	BAD("{\"key\":7,\"taskType\":\"x\",\"payload\":{}}", "key", "must be a string");
	/* any UTF-8 is fine in a key */
	OK("{\"key\":\"kund\xc3\xa9 42\",\"taskType\":\"x\",\"payload\":{}}");
	assert_string_equal(T.key, "kund\xc3\xa9 42");
}

static void test_traceparent(void **state)
{
	ts_task_opts o = { .default_traceparent = TP };
	char *s;

	(void)state;
	OK("{\"taskType\":\"x\",\"payload\":{},\"traceparent\":\"" TP "\"}");
	assert_string_equal(T.traceparent, TP);
	s = ts_task_to_json(&T);
	assert_non_null(s);
	assert_null(strstr(s, "traceparent"));
	free(s);

	/* the default applies only when the input has none */
	OKO("{\"taskType\":\"x\",\"payload\":{}}", &o);
	assert_string_equal(T.traceparent, TP);
	OKO("{\"taskType\":\"x\",\"payload\":{},\"traceparent\":"
	    "\"00-11111111111111111111111111111111-2222222222222222-00\"}", &o);
	assert_string_equal(T.traceparent, "00-11111111111111111111111111111111-2222222222222222-00");
	/* a bad default is an error too */
	o.default_traceparent = "garbage";
	BADO("{\"taskType\":\"x\",\"payload\":{}}", &o, TS_ERR_DATA, "traceparent", NULL);

#define BADTP(v) BAD("{\"taskType\":\"x\",\"payload\":{},\"traceparent\":\"" v "\"}", "traceparent", "traceparent")
	BADTP("");
	BADTP("garbage");
	BADTP("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
	BADTP("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01");
	BADTP("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A");
	BADTP("00-00000000000000000000000000000000-00f067aa0ba902b7-01");
	BADTP("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01");
	BADTP("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	BADTP("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-");
	BADTP("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-011");
	BADTP("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01");
	BADTP("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g");
	BAD("{\"taskType\":\"x\",\"payload\":{},\"traceparent\":5}", "traceparent", "must be a string");
}

static void test_created_at(void **state)
{
	(void)state;
#define CA(v) "{\"taskType\":\"x\",\"payload\":{},\"createdAt\":\"" v "\"}"
	OK(CA("2026-11-29T07:00:00.123Z"));
	assert_string_equal(T.created_at, "2026-11-29T07:00:00.123Z");
	OK(CA("2026-11-29T07:00:00Z"));
	assert_string_equal(T.created_at, "2026-11-29T07:00:00Z");
	OK(CA("2026-11-29T07:00:00.123456789+05:30"));
	assert_string_equal(T.created_at, "2026-11-29T07:00:00.123456789+05:30");
	OK(CA("2026-11-29T07:00:00-08:00"));

	BAD(CA(""), "createdAt", "RFC 3339");
	BAD(CA("2026-11-29"), "createdAt", NULL);
	BAD(CA("2026-11-29 07:00:00Z"), "createdAt", NULL);
	BAD(CA("2026-11-29T07:00:00"), "createdAt", NULL);
	BAD(CA("2026-11-29T07:00:00.Z"), "createdAt", NULL);
	BAD(CA("2026-11-29T07:00:00.1234567890Z"), "createdAt", NULL);
	BAD(CA("2026-11-29T07:00:00Zjunk"), "createdAt", NULL);
	BAD(CA("2026-11-29T07:00:00+0530"), "createdAt", NULL);
	BAD(CA("2026-11-29T07:00:00+05:3"), "createdAt", NULL);
	BAD(CA("26-11-29T07:00:00Z"), "createdAt", NULL);
	BAD("{\"taskType\":\"x\",\"payload\":{},\"createdAt\":1764399600}", "createdAt", "must be a string");
}

static void test_unknown_top_level(void **state)
{
	static const char *const names[] = {
		"taskid", "type", "TaskId", "payload2", "created_at", "traceParent",
		"id", "", "headers",
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(buf, sizeof buf,
			 "{\"taskType\":\"x\",\"payload\":{},\"%s\":\"v\"}", names[i]);
		bad_at(__LINE__, buf, strlen(buf), NULL, TS_ERR_DATA, names[i],
		       "unknown field");
	}
	/* reported even when something else is wrong too */
	BAD("{\"typo\":1}", "typo", "unknown field");
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	BAD("{\"taskType\":\"x\",\"taskType\":\"y\",\"payload\":{}}", "taskType", "twice");
	BAD("{\"taskType\":\"x\",\"payload\":{},\"payload\":{\"a\":1}}", "payload", "twice");
	BAD("{\"taskId\":\"a\",\"taskType\":\"x\",\"payload\":{},\"taskId\":\"b\"}", "taskId", "twice");
	BAD("{\"key\":\"a\",\"taskType\":\"x\",\"payload\":{},\"key\":\"a\"}", "key", "twice");
	/* inside a built-in payload: a consumer that keeps the last one would
	 * otherwise see a value that was never validated */
	BAD(email("{" MAIL ",\"subject\":\"x\\r\\nBcc: victim@example.com\"}"),
	    "payload.subject", "twice");
	BAD(email("{" MAIL ",\"to\":\"other@example.com\"}"), "payload.to", "twice");
	BAD(sms("{\"mobile\":\"+919876543210\",\"mobile\":\"x\"}"), "payload.mobile", "twice");
	/* a custom type's payload is its own business */
	OK("{\"taskType\":\"x\",\"payload\":{\"a\":1,\"a\":2}}");
}

static void test_task_type(void **state)
{
	char buf[256], type[80];

	(void)state;
	OK("{\"taskType\":\"a\",\"payload\":{}}");
	OK("{\"taskType\":\"report.daily-v2_x\",\"payload\":{}}");
	memset(type, 'a', 64);
	type[64] = '\0';
	snprintf(buf, sizeof buf, "{\"taskType\":\"%s\",\"payload\":{}}", type);
	OK(buf);
	assert_string_equal(T.task_type, type);
	type[64] = 'a';
	type[65] = '\0';
	snprintf(buf, sizeof buf, "{\"taskType\":\"%s\",\"payload\":{}}", type);
	BAD(buf, "taskType", "[a-z]");

	BAD("{\"taskType\":\"\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":\"Email\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":\"1abc\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":\"_abc\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":\"a b\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":\"a/b\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":\"caf\xc3\xa9\",\"payload\":{}}", "taskType", NULL);
	BAD("{\"taskType\":5,\"payload\":{}}", "taskType", "must be a string");
	BAD("{\"taskType\":[\"email\"],\"payload\":{}}", "taskType", "must be a string");
	BAD("{\"payload\":{}}", "taskType", "required");
}

static void test_payload_shape(void **state)
{
	(void)state;
	BAD("{\"taskType\":\"x\"}", "payload", "required");
	BAD("{\"taskType\":\"x\",\"payload\":[]}", "payload", "JSON object");
	BAD("{\"taskType\":\"x\",\"payload\":\"{}\"}", "payload", "JSON object");
	BAD("{\"taskType\":\"x\",\"payload\":null}", "payload", "JSON object");
	BAD("{\"taskType\":\"x\",\"payload\":1}", "payload", "JSON object");
	BAD("{\"taskType\":\"email\",\"payload\":[]}", "payload", "JSON object");
	/* any other type takes any object */
	OK("{\"taskType\":\"report\",\"payload\":{\"n\":[1,2,{\"deep\":true}],\"s\":null}}");
	assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(T.payload, "n")));

	/* a task is an object */
	BAD("[]", NULL, "JSON object");
	BAD("\"task\"", NULL, "JSON object");
	BAD("null", NULL, "JSON object");
	BAD("42", NULL, "JSON object");
}

/* ---- email -------------------------------------------------------------- */

static const char *recipients(int n, int bad_at_index)
{
	static ts_buf b;

	ts_buf_reset(&b);
	assert_int_equal(ts_buf_appendf(&b, "{\"subject\":\"s\",\"body\":\"b\",\"to\":["), TS_OK);
	for (int i = 0; i < n; i++)
		assert_int_equal(ts_buf_appendf(&b, "%s\"%s%d@example.com\"", i ? "," : "",
						i == bad_at_index ? "bad address " : "u", i), TS_OK);
	assert_int_equal(ts_buf_appendf(&b, "]}"), TS_OK);
	return email(b.data);
}

static void test_email_to(void **state)
{
	(void)state;
	OK(email("{" MAIL "}"));
	OK(email("{\"to\":[\"a@example.com\"],\"subject\":\"s\",\"body\":\"b\"}"));
	OK(recipients(100, -1));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(T.payload, "to")), 100);
	BAD(recipients(101, -1), "payload.to", "1 to 100");
	BAD(email("{\"to\":[],\"subject\":\"s\",\"body\":\"b\"}"), "payload.to", "1 to 100");
	BAD(recipients(5, 2), "payload.to[2]", "not an email address");
	BAD(recipients(100, 99), "payload.to[99]", "not an email address");
	BAD(email("{\"to\":[\"a@example.com\",7],\"subject\":\"s\",\"body\":\"b\"}"), "payload.to[1]", "must be a string");
	BAD(email("{\"to\":5,\"subject\":\"s\",\"body\":\"b\"}"), "payload.to", NULL);
	BAD(email("{\"to\":{\"a\":1},\"subject\":\"s\",\"body\":\"b\"}"), "payload.to", NULL);
	BAD(email("{\"subject\":\"s\",\"body\":\"b\"}"), "payload.to", "required");
	BAD(email("{\"to\":\"\",\"subject\":\"s\",\"body\":\"b\"}"), "payload.to", "not an email address");
}

static void test_email_cc_bcc_replyto(void **state)
{
	(void)state;
	OK(email("{" MAIL ",\"cc\":\"c@example.com\",\"bcc\":[\"b1@example.com\",\"b2@example.com\"],"
		 "\"replyTo\":\"r@example.com\"}"));
	/* optional lists may be empty */
	OK(email("{" MAIL ",\"cc\":[],\"bcc\":[],\"replyTo\":[]}"));
	BAD(email("{" MAIL ",\"cc\":[\"ok@example.com\",\"nope\"]}"), "payload.cc[1]", "not an email address");
	BAD(email("{" MAIL ",\"bcc\":\"nope\"}"), "payload.bcc", "not an email address");
	BAD(email("{" MAIL ",\"replyTo\":[\"r@example.com\",false]}"), "payload.replyTo[1]", "must be a string");
	BAD(email("{" MAIL ",\"cc\":5}"), "payload.cc", NULL);
}

static void test_email_from(void **state)
{
	(void)state;
	OK(email("{" MAIL ",\"from\":\"noreply@example.com\"}"));
	OK(email("{" MAIL ",\"from\":\"Example Shop <noreply@example.com>\"}"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "from")->valuestring,
			    "Example Shop <noreply@example.com>");
	OK(email("{" MAIL ",\"from\":\"<noreply@example.com>\"}"));
	OK(email("{" MAIL ",\"from\":\"Caf\xc3\xa9 <noreply@example.com>\"}"));
	BAD(email("{" MAIL ",\"from\":\"Shop <not an address>\"}"), "payload.from", "not an email address");
	BAD(email("{" MAIL ",\"from\":\"Shop <>\"}"), "payload.from", NULL);
	BAD(email("{" MAIL ",\"from\":\"Sh\\\"op <noreply@example.com>\"}"), "payload.from", "display name");
	BAD(email("{" MAIL ",\"from\":\"Shop\\t <noreply@example.com>\"}"), "payload.from", "display name");
	BAD(email("{" MAIL ",\"from\":\"Shop\\r\\nBcc: x@y.z <noreply@example.com>\"}"), "payload.from", "CR or LF");
	BAD(email("{" MAIL ",\"from\":[\"noreply@example.com\"]}"), "payload.from", "must be a string");
	BAD(email("{" MAIL ",\"from\":1}"), "payload.from", "must be a string");
}

static void test_email_subject(void **state)
{
	char subj[1100], buf[1300];

	(void)state;
	BAD(email("{\"to\":\"a@example.com\",\"body\":\"b\"}"), "payload.subject", "required");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"Hi\\r\\nBcc: victim@example.com\",\"body\":\"b\"}"),
	    "payload.subject", "must not contain CR or LF");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"Hi\\nthere\",\"body\":\"b\"}"),
	    "payload.subject", "CR or LF");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"Hi\\r\",\"body\":\"b\"}"),
	    "payload.subject", "CR or LF");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":42,\"body\":\"b\"}"), "payload.subject", "must be a string");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":null,\"body\":\"b\"}"), "payload.subject", "must be a string");
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"\",\"body\":\"b\"}"));
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x98\x80\",\"body\":\"b\"}"));

	memset(subj, 's', 998);
	subj[998] = '\0';
	snprintf(buf, sizeof buf, "{\"to\":\"a@example.com\",\"subject\":\"%s\",\"body\":\"b\"}", subj);
	OK(email(buf));
	subj[998] = 's';
	subj[999] = '\0';
	snprintf(buf, sizeof buf, "{\"to\":\"a@example.com\",\"subject\":\"%s\",\"body\":\"b\"}", subj);
	BAD(email(buf), "payload.subject", "998");
}

static void test_email_address_rules(void **state)
{
	char addr[300], buf[600];

	(void)state;
	BAD(email("{\"to\":\"a@example.com\\r\\nBcc: victim@example.com\",\"subject\":\"s\",\"body\":\"b\"}"),
	    "payload.to", "CR or LF");
	BAD(email("{\"to\":[\"a@example.com\",\"b@example.com\\n\"],\"subject\":\"s\",\"body\":\"b\"}"),
	    "payload.to[1]", "CR or LF");
	BAD(email("{" MAIL ",\"replyTo\":\"r@example.com\\r\"}"), "payload.replyTo", "CR or LF");

	/* 254 characters: 64 local + @ + 189 of domain */
	memset(addr, 'l', 64);
	addr[64] = '@';
	size_t n = 65;
	while (n < 254) {
		size_t label = 254 - n > 62 ? 61 : 254 - n - 1;
		if (n > 65)
			addr[n++] = '.';
		memset(addr + n, 'd', label);
		n += label;
	}
	addr[n] = '\0';
	assert_int_equal(strlen(addr), 254);
	assert_true(ts_valid_email_address(addr));
	snprintf(buf, sizeof buf, "{\"to\":\"%s\",\"subject\":\"s\",\"body\":\"b\"}", addr);
	OK(email(buf));
	/* 255: one more letter in the last label */
	addr[254] = 'd';
	addr[255] = '\0';
	assert_false(ts_valid_email_address(addr));
	snprintf(buf, sizeof buf, "{\"to\":\"%s\",\"subject\":\"s\",\"body\":\"b\"}", addr);
	BAD(email(buf), "payload.to", "254");
	snprintf(buf, sizeof buf, "{\"to\":[\"ok@example.com\",\"%s\"],\"subject\":\"s\",\"body\":\"b\"}", addr);
	BAD(email(buf), "payload.to[1]", "254");

	assert_true(ts_valid_email_address("user@example.com"));
	assert_true(ts_valid_email_address("first.last+tag@sub.example.co.uk"));
	assert_true(ts_valid_email_address("user@localhost"));
	assert_true(ts_valid_email_address("o'brien@example.com"));
	assert_true(ts_valid_email_address("user@[127.0.0.1]"));
	assert_true(ts_valid_email_address("user@a-b.example"));
	assert_false(ts_valid_email_address(""));
	assert_false(ts_valid_email_address("user"));
	assert_false(ts_valid_email_address("@example.com"));
	assert_false(ts_valid_email_address("user@"));
	assert_false(ts_valid_email_address("us er@example.com"));
	assert_false(ts_valid_email_address("user@exa mple.com"));
	assert_false(ts_valid_email_address(".user@example.com"));
	assert_false(ts_valid_email_address("user.@example.com"));
	assert_false(ts_valid_email_address("us..er@example.com"));
	assert_false(ts_valid_email_address("user@-example.com"));
	assert_false(ts_valid_email_address("user@example-.com"));
	assert_false(ts_valid_email_address("user@example..com"));
	assert_false(ts_valid_email_address("user@example.com."));
	assert_false(ts_valid_email_address("user@.example.com"));
	assert_false(ts_valid_email_address("a<b>@example.com"));
	assert_false(ts_valid_email_address("user@exam_ple.com"));
	assert_false(ts_valid_email_address("caf\xc3\xa9@example.com"));
	assert_false(ts_valid_email_address("user@example.com\r"));
	assert_false(ts_valid_email_address("user@[]"));
	memset(addr, 'l', 65);
	strcpy(addr + 65, "@example.com");
	assert_false(ts_valid_email_address(addr)); /* local part over 64 */
}

static void test_email_body_html(void **state)
{
	(void)state;
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":\"text\"}"));
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"html\":\"<p>hi</p>\"}"));
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":\"t\",\"html\":\"<p>t</p>\"}"));
	/* a body may hold any text, new lines included */
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":\"line 1\\r\\nline 2\\n.\\n\"}"));
	OK(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":\"\"}"));
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\"}"), "payload.body", "required");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":5}"), "payload.body", "must be a string");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":[\"x\"]}"), "payload.body", "must be a string");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"html\":true}"), "payload.html", "must be a string");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":\"b\",\"html\":{}}"), "payload.html", "must be a string");
}

static void test_email_unknown_field(void **state)
{
	(void)state;
	BAD(email("{" MAIL ",\"attachments\":[]}"), "payload.attachments", "unknown field");
	BAD(email("{" MAIL ",\"reply_to\":\"r@example.com\"}"), "payload.reply_to", "unknown field");
	BAD(email("{" MAIL ",\"To\":\"a@example.com\"}"), "payload.To", "unknown field");
	BAD(email("{" MAIL ",\"mobile\":\"+919876543210\"}"), "payload.mobile", "unknown field");
}

/* ---- sms ---------------------------------------------------------------- */

static void test_sms(void **state)
{
	(void)state;
	OK(sms("{\"mobile\":\"+919876543210\",\"name\":\"Asha\"}"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "mobile")->valuestring, "+919876543210");
	OK(sms("{\"mobile\":\"919876543210\"}"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "mobile")->valuestring, "919876543210");
	OK(sms("{\"mobile\":\"12345678\"}"));            /* 8 digits */
	OK(sms("{\"mobile\":\"+123456789012345\"}"));    /* 15 digits */
	OK(sms("{\"mobile\":\"+15551234567\",\"message\":\"Your code is 1234\"}"));
	OK(sms("{\"mobile\":\"+15551234567\",\"otp_code\":\"1\",\"Name2\":\"x\"}"));
	BAD(sms("{\"mobile\":\"1234567\"}"), "payload.mobile", "8-15 digits");
	BAD(sms("{\"mobile\":\"+1234567\"}"), "payload.mobile", "8-15 digits");
	BAD(sms("{\"mobile\":\"1234567890123456\"}"), "payload.mobile", "8-15 digits");
	BAD(sms("{\"mobile\":\"+1234567890123456\"}"), "payload.mobile", "8-15 digits");
	BAD(sms("{\"mobile\":\"\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":\"+\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":\"++919876543210\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":\"+91 98765 43210\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":\"+91-9876543210\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":\"919876543210+\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":\"\xd9\xa9\xd9\xa1\xd9\xa9\xd9\xa8\xd9\xa7\xd9\xa6\xd9\xa5\xd9\xa4\"}"), "payload.mobile", NULL);
	BAD(sms("{\"mobile\":919876543210}"), "payload.mobile", "must be a string");
	BAD(sms("{\"name\":\"Asha\"}"), "payload.mobile", "required");
	BAD(sms("{}"), "payload.mobile", "required");
	BAD(sms("{\"mobiles\":\"919876543210\"}"), "payload.mobiles", "mobile");
	BAD(sms("{\"mobile\":\"919876543210\",\"mobiles\":\"919876543210\"}"), "payload.mobiles", "unknown field");
	/* template variables are strings */
	BAD(sms("{\"mobile\":\"+919876543210\",\"name\":5}"), "payload.name", "must be a string");
	BAD(sms("{\"mobile\":\"+919876543210\",\"name\":null}"), "payload.name", "must be a string");
	BAD(sms("{\"mobile\":\"+919876543210\",\"name\":{\"first\":\"A\"}}"), "payload.name", "must be a string");
	BAD(sms("{\"mobile\":\"+919876543210\",\"name\":[\"A\"]}"), "payload.name", "must be a string");
	BAD(sms("{\"mobile\":\"+919876543210\",\"first-name\":\"A\"}"), "payload.first-name", NULL);
	BAD(sms("{\"mobile\":\"+919876543210\",\"\":\"A\"}"), "payload.", NULL);

	assert_true(ts_valid_mobile("+919876543210"));
	assert_false(ts_valid_mobile("0"));
	assert_false(ts_valid_mobile("+"));
}

/* ---- options ------------------------------------------------------------ */

static void test_force_type(void **state)
{
	ts_task_opts o = { .force_type = "email" };
	cJSON *want;

	(void)state;
	OKO("{" MAIL "}", &o);
	assert_string_equal(T.task_type, "email");
	assert_true(is_uuid4(T.task_id));
	assert_true(is_rfc3339_ms(T.created_at));
	want = cJSON_Parse("{" MAIL "}");
	assert_true(cJSON_Compare(T.payload, want, 1));
	cJSON_Delete(want);
	/* the paths are still payload.* */
	BADO("{\"to\":[\"a@example.com\",\"x\"],\"subject\":\"s\",\"body\":\"b\"}", &o,
	     TS_ERR_DATA, "payload.to[1]", "not an email address");
	/* an envelope given with --type is a payload with unknown fields */
	BADO("{\"taskType\":\"email\",\"payload\":{" MAIL "}}", &o, TS_ERR_DATA,
	     "payload.taskType", "unknown field");
	BADO("[1]", &o, TS_ERR_DATA, NULL, "JSON object");

	/* a custom forced type takes any object, envelope-looking or not */
	o.force_type = "report";
	OKO("{\"taskId\":\"x\",\"anything\":[1]}", &o);
	assert_string_equal(T.task_type, "report");
	assert_true(is_uuid4(T.task_id)); /* that taskId was payload */

	/* with default_id the id comes from the option */
	o.default_id = "idem-key-1";
	OKO("{}", &o);
	assert_string_equal(T.task_id, "idem-key-1");

	o.force_type = "Bad Type";
	BADO("{}", &o, TS_ERR_USAGE, "taskType", "Bad Type");
}

static void test_default_id(void **state)
{
	ts_task_opts o = { .default_id = "idem-42" };

	(void)state;
	OKO("{\"taskType\":\"x\",\"payload\":{}}", &o);
	assert_string_equal(T.task_id, "idem-42");
	assert_string_equal(ts_task_record_key(&T), "idem-42");
	/* the input's own id wins */
	OKO("{\"taskId\":\"mine\",\"taskType\":\"x\",\"payload\":{}}", &o);
	assert_string_equal(T.task_id, "mine");
	o.default_id = "has space";
	BADO("{\"taskType\":\"x\",\"payload\":{}}", &o, TS_ERR_DATA, "taskId", NULL);
	/* an id the caller generated is taken as it is (both paths); the
	 * input's own id is still checked */
	o.default_id = "1b4e28ba-2fa1-4d2e-9c4a-5f8e1d2a3b4c";
	o.default_id_generated = 1;
	OKO("{\"taskType\":\"email\",\"payload\":{" MAIL "}}", &o);
	assert_string_equal(T.task_id, "1b4e28ba-2fa1-4d2e-9c4a-5f8e1d2a3b4c");
	OKO("{\"taskType\":\"x\",\"payload\":{\"a\":[1,2.5]}}", &o);
	assert_string_equal(T.task_id, "1b4e28ba-2fa1-4d2e-9c4a-5f8e1d2a3b4c");
	BADO("{\"taskId\":\"has space\",\"taskType\":\"x\",\"payload\":{}}", &o,
	     TS_ERR_DATA, "taskId", "must be 1-128");
}

/* opts.created_at stands in for the clock, on both paths; the input's
 * own createdAt still wins. */
static void test_created_at_option(void **state)
{
	static const char *const inputs[] = {
		"{\"taskType\":\"email\",\"payload\":{" MAIL "}}",
		"{\"taskType\":\"x\",\"payload\":{\"a\":[1,2.5,\"\\u00e9\"]}}",
	};
	ts_task_opts o = { .created_at = "2026-01-02T03:04:05.678Z" };
	ts_buf out = { 0 };
	ts_task t;
	ts_detail d;

	(void)state;
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		OKO(inputs[i], &o);
		assert_string_equal(T.created_at, "2026-01-02T03:04:05.678Z");
		assert_int_equal(ts_task_encode(inputs[i], strlen(inputs[i]), &o,
						&t, &out, &d), TS_OK);
		assert_string_equal(t.created_at, "2026-01-02T03:04:05.678Z");
		assert_non_null(strstr(out.data, "\"createdAt\":\"2026-01-02T03:04:05.678Z\""));
		ts_task_free(&t);
		ts_buf_reset(&out);
	}
	OKO("{\"taskType\":\"x\",\"payload\":{},\"createdAt\":\"2025-05-05T05:05:05Z\"}", &o);
	assert_string_equal(T.created_at, "2025-05-05T05:05:05Z");
	ts_buf_free(&out);
}

/* The fast path on an unsplit line: it finds the object's end itself and
 * encodes it as ts_task_encode() does, or declines and writes nothing. */
static void test_encode_prefix(void **state)
{
	static const char *const took[] = {
		"{\"taskType\":\"email\",\"payload\":{" MAIL "}}",
		"{\"taskType\":\"x\",\"payload\":{\"a\":[1,true,null,\"}{\\\"\"]},\"key\":\"k\"}",
		"{ \"taskType\" : \"x\" , \"payload\" : { \"b\" : \"\\/\" } }",
	};
	static const char *const after[] = { "", " ", "\r", "{\"a\":1}", "x", "]" };
	static const char *const declined[] = {
		"{\"taskType\":\"email\",\"payload\":{}}",      /* invalid */
		"{\"taskType\":\"x\",\"payload\":{\"a\":1.5}}",  /* slow way */
		"{\"taskType\":\"x\",\"payload\":{\"a\":\"\\u00e9\"}}",
		"{\"taskType\":\"x\",\"payload\":{\"a\":1}",     /* open */
		"{\"taskType\":\"x\" \"payload\":{}}",
		"{\"taskType\":\"x\",\n\"payload\":{}}",    /* a line feed */
		"{\"taskType\":\"x\",\"payload\":{\"a\":1}\r\n}",
	};
	ts_task_opts o = { .default_id = "id-1", .created_at = "2026-01-02T03:04:05Z" };
	ts_buf a = { 0 }, b = { 0 };
	char line[512];
	ts_task t;
	ts_detail d;
	size_t used;

	(void)state;
	for (size_t i = 0; i < sizeof took / sizeof took[0]; i++) {
		size_t n = strlen(took[i]);

		assert_int_equal(ts_task_encode(took[i], n, &o, &t, &b, &d), TS_OK);
		ts_task_free(&t);
		for (size_t j = 0; j < sizeof after / sizeof after[0]; j++) {
			snprintf(line, sizeof line, "%s%s", took[i], after[j]);
			used = 0;
			assert_int_equal(ts_task_encode_prefix(line, strlen(line), &o,
							       &t, &a, &used), 1);
			assert_int_equal(used, n);
			assert_string_equal(a.data, b.data);
			assert_string_equal(t.task_id, "id-1");
			ts_task_free(&t);
			ts_buf_reset(&a);
		}
		/* cut short anywhere: declined */
		for (size_t k = 0; k < n; k++)
			assert_int_equal(ts_task_encode_prefix(took[i], k, &o, &t, &a,
							       &used), 0);
		assert_int_equal(a.len, 0);
		ts_buf_reset(&b);
	}
	for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
		assert_int_equal(ts_task_encode_prefix(declined[i], strlen(declined[i]),
						       &o, &t, &a, &used), 0);
		assert_int_equal(a.len, 0);
	}
	/* over the fast path's 4096 bytes: declined, though complete */
	char *big = malloc(5000);
	assert_non_null(big);
	int n = snprintf(big, 5000, "{\"taskType\":\"x\",\"payload\":{\"a\":\"%04200d\"}}", 0);
	assert_int_equal(ts_task_encode(big, (size_t)n, &o, &t, &b, &d), TS_OK);
	ts_task_free(&t);
	assert_int_equal(ts_task_encode_prefix(big, (size_t)n, &o, &t, &a, &used), 0);
	assert_int_equal(a.len, 0);
	free(big);
	ts_buf_free(&a);
	ts_buf_free(&b);
}

static void test_payload_validate_prefix(void **state)
{
	cJSON *p;

	(void)state;
	/* the notification API validates bare bodies: paths without a prefix */
	p = cJSON_Parse("{\"to\":[\"a@example.com\",\"bad\"],\"subject\":\"s\",\"body\":\"b\"}");
	assert_int_equal(ts_payload_validate("email", p, "", &D), TS_ERR_DATA);
	assert_string_equal(D.field, "to[1]");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"name\":\"A\"}");
	assert_int_equal(ts_payload_validate("sms", p, "", &D), TS_ERR_DATA);
	assert_string_equal(D.field, "mobile");
	assert_int_equal(ts_payload_validate("sms", p, NULL, &D), TS_ERR_DATA);
	assert_string_equal(D.field, "mobile");
	cJSON_Delete(p);
	p = cJSON_Parse("[]");
	assert_int_equal(ts_payload_validate("custom", p, "", &D), TS_ERR_DATA);
	assert_string_equal(D.field, "");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"mobile\":\"+919876543210\",\"name\":\"A\"}");
	assert_int_equal(ts_payload_validate("sms", p, "", &D), TS_OK);
	assert_int_equal(ts_payload_validate("custom", p, "payload", &D), TS_OK);
	assert_int_equal(ts_payload_validate("email", p, "payload", &D), TS_ERR_DATA);
	assert_string_equal(D.field, "payload.mobile");
	cJSON_Delete(p);
}

static void test_from_json_copies(void **state)
{
	cJSON *obj = cJSON_Parse("{\"taskType\":\"x\",\"payload\":{\"a\":1},\"key\":\"k\"}");

	(void)state;
	assert_non_null(obj);
	ts_task_free(&T);
	assert_int_equal(ts_task_from_json(obj, NULL, &T, &D), TS_OK);
	assert_ptr_not_equal(T.payload, cJSON_GetObjectItemCaseSensitive(obj, "payload"));
	assert_true(cJSON_Compare(T.payload, cJSON_GetObjectItemCaseSensitive(obj, "payload"), 1));
	assert_string_equal(T.key, "k");
	ts_task_free(&T);
	/* the object is still whole after the task is gone */
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(
				 cJSON_GetObjectItemCaseSensitive(obj, "payload"), "a")->valueint, 1);
	cJSON_Delete(obj);
	/* NULL and non-objects */
	assert_int_equal(ts_task_from_json(NULL, NULL, &T, &D), TS_ERR_DATA);
	ts_task_free(&T);
	ts_task_free(NULL);
}

/* ---- hostile input ------------------------------------------------------ */

static void test_invalid_utf8(void **state)
{
	(void)state;
#define U(bytes) "{\"taskType\":\"x\",\"payload\":{\"s\":\"" bytes "\"}}"
	BADRAW(U("\xc0\xaf"), "invalid UTF-8 at offset 32");          /* overlong '/' */
	BADRAW(U("\xc1\xbf"), "invalid UTF-8");
	BADRAW(U("\xe0\x80\xaf"), "invalid UTF-8");                    /* overlong, 3 bytes */
	BADRAW(U("\xf0\x80\x80\xaf"), "invalid UTF-8");                /* overlong, 4 bytes */
	BADRAW(U("\xed\xa0\x80"), "invalid UTF-8");                    /* U+D800 */
	BADRAW(U("\xed\xbf\xbf"), "invalid UTF-8");                    /* U+DFFF */
	BADRAW(U("\xf4\x90\x80\x80"), "invalid UTF-8");                /* > U+10FFFF */
	BADRAW(U("\xe2\x82"), "invalid UTF-8");                        /* truncated */
	BADRAW(U("\xc3"), "invalid UTF-8");
	BADRAW(U("\x80"), "invalid UTF-8");                            /* lone continuation */
	BADRAW(U("\xff"), "invalid UTF-8");
	BADRAW(U("\xfe"), "invalid UTF-8");
	BADRAW(U("\xf8\x88\x80\x80\x80"), "invalid UTF-8");
	/* truncated at the very end of the input */
	BADRAW("{\"taskType\":\"x\",\"payload\":{}}\xe2\x82", "invalid UTF-8 at offset 29");
	/* in a key too */
	BADRAW("{\"taskType\":\"x\",\"payload\":{\"\xff\":1}}", "invalid UTF-8");

	/* the edges of valid UTF-8 pass and survive serialisation */
	OKRAW(U("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));
	char *s = ts_task_to_json(&T);
	assert_non_null(s);
	assert_non_null(strstr(s, "\xf4\x8f\xbf\xbf"));
	free(s);
}

static void test_nul_bytes(void **state)
{
	(void)state;
	BADRAW("{\"taskType\":\"x\",\"payload\":{\"s\":\"a\0b\"}}", "NUL byte at offset 33");
	BADRAW("{\"taskType\":\"x\",\"payload\":{}}\0", "NUL byte");
	BADRAW("\0{\"taskType\":\"x\",\"payload\":{}}", "NUL byte at offset 0");
	BAD(U("a\\u0000b"), NULL, "\\u0000");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\\u0000Bcc\",\"body\":\"b\"}"), NULL, "NUL");
	BAD("{\"taskType\":\"x\\u0000\",\"payload\":{}}", NULL, "NUL");
	/* an escaped backslash followed by u0000 is six harmless characters */
	OK(U("a\\\\u0000b"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "s")->valuestring, "a\\u0000b");
	OK(U("\\\\\\\\u0000"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "s")->valuestring, "\\\\u0000");
	/* but an escaped backslash and then a real escape is caught */
	BAD(U("\\\\\\u0000"), NULL, "\\u0000");
	/* other \u escapes are fine */
	OK(U("\\u0041\\u00e9\\u20ac\\ud83d\\ude00"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "s")->valuestring,
			    "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* a lone surrogate escape is not a character */
	BAD(U("\\ud800"), NULL, NULL);
	BAD(U("\\udc00x"), NULL, NULL);
}

static void test_control_chars(void **state)
{
	(void)state;
	BADRAW(U("a\x01" "b"), "control character 0x01");
	BADRAW(U("a\tb"), "control character 0x09");
	BADRAW(U("a\nb"), "control character 0x0a");
	BADRAW(U("a\rb"), "control character");
	BADRAW(U("\x1f"), "control character");
	BADRAW("{\"taskType\":\"x\",\"payload\":{\"a\x01\":1}}", "control character");
	/* escaped, they are data */
	OK(U("a\\tb\\n\\u0001"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "s")->valuestring, "a\tb\n\x01");
	/* white space between tokens is not inside a string */
	OK("{\r\n\t\"taskType\" :\n\"x\",\n  \"payload\": {\n\"s\":\"a\\\"b\"}\n}\n");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(T.payload, "s")->valuestring, "a\"b");
	/* DEL and C1 controls as UTF-8 are allowed text */
	OKRAW(U("\x7f\xc2\x85"));
}

static void test_deep_nesting(void **state)
{
	const int depth = 10000;
	size_t cap = (size_t)depth * 6 + 100;
	char *buf = malloc(cap);
	size_t n = 0;

	(void)state;
	assert_non_null(buf);
	/* inside a payload */
	n = (size_t)sprintf(buf, "{\"taskType\":\"x\",\"payload\":{\"a\":");
	for (int i = 0; i < depth; i++)
		buf[n++] = '[';
	for (int i = 0; i < depth; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n++] = '}';
	bad_at(__LINE__, buf, n, NULL, TS_ERR_DATA, NULL, "invalid JSON");
	/* as the whole input, objects */
	n = 0;
	for (int i = 0; i < depth; i++) {
		memcpy(buf + n, "{\"a\":", 5);
		n += 5;
	}
	bad_at(__LINE__, buf, n, NULL, TS_ERR_DATA, NULL, NULL);
	/* a moderate depth is fine and survives serialisation */
	n = (size_t)sprintf(buf, "{\"taskType\":\"x\",\"payload\":{\"a\":");
	for (int i = 0; i < 500; i++)
		buf[n++] = '[';
	for (int i = 0; i < 500; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n++] = '}';
	ok_at(__LINE__, buf, n, NULL);
	char *s = ts_task_to_json(&T);
	assert_non_null(s);
	free(s);
	free(buf);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_big_string(void **state)
{
	const size_t big = 10u << 20;
	char *buf = malloc(big + 200);
	size_t n;
	double t0, t1;

	(void)state;
	assert_non_null(buf);
	n = (size_t)sprintf(buf, "{\"taskType\":\"email\",\"payload\":{\"to\":\"a@example.com\","
				 "\"subject\":\"s\",\"body\":\"");
	for (size_t i = 0; i < big; i++)
		buf[n + i] = (char)('a' + i % 26);
	n += big;
	n += (size_t)sprintf(buf + n, "\"}}");
	t0 = now_s();
	ok_at(__LINE__, buf, n, NULL);
	char *s = ts_task_to_json(&T);
	t1 = now_s();
	assert_non_null(s);
	assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(T.payload, "body")->valuestring), big);
	assert_true(strlen(s) > big);
	free(s);
	free(buf);
	/* linear work: a small fraction of a second here; seconds would mean
	 * something quadratic crept in (generous for sanitizers and load) */
	if (t1 - t0 > 5.0)
		fail_msg("10 MB task took %.2f s to parse and serialise", t1 - t0);
}

static void test_numbers_where_strings_belong(void **state)
{
	(void)state;
	BAD("{\"taskType\":1,\"payload\":{}}", "taskType", "must be a string");
	BAD("{\"taskId\":1,\"taskType\":\"x\",\"payload\":{}}", "taskId", "must be a string");
	BAD("{\"key\":1.5,\"taskType\":\"x\",\"payload\":{}}", "key", "must be a string");
	BAD("{\"createdAt\":0,\"taskType\":\"x\",\"payload\":{}}", "createdAt", "must be a string");
	BAD("{\"traceparent\":1e3,\"taskType\":\"x\",\"payload\":{}}", "traceparent", "must be a string");
	BAD(email("{\"to\":[1],\"subject\":\"s\",\"body\":\"b\"}"), "payload.to[0]", "must be a string");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":1,\"body\":\"b\"}"), "payload.subject", "must be a string");
	BAD(email("{\"to\":\"a@example.com\",\"subject\":\"s\",\"body\":1}"), "payload.body", "must be a string");
	BAD(email("{" MAIL ",\"from\":1}"), "payload.from", "must be a string");
	BAD(email("{" MAIL ",\"cc\":[\"c@example.com\",2]}"), "payload.cc[1]", "must be a string");
	BAD(sms("{\"mobile\":15551234567}"), "payload.mobile", "must be a string");
	BAD(sms("{\"mobile\":\"15551234567\",\"otp\":1234}"), "payload.otp", "must be a string");
	BAD(sms("{\"mobile\":true}"), "payload.mobile", "must be a string");
}

static void test_not_json(void **state)
{
	(void)state;
	bad_at(__LINE__, "", 0, NULL, TS_ERR_DATA, NULL, "invalid JSON");
	BAD("   ", NULL, "invalid JSON");
	BAD("{", NULL, "invalid JSON");
	BAD("{\"taskType\":\"x\",\"payload\":{}", NULL, "invalid JSON");
	BAD("{\"taskType\":\"x\",\"payload\":{},}", NULL, "invalid JSON");
	BAD("{'taskType':'x'}", NULL, "invalid JSON");
	/* one task means one JSON text: nothing may follow it */
	BAD("{\"taskType\":\"x\",\"payload\":{}} trailing", NULL, "invalid JSON");
	BAD("{\"taskType\":\"x\",\"payload\":{}}{\"taskType\":\"y\",\"payload\":{}}", NULL, "invalid JSON");
	BAD("{\"taskType\":\"x\",\"payload\":{}}}", NULL, "invalid JSON");
	/* trailing white space is fine */
	OK("  {\"taskType\":\"x\",\"payload\":{}} \r\n\t");
	/* the offset of the problem is given */
	BAD("{\"taskType\":\"x\",\"payload\":{\"a\":tru}}", NULL, "near byte");
}

static void test_check_bytes_direct(void **state)
{
	(void)state;
	assert_int_equal(ts_json_check_bytes("{}", 2, &D), TS_OK);
	assert_int_equal(ts_json_check_bytes("", 0, &D), TS_OK);
	/* only len bytes are looked at */
	assert_int_equal(ts_json_check_bytes("{}\xff", 2, &D), TS_OK);
	assert_int_equal(ts_json_check_bytes("{}\xff", 3, &D), TS_ERR_DATA);
	assert_contains(D.msg, "offset 2");
	/* a backslash as the last byte */
	assert_int_equal(ts_json_check_bytes("\"\\", 2, &D), TS_OK);
	/* \u000 cut short at the end is no NUL */
	assert_int_equal(ts_json_check_bytes("\"\\u000", 6, &D), TS_OK);
	assert_int_equal(ts_json_check_bytes("\"\\u0000", 7, &D), TS_ERR_DATA);
}

/* Duplicates named as before the pairwise check: the first repeated name
 * in sorted order, whatever the input order; and at the top level the
 * first field in input order that is unknown or repeated later. */
static void test_duplicate_keys_which(void **state)
{
	char buf[2048];
	int n;

	(void)state;
	BAD(email("{\"to\":\"a@example.com\",\"to\":\"b@example.com\","
		  "\"subject\":\"s\",\"body\":\"b\",\"body\":\"c\"}"),
	    "payload.body", "twice");
	BAD(email("{\"subject\":\"s\",\"subject\":\"t\",\"cc\":\"a@example.com\","
		  "\"to\":\"a@example.com\",\"cc\":\"b@example.com\",\"body\":\"b\"}"),
	    "payload.cc", "twice");
	BAD(sms("{\"name\":\"a\",\"mobile\":\"+919876543210\",\"name\":\"b\","
		"\"age\":\"1\",\"age\":\"2\"}"), "payload.age", "twice");
	/* many fields: sorted rather than compared pairwise, same answer */
	n = snprintf(buf, sizeof buf, "{\"mobile\":\"+919876543210\"");
	for (int i = 0; i < 20; i++)
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"v%02d\":\"x\"", 19 - i);
	snprintf(buf + n, sizeof buf - (size_t)n, ",\"v07\":\"y\",\"v03\":\"y\"}");
	BAD(sms(buf), "payload.v03", "twice");
	BADO(buf, &(ts_task_opts){ .force_type = "sms" }, TS_ERR_DATA,
	     "payload.v03", "twice");
	/* top level: input order decides between unknown and repeated */
	BAD("{\"taskType\":\"x\",\"bogus\":1,\"payload\":{},\"taskType\":\"y\"}",
	    "taskType", "twice");
	BAD("{\"taskType\":\"x\",\"payload\":{},\"bogus\":1,\"payload\":{}}",
	    "payload", "twice");
	BAD("{\"payload\":{},\"bogus\":1,\"taskType\":\"x\",\"taskType\":\"y\"}",
	    "bogus", "unknown field");
	BAD("{\"taskType\":\"x\",\"payload\":{},\"tr\":\"a\"}", "tr", "unknown field");
	BAD("{\"taskType\":\"x\",\"payload\":{},\"t\":\"a\"}", "t", "unknown field");
	BAD("{\"taskType\":\"x\",\"payload\":{},\"traceparenT\":\"a\"}",
	    "traceparenT", "unknown field");
	BAD(email("{" MAIL ",\"b\":\"x\"}"), "payload.b", "unknown field");
	BAD(email("{" MAIL ",\"bc\":\"x\"}"), "payload.bc", "unknown field");
	BAD(email("{" MAIL ",\"\":\"x\"}"), "payload.", "unknown field");
}

/* at plain bytes, then stop, then more plain bytes: a string whose plain
 * run ends at offset at. */
static void run_at(char *s, size_t size, int at, const char *stop)
{
	memset(s, 'a', (size_t)at);
	snprintf(s + at, size - (size_t)at, "%sbcdefghij", stop);
}

/* The fast path finds the end of plain string runs many bytes at a time:
 * put each kind of byte that ends a run at every offset of a word, in
 * every field, and hold the result to ts_task_parse's (OK/BAD check both
 * paths for the same envelope or the same error). */
static void test_string_runs(void **state)
{
	static const char *const stops[] = {
		"\\\"", "\\\\", "\\/", "\\n", "\\t", "\\u00e9", "\xc3\xa9",
		"\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f", " ",
	};
	static const char *const bad_stops[] = { "\x01", "\x1f", "\xff", "\xc3", "\x80" };
	char s[96], buf[512];

	(void)state;
	for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
		for (int at = 0; at <= 40; at++) {
			run_at(s, sizeof s, at, stops[k]);
			snprintf(buf, sizeof buf,
				 "{\"taskType\":\"email\",\"payload\":{\"to\":\"u@example.com\","
				 "\"subject\":\"x\",\"body\":\"%s\",\"html\":\"%s\"}}", s, s);
			OK(buf);
			snprintf(buf, sizeof buf,
				 "{\"taskType\":\"t\",\"payload\":{\"%s\":\"%s\"}}", s, s);
			OK(buf);
		}
	}
	for (size_t k = 0; k < sizeof bad_stops / sizeof bad_stops[0]; k++) {
		for (int at = 0; at <= 40; at++) {
			run_at(s, sizeof s, at, bad_stops[k]);
			snprintf(buf, sizeof buf,
				 "{\"taskType\":\"email\",\"payload\":{\"to\":\"u@example.com\","
				 "\"subject\":\"x\",\"body\":\"%s\"}}", s);
			BAD(buf, NULL, NULL);
		}
	}
	/* a string that runs into the end of the input, at every length */
	for (int at = 0; at <= 40; at++) {
		memset(s, 'a', (size_t)at);
		s[at] = '\0';
		snprintf(buf, sizeof buf, "{\"taskType\":\"t\",\"payload\":{\"a\":\"%s", s);
		BAD(buf, NULL, "invalid JSON");
	}
}

/* The character classes behind ids, addresses and sms field names, over
 * every byte value, against their definitions. */
static void test_char_classes(void **state)
{
	char id[4], addr[64];

	(void)state;
	for (int c = 1; c < 256; c++) {
		int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z');
		int idc = alnum || (c && strchr("._:-", c));
		int atext = alnum || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));

		snprintf(id, sizeof id, "a%cb", c);
		if (ts_valid_task_id(id) != idc)
			fail_msg("taskId with byte 0x%02x: %d", c, !idc);
		snprintf(addr, sizeof addr, "a%cb@example.com", c);
		if (ts_valid_email_address(addr) != (atext || c == '.'))
			fail_msg("local part with byte 0x%02x: %d", c, !atext);
		snprintf(addr, sizeof addr, "ab@ex%cample.com", c);
		if (ts_valid_email_address(addr) != (alnum || c == '-' || c == '.'))
			fail_msg("domain with byte 0x%02x", c);
	}
}

static void test_validators(void **state)
{
	(void)state;
	assert_true(ts_valid_task_id("a"));
	assert_false(ts_valid_task_id(""));
	assert_true(ts_valid_task_type("a"));
	assert_false(ts_valid_task_type(""));
	assert_false(ts_valid_task_type("a!"));
	assert_true(ts_valid_traceparent(TP));
	assert_false(ts_valid_traceparent(TP "0"));
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, task_setup, task_teardown)
	const struct CMUnitTest tests[] = {
		T_(test_bare_request),
		T_(test_createdat_generated_is_now),
		T_(test_full_envelope),
		T_(test_generated_ids_differ),
		T_(test_task_id),
		T_(test_key),
		T_(test_traceparent),
		T_(test_created_at),
		T_(test_unknown_top_level),
		T_(test_duplicate_keys),
		T_(test_task_type),
		T_(test_payload_shape),
		T_(test_email_to),
		T_(test_email_cc_bcc_replyto),
		T_(test_email_from),
		T_(test_email_subject),
		T_(test_email_address_rules),
		T_(test_email_body_html),
		T_(test_email_unknown_field),
		T_(test_sms),
		T_(test_force_type),
		T_(test_default_id),
		T_(test_created_at_option),
		T_(test_encode_prefix),
		T_(test_payload_validate_prefix),
		T_(test_from_json_copies),
		T_(test_invalid_utf8),
		T_(test_nul_bytes),
		T_(test_control_chars),
		T_(test_deep_nesting),
		T_(test_big_string),
		T_(test_numbers_where_strings_belong),
		T_(test_not_json),
		T_(test_check_bytes_direct),
		T_(test_validators),
		T_(test_duplicate_keys_which),
		T_(test_string_runs),
		T_(test_char_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
