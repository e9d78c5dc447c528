/* ts-httpd - HTTP ingress for TaskStream.
 *
 * POST /tasks produces tasks to Kafka and answers 202 only after the broker
 * acknowledged them; POST /api/email/send and /api/sms/send deliver at once
 * through the configured transports (the seed's notification API);
 * GET /healthz and GET /metrics for operators. See httpd.h for the threads.
 *
 * The main thread checks Kafka's reachability once a second (for /healthz)
 * until SIGTERM/SIGINT, then shuts down gracefully: stop accepting, answer
 * what is in flight, flush Kafka, exit 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "tool.h"

#define SYNOPSIS "ts-httpd [--listen ADDR:PORT] [options]"
#define POOL_THREADS 4
#define HEALTH_EVERY_MS 1000

static int fail(ts_err err, const ts_detail *d)
{
	ts_log_error("%s", d->msg[0] ? d->msg : ts_strerror(err));
	return ts_err_exit(err);
}

/* Thousands of requests may wait at once: allow as many descriptors as
 * the hard limit does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static ts_err check_options(httpd *h, ts_detail *d)
{
	ts_config *cfg = h->cfg;
	ts_err err;

	if (cfg->argc > 0)
		return ts_fail(d, TS_ERR_USAGE, NULL, "unexpected argument '%s'",
			       cfg->argv[0]);
	if (!cfg->tls_cert != !cfg->tls_key)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--tls-cert and --tls-key go together");
	if (cfg->produce_timeout_ms < 1)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--produce-timeout must be more than 0");
	if (cfg->max_body < 1)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--max-body must be at least 1 byte");
	if (cfg->max_task < 1)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--max-task must be at least 1 byte");
	h->retry_after_s = (int)((cfg->produce_timeout_ms + 999) / 1000);
	if (cfg->token_file) {
		/* Read once; never logged, never in an error message. */
		if ((err = ts_read_secret_file(cfg->token_file, &h->token, d)))
			return ts_fail(d, TS_ERR_CONFIG, NULL, "--token-file %s",
				       d->msg);
		h->token_len = strlen(h->token);
		if (h->token_len == 0)
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "--token-file %s: empty", cfg->token_file);
	}
	if (cfg->tls_cert) {
		if ((err = ts_read_file(cfg->tls_cert, 1 << 20, &h->tls_cert,
					NULL, d)))
			return ts_fail(d, TS_ERR_CONFIG, NULL, "--tls-cert %s",
				       d->msg);
		if ((err = ts_read_file(cfg->tls_key, 1 << 20, &h->tls_key,
					&h->tls_key_len, d)))
			return ts_fail(d, TS_ERR_CONFIG, NULL, "--tls-key %s",
				       d->msg);
	}
	return TS_OK;
}

static ts_err setup(httpd *h, ts_detail *d)
{
	ts_err err;
	int backlog;

	if ((err = check_options(h, d)) ||
	    (err = httpd_metrics_init(h, d)) ||
	    (err = tasks_start(h, d)) ||
	    (err = notify_start(h, POOL_THREADS, d)))
		return err;
	h->rules = (httpd_rules){
		.token = h->token, .token_len = h->token_len,
		.max_body = h->cfg->max_body, .max_task = h->cfg->max_task,
		.email = h->cfg->email_url != NULL,
		.sms = h->cfg->sms_url != NULL,
		.retry_after_s = h->retry_after_s, .topic = h->topic,
		.steer = h->steer_on ? &h->steer : NULL,
	};
	backlog = h->cfg->max_connections < 4096 ?
		  (int)h->cfg->max_connections : 4096;
	if ((err = ts_metrics_listen(h->cfg->listen, backlog, &h->listen_fd,
				     &h->port, d)))
		return ts_fail(d, err, NULL, "--listen %s", d->msg);
	if ((err = httpd_server_start(h, d))) {
		close(h->listen_fd);
		h->listen_fd = -1;
		return err;
	}
	ts_log_info("listening on %s (port %d), producing to %s",
		    h->cfg->listen, h->port, h->topic);
	return TS_OK;
}

/* Sleep up to ms, waking early for a signal. */
static void nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (!ts_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait (up to ms) until no request is in progress. */
static int wait_idle(httpd *h, int64_t ms)
{
	int64_t until = ts_mono_ms() + ms;

	while (atomic_load(&h->active) > 0 && ts_mono_ms() < until) {
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return atomic_load(&h->active);
}

static void shut_down(httpd *h)
{
	const ts_config *cfg = h->cfg;
	int64_t grace = cfg->produce_timeout_ms;
	int left;

	if (h->pool.nthreads && cfg->send_timeout_ms > grace)
		grace = cfg->send_timeout_ms;
	if (cfg->conn_timeout_ms > grace)
		grace = cfg->conn_timeout_ms;
	ts_log_info("stopping: answering %d request(s) in flight",
		    atomic_load(&h->active));
	atomic_store(&h->stopping, 1);
	httpd_server_quiesce(h);
	left = wait_idle(h, grace + 1000);
	notify_stop(h);
	tasks_stop(h, (int)cfg->produce_timeout_ms);
	if (left)
		left = wait_idle(h, 2000);
	if (left)
		ts_log_warn("%d request(s) still open at exit", left);
	httpd_server_stop(h);
}

static int run(httpd *h)
{
	ts_detail d;
	ts_err err;

	raise_fd_limit();
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->log_lock, NULL);
	if ((err = setup(h, &d)))
		return fail(err, &d);
	while (!ts_stop) {
		int64_t next = ts_mono_ms() + HEALTH_EVERY_MS;
		tasks_check_kafka(h, HEALTH_EVERY_MS);
		if (!ts_stop && ts_mono_ms() < next)
			nap((int)(next - ts_mono_ms()));
	}
	shut_down(h);
	return atomic_load(&h->fatal) ? ts_err_exit(TS_ERR_INTERNAL) : 0;
}

static void cleanup(httpd *h)
{
	httpd_server_stop(h);
	notify_stop(h);
	tasks_stop(h, 0);
	ts_kafka_steer_free(&h->steer.run); /* the event thread's, stopped */
	httpd_log_flush(h, 1);
	ts_buf_free(&h->log);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->mainq)
		rd_kafka_queue_destroy(h->mainq);
	if (h->kafka_fd >= 0)
		close(h->kafka_fd);
	if (h->rkt)
		rd_kafka_topic_destroy(h->rkt);
	if (h->rk)
		rd_kafka_destroy(h->rk);
	ts_metrics_free(h->metrics);
	ts_free_secret(h->token);
	ts_free_secret(h->tls_key);
	free(h->tls_cert);
}

int main(int argc, char **argv)
{
	ts_config cfg;
	httpd h;
	int rc;

	memset(&h, 0, sizeof h);
	h.listen_fd = h.kafka_fd = h.wake_fd = h.loop_ep = -1;
	h.cfg = &cfg;
	rc = ts_tool_start(&cfg, TS_TOOL_HTTPD, "ts-httpd", SYNOPSIS, argc,
			   argv, stdout);
	if (rc < 0) {
		ts_tool_signals();
		rc = run(&h);
		cleanup(&h);
	}
	ts_config_free(&cfg);
	return rc;
}
