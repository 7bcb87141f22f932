#!/usr/bin/env bash
#
# cdc_pgoutput_test.sh -- the native change source (runtime/cdc_pgoutput.c)
# against a real PostgreSQL (tests/lib/pg.sh, wal_level=logical), read with
# zdm_cdc_pgoutput_driver (tests/runtime/cdc_pgoutput_driver.c, whose
# comment gives the output format).  The publication, slot and replication
# origins are made here with psql, as a plan would.
#
#   tests/runtime/cdc_pgoutput_test.sh decode|ack|keepalive|busy|throughput
#
#   decode      exact output for: inserts, updates, deletes; NULLs, unicode,
#               quotes, backslashes, newlines and tabs in values; dates,
#               intervals, floats, json, bytea and arrays in text form under
#               a database whose DateStyle is 'SQL, DMY' (the source forces
#               ISO); an unchanged TOASTed value; REPLICA IDENTITY DEFAULT
#               (old key only when the key changes) vs FULL (the whole old
#               row, TOASTed values included); two tables in one
#               transaction; a table re-described after ADD COLUMN; a
#               truncate of two tables (one change each); a transaction
#               from a session with replication origin zdm_apply flagged
#               own, one with origin other_origin and plain ones not; a
#               rolled-back transaction and an unpublished table never
#               appear.
#   ack         acking only the 3rd of 6 transactions sets the slot's
#               confirmed_flush_lsn to exactly its position; a new session
#               resumes after it and sees the 3 unacked again, identically;
#               after acking all, a third session sees nothing; while a
#               session runs, an ack reaches confirmed_flush_lsn within
#               seconds, and WAL written to unpublished tables moves it on
#               once everything is acked (the slot pins no WAL for a quiet
#               table).
#   keepalive   wal_sender_timeout 2s, a status interval of 60 s: quiet
#               periods of 6 s between changes, kept alive only by answering
#               the server's keepalives; then the same with the default
#               interval.  No timeout in the server log.
#   busy        a second reader of a slot in use waits 10 s for it, then
#               fails (exit 1) saying which process holds it; the first
#               reader carries on.  A missing slot or publication, or a
#               slot with another plugin, fails at once, saying so; so does
#               a publication that does not publish insert, update and
#               delete, or has a row filter or a column list for a table
#               (one without truncate is fine).
#   throughput  200,000 single-row UPDATEs in two transactions, decoded:
#               the rate is printed (informational), the count must match.
#
# The driver comes from the environment (ctest sets it): ZDM_CDC_DRIVER, by
# default from build/release.
set -euo pipefail

me=cdc_pgoutput_test.sh
case=${1:?usage: cdc_pgoutput_test.sh decode|ack|keepalive|busy|throughput}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DRIVER=${ZDM_CDC_DRIVER:-$root/build/release/tests/zdm_cdc_pgoutput_driver}

[ -x "$DRIVER" ] || { echo "$me: $DRIVER is not built" >&2; exit 2; }

# shellcheck source=../lib/pg.sh
. "$root/tests/lib/pg.sh"

