#!/usr/bin/env bash
#
# apply_status.sh -- gates by `zdm approve`, `zdm status` (human and
# --json), and the plan a migration in flight is bound to.
#
#   tests/runtime/apply_status.sh [EXAMPLE]
#
# EXAMPLE defaults to split_name (gates switch and contract), no traffic.
#   - before anything: `zdm status PLAN --json` prints null, the human form
#     says no migration has run; neither creates schema zdm;
#   - `zdm apply` stops at the switch gate (exit 4) and prints the command
#     that continues; `zdm status PLAN` (human) says paused, the steps done
#     of the total, the backfill's rows and pages, and the approve command;
#     `--json` (read with python3's json) has state paused, waiting_gate
#     switch, phase switch, current_step the gate's id, steps_done the count
#     of steps before it, backfill rows = the table's rows and pages_done =
#     pages_total, no last_error, every step with id/phase/state, those
#     before the gate done and the rest pending; `zdm status --json` without
#     a plan is a list holding that migration;
#   - `zdm approve PLAN nosuch` and of a gate the plan does not stop at
#     (expand) exit 2, name the gates there are, and record nothing;
#   - a plan of the same migration with another checksum (a copy compiled
#     with another batch_size): `zdm apply` and `zdm rollback` with it exit
#     2 with "different plan", and the journal is as it was;
#   - `zdm approve PLAN switch --by alice` exits 0 and says so; again:
#     "already approved"; `zdm apply` passes switch ("approved by alice")
#     and stops at contract (exit 4), status waiting_gate contract;
#   - `zdm apply --wait` waits at contract; `zdm approve PLAN contract`
#     from elsewhere lets it finish (exit 0) within a few seconds; status
#     done, human and json; the journal's approvals name both approvers;
#   - a --db URL with a raw '%' in its password: exit 1 with a fixed
#     message that does not echo the password.
set -euo pipefail

me=apply_status.sh
example=${1:-split_name}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
db=st
fresh_db $db
dbarg=(--db "dbname=$db")
gates=$(sed -n 's/^  approve: \[\(.*\)\]$/\1/p' "$plan")
expect "the example's gates" "$gates" "switch, contract"

say "status before anything"
zdm_run status0 0 status "$plan" --json "${dbarg[@]}"
expect "status --json before anything" "$(cat "$work/status0.out")" null
zdm_run status0h 0 status "$plan" "${dbarg[@]}"
expect_grep "status before anything" "$work/status0h.out" 'no zdm migration has run'
expect "schema zdm after status" "$(val $db "SELECT pg_catalog.to_regnamespace('zdm') IS NOT NULL")" f

say "apply to the switch gate"
zdm_run apply1 4 apply "$plan" "${dbarg[@]}"
expect_grep "apply1" "$work/apply1.out" "^    zdm approve $plan switch && zdm apply $plan\$"
gate_id=$(awk '/^  - id: / { id = $3 } /^    gate: switch$/ { print id }' "$plan")
nbefore=$(awk -v g="$gate_id" '/^  - id: / { if ($3 == g) { print n; exit } n++ }' "$plan")
nsteps=$(grep -c '^  - id: ' "$plan")
rows=$(val $db "SELECT count(*) FROM public.users")

zdm_run status1 0 status "$plan" "${dbarg[@]}"
h=$work/status1.out
expect_grep "human status" "$h" '^migration split_user_name: paused$'
expect_grep "human status" "$h" "^  progress +$nbefore of $nsteps steps done; last step $gate_id \\(phase switch\\)\$"
expect_grep "human status" "$h" "^  backfill +$rows rows written, ([0-9]+) of \\1 pages done\$"
expect_grep "human status" "$h" "^  waiting +at gate switch: zdm approve $plan switch\$"
grep -q 'last error' "$h" && die "human status shows a last error at a gate"

expect "json state" "$(status_json $db 'd["state"]')" paused
expect "json waiting_gate" "$(status_json $db 'd["waiting_gate"]')" switch
expect "json phase" "$(status_json $db 'd["phase"]')" switch
expect "json current_step" "$(status_json $db 'd["current_step"]')" "$gate_id"
expect "json migration" "$(status_json $db 'd["migration"]')" split_user_name
expect "json plan_sha256" "$(status_json $db 'd["plan_sha256"]')" "$(tail -n 1 "$plan" | cut -d' ' -f2)"
expect "json steps_done" "$(status_json $db 'd["steps_done"]')" "$nbefore"
expect "json backfill" "$(status_json $db '(d["backfill"]["rows"], d["backfill"]["pages_done"] == d["backfill"]["pages_total"])')" "($rows, True)"
expect "json last_error" "$(status_json $db 'd["last_error"]')" \
	"{'message': None, 'sqlstate': None, 'step': None}"
