/* mime.c - RFC 5322 / MIME message building (see mime.h). */
#include "mime.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "task.h"

#define FOLD_AT 78      /* RFC 5322 "SHOULD" line length */
#define EW_LINE 76      /* RFC 2047: lines with encoded-words */
#define QP_LINE 76      /* RFC 2045 */

/* ---- headers ------------------------------------------------------------ */

/* Append a, b and c (NULL: nothing); printf was a tenth of the cost of
 * building a message. */
static ts_err cat3(ts_buf *out, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;

	if (ts_buf_reserve(out, la + lb + lc))
		return TS_ERR_NOMEM;
	memcpy(out->data + out->len, a, la);
	if (lb)
		memcpy(out->data + out->len + la, b, lb);
	if (lc)
		memcpy(out->data + out->len + la + lb, c, lc);
	out->len += la + lb + lc;
	out->data[out->len] = '\0';
	return TS_OK;
}

static int needs_encoding(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return 1;
		if (c == '=' && i + 1 < len && s[i + 1] == '?')
			return 1;
	}
	return 0;
}

/* Length of the longest prefix of s (at most max bytes) that does not end
 * inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n > 0 ? n : max; /* not UTF-8 after all: cut anywhere */
}

/* Append s as B encoded-words, folding so that no line passes EW_LINE.
 * *col is the current column; each word is preceded by a space. */
static ts_err encode_words(ts_buf *out, const char *s, size_t len, size_t *col)
{
	unsigned char b64[80];
	ts_err err;

	do {
		/* =?UTF-8?B?...?= costs 12 plus 4 per 3 bytes */
		size_t avail = EW_LINE - *col - 1;
		size_t max = avail > 12 ? (avail - 12) / 4 * 3 : 0;
		size_t n;
		int k;

		if (max < 6) { /* too little room left: fold first */
			if ((err = ts_buf_append(out, "\r\n", 2)))
				return err;
			*col = 0;
			continue;
		}
		if (max > 45)
			max = 45;
		n = utf8_cut(s, len, max);
		k = EVP_EncodeBlock(b64, (const unsigned char *)s, (int)n);
		if ((err = ts_buf_appendf(out, " =?UTF-8?B?%.*s?=", k,
					  (const char *)b64)))
			return err;
		*col += 13 + (size_t)k;
		s += n;
		len -= n;
	} while (len > 0);
	return TS_OK;
}

/* Append plain text folded before white space to keep lines short. */
static ts_err fold_plain(ts_buf *out, const char *s, size_t *col,
			 size_t min_col)
{
	ts_err err;

	while (*s) {
		const char *ws = s, *word;
		size_t seg;

		while (*s == ' ' || *s == '\t')
			s++;
		word = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		seg = (size_t)(s - ws);
		if (word > ws && *col > min_col && *col + seg > FOLD_AT) {
			if ((err = ts_buf_append(out, "\r\n", 2)))
				return err;
			*col = 0;
		}
		if ((err = ts_buf_append(out, ws, seg)))
			return err;
		*col += seg;
	}
	return TS_OK;
}

/* Can value be folded at its white space into lines of FOLD_AT? A word
 * longer than a line cannot (and one near 998 would break RFC 5322's hard
 * limit): then it goes as encoded-words, which split anywhere. */
static int folds_plain(const char *name, const char *s)
{
	size_t col = strlen(name) + 2;

	while (*s) {
		const char *start = s;
		while (*s == ' ' || *s == '\t')
			s++;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (col + (size_t)(s - start) > FOLD_AT)
			return 0;
		col = 0; /* later segments may start a line of their own */
	}
	return 1;
}

ts_err ts_mime_header(ts_buf *out, const char *name, const char *value)
{
	size_t col = strlen(name) + 1, len = strlen(value);
	ts_err err;

	if ((err = cat3(out, name, ":", NULL)))
		return err;
	if (len == 0)
		return ts_buf_append(out, " \r\n", 3);
	if (needs_encoding(value, len) || !folds_plain(name, value)) {
		err = encode_words(out, value, len, &col);
	} else {
		if (!(err = ts_buf_append(out, " ", 1))) {
			col++;
			err = fold_plain(out, value, &col, strlen(name) + 2);
		}
	}
	return err ? err : ts_buf_append(out, "\r\n", 2);
}

