/* smtp.h - SMTP submission through libesmtp, many messages per session.
 *
 * STARTTLS is required unless the caller says otherwise; the server's
 * certificate chain is checked against OpenSSL's default verify paths
 * (which honour SSL_CERT_FILE and SSL_CERT_DIR) and its name against the
 * host we connected to (DNS name or IP address), by OpenSSL, during the
 * handshake. insecure skips both checks. AUTH PLAIN or LOGIN when a user is
 * given. Every network step is bounded by timeout_ms: libesmtp's protocol
 * timeouts, and for connect(2) (which libesmtp does not bound) a per-thread
 * POSIX timer whose signal (TS_SMTP_CONNECT_SIGNAL, a real-time signal with
 * an empty handler installed on first use) interrupts the call.
 *
 * Threads: a ts_smtp is used by one thread at a time; many ts_smtp may run
 * sessions at once in different threads (each has its own SSL_CTX).
 */
#ifndef TS_SMTP_H
#define TS_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mime.h"
#include "transport.h"

#define TS_SMTP_CONNECT_SIGNAL (SIGRTMIN + 5)

enum ts_starttls {
	TS_STARTTLS_NO,       /* never, even if offered (a local relay) */
	TS_STARTTLS_TRY,      /* when offered; certificates still checked */
	TS_STARTTLS_REQUIRED, /* refuse to go on without it (the default) */
};

typedef struct ts_smtp_opts {
	const char *host;      /* DNS name or IP address */
	int port;              /* 0: 587 */
	const char *user;      /* NULL: no AUTH */
	const char *pass;
	enum ts_starttls starttls;
	int insecure;          /* do not verify certificate or host name */
	int64_t timeout_ms;    /* connect and each command; 0: 30 s */
} ts_smtp_opts;

typedef struct ts_smtp ts_smtp;

/* Prepare a client (copies what it needs from o; connects nothing).
 * Errors: TS_ERR_NOMEM, TS_ERR_INTERNAL (OpenSSL), TS_ERR_CONFIG (a host
 * name OpenSSL cannot check). */
ts_err ts_smtp_new(const ts_smtp_opts *o, ts_smtp **out, ts_detail *d);

/* Send n messages over one SMTP connection. results[i] gets TS_OK (the
 * server took the message for every recipient; id is the Message-ID),
 * TS_ERR_TRANSIENT (4xx, no connection, timeout) or TS_ERR_PERMANENT (5xx,
 * a refused certificate, no STARTTLS where required, failed AUTH). A
 * message is all or nothing: when one recipient is refused none gets it. */
void ts_smtp_send(ts_smtp *s, ts_mail *const *mails, size_t n,
		  ts_send_result *results);

/* Messages handed to ts_smtp_stream() one at a time, while it runs. */
typedef struct ts_smtp_feed {
	/* The next message and a tag for it; 0: none now. The mail stays
	 * valid and unchanged until done() is called with its tag. */
	int (*more)(void *ctx, ts_mail **mail, void **tag);
	/* The outcome of one message, as soon as it is known: every tag
	 * more() gave, exactly once, in the same order. */
	void (*done)(void *ctx, void *tag, const ts_send_result *r);
	void *ctx;
} ts_smtp_feed;

/* Send messages as feed->more() gives them, over one SMTP connection for
 * as long as it has more (a new session after every 64 messages, as
 * libesmtp holds on to what it knows of each until its session ends).
 * A message the session never got to (the connection broke while an
 * earlier one was under way) goes into the next session; the one under
 * way fails (TS_ERR_TRANSIENT: try again). Returns when more() has none,
 * or after a session in which the server answered for no message at all
 * (every message it took has that failure): the caller decides when to
 * try again. Results as ts_smtp_send(). */
void ts_smtp_stream(ts_smtp *s, const ts_smtp_feed *feed);

/* Free the client; the password is zeroed. NULL is fine. */
void ts_smtp_free(ts_smtp *s);

#endif
