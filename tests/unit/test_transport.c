/* test_transport.c - opening transports (schemes, channels, credentials,
 * redaction) and the local ones: maildir, file (with concurrent writers),
 * dry run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "transport.h"
#include "util.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "%s/ts-transport-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	unsetenv("TS_SMTP_PASSWORD");
	unsetenv("TS_SMTP_PASSWORD_FILE");
	unsetenv("TS_MSG91_AUTHKEY");
	unsetenv("TS_MSG91_AUTHKEY_FILE");
	unsetenv("TS_TWILIO_TOKEN");
	unsetenv("TS_TWILIO_TOKEN_FILE");
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void cfg_init(ts_config *c)
{
	memset(c, 0, sizeof *c);
	c->send_timeout_ms = 5000;
}

static void open_bad(const char *url, ts_channel ch, const char *why)
{
	ts_config c;
	ts_transport *t = (ts_transport *)1;
	ts_detail d;
	ts_err err;

	cfg_init(&c);
	err = ts_transport_open(url, ch, &c, &t, &d);
	if (err != TS_ERR_CONFIG)
		fail_msg("'%s': got %d, want TS_ERR_CONFIG", url, err);
	assert_null(t);
	if (!strstr(d.msg, why))
		fail_msg("'%s': '%s' lacks '%s'", url, d.msg, why);
}

static ts_transport *open_ok(const char *url, ts_channel ch, const char *from)
{
	ts_config c;
	ts_transport *t = NULL;
	ts_detail d;

	cfg_init(&c);
	c.from = (char *)from;
	if (ts_transport_open(url, ch, &c, &t, &d) != TS_OK)
		fail_msg("'%s' rejected: %s", url, d.msg);
	return t;
}

static void test_open_errors(void **state)
{
	(void)state;
	open_bad("", TS_CHANNEL_EMAIL, "no --email-url");
	open_bad("gopher://x", TS_CHANNEL_EMAIL, "unknown transport");
	open_bad("smtps://x", TS_CHANNEL_EMAIL, "not supported");
	open_bad("smtp://x", TS_CHANNEL_SMS, "for email, not SMS");
	open_bad("maildir:/tmp/x", TS_CHANNEL_SMS, "for email");
	open_bad("msg91://k@t", TS_CHANNEL_EMAIL, "for SMS");
	open_bad("twilio://AC:t@+1", TS_CHANNEL_EMAIL, "for SMS");
	open_bad("smtp://", TS_CHANNEL_EMAIL, "no host");
	open_bad("smtp://h?starttls=maybe", TS_CHANNEL_EMAIL, "required, try or no");
	open_bad("smtp://h?tls=no", TS_CHANNEL_EMAIL, "unknown parameter");
	open_bad("smtp://h?insecure=yesplease", TS_CHANNEL_EMAIL, "insecure");
	open_bad("smtp://user@h", TS_CHANNEL_EMAIL, "no password");
	open_bad("msg91://tmpl", TS_CHANNEL_SMS, "no auth key");
	open_bad("msg91://k@tmpl?api=ftp://x", TS_CHANNEL_SMS, "http");
	open_bad("twilio://AC1@+1555", TS_CHANNEL_SMS, "no auth token");
	open_bad("twilio://+1555", TS_CHANNEL_SMS, "ACCOUNT_SID");
	open_bad("http://u:p@h", TS_CHANNEL_EMAIL, "no credentials");
	open_bad("file:", TS_CHANNEL_SMS, "no path");
	open_bad("maildir://host/x", TS_CHANNEL_EMAIL, "no host");
	open_bad("file:/nonexistent-dir/x/y", TS_CHANNEL_SMS, "nonexistent");
}

static void test_open_from(void **state)
{
	ts_config c;
	ts_transport *t;
	ts_detail d;

	(void)state;
	cfg_init(&c);
	c.from = "not-an-address";
	assert_int_equal(ts_transport_open("-", TS_CHANNEL_EMAIL, &c, &t, &d),
			 TS_ERR_CONFIG);
	c.from = "Bad \"Name\" <a@b.c>";
	assert_int_equal(ts_transport_open("-", TS_CHANNEL_EMAIL, &c, &t, &d),
			 TS_ERR_CONFIG);
	/* the SMS side does not care */
	assert_int_equal(ts_transport_open("-", TS_CHANNEL_SMS, &c, &t, &d), TS_OK);
	ts_transport_close(t);
}