int ts_mime_split_mailbox(const char *s, char *addr, size_t size,
			  const char **name, size_t *namelen)
{
	const char *lt = strrchr(s, '<');
	size_t n = strlen(s), alen;

	*name = s;
	*namelen = 0;
	if (lt && n > 0 && s[n - 1] == '>') {
		const char *e = lt;
		alen = (size_t)(s + n - 1 - (lt + 1));
		if (alen == 0 || alen >= size)
			return 0;
		memcpy(addr, lt + 1, alen);
		addr[alen] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*name = s;
		*namelen = (size_t)(e - s);
		return 1;
	}
	if (n == 0 || n >= size)
		return 0;
	memcpy(addr, s, n + 1);
	return 1;
}

/* "From: "Name" <addr>" or with the name as encoded-words. */
static ts_err mailbox_header(ts_buf *out, const char *hname, const char *mbox)
{
	char addr[256];
	const char *name;
	size_t namelen, col = strlen(hname) + 1;
	ts_err err;

	if (!ts_mime_split_mailbox(mbox, addr, sizeof addr, &name, &namelen))
		return TS_ERR_DATA;
	if ((err = cat3(out, hname, ":", NULL)))
		return err;
	if (namelen == 0)
		return cat3(out, " ", addr, "\r\n");
	if (needs_encoding(name, namelen)) {
		err = encode_words(out, name, namelen, &col);
	} else if (!(err = ts_buf_append(out, " \"", 2)) &&
		   !(err = ts_buf_append(out, name, namelen))) {
		err = ts_buf_append(out, "\"", 1);
	}
	if (!err)
		err = cat3(out, " <", addr, ">\r\n");
	return err;
}

/* A payload field that is one address or an array of them. */
static size_t list_len(const cJSON *v)
{
	if (cJSON_IsString(v))
		return 1;
	return cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
}

static const char *list_at(const cJSON *v, size_t i)
{
	const cJSON *e = cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, (int)i);
	return cJSON_IsString(e) ? e->valuestring : NULL;
}

/* "To: a@x, b@y" folded after a comma when the line gets long. */
static ts_err list_header(ts_buf *out, const char *hname, const cJSON *v)
{
	size_t n = list_len(v), col = strlen(hname) + 1;
	ts_err err;

	if (n == 0)
		return TS_OK;
	if ((err = cat3(out, hname, ":", NULL)))
		return err;
	for (size_t i = 0; i < n; i++) {
		const char *a = list_at(v, i);
		size_t alen;
		if (!a)
			continue;
		alen = strlen(a);
		if (i > 0) {
			if ((err = ts_buf_append(out, ",", 1)))
				return err;
			col++;
			if (col + 1 + alen > FOLD_AT) {
				if ((err = ts_buf_append(out, "\r\n", 2)))
					return err;
				col = 0;
			}
		}
		if ((err = cat3(out, " ", a, NULL)))
			return err;
		col += 1 + alen;
	}
	return ts_buf_append(out, "\r\n", 2);
}

void ts_mime_date(time_t t, char *buf, size_t size)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed",
					 "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					    "May", "Jun", "Jul", "Aug",
					    "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- bodies ------------------------------------------------------------- */

int ts_mime_is_7bit(const char *text, size_t len)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\n' || c == '\r') {
			col = 0;
			continue;
		}
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return 0;
		if (++col > QP_LINE)
			return 0;
	}
	return 1;
}

/* Length of the line at text[i..] and of its line end (0, 1 or 2). */
static size_t line_at(const char *text, size_t len, size_t i, size_t *eol)
{
	size_t j = i;

	while (j < len && text[j] != '\n' && text[j] != '\r')
		j++;
	*eol = 0;
	if (j < len)
		*eol = (text[j] == '\r' && j + 1 < len && text[j + 1] == '\n')
			       ? 2 : 1;
	return j - i;
}

/* Append 7bit text with every line end made CRLF, ending with CRLF. */
static ts_err append_crlf(ts_buf *out, const char *text, size_t len)
{
	size_t i = 0, eol;
	ts_err err;

	while (i < len) {
		size_t n = line_at(text, len, i, &eol);
		if ((err = ts_buf_append(out, text + i, n)) ||
		    (err = ts_buf_append(out, "\r\n", 2)))
			return err;
		i += n + eol;
	}
	return TS_OK;
}

/* Bytes quoted-printable always encodes (blanks only at a line's end). */
static int qp_special(unsigned char c)
{
	return c == '=' || c >= 0x7f || (c < 0x20 && c != '\t');
}

