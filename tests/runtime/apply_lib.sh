# shellcheck shell=bash
#
# apply_lib.sh -- what the apply_*.sh tests share: `zdm apply`, `zdm
# rollback`, `zdm approve` and `zdm status` run as an operator runs them,
# against a throwaway cluster (tests/lib/pg.sh) loaded with a fixture of
# tests/sql/fixtures/, while zdm_traffic plays the two application versions
# with that fixture's EXAMPLE.old.sql and EXAMPLE.new.sql.
#
# Source it from a test script that has set `example` (a plans/*.zdm with a
# fixture) and `me` (the script's name, for messages), then call at_init.
# Every wait is bounded: at_wait_for gives up after its timeout, every zdm
# run in the foreground goes through timeout(1), and the EXIT trap (pg.sh's,
# with the cleanups chained here) stops the clients and any zdm this script
# started in the background, by pid, before the server goes.
#
# The programs come from the environment (ctest sets them): ZDM, ZDMC and
# ZDM_TRAFFIC, by default from build/release.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fixtures=$root/tests/sql/fixtures
ZDM=${ZDM:-$root/build/release/zdm}
ZDMC=${ZDMC:-$root/build/release/zdmc}
ZDM_TRAFFIC=${ZDM_TRAFFIC:-$root/build/release/tests/zdm_traffic}
# Rows with ids in this range are the clients'; the fixtures' checks rely on
# it (tests/sql/fixtures/users.psql).
CLIENT_IDS=1:2000
# Longest any single zdm command may take in these tests.
ZDM_TIMEOUT=${ZDM_TIMEOUT:-75}

# shellcheck source=../lib/pg.sh
. "$root/tests/lib/pg.sh"
# shellcheck source=../lib/assert.sh
. "$root/tests/lib/assert.sh"
assert_where() { echo "${example:-}"; }

at_bg_pids=()
declare -A at_traffic_pid

# A failed assertion that need not stop the test (the later checks are
# independent of it): recorded, reported, and the test fails at at_done.
at_failures=()
fail_later()
{
	echo "$me: ${example:-}: FAILED (continuing): $*" >&2
	at_failures+=("$*")
}

# expect_grep_later WHAT FILE REGEX: expect_grep, but through fail_later.
expect_grep_later()
{
	grep -Eq -- "$3" "$2" || {
		sed 's/^/    > /' "$2" >&2
		fail_later "$1: no line matching /$3/ in $(basename "$2")"
	}
}

# The end of a test: pass, or fail with the list of what failed.
at_done()
{
	local f
	if [ "${#at_failures[@]}" -gt 0 ]; then
		echo "$me: ${example:-}: ${#at_failures[@]} failed assertion(s):" >&2
		for f in "${at_failures[@]}"; do
			echo "  - $f" >&2
		done
		exit 1
	fi
	say "${example:-}: all passed"
}

# On the way out, failed or not: the clients stop (stop file, then
# SIGTERM), and every zdm or blocking psql this script started and has not
# reaped yet is killed.  Only children still in the job table are signalled,
# so a pid reused by another process after a wait is never touched.
at_cleanup()
{
	local pid tag live
	for tag in "${!at_traffic_pid[@]}"; do
		touch "$work/stop.$tag"
	done
	live=" $(jobs -p | tr '\n' ' ') "
	for pid in "${at_bg_pids[@]}"; do
		case $live in
		*" $pid "*) kill -9 "$pid" 2>/dev/null || true ;;
		esac
	done
	sleep 0.5
	live=" $(jobs -p | tr '\n' ' ') "
	for pid in "${at_traffic_pid[@]}"; do
		case $live in
		*" $pid "*) kill "$pid" 2>/dev/null || true ;;
		esac
	done
	wait 2>/dev/null || true
}

