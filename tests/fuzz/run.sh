#!/usr/bin/env bash
#
# run.sh -- run the compiler's fuzz target for a while.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR is a build configured with -DZDM_FUZZ=ON and clang.  The seed
# corpus is every example (plans/*.zdm) and every golden error case
# (tests/golden/errors/*.zdm), copied to a temp dir so the run never writes
# into the source tree; crash, leak and timeout artifacts go to a temp dir
# too and are listed (and kept) when the fuzzer finds something.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS}
target=$build/tests/fuzz_compile
[ -x "$target" ] || target=$build/fuzz_compile
if [ ! -x "$target" ]; then
	echo "run.sh: no $target (configure with CC=clang-14 -DZDM_FUZZ=ON)" >&2
	exit 2
fi

work=$(mktemp -d)
keep=0
trap '[ "$keep" = 1 ] || rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
for f in "$root"/plans/*.zdm "$root"/tests/golden/errors/*.zdm; do
	[ -f "$f" ] || continue
	cp "$f" "$work/corpus/$(basename "$(dirname "$f")")-$(basename "$f")"
done

rc=0
"$target" "$work/corpus" -dict="$root/tests/fuzz/zdm.dict" \
	-max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" \
	>"$work/log" 2>&1 || rc=$?
if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
	keep=1
	tail -n 60 "$work/log" >&2
	echo "run.sh: the fuzzer found a problem (exit $rc); artifacts:" >&2
	ls -l "$work/artifacts" >&2
	echo "reproduce: $target $work/artifacts/<file>" >&2
	exit 1
fi
grep -E '^stat::number_of_executed_units|^Done' "$work/log" || tail -n 3 "$work/log"
echo "fuzz: no crash in $seconds s"
