#!/usr/bin/env bash
#
# apply_locks.sh -- a long transaction holds a lock on the table: zdm's DDL
# times out and retries, the application is never blocked for longer than
# the lock timeout, and when the retries run out zdm stops safely.
#
#   tests/runtime/apply_locks.sh [EXAMPLE]
#
# EXAMPLE defaults to split_name; the test compiles a bench-only copy with
# lock_retries = 3 (same statements and lock_timeout), so that the retries
# run out in a few seconds rather than half a minute.
#   expand    a session holds ACCESS SHARE on the table in an open
#             transaction.  While `zdm apply` retries, old-version clients
#             (zdm_traffic) write and two psql probes run every 20 ms, one
#             `SELECT ... WHERE id = 5`, one `UPDATE ... WHERE id = 6`, with
#             \timing.  Then:
#             - zdm's output shows "retry N of 3" for every retry;
#             - it exits 3, stderr names SQLSTATE 55P03;
#             - `zdm status --json` says stopped, last_error.sqlstate 55P03,
#               last_error.step an expand step, that step failed with 55P03;
#               the human status prints "SQLSTATE 55P03";
#             - pg_dump --schema-only is the original (nothing half done);
#             - no probe statement took longer than the lock timeout plus
#               ZDM_LATENCY_SLACK_MS (default 300 ms, for a loaded 2-core
#               machine), and at least one waited behind zdm (the probe
#               measured something);
#             - no client statement failed.
#             The lock released, `zdm apply` resumes ("was stopped") to the
#             switch gate.
#   contract  old clients stopped, the lock taken again, `zdm apply
#             --approve-all`: contract retries, exits 3 with 55P03, the
#             schema is the one at the gate.  Released, the next run
#             finishes: final columns, no zdm object left, status done.
set -euo pipefail

me=apply_locks.sh
example=${1:-split_name}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
plan=$(at_variant "${example}_retries3" 's/^( *with \()/\1lock_retries = 3, /')
grep -q '^  lock_retries: 3$' "$plan" || die "the variant does not have lock_retries 3"
lock_ms=$(sed -n "s/^  lock_timeout: \([0-9]*\)ms$/\1/p" "$plan")
slack_ms=${ZDM_LATENCY_SLACK_MS:-300}
table=$(sed -n 's/^- table: //p' "$plan" | head -n 1)
db=locks
fresh_db $db
at_dump $db "$work/before"

# probe_start NAME SQL: psql running SQL every 20 ms with \timing.
declare -A probe_pid
probe_start()
{
	printf '\\timing on\n%s \\watch 0.02\n' "$2" >"$work/probe.$1.sql"
	timeout 120 psql -X -At -d $db -f "$work/probe.$1.sql" \
		>"$work/probe.$1.out" 2>&1 &
	probe_pid[$1]=$!
	at_bg_pids+=("${probe_pid[$1]}")
}

# probe_stop NAME: stop it; prints its slowest statement, in whole ms.
probe_stop()
{
	kill "${probe_pid[$1]}" 2>/dev/null || true
	wait "${probe_pid[$1]}" 2>/dev/null || true
	if grep -q 'ERROR' "$work/probe.$1.out"; then
		grep 'ERROR' "$work/probe.$1.out" >&2
		die "probe $1: a statement failed"
	fi
	awk '/^Time: / { if ($2 + 0 > max) max = $2 + 0; n++ }
	     END { if (n < 10) exit 1; printf "%d\n", max }' "$work/probe.$1.out" ||
		die "probe $1: fewer than 10 timed statements"
}

# stopped_by_lock RUN PHASE: exit 3 already checked; the rest of the story.
stopped_by_lock()
{
	local run=$1 phase=$2 step
	expect_grep "$run: retries" "$work/$run.out" "retry 3 of 3"
	expect "$run: retry lines" "$(grep -c 'retry [0-9] of 3' "$work/$run.out")" 3
	expect_grep "$run: stderr" "$work/$run.err" '^zdm: error: step [a-z]+\.[0-9]+: .*\(SQLSTATE 55P03\)$'
	expect "$run: status state" "$(status_json $db 'd["state"]')" stopped
	expect "$run: status sqlstate" "$(status_json $db 'd["last_error"]["sqlstate"]')" 55P03
	step=$(status_json $db 'd["last_error"]["step"]')
	expect "$run: status step's phase and state" \
		"$(status_json $db "[(s['phase'], s['state'], s['sqlstate']) for s in d['steps'] if s['id'] == '$step']")" \
		"[('$phase', 'failed', '55P03')]"
	timeout 30 "$ZDM" status "$plan" --db "dbname=$db" >"$work/$run.status"
	expect_grep "$run: human status" "$work/$run.status" '^migration .*: stopped$'
	expect_grep "$run: human status" "$work/$run.status" "last error +$step: .*SQLSTATE 55P03"
	say "$run: stopped at $step with 55P03, as the journal says"
}

say "expand against a lock held by a long transaction"
traffic_start $db old old
blocker_start $db "LOCK TABLE $table IN ACCESS SHARE MODE"
probe_start read "SELECT 1 FROM $table WHERE id = 5"
probe_start write "UPDATE $table SET updated_at = updated_at WHERE id = 6"
sleep 0.5
t=$SECONDS
zdm_run expand 3 apply "$plan" --db "dbname=$db"
say "zdm gave up after about $((SECONDS - t)) s"
sleep 0.5
read_max=$(probe_stop read)
write_max=$(probe_stop write)
say "slowest probe statements: read $read_max ms, write $write_max ms (lock_timeout ${lock_ms} ms)"
for m in "$read_max" "$write_max"; do
	[ "$m" -le $((lock_ms + slack_ms)) ] ||
		die "a client statement waited $m ms, more than lock_timeout $lock_ms ms + $slack_ms ms"
done
[ "$read_max" -ge $((lock_ms / 2)) ] || [ "$write_max" -ge $((lock_ms / 2)) ] ||
	die "no probe ever waited behind zdm (read $read_max ms, write $write_max ms): the test measured nothing"
stopped_by_lock expand expand
at_dump $db "$work/stopped"
same_schema "$work/before" "$work/stopped" "stopped in expand"

blocker_stop $db
say "lock released: apply resumes"
apply_to_gate $db resume "$plan"
expect_grep "resumed run" "$work/resume.out" '^migration .*: resuming \(was stopped\)'
sleep 1
traffic_stop old

say "contract against the lock"
at_dump $db "$work/gate"
blocker_start $db "LOCK TABLE $table IN ACCESS SHARE MODE"
zdm_run contract 3 apply "$plan" --db "dbname=$db" --approve-all
stopped_by_lock contract contract
at_dump $db "$work/stopped2"
same_schema "$work/gate" "$work/stopped2" "stopped in contract"
blocker_stop $db
zdm_run finish 0 apply "$plan" --db "dbname=$db" --approve-all
expect_grep "last run" "$work/finish.out" '^migration .*: resuming \(was stopped\)'
sleep 1
traffic_stop new
check_columns $db
check_no_leftovers $db
check_data $db
expect "status" "$(status_json $db 'd["state"]')" done
at_done
