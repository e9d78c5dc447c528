#!/usr/bin/env bats
# ts-worker: delivery end to end (SMTP, Msg91), every dead-letter class with
# its headers and the original bytes, retries, command and HTTP handlers,
# ordering, kill -9 and SIGTERM with a restart, metrics.
# brokers: dev kafka

bats_require_minimum_version 1.5.0

load helpers
load helpers_worker

teardown() {
	helpers_teardown
}

TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01

email_task() { # ID TO SUBJECT BODY
	jq -nc --arg id "$1" --arg to "$2" --arg s "$3" --arg b "$4" \
		'{taskId:$id,taskType:"email",payload:{to:$to,subject:$s,body:$b}}'
}

# ---------------------------------------------------------------------------

@test "email and sms end to end: the messages arrive with their contents, nothing repeats on restart" {
	start_broker 4
	start_smtpd
	start_msg91
	tasks=$BATS_TEST_TMPDIR/tasks.jsonl
	for i in 1 2 3 4 5 6; do
		email_task "mail-$i" "user$i@example.com" "Subject $i" "Hello number $i"
	done >"$tasks"
	for i in 1 2 3; do
		jq -nc --arg id "sms-$i" --arg m "+91987654321$i" --arg n "Name $i" \
			'{taskId:$id,taskType:"sms",payload:{mobile:$m,name:$n}}'
	done >>"$tasks"
	submit "$tasks"

	run_worker --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--sms-url "msg91://test-authkey@test-template?api=$MSG91_URL" \
		--from 'Sender <sender@example.com>'
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }

	# stdout: one line per task, all delivered at the first attempt, with
	# the partition and offset ts-submit reported
	[ "$(lines "$WORKER_OUT")" = 9 ]
	jq -e -s --slurpfile sub "$SUBMITTED" '
		length == 9 and all(.[]; .status == "delivered" and .attempts == 1 and
			(.ms | type == "number") and (keys == ["attempts","ms","offset","partition","status","taskId","taskType"])) and
		(map({taskId, partition, offset}) | sort_by(.taskId)) ==
		($sub | map({taskId, partition, offset}) | sort_by(.taskId))' "$WORKER_OUT"

	# SMTP: six messages, each to its recipient, with its subject and body
	[ "$(lines "$SMTPD_LOG")" = 6 ]
	for i in 1 2 3 4 5 6; do
		rec=$(jq -c --arg to "user$i@example.com" 'select(.rcpt_tos == [$to])' "$SMTPD_LOG")
		[ -n "$rec" ]
		[ "$(jq -r .mail_from <<<"$rec")" = sender@example.com ]
		file=$(jq -r .file <<<"$rec")
		grep -q "^Subject: Subject $i" "$file"
		grep -q "Hello number $i" "$file"
		grep -qi "^To: .*user$i@example.com" "$file"
	done

	# Msg91: three requests, numbers without the +, the name variable
	[ "$(lines "$MSG91_LOG")" = 3 ]
	jq -e -s 'all(.[]; .status == 200 and .headers.authkey == "test-authkey" and
			.body.template_id == "test-template") and
		(map(.body.recipients[0] | {mobiles, name}) | sort_by(.mobiles)) == [
			{mobiles:"919876543211",name:"Name 1"},
			{mobiles:"919876543212",name:"Name 2"},
			{mobiles:"919876543213",name:"Name 3"}]' "$MSG91_LOG"

	# the offsets were committed: a second run of the group does nothing
	run_worker --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--sms-url "msg91://test-authkey@test-template?api=$MSG91_URL" \
		--from sender@example.com
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(lines "$WORKER_OUT")" = 0 ]
	[ "$(lines "$SMTPD_LOG")" = 6 ]
	[ "$(lines "$MSG91_LOG")" = 3 ]
}

