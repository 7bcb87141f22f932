#!/usr/bin/env bash
#
# apply_split.sh -- split table (plans/user_profiles.zdm: bio and
# avatar_url of users into user_profiles, key id) against what the
# database already holds, and what each version's writes do to the other's
# shape.  The traffic, rollback and random-kill matrix is the generated
# tests' (apply_e2e_user_profiles, ...).  Each case on a fresh copy of the
# fixture:
#
#   taken      a table user_profiles exists already: preflight refuses,
#              naming it, and nothing is created.
#   notunique  the same split keyed by email, which is not unique in users:
#              preflight refuses.
#   notnull    bio made NOT NULL without a default: preflight refuses (the
#              new version's inserts into users could not fill it).
#   writes     at the switch gate: an old-version delete removes the
#              profile (the foreign key), an old-version update of bio
#              reaches the profile, old-version NULLs remove it; a
#              new-version profile delete leaves NULLs in users, a
#              new-version profile insert and update reach users, and an
#              insert of a profile that exists, or of one whose user does
#              not, fails as the table would (23505, 23503).  Then
#              rollback: users holds every value written, user_profiles
#              and zdm's triggers are gone; apply again reaches done, and
#              the profiles match what users held.
set -euo pipefail

me=apply_split.sh
example=user_profiles
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

say "taken: user_profiles exists already"
db=sp_taken
fresh_db $db
q -d $db -c "CREATE TABLE public.user_profiles (id bigint)"
at_dump $db "$work/taken.before"
zdm_run taken 2 apply "$plan" --db "dbname=$db" --approve-all
expect_grep taken "$work/taken.err" \
	'^zdm: preflight: public\.user_profiles: already exists \(a relation or a type of that name\), and .* creates it$'
at_dump $db "$work/taken.after"
same_schema "$work/taken.before" "$work/taken.after" "refused by preflight"

say "notunique: keyed by a column that is not unique"
db=sp_notunique
fresh_db $db
mkdir -p "$work/src"
sed 's/key (id);/key (email);/' "$root/plans/user_profiles.zdm" >"$work/src/user_profiles_email.zdm"
byemail=$(at_compile "$work/src/user_profiles_email.zdm" user_profiles_email)
zdm_run notunique 2 apply "$byemail" --db "dbname=$db" --approve-all
expect_grep notunique "$work/notunique.err" 'public\.users.*email'

say "notnull: a moved column NOT NULL without a default"
db=sp_notnull
fresh_db $db
q -d $db -c "UPDATE public.users SET bio = '' WHERE bio IS NULL" \
	-c "ALTER TABLE public.users ALTER COLUMN bio SET NOT NULL"
zdm_run notnull 2 apply "$plan" --db "dbname=$db" --approve-all
expect_grep notnull "$work/notnull.err" 'public\.users\.bio: is NOT NULL without a default'

say "writes: each version's writes reach the other's shape, and rollback keeps them"
db=sp_writes
fresh_db $db
at_dump $db "$work/writes.before"
zdm_run writes1 4 apply "$plan" --db "dbname=$db"
search_path=$(at_plan_get "$plan" new_version.search_path)
new() { PGOPTIONS="-c search_path=${search_path// /}" q -d $db "$@"; }
newval() { PGOPTIONS="-c search_path=${search_path// /}" val $db "$1"; }
# old version
q -d $db -c "DELETE FROM public.users WHERE id = 3001" \
	-c "UPDATE public.users SET bio = 'old wrote this' WHERE id = 3002" \
	-c "UPDATE public.users SET bio = NULL, avatar_url = NULL WHERE id = 3004"
expect "writes: old delete removes the profile" \
	"$(val $db "SELECT count(*) FROM public.user_profiles WHERE id = 3001")" 0
expect "writes: old update reaches the profile" \
	"$(val $db "SELECT bio FROM public.user_profiles WHERE id = 3002")" "old wrote this"
expect "writes: old NULLs remove the profile row" \
	"$(val $db "SELECT count(*) FROM public.user_profiles WHERE id = 3004")" 0
# new version (3003 has no bio and no avatar: id % 15 = 0 is NULL in both)
expect "writes: user 3015 has no profile" \
	"$(val $db "SELECT count(*) FROM public.user_profiles WHERE id = 3015")" 0
new -c "DELETE FROM user_profiles WHERE id = 3005" \
	-c "INSERT INTO user_profiles (id, bio) VALUES (3015, 'new wrote this')" \
	-c "UPDATE user_profiles SET avatar_url = 'https://new.example/3007' WHERE id = 3007"
expect "writes: new delete leaves NULLs in users" \
	"$(val $db "SELECT bio IS NULL AND avatar_url IS NULL FROM public.users WHERE id = 3005")" t
expect "writes: new insert reaches users" \
	"$(val $db "SELECT bio FROM public.users WHERE id = 3015")" "new wrote this"
expect "writes: new update reaches users" \
	"$(val $db "SELECT avatar_url FROM public.users WHERE id = 3007")" "https://new.example/3007"
if new -c "INSERT INTO user_profiles (id, bio) VALUES (3002, 'twice')" 2>"$work/dup.err"; then
	die "writes: a second profile for user 3002 was accepted"
fi
expect_grep "writes: duplicate profile" "$work/dup.err" 'duplicate key value violates unique constraint "user_profiles_pkey"'
if new -c "INSERT INTO user_profiles (id, bio) VALUES (999999, 'nobody')" 2>"$work/fk.err"; then
	die "writes: a profile for no user was accepted"
fi
expect_grep "writes: profile for no user" "$work/fk.err" 'violates foreign key constraint'
expect "writes: the new version's users has no bio" \
	"$(newval "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = 'users'::pg_catalog.regclass AND attname = 'bio'")" 0
zdm_run writes2 0 rollback "$plan" --db "dbname=$db"
expect "writes: user_profiles is gone" \
	"$(val $db "SELECT pg_catalog.to_regclass('public.user_profiles') IS NULL")" t
expect "writes: users keeps every value written" \
	"$(val $db "SELECT string_agg(id || '=' || coalesce(bio, '-') || '/' || coalesce(avatar_url, '-'), ' ' ORDER BY id)
	              FROM public.users WHERE id IN (3001, 3002, 3004, 3005, 3007, 3015)")" \
	"3002=old wrote this/https://img.example/3002.png 3004=-/- 3005=-/- 3007=bio of 3007/https://new.example/3007 3015=new wrote this/-"
zdm_run writes3 0 apply "$plan" --db "dbname=$db" --approve-all
expect "writes: after done, every profile of a user with a value" \
	"$(val $db "SELECT count(*) FROM public.user_profiles")" \
	"$(val $db "SELECT count(*) FROM fixture_snapshot.users WHERE (bio IS NOT NULL OR avatar_url IS NOT NULL) AND id NOT IN (3001, 3004, 3005) OR id = 3015")"
check_no_leftovers $db
at_done
