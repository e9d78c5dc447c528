/* ts-worker - the long-running consumer: route each task to its processor,
 * retry what failed for now, dead-letter what cannot be done, commit only
 * what is finished. See ts-worker(1) and docs/architecture.md. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "tool.h"
#include "worker.h"

static const char synopsis[] = "ts-worker [options]";

/* Built-in processors first, then --handler (which may replace one). */
static ts_err build_routes(struct worker *w, ts_detail *d)
{
	const ts_config *cfg = w->cfg;
	size_t n = 0, max = (size_t)cfg->handlers.n + 2;
	ts_err err;

	w->routes = calloc(max, sizeof *w->routes);
	if (!w->routes)
		return TS_ERR_NOMEM;
	for (int i = 0; i < cfg->handlers.n; i++) {
		struct route *r = &w->routes[n];
		if ((err = ts_handler_parse(cfg->handlers.v[i], &r->handler, d)))
			return err;
		w->nroutes = ++n; /* freed by teardown from here on */
		for (size_t j = 0; j + 1 < n; j++)
			if (strcmp(w->routes[j].type, r->handler.type) == 0)
				return ts_fail(d, TS_ERR_CONFIG, NULL,
					       "--handler %s given twice",
					       r->handler.type);
		strcpy(r->type, r->handler.type);
		r->kind = ROUTE_HANDLER;
	}
	for (int c = 0; c < 2; c++) {
		const char *type = c ? "sms" : "email";
		const char *url = c ? cfg->sms_url : cfg->email_url;
		ts_transport *t;
		int taken = 0;
		if (!url)
			continue;
		for (size_t j = 0; j < n; j++)
			taken |= strcmp(w->routes[j].type, type) == 0;
		if (taken)
			continue;
		/* open once now so a bad URL stops us at the start (78) */
		if ((err = ts_transport_open(url, c ? TS_CHANNEL_SMS :
						      TS_CHANNEL_EMAIL,
					     cfg, &t, d)))
			return err;
		ts_log_info("%s goes to %s", type, ts_transport_describe(t));
		ts_transport_close(t);
		if (!c && !cfg->from)
			ts_log_warn("no --from (TS_EMAIL_FROM): an email task "
				    "without payload.from will be dead-lettered");
		strcpy(w->routes[n].type, type);
		w->routes[n].kind = c ? ROUTE_SMS : ROUTE_EMAIL;
		n++;
	}
	w->nroutes = n;
	if (n == 0)
		ts_log_warn("no --email-url, --sms-url or --handler: every task "
			    "will be dead-lettered as unknown-task-type");
	return TS_OK;
}

static int healthz(void *ctx, char *why, size_t size)
{
	struct worker *w = ctx;

	if (w->fatal) {
		snprintf(why, size, "fatal Kafka error");
		return 0;
	}
	if (w->brokers_down) {
		snprintf(why, size, "no Kafka broker reachable");
		return 0;
	}
	return 1;
}

static ts_err setup(struct worker *w, ts_detail *d)
{
	ts_config *cfg = w->cfg;
	size_t held;
	ts_err err;

	w->order = cfg->order[0];
	w->backoff.initial_ms = cfg->backoff_ms;
	w->backoff.factor = cfg->backoff_factor;
	w->backoff.max_ms = cfg->backoff_max_ms;
	if (cfg->handler_timeout_ms <= 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--handler-timeout must be more than 0");
	/* Enough ready work that no thread waits while the loop takes more
	 * from Kafka; memory is about 2.5 KB per task held (worker.h). */
	held = (size_t)cfg->concurrency * W_HOLD_PER_THREAD;
	w->hold_total_high = held < W_HOLD_MIN ? W_HOLD_MIN : held;
	if ((err = build_routes(w, d)))
		return err;
	if ((err = out_metrics_init(w, d)))
		return err;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->done_fd < 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL, "eventfd: %s",
			       strerror(errno));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return ts_fail(d, TS_ERR_INTERNAL, NULL, "libcurl will not start");
	if ((err = dlq_open(w, d)))
		return err;
	if ((err = w_consumer_open(w, d)))
		return err;
	if ((err = pool_start(w, (size_t)cfg->concurrency, d)))
		return err;
	if (cfg->metrics &&
	    (err = ts_metrics_serve(w->metrics, cfg->metrics, healthz, w,
				    &w->metrics_srv, d)))
		return err;
	return TS_OK;
}

static void teardown(struct worker *w)
{
	w_consumer_close(w);
	if (w->nthreads)
		pool_stop(w, pool_running(w) == 0);
	dlq_close(w);
	ts_metrics_server_stop(w->metrics_srv);
	ts_metrics_free(w->metrics);
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = w->parts[i];
		if (!p)
			continue;
		sched_free_part_chains(p);
		free(p->buckets);
		ts_offsets_free(&p->offs);
		free(p);
	}
	free(w->parts);
	free(w->heap);
	for (size_t i = 0; i < w->nroutes; i++)
		ts_handler_free(&w->routes[i].handler);
	free(w->routes);
	if (w->done_fd > 0)
		close(w->done_fd);
}

int main(int argc, char **argv)
{
	ts_config cfg;
	struct worker w;
	sigset_t block, old;
	ts_detail d;
	ts_err err;
	int rc = ts_tool_start(&cfg, TS_TOOL_WORKER, "ts-worker", synopsis,
			       argc, argv, stdout);

	if (rc >= 0)
		goto out;
	if (cfg.argc > 0) {
		ts_log_error("unexpected argument '%s'", cfg.argv[0]);
		ts_log_error("usage: %s", synopsis);
		rc = ts_err_exit(TS_ERR_USAGE);
		goto out;
	}
	ts_tool_signals();
	/* Result lines into a pipe or file in big writes (w_run flushes
	 * them at least every 100 ms); a terminal keeps its lines. */
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOFBF, 64 * 1024);
	memset(&w, 0, sizeof w);
	w.cfg = &cfg;
	w.done_fd = -1;
	/* Threads started from here on (librdkafka's, the pool, the metrics
	 * server) never see SIGINT/SIGTERM: the main thread's poll() does,
	 * and wakes at once. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ts_detail_clear(&d);
	err = setup(&w, &d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		ts_log_error("%s", d.msg[0] ? d.msg : ts_strerror(err));
		rc = ts_err_exit(err);
	} else {
		ts_log_info("consuming %s as group %s, %lld threads, order %s",
			    cfg.topic, cfg.group, (long long)cfg.concurrency,
			    cfg.order);
		rc = w_run(&w);
	}
	teardown(&w);
out:
	ts_config_free(&cfg);
	return rc;
}
