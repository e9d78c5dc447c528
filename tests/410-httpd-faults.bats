#!/usr/bin/env bats
# ts-httpd against a broker that fails on purpose (ts-devbroker --control):
# 503 with Retry-After within --produce-timeout, 202 again once the broker
# is back, many requests waiting at once without a thread each, and SIGTERM
# with tasks waiting for their acknowledgement.

bats_require_minimum_version 1.5.0

load helpers
load helpers_httpd

teardown() {
	helpers_teardown
}

now_ms() { date +%s%3N; }

post_is_202() {
	post /tasks "$EMAIL_TASK"
	[ "$STATUS" = 202 ]
}

@test "broker down: 503 with Retry-After within --produce-timeout; 202 again once it is back" {
	start_broker 2
	start_httpd --produce-timeout 2s
	post_is_202
	broker_ctl "down 1"
	t0=$(now_ms)
	post /tasks "$EMAIL_TASK" -H 'Idempotency-Key: while-down'
	elapsed=$(($(now_ms) - t0))
	[ "$STATUS" = 503 ]
	[ "$(header retry-after)" = 2 ]
	jq -e '.taskId == "while-down" and .field == null and
		(.error | test("may still be delivered"))' <<<"$BODY"
	# it waited for the timeout, and not much longer (generous bound)
	((elapsed >= 1500 && elapsed < 15000))
	# health follows the broker
	wait_for health_is 503
	get /healthz
	jq -e '.status == "unavailable" and (.reason | test("kafka"))' <<<"$BODY"
	[ "$(metric taskstream_kafka_up)" = 0 ]

	broker_ctl "up 1"
	WAIT_TIMEOUT=60 wait_for post_is_202
	wait_for health_is 200
	(($(metric 'taskstream_http_requests_total{route="/tasks",code="503"}') >= 1))
	(($(metric 'taskstream_http_tasks_total{result="unavailable"}') >= 1))
}

@test "broker down: an NDJSON batch answers 503 per line, invalid lines still 400" {
	start_broker 1
	start_httpd --produce-timeout 1s
	broker_ctl "down 1"
	batch=$(printf '%s\n' "$EMAIL_TASK" '{"taskType":"email","payload":{}}' "$EMAIL_TASK")
	post /tasks "$batch" -H 'Content-Type: application/x-ndjson'
	[ "$STATUS" = 200 ]
	jq -e -s '[.[].status] == [503,400,503] and
		all(.[] | select(.status == 503); (.taskId | length > 0) and .field == null)' <<<"$BODY"
	broker_ctl "up 1"
}

@test "a slow broker: many requests wait at once, suspended, on a handful of threads" {
	start_broker 4
	start_httpd --produce-timeout 30s
	threads_idle=$(awk '/^Threads:/ { print $2 }' "/proc/$HTTPD_PID/status")
	broker_ctl "rtt 1 3000"
	sleep 0.5
	n=300
	for i in $(seq 1 $n); do
		printf 'url = "%s/tasks"\n-H "Content-Type: application/json"\n-H "Idempotency-Key: wait-%s"\ndata = "%s"\n-o "%s/r%s"\n-w "%%{http_code}\\n"\n' \
			"$HTTPD_URL" "$i" "${EMAIL_TASK//\"/\\\"}" "$BATS_TEST_TMPDIR" "$i"
		[ "$i" -lt "$n" ] && echo next
	done >"$BATS_TEST_TMPDIR/curl.cfg"
	curl -sS --parallel --parallel-max $n --parallel-immediate --max-time 120 \
		-K "$BATS_TEST_TMPDIR/curl.cfg" >"$BATS_TEST_TMPDIR/codes" &
	cpid=$!
	WAIT_TIMEOUT=60 wait_for in_flight_at_least $((n / 2))
	threads=$(awk '/^Threads:/ { print $2 }' "/proc/$HTTPD_PID/status")
	depth=$(metric taskstream_kafka_queue_depth)
	echo "threads idle $threads_idle, with requests waiting $threads, queue depth $depth" >&3
	((threads <= threads_idle + 2))
	((depth > 0))
	broker_ctl "rtt 1 0"
	wait "$cpid"
	[ "$(grep -c '^202$' "$BATS_TEST_TMPDIR/codes")" -eq $n ]
	jq -e -s 'length == 300 and all(.[]; .message == "task accepted")' "$BATS_TEST_TMPDIR"/r*
	[ "$(consume "$TS_TOPIC" $n 60 | grep -c .)" -eq $n ]
}

@test "SIGTERM with tasks waiting for Kafka: each is answered 202, then exit 0" {
	start_broker 2
	# -v: the 'stopping' line waited for below is an info line
	start_httpd --produce-timeout 60s -v
	broker_ctl "rtt 1 1500"
	sleep 0.5
	pids=()
	for i in 1 2 3 4; do
		curl -sS --max-time 60 -o "$BATS_TEST_TMPDIR/out$i" -w '%{http_code}' \
			-H 'Content-Type: application/json' -H "Idempotency-Key: term-$i" \
			--data-binary "$EMAIL_TASK" "$HTTPD_URL/tasks" >"$BATS_TEST_TMPDIR/code$i" &
		pids+=($!)
	done
	WAIT_TIMEOUT=30 wait_for in_flight_at_least 5
	kill -TERM "$HTTPD_PID"
	# no new connections once it is stopping (it logs that, then quiesces)
	WAIT_TIMEOUT=60 wait_for grep -q stopping "$HTTPD_ERR"
	sleep 0.3
	run curl -sS --max-time 5 -o /dev/null "$HTTPD_URL/healthz"
	[ "$status" -ne 0 ]
	rc=0
	wait "$HTTPD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	wait "${pids[@]}"
	for i in 1 2 3 4; do
		echo "request $i: $(cat "$BATS_TEST_TMPDIR/code$i") $(cat "$BATS_TEST_TMPDIR/out$i")"
		[ "$(cat "$BATS_TEST_TMPDIR/code$i")" = 202 ]
		jq -e --arg id "term-$i" '.taskId == $id' "$BATS_TEST_TMPDIR/out$i"
	done
	broker_ctl "rtt 1 0"
	recs=$(consume "$TS_TOPIC" 4 30)
	jq -e -s '[.[].key] | sort == ["term-1","term-2","term-3","term-4"]' <<<"$recs"
	grep -q 'stopping' "$HTTPD_ERR" || true
}

@test "Kafka answers after the 503: the client was told the record may still land" {
	start_broker 1
	start_httpd --produce-timeout 1s
	broker_ctl "rtt 1 2500"
	sleep 0.5
	t0=$(now_ms)
	post /tasks "$EMAIL_TASK" -H 'Idempotency-Key: late-1'
	elapsed=$(($(now_ms) - t0))
	[ "$STATUS" = 503 ]
	((elapsed < 10000))
	jq -e '.taskId == "late-1" and (.error | test("may still be delivered"))' <<<"$BODY"
	broker_ctl "rtt 1 0"
	# the service goes on normally afterwards
	WAIT_TIMEOUT=60 wait_for post_is_202
}
