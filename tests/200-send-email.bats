#!/usr/bin/env bats
# ts-send email: delivery over SMTP (libesmtp) to the test SMTP server with
# STARTTLS and AUTH, every header of the stored message, the failure classes
# and exit codes, certificates, secrets, and --json with connection reuse.

bats_require_minimum_version 1.5.0

load helpers
load helpers_send

PASSWORD='s3cr3t-Pa55:w@rd'
PASSWORD_URL='s3cr3t-Pa55%3Aw%40rd'

setup() {
	unset TS_EMAIL_URL TS_SMS_URL TS_SMTP_PASSWORD TS_SMTP_PASSWORD_FILE \
		SSL_CERT_FILE SSL_CERT_DIR TS_CONFIG TS_SEND_TIMEOUT
	export TS_EMAIL_FROM=sender@example.com
}

teardown() {
	helpers_teardown
}

# A server that wants STARTTLS and AUTH, with a CA-signed certificate.
start_secure_smtpd() {
	make_ca_cert "$BATS_TEST_TMPDIR/pki"
	start_smtpd --tls "$CERT,$KEY" --require-tls --auth "user:$PASSWORD" "$@"
}

# Exit status and output of ts-send, stdout and stderr apart.
send() {
	run --separate-stderr ts-send "$@"
}

json() { jq -r "$1" <<<"$output"; }

@test "delivery: every header of the stored message, the envelope and the result line" {
	start_secure_smtpd
	printf '%s\n' '<p>Hello <b>HTML</b> – café</p>' >"$BATS_TEST_TMPDIR/body.html"
	long=$(printf 'word%.0s ' {1..40})
	export SSL_CERT_FILE=$CA_CERT TS_SMTP_PASSWORD=$PASSWORD
	send email --email-url "smtp://user@localhost:$SMTPD_PORT" \
		--from 'Zoë Sender <sender@example.com>' \
		--to one@example.com --to two@example.com --cc three@example.com \
		--bcc hidden@example.com --reply-to replies@example.com \
		--subject 'Grüße – a résumé of the week, with a subject long enough to fold' \
		--html-file "$BATS_TEST_TMPDIR/body.html" <<<"Plain text, naïve.
$long
.a line starting with a dot"
	[ "$status" -eq 0 ]
	[ "$(json .status)" = sent ]
	[ "$(json .channel)" = email ]
	[ "$(json .code)" = 250 ]
	[ "$(json '.to | join(",")')" = one@example.com,two@example.com ]
	msgid=$(json .id)
	[[ $msgid =~ ^[0-9a-f-]{36}@example\.com$ ]]
	[ "$stderr" = "" ]

	# the envelope: Bcc only here, TLS and AUTH used
	[ "$(wc -l <"$SMTPD_LOG")" -eq 1 ]
	jq -e --arg u user '.mail_from == "sender@example.com" and .tls == true and
		.auth_user == $u and
		(.rcpt_tos | sort) == ["hidden@example.com","one@example.com","three@example.com","two@example.com"]' \
		"$SMTPD_LOG"
	file=$(jq -r .file "$SMTPD_LOG")

	# the message, read by Python's email package
	"$HELPERS_PYTHON" - "$file" "$msgid" <<-'PY'
		import email, email.policy, email.utils, re, sys
		raw = open(sys.argv[1], "rb").read()
		msgid = sys.argv[2]
		def check(cond, what):
		    if not cond:
		        sys.exit("FAILED: " + what)
		# CRLF everywhere, no bare LF, every line within 998 (and the
		# header lines within 78)
		check(b"\n" not in raw.replace(b"\r\n", b""), "bare LF")
		head, _, body = raw.partition(b"\r\n\r\n")
		lines = raw.split(b"\r\n")
		check(all(len(l) <= 998 for l in lines), "line over 998")
		check(all(len(l) <= 78 for l in head.split(b"\r\n")), "header line over 78")
		check(all(b < 128 for b in raw), "8-bit byte in the message")
		m = email.message_from_bytes(raw, policy=email.policy.default)
		names = [k.lower() for k in m.keys()]
		for h in ("date", "from", "to", "cc", "reply-to", "subject",
		          "message-id", "mime-version", "content-type"):
		    check(names.count(h) == 1, "exactly one %s header (%s)" % (h, names))
		check("bcc" not in names, "a Bcc header")
		check(b"hidden@example.com" not in raw, "the Bcc address in the message")
		d = email.utils.parsedate_to_datetime(m["Date"])
		check(d.tzinfo is not None, "Date has a zone")
		check(str(m["From"]) == "Zoë Sender <sender@example.com>", "From: " + str(m["From"]))
		check(str(m["To"]) == "one@example.com, two@example.com", "To: " + str(m["To"]))
		check(str(m["Cc"]) == "three@example.com", "Cc")
		check(str(m["Reply-To"]) == "replies@example.com", "Reply-To")
		check(str(m["Subject"]) == "Grüße – a résumé of the week, with a subject long enough to fold",
		      "Subject: " + str(m["Subject"]))
		check(re.search(rb"\r\nSubject: =\?UTF-8\?B\?", raw) is not None, "Subject is RFC 2047 encoded")
		check(str(m["Message-ID"]) == "<%s>" % msgid, "Message-ID " + str(m["Message-ID"]))
		check(str(m["MIME-Version"]) == "1.0", "MIME-Version")
		check(m.get_content_type() == "multipart/alternative", m.get_content_type())
		parts = list(m.iter_parts())
		check([p.get_content_type() for p in parts] == ["text/plain", "text/html"], "parts")
		for p in parts:
		    check(p.get_content_charset() == "utf-8", "charset")
		    check(p["Content-Transfer-Encoding"] == "quoted-printable", "QP for 8-bit and long lines")
		# the parts' own line ends are CRLF too
		text = parts[0].get_content().replace("\r\n", "\n")
		check(text.startswith("Plain text, naïve.\n"), "text body: %r" % text)
		check("\n" + "word " * 40 + "\n" in text, "long line kept whole, trailing space too")
		check(text.endswith(".a line starting with a dot\n"), "dot line")
		check(parts[1].get_content().replace("\r\n", "\n") == "<p>Hello <b>HTML</b> – café</p>\n", "html body")
	PY
}

