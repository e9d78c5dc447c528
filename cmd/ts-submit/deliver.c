/* deliver.c - produce encoded tasks, report what became of each: result
 * lines on stdout, errors on stderr, --rejects. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "submit.h"
#include "tool.h"

void submit_note(submit *s, ts_err err)
{
	pthread_mutex_lock(&s->lock);
	s->worst = ts_err_worst(s->worst, err);
	pthread_mutex_unlock(&s->lock);
}

/* ---- rejects --------------------------------------------------------------- */

/* Append one input to --rejects as one line: the bytes as given, with any
 * CR or LF (only possible between the tokens of a valid value, or in an
 * invalid one) turned into spaces so that each reject is one line. */
static void write_reject(submit *s, const char *raw, size_t len)
{
	char *copy = NULL;
	struct iovec iov[2];
	ssize_t n;

	if (s->rejects_fd < 0 || len == 0)
		return;
	if (memchr(raw, '\n', len) || memchr(raw, '\r', len)) {
		if (!(copy = malloc(len))) {
			ts_log_error("--rejects: out of memory");
			submit_note(s, TS_ERR_NOMEM);
			return;
		}
		for (size_t i = 0; i < len; i++)
			copy[i] = raw[i] == '\n' || raw[i] == '\r' ? ' ' : raw[i];
		raw = copy;
	}
	iov[0].iov_base = (void *)raw;
	iov[0].iov_len = len;
	iov[1].iov_base = "\n";
	iov[1].iov_len = 1;
	pthread_mutex_lock(&s->lock);
	n = writev(s->rejects_fd, iov, 2);
	if (n != (ssize_t)len + 1) {
		ts_log_error("%s: %s", s->cfg->rejects,
			     n < 0 ? strerror(errno) : "short write");
		s->worst = ts_err_worst(s->worst, TS_ERR_IO);
	}
	pthread_mutex_unlock(&s->lock);
	free(copy);
}

/* An input that is not a valid task: one stderr line, --rejects, exit 65. */
void submit_reject(submit *s, int input, long line, const char *field,
		   const char *msg, const char *raw, size_t len)
{
	if (field[0])
		ts_log_error("%s:%ld: %s: %s", s->names[input], line, field, msg);
	else
		ts_log_error("%s:%ld: %s", s->names[input], line, msg);
	atomic_fetch_add(&s->invalid, 1);
	submit_note(s, TS_ERR_DATA);
	write_reject(s, raw, len);
}

/* ---- stdout ------------------------------------------------------------------ */

