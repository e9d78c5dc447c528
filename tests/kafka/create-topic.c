/*
 * create-topic [--grow] BOOTSTRAP NAME PARTITIONS
 *
 * Test helper (tests/kafka/create-topic compiles it into the cache): creates
 * topic NAME with PARTITIONS partitions, replication factor 1, through
 * librdkafka's admin API, then waits until the broker's metadata shows every
 * partition with a leader. A topic that already exists with that many
 * partitions is success; one with another partition count is an error (a test
 * that relies on the count would misbehave silently otherwise).
 * With --grow, NAME exists already and gets partitions added up to
 * PARTITIONS (CreatePartitions), then the same wait.
 *
 * Exit: 0 done, 64 usage, 75 broker unreachable or not ready in time,
 * 70 any other failure. Diagnostics on stderr, nothing on stdout.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define EX_USAGE 64
#define EX_SOFTWARE 70
#define EX_TEMPFAIL 75

static const char *prog = "create-topic";
static const int timeout_ms = 30000;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* partitions with a leader, or -1 when the topic is unknown / has an error */
static int ready_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int *total,
                            rd_kafka_resp_err_t *why)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    int ready = -1;

    *total = 0;
    *why = err;
    if (err)
        return -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, rd_kafka_topic_name(rkt)) != 0)
            continue;
        *why = t->err;
        if (t->err)
            break;
        *total = t->partition_cnt;
        ready = 0;
        for (int p = 0; p < t->partition_cnt; p++)
            if (t->partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                t->partitions[p].leader >= 0)
                ready++;
    }
    rd_kafka_metadata_destroy(md);
    return ready;
}

int main(int argc, char **argv)
{
    char errstr[512];
    char *end;
    long want;
    int rc = 0, grow = 0;

    if (argc == 5 && strcmp(argv[1], "--grow") == 0) {
        grow = 1;
        argc--;
        argv++;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s [--grow] BOOTSTRAP NAME PARTITIONS\n", prog);
        return EX_USAGE;
    }
    const char *bootstrap = argv[1], *name = argv[2];
    errno = 0;
    want = strtol(argv[3], &end, 10);
    if (errno || *end || end == argv[3] || want < 1 || want > 100000 || !*name) {
        fprintf(stderr, "%s: PARTITIONS must be a positive number, NAME non-empty\n", prog);
        return EX_USAGE;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        /* asking for the topic's metadata must not auto-create it */
        rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr)) {
        fprintf(stderr, "%s: %s\n", prog, errstr);
        rd_kafka_conf_destroy(conf);
        return EX_USAGE;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "%s: %s\n", prog, errstr);
        return EX_SOFTWARE;
    }
    int64_t deadline = now_ms() + timeout_ms;

    /* 1. CreateTopics, or CreatePartitions with --grow */
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_NewPartitions_t *np = NULL;
    if (grow)
        np = rd_kafka_NewPartitions_new(name, (size_t)want, errstr, sizeof errstr);
    else
        nt = rd_kafka_NewTopic_new(name, (int)want, 1, errstr, sizeof errstr);
    if (!nt && !np) {
        fprintf(stderr, "%s: %s: %s\n", prog, name, errstr);
        rd_kafka_destroy(rk);
        return EX_USAGE;
    }
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(
        rk, grow ? RD_KAFKA_ADMIN_OP_CREATEPARTITIONS : RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    if (grow)
        rd_kafka_CreatePartitions(rk, &np, 1, opts, q);
    else
        rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    rd_kafka_resp_err_t err;
    if (!ev) {
        fprintf(stderr, "%s: %s: no answer from %s within %d ms\n", prog, name, bootstrap,
                timeout_ms + 5000);
        rc = EX_TEMPFAIL;
    } else if ((err = rd_kafka_event_error(ev))) {
        fprintf(stderr, "%s: %s: %s\n", prog, name, rd_kafka_event_error_string(ev));
        rc = (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
              err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                 ? EX_TEMPFAIL
                 : EX_SOFTWARE;
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            grow ? rd_kafka_CreatePartitions_result_topics(
                       rd_kafka_event_CreatePartitions_result(ev), &n)
                 : rd_kafka_CreateTopics_result_topics(
                       rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            err = rd_kafka_topic_result_error(res[i]);
            if (err && (grow || err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)) {
                fprintf(stderr, "%s: %s: %s\n", prog, rd_kafka_topic_result_name(res[i]),
                        rd_kafka_topic_result_error_string(res[i])
                            ? rd_kafka_topic_result_error_string(res[i])
                            : rd_kafka_err2str(err));
                rc = err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ? EX_TEMPFAIL : EX_SOFTWARE;
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (np)
        rd_kafka_NewPartitions_destroy(np);

    /* 2. wait until the metadata shows every partition with a leader */
    if (rc == 0) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
        int total = 0, ready = -1;
        rd_kafka_resp_err_t why = 0;
        for (;;) {
            ready = ready_partitions(rk, rkt, &total, &why);
            if (ready >= 0 && total != want)
                break; /* exists with another partition count */
            if (ready == want)
                break;
            if (now_ms() >= deadline)
                break;
            sleep_ms(100);
        }
        if (ready >= 0 && total != want) {
            fprintf(stderr, "%s: %s: exists with %d partitions, not %ld\n", prog, name, total,
                    want);
            rc = EX_SOFTWARE;
        } else if (ready != want) {
            fprintf(stderr, "%s: %s: %d of %ld partitions have a leader after %d ms (%s)\n",
                    prog, name, ready < 0 ? 0 : ready, want, timeout_ms, rd_kafka_err2str(why));
            rc = EX_TEMPFAIL;
        }
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_destroy(rk);
    return rc;
}
