#!/usr/bin/env bats
# brokers: kafka
# alone: kafka
# (tests/run: no other kafka-pass suite beside it, since it stops the broker.)
# The real Apache Kafka broker is stopped (SIGTERM) and started again on the
# same data directory and port in the middle of a run: nothing is lost.
load helpers
load helpers_worker

# restart_kafka: stop the shared test broker, then start it on its data.
restart_kafka() {
	[ -n "${TS_KAFKA_DIR:-}" ] || { echo "no TS_KAFKA_DIR: not the kafka pass" >&2; return 1; }
	"$REPO/tests/kafka/stop" "$TS_KAFKA_DIR"
	sleep 2
	"$REPO/tests/kafka/start" "$TS_KAFKA_DIR" >/dev/null
}

# unique_done N FILE: FILE holds N distinct task ids.
unique_done() {
	[ "$(sort -u "$2" | grep -c .)" -ge "$1" ]
}

tasks() { # tasks PREFIX FROM TO
	for n in $(seq "$2" "$3"); do
		echo "{\"taskId\":\"$1-$n\",\"taskType\":\"rec\",\"key\":\"k$((n % 7))\",\"payload\":{\"n\":$n}}"
	done
}

@test "kafka restarted mid-run: ts-submit waits it out, ts-worker goes on, every task delivered" {
	start_broker 4
	done_file=$BATS_TEST_TMPDIR/done.txt
	h=$(record_handler "$done_file")
	tasks a 1 100 >"$BATS_TEST_TMPDIR/a.jsonl"
	tasks b 1 100 >"$BATS_TEST_TMPDIR/b.jsonl"
	submit "$BATS_TEST_TMPDIR/a.jsonl"
	start_worker --handler "rec=$h" --concurrency 4
	WAIT_TIMEOUT=60 wait_for unique_done 100 "$done_file"

	"$REPO/tests/kafka/stop" "$TS_KAFKA_DIR"
	# submitted while the broker is down: held by the producer, not lost
	ts-submit "$BATS_TEST_TMPDIR/b.jsonl" >"$BATS_TEST_TMPDIR/b.out" 2>"$BATS_TEST_TMPDIR/b.err" &
	sub=$!
	track_pid "$sub"
	sleep 3
	"$REPO/tests/kafka/start" "$TS_KAFKA_DIR" >/dev/null
	wait_exit "$sub" 120
	[ "$EXIT_STATUS" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/b.err"; false; }
	[ "$(grep -c . "$BATS_TEST_TMPDIR/b.out")" -eq 100 ]

	WAIT_TIMEOUT=120 wait_for unique_done 200 "$done_file" || { show_worker; false; }
	kill -TERM "$WORKER_PID"
	wait_exit "$WORKER_PID" 60
	[ "$EXIT_STATUS" -eq 0 ] || { show_worker; false; }
	# every id of both batches, and nothing else
	diff <(sort -u "$done_file") <(cat "$BATS_TEST_TMPDIR/a.jsonl" "$BATS_TEST_TMPDIR/b.jsonl" | jq -r .taskId | sort)
	# both batches are on the topic exactly once (idempotent producer)
	consume "$TS_TOPIC" 200 60 >"$BATS_TEST_TMPDIR/records"
	[ "$(jq -r '.payload | fromjson | .taskId' "$BATS_TEST_TMPDIR/records" | sort | uniq -d | wc -l)" -eq 0 ]
}

@test "kafka restarted while ts-worker is stopped: the restarted worker repeats nothing and loses nothing" {
	start_broker 2
	done_file=$BATS_TEST_TMPDIR/done.txt
	h=$(record_handler "$done_file")
	tasks c 1 60 >"$BATS_TEST_TMPDIR/c.jsonl"
	submit "$BATS_TEST_TMPDIR/c.jsonl"
	run_worker --handler "rec=$h"
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(grep -c . "$done_file")" -eq 60 ]

	restart_kafka
	tasks d 1 40 >"$BATS_TEST_TMPDIR/d.jsonl"
	submit "$BATS_TEST_TMPDIR/d.jsonl"
	run_worker --handler "rec=$h"
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	# the committed offsets survived the restart: only the new 40 ran
	[ "$(grep -c . "$done_file")" -eq 100 ]
	[ "$(sort "$done_file" | uniq -d | wc -l)" -eq 0 ]
}
