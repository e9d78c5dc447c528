#!/usr/bin/env bats
# ts-submit: JSON tasks in, Kafka records out. Every test reads back what is
# on the topic (keys, headers, values) besides checking stdout, stderr and
# the exit status.
# brokers: dev kafka

bats_require_minimum_version 1.5.0

load helpers

setup() {
	start_broker 3
	IN=$BATS_TEST_TMPDIR
}

teardown() {
	helpers_teardown
}

email() { # N [extra payload fields]
	printf '{"taskType":"email","payload":{"to":"user%s@example.com","subject":"Hello %s","body":"Body %s"%s}}\n' \
		"$1" "$1" "$1" "${2:-}"
}

# submit ARGS...: ts-submit with stdin from $IN/in; stdout in $output and
# $out, stderr in $stderr; bounded in time.
submit() {
	run --separate-stderr timeout 60 ts-submit "$@" <"$IN/in"
	out=$output
}

# where(): "taskId partition offset" per result line, sorted
where_said() { jq -r '"\(.taskId) \(.partition) \(.offset)"' <<<"$out" | sort; }
where_is() { jq -r '"\(.key) \(.partition) \(.offset)"' <<<"$records" | sort; }

uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
time_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

@test "valid stream: one result line per task; records keyed by taskId, value the envelope" {
	{ email 1; email 2; printf '{"taskType":"sms","payload":{"mobile":"+4915112345678","name":"Ada"}}\n'
	  printf '{"taskType":"report.daily","payload":{"n":[1,2,{"x":null}],"ok":true}}\n'; } >"$IN/in"
	submit
	[ "$status" -eq 0 ]
	[ -z "$stderr" ] || { echo "stderr: $stderr"; false; }
	[ "${#lines[@]}" -eq 4 ]
	jq -e -s --arg t "$TS_TOPIC" 'all(.[]; keys == ["line","offset","partition","taskId","taskType","topic"]
		and .topic == $t and (.partition | type) == "number" and (.offset | type) == "number")' <<<"$out"
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,2,3,4]" ]
	[ "$(jq -s -r 'map(select(.line == 3)) | .[0].taskType' <<<"$out")" = sms ]
	for id in $(jq -r .taskId <<<"$out"); do [[ $id =~ $uuid_re ]]; done

	records=$(consume "$TS_TOPIC" 4)
	[ "$(grep -c . <<<"$records")" -eq 4 ]
	jq -e -s 'all(.[]; .key == (.payload | fromjson | .taskId) and .headers == {})' <<<"$records"
	jq -e -s 'all(.[]; .payload | fromjson | keys == ["createdAt","payload","taskId","taskType"])' <<<"$records"
	jq -e -s --arg re "$time_re" 'all(.[]; .payload | fromjson | .createdAt | test($re))' <<<"$records"
	[ "$(jq -s -r 'map(.payload | fromjson | select(.taskType == "email") | .payload.to) | sort | join(",")' <<<"$records")" = \
		"user1@example.com,user2@example.com" ]
	[ "$(jq -s -c 'map(.payload | fromjson | select(.taskType == "report.daily") | .payload) | .[0]' <<<"$records")" = \
		'{"n":[1,2,{"x":null}],"ok":true}' ]
	# the envelope is compact JSON, in the DESIGN.md field order
	jq -r .payload <<<"$records" | grep -q '^{"taskId":"[^"]*","taskType":"email","payload":{"to":"user1@example.com","subject":"Hello 1","body":"Body 1"},"createdAt":"[^"]*"}$'
	# stdout said where each record is
	diff <(where_said) <(where_is)
}

