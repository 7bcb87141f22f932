#!/usr/bin/env bash
#
# apply_debezium.sh -- sync = cdc with cdc_source = debezium end to end:
# `zdm apply` with `zdm sync --topic ... --kafka bootstrap.servers=...`
# beside it, on plans/orders_amount_cdc.zdm, against a real server whose
# real table writes reach zdm sync as Debezium change events through Kafka.
#
#   tests/runtime/apply_debezium.sh CASE
#
# Debezium and Kafka are played by zdm_dbz_relay (dbz_relay.c): it reads its
# own slot dbz_slot of its own publication dbz_pub (made here: the plan makes
# none, Debezium's are the operator's), produces every change of every writer
# (zdm sync's own too) as a Debezium event into a librdkafka mock cluster it
# runs, and writes the cluster's bootstrap servers to a file.  zdm sync, in
# another process, consumes over loopback in consumer group zdm-MIGRATION.
# The plan is plans/orders_amount_cdc.zdm with stable_for = 1s (its 10 s
# default would make the four catch-up steps most of the test's time).
#
# Cases:
#   traffic  the relay (value and key with schemas, 3 partitions, a snapshot
#            of orders first: op r) starts before the migration; old-version
#            clients write from before expand, new-version clients from
#            expand on; zdm sync starts once expand is done, reads the topic
#            from its beginning, is killed with SIGKILL once it has applied
#            changes and started again (it resumes from the group's
#            committed offsets); apply stops at a verify gate; verify runs
#            while both versions go on writing (its rechecks wait on the
#            barrier that the barrier case tests) and apply stops at the
#            contract gate, where the clients stop and, once the sync has
#            caught up, every row agrees in both shapes; both versions
#            write again for a while, stop, and every row agrees again; the
#            sync's own
#            writes came back through Kafka and were recognised
#            (zdm.cdc.own_skipped > 0); new-version clients start again and
#            apply --approve-all finishes.  Not one client statement failed;
#            zdm sync exited 0 by itself at contract; the relay delivered
#            everything; the final columns and orders_amount.check.sql hold;
#            nothing of the migration is left and it made no slot or
#            publication of its own.
#   same     one script of writes from both versions (inserts, updates of
#            either shape, an update of a row never backfilled, primary-key
#            changes from both versions -- delete + tombstone + create in
#            Debezium -- several changes to one row in one transaction,
#            deletes, a key deleted and inserted again) runs once on a
#            trigger plan and once on the debezium plan (events without
#            schemas, 1 partition), both stopped at their backfill gate;
#            both then finish; the final rows are identical.
#   barrier  a connector that lags the database by 2 s (relay -w 2000): an
#            old-version update committed at the contract gate, just before
#            apply --approve-all, reaches the new column.  Without
#            --connector-slot the catch-up barrier before contract passed
#            once the consumer had read everything in Kafka, not everything
#            committed before the barrier, so zdm sync was stopped before
#            the update arrived and contract dropped it; with it, the
#            barrier waits until the committed offsets pass a fence put at
#            the topic's end once the connector's slot had confirmed the
#            barrier's position.  First, --connector-slot naming no slot is
#            refused (exit 1) with the slot named and a hint.
set -euo pipefail

me=apply_debezium.sh
case_name=${1:?usage: apply_debezium.sh traffic|same|barrier}
example=orders_amount
ZDM_DBZ_RELAY=${ZDM_DBZ_RELAY:-$(dirname "${BASH_SOURCE[0]}")/../../build/release/tests/zdm_dbz_relay}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
[ -x "$ZDM_DBZ_RELAY" ] || { echo "$me: $ZDM_DBZ_RELAY is not built" >&2; exit 2; }
at_init
mkdir -p "$work/src"
sed -E "s/sync = cdc,/sync = cdc, stable_for = '1s',/" \
	"$root/plans/orders_amount_cdc.zdm" >"$work/src/orders_amount_dbz.zdm"
cmp -s "$root/plans/orders_amount_cdc.zdm" "$work/src/orders_amount_dbz.zdm" &&
	die "could not set stable_for in orders_amount_cdc.zdm"
