/* consumer.c - the main thread: an event loop over the consumer's queue,
 * the DLQ producer's queue and the threads' done list; task state; the
 * rebalance callback; commits; the drain on revoke and on shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "tool.h"
#include "util.h"
#include "worker.h"

#define COMMIT_INTERVAL_MS 100
#define OUT_FLUSH_MS 100
#define INTAKE_BURST 512
/* How long partitions stay paused after a refused commit when no
 * rebalance callback comes (a backstop: the callback ends the pause). */
#define REBALANCE_WAIT_MS 10000
/* OffsetFetch in the assign callback, for partitions coming back */
#define COMMITTED_TIMEOUT_MS 5000
/* How long a synchronous commit (revoke, shutdown) waits for its answer */
#define COMMIT_WAIT_MS 10000
/* How long leaving the group at shutdown waits for the coordinator */
#define CLOSE_WAIT_MS 5000

/* ---- partitions ---------------------------------------------------------- */

static struct part *part_get(struct worker *w, int32_t id, int create)
{
	struct part *p;

	if (id < 0)
		return NULL;
	if ((size_t)id < w->nparts && w->parts[id])
		return w->parts[id];
	if (!create)
		return NULL;
	if ((size_t)id >= w->nparts) {
		size_t n = (size_t)id + 1;
		struct part **a = realloc(w->parts, n * sizeof *a);
		if (!a)
			return NULL;
		memset(a + w->nparts, 0, (n - w->nparts) * sizeof *a);
		w->parts = a;
		w->nparts = n;
	}
	p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->id = id;
	p->committed = -1;
	p->pending = -1;
	p->hi_started = -1;
	ts_offsets_init(&p->offs);
	w->parts[id] = p;
	return p;
}

/* ---- task lifecycle ------------------------------------------------------ */

void task_started(struct worker *w, struct wtask *t)
{
	pthread_mutex_lock(&w->mu);
	if (t->part && t->offset > t->part->hi_started)
		t->part->hi_started = t->offset;
	pthread_mutex_unlock(&w->mu);
}

void task_free(struct worker *w, struct wtask *t)
{
	free(t->key);
	free(t->value);
	if (t->headers)
		rd_kafka_headers_destroy(t->headers);
	free(t->traceparent);
	free(t->envelope);
	ts_task_free(&t->task);
	free(t);
	w->held--;
}

static const struct route *find_route(struct worker *w, const char *type)
{
	for (size_t i = 0; i < w->nroutes; i++)
		if (strcmp(w->routes[i].type, type) == 0)
			return &w->routes[i];
	return NULL;
}

/* Copy a string field of obj into buf when it is valid for check. */
static void peek_field(const cJSON *obj, const char *name, char *buf,
		       size_t size, int (*check)(const char *))
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (cJSON_IsString(v) && check(v->valuestring) &&
	    strlen(v->valuestring) < size)
		strcpy(buf, v->valuestring);
}

/* Parse and validate once, when the task first may run. Sets t->ec and
 * t->msg when it cannot run at all. */
