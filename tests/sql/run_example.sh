#!/usr/bin/env bash
#
# run_example.sh -- one example migration against a real PostgreSQL.
#
#   tests/sql/run_example.sh EXAMPLE
#
# Compiles plans/EXAMPLE.zdm and drives the plan with zdm_plan_exec on a
# throwaway cluster (tests/lib/pg.sh) loaded with tests/sql/fixtures/:
#   EXAMPLE.sql          tables and data; a copy of the data in the schema
#                        fixture_snapshot, taken before anything runs
#   EXAMPLE.old.sql      the old application version's statements
#   EXAMPLE.new.sql      the new version's (new names, through the views)
#   EXAMPLE.check.sql    queries that must each return 0 after contract,
#                        each introduced by a "-- check: what" line
#   EXAMPLE.columns      the final columns: "table|column|type|not null"
# Rows with ids in CLIENT_IDS are the clients'; the others nobody touches.
# The forward backfill runs in batches of BACKFILL_ROWS rows (default 500),
# not the plan's, so that a fixture of 20,000 rows takes many batches.
#
# forward: old traffic runs from before expand until after switch, new
#   traffic from after expand until a few seconds after contract; both must
#   see no error.  Then the final schema must be exactly the new one, no zdm
#   object may remain, and the data must be the forward transform of the
#   snapshot (EXAMPLE.check.sql).
# undo: for each phase P up to switch, on a fresh copy of the fixture: run
#   the phases up to P, undo P; schema and data must be what they were, byte
#   for byte.  Undo of contract must be refused and change nothing.
#
# The programs come from the environment (ctest sets them): ZDMC,
# ZDM_TRAFFIC and ZDM_PLAN_EXEC, by default from build/release.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
example=${1:?usage: run_example.sh EXAMPLE}
fixtures=$root/tests/sql/fixtures
ZDMC=${ZDMC:-$root/build/release/zdmc}
ZDM_TRAFFIC=${ZDM_TRAFFIC:-$root/build/release/tests/zdm_traffic}
ZDM_PLAN_EXEC=${ZDM_PLAN_EXEC:-$root/build/release/tests/zdm_plan_exec}
CLIENT_IDS=${CLIENT_IDS:-1:2000}
BACKFILL_ROWS=${BACKFILL_ROWS:-500}
phases=(expand backfill verify switch contract)

for f in "$ZDMC" "$ZDM_TRAFFIC" "$ZDM_PLAN_EXEC"; do
	[ -x "$f" ] || { echo "run_example.sh: $f is not built" >&2; exit 2; }
done
# A cdc plan needs a running `zdm sync` to keep both shapes in step, which
# this trigger-semantics driver does not run: the cdc plans are exercised by
# tests/runtime/cdc_*.sh instead.
if grep -Eiq 'sync[[:space:]]*=[[:space:]]*cdc' "$root/plans/$example.zdm" 2>/dev/null; then
	echo "run_example.sh: $example: skipped (sync = cdc; see tests/runtime/cdc_*.sh)"
	exit 0
fi
for f in "$root/plans/$example.zdm" "$fixtures/$example.sql" \
	"$fixtures/$example.old.sql" "$fixtures/$example.new.sql" \
	"$fixtures/$example.check.sql" "$fixtures/$example.columns"; do
	[ -f "$f" ] || { echo "run_example.sh: $f is missing" >&2; exit 2; }
done

# shellcheck source=tests/lib/pg.sh
. "$root/tests/lib/pg.sh"
# shellcheck source=tests/lib/assert.sh
. "$root/tests/lib/assert.sh"
me=run_example.sh
assert_where() { echo "$example"; }
work=$(mktemp -d)
zdm_on_exit "rm -rf '$work'"

plan=$work/$example.plan
(cd "$root/plans" && "$ZDMC" compile -o "$plan" "$example.zdm") ||
	die "plans/$example.zdm does not compile"
search_path=$("$ZDM_PLAN_EXEC" "$plan" get search_path)
version_schema=$("$ZDM_PLAN_EXEC" "$plan" get version_schema)
# every version schema (one per schema the plan changes tables in), as a
# comma-separated list for the leftover check
version_schemas=$("$ZDM_PLAN_EXEC" "$plan" get version_schemas | paste -sd, -)
if [ -z "$search_path" ] || [ -z "$version_schema" ]; then
	die "the plan has no new_version schema or search_path"
