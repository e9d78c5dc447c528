/* config.c - the option table and the one loader every tool uses. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#ifndef TS_VERSION
#define TS_VERSION "0.1.0"
#endif
const char ts_version[] = TS_VERSION;

enum kind {
	K_STR, K_LIST, K_FLAG, K_INT, K_DUR, K_SIZE, K_DOUBLE,
	K_X, K_F, K_VERBOSE, K_QUIET, K_HELP, K_VERSION, K_CONFIG, K_LOGFMT,
};

#define ARGV_ONLY 1   /* not from the environment or a config file */

struct opt {
	const char *name;
	int shortopt;       /* 0: none */
	enum kind kind;
	const char *env;    /* NULL: no environment variable */
	int tools;
	size_t off;
	int64_t min, max;   /* K_INT */
	int flags;
	const char *arg;    /* metavariable for --help, NULL for flags */
	const char *help;
};

#define F(field) offsetof(ts_config, field)
#define ALL TS_TOOL_ALL
#define SUB TS_TOOL_SUBMIT
#define WRK TS_TOOL_WORKER
#define SND TS_TOOL_SEND
#define HTD TS_TOOL_HTTPD
#define KAFKA (SUB | WRK | HTD)
#define DELIVER (WRK | SND | HTD)

/* Sorted by name; one row per option of every tool. */
static const struct opt opts[] = {
	{ "backoff", 0, K_DUR, "TS_BACKOFF", WRK, F(backoff_ms), 0, 0, 0, "DURATION", "first retry delay (default 1s)" },
	{ "backoff-factor", 0, K_DOUBLE, "TS_BACKOFF_FACTOR", WRK, F(backoff_factor), 0, 0, 0, "X", "back-off multiplier (default 2)" },
	{ "backoff-max", 0, K_DUR, "TS_BACKOFF_MAX", WRK, F(backoff_max_ms), 0, 0, 0, "DURATION", "longest retry delay (default 60s)" },
	{ "bcc", 0, K_LIST, NULL, SND, F(bcc), 0, 0, ARGV_ONLY, "ADDR", "blind copy to ADDR (repeatable)" },
	{ "body", 0, K_STR, NULL, SND, F(body), 0, 0, ARGV_ONLY, "TEXT", "message text (else --body-file, else stdin)" },
	{ "body-file", 0, K_STR, NULL, SND, F(body_file), 0, 0, ARGV_ONLY, "FILE", "message text from FILE" },
	{ "brokers", 'b', K_STR, "TS_BROKERS", KAFKA, F(brokers), 0, 0, 0, "LIST", "Kafka bootstrap servers (default localhost:9092)" },
	{ "cc", 0, K_LIST, NULL, SND, F(cc), 0, 0, ARGV_ONLY, "ADDR", "copy to ADDR (repeatable)" },
	{ "concurrency", 0, K_INT, "TS_CONCURRENCY", WRK, F(concurrency), 1, 4096, 0, "N", "tasks in flight at once (default 32)" },
	{ "config", 'c', K_CONFIG, NULL, ALL, 0, 0, 0, ARGV_ONLY, "FILE", "read options from FILE" },
	{ "connection-timeout", 0, K_DUR, "TS_CONNECTION_TIMEOUT", HTD, F(conn_timeout_ms), 0, 0, 0, "DURATION", "idle connection timeout (default 30s)" },
	{ "dlq-topic", 0, K_STR, "TS_DLQ_TOPIC", WRK | HTD, F(dlq_topic), 0, 0, 0, "TOPIC", "dead-letter topic (default task-dlq-topic)" },
	{ "drain-timeout", 0, K_DUR, "TS_DRAIN_TIMEOUT", WRK, F(drain_timeout_ms), 0, 0, 0, "DURATION", "time to finish in-flight tasks on shutdown (default 30s)" },
	{ "dry-run", 0, K_FLAG, NULL, SUB, F(dry_run), 0, 0, ARGV_ONLY, NULL, "validate and print envelopes, no Kafka" },
	{ "email-url", 0, K_STR, "TS_EMAIL_URL", DELIVER, F(email_url), 0, 0, 0, "URL", "where email goes (smtp://, maildir:, http(s)://, -)" },
	{ "exit-idle", 0, K_DUR, "TS_EXIT_IDLE", WRK, F(exit_idle_ms), 0, 0, 0, "DURATION", "exit 0 after this long with nothing to do" },
	{ "from", 0, K_STR, "TS_EMAIL_FROM", DELIVER, F(from), 0, 0, 0, "ADDR", "default sender address" },
	{ "group", 'g', K_STR, "TS_GROUP", WRK, F(group), 0, 0, 0, "GROUP", "consumer group (default taskstream-workers)" },
	{ "handler", 0, K_LIST, NULL, WRK, F(handlers), 0, 0, 0, "TYPE=CMD|URL", "route TYPE to a command or HTTP URL (repeatable)" },
	{ "handler-timeout", 0, K_DUR, "TS_HANDLER_TIMEOUT", WRK, F(handler_timeout_ms), 0, 0, 0, "DURATION", "kill a handler after this long (default 60s)" },
	{ "help", 'h', K_HELP, NULL, ALL, 0, 0, 0, ARGV_ONLY, NULL, "show this help" },
	{ "html-file", 0, K_STR, NULL, SND, F(html_file), 0, 0, ARGV_ONLY, "FILE", "HTML alternative from FILE" },
	{ "json", 0, K_FLAG, NULL, SND, F(json), 0, 0, ARGV_ONLY, NULL, "read tasks as JSON lines on stdin" },
	{ "listen", 'l', K_STR, "TS_LISTEN", HTD, F(listen), 0, 0, 0, "ADDR:PORT", "where to listen (default 127.0.0.1:8080)" },
	{ "log-format", 0, K_LOGFMT, "TS_LOG_FORMAT", ALL, F(log_json), 0, 0, 0, "text|json", "stderr format (default text)" },
	{ "max-body", 0, K_SIZE, "TS_MAX_BODY", HTD, F(max_body), 0, 0, 0, "SIZE", "largest request body (default 1MiB)" },
	{ "max-connections", 0, K_INT, "TS_MAX_CONNECTIONS", HTD, F(max_connections), 1, 1000000, 0, "N", "connection limit (default 1024)" },
	{ "max-task", 0, K_SIZE, "TS_MAX_TASK", SUB | HTD, F(max_task), 0, 0, 0, "SIZE", "largest task record (default 1000000 bytes)" },
	{ "message", 0, K_STR, NULL, SND, F(message), 0, 0, ARGV_ONLY, "TEXT", "SMS text (Twilio)" },
	{ "metrics", 0, K_STR, "TS_METRICS", WRK, F(metrics), 0, 0, 0, "ADDR:PORT", "serve /metrics and /healthz" },
	{ "mobile", 0, K_STR, NULL, SND, F(mobile), 0, 0, ARGV_ONLY, "NUMBER", "SMS recipient" },
	{ "order", 0, K_STR, "TS_ORDER", WRK, F(order), 0, 0, 0, "key|partition|none", "ordering guarantee (default key)" },
	{ "produce-timeout", 0, K_DUR, "TS_PRODUCE_TIMEOUT", HTD, F(produce_timeout_ms), 0, 0, 0, "DURATION", "answer 503 when Kafka has not acknowledged by then (default 5s)" },
	{ "quiet", 'q', K_QUIET, NULL, ALL, 0, 0, 0, ARGV_ONLY, NULL, "errors only on stderr" },
	{ "rejects", 0, K_STR, "TS_REJECTS", SUB, F(rejects), 0, 0, 0, "FILE", "append rejected or undelivered input to FILE" },
	{ "reply-to", 0, K_STR, NULL, SND, F(reply_to), 0, 0, ARGV_ONLY, "ADDR", "Reply-To address" },
	{ "retries", 0, K_INT, "TS_RETRIES", WRK, F(retries), 0, 1000, 0, "N", "retries of a transient failure (default 3)" },
	{ "send-timeout", 0, K_DUR, "TS_SEND_TIMEOUT", DELIVER, F(send_timeout_ms), 0, 0, 0, "DURATION", "network timeout of one delivery (default 30s)" },
	{ "sms-url", 0, K_STR, "TS_SMS_URL", DELIVER, F(sms_url), 0, 0, 0, "URL", "where SMS go (msg91://, twilio://, file:, http(s)://, -)" },
	{ "subject", 0, K_STR, NULL, SND, F(subject), 0, 0, ARGV_ONLY, "TEXT", "email subject" },
	{ "tls-cert", 0, K_STR, "TS_TLS_CERT", HTD, F(tls_cert), 0, 0, 0, "FILE", "serve HTTPS with this certificate" },
	{ "tls-key", 0, K_STR, "TS_TLS_KEY", HTD, F(tls_key), 0, 0, 0, "FILE", "private key for --tls-cert" },
	{ "to", 0, K_LIST, NULL, SND, F(to), 0, 0, ARGV_ONLY, "ADDR", "recipient (repeatable)" },
	{ "token-file", 0, K_STR, "TS_TOKEN_FILE", HTD, F(token_file), 0, 0, 0, "FILE", "require this bearer token" },
	{ "topic", 't', K_STR, "TS_TOPIC", KAFKA, F(topic), 0, 0, 0, "TOPIC", "task topic (default task-topic)" },
	{ "type", 0, K_STR, NULL, SUB, F(type), 0, 0, ARGV_ONLY, "TYPE", "each input object is the payload of a TYPE task" },
	{ "var", 0, K_LIST, NULL, SND, F(vars), 0, 0, ARGV_ONLY, "NAME=VALUE", "SMS template variable (repeatable)" },
	{ "verbose", 'v', K_VERBOSE, NULL, ALL, 0, 0, 0, ARGV_ONLY, NULL, "more on stderr (twice: debug)" },
	{ "version", 'V', K_VERSION, NULL, ALL, 0, 0, 0, ARGV_ONLY, NULL, "print the version" },
	{ "X", 'X', K_X, NULL, KAFKA, 0, 0, 0, 0, "KEY=VALUE", "librdkafka property (repeatable; -X list shows them)" },
	{ "F", 'F', K_F, NULL, KAFKA, 0, 0, 0, 0, "FILE", "librdkafka properties file (kcat's format)" },
};

