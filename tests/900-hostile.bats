#!/usr/bin/env bats
# Hostile input at every entry point (issue 9): the corpus in
# tests/data/hostile/ (plus the 10 MB inputs its `generate` writes) goes to
# ts-submit, ts-send --json, ts-httpd (bodies and raw requests) and, as
# Kafka records, to ts-worker.  Every input must give a clear error or a
# dead letter: never a crash, a hang, a lost task or an injected header.
#
# The rules for the corpus: a task whose taskId starts with `good-` is
# valid and may (in a mixed stream: must) be accepted; nothing else in the
# corpus is.  A file is "quiet" (exit 0, no error) only if it has no value
# at all (empty.json, whitespace-only.json) or only good tasks.

bats_require_minimum_version 1.5.0

load helpers
load helpers_httpd

H="$REPO/tests/data/hostile"
# Exit statuses that mean a crash, a sanitizer report or a hang (timeout).
CRASHED='^(7[0-9]|12[4-9]|1[3-9][0-9]|2[0-9][0-9])$'

setup_file() {
	export BIG="$BATS_FILE_TMPDIR/big"
	"$HELPERS_PYTHON" "$H/generate" "$BIG"
}

teardown() {
	helpers_teardown
}

# Every hostile stream: the checked-in files and the generated big ones.
inputs() {
	local f
	for f in "$H"/*.json "$H"/*.jsonl "$H"/*.bin "$BIG"/*; do
		[[ -f $f ]] && printf '%s\n' "$f"
	done
}

# The taskIds of the good tasks in FILE, sorted.
good_ids() {
	grep -aoE '"taskId": *"good-[^"]*"' "$1" | sed -E 's/.*"(good-[^"]*)"$/\1/' | sort -u || true
}

# quiet_file TOOL FILE: true when FILE holds nothing TOOL must refuse (see
# the header; ts-send has no size limit, so it sends the 10 MB body; a
# UTF-8 byte order mark at the start of a stream is skipped, as cJSON does
# in ts-httpd and ts-worker).
quiet_file() {
	case $(basename "$2") in
	empty.json | whitespace-only.json | crlf-key.json | bom-then-task.json) return 0 ;;
	big-body-10mb.json) [[ $1 == ts-send ]] && return 0 ;;
	esac
	return 1
}

# none CMD...: fails when CMD succeeds (a bare `! CMD` never fails a test).
none() {
	! "$@"
}

# Collect a failure without stopping, so one run names every bad input.
FAILS=
fail_on() { FAILS+="$1: $2"$'\n'; }
report() {
	if [[ -n $FAILS ]]; then
		printf '%s' "$FAILS" | head -n 60 >&2
		return 1
	fi
}

# check_stream TOOL FILE STATUS OUT ERR: the rules every stream tool keeps
# for one input (exit status, one-line diagnostics naming stdin and a
# line, no echo of a huge input, JSON on stdout, only good tasks taken).
# Sets TAKEN to the good taskIds the tool took.
check_stream() {
	local tool=$1 f=$2 rc=$3 out=$4 err=$5 name want line
	name=$(basename "$f")
	if [[ $rc =~ $CRASHED ]]; then
		fail_on "$name" "$tool exit $rc: $(head -c 300 "$err")"
		return
	fi
	if quiet_file "$tool" "$f"; then want=0; else want=65; fi
	[[ $rc == "$want" ]] || fail_on "$name" "$tool exit $rc, want $want: $(head -c 200 "$err")"
	if [[ $want == 65 ]] && ! grep -qE "^$tool: stdin:[0-9]+: " "$err"; then
		fail_on "$name" "$tool gave no 'stdin:LINE:' error"
	fi
	while IFS= read -r line; do
		[[ $line =~ ^$tool:\ [a-z] ]] || fail_on "$name" "stderr line not '$tool: ...': ${line:0:100}"
		((${#line} < 1000)) || fail_on "$name" "stderr line of ${#line} bytes (input echoed?)"
	done <"$err"
	if [[ -s $out ]] && ! jq -e -s 'all(.[]; type == "object")' "$out" >/dev/null 2>&1; then
		fail_on "$name" "stdout is not JSON lines: $(head -c 200 "$out")"
	fi
}

# check_taken FILE TAKEN ERR: the tasks a tool took are good ones, and a
# good one it did not take sits inside a reported oversized
# value (its end cannot be found without reading it all).
check_taken() {
	local f=$1 taken=$2 err=$3 name id
	name=$(basename "$f")
	for id in $taken; do
		[[ $id == good-* ]] || fail_on "$name" "took a bad task: $id"
	done
	for id in $(good_ids "$f"); do
		grep -qxF "$id" <<<"$taken" && continue
		grep -qE 'larger than|over the' "$err" ||
			fail_on "$name" "good task $id lost without a truncation error"
	done
}

@test "ts-submit --dry-run: every hostile stream gets exit 65 and one-line errors, only good tasks out" {
	local f out=$BATS_TEST_TMPDIR/out err=$BATS_TEST_TMPDIR/err rc n=0
	while IFS= read -r f; do
		n=$((n + 1))
		rc=0
		timeout 60 ts-submit --dry-run <"$f" >"$out" 2>"$err" || rc=$?
		check_stream ts-submit "$f" "$rc" "$out" "$err"
		check_taken "$f" "$(jq -r '.taskId' "$out" 2>/dev/null | sort -u)" "$err"
	done < <(inputs)
	((n > 100))
	report
}

@test "ts-submit: the whole corpus as FILE arguments puts exactly the good tasks on Kafka" {
	start_broker 2
	local files=() f rc=0
	while IFS= read -r f; do files+=("$f"); done < <(inputs)
	timeout 120 ts-submit "${files[@]}" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
	[[ $rc == 65 ]] || { cat "$BATS_TEST_TMPDIR/err" >&2; false; }
	# errors name the file and line
	grep -qE '^ts-submit: .*/utf8-invalid\.json:1: invalid UTF-8' "$BATS_TEST_TMPDIR/err"
	grep -qE '^ts-submit: .*/crlf-subject\.json:1: payload\.subject: must not contain CR or LF' "$BATS_TEST_TMPDIR/err"
	grep -qE '^ts-submit: .*/mixed-good-bad\.jsonl:4: ' "$BATS_TEST_TMPDIR/err"
	# delivery reports: good tasks only, and the same ones are on the topic
	jq -r .taskId "$BATS_TEST_TMPDIR/out" | sort >"$BATS_TEST_TMPDIR/reported"
	n=$(grep -c . "$BATS_TEST_TMPDIR/reported")
	((n >= 10))
	none grep -v '^good-' "$BATS_TEST_TMPDIR/reported"
	consume "$TS_TOPIC" "$n" 30 >"$BATS_TEST_TMPDIR/records"
	jq -r '.payload | fromjson | .taskId' "$BATS_TEST_TMPDIR/records" | sort >"$BATS_TEST_TMPDIR/onkafka"
	diff "$BATS_TEST_TMPDIR/reported" "$BATS_TEST_TMPDIR/onkafka"
	# exactly these: every good task of the mixed streams (a cut-off line
	# does not swallow the lines after it: good-4..6 of mixed-good-bad.jsonl
	# follow its truncated line 7), the ones after long lines, the lone
	# good ones; not the 10 MB body (over --max-task)
	printf '%s\n' good-1 good-1 good-1 good-2 good-2 good-2 good-3 good-3 \
		good-4 good-5 good-6 good-after-long-line good-after-long-line \
		good-bom good-crlf-key good-unbalanced >"$BATS_TEST_TMPDIR/want"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/onkafka"
	# no record header came from the input
	none jq -e -s 'any(.[]; .headers != {})' "$BATS_TEST_TMPDIR/records"
}

