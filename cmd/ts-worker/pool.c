/* pool.c - --concurrency threads that deliver tasks.
 *
 * A thread takes the task at the head of the ready queue. For a built-in
 * channel (email, sms) it also takes further ready tasks of that channel,
 * up to its fair share of the queue (queue length over idle threads, at
 * most W_BATCH_MAX), and hands them to ts_transport_send_many(): one SMTP
 * session carries them all, one after another. When the queue is short
 * (a slow server, or few tasks) every thread takes one task, so a slow
 * server is still worked --concurrency connections wide.
 *
 * Each thread opens its own transports and handler runner (they are not
 * shared between threads) and keeps them for its life, so HTTP
 * connections stay alive between tasks.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

struct tctx {
	struct worker *w;
	ts_transport *email, *sms;
	int email_failed, sms_failed;
	char email_why[384], sms_why[384];
	ts_handler_runner *runner;
};

/* ---- the ready queue (w->mu held) ---------------------------------------- */

static void rq_unlink(struct worker *w, struct wtask *t)
{
	if (t->qprev)
		t->qprev->qnext = t->qnext;
	else
		w->rq_head = t->qnext;
	if (t->qnext)
		t->qnext->qprev = t->qprev;
	else
		w->rq_tail = t->qprev;
	t->qprev = t->qnext = NULL;
	w->rq_len--;
}

