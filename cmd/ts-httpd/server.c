/* server.c - the libmicrohttpd side: routing, checks before the body,
 * bodies, answers, the access log and the request metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"

static const char *const route_names[ROUTE__COUNT] = {
	"/tasks", "/api/email/send", "/api/sms/send", "/healthz", "/metrics",
	"other",
};

/* ---- JSON text ---- */

ts_err httpd_json_str(ts_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	const unsigned char *run;
	ts_err err;

	if (!s)
		return ts_buf_append(b, "null", 4);
	if ((err = ts_buf_append(b, "\"", 1)))
		return err;
	for (p = run = (const unsigned char *)s; *p; p++) {
		char esc[7];
		size_t n = 2;

		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		if ((err = ts_buf_append(b, run, (size_t)(p - run))))
			return err;
		esc[0] = '\\';
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			n = 6;
		}
		if ((err = ts_buf_append(b, esc, n)))
			return err;
		run = p + 1;
	}
	if ((err = ts_buf_append(b, run, (size_t)(p - run))))
		return err;
	return ts_buf_append(b, "\"", 1);
}

ts_err httpd_append_int(ts_buf *b, long long v)
{
	char digits[24], *p = digits + sizeof digits;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
				       (unsigned long long)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*--p = '-';
	return ts_buf_append(b, p, (size_t)(digits + sizeof digits - p));
}

ts_err httpd_append(ts_buf *b, const char *s)
{
	return ts_buf_append(b, s, strlen(s));
}

/* ---- request life ---- */

static void request_free(request *r)
{
	tasks_free_items(r);
	cJSON_Delete(r->payload);
	ts_buf_free(&r->body);
	free(r->path);
	free(r);
}

void httpd_request_unref(request *r)
{
	if (--r->refs == 0)
		request_free(r);
}

struct MHD_Connection *httpd_request_finish(request *r)
{
	httpd *h = r->h;

	r->done = 1;
	if (r->in_wait) {
		if (r->wprev)
			r->wprev->wnext = r->wnext;
		else
			h->whead = r->wnext;
		if (r->wnext)
			r->wnext->wprev = r->wprev;
		else
			h->wtail = r->wprev;
		r->wprev = r->wnext = NULL;
		r->in_wait = 0;
	}
	if (!r->suspended)
		return NULL;
	r->suspended = 0;
	return r->conn;
}

/* ---- answers ---- */

