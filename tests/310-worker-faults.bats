#!/usr/bin/env bats
# ts-worker under broker faults (ts-devbroker --control only): the broker
# taken down mid-run and brought back. Nothing may be lost: every task is
# delivered or dead-lettered, the dead letters reach the DLQ, and after a
# clean stop the commits are in place (a restart finds nothing to do).

bats_require_minimum_version 1.5.0

load helpers
load helpers_worker

teardown() {
	helpers_teardown
}

# all_done FILE IDS: every id of IDS (a file) is in FILE.
all_done() {
	[ -z "$(comm -23 <(sort -u "$2") <(sort -u "$1"))" ]
}

# dlq_has N: the DLQ topic holds N records or more.
dlq_has() {
	local n
	n=$(timeout 15 kcat -C -b "$TS_BROKERS" -t "$TS_DLQ_TOPIC" -o beginning -e -q 2>/dev/null | grep -c .) || true
	((${n:-0} >= $1))
}

# fault_run DOWN_SECONDS: 1200 tasks (every 100th of an unknown type), more
# than the worker holds at once, so it needs the broker again during the
# outage; the broker down for DOWN_SECONDS once 60 are done, then up.
fault_run() {
	local down=$1 done_file ids h i n0
	start_broker 4
	done_file=$BATS_TEST_TMPDIR/done.txt
	ids=$BATS_TEST_TMPDIR/ids.txt
	h=$(record_handler "$done_file")
	for i in $(seq 1 1200); do
		if ((i % 100 == 0)); then
			echo "{\"taskId\":\"bad-$i\",\"taskType\":\"nosuch\",\"payload\":{}}"
		else
			echo "{\"taskId\":\"f-$i\",\"taskType\":\"rec\",\"payload\":{\"i\":$i}}"
			echo "f-$i" >>"$ids"
		fi
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"

	start_worker --handler "rec=$h" --concurrency 4 --metrics "127.0.0.1:$(free_port)"
	WAIT_TIMEOUT=60 wait_for at_least 60 "$done_file"
	broker_ctl "down 1"
	n0=$(lines "$done_file")
	sleep "$down"
	broker_ctl "up 1"
	# every task is done in the end, and the twelve dead letters arrive
	WAIT_TIMEOUT=120 wait_for all_done "$done_file" "$ids" || { show_worker; false; }
	WAIT_TIMEOUT=60 wait_for dlq_has 12 || { show_worker; false; }
	((n0 < 1188)) # the outage began mid-run
	kill -TERM "$WORKER_PID"
	wait_exit "$WORKER_PID" 60
	[ "$EXIT_STATUS" = 0 ] || { show_worker; false; }
	first_out=$WORKER_OUT
	# A worker whose session expired in the outage lost its partitions with
	# what was unfinished (the dead letters waiting for their ack): the
	# next owner runs those again. Here that is the next run; between the
	# two, every task was reported, dead letters included.
	run_worker --handler "rec=$h" --exit-idle 3s
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	cat "$first_out" "$WORKER_OUT" >"$BATS_TEST_TMPDIR/all.jsonl"
	[ -z "$(comm -23 <(jq -r .taskId "$SUBMITTED" | sort -u) <(jq -r .taskId "$BATS_TEST_TMPDIR/all.jsonl" | sort -u))" ]
	jq -e -s '[.[] | select(.status == "dead-lettered") | .taskId] | unique | length == 12' "$BATS_TEST_TMPDIR/all.jsonl"
	jq -e -s 'all(.[] | select(.status == "dead-lettered"); .error | startswith("unknown-task-type"))' "$BATS_TEST_TMPDIR/all.jsonl"
	# and the commits landed: one more run has nothing left to do
	run_worker --handler "rec=$h" --exit-idle 3s
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(lines "$WORKER_OUT")" = 0 ]
}

@test "broker down for 3 s mid-run, then up: every task delivered, dead letters produced, commits land" {
	fault_run 3
}

@test "broker down longer than the session timeout, then up: the group re-forms and nothing is lost" {
	fault_run 9
}

@test "broker down at start-up: the worker waits, unhealthy, then gets going" {
	start_broker 2
	done_file=$BATS_TEST_TMPDIR/done.txt
	h=$(record_handler "$done_file")
	for i in $(seq 1 20); do
		echo "{\"taskId\":\"s-$i\",\"taskType\":\"rec\",\"payload\":{}}"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	broker_ctl "down 1"
	port=$(free_port)
	start_worker --handler "rec=$h" --metrics "127.0.0.1:$port" -X statistics.interval.ms=500
	unhealthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 503 ]; }
	WAIT_TIMEOUT=30 wait_for unhealthy || { show_worker; curl -s "http://127.0.0.1:$port/healthz"; false; }
	curl -s "http://127.0.0.1:$port/healthz" | jq -e '.status == "unavailable" and (.reason | test("broker"))'
	[ "$(lines "$done_file")" = 0 ]
	broker_ctl "up 1"
	WAIT_TIMEOUT=60 wait_for at_least 20 "$done_file" || { show_worker; false; }
	healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]; }
	WAIT_TIMEOUT=30 wait_for healthy
	kill -TERM "$WORKER_PID"
	wait_exit "$WORKER_PID" 60
	[ "$EXIT_STATUS" = 0 ]
	[ "$(sort -u "$done_file" | grep -c .)" = 20 ]
}