@test "every dead-letter class: original key, value bytes and headers kept, ts-* headers added" {
	start_broker 2
	start_smtpd --reject-rcpt '^nobody@'
	flaky=$BATS_TEST_TMPDIR/flaky.sh
	printf '#!/bin/sh\ncat >/dev/null\necho "try again later" >&2\nexit 75\n' >"$flaky"
	chmod +x "$flaky"

	# produced raw with kcat, so the bytes are exactly ours
	raw=$BATS_TEST_TMPDIR/raw
	{
		printf 'k-json\t{"taskType":"email","payload":\n'
		printf 'k-task\t{"taskId":"bad-task","taskType":"email","payload":{"subject":"s","body":"b"}}\n'
		printf 'k-unknown\t{"taskId":"unk-1","taskType":"invoice","payload":{"number":42}}\n'
		printf 'k-perm\t{"taskId":"perm-1","taskType":"email","payload":{"to":"nobody@example.com","subject":"s","body":"b"}}\n'
		printf 'k-flaky\t{"taskId":"flaky-1","taskType":"flaky","payload":{}}\n'
	} >"$raw"
	kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -K $'\t' -H "traceparent=$TP" \
		-H "x-origin=test suite" -l "$raw"

	run_worker --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--from sender@example.com --handler "flaky=$flaky" \
		--retries 2 --backoff 10ms
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }

	# stdout: five dead letters, each with its class in the error
	jq -e -s 'length == 5 and all(.[]; .status == "dead-lettered" and (.error | length > 0))' "$WORKER_OUT"
	jq -e -s 'map({key: (.taskId // "none"), a: .attempts, c: (.error | split(":")[0])}) | sort_by(.key) == [
		{key:"bad-task",a:0,c:"invalid-task"},
		{key:"flaky-1",a:3,c:"retries-exhausted"},
		{key:"none",a:0,c:"invalid-json"},
		{key:"perm-1",a:1,c:"permanent"},
		{key:"unk-1",a:0,c:"unknown-task-type"}]' "$WORKER_OUT"

	orig=$(consume "$TS_TOPIC" 5)
	dlq=$(consume "$TS_DLQ_TOPIC" 5)
	[ "$(grep -c . <<<"$dlq")" = 5 ]
	while IFS=$'\t' read -r key value; do
		o=$(jq -c --arg k "$key" 'select(.key == $k)' <<<"$orig")
		d=$(jq -c --arg k "$key" 'select(.key == $k)' <<<"$dlq")
		[ -n "$d" ] || { echo "no dead letter for $key"; false; }
		# the value, byte for byte
		[ "$(jq -r .payload <<<"$d")" = "$value" ]
		jq -e --argjson o "$o" --arg t "$TS_TOPIC" --arg g "$TS_GROUP" --arg tp "$TP" '
			.headers.traceparent == $tp and .headers["x-origin"] == "test suite" and
			.headers["ts-original-topic"] == $t and
			.headers["ts-original-partition"] == ($o.partition | tostring) and
			.headers["ts-original-offset"] == ($o.offset | tostring) and
			.headers["ts-original-timestamp"] == ($o.ts | tostring) and
			.headers["ts-consumer-group"] == $g and
			(.headers["ts-error"] | length > 0)' <<<"$d"
		case $key in
		k-json) want='invalid-json 0' ;;
		k-task) want='invalid-task 0' ;;
		k-unknown) want='unknown-task-type 0' ;;
		k-perm) want='permanent 1' ;;
		k-flaky) want='retries-exhausted 3' ;;
		esac
		[ "$(jq -r '.headers["ts-error-class"] + " " + .headers["ts-attempts"]' <<<"$d")" = "$want" ]
	done <"$raw"
	# the reasons say what was wrong
	reason() { jq -e -s --arg k "$1" --arg re "$2" 'any(.[]; .key == $k and (.headers["ts-error"] | test($re)))' <<<"$dlq"; }
	reason k-task '^payload.to: required$'
	reason k-perm '550'
	reason k-flaky 'exit 75: try again later'
	reason k-unknown 'invoice'
	reason k-json 'JSON'
	# the traceparent reached the log lines of the failures
	grep -q "unk-1 (invoice).*traceparent=$TP" "$WORKER_ERR"
	[ "$(lines "$SMTPD_LOG")" = 0 ]
}

