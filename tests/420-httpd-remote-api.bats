#!/usr/bin/env bats
# The seed's three-service layout: a sender whose transport is a remote
# TaskStream notification API (ts-httpd), with and without a bearer token.
load helpers
load helpers_httpd

setup() {
	start_broker
	start_smtpd
	echo 's3cr3t-api-token' > "$BATS_TEST_TMPDIR/token"
	start_httpd --token-file "$BATS_TEST_TMPDIR/token" \
		--email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" --from ops@example.com
}

@test "remote API: ts-send through ts-httpd with TS_API_TOKEN_FILE delivers over SMTP" {
	TS_API_TOKEN_FILE=$BATS_TEST_TMPDIR/token run ts-send email --email-url "$HTTPD_URL" \
		--to ada@example.com --subject 'via the API' --body 'hello over HTTP'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"${lines[-1]}")" = sent ]
	wait_for test -n "$(ls "$SMTPD_MAILDIR/new")"
	f=$(maildir_files "$SMTPD_MAILDIR" | head -n 1)
	grep -q '^Subject: via the API' "$f"
	grep -q 'hello over HTTP' "$f"
	# the token never shows up in what the sender printed
	[[ "$output" != *s3cr3t-api-token* ]]
}

@test "remote API: without the token the API answers 401 and ts-send exits 69 (permanent)" {
	run ts-send email --email-url "$HTTPD_URL" \
		--to ada@example.com --subject 'no token' --body 'x'
	echo "$output"
	[ "$status" -eq 69 ]
	[[ "$output" == *"HTTP 401"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}

@test "remote API: a wrong token is refused too, and is not echoed" {
	echo 'wrong-token-xyz' > "$BATS_TEST_TMPDIR/wrong"
	TS_API_TOKEN_FILE=$BATS_TEST_TMPDIR/wrong run ts-send email --email-url "$HTTPD_URL" \
		--to ada@example.com --subject 'wrong token' --body 'x'
	echo "$output"
	[ "$status" -eq 69 ]
	[[ "$output" != *wrong-token-xyz* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}
