/* tasks.c - POST /tasks: produce with acks=all, answer only after Kafka
 * acknowledged (or 503 at --produce-timeout).
 *
 * The connection is suspended while its records are in flight. The delivery
 * report callback runs on the event thread (tasks_serve), which also times
 * out requests whose reports are late: the wait list is in deadline order
 * because every request gets the same timeout, so only its head needs
 * looking at.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "kafka.h"
#include "log.h"
#include "tool.h"

/* ---- delivery reports and timeouts (event thread) ---- */

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
	int64_t now_us;
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
	now_us = httpd_mono_us();
	ts_series_observe(h->s_produce,
			  (double)(now_us - it->produced_us) / 1e6);
	if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ||
	    m->err == RD_KAFKA_RESP_ERR__TIMED_OUT)
		timeout_msg(h, msg, sizeof msg);
	else if (m->err)
		snprintf(msg, sizeof msg,
			 "not acknowledged by Kafka: %s", rd_kafka_err2str(m->err));
	pthread_mutex_lock(&h->lock);
	if (!r->done) {
		if (!m->err) {
			atomic_store(&h->kafka_ack_ms, now_us / 1000);
			it->status = 202;
			it->partition = m->partition;
			it->offset = m->offset;
		} else {
			httpd_item_fail(it, status_of(m->err), msg, NULL);
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

	pthread_mutex_lock(&h->lock);
	while (h->whead && h->whead->deadline_ms <= now && n < 64) {
		request *r = h->whead;
		if (n == 0)
			timeout_msg(h, msg, sizeof msg);
		for (size_t i = 0; i < r->plan.nitems; i++)
			if (r->plan.items[i].status == 0)
				httpd_item_fail(&r->plan.items[i], 503, msg, NULL);
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

int tasks_serve(httpd *h, int reports)
{
	uint64_t n;

	/* librdkafka writes once until the queue is served again. */
	if (reports) {
		if (read(h->kafka_fd, &n, sizeof n) < 0) {
			/* nothing signalled: a timer tick */
		}
		rd_kafka_poll(h->rk, 0);
	}
	return expire(h);
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
	 * costs the broker connection nothing: produce requests would queue
	 * behind a metadata request. */
	if (acked && ts_mono_ms() - acked < 2 * 1000) {
		atomic_store(&h->kafka_ok_ms, acked);
		err = RD_KAFKA_RESP_ERR_NO_ERROR;
		goto out;
	}
	err = rd_kafka_metadata(h->rk, 0, h->rkt, &md, timeout_ms);
	if (!err && h->steer_on && md->topic_cnt == 1 && !md->topics[0].err &&
	    md->topics[0].partition_cnt > 0)
		atomic_store(&h->steer.partitions, md->topics[0].partition_cnt);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (!err)
		atomic_store(&h->kafka_ok_ms, ts_mono_ms());
out:
	if (atomic_exchange(&h->kafka_up, !err) != !err)
		ts_log_info("kafka: %s", err ? rd_kafka_err2str(err) : "reachable");
	ts_series_set(h->s_kafka_up, !err);
}

ts_err tasks_start(httpd *h, ts_detail *d)
{
	static const uint64_t one = 1;
	char timeout[24];
	const char *extra[] = {
		/* librdkafka's own deadline is the answer's: a report that
		 * comes later only confirms what the 503 said. */
		"message.timeout.ms", timeout,
		/* Each request waits for its acknowledgement: no linger.
		 * librdkafka's broker thread waits out a linger in whole
		 * milliseconds (its poll timeout is rounded up), so 0.5
		 * held every batch about 1 ms and was most of the round
		 * trip. The batches come from the event loop instead: the
		 * records of one pass go to librdkafka together
		 * (tasks_flush). librdkafka's default of 5 produce requests
		 * in flight per broker: with 1 (what this set before
		 * tasks_flush batched the records) its broker thread polled
		 * without sleeping while records waited for the one in
		 * flight; paired A/B under wrk -c32, 8 rounds: 58,905
		 * against 57,447 requests/s, 2.3 against 2.8 us of the
		 * broker thread's CPU per request. */
		"linger.ms", "0",
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
	h->steer_on = ts_kafka_keys_by_murmur2(h->rk);
	if ((err = ts_metrics_gauge_fn(h->metrics, "taskstream_kafka_queue_depth",
			"Records waiting in the producer for Kafka's acknowledgement.",
			queue_depth, h, d)))
		return err;
	/* Reports are served by the event thread, woken through kafka_fd. */
	if ((h->kafka_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL, "eventfd: %s",
			       strerror(errno));
	h->mainq = rd_kafka_queue_get_main(h->rk);
	rd_kafka_queue_io_event_enable(h->mainq, h->kafka_fd, &one, sizeof one);
	return TS_OK;
}

void tasks_stop(httpd *h, int timeout_ms)
{
	int64_t until = ts_mono_ms() + timeout_ms;

	if (!h->rk)
		return;
	while (rd_kafka_outq_len(h->rk) > 0 && ts_mono_ms() < until) {
		if (h->loop_running) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		} else {
			rd_kafka_poll(h->rk, 50);
			expire(h);
		}
	}
	if (rd_kafka_outq_len(h->rk) > 0) {
		ts_log_warn("%d record(s) not acknowledged at exit; they may "
			    "or may not have been written",
			    rd_kafka_outq_len(h->rk));
		/* Their reports (purged) answer the requests: on the event
		 * thread while it runs. */
		rd_kafka_purge(h->rk, RD_KAFKA_PURGE_F_QUEUE |
				      RD_KAFKA_PURGE_F_INFLIGHT);
		if (!h->loop_running)
			rd_kafka_poll(h->rk, 0);
	}
}

/* ---- producing and answering (MHD thread) ---- */

/* Hand one record to librdkafka; the envelope's buffer goes with it. */
static rd_kafka_resp_err_t produce(httpd *h, item *it)
{
	const char *key = httpd_item_key(it);
	rd_kafka_vu_t vu[6];
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;
	size_t n = 0;

	vu[n].vtype = RD_KAFKA_VTYPE_RKT;
	vu[n++].u.rkt = h->rkt;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = it->env.data;
	vu[n++].u.mem.size = it->env.len;
	vu[n].vtype = RD_KAFKA_VTYPE_KEY;
	vu[n].u.mem.ptr = (void *)key;
	vu[n++].u.mem.size = strlen(key);
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_FREE;
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = it;
	if (it->traceparent) {
		vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[n].u.header.name = "traceparent";
		vu[n].u.header.val = it->traceparent;
		vu[n++].u.header.size = (ssize_t)strlen(it->traceparent);
	}
	it->produced_us = httpd_mono_us();
	if (!(error = rd_kafka_produceva(h->rk, vu, n))) {
		/* librdkafka owns the buffer now. */
		it->env.data = NULL;
		it->env.len = it->env.cap = 0;
		return RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	err = rd_kafka_error_code(error);
	rd_kafka_error_destroy(error);
	ts_buf_free(&it->env);
	return err;
}

static void produce_all(request *r)
{
	httpd *h = r->h;

	for (size_t i = 0; i < r->plan.nitems; i++) {
		item *it = &r->plan.items[i];
		rd_kafka_resp_err_t err;
		char msg[160];

		if (it->status != 0)
			continue;
		it->req = r;
		err = produce(h, it);
		if (!err)
			continue;
		snprintf(msg, sizeof msg, "not produced: %s",
			 rd_kafka_err2str(err));
		pthread_mutex_lock(&h->lock);
		if (!r->done)
			httpd_item_fail(it, status_of(err), msg, NULL);
		r->pending--;
		httpd_request_unref(r);
		pthread_mutex_unlock(&h->lock);
	}
}

enum MHD_Result tasks_produce(request *r)
{
	httpd *h = r->h;
	int nready = (int)r->plan.nready;

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
	/* Produced after this pass over the connections, with the others
	 * that came in it: librdkafka's broker thread, woken by the first
	 * record, sends what it finds, and records handed on one by one
	 * between the reading of the next requests went out as a request of
	 * a few records followed, one round trip later, by the rest. */
	r->pnext = NULL;
	if (!h->phead)
		h->ptail = &h->phead;
	*h->ptail = r;
	h->ptail = &r->pnext;
	return MHD_YES;
}

void tasks_flush(httpd *h)
{
	request *r = h->phead;

	h->phead = NULL;
	while (r) {
		request *next = r->pnext;
		struct MHD_Connection *resume = NULL;

		produce_all(r);
		pthread_mutex_lock(&h->lock);
		if (!r->done && --r->pending == 0)
			resume = httpd_request_finish(r);
		pthread_mutex_unlock(&h->lock);
		if (resume)
			MHD_resume_connection(resume);
		r = next;
	}
}

enum MHD_Result tasks_answer_now(request *r, enum httpd_next next,
				 httpd_reply *reply)
{
	httpd *h = r->h;

	for (size_t i = 0; i < r->plan.nitems; i++)
		ts_series_inc(h->s_tasks[httpd_item_result(r->plan.items[i].status)]);
	return httpd_send_decided(r, next, reply);
}

enum MHD_Result tasks_answer(request *r)
{
	httpd_reply reply = { 0 };
	ts_err err = httpd_reply_tasks(&r->h->rules, &r->head, &r->plan,
				       &reply);

	return tasks_answer_now(r, err ? HTTPD_FAIL : HTTPD_ANSWER, &reply);
}
