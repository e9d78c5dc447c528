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

#include <stdint.h>

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

/* Generated taskIds in a row placed on one partition by ts_kafka_new_id. */
#define TS_STEER_RUN 256

/* At most this many groups of partitions: with more partitions than that, a
 * run goes to a group of them. */
#define TS_STEER_GROUPS 32

/* Ids kept per group for later runs (see ts_kafka_new_id). */
#define TS_STEER_KEEP 512

typedef struct ts_steer_slot ts_steer_slot;

/* The run a generator of ids is in, and the ids it keeps. Zeroed to start
 * (no memory held yet); ts_kafka_steer_free when done. */
typedef struct ts_steer {
	int32_t cnt;            /* the partition count the kept ids are for */
	int32_t groups;         /* of partitions in a row, as even as can be */
	int32_t group;          /* the run's */
	int left;               /* ids left in the run */
	uint16_t *kept;         /* per group, ids kept */
	ts_steer_slot *slots;   /* groups * TS_STEER_KEEP */
} ts_steer;

/* A new random taskId (ts_uuid4, 36 characters) in id (size >= 37).
 * A generated taskId is its task's key (unless the task brings one), so
 * it decides the partition, and random ids spread every batch over every
 * partition: a request and a report batch per partition for a few records
 * each. So with cnt >= 2 partitions the ids come in runs of TS_STEER_RUN
 * that murmur2 places on one partition, the next run on the next, as
 * Kafka's clients batch records without a key (sticky partitioning); with
 * more than TS_STEER_GROUPS partitions a run goes to a group of
 * partitions in a row, one of TS_STEER_GROUPS groups whose sizes are at
 * most one apart. Each record still sits where murmur2 of its key puts
 * it, as any Kafka client would place it.
 * An id is drawn at random, and kept for a later run when it hashes to
 * another group than the run's (up to TS_STEER_KEEP per group): so each
 * id costs about one draw and one hash, whatever the count.
 * *part gets the partition of id among cnt, or -1 when cnt < 2 (not known
 * yet, or one partition: not steered, nothing kept).
 * Errors: TS_ERR_INTERNAL (no randomness). */
ts_err ts_kafka_new_id(ts_steer *st, char *id, size_t size, int32_t cnt,
		       int32_t *part);

/* The ids kept, freed; st is zeroed. */
void ts_kafka_steer_free(ts_steer *st);

/* 1 when the producer's topics place keyed records by murmur2 (the
 * partitioner property is murmur2 or murmur2_random, as by default), so
 * that steering ids means something. */
int ts_kafka_keys_by_murmur2(rd_kafka_t *rk);

/* Print librdkafka's property list (-X list) to out. */
void ts_kafka_list_properties(FILE *out);

#endif
