#!/usr/bin/env bash
#
# add_column.sh -- the benchmark of add column with a volatile default and
# NOT NULL (a script, not a test: it asserts nothing about speed, it
# measures and reports).
#
#   bash bench/add_column.sh     # 1M rows, 3 runs: a few minutes on 2 cores
#   ZDM_BENCH_ROWS=200000 ZDM_BENCH_RUNS=1 ZDM_BENCH_DOC=- bash bench/add_column.sh
#
# On a throwaway PostgreSQL with durable settings (bench/lib.sh), every
# method on a fresh copy of one template database holding the users table
# of users_template.sql (vacuumed, analyzed, prewarmed, checkpointed before
# the clock starts), the same column is added three ways:
#
#   pg-now       PostgreSQL's own ALTER TABLE public.users ADD COLUMN
#                created_at timestamptz NOT NULL DEFAULT now(), the
#                statement of the brief.  now() is stable, not volatile:
#                PostgreSQL 11 and later evaluate it once and keep the value
#                in the catalog for every existing row, with no rewrite
#                (checked here: the table's relfilenode does not change).
#   pg-rewrite   the same with DEFAULT clock_timestamp(), a volatile
#                default, which makes PostgreSQL rewrite the table and
#                rebuild its index under ACCESS EXCLUSIVE (relfilenode
#                changes): what a per-row default costs done the downtime way.
#   zdm          `zdm apply --approve-all` of bench/add_created_at.zdm (the
#                same column, approve = none), expand to contract, timed
#                from outside; each phase's time from the journal
#                (zdm.steps), the backfill's own figures from its result.
#
# Then, once per run and method, client impact: pgbench, 2 clients of the
# old application version (each transaction one statement: an UPDATE of a
# random user, add_column_update.sql, or an INSERT of a new one,
# add_column_insert.sql), started 2 s before the migration (zdm apply, or
# the pg-rewrite ALTER) and running past its end.  Over the migration's
# window: failed client statements (pgbench's failed transactions, aborted
# clients, ERRORs of pgbench sessions in the server log), throughput, and
# the worst latency of one client statement, next to the plan's
# lock_timeout (500 ms): no zdm statement waits for a lock longer than
# that, so no client statement should wait behind one longer than that
# plus the few milliseconds zdm holds a lock.
#
# Methods run interleaved (run 1 of each, then run 2, ...) after one
# discarded warm-up, each figure is the median of the runs, each ratio the
# median of the ratios within a run: the machine is shared and noisy.  The
# Markdown table goes to stdout and between <!-- bench-add-column:begin -->
# and <!-- bench-add-column:end --> of docs/performance.md; progress to
# stderr.  Any error stops the run (set -e, every psql with ON_ERROR_STOP);
# the EXIT trap stops pgbench and the server.
#
# Environment: ZDM_BENCH_ROWS (1000000), ZDM_BENCH_RUNS (3),
# ZDM_BENCH_BUILD (build dir for zdm and zdmc, default build/bench, shared
# with run.sh), ZDM_BENCH_CLIENT_SECONDS (how long pgbench runs after the
# migration starts; default: four times zdm's median wall time plus 6 s,
# since the backfill yields to active clients; at least 10), ZDM_BENCH_DOC (the file to update, default
# docs/performance.md; "-" updates nothing).
set -euo pipefail
shopt -s inherit_errexit

bench_me=add_column.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rows=${ZDM_BENCH_ROWS:-1000000}
runs=${ZDM_BENCH_RUNS:-3}
build=${ZDM_BENCH_BUILD:-$root/build/bench}
doc=${ZDM_BENCH_DOC:-$root/docs/performance.md}
client_seconds=${ZDM_BENCH_CLIENT_SECONDS:-}
lock_timeout_ms=500 # bench/add_created_at.zdm's

