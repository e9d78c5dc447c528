#!/usr/bin/env bats
# make demo's script: runs end to end, shows each outcome, leaves nothing running.
load helpers

@test "demo: delivers email and SMS, dead-letters the unknown type, stops everything" {
	run "$REPO/scripts/demo"
	echo "$output"
	[ "$status" -eq 0 ]
	dir=$(sed -n 's/^Done. The demo.s files are in //p' <<<"$output")
	[ -d "$dir" ]
	# three tasks delivered, one dead-lettered, as the worker reported them
	[ "$(jq -s '[.[] | select(.status == "delivered")] | length' "$dir/worker.out")" -eq 3 ]
	[ "$(jq -s '[.[] | select(.status == "dead-lettered" and .taskType == "invoice")] | length' "$dir/worker.out")" -eq 1 ]
	[ "$(ls "$dir/mail/new" | wc -l)" -eq 2 ]
	grep -q '"mobile":"+919812345678"' "$dir/sms.jsonl"
	[[ "$output" == *"ts-error-class = unknown-task-type"* ]]
	[[ "$output" == *"taskstream_worker_tasks_delivered_total"* ]]
	# nothing of the demo is left running
	run pgrep -f "$dir"
	[ "$status" -eq 1 ]
	rm -rf "$dir"
}
