#!/usr/bin/env bats
# ts-devbroker: the in-memory Kafka cluster the tests and the demo run on.
# Checked from the outside with kcat, as any Kafka client would see it.

bats_require_minimum_version 1.5.0

load helpers

teardown() {
	helpers_teardown
}

# First stdout line of the broker started with start_bg devbroker.
bootstrap_line() {
	[[ -s $DEVBROKER_OUT ]] && head -n1 "$DEVBROKER_OUT" | grep -q .
}

# start_dev ARGS...: ts-devbroker in the background (stdin /dev/null);
# sets BOOT to its bootstrap list.
start_dev() {
	start_bg devbroker ts-devbroker "$@"
	wait_for bootstrap_line
	BOOT=$(head -n1 "$DEVBROKER_OUT")
}

# Exit status of background process PID once it has ended (bounded wait).
exit_status() {
	local pid=$1
	WAIT_TIMEOUT=20 wait_for eval "! kill -0 $pid 2>/dev/null"
	wait "$pid"
}

metadata() {
	timeout 20 kcat -L -J -b "$1"
}

@test "prints the bootstrap list as its first line, one loopback address per broker" {
	start_dev --brokers 3
	[[ $BOOT =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]]
	run metadata "$BOOT"
	[ "$status" -eq 0 ]
	# the three addresses printed are the three brokers the cluster reports
	[ "$(jq '.brokers | length' <<<"$output")" -eq 3 ]
	[ "$(jq -r '[.brokers[].name | sub("/[0-9]+$"; "")] | sort | join(",")' <<<"$output")" = \
		"$(tr ',' '\n' <<<"$BOOT" | sort | paste -sd,)" ]
	[ "$(jq -c '[.brokers[].id] | sort' <<<"$output")" = "[1,2,3]" ]
}

@test "creates each --topic with the partitions asked for; --partitions is the default" {
	start_dev --partitions 2 --topic seven:7 --topic two --topic one:1
	run metadata "$BOOT"
	[ "$status" -eq 0 ]
	parts() { jq --arg t "$1" '.topics[] | select(.topic == $t) | .partitions | length' <<<"$output"; }
	[ "$(parts seven)" -eq 7 ]
	[ "$(parts two)" -eq 2 ]
	[ "$(parts one)" -eq 1 ]
	# a topic nobody created is made on first use, with the mock's 4
	printf 'x\n' | timeout 20 kcat -P -b "$BOOT" -t fresh
	run metadata "$BOOT"
	[ "$(parts fresh)" -eq 4 ]
}

@test "produce and consume round trip: keys, headers and values come back as sent" {
	start_dev --topic rt:3
	printf 'k1\tfirst value\nk2\tsecond value\n' |
		timeout 20 kcat -P -b "$BOOT" -t rt -K $'\t' -H trace=abc \
			-X acks=all -X enable.idempotence=true
	run timeout 20 kcat -C -b "$BOOT" -t rt -o beginning -e -q -J
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	jq -e -s 'map({key, payload}) | sort_by(.key) ==
		[{"key":"k1","payload":"first value"},{"key":"k2","payload":"second value"}]' <<<"$output"
	jq -e -s 'all(.[]; .headers == ["trace","abc"] and .topic == "rt")' <<<"$output"
	# offsets are per partition and start at 0
	jq -e -s 'group_by(.partition) | all(.[]; (map(.offset) | sort) == [range(0; length)])' <<<"$output"
}

@test "--control: down makes the broker unreachable, up brings it back" {
	start_broker 1
	printf 'before\n' | timeout 20 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC"

	broker_ctl "down 1"
	wait_for grep -qx 'ok down 1' "$(dirname "$TS_BROKER_CTL")/stdout"
	# a producer now fails after its message timeout, and nothing is stored
	run timeout 30 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -X message.timeout.ms=2000 <<<"lost"
	[ "$status" -ne 0 ]
	[[ $output == *"Message timed out"* || $output == *"failed"* ]]
	run timeout 20 kcat -L -b "$TS_BROKERS" -m 2
	[ "$status" -ne 0 ]

	broker_ctl "up 1"
	wait_for grep -qx 'ok up 1' "$(dirname "$TS_BROKER_CTL")/stdout"
	printf 'after\n' | timeout 20 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -X message.timeout.ms=20000
	run consume "$TS_TOPIC" 2
	[ "$status" -eq 0 ]
	[ "$(jq -r -s 'map(.payload) | sort | join(",")' <<<"$output")" = "after,before" ]
}

