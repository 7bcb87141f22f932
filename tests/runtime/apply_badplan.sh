#!/usr/bin/env bash
#
# apply_badplan.sh -- plans that `zdm apply` must refuse, touching nothing.
#
#   tests/runtime/apply_badplan.sh [EXAMPLE]
#
# EXAMPLE (default split_name) is compiled, then spoiled in one way per case:
#   truncated-mid   cut in the middle of a line (half the bytes)
#   truncated-quote cut inside a quoted string: not valid YAML (with a place)
#   truncated-line  the plan_sha256 line gone (whole lines kept)
#   empty           an empty file
#   version4        zdm_plan: 4 with the checksum recomputed as the format says
#                   (sha256 of every byte before the last line)
#   edited-sql      one character of a step's SQL changed after compile
#   no-such-file    a path that does not exist
#   nested          400 KB of '[' (libyaml spent 95 s of CPU on it before the
#                   depth limit): refused at the 65th level
#   oversized       a plan of 16 MiB + 1 byte: refused for its size
#   path-name       migration: ../x with the checksum recomputed (zdmc refuses
#                   such a name; a hand-edited plan must not bring it in: the
#                   git history could never record the run)
#   no-such-table   a plan compiled from a source on a table the database
#                   does not have (refused by preflight)
# Each: `zdm apply` exits 2 with a message on stderr that says what is wrong
# (the one docs/plan-format.md gives, where it gives one), prints nothing
# that claims a start; schema zdm is not created and pg_dump --schema-only
# of the database is unchanged.  The file-level cases are refused before
# zdm connects: with --db pointing nowhere they still exit 2 with the same
# message.  `zdm rollback`, `zdm approve` and `zdm status` of a bad plan
# exit 2 as well.  Last, `zdm apply|status|rollback ... --help` prints the
# usage and exits 0, and a --sync-wait that is not a positive duration is
# a usage error (exit 2).  The nested and oversized plans are also refused
# by zdm sync, zdmc explain and zdmc diff (each under `timeout 10`, a guard
# only: the assertion is the message).
set -euo pipefail

me=apply_badplan.sh
example=${1:-split_name}
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init
db=bad
fresh_db $db
at_dump $db "$work/before"
bad=$work/bad
mkdir -p "$bad"

# resum FILE: replace the last line with the checksum of the rest.
resum()
{
	local sum
	sum=$(head -n -1 "$1" | sha256sum | cut -d' ' -f1)
	head -n -1 "$1" >"$1.tmp"
	echo "plan_sha256: $sum" >>"$1.tmp"
	mv "$1.tmp" "$1"
}

size=$(wc -c <"$plan")
head -c $((size / 2)) "$plan" >"$bad/truncated-mid.plan"
off=$(grep -bo ": '" "$plan" | head -n 1 | cut -d: -f1)
[ -n "$off" ] || die "the plan has no single-quoted string to cut in"
head -c $((off + 6)) "$plan" >"$bad/truncated-quote.plan"
head -n -1 "$plan" >"$bad/truncated-line.plan"
: >"$bad/empty.plan"
sed 's/^zdm_plan: [0-9]*$/zdm_plan: 4/' "$plan" >"$bad/version4.plan"
resum "$bad/version4.plan"
grep -q '^zdm_plan: 4$' "$bad/version4.plan" || die "version4: no zdm_plan line to change"
want=$(head -n -1 "$bad/version4.plan" | sha256sum | cut -d' ' -f1)
expect "version4: checksum recomputed" "$(tail -n 1 "$bad/version4.plan")" "plan_sha256: $want"
# The first "ADD COLUMN zdm_" becomes "ADD COLUMN xdm_": same length, the
# YAML still valid, only the checksum can tell.
sed '0,/ADD COLUMN zdm_/s//ADD COLUMN xdm_/' "$plan" >"$bad/edited-sql.plan"
cmp -s "$plan" "$bad/edited-sql.plan" && die "edited-sql: nothing edited"
sed 's|^migration: .*$|migration: ../x|' "$plan" >"$bad/path-name.plan"
resum "$bad/path-name.plan"
grep -q '^migration: \.\./x$' "$bad/path-name.plan" || die "path-name: no migration line to change"
head -c 400000 /dev/zero | tr '\0' '[' >"$bad/nested.plan"
{ head -c 16777217 /dev/zero | tr '\0' ' '; } >"$bad/oversized.plan"
mkdir -p "$work/src"
cat >"$work/src/no_such_table.zdm" <<'ZDM'
-- a migration of a table the test database does not have
migration no_such_table
  with (approve = (switch, contract));

