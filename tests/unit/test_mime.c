/* test_mime.c - RFC 5322 / MIME building: encoded-words, folding,
 * quoted-printable, multipart/alternative, envelope, no Bcc header. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

/* ---- helpers: decode what we encoded ------------------------------------ */

/* Every line ends in CRLF and none is longer than max (without CRLF). */
static void check_lines(const char *s, size_t len, size_t max)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			fail_msg("bare LF at byte %zu", i);
		if (s[i] == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				fail_msg("bare CR at byte %zu", i);
			i++;
			col = 0;
			continue;
		}
		if (++col > max)
			fail_msg("line longer than %zu at byte %zu: %.90s", max,
				 i, s + i - col + 1);
	}
	if (len < 2 || s[len - 2] != '\r' || s[len - 1] != '\n')
		fail_msg("does not end in CRLF");
}

/* Unfold a header and decode its =?UTF-8?B?..?= words (RFC 2047:
 * white space between adjacent encoded-words is dropped). */
static char *decode_header(const char *h)
{
	char *out = calloc(1, strlen(h) + 1), *o = out;
	const char *p = strchr(h, ':') + 1;
	int last_was_word = 0;

	while (*p == ' ')
		p++;
	while (*p) {
		if (p[0] == '\r' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (strncmp(p, "=?UTF-8?B?", 10) == 0) {
			const char *e = strstr(p + 10, "?=");
			unsigned char buf[200];
			int n, pad = 0;
			size_t blen = (size_t)(e - p - 10);
			assert_true(blen <= 64 && blen % 4 == 0);
			n = EVP_DecodeBlock(buf, (const unsigned char *)p + 10, (int)blen);
			if (blen >= 1 && p[10 + blen - 1] == '=')
				pad++;
			if (blen >= 2 && p[10 + blen - 2] == '=')
				pad++;
			if (last_was_word)
				while (o > out && o[-1] == ' ')
					o--;
			memcpy(o, buf, (size_t)(n - pad));
			o += n - pad;
			p = e + 2;
			last_was_word = 1;
			continue;
		}
		if (*p != ' ')
			last_was_word = 0;
		*o++ = *p++;
	}
	*o = '\0';
	return out;
}

static char *qp_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=' && i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
		} else if (s[i] == '=') {
			unsigned v;
			assert_true(i + 2 < len);
			assert_int_equal(sscanf(s + i + 1, "%2X", &v), 1);
			*o++ = (char)v;
			i += 2;
		} else if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
			*o++ = '\n';
			i++;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static char *header_of(const ts_buf *b, const char *name)
{
	char key[64];
	const char *p, *end;
	char *h;

	snprintf(key, sizeof key, "\r\n%s:", name);
	if (strncmp(b->data, key + 2, strlen(key + 2)) == 0)
		p = b->data;
	else if ((p = strstr(b->data, key)))
		p += 2;
	else
		return NULL;
	end = p;
	do
		end = strstr(end, "\r\n") + 2;
	while (*end == ' ' || *end == '\t');
	h = strndup(p, (size_t)(end - p - 2));
	return h;
}

/* ---- headers ------------------------------------------------------------ */

static void header_roundtrip(const char *value, int want_encoded)
{
	ts_buf b = { 0 };
	char *dec;

	assert_int_equal(ts_mime_header(&b, "Subject", value), TS_OK);
	check_lines(b.data, b.len, 78);
	if (want_encoded)
		assert_non_null(strstr(b.data, "=?UTF-8?B?"));
	else
		assert_null(strstr(b.data, "=?"));
	/* RFC 2047: encoded-word lines at most 76 */
	if (want_encoded)
		check_lines(b.data, b.len, 76);
	b.data[b.len - 2] = '\0';
	dec = decode_header(b.data);
	assert_string_equal(dec, value);
	free(dec);
	ts_buf_free(&b);
}

