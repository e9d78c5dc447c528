/* ts-send - deliver one email or SMS now, or many from JSON lines on
 * stdin, without Kafka: the notification service as a command.
 *
 *   ts-send email --to ADDR --subject S [--body T | --body-file F | stdin]
 *   ts-send sms --mobile N [--var name=VALUE] [--message TEXT]
 *   ts-send --json < tasks.jsonl
 *
 * One JSON result line per message on stdout; the exit status is the worst
 * outcome (75 transient over 69 permanent over 65 invalid).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "err.h"
#include "jsonstream.h"
#include "log.h"
#include "send.h"
#include "task.h"
#include "tool.h"
#include "util.h"

#define SYNOPSIS                                                              \
	"ts-send email --to ADDR [--to ..] [--cc ..] [--bcc ..] [--from ..] "     \
	"--subject S [--body TEXT | --body-file F | body on stdin] "              \
	"[--html-file F]\n"                                                       \
	"       ts-send sms --mobile N [--var name=VALUE ..] [--message TEXT]\n" \
	"       ts-send --json   (tasks as JSON lines on stdin)"

#define MAX_BODY ((size_t)25 << 20)
#define MAX_JSON ((size_t)16 << 20)

/* ---- secrets in our own argv -------------------------------------------- */

/* Overwrite passwords (and Msg91 keys, which sit in the user part) of any
 * URL on our command line, so ps(1) and /proc/PID/cmdline do not show
 * them. The loader has copied every value already. */
static void scrub_argv(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *p = argv[i];
		while ((p = strstr(p, "://")) != NULL) {
			char *auth = p + 3;
			size_t alen = strcspn(auth, "/?#");
			char *at = NULL, *colon;
			int key_in_user = p - argv[i] >= 5 &&
					  strncmp(p - 5, "msg91", 5) == 0;

			for (size_t k = alen; k > 0; k--)
				if (auth[k - 1] == '@') {
					at = auth + k - 1;
					break;
				}
			if (at) {
				colon = memchr(auth, ':', (size_t)(at - auth));
				char *from = key_in_user ? auth : colon ? colon + 1 : at;
				for (char *c = from; c < at; c++)
					*c = '*';
			}
			p = auth + alen;
		}
	}
}

/* ---- one message from options ------------------------------------------- */

static ts_err read_fd(int fd, const char *name, char **out, ts_detail *d)
{
	ts_buf b = { 0 };

	for (;;) {
		ssize_t n;
		if (ts_buf_reserve(&b, 65536)) {
			ts_buf_free(&b);
			return TS_ERR_NOMEM;
		}
		n = read(fd, b.data + b.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ts_buf_free(&b);
			return ts_fail(d, TS_ERR_USAGE, NULL, "%s: %s", name,
				       strerror(errno));
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > MAX_BODY) {
			ts_buf_free(&b);
			return ts_fail(d, TS_ERR_DATA, NULL,
				       "%s: larger than %zu bytes", name, MAX_BODY);
		}
	}
	b.data[b.len] = '\0';
	*out = b.data;
	return TS_OK;
}

/* Text for a body: checked to be UTF-8 without NUL bytes. */
static ts_err add_text(cJSON *p, const char *key, char *text, const char *name,
		       ts_detail *d)
{
	ts_err err = ts_json_check_bytes(text, strlen(text), d);

	if (!err && !cJSON_AddStringToObject(p, key, text))
		err = TS_ERR_NOMEM;
	if (err == TS_ERR_DATA)
		ts_fail(d, err, key, "%s: %s", name, d->msg);
	return err;
}

static ts_err add_file(cJSON *p, const char *key, const char *path,
		       ts_detail *d)
{
	char *text = NULL;
	size_t len;
	ts_err err;

	if ((err = ts_read_file(path, MAX_BODY, &text, &len, d)))
		return ts_fail(d, TS_ERR_USAGE, NULL, "%s", d->msg);
	if (strlen(text) != len) {
		free(text);
		return ts_fail(d, TS_ERR_DATA, key, "%s: holds a NUL byte", path);
	}
	err = add_text(p, key, text, path, d);
	free(text);
	return err;
}