@test "a full envelope keeps its taskId, createdAt and key; key sets the record key; traceparent becomes a header" {
	tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	cat >"$IN/in" <<-EOF
	{"taskId":"replay-1","taskType":"email","payload":{"to":"a@example.com","subject":"S","body":"B"},"createdAt":"2026-11-29T07:00:00.123Z","key":"customer-7"}
	{"taskId":"replay-2","taskType":"email","payload":{"to":"b@example.com","subject":"S","body":"B"},"traceparent":"$tp"}
	{"taskType":"sms","payload":{"mobile":"12345678"},"key":"k\\"é"}
	EOF
	submit
	[ "$status" -eq 0 ]
	[ "$(jq -s -r 'map(.taskId) | .[]' <<<"$out" | grep -c '^replay-')" -eq 2 ]
	records=$(consume "$TS_TOPIC" 3)
	r1=$(jq -c 'select(.key == "customer-7")' <<<"$records")
	[ "$(jq -r .payload <<<"$r1")" = \
		'{"taskId":"replay-1","taskType":"email","payload":{"to":"a@example.com","subject":"S","body":"B"},"createdAt":"2026-11-29T07:00:00.123Z","key":"customer-7"}' ]
	[ "$(jq -c .headers <<<"$r1")" = "{}" ]
	r2=$(jq -c 'select(.key == "replay-2")' <<<"$records")
	[ "$(jq -c .headers <<<"$r2")" = "{\"traceparent\":\"$tp\"}" ]
	# traceparent travels as the header only, never in the value
	[ "$(jq -r '.payload | fromjson | has("traceparent")' <<<"$r2")" = false ]
	r3=$(jq -c 'select(.key == "k\"é")' <<<"$records")
	[ "$(jq -r '.payload | fromjson | .key' <<<"$r3")" = 'k"é' ]
	[[ $(jq -r '.payload | fromjson | .taskId' <<<"$r3") =~ $uuid_re ]]
}

@test "TRACEPARENT from the environment is the header of every task without its own" {
	own=00-11111111111111111111111111111111-2222222222222222-01
	env=00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01
	{ email 1; printf '{"taskType":"x","payload":{},"traceparent":"%s"}\n' "$own"; } >"$IN/in"
	TRACEPARENT=$env submit
	[ "$status" -eq 0 ]
	records=$(consume "$TS_TOPIC" 2)
	[ "$(jq -s -r --arg e "$env" --arg o "$own" 'map(.headers.traceparent) | sort | join(" ")' <<<"$records")" = "$env $own" ]
	[ "$(jq -s -r 'map(select(.payload | fromjson | .taskType == "x")) | .[0].headers.traceparent' <<<"$records")" = "$own" ]
	# a malformed one is a configuration error, before anything is sent
	TRACEPARENT=bogus submit
	[ "$status" -eq 78 ]
	[ "$stderr" = "ts-submit: TRACEPARENT: not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)" ]
	[ -z "$out" ]
}

@test "invalid stream: one exact stderr line per task, nothing produced, exit 65" {
	cat >"$IN/in" <<-'EOF'
	{"taskType":"email","payload":{"subject":"no recipient","body":"x"}}
	{"taskType":"email","payload":{"to":"a@example.com","subject":"Hi\r\nBcc: victim@example.com","body":"x"}}
	{"taskType":"email","payload":{"to":["ok@example.com","not-an-address"],"subject":"s","body":"x"}}
	{"taskType":"email","payload":{"to":"a@example.com","subject":"s","body":"x"},"priority":"high"}
	{"taskType":"sms","payload":{"mobile":"12"}}
	{"taskType":"Email","payload":{}}
	{"payload":{}}
	[1,2]
	{"taskType":"email","payload":{"to":"a@example.com","subject":"s","body":"x"}
	EOF
	submit
	[ "$status" -eq 65 ]
	[ -z "$out" ]
	expected=(
		"ts-submit: stdin:1: payload.to: required"
		"ts-submit: stdin:2: payload.subject: must not contain CR or LF"
		"ts-submit: stdin:3: payload.to[1]: not an email address"
		"ts-submit: stdin:4: priority: unknown field (a task has taskId, taskType, payload, createdAt, key, traceparent)"
		"ts-submit: stdin:5: payload.mobile: must be an international number: optional +, then 8-15 digits"
		"ts-submit: stdin:6: taskType: must match [a-z][a-z0-9_.-]{0,63}"
		"ts-submit: stdin:7: taskType: required"
		"ts-submit: stdin:8: a task must be a JSON object"
		"ts-submit: stdin:9: truncated: the input ends inside this value"
	)
	diff <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "$stderr")
	run consume "$TS_TOPIC"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "mixed stream: valid tasks delivered, invalid ones to --rejects verbatim, exit 65" {
	{ email 1; printf '{"taskType":"email","payload":{"to":"x@example.com"}}\n'; email 3
	  printf '  {"taskType":"sms","payload":{"mobile":"+49 151"}}\n'; email 5; } >"$IN/in"
	submit --rejects "$IN/rejects"
	[ "$status" -eq 65 ]
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,3,5]" ]
	[ "$stderr" = "ts-submit: stdin:2: payload.subject: required
ts-submit: stdin:4: payload.mobile: must be an international number: optional +, then 8-15 digits" ]
	diff "$IN/rejects" <(printf '%s\n' '{"taskType":"email","payload":{"to":"x@example.com"}}' \
		'{"taskType":"sms","payload":{"mobile":"+49 151"}}')
	records=$(consume "$TS_TOPIC" 3)
	[ "$(jq -s -r 'map(.payload | fromjson | .payload.to) | sort | join(",")' <<<"$records")" = \
		"user1@example.com,user3@example.com,user5@example.com" ]
	diff <(where_said) <(where_is)
	# --rejects appends: a second run adds to the file
	printf '{"taskType":"email","payload":{}}\n' >"$IN/in"
	submit --rejects "$IN/rejects"
	[ "$status" -eq 65 ]
	[ "$(wc -l <"$IN/rejects")" -eq 3 ]
}

@test "concatenated and pretty-printed objects, any white space between; lines are where each value starts" {
	printf '%s%s  %s\n\n{\n  "taskType": "email",\n  "payload": {\n    "to": "p@example.com",\n    "subject": "pretty",\n    "body": "printed"\n  }\n}\n%s' \
		'{"taskType":"x","payload":{"n":1}}' '{"taskType":"x","payload":{"n":2}}' \
		'{"taskType":"x","payload":{"n":3}}' '{"taskType":"x","payload":{"n":4}}' >"$IN/in"
	submit
	[ "$status" -eq 0 ]
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,1,1,3,11]" ]
	records=$(consume "$TS_TOPIC" 5)
	[ "$(jq -s -c 'map(.payload | fromjson | .payload.n // .payload.subject) | sort_by(tostring)' <<<"$records")" = '[1,2,3,4,"pretty"]' ]
	# the pretty-printed task is stored compact
	jq -r .payload <<<"$records" | grep -qF '"payload":{"to":"p@example.com","subject":"pretty","body":"printed"}'
}

@test "a 10 MB line is refused with its size, the rest still goes; memory stays bounded" {
	email 1 >"$IN/in"
	head -c 10000000 /dev/zero | tr '\0' a | {
		printf '{"taskType":"email","payload":{"to":"big@example.com","subject":"big","body":"'
		cat
		printf '"}}\n'
	} >>"$IN/in"
	email 3 >>"$IN/in"
	run --separate-stderr /usr/bin/time -f 'maxrss %M' timeout 60 ts-submit --rejects "$IN/rejects" <"$IN/in"
	out=$output
	[ "$status" -eq 65 ]
	[[ ${stderr%%$'\n'*} =~ ^ts-submit:\ stdin:2:\ task\ is\ 100001[0-9][0-9]\ bytes,\ over\ the\ 1000000-byte\ limit\ \(--max-task\)$ ]]
	rss=$(sed -n 's/^maxrss //p' <<<"$stderr")
	((rss < 120000))
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,3]" ]
	# the rejects file holds the big input as given
	[ "$(wc -l <"$IN/rejects")" -eq 1 ]
	[ "$(wc -c <"$IN/rejects")" -eq "$(sed -n 2p "$IN/in" | wc -c)" ]
	records=$(consume "$TS_TOPIC" 2)
	[ "$(grep -c . <<<"$records")" -eq 2 ]
	# --max-task moves the limit
	email 1 >"$IN/in"
	submit --max-task 100
	[ "$status" -eq 65 ]
	[[ $stderr =~ ^ts-submit:\ stdin:1:\ task\ is\ [0-9]+\ bytes,\ over\ the\ 100-byte\ limit\ \(--max-task\)$ ]]
}

