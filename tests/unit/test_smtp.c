/* test_smtp.c - SMTP sessions in many threads at once, against the test
 * SMTP server (tests/fakes/smtpd.py, aiosmtpd) with STARTTLS required,
 * a certificate checked through SSL_CERT_FILE, and AUTH: libesmtp's global
 * state (plugin list, per-thread errno) and our per-thread connect timer
 * must hold up with 8 sessions in flight. Also bad credentials and a
 * refused port at the same time, to mix failure paths. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "transport.h"
#include "util.h"

enum { THREADS = 8, BATCHES = 3, PER_BATCH = 10 };

static char dir[256];
static pid_t server = -1;
static int port;

static void repo_root(char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

	snprintf(out, size, ".");
	if (n <= 0)
		return;
	exe[n] = '\0';
	/* REPO/build/VARIANT/tests/test_smtp */
	for (int i = 0; i < 4; i++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			return;
		*slash = '\0';
	}
	snprintf(out, size, "%s", exe);
}

static int start_server(void)
{
	char repo[PATH_MAX], script[PATH_MAX + 32], cert[300], key[300],
		tls[620], md[300], log[300], line[64];
	int fds[2];
	FILE *f;

	repo_root(repo, sizeof repo);
	snprintf(script, sizeof script, "%s/tests/fakes/smtpd.py", repo);
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	snprintf(tls, sizeof tls, "%s,%s", cert, key);
	snprintf(md, sizeof md, "%s/md", dir);
	snprintf(log, sizeof log, "%s/log.jsonl", dir);
	if (pipe(fds) != 0)
		return -1;
	server = fork();
	if (server == 0) {
		char errpath[300];
		int efd;
		snprintf(errpath, sizeof errpath, "%s/smtpd.err", dir);
		efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (efd >= 0)
			dup2(efd, STDERR_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", script, "--port", "0",
		      "--maildir", md, "--log", log, "--tls", tls,
		      "--require-tls", "--auth", "user:pw", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (!f || !fgets(line, sizeof line, f) ||
	    sscanf(line, "ready %d", &port) != 1) {
		fprintf(stderr, "test_smtp: %s did not start\n", script);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int setup(void **state)
{
	char cmd[1200], cert[300];

	(void)state;
	signal(SIGPIPE, SIG_IGN); /* as every tool does */
	snprintf(dir, sizeof dir, "%s/ts-smtp-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -days 2 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
		 "-keyout '%s/key.pem' -out '%s/cert.pem' 2>/dev/null",
		 dir, dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	setenv("SSL_CERT_FILE", cert, 1);
	unsetenv("SSL_CERT_DIR");
	unsetenv("TS_SMTP_PASSWORD");
	unsetenv("TS_SMTP_PASSWORD_FILE");
	return start_server();
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct job {
	char url[200];
	ts_err want;
	int id;
	int bad;             /* results not as wanted */
	char why[400];
};

static void *run_job(void *arg)
{
	struct job *j = arg;
	ts_config cfg;
	ts_transport *t;
	ts_detail d;
	cJSON *p[PER_BATCH];
	ts_send_result r[PER_BATCH];

	memset(&cfg, 0, sizeof cfg);
	cfg.send_timeout_ms = 20000;
	cfg.from = "sender@example.com";
	if (ts_transport_open(j->url, TS_CHANNEL_EMAIL, &cfg, &t, &d)) {
		j->bad = -1;
		snprintf(j->why, sizeof j->why, "open: %s", d.msg);
		return NULL;
	}
	for (int i = 0; i < PER_BATCH; i++) {
		char json[200];
		snprintf(json, sizeof json,
			 "{\"to\":\"t%d-%d@example.com\",\"subject\":\"thread %d\","
			 "\"body\":\"message %d\"}", j->id, i, j->id, i);
		p[i] = cJSON_Parse(json);
	}
	for (int b = 0; b < BATCHES; b++) {
		ts_transport_send_many(t, (const cJSON *const *)p, PER_BATCH, r);
		for (int i = 0; i < PER_BATCH; i++)
			if (r[i].err != j->want) {
				j->bad++;
				snprintf(j->why, sizeof j->why, "got %d: %s",
					 r[i].err, r[i].msg);
			}
	}
	for (int i = 0; i < PER_BATCH; i++)
		cJSON_Delete(p[i]);
	ts_transport_close(t);
	return NULL;
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_threads(void **state)
{
	struct job jobs[THREADS + 2];
	pthread_t th[THREADS + 2];
	char log[300];
	int good = 0;

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct job){ .want = TS_OK, .id = i };
		/* by name and by address: both checked by OpenSSL */
		snprintf(jobs[i].url, sizeof jobs[i].url, "smtp://user:pw@%s:%d",
			 i % 2 ? "localhost" : "127.0.0.1", port);
	}
	jobs[THREADS] = (struct job){ .want = TS_ERR_PERMANENT, .id = THREADS };
	snprintf(jobs[THREADS].url, sizeof jobs[THREADS].url,
		 "smtp://user:wrong@127.0.0.1:%d", port);
	jobs[THREADS + 1] = (struct job){ .want = TS_ERR_TRANSIENT, .id = THREADS + 1 };
	snprintf(jobs[THREADS + 1].url, sizeof jobs[THREADS + 1].url,
		 "smtp://user:pw@127.0.0.1:1");
	for (int i = 0; i < THREADS + 2; i++)
		pthread_create(&th[i], NULL, run_job, &jobs[i]);
	for (int i = 0; i < THREADS + 2; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].bad)
			fail_msg("thread %d (%s): %d unexpected results, e.g. %s", i,
				 jobs[i].url, jobs[i].bad, jobs[i].why);
		good += jobs[i].want == TS_OK;
	}
	snprintf(log, sizeof log, "%s/log.jsonl", dir);
	assert_int_equal(count_lines(log), good * BATCHES * PER_BATCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
