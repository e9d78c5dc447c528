/* smtp.c - SMTP through libesmtp (see smtp.h). */
#include <stdarg.h>
#include <stddef.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "smtp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "log.h"
#include "util.h"

/* The message text handed to libesmtp, in memory so it can rewind. */
struct cursor {
	const char *data;
	size_t len;
	int done;
	int used;               /* libesmtp asked for the text */
	int broken;             /* not fully set up: abort, never send it */
};

struct slot;

/* What one session learned beyond libesmtp's per-message status. */
struct sess {
	struct ts_smtp *s;
	int connected;
	int starttls_sent;
	int mail_sent;          /* the first MAIL FROM went out */
	int tls_ok;
	int starttls_missing;
	int cert_failed;
	char cert_reason[200];
	int in_auth;
	int auth_withheld;      /* no TLS with starttls=try: no password sent */
	int auth_code;          /* final reply to AUTH, 0 when none */
	char auth_reply[200];
	char last_reply[200];   /* last reply line from the server */
	timer_t timer;
	int have_timer;
	int64_t last_io_ms;     /* monotonic: the last reply, command or event */
	int64_t ended_ms;

	/* the messages of the session, fed while it runs */
	smtp_session_t session;
	const ts_smtp_feed *feed;
	struct slot *slots;
	size_t n;               /* slots in use (messages added) */
	size_t cur;             /* the first without an outcome */
	size_t mails_sent;      /* MAIL commands written */
	size_t done;            /* outcomes given during the session */
	int closing;            /* the server said 421: add nothing more */
};

/* One message of a session. */
struct slot {
	smtp_message_t msg;
	ts_mail *mail;
	void *tag;
	struct cursor text;
	size_t rcpt_seen;       /* RCPT replies so far */
	int rcpt_failed;
};

struct ts_smtp {
	char *host;
	char hostport[300];
	char *user;
	char *pass;
	enum ts_starttls starttls;
	int insecure;
	long timeout_ms;
	SSL_CTX *ctx;
	struct sess *cur;       /* the session running now (one thread) */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void on_connect_timer(int sig)
{
	(void)sig; /* only here to make connect(2) fail with EINTR */
}

static void global_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_connect_timer;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: connect must be interrupted */
	sigaction(TS_SMTP_CONNECT_SIGNAL, &sa, NULL);
	auth_client_init();
}

static void copy_line(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '\r' || c == '\n')
			break;
		dst[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[n] = '\0';
}

/* ---- TLS ---------------------------------------------------------------- */

static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl;
	ts_smtp *s;

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	s = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	if (s && s->cur && !s->cur->cert_failed) {
		int e = X509_STORE_CTX_get_error(x);
		s->cur->cert_failed = 1;
		snprintf(s->cur->cert_reason, sizeof s->cur->cert_reason,
			 "%s (depth %d)", X509_verify_cert_error_string(e),
			 X509_STORE_CTX_get_error_depth(x));
	}
	return ok; /* fail the handshake */
}

/* SNI: libesmtp makes the SSL object without a server name. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	ts_smtp *s;
	unsigned char buf[16];

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!s || inet_pton(AF_INET, s->host, buf) == 1 ||
	    inet_pton(AF_INET6, s->host, buf) == 1)
		return;
	SSL_set_tlsext_host_name((SSL *)ssl, s->host);
}

static ts_err make_ctx(ts_smtp *s, ts_detail *d)
{
	X509_VERIFY_PARAM *param;
	unsigned char buf[16];
	int ip;

	if (!(s->ctx = SSL_CTX_new(TLS_client_method())))
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "OpenSSL: cannot make a TLS context");
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
	/* Not TLS 1.3: its servers send NewSessionTicket records right after
	 * the handshake, and libesmtp 1.1, finding the socket readable before
	 * it has flushed its EHLO, reads for the EHLO reply first and stalls
	 * until the command timeout (about one session in three here). TLS 1.2
	 * has no post-handshake records. */
	SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION);
	SSL_CTX_set_app_data(s->ctx, s);
	SSL_CTX_set_info_callback(s->ctx, info_cb);
	if (s->insecure) {
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, NULL);
		return TS_OK;
	}
	/* Honours SSL_CERT_FILE and SSL_CERT_DIR. */
	if (SSL_CTX_set_default_verify_paths(s->ctx) != 1)
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "OpenSSL: cannot load the default CA certificates");
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, verify_cb);
	param = SSL_CTX_get0_param(s->ctx);
	X509_VERIFY_PARAM_set_hostflags(param,
					X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	ip = inet_pton(AF_INET, s->host, buf) == 1 ||
	     inet_pton(AF_INET6, s->host, buf) == 1;
	if (ip ? X509_VERIFY_PARAM_set1_ip_asc(param, s->host) != 1
	       : X509_VERIFY_PARAM_set1_host(param, s->host, 0) != 1)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "smtp URL: cannot check certificates for host '%s'",
			       s->host);
	return TS_OK;
}