@test "--control: down takes only that broker's partitions away" {
	# The mock picks each partition's leader at random (librdkafka 2.0.2):
	# with 6 partitions both were led by one broker in 1 run of 32 (CI, two
	# passes in one run), with 24 in 1 of 8 million.
	start_broker 24 --brokers 2
	run metadata "$TS_BROKERS"
	# partitions led by broker 2 keep working while broker 1 is down
	led2=$(jq --arg t "$TS_TOPIC" '[.topics[] | select(.topic == $t) | .partitions[] | select(.leader == 2) | .partition] | first' <<<"$output")
	led1=$(jq --arg t "$TS_TOPIC" '[.topics[] | select(.topic == $t) | .partitions[] | select(.leader == 1) | .partition] | first' <<<"$output")
	[[ $led1 =~ ^[0-9]+$ && $led2 =~ ^[0-9]+$ ]]
	broker_ctl "down 1"
	wait_for grep -qx 'ok down 1' "$(dirname "$TS_BROKER_CTL")/stdout"
	printf 'on2\n' | timeout 30 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -p "$led2" -X message.timeout.ms=20000
	run timeout 30 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -p "$led1" -X message.timeout.ms=2000 <<<"on1"
	[ "$status" -ne 0 ]
	broker_ctl "up 1"
	wait_for grep -qx 'ok up 1' "$(dirname "$TS_BROKER_CTL")/stdout"
	run consume "$TS_TOPIC" 1
	[ "$(jq -r -s 'map(.payload) | join(",")' <<<"$output")" = "on2" ]
}