@test "body from --body-file and from --body; plain ASCII goes 7bit" {
	start_smtpd
	printf 'from a file\n' >"$BATS_TEST_TMPDIR/b.txt"
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to a@example.com --subject s --body-file "$BATS_TEST_TMPDIR/b.txt"
	[ "$status" -eq 0 ]
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to a@example.com --subject s --body 'inline body'
	[ "$status" -eq 0 ]
	files=$(jq -r .file "$SMTPD_LOG")
	first=$(head -n1 <<<"$files")
	second=$(tail -n1 <<<"$files")
	grep -q $'^Content-Transfer-Encoding: 7bit\r$' "$first"
	grep -q $'^Content-Type: text/plain; charset=utf-8\r$' "$first"
	[ "$(tail -c 13 "$first")" = $'from a file\r' ]
	grep -q $'^inline body\r$' "$second"
	# --body and --body-file together is a usage error
	send email --email-url - --to a@example.com --subject s --body x \
		--body-file "$BATS_TEST_TMPDIR/b.txt"
	[ "$status" -eq 64 ]
}

@test "STARTTLS is required by default: a server without it gets nothing (69)" {
	start_smtpd
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 69 ]
	[ "$(json .status)" = failed ]
	[ "$(json .class)" = permanent ]
	[[ $(json .error) == *"offers no STARTTLS"* ]]
	[[ $stderr == *"ts-send: email not sent (permanent)"*STARTTLS* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
	# ?starttls=no is the explicit way to use such a relay
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 0 ]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 1 ]
	jq -e '.tls == false' "$SMTPD_LOG"
}