/* ---- libesmtp callbacks ------------------------------------------------- */

static void disarm(struct sess *ss)
{
	struct itimerspec off;

	if (!ss->have_timer)
		return;
	memset(&off, 0, sizeof off);
	timer_settime(ss->timer, 0, &off, NULL);
}

static void on_progress(struct sess *ss, int event, void *what);

static void event_cb(smtp_session_t session, int event, void *arg, ...)
{
	struct sess *ss = arg;
	int insecure = ss->s->insecure;
	va_list ap;
	int *ok;

	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_CONNECT:
		ss->connected = 1;
		ss->last_io_ms = ts_mono_ms();
		disarm(ss);
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		ss->starttls_missing = 1;
		break;
	case SMTP_EV_STARTTLS_OK:
		ss->tls_ok = 1;
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long result = va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = insecure;
		if (!insecure && !ss->cert_failed) {
			ss->cert_failed = 1;
			snprintf(ss->cert_reason, sizeof ss->cert_reason, "%s",
				 X509_verify_cert_error_string(result));
		}
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = insecure;
		if (!insecure && !ss->cert_failed) {
			ss->cert_failed = 1;
			snprintf(ss->cert_reason, sizeof ss->cert_reason,
				 "the server sent no certificate");
		}
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		SSL *ssl;
		ok = va_arg(ap, int *);
		(void)va_arg(ap, char *);
		ssl = va_arg(ap, SSL *);
		/* libesmtp's own name check knows no IP addresses; OpenSSL
		 * already checked the name we asked for in the handshake. */
		*ok = insecure || (ssl && SSL_get_verify_result(ssl) == X509_V_OK);
		if (!*ok && !ss->cert_failed) {
			ss->cert_failed = 1;
			snprintf(ss->cert_reason, sizeof ss->cert_reason,
				 "certificate is not for %s", ss->s->host);
		}
		break;
	}
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = insecure;
		break;
	case SMTP_EV_NO_CLIENT_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 1; /* we present none */
		break;
	case SMTP_EV_MAILSTATUS:
	case SMTP_EV_RCPTSTATUS:
		(void)va_arg(ap, const char *);
		on_progress(ss, event, va_arg(ap, void *));
		break;
	case SMTP_EV_MESSAGESENT:
		on_progress(ss, event, va_arg(ap, void *));
		break;
	default:
		break;
	}
	va_end(ap);
}

/* Watch replies (never what we write: AUTH carries the password). */
static void monitor_cb(const char *buf, int len, int writing, void *arg)
{
	struct sess *ss = arg;

	ss->last_io_ms = ts_mono_ms();
	if (writing == SMTP_CB_WRITING) {
		/* libesmtp shows us commands, never message text (it turns
		 * the monitor off for that): count the MAIL commands, so
		 * that after a broken session we know which messages were
		 * never tried. Several commands may come in one write. */
		for (int i = 0; i + 10 <= len; i++)
			if ((i == 0 || buf[i - 1] == '\n') &&
			    strncasecmp(buf + i, "MAIL FROM:", 10) == 0)
				ss->mails_sent++;
		/* AUTH and STARTTLS come before the first MAIL. */
		if (ss->mail_sent)
			return;
		if (len >= 5 && strncasecmp(buf, "AUTH ", 5) == 0)
			ss->in_auth = 1;
		else if (len >= 8 && strncasecmp(buf, "STARTTLS", 8) == 0)
			ss->starttls_sent = 1;
		else if (len >= 10 && strncasecmp(buf, "MAIL FROM:", 10) == 0)
			ss->mail_sent = 1;
		return;
	}
	if (writing != SMTP_CB_READING || len < 3)
		return;
	/* The last complete line of what was read. */
	const char *end = buf + len, *line = buf;
	for (const char *p = buf; p < end; p++)
		if (*p == '\n' && p + 1 < end)
			line = p + 1;
	if (!isdigit((unsigned char)line[0]))
		return;
	copy_line(ss->last_reply, sizeof ss->last_reply, line,
		  (size_t)(end - line));
	if (strncmp(ss->last_reply, "421", 3) == 0)
		ss->closing = 1;   /* the server is closing the session */
	if (ss->in_auth && line[0] != '3') {
		ss->in_auth = 0;
		ss->auth_code = atoi(line);
		snprintf(ss->auth_reply, sizeof ss->auth_reply, "%s",
			 ss->last_reply);
	}
}

