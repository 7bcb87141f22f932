#!/usr/bin/env bash
#
# apply_sequence.sh -- several migrations in order: `zdm apply DIR` (or
# several plans) and `zdm status` of a sequence and of the whole journal.
#
#   tests/runtime/apply_sequence.sh
#
# The sequence is plans/sequence/*.zdm (rename users.email, orders.amount to
# numeric units with an approval at contract, split users.name), compiled by
# this build's zdmc into a directory, on the users_and_orders fixture:
#   1. `zdm apply DIR --approve-all` applies the three in name order under
#      clients that write throughout (apply_sequence.sql: statements every
#      shape of the tables accepts); exit 0, "sequence done"; the clients
#      saw no error; the final columns are users_and_orders.columns; no zdm
#      object is left; apply_sequence.check.sql holds; the journal has the
#      three done, started in name order;
#   2. again, naming the three plans: each "already done, skipped", exit 0,
#      nothing added to the journal's events;
#   3. `zdm status` (no plan) lists the three, done, one line each;
#      `zdm status DIR` lists them with their plan files; `--json` too;
#   4. a copy of the sequence whose first (done) plan file was edited is
#      refused (exit 2, "is done, but with another plan"), nothing runs;
#   5. on a fresh database, without approvals: the first plan is done, the
#      second stops at its contract gate (exit 4) with a line naming it and
#      the third as not started, and the command that continues; the
#      journal has no row of the third;
#      `zdm status DIR` shows it "not started" (json: not_started); after
#      `zdm approve` the same command goes on to the third's switch gate,
#      and with --approve switch,contract (gates the second plan lacks are
#      not its business) finishes;
#   6. a sequence whose second plan fails preflight (a column that does not
#      exist): exit 2, a line naming that plan and the third as not started;
#      the first is done and neither the second nor the third has a row;
#   7. then the third applied alone: the sequence is now out of order and is
#      refused (exit 2, "out of order");
#   8. a directory with no plan: exit 2, nothing touched.
set -euo pipefail

me=apply_sequence.sh
# the fixture (users and orders); the sequence ends in that example's shape
example=users_and_orders
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

