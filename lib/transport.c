/* transport.c - open a transport URL and deliver payloads (transport.h).
 *
 * The local transports (dry run, maildir, file) live here, and so do the
 * HTTP ones (Msg91, Twilio, a remote TaskStream API) on top of http.c; SMTP
 * is in smtp.c, message building in mime.c.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"
#include "http.h"
#include "log.h"
#include "mime.h"
#include "smtp.h"
#include "task.h"
#include "url.h"
#include "util.h"

enum kind { K_DRY, K_MAILDIR, K_FILE, K_SMTP, K_MSG91, K_TWILIO, K_API };

struct ts_transport {
	enum kind kind;
	ts_channel channel;
	char *describe;
	char *from;            /* default sender (--from), or NULL */
	/* maildir */
	int tmpfd, newfd;
	char host[128];
	/* file */
	int fd;
	/* smtp */
	ts_smtp *smtp;
	/* http */
	ts_http *http;
	char *endpoint;
	char *secret;          /* Msg91 "authkey: KEY" header, Twilio token */
	char *sid;             /* Twilio account */
	char *sender;          /* Msg91 sender id, Twilio From */
	char *template_id;
};

static atomic_ulong maildir_counter;

/* ---- results ------------------------------------------------------------ */

void ts_send_result_set(ts_send_result *r, ts_err err, int code,
			const char *fmt, ...)
{
	va_list ap;

	r->err = err;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

static void clear_result(ts_send_result *r)
{
	memset(r, 0, sizeof *r);
	r->retry_after_ms = -1;
}

/* ---- opening ------------------------------------------------------------ */

/* A secret from the URL, else from VAR, else from the file VAR_FILE names.
 * *out stays NULL when none is given. */
static ts_err load_secret(const char *from_url, const char *var,
			  char **out, ts_detail *d)
{
	char name[64];
	const char *v;
	ts_detail sub;

	*out = NULL;
	if (from_url && *from_url)
		return (*out = strdup(from_url)) ? TS_OK : TS_ERR_NOMEM;
	v = getenv(var);
	if (v && *v)
		return (*out = strdup(v)) ? TS_OK : TS_ERR_NOMEM;
	snprintf(name, sizeof name, "%s_FILE", var);
	v = getenv(name);
	if (!v || !*v)
		return TS_OK;
	if (ts_read_secret_file(v, out, &sub))
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: %s", name, sub.msg);
	if (!**out) {
		ts_free_secret(*out);
		*out = NULL;
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: %s is empty", name, v);
	}
	return TS_OK;
}

static ts_err want_channel(const ts_url *u, ts_channel want, ts_channel got,
			   ts_detail *d)
{
	if (want == got)
		return TS_OK;
	return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: URLs are for %s, not %s",
		       u->scheme, want == TS_CHANNEL_EMAIL ? "email" : "SMS",
		       got == TS_CHANNEL_EMAIL ? "email" : "SMS");
}

/* The PATH of maildir:PATH, maildir:///PATH or file:... */
static ts_err local_path(const ts_url *u, const char **path, ts_detail *d)
{
	if (!u->opaque && (u->host[0] || u->user || u->port || u->nquery))
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s: write %s:/path (no host, no parameters)",
			       u->scheme, u->scheme);
	if (!u->path || !*u->path)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "%s: no path", u->scheme);
	*path = u->path;
	return TS_OK;
}

static ts_err open_dir(int *fd, const char *base, const char *sub,
		       ts_detail *d)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/%s", base, sub);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "maildir: %s: %s", path,
			       strerror(errno));
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "maildir: %s: %s", path,
			       strerror(errno));
	return TS_OK;
}