static int interact_cb(auth_client_request_t req, char **result, int fields,
		       void *arg)
{
	ts_smtp *s = arg;

	/* starttls=try promises TLS when there is some, not a password in
	 * clear text when there is none: only starttls=no says that. */
	if (s->starttls == TS_STARTTLS_TRY && s->cur && !s->cur->tls_ok) {
		s->cur->auth_withheld = 1;
		return 0;
	}
	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = s->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = s->pass ? s->pass : (char *)"";
		else
			result[i] = (char *)"";
	}
	return 1;
}

static const char *message_cb(void **ctx, int *len, void *arg)
{
	struct cursor *c = arg;

	(void)ctx; /* libesmtp free()s *ctx: leave it NULL */
	c->used = 1;
	if (!len) {
		c->done = 0;
		return NULL;
	}
	if (c->broken) {
		/* An error from the source makes libesmtp drop the
		 * connection in the middle of DATA: the server discards
		 * what it got, nobody gets a message half set up. */
		*len = 0;
		errno = ENOMEM;
		return NULL;
	}
	if (c->done) {
		*len = 0;
		return "";
	}
	c->done = 1;
	*len = (int)c->len;
	return c->data;
}

/* ---- the connect timer -------------------------------------------------- */

static void arm(struct sess *ss, long ms)
{
	struct sigevent sev;
	struct itimerspec its;

	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = TS_SMTP_CONNECT_SIGNAL;
	/* glibc 2.36 names the field only _sigev_un._tid */
	sev._sigev_un._tid = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, &ss->timer) != 0)
		return; /* no connect timeout, but still a session */
	ss->have_timer = 1;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000L;
	/* Keep interrupting, so a second address gets no more time. */
	its.it_interval.tv_nsec = 50 * 1000000L;
	timer_settime(ss->timer, 0, &its, NULL);
}

/* ---- results ------------------------------------------------------------ */

static void status_text(const smtp_status_t *st, char *buf, size_t size)
{
	char text[200];

	copy_line(text, sizeof text, st->text ? st->text : "",
		  st->text ? strlen(st->text) : 0);
	if (st->enh_class)
		snprintf(buf, size, "%d %d.%d.%d %s", st->code, st->enh_class,
			 st->enh_subject, st->enh_detail, text);
	else
		snprintf(buf, size, "%d %s", st->code, text);
}

struct rcpt_scan {
	int worst;          /* worst failing code: 5xx over 4xx */
	char text[300];
};

static void rcpt_cb(smtp_recipient_t rcpt, const char *mailbox, void *arg)
{
	struct rcpt_scan *rs = arg;
	const smtp_status_t *st = smtp_recipient_status(rcpt);
	char t[220];

	if (!st || st->code < 400)
		return;
	if (rs->worst == 0 || (st->code >= 500 && rs->worst < 500)) {
		rs->worst = st->code;
		status_text(st, t, sizeof t);
		snprintf(rs->text, sizeof rs->text, "RCPT <%s>: %s", mailbox, t);
	}
}