static enum MHD_Result queue(request *r, unsigned status, char *body,
			     size_t len, const char *content_type,
			     const char *allow, int retry_after_s)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char num[24];

	resp = MHD_create_response_from_buffer(len, body,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				content_type);
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"taskstream\"");
	if (retry_after_s > 0) {
		snprintf(num, sizeof num, "%d", retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	if (atomic_load(&r->h->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->phase = PHASE_ANSWERED;
	r->status = status;
	r->bytes = len;
	return ret;
}

enum MHD_Result httpd_answer(request *r, unsigned status, ts_buf *body,
			     const char *content_type)
{
	char *data = body->data;
	size_t len = body->len;

	/* MHD frees the buffer; the ts_buf gives it up. */
	body->data = NULL;
	body->len = body->cap = 0;
	if (!data && !(data = calloc(1, 1)))
		return MHD_NO;
	return queue(r, status, data, len, content_type, NULL, 0);
}

enum MHD_Result httpd_answer_ex(request *r, unsigned status, ts_buf *body,
				int retry_after_s)
{
	char *data = body->data;
	size_t len = body->len;

	body->data = NULL;
	body->len = body->cap = 0;
	if (!data && !(data = calloc(1, 1)))
		return MHD_NO;
	return queue(r, status, data, len, "application/json", NULL,
		     retry_after_s);
}

/* {"error":msg,"field":field}\n, with Allow or Retry-After when given. */
static enum MHD_Result answer_error_ex(request *r, unsigned status,
				       const char *msg, const char *field,
				       const char *allow, int retry_after_s)
{
	ts_buf b = { 0 };

	if (ts_buf_append(&b, "{\"error\":", 9) || httpd_json_str(&b, msg) ||
	    ts_buf_append(&b, ",\"field\":", 9) ||
	    httpd_json_str(&b, field && *field ? field : NULL) ||
	    ts_buf_append(&b, "}\n", 2)) {
		ts_buf_free(&b);
		return MHD_NO;
	}
	return queue(r, status, b.data, b.len, "application/json", allow,
		     retry_after_s);
}

enum MHD_Result httpd_answer_error(request *r, unsigned status,
				   const char *msg, const char *field)
{
	return answer_error_ex(r, status, msg, field, NULL,
			       status == MHD_HTTP_SERVICE_UNAVAILABLE ?
			       r->h->retry_after_s : 0);
}

/* ---- checks on the headers, before any of the body is read ---- */

static enum route route_of(const char *url)
{
	for (int i = 0; i < ROUTE_OTHER; i++)
		if (strcmp(url, route_names[i]) == 0)
			return (enum route)i;
	return ROUTE_OTHER;
}

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

static const char *header(request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Authorization: Bearer TOKEN, compared in constant time. */
static int authorized(request *r)
{
	httpd *h = r->h;
	const char *v;
	size_t n;

	if (!h->token)
		return 1;
	if (!(v = header(r, MHD_HTTP_HEADER_AUTHORIZATION)))
		return 0;
	if (strncasecmp(v, "Bearer ", 7) != 0)
		return 0;
	v += 7;
	while (*v == ' ')
		v++;
	n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return ts_consttime_eq(v, n, h->token, h->token_len);
}

static enum MHD_Result check_tasks_headers(request *r, const char *ctype)
{
	const char *key = header(r, "Idempotency-Key");
	const char *tp = header(r, "traceparent");

	r->ndjson = media_is(ctype, "application/x-ndjson");
	if (!r->ndjson && !media_is(ctype, "application/json"))
		return httpd_answer_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			"Content-Type must be application/json (one task) or "
			"application/x-ndjson (one task per line)", NULL);
	if (key) {
		if (r->ndjson)
			return httpd_answer_error(r, MHD_HTTP_BAD_REQUEST,
				"not allowed with application/x-ndjson: give "
				"each line its own taskId", "Idempotency-Key");
		if (!ts_valid_task_id(key))
			return httpd_answer_error(r, MHD_HTTP_BAD_REQUEST,
				"must be 1-128 characters of [A-Za-z0-9._:-]",
				"Idempotency-Key");
		r->idem_key = key;
	}
	/* W3C trace context: an invalid traceparent is ignored, not an
	 * error (the trace simply starts here). */
	if (tp && ts_valid_traceparent(tp))
		r->traceparent = tp;
	return MHD_YES;
}

static enum MHD_Result too_large(request *r);

static enum MHD_Result begin(request *r, const char *method)
{
	httpd *h = r->h;
	const char *ctype, *clen;
	int post = r->route <= ROUTE_SMS;

	if (r->route == ROUTE_OTHER)
		return httpd_answer_error(r, MHD_HTTP_NOT_FOUND, "not found",
					  NULL);
	if (post ? strcmp(method, "POST") != 0 :
		   strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer_error_ex(r, MHD_HTTP_METHOD_NOT_ALLOWED,
				       "method not allowed", NULL,
				       post ? "POST" : "GET, HEAD", 0);
	if (!post)
		return MHD_YES;
	if (!authorized(r))
		return httpd_answer_error(r, MHD_HTTP_UNAUTHORIZED,
					  "missing or invalid bearer token",
					  NULL);
	ctype = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (r->route == ROUTE_TASKS) {
		enum MHD_Result ret = check_tasks_headers(r, ctype);
		if (ret != MHD_YES || r->phase == PHASE_ANSWERED)
			return ret;
	} else if (!media_is(ctype, "application/json")) {
		return httpd_answer_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
					  "Content-Type must be application/json",
					  NULL);
	}
	clen = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	r->expect_len = -1;
	if (clen) {
		char *end;
		long long n;
		errno = 0;
		n = strtoll(clen, &end, 10);
		if (end != clen && *end == '\0' && !errno && n >= 0)
			r->expect_len = n;
	}
	if (r->expect_len > h->cfg->max_body)
		return too_large(r);
	if (r->expect_len > 0 &&
	    ts_buf_reserve(&r->body, (size_t)r->expect_len + 1))
		return MHD_NO;
	return MHD_YES;
}

/* A piece of the body, counted as it arrives. libmicrohttpd cannot answer
 * while an upload is in progress, so a chunked body (no Content-Length to
 * refuse up front) that goes over --max-body is no longer stored, only
 * drained, and answered 413 at its end; past DRAIN_MAX more bytes the
 * connection is closed instead. */
#define DRAIN_MAX ((size_t)64 << 10)

static enum MHD_Result receive(request *r, const char *data, size_t len)
{
	if (r->too_large) {
		r->drained += len;
		return r->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
	}
	if ((int64_t)(r->body.len + len) > r->h->cfg->max_body) {
		ts_buf_free(&r->body);
		r->too_large = 1;
		r->drained = len;
		return MHD_YES;
	}
	if (ts_buf_append(&r->body, data, len))
		return MHD_NO;
	return MHD_YES;
}

static enum MHD_Result too_large(request *r)
{
	char msg[96];

	snprintf(msg, sizeof msg, "request body over %lld bytes (--max-body)",
		 (long long)r->h->cfg->max_body);
	return httpd_answer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL);
}

/* ---- GET /healthz and /metrics ---- */

static enum MHD_Result healthz(request *r)
{
	httpd *h = r->h;
	long long ok_ms = atomic_load(&h->kafka_ok_ms);
	const char *why = NULL;
	ts_buf b = { 0 };

	if (atomic_load(&h->stopping))
		why = "shutting down";
	else if (!ok_ms)
		why = "kafka: no broker has answered yet";
	else if (!atomic_load(&h->kafka_up) || ts_mono_ms() - ok_ms > 5000)
		why = "kafka: no broker reachable";
	if (!why) {
		ts_buf_appendf(&b, "{\"status\":\"ok\",\"topic\":\"%s\"}\n",
			       h->topic);
		return httpd_answer(r, MHD_HTTP_OK, &b, "application/json");
	}
	ts_buf_appendf(&b, "{\"status\":\"unavailable\",\"reason\":\"%s\"}\n",
		       why);
	return httpd_answer(r, MHD_HTTP_SERVICE_UNAVAILABLE, &b,
			    "application/json");
}

static enum MHD_Result metrics(request *r)
{
	ts_buf b = { 0 };

	if (ts_metrics_render(r->h->metrics, &b)) {
		ts_buf_free(&b);
		return MHD_NO;
	}
	return httpd_answer(r, MHD_HTTP_OK, &b, TS_METRICS_CONTENT_TYPE);
}

static enum MHD_Result dispatch(request *r)
{
	if (r->too_large)
		return too_large(r);
	switch (r->route) {
	case ROUTE_TASKS:
		return tasks_handle(r);
	case ROUTE_EMAIL:
	case ROUTE_SMS:
		return notify_handle(r);
	case ROUTE_HEALTHZ:
		return healthz(r);
	case ROUTE_METRICS:
		return metrics(r);
	default:
		return httpd_answer_error(r, MHD_HTTP_NOT_FOUND, "not found",
					  NULL);
	}
}

static request *request_new(httpd *h, struct MHD_Connection *c,
			    const char *url, const char *method)
{
	request *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->h = h;
	r->conn = c;
	r->refs = 1;
	r->start_us = httpd_mono_us();
	r->route = route_of(url);
	r->phase = PHASE_READING;
	r->expect_len = -1;
	snprintf(r->method, sizeof r->method, "%s", method);
	if (!(r->path = strdup(url))) {
		free(r);
		return NULL;
	}
	atomic_fetch_add(&h->active, 1);
	ts_series_inc(h->s_inflight);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	httpd *h = cls;
	request *r = *state;

	(void)version;
	if (!r) {
		if (!(r = request_new(h, c, url, method)))
			return MHD_NO;
		*state = r;
		return begin(r, method);
	}
	if (r->phase == PHASE_ANSWERED) {
		*upload_size = 0; /* what follows an early answer is dropped */
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		return receive(r, upload, n);
	}
	if (r->phase == PHASE_READING)
		return dispatch(r);
	/* PHASE_WAITING: resumed, the outcome is in. */
	return r->route == ROUTE_TASKS ? tasks_answer(r) : notify_answer(r);
}

/* ---- access log ---- */

static void client_addr(struct MHD_Connection *c, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	buf[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  buf, (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)size);
}

/* The access log is buffered: lines are written when 16 KiB have
 * gathered, or by httpd_log_flush() (called at least every 100 ms by the
 * Kafka poller thread, and at exit), saving a write(2) per request under
 * load; like nginx's "access_log ... buffer= flush=". */
#define LOG_FLUSH_BYTES (16 << 10)
#define LOG_FLUSH_MS 100

static void log_write(httpd *h)
{
	const char *p = h->log.data;
	size_t left = h->log.len;

	while (left) {
		ssize_t n = write(STDOUT_FILENO, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!h->log_failed)
				ts_log_error("stdout: %s; access log lines are lost",
					     n < 0 ? strerror(errno) : "short write");
			h->log_failed = 1; /* the service goes on */
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	ts_buf_reset(&h->log);
}

void httpd_log_flush(httpd *h, int force)
{
	pthread_mutex_lock(&h->log_lock);
	if (h->log.len &&
	    (force || ts_mono_ms() - h->log_since_ms >= LOG_FLUSH_MS))
		log_write(h);
	pthread_mutex_unlock(&h->log_lock);
}

/* One JSON line on stdout per request; never a header value. Built
 * without printf: this runs for every request. */
static void access_log(request *r, int64_t us)
{
	httpd *h = r->h;
	ts_buf *b = &h->log;
	char remote[64], frac[4];

	client_addr(r->conn, remote, sizeof remote);
	frac[0] = (char)('0' + us / 100 % 10);
	frac[1] = (char)('0' + us / 10 % 10);
	frac[2] = (char)('0' + us % 10);
	frac[3] = '\0';
	pthread_mutex_lock(&h->log_lock);
	if (!b->len)
		h->log_since_ms = ts_mono_ms();
	httpd_append(b, "{\"time\":\"");
	if (!ts_buf_reserve(b, 40)) {
		ts_now_rfc3339(b->data + b->len, 40);
		b->len += strlen(b->data + b->len);
	}
	httpd_append(b, "\",\"remote\":\"");
	httpd_append(b, remote);
	httpd_append(b, "\",\"method\":");
	httpd_json_str(b, r->method);
	httpd_append(b, ",\"path\":");
	httpd_json_str(b, r->path);
	httpd_append(b, ",\"status\":");
	httpd_append_int(b, r->status);
	httpd_append(b, ",\"bytes\":");
	httpd_append_int(b, (long long)r->bytes);
	httpd_append(b, ",\"ms\":");
	httpd_append_int(b, us / 1000);
	httpd_append(b, ".");
	httpd_append(b, frac);
	if (r->route == ROUTE_TASKS && r->nitems == 1 && r->items[0].task_id[0]) {
		/* taskIds are of a JSON-safe alphabet (validated) */
		httpd_append(b, ",\"taskId\":\"");
		httpd_append(b, r->items[0].task_id);
		httpd_append(b, "\"");
	} else if (r->route == ROUTE_TASKS && r->ndjson && r->nitems) {
		httpd_append(b, ",\"tasks\":");
		httpd_append_int(b, (long long)r->nitems);
	}
	if (r->aborted)
		httpd_append(b, ",\"aborted\":true");
	httpd_append(b, "}\n");
	if (b->len >= LOG_FLUSH_BYTES)
		log_write(h);
	pthread_mutex_unlock(&h->log_lock);
}

/* The series of a route and status, looked up once (MHD thread only). */
static ts_series *requests_series(httpd *h, enum route route, unsigned status)
{
	static const unsigned codes[] = { 0, 200, 202, 400, 401, 404, 405, 413,
					  415, 500, 501, 502, 503 };
	char code[12];
	size_t i;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (codes[i] == status)
			break;
	if (i < sizeof codes / sizeof codes[0] && h->s_requests[route][i])
		return h->s_requests[route][i];
	snprintf(code, sizeof code, "%u", status);
	if (i == sizeof codes / sizeof codes[0])
		return ts_metric_with(h->m_requests, route_names[route], code);
	if (!h->s_requests[route][i])
		h->s_requests[route][i] = ts_metric_with(h->m_requests,
			route_names[route], status ? code : "aborted");
	return h->s_requests[route][i];
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode toe)
{
	httpd *h = cls;
	request *r = *state;
	int64_t us;
	double secs;

	(void)c;
	if (!r)
		return;
	*state = NULL;
	if (r->phase != PHASE_ANSWERED ||
	    toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		r->aborted = 1;
	if (r->phase != PHASE_ANSWERED)
		r->status = 0;
	us = httpd_mono_us() - r->start_us;
	secs = (double)us / 1e6;
	access_log(r, us);
	ts_series_inc(requests_series(h, r->route, r->status));
	if (!h->s_duration[r->route])
		h->s_duration[r->route] = ts_metric_with(h->m_duration,
							 route_names[r->route]);
	ts_series_observe(h->s_duration[r->route], secs);
	ts_series_dec(h->s_inflight);
	atomic_fetch_sub(&h->active, 1);
	pthread_mutex_lock(&h->lock);
	r->conn = NULL;
	httpd_request_unref(r);
	pthread_mutex_unlock(&h->lock);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	ts_logv(TS_LOG_DEBUG, "http", fmt, ap);
}

/* ---- the daemon ---- */

ts_err httpd_server_start(httpd *h, ts_detail *d)
{
	const ts_config *cfg = h->cfg;
	struct MHD_OptionItem o[12];
	/* One event thread with epoll; TURBO skips shutdown(2) before close
	 * and reads optimistically, which matters at tens of thousands of
	 * requests a second. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	unsigned timeout_s = (unsigned)((cfg->conn_timeout_ms + 999) / 1000);
	int n = 0;

	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET,
		h->listen_fd, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
		(intptr_t)cfg->max_connections, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
		(intptr_t)timeout_s, NULL };
	/* Each connection's buffer (request line and headers must fit; the
	 * body is streamed through it). libmicrohttpd clears it for every
	 * request, so smaller is cheaper: 16 KiB instead of 32. */
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(intptr_t)(16 << 10), NULL };
	if (h->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "--tls-cert: this libmicrohttpd has no TLS support");
		flags |= MHD_USE_TLS;
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT,
			0, h->tls_cert };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY,
			0, h->tls_key };
	}
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	/* The logger and the completion callback are function pointers,
	 * which MHD_OptionItem cannot carry: pass them directly. */
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				     MHD_OPTION_ARRAY, o,
				     MHD_OPTION_END);
	if (!h->daemon)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s: cannot start the HTTP server%s", cfg->listen,
			       h->tls_cert ? " (check --tls-cert and --tls-key)" : "");
	return TS_OK;
}

