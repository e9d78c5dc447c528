/* ts-submit - JSON tasks from files or stdin to Kafka.
 *
 * Reads a stream of JSON values (JSON Lines or concatenated objects),
 * validates each as a task (lib/task), produces the valid ones (acks=all,
 * idempotent) and prints one JSON line per delivery report as the reports
 * arrive. It exits only after every report (kcat's rule).
 *
 * Threads: the main thread reads, validates and produces; a poller thread
 * serves delivery reports while the main thread may be blocked on input,
 * so results appear as they arrive even from a slow pipe. Memory is bounded
 * by what is in flight: one small record per unacknowledged task (its
 * taskId, type, line and, only with --rejects, its input).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"
#include "jsonstream.h"
#include "kafka.h"
#include "log.h"
#include "task.h"
#include "tool.h"
#include "util.h"

#define SYNOPSIS "ts-submit [options] [FILE...]"
/* The reader's bound on one input value: larger than the task limit so a
 * pretty-printed task that is within it after compaction still fits, and a
 * too-large task is reported with its size (and copied to --rejects). */
#define STREAM_MIN_MAX ((size_t)16 << 20)

/* What a delivery report needs to know about its task: the one piece of
 * per-task state, freed when the report arrives. */
typedef struct inflight {
	long line;
	int input;            /* index into submit.names */
	unsigned char id_len;
	unsigned char type_len;
	size_t raw_len;       /* 0 unless --rejects */
	char data[];          /* taskId NUL taskType NUL [raw input] */
} inflight;

/* UUID v4 task ids from kernel randomness fetched 4 KiB at a time: the
 * same ids as ts_uuid4(), without a system call and a printf per task. */
typedef struct idpool {
	unsigned char bytes[4096];
	size_t used;
} idpool;

typedef struct submit {
	ts_config *cfg;
	ts_task_opts topts;
	const char **names;   /* input names as printed: "stdin" or the path */
	int ninputs;
	size_t max_task;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	const char *topic;
	int rejects_fd;       /* -1 without --rejects */
	idpool ids;           /* random bytes for new task ids */
	char next_id[37];     /* offered as the taskId of the next task */
	ts_buf env;           /* the envelope being produced (reused) */

	pthread_t poller;
	int poller_running;
	atomic_int poller_stop;

	pthread_mutex_t lock; /* worst, rejects file, stdout error */
	ts_err worst;
	int stdout_failed;
	atomic_long delivered, failed, invalid, produced;
} submit;

/* Set by our signal handler: how many SIGINT/SIGTERM arrived. The first
 * stops reading (ts_stop); the second also gives up on what is queued. */
static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
	(void)sig;
	ts_stop = 1;
	signals_seen = signals_seen + 1;
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

static void note_outcome(submit *s, ts_err err)
{
	pthread_mutex_lock(&s->lock);
	s->worst = ts_err_worst(s->worst, err);
	pthread_mutex_unlock(&s->lock);
}

/* ---- rejects ------------------------------------------------------------ */

/* Append one input to --rejects as one line: the bytes as given, with any
 * CR or LF (only possible between tokens of a valid value, or in an
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
			note_outcome(s, TS_ERR_NOMEM);
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
static void reject_input(submit *s, int input, long line, const ts_detail *d,
			 const char *raw, size_t len)
{
	if (d->field[0])
		ts_log_error("%s:%ld: %s: %s", s->names[input], line, d->field,
			     d->msg);
	else
		ts_log_error("%s:%ld: %s", s->names[input], line, d->msg);
	atomic_fetch_add(&s->invalid, 1);
	note_outcome(s, TS_ERR_DATA);
	write_reject(s, raw, len);
}

/* ---- delivery reports ---------------------------------------------------- */

