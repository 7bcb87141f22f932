#!/usr/bin/env bash
#
# apply_retry.sh -- fix and try again after a rollback (issue 14, item 3),
# and a journal that an earlier zdm created.
#
# The runbook's loop, with old-version clients writing all along until the
# switch gate of the good attempt:
#   - a copy of plans/split_name.zdm whose last_name loses middle names
#     (split_part(name, ' ', 2)) is compiled to retry.plan; `zdm apply`
#     stops at verify (exit 3): the sampled reverse check finds rows whose
#     name does not come back;
#   - the fixed source compiled over retry.plan: `zdm apply` now is refused
#     (exit 2, "different plan", the hint says roll back with that plan):
#     the first attempt is in flight;
#   - `zdm rollback` with the first plan (exit 0); then `zdm apply` of the
#     fixed plan starts attempt 2 ("starting again", "started attempt 2")
#     and stops at switch (exit 4); clients stopped; --approve-all: done;
#     the table is as the example's fixture expects, nothing left behind;
#   - the journal: zdm.attempts holds attempt 1 (the first plan's
#     checksum, rolled_back, its verify step's error), zdm.migrations the
#     second (done), zdm.events an "attempt" event; `zdm status` shows
#     attempt 2 and the earlier one with the step that failed (human and
#     --json);
#   - git (the CLI on --history): refs/zdm/history has "started (plan
#     FIRST)", "rolled back", "started attempt 2 (plan SECOND)" and "done";
#     plan.yaml at the first start is the first plan byte for byte, at the
#     tip the second; state.yaml at the tip lists the earlier attempt;
#   - a third plan of the done migration: refused (exit 2), "is done, with
#     another plan", the hint says to restore the plan and write a new
#     migration; the journal is unchanged;
#   - never got past its first step: an attempt stopped by a lock (every
#     step pending) may start again with another plan at once.
# Then a journal as the previous zdm left it (without zdm.claims and
# zdm.attempts; it had every other table as it is): a migration at its
# switch gate is resumed, the tables appear, the migration claims its table
# and finishes; a rolled-back one of that journal starts again.
set -euo pipefail

me=apply_retry.sh
example=split_name
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
export GIT_CONFIG_NOSYSTEM=1 HOME=$work
hist=$work/hist
good_src=$root/plans/split_name.zdm
mkdir -p "$work/src"
sed -E "s/nullif\(substr\(name, length\(split_part\(name, ' ', 1\)\) \+ 2\), ''\)/nullif(split_part(name, ' ', 2), '')/" \
	"$good_src" >"$work/src/retry.zdm"
cmp -s "$good_src" "$work/src/retry.zdm" && die "the bad copy changed nothing"
# the operator's file: one path, compiled again after the fix
cp "$work/src/retry.zdm" "$work/src/split_retry.zdm"
retry_plan=$(at_compile "$work/src/split_retry.zdm" retry)
cp "$retry_plan" "$work/first.plan"
first_sha=$(sed -n 's/^plan_sha256: //p' "$work/first.plan")
[ -n "$first_sha" ] || die "no plan_sha256 in the first plan"
db=retry
fresh_db $db
dbarg=(--db "dbname=$db" --history "$hist")
traffic_start $db old old

say "attempt 1: the lossy last_name fails verify"
zdm_run a1 3 apply "$retry_plan" "${dbarg[@]}"
expect_grep "verify stops attempt 1" "$work/a1.err" 'verify\.[0-9]+'
failed_step=$(val $db "SELECT step_id FROM zdm.steps WHERE migration = '$migration' AND state = 'failed'")
[ -n "$failed_step" ] || die "no failed step in the journal"
say "failed at $failed_step"

say "the fixed source compiled over the same plan file"
cp "$good_src" "$work/src/split_retry.zdm"
retry_plan=$(at_compile "$work/src/split_retry.zdm" retry)
cmp -s "$retry_plan" "$work/first.plan" && die "the fixed plan is the first plan"
zdm_run early 2 apply "$retry_plan" "${dbarg[@]}"
expect_grep "apply while attempt 1 is in flight" "$work/early.err" 'was started with a different plan'
expect_grep "its hint" "$work/early.err" '^HINT: .*roll it back with that plan'
expect "attempts before the rollback" "$(val $db "SELECT count(*) FROM zdm.attempts")" 0