@test "a transient SMTP failure recovers on the third attempt" {
	start_broker 1
	start_smtpd --defer 2
	email_task retry-1 "ann@example.com" "Third time" "lucky" >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--from sender@example.com --backoff 100ms -v
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	jq -e -s 'length == 1 and .[0].taskId == "retry-1" and .[0].status == "delivered" and .[0].attempts == 3' "$WORKER_OUT"
	[ "$(lines "$SMTPD_LOG")" = 1 ]
	[ "$(grep -c 'retry-1 (email).*retry in' "$WORKER_ERR")" = 2 ]
	[ "$(lines "$(consume "$TS_DLQ_TOPIC" >"$BATS_TEST_TMPDIR/d"; echo "$BATS_TEST_TMPDIR/d")")" = 0 ]
}

@test "retries exhausted: attempts = retries + 1, then the dead letter" {
	start_broker 1
	start_smtpd --defer 1000
	email_task never-1 "bob@example.com" "Never" "arrives" >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--from sender@example.com --retries 2 --backoff 20ms
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	jq -e -s 'length == 1 and .[0].status == "dead-lettered" and .[0].attempts == 3 and
		(.[0].error | startswith("retries-exhausted: ")) and (.[0].error | test("451"))' "$WORKER_OUT"
	d=$(consume "$TS_DLQ_TOPIC" 1)
	jq -e '.key == "never-1" and .headers["ts-attempts"] == "3" and
		.headers["ts-error-class"] == "retries-exhausted"' <<<"$d"
	[ "$(lines "$SMTPD_LOG")" = 0 ]
}

@test "handler commands: exit 0 delivers, 75 retries, 1 dead-letters; envelope on stdin; output logged; no secrets" {
	start_broker 2
	dir=$BATS_TEST_TMPDIR/h
	mkdir -p "$dir"
	h=$BATS_TEST_TMPDIR/handler.sh
	cat >"$h" <<-EOF
		#!/bin/sh
		cat >"$dir/stdin.\$TS_TASK_ID.\$TS_ATTEMPT"
		env >"$dir/env.\$TS_TASK_ID"
		printf '%s\n' "\$0" "\$@" >"$dir/argv.\$TS_TASK_ID"
		echo "hello from \$TS_TASK_ID attempt \$TS_ATTEMPT"
		case \$TS_TASK_TYPE in
		ok) exit 0 ;;
		flaky) [ "\$TS_ATTEMPT" -ge 2 ] && exit 0; echo "busy, later" >&2; exit 75 ;;
		bad) echo "cannot do this one" >&2; exit 1 ;;
		esac
		exit 9
	EOF
	chmod +x "$h"
	{
		echo '{"taskId":"h-ok","taskType":"ok","payload":{"n":1}}'
		echo '{"taskId":"h-flaky","taskType":"flaky","payload":{"n":2}}'
		echo '{"taskId":"h-bad","taskType":"bad","payload":{"n":3}}'
	} >"$BATS_TEST_TMPDIR/t.jsonl"
	TRACEPARENT=$TP submit "$BATS_TEST_TMPDIR/t.jsonl"

	TS_SMTP_PASSWORD=hunter2-secret TS_MSG91_AUTHKEY=key-secret-42 \
		run_worker --handler "ok=$h" --handler "flaky=$h" --handler "bad=$h" \
		--backoff 50ms -v
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }

	jq -e -s 'map({taskId, status, attempts}) | sort_by(.taskId) == [
		{taskId:"h-bad",status:"dead-lettered",attempts:1},
		{taskId:"h-flaky",status:"delivered",attempts:2},
		{taskId:"h-ok",status:"delivered",attempts:1}]' "$WORKER_OUT"
	jq -e -s '.[] | select(.taskId == "h-bad") | .error == "permanent: exit 1: cannot do this one"' "$WORKER_OUT"

	# stdin is the record value: the envelope as ts-submit wrote it
	orig=$(consume "$TS_TOPIC" 3)
	for id in h-ok h-flaky h-bad; do
		[ "$(cat "$dir/stdin.$id.1")" = "$(jq -r --arg k "$id" 'select(.key == $k) | .payload' <<<"$orig")" ]
	done
	[ -f "$dir/stdin.h-flaky.2" ] && [ ! -f "$dir/stdin.h-ok.2" ]
	# the environment names the task and its trace, and holds no secret
	grep -qx 'TS_TASK_TYPE=ok' "$dir/env.h-ok"
	grep -qx "TRACEPARENT=$TP" "$dir/env.h-ok"
	run grep -q 'hunter2-secret\|key-secret-42' "$dir"/env.* "$dir"/argv.* "$WORKER_ERR"
	[ "$status" -eq 1 ]
	# argv is the command, nothing of the task
	[ "$(cat "$dir/argv.h-ok")" = "$h" ]
	# stdout and stderr of the handler went to the log
	grep -q 'task h-ok handler stdout: hello from h-ok attempt 1' "$WORKER_ERR"
	grep -q 'task h-flaky handler stderr: busy, later' "$WORKER_ERR"
	grep -q 'task h-bad handler stderr: cannot do this one' "$WORKER_ERR"
	d=$(consume "$TS_DLQ_TOPIC" 1)
	jq -e --arg tp "$TP" '.key == "h-bad" and .headers["ts-error-class"] == "permanent" and
		.headers.traceparent == $tp' <<<"$d"
}

