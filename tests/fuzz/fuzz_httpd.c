/* fuzz_httpd.c - ts-httpd's request handling (cmd/ts-httpd/decide.c): the
 * same functions the server calls from its libmicrohttpd callbacks, driven
 * without a socket.
 *
 * Input: one byte of options, then a request as text:
 *   METHOD URL\n
 *   Name: value\n ...      (a line ending in \r\n loses its \r)
 *   \n
 *   body...
 * Option bits: 1 a bearer token is configured, 2 email and 4 sms
 * transports are, 8 --max-body 256, 16 --max-task 300; the top three bits
 * pick the outcome of what would be produced or delivered.
 *
 * Invariants: every answer has one of DESIGN.md's status codes and a JSON
 * body ({"error","field"} for errors; NDJSON lines for a batch), Allow only
 * with 405, Retry-After only with 503, no CR, LF or other control byte in
 * any header value (HTTP or record header), a non-empty record key (bytes:
 * a task's key may hold anything); a request is only taken further (body
 * read, produced, delivered) with the right bearer token when one is
 * configured; whatever is to be produced re-parses with lib/task, carries
 * only the envelope's top-level fields, fits --max-task, and keeps the
 * Idempotency-Key as its taskId.
 */
/* fuzz-sources: cmd/ts-httpd/decide.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../cmd/ts-httpd/decide.h"

#define TOKEN "s3cret-token"
#define MAX_HEADERS 32

struct request_text {
	char *method, *url;
	const char *name[MAX_HEADERS], *value[MAX_HEADERS];
	int nheaders;
	const char *body;
	size_t body_len;
};

static void fail(const char *what, const char *a, size_t alen)
{
	fprintf(stderr, "fuzz_httpd: %s: %.*s\n", what, (int)(alen > 400 ? 400 : alen),
		a ? a : "(null)");
	abort();
}

static void check(int ok, const char *what, const char *detail)
{
	if (!ok)
		fail(what, detail, detail ? strlen(detail) : 0);
}

static const char *lookup(void *ctx, const char *name)
{
	const struct request_text *rq = ctx;

	for (int i = 0; i < rq->nheaders; i++)
		if (strcasecmp(rq->name[i], name) == 0)
			return rq->value[i];
	return NULL;
}

/* Split the text (NUL-terminated copy, modified in place). Returns 0 when
 * there is no request line. */
static int split(char *text, size_t len, struct request_text *rq)
{
	char *end = text + len, *p = text, *nl, *sp;

	memset(rq, 0, sizeof *rq);
	if (!(nl = memchr(p, '\n', len)))
		return 0;
	*nl = '\0';
	if (nl > p && nl[-1] == '\r')
		nl[-1] = '\0';
	if (!(sp = strchr(p, ' ')))
		return 0;
	*sp = '\0';
	rq->method = p;
	rq->url = sp + 1;
	for (p = nl + 1; p < end; p = nl + 1) {
		char *colon;
		if (!(nl = memchr(p, '\n', (size_t)(end - p))))
			nl = end;
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		if (!*p) { /* the blank line: the body follows */
			p = nl + 1;
			break;
		}
		if ((colon = strchr(p, ':')) && rq->nheaders < MAX_HEADERS) {
			*colon++ = '\0';
			while (*colon == ' ' || *colon == '\t')
				colon++;
			rq->name[rq->nheaders] = p;
			rq->value[rq->nheaders++] = colon;
		}
	}
	rq->body = p < end ? p : end;
	rq->body_len = p < end ? (size_t)(end - p) : 0;
	return 1;
}

static int is_status(unsigned s)
{
	static const unsigned ok[] = { 200, 202, 400, 401, 404, 405, 413, 415,
				       500, 501, 502, 503 };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (s == ok[i])
			return 1;
	return 0;
}

