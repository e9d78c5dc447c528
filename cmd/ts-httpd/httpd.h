/* httpd.h - what the parts of ts-httpd share.
 *
 * One event thread (server.c's loop) runs libmicrohttpd in its external
 * epoll mode and serves Kafka's delivery reports too: it waits on
 * libmicrohttpd's epoll descriptor and on an eventfd that librdkafka
 * signals when reports are queued. A request that must wait (for Kafka's
 * acknowledgement, or for a delivery in the notification pool) is
 * suspended: it holds no thread while it waits. Whoever finishes it (the
 * event thread on a delivery report or a timeout, a pool thread after a
 * send) records the outcome under httpd.lock and resumes the connection;
 * libmicrohttpd then calls the handler again on the event thread, which
 * queues the answer. An acknowledgement is thus answered without a
 * hand-over between threads.
 *
 *   decide.c  what to do with a request and the text of every answer,
 *             from (method, URL, headers, body, options) alone
 *   server.c  the event loop, the libmicrohttpd callbacks, bodies, access
 *             log, metrics
 *   tasks.c   POST /tasks: produce, delivery reports, timeouts
 *   notify.c  POST /api/email/send and /api/sms/send: the delivery pool
 *   main.c    options, start-up, health checks, graceful shutdown
 */
#ifndef TS_HTTPD_H
#define TS_HTTPD_H

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "decide.h"
#include "err.h"
#include "metrics.h"
#include "task.h"
#include "transport.h"
#include "util.h"

/* Monotonic microseconds, for latencies below a millisecond. */
static inline int64_t httpd_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Where a request is. */
enum phase {
	PHASE_READING,    /* headers accepted, body arriving */
	PHASE_WAITING,    /* suspended until done */
	PHASE_ANSWERED,   /* a response is queued */
};

typedef struct request request;

typedef struct httpd httpd;

struct request {
	httpd *h;
	struct MHD_Connection *conn;
	enum phase phase;
	enum httpd_next next;     /* what the headers said */
	httpd_head head;
	char method[8];
	char *path;               /* for the access log (escaped on output) */
	int64_t start_us;         /* monotonic */
	ts_buf body;
	int too_large;            /* body went over --max-body */
	size_t drained;           /* bytes dropped since */

	/* guarded by httpd.lock */
	int refs;                 /* MHD's, one per message in Kafka, one per pool job */
	int suspended;
	int done;                 /* outcome known: answer on the next call */
	int pending;              /* items still waiting for a report */
	int64_t deadline_ms;      /* monotonic; when waiting for Kafka */
	request *wprev, *wnext;   /* the wait list (oldest first) */
	int in_wait;
	request *pnext;           /* the produce list (event thread only) */

	httpd_plan plan;          /* POST /tasks: items; notifications: payload */
	ts_send_result sent;      /* notifications: the outcome */

	/* for the access log */
	unsigned status;
	size_t bytes;
	int aborted;
};

/* A pool job queue for the notification endpoints. */
typedef struct notify_pool {
	pthread_t *threads;
	int nthreads;
	int started;
	ts_transport **email;     /* one per thread, or NULL entries */
	ts_transport **sms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	request **queue;          /* ring */
	size_t qcap, qhead, qlen;
	int stop;
} notify_pool;

struct httpd {
	ts_config *cfg;
	httpd_rules rules;        /* what decide.c needs of the options */
	httpd_steer steer;        /* rules.steer when steer_on */
	int steer_on;             /* keys placed by murmur2 (the default) */
	struct MHD_Daemon *daemon;
	int listen_fd;
	int port;
	char *token;              /* --token-file content, or NULL */
	size_t token_len;
	char *tls_cert, *tls_key; /* PEM in memory */
	size_t tls_key_len;

	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	const char *topic;
	rd_kafka_queue_t *mainq;  /* delivery reports */
	int kafka_fd;             /* eventfd: reports are waiting */
	atomic_llong kafka_ok_ms; /* monotonic time of the last good metadata
				   * request; 0: never */
	atomic_int kafka_up;      /* the last metadata request succeeded */
	atomic_llong kafka_ack_ms; /* monotonic time of the last ack; 0: none */
	int retry_after_s;        /* Retry-After for 503 from Kafka */
	atomic_int fatal;         /* the producer hit a fatal error */

	pthread_mutex_t lock;     /* requests' shared state, the wait list */
	request *whead, *wtail;
	/* Requests whose records go to librdkafka after this pass over the
	 * connections (tasks_flush); event thread only. */
	request *phead, **ptail;