@test "ts-send --json: every hostile stream gets exit 65 and one-line errors; only good mail is delivered, with clean headers" {
	local f out=$BATS_TEST_TMPDIR/out err=$BATS_TEST_TMPDIR/err rc md
	md=$BATS_TEST_TMPDIR/maildir
	local delivered=0 want_mail=0
	while IFS= read -r f; do
		rc=0
		timeout 60 ts-send --json --email-url "maildir:$md" \
			--sms-url "file:$BATS_TEST_TMPDIR/sms.jsonl" \
			--from sender@example.com <"$f" >"$out" 2>"$err" || rc=$?
		check_stream ts-send "$f" "$rc" "$out" "$err"
		local sent
		sent=$(jq -r 'select(.status == "sent") | .taskId' "$out" 2>/dev/null | sort -u)
		check_taken "$f" "$sent" "$err"
		delivered=$((delivered + $(grep -c . <<<"$sent" || true)))
	done < <(inputs)
	report
	((delivered >= 10))
	[[ $(maildir_count "$md") == "$delivered" ]]
	[[ ! -e $BATS_TEST_TMPDIR/sms.jsonl ]]
	# no message carries an injected or unexpected header
	mapfile -t msgs < <(maildir_files "$md")
	"$HELPERS_PYTHON" "$H/check-headers" "${msgs[@]}"
}

