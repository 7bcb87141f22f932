#!/usr/bin/env bash
#
# review.sh -- what zdmc explain and zdmc diff print, pinned byte for byte.
#
#   tests/golden/review.sh [--regen] [WHAT] [ZDMC]
#
# WHAT is one of (default: all of them in turn):
#   explain  every plans/X.plan: `zdmc explain X.plan`, run from plans/,
#            prints exactly tests/golden/explain/X.md and exits 0
#   diff     every case C in tests/golden/diff/: C.old.zdm (compiled) or
#            C.old.plan (as it is) becomes old/C.plan, C.new.* new/C.plan,
#            and `zdmc diff old/C.plan new/C.plan` prints exactly C.md and
#            exits 0 -- also when the plans are the same ("No changes.")
#   errors   every tests/golden/review-errors/X.plan is refused: `zdmc
#            explain X.plan` and `zdmc diff X.plan X.plan` both exit 2 and
#            print exactly X.err (the plan reader's message) on stderr; a
#            missing plan and bad usage exit 2 too
# ZDMC defaults to build/release/zdmc.  With --regen (or ZDM_REGEN=1) the
# expected files are rewritten instead of compared; review the diff before
# committing it.  Hand-edited plans in tests/golden/diff keep a valid
# checksum: after an edit, recompute it as docs/plan-format.md says
# (tests/golden/README.md has the one-liner).
set -euo pipefail

me=review.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# compare GOT WANT_FILE LABEL: equal bytes, or (with --regen) rewrite
compare()
{
	local got=$1 want=$2 label=$3
	if [ "$regen" = 1 ]; then
		cp "$got" "$want"
		echo "wrote ${want#"$root"/}"
	elif [ ! -f "$want" ]; then
		fail "$label: ${want#"$root"/} is missing (create it with --regen)"
	elif ! cmp -s "$got" "$want"; then
		fail "$label: output differs from ${want#"$root"/}:"
		diff -u "$want" "$got" >&2 || true
	fi
}

review_explain()
{
	local dir=$root/tests/golden/explain plan base rc n=0
	for plan in $(cd "$root/plans" && ls -- *.plan 2>/dev/null); do
		base=${plan%.plan}
		n=$((n + 1))
		rc=0
		(cd "$root/plans" && "$zdmc" explain "$plan") \
			>"$tmp/$base.md" 2>"$tmp/$base.stderr" || rc=$?
		if [ "$rc" != 0 ]; then
			fail "explain plans/$plan exits $rc:"
			cat "$tmp/$base.stderr" >&2
			continue
		fi
		[ -s "$tmp/$base.stderr" ] &&
			fail "explain plans/$plan writes to stderr"
		compare "$tmp/$base.md" "$dir/$base.md" "explain plans/$plan"
	done
	[ "$n" -gt 0 ] || fail "no plans/*.plan to explain"
	echo "explain: $n plans"
}

# side CASE old|new: put the case's plan for that side into $tmp/CASE/SIDE/
diff_side()
{
	local dir=$1 c=$2 side=$3 out=$tmp/$2/$3
	mkdir -p "$out"
	if [ -f "$dir/$c.$side.plan" ]; then
		cp "$dir/$c.$side.plan" "$out/$c.plan"
	elif [ -f "$dir/$c.$side.zdm" ]; then
		cp "$dir/$c.$side.zdm" "$out/$c.zdm"
		(cd "$out" && "$zdmc" compile -o "$c.plan" "$c.zdm") ||
			return 1
	else
		echo "no $c.$side.plan or $c.$side.zdm" >&2
		return 1
	fi
}

review_diff()
{
	local dir=$root/tests/golden/diff c rc n=0
	for c in $(cd "$dir" && ls -- *.old.* 2>/dev/null | sed 's/\.old\..*$//' |
		sort -u); do
		n=$((n + 1))
		if ! diff_side "$dir" "$c" old || ! diff_side "$dir" "$c" new; then
			fail "diff/$c: cannot make its plans"
			continue
		fi
		rc=0
		(cd "$tmp/$c" && "$zdmc" diff "old/$c.plan" "new/$c.plan") \
			>"$tmp/$c.md" 2>"$tmp/$c.stderr" || rc=$?
		if [ "$rc" != 0 ]; then
			fail "diff/$c exits $rc, not 0:"
			cat "$tmp/$c.stderr" >&2
			continue
		fi
		compare "$tmp/$c.md" "$dir/$c.md" "diff/$c"
	done
	[ "$n" -gt 0 ] || fail "no tests/golden/diff/*.old.* cases"
	echo "diff: $n cases"
}

# expect_exit WANT LABEL CMD...: CMD exits WANT
expect_exit()
{
	local want=$1 label=$2 rc=0
	shift 2
	"$@" >/dev/null 2>"$tmp/usage.stderr" || rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$label: exit $rc, expected $want"
		cat "$tmp/usage.stderr" >&2
	fi
}

review_errors()
{
	local dir=$root/tests/golden/review-errors plan base rc n=0
	for plan in $(cd "$dir" && ls -- *.plan 2>/dev/null); do
		base=${plan%.plan}
		n=$((n + 1))
		rc=0
		(cd "$dir" && "$zdmc" explain "$plan") >"$tmp/$base.out" \
			2>"$tmp/$base.err" || rc=$?
		[ "$rc" = 2 ] || fail "explain $plan: exit $rc, expected 2"
		[ -s "$tmp/$base.out" ] &&
			fail "explain $plan: printed a report for a bad plan"
		compare "$tmp/$base.err" "$dir/$base.err" "explain $plan"
		[ "$regen" = 1 ] && continue
		# as either side of a diff, with a good plan on the other
		for args in "$plan ../../../plans/rename_email.plan" \
			"../../../plans/rename_email.plan $plan"; do
			rc=0
			# shellcheck disable=SC2086
			(cd "$dir" && "$zdmc" diff $args) >"$tmp/$base.out" \
				2>"$tmp/$base.derr" || rc=$?
			[ "$rc" = 2 ] ||
				fail "diff $args: exit $rc, expected 2"
			cmp -s "$tmp/$base.derr" "$dir/$base.err" ||
				fail "diff $args: stderr is not $base.err"
		done
	done
	[ "$n" -gt 0 ] || fail "no tests/golden/review-errors/*.plan"
	expect_exit 2 "explain of a missing plan" \
		"$zdmc" explain "$tmp/no-such.plan"
	grep -q 'cannot open' "$tmp/usage.stderr" ||
		fail "explain of a missing plan does not say it cannot open it"
	expect_exit 2 "explain without a plan" "$zdmc" explain
	expect_exit 2 "explain of two plans" "$zdmc" explain a.plan b.plan
	expect_exit 2 "diff of one plan" "$zdmc" diff "$root/plans/split_name.plan"
	expect_exit 2 "diff with an unknown option" "$zdmc" diff --stat \
		"$root/plans/split_name.plan" "$root/plans/split_name.plan"
	expect_exit 0 "diff of a plan read from stdin" sh -c \
		"\"\$0\" diff - \"\$1\" <\"\$1\"" "$zdmc" \
		"$root/plans/split_name.plan"
	echo "errors: $n bad plans, and usage"
}

case $what in
explain | diff | errors) "review_$what" ;;
all)
	for w in explain diff errors; do
		"review_$w"
	done
	;;
*)
	echo "usage: review.sh [--regen] [explain|diff|errors|all] [ZDMC]" >&2
	exit 2
	;;
esac
if [ "$failures" -gt 0 ]; then
	echo "review $what: $failures failures" >&2
	exit 1
fi
