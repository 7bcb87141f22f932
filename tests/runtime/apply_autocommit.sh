#!/usr/bin/env bash
#
# apply_autocommit.sh -- steps of kind autocommit (statements PostgreSQL will
# not run in a transaction block) against a real PostgreSQL: hand-written
# plans of one step each, so that every path of the executor is reached
# directly (zdmc writes such steps for create index, add constraint ...
# unique and drop not null; their own tests cover them compiled), each with
# its plan_sha256 computed as docs/plan-format.md says (sha256 of every byte
# before the plan_sha256 line).  One database per case:
#
#   build     CREATE UNIQUE INDEX CONCURRENTLY while a session holds ROW
#             EXCLUSIVE on the table: the build times out waiting for it
#             (lock_timeout), which leaves an INVALID index; zdm drops it and
#             retries; once the session is gone the step ends done and the
#             index is valid.  Then rollback runs the step's DROP INDEX
#             CONCURRENTLY (which fails in a transaction block): the index
#             is gone, the migration rolled_back.
#   dups      the same on a table with a duplicate key: exit 1, the SQLSTATE
#             (23505) and the index named, the step failed in the journal,
#             and no INVALID index left behind.  With the duplicate gone,
#             zdm apply again finishes.
#   diagnose  the dups plan with a diagnose (a count of duplicated codes
#             and examples): exit 3 as a failed check, the count, the
#             examples and the build's SQLSTATE; no INVALID index left; the
#             migration stopped.  With a diagnose that cannot count (a
#             table that does not exist): the build's own error, exit 1,
#             its DETAIL followed by why there is no count.
#   kill      a long lock_timeout; the build waits for a session's open
#             transaction; zdm is killed with SIGKILL and its backend
#             terminated (the host died): the INVALID index stays.  The
#             resumed run says "resuming", drops it and builds it again;
#             the step ends done with two attempts.
#   killrollback  the same kill, then zdm rollback: the INVALID index of
#             the unfinished step is dropped, the migration rolled_back.
#   killdone  the same kill, but the build's backend lives on and finishes
#             once the blocking transaction ends: the resumed run finds the
#             index valid and marks the step done without building again.
#   enum      ALTER TYPE ... ADD VALUE as an autocommit step: the value is
#             there after apply.
set -euo pipefail

me=apply_autocommit.sh
example=autocommit
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"

[ -x "$ZDM" ] || { echo "$me: $ZDM is not built" >&2; exit 2; }
work=$(mktemp -d)
zdm_on_exit "rm -rf '$work'"
zdm_on_exit at_cleanup
assert_t0=$SECONDS
pg_start || die "the server did not start"
say "server on port $PGPORT"

# make_plan NAME MIGRATION LOCK-TIMEOUT STEP-YAML: $work/NAME.plan, a
# version 3 plan with one expand phase holding STEP-YAML (the step's keys,
# indented as a list item of steps), its checksum last.
make_plan()
{
	local name=$1 migration=$2 lock_timeout=$3 steps=$4
	cat >"$work/$name.body" <<EOF
zdm_plan: 3
compiler: hand-written by tests/runtime/apply_autocommit.sh
migration: $migration
source:
  file: $migration.zdm
  sha256: 0000000000000000000000000000000000000000000000000000000000000000
requires:
  server_version_num: 150000
options:
  batch_size: 10000
  batch_pause: 0ms
  lock_timeout: $lock_timeout
  lock_retries: 20
  approve: []
  sync: trigger
  verify_sample: 10000
new_version:
  schema: public_$migration
  search_path: public_$migration, public
tables:
- table: public.items
  changes: []
phases:
- phase: expand
  steps:
$steps
EOF
	{
		cat "$work/$name.body"
		echo "plan_sha256: $(sha256sum "$work/$name.body" | cut -d' ' -f1)"
	} >"$work/$name.plan"
	echo "$work/$name.plan"
}