static void parse_task(struct worker *w, struct wtask *t)
{
	ts_detail d;
	cJSON *obj;
	const char *end = NULL;
	ts_err err;

	t->parsed = 1;
	if (!t->value) {
		t->ec = EC_INVALID_JSON;
		snprintf(t->msg, sizeof t->msg, "empty record (null value)");
		return;
	}
	if (ts_json_check_bytes(t->value, t->value_len, &d) != TS_OK) {
		t->ec = EC_INVALID_JSON;
		snprintf(t->msg, sizeof t->msg, "%s", d.msg);
		return;
	}
	obj = cJSON_ParseWithLengthOpts(t->value, t->value_len, &end, 0);
	if (obj) {
		while (end < t->value + t->value_len &&
		       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
			end++;
		if (end < t->value + t->value_len) {
			cJSON_Delete(obj);
			obj = NULL;
			t->ec = EC_INVALID_JSON;
			snprintf(t->msg, sizeof t->msg,
				 "not one JSON value: more text at byte %zu",
				 (size_t)(end - t->value) + 1);
			return;
		}
	}
	if (!obj) {
		t->ec = EC_INVALID_JSON;
		snprintf(t->msg, sizeof t->msg, "not valid JSON (at byte %zu)",
			 end ? (size_t)(end - t->value) + 1 : (size_t)1);
		return;
	}
	/* for the output line even when the rest is wrong */
	peek_field(obj, "taskId", t->task_id, sizeof t->task_id,
		   ts_valid_task_id);
	peek_field(obj, "taskType", t->task_type, sizeof t->task_type,
		   ts_valid_task_type);
	err = ts_task_from_json(obj, NULL, &t->task, &d);
	if (err == TS_ERR_DATA) {
		t->ec = EC_INVALID_TASK;
		if (d.field[0])
			snprintf(t->msg, sizeof t->msg, "%.127s: %.250s", d.field, d.msg);
		else
			snprintf(t->msg, sizeof t->msg, "%s", d.msg);
	} else if (err) {
		/* no memory or no randomness: not the task's fault */
		t->ec = EC_PERMANENT;
		snprintf(t->msg, sizeof t->msg, "cannot parse: %s",
			 ts_strerror(err));
	} else {
		int had_id = cJSON_GetObjectItemCaseSensitive(obj, "taskId") != NULL;
		strcpy(t->task_id, t->task.task_id);
		strcpy(t->task_type, t->task.task_type);
		t->route = find_route(w, t->task.task_type);
		if (!t->route) {
			t->ec = EC_UNKNOWN_TYPE;
			snprintf(t->msg, sizeof t->msg,
				 "no processor for task type '%s' (see --handler)",
				 t->task.task_type);
		} else if (!had_id) {
			/* A bare request: hand the handler the envelope with
			 * the id it will be known by. */
			t->envelope = ts_task_to_json(&t->task);
		}
		if (!t->traceparent && t->task.traceparent)
			t->traceparent = strdup(t->task.traceparent);
	}
	cJSON_Delete(obj);
}

void task_make_ready(struct worker *w, struct wtask *t)
{
	if (!t->parsed)
		parse_task(w, t);
	if (t->ec != EC_NONE) {
		dlq_send(w, t);
		return;
	}
	pool_push(w, t);
}

void part_unlink(struct part *p, struct wtask *t)
{
	if (t->pprev)
		t->pprev->pnext = t->pnext;
	else
		p->tasks = t->pnext;
	if (t->pnext)
		t->pnext->pprev = t->pprev;
	else
		p->tasks_tail = t->pprev;
	t->pprev = t->pnext = NULL;
}

/* Delivered, or its dead letter acknowledged: the offset may move. */
void task_finish(struct worker *w, struct wtask *t, int delivered)
{
	struct part *p = t->part;

	if (ts_offsets_done(&p->offs, t->offset) != TS_OK)
		ts_log_error("internal: offset %d:%lld finished twice or "
			     "never taken", t->partition, (long long)t->offset);
	out_finished(w, t, delivered);
	w->last_activity = ts_mono_ms();
	sched_finish(w, t);
	part_unlink(p, t);
	p->held--;
	task_free(w, t);
}

/* A thread is done with t: decide what comes next. */
static void task_attempted(struct worker *w, struct wtask *t)
{
	if (t->abandoned) {
		task_free(w, t);
		return;
	}
	switch (t->result) {
	case TS_OK:
		task_finish(w, t, 1);
		return;
	case TS_ERR_TRANSIENT:
		if (t->attempts <= w->cfg->retries) {
			int64_t wait = ts_backoff_delay(&w->backoff, t->attempts,
							t->retry_after_ms);
			ts_log_info("task %s (%s) at %d:%lld failed (attempt %d), "
				    "retry in %lld ms: %s%s%s", t->task_id,
				    t->task_type, t->partition,
				    (long long)t->offset, t->attempts,
				    (long long)wait, t->msg,
				    t->traceparent ? " traceparent=" : "",
				    t->traceparent ? t->traceparent : "");
			out_retry(w, t);
			sched_retry(w, t, ts_mono_ms() + wait);
			return;
		}
		t->ec = EC_EXHAUSTED;
		break;
	default:
		t->ec = EC_PERMANENT;
		break;
	}
	dlq_send(w, t);
}

static void handle_done(struct worker *w)
{
	struct wtask *t = pool_take_done(w), *next;

	for (; t; t = next) {
		next = t->qnext;
		t->qnext = NULL;
		task_attempted(w, t);
	}
}

/* ---- intake -------------------------------------------------------------- */

static void consume_error(struct worker *w, rd_kafka_message_t *m)
{
	static rd_kafka_resp_err_t last;
	static int64_t last_at;
	int64_t now = ts_mono_ms();

	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		return;
	if (m->err != last || now - last_at > 10000) {
		ts_log_warn("consume %s: %s", w->cfg->topic,
			    rd_kafka_message_errstr(m));
		last = m->err;
		last_at = now;
	}
}

static char *dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static void intake(struct worker *w, rd_kafka_message_t *m)
{
	struct part *p;
	struct wtask *t;
	const void *tp;
	size_t tplen;
	rd_kafka_timestamp_type_t tstype;

	if (m->err) {
		consume_error(w, m);
		return;
	}
	p = part_get(w, m->partition, 0);
	/* Not ours (any more), or shutting down: not taken, not committed;
	 * the partition's next owner (or our next start) reads it again. */
	if (!p || !p->assigned || p->draining || w->stopping)
		return;
	if (ts_offsets_add(&p->offs, m->offset) != TS_OK) {
		ts_log_debug("skipping repeated offset %d:%lld", m->partition,
			     (long long)m->offset);
		return;
	}
	t = calloc(1, sizeof *t);
	if (!t)
		goto nomem;
	w->held++;
	t->partition = m->partition;
	t->offset = m->offset;
	t->timestamp = rd_kafka_message_timestamp(m, &tstype);
	t->part = p;
	t->t0 = ts_mono_ms();
	t->retry_after_ms = -1;
	t->heap_i = (size_t)-1;
	if (m->key && !(t->key = dup_bytes(m->key, m->key_len)))
		goto nomem;
	t->key_len = m->key_len;
	if (m->payload && !(t->value = dup_bytes(m->payload, m->len)))
		goto nomem;
	t->value_len = m->len;
	if (rd_kafka_message_detach_headers(m, &t->headers) != 0)
		t->headers = NULL;
	if (t->headers &&
	    rd_kafka_header_get_last(t->headers, "traceparent", &tp, &tplen) == 0 &&
	    tp && tplen <= TS_TRACEPARENT_MAX) {
		t->traceparent = dup_bytes(tp, tplen);
		if (t->traceparent && !ts_valid_traceparent(t->traceparent)) {
			free(t->traceparent);
			t->traceparent = NULL;
		}
	}
	t->pnext = NULL;
	t->pprev = NULL;
	/* append at the partition's tail: the list stays in offset order */
	if (p->tasks) {
		struct wtask *tail = p->tasks_tail;
		tail->pnext = t;
		t->pprev = tail;
	} else {
		p->tasks = t;
	}
	p->tasks_tail = t;
	p->held++;
	ts_series_inc(w->s_consumed);
	w->last_activity = t->t0;
	sched_add(w, t);
	return;
nomem:
	/* Leave it unfinished in the tracker: never committed, read again
	 * after a restart. */
	ts_log_error("out of memory taking %d:%lld", m->partition,
		     (long long)m->offset);
	if (t)
		task_free(w, t);
}

/* ---- commits ------------------------------------------------------------- */

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		      rd_kafka_topic_partition_list_t *l, void *opaque);
static void rebalance_end(struct worker *w);