# at_init: the cluster, a template database zdm_fixture with the fixture,
# and $plan compiled from plans/$example.zdm.
at_init()
{
	local f
	for f in "$ZDM" "$ZDMC" "$ZDM_TRAFFIC"; do
		[ -x "$f" ] || { echo "$me: $f is not built" >&2; exit 2; }
	done
	for f in "$root/plans/$example.zdm" "$fixtures/$example.sql" \
		"$fixtures/$example.old.sql" "$fixtures/$example.new.sql" \
		"$fixtures/$example.check.sql" "$fixtures/$example.columns"; do
		[ -f "$f" ] || { echo "$me: $f is missing" >&2; exit 2; }
	done
	work=$(mktemp -d)
	zdm_on_exit "rm -rf '$work'"
	zdm_on_exit at_cleanup
	assert_t0=$SECONDS
	pg_start || die "the server did not start"
	say "server on port $PGPORT"
	q -c 'CREATE DATABASE zdm_fixture'
	PGOPTIONS="-c client_min_messages=warning" \
		q -d zdm_fixture -f "$fixtures/$example.sql" >/dev/null
	q -d zdm_fixture -c 'VACUUM ANALYZE'
	plan=$(at_compile "$root/plans/$example.zdm" "$example")
	migration=$(at_plan_get "$plan" migration)
	version_schema=$(at_plan_get "$plan" new_version.schema)
	version_schemas=$(at_version_schemas "$plan")
	search_path=$(at_plan_get "$plan" new_version.search_path)
	[ -n "$migration" ] && [ -n "$version_schema" ] && [ -n "$search_path" ] ||
		die "cannot read migration, new_version.schema, search_path from $plan"
}

# at_compile SRC.zdm NAME: compile into $work/NAME.plan, print its path.
at_compile()
{
	local src=$1 name=$2
	(cd "$(dirname "$src")" &&
		"$ZDMC" compile -o "$work/$name.plan" "$(basename "$src")") >&2 ||
		die "$src does not compile"
	echo "$work/$name.plan"
}

# at_variant NAME SED-SCRIPT [SRC]: a test-only copy of SRC (default
# plans/$example.zdm) with its "with (...)" options edited by SED-SCRIPT,
# compiled; prints the plan.  The statements are the source's own; only
# options (gates, retries) change.
at_variant()
{
	local name=$1 script=$2 src=${3:-$root/plans/$example.zdm}
	mkdir -p "$work/src"
	sed -E "$script" "$src" >"$work/src/$name.zdm"
	cmp -s "$src" "$work/src/$name.zdm" &&
		die "variant $name: the sed script changed nothing"
	at_compile "$work/src/$name.zdm" "$name"
}

# at_gates_variant NAME GATES [SRC]: the approve option of SRC (default
# plans/$example.zdm) replaced with (GATES).
at_gates_variant()
{
	at_variant "$1" "s/approve = (\\([^)]*\\)|none)/approve = ($2)/" "${3:-}"
}

# A plan of the example that stops at a gate before contract, so that old
# clients can be stopped there: the example's own, or, when it approves no
# gate (rename_email: approve = none, which would run through contract while
# old clients still write), a bench-only copy with approve = (switch).
at_stopping_plan()
{
	if grep -q '^    approval: true$' "$plan"; then
		echo "$plan"
	else
		say "$example approves no gate: using a copy with approve = (switch)" >&2
		at_gates_variant "${example}_switch" switch
	fi
}

# ---- what a plan does (for the tests generated per fixture) ------------------------
# at_plan_steps PLAN: one line per step, "ID KIND PHASE APPROVAL" (APPROVAL
# is "approval" for a gate that waits for a person, "-" otherwise).
at_plan_steps()
{
	awk '
		function flush() { if (id != "") print id, kind, phase, appr; id = "" }
		/^- phase: / { flush(); phase = $3 }
		/^  - id: / { flush(); id = $3; kind = "-"; appr = "-" }
		/^    kind: / { kind = $2 }
		/^    approval: true$/ { appr = "approval" }
		END { flush() }' "$1"
}

# at_plan_syncs PLAN: true when PLAN keeps two shapes of a table in step
# while both versions write (a backfill, a sync trigger, or cdc catch-up
# steps); such an example also gets a sync = cdc test (apply_cdc_example.sh).
at_plan_syncs()
{
	grep -Eq '^    kind: (backfill|catch_up)$|CREATE TRIGGER zdm_sync' "$1"
}