#define NOPTS (sizeof opts / sizeof opts[0])

ts_err ts_strlist_add(ts_strlist *l, const char *s)
{
	char **v = realloc(l->v, sizeof *v * (size_t)(l->n + 1));
	char *copy;

	if (!v)
		return TS_ERR_NOMEM;
	l->v = v;
	if (!(copy = strdup(s)))
		return TS_ERR_NOMEM;
	l->v[l->n++] = copy;
	return TS_OK;
}

void ts_strlist_free(ts_strlist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static const struct opt *find_opt(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/* Append the property lines of a kcat-style file to cfg->rdkafka. */
static ts_err read_rdkafka_file(ts_config *cfg, const char *path, ts_detail *d)
{
	char *text, *line, *next;
	int lineno = 0;
	ts_err err;

	ts_detail sub; /* not d: d->msg as an argument to ts_fail(d) overlaps */

	if ((err = ts_read_file(path, 1 << 20, &text, NULL, &sub)))
		return ts_fail(d, TS_ERR_CONFIG, NULL, "-F %s", sub.msg);
	/* not strtok_r: it would skip blank lines and miscount */
	for (line = text; line; line = next) {
		char *p = line, *end;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		if (!strchr(p, '=') || *p == '=') {
			err = ts_fail(d, TS_ERR_CONFIG, NULL,
				      "%s: line %d: expected property=value",
				      path, lineno);
			goto out;
		}
		if ((err = ts_strlist_add(&cfg->rdkafka, p)))
			goto out;
	}
	err = TS_OK;
out:
	free(text);
	return err;
}

/* Store one option value. origin names where it came from, for errors. */
static ts_err apply(ts_config *cfg, const struct opt *o, const char *val,
		    const char *origin, ts_detail *d)
{
	char *base = (char *)cfg;
	ts_err err = TS_OK;
	ts_detail sub;

	switch (o->kind) {
	case K_STR: {
		char **p = (char **)(base + o->off);
		char *copy = strdup(val);
		if (!copy)
			return TS_ERR_NOMEM;
		free(*p);
		*p = copy;
		return TS_OK;
	}
	case K_LIST:
		return ts_strlist_add((ts_strlist *)(base + o->off), val);
	case K_FLAG:
		*(int *)(base + o->off) = 1;
		return TS_OK;
	case K_INT:
		err = ts_parse_int(val, o->min, o->max,
				   (int64_t *)(base + o->off), &sub);
		break;
	case K_DUR:
		err = ts_parse_duration(val, (int64_t *)(base + o->off), &sub);
		break;
	case K_SIZE:
		err = ts_parse_size(val, (int64_t *)(base + o->off), &sub);
		break;
	case K_DOUBLE: {
		char *end;
		errno = 0;
		double v = strtod(val, &end);
		if (errno || end == val || *end || !(v >= 1.0 && v <= 100.0))
			err = ts_fail(&sub, TS_ERR_CONFIG, NULL,
				      "'%s' is not a number from 1 to 100", val);
		else
			*(double *)(base + o->off) = v;
		break;
	}
	case K_LOGFMT:
		if (strcmp(val, "json") == 0)
			cfg->log_json = 1;
		else if (strcmp(val, "text") == 0)
			cfg->log_json = 0;
		else
			err = ts_fail(&sub, TS_ERR_CONFIG, NULL,
				      "'%s' is not text or json", val);
		break;
	case K_X:
		if (strcmp(val, "list") == 0) {
			cfg->rdkafka_list = 1;
			return TS_OK;
		}
		if (!strchr(val, '=') || *val == '=')
			err = ts_fail(&sub, TS_ERR_CONFIG, NULL,
				      "expected KEY=VALUE");
		else
			return ts_strlist_add(&cfg->rdkafka, val);
		break;
	case K_F:
		err = read_rdkafka_file(cfg, val, &sub);
		if (err == TS_ERR_NOMEM)
			return err;
		if (err)
			return ts_fail(d, err, NULL, "%s", sub.msg);
		return TS_OK;
	case K_VERBOSE:
		cfg->verbosity++;
		return TS_OK;
	case K_QUIET:
		cfg->verbosity = -1;
		return TS_OK;
	case K_HELP:
		cfg->want_help = 1;
		return TS_OK;
	case K_VERSION:
		cfg->want_version = 1;
		return TS_OK;
	case K_CONFIG:
		return TS_OK; /* handled before everything else */
	}
	if (err)
		return ts_fail(d, err, NULL, "%s: %s", origin, sub.msg);
	return TS_OK;
}

static void set_defaults(ts_config *cfg)
{
	cfg->concurrency = 32;
	cfg->retries = 3;
	cfg->backoff_ms = 1000;
	cfg->backoff_factor = 2.0;
	cfg->backoff_max_ms = 60000;
	cfg->drain_timeout_ms = 30000;
	cfg->handler_timeout_ms = 60000;
	cfg->max_body = 1 << 20;
	cfg->max_task = 1000000;
	cfg->produce_timeout_ms = 5000;
	cfg->max_connections = 1024;
	cfg->conn_timeout_ms = 30000;
	cfg->send_timeout_ms = 30000;
}

/* Fill the string defaults after all sources, so "unset" stays NULL. */
static ts_err finish_defaults(ts_config *cfg)
{
	static const struct { size_t off; const char *val; } strs[] = {
		{ F(brokers), "localhost:9092" },
		{ F(topic), "task-topic" },
		{ F(dlq_topic), "task-dlq-topic" },
		{ F(group), "taskstream-workers" },
		{ F(order), "key" },
		{ F(listen), "127.0.0.1:8080" },
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		char **p = (char **)((char *)cfg + strs[i].off);
		if (!*p && !(*p = strdup(strs[i].val)))
			return TS_ERR_NOMEM;
	}
	if (strcmp(cfg->order, "key") && strcmp(cfg->order, "partition") &&
	    strcmp(cfg->order, "none"))
		return TS_ERR_CONFIG;
	return TS_OK;
}

/* A short option that takes no value (-q, -v, ...). */
static int short_is_flag(char c)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].shortopt == c)
			return opts[i].arg == NULL;
	return 0;
}

