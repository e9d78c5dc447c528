/* ts-submit - JSON tasks from files or stdin to Kafka.
 *
 * Reads a stream of JSON values (JSON Lines or concatenated objects),
 * validates each as a task (lib/task), produces the valid ones (acks=all,
 * idempotent) and prints one JSON line per delivery report as the reports
 * arrive. It exits only after every report (kcat's rule).
 *
 * This file reads and sets up; submit.h says how the parts fit. Memory is
 * bounded by what is in flight: the batches being encoded (a few MiB) and
 * one small record per unacknowledged task (its taskId, type, line and,
 * only with --rejects, its input).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonstream.h"
#include "kafka.h"
#include "log.h"
#include "submit.h"
#include "tool.h"

#define SYNOPSIS "ts-submit [options] [FILE...]"
/* The reader's bound on one input value: larger than the task limit so a
 * pretty-printed task that is within it once compact still fits, and a
 * too-large task is reported with its size (and copied to --rejects). */
#define STREAM_MIN_MAX ((size_t)16 << 20)

volatile sig_atomic_t submit_signals;

static char stdout_buf[64 << 10];

/* The first SIGINT/SIGTERM stops reading (ts_stop); the second also gives
 * up on what is queued (submit_drain). Only flags are set here. */
static void on_signal(int sig)
{
	(void)sig;
	ts_stop = 1;
	submit_signals = submit_signals + 1;
}

