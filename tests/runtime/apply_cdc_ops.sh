#!/usr/bin/env bash
#
# apply_cdc_ops.sh -- an example's migration with sync = cdc, end to end
# under traffic: the example's own plans/EXAMPLE.zdm with `sync = cdc, key =
# (id)` added to its options (statements unchanged), so that the cdc rules
# of drop column, set not null and drop not null run against the same
# clients and checks as their trigger plans.
#
#   tests/runtime/apply_cdc_ops.sh EXAMPLE
#
# Old-version clients write from before expand; zdm sync starts once
# expand is done, new-version clients then; apply stops at the switch gate,
# the old clients stop, apply --approve-all finishes and zdm sync exits by
# itself at contract.  Not one client statement failed; the final columns,
# leftovers and EXAMPLE.check.sql hold as for the trigger plan.  Then a
# rollback from the switch gate, with zdm sync running and both versions
# having written, leaves the schema as it was.
set -euo pipefail

me=apply_cdc_ops.sh
example=${1:?usage: apply_cdc_ops.sh EXAMPLE}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
plan=$(at_variant "${example}_cdc" \
	's/^(  with \(.*)\);$/\1, sync = cdc, key = (id), max_lag = '"'"'1s'"'"', stable_for = '"'"'1s'"'"');/')
migration=$(at_plan_get "$plan" migration)
grep -q '^  sync: cdc$' "$plan" || die "$plan is not a cdc plan"

sync_start()
{
	"$ZDM" sync "$plan" --db "dbname=$1" >"$work/$2.out" 2>"$work/$2.err" &
	sync_pid=$!
	at_bg_pids+=("$sync_pid")
	say "zdm sync ($2) started, pid $sync_pid"
}

db=cdc
fresh_db $db
traffic_start $db old old
sleep 1
say "zdm apply (to the switch gate)"
zdm_bg apply1 apply "$plan" --db "dbname=$db" --batch-size 200 --pause 20ms
at_wait_for "expand done in the journal" 60 phase_done $db expand
sync_start $db sync1
wait_sync_running $db
traffic_start $db new new
zdm_wait "$zdm_pid" apply1 4
expect_grep "first run" "$work/apply1.out" '^zdm: paused at gate "switch"'
sleep 1
traffic_stop old
zdm_run apply2 0 apply "$plan" --db "dbname=$db" --approve-all
sleep 2
traffic_stop new
at_wait_gone "$sync_pid" 30 || die "zdm sync did not exit after contract"
wait "$sync_pid" || die "zdm sync exited with an error: $(cat "$work/sync1.err")"
check_done $db

say "rollback from the switch gate, both versions having written"
db=cdc_rb
fresh_db $db
at_dump $db "$work/rb.before"
traffic_start $db old2 old
zdm_bg apply3 apply "$plan" --db "dbname=$db" --batch-size 500
at_wait_for "expand done in the journal" 60 phase_done $db expand
sync_start $db sync2
wait_sync_running $db
traffic_start $db new2 new
zdm_wait "$zdm_pid" apply3 4
traffic_stop new2
traffic_stop old2
# the new version's rows (its NULLs) reach the old shape before rollback
sleep 3
# A rollback that cannot put NOT NULL back (drop not null without reverse
# using: the new version wrote NULL) stops and says so; the rows get a value
# and the rollback runs again.
rc=0
timeout "$ZDM_TIMEOUT" "$ZDM" rollback "$plan" --db "dbname=$db" \
	>"$work/rollback1.out" 2>&1 || rc=$?
cat "$work/rollback1.out"
if [ "$rc" != 0 ]; then
	expect_grep "a refused rollback" "$work/rollback1.out" \
		'cannot restore NOT NULL on [a-z_]+ of [a-z_.]+: [0-9]+ rows are NULL there'
	col=$(sed -En 's/.*cannot restore NOT NULL on ([a-z_]+) of ([a-z_.]+):.*/\1/p' \
		"$work/rollback1.out" | head -1)
	tab=$(sed -En 's/.*cannot restore NOT NULL on ([a-z_]+) of ([a-z_.]+):.*/\2/p' \
		"$work/rollback1.out" | head -1)
	say "rollback refused on $tab.$col, as documented; giving the rows a value"
	q -d $db -c "UPDATE $tab SET $col = 'eu' WHERE $col IS NULL"
	zdm_run rollback2 0 rollback "$plan" --db "dbname=$db"
fi
at_wait_gone "$sync_pid" 30 || die "zdm sync did not exit after the rollback"
at_dump $db "$work/rb.after"
same_schema "$work/rb.before" "$work/rb.after" "rollback from the switch gate"
at_done