# index_plan NAME LOCK-TIMEOUT: the unique index on items (code).
index_plan()
{
	make_plan "$1" ac_index "$2" "  - id: expand.1
    kind: autocommit
    description: build index items_code_key without blocking writes
    table: public.items
    transaction: expand.1
    lock_timeout: $2
    index: public.items_code_key
    sql: CREATE UNIQUE INDEX CONCURRENTLY items_code_key ON public.items (code)
    compensation: DROP INDEX CONCURRENTLY public.items_code_key"
}

# items_db DB: a fresh database with items (id, code), 20000 rows.
items_db()
{
	q -c "CREATE DATABASE $1"
	q -d "$1" -c "CREATE TABLE public.items (id bigint PRIMARY KEY, code text NOT NULL);
	  INSERT INTO public.items SELECT g, 'c' || g FROM pg_catalog.generate_series(1, 20000) g;"
}

# index_state DB: none | valid | invalid, for public.items_code_key.
index_state()
{
	val "$1" "SELECT coalesce((SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'invalid' END
	  FROM pg_catalog.pg_index i
	  WHERE i.indexrelid = pg_catalog.to_regclass('public.items_code_key')), 'none')"
}

step_state()
{
	val "$1" "SELECT state || ' ' || attempts || ' ' || coalesce(sqlstate, '-')
	  FROM zdm.steps WHERE migration = '$2' AND step_id = '$3'"
}

# The zdm backend waits on a lock (its build is blocked).
zdm_build_waiting()
{
	sql_true "$1" "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
	  WHERE datname = '$1' AND application_name LIKE 'zdm %'
	    AND query LIKE 'CREATE UNIQUE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock')"
}

retries()
{
	grep -c 'retry [0-9]* of' "$work/$1.out" || true
}

# ---- build: lock timeouts retried, INVALID index dropped each time ----------------
db=ac_build
items_db $db
plan=$(index_plan build 300ms)
blocker_start $db "LOCK TABLE public.items IN ROW EXCLUSIVE MODE"
zdm_bg build apply "$plan" --db "dbname=$db"
at_wait_for "two lock retries of the build" 40 eval '[ "$(retries build)" -ge 2 ]'
blocker_stop $db
zdm_wait "$zdm_pid" build 0
expect_grep "build" "$work/build.out" '^  expand\.1 .*canceling statement due to lock timeout; retry 1 of 20'
expect_grep "build" "$work/build.out" 'dropping INVALID index public\.items_code_key'
expect_grep "build" "$work/build.out" 'done in [0-9]+ ms \(outside a transaction\)'
expect "build: index" "$(index_state $db)" valid
expect "build: step" "$(step_state $db ac_index expand.1)" "done $(($(retries build) + 1)) -"
expect "build: migration" "$(val $db "SELECT state FROM zdm.migrations")" done
expect "build: invalid_index_dropped events" \
	"$(val $db "SELECT count(*) >= 1 FROM zdm.events WHERE event = 'invalid_index_dropped'")" t

# rollback of the done step: its compensation, outside a transaction
zdm_run build_rollback 0 rollback "$plan" --db "dbname=$db"
expect_grep "rollback" "$work/build_rollback.out" '^  expand\.1 +undone$'
expect "rollback: index" "$(index_state $db)" none
expect "rollback: step" "$(step_state $db ac_index expand.1 | cut -d' ' -f1)" compensated
expect "rollback: migration" "$(val $db "SELECT state FROM zdm.migrations")" rolled_back

# ---- dups: the build fails, nothing left behind -----------------------------------
db=ac_dups
items_db $db
q -d $db -c "UPDATE public.items SET code = 'c1' WHERE id = 2"
plan=$(index_plan dups 500ms)
zdm_run dups 1 apply "$plan" --db "dbname=$db"
expect_grep "dups" "$work/dups.err" '^zdm: error: .*expand\.1.*could not create unique index "items_code_key".*SQLSTATE 23505'
expect_grep "dups" "$work/dups.err" 'Key \(code\)=\(c1\) is duplicated'
expect_grep "dups" "$work/dups.out" 'dropping INVALID index public\.items_code_key'
expect "dups: index left behind" "$(index_state $db)" none
expect "dups: step" "$(step_state $db ac_index expand.1)" "failed 1 23505"
expect "dups: migration" "$(val $db "SELECT state || ' ' || last_sqlstate FROM zdm.migrations")" "failed 23505"
q -d $db -c "UPDATE public.items SET code = 'c2' WHERE id = 2"
zdm_run dups2 0 apply "$plan" --db "dbname=$db"
expect_grep "dups, again" "$work/dups2.out" '^migration ac_index: resuming \(was failed\)'
expect "dups, again: index" "$(index_state $db)" valid