plan=$(at_compile "$work/src/orders_amount_dbz.zdm" orders_amount_dbz)
migration=$(at_plan_get "$plan" migration)
version_schema=$(at_plan_get "$plan" new_version.schema)
version_schemas=$(at_version_schemas "$plan")
search_path=$(at_plan_get "$plan" new_version.search_path)
grep -q '^  source: debezium$' "$plan" || die "$plan is not a debezium plan"
topic=dbz.public.orders

# relay_start DB NAME RELAY-ARGS...: dbz_pub, dbz_slot and the relay; its
# pid in $relay_pid, the cluster's bootstrap servers in $bootstrap.
relay_start()
{
	local db=$1 name=$2 i
	shift 2
	q -d "$db" -c "CREATE PUBLICATION dbz_pub FOR TABLE public.orders"
	val "$db" "SELECT pg_catalog.pg_create_logical_replication_slot('dbz_slot', 'pgoutput')" >/dev/null
	"$ZDM_DBZ_RELAY" -d "dbname=$db" -s dbz_slot -p dbz_pub -x dbz \
		-o "$work/$name.bootstrap" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	relay_pid=$!
	relay_name=$name
	at_bg_pids+=("$relay_pid")
	for ((i = 0; i < 300; i++)); do
		[ -s "$work/$name.bootstrap" ] && break
		kill -0 "$relay_pid" 2>/dev/null || { cat "$work/$name.err" >&2; die "the relay exited early"; }
		sleep 0.1
	done
	bootstrap=$(cat "$work/$name.bootstrap") || die "the relay wrote no bootstrap servers"
	say "relay ($name) started, pid $relay_pid, brokers $bootstrap"
}

# relay_stop: SIGTERM; it must deliver what it has and exit 0.
relay_stop()
{
	local rc=0
	kill -TERM "$relay_pid"
	at_wait_gone "$relay_pid" 30 || die "the relay did not stop within 30 s"
	wait "$relay_pid" || rc=$?
	grep -v '|MOCK|' "$work/$relay_name.err" | sed 's/^/    relay: /'
	[ "$rc" = 0 ] || die "the relay exited $rc"
}

# sync_start DB NAME: zdm sync of $plan on the relay's topic; its pid in
# $sync_pid.  The group's session timeout is short so that a sync started
# after a kill -9 is not kept out of the group for librdkafka's default
# 45 s, the dead member's session.  A zdm that can read the connector's
# slot is told the relay's with --connector-slot (what the barrier case
# needs).
sync_start()
{
	"$ZDM" sync "$plan" --db "dbname=$1" --topic "$topic" --connector-slot dbz_slot \
		--kafka "bootstrap.servers=$bootstrap" \
		--kafka session.timeout.ms=6000 --kafka heartbeat.interval.ms=500 \
		--kafka fetch.wait.max.ms=50 \
		>"$work/$2.out" 2>"$work/$2.err" &
	sync_pid=$!
	at_bg_pids+=("$sync_pid")
	say "zdm sync ($2) started, pid $sync_pid"
}

# Every row agrees in both shapes and none waits for the backfill or the sync.
shapes_agree()
{
	sql_true "$1" "SELECT count(*) = 0 FROM public.orders
	  WHERE zdm_sync_pending OR zdm_new_amount IS DISTINCT FROM amount / 100.0
	     OR amount IS DISTINCT FROM (zdm_new_amount * 100)::integer"
}

