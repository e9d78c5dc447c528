/* task.c - envelope and built-in payload validation, serialisation. */
#include "task.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_RECIPIENTS 100
#define MAX_ADDRESS 254
#define MAX_SUBJECT 998
#define MAX_KEY 1024

/* ---- raw byte checks ---------------------------------------------------- */

/* Length of the UTF-8 sequence at p (1-4), or 0 if it is not valid. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	unsigned c = p[0];
	size_t n;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

ts_err ts_json_check_bytes(const char *buf, size_t len, ts_detail *d)
{
	const unsigned char *p = (const unsigned char *)buf;
	int in_string = 0;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;

		if (c == 0)
			return ts_fail(d, TS_ERR_DATA, NULL,
				       "NUL byte at offset %zu", i);
		n = utf8_seq(p + i, len - i);
		if (n == 0)
			return ts_fail(d, TS_ERR_DATA, NULL,
				       "invalid UTF-8 at offset %zu", i);
		if (in_string && c < 0x20)
			return ts_fail(d, TS_ERR_DATA, NULL,
				       "control character 0x%02x in a string at offset %zu (escape it)",
				       c, i);
		if (c == '"') {
			in_string = !in_string;
		} else if (in_string && c == '\\' && i + 1 < len) {
			if (p[i + 1] == 'u' && i + 5 < len &&
			    memcmp(p + i + 2, "0000", 4) == 0)
				return ts_fail(d, TS_ERR_DATA, NULL,
					       "\\u0000 (NUL) in a string at offset %zu",
					       i);
			i += 2; /* skip the escaped character */
			continue;
		}
		i += n;
	}
	return TS_OK;
}

/* ---- syntax checks ------------------------------------------------------ */

int ts_valid_task_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && !strchr("._:-", s[n]))
			return 0;
	return n >= 1 && n <= TS_TASK_ID_MAX;
}

