/* err.c - error names and the one mapping onto sysexits. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static const char *const names[TS_ERR__COUNT] = {
	[TS_OK] = "success",
	[TS_ERR_USAGE] = "bad command line",
	[TS_ERR_DATA] = "invalid input",
	[TS_ERR_PERMANENT] = "permanent failure",
	[TS_ERR_INTERNAL] = "internal error",
	[TS_ERR_NOMEM] = "out of memory",
	[TS_ERR_IO] = "input/output error",
	[TS_ERR_TRANSIENT] = "temporary failure",
	[TS_ERR_CONFIG] = "bad configuration",
};

static const int exits[TS_ERR__COUNT] = {
	[TS_OK] = 0,
	[TS_ERR_USAGE] = EX_USAGE,
	[TS_ERR_DATA] = EX_DATAERR,
	[TS_ERR_PERMANENT] = EX_UNAVAILABLE,
	[TS_ERR_INTERNAL] = EX_SOFTWARE,
	[TS_ERR_NOMEM] = EX_SOFTWARE,
	[TS_ERR_IO] = EX_SOFTWARE,
	[TS_ERR_TRANSIENT] = EX_TEMPFAIL,
	[TS_ERR_CONFIG] = EX_CONFIG,
};

/* Higher wins when a run has several outcomes. */
static const int rank[TS_ERR__COUNT] = {
	[TS_OK] = 0,
	[TS_ERR_DATA] = 1,
	[TS_ERR_PERMANENT] = 2,
	[TS_ERR_TRANSIENT] = 3,
	[TS_ERR_USAGE] = 4,
	[TS_ERR_CONFIG] = 5,
	[TS_ERR_IO] = 6,
	[TS_ERR_NOMEM] = 6,
	[TS_ERR_INTERNAL] = 6,
};

const char *ts_strerror(ts_err err)
{
	if ((unsigned)err >= TS_ERR__COUNT)
		return "unknown error";
	return names[err];
}

int ts_err_exit(ts_err err)
{
	if ((unsigned)err >= TS_ERR__COUNT)
		return EX_SOFTWARE;
	return exits[err];
}

ts_err ts_err_worst(ts_err a, ts_err b)
{
	if ((unsigned)a >= TS_ERR__COUNT)
		return a;
	if ((unsigned)b >= TS_ERR__COUNT)
		return b;
	return rank[b] > rank[a] ? b : a;
}

void ts_detail_clear(ts_detail *d)
{
	if (d) {
		d->field[0] = '\0';
		d->msg[0] = '\0';
	}
}

ts_err ts_fail(ts_detail *d, ts_err err, const char *field, const char *fmt, ...)
{
	char f[sizeof d->field], m[sizeof d->msg];
	va_list ap;

	if (!d)
		return err;
	/* Format into locals first: callers pass d->msg or d->field as an
	 * argument ("--listen %s", d->msg), and printing a buffer into
	 * itself is undefined (valgrind: overlap in mempcpy). */
	snprintf(f, sizeof f, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	memcpy(d->field, f, sizeof f);
	memcpy(d->msg, m, sizeof m);
	return err;
}
