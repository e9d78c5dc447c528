#!/usr/bin/env bats
# ts-send sms: Msg91 Flow API v5 and Twilio Messages API (loopback fakes
# that check requests like the real APIs), the file: and dry-run
# transports, the remote notification API, failure classes and secrets.

bats_require_minimum_version 1.5.0

load helpers
load helpers_send

AUTHKEY='msg91-K3y-s3cr3t'
TOKEN='tw1l10-t0k3n-s3cr3t'
SID='AC0123456789abcdef0123456789abcdef'

setup() {
	unset TS_EMAIL_URL TS_SMS_URL TS_MSG91_AUTHKEY TS_MSG91_AUTHKEY_FILE \
		TS_TWILIO_TOKEN TS_TWILIO_TOKEN_FILE TS_CONFIG TS_SEND_TIMEOUT
}

teardown() {
	helpers_teardown
}

send() {
	run --separate-stderr ts-send "$@"
}

json() { jq -r "$1" <<<"$output"; }

msg91_url() {
	printf 'msg91://%s@tmpl-42?sender=TSTEST&api=%s' "$AUTHKEY" "$MSG91_URL"
}

@test "Msg91: the flow request, field by field; success only on type:success" {
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42
	send sms --sms-url "$(msg91_url)" --mobile +919812345678 --var name=Asha \
		--var otp=4711
	[ "$status" -eq 0 ]
	[ "$(json .status)" = sent ]
	[ "$(json .mobile)" = +919812345678 ]
	[[ $(json .id) =~ ^[0-9a-f]{24}$ ]]
	[ "$(wc -l <"$MSG91_LOG")" -eq 1 ]
	jq -e '.method == "POST" and .path == "/api/v5/flow/" and .status == 200' "$MSG91_LOG"
	jq -e --arg k "$AUTHKEY" '.headers.authkey == $k and
		(.headers["content-type"] | startswith("application/json"))' "$MSG91_LOG"
	jq -e '.body == {"template_id":"tmpl-42","sender":"TSTEST","short_url":"0",
		"recipients":[{"mobiles":"919812345678","name":"Asha","otp":"4711"}]}' "$MSG91_LOG"
	# the reply's request id is the result id
	[ "$(json .id)" = "$(jq -r .response.message "$MSG91_LOG")" ]
}

@test "Msg91: a number without '+' is sent as is; the key may come from TS_MSG91_AUTHKEY_FILE" {
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42
	printf '%s\n' "$AUTHKEY" >"$BATS_TEST_TMPDIR/key"
	TS_MSG91_AUTHKEY_FILE=$BATS_TEST_TMPDIR/key send sms \
		--sms-url "msg91://tmpl-42?api=$MSG91_URL" --mobile 447700900123 --var name=Bo
	[ "$status" -eq 0 ]
	jq -e '.body.recipients == [{"mobiles":"447700900123","name":"Bo"}] and
		(.body | has("sender") | not)' "$MSG91_LOG"
	# percent-encoded query values work as well as plain ones
	enc=$(jq -rn --arg u "$MSG91_URL" '$u | @uri')
	TS_MSG91_AUTHKEY=$AUTHKEY send sms --sms-url "msg91://tmpl-42?api=$enc" \
		--mobile 447700900123 --var name=Bo
	[ "$status" -eq 0 ]
	[ "$(wc -l <"$MSG91_LOG")" -eq 2 ]
}

@test "Msg91: an error body gives 69, a wrong key 69, 503 gives 75 with Retry-After" {
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42 --error-body 'Template not approved'
	send sms --sms-url "$(msg91_url)" --mobile +919812345678 --var name=Asha
	[ "$status" -eq 69 ]
	[ "$(json .class)" = permanent ]
	[[ $(json .error) == *"Template not approved"* ]]

	send sms --sms-url "msg91://wrong-key@tmpl-42?api=$MSG91_URL" \
		--mobile +919812345678 --var name=Asha
	[ "$status" -eq 69 ]
	[ "$(json .code)" = 401 ]
	[[ $(json .error) == *"Authentication failure"* ]]

	stop_pid "$MSG91_PID"
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42 --fail 503:1 --fail 418:1
	send sms --sms-url "$(msg91_url)" --mobile +919812345678 --var name=Asha
	[ "$status" -eq 75 ]
	[ "$(json .class)" = transient ]
	[ "$(json .retryAfterMs)" = 1000 ]
	send sms --sms-url "$(msg91_url)" --mobile +919812345678 --var name=Asha
	[ "$status" -eq 69 ]
	[ "$(json .code)" = 418 ]
	send sms --sms-url "$(msg91_url)" --mobile +919812345678 --var name=Asha
	[ "$status" -eq 0 ]
}

