/* tool.h - what every tool's main() does first and last.
 *
 * A tool's main is: ts_tool_start(), the tool's own work, ts_tool_end().
 */
#ifndef TS_TOOL_H
#define TS_TOOL_H

#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "err.h"

/* Set by SIGINT/SIGTERM (after ts_tool_signals()); the main loop polls it. */
extern volatile sig_atomic_t ts_stop;

/* Load the configuration and set up logging for tool (TS_TOOL_*) named name.
 * Handles -h (usage line `synopsis`, the option list, to out), -V and
 * -X list. Returns -1 when the tool should go on; otherwise the exit status
 * to return at once (0 after help or version, or the sysexits code of a
 * configuration error, which has been logged). cfg is filled either way and
 * must be freed with ts_config_free(). */
int ts_tool_start(ts_config *cfg, int tool, const char *name,
		  const char *synopsis, int argc, char **argv, FILE *out);

/* SIGINT and SIGTERM set ts_stop (and nothing else); SIGPIPE is ignored so
 * a closed stdout shows up as a write error. */
void ts_tool_signals(void);

#endif