/* A closed or full stdout: results would be lost, so read no more. */
void submit_stdout_error(submit *s)
{
	int err = errno ? errno : EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->stdout_failed) {
		s->stdout_failed = 1;
		ts_log_error("stdout: %s; reading no more input", strerror(err));
		s->worst = ts_err_worst(s->worst, TS_ERR_IO);
		ts_stop = 1;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Result lines gather here, per thread (the thread whose poll served the
 * reports), and go to stdio in one fwrite when that thread flushes: an
 * fwrite for each line took stdio's lock 300,000 times. Every poll that
 * serves reports is followed by a flush in the same thread. */
#define RESULT_LINE_MAX (TS_TASK_ID_MAX + TS_TASK_TYPE_MAX + 512)
static __thread struct {
	size_t len;
	char data[16 << 10];
} results;

static void spill_results(submit *s)
{
	if (results.len &&
	    fwrite(results.data, 1, results.len, stdout) != results.len)
		submit_stdout_error(s);
	results.len = 0;
}

void submit_flush_stdout(submit *s)
{
	spill_results(s);
	if (fflush(stdout) != 0)
		submit_stdout_error(s);
}

static char *put_str(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

/* One result line, formatted by hand (a printf per task was a tenth of the
 * run). taskId, taskType and the topic name come from JSON-safe alphabets,
 * validated, so they need no escaping. */
static void print_result(submit *s, const inflight *f,
			 const rd_kafka_message_t *m)
{
	char *o;

	if (sizeof results.data - results.len < RESULT_LINE_MAX)
		spill_results(s);
	o = results.data + results.len;

	o = put_str(o, "{\"taskId\":\"", 11);
	o = put_str(o, f->data, f->id_len);
	o = put_str(o, "\",\"taskType\":\"", 14);
	o = put_str(o, f->data + f->id_len + 1, f->type_len);
	o = put_str(o, "\",\"topic\":\"", 11);
	o = put_str(o, s->topic, s->topic_len);
	o = put_str(o, "\",\"partition\":", 14);
	o = ts_put_int(o, m->partition);
	o = put_str(o, ",\"offset\":", 10);
	o = ts_put_int(o, m->offset);
	o = put_str(o, ",\"line\":", 8);
	o = ts_put_int(o, f->line);
	o = put_str(o, "}\n", 2);
	results.len = (size_t)(o - results.data);
}

/* An in-flight record is done with: its slab goes with the last one. */
static void inflight_free(inflight *f)
{
	slab *sl = f->slab;

	if (!sl)
		free(f);
	else if (atomic_fetch_sub(&sl->refs, 1) == 1)
		free(sl);
}

/* ---- delivery reports ---------------------------------------------------------- */

void submit_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	submit *s = opaque;
	inflight *f = m->_private;
	ts_err class;

	(void)rk;
	if (!f)
		return;
	if (!m->err) {
		atomic_fetch_add(&s->delivered, 1);
		print_result(s, f, m);
		inflight_free(f);
		return;
	}
	class = ts_kafka_classify(m->err);
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		class = TS_ERR_TRANSIENT;
	ts_log_error("%s:%ld: task %s not delivered: %s", s->names[f->input],
		     f->line, f->data, rd_kafka_err2str(m->err));
	atomic_fetch_add(&s->failed, 1);
	submit_note(s, class);
	write_reject(s, f->data + f->id_len + 1 + f->type_len + 1, f->raw_len);
	inflight_free(f);
}

/* The main thread serves delivery reports between batches: the memory of
 * a message is then freed by the thread that allocated it, which glibc's
 * malloc does much faster than a free from another thread. */
void submit_poll(submit *s)
{
	if (!s->rk)
		return;
	atomic_store(&s->main_polled, ts_mono_ms());
	if (rd_kafka_poll(s->rk, 0) > 0)
		submit_flush_stdout(s);
}

/* While the main thread waits for input (a slow pipe) it does not poll:
 * this thread then serves the reports, so results appear as they arrive.
 * Its naps and polls end as soon as it is told to stop: the drain joins
 * it first, and a nap or poll slept out to its end added up to 100 ms to
 * a run of many tasks (300,000 take about 250 ms in bench/submit). */
static void *submit_poller(void *arg)
{
	submit *s = arg;

	pthread_setname_np(pthread_self(), "ts-submit-dr");
	pthread_mutex_lock(&s->poller_lock);
	while (!atomic_load(&s->poller_stop)) {
		if (ts_mono_ms() - atomic_load(&s->main_polled) < 100) {
			struct timespec until;

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += 50 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&s->poller_wake, &s->poller_lock,
					       &until);
			continue;
		}
		pthread_mutex_unlock(&s->poller_lock);
		if (rd_kafka_poll(s->rk, 100) > 0)
			submit_flush_stdout(s);
		pthread_mutex_lock(&s->poller_lock);
	}
	pthread_mutex_unlock(&s->poller_lock);
	return NULL;
}

ts_err submit_poller_start(submit *s)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&s->poller_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->poller_wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&s->poller, NULL, submit_poller, s) != 0)
		return TS_ERR_INTERNAL;
	s->poller_running = 1;
	return TS_OK;
}

/* Stop the poller at once: wake it from its nap, or end its poll
 * (rd_kafka_yield: a poll that is not running returns early once, which
 * the drain's loop does not mind). */
void submit_poller_stop(submit *s)
{
	if (!s->poller_running)
		return;
	pthread_mutex_lock(&s->poller_lock);
	atomic_store(&s->poller_stop, 1);
	pthread_cond_signal(&s->poller_wake);
	pthread_mutex_unlock(&s->poller_lock);
	rd_kafka_yield(s->rk);
	pthread_join(s->poller, NULL);
	s->poller_running = 0;
}

