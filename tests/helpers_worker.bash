# tests/helpers_worker.bash: running ts-worker in the bats suites
# (load helpers first, then this).
#
# Every worker gets -X session.timeout.ms=6000: the mock cluster makes the
# next member of a group wait session.timeout.ms - 1 s after the last one
# left or died (NOTES.md), and 6 s is the real broker's minimum.

WORKER_SESSION=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)

# run_worker [ARGS...]: ts-worker in the foreground with --exit-idle 2s
# (unless ARGS give one), bounded by WORKER_TIMEOUT seconds (default 90).
# Sets WORKER_STATUS, WORKER_OUT (stdout file) and WORKER_ERR (stderr file);
# never fails by itself, so the test decides what the status should be.
run_worker() {
	local idle=(--exit-idle 2s) a
	for a in "$@"; do
		[[ $a == --exit-idle* ]] && idle=()
	done
	WORKER_OUT=$(_helpers_fresh worker.out)
	WORKER_ERR=$(_helpers_fresh worker.err)
	WORKER_STATUS=0
	timeout -k 5 "${WORKER_TIMEOUT:-90}" ts-worker "${WORKER_SESSION[@]}" \
		"${idle[@]}" "$@" </dev/null >"$WORKER_OUT" 2>"$WORKER_ERR" ||
		WORKER_STATUS=$?
	export WORKER_OUT WORKER_ERR WORKER_STATUS
	return 0
}

# start_worker [ARGS...]: ts-worker in the background (stopped in teardown);
# sets WORKER_PID, WORKER_OUT, WORKER_ERR.
start_worker() {
	WORKER_OUT=$(_helpers_fresh worker.out)
	WORKER_ERR=$(_helpers_fresh worker.err)
	ts-worker "${WORKER_SESSION[@]}" "$@" </dev/null >"$WORKER_OUT" \
		2>"$WORKER_ERR" 3>&- &
	WORKER_PID=$!
	track_pid "$WORKER_PID" ts-worker
	export WORKER_PID WORKER_OUT WORKER_ERR
}

# wait_exit PID [SECONDS]: wait (bounded) for a background process to end;
# sets EXIT_STATUS.  Fails if it is still running after SECONDS (default 60).
wait_exit() {
	local pid=$1 secs=${2:-60} i
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			EXIT_STATUS=0
			wait "$pid" || EXIT_STATUS=$?
			_helpers_unrecord "$pid"
			return 0
		fi
		sleep 0.1
	done
	_helpers_err "wait_exit: pid $pid still running after ${secs}s"
	return 1
}

# show_worker: the worker's stderr, for a failing test's output.
show_worker() {
	echo "--- worker stderr (${WORKER_ERR:-none}):"
	tail -n 40 "${WORKER_ERR:-/dev/null}" || true
	echo "--- worker stdout:"
	head -n 20 "${WORKER_OUT:-/dev/null}" || true
}

# submit FILE: ts-submit every task of FILE (JSON lines); its stdout (one
# line per task with taskId, partition, offset) into $SUBMITTED.
submit() {
	SUBMITTED=$(_helpers_fresh submitted.jsonl)
	ts-submit "$1" >"$SUBMITTED" || {
		_helpers_err "submit: ts-submit $1 failed"
		return 1
	}
	export SUBMITTED
}

# lines FILE: number of lines in FILE (0 when missing).
lines() {
	local n
	n=$(grep -c . "$1" 2>/dev/null) || true
	printf '%s\n' "${n:-0}"
}

# at_least N FILE: true when FILE has N lines or more (for wait_for).
at_least() {
	(($(lines "$2") >= $1))
}

# record_handler FILE [SLEEP]: a handler command that appends the taskId
# to FILE (one line per run), sleeping SLEEP seconds first; prints its path.
record_handler() {
	local file=$1 nap=${2:-0} h
	h=$(_helpers_fresh record.sh)
	{
		echo '#!/bin/sh'
		[[ $nap == 0 ]] || echo "sleep $nap"
		echo "printf '%s\\n' \"\$TS_TASK_ID\" >>'$file'"
	} >"$h"
	chmod +x "$h"
	printf '%s\n' "$h"
}
