# shellcheck shell=bash
#
# assert.sh -- the assertions the shell tests share.  Source it after pg.sh
# (die shows the server log's tail when a cluster runs) and after setting
#
#	me=NAME.sh            # the script, first word of every failure
#
# and, optionally, define assert_where (a function printing what the script
# is testing right now: an example, a case) to name it in failures, and
# assert_on_fail (a function printing what helps after a failure, to
# stderr: a daemon's output, a filtered server log), which die calls
# instead of printing the server log's tail.  It defines:
#
#	say MSG...            # progress, with the seconds since assert_t0
#	die MSG...            # "ME: WHERE: FAILED: MSG", the server log, exit 1
#	q ARGS...             # psql that stops at the first error
#	qv ARGS...            # the same, values only (unaligned, no headers)
#	val DB SQL            # one value, unaligned
#	expect WHAT GOT WANT  # die unless GOT = WANT
#	expect_grep WHAT FILE ERE   # die (showing FILE) unless a line matches
#
# Nothing here starts a server or touches a database by itself.

assert_t0=$SECONDS

say()
{
	printf '[%3ds] %s\n' $((SECONDS - assert_t0)) "$*"
}

die()
{
	local where=
	if declare -F assert_where >/dev/null; then
		where=$(assert_where)
	fi
	echo "${me:-test}: ${where:+$where: }FAILED: $*" >&2
	if declare -F assert_on_fail >/dev/null; then
		assert_on_fail
	elif [ -n "${ZDM_PG_DIR:-}" ] && declare -F pg_log >/dev/null; then
		echo "--- server log (last 30 lines)" >&2
		pg_log | tail -n 30 >&2
	fi
	exit 1
}

q()
{
	psql -X -q -v ON_ERROR_STOP=1 "$@"
}

qv()
{
	q -At "$@"
}

val()
{
	q -d "$1" -At -c "$2"
}

expect()
{
	[ "$2" = "$3" ] || die "$1: expected '$3', got '$2'"
}

expect_grep()
{
	grep -Eq -- "$3" "$2" || {
		echo "--- $2:" >&2
		cat "$2" >&2
		die "$1: no line matching /$3/ in $(basename "$2")"
	}
}