# at_plan_key DB PLAN: the primary key columns, "a, b", that every table
# of PLAN has in DB; empty when a table has none or they differ.
at_plan_key()
{
	local db=$1 t k key="" first=1
	for t in $(sed -n 's/^- table: //p' "$2"); do
		k=$(val "$db" "SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
		  FROM pg_catalog.pg_index i
		  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		  WHERE i.indrelid = '$t'::regclass AND i.indisprimary")
		if [ "$first" = 1 ]; then
			key=$k
			first=0
		elif [ "$k" != "$key" ]; then
			return 0
		fi
	done
	echo "$key"
}

# at_cdc_source NAME KEY [SRC]: a test-only copy of SRC (default
# plans/$example.zdm) synced by change data capture: its migration
# statement's with-options lose sync, key, cdc_source, max_lag and
# stable_for and gain sync = cdc, key = (KEY), max_lag = '1s', stable_for =
# '2s' (a "with (...)" is added when it has none).  Prints the copy's path;
# the statements are the source's own.
at_cdc_source()
{
	local name=$1 key=$2 src=${3:-$root/plans/$example.zdm}
	mkdir -p "$work/src"
	python3 - "$src" "$work/src/$name.zdm" "$key" <<'PY' || die "cannot make a sync = cdc copy of $src"
import re, sys
src, out, key = sys.argv[1:4]
text = open(src).read()
# Skip comments to find the migration statement; its end is the first ';'.
pos = 0
comment = re.compile(r'\s+|--[^\n]*|/\*.*?\*/', re.S)
while True:
    m = comment.match(text, pos)
    if not m or m.end() == pos:
        break
    pos = m.end()
if not re.match(r'migration\b', text[pos:], re.I):
    sys.exit("no migration statement at the top")
end = text.index(';', pos)
stmt = text[pos:end]
ours = ["sync = cdc", "key = (%s)" % key, "max_lag = '1s'", "stable_for = '2s'"]
m = re.search(r'\bwith\s*\(', stmt, re.I)
if m:
    # the options up to the matching ')', split at top-level commas
    depth, i, opts, cur = 1, m.end(), [], ''
    while depth:
        c = stmt[i]
        if c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
            if not depth:
                break
        elif c == "'":
            j = stmt.index("'", i + 1)
            cur += stmt[i:j + 1]
            i = j + 1
            continue
        if c == ',' and depth == 1:
            opts.append(cur)
            cur = ''
        else:
            cur += c
        i += 1
    opts.append(cur)
    kept = [o.strip() for o in opts if o.strip() and not re.match(
        r'(sync|key|cdc_source|max_lag|stable_for)\s*=', o.strip(), re.I)]
    stmt = stmt[:m.start()] + 'with (' + ', '.join(kept + ours) + ')' + stmt[i + 1:]
else:
    stmt = stmt.rstrip() + '\n  with (' + ', '.join(ours) + ')'
open(out, 'w').write(text[:pos] + stmt + text[end:])
PY
	echo "$work/src/$name.zdm"
}

# at_plan_get PLAN KEY: a top-level scalar (migration) or one of
# new_version's (new_version.schema, new_version.search_path).
at_plan_get()
{
	awk -v want="$2" '
		/^[a-z_]+:/ { section = $1; sub(/:$/, "", section) }
		{
			line = $0
			if (want !~ /\./ && line ~ "^" want ": ") {
				sub("^" want ": ", "", line); print line; exit
			}
			split(want, w, ".")
			if (section == w[1] && line ~ "^  " w[2] ": ") {
				sub("^  " w[2] ": ", "", line); print line; exit
			}
		}' "$1"
}

# at_version_schemas PLAN: every version schema of PLAN, comma-separated:
# new_version.schemas ("[a, b]") of a plan over several schemas, else
# new_version.schema.
at_version_schemas()
{
	local list
	list=$(at_plan_get "$1" new_version.schemas | tr -d '[] ')
	echo "${list:-$(at_plan_get "$1" new_version.schema)}"
}

# The ids of PLAN's gate steps, as a SQL list: 'switch.1', 'contract.1'
plan_gate_ids()
{
	awk '/^  - id: / { id = $3 }
	     /^    kind: gate$/ { printf "%s\x27%s\x27", n++ ? ", " : "", id }' "$1"
}

fresh_db()
{
	q -c "CREATE DATABASE $1 TEMPLATE zdm_fixture"
}

# ---- running zdm -----------------------------------------------------------------
# zdm_run NAME WANT-RC ARGS...: run zdm ARGS (bounded), output in
# $work/NAME.out and $work/NAME.err; the exit status must be WANT-RC.
zdm_run()
{
	local name=$1 want=$2 rc=0
	shift 2
	timeout -s KILL "$ZDM_TIMEOUT" "$ZDM" "$@" \
		>"$work/$name.out" 2>"$work/$name.err" || rc=$?
	sed 's/^/    | /' "$work/$name.out"
	sed 's/^/    ! /' "$work/$name.err"
	if [ "$rc" != "$want" ]; then
		die "zdm $* exited $rc, expected $want"
	fi
}

# zdm_bg NAME ARGS...: zdm ARGS in the background; its pid in $zdm_pid.
zdm_bg()
{
	local name=$1
	shift
	"$ZDM" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	zdm_pid=$!
	at_bg_pids+=("$zdm_pid")
}

# zdm_wait PID NAME WANT-RC [TIMEOUT]: wait (bounded) for a background zdm.
zdm_wait()
{
	local pid=$1 name=$2 want=$3 limit=${4:-$ZDM_TIMEOUT} rc=0
	if ! at_wait_gone "$pid" "$limit"; then
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		cat "$work/$name.out" "$work/$name.err" >&2
		die "zdm ($name) still running after ${limit}s"
	fi
	wait "$pid" || rc=$?
	sed 's/^/    | /' "$work/$name.out"
	sed 's/^/    ! /' "$work/$name.err"
	[ "$rc" = "$want" ] || die "zdm ($name) exited $rc, expected $want"
}

# at_wait_gone PID TIMEOUT-S: until the process has exited (not reaped);
# false if it still runs after TIMEOUT-S.
at_wait_gone()
{
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	! kill -0 "$1" 2>/dev/null
}

# at_wait_for WHAT TIMEOUT-S COMMAND...: poll COMMAND every 0.1 s.
at_wait_for()
{
	local what=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		if "$@" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "timed out after ${limit}s waiting for: $what"
}

# True when the query prints "t".
sql_true()
{
	[ "$(val "$1" "$2")" = t ]
}

# Every step of PHASE is done in the journal of DB.
phase_done()
{
	journal_exists "$1" &&
		sql_true "$1" "SELECT count(*) = count(*) FILTER (WHERE state = 'done')
		  AND count(*) > 0 FROM zdm.steps
		  WHERE migration = '$migration' AND phase = '$2'"
}

# Schema zdm (the journal) exists in DB.
journal_exists()
{
	sql_true "$1" "SELECT pg_catalog.to_regclass('zdm.steps') IS NOT NULL"
}

# No backend of the given application_name left (a killed zdm's sessions
# live on until they notice the client has gone).
no_session()
{
	sql_true "$1" "SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
	  WHERE datname = '$1' AND application_name LIKE '$2')"
}