int ts_valid_task_type(const char *s)
{
	size_t n;

	if (!(*s >= 'a' && *s <= 'z'))
		return 0;
	for (n = 1; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return n <= TS_TASK_TYPE_MAX;
}

static int all_hex(const char *s, size_t n)
{
	int nonzero = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

int ts_valid_traceparent(const char *s)
{
	/* version "00": 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
	if (strlen(s) != TS_TRACEPARENT_MAX)
		return 0;
	return s[0] == '0' && s[1] == '0' && s[2] == '-' && s[35] == '-' &&
	       s[52] == '-' && all_hex(s + 3, 32) && all_hex(s + 36, 16) &&
	       isxdigit((unsigned char)s[53]) && !isupper((unsigned char)s[53]) &&
	       isxdigit((unsigned char)s[54]) && !isupper((unsigned char)s[54]);
}

static int atext(char c)
{
	return isalnum((unsigned char)c) || strchr("!#$%&'*+-/=?^_`{|}~", c);
}

int ts_valid_email_address(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t len = strlen(s);
	const char *p, *label;

	if (!at || at == s || len > MAX_ADDRESS || at - s > 64)
		return 0;
	/* local part: dot-atom */
	for (p = s; p < at; p++) {
		if (*p == '.') {
			if (p == s || p + 1 == at || p[1] == '.')
				return 0;
		} else if (!atext(*p)) {
			return 0;
		}
	}
	/* domain: labels of letters, digits and inner hyphens, or [literal] */
	p = at + 1;
	if (*p == '[') {
		size_t n = strlen(p);
		if (n < 3 || p[n - 1] != ']')
			return 0;
		for (size_t i = 1; i + 1 < n; i++)
			if (!isalnum((unsigned char)p[i]) && !strchr(".:", p[i]))
				return 0;
		return 1;
	}
	if (!*p)
		return 0;
	label = p;
	for (;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t n = (size_t)(p - label);
			if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
				return 0;
			if (*p == '\0')
				return 1;
			label = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '-') {
			return 0;
		}
	}
}

int ts_valid_mobile(const char *s)
{
	size_t n = 0;

	if (*s == '+')
		s++;
	for (; s[n]; n++)
		if (!isdigit((unsigned char)s[n]))
			return 0;
	return n >= 8 && n <= 15;
}

/* ---- payload validation ------------------------------------------------- */

static void path_join(char *out, size_t size, const char *prefix,
		      const char *name)
{
	if (prefix && *prefix)
		snprintf(out, size, "%s.%s", prefix, name);
	else
		snprintf(out, size, "%s", name);
}

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

static ts_err check_address(const cJSON *v, const char *path, int display_ok,
			    ts_detail *d)
{
	const char *s;

	if (!cJSON_IsString(v))
		return ts_fail(d, TS_ERR_DATA, path, "must be a string");
	s = v->valuestring;
	if (has_crlf(s))
		return ts_fail(d, TS_ERR_DATA, path,
			       "must not contain CR or LF");
	if (strlen(s) > MAX_ADDRESS)
		return ts_fail(d, TS_ERR_DATA, path,
			       "longer than %d characters", MAX_ADDRESS);
	if (display_ok) {
		/* "Display Name <addr@example.com>" */
		const char *lt = strrchr(s, '<');
		size_t n = strlen(s);
		if (lt && n > 0 && s[n - 1] == '>') {
			char addr[MAX_ADDRESS + 1];
			size_t alen = (size_t)(s + n - 1 - (lt + 1));
			for (const char *p = s; p < lt; p++)
				if ((unsigned char)*p < 0x20 || *p == '"' ||
				    *p == '\\')
					return ts_fail(d, TS_ERR_DATA, path,
						       "display name must not contain quotes, backslashes or control characters");
			memcpy(addr, lt + 1, alen);
			addr[alen] = '\0';
			if (!ts_valid_email_address(addr))
				return ts_fail(d, TS_ERR_DATA, path,
					       "not an email address");
			return TS_OK;
		}
	}
	if (!ts_valid_email_address(s))
		return ts_fail(d, TS_ERR_DATA, path, "not an email address");
	return TS_OK;
}

/* A field that is one address or an array of min..max addresses. */
static ts_err check_address_list(const cJSON *v, const char *path, int min,
				 ts_detail *d)
{
	char item[160];
	int n, i = 0;
	const cJSON *e;
	ts_err err;

	if (cJSON_IsString(v))
		return check_address(v, path, 0, d);
	if (!cJSON_IsArray(v))
		return ts_fail(d, TS_ERR_DATA, path,
			       "must be an address or an array of addresses");
	n = cJSON_GetArraySize(v);
	if (n < min || n > MAX_RECIPIENTS)
		return ts_fail(d, TS_ERR_DATA, path,
			       "must hold %d to %d addresses, not %d", min,
			       MAX_RECIPIENTS, n);
	cJSON_ArrayForEach(e, v) {
		snprintf(item, sizeof item, "%s[%d]", path, i++);
		err = check_address(e, item, 0, d);
		if (err)
			return err;
	}
	return TS_OK;
}

static ts_err check_string(const cJSON *v, const char *path, ts_detail *d)
{
	if (!cJSON_IsString(v))
		return ts_fail(d, TS_ERR_DATA, path, "must be a string");
	return TS_OK;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each field once: cJSON keeps both copies of a repeated key, and readers
 * disagree on which one counts (most take the last, which was never
 * validated). Sorted, so a payload of many fields stays cheap. */
static ts_err check_unique(const cJSON *p, const char *prefix, ts_detail *d)
{
	int n = cJSON_GetArraySize(p), i = 0;
	const char **names;
	const cJSON *f;
	ts_err err = TS_OK;

	if (n < 2)
		return TS_OK;
	if (!(names = malloc(sizeof *names * (size_t)n)))
		return TS_ERR_NOMEM;
	cJSON_ArrayForEach(f, p)
		names[i++] = f->string;
	qsort(names, (size_t)n, sizeof *names, cmp_name);
	for (i = 1; i < n && !err; i++) {
		if (strcmp(names[i - 1], names[i]) == 0) {
			char path[160];
			path_join(path, sizeof path, prefix, names[i]);
			err = ts_fail(d, TS_ERR_DATA, path, "given twice");
		}
	}
	free(names);
	return err;
}

static ts_err validate_email(const cJSON *p, const char *prefix, ts_detail *d)
{
	static const char *const known[] = { "to", "subject", "body", "html",
					     "cc", "bcc", "from", "replyTo" };
	char path[160];
	const cJSON *f;
	ts_err err;

	cJSON_ArrayForEach(f, p) {
		size_t i;
		for (i = 0; i < sizeof known / sizeof known[0]; i++)
			if (strcmp(f->string, known[i]) == 0)
				break;
		if (i == sizeof known / sizeof known[0]) {
			path_join(path, sizeof path, prefix, f->string);
			return ts_fail(d, TS_ERR_DATA, path,
				       "unknown field (email takes to, subject, body, html, cc, bcc, from, replyTo)");
		}
	}
	if ((err = check_unique(p, prefix, d)))
		return err;
	path_join(path, sizeof path, prefix, "to");
	f = cJSON_GetObjectItemCaseSensitive(p, "to");
	if (!f)
		return ts_fail(d, TS_ERR_DATA, path, "required");
	if ((err = check_address_list(f, path, 1, d)))
		return err;
	static const char *const lists[] = { "cc", "bcc", "replyTo" };
	for (size_t i = 0; i < 3; i++) {
		f = cJSON_GetObjectItemCaseSensitive(p, lists[i]);
		path_join(path, sizeof path, prefix, lists[i]);
		if (f && (err = check_address_list(f, path, 0, d)))
			return err;
	}
	f = cJSON_GetObjectItemCaseSensitive(p, "from");
	path_join(path, sizeof path, prefix, "from");
	if (f && (err = check_address(f, path, 1, d)))
		return err;
	f = cJSON_GetObjectItemCaseSensitive(p, "subject");
	path_join(path, sizeof path, prefix, "subject");
	if (!f)
		return ts_fail(d, TS_ERR_DATA, path, "required");
	if ((err = check_string(f, path, d)))
		return err;
	if (has_crlf(f->valuestring))
		return ts_fail(d, TS_ERR_DATA, path, "must not contain CR or LF");
	if (strlen(f->valuestring) > MAX_SUBJECT)
		return ts_fail(d, TS_ERR_DATA, path,
			       "longer than %d bytes", MAX_SUBJECT);
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(p, "body");
	const cJSON *html = cJSON_GetObjectItemCaseSensitive(p, "html");
	path_join(path, sizeof path, prefix, "body");
	if (!body && !html)
		return ts_fail(d, TS_ERR_DATA, path,
			       "required (body and/or html)");
	if (body && (err = check_string(body, path, d)))
		return err;
	path_join(path, sizeof path, prefix, "html");
	if (html && (err = check_string(html, path, d)))
		return err;
	return TS_OK;
}

static int valid_var_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && s[n] != '_')
			return 0;
	return n >= 1 && n <= 64;
}

