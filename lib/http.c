/* http.c - libcurl easy handles for the transports (see http.h). */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "classify.h"

#define MAX_REPLY (1 << 20)

struct ts_http {
	CURL *curl;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static const char *ca_file, *ca_dir;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	ca_file = getenv("SSL_CERT_FILE");
	ca_dir = getenv("SSL_CERT_DIR");
}

ts_err ts_http_new(int64_t timeout_ms, int insecure, ts_http **out)
{
	ts_http *h;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return TS_ERR_INTERNAL;
	if (!(h = calloc(1, sizeof *h)))
		return TS_ERR_NOMEM;
	if (!(h->curl = curl_easy_init())) {
		free(h);
		return TS_ERR_INTERNAL;
	}
	if (timeout_ms <= 0)
		timeout_ms = 30000;
	/* Threads: no signals for DNS timeouts. */
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "taskstream/" TS_VERSION);
	curl_easy_setopt(h->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	/* The CA store of the SMTP transport (OpenSSL's default verify paths)
	 * applies here too: libcurl, built with a fixed CA bundle, would
	 * otherwise ignore these two and a private CA could not be named. */
	if (ca_file && *ca_file)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, ca_file);
	if (ca_dir && *ca_dir)
		curl_easy_setopt(h->curl, CURLOPT_CAPATH, ca_dir);
	if (insecure) {
		curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	*out = h;
	return TS_OK;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	ts_http_reply *r = arg;
	size_t len = size * n;

	if (r->body.len + len > MAX_REPLY)
		len = r->body.len < MAX_REPLY ? MAX_REPLY - r->body.len : 0;
	if (len && ts_buf_append(&r->body, data, len))
		return 0; /* out of memory: abort the transfer */
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	ts_http_reply *r = arg;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	char value[128];

	if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
		size_t vlen = len - (sizeof name - 1);
		if (vlen >= sizeof value)
			vlen = sizeof value - 1;
		memcpy(value, data + sizeof name - 1, vlen);
		value[vlen] = '\0';
		while (vlen > 0 && isspace((unsigned char)value[vlen - 1]))
			value[--vlen] = '\0';
		r->retry_after_ms = ts_parse_retry_after(value);
	}
	return len;
}

ts_err ts_http_post(ts_http *h, const ts_http_request *req, ts_http_reply *r)
{
	struct curl_slist *hdrs = NULL, *tmp;
	char ctype[128];
	CURLcode rc;
	ts_err err = TS_OK;

	memset(r, 0, sizeof *r);
	r->retry_after_ms = -1;
	snprintf(ctype, sizeof ctype, "Content-Type: %s",
		 req->content_type ? req->content_type : "application/json");
	if (!(hdrs = curl_slist_append(NULL, ctype)))
		return TS_ERR_NOMEM;
	/* No "100-continue" round trip for small bodies. */
	if (!(tmp = curl_slist_append(hdrs, "Expect:")))
		goto nomem;
	hdrs = tmp;
	for (const char *const *p = req->headers; p && *p; p++) {
		if (!(tmp = curl_slist_append(hdrs, *p)))
			goto nomem;
		hdrs = tmp;
	}
	curl_easy_setopt(h->curl, CURLOPT_URL, req->url);
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)req->body_len);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, r->error);
	if (req->user) {
		curl_easy_setopt(h->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(h->curl, CURLOPT_USERNAME, req->user);
		curl_easy_setopt(h->curl, CURLOPT_PASSWORD,
				 req->pass ? req->pass : "");
	} else {
		curl_easy_setopt(h->curl, CURLOPT_USERNAME, NULL);
		curl_easy_setopt(h->curl, CURLOPT_PASSWORD, NULL);
	}
	rc = curl_easy_perform(h->curl);
	r->curlcode = (int)rc;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	} else {
		if (!r->error[0])
			snprintf(r->error, sizeof r->error, "%s",
				 curl_easy_strerror(rc));
		err = ts_classify_curl((int)rc);
		if (rc == CURLE_WRITE_ERROR && r->body.len < MAX_REPLY)
			err = TS_ERR_NOMEM;
	}
	if (!r->body.data && ts_buf_append(&r->body, "", 0) != TS_OK)
		err = TS_ERR_NOMEM;
	/* The handle must not keep pointers into this call's memory. */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_PASSWORD, NULL);
	curl_slist_free_all(hdrs);
	return err;
nomem:
	curl_slist_free_all(hdrs);
	return TS_ERR_NOMEM;
}

void ts_http_reply_free(ts_http_reply *r)
{
	if (r)
		ts_buf_free(&r->body);
}

void ts_http_free(ts_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h);
}

ts_err ts_http_escape(ts_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	ts_err err = TS_OK;

	for (; *s && !err; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			err = ts_buf_append(out, s, 1);
		} else {
			char t[3] = { '%', hex[c >> 4], hex[c & 15] };
			err = ts_buf_append(out, t, 3);
		}
	}
	return err ? err : ts_buf_append(out, "", 0);
}
