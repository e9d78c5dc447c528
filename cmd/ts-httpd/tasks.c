/* tasks.c - POST /tasks: validate with lib/task, produce with acks=all,
 * answer only after Kafka acknowledged (or 503 at --produce-timeout).
 *
 * The connection is suspended while its records are in flight. The delivery
 * report callback runs on the poller thread, which also times out requests
 * whose reports are late: the wait list is in deadline order because every
 * request gets the same timeout, so only its head needs looking at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "kafka.h"
#include "log.h"
#include "tool.h"

static void set_error(item *it, int status, const char *msg,
		      const char *field)
{
	it->status = status;
	free(it->error);
	free(it->field);
	it->error = strdup(msg ? msg : "error");
	it->field = field && *field ? strdup(field) : NULL;
}

void tasks_free_items(request *r)
{
	for (size_t i = 0; i < r->nitems; i++) {
		free(r->items[i].error);
		free(r->items[i].field);
	}
	free(r->items);
	r->items = NULL;
	r->nitems = 0;
}

/* ---- delivery reports and timeouts (poller thread) ---- */

static int status_of(rd_kafka_resp_err_t err)
{
	if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
		return 413;
	return ts_kafka_classify(err) == TS_ERR_PERMANENT ? 502 : 503;
}

/* A timed-out record may have been written all the same: say so. */
static void timeout_msg(const httpd *h, char *buf, size_t size)
{
	snprintf(buf, size, "Kafka did not acknowledge within %lldms; the "
		 "task may still be delivered",
		 (long long)h->cfg->produce_timeout_ms);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	httpd *h = opaque;
	item *it = m->_private;
	request *r;
	struct MHD_Connection *resume = NULL;
	char msg[160];

	(void)rk;
	if (!it)
		return;
	r = it->req;
	if (m->err == RD_KAFKA_RESP_ERR__FATAL && !atomic_exchange(&h->fatal, 1)) {
		char why[256];
		rd_kafka_fatal_error(h->rk, why, sizeof why);
		/* The idempotent producer cannot go on: stop, so that a
		 * supervisor starts a fresh one. */
		ts_log_error("kafka: fatal producer error: %s; shutting down", why);
		ts_stop = 1;
	}
	ts_series_observe(ts_metric_with(h->m_produce),
			  (double)(httpd_mono_us() - it->produced_us) / 1e6);
	if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ||
	    m->err == RD_KAFKA_RESP_ERR__TIMED_OUT)
		timeout_msg(h, msg, sizeof msg);
	else if (m->err)
		snprintf(msg, sizeof msg,
			 "not acknowledged by Kafka: %s", rd_kafka_err2str(m->err));
	pthread_mutex_lock(&h->lock);
	if (!r->done) {
		if (!m->err) {
			atomic_store(&h->kafka_ack_ms, ts_mono_ms());
			it->status = 202;
			it->partition = m->partition;
			it->offset = m->offset;
		} else {
			set_error(it, status_of(m->err), msg, NULL);
		}
		if (--r->pending == 0)
			resume = httpd_request_finish(r);
	}
	httpd_request_unref(r);
	pthread_mutex_unlock(&h->lock);
	if (resume)
		MHD_resume_connection(resume);
}

/* Answer 503 for every request past its deadline. Returns the ms until
 * the next deadline (at most 100). */
static int expire(httpd *h)
{
	struct MHD_Connection *resume[64];
	int64_t now = ts_mono_ms(), wait = 100;
	char msg[160];
	int n = 0;

	timeout_msg(h, msg, sizeof msg);
	pthread_mutex_lock(&h->lock);
	while (h->whead && h->whead->deadline_ms <= now && n < 64) {
		request *r = h->whead;
		for (size_t i = 0; i < r->nitems; i++)
			if (r->items[i].status == 0)
				set_error(&r->items[i], 503, msg, NULL);
		r->pending = 0;
		if ((resume[n] = httpd_request_finish(r)))
			n++;
	}
	if (h->whead && h->whead->deadline_ms - now < wait)
		wait = h->whead->deadline_ms - now;
	pthread_mutex_unlock(&h->lock);
	for (int i = 0; i < n; i++)
		MHD_resume_connection(resume[i]);
	return n == 64 ? 0 : (int)(wait > 0 ? wait : 0);
}

static void *poller_main(void *arg)
{
	httpd *h = arg;
	int wait = 100;

	while (!atomic_load(&h->poller_stop)) {
		rd_kafka_poll(h->rk, wait);
		wait = expire(h);
		httpd_log_flush(h, 0);
	}
	return NULL;
}

static double queue_depth(void *ctx)
{
	httpd *h = ctx;

	return h->rk ? (double)rd_kafka_outq_len(h->rk) : 0;
}

