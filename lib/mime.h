/* mime.h - turn a validated email payload into an RFC 5322 message.
 *
 * The message has CRLF line ends and carries Date, From, To, Cc, Reply-To,
 * Subject (RFC 2047 encoded-words when not plain ASCII, folded), Message-ID,
 * MIME-Version and either one text part or a multipart/alternative of a
 * text/plain and a text/html part. Bodies are UTF-8, sent 7bit when every
 * line is short ASCII, else quoted-printable. Bcc recipients are in the
 * envelope only, never in a header.
 */
#ifndef TS_MIME_H
#define TS_MIME_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <time.h>

#include "err.h"
#include "util.h"

typedef struct ts_mail {
	char from_addr[256];    /* envelope sender (bare address) */
	char **rcpt;            /* envelope recipients: to, cc, bcc, deduplicated */
	size_t nrcpt;
	char message_id[128];   /* without the angle brackets */
	ts_buf msg;             /* the message, CRLF line ends */
} ts_mail;

/* Options for ts_mail_build(); zero for defaults. */
typedef struct ts_mail_opts {
	const char *default_from; /* when the payload has no "from" */
	time_t date;              /* 0: now */
	const char *message_id;   /* NULL: a fresh <uuid@sender-domain> */
} ts_mail_opts;

/* Build m from an email payload that ts_payload_validate() accepted.
 * The caller frees m with ts_mail_free().
 * Errors: TS_ERR_DATA (no sender: neither payload.from nor default_from;
 * or default_from not an address), TS_ERR_NOMEM, TS_ERR_INTERNAL (no
 * randomness). */
ts_err ts_mail_build(const cJSON *payload, const ts_mail_opts *opts,
		     ts_mail *m, ts_detail *d);

void ts_mail_free(ts_mail *m);

/* Append "Name: value\r\n" for an unstructured header, folded to 78
 * columns where there is white space; as RFC 2047 B encoded-words (never
 * splitting a UTF-8 sequence, lines of at most 76) when value has bytes
 * outside printable ASCII, contains "=?", or has a word too long to fold. */
ts_err ts_mime_header(ts_buf *out, const char *name, const char *value);

/* Append text (len bytes, any of LF, CRLF or CR line ends) as
 * quoted-printable with CRLF line ends and lines of at most 76 characters.
 * The result ends with CRLF. */
ts_err ts_mime_qp(ts_buf *out, const char *text, size_t len);

/* Non-zero when text can go as 7bit: only printable ASCII, tabs and line
 * ends, no line over 76 characters. */
int ts_mime_is_7bit(const char *text, size_t len);

/* Format t as an RFC 5322 date in UTC ("Sun, 29 Nov 2026 07:00:00 +0000")
 * into buf (at least 32 bytes). */
void ts_mime_date(time_t t, char *buf, size_t size);

/* Split "Name <addr>" into the bare address (into addr, size bytes) and
 * the display name (a pointer into s and its length; length 0 when none).
 * Returns 0 when s has no usable address. */
int ts_mime_split_mailbox(const char *s, char *addr, size_t size,
			  const char **name, size_t *namelen);

#endif
