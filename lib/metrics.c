/* metrics.c - Prometheus registry, text exposition 0.0.4, /metrics server. */
#include "metrics.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

const double ts_metrics_latency_buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t ts_metrics_latency_nbuckets =
	sizeof ts_metrics_latency_buckets / sizeof ts_metrics_latency_buckets[0];

#define MAX_BOUNDS 64
#define PREFIX "taskstream_"

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_GAUGE_FN };

struct ts_series {
	ts_metric *m;
	struct ts_series *next;
	char **values;              /* m->nlabels copies */
	_Atomic uint64_t val;       /* double bits: the value, or a histogram's sum */
	_Atomic uint64_t bucket[];  /* histogram: nbounds + 1 (last: above all) */
};

struct ts_metric {
	struct ts_metric *next;
	enum kind kind;
	char *name;
	char *help;
	int nlabels;
	char *labels[TS_METRICS_MAX_LABELS];
	double *bounds;
	size_t nbounds;
	double (*fn)(void *);
	void *ctx;
	pthread_mutex_t lock;       /* guards the series list */
	ts_series *head, *tail;
	size_t nseries;
};

struct ts_metrics {
	pthread_mutex_t lock;       /* guards the family list */
	ts_metric *head, *tail;
};

/* ---- atomics on doubles ---- */

static double bits_to_double(uint64_t u)
{
	double v;
	memcpy(&v, &u, sizeof v);
	return v;
}

static uint64_t double_to_bits(double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof u);
	return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		p, &old, double_to_bits(bits_to_double(old) + v),
		memory_order_relaxed, memory_order_relaxed))
		;
}

/* ---- registration ---- */

ts_err ts_metrics_new(ts_metrics **out)
{
	ts_metrics *reg = calloc(1, sizeof *reg);

	if (!reg)
		return TS_ERR_NOMEM;
	pthread_mutex_init(&reg->lock, NULL);
	*out = reg;
	return TS_OK;
}

static void series_free(ts_series *s, int nlabels)
{
	for (int i = 0; s->values && i < nlabels; i++)
		free(s->values[i]);
	free(s->values);
	free(s);
}

static void metric_free(ts_metric *m)
{
	ts_series *s, *next;

	for (s = m->head; s; s = next) {
		next = s->next;
		series_free(s, m->nlabels);
	}
	for (int i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	pthread_mutex_destroy(&m->lock);
	free(m->bounds);
	free(m->name);
	free(m->help);
	free(m);
}

void ts_metrics_free(ts_metrics *reg)
{
	ts_metric *m, *next;

	if (!reg)
		return;
	for (m = reg->head; m; m = next) {
		next = m->next;
		metric_free(m);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static int valid_name(const char *s, int colon)
{
	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++) {
		int c = (unsigned char)*p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 c == '_' || (colon && c == ':') ||
			 (p != s && c >= '0' && c <= '9');
		if (!ok)
			return 0;
	}
	return 1;
}

/* Split "a,b" into m->labels. */
static ts_err parse_labels(ts_metric *m, const char *labels, ts_detail *d)
{
	const char *p = labels;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *name;

		if (m->nlabels == TS_METRICS_MAX_LABELS)
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "%s: more than %d labels", m->name,
				       TS_METRICS_MAX_LABELS);
		if (!(name = strndup(p, n)))
			return TS_ERR_NOMEM;
		m->labels[m->nlabels++] = name;
		if (!valid_name(name, 0) || strncmp(name, "__", 2) == 0 ||
		    (m->kind == K_HISTOGRAM && strcmp(name, "le") == 0))
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "%s: bad label name '%s'", m->name, name);
		for (int i = 0; i < m->nlabels - 1; i++)
			if (strcmp(m->labels[i], name) == 0)
				return ts_fail(d, TS_ERR_INTERNAL, NULL,
					       "%s: label '%s' twice", m->name,
					       name);
		p = comma ? comma + 1 : NULL;
	}
	return TS_OK;
}