alter table public.no_such_users rename column email to email_address;
ZDM
cp "$(at_compile "$work/src/no_such_table.zdm" no_such_table)" "$bad/no-such-table.plan"

# case NAME REGEX [file]: "file" = refused before any connection.
bad_case()
{
	local name=$1 re=$2 level=${3:-} p=$bad/$1.plan
	say "case $name"
	zdm_run "$name" 2 apply "$p" --db "dbname=$db" --approve-all
	expect_grep "$name: stderr" "$work/$name.err" "$re"
	! grep -Eq 'started|resuming|^expand' "$work/$name.out" ||
		die "$name: zdm says it started"
	expect "$name: schema zdm exists" \
		"$(val $db "SELECT pg_catalog.to_regnamespace('zdm') IS NOT NULL")" f
	at_dump $db "$work/$name.after"
	same_schema "$work/before" "$work/$name.after" "$name"
	if [ "$level" = file ]; then
		zdm_run "$name.nodb" 2 apply "$p" --db "host=/nonexistent port=1 connect_timeout=2"
		expect_grep "$name: refused before connecting" "$work/$name.nodb.err" "$re"
		zdm_run "$name.rollback" 2 rollback "$p" --db "dbname=$db"
		zdm_run "$name.approve" 2 approve "$p" switch --db "dbname=$db"
		zdm_run "$name.status" 2 status "$p" --db "dbname=$db"
	fi
}

nested_re='^zdm: .*:1:65: error: the plan nests deeper than 64 levels \(the limit for a plan'
oversized_re='^zdm: .*: error: the plan is larger than 16777216 bytes \(the limit for a plan\)'
bad_case nested "$nested_re" file
bad_case oversized "$oversized_re" file
for name in nested oversized; do
	re=${name}_re
	zdm_run "$name.sync" 2 sync "$bad/$name.plan" --db "dbname=$db"
	expect_grep "$name: zdm sync" "$work/$name.sync.err" "${!re}"
	for cmd in explain diff; do
		rc=0
		if [ $cmd = diff ]; then
			timeout 10 "$ZDMC" diff "$bad/$name.plan" "$plan" \
				>/dev/null 2>"$work/$name.$cmd.err" || rc=$?
		else
			timeout 10 "$ZDMC" explain "$bad/$name.plan" \
				>/dev/null 2>"$work/$name.$cmd.err" || rc=$?
		fi
		expect "$name: zdmc $cmd exit" "$rc" 2
		expect_grep "$name: zdmc $cmd" "$work/$name.$cmd.err" "${!re#^zdm: }"
	done
done
bad_case truncated-mid '^zdm: .*(not valid YAML|truncated)' file
bad_case truncated-quote '^zdm: .*:[0-9]+:[0-9]+: error: not valid YAML: found unexpected end of stream' file
bad_case truncated-line '^zdm: .*error: the plan does not end with a plan_sha256 line; it is truncated' file
bad_case empty '^zdm: .*error: the plan is empty' file
bad_case version4 '^zdm: .*error: unsupported plan format version 4; this zdm reads versions 1 to 3' file
bad_case path-name "^zdm: .*:3:12: error: migration name \"\\.\\./x\" is not one plain path component" file
bad_case edited-sql '^zdm: .*error: plan checksum mismatch: the plan was edited after it was compiled' file
mv "$bad/no-such-table.plan" "$bad/keep.plan"
bad_case no-such-file '^zdm: .*could not open plan: No such file or directory' file
mv "$bad/keep.plan" "$bad/no-such-table.plan"
bad_case no-such-table '^zdm: error: preflight found 1 problem'
cat "$work/no-such-table.out" "$work/no-such-table.err" >"$work/no-such-table.all"
expect_grep "no-such-table: the problem is listed" "$work/no-such-table.all" \
	'public\.no_such_users: table does not exist'
# The task asks for the message on stderr; zdm lists preflight's problems on
# stdout and says only "preflight found 1 problem" on stderr.
expect_grep_later "no-such-table: the problem on stderr" "$work/no-such-table.err" \
	'no_such_users'
# a bad --sync-wait is a usage error (exit 2), before anything is read
zdm_run syncwait 2 apply "$bad/no-such-table.plan" --sync-wait 0s
expect_grep "--sync-wait 0s" "$work/syncwait.err" '^zdm: --sync-wait takes a positive duration such as 5s or 10min, not 0s'
# --help after a command prints the usage and exits 0, touching nothing
for cmd in apply status rollback; do
	zdm_run "help.$cmd" 0 $cmd "$bad/no-such-table.plan" --help
	expect_grep "$cmd --help" "$work/help.$cmd.out" '^usage: zdm apply PLAN'
done
at_done
