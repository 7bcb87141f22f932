#!/usr/bin/env bash
#
# apply_app.sh -- a small shop's whole db/ folder, plans/app/, applied by
# one `zdm apply DIR` while the application is rolled forward version by
# version, as a team deploys it.
#
#   tests/runtime/apply_app.sh
#
# The shop's tables are plans/app/schema.sql, loaded with the rows of
# apply_app.data.sql; plans/app/*.zdm are compiled by this build's zdmc
# into a directory (outside any git repository: zdm records its history in
# the plan's repository).  Then:
#   1. `zdm apply DIR --wait --approve contract` applies them in name order.
#      The test plays the team: version 0 of the application
#      (apply_app.sql) writes from the start; when migration N's expand is
#      done, version N starts (its search_path the plan's
#      new_version.search_path); when N pauses at its switch gate, version
#      N - 1 is stopped and the gate approved (`zdm approve`), so two
#      versions write side by side during every migration.  The command
#      exits 0 ("sequence done"), every version ran and not one of its
#      statements failed; the final columns, constraints and indexes are
#      apply_app.schema (no NOT VALID constraint, no invalid index); no zdm
#      object or version schema is left; each query of apply_app.check.sql
#      returns 0; the journal has every migration done, started in name
#      order;
#   2. the same command again: each plan "already done, skipped", exit 0,
#      nothing added to the journal's events;
#   3. `zdm status DIR` (and --json) lists every plan done, with its file.
set -euo pipefail

me=apply_app.sh
example=app
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"

app_src=$root/plans/app
here=$root/tests/runtime
for f in "$ZDM" "$ZDMC" "$ZDM_TRAFFIC"; do
	[ -x "$f" ] || { echo "$me: $f is not built" >&2; exit 2; }
done
work=$(mktemp -d)
zdm_on_exit "rm -rf '$work'"
zdm_on_exit at_cleanup
assert_t0=$SECONDS

