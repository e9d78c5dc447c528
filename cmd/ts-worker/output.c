/* output.c - the data line per finished task on stdout, and the metrics. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "worker.h"

/* Seconds: 5 ms to 5 min, since a task with retries takes minutes. */
static const double task_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

const char *metric_type(const struct wtask *t)
{
	if (t->route)
		return t->route->type;
	return t->task_type[0] ? t->task_type : "invalid";
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* s as a JSON string; invalid UTF-8 becomes U+FFFD. */
static void json_str(ts_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	ts_buf_append(b, "\"", 1);
	while (n) {
		size_t l;
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			ts_buf_append(b, esc, 2);
			l = 1;
		} else if (*p < 0x20 || *p == 0x7f) {
			ts_buf_appendf(b, "\\u%04x", *p);
			l = 1;
		} else if ((l = utf8_len(p, n)) == 0) {
			ts_buf_append(b, "\xef\xbf\xbd", 3);
			l = 1;
		} else {
			ts_buf_append(b, p, l);
		}
		p += l;
		n -= l;
	}
	ts_buf_append(b, "\"", 1);
}

void out_finished(struct worker *w, struct wtask *t, int delivered)
{
	static ts_buf line;
	int64_t ms = ts_mono_ms() - t->t0;
	const char *type = metric_type(t);
	char nums[160];
	int n;

	ts_buf_reset(&line);
	ts_buf_append(&line, "{\"taskId\":", 10);
	if (t->task_id[0])
		json_str(&line, t->task_id);
	else
		ts_buf_append(&line, "null", 4);
	ts_buf_append(&line, ",\"taskType\":", 12);
	if (t->task_type[0])
		json_str(&line, t->task_type);
	else
		ts_buf_append(&line, "null", 4);
	/* one snprintf, not ts_buf_appendf's two passes: this runs for
	 * every task */
	n = snprintf(nums, sizeof nums,
		     ",\"status\":\"%s\",\"attempts\":%d,\"ms\":%lld,"
		     "\"partition\":%d,\"offset\":%lld",
		     delivered ? "delivered" : "dead-lettered", t->attempts,
		     (long long)ms, t->partition, (long long)t->offset);
	if (n > 0)
		ts_buf_append(&line, nums, (size_t)n < sizeof nums ? (size_t)n
								   : sizeof nums - 1);
	if (!delivered) {
		char err[600];
		snprintf(err, sizeof err, "%s: %s", errclass_name(t->ec), t->msg);
		ts_buf_append(&line, ",\"error\":", 9);
		json_str(&line, err);
	}
	ts_buf_append(&line, "}\n", 2);
	if (line.data && fwrite(line.data, 1, line.len, stdout) != line.len &&
	    !w->stdout_failed) {
		w->stdout_failed = 1;
		ts_log_error("stdout: %s (tasks go on being delivered)",
			     strerror(errno));
	}

	if (delivered) {
		ts_series_inc(ts_metric_with(w->m_delivered, type));
		if (ts_log_get_level() >= TS_LOG_INFO)
			ts_log_info("task %s (%s) at %d:%lld delivered after %d "
				    "attempt%s%s%s", t->task_id, t->task_type,
				    t->partition, (long long)t->offset,
				    t->attempts, t->attempts == 1 ? "" : "s",
				    t->traceparent ? " traceparent=" : "",
				    t->traceparent ? t->traceparent : "");
	} else {
		ts_series_inc(ts_metric_with(w->m_dead, type,
					     errclass_name(t->ec)));
		ts_log_warn("task %s (%s) at %d:%lld dead-lettered to %s: "
			    "%s: %s%s%s", t->task_id[0] ? t->task_id : "?",
			    t->task_type[0] ? t->task_type : "?", t->partition,
			    (long long)t->offset, w->cfg->dlq_topic,
			    errclass_name(t->ec), t->msg,
			    t->traceparent ? " traceparent=" : "",
			    t->traceparent ? t->traceparent : "");
	}
	ts_series_observe(ts_metric_with(w->m_latency, type), (double)ms / 1000.0);
}

void out_retry(struct worker *w, struct wtask *t)
{
	ts_series_inc(ts_metric_with(w->m_retries, metric_type(t)));
}