/* The group refuses commits while it rebalances (the mock cluster from
 * the first JoinGroup of a new member until the rebalance ends; a real
 * broker once it waits for the SyncGroup), and from a member of an older
 * generation. */
static int refused_by_rebalance(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
	       err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
	       err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID;
}

/* The answer to a synchronous commit, copied into its list. */
struct sync_commit {
	int done;
	rd_kafka_resp_err_t err;
	rd_kafka_topic_partition_list_t *l;
};

static void on_sync_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			   rd_kafka_topic_partition_list_t *r, void *opaque)
{
	struct sync_commit *sc = opaque;

	(void)rk;
	sc->done = 1;
	sc->err = err;
	for (int i = 0; r && i < sc->l->cnt; i++) {
		rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_find(
			r, sc->l->elems[i].topic, sc->l->elems[i].partition);
		if (e)
			sc->l->elems[i].err = e->err;
	}
}

/* Commit l and wait for the answer, at most COMMIT_WAIT_MS: librdkafka's
 * own synchronous commit waits for the group coordinator for ever, so a
 * worker told to stop while its broker was down never exited. The
 * answer comes to a queue of our own; given up on, that queue goes and
 * the late answer with it. Per-partition results land in l; each
 * partition whose commit did not land is logged. */
static rd_kafka_resp_err_t commit_wait(struct worker *w,
				       rd_kafka_topic_partition_list_t *l)
{
	struct sync_commit sc = { .l = l };
	rd_kafka_queue_t *q = rd_kafka_queue_new(w->rk);
	int64_t until = ts_mono_ms() + COMMIT_WAIT_MS, left;
	rd_kafka_resp_err_t err;

	err = rd_kafka_commit_queue(w->rk, l, q, on_sync_commit, &sc);
	while (!err && !sc.done && (left = until - ts_mono_ms()) > 0)
		rd_kafka_queue_poll_callback(q, (int)left);
	rd_kafka_queue_destroy(q);
	if (!err)
		err = sc.done ? sc.err : RD_KAFKA_RESP_ERR__TIMED_OUT;
	for (int i = 0; i < l->cnt; i++) {
		rd_kafka_resp_err_t e = err ? err : l->elems[i].err;
		if (e)
			ts_log_warn("commit %s [%d] at %lld: %s", w->cfg->topic,
				    l->elems[i].partition,
				    (long long)l->elems[i].offset,
				    rd_kafka_err2str(e));
	}
	return err;
}

/* Commit the commit point of every partition in ids (all assigned ones
 * when ids is NULL). async: those that moved since the last commit; the
 * answer comes to on_commit through commit_q. sync (revoke, shutdown):
 * every one, even one that seems committed already (an async commit of
 * it may have been refused, its answer not served yet), and wait for the
 * broker's answer: p->committed says what landed. */
static void commit(struct worker *w, const int32_t *ids, size_t nids, int sync)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	rd_kafka_resp_err_t err;
	size_t n = ids ? nids : w->nparts;

	for (size_t i = 0; i < n; i++) {
		struct part *p = part_get(w, ids ? ids[i] : (int32_t)i, 0);
		int64_t cp;
		if (!p || !p->assigned)
			continue;
		cp = ts_offsets_commit_point(&p->offs);
		if (cp < 0 || (!sync && cp <= p->committed))
			continue;
		rd_kafka_topic_partition_list_add(l, w->cfg->topic, p->id)->offset = cp;
	}
	if (l->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(l);
		return;
	}
	if (sync)
		err = commit_wait(w, l);
	else
		err = rd_kafka_commit_queue(w->rk, l, w->commit_q, on_commit,
					    (void *)(uintptr_t)w->rebalance_epoch);
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		ts_log_warn("commit: %s", rd_kafka_err2str(err));
	for (int i = 0; i < l->cnt; i++) {
		struct part *p = part_get(w, l->elems[i].partition, 0);
		rd_kafka_resp_err_t e = err ? err : l->elems[i].err;
		/* async: assume it lands; on_commit undoes this when it did
		 * not, so the next round tries again */
		if (p)
			p->committed = !sync || !e ? l->elems[i].offset : -1;
		ts_log_debug("commit %s [%d] at %lld", w->cfg->topic,
			     l->elems[i].partition, (long long)l->elems[i].offset);
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* ---- flow control -------------------------------------------------------- */

/* Flow control. librdkafka 2.0.2 acts on a pause, a resume or a full
 * prefetch queue only at its broker thread's next one-second tick, and a
 * pause drops what it had prefetched. So in the common case ts-worker does
 * not pause at all: when it holds its bound of tasks it simply stops
 * taking messages, they wait in librdkafka's own bounded queue
 * (queued.max.messages.kbytes, shared by all partitions), and taking
 * resumes the moment tasks finish.
 *
 * That queue also carries the consumer's events (a rebalance) behind the
 * messages. When deliveries are slow, what is queued would take more than
 * QUEUE_WAIT_MAX_S to work through at the rate tasks are being taken, and
 * that lasts for FULL_PAUSE_MS, ts-worker pauses the partitions holding
 * more than their share (every one when none does): their queued messages
 * are dropped (they are read again later), the events come through, and
 * the other partitions go on, within twice the bound (level 1). If that
 * is still not enough a second later, it pauses all (level 2). A paused
 * partition resumes once it and the total are below half. */
static void list_ids(const rd_kafka_topic_partition_list_t *l, char *buf,
		     size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < l->cnt && o + 12 < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%d", i ? "," : "",
				      l->elems[i].partition);
}

