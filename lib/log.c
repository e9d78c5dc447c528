/* log.c - one stderr line per message, text or JSON. */
#include "log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static const char *log_tool = "taskstream";
static ts_log_level log_level = TS_LOG_WARN;
static int log_json;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void ts_log_init(const char *tool)
{
	log_tool = tool;
	log_level = TS_LOG_WARN;
	log_json = 0;
}

void ts_log_set_level(ts_log_level level)
{
	/* as int: the enum is unsigned, so "WARN + verbosity" below 0 would
	 * otherwise wrap round to DEBUG, the opposite of quiet */
	if ((int)level < TS_LOG_ERROR)
		level = TS_LOG_ERROR;
	if ((int)level > TS_LOG_DEBUG)
		level = TS_LOG_DEBUG;
	log_level = level;
}

ts_log_level ts_log_get_level(void)
{
	return log_level;
}

void ts_log_set_json(int json)
{
	log_json = json;
}

const char *ts_log_tool(void)
{
	return log_tool;
}

static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void emit_json(ts_log_level level, const char *msg)
{
	char ts[40];
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (!o)
		return;
	ts_now_rfc3339(ts, sizeof ts);
	cJSON_AddStringToObject(o, "ts", ts);
	cJSON_AddStringToObject(o, "level", level_names[level]);
	cJSON_AddStringToObject(o, "tool", log_tool);
	cJSON_AddStringToObject(o, "msg", msg);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return;
	size_t n = strlen(s);
	s[n] = '\n'; /* replaces the NUL; we pass the length explicitly */
	write_all(s, n + 1);
	cJSON_free(s);
}

void ts_log(ts_log_level level, const char *fmt, ...)
{
	char msg[2048];
	char line[2200];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One line per message, whatever the caller passed in. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_json) {
		emit_json(level, msg);
		return;
	}
	n = snprintf(line, sizeof line, "%s: %s%s\n", log_tool,
		     level == TS_LOG_WARN ? "warning: " : "", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	write_all(line, (size_t)n);
}

void ts_logv(ts_log_level level, const char *prefix, const char *fmt,
	     va_list ap)
{
	char msg[1024];
	size_t n;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	ts_log(level, "%s: %s", prefix, msg);
}
