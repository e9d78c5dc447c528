/* metrics.h - Prometheus metrics: counters, gauges and histograms with label
 * sets, rendered as the text exposition format 0.0.4, plus a tiny HTTP
 * server for GET /metrics and GET /healthz (libmicrohttpd) for tools that
 * have no HTTP server of their own.
 *
 * Model (as in the Prometheus client libraries):
 *   - a registry (ts_metrics) holds metric families;
 *   - a family (ts_metric) has a name, help text, a type and label names;
 *     every name must start with "taskstream_" (DESIGN.md);
 *   - a series (ts_series) is one set of label values of a family. Look it
 *     up once with ts_metric_with() and keep the pointer: updating a series
 *     is lock-free (C11 atomics). Series live as long as the registry.
 *
 * Threads: everything here is thread-safe. Registration and series lookup
 * take a mutex; updates are atomic; rendering takes the mutex of each family
 * in turn (values are read atomically; a histogram's buckets, sum and count
 * may be from slightly different instants, which Prometheus tolerates).
 *
 * Every update function accepts a NULL series and does nothing, so a failed
 * lookup (out of memory, too many series) never needs an error path in hot
 * code.
 *
 * Example:
 *   ts_metrics *reg; ts_metric *req;
 *   ts_metrics_new(&reg);
 *   ts_metrics_counter(reg, "taskstream_http_requests_total",
 *                      "HTTP requests by route and status code.",
 *                      "route,code", &req, &d);
 *   ts_series_inc(ts_metric_with(req, "/tasks", "202"));
 */
#ifndef TS_METRICS_H
#define TS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"
#include "util.h"

typedef struct ts_metrics ts_metrics;   /* a registry */
typedef struct ts_metric ts_metric;     /* a family */
typedef struct ts_series ts_series;     /* one label set of a family */

/* Most label names one family may have, and most series (label sets) one
 * family keeps; ts_metric_with() returns NULL past it, so a label fed from
 * outside (a bad route) cannot eat memory. */
#define TS_METRICS_MAX_LABELS 8
#define TS_METRICS_MAX_SERIES 1000

/* Buckets in seconds for request and produce latencies: 0.5 ms to 10 s. */
extern const double ts_metrics_latency_buckets[];
extern const size_t ts_metrics_latency_nbuckets;

/* A new, empty registry; free with ts_metrics_free().
 * Errors: TS_ERR_NOMEM. */
ts_err ts_metrics_new(ts_metrics **out);

/* Free the registry, its families and series. Stop any server using it
 * first. NULL is fine. */
void ts_metrics_free(ts_metrics *reg);

/* Register a family. name: [a-zA-Z_:][a-zA-Z0-9_:]* starting with
 * "taskstream_" (counters should end in "_total"); help: one line of text
 * (escaped on output); labels: comma-separated label names ("route,code"),
 * or NULL / "" for none. A family without labels has its one series created
 * at once, so it is rendered (as 0) before the first update.
 * The family is owned by the registry; *out stays valid until
 * ts_metrics_free().
 * Errors: TS_ERR_INTERNAL for a bad or duplicate name or label name (a
 * programming error; d says which), TS_ERR_NOMEM. */
ts_err ts_metrics_counter(ts_metrics *reg, const char *name, const char *help,
			  const char *labels, ts_metric **out, ts_detail *d);
ts_err ts_metrics_gauge(ts_metrics *reg, const char *name, const char *help,
			const char *labels, ts_metric **out, ts_detail *d);

/* A histogram with the given upper bounds (strictly increasing, finite;
 * +Inf is added by itself). buckets may be NULL to use
 * ts_metrics_latency_buckets. The bounds are copied. At most 64 bounds.
 * Errors: as ts_metrics_counter, and TS_ERR_INTERNAL for bad bounds. */
ts_err ts_metrics_histogram(ts_metrics *reg, const char *name,
			    const char *help, const char *labels,
			    const double *buckets, size_t nbuckets,
			    ts_metric **out, ts_detail *d);

/* A gauge without labels whose value is computed at each scrape by
 * fn(ctx) (queue depths, in-flight counts kept elsewhere). fn is called
 * from the rendering thread with no lock of this module held.
 * Errors: as ts_metrics_counter. */
