#!/usr/bin/env bash
#
# apply_e2e.sh -- one example migration end to end with `zdm apply`, under
# traffic from both application versions.
#
#   tests/runtime/apply_e2e.sh EXAMPLE
#
# On a throwaway cluster loaded with tests/sql/fixtures/EXAMPLE.sql:
#   1. old-version clients (EXAMPLE.old.sql, search_path public) start;
#   2. `zdm apply` runs (small backfill batches with a pause, so that the
#      clients write between them); as soon as the journal shows expand done,
#      new-version clients start (EXAMPLE.new.sql, the plan's
#      new_version.search_path);
#   3. it stops at the first gate that needs approval (exit 4: switch, or
#      contract for a plan that approves only contract) and `zdm status
#      --json` says paused at that gate; the old clients stop;
#   4. `zdm apply --approve-all` resumes and finishes (exit 0); the new
#      clients go on a few seconds past contract, then stop;
#   5. neither version saw one failed statement; the final columns are
#      EXAMPLE.columns; no zdm object is left outside schema zdm and the
#      version schema is gone; EXAMPLE.check.sql holds; `zdm status --json`
#      says done with every step done; a third `zdm apply` says "already
#      done" and exits 0.
# A plan whose gates need no approval (rename_email: approve = none) would
# run through contract while old clients still write: the test then uses a
# bench-only copy of the example with approve = (switch) (same statements).
set -euo pipefail

me=apply_e2e.sh
example=${1:?usage: apply_e2e.sh EXAMPLE}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

plan=$(at_stopping_plan)

db=e2e
fresh_db $db
traffic_start $db old old
sleep 1

say "zdm apply (to the first gate that needs approval)"
zdm_bg apply1 apply "$plan" --db "dbname=$db" --batch-size 200 --pause 20ms
at_wait_for "expand done in the journal" 60 phase_done $db expand
traffic_start $db new new
zdm_wait "$zdm_pid" apply1 4
expect_grep "first run" "$work/apply1.out" '^migration .*: started'
expect_grep "first run" "$work/apply1.out" '^zdm: paused at gate "(switch|contract)"'
gate=$(sed -n 's/^zdm: paused at gate "\([a-z]*\)".*/\1/p' "$work/apply1.out")
expect "status at the gate: state" "$(status_json $db 'd["state"]')" paused
expect "status at the gate: waiting_gate" "$(status_json $db 'd["waiting_gate"]')" "$gate"
if grep -q '^    kind: backfill$' "$plan"; then
	expect "status at the gate: backfill pages all done" \
		"$(status_json $db 'd["backfill"]["pages_done"] == d["backfill"]["pages_total"] > 0')" True
fi
sleep 1
traffic_stop old

say "zdm apply --approve-all (the rest)"
zdm_run apply2 0 apply "$plan" --db "dbname=$db" --approve-all
expect_grep "second run" "$work/apply2.out" '^migration .*: resuming'
expect_grep "second run" "$work/apply2.out" '^migration .*: done$'
sleep 2
traffic_stop new

check_done $db
zdm_run apply3 0 apply "$plan" --db "dbname=$db"
expect_grep "third run" "$work/apply3.out" 'already done'
at_done
