/* url.c - transport URL parsing (see url.h). */
#include "url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *ts_pct_decode(const char *s, size_t len, int *bad)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;

	*bad = 0;
	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		int h, l;

		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= len) {
			*bad = 1;
			break;
		}
		h = hexval((unsigned char)s[i + 1]);
		l = hexval((unsigned char)s[i + 2]);
		if (h < 0 || l < 0 || (h == 0 && l == 0)) {
			*bad = 1;
			break;
		}
		*o++ = (char)(h * 16 + l);
		i += 2;
	}
	*o = '\0';
	if (*bad) {
		explicit_bzero(out, len + 1);
		free(out);
		return NULL;
	}
	return out;
}

static char *dup_range(const char *s, size_t len)
{
	char *out = malloc(len + 1);

	if (out) {
		memcpy(out, s, len);
		out[len] = '\0';
	}
	return out;
}

static ts_err decode_into(char **dst, const char *s, size_t len,
			  const char *what, ts_detail *d)
{
	int bad;

	*dst = ts_pct_decode(s, len, &bad);
	if (*dst)
		return TS_OK;
	if (bad)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "URL %s: bad percent-encoding", what);
	return TS_ERR_NOMEM;
}

static ts_err parse_query(ts_url *u, const char *q, size_t len, ts_detail *d)
{
	const char *end = q + len;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		ts_err err;

		if (stop == q) { /* "&&" or a trailing '&' */
			q = stop + 1;
			continue;
		}
		if (u->nquery == TS_URL_MAX_QUERY)
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "URL: more than %d query parameters",
				       TS_URL_MAX_QUERY);
		if (!eq || eq == q)
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "URL: query parameters are key=value");
		if ((err = decode_into(&u->qkey[u->nquery], q,
				       (size_t)(eq - q), "query key", d)))
			return err;
		err = decode_into(&u->qval[u->nquery], eq + 1,
				  (size_t)(stop - eq - 1), "query value", d);
		if (err) {
			free(u->qkey[u->nquery]);
			u->qkey[u->nquery] = NULL;
			return err;
		}
		u->nquery++;
		q = stop + (amp ? 1 : 0);
	}
	return TS_OK;
}

static ts_err parse_port(ts_url *u, const char *p, size_t len, ts_detail *d)
{
	long v = 0;

	if (len == 0 || len > 5)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "URL: bad port");
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return ts_fail(d, TS_ERR_CONFIG, NULL, "URL: bad port");
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "URL: port must be 1-65535");
	u->port = (int)v;
	return TS_OK;
}

/* host[:port] or [v6]:port */
static ts_err parse_hostport(ts_url *u, const char *h, size_t len,
			     ts_detail *d)
{
	const char *colon;

	if (len > 0 && h[0] == '[') {
		const char *close = memchr(h, ']', len);
		if (!close)
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "URL: unterminated [IPv6] host");
		if (!(u->host = dup_range(h + 1, (size_t)(close - h - 1))))
			return TS_ERR_NOMEM;
		if (close + 1 == h + len)
			return TS_OK;
		if (close[1] != ':')
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "URL: junk after [IPv6] host");
		return parse_port(u, close + 2, (size_t)(h + len - close - 2), d);
	}
	colon = memchr(h, ':', len);
	if (!colon)
		return decode_into(&u->host, h, len, "host", d);
	if (colon == h)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "URL: port without host");
	ts_err err = decode_into(&u->host, h, (size_t)(colon - h), "host", d);
	if (err)
		return err;
	return parse_port(u, colon + 1, (size_t)(h + len - colon - 1), d);
}

