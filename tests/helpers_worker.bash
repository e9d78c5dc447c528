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

# start_session_smtpd [--reject-rcpt REGEX] [--drop-data N]: a small SMTP
# server (PIPELINING, no TLS) that tells connections apart, for the tests
# of connection reuse: it logs a JSON line per connection
# ({"event":"connect","conn":N}) and per stored message ({"event":"message",
# "conn":N,"rcpt":[..],"subject":..}) into $SESSION_LOG. --reject-rcpt
# refuses matching recipients (550 5.1.1); --drop-data N closes the
# connection, without a reply and without storing, at the end of the Nth
# message's DATA (counted over the whole server, once). Sets SESSION_PORT.
start_session_smtpd() {
	local script out i
	script=$(_helpers_fresh session_smtpd.py)
	SESSION_LOG=$(_helpers_fresh session_smtpd.jsonl)
	out=$(_helpers_fresh session_smtpd.out)
	: >"$SESSION_LOG"
	cat >"$script" <<'PY'
import argparse, json, re, socket, threading

p = argparse.ArgumentParser()
p.add_argument("--log", required=True)
p.add_argument("--reject-rcpt")
p.add_argument("--drop-data", type=int, default=0)
a = p.parse_args()
reject = re.compile(a.reject_rcpt) if a.reject_rcpt else None
lock = threading.Lock()
state = {"conns": 0, "datas": 0}
log = open(a.log, "a")

def note(obj):
    with lock:
        log.write(json.dumps(obj) + "\n")
        log.flush()

def serve(sock, conn):
    f = sock.makefile("rb")
    def say(text):
        sock.sendall(text.encode() + b"\r\n")
    say("220 session-smtpd ESMTP")
    rcpts, valid = [], 0
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode("utf-8", "replace").strip()
        up = cmd.upper()
        if up.startswith("EHLO"):
            say("250-session-smtpd\r\n250-PIPELINING\r\n250 8BITMIME")
        elif up.startswith("MAIL FROM:"):
            rcpts, valid = [], 0
            say("250 2.1.0 OK")
        elif up.startswith("RCPT TO:"):
            addr = cmd[8:].strip().strip("<>")
            if reject and reject.search(addr):
                say("550 5.1.1 <%s>: Recipient address rejected" % addr)
            else:
                rcpts.append(addr)
                valid += 1
                say("250 2.1.5 OK")
        elif up == "DATA":
            if not valid:
                say("554 5.5.1 No valid recipients")
                continue
            say("354 go ahead")
            body = []
            while True:
                l = f.readline()
                if not l:
                    return
                if l in (b".\r\n", b".\n"):
                    break
                body.append(l)
            with lock:
                state["datas"] += 1
                drop = state["datas"] == a.drop_data
            if drop:
                sock.shutdown(socket.SHUT_RDWR)
                return
            subject = None
            for l in body:
                if l.lower().startswith(b"subject:"):
                    subject = l[8:].decode().strip()
                    break
            note({"event": "message", "conn": conn, "rcpt": rcpts,
                  "subject": subject})
            say("250 2.0.0 OK")
        elif up == "RSET":
            rcpts, valid = [], 0
            say("250 OK")
        elif up == "QUIT":
            say("221 bye")
            return
        else:
            say("250 OK")

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("ready %d" % srv.getsockname()[1], flush=True)
while True:
    s, _ = srv.accept()
    with lock:
        state["conns"] += 1
        conn = state["conns"]
    note({"event": "connect", "conn": conn})
    def run(s=s, conn=conn):
        try:
            serve(s, conn)
        except OSError:
            pass
        finally:
            s.close()
    threading.Thread(target=run, daemon=True).start()
PY
	"$HELPERS_PYTHON" "$script" --log "$SESSION_LOG" "$@" >"$out" 2>&1 &
	track_pid $! session-smtpd
	for i in $(seq 100); do
		SESSION_PORT=$(sed -n 's/^ready //p' "$out")
		[[ -n $SESSION_PORT ]] && break
		sleep 0.1
	done
	[[ -n $SESSION_PORT ]] || {
		_helpers_err "start_session_smtpd: not ready: $(cat "$out")"
		return 1
	}
	export SESSION_LOG SESSION_PORT
}
