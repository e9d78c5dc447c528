/* kafka.c - producer and consumer handles from the shared configuration. */
#include "kafka.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Property names whose values must never be echoed. */
static int looks_secret(const char *name)
{
	return strstr(name, "password") || strstr(name, "secret") ||
	       strstr(name, ".key") || strstr(name, "token") ||
	       strstr(name, "jaas") ||
	       strstr(name, "oauthbearer.config");
}

static ts_err set_prop(rd_kafka_conf_t *conf, const char *name,
		       const char *value, const char *origin, ts_detail *d)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) ==
	    RD_KAFKA_CONF_OK)
		return TS_OK;
	if (looks_secret(name))
		return ts_fail(d, TS_ERR_CONFIG, NULL,
			       "%s %s: rejected by librdkafka", origin, name);
	return ts_fail(d, TS_ERR_CONFIG, NULL, "%s %s: %s", origin, name,
		       errstr);
}

/* librdkafka's own messages, as our stderr lines (-q and -v apply). Its
 * "errors" are mostly a broker connection failing, which it retries and the
 * tools report in their own words when it matters, so they are warnings;
 * its warnings (a retried coordinator lookup) are info. Called from
 * librdkafka's threads; ts_log writes each line with one write(2). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	(void)rk;
	ts_log(level <= 3 ? TS_LOG_WARN : level <= 6 ? TS_LOG_INFO : TS_LOG_DEBUG,
	       "kafka: %s: %s", fac, buf);
}

ts_err ts_kafka_conf(const ts_config *cfg, const char *const *defaults,
		     rd_kafka_conf_t **out, ts_detail *d)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ts_err err = TS_OK;

	if (!conf)
		return TS_ERR_NOMEM;
	rd_kafka_conf_set_log_cb(conf, log_cb);
	if ((err = set_prop(conf, "bootstrap.servers", cfg->brokers,
			    "--brokers", d)))
		goto fail;
	for (const char *const *p = defaults; p && p[0]; p += 2)
		if ((err = set_prop(conf, p[0], p[1], "default", d)))
			goto fail;
	for (int i = 0; i < cfg->rdkafka.n; i++) {
		char *kv = strdup(cfg->rdkafka.v[i]);
		char *eq;
		if (!kv) {
			err = TS_ERR_NOMEM;
			goto fail;
		}
		eq = strchr(kv, '=');
		*eq = '\0'; /* the loader made sure there is one */
		err = set_prop(conf, kv, eq + 1, "-X", d);
		free(kv);
		if (err)
			goto fail;
	}
	*out = conf;
	return TS_OK;
fail:
	rd_kafka_conf_destroy(conf);
	return err;
}

/* librdkafka's own threads (its main thread, one per broker) run as
 * SCHED_BATCH: woken by a socket or a queued message, such a thread no
 * longer preempts the thread running on that CPU (ts-httpd's event thread,
 * ts-submit's reader) but takes a free CPU or waits for the end of the
 * running thread's slice. Their work is batched anyway, and batches grow
 * a little. Measured on 2 CPUs, ts-httpd under wrk -c32: its event thread
 * was preempted 0.22 times per request, now 0.07; CPU per request of
 * ts-httpd 21.3-23.7 us -> 18.3-18.8 us and of the broker behind it
 * 5.7-6.4 -> 4.2-4.6 us; a lone client's latency unchanged (p50 0.13-0.15
 * ms). ts-submit and ts-worker measured the same as before. Any user may
 * switch a thread to SCHED_BATCH; should it fail, the thread keeps the
 * default policy. */
static rd_kafka_resp_err_t on_thread_start(rd_kafka_t *rk,
					   rd_kafka_thread_type_t type,
					   const char *name, void *opaque)
{
	struct sched_param sp = { 0 };

	(void)rk;
	(void)type;
	(void)name;
	(void)opaque;
	if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp) != 0) {
		/* not fatal: the default policy */
	}
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf,
				  void *opaque, char *errstr, size_t size)
{
	(void)conf;
	(void)errstr;
	(void)size;
	return rd_kafka_interceptor_add_on_thread_start(rk, "taskstream",
							on_thread_start, opaque);
}