void tasks_check_kafka(httpd *h, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	long long acked = atomic_load(&h->kafka_ack_ms);
	rd_kafka_resp_err_t err;

	/* A recent acknowledgement says as much as a metadata request, and
	 * costs the broker connection nothing: with one request in flight
	 * per connection, a metadata request would make produce requests
	 * wait behind it. */
	if (acked && ts_mono_ms() - acked < 2 * 1000) {
		atomic_store(&h->kafka_ok_ms, acked);
		err = RD_KAFKA_RESP_ERR_NO_ERROR;
		goto out;
	}
	err = rd_kafka_metadata(h->rk, 0, h->rkt, &md, timeout_ms);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (!err)
		atomic_store(&h->kafka_ok_ms, ts_mono_ms());
out:
	if (atomic_exchange(&h->kafka_up, !err) != !err)
		ts_log_info("kafka: %s", err ? rd_kafka_err2str(err) : "reachable");
	ts_series_set(ts_metric_with(h->m_kafka_up), !err);
}

ts_err tasks_start(httpd *h, ts_detail *d)
{
	char timeout[24];
	const char *extra[] = {
		/* librdkafka's own deadline is the answer's: a report that
		 * comes later only confirms what the 503 said. */
		"message.timeout.ms", timeout,
		/* Each request waits for its acknowledgement, so do not
		 * linger: batches still form from what arrives meanwhile. */
		"linger.ms", "0",
		/* One request in flight per broker: what arrives while it is
		 * out goes in the next one. Batches grow with the load by
		 * themselves, and a loaded broker connection costs a fraction
		 * of the CPU (measured: about 40% less per task). */
		"max.in.flight.requests.per.connection", "1",
		"socket.nagle.disable", "true",
		NULL,
	};
	ts_err err;

	snprintf(timeout, sizeof timeout, "%lld",
		 (long long)h->cfg->produce_timeout_ms);
	if ((err = ts_kafka_producer(h->cfg, extra, on_delivery, h, &h->rk, d)))
		return err;
	if (!(h->rkt = rd_kafka_topic_new(h->rk, h->cfg->topic, NULL)))
		return ts_fail(d, TS_ERR_CONFIG, NULL, "--topic %s: %s",
			       h->cfg->topic,
			       rd_kafka_err2str(rd_kafka_last_error()));
	h->topic = rd_kafka_topic_name(h->rkt);
	if ((err = ts_metrics_gauge_fn(h->metrics, "taskstream_kafka_queue_depth",
			"Records waiting in the producer for Kafka's acknowledgement.",
			queue_depth, h, d)))
		return err;
	if (pthread_create(&h->poller, NULL, poller_main, h) != 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "cannot start the Kafka poller thread");
	h->poller_running = 1;
	return TS_OK;
}

