/* kafka.h - librdkafka handles built from a ts_config.
 *
 * Producer defaults (DESIGN.md): acks=all, enable.idempotence=true,
 * linger.ms=5, and partitioner=murmur2_random (the Java client's, so keys map
 * to the same partitions as a Spring producer's). Consumer defaults: auto.offset.reset=earliest,
 * enable.auto.commit=false. The user's -F file and -X properties are applied
 * after the defaults, in command-line order, so they override them.
 */
#ifndef TS_KAFKA_H
#define TS_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"

/* Build a configuration: bootstrap.servers from cfg->brokers, then the
 * given defaults (NULL-terminated key, value pairs; may be NULL), then the
 * user's properties. The caller owns the result (rd_kafka_conf_destroy, or
 * hand it to rd_kafka_new).
 * Errors: TS_ERR_CONFIG naming the property (never its value when the name
 * looks secret), TS_ERR_NOMEM. */
ts_err ts_kafka_conf(const ts_config *cfg, const char *const *defaults,
		     rd_kafka_conf_t **out, ts_detail *d);

/* A producer with the DESIGN.md defaults plus extra (NULL-terminated
 * key, value pairs, applied before the user's; may be NULL). dr_msg_cb may
 * be NULL. opaque becomes the rd_kafka_t's opaque.
 * Errors: TS_ERR_CONFIG, TS_ERR_NOMEM, TS_ERR_INTERNAL. */
ts_err ts_kafka_producer(const ts_config *cfg, const char *const *extra,
			 void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
			 void *opaque, rd_kafka_t **out, ts_detail *d);

/* A consumer in group with the defaults above plus extra.
 * Errors: as ts_kafka_producer. */
ts_err ts_kafka_consumer(const ts_config *cfg, const char *group,
			 const char *const *extra, void *opaque,
			 rd_kafka_t **out, ts_detail *d);

/* Map a librdkafka error to transient or permanent (the failure classes of
 * DESIGN.md): timeouts, transport and broker-unavailable errors are
 * TS_ERR_TRANSIENT; size, authorisation and invalid-record errors
 * TS_ERR_PERMANENT. */
ts_err ts_kafka_classify(rd_kafka_resp_err_t err);

/* The partition of key among cnt (> 0) by the Java client's murmur2, as
 * librdkafka's murmur2 partitioners place a record with that key. */
int32_t ts_kafka_partition_of(const void *key, size_t len, int32_t cnt);

/* Rewrite the last 4 characters of key (len >= 4, a multiple of 4; those
 * four lower-case hex digits, as a random UUID ends) to the first value,
 * counting up from theirs, that places key on one of the span (>= 1)
 * partitions target, target + 1, ... (around the end to 0) of cnt.
 * Returns 1 when done, 0 when no 4-digit ending does (key unchanged). */
int ts_kafka_steer_key(char *key, size_t len, int32_t target, int32_t span,
		       int32_t cnt);

/* Generated taskIds in a row drawn to one partition by ts_kafka_steer_id. */
#define TS_STEER_RUN 256

/* Of every TS_STEER_TRIES endings ts_kafka_steer_id tries, one fits, on
 * average: with more partitions than that, a run goes to a group of them. */
#define TS_STEER_TRIES 32

/* The run a generator of ids is in: its first partition, ids left in it. */
typedef struct ts_steer {
	int32_t to;
	int left;
} ts_steer;

/* A generated taskId is its task's key (unless the task brings one), so it
 * decides the partition, and random ids spread every batch over every
 * partition: a request and a report batch per partition for a few records
 * each. So the ids of each run of TS_STEER_RUN are drawn (by the last 4 of
 * their 122 random bits, ts_kafka_steer_key) to hash to one partition of
 * cnt, the next run to the next partition: each record still sits where
 * its key hashes, as any Kafka client would place it. A random ending fits
 * one partition of cnt, so finding one takes cnt hashes on average: with
 * more than TS_STEER_TRIES partitions a run goes to a group of
 * ceil(cnt / TS_STEER_TRIES) partitions in a row, and the next run to the
 * next group: the cost per id stays bounded (exact runs on 500 partitions
 * would take 500 hashes per id), and up to 32 partitions exact runs
 * measured as fast as groups or faster.
 * id is a UUID from ts_uuid4 (36 characters); cnt < 2 (not known yet, or
 * one partition) leaves it alone. */
void ts_kafka_steer_id(ts_steer *st, char *id, int32_t cnt);

/* 1 when the producer's topics place keyed records by murmur2 (the
 * partitioner property is murmur2 or murmur2_random, as by default), so
 * that steering ids means something. */
int ts_kafka_keys_by_murmur2(rd_kafka_t *rk);

/* Print librdkafka's property list (-X list) to out. */
void ts_kafka_list_properties(FILE *out);

#endif
