#!/usr/bin/env bash
#
# cdc.sh -- the benchmark of sync = cdc (zdm sync applying a table's changes
# from logical replication) against trigger sync and against no sync at all
# (a script, not a test: it asserts nothing about speed, it measures and
# reports).
#
#   bash bench/cdc.sh            # 3 runs: about 8 minutes on 2 cores
#   ZDM_BENCH_RUNS=1 ZDM_BENCH_EVENTS=50000 ZDM_BENCH_LAG_SECONDS=12 \
#     ZDM_BENCH_CLIENT_SECONDS=5 ZDM_BENCH_DOC=- bash bench/cdc.sh   # a quick look
#
# On a throwaway PostgreSQL with durable settings (bench/lib.sh: fsync,
# full_page_writes and synchronous_commit on), every measurement on a fresh
# copy of one template database (the users table of users_template.sql and
# the helpers of cdc_setup.sql), the migration stopped right after expand
# (cdc_split_name.zdm and cdc_trigger_split_name.zdm approve the backfill
# gate, so `zdm apply` exits 4 there: slot, publication, origin, REPLICA
# IDENTITY FULL or the sync triggers in place, every row still pending):
#
#   apply   events applied per second.  With zdm sync not running, a backlog
#           of ZDM_BENCH_EVENTS old-version single-row UPDATEs of name, each
#           its own transaction (bench.backlog), then one marker write; zdm
#           sync is started and timed from its start until the marker shows
#           in the new columns (bench.wait_mark).  The baseline, from the
#           same WAL: a second pgoutput slot on the plan's publication,
#           created with zdm's, read to the marker by
#           zdm_cdc_pgoutput_driver (the source zdm sync uses, decoding and
#           acknowledging, applying nothing), timed the same way.  Also the
#           CPU each event cost zdm sync's three processes (from /proc):
#           the walsender (decoding), zdm sync itself, its apply backend;
#           and the decoder's (its own, and the server's while it read).
#   lag     steady-state lag under a write load.  zdm sync running, pgbench
#           --rate ZDM_BENCH_RATE (16 clients; 80% old-version writes of name
#           through the table, 20% new-version writes of last_name through
#           the new version's view) for ZDM_BENCH_LAG_SECONDS; after 3 s,
#           bench.lag_probe until 2 s before the end: a probe write every
#           200 ms timed from its commit until the sync has applied it, and
#           zdm.cdc.lag_seconds sampled every 200 ms.  Median, p95 and max
#           of both, and the write rate pgbench achieved.
#   clients client write throughput: pgbench at full speed, 4 clients,
#           old-version writes of name, ZDM_BENCH_CLIENT_SECONDS, on
#             none      no migration (the baseline),
#             trigger   the trigger plan after expand,
#             cdc-idle  the cdc plan after expand, zdm sync not running
#                       (what REPLICA IDENTITY FULL and the slot cost alone),
#             cdc       the cdc plan after expand, zdm sync running;
#           and none, trigger and cdc again with -pin: pgbench and every
#           backend the postmaster starts on core 0, zdm sync, its
#           walsender and its apply backend on core 1 (taskset; left out on
#           one core), a server with a core for the sync: what the write
#           path itself pays, which the shared-cores modes cannot separate
#           from the sync's CPU taking the clients' cores;
#           tps, ratios to none (-pin: to none-pin) within each run, failed
#           client statements
#           (pgbench's failed transactions and aborted clients, ERRORs of
#           pgbench sessions in the server log), CPU per client write (the
#           whole server's, from /proc, plus zdm sync's: the figure other
#           load on the machine disturbs least), and for cdc how far behind
#           the sync was when pgbench stopped and how long it took to catch
#           up, and the CPU per write of its three processes.  Each run takes
#           the modes in a rotated order.
#
# Every run that ran zdm sync ends by checking the sync's work: every row it
# marked synced agrees with the split (the plan's verify.5), and in the
# apply phase exactly the rows written are synced; zdm sync must stop with
# exit 0 on SIGTERM.  Phases run interleaved (run 1 of each, then run 2,
# ...) after one discarded warm-up of the apply phase, and each figure is
# the median of the runs (ratios: the median of the ratios within a run):
# the machine is shared and noisy.  The Markdown table goes to stdout and
# between <!-- bench-cdc:begin --> and <!-- bench-cdc:end --> of
# docs/performance.md; progress goes to stderr.  Any error stops the run
# (set -e, every psql with ON_ERROR_STOP); the EXIT trap stops pgbench, zdm
# sync and the server.
#
# Environment: ZDM_BENCH_ROWS (table rows, 1000000), ZDM_BENCH_RUNS (3),
# ZDM_BENCH_EVENTS (backlog, 300000), ZDM_BENCH_RATE (writes/s of the lag
# phase, 5000), ZDM_BENCH_LAG_SECONDS (30, at least 10),
# ZDM_BENCH_CLIENT_SECONDS (15), ZDM_BENCH_BUILD (build dir, default
# build/bench, shared with run.sh), ZDM_BENCH_DOC (the file to update,
# default docs/performance.md; "-" updates nothing).
set -euo pipefail
shopt -s inherit_errexit

