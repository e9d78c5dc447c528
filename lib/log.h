/* log.h - diagnostics on stderr, one line each: `ts-TOOL: message`.
 *
 * stdout is for data; everything a person reads goes through here. -q lowers
 * the level (errors only), -v raises it (info, then debug). With
 * --log-format json each line is a JSON object instead
 * ({"ts":..,"level":..,"tool":..,"msg":..}). Thread-safe: each line is
 * written with one write(2).
 */
#ifndef TS_LOG_H
#define TS_LOG_H

#include <stdarg.h>

typedef enum ts_log_level {
	TS_LOG_ERROR = 0,
	TS_LOG_WARN = 1,
	TS_LOG_INFO = 2,
	TS_LOG_DEBUG = 3,
} ts_log_level;

/* Name the tool ("ts-submit"; the pointer is kept, pass a literal) and set
 * the defaults: level WARN, text format. */
void ts_log_init(const char *tool);

/* Messages above level are dropped. */
void ts_log_set_level(ts_log_level level);
ts_log_level ts_log_get_level(void);

/* json != 0: JSON lines instead of text. */
void ts_log_set_json(int json);

/* The tool name given to ts_log_init(). */
const char *ts_log_tool(void);

void ts_log(ts_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Log a message that arrives as a format and va_list from a library
 * callback (libmicrohttpd's MHD_OPTION_EXTERNAL_LOGGER, say), as
 * "prefix: message", with its trailing line ends dropped. */
void ts_logv(ts_log_level level, const char *prefix, const char *fmt,
	     va_list ap) __attribute__((format(printf, 3, 0)));

#define ts_log_error(...) ts_log(TS_LOG_ERROR, __VA_ARGS__)
#define ts_log_warn(...) ts_log(TS_LOG_WARN, __VA_ARGS__)
#define ts_log_info(...) ts_log(TS_LOG_INFO, __VA_ARGS__)
#define ts_log_debug(...) ts_log(TS_LOG_DEBUG, __VA_ARGS__)

#endif