@test "a handler past --handler-timeout is killed with everything it started" {
	start_broker 1
	marker=$((RANDOM + 40000))
	echo '{"taskId":"slow-1","taskType":"slow","payload":{}}' >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	start=$SECONDS
	run_worker --handler "slow=sleep $marker & sleep $marker; echo never" \
		--handler-timeout 500ms --retries 0
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	((SECONDS - start < 30))
	jq -e -s 'length == 1 and .[0].status == "dead-lettered" and .[0].attempts == 1 and
		(.[0].error | test("^retries-exhausted: timed out after 500 ms"))' "$WORKER_OUT"
	! pgrep -f "sleep $marker"
}

@test "HTTP handlers: 200 delivers, 503 with Retry-After retries after it, 400 dead-letters" {
	start_broker 2
	start_httpsink --statuses 200
	ok_url=$HTTPSINK_URL/hooks/ok ok_log=$HTTPSINK_LOG
	start_httpsink --statuses 503,200 --retry-after 1
	later_url=$HTTPSINK_URL/hooks/later later_log=$HTTPSINK_LOG
	start_httpsink --statuses 400
	bad_url=$HTTPSINK_URL/hooks/bad bad_log=$HTTPSINK_LOG
	{
		echo '{"taskId":"w-ok","taskType":"hook","payload":{"event":"signup"}}'
		echo '{"taskId":"w-later","taskType":"later","payload":{"event":"retry"}}'
		echo '{"taskId":"w-bad","taskType":"reject","payload":{"event":"nope"}}'
	} >"$BATS_TEST_TMPDIR/t.jsonl"
	TRACEPARENT=$TP submit "$BATS_TEST_TMPDIR/t.jsonl"

	run_worker --handler "hook=$ok_url" --handler "later=$later_url" \
		--handler "reject=$bad_url" --backoff 10ms
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	jq -e -s 'map({taskId, status, attempts}) | sort_by(.taskId) == [
		{taskId:"w-bad",status:"dead-lettered",attempts:1},
		{taskId:"w-later",status:"delivered",attempts:2},
		{taskId:"w-ok",status:"delivered",attempts:1}]' "$WORKER_OUT"
	jq -e -s '.[] | select(.taskId == "w-bad") | .error | startswith("permanent: HTTP 400")' "$WORKER_OUT"

	orig=$(consume "$TS_TOPIC" 3)
	# the request: POST of the envelope, JSON, the id to spot repeats
	jq -e --arg v "$(jq -r 'select(.key == "w-ok") | .payload' <<<"$orig")" --arg tp "$TP" '
		.method == "POST" and .path == "/hooks/ok" and .body == $v and
		(.headers["content-type"] | startswith("application/json")) and
		.headers["idempotency-key"] == "w-ok" and .headers.traceparent == $tp and
		.headers["taskstream-attempt"] == "1"' "$ok_log"
	# 503 then 200, the second at least the Retry-After (1 s) later although
	# the back-off alone would have waited at most 10 ms
	[ "$(lines "$later_log")" = 2 ]
	jq -e -s 'map(.status) == [503, 200] and (.[1].time - .[0].time >= 1000) and
		.[1].headers["taskstream-attempt"] == "2"' "$later_log"
	[ "$(lines "$bad_log")" = 1 ]
	d=$(consume "$TS_DLQ_TOPIC" 1)
	jq -e '.key == "w-bad" and .headers["ts-error-class"] == "permanent" and
		.headers["ts-attempts"] == "1" and (.headers["ts-error"] | test("HTTP 400"))' <<<"$d"
}