bench_me="bench cdc"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rows=${ZDM_BENCH_ROWS:-1000000}
runs=${ZDM_BENCH_RUNS:-3}
events=${ZDM_BENCH_EVENTS:-300000}
rate=${ZDM_BENCH_RATE:-5000}
lag_seconds=${ZDM_BENCH_LAG_SECONDS:-30}
client_seconds=${ZDM_BENCH_CLIENT_SECONDS:-15}
build=${ZDM_BENCH_BUILD:-$root/build/bench}
doc=${ZDM_BENCH_DOC:-$root/docs/performance.md}
# full-speed clients: a few per core, enough for group commit to matter
clients=4
# clients of the rate-limited load: more than it needs, so that one slow
# commit does not put pgbench behind its schedule
rate_clients=16
# the new-version share of the lag phase's writes, in percent
new_share=20

bench_positive ZDM_BENCH_ROWS "$rows"
bench_positive ZDM_BENCH_RUNS "$runs"
bench_positive ZDM_BENCH_EVENTS "$events"
bench_positive ZDM_BENCH_RATE "$rate"
bench_positive ZDM_BENCH_LAG_SECONDS "$lag_seconds"
bench_positive ZDM_BENCH_CLIENT_SECONDS "$client_seconds"
[ "$lag_seconds" -ge 10 ] || die "ZDM_BENCH_LAG_SECONDS must be at least 10 (3 s to settle, 2 s at the end)"
[ "$rows" -ge 1000 ] || die "ZDM_BENCH_ROWS must be at least 1000"
bench_check_doc "$doc" bench-cdc
bench_check_tools cmake psql
[ -r /proc/self/stat ] || die "/proc is needed (CPU time of zdm sync's processes)"
# the client modes with zdm sync on a core of its own: two cores or more
pin_modes=(none-pin trigger-pin cdc-pin)
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
	log "one core, or no taskset: the modes with the sync on its own core are left out"
	pin_modes=()
fi

bench_started=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
clk_tck=$(getconf CLK_TCK)

bench_init_work
pgbench_pid=
sync_pid=
# shellcheck disable=SC2016 # expanded when the trap runs
zdm_on_exit 'for p in $pgbench_pid $sync_pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done'

# ---- build ------------------------------------------------------------------