ts_err ts_metrics_gauge_fn(ts_metrics *reg, const char *name,
			   const char *help, double (*fn)(void *ctx),
			   void *ctx, ts_detail *d);

/* The series of family m for the given label values, one const char * per
 * label name, in the order the names were registered (a family without
 * labels takes none). Created on first use. Values may be any UTF-8 text;
 * they are escaped on output. Owned by the registry.
 * Returns NULL when m is NULL, out of memory, or the family already holds
 * TS_METRICS_MAX_SERIES series. */
ts_series *ts_metric_with(ts_metric *m, ...);

/* The same with the values in an array of m's label count. */
ts_series *ts_metric_withv(ts_metric *m, const char *const *values);

/* Counter or gauge: add v (counters: v must be >= 0; negative values are
 * ignored for counters). */
void ts_series_add(ts_series *s, double v);
void ts_series_inc(ts_series *s);
/* Gauge: subtract 1, or set a value. Ignored for counters and histograms. */
void ts_series_dec(ts_series *s);
void ts_series_set(ts_series *s, double v);
/* Histogram: record one observation (seconds, for latencies). */
void ts_series_observe(ts_series *s, double v);

/* Current value of a counter or gauge series, or the count of a histogram
 * series (tests, health checks). 0 for NULL. */
double ts_series_value(const ts_series *s);

/* Append every family, in registration order, to out as Prometheus text
 * format 0.0.4: "# HELP", "# TYPE", then one line per series (histograms:
 * cumulative _bucket{le=..} lines, _sum and _count).
 * Errors: TS_ERR_NOMEM (out keeps what was appended). */
ts_err ts_metrics_render(ts_metrics *reg, ts_buf *out);

/* The Content-Type of what ts_metrics_render() writes. */
#define TS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Parse "ADDR:PORT" ("127.0.0.1:9100", "[::1]:9100", ":9100" or
 * "*:9100" for every IPv4 address, "localhost:9100") into sa/len.
 * Port 0 asks the kernel for a free port.
 * Errors: TS_ERR_CONFIG with the reason in d. */
ts_err ts_metrics_parse_addr(const char *addr, struct sockaddr_storage *sa,
			     socklen_t *len, ts_detail *d);

/* Health callback for the server: return non-zero when healthy. It may
 * write a short reason (no secrets) into why (size bytes, NUL-terminated),
 * shown in the /healthz body. Called from the server's thread. */
typedef int (*ts_metrics_health_fn)(void *ctx, char *why, size_t size);

typedef struct ts_metrics_server ts_metrics_server;

/* Serve reg on addr (ts_metrics_parse_addr syntax) from an internal thread:
 *   GET /metrics  200, the rendering, TS_METRICS_CONTENT_TYPE
 *   GET /healthz  200 {"status":"ok"} or 503 {"status":"unavailable",
 *                 "reason":..} (healthz may be NULL: always healthy)
 *   anything else 404 (405 with Allow: GET, HEAD for another method on
 *                 those paths)
 * Errors: TS_ERR_CONFIG (bad address, cannot bind: d says why),
 *         TS_ERR_NOMEM. */
ts_err ts_metrics_serve(ts_metrics *reg, const char *addr,
			ts_metrics_health_fn healthz, void *ctx,
			ts_metrics_server **out, ts_detail *d);

/* The port the server listens on (useful after asking for port 0). */
int ts_metrics_server_port(const ts_metrics_server *srv);

/* Open a listening TCP socket (SO_REUSEADDR, close-on-exec, non-blocking)
 * on addr (ts_metrics_parse_addr syntax), for a libmicrohttpd daemon's
 * MHD_OPTION_LISTEN_SOCKET: binding here rather than in the daemon lets the
 * caller say why it failed. *port gets the bound port (may be NULL).
 * Errors: TS_ERR_CONFIG ("127.0.0.1:80: Permission denied"). */
ts_err ts_metrics_listen(const char *addr, int backlog, int *fd, int *port,
			 ts_detail *d);

/* Stop the server and free it (waits for its thread). NULL is fine. */
void ts_metrics_server_stop(ts_metrics_server *srv);

#endif
