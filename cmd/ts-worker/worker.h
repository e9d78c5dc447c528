/* worker.h - ts-worker internals shared by its files.
 *
 * One main thread runs an event loop (consumer.c): it polls Kafka, keeps
 * every task's state, decides what may run (sched.c), commits, writes the
 * DLQ (dlq.c) and stdout (output.c). A pool of --concurrency threads
 * (pool.c) does the blocking deliveries. Tasks cross between them through
 * two lists under one mutex: the ready queue (main -> threads) and the
 * done list (threads -> main, with an eventfd to wake the loop).
 * docs/architecture.md tells the story.
 */
#ifndef TS_WORKER_H
#define TS_WORKER_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "backoff.h"
#include "config.h"
#include "handler.h"
#include "metrics.h"
#include "offsets.h"
#include "task.h"
#include "transport.h"

/* How far into the ready queue a thread streaming one built-in channel
 * (pool.c) looks for its next task of that channel. */
#define W_SCAN_MAX 64

/* Results the threads gather before they wake the main thread while
 * they all have work, and how long it lets them wait at most. */
#define W_DONE_BATCH 32
#define W_DONE_WAIT_MS 10

/* Tasks held per thread (ready, running, waiting): the bound of what the
 * loop takes from Kafka (main.c), about 2.5 KB each. 8 keeps every
 * thread fed (the ready queue is hundreds deep); the memory goes to
 * librdkafka's prefetch queue instead (consumer.c), which is cheaper per
 * task and is what keeps deliveries going across its one-second tick. */
#define W_HOLD_PER_THREAD 8
#define W_HOLD_MIN 256

enum route_kind { ROUTE_EMAIL, ROUTE_SMS, ROUTE_HANDLER };

struct route {
	char type[TS_TASK_TYPE_MAX + 1];
	enum route_kind kind;
	ts_handler handler;      /* ROUTE_HANDLER */
};

enum wstate {
	W_WAITING,   /* behind an earlier task of its key (or partition) */
	W_READY,     /* in the pool's ready queue */
	W_RUNNING,   /* a thread has it */
	W_RETRY,     /* waiting for its retry time (in the retry heap) */
	W_DLQ,       /* its dead letter is being produced */
};

enum errclass {
	EC_NONE,
	EC_INVALID_JSON,
	EC_INVALID_TASK,
	EC_UNKNOWN_TYPE,
	EC_PERMANENT,
	EC_EXHAUSTED,
};

struct part;
struct chain;

struct wtask {
	/* the record: owned copies, the librdkafka message is gone */
	int32_t partition;
	int64_t offset;
	int64_t timestamp;         /* ms since the epoch, -1 when unknown */
	char *key;                 /* NULL for a null key */
	size_t key_len;
	char *value;               /* NULL for a null value */
	size_t value_len;
	rd_kafka_headers_t *headers; /* detached from the message; NULL: none */
	char *traceparent;         /* from the headers; NULL: none */
	struct part *part;

	/* parsed when it first becomes ready */
	int parsed;
	ts_task task;
	char *envelope;            /* what a handler gets; NULL: the value */
	const struct route *route;
	char task_id[TS_TASK_ID_MAX + 1];   /* "" when unknown */
	char task_type[TS_TASK_TYPE_MAX + 1];

	/* progress */
	enum wstate state;
	int attempts;
	int64_t t0;                /* monotonic ms when consumed */
	int64_t due;               /* W_RETRY: monotonic ms */
	size_t heap_i;
	enum errclass ec;
	char msg[384];             /* last failure */
	int64_t retry_after_ms;    /* last failure's Retry-After, or -1 */
	ts_err result;             /* last attempt, set by the thread */
	int dlq_tries;
	int abandoned;             /* its partition let go of it */

	/* links */
	struct wtask *qprev, *qnext;   /* ready queue, done list */
	struct wtask *pprev, *pnext;   /* every task of its partition */
	struct wtask *cnext;           /* next in its chain */
	struct chain *chain;           /* NULL: unordered */
};

/* Tasks of one key (order=key) or of the whole partition (order=partition)
 * run one at a time, in offset order. */
struct chain {
	struct chain *hnext;           /* hash bucket */
	uint64_t hash;
	char *key;
	size_t key_len;
	struct wtask *head, *tail;
};

struct part {
	int32_t id;
	int assigned;
	ts_offsets offs;
	int64_t committed;     /* last commit point sent, -1: none */
	int64_t pending;       /* commit point the group refused at the
				* revoke (it was rebalancing), -1: none;
				* committed if the partition comes back */
	size_t held;           /* tasks held (any state) */
	int64_t hi_started;    /* highest offset a thread took; under pool mu */
	int paused;
	int draining;          /* revoke or stop: finish up to hi_started */
	struct wtask *tasks;   /* list via pprev/pnext, in offset order */
	struct wtask *tasks_tail;
	struct chain **buckets;
	size_t nbuckets, nchains;
};