static ts_err set_bounds(ts_metric *m, const double *b, size_t n,
			 ts_detail *d)
{
	if (!b) {
		b = ts_metrics_latency_buckets;
		n = ts_metrics_latency_nbuckets;
	}
	if (n == 0 || n > MAX_BOUNDS)
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "%s: 1 to %d buckets", m->name, MAX_BOUNDS);
	for (size_t i = 0; i < n; i++)
		if (!isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1]))
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "%s: buckets must be finite and increasing",
				       m->name);
	if (!(m->bounds = malloc(n * sizeof *b)))
		return TS_ERR_NOMEM;
	memcpy(m->bounds, b, n * sizeof *b);
	m->nbounds = n;
	return TS_OK;
}

/* Link m into reg unless its name is taken. */
static ts_err link_family(ts_metrics *reg, ts_metric *m, ts_detail *d)
{
	ts_err err = TS_OK;

	pthread_mutex_lock(&reg->lock);
	for (ts_metric *o = reg->head; o; o = o->next)
		if (strcmp(o->name, m->name) == 0) {
			err = ts_fail(d, TS_ERR_INTERNAL, NULL,
				      "%s: registered twice", m->name);
			goto out;
		}
	if (reg->tail)
		reg->tail->next = m;
	else
		reg->head = m;
	reg->tail = m;
out:
	pthread_mutex_unlock(&reg->lock);
	return err;
}

static ts_err add_family(ts_metrics *reg, enum kind kind, const char *name,
			 const char *help, const char *labels,
			 const double *buckets, size_t nbuckets,
			 ts_metric **out, ts_detail *d)
{
	ts_metric *m;
	ts_err err;

	ts_detail_clear(d);
	if (!valid_name(name, 1) || strncmp(name, PREFIX, strlen(PREFIX)) != 0)
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "bad metric name '%s' (must match "
			       "taskstream_[a-zA-Z0-9_:]*)", name ? name : "");
	if (!(m = calloc(1, sizeof *m)))
		return TS_ERR_NOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->kind = kind;
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	if (!m->name || !m->help) {
		err = TS_ERR_NOMEM;
		goto fail;
	}
	if ((err = parse_labels(m, labels, d)))
		goto fail;
	if (kind == K_HISTOGRAM &&
	    (err = set_bounds(m, buckets, nbuckets, d)))
		goto fail;
	if ((err = link_family(reg, m, d)))
		goto fail;
	/* A family without labels is shown from the start. */
	if (m->nlabels == 0 && kind != K_GAUGE_FN)
		ts_metric_withv(m, NULL);
	if (out)
		*out = m;
	return TS_OK;
fail:
	metric_free(m);
	return err;
}

ts_err ts_metrics_counter(ts_metrics *reg, const char *name, const char *help,
			  const char *labels, ts_metric **out, ts_detail *d)
{
	return add_family(reg, K_COUNTER, name, help, labels, NULL, 0, out, d);
}

ts_err ts_metrics_gauge(ts_metrics *reg, const char *name, const char *help,
			const char *labels, ts_metric **out, ts_detail *d)
{
	return add_family(reg, K_GAUGE, name, help, labels, NULL, 0, out, d);
}

ts_err ts_metrics_histogram(ts_metrics *reg, const char *name,
			    const char *help, const char *labels,
			    const double *buckets, size_t nbuckets,
			    ts_metric **out, ts_detail *d)
{
	return add_family(reg, K_HISTOGRAM, name, help, labels, buckets,
			  nbuckets, out, d);
}

ts_err ts_metrics_gauge_fn(ts_metrics *reg, const char *name,
			   const char *help, double (*fn)(void *ctx),
			   void *ctx, ts_detail *d)
{
	ts_metric *m;
	ts_err err;

	/* fn and ctx are set before the family becomes visible. */
	if ((err = add_family(reg, K_GAUGE_FN, name, help, NULL, NULL, 0, &m,
			      d)))
		return err;
	pthread_mutex_lock(&m->lock);
	m->fn = fn;
	m->ctx = ctx;
	pthread_mutex_unlock(&m->lock);
	return TS_OK;
}

/* ---- series ---- */

static int same_values(const ts_series *s, const char *const *values, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
			return 0;
	return 1;
}

