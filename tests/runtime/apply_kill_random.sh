#!/usr/bin/env bash
#
# apply_kill_random.sh -- `kill -9` of `zdm apply` at a random point of an
# example migration, then `zdm apply` again: it resumes, and the migration
# ends as apply_e2e.sh's does.  Generated for every fixture (ctest
# apply_kill_EXAMPLE); apply_kill.sh keeps the fixed points that need a
# held lock or a wait at a gate.
#
#   tests/runtime/apply_kill_random.sh EXAMPLE
#   ZDM_KILL_SEED=N tests/runtime/apply_kill_random.sh EXAMPLE   # repeat one
#
# The seed (ZDM_KILL_SEED, or drawn from the clock) is printed first and in
# every failure message; it draws the kill point: a step of the plan that
# is not a gate, and how to kill there:
#   journal   once the journal shows the step started, a watcher session
#             takes the journal tables in EXCLUSIVE mode; `zdm apply` is
#             killed while its next journal write waits for that lock
#             (inside the step's transaction, after its work, for a step
#             marked done in it), and the lock released after the kill
#   progress  (a backfill step, half of the time) once the backfill has
#             done a share of its pages drawn from 5 to 95 %
# The seed repeats the point; where exactly the kill lands within it also
# depends on timing.  If the run has ended before the point (in journal
# mode it cannot: every run ends with a journal write), nothing is killed
# and the test says so.  A kill in journal mode can still land after the
# end, on the run's closing bookkeeping, when the last step is quicker than
# the watcher; the journal shows it and the test says so.
#
# As in apply_e2e.sh, old-version clients write from before the first run
# until the gate that needs approval (a copy with approve = (switch) for a
# plan that approves none), new-version clients from expand done until
# after contract, through the kill and the resume; none of their statements
# may fail.  The runs: the first `zdm apply` to that gate (small backfill
# batches with a pause, so that a kill can land in the backfill); if killed,
# a second that says "resuming" and stops at the gate; the old clients
# stop; `zdm apply --approve-all` to done; if killed, one more that says
# "resuming" and finishes.  Then what apply_e2e.sh checks: EXAMPLE.columns,
# no zdm object left, EXAMPLE.check.sql, status done, "already done".
set -euo pipefail

me=apply_kill_random.sh
example=${1:?usage: apply_kill_random.sh EXAMPLE}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
plan=$(at_stopping_plan)

