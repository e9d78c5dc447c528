#!/usr/bin/env bats
# ts-httpd: every status code with its body, tasks read back from Kafka,
# NDJSON batches, the notification API, TLS, limits, the access log,
# metrics and a graceful SIGTERM.
# brokers: dev kafka

bats_require_minimum_version 1.5.0

load helpers
load helpers_httpd

teardown() {
	helpers_teardown
}

# The record with key KEY in the test topic (waits for it).
record_by_key() {
	consume "$TS_TOPIC" "${2:-1}" 30 | jq -c --arg k "$1" 'select(.key == $k)'
}

@test "POST /tasks: 202 after the ack; the record is in Kafka under its key with the traceparent" {
	start_broker 4
	start_httpd
	tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	post /tasks "$EMAIL_TASK" -H "traceparent: $tp"
	[ "$STATUS" = 202 ]
	[[ $(header content-type) == application/json* ]]
	jq -e --arg t "$TS_TOPIC" '.message == "task accepted" and .topic == $t and
		(.partition | type == "number") and (.offset | type == "number") and
		(.taskId | test("^[0-9a-f-]{36}$")) and (keys | length == 5)' <<<"$BODY"
	id=$(jq -r .taskId <<<"$BODY")
	part=$(jq -r .partition <<<"$BODY")
	off=$(jq -r .offset <<<"$BODY")

	rec=$(record_by_key "$id")
	[ -n "$rec" ]
	jq -e --arg id "$id" --argjson p "$part" --argjson o "$off" --arg tp "$tp" '
		.partition == $p and .offset == $o and .headers.traceparent == $tp and
		(.payload | fromjson | .taskId == $id and .taskType == "email" and
		 .payload == {"to":"user@example.com","subject":"Hello","body":"Welcome!"} and
		 (.createdAt | test("Z$")) and (has("traceparent") | not))' <<<"$rec"
}

@test "POST /tasks: generated taskIds come in runs on one partition, each where murmur2 of its key puts it" {
	start_broker 3
	start_httpd
	batch=$(for i in $(seq 1 1200); do
		printf '{"taskType":"x","payload":{"i":%d}}\n' "$i"
	done)
	post /tasks "$batch" -H 'Content-Type: application/x-ndjson'
	[ "$STATUS" = 200 ]
	[ "$(jq -s '[.[] | select(.status == 202)] | length' <<<"$BODY")" = 1200 ]
	[ -z "$(jq -r '"\(.taskId) \(.partition)"' <<<"$BODY" | murmur2_check 3)" ]
	recs=$(consume "$TS_TOPIC" 1200 30)
	[ -z "$(jq -r '"\(.key) \(.partition)"' <<<"$recs" | murmur2_check 3)" ]
	# runs of 256: random ids would change partition 800 times
	changes=$(jq -r '"\(.line) \(.partition)"' <<<"$BODY" | sort -n |
		awk '$2 != p { n++ } { p = $2 } END { print n }')
	echo "partition changes in line order: $changes"
	((changes <= 10))
}

@test "POST /tasks: Idempotency-Key becomes the taskId and the record key" {
	start_broker 2
	start_httpd
	post /tasks "$EMAIL_TASK" -H 'Idempotency-Key: order-42:confirm'
	[ "$STATUS" = 202 ]
	[ "$(jq -r .taskId <<<"$BODY")" = order-42:confirm ]
	rec=$(record_by_key order-42:confirm)
	jq -e '(.payload | fromjson | .taskId) == "order-42:confirm" and .headers == {}' <<<"$rec"

	# validated like a taskId
	post /tasks "$EMAIL_TASK" -H 'Idempotency-Key: has space'
	[ "$STATUS" = 400 ]
	jq -e '.field == "Idempotency-Key" and (.error | test("128"))' <<<"$BODY"
	# a body with a different taskId is a conflict, not silently ignored
	post /tasks '{"taskId":"abc","taskType":"email","payload":{"to":"a@b.example","subject":"s","body":"b"}}' \
		-H 'Idempotency-Key: xyz'
	[ "$STATUS" = 400 ]
	jq -e '.field == "Idempotency-Key"' <<<"$BODY"
	# an invalid traceparent header is ignored (W3C), the task still goes
	post /tasks "$EMAIL_TASK" -H 'traceparent: junk' -H 'Idempotency-Key: no-trace'
	[ "$STATUS" = 202 ]
	rec=$(record_by_key no-trace 2)
	jq -e '.headers == {}' <<<"$rec"
}

