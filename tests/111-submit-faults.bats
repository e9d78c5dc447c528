#!/usr/bin/env bats
# ts-submit against a broker that fails on purpose (ts-devbroker --control),
# and ts-submit stopped by signals. Checks that every task is delivered
# exactly once or reported (exit status, stderr, --rejects), never lost.

bats_require_minimum_version 1.5.0

load helpers

setup() {
	start_broker 4
	IN=$BATS_TEST_TMPDIR
	CTL_OUT=$(dirname "$TS_BROKER_CTL")/stdout
}

teardown() {
	helpers_teardown
}

email() {
	printf '{"taskType":"email","payload":{"to":"user%s@example.com","subject":"Hello %s","body":"Body %s"}}\n' "$1" "$1" "$1"
}

ctl() { # send a control line and wait for the broker's answer
	broker_ctl "$1"
	wait_for grep -qxF "ok $1" "$CTL_OUT"
}

lines_in() { local n=0; if [[ -f $1 ]]; then n=$(grep -c . "$1" || true); fi; echo "${n:-0}"; }
has_lines() { (($(lines_in "$1") >= $2)); }

# bytes ts-submit (pid $1) has read from its stdin
read_pos() { sed -n 's/^pos:[[:space:]]*//p' "/proc/$1/fdinfo/0" 2>/dev/null; }
has_read() { [[ $(read_pos "$1") == "$2" ]]; }

