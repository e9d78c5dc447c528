/* tool.c - common start-up of every tool. */
#include "tool.h"

#include <string.h>

#include "kafka.h"
#include "log.h"

volatile sig_atomic_t ts_stop;

static void on_signal(int sig)
{
	(void)sig;
	ts_stop = 1;
}

void ts_tool_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int ts_tool_start(ts_config *cfg, int tool, const char *name,
		  const char *synopsis, int argc, char **argv, FILE *out)
{
	ts_detail d;
	ts_err err;

	ts_log_init(name);
	err = ts_config_load(cfg, tool, name, argc, argv, &d);
	if (cfg->verbosity < 0)
		ts_log_set_level(TS_LOG_ERROR);
	else
		ts_log_set_level((ts_log_level)(TS_LOG_WARN + cfg->verbosity));
	ts_log_set_json(cfg->log_json);
	if (cfg->want_help) {
		fprintf(out, "usage: %s\n\noptions:\n", synopsis);
		ts_config_usage(tool, out);
		fprintf(out, "\nSee %s(1) for the environment, exit codes and examples.\n",
			name);
		return 0;
	}
	if (cfg->want_version) {
		fprintf(out, "%s %s (librdkafka %s)\n", name, ts_version,
			rd_kafka_version_str());
		return 0;
	}
	if (err) {
		ts_log_error("%s", d.msg);
		if (err == TS_ERR_USAGE)
			ts_log_error("usage: %s", synopsis);
		return ts_err_exit(err);
	}
	if (cfg->rdkafka_list) {
		ts_kafka_list_properties(out);
		return 0;
	}
	return -1;
}