/* Why the session as a whole failed, when a message has no status. */
static void session_failure(const ts_smtp *s, const struct sess *ss,
			    ts_send_result *r)
{
	int e = smtp_errno();
	char buf[160];

	if (ss->cert_failed) {
		ts_send_result_set(r, TS_ERR_PERMANENT, 0,
			   "TLS: certificate of %s not accepted: %s", s->host,
			   ss->cert_reason);
	} else if (ss->starttls_missing) {
		ts_send_result_set(r, TS_ERR_PERMANENT, 0,
			   "%s offers no STARTTLS and starttls=required "
			   "(use ?starttls=no only for a trusted local relay)",
			   s->hostport);
	} else if (ss->auth_withheld) {
		ts_send_result_set(r, TS_ERR_PERMANENT, 0,
			   "%s offers no STARTTLS: the password was not sent in "
			   "clear text (starttls=try; say starttls=no to allow it)",
			   s->hostport);
	} else if (ss->auth_code >= 400) {
		ts_send_result_set(r, ts_classify_smtp(ss->auth_code), ss->auth_code,
			   "AUTH failed: %s", ss->auth_reply);
	} else if (ss->starttls_sent && !ss->tls_ok) {
		unsigned long oe = ERR_peek_last_error();
		ERR_error_string_n(oe, buf, sizeof buf);
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "TLS handshake with %s failed%s%s",
			   s->hostport, oe ? ": " : "", oe ? buf : "");
	} else if (!ss->connected) {
		if (e < 0 && -e == EINTR)
			ts_send_result_set(r, TS_ERR_TRANSIENT, 0,
				   "connect to %s: timed out after %ld ms",
				   s->hostport, s->timeout_ms);
		else if (e < 0)
			ts_send_result_set(r, ts_classify_errno(-e), 0,
				   "connect to %s: %s", s->hostport,
				   strerror_r(-e, buf, sizeof buf));
		else
			ts_send_result_set(r, TS_ERR_TRANSIENT, 0, "connect to %s: %s",
				   s->hostport,
				   smtp_strerror(e, buf, sizeof buf) ? buf
								      : "failed");
	} else if (e == SMTP_ERR_DROPPED_CONNECTION &&
		   ss->ended_ms - ss->last_io_ms >= s->timeout_ms - 50) {
		/* libesmtp reports its read timeout as a dropped connection */
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0,
			   "%s: no reply within %ld ms (timed out)%s%s",
			   s->hostport, s->timeout_ms,
			   ss->last_reply[0] ? "; last reply: " : "",
			   ss->last_reply);
	} else if (ss->last_reply[0] >= '4' && ss->last_reply[0] <= '5') {
		int code = atoi(ss->last_reply);
		ts_send_result_set(r, ts_classify_smtp(code), code, "%s said: %s",
			   s->hostport, ss->last_reply);
	} else {
		if (e < 0)
			strerror_r(-e, buf, sizeof buf);
		else if (!smtp_strerror(e, buf, sizeof buf))
			snprintf(buf, sizeof buf, "error %d", e);
		ts_send_result_set(r, TS_ERR_TRANSIENT, 0,
			   "session with %s ended early: %s", s->hostport, buf);
	}
}

static void message_result(const ts_smtp *s, const struct sess *ss,
			   smtp_message_t msg, const ts_mail *m,
			   ts_send_result *r)
{
	const smtp_status_t *rp = smtp_reverse_path_status(msg);
	const smtp_status_t *tr = smtp_message_transfer_status(msg);
	struct rcpt_scan rs = { 0 };
	char t[220];

	snprintf(r->id, sizeof r->id, "%s", m->message_id);
	if (tr && tr->code >= 200 && tr->code < 300) {
		status_text(tr, t, sizeof t);
		ts_send_result_set(r, TS_OK, tr->code, "%s", t);
		return;
	}
	if (ss->auth_code >= 400 || ss->auth_withheld) {
		/* The server's refusal of MAIL after a failed AUTH says less
		 * than the AUTH reply itself. */
		session_failure(s, ss, r);
		return;
	}
	if (rp && rp->code >= 400) {
		status_text(rp, t, sizeof t);
		ts_send_result_set(r, ts_classify_smtp(rp->code), rp->code,
			   "MAIL FROM <%s>: %s", m->from_addr, t);
		return;
	}
	smtp_enumerate_recipients(msg, rcpt_cb, &rs);
	if (rs.worst) {
		ts_send_result_set(r, ts_classify_smtp(rs.worst), rs.worst, "%s", rs.text);
		return;
	}
	if (tr && tr->code >= 300) {
		status_text(tr, t, sizeof t);
		ts_send_result_set(r, ts_classify_smtp(tr->code), tr->code, "DATA: %s", t);
		return;
	}
	session_failure(s, ss, r);
}

