/* notify.c - the seed's notification-service API: POST /api/email/send
 * {to,subject,body} and POST /api/sms/send {name,mobile}, delivered now
 * through lib/'s transports.
 *
 * A send blocks (SMTP dialogue, HTTP call), so it runs in a small pool of
 * threads, each with its own transports (a transport is used by one thread
 * at a time), never on the event thread. The request waits suspended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"

#define QUEUE_CAP 1024

struct worker_arg {
	httpd *h;
	int index;
};

static const char *channel_name(ts_channel c)
{
	return c == TS_CHANNEL_EMAIL ? "email" : "sms";
}

static const char *result_name(ts_err err)
{
	switch (err) {
	case TS_OK:
		return "sent";
	case TS_ERR_DATA:
		return "invalid";
	case TS_ERR_PERMANENT:
		return "permanent";
	case TS_ERR_TRANSIENT:
		return "transient";
	default:
		return "error";
	}
}

static void deliver(httpd *h, int index, request *r)
{
	notify_pool *p = &h->pool;
	ts_channel channel = r->plan.channel;
	ts_transport *t = channel == TS_CHANNEL_EMAIL ? p->email[index] :
			  p->sms[index];
	struct MHD_Connection *resume;
	ts_send_result res;

	memset(&res, 0, sizeof res);
	res.retry_after_ms = -1;
	ts_transport_send(t, r->plan.payload, &res);
	if (res.err != TS_OK)
		ts_log_info("%s via %s: %s: %s", channel_name(channel),
			    ts_transport_describe(t), result_name(res.err),
			    res.msg);
	ts_series_inc(ts_metric_with(h->m_notify, channel_name(channel),
				     result_name(res.err)));
	pthread_mutex_lock(&h->lock);
	r->sent = res;
	resume = httpd_request_finish(r);
	httpd_request_unref(r);
	pthread_mutex_unlock(&h->lock);
	if (resume)
		httpd_resume_from(h, resume);
}

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	httpd *h = wa->h;
	notify_pool *p = &h->pool;
	int index = wa->index;
	request *r;

	free(wa);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->qlen && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->qlen) { /* stopping, and nothing left */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		r = p->queue[p->qhead];
		p->qhead = (p->qhead + 1) % p->qcap;
		p->qlen--;
		pthread_mutex_unlock(&p->lock);
		deliver(h, index, r);
	}
}

static ts_err open_transports(httpd *h, ts_detail *d)
{
	notify_pool *p = &h->pool;
	const ts_config *cfg = h->cfg;
	ts_err err;

	for (int i = 0; i < p->nthreads; i++) {
		if (cfg->email_url &&
		    (err = ts_transport_open(cfg->email_url, TS_CHANNEL_EMAIL,
					     cfg, &p->email[i], d)))
			return ts_fail(d, err, NULL, "--email-url: %s", d->msg);
		if (cfg->sms_url &&
		    (err = ts_transport_open(cfg->sms_url, TS_CHANNEL_SMS, cfg,
					     &p->sms[i], d)))
			return ts_fail(d, err, NULL, "--sms-url: %s", d->msg);
	}
	return TS_OK;
}

ts_err notify_start(httpd *h, int nthreads, ts_detail *d)
{
	notify_pool *p = &h->pool;
	ts_err err;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (!h->cfg->email_url && !h->cfg->sms_url)
		return TS_OK; /* the endpoints answer 501 */
	p->nthreads = nthreads;
	p->qcap = QUEUE_CAP;
	p->threads = calloc((size_t)nthreads, sizeof *p->threads);
	p->email = calloc((size_t)nthreads, sizeof *p->email);
	p->sms = calloc((size_t)nthreads, sizeof *p->sms);
	p->queue = calloc(p->qcap, sizeof *p->queue);
	if (!p->threads || !p->email || !p->sms || !p->queue)
		return TS_ERR_NOMEM;
	if ((err = open_transports(h, d)))
		return err;
	for (int i = 0; i < nthreads; i++) {
		struct worker_arg *wa = malloc(sizeof *wa);
		if (!wa)
			return TS_ERR_NOMEM;
		wa->h = h;
		wa->index = i;
		if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
			free(wa);
			return ts_fail(d, TS_ERR_INTERNAL, NULL,
				       "cannot start the delivery threads");
		}
		p->started++;
	}
	return TS_OK;
}

void notify_stop(httpd *h)
{
	notify_pool *p = &h->pool;

	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	p->started = 0;
	for (int i = 0; i < p->nthreads; i++) {
		if (p->email)
			ts_transport_close(p->email[i]);
		if (p->sms)
			ts_transport_close(p->sms[i]);
	}
	free(p->email);
	free(p->sms);
	free(p->threads);
	free(p->queue);
	p->email = p->sms = NULL;
	p->threads = NULL;
	p->queue = NULL;
	p->nthreads = 0;
}

/* Queue r for a pool thread; the connection is already suspended. */
static int enqueue(httpd *h, request *r)
{
	notify_pool *p = &h->pool;
	int ok = 0;

	pthread_mutex_lock(&p->lock);
	if (p->qlen < p->qcap && !p->stop) {
		p->queue[(p->qhead + p->qlen) % p->qcap] = r;
		p->qlen++;
		pthread_cond_signal(&p->cond);
		ok = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return ok;
}

enum MHD_Result notify_deliver(request *r)
{
	httpd *h = r->h;
	struct MHD_Connection *resume;

	MHD_suspend_connection(r->conn);
	pthread_mutex_lock(&h->lock);
	r->phase = PHASE_WAITING;
	r->suspended = 1;
	r->refs++;
	pthread_mutex_unlock(&h->lock);
	if (enqueue(h, r))
		return MHD_YES;
	/* Full (or stopping): answer 503 at once. */
	pthread_mutex_lock(&h->lock);
	memset(&r->sent, 0, sizeof r->sent);
	r->sent.err = TS_ERR_TRANSIENT;
	r->sent.retry_after_ms = 1000;
	snprintf(r->sent.msg, sizeof r->sent.msg,
		 "too many deliveries waiting; try again later");
	resume = httpd_request_finish(r);
	httpd_request_unref(r);
	pthread_mutex_unlock(&h->lock);
	if (resume)
		MHD_resume_connection(resume);
	return MHD_YES;
}

enum MHD_Result notify_answer(request *r)
{
	httpd_reply reply = { 0 };

	return httpd_send_decided(r, httpd_reply_sent(&r->sent, &reply) ?
				  HTTPD_FAIL : HTTPD_ANSWER, &reply);
}
