#!/usr/bin/env bash
#
# constraints.sh -- the benchmark of zdm's constraint and index actions against
# PostgreSQL's own statements (a script, not a test: it asserts nothing
# about speed, it measures and reports).
#
#   bash bench/constraints.sh            # 1M rows, 3 runs: about 4 minutes on 2 cores
#   ZDM_BENCH_ROWS=200000 ZDM_BENCH_RUNS=1 ZDM_BENCH_DOC=- bash bench/constraints.sh   # a quick look
#
# On a throwaway PostgreSQL with durable settings (bench/lib.sh), every
# method on a fresh copy of one template database: the 1M-row users table of
# users_template.sql and a 1M-row orders table (orders_template.sql, one
# order per user, no index on user_id), vacuumed, analyzed, prewarmed and
# checkpointed before the clock starts:
#
#   pg-unique    CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON
#                public.users (email), alone (one psql, wall time)
#   zdm-unique   zdm apply of constraints_unique.zdm (add constraint
#                users_email_key unique (email), no gate), end to end:
#                preflight, journal, expand, the concurrent build (its
#                duplicate count runs only if it fails: not here), contract
#                (ADD CONSTRAINT ... USING INDEX)
#   pg-fkey      ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey
#                FOREIGN KEY (user_id) REFERENCES public.users (id) NOT
#                VALID, then VALIDATE CONSTRAINT, alone (one psql, two
#                transactions, wall time)
#   zdm-fkey     zdm apply of constraints_fkey.zdm (the same constraint),
#                end to end: expand (NOT VALID), the validation, the orphan
#                count (nothing to count once validated), contract
#   pg-index     CREATE INDEX CONCURRENTLY users_name_idx ON public.users
#                (name), alone
#   zdm-index    zdm apply of constraints_index.zdm (create index
#                users_name_idx on public.users (name)), end to end
#
# Each zdm run is checked: the journal says done, and the constraint is
# there, validated.  Where zdm's time went comes from its journal
# (zdm.steps.started_at and finished_at): the index build, the checks, the
# validation, and everything else (connecting, preflight, journal, the
# other steps).
#
# Methods run interleaved (run 1 of each, then run 2, ...; within a run the
# order rotates) after one discarded warm-up of each, and each figure is the
# median of the runs; ratios are zdm's over PostgreSQL's within one run,
# then the median of those: the machine is shared and noisy, and only ratios
# measured in one run compare.  The Markdown table goes to stdout and
# between <!-- bench-constraints:begin --> and <!-- bench-constraints:end -->
# of docs/performance.md; progress goes to stderr.  Any error stops the run
# (set -e, every psql with ON_ERROR_STOP); the EXIT trap stops the server.
#
# Environment: ZDM_BENCH_ROWS (1000000), ZDM_BENCH_RUNS (3),
# ZDM_BENCH_BUILD (build dir for zdm and zdmc, default build/bench, shared
# with run.sh), ZDM_BENCH_DOC (the file to update, default
# docs/performance.md; "-" updates nothing).
set -euo pipefail
shopt -s inherit_errexit

bench_me=constraints.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rows=${ZDM_BENCH_ROWS:-1000000}
runs=${ZDM_BENCH_RUNS:-3}
build=${ZDM_BENCH_BUILD:-$root/build/bench}
doc=${ZDM_BENCH_DOC:-$root/docs/performance.md}

bench_positive ZDM_BENCH_ROWS "$rows"
bench_positive ZDM_BENCH_RUNS "$runs"
bench_check_doc "$doc" bench-constraints
bench_check_tools cmake psql

bench_started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init_work

# ---- build ------------------------------------------------------------------

bench_build "$build" zdm zdmc
zdm=$build/zdm
zdmc=$build/zdmc
for m in unique fkey index; do
	"$zdmc" compile "$root/bench/constraints_$m.zdm" -o "$work/$m.plan"
done

# ---- server -----------------------------------------------------------------

bench_server_start

log "PostgreSQL $pg_version; building the $rows-row users and orders tables"
q postgres -c 'CREATE DATABASE bench_template'
q bench_template -v rows="$rows" -f "$root/bench/users_template.sql"
q bench_template -v rows="$rows" -f "$root/bench/orders_template.sql"

