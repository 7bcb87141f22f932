#!/usr/bin/env bash
#
# apply_partial.sh -- a rollback stopped halfway by a lock, then finished,
# or followed by `zdm apply` as the runbook's exit-3 advice says.
#
#   tests/runtime/apply_partial.sh [EXAMPLE]
#
# EXAMPLE defaults to users_and_orders: two tables, each expanded in its own
# transaction, so that a rollback can undo one table and stop at the other.
# The test compiles a bench-only copy with lock_retries = 2.
#   1. `zdm apply` stops at the switch gate; a session holds ACCESS SHARE on
#      the first table; `zdm rollback` undoes the later table's steps, runs
#      out of lock retries on the first: exit 3, SQLSTATE 55P03 on stderr;
#      `zdm status --json` says stopped with 55P03 (as for apply, docs:
#      exit 3 is "stopped safely").  The lock is released.
#   2. A copy of that database is taken (CREATE DATABASE ... TEMPLATE).
#   3. On the original, `zdm rollback` again finishes: exit 0, schema and
#      data as before the migration.
#   4. On the copy, `zdm apply --approve-all` (runbook, "Lock retries
#      exhausted (exit 3)": "then zdm apply again") must finish the
#      migration correctly: exit 0, final columns, no zdm object left.
set -euo pipefail

me=apply_partial.sh
example=${1:-users_and_orders}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
plan=$(at_variant "${example}_retries2" 's/^( *with \()/\1lock_retries = 2, /')
first=$(sed -n 's/^- table: //p' "$plan" | head -n 1)
[ "$(sed -n 's/^- table: //p' "$plan" | wc -l)" -ge 2 ] ||
	die "$example changes one table: a rollback cannot stop between tables"
db=partial
fresh_db $db
at_dump $db "$work/before"

say "rollback against a lock on $first"
zdm_run apply1 4 apply "$plan" --db "dbname=$db"
blocker_start $db "LOCK TABLE $first IN ACCESS SHARE MODE"
zdm_run rollback1 3 rollback "$plan" --db "dbname=$db"
expect_grep "stopped rollback" "$work/rollback1.err" 'SQLSTATE 55P03'
expect "some steps undone, some not" \
	"$(val $db "SELECT count(*) FILTER (WHERE state = 'compensated') > 0 AND count(*) FILTER (WHERE state = 'done') > 0 FROM zdm.steps")" t
state=$(status_json $db 'd["state"]')
[ "$state" = stopped ] ||
	fail_later "status after a rollback stopped by lock retries (exit 3): state '$state', expected 'stopped'"
expect "status sqlstate" "$(status_json $db 'd["last_error"]["sqlstate"]')" 55P03
blocker_stop $db
at_wait_for "no session on $db" 20 sql_true postgres \
	"SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE datname = '$db')"
q -c "CREATE DATABASE partial_copy TEMPLATE $db"

say "rollback again finishes"
zdm_run rollback2 0 rollback "$plan" --db "dbname=$db"
at_dump $db "$work/after"
same_schema "$work/before" "$work/after" "rollback finished after a stop"
same_data "$work/before" "$work/after" "rollback finished after a stop"

say "or: apply again (the runbook's advice for exit 3)"
rc=0
timeout -s KILL "$ZDM_TIMEOUT" "$ZDM" apply "$plan" --db "dbname=partial_copy" --approve-all \
	>"$work/apply2.out" 2>"$work/apply2.err" || rc=$?
sed 's/^/    | /' "$work/apply2.out"
sed 's/^/    ! /' "$work/apply2.err"
if [ "$rc" != 0 ]; then
	fail_later "zdm apply after a rollback stopped halfway exited $rc, expected 0 ($(head -n 1 "$work/apply2.err"))"
else
	check_columns partial_copy
	check_no_leftovers partial_copy
fi
at_done
