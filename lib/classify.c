/* classify.c - the one failure classifier (see classify.h). */
#include "classify.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define RETRY_AFTER_CAP_MS (24LL * 3600 * 1000)

ts_err ts_classify_smtp(int code)
{
	if (code >= 200 && code < 300)
		return TS_OK;
	if (code >= 500 && code < 600)
		return TS_ERR_PERMANENT;
	/* 4xx, and no (or a nonsensical) reply: the server or the path to
	 * it may recover. */
	return TS_ERR_TRANSIENT;
}

ts_err ts_classify_http(long status)
{
	if (status == 0)
		return TS_ERR_TRANSIENT;
	if (status >= 200 && status < 300)
		return TS_OK;
	if (status == 408 || status == 429 || (status >= 500 && status < 600))
		return TS_ERR_TRANSIENT;
	return TS_ERR_PERMANENT;
}

ts_err ts_classify_curl(int curlcode)
{
	switch ((CURLcode)curlcode) {
	case CURLE_OK:
		return TS_OK;
	/* What we asked for cannot work, however often we ask. */
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_LOGIN_DENIED:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_FILESIZE_EXCEEDED:
	/* Certificates: a configuration problem, not a passing one. */
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
		return TS_ERR_PERMANENT;
	default:
		/* Resolving, connecting, timeouts, resets, empty replies,
		 * handshake failures and HTTP/2 stream errors: the network or
		 * the server may recover. */
		return TS_ERR_TRANSIENT;
	}
}

ts_err ts_classify_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return TS_OK;
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENETUNREACH:
	case ENETDOWN:
	case ENETRESET:
	case EPIPE:
	case EAGAIN:
	case EINTR:
	case EINPROGRESS:
	case EALREADY:
	case EADDRNOTAVAIL:
	case ENOBUFS:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case EIO:
	case ENOSPC:
	case EDQUOT:
		return TS_ERR_TRANSIENT;
	default:
		return TS_ERR_PERMANENT;
	}
}

static int64_t cap(int64_t ms)
{
	if (ms < 0)
		return 0;
	return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
}

/* HTTP-date in any of the three forms RFC 9110 says a recipient must take. */
static int parse_http_date(const char *s, time_t *out)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};

	for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		struct tm tm;
		const char *end;

		memset(&tm, 0, sizeof tm);
		end = strptime(s, fmts[i], &tm);
		if (!end)
			continue;
		while (isspace((unsigned char)*end))
			end++;
		if (*end)
			continue;
		*out = timegm(&tm);
		return *out != (time_t)-1;
	}
	return 0;
}

int64_t ts_parse_retry_after(const char *value)
{
	const char *p = value, *end;
	time_t when;

	if (!value)
		return -1;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return -1;
	if (isdigit((unsigned char)*p)) {
		int64_t secs = 0;
		for (end = p; isdigit((unsigned char)*end); end++) {
			if (secs < RETRY_AFTER_CAP_MS / 1000)
				secs = secs * 10 + (*end - '0');
		}
		while (isspace((unsigned char)*end))
			end++;
		if (*end)
			return -1;
		return cap(secs * 1000);
	}
	if (!parse_http_date(p, &when))
		return -1;
	return cap((int64_t)when * 1000 - ts_now_ms());
}

const char *ts_class_name(ts_err err)
{
	switch (err) {
	case TS_OK:
		return "sent";
	case TS_ERR_TRANSIENT:
		return "transient";
	case TS_ERR_DATA:
		return "invalid";
	default:
		return "permanent";
	}
}