#define FULL_PAUSE_MS 1000
#define QUEUE_WAIT_MAX_S 2.0

static void pause_list(struct worker *w, rd_kafka_topic_partition_list_t *l,
		       int pause)
{
	char ids[256];

	if (!l)
		return;
	list_ids(l, ids, sizeof ids);
	ts_log_debug("%s partitions %s (holding %zu tasks)",
		     pause ? "pausing" : "resuming", ids, w->held);
	if (pause)
		rd_kafka_pause_partitions(w->rk, l);
	else
		rd_kafka_resume_partitions(w->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
}

static void list_add(struct worker *w, rd_kafka_topic_partition_list_t **l,
		     struct part *p)
{
	if (!*l)
		*l = rd_kafka_topic_partition_list_new(8);
	rd_kafka_topic_partition_list_add(*l, w->cfg->topic, p->id);
}

static size_t share(struct worker *w)
{
	size_t s = w->assigned_count ? w->hold_total_high / w->assigned_count :
				       w->hold_total_high;
	return s < 16 ? 16 : s;
}

/* Pause the partitions holding more than their share, or every one
 * (all != 0, or when none holds more). */
static void pause_hogs(struct worker *w, int all)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	int any = 0;

	for (int pass = all ? 1 : 0; pass < 2 && !any; pass++) {
		for (size_t i = 0; i < w->nparts; i++) {
			struct part *p = w->parts[i];
			if (!p || !p->assigned || p->paused)
				continue;
			if (pass == 0 && p->held < share(w))
				continue;
			list_add(w, &l, p);
			p->paused = 1;
			any = 1;
		}
	}
	pause_list(w, l, 1);
}

/* Tasks taken per second over the last second or so. */
static double intake_rate(struct worker *w, int64_t now)
{
	if (now - w->rate_t0 >= 1000) {
		w->rate = (double)w->taken * 1000.0 / (double)(now - w->rate_t0);
		w->taken = 0;
		w->rate_t0 = now;
	}
	return w->rate;
}

static void flow(struct worker *w, int64_t now)
{
	rd_kafka_topic_partition_list_t *resume = NULL;
	size_t bound = w->hold_total_high * (w->flow_level ? 2 : 1);
	double rate = intake_rate(w, now);
	int backed_up;

	if (w->stopping) {
		pause_hogs(w, 1);
		w->flow_level = 2;
		return;
	}
	/* holding (nearly) the bound, and the queue ahead of any new event
	 * would take too long to get through */
	backed_up = w->held >= bound - bound / 8 &&
		    (double)rd_kafka_queue_length(w->cq) >
			    (rate < 1 ? 1 : rate) * QUEUE_WAIT_MAX_S;
	if (backed_up && w->flow_level < 2) {
		if (!w->full_since) {
			w->full_since = now;
		} else if (now - w->full_since >= FULL_PAUSE_MS) {
			w->flow_level++;
			pause_hogs(w, w->flow_level == 2);
			w->full_since = 0;
		}
	} else if (!backed_up) {
		w->full_since = 0;
	}
	if (w->flow_level && w->held <= w->hold_total_high / 2)
		w->flow_level = 0;
	if (w->rebalancing && now - w->rebalancing_since >= REBALANCE_WAIT_MS) {
		/* Refusals go on, or the next one would pause everything
		 * again within 100 ms: before librdkafka acted on the resume,
		 * so a partition not fetched yet was never taken. */
		ts_log_info("no rebalance of group %s came after a refused "
			    "commit: taking tasks again, and refused commits "
			    "pause nothing until a rebalance or an accepted "
			    "commit", w->cfg->group);
		w->rebalancing = 0;
		w->refusals_doubted = 1;
	}
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = w->parts[i];
		if (w->rebalancing)
			break;
		if (p && p->assigned && p->paused && !p->draining &&
		    p->held <= share(w) / 2 && w->held <= w->hold_total_high / 2) {
			list_add(w, &resume, p);
			p->paused = 0;
		}
	}
	pause_list(w, resume, 0);
}

/* May the loop take messages now? Level 2 (and stopping) paused every
 * partition, so only events and a few stragglers can come. */
static int may_take(struct worker *w)
{
	if (w->stopping || w->flow_level == 2 || w->rebalancing)
		return 1;
	return w->held < w->hold_total_high * (w->flow_level ? 2 : 1);
}

/* ---- rebalance detected by a refused commit ------------------------------ */

/* The group refused a commit: it is rebalancing. librdkafka tells the
 * rebalance callback through the consumer's queue, behind every message
 * prefetched (up to queued.max.messages.kbytes, thousands of tasks), and
 * until the callback ran ts-worker would go on taking and delivering
 * them; on the mock cluster none of that can be committed any more, so
 * the partitions' next owners run it all again. Pause every partition:
 * the pause drops what was prefetched (it is fetched again, by us or by
 * the next owner, from the last offset taken), the callback comes
 * through at once, and only the tasks already held go on. */