static ts_err validate_sms(const cJSON *p, const char *prefix, ts_detail *d)
{
	char path[160];
	const cJSON *f;
	ts_err err;

	cJSON_ArrayForEach(f, p) {
		path_join(path, sizeof path, prefix, f->string);
		if (strcmp(f->string, "mobiles") == 0)
			return ts_fail(d, TS_ERR_DATA, path,
				       "unknown field (did you mean mobile?)");
		if (!valid_var_name(f->string))
			return ts_fail(d, TS_ERR_DATA, path,
				       "field names are 1-64 letters, digits or _");
		if (!cJSON_IsString(f))
			return ts_fail(d, TS_ERR_DATA, path, "must be a string");
	}
	if ((err = check_unique(p, prefix, d)))
		return err;
	path_join(path, sizeof path, prefix, "mobile");
	f = cJSON_GetObjectItemCaseSensitive(p, "mobile");
	if (!f)
		return ts_fail(d, TS_ERR_DATA, path, "required");
	if (!ts_valid_mobile(f->valuestring))
		return ts_fail(d, TS_ERR_DATA, path,
			       "must be an international number: optional +, then 8-15 digits");
	return TS_OK;
}

/* cJSON prints a number it cannot represent (1e400 parses as infinity; one
 * within a rounding step of DBL_MAX prints as a larger one) as null: refuse
 * such numbers rather than change the task on its way through. */
static ts_err check_numbers(const cJSON *v, const char *path, ts_detail *d)
{
	char sub[160];
	const cJSON *e;
	int i = 0;
	ts_err err;

	if (cJSON_IsNumber(v) && !(fabs(v->valuedouble) < 1e308))
		return ts_fail(d, TS_ERR_DATA, path && *path ? path : NULL,
			       "number out of range (magnitude 1e308 or more)");
	cJSON_ArrayForEach(e, v) {
		if (cJSON_IsArray(v))
			snprintf(sub, sizeof sub, "%s[%d]", path ? path : "", i++);
		else
			path_join(sub, sizeof sub, path, e->string);
		if ((err = check_numbers(e, sub, d)))
			return err;
	}
	return TS_OK;
}

