/* pipeline.c - validate and encode tasks in batches on worker threads,
 * hand them back in input order.
 *
 * On a machine with more than two CPUs validation and encoding run beside
 * the main thread, which reads and produces (see pipeline_start).
 * A batch closes at BATCH_VALUES values or BATCH_BYTES of input; at most
 * PIPE_BYTES of input (and PIPE_BATCHES batches) are handed over and not
 * yet produced, so memory does not grow with the input.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "submit.h"

#define BATCH_BYTES ((size_t)128 << 10)
#define PIPE_BYTES ((size_t)2 << 20)
#define PIPE_BATCHES 16
#define MAX_WORKERS 4

/* ---- batches --------------------------------------------------------------- */

static void batch_reset(batch *b, int input)
{
	ts_buf_reset(&b->raw);
	ts_buf_reset(&b->out);
	b->in_bytes = 0;
	b->n = 0;
	b->done = 0;
	b->next = b->next_todo = NULL;
	b->input = input;
}

static void batch_free(batch *b)
{
	if (!b)
		return;
	ts_buf_free(&b->raw);
	ts_buf_free(&b->out);
	free(b->e);
	free(b);
}

/* An error's field and reason, kept in b->out. */
static ts_err keep_error(batch *b, entry *e, ts_err err, const ts_detail *d)
{
	e->err = err;
	e->out_off = b->out.len;
	if (ts_buf_append(&b->out, d->field, strlen(d->field) + 1) ||
	    ts_buf_append(&b->out, d->msg, strlen(d->msg) + 1))
		return TS_ERR_NOMEM;
	return TS_OK;
}

static void encode_one(submit *s, encoder *enc, batch *b, entry *e);

/* A new entry at the end of b (not counted in b->n yet), or NULL. */
static entry *batch_entry(batch *b, long line)
{
	entry *e;

	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 64;
		entry *grown = realloc(b->e, sizeof *grown * (size_t)cap);

		if (!grown)
			return NULL;
		b->e = grown;
		b->cap = cap;
	}
	e = &b->e[b->n];
	memset(e, 0, sizeof *e);
	e->line = line;
	e->raw_off = b->raw.len;
	return e;
}

int pipeline_inline(const submit *s)
{
	return s->pipe.nworkers == 0;
}

ts_err batch_add(submit *s, batch *b, const char *data, size_t len,
		 long line, ts_err err, const ts_detail *d)
{
	entry *e = batch_entry(b, line);

	if (!e)
		return TS_ERR_NOMEM;
	e->raw_len = len;
	if (len && ts_buf_append(&b->raw, data, len))
		return TS_ERR_NOMEM;
	if (err && keep_error(b, e, err, d))
		return TS_ERR_NOMEM;
	b->in_bytes += len;
	b->n++;
	if (!err && pipeline_inline(s)) { /* else a worker encodes the batch */
		s->pipe.inline_enc.opts.created_at = b->created_at;
		encode_one(s, &s->pipe.inline_enc, b, e);
	}
	return TS_OK;
}

int batch_full(const batch *b)
{
	return b->n >= BATCH_VALUES || b->in_bytes >= BATCH_BYTES;
}

/* The fields the producer and the delivery report need, after the
 * envelope that ts_task_encode() put at mark in b->out. */
static void encoded(submit *s, encoder *enc, batch *b, entry *e, ts_task *t,
		    size_t mark)
{
	ts_detail d;

	e->id_len = (unsigned char)strlen(t->task_id);
	/* used: take a new one next time (t's bytes after its NUL may
	 * never have been written: compare only up to it) */
	if (e->id_len == sizeof enc->next_id - 1 &&
	    memcmp(t->task_id, enc->next_id, sizeof enc->next_id - 1) == 0) {
		enc->next_id[0] = '\0';
		e->id_part = enc->next_part;
		e->id_cnt = enc->next_cnt;
	}
	e->out_off = mark;
	e->env_len = b->out.len - mark;
	if (e->env_len > s->max_task) {
		b->out.len = mark;
		ts_fail(&d, TS_ERR_DATA, NULL,
			"task is %zu bytes, over the %zu-byte limit (--max-task)",
			e->env_len, s->max_task);
		keep_error(b, e, TS_ERR_DATA, &d);
		goto out;
	}
	e->type_len = (unsigned char)strlen(t->task_type);
	e->has_key = t->key != NULL;
	e->key_len = t->key ? (uint16_t)strlen(t->key) : 0;
	e->has_tp = t->traceparent != NULL;
	if (ts_buf_reserve(&b->out, e->id_len + 1u + e->type_len + 1u) == TS_OK) {
		char *o = b->out.data + b->out.len; /* both at once */

		memcpy(o, t->task_id, e->id_len + 1u);
		memcpy(o + e->id_len + 1, t->task_type, e->type_len + 1u);
		b->out.len += e->id_len + 1u + e->type_len + 1u;
		b->out.data[b->out.len] = '\0'; /* as ts_buf_append leaves it */
	} else {
		b->out.len = mark;
		ts_fail(&d, TS_ERR_NOMEM, NULL, "out of memory");
		keep_error(b, e, TS_ERR_NOMEM, &d);
		goto out;
	}
	if ((t->key && ts_buf_append(&b->out, t->key, e->key_len + 1u)) ||
	    (t->traceparent &&
	     ts_buf_append(&b->out, t->traceparent, strlen(t->traceparent) + 1))) {
		b->out.len = mark;
		ts_fail(&d, TS_ERR_NOMEM, NULL, "out of memory");
		keep_error(b, e, TS_ERR_NOMEM, &d);
	}
out:
	if (t->key || t->traceparent || t->payload) /* else nothing to free */
		ts_task_free(t);
}

