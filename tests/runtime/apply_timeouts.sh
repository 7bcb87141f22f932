#!/usr/bin/env bash
#
# apply_timeouts.sh -- statement_timeout: a role's cannot break a run, the
# plan's is what zdm's sessions use, and a statement the server still
# cancels is reported with the option to change.
#
#   tests/runtime/apply_timeouts.sh [EXAMPLE]
#
# EXAMPLE (default split_name) on a fresh copy of its fixture:
#   role     zdm connects as the role deployer, which has
#            ALTER ROLE deployer SET statement_timeout = '1ms' (production
#            roles often carry one, set for the application).  A backfill
#            batch is sized for 30 ms and verify counts the whole table, so
#            under that setting they would be cancelled (57014); zdm's
#            sessions set the plan's (none) at connection startup, before
#            their first statement.  Under old-
#            and new-version traffic `zdm apply` runs to the switch gate and
#            then through contract: done, the data checked (EXAMPLE's
#            checks), not one client statement failed.
#   option   a variant with lock_timeout = '100ms', statement_timeout =
#            '200ms' whose first_name using sleeps 10 ms a row: the
#            backfill's batches run into the timeout and are halved, down to
#            one page (the output says so), which still cannot fit: exit 1,
#            the backfill step failed with 57014, and a HINT names
#            statement_timeout, its value and how to change it.
#            The fix the hint gives: the run rolled back, the migration
#            compiled without the option applied again (a new attempt), to
#            done.
#   chunks   verify under the same limit: a variant with statement_timeout =
#            '500ms' and verify_sample = 20 whose first_name using sleeps
#            1 ms a row, on the table cut to 2,000 rows.  One statement that
#            counts the whole table evaluates using 2,000 times (2 s): the
#            same counts, run as one statement each, are cancelled (57014,
#            shown first with psql under the same limit).  zdm apply counts
#            the table's checks in one pass of page ranges, each well
#            inside the limit: done, every counting check journaled as
#            counted in that pass, the data checked.
#   recount  a count the pass finds wrong is no verdict: on a copy stopped
#            at a verify gate, one row's first_name is made wrong with the
#            triggers off; the pass counts 1, the check counts again on its
#            own and stops the run (exit 3) naming that row; the row put
#            right, the same plan goes on to done.
set -euo pipefail

me=apply_timeouts.sh
example=${1:-split_name}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

q -c "CREATE ROLE deployer LOGIN SUPERUSER"
q -c "ALTER ROLE deployer SET statement_timeout = '1ms'"
expect "deployer's statement_timeout" \
	"$(psql -X -At -U deployer -d postgres -c 'SHOW statement_timeout')" 1ms

say "role: the role's statement_timeout does not reach zdm's sessions"
db=timeouts_role
fresh_db $db
traffic_start $db old old
sleep 1
zdm_bg role1 apply "$plan" --db "dbname=$db user=deployer"
at_wait_for "expand done in the journal" 60 \
	eval "phase_done $db expand || ! kill -0 $zdm_pid"
traffic_start $db new new
zdm_wait "$zdm_pid" role1 4
expect_grep role1 "$work/role1.out" '^zdm: paused at gate "switch"'
traffic_stop old
zdm_run role2 0 apply "$plan" --db "dbname=$db user=deployer" --approve-all
traffic_stop new
check_done $db

say "option: the plan's statement_timeout, batches halved, then a hint"
db=timeouts_option
fresh_db $db
at_dump $db "$work/option.before"
# first_name's using sleeps 10 ms a row: a page of rows cannot fit in 200 ms
tight=$(at_variant "${example}_tight" \
	"s/lock_timeout = '[^']*', ?//; s/^( *with \\()/\\1lock_timeout = '100ms', statement_timeout = '200ms', /; s/using \\(split_part\\(name, ' ', 1\\)\\)/using (split_part(name, ' ', 1) || left(pg_sleep(0.01)::text, 0))/")
grep -q '^  statement_timeout: 200ms$' "$tight" || die "the variant's plan has no statement_timeout: 200ms"
grep -q 'pg_sleep' "$tight" || die "the variant's using does not sleep"
zdm_run tight1 1 apply "$tight" --db "dbname=$db"
expect_grep tight1 "$work/tight1.out" \
	'worker [0-9]+: a batch ran into statement_timeout; batches of [0-9]+ pages from now on'
expect_grep tight1 "$work/tight1.out" \
	'worker [0-9]+: a batch ran into statement_timeout; batches of 1 pages from now on'
expect_grep tight1 "$work/tight1.err" \
	'^zdm: error: .*canceling statement due to statement timeout \(SQLSTATE 57014\)$'