static int header_safe(const char *v)
{
	for (; v && *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 0;
	return 1;
}

/* One answer body object: {"error":string,"field":string|null} for an
 * error (a batch line also has "line" and "status"). */
static void check_object(const cJSON *o, unsigned status, const char *text,
			 size_t len)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "field");

	if (!cJSON_IsObject(o))
		fail("answer is not a JSON object", text, len);
	if (status >= 400) {
		if (!cJSON_IsString(e) || !f || !(cJSON_IsString(f) || cJSON_IsNull(f)))
			fail("error answer without error and field", text, len);
	} else if (status == 202) {
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "taskId")) ||
		    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "offset")))
			fail("202 without taskId and offset", text, len);
	}
}

static void check_reply(const httpd_reply *r, size_t nlines)
{
	const char *body = r->body.data ? r->body.data : "";
	size_t len = r->body.len;
	char num[16];

	snprintf(num, sizeof num, "%u", r->status);
	check(is_status(r->status), "status not in DESIGN.md", num);
	check(r->content_type && header_safe(r->content_type),
	      "bad Content-Type", r->content_type);
	check(header_safe(r->allow), "control byte in Allow", r->allow);
	check(!r->allow == (r->status != 405), "Allow without 405 or 405 without Allow",
	      num);
	check(r->retry_after_s >= 0 && (r->retry_after_s == 0 || r->status == 503),
	      "Retry-After on a status other than 503", num);
	check(strlen(body) == len, "NUL in the body", body);
	/* An empty batch has an empty answer: no line, no task. */
	if (strcmp(r->content_type, "application/x-ndjson") == 0) {
		size_t lines = 0;
		check(r->status == 200, "NDJSON answer not 200", num);
		for (const char *p = body; p < body + len;) {
			const char *nl = memchr(p, '\n', (size_t)(body + len - p));
			if (!nl)
				fail("NDJSON answer line without a newline", body, len);
			cJSON *o = cJSON_ParseWithLength(p, (size_t)(nl - p));
			if (!o)
				fail("NDJSON answer line is not JSON", p, (size_t)(nl - p));
			const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
			if (!cJSON_IsNumber(st) ||
			    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "line")))
				fail("NDJSON answer line without line and status", p,
				     (size_t)(nl - p));
			check_object(o, (unsigned)st->valueint, p, (size_t)(nl - p));
			cJSON_Delete(o);
			lines++;
			p = nl + 1;
		}
		check(lines == nlines, "NDJSON answer: not one line per task", body);
		return;
	}
	check(strcmp(r->content_type, "application/json") == 0,
	      "unexpected Content-Type", r->content_type);
	check(len > 0, "empty JSON answer", num);
	cJSON *o = cJSON_ParseWithLength(body, len);
	if (!o)
		fail("answer is not JSON", body, len);
	check_object(o, r->status, body, len);
	cJSON_Delete(o);
}

/* Right bearer token, checked apart from decide.c's own code: the header
 * starts with "Bearer" and holds the token. */
static int has_token(const struct request_text *rq)
{
	const char *v = lookup((void *)rq, "Authorization");

	return v && strncasecmp(v, "bearer", 6) == 0 && strstr(v, TOKEN);
}

/* A record about to be produced. */
static void check_record(const httpd_rules *rules, const httpd_head *head,
			 const item *it)
{
	static const char *const fields[] = { "taskId", "taskType", "payload",
					      "createdAt", "key" };
	ts_task t;
	ts_detail d;
	const cJSON *f;

	check(it->env.data && strlen(it->env.data) == it->env.len,
	      "record value missing or with a NUL", it->env.data);
	check((int64_t)it->env.len <= rules->max_task, "record over --max-task",
	      it->env.data);
	check(ts_task_parse(it->env.data, it->env.len, NULL, &t, &d) == TS_OK,
	      "record value does not parse as a task", it->env.data);
	check(strcmp(t.task_id, it->task_id) == 0, "record taskId differs",
	      it->env.data);
	check(strcmp(ts_task_record_key(&t), httpd_item_key(it)) == 0,
	      "record key is not the envelope's", it->env.data);
	ts_task_free(&t);
	cJSON *o = cJSON_ParseWithLength(it->env.data, it->env.len);
	check(o != NULL, "record value is not JSON", it->env.data);
	cJSON_ArrayForEach(f, o) {
		size_t i;
		for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
			if (strcmp(f->string, fields[i]) == 0)
				break;
		check(i < sizeof fields / sizeof fields[0],
		      "record value has a top-level field beyond the envelope's",
		      f->string);
	}
	cJSON_Delete(o);
	/* A record key is bytes, not a header: any non-empty string of the
	 * task's is fine (tests/data/hostile/crlf-key.json is a good task). */
	check(*httpd_item_key(it), "empty record key", httpd_item_key(it));
	check(!it->traceparent || (ts_valid_traceparent(it->traceparent) &&
				   header_safe(it->traceparent)),
	      "bad traceparent record header", it->traceparent);
	check(!head->idem_key || strcmp(it->task_id, head->idem_key) == 0,
	      "taskId is not the Idempotency-Key", it->task_id);
}