# A fresh copy with orders in the buffers too (fresh_db prewarms users).
fresh()
{
	fresh_db "$1" quiet
	q "$1" -c "SELECT public.pg_prewarm('public.orders'), public.pg_prewarm('public.orders_pkey')" \
		-c CHECKPOINT >/dev/null
}

# timed DB SQL...: one psql running each SQL as its own transaction (psql's
# autocommit); prints the wall time in seconds.
timed()
{
	local db=$1 t0 t1 args=()
	shift
	for sql in "$@"; do
		args+=(-c "$sql")
	done
	t0=$(now)
	q "$db" "${args[@]}" >/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}

# ---- the methods --------------------------------------------------------------

# run_pg RUN M SQL...: PostgreSQL's own statements for constraint M, timed
# on a fresh copy (run 0: the warm-up, not recorded).
run_pg()
{
	local run=$1 m=$2 db=bench_pg_$2_$1 s
	shift 2
	fresh "$db"
	s=$(timed "$db" "$@")
	[ "$run" = 0 ] || record "$run" "pg-$m" wall_s "$s"
	drop_db "$db"
}

run_pg_unique()
{
	run_pg "$1" unique 'CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON public.users (email)'
}

run_pg_index()
{
	run_pg "$1" index 'CREATE INDEX CONCURRENTLY users_name_idx ON public.users (name)'
}

run_pg_fkey()
{
	run_pg "$1" fkey \
		'ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users (id) NOT VALID' \
		'ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey'
}

# step_seconds DB PLAN KIND|validate: seconds zdm's journal gives the steps
# of that kind (validate: the sql steps whose description starts with
# "validate", the VALIDATE CONSTRAINT steps).
step_seconds()
{
	local db=$1 plan=$2 what=$3 ids
	ids=$(awk -v what="$what" '
		/^  - id: / { id = $3 }
		/^    kind: / { kind = $2; if (what != "validate" && kind == what) print id }
		/^    description: / && what == "validate" && kind == "sql" && $2 ~ /^.?validate/ { print id }' "$plan" |
		sed "s/.*/'&'/" | paste -sd, -)
	[ -n "$ids" ] || { echo 0; return; }
	q "$db" -c "SELECT coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)
	              FROM zdm.steps WHERE step_id IN ($ids)"
}