seed=${ZDM_KILL_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
[[ $seed =~ ^[0-9]+$ ]] || die "ZDM_KILL_SEED must be a number, not '$seed'"
me="apply_kill_random.sh (ZDM_KILL_SEED=$seed)"
RANDOM=$seed
at_plan_steps "$plan" >"$work/steps"
mapfile -t candidates < <(awk '$2 != "gate" { print $1 }' "$work/steps")
[ "${#candidates[@]}" -gt 0 ] || die "the plan has no step to kill in"
kill_step=${candidates[RANDOM % ${#candidates[@]}]}
kill_kind=$(awk -v k="$kill_step" '$1 == k { print $2 }' "$work/steps")
# journal: at zdm's first journal write once the step has started;
# progress (backfill steps only): once the backfill has done a share of its
# pages, drawn from 5 to 95 %
kill_mode=journal
kill_share=$((5 + RANDOM % 91))
[ "$kill_kind" = backfill ] && [ $((RANDOM % 2)) = 0 ] && kill_mode=progress
# The first run ends at the first gate that needs approval: the kill point
# is in it when its step comes before that gate, otherwise in the second.
kill_run=$(awk -v k="$kill_step" '
	$1 == k { print 1; exit }
	$4 == "approval" { print 2; exit }' "$work/steps")
kill_phase=$(awk -v k="$kill_step" '$1 == k { print $3 }' "$work/steps")
if [ "$kill_mode" = progress ]; then
	say "seed $seed: kill -9 once $kill_step ($kill_phase) has done ${kill_share}% of its pages, in run $kill_run"
else
	say "seed $seed: kill -9 at zdm's first journal write after $kill_step ($kill_phase) starts, in run $kill_run"
fi
say "to repeat: ZDM_KILL_SEED=$seed ctest -R '^apply_kill_${example}\$' (or bash tests/runtime/apply_kill_random.sh $example)"

db=kill_any
fresh_db $db

# The watcher: a session (application_name zdm_test_watch) that waits, in
# the server, until the kill point's condition holds (a fresh snapshot
# every 2 ms: each statement of a DO block in READ COMMITTED takes one):
# the kill step started (journal mode) or its backfill at its share of
# pages (progress mode).  Then it ends (progress mode), or takes the
# journal tables in EXCLUSIVE mode and keeps them until cancelled (journal
# mode), so that zdm's next journal write waits and the kill lands there:
# inside the step's transaction, after its work, for a step of a
# transaction group.  It starts, and is waiting, before zdm does.  Until
# the journal exists it looks for it in pg_class with a plain query: a
# lookup by name (to_regclass) would leave a negative catalog cache entry
# that lasts until the session processes invalidations, which a DO block
# that takes no lock never does.
if [ "$kill_mode" = progress ]; then
	watch_cond="SELECT count(*) > 0 AND sum(next_page - first_page) * 100
	    >= $kill_share * sum(end_page - first_page) FROM zdm.backfill
	  WHERE migration = \$1 AND step_id = \$2"
else
	watch_cond="SELECT EXISTS (SELECT FROM zdm.steps WHERE migration = \$1
	    AND step_id = \$2 AND state <> 'pending')"
fi
watch_sql="DO \$\$
DECLARE started boolean := false;
BEGIN
  LOOP
    IF EXISTS (SELECT FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'zdm' AND c.relname = 'backfill') THEN
      EXECUTE \$q\$ $watch_cond \$q\$ INTO started USING '$migration', '$kill_step';
    END IF;
    EXIT WHEN started;
    PERFORM pg_catalog.pg_sleep(0.002);
  END LOOP;
END \$\$;"
watch_start()
{
	local sql=$watch_sql
	[ "$kill_mode" = journal ] &&
		sql="BEGIN; $watch_sql LOCK TABLE zdm.steps, zdm.migrations IN EXCLUSIVE MODE; SELECT pg_catalog.pg_sleep(120); COMMIT;"
	PGAPPNAME=zdm_test_watch psql -X -q -d $db -c "$sql" >"$work/watch.log" 2>&1 &
	watch_pid=$!
	at_bg_pids+=("$watch_pid")
	at_wait_for "the watcher session" 20 sql_true $db \
		"SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
		  WHERE application_name = 'zdm_test_watch' AND state = 'active')"
}

watch_stop()
{
	val $db "SELECT count(pg_catalog.pg_cancel_backend(pid)) FROM pg_catalog.pg_stat_activity
	  WHERE application_name = 'zdm_test_watch'" >/dev/null
	at_wait_gone "$watch_pid" 20 || die "the watcher session did not end"
	wait "$watch_pid" 2>/dev/null || true
}

# The moment to kill has come: in progress mode the watcher has ended, in
# journal mode a zdm session waits for its lock.
kill_due()
{
	if [ "$kill_mode" = progress ]; then
		! kill -0 "$watch_pid" 2>/dev/null
	else
		sql_true $db "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity w
		  JOIN pg_catalog.pg_stat_activity z
		    ON w.pid = ANY (pg_catalog.pg_blocking_pids(z.pid))
		  WHERE w.application_name = 'zdm_test_watch'
		    AND z.application_name LIKE 'zdm %')"
	fi
}

# watch_run NAME HOLDS-KILL ARGS...: zdm ARGS in the background; while it
# runs, start the new-version clients once expand is done, and, when
# HOLDS-KILL is 1, kill it at the kill point.  Sets killed to 1 when it
# killed.
killed=0
watch_run()
{
	local name=$1 holds=$2
	shift 2
	watch_pid=
	[ "$holds" = 0 ] || watch_start
	zdm_bg "$name" "$@"
	while kill -0 "$zdm_pid" 2>/dev/null; do
		if [ -z "${at_traffic_pid[new]:-}" ] && phase_done $db expand 2>/dev/null; then
			traffic_start $db new new
		fi
		if [ -n "$watch_pid" ] && kill_due 2>/dev/null; then
			if kill -9 "$zdm_pid" 2>/dev/null; then
				wait "$zdm_pid" 2>/dev/null || true
				killed=1
				say "zdm apply ($name) killed with SIGKILL at the kill point"
				sed 's/^/    | /' "$work/$name.out"
			fi
			break
		fi
		sleep 0.01
	done
	if [ "$holds" = 1 ]; then
		[ -z "$watch_pid" ] || watch_stop
		if [ "$killed" = 1 ]; then
			at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
			val $db "SELECT step_id || ' ' || state FROM zdm.steps
			  WHERE migration = '$migration' AND state <> 'pending'
			  ORDER BY position" | sed 's/^/    journal: /'
		else
			say "zdm apply ($name) had ended before the kill point: nothing killed"
			sed "s/^/    watcher: /" "$work/watch.log"
		fi
	fi
}

traffic_start $db old old
sleep 1

say "zdm apply (to the first gate that needs approval)"
watch_run run1 "$([ "$kill_run" = 1 ] && echo 1 || echo 0)" \
	apply "$plan" --db "dbname=$db" --batch-size 100 --pause 20ms
if [ "$killed" = 1 ]; then
	say "zdm apply again (it resumes, to the gate)"
	apply_to_gate $db run1b "$plan" --batch-size 100 --pause 20ms
	expect_grep "resumed run" "$work/run1b.out" '^migration .*: resuming'
else
	zdm_wait "$zdm_pid" run1 4
	expect_grep "first run" "$work/run1.out" '^zdm: paused at gate "(switch|contract)"'
	[ -n "${at_traffic_pid[new]:-}" ] || traffic_start $db new new
fi
sleep 1
traffic_stop old

say "zdm apply --approve-all (the rest)"
watch_run run2 "$([ "$kill_run" = 2 ] && [ "$killed" = 0 ] && echo 1 || echo 0)" \
	apply "$plan" --db "dbname=$db" --approve-all
if [ "$kill_run" = 2 ] && [ "$killed" = 1 ]; then
	# The watcher takes its lock a moment after it sees the step start: a
	# last step that is quick can commit the migration's end in that
	# moment, and the kill then lands on a journal write after the end
	# (the run's closing bookkeeping).  Nothing is left to resume; the
	# journal, not the output, says which case this is.
	state_at_kill=$(val $db "SELECT state FROM zdm.migrations WHERE migration = '$migration'")
	say "zdm apply --approve-all again (it resumes, to done)"
	zdm_run run2b 0 apply "$plan" --db "dbname=$db" --approve-all
	if [ "$state_at_kill" = done ]; then
		expect_grep "run after the end" "$work/run2b.out" 'already done'
		say "the kill landed after the migration's end was committed: nothing to resume"
	else
		expect_grep "resumed run" "$work/run2b.out" '^migration .*: resuming'
		expect_grep "resumed run" "$work/run2b.out" '^migration .*: done$'
	fi
else
	zdm_wait "$zdm_pid" run2 0
	expect_grep "last run" "$work/run2.out" '^migration .*: done$'
fi
sleep 2
traffic_stop new

check_done $db
zdm_run run3 0 apply "$plan" --db "dbname=$db"
expect_grep "third run" "$work/run3.out" 'already done'
if [ "$killed" = 1 ]; then
	say "killed after $kill_step started ($kill_mode), resumed, done (seed $seed)"
else
	say "the kill point after $kill_step ($kill_mode) came after its run ended (seed $seed): no kill"
fi
at_done