@test "--control: rtt, err, clear, bad lines answered on stderr, EOF on stdin keeps it serving" {
	printf '%s\n' 'rtt 1 20' 'rtt -1 0' 'bogus 1' 'down 7' 'up' '' \
		'err OffsetCommit 3 27' 'err heartbeat 1 22' 'clear OffsetCommit' \
		'err Nope 1 27' 'err Produce 0 10' 'err Produce 1 98' 'clear' \
		'down 1' 'up 1' >"$BATS_TEST_TMPDIR/ctl"
	dir=$BATS_TEST_TMPDIR
	ts-devbroker --control --topic c:1 <"$dir/ctl" >"$dir/out" 2>"$dir/err" &
	pid=$!
	track_pid "$pid" devbroker
	wait_for grep -qx 'ok up 1' "$dir/out"
	run cat "$dir/out"
	[[ ${lines[0]} =~ ^127\.0\.0\.1:[0-9]+$ ]]
	[ "${lines[1]}" = "ok rtt 1 20" ]
	[ "${lines[2]}" = "ok rtt -1 0" ]
	[ "${lines[3]}" = "ok err OffsetCommit 3 27" ]
	[ "${lines[4]}" = "ok err Heartbeat 1 22" ]
	[ "${lines[5]}" = "ok clear OffsetCommit" ]
	[ "${lines[6]}" = "ok down 1" ]
	[ "${lines[7]}" = "ok up 1" ]
	[ "${#lines[@]}" -eq 8 ]
	run cat "$dir/err"
	want='(want `down ID`, `up ID`, `rtt ID MS`, `err API COUNT CODE` or `clear API`)'
	[ "${lines[0]}" = "ts-devbroker: control: not understood: bogus 1 $want" ]
	[ "${lines[1]}" = 'ts-devbroker: control: down 7: no broker 7 (ids are 1..1, or -1 for all)' ]
	[ "${lines[2]}" = "ts-devbroker: control: not understood: up $want" ]
	[[ ${lines[3]} == "ts-devbroker: control: err Nope 1 27: no request Nope (known: Produce, Fetch, "*", OffsetCommit, "*", Heartbeat, "*")" ]]
	[ "${lines[4]}" = "ts-devbroker: control: err Produce 0 10: COUNT: '0' is not a whole number from 1 to 1000000" ]
	[ "${lines[5]}" = "ts-devbroker: control: err Produce 1 98: CODE: '98' is not a whole number from 1 to 97" ]
	[ "${lines[6]}" = "ts-devbroker: control: not understood: clear $want" ]
	[ "${#lines[@]}" -eq 7 ]
	# stdin is at its end, and the broker still serves
	boot=$(head -n1 "$dir/out")
	printf 'still here\n' | timeout 20 kcat -P -b "$boot" -t c
	run timeout 20 kcat -C -b "$boot" -t c -o beginning -e -q
	[ "$output" = "still here" ]
	kill -0 "$pid"
	kill -TERM "$pid"
	rc=0
	exit_status "$pid" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "--control: err fails the next COUNT requests of one kind with the code given, clear drops the rest" {
	start_broker 1
	ctl_out=$(dirname "$TS_BROKER_CTL")/stdout
	# MESSAGE_TOO_LARGE (10) is not retried: the producer fails at once
	broker_ctl "err Produce 1 10"
	wait_for grep -qx 'ok err Produce 1 10' "$ctl_out"
	run timeout 30 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -p 0 -X message.timeout.ms=5000 <<<"refused"
	[ "$status" -ne 0 ]
	[[ $output == *"Message size too large"* ]]
	# only one: the next is stored
	printf 'second\n' | timeout 30 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -p 0 -X message.timeout.ms=5000
	broker_ctl "err Produce 5 10"
	broker_ctl "clear Produce"
	wait_for grep -qx 'ok clear Produce' "$ctl_out"
	printf 'third\n' | timeout 30 kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -p 0 -X message.timeout.ms=5000
	run consume "$TS_TOPIC" 2
	[ "$status" -eq 0 ]
	[ "$(jq -r -s 'map(.payload) | join(",")' <<<"$output")" = "second,third" ]
}

@test "SIGTERM and SIGINT stop it cleanly with exit 0" {
	for sig in TERM INT; do
		start_dev --brokers 2 --topic s:2
		kill "-$sig" "$DEVBROKER_PID"
		rc=0
		exit_status "$DEVBROKER_PID" || rc=$?
		[ "$rc" -eq 0 ]
		[ ! -s "$DEVBROKER_ERR" ]
		# the ports are closed
		run timeout 20 kcat -L -b "$BOOT" -m 2
		[ "$status" -ne 0 ]
	done
}

@test "bad command lines exit 64 with a message; --help and --version exit 0" {
	run -64 ts-devbroker --brokers 0
	[[ ${lines[0]} == "ts-devbroker: --brokers: "* ]]
	run -64 ts-devbroker --topic a:0
	[[ ${lines[0]} == "ts-devbroker: --topic: "* ]]
	run -64 ts-devbroker --topic :3
	[[ ${lines[0]} == "ts-devbroker: --topic :3: topic name must be 1-249 characters" ]]
	run -64 ts-devbroker --frobnicate
	[ "${lines[0]}" = "ts-devbroker: unknown option: --frobnicate" ]
	run -64 ts-devbroker extra
	[ "${lines[0]}" = "ts-devbroker: unexpected argument: extra" ]
	run -64 ts-devbroker --partitions
	[ "${lines[0]}" = "ts-devbroker: option --partitions needs a value" ]
	run -0 ts-devbroker --help
	[[ ${lines[0]} == "usage: ts-devbroker "* ]]
	[[ $output == *"--control"* ]]
	run -0 ts-devbroker --version
	[[ $output =~ ^ts-devbroker\ [0-9]+\.[0-9]+\.[0-9]+\ \(librdkafka\ 2\. ]]
}
