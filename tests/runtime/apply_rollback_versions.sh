#!/usr/bin/env bash
#
# apply_rollback_versions.sh -- `zdm rollback` after both application
# versions have written, with sync = trigger and with sync = cdc.
#
#   tests/runtime/apply_rollback_versions.sh EXAMPLE
#
# apply_rollback.sh rolls back from every gate without traffic, or with
# old-version clients only; this test lets the new version write first,
# which is what decides whether a rollback can put the old shape back: a
# column whose NOT NULL expand dropped (drop not null without reverse
# using) holds the NULLs the new version wrote, and NOT NULL can only come
# back once they have a value.
#
# For the example's plan, and for a copy with sync = cdc, key = (id) (zdm
# sync running beside it): on a fresh copy of the fixture, old-version
# clients write from before `zdm apply`, new-version clients from expand;
# apply stops at the switch gate; the clients stop; `zdm rollback`.  Either
# it exits 0, or it exits 1 saying "cannot restore NOT NULL on COLUMN of
# TABLE: N rows are NULL there" -- the documented refusal, which leaves the
# migration where it stopped -- and then, once those rows have a value
# ('eu'), a second `zdm rollback` exits 0 (with cdc, once zdm sync has
# filled the old column of the new version's last inserts: until then the
# rollback is refused, "rows have no value there", and tried again a
# second later, as its hint says).  Either way the schema is the one
# before the migration (pg_dump, without schema zdm); with cdc, zdm sync
# exits by itself.  Not one client statement failed.
set -euo pipefail

me=apply_rollback_versions.sh
example=${1:?usage: apply_rollback_versions.sh EXAMPLE}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
trigger_plan=$plan
cdc_sed='s/^(  with \(.*)\);$/\1, sync = cdc, key = (id), max_lag = '"'"'1s'"'"', stable_for = '"'"'1s'"'"');/'
# An operation that refuses sync = cdc (its compile error says "not
# supported with sync = cdc") gets the trigger case only.
cdc_plan=
sed -E "$cdc_sed" "plans/$example.zdm" >"$work/${example}_cdc_probe.zdm"
if "$ZDMC" compile -o "$work/${example}_cdc_probe.plan" "$work/${example}_cdc_probe.zdm" \
	2>"$work/${example}_cdc_probe.err" ||
	! grep -q 'not supported with sync = cdc' "$work/${example}_cdc_probe.err"; then
	cdc_plan=$(at_variant "${example}_cdc" "$cdc_sed")
	grep -q '^  sync: cdc$' "$cdc_plan" || die "$cdc_plan is not a cdc plan"
else
	say "$example: $(grep -m1 'not supported with sync = cdc' "$work/${example}_cdc_probe.err"); the cdc case is skipped"
fi

# after a failure: what zdm sync said, and the server log's tail
assert_on_fail()
{
	for f in "$work"/sync_*.out "$work"/sync_*.err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -30 "$f" >&2; }
	done
	echo "--- server log (last 30 lines)" >&2
	pg_log | tail -n 30 >&2
}

sync_pid=
sync_start()
{
	"$ZDM" sync "$plan" --db "dbname=$1" >"$work/$2.out" 2>"$work/$2.err" &
	sync_pid=$!
	at_bg_pids+=("$sync_pid")
	say "zdm sync ($2) started, pid $sync_pid"
}

# rollback_case NAME PLAN
rollback_case()
{
	local name=$1 db=rb_$1 rc=0 col tab
	plan=$2
	migration=$(at_plan_get "$plan" migration)
	search_path=$(at_plan_get "$plan" new_version.search_path)
	say "--- $name"
	fresh_db "$db"
	at_dump "$db" "$work/$name.before"
	traffic_start "$db" "old_$name" old
	sleep 1
	zdm_bg "apply_$name" apply "$plan" --db "dbname=$db" --batch-size 500
	at_wait_for "expand done in the journal" 60 phase_done "$db" expand
	if grep -q '^  sync: cdc$' "$plan"; then
		sync_start "$db" "sync_$name"
		wait_sync_running "$db"
	fi
	traffic_start "$db" "new_$name" new
	zdm_wait "$zdm_pid" "apply_$name" 4
	expect_grep "$name: apply" "$work/apply_$name.out" '^zdm: paused at gate "switch"'
	sleep 1
	traffic_stop "new_$name"
	traffic_stop "old_$name"
	# with cdc, the new version's last writes reach the old shape first
	[ -z "$sync_pid" ] || sleep 3
	timeout "$ZDM_TIMEOUT" "$ZDM" rollback "$plan" --db "dbname=$db" \
		>"$work/rollback_$name.out" 2>&1 || rc=$?
	sed 's/^/    | /' "$work/rollback_$name.out"
	if [ "$rc" != 0 ]; then
		expect "$name: zdm rollback exit status" "$rc" 1
		expect_grep "$name: a refused rollback" "$work/rollback_$name.out" \
			'cannot restore NOT NULL on [a-z_]+ of [a-z_.]+: [0-9]+ rows are NULL there'
		col=$(sed -En 's/.*cannot restore NOT NULL on ([a-z_]+) of ([a-z_.]+):.*/\1/p' \
			"$work/rollback_$name.out" | head -1)
		tab=$(sed -En 's/.*cannot restore NOT NULL on ([a-z_]+) of ([a-z_.]+):.*/\2/p' \
			"$work/rollback_$name.out" | head -1)
		say "$name: rollback refused on $tab.$col, as documented; the rows get a value"
		q -d "$db" -c "UPDATE $tab SET $col = 'eu' WHERE $col IS NULL"
		# With cdc, a new-version insert's old column is filled by zdm
		# sync within its lag: a rollback meanwhile is refused with
		# "rows have no value there" and the hint to let zdm sync catch
		# up, which the operator (this loop) does, a second at a time.
		for attempt in 1 2 3 4 5 6 7 8 9 10; do
			rc=0
			timeout "$ZDM_TIMEOUT" "$ZDM" rollback "$plan" --db "dbname=$db" \
				>"$work/rollback2_$name.out" 2>&1 || rc=$?
			sed 's/^/    | /' "$work/rollback2_$name.out"
			[ "$rc" = 0 ] && break
			[ -n "$sync_pid" ] && grep -q 'rows have no value there' "$work/rollback2_$name.out" ||
				die "$name: the second rollback exited $rc"
			say "$name: zdm sync has not filled every new-version insert yet (attempt $attempt); again in 1 s"
			sleep 1
		done
		[ "$rc" = 0 ] || die "$name: rollback still refused after zdm sync had ten seconds more"
	fi
	if [ -n "$sync_pid" ]; then
		at_wait_gone "$sync_pid" 30 || die "$name: zdm sync did not exit after the rollback"
		sync_pid=
	fi
	at_dump "$db" "$work/$name.after"
	same_schema "$work/$name.before" "$work/$name.after" "$name: rollback from the switch gate"
	say "$name: schema as before"
}

rollback_case trigger "$trigger_plan"
[ -z "$cdc_plan" ] || rollback_case cdc "$cdc_plan"
at_done