fi

pg_start
say "server on port $PGPORT; new version: search_path $search_path"
q -c 'CREATE DATABASE zdm_fixture'
PGOPTIONS="-c client_min_messages=warning" \
	q -d zdm_fixture -f "$fixtures/$example.sql" >/dev/null
q -d zdm_fixture -c 'VACUUM ANALYZE'

# A fresh database from the fixture, cheaper than reloading it.
fresh_db()
{
	q -c "CREATE DATABASE $1 TEMPLATE zdm_fixture"
}

# run_phase DB run|undo PHASE [zdm_plan_exec options]
run_phase()
{
	local db=$1 verb=$2 phase=$3
	shift 3
	say "$verb $phase ($db)"
	"$ZDM_PLAN_EXEC" --db "dbname=$db" "$@" "$plan" "$verb" "$phase" \
		>"$work/$db.$verb.$phase.log" 2>&1 || {
		cat "$work/$db.$verb.$phase.log" >&2
		pg_log | tail -n 30 >&2
		die "$verb $phase failed"
	}
	sed 's/^/    /' "$work/$db.$verb.$phase.log"
}

# ---- forward, under traffic --------------------------------------------------
declare -A traffic_pid
start_traffic()
{
	local db=$1 tag=$2 sp=$3 script=$4
	rm -f "$work/stop.$tag"
	"$ZDM_TRAFFIC" --db "dbname=$db" --search-path "$sp" \
		--script "$script" --stop-file "$work/stop.$tag" --clients 2 \
		--id-range "$CLIENT_IDS" --tag "$tag" --pause-ms 2 \
		--max-seconds 120 >"$work/traffic.$tag" 2>&1 &
	traffic_pid[$tag]=$!
	say "traffic $tag started (search_path $sp)"
}

stop_traffic()
{
	local tag=$1 rc=0
	touch "$work/stop.$tag"
	wait "${traffic_pid[$tag]}" || rc=$?
	cat "$work/traffic.$tag"
	if [ "$rc" != 0 ] || ! grep -q \
		"^traffic $tag: [1-9][0-9]* statements, 0 failed\$" \
		"$work/traffic.$tag"; then
		die "traffic $tag failed (exit $rc)"
	fi
}

# On a failure, stop every client before the server goes.
zdm_on_exit "touch '$work/stop.old' '$work/stop.new' 2>/dev/null; wait"

db=forward
fresh_db "$db"
start_traffic $db old public "$fixtures/$example.old.sql"
sleep 1
run_phase "$db" run expand
start_traffic $db new "$search_path" "$fixtures/$example.new.sql"
sleep 1
# Small batches, so the clients write between them and into pages the
# backfill has yet to reach.
run_phase "$db" run backfill --batch-size "$BACKFILL_ROWS"
sleep 1
run_phase "$db" run verify
run_phase "$db" run switch
sleep 1
stop_traffic old
run_phase "$db" run contract
sleep 3
stop_traffic new

say "checking the final schema"
# Every column of the tables the plan changed, as "table|column|type|not null".
q -d "$db" -At -o "$work/columns" <<'SQL'
SELECT c.oid::regclass, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attnotnull THEN 'not null' ELSE '' END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'fixture_snapshot')
  AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY c.oid::regclass::text, a.attnum
SQL
diff -u "$fixtures/$example.columns" "$work/columns" ||
	die "final columns differ from $example.columns (- expected, + found)"

# Anything the tool created carries a zdm prefix; none may survive contract.
q -d "$db" -At -v schemas="$version_schemas" -o "$work/leftovers" <<'SQL'
SELECT 'schema ' || nspname FROM pg_catalog.pg_namespace
 WHERE nspname = ANY (pg_catalog.string_to_array(:'schemas', ',')) OR nspname LIKE 'zdm%'