/* Wait for every outstanding delivery report. The first signal only stopped
 * the reading; a second gives up on what is still queued (those tasks are
 * reported undelivered and go to --rejects; one in flight may still have
 * reached the broker). */
void submit_drain(submit *s)
{
	int purged = 0, announced = 0, unflushed = 0;
	int64_t next_note = ts_mono_ms() + 5000, flushed = 0;

	submit_poller_stop(s);
	while (rd_kafka_outq_len(s->rk) > 0) {
		if (submit_signals == 1 && !announced) {
			ts_log_warn("waiting for %d delivery report(s); another SIGINT or SIGTERM gives up on them",
				    rd_kafka_outq_len(s->rk));
			announced = 1;
		}
		if (submit_signals >= 2 && !purged) {
			ts_log_warn("second signal: giving up on %d queued task(s)",
				    rd_kafka_outq_len(s->rk));
			rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
			purged = 1;
		}
		/* Reports come a few at a time here: result lines go out when
		 * the reports pause or every 10 ms, not after every poll (a
		 * write(2) each was 9,000 system calls for 300,000 tasks).
		 * rd_kafka_flush serves them as rd_kafka_poll would, and
		 * while it runs librdkafka sends what it holds at once: the
		 * last records of the input do not wait out linger.ms. */
		long done = atomic_load(&s->delivered) + atomic_load(&s->failed);
		int served;

		rd_kafka_flush(s->rk, unflushed ? 10 : 100);
		served = atomic_load(&s->delivered) + atomic_load(&s->failed) != done;
		int64_t now = ts_mono_ms();

		unflushed |= served > 0;
		if (unflushed && (served == 0 || now - flushed >= 10)) {
			submit_flush_stdout(s);
			flushed = now;
			unflushed = 0;
		}
		if (now >= next_note) {
			ts_log_info("waiting for %d delivery report(s)",
				    rd_kafka_outq_len(s->rk));
			next_note += 5000;
		}
	}
	submit_flush_stdout(s);
}

/* ---- partitioning ------------------------------------------------------ */

/* The default partitioner (murmur2_random: a record's key decides its
 * partition, as in the Java client), telling offer_id how many
 * partitions there are. Called by librdkafka from the main thread or its
 * own. */
int32_t submit_partitioner(const rd_kafka_topic_t *rkt, const void *key,
			   size_t keylen, int32_t partition_cnt,
			   void *rkt_opaque, void *msg_opaque)
{
	submit *s = rkt_opaque;

	if (atomic_load_explicit(&s->partition_cnt, memory_order_relaxed) !=
	    partition_cnt)
		atomic_store_explicit(&s->partition_cnt, partition_cnt,
				      memory_order_relaxed);
	return rd_kafka_msg_partitioner_murmur2_random(
		rkt, key, keylen, partition_cnt, rkt_opaque, msg_opaque);
}

/* ---- producing ----------------------------------------------------------------- */

/* The bytes of e's in-flight record, rounded up to keep the next one
 * aligned. */
static size_t inflight_size(const submit *s, const entry *e)
{
	size_t raw_len = s->rejects_fd < 0 ? 0 : e->raw_len;
	size_t n = sizeof(inflight) + e->id_len + 1u + e->type_len + 1u + raw_len;

	return (n + 7) & ~(size_t)7;
}

/* One slab for the records of every task of b; without one (out of
 * memory) each record is a malloc of its own. */
static void slab_open(submit *s, const batch *b)
{
	size_t size = 0;

	for (int i = 0; i < b->n; i++)
		if (b->e[i].err == TS_OK)
			size += inflight_size(s, &b->e[i]);
	s->slab = size ? malloc(sizeof *s->slab + size) : NULL;
	if (!s->slab)
		return;
	atomic_init(&s->slab->refs, 1);
	s->slab->used = 0;
	s->slab->size = size;
}

/* The batch is handed over: its records are freed as their reports come. */
static void slab_close(submit *s)
{
	slab *sl = s->slab;

	s->slab = NULL;
	if (sl && atomic_fetch_sub(&sl->refs, 1) == 1)
		free(sl);
}