/* Find -c/--config in argv without disturbing getopt. */
static const char *prescan_config(int argc, char **argv)
{
	const char *found = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) &&
		    i + 1 < argc)
			found = argv[++i];
		else if (strncmp(a, "--config=", 9) == 0)
			found = a + 9;
		else if (a[0] == '-' && a[1] && a[1] != '-') {
			/* flags clustered before c, as getopt takes them:
			 * -cFILE, -qc FILE, -vcFILE */
			const char *p = a + 1;
			while (*p && *p != 'c' && short_is_flag(*p))
				p++;
			if (*p == 'c' && p[1])
				found = p + 1;
			else if (*p == 'c' && i + 1 < argc)
				found = argv[++i];
		}
	}
	return found;
}

static ts_err load_file(ts_config *cfg, const char *path, int must_exist,
			ts_detail *d)
{
	char *text, *line, *next;
	int lineno = 0;
	ts_err err;
	ts_detail sub;

	err = ts_read_file(path, 1 << 20, &text, NULL, &sub);
	if (err) {
		if (!must_exist && access(path, F_OK) != 0)
			return TS_OK;
		return ts_fail(d, TS_ERR_CONFIG, NULL, "config file %s",
			       sub.msg);
	}
	if (!(cfg->config_file = strdup(path))) {
		free(text);
		return TS_ERR_NOMEM;
	}
	for (line = text; line; line = next) {
		char *key, *val, *end;
		const struct opt *o;
		char origin[600];

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		key = line;
		while (isspace((unsigned char)*key))
			key++;
		if (*key == '#' || *key == '\0')
			continue;
		/* " # ..." after a value is a comment too; a '#' inside a
		 * value (no white space before it) is kept. */
		for (char *h = key + 1; *h; h++)
			if (*h == '#' && isspace((unsigned char)h[-1])) {
				*h = '\0';
				break;
			}
		end = key + strlen(key);
		while (end > key && isspace((unsigned char)end[-1]))
			*--end = '\0';
		val = key;
		while (*val && !isspace((unsigned char)*val))
			val++;
		if (*val)
			*val++ = '\0';
		while (isspace((unsigned char)*val))
			val++;
		snprintf(origin, sizeof origin, "%s:%d: %s", path, lineno, key);
		o = find_opt(key);
		if (!o) {
			err = ts_fail(d, TS_ERR_CONFIG, NULL,
				      "%s: unknown option", origin);
			goto out;
		}
		if (!(o->tools & cfg->tool))
			continue; /* another tool's option */
		if (o->flags & ARGV_ONLY) {
			err = ts_fail(d, TS_ERR_CONFIG, NULL,
				      "%s: only allowed on the command line",
				      origin);
			goto out;
		}
		if (!*val && o->kind != K_FLAG) {
			err = ts_fail(d, TS_ERR_CONFIG, NULL,
				      "%s: needs a value", origin);
			goto out;
		}
		if ((err = apply(cfg, o, val, origin, d)))
			goto out;
	}
	err = TS_OK;
out:
	free(text);
	return err;
}

