#!/usr/bin/env bash
#
# run.sh -- run a fuzz target for a while.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET]
#
# BUILD_DIR is a build configured with -DZDM_FUZZ=ON and clang.  TARGET is
# compile (the default: fuzz_compile, the whole compiler) or debezium
# (fuzz_debezium, the Debezium message parser).  The seed corpus -- for
# compile every example (plans/*.zdm) and every golden error case
# (tests/golden/errors/*.zdm), for debezium tests/fuzz/debezium/*.json -- is
# copied to a temp dir so the run never writes into the source tree; crash,
# leak and timeout artifacts go to a temp dir too and are listed (and kept)
# when the fuzzer finds something.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS}
which=${3:-compile}
case $which in
compile)
	seeds=("$root"/plans/*.zdm "$root"/tests/golden/errors/*.zdm)
	dict=$root/tests/fuzz/zdm.dict
	max_len=4096
	;;
debezium)
	seeds=("$root"/tests/fuzz/debezium/*.json)
	dict=$root/tests/fuzz/debezium.dict
	max_len=8192
	;;
*)
	echo "usage: run.sh BUILD_DIR SECONDS [compile|debezium]" >&2
	exit 2
	;;
esac
target=$build/tests/fuzz_$which
[ -x "$target" ] || target=$build/fuzz_$which
if [ ! -x "$target" ]; then
	echo "run.sh: no $target (configure with CC=clang-14 -DZDM_FUZZ=ON)" >&2
	exit 2
fi

work=$(mktemp -d)
keep=0
trap '[ "$keep" = 1 ] || rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
for f in "${seeds[@]}"; do
	[ -f "$f" ] || continue
	cp "$f" "$work/corpus/$(basename "$(dirname "$f")")-$(basename "$f")"
done

rc=0
"$target" "$work/corpus" -dict="$dict" \
	-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
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
echo "fuzz $which: no crash in $seconds s"
