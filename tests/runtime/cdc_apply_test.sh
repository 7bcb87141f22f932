#!/usr/bin/env bash
#
# cdc_apply_test.sh -- `zdm sync` (runtime/sync.c) and the applier
# (runtime/cdc_apply.c) against a real PostgreSQL (tests/lib/pg.sh,
# wal_level=logical), with the native source.  The plan is the split of
# users.name into first_name/last_name, built by hand in
# zdm_cdc_apply_driver (tests/runtime/cdc_apply_driver.c); its expand is
# done here with psql, as the compiled plan's steps would: the origin, the
# publication and the slot, the new columns and zdm_sync_pending, REPLICA
# IDENTITY FULL, DROP NOT NULL on name.
#
#   tests/runtime/cdc_apply_test.sh shapes|replay|stop|quiet|errors|throughput|writer_wait|locks
#
#   shapes      old-shape inserts and updates reach the new columns, new-shape
#               inserts and updates reach name, a new-shape write touching
#               one new column of a not yet backfilled row takes the other
#               from name, an email-only update of a pending row is carried
#               forward and of a synced one does nothing; the sync's own
#               writes come back flagged and are skipped (counted, and the
#               counters stop moving once the table is quiet: no loop);
#               zdm.cdc says running, its pid, a lag of 0 and an applied_lsn
#               at or past the last write; a second zdm sync is refused
#               (exit 1) and leaves the first one's row alone.
#   replay      a writer mixes old- and new-shape writes while zdm sync is
#               killed with SIGKILL twice and restarted: at the end every row
#               is converged (both shapes agree, nothing pending); then
#               SIGTERM stops it cleanly (exit 0, state stopped).
#   stop        stop_requested stops a running sync (exit 0, state stopped);
#               one found at start stops it at once; a migration marked
#               rolled_back stops it; a slot dropped under it (a rollback)
#               ends it with exit 0.
#   quiet       with no change to users, the slot's confirmed_flush_lsn moves
#               past WAL written to other tables and past the heartbeat.
#   errors      a statement that cannot be prepared fails at start naming
#               the table, the change's at, the statement and the SQLSTATE;
#               an UPDATE of a table without REPLICA IDENTITY FULL fails
#               saying it needs it, with state failed and last_error in
#               zdm.cdc, and a restart fails again on the same change (it
#               was never acknowledged); no journal: refused with a hint.
#   (ZDM_TEST_KEEP_LOG=FILE: a failing case copies the whole server log there.)
#
#   throughput  200,000 old-shape single-row updates (1,000 rows), applied:
#               the rate is printed (informational), convergence asserted.
#   writer_wait a writer whose commit is in the log but who is still in the
#               proc array (waiting for a synchronous standby that never
#               comes): its change is decoded and sent at once, yet the
#               sync does not apply it while it would find nothing (the
#               change would be acknowledged and lost); it says whom it
#               waits for, and applies the change once the writer is
#               released.
#   locks       a client holds row 1 in an open transaction and then
#               updates row 2, while the sync's batch changes row 2 and
#               waits for row 1: the sync gives way (lock_timeout, then the
#               same batch again) instead of deadlocking with the client;
#               the client commits, both rows are synced, the sync still
#               runs.
#
# The driver comes from the environment (ctest sets it): ZDM_CDC_APPLY_DRIVER.
set -euo pipefail

me=cdc_apply_test.sh
case=${1:?usage: cdc_apply_test.sh shapes|replay|stop|quiet|errors|throughput|writer_wait|locks}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DRIVER=${ZDM_CDC_APPLY_DRIVER:-$root/build/release/tests/zdm_cdc_apply_driver}

[ -x "$DRIVER" ] || { echo "$me: $DRIVER is not built" >&2; exit 2; }

# shellcheck source=../lib/pg.sh
. "$root/tests/lib/pg.sh"

work=$(mktemp -d)
sync_pid=
writer_pid=
cleanup()
{
	if [ -n "$sync_pid" ]; then
		kill -9 "$sync_pid" 2>/dev/null || true
	fi
	if [ -n "$writer_pid" ]; then
		kill -9 "$writer_pid" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	rm -rf "$work"
}
zdm_on_exit cleanup

