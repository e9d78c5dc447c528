#!/usr/bin/env bats
# The HTTPS clients (libcurl): a notification API and a --handler over TLS,
# verified against a private CA named the way the SMTP transport takes it
# (SSL_CERT_FILE), and refused without it.
load helpers
load helpers_httpd
load helpers_worker
bats_require_minimum_version 1.5.0

setup() {
	make_ca_cert "$BATS_TEST_TMPDIR/pki"
	# make_ca_cert signs for localhost and 127.0.0.1; another CA, unrelated
	other=$BATS_TEST_TMPDIR/other
	mkdir -p "$other"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=Some Other CA" -keyout "$other/key.pem" -out "$other/ca.pem" 2>/dev/null
	OTHER_CA=$other/ca.pem
	unset SSL_CERT_FILE SSL_CERT_DIR
}

@test "ts-send over an https:// notification API trusts the CA in SSL_CERT_FILE, and only it" {
	start_broker
	start_smtpd
	HTTPD_CURL_OPTS=(--cacert "$CA_CERT")
	start_httpd --tls-cert "$CERT" --tls-key "$KEY" \
		--email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" --from ops@example.com
	url=https://localhost:$HTTPD_PORT
	[[ $HTTPD_URL == https://* ]]

	# another CA: the certificate is refused, nothing is sent, exit 69
	SSL_CERT_FILE=$OTHER_CA run ts-send email --email-url "$url" \
		--to ada@example.com --subject 'untrusted' --body 'x'
	echo "$output"
	[ "$status" -eq 69 ]
	[[ $output == *"SSL certificate problem"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]

	# the right CA, by name and by IP address
	SSL_CERT_FILE=$CA_CERT run ts-send email --email-url "$url" \
		--to ada@example.com --subject 'over TLS' --body 'hello over HTTPS'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"${lines[-1]}")" = sent ]
	SSL_CERT_FILE=$CA_CERT run -0 ts-send email --email-url "$HTTPD_URL" \
		--to bob@example.com --subject 'by IP' --body 'hello again'
	wait_for test "$(maildir_count "$SMTPD_MAILDIR")" -eq 2
	f=$(grep -l '^Subject: over TLS' "$SMTPD_MAILDIR"/new/*)
	grep -q 'hello over HTTPS' "$f"
	grep -q '^To: ada@example.com' "$f"

	# a CA directory (SSL_CERT_DIR, hashed names as c_rehash makes) works too
	dir=$BATS_TEST_TMPDIR/certs
	mkdir -p "$dir"
	cp "$CA_CERT" "$dir/$(openssl x509 -noout -hash -in "$CA_CERT").0"
	SSL_CERT_DIR=$dir run -0 ts-send email \
		--email-url "$url" --to eve@example.com --subject 'by dir' --body 'x'
	wait_for test "$(maildir_count "$SMTPD_MAILDIR")" -eq 3
	# a CA file that is not there is named in the error
	SSL_CERT_FILE=$BATS_TEST_TMPDIR/missing.pem run -69 ts-send email \
		--email-url "$url" --to eve@example.com --subject 'no CA' --body 'x'
	[[ $output == *"certificate file: $BATS_TEST_TMPDIR/missing.pem"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 3 ]
}

@test "ts-worker --handler TYPE=https://: verified delivery with SSL_CERT_FILE, a dead letter naming the certificate without" {
	start_broker 2
	start_httpsink --statuses 200 --tls "$CERT,$KEY"
	hook=https://localhost:$HTTPSINK_PORT/hooks/tls
	echo '{"taskId":"tls-1","taskType":"hook","payload":{"event":"signup"}}' >"$BATS_TEST_TMPDIR/t.jsonl"
	submit "$BATS_TEST_TMPDIR/t.jsonl"

	# first a worker that does not trust the CA: a permanent failure
	SSL_CERT_FILE=$OTHER_CA run_worker --handler "hook=$hook"
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	jq -e -s 'length == 1 and .[0].taskId == "tls-1" and .[0].status == "dead-lettered"' "$WORKER_OUT"
	d=$(consume "$TS_DLQ_TOPIC" 1)
	jq -e '.key == "tls-1" and .headers["ts-error-class"] == "permanent" and
		(.headers["ts-error"] | test("SSL certificate problem"))' <<<"$d"
	[ "$(lines "$HTTPSINK_LOG")" = 0 ]

	# replayed from the DLQ to a worker that trusts it: delivered over TLS
	jq -c '.payload | fromjson' <<<"$d" >"$BATS_TEST_TMPDIR/replay.jsonl"
	submit "$BATS_TEST_TMPDIR/replay.jsonl"
	SSL_CERT_FILE=$CA_CERT run_worker --handler "hook=$hook"
	[ "$WORKER_STATUS" = 0 ] || { show_worker; false; }
	jq -e -s 'length == 1 and .[0].taskId == "tls-1" and .[0].status == "delivered"' "$WORKER_OUT"
	[ "$(lines "$HTTPSINK_LOG")" = 1 ]
	jq -e '.method == "POST" and .path == "/hooks/tls" and
		.headers["idempotency-key"] == "tls-1" and
		(.body | fromjson | .taskId == "tls-1" and .payload.event == "signup")' "$HTTPSINK_LOG"
}
