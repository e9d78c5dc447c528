# tests/helpers.bash: shared harness for the bats suites (`load helpers`).
#
# Starts real servers on loopback ports (SMTP on aiosmtpd, fakes of the
# Msg91 and Twilio APIs, a generic HTTP sink, ts-devbroker or a real Kafka)
# and stops every one of them in helpers_teardown.  Everything is bounded in
# time and safe under bats' `set -e`; nothing reads stdin.
#
# Every background process started here is recorded (pid + start time, so a
# recycled pid is never killed) in a file of the current scope: the test's
# $BATS_TEST_TMPDIR, or $BATS_FILE_TMPDIR when called from setup_file.  Call
# helpers_teardown from teardown (and from teardown_file if setup_file
# started something); a suite without its own teardown gets one that does.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO
# The tools under test: TS_TEST_BIN (tests/run sets it to BUILD/bin, so
# `tests/run build/address-undefined` runs that build whatever bin/ points
# at), else bin/.
TS_TEST_BIN=${TS_TEST_BIN:-$REPO/bin}
export TS_TEST_BIN
case ":$PATH:" in
*":$TS_TEST_BIN:"*) ;;
*) export PATH="$TS_TEST_BIN:$PATH" ;;
esac
export TS_TEST_BROKER="${TS_TEST_BROKER:-dev}"
# aiosmtpd is installed for the system interpreter only.
HELPERS_PYTHON=/usr/bin/python3
# (-B when running fakes: no __pycache__ in the source tree)
# A developer's ~/.config/taskstream/config must not leak into the tests.
if [[ -n ${BATS_RUN_TMPDIR:-} && -z ${HELPERS_KEEP_XDG:-} ]]; then
	export XDG_CONFIG_HOME="$BATS_RUN_TMPDIR/xdg-config"
fi

# --- internals ------------------------------------------------------------

_helpers_err() { printf '%s\n' "$*" >&2; }

# Directory for this scope's state: the test's tmpdir, else the file's.
_helpers_dir() {
	local d=${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-}}
	if [[ -z $d ]]; then
		d=${TMPDIR:-/tmp}/ts-helpers.$$
		mkdir -p "$d"
	fi
	printf '%s\n' "$d"
}

