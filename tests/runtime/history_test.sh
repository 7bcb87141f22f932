#!/usr/bin/env bash
#
# history_test.sh -- the record of every run in git (runtime/history.c)
# against a real PostgreSQL (tests/lib/pg.sh) and real repositories in a
# temp dir.  Every fact about the history is read twice, with libgit2
# (zdm_history_driver, tests/runtime/history_driver.c) and with the git CLI,
# and both must agree.
#
#   tests/runtime/history_test.sh full|approve|rollback|crash|concurrent|fail|secret
#
#   full        `zdm apply --approve-all` of plans/split_name.zdm compiled
#               into a git repository: a commit for the start, each step
#               group, the backfill ("backfill done, N rows in S s"), each
#               check, each gate, and done, in that order, one chain, each
#               with Zdm-Migration/Zdm-State trailers; state.yaml says done
#               with every step done and the backfill's rows; plan.yaml is
#               the plan file byte for byte; the user's HEAD, index, work
#               tree and other refs are unchanged; git fsck is clean; `zdm
#               log` lists the same commits; `zdm history sync` says up to
#               date and commits nothing.
#   approve     `zdm approve PLAN switch --by alice` at the gate: a commit
#               whose state has the approval by alice with a timestamp; an
#               approval before the first apply is recorded too (state
#               not_started, no plan.yaml yet).
#   rollback    `zdm rollback` at the gate: a commit "rolled back", state
#               rolled_back, no step done; a new apply starts over.
#   crash       kill -9 of `zdm apply` in a slowed backfill of 100,000
#               rows, then apply again: the commits before the crash are
#               ancestors of the final tip, the ones after follow, the final
#               state is done; sync says up to date; with the ref deleted,
#               sync records a state.yaml identical to the one deleted.
#   concurrent  two migrations (split_name on users, orders_amount on
#               orders) applied at once into one --history repository that
#               neither has created yet, while three more processes record
#               30 times each: every commit of every writer is on the ref
#               (counted by trailer against runs made alone), one chain, and
#               the tip tree holds every migration.
#   fail        recording fails (refs/zdm is a file in the plan's repository;
#               --history at a path that cannot be created): the migration
#               completes (exit 0) with a warning, and `zdm history sync`
#               afterwards records the state.
#   secret      the postgres role gets a password and 127.0.0.1 requires it
#               (scram-sha-256); apply, status (--json too), approve,
#               rollback, log, sync, a run stopped on a lock, a bad plan and
#               a wrong password, given as key=value and as URI: the password
#               appears in no output, not in the journal (pg_dump of schema
#               zdm), not in any git object, ref or log, not in the server
#               log.
#
# The programs come from the environment (ctest sets them): ZDM, ZDMC and
# ZDM_HISTORY_DRIVER, by default from build/release.  The script runs in its
# temp dir, outside any repository, so nothing can reach the project's own.
set -euo pipefail

me=history_test.sh
case=${1:?usage: history_test.sh full|approve|rollback|crash|concurrent|fail|secret}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fixtures=$root/tests/sql/fixtures
ZDM=${ZDM:-$root/build/release/zdm}
ZDMC=${ZDMC:-$root/build/release/zdmc}
DRIVER=${ZDM_HISTORY_DRIVER:-$root/build/release/tests/zdm_history_driver}
ZDM_TIMEOUT=${ZDM_TIMEOUT:-90}
REF=refs/zdm/history

for f in "$ZDM" "$ZDMC" "$DRIVER"; do
	[ -x "$f" ] || { echo "$me: $f is not built" >&2; exit 2; }
done

# shellcheck source=../lib/pg.sh
. "$root/tests/lib/pg.sh"
# shellcheck source=../lib/assert.sh
. "$root/tests/lib/assert.sh"
assert_where() { echo "$case"; }

