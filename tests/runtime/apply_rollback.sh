#!/usr/bin/env bash
#
# apply_rollback.sh -- `zdm rollback` from every phase boundary of an
# example migration gives back the original schema and data.
#
#   tests/runtime/apply_rollback.sh EXAMPLE
#
# To stop at each boundary the test compiles a bench-only copy of
# plans/EXAMPLE.zdm with approve = (expand, backfill, verify, switch,
# contract) (same statements, every gate stops) and approves the gates up to
# the boundary with --approve.  One case per gate of that plan, in order,
# each on a fresh copy of the fixture, without traffic (the data must
# compare byte for byte); today's plans have a gate before each phase:
#   gate_expand    stopped at the expand gate: nothing but the journal exists
#   expand         expand done, stopped at the backfill gate
#   backfill       backfill done, stopped at the verify gate
#   verify         verify done, stopped at the switch gate
#   switch         switch approved, stopped at the contract gate
# `zdm apply` exits 4 naming the gate, `zdm rollback` exits 0, and then
#   - pg_dump --schema-only (without schema zdm and the fixture's snapshot)
#     is the one taken before the migration, and every table's rows in key
#     order are the same;
#   - `zdm status --json` says rolled_back; a second rollback says "already";
# After the second case ("expand"), `zdm apply --approve-all` starts over
# (output "started") and finishes, leaving the final columns and no zdm
# object.
# More cases:
#   locked           at the switch gate, a session holds ACCESS SHARE on the
#                    tables and on their views in the version schema: `zdm
#                    rollback` waits (still running 2 s later, the schema
#                    still the one at the gate, but for an index the plan
#                    built, which a DROP INDEX CONCURRENTLY that waits has
#                    already marked invalid); once the lock is released
#                    it finishes (exit 0) with schema and data as before.
#   rollback_killed  the same wait, and the rollback killed with SIGKILL:
#                    status says rolling_back; the lock released, `zdm
#                    rollback` again finishes with schema and data as before.
#   killed           `zdm apply` killed with SIGKILL mid-backfill, then `zdm
#                    rollback`: schema and data as before, no backfill
#                    checkpoint left; `zdm apply --approve-all` then starts
#                    over with a whole backfill ("N of N pages left") and
#                    finishes.  (Examples with a backfill.)
#   contract         the migration done: `zdm rollback` is refused with exit
#                    3, a message that names the point of no return, and the
#                    schema and data are those of the done migration.
#   traffic          the example's own plan (rename_email, approve = none:
#                    a copy with approve = (switch)); old-version clients
#                    write from before `zdm apply` until after `zdm
#                    rollback` at its first gate: none of their statements
#                    fails and the schema is the original.
set -euo pipefail

me=apply_rollback.sh
example=${1:?usage: apply_rollback.sh EXAMPLE}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
gplan=$(at_gates_variant "${example}_gates" "expand, backfill, verify, switch, contract")

# without_index SCHEMA-DUMP NAME: the dump without index NAME (its header
# paragraph and its CREATE INDEX paragraph).
without_index()
{
	awk -v name="$2" 'BEGIN { RS = ""; ORS = "\n\n" }
		skip { skip = 0; next }
		index($0, "-- Name: " name "; Type: INDEX;") { skip = 1; next }
		{ print }' "$1"
}

# case NAME GATES-TO-APPROVE GATE-IT-STOPS-AT
rollback_case()
{
	local name=$1 approve=$2 stops_at=$3 db=rb_$1
	local args=(apply "$gplan" --db "dbname=$db" --batch-size 500)
	say "case $name: apply up to the $stops_at gate, then roll back"
	fresh_db "$db"
	at_dump "$db" "$work/$db.before"
	[ -n "$approve" ] && args+=(--approve "$approve")
	zdm_run "$db.apply" 4 "${args[@]}"
	expect_grep "$name: apply" "$work/$db.apply.out" "^zdm: paused at gate \"$stops_at\""
	expect "$name: status waiting_gate" "$(status_json "$db" 'd["waiting_gate"]')" "$stops_at"
	zdm_run "$db.rollback" 0 rollback "$gplan" --db "dbname=$db"
	expect_grep "$name: rollback" "$work/$db.rollback.out" '^migration .*: rolled back$'
	at_dump "$db" "$work/$db.after"
	same_schema "$work/$db.before" "$work/$db.after" "rollback after $name"
	same_data "$work/$db.before" "$work/$db.after" "rollback after $name"
	expect "$name: status after rollback" "$(status_json "$db" 'd["state"]')" rolled_back
	zdm_run "$db.rollback2" 0 rollback "$gplan" --db "dbname=$db"
	expect_grep "$name: second rollback" "$work/$db.rollback2.out" 'already rolled back'
	say "case $name: schema and data as before"
}

