#!/usr/bin/env bash
#
# demo.sh -- build zdm and show what each example migration's plan does.
#
#   bash plans/demo.sh
#
# Installs the packages it needs (.ci/install-deps, as root on a fresh
# machine), builds build/release, then for every plans/*.zdm compiles it and
# prints the plan phase by phase: each step's id, what it does, and whether
# it can be undone.  Nothing here touches a database: applying a plan is the
# job of the zdm runtime, which is coming.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash .ci/install-deps
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target zdmc \
	>/dev/null
zdmc=$root/build/release/zdmc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Print a plan's steps from its YAML, one line each: the plan writer puts one
# key per line, so the lines "phase:", "id:", "kind:", "description:",
# "compensation:" and "point_of_no_return:" are all this needs.
summarise()
{
	awk '
	function value(line) {
		sub(/^[^:]*: */, "", line)
		if (line ~ /^".*"$/ || line ~ /^'\''.*'\''$/)
			line = substr(line, 2, length(line) - 2)
		return line
	}
	function flush() {
		if (id == "")
			return
		if (kind == "gate")
			undo = "gate"
		else if (pnr)
			undo = "NO UNDO"
		else if (comp)
			undo = "undo"
		else
			undo = "-"
		printf "    %-12s %-9s %-8s %s\n", id, kind, undo, desc
		id = ""; kind = ""; desc = ""; comp = 0; pnr = 0; nsteps++
	}
	function phase_end() {
		flush()
		if (phase != "" && nsteps == 0)
			printf "    (no steps)\n"
	}
	/^ *(- )?phase: / {
		phase_end()
		phase = value($0); nsteps = 0
		printf "  %s\n", phase
		next
	}
	/^ *(- )?id: / { flush(); id = value($0); next }
	id != "" && /^ *kind: / { kind = value($0); next }
	id != "" && /^ *description: / { desc = value($0); next }
	id != "" && /^ *compensation: / { comp = (value($0) != "null"); next }
	id != "" && /^ *point_of_no_return: true/ { pnr = 1; next }
	/^[a-z_]+:/ { phase_end(); phase = "" }
	END { phase_end() }
	' "$1"
}

echo "Each example below: its source, then its plan step by step.  The column"
echo "after the kind says how a step is undone: undo (it has a compensation),"
echo "- (nothing to undo), NO UNDO (a point of no return) or gate (waits for"
echo "approval)."
n=0
for src in plans/*.zdm; do
	[ -f "$src" ] || continue
	n=$((n + 1))
	name=$(basename "$src" .zdm)
	echo
	echo "== $src"
	sed 's/^/  | /' "$src"
	(cd plans && "$zdmc" compile -o "$out/$name.plan" "$name.zdm")
	echo "  compiles to a plan of $(wc -l <"$out/$name.plan") lines" \
		"(as committed in plans/$name.plan):"
	summarise "$out/$name.plan"
done
if [ "$n" = 0 ]; then
	echo "demo.sh: no plans/*.zdm yet" >&2
	exit 1
fi
echo
echo "$n example plans compiled.  Run the whole test suite with: bash tests/run.sh"