bench_positive ZDM_BENCH_ROWS "$rows"
bench_positive ZDM_BENCH_RUNS "$runs"
[[ -z $client_seconds || $client_seconds =~ ^[1-9][0-9]*$ ]] ||
	die "ZDM_BENCH_CLIENT_SECONDS must be a positive integer, not '$client_seconds'"
bench_check_doc "$doc" bench-add-column
bench_check_tools cmake gcc pkg-config psql bc

bench_started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

bench_init_work
pgbench_pid=
# shellcheck disable=SC2016 # expanded when the trap runs
zdm_on_exit 'if [ -n "$pgbench_pid" ]; then kill "$pgbench_pid" 2>/dev/null; wait "$pgbench_pid" 2>/dev/null; fi'

# ---- build and server ----------------------------------------------------------

bench_build "$build" zdm zdmc
zdm=$build/zdm
"$build/zdmc" compile "$root/bench/add_created_at.zdm" -o "$work/add_created_at.plan"

bench_server_start
log "PostgreSQL $pg_version; building the $rows-row template table"
q postgres -c 'CREATE DATABASE bench_template'
q bench_template -v rows="$rows" -f "$root/bench/users_template.sql"

# check_added DB METHOD: created_at is there, NOT NULL, with its default,
# and no row lacks a value.
check_added()
{
	local got
	got=$(q "$1" -c "SELECT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
	                        (SELECT count(*) FROM public.users WHERE created_at IS NULL)
	                   FROM pg_catalog.pg_attribute AS a
	                   JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	                  WHERE a.attrelid = 'public.users'::pg_catalog.regclass
	                    AND a.attname = 'created_at'")
	case $got in
	"t|now()|0" | "t|clock_timestamp()|0") ;;
	*) die "$2: created_at is not as added ('$got': NOT NULL, default, rows without a value)" ;;
	esac
}

filenode()
{
	q "$1" -c "SELECT pg_catalog.pg_relation_filenode('public.users')"
}

# ---- the methods -----------------------------------------------------------------

# pg_alter DB DEFAULT: PostgreSQL's own statement; prints its wall time and
# whether it rewrote the table (1) or not (0).
pg_alter()
{
	local db=$1 default=$2 before t0 t1
	before=$(filenode "$db")
	t0=$(now)
	PGAPPNAME=bench_alter q "$db" -c "ALTER TABLE public.users ADD COLUMN created_at timestamptz NOT NULL DEFAULT $default"
	t1=$(now)
	echo "$t0 $t1 $([ "$(filenode "$db")" = "$before" ] && echo 0 || echo 1)"
}

