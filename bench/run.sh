#!/usr/bin/env bash
#
# run.sh -- the benchmark of the zdm runtime's backfill (a script, not a test:
# it asserts nothing about speed, it measures and reports).
#
#   bash bench/run.sh            # 1M rows, 3 runs: a few minutes on 2 cores
#   ZDM_BENCH_ROWS=200000 ZDM_BENCH_RUNS=1 bash bench/run.sh   # a quick look
#
# On a throwaway PostgreSQL that it starts (tests/lib/pg.sh) with durable
# settings (fsync, full_page_writes and synchronous_commit on; shared_buffers
# 512MB, max_wal_size 4GB and checkpoint_timeout 30min so that no checkpoint
# lands inside a measurement), it fills the same 1M-row users table four
# ways, each on a fresh copy of one template database (CREATE DATABASE ...
# TEMPLATE: byte-identical heap and index, vacuumed, analyzed, prewarmed,
# checkpointed before the clock starts):
#
#   update   one UPDATE of the whole table, after adding the two columns
#   pgroll   pgroll's algorithm: its per-row trigger, primary-key batches of
#            1,000 rows driven by the client (pgroll_setup.sql,
#            pgroll_backfill.c)
#   zdm-j1   zdm apply of bench/split_name.zdm, --jobs 1; the backfill's own
#            figures from the journal (zdm.steps.result), and the wall time
#            of the whole migration, expand to contract
#   zdm-j2   the same with --jobs 2
#
# Then client impact: pgbench, 2 clients updating random rows by primary key
# (client_update.sql), once on a quiet copy and once while `zdm apply --jobs
# 2` runs, for the same duration (long enough to cover the migration); the
# tps and mean latency of the migration's window are compared with the quiet
# run's, and every failed client statement is counted (pgbench's own count
# and the server log's ERRORs from pgbench sessions).  One last migration
# under pgbench, not timed, samples the clients' wait events to show where
# their time went.
#
# Besides wall time, each method's server CPU (log_executor_stats on the
# measured databases, summed from the server log) and WAL volume are
# reported: on a shared machine they move far less than wall time.
#
# Methods run interleaved (run 1 of each, then run 2 of each, ...) after one
# discarded warm-up, and each figure is the median of the runs: the machine
# is shared and noisy, so ratios taken within a run and medians are what to
# read.  The Markdown table goes to stdout and between the markers
# <!-- bench:begin --> and <!-- bench:end --> of docs/performance.md;
# progress goes to stderr.  Any error stops the run (set -e, every psql with
# ON_ERROR_STOP); the EXIT trap stops pgbench and the server.
#
# Environment: ZDM_BENCH_ROWS (1000000), ZDM_BENCH_RUNS (3),
# ZDM_BENCH_BUILD (build dir for zdm and zdmc, default build/bench),
# ZDM_BENCH_CLIENT_SECONDS (pgbench duration; default: twice the migration's
# median wall time plus 6 s, at least 15), ZDM_BENCH_DOC (the file to update,
# default docs/performance.md; "-" updates nothing).
#
# The server, template copies, medians and the table's markers are
# bench/lib.sh's, shared with bench/cdc.sh.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rows=${ZDM_BENCH_ROWS:-1000000}
runs=${ZDM_BENCH_RUNS:-3}
build=${ZDM_BENCH_BUILD:-$root/build/bench}
doc=${ZDM_BENCH_DOC:-$root/docs/performance.md}
client_seconds=${ZDM_BENCH_CLIENT_SECONDS:-}
client_jobs=2 # zdm's default --jobs

bench_positive ZDM_BENCH_ROWS "$rows"
bench_positive ZDM_BENCH_RUNS "$runs"
[[ -z $client_seconds || $client_seconds =~ ^[1-9][0-9]*$ ]] ||
	die "ZDM_BENCH_CLIENT_SECONDS must be a positive integer, not '$client_seconds'"
bench_check_doc "$doc" bench
bench_check_tools cmake gcc pkg-config psql

bench_started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

bench_init_work
pgbench_pid=
# shellcheck disable=SC2016 # expanded when the trap runs
zdm_on_exit 'if [ -n "$pgbench_pid" ]; then kill "$pgbench_pid" 2>/dev/null; wait "$pgbench_pid" 2>/dev/null; fi'

