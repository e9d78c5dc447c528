/* dlq.c - dead letters: the original record (key, value, headers) plus
 * the ts-* headers of DESIGN.md, produced with acks=all. A task is
 * finished (and its offset may be committed) only when the broker has
 * acknowledged its dead letter; a failed produce is tried again, so a DLQ
 * that is down holds the commit point rather than losing the task.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "util.h"
#include "worker.h"

static const char *const ts_headers[] = {
	"ts-original-topic", "ts-original-partition", "ts-original-offset",
	"ts-original-timestamp", "ts-consumer-group", "ts-attempts",
	"ts-error-class", "ts-error",
};

const char *errclass_name(enum errclass ec)
{
	switch (ec) {
	case EC_INVALID_JSON: return "invalid-json";
	case EC_INVALID_TASK: return "invalid-task";
	case EC_UNKNOWN_TYPE: return "unknown-task-type";
	case EC_PERMANENT: return "permanent";
	case EC_EXHAUSTED: return "retries-exhausted";
	case EC_NONE: break;
	}
	return "none";
}

/* A failed dead letter waits 1 s, 2 s, 4 s ... 30 s before the next try. */
static int64_t dlq_retry_delay(int tries)
{
	int64_t d = 1000;

	while (--tries > 0 && d < 30000)
		d *= 2;
	return d < 30000 ? d : 30000;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	struct worker *w = opaque;
	struct wtask *t = m->_private;

	(void)rk;
	w->dlq_inflight--;
	if (w->dlq_closing)
		return;
	if (t->abandoned) {
		task_free(w, t);
		return;
	}
	if (m->err) {
		t->dlq_tries++;
		ts_log_error("task %s at %d:%lld: dead letter to %s not "
			     "acknowledged (try %d): %s", t->task_id,
			     t->partition, (long long)t->offset,
			     w->cfg->dlq_topic, t->dlq_tries,
			     rd_kafka_err2str(m->err));
		sched_retry(w, t, ts_mono_ms() + dlq_retry_delay(t->dlq_tries));
		return;
	}
	task_finish(w, t, 0);
}

static void add_header(rd_kafka_headers_t *h, const char *name,
		       const char *value)
{
	rd_kafka_header_add(h, name, -1, value, -1);
}

void dlq_send(struct worker *w, struct wtask *t)
{
	rd_kafka_headers_t *h;
	rd_kafka_resp_err_t err;
	char num[32];

	t->state = W_DLQ;
	task_started(w, t);
	h = t->headers ? rd_kafka_headers_copy(t->headers) :
			 rd_kafka_headers_new(8);
	/* A replayed dead letter that failed again carries the old ones. */
	for (size_t i = 0; i < sizeof ts_headers / sizeof ts_headers[0]; i++)
		rd_kafka_header_remove(h, ts_headers[i]);
	add_header(h, "ts-original-topic", w->cfg->topic);
	snprintf(num, sizeof num, "%" PRId32, t->partition);
	add_header(h, "ts-original-partition", num);
	snprintf(num, sizeof num, "%" PRId64, t->offset);
	add_header(h, "ts-original-offset", num);
	snprintf(num, sizeof num, "%" PRId64, t->timestamp);
	add_header(h, "ts-original-timestamp", num);
	add_header(h, "ts-consumer-group", w->cfg->group);
	snprintf(num, sizeof num, "%d", t->attempts);
	add_header(h, "ts-attempts", num);
	add_header(h, "ts-error-class", errclass_name(t->ec));
	add_header(h, "ts-error", t->msg);

	err = rd_kafka_producev(
		w->prod, RD_KAFKA_V_TOPIC(w->cfg->dlq_topic),
		RD_KAFKA_V_KEY(t->key, t->key ? t->key_len : 0),
		RD_KAFKA_V_VALUE(t->value, t->value ? t->value_len : 0),
		RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(t), RD_KAFKA_V_END);
	if (err) {
		rd_kafka_headers_destroy(h);
		t->dlq_tries++;
		ts_log_error("task %s at %d:%lld: cannot produce dead letter "
			     "to %s: %s", t->task_id, t->partition,
			     (long long)t->offset, w->cfg->dlq_topic,
			     rd_kafka_err2str(err));
		sched_retry(w, t, ts_mono_ms() + dlq_retry_delay(t->dlq_tries));
		return;
	}
	w->dlq_inflight++;
}

ts_err dlq_open(struct worker *w, ts_detail *d)
{
	static const char *const defaults[] = {
		"acks", "all",
		"enable.idempotence", "true",
		"linger.ms", "5",
		/* keep trying for as long as a long outage might last; the
		 * task's offset waits for the acknowledgement anyway */
		"message.timeout.ms", "300000",
		NULL,
	};
	static const char one = 1;
	rd_kafka_conf_t *conf;
	char errstr[512];
	int fds[2];
	ts_err err;

	if ((err = ts_kafka_conf(w->cfg, defaults, &conf, d)))
		return err;
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_log_cb(conf, w_kafka_log);
	rd_kafka_conf_set_error_cb(conf, w_kafka_error);
	rd_kafka_conf_set_opaque(conf, w);
	w->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!w->prod) {
		rd_kafka_conf_destroy(conf);
		return ts_fail(d, TS_ERR_CONFIG, NULL, "kafka: %s", errstr);
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL, "pipe: %m");
	w->pq = rd_kafka_queue_get_main(w->prod);
	w->pq_fd = fds[0];
	w->pq_wfd = fds[1];
	rd_kafka_queue_io_event_enable(w->pq, fds[1], &one, 1);
	return TS_OK;
}

void dlq_close(struct worker *w)
{
	if (!w->prod)
		return;
	w->dlq_closing = 1;
	rd_kafka_queue_io_event_enable(w->pq, -1, NULL, 0);
	rd_kafka_queue_destroy(w->pq);
	rd_kafka_flush(w->prod, 5000);
	rd_kafka_destroy(w->prod);
	w->prod = NULL;
	close(w->pq_fd);
	close(w->pq_wfd);
}