work=$(mktemp -d)
bg_pids=()
cleanup()
{
	local pid
	for pid in "${bg_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
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

# driver ARGS... : run it in the foreground; stdout to $work/out, stderr to
# $work/err; die on a non-zero exit.
driver()
{
	if ! "$DRIVER" "$@" zdm_slot zdm_pub >"$work/out" 2>"$work/err"; then
		cat "$work/err" >&2
		die "driver $* failed"
	fi
}

# expect_out FILE: $work/out must be FILE's content exactly.
expect_out()
{
	if ! diff -u "$1" "$work/out" >&2; then
		die "decoded output differs (- expected, + got)"
	fi
}

slot_flush()
{
	qv -c "SELECT confirmed_flush_lsn FROM pg_replication_slots
	      WHERE slot_name = 'zdm_slot'"
}

# lsn_ge A B: A >= B as LSNs.
lsn_ge()
{
	[ "$(qv -c "SELECT '$1'::pg_lsn >= '$2'::pg_lsn")" = t ]
}

# wait_for COUNT FILE SECONDS: until FILE has COUNT lines.
wait_for()
{
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(wc -l <"$2")" -ge "$1" ] && return 0
		sleep 0.1
	done
	die "waited $3 s for $1 lines in $2; got: $(cat "$2")"
}

pg_start || die "the server did not start"
export PGDATABASE=postgres

# The publication, slot and origins, as a plan makes them.
setup()
{
	qv <<'EOF'
CREATE SCHEMA app;
CREATE TABLE app.users (id bigint PRIMARY KEY, name text, email text,
                        bio text);
CREATE TABLE app."Order Items" (id int PRIMARY KEY, qty int, note text);
ALTER TABLE app."Order Items" REPLICA IDENTITY FULL;
CREATE TABLE app.kinds (id int PRIMARY KEY, ts timestamptz, d date,
                        iv interval, f float8, j jsonb, b bytea, arr int[],
                        flag boolean, n numeric);
CREATE TABLE app.unpublished (id serial PRIMARY KEY, v text);
CREATE PUBLICATION zdm_pub FOR TABLE app.users, app."Order Items", app.kinds;
SELECT pg_create_logical_replication_slot('zdm_slot', 'pgoutput') \g /dev/null
SELECT pg_replication_origin_create('zdm_apply') \g /dev/null
SELECT pg_replication_origin_create('other_origin') \g /dev/null
EOF
}

case_decode()
{
	qv -c "ALTER DATABASE postgres SET datestyle = 'SQL, DMY'"
	qv -c "ALTER DATABASE postgres SET timezone = 'UTC'"
	setup
	qv <<'EOF'
INSERT INTO app.users VALUES (1, 'Ann', NULL, NULL);
INSERT INTO app.users VALUES
  (2, E'O''Brien\nline 2\\end\ttab', 'zoë@例え.jp', 'Ω ☃ 😀 "quoted"');
UPDATE app.users SET name = 'Annie' WHERE id = 1;
UPDATE app.users SET id = 10 WHERE id = 1;
DELETE FROM app.users WHERE id = 2;
BEGIN;
INSERT INTO app.users VALUES (3, 'never', NULL, NULL);
ROLLBACK;
INSERT INTO app.unpublished (v) VALUES ('not published');
INSERT INTO app.users VALUES (4, 'Big', NULL,
  (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 1000) i));
UPDATE app.users SET name = 'Bigger' WHERE id = 4;
INSERT INTO app."Order Items" VALUES (1, 5, 'first');
UPDATE app."Order Items" SET qty = 6 WHERE id = 1;
INSERT INTO app."Order Items" VALUES (3, 1,
  (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 1000) i));
UPDATE app."Order Items" SET qty = 2 WHERE id = 3;
DELETE FROM app."Order Items" WHERE id = 1;
BEGIN;
INSERT INTO app.users VALUES (5, 'two tables', NULL, NULL);
INSERT INTO app."Order Items" VALUES (2, 1, NULL);
COMMIT;
INSERT INTO app.kinds VALUES (1, '2024-01-02 03:04:05.5+00', '2024-02-29',
  '1 day 02:03:04', 0.1, '{"a": [1, "x"]}', '\x00ff', '{1,NULL,3}', true,
  12345.678900);
ALTER TABLE app.users ADD COLUMN age int;
INSERT INTO app.users (id, name, age) VALUES (6, 'Sue', 41);
EOF
	# an own write (origin zdm_apply), and someone else's (other_origin)
	qv <<'EOF'
SELECT pg_replication_origin_session_setup('zdm_apply') \g /dev/null
INSERT INTO app.users (id, name) VALUES (7, 'by zdm');
BEGIN;
UPDATE app.users SET name = 'by zdm, again' WHERE id = 7;
DELETE FROM app.users WHERE id = 6;
COMMIT;
EOF
	qv <<'EOF'
SELECT pg_replication_origin_session_setup('other_origin') \g /dev/null
INSERT INTO app.users (id, name) VALUES (8, 'by a subscriber');
EOF
	qv <<'EOF'
UPDATE app.users SET name = 'not own' WHERE id = 7;
TRUNCATE app.users, app."Order Items";
EOF
	driver -t 2000
	cat >"$work/want" <<'EOF'