ts_err ts_payload_validate(const char *type, const cJSON *payload,
			   const char *prefix, ts_detail *d)
{
	if (!cJSON_IsObject(payload))
		return ts_fail(d, TS_ERR_DATA, prefix && *prefix ? prefix : NULL,
			       "must be a JSON object");
	if (strcmp(type, "email") == 0)
		return validate_email(payload, prefix, d);
	if (strcmp(type, "sms") == 0)
		return validate_sms(payload, prefix, d);
	return check_numbers(payload, prefix, d);
}

/* ---- envelope ----------------------------------------------------------- */

static int valid_timestamp(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM) */
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return 0;
	}
	s += i;
	if (*s == '.') {
		size_t n = 0;
		for (s++; isdigit((unsigned char)s[n]); n++)
			;
		if (n < 1 || n > 9)
			return 0;
		s += n;
	}
	if (strcmp(s, "Z") == 0)
		return 1;
	return (s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1]) &&
	       isdigit((unsigned char)s[2]) && s[3] == ':' &&
	       isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[5]) &&
	       s[6] == '\0';
}

static ts_err take_string(const cJSON *obj, const char *name, const char **out,
			  ts_detail *d)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = NULL;
	if (!v)
		return TS_OK;
	if (!cJSON_IsString(v))
		return ts_fail(d, TS_ERR_DATA, name, "must be a string");
	*out = v->valuestring;
	return TS_OK;
}

static ts_err check_top_level(const cJSON *obj, ts_detail *d)
{
	static const char *const known[] = { "taskId", "taskType", "payload",
					     "createdAt", "key", "traceparent" };
	const cJSON *f;

	cJSON_ArrayForEach(f, obj) {
		size_t i;
		for (i = 0; i < sizeof known / sizeof known[0]; i++)
			if (strcmp(f->string, known[i]) == 0)
				break;
		if (i == sizeof known / sizeof known[0])
			return ts_fail(d, TS_ERR_DATA, f->string,
				       "unknown field (a task has taskId, taskType, payload, createdAt, key, traceparent)");
		/* cJSON keeps duplicate keys; the second would be ignored. */
		for (const cJSON *g = f->next; g; g = g->next)
			if (strcmp(f->string, g->string) == 0)
				return ts_fail(d, TS_ERR_DATA, f->string,
					       "given twice");
	}
	return TS_OK;
}

static ts_err fill_ids(const cJSON *obj, const ts_task_opts *opts, ts_task *t,
		       ts_detail *d)
{
	const char *id, *created, *key, *tp;
	ts_err err;

	if ((err = take_string(obj, "taskId", &id, d)) ||
	    (err = take_string(obj, "createdAt", &created, d)) ||
	    (err = take_string(obj, "key", &key, d)) ||
	    (err = take_string(obj, "traceparent", &tp, d)))
		return err;
	if (!id && opts && opts->default_id)
		id = opts->default_id;
	if (id) {
		if (!ts_valid_task_id(id))
			return ts_fail(d, TS_ERR_DATA, "taskId",
				       "must be 1-128 characters of A-Z a-z 0-9 . _ : -");
		snprintf(t->task_id, sizeof t->task_id, "%s", id);
	} else if (ts_uuid4(t->task_id, sizeof t->task_id) != TS_OK) {
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "no randomness for a task id");
	}
	if (created) {
		if (!valid_timestamp(created))
			return ts_fail(d, TS_ERR_DATA, "createdAt",
				       "must be an RFC 3339 timestamp like 2026-11-29T07:00:00.123Z");
		snprintf(t->created_at, sizeof t->created_at, "%s", created);
	} else {
		ts_now_rfc3339(t->created_at, sizeof t->created_at);
	}
	if (key) {
		if (!*key || strlen(key) > MAX_KEY)
			return ts_fail(d, TS_ERR_DATA, "key",
				       "must be 1-%d bytes", MAX_KEY);
		if (!(t->key = strdup(key)))
			return TS_ERR_NOMEM;
	}
	if (!tp && opts && opts->default_traceparent)
		tp = opts->default_traceparent;
	if (tp) {
		if (!ts_valid_traceparent(tp))
			return ts_fail(d, TS_ERR_DATA, "traceparent",
				       "not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)");
		if (!(t->traceparent = strdup(tp)))
			return TS_ERR_NOMEM;
	}
	return TS_OK;
}