say "roll back attempt 1 (with its plan), then apply the fixed plan"
zdm_run rb1 0 rollback "$work/first.plan" "${dbarg[@]}"
zdm_run rb1again 0 rollback "$retry_plan" "${dbarg[@]}"
expect_grep "rollback with the new plan after the rollback" "$work/rb1again.out" 'already rolled back'
zdm_run a2 4 apply "$retry_plan" "${dbarg[@]}"
expect_grep "attempt 2 starts" "$work/a2.out" "the attempt with plan ${first_sha:0:12}\\.\\.\\. is rolled_back; starting again"
expect_grep "attempt 2 is numbered" "$work/a2.out" '^migration split_user_name: started attempt 2 '
traffic_stop old
zdm_run a2done 0 apply "$retry_plan" "${dbarg[@]}" --approve-all
check_columns $db
check_no_leftovers $db
q -d $db -v ON_ERROR_STOP=1 -f "$fixtures/$example.check.sql" >/dev/null ||
	die "the fixture's checks fail after attempt 2"

say "the journal keeps both attempts"
second_sha=$(val $db "SELECT plan_sha256 FROM zdm.migrations WHERE migration = '$migration'")
expect "attempt 1 in zdm.attempts" \
	"$(val $db "SELECT attempt || ' ' || plan_sha256 || ' ' || state FROM zdm.attempts WHERE migration = '$migration'")" \
	"1 $first_sha rolled_back"
expect "attempt 1's failed step kept" \
	"$(val $db "SELECT count(*) FROM zdm.attempts, pg_catalog.jsonb_array_elements(steps) s
	  WHERE migration = '$migration' AND s->>'step_id' = '$failed_step' AND s->>'error' IS NOT NULL")" 1
expect "attempt 2 done" "$(val $db "SELECT state FROM zdm.migrations WHERE migration = '$migration'")" done
[ "$second_sha" != "$first_sha" ] || die "the journal's plan is still the first"
expect "attempt event" "$(val $db "SELECT count(*) FROM zdm.events WHERE migration = '$migration' AND event = 'attempt'
	  AND message LIKE 'attempt 2 with plan ${second_sha:0:12}%attempt 1 (plan ${first_sha:0:12}...) ended rolled_back'")" 1
expect "claims after done" "$(val $db "SELECT count(*) FROM zdm.claims")" 0
zdm_run st 0 status "$retry_plan" --db "dbname=$db"
expect_grep "status: attempt" "$work/st.out" '^  attempt     2; earlier:$'
expect_grep "status: the earlier attempt" "$work/st.out" \
	"^              1: plan ${first_sha:0:12}\\.\\.\\., rolled_back, started .*; $failed_step failed: "
plan=$retry_plan
expect "status --json attempt" "$(status_json $db 'd["attempt"]')" 2
expect "status --json earlier" \
	"$(status_json $db '" ".join(str(a[k]) for a in d["earlier_attempts"] for k in ("attempt", "state", "failed_step"))')" \
	"1 rolled_back $failed_step"

say "git has both attempts"
git --git-dir "$hist/.git" rev-parse -q --verify refs/zdm/history >/dev/null 2>&1 && gd=$hist/.git || gd=$hist
git --git-dir "$gd" log --reverse --format=%s refs/zdm/history >"$work/log"
sed 's/^/    /' "$work/log"
expect_grep "git: attempt 1 started" "$work/log" "^split_user_name: started \\(plan ${first_sha:0:12}\\)\$"
expect_grep "git: rolled back" "$work/log" '^split_user_name: rolled back$'
expect_grep "git: attempt 2 started" "$work/log" "^split_user_name: started attempt 2 \\(plan ${second_sha:0:12}\\)\$"
expect_grep "git: done" "$work/log" '^split_user_name: done$'
c1=$(git --git-dir "$gd" log --format=%H --grep="^split_user_name: started (plan" refs/zdm/history | tail -n 1)
git --git-dir "$gd" show "$c1:split_user_name/plan.yaml" >"$work/git.first.plan"
cmp -s "$work/git.first.plan" "$work/first.plan" || die "git: plan.yaml of attempt 1 is not the first plan"
git --git-dir "$gd" show "refs/zdm/history:split_user_name/plan.yaml" >"$work/git.second.plan"
cmp -s "$work/git.second.plan" "$retry_plan" || die "git: plan.yaml at the tip is not the second plan"
git --git-dir "$gd" show "refs/zdm/history:split_user_name/state.yaml" >"$work/state.yaml"
python3 - "$work/state.yaml" "$first_sha" "$failed_step" <<'PY' || die "git: state.yaml does not list the earlier attempt"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
e = d["earlier_attempts"]
assert d["attempt"] == 2, d.get("attempt")
assert len(e) == 1 and e[0]["attempt"] == 1 and e[0]["plan_sha256"] == sys.argv[2], e
assert e[0]["state"] == "rolled_back" and e[0]["failed"]["step"] == sys.argv[3], e
PY