# shellcheck source=../lib/assert.sh
. "$root/tests/lib/assert.sh"
assert_where()
{
	echo "$case"
}
# after a failure: zdm sync's output, and the server log without the
# sync's own chatter
assert_on_fail()
{
	for f in "$work"/sync*.out "$work"/sync*.err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
	done
	[ -n "${ZDM_TEST_KEEP_LOG:-}" ] && pg_log >"$ZDM_TEST_KEEP_LOG"
	echo "--- server log (tail)" >&2
	pg_log | grep -v "zdm.cdc\|wal_insert\|heartbeat\|parameters: \$1 = .split_name.$" | grep -v "WHERE id = \|coalesce\|concat_ws(.|." | tail -60 >&2
}

# wait_until SQL SECONDS: until SQL returns t.
wait_until()
{
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(qv -c "$1")" = t ] && return 0
		sleep 0.1
	done
	die "waited $2 s for: $1"
}

# start_sync [ARGS...]: zdm sync in the background, output in
# $work/sync.out and $work/sync.err (appended), pid in $sync_pid; waits
# until zdm.cdc says it runs.
start_sync()
{
	"$DRIVER" sync "$@" >>"$work/sync.out" 2>>"$work/sync.err" &
	sync_pid=$!
	wait_until "SELECT EXISTS (SELECT 1 FROM zdm.cdc WHERE state = 'running'
	            AND pid = $sync_pid)" 20
}

# start_sync_bg [ARGS...]: the same, without waiting for it to run.
start_sync_bg()
{
	"$DRIVER" sync "$@" >>"$work/sync.out" 2>>"$work/sync.err" &
	sync_pid=$!
}

# wait_sync RC SECONDS: the background sync exits with RC within SECONDS.
wait_sync()
{
	local i rc=0
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$sync_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$sync_pid" 2>/dev/null && die "zdm sync still runs after $2 s"
	wait "$sync_pid" || rc=$?
	sync_pid=
	[ "$rc" = "$1" ] || die "zdm sync exited $rc, expected $1"
}

# The table and a compiled plan's expand, by hand.
setup()
{
	local rows=${1:-1000}
	qv <<EOF
CREATE TABLE public.users (id bigint PRIMARY KEY, name text NOT NULL,
                           email text);
INSERT INTO public.users
  SELECT i, 'First' || i || ' Last' || i, 'u' || i || '@example.com'
  FROM generate_series(1, $rows) i;
CREATE TABLE public.other (id serial PRIMARY KEY, v text);
SELECT pg_replication_origin_create('zdm_split_name') \g /dev/null
CREATE PUBLICATION zdm_split_name FOR TABLE public.users;
SELECT pg_create_logical_replication_slot('zdm_split_name', 'pgoutput') \g /dev/null
ALTER TABLE public.users ADD COLUMN zdm_new_first_name text,
  ADD COLUMN zdm_new_last_name text,
  ADD COLUMN zdm_sync_pending boolean NOT NULL DEFAULT true;
ALTER TABLE public.users REPLICA IDENTITY FULL;
ALTER TABLE public.users ALTER COLUMN name DROP NOT NULL;
EOF
	"$DRIVER" init || die "journal init failed"
	qv -c "INSERT INTO zdm.migrations (migration, plan_sha256, plan, state)
	      VALUES ('split_name', 'x', 'x', 'running')"
}

# The backfill, as the plan's would run it (not through the sync).
backfill()
{
	qv -c "UPDATE public.users SET zdm_new_first_name = split_part(name, ' ', 1),
	      zdm_new_last_name = nullif(substr(name, length(split_part(name, ' ', 1)) + 2), ''),
	      zdm_sync_pending = false WHERE zdm_sync_pending"
}

# row ID: name|first|last|pending
row()
{
	qv -c "SELECT concat_ws('|', coalesce(name, '<null>'),
	      coalesce(zdm_new_first_name, '<null>'),
	      coalesce(zdm_new_last_name, '<null>'), zdm_sync_pending)
	      FROM public.users WHERE id = $1"
}