void httpd_server_quiesce(httpd *h)
{
	MHD_socket fd;

	if (!h->daemon || h->listen_fd < 0)
		return;
	fd = MHD_quiesce_daemon(h->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	h->listen_fd = -1;
}

void httpd_server_stop(httpd *h)
{
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	h->daemon = NULL;
}

ts_err httpd_metrics_init(httpd *h, ts_detail *d)
{
	ts_err err;

	if ((err = ts_metrics_new(&h->metrics)))
		return err;
	if ((err = ts_metrics_counter(h->metrics, "taskstream_http_requests_total",
			"HTTP requests answered, by route and status code.",
			"route,code", &h->m_requests, d)) ||
	    (err = ts_metrics_histogram(h->metrics,
			"taskstream_http_request_duration_seconds",
			"Time from the request's headers to its completion.",
			"route", NULL, 0, &h->m_duration, d)) ||
	    (err = ts_metrics_gauge(h->metrics, "taskstream_http_requests_in_flight",
			"Requests begun and not yet answered (waiting ones too).",
			NULL, &h->m_inflight, d)) ||
	    (err = ts_metrics_histogram(h->metrics,
			"taskstream_produce_duration_seconds",
			"Time from producing a task to Kafka's acknowledgement.",
			NULL, NULL, 0, &h->m_produce, d)) ||
	    (err = ts_metrics_counter(h->metrics, "taskstream_http_tasks_total",
			"Tasks received over HTTP, by outcome (accepted, invalid, "
			"unavailable, failed).", "result", &h->m_tasks, d)) ||
	    (err = ts_metrics_counter(h->metrics,
			"taskstream_http_notifications_total",
			"Notification API deliveries, by channel and outcome.",
			"channel,result", &h->m_notify, d)) ||
	    (err = ts_metrics_gauge(h->metrics, "taskstream_kafka_up",
			"1 when the last Kafka metadata request succeeded.",
			NULL, &h->m_kafka_up, d)))
		return err;
	/* The usual series exist from the start, so rates can be taken. */
	h->s_inflight = ts_metric_with(h->m_inflight);
	for (int i = 0; i < 4; i++) {
		static const char *const res[] = { "accepted", "invalid",
						   "unavailable", "failed" };
		ts_metric_with(h->m_tasks, res[i]);
	}
	return TS_OK;
}
