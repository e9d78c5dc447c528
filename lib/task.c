/* task.c - envelope and built-in payload validation, serialisation. */
#include "task.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util.h"

#define MAX_RECIPIENTS 100
#define MAX_ADDRESS 254
#define MAX_SUBJECT 998
#define MAX_KEY 1024

/* cJSON's type tests (NULL is none of them), in line: each was a call
 * into the library, for every field of every task. */
static inline int is_type(const cJSON *v, int type)
{
	return v && (v->type & 0xff) == type;
}
#define is_string(v) is_type((v), cJSON_String)
#define is_object(v) is_type((v), cJSON_Object)
#define is_array(v) is_type((v), cJSON_Array)
#define is_number(v) is_type((v), cJSON_Number)

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

		/* Most bytes are printable ASCII with no meaning here. */
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
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

/* Character classes of the C locale (no tool calls setlocale) as bit sets
 * of ASCII, one word for 0-63 and one for 64-127, rather than isalnum() and
 * strchr(): they run over every byte of every id and address. */
#define BIT(c) ((uint64_t)1 << ((c) & 63))
#define ALNUM_LO 0x03ff000000000000u /* 0-9 */
#define ALNUM_HI 0x07fffffe07fffffeu /* A-Z a-z */
#define ID_LO (ALNUM_LO | BIT('.') | BIT(':') | BIT('-'))
#define ID_HI (ALNUM_HI | BIT('_'))

static int in_set(unsigned char c, uint64_t lo, uint64_t hi)
{
	/* no branch on which half: digits and letters alternate at random
	 * in a UUID, and mispredictions cost more than the test */
	uint64_t w = c & 64 ? hi : lo;

	return (c < 128) & (int)((w >> (c & 63)) & 1);
}

static int is_alnum(unsigned char c)
{
	return in_set(c, ALNUM_LO, ALNUM_HI);
}

int ts_valid_task_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!in_set((unsigned char)s[n], ID_LO, ID_HI))
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

/* The byte classes of an address, one table lookup a byte (the bit-set
 * tests above cost several operations each, on every byte of every
 * recipient): atext (RFC 5322), a domain label's letters, digits and '-',
 * an address literal's letters, digits, '.' and ':'. */
enum { C_ATEXT = 1, C_LABEL = 2, C_LITERAL = 4 };
#define C_ALNUM (C_ATEXT | C_LABEL | C_LITERAL)
static const unsigned char addr_class[256] = {
	['0' ... '9'] = C_ALNUM, ['A' ... 'Z'] = C_ALNUM, ['a' ... 'z'] = C_ALNUM,
	['!'] = C_ATEXT, ['#'] = C_ATEXT, ['$'] = C_ATEXT, ['%'] = C_ATEXT,
	['&'] = C_ATEXT, ['\''] = C_ATEXT, ['*'] = C_ATEXT, ['+'] = C_ATEXT,
	['-'] = C_ATEXT | C_LABEL, ['/'] = C_ATEXT, ['='] = C_ATEXT,
	['?'] = C_ATEXT, ['^'] = C_ATEXT, ['_'] = C_ATEXT, ['`'] = C_ATEXT,
	['{'] = C_ATEXT, ['|'] = C_ATEXT, ['}'] = C_ATEXT, ['~'] = C_ATEXT,
	['.'] = C_LITERAL, [':'] = C_LITERAL,
};

/* One pass: a dot-atom local part of 1-64 chars, '@', then labels of
 * letters, digits and inner hyphens (1-63 each) or an [address literal];
 * 254 chars in all. A second '@' fails either part. */