void tasks_stop(httpd *h, int timeout_ms)
{
	int64_t until = ts_mono_ms() + timeout_ms;

	if (h->poller_running) {
		atomic_store(&h->poller_stop, 1);
		pthread_join(h->poller, NULL);
		h->poller_running = 0;
	}
	if (!h->rk)
		return;
	while (rd_kafka_outq_len(h->rk) > 0 && ts_mono_ms() < until) {
		rd_kafka_poll(h->rk, 50);
		expire(h);
	}
	if (rd_kafka_outq_len(h->rk) > 0) {
		ts_log_warn("%d record(s) not acknowledged at exit; they may "
			    "or may not have been written",
			    rd_kafka_outq_len(h->rk));
		rd_kafka_purge(h->rk, RD_KAFKA_PURGE_F_QUEUE |
				      RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(h->rk, 0);
	}
}

/* ---- validating and producing (MHD thread) ---- */

/* Parse one task into it; the envelope goes to env. Returns 1 when the
 * task is ready to be produced. */
static int prepare(request *r, item *it, const char *data, size_t len,
		   ts_task *t, ts_buf *env)
{
	const ts_config *cfg = r->h->cfg;
	ts_task_opts opts = { 0 };
	ts_detail d;
	ts_err err;
	char msg[128];

	opts.default_id = r->idem_key;
	opts.default_traceparent = r->traceparent;
	err = ts_task_parse(data, len, &opts, t, &d);
	if (err) {
		set_error(it, err == TS_ERR_DATA ? 400 : 500,
			  err == TS_ERR_DATA ? d.msg : ts_strerror(err),
			  err == TS_ERR_DATA ? d.field : NULL);
		return 0;
	}
	memcpy(it->task_id, t->task_id, sizeof it->task_id);
	if (r->idem_key && strcmp(t->task_id, r->idem_key) != 0) {
		set_error(it, 400, "differs from the taskId in the body",
			  "Idempotency-Key");
		return 0;
	}
	if (ts_task_serialize(t, env)) {
		set_error(it, 500, "out of memory", NULL);
		return 0;
	}
	if ((int64_t)env->len > cfg->max_task) {
		snprintf(msg, sizeof msg,
			 "task is %zu bytes, over the %lld-byte limit (--max-task)",
			 env->len, (long long)cfg->max_task);
		set_error(it, 413, msg, NULL);
		return 0;
	}
	return 1;
}

/* Hand one record to librdkafka; the envelope's buffer goes with it. */
static rd_kafka_resp_err_t produce(httpd *h, item *it, const ts_task *t,
				   ts_buf *env)
{
	const char *key = ts_task_record_key(t);
	rd_kafka_vu_t vu[6];
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;
	size_t n = 0;

	vu[n].vtype = RD_KAFKA_VTYPE_RKT;
	vu[n++].u.rkt = h->rkt;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = env->data;
	vu[n++].u.mem.size = env->len;
	vu[n].vtype = RD_KAFKA_VTYPE_KEY;
	vu[n].u.mem.ptr = (void *)key;
	vu[n++].u.mem.size = strlen(key);
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_FREE;
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = it;
	if (t->traceparent) {
		vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[n].u.header.name = "traceparent";
		vu[n].u.header.val = t->traceparent;
		vu[n++].u.header.size = (ssize_t)strlen(t->traceparent);
	}
	it->produced_us = httpd_mono_us();
	if (!(error = rd_kafka_produceva(h->rk, vu, n))) {
		/* librdkafka owns the buffer now. */
		env->data = NULL;
		env->len = env->cap = 0;
		return RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	err = rd_kafka_error_code(error);
	rd_kafka_error_destroy(error);
	ts_buf_free(env);
	return err;
}

/* Split an NDJSON body into items, one per non-blank line. */
static ts_err split_lines(request *r)
{
	char *p = r->body.data, *end = p + r->body.len;
	size_t n = 0;
	long line = 0;

	for (char *q = p; q < end; q++)
		n += *q == '\n';
	if (!(r->items = calloc(n + 1, sizeof *r->items)))
		return TS_ERR_NOMEM;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *e = nl ? nl : end, *s = p;
		line++;
		while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s < e) {
			item *it = &r->items[r->nitems++];
			it->req = r;
			it->line = line;
			it->src_off = (size_t)(p - r->body.data);
			it->src_len = (size_t)(e - p);
		}
		p = e + 1;
	}
	return TS_OK;
}

static void produce_all(request *r, ts_task *tasks, ts_buf *envs, int *ready)
{
	httpd *h = r->h;

	for (size_t i = 0; i < r->nitems; i++) {
		item *it = &r->items[i];
		rd_kafka_resp_err_t err;
		char msg[160];

		if (!ready[i])
			continue;
		err = produce(h, it, &tasks[i], &envs[i]);
		if (!err)
			continue;
		snprintf(msg, sizeof msg, "not produced: %s",
			 rd_kafka_err2str(err));
		pthread_mutex_lock(&h->lock);
		if (!r->done)
			set_error(it, status_of(err), msg, NULL);
		r->pending--;
		httpd_request_unref(r);
		pthread_mutex_unlock(&h->lock);
	}
}

enum MHD_Result tasks_handle(request *r)
{
	httpd *h = r->h;
	struct MHD_Connection *resume = NULL;
	ts_task *tasks = NULL;
	ts_buf *envs = NULL;
	int *ready = NULL, nready = 0;
	enum MHD_Result ret = MHD_NO;