@test "POST /tasks: 400 with error and field for invalid JSON and invalid tasks" {
	start_broker 1
	start_httpd
	post /tasks '{"taskType":"email",'
	[ "$STATUS" = 400 ]
	jq -e '(.error | test("JSON")) and .field == null and (keys == ["error","field"])' <<<"$BODY"

	post /tasks '{"taskType":"email","payload":{"subject":"s","body":"b"}}'
	[ "$STATUS" = 400 ]
	jq -e '.field == "payload.to" and .error == "required"' <<<"$BODY"

	post /tasks '{"taskType":"sms","payload":{"mobile":"12"}}'
	[ "$STATUS" = 400 ]
	jq -e '.field == "payload.mobile"' <<<"$BODY"

	post /tasks '{"taskType":"email","payload":{},"extra":1}'
	[ "$STATUS" = 400 ]
	jq -e '.field == "extra"' <<<"$BODY"

	post /tasks ''
	[ "$STATUS" = 400 ]
	# nothing reached the topic
	run consume "$TS_TOPIC"
	[ -z "$output" ]
}

@test "404, 405 with Allow, 415, and HEAD/GET on the operator endpoints" {
	start_broker 1
	start_httpd
	get /nope
	[ "$STATUS" = 404 ]
	jq -e '.error == "not found" and .field == null' <<<"$BODY"
	get /tasks
	[ "$STATUS" = 405 ]
	[ "$(header allow)" = POST ]
	jq -e '.error == "method not allowed"' <<<"$BODY"
	post /metrics x
	[ "$STATUS" = 405 ]
	[ "$(header allow)" = "GET, HEAD" ]
	post /api/sms/send x -X PUT
	[ "$STATUS" = 405 ]

	post /tasks "$EMAIL_TASK" -H 'Content-Type: text/plain'
	[ "$STATUS" = 415 ]
	jq -e '(.error | test("application/json")) and .field == null' <<<"$BODY"
	post /tasks "$EMAIL_TASK" -H 'Content-Type:'
	[ "$STATUS" = 415 ]
	post /api/email/send '{}' -H 'Content-Type: application/x-ndjson'
	[ "$STATUS" = 415 ]
	# parameters and case do not matter
	post /tasks "$EMAIL_TASK" -H 'Content-Type: Application/JSON; charset=utf-8'
	[ "$STATUS" = 202 ]
	# the request line and headers get 8 KiB (ts-httpd(1)): 5 KB pass,
	# 9 KB are refused with 431, and the server goes on
	post /tasks "$EMAIL_TASK" -H "X-Big: $(head -c 5000 /dev/zero | tr '\0' a)"
	[ "$STATUS" = 202 ]
	post /tasks "$EMAIL_TASK" -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)"
	[ "$STATUS" = 431 ]
	post /tasks "$EMAIL_TASK"
	[ "$STATUS" = 202 ]

	run curl -sS -I "$HTTPD_URL/healthz"
	[[ $output == "HTTP/1.1 200"* ]]
	get /healthz
	[ "$STATUS" = 200 ]
	jq -e --arg t "$TS_TOPIC" '.status == "ok" and .topic == $t' <<<"$BODY"
}

@test "401 without the bearer token; the token never shows up anywhere" {
	start_broker 1
	token=s3cr3t-$RANDOM$RANDOM
	printf '%s\n' "$token" >"$BATS_TEST_TMPDIR/token"
	start_httpd --token-file "$BATS_TEST_TMPDIR/token" -v
	post /tasks "$EMAIL_TASK"
	[ "$STATUS" = 401 ]
	[[ $(header www-authenticate) == Bearer* ]]
	jq -e '(.error | test("token")) and .field == null' <<<"$BODY"
	post /tasks "$EMAIL_TASK" -H "Authorization: Bearer ${token}x"
	[ "$STATUS" = 401 ]
	post /tasks "$EMAIL_TASK" -H "Authorization: Bearer ${token:0:5}"
	[ "$STATUS" = 401 ]
	post /tasks "$EMAIL_TASK" -H "Authorization: Basic $token"
	[ "$STATUS" = 401 ]
	post /api/email/send '{}'
	[ "$STATUS" = 401 ]
	post /tasks "$EMAIL_TASK" -H "Authorization: Bearer $token"
	[ "$STATUS" = 202 ]
	post /tasks "$EMAIL_TASK" -H "authorization: bearer $token"
	[ "$STATUS" = 202 ]
	# health and metrics stay open for probes
	get /healthz
	[ "$STATUS" = 200 ]
	get /metrics
	[ "$STATUS" = 200 ]
	run ! grep -q "$token" "$HTTPD_LOG" "$HTTPD_ERR"
	run ! grep -qi authorization "$HTTPD_LOG"
	[[ $(curl -s "$HTTPD_URL/metrics") != *"$token"* ]]
	run ts-httpd --help
	[[ $output != *"$token"* ]]
}

