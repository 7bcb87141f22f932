#!/usr/bin/env bash
#
# apply_create_table.sh -- create table (plans/create_table.zdm: audit_log,
# with a foreign key to users, and an index on it) against what the
# database already holds and against a rollback that would lose rows.  The
# traffic, rollback and random-kill matrix is the generated tests'
# (apply_e2e_create_table, ...).  Each case on a fresh copy of the fixture:
#
#   taken     a table audit_log exists already: preflight refuses, naming
#             it, and nothing is created.
#   rows      the migration at its switch gate, and a row written into
#             audit_log by the new version (through its view): zdm
#             rollback stops (exit 1) naming the table and SQLSTATE 55000,
#             with the hint to use --discard-new-rows, and the table and
#             its row are still there; zdm rollback --discard-new-rows
#             drops them: the schema as before the migration.
#   usage     --discard-new-rows is refused on anything but rollback.
set -euo pipefail

me=apply_create_table.sh
example=create_table
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

say "taken: audit_log exists already"
db=ct_taken
fresh_db $db
q -d $db -c "CREATE TABLE public.audit_log (id bigint)"
at_dump $db "$work/taken.before"
zdm_run taken 2 apply "$plan" --db "dbname=$db" --approve-all
expect_grep taken "$work/taken.err" \
	'^zdm: preflight: public\.audit_log: already exists \(a relation or a type of that name\), and the plan creates it$'
at_dump $db "$work/taken.after"
same_schema "$work/taken.before" "$work/taken.after" "refused by preflight"

say "rows: a rollback that would drop the new version's rows stops"
db=ct_rows
fresh_db $db
at_dump $db "$work/rows.before"
zdm_run rows1 4 apply "$plan" --db "dbname=$db"
search_path=$(at_plan_get "$plan" new_version.search_path)
PGOPTIONS="-c search_path=${search_path// /}" q -d $db \
	-c "INSERT INTO audit_log (user_id, action) VALUES (7, 'signed in')"
zdm_run rows2 1 rollback "$plan" --db "dbname=$db"
expect_grep rows2 "$work/rows2.err" 'table public\.audit_log holds rows written since expand; rollback would drop them.*55000'
expect_grep rows2 "$work/rows2.err" 'zdm rollback --discard-new-rows'
expect "rows: the row is kept" "$(val $db "SELECT action FROM public.audit_log")" "signed in"
zdm_run rows3 0 rollback "$plan" --db "dbname=$db" --discard-new-rows
expect "rows: the table is gone" "$(val $db "SELECT pg_catalog.to_regclass('public.audit_log') IS NULL")" t
expect "rows: the migration" "$(val $db "SELECT state FROM zdm.migrations")" rolled_back
at_dump $db "$work/rows.after"
same_schema "$work/rows.before" "$work/rows.after" "rollback --discard-new-rows"

say "usage: --discard-new-rows is rollback's"
zdm_run usage 2 apply "$plan" --db "dbname=$db" --discard-new-rows
expect_grep usage "$work/usage.err" 'discard-new-rows is an option of zdm rollback'
at_done