@test "starttls=no to a server that requires TLS is refused (530, 69)" {
	start_secure_smtpd
	export SSL_CERT_FILE=$CA_CERT
	send email --email-url "smtp://user:$PASSWORD_URL@127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 69 ]
	[ "$(json .code)" = 530 ]
	[[ $stderr == *"password goes in clear text"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}

@test "starttls=try: TLS when offered, and without it no password in clear text (69)" {
	start_secure_smtpd
	export SSL_CERT_FILE=$CA_CERT
	send email --email-url "smtp://user:$PASSWORD_URL@localhost:$SMTPD_PORT?starttls=try" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 0 ]
	jq -e '.tls == true and .auth_user == "user"' "$SMTPD_LOG"
	stop_pid "$SMTPD_PID"
	start_smtpd --auth "user:$PASSWORD"
	send email --email-url "smtp://user:$PASSWORD_URL@127.0.0.1:$SMTPD_PORT?starttls=try" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 69 ]
	[[ $(json .error) == *"the password was not sent in clear text"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}

@test "AUTH: the right password (from the URL, percent-decoded) is accepted, a wrong one gives 69" {
	start_secure_smtpd
	export SSL_CERT_FILE=$CA_CERT
	send email --email-url "smtp://user:$PASSWORD_URL@localhost:$SMTPD_PORT" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 0 ]
	jq -e '.auth_user == "user"' "$SMTPD_LOG"
	send email --email-url "smtp://user:wrong-password@localhost:$SMTPD_PORT" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 69 ]
	[ "$(json .class)" = permanent ]
	[[ $(json .error) == "AUTH failed: 535"* ]]
	[[ $output != *wrong-password* && $stderr != *wrong-password* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 1 ]
}

@test "password from TS_SMTP_PASSWORD_FILE; a user without any password is a config error (78)" {
	start_secure_smtpd
	export SSL_CERT_FILE=$CA_CERT
	printf '%s\n' "$PASSWORD" >"$BATS_TEST_TMPDIR/pw"
	TS_SMTP_PASSWORD_FILE=$BATS_TEST_TMPDIR/pw send email \
		--email-url "smtp://user@localhost:$SMTPD_PORT" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 0 ]
	send email --email-url "smtp://user@localhost:$SMTPD_PORT" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 78 ]
	[[ $stderr == *"no password"* ]]
}

@test "550 for a recipient gives 69 and nobody gets the message" {
	start_smtpd --reject-rcpt 'nobody@'
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to ok@example.com --to nobody@example.com --subject s --body b
	[ "$status" -eq 69 ]
	[ "$(json .code)" = 550 ]
	[[ $(json .error) == "RCPT <nobody@example.com>: 550"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}

@test "451 gives 75 (transient), and the retry goes through" {
	start_smtpd --defer 1
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 75 ]
	[ "$(json .class)" = transient ]
	[ "$(json .code)" = 451 ]
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?starttls=no" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 0 ]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 1 ]
}

@test "connection refused gives 75" {
	port=$(free_port)
	send email --email-url "smtp://127.0.0.1:$port" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 75 ]
	[ "$(json .class)" = transient ]
	[[ $(json .error) == *"Connection refused"* ]]
}

@test "timeouts: connect(2) to a full accept queue, and a server that never greets (75)" {
	start_backlog
	run --separate-stderr timeout 60 ts-send email --send-timeout 1s \
		--email-url "smtp://127.0.0.1:$BACKLOG_PORT?starttls=no" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 75 ]
	[[ $(json .error) == *"connect to 127.0.0.1:$BACKLOG_PORT: timed out"* ]]
	start_silent
	run --separate-stderr timeout 60 ts-send email --send-timeout 1s \
		--email-url "smtp://127.0.0.1:$SILENT_PORT?starttls=no" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 75 ]
	[[ $(json .error) == *"no reply within 1000 ms"* ]]
}

@test "a self-signed certificate is refused unless insecure=1, which says so" {
	make_cert "$BATS_TEST_TMPDIR/self"
	start_smtpd --tls "$CERT,$KEY"
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 69 ]
	[[ $(json .error) == *"certificate of 127.0.0.1 not accepted: self-signed certificate"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT?insecure=1" \
		--to a@example.com --subject s --body b
	[ "$status" -eq 0 ]
	[[ $stderr == *"insecure=1"*"NOT verified"* ]]
	jq -e '.tls == true' "$SMTPD_LOG"
}

@test "a certificate signed by a CA given in SSL_CERT_FILE is accepted, by name and by IP" {
	start_secure_smtpd
	export TS_SMTP_PASSWORD=$PASSWORD
	# OpenSSL's default verify paths do not know the test CA ...
	send email --email-url "smtp://user@localhost:$SMTPD_PORT" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 69 ]
	[[ $(json .error) == *"unable to get local issuer certificate"* ]]
	# ... until SSL_CERT_FILE names it
	export SSL_CERT_FILE=$CA_CERT
	for host in localhost 127.0.0.1; do
		send email --email-url "smtp://user@$host:$SMTPD_PORT" --to a@example.com \
			--subject s --body b
		[ "$status" -eq 0 ]
	done
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 2 ]
}

