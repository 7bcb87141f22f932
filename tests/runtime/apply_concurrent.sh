#!/usr/bin/env bash
#
# apply_concurrent.sh -- one runner per migration.
#
#   tests/runtime/apply_concurrent.sh [EXAMPLE]
#
# EXAMPLE defaults to split_name.
#   together  two `zdm apply --approve-all` started at the same instant on a
#             fresh database (backfill slowed with --pause so that the winner
#             is still running when the loser connects): exactly one exits
#             1 with "another zdm" on stderr and the backend that holds the
#             migration (DETAIL "held by backend pid N"), at once (under 5 s);
#             the other exits 0, and the migration is done and correct
#             (final columns, no zdm object left, status done).
#   later     while a `zdm apply` is in its backfill: a second `zdm apply`
#             exits 1 ("another zdm"), so does `zdm rollback`; `zdm status
#             --json` answers (state running) without waiting for the runner;
#             the first run then finishes (exit 0).
set -euo pipefail

me=apply_concurrent.sh
example=${1:-split_name}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

say "case together: two zdm apply started at once"
db=together
fresh_db $db
args=(apply "$plan" --db "dbname=$db" --approve-all --batch-size 100 --pause 20ms)
start=$(date +%s.%N)
zdm_bg a "${args[@]}"
pid_a=$zdm_pid
zdm_bg b "${args[@]}"
pid_b=$zdm_pid
rc_a=0 rc_b=0
at_wait_for "both zdm apply to end" 60 eval "! kill -0 $pid_a && ! kill -0 $pid_b"
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
for r in a b; do
	echo "  run $r:"
	sed 's/^/    | /' "$work/$r.out"
	sed 's/^/    ! /' "$work/$r.err"
done
say "exit statuses: a $rc_a, b $rc_b"
case "$rc_a:$rc_b" in
0:1) loser=b ;;
1:0) loser=a ;;
*) die "expected one run to exit 0 and the other 1, got a $rc_a, b $rc_b" ;;
esac
expect_grep "refused run" "$work/$loser.err" '^zdm: error: another zdm is already running migration '
# docs/runbook.md: "exits at once (exit 1) naming the backend that holds
# the lock".
expect_grep_later "refused run names the backend" "$work/$loser.err" \
	'^DETAIL: held by backend pid [0-9]+'
! grep -Eq 'preflight|started|resuming' "$work/$loser.out" ||
	die "the refused run did something: $(cat "$work/$loser.out")"
check_columns $db
check_no_leftovers $db
expect "status" "$(status_json $db 'd["state"]')" done

say "case later: a second runner while the first is in its backfill"
db=later
fresh_db $db
zdm_bg first apply "$plan" --db "dbname=$db" --approve-all --batch-size 100 --pause 50ms
pid=$zdm_pid
at_wait_for "backfill rows in the journal" 60 \
	eval "! kill -0 $pid || sql_true $db 'SELECT coalesce(sum(rows), 0) > 0 FROM zdm.backfill'"
t=$(date +%s%N)
zdm_run second 1 apply "$plan" --db "dbname=$db" --approve-all
ms=$((($(date +%s%N) - t) / 1000000))
expect_grep "second apply" "$work/second.err" 'another zdm'
[ "$ms" -lt 5000 ] || die "the second zdm apply took $ms ms to be refused, not at once"
zdm_run rollback 1 rollback "$plan" --db "dbname=$db"
expect_grep "rollback during apply" "$work/rollback.err" 'another zdm'
expect "status during the run" "$(status_json $db 'd["state"]')" running
kill -0 $pid 2>/dev/null || die "the first run ended before the checks above: the test proved nothing"
zdm_wait $pid first 0
check_columns $db
check_no_leftovers $db
expect "status" "$(status_json $db 'd["state"]')" done
at_done
