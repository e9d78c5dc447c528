/* fuzz_config.c - the config-file parser and the option loader
 * (lib/config.h).
 *
 * Input: one byte picking the tool and the mode, then either a config file
 * (read through -c FILE) or a command line (NUL-separated arguments).
 * ts_config_load() must return a known error or a config whose numbers are
 * within their documented ranges, and ts_config_free() must free it all,
 * whatever happened.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define MAXARGS 64

static char path[64];

static void remove_file(void)
{
	unlink(path);
}

static void fail(const char *what, const char *msg)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, msg ? msg : "");
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	/* The environment is an input of the loader: none of ours. */
	clearenv();
	snprintf(path, sizeof path, "/dev/shm/fuzz_config.%ld", (long)getpid());
	if (access("/dev/shm", W_OK) != 0)
		snprintf(path, sizeof path, "/tmp/fuzz_config.%ld", (long)getpid());
	atexit(remove_file);
	return 0;
}

/* glibc keeps getopt state between calls; start each run afresh, as a new
 * process would (optind = 0 asks for a full reinitialisation). */
static void reset_getopt(void)
{
	char *dummy[] = { "x", NULL };

	optind = 0;
	opterr = 0;
	getopt(1, dummy, "");
}

/* -c FILE and -F FILE make the loader read whatever file the input names
 * (/dev/stdin would block): leave those out of fuzzed command lines. */
static int reads_a_file(const char *a)
{
	if (strncmp(a, "--", 2) == 0) {
		size_t n = strcspn(a + 2, "=");
		return n > 0 && strncmp(a + 2, "config", n < 6 ? n : 6) == 0 &&
		       n <= 6;
	}
	return a[0] == '-' && strpbrk(a + 1, "cF") != NULL;
}

static void check_ranges(const ts_config *c)
{
	if (c->concurrency < 1 || c->concurrency > 4096)
		fail("concurrency out of range", "");
	if (c->retries < 0 || c->retries > 1000)
		fail("retries out of range", "");
	if (c->max_connections < 1 || c->max_connections > 1000000)
		fail("max-connections out of range", "");
	if (!(c->backoff_factor >= 1.0 && c->backoff_factor <= 100.0))
		fail("backoff-factor out of range", "");
	if (c->backoff_ms < 0 || c->backoff_max_ms < 0 || c->drain_timeout_ms < 0 ||
	    c->handler_timeout_ms < 0 || c->exit_idle_ms < 0 ||
	    c->produce_timeout_ms < 0 || c->conn_timeout_ms < 0 ||
	    c->send_timeout_ms < 0 || c->max_body < 0 || c->max_task < 0)
		fail("negative duration or size", "");
	if (!c->brokers || !c->topic || !c->dlq_topic || !c->group ||
	    !c->order || !c->listen)
		fail("a default is missing", "");
	if (strcmp(c->order, "key") && strcmp(c->order, "partition") &&
	    strcmp(c->order, "none"))
		fail("bad --order accepted", c->order);
	if (c->argc < 0)
		fail("negative argc", "");
	for (int i = 0; i < c->rdkafka.n; i++)
		if (!strchr(c->rdkafka.v[i], '=') || c->rdkafka.v[i][0] == '=')
			fail("rdkafka property without KEY=", c->rdkafka.v[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int tools[] = { TS_TOOL_SUBMIT, TS_TOOL_WORKER,
				     TS_TOOL_SEND, TS_TOOL_HTTPD };
	static const char *const names[] = { "ts-submit", "ts-worker",
					     "ts-send", "ts-httpd" };
	char *argv[MAXARGS + 4];
	char *copy = NULL;
	int argc = 0;
	ts_config cfg;
	ts_detail d;
	ts_err err;

	if (size < 1)
		return 0;
	int t = data[0] & 3;
	int argv_mode = data[0] & 4;
	data++, size--;

	argv[argc++] = (char *)names[t];
	if (argv_mode) {
		/* NUL-separated arguments, the last one terminated by us. */
		if (!(copy = malloc(size + 1)))
			return 0;
		memcpy(copy, data, size);
		copy[size] = '\0';
		for (char *p = copy; p <= copy + size && argc < MAXARGS;
		     p += strlen(p) + 1) {
			if (reads_a_file(p))
				continue;
			argv[argc++] = p;
		}
	} else {
		FILE *f = fopen(path, "w");
		if (!f)
			return 0;
		if (size && fwrite(data, 1, size, f) != size) {
			fclose(f);
			return 0;
		}
		fclose(f);
		argv[argc++] = "-c";
		argv[argc++] = path;
	}
	argv[argc] = NULL;

	reset_getopt();
	err = ts_config_load(&cfg, tools[t], names[t], argc, argv, &d);
	if (memchr(d.msg, 0, sizeof d.msg) == NULL)
		fail("detail not terminated", "");
	switch (err) {
	case TS_OK:
		check_ranges(&cfg);
		break;
	case TS_ERR_USAGE:
	case TS_ERR_CONFIG:
		if (!d.msg[0])
			fail("error without a message", ts_strerror(err));
		break;
	default:
		fail("unexpected error", ts_strerror(err));
	}
	ts_config_free(&cfg);
	free(copy);
	return 0;
}
