/* test_url.c - transport URL parsing, decoding and redaction. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "url.h"

static void parse_ok(const char *s, ts_url *u)
{
	ts_detail d;
	ts_err err = ts_url_parse(s, u, &d);

	if (err)
		fail_msg("'%s' rejected: %s", s, d.msg);
}

static void parse_bad(const char *s, const char *why)
{
	ts_detail d;
	ts_url u;

	if (ts_url_parse(s, &u, &d) != TS_ERR_CONFIG)
		fail_msg("'%s' accepted", s);
	if (!strstr(d.msg, why))
		fail_msg("'%s': message '%s' lacks '%s'", s, d.msg, why);
}

static void test_smtp_full(void **state)
{
	ts_url u;

	(void)state;
	parse_ok("SMTP://alice:p%40ss%2Fw@mail.example.com:2525?starttls=try&insecure=1", &u);
	assert_string_equal(u.scheme, "smtp");
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.pass, "p@ss/w");
	assert_string_equal(u.host, "mail.example.com");
	assert_int_equal(u.port, 2525);
	assert_string_equal(u.path, "");
	assert_int_equal(u.opaque, 0);
	assert_string_equal(ts_url_query(&u, "starttls"), "try");
	assert_string_equal(ts_url_query(&u, "insecure"), "1");
	assert_null(ts_url_query(&u, "nope"));
	assert_int_equal(ts_url_flag(&u, "insecure", 0), 1);
	assert_int_equal(ts_url_flag(&u, "absent", 7), 7);
	assert_int_equal(ts_url_flag(&u, "starttls", 0), -1);
	ts_url_free(&u);
	assert_null(u.pass);
}

static void test_userinfo_forms(void **state)
{
	ts_url u;

	(void)state;
	/* an unencoded '@' in the password: the last '@' ends userinfo */
	parse_ok("smtp://bob:a@b@host", &u);
	assert_string_equal(u.user, "bob");
	assert_string_equal(u.pass, "a@b");
	assert_string_equal(u.host, "host");
	assert_int_equal(u.port, 0);
	ts_url_free(&u);
	/* user without password */
	parse_ok("smtp://bob@host:587", &u);
	assert_string_equal(u.user, "bob");
	assert_null(u.pass);
	ts_url_free(&u);
	/* msg91: the key is the user part, the template the host */
	parse_ok("msg91://K3y%2B@5f1a2b?sender=TSTEST&api=http://127.0.0.1:8025", &u);
	assert_string_equal(u.user, "K3y+");
	assert_string_equal(u.host, "5f1a2b");
	/* a plain query value with ':' and '/' */
	assert_string_equal(ts_url_query(&u, "api"), "http://127.0.0.1:8025");
	ts_url_free(&u);
	/* twilio: a '+' in the host stays */
	parse_ok("twilio://AC1:tok@+15005550006?api=http%3A%2F%2F127.0.0.1%3A9", &u);
	assert_string_equal(u.user, "AC1");
	assert_string_equal(u.pass, "tok");
	assert_string_equal(u.host, "+15005550006");
	assert_string_equal(ts_url_query(&u, "api"), "http://127.0.0.1:9");
	ts_url_free(&u);
	/* IPv6 */
	parse_ok("smtp://[::1]:25", &u);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 25);
	ts_url_free(&u);
}

static void test_opaque(void **state)
{
	ts_url u;

	(void)state;
	parse_ok("-", &u);
	assert_string_equal(u.scheme, "-");
	assert_int_equal(u.opaque, 1);
	ts_url_free(&u);
	parse_ok("maildir:/var/mail/x?y", &u);
	assert_string_equal(u.scheme, "maildir");
	assert_string_equal(u.path, "/var/mail/x?y");
	assert_int_equal(u.opaque, 1);
	ts_url_free(&u);
	parse_ok("file:sms.jsonl", &u);
	assert_string_equal(u.path, "sms.jsonl");
	ts_url_free(&u);
	parse_ok("file:///tmp/sms.jsonl", &u);
	assert_int_equal(u.opaque, 0);
	assert_string_equal(u.host, "");
	assert_string_equal(u.path, "/tmp/sms.jsonl");
	ts_url_free(&u);
	parse_ok("https://api.example.com/base/?insecure=0", &u);
	assert_string_equal(u.path, "/base/");
	assert_int_equal(ts_url_flag(&u, "insecure", 1), 0);
	ts_url_free(&u);
}