# Milliseconds since the epoch (bash 5 EPOCHREALTIME, no fork).
_helpers_now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	printf '%s\n' $((10#$t / 1000))
}

# "1.5" -> 1500; "20" -> 20000; "250ms" -> 250.
_helpers_to_ms() {
	local v=$1 int frac
	if [[ $v =~ ^([0-9]+)ms$ ]]; then
		printf '%s\n' "${BASH_REMATCH[1]}"
		return 0
	fi
	v=${v%s}
	if [[ ! $v =~ ^([0-9]*)(\.([0-9]*))?$ ]]; then
		_helpers_err "helpers: not a duration: $1"
		return 1
	fi
	int=${BASH_REMATCH[1]:-0}
	frac=${BASH_REMATCH[3]:-}
	frac=${frac}000
	frac=${frac:0:3}
	printf '%s\n' $((10#$int * 1000 + 10#$frac))
}

# Start time (clock ticks since boot) of PID, empty if gone or a zombie.
_helpers_starttime() {
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	[[ $1 == Z || $1 == X ]] && return 0
	printf '%s\n' "${20}"
}

_helpers_record() {
	local pid=$1 name=$2 start
	start=$(_helpers_starttime "$pid")
	printf '%s %s %s\n' "$pid" "${start:-0}" "$name" >>"$(_helpers_dir)/.helpers-pids"
}

_helpers_unrecord() {
	local f
	f="$(_helpers_dir)/.helpers-pids"
	[[ -f $f ]] || return 0
	awk -v p="$1" '$1 != p' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
}

# True while PID is running and is still the process we started.
_helpers_alive() {
	local now
	now=$(_helpers_starttime "$1")
	[[ -n $now && ( $2 == 0 || $now == "$2" ) ]]
}

# Stop one process: SIGTERM, up to HELPERS_KILL_GRACE seconds (default 5),
# then SIGKILL; reap it if it is our child.
_helpers_stop_pid() {
	local pid=$1 start=$2 i grace_ms
	if _helpers_alive "$pid" "$start"; then
		kill -TERM "$pid" 2>/dev/null || true
		grace_ms=$(_helpers_to_ms "${HELPERS_KILL_GRACE:-5}")
		for ((i = 0; i < grace_ms / 50; i++)); do
			_helpers_alive "$pid" "$start" || break
			sleep 0.05
		done
		if _helpers_alive "$pid" "$start"; then
			_helpers_err "helpers: pid $pid ignored SIGTERM, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 40; i++)); do
				_helpers_alive "$pid" "$start" || break
				sleep 0.05
			done
		fi
	fi
	# Reap it if it is our child; never block on one that survived.
	_helpers_alive "$pid" "$start" || wait "$pid" 2>/dev/null || true
	return 0
}

# Wait (bounded) for a "ready PORT" line in FILE while PID lives.
_helpers_wait_ready() {
	local file=$1 pid=$2 what=$3 timeout_ms=$4 deadline line
	deadline=$(($(_helpers_now_ms) + timeout_ms))
	while :; do
		line=$(sed -n 's/^ready \([0-9][0-9]*\)$/\1/p' "$file" 2>/dev/null | head -n1) || true
		if [[ -n $line ]]; then
			printf '%s\n' "$line"
			return 0
		fi
		if [[ -z $(_helpers_starttime "$pid") ]]; then
			_helpers_err "helpers: $what exited before it was ready"
			return 1
		fi
		if (($(_helpers_now_ms) > deadline)); then
			_helpers_err "helpers: $what not ready after $((timeout_ms / 1000))s"
			return 1
		fi
		sleep 0.05
	done
}

# A fresh path under the scope dir: BASE, or BASE.2, BASE.3 ... if taken.
_helpers_fresh() {
	local p n=2
	p="$(_helpers_dir)/$1"
	local base=$p
	while [[ -e $p ]]; do
		p="$base.$n"
		n=$((n + 1))
	done
	printf '%s\n' "$p"
}

# --- processes --------------------------------------------------------------

# _helpers_spawn IN OUT ERR CMD...: run CMD in the background with only
# stdin/stdout/stderr open (bats' own descriptors, fd 3 and the pipes to
# its formatter, must not leak into servers: a survivor holding them makes
# bats hang).  Sets HELPERS_SPAWNED_PID; the pid is CMD's own (exec).
_helpers_spawn() {
	local in=$1 out=$2 err=$3
	shift 3
	(
		for f in /proc/$BASHPID/fd/*; do
			f=${f##*/}
			if ((f > 2)); then
				{ exec {f}>&-; } 2>/dev/null || true
			fi
		done
		exec "$@" <"$in" >"$out" 2>"$err"
	) &
	HELPERS_SPAWNED_PID=$!
}

# track_pid PID [NAME]: stop PID in helpers_teardown too (e.g. a ts-worker
# started in the background by the test).
track_pid() {
	[[ $1 =~ ^[0-9]+$ ]] || {
		_helpers_err "track_pid: not a pid: $1"
		return 1
	}
	_helpers_record "$1" "${2:-tracked}"
}

# stop_pid PID: stop one recorded (or any own) process now, reap it.
stop_pid() {
	local f pid start name
	f="$(_helpers_dir)/.helpers-pids"
	start=0
	if [[ -f $f ]]; then
		while read -r pid start name; do
			[[ $pid == "$1" ]] && break
			start=0
		done <"$f"
	fi
	_helpers_stop_pid "$1" "$start"
	_helpers_unrecord "$1"
}

# start_bg NAME CMD [ARGS...]: run CMD in the background (stdin /dev/null,
# stdout and stderr to files), stopped by helpers_teardown.  Sets and
# exports <NAME>_PID, <NAME>_OUT, <NAME>_ERR (NAME upper-cased; e.g.
# `start_bg worker ts-worker --exit-idle 2s` gives WORKER_PID, WORKER_OUT).
start_bg() {
	local name=${1:?start_bg NAME CMD...} var dir
	shift
	var=${name^^}
	var=${var//[^A-Z0-9_]/_}
	dir=$(_helpers_fresh "bg-$name")
	mkdir -p "$dir"
	_helpers_spawn /dev/null "$dir/stdout" "$dir/stderr" "$@"
	_helpers_record "$HELPERS_SPAWNED_PID" "bg:$name"
	printf -v "${var}_PID" '%s' "$HELPERS_SPAWNED_PID"
	printf -v "${var}_OUT" '%s' "$dir/stdout"
	printf -v "${var}_ERR" '%s' "$dir/stderr"
	export "${var}_PID" "${var}_OUT" "${var}_ERR"
}

# helpers_teardown: stop everything this scope started, newest first (so a
# worker stops before the broker it talks to), then forget it.
helpers_teardown() {
	local f lines line pid start name
	f="$(_helpers_dir)/.helpers-pids"
	if [[ -f $f ]]; then
		mapfile -t lines < <(tac "$f")
		for line in "${lines[@]}"; do
			read -r pid start name <<<"$line"
			[[ -n $pid ]] || continue
			_helpers_stop_pid "$pid" "$start"
		done
		rm -f "$f"
	fi
	_helpers_close_broker_ctl
	return 0
}

# True when function $1 is missing or bats' own no-op default.  (bats
# defines `teardown() { return 0; }` before it loads a suite, so "is it
# defined" cannot tell whether the suite has one.)
_helpers_noop_fn() {
	local body
	body=$(declare -f "$1") || return 0
	body=${body//[[:space:]]/}
	[[ $body == "$1(){return0}" ]]
}

# A suite without teardown/teardown_file of its own still cleans up; one
# that defines them (before or after `load helpers`) keeps its own and must
# call helpers_teardown there.
if _helpers_noop_fn teardown; then
	teardown() { helpers_teardown; }
fi
if _helpers_noop_fn teardown_file; then
	teardown_file() { helpers_teardown; }
fi

# --- fakes ------------------------------------------------------------------

# free_port: print a free loopback TCP port.
free_port() {
	"$HELPERS_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_fake NAME [ARGS...]: run tests/fakes/NAME.py --port 0 ARGS in the
# background, wait up to 10 s for its "ready PORT" line, set and export
# <NAME>_PORT and <NAME>_PID (NAME upper-cased), <NAME>_OUT/<NAME>_ERR (its
# stdout/stderr files).  Fails, showing the fake's stderr, if it dies first.
start_fake() {
	local name=$1 var dir out err pid port
	shift
	if [[ ! -f $REPO/tests/fakes/$name.py ]]; then
		_helpers_err "start_fake: no such fake: tests/fakes/$name.py"
		return 1
	fi
	var=${name^^}
	var=${var//[^A-Z0-9_]/_}
	dir=$(_helpers_fresh "fake-$name")
	mkdir -p "$dir"
	out=$dir/stdout
	err=$dir/stderr
	_helpers_spawn /dev/null "$out" "$err" \
		"$HELPERS_PYTHON" -B "$REPO/tests/fakes/$name.py" --port 0 "$@"
	pid=$HELPERS_SPAWNED_PID
	_helpers_record "$pid" "fake:$name"
	if ! port=$(_helpers_wait_ready "$out" "$pid" "fake $name" 10000); then
		_helpers_err "--- stderr of $name:"
		cat "$err" >&2 || true
		stop_pid "$pid"
		return 1
	fi
	printf -v "${var}_PORT" '%s' "$port"
	printf -v "${var}_PID" '%s' "$pid"
	printf -v "${var}_OUT" '%s' "$out"
	printf -v "${var}_ERR" '%s' "$err"
	export "${var}_PORT" "${var}_PID" "${var}_OUT" "${var}_ERR"
	return 0
}

# Value of option $1 in the remaining arguments, if given.
_helpers_opt() {
	local want=$1 prev=
	shift
	local a
	for a in "$@"; do
		if [[ $prev == "$want" ]]; then
			printf '%s\n' "$a"
			return 0
		fi
		[[ $a == "$want="* ]] && {
			printf '%s\n' "${a#*=}"
			return 0
		}
		prev=$a
	done
	return 0
}

# start_smtpd [ARGS...]: SMTP server; sets SMTPD_PORT, SMTPD_PID,
# SMTPD_MAILDIR (a Maildir under the test tmpdir, unless --maildir given)
# and SMTPD_LOG (JSON line per accepted message, unless --log given).
start_smtpd() {
	local md log
	md=$(_helpers_opt --maildir "$@")
	log=$(_helpers_opt --log "$@")
	[[ -n $md ]] || md=$(_helpers_fresh maildir)
	[[ -n $log ]] || log=$(_helpers_fresh smtpd.jsonl)
	mkdir -p "$md/tmp" "$md/new" "$md/cur"
	: >>"$log"
	export SMTPD_MAILDIR=$md SMTPD_LOG=$log
	start_fake smtpd --maildir "$md" --log "$log" "$@"
}

# start_msg91 [ARGS...]: Msg91 Flow API fake; MSG91_PORT, MSG91_PID,
# MSG91_LOG (JSON line per request), MSG91_URL (http://127.0.0.1:PORT).
start_msg91() {
	local log
	log=$(_helpers_opt --log "$@")
	[[ -n $log ]] || log=$(_helpers_fresh msg91.jsonl)
	: >>"$log"
	export MSG91_LOG=$log
	start_fake msg91 --log "$log" "$@" || return 1
	export MSG91_URL="http://127.0.0.1:$MSG91_PORT"
}

# start_twilio [ARGS...]: Twilio Messages API fake; TWILIO_PORT, TWILIO_PID,
# TWILIO_LOG, TWILIO_URL.
start_twilio() {
	local log
	log=$(_helpers_opt --log "$@")
	[[ -n $log ]] || log=$(_helpers_fresh twilio.jsonl)
	: >>"$log"
	export TWILIO_LOG=$log
	start_fake twilio --log "$log" "$@" || return 1
	export TWILIO_URL="http://127.0.0.1:$TWILIO_PORT"
}

# start_httpsink [ARGS...]: generic HTTP endpoint; HTTPSINK_PORT,
# HTTPSINK_PID, HTTPSINK_LOG, HTTPSINK_URL.
start_httpsink() {
	local log
	log=$(_helpers_opt --log "$@")
	[[ -n $log ]] || log=$(_helpers_fresh httpsink.jsonl)
	: >>"$log"
	export HTTPSINK_LOG=$log
	start_fake httpsink --log "$log" "$@" || return 1
	export HTTPSINK_URL="http://127.0.0.1:$HTTPSINK_PORT"
}

# --- certificates -----------------------------------------------------------

_helpers_openssl() {
	local out
	if ! out=$(openssl "$@" 2>&1); then
		_helpers_err "openssl $1 failed: $out"
		return 1
	fi
}

# make_cert DIR: self-signed certificate for CN=localhost, SAN
# DNS:localhost,IP:127.0.0.1; sets and exports CERT and KEY (PEM files).
make_cert() {
	local dir=${1:?make_cert DIR}
	mkdir -p "$dir"
	_helpers_openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-addext "basicConstraints=critical,CA:FALSE" \
		-addext "keyUsage=critical,digitalSignature,keyEncipherment" \
		-addext "extendedKeyUsage=serverAuth" \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" || return 1
	export CERT="$dir/cert.pem" KEY="$dir/key.pem"
}

# make_ca_cert DIR: a CA (CA_CERT, CA_KEY) and a server certificate signed
# by it for localhost/127.0.0.1 (CERT, KEY).  Point a client at CA_CERT
# (SSL_CERT_FILE=$CA_CERT, curl --cacert) to verify properly.
make_ca_cert() {
	local dir=${1:?make_ca_cert DIR}
	mkdir -p "$dir"
	_helpers_openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -days 2 -subj "/CN=TaskStream Test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$dir/ca-key.pem" -out "$dir/ca.pem" || return 1
	_helpers_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -subj /CN=localhost \
		-keyout "$dir/server-key.pem" -out "$dir/server.csr" || return 1
	cat >"$dir/server.ext" <<-'EOF'
		basicConstraints = critical, CA:FALSE
		keyUsage = critical, digitalSignature, keyEncipherment
		extendedKeyUsage = serverAuth
		subjectAltName = DNS:localhost, IP:127.0.0.1
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid, issuer
	EOF
	_helpers_openssl x509 -req -in "$dir/server.csr" -days 2 \
		-CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -set_serial "0x$(openssl rand -hex 8)" \
		-extfile "$dir/server.ext" -out "$dir/server.pem" || return 1
	export CA_CERT="$dir/ca.pem" CA_KEY="$dir/ca-key.pem"
	export CERT="$dir/server.pem" KEY="$dir/server-key.pem"
}

# --- broker -----------------------------------------------------------------

# start_broker [PARTITIONS [DEVBROKER-ARGS...]]: fresh topic names
# (TS_TOPIC, TS_DLQ_TOPIC with PARTITIONS partitions each, default 4) and
# group (TS_GROUP), and TS_BROKERS.  TS_TEST_BROKER=dev (default): starts
# ts-devbroker --control (extra arguments passed on, e.g. --brokers 3) with
# its stdin on a FIFO for broker_ctl; sets TS_BROKER_PID, DEVBROKER_OUT
# and DEVBROKER_ERR (its stdout: bootstrap line, then `ok ...` answers to
# broker_ctl; its stderr).  kafka: uses
# $TS_KAFKA_BOOTSTRAP and creates the topics with tests/kafka/create-topic.
start_broker() {
	local parts=${1:-4} base dir out err pid fifo boot
	[[ $# -gt 0 ]] && shift
	if [[ ! $parts =~ ^[1-9][0-9]*$ ]]; then
		_helpers_err "start_broker: PARTITIONS must be a positive number: $parts"
		return 1
	fi
	base="t-${BATS_SUITE_TEST_NUMBER:-0}-$$-$RANDOM"
	export TS_TOPIC="$base" TS_DLQ_TOPIC="$base-dlq" TS_GROUP="$base-group"
	case $TS_TEST_BROKER in
	dev)
		if [[ ! -x $TS_TEST_BIN/ts-devbroker ]]; then
			_helpers_err "start_broker: $TS_TEST_BIN/ts-devbroker not built (make)"
			return 1
		fi
		dir=$(_helpers_fresh devbroker)
		mkdir -p "$dir"
		out=$dir/stdout
		err=$dir/stderr
		fifo=$dir/control
		: >"$out"
		mkfifo "$fifo"
		# Held open read-write by this shell: opening never blocks, and
		# the broker never sees EOF on stdin while the test runs.
		exec {HELPERS_CTL_FD}<>"$fifo"
		_helpers_spawn "$fifo" "$out" "$err" \
			stdbuf -oL "$TS_TEST_BIN/ts-devbroker" --control \
			--topic "$TS_TOPIC:$parts" --topic "$TS_DLQ_TOPIC:$parts" "$@"
		pid=$HELPERS_SPAWNED_PID
		_helpers_record "$pid" devbroker
		export TS_BROKER_PID=$pid TS_BROKER_CTL=$fifo
		export DEVBROKER_OUT=$out DEVBROKER_ERR=$err
		local deadline line
		deadline=$(($(_helpers_now_ms) + 20000))
		while :; do
			line=$(head -n1 "$out" 2>/dev/null) || true
			# the line is complete once a second line or EOL exists
			if [[ -n $line ]] && [[ $(wc -l <"$out") -ge 1 ]]; then
				boot=$line
				break
			fi
			if [[ -z $(_helpers_starttime "$pid") ]]; then
				_helpers_err "start_broker: ts-devbroker exited: $(cat "$err")"
				stop_broker
				return 1
			fi
			if (($(_helpers_now_ms) > deadline)); then
				_helpers_err "start_broker: no bootstrap line from ts-devbroker in 20s: $(cat "$err")"
				stop_broker
				return 1
			fi
			sleep 0.05
		done
		export TS_BROKERS=$boot
		;;
	kafka)
		if [[ -z ${TS_KAFKA_BOOTSTRAP:-} ]]; then
			_helpers_err "start_broker: TS_TEST_BROKER=kafka but TS_KAFKA_BOOTSTRAP is unset (tests/run starts Kafka and sets it)"
			return 1
		fi
		export TS_BROKERS=$TS_KAFKA_BOOTSTRAP
		"$REPO/tests/kafka/create-topic" "$TS_KAFKA_BOOTSTRAP" "$TS_TOPIC" "$parts" || {
			_helpers_err "start_broker: cannot create topic $TS_TOPIC"
			return 1
		}
		"$REPO/tests/kafka/create-topic" "$TS_KAFKA_BOOTSTRAP" "$TS_DLQ_TOPIC" "$parts" || {
			_helpers_err "start_broker: cannot create topic $TS_DLQ_TOPIC"
			return 1
		}
		;;
	*)
		_helpers_err "start_broker: TS_TEST_BROKER must be dev or kafka, not '$TS_TEST_BROKER'"
		return 1
		;;
	esac
	return 0
}

# broker_ctl LINE...: send one fault-injection line to ts-devbroker
# (`down 1`, `up 1`, `rtt 1 500`).  dev broker only.
broker_ctl() {
	if [[ $TS_TEST_BROKER != dev ]]; then
		_helpers_err "broker_ctl: only with TS_TEST_BROKER=dev (now '$TS_TEST_BROKER')"
		return 1
	fi
	if [[ -z ${TS_BROKER_CTL:-} || ! -p $TS_BROKER_CTL ]]; then
		_helpers_err "broker_ctl: no ts-devbroker started (start_broker)"
		return 1
	fi
	if [[ -z $(_helpers_starttime "${TS_BROKER_PID:-0}") ]]; then
		_helpers_err "broker_ctl: ts-devbroker (pid ${TS_BROKER_PID:-?}) is not running"
		return 1
	fi
	printf '%s\n' "$*" >"$TS_BROKER_CTL"
}

_helpers_close_broker_ctl() {
	if [[ -n ${HELPERS_CTL_FD:-} ]]; then
		exec {HELPERS_CTL_FD}>&- 2>/dev/null || true
		unset HELPERS_CTL_FD
	fi
	return 0
}

# stop_broker: stop the ts-devbroker of this test (no-op for kafka).
stop_broker() {
	if [[ -n ${TS_BROKER_PID:-} ]]; then
		stop_pid "$TS_BROKER_PID"
		unset TS_BROKER_PID
	fi
	_helpers_close_broker_ctl
	if [[ -n ${TS_BROKER_CTL:-} ]]; then
		rm -f "$TS_BROKER_CTL"
		unset TS_BROKER_CTL
	fi
	return 0
}

# --- reading results --------------------------------------------------------

# murmur2_check N: reads "key partition" lines, prints those not on the
# partition the Java client's murmur2 gives their key among N (written
# apart from lib/kafka.c, from Kafka's definition).
murmur2_check() {
	python3 -c '
import sys
def murmur2(b):
    m, h = 0x5bd1e995, (0x9747b28c ^ len(b)) & 0xffffffff
    n = len(b) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(b[i:i + 4], "little") * m & 0xffffffff
        k = (k ^ k >> 24) * m & 0xffffffff
        h = (h * m & 0xffffffff) ^ k
    tail = b[n:]
    for i in reversed(range(len(tail))):
        h ^= tail[i] << (8 * i)
    if tail:
        h = h * m & 0xffffffff
    h = (h ^ h >> 13) * m & 0xffffffff
    return h ^ h >> 15
for line in sys.stdin:
    key, part = line.rstrip("\n").rsplit(" ", 1)
    if (murmur2(key.encode()) & 0x7fffffff) % int(sys.argv[1]) != int(part):
        print(line, end="")
' "$1"
}


# One read of TOPIC from the beginning to the end, as JSON lines; headers
# normalised to an object {"name":"value"} ({} when there are none).
# kcat's complaints go to file ERRFILE.  fetch.wait.max.ms=10: with the
# default 500 ms each read of an idle partition waits that long for the EOF.
_helpers_consume_once() {
	local topic=$1 secs=$2 errfile=$3 rc=0 raw
	raw=$(timeout -k 2 "$secs" kcat -C -b "$TS_BROKERS" -t "$topic" \
		-o beginning -e -J -q -X fetch.wait.max.ms=10 2>"$errfile") || rc=$?
	((rc == 0)) || printf 'kcat exit %s\n' "$rc" >>"$errfile"
	[[ -n $raw ]] || return $rc
	jq -c '.headers = ((.headers // []) | if type == "array"
		then (. as $h | reduce range(0; length; 2) as $i ({}; . + {($h[$i]): $h[$i + 1]}))
		else . end)' <<<"$raw"
	return $rc
}

# consume TOPIC [N] [TIMEOUT]: print TOPIC's records from the beginning,
# one kcat -J object per line (topic, partition, offset, tstype, ts, broker,
# headers, key, payload), headers as an object {"name":"value"}.  Without N
# one read to the end of every partition; with N, poll until at least N
# records are there, failing after TIMEOUT seconds (default 20) with what
# was found.
consume() {
	local topic=${1:?consume TOPIC [N] [TIMEOUT]} n=${2:-} timeout=${3:-20}
	local out best= count best_count=0 deadline left errfile msg
	if [[ -z ${TS_BROKERS:-} ]]; then
		_helpers_err "consume: TS_BROKERS unset (start_broker first)"
		return 1
	fi
	errfile=$(_helpers_dir)/.consume.err
	deadline=$(($(_helpers_now_ms) + $(_helpers_to_ms "$timeout")))
	if [[ -z $n ]]; then
		_helpers_consume_once "$topic" "$timeout" "$errfile" || {
			_helpers_err "consume: $topic: $(head -c 2000 "$errfile")"
			return 1
		}
		return 0
	fi
	while :; do
		# Each read gets at least 3 s, so the last one is not cut short.
		left=$(((deadline - $(_helpers_now_ms)) / 1000 + 1))
		((left >= 3)) || left=3
		out=$(_helpers_consume_once "$topic" "$left" "$errfile") || true
		count=0
		[[ -z $out ]] || count=$(grep -c . <<<"$out") || true
		if ((count >= n)); then
			printf '%s\n' "$out"
			return 0
		fi
		if ((count >= best_count)); then
			best=$out
			best_count=$count
		fi
		if (($(_helpers_now_ms) >= deadline)); then
			[[ -z $best ]] || printf '%s\n' "$best"
			msg=$(head -c 2000 "$errfile")
			_helpers_err "consume: $topic: $best_count of $n records after ${timeout}s${msg:+; kcat said: $msg}"
			return 1
		fi
		sleep 0.1
	done
}

# wait_for CMD [ARGS...]: run CMD every 0.1 s until it succeeds (return 0)
# or WAIT_TIMEOUT seconds (default 20) pass (return 1, with a message).
wait_for() {
	local deadline
	deadline=$(($(_helpers_now_ms) + $(_helpers_to_ms "${WAIT_TIMEOUT:-20}")))
	while :; do
		if "$@"; then
			return 0
		fi
		if (($(_helpers_now_ms) >= deadline)); then
			_helpers_err "wait_for: timed out after ${WAIT_TIMEOUT:-20}s: $*"
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# maildir_files DIR: paths of the messages delivered into Maildir DIR (new/
# and cur/), oldest first.
maildir_files() {
	local dir=${1:?maildir_files DIR} sub
	for sub in new cur; do
		[[ -d $dir/$sub ]] || continue
		find "$dir/$sub" -maxdepth 1 -type f -printf '%T@ %p\n'
	done | sort -n | cut -d' ' -f2-
	return 0
}

# maildir_count DIR: number of messages delivered into Maildir DIR.
maildir_count() {
	local dir=${1:?maildir_count DIR} n
	n=$(maildir_files "$dir" | grep -c .) || true
	printf '%s\n' "${n:-0}"
}