# which sources the figures come from: the build is of the working tree,
# which may be changing under the benchmark, so it is fingerprinted first
runtime_sha=$(cat "$root"/runtime/*.c "$root"/runtime/*.h | sha256sum | cut -c1-12)
bench_build "$build" zdm zdmc zdm_cdc_pgoutput_driver
zdm=$build/zdm
zdmc=$build/zdmc
decoder=$build/tests/zdm_cdc_pgoutput_driver
[ -x "$decoder" ] || die "$decoder was not built"
zdm_version=$("$zdm" --version 2>&1 | head -n 1)

# compile the two migrations; read the names the runtime will use
(cd "$root/bench" && "$zdmc" compile cdc_split_name.zdm -o "$work/cdc.plan" &&
	"$zdmc" compile cdc_trigger_split_name.zdm -o "$work/trigger.plan") >"$work/zdmc.out" 2>&1 ||
	{ cat "$work/zdmc.out" >&2; die "zdmc compile failed"; }

# plan_get PLAN SECTION KEY: a scalar of a top-level section ("-": top level).
plan_get()
{
	awk -v section="$2" -v key="$3" '
	section == "-" && index($0, key ": ") == 1 { print substr($0, length(key) + 3); exit }
	/^[a-z_]+:/ { cur = $1; sub(/:$/, "", cur) }
	cur == section && index($0, "  " key ": ") == 1 { print substr($0, length(key) + 5); exit }' "$1"
}
cdc_migration=$(plan_get "$work/cdc.plan" - migration)
cdc_slot=$(plan_get "$work/cdc.plan" cdc slot)
cdc_publication=$(plan_get "$work/cdc.plan" cdc publication)
cdc_origin=$(plan_get "$work/cdc.plan" cdc origin)
cdc_vschema=$(plan_get "$work/cdc.plan" new_version schema)
[[ -n $cdc_migration && -n $cdc_slot && -n $cdc_publication && -n $cdc_origin &&
	-n $cdc_vschema ]] ||
	die "cannot read migration, cdc slot, publication, origin, new_version schema from the cdc plan"

# ---- server -----------------------------------------------------------------

bench_server_start

log "PostgreSQL $pg_version; building the $rows-row template table"
q postgres -c 'CREATE DATABASE bench_template'
q bench_template -v rows="$rows" -f "$root/bench/users_template.sql"
q bench_template -f "$root/bench/cdc_setup.sql"

# ---- zdm --------------------------------------------------------------------------

# zdm_expand DB PLAN: zdm apply up to the backfill gate (exit 4).
zdm_expand()
{
	local db=$1 plan=$2 rc=0
	"$zdm" apply "$plan" --db "dbname=$db" >"$work/apply.out" 2>&1 || rc=$?
	if [ "$rc" != 4 ] || ! grep -q '^zdm: paused at gate "backfill"' "$work/apply.out"; then
		cat "$work/apply.out" >&2
		die "zdm apply $(basename "$plan") on $db: exit $rc, not 4 at the backfill gate (output above)"
	fi
}

# sync_start DB: zdm sync in the background ($sync_pid), output in
# $work/sync.out.
sync_start()
{
	"$zdm" sync "$work/cdc.plan" --db "dbname=$1" >"$work/sync.out" 2>&1 &
	sync_pid=$!
}

# sync_alive: or stop the benchmark with its output.
sync_alive()
{
	if ! kill -0 "$sync_pid" 2>/dev/null; then
		cat "$work/sync.out" >&2
		die "zdm sync exited early (its output above)"
	fi
}

# sync_wait_running DB: until zdm.cdc shows this sync's first report (it
# has opened the slot and applies).
sync_wait_running()
{
	local i
	for ((i = 0; i < 300; i++)); do
		sync_alive
		[ "$(q "$1" -c "SELECT EXISTS (SELECT FROM pg_catalog.pg_class
		        WHERE oid = pg_catalog.to_regclass('zdm.cdc'))")" = t ] &&
			[ "$(q "$1" -c "SELECT EXISTS (SELECT FROM zdm.cdc WHERE migration = '$cdc_migration'
			        AND state = 'running' AND pid = $sync_pid AND applied_lsn IS NOT NULL)")" = t ] &&
			return 0
		sleep 0.1
	done
	die "zdm sync did not report as running within 30 s"
}

# sync_pids DB: "APPLY_BACKEND WALSENDER" of the running zdm sync.
sync_pids()
{
	local pids
	pids=$(q "$1" -F ' ' -c "
	    SELECT (SELECT pid FROM pg_catalog.pg_stat_activity
	             WHERE datname = '$1' AND application_name = 'zdm sync' AND backend_type = 'client backend'),
	           (SELECT pid FROM pg_catalog.pg_stat_activity
	             WHERE datname = '$1' AND application_name = 'zdm cdc' AND backend_type = 'walsender')")
	[[ $pids =~ ^[0-9]+\ [0-9]+$ ]] || die "cannot find zdm sync's backend and walsender"
	echo "$pids"
}

# sync_stop: SIGTERM; it must exit 0.
sync_stop()
{
	local rc=0
	kill -TERM "$sync_pid"
	wait "$sync_pid" || rc=$?
	sync_pid=
	if [ "$rc" != 0 ]; then
		cat "$work/sync.out" >&2
		die "zdm sync exited $rc on SIGTERM, not 0 (output above)"
	fi
}

# mark DB TAG: the marker write (an old-version write to row 1), committed
# synchronously, so every write before it is flushed and decodable.
mark()
{
	q "$1" -c "UPDATE public.users SET name = 'zdmbenchmark $2' WHERE id = 1"
}

# wait_mark DB TAG: prints the server's epoch time at which the sync had
# applied the marker.  A second at a time, so that a sync that died is
# noticed; 600 s without it is a hang, not slowness.
wait_mark()
{
	local db=$1 tag=$2 at i
	for ((i = 0; i < 600; i++)); do
		sync_alive
		at=$(q "$db" -c "SELECT bench.wait_mark('$tag', 1)")
		if [ -n "$at" ]; then
			echo "$at"
			return 0
		fi
	done
	die "zdm sync did not apply the marker write in 600 s (it is running: a hang)"
}

# check_synced DB [EXPECTED]: every row the sync marked synced agrees with
# the split (the plan's verify.5: the new columns are the split of name,
# or name is the join of the new columns where the new version wrote);
# with EXPECTED, exactly that many rows are synced.
check_synced()
{
	local db=$1 want=${2:-} got synced bad
	got=$(q "$db" -c "
	SELECT count(*) FILTER (WHERE NOT zdm_sync_pending) || ' ' ||
	       count(*) FILTER (WHERE NOT zdm_sync_pending AND NOT (
	           (zdm_new_first_name IS NOT DISTINCT FROM split_part(name, ' ', 1)
	            AND zdm_new_last_name IS NOT DISTINCT FROM nullif(substr(name, length(split_part(name, ' ', 1)) + 2), ''))
	           OR name IS NOT DISTINCT FROM concat_ws(' ', zdm_new_first_name, zdm_new_last_name)))
	  FROM public.users")
	read -r synced bad <<<"$got"
	[ "$bad" = 0 ] || die "$db: $bad of $synced synced rows disagree with the split"
	[ -z "$want" ] || [ "$synced" = "$want" ] || die "$db: $synced rows synced, expected $want"
	[ "$synced" -gt 0 ] || die "$db: no row synced"
}

# drop_cdc_db DB: its slots, the database, and the plan's replication
# origin (origins belong to the cluster and outlive the database; the next
# expand refuses to start with one left over).
drop_cdc_db()
{
	q "$1" -c "SELECT count(pg_catalog.pg_drop_replication_slot(slot_name))
	             FROM pg_catalog.pg_replication_slots WHERE database = '$1'" >/dev/null
	drop_db "$1"
	q postgres -c "SELECT count(pg_catalog.pg_replication_origin_drop(roname))
	                 FROM pg_catalog.pg_replication_origin WHERE roname = '$cdc_origin'" >/dev/null
}

# cpu_s PID: user + system CPU seconds of a live process, from /proc.
cpu_s()
{
	awk -v tck="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / tck }' "/proc/$1/stat"
}

# server_cpu_s: user + system CPU seconds of the whole server so far: the
# postmaster, every live child, and (cutime, cstime) every child that has
# exited and been reaped, such as the backends of a finished pgbench.  The
# difference of two readings is what the server spent in between, whatever
# came and went.  CPU time moves far less than wall time when other work
# shares the machine (though not immune: caches and cores are shared).
server_cpu_s()
{
	local pm
	pm=$(head -n 1 "$ZDM_PG_DIR/data/postmaster.pid")
	# a process may end between the glob and the read: skip it
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v tck="$clk_tck" -v pm="$pm" '
	{
		pid = $1
		sub(/^.*\) /, "")
		# now $2 is the parent, $12 $13 utime stime, $14 $15 cutime cstime
		if (pid == pm)
			t += $12 + $13 + $14 + $15
		else if ($2 == pm)
			t += $12 + $13
	}
	END { printf "%.3f\n", t / tck }'
}

# other_snapshot: "wall busy ours" now: the machine's busy CPU seconds
# since boot (all cores, /proc/stat) and this benchmark's own: the server,
# every reaped descendant of this script (pgbench, psql, zdm, the decoder:
# Linux adds a child's CPU to its parent's cutime when it is reaped), and a
# zdm sync still running.
other_snapshot()
{
	local busy self sync=0
	busy=$(awk -v tck="$clk_tck" '$1 == "cpu" { printf "%.3f\n", ($2 + $3 + $4 + $7 + $8 + $9) / tck; exit }' /proc/stat)
	self=$(awk -v tck="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($14 + $15) / tck }' "/proc/$$/stat")
	if [ -n "$sync_pid" ] && kill -0 "$sync_pid" 2>/dev/null; then
		sync=$(cpu_s "$sync_pid")
	fi
	echo "$(now) $busy $(echo "$(server_cpu_s) + $self + $sync" | bc -l)"
}

# record_other RUN METHOD SNAPSHOT: the cores other work on the machine kept
# busy, on average, since SNAPSHOT (other_snapshot) -- what to read a wall
# clock figure of that run with: with 2 cores, 1 means half the machine was
# someone else's.
record_other()
{
	local w0 b0 o0 w1 b1 o1
	read -r w0 b0 o0 <<<"$3"
	sleep 0.2 # exited backends reaped, their CPU in the postmaster's cutime
	read -r w1 b1 o1 <<<"$(other_snapshot)"
	record "$1" "$2" other_cores "$(echo "o = (($b1 - $b0) - ($o1 - $o0)) / ($w1 - $w0); if (o < 0) o = 0; o" | bc -l)"
}

# ---- apply: events applied per second ----------------------------------------------

run_apply()
{
	local run=$1 db=cdc_apply_$1 t0 t1 c0 c1 at expect out n app_pid wal_pid c_sync c_app c_wal \
		other
	fresh_db "$db" quiet
	zdm_expand "$db" "$work/cdc.plan"
	# the baseline's slot sees exactly what zdm's does: created before the
	# backlog, on the same publication
	q "$db" -c "SELECT pg_catalog.pg_create_logical_replication_slot('bench_decode', 'pgoutput')" >/dev/null
	PGOPTIONS='-c synchronous_commit=off' q "$db" -c "CALL bench.backlog($events, $rows)"
	mark "$db" "$run"
	n=$((events + 1))

	# decoding alone: the source, reading to the marker and acknowledging
	other=$(other_snapshot)
	c0=$(server_cpu_s)
	t0=$(now)
	"$decoder" -c "dbname=$db" -q -n "$n" -t 30000 bench_decode "$cdc_publication" \
		>/dev/null 2>"$work/decode.err" || { cat "$work/decode.err" >&2; die "zdm_cdc_pgoutput_driver failed"; }
	t1=$(now)
	sleep 0.2 # the walsender has exited and been reaped: its CPU is the postmaster's cutime
	c1=$(server_cpu_s)
	out=$(grep '^changes ' "$work/decode.err") || die "zdm_cdc_pgoutput_driver printed no summary"
	[[ $out =~ ^changes\ $n\  ]] || die "the decoder read '$out', not $n changes"
	[[ $out =~ cpu\ ([0-9.]+)\ s ]] || die "no cpu in '$out'"
	q "$db" -c "SELECT pg_catalog.pg_drop_replication_slot('bench_decode')" >/dev/null
	if [ "$run" != 0 ]; then
		record "$run" decode events_per_s "$(echo "$n / ($t1 - $t0)" | bc -l)"
		record "$run" decode seconds "$(echo "$t1 - $t0" | bc -l)"
		record "$run" decode client_us "$(echo "${BASH_REMATCH[1]} * 1000000 / $n" | bc -l)"
		# the walsender, and what else the server did meanwhile (little)
		record "$run" decode server_us "$(echo "($c1 - $c0) * 1000000 / $n" | bc -l)"
	fi

	# zdm sync, from a standing start, until the marker is applied
	t0=$(now)
	sync_start "$db"
	at=$(wait_mark "$db" "$run")
	# CPU so far of zdm sync and its two server processes (still running)
	read -r app_pid wal_pid <<<"$(sync_pids "$db")"
	c_sync=$(cpu_s "$sync_pid")
	c_app=$(cpu_s "$app_pid")
	c_wal=$(cpu_s "$wal_pid")
	sync_stop
	[ "$run" = 0 ] || record_other "$run" sync "$other"
	expect=$(q "$db" -c "SELECT bench.backlog_rows($events, $rows) + 1")
	check_synced "$db" "$expect"
	if [ "$run" != 0 ]; then
		record "$run" sync events_per_s "$(echo "$n / ($at - $t0)" | bc -l)"
		record "$run" sync seconds "$(echo "$at - $t0" | bc -l)"
		record "$run" sync client_us "$(echo "$c_sync * 1000000 / $n" | bc -l)"
		record "$run" sync backend_us "$(echo "$c_app * 1000000 / $n" | bc -l)"
		record "$run" sync walsender_us "$(echo "$c_wal * 1000000 / $n" | bc -l)"
	fi
	drop_cdc_db "$db"
}

# ---- lag: steady state at a fixed write rate ------------------------------------------

# pgbench_summary FILE RUN METHOD RC: tps, transactions, failed
# transactions, aborted clients and mean latency from pgbench's output.
# pgbench exits non-zero (RC) when a client aborted, which is counted, not
# fatal; any other failure is.
pgbench_summary()
{
	local file=$1 run=$2 method=$3 rc=$4 aborted tps failed txns
	aborted=$(grep -c 'aborted in command' "$file" || true)
	if [ "$rc" != 0 ] && [ "$aborted" = 0 ]; then
		cat "$file" >&2
		die "pgbench failed (exit $rc, output above)"
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$file")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\) .*/\1/p' "$file")
	txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$file")
	[[ -n $tps && -n $failed && -n $txns ]] || { cat "$file" >&2; die "cannot read pgbench's summary"; }
	record "$run" "$method" tps "$tps"
	record "$run" "$method" failed "$failed"
	record "$run" "$method" aborted "$aborted"
	record "$run" "$method" txns "$txns"
	sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$file" | head -n 1 |
		while read -r v; do record "$run" "$method" latency_ms "$v"; done
}

