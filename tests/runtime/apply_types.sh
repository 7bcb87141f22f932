#!/usr/bin/env bash
#
# apply_types.sh -- the statements on no table that name a type or an
# index (create type ... as enum, alter type add value / rename value,
# drop index) against what the database already holds, and what rollback
# can and cannot undo.  The traffic, rollback and random-kill matrix of
# plans/order_status_enum.zdm and plans/drop_index.zdm is the generated
# tests'.  Each case on a fresh copy of the orders fixture (status text):
#
#   taken      the type order_status exists already: preflight refuses,
#              naming it, and nothing is created.
#   unfit      a row's status fits no label: verify stops (exit 3) naming
#              the row's key; rollback gives back the schema; once the row
#              is fixed, the migration reaches done.
#   labels     plans/order_status_labels.zdm (add value after a label, then
#              rename value) on the type the first migration made:
#              preflight refuses a label that is there, one placed by a
#              label that is not, and a rename of a label that is not; the
#              migration at its switch gate, both versions' clients
#              writing statuses all along with none failing, has the new
#              label and not the rename (contract's); rollback is refused
#              (add value is a point of no return); at done the labels are
#              in the order asked.
#   index      drop index: preflight refuses an index that does not exist
#              and one a constraint depends on; the index stays until
#              contract, and rollback before it keeps it.
#   sqlonly    a migration of sql (...) alone, with its reverse: applied to
#              its switch gate, rolled back, then applied to done.
#   default    a type change keeps the column's default, cast to the new
#              type (status's 'pending', checked by the example's fixture):
#              preflight refuses one the new type cannot take
#              (created_at's now() as an integer).
set -euo pipefail

me=apply_types.sh
example=order_status_enum
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

# src NAME TEXT: a source file of the test, compiled; prints the plan
src()
{
	mkdir -p "$work/src"
	printf '%s\n' "$2" >"$work/src/$1.zdm"
	at_compile "$work/src/$1.zdm" "$1"
}

labels()
{
	val "$1" "SELECT pg_catalog.array_to_string(pg_catalog.enum_range(NULL::public.order_status), ',')"
}

say "taken: a type order_status exists already"
db=ty_taken
fresh_db $db
q -d $db -c "CREATE TYPE public.order_status AS ENUM ('x')"
at_dump $db "$work/taken.before"
zdm_run taken 2 apply "$plan" --db "dbname=$db" --approve-all
expect_grep taken "$work/taken.err" \
	'^zdm: preflight: type public\.order_status: a type or relation of that name exists \(order_status_enum\.zdm:9:1\)$'
at_dump $db "$work/taken.after"
same_schema "$work/taken.before" "$work/taken.after" "refused by preflight"

say "unfit: a status that fits no label stops verify with its key"
db=ty_unfit
fresh_db $db
q -d $db -c "UPDATE public.orders SET status = 'lost' WHERE id = 4242"
at_dump $db "$work/unfit.before"
zdm_run unfit1 3 apply "$plan" --db "dbname=$db" --approve-all
expect_grep unfit1 "$work/unfit1.err" '"id": 4242}, lost, .*invalid input value for enum order_status'
zdm_run unfit2 0 rollback "$plan" --db "dbname=$db"
at_dump $db "$work/unfit.after"
same_schema "$work/unfit.before" "$work/unfit.after" "rollback after verify stopped"
same_data "$work/unfit.before" "$work/unfit.after" "rollback after verify stopped"
q -d $db -c "UPDATE public.orders SET status = 'cancelled' WHERE id = 4242"
zdm_run unfit3 0 apply "$plan" --db "dbname=$db" --approve-all
expect "unfit: the fixed row" "$(val $db "SELECT status FROM public.orders WHERE id = 4242")" cancelled