# One case per gate of the plan, in order (each phase boundary): stop
# there, with every gate before it approved.  Named after the last gate
# approved, the first gate_GATE.
mapfile -t gates < <(sed -n 's/^    gate: //p' "$gplan")
[ "${#gates[@]}" -ge 2 ] || die "the gates variant has ${#gates[@]} gate(s)"
approved=""
prev=""
restart_db=""
for g in "${gates[@]}"; do
	rollback_case "${prev:-gate_$g}" "$approved" "$g"
	[ -n "$restart_db" ] || [ -z "$prev" ] || restart_db=rb_$prev
	approved=${approved:+$approved,}$g
	prev=$g
done

say "after a rollback, apply starts over"
db=$restart_db
zdm_run again 0 apply "$gplan" --db "dbname=$db" --approve-all
expect_grep "apply after rollback" "$work/again.out" '^migration .*: started'
expect_grep "apply after rollback" "$work/again.out" '^migration .*: done$'
check_columns $db
check_no_leftovers $db

# The two lock cases hold every table of the plan: a plan of statements on
# no table alone (drop index, an enum type) locks none of them in rollback,
# which only drops the new version's empty schema, so they have nothing to
# wait for.
if [ -z "$(sed -n 's/^- table: //p' "$gplan")" ]; then
	say "case locked, case rollback_killed: skipped, the plan changes no table (rollback takes no table lock)"
else
	say "case locked: rollback waits for a lock held by a long transaction"
	db=rb_locked
	fresh_db $db
	at_dump $db "$work/$db.before"
	zdm_run $db.apply 4 apply "$gplan" --db "dbname=$db" --approve expand,backfill,verify
	# Every table of the plan and every view in its version schemas, as the
	# catalog has them now (a view is named after the table's new name, in its
	# schema's version schema; DROP VIEW takes no lock on the table, and
	# rename_email's rollback touches only views).
	locked=$(sed -n 's/^- table: //p' "$gplan" | paste -sd, - | sed 's/,/, /g')
	locked="$locked, $(val $db "SELECT pg_catalog.string_agg(c.oid::pg_catalog.regclass::text, ', ')
	  FROM pg_catalog.pg_class AS c
	  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
	 WHERE n.nspname = ANY (pg_catalog.string_to_array('$version_schemas', ','))")"
	at_dump $db "$work/$db.gate"
	blocker_start $db "LOCK TABLE $locked IN ACCESS SHARE MODE"
	zdm_bg $db.rollback rollback "$gplan" --db "dbname=$db"
	pid=$zdm_pid
	sleep 2
	kill -0 $pid 2>/dev/null || {
		cat "$work/$db.rollback.out" "$work/$db.rollback.err" >&2
		die "rollback did not wait for the lock (ended within 2 s)"
	}
	at_dump $db "$work/$db.waiting"
	# The undo of an autocommit step that built an index (DROP INDEX
	# CONCURRENTLY) commits its first phase, marking the index invalid, before
	# it waits for the readers: while it waits, pg_dump no longer shows that
	# index.  Everything else must be as it was at the gate.
	for index in $(sed -n 's/^    index: [^.]*\.//p' "$gplan"); do
		for dump in gate waiting; do
			without_index "$work/$db.$dump.schema" "$index" >"$work/$db.$dump.schema.tmp"
			mv "$work/$db.$dump.schema.tmp" "$work/$db.$dump.schema"
		done
	done
	same_schema "$work/$db.gate" "$work/$db.waiting" "while rollback waits for the lock"
	blocker_stop $db
	zdm_wait $pid $db.rollback 0 40
	at_dump $db "$work/$db.after"
	same_schema "$work/$db.before" "$work/$db.after" "rollback after a lock wait"
	same_data "$work/$db.before" "$work/$db.after" "rollback after a lock wait"

	say "case rollback_killed: kill -9 of a rollback waiting for a lock, then rollback again"
	db=rb_rollback_killed
	fresh_db $db
	at_dump $db "$work/$db.before"
	zdm_run $db.apply 4 apply "$gplan" --db "dbname=$db" --approve expand,backfill,verify
	blocker_start $db "LOCK TABLE $locked IN ACCESS SHARE MODE"
	zdm_bg $db.rollback rollback "$gplan" --db "dbname=$db"
	sleep 1.5
	kill -0 $zdm_pid 2>/dev/null || die "rollback did not wait for the lock"
	kill -9 $zdm_pid
	wait $zdm_pid 2>/dev/null || true
	blocker_stop $db
	at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
	expect "journal state after the kill" "$(status_json $db 'd["journal_state"]')" rolling_back
	# no runner holds the migration's lock any more: status says so
	expect "status after the kill" "$(status_json $db 'd["state"]')" stopped
	zdm_run $db.rollback2 0 rollback "$gplan" --db "dbname=$db"
	at_dump $db "$work/$db.after"
	same_schema "$work/$db.before" "$work/$db.after" "rollback after a killed rollback"
	same_data "$work/$db.before" "$work/$db.after" "rollback after a killed rollback"
