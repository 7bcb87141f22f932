#!/usr/bin/env bash
#
# apply_cdc.sh -- sync = cdc end to end: `zdm apply` with `zdm sync`
# beside it, on plans/split_name_cdc.zdm (the split_name example, synced by
# logical replication instead of triggers; same_merge: merge_name_cdc.zdm),
# against a real server.
#
#   tests/runtime/apply_cdc.sh CASE
#
# (The traffic case -- kill -9 of zdm sync and of zdm apply under traffic
# from both versions -- is apply_cdc_example.sh's, generated for every
# fixture: apply_cdc_split_name runs it on this same migration.)
# Cases:
#   same        the same scripted writes from both versions (inserts,
#               updates of either shape, a new-version update of one new
#               column on a row never backfilled, deletes) run once on a
#               trigger plan and once on the cdc plan, both stopped at
#               their backfill gate; both then finish; the final rows are
#               identical.
#   same_merge  the same on plans/merge_name.zdm and merge_name_cdc.zdm
#               (first_name and last_name merged into name): partial
#               old-version writes (one merged column) before and after
#               new-version ones, a NULL merged column, an empty name.
#   rollback    at the switch gate, with zdm sync running, new-version
#               inserts through the view (the old NOT NULL column is filled
#               by the sync); `zdm rollback` exits 0, zdm sync exits 0 by
#               itself, and the schema is the one before the migration
#               (NOT NULL and the replica identity restored) with nothing
#               of the migration left behind.
#   nosync      without zdm sync, apply stops at the first catch-up step
#               with exit 4 and a message that says to start it, after
#               --sync-wait (2 s here; 60 s by default).
set -euo pipefail

me=apply_cdc.sh
case_name=${1:?usage: apply_cdc.sh same|same_merge|rollback|nosync}
example=split_name
[ "$case_name" != same_merge ] || example=merge_name
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
plan=$(at_compile "$root/plans/${example}_cdc.zdm" "${example}_cdc")
migration=$(at_plan_get "$plan" migration)
version_schema=$(at_plan_get "$plan" new_version.schema)
version_schemas=$(at_version_schemas "$plan")
search_path=$(at_plan_get "$plan" new_version.search_path)
grep -q '^  sync: cdc$' "$plan" || die "$plan is not a cdc plan"

# The schema of DB as zdm must leave it, with replica identity and NOT NULL.
table_facts()
{
	val "$1" "SELECT c.relreplident::text || ' ' || string_agg(a.attname || ':' || a.attnotnull, ',' ORDER BY a.attnum)
	  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
	 WHERE c.oid = 'public.users'::regclass AND a.attnum > 0 AND NOT a.attisdropped
	 GROUP BY c.relreplident"
}

# same_apply SCRIPT: the example's trigger plan and its cdc plan, both
# stopped at their backfill gate (so the script's writes meet rows not yet
# backfilled -- the merge on a partial new-version update -- as well as the
# rows they write themselves), each database given SCRIPT (OLD lines as
# the old version, NEW lines as the new one, in order, each with its own
# search path), then both finished; zdm sync exits by itself at contract.
same_apply()
{
	local script=$1 tbf cbf tsp csp
	tbf=$(at_gates_variant "${example}_bf" "backfill, switch")
	cbf=$(at_gates_variant "${example}_cdc_bf" "backfill, switch" \
		"$root/plans/${example}_cdc.zdm")
	tsp=$(at_plan_get "$tbf" new_version.search_path)
	csp=$(at_plan_get "$cbf" new_version.search_path)
	fresh_db same_t
	fresh_db same_c
	zdm_run same_t.apply 4 apply "$tbf" --db dbname=same_t
	plan=$cbf
	zdm_run same_c.apply 4 apply "$cbf" --db dbname=same_c
	sync_start same_c sync_same
	wait_sync_running same_c
	run_versions_script "$script" same_t "$tsp"
	run_versions_script "$script" same_c "$csp"
	zdm_run same_t.apply2 0 apply "$tbf" --db dbname=same_t --approve-all
	zdm_run same_c.apply2 0 apply "$cbf" --db dbname=same_c --approve-all
	zdm_wait "$sync_pid" sync_same 0 30
}

case $case_name in
same)
	script=$work/same.script
	cat >"$script" <<'EOF'