/* The host part of a Maildir name: '/' and ':' written as octal escapes. */
static ts_err maildir_host(char *out, size_t size)
{
	char name[64];
	size_t n = 0;

	if (gethostname(name, sizeof name) != 0 || !name[0])
		snprintf(name, sizeof name, "localhost");
	name[sizeof name - 1] = '\0';
	for (const char *p = name; *p && n + 5 < size; p++) {
		if (*p == '/' || *p == ':') {
			snprintf(out + n, size - n, "\\%03o", (unsigned)*p);
			n += 4;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return TS_OK;
}

static ts_err open_maildir(ts_transport *t, const ts_url *u, ts_detail *d)
{
	const char *path;
	int curfd = -1;
	ts_err err;

	if ((err = want_channel(u, TS_CHANNEL_EMAIL, t->channel, d)) ||
	    (err = local_path(u, &path, d)))
		return err;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "maildir: %s: %s", path,
			       strerror(errno));
	if ((err = open_dir(&t->tmpfd, path, "tmp", d)) ||
	    (err = open_dir(&t->newfd, path, "new", d)) ||
	    (err = open_dir(&curfd, path, "cur", d)))
		return err;
	close(curfd);
	return maildir_host(t->host, sizeof t->host);
}

static ts_err open_file(ts_transport *t, const ts_url *u, ts_detail *d)
{
	const char *path;
	ts_err err;

	if ((err = local_path(u, &path, d)))
		return err;
	t->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (t->fd < 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "file: %s: %s", path,
			       strerror(errno));
	return TS_OK;
}

static int int_flag(const ts_url *u, const char *key, ts_detail *d, ts_err *err)
{
	int v = ts_url_flag(u, key, 0);

	if (v < 0)
		*err = ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s URL: %s must be 1 or 0", u->scheme, key);
	return v > 0;
}

static ts_err open_smtp(ts_transport *t, const ts_url *u, const ts_config *cfg,
			ts_detail *d)
{
	static const char *const allowed[] = { "starttls", "insecure", NULL };
	ts_smtp_opts o;
	const char *tls;
	char *pass = NULL;
	ts_err err = TS_OK;

	memset(&o, 0, sizeof o);
	if ((err = want_channel(u, TS_CHANNEL_EMAIL, t->channel, d)) ||
	    (err = ts_url_check_query(u, allowed, d)))
		return err;
	if (u->opaque || !u->host[0])
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "smtp URL: no host (smtp://[user[:pass]@]host[:port])");
	if (u->path[0] && strcmp(u->path, "/") != 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "smtp URL: no path allowed");
	tls = ts_url_query(u, "starttls");
	o.starttls = TS_STARTTLS_REQUIRED;
	if (tls && strcmp(tls, "try") == 0)
		o.starttls = TS_STARTTLS_TRY;
	else if (tls && strcmp(tls, "no") == 0)
		o.starttls = TS_STARTTLS_NO;
	else if (tls && strcmp(tls, "required") != 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "smtp URL: starttls must be required, try or no");
	o.insecure = int_flag(u, "insecure", d, &err);
	if (err)
		return err;
	if (u->user && *u->user &&
	    (err = load_secret(u->pass, "TS_SMTP_PASSWORD", &pass, d)))
		return err;
	if (u->user && *u->user && !pass) {
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "smtp URL: user %s has no password (in the URL, "
			       "TS_SMTP_PASSWORD or TS_SMTP_PASSWORD_FILE)",
			       u->user);
	}
	o.host = u->host;
	o.port = u->port;
	o.user = u->user && *u->user ? u->user : NULL;
	o.pass = pass;
	o.timeout_ms = cfg ? cfg->send_timeout_ms : 0;
	err = ts_smtp_new(&o, &t->smtp, d);
	ts_free_secret(pass);
	if (!err && o.insecure)
		ts_log_warn("%s: insecure=1: the server's certificate and host "
			    "name are NOT verified", t->describe);
	if (!err && o.starttls == TS_STARTTLS_NO && o.user)
		ts_log_warn("%s: starttls=no: the password goes in clear text",
			    t->describe);
	return err;
}

/* BASE without a trailing slash, then suffix. */
static ts_err join_url(char **out, const char *base, const char *suffix)
{
	size_t n = strlen(base);
	ts_buf b = { 0 };

	while (n > 0 && base[n - 1] == '/')
		n--;
	if (ts_buf_append(&b, base, n) || ts_buf_appendf(&b, "%s", suffix)) {
		ts_buf_free(&b);
		return TS_ERR_NOMEM;
	}
	*out = b.data;
	return TS_OK;
}

static ts_err check_api_base(const char *scheme, const char *api, ts_detail *d)
{
	if (strncmp(api, "http://", 7) != 0 && strncmp(api, "https://", 8) != 0)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s URL: api must be an http:// or https:// URL",
			       scheme);
	return TS_OK;
}

static ts_err open_msg91(ts_transport *t, const ts_url *u, const ts_config *cfg,
			 ts_detail *d)
{
	static const char *const allowed[] = { "sender", "api", "insecure",
					       NULL };
	const char *api, *sender;
	char *key = NULL;
	int insecure;
	ts_err err = TS_OK;

	if ((err = want_channel(u, TS_CHANNEL_SMS, t->channel, d)) ||
	    (err = ts_url_check_query(u, allowed, d)))
		return err;
	if (u->opaque || !u->host[0] || u->port || u->pass ||
	    (u->path[0] && strcmp(u->path, "/") != 0))
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "msg91 URL: write msg91://[AUTHKEY@]TEMPLATE_ID?sender=ID");
	api = ts_url_query(u, "api");
	if (!api)
		api = "https://control.msg91.com";
	if ((err = check_api_base("msg91", api, d)))
		return err;
	insecure = int_flag(u, "insecure", d, &err);
	if (err || (err = load_secret(u->user, "TS_MSG91_AUTHKEY", &key, d)))
		return err;
	if (!key)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "msg91 URL: no auth key (in the URL, "
			       "TS_MSG91_AUTHKEY or TS_MSG91_AUTHKEY_FILE)");
	t->secret = malloc(strlen(key) + 10);
	if (t->secret)
		sprintf(t->secret, "authkey: %s", key);
	ts_free_secret(key);
	sender = ts_url_query(u, "sender");
	if (!t->secret || !(t->template_id = strdup(u->host)) ||
	    (sender && !(t->sender = strdup(sender))) ||
	    join_url(&t->endpoint, api, "/api/v5/flow/"))
		return TS_ERR_NOMEM;
	if (insecure)
		ts_log_warn("%s: insecure=1: TLS certificates are NOT verified",
			    t->describe);
	return ts_http_new(cfg ? cfg->send_timeout_ms : 0, insecure, &t->http);
}

