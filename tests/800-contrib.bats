#!/usr/bin/env bats
# The systemd units in contrib/ are valid and hardened.
load helpers

verify_unit() {
	local unit=$1 bin=$2 dir=$BATS_TEST_TMPDIR/units
	mkdir -p "$dir"
	# Point ExecStart at the built binary: verify checks that it exists.
	sed "s|/usr/local/bin/$bin|$TS_TEST_BIN/$bin|" "$REPO/contrib/systemd/$unit" > "$dir/$unit"
	run systemd-analyze verify --man=no "$dir/$unit"
	echo "$output"
	[ "$status" -eq 0 ]
	# Nothing at all is printed for a clean unit.
	[ -z "$output" ]
}

@test "contrib: ts-worker@.service passes systemd-analyze verify" {
	mkdir -p "$BATS_TEST_TMPDIR/units"
	verify_unit ts-worker@.service ts-worker
}

@test "contrib: ts-httpd.service passes systemd-analyze verify" {
	verify_unit ts-httpd.service ts-httpd
}

@test "contrib: units run unprivileged, hardened, with secrets outside argv" {
	for u in "$REPO"/contrib/systemd/*.service; do
		grep -q '^User=taskstream$' "$u"
		grep -q '^NoNewPrivileges=yes$' "$u"
		grep -q '^ProtectSystem=strict$' "$u"
		grep -q '^CapabilityBoundingSet=$' "$u"
		grep -q '^Environment=TS_CONFIG=/etc/taskstream/' "$u"
		if grep -Eiq 'ExecStart=.*(password|token|authkey)' "$u"; then
			echo "$u: a secret on the command line" >&2
			false
		fi
	done
}
