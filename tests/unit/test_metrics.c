/* test_metrics.c - lib/metrics: registry, exposition format, server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(ts_metrics *reg)
{
	ts_buf b = { 0 };

	assert_int_equal(ts_metrics_render(reg, &b), TS_OK);
	return b.data;
}

static void assert_contains(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing:\n%s\nin:\n%s", line, text);
}

static void test_counter_labels(void **state)
{
	ts_metrics *reg;
	ts_metric *m;
	ts_detail d;
	char *text;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_http_requests_total",
					    "Requests by route\\code.\nSecond",
					    "route,code", &m, &d), TS_OK);
	ts_series_inc(ts_metric_with(m, "/tasks", "202"));
	ts_series_inc(ts_metric_with(m, "/tasks", "202"));
	ts_series_add(ts_metric_with(m, "/tasks", "400"), 3);
	ts_series_add(ts_metric_with(m, "/tasks", "400"), -5); /* ignored */
	ts_series_inc(ts_metric_with(m, "a\"b\\c\nd", "404"));
	assert_true(ts_metric_with(m, "/tasks", "202") ==
		    ts_metric_with(m, "/tasks", "202"));
	assert_true(ts_series_value(ts_metric_with(m, "/tasks", "202")) == 2);
	text = render(reg);
	assert_string_equal(text,
		"# HELP taskstream_http_requests_total Requests by route\\\\code.\\nSecond\n"
		"# TYPE taskstream_http_requests_total counter\n"
		"taskstream_http_requests_total{route=\"/tasks\",code=\"202\"} 2\n"
		"taskstream_http_requests_total{route=\"/tasks\",code=\"400\"} 3\n"
		"taskstream_http_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"404\"} 1\n");
	free(text);
	ts_metrics_free(reg);
}

static void test_gauge(void **state)
{
	ts_metrics *reg;
	ts_metric *g, *c;
	ts_detail d;
	char *text;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_gauge(reg, "taskstream_in_flight",
					  "Requests waiting.", NULL, &g, &d),
			 TS_OK);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_x_total", "X.",
					    "", &c, &d), TS_OK);
	/* Without labels the series exists (as 0) before any update. */
	text = render(reg);
	assert_contains(text, "\ntaskstream_in_flight 0\n");
	assert_contains(text, "\ntaskstream_x_total 0\n");
	free(text);
	ts_series_inc(ts_metric_with(g));
	ts_series_inc(ts_metric_with(g));
	ts_series_dec(ts_metric_with(g));
	ts_series_add(ts_metric_with(g), 0.5);
	text = render(reg);
	assert_contains(text, "\ntaskstream_in_flight 1.5\n");
	free(text);
	ts_series_set(ts_metric_with(g), -2.25);
	ts_series_set(ts_metric_with(c), 7);  /* not for counters */
	ts_series_dec(ts_metric_with(c));     /* not for counters */
	text = render(reg);
	assert_contains(text, "\ntaskstream_in_flight -2.25\n");
	assert_contains(text, "\ntaskstream_x_total 0\n");
	free(text);
	ts_metrics_free(reg);
}

static void test_histogram(void **state)
{
	static const double b[] = { 0.01, 0.1, 1 };
	ts_metrics *reg;
	ts_metric *h;
	ts_detail d;
	char *text;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_histogram(reg, "taskstream_produce_seconds",
					      "Produce latency.", "topic", b, 3,
					      &h, &d), TS_OK);
	ts_series *s = ts_metric_with(h, "t");
	ts_series_observe(s, 0.005);
	ts_series_observe(s, 0.01);   /* le is inclusive */
	ts_series_observe(s, 0.5);
	ts_series_observe(s, 3);
	assert_true(ts_series_value(s) == 4);
	text = render(reg);
	assert_string_equal(text,
		"# HELP taskstream_produce_seconds Produce latency.\n"
		"# TYPE taskstream_produce_seconds histogram\n"
		"taskstream_produce_seconds_bucket{topic=\"t\",le=\"0.01\"} 2\n"
		"taskstream_produce_seconds_bucket{topic=\"t\",le=\"0.1\"} 2\n"
		"taskstream_produce_seconds_bucket{topic=\"t\",le=\"1\"} 3\n"
		"taskstream_produce_seconds_bucket{topic=\"t\",le=\"+Inf\"} 4\n"
		"taskstream_produce_seconds_sum{topic=\"t\"} 3.515\n"
		"taskstream_produce_seconds_count{topic=\"t\"} 4\n");
	free(text);
	ts_metrics_free(reg);
}