INSERT app.users new(id='1' name='Ann' email=NULL bio=NULL)
INSERT app.users new(id='2' name='O''Brien\nline 2\\end\ttab' email='zoë@例え.jp' bio='Ω ☃ 😀 "quoted"')
UPDATE app.users new(id='1' name='Annie' email=NULL bio=NULL)
UPDATE app.users old(id='1') new(id='10' name='Annie' email=NULL bio=NULL)
DELETE app.users old(id='2')
INSERT app.users new(id='4' name='Big' email=NULL bio='c4ca4238a0b92382'...<32000 bytes>)
UPDATE app.users new(id='4' name='Bigger' email=NULL bio=<unchanged>)
INSERT app.Order Items new(id='1' qty='5' note='first')
UPDATE app.Order Items old(id='1' qty='5' note='first') new(id='1' qty='6' note='first')
INSERT app.Order Items new(id='3' qty='1' note='c4ca4238a0b92382'...<32000 bytes>)
UPDATE app.Order Items old(id='3' qty='1' note='c4ca4238a0b92382'...<32000 bytes>) new(id='3' qty='2' note=<unchanged>)
DELETE app.Order Items old(id='1' qty='6' note='first')
INSERT app.users new(id='5' name='two tables' email=NULL bio=NULL)
INSERT app.Order Items new(id='2' qty='1' note=NULL)
INSERT app.kinds new(id='1' ts='2024-01-02 03:04:05.5+00' d='2024-02-29' iv='1 day 02:03:04' f='0.1' j='{"a": [1, "x"]}' b='\\x00ff' arr='{1,NULL,3}' flag='t' n='12345.678900')
INSERT app.users new(id='6' name='Sue' email=NULL bio=NULL age='41')
INSERT app.users own new(id='7' name='by zdm' email=NULL bio=NULL age=NULL)
UPDATE app.users own new(id='7' name='by zdm, again' email=NULL bio=NULL age=NULL)
DELETE app.users own old(id='6')
INSERT app.users new(id='8' name='by a subscriber' email=NULL bio=NULL age=NULL)
UPDATE app.users new(id='7' name='not own' email=NULL bio=NULL age=NULL)
TRUNCATE app.users
TRUNCATE app.Order Items
EOF
	expect_out "$work/want"
	# the default ack (everything) reached the slot
	grep -q '^acked ' "$work/err" || die "nothing acked: $(cat "$work/err")"
	# and a second session has nothing left to replay
	driver -t 1000
	[ ! -s "$work/out" ] || die "replayed after a full ack: $(cat "$work/out")"
}

case_ack()
{
	local c0 pos3 pos6 c1 i pid posr now
	setup
	c0=$(slot_flush)
	for i in 1 2 3 4 5 6; do
		qv -c "INSERT INTO app.users (id, name) VALUES ($i, 'u$i')"
	done
	driver -t 1500 -a 3 -l
	[ "$(wc -l <"$work/out")" = 6 ] || die "6 changes expected: $(cat "$work/out")"
	cp "$work/out" "$work/run1"
	pos3=$(sed -n '3s/.* @//p' "$work/run1")
	pos6=$(sed -n '6s/.* @//p' "$work/run1")
	# (one ack per batch, up to the 3rd change: its position is the last)
	[ "$(grep '^acked ' "$work/err" | tail -1)" = "acked $pos3" ] ||
		die "the last ack should be $pos3: $(cat "$work/err")"
	lsn_ge "$pos3" "$c0" && [ "$pos3" != "$c0" ] ||
		die "position $pos3 not after the slot's start $c0"
	c1=$(slot_flush)
	[ "$c1" = "$pos3" ] || die "confirmed_flush_lsn $c1, acked $pos3"

	# resume: the three unacked again, identical
	driver -t 1500 -l
	sed -n '4,6p' "$work/run1" >"$work/want"
	expect_out "$work/want"
	c1=$(slot_flush)
	lsn_ge "$c1" "$pos6" || die "confirmed_flush_lsn $c1 < $pos6 after acking all"
	driver -t 1000
	[ ! -s "$work/out" ] || die "replayed after a full ack: $(cat "$work/out")"

	# while a session runs: the ack arrives at once
	"$DRIVER" -t 8000 -l zdm_slot zdm_pub >"$work/bg" 2>"$work/bgerr" &
	pid=$!
	bg_pids+=("$pid")
	sleep 0.5
	qv -c "INSERT INTO app.users (id, name) VALUES (7, 'u7')"
	wait_for 1 "$work/bg" 10
	posr=$(sed -n '1s/.* @//p' "$work/bg")
	for ((i = 0; i < 50; i++)); do
		lsn_ge "$(slot_flush)" "$posr" && break
		sleep 0.1
	done
	lsn_ge "$(slot_flush)" "$posr" || die "ack of $posr not in the slot: $(slot_flush)"
	[ "$(qv -c "SELECT active FROM pg_replication_slots")" = t ] ||
		die "the session should still be running"
	# WAL for unpublished tables only: the slot follows it
	qv -c "INSERT INTO app.unpublished (v) SELECT 'x' FROM generate_series(1, 5000)"
	now=$(qv -c "SELECT pg_current_wal_lsn()")
	for ((i = 0; i < 50; i++)); do
		lsn_ge "$(slot_flush)" "$now" && break
		sleep 0.1
	done
	lsn_ge "$(slot_flush)" "$now" ||
		die "quiet WAL not confirmed: slot at $(slot_flush), WAL at $now"
	wait "$pid" || { cat "$work/bgerr" >&2; die "background driver failed"; }
	[ "$(wc -l <"$work/bg")" = 1 ] || die "one change expected: $(cat "$work/bg")"
}

