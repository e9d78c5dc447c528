/* submit.h - ts-submit's parts: reading (main.c), validating and encoding
 * in batches on worker threads (pipeline.c), producing and delivery
 * reports (deliver.c).
 *
 * Data flow: the main thread splits the input into values and packs them
 * into batches; workers turn each batch into envelopes (or errors); the
 * main thread takes the batches back in input order and produces them; a
 * poller thread serves the delivery reports. Order is kept: tasks are
 * produced, and their errors reported, in the order they were read.
 * Without workers (two CPUs or fewer) the main thread encodes each value
 * as it reads it, most of them straight from the read buffer in one pass
 * (ts_jsonstream_peek, ts_task_encode_prefix): splitting first, copying
 * and then parsing cost three passes over every byte.
 */
#ifndef TS_SUBMIT_H
#define TS_SUBMIT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"
#include "task.h"
#include "util.h"

/* A batch closes at BATCH_VALUES values (or pipeline.c's byte bound). */
#define BATCH_VALUES 256

/* The in-flight records of one batch's tasks share one allocation (a
 * malloc and a free per task were a tenth of the main thread's time); it
 * is freed when the last of them is. */
typedef struct slab {
	atomic_int refs;          /* records not yet freed, +1 while filled */
	size_t used, size;        /* bytes of data */
	char data[];
} slab;

/* What a delivery report needs to know about its task: the one piece of
 * per-task state kept while it is in flight, freed when the report comes. */
typedef struct inflight {
	slab *slab;           /* NULL: a malloc of its own */
	long line;
	int input;            /* index into submit.names */
	unsigned char id_len;
	unsigned char type_len;
	size_t raw_len;       /* 0 unless --rejects */
	char data[];          /* taskId NUL taskType NUL [raw input] */
} inflight;

/* One encoding context per thread that encodes. */
typedef struct encoder {
	char next_id[37];     /* offered as taskId to the next task */
	int32_t next_part;    /* its partition among next_cnt (ts_kafka_new_id) */
	int32_t next_cnt;     /* 0: not known */
	ts_task_opts opts;
	ts_steer steer;       /* the run its generated ids are in */
} encoder;

/* One input value and what became of it. */
typedef struct entry {
	long line;
	size_t raw_off, raw_len;  /* the input, in batch.raw; raw_len 0: not
				   * kept (encoded in line, no --rejects) */
	ts_err err;               /* TS_OK: encoded */
	size_t out_off;           /* in batch.out: the envelope then "id\0type\0
				   * [key\0][traceparent\0]"; or "field\0msg\0" */
	size_t env_len;
	unsigned char id_len, type_len, has_key, has_tp;
	uint16_t key_len;
	int32_t id_part, id_cnt;  /* a generated taskId's partition among
				   * id_cnt (0: not known, or not generated) */
} entry;

typedef struct batch {
	struct batch *next;       /* in pipeline.queue (input order) */
	struct batch *next_todo;  /* in pipeline.todo */
	int input;
	int done;                 /* encoded (set under pipeline.lock) */
	ts_buf raw;
	ts_buf out;
	size_t in_bytes;          /* input bytes of its values, kept or not */
	char created_at[40];      /* in-line encoding: the batch's createdAt */
	entry *e;
	int n, cap;
} batch;

typedef struct pipeline {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* a batch to encode, or stopping */
	pthread_cond_t done;      /* a batch was encoded */
	batch *todo, *todo_tail;  /* for the workers */
	batch *queue, *queue_tail; /* every batch handed over, in input order */
	batch *spare;             /* recycled */
	size_t bytes;             /* input bytes handed over, not delivered */
	int batches;
	int started;
	int stopping;
	pthread_t *workers;
	encoder *encoders;
	int nworkers;
	encoder inline_enc;       /* when there are no workers */
} pipeline;

typedef struct submit {
	ts_config *cfg;
	ts_task_opts topts;       /* --type, TRACEPARENT */
	const char **names;       /* input names as printed: "stdin" or the path */
	int ninputs;
	size_t max_task;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	const char *topic;
	size_t topic_len;
	int rejects_fd;           /* -1 without --rejects */
	atomic_int partition_cnt; /* of the topic, once librdkafka knows it
				   * (0 before, and without the default
				   * partitioner: no steering, and records
				   * placed by librdkafka: run_partition) */
	/* the tasks of a batch gathered to be produced with one call */
	rd_kafka_message_t run[BATCH_VALUES];
	const entry *run_e[BATCH_VALUES];
	int run_n;
	slab *slab;               /* for the in-flight records of that batch */
	pipeline pipe;
	batch *cur;               /* the batch being filled by the reader */

	pthread_t poller;
	int poller_running;
	atomic_int poller_stop;
	pthread_mutex_t poller_lock; /* with poller_wake: its naps end at stop */
	pthread_cond_t poller_wake;
	atomic_llong main_polled;  /* ts_mono_ms() of the main thread's last poll */

	pthread_mutex_t lock;     /* worst, the rejects file, stdout_failed */
	ts_err worst;
	int stdout_failed;
	atomic_long delivered, failed, invalid;
} submit;

/* Set by the signal handler: SIGINT/SIGTERM seen so far. */
extern volatile sig_atomic_t submit_signals;

/* deliver.c */
void submit_note(submit *s, ts_err err);
void submit_reject(submit *s, int input, long line, const char *field,
		   const char *msg, const char *raw, size_t len);
void submit_stdout_error(submit *s);
void submit_flush_stdout(submit *s);
void submit_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque);
ts_err submit_poller_start(submit *s);
void submit_poller_stop(submit *s);
void submit_poll(submit *s);
int32_t submit_partitioner(const rd_kafka_topic_t *rkt, const void *key,
			   size_t keylen, int32_t partition_cnt,
			   void *rkt_opaque, void *msg_opaque);
void submit_deliver(submit *s, batch *b);
void submit_drain(submit *s);

/* pipeline.c */
int pipeline_start(submit *s);
batch *pipeline_batch(submit *s, int input);
ts_err batch_add(submit *s, batch *b, const char *data, size_t len,
		 long line, ts_err err, const ts_detail *d);
size_t batch_add_prefix(submit *s, batch *b, const char *data, size_t len,
			long line);
int pipeline_inline(const submit *s);
int batch_full(const batch *b);
void pipeline_submit(submit *s, batch *b);
void pipeline_flush(submit *s);
void pipeline_stop(submit *s);

#endif