struct worker {
	ts_config *cfg;
	ts_backoff backoff;
	int order;                 /* 'k', 'p', 'n' */
	struct route *routes;
	size_t nroutes;
	int have_email, have_sms;

	rd_kafka_t *rk;            /* consumer */
	rd_kafka_queue_t *cq;      /* its queue */
	rd_kafka_queue_t *commit_q;/* results of async commits, served at
				    * once (not behind the prefetched messages) */
	int rebalancing;           /* a commit was refused: the group is
				    * rebalancing, partitions paused until the
				    * rebalance callback comes */
	int64_t rebalancing_since; /* mono ms */
	int refusals_doubted;      /* REBALANCE_WAIT_MS passed with no
				    * rebalance: refused commits pause nothing
				    * until a rebalance callback or an
				    * accepted commit */
	unsigned rebalance_epoch;  /* rebalance callbacks so far */
	int cq_fd, cq_wfd;         /* pipe librdkafka writes on new events */
	rd_kafka_t *prod;          /* DLQ producer */
	rd_kafka_queue_t *pq;
	int pq_fd, pq_wfd;
	int dlq_closing;           /* late delivery reports are ignored */
	int done_fd;               /* eventfd the threads write */

	/* partitions, by id */
	struct part **parts;
	size_t nparts;
	size_t assigned_count;
	int ever_assigned;
	int awaiting_assign;       /* revoked, the next assignment not in */

	/* retry heap (min by due) */
	struct wtask **heap;
	size_t heap_n, heap_cap;

	/* counts (main thread) */
	size_t held;               /* every task in memory */
	size_t dlq_inflight;
	size_t hold_total_high;    /* bound on tasks held (see flow()) */
	size_t pub_held, pub_retry;/* copies for the metrics thread (atomic) */

	/* loop state */
	int stopping;              /* SIGTERM or exit-idle: draining */
	int64_t stop_deadline;
	int64_t last_activity;
	int64_t next_commit;
	int64_t last_flush;        /* of stdout (mono ms) */
	int consumer_more;         /* the consumer queue may hold more */
	int64_t full_since;        /* holding the bound since (mono ms), 0 */
	int flow_level;            /* 0, 1: hogs paused, 2: all paused */
	size_t taken;              /* messages taken since rate_t0 */
	int64_t rate_t0;
	double rate;               /* messages taken per second */
	int fatal;                 /* exit status of a fatal error, or 0 */
	volatile int brokers_down;
	int stdout_failed;

	/* the pool (pool.c) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wtask *rq_head, *rq_tail;   /* ready queue */
	size_t rq_len;
	struct wtask *done_head, *done_tail;
	size_t done_n;             /* on the done list */
	size_t idle_threads;
	size_t running;            /* tasks threads hold; under mu */
	int quit;
	pthread_t *threads;
	size_t nthreads;

	/* metrics (output.c) */
	ts_metrics *metrics;
	ts_metrics_server *metrics_srv;
	ts_metric *m_consumed, *m_delivered, *m_dead, *m_retries, *m_latency,
		*m_lag, *m_assigned;
	ts_series *s_consumed;
};

/* consumer.c */
ts_err w_consumer_open(struct worker *w, ts_detail *d);
void w_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
		 const char *buf);
void w_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
void w_consumer_close(struct worker *w);
int w_run(struct worker *w);

/* sched.c: chains, ready queue admission, retries */
void sched_add(struct worker *w, struct wtask *t);
void sched_finish(struct worker *w, struct wtask *t);
void sched_retry(struct worker *w, struct wtask *t, int64_t due);
int64_t sched_fire_retries(struct worker *w, int64_t now);
void sched_drop_part(struct worker *w, struct part *p, int all);
void sched_free_part_chains(struct part *p);
void heap_remove(struct worker *w, struct wtask *t);

/* task lifecycle (consumer.c) */
void task_make_ready(struct worker *w, struct wtask *t);
void task_finish(struct worker *w, struct wtask *t, int delivered);
void task_free(struct worker *w, struct wtask *t);
void task_started(struct worker *w, struct wtask *t);
void part_unlink(struct part *p, struct wtask *t);

/* pool.c */
ts_err pool_start(struct worker *w, size_t nthreads, ts_detail *d);
void pool_push(struct worker *w, struct wtask *t);
int pool_unqueue(struct worker *w, struct wtask *t);  /* w->mu held */
struct wtask *pool_take_done(struct worker *w);
size_t pool_running(struct worker *w);
void pool_stop(struct worker *w, int join);

/* dlq.c */
ts_err dlq_open(struct worker *w, ts_detail *d);
void dlq_send(struct worker *w, struct wtask *t);
void dlq_close(struct worker *w);
const char *errclass_name(enum errclass ec);

/* output.c */
ts_err out_metrics_init(struct worker *w, ts_detail *d);
void out_finished(struct worker *w, struct wtask *t, int delivered);
void out_retry(struct worker *w, struct wtask *t);
void out_stats(struct worker *w, const char *json, size_t len);
const char *metric_type(const struct wtask *t);

#endif