case $case_name in
traffic)
	# stops at the verify gate as well as contract's (see the header)
	sed -E 's/approve = \(([^)]*)\)/approve = (verify, contract)/' \
		"$work/src/orders_amount_dbz.zdm" >"$work/src/orders_amount_dbz_vc.zdm"
	plan=$(at_compile "$work/src/orders_amount_dbz_vc.zdm" orders_amount_dbz_vc)
	grep -q '^  approve: \[verify, contract\]$' "$plan" || die "could not set approve"
	db=dbz_traffic
	fresh_db $db
	relay_start $db relay -S -k 3 -r public.orders
	traffic_start $db old old
	sleep 1
	say "zdm apply (to the verify gate), zdm sync once expand is done"
	zdm_bg apply1 apply "$plan" --db "dbname=$db"
	apply_pid=$zdm_pid
	at_wait_for "expand done in the journal" 60 phase_done $db expand
	sync_start $db sync1
	traffic_start $db new new
	wait_sync_running $db
	# killed only once it has applied changes, so that it has committed
	# offsets to resume from and, under the clients' writes, changes in
	# flight that were handed out and not acknowledged
	at_wait_for "the first zdm sync applied changes" 30 sql_true $db \
		"SELECT changes_applied > 0 FROM zdm.cdc WHERE migration = '$migration'"
	sleep 1
	say "kill -9 zdm sync, let changes pile up in Kafka, start it again"
	kill -9 "$sync_pid"
	wait "$sync_pid" 2>/dev/null || true
	sleep 2
	sync_start $db sync2
	zdm_wait "$apply_pid" apply1 4 120
	expect_grep "first run" "$work/apply1.out" '^zdm: paused at gate "verify"'
	say "verify while both versions write"
	zdm_run apply2 4 apply "$plan" --db "dbname=$db" --approve verify
	expect_grep "second run" "$work/apply2.out" '^zdm: paused at gate "contract"'
	traffic_stop old
	traffic_stop new
	at_wait_for "every row agrees in both shapes once the sync caught up" 30 \
		shapes_agree $db
	say "both versions write again, between switch and contract"
	traffic_start $db old2 old
	traffic_start $db new2 new
	sleep 3
	traffic_stop old2
	traffic_stop new2
	at_wait_for "every row agrees in both shapes once the sync caught up" 30 \
		shapes_agree $db
	say "at the contract gate every row agrees in both shapes"
	own=$(val $db "SELECT own_skipped FROM zdm.cdc WHERE migration = '$migration'")
	[ "${own:-0}" -gt 0 ] ||
		die "zdm.cdc.own_skipped is '${own}': the sync's own writes did not come back marked as its own"
	say "zdm sync skipped $own of its own writes that came back through Kafka"
	traffic_start $db new3 new
	say "zdm apply --approve-all (the rest)"
	zdm_run apply3 0 apply "$plan" --db "dbname=$db" --approve-all
	expect_grep "third run" "$work/apply3.out" '^migration .*: done$'
	zdm_wait "$sync_pid" sync2 0 30
	sleep 1
	traffic_stop new3
	relay_stop
	expect_grep "the relay" "$work/relay.err" 'dbz_relay: [1-9][0-9]* transactions, .* [1-9][0-9]* snapshot rows$'
	check_done $db
	expect "slots and publications left" \
		"$(val $db "SELECT string_agg(slot_name, ',') FROM pg_catalog.pg_replication_slots") $(val $db "SELECT string_agg(pubname, ',') FROM pg_catalog.pg_publication")" \
		"dbz_slot dbz_pub"
	;;
barrier)
	# A connector that lags (relay -w): an old-version write committed
	# just before contract must still reach the new shape.
	db=dbz_barrier
	fresh_db $db
	relay_start $db relay -w 2000
	zdm_bg apply1 apply "$plan" --db "dbname=$db"
	apply_pid=$zdm_pid
	at_wait_for "expand done in the journal" 60 phase_done $db expand
	# a connector slot that does not exist: refused, named, with a hint
	zdm_run badslot 1 sync "$plan" --db "dbname=$db" --topic "$topic" \
		--connector-slot no_such_slot --kafka "bootstrap.servers=$bootstrap"
	expect_grep "unknown connector slot" "$work/badslot.err" \
		'^zdm: error: --connector-slot no_such_slot: no logical replication slot of that name'
	expect_grep "unknown connector slot: hint" "$work/badslot.err" '^HINT: .*slot\.name'
	sync_start $db sync1
	wait_sync_running $db
	zdm_wait "$apply_pid" apply1 4 120
	expect_grep "first run" "$work/apply1.out" '^zdm: paused at gate "contract"'
	at_wait_for "every row agrees in both shapes once the sync caught up" 30 \
		shapes_agree $db
	q -d $db -c "UPDATE orders SET amount = 424242 WHERE id = 42"
	zdm_run apply2 0 apply "$plan" --db "dbname=$db" --approve-all
	zdm_wait "$sync_pid" sync1 0 30
	relay_stop
	expect "the old version's last write, committed before contract" \
		"$(val $db "SELECT amount FROM orders WHERE id = 42")" 4242.42
	;;
