#!/usr/bin/env bash
#
# apply_check_using.sh -- add constraint ... check (...) using (...) when the
# mapping or the sync mode cannot keep its promise, with `zdm apply` and
# `zdm rollback` as an operator runs them (the happy path, under traffic, is
# apply_e2e_add_check_using and friends).  One fresh copy of the
# add_check_using fixture (orders with negative amounts) per case:
#
#   bad_mapping  a using that leaves negative amounts negative: the run
#                stops after expand (exit 3), before the backfill would fail
#                on such a row, naming rows with their old and mapped
#                values; an old-version write the mapping cannot fix is
#                refused by the constraint; `zdm rollback` gives back the
#                exact schema and data.
#   cdc_nulls    sync = cdc and a check that is false when the mapped
#                columns are NULL (what an old-version write leaves there
#                until zdm sync maps it): the expand stops (exit 1,
#                SQLSTATE 23514, the reason), its transaction leaves nothing
#                behind, and `zdm rollback` gives back the exact schema.
set -euo pipefail

me=apply_check_using.sh
example=add_check_using
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

# ---- bad_mapping ----------------------------------------------------------------
say "case bad_mapping: using (amount = amount, ...) maps nothing"
db=c_bad
fresh_db $db
at_dump $db "$work/bad.before"
plan_bad=$(at_variant bad_mapping 's/greatest\(amount, 0\)/amount/')
zdm_run bad1 3 apply "$plan_bad" --db "dbname=$db" --approve-all
expect_grep "bad_mapping: stopped after expand" "$work/bad1.err" \
	'^zdm: error: step expand\.[0-9]+: verification failed'
expect_grep "bad_mapping: the examples" "$work/bad1.err" \
	'examples \(ctid, amount, note, mapped_amount, mapped_note\): \([0-9]+,[0-9]+\), -[0-9]+, [^,]*, -[0-9]+, '
expect "bad_mapping: nothing backfilled" \
	"$(val $db "SELECT count(*) FROM public.orders WHERE NOT zdm_sync_pending")" 0
got=$(psql -X -q -d $db -v VERBOSITY=sqlstate \
	-c "INSERT INTO orders (user_id, amount, note) VALUES (1, -5, 'x')" 2>&1 >/dev/null || true)
[[ $got == *23514* ]] || die "bad_mapping: an old-version write using cannot fix was not refused: '$got'"
zdm_run bad2 0 rollback "$plan_bad" --db "dbname=$db"
at_dump $db "$work/bad.after"
same_schema "$work/bad.before" "$work/bad.after" "bad_mapping: rollback"
same_data "$work/bad.before" "$work/bad.after" "bad_mapping: rollback"

# ---- cdc_nulls ------------------------------------------------------------------
say "case cdc_nulls: sync = cdc and a check that refuses NULL notes"
db=c_cdc
fresh_db $db
at_dump $db "$work/cdc.before"
plan_cdc=$(at_variant cdc_nulls \
	"s/approve = \\(switch, contract\\)/approve = (switch, contract), sync = cdc, key = (id)/; s/note <> ''/note IS NOT NULL/")
zdm_run cdc1 1 apply "$plan_cdc" --db "dbname=$db" --approve-all
expect_grep "cdc_nulls: the SQLSTATE" "$work/cdc1.err" 'SQLSTATE 23514'
expect_grep "cdc_nulls: the reason" "$work/cdc1.err" \
	'check orders_amount_note is false when amount, note are NULL, which an old-version write leaves there until zdm sync has mapped it'
expect "cdc_nulls: no constraint" \
	"$(val $db "SELECT count(*) FROM pg_catalog.pg_constraint WHERE conname = 'orders_amount_note'")" 0
expect "cdc_nulls: no new column" \
	"$(val $db "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = 'public.orders'::pg_catalog.regclass AND attname ~ '^zdm_'")" 0
zdm_run cdc2 0 rollback "$plan_cdc" --db "dbname=$db"
at_dump $db "$work/cdc.after"
same_schema "$work/cdc.before" "$work/cdc.after" "cdc_nulls: rollback"
same_data "$work/cdc.before" "$work/cdc.after" "cdc_nulls: rollback"
at_done