static void test_default_buckets(void **state)
{
	ts_metrics *reg;
	ts_metric *h;
	ts_detail d;
	char *text;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_histogram(reg, "taskstream_lat_seconds",
					      "L.", NULL, NULL, 0, &h, &d),
			 TS_OK);
	text = render(reg);
	assert_contains(text, "taskstream_lat_seconds_bucket{le=\"0.0005\"} 0\n");
	assert_contains(text, "taskstream_lat_seconds_bucket{le=\"10\"} 0\n");
	assert_contains(text, "taskstream_lat_seconds_bucket{le=\"+Inf\"} 0\n");
	assert_contains(text, "taskstream_lat_seconds_count 0\n");
	free(text);
	ts_metrics_free(reg);
}

static void test_bad_names(void **state)
{
	static const double bad[] = { 1, 1 };
	ts_metrics *reg;
	ts_metric *m;
	ts_detail d;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_counter(reg, "http_requests_total", "", NULL,
					    &m, &d), TS_ERR_INTERNAL);
	assert_non_null(strstr(d.msg, "http_requests_total"));
	assert_int_equal(ts_metrics_counter(reg, "taskstream_a-b", "", NULL,
					    &m, &d), TS_ERR_INTERNAL);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_a", "", "x,1y",
					    &m, &d), TS_ERR_INTERNAL);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_a", "", "__x",
					    &m, &d), TS_ERR_INTERNAL);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_a", "", "x,x",
					    &m, &d), TS_ERR_INTERNAL);
	assert_int_equal(ts_metrics_histogram(reg, "taskstream_h", "", "le",
					      NULL, 0, &m, &d), TS_ERR_INTERNAL);
	assert_int_equal(ts_metrics_histogram(reg, "taskstream_h", "", NULL,
					      bad, 2, &m, &d), TS_ERR_INTERNAL);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_a", "", "x", &m,
					    &d), TS_OK);
	assert_int_equal(ts_metrics_gauge(reg, "taskstream_a", "", NULL, &m,
					  &d), TS_ERR_INTERNAL);
	assert_non_null(strstr(d.msg, "twice"));
	ts_metrics_free(reg);
}

static double twelve(void *ctx)
{
	return *(double *)ctx;
}

static void test_gauge_fn(void **state)
{
	double v = 12;
	ts_metrics *reg;
	ts_detail d;
	char *text;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_gauge_fn(reg, "taskstream_kafka_queue_depth",
					     "Queued.", twelve, &v, &d), TS_OK);
	text = render(reg);
	assert_contains(text, "# TYPE taskstream_kafka_queue_depth gauge\n"
			      "taskstream_kafka_queue_depth 12\n");
	free(text);
	v = 1e21;
	text = render(reg);
	assert_contains(text, "taskstream_kafka_queue_depth 1e+21\n");
	free(text);
	ts_metrics_free(reg);
}

static void test_series_cap_and_null(void **state)
{
	ts_metrics *reg;
	ts_metric *m;
	ts_detail d;
	char v[16];

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_c_total", "", "v",
					    &m, &d), TS_OK);
	for (int i = 0; i < TS_METRICS_MAX_SERIES; i++) {
		snprintf(v, sizeof v, "%d", i);
		assert_non_null(ts_metric_with(m, v));
	}
	assert_null(ts_metric_with(m, "one too many"));
	assert_non_null(ts_metric_with(m, "5")); /* existing ones still work */
	/* NULL is accepted everywhere. */
	ts_series_inc(NULL);
	ts_series_observe(NULL, 1);
	ts_series_set(NULL, 1);
	assert_null(ts_metric_with(NULL));
	assert_true(ts_series_value(NULL) == 0);
	ts_metrics_free(reg);
}

struct hammer {
	ts_metric *c, *h;
};

static void *hammer(void *arg)
{
	struct hammer *hm = arg;

	for (int i = 0; i < 100000; i++) {
		ts_series_inc(ts_metric_with(hm->c, i % 2 ? "odd" : "even"));
		ts_series_observe(ts_metric_with(hm->h), 0.25);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct hammer hm;
	pthread_t t[4];
	ts_metrics *reg;
	ts_detail d;
	char *text;

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_n_total", "", "p",
					    &hm.c, &d), TS_OK);
	assert_int_equal(ts_metrics_histogram(reg, "taskstream_h_seconds", "",
					      NULL, NULL, 0, &hm.h, &d), TS_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &hm), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	text = render(reg);
	assert_contains(text, "taskstream_n_total{p=\"even\"} 200000\n");
	assert_contains(text, "taskstream_n_total{p=\"odd\"} 200000\n");
	assert_contains(text, "taskstream_h_seconds_sum 100000\n");
	assert_contains(text, "taskstream_h_seconds_count 400000\n");
	assert_contains(text, "taskstream_h_seconds_bucket{le=\"0.1\"} 0\n");
	assert_contains(text, "taskstream_h_seconds_bucket{le=\"0.25\"} 400000\n");
	free(text);
	ts_metrics_free(reg);
}

