/* handler.c - run a task through a command or an HTTP endpoint. */
#include "handler.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "http.h"

extern char **environ;

/* ---- parsing ------------------------------------------------------------ */

/* A URL with any user:password@ before the host replaced by ***@. */
static char *redact_url(const char *url)
{
	const char *p = strstr(url, "://");
	const char *host, *at, *end;
	ts_buf b = { 0 };

	if (!p)
		return strdup(url);
	host = p + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (!at)
		return strdup(url);
	if (ts_buf_append(&b, url, (size_t)(host - url)) ||
	    ts_buf_append(&b, "***", 3) || ts_buf_append(&b, at, strlen(at))) {
		ts_buf_free(&b);
		return NULL;
	}
	return b.data;
}

ts_err ts_handler_parse(const char *spec, ts_handler *h, ts_detail *d)
{
	const char *eq = strchr(spec, '=');
	const char *target;
	size_t tlen;

	memset(h, 0, sizeof *h);
	if (!eq)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--handler %s: expected TYPE=COMMAND or TYPE=URL",
			       spec);
	tlen = (size_t)(eq - spec);
	if (tlen == 0 || tlen > TS_TASK_TYPE_MAX)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--handler: task type must be 1-%d characters",
			       TS_TASK_TYPE_MAX);
	memcpy(h->type, spec, tlen);
	h->type[tlen] = '\0';
	if (!ts_valid_task_type(h->type))
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--handler %s: '%s' is not a task type "
			       "([a-z][a-z0-9_.-]*)", h->type, h->type);
	target = eq + 1;
	while (isspace((unsigned char)*target))
		target++;
	if (!*target)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "--handler %s: empty command", h->type);
	if (strncmp(target, "http://", 7) == 0 ||
	    strncmp(target, "https://", 8) == 0) {
		h->kind = TS_HANDLER_HTTP;
		for (const char *p = target; *p; p++)
			if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
				return ts_fail(d, TS_ERR_CONFIG, NULL,
					       "--handler %s: white space in URL",
					       h->type);
		h->target = strdup(target);
		h->describe = redact_url(target);
	} else {
		h->kind = TS_HANDLER_COMMAND;
		h->target = strdup(target);
		h->describe = strdup(target);
	}
	if (!h->target || !h->describe) {
		ts_handler_free(h);
		return TS_ERR_NOMEM;
	}
	return TS_OK;
}

void ts_handler_free(ts_handler *h)
{
	if (!h)
		return;
	ts_free_secret(h->target);
	free(h->describe);
	memset(h, 0, sizeof *h);
}

void ts_handler_result_free(ts_handler_result *r)
{
	ts_buf_free(&r->out);
	ts_buf_free(&r->errout);
}

/* ---- runner -------------------------------------------------------------- */

struct ts_handler_runner {
	int64_t http_timeout_ms;
	ts_http *http;     /* opened on first use */
};

ts_err ts_handler_runner_new(int64_t http_timeout_ms, ts_handler_runner **out)
{
	ts_handler_runner *rn = calloc(1, sizeof *rn);

	if (!rn)
		return TS_ERR_NOMEM;
	rn->http_timeout_ms = http_timeout_ms;
	*out = rn;
	return TS_OK;
}

void ts_handler_runner_free(ts_handler_runner *rn)
{
	if (!rn)
		return;
	ts_http_free(rn->http);
	free(rn);
}

/* The last non-empty line of b, cleaned of control characters and cut to
 * fit, into out. */