@test "invalid UTF-8, NUL and raw control characters are refused at the byte level" {
	{ email 1; printf '{"taskType":"email","payload":{"to":"a@example.com","subject":"caf\xe9","body":"x"}}\n'
	  printf '{"taskType":"email","payload":{"to":"a@example.com","subject":"\xc0\xaf","body":"x"}}\n'
	  printf '{"taskType":"email","payload":{"to":"a@example.com","subject":"s","body":"a\\u0000b"}}\n'
	  printf '{"taskType":"email","payload":{"to":"a@example.com","subject":"s\tt","body":"x"}}\n'
	  email 6; } >"$IN/in"
	submit --rejects "$IN/rejects"
	[ "$status" -eq 65 ]
	expected=(
		"ts-submit: stdin:2: invalid UTF-8 at offset 66"
		"ts-submit: stdin:3: invalid UTF-8 at offset 63"
		"ts-submit: stdin:4: \\u0000 (NUL) in a string at offset 75"
		"ts-submit: stdin:5: control character 0x09 in a string at offset 64 (escape it)"
	)
	diff <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "$stderr")
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,6]" ]
	# rejects are byte for byte what came in
	diff "$IN/rejects" <(sed -n 2,5p "$IN/in")
	records=$(consume "$TS_TOPIC" 2)
	[ "$(grep -c . <<<"$records")" -eq 2 ]
}

