#!/usr/bin/env bash
#
# run.sh -- THE test command (CI runs it through .ci/run).
#
# Phases, each counted in the last line, "N passed, M failed":
#   deps     .ci/install-deps (Debian packages; root on a fresh machine)
#   release  build/release with -Werror, then the whole ctest suite
#   asan     build/asan with ASan+UBSan and -Werror, the suite again, but of
#            the tests generated per fixture (ctest label "matrix": sql_,
#            apply_e2e_, apply_rollback_, apply_kill_, apply_cdc_EXAMPLE) only
#            one example's (label "matrix_representative", split_name):
#            every operation's fixtures would otherwise multiply the time of
#            both phases (tests/sql/README.md).  ZDM_ASAN_MATRIX=all runs the
#            whole matrix under ASan too.
#   fuzz     build/fuzz with clang-14: the compiler's fuzz target for
#            ZDM_FUZZ_SECONDS (default 60), the Debezium parser's for half that
#   format   clang-format --dry-run --Werror over our C sources
# A phase failing does not stop the later ones, so one run shows everything.
# Set ZDM_SKIP="fuzz asan" (say) to leave phases out while working.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
jobs=$(nproc 2>/dev/null || echo 2)
# ctest runs one test more than there are cores: most of a test's time is
# spent waiting (on clients, locks, a server starting), not computing; on
# 2 cores the release suite took 891 s with 3 at once against 1005 s with
# 2, with no timeout (2026-12-05).  ZDM_TEST_JOBS overrides.
test_jobs=${ZDM_TEST_JOBS:-$((jobs + 1))}
passed=0
failed=0
failed_names=()

phase()
{
	local name=$1 start=$SECONDS
	shift
	case " ${ZDM_SKIP:-} " in
	*" $name "*)
		echo "=== $name: skipped (ZDM_SKIP)"
		return
		;;
	esac
	echo "=== $name"
	if "$@"; then
		passed=$((passed + 1))
		echo "=== $name: ok ($((SECONDS - start)) s)"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		echo "=== $name: FAILED ($((SECONDS - start)) s)"
	fi
}

# configure DIR [cmake options...] (the log is shown only on failure)
configure()
{
	local dir=$1
	shift
	cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" \
		>"$dir.configure.log" 2>&1 ||
		{ cat "$dir.configure.log"; return 1; }
}

build()
{
	configure "$@" && cmake --build "$1" -j "$jobs"
}

suite()
{
	local dir=$1
	shift
	build "$dir" "$@" &&
		ctest --test-dir "$dir" --output-on-failure -j "$test_jobs"
}

# LeakSanitizer needs ptrace-like access to the process; some sandboxes
# forbid it and LSan then fails every program.  Probe once with a program
# that leaks nothing: if LSan cannot run here, run without leak checking
# (ASan and UBSan still run) and say so.
leak_detection()
{
	local probe
	probe=$(mktemp -d)
	printf 'int main(void) { return 0; }\n' >"$probe/p.c"
	if cc -fsanitize=address -o "$probe/p" "$probe/p.c" 2>/dev/null &&
		ASAN_OPTIONS=detect_leaks=1 "$probe/p" >/dev/null 2>&1; then
		echo 1
	else
		echo "run.sh: LeakSanitizer cannot run here; leak checks off" >&2
		echo 0
	fi
	rm -rf "$probe"
}

asan_suite()
{
	local leaks
	leaks=$(leak_detection)
	local -x ASAN_OPTIONS="detect_leaks=$leaks"
	local -x UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	if [ "${ZDM_ASAN_MATRIX:-}" = all ]; then
		suite build/asan -DZDM_SANITIZE=ON -DZDM_WERROR=ON
		return
	fi
	# (the second ctest runs even when the first failed, for the report)
	build build/asan -DZDM_SANITIZE=ON -DZDM_WERROR=ON || return 1
	local rc=0
	ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE matrix || rc=1
	ctest --test-dir build/asan --output-on-failure -j "$jobs" \
		-L '^matrix_representative$' --no-tests=error || rc=1
	return "$rc"
}

fuzz()
{
	# --fresh: a cached compiler choice would survive a change of CC.
	CC=clang-14 configure build/fuzz --fresh -DZDM_FUZZ=ON \
		-DZDM_WERROR=ON &&
		cmake --build build/fuzz -j "$jobs" --target fuzz_compile \
			--target fuzz_debezium &&
		bash tests/fuzz/run.sh build/fuzz "${ZDM_FUZZ_SECONDS:-60}" compile &&
		bash tests/fuzz/run.sh build/fuzz \
			"$(( (${ZDM_FUZZ_SECONDS:-60} + 1) / 2 ))" debezium
}

format_check()
{
	local cf files
	cf=$(command -v clang-format-14 || command -v clang-format) || {
		echo "run.sh: no clang-format" >&2
		return 1
	}
	# Our C sources; generated scanner/parser output lives in build dirs.
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		mapfile -t files < <(git ls-files --cached --others \
			--exclude-standard -- '*.c' '*.h' | grep -v '^build')
	else
		mapfile -t files < <(find . -path './build*' -prune -o \
			-path ./.git -prune -o -name '*.[ch]' -print)
	fi
	# (a file deleted but not yet committed is still in the index)
	mapfile -t files < <(for f in "${files[@]}"; do [ -f "$f" ] && echo "$f"; done)
	[ "${#files[@]}" -gt 0 ] || return 0
	local out rc=0
	out=$("$cf" --dry-run --Werror "${files[@]}" 2>&1) || rc=$?
	[ "$rc" = 0 ] && return 0
	# The whole report can run to thousands of lines: the files, then a taste.
	echo "not formatted as .clang-format says (fix: $cf -i FILE...):"
	grep -o '^[^: ]*\.[ch]:' <<<"$out" | sort | uniq -c | sed 's/:$//'
	head -n 30 <<<"$out"
	return 1
}

mkdir -p build
phase deps bash .ci/install-deps
phase release suite build/release -DZDM_WERROR=ON
phase asan asan_suite
phase fuzz fuzz
phase format format_check

if [ "$failed" -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
