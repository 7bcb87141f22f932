#!/usr/bin/env bash
#
# apply_claims.sh -- at most one migration in flight per table (issue 14,
# item 1), under old-version client traffic.
#
#   tests/runtime/apply_claims.sh [ROUNDS]
#
# The report: a split of users.name (plans/split_name.zdm) and a rename of
# name (a test-only source, migration rename_user_name, which stops at its
# contract gate) started at the same instant both passed preflight; the
# rename went on, the split failed at backfill, and from then on every
# old-version write failed inside the split's sync trigger.
#
# Each of ROUNDS rounds (default 4; the start order alternates), on a fresh
# database with old-version clients writing users all along:
#   - both `zdm apply` are started at once (neither --approve-all): exactly
#     one stops at its first gate (exit 4); the other is refused (exit 2)
#     with the winner's name, its state, and what to do (HINT), and its
#     migration has no journal row and nothing of its own in the database
#     (no version schema, no sync trigger);
#   - the claim in zdm.claims is the winner's, on public.users;
#   - the old-version clients saw zero failed statements.
# Then (the claim goes with the migration): the winner is rolled back; its
# claim is gone, and the loser now applies to its gate; it is rolled back
# in turn.  In the last round the winner is instead taken to done (clients
# stopped first, as an upgraded application would): no claim is left, and
# `zdm status` says done.
set -euo pipefail

me=apply_claims.sh
example=split_name
rounds=${1:-4}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

split_plan=$plan
split_migration=$migration
mkdir -p "$work/src"
cat >"$work/src/rename_name.zdm" <<'EOF'
-- test only: rename users.name, stopping before contract
migration rename_user_name
  with (lock_timeout = '500ms', approve = (contract));

alter table users rename column name to full_name;
EOF
rename_plan=$(at_compile "$work/src/rename_name.zdm" rename_name)
rename_migration=rename_user_name

# version schema of a plan
schema_of()
{
	at_plan_get "$1" new_version.schema
}

for ((r = 1; r <= rounds; r++)); do
	db=claims$r
	say "round $r: split and rename of users.name started at once"
	fresh_db $db
	traffic_start $db old$r old
	sleep 0.5
	if ((r % 2)); then
		first=(split "$split_plan") second=(rename "$rename_plan")
	else
		first=(rename "$rename_plan") second=(split "$split_plan")
	fi
	zdm_bg "${first[0]}$r" apply "${first[1]}" --db "dbname=$db" --batch-size 500 --pause 5ms
	pid_1=$zdm_pid
	zdm_bg "${second[0]}$r" apply "${second[1]}" --db "dbname=$db" --batch-size 500 --pause 5ms
	pid_2=$zdm_pid
	rc_1=0 rc_2=0
	at_wait_gone "$pid_1" "$ZDM_TIMEOUT" || die "zdm apply ${first[0]} still running"
	at_wait_gone "$pid_2" "$ZDM_TIMEOUT" || die "zdm apply ${second[0]} still running"
	wait "$pid_1" || rc_1=$?
	wait "$pid_2" || rc_2=$?
	for n in "${first[0]}$r" "${second[0]}$r"; do
		echo "  run $n:"
		sed 's/^/    | /' "$work/$n.out"
		sed 's/^/    ! /' "$work/$n.err"
	done
	declare -A rc=([${first[0]}]=$rc_1 [${second[0]}]=$rc_2)
	say "exit statuses: split ${rc[split]}, rename ${rc[rename]}"
	case "${rc[split]}:${rc[rename]}" in
	4:2) winner=split loser=rename ;;
	2:4) winner=rename loser=split ;;
	*) die "round $r: expected one run at its gate (4) and the other refused (2), got split ${rc[split]}, rename ${rc[rename]}" ;;
	esac
	if [ $winner = split ]; then
		wplan=$split_plan wmig=$split_migration lplan=$rename_plan lmig=$rename_migration
	else
		wplan=$rename_plan wmig=$rename_migration lplan=$split_plan lmig=$split_migration
	fi
	say "round $r: $winner won, $loser refused"
	err=$work/$loser$r.err
	expect_grep "the refusal names the table and the winner" "$err" \
		"public\\.users.*migration $wmig .*(running|paused)"
	expect_grep "the refusal says what to do" "$err" \
		"^HINT: .*(zdm rollback|roll it back|finish)"
	expect "journal row of the refused migration" \
		"$(val $db "SELECT count(*) FROM zdm.migrations WHERE migration = '$lmig'")" 0
	expect "version schema of the refused migration" \
		"$(val $db "SELECT pg_catalog.to_regnamespace('$(schema_of "$lplan")') IS NULL")" t
	expect "claims" "$(val $db "SELECT string_agg(relation::text || '=' || migration, ',') FROM zdm.claims")" \
		"users=$wmig"
	traffic_stop old$r
	if ((r < rounds)); then
		say "round $r: roll back $winner; then $loser may go"
		zdm_run "rb_w$r" 0 rollback "$wplan" --db "dbname=$db"
		expect "claims after the rollback" "$(val $db "SELECT count(*) FROM zdm.claims")" 0
		zdm_run "again$r" 4 apply "$lplan" --db "dbname=$db"
		expect "claims of the second" "$(val $db "SELECT string_agg(relation::text || '=' || migration, ',') FROM zdm.claims")" \
			"users=$lmig"
		zdm_run "rb_l$r" 0 rollback "$lplan" --db "dbname=$db"
		expect "claims at the end" "$(val $db "SELECT count(*) FROM zdm.claims")" 0
	else
		say "round $r: take $winner to done"
		zdm_run "done$r" 0 apply "$wplan" --db "dbname=$db" --approve-all
		expect "claims after done" "$(val $db "SELECT count(*) FROM zdm.claims")" 0
		plan=$wplan
		expect "status of $wmig" "$(status_json $db 'd["state"]')" done
	fi
done
at_done