@test "413 over --max-body: by Content-Length before the body, and counted for chunked bodies" {
	start_broker 1
	start_httpd --max-body 300
	big=$(printf '{"taskType":"email","payload":{"to":"a@b.example","subject":"s","body":"%0300d"}}' 0)
	post /tasks "$big"
	[ "$STATUS" = 413 ]
	jq -e '(.error | test("300 bytes")) and .field == null' <<<"$BODY"
	post /tasks "$big" -H 'Transfer-Encoding: chunked'
	[ "$STATUS" = 413 ]
	jq -e '.error | test("max-body")' <<<"$BODY"
	# a body at the limit is fine, chunked too
	fits=$(printf '{"taskType":"email","payload":{"to":"a@b.example","subject":"s","body":"%s"}}' \
		"$(head -c 225 /dev/zero | tr '\0' x)")
	[ ${#fits} -eq 300 ]
	post /tasks "$fits"
	[ "$STATUS" = 202 ]
	post /tasks "$fits" -H 'Transfer-Encoding: chunked'
	[ "$STATUS" = 202 ]
	# a huge announced body is refused without being sent
	run curl -sS -o /dev/null -w '%{http_code} %{size_upload}' --max-time 20 \
		-H 'Content-Type: application/json' -H 'Expect: 100-continue' \
		--data-binary @<(head -c 20000000 /dev/zero) "$HTTPD_URL/tasks"
	[[ $output == "413 "* ]]
	(( ${output#* } < 20000000 ))
	# the server is fine afterwards
	post /tasks "$EMAIL_TASK"
	[ "$STATUS" = 202 ]
}

@test "NDJSON batch: 200 with one result line per task line, each with its own status" {
	start_broker 3
	start_httpd
	batch=$(printf '%s\n' \
		'{"taskType":"email","payload":{"to":"a@example.com","subject":"1","body":"x"}}' \
		'' \
		'{"taskType":"sms","payload":{"mobile":"+919812345678","name":"Asha"},"key":"k1"}' \
		'not json' \
		'{"taskType":"email","payload":{"subject":"no to"}}' \
		'{"taskId":"batch-4","taskType":"report.daily","payload":{"day":"2026-11-29"}}')
	post /tasks "$batch" -H 'Content-Type: application/x-ndjson'
	[ "$STATUS" = 200 ]
	[[ $(header content-type) == application/x-ndjson* ]]
	[ "$(grep -c . <<<"$BODY")" -eq 5 ]
	jq -e -s '
		[.[].line] == [1,3,4,5,6] and
		[.[].status] == [202,202,400,400,202] and
		(.[0] | .message == "task accepted" and (.offset | type == "number")) and
		(.[2] | (.error | test("JSON")) and .field == null) and
		(.[3] | .field == "payload.to") and
		(.[4] | .taskId == "batch-4")' <<<"$BODY"
	# the three accepted tasks are in Kafka, where the answers say
	recs=$(consume "$TS_TOPIC" 3 30)
	[ "$(grep -c . <<<"$recs")" -eq 3 ]
	while read -r id p o; do
		jq -e -s --arg id "$id" --argjson p "$p" --argjson o "$o" \
			'any(.[]; (.payload | fromjson | .taskId) == $id and .partition == $p and .offset == $o)' <<<"$recs"
	done < <(jq -r 'select(.status == 202) | "\(.taskId) \(.partition) \(.offset)"' <<<"$BODY")
	jq -e -s 'any(.[]; .key == "k1")' <<<"$recs"

	# an empty batch is an empty answer; Idempotency-Key does not fit a batch
	post /tasks '' -H 'Content-Type: application/x-ndjson'
	[ "$STATUS" = 200 ]
	[ -z "$BODY" ]
	post /tasks "$batch" -H 'Content-Type: application/x-ndjson' -H 'Idempotency-Key: k'
	[ "$STATUS" = 400 ]
	jq -e '.field == "Idempotency-Key"' <<<"$BODY"
}

@test "POST /api/email/send delivers through the SMTP transport; 400, 502 and 501" {
	start_broker 1
	start_smtpd
	start_httpd --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" --from noreply@example.com
	post /api/email/send '{"to":"rcpt@example.com","subject":"Via the API","body":"Hello from ts-httpd"}'
	[ "$STATUS" = 200 ]
	jq -e '.status == "sent"' <<<"$BODY"
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 1 ]
	msg=$(maildir_files "$SMTPD_MAILDIR")
	grep -q '^Subject: Via the API' "$msg"
	grep -q '^To: .*rcpt@example.com' "$msg"
	grep -q 'Hello from ts-httpd' "$msg"

	post /api/email/send '{"to":"not-an-address","subject":"x","body":"y"}'
	[ "$STATUS" = 400 ]
	jq -e '.field == "to"' <<<"$BODY"
	post /api/email/send '{"subject":"x","body":"y"}'
	[ "$STATUS" = 400 ]
	jq -e '.field == "to" and .error == "required"' <<<"$BODY"
	post /api/email/send 'nope'
	[ "$STATUS" = 400 ]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 1 ]

	# no --sms-url here: that endpoint is not configured
	post /api/sms/send '{"name":"A","mobile":"+919812345678"}'
	[ "$STATUS" = 501 ]
	jq -e '.error | test("sms-url")' <<<"$BODY"
}

@test "POST /api/email/send: 502 when the server refuses for good" {
	start_broker 1
	start_smtpd --reject-all
	start_httpd --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" --from noreply@example.com
	post /api/email/send '{"to":"rcpt@example.com","subject":"s","body":"b"}'
	[ "$STATUS" = 502 ]
	jq -e '(.error | length > 0) and .field == null' <<<"$BODY"
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}

@test "POST /api/sms/send delivers to Msg91; 400 on mobile, 503 with Retry-After, 502 on type:error" {
	start_broker 1
	start_msg91 --fail 503:1
	start_httpd --sms-url "msg91://test-authkey@test-template?api=$MSG91_URL"
	# the first Msg91 call fails with 503 and Retry-After: 1
	post /api/sms/send '{"name":"Asha","mobile":"+919812345678"}'
	[ "$STATUS" = 503 ]
	[ "$(header retry-after)" = 1 ]
	jq -e '.field == null and (.error | test("503"))' <<<"$BODY"
	post /api/sms/send '{"name":"Asha","mobile":"+919812345678"}'
	[ "$STATUS" = 200 ]
	jq -e '.status == "sent" and (.id | test("^[0-9a-f]{24}$"))' <<<"$BODY"
	req=$(tail -n 1 "$MSG91_LOG")
	jq -e '.status == 200 and .headers.authkey == "test-authkey" and
		.body.template_id == "test-template" and
		.body.recipients == [{"mobiles":"919812345678","name":"Asha"}]' <<<"$req"

	post /api/sms/send '{"name":"Asha","mobile":"12ab"}'
	[ "$STATUS" = 400 ]
	jq -e '.field == "mobile"' <<<"$BODY"
	[ "$(grep -c . "$MSG91_LOG")" -eq 2 ]
}

@test "POST /api/sms/send: 502 when Msg91 answers type:error" {
	start_broker 1
	start_msg91 --error-body
	start_httpd --sms-url "msg91://test-authkey@test-template?api=$MSG91_URL"
	post /api/sms/send '{"name":"Asha","mobile":"919812345678"}'
	[ "$STATUS" = 502 ]
	jq -e '.error | test("template")' <<<"$BODY"
}

@test "access log: one JSON line per request on stdout, never a header" {
	start_broker 1
	start_httpd
	post /tasks "$EMAIL_TASK" -H 'Idempotency-Key: logged-1' -H 'Authorization: Bearer not-logged-xyz'
	[ "$STATUS" = 202 ]
	post /tasks '{}'
	[ "$STATUS" = 400 ]
	get '/odd%22path?q=1'
	[ "$STATUS" = 404 ]
	# a request is logged once its answer is out, so a client can read
	# the answer before the line is written (valgrind made that visible)
	logged() {
		jq -e -s 'any(.[]; .status == 202) and any(.[]; .status == 400) and
			any(.[]; .status == 404)' "$HTTPD_LOG" >/dev/null 2>&1
	}
	wait_for logged
	jq -e -s '
		all(.[]; (.time | test("^[0-9-]+T[0-9:.]+Z$")) and .method and .path and
			(.status | type == "number") and (.bytes | type == "number") and
			(.ms | type == "number") and .remote == "127.0.0.1") and
		any(.[]; .path == "/tasks" and .status == 202 and .taskId == "logged-1" and .method == "POST") and
		any(.[]; .path == "/tasks" and .status == 400 and (has("taskId") | not)) and
		any(.[]; .path == "/odd\"path" and .status == 404 and .bytes > 0)' "$HTTPD_LOG"
	run ! grep -q not-logged-xyz "$HTTPD_LOG" "$HTTPD_ERR"
	run ! grep -q 'q=1' "$HTTPD_LOG"
}

@test "GET /metrics: Prometheus text with requests by route and code, latency, in-flight, queue depth" {
	start_broker 1
	start_httpd
	post /tasks "$EMAIL_TASK"
	post /tasks '{}'
	post /tasks '{}'
	get /metrics
	[ "$STATUS" = 200 ]
	[[ $(header content-type) == "text/plain; version=0.0.4"* ]]
	grep -qx 'taskstream_http_requests_total{route="/tasks",code="202"} 1' <<<"$BODY"
	grep -qx 'taskstream_http_requests_total{route="/tasks",code="400"} 2' <<<"$BODY"
	grep -qx '# TYPE taskstream_produce_duration_seconds histogram' <<<"$BODY"
	grep -qx 'taskstream_produce_duration_seconds_count 1' <<<"$BODY"
	grep -qx 'taskstream_produce_duration_seconds_bucket{le="+Inf"} 1' <<<"$BODY"
	grep -qx 'taskstream_http_requests_in_flight 1' <<<"$BODY"   # this scrape
	grep -qx 'taskstream_kafka_queue_depth 0' <<<"$BODY"
	grep -qx 'taskstream_kafka_up 1' <<<"$BODY"
	grep -qx 'taskstream_http_tasks_total{result="accepted"} 1' <<<"$BODY"
	grep -qx 'taskstream_http_tasks_total{result="invalid"} 2' <<<"$BODY"
	# every sample is a taskstream_ name
	[ -z "$(grep -v '^#' <<<"$BODY" | grep -v -e '^taskstream_' -e '^$')" ]
}

@test "TLS: --tls-cert/--tls-key serve HTTPS, verified by a CA" {
	start_broker 1
	make_ca_cert "$BATS_TEST_TMPDIR/pki"
	HTTPD_CURL_OPTS=(--cacert "$CA_CERT")
	start_httpd --tls-cert "$CERT" --tls-key "$KEY"
	[[ $HTTPD_URL == https://* ]]
	post /tasks "$EMAIL_TASK" --cacert "$CA_CERT"
	[ "$STATUS" = 202 ]
	run curl -sS --max-time 10 "http://127.0.0.1:$HTTPD_PORT/healthz"
	[ "$status" -ne 0 ] || [[ $output != *'"ok"'* ]]
	run curl -sS --max-time 10 "$HTTPD_URL/healthz"
	[ "$status" -ne 0 ]   # no CA: not trusted
}

@test "a slow client and a client that disconnects mid-request do not disturb the others" {
	start_broker 1
	start_httpd --connection-timeout 3s
	# a client that sends half its headers and then nothing
	exec {slow}<>"/dev/tcp/127.0.0.1/$HTTPD_PORT"
	printf 'POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: appl' >&$slow
	# one that promises a body, sends part of it and goes away
	exec {gone}<>"/dev/tcp/127.0.0.1/$HTTPD_PORT"
	printf 'POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"taskType":' >&$gone
	exec {gone}>&-
	# one that sends a whole request but never reads the answer
	exec {deaf}<>"/dev/tcp/127.0.0.1/$HTTPD_PORT"
	printf 'POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
		${#EMAIL_TASK} "$EMAIL_TASK" >&$deaf
	for i in 1 2 3 4 5; do
		post /tasks "$EMAIL_TASK"
		[ "$STATUS" = 202 ]
	done
	# the idle one is closed after --connection-timeout: read sees EOF
	run timeout 20 cat <&$slow
	[ "$status" -eq 0 ]
	exec {slow}>&- {deaf}>&-
	post /tasks "$EMAIL_TASK"
	[ "$STATUS" = 202 ]
	wait_for grep -q '"aborted":true' "$HTTPD_LOG"
	[ "$(consume "$TS_TOPIC" 7 30 | grep -c .)" -eq 7 ]
}

@test "--max-connections: connections over the limit are refused, the rest served" {
	start_broker 1
	start_httpd --max-connections 2
	exec {c1}<>"/dev/tcp/127.0.0.1/$HTTPD_PORT"
	exec {c2}<>"/dev/tcp/127.0.0.1/$HTTPD_PORT"
	printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&$c1
	printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&$c2
	read -r -t 10 line <&$c1
	[[ $line == "HTTP/1.1 200"* ]]
	# held in the listen backlog, not served: 2 s of that is enough
	run curl -sS --max-time 2 "$HTTPD_URL/healthz"
	[ "$status" -ne 0 ]
	exec {c1}>&- {c2}>&-
	wait_for curl -sf --max-time 5 -o /dev/null "$HTTPD_URL/healthz"
}

@test "SIGTERM: stops accepting, answers the requests in flight, exits 0" {
	start_broker 1
	start_smtpd --delay-ms 1500
	start_httpd --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" --from noreply@example.com
	pids=()
	for i in 1 2 3; do
		curl -sS --max-time 60 -o "$BATS_TEST_TMPDIR/out$i" -w '%{http_code}' \
			-H 'Content-Type: application/json' \
			--data-binary "{\"to\":\"r$i@example.com\",\"subject\":\"s$i\",\"body\":\"b\"}" \
			"$HTTPD_URL/api/email/send" >"$BATS_TEST_TMPDIR/code$i" &
		pids+=($!)
	done
	wait_for in_flight_at_least 4   # 3 + the scrape
	kill -TERM "$HTTPD_PID"
	rc=0
	wait "$HTTPD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	wait "${pids[@]}"
	for i in 1 2 3; do
		[ "$(cat "$BATS_TEST_TMPDIR/code$i")" = 200 ]
		jq -e '.status == "sent"' "$BATS_TEST_TMPDIR/out$i"
	done
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 3 ]
	run curl -sS --max-time 5 "$HTTPD_URL/healthz"
	[ "$status" -ne 0 ]
}

@test "librdkafka's threads run as SCHED_BATCH, ts-httpd's own under the default policy" {
	start_broker 1
	start_httpd
	post /tasks "$EMAIL_TASK"
	[ "$STATUS" = 202 ]
	# comm and scheduling policy (field 41 of stat: 0 other, 3 batch) of
	# every thread; comm is field 2, in parentheses, without spaces here
	local t comm policy rdk=0 own=0
	for t in /proc/"$HTTPD_PID"/task/*; do
		comm=$(<"$t/comm")
		policy=$(awk '{ print $41 }' "$t/stat")
		case $comm in
		rdk:*) [ "$policy" = 3 ] || { echo "$comm: policy $policy"; return 1; }
			rdk=$((rdk + 1)) ;;
		*) [ "$policy" = 0 ] || { echo "$comm: policy $policy"; return 1; }
			own=$((own + 1)) ;;
		esac
	done
	((rdk >= 2 && own >= 2))
}

@test "bad configuration exits 78 with a clear message" {
	run -78 ts-httpd --tls-cert /nonexistent.pem
	[[ $output == *"--tls-cert and --tls-key go together"* ]]
	run -78 ts-httpd --token-file "$BATS_TEST_TMPDIR/none"
	[[ $output == "ts-httpd: --token-file"* ]]
	: >"$BATS_TEST_TMPDIR/empty"
	run -78 ts-httpd --token-file "$BATS_TEST_TMPDIR/empty"
	[[ $output == *empty* ]]
	run -78 ts-httpd --listen nowhere
	[[ $output == *"ADDR:PORT"* ]]
	start_broker 1
	start_httpd
	run -78 ts-httpd --listen "127.0.0.1:$HTTPD_PORT"
	[[ $output == *"Address already in use"* ]]
	run -78 ts-httpd --email-url 'bogus://x'
	[[ $output == *"--email-url"* ]]
	run -64 ts-httpd extra-arg
}