@test "ts-httpd POST /tasks: every hostile body gets a 4xx JSON error (NDJSON: per line); the server stays up" {
	start_broker 2
	start_httpd
	local f name code ct body=$BATS_TEST_TMPDIR/body
	while IFS= read -r f; do
		name=$(basename "$f")
		# one task as application/json
		code=$(curl -s -m 60 -o "$body" -w '%{http_code}' -H 'Content-Type: application/json' \
			--data-binary "@$f" "$HTTPD_URL/tasks") || true
		case $code in
		400 | 413)
			[[ $code == 413 ]] || jq -e '(.error | type == "string") and (.error | length > 0) and has("field")' "$body" >/dev/null ||
				fail_on "$name" "json $code without an error object: $(head -c 200 "$body")"
			;;
		202)
			jq -e '.taskId | startswith("good-")' "$body" >/dev/null ||
				fail_on "$name" "json 202 for a bad task: $(head -c 200 "$body")"
			;;
		*) fail_on "$name" "json: HTTP $code: $(head -c 200 "$body")" ;;
		esac
		# the same as NDJSON: one answer line per input line
		code=$(curl -s -m 60 -o "$body" -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
			--data-binary "@$f" "$HTTPD_URL/tasks") || true
		case $code in
		413) ;;
		200)
			if [[ -s $body ]] && ! jq -e -s 'all(.[]; (.status == 400 and (.error | length > 0)) or (.status == 202 and (.taskId | startswith("good-"))))' "$body" >/dev/null; then
				fail_on "$name" "ndjson: a line neither 400 nor a good 202: $(head -c 300 "$body")"
			fi
			;;
		*) fail_on "$name" "ndjson: HTTP $code: $(head -c 200 "$body")" ;;
		esac
		kill -0 "$HTTPD_PID" 2>/dev/null || { fail_on "$name" "ts-httpd died: $(tail -c 500 "$HTTPD_ERR")"; break; }
	done < <(inputs)
	report
	# NDJSON answers line by line, so every good task of a mixed stream is in
	code=$(curl -s -m 60 -o "$body" -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
		--data-binary "@$H/mixed-good-bad.jsonl" "$HTTPD_URL/tasks")
	[[ $code == 200 ]]
	[[ $(jq -r 'select(.status == 202) | .taskId' "$body" | sort | tr '\n' ' ') == "good-1 good-2 good-3 good-4 good-5 good-6 " ]]
	[[ $(jq -s 'map(select(.status == 400)) | length' "$body") == 6 ]]
	curl -sf -m 10 "$HTTPD_URL/healthz" >/dev/null
	# only good tasks reached Kafka
	consume "$TS_TOPIC" >"$BATS_TEST_TMPDIR/records"
	[[ $(grep -c . "$BATS_TEST_TMPDIR/records") -ge 6 ]]
	jq -e -s 'all(.[]; .payload | fromjson | .taskId | startswith("good-"))' "$BATS_TEST_TMPDIR/records"
	none grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "$HTTPD_ERR"
}