UNION ALL
SELECT 'relation ' || c.oid::regclass::text FROM pg_catalog.pg_class c
 WHERE c.relname LIKE 'zdm%'
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname
  FROM pg_catalog.pg_attribute a
 WHERE a.attname LIKE 'zdm%' AND NOT a.attisdropped AND a.attnum > 0
UNION ALL
SELECT 'trigger ' || tgname FROM pg_catalog.pg_trigger WHERE tgname LIKE 'zdm%'
UNION ALL
SELECT 'function ' || p.oid::regprocedure FROM pg_catalog.pg_proc p
 WHERE p.proname LIKE 'zdm%'
UNION ALL
SELECT 'constraint ' || conname FROM pg_catalog.pg_constraint
 WHERE conname LIKE 'zdm%'
UNION ALL
SELECT 'type ' || typname FROM pg_catalog.pg_type WHERE typname LIKE 'zdm%'
SQL
if [ -s "$work/leftovers" ]; then
	cat "$work/leftovers" >&2
	die "objects of the migration remain after contract (above)"
fi

say "checking the data"
# Split EXAMPLE.check.sql at its "-- check:" lines; each query returns 0.
# "\ir FILE" lines include a file of fixtures/, as psql would.
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
nchecks=0
for f in "$work"/check.*.sql; do
	[ -f "$f" ] || die "$example.check.sql has no \"-- check:\" queries"
	nchecks=$((nchecks + 1))
	got=$(q -d "$db" -At -f "$f") || die "check query failed: $(head -1 "$f")"
	if [ "$got" != 0 ]; then
		cat "$f" >&2
		die "check returned $got, not 0: $(head -1 "$f" | sed 's/^-- check: //')"
	fi
done
say "forward: $nchecks data checks hold"

# ---- undo, phase by phase, without traffic ---------------------------------------
# Schema (pg_dump) and data (every table, in primary key order) of a database.
dump()
{
	local db=$1 out=$2
	# \restrict lines carry a random key (pg_dump 15.14 and later)
	pg_dump --schema-only --no-owner -d "$db" |
		grep -v '^\\\(un\)\?restrict ' >"$out.schema"
	q -d "$db" -At >"$out.copy" <<'SQL'
SELECT format(E'\\echo -- %s\nCOPY (SELECT * FROM %s ORDER BY %s) TO STDOUT;',
              c.oid::regclass, c.oid::regclass,
              coalesce((SELECT string_agg(quote_ident(a.attname), ', '
                                          ORDER BY k.ord)
                        FROM pg_catalog.pg_index i
                        CROSS JOIN LATERAL unnest(i.indkey)
                             WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_catalog.pg_attribute a
                          ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE i.indrelid = c.oid AND i.indisprimary),
                       'ctid'))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY c.oid::regclass::text
SQL
	q -d "$db" -f "$out.copy" >"$out.data"
}

same_dump()
{
	local a=$1 b=$2 what=$3
	diff -u "$a.schema" "$b.schema" >&2 || die "$what: the schema changed"
	cmp -s "$a.data" "$b.data" || {
		diff -u "$a.data" "$b.data" | head -n 40 >&2
		die "$what: the data changed"
	}
}

for ((i = 0; i < 4; i++)); do
	upto=${phases[$i]}
	db=undo_$upto
	fresh_db "$db"
	dump "$db" "$work/$db.before"
	for ((j = 0; j <= i; j++)); do
		run_phase "$db" run "${phases[$j]}"
	done
	run_phase "$db" undo "$upto"
	dump "$db" "$work/$db.after"
	same_dump "$work/$db.before" "$work/$db.after" "undo $upto"
	say "undo $upto: schema and data as before"
done

db=undo_contract
fresh_db "$db"
dump "$db" "$work/$db.before"
if "$ZDM_PLAN_EXEC" --db "dbname=$db" "$plan" undo contract \
	>"$work/undo_contract.log" 2>&1; then
	cat "$work/undo_contract.log"
	die "undo contract was not refused"
fi
cat "$work/undo_contract.log"
grep -q 'refused' "$work/undo_contract.log" ||
	die "undo contract failed, but not by refusing"
dump "$db" "$work/$db.after"
same_dump "$work/$db.before" "$work/$db.after" "refused undo contract"
say "undo contract: refused, nothing changed"

say "$example: all passed"
