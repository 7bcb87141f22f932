# shellcheck shell=bash
#
# lib.sh -- what the benchmarks under bench/ share: the throwaway server
# with durable settings, fresh copies of one template database, the results
# file and its medians, number formatting, and the generated table between
# markers in docs/performance.md.  Source it from a benchmark script after
# `set -euo pipefail`; it sources tests/lib/pg.sh (whose EXIT trap stops
# the server) and sets root (the repository).
#
# Conventions the functions rely on: bench_me names the script in messages
# (set it before sourcing; default "bench"); work is the scratch directory
# and results the results file (bench_init_work makes both); every psql
# goes through q, which stops on the first error.  Nothing here decides
# what to measure or asserts anything about speed.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_me=${bench_me:-bench}

# shellcheck source-path=SCRIPTDIR/.. source=tests/lib/pg.sh
source "$root/tests/lib/pg.sh"

log()
{
	echo "$bench_me: $*" >&2
}

die()
{
	echo "$bench_me: error: $*" >&2
	exit 1
}

# bench_positive NAME VALUE: VALUE must be a positive integer (an env knob).
bench_positive()
{
	[[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"
}

# bench_check_doc DOC TAG: DOC ("-": none) has the lines <!-- TAG:begin -->
# and <!-- TAG:end -->, checked before anything runs so that a long run
# does not end unable to write its table.
bench_check_doc()
{
	[ "$1" != - ] || return 0
	if ! { grep -qx "<!-- $2:begin -->" "$1" && grep -qx "<!-- $2:end -->" "$1"; }; then
		die "$1 lacks the lines <!-- $2:begin --> and <!-- $2:end -->"
	fi
}

# bench_write_doc TABLE DOC TAG: TABLE's contents replace what is between
# DOC's markers (a blank line either side); "-" leaves DOC alone.
bench_write_doc()
{
	local table=$1 doc=$2 tag=$3
	[ "$doc" != - ] || return 0
	awk -v table="$table" -v begin="<!-- $tag:begin -->" -v end="<!-- $tag:end -->" '
	$0 == end { while ((getline line < table) > 0) print line; print ""; skip = 0 }
	!skip { print }
	$0 == begin { print ""; skip = 1 }' "$doc" >"$work/doc.md"
	# cat, not mv: keep the file's owner and mode
	cat "$work/doc.md" >"$doc"
	log "wrote the table into $doc"
}

bench_check_tools()
{
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool not found (bash .ci/install-deps installs what zdm needs)"
	done
}

# bench_init_work: the scratch directory $work (removed at exit) and the
# empty results file $results.
bench_init_work()
{
	work=$(mktemp -d "${TMPDIR:-/tmp}/zdm-bench.XXXXXX")
	zdm_on_exit "rm -rf '$work'"
	results=$work/results
	: >"$results"
}

# bench_build DIR TARGET...: configure and build TARGETs in DIR, quietly;
# on failure the end of the build log and a stop.  One build type for
# every benchmark, so that they can share DIR without reconfiguring it.
bench_build()
{
	local dir=$1
	shift
	log "building $* in $dir"
	if ! { cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
		cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" --target "$@"; } \
		>"$work/build.log" 2>&1; then
		tail -n 40 "$work/build.log" >&2
		die "building zdm failed (log above)"
	fi
}

# bench_server_start: a throwaway server (tests/lib/pg.sh), made durable.
# Sets pg_version and server_log.
bench_server_start()
{
	pg_start
	# pg.sh's test settings trade durability for speed; a benchmark wants
	# the real thing.  The last occurrence of a setting in postgresql.conf
	# wins.
	cat >>"$ZDM_PG_DIR/data/postgresql.conf" <<'EOF'
# added by bench/lib.sh: durable, and no checkpoint inside a measurement
fsync = on
full_page_writes = on
synchronous_commit = on
shared_buffers = 512MB
max_wal_size = 4GB
min_wal_size = 2GB
checkpoint_timeout = 30min
log_line_prefix = '%m [%p] %a@%d '
EOF
	pg_as_server "$PGBIN/pg_ctl" -D "$ZDM_PG_DIR/data" -l "$ZDM_PG_DIR/log" \
		-w -t 60 restart >/dev/null || { pg_log >&2; die "the server did not restart"; }
	# shellcheck disable=SC2034 # read by the scripts that source this
	pg_version=$(psql -X -qAt -c 'SHOW server_version')
	server_log=$ZDM_PG_DIR/log
}

# Checkpoints the server started on its own (log_checkpoints is on by
# default): a measurement one lands in is not comparable with the others.
bench_checkpoints()
{
	grep -c 'checkpoint starting: .*\(wal\|time\)' "$server_log" || true
}

# q DB SQL...: run statements, print unaligned rows, stop on any error.
q()
{
	local db=$1
	shift
	psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" "$@"
}

now()
{
	date +%s.%N
}

# The WAL position, for the bytes a method wrote.
wal_lsn()
{
	q postgres -c 'SELECT pg_catalog.pg_current_wal_lsn()'
}

wal_mb_since()
{
	q postgres -c "SELECT round(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '$1') / 1048576.0)"
}

# fresh_db NAME [quiet]: a copy of the template database bench_template,
# ready to be measured.  FILE_COPY copies the files (a checkpoint, then a
# copy), rather than writing every page to WAL.  VACUUM sets hint bits and
# the visibility map as on a table that has lived a while, pg_prewarm puts
# heap and index in shared buffers for every method alike, CHECKPOINT
# leaves nothing dirty.
fresh_db()
{
	q postgres -c "CREATE DATABASE $1 TEMPLATE bench_template STRATEGY FILE_COPY"
	# every statement's CPU time goes to the server log (run.sh's
	# cpu_seconds), except under client load (thousands of statements,
	# nobody reads them)
	[ "${2:-}" = quiet ] || q postgres -c "ALTER DATABASE $1 SET log_executor_stats = on"
	q "$1" -c 'VACUUM ANALYZE public.users' \
		-c "SELECT public.pg_prewarm('public.users'), public.pg_prewarm('public.users_pkey')" \
		-c CHECKPOINT >/dev/null
}

drop_db()
{
	q postgres -c "DROP DATABASE $1 WITH (FORCE)"
}

log_offset()
{
	stat -c %s "$server_log"
}

# ERRORs in the server log from pgbench sessions since byte offset $1.
server_errors_since()
{
	tail -c +"$(($1 + 1))" "$server_log" | grep -c ' pgbench@[^ ]* ERROR: ' || true
}

# ---- results ---------------------------------------------------------------------

# Every result is one line "RUN METHOD KEY VALUE" in $results.
record()
{
	echo "$1 $2 $3 $4" >>"$results"
}

# median_of: the median of the numbers on stdin, one a line ("nan": none).
median_of()
{
	sort -g | awk '{ v[++n] = $1 }
	END {
		if (n == 0) { print "nan"; exit }
		print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}'
}

# median METHOD KEY: over the runs.
median()
{
	awk -v m="$1" -v k="$2" '$2 == m && $3 == k { print $4 }' "$results" | median_of
}

# median_ratio M1 K1 M2 K2: median over runs of M1.K1 / M2.K2 within a run.
median_ratio()
{
	awk -v m1="$1" -v k1="$2" -v m2="$3" -v k2="$4" '
	$2 == m1 && $3 == k1 { a[$1] = $4 }
	$2 == m2 && $3 == k2 { b[$1] = $4 }
	END { for (r in a) if ((r in b) && b[r] > 0) print a[r] / b[r] }' "$results" | median_of
}

# total METHOD-REGEX KEY-REGEX: the sum over every run (counts of failures).
total()
{
	awk -v m="$1" -v k="$2" '$2 ~ m && $3 ~ k { s += $4 } END { print s + 0 }' "$results"
}

# ---- formatting ------------------------------------------------------------------

fmt()
{
	awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'
}

# "12,345"
thousands()
{
	awk -v v="$1" 'BEGIN {
		s = sprintf("%d", v + 0.5); out = ""
		while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
		print s out
	}'
}

# met VALUE OP TARGET: "yes" or "**no**" (OP: >=, >, <=, <).
met()
{
	if awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		exit !((op == ">=" && v >= t) || (op == ">" && v > t) || (op == "<=" && v <= t) || (op == "<" && v < t))
	}'; then
		echo yes
	else
		echo "**no**"
	fi
}