static ts_err open_twilio(ts_transport *t, const ts_url *u,
			  const ts_config *cfg, ts_detail *d)
{
	static const char *const allowed[] = { "api", "insecure", NULL };
	const char *api;
	ts_buf path = { 0 };
	int insecure;
	ts_err err = TS_OK;

	if ((err = want_channel(u, TS_CHANNEL_SMS, t->channel, d)) ||
	    (err = ts_url_check_query(u, allowed, d)))
		return err;
	if (u->opaque || !u->host[0] || !u->user || !*u->user || u->port ||
	    (u->path[0] && strcmp(u->path, "/") != 0))
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "twilio URL: write twilio://ACCOUNT_SID[:TOKEN]@FROM");
	api = ts_url_query(u, "api");
	if (!api)
		api = "https://api.twilio.com";
	if ((err = check_api_base("twilio", api, d)))
		return err;
	insecure = int_flag(u, "insecure", d, &err);
	if (err || (err = load_secret(u->pass, "TS_TWILIO_TOKEN", &t->secret, d)))
		return err;
	if (!t->secret)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "twilio URL: no auth token (in the URL, "
			       "TS_TWILIO_TOKEN or TS_TWILIO_TOKEN_FILE)");
	if (!(t->sid = strdup(u->user)) || !(t->sender = strdup(u->host)) ||
	    ts_buf_appendf(&path, "/2010-04-01/Accounts/") ||
	    ts_http_escape(&path, u->user) ||
	    ts_buf_appendf(&path, "/Messages.json") ||
	    join_url(&t->endpoint, api, path.data)) {
		ts_buf_free(&path);
		return TS_ERR_NOMEM;
	}
	ts_buf_free(&path);
	if (insecure)
		ts_log_warn("%s: insecure=1: TLS certificates are NOT verified",
			    t->describe);
	return ts_http_new(cfg ? cfg->send_timeout_ms : 0, insecure, &t->http);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static ts_err open_api(ts_transport *t, const ts_url *u, const ts_config *cfg,
		       ts_detail *d)
{
	static const char *const allowed[] = { "insecure", NULL };
	const char *suffix = t->channel == TS_CHANNEL_EMAIL ? "/api/email/send"
							    : "/api/sms/send";
	ts_buf base = { 0 };
	int insecure;
	ts_err err = TS_OK;

	if ((err = ts_url_check_query(u, allowed, d)))
		return err;
	if (u->opaque || !u->host[0] || u->user || u->pass)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s URL: write %s://host[:port][/base] (no credentials)",
			       u->scheme, u->scheme);
	insecure = int_flag(u, "insecure", d, &err);
	if (err)
		return err;
	if (ts_buf_appendf(&base, strchr(u->host, ':') ? "%s://[%s]" : "%s://%s",
			   u->scheme, u->host) ||
	    (u->port && ts_buf_appendf(&base, ":%d", u->port)) ||
	    ts_buf_appendf(&base, "%s", u->path)) {
		ts_buf_free(&base);
		return TS_ERR_NOMEM;
	}
	err = ends_with(base.data, suffix) ? join_url(&t->endpoint, base.data, "")
					   : join_url(&t->endpoint, base.data, suffix);
	ts_buf_free(&base);
	if (err)
		return err;
	/* A ts-httpd with --token-file wants "Authorization: Bearer TOKEN". */
	char *token;
	if ((err = load_secret(NULL, "TS_API_TOKEN", &token, d)))
		return err;
	if (token) {
		t->secret = malloc(strlen(token) + 24);
		if (t->secret)
			sprintf(t->secret, "Authorization: Bearer %s", token);
		ts_free_secret(token);
		if (!t->secret)
			return TS_ERR_NOMEM;
	}
	if (insecure)
		ts_log_warn("%s: insecure=1: TLS certificates are NOT verified",
			    t->describe);
	return ts_http_new(cfg ? cfg->send_timeout_ms : 0, insecure, &t->http);
}