static ts_err parse_authority(ts_url *u, const char *a, size_t len,
			      ts_detail *d)
{
	const char *at = NULL, *colon;
	ts_err err;

	for (size_t i = len; i > 0; i--)
		if (a[i - 1] == '@') {
			at = a + i - 1;
			break;
		}
	if (at) {
		colon = memchr(a, ':', (size_t)(at - a));
		if ((err = decode_into(&u->user, a,
				       (size_t)((colon ? colon : at) - a),
				       "user", d)))
			return err;
		if (colon && (err = decode_into(&u->pass, colon + 1,
						(size_t)(at - colon - 1),
						"password", d)))
			return err;
		len -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	return parse_hostport(u, a, len, d);
}

ts_err ts_url_parse(const char *s, ts_url *u, ts_detail *d)
{
	const char *p = s, *rest, *auth_end, *q;
	ts_err err;

	memset(u, 0, sizeof *u);
	ts_detail_clear(d);
	if (!s || !*s)
		return ts_fail(d, TS_ERR_CONFIG, NULL, "empty URL");
	if (strcmp(s, "-") == 0) {
		u->opaque = 1;
		if (!(u->scheme = strdup("-")) || !(u->path = strdup("")))
			goto nomem;
		return TS_OK;
	}
	if (!isalpha((unsigned char)*p))
		goto notaurl;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':')
		goto notaurl;
	if (!(u->scheme = dup_range(s, (size_t)(p - s))))
		goto nomem;
	for (char *c = u->scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	rest = p + 1;
	if (strncmp(rest, "//", 2) != 0) {
		/* scheme:PATH - taken literally, query and all */
		u->opaque = 1;
		if (!(u->path = strdup(rest)) || !(u->host = strdup("")))
			goto nomem;
		return TS_OK;
	}
	rest += 2;
	auth_end = rest + strcspn(rest, "/?#");
	if ((err = parse_authority(u, rest, (size_t)(auth_end - rest), d)))
		goto fail;
	q = auth_end + strcspn(auth_end, "?#");
	if (!(u->path = dup_range(auth_end, (size_t)(q - auth_end))))
		goto nomem;
	if (*q == '?') {
		const char *hash = strchr(q, '#');
		size_t qlen = hash ? (size_t)(hash - q - 1) : strlen(q + 1);
		if ((err = parse_query(u, q + 1, qlen, d)))
			goto fail;
		q += 1 + qlen;
	}
	if (*q == '#') {
		err = ts_fail(d, TS_ERR_CONFIG, NULL,
			      "URL: a '#' must be written %%23");
		goto fail;
	}
	return TS_OK;
notaurl:
	ts_url_free(u);
	return ts_fail(d, TS_ERR_CONFIG, NULL,
		       "not a URL (expected scheme:... or -)");
nomem:
	err = TS_ERR_NOMEM;
fail:
	ts_url_free(u);
	return err;
}

const char *ts_url_query(const ts_url *u, const char *key)
{
	for (int i = 0; i < u->nquery; i++)
		if (strcmp(u->qkey[i], key) == 0)
			return u->qval[i];
	return NULL;
}

ts_err ts_url_check_query(const ts_url *u, const char *const *allowed,
			  ts_detail *d)
{
	for (int i = 0; i < u->nquery; i++) {
		const char *const *a;
		for (a = allowed; *a; a++)
			if (strcmp(*a, u->qkey[i]) == 0)
				break;
		if (!*a)
			return ts_fail(d, TS_ERR_CONFIG, NULL,
				       "%s URL: unknown parameter '%.64s'",
				       u->scheme, u->qkey[i]);
		for (int j = i + 1; j < u->nquery; j++)
			if (strcmp(u->qkey[i], u->qkey[j]) == 0)
				return ts_fail(d, TS_ERR_CONFIG, NULL,
					       "%s URL: parameter '%.64s' given twice",
					       u->scheme, u->qkey[i]);
	}
	return TS_OK;
}

int ts_url_flag(const ts_url *u, const char *key, int def)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };
	const char *v = ts_url_query(u, key);

	if (!v)
		return def;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

char *ts_url_describe(const ts_url *u, int hide_user)
{
	ts_buf b = { 0 };
	ts_err err = TS_OK;

	if (u->opaque)
		return strcmp(u->scheme, "-") == 0
			       ? strdup("-")
			       : (ts_buf_appendf(&b, "%s:%s", u->scheme, u->path)
					  ? NULL
					  : b.data);
	err = ts_buf_appendf(&b, "%s://", u->scheme);
	if (!err && u->user)
		err = ts_buf_appendf(&b, "%s%s@", hide_user ? "***" : u->user,
				     u->pass ? ":***" : "");
	else if (!err && u->pass)
		err = ts_buf_appendf(&b, ":***@");
	if (!err)
		err = ts_buf_appendf(&b, strchr(u->host, ':') ? "[%s]" : "%s",
				     u->host);
	if (!err && u->port)
		err = ts_buf_appendf(&b, ":%d", u->port);
	if (!err)
		err = ts_buf_appendf(&b, "%s", u->path);
	for (int i = 0; !err && i < u->nquery; i++)
		err = ts_buf_appendf(&b, "%c%s=%s", i ? '&' : '?', u->qkey[i],
				     u->qval[i]);
	if (err) {
		ts_buf_free(&b);
		return NULL;
	}
	return b.data;
}

void ts_url_free(ts_url *u)
{
	if (!u)
		return;
	free(u->scheme);
	ts_free_secret(u->user);
	ts_free_secret(u->pass);
	free(u->host);
	free(u->path);
	for (int i = 0; i < u->nquery; i++) {
		free(u->qkey[i]);
		ts_free_secret(u->qval[i]);
	}
	memset(u, 0, sizeof *u);
}