@test "Msg91: an unreachable API is transient (75)" {
	port=$(free_port)
	send sms --sms-url "msg91://$AUTHKEY@tmpl?api=http://127.0.0.1:$port" \
		--mobile +919812345678 --var name=Asha
	[ "$status" -eq 75 ]
	[[ $(json .error) == msg91:*"onnect"* ]]
}

@test "Twilio: basic auth and the form body (To with +, From, Body)" {
	start_twilio --sid "$SID" --token "$TOKEN"
	send sms --sms-url "twilio://$SID:$TOKEN@%2B15005550006?api=$TWILIO_URL" \
		--mobile 919812345678 --message 'Your code is 4711 & welcome'
	[ "$status" -eq 0 ]
	[[ $(json .id) =~ ^SM[0-9a-f]{32}$ ]]
	[ "$(json .code)" = 201 ]
	jq -e --arg p "/2010-04-01/Accounts/$SID/Messages.json" \
		'.method == "POST" and .path == $p and .status == 201' "$TWILIO_LOG"
	jq -e '.form == {"To":"+919812345678","From":"+15005550006","Body":"Your code is 4711 & welcome"}' \
		"$TWILIO_LOG"
	jq -e '.headers["content-type"] == "application/x-www-form-urlencoded"' "$TWILIO_LOG"
	auth=$(jq -r '.headers.authorization' "$TWILIO_LOG")
	[ "$(base64 -d <<<"${auth#Basic }")" = "$SID:$TOKEN" ]
	[ "$(json .id)" = "$(jq -r .response.sid "$TWILIO_LOG")" ]
}

@test "Twilio: token from TS_TWILIO_TOKEN; a wrong token 69, 429 is 75, no message text is 65" {
	start_twilio --sid "$SID" --token "$TOKEN" --fail 429:1
	url="twilio://$SID@+15005550006?api=$TWILIO_URL"
	TS_TWILIO_TOKEN=$TOKEN send sms --sms-url "$url" --mobile +919812345678 --message hi
	[ "$status" -eq 75 ]
	[ "$(json .retryAfterMs)" = 1000 ]
	[[ $(json .error) == *"20429"* ]]
	TS_TWILIO_TOKEN=$TOKEN send sms --sms-url "$url" --mobile +919812345678 --message hi
	[ "$status" -eq 0 ]
	TS_TWILIO_TOKEN=wrong send sms --sms-url "$url" --mobile +919812345678 --message hi
	[ "$status" -eq 69 ]
	[[ $(json .error) == *"error 20003"* ]]
	TS_TWILIO_TOKEN=$TOKEN send sms --sms-url "$url" --mobile +919812345678 --var name=x
	[ "$status" -eq 65 ]
	[[ $(json .error) == "payload.message: required by Twilio"* ]]
	[ "$(wc -l <"$TWILIO_LOG")" -eq 3 ]
}

@test "a bad number is invalid input (65) and nothing is sent" {
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42
	for n in 12345 +91-98123-45678 abcdefghij 1234567890123456; do
		send sms --sms-url "$(msg91_url)" --mobile "$n" --var name=x
		[ "$status" -eq 65 ]
		[ "$(json .class)" = invalid ]
		[[ $(json .error) == mobile:* ]]
	done
	[ "$(wc -l <"$MSG91_LOG")" -eq 0 ]
	# usage: sms needs --mobile, and takes no email options
	send sms --sms-url - --var name=x
	[ "$status" -eq 64 ]
	send sms --sms-url - --mobile +919812345678 --subject s
	[ "$status" -eq 64 ]
	send sms --sms-url - --mobile +919812345678 --var bad
	[ "$status" -eq 64 ]
}

@test "no key or token in any output, --help, or ps argv" {
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42 --fail 503:1
	start_twilio --sid "$SID" --token "$TOKEN"
	for url in "$(msg91_url)" "msg91://$AUTHKEY@tmpl-42?api=http://127.0.0.1:1" \
		"twilio://$SID:$TOKEN@+15005550006?api=$TWILIO_URL" \
		"twilio://$SID:wrong-$TOKEN@+15005550006?api=$TWILIO_URL"; do
		send -vv sms --sms-url "$url" --mobile +919812345678 --message hi
		[[ $output != *s3cr3t* && $stderr != *s3cr3t* ]]
	done
	TS_SMS_URL=$(msg91_url) send --help
	[[ $output != *s3cr3t* ]]

	start_silent
	ts-send sms --send-timeout 60s \
		--sms-url "msg91://$AUTHKEY@tmpl-42?api=http://127.0.0.1:$SILENT_PORT" \
		--mobile +919812345678 --var name=x </dev/null >/dev/null 2>&1 3>&- &
	pid=$!
	track_pid "$pid" ts-send
	wait_for grep -q accepted "$SILENT_LOG"
	args=$(ps -o args= -p "$pid")
	[[ $args == *"--sms-url msg91://"*"@tmpl-42"* ]]
	[[ $args != *s3cr3t* ]]
	stop_pid "$pid"
}

@test "file: appends one JSON line per SMS; - prints it (dry run)" {
	out=$BATS_TEST_TMPDIR/sms.jsonl
	send sms --sms-url "file:$out" --mobile +919812345678 --var name=Asha --message hi
	[ "$status" -eq 0 ]
	send sms --sms-url "file:$out" --mobile 447700900123 --var name=Bo
	[ "$status" -eq 0 ]
	[ "$(wc -l <"$out")" -eq 2 ]
	jq -s -e '.[0].channel == "sms" and
		.[0].payload == {"mobile":"+919812345678","name":"Asha","message":"hi"} and
		(.[0].sentAt | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")) and
		.[1].payload.mobile == "447700900123"' "$out"
	send sms --sms-url - --mobile +919812345678 --var name=Asha
	[ "$status" -eq 0 ]
	head -n1 <<<"$output" | jq -e '.dryRun == true and .payload.name == "Asha"'
	tail -n1 <<<"$output" | jq -e '.status == "sent"'
}

@test "the remote notification API (http://): POST /api/sms/send {mobile,name}" {
	start_notifyapi --statuses 200,503 --retry-after 3
	send sms --sms-url "$NOTIFYAPI_URL/" --mobile +919812345678 --var name=Asha
	[ "$status" -eq 0 ]
	[ "$(json .id)" = api-0 ]
	jq -e '.path == "/api/sms/send" and .body == {"mobile":"+919812345678","name":"Asha"}' \
		"$NOTIFYAPI_LOG"
	send sms --sms-url "$NOTIFYAPI_URL" --mobile +919812345678 --var name=Asha
	[ "$status" -eq 75 ]
	[ "$(json .retryAfterMs)" = 3000 ]
}

@test "--json: email and SMS in one stream go to their transports" {
	start_msg91 --authkey "$AUTHKEY" --template tmpl-42
	md=$BATS_TEST_TMPDIR/md
	send --json --email-url "maildir:$md" --from me@example.com --sms-url "$(msg91_url)" <<-'EOF'
		{"taskType":"sms","payload":{"mobile":"+919812345678","name":"One"}}
		{"taskType":"email","payload":{"to":"a@example.com","subject":"s","body":"b"}}
		{"taskType":"sms","payload":{"mobile":"+919812345679","name":"Two"}}
	EOF
	[ "$status" -eq 0 ]
	jq -s -e 'map(.channel) == ["sms","email","sms"] and all(.[]; .status == "sent")' <<<"$output"
	[ "$(maildir_count "$md")" -eq 1 ]
	jq -s -e 'map(.body.recipients[0].name) == ["One","Two"]' "$MSG91_LOG"
}

@test "--json answers each message as it arrives, before the input ends" {
	out=$BATS_TEST_TMPDIR/sms.jsonl
	mkfifo "$BATS_TEST_TMPDIR/in"
	ts-send --json --sms-url "file:$out" <"$BATS_TEST_TMPDIR/in" \
		>"$BATS_TEST_TMPDIR/res" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	pid=$!
	track_pid "$pid" ts-send
	exec {in}>"$BATS_TEST_TMPDIR/in"
	echo '{"taskType":"sms","payload":{"mobile":"+919812345678","name":"first"}}' >&$in
	# the input is still open: the first result must come anyway
	wait_for grep -q '"line":1' "$BATS_TEST_TMPDIR/res"
	[ "$(wc -l <"$out")" -eq 1 ]
	echo '{"taskType":"sms","payload":{"mobile":"+919812345678","name":"second"}}' >&$in
	exec {in}>&-
	wait "$pid"
	[ "$(grep -c '"status":"sent"' "$BATS_TEST_TMPDIR/res")" -eq 2 ]
	jq -s -e 'map(.payload.name) == ["first","second"]' "$out"
}
