/* config.h - one configuration struct for every tool, one loader.
 *
 * Precedence (DESIGN.md): built-in default < config file (-c FILE, else
 * $TS_CONFIG, else $XDG_CONFIG_HOME/taskstream/config, else
 * ~/.config/taskstream/config) < TS_* environment (empty = unset) < argv.
 *
 * A config file holds one long option per line without the dashes
 * ("brokers k1:9092", "X security.protocol=SASL_SSL"); '#' starts a comment.
 * A key that another TaskStream tool knows is ignored; a key no tool knows
 * is an error naming the file and line.
 *
 * Every option lives in one table in config.c (name, short letter, env
 * variable, which tools take it, how to store it). Adding an option means
 * adding a field here and a row there.
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* The tools, as a bit mask in the option table. */
enum {
	TS_TOOL_SUBMIT = 1 << 0,
	TS_TOOL_WORKER = 1 << 1,
	TS_TOOL_SEND = 1 << 2,
	TS_TOOL_HTTPD = 1 << 3,
	TS_TOOL_ALL = 0xff,
};

/* A list of strings (repeatable options: -X, --handler, --to ...). */
typedef struct ts_strlist {
	char **v;
	int n;
} ts_strlist;

typedef struct ts_config {
	int tool;                 /* one TS_TOOL_* bit */
	const char *tool_name;    /* "ts-submit" */

	/* common */
	char *config_file;        /* the file that was read, or NULL */
	char *brokers;
	char *topic;
	char *dlq_topic;
	ts_strlist rdkafka;       /* "key=value", in order: -F file first, then -X */
	char *rdkafka_file;       /* -F */
	int rdkafka_list;         /* -X list given */
	char *email_url;
	char *sms_url;
	char *from;
	int verbosity;            /* 0 normal, <0 quiet, >0 verbose */
	int log_json;

	/* ts-submit */
	char *rejects;
	char *type;
	int dry_run;
	int64_t max_task;         /* bytes; default 1000000 (Kafka's limit) */

	/* ts-worker */
	char *group;
	ts_strlist handlers;      /* "TYPE=COMMAND" or "TYPE=http(s)://..." */
	int64_t concurrency;      /* default 32 */
	char *order;              /* key | partition | none */
	int64_t retries;          /* default 3 */
	int64_t backoff_ms;       /* default 1000 */
	double backoff_factor;    /* default 2 */
	int64_t backoff_max_ms;   /* default 60000 */
	int64_t drain_timeout_ms; /* default 30000 */
	int64_t handler_timeout_ms; /* default 60000 */
	int64_t exit_idle_ms;     /* 0: never */
	char *metrics;            /* ADDR:PORT or NULL */

	/* ts-send */
	ts_strlist to, cc, bcc, vars;
	char *reply_to;
	char *subject;
	char *body;
	char *body_file;
	char *html_file;
	char *mobile;
	char *message;
	int json;

	/* ts-httpd */
	char *listen;             /* default 127.0.0.1:8080 */
	char *token_file;
	int64_t max_body;         /* default 1 MiB */
	int64_t produce_timeout_ms; /* default 5000 */
	char *tls_cert;
	char *tls_key;
	int64_t max_connections;  /* default 1024 */
	int64_t conn_timeout_ms;  /* default 30000 */

	/* shared by delivery tools */
	int64_t send_timeout_ms;  /* transport timeout; default 30000 */

	/* what is left of argv after the options (not owned) */
	int argc;
	char **argv;

	/* set by the loader when -h or -V was given: print and exit 0 */
	int want_help;
	int want_version;
} ts_config;

/* Fill cfg for tool (TS_TOOL_*) named name from defaults, the config file,
 * the environment and argv (in that order). Positional arguments are left
 * in cfg->argc/argv. Diagnostics go in d, with the file and line or the
 * option named.
 * Errors: TS_ERR_USAGE (bad command line), TS_ERR_CONFIG (bad file,
 * environment value or option value), TS_ERR_NOMEM. */
ts_err ts_config_load(ts_config *cfg, int tool, const char *name, int argc,
		      char **argv, ts_detail *d);

/* Free everything cfg owns. */
void ts_config_free(ts_config *cfg);

/* Print the options that tool takes, one per line, for --help. Never prints
 * a value, so no secret can leak. */
void ts_config_usage(int tool, FILE *out);

/* Append a copy of s to l. TS_ERR_NOMEM on failure. */
ts_err ts_strlist_add(ts_strlist *l, const char *s);
void ts_strlist_free(ts_strlist *l);

/* The TaskStream version string. */
extern const char ts_version[];

#endif