@test "CR/LF injection in subject and addresses is refused; escaped CR/LF in the body is kept" {
	cat >"$IN/in" <<-'EOF'
	{"taskType":"email","payload":{"to":"a@example.com","subject":"Hi\nBcc: x@example.com","body":"x"}}
	{"taskType":"email","payload":{"to":"a@example.com\r\nBcc: x@example.com","subject":"s","body":"x"}}
	{"taskType":"email","payload":{"to":"a@example.com","from":"Eve <e@example.com>\r\nBcc: x@example.com","subject":"s","body":"x"}}
	{"taskType":"email","payload":{"to":"a@example.com","subject":"fine","body":"line 1\r\nline 2"}}
	EOF
	submit
	[ "$status" -eq 65 ]
	expected=(
		"ts-submit: stdin:1: payload.subject: must not contain CR or LF"
		"ts-submit: stdin:2: payload.to: must not contain CR or LF"
		"ts-submit: stdin:3: payload.from: must not contain CR or LF"
	)
	diff <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "$stderr")
	records=$(consume "$TS_TOPIC" 1)
	[ "$(jq -r '.payload | fromjson | .payload.body' <<<"$records")" = $'line 1\r\nline 2' ]
	[ "$(jq -r '.payload | fromjson | .payload.subject' <<<"$records")" = fine ]
}

@test "unknown top-level fields are refused by name; unknown email fields too" {
	cat >"$IN/in" <<-'EOF'
	{"taskType":"email","payload":{"to":"a@example.com","subject":"s","body":"x"},"tasktype":"email"}
	{"taskType":"email","payload":{"to":"a@example.com","subject":"s","body":"x","Subject":"again"}}
	{"taskType":"email","taskType":"sms","payload":{"to":"a@example.com","subject":"s","body":"x"}}
	EOF
	submit
	[ "$status" -eq 65 ]
	expected=(
		"ts-submit: stdin:1: tasktype: unknown field (a task has taskId, taskType, payload, createdAt, key, traceparent)"
		"ts-submit: stdin:2: payload.Subject: unknown field (email takes to, subject, body, html, cc, bcc, from, replyTo)"
		"ts-submit: stdin:3: taskType: given twice"
	)
	diff <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "$stderr")
	run consume "$TS_TOPIC"
	[ -z "$output" ]
}