static void test_bad(void **state)
{
	(void)state;
	parse_bad("", "empty");
	parse_bad("no-scheme", "not a URL");
	parse_bad("1smtp://x", "not a URL");
	parse_bad("smtp://host:0", "port");
	parse_bad("smtp://host:65536", "port");
	parse_bad("smtp://host:", "port");
	parse_bad("smtp://host:2x", "port");
	parse_bad("smtp://:25", "port without host");
	parse_bad("smtp://[::1", "IPv6");
	parse_bad("smtp://u:p%zz@host", "percent");
	parse_bad("smtp://u:p%4@host", "percent");
	parse_bad("smtp://u:p%00@host", "percent");
	parse_bad("smtp://host?novalue", "key=value");
	parse_bad("smtp://host?=v", "key=value");
	parse_bad("smtp://host#frag", "%23");
}

static void test_errors_hide_password(void **state)
{
	ts_detail d;
	ts_url u;

	(void)state;
	/* a '#' in a password breaks the authority; no message quotes it */
	assert_int_equal(ts_url_parse("smtp://u:s3cr#t@host", &u, &d), TS_ERR_CONFIG);
	assert_null(strstr(d.msg, "s3cr"));
	assert_int_equal(ts_url_parse("smtp://u:s3cr%zzt@host", &u, &d), TS_ERR_CONFIG);
	assert_null(strstr(d.msg, "s3cr"));
}

static void test_check_query(void **state)
{
	static const char *const allowed[] = { "starttls", "insecure", NULL };
	ts_detail d;
	ts_url u;

	(void)state;
	parse_ok("smtp://h?starttls=no&insecure=1", &u);
	assert_int_equal(ts_url_check_query(&u, allowed, &d), TS_OK);
	ts_url_free(&u);
	parse_ok("smtp://h?starttls=no&startls=no", &u);
	assert_int_equal(ts_url_check_query(&u, allowed, &d), TS_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "startls"));
	ts_url_free(&u);
	parse_ok("smtp://h?starttls=no&starttls=try", &u);
	assert_int_equal(ts_url_check_query(&u, allowed, &d), TS_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "twice"));
	ts_url_free(&u);
}

static void test_describe(void **state)
{
	ts_url u;
	char *s;

	(void)state;
	parse_ok("smtp://alice:hunter2@mail:587?starttls=no", &u);
	s = ts_url_describe(&u, 0);
	assert_string_equal(s, "smtp://alice:***@mail:587?starttls=no");
	free(s);
	ts_url_free(&u);
	parse_ok("msg91://SECRETKEY@tmpl?sender=X", &u);
	s = ts_url_describe(&u, 1);
	assert_string_equal(s, "msg91://***@tmpl?sender=X");
	free(s);
	ts_url_free(&u);
	parse_ok("twilio://AC1:tok@+1555", &u);
	s = ts_url_describe(&u, 0);
	assert_string_equal(s, "twilio://AC1:***@+1555");
	free(s);
	ts_url_free(&u);
	parse_ok("maildir:/tmp/md", &u);
	s = ts_url_describe(&u, 0);
	assert_string_equal(s, "maildir:/tmp/md");
	free(s);
	ts_url_free(&u);
	parse_ok("-", &u);
	s = ts_url_describe(&u, 0);
	assert_string_equal(s, "-");
	free(s);
	ts_url_free(&u);
}

static void test_pct_decode(void **state)
{
	int bad;
	char *s;

	(void)state;
	s = ts_pct_decode("a%20b%2fc+d", 11, &bad);
	assert_string_equal(s, "a b/c+d");
	free(s);
	s = ts_pct_decode("%C3%A9", 6, &bad);
	assert_string_equal(s, "\xc3\xa9");
	free(s);
	assert_null(ts_pct_decode("%2", 2, &bad));
	assert_int_equal(bad, 1);
	assert_null(ts_pct_decode("%", 1, &bad));
	assert_int_equal(bad, 1);
	/* only len bytes are looked at */
	s = ts_pct_decode("ab%41", 2, &bad);
	assert_string_equal(s, "ab");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_full),
		cmocka_unit_test(test_userinfo_forms),
		cmocka_unit_test(test_opaque),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_errors_hide_password),
		cmocka_unit_test(test_check_query),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_pct_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
