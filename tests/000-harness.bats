#!/usr/bin/env bats
# The test harness itself: the fakes must behave like the real servers and
# the helpers must start, find and stop them.  Every check here can fail.

bats_require_minimum_version 1.5.0

load helpers

teardown() {
	helpers_teardown
}

SMTPCLIENT() { "$HELPERS_PYTHON" "$REPO/tests/fakes/smtpclient.py" "$@"; }

# An RFC 5322 message with CRLF line ends, for curl -T.
write_message() {
	printf 'From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: %s\r\n\r\nHello, harness.\r\n' \
		"${2:-harness test}" >"$1"
}

curl_smtp() {
	curl -sS --max-time 20 "smtp://127.0.0.1:$SMTPD_PORT" \
		--mail-from sender@example.com "$@"
}

json_field() { jq -r "$1" <<<"$output"; }

# --- helpers ---------------------------------------------------------------

@test "free_port gives a bindable port; wait_for succeeds and times out" {
	port=$(free_port)
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536))
	"$HELPERS_PYTHON" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port"

	touch "$BATS_TEST_TMPDIR/flag"
	wait_for test -e "$BATS_TEST_TMPDIR/flag"

	start=$(date +%s%N)
	WAIT_TIMEOUT=0.5 run -1 wait_for false
	[[ $output == *"timed out"* ]]
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	((elapsed_ms >= 400 && elapsed_ms < 3000))

	# a command that succeeds only after a while
	(sleep 0.5 && touch "$BATS_TEST_TMPDIR/later") &
	track_pid $!
	WAIT_TIMEOUT=5 wait_for test -e "$BATS_TEST_TMPDIR/later"
}

@test "start_fake fails loudly when a fake cannot start, leaving nothing running" {
	run -1 start_smtpd --require-tls
	[[ $output == *"--require-tls needs --tls"* ]]
	run -1 start_fake no-such-fake
	[[ $output == *"no such fake"* ]]
	[[ ! -s $BATS_TEST_TMPDIR/.helpers-pids ]]
}

@test "helpers_teardown stops fakes and tracked processes" {
	start_httpsink
	sink_pid=$HTTPSINK_PID
	sleep 300 </dev/null >/dev/null 2>&1 3>&- &
	sleeper=$!
	track_pid "$sleeper"
	kill -0 "$sink_pid"
	kill -0 "$sleeper"
	helpers_teardown
	run ! kill -0 "$sink_pid"
	run ! kill -0 "$sleeper"
	[[ ! -e $BATS_TEST_TMPDIR/.helpers-pids ]]
}