@test "--type TYPE: each input object is the payload" {
	printf '{"to":"a@example.com","subject":"s","body":"x"}\n{"to":"b@example.com"}\n{"to":"c@example.com","subject":"t","html":"<p>h</p>"}\n' >"$IN/in"
	submit --type email
	[ "$status" -eq 65 ]
	[ "$stderr" = "ts-submit: stdin:2: payload.subject: required" ]
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,3]" ]
	jq -e -s 'all(.[]; .taskType == "email")' <<<"$out"
	records=$(consume "$TS_TOPIC" 2)
	[ "$(jq -s -r 'map(.payload | fromjson | .payload.to) | sort | join(",")' <<<"$records")" = "a@example.com,c@example.com" ]
	# a bad type is a usage error before anything is read
	submit --type 'No Such'
	[ "$status" -eq 64 ]
	[ "$stderr" = "ts-submit: --type No Such: must match [a-z][a-z0-9_.-]{0,63}" ]
}

@test "a UTF-8 byte order mark at the start of an input is skipped (as PowerShell writes files), elsewhere refused" {
	{ printf '\xef\xbb\xbf'; email 1; email 2; } >"$IN/in"
	submit
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(jq -s -c 'map(.line) | sort' <<<"$out")" = "[1,2]" ]
	# each FILE is an input of its own: the mark of the second is skipped too
	cp "$IN/in" "$IN/second"
	submit - "$IN/second"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	# not at the start: not JSON
	{ email 1; printf '\xef\xbb\xbf'; email 2; } >"$IN/in"
	submit --dry-run
	[ "$status" -eq 65 ]
	[[ $stderr == "ts-submit: stdin:2: "* ]]
	[ "${#lines[@]}" -eq 2 ]
}

@test "--dry-run prints the envelopes and sends nothing (no broker needed)" {
	{ email 1; printf '{"taskId":"keep","taskType":"x","payload":{"a":"\\u00e9\\/"},"createdAt":"2026-01-02T03:04:05Z","key":"k"}\n'
	  printf '{"taskType":"email","payload":{}}\n'; } >"$IN/in"
	TS_BROKERS=127.0.0.1:1 submit --dry-run
	[ "$status" -eq 65 ]
	[ "$stderr" = "ts-submit: stdin:3: payload.to: required" ]
	[ "${#lines[@]}" -eq 2 ]
	[[ $(jq -r .taskId <<<"${lines[0]}") =~ $uuid_re ]]
	[ "$(jq -c 'del(.taskId, .createdAt)' <<<"${lines[0]}")" = \
		'{"taskType":"email","payload":{"to":"user1@example.com","subject":"Hello 1","body":"Body 1"}}' ]
	[ "${lines[1]}" = '{"taskId":"keep","taskType":"x","payload":{"a":"é/"},"createdAt":"2026-01-02T03:04:05Z","key":"k"}' ]
	run consume "$TS_TOPIC"
	[ -z "$output" ]
}

