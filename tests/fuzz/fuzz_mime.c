/* fuzz_mime.c - the email message builder (lib/mime.h): header injection
 * must be impossible.
 *
 * Input: one mode byte, then either a JSON email payload (mode & 1 == 0) or
 * NUL-separated raw fields (subject, body, html, from, to, to, cc, bcc,
 * replyTo; an empty field is absent), so any bytes can reach any field.
 * Only payloads that ts_payload_validate("email") accepts are built, as
 * every tool does. Then, of the built message:
 *  - every line ends in CRLF (no bare CR or LF anywhere), no line is longer
 *    than RFC 5322's 998 characters;
 *  - the header block's names are exactly the expected set, each once
 *    (Date, From, To, [Cc], [Reply-To], Subject, Message-ID, MIME-Version,
 *    Content-Type, [Content-Transfer-Encoding]) and never Bcc;
 *  - the Subject unfolds and decodes (RFC 2047) back to the payload's;
 *  - a multipart message has exactly its two boundaries and the closing one;
 *  - the envelope recipients are the valid, deduplicated to+cc+bcc.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "task.h"

static const uint8_t *cur_data;
static size_t cur_size;

static void fail(const char *what, const ts_mail *m)
{
	fprintf(stderr, "fuzz_mime: %s\n", what);
	if (m && m->msg.data)
		fprintf(stderr, "--- message ---\n%.*s\n--- end ---\n",
			(int)(m->msg.len < 4000 ? m->msg.len : 4000), m->msg.data);
	abort();
}

/* A raw field as a JSON string; empty means absent. */
static void add_field(cJSON *p, const char *name, const char *s, int array)
{
	if (!*s)
		return;
	if (!array) {
		cJSON_AddItemToObject(p, name, cJSON_CreateString(s));
		return;
	}
	cJSON *a = cJSON_GetObjectItemCaseSensitive(p, name);
	if (!a) {
		a = cJSON_CreateArray();
		cJSON_AddItemToObject(p, name, a);
	}
	cJSON_AddItemToArray(a, cJSON_CreateString(s));
}

static cJSON *payload_from_fields(const char *buf, size_t len)
{
	static const char *const names[] = { "subject", "body", "html", "from",
					     "to", "to", "cc", "bcc", "replyTo" };
	cJSON *p = cJSON_CreateObject();
	const char *s = buf;

	for (size_t i = 0; i < 9 && s <= buf + len; i++) {
		if (i == 0)
			cJSON_AddItemToObject(p, "subject", cJSON_CreateString(s));
		else
			add_field(p, names[i], s, i >= 4 && i != 8 ? 1 : 0);
		s += strlen(s) + 1;
	}
	return p;
}

static size_t list_count(const cJSON *v)
{
	if (cJSON_IsString(v))
		return 1;
	return cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
}

static int b64val(int c)
{
	const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(t, c) : NULL;
	return p ? (int)(p - t) : -1;
}

/* Decode standard base64 (with padding) of n chars into out; returns the
 * byte count or -1. */
static long b64dec(const char *s, size_t n, unsigned char *out)
{
	long o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0, pad++;
			} else if ((v[k] = b64val((unsigned char)s[i + k])) < 0 || pad) {
				return -1;
			}
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
			     (unsigned)v[2] << 6 | (unsigned)v[3];
		out[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)w;
	}
	return o;
}

/* The unfolded Subject value back to the text it encodes. */
static void check_subject(const char *unfolded, const char *want,
			  const ts_mail *m)
{
	size_t wl = strlen(want);

	if (strncmp(unfolded, " =?UTF-8?B?", 11) != 0) {
		/* plain: one space, then the text as given */
		if (unfolded[0] == '\0' ? wl != 0 : (unfolded[0] != ' ' ||
		    strcmp(unfolded + 1, want) != 0)) {
			if (!(wl == 0 && strcmp(unfolded, " ") == 0))
				fail("plain Subject does not unfold to the payload's", m);
		}
		return;
	}
	unsigned char *dec = malloc(strlen(unfolded) + 1);
	size_t dl = 0;
	const char *p = unfolded;
	while (*p) {
		const char *e;
		long n;
		if (strncmp(p, " =?UTF-8?B?", 11) != 0)
			fail("Subject: text between encoded-words", m);
		p += 11;
		if (!(e = strstr(p, "?=")))
			fail("Subject: unterminated encoded-word", m);
		if (e - p + 12 + 1 > 76)
			fail("Subject: encoded-word longer than 75", m);
		if ((n = b64dec(p, (size_t)(e - p), dec + dl)) < 0)
			fail("Subject: bad base64", m);
		dl += (size_t)n;
		p = e + 2;
	}
	if (dl != wl || memcmp(dec, want, wl) != 0)
		fail("encoded Subject does not decode to the payload's", m);
	free(dec);
}

