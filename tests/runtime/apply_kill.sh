#!/usr/bin/env bash
#
# apply_kill.sh -- `kill -9` of `zdm apply` at one point of a migration, then
# `zdm apply` again: it resumes and the migration ends correct.
#
#   tests/runtime/apply_kill.sh expand|backfill|gate|contract [EXAMPLE]
#
# EXAMPLE defaults to split_name.  Old-version clients write from before the
# first run until the switch gate, new-version clients from after expand
# until after contract, through the kill and the resume; none of their
# statements may fail.  The kill points:
#   expand    a session holds ACCESS SHARE on the table in an open
#             transaction, so expand's ALTER TABLE times out and zdm retries;
#             killed after two retries, then the lock is released.  Expand
#             must not have committed (pg_dump as before, no expand step
#             done); the resumed run does it again.
#   backfill  small batches with --pause 50ms --jobs 2; killed once the
#             journal holds some backfill rows.  The resumed run's backfill
#             starts with fewer pages left than the table has (it continues
#             from the checkpoints).  Between the kill and the resume, the
#             journal says running but `zdm status` says stopped (no runner
#             holds the migration's lock) and how to go on.
#   gate      `zdm apply --wait` waits at the switch gate; `zdm status --json`
#             says paused there; a second `zdm apply` meanwhile is refused
#             (exit 1, "another zdm"); killed.  The resumed run stops at the
#             same gate and ran no step twice.  Then `zdm apply --wait`
#             again, SIGTERM while it waits: exit 3 within 5 s, state
#             stopped, no step left running.
#   contract  old clients stopped, the table locked again, `zdm apply
#             --approve-all` retries contract's first transaction; killed.
#             Contract must not have committed; the resumed run finishes.
# After a kill the test waits (bounded) until the killed run's sessions are
# gone: a backend lingers until it notices its client left (up to the lock
# timeout).  Each resumed run must say "resuming".  At the end: exit 0,
# EXAMPLE.columns, no zdm object left, EXAMPLE.check.sql, status done.
set -euo pipefail

me=apply_kill.sh
point=${1:?usage: apply_kill.sh expand|backfill|gate|contract [EXAMPLE]}
example=${2:-split_name}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
plan=$(at_stopping_plan)
table=$(sed -n 's/^- table: //p' "$plan" | head -n 1)
db=kill_$point
fresh_db $db
at_dump $db "$work/before"

# kill9 NAME: kill -9 the background zdm, wait until its sessions are gone.
kill9()
{
	kill -9 "$zdm_pid"
	wait "$zdm_pid" 2>/dev/null || true
	say "zdm apply ($1) killed with SIGKILL"
	sed 's/^/    | /' "$work/$1.out"
	at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
}

retries()
{
	grep -c 'retry [0-9]* of' "$work/$1.out" || true
}

traffic_start $db old old
sleep 1

case $point in
expand)
	blocker_start $db "LOCK TABLE $table IN ACCESS SHARE MODE"
	zdm_bg run1 apply "$plan" --db "dbname=$db"
	at_wait_for "two lock retries in expand" 40 \
		eval '[ "$(retries run1)" -ge 2 ]'
	kill9 run1
	blocker_stop $db
	expect "expand steps done after the kill" \
		"$(val $db "SELECT count(*) FROM zdm.steps WHERE phase = 'expand' AND state = 'done'")" 0
	at_dump $db "$work/killed"
	same_schema "$work/before" "$work/killed" "after the kill in expand"
	apply_to_gate $db run2 "$plan"
	expect_grep "resumed run" "$work/run2.out" '^migration .*: resuming \(was running\)'
	expect_grep "resumed run" "$work/run2.out" '^  expand\.[0-9]+ '
	;;