# ---- build ------------------------------------------------------------------

bench_build "$build" zdm zdmc
zdm=$build/zdm
zdmc=$build/zdmc
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
gcc -O2 -Wall -Wextra -Werror -o "$work/pgroll_backfill" \
	"$root/bench/pgroll_backfill.c" $(pkg-config --cflags --libs libpq)
"$zdmc" compile "$root/bench/split_name.zdm" -o "$work/split_name.plan"

# ---- server -----------------------------------------------------------------

bench_server_start

log "PostgreSQL $pg_version; building the $rows-row template table"
q postgres -c 'CREATE DATABASE bench_template'
q bench_template -v rows="$rows" -f "$root/bench/users_template.sql"

# cpu_seconds OFFSET APP DB: user + system CPU seconds of the statements
# that sessions named APP ran in DB, from the server log after byte OFFSET.
# CPU time is what the work cost the server, far less disturbed by other
# load on the machine than wall time (though not immune: caches, frequency
# and hyperthreads are shared).  It leaves out what happens outside a
# statement's execution: commit, and WAL flushed by the WAL writer.
cpu_seconds()
{
	tail -c +"$(($1 + 1))" "$server_log" | awk -v tag=" $2@$3 LOG:  EXECUTOR STATISTICS" '
	index($0, tag) { mine = 1; next }
	mine && $4 == "user," { cpu += $2 + $5; mine = 0 }
	END { printf "%.3f\n", cpu }'
}

# ---- the methods --------------------------------------------------------------

# The baseline: the two columns, then one statement for every row.
run_update()
{
	local run=$1 db=bench_update_$1 t0 t1 lsn left off
	fresh_db "$db"
	q "$db" -c 'ALTER TABLE public.users ADD COLUMN first_name text, ADD COLUMN last_name text'
	lsn=$(wal_lsn)
	off=$(log_offset)
	t0=$(now)
	PGAPPNAME=bench_update q "$db" -c "UPDATE public.users SET first_name = split_part(name, ' ', 1), last_name = nullif(substr(name, length(split_part(name, ' ', 1)) + 2), '')"
	t1=$(now)
	left=$(q "$db" -c 'SELECT count(*) FROM public.users WHERE first_name IS NULL')
	[ "$left" = 0 ] || die "update: $left rows without first_name"
	if [ "$run" != 0 ]; then
		record "$run" update rows_per_s "$(echo "$rows / ($t1 - $t0)" | bc -l)"
		record "$run" update seconds "$(echo "$t1 - $t0" | bc -l)"
		record "$run" update wal_mb "$(wal_mb_since "$lsn")"
		record "$run" update batches 1
		record "$run" update cpu_s "$(cpu_seconds "$off" bench_update "$db")"
	fi
	drop_db "$db"
}

run_pgroll()
{
	local run=$1 db=bench_pgroll_$1 out lsn left off
	fresh_db "$db"
	q "$db" -f "$root/bench/pgroll_setup.sql"
	lsn=$(wal_lsn)
	off=$(log_offset)
	out=$("$work/pgroll_backfill" "$db" 1000) || die "pgroll_backfill failed"
	left=$(q "$db" -c 'SELECT count(*) FROM public.users WHERE _pgroll_needs_backfill OR _pgroll_new_first_name IS NULL')
	[ "$left" = 0 ] || die "pgroll: $left rows not backfilled"
	record "$run" pgroll wal_mb "$(wal_mb_since "$lsn")"
	record "$run" pgroll cpu_s "$(cpu_seconds "$off" pgroll_backfill "$db")"
	for key in rows_per_s batches p50_ms p99_ms max_ms; do
		[[ $out =~ (^| )$key=([0-9.]+) ]] || die "pgroll_backfill printed no $key: $out"
		record "$run" pgroll "$key" "${BASH_REMATCH[2]}"
	done
}

