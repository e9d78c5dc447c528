/* decide.c - the decisions of ts-httpd over (method, URL, headers, body,
 * options), and the text of every answer. See decide.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decide.h"

static const char *const route_names[ROUTE__COUNT] = {
	"/tasks", "/api/email/send", "/api/sms/send", "/healthz", "/metrics",
	"other",
};

enum route httpd_route_of(const char *url)
{
	for (int i = 0; i < ROUTE_OTHER; i++)
		if (strcmp(url, route_names[i]) == 0)
			return (enum route)i;
	return ROUTE_OTHER;
}

const char *httpd_route_name(enum route route)
{
	return route_names[route < ROUTE__COUNT ? route : ROUTE_OTHER];
}

/* ---- JSON text ---- */

ts_err httpd_append(ts_buf *b, const char *s)
{
	return ts_buf_append(b, s, strlen(s));
}

/* ---- replies ---- */

void httpd_reply_free(httpd_reply *reply)
{
	ts_buf_free(&reply->body);
}

static void reply_init(httpd_reply *reply, unsigned status,
		       const char *content_type)
{
	ts_buf_reset(&reply->body);
	reply->status = status;
	reply->content_type = content_type;
	reply->allow = NULL;
	reply->retry_after_s = 0;
}

ts_err httpd_reply_error(httpd_reply *reply, unsigned status, const char *msg,
			 const char *field, const char *allow,
			 int retry_after_s)
{
	ts_buf *b = &reply->body;

	reply_init(reply, status, "application/json");
	reply->allow = allow;
	reply->retry_after_s = status == 503 ? retry_after_s : 0;
	if (ts_buf_append(b, "{\"error\":", 9) || ts_buf_append_json(b, msg) ||
	    ts_buf_append(b, ",\"field\":", 9) ||
	    ts_buf_append_json(b, field && *field ? field : NULL) ||
	    ts_buf_append(b, "}\n", 2))
		return TS_ERR_NOMEM;
	return TS_OK;
}

ts_err httpd_reply_too_large(const httpd_rules *rules, httpd_reply *reply)
{
	char msg[96];

	snprintf(msg, sizeof msg, "request body over %lld bytes (--max-body)",
		 (long long)rules->max_body);
	return httpd_reply_error(reply, 413, msg, NULL, NULL, 0);
}

/* The fields of one item's outcome, without the braces. */
static ts_err item_fields(ts_buf *b, const httpd_rules *rules, const item *it)
{
	ts_err err;

	/* taskIds and topic names are of JSON-safe alphabets (validated by
	 * lib/task and by Kafka), so they need no escaping. */
	if (it->status == 202) {
		if ((err = httpd_append(b, "\"message\":\"task accepted\",\"taskId\":\"")) ||
		    (err = httpd_append(b, it->task_id)) ||
		    (err = httpd_append(b, "\",\"topic\":\"")) ||
		    (err = httpd_append(b, rules->topic)) ||
		    (err = httpd_append(b, "\",\"partition\":")) ||
		    (err = ts_buf_append_int(b, it->partition)) ||
		    (err = httpd_append(b, ",\"offset\":")))
			return err;
		return ts_buf_append_int(b, it->offset);
	}
	if ((err = ts_buf_append(b, "\"error\":", 8)) ||
	    (err = ts_buf_append_json(b, it->error)) ||
	    (err = ts_buf_append(b, ",\"field\":", 9)) ||
	    (err = ts_buf_append_json(b, it->field)))
		return err;
	/* Who retries a 503 should send the same taskId again. */
	if (it->task_id[0] && it->status >= 500 &&
	    ((err = httpd_append(b, ",\"taskId\":\"")) ||
	     (err = httpd_append(b, it->task_id)) ||
	     (err = httpd_append(b, "\""))))
		return err;
	return TS_OK;
}