	if (r->ndjson) {
		if (split_lines(r))
			goto out;
	} else {
		if (!(r->items = calloc(1, sizeof *r->items)))
			goto out;
		r->nitems = 1;
		r->items[0].req = r;
		r->items[0].line = 1;
		r->items[0].src_len = r->body.len;
	}
	tasks = calloc(r->nitems + 1, sizeof *tasks);
	envs = calloc(r->nitems + 1, sizeof *envs);
	ready = calloc(r->nitems + 1, sizeof *ready);
	if (!tasks || !envs || !ready)
		goto out;
	for (size_t i = 0; i < r->nitems; i++) {
		item *it = &r->items[i];
		const char *data = r->body.data ? r->body.data + it->src_off : "";

		it->partition = -1;
		it->offset = -1;
		ready[i] = prepare(r, it, data, it->src_len, &tasks[i], &envs[i]);
		nready += ready[i];
	}
	/* The body is no longer needed: give its memory back early. */
	ts_buf_free(&r->body);
	if (nready == 0) {
		ret = tasks_answer(r);
		goto out;
	}
	/* Suspend before producing, so a report that comes at once finds
	 * the connection suspended and can resume it. */
	MHD_suspend_connection(r->conn);
	pthread_mutex_lock(&h->lock);
	r->phase = PHASE_WAITING;
	r->suspended = 1;
	r->refs += nready;
	r->pending = nready + 1; /* +1: ours, until every record is handed on */
	r->deadline_ms = ts_mono_ms() + h->cfg->produce_timeout_ms;
	r->wprev = h->wtail;
	if (h->wtail)
		h->wtail->wnext = r;
	else
		h->whead = r;
	h->wtail = r;
	r->in_wait = 1;
	pthread_mutex_unlock(&h->lock);
	produce_all(r, tasks, envs, ready);
	pthread_mutex_lock(&h->lock);
	if (!r->done && --r->pending == 0)
		resume = httpd_request_finish(r);
	pthread_mutex_unlock(&h->lock);
	if (resume)
		MHD_resume_connection(resume);
	ret = MHD_YES;
out:
	for (size_t i = 0; tasks && i < r->nitems; i++) {
		ts_task_free(&tasks[i]);
		ts_buf_free(&envs[i]);
	}
	free(tasks);
	free(envs);
	free(ready);
	return ret;
}

/* ---- answers (MHD thread) ---- */

static const char *result_of(int status)
{
	switch (status) {
	case 202:
		return "accepted";
	case 400:
	case 413:
		return "invalid";
	case 503:
		return "unavailable";
	default:
		return "failed";
	}
}

/* The fields of one item's outcome, without the braces. */
static ts_err item_fields(ts_buf *b, const httpd *h, const item *it)
{
	ts_err err;

	/* taskIds and topic names are of JSON-safe alphabets (validated by
	 * lib/task and by Kafka), so they need no escaping. */
	if (it->status == 202) {
		if ((err = httpd_append(b, "\"message\":\"task accepted\",\"taskId\":\"")) ||
		    (err = httpd_append(b, it->task_id)) ||
		    (err = httpd_append(b, "\",\"topic\":\"")) ||
		    (err = httpd_append(b, h->topic)) ||
		    (err = httpd_append(b, "\",\"partition\":")) ||
		    (err = httpd_append_int(b, it->partition)) ||
		    (err = httpd_append(b, ",\"offset\":")))
			return err;
		return httpd_append_int(b, (long long)it->offset);
	}
	if ((err = ts_buf_append(b, "\"error\":", 8)) ||
	    (err = httpd_json_str(b, it->error)) ||
	    (err = ts_buf_append(b, ",\"field\":", 9)) ||
	    (err = httpd_json_str(b, it->field)))
		return err;
	/* Who retries a 503 should send the same taskId again. */
	if (it->task_id[0] && it->status >= 500)
		return ts_buf_appendf(b, ",\"taskId\":\"%s\"", it->task_id);
	return TS_OK;
}

enum MHD_Result tasks_answer(request *r)
{
	httpd *h = r->h;
	ts_buf b = { 0 };
	ts_err err = TS_OK;
	item *it;

	for (size_t i = 0; i < r->nitems; i++)
		ts_series_inc(ts_metric_with(h->m_tasks,
					     result_of(r->items[i].status)));
	if (r->ndjson) {
		for (size_t i = 0; i < r->nitems && !err; i++) {
			it = &r->items[i];
			if (!(err = ts_buf_appendf(&b, "{\"line\":%ld,\"status\":%d,",
						   it->line, it->status)) &&
			    !(err = item_fields(&b, h, it)))
				err = ts_buf_append(&b, "}\n", 2);
		}
		if (err) {
			ts_buf_free(&b);
			return MHD_NO;
		}
		return httpd_answer(r, MHD_HTTP_OK, &b, "application/x-ndjson");
	}
	it = &r->items[0];
	if (it->status == 202) {
		if (ts_buf_append(&b, "{", 1) || item_fields(&b, h, it) ||
		    ts_buf_append(&b, "}\n", 2)) {
			ts_buf_free(&b);
			return MHD_NO;
		}
		return httpd_answer(r, MHD_HTTP_ACCEPTED, &b, "application/json");
	}
	if (it->status == 503 || it->status >= 500) {
		/* httpd_answer_error has no taskId: build it here. */
		if (ts_buf_append(&b, "{", 1) || item_fields(&b, h, it) ||
		    ts_buf_append(&b, "}\n", 2)) {
			ts_buf_free(&b);
			return MHD_NO;
		}
		return httpd_answer_ex(r, (unsigned)it->status, &b,
				       it->status == 503 ? h->retry_after_s : 0);
	}
	return httpd_answer_error(r, (unsigned)it->status, it->error, it->field);
}
