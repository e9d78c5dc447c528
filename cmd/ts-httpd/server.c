/* server.c - the libmicrohttpd side: callbacks that hand the decisions to
 * decide.c, bodies, answers, the access log and the request metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"

/* ---- request life ---- */

static void request_free(request *r)
{
	httpd_plan_free(&r->plan);
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

enum MHD_Result httpd_send(request *r, httpd_reply *reply)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = reply->body.len;
	char *body = reply->body.data;
	char num[24];

	/* MHD frees the buffer; the reply gives it up. */
	reply->body.data = NULL;
	reply->body.len = reply->body.cap = 0;
	if (!body && !(body = calloc(1, 1)))
		return MHD_NO;
	resp = MHD_create_response_from_buffer(len, body,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				reply->content_type);
	if (reply->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
					reply->allow);
	if (reply->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"taskstream\"");
	if (reply->retry_after_s > 0) {
		snprintf(num, sizeof num, "%d", reply->retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	if (atomic_load(&r->h->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	ret = MHD_queue_response(r->conn, reply->status, resp);
	MHD_destroy_response(resp);
	r->phase = PHASE_ANSWERED;
	r->status = reply->status;
	r->bytes = len;
	return ret;
}

enum MHD_Result httpd_send_decided(request *r, enum httpd_next next,
				   httpd_reply *reply)
{
	if (next != HTTPD_ANSWER) {
		httpd_reply_free(reply);
		return MHD_NO;
	}
	return httpd_send(r, reply);
}

/* ---- before the body ---- */

static const char *header(void *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result begin(request *r, const char *url, const char *method)
{
	httpd_reply reply = { 0 };

	r->next = httpd_decide_head(&r->h->rules, method, url, header, r->conn,
				    &r->head, &reply);
	if (r->next != HTTPD_READ)
		return r->next == HTTPD_HEALTHZ || r->next == HTTPD_METRICS ?
		       MHD_YES : httpd_send_decided(r, r->next, &reply);
	if (r->head.expect_len > 0 &&
	    ts_buf_reserve(&r->body, (size_t)r->head.expect_len + 1))
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
	if (!httpd_body_fits(&r->h->rules, r->body.len, len)) {
		ts_buf_free(&r->body);
		r->too_large = 1;
		r->drained = len;
		return MHD_YES;
	}
	if (ts_buf_append(&r->body, data, len))
		return MHD_NO;
	return MHD_YES;
}

/* ---- GET /healthz and /metrics ---- */

static enum MHD_Result healthz(request *r)
{
	httpd *h = r->h;
	long long ok_ms = atomic_load(&h->kafka_ok_ms);
	const char *why = NULL;
	httpd_reply reply = { 0 };

	if (atomic_load(&h->stopping))
		why = "shutting down";
	else if (!ok_ms)
		why = "kafka: no broker has answered yet";
	else if (!atomic_load(&h->kafka_up) || ts_mono_ms() - ok_ms > 5000)
		why = "kafka: no broker reachable";
	reply.content_type = "application/json";
	if (!why) {
		reply.status = MHD_HTTP_OK;
		ts_buf_appendf(&reply.body,
			       "{\"status\":\"ok\",\"topic\":\"%s\"}\n",
			       h->topic);
	} else {
		reply.status = MHD_HTTP_SERVICE_UNAVAILABLE;
		ts_buf_appendf(&reply.body,
			       "{\"status\":\"unavailable\",\"reason\":\"%s\"}\n",
			       why);
	}
	return httpd_send(r, &reply);
}

static enum MHD_Result metrics(request *r)
{
	httpd_reply reply = { 0 };

	reply.status = MHD_HTTP_OK;
	reply.content_type = TS_METRICS_CONTENT_TYPE;
	if (ts_metrics_render(r->h->metrics, &reply.body)) {
		httpd_reply_free(&reply);
		return MHD_NO;
	}
	return httpd_send(r, &reply);
}

/* The body is complete (or there is none): do what was decided. */
static enum MHD_Result dispatch(request *r)
{
	httpd *h = r->h;
	httpd_reply reply = { 0 };
	enum httpd_next next;

	if (r->next == HTTPD_HEALTHZ)
		return healthz(r);
	if (r->next == HTTPD_METRICS)
		return metrics(r);
	if (r->too_large)
		return httpd_send_decided(r, httpd_reply_too_large(&h->rules,
						&reply) ? HTTPD_FAIL : HTTPD_ANSWER,
					  &reply);
	next = httpd_decide_body(&h->rules, &r->head, r->body.data,
				 r->body.len, &r->plan, &reply);
	/* The body is no longer needed: give its memory back early. */
	ts_buf_free(&r->body);
	if (next == HTTPD_PRODUCE)
		return tasks_produce(r);
	if (next == HTTPD_DELIVER)
		return notify_deliver(r);
	if (r->head.route == ROUTE_TASKS)
		return tasks_answer_now(r, next, &reply);
	if (next == HTTPD_ANSWER && reply.status == MHD_HTTP_BAD_REQUEST)
		ts_series_inc(ts_metric_with(h->m_notify,
			r->head.route == ROUTE_EMAIL ? "email" : "sms",
			"invalid"));
	return httpd_send_decided(r, next, &reply);
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
	r->phase = PHASE_READING;
	strncpy(r->method, method, sizeof r->method - 1);
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
		return begin(r, url, method);
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
	return r->head.route == ROUTE_TASKS ? tasks_answer(r) : notify_answer(r);
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
 * event thread, and at exit), saving a write(2) per request under load;
 * like nginx's "access_log ... buffer= flush=". */
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
	ts_buf_append_json(b, r->method);
	httpd_append(b, ",\"path\":");
	ts_buf_append_json(b, r->path);
	httpd_append(b, ",\"status\":");
	ts_buf_append_int(b, r->status);
	httpd_append(b, ",\"bytes\":");
	ts_buf_append_int(b, (int64_t)r->bytes);
	httpd_append(b, ",\"ms\":");
	ts_buf_append_int(b, us / 1000);
	httpd_append(b, ".");
	httpd_append(b, frac);
	if (r->head.route == ROUTE_TASKS && r->plan.nitems == 1 && r->plan.items[0].task_id[0]) {
		/* taskIds are of a JSON-safe alphabet (validated) */
		httpd_append(b, ",\"taskId\":\"");
		httpd_append(b, r->plan.items[0].task_id);
		httpd_append(b, "\"");
	} else if (r->head.route == ROUTE_TASKS && r->head.ndjson &&
		   r->plan.nitems) {
		httpd_append(b, ",\"tasks\":");
		ts_buf_append_int(b, (int64_t)r->plan.nitems);
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
		return ts_metric_with(h->m_requests, httpd_route_name(route), code);
	if (!h->s_requests[route][i])
		h->s_requests[route][i] = ts_metric_with(h->m_requests,
			httpd_route_name(route), status ? code : "aborted");
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
	ts_series_inc(requests_series(h, r->head.route, r->status));
	if (!h->s_duration[r->head.route])
		h->s_duration[r->head.route] = ts_metric_with(h->m_duration,
			httpd_route_name(r->head.route));
	ts_series_observe(h->s_duration[r->head.route], secs);
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

/* ---- the daemon and the event loop ---- */

static void wake(int fd)
{
	static const uint64_t one = 1;

	if (write(fd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is full, so it is signalled anyway */
	}
}

static void loop_quiesce(httpd *h)
{
	MHD_socket fd = MHD_quiesce_daemon(h->daemon);

	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	h->listen_fd = -1;
	atomic_store(&h->quiesced, 1);
}

/* The event thread: libmicrohttpd's sockets, Kafka's delivery reports,
 * timeouts and the access log, in one place. A report resumes its
 * connection here, and the answer goes out in the same pass. */
static void *loop_main(void *arg)
{
	httpd *h = arg;
	struct epoll_event ev[4];
	int timeout = 0;

	while (!atomic_load(&h->loop_stop)) {
		MHD_UNSIGNED_LONG_LONG mhd_ms;
		int n = epoll_wait(h->loop_ep, ev, 4, timeout);
		/* Reports when signalled, and on every tick to be safe. */
		int reports = n <= 0;
		uint64_t v;

		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == h->kafka_fd)
				reports = 1;
			else if (ev[i].data.fd == h->wake_fd &&
				 read(h->wake_fd, &v, sizeof v) < 0) {
				/* spurious */
			}
		}
		if (atomic_load(&h->quiesce_req) && !atomic_load(&h->quiesced))
			loop_quiesce(h);
		timeout = tasks_serve(h, reports);
		MHD_run(h->daemon);
		tasks_flush(h);
		httpd_log_flush(h, 0);
		if (MHD_get_timeout(h->daemon, &mhd_ms) == MHD_YES &&
		    mhd_ms < (MHD_UNSIGNED_LONG_LONG)timeout)
			timeout = (int)mhd_ms;
	}
	return NULL;
}

static ts_err loop_start(httpd *h, ts_detail *d)
{
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	int fds[3] = { di ? di->epoll_fd : -1, h->kafka_fd, -1 };

	if ((h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (h->loop_ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL, "epoll: %s",
			       strerror(errno));
	fds[2] = h->wake_fd;
	for (int i = 0; i < 3; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (fds[i] < 0 ||
		    epoll_ctl(h->loop_ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return ts_fail(d, TS_ERR_INTERNAL, NULL, "epoll: %s",
				       fds[i] < 0 ? "no descriptor" : strerror(errno));
	}
	if (pthread_create(&h->loop, NULL, loop_main, h) != 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "cannot start the event thread");
	h->loop_running = 1;
	return TS_OK;
}

ts_err httpd_server_start(httpd *h, ts_detail *d)
{
	const ts_config *cfg = h->cfg;
	struct MHD_OptionItem o[12];
	/* External epoll mode: the event thread (loop_main) runs it. TURBO
	 * skips shutdown(2) before close and reads optimistically, which
	 * matters at tens of thousands of requests a second. */
	unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	unsigned timeout_s = (unsigned)((cfg->conn_timeout_ms + 999) / 1000);
	int n = 0;

	h->wake_fd = h->loop_ep = -1;
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET,
		h->listen_fd, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
		(intptr_t)cfg->max_connections, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
		(intptr_t)timeout_s, NULL };
	/* Each connection's buffer (request line and headers must fit; the
	 * body is streamed through it). libmicrohttpd zeroes all of it for
	 * every request (memset was the largest user-space cost), so
	 * smaller is cheaper: 8 KiB, as nginx's large header buffers. */
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(intptr_t)(8 << 10), NULL };
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
	return loop_start(h, d);
}

void httpd_server_quiesce(httpd *h)
{
	if (!h->daemon || h->listen_fd < 0)
		return;
	if (!h->loop_running) {
		loop_quiesce(h);
		return;
	}
	/* libmicrohttpd in external mode is the event thread's alone. */
	atomic_store(&h->quiesce_req, 1);
	wake(h->wake_fd);
	while (!atomic_load(&h->quiesced)) {
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
	}
}

void httpd_resume_from(httpd *h, struct MHD_Connection *conn)
{
	MHD_resume_connection(conn);
	if (h->loop_running)
		wake(h->wake_fd);
}

void httpd_server_stop(httpd *h)
{
	if (h->loop_running) {
		atomic_store(&h->loop_stop, 1);
		wake(h->wake_fd);
		pthread_join(h->loop, NULL);
		h->loop_running = 0;
	}
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	h->daemon = NULL;
	if (h->loop_ep >= 0)
		close(h->loop_ep);
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	h->loop_ep = h->wake_fd = -1;
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
	h->s_produce = ts_metric_with(h->m_produce);
	h->s_kafka_up = ts_metric_with(h->m_kafka_up);
	for (int i = 0; i < RESULT__COUNT; i++)
		h->s_tasks[i] = ts_metric_with(h->m_tasks, httpd_result_names[i]);
	return TS_OK;
}