expect_grep tight1 "$work/tight1.err" \
	"^HINT: zdm's sessions run with statement_timeout = 200ms, the plan's statement_timeout option; raise it"
expect "the step that stopped" \
	"$(val $db "SELECT phase || ' ' || sqlstate FROM zdm.steps WHERE state = 'failed'")" "backfill 57014"
# what the hint says: back out, compile without the option, apply again
zdm_run tight.rollback 0 rollback "$tight" --db "dbname=$db"
at_dump $db "$work/option.rolledback"
same_schema "$work/option.before" "$work/option.rolledback" "rollback of the stopped run"
zdm_run tight2 0 apply "$plan" --db "dbname=$db" --approve-all
# no client wrote here: EXAMPLE.check.sql's checks of what clients wrote
# do not apply; the shape and the journal do
check_columns $db
check_no_leftovers $db
expect "status after the plan without the option" "$(status_json $db 'd["state"]')" done

say "chunks: verify counts in one pass of ranges that fit statement_timeout"
db=timeouts_chunks
fresh_db $db
q -d $db -c "DELETE FROM public.users WHERE id > 2000"
q -d $db -c "VACUUM ANALYZE public.users"
chunks=$(at_variant "${example}_chunks" \
	"s/lock_timeout = '[^']*', ?//; s/^( *with \\()/\\1lock_timeout = '100ms', statement_timeout = '500ms', verify_sample = 20, /; s/using \\(split_part\\(name, ' ', 1\\)\\)/using (split_part(name, ' ', 1) || left(pg_sleep(0.001)::text, 0))/")
grep -q '^  statement_timeout: 500ms$' "$chunks" || die "the variant's plan has no statement_timeout: 500ms"
zdm_run chunks1 4 apply "$chunks" --db "dbname=$db"
expect_grep chunks1 "$work/chunks1.out" '^  verify\.1 +counting verify\.1 to verify\.[0-9]+ in one pass over public\.users$'
# every counting check passed in the pass, which took more than one range
counted=$(val $db "SELECT count(*) FROM zdm.steps WHERE phase = 'verify' AND state = 'done'
	AND result ~ '^0 \(expected 0; one pass with verify\.1 to verify\.[0-9]+ over [0-9]+ pages: [0-9]+ ranges'")
[ "$counted" -ge 3 ] || die "$counted verify steps journaled as counted in one pass, expected 3 or more"
ranges=$(val $db "SELECT substring(result from ': ([0-9]+) ranges') FROM zdm.steps WHERE step_id = 'verify.1'")
[ "$ranges" -gt 1 ] || die "the pass ran $ranges range(s); the table cannot fit one under the limit"
# the same count as one statement under the same limit: cancelled
rc=0
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "SET statement_timeout = '500ms'" \
	-c "SELECT count(*) FROM public.users WHERE zdm_new_first_name IS DISTINCT FROM (split_part(name, ' ', 1) || left(pg_sleep(0.001)::text, 0))" \
	>"$work/chunks.one.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || die "one statement counting the table was not cancelled: the test's table is too small to show anything"
expect_grep chunks.one "$work/chunks.one.out" 'canceling statement due to statement timeout'
zdm_run chunks2 0 apply "$chunks" --db "dbname=$db" --approve-all
check_columns $db
check_no_leftovers $db
expect "status of the chunked run" "$(status_json $db 'd["state"]')" done

say "recount: what the pass counts wrong, the check counts again alone"
db=timeouts_recount
fresh_db $db
gated=$(at_gates_variant "${example}_verify_gate" "verify, switch, contract")
zdm_run recount1 4 apply "$gated" --db "dbname=$db"
expect_grep recount1 "$work/recount1.out" '^zdm: paused at gate "verify"'
q -d $db -c "SET session_replication_role = replica" \
	-c "UPDATE public.users SET zdm_new_first_name = 'wrong' WHERE id = 7"
ctid=$(val $db "SELECT ctid FROM public.users WHERE id = 7")
zdm_run recount2 3 apply "$gated" --db "dbname=$db" --approve verify
expect_grep recount2 "$work/recount2.out" \
	'^  verify\.[0-9]+ +1 rows counted in the pass; counting again on its own$'
expect_grep recount2 "$work/recount2.err" "^zdm: error: .*verification failed: every row agrees"
grep -F "$ctid" "$work/recount2.err" >/dev/null ||
	die "the failed check does not name row $ctid"
q -d $db -c "SET session_replication_role = replica" \
	-c "UPDATE public.users SET zdm_new_first_name = split_part(name, ' ', 1) WHERE id = 7"
zdm_run recount3 0 apply "$gated" --db "dbname=$db" --approve-all
check_columns $db
check_no_leftovers $db
at_done
