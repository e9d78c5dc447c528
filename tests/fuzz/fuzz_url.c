/* fuzz_url.c - the transport URL parser (lib/url.h).
 *
 * Input: the URL text (up to the first NUL). A 0x01 byte stands for the
 * marker PWMARK and 0x02 for USERMARK, so the fuzzer can place a known
 * secret anywhere. Whatever parses must describe itself (ts_url_describe)
 * without the password, and without the user when asked to hide it; an
 * error about a URL of the shape scheme://user:SECRET@... must not quote
 * the secret either. Query helpers must stay within their contracts.
 * URLs of the transports that touch nothing at open time (smtp, msg91,
 * twilio, http(s), -; not maildir: or file:, which create files) also go
 * through ts_transport_open(): its description and its errors must not
 * show the password either.
 *
 * A marker the user also wrote in a field that is meant to be shown, for
 * instance a host spelt %70w5ecret, may show: the check is that a text
 * shows the marker no more often than the fields it may show do.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "transport.h"
#include "url.h"

#define PWMARK "pw5ecret"
#define USERMARK "us3rname"

static void fail(const char *what, const char *url, const char *out)
{
	fprintf(stderr, "fuzz_url: %s\n  url: %s\n  out: %s\n", what, url,
		out ? out : "(null)");
	abort();
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The marker sits in the userinfo's password: "://" then no '/', '?', '#'
 * up to ':' right before the marker, then '@' right after it. */
static int marker_is_password(const char *url)
{
	const char *m = strstr(url, PWMARK), *auth = strstr(url, "://");

	if (!m || !auth || auth > m || m[-1] != ':' ||
	    m[strlen(PWMARK)] != '@')
		return 0;
	for (const char *p = auth + 3; p < m; p++)
		if (*p == '/' || *p == '?' || *p == '#' || *p == '@')
			return 0;
	return 1;
}

/* How often MARK occurs in the fields a description may show: the scheme,
 * host, path, query keys and values, and the user unless it is hidden. */
static int shown_fields(const ts_url *u, const char *mark, int hide_user)
{
	int n = count(u->scheme, mark);

	if (u->user && !hide_user)
		n += count(u->user, mark);
	if (u->host)
		n += count(u->host, mark);
	if (u->path)
		n += count(u->path, mark);
	for (int i = 0; i < u->nquery; i++)
		n += count(u->qkey[i], mark) + count(u->qval[i], mark);
	return n;
}

/* TEXT shows MARK more often than the fields it may show hold it. */
static int leaks(const char *text, const ts_url *u, const char *mark,
		 int hide_user)
{
	return count(text, mark) > shown_fields(u, mark, hide_user);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	clearenv(); /* no TS_SMTP_PASSWORD and friends */
	/* Loading the system's CA bundle for every SMTP transport would be
	 * most of the time spent: give OpenSSL none. */
	setenv("SSL_CERT_FILE", "/dev/null", 1);
	setenv("SSL_CERT_DIR", "/nonexistent", 1);
	ts_log_set_level(TS_LOG_ERROR);
	return 0;
}

static int opens_nothing(const ts_url *u)
{
	static const char *const ok[] = { "smtp", "msg91", "twilio", "http",
					  "https", "-", "smtps", "bogus" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(u->scheme, ok[i]) == 0)
			return 1;
	return 0;
}

