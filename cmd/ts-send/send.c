/* send.c - ts-send's delivery loop (see send.h). */
#include "send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "log.h"

void item_invalid(item *it, long line, const char *field, const char *msg)
{
	memset(it, 0, sizeof *it);
	it->line = line;
	it->res.err = TS_ERR_DATA;
	it->res.retry_after_ms = -1;
	snprintf(it->res.msg, sizeof it->res.msg, "%s%s%s", field ? field : "",
		 field && *field ? ": " : "", msg);
}

static ts_transport *transport_for(sender *s, ts_channel ch)
{
	ts_transport **t = ch == TS_CHANNEL_EMAIL ? &s->email : &s->sms;
	const char *url = ch == TS_CHANNEL_EMAIL ? s->cfg->email_url
						 : s->cfg->sms_url;
	ts_detail d;
	ts_err err;

	if (*t || s->fatal)
		return *t;
	if (!url) {
		ts_log_error("no %s transport: set %s or %s",
			     ch == TS_CHANNEL_EMAIL ? "email" : "SMS",
			     ch == TS_CHANNEL_EMAIL ? "--email-url" : "--sms-url",
			     ch == TS_CHANNEL_EMAIL ? "TS_EMAIL_URL" : "TS_SMS_URL");
		s->fatal = 1;
		s->fatal_err = TS_ERR_CONFIG;
		return NULL;
	}
	err = ts_transport_open(url, ch, s->cfg, t, &d);
	if (err) {
		ts_log_error("%s: %s", ch == TS_CHANNEL_EMAIL ? "--email-url"
							     : "--sms-url",
			     d.msg);
		s->fatal = 1;
		s->fatal_err = err;
		return NULL;
	}
	ts_log_info("%s via %s", ch == TS_CHANNEL_EMAIL ? "email" : "SMS",
		    ts_transport_describe(*t));
	return *t;
}

/* Send every item of one channel in one call (one SMTP session). */
static void send_channel(sender *s, item *items, size_t n, ts_channel ch)
{
	const cJSON **pl = calloc(n, sizeof *pl);
	ts_send_result *res = calloc(n, sizeof *res);
	size_t *idx = calloc(n, sizeof *idx), k = 0;
	ts_transport *t;

	if (!pl || !res || !idx) {
		ts_log_error("out of memory");
		s->fatal = 1;
		s->fatal_err = TS_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (items[i].payload && items[i].channel == ch) {
			pl[k] = items[i].payload;
			idx[k++] = i;
		}
	if (k == 0 || !(t = transport_for(s, ch)))
		goto out;
	ts_transport_send_many(t, pl, k, res);
	for (size_t j = 0; j < k; j++)
		items[idx[j]].res = res[j];
out:
	free(pl);
	free(res);
	free(idx);
}

/* The recipients, for the result line and the error message. */
static cJSON *recipients(const item *it)
{
	const char *key = it->channel == TS_CHANNEL_EMAIL ? "to" : "mobile";
	const cJSON *v = it->payload ? cJSON_GetObjectItemCaseSensitive(it->payload, key)
				     : NULL;

	return v ? cJSON_Duplicate(v, 1) : NULL;
}

static void print_result(sender *s, const item *it)
{
	cJSON *o = cJSON_CreateObject(), *to;
	const ts_send_result *r = &it->res;
	char *line;

	if (!o)
		goto nomem;
	cJSON_AddStringToObject(o, "status", r->err ? "failed" : "sent");
	if (it->payload || r->err != TS_ERR_DATA || it->line == 0)
		cJSON_AddStringToObject(o, "channel",
					it->channel == TS_CHANNEL_EMAIL ? "email"
									: "sms");
	if ((to = recipients(it)))
		cJSON_AddItemToObject(o, it->channel == TS_CHANNEL_EMAIL ? "to"
									 : "mobile",
				      to);
	if (r->id[0])
		cJSON_AddStringToObject(o, "id", r->id);
	if (r->err) {
		cJSON_AddStringToObject(o, "error", r->msg);
		cJSON_AddStringToObject(o, "class", ts_class_name(r->err));
		if (r->retry_after_ms >= 0)
			cJSON_AddNumberToObject(o, "retryAfterMs",
						(double)r->retry_after_ms);
	} else {
		cJSON_AddStringToObject(o, "detail", r->msg);
	}
	if (r->code)
		cJSON_AddNumberToObject(o, "code", r->code);
	if (it->line)
		cJSON_AddNumberToObject(o, "line", (double)it->line);
	if (it->task_id[0])
		cJSON_AddStringToObject(o, "taskId", it->task_id);
	if (!(line = cJSON_PrintUnformatted(o)))
		goto nomem;
	puts(line);
	free(line);
	cJSON_Delete(o);
	return;
nomem:
	cJSON_Delete(o);
	ts_log_error("out of memory");
	s->worst = ts_err_worst(s->worst, TS_ERR_NOMEM);
}

static void log_failure(const item *it)
{
	const char *what = it->channel == TS_CHANNEL_EMAIL ? "email" : "SMS";

	if (it->line)
		ts_log_error("stdin:%ld: %s: %s", it->line,
			     it->res.err == TS_ERR_DATA ? "invalid" : what,
			     it->res.msg);
	else
		ts_log_error("%s not sent (%s): %s", what,
			     ts_class_name(it->res.err), it->res.msg);
}

void sender_flush(sender *s, item *items, size_t n)
{
	send_channel(s, items, n, TS_CHANNEL_EMAIL);
	send_channel(s, items, n, TS_CHANNEL_SMS);
	for (size_t i = 0; i < n; i++) {
		item *it = &items[i];
		if (s->fatal && it->payload && !it->res.err && !it->res.msg[0]) {
			/* never tried: no transport */
			cJSON_Delete(it->payload);
			it->payload = NULL;
			continue;
		}
		if (it->res.err)
			log_failure(it);
		s->worst = ts_err_worst(s->worst, it->res.err);
		print_result(s, it);
		cJSON_Delete(it->payload);
		it->payload = NULL;
	}
	fflush(stdout);
}

void sender_close(sender *s)
{
	ts_transport_close(s->email);
	ts_transport_close(s->sms);
	s->email = s->sms = NULL;
}