# ---- diagnose: the failed build's count says why -----------------------------------
# diagnose_plan NAME SQL: index_plan's step with a diagnose counting SQL.
diagnose_plan()
{
	make_plan "$1" ac_diagnose 500ms "  - id: expand.1
    kind: autocommit
    description: build index items_code_key without blocking writes
    table: public.items
    transaction: expand.1
    lock_timeout: 500ms
    index: public.items_code_key
    sql: CREATE UNIQUE INDEX CONCURRENTLY items_code_key ON public.items (code)
    compensation: DROP INDEX CONCURRENTLY public.items_code_key
    diagnose:
      description: no two items have the same code
      sql: $2
      expect: 0
      examples: SELECT code, count(*) AS rows FROM public.items GROUP BY code HAVING count(*) > 1 LIMIT 5"
}
db=ac_diagnose
items_db $db
q -d $db -c "UPDATE public.items SET code = 'c1' WHERE id IN (2, 3)"
plan=$(diagnose_plan diagnose "SELECT count(*) FROM (SELECT FROM public.items GROUP BY code HAVING count(*) > 1) AS d")
zdm_run diagnose 3 apply "$plan" --db "dbname=$db"
expect_grep "diagnose" "$work/diagnose.err" '^zdm: error: step expand\.1: verification failed: no two items have the same code$'
expect_grep "diagnose" "$work/diagnose.err" '^DETAIL: 1 rows \(expected 0\); examples \(code, rows\): c1, 3$'
expect_grep "diagnose" "$work/diagnose.err" '^HINT: the step.s statement failed: could not create unique index "items_code_key" \(SQLSTATE 23505\); the migration is stopped'
expect "diagnose: index left behind" "$(index_state $db)" none
expect "diagnose: step" "$(step_state $db ac_diagnose expand.1 | cut -d' ' -f1,2)" "failed 1"
expect "diagnose: migration" "$(val $db "SELECT state FROM zdm.migrations")" stopped
expect "diagnose: check_failed event" \
	"$(val $db "SELECT count(*) FROM zdm.events WHERE event = 'check_failed' AND step_id = 'expand.1'")" 1

# a diagnose that cannot count: the build's own error, and why no count
db=ac_diagnose_broken
items_db $db
q -d $db -c "UPDATE public.items SET code = 'c1' WHERE id = 2"
plan=$(diagnose_plan diagnose_broken "SELECT count(*) FROM public.no_such_table")
zdm_run diagnose_broken 1 apply "$plan" --db "dbname=$db"
expect_grep "diagnose_broken" "$work/diagnose_broken.err" '^zdm: error: step expand\.1: could not create unique index "items_code_key" \(SQLSTATE 23505\)$'
expect_grep "diagnose_broken" "$work/diagnose_broken.err" \
	'^DETAIL: Key \(code\)=\(c1\) is duplicated\.; its diagnose could not count: relation "public\.no_such_table" does not exist$'
expect "diagnose_broken: index left behind" "$(index_state $db)" none
expect "diagnose_broken: migration" "$(val $db "SELECT state || ' ' || last_sqlstate FROM zdm.migrations")" "failed 23505"

