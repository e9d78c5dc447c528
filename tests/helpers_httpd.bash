# tests/helpers_httpd.bash: starting ts-httpd in the bats suites
# (`load helpers; load helpers_httpd`).

# start_httpd [ARGS...]: ts-httpd on a free loopback port with the test's
# broker and topic (from start_broker's environment), waiting (up to
# WAIT_TIMEOUT, default 30 s) until /healthz answers 200.  Sets and exports
# HTTPD_PORT, HTTPD_URL (http://127.0.0.1:PORT; https with --tls-cert),
# HTTPD_PID, HTTPD_LOG (its stdout: the access log), HTTPD_ERR (stderr).
# HTTPD_CURL_OPTS (an array) is passed to the health check (e.g. --cacert).
# TS_HTTPD_BIN runs another build (e.g. one with sanitizers).
start_httpd() {
	local dir port scheme=http a
	for a in "$@"; do [[ $a == --tls-cert* ]] && scheme=https; done
	dir=$(_helpers_fresh httpd)
	mkdir -p "$dir"
	port=$(free_port)
	HTTPD_LOG=$dir/access.jsonl
	HTTPD_ERR=$dir/stderr
	"${TS_HTTPD_BIN:-$TS_TEST_BIN/ts-httpd}" --listen "127.0.0.1:$port" "$@" \
		</dev/null >"$HTTPD_LOG" 2>"$HTTPD_ERR" 3>&- &
	HTTPD_PID=$!
	_helpers_record "$HTTPD_PID" ts-httpd
	HTTPD_PORT=$port
	HTTPD_URL="$scheme://127.0.0.1:$port"
	export HTTPD_PORT HTTPD_URL HTTPD_PID HTTPD_LOG HTTPD_ERR
	local deadline
	deadline=$(($(_helpers_now_ms) + $(_helpers_to_ms "${WAIT_TIMEOUT:-30}")))
	until _httpd_healthy; do
		if [[ -z $(_helpers_starttime "$HTTPD_PID") ]]; then
			_helpers_err "start_httpd: ts-httpd exited: $(cat "$HTTPD_ERR")"
			return 1
		fi
		if (($(_helpers_now_ms) > deadline)); then
			_helpers_err "start_httpd: /healthz not 200 in time; stderr: $(cat "$HTTPD_ERR")"
			return 1
		fi
		sleep 0.1
	done
	return 0
}

_httpd_healthy() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		"${HTTPD_CURL_OPTS[@]}" "$HTTPD_URL/healthz") == 200 ]]
}

# post PATH BODY [CURL-ARGS...]: POST BODY as application/json (unless a
# Content-Type is among the arguments); sets STATUS, BODY (the answer) and
# HEADERS (the answer's header lines, CR removed).
post() {
	local path=$1 data=$2 hfile ctype=(-H 'Content-Type: application/json') a
	shift 2
	for a in "$@"; do [[ ${a,,} == content-type:* ]] && ctype=(); done
	hfile=$(_helpers_dir)/.post-headers
	BODY=$(curl -sS --max-time 60 -D "$hfile" -o - -w '\n%{http_code}' \
		"${ctype[@]}" --data-binary "$data" "$@" "$HTTPD_URL$path") || {
		STATUS=000
		return 0
	}
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
	HEADERS=$(tr -d '\r' <"$hfile")
}

# get PATH [CURL-ARGS...]: like post, for GET.
get() {
	local path=$1 hfile
	shift
	hfile=$(_helpers_dir)/.get-headers
	BODY=$(curl -sS --max-time 60 -D "$hfile" -o - -w '\n%{http_code}' \
		"$@" "$HTTPD_URL$path") || {
		STATUS=000
		return 0
	}
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
	HEADERS=$(tr -d '\r' <"$hfile")
}

# header NAME: the value of header NAME in HEADERS (case-insensitive).
header() {
	awk -v n="${1,,}" 'BEGIN { FS = ": " } tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }' <<<"$HEADERS"
}

# metric NAME_WITH_LABELS: its value from GET /metrics, or nothing.
metric() {
	curl -s --max-time 10 "$HTTPD_URL/metrics" |
		awk -v m="$1" '$1 == m { print $2; exit }'
}

# health_is CODE: true when GET /healthz answers CODE.
health_is() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
		"${HTTPD_CURL_OPTS[@]}" "$HTTPD_URL/healthz") == "$1" ]]
}

# in_flight_at_least N: true when /metrics shows at least N requests in
# flight (the scrape itself counts as one).
in_flight_at_least() {
	local v
	v=$(metric taskstream_http_requests_in_flight)
	[[ -n $v ]] && ((v >= $1))
}

# EMAIL_TASK: a valid email task request.
EMAIL_TASK='{"taskType":"email","payload":{"to":"user@example.com","subject":"Hello","body":"Welcome!"}}'