@test "ts-httpd: hostile raw requests (headers, framing, methods, paths) get an answer or a close, never a 5xx, a bad taskId or a bad header on Kafka" {
	start_broker 2
	start_httpd --email-url "maildir:$BATS_TEST_TMPDIR/maildir" --from sender@example.com
	run --separate-stderr "$HELPERS_PYTHON" "$H/rawhttp" "$HTTPD_PORT" "$H"/http/*.req
	[[ $status == 0 ]]
	local name code rest n=0
	while read -r name code rest; do
		n=$((n + 1))
		case $code in
		2[0-9][0-9])
			if [[ $code == 202 ]]; then
				id=$(jq -r .taskId <<<"$rest")
				[[ $id =~ ^[A-Za-z0-9._:-]{1,128}$ ]] || fail_on "$name" "accepted with taskId '$id'"
			fi
			;;
		4[0-9][0-9] | 501 | 505 | waiting) ;;
		closed) [[ $name == request-* ]] || fail_on "$name" "closed without an answer" ;;
		*) fail_on "$name" "HTTP $code: ${rest:0:200}" ;;
		esac
	done <<<"$output"
	((n == $(ls "$H"/http/*.req | wc -l)))
	# the notification API refused every hostile email
	grep -qE '^email-api-crlf-subject 400 .*"field":"subject"' <<<"$output"
	grep -qE '^email-api-crlf-to 400 .*"field":"to"' <<<"$output"
	grep -qE '^idempotency-key-path 400 .*Idempotency-Key' <<<"$output"
	[[ $(maildir_count "$BATS_TEST_TMPDIR/maildir") == 0 ]]
	report
	kill -0 "$HTTPD_PID"
	curl -sf -m 10 "$HTTPD_URL/healthz" >/dev/null
	# what was accepted is a valid task with valid headers
	consume "$TS_TOPIC" >"$BATS_TEST_TMPDIR/records"
	jq -e -s 'length > 0 and all(.[]; (.payload | fromjson | .taskType == "report")
		and (.headers | to_entries | all(.key == "traceparent" and (.value | test("^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")))))' \
		"$BATS_TEST_TMPDIR/records"
	none grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "$HTTPD_ERR"
}

@test "ts-worker: every hostile record is dead-lettered with its bytes and headers, good ones delivered, none lost" {
	start_broker 2
	local f files=() n
	for f in "$H"/*.json "$H"/*.jsonl "$H"/*.bin; do
		[[ -s $f ]] && files+=("$f")
	done
	# one record per file (kcat -P FILE: the whole file is the value)
	kcat -b "$TS_BROKERS" -t "$TS_TOPIC" -P -p 0 "${files[@]}"
	# an empty value and a NULL value, with keys
	printf 'empty-key:\n' | kcat -b "$TS_BROKERS" -t "$TS_TOPIC" -P -p 1 -K:
	printf 'null-key:\n' | kcat -b "$TS_BROKERS" -t "$TS_TOPIC" -P -p 1 -K: -Z
	# hostile record headers on good tasks
	printf '%s\n' '{"taskId":"good-h1","taskType":"email","payload":{"to":"user@example.com","subject":"h1","body":"b"}}' |
		kcat -b "$TS_BROKERS" -t "$TS_TOPIC" -P -p 1 -H $'traceparent=00-zz\r\nBcc: evil@example.com'
	printf '%s\n' '{"taskId":"good-h2","taskType":"email","payload":{"to":"user@example.com","subject":"h2","body":"b"}}' |
		kcat -b "$TS_BROKERS" -t "$TS_TOPIC" -P -p 1 -H $'x-bin=\x01\xff\x7f' -H 'traceparent='
	# good tasks after all that
	for i in 1 2 3; do
		printf '{"taskId":"good-w%s","taskType":"email","payload":{"to":"user@example.com","subject":"w%s","body":"b"}}\n' "$i" "$i"
	done | kcat -b "$TS_BROKERS" -t "$TS_TOPIC" -P -p 1
	n=$((${#files[@]} + 7))
	local md=$BATS_TEST_TMPDIR/maildir rc=0
	timeout 180 ts-worker --exit-idle 3s -X session.timeout.ms=6000 \
		--email-url "maildir:$md" --from sender@example.com --retries 0 \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
	[[ $rc == 0 ]] || { tail -c 2000 "$BATS_TEST_TMPDIR/err" >&2; false; }
	# one result line per record, every offset once
	[[ $(grep -c . "$BATS_TEST_TMPDIR/out") == "$n" ]]
	[[ $(jq -r '"\(.partition):\(.offset)"' "$BATS_TEST_TMPDIR/out" | sort -u | wc -l) == "$n" ]]
	delivered=$(jq -s 'map(select(.status == "delivered")) | length' "$BATS_TEST_TMPDIR/out")
	dead=$(jq -s 'map(select(.status == "dead-lettered")) | length' "$BATS_TEST_TMPDIR/out")
	[[ $((delivered + dead)) == "$n" ]]
	# the good ones were delivered, and only they
	jq -r 'select(.status == "delivered") | .taskId' "$BATS_TEST_TMPDIR/out" | sort >"$BATS_TEST_TMPDIR/got"
	printf '%s\n' good-bom good-crlf-key good-h1 good-h2 good-w1 good-w2 good-w3 | sort >"$BATS_TEST_TMPDIR/want"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	[[ $(maildir_count "$md") == 7 ]]
	mapfile -t msgs < <(maildir_files "$md")
	"$HELPERS_PYTHON" "$H/check-headers" "${msgs[@]}"
	# every other record is on the DLQ with a known class and its value
	consume "$TS_DLQ_TOPIC" "$dead" 30 >"$BATS_TEST_TMPDIR/dlq"
	[[ $(grep -c . "$BATS_TEST_TMPDIR/dlq") == "$dead" ]]
	jq -e -s 'all(.[]; .headers["ts-error-class"] | IN("invalid-json", "invalid-task", "unknown-task-type"))' "$BATS_TEST_TMPDIR/dlq"
	jq -e -s 'all(.[]; .headers["ts-attempts"] == "0" and (.headers["ts-error"] | length > 0))' "$BATS_TEST_TMPDIR/dlq"
	# values kept byte for byte: the sizes match those of the inputs
	kcat -b "$TS_BROKERS" -t "$TS_DLQ_TOPIC" -C -e -q -f '%S\n' | sort -n >"$BATS_TEST_TMPDIR/dlq-sizes"
	{
		for f in "${files[@]}"; do
			case $(basename "$f") in bom-then-task.json | crlf-key.json) continue ;; esac
			stat -c %s "$f"
		done
		echo 0
		echo -1
	} | sort -n >"$BATS_TEST_TMPDIR/in-sizes"
	diff "$BATS_TEST_TMPDIR/in-sizes" "$BATS_TEST_TMPDIR/dlq-sizes"
	none grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "$BATS_TEST_TMPDIR/err"
}