static void rebalance_begin(struct worker *w)
{
	rd_kafka_topic_partition_list_t *l = NULL;

	if (w->rebalancing || w->stopping || w->refusals_doubted)
		return;
	w->rebalancing = 1;
	w->rebalancing_since = ts_mono_ms();
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = w->parts[i];
		if (!p || !p->assigned || p->paused)
			continue;
		list_add(w, &l, p);
		p->paused = 1;
	}
	ts_log_info("group %s is rebalancing (a commit was refused): taking "
		    "no more tasks until it is done", w->cfg->group);
	pause_list(w, l, 1);
}

/* The rebalance callback came (or a commit was accepted): flow() resumes
 * what is still ours and paused, and the next refused commit pauses
 * again. */
static void rebalance_end(struct worker *w)
{
	w->rebalancing = 0;
	w->refusals_doubted = 0;
}

/* Result of an async commit (served from commit_q by the loop). opaque:
 * the rebalance epoch when it was sent; a refusal from before the last
 * rebalance callback is old news. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		      rd_kafka_topic_partition_list_t *l, void *opaque)
{
	struct worker *w = rd_kafka_opaque(rk);
	int refused = 0, failed = 0;

	if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return;
	for (int i = 0; l && i < l->cnt; i++) {
		struct part *p;
		rd_kafka_resp_err_t e = err ? err : l->elems[i].err;
		if (!e)
			continue;
		failed = 1;
		refused |= refused_by_rebalance(e);
		p = part_get(w, l->elems[i].partition, 0);
		if (p && p->committed == l->elems[i].offset)
			p->committed = -1;   /* try again */
		ts_log_info("commit %s [%d] at %lld failed: %s", w->cfg->topic,
			    l->elems[i].partition, (long long)l->elems[i].offset,
			    rd_kafka_err2str(e));
	}
	if (!l && err) {
		failed = 1;
		refused = refused_by_rebalance(err);
	}
	if ((uintptr_t)opaque != (uintptr_t)w->rebalance_epoch)
		return;
	if (refused)
		rebalance_begin(w);
	else if (!failed)
		rebalance_end(w);
}

/* ---- waiting ------------------------------------------------------------- */