static void last_line(const ts_buf *b, char *out, size_t size)
{
	size_t end, start, n, o = 0;

	out[0] = '\0';
	if (!b->len)
		return;
	end = b->len;
	while (end > 0 && (b->data[end - 1] == '\n' || b->data[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && b->data[start - 1] != '\n')
		start--;
	n = end - start;
	for (size_t i = 0; i < n && o + 1 < size; i++) {
		unsigned char c = (unsigned char)b->data[start + i];
		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	out[o] = '\0';
}

/* ---- commands ------------------------------------------------------------ */

/* The environment every command gets: ours minus TaskStream's secrets and
 * the per-call names (set afresh for each call). Built once. */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static char **base_env;
static size_t base_env_n;

static int drop_from_env(const char *kv)
{
	static const char *const per_call[] = { "TS_TASK_ID=", "TS_TASK_TYPE=",
		"TS_ATTEMPT=", "TRACEPARENT=" };
	static const char *const secret[] = { "PASSWORD", "AUTHKEY", "TOKEN",
		"SECRET" };
	const char *eq = strchr(kv, '=');
	size_t n = eq ? (size_t)(eq - kv) : strlen(kv);
	char name[256];

	for (size_t i = 0; i < sizeof per_call / sizeof per_call[0]; i++)
		if (strncmp(kv, per_call[i], strlen(per_call[i])) == 0)
			return 1;
	if (strncmp(kv, "TS_", 3) != 0)
		return 0;
	if (n >= sizeof name)
		return 1; /* a TS_ name that long is not ours to pass on */
	for (size_t i = 0; i < n; i++)
		name[i] = (char)toupper((unsigned char)kv[i]);
	name[n] = '\0';
	for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
		if (strstr(name, secret[i]))
			return 1;
	return 0;
}

static void build_base_env(void)
{
	size_t n = 0, k = 0;

	for (char **e = environ; e && *e; e++)
		n++;
	base_env = calloc(n + 1, sizeof *base_env);
	if (!base_env)
		return;
	for (size_t i = 0; i < n; i++)
		if (!drop_from_env(environ[i]))
			base_env[k++] = environ[i];
	base_env_n = k;
}

/* Process groups of the commands running now, for ts_handler_kill_all(). */
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t running[4096];

static void running_set(pid_t pid, int add)
{
	pthread_mutex_lock(&running_mu);
	for (size_t i = 0; i < sizeof running / sizeof running[0]; i++) {
		if (add && running[i] == 0) {
			running[i] = pid;
			break;
		}
		if (!add && running[i] == pid) {
			running[i] = 0;
			break;
		}
	}
	pthread_mutex_unlock(&running_mu);
}

void ts_handler_kill_all(void)
{
	pthread_mutex_lock(&running_mu);
	for (size_t i = 0; i < sizeof running / sizeof running[0]; i++)
		if (running[i] > 0)
			kill(-running[i], SIGKILL);
	pthread_mutex_unlock(&running_mu);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Read what is there from *fd into b (up to the capture bound; the rest is
 * read and dropped). Closes *fd at EOF or error. */
static void drain_fd(int *fd, ts_buf *b)
{
	char chunk[8192];

	for (;;) {
		ssize_t n = read(*fd, chunk, sizeof chunk);
		if (n > 0) {
			size_t room = b->len < TS_HANDLER_CAPTURE_MAX ?
				TS_HANDLER_CAPTURE_MAX - b->len : 0;
			size_t keep = (size_t)n < room ? (size_t)n : room;
			if (keep)
				ts_buf_append(b, chunk, keep);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_fd(fd);
		return;
	}
}

/* write(2) to a pipe whose reader may be gone, without a SIGPIPE even
 * when the caller has not ignored it: the signal is blocked in this thread
 * for the call and taken back if the write raised it. */
static ssize_t write_nosig(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old;
	ssize_t n;
	int saved;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	saved = errno;
	if (n < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE)) {
		const struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

struct child {
	pid_t pid;
	int pidfd;
	int in, out, err;   /* our ends */
};

static int spawn_child(const ts_handler *h, const ts_handler_call *c,
		       struct child *ch, char *why, size_t whysize)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	char e_id[160], e_type[96], e_attempt[32], e_trace[80];
	char **envp;
	size_t k;
	char *argv[] = { "sh", "-c", h->target, NULL };
	int rc;

	pthread_once(&env_once, build_base_env);
	if (!base_env) {
		snprintf(why, whysize, "out of memory");
		return -1;
	}
	envp = calloc(base_env_n + 5, sizeof *envp);
	if (!envp) {
		snprintf(why, whysize, "out of memory");
		return -1;
	}
	memcpy(envp, base_env, base_env_n * sizeof *envp);
	k = base_env_n;
	snprintf(e_id, sizeof e_id, "TS_TASK_ID=%s", c->task_id ? c->task_id : "");
	snprintf(e_type, sizeof e_type, "TS_TASK_TYPE=%s",
		 c->task_type ? c->task_type : "");
	snprintf(e_attempt, sizeof e_attempt, "TS_ATTEMPT=%d", c->attempt);
	envp[k++] = e_id;
	envp[k++] = e_type;
	envp[k++] = e_attempt;
	if (c->traceparent) {
		snprintf(e_trace, sizeof e_trace, "TRACEPARENT=%s", c->traceparent);
		envp[k++] = e_trace;
	}
	envp[k] = NULL;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) ||
	    pipe2(err, O_CLOEXEC)) {
		snprintf(why, whysize, "pipe: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&dflt);
	/* Our ignored SIGPIPE would otherwise be inherited through exec. */
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGQUIT);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
				 POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&ch->pid, "/bin/sh", &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		snprintf(why, whysize, "cannot run /bin/sh: %s", strerror(rc));
		rc = -1;
		goto out;
	}
	running_set(ch->pid, 1);
	ch->pidfd = pidfd_open(ch->pid, 0);
	ch->in = in[1];
	ch->out = out[0];
	ch->err = err[0];
	in[1] = out[0] = err[0] = -1;
	fcntl(ch->in, F_SETFL, O_NONBLOCK);
	fcntl(ch->out, F_SETFL, O_NONBLOCK);
	fcntl(ch->err, F_SETFL, O_NONBLOCK);
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	free(envp);
	return rc;
}

/* Feed stdin, collect stdout and stderr, wait for the exit, enforce the
 * deadline. Returns the wait status; sets *timed_out. */
static int supervise(struct child *ch, const ts_handler_call *c,
		     ts_handler_result *r)
{
	int64_t deadline = ts_mono_ms() + c->timeout_ms, kill_at = 0;
	int64_t exited_at = 0;
	size_t written = 0;
	int status = 0, exited = 0, termed = 0;

	if (c->len == 0)
		close_fd(&ch->in);
	for (;;) {
		struct pollfd pfd[4];
		int nfds = 0, timeout;
		int64_t now = ts_mono_ms(), next;

		if (!exited && now >= deadline && !termed) {
			kill(-ch->pid, SIGTERM);
			termed = 1;
			r->timed_out = 1;
			kill_at = now + 500;
		}
		if (!exited && termed && now >= kill_at) {
			kill(-ch->pid, SIGKILL);
			kill_at = now + 1000;
		}
		if (exited) {
			/* Done once the pipes are closed, or a moment after
			 * the exit when a left-behind grandchild holds them. */
			if ((ch->out < 0 && ch->err < 0) ||
			    now >= exited_at + 200)
				break;
			close_fd(&ch->in);
		}
		if (ch->in >= 0)
			pfd[nfds++] = (struct pollfd){ ch->in, POLLOUT, 0 };
		if (ch->out >= 0)
			pfd[nfds++] = (struct pollfd){ ch->out, POLLIN, 0 };
		if (ch->err >= 0)
			pfd[nfds++] = (struct pollfd){ ch->err, POLLIN, 0 };
		if (!exited && ch->pidfd >= 0)
			pfd[nfds++] = (struct pollfd){ ch->pidfd, POLLIN, 0 };
		next = exited ? exited_at + 200 : termed ? kill_at : deadline;
		timeout = next > now ? (int)(next - now) : 0;
		if (!exited && ch->pidfd < 0 && timeout > 20)
			timeout = 20; /* no pidfd: look for the exit often */
		if (poll(pfd, (nfds_t)nfds, timeout) < 0 && errno != EINTR)
			break;
		if (ch->in >= 0) {
			ssize_t n = write_nosig(ch->in, c->body + written,
						c->len - written);
			if (n > 0)
				written += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				close_fd(&ch->in); /* EPIPE: it stopped reading */
			if (written == c->len)
				close_fd(&ch->in);
		}
		if (ch->out >= 0)
			drain_fd(&ch->out, &r->out);
		if (ch->err >= 0)
			drain_fd(&ch->err, &r->errout);
		if (!exited && waitpid(ch->pid, &status, WNOHANG) == ch->pid) {
			exited = 1;
			exited_at = ts_mono_ms();
		}
	}
	if (!exited) {
		kill(-ch->pid, SIGKILL);
		while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return status;
}

static void run_command(const ts_handler *h, const ts_handler_call *c,
			ts_handler_result *r)
{
	struct child ch = { -1, -1, -1, -1, -1 };
	char why[256], line[200];
	int status;

	if (spawn_child(h, c, &ch, why, sizeof why) != 0) {
		r->err = TS_ERR_TRANSIENT;
		snprintf(r->msg, sizeof r->msg, "%s", why);
		return;
	}
	status = supervise(&ch, c, r);
	running_set(ch.pid, 0);
	close_fd(&ch.in);
	close_fd(&ch.out);
	close_fd(&ch.err);
	close_fd(&ch.pidfd);
	last_line(&r->errout, line, sizeof line);
	if (r->timed_out) {
		r->err = TS_ERR_TRANSIENT;
		snprintf(r->msg, sizeof r->msg, "timed out after %lld ms",
			 (long long)c->timeout_ms);
	} else if (WIFSIGNALED(status)) {
		r->err = TS_ERR_TRANSIENT;
		snprintf(r->msg, sizeof r->msg, "killed by signal %d%s%s",
			 WTERMSIG(status), line[0] ? ": " : "", line);
	} else {
		r->status = WEXITSTATUS(status);
		r->err = r->status == 0 ? TS_OK :
			 r->status == 75 ? TS_ERR_TRANSIENT : TS_ERR_PERMANENT;
		snprintf(r->msg, sizeof r->msg, "exit %d%s%s", r->status,
			 line[0] ? ": " : "", line);
	}
}

/* ---- HTTP ---------------------------------------------------------------- */

static void run_http(ts_handler_runner *rn, const ts_handler *h,
		     const ts_handler_call *c, ts_handler_result *r)
{
	char idem[160], attempt[48], trace[80], start[160];
	const char *headers[4];
	size_t nh = 0;
	ts_http_request req;
	ts_http_reply rep;
	ts_err err;

	if (!rn->http) {
		err = ts_http_new(rn->http_timeout_ms, 0, &rn->http);
		if (err) {
			r->err = TS_ERR_TRANSIENT;
			snprintf(r->msg, sizeof r->msg, "HTTP client: %s",
				 ts_strerror(err));
			return;
		}
	}
	snprintf(idem, sizeof idem, "Idempotency-Key: %s",
		 c->task_id ? c->task_id : "");
	snprintf(attempt, sizeof attempt, "TaskStream-Attempt: %d", c->attempt);
	headers[nh++] = idem;
	headers[nh++] = attempt;
	if (c->traceparent) {
		snprintf(trace, sizeof trace, "traceparent: %s", c->traceparent);
		headers[nh++] = trace;
	}
	headers[nh] = NULL;
	memset(&req, 0, sizeof req);
	req.url = h->target;
	req.content_type = "application/json";
	req.body = c->body;
	req.body_len = c->len;
	req.headers = headers;
	memset(&rep, 0, sizeof rep);
	err = ts_http_post(rn->http, &req, &rep);
	r->retry_after_ms = rep.retry_after_ms;
	if (err != TS_OK) {
		r->err = err == TS_ERR_PERMANENT ? TS_ERR_PERMANENT :
						   TS_ERR_TRANSIENT;
		snprintf(r->msg, sizeof r->msg, "%s: %s", h->describe,
			 rep.error[0] ? rep.error : ts_strerror(err));
		ts_http_reply_free(&rep);
		return;
	}
	r->status = (int)rep.status;
	r->err = ts_classify_http(rep.status);
	last_line(&rep.body, start, sizeof start);
	if (rep.body.len)
		ts_buf_append(&r->out, rep.body.data,
			      rep.body.len < TS_HANDLER_CAPTURE_MAX ?
				      rep.body.len : TS_HANDLER_CAPTURE_MAX);
	snprintf(r->msg, sizeof r->msg, "HTTP %ld%s%s", rep.status,
		 start[0] ? ": " : "", start);
	ts_http_reply_free(&rep);
}

void ts_handler_run(ts_handler_runner *rn, const ts_handler *h,
		    const ts_handler_call *c, ts_handler_result *r)
{
	r->err = TS_ERR_INTERNAL;
	r->retry_after_ms = -1;
	r->status = -1;
	r->timed_out = 0;
	r->msg[0] = '\0';
	if (h->kind == TS_HANDLER_COMMAND)
		run_command(h, c, r);
	else
		run_http(rn, h, c, r);
}