static void check_transport(const char *url, const ts_url *u, int one_pw)
{
	ts_config cfg;
	ts_detail d;

	memset(&cfg, 0, sizeof cfg);
	cfg.from = "sender@example.com";
	cfg.send_timeout_ms = 1000;
	for (int ch = 0; ch <= 1; ch++) {
		ts_transport *t = NULL;
		ts_err err = ts_transport_open(url, ch ? TS_CHANNEL_SMS : TS_CHANNEL_EMAIL,
					       &cfg, &t, &d);
		if (err) {
			if (t)
				fail("transport returned on error", url, d.msg);
			if (err != TS_ERR_CONFIG && err != TS_ERR_NOMEM)
				fail("unexpected transport error class", url, d.msg);
			if (one_pw && marker_is_password(url) &&
			    leaks(d.msg, u, PWMARK, 0))
				fail("transport error quotes the password", url, d.msg);
			continue;
		}
		const char *desc = ts_transport_describe(t);
		if (!desc)
			fail("transport without a description", url, "");
		if (one_pw && marker_is_password(url) && leaks(desc, u, PWMARK, 0))
			fail("transport description shows the password", url, desc);
		ts_transport_close(t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "starttls", "insecure", "api",
					       "sender", NULL };
	size_t n = strnlen((const char *)data, size), len = 0;
	char *url = malloc(n * 8 + 1);
	ts_url u;
	ts_detail d;
	ts_err err;

	if (!url)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (data[i] == 1) {
			memcpy(url + len, PWMARK, 8), len += 8;
		} else if (data[i] == 2) {
			memcpy(url + len, USERMARK, 8), len += 8;
		} else {
			url[len++] = (char)data[i];
		}
	}
	url[len] = '\0';
	int one_pw = count(url, PWMARK) == 1;
	int one_user = count(url, USERMARK) == 1;

	err = ts_url_parse(url, &u, &d);
	if (err) {
		if (err != TS_ERR_CONFIG || !d.msg[0])
			fail("unexpected error or no message", url, d.msg);
		if (one_pw && marker_is_password(url) && strstr(d.msg, PWMARK))
			fail("error message quotes the password", url, d.msg);
		ts_url_free(&u);
		free(url);
		return 0;
	}
	if (!u.scheme || !*u.scheme || !u.path)
		fail("missing scheme or path", url, u.scheme);
	for (const char *c = u.scheme; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			fail("scheme not lower case", url, u.scheme);
	if (u.port < 0 || u.port > 65535 || u.nquery < 0 ||
	    u.nquery > TS_URL_MAX_QUERY)
		fail("port or query count out of range", url, "");
	if (!u.opaque && !u.host)
		fail("hierarchical URL without host", url, "");
	for (int i = 0; i < u.nquery; i++)
		if (!u.qkey[i] || !*u.qkey[i] || !u.qval[i] ||
		    ts_url_query(&u, u.qkey[i]) == NULL)
			fail("bad query pair", url, u.qkey[i]);
	int f = ts_url_flag(&u, "insecure", 7);
	if (f != -1 && f != 0 && f != 1 && f != 7)
		fail("ts_url_flag out of contract", url, "");
	err = ts_url_check_query(&u, allowed, &d);
	if (err && (err != TS_ERR_CONFIG || !d.msg[0]))
		fail("ts_url_check_query without a message", url, d.msg);
	if (err && one_pw && u.pass && strstr(u.pass, PWMARK) &&
	    leaks(d.msg, &u, PWMARK, 0))
		fail("query error quotes the password", url, d.msg);

	for (int hide = 0; hide <= 1; hide++) {
		char *desc = ts_url_describe(&u, hide);
		if (!desc)
			fail("describe returned NULL", url, "");
		if (one_pw && u.pass && strstr(u.pass, PWMARK) &&
		    leaks(desc, &u, PWMARK, hide))
			fail("describe shows the password", url, desc);
		if (hide && one_user && u.user && strstr(u.user, USERMARK) &&
		    leaks(desc, &u, USERMARK, 1))
			fail("describe shows the hidden user", url, desc);
		free(desc);
	}

	if (opens_nothing(&u))
		check_transport(url, &u, one_pw);

	/* The decoder on its own: never longer, never a NUL inside. */
	int bad;
	char *dec = ts_pct_decode(url, len, &bad);
	if (dec && strlen(dec) > len)
		fail("decoded text longer than its input", url, dec);
	if (!dec && !bad)
		fail("decode failed without a reason", url, "");
	free(dec);

	ts_url_free(&u);
	free(url);
	return 0;
}