ts_err httpd_reply_tasks(const httpd_rules *rules, const httpd_head *head,
			 const httpd_plan *plan, httpd_reply *reply)
{
	ts_buf *b = &reply->body;
	const item *it;

	if (head->ndjson) {
		reply_init(reply, 200, "application/x-ndjson");
		for (size_t i = 0; i < plan->nitems; i++) {
			it = &plan->items[i];
			if (httpd_append(b, "{\"line\":") ||
			    ts_buf_append_int(b, it->line) ||
			    httpd_append(b, ",\"status\":") ||
			    ts_buf_append_int(b, it->status) ||
			    httpd_append(b, ",") || item_fields(b, rules, it) ||
			    ts_buf_append(b, "}\n", 2))
				return TS_ERR_NOMEM;
		}
		return TS_OK;
	}
	it = &plan->items[0];
	if (it->status == 202 || it->status >= 500) {
		/* 5xx carry the taskId, to be sent again. */
		reply_init(reply, (unsigned)it->status, "application/json");
		reply->retry_after_s = it->status == 503 ? rules->retry_after_s : 0;
		if (ts_buf_append(b, "{", 1) || item_fields(b, rules, it) ||
		    ts_buf_append(b, "}\n", 2))
			return TS_ERR_NOMEM;
		return TS_OK;
	}
	return httpd_reply_error(reply, (unsigned)it->status, it->error,
				 it->field, NULL, 0);
}

ts_err httpd_reply_sent(const ts_send_result *s, httpd_reply *reply)
{
	ts_buf *b = &reply->body;
	int retry;

	switch (s->err) {
	case TS_OK:
		reply_init(reply, 200, "application/json");
		if (ts_buf_append(b, "{\"status\":\"sent\"", 16) ||
		    (s->id[0] && (ts_buf_append(b, ",\"id\":", 6) ||
				  ts_buf_append_json(b, s->id))) ||
		    ts_buf_append(b, "}\n", 2))
			return TS_ERR_NOMEM;
		return TS_OK;
	case TS_ERR_DATA:
		return httpd_reply_error(reply, 400, s->msg, NULL, NULL, 0);
	case TS_ERR_PERMANENT:
		return httpd_reply_error(reply, 502, s->msg, NULL, NULL, 0);
	case TS_ERR_TRANSIENT:
		/* The server's Retry-After, rounded up; 1 s when it said 0. */
		retry = s->retry_after_ms < 0 ? 0 :
			s->retry_after_ms > 0 ?
			(int)((s->retry_after_ms + 999) / 1000) : 1;
		return httpd_reply_error(reply, 503, s->msg, NULL, NULL, retry);
	default:
		return httpd_reply_error(reply, 500,
					 s->msg[0] ? s->msg : ts_strerror(s->err),
					 NULL, NULL, 0);
	}
}

/* ---- items ---- */

void httpd_item_fail(item *it, int status, const char *msg, const char *field)
{
	it->status = status;
	free(it->error);
	free(it->field);
	it->error = strdup(msg ? msg : "error");
	it->field = field && *field ? strdup(field) : NULL;
}

const char *const httpd_result_names[RESULT__COUNT] = {
	"accepted", "invalid", "unavailable", "failed",
};

int httpd_item_result(int status)
{
	switch (status) {
	case 202:
		return RESULT_ACCEPTED;
	case 400:
	case 413:
		return RESULT_INVALID;
	case 503:
		return RESULT_UNAVAILABLE;
	default:
		return RESULT_FAILED;
	}
}

static void item_free(item *it)
{
	free(it->error);
	free(it->field);
	free(it->key);
	free(it->traceparent);
	ts_buf_free(&it->env);
}

void httpd_plan_free(httpd_plan *plan)
{
	for (size_t i = 0; i < plan->nitems; i++)
		item_free(&plan->items[i]);
	if (plan->items != &plan->one)
		free(plan->items);
	plan->items = NULL;
	plan->nitems = plan->nready = 0;
	cJSON_Delete(plan->payload);
	plan->payload = NULL;
}

/* ---- the headers ---- */

/* The media type of a Content-Type value, without parameters, compared
 * case-insensitively: "application/json; charset=utf-8" is JSON. */
static int media_is(const char *value, const char *type)
{
	size_t n = strlen(type);

	if (!value)
		return 0;
	while (*value == ' ' || *value == '\t')
		value++;
	if (strncasecmp(value, type, n) != 0)
		return 0;
	value += n;
	while (*value == ' ' || *value == '\t')
		value++;
	return *value == '\0' || *value == ';';
}

/* Authorization: Bearer TOKEN, compared in constant time. */
static int authorized(const httpd_rules *rules, const char *v)
{
	size_t n;

	if (!rules->token)
		return 1;
	if (!v || strncasecmp(v, "Bearer ", 7) != 0)
		return 0;
	v += 7;
	while (*v == ' ')
		v++;
	n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return ts_consttime_eq(v, n, rules->token, rules->token_len);
}

static enum httpd_next answer(ts_err err)
{
	return err ? HTTPD_FAIL : HTTPD_ANSWER;
}