static inflight *make_inflight(submit *s, const batch *b, const entry *e,
			       const char *meta)
{
	size_t raw_len = s->rejects_fd < 0 ? 0 : e->raw_len;
	size_t names = e->id_len + 1u + e->type_len + 1u;
	size_t size = inflight_size(s, e);
	slab *sl = s->slab;
	inflight *f;

	if (sl && sl->size - sl->used >= size) {
		f = (inflight *)(sl->data + sl->used);
		sl->used += size;
		atomic_fetch_add(&sl->refs, 1);
		f->slab = sl;
	} else if ((f = malloc(size))) {
		f->slab = NULL;
	} else {
		return NULL;
	}
	f->line = e->line;
	f->input = b->input;
	f->id_len = e->id_len;
	f->type_len = e->type_len;
	f->raw_len = raw_len;
	memcpy(f->data, meta, names);
	if (raw_len)
		memcpy(f->data + names, b->raw.data + e->raw_off, raw_len);
	return f;
}

/* Hand one envelope to librdkafka (which copies it), waiting for room in
 * its queue. Returns the error of the produce call (0 when queued). */
static rd_kafka_resp_err_t produce(submit *s, const char *env, size_t len,
				   const char *key, size_t key_len,
				   const char *tp, inflight *f)
{
	rd_kafka_vu_t vu[6];
	size_t n = 0;
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;

	vu[n].vtype = RD_KAFKA_VTYPE_RKT;
	vu[n++].u.rkt = s->rkt;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = (void *)env;
	vu[n++].u.mem.size = len;
	vu[n].vtype = RD_KAFKA_VTYPE_KEY;
	vu[n].u.mem.ptr = (void *)key;
	vu[n++].u.mem.size = key_len;
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = f;
	if (tp) {
		vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[n].u.header.name = "traceparent";
		vu[n].u.header.val = tp;
		vu[n++].u.header.size = (ssize_t)strlen(tp);
	}
	for (;;) {
		error = rd_kafka_produceva(s->rk, vu, n);
		if (!error)
			return RD_KAFKA_RESP_ERR_NO_ERROR;
		err = rd_kafka_error_code(error);
		rd_kafka_error_destroy(error);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return err;
		/* full: serve reports here too until there is room */
		if (rd_kafka_poll(s->rk, 50) > 0)
			submit_flush_stdout(s);
	}
}

/* A task librdkafka did not take: reported, and to --rejects. */
static void produce_failed(submit *s, const batch *b, const entry *e,
			   rd_kafka_resp_err_t err)
{
	const char *raw = b->raw.data + e->raw_off;
	const char *id = b->out.data + e->out_off + e->env_len;

	if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		char msg[160];

		snprintf(msg, sizeof msg,
			 "task is %zu bytes with its key and headers, over the producer's message.max.bytes",
			 e->env_len);
		submit_reject(s, b->input, e->line, "", msg, raw, e->raw_len);
		return;
	}
	ts_log_error("%s:%ld: task %.*s not produced: %s", s->names[b->input],
		     e->line, (int)e->id_len, id, rd_kafka_err2str(err));
	atomic_fetch_add(&s->failed, 1);
	submit_note(s, ts_kafka_classify(err));
	write_reject(s, raw, e->raw_len);
}

/* Produce the tasks gathered in s->run, in order, with one call: librdkafka
 * then reads the clock and takes the topic lock once per call instead of
 * once per task (a third of the main thread's produce cost). When its queue
 * is full it refuses that task and every one after it, so serve reports
 * until there is room and go on from there: the order stays.
 * RD_KAFKA_MSG_F_PARTITION: each record goes to its own .partition (see
 * run_partition), or through the partitioner when that is UA. */
static void produce_run(submit *s, const batch *b)
{
	int done = 0;

	while (done < s->run_n) {
		rd_kafka_message_t *m = s->run + done;
		int n = s->run_n - done, i;

		rd_kafka_produce_batch(s->rkt, RD_KAFKA_PARTITION_UA,
				       RD_KAFKA_MSG_F_COPY | RD_KAFKA_MSG_F_PARTITION,
				       m, n);
		for (i = 0; i < n && m[i].err != RD_KAFKA_RESP_ERR__QUEUE_FULL; i++) {
			if (m[i].err) {
				inflight_free(m[i]._private);
				produce_failed(s, b, s->run_e[done + i], m[i].err);
			}
		}
		done += i;
		if (done < s->run_n && rd_kafka_poll(s->rk, 50) > 0)
			submit_flush_stdout(s);
	}
	s->run_n = 0;
}