static ts_err check_from(const ts_config *cfg, ts_detail *d)
{
	char addr[256];
	const char *name;
	size_t namelen;

	if (!cfg || !cfg->from)
		return TS_OK;
	if (strpbrk(cfg->from, "\r\n") ||
	    !ts_mime_split_mailbox(cfg->from, addr, sizeof addr, &name,
				   &namelen) ||
	    !ts_valid_email_address(addr) ||
	    memchr(name, '"', namelen) || memchr(name, '\\', namelen))
		return ts_fail(d, TS_ERR_CONFIG, "from",
			       "--from: '%.200s' is not an email address", cfg->from);
	return TS_OK;
}

ts_err ts_transport_open(const char *url, ts_channel channel,
			 const ts_config *cfg, ts_transport **out,
			 ts_detail *d)
{
	ts_transport *t;
	ts_url u;
	ts_err err;

	*out = NULL;
	ts_detail_clear(d);
	if (!url || !*url)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "no %s URL given",
			       channel == TS_CHANNEL_EMAIL ? "--email-url" : "--sms-url");
	if ((err = ts_url_parse(url, &u, d)))
		return err;
	if (!(t = calloc(1, sizeof *t))) {
		ts_url_free(&u);
		return TS_ERR_NOMEM;
	}
	t->channel = channel;
	t->tmpfd = t->newfd = t->fd = -1;
	t->describe = ts_url_describe(&u, strcmp(u.scheme, "msg91") == 0);
	if (!t->describe) {
		err = TS_ERR_NOMEM;
		goto out;
	}
	if (channel == TS_CHANNEL_EMAIL && cfg && cfg->from &&
	    ((err = check_from(cfg, d)) || !(t->from = strdup(cfg->from)))) {
		err = err ? err : TS_ERR_NOMEM;
		goto out;
	}
	if (strcmp(u.scheme, "-") == 0) {
		t->kind = K_DRY;
	} else if (strcmp(u.scheme, "maildir") == 0) {
		t->kind = K_MAILDIR;
		err = open_maildir(t, &u, d);
	} else if (strcmp(u.scheme, "file") == 0) {
		t->kind = K_FILE;
		err = open_file(t, &u, d);
	} else if (strcmp(u.scheme, "smtp") == 0) {
		t->kind = K_SMTP;
		err = open_smtp(t, &u, cfg, d);
	} else if (strcmp(u.scheme, "msg91") == 0) {
		t->kind = K_MSG91;
		err = open_msg91(t, &u, cfg, d);
	} else if (strcmp(u.scheme, "twilio") == 0) {
		t->kind = K_TWILIO;
		err = open_twilio(t, &u, cfg, d);
	} else if (strcmp(u.scheme, "http") == 0 ||
		   strcmp(u.scheme, "https") == 0) {
		t->kind = K_API;
		err = open_api(t, &u, cfg, d);
	} else if (strcmp(u.scheme, "smtps") == 0) {
		err = ts_fail(d, TS_ERR_CONFIG, NULL,
			      "smtps: (implicit TLS) is not supported: use "
			      "smtp://host:587 with STARTTLS");
	} else {
		err = ts_fail(d, TS_ERR_CONFIG, NULL,
			      "unknown transport '%.32s:' (smtp, maildir, file, "
			      "msg91, twilio, http, https or -)", u.scheme);
	}
out:
	ts_url_free(&u);
	if (err == TS_ERR_NOMEM && !d->msg[0])
		ts_fail(d, err, NULL, "out of memory");
	if (err) {
		ts_transport_close(t);
		return err;
	}
	*out = t;
	return TS_OK;
}

const char *ts_transport_describe(const ts_transport *t)
{
	return t && t->describe ? t->describe : "?";
}

void ts_transport_close(ts_transport *t)
{
	if (!t)
		return;
	if (t->tmpfd >= 0)
		close(t->tmpfd);
	if (t->newfd >= 0)
		close(t->newfd);
	if (t->fd >= 0)
		close(t->fd);
	ts_smtp_free(t->smtp);
	ts_http_free(t->http);
	free(t->describe);
	free(t->from);
	free(t->endpoint);
	ts_free_secret(t->secret);
	free(t->sid);
	free(t->sender);
	free(t->template_id);
	free(t);
}

/* ---- local transports --------------------------------------------------- */

static ts_err write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return TS_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return TS_OK;
}

