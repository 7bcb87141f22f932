# shellcheck shell=bash
#
# lib.sh -- what golden.sh and review.sh share: their arguments
# ([--regen] [WHAT] [ZDMC], or ZDM_REGEN=1), the zdmc to run, a temporary
# directory removed at exit, and a failure counter.  Source it after
# setting me (the script's name, for messages); it sets root, regen, what,
# zdmc, tmp, failures and fail().

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
regen=${ZDM_REGEN:-0}
if [ "${1:-}" = --regen ]; then
	regen=1
	shift
fi
what=${1:-all}
zdmc=${2:-$root/build/release/zdmc}
case $zdmc in
/*) ;;
*) zdmc=$PWD/$zdmc ;;
esac
if [ ! -x "$zdmc" ]; then
	echo "$me: no zdmc at $zdmc (build first, or pass its path)" >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail()
{
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
