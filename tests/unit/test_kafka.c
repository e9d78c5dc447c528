/* test_kafka.c - librdkafka configuration from the shared config. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "util.h"

#include "testutil.h"

static ts_config C;
static ts_detail D;

static int setup(void **state)
{
	(void)state;
	memset(&C, 0, sizeof C);
	memset(&D, 0, sizeof D);
	C.brokers = strdup("127.0.0.1:1");
	return C.brokers ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(C.brokers);
	ts_strlist_free(&C.rdkafka);
	memset(&C, 0, sizeof C);
	return 0;
}

static void X(const char *kv)
{
	assert_int_equal(ts_strlist_add(&C.rdkafka, kv), TS_OK);
}

/* A property's value as librdkafka reports it (static buffer). */
static const char *get(const rd_kafka_conf_t *conf, const char *name)
{
	static char buf[4][512];
	static int next;
	char *b = buf[next++ % 4];
	size_t size = 512;

	if (rd_kafka_conf_get(conf, name, b, &size) != RD_KAFKA_CONF_OK)
		fail_msg("property %s not readable", name);
	return b;
}

/* librdkafka's own spelling of a value, for comparisons. */
static const char *canon(const char *name, const char *value)
{
	static char buf[2][512];
	static int next;
	char *b = buf[next++ % 2];
	char errstr[256];
	size_t size = 512;
	rd_kafka_conf_t *c = rd_kafka_conf_new();

	assert_int_equal(rd_kafka_conf_set(c, name, value, errstr, sizeof errstr),
			 RD_KAFKA_CONF_OK);
	assert_int_equal(rd_kafka_conf_get(c, name, b, &size), RD_KAFKA_CONF_OK);
	rd_kafka_conf_destroy(c);
	return b;
}

static void test_conf_order(void **state)
{
	static const char *const defaults[] = {
		"linger.ms", "5",
		"client.id", "from-default",
		"message.timeout.ms", "3000",
		NULL,
	};
	rd_kafka_conf_t *conf = NULL;

	(void)state;
	X("linger.ms=50");
	X("client.id=first");
	X("client.id=second");     /* later -X wins */
	X("queue.buffering.max.messages=1234");
	assert_int_equal(ts_kafka_conf(&C, defaults, &conf, &D), TS_OK);
	assert_non_null(conf);
	assert_string_equal(get(conf, "bootstrap.servers"), "127.0.0.1:1");
	assert_string_equal(get(conf, "linger.ms"), canon("linger.ms", "50"));
	assert_string_equal(get(conf, "client.id"), "second");
	assert_string_equal(get(conf, "message.timeout.ms"), "3000");
	assert_string_equal(get(conf, "queue.buffering.max.messages"), "1234");
	rd_kafka_conf_destroy(conf);

	/* no defaults, no -X: just the brokers */
	ts_strlist_free(&C.rdkafka);
	assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_OK);
	assert_string_equal(get(conf, "bootstrap.servers"), "127.0.0.1:1");
	rd_kafka_conf_destroy(conf);

	/* -X may even replace the brokers: it comes last */
	X("bootstrap.servers=k9:9092");
	assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_OK);
	assert_string_equal(get(conf, "bootstrap.servers"), "k9:9092");
	rd_kafka_conf_destroy(conf);
}

static void test_conf_from_loader(void **state)
{
	/* the whole path: -F file and -X from the command line, in order */
	char path[] = "/tmp/ts-kafka-XXXXXX";
	int fd = mkstemp(path);
	char *argv[] = { "ts-submit", "-b", "k1:1,k2:2", "-X", "client.id=x1", "-F",
			 path, "-X", "linger.ms=77", NULL };
	ts_config cfg;
	rd_kafka_conf_t *conf;

	(void)state;
	assert_true(fd >= 0);
	const char *text = "client.id=from-file\nlinger.ms=9\nsocket.timeout.ms=7000\n";
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(ts_config_load(&cfg, TS_TOOL_SUBMIT, "ts-submit", 9, argv, &D), TS_OK);
	assert_int_equal(ts_kafka_conf(&cfg, NULL, &conf, &D), TS_OK);
	assert_string_equal(get(conf, "bootstrap.servers"), "k1:1,k2:2");
	assert_string_equal(get(conf, "client.id"), "from-file");
	assert_string_equal(get(conf, "linger.ms"), canon("linger.ms", "77"));
	assert_string_equal(get(conf, "socket.timeout.ms"), "7000");
	rd_kafka_conf_destroy(conf);
	ts_config_free(&cfg);
	unlink(path);
}