# zdm_result DB METHOD RUN: the backfill's own figures, from the journal.
zdm_result()
{
	local db=$1 method=$2 run=$3 result
	result=$(q "$db" -c "SELECT result FROM zdm.steps WHERE step_id = 'backfill.1'")
	# "1000000 rows (1000000 this run) in 4.5 s (220962 rows/s), 102
	# batches, batch p50 87.7 ms, p99 146.8 ms, max 159.9 ms, 0 lock retries"
	[[ $result =~ ^([0-9]+)\ rows\ (\([0-9]+\ this\ run\)\ )?in\ [0-9.]+\ s\ \(([0-9.]+)\ rows/s\),\ ([0-9]+)\ batches,\ batch\ p50\ ([0-9.]+)\ ms,\ p99\ ([0-9.]+)\ ms,\ max\ ([0-9.]+)\ ms ]] ||
		die "$method: unexpected backfill result in zdm.steps: '$result'"
	# under client load the sync trigger has done some rows already
	[ "$method" = client-zdm ] || [ "${BASH_REMATCH[1]}" = "$rows" ] ||
		die "$method: the backfill updated ${BASH_REMATCH[1]} rows, not $rows"
	# (group 2 is the optional "(N this run) " of a resumed backfill)
	record "$run" "$method" rows_per_s "${BASH_REMATCH[3]}"
	record "$run" "$method" batches "${BASH_REMATCH[4]}"
	record "$run" "$method" p50_ms "${BASH_REMATCH[5]}"
	record "$run" "$method" p99_ms "${BASH_REMATCH[6]}"
	record "$run" "$method" max_ms "${BASH_REMATCH[7]}"
}