/* ---- public ------------------------------------------------------------- */

ts_err ts_smtp_new(const ts_smtp_opts *o, ts_smtp **out, ts_detail *d)
{
	ts_smtp *s;
	ts_err err;

	*out = NULL;
	pthread_once(&init_once, global_init);
	if (!(s = calloc(1, sizeof *s)))
		return TS_ERR_NOMEM;
	s->starttls = o->starttls;
	s->insecure = o->insecure;
	s->timeout_ms = o->timeout_ms > 0 ? (long)o->timeout_ms : 30000;
	if (!(s->host = strdup(o->host)) ||
	    (o->user && !(s->user = strdup(o->user))) ||
	    (o->pass && !(s->pass = strdup(o->pass)))) {
		ts_smtp_free(s);
		return TS_ERR_NOMEM;
	}
	snprintf(s->hostport, sizeof s->hostport,
		 strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host,
		 o->port ? o->port : 587);
	if (s->starttls != TS_STARTTLS_NO && (err = make_ctx(s, d))) {
		ts_smtp_free(s);
		return err;
	}
	*out = s;
	return TS_OK;
}

static ts_err setup_session(ts_smtp *s, smtp_session_t session,
			    struct sess *ss, auth_context_t *auth)
{
	static const int which[] = { Timeout_GREETING, Timeout_ENVELOPE,
				     Timeout_DATA, Timeout_TRANSFER,
				     Timeout_DATA2 };