/* A taskId for the next task that has none, or 0. Once the partition
 * count is known, ids come in runs on one partition, or a group of them
 * (ts_kafka_new_id), and each id's partition is known. */
static int offer_id(submit *s, encoder *enc)
{
	if (!enc->next_id[0]) {
		int32_t cnt = atomic_load_explicit(&s->partition_cnt,
						   memory_order_relaxed);

		if (ts_kafka_new_id(&enc->steer, enc->next_id,
				    sizeof enc->next_id, cnt,
				    &enc->next_part) != TS_OK)
			return 0;
		enc->next_cnt = enc->next_part < 0 ? 0 : cnt;
	}
	enc->opts.default_id = enc->next_id;
	enc->opts.default_id_generated = 1; /* ts_uuid4() wrote it */
	return 1;
}

/* Encode one value into b->out: envelope, then the fields the producer
 * and the delivery report need. */
static void encode_one(submit *s, encoder *enc, batch *b, entry *e)
{
	ts_detail d;
	ts_task t;
	ts_err err;
	size_t mark = b->out.len;

	if (!offer_id(s, enc)) {
		ts_fail(&d, TS_ERR_INTERNAL, NULL, "no randomness for a task id");
		keep_error(b, e, TS_ERR_INTERNAL, &d);
		return;
	}
	err = ts_task_encode(b->raw.data + e->raw_off, e->raw_len, &enc->opts,
			     &t, &b->out, &d);
	if (err) {
		if (!d.msg[0])
			ts_fail(&d, err, NULL, "%s", ts_strerror(err));
		keep_error(b, e, err, &d);
		return;
	}
	encoded(s, enc, b, e, &t, mark);
}

/* In-line encoding straight from the reader's buffer: the input is copied
 * into b->raw only when it may be needed (--rejects, or an error). A
 * value the fast path does not take goes the usual way (returns 0). */
size_t batch_add_prefix(submit *s, batch *b, const char *data, size_t len,
			long line)
{
	encoder *enc = &s->pipe.inline_enc;
	entry *e = batch_entry(b, line);
	size_t mark = b->out.len, used;
	ts_task t;

	if (!e || !offer_id(s, enc))
		return 0;
	enc->opts.created_at = b->created_at;
	if (!ts_task_encode_prefix(data, len, &enc->opts, &t, &b->out, &used))
		return 0;
	encoded(s, enc, b, e, &t, mark);
	if (e->err || s->rejects_fd >= 0) {
		if (ts_buf_append(&b->raw, data, used) != TS_OK) {
			b->out.len = mark; /* the usual way reports it */
			return 0;
		}
		e->raw_len = used;
	}
	b->in_bytes += used;
	b->n++;
	return used;
}

static void encode_batch(submit *s, encoder *enc, batch *b)
{
	char now[40];

	/* One clock read per batch, as librdkafka's batch produce stamps its
	 * records: per task it was a tenth of the encoding (a slow clock on
	 * virtual machines), and a batch is encoded within a millisecond. */
	ts_now_rfc3339(now, sizeof now);
	enc->opts.created_at = now;
	for (int i = 0; i < b->n; i++)
		if (b->e[i].err == TS_OK)
			encode_one(s, enc, b, &b->e[i]);
	enc->opts.created_at = NULL;
}

/* ---- the pipeline ------------------------------------------------------------ */

typedef struct worker_arg {
	submit *s;
	encoder *enc;
} worker_arg;

static void *worker_main(void *arg)
{
	worker_arg *wa = arg;
	submit *s = wa->s;
	pipeline *p = &s->pipe;
	encoder *enc = wa->enc;

	free(wa);
	pthread_setname_np(pthread_self(), "ts-submit-enc");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		batch *b;

		while (!p->todo && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->todo)
			break;
		b = p->todo;
		p->todo = b->next_todo;
		if (!p->todo)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);
		encode_batch(s, enc, b);
		pthread_mutex_lock(&p->lock);
		b->done = 1;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void encoder_init(const submit *s, encoder *enc)
{
	memset(enc, 0, sizeof *enc);
	enc->opts = s->topts;
}

/* Workers: one per CPU beyond two, at most MAX_WORKERS: the main thread
 * reads and produces, and librdkafka's broker thread is as busy as it (a
 * third of the CPU of a run). On two CPUs, encoding in line used 10-20%
 * less CPU than a worker beside them (no batch crossing caches, fewer
 * wake-ups of the broker thread) and was as fast or faster: 300,000
 * tasks, best 0.73 s both, median 0.93 s against 0.96 s here. None on one
 * or two CPUs, then. TS_SUBMIT_WORKERS overrides the count (0-64).
 * Returns -1, or an exit status. */
