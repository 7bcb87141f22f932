#!/usr/bin/env bash
#
# apply_cdc_example.sh -- an example migration synced by change data
# capture instead of triggers: plans/EXAMPLE.zdm compiled with sync = cdc,
# applied under traffic with `zdm sync` beside it, must end as the trigger
# run does (apply_e2e.sh).  Generated for every fixture (ctest
# apply_cdc_EXAMPLE).
#
#   tests/runtime/apply_cdc_example.sh EXAMPLE
#
# The cdc source is made on the fly (at_cdc_source): a copy of
# plans/EXAMPLE.zdm whose with-options gain sync = cdc, key = (the primary
# key every table of the plan has, read from the fixture), max_lag = '1s',
# stable_for = '2s', compiled with $ZDMC; a copy with approve = (switch)
# when it approves no gate.  An example whose trigger plan keeps no two
# shapes in sync (no backfill, no sync trigger: a rename) has nothing for
# zdm sync to do: the test says so and exits 77 (ctest: skipped).
#
# On a fresh copy of the fixture: old-version clients write from before
# `zdm apply`; once the journal shows expand done, `zdm sync` starts and so
# do the new-version clients; zdm sync is killed with SIGKILL mid-run and
# started again (it resumes from its slot); `zdm apply` is killed with
# SIGKILL in the backfill (plans with a backfill, if it is still running
# then) and run again (it says "resuming (was running)"); it stops at its
# first gate that needs approval (exit 4); the old clients stop; `zdm
# apply --approve-all` finishes and zdm sync exits 0 by itself at contract.  Then: not one client
# statement failed; the first run printed that it waited for zdm sync; the
# final columns are EXAMPLE.columns and EXAMPLE.check.sql holds (the data
# the trigger run must end with too); no slot, publication, origin, zdm
# column, trigger, constraint or FULL replica identity is left; status
# done.
set -euo pipefail

me=apply_cdc_example.sh
example=${1:?usage: apply_cdc_example.sh EXAMPLE}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
if ! at_plan_syncs "$plan"; then
	say "$example: its plan keeps no two shapes in sync (no backfill, no sync trigger): nothing for sync = cdc to do; skipped"
	exit 77
fi

key=$(at_plan_key zdm_fixture "$plan")
[ -n "$key" ] ||
	die "the tables of $example have no primary key in common, for sync = cdc's key"
src=$(at_cdc_source "${example}_cdc" "$key")
# An operation that refuses sync = cdc (its compile error says "not
# supported with sync = cdc") has nothing to run here: skipped, with the
# compiler's reason; any other compile error fails the test.
if ! (cd "$(dirname "$src")" &&
	"$ZDMC" compile -o "$work/${example}_cdc.plan" "$(basename "$src")") \
	2>"$work/${example}_cdc.err"; then
	if grep -q 'not supported with sync = cdc' "$work/${example}_cdc.err"; then
		say "$example: $(grep -m1 'not supported with sync = cdc' "$work/${example}_cdc.err"); skipped"
		exit 77
	fi
	cat "$work/${example}_cdc.err" >&2
	die "$src does not compile"
fi
plan=$work/${example}_cdc.plan
grep -q '^  sync: cdc$' "$plan" || die "$plan is not a cdc plan"
if ! grep -q '^    approval: true$' "$plan"; then
	say "the cdc copy approves no gate: using a copy with approve = (switch)"
	plan=$(at_gates_variant "${example}_cdc_switch" switch "$src")
fi
migration=$(at_plan_get "$plan" migration)
version_schema=$(at_plan_get "$plan" new_version.schema)
version_schemas=$(at_version_schemas "$plan")
search_path=$(at_plan_get "$plan" new_version.search_path)
say "sync = cdc copy of $example, key ($key): $(grep -c '^  - id: ' "$plan") steps"

db=cdc_example
fresh_db $db
traffic_start $db old old
sleep 1

say "zdm apply (to the first gate that needs approval), zdm sync once expand is done"
zdm_bg apply1 apply "$plan" --db "dbname=$db" --batch-size 200 --pause 20ms
apply_pid=$zdm_pid
at_wait_for "expand done in the journal" 60 phase_done $db expand
sync_start $db sync1
traffic_start $db new new
wait_sync_running $db
sleep 2
say "kill -9 zdm sync, let changes pile up, start it again"
kill -9 "$sync_pid"
wait "$sync_pid" 2>/dev/null || true
sleep 2
sync_start $db sync2

if grep -q '^    kind: backfill$' "$plan"; then
	at_wait_for "backfill rows in the journal (or zdm apply at its gate)" 120 \
		eval "! kill -0 $apply_pid || sql_true $db 'SELECT coalesce(sum(rows), 0) > 0 FROM zdm.backfill'"
fi
if kill -9 "$apply_pid" 2>/dev/null; then
	wait "$apply_pid" 2>/dev/null || true
	say "zdm apply killed with SIGKILL (in the backfill, if the plan has one); again"
	sed 's/^/    | /' "$work/apply1.out"
	at_wait_for "the killed zdm apply's sessions to end" 30 sql_true $db \
		"SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
		  WHERE datname = '$db' AND application_name IN ('zdm $migration', 'zdm backfill'))"
	# running, unless it reached its gate just before the kill (paused);
	# the journal's word, which the resumed run repeats (status says
	# stopped for a running migration whose runner is gone)
	was=$(status_json $db 'd["journal_state"]')
	zdm_bg apply1b apply "$plan" --db "dbname=$db" --batch-size 200 --pause 20ms
	# generous: on a loaded machine (CI runs tests in parallel) the catch-up
	# steps wait for the sync, which shares the cores
	zdm_wait "$zdm_pid" apply1b 4 200
	expect_grep "resumed run" "$work/apply1b.out" "^migration .*: resuming \\(was $was\\)"
	stopped=apply1b
else
	say "zdm apply had stopped at its gate before the kill"
	zdm_wait "$apply_pid" apply1 4 200
	stopped=apply1
fi
expect_grep "first run: it waited for the sync" "$work/apply1.out" 'zdm sync'
expect_grep "$stopped" "$work/$stopped.out" '^zdm: paused at gate "(switch|contract)"'
sleep 1
traffic_stop old

say "zdm apply --approve-all (the rest)"
zdm_run apply2 0 apply "$plan" --db "dbname=$db" --approve-all
expect_grep "second run" "$work/apply2.out" '^migration .*: done$'
zdm_wait "$sync_pid" sync2 0 30
sleep 1
traffic_stop new
check_done $db
at_done