static void test_bad_property(void **state)
{
	static const char *const bad_default[] = { "linger.ms", "soon", NULL };
	rd_kafka_conf_t *conf = (rd_kafka_conf_t *)0x1;

	(void)state;
	X("client.id=ok");
	X("no.such.property=1");
	assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_ERR_CONFIG);
	assert_contains(D.msg, "no.such.property");
	assert_contains(D.msg, "-X");
	assert_ptr_equal(conf, (rd_kafka_conf_t *)0x1); /* untouched on error */
	ts_strlist_free(&C.rdkafka);

	X("acks=bogus");
	assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_ERR_CONFIG);
	assert_contains(D.msg, "acks");
	ts_strlist_free(&C.rdkafka);

	X("linger.ms=-5");
	assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_ERR_CONFIG);
	assert_contains(D.msg, "linger.ms");
	ts_strlist_free(&C.rdkafka);

	assert_int_equal(ts_kafka_conf(&C, bad_default, &conf, &D), TS_ERR_CONFIG);
	assert_contains(D.msg, "linger.ms");
}

static void test_secret_never_echoed(void **state)
{
	static const char *const secret_props[] = {
		/* rejected by this librdkafka build (no OIDC support) */
		"sasl.oauthbearer.client.secret",
		/* unknown names that look secret: typos of real ones */
		"sasl.passwrd",
		"ssl.key.passwords",
		"sasl.jaas.config",
		"sasl.oauthbearer.token.bogus",
	};
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk = NULL;
	char kv[256];

	(void)state;
	for (size_t i = 0; i < sizeof secret_props / sizeof secret_props[0]; i++) {
		ts_strlist_free(&C.rdkafka);
		snprintf(kv, sizeof kv, "%s=hunter2", secret_props[i]);
		X(kv);
		assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_ERR_CONFIG);
		assert_contains(D.msg, secret_props[i]);
		if (strstr(D.msg, "hunter2") || strstr(D.field, "hunter2"))
			fail_msg("secret value in the detail: %s", D.msg);
	}

	/* a key librdkafka takes, then rejects when the handle is built */
	ts_strlist_free(&C.rdkafka);
	X("security.protocol=ssl");
	X("ssl.key.pem=-----BEGIN PRIVATE KEY-----hunter2-----END PRIVATE KEY-----");
	X("ssl.key.password=hunter2");
	assert_int_equal(ts_kafka_producer(&C, NULL, NULL, NULL, &rk, &D), TS_ERR_CONFIG);
	assert_null(rk);
	assert_true(strlen(D.msg) > 0);
	if (strstr(D.msg, "hunter2"))
		fail_msg("secret value in the detail: %s", D.msg);

	/* a secret set fine is not an error at all */
	ts_strlist_free(&C.rdkafka);
	X("sasl.password=hunter2");
	assert_int_equal(ts_kafka_conf(&C, NULL, &conf, &D), TS_OK);
	rd_kafka_conf_destroy(conf);
}

static void test_producer_defaults(void **state)
{
	rd_kafka_t *rk = NULL;
	const rd_kafka_conf_t *conf;
	int opaque_target;

	(void)state;
	X("log_level=0");
	assert_int_equal(ts_kafka_producer(&C, NULL, NULL, &opaque_target, &rk, &D), TS_OK);
	assert_non_null(rk);
	conf = rd_kafka_conf(rk);
	assert_string_equal(get(conf, "acks"), canon("acks", "all"));
	assert_string_equal(get(conf, "enable.idempotence"), "true");
	assert_string_equal(get(conf, "linger.ms"), canon("linger.ms", "5"));
	assert_string_equal(get(conf, "bootstrap.servers"), "127.0.0.1:1");
	assert_ptr_equal(rd_kafka_opaque(rk), &opaque_target);
	assert_string_equal(rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? "producer" : "other", "producer");
	rd_kafka_destroy(rk);
}