work=$(mktemp -d)
bg_pids=()
cleanup_bg()
{
	local pid
	for pid in "${bg_pids[@]}"; do
		kill -9 "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
zdm_on_exit "rm -rf '$work'"
zdm_on_exit cleanup_bg
cd "$work"
# Git as a user runs it, but with nothing from this machine's config.
export GIT_CONFIG_NOSYSTEM=1 HOME=$work GIT_AUTHOR_NAME=tester \
	GIT_AUTHOR_EMAIL=tester@example.com GIT_COMMITTER_NAME=tester \
	GIT_COMMITTER_EMAIL=tester@example.com

# zdm_run NAME WANT-RC ARGS...: zdm ARGS (bounded) in the current
# directory, output in $work/NAME.out and .err; the exit status must be
# WANT-RC.
zdm_run()
{
	local name=$1 want=$2 rc=0
	shift 2
	timeout -s KILL "$ZDM_TIMEOUT" "$ZDM" "$@" \
		>"$work/$name.out" 2>"$work/$name.err" || rc=$?
	sed 's/^/    | /' "$work/$name.out" | tail -n 8
	sed 's/^/    ! /' "$work/$name.err"
	[ "$rc" = "$want" ] || die "zdm $1 ($name) exited $rc, expected $want"
}

# zdm_bg NAME ARGS...: zdm in the background; its pid in $bg_pid.
zdm_bg()
{
	local name=$1
	shift
	"$ZDM" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	bg_pid=$!
	bg_pids+=("$bg_pid")
}

# bg_wait PID NAME WANT-RC: wait (bounded) for a background process.
bg_wait()
{
	local pid=$1 name=$2 want=$3 rc=0 i
	for ((i = 0; i < ZDM_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && die "$name still running after ${ZDM_TIMEOUT}s"
	wait "$pid" || rc=$?
	sed 's/^/    ! /' "$work/$name.err"
	[ "$rc" = "$want" ] || {
		tail -n 20 "$work/$name.out" >&2
		die "$name exited $rc, expected $want"
	}
}

# at_wait_for WHAT TIMEOUT-S COMMAND...: poll every 0.1 s.
at_wait_for()
{
	local what=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	die "timed out after ${limit}s waiting for: $what"
}

sql_true()
{
	[ "$(val "$1" "$2")" = t ]
}

# ---- fixtures --------------------------------------------------------------------
# make_db DB EXAMPLE...: a database with those fixtures loaded.
make_db()
{
	local db=$1 ex
	shift
	q -c "CREATE DATABASE $db"
	for ex in "$@"; do
		PGOPTIONS="-c client_min_messages=warning" \
			q -d "$db" -f "$fixtures/$ex.sql" >/dev/null
	done
	q -d "$db" -c 'VACUUM ANALYZE'
}

# make_repo DIR: a user's repository holding the example sources and their
# compiled plans, committed, with HEAD on main.
make_repo()
{
	local dir=$1 ex
	git init -q -b main "$dir"
	for ex in split_name orders_amount; do
		cp "$root/plans/$ex.zdm" "$dir/"
		(cd "$dir" && "$ZDMC" compile -o "$ex.plan" "$ex.zdm") ||
			die "$ex.zdm does not compile"
	done
	git -C "$dir" add -A
	git -C "$dir" commit -q -m "migrations"
}

# snapshot_user_state REPO OUT: what the user owns in REPO (HEAD, index,
# work tree, refs other than ours).
snapshot_user_state()
{
	local repo=$1 out=$2 gitdir
	gitdir=$(git -C "$repo" rev-parse --absolute-git-dir)
	{
		echo "HEAD $(git -C "$repo" symbolic-ref HEAD) $(git -C "$repo" rev-parse HEAD)"
		echo "index $(sha256sum <"$gitdir/index")"
		echo "status:"
		git -C "$repo" status --porcelain --untracked-files=all
		echo "refs:"
		git -C "$repo" for-each-ref --format='%(refname) %(objectname)' |
			grep -v "^$REF " || true
	} >"$out"
}

# ---- reading the history twice ---------------------------------------------------
# both_logs REPO OUT: the commits of the ref, newest first, as
# ID<TAB>PARENTS<TAB>MIGRATION<TAB>STATE<TAB>SUBJECT, read by the driver and
# by `git log`; the two must be identical.  OUT holds them.
both_logs()
{
	local repo=$1 out=$2
	"$DRIVER" log "$repo" >"$out.lib" || die "driver log of $repo failed"
	git -C "$repo" log --topo-order \
		--format='%H%x09%P%x09%(trailers:key=Zdm-Migration,valueonly,separator=%x2C)%x09%(trailers:key=Zdm-State,valueonly,separator=%x2C)%x09%s' \
		"$REF" |
		awk -F '\t' -v OFS='\t' '{
			$2 = ($2 == "" ? 0 : split($2, p, " "))
			if ($3 == "") $3 = "-"
			if ($4 == "") $4 = "-"
			print
		}' >"$out.cli" || die "git log of $repo failed"
	diff -u "$out.lib" "$out.cli" >&2 ||
		die "libgit2 and git log disagree on $REF of $repo (- libgit2, + git)"
	cp "$out.lib" "$out"
	[ -s "$out" ] || die "$REF of $repo has no commit"
}

# both_show REPO PATH OUT: PATH at the tip, by the driver and by `git show`;
# identical, in OUT.
both_show()
{
	local repo=$1 path=$2 out=$3
	"$DRIVER" show "$repo" "$path" >"$out.lib" ||
		die "driver: no $path at the tip of $REF in $repo"
	git -C "$repo" show "$REF:$path" >"$out.cli" ||
		die "git show $REF:$path failed in $repo"
	cmp -s "$out.lib" "$out.cli" ||
		die "libgit2 and git show disagree on $path"
	cp "$out.lib" "$out"
}

# both_ls REPO: the names at the root of the tip's tree, sorted, both ways.
both_ls()
{
	local repo=$1 a b
	a=$("$DRIVER" ls "$repo" | sort)
	b=$(git -C "$repo" ls-tree --name-only "$REF" | sort)
	expect "tip tree of $repo, libgit2 vs git" "$a" "$b"
	echo "$a"
}

# A field of a log line: subjects LOG, count_for LOG MIGRATION
subjects()
{
	cut -f5 "$1"
}

count_for()
{
	awk -F '\t' -v m="$2" '$3 == m { n++ } END { print n + 0 }' "$1"
}

# The ref is one chain: the oldest commit has no parent, the others one.
one_chain()
{
	local log=$1 roots merges
	roots=$(awk -F '\t' '$2 == 0' "$log" | wc -l)
	merges=$(awk -F '\t' '$2 > 1' "$log" | wc -l)
	expect "root commits" "$roots" 1
	expect "merge commits" "$merges" 0
	expect "the root is the oldest" "$(tail -n 1 "$log" | cut -f2)" 0
}

# A scalar as read: history.c single-quotes a string that a YAML reader
# would take for a number (a plan_sha256 of hex digits starting with a
# digit, say), so take the quotes off.
yaml_unquote()
{
	sed -e "/^'.*'\$/{s/^'\(.*\)'\$/\1/; s/''/'/g}"
}

# A top-level scalar of state.yaml; a field of a top-level mapping.
yaml_top()
{
	sed -n "s/^$2: //p" "$1" | yaml_unquote
}

yaml_sub()
{
	awk -v sec="$2:" -v key="  $3: " '
		$0 == sec { on = 1; next }
		/^[^ ]/ { on = 0 }
		on && index($0, key) == 1 { print substr($0, length(key) + 1); exit }' "$1" |
		yaml_unquote
}

# Every step of state.yaml: its state, one a line.
step_states()
{
	awk '/^steps:/ { on = 1; next } /^[^ -]/ { on = 0 }
	     on && /^  state: / { print $2 }' "$1"
}

git_fsck()
{
	git -C "$1" fsck --strict --no-dangling >"$work/fsck.out" 2>&1 || {
		cat "$work/fsck.out" >&2
		die "git fsck of $1 failed"
	}
}

# ---- the cases -------------------------------------------------------------------------
case_full()
{
	local repo=$work/repo plan nsteps
	make_repo "$repo"
	make_db h split_name
	plan=$repo/split_name.plan
	nsteps=$(grep -c '^  - id: ' "$plan")
	snapshot_user_state "$repo" "$work/user.before"

	say "apply --approve-all, the plan given by a relative path from outside the repository"
	zdm_run apply 0 apply repo/split_name.plan --db dbname=h --approve-all
	both_logs "$repo" "$work/log"
	subjects "$work/log" | sed 's/^/    > /'
	one_chain "$work/log"
	expect "newest commit" "$(head -n 1 "$work/log" | cut -f5)" "split_user_name: done"
	expect "newest state trailer" "$(head -n 1 "$work/log" | cut -f4)" "done"
	subjects "$work/log" | tail -n 1 | grep -Eq '^split_user_name: started \(plan [0-9a-f]{12}\)$' ||
		die "the oldest commit is not the start"
	expect "oldest state trailer" "$(tail -n 1 "$work/log" | cut -f4)" running
	expect "commits of other migrations" \
		"$(awk -F '\t' '$3 != "split_user_name"' "$work/log" | wc -l)" 0
	# oldest first: start, expand, backfill, verify, the gates, contract, done
	subjects "$work/log" | tac >"$work/order"
	awk -v want='^split_user_name: started |^split_user_name: expand[.]1 to expand[.]7 done |^split_user_name: backfill done, 20000 rows in [0-9]+[.][0-9] s$|^split_user_name: verify[.]1 passed: 0 [(]expected 0; one pass with verify[.]1 to verify[.]4 over [0-9]+ pages: [0-9]+ ranges, [0-9.]+ s[)]$|^split_user_name: verify[.]6 done: |^split_user_name: gate switch passed: approved by |^split_user_name: gate contract passed: approved by |^split_user_name: contract[.]2 to contract[.]13 done |^split_user_name: contract[.]14 done: |^split_user_name: done$' '
		BEGIN { n = split(want, w, "|") }
		k < n && $0 ~ w[k + 1] { k++ }
		END { if (k != n) { print "missing or out of order: " w[k + 1]; exit 1 } }' \
		"$work/order" || die "the commits are not start, expand, backfill, verify, gates, contract, done in order"

	both_show "$repo" split_user_name/state.yaml "$work/state"
	head -n 30 "$work/state" | sed 's/^/    = /'
	expect "state.yaml migration" "$(yaml_top "$work/state" migration)" split_user_name
	expect "state.yaml state" "$(yaml_top "$work/state" state)" "done"
	expect "state.yaml plan_sha256" "$(yaml_top "$work/state" plan_sha256)" \
		"$(val h "SELECT plan_sha256 FROM zdm.migrations")"
	yaml_top "$work/state" finished_at | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' ||
		die "state.yaml finished_at is not a UTC timestamp"
	expect "state.yaml steps" "$(step_states "$work/state" | wc -l)" "$nsteps"
	expect "state.yaml steps not done" "$(step_states "$work/state" | grep -vc '^done$' || true)" 0
	expect "state.yaml backfill rows" "$(yaml_sub "$work/state" backfill rows)" 20000
	expect "state.yaml backfill pages" "$(yaml_sub "$work/state" backfill pages_done)" \
		"$(yaml_sub "$work/state" backfill pages_total)"
	expect "state.yaml approvals" "$(grep -c '^- gate: ' "$work/state")" 2
	expect "state.yaml last_error" "$(yaml_sub "$work/state" last_error message)" null
	both_show "$repo" split_user_name/plan.yaml "$work/plan.yaml"
	cmp -s "$work/plan.yaml" "$plan" || die "plan.yaml differs from the plan file"
	expect "tip tree" "$(both_ls "$repo" | tr '\n' ' ')" "split_user_name "
	expect "files of the record" \
		"$(git -C "$repo" ls-tree -r --name-only "$REF" | tr '\n' ' ')" \
		"split_user_name/plan.yaml split_user_name/state.yaml "
	git -C "$repo" log -1 --format=%an%x20%ae%x20%cn%x20%ce "$REF" >"$work/who"
	expect "author and committer" "$(cat "$work/who")" "zdm zdm@localhost zdm zdm@localhost"

	snapshot_user_state "$repo" "$work/user.after"
	diff -u "$work/user.before" "$work/user.after" >&2 ||
		die "the user's HEAD, index, work tree or refs changed"
	git_fsck "$repo"

	say "zdm log, in the repository"
	(cd "$repo" && zdm_run log 0 log)
	expect "zdm log lines" "$(wc -l <"$work/log.out")" "$(wc -l <"$work/log")"
	head -n 1 "$work/log.out" | grep -Eq '^[0-9a-f]{10}  [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} [+-][0-9]{4}  split_user_name: done$' ||
		die "zdm log's first line is not 'ID  DATE  split_user_name: done'"
	awk '{ print $1 }' "$work/log.out" >"$work/log.ids"
	cut -c1-10 "$work/log" | cmp -s - "$work/log.ids" || die "zdm log lists other commits"
	(cd "$repo" && zdm_run log_one 0 log split_user_name)
	cmp -s "$work/log.out" "$work/log_one.out" || die "zdm log split_user_name differs"
	(cd "$repo" && zdm_run log_other 0 log no_such_migration)
	expect_grep "zdm log of another migration" "$work/log_other.out" '^no zdm history of migration no_such_migration'
	zdm_run log_nowhere 2 log
	expect_grep "zdm log outside a repository" "$work/log_nowhere.err" 'not in a git repository'

	say "history sync: nothing is missing"
	tip=$(git -C "$repo" rev-parse "$REF")
	(cd "$repo" && zdm_run sync 0 history sync --db dbname=h)
	expect "sync output" "$(cat "$work/sync.out")" "split_user_name: up to date (state done)"
	zdm_run sync_plan 0 history sync repo/split_name.plan --db dbname=h
	expect "sync PLAN output" "$(cat "$work/sync_plan.out")" "split_user_name: up to date (state done)"
	expect "tip after sync" "$(git -C "$repo" rev-parse "$REF")" "$tip"

	say "apply again: already done, nothing recorded"
	zdm_run again 0 apply repo/split_name.plan --db dbname=h
	expect "tip after a second apply" "$(git -C "$repo" rev-parse "$REF")" "$tip"
}

case_approve()
{
	local repo=$work/repo plan=repo/split_name.plan
	make_repo "$repo"
	make_db a split_name

	say "apply to the switch gate"
	zdm_run apply1 4 apply $plan --db dbname=a
	both_logs "$repo" "$work/log1"
	expect "newest commit" "$(head -n 1 "$work/log1" | cut -f5)" \
		"split_user_name: paused at gate switch, waiting for approval"
	both_show "$repo" split_user_name/state.yaml "$work/state1"
	expect "state at the gate" "$(yaml_top "$work/state1" state)" paused
	expect "waiting_gate" "$(yaml_top "$work/state1" waiting_gate)" switch
	expect "approvals at the gate" "$(yaml_top "$work/state1" approvals)" "[]"

	say "zdm approve PLAN switch --by alice"
	zdm_run approve 0 approve $plan switch --by alice --db dbname=a
	both_logs "$repo" "$work/log2"
	expect "commits after the approval" "$(wc -l <"$work/log2")" $(($(wc -l <"$work/log1") + 1))
	expect "newest commit" "$(head -n 1 "$work/log2" | cut -f5)" \
		"split_user_name: gate switch approved by alice"
	expect "parent of the approval" "$(git -C "$repo" rev-parse "$REF^")" "$(head -n 1 "$work/log1" | cut -f1)"
	both_show "$repo" split_user_name/state.yaml "$work/state2"
	sed -n '/^approvals:/,/^events:/p' "$work/state2" | sed 's/^/    = /'
	sed -n '/^approvals:/,/^events:/p' "$work/state2" >"$work/approvals"
	expect_grep "approval in state.yaml" "$work/approvals" '^- gate: switch$'
	expect_grep "approval in state.yaml" "$work/approvals" '^  approved_by: alice$'
	expect_grep "approval timestamp" "$work/approvals" \
		'^  approved_at: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'
	expect "approval time = journal" \
		"$(sed -n 's/^  approved_at: //p' "$work/approvals")" \
		"$(val a "SELECT to_char(approved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM zdm.approvals")"
	expect_grep "approval event" "$work/state2" '^  message: switch by alice$'

	say "apply on to the contract gate; approve it too; apply to the end"
	zdm_run apply2 4 apply $plan --db dbname=a
	both_logs "$repo" "$work/log3"
	subjects "$work/log3" >"$work/subjects3"
	grep -qx 'split_user_name: gate switch passed: approved by alice at .*' "$work/subjects3" ||
		die "no 'gate switch passed: approved by alice' commit"
	zdm_run approve2 0 approve $plan contract --by bob --db dbname=a
	zdm_run apply3 0 apply $plan --db dbname=a
	both_show "$repo" split_user_name/state.yaml "$work/state3"
	expect "final state" "$(yaml_top "$work/state3" state)" "done"
	expect "approvers" "$(sed -n 's/^  approved_by: //p' "$work/state3" | tr '\n' ' ')" "alice bob "

	say "an approval before the first apply"
	make_repo "$work/repo2"
	make_db a2 split_name
	zdm_run approve0 0 approve repo2/split_name.plan switch --by carol --db dbname=a2
	both_logs "$work/repo2" "$work/log4"
	expect "commits" "$(wc -l <"$work/log4")" 1
	expect "the commit" "$(cut -f3-5 "$work/log4")" \
		"$(printf 'split_user_name\tnot_started\tsplit_user_name: gate switch approved by carol')"
	both_show "$work/repo2" split_user_name/state.yaml "$work/state4"
	expect "state" "$(yaml_top "$work/state4" state)" not_started
	expect "approved_by" "$(sed -n 's/^  approved_by: //p' "$work/state4")" carol
	if "$DRIVER" show "$work/repo2" split_user_name/plan.yaml >/dev/null 2>&1; then
		die "plan.yaml recorded before the migration started"
	fi
	zdm_run apply4 4 apply repo2/split_name.plan --db dbname=a2
	both_show "$work/repo2" split_user_name/plan.yaml "$work/plan4"
	cmp -s "$work/plan4" "$work/repo2/split_name.plan" || die "plan.yaml differs from the plan"
	git_fsck "$repo"
	git_fsck "$work/repo2"
}

case_rollback()
{
	local repo=$work/repo plan=repo/split_name.plan n
	make_repo "$repo"
	make_db r split_name
	zdm_run apply1 4 apply $plan --db dbname=r
	both_logs "$repo" "$work/log1"
	n=$(wc -l <"$work/log1")

	say "rollback at the switch gate"
	zdm_run rollback 0 rollback $plan --db dbname=r
	both_logs "$repo" "$work/log2"
	expect "commits after the rollback" "$(wc -l <"$work/log2")" $((n + 1))
	expect "newest commit" "$(head -n 1 "$work/log2" | cut -f4-5)" \
		"$(printf 'rolled_back\tsplit_user_name: rolled back')"
	both_show "$repo" split_user_name/state.yaml "$work/state"
	expect "state" "$(yaml_top "$work/state" state)" rolled_back
	expect "steps still done" "$(step_states "$work/state" | grep -c '^done$' || true)" 0
	expect "steps compensated" "$(step_states "$work/state" | grep -c '^compensated$' || true)" \
		"$(val r "SELECT count(*) FROM zdm.steps WHERE state = 'compensated'")"
	expect "backfill after rollback" "$(yaml_sub "$work/state" backfill rows)" null
	expect_grep "rolled_back event" "$work/state" '^  event: rolled_back$'

	say "apply again: it starts over, on the same chain"
	zdm_run apply2 4 apply $plan --db dbname=r
	both_logs "$repo" "$work/log3"
	one_chain "$work/log3"
	expect "start commits" "$(subjects "$work/log3" | grep -c '^split_user_name: started ')" 2
	(cd "$repo" && zdm_run sync 0 history sync --db dbname=r)
	expect "sync" "$(cat "$work/sync.out")" "split_user_name: up to date (state paused)"
	git_fsck "$repo"
}

case_crash()
{
	local repo=$work/repo plan=repo/split_name.plan old_tip n_before
	make_repo "$repo"
	make_db k split_name
	q -d k -c "INSERT INTO public.users (id, name, email)
	  SELECT g, 'First' || g || ' Last' || g, 'user' || g || '@example.com'
	    FROM pg_catalog.generate_series(20001, 100000) AS g"
	q -d k -c "VACUUM ANALYZE public.users"
	expect "rows" "$(val k 'SELECT count(*) FROM public.users')" 100000

	say "apply with a slowed backfill; kill -9 in the middle"
	zdm_bg run1 apply $plan --db dbname=k --approve-all --batch-size 100 --pause 50ms --jobs 2
	# (an error while schema zdm does not exist yet counts as "not yet")
	at_wait_for "backfill rows in the journal" 60 sql_true k \
		"SELECT coalesce(sum(rows), 0) > 2000 FROM zdm.backfill"
	kill -9 "$bg_pid"
	wait "$bg_pid" 2>/dev/null || true
	at_wait_for "the killed run's sessions to end" 30 sql_true k \
		"SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
		  WHERE datname = 'k' AND application_name LIKE 'zdm %')"
	both_logs "$repo" "$work/log1"
	subjects "$work/log1" | sed 's/^/    > /'
	old_tip=$(head -n 1 "$work/log1" | cut -f1)
	n_before=$(wc -l <"$work/log1")
	expect "newest before the crash" "$(head -n 1 "$work/log1" | cut -f5)" \
		'split_user_name: expand.1 to expand.7 done (transaction "expand public.users")'
	both_show "$repo" split_user_name/state.yaml "$work/state1"
	expect "state before the crash" "$(yaml_top "$work/state1" state)" running

	say "apply again: it resumes"
	zdm_run run2 0 apply $plan --db dbname=k --approve-all --batch-size 5000 --pause 0ms
	expect_grep "resumed run" "$work/run2.out" '^migration split_user_name: resuming \(was running\)'
	both_logs "$repo" "$work/log2"
	one_chain "$work/log2"
	git -C "$repo" merge-base --is-ancestor "$old_tip" "$REF" ||
		die "the tip before the crash is not an ancestor of the final tip"
	tail -n "$n_before" "$work/log2" | cmp -s - "$work/log1" ||
		die "the commits before the crash are not the oldest of the final history"
	head -n $(($(wc -l <"$work/log2") - n_before)) "$work/log2" | cut -f5 | tac >"$work/after"
	sed 's/^/    > /' "$work/after"
	head -n 1 "$work/after" | grep -Eq '^split_user_name: backfill done, [0-9]+ rows in [0-9.]+ s$' ||
		die "the first commit after the crash is not the backfill's"
	expect "last commit" "$(tail -n 1 "$work/after")" "split_user_name: done"
	both_show "$repo" split_user_name/state.yaml "$work/state2"
	expect "final state" "$(yaml_top "$work/state2" state)" "done"
	expect "backfill rows (journal)" "$(yaml_sub "$work/state2" backfill rows)" \
		"$(val k 'SELECT sum(rows) FROM zdm.backfill')"
	expect "backfill pages" "$(yaml_sub "$work/state2" backfill pages_done)" \
		"$(yaml_sub "$work/state2" backfill pages_total)"
	expect "steps not done" "$(step_states "$work/state2" | grep -vc '^done$' || true)" 0

	say "history sync: up to date"
	(cd "$repo" && zdm_run sync1 0 history sync --db dbname=k)
	expect "sync" "$(cat "$work/sync1.out")" "split_user_name: up to date (state done)"

	say "the ref deleted: zdm log says so, sync records the state again"
	git -C "$repo" update-ref -d "$REF"
	(cd "$repo" && zdm_run log_none 0 log)
	expect_grep "zdm log without the ref" "$work/log_none.out" "^no zdm history in .* yet \\($REF does not exist\\)"
	(cd "$repo" && zdm_run sync2 0 history sync --db dbname=k)
	grep -Eq '^split_user_name: recorded [0-9a-f]{10} \(state done\)$' "$work/sync2.out" ||
		die "sync did not record: $(cat "$work/sync2.out")"
	both_logs "$repo" "$work/log3"
	expect "history after sync" "$(cut -f2-5 "$work/log3")" \
		"$(printf '0\tsplit_user_name\tdone\tsplit_user_name: synced from the journal (state done)')"
	both_show "$repo" split_user_name/state.yaml "$work/state3"
	cmp -s "$work/state2" "$work/state3" || {
		diff -u "$work/state2" "$work/state3" >&2
		die "the synced state.yaml differs from the recorded one"
	}
	both_show "$repo" split_user_name/plan.yaml "$work/plan3"
	cmp -s "$work/plan3" "$repo/split_name.plan" || die "synced plan.yaml differs"
	(cd "$repo" && zdm_run sync3 0 history sync --db dbname=k)
	expect "sync again" "$(cat "$work/sync3.out")" "split_user_name: up to date (state done)"
	git_fsck "$repo"
}

case_concurrent()
{
	local repo=$work/repo hist=$work/shared/history.git ref_users ref_orders
	local p1 p2 d pids=() log n total
	make_repo "$repo"
	make_db c0 split_name orders_amount
	q -c "CREATE DATABASE ref TEMPLATE c0"
	q -c "CREATE DATABASE c TEMPLATE c0"

	say "each migration alone, for the number of records a run makes"
	zdm_run ref1 0 apply repo/split_name.plan --db dbname=ref --approve-all --history "$work/ref.git"
	zdm_run ref2 0 apply repo/orders_amount.plan --db dbname=ref --approve-all --history "$work/ref.git"
	both_logs "$work/ref.git" "$work/ref.log"
	ref_users=$(count_for "$work/ref.log" split_user_name)
	ref_orders=$(count_for "$work/ref.log" orders_amount_units)
	say "alone: $ref_users commits of split_user_name, $ref_orders of orders_amount_units"
	if [ "$ref_users" -lt 10 ] || [ "$ref_orders" -lt 8 ]; then
		die "too few commits in a run alone"
	fi

	say "both at once into one new --history repository, and three recorders"
	[ ! -e "$work/shared" ] || die "the shared history exists already"
	zdm_bg users apply repo/split_name.plan --db dbname=c --approve-all --history "$hist"
	p1=$bg_pid
	zdm_bg orders apply repo/orders_amount.plan --db dbname=c --approve-all --history "$hist"
	p2=$bg_pid
	for d in a b c; do
		"$DRIVER" record "$hist" dbname=c "stress_$d" 30 >"$work/stress_$d.out" 2>"$work/stress_$d.err" &
		pids+=($!)
		bg_pids+=($!)
	done
	bg_wait "$p1" users 0
	bg_wait "$p2" orders 0
	for d in 0 1 2; do
		bg_wait "${pids[$d]}" "stress_$(echo abc | cut -c$((d + 1)))" 0
	done
	for f in users orders; do
		if grep -q 'warning' "$work/$f.err"; then
			die "$f: a record was not written: $(cat "$work/$f.err")"
		fi
	done

	log=$work/c.log
	both_logs "$hist" "$log"
	one_chain "$log"
	expect "split_user_name commits" "$(count_for "$log" split_user_name)" "$ref_users"
	expect "orders_amount_units commits" "$(count_for "$log" orders_amount_units)" "$ref_orders"
	for d in a b c; do
		expect "stress_$d commits" "$(count_for "$log" "stress_$d")" 30
		n=$(subjects "$log" | grep -c "^stress_$d: record [0-9]* of 30\$" || true)
		expect "stress_$d distinct records" \
			"$(subjects "$log" | grep "^stress_$d: record " | sort -u | wc -l)" 30
		expect "stress_$d records" "$n" 30
	done
	total=$((ref_users + ref_orders + 90))
	expect "commits on the ref" "$(wc -l <"$log")" "$total"
	# the two migrations interleave: the CAS really had two writers
	expect "tip tree" "$(both_ls "$hist" | tr '\n' ' ')" \
		"orders_amount_units split_user_name stress_a stress_b stress_c "
	both_show "$hist" split_user_name/state.yaml "$work/s1"
	both_show "$hist" orders_amount_units/state.yaml "$work/s2"
	expect "split_user_name state" "$(yaml_top "$work/s1" state)" "done"
	expect "orders_amount_units state" "$(yaml_top "$work/s2" state)" "done"
	both_show "$hist" orders_amount_units/plan.yaml "$work/p2"
	cmp -s "$work/p2" "$repo/orders_amount.plan" || die "orders plan.yaml differs"
	say "lost races rebuilt and retried: $(git -C "$hist" fsck --unreachable --no-reflogs 2>/dev/null | grep -c 'unreachable commit' || true) commits left unreachable"
	git_fsck "$hist"
	expect "history repository is bare" "$(git -C "$hist" rev-parse --is-bare-repository)" true
	zdm_run sync 0 history sync --db dbname=c --history "$hist"
	expect "sync" "$(grep -c 'up to date (state done)' "$work/sync.out")" 2
}

case_fail()
{
	local repo=$work/repo gitdir
	make_repo "$repo"
	make_db f split_name orders_amount
	gitdir=$repo/.git

	say "refs/zdm is a file: every record fails, the run completes"
	echo "in the way" >"$gitdir/refs/zdm"
	snapshot_user_state "$repo" "$work/user.before"
	zdm_run apply1 0 apply repo/split_name.plan --db dbname=f --approve-all
	# shellcheck disable=SC2016 # the backquotes are the message's own
	expect_grep "warning" "$work/apply1.err" '^zdm: warning: could not record in the git history: .*; the journal has it, and `zdm history sync` records it later$'
	expect_grep "run completed" "$work/apply1.out" '^migration split_user_name: done$'
	expect "state in the journal" "$(val f "SELECT state FROM zdm.migrations WHERE migration = 'split_user_name'")" "done"
	[ -z "$(git -C "$repo" rev-parse -q --verify "$REF" 2>/dev/null)" ] || die "$REF exists"
	rm "$gitdir/refs/zdm"
	snapshot_user_state "$repo" "$work/user.after"
	diff -u "$work/user.before" "$work/user.after" >&2 || die "the user's repository changed"

	say "cause removed: history sync records the missing state"
	zdm_run sync1 0 history sync repo/split_name.plan --db dbname=f
	grep -Eq '^split_user_name: recorded [0-9a-f]{10} \(state done\)$' "$work/sync1.out" ||
		die "sync did not record: $(cat "$work/sync1.out")"
	both_logs "$repo" "$work/log1"
	expect "history" "$(cut -f5 "$work/log1")" "split_user_name: synced from the journal (state done)"
	both_show "$repo" split_user_name/state.yaml "$work/state1"
	expect "state" "$(yaml_top "$work/state1" state)" "done"
	expect "steps not done" "$(step_states "$work/state1" | grep -vc '^done$' || true)" 0
	both_show "$repo" split_user_name/plan.yaml "$work/plan1"
	cmp -s "$work/plan1" "$repo/split_name.plan" || die "plan.yaml differs"

	say "--history at a path that cannot be created: the run completes"
	zdm_run apply2 0 apply repo/orders_amount.plan --db dbname=f --approve-all \
		--history /dev/null/history
	expect_grep "warning" "$work/apply2.err" '^zdm: warning: not recording this run in git: cannot create the history repository: '
	expect_grep "run completed" "$work/apply2.out" '^migration orders_amount_units: done$'
	zdm_run sync_bad 2 history sync --db dbname=f --history /dev/null/history
	zdm_run sync2 0 history sync --db dbname=f --history "$work/later.git"
	grep -Eq '^orders_amount_units: recorded [0-9a-f]{10} \(state done\)$' "$work/sync2.out" ||
		die "sync did not record orders_amount_units: $(cat "$work/sync2.out")"
	grep -Eq '^split_user_name: recorded [0-9a-f]{10} \(state done\)$' "$work/sync2.out" ||
		die "sync did not record split_user_name: $(cat "$work/sync2.out")"
	both_show "$work/later.git" orders_amount_units/state.yaml "$work/state2"
	expect "state" "$(yaml_top "$work/state2" state)" "done"

	say "--history at an existing directory that is not a repository: refused, the run completes"
	mkdir "$work/notrepo" && echo data >"$work/notrepo/file"
	# an approval of an approved gate records nothing: withdraw it first
	q -d f -c "DELETE FROM zdm.approvals WHERE migration = 'split_user_name' AND gate = 'switch'"
	zdm_run approve3 0 approve repo/split_name.plan switch --by dora --db dbname=f --history "$work/notrepo"
	expect_grep "warning" "$work/approve3.err" 'exists and is not a git repository'
	expect "notrepo untouched" "$(ls -A "$work/notrepo")" file

	if [ "$(id -u)" != 0 ]; then
		say "objects read-only (not root): the run completes, sync records later"
		zdm_run apply4 0 apply repo/orders_amount.plan --db dbname=f --approve-all
		chmod -R a-w "$gitdir/objects"
		q -d f -c "INSERT INTO zdm.events (migration, event, message) VALUES ('split_user_name', 'note', 'x')"
		zdm_run sync4 1 history sync repo/split_name.plan --db dbname=f
		chmod -R u+w "$gitdir/objects"
		zdm_run sync5 0 history sync repo/split_name.plan --db dbname=f
		expect_grep "sync" "$work/sync5.out" '^split_user_name: recorded '
	fi
	git_fsck "$repo"
}

case_secret()
{
	local repo=$work/repo pw=S3cr3t-pw-123 wrong=Wr0ng-pw-456 ci uri bad
	local f hits=0
	make_repo "$repo"
	make_db s split_name
	q -c "CREATE DATABASE s2 TEMPLATE s"

	say "password authentication on 127.0.0.1"
	q -c "SET password_encryption = 'scram-sha-256'; ALTER ROLE postgres PASSWORD '$pw'"
	sed -i '1i host all all 127.0.0.1/32 scram-sha-256' "$ZDM_PG_DIR/data/pg_hba.conf"
	val postgres 'SELECT pg_catalog.pg_reload_conf()' >/dev/null
	sleep 0.5
	ci="host=127.0.0.1 port=$PGPORT user=postgres password=$pw dbname=s"
	uri="postgresql://postgres:$pw@127.0.0.1:$PGPORT/s"
	bad="host=127.0.0.1 port=$PGPORT user=postgres password=$wrong dbname=s"
	if PGPASSWORD=$wrong psql -X -h 127.0.0.1 -d s -c 'select 1' >/dev/null 2>&1; then
		die "a wrong password is accepted: the test would prove nothing"
	fi

	say "every command with the password"
	zdm_run s_apply1 4 apply repo/split_name.plan --db "$ci"
	zdm_run s_status1 0 status repo/split_name.plan --db "$uri"
	zdm_run s_status2 0 status repo/split_name.plan --json --db "$ci"
	zdm_run s_status3 0 status --db "$ci"
	zdm_run s_approve 0 approve repo/split_name.plan switch --by bob --db "$uri"
	zdm_run s_rollback 0 rollback repo/split_name.plan --db "$ci"
	zdm_run s_apply2 0 apply repo/split_name.plan --db "$uri" --approve-all
	(cd "$repo" && zdm_run s_log 0 log)
	zdm_run s_sync1 0 history sync repo/split_name.plan --db "$uri"
	(cd "$repo" && zdm_run s_sync2 0 history sync --db "$ci")
	git -C "$repo" update-ref -d "$REF"
	zdm_run s_sync3 0 history sync repo/split_name.plan --db "$ci"

	say "failing runs with the password: a bad table, a wrong password, a lock"
	sed -e 's/public\.users/public.no_such_table/' -e 's/^migration split_user_name/migration bad_table/' \
		"$repo/split_name.zdm" >"$repo/bad.zdm"
	(cd "$repo" && "$ZDMC" compile -o bad.plan bad.zdm) || die "bad.zdm does not compile"
	zdm_run s_bad 2 apply repo/bad.plan --db "$ci"
	cat "$work/s_bad.out" "$work/s_bad.err" >"$work/bad.all"
	expect_grep "bad table" "$work/bad.all" "no_such_table: table does not exist"
	zdm_run s_wrong 1 apply repo/split_name.plan --db "$bad"
	expect_grep "wrong password" "$work/s_wrong.err" 'password authentication failed'
	zdm_run s_wrong_sync 1 history sync --db "$bad" --history "$work/wrong.git"
	sed 's/lock_timeout = .500ms.,/lock_timeout = '"'"'200ms'"'"', lock_retries = 1,/' \
		"$repo/split_name.zdm" >"$repo/locked.zdm"
	cmp -s "$repo/split_name.zdm" "$repo/locked.zdm" && die "locked.zdm: the sed changed nothing"
	(cd "$repo" && "$ZDMC" compile -o locked.plan locked.zdm) || die "locked.zdm does not compile"
	PGAPPNAME=zdm_test_blocker psql -X -q -d s2 \
		-c "BEGIN; LOCK TABLE public.users IN ACCESS SHARE MODE; SELECT pg_catalog.pg_sleep(60); COMMIT;" \
		>/dev/null 2>&1 &
	bg_pids+=($!)
	at_wait_for "the blocker" 20 sql_true s2 \
		"SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
		  WHERE application_name = 'zdm_test_blocker' AND wait_event = 'PgSleep')"
	zdm_run s_locked 3 apply repo/locked.plan --db "${ci/dbname=s/dbname=s2}" --history "$work/locked.git"
	val s2 "SELECT count(pg_catalog.pg_cancel_backend(pid)) FROM pg_catalog.pg_stat_activity
	  WHERE application_name = 'zdm_test_blocker'" >/dev/null
	both_logs "$work/locked.git" "$work/locked.log"
	head -n 1 "$work/locked.log" | cut -f5 | grep -q '^split_user_name: stopped at expand\.[0-9]*: .*(SQLSTATE 55P03)$' ||
		die "no 'stopped at' commit: $(head -n 1 "$work/locked.log")"

	say "the password is nowhere"
	[ "$(grep -cF "$pw" <<<"$ci")" = 1 ] || die "grep cannot find the password where it is"
	pg_dump -n zdm -d s >"$work/dump.s.sql"
	pg_dump -n zdm -d s2 >"$work/dump.s2.sql"
	grep -q 'split_user_name' "$work/dump.s.sql" || die "the journal dump is empty"
	for f in "$repo" "$work/locked.git"; do
		git -C "$f" log -p --all >"$work/gitlog.$(basename "$f")"
		git -C "$f" cat-file --batch-all-objects --batch >"$work/objects.$(basename "$f")"
		[ -s "$work/objects.$(basename "$f")" ] || die "no objects in $f"
	done
	pg_log >"$work/server.log"
	for f in "$work"/s_*.out "$work"/s_*.err "$work"/dump.*.sql "$work"/gitlog.* \
		"$work"/objects.* "$work/server.log"; do
		if grep -qF -e "$pw" -e "$wrong" "$f"; then
			echo "--- the password is in $f:" >&2
			grep -nF -e "$pw" -e "$wrong" "$f" >"$work/hits" || true
			head -n 5 "$work/hits" >&2
			hits=$((hits + 1))
		fi
	done
	# refs, reflogs, config, packed-refs: the raw files of both repositories
	if grep -rqF -e "$pw" -e "$wrong" "$repo/.git" "$work/locked.git"; then
		grep -rlF -e "$pw" -e "$wrong" "$repo/.git" "$work/locked.git" >&2
		hits=$((hits + 1))
	fi
	[ "$hits" = 0 ] || die "the password was written (above)"
	say "searched $(cat "$work"/s_*.out "$work"/s_*.err | wc -l) lines of zdm output, the journal of 2 databases, $(wc -l <"$work/objects.repo") lines of git objects, $(wc -l <"$work/server.log") of server log"
}

pg_start || die "the server did not start"
say "server on port $PGPORT"
case $case in
full | approve | rollback | crash | concurrent | fail | secret) "case_$case" ;;
*) die "unknown case $case" ;;
esac
say "all passed"
