#!/usr/bin/env bash
#
# apply_tables.sh -- create table (plans/create_table.zdm: audit_log, with a
# foreign key to users, and an index on it) and drop table
# (plans/drop_table.zdm: user_sessions) against what the database already
# holds, a rollback that would lose rows, and what each version sees.  The
# traffic, rollback and random-kill matrix is the generated tests'
# (apply_e2e_create_table, apply_e2e_drop_table, ...).  Each case on a
# fresh copy of the fixture:
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
#   hidden    drop table at its switch gate: the old version still reads and
#             writes user_sessions; the new version's reads of it find no
#             row and its writes fail (42703); contract drops it.
#   depended  a foreign key of another table and a view on user_sessions:
#             preflight refuses, naming both, and nothing is created.
set -euo pipefail

me=apply_tables.sh
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

# the drop_table example, on its own fixture (a template of its own)
q -c 'CREATE DATABASE zdm_fixture_drop'
PGOPTIONS="-c client_min_messages=warning" \
	q -d zdm_fixture_drop -f "$fixtures/drop_table.sql" >/dev/null
fresh_drop_db()
{
	q -c "CREATE DATABASE $1 TEMPLATE zdm_fixture_drop"
}
drop_plan=$(at_compile "$root/plans/drop_table.zdm" drop_table)
drop_path=$(at_plan_get "$drop_plan" new_version.search_path)

say "hidden: the new version no longer sees user_sessions"
db=dt_hidden
fresh_drop_db $db
zdm_run hidden1 4 apply "$drop_plan" --db "dbname=$db"
expect "hidden: the old version reads it" \
	"$(val $db "SELECT count(*) > 0 FROM user_sessions")" t
q -d $db -c "INSERT INTO user_sessions (user_id, token) VALUES (7, 'old-after-expand')"
expect "hidden: the new version's read finds no row" \
	"$(PGOPTIONS="-c search_path=${drop_path// /}" val $db "SELECT count(*) FROM user_sessions")" 0
got=$(PGOPTIONS="-c search_path=${drop_path// /}" psql -X -q -d $db -v VERBOSITY=sqlstate \
	-c "INSERT INTO user_sessions (user_id, token) VALUES (7, 'new')" 2>&1 >/dev/null || true)
[[ $got == *42703* ]] || die "hidden: a new-version write to user_sessions was not refused with 42703: '$got'"
zdm_run hidden2 0 apply "$drop_plan" --db "dbname=$db" --approve-all
expect "hidden: dropped at contract" \
	"$(val $db "SELECT pg_catalog.to_regclass('public.user_sessions') IS NULL")" t

say "depended: a foreign key and a view on user_sessions"
db=dt_depended
fresh_drop_db $db
q -d $db -c "CREATE TABLE public.session_events (id bigint PRIMARY KEY,
               session_id bigint REFERENCES public.user_sessions (id))" \
	-c "CREATE VIEW public.active_sessions AS SELECT * FROM public.user_sessions"
at_dump $db "$work/depended.before"
zdm_run depended 2 apply "$drop_plan" --db "dbname=$db" --approve-all
expect_grep depended "$work/depended.err" \
	'^zdm: preflight: public\.user_sessions: foreign key session_events_session_id_fkey of table session_events depends on it'
expect_grep depended "$work/depended.err" \
	'^zdm: preflight: public\.user_sessions: view active_sessions depends on it'
at_dump $db "$work/depended.after"
same_schema "$work/depended.before" "$work/depended.after" "refused by preflight"
at_done