# run_zdm RUN unique|fkey|index: the whole migration, checked.
run_zdm()
{
	local run=$1 m=$2 db=bench_zdm_$2_$1 plan=$work/$2.plan t0 t1 state ok
	fresh "$db"
	t0=$(now)
	if ! "$zdm" apply "$plan" --db "dbname=$db" >"$work/zdm-$m-$run.out" 2>&1; then
		cat "$work/zdm-$m-$run.out" >&2
		die "zdm apply of constraints_$m.zdm failed on $db (output above)"
	fi
	t1=$(now)
	state=$(q "$db" -c "SELECT state FROM zdm.migrations")
	[ "$state" = done ] || die "zdm apply exited 0 but the journal says '$state'"
	ok=$(q "$db" -c "SELECT count(*) FROM pg_catalog.pg_constraint
	                  WHERE conname IN ('users_email_key', 'orders_user_id_fkey') AND convalidated")
	[ "$m" != index ] || ok=$(q "$db" -c "SELECT count(*) FROM pg_catalog.pg_index
	                  WHERE indexrelid = 'public.users_name_idx'::pg_catalog.regclass AND indisvalid")
	[ "$ok" = 1 ] || die "zdm apply of constraints_$m.zdm left no validated constraint or valid index"
	if [ "$run" != 0 ]; then
		record "$run" "zdm-$m" wall_s "$(echo "$t1 - $t0" | bc -l)"
		record "$run" "zdm-$m" build_s "$(step_seconds "$db" "$plan" autocommit)"
		record "$run" "zdm-$m" check_s "$(step_seconds "$db" "$plan" check)"
		record "$run" "zdm-$m" validate_s "$(step_seconds "$db" "$plan" validate)"
	fi
	drop_db "$db"
}

# ---- run ----------------------------------------------------------------------------

log "warm-up (discarded)"
run_pg_unique 0
run_zdm 0 unique
run_pg_fkey 0
run_zdm 0 fkey
run_pg_index 0
run_zdm 0 index
methods=(pg_unique zdm_unique pg_fkey zdm_fkey pg_index zdm_index)
for ((run = 1; run <= runs; run++)); do
	for ((i = 0; i < ${#methods[@]}; i++)); do
		method=${methods[$(((i + run) % ${#methods[@]}))]}
		log "run $run of $runs: $method"
		case $method in
		pg_unique) run_pg_unique "$run" ;;
		pg_fkey) run_pg_fkey "$run" ;;
		zdm_unique) run_zdm "$run" unique ;;
		zdm_fkey) run_zdm "$run" fkey ;;
		pg_index) run_pg_index "$run" ;;
		zdm_index) run_zdm "$run" index ;;
		esac
	done
done

# ---- report ------------------------------------------------------------------------

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
checkpoints=$(bench_checkpoints)
[ "$checkpoints" = 0 ] || log "warning: $checkpoints checkpoints started on their own during the benchmark"
elapsed=$((SECONDS - bench_started))

# zdm_row M LABEL PG-LABEL: one constraint's line.
zdm_row()
{
	local m=$1 label=$2 wall other
	wall=$(median "zdm-$m" wall_s)
	other=$(awk -v m="zdm-$m" '
		$2 == m && $3 == "wall_s" { w[$1] = $4 }
		$2 == m && ($3 == "build_s" || $3 == "check_s" || $3 == "validate_s") { s[$1] += $4 }
		END { for (r in w) print w[r] - s[r] }' "$results" | median_of)
	echo "| $label | $(fmt "$(median "pg-$m" wall_s)" %.2f) | $(fmt "$wall" %.2f) | $(fmt "$(median_ratio "zdm-$m" wall_s "pg-$m" wall_s)" %.2fx) | $(fmt "$(median "zdm-$m" build_s)" %.2f) | $(fmt "$(median "zdm-$m" validate_s)" %.2f) | $(fmt "$(median "zdm-$m" check_s)" %.2f) | $(fmt "$other" %.2f) |"
}

report()
{
	local unique fkey index
	unique=$(median_ratio zdm-unique wall_s pg-unique wall_s)
	index=$(median_ratio zdm-index wall_s pg-index wall_s)
	fkey=$(median_ratio zdm-fkey wall_s pg-fkey wall_s)
	cat <<EOF
Measured $(date -u +%Y-%m-%d) by \`bench/constraints.sh\`: PostgreSQL $pg_version, $(nproc) cores, $(thousands "$rows") users and as many orders, median of $runs runs (ratios: median of the ratios within each run), $elapsed s in all; load average $load_before before, $load_after after; $checkpoints checkpoints by WAL volume or timeout.

Wall seconds; zdm's split from its journal (steps' started_at to finished_at).

| constraint | PostgreSQL alone | zdm apply, end to end | ratio | zdm: index build | zdm: validation | zdm: checks | zdm: the rest |
| --- | --- | --- | --- | --- | --- | --- | --- |
$(zdm_row unique "\`unique (email)\` on users: \`CREATE UNIQUE INDEX CONCURRENTLY\`")
$(zdm_row fkey "\`foreign key (user_id) references users (id)\` on orders: \`ADD ... NOT VALID\` + \`VALIDATE CONSTRAINT\`")
$(zdm_row index "\`create index users_name_idx on users (name)\`: \`CREATE INDEX CONCURRENTLY\`")

**Targets**

| target | measured | met |
| --- | --- | --- |
| \`add constraint ... unique\` within 1.2x of \`CREATE UNIQUE INDEX CONCURRENTLY\` alone | $(fmt "$unique" %.2fx) | $(met "$unique" "<=" 1.2) |
| \`add constraint ... foreign key\` within 1.2x of \`ADD ... NOT VALID\` + \`VALIDATE\` alone | $(fmt "$fkey" %.2fx) | $(met "$fkey" "<=" 1.2) |
| \`create index\` within 1.1x of \`CREATE INDEX CONCURRENTLY\` alone | $(fmt "$index" %.2fx) | $(met "$index" "<=" 1.1) |
EOF
}

report >"$work/table.md"
cat "$work/table.md"
bench_write_doc "$work/table.md" "$doc" bench-constraints
mkdir -p "$build"
cp "$results" "$build/bench-constraints-results.txt"
log "done in $elapsed s; every run's figures: $build/bench-constraints-results.txt"