static ts_series *series_new(ts_metric *m, const char *const *values)
{
	size_t nb = m->kind == K_HISTOGRAM ? m->nbounds + 1 : 0;
	ts_series *s = calloc(1, sizeof *s + nb * sizeof s->bucket[0]);

	if (!s)
		return NULL;
	s->m = m;
	atomic_init(&s->val, double_to_bits(0));
	for (size_t i = 0; i < nb; i++)
		atomic_init(&s->bucket[i], 0);
	if (m->nlabels == 0)
		return s;
	if (!(s->values = calloc((size_t)m->nlabels, sizeof *s->values)))
		goto fail;
	for (int i = 0; i < m->nlabels; i++)
		if (!(s->values[i] = strdup(values[i] ? values[i] : "")))
			goto fail;
	return s;
fail:
	series_free(s, m->nlabels);
	return NULL;
}

ts_series *ts_metric_withv(ts_metric *m, const char *const *values)
{
	ts_series *s;

	if (!m || m->kind == K_GAUGE_FN || (m->nlabels > 0 && !values))
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (s = m->head; s; s = s->next)
		if (same_values(s, values, m->nlabels))
			goto out;
	if (m->nseries >= TS_METRICS_MAX_SERIES ||
	    !(s = series_new(m, values)))
		goto out;
	if (m->tail)
		m->tail->next = s;
	else
		m->head = s;
	m->tail = s;
	m->nseries++;
out:
	pthread_mutex_unlock(&m->lock);
	return s;
}

ts_series *ts_metric_with(ts_metric *m, ...)
{
	const char *values[TS_METRICS_MAX_LABELS];
	va_list ap;

	if (!m)
		return NULL;
	va_start(ap, m);
	for (int i = 0; i < m->nlabels; i++)
		values[i] = va_arg(ap, const char *);
	va_end(ap);
	return ts_metric_withv(m, values);
}

void ts_series_add(ts_series *s, double v)
{
	if (!s || s->m->kind == K_HISTOGRAM ||
	    (s->m->kind == K_COUNTER && !(v >= 0)))
		return;
	atomic_add_double(&s->val, v);
}

void ts_series_inc(ts_series *s)
{
	ts_series_add(s, 1);
}

void ts_series_dec(ts_series *s)
{
	if (s && s->m->kind == K_GAUGE)
		atomic_add_double(&s->val, -1);
}

void ts_series_set(ts_series *s, double v)
{
	if (s && s->m->kind == K_GAUGE)
		atomic_store_explicit(&s->val, double_to_bits(v),
				      memory_order_relaxed);
}

void ts_series_observe(ts_series *s, double v)
{
	const ts_metric *m;
	size_t i = 0;

	if (!s || s->m->kind != K_HISTOGRAM || isnan(v))
		return;
	m = s->m;
	/* Few bounds: a linear scan beats a binary search in practice. */
	while (i < m->nbounds && v > m->bounds[i])
		i++;
	atomic_fetch_add_explicit(&s->bucket[i], 1, memory_order_relaxed);
	atomic_add_double(&s->val, v);
}

static uint64_t histogram_count(const ts_series *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i <= s->m->nbounds; i++)
		n += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
	return n;
}

double ts_series_value(const ts_series *s)
{
	if (!s)
		return 0;
	if (s->m->kind == K_HISTOGRAM)
		return (double)histogram_count(s);
	return bits_to_double(atomic_load_explicit(&s->val,
						   memory_order_relaxed));
}

/* ---- text exposition format 0.0.4 ---- */

/* The shortest text that reads back as v; Prometheus spellings of the
 * special values. */