# ---- kill: SIGKILL during the build, the backend gone too --------------------------
db=ac_kill
items_db $db
plan=$(index_plan kill 30000ms)
blocker_start $db "LOCK TABLE public.items IN ROW EXCLUSIVE MODE"
zdm_bg kill1 apply "$plan" --db "dbname=$db"
at_wait_for "the build waiting for the blocker" 30 zdm_build_waiting $db
kill -9 "$zdm_pid"
wait "$zdm_pid" 2>/dev/null || true
say "zdm apply (kill1) killed with SIGKILL during the build"
val $db "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
  WHERE datname = '$db' AND application_name LIKE 'zdm %'" >/dev/null
at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
expect "kill: index after the kill" "$(index_state $db)" invalid
expect "kill: step after the kill" "$(step_state $db ac_index expand.1)" "running 1 -"
blocker_stop $db
zdm_run kill2 0 apply "$plan" --db "dbname=$db"
expect_grep "kill, resumed" "$work/kill2.out" '^migration ac_index: resuming \(was running\)'
expect_grep "kill, resumed" "$work/kill2.out" 'dropping INVALID index public\.items_code_key'
expect "kill: index" "$(index_state $db)" valid
expect "kill: step" "$(step_state $db ac_index expand.1)" "done 2 -"

# ---- killrollback: SIGKILL during the build, then rollback ------------------------
db=ac_killrollback
items_db $db
plan=$(index_plan killrollback 30000ms)
blocker_start $db "LOCK TABLE public.items IN ROW EXCLUSIVE MODE"
zdm_bg killrollback1 apply "$plan" --db "dbname=$db"
at_wait_for "the build waiting for the blocker" 30 zdm_build_waiting $db
kill -9 "$zdm_pid"
wait "$zdm_pid" 2>/dev/null || true
val $db "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
  WHERE datname = '$db' AND application_name LIKE 'zdm %'" >/dev/null
at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
blocker_stop $db
expect "killrollback: index after the kill" "$(index_state $db)" invalid
zdm_run killrollback2 0 rollback "$plan" --db "dbname=$db"
expect_grep "killrollback" "$work/killrollback2.out" 'dropping INVALID index public\.items_code_key'
expect "killrollback: index" "$(index_state $db)" none
expect "killrollback: migration" "$(val $db "SELECT state FROM zdm.migrations")" rolled_back

# ---- killdone: SIGKILL, but the build finishes on its own -------------------------
db=ac_killdone
items_db $db
plan=$(index_plan killdone 30000ms)
blocker_start $db "LOCK TABLE public.items IN ROW EXCLUSIVE MODE"
zdm_bg killdone1 apply "$plan" --db "dbname=$db"
at_wait_for "the build waiting for the blocker" 30 zdm_build_waiting $db
kill -9 "$zdm_pid"
wait "$zdm_pid" 2>/dev/null || true
say "zdm apply (killdone1) killed with SIGKILL during the build"
blocker_stop $db
# the orphaned backend finishes its build, then notices its client left
at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
expect "killdone: index after the kill" "$(index_state $db)" valid
zdm_run killdone2 0 apply "$plan" --db "dbname=$db"
expect_grep "killdone, resumed" "$work/killdone2.out" 'found built and valid by an earlier attempt'
expect "killdone: step" "$(step_state $db ac_index expand.1)" "done 1 -"

# ---- enum: ALTER TYPE ... ADD VALUE ------------------------------------------------
db=ac_enum
items_db $db
q -d $db -c "CREATE TYPE public.mood AS ENUM ('sad', 'ok')"
plan=$(make_plan enum ac_enum 500ms "  - id: expand.1
    kind: autocommit
    description: add value happy to type public.mood
    transaction: expand.1
    lock_timeout: 500ms
    sql: ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'happy'
    compensation: null")
zdm_run enum 0 apply "$plan" --db "dbname=$db"
expect "enum: values" "$(val $db "SELECT pg_catalog.string_agg(enumlabel, ',' ORDER BY enumsortorder)
  FROM pg_catalog.pg_enum WHERE enumtypid = 'public.mood'::pg_catalog.regtype")" sad,ok,happy
expect "enum: step" "$(step_state $db ac_enum expand.1)" "done 1 -"

at_done