backfill)
	zdm_bg run1 apply "$plan" --db "dbname=$db" --batch-size 100 --pause 50ms --jobs 2
	at_wait_for "expand done" 60 eval "phase_done $db expand || ! kill -0 $zdm_pid"
	traffic_start $db new new
	at_wait_for "backfill rows in the journal" 60 sql_true $db \
		"SELECT coalesce(sum(rows), 0) > 1000 FROM zdm.backfill"
	kill9 run1
	# The journal still says running; no runner holds the lock any more.
	expect "journal state after the kill" \
		"$(val $db "SELECT state FROM zdm.migrations")" running
	expect "status --json after the kill: state" "$(status_json $db 'd["state"]')" stopped
	expect "status --json after the kill: runner_alive" \
		"$(status_json $db 'd["runner_alive"]')" False
	"$ZDM" status "$plan" --db "dbname=$db" >"$work/status.killed.out"
	expect_grep "zdm status after the kill" "$work/status.killed.out" \
		"^migration .*: stopped\$"
	expect_grep "zdm status after the kill: how to go on" "$work/status.killed.out" \
		"no zdm runner holds the migration's lock: .*go on with: zdm apply $plan\$"
	pages=$(val $db "SELECT sum(next_page - first_page) || ' of ' || sum(end_page - first_page) FROM zdm.backfill")
	say "journal after the kill: $pages pages done"
	expect "backfill step done after the kill" \
		"$(val $db "SELECT state FROM zdm.steps WHERE phase = 'backfill' AND step_id LIKE 'backfill.%' ORDER BY position LIMIT 1")" running
	apply_to_gate $db run2 "$plan" --batch-size 100 --pause 10ms --jobs 2
	expect_grep "resumed run" "$work/run2.out" '^migration .*: resuming \(was running\)'
	left=$(sed -n 's/^backfill\.[0-9]*: \(starting\|resuming\) [^:]*: \([0-9]*\) of \([0-9]*\) pages left.*/\2 \3/p' "$work/run2.out")
	[ -n "$left" ] || die "the resumed run printed no 'starting ... pages left' line"
	read -r nleft ntotal <<<"$left"
	[ "$nleft" -lt "$ntotal" ] ||
		die "the resumed backfill started over: $nleft of $ntotal pages left"
	say "the resumed backfill had $nleft of $ntotal pages left"
	;;
gate)
	zdm_bg run1 apply "$plan" --db "dbname=$db" --wait
	at_wait_for "expand done" 60 eval "phase_done $db expand || ! kill -0 $zdm_pid"
	traffic_start $db new new
	at_wait_for "zdm waiting at the gate" 60 \
		grep -q 'waiting for approval: zdm approve' "$work/run1.out"
	expect "status while waiting: state" "$(status_json $db 'd["state"]')" paused
	expect "status while waiting: runner_alive" "$(status_json $db 'd["runner_alive"]')" True
	gate=$(status_json $db 'd["waiting_gate"]')
	[ "$gate" = switch ] || [ "$gate" = contract ] || die "waiting at gate '$gate'"
	run1_pid=$zdm_pid
	zdm_run second 1 apply "$plan" --db "dbname=$db" --approve-all
	expect_grep "second runner" "$work/second.err" 'another zdm'
	zdm_pid=$run1_pid
	kill9 run1
	apply_to_gate $db run2 "$plan"
	expect_grep "resumed run" "$work/run2.out" '^migration .*: resuming \(was paused\)'
	expect_grep "resumed run" "$work/run2.out" "^zdm: paused at gate \"$gate\""
	expect "steps run twice" "$(val $db "SELECT count(*) FROM zdm.steps WHERE attempts > 1")" 0
	# SIGTERM while --wait waits at the gate: it gives up within a
	# second, exit 3, state stopped, no step left running
	zdm_bg run3 apply "$plan" --db "dbname=$db" --wait
	at_wait_for "zdm waiting at the gate again" 60 \
		grep -q 'waiting for approval: zdm approve' "$work/run3.out"
	kill -TERM "$zdm_pid"
	zdm_wait "$zdm_pid" run3 3 5
	expect_grep "SIGTERM at the gate" "$work/run3.err" 'interrupted while waiting for approval at a gate'
	expect "state after SIGTERM" "$(status_json $db 'd["state"]')" stopped
	expect "steps left running" "$(val $db "SELECT count(*) FROM zdm.steps WHERE state = 'running'")" 0
	;;
contract)
	apply_to_gate $db run1 "$plan"
	;;
*)
	die "unknown kill point $point"
	;;
esac

sleep 1
traffic_stop old

if [ "$point" = contract ]; then
	at_dump $db "$work/at_gate"
	blocker_start $db "LOCK TABLE $table IN ACCESS SHARE MODE"
	zdm_bg run2 apply "$plan" --db "dbname=$db" --approve-all
	at_wait_for "two lock retries in contract" 40 \
		eval '[ "$(retries run2)" -ge 2 ]'
	expect_grep "retries in contract" "$work/run2.out" '^  contract\.[0-9]+ .*retry 2 of'
	kill9 run2
	blocker_stop $db
	expect "contract steps (not gates) done after the kill" \
		"$(val $db "SELECT count(*) FROM zdm.steps WHERE phase = 'contract' AND state = 'done' AND step_id NOT IN ($(plan_gate_ids "$plan"))")" 0
	at_dump $db "$work/killed"
	same_schema "$work/at_gate" "$work/killed" "after the kill in contract"
	zdm_run run3 0 apply "$plan" --db "dbname=$db" --approve-all
	expect_grep "resumed run" "$work/run3.out" '^migration .*: resuming \(was running\)'
else
	zdm_run run3 0 apply "$plan" --db "dbname=$db" --approve-all
	expect_grep "last run" "$work/run3.out" '^migration .*: resuming'
fi
expect_grep "last run" "$work/run3.out" '^migration .*: done$'
sleep 2
traffic_stop new
check_done $db
at_done