run_lag()
{
	local run=$1 db=cdc_lag_$1 off rc=0 probe_seconds stats n unapplied p50 p95 max \
		zn z50 z95 zmax other
	fresh_db "$db" quiet
	zdm_expand "$db" "$work/cdc.plan"
	sync_start "$db"
	sync_wait_running "$db"
	off=$(log_offset)
	other=$(other_snapshot)
	"$PGBIN/pgbench" -n -c "$rate_clients" -j 2 -T "$lag_seconds" --rate="$rate" \
		-f "$root/bench/cdc_old_write.sql@$((100 - new_share))" \
		-f "$root/bench/cdc_new_write.sql@$new_share" \
		-D rows="$rows" -D vschema="$cdc_vschema" "$db" >"$work/pgbench.out" 2>&1 &
	pgbench_pid=$!
	sleep 3 # connected and at its rate
	probe_seconds=$((lag_seconds - 5))
	q "$db" -c "CALL bench.lag_probe($probe_seconds, '$cdc_migration')"
	wait "$pgbench_pid" || rc=$?
	pgbench_pid=
	record_other "$run" lag "$other"
	pgbench_summary "$work/pgbench.out" "$run" lag "$rc"
	sed -n 's/^rate limit schedule lag: avg \([0-9.]*\) (max \([0-9.]*\)) ms$/\1 \2/p' "$work/pgbench.out" |
		while read -r avg max; do
			record "$run" lag schedule_avg_ms "$avg"
			record "$run" lag schedule_max_ms "$max"
		done
	record "$run" lag server_errors "$(server_errors_since "$off")"
	sync_alive
	stats=$(q "$db" -F ' ' -c "
	    SELECT count(*), count(*) FILTER (WHERE NOT applied),
	           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
	           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), max(ms),
	           (SELECT count(seconds) FROM bench.zdm_lag),
	           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM bench.zdm_lag),
	           (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) FROM bench.zdm_lag),
	           (SELECT max(seconds) FROM bench.zdm_lag)
	      FROM bench.probes")
	read -r n unapplied p50 p95 max zn z50 z95 zmax <<<"$stats"
	[[ $n -gt 0 && $zn -gt 0 ]] || die "the lag probe recorded nothing ($stats)"
	record "$run" lag probes "$n"
	record "$run" lag probes_unapplied "$unapplied"
	record "$run" lag probe_p50_ms "$p50"
	record "$run" lag probe_p95_ms "$p95"
	record "$run" lag probe_max_ms "$max"
	record "$run" lag zdm_samples "$zn"
	record "$run" lag zdm_p50_ms "$(echo "$z50 * 1000" | bc -l)"
	record "$run" lag zdm_p95_ms "$(echo "$z95 * 1000" | bc -l)"
	record "$run" lag zdm_max_ms "$(echo "$zmax * 1000" | bc -l)"
	mark "$db" "lag$run"
	wait_mark "$db" "lag$run" >/dev/null
	sync_stop
	check_synced "$db"
	drop_cdc_db "$db"
}