static void test_secrets(void **state)
{
	char path[300];
	ts_config c;
	ts_transport *t;
	ts_detail d;
	FILE *f;

	(void)state;
	cfg_init(&c);
	/* the URL's password is never shown */
	t = open_ok("smtp://alice:hunter2@mail.example.com?starttls=no",
		    TS_CHANNEL_EMAIL, NULL);
	assert_string_equal(ts_transport_describe(t),
			    "smtp://alice:***@mail.example.com?starttls=no");
	ts_transport_close(t);
	/* nor a Msg91 key, which sits in the user part */
	t = open_ok("msg91://SeCrEtKeY@tmpl", TS_CHANNEL_SMS, NULL);
	assert_null(strstr(ts_transport_describe(t), "SeCrEtKeY"));
	ts_transport_close(t);
	/* passwords from the environment, and from a file */
	setenv("TS_SMTP_PASSWORD", "frompenv", 1);
	t = open_ok("smtp://alice@h?starttls=no", TS_CHANNEL_EMAIL, NULL);
	ts_transport_close(t);
	unsetenv("TS_SMTP_PASSWORD");
	snprintf(path, sizeof path, "%s/pw", dir);
	f = fopen(path, "w");
	fputs("filepw\n", f);
	fclose(f);
	setenv("TS_SMTP_PASSWORD_FILE", path, 1);
	t = open_ok("smtp://alice@h?starttls=no", TS_CHANNEL_EMAIL, NULL);
	ts_transport_close(t);
	setenv("TS_SMTP_PASSWORD_FILE", "/nonexistent/pw", 1);
	assert_int_equal(ts_transport_open("smtp://alice@h", TS_CHANNEL_EMAIL, &c,
					   &t, &d), TS_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "TS_SMTP_PASSWORD_FILE"));
	unsetenv("TS_SMTP_PASSWORD_FILE");
	setenv("TS_TWILIO_TOKEN", "tok", 1);
	t = open_ok("twilio://AC1@+15005550006", TS_CHANNEL_SMS, NULL);
	ts_transport_close(t);
	unsetenv("TS_TWILIO_TOKEN");
	setenv("TS_MSG91_AUTHKEY", "k", 1);
	t = open_ok("msg91://tmpl?sender=ABC", TS_CHANNEL_SMS, NULL);
	ts_transport_close(t);
	unsetenv("TS_MSG91_AUTHKEY");
}

static int count_files(const char *sub)
{
	char path[300];
	DIR *dp;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof path, "%s/md/%s", dir, sub);
	dp = opendir(path);
	assert_non_null(dp);
	while ((e = readdir(dp)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

static void test_maildir(void **state)
{
	char url[300], *text = NULL;
	cJSON *p = cJSON_Parse("{\"to\":\"a@example.com\",\"bcc\":\"blind.copy@example.net\","
			       "\"subject\":\"hi\",\"body\":\"line1\\nline2\"}");
	cJSON *bad = cJSON_Parse("{\"to\":\"a@example.com\",\"subject\":\"x\\r\\nBcc: e@vil\","
				 "\"body\":\"b\"}");
	const cJSON *many[3] = { p, bad, p };
	ts_send_result r[3];
	ts_transport *t;
	ts_detail d;

	(void)state;
	snprintf(url, sizeof url, "maildir:%s/md", dir);
	t = open_ok(url, TS_CHANNEL_EMAIL, "Me <me@example.com>");
	ts_transport_send_many(t, many, 3, r);
	assert_int_equal(r[0].err, TS_OK);
	assert_int_equal(r[1].err, TS_ERR_DATA);
	assert_non_null(strstr(r[1].msg, "payload.subject"));
	assert_int_equal(r[2].err, TS_OK);
	assert_true(strcmp(r[0].id, r[2].id) != 0);
	assert_int_equal(count_files("new"), 2);
	assert_int_equal(count_files("tmp"), 0);
	assert_int_equal(count_files("cur"), 0);
	/* the stored file: LF line ends, our headers, no Bcc */
	{
		char path[600];
		DIR *dp;
		struct dirent *e;
		snprintf(path, sizeof path, "%s/md/new", dir);
		dp = opendir(path);
		while ((e = readdir(dp)) && e->d_name[0] == '.')
			;
		snprintf(path, sizeof path, "%s/md/new/%s", dir, e->d_name);
		closedir(dp);
		assert_int_equal(ts_read_file(path, 0, &text, NULL, &d), TS_OK);
	}
	assert_null(strchr(text, '\r'));
	assert_non_null(strstr(text, "Return-Path: <me@example.com>\n"));
	assert_non_null(strstr(text, "\nFrom: \"Me\" <me@example.com>\n"));
	assert_non_null(strstr(text, "\nTo: a@example.com\n"));
	assert_null(strstr(text, "blind.copy"));
	assert_non_null(strstr(text, "\n\nline1\nline2\n"));
	free(text);
	ts_transport_close(t);
	cJSON_Delete(p);
	cJSON_Delete(bad);
}

struct writer {
	const char *url;
	int n;
	int failures;
};

static void *file_writer(void *arg)
{
	struct writer *w = arg;
	ts_transport *t = open_ok(w->url, TS_CHANNEL_SMS, NULL);
	char json[2200];
	cJSON *p;
	ts_send_result r;

	/* a long line, so that a torn write would show */
	snprintf(json, sizeof json, "{\"mobile\":\"+919812345678\",\"name\":\"%02000d\"}", 7);
	p = cJSON_Parse(json);
	for (int i = 0; i < w->n; i++) {
		ts_transport_send(t, p, &r);
		if (r.err)
			w->failures++;
	}
	cJSON_Delete(p);
	ts_transport_close(t);
	return NULL;
}

static void test_file_concurrent(void **state)
{
	enum { THREADS = 8, EACH = 200 };
	pthread_t th[THREADS];
	struct writer w[THREADS];
	char url[400], path[300], *text, *line, *save;
	size_t len;
	int lines = 0;
	ts_detail d;

	(void)state;
	snprintf(path, sizeof path, "%s/sms.jsonl", dir);
	snprintf(url, sizeof url, "file:%s", path);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){ .url = url, .n = EACH };
		pthread_create(&th[i], NULL, file_writer, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(ts_read_file(path, 0, &text, &len, &d), TS_OK);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(line);
		if (!o)
			fail_msg("line %d is not JSON (interleaved?)", lines + 1);
		assert_string_equal(cJSON_GetObjectItem(o, "channel")->valuestring, "sms");
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "payload"),
							"mobile")->valuestring,
				    "+919812345678");
		assert_non_null(cJSON_GetObjectItem(o, "sentAt"));
		cJSON_Delete(o);
		lines++;
	}
	assert_int_equal(lines, THREADS * EACH);
	free(text);
}