/* One line, one write(2): concurrent writers never interleave. */
static void write_line(int fd, cJSON *obj, const char *what, ts_send_result *r)
{
	char *s = cJSON_PrintUnformatted(obj);
	size_t len;
	ssize_t n;

	if (!s) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "%s: out of memory", what);
		return;
	}
	len = strlen(s);
	s[len] = '\n'; /* replaces the NUL; length known */
	do
		n = write(fd, s, len + 1);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(len + 1))
		ts_send_result_set(r, ts_classify_errno(n < 0 ? errno : EIO), 0,
			   "%s: %s", what,
			   n < 0 ? strerror(errno) : "short write");
	free(s);
}

static void deliver_maildir(ts_transport *t, const ts_mail *m,
			    ts_send_result *r)
{
	char name[256];
	ts_buf lf = { 0 };
	int fd, e;
	ts_err err;

	snprintf(name, sizeof name, "%lld.%d_%lu.%s",
		 (long long)(ts_now_ms() / 1000), (int)getpid(),
		 atomic_fetch_add(&maildir_counter, 1) + 1, t->host);
	/* Maildir files use LF line ends. */
	err = ts_buf_appendf(&lf, "Return-Path: <%s>\n", m->from_addr);
	for (size_t i = 0; !err && i < m->msg.len; i++)
		if (!(m->msg.data[i] == '\r' && i + 1 < m->msg.len &&
		      m->msg.data[i + 1] == '\n'))
			err = ts_buf_append(&lf, m->msg.data + i, 1);
	if (err) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "maildir: out of memory");
		goto out;
	}
	fd = openat(t->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		ts_send_result_set(r, ts_classify_errno(e), 0, "maildir: tmp/%s: %s",
			   name, strerror(e));
		goto out;
	}
	err = write_all(fd, lf.data, lf.len);
	e = errno;
	if (!err && fsync(fd) != 0) {
		err = TS_ERR_IO;
		e = errno;
	}
	close(fd);
	if (!err && renameat(t->tmpfd, name, t->newfd, name) != 0) {
		err = TS_ERR_IO;
		e = errno;
	}
	if (err) {
		unlinkat(t->tmpfd, name, 0);
		ts_send_result_set(r, ts_classify_errno(e), 0, "maildir: %s: %s", name,
			   strerror(e));
		goto out;
	}
	fsync(t->newfd);
	ts_send_result_set(r, TS_OK, 0, "delivered to new/%s", name);
out:
	ts_buf_free(&lf);
}

static cJSON *rcpt_array(const ts_mail *m)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; a && i < m->nrcpt; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(m->rcpt[i]));
	return a;
}

static void dry_email(const ts_mail *m, ts_send_result *r)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddTrueToObject(o, "dryRun") ||
	    !cJSON_AddStringToObject(o, "channel", "email") ||
	    !cJSON_AddStringToObject(o, "from", m->from_addr) ||
	    !cJSON_AddItemToObject(o, "rcpt", rcpt_array(m)) ||
	    !cJSON_AddStringToObject(o, "messageId", m->message_id) ||
	    !cJSON_AddStringToObject(o, "message", m->msg.data)) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "dry run: out of memory");
	} else {
		ts_send_result_set(r, TS_OK, 0, "dry run: written to stdout");
		write_line(STDOUT_FILENO, o, "dry run: stdout", r);
	}
	cJSON_Delete(o);
}

/* {"dryRun":true,"channel":..,"payload":..} or {"sentAt":..,..} */
static void payload_line(ts_transport *t, const cJSON *payload,
			 ts_send_result *r)
{
	cJSON *o = cJSON_CreateObject(), *p = cJSON_Duplicate(payload, 1);
	char now[40];
	int dry = t->kind == K_DRY;

	ts_now_rfc3339(now, sizeof now);
	if (!o || !p ||
	    !(dry ? cJSON_AddTrueToObject(o, "dryRun")
		  : cJSON_AddStringToObject(o, "sentAt", now)) ||
	    !cJSON_AddStringToObject(o, "channel",
				     t->channel == TS_CHANNEL_EMAIL ? "email"
								    : "sms")) {
		cJSON_Delete(p);
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "out of memory");
		goto out;
	}
	cJSON_AddItemToObject(o, "payload", p);
	ts_send_result_set(r, TS_OK, 0, dry ? "dry run: written to stdout"
				    : "appended to the file");
	write_line(dry ? STDOUT_FILENO : t->fd, o, dry ? "dry run: stdout" : "file",
		   r);
out:
	cJSON_Delete(o);
}

/* ---- HTTP transports ---------------------------------------------------- */

static const char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Common handling of "no reply" and of statuses that mean "later". */
static int http_failed(const char *who, ts_err err, const ts_http_reply *rep,
		       ts_send_result *r)
{
	if (err == TS_ERR_NOMEM) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "%s: out of memory", who);
		return 1;
	}
	if (err) {
		ts_send_result_set(r, err, 0, "%s: %s", who, rep->error);
		return 1;
	}
	r->retry_after_ms = rep->retry_after_ms;
	return 0;
}

