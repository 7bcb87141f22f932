#!/usr/bin/env bash
#
# apply_create_index.sh -- create index (plans/create_index.zdm: a partial
# expression index and a plain one built after expand, a unique one at
# verify) against what the database already holds and against a kill.  The
# operation's traffic, rollback and random-kill matrix is the generated
# tests' (apply_e2e_create_index, ...); these are its own cases, each on a
# fresh copy of the users fixture:
#
#   taken     an index named users_email_uidx already exists: preflight
#             refuses, naming it, and nothing is created (no index, no
#             version schema, the schema as before).
#   dups      two users share an email: the plain indexes are built, the
#             unique build fails on the duplicate, no INVALID index is left,
#             and the run stops at verify (exit 3) with the duplicated email
#             and its count; rollback gives the schema and the rows back;
#             with the duplicate gone the same plan runs to done.
#   kill      a variant with lock_timeout = '30s'; a session holds ROW
#             EXCLUSIVE on users, so the first build waits for it with its
#             INVALID index already in the catalog; zdm is killed with
#             SIGKILL and its backend terminated.  The resumed run drops
#             the INVALID index, builds it again and runs to done: every
#             index valid, none INVALID.
set -euo pipefail

me=apply_create_index.sh
example=create_index
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

# index_state DB NAME: none | valid | invalid
index_state()
{
	val "$1" "SELECT coalesce((SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'invalid' END
	  FROM pg_catalog.pg_index i
	  WHERE i.indexrelid = pg_catalog.to_regclass('public.$2')), 'none')"
}

invalid_indexes()
{
	val "$1" "SELECT count(*) FROM pg_catalog.pg_index WHERE NOT indisvalid"
}

say "taken: the unique index's name is taken"
db=ci_taken
fresh_db $db
q -d $db -c "CREATE INDEX users_email_uidx ON public.users (name)"
at_dump $db "$work/taken.before"
zdm_run taken 2 apply "$plan" --db "dbname=$db" --approve-all
expect_grep taken "$work/taken.err" 'users_email_uidx'
at_dump $db "$work/taken.after"
same_schema "$work/taken.before" "$work/taken.after" "refused by preflight"
expect "taken: the other indexes" "$(index_state $db users_lower_idx)" none

say "dups: two users share an email"
db=ci_dups
fresh_db $db
q -d $db -c "UPDATE public.users SET email = 'user3002@example.com' WHERE id = 3001"
at_dump $db "$work/dups.before"
zdm_run dups1 3 apply "$plan" --db "dbname=$db" --approve-all
expect_grep dups1 "$work/dups1.err" '^zdm: error: step verify\.1: verification failed: no two rows of public\.users have the same \(email\)'
expect_grep dups1 "$work/dups1.err" '^DETAIL: 1 rows \(expected 0\); examples \(email, rows\): user3002@example\.com, 2$'
expect_grep dups1 "$work/dups1.err" '\(SQLSTATE 23505\)'
expect "dups: the unique index" "$(index_state $db users_email_uidx)" none
expect "dups: the plain index" "$(index_state $db users_lower_idx)" valid
expect "dups: no INVALID index" "$(invalid_indexes $db)" 0
expect "dups: the journal" "$(val $db "SELECT state FROM zdm.migrations")" stopped
zdm_run dups.rollback 0 rollback "$plan" --db "dbname=$db"
at_dump $db "$work/dups.after"
same_schema "$work/dups.before" "$work/dups.after" "rollback after the duplicate stopped verify"
same_data "$work/dups.before" "$work/dups.after" "rollback after the duplicate stopped verify"
q -d $db -c "UPDATE public.users SET email = NULL WHERE id = 3001"
zdm_run dups2 0 apply "$plan" --db "dbname=$db" --approve-all
expect "dups: the unique index at last" "$(index_state $db users_email_uidx)" valid
check_no_leftovers $db

say "kill: SIGKILL during a build, then resume"
db=ci_kill
fresh_db $db
slow=$(at_variant "${example}_slow_lock" "s/^( *with \\()/\\1lock_timeout = '30s', /")
blocker_start $db "LOCK TABLE public.users IN ROW EXCLUSIVE MODE"
zdm_bg kill1 apply "$slow" --db "dbname=$db" --approve-all
at_wait_for "the build waiting for the blocker" 30 sql_true $db \
	"SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
	  WHERE datname = '$db' AND application_name LIKE 'zdm %'
	    AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock')"
kill -9 "$zdm_pid"
wait "$zdm_pid" 2>/dev/null || true
val $db "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
  WHERE datname = '$db' AND application_name LIKE 'zdm %'" >/dev/null
at_wait_for "the killed zdm's sessions to end" 30 no_session $db 'zdm %'
expect "kill: the index after the kill" "$(index_state $db users_lower_idx)" invalid
blocker_stop $db
zdm_run kill2 0 apply "$slow" --db "dbname=$db" --approve-all
expect_grep kill2 "$work/kill2.out" 'resuming'
expect_grep kill2 "$work/kill2.out" 'dropping INVALID index public\.users_lower_idx'
for index in users_lower_idx users_email_uidx users_updated_at_idx; do
	expect "kill: $index" "$(index_state $db $index)" valid
done
expect "kill: no INVALID index" "$(invalid_indexes $db)" 0
check_no_leftovers $db
at_done