static ts_err from_request(const cJSON *obj, ts_task *t, ts_detail *d)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "taskType");
	const cJSON *payload = cJSON_GetObjectItemCaseSensitive(obj, "payload");
	ts_err err;

	if (!type)
		return ts_fail(d, TS_ERR_DATA, "taskType", "required");
	if (!cJSON_IsString(type))
		return ts_fail(d, TS_ERR_DATA, "taskType", "must be a string");
	if (!ts_valid_task_type(type->valuestring))
		return ts_fail(d, TS_ERR_DATA, "taskType",
			       "must match [a-z][a-z0-9_.-]{0,63}");
	snprintf(t->task_type, sizeof t->task_type, "%s", type->valuestring);
	if (!payload)
		return ts_fail(d, TS_ERR_DATA, "payload", "required");
	if ((err = ts_payload_validate(t->task_type, payload, "payload", d)))
		return err;
	if (!(t->payload = cJSON_Duplicate(payload, 1)))
		return TS_ERR_NOMEM;
	return TS_OK;
}

ts_err ts_task_from_json(const cJSON *obj, const ts_task_opts *opts,
			 ts_task *t, ts_detail *d)
{
	ts_err err;

	memset(t, 0, sizeof *t);
	ts_detail_clear(d);
	if (!cJSON_IsObject(obj))
		return ts_fail(d, TS_ERR_DATA, NULL, "a task must be a JSON object");
	if (opts && opts->force_type) {
		if (!ts_valid_task_type(opts->force_type))
			return ts_fail(d, TS_ERR_USAGE, "taskType",
				       "'%s' must match [a-z][a-z0-9_.-]{0,63}",
				       opts->force_type);
		snprintf(t->task_type, sizeof t->task_type, "%s",
			 opts->force_type);
		err = ts_payload_validate(t->task_type, obj, "payload", d);
		if (!err && !(t->payload = cJSON_Duplicate(obj, 1)))
			err = TS_ERR_NOMEM;
		if (!err)
			err = fill_ids(NULL, opts, t, d);
	} else {
		err = check_top_level(obj, d);
		if (!err)
			err = from_request(obj, t, d);
		if (!err)
			err = fill_ids(obj, opts, t, d);
	}
	if (err)
		ts_task_free(t);
	return err;
}

ts_err ts_task_parse(const char *json, size_t len, const ts_task_opts *opts,
		     ts_task *t, ts_detail *d)
{
	cJSON *obj;
	const char *end = NULL;
	ts_err err;

	memset(t, 0, sizeof *t);
	if ((err = ts_json_check_bytes(json, len, d)))
		return err;
	obj = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (obj) { /* one JSON text: only white space may follow it */
		while (end < json + len && (*end == ' ' || *end == '\t' ||
					    *end == '\r' || *end == '\n'))
			end++;
		if (end < json + len) {
			cJSON_Delete(obj);
			obj = NULL;
		}
	}
	if (!obj) {
		size_t off = end ? (size_t)(end - json) : 0;
		if (!end) {
			const char *e = cJSON_GetErrorPtr();
			if (e >= json && e <= json + len)
				off = (size_t)(e - json);
		}
		return ts_fail(d, TS_ERR_DATA, NULL,
			       "invalid JSON near byte %zu", off);
	}
	err = ts_task_from_json(obj, opts, t, d);
	cJSON_Delete(obj);
	return err;
}

char *ts_task_to_json(const ts_task *t)
{
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;

	if (!o)
		return NULL;
	if (!cJSON_AddStringToObject(o, "taskId", t->task_id) ||
	    !cJSON_AddStringToObject(o, "taskType", t->task_type))
		goto out;
	cJSON *p = cJSON_Duplicate(t->payload, 1);
	if (!p)
		goto out;
	cJSON_AddItemToObject(o, "payload", p);
	if (!cJSON_AddStringToObject(o, "createdAt", t->created_at))
		goto out;
	if (t->key && !cJSON_AddStringToObject(o, "key", t->key))
		goto out;
	s = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return s;
}

const char *ts_task_record_key(const ts_task *t)
{
	return t->key ? t->key : t->task_id;
}

void ts_task_free(ts_task *t)
{
	if (!t)
		return;
	cJSON_Delete(t->payload);
	free(t->key);
	free(t->traceparent);
	memset(t, 0, sizeof *t);
}