static enum httpd_next tasks_head(httpd_head *head, const char *ctype,
				  const char *key, const char *tp,
				  httpd_reply *reply)
{
	head->ndjson = media_is(ctype, "application/x-ndjson");
	if (!head->ndjson && !media_is(ctype, "application/json"))
		return answer(httpd_reply_error(reply, 415,
			"Content-Type must be application/json (one task) or "
			"application/x-ndjson (one task per line)", NULL, NULL, 0));
	if (key) {
		if (head->ndjson)
			return answer(httpd_reply_error(reply, 400,
				"not allowed with application/x-ndjson: give "
				"each line its own taskId", "Idempotency-Key",
				NULL, 0));
		if (!ts_valid_task_id(key))
			return answer(httpd_reply_error(reply, 400,
				"must be 1-128 characters of [A-Za-z0-9._:-]",
				"Idempotency-Key", NULL, 0));
		head->idem_key = key;
	}
	/* W3C trace context: an invalid traceparent is ignored, not an
	 * error (the trace simply starts here). */
	if (tp && ts_valid_traceparent(tp))
		head->traceparent = tp;
	return HTTPD_READ;
}

enum httpd_next httpd_decide_head(const httpd_rules *rules, const char *method,
				  const char *url, httpd_header_fn header,
				  void *ctx, httpd_head *head,
				  httpd_reply *reply)
{
	const char *ctype, *clen;
	enum httpd_next next;
	int post;

	memset(head, 0, sizeof *head);
	head->expect_len = -1;
	head->route = httpd_route_of(url);
	post = head->route <= ROUTE_SMS;
	if (head->route == ROUTE_OTHER)
		return answer(httpd_reply_error(reply, 404, "not found", NULL,
						NULL, 0));
	if (post ? strcmp(method, "POST") != 0 :
		   strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer(httpd_reply_error(reply, 405, "method not allowed",
						NULL, post ? "POST" : "GET, HEAD",
						0));
	if (!post)
		return head->route == ROUTE_HEALTHZ ? HTTPD_HEALTHZ :
						      HTTPD_METRICS;
	if (!authorized(rules, header(ctx, "Authorization")))
		return answer(httpd_reply_error(reply, 401,
						"missing or invalid bearer token",
						NULL, NULL, 0));
	ctype = header(ctx, "Content-Type");
	if (head->route == ROUTE_TASKS) {
		next = tasks_head(head, ctype, header(ctx, "Idempotency-Key"),
				  header(ctx, "traceparent"), reply);
		if (next != HTTPD_READ)
			return next;
	} else if (!media_is(ctype, "application/json")) {
		return answer(httpd_reply_error(reply, 415,
						"Content-Type must be application/json",
						NULL, NULL, 0));
	}
	if ((clen = header(ctx, "Content-Length"))) {
		char *end;
		long long n;
		errno = 0;
		n = strtoll(clen, &end, 10);
		if (end != clen && *end == '\0' && !errno && n >= 0)
			head->expect_len = n;
	}
	if (head->expect_len > rules->max_body)
		return answer(httpd_reply_too_large(rules, reply));
	return HTTPD_READ;
}

int httpd_body_fits(const httpd_rules *rules, size_t have, size_t more)
{
	return more <= (uint64_t)rules->max_body &&
	       have <= (uint64_t)rules->max_body - more;
}

/* ---- the body ---- */

/* Parse one task into it, ready to be produced (status 0) or with its
 * error. Returns 1 when ready. */
static int prepare(const httpd_rules *rules, const httpd_head *head, item *it,
		   const char *data, size_t len)
{
	ts_task_opts opts = { 0 };
	ts_task t;
	ts_detail d;
	ts_err err;
	char msg[128], id[40];

	opts.default_id = head->idem_key;
	if (!head->idem_key) {
		int32_t part;
		ts_err idr = rules->steer
			? ts_kafka_new_id(&rules->steer->run, id, sizeof id,
					  atomic_load_explicit(&rules->steer->partitions,
							       memory_order_relaxed),
					  &part)
			: ts_uuid4(id, sizeof id);

		if (idr == TS_OK) {
			opts.default_id = id;
			opts.default_id_generated = 1;
		}
	}
	opts.default_traceparent = head->traceparent;
	err = ts_task_encode(data, len, &opts, &t, &it->env, &d);
	if (err) {
		ts_buf_free(&it->env);
		httpd_item_fail(it, err == TS_ERR_DATA ? 400 : 500,
				err == TS_ERR_DATA ? d.msg : ts_strerror(err),
				err == TS_ERR_DATA ? d.field : NULL);
		return 0;
	}
	memcpy(it->task_id, t.task_id, sizeof it->task_id);
	/* The record keeps the key and the traceparent. */
	it->key = t.key;
	it->traceparent = t.traceparent;
	t.key = t.traceparent = NULL;
	ts_task_free(&t);
	if (head->idem_key && strcmp(it->task_id, head->idem_key) != 0) {
		httpd_item_fail(it, 400, "differs from the taskId in the body",
				"Idempotency-Key");
	} else if ((int64_t)it->env.len > rules->max_task) {
		snprintf(msg, sizeof msg,
			 "task is %zu bytes, over the %lld-byte limit (--max-task)",
			 it->env.len, (long long)rules->max_task);
		httpd_item_fail(it, 413, msg, NULL);
	} else {
		return 1;
	}
	ts_buf_free(&it->env);
	return 0;
}

/* Split an NDJSON body into items, one per non-blank line. */
static ts_err split_lines(httpd_plan *plan, const char *body, size_t len)
{
	const char *p = body, *end = body + len;
	size_t n = 1;
	long line = 0;

	for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))); q++)
		n++;
	if (!(plan->items = calloc(n, sizeof *plan->items)))
		return TS_ERR_NOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *s = p;
		line++;
		while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s < e) {
			item *it = &plan->items[plan->nitems++];
			it->line = line;
			it->src_off = (size_t)(p - body);
			it->src_len = (size_t)(e - p);
		}
		p = e + 1;
	}
	return TS_OK;
}