int pipeline_start(submit *s)
{
	pipeline *p = &s->pipe;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = cpus > 2 ? (int)(cpus - 2 < MAX_WORKERS ? cpus - 2 : MAX_WORKERS) : 0;

	const char *env = getenv("TS_SUBMIT_WORKERS");
	ts_detail d;
	int64_t n;

	if (env && *env) { /* a tuning knob, and a way to test both paths */
		if (ts_parse_int(env, 0, 64, &n, &d) != TS_OK) {
			ts_log_error("TS_SUBMIT_WORKERS: %s", d.msg);
			return ts_err_exit(TS_ERR_CONFIG);
		}
		want = (int)n;
	}

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->started = 1;
	encoder_init(s, &p->inline_enc);
	if (want == 0)
		return -1;
	p->workers = calloc((size_t)want, sizeof *p->workers);
	p->encoders = calloc((size_t)want, sizeof *p->encoders);
	if (!p->workers || !p->encoders) {
		ts_log_error("out of memory");
		return ts_err_exit(TS_ERR_NOMEM);
	}
	for (int i = 0; i < want; i++) {
		worker_arg *wa = malloc(sizeof *wa);

		encoder_init(s, &p->encoders[i]);
		if (!wa) {
			ts_log_error("out of memory");
			return ts_err_exit(TS_ERR_NOMEM);
		}
		wa->s = s;
		wa->enc = &p->encoders[i];
		if (pthread_create(&p->workers[i], NULL, worker_main, wa) != 0) {
			free(wa);
			break; /* fewer workers, or none: still correct */
		}
		p->nworkers++;
	}
	return -1;
}

batch *pipeline_batch(submit *s, int input)
{
	pipeline *p = &s->pipe;
	batch *b;

	pthread_mutex_lock(&p->lock);
	b = p->spare;
	if (b)
		p->spare = b->next;
	pthread_mutex_unlock(&p->lock);
	if (!b && !(b = calloc(1, sizeof *b)))
		return NULL;
	batch_reset(b, input);
	if (pipeline_inline(s)) /* encoded as it is read: one clock read */
		ts_now_rfc3339(b->created_at, sizeof b->created_at);
	return b;
}

/* Produce (or print) the batch at the head of the queue, recycle it.
 * Called with the lock held; drops it meanwhile. */
static void deliver_head(submit *s)
{
	pipeline *p = &s->pipe;
	batch *b = p->queue;

	p->queue = b->next;
	if (!p->queue)
		p->queue_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	submit_deliver(s, b);
	submit_poll(s);
	pthread_mutex_lock(&p->lock);
	p->bytes -= b->in_bytes;
	p->batches--;
	if (b->raw.cap > 2 * BATCH_BYTES || b->out.cap > 8 * BATCH_BYTES) {
		batch_free(b); /* it held a huge value: give the memory back */
	} else {
		b->next = p->spare;
		p->spare = b;
	}
}

void pipeline_submit(submit *s, batch *b)
{
	pipeline *p = &s->pipe;

	if (b->n == 0) {
		pthread_mutex_lock(&p->lock);
		b->next = p->spare;
		p->spare = b;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (p->nworkers == 0)
		b->done = 1; /* encoded value by value as it was read */
	pthread_mutex_lock(&p->lock);
	if (p->queue_tail)
		p->queue_tail->next = b;
	else
		p->queue = b;
	p->queue_tail = b;
	p->bytes += b->in_bytes;
	p->batches++;
	if (!b->done) {
		if (p->todo_tail)
			p->todo_tail->next_todo = b;
		else
			p->todo = b;
		p->todo_tail = b;
		pthread_cond_signal(&p->work);
	}
	/* deliver what is ready; wait while too much is handed over */
	while (p->queue && (p->queue->done || p->bytes > PIPE_BYTES ||
			    p->batches > PIPE_BATCHES)) {
		if (p->queue->done)
			deliver_head(s);
		else
			pthread_cond_wait(&p->done, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
}

void pipeline_flush(submit *s)
{
	pipeline *p = &s->pipe;

	pthread_mutex_lock(&p->lock);
	while (p->queue) {
		if (p->queue->done)
			deliver_head(s);
		else
			pthread_cond_wait(&p->done, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
}

void pipeline_stop(submit *s)
{
	pipeline *p = &s->pipe;
	batch *b;

	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	while ((b = p->queue)) { /* only after an early exit */
		p->queue = b->next;
		batch_free(b);
	}
	while ((b = p->spare)) {
		p->spare = b->next;
		batch_free(b);
	}
	ts_kafka_steer_free(&p->inline_enc.steer);
	for (int i = 0; i < p->nworkers; i++)
		ts_kafka_steer_free(&p->encoders[i].steer);
	free(p->workers);
	free(p->encoders);
	p->workers = NULL;
	p->encoders = NULL;
	p->nworkers = 0;
}