@test "--order key: tasks of one key never overlap and keep their order; other keys run alongside" {
	start_broker 2
	log=$BATS_TEST_TMPDIR/order.log
	h=$BATS_TEST_TMPDIR/seq.sh
	cat >"$h" <<-EOF
		#!/bin/sh
		p=\$(jq -c '.payload')
		k=\$(printf '%s' "\$p" | jq -r .k)
		n=\$(printf '%s' "\$p" | jq -r .n)
		echo "start \$k \$n" >>"$log"
		sleep 0.3
		echo "end \$k \$n" >>"$log"
	EOF
	chmod +x "$h"
	for n in 1 2 3 4 5 6; do
		for k in a b c d; do
			jq -nc --arg k "$k" --argjson n "$n" '{taskType:"seq",key:("key-"+$k),payload:{k:$k,n:$n}}'
		done
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --handler "seq=$h" --concurrency 8
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(lines "$WORKER_OUT")" = 24 ]
	for k in a b c d; do
		got=$(grep " $k " "$log" | tr '\n' ' ')
		want=$(for n in 1 2 3 4 5 6; do printf 'start %s %s end %s %s ' "$k" "$n" "$k" "$n"; done)
		[ "$got" = "$want" ] || { echo "key $k: $got"; false; }
	done
	# and keys did overlap each other (4 keys, 8 threads; each handler runs
	# 0.3 s, longer than a start takes under valgrind)
	awk '/^start/ {open++; if (open > max) max = open} /^end/ {open--} END {exit !(max >= 2)}' "$log"
}

@test "--order partition: one task at a time per partition, in offset order, whatever the keys" {
	start_broker 1
	log=$BATS_TEST_TMPDIR/order.log
	h=$BATS_TEST_TMPDIR/one.sh
	cat >"$h" <<-EOF
		#!/bin/sh
		echo "start \$TS_TASK_ID" >>"$log"
		sleep 0.05
		echo "end \$TS_TASK_ID" >>"$log"
	EOF
	chmod +x "$h"
	for n in 1 2 3 4 5 6 7 8; do
		echo "{\"taskId\":\"p-$n\",\"taskType\":\"one\",\"payload\":{}}"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --handler "one=$h" --concurrency 8 --order partition
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	want=$(for n in 1 2 3 4 5 6 7 8; do printf 'start p-%s end p-%s ' "$n" "$n"; done)
	[ "$(tr '\n' ' ' <"$log")" = "$want" ]
}

@test "--order none: tasks of one key and one partition run side by side; all delivered once" {
	start_broker 1
	log=$BATS_TEST_TMPDIR/order.log
	h=$BATS_TEST_TMPDIR/none.sh
	cat >"$h" <<-EOF
		#!/bin/sh
		echo "start \$TS_TASK_ID" >>"$log"
		sleep 0.3
		echo "end \$TS_TASK_ID" >>"$log"
	EOF
	chmod +x "$h"
	for n in 1 2 3 4 5 6 7 8; do
		echo "{\"taskId\":\"n-$n\",\"key\":\"same\",\"taskType\":\"none\",\"payload\":{}}"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	run_worker --handler "none=$h" --concurrency 8 --order none
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(jq -s '[.[] | select(.status == "delivered")] | length' "$WORKER_OUT")" = 8 ]
	[ "$(grep -c '^end n-' "$log")" = 8 ]
	# one key, one partition, and still several at once (key or partition
	# order would allow only one)
	awk '/^start/ {open++; if (open > max) max = open} /^end/ {open--} END {exit !(max >= 2)}' "$log"
}

@test "kill -9 mid-run, then a restart: every task is delivered at least once" {
	start_broker 4
	done_file=$BATS_TEST_TMPDIR/done.txt
	h=$(record_handler "$done_file" 0.02)
	for i in $(seq 1 200); do
		echo "{\"taskId\":\"k9-$i\",\"taskType\":\"rec\",\"payload\":{\"i\":$i}}"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"

	start_worker --handler "rec=$h" --concurrency 4
	WAIT_TIMEOUT=60 wait_for at_least 40 "$done_file"
	kill -9 "$WORKER_PID"
	wait_exit "$WORKER_PID" 10
	[ "$EXIT_STATUS" = 137 ]
	(($(lines "$done_file") < 200)) # it was killed mid-run

	run_worker --handler "rec=$h" --concurrency 4 --exit-idle 3s
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	# every submitted task ran at least once (repeats are allowed)
	missing=$(comm -23 <(jq -r .taskId "$SUBMITTED" | sort -u) <(sort -u "$done_file"))
	[ -z "$missing" ] || { echo "never delivered: $missing"; false; }
}