# zdm status --json of DB, one field (python expression on d).
status_json()
{
	local db=$1 expr=$2
	timeout 30 "$ZDM" status "$plan" --json --db "dbname=$db" >"$work/status.json" ||
		die "zdm status --json failed"
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$work/status.json" "$expr" ||
		die "zdm status --json is not the JSON expected: $(cat "$work/status.json")"
}

# apply_to_gate DB NAME PLAN [ARGS...]: zdm apply in the background; the
# new-version clients (traffic "new") start as soon as expand is done, if
# they are not running yet; it must stop at a gate (exit 4).
apply_to_gate()
{
	local db=$1 name=$2 p=$3
	shift 3
	zdm_bg "$name" apply "$p" --db "dbname=$db" "$@"
	if [ -z "${at_traffic_pid[new]:-}" ]; then
		at_wait_for "expand done in the journal" 60 \
			eval "phase_done $db expand || ! kill -0 $zdm_pid"
		traffic_start "$db" new new
	fi
	zdm_wait "$zdm_pid" "$name" 4
	expect_grep "$name" "$work/$name.out" '^zdm: paused at gate "(switch|contract)"'
}

# ---- zdm sync (sync = cdc plans) ---------------------------------------------------
# sync_start DB NAME: zdm sync of $plan in the background; its pid in
# $sync_pid, its output in $work/NAME.out and .err.
sync_start()
{
	"$ZDM" sync "$plan" --db "dbname=$1" >"$work/$2.out" 2>"$work/$2.err" &
	sync_pid=$!
	at_bg_pids+=("$sync_pid")
	say "zdm sync ($2) started, pid $sync_pid"
}