@test "a certificate for another host name is refused (69)" {
	dir=$BATS_TEST_TMPDIR/other
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=mail.other.example -addext subjectAltName=DNS:mail.other.example \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	start_smtpd --tls "$dir/cert.pem,$dir/key.pem"
	export SSL_CERT_FILE=$dir/cert.pem
	send email --email-url "smtp://localhost:$SMTPD_PORT" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 69 ]
	[[ $(json .error) == *"not accepted: hostname mismatch"* ]]
	send email --email-url "smtp://127.0.0.1:$SMTPD_PORT" --to a@example.com \
		--subject s --body b
	[ "$status" -eq 69 ]
	[[ $(json .error) == *"IP address mismatch"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
}

@test "invalid input gives 65 and sends nothing: CR/LF injection, bad address, bad UTF-8" {
	start_smtpd
	url="smtp://127.0.0.1:$SMTPD_PORT?starttls=no"
	send email --email-url "$url" --to a@example.com \
		--subject $'hi\r\nBcc: victim@example.com' --body b
	[ "$status" -eq 65 ]
	[ "$(json .class)" = invalid ]
	[[ $(json .error) == "subject: must not contain CR or LF" ]]
	send email --email-url "$url" --to 'not an address' --subject s --body b
	[ "$status" -eq 65 ]
	[[ $(json .error) == to:* ]]
	send email --email-url "$url" --to a@example.com \
		--from $'x@example.com\nBcc: v@example.com' --subject s --body b
	[ "$status" -eq 65 ]
	send email --email-url "$url" --to a@example.com --subject s \
		--body $'\xff\xfe'
	[ "$status" -eq 65 ]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 0 ]
	# usage errors are 64, a missing transport 78
	send email --email-url "$url" --subject s --body b
	[ "$status" -eq 64 ]
	send email --to a@example.com --subject s --body b
	[ "$status" -eq 78 ]
	send fax --to a@example.com
	[ "$status" -eq 64 ]
}

@test "no password in any output: stdout, stderr (even -vv), --help and ps argv" {
	start_secure_smtpd
	export SSL_CERT_FILE=$CA_CERT
	for url in "smtp://user:$PASSWORD_URL@localhost:$SMTPD_PORT" \
		"smtp://user:$PASSWORD_URL@localhost:1" \
		"smtp://user:wrong-$PASSWORD_URL@localhost:$SMTPD_PORT"; do
		send -vv email --email-url "$url" --to a@example.com --subject s --body b
		[[ $output != *s3cr3t* && $stderr != *s3cr3t* ]]
		[[ $output != *Pa55* && $stderr != *Pa55* ]]
	done
	TS_SMTP_PASSWORD=$PASSWORD send -vv email \
		--email-url "smtp://user@localhost:1" --to a@example.com --subject s --body b
	[ "$status" -eq 75 ]
	[[ $output != *s3cr3t* && $stderr != *s3cr3t* ]]
	TS_SMTP_PASSWORD=$PASSWORD TS_EMAIL_URL="smtp://user:$PASSWORD_URL@h" send --help
	[ "$status" -eq 0 ]
	[[ $output != *s3cr3t* && $stderr != *s3cr3t* ]]

	# ps: a password given in the URL is blanked in our argv at once
	start_silent
	ts-send email --send-timeout 60s \
		--email-url "smtp://user:$PASSWORD_URL@127.0.0.1:$SILENT_PORT?starttls=no" \
		--to a@example.com --subject s --body b </dev/null >/dev/null 2>&1 3>&- &
	pid=$!
	track_pid "$pid" ts-send
	# it has connected, so it is past start-up
	wait_for grep -q accepted "$SILENT_LOG"
	args=$(ps -o args= -p "$pid")
	[[ $args == *"--email-url smtp://user:"*"@127.0.0.1:$SILENT_PORT"* ]]
	[[ $args != *s3cr3t* && $args != *Pa55* ]]
	run ! grep -qa s3cr3t "/proc/$pid/cmdline"
	stop_pid "$pid"
}