/* What Kafka might say about item i. */
static void ack(item *it, size_t i, unsigned mode)
{
	switch ((mode + i) % 5) {
	case 0:
	case 1:
		it->status = 202;
		it->partition = (int32_t)(i % 7);
		it->offset = (int64_t)(i * 1000003u);
		break;
	case 2:
		httpd_item_fail(it, 503, "Kafka did not acknowledge within 5000ms; "
				"the task may still be delivered", NULL);
		break;
	case 3:
		httpd_item_fail(it, 413, "not acknowledged by Kafka: Broker: "
				"Message size too large", NULL);
		break;
	default:
		httpd_item_fail(it, 502, "not acknowledged by Kafka: \"fatal\"\n\t\x01",
				NULL);
	}
}

static void produce(const httpd_rules *rules, const httpd_head *head,
		    httpd_plan *plan, unsigned mode)
{
	httpd_reply reply = { 0 };
	size_t ready = 0;

	check(head->route == ROUTE_TASKS, "produce for another route", NULL);
	for (size_t i = 0; i < plan->nitems; i++) {
		item *it = &plan->items[i];
		if (it->status == 0) {
			ready++;
			check_record(rules, head, it);
			ack(it, i, mode);
		} else {
			check(it->status == 400 || it->status == 413 ||
			      it->status == 500, "item error status", it->error);
			check(it->error != NULL, "item error without text", NULL);
		}
	}
	check(ready == plan->nready && ready > 0, "nready miscounted", NULL);
	check(head->ndjson || plan->nitems == 1, "one body, many tasks", NULL);
	check(httpd_reply_tasks(rules, head, plan, &reply) == TS_OK, "reply_tasks",
	      NULL);
	check_reply(&reply, plan->nitems);
	httpd_reply_free(&reply);
}

static void deliver(const httpd_rules *rules, const httpd_head *head,
		    httpd_plan *plan, const struct request_text *rq,
		    unsigned mode)
{
	static const ts_err errs[] = { TS_OK, TS_ERR_DATA, TS_ERR_PERMANENT,
				       TS_ERR_TRANSIENT, TS_ERR_INTERNAL };
	httpd_reply reply = { 0 };
	ts_send_result s;

	check(head->route == ROUTE_EMAIL || head->route == ROUTE_SMS,
	      "deliver for another route", NULL);
	check(head->route == ROUTE_EMAIL ? rules->email : rules->sms,
	      "delivery without a transport", NULL);
	check(plan->channel == (head->route == ROUTE_EMAIL ? TS_CHANNEL_EMAIL :
							     TS_CHANNEL_SMS),
	      "wrong channel", NULL);
	check(cJSON_IsObject(plan->payload), "payload is not an object", NULL);
	memset(&s, 0, sizeof s);
	s.err = errs[mode % 5];
	s.retry_after_ms = mode & 1 ? -1 : (int64_t)(mode * 700);
	/* What a transport might say: the request's own bytes included. */
	snprintf(s.msg, sizeof s.msg, "550 %.*s", (int)(rq->body_len % 300),
		 rq->body);
	snprintf(s.id, sizeof s.id, "<%.*s@x>", (int)(rq->body_len % 90), rq->body);
	check(httpd_reply_sent(&s, &reply) == TS_OK, "reply_sent", NULL);
	check_reply(&reply, 0);
	httpd_reply_free(&reply);
}