run_pg()
{
	local run=$1 method=$2 default=$3 db=bench_$2_$1 out t0 t1 rewrote
	db=${db//-/_}
	fresh_db "$db" quiet
	out=$(pg_alter "$db" "$default")
	read -r t0 t1 rewrote <<<"$out"
	check_added "$db" "$method"
	if [ "$run" != 0 ]; then
		record "$run" "$method" wall_s "$(echo "$t1 - $t0" | bc -l)"
		record "$run" "$method" rewrote "$rewrote"
	fi
	drop_db "$db"
}

# zdm_apply DB LOG: the whole migration; prints its start and end.
zdm_apply()
{
	local db=$1 out=$2 t0 t1 state
	t0=$(now)
	if ! "$zdm" apply "$work/add_created_at.plan" --db "dbname=$db" \
		--approve-all >"$out" 2>&1; then
		cat "$out" >&2
		die "zdm apply failed on $db (output above)"
	fi
	t1=$(now)
	state=$(q "$db" -c "SELECT state FROM zdm.migrations WHERE migration = 'bench_add_created_at'")
	[ "$state" = "done" ] || die "zdm apply exited 0 but the journal says '$state'"
	echo "$t0 $t1"
}

# zdm_phases DB RUN METHOD: seconds each phase's steps took, from the
# journal, and the backfill's own figures.
zdm_phases()
{
	local db=$1 run=$2 method=$3 phase secs result
	for phase in expand backfill verify contract; do
		secs=$(q "$db" -c "SELECT coalesce(extract(epoch FROM max(finished_at) - min(started_at)), 0)
		                     FROM zdm.steps
		                    WHERE migration = 'bench_add_created_at' AND phase = '$phase'")
		record "$run" "$method" "${phase}_s" "$secs"
	done
	result=$(q "$db" -c "SELECT result FROM zdm.steps
	                      WHERE migration = 'bench_add_created_at' AND step_id = 'backfill.1'")
	# "1000000 rows in 2.9 s (344827 rows/s), 101 batches, batch p50 ..."
	[[ $result =~ \(([0-9.]+)\ rows/s\),\ ([0-9]+)\ batches,\ batch\ p50\ ([0-9.]+)\ ms,\ p99\ ([0-9.]+)\ ms,\ max\ ([0-9.]+)\ ms ]] ||
		die "$method: unexpected backfill result in zdm.steps: '$result'"
	record "$run" "$method" rows_per_s "${BASH_REMATCH[1]}"
	record "$run" "$method" batches "${BASH_REMATCH[2]}"
	record "$run" "$method" batch_max_ms "${BASH_REMATCH[5]}"
}

run_zdm()
{
	local run=$1 db=bench_zdm_$1 span t0 t1
	fresh_db "$db" quiet
	span=$(zdm_apply "$db" "$work/zdm-$run.out")
	read -r t0 t1 <<<"$span"
	check_added "$db" zdm
	if [ "$run" != 0 ]; then
		record "$run" zdm wall_s "$(echo "$t1 - $t0" | bc -l)"
		zdm_phases "$db" "$run" zdm
	fi
	drop_db "$db"
}

# ---- client impact -------------------------------------------------------------------

# pgbench_start DB SECONDS PREFIX: 2 old-version clients in the background,
# half UPDATEs, half INSERTs, one statement a transaction, every
# transaction logged.
pgbench_start()
{
	"$PGBIN/pgbench" -n -c 2 -j 2 -T "$2" \
		-f "$root/bench/add_column_update.sql" \
		-f "$root/bench/add_column_insert.sql" \
		-D rows="$rows" -l --log-prefix="$3" "$1" >"$3.out" 2>&1 &
	pgbench_pid=$!
}

# pgbench_finish PREFIX: wait, check; sets aborted (clients that gave up).
# Not in a $(...): the subshell could not wait for pgbench.
pgbench_finish()
{
	local prefix=$1 rc=0
	wait "$pgbench_pid" || rc=$?
	pgbench_pid=
	aborted=$(grep -c 'aborted in command' "$prefix.out" || true)
	if [ "$rc" != 0 ] && [ "$aborted" = 0 ]; then
		cat "$prefix.out" >&2
		die "pgbench failed (exit $rc, output above)"
	fi
	cat "$prefix".[0-9]* >"$prefix.log" 2>/dev/null || die "pgbench wrote no transaction log"
}

# window_stats LOGFILE FROM TO: "tps max_ms failed n" over the
# transactions (one statement each) that ended in [FROM, TO] or began in
# it (a statement that waited through the whole window counts).  pgbench
# -l lines: client txno latency_us script epoch_s epoch_us; the latency is
# "failed" for a transaction that failed without aborting its client.
window_stats()
{
	awk -v from="$2" -v to="$3" '
	{
		t = $5 + $6 / 1e6
		if ($3 == "failed") {
			if (t >= from && t <= to) failed++
			next
		}
		start = t - $3 / 1e6
		if (t < from || start > to)
			next
		n++
		if ($3 > max) max = $3
	}
	END {
		printf "%.1f %.1f %d %d\n", n / (to - from), max / 1000, failed, n
	}' "$1"
}

# run_clients RUN METHOD: pgbench through the migration of METHOD (zdm, or
# pg-rewrite), on a fresh copy.
run_clients()
{
	local run=$1 method=$2 db=bench_clients_$1 prefix=$work/clients_$2_$1 off span \
		z0 z1 t_end to stats tps max failed
	fresh_db "$db" quiet
	off=$(log_offset)
	pgbench_start "$db" "$client_seconds" "$prefix"
	sleep 2 # the clients are connected and running when the migration starts
	if [ "$method" = zdm ]; then
		span=$(zdm_apply "$db" "$work/clients-$run.out")
	else
		span=$(pg_alter "$db" 'clock_timestamp()')
	fi
	read -r z0 z1 _ <<<"$span"
	pgbench_finish "$prefix"
	t_end=$(now)
	check_added "$db" "clients-$method"
	to=$z1
	if awk -v a="$z1" -v b="$t_end" 'BEGIN { exit !(a > b) }'; then
		log "run $run: the migration outlasted the client load; raise ZDM_BENCH_CLIENT_SECONDS"
		to=$t_end
	fi
	stats=$(window_stats "$prefix.log" "$z0" "$to")
	read -r tps max failed _ <<<"$stats"
	record "$run" "clients-$method" tps "$tps"
	record "$run" "clients-$method" max_ms "$max"
	record "$run" "clients-$method" failed "$((failed + aborted))"
	record "$run" "clients-$method" server_errors "$(server_errors_since "$off")"
	record "$run" "clients-$method" window_s "$(echo "$to - $z0" | bc -l)"
	drop_db "$db"
}

# ---- run ----------------------------------------------------------------------------

log "warm-up (discarded): the first pass writes the WAL segments later passes recycle"
run_pg 0 pg-rewrite 'clock_timestamp()'
run_zdm 0
for ((run = 1; run <= runs; run++)); do
	log "run $run of $runs: PostgreSQL's ADD COLUMN ... DEFAULT now()"
	run_pg "$run" pg-now 'now()'
	log "run $run of $runs: PostgreSQL's ADD COLUMN ... DEFAULT clock_timestamp()"
	run_pg "$run" pg-rewrite 'clock_timestamp()'
	log "run $run of $runs: zdm apply"
	run_zdm "$run"
done

if [ -z "$client_seconds" ]; then
	# with clients active the backfill yields 3/4 of its time to them
	# (runtime/backfill.c, YIELD_FACTOR): the migration takes up to 4x
	client_seconds=$(awk -v w="$(median zdm wall_s)" 'BEGIN {
		s = int(4 * w + 6.999); print s < 10 ? 10 : s }')
fi
for ((run = 1; run <= runs; run++)); do
	log "run $run of $runs: pgbench for ${client_seconds} s through zdm apply"
	run_clients "$run" zdm
	log "run $run of $runs: pgbench for ${client_seconds} s through PostgreSQL's rewrite"
	run_clients "$run" pg-rewrite
done

# ---- report ------------------------------------------------------------------------

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
checkpoints=$(bench_checkpoints)
[ "$checkpoints" = 0 ] || log "warning: $checkpoints checkpoints started on their own during the benchmark"
elapsed=$((SECONDS - bench_started))

s()
{
	fmt "$(median "$1" "$2")" "${3:-%.2f}"
}

# worst METHOD KEY: the largest value over the runs.
worst()
{
	awk -v m="$1" -v k="$2" '$2 == m && $3 == k && $4 > w { w = $4 } END { print w + 0 }' "$results"
}

failures()
{
	total "^$1\$" '^(failed|server_errors)$'
}

report()
{
	local vs_now vs_rewrite zdm_failed zdm_worst rewrite_worst
	vs_now=$(median_ratio zdm wall_s pg-now wall_s)
	vs_rewrite=$(median_ratio zdm wall_s pg-rewrite wall_s)
	zdm_failed=$(failures clients-zdm)
	zdm_worst=$(worst clients-zdm max_ms)
	rewrite_worst=$(worst clients-pg-rewrite max_ms)

	cat <<EOF
Measured $(date -u +%Y-%m-%d) by \`bench/add_column.sh\`: PostgreSQL $pg_version, $(nproc) cores, $(thousands "$rows") rows, median of $runs runs (ratios: median of the ratios within each run), $elapsed s in all; load average $load_before before, $load_after after; $checkpoints checkpoints by WAL volume or timeout.

**Adding \`created_at timestamptz NOT NULL\` with a per-row default**, wall time, nobody else writing

| method | wall s | zdm's time vs it | table rewritten |
| --- | --- | --- | --- |
| PostgreSQL, \`ADD COLUMN ... NOT NULL DEFAULT now()\` | $(s pg-now wall_s %.3f) | $(fmt "$vs_now" %.0fx) | $( [ "$(total '^pg-now$' '^rewrote$')" = 0 ] && echo "no: one value, kept in the catalog" || echo "yes") |
| PostgreSQL, \`ADD COLUMN ... NOT NULL DEFAULT clock_timestamp()\` | $(s pg-rewrite wall_s) | $(fmt "$vs_rewrite" %.2fx) | $( [ "$(total '^pg-rewrite$' '^rewrote$')" = "$runs" ] && echo "yes, under ACCESS EXCLUSIVE" || echo "not every run") |
| zdm, \`add column created_at timestamptz not null default now()\`, expand to contract | $(s zdm wall_s) | | no: backfilled in place |

zdm's phases (from the journal): expand $(s zdm expand_s %.3f) s, backfill $(s zdm backfill_s) s ($(thousands "$(median zdm rows_per_s)") rows/s, $(thousands "$(median zdm batches)") batches, worst batch $(s zdm batch_max_ms %.1f) ms), verify $(s zdm verify_s) s (the pending count, the NULL count, \`VALIDATE\`), contract $(s zdm contract_s %.3f) s.

**Old-version clients writing through the migration**: pgbench, 2 clients, one-statement transactions (an UPDATE of a random user, or an INSERT of a new one without created_at), ${client_seconds} s from 2 s before the migration started; figures over the migration's window

| | during \`zdm apply\` | during PostgreSQL's rewrite |
| --- | --- | --- |
| window, s | $(s clients-zdm window_s) | $(s clients-pg-rewrite window_s) |
| client statements/s | $(s clients-zdm tps %.0f) | $(s clients-pg-rewrite tps %.0f) |
| worst client statement, ms (median run / worst run) | $(s clients-zdm max_ms %.1f) / $(fmt "$zdm_worst" %.1f) | $(s clients-pg-rewrite max_ms %.1f) / $(fmt "$rewrite_worst" %.1f) |
| failed client statements, all runs | $zdm_failed | $(failures clients-pg-rewrite) |

**Targets**

| target | measured | met |
| --- | --- | --- |
| zdm at most 1.5x PostgreSQL's \`ADD COLUMN ... DEFAULT now() NOT NULL\` | $(fmt "$vs_now" %.0fx) | $(met "$vs_now" "<=" 1.5) |
| (the same against the rewrite a volatile default makes PostgreSQL do) | $(fmt "$vs_rewrite" %.2fx) | $(met "$vs_rewrite" "<=" 1.5) |
| zero failed client statements during zdm | $zdm_failed | $(met "$zdm_failed" "<=" 0) |
| worst client statement during zdm within the lock timeout ($lock_timeout_ms ms) | $(fmt "$zdm_worst" %.1f) ms | $(met "$zdm_worst" "<=" "$lock_timeout_ms") |
EOF
}

report >"$work/table.md"
cat "$work/table.md"
bench_write_doc "$work/table.md" "$doc" bench-add-column
cp "$results" "$build/bench-add-column-results.txt"
log "done in $elapsed s; every run's figures: $build/bench-add-column-results.txt"