OLD	UPDATE users SET name = 'Ada Lovelace' WHERE id = 1
NEW	UPDATE users SET first_name = 'Grace' WHERE id = 2
NEW	UPDATE users SET last_name = 'Hopper', updated_at = now() WHERE id = 3
OLD	UPDATE users SET updated_at = now() WHERE id = 4
NEW	INSERT INTO users (id, first_name, last_name, email_address) VALUES (900001, 'Edsger', 'Dijkstra', 'ewd@new.example')
OLD	INSERT INTO users (id, name, email) VALUES (900002, 'Barbara Liskov', 'bl@old.example')
NEW	UPDATE users SET first_name = 'Barbara H.' WHERE id = 900002
OLD	UPDATE users SET name = 'Edsger W. Dijkstra' WHERE id = 900001
OLD	UPDATE users SET name = 'Single' WHERE id = 5
NEW	UPDATE users SET last_name = NULL WHERE id = 6
OLD	UPDATE users SET name = 'Then Old' WHERE id = 7
NEW	UPDATE users SET first_name = 'Then', last_name = 'New' WHERE id = 7
NEW	UPDATE users SET first_name = 'First New' WHERE id = 8
OLD	UPDATE users SET name = 'Then Old Again' WHERE id = 8
OLD	DELETE FROM users WHERE id = 9
NEW	DELETE FROM users WHERE id = 10
NEW	UPDATE users SET email_address = 'x@new.example' WHERE id = 11
OLD	UPDATE users SET email = 'y@old.example' WHERE id = 12
NEW	UPDATE users SET first_name = 'Two' WHERE id = 13; UPDATE users SET last_name = 'Steps' WHERE id = 13
NEW	UPDATE users SET first_name = 'Then' WHERE id = 14; UPDATE public.users SET email = 'then-old@example' WHERE id = 14
NEW	INSERT INTO users (id, first_name, last_name, email_address) VALUES (900003, 'Inserted', 'Then Updated', 'i@new.example'); UPDATE users SET email_address = 'u@new.example' WHERE id = 900003
EOF
	same_apply "$script"
	same_rows "SELECT id, first_name, last_name, email_address FROM users ORDER BY id" cdc
	expect "same: row 2 (partial new-version update of a row never backfilled)" \
		"$(grep '^2|' "$work/same_c.rows" | cut -d'|' -f2)" Grace
	# both partial writes in one transaction: the sync sees the second
	# before it could apply the first, on a row still pending
	expect "same: row 13 (two partial new-version updates, one transaction)" \
		"$(grep '^13|' "$work/same_c.rows" | cut -d'|' -f2,3)" "Two|Steps"
	expect "same: row 14 (an old-version write after an unapplied new-version one)" \
		"$(grep '^14|' "$work/same_c.rows" | cut -d'|' -f2,3)" "Then|Last14"
	expect "same: row 900003 (an update after an unapplied new-version insert)" \
		"$(grep '^900003|' "$work/same_c.rows" | cut -d'|' -f2,3)" "Inserted|Then Updated"
	say "trigger and cdc sync end with the same $(wc -l <"$work/same_c.rows") rows"
	check_no_leftovers same_c
	;;
same_merge)
	script=$work/same.script
	cat >"$script" <<'EOF'