void pool_push(struct worker *w, struct wtask *t)
{
	pthread_mutex_lock(&w->mu);
	t->state = W_READY;
	t->qnext = NULL;
	t->qprev = w->rq_tail;
	if (w->rq_tail)
		w->rq_tail->qnext = t;
	else
		w->rq_head = t;
	w->rq_tail = t;
	w->rq_len++;
	if (w->idle_threads)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int pool_unqueue(struct worker *w, struct wtask *t)
{
	if (t->state != W_READY)
		return 0;
	rq_unlink(w, t);
	return 1;
}

static void mark_started(struct wtask *t)
{
	t->state = W_RUNNING;
	t->attempts++;
	if (t->part && t->offset > t->part->hi_started)
		t->part->hi_started = t->offset;
}

/* Take the head and, for a built-in channel, a fair share of the other
 * ready tasks of the same route. */
static size_t take_batch(struct worker *w, struct wtask **batch)
{
	struct wtask *t = w->rq_head, *c, *next;
	size_t n = 0, want, scanned = 0;

	rq_unlink(w, t);
	mark_started(t);
	batch[n++] = t;
	if (t->route->kind == ROUTE_HANDLER || !w->rq_len)
		return n;
	want = (w->rq_len + 1 + w->idle_threads) / (w->idle_threads + 1);
	if (want > W_BATCH_MAX)
		want = W_BATCH_MAX;
	for (c = w->rq_head; c && n < want && scanned < 4 * W_BATCH_MAX;
	     c = next, scanned++) {
		next = c->qnext;
		if (c->route != t->route)
			continue;
		rq_unlink(w, c);
		mark_started(c);
		batch[n++] = c;
	}
	return n;
}

/* ---- delivering ---------------------------------------------------------- */

static ts_transport *transport_for(struct tctx *x, enum route_kind kind,
				   const char **why)
{
	const ts_config *cfg = x->w->cfg;
	ts_detail d;

	if (kind == ROUTE_EMAIL) {
		if (!x->email && !x->email_failed) {
			if (ts_transport_open(cfg->email_url, TS_CHANNEL_EMAIL,
					      cfg, &x->email, &d) != TS_OK) {
				x->email_failed = 1;
				snprintf(x->email_why, sizeof x->email_why,
					 "email transport: %.360s", d.msg);
			}
		}
		*why = x->email_why;
		return x->email;
	}
	if (!x->sms && !x->sms_failed) {
		if (ts_transport_open(cfg->sms_url, TS_CHANNEL_SMS, cfg, &x->sms,
				      &d) != TS_OK) {
			x->sms_failed = 1;
			snprintf(x->sms_why, sizeof x->sms_why,
				 "sms transport: %.360s", d.msg);
		}
	}
	*why = x->sms_why;
	return x->sms;
}

static void run_builtin(struct tctx *x, struct wtask **batch, size_t n)
{
	const cJSON *payloads[W_BATCH_MAX];
	ts_send_result res[W_BATCH_MAX];
	const char *why = "";
	ts_transport *tr = transport_for(x, batch[0]->route->kind, &why);

	if (!tr) {
		for (size_t i = 0; i < n; i++) {
			batch[i]->result = TS_ERR_PERMANENT;
			batch[i]->retry_after_ms = -1;
			snprintf(batch[i]->msg, sizeof batch[i]->msg, "%s", why);
		}
		return;
	}
	memset(res, 0, sizeof res[0] * n);
	for (size_t i = 0; i < n; i++)
		payloads[i] = batch[i]->task.payload;
	if (n == 1)
		ts_transport_send(tr, payloads[0], &res[0]);
	else
		ts_transport_send_many(tr, payloads, n, res);
	for (size_t i = 0; i < n; i++) {
		struct wtask *t = batch[i];
		t->result = res[i].err == TS_ERR_DATA ? TS_ERR_PERMANENT :
							res[i].err;
		t->retry_after_ms = res[i].retry_after_ms;
		if (t->result == TS_OK)
			ts_log_debug("task %s delivered: %s %s", t->task_id,
				     res[i].id, res[i].msg);
		snprintf(t->msg, sizeof t->msg, "%s", res[i].msg);
	}
}

/* Each line of a handler's output into the log, at info level. */
static void log_output(const struct wtask *t, const char *stream,
		       const ts_buf *b)
{
	size_t i = 0;

	if (!b->len || ts_log_get_level() < TS_LOG_INFO)
		return;
	while (i < b->len) {
		const char *line = b->data + i;
		const char *nl = memchr(line, '\n', b->len - i);
		size_t n = nl ? (size_t)(nl - line) : b->len - i;
		ts_log_info("task %s handler %s: %.*s", t->task_id, stream,
			    (int)(n > 1000 ? 1000 : n), line);
		i += n + 1;
	}
}

static void run_handler(struct tctx *x, struct wtask *t)
{
	ts_handler_call c;
	ts_handler_result r;

	memset(&c, 0, sizeof c);
	memset(&r, 0, sizeof r);
	c.body = t->envelope ? t->envelope : t->value;
	c.len = t->envelope ? strlen(t->envelope) : t->value_len;
	c.task_id = t->task_id;
	c.task_type = t->task_type;
	c.traceparent = t->traceparent;
	c.attempt = t->attempts;
	c.timeout_ms = x->w->cfg->handler_timeout_ms > 0 ?
			       x->w->cfg->handler_timeout_ms : 60000;
	if (!x->runner) {
		t->result = TS_ERR_TRANSIENT;
		t->retry_after_ms = -1;
		snprintf(t->msg, sizeof t->msg, "out of memory");
		return;
	}
	ts_handler_run(x->runner, &t->route->handler, &c, &r);
	if (t->route->handler.kind == TS_HANDLER_COMMAND) {
		log_output(t, "stdout", &r.out);
		log_output(t, "stderr", &r.errout);
	}
	t->result = r.err;
	t->retry_after_ms = r.retry_after_ms;
	snprintf(t->msg, sizeof t->msg, "%s", r.msg);
	ts_handler_result_free(&r);
}

static void *thread_main(void *arg)
{
	struct tctx x;
	struct worker *w = arg;
	struct wtask *batch[W_BATCH_MAX];

	memset(&x, 0, sizeof x);
	x.w = w;
	if (ts_handler_runner_new(w->cfg->handler_timeout_ms, &x.runner))
		x.runner = NULL;
	for (;;) {
		size_t n;
		int wake;

		pthread_mutex_lock(&w->mu);
		while (!w->quit && !w->rq_head) {
			w->idle_threads++;
			pthread_cond_wait(&w->cv, &w->mu);
			w->idle_threads--;
		}
		if (w->quit) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		n = take_batch(w, batch);
		w->running += n;
		pthread_mutex_unlock(&w->mu);

		if (batch[0]->route->kind == ROUTE_HANDLER)
			run_handler(&x, batch[0]);
		else
			run_builtin(&x, batch, n);

		pthread_mutex_lock(&w->mu);
		wake = w->done_head == NULL;
		for (size_t i = 0; i < n; i++) {
			batch[i]->qnext = NULL;
			if (w->done_tail)
				w->done_tail->qnext = batch[i];
			else
				w->done_head = batch[i];
			w->done_tail = batch[i];
		}
		w->running -= n;
		pthread_mutex_unlock(&w->mu);
		if (wake) {
			uint64_t one = 1;
			if (write(w->done_fd, &one, sizeof one) < 0 &&
			    errno != EAGAIN)
				ts_log_error("eventfd: %s", strerror(errno));
		}
	}
	ts_transport_close(x.email);
	ts_transport_close(x.sms);
	ts_handler_runner_free(x.runner);
	return NULL;
}

ts_err pool_start(struct worker *w, size_t nthreads, ts_detail *d)
{
	pthread_attr_t attr;

	w->threads = calloc(nthreads, sizeof *w->threads);
	if (!w->threads)
		return TS_ERR_NOMEM;
	pthread_attr_init(&attr);
	/* libesmtp, OpenSSL and libcurl are happy in 512 KiB; the default
	 * 8 MiB per thread is address space, but there is no need for it. */
	pthread_attr_setstacksize(&attr, 512 * 1024);
	for (size_t i = 0; i < nthreads; i++) {
		int rc = pthread_create(&w->threads[i], &attr, thread_main, w);
		if (rc != 0) {
			pthread_attr_destroy(&attr);
			pool_stop(w, 1);
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "cannot start thread %zu: %s", i + 1,
				       strerror(rc));
		}
		w->nthreads++;
	}
	pthread_attr_destroy(&attr);
	return TS_OK;
}

struct wtask *pool_take_done(struct worker *w)
{
	struct wtask *t;
	uint64_t v;

	if (read(w->done_fd, &v, sizeof v) < 0 && errno != EAGAIN)
		ts_log_error("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mu);
	t = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	return t;
}

size_t pool_running(struct worker *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->running;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Tell the threads to finish; join them when join != 0 (a thread stuck in
 * a delivery past the drain deadline is left behind: the process exits
 * around it). */
void pool_stop(struct worker *w, int join)
{
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (join)
		for (size_t i = 0; i < w->nthreads; i++)
			pthread_join(w->threads[i], NULL);
	else
		for (size_t i = 0; i < w->nthreads; i++)
			pthread_detach(w->threads[i]);
	free(w->threads);
	w->threads = NULL;
	w->nthreads = 0;
}