static ts_err load_config_file(ts_config *cfg, const char *explicit_path,
			       ts_detail *d)
{
	char path[4096];
	const char *env;

	if (explicit_path)
		return load_file(cfg, explicit_path, 1, d);
	env = getenv("TS_CONFIG");
	if (env && *env)
		return load_file(cfg, env, 1, d);
	env = getenv("XDG_CONFIG_HOME");
	if (env && *env) {
		snprintf(path, sizeof path, "%s/taskstream/config", env);
	} else {
		env = getenv("HOME");
		if (!env || !*env)
			return TS_OK;
		snprintf(path, sizeof path, "%s/.config/taskstream/config", env);
	}
	return load_file(cfg, path, 0, d);
}

static ts_err load_env(ts_config *cfg, ts_detail *d)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		const char *val;
		char origin[64];
		ts_err err;

		if (!o->env || !(o->tools & cfg->tool))
			continue;
		val = getenv(o->env);
		if (!val || !*val)
			continue;
		snprintf(origin, sizeof origin, "%s", o->env);
		if ((err = apply(cfg, o, val, origin, d)))
			return err;
	}
	return TS_OK;
}

static ts_err load_argv(ts_config *cfg, int argc, char **argv, ts_detail *d)
{
	struct option longopts[NOPTS + 1];
	const struct opt *byindex[NOPTS];
	char shorts[3 * NOPTS + 3];
	size_t nl = 0, ns = 0;
	int c, li;
	ts_err err;

	shorts[ns++] = ':'; /* report missing arguments as ':' */
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		int has_arg;
		if (!(o->tools & cfg->tool))
			continue;
		has_arg = o->arg ? required_argument : no_argument;
		if (strlen(o->name) > 1) {
			longopts[nl] = (struct option){ o->name, has_arg, NULL,
							0 };
			byindex[nl++] = o;
		}
		if (o->shortopt) {
			shorts[ns++] = (char)o->shortopt;
			if (has_arg)
				shorts[ns++] = ':';
		}
	}
	longopts[nl] = (struct option){ 0 };
	shorts[ns] = '\0';

	optind = 0; /* 0, not 1: glibc then drops all state of an earlier scan */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longopts, &li)) != -1) {
		const struct opt *o = NULL;
		char origin[80];

		if (c == '?') {
			if (optopt)
				return ts_fail(d, TS_ERR_USAGE, NULL,
					       "unknown option -%c (see --help)",
					       optopt);
			return ts_fail(d, TS_ERR_USAGE, NULL,
				       "unknown option %s (see --help)",
				       argv[optind - 1]);
		}
		if (c == ':')
			return ts_fail(d, TS_ERR_USAGE, NULL,
				       "option %s needs a value",
				       argv[optind - 1]);
		if (c == 0) {
			o = byindex[li];
		} else {
			for (size_t i = 0; i < NOPTS && !o; i++)
				if (opts[i].shortopt == c &&
				    (opts[i].tools & cfg->tool))
					o = &opts[i];
		}
		if (!o)
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "option table out of step");
		snprintf(origin, sizeof origin, "%s%s",
			 c == 0 ? "--" : "-", c == 0 ? o->name : (char[]){ (char)c, 0 });
		if ((err = apply(cfg, o, optarg, origin, d))) {
			if (err == TS_ERR_CONFIG)
				err = TS_ERR_USAGE;
			return err;
		}
	}
	cfg->argc = argc - optind;
	cfg->argv = argv + optind;
	return TS_OK;
}