static void stdout_error(submit *s)
{
	pthread_mutex_lock(&s->lock);
	if (!s->stdout_failed) {
		s->stdout_failed = 1;
		ts_log_error("stdout: %s; reading no more input",
			     strerror(errno ? errno : EIO));
		s->worst = ts_err_worst(s->worst, TS_ERR_IO);
		ts_stop = 1;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Decimal digits of v, written backwards ending at end; returns the start. */
static char *put_dec(char *end, int64_t v)
{
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do
		*--end = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--end = '-';
	return end;
}

static char *put_str(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

/* One result line, formatted by hand: a printf per task was a tenth of the
 * run. taskId, taskType and the topic name are all from JSON-safe alphabets
 * (validated), so they need no escaping. */
static void print_result(submit *s, const inflight *f,
			 const rd_kafka_message_t *m)
{
	char line[TS_TASK_ID_MAX + TS_TASK_TYPE_MAX + 512], num[24], *o = line;
	const char *type = f->data + f->id_len + 1;
	char *d;
	size_t topic_len = strlen(s->topic);

	if (topic_len > 249)
		topic_len = 249; /* Kafka's limit; keeps line[] big enough */
	o = put_str(o, "{\"taskId\":\"", 11);
	o = put_str(o, f->data, f->id_len);
	o = put_str(o, "\",\"taskType\":\"", 14);
	o = put_str(o, type, f->type_len);
	o = put_str(o, "\",\"topic\":\"", 11);
	o = put_str(o, s->topic, topic_len);
	o = put_str(o, "\",\"partition\":", 14);
	d = put_dec(num + sizeof num, m->partition);
	o = put_str(o, d, (size_t)(num + sizeof num - d));
	o = put_str(o, ",\"offset\":", 10);
	d = put_dec(num + sizeof num, m->offset);
	o = put_str(o, d, (size_t)(num + sizeof num - d));
	o = put_str(o, ",\"line\":", 8);
	d = put_dec(num + sizeof num, f->line);
	o = put_str(o, d, (size_t)(num + sizeof num - d));
	o = put_str(o, "}\n", 2);
	if (fwrite(line, 1, (size_t)(o - line), stdout) != (size_t)(o - line))
		stdout_error(s);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
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
		free(f);
		return;
	}
	class = ts_kafka_classify(m->err);
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		class = TS_ERR_TRANSIENT;
	ts_log_error("%s:%ld: task %s not delivered: %s", s->names[f->input],
		     f->line, f->data, rd_kafka_err2str(m->err));
	atomic_fetch_add(&s->failed, 1);
	note_outcome(s, class);
	write_reject(s, f->data + f->id_len + 1 + f->type_len + 1, f->raw_len);
	free(f);
}

static void flush_stdout(submit *s)
{
	if (fflush(stdout) != 0)
		stdout_error(s);
}

/* Serve reports while the main thread reads (it may block on a pipe). */
static void *poller_main(void *arg)
{
	submit *s = arg;

	while (!atomic_load(&s->poller_stop))
		if (rd_kafka_poll(s->rk, 100) > 0)
			flush_stdout(s);
	return NULL;
}

/* ---- task ids -------------------------------------------------------------- */

static ts_err next_uuid(idpool *p, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char *r;
	char *o = out;

	if (p->used == 0 || p->used + 16 > sizeof p->bytes) {
		if (ts_random(p->bytes, sizeof p->bytes) != TS_OK)
			return TS_ERR_INTERNAL;
		p->used = 0;
	}
	r = p->bytes + p->used;
	p->used += 16;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[r[i] >> 4];
		*o++ = hex[r[i] & 0xf];
	}
	*o = '\0';
	explicit_bzero(r, 16);
	return TS_OK;
}

/* ---- producing ----------------------------------------------------------- */

static inflight *make_inflight(const submit *s, const ts_task *t, int input,
			       long line, const char *raw, size_t raw_len)
{
	size_t id_len = strlen(t->task_id), type_len = strlen(t->task_type);
	inflight *f;

	if (s->rejects_fd < 0)
		raw_len = 0;
	f = malloc(sizeof *f + id_len + 1 + type_len + 1 + raw_len);
	if (!f)
		return NULL;
	f->line = line;
	f->input = input;
	f->id_len = (unsigned char)id_len;
	f->type_len = (unsigned char)type_len;
	f->raw_len = raw_len;
	memcpy(f->data, t->task_id, id_len + 1);
	memcpy(f->data + id_len + 1, t->task_type, type_len + 1);
	if (raw_len)
		memcpy(f->data + id_len + 1 + type_len + 1, raw, raw_len);
	return f;
}

/* Hand one envelope to librdkafka, waiting for room in its queue.
 * Returns the error of the produce call (0 when queued). */
static rd_kafka_resp_err_t produce(submit *s, const ts_task *t, inflight *f)
{
	const char *key = ts_task_record_key(t);
	rd_kafka_vu_t vu[6];
	size_t n = 0;
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;

	vu[n].vtype = RD_KAFKA_VTYPE_RKT;
	vu[n++].u.rkt = s->rkt;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = s->env.data;
	vu[n++].u.mem.size = s->env.len;
	vu[n].vtype = RD_KAFKA_VTYPE_KEY;
	vu[n].u.mem.ptr = (void *)key;
	vu[n++].u.mem.size = strlen(key);
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = f;
	if (t->traceparent) {
		vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[n].u.header.name = "traceparent";
		vu[n].u.header.val = t->traceparent;
		vu[n++].u.header.size = (ssize_t)strlen(t->traceparent);
	}
	for (;;) {
		error = rd_kafka_produceva(s->rk, vu, n);
		if (!error)
			return RD_KAFKA_RESP_ERR_NO_ERROR;
		err = rd_kafka_error_code(error);
		rd_kafka_error_destroy(error);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return err;
		/* Full: serve reports here too until there is room. */
		if (rd_kafka_poll(s->rk, 50) > 0)
			flush_stdout(s);
	}
}

/* One input value: validate, then produce it (or print it, --dry-run). */
static void submit_value(submit *s, int input, const ts_jsonvalue *v)
{
	ts_task t;
	ts_detail d;
	ts_err err;
	inflight *f;
	rd_kafka_resp_err_t kerr;

	/* A fresh id for an input without one; ts_task_parse ignores it when
	 * the input has its own. Only used ids are replaced. */
	if (!s->next_id[0] && next_uuid(&s->ids, s->next_id) != TS_OK) {
		ts_log_error("no randomness for a task id");
		note_outcome(s, TS_ERR_INTERNAL);
		return;
	}
	s->topts.default_id = s->next_id;
	ts_buf_reset(&s->env);
	err = ts_task_encode(v->data, v->len, &s->topts, &t, &s->env, &d);
	if (err == TS_OK && strcmp(t.task_id, s->next_id) == 0)
		s->next_id[0] = '\0';
	if (err == TS_ERR_DATA) {
		reject_input(s, input, v->line, &d, v->data, v->len);
		return;
	}
	if (err) {
		ts_log_error("%s:%ld: %s", s->names[input], v->line,
			     d.msg[0] ? d.msg : ts_strerror(err));
		note_outcome(s, err);
		return;
	}
	if (s->env.len > s->max_task) {
		ts_fail(&d, TS_ERR_DATA, NULL,
			"task is %zu bytes, over the %zu-byte limit (--max-task)",
			s->env.len, s->max_task);
		reject_input(s, input, v->line, &d, v->data, v->len);
		goto out;
	}
	if (s->cfg->dry_run) {
		s->env.data[s->env.len] = '\n';
		if (fwrite(s->env.data, 1, s->env.len + 1, stdout) != s->env.len + 1)
			stdout_error(s);
		goto out;
	}
	if (!(f = make_inflight(s, &t, input, v->line, v->data, v->len))) {
		err = TS_ERR_NOMEM;
		goto fail;
	}
	kerr = produce(s, &t, f);
	if (kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		ts_fail(&d, TS_ERR_DATA, NULL,
			"task is %zu bytes with its key and headers, over the producer's message.max.bytes",
			s->env.len);
		reject_input(s, input, v->line, &d, v->data, v->len);
		free(f);
	} else if (kerr) {
		ts_log_error("%s:%ld: task %s not produced: %s", s->names[input],
			     v->line, t.task_id, rd_kafka_err2str(kerr));
		atomic_fetch_add(&s->failed, 1);
		note_outcome(s, ts_kafka_classify(kerr));
		write_reject(s, v->data, v->len);
		free(f);
	} else {
		atomic_fetch_add(&s->produced, 1);
	}
	goto out;
fail:
	ts_log_error("%s:%ld: %s", s->names[input], v->line, ts_strerror(err));
	note_outcome(s, err);
out:
	ts_task_free(&t);
}

/* Read one input to its end (or until a signal). */
static void read_input(submit *s, int input, int fd)
{
	ts_jsonstream js;
	ts_jsonvalue v;
	ts_detail d;
	int r = 0;

	ts_jsonstream_init(&js, fd, s->max_task * 4 > STREAM_MIN_MAX
				    ? s->max_task * 4 : STREAM_MIN_MAX);
	js.stop = &ts_stop;
	while (!ts_stop && (r = ts_jsonstream_next(&js, &v, &d)) != 1) {
		if (r == TS_ERR_IO) {
			ts_log_error("%s:%ld: %s", s->names[input], js.line, d.msg);
			note_outcome(s, TS_ERR_IO);
			break;
		}
		if (r == TS_ERR_DATA)
			reject_input(s, input, v.line, &d, v.data, v.len);
		else
			submit_value(s, input, &v);
	}
	if ((r != 1 || js.stopped) && ts_stop && !s->stdout_failed)
		ts_log_warn("%s:%ld: stopped by a signal; input from here on was not read",
			    s->names[input], js.started ? js.value_line : js.line);
	ts_jsonstream_free(&js);
}

/* ---- set-up and the end --------------------------------------------------- */

/* Exit status of a failed set-up step. */
static int setup_failed(ts_err err, const ts_detail *d)
{
	ts_log_error("%s", d->msg[0] ? d->msg : ts_strerror(err));
	return ts_err_exit(err);
}

static int open_kafka(submit *s)
{
	ts_detail d;
	ts_err err;

	err = ts_kafka_producer(s->cfg, NULL, on_delivery, s, &s->rk, &d);
	if (err)
		return setup_failed(err, &d);
	s->rkt = rd_kafka_topic_new(s->rk, s->cfg->topic, NULL);
	if (!s->rkt) {
		ts_fail(&d, TS_ERR_CONFIG, NULL, "--topic %s: %s", s->cfg->topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		return setup_failed(TS_ERR_CONFIG, &d);
	}
	s->topic = rd_kafka_topic_name(s->rkt);
	if (pthread_create(&s->poller, NULL, poller_main, s) != 0) {
		ts_log_error("cannot start the delivery report thread");
		return ts_err_exit(TS_ERR_INTERNAL);
	}
	s->poller_running = 1;
	return -1;
}

/* Wait for every outstanding delivery report. The first signal only stopped
 * the reading; a second gives up on what is still queued (those tasks are
 * reported undelivered and go to --rejects; an in-flight one may still
 * have reached the broker). */
static void drain(submit *s)
{
	int purged = 0, announced = 0;
	int64_t next_note = ts_mono_ms() + 5000;

	if (s->poller_running) {
		atomic_store(&s->poller_stop, 1);
		pthread_join(s->poller, NULL);
		s->poller_running = 0;
	}
	while (rd_kafka_outq_len(s->rk) > 0) {
		if (signals_seen == 1 && !announced) {
			ts_log_warn("waiting for %d delivery report(s); another SIGINT or SIGTERM gives up on them",
				    rd_kafka_outq_len(s->rk));
			announced = 1;
		}
		if (signals_seen >= 2 && !purged) {
			ts_log_warn("second signal: giving up on %d queued task(s)",
				    rd_kafka_outq_len(s->rk));
			rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
			purged = 1;
		}
		if (rd_kafka_poll(s->rk, 100) > 0)
			flush_stdout(s);
		if (ts_mono_ms() >= next_note) {
			ts_log_info("waiting for %d delivery report(s)",
				    rd_kafka_outq_len(s->rk));
			next_note += 5000;
		}
	}
	flush_stdout(s);
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
	if (!s->cfg->dry_run && (rc = open_kafka(s)) >= 0)
		goto out;
	for (i = 0; i < s->ninputs && !ts_stop; i++)
		read_input(s, i, fds[i]);
	if (s->rk)
		drain(s);
	else
		flush_stdout(s);
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
	if (s.rkt)
		rd_kafka_topic_destroy(s.rkt);
	if (s.rk)
		rd_kafka_destroy(s.rk);
	if (s.rejects_fd >= 0)
		close(s.rejects_fd);
	ts_buf_free(&s.env);
	free(s.names);
	ts_config_free(&cfg);
	return rc;
}