static void reply_text(const ts_http_reply *rep, const char *field,
		       char *buf, size_t size)
{
	cJSON *o = cJSON_Parse(rep->body.data);
	const char *s = o ? json_str(o, field) : NULL;

	if (s)
		snprintf(buf, size, "%s", s);
	else
		snprintf(buf, size, "%.120s", rep->body.data ? rep->body.data : "");
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	cJSON_Delete(o);
}

static void send_msg91(ts_transport *t, const cJSON *payload, ts_send_result *r)
{
	const char *mobile = json_str(payload, "mobile");
	const char *headers[] = { t->secret, "Accept: application/json", NULL };
	cJSON *body = cJSON_CreateObject(), *recips, *rcpt, *reply = NULL;
	const cJSON *f;
	ts_http_reply rep;
	ts_http_request req;
	char *json = NULL, text[200];
	ts_err err;

	memset(&rep, 0, sizeof rep);
	if (!body || !cJSON_AddStringToObject(body, "template_id", t->template_id) ||
	    (t->sender && !cJSON_AddStringToObject(body, "sender", t->sender)) ||
	    !cJSON_AddStringToObject(body, "short_url", "0") ||
	    !(recips = cJSON_AddArrayToObject(body, "recipients")) ||
	    !(rcpt = cJSON_CreateObject()))
		goto nomem;
	cJSON_AddItemToArray(recips, rcpt);
	/* Msg91 wants the number without '+'. */
	if (!cJSON_AddStringToObject(rcpt, "mobiles",
				     mobile[0] == '+' ? mobile + 1 : mobile))
		goto nomem;
	cJSON_ArrayForEach(f, payload) {
		if (strcmp(f->string, "mobile") == 0 || !cJSON_IsString(f))
			continue;
		if (!cJSON_AddStringToObject(rcpt, f->string, f->valuestring))
			goto nomem;
	}
	if (!(json = cJSON_PrintUnformatted(body)))
		goto nomem;
	req = (ts_http_request){ .url = t->endpoint,
				 .content_type = "application/json",
				 .body = json,
				 .body_len = strlen(json),
				 .headers = headers };
	err = ts_http_post(t->http, &req, &rep);
	if (http_failed("msg91", err, &rep, r))
		goto out;
	r->code = (int)rep.status;
	reply = cJSON_Parse(rep.body.data);
	reply_text(&rep, "message", text, sizeof text);
	if (ts_classify_http(rep.status) == TS_ERR_TRANSIENT) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, (int)rep.status,
			   "msg91: HTTP %ld: %s", rep.status, text);
	} else if (rep.status >= 200 && rep.status < 300 && reply &&
		   json_str(reply, "type") &&
		   strcmp(json_str(reply, "type"), "success") == 0) {
		ts_send_result_set(r, TS_OK, (int)rep.status, "msg91: accepted");
		snprintf(r->id, sizeof r->id, "%.127s", text);
	} else {
		ts_send_result_set(r, TS_ERR_PERMANENT, (int)rep.status,
			   "msg91: HTTP %ld: %s", rep.status,
			   text[0] ? text : "no \"type\":\"success\" in the reply");
	}
	goto out;
nomem:
	ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "msg91: out of memory");
out:
	cJSON_Delete(reply);
	cJSON_Delete(body);
	if (json) {
		explicit_bzero(json, strlen(json));
		free(json);
	}
	ts_http_reply_free(&rep);
}

static ts_err form_field(ts_buf *b, const char *name, const char *value,
			 const char *prefix)
{
	ts_err err = ts_buf_appendf(b, "%s%s=%s", b->len ? "&" : "", name,
				    prefix);
	return err ? err : ts_http_escape(b, value);
}

