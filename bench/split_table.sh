#!/usr/bin/env bash
#
# split_table.sh -- the benchmark of split table against PostgreSQL's own
# statements (a script, not a test: it asserts nothing about speed, it
# measures and reports).
#
#   bash bench/split_table.sh          # 1M rows, 3 runs: about 3 minutes on 2 cores
#   ZDM_BENCH_ROWS=200000 ZDM_BENCH_RUNS=1 ZDM_BENCH_DOC=- bash bench/split_table.sh   # a quick look
#
# On a throwaway PostgreSQL with durable settings (bench/lib.sh), every
# method on a fresh copy of one template database: the 1M-row users table
# of users_template.sql with two more columns, bio (2 rows in 3) and
# avatar_url (4 rows in 5), rewritten by VACUUM FULL so the heap is as
# compact as a loaded table's, vacuumed, analyzed, prewarmed and
# checkpointed before the clock starts:
#
#   pg    PostgreSQL alone, what a team does with downtime: CREATE TABLE
#         user_profiles (id bigint PRIMARY KEY REFERENCES users, bio text,
#         avatar_url text), INSERT INTO user_profiles SELECT ... FROM users
#         WHERE bio IS NOT NULL OR avatar_url IS NOT NULL, ALTER TABLE users
#         DROP COLUMN bio, DROP COLUMN avatar_url (one psql, each its own
#         transaction, wall time)
#   zdm   zdm apply --jobs 2 of split_table.zdm until it stops at the switch
#         gate: preflight, journal, expand (the table, its keys, the
#         triggers, the view), the backfill, verify; wall time.  Contract
#         (the triggers and the columns dropped) comes after the gate, when
#         a person approves it, and is catalog work.
#
# Each zdm run is checked: the journal is at the switch gate, and
# user_profiles holds as many rows as users has rows with a bio or an
# avatar.  Where zdm's time went comes from its journal (zdm.steps): the
# backfill, the verify check, and the rest.
#
# Methods run interleaved after one discarded warm-up of each, and each
# figure is the median of the runs; the ratio is zdm's over PostgreSQL's
# within one run, then the median of those.  The Markdown table goes to
# stdout and between <!-- bench-split-table:begin --> and
# <!-- bench-split-table:end --> of docs/performance.md; progress goes to
# stderr.
#
# Environment: ZDM_BENCH_ROWS (1000000), ZDM_BENCH_RUNS (3),
# ZDM_BENCH_BUILD (build dir, default build/bench, shared with run.sh),
# ZDM_BENCH_DOC (the file to update, default docs/performance.md; "-"
# updates nothing).
set -euo pipefail
shopt -s inherit_errexit

bench_me=split_table.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rows=${ZDM_BENCH_ROWS:-1000000}
runs=${ZDM_BENCH_RUNS:-3}
build=${ZDM_BENCH_BUILD:-$root/build/bench}
doc=${ZDM_BENCH_DOC:-$root/docs/performance.md}

bench_positive ZDM_BENCH_ROWS "$rows"
bench_positive ZDM_BENCH_RUNS "$runs"
bench_check_doc "$doc" bench-split-table
bench_check_tools cmake psql

bench_started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init_work

bench_build "$build" zdm zdmc
zdm=$build/zdm
"$build/zdmc" compile "$root/bench/split_table.zdm" -o "$work/split.plan"

bench_server_start

log "PostgreSQL $pg_version; building the $rows-row users table with bio and avatar_url"
q postgres -c 'CREATE DATABASE bench_template'
q bench_template -v rows="$rows" -f "$root/bench/users_template.sql"
q bench_template \
	-c "ALTER TABLE public.users ADD COLUMN bio text, ADD COLUMN avatar_url text" \
	-c "UPDATE public.users
	       SET bio = CASE WHEN id % 3 = 0 THEN NULL ELSE 'bio of user ' || id END,
	           avatar_url = CASE WHEN id % 5 = 0 THEN NULL
	                             ELSE 'https://img.example/' || id || '.png' END" \
	-c "VACUUM FULL public.users" -c "VACUUM ANALYZE public.users" >/dev/null
expected=$(q bench_template -c "SELECT count(*) FROM public.users WHERE bio IS NOT NULL OR avatar_url IS NOT NULL")

# run_pg RUN: PostgreSQL's own statements, timed on a fresh copy (run 0:
# the warm-up, not recorded).
run_pg()
{
	local run=$1 db=bench_pg_split_$1 t0 t1
	fresh_db "$db" quiet
	t0=$(now)
	q "$db" \
		-c "CREATE TABLE public.user_profiles (id bigint PRIMARY KEY REFERENCES public.users (id), bio text, avatar_url text)" \
		-c "INSERT INTO public.user_profiles SELECT id, bio, avatar_url FROM public.users WHERE bio IS NOT NULL OR avatar_url IS NOT NULL" \
		-c "ALTER TABLE public.users DROP COLUMN bio, DROP COLUMN avatar_url" >/dev/null
	t1=$(now)
	[ "$run" = 0 ] || record "$run" pg wall_s "$(echo "$t1 - $t0" | bc -l)"
	drop_db "$db"
}

