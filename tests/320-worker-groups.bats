#!/usr/bin/env bats
# ts-worker in a consumer group: two workers share the partitions, a
# rebalance (one joining, one killed -9) loses nothing.
# brokers: dev kafka

bats_require_minimum_version 1.5.0

load helpers
load helpers_worker

teardown() {
	helpers_teardown
}

# covered IDS FILE...: every id of the file IDS appears in one of FILEs.
covered() {
	local ids=$1
	shift
	[ -z "$(comm -23 <(sort -u "$ids") <(cat "$@" 2>/dev/null | sort -u))" ]
}

make_tasks() { # N PREFIX -> $BATS_TEST_TMPDIR/t.jsonl, ids.txt
	local i
	: >"$BATS_TEST_TMPDIR/ids.txt"
	for i in $(seq 1 "$1"); do
		echo "{\"taskId\":\"$2-$i\",\"taskType\":\"rec\",\"payload\":{\"i\":$i}}"
		echo "$2-$i" >>"$BATS_TEST_TMPDIR/ids.txt"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
}

@test "a second worker joins mid-run, then the first is killed -9: the second takes over, no task lost" {
	start_broker 4
	make_tasks 800 g
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	da=$BATS_TEST_TMPDIR/done-a.txt db=$BATS_TEST_TMPDIR/done-b.txt
	ha=$(record_handler "$da" 0.01)
	hb=$(record_handler "$db" 0.01)

	start_worker --handler "rec=$ha" --concurrency 2
	pid_a=$WORKER_PID out_a=$WORKER_OUT err_a=$WORKER_ERR
	WAIT_TIMEOUT=60 wait_for at_least 30 "$da"
	start_worker --handler "rec=$hb" --concurrency 2
	pid_b=$WORKER_PID out_b=$WORKER_OUT
	# the group rebalanced: B has partitions and works
	WAIT_TIMEOUT=60 wait_for at_least 30 "$db" || { WORKER_ERR=$err_a show_worker; false; }
	kill -9 "$pid_a"
	wait_exit "$pid_a" 10
	[ "$EXIT_STATUS" = 137 ]
	b_at_kill=$(lines "$db")

	# B alone finishes everything, A's partitions included
	WAIT_TIMEOUT=180 wait_for covered "$BATS_TEST_TMPDIR/ids.txt" "$da" "$db" || { show_worker; false; }
	(($(lines "$db") > b_at_kill))
	kill -TERM "$pid_b"
	wait_exit "$pid_b" 60
	[ "$EXIT_STATUS" = 0 ] || { show_worker; false; }
	# both worked, and B reported each of its runs
	(($(lines "$da") > 0 && $(lines "$db") > 0))
	[ "$(lines "$out_b")" = "$(lines "$db")" ]
	jq -e -s 'all(.[]; .status == "delivered")' "$out_b"
	# what A finished and committed before the kill was not all redone by B:
	# the partitions it held were taken over from their commit points
	repeats=$(sort "$da" "$db" | uniq -d | grep -c .) || true
	echo "# repeated after kill -9: $repeats of 800" >&3
	((repeats < 800))
}

@test "two workers started together split the partitions and both exit when the topic is drained" {
	start_broker 4
	make_tasks 400 s
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	da=$BATS_TEST_TMPDIR/done-a.txt db=$BATS_TEST_TMPDIR/done-b.txt
	ha=$(record_handler "$da" 0.02)
	hb=$(record_handler "$db" 0.02)
	start_worker --handler "rec=$ha" --concurrency 2 --exit-idle 5s
	pid_a=$WORKER_PID out_a=$WORKER_OUT
	start_worker --handler "rec=$hb" --concurrency 2 --exit-idle 5s
	pid_b=$WORKER_PID out_b=$WORKER_OUT
	wait_exit "$pid_a" 120
	[ "$EXIT_STATUS" = 0 ]
	wait_exit "$pid_b" 120
	[ "$EXIT_STATUS" = 0 ]
	covered "$BATS_TEST_TMPDIR/ids.txt" "$da" "$db"
	(($(lines "$da") > 0 && $(lines "$db") > 0))
	# each partition went to one worker at the end: their reports together
	# name every task, and the group's commits cover all of it
	cat "$out_a" "$out_b" | jq -r .taskId | sort -u >"$BATS_TEST_TMPDIR/reported"
	[ "$(grep -c . "$BATS_TEST_TMPDIR/reported")" = 400 ]
	run_worker --handler "rec=$ha" --exit-idle 3s
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(lines "$WORKER_OUT")" = 0 ]
}

@test "a worker joins while another races through a backlog: no worker runs a task twice, the group repeats less than half" {
	# Tasks of a type with no processor go straight to the DLQ, tens of
	# thousands a second: A is well into the 20000 when B joins. The
	# group refuses commits while it rebalances (the mock cluster from
	# B's JoinGroup on; a real broker accepts them until the SyncGroup).
	# A used to go on through every message librdkafka had prefetched
	# before the rebalance callback reached it, uncommittable, and then
	# ran again what it had finished on the partitions it got back
	# (about 10000 repeated by A itself, 20000 in all). Now the first
	# refused commit (100 ms rounds) pauses A's partitions, the callback
	# comes at once, and the commit refused at the revoke is made when
	# the partition comes back: A repeats nothing. B repeats what A
	# finished on B's partitions since A's last commit: one commit round
	# of work and what A held (256 tasks), about 3000 here.
	start_broker 4
	local i
	for i in $(seq 1 20000); do
		echo "{\"taskId\":\"d-$i\",\"taskType\":\"unrouted\",\"payload\":{\"i\":$i}}"
	done >"$BATS_TEST_TMPDIR/d.jsonl"
	submit "$BATS_TEST_TMPDIR/d.jsonl"
	h=$(record_handler "$BATS_TEST_TMPDIR/never.txt")
	start_worker --handler "rec=$h" --concurrency 4 --exit-idle 8s -v
	pid_a=$WORKER_PID out_a=$WORKER_OUT err_a=$WORKER_ERR
	WAIT_TIMEOUT=60 wait_for at_least 50 "$out_a"
	start_worker --handler "rec=$h" --concurrency 4 --exit-idle 8s -v
	pid_b=$WORKER_PID out_b=$WORKER_OUT err_b=$WORKER_ERR
	wait_exit "$pid_a" 180
	[ "$EXIT_STATUS" = 0 ] || { WORKER_ERR=$err_a show_worker; false; }
	wait_exit "$pid_b" 180
	[ "$EXIT_STATUS" = 0 ] || { WORKER_ERR=$err_b show_worker; false; }
	[ "$(cat "$out_a" "$out_b" | jq -r .taskId | sort -u | grep -c .)" = 20000 ]
	runs=$(cat "$out_a" "$out_b" | grep -c .)
	self_a=$(jq -r .taskId "$out_a" | sort | uniq -d | grep -c .) || true
	self_b=$(jq -r .taskId "$out_b" | sort | uniq -d | grep -c .) || true
	echo "# repeated: $((runs - 20000)) of 20000 (A ran $(lines "$out_a"), B $(lines "$out_b"); by A itself $self_a, by B itself $self_b)" >&3
	((self_a == 0 && self_b == 0)) || {
		grep -h "rebalanc\|revoked\|assigned\|refused\|is back\|commits of group" "$err_a" "$err_b"
		false
	}
	((runs - 20000 < 10000))
}