/* The body as the server receives it: in pieces, counted against
 * --max-body; over it, the server answers 413 at the end. */
static int body_fits(const httpd_rules *rules, size_t len)
{
	size_t have = 0;

	while (have < len) {
		size_t n = len - have < 1000 ? len - have : 1000;
		if (!httpd_body_fits(rules, have, n))
			return 0;
		have += n;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	httpd_rules rules = { 0 };
	httpd_head head;
	httpd_reply reply = { 0 };
	httpd_plan plan;
	struct request_text rq;
	enum httpd_next next;
	unsigned opts, mode;
	char *text;

	if (size < 1)
		return 0;
	opts = data[0];
	mode = opts >> 5;
	rules.token = opts & 1 ? TOKEN : NULL;
	rules.token_len = opts & 1 ? strlen(TOKEN) : 0;
	rules.email = !!(opts & 2);
	rules.sms = !!(opts & 4);
	rules.max_body = opts & 8 ? 256 : 1 << 20;
	rules.max_task = opts & 16 ? 300 : 1000000;
	rules.retry_after_s = 5;
	rules.topic = "task-topic";
	if (!(text = malloc(size)))
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (!split(text, size - 1, &rq) || strlen(rq.method) > 7) {
		free(text);
		return 0;
	}

	next = httpd_decide_head(&rules, rq.method, rq.url, lookup, &rq, &head,
				 &reply);
	switch (next) {
	case HTTPD_ANSWER:
		check(reply.status != 401 || rules.token, "401 without a token", NULL);
		check_reply(&reply, 0);
		goto out;
	case HTTPD_HEALTHZ:
	case HTTPD_METRICS:
		check(strcmp(rq.method, "GET") == 0 || strcmp(rq.method, "HEAD") == 0,
		      "operator endpoint for another method", rq.method);
		check(strcmp(rq.url, next == HTTPD_HEALTHZ ? "/healthz" : "/metrics") == 0,
		      "operator endpoint for another path", rq.url);
		goto out;
	case HTTPD_READ:
		break;
	default:
		check(0, "unexpected decision on the headers", rq.url);
	}
	check(strcmp(rq.method, "POST") == 0, "body read for a method not POST",
	      rq.method);
	check(!rules.token || has_token(&rq), "accepted without the bearer token",
	      lookup(&rq, "Authorization"));
	check(head.expect_len <= rules.max_body, "Content-Length over --max-body read",
	      NULL);
	check(!head.idem_key || ts_valid_task_id(head.idem_key),
	      "invalid Idempotency-Key let through", head.idem_key);

	memset(&plan, 0, sizeof plan);
	if (!body_fits(&rules, rq.body_len)) {
		check(httpd_reply_too_large(&rules, &reply) == TS_OK, "too_large", NULL);
		check(reply.status == 413, "body over --max-body not 413", NULL);
		check_reply(&reply, 0);
		goto out;
	}
	next = httpd_decide_body(&rules, &head, rq.body, rq.body_len, &plan, &reply);
	switch (next) {
	case HTTPD_ANSWER:
		check(reply.status != 202 && reply.status != 401,
		      "body answered 202 or 401 without producing", NULL);
		check_reply(&reply, head.ndjson ? plan.nitems : 0);
		break;
	case HTTPD_PRODUCE:
		produce(&rules, &head, &plan, mode);
		break;
	case HTTPD_DELIVER:
		deliver(&rules, &head, &plan, &rq, mode);
		break;
	default:
		check(0, "unexpected decision on the body", rq.url);
	}
	httpd_plan_free(&plan);
out:
	httpd_reply_free(&reply);
	free(text);
	return 0;
}