# zdm_phases DB METHOD RUN: from the journal's step clocks, the seconds from
# expand's first step to each of expand, backfill and verify's last (the
# last is the time to the switch gate: what the application waits for).
zdm_phases()
{
	local db=$1 method=$2 run=$3 phase secs
	while read -r phase secs; do
		record "$run" "$method" "${phase}_s" "$secs"
	done < <(q "$db" -F ' ' -c "
		SELECT p.phase, round(extract(epoch FROM p.finished - s.started)::numeric, 3)
		  FROM (SELECT min(started_at) AS started FROM zdm.steps WHERE phase = 'expand') AS s,
		       (SELECT phase, max(finished_at) AS finished FROM zdm.steps
		         WHERE phase IN ('expand', 'backfill', 'verify') GROUP BY phase) AS p")
	# each phase's own duration, for the report
	while read -r phase secs; do
		record "$run" "$method" "${phase}_own_s" "$secs"
	done < <(q "$db" -F ' ' -c "
		SELECT phase, round(extract(epoch FROM max(finished_at) - min(started_at))::numeric, 3)
		  FROM zdm.steps WHERE phase IN ('expand', 'backfill', 'verify') GROUP BY phase")
	# the counting checks' pass: "0 (expected 0; one pass with ... S s)"
	record "$run" "$method" pass_s "$(q "$db" -c "
		SELECT substring(result from ', ([0-9.]+) s\)$') FROM zdm.steps
		 WHERE phase = 'verify' AND result ~ 'one pass' LIMIT 1")"
}

# zdm_apply DB JOBS LOG: the whole migration; prints its wall time.
zdm_apply()
{
	local db=$1 jobs=$2 out=$3 t0 t1 state
	t0=$(now)
	if ! "$zdm" apply "$work/split_name.plan" --db "dbname=$db" \
		--approve-all --jobs "$jobs" >"$out" 2>&1; then
		cat "$out" >&2
		die "zdm apply --jobs $jobs failed on $db (output above)"
	fi
	t1=$(now)
	state=$(q "$db" -c "SELECT state FROM zdm.migrations WHERE migration = 'bench_split_name'")
	[ "$state" = "done" ] || die "zdm apply exited 0 but the journal says '$state'"
	echo "$t0 $t1"
}

run_zdm()
{
	local run=$1 jobs=$2 method=zdm-j$2 db=bench_zdm_j$2_$1 lsn span off
	fresh_db "$db"
	lsn=$(wal_lsn)
	off=$(log_offset)
	span=$(zdm_apply "$db" "$jobs" "$work/zdm-j$jobs-$run.out")
	record "$run" "$method" wal_mb "$(wal_mb_since "$lsn")"
	record "$run" "$method" wall_s "$(echo "$span" | awk '{ printf "%.3f", $2 - $1 }')"
	record "$run" "$method" cpu_s "$(cpu_seconds "$off" "zdm backfill" "$db")"
	zdm_result "$db" "$method" "$run"
	zdm_phases "$db" "$method" "$run"
	drop_db "$db"
}

# ---- client impact ----------------------------------------------------------------

# window_stats LOGFILE FROM TO: "tps latency_ms failed n" over the
# transactions that ended in [FROM, TO] (epoch seconds).  pgbench -l lines:
# client txno latency_us script epoch_s epoch_us; latency is "failed" for a
# transaction that failed without aborting its client.
window_stats()
{
	awk -v from="$2" -v to="$3" '
	{
		t = $5 + $6 / 1e6
		if (t < from || t > to)
			next
		if ($3 == "failed") { failed++; next }
		n++; lat += $3
	}
	END {
		printf "%.1f %.3f %d %d\n", n / (to - from), n ? lat / n / 1000 : 0, failed, n
	}' "$1"
}

# pgbench_start DB SECONDS PREFIX: 2 clients in the background.
pgbench_start()
{
	"$PGBIN/pgbench" -n -c 2 -j 2 -T "$2" -f "$root/bench/client_update.sql" \
		-D rows="$rows" -l --log-prefix="$3" "$1" >"$3.out" 2>&1 &
	pgbench_pid=$!
}

# pgbench_finish PREFIX RUN MODE: wait, check, count aborted clients.
pgbench_finish()
{
	local prefix=$1 run=$2 mode=$3 rc=0 aborted
	wait "$pgbench_pid" || rc=$?
	pgbench_pid=
	aborted=$(grep -c 'aborted in command' "$prefix.out" || true)
	if [ "$rc" != 0 ] && [ "$aborted" = 0 ]; then
		cat "$prefix.out" >&2
		die "pgbench failed (exit $rc, output above)"
	fi
	cat "$prefix".[0-9]* >"$prefix.log" 2>/dev/null || die "pgbench wrote no transaction log"
	record "$run" "client-$mode" aborted "$aborted"
}

run_client_without()
{
	local run=$1 db=bench_client_without_$1 prefix=$work/without_$1 t0 t1 stats off \
		tps lat failed
	fresh_db "$db" quiet
	off=$(stat -c %s "$server_log")
	t0=$(now)
	pgbench_start "$db" "$client_seconds" "$prefix"
	pgbench_finish "$prefix" "$run" without
	t1=$(now)
	# leave out the first and the last second: connecting and finishing
	stats=$(window_stats "$prefix.log" "$(echo "$t0 + 1" | bc)" "$(echo "$t1 - 1" | bc)")
	read -r tps lat failed _ <<<"$stats"
	record "$run" client-without tps "$tps"
	record "$run" client-without latency_ms "$lat"
	record "$run" client-without failed "$failed"
	record "$run" client-without server_errors "$(server_errors_since "$off")"
	drop_db "$db"
}

run_client_during()
{
	local run=$1 db=bench_client_during_$1 prefix=$work/during_$1 t_start span z0 z1 \
		t_end to stats off tps lat failed
	fresh_db "$db" quiet
	off=$(stat -c %s "$server_log")
	t_start=$(now)
	pgbench_start "$db" "$client_seconds" "$prefix"
	sleep 2 # the clients are connected and running when zdm starts
	span=$(zdm_apply "$db" "$client_jobs" "$work/during-$run.out")
	read -r z0 z1 <<<"$span"
	pgbench_finish "$prefix" "$run" during
	t_end=$(now)
	zdm_result "$db" client-zdm "$run"
	to=$z1
	if awk -v a="$z1" -v b="$t_end" 'BEGIN { exit !(a > b) }'; then
		log "run $run: the migration outlasted the client load; raise ZDM_BENCH_CLIENT_SECONDS"
		to=$t_end
	fi
	stats=$(window_stats "$prefix.log" "$z0" "$to")
	read -r tps lat failed _ <<<"$stats"
	record "$run" client-during tps "$tps"
	record "$run" client-during latency_ms "$lat"
	record "$run" client-during failed "$failed"
	record "$run" client-during server_errors "$(server_errors_since "$off")"
	record "$run" client-during migration_s "$(echo "$z1 - $z0" | bc -l)"
	record "$run" client-during covered_pct "$(echo "100 * ($to - $z0) / ($z1 - $z0)" | bc -l)"
	record "$run" client-during window_pct "$(echo "100 * ($to - $z0) / ($t_end - $t_start)" | bc -l)"
	drop_db "$db"
}

# Where the clients' time goes during a migration: one more run, not timed,
# with pg_stat_activity sampled every 20 ms from a DO loop (one session, so
# the sampler costs one backend's CPU, which is why the timed runs go
# without it).  Each sample of an active pgbench session is put in a class
# by its wait event; no wait event means it was on the CPU (or waiting for
# one).  The loop ends when no "zdm ..." session is left, once one was seen.
run_client_diagnose()
{
	local db=bench_client_diagnose prefix=$work/diagnose sampler
	fresh_db "$db" quiet
	q postgres -c 'CREATE UNLOGGED TABLE bench_waits (class text NOT NULL)'
	pgbench_start "$db" "$client_seconds" "$prefix"
	sleep 2
	q postgres -c "
DO \$\$
DECLARE
    seen boolean := false;
BEGIN
    FOR i IN 1..30000 LOOP
        PERFORM pg_catalog.pg_stat_clear_snapshot();
        IF EXISTS (SELECT FROM pg_catalog.pg_stat_activity
                    WHERE datname = '$db' AND application_name LIKE 'zdm %') THEN
            seen := true;
        ELSIF seen OR i > 1000 THEN
            EXIT;
        END IF;
        IF seen THEN
            INSERT INTO bench_waits
            SELECT CASE
                     WHEN wait_event IS NULL THEN 'CPU'
                     WHEN wait_event IN ('WALSync', 'WALWrite', 'WALInsert', 'WALBufMapping', 'WALInitSync', 'WALInitWrite')
                       THEN 'WAL write and flush (commit)'
                     WHEN wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')
                       THEN 'row lock (the row is in a batch in flight)'
                     WHEN wait_event_type = 'Lock' THEN 'table lock (DDL)'
                     ELSE wait_event_type || ':' || wait_event
                   END
              FROM pg_catalog.pg_stat_activity
             WHERE datname = '$db' AND application_name = 'pgbench' AND state = 'active';
        END IF;
        PERFORM pg_catalog.pg_sleep(0.02);
    END LOOP;
END
\$\$" &
	sampler=$!
	zdm_apply "$db" "$client_jobs" "$work/diagnose.out" >/dev/null
	wait "$sampler" || die "the wait-event sampler failed"
	pgbench_finish "$prefix" diagnose during
	q postgres -c "SELECT share || '% ' || class FROM (
	                   SELECT class, round(100.0 * count(*) / sum(count(*)) OVER ()) AS share
	                     FROM bench_waits GROUP BY class) AS s
	                 WHERE share >= 1 ORDER BY share DESC, class" >"$work/waits"
	[ -s "$work/waits" ] || die "the wait-event sampler saw no active client session"
	drop_db "$db"
}

# ---- run ----------------------------------------------------------------------------

log "warm-up (discarded): the first pass writes the WAL segments later passes recycle"
run_update 0
for ((run = 1; run <= runs; run++)); do
	log "run $run of $runs: single UPDATE"
	run_update "$run"
	log "run $run of $runs: pgroll's backfill"
	run_pgroll "$run"
	log "run $run of $runs: zdm apply --jobs 1"
	run_zdm "$run" 1
	log "run $run of $runs: zdm apply --jobs 2"
	run_zdm "$run" 2
done

if [ -z "$client_seconds" ]; then
	client_seconds=$(awk -v w="$(median zdm-j2 wall_s)" 'BEGIN {
		s = int(2 * w + 6.999); print s < 15 ? 15 : s }')
fi
for ((run = 1; run <= runs; run++)); do
	log "run $run of $runs: pgbench for ${client_seconds} s without a migration"
	run_client_without "$run"
	log "run $run of $runs: pgbench for ${client_seconds} s during zdm apply --jobs $client_jobs"
	run_client_during "$run"
done

log "diagnosis (not timed): where the clients wait during zdm apply --jobs $client_jobs"
run_client_diagnose

# ---- report ------------------------------------------------------------------------

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
checkpoints=$(bench_checkpoints)
[ "$checkpoints" = 0 ] || log "warning: $checkpoints checkpoints started on their own during the benchmark"
elapsed=$((SECONDS - bench_started))

method_row()
{
	local method=$1 label=$2 rps batches lat="-" wal cpu vs_update vs_pgroll
	rps=$(thousands "$(median "$method" rows_per_s)")
	batches=$(thousands "$(median "$method" batches)")
	if [ "$method" != update ]; then
		lat="$(fmt "$(median "$method" p50_ms)" %.1f) / $(fmt "$(median "$method" p99_ms)" %.1f) / $(fmt "$(median "$method" max_ms)" %.1f)"
	fi
	wal=$(fmt "$(median "$method" wal_mb)" %.0f)
	cpu="$(fmt "$(median "$method" cpu_s)" %.2f) ($(fmt "$(median_ratio "$method" cpu_s update cpu_s)" %.2fx))"
	vs_update=$(fmt "$(median_ratio "$method" rows_per_s update rows_per_s)" %.2fx)
	vs_pgroll=$(fmt "$(median_ratio "$method" rows_per_s pgroll rows_per_s)" %.2fx)
	echo "| $label | $rps | $vs_update | $vs_pgroll | $batches | $lat | $wal | $cpu |"
}

report()
{
	local j1_update j1_pgroll j2_update worst_max tps_ratio failed to_switch
	j1_update=$(median_ratio zdm-j1 rows_per_s update rows_per_s)
	j1_pgroll=$(median_ratio zdm-j1 rows_per_s pgroll rows_per_s)
	j2_update=$(median_ratio zdm-j2 rows_per_s update rows_per_s)
	worst_max=$(awk '($2 == "zdm-j1" || $2 == "zdm-j2" || $2 == "client-zdm") && $3 == "max_ms" && $4 > m { m = $4 } END { print m + 0 }' "$results")
	tps_ratio=$(median_ratio client-during tps client-without tps)
	failed=$(awk '$2 ~ /^client-/ && ($3 == "failed" || $3 == "aborted" || $3 == "server_errors") { s += $4 } END { print s + 0 }' "$results")
	to_switch=$(median_ratio zdm-j2 verify_s update seconds)

	cat <<EOF
Measured $(date -u +%Y-%m-%d) by \`bench/run.sh\`: PostgreSQL $pg_version, $(nproc) cores, $(thousands "$rows") rows, median of $runs runs (ratios: median of the ratios within each run), $elapsed s in all; load average $load_before before, $load_after after; $checkpoints checkpoints by WAL volume or timeout.

**Backfill** of first_name and last_name (rows/s of the backfill alone; pgroll's batches are timed BEGIN to COMMIT by its client, zdm's by zdm; server CPU: user + system time of the backfill's statements, from \`log_executor_stats\`, the figure least disturbed by other load)

| method | rows/s | vs single UPDATE | vs pgroll | batches | batch ms p50 / p99 / max | WAL MB | server CPU s (vs UPDATE) |
| --- | --- | --- | --- | --- | --- | --- | --- |
$(method_row update "(a) one \`UPDATE\` of the whole table")
$(method_row pgroll "(b) pgroll's algorithm (trigger, 1,000-row key batches)")
$(method_row zdm-j1 "zdm, \`--jobs 1\`")
$(method_row zdm-j2 "zdm, \`--jobs 2\`")

Whole migration, \`zdm apply\` from expand to contract: $(fmt "$(median zdm-j1 wall_s)" %.1f) s with \`--jobs 1\`, $(fmt "$(median zdm-j2 wall_s)" %.1f) s with \`--jobs 2\`.

**To the switch gate** (expand + backfill + verify, from the journal's step clocks) against the single \`UPDATE\` of (a), which does the backfill's work alone, with no trigger, no batches and no checks:

| | single \`UPDATE\` | zdm, \`--jobs 1\` | zdm, \`--jobs 2\` |
| --- | --- | --- | --- |
| expand s | - | $(fmt "$(median zdm-j1 expand_own_s)" %.3f) | $(fmt "$(median zdm-j2 expand_own_s)" %.3f) |
| backfill s | $(fmt "$(median update seconds)" %.2f) | $(fmt "$(median zdm-j1 backfill_own_s)" %.2f) | $(fmt "$(median zdm-j2 backfill_own_s)" %.2f) |
| verify s (the counts in one pass, the sample, \`VALIDATE\`) | - | $(fmt "$(median zdm-j1 verify_own_s)" %.2f) | $(fmt "$(median zdm-j2 verify_own_s)" %.2f) |
| of which the counts' one pass, s | - | $(fmt "$(median zdm-j1 pass_s)" %.2f) | $(fmt "$(median zdm-j2 pass_s)" %.2f) |
| to the switch gate, s | $(fmt "$(median update seconds)" %.2f) | $(fmt "$(median zdm-j1 verify_s)" %.2f) | $(fmt "$(median zdm-j2 verify_s)" %.2f) |
| vs the single \`UPDATE\` | 1.00x | $(fmt "$(median_ratio zdm-j1 verify_s update seconds)" %.2fx) | $(fmt "$to_switch" %.2fx) |

**Client impact**: pgbench, 2 clients, one-row UPDATEs by primary key, ${client_seconds} s; during: \`zdm apply --jobs $client_jobs\` started 2 s in, figures over the migration's window ($(fmt "$(median client-during migration_s)" %.1f) s, $(fmt "$(median client-during window_pct)" %.0f)% of the pgbench run; $(fmt "$(median client-during covered_pct)" %.0f)% of the migration under load)

| | without a migration | during the migration | ratio |
| --- | --- | --- | --- |
| tps | $(fmt "$(median client-without tps)" %.0f) | $(fmt "$(median client-during tps)" %.0f) | $(fmt "$tps_ratio" %.2fx) |
| latency, mean ms | $(fmt "$(median client-without latency_ms)" %.2f) | $(fmt "$(median client-during latency_ms)" %.2f) | $(fmt "$(median_ratio client-during latency_ms client-without latency_ms)" %.2fx) |
| failed statements, all runs | $(awk '$2 == "client-without" && ($3 == "failed" || $3 == "aborted" || $3 == "server_errors") { s += $4 } END { print s + 0 }' "$results") | $(awk '$2 == "client-during" && ($3 == "failed" || $3 == "aborted" || $3 == "server_errors") { s += $4 } END { print s + 0 }' "$results") | |
| backfill batch ms p50 / p99 / max | | $(fmt "$(median client-zdm p50_ms)" %.1f) / $(fmt "$(median client-zdm p99_ms)" %.1f) / $(fmt "$(median client-zdm max_ms)" %.1f) | |

Where an active client session spent the migration (one more run, pg_stat_activity sampled every 20 ms): $(paste -sd';' "$work/waits" | sed 's/;/, /g').

**Targets**

| target | measured | met |
| --- | --- | --- |
| zdm backfill at least 1.0x the single UPDATE (\`--jobs 1\`) | $(fmt "$j1_update" %.2fx) | $(met "$j1_update" ">=" 1.0) |
| zdm backfill at least 2.5x pgroll's algorithm (\`--jobs 1\`) | $(fmt "$j1_pgroll" %.2fx) | $(met "$j1_pgroll" ">=" 2.5) |
| parallel batches beat the single UPDATE outright (\`--jobs 2\`) | $(fmt "$j2_update" %.2fx) | $(met "$j2_update" ">" 1.0) |
| expand + backfill + verify in less time than the single UPDATE (\`--jobs 2\`; time, so under 1.0x) | $(fmt "$to_switch" %.2fx) | $(met "$to_switch" "<" 1.0) |
| no batch transaction over 100 ms (worst batch of every zdm run, with clients or without) | $(fmt "$worst_max" %.1f) ms | $(met "$worst_max" "<=" 100) |
| zero failed client statements | $failed | $(met "$failed" "<=" 0) |
| client throughput during the migration at least 0.7x of without | $(fmt "$tps_ratio" %.2fx) | $(met "$tps_ratio" ">=" 0.7) |
EOF
}

report >"$work/table.md"
cat "$work/table.md"
bench_write_doc "$work/table.md" "$doc" bench
cp "$results" "$build/bench-results.txt"
log "done in $elapsed s; every run's figures: $build/bench-results.txt"