static void format_double(char *buf, size_t size, double v)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Whole numbers (counts) in full, never "2e+05". */
	if (fabs(v) < 1e15 && v == floor(v)) {
		snprintf(buf, size, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* Escape for a label value (quote too) or HELP text (quote false). */
static ts_err append_escaped(ts_buf *out, const char *s, int quote)
{
	ts_err err = TS_OK;

	for (const char *p = s; *p && !err; p++) {
		if (*p == '\\')
			err = ts_buf_append(out, "\\\\", 2);
		else if (*p == '\n')
			err = ts_buf_append(out, "\\n", 2);
		else if (*p == '"' && quote)
			err = ts_buf_append(out, "\\\"", 2);
		else
			err = ts_buf_append(out, p, 1);
	}
	return err;
}

/* name{labels[,le="x"]} value\n */
static ts_err append_sample(ts_buf *out, const ts_metric *m,
			    const ts_series *s, const char *suffix,
			    const char *le, double v)
{
	char num[40];
	ts_err err;
	int n = 0;

	if ((err = ts_buf_appendf(out, "%s%s", m->name, suffix)))
		return err;
	for (int i = 0; i < m->nlabels; i++, n++) {
		if ((err = ts_buf_appendf(out, "%s%s=\"", n ? "," : "{",
					  m->labels[i])) ||
		    (err = append_escaped(out, s->values[i], 1)) ||
		    (err = ts_buf_append(out, "\"", 1)))
			return err;
	}
	if (le && (err = ts_buf_appendf(out, "%sle=\"%s\"", n++ ? "," : "{",
					le)))
		return err;
	format_double(num, sizeof num, v);
	return ts_buf_appendf(out, "%s %s\n", n ? "}" : "", num);
}

static ts_err render_histogram(ts_buf *out, const ts_metric *m,
			       const ts_series *s)
{
	uint64_t cum = 0;
	double sum;
	char le[40];
	ts_err err;

	for (size_t i = 0; i <= m->nbounds; i++) {
		cum += atomic_load_explicit(&s->bucket[i],
					    memory_order_relaxed);
		if (i < m->nbounds)
			format_double(le, sizeof le, m->bounds[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		if ((err = append_sample(out, m, s, "_bucket", le,
					 (double)cum)))
			return err;
	}
	sum = bits_to_double(atomic_load_explicit(&s->val,
						  memory_order_relaxed));
	if ((err = append_sample(out, m, s, "_sum", NULL, sum)))
		return err;
	return append_sample(out, m, s, "_count", NULL, (double)cum);
}

static const char *type_name(enum kind k)
{
	switch (k) {
	case K_COUNTER:
		return "counter";
	case K_HISTOGRAM:
		return "histogram";
	default:
		return "gauge";
	}
}

static ts_err render_family(ts_buf *out, ts_metric *m)
{
	ts_err err;

	if ((err = ts_buf_appendf(out, "# HELP %s ", m->name)) ||
	    (err = append_escaped(out, m->help, 0)) ||
	    (err = ts_buf_appendf(out, "\n# TYPE %s %s\n", m->name,
				  type_name(m->kind))))
		return err;
	if (m->kind == K_GAUGE_FN) {
		double (*fn)(void *);
		void *ctx;
		pthread_mutex_lock(&m->lock);
		fn = m->fn;
		ctx = m->ctx;
		pthread_mutex_unlock(&m->lock);
		return append_sample(out, m, NULL, "", NULL, fn ? fn(ctx) : 0);
	}
	pthread_mutex_lock(&m->lock);
	for (ts_series *s = m->head; s && !err; s = s->next)
		err = m->kind == K_HISTOGRAM ?
			render_histogram(out, m, s) :
			append_sample(out, m, s, "", NULL, ts_series_value(s));
	pthread_mutex_unlock(&m->lock);
	return err;
}

ts_err ts_metrics_render(ts_metrics *reg, ts_buf *out)
{
	ts_metric *m;
	ts_err err = TS_OK;

	/* Families are only ever appended, so the list can be walked without
	 * the registry lock once its head is read. */
	pthread_mutex_lock(&reg->lock);
	m = reg->head;
	pthread_mutex_unlock(&reg->lock);
	for (; m && !err; m = m->next)
		err = render_family(out, m);
	if (!err && !out->data)
		err = ts_buf_append(out, "", 0);
	return err;
}

/* ---- addresses and sockets ---- */

ts_err ts_metrics_parse_addr(const char *addr, struct sockaddr_storage *sa,
			     socklen_t *len, ts_detail *d)
{
	char host[256];
	const char *colon, *port, *h = addr;
	size_t hlen;
	struct addrinfo hints, *res = NULL;
	int64_t portnum;
	int rc;

	if (!addr || !(colon = strrchr(addr, ':')))
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s: expected ADDR:PORT", addr ? addr : "");
	port = colon + 1;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h = addr + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof host)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: host too long",
			       addr);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (ts_parse_int(port, 0, 65535, &portnum, d))
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: bad port '%s'",
			       addr, port);
	if (!host[0] || strcmp(host, "*") == 0)
		snprintf(host, sizeof host, "0.0.0.0");
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: %s", addr,
			       gai_strerror(rc));
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return TS_OK;
}