# ---- clients: write throughput --------------------------------------------------------

# run_clients RUN MODE: MODE is none, trigger, cdc-idle or cdc, with -pin:
# the clients (pgbench, and through the postmaster every backend it
# starts) on core 0 and zdm sync's three processes on core 1, which is a
# server whose sync has a core to itself; the server's background
# processes and other work on the machine stay unpinned.
run_clients()
{
	local run=$1 mode=$2 base=${2%-pin} db=cdc_clients_${2//-/_}_$1 off rc=0 t_end at txns c0 c1 \
		s0=0 s1=0 a0=0 a1=0 w0=0 w1=0 app_pid wal_pid other pin= pm p
	[ "$base" = "$mode" ] || pin=1
	pm=$(head -n 1 "$ZDM_PG_DIR/data/postmaster.pid")
	fresh_db "$db" quiet
	case $base in
	trigger) zdm_expand "$db" "$work/trigger.plan" ;;
	cdc-idle) zdm_expand "$db" "$work/cdc.plan" ;;
	cdc)
		zdm_expand "$db" "$work/cdc.plan"
		sync_start "$db"
		sync_wait_running "$db"
		read -r app_pid wal_pid <<<"$(sync_pids "$db")"
		if [ -n "$pin" ]; then
			for p in "$sync_pid" "$app_pid" "$wal_pid"; do
				taskset -p 2 "$p" >/dev/null
			done
		fi
		;;
	esac
	[ -z "$pin" ] || taskset -p 1 "$pm" >/dev/null
	off=$(log_offset)
	other=$(other_snapshot)
	c0=$(server_cpu_s)
	if [ "$base" = cdc ]; then
		s0=$(cpu_s "$sync_pid")
		a0=$(cpu_s "$app_pid")
		w0=$(cpu_s "$wal_pid")
	fi
	${pin:+taskset 1} "$PGBIN/pgbench" -n -c "$clients" -j 2 -T "$client_seconds" \
		-f "$root/bench/cdc_old_write.sql" -D rows="$rows" "$db" >"$work/pgbench.out" 2>&1 || rc=$?
	t_end=$(now)
	[ -z "$pin" ] || taskset -p 3 "$pm" >/dev/null
	pgbench_summary "$work/pgbench.out" "$run" "$mode" "$rc"
	record "$run" "$mode" server_errors "$(server_errors_since "$off")"
	if [ "$base" = cdc ]; then
		sync_alive
		record "$run" "$mode" lag_at_end_s "$(q "$db" -c "SELECT lag_seconds FROM zdm.cdc WHERE migration = '$cdc_migration'")"
		mark "$db" "clients$run"
		at=$(wait_mark "$db" "clients$run")
		record "$run" "$mode" catch_up_s "$(echo "$at - $t_end" | bc -l)"
		# the sync's work for these writes is done by now: count it all
		s1=$(cpu_s "$sync_pid")
		a1=$(cpu_s "$app_pid")
		w1=$(cpu_s "$wal_pid")
	fi
	sleep 0.2 # pgbench's backends have exited and been reaped
	c1=$(server_cpu_s)
	record_other "$run" "$mode" "$other"
	# CPU per client write: the server's (the sync's walsender and apply
	# backend included) and zdm sync's own; not pgbench's
	txns=$(awk -v r="$run" -v m="$mode" '$1 == r && $2 == m && $3 == "txns" { print $4 }' "$results")
	record "$run" "$mode" cpu_us "$(echo "($c1 - $c0 + $s1 - $s0) * 1000000 / $txns" | bc -l)"
	if [ "$base" = cdc ]; then
		record "$run" "$mode" sync_us "$(echo "($s1 - $s0) * 1000000 / $txns" | bc -l)"
		record "$run" "$mode" backend_us "$(echo "($a1 - $a0) * 1000000 / $txns" | bc -l)"
		record "$run" "$mode" walsender_us "$(echo "($w1 - $w0) * 1000000 / $txns" | bc -l)"
	fi
	case $base in
	none) drop_db "$db" ;;
	trigger)
		check_synced "$db"
		drop_db "$db"
		;;
	cdc-idle) drop_cdc_db "$db" ;;
	cdc)
		sync_stop
		check_synced "$db"
		drop_cdc_db "$db"
		;;
	esac
}