	if (!smtp_set_server(session, s->hostport))
		return TS_ERR_NOMEM;
	for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
		smtp_set_timeout(session,
				 which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM,
				 s->timeout_ms);
	smtp_set_eventcb(session, event_cb, ss);
	smtp_set_monitorcb(session, monitor_cb, ss, 0);
	if (s->starttls == TS_STARTTLS_NO) {
		smtp_starttls_enable(session, Starttls_DISABLED);
	} else {
		smtp_starttls_set_ctx(session, s->ctx);
		smtp_starttls_enable(session, s->starttls == TS_STARTTLS_TRY
						      ? Starttls_ENABLED
						      : Starttls_REQUIRED);
	}
	if (s->user) {
		if (!(*auth = auth_create_context()))
			return TS_ERR_NOMEM;
		auth_set_mechanism_flags(*auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(*auth, interact_cb, s);
		smtp_auth_set_context(session, *auth);
	}
	return TS_OK;
}

/* ---- feeding a session -------------------------------------------------- */

/* Messages per session: libesmtp keeps what it knows of every message
 * (status, header table) until the session is destroyed, so a session
 * ends (QUIT) after this many and the next one starts. */
#define SESSION_MESSAGES 32

/* Put slot sl into the session as its next message. The message callback
 * goes first: when a later step fails, the text is never sent (see
 * message_cb), so no message goes out with a part of its envelope. */
static void add_slot(struct sess *ss, struct slot *sl)
{
	smtp_message_t msg = smtp_add_message(ss->session);

	sl->msg = msg;
	sl->rcpt_seen = 0;
	sl->rcpt_failed = 0;
	memset(&sl->text, 0, sizeof sl->text);
	sl->text.data = sl->mail->msg.data;
	sl->text.len = sl->mail->msg.len;
	if (!msg)
		return; /* not in the session: its outcome says why */
	if (!smtp_set_messagecb(msg, message_cb, &sl->text) ||
	    !smtp_set_reverse_path(msg, sl->mail->from_addr)) {
		sl->text.broken = 1;
		return;
	}
	for (size_t k = 0; k < sl->mail->nrcpt; k++)
		if (!smtp_add_recipient(msg, sl->mail->rcpt[k])) {
			sl->text.broken = 1;
			return;
		}
}

/* One more message from the feed, when there is room and one to have. */
static void add_more(struct sess *ss)
{
	struct slot *sl;

	if (ss->closing || ss->n >= SESSION_MESSAGES)
		return;
	sl = &ss->slots[ss->n];
	memset(sl, 0, sizeof *sl);
	if (!ss->feed->more(ss->feed->ctx, &sl->mail, &sl->tag))
		return;
	ss->n++;
	add_slot(ss, sl);
}

static void give_outcome(ts_smtp *s, struct sess *ss, struct slot *sl)
{
	ts_send_result r;

	memset(&r, 0, sizeof r);
	r.retry_after_ms = -1;
	if (!sl->msg) {
		ts_send_result_set(&r, TS_ERR_TRANSIENT, 0,
				   "cannot add the message to the SMTP session: "
				   "out of memory");
		snprintf(r.id, sizeof r.id, "%s", sl->mail->message_id);
	} else if (sl->text.broken) {
		ts_send_result_set(&r, TS_ERR_TRANSIENT, 0,
				   "cannot set up the message: out of memory");
		snprintf(r.id, sizeof r.id, "%s", sl->mail->message_id);
	} else {
		message_result(s, ss, sl->msg, sl->mail, &r);
	}
	ss->feed->done(ss->feed->ctx, sl->tag, &r);
}

/* The current message has its outcome: hand it back now, not at the end of
 * the session. */
static void message_over(struct sess *ss)
{
	give_outcome(ss->s, ss, &ss->slots[ss->cur]);
	ss->cur++;
	ss->done++;
}

/* libesmtp tells how a message is going (event_cb). It moves to the next
 * message, or to QUIT when there is none, right after the MAIL and RCPT
 * events and after the event for a message sent; so the next message is
 * added at the MAIL reply of the one before (one ahead), or at the latest
 * when that one is over. After a DATA refused, libesmtp has chosen
 * before it tells: a message added then is never tried in this session,
 * and the next session carries it (ts_smtp_stream). */
static void on_progress(struct sess *ss, int event, void *what)
{
	struct slot *sl;

	if (!ss->feed || ss->cur >= ss->n)
		return;
	sl = &ss->slots[ss->cur];
	ss->last_io_ms = ts_mono_ms();
	switch (event) {
	case SMTP_EV_MAILSTATUS: {
		const smtp_status_t *st = smtp_reverse_path_status(sl->msg);
		if (what != sl->msg)
			return;
		/* One refused recipient of several refuses the message (all
		 * or nothing); with one, DATA may go in the same write. The
		 * session's option is read for this message from here on. */
		smtp_option_require_all_recipients(ss->session,
						   sl->mail->nrcpt > 1);
		if (ss->n == ss->cur + 1)
			add_more(ss);
		if (st->code < 200 || st->code > 299) {
			message_over(ss);
			if (ss->n == ss->cur)
				add_more(ss);
		}
		return;
	}
	case SMTP_EV_RCPTSTATUS: {
		const smtp_status_t *st = smtp_recipient_status(what);
		sl->rcpt_seen++;
		if (!st || st->code < 200 || st->code > 299)
			sl->rcpt_failed = 1;
		if (sl->rcpt_seen == sl->mail->nrcpt && sl->rcpt_failed &&
		    sl->mail->nrcpt > 1) {
			message_over(ss);  /* libesmtp sends RSET next */
			if (ss->n == ss->cur)
				add_more(ss);
		}
		return;
	}
	case SMTP_EV_MESSAGESENT:
		if (what != sl->msg)
			return;
		message_over(ss);
		if (ss->n == ss->cur && sl->text.used)
			add_more(ss);
		return;
	}
}

/* One SMTP session: the first nfirst slots, then what the feed gives.
 * Returns how many messages it leaves for the next session (moved to the
 * front of slots): those never tried because the session ended early,
 * when the server answered for at least one message (*progress). A
 * session that got nowhere gives every message it holds that failure. */
static size_t run_session(ts_smtp *s, const ts_smtp_feed *feed,
			  struct slot *slots, size_t nfirst, int *progress)
{
	smtp_session_t session = NULL;
	auth_context_t auth = NULL;
	struct sess ss;
	sigset_t sig, old;
	size_t keep = 0;
	ts_err err;