# The sync of $migration reports as running in zdm.cdc of DB.
sync_running()
{
	sql_true "$1" "SELECT EXISTS (SELECT FROM zdm.cdc WHERE migration = '$migration'
	  AND state = 'running' AND seen_at > pg_catalog.clock_timestamp() - interval '2 s')"
}

# wait_sync_running DB: until the zdm sync started as $sync_pid reports as
# running; if it exits first, show why (at_wait_for would hide a probe's own
# messages).  Its output is expected in $work/sync*.out and .err.
wait_sync_running()
{
	local i
	for ((i = 0; i < 300; i++)); do
		if ! kill -0 "$sync_pid" 2>/dev/null; then
			cat "$work"/sync*.out "$work"/sync*.err >&2 || true
			die "zdm sync exited early (its output above)"
		fi
		sync_running "$1" && return 0
		sleep 0.1
	done
	die "zdm sync did not report as running within 30 s"
}

# ---- trigger sync against cdc sync: one script, two databases ----------------------
# run_versions_script SCRIPT DB SEARCH_PATH: each line of SCRIPT is WHO<TAB>SQL;
# NEW lines run as the new version (its SEARCH_PATH), OLD lines as the old;
# WAIT lines wait (up to 30 s) until their query, run as the old version,
# returns true: until the sync has applied a write, where what a later
# write does depends on the row its client reads (under trigger sync it
# is true at once).
run_versions_script()
{
	local script=$1 db=$2 sp=$3 who sql
	while IFS=$'\t' read -r who sql; do
		if [ "$who" = WAIT ]; then
			at_wait_for "the sync to apply the write before: $sql" 30 \
				sql_true "$db" "$sql"
		elif [ "$who" = NEW ]; then
			PGOPTIONS="-c search_path=${sp// /}" q -d "$db" -c "$sql" >/dev/null
		else
			q -d "$db" -c "$sql" >/dev/null
		fi
	done <"$script"
}

# same_rows SQL WHAT: SQL gives the same rows in databases same_t (trigger
# sync) and same_c (WHAT sync); they are kept in $work/same_t.rows and
# $work/same_c.rows.
same_rows()
{
	q -d same_t -At -c "$1" >"$work/same_t.rows"
	q -d same_c -At -c "$1" >"$work/same_c.rows"
	[ -s "$work/same_t.rows" ] || die "no rows"
	if ! diff -u "$work/same_t.rows" "$work/same_c.rows" >"$work/same.diff"; then
		head -40 "$work/same.diff" >&2
		die "$2 and trigger sync end with different data (diff above)"
	fi
}

# ---- traffic ---------------------------------------------------------------------
# traffic_start DB TAG old|new: one application version's clients.
traffic_start()
{
	local db=$1 tag=$2 which=$3 sp=public
	[ "$which" = new ] && sp=$search_path
	rm -f "$work/stop.$tag"
	"$ZDM_TRAFFIC" --db "dbname=$db" --search-path "$sp" \
		--script "$fixtures/$example.$which.sql" --stop-file "$work/stop.$tag" \
		--clients 2 --id-range "$CLIENT_IDS" --tag "$which" --pause-ms 2 \
		--max-seconds 150 >"$work/traffic.$tag" 2>&1 &
	at_traffic_pid[$tag]=$!
	say "traffic $tag ($which version, search_path $sp) started"
}