/* When rd_kafka_new fails after it ran the on_new interceptors (a bad
 * TLS setting, say), librdkafka 2.0.2 frees the interceptors of its
 * shallow copy of the configuration, which are the application's: a
 * rd_kafka_conf_destroy then frees them again and crashes (librdkafka
 * issue 4142, fixed upstream in 2025). Such a configuration is kept here,
 * reachable, never destroyed: it happens once, on the way to exit 78. */
static void keep_failed_conf(rd_kafka_conf_t *conf)
{
	static rd_kafka_conf_t **kept;
	static size_t nkept;
	rd_kafka_conf_t **grown = realloc(kept, (nkept + 1) * sizeof *kept);

	if (grown) {
		kept = grown;
		kept[nkept++] = conf;
	}
}

static ts_err make_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf,
			  rd_kafka_t **out, ts_detail *d)
{
	char errstr[512];
	rd_kafka_t *rk;

	rd_kafka_conf_interceptor_add_on_new(conf, "taskstream", on_new, NULL);
	rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
	if (!rk) {
		keep_failed_conf(conf);
		return ts_fail(d, TS_ERR_CONFIG, NULL, "kafka: %s", errstr);
	}
	*out = rk;
	return TS_OK;
}

/* defaults then extra, as one NULL-terminated pair list in out[64]. */
static void merge(const char *const *defaults, const char *const *extra,
		  const char **out)
{
	size_t n = 0;

	for (const char *const *p = defaults; p && p[0] && n < 62; p += 2) {
		out[n++] = p[0];
		out[n++] = p[1];
	}
	for (const char *const *p = extra; p && p[0] && n < 62; p += 2) {
		out[n++] = p[0];
		out[n++] = p[1];
	}
	out[n] = NULL;
}

ts_err ts_kafka_producer(const ts_config *cfg, const char *const *extra,
			 void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
			 void *opaque, rd_kafka_t **out, ts_detail *d)
{
	static const char *const defaults[] = {
		"acks", "all",
		"enable.idempotence", "true",
		"linger.ms", "5",
		/* The Java client's partitioner: a key lands on the same
		 * partition whether a Spring producer or TaskStream wrote it,
		 * so per-key order holds across both. */
		"partitioner", "murmur2_random",
		NULL,
	};
	const char *all[64];
	rd_kafka_conf_t *conf;
	ts_err err;

	merge(defaults, extra, all);
	if ((err = ts_kafka_conf(cfg, all, &conf, d)))
		return err;
	if (dr_msg_cb)
		rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rd_kafka_conf_set_opaque(conf, opaque);
	return make_handle(RD_KAFKA_PRODUCER, conf, out, d);
}

ts_err ts_kafka_consumer(const ts_config *cfg, const char *group,
			 const char *const *extra, void *opaque,
			 rd_kafka_t **out, ts_detail *d)
{
	const char *const defaults[] = {
		"group.id", group,
		"auto.offset.reset", "earliest",
		"enable.auto.commit", "false",
		NULL,
	};
	const char *all[64];
	rd_kafka_conf_t *conf;
	ts_err err;

	merge(defaults, extra, all);
	if ((err = ts_kafka_conf(cfg, all, &conf, d)))
		return err;
	rd_kafka_conf_set_opaque(conf, opaque);
	return make_handle(RD_KAFKA_CONSUMER, conf, out, d);
}

ts_err ts_kafka_classify(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return TS_OK;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__FATAL:
		return TS_ERR_PERMANENT;
	default:
		return TS_ERR_TRANSIENT;
	}
}

void ts_kafka_list_properties(FILE *out)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_properties_show(out);
	rd_kafka_conf_destroy(conf);
}

/* ---- murmur2, as Kafka's clients place keyed records ---------------------- */

#define MM2_M 0x5bd1e995u
#define MM2_SEED 0x9747b28cu

static uint32_t mm2_block(uint32_t h, const unsigned char *p)
{
	uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

	k *= MM2_M;
	k ^= k >> 24;
	k *= MM2_M;
	return (h * MM2_M) ^ k;
}

static uint32_t mm2_final(uint32_t h)
{
	h ^= h >> 13;
	h *= MM2_M;
	return h ^ (h >> 15);
}