static void drain_pipe(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

/* Wait up to timeout_ms for anything but the consumer (whose queue we are
 * inside of during a rebalance), then serve it: finished deliveries, DLQ
 * acknowledgements, due retries. */
static void serve_side(struct worker *w, int timeout_ms)
{
	struct pollfd pfd[2] = { { w->done_fd, POLLIN, 0 },
				 { w->pq_fd, POLLIN, 0 } };

	if (poll(pfd, 2, timeout_ms) > 0 && pfd[1].revents)
		drain_pipe(w->pq_fd);
	rd_kafka_poll(w->prod, 0);
	rd_kafka_queue_poll_callback(w->commit_q, 0);
	handle_done(w);
	sched_fire_retries(w, ts_mono_ms());
}

/* ---- rebalance ------------------------------------------------------------ */


/* Partitions coming back whose commit the group refused when they were
 * revoked (it was rebalancing). Every offset below that commit point was
 * finished here, so it is still a true claim: when the group's commit is
 * older, commit it now and start there, instead of running again what
 * was finished. A later commit of the group (another member went
 * further) is left alone, and the kept point dropped. The point stays
 * kept until a commit of it lands: refused again (the group rebalancing
 * once more) or not known to have landed, it is still what the next
 * return starts from, even if nothing is finished meanwhile (CI, make
 * SANITIZE: a partition back twice, its commit refused both times, came
 * back a third time with nothing kept and ran 1,015 tasks again). Sets
 * the start offsets in l. */
static void resume_pending(struct worker *w, rd_kafka_topic_partition_list_t *l)
{
	rd_kafka_topic_partition_list_t *q = NULL, *c = NULL;
	rd_kafka_resp_err_t err;

	for (int i = 0; i < l->cnt; i++) {
		struct part *p = part_get(w, l->elems[i].partition, 0);
		if (p && p->pending >= 0)
			list_add(w, &q, p);
	}
	if (!q)
		return;
	err = rd_kafka_committed(w->rk, q, COMMITTED_TIMEOUT_MS);
	if (err)
		ts_log_warn("reading the commits of group %s: %s", w->cfg->group,
			    rd_kafka_err2str(err));
	for (int i = 0; i < q->cnt; i++) {
		struct part *p = part_get(w, q->elems[i].partition, 0);
		rd_kafka_resp_err_t qe = err ? err : q->elems[i].err;
		rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_find(
			l, w->cfg->topic, p->id);
		if (e && qe) {
			/* The group's commit unknown: start at ours all the
			 * same (nothing below it is unfinished; at worst a
			 * member that went further is repeated), but do not
			 * commit it over what may be a later one. */
			e->offset = p->pending;
			ts_log_info("%s [%d] is back: starting at %lld, where "
				    "its refused commit was (the group's "
				    "unknown: %s)", w->cfg->topic, p->id,
				    (long long)p->pending, rd_kafka_err2str(qe));
			continue; /* kept: not committed */
		}
		if (e && q->elems[i].offset < p->pending) {
			e->offset = p->pending;
			if (!c)
				c = rd_kafka_topic_partition_list_new(q->cnt);
			rd_kafka_topic_partition_list_add(c, w->cfg->topic,
							  p->id)->offset = p->pending;
			ts_log_info("%s [%d] is back: starting at %lld, where "
				    "its refused commit was (group's: %lld)",
				    w->cfg->topic, p->id, (long long)p->pending,
				    (long long)q->elems[i].offset);
			continue; /* kept until the commit lands */
		}
		p->pending = -1; /* the group's commit is as far or further */
	}
	rd_kafka_topic_partition_list_destroy(q);
	if (!c)
		return;
	err = commit_wait(w, c); /* what did not land is logged */
	for (int i = 0; !err && i < c->cnt; i++) {
		struct part *p = part_get(w, c->elems[i].partition, 0);
		if (p && !c->elems[i].err)
			p->pending = -1;
	}
	rd_kafka_topic_partition_list_destroy(c);
}

static void assign_parts(struct worker *w, rd_kafka_topic_partition_list_t *l)
{
	char ids[256];

	for (int i = 0; i < l->cnt; i++) {
		struct part *p = part_get(w, l->elems[i].partition, 1);
		if (!p) {
			ts_log_error("out of memory taking partition %d",
				     l->elems[i].partition);
			continue;
		}
		if (!p->assigned)
			w->assigned_count++;
		p->assigned = 1;
		p->paused = 0;
		p->draining = 0;
		p->committed = -1;
		ts_offsets_reset(&p->offs);
		pthread_mutex_lock(&w->mu);
		p->hi_started = -1;
		pthread_mutex_unlock(&w->mu);
	}
	w->ever_assigned = 1;
	w->last_activity = ts_mono_ms();
	ts_series_set(ts_metric_with(w->m_assigned), (double)w->assigned_count);
	list_ids(l, ids, sizeof ids);
	ts_log_info("assigned %s partitions %s", w->cfg->topic,
		    l->cnt ? ids : "(none)");
}

static size_t held_in(struct worker *w, const int32_t *ids, size_t n)
{
	size_t held = 0;

	for (size_t i = 0; i < n; i++) {
		struct part *p = part_get(w, ids[i], 0);
		if (p)
			held += p->held;
	}
	return held;
}

/* Finish what was started on these partitions (up to the drain timeout),
 * commit, and let go of the rest: the new owner starts at the commit
 * point. lost: the group already gave them away; commit nothing. */
static void revoke_parts(struct worker *w, rd_kafka_topic_partition_list_t *l,
			 int lost)
{
	int32_t *ids = calloc((size_t)l->cnt + 1, sizeof *ids);
	rd_kafka_topic_partition_list_t *resume = NULL;
	size_t n = 0, left;
	int64_t deadline;
	char names[256];

	if (!ids) {
		ts_log_error("out of memory revoking partitions");
		return;
	}
	for (int i = 0; i < l->cnt; i++) {
		struct part *p = part_get(w, l->elems[i].partition, 0);
		if (!p || !p->assigned)
			continue;
		ids[n++] = p->id;
		if (!lost) {
			p->draining = 1;
			sched_drop_part(w, p, 0);
		}
	}
	deadline = w->stopping ? w->stop_deadline :
				 ts_mono_ms() + w->cfg->drain_timeout_ms;
	while (!lost && held_in(w, ids, n) > 0) {
		int64_t now = ts_mono_ms();
		if (now >= deadline)
			break;
		serve_side(w, (int)(deadline - now < W_DONE_WAIT_MS ?
					    deadline - now : W_DONE_WAIT_MS));
	}
	if (!lost)
		commit(w, ids, n, 1);
	left = held_in(w, ids, n);
	for (size_t i = 0; i < n; i++) {
		struct part *p = part_get(w, ids[i], 0);
		int64_t cp = ts_offsets_commit_point(&p->offs);
		/* refused (the group is rebalancing: the mock cluster refuses
		 * every commit then): still true, kept for when the partition
		 * comes back (resume_pending); so is a point kept from before
		 * whose commit has not landed since */
		if (lost) {
			p->pending = -1;
		} else if (cp >= 0 && p->committed != cp) {
			if (cp > p->pending)
				p->pending = cp;
			ts_log_info("%s [%d]: commit at %lld refused at the revoke; "
				    "kept for when the partition comes back",
				    w->cfg->topic, p->id, (long long)p->pending);
		} else if (p->committed >= 0 && p->committed >= p->pending) {
			p->pending = -1; /* a commit at or past it landed */
		} else if (p->pending >= 0) {
			ts_log_info("%s [%d]: commit at %lld still not made; "
				    "kept for when the partition comes back",
				    w->cfg->topic, p->id, (long long)p->pending);
		}
		sched_drop_part(w, p, 1);
		/* librdkafka keeps a partition's pause across an unassign and
		 * the next assign: undo ours before letting it go */
		if (p->paused) {
			list_add(w, &resume, p);
			p->paused = 0;
		}
		p->assigned = 0;
		p->draining = 0;
		ts_offsets_reset(&p->offs);
		w->assigned_count--;
	}
	pause_list(w, resume, 0);
	ts_series_set(ts_metric_with(w->m_assigned), (double)w->assigned_count);
	list_ids(l, names, sizeof names);
	if (left)
		ts_log_warn("%s partitions %s %s with %zu unfinished task%s: "
			    "their next owner runs them again", w->cfg->topic,
			    names, lost ? "lost" : "revoked", left,
			    left == 1 ? "" : "s");
	else
		ts_log_info("revoked %s partitions %s", w->cfg->topic,
			    l->cnt ? names : "(none)");
	free(ids);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *l, void *opaque)
{
	struct worker *w = opaque;
	int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *e = NULL;

	w->rebalance_epoch++;
	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		w->awaiting_assign = 0;
		rebalance_end(w);
		resume_pending(w, l);
		assign_parts(w, l);
		if (coop)
			e = rd_kafka_incremental_assign(rk, l);
		else
			rd_kafka_assign(rk, l);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		w->awaiting_assign = 1; /* the group's next assignment */
		revoke_parts(w, l, rd_kafka_assignment_lost(rk));
		if (coop)
			e = rd_kafka_incremental_unassign(rk, l);
		else
			rd_kafka_assign(rk, NULL);
		break;
	default:
		w->awaiting_assign = 0;
		rebalance_end(w);
		ts_log_error("rebalance: %s", rd_kafka_err2str(err));
		revoke_parts(w, l, 1);
		rd_kafka_assign(rk, NULL);
		break;
	}
	if (e) {
		ts_log_error("rebalance: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
}

void w_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct worker *w = opaque;
	char fatal[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
		ts_log_error("kafka: fatal: %s", fatal);
		w->fatal = ts_err_exit(ts_kafka_classify(orig) == TS_ERR_TRANSIENT ?
					       TS_ERR_TRANSIENT : TS_ERR_PERMANENT);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		w->brokers_down = 1;
		ts_log_warn("kafka: %s", reason);
		return;
	}
	ts_log_info("kafka: %s", reason);
}

/* librdkafka's own log lines, through ours. The -X list is shared by the
 * consumer and the DLQ producer, so each warns about the other's
 * properties: those warnings are noise here. */
void w_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
		 const char *buf)
{
	(void)rk;
	if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored"))
		return;
	if (level <= 3)
		ts_log_error("kafka: %s: %s", fac, buf);
	else if (level == 4)
		ts_log_warn("kafka: %s: %s", fac, buf);
	else if (level <= 6)
		ts_log_info("kafka: %s: %s", fac, buf);
	else
		ts_log_debug("kafka: %s: %s", fac, buf);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	out_stats(opaque, json, len);
	return 0;
}