static enum httpd_next tasks_body(const httpd_rules *rules,
				  const httpd_head *head, const char *body,
				  size_t len, httpd_plan *plan,
				  httpd_reply *reply)
{
	if (head->ndjson) {
		if (split_lines(plan, body, len))
			return HTTPD_FAIL;
	} else {
		plan->items = &plan->one;
		plan->nitems = 1;
		plan->one.line = 1;
		plan->one.src_len = len;
	}
	for (size_t i = 0; i < plan->nitems; i++) {
		item *it = &plan->items[i];

		it->partition = -1;
		it->offset = -1;
		plan->nready += (size_t)prepare(rules, head, it,
						body + it->src_off, it->src_len);
	}
	if (plan->nready)
		return HTTPD_PRODUCE;
	return answer(httpd_reply_tasks(rules, head, plan, reply));
}

static enum httpd_next notify_body(const httpd_rules *rules,
				   const httpd_head *head, const char *body,
				   size_t len, httpd_plan *plan,
				   httpd_reply *reply)
{
	const char *type = head->route == ROUTE_EMAIL ? "email" : "sms";
	ts_detail d;

	plan->channel = head->route == ROUTE_EMAIL ? TS_CHANNEL_EMAIL :
						     TS_CHANNEL_SMS;
	if (!(head->route == ROUTE_EMAIL ? rules->email : rules->sms)) {
		char msg[96];
		snprintf(msg, sizeof msg,
			 "%s delivery is not configured on this server (--%s-url)",
			 type, type);
		return answer(httpd_reply_error(reply, 501, msg, NULL, NULL, 0));
	}
	if (ts_json_check_bytes(body, len, &d))
		return answer(httpd_reply_error(reply, 400, d.msg, NULL, NULL, 0));
	if (!(plan->payload = cJSON_ParseWithLength(body, len)))
		return answer(httpd_reply_error(reply, 400, "invalid JSON", NULL,
						NULL, 0));
	if (ts_payload_validate(type, plan->payload, "", &d))
		return answer(httpd_reply_error(reply, 400, d.msg, d.field,
						NULL, 0));
	return HTTPD_DELIVER;
}

enum httpd_next httpd_decide_body(const httpd_rules *rules,
				  const httpd_head *head, const char *body,
				  size_t len, httpd_plan *plan,
				  httpd_reply *reply)
{
	if (!body)
		body = "";
	if (!httpd_body_fits(rules, 0, len))
		return answer(httpd_reply_too_large(rules, reply));
	switch (head->route) {
	case ROUTE_TASKS:
		return tasks_body(rules, head, body, len, plan, reply);
	case ROUTE_EMAIL:
	case ROUTE_SMS:
		return notify_body(rules, head, body, len, plan, reply);
	default:
		return answer(httpd_reply_error(reply, 404, "not found", NULL,
						NULL, 0));
	}
}