static void send_twilio(ts_transport *t, const cJSON *payload,
			ts_send_result *r)
{
	const char *mobile = json_str(payload, "mobile");
	const char *text = json_str(payload, "message");
	int service = strncmp(t->sender, "MG", 2) == 0;
	ts_http_reply rep;
	ts_http_request req;
	ts_buf form = { 0 };
	cJSON *reply = NULL;
	char why[200];
	ts_err err;

	memset(&rep, 0, sizeof rep);
	if (!text) {
		ts_send_result_set(r, TS_ERR_DATA, 0,
			   "payload.message: required by Twilio (the SMS text)");
		return;
	}
	/* Twilio wants E.164: a leading '+'. */
	if (form_field(&form, "To", mobile[0] == '+' ? mobile + 1 : mobile, "%2B") ||
	    form_field(&form, service ? "MessagingServiceSid" : "From",
		       t->sender, "") ||
	    form_field(&form, "Body", text, "")) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "twilio: out of memory");
		goto out;
	}
	req = (ts_http_request){ .url = t->endpoint,
				 .content_type = "application/x-www-form-urlencoded",
				 .body = form.data,
				 .body_len = form.len,
				 .user = t->sid,
				 .pass = t->secret };
	err = ts_http_post(t->http, &req, &rep);
	if (http_failed("twilio", err, &rep, r))
		goto out;
	reply = cJSON_Parse(rep.body.data);
	if (rep.status >= 200 && rep.status < 300 && reply && json_str(reply, "sid")) {
		ts_send_result_set(r, TS_OK, (int)rep.status, "twilio: %s",
			   json_str(reply, "status") ? json_str(reply, "status")
						     : "accepted");
		snprintf(r->id, sizeof r->id, "%s", json_str(reply, "sid"));
		goto out;
	}
	reply_text(&rep, "message", why, sizeof why);
	err = ts_classify_http(rep.status);
	if (err == TS_OK)
		err = TS_ERR_PERMANENT; /* 2xx without a message sid */
	if (reply && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(reply, "code")))
		ts_send_result_set(r, err, (int)rep.status, "twilio: HTTP %ld: error %d: %s",
			   rep.status,
			   cJSON_GetObjectItemCaseSensitive(reply, "code")->valueint,
			   why);
	else
		ts_send_result_set(r, err, (int)rep.status, "twilio: HTTP %ld: %s",
			   rep.status, why);
out:
	cJSON_Delete(reply);
	ts_buf_free(&form);
	ts_http_reply_free(&rep);
}

static void send_api(ts_transport *t, const cJSON *payload, ts_send_result *r)
{
	char *json = cJSON_PrintUnformatted(payload);
	ts_http_reply rep;
	ts_http_request req;
	cJSON *reply = NULL;
	char why[200];
	ts_err err;

	memset(&rep, 0, sizeof rep);
	if (!json) {
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "out of memory");
		return;
	}
	const char *headers[] = { t->secret, NULL };
	req = (ts_http_request){ .url = t->endpoint,
				 .content_type = "application/json",
				 .body = json,
				 .body_len = strlen(json),
				 .headers = t->secret ? headers : NULL };
	err = ts_http_post(t->http, &req, &rep);
	if (http_failed(t->endpoint, err, &rep, r))
		goto out;
	reply = cJSON_Parse(rep.body.data);
	reply_text(&rep, "error", why, sizeof why);
	if (rep.status >= 200 && rep.status < 300 && reply &&
	    json_str(reply, "status") && strcmp(json_str(reply, "status"), "sent") == 0) {
		ts_send_result_set(r, TS_OK, (int)rep.status, "sent by %s", t->endpoint);
		if (json_str(reply, "id"))
			snprintf(r->id, sizeof r->id, "%s", json_str(reply, "id"));
		goto out;
	}
	/* The notification API: 400 invalid, 502 refused for good, 503
	 * later; anything else as any HTTP server. */
	err = rep.status == 502 ? TS_ERR_PERMANENT : ts_classify_http(rep.status);
	if (err == TS_OK)
		err = TS_ERR_PERMANENT;
	ts_send_result_set(r, err, (int)rep.status, "%s: HTTP %ld: %s", t->endpoint,
		   rep.status, why);
out:
	cJSON_Delete(reply);
	free(json);
	ts_http_reply_free(&rep);
}

/* ---- sending ------------------------------------------------------------ */