static void test_producer_overrides(void **state)
{
	static const char *const extra[] = { "message.timeout.ms", "3000",
					     "linger.ms", "20", NULL };
	rd_kafka_t *rk = NULL;
	const rd_kafka_conf_t *conf;

	(void)state;
	X("log_level=0");
	X("enable.idempotence=false");
	X("acks=1");
	X("linger.ms=0");
	assert_int_equal(ts_kafka_producer(&C, NULL, NULL, NULL, &rk, &D), TS_OK);
	conf = rd_kafka_conf(rk);
	assert_string_equal(get(conf, "acks"), canon("acks", "1"));
	assert_string_equal(get(conf, "enable.idempotence"), "false");
	assert_string_equal(get(conf, "linger.ms"), canon("linger.ms", "0"));
	rd_kafka_destroy(rk);

	/* a tool's extra pairs sit between the defaults and the user's */
	ts_strlist_free(&C.rdkafka);
	X("log_level=0");
	X("message.timeout.ms=4000");
	assert_int_equal(ts_kafka_producer(&C, extra, NULL, NULL, &rk, &D), TS_OK);
	conf = rd_kafka_conf(rk);
	assert_string_equal(get(conf, "message.timeout.ms"), "4000");
	assert_string_equal(get(conf, "linger.ms"), canon("linger.ms", "20"));
	assert_string_equal(get(conf, "acks"), canon("acks", "all"));
	rd_kafka_destroy(rk);

	/* what librdkafka refuses as a whole is a config error, not a crash */
	ts_strlist_free(&C.rdkafka);
	X("acks=1"); /* idempotence (the default) needs acks=all */
	rk = NULL;
	assert_int_equal(ts_kafka_producer(&C, NULL, NULL, NULL, &rk, &D), TS_ERR_CONFIG);
	assert_null(rk);
	assert_contains(D.msg, "acks");
}

static void test_consumer_defaults(void **state)
{
	rd_kafka_t *rk = NULL;
	const rd_kafka_conf_t *conf;

	(void)state;
	X("log_level=0");
	assert_int_equal(ts_kafka_consumer(&C, "grp-1", NULL, NULL, &rk, &D), TS_OK);
	conf = rd_kafka_conf(rk);
	assert_string_equal(get(conf, "group.id"), "grp-1");
	assert_string_equal(get(conf, "enable.auto.commit"), "false");
	assert_true(rd_kafka_type(rk) == RD_KAFKA_CONSUMER);
	/* the topic default lives in the default topic conf */
	rd_kafka_topic_conf_t *tc = rd_kafka_default_topic_conf_dup(rk);
	char buf[64];
	size_t size = sizeof buf;
	assert_non_null(tc);
	assert_int_equal(rd_kafka_topic_conf_get(tc, "auto.offset.reset", buf, &size), RD_KAFKA_CONF_OK);
	assert_true(strcmp(buf, "smallest") == 0 || strcmp(buf, "earliest") == 0);
	rd_kafka_topic_conf_destroy(tc);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);

	/* -X overrides, the group argument is used as given */
	X("auto.offset.reset=latest");
	X("enable.auto.commit=true");
	assert_int_equal(ts_kafka_consumer(&C, "grp-2", NULL, NULL, &rk, &D), TS_OK);
	conf = rd_kafka_conf(rk);
	assert_string_equal(get(conf, "group.id"), "grp-2");
	assert_string_equal(get(conf, "enable.auto.commit"), "true");
	tc = rd_kafka_default_topic_conf_dup(rk);
	size = sizeof buf;
	assert_int_equal(rd_kafka_topic_conf_get(tc, "auto.offset.reset", buf, &size), RD_KAFKA_CONF_OK);
	assert_true(strcmp(buf, "largest") == 0 || strcmp(buf, "latest") == 0);
	rd_kafka_topic_conf_destroy(tc);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_NO_ERROR), TS_OK);
	/* the broker or the network: try again */
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__TRANSPORT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__TIMED_OUT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT), TS_ERR_TRANSIENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__QUEUE_FULL), TS_ERR_TRANSIENT);
	/* the record or the rights: retrying will not help */
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), TS_ERR_PERMANENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_INVALID_RECORD), TS_ERR_PERMANENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED), TS_ERR_PERMANENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED), TS_ERR_PERMANENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED), TS_ERR_PERMANENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION), TS_ERR_PERMANENT);
	assert_int_equal(ts_kafka_classify(RD_KAFKA_RESP_ERR__FATAL), TS_ERR_PERMANENT);
}

static void test_list_properties(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	ts_kafka_list_properties(f);
	fclose(f);
	assert_contains(text, "bootstrap.servers");
	assert_contains(text, "enable.idempotence");
	assert_contains(text, "sasl.password");
	free(text);
}

/* ts_kafka_partition_of places keys as librdkafka's murmur2 partitioner
 * (the Java client's) does, for every length's tail. */
