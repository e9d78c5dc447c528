/* transport.h - deliver one validated email or SMS payload somewhere.
 *
 * A transport is opened from a URL (DESIGN.md, "Transport URLs"):
 *   smtp://[user[:pass]@]host[:port]?starttls=required|try|no&insecure=1
 *   maildir:PATH          file:PATH          -   (dry run to stdout)
 *   msg91://AUTHKEY@TEMPLATE_ID?sender=ID&api=BASE
 *   twilio://SID:TOKEN@FROM?api=BASE
 *   http://... https://...  (a remote TaskStream notification API)
 * and sends payloads that ts_payload_validate() accepted. Every outcome is
 * classified by classify.h: TS_OK sent, TS_ERR_TRANSIENT (try again later),
 * TS_ERR_PERMANENT (retrying will not help), TS_ERR_DATA (the payload
 * cannot be sent by this transport).
 *
 * Threads: a transport is used by one thread at a time; open one per
 * thread. Signals: SIGPIPE must be ignored (ts_tool_signals() does), as
 * libesmtp and OpenSSL write to sockets the server may have closed; SMTP
 * uses a real-time signal of its own to bound connect(2) (smtp.h). Secrets from the URL or from TS_SMTP_PASSWORD(_FILE),
 * TS_MSG91_AUTHKEY(_FILE), TS_TWILIO_TOKEN(_FILE) are never put into any
 * message, log line or result.
 */
#ifndef TS_TRANSPORT_H
#define TS_TRANSPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef enum ts_channel {
	TS_CHANNEL_EMAIL,
	TS_CHANNEL_SMS,
} ts_channel;

typedef struct ts_send_result {
	ts_err err;             /* TS_OK, TS_ERR_TRANSIENT, TS_ERR_PERMANENT, TS_ERR_DATA */
	int64_t retry_after_ms; /* the server's Retry-After, or -1 */
	int code;               /* the SMTP reply or HTTP status behind it, or 0 */
	char id[128];           /* provider id: Message-ID, Msg91 request id, Twilio sid */
	char msg[384];          /* why it failed, or what was done; no secrets */
} ts_send_result;

typedef struct ts_transport ts_transport;

/* Open a transport for channel from url. cfg gives defaults such as
 * cfg->from and cfg->send_timeout_ms. Nothing is connected yet.
 * Errors: TS_ERR_CONFIG (bad URL, unknown scheme, scheme not for this
 * channel, missing credential file), TS_ERR_NOMEM. */
ts_err ts_transport_open(const char *url, ts_channel channel,
			 const ts_config *cfg, ts_transport **out,
			 ts_detail *d);

/* Send one payload. Always fills r. */
void ts_transport_send(ts_transport *t, const cJSON *payload,
		       ts_send_result *r);

/* Send n payloads, reusing one connection where the transport can (SMTP:
 * one session for all). Fills results[0..n-1]. */
void ts_transport_send_many(ts_transport *t, const cJSON *const *payloads,
			    size_t n, ts_send_result *results);

/* Payloads handed to ts_transport_send_stream() one at a time. */
typedef struct ts_transport_feed {
	/* The next payload and a tag for it; 0: none now. The payload stays
	 * valid until done() is called with its tag. */
	int (*next)(void *ctx, const cJSON **payload, void **tag);
	/* Its outcome, as soon as it is known: every tag next() gave,
	 * exactly once, in the same order. */
	void (*done)(void *ctx, void *tag, const ts_send_result *r);
	void *ctx;
} ts_transport_feed;

/* Send payloads as feed->next() gives them until it has none. SMTP keeps
 * one connection for all of them (ts_smtp_stream() in smtp.h), and may
 * return early after a session in which the server answered nothing (every
 * payload it took has that failure); the others send one at a time. */
void ts_transport_send_stream(ts_transport *t, const ts_transport_feed *f);

/* The URL with any password or key replaced by "***", for logs. Owned by
 * the transport. */
const char *ts_transport_describe(const ts_transport *t);

/* Fill r: err, code (SMTP reply or HTTP status, 0 if none) and a printf
 * message; the other fields are left as they are. */
void ts_send_result_set(ts_send_result *r, ts_err err, int code,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Close and free. NULL is fine. */
void ts_transport_close(ts_transport *t);

#endif
