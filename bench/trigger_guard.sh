#!/usr/bin/env bash
#
# trigger_guard.sh -- what the sync trigger's guard costs a client write (a
# script, not a test: it measures and reports, it asserts nothing about
# speed).
#
#   bash bench/trigger_guard.sh             # 3 runs, about 2 minutes here
#   ZDM_BENCH_RUNS=1 ZDM_BENCH_SECONDS=5 ZDM_BENCH_DOC=- bash bench/trigger_guard.sh
#
# Issue 14 item 2: a value the using cannot convert must not make a
# client's write fail, so every computation in the sync trigger runs in a
# PL/pgSQL block that catches errors (a subtransaction per block entered).
# What that costs is measured where it is paid: old-version clients
# updating name (bench/cdc_old_write.sql: every write runs the trigger and
# its using) on the users table of users_template.sql, ZDM_BENCH_ROWS rows,
# after expand of bench/cdc_trigger_split_name.zdm (approve = (backfill):
# triggers in place, every row pending), pgbench at full speed, 2 clients,
# ZDM_BENCH_SECONDS, in three setups on fresh copies of one template:
#   none      no migration (the baseline: the same UPDATE, no trigger);
#   guarded   the trigger function the plan creates;
#   bare      the same function with its guards taken out (each BEGIN ...
#             EXCEPTION WHEN OTHERS THEN ... END; reduced to its body), as
#             zdm wrote it before the guard.
# tps, its ratio to none and to bare within each run, failed client
# statements; medians of ZDM_BENCH_RUNS runs, setups rotated each run.
set -euo pipefail
shopt -s inherit_errexit

bench_me=trigger_guard.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rows=${ZDM_BENCH_ROWS:-200000}
runs=${ZDM_BENCH_RUNS:-3}
seconds=${ZDM_BENCH_SECONDS:-15}
build=${ZDM_BENCH_BUILD:-$root/build/bench}
doc=${ZDM_BENCH_DOC:-$root/docs/performance.md}

bench_positive ZDM_BENCH_ROWS "$rows"
bench_positive ZDM_BENCH_RUNS "$runs"
bench_positive ZDM_BENCH_SECONDS "$seconds"
bench_check_doc "$doc" bench-trigger-guard
bench_check_tools cmake psql pgbench python3

bench_started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init_work
bench_build "$build" zdm zdmc
zdm=$build/zdm
zdmc=$build/zdmc
plan=$work/guard.plan
"$zdmc" compile "$root/bench/cdc_trigger_split_name.zdm" -o "$plan"

# The plan's sync function with its guards taken out: each "BEGIN" line
# of a block dropped, and from its "EXCEPTION WHEN OTHERS THEN" to its
# "END;" (same indentation), so the statements inside run bare.
python3 - "$plan" "$work/bare.sql" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
start = text.index("      CREATE FUNCTION public.zdm_sync_users()")
body = []
for line in text[start:].splitlines():
    if not line.startswith("      ") and line.strip():
        break
    body.append(line[6:])
out, skip = [], None
for line in body:
    ind = len(line) - len(line.lstrip())
    if skip is not None:
        if line.strip() == "END;" and ind == skip:
            skip = None
        continue
    if line.strip() == "BEGIN" and ind > 0:
        continue
    if line.strip() == "EXCEPTION WHEN OTHERS THEN":
        skip = ind
        continue
    out.append(line)
sql = "\n".join(out).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
if "EXCEPTION" in sql:
    sys.exit("bare.sql still holds an EXCEPTION block")
open(sys.argv[2], "w").write(sql + ";\n")
PY
grep -q 'zdm_unconverted' "$work/bare.sql" || die "bare.sql is not the sync function"

bench_server_start
log "PostgreSQL $pg_version; building the $rows-row users table"
q postgres -c 'CREATE DATABASE bench_template'
q bench_template -v rows="$rows" -f "$root/bench/users_template.sql"

# run_setup RUN none|guarded|bare
run_setup()
{
	local run=$1 setup=$2 db=bench_guard_$2_$1 off tps failed
	fresh_db "$db" quiet
	if [ "$setup" != none ]; then
		local rc=0
		"$zdm" apply "$plan" --db "dbname=$db" >"$work/apply-$db.out" 2>&1 || rc=$?
		[ "$rc" = 4 ] || { cat "$work/apply-$db.out" >&2; die "zdm apply exited $rc, expected 4 (after expand)"; }
		[ "$setup" = bare ] && q "$db" -f "$work/bare.sql" >/dev/null
	fi
	off=$(log_offset)
	pgbench -n -c 2 -j 2 -T "$seconds" -D rows="$rows" -f "$root/bench/cdc_old_write.sql" \
		"$db" >"$work/pgbench-$db.out" 2>&1 || { cat "$work/pgbench-$db.out" >&2; die "pgbench failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench-$db.out" | head -1)
	failed=$(( $(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench-$db.out" | head -1) + 0 \
		+ $(server_errors_since "$off") ))
	if [ "$setup" != none ]; then
		# the trigger did its work: every row written is synced
		local bad
		bad=$(q "$db" -c "SELECT count(*) FROM public.users WHERE NOT zdm_sync_pending
		                    AND zdm_new_first_name IS DISTINCT FROM split_part(name, ' ', 1)")
		[ "$bad" = 0 ] || die "$setup: $bad rows synced wrong"
	fi
	[ "$run" = 0 ] && { drop_db "$db"; return; }
	record "$run" "$setup" tps "$tps"
	record "$run" "$setup" failed "$failed"
	drop_db "$db"
}

log "warm-up (discarded)"
run_setup 0 guarded
setups=(none guarded bare)
for ((run = 1; run <= runs; run++)); do
	for ((i = 0; i < ${#setups[@]}; i++)); do
		s=${setups[$(((i + run) % ${#setups[@]}))]}
		log "run $run of $runs: $s"
		run_setup "$run" "$s"
	done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$((SECONDS - bench_started))
{
	echo "Figures of one \`bash bench/trigger_guard.sh\` run ($runs runs, ${seconds} s of pgbench each,"
	echo "$(thousands "$rows") rows, PostgreSQL $pg_version, $(date -u +%Y-%m-%d), ${elapsed} s;"
	echo "load average $load_before before, $load_after after):"
	echo
	echo "| setup | tps (median) | / none | / bare | failed client statements |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	for s in none bare guarded; do
		echo "| $s | $(thousands "$(median "$s" tps)") | $(fmt "$(median_ratio "$s" tps none tps)" %.2f)x | $(fmt "$(median_ratio "$s" tps bare tps)" %.2f)x | $(total "^$s\$" failed) |"
	done
} >"$work/table.md"
cat "$work/table.md"
bench_write_doc "$work/table.md" "$doc" bench-trigger-guard