	*progress = 0;
	memset(&ss, 0, sizeof ss);
	ss.s = s;
	ss.feed = feed;
	ss.slots = slots;
	ss.n = nfirst;
	err = TS_ERR_NOMEM;
	if (!(session = smtp_create_session()) ||
	    (err = setup_session(s, session, &ss, &auth))) {
		for (size_t i = 0; i < ss.n; i++) {
			ts_send_result r;
			memset(&r, 0, sizeof r);
			r.retry_after_ms = -1;
			ts_send_result_set(&r, TS_ERR_TRANSIENT, 0,
				   "cannot set up the SMTP session: %s",
				   ts_strerror(err));
			snprintf(r.id, sizeof r.id, "%s",
				 slots[i].mail->message_id);
			feed->done(feed->ctx, slots[i].tag, &r);
		}
		goto out;
	}
	ss.session = session;
	for (size_t i = 0; i < ss.n; i++)
		add_slot(&ss, &slots[i]);
	if (ss.n)
		smtp_option_require_all_recipients(session,
						   slots[0].mail->nrcpt > 1);

	s->cur = &ss;
	ERR_clear_error();
	/* The worker may block signals in its threads: ours must get in. */
	sigemptyset(&sig);
	sigaddset(&sig, TS_SMTP_CONNECT_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &sig, &old);
	arm(&ss, s->timeout_ms);
	ss.last_io_ms = ts_mono_ms();
	smtp_start_session(session);
	disarm(&ss);
	ss.ended_ms = ts_mono_ms();
	if (ss.have_timer)
		timer_delete(ss.timer);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->cur = NULL;
	ts_log_debug("smtp %s: %zu message(s), tls=%d", s->hostport, ss.n,
		     ss.tls_ok);

	/* What is left: tried (a MAIL went out for it) or not. */
	*progress = ss.done > 0;
	for (size_t i = ss.cur; i < ss.n; i++) {
		if (i < ss.mails_sent || !ss.done || !slots[i].msg ||
		    slots[i].text.broken)
			give_outcome(s, &ss, &slots[i]);
		else
			slots[keep++] = slots[i];
	}
out:
	if (session)
		smtp_destroy_session(session);
	if (auth)
		auth_destroy_context(auth);
	return keep;
}

void ts_smtp_stream(ts_smtp *s, const ts_smtp_feed *feed)
{
	struct slot *slots = calloc(SESSION_MESSAGES, sizeof *slots);
	size_t n = 0;

	if (!slots) {
		ts_send_result r;
		ts_mail *m;
		void *tag;
		while (feed->more(feed->ctx, &m, &tag)) {
			memset(&r, 0, sizeof r);
			r.retry_after_ms = -1;
			ts_send_result_set(&r, TS_ERR_TRANSIENT, 0,
					   "SMTP: out of memory");
			feed->done(feed->ctx, tag, &r);
		}
		return;
	}
	for (;;) {
		int progress;
		if (n == 0) {
			memset(&slots[0], 0, sizeof slots[0]);
			if (!feed->more(feed->ctx, &slots[0].mail, &slots[0].tag))
				break;
			n = 1;
		}
		n = run_session(s, feed, slots, n, &progress);
		if (!progress)
			break;  /* the server is not there: the caller decides */
	}
	free(slots);
}

/* ts_smtp_send: a feed over an array. */
struct array_feed {
	ts_mail *const *mails;
	ts_send_result *results;
	size_t n, next;
};

static int array_more(void *ctx, ts_mail **mail, void **tag)
{
	struct array_feed *a = ctx;

	if (a->next >= a->n)
		return 0;
	*mail = a->mails[a->next];
	*tag = &a->results[a->next];
	a->next++;
	return 1;
}

static void array_done(void *ctx, void *tag, const ts_send_result *r)
{
	(void)ctx;
	*(ts_send_result *)tag = *r;
}

void ts_smtp_send(ts_smtp *s, ts_mail *const *mails, size_t n,
		  ts_send_result *results)
{
	struct array_feed a = { mails, results, n, 0 };
	ts_smtp_feed f = { array_more, array_done, &a };

	for (size_t i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof results[i]);
		results[i].retry_after_ms = -1;
	}
	ts_smtp_stream(s, &f);
	/* A stream ends early only after a session that got nowhere: the
	 * messages it did not take would fare no better now. */
	for (size_t i = a.next; i < n && a.next > 0; i++) {
		results[i] = results[a.next - 1];
		snprintf(results[i].id, sizeof results[i].id, "%s",
			 mails[i]->message_id);
	}
}

void ts_smtp_free(ts_smtp *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->ctx);
	free(s->host);
	free(s->user);
	ts_free_secret(s->pass);
	free(s);
}