static void send_emails(ts_transport *t, const cJSON *const *payloads,
			size_t n, ts_send_result *results)
{
	ts_mail *mails = calloc(n, sizeof *mails);
	ts_mail **batch = calloc(n, sizeof *batch);
	ts_send_result *batch_res = calloc(n, sizeof *batch_res);
	size_t *idx = calloc(n, sizeof *idx), nb = 0;
	ts_mail_opts mo = { .default_from = t->from };
	ts_detail d;

	if (!mails || !batch || !batch_res || !idx) {
		for (size_t i = 0; i < n; i++)
			if (!results[i].err)
				ts_send_result_set(&results[i], TS_ERR_TRANSIENT, 0,
					   "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ts_err err;
		if (results[i].err)
			continue;
		err = ts_mail_build(payloads[i], &mo, &mails[i], &d);
		if (err) {
			ts_send_result_set(&results[i],
				   err == TS_ERR_DATA ? TS_ERR_DATA : TS_ERR_TRANSIENT,
				   0, "%s%s%s", d.field, d.field[0] ? ": " : "",
				   d.msg);
			continue;
		}
		snprintf(results[i].id, sizeof results[i].id, "%s",
			 mails[i].message_id);
		switch (t->kind) {
		case K_SMTP:
			batch[nb] = &mails[i];
			idx[nb++] = i;
			break;
		case K_MAILDIR:
			deliver_maildir(t, &mails[i], &results[i]);
			break;
		default:
			dry_email(&mails[i], &results[i]);
			break;
		}
	}
	if (nb > 0) {
		ts_smtp_send(t->smtp, batch, nb, batch_res);
		for (size_t k = 0; k < nb; k++)
			results[idx[k]] = batch_res[k];
	}
out:
	if (mails)
		for (size_t i = 0; i < n; i++)
			ts_mail_free(&mails[i]);
	free(mails);
	free(batch);
	free(batch_res);
	free(idx);
}

void ts_transport_send_many(ts_transport *t, const cJSON *const *payloads,
			    size_t n, ts_send_result *results)
{
	const char *type = t->channel == TS_CHANNEL_EMAIL ? "email" : "sms";
	int need_mail = 0;
	ts_detail d;

	for (size_t i = 0; i < n; i++) {
		clear_result(&results[i]);
		/* Callers validate; this keeps a forgotten check from
		 * reaching an SMTP header. */
		if (ts_payload_validate(type, payloads[i], "payload", &d)) {
			ts_send_result_set(&results[i], TS_ERR_DATA, 0, "%s%s%s", d.field,
				   d.field[0] ? ": " : "", d.msg);
			continue;
		}
		switch (t->kind) {
		case K_FILE:
			payload_line(t, payloads[i], &results[i]);
			break;
		case K_DRY:
			if (t->channel == TS_CHANNEL_EMAIL)
				need_mail = 1;
			else
				payload_line(t, payloads[i], &results[i]);
			break;
		case K_MSG91:
			send_msg91(t, payloads[i], &results[i]);
			break;
		case K_TWILIO:
			send_twilio(t, payloads[i], &results[i]);
			break;
		case K_API:
			send_api(t, payloads[i], &results[i]);
			break;
		case K_SMTP:
		case K_MAILDIR:
			need_mail = 1;
			break;
		}
	}
	if (need_mail)
		send_emails(t, payloads, n, results);
}

/* ts_transport_send_stream over SMTP: payloads from the caller's feed
 * become mails for ts_smtp_stream(); one that cannot be a mail gets its
 * outcome at once. */
struct mail_feed {
	ts_transport *t;
	const ts_transport_feed *f;
};

struct fed_mail {
	ts_mail mail;
	void *tag;
};

static int mail_more(void *ctx, ts_mail **mail, void **tag)
{
	struct mail_feed *mf = ctx;
	ts_mail_opts mo = { .default_from = mf->t->from };
	const cJSON *payload;
	void *ftag;
	ts_send_result r;
	ts_detail d;

	while (mf->f->next(mf->f->ctx, &payload, &ftag)) {
		struct fed_mail *fm = calloc(1, sizeof *fm);
		ts_err err;

		clear_result(&r);
		if (!fm) {
			ts_send_result_set(&r, TS_ERR_TRANSIENT, 0, "out of memory");
		} else if (ts_payload_validate("email", payload, "payload", &d) ||
			   (err = ts_mail_build(payload, &mo, &fm->mail, &d)) ==
				   TS_ERR_DATA) {
			ts_send_result_set(&r, TS_ERR_DATA, 0, "%s%s%s", d.field,
					   d.field[0] ? ": " : "", d.msg);
		} else if (err) {
			ts_send_result_set(&r, TS_ERR_TRANSIENT, 0, "%s", d.msg);
		} else {
			fm->tag = ftag;
			*mail = &fm->mail;
			*tag = fm;
			return 1;
		}
		if (fm) {
			ts_mail_free(&fm->mail);
			free(fm);
		}
		mf->f->done(mf->f->ctx, ftag, &r);
	}
	return 0;
}

static void mail_done(void *ctx, void *tag, const ts_send_result *r)
{
	struct mail_feed *mf = ctx;
	struct fed_mail *fm = tag;

	mf->f->done(mf->f->ctx, fm->tag, r);
	ts_mail_free(&fm->mail);
	free(fm);
}

void ts_transport_send_stream(ts_transport *t, const ts_transport_feed *f)
{
	const cJSON *payload;
	void *tag;
	ts_send_result r;

	if (t->kind == K_SMTP) {
		struct mail_feed mf = { t, f };
		ts_smtp_feed sf = { mail_more, mail_done, &mf };
		ts_smtp_stream(t->smtp, &sf);
		return;
	}
	while (f->next(f->ctx, &payload, &tag)) {
		ts_transport_send(t, payload, &r);
		f->done(f->ctx, tag, &r);
	}
}

void ts_transport_send(ts_transport *t, const cJSON *payload,
		       ts_send_result *r)
{
	const cJSON *one[1] = { payload };

	ts_transport_send_many(t, one, 1, r);
}