/* Run fn with stdout going to a file; return what it wrote. */
static char *capture_stdout(void (*fn)(void *), void *arg)
{
	char path[300], *text = NULL;
	int saved = dup(STDOUT_FILENO), fd;
	ts_detail d;

	snprintf(path, sizeof path, "%s/stdout", dir);
	fflush(stdout);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	fn(arg);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	assert_int_equal(ts_read_file(path, 0, &text, NULL, &d), TS_OK);
	return text;
}

static void dry_send(void *arg)
{
	const cJSON **p = arg;
	ts_transport *t = open_ok("-", TS_CHANNEL_EMAIL, "me@example.com");
	ts_send_result r;

	ts_transport_send(t, p[0], &r);
	assert_int_equal(r.err, TS_OK);
	ts_transport_close(t);
	t = open_ok("-", TS_CHANNEL_SMS, NULL);
	ts_transport_send(t, p[1], &r);
	assert_int_equal(r.err, TS_OK);
	ts_transport_close(t);
}

static void test_dry_run(void **state)
{
	const cJSON *p[2];
	cJSON *e = cJSON_Parse("{\"to\":\"a@example.com\",\"bcc\":\"blind.copy@example.net\","
			       "\"subject\":\"hi\",\"body\":\"x\"}");
	cJSON *s = cJSON_Parse("{\"mobile\":\"+919812345678\",\"name\":\"A\"}");
	char *out, *nl;
	cJSON *o;

	(void)state;
	p[0] = e;
	p[1] = s;
	out = capture_stdout(dry_send, p);
	nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	o = cJSON_Parse(out);
	assert_non_null(o);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "dryRun")));
	assert_string_equal(cJSON_GetObjectItem(o, "from")->valuestring, "me@example.com");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "rcpt")), 2);
	assert_non_null(strstr(cJSON_GetObjectItem(o, "message")->valuestring,
			       "\r\nSubject: hi\r\n"));
	assert_null(strstr(cJSON_GetObjectItem(o, "message")->valuestring, "blind.copy"));
	cJSON_Delete(o);
	o = cJSON_Parse(nl + 1);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "channel")->valuestring, "sms");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "payload"), "name")->valuestring,
			    "A");
	cJSON_Delete(o);
	free(out);
	cJSON_Delete(e);
	cJSON_Delete(s);
}

static void test_no_sender(void **state)
{
	cJSON *p = cJSON_Parse("{\"to\":\"a@example.com\",\"subject\":\"hi\",\"body\":\"x\"}");
	ts_transport *t = open_ok("-", TS_CHANNEL_EMAIL, NULL);
	ts_send_result r;

	(void)state;
	ts_transport_send(t, p, &r);
	assert_int_equal(r.err, TS_ERR_DATA);
	assert_non_null(strstr(r.msg, "no sender"));
	ts_transport_close(t);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_open_from),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_maildir),
		cmocka_unit_test(test_file_concurrent),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_no_sender),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