# traffic_stop TAG: stop it; not one of its statements may have failed.
traffic_stop()
{
	local tag=$1 pid=${at_traffic_pid[$1]} rc=0
	touch "$work/stop.$tag"
	at_wait_gone "$pid" 30 || die "traffic $tag did not stop within 30 s"
	wait "$pid" || rc=$?
	unset "at_traffic_pid[$tag]"
	sed 's/^/    /' "$work/traffic.$tag"
	grep -Eq "^traffic (old|new): [1-9][0-9]* statements, 0 failed\$" \
		"$work/traffic.$tag" && [ "$rc" = 0 ] ||
		die "traffic $tag: client statements failed (exit $rc), see above"
}

# ---- a session that holds a lock -------------------------------------------------
# blocker_start DB SQL-LOCK: a session (application_name zdm_test_blocker)
# that runs BEGIN; SQL-LOCK; then sleeps in its transaction until
# blocker_stop cancels it (at most 120 s).
blocker_start()
{
	local db=$1 lock=$2
	PGAPPNAME=zdm_test_blocker psql -X -q -d "$db" \
		-c "BEGIN; $lock; SELECT pg_catalog.pg_sleep(120); COMMIT;" \
		>"$work/blocker.log" 2>&1 &
	blocker_pid=$!
	at_bg_pids+=("$blocker_pid")
	at_wait_for "the blocker holds its lock" 20 sql_true "$db" \
		"SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
		  WHERE application_name = 'zdm_test_blocker'
		    AND query LIKE '%pg_sleep%' AND wait_event = 'PgSleep')"
	say "blocker: $lock (in an open transaction)"
}

blocker_stop()
{
	local db=$1
	val "$db" "SELECT count(pg_catalog.pg_cancel_backend(pid))
	  FROM pg_catalog.pg_stat_activity
	  WHERE application_name = 'zdm_test_blocker'" >/dev/null
	at_wait_for "the blocker to end" 20 eval "! kill -0 $blocker_pid"
	wait "$blocker_pid" 2>/dev/null || true
	say "blocker: cancelled, lock released"
}

# ---- what must hold ----------------------------------------------------------------
# at_dump DB OUT: OUT.schema (pg_dump --schema-only without the journal and
# the fixture's snapshot) and OUT.data (every user table in key order).
at_dump()
{
	local db=$1 out=$2
	# \restrict lines carry a random key (pg_dump 15.14 and later)
	pg_dump --schema-only --no-owner --exclude-schema=zdm \
		--exclude-schema=fixture_snapshot -d "$db" |
		grep -v '^\\\(un\)\?restrict ' >"$out.schema"
	q -d "$db" -At >"$out.copy" <<'SQL'
SELECT format(E'\\echo -- %s\nCOPY (SELECT * FROM %s ORDER BY %s) TO STDOUT;',
              c.oid::regclass, c.oid::regclass,
              coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
                        FROM pg_catalog.pg_index i
                        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a
                          ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE i.indrelid = c.oid AND i.indisprimary),
                       'ctid'))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'zdm', 'fixture_snapshot')
  AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY c.oid::regclass::text
SQL
	q -d "$db" -f "$out.copy" >"$out.data"
}

# same_schema A B WHAT / same_data A B WHAT (dumps from at_dump)
same_schema()
{
	diff -u "$1.schema" "$2.schema" >&2 ||
		die "$3: the schema differs from the original (- before, + after)"
}

same_data()
{
	cmp -s "$1.data" "$2.data" || {
		diff -u "$1.data" "$2.data" | head -n 40 >&2
		die "$3: the data differs from the original (- before, + after)"
	}
}