case_keepalive()
{
	local pid interval
	setup
	qv -c "ALTER SYSTEM SET wal_sender_timeout = '2s'"
	qv -c "SELECT pg_reload_conf()" >/dev/null
	for interval in 60000 0; do
		"$DRIVER" -t 20000 -n 2 -i "$interval" zdm_slot zdm_pub \
			>"$work/bg" 2>"$work/bgerr" &
		pid=$!
		bg_pids+=("$pid")
		sleep 0.5
		qv -c "INSERT INTO app.users (id, name) VALUES (1, 'before')"
		wait_for 1 "$work/bg" 10
		sleep 6
		qv -c "DELETE FROM app.users WHERE id = 1"
		wait "$pid" || { cat "$work/bgerr" >&2; die "driver (status interval $interval) failed"; }
		cat >"$work/want" <<'EOF'
INSERT app.users new(id='1' name='before' email=NULL bio=NULL)
DELETE app.users old(id='1')
EOF
		cp "$work/bg" "$work/out"
		expect_out "$work/want"
		grep -q 'keepalives [1-9]' "$work/bgerr" ||
			die "no keepalive seen: $(cat "$work/bgerr")"
	done
	if pg_log | grep -q 'replication timeout'; then
		die "the server timed a session out"
	fi
}

# refuse ARGS... -- PATTERN: the driver must exit 1 with PATTERN on stderr.
refuse()
{
	local args=() rc=0
	while [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	shift
	"$DRIVER" "${args[@]}" >"$work/out" 2>"$work/err" || rc=$?
	[ "$rc" = 1 ] || die "driver ${args[*]}: exit $rc, expected 1"
	grep -qF -- "$1" "$work/err" ||
		die "driver ${args[*]}: expected '$1' in: $(cat "$work/err")"
}

case_busy()
{
	local pid holder start i
	setup
	"$DRIVER" -t 15000 -n 1 zdm_slot zdm_pub >"$work/bg" 2>"$work/bgerr" &
	pid=$!
	bg_pids+=("$pid")
	for ((i = 0; i < 50; i++)); do
		holder=$(qv -c "SELECT active_pid FROM pg_replication_slots")
		[ -n "$holder" ] && break
		sleep 0.1
	done
	[ -n "$holder" ] || die "the first reader never took the slot"
	start=$SECONDS
	refuse zdm_slot zdm_pub -- \
		"zdm: error: replication slot \"zdm_slot\" is in use by process $holder"
	grep -qx 'HINT: another reader holds the slot; only one may read it at a time' \
		"$work/err" || die "no hint: $(cat "$work/err")"
	[ $((SECONDS - start)) -ge 9 ] || die "gave up before waiting 10 s"
	qv -c "INSERT INTO app.users (id, name) VALUES (1, 'still read')"
	wait "$pid" || { cat "$work/bgerr" >&2; die "the first reader failed"; }
	grep -q "still read" "$work/bg" || die "the first reader missed the change"

	refuse no_such_slot zdm_pub -- \
		'zdm: error: replication slot "no_such_slot" does not exist'
	refuse zdm_slot no_such_pub -- \
		'zdm: error: publication "no_such_pub" does not exist'
	refuse 'Bad-Name' zdm_pub -- \
		'zdm: error: invalid replication slot name "Bad-Name"'
	qv -c "SELECT pg_create_logical_replication_slot('td_slot', 'test_decoding')" >/dev/null
	refuse td_slot zdm_pub -- \
		'zdm: error: replication slot "td_slot" is a logical slot with plugin "test_decoding", not a logical slot with pgoutput'

	# a publication that would hide changes or columns is refused
	qv <<'EOF'
CREATE PUBLICATION p_ins FOR TABLE app.users WITH (publish = 'insert');
CREATE PUBLICATION p_noupd FOR TABLE app.users
  WITH (publish = 'insert, delete, truncate');
CREATE PUBLICATION p_where FOR TABLE app.users WHERE (id > 10), app.kinds;
CREATE PUBLICATION p_cols FOR TABLE app.users (id, name),
  app."Order Items" (id, qty), app.kinds;
CREATE PUBLICATION p_notrunc FOR TABLE app.users
  WITH (publish = 'insert, update, delete');
EOF
	refuse zdm_slot p_ins -- \
		'zdm: error: publication "p_ins" does not publish update, delete'
	grep -qxF "HINT: zdm needs every insert, update and delete: ALTER PUBLICATION ... SET (publish = 'insert, update, delete, truncate')" \
		"$work/err" || die "no hint: $(cat "$work/err")"
	refuse zdm_slot p_noupd -- \
		'zdm: error: publication "p_noupd" does not publish update'
	refuse zdm_slot p_where -- \
		'zdm: error: publication "p_where" has a row filter for app.users'
	grep -qxF 'HINT: zdm needs every change of its tables: publish them without a WHERE clause' \
		"$work/err" || die "no hint: $(cat "$work/err")"
	refuse zdm_slot p_cols -- \
		'zdm: error: publication "p_cols" has a column list for app."Order Items", app.users'
	grep -qxF 'HINT: zdm needs every column of its tables: publish them without a column list' \
		"$work/err" || die "no hint: $(cat "$work/err")"
	# truncate is optional
	"$DRIVER" -t 300 zdm_slot p_notrunc >"$work/out" 2>"$work/err" ||
		die "a publication without truncate was refused: $(cat "$work/err")"
}

case_throughput()
{
	local start end
	qv <<'EOF'
CREATE TABLE public.bench (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO public.bench SELECT i, 0 FROM generate_series(1, 1000) i;
CREATE PUBLICATION zdm_pub FOR TABLE public.bench;
SELECT pg_create_logical_replication_slot('zdm_slot', 'pgoutput') \g /dev/null
EOF
	start=$(date +%s.%N)
	qv <<'EOF'
DO $$ BEGIN FOR i IN 1..100000 LOOP
  UPDATE public.bench SET v = v + 1 WHERE id = i % 1000 + 1;
END LOOP; END $$;
DO $$ BEGIN FOR i IN 100001..200000 LOOP
  UPDATE public.bench SET v = v + 1 WHERE id = i % 1000 + 1;
END LOOP; END $$;
EOF
	end=$(date +%s.%N)
	echo "$me: 200000 single-row updates written in $(awk "BEGIN { printf \"%.2f\", $end - $start }") s"
	driver -t 3000 -q
	cat "$work/err"
	grep -q '^changes 200000 ' "$work/err" || die "200000 changes expected"
}

case "$case" in
decode) case_decode ;;
ack) case_ack ;;
keepalive) case_keepalive ;;
busy) case_busy ;;
throughput) case_throughput ;;
*)
	echo "$me: unknown case $case" >&2
	exit 2
	;;
esac
echo "$me: $case: ok"