# nothing waits unread in FIFO $1
fifo_empty() {
	[[ $("$HELPERS_PYTHON" -c 'import array, fcntl, os, sys, termios
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
n = array.array("i", [0])
fcntl.ioctl(fd, termios.FIONREAD, n)
print(n[0])' "$1") == 0 ]]
}

# exit status of our background child $1 (bounded)
exit_status() {
	WAIT_TIMEOUT=${2:-60} wait_for eval "! kill -0 $1 2>/dev/null"
	wait "$1"
}

# start_submit FEED ARGS...: ts-submit in the background reading FEED,
# holding no other descriptor of ours (not bats' fd 3, not the FIFO's
# write end, which would keep it from ever seeing the end of its input).
start_submit() {
	local feed=$1
	shift
	(
		for f in /proc/$BASHPID/fd/*; do
			f=${f##*/}
			if ((f > 2)); then
				{ exec {f}>&-; } 2>/dev/null || true
			fi
		done
		exec ts-submit "$@"
	) <"$feed" >"$IN/out" 2>"$IN/err" &
	SUB=$!
	track_pid "$SUB" ts-submit
}

exactly_once() { # N: stdout and topic agree, N distinct tasks, no duplicate
	local n=$1 records
	[ "$(lines_in "$IN/out")" -eq "$n" ]
	[ "$(jq -r .taskId "$IN/out" | sort -u | wc -l)" -eq "$n" ]
	records=$(consume "$TS_TOPIC" "$n")
	[ "$(grep -c . <<<"$records")" -eq "$n" ]
	diff <(jq -r .taskId "$IN/out" | sort) <(jq -r .key <<<"$records" | sort)
	[ "$(jq -r '.payload | fromjson | .payload.to' <<<"$records" | sort -u | wc -l)" -eq "$n" ]
	diff <(jq -r '"\(.taskId) \(.partition) \(.offset)"' "$IN/out" | sort) \
		<(jq -r '"\(.key) \(.partition) \(.offset)"' <<<"$records" | sort)
}

@test "broker down and back mid-stream: every task delivered exactly once" {
	mkfifo "$IN/feed"
	exec {feed}<>"$IN/feed"
	start_submit "$IN/feed"
	for i in $(seq 1 300); do email "$i"; done >&"$feed"
	wait_for has_lines "$IN/out" 300

	# Down while nothing is in flight (the 2.0 mock cluster does not
	# deduplicate an idempotent producer's retry of a request it stored
	# but never answered; real Kafka does), tasks queued meanwhile.
	ctl "down 1"
	for i in $(seq 301 600); do email "$i"; done >&"$feed"
	wait_for fifo_empty "$IN/feed" # ts-submit has taken them in
	[ "$(lines_in "$IN/out")" -eq 300 ]
	ctl "up 1"
	wait_for has_lines "$IN/out" 600

	# a slow broker: requests stay in flight for a while
	ctl "rtt 1 300"
	for i in $(seq 601 800); do email "$i"; done >&"$feed"
	ctl "rtt 1 0"
	for i in $(seq 801 1000); do email "$i"; done >&"$feed"
	exec {feed}>&-
	rc=0
	exit_status "$SUB" 120 || rc=$?
	[ "$rc" -eq 0 ]
	exactly_once 1000
	[ "$(jq -s -c 'map(.line) | sort == [range(1; 1001)]' "$IN/out")" = true ]
}

@test "broker down for longer than message.timeout.ms: exit 75, rejects complete; piped back in, all delivered" {
	for i in $(seq 1 20); do email "$i"; done >"$IN/first"
	for i in $(seq 21 40); do email "$i"; done >"$IN/second"
	cat "$IN/first" "$IN/second" >"$IN/in"
	ctl "down 1"
	start_submit "$IN/in" --rejects "$IN/rejects" -X message.timeout.ms=2000
	rc=0
	exit_status "$SUB" || rc=$?
	[ "$rc" -eq 75 ]
	diff <(sort "$IN/in") <(sort "$IN/rejects")
	[ "$(grep -c 'not delivered: Local: Message timed out$' "$IN/err")" -eq 40 ]
	[ "$(lines_in "$IN/out")" -eq 0 ]

	# piped back in once the broker is up, the rejects all go through
	ctl "up 1"
	mv "$IN/rejects" "$IN/retry"
	start_submit "$IN/retry" --rejects "$IN/rejects"
	rc=0
	exit_status "$SUB" || rc=$?
	[ "$rc" -eq 0 ]
	[ ! -s "$IN/rejects" ]
	exactly_once 40
}

@test "a broker slower than message.timeout.ms: undelivered, exit 75" {
	ctl "rtt 1 3000"
	email 1 >"$IN/in"
	start_submit "$IN/in" --rejects "$IN/rejects" -X message.timeout.ms=1000
	rc=0
	exit_status "$SUB" || rc=$?
	[ "$rc" -eq 75 ]
	grep -q '^ts-submit: stdin:1: task [0-9a-f-]* not delivered: Local: Message timed out$' "$IN/err"
	diff "$IN/in" "$IN/rejects"
}

@test "SIGTERM with the writer idle: stops reading at once, exits 0 when all it read was confirmed" {
	mkfifo "$IN/feed"
	exec {feed}<>"$IN/feed"
	start_submit "$IN/feed"
	for i in $(seq 1 30); do email "$i"; done >&"$feed"
	printf '{"taskType":"email","pay' >&"$feed" # half a task: dropped, not an error
	wait_for has_lines "$IN/out" 30
	kill -TERM "$SUB"
	rc=0
	exit_status "$SUB" 20 || rc=$?
	exec {feed}>&-
	[ "$rc" -eq 0 ]
	grep -qx 'ts-submit: warning: stdin:31: stopped by a signal; input from here on was not read' "$IN/err"
	[ -z "$(grep -v -e '^ts-submit: warning: waiting for' -e 'stopped by a signal' "$IN/err")" ]
	exactly_once 30
}

@test "SIGTERM mid-stream: waits for outstanding reports, delivered when the broker comes back" {
	for i in $(seq 1 50); do email "$i"; done >"$IN/in"
	ctl "down 1"
	start_submit "$IN/in"
	wait_for has_read "$SUB" "$(wc -c <"$IN/in")"
	kill -TERM "$SUB"
	# it is still waiting: nothing could be delivered yet
	kill -0 "$SUB"
	[ "$(lines_in "$IN/out")" -eq 0 ]
	ctl "up 1"
	rc=0
	exit_status "$SUB" || rc=$?
	[ "$rc" -eq 0 ]
	exactly_once 50
}

@test "SIGTERM mid-stream with the broker gone: exit 75 after message.timeout.ms, rejects complete" {
	for i in $(seq 1 25); do email "$i"; done >"$IN/in"
	ctl "down 1"
	start_submit "$IN/in" --rejects "$IN/rejects" -X message.timeout.ms=3000
	wait_for has_read "$SUB" "$(wc -c <"$IN/in")"
	kill -TERM "$SUB"
	rc=0
	exit_status "$SUB" || rc=$?
	[ "$rc" -eq 75 ]
	diff <(sort "$IN/in") <(sort "$IN/rejects")
	[ "$(grep -c 'not delivered' "$IN/err")" -eq 25 ]
}

@test "a second SIGTERM gives up on queued tasks at once: exit 75, rejects complete" {
	for i in $(seq 1 25); do email "$i"; done >"$IN/in"
	ctl "down 1"
	start_submit "$IN/in" --rejects "$IN/rejects" # default message.timeout.ms: 5 minutes
	wait_for has_read "$SUB" "$(wc -c <"$IN/in")"
	kill -TERM "$SUB"
	wait_for grep -q '^ts-submit: warning: waiting for [0-9]* delivery report(s); another SIGINT or SIGTERM gives up on them$' "$IN/err"
	kill -0 "$SUB"
	kill -TERM "$SUB"
	rc=0
	exit_status "$SUB" 30 || rc=$?
	[ "$rc" -eq 75 ]
	diff <(sort "$IN/in") <(sort "$IN/rejects")
	grep -q '^ts-submit: warning: second signal: giving up on [0-9]* queued task(s)$' "$IN/err"
	[ "$(grep -c 'not delivered: Local: Purged in queue$' "$IN/err")" -eq 25 ]
}