# step_seconds DB KIND: seconds zdm's journal gives the steps of that kind
step_seconds()
{
	local db=$1 kind=$2 ids
	ids=$(awk -v what="$kind" '
		/^  - id: / { id = $3 }
		/^    kind: / { if ($2 == what) print id }' "$work/split.plan" |
		sed "s/.*/'&'/" | paste -sd, -)
	[ -n "$ids" ] || { echo 0; return; }
	q "$db" -c "SELECT coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)
	              FROM zdm.steps WHERE step_id IN ($ids)"
}

# run_zdm RUN: zdm apply to the switch gate, checked.
run_zdm()
{
	local run=$1 db=bench_zdm_split_$1 t0 t1 rc=0 got
	fresh_db "$db" quiet
	t0=$(now)
	"$zdm" apply "$work/split.plan" --db "dbname=$db" --jobs 2 >"$work/zdm-$run.out" 2>&1 || rc=$?
	t1=$(now)
	if [ "$rc" != 4 ]; then
		cat "$work/zdm-$run.out" >&2
		die "zdm apply of split_table.zdm exited $rc, not 4 (paused at the switch gate), on $db"
	fi
	got=$(q "$db" -c "SELECT count(*) FROM public.user_profiles")
	[ "$got" = "$expected" ] || die "user_profiles holds $got rows, expected $expected"
	if [ "$run" != 0 ]; then
		record "$run" zdm wall_s "$(echo "$t1 - $t0" | bc -l)"
		record "$run" zdm backfill_s "$(step_seconds "$db" backfill)"
		record "$run" zdm check_s "$(step_seconds "$db" check)"
	fi
	drop_db "$db"
}

log "warm-up (discarded)"
run_pg 0
run_zdm 0
for ((run = 1; run <= runs; run++)); do
	if ((run % 2)); then
		log "run $run of $runs: pg, zdm"
		run_pg "$run"
		run_zdm "$run"
	else
		log "run $run of $runs: zdm, pg"
		run_zdm "$run"
		run_pg "$run"
	fi
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
checkpoints=$(bench_checkpoints)
[ "$checkpoints" = 0 ] || log "warning: $checkpoints checkpoints started on their own during the benchmark"
elapsed=$((SECONDS - bench_started))

report()
{
	local ratio rest
	ratio=$(median_ratio zdm wall_s pg wall_s)
	rest=$(awk '
		$2 == "zdm" && $3 == "wall_s" { w[$1] = $4 }
		$2 == "zdm" && ($3 == "backfill_s" || $3 == "check_s") { s[$1] += $4 }
		END { for (r in w) print w[r] - s[r] }' "$results" | median_of)
	cat <<EOF2
Measured $(date -u +%Y-%m-%d) by \`bench/split_table.sh\`: PostgreSQL $pg_version, $(nproc) cores, $(thousands "$rows") users ($(thousands "$expected") with a bio or an avatar), median of $runs runs (ratio: median of the ratios within each run), $elapsed s in all; load average $load_before before, $load_after after; $checkpoints checkpoints by WAL volume or timeout.

Wall seconds; zdm's split from its journal (steps' started_at to finished_at).

| method | wall | ratio | backfill | verify | the rest |
| --- | --- | --- | --- | --- | --- |
| PostgreSQL alone: \`CREATE TABLE\` (key, foreign key), \`INSERT ... SELECT\`, \`ALTER TABLE ... DROP COLUMN\` x2 | $(fmt "$(median pg wall_s)" %.2f) | 1.00x | | | |
| zdm apply \`--jobs 2\` to the switch gate | $(fmt "$(median zdm wall_s)" %.2f) | $(fmt "$ratio" %.2fx) | $(fmt "$(median zdm backfill_s)" %.2f) | $(fmt "$(median zdm check_s)" %.2f) | $(fmt "$rest" %.2f) |

**Target**

| target | measured | met |
| --- | --- | --- |
| \`split table\` moving two columns of 1M rows to the switch gate within 1.5x of \`INSERT INTO t2 SELECT ...\` plus \`ALTER TABLE ... DROP COLUMN\` | $(fmt "$ratio" %.2fx) | $(met "$ratio" "<=" 1.5) |
EOF2
}

report >"$work/table.md"
cat "$work/table.md"
bench_write_doc "$work/table.md" "$doc" bench-split-table
mkdir -p "$build"
cp "$results" "$build/bench-split-table-results.txt"
log "done in $elapsed s; every run's figures: $build/bench-split-table-results.txt"