# No object the migration created is left outside the journal's schema zdm,
# and the version schemas are gone.
check_no_leftovers()
{
	local db=$1
	q -d "$db" -At -v schemas="$version_schemas" -o "$work/leftovers" <<'SQL'
SELECT 'schema ' || nspname FROM pg_catalog.pg_namespace
 WHERE nspname = ANY (pg_catalog.string_to_array(:'schemas', ','))
    OR (nspname LIKE 'zdm%' AND nspname <> 'zdm')
UNION ALL
SELECT 'relation ' || c.oid::regclass::text FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname LIKE 'zdm%' AND n.nspname <> 'zdm'
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attname LIKE 'zdm%' AND NOT a.attisdropped AND a.attnum > 0
   AND n.nspname <> 'zdm'
UNION ALL
SELECT 'trigger ' || tgname FROM pg_catalog.pg_trigger WHERE tgname LIKE 'zdm%'
UNION ALL
SELECT 'function ' || p.oid::regprocedure FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname LIKE 'zdm%' AND n.nspname <> 'zdm'
UNION ALL
SELECT 'constraint ' || conname FROM pg_catalog.pg_constraint c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
 WHERE conname LIKE 'zdm%' AND n.nspname <> 'zdm'
UNION ALL
SELECT 'replication slot ' || slot_name FROM pg_catalog.pg_replication_slots
 WHERE slot_name LIKE 'zdm%'
UNION ALL
SELECT 'publication ' || pubname FROM pg_catalog.pg_publication
 WHERE pubname LIKE 'zdm%'
UNION ALL
SELECT 'replication origin ' || roname FROM pg_catalog.pg_replication_origin
 WHERE roname LIKE 'zdm%'
UNION ALL
SELECT 'replica identity ' || c.oid::regclass::text FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND c.relreplident = 'f' AND n.nspname <> 'zdm'
SQL
	if [ -s "$work/leftovers" ]; then
		cat "$work/leftovers" >&2
		die "objects of the migration remain after contract (above)"
	fi
}

# The final columns of the changed tables are EXAMPLE.columns.
check_columns()
{
	local db=$1
	q -d "$db" -At -o "$work/columns" <<'SQL'
SELECT c.oid::regclass, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attnotnull THEN 'not null' ELSE '' END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'fixture_snapshot', 'zdm')
  AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY c.oid::regclass::text, a.attnum
SQL
	diff -u "$fixtures/$example.columns" "$work/columns" ||
		die "final columns differ from $example.columns (- expected, + found)"
}

# The fixture's data checks (EXAMPLE.check.sql): each query returns 0.
check_data()
{
	local db=$1 f got n=0
	rm -f "$work"/check.*.sql
	# Split at the "-- check:" lines; "\ir FILE" includes a file of fixtures/.
	awk -v dir="$work" -v fixtures="$fixtures" '
		function take(line) {
			if (line ~ /^-- check:/) {
				n++
				file = sprintf("%s/check.%03d.sql", dir, n)
			}
			if (n)
				print line > file
		}
		/^\\ir / {
			inc = fixtures "/" substr($0, 5)
			while ((getline line < inc) > 0)
				take(line)
			close(inc)
			next
		}
		{ take($0) }
	' "$fixtures/$example.check.sql"
	for f in "$work"/check.*.sql; do
		[ -f "$f" ] || die "$example.check.sql has no \"-- check:\" queries"
		n=$((n + 1))
		got=$(q -d "$db" -At -f "$f") || die "check query failed: $(head -1 "$f")"
		if [ "$got" != 0 ]; then
			cat "$f" >&2
			# a check that counts rows shows ten of them, s (the
			# snapshot) and c (now) side by side where it joins them
			if grep -q '^SELECT count(\*)$' "$f"; then
				echo "--- rows it counts (ten at most):" >&2
				sed -e 's/^SELECT count(\*)$/SELECT */' -e 's/;[[:space:]]*$/ LIMIT 10;/' "$f" |
					q -d "$db" -f - >&2 || true
			fi
			die "data check returned $got, not 0: $(head -1 "$f" | sed 's/^-- check: //')"
		fi
	done
	say "$n data checks of $example.check.sql hold"
}

# Everything that must hold once a migration is done.
check_done()
{
	local db=$1
	check_columns "$db"
	check_no_leftovers "$db"
	check_data "$db"
	expect "zdm status --json: state" "$(status_json "$db" 'd["state"]')" done
	expect "zdm status --json: steps_done" \
		"$(status_json "$db" 'd["steps_done"] == len(d["steps"])')" True
}
