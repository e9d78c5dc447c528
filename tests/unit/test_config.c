/* test_config.c - the one loader: defaults < file < environment < argv. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#include "testutil.h"

extern char **environ;

static ts_config C;
static ts_detail D;
static char *argv_store[64];
static int argc_store;
static char tmpdir[64];

/* Remove every TS_* variable and the config file locations, so that the
 * machine's own environment and ~/.config never leak into a test. */
static void clean_env(void)
{
	for (;;) {
		char name[256];
		int found = 0;

		for (char **e = environ; *e; e++) {
			if (strncmp(*e, "TS_", 3) == 0) {
				size_t n = strcspn(*e, "=");
				if (n >= sizeof name)
					n = sizeof name - 1;
				memcpy(name, *e, n);
				name[n] = '\0';
				found = 1;
				break;
			}
		}
		if (!found)
			break;
		unsetenv(name);
	}
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", tmpdir, 1);
}

static void free_argv(void)
{
	for (int i = 0; i < argc_store; i++)
		free(argv_store[i]);
	argc_store = 0;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ts-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	clean_env();
	memset(&C, 0, sizeof C);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	ts_config_free(&C);
	free_argv();
	clean_env();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Load for tool with argv {"ts-test", args..., NULL}. */
static ts_err load(int tool, const char *const *args)
{
	ts_config_free(&C);
	free_argv();
	argv_store[argc_store++] = strdup("ts-test");
	for (; *args; args++)
		argv_store[argc_store++] = strdup(*args);
	argv_store[argc_store] = NULL;
	return ts_config_load(&C, tool, "ts-test", argc_store, argv_store, &D);
}

#define LOAD(tool, ...) load((tool), (const char *const[]){ __VA_ARGS__, NULL })
#define SUB TS_TOOL_SUBMIT
#define WRK TS_TOOL_WORKER
#define SND TS_TOOL_SEND
#define HTD TS_TOOL_HTTPD

#define LOAD_OK(tool, ...)                                                    \
	do {                                                                  \
		ts_err e_ = LOAD(tool, __VA_ARGS__);                          \
		if (e_ != TS_OK)                                              \
			fail_msg("load failed (%d): %s", e_, D.msg);          \
	} while (0)

/* Write a file under tmpdir (creating directories); returns its path in a
 * rotating static buffer. */
static const char *file(const char *rel, const char *content)
{
	static char paths[4][512];
	static int next;
	char *path = paths[next++ % 4];
	FILE *f;

	snprintf(path, 512, "%s/%s", tmpdir, rel);
	for (char *p = path + strlen(tmpdir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void assert_list(const ts_strlist *l, const char *const *want, int n)
{
	if (l->n != n) {
		for (int i = 0; i < l->n; i++)
			print_message("  [%d] %s\n", i, l->v[i]);
		fail_msg("list has %d items, want %d", l->n, n);
	}
	for (int i = 0; i < n; i++)
		assert_string_equal(l->v[i], want[i]);
}

/* ---- defaults and precedence -------------------------------------------- */

static void test_defaults(void **state)
{
	(void)state;
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.brokers, "localhost:9092");
	assert_string_equal(C.topic, "task-topic");
	assert_string_equal(C.dlq_topic, "task-dlq-topic");
	assert_int_equal(C.max_task, 1000000);
	assert_null(C.config_file);
	assert_int_equal(C.rdkafka.n, 0);
	assert_int_equal(C.argc, 0);
	assert_int_equal(C.verbosity, 0);
	assert_int_equal(C.log_json, 0);
	assert_int_equal(C.tool, SUB);
	assert_string_equal(C.tool_name, "ts-test");

	LOAD_OK(WRK, NULL);
	assert_string_equal(C.group, "taskstream-workers");
	assert_int_equal(C.concurrency, 32);
	assert_int_equal(C.retries, 3);
	assert_int_equal(C.backoff_ms, 1000);
	assert_true(C.backoff_factor == 2.0);
	assert_int_equal(C.backoff_max_ms, 60000);
	assert_int_equal(C.drain_timeout_ms, 30000);
	assert_int_equal(C.exit_idle_ms, 0);
	assert_string_equal(C.order, "key");
	assert_null(C.metrics);

	LOAD_OK(HTD, NULL);
	assert_string_equal(C.listen, "127.0.0.1:8080");
	assert_int_equal(C.max_body, 1048576);
	assert_int_equal(C.produce_timeout_ms, 5000);
	assert_int_equal(C.send_timeout_ms, 30000);
}

static void test_precedence_string(void **state)
{
	const char *f = file("c1", "topic from-file\n");

	(void)state;
	LOAD_OK(SUB, "-c", f);
	assert_string_equal(C.topic, "from-file");
	assert_string_equal(C.config_file, f);
	setenv("TS_TOPIC", "from-env", 1);
	LOAD_OK(SUB, "-c", f);
	assert_string_equal(C.topic, "from-env");
	LOAD_OK(SUB, "-c", f, "-t", "from-argv");
	assert_string_equal(C.topic, "from-argv");
	LOAD_OK(SUB, "--topic=long-form", "-c", f);
	assert_string_equal(C.topic, "long-form");
	/* the last of several wins */
	LOAD_OK(SUB, "-t", "one", "--topic", "two");
	assert_string_equal(C.topic, "two");
	/* env alone over the default */
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.topic, "from-env");
}

static void test_precedence_int(void **state)
{
	const char *f = file("c2", "retries 5\nconcurrency 8\n");

	(void)state;
	LOAD_OK(WRK, NULL);
	assert_int_equal(C.retries, 3);
	LOAD_OK(WRK, "-c", f);
	assert_int_equal(C.retries, 5);
	assert_int_equal(C.concurrency, 8);
	setenv("TS_RETRIES", "7", 1);
	LOAD_OK(WRK, "-c", f);
	assert_int_equal(C.retries, 7);
	assert_int_equal(C.concurrency, 8);
	LOAD_OK(WRK, "-c", f, "--retries", "9");
	assert_int_equal(C.retries, 9);
	LOAD_OK(WRK, "-c", f, "--retries=0");
	assert_int_equal(C.retries, 0);
}

static void test_precedence_duration(void **state)
{
	const char *f = file("c3", "backoff 250ms\nbackoff-max 2m\n");

	(void)state;
	LOAD_OK(WRK, "-c", f);
	assert_int_equal(C.backoff_ms, 250);
	assert_int_equal(C.backoff_max_ms, 120000);
	setenv("TS_BACKOFF", "2s", 1);
	LOAD_OK(WRK, "-c", f);
	assert_int_equal(C.backoff_ms, 2000);
	LOAD_OK(WRK, "-c", f, "--backoff", "1.5");
	assert_int_equal(C.backoff_ms, 1500);
	assert_int_equal(C.backoff_max_ms, 120000);
	/* sizes too */
	f = file("c4", "max-body 64KiB\n");
	LOAD_OK(HTD, "-c", f);
	assert_int_equal(C.max_body, 65536);
	setenv("TS_MAX_BODY", "2MiB", 1);
	LOAD_OK(HTD, "-c", f);
	assert_int_equal(C.max_body, 2097152);
	LOAD_OK(HTD, "-c", f, "--max-body", "512");
	assert_int_equal(C.max_body, 512);
}

static void test_empty_env_is_unset(void **state)
{
	const char *f = file("c5", "topic from-file\nbrokers k1:9092\n");

	(void)state;
	setenv("TS_TOPIC", "", 1);
	setenv("TS_BROKERS", "", 1);
	setenv("TS_RETRIES", "", 1);
	setenv("TS_BACKOFF", "", 1);
	LOAD_OK(SUB, "-c", f);
	assert_string_equal(C.topic, "from-file");
	assert_string_equal(C.brokers, "k1:9092");
	LOAD_OK(WRK, NULL);
	assert_int_equal(C.retries, 3);
	assert_int_equal(C.backoff_ms, 1000);
	assert_string_equal(C.brokers, "localhost:9092");
}

/* ---- the config file ---------------------------------------------------- */

static void test_file_format(void **state)
{
	const char *f = file("c6",
			     "# TaskStream configuration\n"
			     "\n"
			     "   # an indented comment\n"
			     "brokers kafka1:9092,kafka2:9092\n"
			     "\t\n"
			     "X security.protocol=SASL_SSL\n"
			     "X sasl.mechanisms=PLAIN\n"
			     "email-url   smtp://mail.example.com:587?starttls=no   \n"
			     "from\tShop Name <shop@example.com>\r\n"
			     "  topic orders\r\n"
			     "log-format json");
	static const char *const want[] = { "security.protocol=SASL_SSL",
					    "sasl.mechanisms=PLAIN" };

	(void)state;
	LOAD_OK(WRK, "-c", f);
	assert_string_equal(C.brokers, "kafka1:9092,kafka2:9092");
	assert_list(&C.rdkafka, want, 2);
	assert_string_equal(C.email_url, "smtp://mail.example.com:587?starttls=no");
	assert_string_equal(C.from, "Shop Name <shop@example.com>");
	assert_string_equal(C.topic, "orders");
	assert_int_equal(C.log_json, 1);
}

static void test_file_lists_and_argv(void **state)
{
	const char *f = file("c7", "handler report=/usr/bin/report\nhandler audit=http://127.0.0.1:9/x\nX linger.ms=10\n");
	static const char *const handlers[] = { "report=/usr/bin/report",
						"audit=http://127.0.0.1:9/x",
						"bill=/bin/bill" };
	static const char *const props[] = { "linger.ms=10", "acks=1" };

	(void)state;
	LOAD_OK(WRK, "-c", f, "--handler", "bill=/bin/bill", "-X", "acks=1");
	assert_list(&C.handlers, handlers, 3);
	assert_list(&C.rdkafka, props, 2);
}

static void test_file_unknown_key(void **state)
{
	const char *f = file("c8", "# ok\nbrokers k:1\nbrokerz k:2\n");

	(void)state;
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, f);
	assert_contains(D.msg, ":3:");
	assert_contains(D.msg, "brokerz");
	assert_contains(D.msg, "unknown option");
	/* no tool knows it: the same for every tool */
	assert_int_equal(LOAD(SND, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, ":3:");
	/* a long option name with dashes is not the file syntax */
	f = file("c9", "--topic x\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, ":1:");
	/* a key without a value */
	f = file("c10", "topic x\ntopic\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, ":2:");
	assert_contains(D.msg, "needs a value");
}

static void test_file_other_tools_keys(void **state)
{
	const char *f = file("c11",
			     "brokers k:9092\n"
			     "group billing\n"
			     "concurrency 4\n"
			     "listen 0.0.0.0:8081\n"
			     "max-body 64KiB\n"
			     "rejects /tmp/rejects.jsonl\n"
			     "email-url maildir:/tmp/mail\n");

	(void)state;
	LOAD_OK(SUB, "-c", f);
	assert_string_equal(C.brokers, "k:9092");
	assert_string_equal(C.rejects, "/tmp/rejects.jsonl");
	assert_string_equal(C.group, "taskstream-workers"); /* not its option */
	assert_int_equal(C.concurrency, 32);
	assert_null(C.email_url);

	LOAD_OK(WRK, "-c", f);
	assert_string_equal(C.group, "billing");
	assert_int_equal(C.concurrency, 4);
	assert_string_equal(C.email_url, "maildir:/tmp/mail");
	assert_null(C.rejects);

	LOAD_OK(HTD, "-c", f);
	assert_string_equal(C.listen, "0.0.0.0:8081");
	assert_int_equal(C.max_body, 65536);

	/* ts-send has no Kafka: brokers is another tool's key */
	LOAD_OK(SND, "-c", f);
	assert_string_equal(C.email_url, "maildir:/tmp/mail");

	/* another tool's key with a bad value is still ignored */
	f = file("c12", "concurrency lots\n");
	LOAD_OK(SUB, "-c", f);
	assert_int_equal(LOAD(WRK, "-c", f), TS_ERR_CONFIG);
}

static void test_file_argv_only(void **state)
{
	const char *f;

	(void)state;
	f = file("c13", "topic t\ndry-run\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, ":2:");
	assert_contains(D.msg, "dry-run");
	assert_contains(D.msg, "only allowed on the command line");
	f = file("c14", "subject Hello\n");
	assert_int_equal(LOAD(SND, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, "only allowed on the command line");
	LOAD_OK(SUB, "-c", f); /* another tool's */
	f = file("c15", "config /etc/other\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, "only allowed");
	f = file("c16", "verbose 1\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
}

static void test_file_bad_values(void **state)
{
	const char *f;

	(void)state;
	f = file("c17", "\nbackoff 5x\n");
	assert_int_equal(LOAD(WRK, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, ":2:");
	assert_contains(D.msg, "backoff");
	assert_contains(D.msg, "5x");
	f = file("c18", "max-task lots\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, "max-task");
	f = file("c19", "X novalue\n");
	assert_int_equal(LOAD(SUB, "-c", f), TS_ERR_CONFIG);
	assert_contains(D.msg, ":1:");
	assert_contains(D.msg, "KEY=VALUE");
}

/* ---- where the file comes from ------------------------------------------ */

static void test_file_locations(void **state)
{
	const char *home = file(".config/taskstream/config", "topic from-home\n");
	const char *xdg, *tsc, *c;

	(void)state;
	(void)home;
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.topic, "from-home");
	assert_non_null(C.config_file);

	xdg = file("xdg/taskstream/config", "topic from-xdg\n");
	char xdgdir[256];
	snprintf(xdgdir, sizeof xdgdir, "%s/xdg", tmpdir);
	setenv("XDG_CONFIG_HOME", xdgdir, 1);
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.topic, "from-xdg");
	assert_string_equal(C.config_file, xdg);

	tsc = file("tsconfig", "topic from-ts-config\n");
	setenv("TS_CONFIG", tsc, 1);
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.topic, "from-ts-config");
	assert_string_equal(C.config_file, tsc);

	c = file("explicit", "topic from-c\n");
	LOAD_OK(SUB, "-c", c);
	assert_string_equal(C.topic, "from-c");
	assert_string_equal(C.config_file, c);
	LOAD_OK(SUB, "--config", c);
	assert_string_equal(C.topic, "from-c");
	char eq[600];
	snprintf(eq, sizeof eq, "--config=%s", c);
	LOAD_OK(SUB, eq);
	assert_string_equal(C.topic, "from-c");
	snprintf(eq, sizeof eq, "-c%s", c);
	LOAD_OK(SUB, eq);
	assert_string_equal(C.topic, "from-c");
	/* -c in a cluster of flags */
	LOAD_OK(SUB, "-qc", c);
	assert_string_equal(C.topic, "from-c");
	assert_int_equal(C.verbosity, -1);
	snprintf(eq, sizeof eq, "-vc%s", c);
	LOAD_OK(SUB, eq);
	assert_string_equal(C.topic, "from-c");
	assert_int_equal(C.verbosity, 1);
	/* "-tc" is the topic "c", not a config file */
	LOAD_OK(SUB, "-tc");
	assert_string_equal(C.topic, "c");
	assert_string_equal(C.config_file, tsc);

	/* an empty TS_CONFIG is unset: back to XDG */
	setenv("TS_CONFIG", "", 1);
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.topic, "from-xdg");
	/* an empty XDG_CONFIG_HOME: back to HOME */
	setenv("XDG_CONFIG_HOME", "", 1);
	LOAD_OK(SUB, NULL);
	assert_string_equal(C.topic, "from-home");
}

static void test_file_missing(void **state)
{
	char xdgdir[256], missing[256];

	(void)state;
	/* the default locations may be absent */
	snprintf(xdgdir, sizeof xdgdir, "%s/empty-xdg", tmpdir);
	setenv("XDG_CONFIG_HOME", xdgdir, 1);
	LOAD_OK(SUB, NULL);
	assert_null(C.config_file);
	/* a named one may not */
	snprintf(missing, sizeof missing, "%s/nope.conf", tmpdir);
	assert_int_equal(LOAD(SUB, "-c", missing), TS_ERR_CONFIG);
	assert_contains(D.msg, missing);
	setenv("TS_CONFIG", missing, 1);
	assert_int_equal(LOAD(SUB, NULL), TS_ERR_CONFIG);
	assert_contains(D.msg, missing);
	/* a directory is no config file */
	assert_int_equal(LOAD(SUB, "-c", tmpdir), TS_ERR_CONFIG);
}

/* ---- librdkafka properties ---------------------------------------------- */

static void test_x_options(void **state)
{
	static const char *const want[] = { "acks=1", "client.id=a=b", "linger.ms=7" };

	(void)state;
	LOAD_OK(SUB, "-X", "acks=1", "-Xclient.id=a=b", "-X", "linger.ms=7");
	assert_list(&C.rdkafka, want, 3);
	assert_int_equal(C.rdkafka_list, 0);
	LOAD_OK(SUB, "-X", "list");
	assert_int_equal(C.rdkafka_list, 1);
	assert_int_equal(C.rdkafka.n, 0);
	assert_int_equal(LOAD(SUB, "-X", "acks"), TS_ERR_USAGE);
	assert_contains(D.msg, "-X");
	assert_contains(D.msg, "KEY=VALUE");
	assert_int_equal(LOAD(SUB, "-X", "=1"), TS_ERR_USAGE);
	assert_int_equal(LOAD(SUB, "-X"), TS_ERR_USAGE);
	assert_contains(D.msg, "needs a value");
	/* not for ts-send, which has no Kafka */
	assert_int_equal(LOAD(SND, "-X", "acks=1"), TS_ERR_USAGE);
}

static void test_f_file(void **state)
{
	const char *f = file("kcat.conf",
			     "# kcat.conf\n"
			     "bootstrap.servers=k:9092\n"
			     "\n"
			     "  security.protocol = SSL\n"
			     "ssl.ca.location=/etc/ssl/ca.pem\n");
	const char *fx = file("c20", "X from.file=1\n");
	static const char *const want[] = {
		"from.file=1", "acks=1", "bootstrap.servers=k:9092",
		"security.protocol = SSL", "ssl.ca.location=/etc/ssl/ca.pem",
		"linger.ms=3",
	};

	(void)state;
	/* in order: the config file's X lines, then argv as given */
	LOAD_OK(SUB, "-c", fx, "-X", "acks=1", "-F", f, "-X", "linger.ms=3");
	assert_list(&C.rdkafka, want, 6);

	/* F in the config file */
	char line[600];
	snprintf(line, sizeof line, "F %s\n", f);
	const char *fc = file("c21", line);
	LOAD_OK(WRK, "-c", fc);
	assert_int_equal(C.rdkafka.n, 3);
	assert_string_equal(C.rdkafka.v[0], "bootstrap.servers=k:9092");

	/* a line that is no property names file and line */
	const char *bad = file("bad.conf", "acks=1\n\nnot a property\n");
	ts_err e = LOAD(SUB, "-F", bad);
	assert_true(e == TS_ERR_USAGE || e == TS_ERR_CONFIG);
	assert_contains(D.msg, bad);
	assert_contains(D.msg, "line 3");
	assert_contains(D.msg, "property=value");

	/* a missing file names the file and the reason */
	char missing[256];
	snprintf(missing, sizeof missing, "%s/missing.conf", tmpdir);
	e = LOAD(SUB, "-F", missing);
	assert_true(e == TS_ERR_USAGE || e == TS_ERR_CONFIG);
	assert_contains(D.msg, missing);
	assert_contains(D.msg, "No such file");
	assert_true(strlen(D.msg) < 200 + strlen(missing));
}

/* ---- the command line --------------------------------------------------- */

static void test_bad_values_name_option(void **state)
{
	(void)state;
	assert_int_equal(LOAD(WRK, "--backoff", "5x"), TS_ERR_USAGE);
	assert_contains(D.msg, "--backoff");
	assert_contains(D.msg, "5x");
	assert_int_equal(LOAD(WRK, "--drain-timeout=-1"), TS_ERR_USAGE);
	assert_contains(D.msg, "--drain-timeout");
	assert_int_equal(LOAD(SUB, "--max-task", "1TB"), TS_ERR_USAGE);
	assert_contains(D.msg, "--max-task");
	assert_contains(D.msg, "1TB");
	assert_int_equal(LOAD(HTD, "--max-body", "big"), TS_ERR_USAGE);
	assert_contains(D.msg, "--max-body");
	assert_int_equal(LOAD(WRK, "--concurrency", "0"), TS_ERR_USAGE);
	assert_contains(D.msg, "--concurrency");
	assert_int_equal(LOAD(WRK, "--concurrency", "4097"), TS_ERR_USAGE);
	assert_int_equal(LOAD(WRK, "--backoff-factor", "0.5"), TS_ERR_USAGE);
	assert_contains(D.msg, "--backoff-factor");
	assert_int_equal(LOAD(SUB, "--log-format", "xml"), TS_ERR_USAGE);
	assert_contains(D.msg, "--log-format");

	/* from the environment: TS_ERR_CONFIG naming the variable */
	setenv("TS_BACKOFF", "5x", 1);
	assert_int_equal(LOAD(WRK, NULL), TS_ERR_CONFIG);
	assert_contains(D.msg, "TS_BACKOFF");
	assert_contains(D.msg, "5x");
	/* ...unless the tool does not take it */
	LOAD_OK(SUB, NULL);
	unsetenv("TS_BACKOFF");
	setenv("TS_MAX_BODY", "1TiB", 1);
	assert_int_equal(LOAD(HTD, NULL), TS_ERR_CONFIG);
	assert_contains(D.msg, "TS_MAX_BODY");
	unsetenv("TS_MAX_BODY");
	setenv("TS_CONCURRENCY", "-3", 1);
	assert_int_equal(LOAD(WRK, NULL), TS_ERR_CONFIG);
	assert_contains(D.msg, "TS_CONCURRENCY");
}

static void test_unknown_option(void **state)
{
	(void)state;
	assert_int_equal(LOAD(SUB, "--nope"), TS_ERR_USAGE);
	assert_contains(D.msg, "--nope");
	assert_int_equal(LOAD(SUB, "-Z"), TS_ERR_USAGE);
	assert_contains(D.msg, "-Z");
	/* another tool's option is unknown here */
	assert_int_equal(LOAD(SUB, "--group", "g"), TS_ERR_USAGE);
	assert_contains(D.msg, "--group");
	assert_int_equal(LOAD(SUB, "-g", "g"), TS_ERR_USAGE);
	assert_int_equal(LOAD(WRK, "--dry-run"), TS_ERR_USAGE);
	/* missing values */
	assert_int_equal(LOAD(SUB, "-t"), TS_ERR_USAGE);
	assert_contains(D.msg, "needs a value");
	assert_int_equal(LOAD(SUB, "--topic"), TS_ERR_USAGE);
	assert_contains(D.msg, "--topic");
	/* a flag given a value */
	assert_int_equal(LOAD(SUB, "--dry-run=yes"), TS_ERR_USAGE);
}

static void test_positional(void **state)
{
	(void)state;
	LOAD_OK(SUB, "a.jsonl", "-t", "x", "b.jsonl", "-");
	assert_string_equal(C.topic, "x");
	assert_int_equal(C.argc, 3);
	assert_string_equal(C.argv[0], "a.jsonl");
	assert_string_equal(C.argv[1], "b.jsonl");
	assert_string_equal(C.argv[2], "-");
	assert_null(C.argv[3]);
	LOAD_OK(SUB, "-q", "--", "-x.jsonl", "--topic");
	assert_int_equal(C.verbosity, -1);
	assert_string_equal(C.topic, "task-topic");
	assert_int_equal(C.argc, 2);
	assert_string_equal(C.argv[0], "-x.jsonl");
	assert_string_equal(C.argv[1], "--topic");
	LOAD_OK(SND, "email", "--to", "a@example.com", "--to", "b@example.com", "--subject", "Hi");
	assert_int_equal(C.argc, 1);
	assert_string_equal(C.argv[0], "email");
	static const char *const to[] = { "a@example.com", "b@example.com" };
	assert_list(&C.to, to, 2);
	assert_string_equal(C.subject, "Hi");
}

static void test_flags(void **state)
{
	(void)state;
	LOAD_OK(SUB, "-v", "-v");
	assert_int_equal(C.verbosity, 2);
	LOAD_OK(SUB, "-vv");
	assert_int_equal(C.verbosity, 2);
	LOAD_OK(SUB, "-q");
	assert_int_equal(C.verbosity, -1);
	LOAD_OK(SUB, "--quiet");
	assert_int_equal(C.verbosity, -1);
	LOAD_OK(SUB, "-h");
	assert_int_equal(C.want_help, 1);
	LOAD_OK(SUB, "--help");
	assert_int_equal(C.want_help, 1);
	LOAD_OK(SUB, "-V");
	assert_int_equal(C.want_version, 1);
	assert_int_equal(C.want_help, 0);
	LOAD_OK(SUB, "--dry-run", "--type", "email");
	assert_int_equal(C.dry_run, 1);
	assert_string_equal(C.type, "email");
	LOAD_OK(SUB, "--log-format", "json");
	assert_int_equal(C.log_json, 1);
	setenv("TS_LOG_FORMAT", "json", 1);
	LOAD_OK(SUB, NULL);
	assert_int_equal(C.log_json, 1);
	LOAD_OK(SUB, "--log-format=text");
	assert_int_equal(C.log_json, 0);
}

static void test_order(void **state)
{
	(void)state;
	LOAD_OK(WRK, "--order", "partition");
	assert_string_equal(C.order, "partition");
	LOAD_OK(WRK, "--order", "none");
	assert_string_equal(C.order, "none");
	assert_int_equal(LOAD(WRK, "--order", "random"), TS_ERR_CONFIG);
	assert_contains(D.msg, "--order");
	assert_contains(D.msg, "random");
	setenv("TS_ORDER", "sorted", 1);
	assert_int_equal(LOAD(WRK, NULL), TS_ERR_CONFIG);
	assert_contains(D.msg, "sorted");
}

static void test_repeated_loads(void **state)
{
	(void)state;
	/* a load that stops in the middle of "-Zq" must not leak getopt state
	 * into the next one */
	assert_int_equal(LOAD(SUB, "-Zq"), TS_ERR_USAGE);
	LOAD_OK(SUB, "-v", "x.jsonl");
	assert_int_equal(C.verbosity, 1);
	assert_int_equal(C.argc, 1);
	assert_string_equal(C.argv[0], "x.jsonl");
	assert_int_equal(LOAD(SUB, "-qZ", "a"), TS_ERR_USAGE);
	LOAD_OK(SUB, "b", "-t", "t1");
	assert_int_equal(C.verbosity, 0);
	assert_string_equal(C.topic, "t1");
	assert_int_equal(C.argc, 1);
	assert_string_equal(C.argv[0], "b");
	/* and many loads in a row stay consistent */
	for (int i = 0; i < 50; i++) {
		LOAD_OK(WRK, "p1", "--retries", "4", "p2", "-v");
		assert_int_equal(C.retries, 4);
		assert_int_equal(C.verbosity, 1);
		assert_int_equal(C.argc, 2);
	}
}

static void test_usage(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	setenv("TS_TOPIC", "secret-topic-value", 1);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	ts_config_usage(TS_TOOL_SUBMIT, f);
	fclose(f);
	assert_contains(text, "--topic");
	assert_contains(text, "TS_TOPIC");
	assert_contains(text, "--dry-run");
	assert_contains(text, "-X KEY=VALUE");
	assert_null(strstr(text, "--group"));
	assert_null(strstr(text, "--listen"));
	assert_null(strstr(text, "secret-topic-value"));
	free(text);
	f = open_memstream(&text, &len);
	ts_config_usage(TS_TOOL_SEND, f);
	fclose(f);
	assert_contains(text, "--subject");
	assert_null(strstr(text, "--brokers"));
	assert_null(strstr(text, "-X "));
	free(text);
}

static void test_strlist(void **state)
{
	ts_strlist l = { 0 };
	char buf[8] = "abc";

	(void)state;
	assert_int_equal(ts_strlist_add(&l, buf), TS_OK);
	buf[0] = 'X'; /* the list holds a copy */
	assert_int_equal(ts_strlist_add(&l, ""), TS_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "abc");
	assert_string_equal(l.v[1], "");
	ts_strlist_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	ts_strlist_free(&l);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T_(test_defaults),
		T_(test_precedence_string),
		T_(test_precedence_int),
		T_(test_precedence_duration),
		T_(test_empty_env_is_unset),
		T_(test_file_format),
		T_(test_file_lists_and_argv),
		T_(test_file_unknown_key),
		T_(test_file_other_tools_keys),
		T_(test_file_argv_only),
		T_(test_file_bad_values),
		T_(test_file_locations),
		T_(test_file_missing),
		T_(test_x_options),
		T_(test_f_file),
		T_(test_bad_values_name_option),
		T_(test_unknown_option),
		T_(test_positional),
		T_(test_flags),
		T_(test_order),
		T_(test_repeated_loads),
		T_(test_usage),
		T_(test_strlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
