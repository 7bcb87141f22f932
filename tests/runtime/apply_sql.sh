#!/usr/bin/env bash
#
# apply_sql.sh -- sql (...) without reverse: a point of no return.  The
# example's traffic, rollback (each reverse run) and random-kill matrix is
# the generated tests' (apply_e2e_sql_function, ...); this is the case
# they cannot show, on a fresh copy of the users fixture:
#
#   noreverse  plans/sql_function.zdm with the function's reverse left out
#              (so approve = (expand, ...), which the compiler demands):
#              applied with expand approved, to the switch gate; zdm
#              rollback refuses (exit 3), naming the step, and the function
#              is still there; zdm apply goes on to done.
set -euo pipefail

me=apply_sql.sh
example=sql_function
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

say "noreverse: the function's sql has no reverse"
db=sql_noreverse
fresh_db $db
noreverse=$(at_variant "${example}_noreverse" \
	"s/^\\\$fn\\\$ reverse \\(DROP FUNCTION public\\.user_slug\\(text\\)\\);/\\\$fn\\\$;/; s/approve = \\(switch, contract\\)/approve = (expand, switch, contract)/")
grep -q 'point_of_no_return: true' "$noreverse" || die "the variant has no point of no return"
zdm_run noreverse1 4 apply "$noreverse" --db "dbname=$db" --approve expand
expect_grep noreverse1 "$work/noreverse1.out" '^zdm: paused at gate "switch"'
zdm_run noreverse2 3 rollback "$noreverse" --db "dbname=$db"
expect_grep noreverse2 "$work/noreverse2.err" 'point of no return'
expect "noreverse: the function stays" \
	"$(val $db "SELECT pg_catalog.to_regprocedure('public.user_slug(text)') IS NOT NULL")" t
zdm_run noreverse3 0 apply "$noreverse" --db "dbname=$db" --approve-all
check_no_leftovers $db
at_done