# ---- the plans ---------------------------------------------------------------------
# plan[N], mig[N] and sp[N] for migration N (the number its file name starts
# with); nums: the numbers in name order.
declare -a plan mig sp nums
dir=$work/db
mkdir -p "$dir"
for src in "$app_src"/*.zdm; do
	name=$(basename "$src" .zdm)
	n=$((10#${name%%_*}))
	plan[n]=$(at_compile "$src" "db/$name")
	mig[n]=$(at_plan_get "${plan[n]}" migration)
	sp[n]=$(at_plan_get "${plan[n]}" new_version.search_path)
	if [ -z "${mig[n]}" ] || [ -z "${sp[n]}" ]; then
		die "cannot read migration and search_path from ${plan[n]}"
	fi
	nums+=("$n")
done
count=${#nums[@]}
[ "$count" -ge 10 ] || die "plans/app has $count migrations, not ten or more"
for ((i = 0; i < count; i++)); do
	[ "${nums[i]}" = $((i + 1)) ] || die "plans/app: migration $((i + 1)) is missing (numbers ${nums[*]})"
done
say "$count plans compiled"

# ---- the application's versions ----------------------------------------------------
# app_script V: the statements of version V (apply_app.sql's lines whose
# range holds V) in $work/vVV.sql.
app_script()
{
	local v=$1 out
	out=$work/$(printf v%02d "$v").sql
	awk -F '\t' -v v="$v" '
		/^[0-9]+-[0-9]*\t/ {
			split($1, r, "-")
			if (v >= r[1] + 0 && (r[2] == "" || v <= r[2] + 0))
				print $2
		}' "$here/apply_app.sql" >"$out"
	[ -s "$out" ] || die "apply_app.sql has no statement for version $v"
}

# app_traffic_start V: version V's clients (search_path public for 0, the
# version schema of migration V then public for the others).
app_traffic_start()
{
	local v=$1 tag path=public
	tag=$(printf v%02d "$v")
	[ "$v" -gt 0 ] && path=${sp[v]}
	app_script "$v"
	rm -f "$work/stop.$tag"
	"$ZDM_TRAFFIC" --db "dbname=$db" --search-path "$path" \
		--script "$work/$tag.sql" --stop-file "$work/stop.$tag" \
		--clients 2 --id-range "$CLIENT_IDS" --tag "$tag" --pause-ms 5 \
		--max-seconds 400 >"$work/traffic.$tag" 2>&1 &
	at_traffic_pid[$tag]=$!
	say "version $v started (search_path $path)"
}

# app_traffic_stop V: stop version V; not one of its statements may have
# failed, and it must have run some.
app_traffic_stop()
{
	local v=$1 tag pid rc=0
	tag=$(printf v%02d "$v")
	pid=${at_traffic_pid[$tag]}
	touch "$work/stop.$tag"
	at_wait_gone "$pid" 30 || die "version $v did not stop within 30 s"
	wait "$pid" || rc=$?
	unset "at_traffic_pid[$tag]"
	sed 's/^/    /' "$work/traffic.$tag"
	if [ "$rc" != 0 ] || ! grep -Eq "^traffic $tag: [1-9][0-9]* statements, 0 failed\$" \
		"$work/traffic.$tag"; then
		die "version $v: client statements failed (exit $rc), see above"
	fi
}

# ---- the journal -------------------------------------------------------------------
# Migration M has a journal row and every step of its expand is done.
expand_done()
{
	journal_exists "$db" &&
		sql_true "$db" "SELECT EXISTS (SELECT FROM zdm.migrations WHERE migration = '$1')
		  AND NOT EXISTS (SELECT FROM zdm.steps
		                   WHERE migration = '$1' AND phase = 'expand' AND state <> 'done')"
}

# Migration M waits at its switch gate.
at_switch()
{
	journal_exists "$db" &&
		sql_true "$db" "SELECT EXISTS (SELECT FROM zdm.migrations WHERE migration = '$1'
		  AND state = 'paused' AND waiting_gate = 'switch')"
}

# app_wait_for WHAT CONDITION...: poll until CONDITION holds (60 s at most);
# if zdm apply exits first, show its output and fail.
app_wait_for()
{
	local what=$1 i
	shift
	for ((i = 0; i < 600; i++)); do
		"$@" 2>/dev/null && return 0
		if ! kill -0 "$zdm_pid" 2>/dev/null; then
			cat "$work/apply1.out" "$work/apply1.err" >&2
			die "zdm apply exited while waiting for: $what"
		fi
		sleep 0.1
	done
	die "timed out after 60 s waiting for: $what"
}

# "migration=state" of every migration, oldest first.
journal()
{
	val "$db" "SELECT string_agg(migration || '=' || state, ' ' ORDER BY started_at)
	  FROM zdm.migrations"
}

# ---- what must hold at the end -----------------------------------------------------
# Columns, constraints and indexes of the shop's tables, as in apply_app.schema.
app_check_schema()
{
	q -d "$db" -At -o "$work/schema" <<'SQL'
SELECT kind, rel, name, what, flags
  FROM (SELECT 1 AS k, 'column' AS kind, c.relname AS rel, a.attnum AS pos, a.attname::text AS name,
               pg_catalog.format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') AS what,
               CASE WHEN a.attidentity <> '' THEN 'identity' ELSE '' END AS flags
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
           AND n.nspname = 'public'
        UNION ALL
        SELECT 2, 'constraint', c.conrelid::regclass::text, 0, c.conname::text,
               pg_catalog.pg_get_constraintdef(c.oid),
               CASE WHEN c.convalidated THEN '' ELSE 'NOT VALID' END
          FROM pg_catalog.pg_constraint c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = 'public'
        UNION ALL
        SELECT 3, 'index', i.indrelid::regclass::text, 0, i.indexrelid::regclass::text,
               pg_catalog.pg_get_indexdef(i.indexrelid),
               CASE WHEN i.indisvalid THEN '' ELSE 'INVALID' END
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public') AS s
 ORDER BY k, rel COLLATE "C", pos, name COLLATE "C"
SQL
	diff -u "$here/apply_app.schema" "$work/schema" >&2 ||
		die "the final schema differs from apply_app.schema (- expected, + found)"
	say "columns, constraints and indexes are apply_app.schema"
}

# No zdm object outside the journal, no version schema of any migration.
app_check_no_leftovers()
{
	local n
	for n in "${nums[@]}"; do
		version_schemas=$(at_version_schemas "${plan[n]}")
		check_no_leftovers "$db"
	done
	say "no zdm object and no version schema left"
}

# Each query of apply_app.check.sql returns 0.
app_check_data()
{
	local f got n=0
	awk -v dir="$work" '/^-- check:/ { n++; file = sprintf("%s/appcheck.%03d.sql", dir, n) }
		n { print > file }' "$here/apply_app.check.sql"
	for f in "$work"/appcheck.*.sql; do
		n=$((n + 1))
		got=$(q -d "$db" -At -f "$f") || die "check query failed: $(head -1 "$f")"
		if [ "$got" != 0 ]; then
			cat "$f" >&2
			die "data check returned $got, not 0: $(head -1 "$f" | sed 's/^-- check: //')"
		fi
	done
	say "$n data checks of apply_app.check.sql hold"
}

# ---- 1. the folder in one command, the application rolled forward -------------
pg_start || die "the server did not start"
say "server on port $PGPORT"
db=shop
q -c "CREATE DATABASE $db"
PGOPTIONS="-c client_min_messages=warning" q -d $db -f "$app_src/schema.sql" >/dev/null
PGOPTIONS="-c client_min_messages=warning" q -d $db -f "$here/apply_app.data.sql" >/dev/null
q -d $db -c 'VACUUM ANALYZE'

say "1. zdm apply $dir --wait --approve contract, versions 0 to $count rolled forward"
app_traffic_start 0
zdm_bg apply1 apply "$dir" --db "dbname=$db" --wait --approve contract
prev=0
for n in "${nums[@]}"; do
	app_wait_for "expand of ${mig[n]} done" expand_done "${mig[n]}"
	app_traffic_start "$n"
	app_wait_for "${mig[n]} at its switch gate" at_switch "${mig[n]}"
	app_traffic_stop "$prev"
	zdm_run "approve$n" 0 approve "${plan[n]}" switch --by deployer --db "dbname=$db"
	prev=$n
done
zdm_wait "$zdm_pid" apply1 0 60
app_traffic_stop "$prev"
o=$work/apply1.out
i=0
for n in "${nums[@]}"; do
	i=$((i + 1))
	expect_grep "apply1" "$o" "^sequence: ${plan[n]} \\(migration ${mig[n]}\\), $i of $count\$"
done
expect_grep "apply1" "$o" "^sequence done: $count migrations, $count applied by this run, 0 already done\$"
want=""
for n in "${nums[@]}"; do
	want+="${want:+ }${mig[n]}=done"
done
expect "journal after the sequence" "$(journal)" "$want"
app_check_schema
app_check_no_leftovers
app_check_data

say "2. the same command again: all skipped"
events=$(val $db "SELECT count(*) FROM zdm.events")
zdm_run apply2 0 apply "$dir" --db "dbname=$db" --wait --approve contract
i=0
for n in "${nums[@]}"; do
	i=$((i + 1))
	expect_grep "apply2" "$work/apply2.out" "^sequence: ${plan[n]} \\(migration ${mig[n]}\\), $i of $count: already done, skipped\$"
done
expect_grep "apply2" "$work/apply2.out" "^sequence done: $count migrations, 0 applied by this run, $count already done\$"
expect "journal events after the rerun" "$(val $db "SELECT count(*) FROM zdm.events")" "$events"

say "3. zdm status of the folder"
zdm_run status1 0 status "$dir" --db "dbname=$db"
expect_grep "status DIR" "$work/status1.out" '^PLAN +MIGRATION +STATE'
for n in "${nums[@]}"; do
	expect_grep "status DIR" "$work/status1.out" "^${plan[n]} +${mig[n]} +done "
done
expect "status lines" "$(wc -l <"$work/status1.out")" $((count + 1))
zdm_run status2 0 status "$dir" --json --db "dbname=$db"
expect "status DIR --json" "$(python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))
print(" ".join("%s=%s/%s" % (m["migration"], m["state"], m["same_plan"]) for m in a))' "$work/status2.out")" \
	"$(for n in "${nums[@]}"; do printf '%s=done/True ' "${mig[n]}"; done | sed 's/ $//')"
at_done
