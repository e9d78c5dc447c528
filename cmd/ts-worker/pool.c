/* pool.c - --concurrency threads that deliver tasks.
 *
 * A thread takes the task at the head of the ready queue. A handler task
 * it runs and hands back. For a built-in channel (email, sms) it opens a
 * stream on its transport (ts_transport_send_stream): the task, then, as
 * each message is under way, the next ready task of the same channel near
 * the head of the queue, one at a time, for as long as there is one. Over
 * SMTP that is one connection carrying message after message, as
 * smtp-source -d does; each task goes back to the main thread the moment
 * its outcome is known, so results, commits and retries do not wait for
 * the session to end. One task at a time keeps a slow server worked
 * --concurrency connections wide.
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

/* Take the head of the ready queue. */
static struct wtask *take_head(struct worker *w)
{
	struct wtask *t = w->rq_head;

	rq_unlink(w, t);
	mark_started(t);
	w->running++;
	return t;
}

/* For a thread in a session of route r: the next ready task of r, if one
 * is near the head. A task of another kind at the head, with no idle
 * thread to take it, ends the session instead, so that this thread takes
 * it: a stream of email never holds up a handler or an SMS. */
static struct wtask *take_more(struct worker *w, const struct route *r)
{
	struct wtask *c;
	size_t scanned = 0;

	for (c = w->rq_head; c && !w->quit && scanned < W_SCAN_MAX;
	     c = c->qnext, scanned++) {
		if (c->route == r) {
			rq_unlink(w, c);
			mark_started(c);
			w->running++;
			return c;
		}
		if (!w->idle_threads)
			break;
	}
	return NULL;
}

/* A thread is done with t: onto the done list. The main thread is woken
 * for the first result it has not seen; but while every thread has ready
 * work waiting, only for every W_DONE_BATCH results (a wake-up per task
 * was a good part of its cost): it looks at least every W_DONE_WAIT_MS
 * anyway while tasks are out (consumer.c). */
static void hand_back(struct worker *w, struct wtask *t)
{
	int wake;

	pthread_mutex_lock(&w->mu);
	t->qnext = NULL;
	if (w->done_tail)
		w->done_tail->qnext = t;
	else
		w->done_head = t;
	w->done_tail = t;
	w->done_n++;
	w->running--;
	wake = (w->done_n == 1 && w->rq_len < w->nthreads) ||
	       w->done_n == W_DONE_BATCH;
	pthread_mutex_unlock(&w->mu);
	if (wake) {
		uint64_t one = 1;
		if (write(w->done_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			ts_log_error("eventfd: %s", strerror(errno));
	}
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

/* A built-in channel: a stream of tasks of t's route through one
 * transport (one SMTP connection), t first, then whatever of the route
 * becomes ready while it runs; each task goes back as soon as its
 * outcome is known. */
struct stream {
	struct tctx *x;
	const struct route *route;
	struct wtask *first;
};

static int stream_next(void *ctx, const cJSON **payload, void **tag)
{
	struct stream *st = ctx;
	struct worker *w = st->x->w;
	struct wtask *t = st->first;

	if (t) {
		st->first = NULL;
	} else {
		pthread_mutex_lock(&w->mu);
		t = take_more(w, st->route);
		pthread_mutex_unlock(&w->mu);
		if (!t)
			return 0;
	}
	*payload = t->task.payload;
	*tag = t;
	return 1;
}

static void stream_done(void *ctx, void *tag, const ts_send_result *r)
{
	struct stream *st = ctx;
	struct wtask *t = tag;

	t->result = r->err == TS_ERR_DATA ? TS_ERR_PERMANENT : r->err;
	t->retry_after_ms = r->retry_after_ms;
	if (t->result == TS_OK)
		ts_log_debug("task %s delivered: %s %s", t->task_id, r->id,
			     r->msg);
	snprintf(t->msg, sizeof t->msg, "%s", r->msg);
	hand_back(st->x->w, t);
}

static void run_builtin(struct tctx *x, struct wtask *t)
{
	const char *why = "";
	ts_transport *tr = transport_for(x, t->route->kind, &why);
	struct stream st = { x, t->route, t };
	ts_transport_feed f = { stream_next, stream_done, &st };

	if (!tr) {
		t->result = TS_ERR_PERMANENT;
		t->retry_after_ms = -1;
		snprintf(t->msg, sizeof t->msg, "%s", why);
		hand_back(x->w, t);
		return;
	}
	ts_transport_send_stream(tr, &f);
	if (st.first) {
		/* cannot happen: a stream takes at least its first task */
		ts_log_error("internal: task %s not sent", t->task_id);
		t->result = TS_ERR_TRANSIENT;
		t->retry_after_ms = -1;
		snprintf(t->msg, sizeof t->msg, "not sent");
		hand_back(x->w, t);
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

	memset(&x, 0, sizeof x);
	x.w = w;
	if (ts_handler_runner_new(w->cfg->handler_timeout_ms, &x.runner))
		x.runner = NULL;
	for (;;) {
		struct wtask *t;

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
		t = take_head(w);
		pthread_mutex_unlock(&w->mu);

		if (t->route->kind == ROUTE_HANDLER) {
			run_handler(&x, t);
			hand_back(w, t);
		} else {
			run_builtin(&x, t);
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
		if (rc == 0) /* for top -H, perf, gdb */
			pthread_setname_np(w->threads[i], "ts-deliver");
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
	w->done_n = 0;
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