@test "--json: one connection for many messages, one result line each, in order" {
	start_smtpd
	start_tcpcount "$SMTPD_PORT"
	for i in $(seq 1 20); do
		printf '{"taskType":"email","payload":{"to":"u%d@example.com","subject":"n%d","body":"b%d"}}\n' \
			"$i" "$i" "$i"
	done >"$BATS_TEST_TMPDIR/in.jsonl"
	send --json --email-url "smtp://127.0.0.1:$TCPCOUNT_PORT?starttls=no" \
		<"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 0 ]
	[ "$(grep -c . <<<"$output")" -eq 20 ]
	jq -s -e 'all(.[]; .status == "sent" and .channel == "email") and
		(map(.line) == [range(1; 21)]) and (map(.to) == [range(1; 21) | "u\(.)@example.com"])' \
		<<<"$output"
	[ "$(wc -l <"$SMTPD_LOG")" -eq 20 ]
	[ "$(wc -l <"$TCPCOUNT_LOG")" -eq 1 ]
	# every stored message carries the Message-ID of its result line
	for id in $(jq -r .id <<<"$output"); do
		grep -l "^Message-ID: <$id>" "$SMTPD_MAILDIR"/new/* >/dev/null
	done
}

@test "--json: envelopes and bare requests, invalid lines (65), the worst outcome decides: 75 over 69 over 65" {
	start_smtpd --reject-rcpt 'rejected@'
	url="smtp://127.0.0.1:$SMTPD_PORT?starttls=no"
	cat >"$BATS_TEST_TMPDIR/in.jsonl" <<-'EOF'
		{"taskId":"t-1","taskType":"email","payload":{"to":"a@example.com","subject":"one","body":"x"},"createdAt":"2026-11-29T07:00:00.123Z"}
		{"taskType":"email","payload":{"to":"a@example.com","subject":"two\r\nBcc: x@example.com","body":"x"}}
		this is not JSON
		{"taskType":"email","payload":{"to":"rejected@example.com","subject":"three","body":"x"}}
		{"taskType":"push","payload":{}}
	EOF
	send --json --email-url "$url" <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 69 ]
	[ "$(grep -c . <<<"$output")" -eq 5 ]
	jq -s -e '[.[] | [.line, .status, (.class // "")]] ==
		[[1,"sent",""],[2,"failed","invalid"],[3,"failed","invalid"],[4,"failed","permanent"],[5,"failed","invalid"]]' \
		<<<"$output"
	jq -s -e '.[0].taskId == "t-1" and (.[1] | has("taskId") | not)' <<<"$output"
	[[ $stderr == *"stdin:2: invalid: payload.subject: must not contain CR or LF"* ]]
	[[ $stderr == *"stdin:3: invalid"* ]]
	[ "$(maildir_count "$SMTPD_MAILDIR")" -eq 1 ]
	# only invalid input: 65
	send --json --email-url "$url" <<<'{"taskType":"email","payload":{}}'
	[ "$status" -eq 65 ]
	# a transient failure wins over everything else
	stop_pid "$SMTPD_PID"
	send --json --email-url "$url" <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 75 ]
	jq -s -e '.[0].class == "transient" and .[3].class == "transient" and .[1].class == "invalid"' \
		<<<"$output"
}

@test "maildir: and the dry run (-) write what would be sent" {
	md=$BATS_TEST_TMPDIR/md
	send email --email-url "maildir:$md" --to a@example.com --bcc blind.copy@example.net \
		--subject 'local' --body 'to the maildir'
	[ "$status" -eq 0 ]
	[ "$(maildir_count "$md")" -eq 1 ]
	f=$(maildir_files "$md")
	grep -q '^Return-Path: <sender@example.com>$' "$f"
	grep -q '^Subject: local$' "$f"
	run ! grep -q 'blind.copy@example.net' "$f"
	[ -z "$(ls -A "$md/tmp")" ]

	send email --email-url - --to a@example.com --bcc blind.copy@example.net --subject dry --body 'not sent'
	[ "$status" -eq 0 ]
	[ "$(grep -c . <<<"$output")" -eq 2 ]
	head -n1 <<<"$output" | jq -e '.dryRun == true and .rcpt == ["a@example.com","blind.copy@example.net"] and
		(.message | test("\r\nSubject: dry\r\n")) and (.message | test("blind.copy") | not)'
	tail -n1 <<<"$output" | jq -e '.status == "sent"'
}

@test "the remote notification API (http://): POST /api/email/send; 400/502 permanent, 503 transient" {
	start_notifyapi --statuses 200,400,502,503 --retry-after 7
	for want in 0 69 69 75; do
		send email --email-url "$NOTIFYAPI_URL" --to a@example.com --subject s --body b
		[ "$status" -eq "$want" ]
	done
	jq -s -e 'all(.[]; .path == "/api/email/send" and .ctype == "application/json") and
		.[0].body == {"to":"a@example.com","from":"sender@example.com","subject":"s","body":"b"}' \
		"$NOTIFYAPI_LOG"
	[ "$(json .retryAfterMs)" = 7000 ]
}