static void test_partition_of(void **state)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256], key[64];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	rd_kafka_topic_t *rkt;

	(void)state;
	assert_non_null(rk);
	rkt = rd_kafka_topic_new(rk, "t", NULL);
	assert_non_null(rkt);
	srand(7);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(i % 60);
		int32_t cnt = 1 + i % 37;
		for (size_t j = 0; j < len; j++)
			key[j] = (char)(rand() & 0xff);
		assert_int_equal(ts_kafka_partition_of(key, len, cnt),
				 rd_kafka_msg_partitioner_murmur2(rkt, key, len, cnt,
								  NULL, NULL));
	}
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* ts_kafka_new_id: runs of TS_STEER_RUN ids on one partition, the next run
 * on the next; beyond TS_STEER_GROUPS partitions, runs on TS_STEER_GROUPS
 * groups of partitions in a row, as even as can be; the partition given is
 * murmur2's; ids are random UUIDs, none twice, kept ones included. */
static void test_new_id(void **state)
{
	static const int32_t counts[] = { 2, 3, 4, 12, 32, 33, 127, 400 };
	enum { N = 12 * TS_STEER_RUN };
	char (*ids)[37] = malloc(sizeof *ids * N);

	(void)state;
	assert_non_null(ids);
	for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
		int32_t cnt = counts[c], part;
		int32_t groups = cnt < TS_STEER_GROUPS ? cnt : TS_STEER_GROUPS;
		ts_steer st = { 0 };

		for (int i = 0; i < N; i++) {
			char id[40];

			assert_int_equal(ts_kafka_new_id(&st, id, sizeof id, cnt, &part), TS_OK);
			assert_true(is_uuid4(id));
			assert_int_equal(part, ts_kafka_partition_of(id, 36, cnt));
			/* group g: partitions ceil(g * cnt / groups) on */
			assert_int_equal((int64_t)part * groups / cnt,
					 (i / TS_STEER_RUN) % groups);
			memcpy(ids[i], id, sizeof ids[i]);
		}
		qsort(ids, N, sizeof *ids, cmp_id);
		for (int i = 1; i < N; i++)
			assert_true(strcmp(ids[i - 1], ids[i]) != 0);
		ts_kafka_steer_free(&st);
		assert_null(st.slots);
	}
	free(ids);
}

/* A count that changes starts over on the new one (the kept ids were for
 * the old); cnt < 2 (not known, one partition) steers nothing. */
static void test_new_id_count_changes(void **state)
{
	ts_steer st = { 0 };
	char id[40];
	int32_t part;

	(void)state;
	for (int i = 0; i < TS_STEER_RUN + 10; i++)
		assert_int_equal(ts_kafka_new_id(&st, id, sizeof id, 4, &part), TS_OK);
	assert_int_equal(part, 1); /* into the second run */
	for (int i = 0; i < 3 * TS_STEER_RUN; i++) {
		assert_int_equal(ts_kafka_new_id(&st, id, sizeof id, 6, &part), TS_OK);
		assert_int_equal(part, ts_kafka_partition_of(id, 36, 6));
		assert_int_equal(part, i / TS_STEER_RUN);
	}
	for (int32_t cnt = -1; cnt < 2; cnt++) {
		assert_int_equal(ts_kafka_new_id(&st, id, sizeof id, cnt, &part), TS_OK);
		assert_true(is_uuid4(id));
		assert_int_equal(part, -1);
	}
	assert_int_equal(ts_kafka_new_id(&st, id, 36, 4, &part), TS_ERR_INTERNAL);
	ts_kafka_steer_free(&st);
}

/* Steering is for murmur2 placement only: the default, or murmur2 named;
 * any other partitioner turns it off. */
static void test_keys_by_murmur2(void **state)
{
	static const struct {
		const char *x;
		int yes;
	} cases[] = { { NULL, 1 },
		      { "partitioner=murmur2", 1 },
		      { "partitioner=consistent_random", 0 },
		      { "partitioner=random", 0 } };

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rd_kafka_t *rk = NULL;

		ts_strlist_free(&C.rdkafka);
		X("log_level=0");
		if (cases[i].x)
			X(cases[i].x);
		assert_int_equal(ts_kafka_producer(&C, NULL, NULL, NULL, &rk, &D), TS_OK);
		assert_int_equal(ts_kafka_keys_by_murmur2(rk), cases[i].yes);
		rd_kafka_destroy(rk);
	}
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T_(test_conf_order),
		T_(test_conf_from_loader),
		T_(test_bad_property),
		T_(test_secret_never_echoed),
		T_(test_producer_defaults),
		T_(test_producer_overrides),
		T_(test_consumer_defaults),
		T_(test_classify),
		T_(test_list_properties),
		T_(test_partition_of),
		T_(test_new_id),
		T_(test_new_id_count_changes),
		T_(test_keys_by_murmur2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