seq=$work/db
mkdir -p "$seq"
for src in "$root"/plans/sequence/*.zdm; do
	at_compile "$src" "db/$(basename "$src" .zdm)" >/dev/null
done
p1=$seq/001_rename_email.plan
p2=$seq/002_orders_amount.plan
p3=$seq/003_split_name.plan
for p in "$p1" "$p2" "$p3"; do
	[ -f "$p" ] || die "$p was not compiled"
done

# seq_traffic_start DB: the clients of apply_sequence.sql (tag old).
seq_traffic_start()
{
	rm -f "$work/stop.seq"
	"$ZDM_TRAFFIC" --db "dbname=$1" --search-path public \
		--script "$root/tests/runtime/apply_sequence.sql" \
		--stop-file "$work/stop.seq" --clients 2 --id-range "$CLIENT_IDS" \
		--tag old --pause-ms 2 --max-seconds 240 >"$work/traffic.seq" 2>&1 &
	at_traffic_pid[seq]=$!
	say "traffic started"
}

# seq_check_data DB: each query of apply_sequence.check.sql returns 0.
seq_check_data()
{
	local db=$1 f got n=0
	rm -f "$work"/seqcheck.*.sql
	awk -v dir="$work" '/^-- check:/ { n++; file = sprintf("%s/seqcheck.%03d.sql", dir, n) }
		n { print > file }' "$root/tests/runtime/apply_sequence.check.sql"
	for f in "$work"/seqcheck.*.sql; do
		n=$((n + 1))
		got=$(q -d "$db" -At -f "$f") || die "check query failed: $(head -1 "$f")"
		[ "$got" = 0 ] || die "data check returned $got, not 0: $(head -1 "$f" | sed 's/^-- check: //')"
	done
	say "$n data checks hold"
}

# journal DB: "migration=state" of every migration, oldest first.
journal()
{
	if journal_exists "$1"; then
		val "$1" "SELECT string_agg(migration || '=' || state, ' ' ORDER BY started_at)
		  FROM zdm.migrations"
	fi
}

say "1. the sequence in one command, under traffic"
db=seq1
fresh_db $db
seq_traffic_start $db
sleep 1
zdm_bg apply1 apply "$seq" --db "dbname=$db" --approve-all --batch-size 500 --pause 5ms
zdm_wait "$zdm_pid" apply1 0 150
sleep 1
traffic_stop seq
o=$work/apply1.out
expect_grep "apply1" "$o" "^sequence: $p1 \\(migration seq_rename_email\\), 1 of 3\$"
expect_grep "apply1" "$o" "^sequence: $p2 \\(migration seq_orders_amount\\), 2 of 3\$"
expect_grep "apply1" "$o" "^sequence: $p3 \\(migration seq_split_name\\), 3 of 3\$"
expect_grep "apply1" "$o" '^sequence done: 3 migrations, 3 applied by this run, 0 already done$'
expect "journal after the sequence" "$(journal $db)" \
	"seq_rename_email=done seq_orders_amount=done seq_split_name=done"
check_columns $db
check_no_leftovers $db
seq_check_data $db

say "2. again, naming the plans: all skipped"
events=$(val $db "SELECT count(*) FROM zdm.events")
zdm_run apply2 0 apply "$p1" "$p2" "$p3" --db "dbname=$db"
for p in "$p1" "$p2" "$p3"; do
	expect_grep "apply2" "$work/apply2.out" "^sequence: $p \\(migration [a-z_]+\\), [1-3] of 3: already done, skipped\$"
done
expect_grep "apply2" "$work/apply2.out" '^sequence done: 3 migrations, 0 applied by this run, 3 already done$'
expect "journal events after the rerun" "$(val $db "SELECT count(*) FROM zdm.events")" "$events"

say "3. zdm status of the journal and of the sequence"
zdm_run status1 0 status --db "dbname=$db"
expect_grep "status" "$work/status1.out" '^MIGRATION +STATE +STEPS +STARTED +FINISHED$'
for m in seq_rename_email seq_orders_amount seq_split_name; do
	expect_grep "status" "$work/status1.out" "^$m +done +([0-9]+)/\\1 [a-z]+\\.[0-9]+ \\([a-z]+\\) +[0-9-]+T[0-9:+-]+ +[0-9-]+T[0-9:+-]+\$"
done
expect "status lines" "$(wc -l <"$work/status1.out")" 4
zdm_run status2 0 status "$seq" --db "dbname=$db"
expect_grep "status DIR" "$work/status2.out" '^PLAN +MIGRATION +STATE'
expect_grep "status DIR" "$work/status2.out" "^$p2 +seq_orders_amount +done "
zdm_run status3 0 status "$seq" --json --db "dbname=$db"
expect "status DIR --json" "$(python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))
print(" ".join("%s=%s/%s" % (m["migration"], m["state"], m["same_plan"]) for m in a))' "$work/status3.out")" \
	"seq_rename_email=done/True seq_orders_amount=done/True seq_split_name=done/True"

say "4. a done plan whose file changed"
changed=$work/db_changed
mkdir -p "$changed/src"
cp "$p2" "$p3" "$changed/"
sed 's/approve = none/approve = (switch)/' "$root/plans/sequence/001_rename_email.zdm" \
	>"$changed/src/001_rename_email.zdm"
(cd "$changed/src" && "$ZDMC" compile -o ../001_rename_email.plan 001_rename_email.zdm) ||
	die "the edited plan does not compile"
zdm_run changed 2 apply "$changed" --db "dbname=$db" --approve-all
expect_grep "changed plan" "$work/changed.err" "$changed/001_rename_email.plan: migration seq_rename_email is done, but with another plan"
grep -q '^sequence' "$work/changed.out" && die "a sequence with a changed plan started"
expect "journal events after the changed plan" "$(val $db "SELECT count(*) FROM zdm.events")" "$events"
zdm_run status4 0 status "$changed" --db "dbname=$db"
expect_grep "status of the changed plan" "$work/status4.out" "seq_rename_email +done \\(another plan!\\)"

say "5. a gate in the second plan stops the sequence"
db=seq2
fresh_db $db
zdm_run gate1 4 apply "$seq" --db "dbname=$db"
expect_grep "gate1" "$work/gate1.out" '^zdm: paused at gate "contract" of migration seq_orders_amount'
expect_grep "gate1" "$work/gate1.out" "^zdm: sequence stopped at $p2 \\(migration seq_orders_amount\\): paused at a gate that needs approval \\(exit 4\\); not started: $p3\$"
expect_grep "gate1" "$work/gate1.out" "^    zdm apply $seq\$"
expect "journal at the gate" "$(journal $db)" "seq_rename_email=done seq_orders_amount=paused"
zdm_run status5 0 status "$seq" --db "dbname=$db"
expect_grep "status at the gate" "$work/status5.out" "^$p2 +seq_orders_amount +paused at contract "
expect_grep "status at the gate" "$work/status5.out" "^$p3 +seq_split_name +not started +- +- +-\$"
zdm_run status6 0 status "$seq" --json --db "dbname=$db"
expect "status --json at the gate" "$(python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))
print(" ".join("%s=%s" % (m["migration"], m["state"]) for m in a))' "$work/status6.out")" \
	"seq_rename_email=done seq_orders_amount=paused seq_split_name=not_started"
zdm_run approve 0 approve "$p2" contract --by alice --db "dbname=$db"
zdm_run gate2 4 apply "$seq" --db "dbname=$db"
expect_grep "gate2" "$work/gate2.out" "^sequence: $p1 .*already done, skipped\$"
expect_grep "gate2" "$work/gate2.out" 'approved by alice at '
expect_grep "gate2" "$work/gate2.out" "^zdm: sequence stopped at $p3 \\(migration seq_split_name\\): paused at a gate that needs approval \\(exit 4\\); it was the last plan of the sequence\$"
zdm_run gate3 0 apply "$seq" --db "dbname=$db" --approve switch,contract
expect_grep "gate3" "$work/gate3.out" '^sequence done: 3 migrations, 1 applied by this run, 2 already done$'
expect "journal at the end" "$(journal $db)" \
	"seq_rename_email=done seq_orders_amount=done seq_split_name=done"
check_columns $db

say "6. a plan that fails preflight stops the sequence"
db=seq3
fresh_db $db
bad=$work/db_bad
mkdir -p "$bad/src"
cp "$p1" "$p3" "$bad/"
cat >"$bad/src/002_bad.zdm" <<'EOF'
migration seq_bad
  with (approve = none);

alter table users rename column no_such_column to other_name;
EOF
(cd "$bad/src" && "$ZDMC" compile -o ../002_bad.plan 002_bad.zdm) || die "002_bad.zdm does not compile"
zdm_run bad1 2 apply "$bad" --db "dbname=$db" --approve-all
expect_grep "bad1" "$work/bad1.err" 'no_such_column'
expect_grep "bad1" "$work/bad1.err" "^zdm: sequence stopped at $bad/002_bad.plan \\(migration seq_bad\\): refused, nothing of it touched \\(exit 2\\); not started: $bad/003_split_name.plan\$"
expect "journal after the failure" "$(journal $db)" "seq_rename_email=done"

say "7. a later plan applied alone: the sequence is out of order"
zdm_run alone 0 apply "$bad/003_split_name.plan" --db "dbname=$db" --approve-all
zdm_run order 2 apply "$bad" --db "dbname=$db" --approve-all
expect_grep "out of order" "$work/order.err" "the plans are out of order: $bad/002_bad.plan \\(migration seq_bad\\) is not started, but $bad/003_split_name.plan after it \\(migration seq_split_name\\) is already done"
grep -q '^sequence' "$work/order.out" && die "an out-of-order sequence started"

say "8. a directory without plans"
mkdir -p "$work/empty"
zdm_run empty 2 apply "$work/empty" --db "dbname=$db"
expect_grep "empty" "$work/empty.err" "directory $work/empty holds no .plan file"
at_done