fi

if grep -q '^    kind: backfill$' "$gplan"; then
	say "case killed: kill -9 mid-backfill, roll back, apply starts over"
	db=rb_killed
	fresh_db $db
	at_dump $db "$work/$db.before"
	zdm_bg $db.apply apply "$gplan" --db "dbname=$db" --approve-all \
		--batch-size 100 --pause 50ms
	at_wait_for "backfill rows in the journal" 60 \
		eval "! kill -0 $zdm_pid || sql_true $db 'SELECT coalesce(sum(rows), 0) > 500 FROM zdm.backfill'"
	kill -9 $zdm_pid
	wait $zdm_pid 2>/dev/null || true
	sed 's/^/    | /' "$work/$db.apply.out"
	at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
	zdm_run $db.rollback 0 rollback "$gplan" --db "dbname=$db"
	at_dump $db "$work/$db.after"
	same_schema "$work/$db.before" "$work/$db.after" "rollback after a kill in backfill"
	same_data "$work/$db.before" "$work/$db.after" "rollback after a kill in backfill"
	expect "backfill checkpoints after rollback" "$(val $db 'SELECT count(*) FROM zdm.backfill')" 0
	zdm_run $db.again 0 apply "$gplan" --db "dbname=$db" --approve-all
	expect_grep "apply after rollback" "$work/$db.again.out" '^migration .*: started'
	expect_grep "apply after rollback: a whole backfill" "$work/$db.again.out" \
		'^backfill\.[0-9]+: starting [^:]*: ([0-9]+) of \1 pages left'
	check_columns $db
	check_no_leftovers $db
fi

say "case contract: rollback refused past the point of no return"
db=rb_contract
fresh_db $db
zdm_run $db.apply 0 apply "$gplan" --db "dbname=$db" --approve-all
at_dump $db "$work/$db.done"
zdm_run $db.rollback 3 rollback "$gplan" --db "dbname=$db"
expect_grep "refused rollback" "$work/$db.rollback.err" 'point of no return'
expect_grep "refused rollback" "$work/$db.rollback.err" '^zdm: error: cannot roll back'
at_dump $db "$work/$db.after"
same_schema "$work/$db.done" "$work/$db.after" "refused rollback"
same_data "$work/$db.done" "$work/$db.after" "refused rollback"
expect "status after the refused rollback" "$(status_json $db 'd["state"]')" done

say "case traffic: old clients write through apply and rollback"
db=rb_traffic
fresh_db $db
at_dump $db "$work/$db.before"
traffic_start $db old old
sleep 1
splan=$(at_stopping_plan)
zdm_run $db.apply 4 apply "$splan" --db "dbname=$db" --batch-size 200 --pause 10ms
zdm_run $db.rollback 0 rollback "$splan" --db "dbname=$db"
sleep 1
traffic_stop old
at_dump $db "$work/$db.after"
same_schema "$work/$db.before" "$work/$db.after" "rollback under traffic"
at_done