same)
	# Both plans stop at their backfill gate: the script's writes meet rows
	# that are not backfilled yet as well as the rows they write themselves.
	tbf=$(at_gates_variant orders_amount_bf "backfill, contract")
	cbf=$(at_gates_variant orders_amount_dbz_bf "backfill, contract" \
		"$work/src/orders_amount_dbz.zdm")
	tsp=$(at_plan_get "$tbf" new_version.search_path)
	csp=$(at_plan_get "$cbf" new_version.search_path)
	fresh_db same_t
	fresh_db same_c
	relay_start same_c relay
	zdm_run same_t.apply 4 apply "$tbf" --db dbname=same_t
	plan=$cbf
	zdm_run same_c.apply 4 apply "$cbf" --db dbname=same_c
	sync_start same_c sync_same
	wait_sync_running same_c
	# one script, run against each database with its own search paths:
	# OLD lines as the old version (cents), NEW lines as the new (units)
	script=$work/same.script
	cat >"$script" <<'EOF'
OLD	UPDATE orders SET amount = 4242 WHERE id = 1
NEW	UPDATE orders SET amount = 99.99 WHERE id = 2
NEW	UPDATE orders SET note = 'new note, amount untouched' WHERE id = 3
OLD	UPDATE orders SET note = 'old note' WHERE id = 4
NEW	INSERT INTO orders (id, user_id, amount, note, created_at) VALUES (900001, 1, 12.50, 'new insert', '2025-01-01 00:00:00+00')
OLD	INSERT INTO orders (id, user_id, amount, note, created_at) VALUES (900002, 2, 777, 'old insert', '2025-01-01 00:00:00+00')
NEW	UPDATE orders SET amount = 1.01 WHERE id = 900002
OLD	UPDATE orders SET amount = 31415 WHERE id = 900001
OLD	UPDATE orders SET id = 900003 WHERE id = 5
NEW	UPDATE orders SET id = 900004, amount = 3.50 WHERE id = 6
OLD	UPDATE orders SET id = 900005, amount = 5005 WHERE id = 900002
NEW	UPDATE orders SET id = 900006 WHERE id = 900001
OLD	UPDATE orders SET amount = 100 WHERE id = 7
NEW	UPDATE orders SET amount = 2.22 WHERE id = 7
NEW	UPDATE orders SET amount = 8.88 WHERE id = 8
OLD	UPDATE orders SET amount = 808 WHERE id = 8
OLD	UPDATE orders SET amount = 500 WHERE id = 11; UPDATE orders SET amount = amount + 1 WHERE id = 11
NEW	UPDATE orders SET amount = 6.00 WHERE id = 12; UPDATE orders SET note = 'twice' WHERE id = 12
OLD	UPDATE orders SET amount = amount + 100 WHERE id BETWEEN 13 AND 20
OLD	DELETE FROM orders WHERE id = 9
NEW	DELETE FROM orders WHERE id = 10
OLD	INSERT INTO orders (id, user_id, amount, note, created_at) VALUES (9, 9, 909, 'old, again', '2025-01-01 00:00:00+00')
NEW	INSERT INTO orders (id, user_id, amount, note, created_at) VALUES (10, 10, 10.10, 'new, again', '2025-01-01 00:00:00+00')
EOF
	run_versions_script "$script" same_t "$tsp"
	run_versions_script "$script" same_c "$csp"
	zdm_run same_t.apply2 0 apply "$tbf" --db dbname=same_t --approve-all
	zdm_run same_c.apply2 0 apply "$cbf" --db dbname=same_c --approve-all
	zdm_wait "$sync_pid" sync_same 0 30
	relay_stop
	same_rows "SELECT id, user_id, amount, note, created_at FROM orders ORDER BY id" debezium
	expect "same: the new version's primary-key change with a new amount" \
		"$(val same_c "SELECT amount FROM orders WHERE id = 900004")" 3.50
	expect "same: the old version's primary-key change of a synced row" \
		"$(val same_c "SELECT amount FROM orders WHERE id = 900005")" 50.05
	expect "same: no row under an old key" \
		"$(val same_c "SELECT count(*) FROM orders WHERE id IN (5, 6, 900001, 900002)")" 0
	say "trigger and debezium sync end with the same $(wc -l <"$work/same_c.rows") rows"
	check_no_leftovers same_c
	;;
*)
	die "unknown case $case_name"
	;;
esac
at_done