int ts_valid_email_address(const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *label;

	for (;;) { /* atoms separated by single dots */
		label = p;
		while (addr_class[*p] & C_ATEXT)
			p++;
		if (p == label)
			return 0; /* empty: a leading, doubled or final dot */
		if (*p != '.')
			break;
		p++;
	}
	if (*p != '@' || p - (const unsigned char *)s > 64)
		return 0;
	p++;
	if (*p == '[') {
		label = p++;
		while (addr_class[*p] & C_LITERAL)
			p++;
		if (*p != ']' || p[1] != '\0' || p - label < 2)
			return 0;
		return p + 1 - (const unsigned char *)s <= MAX_ADDRESS;
	}
	for (;;) {
		size_t n;

		label = p;
		while (addr_class[*p] & C_LABEL)
			p++;
		n = (size_t)(p - label);
		if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
			return 0;
		if (*p != '.')
			break;
		p++;
	}
	return *p == '\0' && p - (const unsigned char *)s <= MAX_ADDRESS;
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

/* snprintf(out, size, "%s", src) without the cost of a format: copy what
 * fits, always terminate. Returns the bytes written. */
static size_t copy_str(char *out, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(out, src, n);
	out[n] = '\0';
	return n;
}

/* "prefix.name" (or "name"), truncated like snprintf. Called for every
 * field of every task, hence no printf. */
static void path_join(char *out, size_t size, const char *prefix,
		      const char *name)
{
	size_t n = 0;

	if (prefix && *prefix) {
		n = copy_str(out, size, prefix);
		if (n + 1 < size) {
			out[n++] = '.';
			out[n] = '\0';
		}
	}
	copy_str(out + n, size - n, name);
}

/* strcmp(a, b) == 0 in line, for names that mostly differ in their first
 * byte (a call to strcmp is cheaper once a few bytes match). */
static inline int str_eq(const char *a, const char *b)
{
	while (*a == *b) {
		if (!*a)
			return 1;
		a++;
		b++;
	}
	return 0;
}

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Where a field is, for an error: "prefix.name", or "prefix.name[index]"
 * when index >= 0. Made into text only when an error names it: the checks
 * of a valid task never print a path. */
typedef struct where {
	const char *prefix;
	const char *name;
	int index;
} where;

static ts_err fail_at(ts_detail *d, const where *w, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static ts_err fail_at(ts_detail *d, const where *w, const char *fmt, ...)
{
	char path[160], item[sizeof path + 16], msg[sizeof d->msg];
	va_list ap;

	if (!d)
		return TS_ERR_DATA;
	path_join(path, sizeof path, w->prefix, w->name);
	if (w->index >= 0) {
		snprintf(item, sizeof item, "%s[%d]", path, w->index);
		copy_str(path, sizeof path, item);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return ts_fail(d, TS_ERR_DATA, path, "%s", msg);
}

static ts_err check_address(const cJSON *v, const where *w, int display_ok,
			    ts_detail *d)
{
	const char *s;
	size_t n;

	if (!is_string(v))
		return fail_at(d, w, "must be a string");
	s = v->valuestring;
	/* Most are plain addresses: a valid one has no CR or LF, fits, and
	 * no '<'; the checks below then only name what is wrong. */
	if (ts_valid_email_address(s))
		return TS_OK;
	if (has_crlf(s))
		return fail_at(d, w, "must not contain CR or LF");
	n = strlen(s);
	if (n > MAX_ADDRESS)
		return fail_at(d, w, "longer than %d characters", MAX_ADDRESS);
	if (display_ok) {
		/* "Display Name <addr@example.com>" */
		const char *lt = strrchr(s, '<');
		if (lt && n > 0 && s[n - 1] == '>') {
			char addr[MAX_ADDRESS + 1];
			size_t alen = (size_t)(s + n - 1 - (lt + 1));
			for (const char *p = s; p < lt; p++)
				if ((unsigned char)*p < 0x20 || *p == '"' ||
				    *p == '\\')
					return fail_at(d, w,
						       "display name must not contain quotes, backslashes or control characters");
			memcpy(addr, lt + 1, alen);
			addr[alen] = '\0';
			if (!ts_valid_email_address(addr))
				return fail_at(d, w, "not an email address");
			return TS_OK;
		}
	}
	if (!ts_valid_email_address(s))
		return fail_at(d, w, "not an email address");
	return TS_OK;
}

/* A field that is one address or an array of min..max addresses. */
static ts_err check_address_list(const cJSON *v, const where *w, int min,
				 ts_detail *d)
{
	where item = *w;
	int n;
	const cJSON *e;
	ts_err err;

	if (is_string(v))
		return check_address(v, w, 0, d);
	if (!is_array(v))
		return fail_at(d, w, "must be an address or an array of addresses");
	n = cJSON_GetArraySize(v);
	if (n < min || n > MAX_RECIPIENTS)
		return fail_at(d, w, "must hold %d to %d addresses, not %d", min,
			       MAX_RECIPIENTS, n);
	item.index = 0;
	cJSON_ArrayForEach(e, v) {
		if ((err = check_address(e, &item, 0, d)))
			return err;
		item.index++;
	}
	return TS_OK;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each field once: cJSON keeps both copies of a repeated key, and readers
 * disagree on which one counts (most take the last, which was never
 * validated). The field named is the first repeated one in sorted order:
 * a few fields are compared pairwise, many are sorted. */
static ts_err check_unique(const cJSON *p, const char *prefix, ts_detail *d)
{
	int n = cJSON_GetArraySize(p), i = 0;
	const char **names, *dup = NULL;
	const cJSON *f, *g;
	where w = { prefix, NULL, -1 };

	if (n < 2)
		return TS_OK;
	if (n <= 16) {
		for (f = p->child; f; f = f->next)
			for (g = f->next; g; g = g->next)
				if (str_eq(f->string, g->string) &&
				    (!dup || strcmp(f->string, dup) < 0))
					dup = f->string;
	} else {
		if (!(names = malloc(sizeof *names * (size_t)n)))
			return TS_ERR_NOMEM;
		cJSON_ArrayForEach(f, p)
			names[i++] = f->string;
		qsort(names, (size_t)n, sizeof *names, cmp_name);
		for (i = 1; i < n && !dup; i++)
			if (strcmp(names[i - 1], names[i]) == 0)
				dup = names[i]; /* the tree's string */
		free(names);
	}
	if (!dup)
		return TS_OK;
	w.name = dup;
	return fail_at(d, &w, "given twice");
}

enum { TO, SUBJECT, BODY, HTML, CC, BCC, FROM, REPLY_TO, NEMAIL };
static const char *const email_fields[NEMAIL] = {
	"to", "subject", "body", "html", "cc", "bcc", "from", "replyTo"
};

/* Which email field a name is (an index into email_fields), or -1. */
static int email_field(const char *s)
{
	int i;

	switch (s[0]) {
	case 't': i = TO; break;
	case 's': i = SUBJECT; break;
	case 'b': i = s[1] == 'c' ? BCC : BODY; break;
	case 'h': i = HTML; break;
	case 'c': i = CC; break;
	case 'f': i = FROM; break;
	case 'r': i = REPLY_TO; break;
	default: return -1;
	}
	return strcmp(s, email_fields[i]) == 0 ? i : -1;
}

static ts_err validate_email(const cJSON *p, const char *prefix, ts_detail *d)
{
	/* each known field's first occurrence, as
	 * cJSON_GetObjectItemCaseSensitive would find it, in one pass */
	const cJSON *field[NEMAIL] = { NULL };
	where w = { prefix, NULL, -1 };
	const cJSON *f;
	int twice = 0;
	ts_err err;

	cJSON_ArrayForEach(f, p) {
		int i = email_field(f->string);

		if (i < 0) {
			w.name = f->string;
			return fail_at(d, &w,
				       "unknown field (email takes to, subject, body, html, cc, bcc, from, replyTo)");
		}
		if (!field[i])
			field[i] = f;
		else
			twice = 1;
	}
	/* every name is a known one: only one seen twice can repeat, and
	 * check_unique picks which to name */
	if (twice && (err = check_unique(p, prefix, d)))
		return err;
	w.name = "to";
	f = field[TO];
	if (!f)
		return fail_at(d, &w, "required");
	if ((err = check_address_list(f, &w, 1, d)))
		return err;
	static const int lists[] = { CC, BCC, REPLY_TO };
	for (size_t i = 0; i < 3; i++) {
		f = field[lists[i]];
		if (!f)
			continue;
		w.name = email_fields[lists[i]];
		if ((err = check_address_list(f, &w, 0, d)))
			return err;
	}
	f = field[FROM];
	if (f) {
		w.name = "from";
		if ((err = check_address(f, &w, 1, d)))
			return err;
	}
	f = field[SUBJECT];
	w.name = "subject";
	if (!f)
		return fail_at(d, &w, "required");
	if (!is_string(f))
		return fail_at(d, &w, "must be a string");
	size_t n = strcspn(f->valuestring, "\r\n"); /* one pass for both */
	if (f->valuestring[n])
		return fail_at(d, &w, "must not contain CR or LF");
	if (n > MAX_SUBJECT)
		return fail_at(d, &w, "longer than %d bytes", MAX_SUBJECT);
	const cJSON *body = field[BODY];
	const cJSON *html = field[HTML];
	w.name = "body";
	if (!body && !html)
		return fail_at(d, &w, "required (body and/or html)");
	if (body && !is_string(body))
		return fail_at(d, &w, "must be a string");
	w.name = "html";
	if (html && !is_string(html))
		return fail_at(d, &w, "must be a string");
	return TS_OK;
}

static int valid_var_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!is_alnum((unsigned char)s[n]) && s[n] != '_')
			return 0;
	return n >= 1 && n <= 64;
}

static ts_err validate_sms(const cJSON *p, const char *prefix, ts_detail *d)
{
	where w = { prefix, NULL, -1 };
	const cJSON *f;
	ts_err err;

	cJSON_ArrayForEach(f, p) {
		w.name = f->string;
		if (strcmp(f->string, "mobiles") == 0)
			return fail_at(d, &w,
				       "unknown field (did you mean mobile?)");
		if (!valid_var_name(f->string))
			return fail_at(d, &w,
				       "field names are 1-64 letters, digits or _");
		if (!is_string(f))
			return fail_at(d, &w, "must be a string");
	}
	if ((err = check_unique(p, prefix, d)))
		return err;
	w.name = "mobile";
	f = cJSON_GetObjectItemCaseSensitive(p, "mobile");
	if (!f)
		return fail_at(d, &w, "required");
	if (!ts_valid_mobile(f->valuestring))
		return fail_at(d, &w,
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

	if (is_number(v) && !(fabs(v->valuedouble) < 1e308))
		return ts_fail(d, TS_ERR_DATA, path && *path ? path : NULL,
			       "number out of range (magnitude 1e308 or more)");
	cJSON_ArrayForEach(e, v) {
		if (is_array(v))
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
	if (!is_object(payload))
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
	/* The shape alone would let 2026-13-45T99:99:99Z through. */
	int mon = (s[5] - '0') * 10 + (s[6] - '0');
	int day = (s[8] - '0') * 10 + (s[9] - '0');
	int hh = (s[11] - '0') * 10 + (s[12] - '0');
	int mm = (s[14] - '0') * 10 + (s[15] - '0');
	int ss = (s[17] - '0') * 10 + (s[18] - '0');
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 ||
	    ss > 60)
		return 0;
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

/* The top-level fields, as indexes into top_names. */
enum { TOP_ID, TOP_TYPE, TOP_PAYLOAD, TOP_CREATED, TOP_KEY, TOP_TP, NTOP };
static const char *const top_names[NTOP] = {
	"taskId", "taskType", "payload", "createdAt", "key", "traceparent"
};

/* Which top-level field a name is, or -1. */
static int top_field(const char *s)
{
	int i;

	switch (s[0]) {
	case 't':
		if (strcmp(s, "taskType") == 0)
			return TOP_TYPE;
		i = s[1] == 'r' ? TOP_TP : TOP_ID;
		break;
	case 'p': i = TOP_PAYLOAD; break;
	case 'c': i = TOP_CREATED; break;
	case 'k': i = TOP_KEY; break;
	default: return -1;
	}
	return strcmp(s, top_names[i]) == 0 ? i : -1;
}

/* A top-level field that must be a string when given. */
static inline ts_err take_string(const cJSON *const *top, int i,
				 const char **out, ts_detail *d)
{
	const cJSON *v = top ? top[i] : NULL;

	*out = NULL;
	if (!v)
		return TS_OK;
	if (!is_string(v))
		return ts_fail(d, TS_ERR_DATA, top_names[i], "must be a string");
	*out = v->valuestring;
	return TS_OK;
}

/* Only known fields, each once; top[] gets each field given (NULL for the
 * others). The error names the first field, in input order, that is
 * unknown or given again later. */
static ts_err check_top_level(const cJSON *obj, const cJSON *top[NTOP],
			      ts_detail *d)
{
	int left[NTOP] = { 0 };
	signed char known[2 * NTOP]; /* the first fields' top_field(), kept */
	const cJSON *f;
	unsigned seen = 0;
	int n = 0;

	for (int i = 0; i < NTOP; i++)
		top[i] = NULL;
	/* Nearly always each field is known and given once: one pass. */
	cJSON_ArrayForEach(f, obj) {
		int i = top_field(f->string);

		if (i < 0 || (seen >> i & 1))
			break;
		seen |= 1u << i;
		top[i] = f;
	}
	if (!f)
		return TS_OK;
	/* Else find which field to name, from the start. */
	for (int i = 0; i < NTOP; i++)
		top[i] = NULL;
	cJSON_ArrayForEach(f, obj) {
		int i = top_field(f->string);

		if (n < (int)sizeof known)
			known[n++] = (signed char)i;
		if (i >= 0)
			left[i]++;
	}
	n = 0;
	cJSON_ArrayForEach(f, obj) {
		int i = n < (int)sizeof known ? known[n++] : top_field(f->string);

		if (i < 0)
			return ts_fail(d, TS_ERR_DATA, f->string,
				       "unknown field (a task has taskId, taskType, payload, createdAt, key, traceparent)");
		/* cJSON keeps duplicate keys; the second would be ignored. */
		if (--left[i] > 0)
			return ts_fail(d, TS_ERR_DATA, f->string, "given twice");
		top[i] = f;
	}
	return TS_OK;
}

/* top: the fields check_top_level() found, or NULL (--type: none). */
static ts_err fill_ids(const cJSON *const *top, const ts_task_opts *opts,
		       ts_task *t, ts_detail *d)
{
	const char *id, *created, *key, *tp;
	int generated = 0;
	ts_err err;

	if ((err = take_string(top, TOP_ID, &id, d)) ||
	    (err = take_string(top, TOP_CREATED, &created, d)) ||
	    (err = take_string(top, TOP_KEY, &key, d)) ||
	    (err = take_string(top, TOP_TP, &tp, d)))
		return err;
	if (!id && opts && opts->default_id) {
		id = opts->default_id;
		generated = opts->default_id_generated;
	}
	if (id) {
		if (!generated && !ts_valid_task_id(id))
			return ts_fail(d, TS_ERR_DATA, "taskId",
				       "must be 1-128 characters of A-Z a-z 0-9 . _ : -");
		copy_str(t->task_id, sizeof t->task_id, id);
	} else if (ts_uuid4(t->task_id, sizeof t->task_id) != TS_OK) {
		return ts_fail(d, TS_ERR_INTERNAL, NULL,
			       "no randomness for a task id");
	}
	if (created) {
		if (!valid_timestamp(created))
			return ts_fail(d, TS_ERR_DATA, "createdAt",
				       "must be an RFC 3339 timestamp like 2026-11-29T07:00:00.123Z");
		copy_str(t->created_at, sizeof t->created_at, created);
	} else if (opts && opts->created_at) {
		copy_str(t->created_at, sizeof t->created_at, opts->created_at);
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

/* take: obj belongs to the caller's parse and the payload may be detached
 * from it rather than copied. */
static ts_err from_request(const cJSON *obj, const cJSON *const *top,
			   int take, ts_task *t, ts_detail *d)
{
	const cJSON *type = top[TOP_TYPE];
	const cJSON *payload = top[TOP_PAYLOAD];
	ts_err err;

	if (!type)
		return ts_fail(d, TS_ERR_DATA, "taskType", "required");
	if (!is_string(type))
		return ts_fail(d, TS_ERR_DATA, "taskType", "must be a string");
	if (!ts_valid_task_type(type->valuestring))
		return ts_fail(d, TS_ERR_DATA, "taskType",
			       "must match [a-z][a-z0-9_.-]{0,63}");
	copy_str(t->task_type, sizeof t->task_type, type->valuestring);
	if (!payload)
		return ts_fail(d, TS_ERR_DATA, "payload", "required");
	if ((err = ts_payload_validate(t->task_type, payload, "payload", d)))
		return err;
	if (take)
		t->payload = cJSON_DetachItemViaPointer((cJSON *)obj,
							(cJSON *)payload);
	else if (!(t->payload = cJSON_Duplicate(payload, 1)))
		return TS_ERR_NOMEM;
	return TS_OK;
}

/* ts_task_from_json; with take non-NULL, obj is the caller's own parse and
 * may be consumed instead of copied: *take is set to 1 when t now owns obj
 * itself (--type: the whole object is the payload), so the caller must not
 * free it. */
static ts_err task_from_obj(const cJSON *obj, const ts_task_opts *opts,
			    int *take, ts_task *t, ts_detail *d)
{
	ts_err err;

	memset(t, 0, sizeof *t);
	ts_detail_clear(d);
	if (!is_object(obj))
		return ts_fail(d, TS_ERR_DATA, NULL, "a task must be a JSON object");
	if (opts && opts->force_type) {
		if (!ts_valid_task_type(opts->force_type))
			return ts_fail(d, TS_ERR_USAGE, "taskType",
				       "'%s' must match [a-z][a-z0-9_.-]{0,63}",
				       opts->force_type);
		copy_str(t->task_type, sizeof t->task_type, opts->force_type);
		err = ts_payload_validate(t->task_type, obj, "payload", d);
		if (!err && take) {
			t->payload = (cJSON *)obj;
			*take = 1;
		} else if (!err && !(t->payload = cJSON_Duplicate(obj, 1))) {
			err = TS_ERR_NOMEM;
		}
		if (!err)
			err = fill_ids(NULL, opts, t, d);
	} else {
		const cJSON *top[NTOP];

		err = check_top_level(obj, top, d);
		if (!err)
			err = from_request(obj, top, take != NULL, t, d);
		if (!err)
			err = fill_ids(top, opts, t, d);
	}
	if (err)
		ts_task_free(t);
	return err;
}

ts_err ts_task_from_json(const cJSON *obj, const ts_task_opts *opts,
			 ts_task *t, ts_detail *d)
{
	return task_from_obj(obj, opts, NULL, t, d);
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
	int taken = 0;
	err = task_from_obj(obj, opts, &taken, t, d);
	if (!taken)
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

/* A JSON string as cJSON prints it: quotes, backslashes and control
 * characters escaped, everything else (UTF-8 included) as is. */

/* Print a cJSON tree compactly at the end of out, growing it as needed. */
static ts_err append_json(ts_buf *out, cJSON *item)
{
	size_t room = 256;
	ts_err err;

	for (;;) {
		if ((err = ts_buf_reserve(out, room)))
			return err;
		room = out->cap - out->len;
		if (room > INT_MAX)
			room = INT_MAX;
		if (cJSON_PrintPreallocated(item, out->data + out->len,
					    (int)room, 0)) {
			out->len += strlen(out->data + out->len);
			return TS_OK;
		}
		if (room >= INT_MAX / 2)
			return TS_ERR_NOMEM;
		room *= 2;
	}
}

static ts_err print_tree(ts_buf *out, const cJSON *n);

/* How serialize() writes the payload. */
typedef struct payload_form {
	const cJSON *tree;
	int simple;       /* a fast-path tree: print_tree prints it */
	const char *raw;  /* non-NULL: these bytes are already its printed form */
	size_t raw_len;
} payload_form;

static ts_err append_payload(ts_buf *out, const payload_form *p)
{
	if (p->raw)
		return ts_buf_append(out, p->raw, p->raw_len);
	if (p->simple)
		return print_tree(out, p->tree);
	return append_json(out, (cJSON *)p->tree);
}

static char *put(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

/* The envelope, field order as ts_task_to_json's. taskId, taskType and
 * createdAt are validated or generated from alphabets that need no
 * escaping; the parts around the payload are written in one go each. */
static ts_err serialize(const ts_task *t, const payload_form *payload,
			ts_buf *out)
{
	size_t mark = out->len;
	size_t id_len = strlen(t->task_id), type_len = strlen(t->task_type);
	size_t at_len = strlen(t->created_at);
	size_t tail = 14 + at_len + 1 + 1; /* createdAt, and '}' without key */
	size_t raw_len = payload->raw ? payload->raw_len : 0;
	char *o;
	ts_err err;

	/* with the payload's bytes at hand, one reservation for it all */
	if ((err = ts_buf_reserve(out, 11 + id_len + 14 + type_len + 12 +
					       raw_len + tail)))
		return err;
	o = out->data + out->len;
	o = put(o, "{\"taskId\":\"", 11);
	o = put(o, t->task_id, id_len);
	o = put(o, "\",\"taskType\":\"", 14);
	o = put(o, t->task_type, type_len);
	o = put(o, "\",\"payload\":", 12);
	if (payload->raw) {
		o = put(o, payload->raw, raw_len);
	} else {
		*o = '\0';
		out->len = (size_t)(o - out->data);
		if ((err = append_payload(out, payload)) ||
		    (err = ts_buf_reserve(out, tail)))
			goto fail;
		o = out->data + out->len;
	}
	o = put(o, ",\"createdAt\":\"", 14);
	o = put(o, t->created_at, at_len);
	*o++ = '"';
	if (!t->key) {
		*o++ = '}';
		*o = '\0';
		out->len = (size_t)(o - out->data);
		return TS_OK;
	}
	*o = '\0';
	out->len = (size_t)(o - out->data);
	if ((err = ts_buf_append(out, ",\"key\":", 7)) ||
	    (err = ts_buf_append_json(out, t->key)) ||
	    (err = ts_buf_append(out, "}", 1)))
		goto fail;
	return TS_OK;
fail:
	out->len = mark;
	if (out->data)
		out->data[mark] = '\0';
	return err;
}

ts_err ts_task_serialize(const ts_task *t, ts_buf *out)
{
	payload_form p = { .tree = t->payload };

	return serialize(t, &p, out);
}

/* ---- fast path: parse, validate and serialise without a heap tree -------- */

/* Most tasks are small objects of strings. For those, ts_task_encode()
 * builds the cJSON tree in a fixed pool on the stack (no malloc, no free),
 * runs the very same checks on it and prints it itself. It only takes
 * input whose printed form it can reproduce exactly (strings whose escapes
 * are among \" \\ \/ \b \f \n \r \t, integers cJSON prints with %d, the
 * three literals) and that is plainly valid; anything else, every error
 * included, goes the slow way so results and messages stay identical. */

#define FAST_MAX 4096   /* input bytes */
#define FAST_NODES 160
#define FAST_DEPTH 32

typedef struct fastp {
	const unsigned char *p, *end;
	char *str;              /* next free byte in strs */
	int used;
	int depth;
	unsigned ws;            /* white space bytes skipped so far */
	unsigned reprinted;     /* escapes that print differently (\/) so far */
	unsigned char lf_ws;    /* 0: a line feed is not white space here */
	cJSON nodes[FAST_NODES];
	/* per container node: its input bytes, and whether they are exactly
	 * its printed form (no white space, no \/ inside) */
	const unsigned char *raw[FAST_NODES];
	size_t raw_len[FAST_NODES];
	unsigned char canonical[FAST_NODES];
	char strs[FAST_MAX + 1];  /* decoded strings: never longer than the input */
} fastp;

static cJSON *fp_value(fastp *f);

static void fp_ws_run(fastp *f)
{
	const unsigned char *p = f->p;

	while (p < f->end && (*p == ' ' || *p == '\r' || *p == '\t' ||
			      (*p == '\n' && f->lf_ws)))
		p++;
	f->ws += (unsigned)(p - f->p);
	f->p = p;
}

/* Skip white space; compact input has none, and that test is inline. */
static inline void fp_ws(fastp *f)
{
	if (f->p < f->end && *f->p > ' ')
		return;
	fp_ws_run(f);
}

static cJSON *fp_node(fastp *f, int type)
{
	cJSON *n;

	if (f->used == FAST_NODES)
		return NULL;
	n = &f->nodes[f->used++];
	memset(n, 0, sizeof *n);
	n->type = type;
	return n;
}

/* 1 for the bytes a string copies as they are: printable ASCII but the
 * quote and the backslash. */
static const unsigned char fp_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Copy the bytes from p on that fp_plain takes to *op, advancing it, and
 * return the first one it does not take, or end. Sixteen bytes at a time
 * with SSE2, each block stored before it is looked at (no copy call per
 * run; the output never gets ahead of the input, so a block ending within
 * the input fits in strs), else eight in a word: there a byte under 0x20
 * or over 0x7f, a quote or a backslash sets the high bit of its byte in
 * the mask (the lowest such bit is always a true one: borrows only run
 * upwards). */
static inline __attribute__((always_inline)) const unsigned char *
fp_plain_run(const unsigned char *p, const unsigned char *end, char **op)
{
	char *o = *op;
#if defined(__SSE2__)
	/* as signed bytes, both < 0x20 and >= 0x80 are less than 0x20 */
	const __m128i space = _mm_set1_epi8(' ');
	const __m128i quote = _mm_set1_epi8('"');
	const __m128i bslash = _mm_set1_epi8('\\');

	while (end - p >= 16) {
		__m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned hit = (unsigned)_mm_movemask_epi8(_mm_or_si128(
			_mm_or_si128(_mm_cmplt_epi8(w, space), _mm_cmpeq_epi8(w, quote)),
			_mm_cmpeq_epi8(w, bslash)));

		_mm_storeu_si128((__m128i *)(void *)o, w);
		if (hit) {
			unsigned k = (unsigned)__builtin_ctz(hit);

			*op = o + k;
			return p + k;
		}
		p += 16;
		o += 16;
	}
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101u;
	const uint64_t highs = 0x8080808080808080u;
	const unsigned char *run = p;

	while (end - p >= 8) {
		uint64_t w, q, b, hit;

		memcpy(&w, p, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		hit = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) |
		      ((b - ones) & ~b) | w;
		hit &= highs;
		if (hit) {
			p += __builtin_ctzll(hit) >> 3; /* the loop below stops there */
			break;
		}
		p += 8;
	}
	memcpy(o, run, (size_t)(p - run));
	o += p - run;
#endif
	while (p < end && fp_plain[*p])
		*o++ = (char)*p++;
	*op = o;
	return p;
}

/* A string at f->p (on its opening quote), decoded into f->strs. In line:
 * a call per key and per string was a fifth of its cost. */
static inline __attribute__((always_inline)) char *fp_string(fastp *f)
{
	const unsigned char *p = f->p + 1, *end = f->end;
	char *start = f->str, *o = f->str;

	for (;;) {
		unsigned c;

		p = fp_plain_run(p, end, &o);
		if (p >= end)
			return NULL;
		c = *p;
		if (c == '"') {
			break;
		} else if (c == '\\') {
			if (p + 1 >= end)
				return NULL;
			switch (p[1]) {
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			case '/': *o++ = '/'; f->reprinted++; break;
			case 'b': *o++ = '\b'; break;
			case 'f': *o++ = '\f'; break;
			case 'n': *o++ = '\n'; break;
			case 'r': *o++ = '\r'; break;
			case 't': *o++ = '\t'; break;
			default: return NULL; /* \u: the slow way */
			}
			p += 2;
		} else {
			size_t n = c < 0x20 ? 0 : utf8_seq(p, (size_t)(end - p));

			if (n == 0)
				return NULL;
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	*o++ = '\0';
	f->str = o;
	f->p = p + 1;
	return start;
}

/* Only integers that cJSON prints back as the same digits. */
static cJSON *fp_number(fastp *f)
{
	const unsigned char *p = f->p, *end = f->end;
	int neg = 0, digits = 0;
	int64_t v = 0;
	cJSON *n;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p < end && *p == '0') {
		p++;
		digits = 1;
		if (neg)
			return NULL; /* -0 prints as 0 */
	} else {
		while (p < end && *p >= '0' && *p <= '9' && digits < 11) {
			v = v * 10 + (*p++ - '0');
			digits++;
		}
	}
	if (digits == 0 || digits > 10 ||
	    (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' ||
			 *p == 'E')))
		return NULL;
	if (neg)
		v = -v;
	if (v < INT_MIN || v > INT_MAX || !(n = fp_node(f, cJSON_Number)))
		return NULL;
	n->valueint = (int)v;
	n->valuedouble = (double)v;
	f->p = p;
	return n;
}

static cJSON *fp_literal(fastp *f, const char *word, int type)
{
	size_t n = strlen(word);

	if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0)
		return NULL;
	f->p += n;
	return fp_node(f, type);
}

static void fp_link(cJSON *parent, cJSON **last, cJSON *item)
{
	if (*last) {
		(*last)->next = item;
		item->prev = *last;
	} else {
		parent->child = item;
	}
	parent->child->prev = item; /* cJSON keeps the last child there */
	*last = item;
}

/* An object or array at f->p (on its opening bracket). */
static cJSON *fp_container(fastp *f, int object)
{
	cJSON *c = fp_node(f, object ? cJSON_Object : cJSON_Array);
	cJSON *last = NULL, *item;
	char close = object ? '}' : ']';
	const unsigned char *start = f->p;
	unsigned ws = f->ws, reprinted = f->reprinted;
	int idx = f->used - 1;

	if (!c || ++f->depth > FAST_DEPTH)
		return NULL;
	f->p++;
	fp_ws(f);
	if (f->p < f->end && *f->p == close)
		goto done;
	for (;;) {
		char *key = NULL;

		unsigned char next;

		if (object) {
			if (f->p >= f->end || *f->p != '"' || !(key = fp_string(f)))
				return NULL;
			if (f->p < f->end && *f->p == ':') { /* compact */
				f->p++;
			} else {
				fp_ws_run(f);
				if (f->p >= f->end || *f->p != ':')
					return NULL;
				f->p++;
			}
			fp_ws(f);
		}
		if (!(item = fp_value(f)))
			return NULL;
		item->string = key;
		fp_link(c, &last, item);
		/* compact input has the ',' or the close right here */
		if (f->p >= f->end)
			return NULL;
		next = *f->p;
		if (next <= ' ') {
			fp_ws_run(f);
			if (f->p >= f->end)
				return NULL;
			next = *f->p;
		}
		if (next == (unsigned char)close)
			break;
		if (next != ',')
			return NULL;
		f->p++;
		fp_ws(f);
	}
done:
	f->p++;
	f->depth--;
	f->raw[idx] = start;
	f->raw_len[idx] = (size_t)(f->p - start);
	f->canonical[idx] = f->ws == ws && f->reprinted == reprinted;
	return c;
}

static cJSON *fp_value(fastp *f)
{
	cJSON *n;
	char *str;

	if (f->p >= f->end)
		return NULL;
	switch (*f->p) {
	case '{':
		return fp_container(f, 1);
	case '[':
		return fp_container(f, 0);
	case '"':
		if (!(str = fp_string(f)) || !(n = fp_node(f, cJSON_String)))
			return NULL;
		n->valuestring = str;
		return n;
	case 't':
		return fp_literal(f, "true", cJSON_True);
	case 'f':
		return fp_literal(f, "false", cJSON_False);
	case 'n':
		return fp_literal(f, "null", cJSON_NULL);
	default:
		return fp_number(f);
	}
}

/* cJSON_PrintUnformatted's output for the trees fp_value builds. */
static ts_err print_tree(ts_buf *out, const cJSON *n)
{
	char num[16];
	const cJSON *c;
	ts_err err;

	switch (n->type & 0xff) {
	case cJSON_String:
		return ts_buf_append_json(out, n->valuestring);
	case cJSON_Number: {
		unsigned v = n->valueint < 0 ? 0u - (unsigned)n->valueint
					     : (unsigned)n->valueint;
		char *o = num + sizeof num;

		do
			*--o = (char)('0' + v % 10);
		while (v /= 10);
		if (n->valueint < 0)
			*--o = '-';
		return ts_buf_append(out, o, (size_t)(num + sizeof num - o));
	}
	case cJSON_True:
		return ts_buf_append(out, "true", 4);
	case cJSON_False:
		return ts_buf_append(out, "false", 5);
	case cJSON_NULL:
		return ts_buf_append(out, "null", 4);
	default:
		break;
	}
	if ((err = ts_buf_append(out, is_object(n) ? "{" : "[", 1)))
		return err;
	for (c = n->child; c; c = c->next) {
		if (c != n->child && (err = ts_buf_append(out, ",", 1)))
			return err;
		if (is_object(n) &&
		    ((err = ts_buf_append_json(out, c->string)) ||
		     (err = ts_buf_append(out, ":", 1))))
			return err;
		if ((err = print_tree(out, c)))
			return err;
	}
	return ts_buf_append(out, is_object(n) ? "}" : "]", 1);
}

/* task_from_obj on a pool tree: the same checks in the same order, but
 * the payload is only borrowed (t->payload stays NULL) and any failure
 * just says "not here". */
static int fast_task(const cJSON *obj, const ts_task_opts *opts, ts_task *t,
		     const cJSON **payload)
{
	const cJSON *top[NTOP], *type;
	const cJSON *const *given = NULL;

	/* no ts_detail: a failure here is only reported by the slow way.
	 * Not the whole of t zeroed (a tenth of the checks): each string is
	 * written below before success, the pointers here. */
	t->task_id[0] = t->task_type[0] = t->created_at[0] = '\0';
	t->payload = NULL;
	t->key = t->traceparent = NULL;
	if (opts && opts->force_type) {
		if (!ts_valid_task_type(opts->force_type))
			return 0;
		copy_str(t->task_type, sizeof t->task_type, opts->force_type);
		*payload = obj;
	} else {
		if (check_top_level(obj, top, NULL))
			return 0;
		given = top;
		type = top[TOP_TYPE];
		*payload = top[TOP_PAYLOAD];
		if (!is_string(type) || !*payload ||
		    !ts_valid_task_type(type->valuestring))
			return 0;
		copy_str(t->task_type, sizeof t->task_type, type->valuestring);
	}
	if (ts_payload_validate(t->task_type, *payload, "payload", NULL) ||
	    fill_ids(given, opts, t, NULL)) {
		ts_task_free(t); /* key, traceparent; no payload */
		return 0;
	}
	return 1;
}

/* The fast path: 1 when done, 0 to go the slow way (out unchanged).
 * With used, the object may end before len (*used says where) and must
 * hold no line feed; without, only white space may follow it. */
static int fast_encode(const char *json, size_t len, const ts_task_opts *opts,
		       ts_task *t, ts_buf *out, size_t *used)
{
	fastp f;
	cJSON *obj;
	payload_form form = { .simple = 1 };
	int idx;

	if (len > FAST_MAX) {
		if (!used)
			return 0;
		len = FAST_MAX; /* a longer object runs into the end: slow way */
	}
	f.p = (const unsigned char *)json;
	f.end = f.p + len;
	f.str = f.strs;
	f.used = f.depth = 0;
	f.ws = f.reprinted = 0;
	f.lf_ws = !used; /* an unsplit stream: the object ends in its line */
	fp_ws(&f);
	if (f.p >= f.end || *f.p != '{' || !(obj = fp_container(&f, 1)))
		return 0;
	if (used) {
		*used = (size_t)((const char *)f.p - json);
	} else {
		fp_ws(&f);
		if (f.p != f.end)
			return 0;
	}
	if (!fast_task(obj, opts, t, &form.tree))
		return 0;
	idx = (int)(form.tree - f.nodes);
	if (f.canonical[idx]) { /* validated: an object, so it has a span */
		form.raw = (const char *)f.raw[idx];
		form.raw_len = f.raw_len[idx];
	}
	if (serialize(t, &form, out) != TS_OK) {
		ts_task_free(t);
		return 0;
	}
	return 1;
}

ts_err ts_task_encode(const char *json, size_t len, const ts_task_opts *opts,
		      ts_task *t, ts_buf *out, ts_detail *d)
{
	ts_err err;

	if (fast_encode(json, len, opts, t, out, NULL))
		return TS_OK;
	if ((err = ts_task_parse(json, len, opts, t, d)))
		return err;
	err = ts_task_serialize(t, out);
	cJSON_Delete(t->payload);
	t->payload = NULL;
	if (err)
		ts_task_free(t);
	return err;
}

int ts_task_encode_prefix(const char *json, size_t len,
			  const ts_task_opts *opts, ts_task *t, ts_buf *out,
			  size_t *used)
{
	return fast_encode(json, len, opts, t, out, used);
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