static void test_subject(void **state)
{
	(void)state;
	header_roundtrip("Hello", 0);
	header_roundtrip("", 0);
	header_roundtrip("Grüße aus Köln", 1);
	header_roundtrip("日本語のメールの件名はとても長くなることがありますので、"
			 "正しく折り返す必要があります。これは試験です。", 1);
	header_roundtrip("emoji 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀", 1);
	/* looks like an encoded-word: must be encoded itself */
	header_roundtrip("=?UTF-8?B?Zm9v?= is literal", 1);
	/* control characters are not sent raw */
	header_roundtrip("bell\x07here", 1);
	/* plain ASCII, long: folded at spaces, unfolds back */
	header_roundtrip("A plain but rather long subject line that goes on and on "
			 "well past the seventy-eight column limit of RFC 5322", 0);
	/* words too long to fold (up to the 998-byte subject limit) go as
	 * encoded-words, which split anywhere */
	{
		char w[999];
		memset(w, 'x', 998);
		w[998] = '\0';
		header_roundtrip(w, 1);
		w[69] = '\0';
		header_roundtrip(w, 0);
		w[69] = ' ';
		w[200] = '\0';
		header_roundtrip(w, 1);
	}
}

static void test_utf8_never_split(void **state)
{
	/* 2-byte characters: an odd chunk size would split one */
	const char *v = "ééééééééééééééééééééééééééééééééééééééééééééééééé";
	ts_buf b = { 0 };

	(void)state;
	assert_int_equal(ts_mime_header(&b, "Subject", v), TS_OK);
	/* decode each word on its own: each must be whole UTF-8 */
	for (const char *p = b.data; (p = strstr(p, "=?UTF-8?B?")); ) {
		const char *e = strstr(p + 10, "?=");
		unsigned char buf[100];
		int n = EVP_DecodeBlock(buf, (const unsigned char *)p + 10,
					(int)(e - p - 10));
		while (n > 0 && buf[n - 1] == 0)
			n--;
		assert_true(n % 2 == 0);
		assert_int_equal(buf[0], 0xc3);
		p = e;
	}
	ts_buf_free(&b);
}

static void test_split_mailbox(void **state)
{
	char addr[256];
	const char *name;
	size_t n;

	(void)state;
	assert_true(ts_mime_split_mailbox("a@b.c", addr, sizeof addr, &name, &n));
	assert_string_equal(addr, "a@b.c");
	assert_int_equal(n, 0);
	assert_true(ts_mime_split_mailbox("  Jo Ann  <jo@x.org>", addr, sizeof addr,
					  &name, &n));
	assert_string_equal(addr, "jo@x.org");
	assert_int_equal(n, 6);
	assert_memory_equal(name, "Jo Ann", 6);
	assert_false(ts_mime_split_mailbox("Name <>", addr, sizeof addr, &name, &n));
	assert_false(ts_mime_split_mailbox("", addr, sizeof addr, &name, &n));
}

static void test_date(void **state)
{
	char buf[40];

	(void)state;
	ts_mime_date(1796022000, buf, sizeof buf); /* 2026-11-30T07:00:00Z */
	assert_string_equal(buf, "Mon, 30 Nov 2026 07:00:00 +0000");
	ts_mime_date(0, buf, sizeof buf);
	assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* ---- bodies ------------------------------------------------------------- */

static void qp_roundtrip(const char *text, const char *want)
{
	ts_buf b = { 0 };
	char *dec;

	assert_int_equal(ts_mime_qp(&b, text, strlen(text)), TS_OK);
	check_lines(b.data, b.len, 76);
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] >= 0x7f)
			fail_msg("8-bit byte in quoted-printable output");
	/* no white space before a line end */
	for (const char *p = b.data; (p = strstr(p, "\r\n")); p += 2)
		if (p > b.data && (p[-1] == ' ' || p[-1] == '\t'))
			fail_msg("trailing white space in QP output");
	dec = qp_decode(b.data, b.len);
	assert_string_equal(dec, want);
	free(dec);
	ts_buf_free(&b);
}

static void test_qp(void **state)
{
	char long_line[400], want[410];

	(void)state;
	qp_roundtrip("a=b", "a=b\n");
	qp_roundtrip("Grüße\n", "Grüße\n");
	qp_roundtrip("trailing space \nand tab\t\n", "trailing space \nand tab\t\n");
	qp_roundtrip("crlf\r\nlines\r\n", "crlf\nlines\n");
	qp_roundtrip("old mac\rline", "old mac\nline\n");
	qp_roundtrip("\n\nblank lines\n", "\n\nblank lines\n");
	for (int i = 0; i < 399; i++)
		long_line[i] = (char)('a' + i % 26);
	long_line[399] = '\0';
	snprintf(want, sizeof want, "%s\n", long_line);
	qp_roundtrip(long_line, want);
	/* '=' at every soft-break boundary */
	memset(long_line, '=', 300);
	long_line[300] = '\0';
	snprintf(want, sizeof want, "%s\n", long_line);
	qp_roundtrip(long_line, want);
}