say "labels: add value and rename value"
db=ty_labels
fresh_db $db
zdm_run labels0 0 apply "$plan" --db "dbname=$db" --approve-all
again=$(src labels_again "migration order_labels_again;
alter type public.order_status add value 'paid';")
zdm_run labels1 2 apply "$again" --db "dbname=$db" --approve-all
expect_grep labels1 "$work/labels1.err" "type public\\.order_status: already has the label 'paid'"
nowhere=$(src labels_nowhere "migration order_labels_nowhere;
alter type public.order_status add value 'lost' before 'misplaced';")
zdm_run labels1b 2 apply "$nowhere" --db "dbname=$db" --approve-all
expect_grep labels1b "$work/labels1b.err" "type public\\.order_status: has no label 'misplaced' to place 'lost' by"
missing=$(src labels_missing "migration order_labels_missing;
alter type order_status rename value 'refunded' to 'returned';")
zdm_run labels2 2 apply "$missing" --db "dbname=$db" --approve-all
expect_grep labels2 "$work/labels2.err" "type public\\.order_status: has no label 'refunded'"
lplan=$(at_compile "$root/plans/order_status_labels.zdm" order_status_labels)
# both versions of the example's clients write statuses through expand
# (add value) to the switch gate; the new one's 'cancelled' is renamed at
# contract, after they stop
search_path=$(at_plan_get "$lplan" new_version.search_path)
traffic_start $db old old
traffic_start $db new new
sleep 1
zdm_run labels3 4 apply "$lplan" --db "dbname=$db"
sleep 1
traffic_stop old
traffic_stop new
expect "labels: at the switch gate" "$(labels $db)" pending,paid,shipped,refunded,cancelled
zdm_run labels4 3 rollback "$lplan" --db "dbname=$db"
expect_grep labels4 "$work/labels4.err" 'point of no return'
zdm_run labels5 0 apply "$lplan" --db "dbname=$db" --approve-all
expect "labels: done" "$(labels $db)" pending,paid,shipped,refunded,canceled
expect "labels: the rows follow the rename" \
	"$(val $db "SELECT count(*) > 0 FROM public.orders WHERE status = 'canceled'")" t
check_no_leftovers $db

say "index: drop index"
db=ty_index
fresh_db $db
q -d $db -c "CREATE INDEX orders_user_idx ON public.orders (user_id);
             CREATE UNIQUE INDEX orders_note_key ON public.orders (id, note);
             CREATE TABLE public.order_notes (id bigint, note text,
                 FOREIGN KEY (id, note) REFERENCES public.orders (id, note))"
gone=$(src index_gone "migration drop_gone;
drop index public.orders_nothing_idx;")
zdm_run index1 2 apply "$gone" --db "dbname=$db" --approve-all
expect_grep index1 "$work/index1.err" 'index public\.orders_nothing_idx: does not exist'
needed=$(src index_needed "migration drop_needed;
drop index public.orders_note_key;")
zdm_run index2 2 apply "$needed" --db "dbname=$db" --approve-all
expect_grep index2 "$work/index2.err" 'index public\.orders_note_key: cannot be dropped while constraint order_notes_id_note_fkey of order_notes depends on it'
iplan=$(src index "migration drop_user_idx
  with (approve = (contract));
drop index orders_user_idx;")
at_dump $db "$work/index.before"
zdm_run index3 4 apply "$iplan" --db "dbname=$db"
expect "index: kept until contract" "$(val $db "SELECT pg_catalog.to_regclass('public.orders_user_idx') IS NOT NULL")" t
zdm_run index4 0 rollback "$iplan" --db "dbname=$db"
at_dump $db "$work/index.after"
same_schema "$work/index.before" "$work/index.after" "rollback of drop index before contract"
zdm_run index5 0 apply "$iplan" --db "dbname=$db" --approve-all
expect "index: gone at done" "$(val $db "SELECT pg_catalog.to_regclass('public.orders_user_idx') IS NULL")" t
check_no_leftovers $db

say "sqlonly: a migration of sql (...) alone"
db=ty_sqlonly
fresh_db $db
splan=$(src sqlonly "migration order_comment
  with (approve = (switch));
sql (COMMENT ON TABLE public.orders IS 'what people bought')
  reverse (COMMENT ON TABLE public.orders IS NULL);")
zdm_run sqlonly1 4 apply "$splan" --db "dbname=$db"
expect "sqlonly: the comment" "$(val $db "SELECT pg_catalog.obj_description('public.orders'::pg_catalog.regclass)")" "what people bought"
zdm_run sqlonly2 0 rollback "$splan" --db "dbname=$db"
expect "sqlonly: rolled back" "$(val $db "SELECT pg_catalog.obj_description('public.orders'::pg_catalog.regclass) IS NULL")" t
zdm_run sqlonly3 0 apply "$splan" --db "dbname=$db" --approve-all
expect "sqlonly: done" "$(val $db "SELECT pg_catalog.obj_description('public.orders'::pg_catalog.regclass)")" "what people bought"
check_no_leftovers $db

say "default: a kept default the new type cannot take"
db=ty_default
fresh_db $db
dplan=$(src default "migration orders_epoch;
alter table public.orders
  alter column created_at type integer
    using (extract(epoch FROM created_at)::integer)
    reverse using (pg_catalog.to_timestamp(created_at));")
at_dump $db "$work/default.before"
zdm_run default 2 apply "$dplan" --db "dbname=$db" --approve-all
expect_grep default "$work/default.err" \
	'public\.orders\.created_at: its default, kept \(now\(\)\) does not work on this table: cannot cast type timestamp with time zone to integer'
at_dump $db "$work/default.after"
same_schema "$work/default.before" "$work/default.after" "refused by preflight"
at_done