	atomic_int active;        /* requests begun and not completed */
	atomic_int stopping;      /* SIGTERM: Connection: close, healthz 503 */

	notify_pool pool;

	pthread_t loop;           /* the event thread */
	int loop_running;
	int loop_ep;              /* its epoll: libmicrohttpd's, kafka_fd, wake_fd */
	int wake_fd;              /* eventfd: look at the flags below */
	atomic_int loop_stop;
	atomic_int quiesce_req, quiesced;

	ts_metrics *metrics;
	ts_metric *m_requests;    /* route, code */
	ts_metric *m_duration;    /* route */
	ts_metric *m_inflight;
	ts_metric *m_produce;     /* produce latency */
	ts_metric *m_tasks;       /* result */
	ts_metric *m_notify;      /* channel, result */
	ts_metric *m_kafka_up;
	ts_series *s_inflight;
	ts_series *s_produce;
	ts_series *s_kafka_up;
	ts_series *s_tasks[RESULT__COUNT];
	ts_series *s_requests[ROUTE__COUNT][13]; /* by route and known code */
	ts_series *s_duration[ROUTE__COUNT];

	pthread_mutex_t log_lock; /* the access log buffer */
	ts_buf log;
	int64_t log_since_ms;     /* when its oldest line was added */
	int log_failed;
};

/* ---- server.c ---- */

/* Start the HTTP daemon on h->listen_fd. Errors: TS_ERR_CONFIG. */
ts_err httpd_server_start(httpd *h, ts_detail *d);
/* Stop accepting new connections (closes the listening socket). */
void httpd_server_quiesce(httpd *h);
/* Stop the event thread and the daemon. */
void httpd_server_stop(httpd *h);
/* Resume a connection from another thread than the event thread, and wake
 * that thread to answer it (in external mode libmicrohttpd does not). */
void httpd_resume_from(httpd *h, struct MHD_Connection *conn);
/* Write out the buffered access log: when force, or when its oldest line
 * is 100 ms old. */
void httpd_log_flush(httpd *h, int force);
/* Register the metrics of every part. */
ts_err httpd_metrics_init(httpd *h, ts_detail *d);

/* Queue a reply (its body goes to libmicrohttpd) and return MHD's result. */
enum MHD_Result httpd_send(request *r, httpd_reply *reply);
/* Queue the reply of a decision; HTTPD_FAIL drops the connection. */
enum MHD_Result httpd_send_decided(request *r, enum httpd_next next,
				   httpd_reply *reply);

/* Drop one reference; frees the request at zero. Call with h->lock held. */
void httpd_request_unref(request *r);
/* Mark done, take it off the wait list; returns the connection to resume
 * (or NULL when it is not suspended). Call with h->lock held. */
struct MHD_Connection *httpd_request_finish(request *r);

/* ---- tasks.c ---- */

ts_err tasks_start(httpd *h, ts_detail *d);
/* Suspend the connection until Kafka acknowledged the ready items of
 * r->plan (HTTPD_PRODUCE) or they timed out; tasks_flush produces them. */
enum MHD_Result tasks_produce(request *r);
/* Hand the records of every request tasks_produce took since the last
 * call to librdkafka (event thread, after each pass of libmicrohttpd). */
void tasks_flush(httpd *h);
/* Answer a finished request (after resume). */
enum MHD_Result tasks_answer(request *r);
/* Answer what httpd_decide_body decided without producing (counted in
 * the task metrics). */
enum MHD_Result tasks_answer_now(request *r, enum httpd_next next,
				 httpd_reply *reply);
/* Serve the delivery reports that are in (event thread; when reports is
 * set: kafka_fd was signalled) and time out late requests; returns the ms
 * until the next deadline (at most 100). */
int tasks_serve(httpd *h, int reports);
/* Wait up to timeout_ms for what is queued to be acknowledged (served
 * by the event thread while it runs, here otherwise), then give up on
 * the rest. */
void tasks_stop(httpd *h, int timeout_ms);
/* Is Kafka reachable? A recent acknowledgement, else one metadata request;
 * updates kafka_ok_ms and kafka_up. */
void tasks_check_kafka(httpd *h, int timeout_ms);

/* ---- notify.c ---- */

ts_err notify_start(httpd *h, int nthreads, ts_detail *d);
/* Deliver r->plan.payload (HTTPD_DELIVER) on a pool thread; the
 * connection waits suspended. */
enum MHD_Result notify_deliver(request *r);
enum MHD_Result notify_answer(request *r);
void notify_stop(httpd *h);

#endif