ts_err ts_metrics_listen(const char *addr, int backlog, int *fdp, int *port,
			 ts_detail *d)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int fd, one = 1;
	ts_err err;

	if ((err = ts_metrics_parse_addr(addr, &sa, &len, d)))
		return err;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: %s", addr,
			       strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(fd, backlog > 0 ? backlog : 511) < 0) {
		int e = errno;
		close(fd);
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: %s", addr,
			       strerror(e));
	}
	if (port) {
		len = sizeof sa;
		getsockname(fd, (struct sockaddr *)&sa, &len);
		*port = sa.ss_family == AF_INET6 ?
			ntohs(((struct sockaddr_in6 *)&sa)->sin6_port) :
			ntohs(((struct sockaddr_in *)&sa)->sin_port);
	}
	*fdp = fd;
	return TS_OK;
}

/* ---- the /metrics and /healthz server ---- */

struct ts_metrics_server {
	struct MHD_Daemon *daemon;
	ts_metrics *reg;
	ts_metrics_health_fn healthz;
	void *ctx;
	int port;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	ts_logv(TS_LOG_DEBUG, "metrics server", fmt, ap);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *type, char *body, size_t len,
			     const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status,
				  cJSON *obj, const char *allow)
{
	char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
	size_t len;

	cJSON_Delete(obj);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* One JSON line, like every other TaskStream output. */
	char *line = realloc(text, len + 2);
	if (!line) {
		free(text);
		return MHD_NO;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	return reply(c, status, "application/json", line, len + 1, allow);
}

static enum MHD_Result serve_health(struct ts_metrics_server *srv,
				    struct MHD_Connection *c)
{
	char why[256] = "";
	int ok = srv->healthz ? srv->healthz(srv->ctx, why, sizeof why) : 1;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "status", ok ? "ok" : "unavailable");
	if (why[0])
		cJSON_AddStringToObject(o, "reason", why);
	return reply_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
			  o, NULL);
}

static enum MHD_Result serve_metrics(struct ts_metrics_server *srv,
				     struct MHD_Connection *c)
{
	ts_buf b = { 0 };

	if (ts_metrics_render(srv->reg, &b)) {
		ts_buf_free(&b);
		return MHD_NO;
	}
	return reply(c, MHD_HTTP_OK, TS_METRICS_CONTENT_TYPE, b.data, b.len,
		     NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	static int started;
	struct ts_metrics_server *srv = cls;
	int known = strcmp(url, "/metrics") == 0 ||
		    strcmp(url, "/healthz") == 0;
	cJSON *o;

	(void)version;
	(void)upload;
	if (!*state) {
		*state = &started;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* a body on GET is read and dropped */
		return MHD_YES;
	}
	if (known && (strcmp(method, "GET") == 0 ||
		      strcmp(method, "HEAD") == 0))
		return url[1] == 'm' ? serve_metrics(srv, c) :
		       serve_health(srv, c);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "error", known ? "method not allowed" :
					    "not found");
	return reply_json(c, known ? MHD_HTTP_METHOD_NOT_ALLOWED :
			  MHD_HTTP_NOT_FOUND, o, known ? "GET, HEAD" : NULL);
}

ts_err ts_metrics_serve(ts_metrics *reg, const char *addr,
			ts_metrics_health_fn healthz, void *ctx,
			ts_metrics_server **out, ts_detail *d)
{
	struct ts_metrics_server *srv;
	int fd;
	ts_err err;

	if (!(srv = calloc(1, sizeof *srv)))
		return TS_ERR_NOMEM;
	srv->reg = reg;
	srv->healthz = healthz;
	srv->ctx = ctx;
	if ((err = ts_metrics_listen(addr, 64, &fd, &srv->port, d))) {
		free(srv);
		return err;
	}
	srv->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
		MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, 64u,
		MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_END);
	if (!srv->daemon) {
		close(fd);
		free(srv);
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s: cannot start the HTTP server", addr);
	}
	*out = srv;
	return TS_OK;
}

int ts_metrics_server_port(const ts_metrics_server *srv)
{
	return srv ? srv->port : 0;
}

void ts_metrics_server_stop(ts_metrics_server *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->daemon);
	free(srv);
}