/* The partition of the next record of s->run, keyed by key: where
 * submit_partitioner would put it, computed here so that librdkafka looks
 * each partition up once per run of records on it instead of once per
 * record (each lookup an atomic increment and decrement of a count the
 * broker thread shares: an eighth of the main thread's samples in
 * librdkafka). The first record of each call stays UA
 * and goes through submit_partitioner, which keeps s->partition_cnt
 * current: a topic that grows mid-stream is placed by its new count from
 * the next call on, as soon as librdkafka knows it. UA also while the count
 * is not known, and when murmur2 does not place keys (count 0). */
static int32_t run_partition(submit *s, const entry *e, const char *key,
			     size_t key_len)
{
	int32_t cnt = atomic_load_explicit(&s->partition_cnt,
					   memory_order_relaxed);

	if (s->run_n == 0 || cnt <= 0)
		return RD_KAFKA_PARTITION_UA;
	if (!e->has_key && e->id_cnt == cnt) /* hashed when it was drawn */
		return e->id_part;
	return ts_kafka_partition_of(key, key_len, cnt);
}

static void deliver_one(submit *s, const batch *b, const entry *e)
{
	const char *env = b->out.data + e->out_off;
	const char *meta = env + e->env_len;          /* id, type, key, tp */
	const char *id = meta, *key, *tp = NULL;
	size_t key_len;
	inflight *f;
	rd_kafka_message_t *m;
	rd_kafka_resp_err_t err;

	if (s->cfg->dry_run) {
		if (fwrite(env, 1, e->env_len, stdout) != e->env_len ||
		    putchar('\n') == EOF)
			submit_stdout_error(s);
		return;
	}
	/* the record key: the input's key, else the taskId */
	key = meta + e->id_len + 1 + e->type_len + 1;
	key_len = e->key_len;
	if (!e->has_key) {
		key = id;
		key_len = e->id_len;
	}
	if (e->has_tp)
		tp = meta + e->id_len + 1 + e->type_len + 1 +
		     (e->has_key ? e->key_len + 1u : 0);
	if (!(f = make_inflight(s, b, e, meta))) {
		ts_log_error("%s:%ld: out of memory", s->names[b->input], e->line);
		submit_note(s, TS_ERR_NOMEM);
		return;
	}
	if (!tp) { /* the batch API takes no headers */
		m = &s->run[s->run_n];
		memset(m, 0, sizeof *m);
		m->partition = run_partition(s, e, key, key_len);
		m->payload = (void *)env;
		m->len = e->env_len;
		m->key = (void *)key;
		m->key_len = key_len;
		m->_private = f;
		s->run_e[s->run_n++] = e;
		if (s->run_n == BATCH_VALUES)
			produce_run(s, b);
		return;
	}
	produce_run(s, b); /* what came before it goes first */
	err = produce(s, env, e->env_len, key, key_len, tp, f);
	if (err) {
		inflight_free(f);
		produce_failed(s, b, e, err);
	}
}

/* Every value of an encoded batch, in input order: errors reported, tasks
 * produced (or printed with --dry-run). */
void submit_deliver(submit *s, batch *b)
{
	if (!s->cfg->dry_run)
		slab_open(s, b);
	for (int i = 0; i < b->n; i++) {
		const entry *e = &b->e[i];

		if (e->err == TS_OK) {
			deliver_one(s, b, e);
			continue;
		}
		const char *field = b->out.data + e->out_off;
		const char *msg = field + strlen(field) + 1;

		produce_run(s, b); /* the tasks before it go first */

		if (e->err == TS_ERR_DATA) {
			submit_reject(s, b->input, e->line, field, msg,
				      b->raw.data + e->raw_off, e->raw_len);
		} else {
			ts_log_error("%s:%ld: %s", s->names[b->input], e->line, msg);
			submit_note(s, e->err);
		}
	}
	produce_run(s, b);
	slab_close(s);
}
