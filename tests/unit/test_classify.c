/* test_classify.c - every failure class of DESIGN.md, and Retry-After. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "classify.h"
#include "util.h"

static void test_smtp(void **state)
{
	(void)state;
	assert_int_equal(ts_classify_smtp(250), TS_OK);
	assert_int_equal(ts_classify_smtp(251), TS_OK);
	/* 4xx: try again later */
	assert_int_equal(ts_classify_smtp(421), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_smtp(450), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_smtp(451), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_smtp(452), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_smtp(454), TS_ERR_TRANSIENT);
	/* 5xx: for good (including refused AUTH and STARTTLS demands) */
	assert_int_equal(ts_classify_smtp(500), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_smtp(530), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_smtp(535), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_smtp(550), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_smtp(554), TS_ERR_PERMANENT);
	/* no reply at all: the connection broke */
	assert_int_equal(ts_classify_smtp(0), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_smtp(-1), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_smtp(354), TS_ERR_TRANSIENT);
}

static void test_http(void **state)
{
	(void)state;
	assert_int_equal(ts_classify_http(200), TS_OK);
	assert_int_equal(ts_classify_http(201), TS_OK);
	assert_int_equal(ts_classify_http(202), TS_OK);
	assert_int_equal(ts_classify_http(204), TS_OK);
	assert_int_equal(ts_classify_http(408), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(429), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(500), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(502), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(503), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(504), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(599), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(0), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_http(400), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(401), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(403), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(404), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(413), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(418), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(422), TS_ERR_PERMANENT);
	/* redirects are not followed: a misconfigured URL */
	assert_int_equal(ts_classify_http(301), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_http(100), TS_ERR_PERMANENT);
}

static void test_curl(void **state)
{
	(void)state;
	assert_int_equal(ts_classify_curl(CURLE_OK), TS_OK);
	/* network: transient */
	assert_int_equal(ts_classify_curl(CURLE_COULDNT_RESOLVE_HOST), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_COULDNT_RESOLVE_PROXY), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_COULDNT_CONNECT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_OPERATION_TIMEDOUT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_SEND_ERROR), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_RECV_ERROR), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_GOT_NOTHING), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_PARTIAL_FILE), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_SSL_CONNECT_ERROR), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_curl(CURLE_HTTP2_STREAM), TS_ERR_TRANSIENT);
	/* certificates and configuration: permanent */
	assert_int_equal(ts_classify_curl(CURLE_PEER_FAILED_VERIFICATION), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_SSL_CACERT_BADFILE), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_SSL_CERTPROBLEM), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_SSL_PINNEDPUBKEYNOTMATCH), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_URL_MALFORMAT), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_UNSUPPORTED_PROTOCOL), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_LOGIN_DENIED), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_curl(CURLE_TOO_MANY_REDIRECTS), TS_ERR_PERMANENT);
}

static void test_errno(void **state)
{
	(void)state;
	assert_int_equal(ts_classify_errno(0), TS_OK);
	assert_int_equal(ts_classify_errno(ECONNREFUSED), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(ECONNRESET), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(ETIMEDOUT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(EHOSTUNREACH), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(ENETUNREACH), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(EPIPE), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(EINTR), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(ENOSPC), TS_ERR_TRANSIENT);
	assert_int_equal(ts_classify_errno(EACCES), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_errno(EAFNOSUPPORT), TS_ERR_PERMANENT);
	assert_int_equal(ts_classify_errno(EROFS), TS_ERR_PERMANENT);
}

static void test_retry_after(void **state)
{
	char date[64];
	struct tm tm;
	time_t t;
	int64_t ms;

	(void)state;
	assert_int_equal(ts_parse_retry_after(NULL), -1);
	assert_int_equal(ts_parse_retry_after(""), -1);
	assert_int_equal(ts_parse_retry_after("  "), -1);
	assert_int_equal(ts_parse_retry_after("0"), 0);
	assert_int_equal(ts_parse_retry_after("1"), 1000);
	assert_int_equal(ts_parse_retry_after(" 120 "), 120000);
	assert_int_equal(ts_parse_retry_after("1.5"), -1);
	assert_int_equal(ts_parse_retry_after("-3"), -1);
	assert_int_equal(ts_parse_retry_after("soon"), -1);
	assert_int_equal(ts_parse_retry_after("12abc"), -1);
	/* capped at a day, no overflow */
	assert_int_equal(ts_parse_retry_after("99999999999999999999999"),
			 24LL * 3600 * 1000);
	/* an HTTP-date 30 s ahead */
	t = time(NULL) + 30;
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	ms = ts_parse_retry_after(date);
	assert_in_range(ms, 28000, 30000);
	/* RFC 850 and asctime forms */
	strftime(date, sizeof date, "%A, %d-%b-%y %H:%M:%S GMT", &tm);
	assert_in_range(ts_parse_retry_after(date), 28000, 30000);
	strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
	assert_in_range(ts_parse_retry_after(date), 28000, 30000);
	/* in the past: now */
	assert_int_equal(ts_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
	assert_int_equal(ts_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT junk"), -1);
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(ts_class_name(TS_OK), "sent");
	assert_string_equal(ts_class_name(TS_ERR_TRANSIENT), "transient");
	assert_string_equal(ts_class_name(TS_ERR_PERMANENT), "permanent");
	assert_string_equal(ts_class_name(TS_ERR_DATA), "invalid");
	assert_string_equal(ts_class_name(TS_ERR_CONFIG), "permanent");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_curl),
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_class_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