/* librdkafka statistics: consumer lag per partition, broker states. */
void out_stats(struct worker *w, const char *json, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *topic, *parts, *p, *brokers, *b;
	int any_up = 0, any_broker = 0;

	if (!root)
		return;
	brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
	cJSON_ArrayForEach(b, brokers) {
		const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");
		const cJSON *src = cJSON_GetObjectItemCaseSensitive(b, "source");
		if (cJSON_IsString(src) && strcmp(src->valuestring, "learned") &&
		    strcmp(src->valuestring, "configured"))
			continue; /* internal (the coordinator alias) */
		any_broker = 1;
		if (cJSON_IsString(state) && strcmp(state->valuestring, "UP") == 0)
			any_up = 1;
	}
	if (any_broker)
		w->brokers_down = !any_up;
	topic = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "topics"), w->cfg->topic);
	parts = cJSON_GetObjectItemCaseSensitive(topic, "partitions");
	cJSON_ArrayForEach(p, parts) {
		const cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "consumer_lag");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "partition");
		char label[16];
		if (!cJSON_IsNumber(id) || id->valuedouble < 0 ||
		    !cJSON_IsNumber(lag) || lag->valuedouble < 0)
			continue;
		snprintf(label, sizeof label, "%d", (int)id->valuedouble);
		ts_series_set(ts_metric_with(w->m_lag, label), lag->valuedouble);
	}
	cJSON_Delete(root);
}

static double gauge_in_flight(void *ctx)
{
	return (double)pool_running(ctx);
}

static double gauge_retrying(void *ctx)
{
	struct worker *w = ctx;
	return (double)__atomic_load_n(&w->pub_retry, __ATOMIC_RELAXED);
}

static double gauge_held(void *ctx)
{
	struct worker *w = ctx;
	return (double)__atomic_load_n(&w->pub_held, __ATOMIC_RELAXED);
}

ts_err out_metrics_init(struct worker *w, ts_detail *d)
{
	ts_err err;

	if ((err = ts_metrics_new(&w->metrics)))
		return err;
	if ((err = ts_metrics_counter(w->metrics,
			"taskstream_worker_tasks_consumed_total",
			"Task records taken from the task topic.", NULL,
			&w->m_consumed, d)) ||
	    (err = ts_metrics_counter(w->metrics,
			"taskstream_worker_tasks_delivered_total",
			"Tasks delivered, by task type.", "type",
			&w->m_delivered, d)) ||
	    (err = ts_metrics_counter(w->metrics,
			"taskstream_worker_tasks_dead_lettered_total",
			"Tasks written to the dead-letter topic, by task type "
			"and error class.", "type,class", &w->m_dead, d)) ||
	    (err = ts_metrics_counter(w->metrics,
			"taskstream_worker_retries_total",
			"Retries scheduled after a transient failure, by task "
			"type.", "type", &w->m_retries, d)) ||
	    (err = ts_metrics_gauge_fn(w->metrics,
			"taskstream_worker_tasks_in_flight",
			"Tasks being delivered by a thread now.",
			gauge_in_flight, w, d)) ||
	    (err = ts_metrics_gauge_fn(w->metrics,
			"taskstream_worker_tasks_waiting_retry",
			"Tasks waiting for their retry time.", gauge_retrying,
			w, d)) ||
	    (err = ts_metrics_gauge_fn(w->metrics,
			"taskstream_worker_tasks_held",
			"Tasks taken from Kafka and not yet finished (waiting, "
			"in flight, retrying or being dead-lettered).",
			gauge_held, w, d)) ||
	    (err = ts_metrics_histogram(w->metrics,
			"taskstream_worker_task_duration_seconds",
			"From taking a task off the topic to its end "
			"(delivered or dead-lettered), by task type.", "type",
			task_buckets, sizeof task_buckets / sizeof task_buckets[0],
			&w->m_latency, d)) ||
	    (err = ts_metrics_gauge(w->metrics,
			"taskstream_worker_consumer_lag",
			"Records behind the end of each assigned partition "
			"(librdkafka statistics).", "partition", &w->m_lag, d)) ||
	    (err = ts_metrics_gauge(w->metrics,
			"taskstream_worker_partitions_assigned",
			"Partitions of the task topic this worker holds.", NULL,
			&w->m_assigned, d)))
		return err;
	w->s_consumed = ts_metric_with(w->m_consumed);
	return TS_OK;
}