expect "json steps" "$(status_json $db "[s['state'] for s in d['steps']] == ['done'] * $nbefore + ['pending'] * ($nsteps - $nbefore)")" True
expect "json step ids" "$(status_json $db "' '.join(s['id'] for s in d['steps'])")" \
	"$(awk '/^  - id: / { printf "%s%s", n++ ? " " : "", $3 }' "$plan")"
timeout 30 "$ZDM" status --json "${dbarg[@]}" >"$work/all.json"
expect "status --json without a plan" \
	"$(python3 -c 'import json, sys; a = json.load(open(sys.argv[1])); print(type(a).__name__, [m["migration"] for m in a])' "$work/all.json")" \
	"list ['split_user_name']"

say "approve of gates the plan does not stop at"
for g in nosuch expand; do
	zdm_run "approve.$g" 2 approve "$plan" "$g" "${dbarg[@]}"
	expect_grep "approve $g" "$work/approve.$g.err" "no gate \"$g\" that needs approval; its gates are: switch contract"
done
expect "approvals recorded" "$(val $db 'SELECT count(*) FROM zdm.approvals')" 0

say "a different plan of the same migration"
other=$(at_variant "${example}_other" 's/batch_size = [0-9]+/batch_size = 777/')
at_plan_get "$other" migration | grep -qx split_user_name || die "the variant is another migration"
val $db "SELECT state, current_step, plan_sha256 FROM zdm.migrations" >"$work/journal.before"
zdm_run other.apply 2 apply "$other" "${dbarg[@]}" --approve-all
expect_grep "apply with another plan" "$work/other.apply.err" 'was started with a different plan'
zdm_run other.rollback 2 rollback "$other" "${dbarg[@]}"
expect_grep "rollback with another plan" "$work/other.rollback.err" 'was started with a different plan'
val $db "SELECT state, current_step, plan_sha256 FROM zdm.migrations" >"$work/journal.after"
diff -u "$work/journal.before" "$work/journal.after" || die "another plan changed the journal"

say "zdm approve switch, then apply to contract"
zdm_run approve.switch 0 approve "$plan" switch --by alice "${dbarg[@]}"
expect_grep "approve switch" "$work/approve.switch.out" 'approved by alice'
zdm_run approve.switch2 0 approve "$plan" switch --by bob "${dbarg[@]}"
expect_grep "approve switch again" "$work/approve.switch2.out" 'already approved'
zdm_run apply2 4 apply "$plan" "${dbarg[@]}"
expect_grep "apply2" "$work/apply2.out" 'approved by alice at '
expect_grep "apply2" "$work/apply2.out" '^zdm: paused at gate "contract"'
expect "json waiting_gate" "$(status_json $db 'd["waiting_gate"]')" contract

say "apply --wait at contract, approved from elsewhere"
zdm_bg wait apply "$plan" "${dbarg[@]}" --wait
pid=$zdm_pid
at_wait_for "zdm waiting at contract" 30 grep -q 'waiting for approval' "$work/wait.out"
expect "json while waiting" "$(status_json $db '(d["state"], d["waiting_gate"])')" "('paused', 'contract')"
zdm_run approve.contract 0 approve "$plan" contract --by carol "${dbarg[@]}"
zdm_wait $pid wait 0 20
expect_grep "waiting run" "$work/wait.out" 'approved by carol at '
expect_grep "waiting run" "$work/wait.out" '^migration split_user_name: done$'
expect "json done" "$(status_json $db '(d["state"], d["waiting_gate"], d["steps_done"])')" "('done', None, $nsteps)"
zdm_run status2 0 status "$plan" "${dbarg[@]}"
expect_grep "human status done" "$work/status2.out" '^migration split_user_name: done$'
expect "approvals" "$(val $db "SELECT string_agg(gate || '=' || approved_by, ' ' ORDER BY gate) FROM zdm.approvals")" \
	"contract=carol switch=alice"

say "a connection string libpq cannot parse: a fixed message, no secret"
zdm_run badurl 1 status "$plan" --db 'postgresql://u:s3cr%zzet@localhost/db'
expect_grep "unparsable url" "$work/badurl.err" 'the connection string cannot be parsed \(check its quoting and percent-encoding\)'
grep -q 's3cr' "$work/badurl.err" && die "the password was printed"
check_columns $db
check_no_leftovers $db
at_done
