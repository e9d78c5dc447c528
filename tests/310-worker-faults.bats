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

# twenty_tasks PREFIX: a 2-broker ts-devbroker holding twenty tasks
# PREFIX-1..PREFIX-20 for the handler $h, which records each one it runs
# in $done_file.
twenty_tasks() {
	local i
	start_broker 2
	done_file=$BATS_TEST_TMPDIR/done.txt
	h=$(record_handler "$done_file")
	for i in $(seq 1 20); do
		echo "{\"taskId\":\"$1-$i\",\"taskType\":\"rec\",\"payload\":{}}"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
}

@test "broker down at start-up: the worker waits, unhealthy, then gets going" {
	twenty_tasks s
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

@test "SIGTERM while the broker answers nothing: the worker still exits 0 within its bounds" {
	# rtt 60000: every request waits a minute for its answer, the final
	# commit and the LeaveGroup included. The commit gives up after 10 s,
	# leaving the group after 5 s more; the tasks were finished, so the
	# next run only repeats what did not get committed.
	twenty_tasks q
	start_worker --handler "rec=$h"
	WAIT_TIMEOUT=60 wait_for at_least 20 "$done_file" || { show_worker; false; }
	broker_ctl "rtt -1 60000"
	sleep 1
	t0=$SECONDS
	kill -TERM "$WORKER_PID"
	wait_exit "$WORKER_PID" 40 || { show_worker; false; }
	[ "$EXIT_STATUS" = 0 ] || { show_worker; false; }
	((SECONDS - t0 <= 25))
	grep -q 'leaving group .*no answer' "$WORKER_ERR" || { show_worker; false; }
	# and the broker answering again, the tasks are all there to be run
	broker_ctl "rtt -1 0"
	run_worker --handler "rec=$h" --exit-idle 3s
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(sort -u "$done_file" | grep -c .)" = 20 ]
}

@test "--exit-idle: a broker outage is not idleness; the worker waits it out, runs what came meanwhile, then exits 0" {
	twenty_tasks e
	start_worker --handler "rec=$h" --exit-idle 3s
	WAIT_TIMEOUT=60 wait_for at_least 20 "$done_file" || { show_worker; false; }
	broker_ctl "down 1"
	sleep 8 # well past the 3 s (and the group's session)
	kill -0 "$WORKER_PID" || { show_worker; false; }
	broker_ctl "up 1"
	for i in $(seq 21 30); do
		echo "{\"taskId\":\"e-$i\",\"taskType\":\"rec\",\"payload\":{}}"
	done >"$BATS_TEST_TMPDIR/more.jsonl"
	submit "$BATS_TEST_TMPDIR/more.jsonl"
	wait_exit "$WORKER_PID" 60 || { show_worker; false; }
	[ "$EXIT_STATUS" = 0 ] || { show_worker; false; }
	[ "$(sort -u "$done_file" | grep -c .)" = 30 ]
}

# --- SMTP connection reuse ---------------------------------------------------

# reuse_tasks FILE: ten email tasks r-1..r-10 on one partition, subject
# "S r-N"; r-4 goes to a refused address (bad@) when $1 says so.
reuse_tasks() {
	local i to
	for i in $(seq 1 10); do
		to="u$i@example.com"
		[[ $2 == refuse && $i == 4 ]] && to="bad@example.com"
		jq -nc --arg id "r-$i" --arg to "$to" --arg s "S r-$i" \
			'{taskId:$id,taskType:"email",payload:{to:$to,subject:$s,body:"reuse"}}'
	done >"$1"
}

@test "SMTP connection reuse: tasks share a session; a refused recipient fails only its own task" {
	start_broker 1
	start_session_smtpd --reject-rcpt '^bad@'
	reuse_tasks "$BATS_TEST_TMPDIR/t.jsonl" refuse
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --email-url "smtp://127.0.0.1:$SESSION_PORT?starttls=no" \
		--from sender@example.com --concurrency 1
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	# r-4 alone is dead-lettered, for its own recipient; the others are
	# delivered once, at the first attempt
	jq -e -s 'length == 10 and ([.[] | .taskId] | unique | length == 10) and
		all(.[] | select(.taskId != "r-4"); .status == "delivered" and .attempts == 1) and
		any(.[]; .taskId == "r-4" and .status == "dead-lettered" and .attempts == 1 and
			(.error | startswith("permanent: ")) and (.error | test("550")) and
			(.error | test("bad@example.com")))' "$WORKER_OUT"
	# each stored message is the one of its task, to its own recipient
	jq -e -s '[.[] | select(.event == "message")] | length == 9 and
		all(.[]; (.subject | ltrimstr("S r-")) as $n | .rcpt == ["u\($n)@example.com"]) and
		([.[] | .subject] | unique | length == 9) and
		all(.[]; .subject != "S r-4")' "$SESSION_LOG"
	# fewer connections than messages: sessions carried several (one
	# thread; how many it takes depends only on how fast tasks arrive)
	conns=$(jq -s '[.[] | select(.event == "connect")] | length' "$SESSION_LOG")
	((conns >= 1 && conns <= 5))
	dlq=$(consume "$TS_DLQ_TOPIC" 1)
	jq -e '.key == "r-4" and .headers["ts-error-class"] == "permanent"' <<<"$dlq"
}

@test "SMTP connection reuse: the server drops the connection mid-batch; nothing is lost, the rest goes on" {
	start_broker 1
	start_session_smtpd --drop-data 4
	reuse_tasks "$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --email-url "smtp://127.0.0.1:$SESSION_PORT?starttls=no" \
		--from sender@example.com --concurrency 1 --backoff 100ms -v
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	# every task delivered once; only the message under way when the
	# connection broke needed a second attempt (a task the session had
	# taken but not begun goes into the next session, not counted)
	jq -e -s 'length == 10 and ([.[] | .taskId] | unique | length == 10) and
		all(.[]; .status == "delivered") and
		([.[] | select(.attempts == 2)] | length == 1) and
		([.[] | select(.attempts == 1)] | length == 9)' "$WORKER_OUT"
	again=$(jq -r 'select(.attempts == 2) | .taskId' "$WORKER_OUT")
	grep -q "task $again (email) at .* failed (attempt 1), retry in .*session with 127.0.0.1:$SESSION_PORT ended early" "$WORKER_ERR" ||
		{ show_worker; false; }
	# the server stored each message once (the broken one was discarded),
	# over more than one connection
	jq -e -s '[.[] | select(.event == "message") | .subject] | sort ==
		([range(1; 11) | "S r-\(.)"] | sort)' "$SESSION_LOG"
	jq -e -s '[.[] | select(.event == "connect")] | length >= 2' "$SESSION_LOG"
}