# expect_row ID WANT SECONDS
expect_row()
{
	local i got
	for ((i = 0; i < $3 * 10; i++)); do
		got=$(row "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.1
	done
	die "row $1: expected '$2', got '$got'"
}

# Every row: both shapes agree and nothing is pending.
converged_sql="SELECT count(*) = 0 FROM public.users
  WHERE zdm_sync_pending
     OR zdm_new_first_name IS DISTINCT FROM split_part(name, ' ', 1)
     OR zdm_new_last_name IS DISTINCT FROM
        nullif(substr(name, length(split_part(name, ' ', 1)) + 2), '')
     OR name IS DISTINCT FROM concat_ws(' ', zdm_new_first_name, zdm_new_last_name)"

cdc_field()
{
	qv -c "SELECT $1 FROM zdm.cdc WHERE migration = 'split_name'"
}

pg_start || die "the server did not start"
export PGDATABASE=postgres

case_shapes()
{
	local seen1 seen2 lsn rc i
	setup 10
	# rows 1..5 backfilled; 6..10 still pending
	qv -c "UPDATE public.users SET zdm_new_first_name = split_part(name, ' ', 1),
	      zdm_new_last_name = split_part(name, ' ', 2), zdm_sync_pending = false
	      WHERE id <= 5"
	start_sync -P 1
	# zdm.cdc says running before the slot is open and the line printed
	for ((i = 0; i < 100; i++)); do
		grep -q '^zdm sync: split_name: reading slot' "$work/sync.out" && break
		sleep 0.1
	done
	grep -q '^zdm sync: split_name: reading slot zdm_split_name (publication zdm_split_name)' \
		"$work/sync.out" || die "no start line: $(cat "$work/sync.out")"

	# old shape
	qv -c "INSERT INTO public.users (id, name) VALUES (100, 'Ada Lovelace')"
	expect_row 100 'Ada Lovelace|Ada|Lovelace|f' 10
	qv -c "INSERT INTO public.users (id, name) VALUES (101, 'Plato')"
	expect_row 101 'Plato|Plato|<null>|f' 10
	qv -c "UPDATE public.users SET name = 'Grace Brewster Hopper' WHERE id = 1"
	expect_row 1 'Grace Brewster Hopper|Grace|Brewster Hopper|f' 10
	# new shape (as through the new version's view: name left NULL)
	qv -c "INSERT INTO public.users (id, zdm_new_first_name, zdm_new_last_name)
	      VALUES (200, 'Alan', 'Turing')"
	expect_row 200 'Alan Turing|Alan|Turing|f' 10
	qv -c "UPDATE public.users SET zdm_new_last_name = 'Knuth' WHERE id = 2"
	expect_row 2 'First2 Knuth|First2|Knuth|f' 10
	# new shape on a pending row, one column: the other from name
	qv -c "UPDATE public.users SET zdm_new_first_name = 'Edsger' WHERE id = 7"
	expect_row 7 'Edsger Last7|Edsger|Last7|f' 10
	# email only: pending row carried forward, a synced one untouched
	qv -c "UPDATE public.users SET email = 'x@example.com' WHERE id = 8"
	expect_row 8 'First8 Last8|First8|Last8|f' 10
	qv -c "UPDATE public.users SET email = 'y@example.com' WHERE id = 3"
	expect_row 3 'First3 Last3|First3|Last3|f' 10
	# both shapes in one transaction, in order
	qv <<'EOF'
BEGIN;
UPDATE public.users SET name = 'Barbara Liskov' WHERE id = 4;
UPDATE public.users SET zdm_new_first_name = 'Frances', zdm_new_last_name = 'Allen' WHERE id = 5;
COMMIT;
EOF
	expect_row 4 'Barbara Liskov|Barbara|Liskov|f' 10
	expect_row 5 'Frances Allen|Frances|Allen|f' 10
	qv -c "DELETE FROM public.users WHERE id = 101"

	# quiet: own writes came back and were skipped; no loop
	lsn=$(qv -c "SELECT pg_current_wal_lsn()")
	wait_until "SELECT applied_lsn >= '$lsn' AND lag_seconds = 0 FROM zdm.cdc
	            WHERE migration = 'split_name'" 10
	seen1=$(cdc_field "changes_seen || ' ' || changes_applied || ' ' || own_skipped")
	sleep 1.5
	seen2=$(cdc_field "changes_seen || ' ' || changes_applied || ' ' || own_skipped")
	[ "$seen1" = "$seen2" ] || die "counters still moving on a quiet table: $seen1 -> $seen2"
	read -r s a o <<<"$seen2"
	[ "$o" -ge 8 ] || die "own writes skipped: $o, expected at least 8 ($seen2)"
	[ "$a" = 9 ] || die "rows changed by the sync: $a, expected 9 ($seen2)"
	[ "$s" -ge 18 ] || die "changes seen: $s ($seen2)"
	[ "$(cdc_field "state || ' ' || pid || ' ' || source")" = "running $sync_pid native" ] ||
		die "zdm.cdc: $(cdc_field "state || ' ' || pid || ' ' || source")"
	grep -q '^zdm sync: split_name: [0-9]* changes/s' "$work/sync.out" ||
		die "no progress line: $(cat "$work/sync.out")"

	# a second sync is refused and leaves the row alone
	rc=0
	"$DRIVER" sync >"$work/sync2.out" 2>"$work/sync2.err" || rc=$?
	[ "$rc" = 1 ] || die "second sync: exit $rc, expected 1"
	grep -q '^zdm: error: another zdm sync is already running for migration split_name; one at a time$' \
		"$work/sync2.err" || die "second sync: $(cat "$work/sync2.err")"
	grep -q "^DETAIL: held by backend pid [0-9]* .*; zdm sync process $sync_pid on " \
		"$work/sync2.err" || die "second sync detail: $(cat "$work/sync2.err")"
	[ "$(cdc_field "state || ' ' || pid")" = "running $sync_pid" ] ||
		die "the refused sync touched zdm.cdc: $(cdc_field "state || ' ' || pid")"

	kill -TERM "$sync_pid"
	wait_sync 0 10
	[ "$(cdc_field state)" = stopped ] || die "state $(cdc_field state) after SIGTERM"
	grep -q '^zdm sync: split_name: stopped, interrupted by a signal' "$work/sync.out" ||
		die "no stop line: $(cat "$work/sync.out")"
}

# writer SECONDS: random old- and new-shape writes, in small transactions.
writer()
{
	cat >"$work/write.sql" <<'EOF'
\set id random(1, 2000)
\set shape random(1, 3)
BEGIN;
UPDATE public.users SET name = 'N' || :id || ' ' || md5(random()::text)
  WHERE id = :id AND :shape = 1;
UPDATE public.users SET zdm_new_last_name = md5(random()::text)
  WHERE id = :id AND :shape = 2;
INSERT INTO public.users (id, name) VALUES (100000 + :id * 10 + :shape, 'New ' || :id)
  ON CONFLICT (id) DO UPDATE SET email = md5(random()::text);
COMMIT;
EOF
	"$PGBIN/pgbench" -n -c 2 -T "$1" -f "$work/write.sql" postgres \
		>"$work/pgbench.out" 2>&1
}

case_replay()
{
	local wpid
	setup 2000
	backfill
	start_sync
	writer 8 &
	wpid=$!
	sleep 2
	kill -9 "$sync_pid" 2>/dev/null || die "zdm sync exited by itself"
	wait "$sync_pid" 2>/dev/null || true
	sync_pid=
	sleep 0.5
	start_sync
	sleep 2
	kill -9 "$sync_pid" 2>/dev/null || die "zdm sync exited by itself"
	wait "$sync_pid" 2>/dev/null || true
	sync_pid=
	start_sync
	wait "$wpid" || { cat "$work/pgbench.out" >&2; die "the writer failed"; }
	grep 'number of transactions actually processed' "$work/pgbench.out" || true
	lsn=$(qv -c "SELECT pg_current_wal_lsn()")
	wait_until "SELECT applied_lsn >= '$lsn' FROM zdm.cdc
	            WHERE migration = 'split_name'" 60
	wait_until "$converged_sql" 10
	[ "$(qv -c "SELECT count(*) FROM public.users WHERE name IS NULL
	           OR zdm_new_first_name IS NULL")" = 0 ] || die "rows left unsynced"
	kill -TERM "$sync_pid"
	wait_sync 0 10
	[ "$(cdc_field state)" = stopped ] || die "state $(cdc_field state)"
}

case_stop()
{
	setup 10
	backfill
	start_sync
	qv -c "UPDATE zdm.cdc SET stop_requested = true WHERE migration = 'split_name'"
	wait_sync 0 5
	[ "$(cdc_field state)" = stopped ] || die "state $(cdc_field state)"
	grep -q 'stopped, stop requested (zdm.cdc.stop_requested)' "$work/sync.out" ||
		die "no stop line: $(cat "$work/sync.out")"
	# a stop request found at start: not started
	"$DRIVER" sync >>"$work/sync.out" 2>>"$work/sync.err" || die "exit $? with stop_requested set"
	grep -q 'not started: a stop was requested before it started' "$work/sync.out" ||
		die "no 'not started' line: $(cat "$work/sync.out")"
	qv -c "UPDATE zdm.cdc SET stop_requested = false WHERE migration = 'split_name'"

	# the migration rolled back
	start_sync
	qv -c "UPDATE zdm.migrations SET state = 'rolled_back' WHERE migration = 'split_name'"
	wait_sync 0 5
	grep -q 'stopped, the migration was rolled back' "$work/sync.out" ||
		die "no rollback stop line: $(cat "$work/sync.out")"

	# the slot dropped under a running sync by a rollback
	qv -c "UPDATE zdm.migrations SET state = 'running' WHERE migration = 'split_name'"
	start_sync
	qv -c "UPDATE zdm.migrations SET state = 'rolling_back' WHERE migration = 'split_name'"
	qv -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
	      WHERE slot_name = 'zdm_split_name'" >/dev/null
	qv -c "SELECT pg_drop_replication_slot('zdm_split_name')" >/dev/null ||
		{ sleep 0.5; qv -c "SELECT pg_drop_replication_slot('zdm_split_name')" >/dev/null; }
	wait_sync 0 15
	grep -q 'stopped, its slot was dropped' "$work/sync.out" ||
		die "no slot-dropped line: $(cat "$work/sync.out")"
	[ "$(cdc_field state)" = stopped ] || die "state $(cdc_field state)"
}

case_quiet()
{
	local lsn
	setup 10
	backfill
	start_sync
	qv -c "INSERT INTO public.other (v) SELECT 'x' FROM generate_series(1, 5000)"
	lsn=$(qv -c "SELECT pg_current_wal_lsn()")
	wait_until "SELECT confirmed_flush_lsn >= '$lsn' FROM pg_replication_slots
	            WHERE slot_name = 'zdm_split_name'" 10
	# nothing at all written by anyone but zdm: the heartbeat moves it
	lsn=$(qv -c "SELECT pg_current_wal_lsn()")
	wait_until "SELECT confirmed_flush_lsn >= '$lsn' FROM pg_replication_slots
	            WHERE slot_name = 'zdm_split_name'" 10
	wait_until "SELECT applied_lsn >= '$lsn' AND lag_seconds < 1 FROM zdm.cdc
	            WHERE migration = 'split_name'" 10
	kill -INT "$sync_pid"
	wait_sync 0 10
}

case_errors()
{
	local rc
	# no journal
	rc=0
	"$DRIVER" sync >"$work/sync.out" 2>"$work/sync.err" || rc=$?
	[ "$rc" = 1 ] || die "no journal: exit $rc"
	grep -q '^zdm: error: there is no zdm journal in this database: migration split_name has not started$' \
		"$work/sync.err" || die "no journal: $(cat "$work/sync.err")"
	grep -q '^HINT: run zdm apply split_name_cdc.plan first' "$work/sync.err" ||
		die "no journal hint: $(cat "$work/sync.err")"

	setup 10
	backfill
	rc=0
	"$DRIVER" sync -x >"$work/sync.out" 2>"$work/sync.err" || rc=$?
	[ "$rc" = 1 ] || die "broken statement: exit $rc"
	grep -q '^zdm: error: table public.users, change at split_name_cdc.zdm:4:3: the forward statement cannot be prepared: column "no_such_column" does not exist (SQLSTATE 42703)$' \
		"$work/sync.err" || die "broken statement: $(cat "$work/sync.err")"
	grep -q '^DETAIL: statement: WITH zdm_event AS MATERIALIZED .* UPDATE public.users SET zdm_new_first_name = no_such_column' \
		"$work/sync.err" || die "broken statement detail: $(cat "$work/sync.err")"
	[ "$(cdc_field state)" = failed ] || die "state $(cdc_field state)"

	# no REPLICA IDENTITY FULL: an UPDATE cannot be told apart
	: >"$work/sync.err"
	start_sync
	qv -c "ALTER TABLE public.users REPLICA IDENTITY DEFAULT"
	qv -c "UPDATE public.users SET name = 'Ann Other' WHERE id = 1"
	wait_sync 1 10
	grep -q '^zdm: error: table public.users, column name: the UPDATE at LSN [0-9A-F]*/[0-9A-F]* has no before-image of it, which is needed to tell whether it changed$' \
		"$work/sync.err" || die "replica identity: $(cat "$work/sync.err")"
	grep -q '^HINT: the table needs REPLICA IDENTITY FULL' "$work/sync.err" ||
		die "replica identity hint: $(cat "$work/sync.err")"
	[ "$(cdc_field state)" = failed ] || die "state $(cdc_field state)"
	cdc_field last_error | grep -q 'has no before-image of it' ||
		die "last_error: $(cdc_field last_error)"
	# a restart replays the same change and fails the same way: the
	# acknowledged position never passes a change that was not applied
	start_sync_bg
	wait_sync 1 20
	[ "$(grep -c 'has no before-image of it' "$work/sync.err")" = 2 ] ||
		die "the replayed change should die again: $(cat "$work/sync.err")"
}

case_throughput()
{
	local lsn start end n=200000 rate
	setup 1000
	backfill
	qv -c "CHECKPOINT"
	# written first, applied after: the rate of the applier alone
	qv <<EOF
DO \$\$ BEGIN FOR i IN 1..$((n / 2)) LOOP
  UPDATE public.users SET name = 'N' || i || ' L' || i WHERE id = i % 1000 + 1;
END LOOP; END \$\$;
DO \$\$ BEGIN FOR i IN $((n / 2 + 1))..$n LOOP
  UPDATE public.users SET name = 'N' || i || ' L' || i WHERE id = i % 1000 + 1;
END LOOP; END \$\$;
EOF
	lsn=$(qv -c "SELECT pg_current_wal_lsn()")
	start=$(date +%s.%N)
	start_sync -P 2
	wait_until "SELECT applied_lsn >= '$lsn' FROM zdm.cdc
	            WHERE migration = 'split_name'" 120
	end=$(date +%s.%N)
	rate=$(awk "BEGIN { printf \"%.0f\", $n / ($end - $start) }")
	echo "$me: throughput: $n old-shape updates applied in $(awk "BEGIN { printf \"%.2f\", $end - $start }") s: $rate events/s (from start of zdm sync)"
	grep 'changes/s' "$work/sync.out" || true
	[ "$(cdc_field changes_applied)" -ge 1000 ] || die "applied $(cdc_field changes_applied)"
	wait_until "$converged_sql" 10
	kill -TERM "$sync_pid"
	wait_sync 0 10
}

case_writer_wait()
{
	local pid xid
	setup 10
	backfill
	# every session but the stuck writer commits without waiting
	qv -c "ALTER DATABASE postgres SET synchronous_commit = local"
	qv -c "ALTER SYSTEM SET synchronous_standby_names = 'zdm_no_such_standby'"
	qv -c "SELECT pg_reload_conf()" >/dev/null
	start_sync
	PGOPTIONS="-c synchronous_commit=on" PGAPPNAME=zdm_stuck_writer \
		qv -c "UPDATE public.users SET name = 'Stuck Writer' WHERE id = 1
		      RETURNING pg_current_xact_id()" >"$work/writer.out" 2>&1 &
	writer_pid=$!
	wait_until "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
	            WHERE application_name = 'zdm_stuck_writer'
	              AND wait_event = 'SyncRep')" 20
	pid=$(qv -c "SELECT pid FROM pg_stat_activity
	            WHERE application_name = 'zdm_stuck_writer'")
	xid=$(qv -c "SELECT backend_xid FROM pg_stat_activity WHERE pid = $pid")
	# the commit is flushed: the change is decoded and sent now; a later
	# write of another row must queue behind it (changes apply in order)
	qv -c "UPDATE public.users SET name = 'After Stuck' WHERE id = 2"
	grep -q "waiting .* for transaction $xid to end" "$work/sync.out" &&
		die "reported a wait before any"
	for ((i = 0; i < 150; i++)); do
		grep -q "waiting .* for transaction $xid to end" "$work/sync.out" && break
		sleep 0.1
	done
	grep -q "waiting .* for transaction $xid to end" "$work/sync.out" ||
		die "zdm sync did not say it waits for transaction $xid"
	kill -0 "$writer_pid" || die "the writer is not waiting"
	[ "$(row 1)" = "First1 Last1|First1|Last1|f" ] ||
		die "row 1 changed while its writer still ran: $(row 1)"
	[ "$(row 2)" = "After Stuck|First2|Last2|f" ] ||
		die "row 2 applied before the change ahead of it: $(row 2)"
	kill -0 "$sync_pid" || die "zdm sync exited while it waited"
	# released: the commit returns (with a warning) and the proc array
	# lets go of it
	qv -c "SELECT pg_cancel_backend($pid)" >/dev/null
	wait "$writer_pid" || die "the writer failed: $(cat "$work/writer.out")"
	writer_pid=
	expect_row 1 "Stuck Writer|Stuck|Writer|f" 10
	expect_row 2 "After Stuck|After|Stuck|f" 10
	kill -TERM "$sync_pid"
	wait_sync 0 10
}

case_locks()
{
	local client
	setup 10
	backfill
	# stream order: row 2, then row 1; one batch, one set
	qv -c "UPDATE public.users SET name = 'Two Locked' WHERE id = 2"
	qv -c "UPDATE public.users SET name = 'One Locked' WHERE id = 1"
	# a client holds row 1, then wants row 2: the batch that changes row 2
	# and waits for row 1 must give way, not deadlock with the client
	qv -c "BEGIN" -c "UPDATE public.users SET email = 'held@example.com' WHERE id = 1" \
		-c "SELECT pg_sleep(2)" \
		-c "UPDATE public.users SET email = 'held2@example.com' WHERE id = 2" \
		-c "COMMIT" >"$work/client.out" 2>&1 &
	client=$!
	wait_until "SELECT EXISTS (SELECT FROM pg_stat_activity
	            WHERE query = 'SELECT pg_sleep(2)')" 10
	start_sync -P 1
	wait "$client" || die "the client failed: $(cat "$work/client.out")"
	expect_row 1 "One Locked|One|Locked|f" 20
	expect_row 2 "Two Locked|Two|Locked|f" 20
	[ "$(qv -c "SELECT string_agg(email, ',' ORDER BY id) FROM public.users
	           WHERE id <= 2")" = "held@example.com,held2@example.com" ] ||
		die "the client's writes are not there"
	kill -0 "$sync_pid" || die "zdm sync exited"
	kill -TERM "$sync_pid"
	wait_sync 0 10
}

case "$case" in
shapes) case_shapes ;;
replay) case_replay ;;
stop) case_stop ;;
quiet) case_quiet ;;
errors) case_errors ;;
throughput) case_throughput ;;
writer_wait) case_writer_wait ;;
locks) case_locks ;;
*) die "unknown case $case" ;;
esac
echo "$me: $case: ok"