static ts_err add_list(cJSON *p, const char *key, const ts_strlist *l)
{
	cJSON *a;

	if (l->n == 0)
		return TS_OK;
	if (l->n == 1)
		return cJSON_AddStringToObject(p, key, l->v[0]) ? TS_OK
							       : TS_ERR_NOMEM;
	if (!(a = cJSON_AddArrayToObject(p, key)))
		return TS_ERR_NOMEM;
	for (int i = 0; i < l->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
	return cJSON_GetArraySize(a) == l->n ? TS_OK : TS_ERR_NOMEM;
}

static ts_err email_payload(const ts_config *cfg, cJSON *p, ts_detail *d)
{
	ts_err err;
	char *stdin_body = NULL;

	if (cfg->mobile || cfg->vars.n || cfg->message)
		return ts_fail(d, TS_ERR_USAGE, NULL,
			       "--mobile, --var and --message are for sms");
	if (cfg->to.n == 0)
		return ts_fail(d, TS_ERR_USAGE, NULL, "email needs --to ADDR");
	if (!cfg->subject)
		return ts_fail(d, TS_ERR_USAGE, NULL, "email needs --subject TEXT");
	if (cfg->body && cfg->body_file)
		return ts_fail(d, TS_ERR_USAGE, NULL,
			       "give --body or --body-file, not both");
	if ((err = add_list(p, "to", &cfg->to)) ||
	    (err = add_list(p, "cc", &cfg->cc)) ||
	    (err = add_list(p, "bcc", &cfg->bcc)))
		return err;
	if (cfg->reply_to && !cJSON_AddStringToObject(p, "replyTo", cfg->reply_to))
		return TS_ERR_NOMEM;
	if (cfg->from && !cJSON_AddStringToObject(p, "from", cfg->from))
		return TS_ERR_NOMEM;
	if (!cJSON_AddStringToObject(p, "subject", cfg->subject))
		return TS_ERR_NOMEM;
	if (cfg->body) {
		err = add_text(p, "body", cfg->body, "--body", d);
	} else if (cfg->body_file) {
		err = add_file(p, "body", cfg->body_file, d);
	} else if (!(cfg->html_file && isatty(STDIN_FILENO))) {
		/* The body comes on stdin (unless only HTML was meant). */
		err = read_fd(STDIN_FILENO, "stdin", &stdin_body, d);
		if (!err)
			err = add_text(p, "body", stdin_body, "stdin", d);
		free(stdin_body);
	}
	if (!err && cfg->html_file)
		err = add_file(p, "html", cfg->html_file, d);
	return err;
}

static ts_err sms_payload(const ts_config *cfg, cJSON *p, ts_detail *d)
{
	if (cfg->to.n || cfg->cc.n || cfg->bcc.n || cfg->subject || cfg->body ||
	    cfg->body_file || cfg->html_file || cfg->reply_to)
		return ts_fail(d, TS_ERR_USAGE, NULL,
			       "--to, --cc, --bcc, --subject, --body, --body-file, "
			       "--html-file and --reply-to are for email");
	if (!cfg->mobile)
		return ts_fail(d, TS_ERR_USAGE, NULL, "sms needs --mobile NUMBER");
	if (!cJSON_AddStringToObject(p, "mobile", cfg->mobile))
		return TS_ERR_NOMEM;
	for (int i = 0; i < cfg->vars.n; i++) {
		const char *v = cfg->vars.v[i], *eq = strchr(v, '=');
		char name[80];
		if (!eq || eq == v || (size_t)(eq - v) >= sizeof name)
			return ts_fail(d, TS_ERR_USAGE, NULL,
				       "--var takes NAME=VALUE, not '%.80s'", v);
		snprintf(name, sizeof name, "%.*s", (int)(eq - v), v);
		if (cJSON_GetObjectItemCaseSensitive(p, name))
			return ts_fail(d, TS_ERR_USAGE, NULL,
				       "--var %s given twice (or clashes with "
				       "--mobile/--message)", name);
		if (!cJSON_AddStringToObject(p, name, eq + 1))
			return TS_ERR_NOMEM;
	}
	if (cfg->message) {
		if (cJSON_GetObjectItemCaseSensitive(p, "message"))
			return ts_fail(d, TS_ERR_USAGE, NULL,
				       "--message and --var message=.. both given");
		if (!cJSON_AddStringToObject(p, "message", cfg->message))
			return TS_ERR_NOMEM;
	}
	return TS_OK;
}

static int run_one(sender *s, ts_channel ch)
{
	const ts_config *cfg = s->cfg;
	cJSON *p = cJSON_CreateObject();
	item it;
	ts_detail d;
	ts_err err;

	ts_detail_clear(&d);
	if (!p)
		return ts_err_exit(TS_ERR_NOMEM);
	err = ch == TS_CHANNEL_EMAIL ? email_payload(cfg, p, &d)
				     : sms_payload(cfg, p, &d);
	if (!err)
		err = ts_payload_validate(ch == TS_CHANNEL_EMAIL ? "email" : "sms",
					  p, "", &d);
	if (err == TS_ERR_USAGE) {
		ts_log_error("%s", d.msg);
		cJSON_Delete(p);
		return ts_err_exit(err);
	}
	if (err == TS_ERR_NOMEM) {
		ts_log_error("out of memory");
		cJSON_Delete(p);
		return ts_err_exit(err);
	}
	memset(&it, 0, sizeof it);
	it.channel = ch;
	if (err) {
		cJSON_Delete(p);
		item_invalid(&it, 0, d.field, d.msg);
		it.channel = ch;
	} else {
		it.payload = p;
	}
	sender_flush(s, &it, 1);
	return ts_err_exit(s->fatal ? s->fatal_err : s->worst);
}

/* ---- many messages from stdin ------------------------------------------- */

/* Nothing more to read without waiting: deliver what we have first. */
static int input_idle(const ts_jsonstream *js)
{
	struct pollfd pfd = { .fd = js->fd, .events = POLLIN };

	for (size_t i = js->scan; i < js->buf.len; i++) {
		char c = js->buf.data[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			return 0;
	}
	return poll(&pfd, 1, 0) == 0;
}

/* Parse and validate one input value. The taskId is kept for the result
 * line only when the input gave one. */
static void parse_item(item *it, const ts_jsonvalue *v)
{
	cJSON *obj = NULL;
	const cJSON *idv;
	const char *end = NULL;
	int has_id;
	ts_task task;
	ts_detail d;
	ts_err err;

	if ((err = ts_json_check_bytes(v->data, v->len, &d))) {
		item_invalid(it, v->line, d.field, d.msg);
		return;
	}
	if (!(obj = cJSON_ParseWithLengthOpts(v->data, v->len, &end, 0))) {
		snprintf(d.msg, sizeof d.msg, "invalid JSON near byte %zu",
			 end ? (size_t)(end - v->data) : (size_t)0);
		item_invalid(it, v->line, NULL, d.msg);
		return;
	}
	idv = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "taskId")
				  : NULL;
	has_id = cJSON_IsString(idv) && ts_valid_task_id(idv->valuestring);
	err = ts_task_from_json(obj, NULL, &task, &d);
	if (err) {
		item_invalid(it, v->line, d.field, d.msg);
		if (has_id)
			snprintf(it->task_id, sizeof it->task_id, "%s",
				 idv->valuestring);
		cJSON_Delete(obj);
		return;
	}
	cJSON_Delete(obj);
	memset(it, 0, sizeof *it);
	if (strcmp(task.task_type, "email") == 0 ||
	    strcmp(task.task_type, "sms") == 0) {
		it->channel = task.task_type[0] == 'e' ? TS_CHANNEL_EMAIL
						       : TS_CHANNEL_SMS;
		it->payload = task.payload;
		task.payload = NULL;
	} else {
		item_invalid(it, v->line, "taskType",
			     "ts-send delivers email and sms only");
	}
	it->line = v->line;
	if (has_id)
		snprintf(it->task_id, sizeof it->task_id, "%s", task.task_id);
	ts_task_free(&task);
}

static int run_json(sender *s)
{
	item *items = calloc(SEND_BATCH, sizeof *items);
	ts_jsonstream js;
	size_t n = 0;
	long bad_line = 0;    /* line of the last bad value: one report each */
	int rc;

	if (!items)
		return ts_err_exit(TS_ERR_NOMEM);
	ts_jsonstream_init(&js, STDIN_FILENO, MAX_JSON);
	js.stop = &ts_stop; /* SIGTERM ends the input even on an idle pipe */
	while (!s->fatal && !ts_stop) {
		ts_jsonvalue v;
		ts_detail d;

		if (n > 0 && (n == SEND_BATCH || input_idle(&js))) {
			sender_flush(s, items, n);
			n = 0;
			continue;
		}
		rc = ts_jsonstream_next(&js, &v, &d);
		if (rc == 1)
			break;
		if (rc == TS_ERR_IO) {
			ts_log_error("stdin: %s", d.msg);
			s->worst = ts_err_worst(s->worst, TS_ERR_IO);
			break;
		}
		if (rc == TS_ERR_DATA) {
			if (v.line != bad_line)
				item_invalid(&items[n++], v.line, d.field, d.msg);
			bad_line = v.line;
			continue;
		}
		parse_item(&items[n], &v);
		/* "not json" is two bare words on one line: one report */
		if (items[n].payload || items[n].task_id[0] ||
		    v.line != bad_line) {
			if (!items[n].payload)
				bad_line = v.line;
			n++;
		} else {
			cJSON_Delete(items[n].payload);
		}
	}
	if (n > 0)
		sender_flush(s, items, n);
	for (size_t i = 0; i < SEND_BATCH; i++)
		cJSON_Delete(items[i].payload);
	free(items);
	ts_jsonstream_free(&js);
	return ts_err_exit(s->fatal ? ts_err_worst(s->fatal_err, s->worst)
				    : s->worst);
}

/* ---- main --------------------------------------------------------------- */

static int run(sender *s)
{
	const ts_config *cfg = s->cfg;
	const char *mode = cfg->argc > 0 ? cfg->argv[0] : NULL;

	if (cfg->json) {
		if (mode || cfg->to.n || cfg->mobile || cfg->subject ||
		    cfg->body || cfg->body_file || cfg->html_file ||
		    cfg->vars.n || cfg->message || cfg->cc.n || cfg->bcc.n ||
		    cfg->reply_to) {
			ts_log_error("--json takes every message from stdin: "
				     "no other message options");
			return ts_err_exit(TS_ERR_USAGE);
		}
		return run_json(s);
	}
	if (!mode || cfg->argc > 1 ||
	    (strcmp(mode, "email") != 0 && strcmp(mode, "sms") != 0)) {
		ts_log_error("say email, sms or --json");
		ts_log_error("usage: %s", SYNOPSIS);
		return ts_err_exit(TS_ERR_USAGE);
	}
	return run_one(s, mode[0] == 'e' ? TS_CHANNEL_EMAIL : TS_CHANNEL_SMS);
}

int main(int argc, char **argv)
{
	ts_config cfg;
	sender s;
	int rc;

	memset(&s, 0, sizeof s);
	s.cfg = &cfg;
	rc = ts_tool_start(&cfg, TS_TOOL_SEND, "ts-send", SYNOPSIS, argc, argv,
			   stdout);
	scrub_argv(argc, argv);
	if (rc < 0) {
		ts_tool_signals();
		rc = run(&s);
	}
	sender_close(&s);
	ts_config_free(&cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ts_log_error("stdout: %s", strerror(errno));
		if (rc == 0)
			rc = ts_err_exit(TS_ERR_IO);
	}
	return rc;
}