static void test_parse_addr(void **state)
{
	struct sockaddr_storage sa;
	socklen_t len;
	ts_detail d;

	(void)state;
	assert_int_equal(ts_metrics_parse_addr("127.0.0.1:9100", &sa, &len, &d), TS_OK);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(ts_metrics_parse_addr("[::1]:0", &sa, &len, &d), TS_OK);
	assert_int_equal(sa.ss_family, AF_INET6);
	assert_int_equal(ts_metrics_parse_addr(":80", &sa, &len, &d), TS_OK);
	assert_int_equal(ts_metrics_parse_addr("*:80", &sa, &len, &d), TS_OK);
	assert_int_equal(ts_metrics_parse_addr("localhost", &sa, &len, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_metrics_parse_addr("127.0.0.1:70000", &sa, &len, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_metrics_parse_addr("127.0.0.1:x", &sa, &len, &d), TS_ERR_CONFIG);
	assert_int_equal(ts_metrics_parse_addr("no such host.invalid:1", &sa, &len, &d),
			 TS_ERR_CONFIG);
}

/* ---- the server, through libcurl ---- */

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	ts_buf_append(ud, p, size * n);
	return size * n;
}

static long get(int port, const char *method, const char *path, ts_buf *body,
		ts_buf *headers)
{
	char url[128];
	long status = 0;
	CURL *c = curl_easy_init();

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

static int health(void *ctx, char *why, size_t size)
{
	int ok = *(int *)ctx;

	if (!ok)
		snprintf(why, size, "kafka: \"down\"");
	return ok;
}

static void test_server(void **state)
{
	ts_metrics_server *srv, *srv2;
	ts_buf body = { 0 }, hdr = { 0 };
	ts_metrics *reg;
	ts_metric *m;
	ts_detail d;
	int healthy = 1, port;
	char addr[64];

	(void)state;
	assert_int_equal(ts_metrics_new(&reg), TS_OK);
	assert_int_equal(ts_metrics_counter(reg, "taskstream_done_total", "Done.",
					    NULL, &m, &d), TS_OK);
	ts_series_add(ts_metric_with(m), 41);
	assert_int_equal(ts_metrics_serve(reg, "127.0.0.1:0", health, &healthy,
					  &srv, &d), TS_OK);
	port = ts_metrics_server_port(srv);
	assert_true(port > 0);

	assert_int_equal(get(port, "GET", "/metrics", &body, &hdr), 200);
	assert_non_null(strstr(body.data, "\ntaskstream_done_total 41\n"));
	assert_non_null(strstr(hdr.data, "text/plain; version=0.0.4"));

	ts_buf_reset(&body);
	assert_int_equal(get(port, "GET", "/healthz", &body, &hdr), 200);
	assert_string_equal(body.data, "{\"status\":\"ok\"}\n");
	healthy = 0;
	ts_buf_reset(&body);
	assert_int_equal(get(port, "GET", "/healthz", &body, &hdr), 503);
	assert_string_equal(body.data,
		"{\"status\":\"unavailable\",\"reason\":\"kafka: \\\"down\\\"\"}\n");

	ts_buf_reset(&body);
	assert_int_equal(get(port, "GET", "/nope", &body, &hdr), 404);
	assert_non_null(strstr(body.data, "\"error\":\"not found\""));
	ts_buf_reset(&body);
	ts_buf_reset(&hdr);
	assert_int_equal(get(port, "POST", "/metrics", &body, &hdr), 405);
	assert_non_null(strstr(hdr.data, "Allow: GET, HEAD"));

	/* The port is taken: the error says so. */
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	assert_int_equal(ts_metrics_serve(reg, addr, NULL, NULL, &srv2, &d),
			 TS_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "Address already in use"));

	ts_metrics_server_stop(srv);
	ts_buf_free(&body);
	ts_buf_free(&hdr);
	ts_metrics_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_labels),
		cmocka_unit_test(test_gauge),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_default_buckets),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_gauge_fn),
		cmocka_unit_test(test_series_cap_and_null),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_server),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