@test "FILE arguments are read in order and named in messages; - is stdin; a missing FILE is a usage error" {
	{ email 1; printf '{"taskType":"email","payload":{"to":"bad"}}\n'; } >"$IN/a.jsonl"
	printf '\n\n{"taskType":"sms","payload":{}}\n' >"$IN/b.jsonl"
	email 9 >"$IN/in"
	run --separate-stderr timeout 60 ts-submit "$IN/a.jsonl" - "$IN/b.jsonl" <"$IN/in"
	out=$output
	[ "$status" -eq 65 ]
	[ "$stderr" = "ts-submit: $IN/a.jsonl:2: payload.to: not an email address
ts-submit: $IN/b.jsonl:3: payload.mobile: required" ]
	[ "${#lines[@]}" -eq 2 ]
	records=$(consume "$TS_TOPIC" 2)
	[ "$(jq -s -r 'map(.payload | fromjson | .payload.to) | sort | join(",")' <<<"$records")" = "user1@example.com,user9@example.com" ]
	run --separate-stderr ts-submit "$IN/a.jsonl" "$IN/nope.jsonl"
	[ "$status" -eq 64 ]
	[ "$stderr" = "ts-submit: $IN/nope.jsonl: No such file or directory" ]
	run consume "$TS_TOPIC" 2
	[ "${#lines[@]}" -eq 2 ]
}

@test "tasks with the same key keep their order on one partition" {
	for i in $(seq 1 40); do printf '{"taskType":"x","payload":{"i":%d},"key":"k%d"}\n' "$i" $((i % 2)); done >"$IN/in"
	submit
	[ "$status" -eq 0 ]
	records=$(consume "$TS_TOPIC" 40)
	for k in k0 k1; do
		[ "$(jq -s --arg k "$k" '[.[] | select(.key == $k) | .partition] | unique | length' <<<"$records")" -eq 1 ]
		# by offset, the payloads come in input order
		jq -e -s --arg k "$k" '[.[] | select(.key == $k)] | sort_by(.offset) | map(.payload | fromjson | .payload.i) | . == sort' <<<"$records"
	done
}

@test "every record sits where murmur2 puts its key; generated taskIds come in runs on one partition" {
	# every 50th task brings its own key, every 70th its own taskId
	for i in $(seq 1 6000); do
		if ((i % 50 == 0)); then
			printf '{"taskType":"x","payload":{"i":%d},"key":"own-%d"}\n' "$i" "$i"
		elif ((i % 70 == 0)); then
			printf '{"taskId":"id-%d","taskType":"x","payload":{"i":%d}}\n' "$i" "$i"
		else
			printf '{"taskType":"x","payload":{"i":%d}}\n' "$i"
		fi
	done >"$IN/in"
	submit
	[ "$status" -eq 0 ]
	records=$(consume "$TS_TOPIC" 6000)
	[ "$(jq -s 'length' <<<"$records")" = 6000 ]
	[ -z "$(jq -r '"\(.key) \(.partition)"' <<<"$records" | murmur2_check 3)" ]
	# In input order, the partition changes at most every 256 generated
	# ids (and around each task with its own key or taskId), once ts-submit
	# knows the partition count: random ids would change it 4,000 times.
	changes=$(jq -r '"\(.line) \(.partition)"' <<<"$out" | sort -n |
		awk '$2 != p { n++ } { p = $2 } END { print n }')
	echo "partition changes in input order: $changes"
	((changes < 1000))
}

@test "a topic that grows mid-stream: once librdkafka knows the new partition count, records are placed by it" {
	[[ $TS_TEST_BROKER == kafka ]] || skip "ts-devbroker cannot add partitions to a topic"
	keyed() { # PREFIX FROM TO
		for i in $(seq "$2" "$3"); do
			printf '{"taskType":"x","payload":{"i":%d},"key":"%s-%d"}\n' "$i" "$1" "$i"
		done
	}
	mkfifo "$IN/feed"
	# librdkafka asks for the topic's metadata every 500 ms
	timeout 120 ts-submit -X topic.metadata.refresh.interval.ms=500 \
		<"$IN/feed" >"$IN/out" 2>"$IN/err" 3>&- &
	local pid=$! feed
	exec {feed}>"$IN/feed"
	keyed a 1 300 >&"$feed"
	wait_for eval '[ "$(grep -c . "$IN/out")" -ge 300 ]'
	"$REPO/tests/kafka/create-topic" --grow "$TS_KAFKA_BOOTSTRAP" "$TS_TOPIC" 6
	sleep 3 # a few refreshes: librdkafka's partitioner now counts 6
	keyed b 301 1300 >&"$feed"
	exec {feed}>&-
	wait "$pid"
	[ ! -s "$IN/err" ] || { cat "$IN/err"; false; }
	records=$(consume "$TS_TOPIC" 1300)
	[ "$(jq -s 'length' <<<"$records")" = 1300 ]
	[ -z "$(jq -r 'select(.key | startswith("a-")) | "\(.key) \(.partition)"' <<<"$records" | murmur2_check 3)" ]
	# ts-submit learns the count from the first record of each produce
	# call (at most 256 records): from the second call on, all by 6
	[ -z "$(jq -r 'select(.key | startswith("b-")) | select(.key[2:] | tonumber > 600) |
		"\(.key) \(.partition)"' <<<"$records" | murmur2_check 6)" ]
	# and the new partitions are in use
	[ "$(jq -s '[.[] | select(.partition >= 3)] | length' <<<"$records")" -gt 100 ]
}

@test "configuration: TS_TOPIC, --topic, -X, -F (kcat format), a config file; bad ones exit 78" {
	email 1 >"$IN/in"
	other=$TS_DLQ_TOPIC
	submit --topic "$other"
	[ "$status" -eq 0 ]
	[ "$(jq -r .topic <<<"$out")" = "$other" ]
	run consume "$other" 1
	[ "${#lines[@]}" -eq 1 ]

	# -F and -c: kcat's properties file and our config file
	printf 'client.id=from-F\n# comment\nmessage.timeout.ms=30000\n' >"$IN/kcat.conf"
	printf 'topic %s\nX linger.ms=1\n' "$TS_TOPIC" >"$IN/ts.conf"
	env -u TS_TOPIC timeout 60 ts-submit -c "$IN/ts.conf" -F "$IN/kcat.conf" <"$IN/in" >"$IN/out"
	[ "$(jq -r .topic "$IN/out")" = "$TS_TOPIC" ]

	submit -X no.such.property=1
	[ "$status" -eq 78 ]
	[[ $stderr == "ts-submit: -X no.such.property: "*"No such configuration property"* ]]
	printf 'frobnicate 1\n' >"$IN/bad.conf"
	submit -c "$IN/bad.conf"
	[ "$status" -eq 78 ]
	[[ $stderr == *"$IN/bad.conf:1"* ]]
	submit --no-such-option
	[ "$status" -eq 64 ]
	run consume "$TS_TOPIC" 1
	[ "${#lines[@]}" -eq 1 ]
}

@test "broker unreachable: undelivered tasks exit 75 and the rejects file is complete" {
	{ for i in 1 2 3 4 5; do email "$i"; done; printf '{"taskType":"email","payload":{}}\n'; } >"$IN/in"
	TS_BROKERS=127.0.0.1:1 submit --rejects "$IN/rejects" -X message.timeout.ms=1500
	[ "$status" -eq 75 ]
	[ -z "$out" ]
	# every input is in the rejects file once, the invalid one too
	diff <(sort "$IN/in") <(sort "$IN/rejects")
	[ "$(grep -c '^ts-submit: stdin:[1-5]: task [0-9a-f-]* not delivered: Local: Message timed out$' <<<"$stderr")" -eq 5 ]
	grep -qx 'ts-submit: stdin:6: payload.to: required' <<<"$stderr"
}

@test "broker unreachable, no --rejects: each undelivered task named by its file, line and taskId" {
	{ printf '{"taskId":"own-1","taskType":"x","payload":{}}\n'; email 2; } >"$IN/a.jsonl"
	{ email 3; printf '\n{"taskId":"own-4","taskType":"report.daily","payload":{}}\n'; } >"$IN/b.jsonl"
	run --separate-stderr timeout 60 env TS_BROKERS=127.0.0.1:1 ts-submit -X message.timeout.ms=1500 \
		"$IN/a.jsonl" "$IN/b.jsonl"
	[ "$status" -eq 75 ]
	[ -z "$output" ]
	local why='not delivered: Local: Message timed out'
	grep -qxF "ts-submit: $IN/a.jsonl:1: task own-1 $why" <<<"$stderr"
	grep -qx "ts-submit: $IN/a.jsonl:2: task [0-9a-f-]\{36\} $why" <<<"$stderr"
	grep -qx "ts-submit: $IN/b.jsonl:1: task [0-9a-f-]\{36\} $why" <<<"$stderr"
	grep -qxF "ts-submit: $IN/b.jsonl:3: task own-4 $why" <<<"$stderr"
	[ "$(grep -c "$why" <<<"$stderr")" -eq 4 ]
}

@test "stdout closed early: the run stops reading, still waits for reports, exits non-zero" {
	for i in $(seq 1 2000); do email "$i"; done >"$IN/in"
	run bash -c 'timeout 60 ts-submit <"$1" 2>"$2" | head -n 1 >/dev/null; echo "${PIPESTATUS[0]}"' _ "$IN/in" "$IN/err"
	[ "$output" -eq 70 ]
	grep -q '^ts-submit: stdout: Broken pipe; reading no more input$' "$IN/err"
}

@test "the same results with no encoding thread and with several (TS_SUBMIT_WORKERS)" {
	for i in $(seq 1 700); do
		if ((i % 50 == 0)); then printf '{"taskType":"email","payload":{"to":"bad"},"taskId":"t%d"}\n' "$i"
		else printf '{"taskId":"t%d","taskType":"x","payload":{"i":%d},"createdAt":"2026-01-01T00:00:00Z"}\n' "$i" "$i"; fi
	done >"$IN/in"
	TS_SUBMIT_WORKERS=0 submit --dry-run
	[ "$status" -eq 65 ]
	none_out=$out none_err=$stderr
	[ "${#lines[@]}" -eq 686 ]
	TS_SUBMIT_WORKERS=3 submit --dry-run
	[ "$status" -eq 65 ]
	[ "$out" = "$none_out" ]
	[ "$stderr" = "$none_err" ]
	[ "$(grep -c 'payload.to: not an email address' <<<"$stderr")" -eq 14 ]
	# errors come in input order, and so do the envelopes
	[ "$(head -n1 <<<"$stderr")" = "ts-submit: stdin:50: payload.to: not an email address" ]
	[ "$(jq -r .taskId <<<"$out" | head -n2 | paste -sd,)" = "t1,t2" ]
	TS_SUBMIT_WORKERS=0 submit
	[ "$status" -eq 65 ]
	records=$(consume "$TS_TOPIC" 686)
	[ "$(jq -r .key <<<"$records" | sort -u | wc -l)" -eq 686 ]
	TS_SUBMIT_WORKERS=lots submit
	[ "$status" -eq 78 ]
	[[ $stderr == "ts-submit: TS_SUBMIT_WORKERS: "* ]]
}

@test "memory does not grow with the input: 200,000 tasks peak like 20,000, under 64 MB" {
	awk 'BEGIN { for (i = 1; i <= 200000; i++)
		printf "{\"taskType\":\"email\",\"payload\":{\"to\":\"u%d@example.com\",\"subject\":\"s %d\",\"body\":\"b\"}}\n", i, i }' >"$IN/big"
	head -n 20000 "$IN/big" >"$IN/small"
	# Under AddressSanitizer freed memory sits in a quarantine and every
	# byte has a shadow: keep the quarantine small, and hold such a build
	# to the growth bounds only.
	local asan=0
	ldd "$(command -v ts-submit)" | grep -q libasan && asan=1
	rss() { # FILE [ARGS] -> peak RSS in KiB of a full run
		ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=1 \
		/usr/bin/time -f '%M' -o "$IN/rss" timeout 120 ts-submit "$@" >"$IN/out" 2>"$IN/err"
		[ "$(wc -l <"$IN/out")" -eq "$(wc -l <"$1")" ]
		cat "$IN/rss"
	}
	small=$(rss "$IN/small")
	big=$(rss "$IN/big")
	echo "peak RSS: $small KiB for 20000 tasks, $big KiB for 200000"
	((asan || big < 64 * 1024))
	# librdkafka may hold up to 50,000 unacknowledged messages
	((big < small + 24 * 1024))
	# without Kafka, nothing but the batches being encoded
	small=$(rss "$IN/small" --dry-run)
	big=$(rss "$IN/big" --dry-run)
	echo "--dry-run peak RSS: $small KiB for 20000 tasks, $big KiB for 200000"
	((big < small + 4 * 1024))
}