say "a third plan of the done migration is refused"
sed -E 's/batch_size = 10000/batch_size = 5000/' "$good_src" >"$work/src/third.zdm"
third=$(at_compile "$work/src/third.zdm" third)
zdm_run third 2 apply "$third" "${dbarg[@]}"
expect_grep "done, other plan" "$work/third.err" "migration split_user_name is done, with another plan"
expect_grep "its hint" "$work/third.err" '^HINT: a done migration is never applied again: restore .* new migration'
expect "journal after the third plan" \
	"$(val $db "SELECT state || ' ' || plan_sha256 FROM zdm.migrations")" "done $second_sha"

say "an attempt that never ran a step may start again with another plan"
# both plans with lock_retries = 0: the blocker stops the first at once
sed -E "s/^( *with \()/\1lock_retries = 0, /" "$work/src/retry.zdm" >"$work/src/never1.zdm"
sed -E "s/^( *with \()/\1lock_retries = 0, /" "$good_src" >"$work/src/never2.zdm"
never1=$(at_compile "$work/src/never1.zdm" never1)
never2=$(at_compile "$work/src/never2.zdm" never2)
db=never
fresh_db $db
# switch approved for the first plan: the second must ask again
zdm_run nap 0 approve "$never1" switch --db "dbname=$db"
blocker_start $db "LOCK TABLE public.users IN ACCESS SHARE MODE"
zdm_run n1 3 apply "$never1" --db "dbname=$db"
blocker_stop $db
# the step refused its lock is failed (55P03), the others pending: nothing
# of the attempt is in the database
expect "nothing ran" "$(val $db "SELECT string_agg(state || coalesce(' ' || sqlstate, ''), ',' ORDER BY state) FROM (SELECT DISTINCT state, sqlstate FROM zdm.steps) s")" \
	"failed 55P03,pending"
zdm_run n2 4 apply "$never2" --db "dbname=$db"
expect_grep "starts again" "$work/n2.out" 'is stopped and none of its steps ran; starting again'
expect_grep "the first plan's approval does not carry over" "$work/n2.out" 'paused at gate "switch"'
expect "attempts" "$(val $db "SELECT attempt || ' ' || state FROM zdm.attempts")" "1 stopped"
zdm_run n3 0 rollback "$never2" --db "dbname=$db"

say "a journal of the previous version (no zdm.claims, no zdm.attempts)"
cat >"$work/src/rename_name.zdm" <<'EOF'
-- test only: rename users.name, stopping before contract
migration rename_user_name
  with (lock_timeout = '500ms', approve = (contract));

alter table users rename column name to full_name;
EOF
rename_plan=$(at_compile "$work/src/rename_name.zdm" rename_name)
db=upgrade
fresh_db $db
zdm_run u1 4 apply "$retry_plan" --db "dbname=$db"
q -d $db -c 'DROP TABLE zdm.claims, zdm.attempts'
# the new tables are created with the claims of the migrations in flight,
# read from the plans the journal holds
zdm_run u2 2 apply "$rename_plan" --db "dbname=$db"
expect_grep "a migration the previous version started holds its table" "$work/u2.err" \
	"public\\.users: migration $migration is in flight on this table"
expect "claims after the upgrade" \
	"$(val $db "SELECT string_agg(relation::text || '=' || migration, ',') FROM zdm.claims")" "users=$migration"
zdm_run u3 0 apply "$retry_plan" --db "dbname=$db" --approve-all
expect "claims after done" "$(val $db "SELECT count(*) FROM zdm.claims")" 0
check_columns $db

say "a journal of the previous version: a rolled-back migration starts again"
db=upgrade2
fresh_db $db
zdm_run v1 4 apply "$retry_plan" --db "dbname=$db"
zdm_run v2 0 rollback "$retry_plan" --db "dbname=$db"
q -d $db -c 'DROP TABLE zdm.claims, zdm.attempts'
zdm_run v3 4 apply "$retry_plan" --db "dbname=$db"
expect_grep "attempt 2" "$work/v3.out" 'started attempt 2 '
expect "attempts" "$(val $db "SELECT attempt || ' ' || state FROM zdm.attempts")" "1 rolled_back"
zdm_run v4 0 rollback "$retry_plan" --db "dbname=$db"
at_done