OLD	UPDATE contacts SET first_name = 'Ada', last_name = 'Lovelace' WHERE id = 1
NEW	UPDATE contacts SET name = 'Grace Hopper' WHERE id = 2
NEW	UPDATE contacts SET name = 'Single', updated_at = now() WHERE id = 3
OLD	UPDATE contacts SET updated_at = now() WHERE id = 4
NEW	INSERT INTO contacts (id, name, email) VALUES (900001, 'Edsger Dijkstra', 'ewd@new.example')
OLD	INSERT INTO contacts (id, first_name, last_name, email) VALUES (900002, 'Barbara', 'Liskov', 'bl@old.example')
NEW	UPDATE contacts SET name = 'Barbara H. Liskov' WHERE id = 900002
WAIT	SELECT first_name = 'Edsger' FROM contacts WHERE id = 900001
OLD	UPDATE contacts SET last_name = 'W. Dijkstra' WHERE id = 900001
OLD	UPDATE contacts SET last_name = NULL WHERE id = 5
NEW	UPDATE contacts SET name = 'van der Berg' WHERE id = 6
OLD	UPDATE contacts SET first_name = 'Then' WHERE id = 7
NEW	UPDATE contacts SET name = 'Then New' WHERE id = 7
NEW	UPDATE contacts SET name = 'First New' WHERE id = 8
WAIT	SELECT first_name = 'First' FROM contacts WHERE id = 8
OLD	UPDATE contacts SET last_name = 'Old Again' WHERE id = 8
OLD	DELETE FROM contacts WHERE id = 9
NEW	DELETE FROM contacts WHERE id = 10
NEW	UPDATE contacts SET email = 'x@new.example' WHERE id = 11
OLD	UPDATE contacts SET email = 'y@old.example' WHERE id = 12
NEW	UPDATE contacts SET name = 'Two' WHERE id = 13; UPDATE contacts SET name = 'Two Steps' WHERE id = 13
NEW	UPDATE contacts SET name = 'Then' WHERE id = 14; UPDATE public.contacts SET email = 'then-old@example' WHERE id = 14
NEW	INSERT INTO contacts (id, name, email) VALUES (900003, 'Inserted Then Updated', 'i@new.example'); UPDATE contacts SET email = 'u@new.example' WHERE id = 900003
OLD	INSERT INTO contacts (id, first_name, email) VALUES (900004, 'Mononym', 'm@old.example')
NEW	INSERT INTO contacts (id, name, email) VALUES (900005, '', 'empty@new.example')
EOF
	same_apply "$script"
	same_rows "SELECT id, name, email FROM contacts ORDER BY id" cdc
	expect "same_merge: row 8 (an old-version write of one merged column after a new-version one the sync has applied)" \
		"$(grep '^8|' "$work/same_c.rows" | cut -d'|' -f2)" "First Old Again"
	expect "same_merge: row 900001 (the same on a new-version insert)" \
		"$(grep '^900001|' "$work/same_c.rows" | cut -d'|' -f2)" "Edsger W. Dijkstra"
	expect "same_merge: row 5 (a merged column set NULL)" \
		"$(grep '^5|' "$work/same_c.rows" | cut -d'|' -f2)" "First5"
	expect "same_merge: row 13 (two new-version updates, one transaction)" \
		"$(grep '^13|' "$work/same_c.rows" | cut -d'|' -f2)" "Two Steps"
	expect "same_merge: row 900005 (an empty name fills first_name NOT NULL with '')" \
		"$(grep '^900005|' "$work/same_c.rows" | cut -d'|' -f2,3)" "|empty@new.example"
	say "trigger and cdc sync end with the same $(wc -l <"$work/same_c.rows") rows"
	check_no_leftovers same_c
	;;
rollback)
	db=cdc_rollback
	fresh_db $db
	at_dump $db "$work/$db.before"
	before=$(table_facts $db)
	zdm_bg apply1 apply "$plan" --db "dbname=$db"
	apply_pid=$zdm_pid
	at_wait_for "expand done in the journal" 60 phase_done $db expand
	sync_start $db sync_rb
	# generous: on a loaded machine (CI runs tests in parallel) the catch-up
	# steps after the backfill wait for the sync, which shares the cores
	zdm_wait "$apply_pid" apply1 4 200
	expect_grep "apply" "$work/apply1.out" '^zdm: paused at gate "switch"'
	expect "replica identity during the migration" \
		"$(val $db "SELECT relreplident FROM pg_class WHERE oid = 'public.users'::regclass")" f
	PGOPTIONS="-c search_path=${search_path// /}" q -d $db -c \
		"INSERT INTO users (id, first_name, last_name, email_address)
		 SELECT 800000 + g, 'Roll', 'Back ' || g, 'rb' || g || '@new.example'
		   FROM generate_series(1, 3) g" >/dev/null
	at_wait_for "the sync carried the new-version inserts back to name" 30 \
		sql_true $db "SELECT count(*) = 3 FROM users WHERE id > 800000 AND name = 'Roll Back ' || (id - 800000)"
	zdm_run rollback 0 rollback "$plan" --db "dbname=$db"
	zdm_wait "$sync_pid" sync_rb 0 30
	expect "schema facts after rollback" "$(table_facts $db)" "$before"
	at_dump $db "$work/$db.after"
	same_schema "$work/$db.before" "$work/$db.after" "cdc rollback"
	check_no_leftovers $db
	expect "status after rollback" "$(status_json $db 'd["state"]')" rolled_back
	;;
nosync)
	db=cdc_nosync
	fresh_db $db
	# --sync-wait 2s: stopping at the default 60 s would overrun the timeout
	ZDM_TIMEOUT=40 zdm_run apply1 4 apply "$plan" --db "dbname=$db" --sync-wait 2s
	expect_grep "no sync" "$work/apply1.err" 'no zdm sync is running'
	expect_grep "no sync: the hint" "$work/apply1.err" 'zdm sync'
	expect "status" "$(status_json $db 'd["state"]')" paused
	;;
*)
	die "unknown case $case_name"
	;;
esac
at_done