/* ---- the loop ------------------------------------------------------------- */

static void begin_stop(struct worker *w, const char *why)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	w->stop_deadline = ts_mono_ms() + w->cfg->drain_timeout_ms;
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = w->parts[i];
		if (p && p->assigned) {
			p->draining = 1;
			sched_drop_part(w, p, 0);
		}
	}
	ts_log_info("stopping (%s): finishing %zu started task%s, up to %lld ms",
		    why, w->held, w->held == 1 ? "" : "s",
		    (long long)w->cfg->drain_timeout_ms);
	flow(w, ts_mono_ms());
}

static int next_timeout(struct worker *w, int64_t now)
{
	int64_t t = now + 200;   /* a bound, in case a wake-up is missed */

	/* Messages may be waiting (we stopped early or held back): their
	 * queue will not signal again until it has been emptied. */
	if (w->consumer_more && may_take(w))
		return 0;
	if (w->full_since && w->full_since + FULL_PAUSE_MS < t)
		t = w->full_since + FULL_PAUSE_MS;
	if (w->heap_n && w->heap[0]->due < t)
		t = w->heap[0]->due;
	if (w->next_commit > now && w->next_commit < t)
		t = w->next_commit;
	if (w->stopping && w->stop_deadline < t)
		t = w->stop_deadline;
	/* tasks out that are not waiting for a retry: results may be on
	 * the done list without a wake-up (pool.c, hand_back) */
	if (w->held > w->heap_n && now + W_DONE_WAIT_MS < t)
		t = now + W_DONE_WAIT_MS;
	return t > now ? (int)(t - now) : 0;
}

static void serve_consumer(struct worker *w, int woken)
{
	rd_kafka_message_t *m;
	int n = 0;

	if (woken)
		w->consumer_more = 1;
	while (may_take(w)) {
		if (!(m = rd_kafka_consumer_poll(w->rk, 0))) {
			w->consumer_more = 0;
			return;
		}
		intake(w, m);
		rd_kafka_message_destroy(m);
		w->taken++;
		if (++n >= INTAKE_BURST)
			return;
	}
}

/* --exit-idle: idle long enough to stop. The clock stands still while
 * no broker is reachable (nothing fetched says nothing then) and between
 * a revoke and the assignment that follows it. */
static int idle_done(struct worker *w, int64_t now)
{
	if (w->cfg->exit_idle_ms <= 0)
		return 0;
	if (w->brokers_down || w->awaiting_assign) {
		w->last_activity = now;
		return 0;
	}
	return w->ever_assigned && !w->stopping && w->held == 0 &&
	       w->dlq_inflight == 0 &&
	       now - w->last_activity >= w->cfg->exit_idle_ms;
}

int w_run(struct worker *w)
{
	w->last_activity = ts_mono_ms();
	w->next_commit = w->last_activity + COMMIT_INTERVAL_MS;
	for (;;) {
		struct pollfd pfd[3] = { { w->cq_fd, POLLIN, 0 },
					 { w->pq_fd, POLLIN, 0 },
					 { w->done_fd, POLLIN, 0 } };
		int64_t now = ts_mono_ms();

		int woken = 0;

		if (poll(pfd, 3, next_timeout(w, now)) > 0) {
			if (pfd[0].revents) {
				drain_pipe(w->cq_fd);
				woken = 1;
			}
			if (pfd[1].revents)
				drain_pipe(w->pq_fd);
		}
		serve_consumer(w, woken);
		rd_kafka_queue_poll_callback(w->commit_q, 0);
		rd_kafka_poll(w->prod, 0);
		handle_done(w);
		now = ts_mono_ms();
		sched_fire_retries(w, now);
		flow(w, now);
		if (now >= w->next_commit) {
			commit(w, NULL, 0, 0);
			w->next_commit = now + COMMIT_INTERVAL_MS;
		}
		/* Result lines go out in a write every 100 ms under load (one
		 * per pass of the loop was a write per few tasks), at once
		 * when the worker has nothing in hand. */
		if (now - w->last_flush >= OUT_FLUSH_MS || !w->held ||
		    w->stopping) {
			fflush(stdout);
			w->last_flush = now;
		}
		__atomic_store_n(&w->pub_held, w->held, __ATOMIC_RELAXED);
		__atomic_store_n(&w->pub_retry, w->heap_n, __ATOMIC_RELAXED);

		if (ts_stop)
			begin_stop(w, "signal");
		if (w->fatal)
			begin_stop(w, "fatal error");
		if (idle_done(w, now))
			begin_stop(w, "idle");
		if (w->stopping && ((w->held == 0 && w->dlq_inflight == 0) ||
				    now >= w->stop_deadline))
			break;
	}
	if (w->held) {
		ts_log_warn("drain timeout: %zu task%s unfinished (not committed: "
			    "they run again)", w->held, w->held == 1 ? "" : "s");
		ts_handler_kill_all();
	}
	commit(w, NULL, 0, 1);
	fflush(stdout);
	return w->fatal;
}