@test "SIGTERM mid-run drains and commits: a restart repeats nothing" {
	start_broker 4
	done_file=$BATS_TEST_TMPDIR/done.txt
	h=$(record_handler "$done_file" 0.02)
	for i in $(seq 1 200); do
		echo "{\"taskId\":\"term-$i\",\"taskType\":\"rec\",\"payload\":{\"i\":$i}}"
	done >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"

	start_worker --handler "rec=$h" --concurrency 4
	first_out=$WORKER_OUT
	WAIT_TIMEOUT=60 wait_for at_least 40 "$done_file"
	kill -TERM "$WORKER_PID"
	wait_exit "$WORKER_PID" 40
	[ "$EXIT_STATUS" = 0 ] || { show_worker; false; }
	n1=$(lines "$done_file")
	((n1 < 200)) # it stopped mid-run
	# what ran was reported: one line per run
	[ "$(lines "$first_out")" = "$n1" ]

	run_worker --handler "rec=$h" --concurrency 4 --exit-idle 3s
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	[ "$(lines "$done_file")" = 200 ]
	[ "$(sort -u "$done_file" | grep -c .)" = 200 ]
	[ "$(lines "$WORKER_OUT")" = $((200 - n1)) ]
}

@test "--metrics: Prometheus counters by type and class, latency, lag; /healthz; SIGTERM exits 0" {
	start_broker 2
	start_smtpd
	port=$(free_port)
	{
		email_task m-1 "a@example.com" "One" "1"
		email_task m-2 "b@example.com" "Two" "2"
		echo '{"taskId":"m-3","taskType":"invoice","payload":{}}'
	} >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"
	start_worker --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--from sender@example.com --metrics "127.0.0.1:$port"
	WAIT_TIMEOUT=40 wait_for at_least 3 "$WORKER_OUT"
	m() { curl -sf "http://127.0.0.1:$port/metrics"; }
	has_lag() { m | grep -q '^taskstream_worker_consumer_lag{partition="[01]"} 0$'; }
	WAIT_TIMEOUT=20 wait_for has_lag
	metrics=$(m)
	grep -qx 'taskstream_worker_tasks_consumed_total 3' <<<"$metrics"
	grep -qx 'taskstream_worker_tasks_delivered_total{type="email"} 2' <<<"$metrics"
	grep -qx 'taskstream_worker_tasks_dead_lettered_total{type="invoice",class="unknown-task-type"} 1' <<<"$metrics"
	grep -qx 'taskstream_worker_task_duration_seconds_count{type="email"} 2' <<<"$metrics"
	grep -qx 'taskstream_worker_tasks_in_flight 0' <<<"$metrics"
	grep -qx 'taskstream_worker_partitions_assigned 2' <<<"$metrics"
	grep -q '^# TYPE taskstream_worker_retries_total counter' <<<"$metrics"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]
	kill -TERM "$WORKER_PID"
	wait_exit "$WORKER_PID" 40
	[ "$EXIT_STATUS" = 0 ]
}

@test "bad configuration stops at the start with 78 (64 for a stray argument)" {
	run -78 ts-worker --handler 'NoSuch=/bin/true'
	[[ $output == *"ts-worker: --handler NoSuch: 'NoSuch' is not a task type"* ]]
	run -78 ts-worker --handler 'x=/bin/true' --handler 'x=/bin/false'
	[[ $output == *"--handler x given twice"* ]]
	run -78 ts-worker --email-url 'gopher://mail.example.com'
	[[ $output == ts-worker:* ]]
	run -64 ts-worker extra-arg
	[[ $output == *"unexpected argument 'extra-arg'"* ]]
	run -0 ts-worker --help
	[[ $output == *--handler-timeout* && $output == *--exit-idle* ]]
}