ts_err ts_config_load(ts_config *cfg, int tool, const char *name, int argc,
		      char **argv, ts_detail *d)
{
	ts_err err;

	memset(cfg, 0, sizeof *cfg);
	ts_detail_clear(d);
	cfg->tool = tool;
	cfg->tool_name = name;
	set_defaults(cfg);
	if ((err = load_config_file(cfg, prescan_config(argc, argv), d)))
		return err;
	if ((err = load_env(cfg, d)))
		return err;
	if ((err = load_argv(cfg, argc, argv, d)))
		return err;
	err = finish_defaults(cfg);
	if (err == TS_ERR_CONFIG)
		return ts_fail(d, err, NULL,
			       "--order: '%s' is not key, partition or none",
			       cfg->order);
	return err;
}

void ts_config_free(ts_config *cfg)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		char *base = (char *)cfg;
		if (o->kind == K_STR)
			free(*(char **)(base + o->off));
		else if (o->kind == K_LIST)
			ts_strlist_free((ts_strlist *)(base + o->off));
	}
	ts_strlist_free(&cfg->rdkafka);
	free(cfg->rdkafka_file);
	free(cfg->config_file);
	memset(cfg, 0, sizeof *cfg);
}

void ts_config_usage(int tool, FILE *out)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		char left[64];
		if (!(o->tools & tool))
			continue;
		if (strlen(o->name) == 1)
			snprintf(left, sizeof left, "-%s %s", o->name, o->arg);
		else if (o->shortopt)
			snprintf(left, sizeof left, "-%c, --%s%s%s", o->shortopt,
				 o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(out, "  %-30s %s\n", left, o->help);
		if (o->env)
			fprintf(out, "  %-30s   (env %s)\n", "", o->env);
	}
}