@test "a suite without teardown still stops what it started, and bats does not hang" {
	inner=$BATS_TEST_TMPDIR/inner.bats
	pids=$BATS_TEST_TMPDIR/pids
	# (bats' preprocessor would rewrite a literal test line in a heredoc)
	at=@
	cat >"$inner" <<-EOF
		load '$REPO/tests/helpers'
		setup_file() {
			start_httpsink
			echo "\$HTTPSINK_PID" >>'$pids'
		}
		${at}test inner {
			start_smtpd
			start_bg sleeper sleep 300
			echo "\$SMTPD_PID \$SLEEPER_PID" >>'$pids'
		}
	EOF
	run -0 timeout 60 bats "$inner" </dev/null
	[[ $output == *"ok 1 inner"* ]]
	read -r -d '' -a started <"$pids" || true
	[[ ${#started[@]} == 3 ]]
	for p in "${started[@]}"; do
		run ! kill -0 "$p"
	done
}

@test "make_cert and make_ca_cert produce certificates that verify" {
	make_cert "$BATS_TEST_TMPDIR/self"
	openssl x509 -in "$CERT" -noout -ext subjectAltName | grep -q 'DNS:localhost'
	openssl x509 -in "$CERT" -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1'
	openssl pkey -in "$KEY" -noout

	make_ca_cert "$BATS_TEST_TMPDIR/ca"
	openssl verify -x509_strict -CAfile "$CA_CERT" -verify_hostname localhost "$CERT"
	openssl verify -x509_strict -CAfile "$CA_CERT" -verify_ip 127.0.0.1 "$CERT"
	run ! openssl verify -CAfile "$CA_CERT" -verify_hostname example.com "$CERT"
}

# --- SMTP --------------------------------------------------------------------

@test "smtpd: plain delivery is stored raw in the Maildir and logged" {
	start_smtpd
	write_message "$BATS_TEST_TMPDIR/msg.eml" "plain delivery"
	curl_smtp --mail-rcpt rcpt@example.com --mail-rcpt other@example.com \
		-T "$BATS_TEST_TMPDIR/msg.eml"

	[[ $(maildir_count "$SMTPD_MAILDIR") == 1 ]]
	file=$(maildir_files "$SMTPD_MAILDIR")
	[[ $file == "$SMTPD_MAILDIR/new/"* ]]
	grep -q '^Subject: plain delivery' "$file"
	# raw bytes: CRLF line ends as sent
	grep -q $'Hello, harness.\r$' "$file"

	run jq -c . "$SMTPD_LOG"
	[[ ${#lines[@]} == 1 ]]
	[[ $(json_field .mail_from) == sender@example.com ]]
	[[ $(json_field '.rcpt_tos | join(",")') == rcpt@example.com,other@example.com ]]
	[[ $(json_field .file) == "$file" ]]
	[[ $(json_field .tls) == false ]]
	[[ $(json_field .auth_user) == null ]]
}

@test "smtpd --reject-rcpt answers 550 5.1.1 for matching recipients only" {
	start_smtpd --reject-rcpt '^nobody@'
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to nobody@example.com
	[[ $output == *"RCPT 550 5.1.1"* ]]
	[[ $output != *"DATA "* ]]

	run -0 SMTPCLIENT --port "$SMTPD_PORT" --to nobody@example.com --to somebody@example.com
	[[ $output == *"RCPT 550 5.1.1 <nobody@example.com>"* ]]
	[[ $output == *"DATA 250"* ]]
	[[ $(jq -r '.rcpt_tos | join(",")' "$SMTPD_LOG") == somebody@example.com ]]

	write_message "$BATS_TEST_TMPDIR/msg.eml"
	run ! curl_smtp --mail-rcpt nobody@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	[[ $output == *550* ]]
	[[ $(maildir_count "$SMTPD_MAILDIR") == 1 ]]
}

@test "smtpd --defer 2 answers 451 twice (per server), then accepts" {
	start_smtpd --defer 2
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com
	[[ $output == *"DATA 451 4.3.0"* ]]
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com
	[[ $output == *"DATA 451 4.3.0"* ]]
	[[ $(maildir_count "$SMTPD_MAILDIR") == 0 ]]
	run -0 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com
	[[ $output == *"DATA 250"* ]]
	[[ $(maildir_count "$SMTPD_MAILDIR") == 1 ]]
}

@test "smtpd --defer-at mail defers the MAIL command" {
	start_smtpd --defer 1 --defer-at mail
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com --count 2
	[[ ${lines[1]} == "MAIL 451 4.3.0"* ]]
	[[ $output == *"DATA 250"* ]]
	[[ $(maildir_count "$SMTPD_MAILDIR") == 1 ]]
}

@test "smtpd --reject-all answers 550 to DATA and stores nothing" {
	start_smtpd --reject-all
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com
	[[ $output == *"DATA 550 5.7.1"* ]]
	[[ $(maildir_count "$SMTPD_MAILDIR") == 0 ]]
	[[ ! -s $SMTPD_LOG ]]
}

@test "smtpd --require-tls refuses MAIL before STARTTLS and accepts after it" {
	make_cert "$BATS_TEST_TMPDIR/cert"
	start_smtpd --tls "$CERT,$KEY" --require-tls
	write_message "$BATS_TEST_TMPDIR/msg.eml" "over tls"

	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com
	[[ $output == *"MAIL 530"* ]]
	run ! curl_smtp --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	[[ $(maildir_count "$SMTPD_MAILDIR") == 0 ]]

	curl_smtp --ssl-reqd -k --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	[[ $(maildir_count "$SMTPD_MAILDIR") == 1 ]]
	[[ $(jq -r .tls "$SMTPD_LOG") == true ]]

	run -0 SMTPCLIENT --port "$SMTPD_PORT" --starttls --insecure --to b@example.com
	[[ $output == *"STARTTLS 220"* && $output == *"DATA 250"* ]]
}

@test "smtpd TLS certificate verifies against make_ca_cert's CA, a self-signed one does not" {
	make_ca_cert "$BATS_TEST_TMPDIR/ca"
	start_smtpd --tls "$CERT,$KEY" --require-tls
	write_message "$BATS_TEST_TMPDIR/msg.eml"
	curl_smtp --ssl-reqd --cacert "$CA_CERT" --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	SSL_CERT_FILE=$CA_CERT run -0 SMTPCLIENT --port "$SMTPD_PORT" --starttls --to a@example.com
	# without the CA the same certificate is refused
	run ! curl_smtp --ssl-reqd --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	[[ $(maildir_count "$SMTPD_MAILDIR") == 2 ]]

	make_cert "$BATS_TEST_TMPDIR/self"
	start_smtpd --tls "$CERT,$KEY"
	run -60 curl_smtp --ssl-reqd --cacert "$CA_CERT" --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
}

@test "smtpd --auth: wrong credentials 535, MAIL without AUTH 530, right ones accepted" {
	start_smtpd --auth alice:s3cret
	write_message "$BATS_TEST_TMPDIR/msg.eml"

	run -1 SMTPCLIENT --port "$SMTPD_PORT" --auth alice:wrong --to a@example.com
	[[ $output == *"AUTH 535"* ]]
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --auth-mech LOGIN --auth bob:s3cret --to a@example.com
	[[ $output == *"AUTH 535"* ]]
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --to a@example.com
	[[ $output == *"MAIL 530"* ]]
	run -67 curl_smtp --user alice:wrong --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	[[ $(maildir_count "$SMTPD_MAILDIR") == 0 ]]

	run -0 SMTPCLIENT --port "$SMTPD_PORT" --auth alice:s3cret --to a@example.com
	[[ $output == *"AUTH 235"* && $output == *"DATA 250"* ]]
	run -0 SMTPCLIENT --port "$SMTPD_PORT" --auth-mech LOGIN --auth alice:s3cret --to a@example.com
	curl_smtp --user alice:s3cret --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	[[ $(maildir_count "$SMTPD_MAILDIR") == 3 ]]
	run jq -s -e 'length == 3 and all(.[]; .auth_user == "alice")' "$SMTPD_LOG"
	((status == 0))
}

@test "smtpd --auth with --tls: AUTH only after STARTTLS" {
	make_cert "$BATS_TEST_TMPDIR/cert"
	start_smtpd --tls "$CERT,$KEY" --auth alice:s3cret
	run -1 SMTPCLIENT --port "$SMTPD_PORT" --auth alice:s3cret --to a@example.com
	[[ $output == *"AUTH 538"* ]]
	run -0 SMTPCLIENT --port "$SMTPD_PORT" --starttls --insecure --auth alice:s3cret --to a@example.com
	write_message "$BATS_TEST_TMPDIR/msg.eml"
	curl_smtp --ssl-reqd -k --user alice:s3cret --mail-rcpt a@example.com -T "$BATS_TEST_TMPDIR/msg.eml"
	run jq -s -e 'length == 2 and all(.[]; .auth_user == "alice" and .tls)' "$SMTPD_LOG"
	((status == 0))
}

@test "smtpd --delay-ms delays sessions concurrently, not one after another" {
	start_smtpd --delay-ms 500
	# 20 sessions at once from one client process (threads), timed inside it
	run -0 "$HELPERS_PYTHON" -c '
import smtplib, sys, threading, time
port = int(sys.argv[1])
def send(i):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("a@example.com", ["r%d@example.com" % i], b"Subject: x\r\n\r\nx\r\n")
threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
t0 = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
print(int((time.monotonic() - t0) * 1000))' "$SMTPD_PORT"
	[[ $(maildir_count "$SMTPD_MAILDIR") == 20 ]]
	# one after another this would take 20 x 500 ms = 10 s
	((output >= 500 && output < 4000))
}

# --- Msg91 -----------------------------------------------------------------

msg91_post() {
	curl -sS --max-time 10 -w '\n%{http_code}' -X POST \
		"http://127.0.0.1:$MSG91_PORT${MSG91_PATH:-/api/v5/flow/}" \
		-H "authkey: ${AUTHKEY:-key123}" \
		-H "Content-Type: ${CTYPE:-application/json}" --data-binary "$1"
}

msg91_body() {
	jq -cn --arg m "${1:-919812345678}" --arg t "${2:-tmpl-1}" \
		'{template_id: $t, short_url: "0", recipients: [{mobiles: $m, name: "Asha"}]}'
}

@test "msg91: a correct flow request gets type success and is logged" {
	start_msg91 --authkey key123 --template tmpl-1
	run -0 msg91_post "$(msg91_body)"
	[[ ${lines[1]} == 200 ]]
	[[ $(jq -r .type <<<"${lines[0]}") == success ]]
	[[ $(jq -r .message <<<"${lines[0]}") =~ ^[0-9a-f]{24}$ ]]

	run jq -c . "$MSG91_LOG"
	[[ ${#lines[@]} == 1 ]]
	[[ $(json_field .status) == 200 ]]
	[[ $(json_field .method) == POST ]]
	[[ $(json_field .path) == /api/v5/flow/ ]]
	[[ $(json_field .headers.authkey) == key123 ]]
	[[ $(json_field .body.recipients[0].mobiles) == 919812345678 ]]
	[[ $(json_field .body.recipients[0].name) == Asha ]]
}

@test "msg91: wrong authkey 401, wrong template, + in mobiles, bad content type refused" {
	start_msg91 --authkey key123 --template tmpl-1
	AUTHKEY=nope run -0 msg91_post "$(msg91_body)"
	[[ ${lines[1]} == 401 ]]
	[[ $(jq -r .type <<<"${lines[0]}") == error ]]

	run -0 msg91_post "$(msg91_body +919812345678)"
	[[ ${lines[1]} == 400 && $(jq -r .type <<<"${lines[0]}") == error ]]
	[[ ${lines[0]} == *"mobile"* ]]
	run -0 msg91_post "$(msg91_body 98123)"
	[[ ${lines[1]} == 400 ]]

	run -0 msg91_post "$(msg91_body 919812345678 other)"
	[[ ${lines[1]} == 400 && ${lines[0]} == *"template"* ]]

	run -0 msg91_post '{"template_id":"tmpl-1","short_url":0,"recipients":[{"mobiles":"919812345678"}]}'
	[[ ${lines[1]} == 400 && ${lines[0]} == *"short_url"* ]]
	run -0 msg91_post '{"template_id":"tmpl-1","recipients":[]}'
	[[ ${lines[1]} == 400 ]]
	run -0 msg91_post 'not json'
	[[ ${lines[1]} == 400 ]]
	CTYPE=text/plain run -0 msg91_post "$(msg91_body)"
	[[ ${lines[1]} == 400 ]]
	MSG91_PATH=/api/v5/flow run -0 msg91_post "$(msg91_body)"
	[[ ${lines[1]} == 404 ]]

	run jq -s -e 'length == 9 and all(.[]; .status != 200)' "$MSG91_LOG"
	((status == 0))
}

@test "msg91 --fail 503:1 answers 503 with Retry-After, then 200" {
	start_msg91 --authkey key123 --template tmpl-1 --fail 503:1
	run -0 curl -sS -i -X POST "http://127.0.0.1:$MSG91_PORT/api/v5/flow/" \
		-H 'authkey: key123' -H 'Content-Type: application/json' --data-binary "$(msg91_body)"
	[[ ${lines[0]} == "HTTP/1.1 503"* ]]
	[[ $output == *$'Retry-After: 1\r'* ]]
	run -0 msg91_post "$(msg91_body)"
	[[ ${lines[1]} == 200 && $(jq -r .type <<<"${lines[0]}") == success ]]
}

@test "msg91 --error-body answers 200 with type error to valid requests" {
	start_msg91 --authkey key123 --template tmpl-1 --error-body
	run -0 msg91_post "$(msg91_body)"
	[[ ${lines[1]} == 200 && $(jq -r .type <<<"${lines[0]}") == error ]]
}

# --- Twilio ------------------------------------------------------------------

SID=AC0123456789abcdef0123456789abcdef

twilio_post() {
	curl -sS --max-time 10 -w '\n%{http_code}' -u "${TW_USER:-$SID}:${TW_TOKEN:-tok}" \
		"http://127.0.0.1:$TWILIO_PORT/2010-04-01/Accounts/${TW_PATH_SID:-$SID}/Messages.json" "$@"
}

@test "twilio: a correct request gets 201 with a queued message resource" {
	start_twilio --sid "$SID" --token tok
	run -0 twilio_post --data-urlencode To=+919812345678 --data-urlencode From=+15005550006 \
		--data-urlencode 'Body=Hello & welcome'
	[[ ${lines[1]} == 201 ]]
	body=${lines[0]}
	[[ $(jq -r .sid <<<"$body") =~ ^SM[0-9a-f]{32}$ ]]
	[[ $(jq -r .status <<<"$body") == queued ]]
	[[ $(jq -r .to <<<"$body") == +919812345678 ]]
	[[ $(jq -r .from <<<"$body") == +15005550006 ]]
	[[ $(jq -r .body <<<"$body") == 'Hello & welcome' ]]
	[[ $(jq -r .account_sid <<<"$body") == "$SID" ]]
	[[ $(jq -r '.form.Body' "$TWILIO_LOG") == 'Hello & welcome' ]]
	[[ $(jq -r '.status' "$TWILIO_LOG") == 201 ]]
}

@test "twilio: wrong token or sid 401 (20003); missing fields 400 with Twilio's codes" {
	start_twilio --sid "$SID" --token tok
	form=(--data-urlencode To=+919812345678 --data-urlencode From=+15005550006 --data-urlencode Body=hi)
	TW_TOKEN=bad run -0 twilio_post "${form[@]}"
	[[ ${lines[1]} == 401 && $(jq -r .code <<<"${lines[0]}") == 20003 ]]
	TW_PATH_SID=AC00000000000000000000000000000000 run -0 twilio_post "${form[@]}"
	[[ ${lines[1]} == 401 ]]
	run -0 curl -sS -w '\n%{http_code}' "http://127.0.0.1:$TWILIO_PORT/2010-04-01/Accounts/$SID/Messages.json" "${form[@]}"
	[[ ${lines[1]} == 401 ]]

	run -0 twilio_post --data-urlencode To=+919812345678 --data-urlencode From=+15005550006
	[[ ${lines[1]} == 400 && $(jq -r .code <<<"${lines[0]}") == 21602 ]]
	run -0 twilio_post --data-urlencode From=+15005550006 --data-urlencode Body=hi
	[[ ${lines[1]} == 400 && $(jq -r .code <<<"${lines[0]}") == 21604 ]]
	run -0 twilio_post --data-urlencode To=+919812345678 --data-urlencode Body=hi
	[[ ${lines[1]} == 400 && $(jq -r .code <<<"${lines[0]}") == 21603 ]]
	run -0 twilio_post --data-urlencode To=919812345678 --data-urlencode From=+15005550006 --data-urlencode Body=hi
	[[ ${lines[1]} == 400 && $(jq -r .code <<<"${lines[0]}") == 21211 ]]
}

@test "twilio --fail 429:1 answers 429 (20429) with Retry-After, then 201" {
	start_twilio --sid "$SID" --token tok --fail 429:1
	form=(--data-urlencode To=+919812345678 --data-urlencode From=+15005550006 --data-urlencode Body=hi)
	run -0 twilio_post -i "${form[@]}"
	[[ ${lines[0]} == "HTTP/1.1 429"* && $output == *'"code": 20429'* ]]
	[[ $output == *$'Retry-After: 1\r'* ]]
	run -0 twilio_post "${form[@]}"
	[[ ${lines[1]} == 201 ]]
}

# --- httpsink ------------------------------------------------------------------

@test "httpsink answers its status sequence, the last one repeating, and logs requests" {
	start_httpsink --statuses 503,503,200 --retry-after 2
	codes=()
	for i in 1 2 3 4; do
		codes+=("$(curl -sS -o /dev/null -w '%{http_code}' -X POST \
			-H 'Content-Type: application/json' --data-binary "{\"n\":$i}" "$HTTPSINK_URL/hook/$i")")
	done
	[[ ${codes[*]} == "503 503 200 200" ]]
	run -0 curl -sS -i "$HTTPSINK_URL/x"
	[[ $output == *"HTTP/1.1 200"* && $output != *Retry-After* ]]

	run jq -s -c 'map([.method, .path, .body, .status])' "$HTTPSINK_LOG"
	[[ $output == '[["POST","/hook/1","{\"n\":1}",503],["POST","/hook/2","{\"n\":2}",503],["POST","/hook/3","{\"n\":3}",200],["POST","/hook/4","{\"n\":4}",200],["GET","/x","",200]]' ]]
	[[ $(jq -s -r '.[0].headers["content-type"]' "$HTTPSINK_LOG") == application/json ]]
}

@test "httpsink --retry-after on 429 and --delay-ms, over TLS" {
	make_ca_cert "$BATS_TEST_TMPDIR/ca"
	start_httpsink --statuses 429,204 --retry-after 3 --delay-ms 300 --tls "$CERT,$KEY"
	start=$(date +%s%N)
	run -0 curl -sS -i --cacert "$CA_CERT" "https://localhost:$HTTPSINK_PORT/"
	[[ ${lines[0]} == "HTTP/1.1 429"* && $output == *$'Retry-After: 3\r'* ]]
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	((elapsed_ms >= 300))
	run -0 curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA_CERT" "https://127.0.0.1:$HTTPSINK_PORT/"
	[[ $output == 204 ]]
}

# --- broker ------------------------------------------------------------------

@test "start_broker, consume and broker_ctl against the test broker" {
	start_broker 2
	[[ -n $TS_BROKERS && -n $TS_TOPIC && -n $TS_GROUP ]]
	[[ $TS_DLQ_TOPIC != "$TS_TOPIC" ]]
	for t in "$TS_TOPIC" "$TS_DLQ_TOPIC"; do
		run -0 kcat -b "$TS_BROKERS" -L -J -t "$t"
		[[ $(jq '.topics[0].partitions | length' <<<"$output") == 2 ]]
	done

	printf 'k1:{"n":1}\nk2:{"n":2}\nk3:{"n":3}\n' |
		kcat -P -b "$TS_BROKERS" -t "$TS_TOPIC" -K: -H traceparent=tp-1 -H ts-attempts=0
	run -0 consume "$TS_TOPIC" 3
	[[ ${#lines[@]} == 3 ]]
	run jq -s -e 'length == 3
		and (map(.key) | sort) == ["k1", "k2", "k3"]
		and (map(.payload | fromjson | .n) | sort) == [1, 2, 3]
		and all(.[]; .headers == {"traceparent": "tp-1", "ts-attempts": "0"}
			and (.partition | type) == "number" and (.offset | type) == "number")' \
		<<<"$output"
	((status == 0))

	run -0 consume "$TS_DLQ_TOPIC"
	[[ -z $output ]]

	start=$(date +%s%N)
	run -1 --separate-stderr consume "$TS_TOPIC" 4 2
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	[[ ${#lines[@]} == 3 && $stderr == *"3 of 4 records"* ]]
	((elapsed_ms >= 1900 && elapsed_ms < 10000))

	if [[ $TS_TEST_BROKER == dev ]]; then
		broker_ctl "rtt 1 5"
		wait_for grep -q '^ok rtt 1 5' "$DEVBROKER_OUT"
		pid=$TS_BROKER_PID
		stop_broker
		run ! kill -0 "$pid"
		run -1 broker_ctl "up 1"
	else
		run -1 broker_ctl "down 1"
	fi
}