/* ---- setup ---------------------------------------------------------------- */

ts_err w_consumer_open(struct worker *w, ts_detail *d)
{
	char stats_ms[16];
	const char *defaults[] = {
		"group.id", w->cfg->group,
		"auto.offset.reset", "earliest",
		"enable.auto.commit", "false",
		/* offsets are committed explicitly, never stored for us */
		"enable.auto.offset.store", "false",
		/* The prefetch queue, shared by all partitions, is where
		 * tasks wait while the threads are busy (see flow()). It
		 * must hold more than a second of deliveries, since
		 * librdkafka fetches again only a second after it found
		 * the queue full: with 2 MB (4,500 tasks of 450 bytes) the
		 * threads ran out of work every 0.8 s at 6,000 tasks/s. */
		"queued.max.messages.kbytes", "4096",
		"fetch.message.max.bytes", "131072",
		/* statistics feed the metrics and say whether a broker is
		 * up, which --exit-idle needs (idle_done) */
		w->cfg->metrics || w->cfg->exit_idle_ms > 0 ?
			"statistics.interval.ms" : NULL, stats_ms,
		NULL,
	};
	rd_kafka_conf_t *conf;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t rerr;
	char errstr[512];
	static const char one = 1;
	int fds[2];
	ts_err err;

	snprintf(stats_ms, sizeof stats_ms, "%d",
		 w->cfg->exit_idle_ms > 0 ? 1000 : 5000);
	if ((err = ts_kafka_conf(w->cfg, defaults, &conf, d)))
		return err;
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	rd_kafka_conf_set_error_cb(conf, w_kafka_error);
	rd_kafka_conf_set_log_cb(conf, w_kafka_log);
	if (w->cfg->metrics || w->cfg->exit_idle_ms > 0)
		rd_kafka_conf_set_stats_cb(conf, on_stats);
	w->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	if (!w->rk) {
		rd_kafka_conf_destroy(conf);
		return ts_fail(d, TS_ERR_CONFIG, NULL, "kafka: %s", errstr);
	}
	rd_kafka_poll_set_consumer(w->rk);
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL, "pipe: %s",
			       strerror(errno));
	w->cq = rd_kafka_queue_get_consumer(w->rk);
	w->cq_fd = fds[0];
	w->cq_wfd = fds[1];
	rd_kafka_queue_io_event_enable(w->cq, fds[1], &one, 1);
	/* async commits answer here, not behind the prefetched messages:
	 * a refusal is how a rebalance shows first (rebalance_begin) */
	w->commit_q = rd_kafka_queue_new(w->rk);
	rd_kafka_queue_io_event_enable(w->commit_q, fds[1], &one, 1);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, w->cfg->topic,
					  RD_KAFKA_PARTITION_UA);
	rerr = rd_kafka_subscribe(w->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (rerr)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "subscribe %s: %s",
			       w->cfg->topic, rd_kafka_err2str(rerr));
	return TS_OK;
}

/* Leave the group, waiting at most CLOSE_WAIT_MS: rd_kafka_consumer_close
 * waits for the LeaveGroup answer as long as a request may take (60 s),
 * so a worker whose broker stopped answering did not exit in time. Given
 * up on, the handle goes without the close: the group notices the
 * member gone when its session times out. */
static void leave_group(struct worker *w)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(w->rk);
	rd_kafka_error_t *e = rd_kafka_consumer_close_queue(w->rk, q);
	int64_t until = ts_mono_ms() + CLOSE_WAIT_MS, left;
	int closed = 0;

	if (e) {
		ts_log_warn("leaving group %s: %s", w->cfg->group,
			    rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	} else {
		/* the revoke callback runs from here once more (nothing is
		 * held by now, or the drain deadline has passed) */
		while (!(closed = rd_kafka_consumer_closed(w->rk)) &&
		       (left = until - ts_mono_ms()) > 0)
			rd_kafka_queue_poll_callback(q, left < 100 ? (int)left : 100);
		if (!closed)
			ts_log_warn("leaving group %s: no answer from the coordinator in %d s; the group drops this member when its session times out",
				    w->cfg->group, CLOSE_WAIT_MS / 1000);
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_queue_io_event_enable(w->cq, -1, NULL, 0);
	rd_kafka_queue_destroy(w->cq);
	rd_kafka_queue_io_event_enable(w->commit_q, -1, NULL, 0);
	rd_kafka_queue_destroy(w->commit_q);
	if (closed)
		rd_kafka_destroy(w->rk);
	else
		rd_kafka_destroy_flags(w->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

void w_consumer_close(struct worker *w)
{
	if (!w->rk)
		return;
	leave_group(w);
	w->rk = NULL;
	close(w->cq_fd);
	close(w->cq_wfd);
}