static void test_7bit(void **state)
{
	char line[100];

	(void)state;
	assert_true(ts_mime_is_7bit("hello\nworld\r\n", 13));
	assert_false(ts_mime_is_7bit("h\xc3\xa9", 3));
	assert_false(ts_mime_is_7bit("nul\001", 4));
	memset(line, 'x', 76);
	assert_true(ts_mime_is_7bit(line, 76));
	memset(line, 'x', 77);
	assert_false(ts_mime_is_7bit(line, 77));
}

/* ---- whole messages ----------------------------------------------------- */

static cJSON *payload(const char *json)
{
	cJSON *p = cJSON_Parse(json);
	assert_non_null(p);
	return p;
}

static void test_message_headers(void **state)
{
	cJSON *p = payload("{\"to\":[\"a@example.com\",\"b@example.com\"],"
			   "\"cc\":\"c@example.com\",\"bcc\":[\"hidden@example.com\","
			   "\"A@example.com\"],\"replyTo\":\"r@example.com\","
			   "\"from\":\"José <jose@example.org>\","
			   "\"subject\":\"Größe\",\"body\":\"Hi\\nthere\"}");
	ts_mail_opts o = { .date = 1796022000, .message_id = "id-1@example.org" };
	ts_mail m;
	ts_detail d;
	char *h, *dec;

	(void)state;
	assert_int_equal(ts_mail_build(p, &o, &m, &d), TS_OK);
	check_lines(m.msg.data, m.msg.len, 998);
	assert_string_equal(m.from_addr, "jose@example.org");
	assert_string_equal(m.message_id, "id-1@example.org");
	/* envelope: to, cc, bcc, case-insensitively deduplicated */
	assert_int_equal(m.nrcpt, 4);
	assert_string_equal(m.rcpt[0], "a@example.com");
	assert_string_equal(m.rcpt[2], "c@example.com");
	assert_string_equal(m.rcpt[3], "hidden@example.com");
	/* headers */
	h = header_of(&m.msg, "Date");
	assert_string_equal(h, "Date: Mon, 30 Nov 2026 07:00:00 +0000");
	free(h);
	h = header_of(&m.msg, "To");
	assert_string_equal(h, "To: a@example.com, b@example.com");
	free(h);
	h = header_of(&m.msg, "Cc");
	assert_string_equal(h, "Cc: c@example.com");
	free(h);
	h = header_of(&m.msg, "Reply-To");
	assert_string_equal(h, "Reply-To: r@example.com");
	free(h);
	h = header_of(&m.msg, "Message-ID");
	assert_string_equal(h, "Message-ID: <id-1@example.org>");
	free(h);
	h = header_of(&m.msg, "From");
	assert_non_null(strstr(h, "<jose@example.org>"));
	dec = decode_header(h);
	assert_string_equal(dec, "José <jose@example.org>");
	free(dec);
	free(h);
	h = header_of(&m.msg, "Subject");
	dec = decode_header(h);
	assert_string_equal(dec, "Größe");
	free(dec);
	free(h);
	/* never a Bcc header, never the hidden address */
	assert_null(header_of(&m.msg, "Bcc"));
	assert_null(strstr(m.msg.data, "hidden@"));
	h = header_of(&m.msg, "Content-Type");
	assert_string_equal(h, "Content-Type: text/plain; charset=utf-8");
	free(h);
	assert_non_null(strstr(m.msg.data, "\r\n\r\nHi\r\nthere\r\n"));
	ts_mail_free(&m);
	cJSON_Delete(p);
}