/* addr occurs in s as a whole address (not inside a longer one). */
static int has_address(const char *s, const char *addr)
{
	size_t n = strlen(addr);

	for (const char *p = s; (p = strcasestr(p, addr)); p++) {
		char before = p == s ? ' ' : p[-1], after = p[n];
		if (strchr(" \t<,:", before) && strchr(" \t>,", after))
			return 1;
	}
	return 0;
}

static void check_message(const cJSON *payload, const ts_mail *m,
			  const char *bcc_marker)
{
	const char *msg = m->msg.data;
	size_t len = m->msg.len;
	const char *body;
	static char unf[1 << 17];
	const char *want[12];
	int seen[12] = { 0 }, nwant = 0;
	const cJSON *html = cJSON_GetObjectItemCaseSensitive(payload, "html");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(payload, "body");
	int multipart = html && text;

	if (!msg || len < 4 || strlen(msg) != len)
		fail("message empty or with a NUL byte", m);
	/* Line ends and lengths, everywhere. FUZZ_MIME_MAX_LINE raises the
	 * limit to look past a known long-line finding. */
	static size_t max_line;
	if (!max_line) {
		const char *e = getenv("FUZZ_MIME_MAX_LINE");
		max_line = e && atol(e) > 0 ? (size_t)atol(e) : 998;
	}
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r') {
			if (i + 1 >= len || msg[i + 1] != '\n')
				fail("bare CR", m);
			i++;
			col = 0;
		} else if (msg[i] == '\n') {
			fail("bare LF", m);
		} else if (++col > max_line) {
			fail("line longer than 998 characters", m);
		}
	}
	if (len < 2 || msg[len - 2] != '\r' || msg[len - 1] != '\n')
		fail("message does not end with CRLF", m);
	if (!(body = strstr(msg, "\r\n\r\n")))
		fail("no end of the header block", m);

	want[nwant++] = "Date";
	want[nwant++] = "From";
	want[nwant++] = "To";
	if (list_count(cJSON_GetObjectItemCaseSensitive(payload, "cc")))
		want[nwant++] = "Cc";
	if (list_count(cJSON_GetObjectItemCaseSensitive(payload, "replyTo")))
		want[nwant++] = "Reply-To";
	want[nwant++] = "Subject";
	want[nwant++] = "Message-ID";
	want[nwant++] = "MIME-Version";
	want[nwant++] = "Content-Type";
	if (!multipart)
		want[nwant++] = "Content-Transfer-Encoding";

	/* Walk the header block line by line; unfold each field. */
	const char *p = msg, *end = body + 2;
	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (*p == ' ' || *p == '\t')
			fail("header block starts with a continuation", m);
		if (!colon || colon == p)
			fail("header line without a name", m);
		for (const char *c = p; c < colon; c++)
			if (*c < 33 || *c > 126)
				fail("bad character in a header name", m);
		size_t nl = (size_t)(colon - p);
		int k;
		for (k = 0; k < nwant; k++)
			if (strlen(want[k]) == nl && strncasecmp(p, want[k], nl) == 0)
				break;
		if (k == nwant) {
			fprintf(stderr, "unexpected header %.*s\n", (int)nl, p);
			fail("unexpected header", m);
		}
		if (seen[k]++)
			fail("header given twice", m);
		/* value: this line and its continuations, CRLFs removed */
		size_t ul = 0;
		const char *v = colon + 1;
		for (;;) {
			size_t n = (size_t)(eol - v);
			if (ul + n >= sizeof unf)
				fail("header too long to check", m);
			memcpy(unf + ul, v, n);
			ul += n;
			p = eol + 2;
			if (p < end && (*p == ' ' || *p == '\t')) {
				v = p;
				eol = strstr(p, "\r\n");
				continue;
			}
			break;
		}
		unf[ul] = '\0';
		if (strncmp(want[k], "Subject", 7) == 0)
			check_subject(unf, cJSON_GetObjectItemCaseSensitive(payload, "subject")->valuestring, m);
		if (bcc_marker && has_address(unf, bcc_marker))
			fail("a Bcc address is in a header", m);
	}
	for (int k = 0; k < nwant; k++)
		if (!seen[k]) {
			fprintf(stderr, "missing header %s\n", want[k]);
			fail("missing header", m);
		}

	if (multipart) {
		static const char ct[] =
			"\r\nContent-Type: multipart/alternative;\r\n boundary=\"";
		const char *b = strstr(msg, ct);
		char delim[80], close[80];
		int nd = 0, nc = 0;
		if (!b || b > body)
			fail("multipart without a boundary", m);
		b += sizeof ct - 1;
		size_t bl = strcspn(b, "\"");
		if (bl == 0 || bl > 70)
			fail("bad boundary", m);
		snprintf(delim, sizeof delim, "--%.*s", (int)bl, b);
		snprintf(close, sizeof close, "--%.*s--", (int)bl, b);
		for (const char *l = body + 4; l < msg + len;) {
			const char *e = strstr(l, "\r\n");
			size_t n = (size_t)(e - l);
			if (n == strlen(delim) && memcmp(l, delim, n) == 0)
				nd++;
			else if (n == strlen(close) && memcmp(l, close, n) == 0)
				nc++;
			l = e + 2;
		}
		if (nd != 2 || nc != 1)
			fail("boundary lines are not exactly 2 + closing 1", m);
	}

	/* Envelope: every recipient valid, no duplicates. */
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (!ts_valid_email_address(m->rcpt[i]))
			fail("invalid envelope recipient", m);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(m->rcpt[i], m->rcpt[j]) == 0)
				fail("duplicate envelope recipient", m);
	}
	if (m->nrcpt < 1)
		fail("no envelope recipient", m);
	if (!ts_valid_email_address(m->from_addr))
		fail("invalid envelope sender", m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ts_mail_opts opts = { 0 };
	ts_mail m;
	ts_detail d;
	cJSON *payload;
	char *buf;

	if (size < 1)
		return 0;
	cur_data = data, cur_size = size;
	uint8_t mode = data[0];
	data++, size--;
	if (!(buf = malloc(size + 1)))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (mode & 1) {
		payload = payload_from_fields(buf, size);
	} else {
		/* As the tools take it: checked bytes, then JSON. */
		payload = ts_json_check_bytes(buf, size, &d) == TS_OK
				  ? cJSON_ParseWithLength(buf, size) : NULL;
	}
	free(buf);
	if (!payload)
		return 0;
	if (ts_payload_validate("email", payload, "payload", &d) != TS_OK) {
		cJSON_Delete(payload);
		return 0;
	}
	if (mode & 2)
		opts.default_from = "Default Sender <noreply@example.com>";
	if (mode & 4)
		opts.message_id = "fixed.id@example.com";
	opts.date = (mode & 8) ? 1795849200 : 0;

	/* A bcc address unique enough to look for in the headers. */
	const char *bcc_marker = NULL;
	const cJSON *bcc = cJSON_GetObjectItemCaseSensitive(payload, "bcc");
	const cJSON *b0 = cJSON_IsArray(bcc) ? cJSON_GetArrayItem(bcc, 0) : bcc;
	if (cJSON_IsString(b0) && strlen(b0->valuestring) >= 12)
		bcc_marker = b0->valuestring;
	/* ...unless it is also a visible recipient or inside another field. */
	if (bcc_marker) {
		char *all = cJSON_PrintUnformatted(payload);
		int n = 0;
		for (const char *q = all; (q = strcasestr(q, bcc_marker)); q++)
			n++;
		if (n != 1)
			bcc_marker = NULL;
		free(all);
	}

	ts_err err = ts_mail_build(payload, &opts, &m, &d);
	if (err == TS_OK) {
		check_message(payload, &m, bcc_marker);
		ts_mail_free(&m);
	} else if (err != TS_ERR_DATA) {
		fail("unexpected error from ts_mail_build", NULL);
	}
	cJSON_Delete(payload);
	return 0;
}