ts_err ts_mime_qp(ts_buf *out, const char *text, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, eol;

	while (i < len) {
		size_t n = line_at(text, len, i, &eol), col = 0, room = n + 2;
		char *o;

		/* Written in place (a call per byte was most of the cost of
		 * a message): room for the tokens (a blank is encoded only at
		 * the end), a soft break per 74 characters of them at most,
		 * and the CRLF. */
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)text[i + k];
			if (qp_special(c))
				room += 2;
		}
		if (ts_buf_reserve(out, room + 3 * (room / 74 + 1) + 2))
			return TS_ERR_NOMEM;
		o = out->data + out->len;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)text[i + k];
			size_t tlen = 1;
			int last = k + 1 == n;
			int enc = qp_special(c) ||
				  ((c == ' ' || c == '\t') && last);

			if (!enc && !last) {
				/* a run of literal bytes (not the line's
				 * last), copied a line's room at a time */
				size_t e = k + 1;
				while (e + 1 < n && !qp_special((unsigned char)text[i + e]))
					e++;
				while (k < e) {
					size_t m = e - k;
					if (col >= QP_LINE - 1) {
						*o++ = '=';
						*o++ = '\r';
						*o++ = '\n';
						col = 0;
					}
					if (m > QP_LINE - 1 - col)
						m = QP_LINE - 1 - col;
					memcpy(o, text + i + k, m);
					o += m;
					col += m;
					k += m;
				}
				k--; /* the loop's k++ */
				continue;
			}
			if (enc)
				tlen = 3;
			/* Keep room for the '=' of a soft break, unless this
			 * is the line's last token. */
			if (col + tlen > (last ? QP_LINE : QP_LINE - 1)) {
				*o++ = '=';
				*o++ = '\r';
				*o++ = '\n';
				col = 0;
			}
			if (enc) {
				*o++ = '=';
				*o++ = hex[c >> 4];
				*o++ = hex[c & 15];
			} else {
				*o++ = (char)c;
			}
			col += tlen;
		}
		*o++ = '\r';
		*o++ = '\n';
		out->len = (size_t)(o - out->data);
		out->data[out->len] = '\0';
		i += n + eol;
	}
	return TS_OK;
}

static ts_err append_part(ts_buf *out, const char *ctype, const char *text)
{
	size_t len = strlen(text);
	int seven = ts_mime_is_7bit(text, len);
	ts_err err;

	if ((err = cat3(out, "Content-Type: ", ctype, "; charset=utf-8\r\n")) ||
	    (err = cat3(out, "Content-Transfer-Encoding: ",
			seven ? "7bit" : "quoted-printable", "\r\n\r\n")))
		return err;
	return seven ? append_crlf(out, text, len) : ts_mime_qp(out, text, len);
}

/* ---- the message -------------------------------------------------------- */

static ts_err add_rcpt(ts_mail *m, const char *addr)
{
	char **v;

	for (size_t i = 0; i < m->nrcpt; i++)
		if (strcasecmp(m->rcpt[i], addr) == 0)
			return TS_OK;
	if (!(v = realloc(m->rcpt, sizeof *v * (m->nrcpt + 1))))
		return TS_ERR_NOMEM;
	m->rcpt = v;
	if (!(v[m->nrcpt] = strdup(addr)))
		return TS_ERR_NOMEM;
	m->nrcpt++;
	return TS_OK;
}

static ts_err collect_rcpts(ts_mail *m, const cJSON *payload)
{
	static const char *const fields[] = { "to", "cc", "bcc" };
	ts_err err;

	for (size_t f = 0; f < 3; f++) {
		const cJSON *v =
			cJSON_GetObjectItemCaseSensitive(payload, fields[f]);
		for (size_t i = 0; i < list_len(v); i++) {
			const char *a = list_at(v, i);
			if (a && (err = add_rcpt(m, a)))
				return err;
		}
	}
	return TS_OK;
}

static ts_err make_boundary(char *buf, size_t size, const char *text,
			    const char *html)
{
	unsigned char r[12];

	for (int tries = 0; tries < 8; tries++) {
		if (ts_random(r, sizeof r))
			return TS_ERR_INTERNAL;
		snprintf(buf, size, "=_ts_");
		for (size_t i = 0; i < sizeof r; i++)
			snprintf(buf + 5 + 2 * i, size - 5 - 2 * i, "%02x", r[i]);
		/* "=_" cannot occur in quoted-printable; a 7bit part might
		 * still hold it by chance. */
		if (!strstr(text, buf) && !strstr(html, buf))
			return TS_OK;
	}
	return TS_ERR_INTERNAL;
}