static void set_signals(void)
{
	struct sigaction sa;

	ts_tool_signals(); /* SIGPIPE ignored, SIGINT/SIGTERM set ts_stop */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- reading --------------------------------------------------------------- */

/* The input has nothing more for now (a slow pipe): hand over what was
 * read and wait until it is produced, so its results come out before we
 * block. */
static void on_input_wait(void *arg)
{
	submit *s = arg;

	if (s->cur)
		pipeline_submit(s, s->cur);
	s->cur = NULL;
	pipeline_flush(s);
}

/* Read one input to its end (or until a signal), handing values over in
 * batches. Returns 0, or -1 after an error that ends the run. */
static int read_input(submit *s, int input, int fd)
{
	ts_jsonstream js;
	ts_jsonvalue v;
	ts_detail d;
	int r = 0, rc = 0;
	int inline_enc = pipeline_inline(s);

	ts_jsonstream_init(&js, fd, s->max_task * 4 > STREAM_MIN_MAX
				    ? s->max_task * 4 : STREAM_MIN_MAX);
	js.stop = &ts_stop;
	js.on_wait = on_input_wait;
	js.wait_ctx = s;
	while (!ts_stop) {
		if (!s->cur && !(s->cur = pipeline_batch(s, input))) {
			rc = -1;
			break;
		}
		/* encoding in line: most values are parsed once, straight
		 * from the read buffer, not split first */
		if (inline_enc && ts_jsonstream_peek(&js, &v)) {
			size_t used = batch_add_prefix(s, s->cur, v.data, v.len,
						       v.line);

			if (used) {
				ts_jsonstream_take(&js, used);
				goto added;
			}
		}
		r = ts_jsonstream_next(&js, &v, &d);
		if (r == 1)
			break;
		if (r == TS_ERR_IO) {
			ts_log_error("%s:%ld: %s", s->names[input], js.line, d.msg);
			submit_note(s, TS_ERR_IO);
			break;
		}
		/* again: waiting for input, next() may have handed it over */
		if (!s->cur && !(s->cur = pipeline_batch(s, input))) {
			rc = -1;
			break;
		}
		if (batch_add(s, s->cur, v.data, v.len, v.line, (ts_err)r, &d)) {
			rc = -1;
			break;
		}
added:
		if (batch_full(s->cur)) {
			pipeline_submit(s, s->cur);
			s->cur = NULL;
		}
	}
	if (s->cur)
		pipeline_submit(s, s->cur);
	s->cur = NULL;
	if (rc < 0) {
		ts_log_error("%s:%ld: out of memory", s->names[input], js.line);
		submit_note(s, TS_ERR_NOMEM);
	} else if ((r != 1 || js.stopped) && ts_stop && !s->stdout_failed) {
		ts_log_warn("%s:%ld: stopped by a signal; input from here on was not read",
			    s->names[input], js.started ? js.value_line : js.line);
	}
	ts_jsonstream_free(&js);
	return rc;
}

/* ---- set-up ------------------------------------------------------------------- */

static int setup_failed(ts_err err, const ts_detail *d)
{
	ts_log_error("%s", d->msg[0] ? d->msg : ts_strerror(err));
	return ts_err_exit(err);
}

/* The topic's partition count before the first task is encoded, so
 * that offer_id steers the ids from the start: waits at most
 * METADATA_WAIT_MS for the broker (one round trip when it is there).
 * Without an answer the count comes with the first records placed. */
#define METADATA_WAIT_MS 1000

static void learn_partitions(submit *s)
{
	const struct rd_kafka_metadata *md = NULL;

	if (rd_kafka_metadata(s->rk, 0, s->rkt, &md, METADATA_WAIT_MS) ==
		    RD_KAFKA_RESP_ERR_NO_ERROR &&
	    md->topic_cnt == 1 && !md->topics[0].err &&
	    md->topics[0].partition_cnt > 0)
		atomic_store(&s->partition_cnt, md->topics[0].partition_cnt);
	if (md)
		rd_kafka_metadata_destroy(md);
}

static int open_kafka(submit *s)
{
	ts_detail d;
	ts_err err;

	/* librdkafka queues up to 100,000 messages by default; half of that
	 * keeps the peak memory of a run against a slow broker well under
	 * 64 MB and costs no throughput (-X overrides it). */
	static const char *const extra[] = {
		"queue.buffering.max.messages", "50000",
		NULL,
	};

	err = ts_kafka_producer(s->cfg, extra, submit_on_delivery, s, &s->rk, &d);
	if (err)
		return setup_failed(err, &d);
	/* With murmur2 placing keys (the default), submit_partitioner
	 * learns the partition count for offer_id (pipeline.c) and places
	 * every record as that partitioner does. */
	rd_kafka_topic_conf_t *tc = NULL;
	int steer = ts_kafka_keys_by_murmur2(s->rk);

	if (steer && (tc = rd_kafka_default_topic_conf_dup(s->rk))) {
		rd_kafka_topic_conf_set_partitioner_cb(tc, submit_partitioner);
		rd_kafka_topic_conf_set_opaque(tc, s);
	}
	s->rkt = rd_kafka_topic_new(s->rk, s->cfg->topic, tc);
	if (!s->rkt) {
		ts_fail(&d, TS_ERR_CONFIG, NULL, "--topic %s: %s", s->cfg->topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		return setup_failed(TS_ERR_CONFIG, &d);
	}
	if (steer)
		learn_partitions(s);
	s->topic = rd_kafka_topic_name(s->rkt);
	s->topic_len = strlen(s->topic);
	if (s->topic_len > 249) {
		ts_log_error("--topic: longer than Kafka's 249 characters");
		return ts_err_exit(TS_ERR_CONFIG);
	}
	if (submit_poller_start(s) != TS_OK) {
		ts_log_error("cannot start the delivery report thread");
		return ts_err_exit(TS_ERR_INTERNAL);
	}
	return -1;
}

/* Open every FILE first, so a typo fails the run before anything is sent. */
static int open_inputs(submit *s, int *fds)
{
	int i;

	if (s->cfg->argc == 0) {
		s->names[0] = "stdin";
		fds[0] = STDIN_FILENO;
		s->ninputs = 1;
		return -1;
	}
	for (i = 0; i < s->cfg->argc; i++) {
		const char *path = s->cfg->argv[i];

		if (strcmp(path, "-") == 0) {
			s->names[i] = "stdin";
			fds[i] = STDIN_FILENO;
		} else if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			ts_log_error("%s: %s", path, strerror(errno));
			s->ninputs = i;
			return ts_err_exit(TS_ERR_USAGE);
		} else {
			s->names[i] = path;
		}
		s->ninputs = i + 1;
	}
	return -1;
}

static int check_options(submit *s)
{
	ts_config *cfg = s->cfg;
	const char *tp = getenv("TRACEPARENT");

	if (cfg->type && !ts_valid_task_type(cfg->type)) {
		ts_log_error("--type %s: must match [a-z][a-z0-9_.-]{0,63}", cfg->type);
		return ts_err_exit(TS_ERR_USAGE);
	}
	s->topts.force_type = cfg->type;
	if (tp && *tp) {
		if (!ts_valid_traceparent(tp)) {
			ts_log_error("TRACEPARENT: not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)");
			return ts_err_exit(TS_ERR_CONFIG);
		}
		s->topts.default_traceparent = tp;
	}
	if (cfg->max_task < 1) {
		ts_log_error("--max-task: must be at least 1 byte");
		return ts_err_exit(TS_ERR_CONFIG);
	}
	s->max_task = (size_t)cfg->max_task;
	if (cfg->rejects) {
		s->rejects_fd = open(cfg->rejects,
				     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
		if (s->rejects_fd < 0) {
			ts_log_error("--rejects %s: %s", cfg->rejects, strerror(errno));
			return ts_err_exit(TS_ERR_CONFIG);
		}
	}
	return -1;
}

static int run(submit *s)
{
	int *fds = calloc((size_t)s->cfg->argc + 1, sizeof *fds);
	int rc, i;

	s->names = calloc((size_t)s->cfg->argc + 1, sizeof *s->names);
	if (!fds || !s->names) {
		free(fds);
		ts_log_error("out of memory");
		return ts_err_exit(TS_ERR_NOMEM);
	}
	if ((rc = check_options(s)) >= 0 || (rc = open_inputs(s, fds)) >= 0)
		goto out;
	/* Result lines are flushed after every poll that served reports; in
	 * between, a 64 KiB buffer rather than 4 KiB (a write(2) per 30 lines
	 * was 10,000 system calls for 300,000 tasks). A terminal keeps its
	 * line buffering. (glibc ignores the size unless given the buffer.) */
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
	if (!s->cfg->dry_run && (rc = open_kafka(s)) >= 0)
		goto out;
	if ((rc = pipeline_start(s)) >= 0)
		goto out;
	for (i = 0; i < s->ninputs && !ts_stop; i++)
		if (read_input(s, i, fds[i]) < 0)
			break;
	pipeline_flush(s); /* what was read is produced, even after a signal */
	if (s->rk)
		submit_drain(s);
	else
		submit_flush_stdout(s);
	ts_log_info("%ld delivered, %ld not delivered, %ld invalid",
		    atomic_load(&s->delivered), atomic_load(&s->failed),
		    atomic_load(&s->invalid));
	rc = ts_err_exit(s->worst);
out:
	for (i = 0; i < s->ninputs; i++)
		if (fds[i] != STDIN_FILENO)
			close(fds[i]);
	free(fds);
	return rc;
}

int main(int argc, char **argv)
{
	ts_config cfg;
	submit s;
	int rc;

	/* Keep freed memory for reuse. Every record's memory (our batch
	 * entry, librdkafka's copy and request buffers) is freed within
	 * milliseconds, at over a million records a second; by default glibc
	 * gives a heap's free top back to the kernel past 128 KiB, and the
	 * next records fault the same pages in again. With 32 MiB kept:
	 * 300,000 tasks took about 3,300 page faults against 11,000, and 10%
	 * less CPU. Pages never touched are not resident: peak RSS is the
	 * same. */
	mallopt(M_TOP_PAD, 32 << 20);
	memset(&s, 0, sizeof s);
	s.rejects_fd = -1;
	s.cfg = &cfg;
	pthread_mutex_init(&s.lock, NULL);
	rc = ts_tool_start(&cfg, TS_TOOL_SUBMIT, "ts-submit", SYNOPSIS, argc,
			   argv, stdout);
	if (rc < 0) {
		set_signals();
		rc = run(&s);
	}
	pipeline_stop(&s);
	submit_poller_stop(&s); /* an early exit */
	if (s.rkt)
		rd_kafka_topic_destroy(s.rkt);
	if (s.rk)
		rd_kafka_destroy(s.rk);
	if (s.rejects_fd >= 0)
		close(s.rejects_fd);
	free(s.names);
	ts_config_free(&cfg);
	return rc;
}
