#!/usr/bin/env bats
# The real Apache Kafka broker the kafka pass uses: fetch, start, produce,
# consume, stop, restart on the same data, crash and restart.
load helpers

@test "kafka: tests/kafka/selftest passes (start, topics, restart keeps data)" {
	run "$REPO/tests/kafka/selftest"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" =~ ^[1-9][0-9]*\ passed,\ 0\ failed$ ]]
}