static void test_multipart(void **state)
{
	cJSON *p = payload("{\"to\":\"a@example.com\",\"subject\":\"s\","
			   "\"body\":\"plain text\",\"html\":\"<p>caf\\u00e9</p>\"}");
	ts_mail_opts o = { .default_from = "Sender <s@example.com>" };
	ts_mail m;
	ts_detail d;
	char *h, boundary[80], delim[90];
	const char *b, *part2, *end;

	(void)state;
	assert_int_equal(ts_mail_build(p, &o, &m, &d), TS_OK);
	check_lines(m.msg.data, m.msg.len, 998);
	assert_string_equal(m.from_addr, "s@example.com");
	h = header_of(&m.msg, "From");
	assert_string_equal(h, "From: \"Sender\" <s@example.com>");
	free(h);
	h = header_of(&m.msg, "Content-Type");
	assert_non_null(strstr(h, "multipart/alternative;"));
	b = strstr(h, "boundary=\"");
	assert_non_null(b);
	assert_int_equal(sscanf(b, "boundary=\"%79[^\"]\"", boundary), 1);
	free(h);
	snprintf(delim, sizeof delim, "\r\n--%s\r\n", boundary);
	b = strstr(m.msg.data, delim);
	assert_non_null(b);
	assert_non_null(strstr(b, "Content-Type: text/plain; charset=utf-8\r\n"
				  "Content-Transfer-Encoding: 7bit\r\n\r\nplain text\r\n\r\n--"));
	part2 = strstr(b + 1, delim);
	assert_non_null(part2);
	assert_non_null(strstr(part2, "Content-Type: text/html; charset=utf-8\r\n"
				      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				      "<p>caf=C3=A9</p>\r\n\r\n--"));
	snprintf(delim, sizeof delim, "\r\n--%s--\r\n", boundary);
	end = strstr(m.msg.data, delim);
	assert_non_null(end);
	assert_int_equal((size_t)(end - m.msg.data) + strlen(delim), m.msg.len);
	/* a fresh Message-ID on the sender's domain */
	assert_non_null(strstr(m.message_id, "@example.com"));
	assert_int_equal(strlen(m.message_id), 36 + 1 + 11);
	ts_mail_free(&m);
	cJSON_Delete(p);
}

static void test_html_only_and_sender(void **state)
{
	cJSON *p = payload("{\"to\":\"a@example.com\",\"subject\":\"s\",\"html\":\"<b>x</b>\"}");
	ts_mail m;
	ts_detail d;
	char *h;

	(void)state;
	/* no sender anywhere */
	assert_int_equal(ts_mail_build(p, NULL, &m, &d), TS_ERR_DATA);
	assert_non_null(strstr(d.msg, "no sender"));
	ts_mail_opts o = { .default_from = "not an address" };
	assert_int_equal(ts_mail_build(p, &o, &m, &d), TS_ERR_DATA);
	o.default_from = "x@example.com";
	assert_int_equal(ts_mail_build(p, &o, &m, &d), TS_OK);
	h = header_of(&m.msg, "Content-Type");
	assert_string_equal(h, "Content-Type: text/html; charset=utf-8");
	free(h);
	ts_mail_free(&m);
	cJSON_Delete(p);
}

static void test_many_recipients_folded(void **state)
{
	char json[8192];
	size_t n = 0;
	cJSON *p;
	ts_mail m;
	ts_mail_opts o = { .default_from = "x@example.com" };
	ts_detail d;
	char *h;

	(void)state;
	n += (size_t)snprintf(json + n, sizeof json - n, "{\"to\":[");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(json + n, sizeof json - n,
				      "%s\"recipient%03d@example.com\"", i ? "," : "", i);
	snprintf(json + n, sizeof json - n, "],\"subject\":\"s\",\"body\":\"b\"}");
	p = payload(json);
	assert_int_equal(ts_mail_build(p, &o, &m, &d), TS_OK);
	assert_int_equal(m.nrcpt, 100);
	h = header_of(&m.msg, "To");
	h = realloc(h, strlen(h) + 3);
	strcat(h, "\r\n");
	check_lines(h, strlen(h), 78);
	assert_non_null(strstr(h, "recipient099@example.com"));
	free(h);
	ts_mail_free(&m);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_utf8_never_split),
		cmocka_unit_test(test_split_mailbox),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_7bit),
		cmocka_unit_test(test_message_headers),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_html_only_and_sender),
		cmocka_unit_test(test_many_recipients_folded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