# ---- run ------------------------------------------------------------------------------

log "warm-up (discarded): one apply run, which writes the WAL segments later runs recycle"
run_apply 0
for ((run = 1; run <= runs; run++)); do
	log "run $run of $runs: $events events backlogged, decoded alone, then applied by zdm sync"
	run_apply "$run"
	log "run $run of $runs: lag at $rate writes/s for $lag_seconds s"
	run_lag "$run"
	# each run starts at the next mode, so no mode always follows the same one
	modes=(none trigger cdc-idle cdc "${pin_modes[@]}")
	for ((i = 0; i < ${#modes[@]}; i++)); do
		mode=${modes[$(((i + run - 1) % ${#modes[@]}))]}
		log "run $run of $runs: $clients clients at full speed for $client_seconds s, sync: $mode"
		run_clients "$run" "$mode"
	done
done

# ---- report -----------------------------------------------------------------------------

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
checkpoints=$(bench_checkpoints)
[ "$checkpoints" = 0 ] || log "warning: $checkpoints checkpoints started on their own during the benchmark"
elapsed=$((SECONDS - bench_started))

# other_note METHOD-REGEX: how busy other work kept the machine during those
# measurements: the median and the worst run, in cores.
other_note()
{
	local values
	values=$(awk -v m="$1" '$2 ~ m && $3 == "other_cores" { print $4 }' "$results")
	echo "other work on the machine meanwhile: $(fmt "$(echo "$values" | median_of)" %.2f) cores at the median, $(fmt "$(echo "$values" | sort -g | tail -n 1)" %.2f) in the worst run, of $(nproc)"
}

# client_row MODE LABEL: ratios against none, or for a -pin mode against
# none-pin.
client_row()
{
	local mode=$1 label=$2 ratio="1.00x" cpu_ratio="1.00x" behind="-" against=none
	[ "${mode%-pin}" = "$mode" ] || against=none-pin
	if [ "${mode%-pin}" != none ]; then
		ratio=$(fmt "$(median_ratio "$mode" tps "$against" tps)" %.2fx)
		cpu_ratio=$(fmt "$(median_ratio "$mode" cpu_us "$against" cpu_us)" %.2fx)
	fi
	if [ "${mode%-pin}" = cdc ]; then
		behind="$(fmt "$(median "$mode" lag_at_end_s)" %.2f) s / $(fmt "$(median "$mode" catch_up_s)" %.2f) s"
	fi
	echo "| $label | $(thousands "$(median "$mode" tps)") | $ratio | $(fmt "$(median "$mode" latency_ms)" %.2f) | $(fmt "$(median "$mode" cpu_us)" %.0f) | $cpu_ratio | $(total "^$mode\$" '^(failed|aborted|server_errors)$') | $behind |"
}

# pin_rows: the table rows of the -pin modes, if they ran.
pin_rows()
{
	[ ${#pin_modes[@]} -gt 0 ] || return 0
	client_row none-pin "none, clients on core 0 (the baseline of the two rows below)"
	client_row trigger-pin "trigger, clients on core 0"
	client_row cdc-pin "cdc, clients on core 0, \`zdm sync\` and its walsender and apply backend on core 1"
}

# pin_target: the target's row for the -pin modes, if they ran.
pin_target()
{
	local ratio
	[ ${#pin_modes[@]} -gt 0 ] || return 0
	ratio=$(median_ratio cdc-pin tps none-pin tps)
	echo "| the same, \`zdm sync\` on a core of its own (what the write path pays) | $(fmt "$ratio" %.2fx) | $(met "$ratio" ">=" 0.95) |"
}

# sync_cpu_note: where the CPU of the cdc modes goes, per client write.
sync_cpu_note()
{
	local mode out=
	for mode in cdc ${pin_modes[@]:+cdc-pin}; do
		out="$out${out:+; }$mode: walsender $(fmt "$(median "$mode" walsender_us)" %.1f), apply backend $(fmt "$(median "$mode" backend_us)" %.1f), \`zdm sync\` $(fmt "$(median "$mode" sync_us)" %.1f)"
	done
	echo "Of the CPU per write with \`zdm sync\` running, µs spent by the sync's three processes ($out). The walsender decodes every client write and every write of the sync's own (two changes per client write), the sync skips its own by their origin."
}

report()
{
	local rate_ratio cdc_ratio probe_p95 zdm_p95 failed unapplied
	rate_ratio=$(median_ratio sync events_per_s decode events_per_s)
	cdc_ratio=$(median_ratio cdc tps none tps)
	probe_p95=$(median lag probe_p95_ms)
	zdm_p95=$(median lag zdm_p95_ms)
	failed=$(total '^(lag|none|trigger|cdc-idle|cdc)(-pin)?$' '^(failed|aborted|server_errors)$')
	unapplied=$(total '^lag$' '^probes_unapplied$')

	cat <<EOF
Measured $(date -u +%Y-%m-%d) by \`bench/cdc.sh\`: $zdm_version (working tree, runtime sources sha256 $runtime_sha), PostgreSQL $pg_version, $(nproc) cores, $(thousands "$rows") rows, median of $runs runs (ratios: median of the ratios within each run), $elapsed s in all; load average $load_before before, $load_after after; $checkpoints checkpoints by WAL volume or timeout.

**Apply rate**: a backlog of $(thousands "$events") old-version single-row UPDATEs of \`name\` (one transaction each), then read from a standing start until the last is applied; $(other_note '^sync$')

| reader | events/s | seconds | vs decoding alone | CPU µs per event |
| --- | --- | --- | --- | --- |
| decoding alone (zdm's pgoutput source, a second slot, nothing applied) | $(thousands "$(median decode events_per_s)") | $(fmt "$(median decode seconds)" %.2f) | 1.00x | walsender $(fmt "$(median decode server_us)" %.1f), reader $(fmt "$(median decode client_us)" %.1f) |
| \`zdm sync\` (decode, apply, commit, acknowledge) | $(thousands "$(median sync events_per_s)") | $(fmt "$(median sync seconds)" %.2f) | $(fmt "$rate_ratio" %.2fx) | walsender $(fmt "$(median sync walsender_us)" %.1f), zdm sync $(fmt "$(median sync client_us)" %.1f), apply backend $(fmt "$(median sync backend_us)" %.1f) |

**Lag at $(thousands "$rate") writes/s** ($((100 - new_share))% old-version writes of \`name\`, $new_share% new-version writes of \`last_name\` through the view, $rate_clients clients, ${lag_seconds} s; figures over $((lag_seconds - 5)) s from 3 s in): pgbench achieved $(thousands "$(median lag tps)") writes/s (schedule lag mean $(fmt "$(median lag schedule_avg_ms)" %.1f) ms, max $(fmt "$(median lag schedule_max_ms)" %.0f) ms); $(other_note '^lag$')

| lag | median | p95 | max | samples per run |
| --- | --- | --- | --- | --- |
| a write's commit until the sync has applied it (probe every 200 ms), ms | $(fmt "$(median lag probe_p50_ms)" %.0f) | $(fmt "$probe_p95" %.0f) | $(fmt "$(median lag probe_max_ms)" %.0f) | $(fmt "$(median lag probes)" %.0f) |
| \`zdm.cdc.lag_seconds\` as zdm sync reports it (every 200 ms), ms | $(fmt "$(median lag zdm_p50_ms)" %.0f) | $(fmt "$zdm_p95" %.0f) | $(fmt "$(median lag zdm_max_ms)" %.0f) | $(fmt "$(median lag zdm_samples)" %.0f) |

**Client write throughput**: pgbench at full speed, $clients clients, one-row UPDATEs of \`name\` by primary key, ${client_seconds} s each, on a fresh copy each; CPU per write: the server's (zdm sync's walsender and apply backend included) and \`zdm sync\`'s own, pgbench's not; $(other_note '^(none|trigger|cdc-idle|cdc)(-pin)?$')

| sync | tps | vs no sync | latency ms | CPU µs per write | vs no sync | failed statements, all runs | sync behind at the end / caught up after |
| --- | --- | --- | --- | --- | --- | --- | --- |
$(client_row none "none (no migration)")
$(client_row trigger "trigger (after expand)")
$(client_row cdc-idle "cdc, \`zdm sync\` not running (slot and REPLICA IDENTITY FULL only)")
$(client_row cdc "cdc, \`zdm sync\` running")
$(pin_rows)

$(sync_cpu_note)

**Targets** (issue 5)

| target | measured | met |
| --- | --- | --- |
| at least 100k events/s applied from logical replication | $(thousands "$(median sync events_per_s)")/s | $(met "$(median sync events_per_s)" ">=" 100000) |
| lag under 1 s at 5k writes/s (p95 of the probe) | $(fmt "$probe_p95" %.0f) ms | $(met "$probe_p95" "<" 1000) |
| the same by zdm's own figure (p95 of \`lag_seconds\`) | $(fmt "$zdm_p95" %.0f) ms | $(met "$zdm_p95" "<" 1000) |
| client write throughput with cdc at least 0.95x of no sync, all processes sharing the cores | $(fmt "$cdc_ratio" %.2fx) | $(met "$cdc_ratio" ">=" 0.95) |
$(pin_target)
| zero failed client statements | $failed | $(met "$failed" "<=" 0) |
EOF
	if [ "$unapplied" != 0 ]; then
		echo
		echo "Probes still not applied when their window closed, over all runs: $unapplied (counted with their wait so far, a lower bound)."
	fi
}

report >"$work/table.md"
cat "$work/table.md"
bench_write_doc "$work/table.md" "$doc" bench-cdc
cp "$results" "$build/bench-cdc-results.txt"
log "done in $elapsed s; every run's figures: $build/bench-cdc-results.txt"