static ts_err build_body(ts_buf *out, const char *text, const char *html)
{
	char boundary[64];
	ts_err err;

	if (!text || !html) {
		err = ts_buf_append(out, "MIME-Version: 1.0\r\n", 19);
		if (!err)
			err = append_part(out, text ? "text/plain" : "text/html",
					  text ? text : html);
		return err;
	}
	if ((err = make_boundary(boundary, sizeof boundary, text, html)))
		return err;
	err = ts_buf_appendf(out,
			     "MIME-Version: 1.0\r\n"
			     "Content-Type: multipart/alternative;\r\n"
			     " boundary=\"%s\"\r\n\r\n"
			     "--%s\r\n",
			     boundary, boundary);
	/* The CRLF before a delimiter belongs to the delimiter (RFC 2046
	 * 5.1.1): one more keeps each part's own last line end. */
	if (!err)
		err = append_part(out, "text/plain", text);
	if (!err)
		err = ts_buf_appendf(out, "\r\n--%s\r\n", boundary);
	if (!err)
		err = append_part(out, "text/html", html);
	if (!err)
		err = ts_buf_appendf(out, "\r\n--%s--\r\n", boundary);
	return err;
}

static const char *str_field(const cJSON *p, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static size_t text_len(const cJSON *p, const char *name)
{
	const char *s = str_field(p, name);
	size_t n = s ? strlen(s) : 0;

	return n + n / 8; /* and some for line ends and encoding */
}

static ts_err build_headers(ts_mail *m, const cJSON *payload,
			    const char *from, time_t date)
{
	char when[40];
	ts_buf *out = &m->msg;
	ts_err err;

	static __thread time_t last_t = -1;
	static __thread char last_when[40];
	time_t t = date ? date : time(NULL);

	/* One date string a second is plenty (snprintf per message is not
	 * free at thousands a second). */
	if (t != last_t) {
		ts_mime_date(t, last_when, sizeof last_when);
		last_t = t;
	}
	memcpy(when, last_when, sizeof when);
	if ((err = cat3(out, "Date: ", when, "\r\n")) ||
	    (err = mailbox_header(out, "From", from)) ||
	    (err = list_header(out, "To",
			       cJSON_GetObjectItemCaseSensitive(payload, "to"))) ||
	    (err = list_header(out, "Cc",
			       cJSON_GetObjectItemCaseSensitive(payload, "cc"))) ||
	    (err = list_header(out, "Reply-To",
			       cJSON_GetObjectItemCaseSensitive(payload,
								"replyTo"))) ||
	    (err = ts_mime_header(out, "Subject",
				  str_field(payload, "subject")
					  ? str_field(payload, "subject")
					  : "")) ||
	    (err = cat3(out, "Message-ID: <", m->message_id, ">\r\n")))
		return err;
	return TS_OK;
}

ts_err ts_mail_build(const cJSON *payload, const ts_mail_opts *opts,
		     ts_mail *m, ts_detail *d)
{
	const char *from = str_field(payload, "from");
	const char *name, *domain;
	size_t namelen;
	char uuid[40];
	ts_err err;

	memset(m, 0, sizeof *m);
	if (!from)
		from = opts ? opts->default_from : NULL;
	if (!from || !*from)
		return ts_fail(d, TS_ERR_DATA, "payload.from",
			       "no sender: give payload.from, --from or TS_EMAIL_FROM");
	if (!ts_mime_split_mailbox(from, m->from_addr, sizeof m->from_addr,
				   &name, &namelen) ||
	    !ts_valid_email_address(m->from_addr))
		return ts_fail(d, TS_ERR_DATA, "payload.from",
			       "sender is not an email address");
	if (opts && opts->message_id) {
		snprintf(m->message_id, sizeof m->message_id, "%s",
			 opts->message_id);
	} else {
		if (ts_uuid4(uuid, sizeof uuid))
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "no randomness for a Message-ID");
		domain = strrchr(m->from_addr, '@') + 1;
		if (strlen(domain) > 90)
			domain = "taskstream.invalid";
		snprintf(m->message_id, sizeof m->message_id, "%.36s@%.90s",
			 uuid, domain);
	}
	err = collect_rcpts(m, payload);
	/* One allocation for most messages: the headers and the text. */
	if (!err)
		err = ts_buf_reserve(&m->msg, 1024 + text_len(payload, "body") +
						      text_len(payload, "html"));
	if (!err)
		err = build_headers(m, payload, from, opts ? opts->date : 0);
	if (!err)
		err = build_body(&m->msg, str_field(payload, "body"),
				 str_field(payload, "html"));
	if (err) {
		ts_mail_free(m);
		if (err == TS_ERR_DATA)
			return ts_fail(d, err, "payload", "cannot build the message");
		return ts_fail(d, err, NULL, "cannot build the message: %s",
			       ts_strerror(err));
	}
	return TS_OK;
}

void ts_mail_free(ts_mail *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nrcpt; i++)
		free(m->rcpt[i]);
	free(m->rcpt);
	ts_buf_free(&m->msg);
	memset(m, 0, sizeof *m);
}