/* The state after the whole 4-byte blocks of key's first n bytes. */
static uint32_t mm2_blocks(const unsigned char *p, size_t n, size_t len)
{
	uint32_t h = MM2_SEED ^ (uint32_t)len;

	for (size_t i = 0; i + 4 <= n; i += 4)
		h = mm2_block(h, p + i);
	return h;
}

static int32_t mm2_partition(uint32_t h, int32_t cnt)
{
	return (int32_t)((h & 0x7fffffffu) % (uint32_t)cnt);
}

int32_t ts_kafka_partition_of(const void *key, size_t len, int32_t cnt)
{
	const unsigned char *p = key;
	size_t n = len & ~(size_t)3;
	uint32_t h = mm2_blocks(p, n, len);

	switch (len & 3) {
	case 3:
		h ^= (uint32_t)p[n + 2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)p[n + 1] << 8;
		/* fall through */
	case 1:
		h ^= p[n];
		h *= MM2_M;
	}
	return mm2_partition(mm2_final(h), cnt);
}

struct ts_steer_slot {
	char id[36];
	int32_t part;
};

void ts_kafka_steer_free(ts_steer *st)
{
	free(st->kept);
	free(st->slots);
	memset(st, 0, sizeof *st);
}

/* The group of partition p: groups of consecutive partitions, their sizes
 * at most one apart (so that each is drawn about as often). */
static int32_t steer_group(const ts_steer *st, int32_t p)
{
	return (int32_t)((int64_t)p * st->groups / st->cnt);
}

/* Groups for cnt partitions, nothing kept. 0 when out of memory. */
static int steer_reset(ts_steer *st, int32_t cnt)
{
	int32_t groups = cnt < TS_STEER_GROUPS ? cnt : TS_STEER_GROUPS;

	ts_kafka_steer_free(st);
	st->kept = calloc((size_t)groups, sizeof *st->kept);
	/* not touched until an id is kept: only what is used is resident */
	st->slots = malloc((size_t)groups * TS_STEER_KEEP * sizeof *st->slots);
	if (!st->kept || !st->slots) {
		ts_kafka_steer_free(st);
		return 0;
	}
	st->cnt = cnt;
	st->groups = groups;
	st->group = groups - 1; /* the first run goes to group 0 */
	st->left = 0;
	return 1;
}

ts_err ts_kafka_new_id(ts_steer *st, char *id, size_t size, int32_t cnt,
		       int32_t *part)
{
	*part = -1;
	if (size < 37)
		return TS_ERR_INTERNAL;
	if (cnt < 2 || (cnt != st->cnt && !steer_reset(st, cnt)))
		return ts_uuid4(id, size); /* not steered */
	if (--st->left < 0) {
		st->group = (st->group + 1) % st->groups;
		st->left = TS_STEER_RUN - 1;
	}
	for (;;) {
		int32_t g = st->group, p;
		ts_steer_slot *slot;
		ts_err err;

		if (st->kept[g]) {
			slot = &st->slots[(size_t)g * TS_STEER_KEEP + --st->kept[g]];
			memcpy(id, slot->id, 36);
			id[36] = '\0';
			*part = slot->part;
			return TS_OK;
		}
		if ((err = ts_uuid4(id, size)))
			return err;
		p = ts_kafka_partition_of(id, 36, cnt);
		if (steer_group(st, p) == g) {
			*part = p;
			return TS_OK;
		}
		g = steer_group(st, p);
		if (st->kept[g] < TS_STEER_KEEP) { /* else drawn in vain */
			slot = &st->slots[(size_t)g * TS_STEER_KEEP + st->kept[g]++];
			memcpy(slot->id, id, 36);
			slot->part = p;
		}
	}
}

int ts_kafka_keys_by_murmur2(rd_kafka_t *rk)
{
	rd_kafka_topic_conf_t *tc = rd_kafka_default_topic_conf_dup(rk);
	char part[64];
	size_t len = sizeof part;
	int yes = 0;

	if (!tc)
		return 0;
	if (rd_kafka_topic_conf_get(tc, "partitioner", part, &len) ==
	    RD_KAFKA_CONF_OK)
		yes = strcmp(part, "murmur2_random") == 0 ||
		      strcmp(part, "murmur2") == 0;
	rd_kafka_topic_conf_destroy(tc);
	return yes;
}
