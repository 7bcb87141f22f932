#!/usr/bin/env bash
#
# golden.sh -- the compiler's output, pinned byte for byte.
#
#   tests/golden/golden.sh [--regen] [WHAT] [ZDMC]
#
# WHAT is one of (default: all of them in turn):
#   plans        every plans/X.zdm (and plans/sequence/X.zdm), compiled from
#                plans/ as `zdmc compile -o - X.zdm`, equals plans/X.plan
#   errors       every tests/golden/errors/X.zdm: `zdmc check X.zdm` run from
#                that directory prints exactly X.err on stderr and exits with
#                the number in X.exit (1 when there is no X.exit)
#   determinism  compiling twice, from another directory and by absolute path,
#                to stdout or to a file, gives identical bytes
#   check        `zdmc compile --check -o PLAN` exits 0 for an up-to-date plan
#                and 1 for an edited one
#   ldd          zdmc links no libpq, libgit2 or librdkafka: the compiler never
#                talks to a database, git or Kafka
# ZDMC defaults to build/release/zdmc.  With --regen (or ZDM_REGEN=1) plans
# and errors rewrite the expected files instead of comparing; review the
# diff before committing it.
set -euo pipefail

me=golden.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The example sources, as names relative to plans/: plans/*.zdm and the
# sequence of plans/sequence/ (a project's db/ folder).
plan_sources()
{
	(cd "$root/plans" && ls -- *.zdm sequence/*.zdm 2>/dev/null) || true
}

golden_plans()
{
	local src base n=0
	for src in $(plan_sources); do
		base=${src%.zdm}
		mkdir -p "$tmp/$(dirname "$base")"
		n=$((n + 1))
		if ! (cd "$root/plans" && "$zdmc" compile -o - "$src") \
			>"$tmp/$base.plan" 2>"$tmp/$base.stderr"; then
			fail "plans/$src does not compile:"
			cat "$tmp/$base.stderr" >&2
			continue
		fi
		if [ "$regen" = 1 ]; then
			cp "$tmp/$base.plan" "$root/plans/$base.plan"
			echo "wrote plans/$base.plan"
		elif ! cmp -s "$tmp/$base.plan" "$root/plans/$base.plan"; then
			fail "plans/$base.plan is not what plans/$src compiles to" \
				"(regenerate with tests/golden/golden.sh --regen plans):"
			diff -u "$root/plans/$base.plan" "$tmp/$base.plan" >&2 || true
		fi
	done
	[ "$n" -gt 0 ] || fail "no plans/*.zdm to compile"
	echo "plans: $n sources"
}

golden_errors()
{
	local dir=$root/tests/golden/errors src base rc want n=0
	for src in $(cd "$dir" && ls -- *.zdm 2>/dev/null); do
		base=${src%.zdm}
		mkdir -p "$tmp/$(dirname "$base")"
		n=$((n + 1))
		rc=0
		(cd "$dir" && "$zdmc" check "$src") >/dev/null \
			2>"$tmp/$base.err" || rc=$?
		if [ "$regen" = 1 ]; then
			cp "$tmp/$base.err" "$dir/$base.err"
			if [ "$rc" = 1 ]; then
				rm -f "$dir/$base.exit"
			else
				echo "$rc" >"$dir/$base.exit"
			fi
			echo "wrote tests/golden/errors/$base.err (exit $rc)"
			continue
		fi
		want=1
		[ -f "$dir/$base.exit" ] && want=$(tr -d ' \n' <"$dir/$base.exit")
		if [ "$rc" != "$want" ]; then
			fail "errors/$src: exit $rc, expected $want"
		fi
		if [ ! -f "$dir/$base.err" ]; then
			fail "errors/$base.err is missing (create it with --regen)"
		elif ! cmp -s "$tmp/$base.err" "$dir/$base.err"; then
			fail "errors/$src: stderr differs from $base.err:"
			diff -u "$dir/$base.err" "$tmp/$base.err" >&2 || true
		fi
	done
	[ "$n" -gt 0 ] || fail "no tests/golden/errors/*.zdm"
	echo "errors: $n sources"
}

golden_determinism()
{
	local src base n=0 other
	other=$tmp/elsewhere
	mkdir -p "$other"
	for src in $(plan_sources); do
		base=${src%.zdm}
		mkdir -p "$tmp/$(dirname "$base")"
		n=$((n + 1))
		if ! (cd "$root/plans" && "$zdmc" compile -o - "$src" \
			>"$tmp/$base.1" &&
			"$zdmc" compile -o - "$src" >"$tmp/$base.2" &&
			"$zdmc" compile -o "$tmp/$base.3" "$src") ||
			! (cd "$other" && "$zdmc" compile -o - \
				"$root/plans/$src" >"$tmp/$base.4" &&
				"$zdmc" compile -o "$tmp/$base.5" \
					"$root/plans/$src") ||
			! (cd / && "$zdmc" compile -o - \
				"${root#/}/plans/$src" >"$tmp/$base.6"); then
			fail "plans/$src does not compile"
			continue
		fi
		for i in 2 3 4 5 6; do
			if ! cmp -s "$tmp/$base.1" "$tmp/$base.$i"; then
				fail "plans/$src: output $i differs from output 1" \
					"(1,2: twice from plans/; 3: -o FILE;" \
					"4,5: absolute path from elsewhere;" \
					"6: relative path from /)"
				diff -u "$tmp/$base.1" "$tmp/$base.$i" >&2 || true
			fi
		done
	done
	[ "$n" -gt 0 ] || fail "no plans/*.zdm to compile"
	echo "determinism: $n sources"
}

golden_check()
{
	local src base rc n=0
	for src in $(plan_sources); do
		base=${src%.zdm}
		mkdir -p "$tmp/$(dirname "$base")"
		n=$((n + 1))
		if ! (cd "$root/plans" && "$zdmc" compile -o "$tmp/$base.plan" \
			"$src"); then
			fail "plans/$src does not compile"
			continue
		fi
		rc=0
		(cd "$root/plans" && "$zdmc" compile --check \
			-o "$tmp/$base.plan" "$src") >/dev/null 2>&1 || rc=$?
		[ "$rc" = 0 ] ||
			fail "compile --check of an up-to-date plan exits $rc, not 0"
		# Edit one description, as a reviewer tidying the file might.
		sed -i '0,/description: /s/description: /description: x/' \
			"$tmp/$base.plan"
		rc=0
		(cd "$root/plans" && "$zdmc" compile --check \
			-o "$tmp/$base.plan" "$src") >/dev/null 2>&1 || rc=$?
		[ "$rc" = 1 ] ||
			fail "compile --check of an edited plan exits $rc, not 1"
		rm -f "$tmp/$base.plan"
		rc=0
		(cd "$root/plans" && "$zdmc" compile --check \
			-o "$tmp/$base.plan" "$src") >/dev/null 2>&1 || rc=$?
		[ "$rc" != 0 ] ||
			fail "compile --check of a missing plan exits 0"
	done
	[ "$n" -gt 0 ] || fail "no plans/*.zdm to compile"
	echo "check: $n sources"
}

golden_ldd()
{
	local libs
	if ! libs=$(ldd "$zdmc" 2>&1); then
		fail "ldd $zdmc failed: $libs"
		return
	fi
	if grep -E 'lib(pq|git2|rdkafka)\.' <<<"$libs" >&2; then
		fail "zdmc links a database, git or Kafka library (above)"
	fi
	echo "ldd: $(wc -l <<<"$libs") libraries, none forbidden"
}

case $what in
plans | errors | determinism | check | ldd) "golden_$what" ;;
all)
	for w in plans errors determinism check ldd; do
		"golden_$w"
	done
	;;
*)
	echo "usage: golden.sh [--regen] [plans|errors|determinism|check|ldd|all] [ZDMC]" >&2
	exit 2
	;;
esac
if [ "$failures" -gt 0 ]; then
	echo "golden $what: $failures failures" >&2
	exit 1
fi
