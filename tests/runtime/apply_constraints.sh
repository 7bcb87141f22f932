#!/usr/bin/env bash
#
# apply_constraints.sh -- the constraint actions when the data or the schema
# is not what they need, with `zdm apply` and `zdm rollback` as an operator
# runs them (the happy paths are apply_e2e_add_* and friends).  One fresh
# copy of the add_foreign_key fixture (users and orders) per case:
#
#   check        rows break a check: verify stops (exit 3) naming them, the
#                constraint stays NOT VALID and refuses a new bad row from
#                either version; fixed, `zdm apply` again finishes, validated.
#   duplicates   two rows share a key: the index build fails, and its
#                diagnose stops verify (exit 3) naming the key and its
#                count, with the build's SQLSTATE 23505; no INVALID index is
#                left; `zdm rollback` gives back the exact schema and data;
#                fixed, `zdm apply` again finishes.
#   build_fails  a duplicate committed while the concurrent build waits for
#                its writer's transaction (so zdm starts with no duplicate):
#                the build fails, and the diagnose, counting only then,
#                stops verify (exit 3) naming the key; no INVALID index is
#                left; fixed, it finishes.
#   build_other  the build fails for another reason (a key too large for a
#                btree entry): the diagnose counts no duplicate, so zdm
#                exits 1 with PostgreSQL's error and SQLSTATE 54000, not as
#                a failed verification; no INVALID index is left; fixed, it
#                finishes.
#   orphans      an order names no user: verify stops (exit 3) naming it, a
#                new orphan is refused from expand on; fixed, it finishes.
#   pk_nulls     a NULL in the key of a primary key: verify stops (exit 3)
#                naming the row, the NOT NULL check refuses a new NULL;
#                fixed, it finishes with the primary key, no zdm_nn_ check.
#   pk_exists    a second primary key: verify stops (exit 3) naming the one
#                the table has.
#   drop         constraints dropped at switch: the new version then writes
#                what the check and the foreign key refused (the unique
#                constraint still binds, until contract); `zdm rollback`
#                stops (exit 1) naming the foreign key and the key that
#                breaks it, with the foreign key back NOT VALID; the rows
#                fixed, `zdm rollback` again gives back the exact schema.
#   inline       add column's inline check and unique on backfilled columns:
#                a row whose using value breaks the check stops verify (exit
#                3) naming it, and the check, NOT VALID, refuses a bad value
#                from either version; then duplicated values make the index
#                build fail and its diagnose stop verify; fixed, it
#                finishes with both constraints and the index's column
#                under the column's name.
#   preflight    a constraint name taken (by add constraint's or by an inline
#                one), an index name taken, a constraint to drop that is not
#                there, an inline references to a table that does not exist:
#                refused before anything runs (exit 2, no journal, the schema
#                untouched).
set -euo pipefail

me=apply_constraints.sh
example=add_foreign_key
# shellcheck source=apply_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apply_lib.sh"
at_init

for p in add_check add_unique add_primary_key drop_constraint; do
	declare "plan_$p=$(at_compile "$root/plans/$p.zdm" "$p")"
done

# case_db NAME SQL: a fresh copy of the fixture, with SQL run in it.
case_db()
{
	fresh_db "$1"
	q -d "$1" -c "$2" >/dev/null
}

# refused DB VERSION SQL SQLSTATE: SQL, written by the old version (on the
# table) or the new one (through the version schema), fails with SQLSTATE.
refused()
{
	local db=$1 version=$2 sql=$3 want=$4 got sp=public
	[ "$version" = new ] && sp=$search_path
	got=$(PGOPTIONS="-c search_path=${sp// /}" psql -X -q -d "$db" \
		-v VERBOSITY=sqlstate -c "$sql" 2>&1 >/dev/null || true)
	[[ $got == *"$want"* ]] ||
		die "$version-version write '$sql' was not refused with $want: '$got'"
}

# stops_at NAME STEP REGEX: the last zdm run stopped at STEP, exit 3, and
# its error (stderr) matches REGEX.
stops_at()
{
	expect_grep "$1: stopped at $2" "$work/$1.err" "^zdm: error: step $2: verification failed"
	expect_grep "$1: the examples" "$work/$1.err" "$3"
}

convalidated()
{
	val "$1" "SELECT convalidated FROM pg_catalog.pg_constraint WHERE conname = '$2'"
}

# ---- check ----------------------------------------------------------------------
say "case check: rows that break users_email_at and users_name_length"
db=c_check
case_db $db "UPDATE public.users SET email = 'nobody.example' WHERE id = 3001;
             UPDATE public.users SET name = '' WHERE id = 3002"
search_path=$(at_plan_get "$plan_add_check" new_version.search_path)
zdm_run check1 3 apply "$plan_add_check" --db "dbname=$db" --approve-all
stops_at check1 verify.2 'examples \(ctid, email\): \([0-9]+,[0-9]+\), nobody\.example$'
expect "check: users_email_at NOT VALID" "$(convalidated $db users_email_at)" f
refused $db old "INSERT INTO users (name, email) VALUES ('x', 'no-at')" 23514
refused $db new "INSERT INTO users (name, email) VALUES ('x', 'no-at')" 23514
q -d $db -c "UPDATE public.users SET email = NULL WHERE id = 3001"
zdm_run check2 3 apply "$plan_add_check" --db "dbname=$db" --approve-all
stops_at check2 verify.5 'examples \(ctid, name\): \([0-9]+,[0-9]+\), $'
q -d $db -c "UPDATE public.users SET name = 'Named' WHERE id = 3002"
zdm_run check3 0 apply "$plan_add_check" --db "dbname=$db" --approve-all
expect_grep "check: finished" "$work/check3.out" '^migration .*: done$'
expect "check: users_email_at validated" "$(convalidated $db users_email_at)" t
expect "check: users_name_length validated" "$(convalidated $db users_name_length)" t

# ---- duplicates -------------------------------------------------------------------
say "case duplicates: two users share an email"
db=c_dups
case_db $db "UPDATE public.users SET email = 'user3002@example.com' WHERE id = 3001"
at_dump $db "$work/dups.before"
zdm_run dups1 3 apply "$plan_add_unique" --db "dbname=$db" --approve-all
stops_at dups1 verify.1 'examples \(email, rows\): user3002@example\.com, 2$'
expect_grep "duplicates: the count" "$work/dups1.err" '^DETAIL: 1 rows \(expected 0\); examples'
expect_grep "duplicates: the build's error" "$work/dups1.err" \
	'^HINT: the step.s statement failed: could not create unique index "users_email_key" \(SQLSTATE 23505\)'
expect_grep "duplicates: counted after the build failed" "$work/dups1.out" \
	'verify\.1 +failed \(SQLSTATE 23505\); counting whether no two rows of public\.users have the same \(email\)'
expect "duplicates: no index" \
	"$(val $db "SELECT pg_catalog.to_regclass('public.users_email_key') IS NULL")" t
expect "duplicates: the journal says stopped" \
	"$(val $db "SELECT state FROM zdm.migrations WHERE migration = 'users_email_unique'")" stopped
zdm_run dups_rollback 0 rollback "$plan_add_unique" --db "dbname=$db"
at_dump $db "$work/dups.after"
same_schema "$work/dups.before" "$work/dups.after" "rollback after duplicates stopped verify"
same_data "$work/dups.before" "$work/dups.after" "rollback after duplicates stopped verify"
q -d $db -c "UPDATE public.users SET email = NULL WHERE id = 3001"
zdm_run dups2 0 apply "$plan_add_unique" --db "dbname=$db" --approve-all
grep -q 'counting whether' "$work/dups2.out" &&
	die "duplicates: the diagnose counted after a build that succeeded"
expect "duplicates: the constraint" \
	"$(val $db "SELECT contype FROM pg_catalog.pg_constraint WHERE conname = 'users_email_key'")" u

# ---- build_fails ----------------------------------------------------------------
say "case build_fails: a duplicate committed while the index is built"
db=c_build
case_db $db "SELECT 1"
# a lock_timeout long enough for the build to wait out the writer below
plan_slow=$(at_variant add_unique_slow \
	"s/approve = \\(switch, contract\\)/approve = none, lock_timeout = '20s'/" \
	"$root/plans/add_unique.zdm")
# The writer's transaction is open before zdm starts, so the count does not
# see its row; the concurrent build waits for it, and it commits only then.
PGAPPNAME=zdm_test_writer psql -X -q -d $db >"$work/writer.log" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO public.users (name, email) VALUES ('Twin', 'user3004@example.com');
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        PERFORM pg_catalog.pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT FROM pg_catalog.pg_stat_activity
                           WHERE query LIKE 'CREATE UNIQUE INDEX CONCURRENTLY%'
                             AND wait_event_type = 'Lock');
        PERFORM pg_catalog.pg_sleep(0.1);
    END LOOP;
END
$$;
COMMIT;
SQL
writer=$!
at_bg_pids+=("$writer")
at_wait_for "the writer's open transaction" 20 sql_true $db \
	"SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
	  WHERE application_name = 'zdm_test_writer' AND backend_xid IS NOT NULL)"
zdm_run build1 3 apply "$plan_slow" --db "dbname=$db"
wait $writer || die "the writer failed: $(cat "$work/writer.log")"
stops_at build1 verify.1 'examples \(email, rows\): user3004@example\.com, 2$'
expect_grep "build_fails: the SQLSTATE" "$work/build1.err" 'SQLSTATE 23505'
expect "build_fails: no INVALID index left" \
	"$(val $db "SELECT pg_catalog.to_regclass('public.users_email_key') IS NULL")" t
q -d $db -c "DELETE FROM public.users WHERE name = 'Twin'"
zdm_run build2 0 apply "$plan_slow" --db "dbname=$db"
expect_grep "build_fails: finished" "$work/build2.out" '^migration .*: done$'

# ---- build_other ----------------------------------------------------------------
say "case build_other: the build fails, and not for a duplicate"
db=c_build_other
# 8000 hex digits of md5s: pglz finds nothing to compress, and the entry is
# far over a btree page's third (2704 bytes), so the build fails (54000)
case_db $db "UPDATE public.users SET email = (SELECT pg_catalog.string_agg(pg_catalog.md5(i::text), '')
                                               FROM pg_catalog.generate_series(1, 250) AS i)
              WHERE id = 3001"
zdm_run other1 1 apply "$plan_add_unique" --db "dbname=$db" --approve-all
expect_grep "build_other: PostgreSQL's error and SQLSTATE" "$work/other1.err" \
	'^zdm: error: step verify\.1: index row size [0-9]+ exceeds btree version 4 maximum 2704 for index "users_email_key" \(SQLSTATE 54000\)$'
expect_grep "build_other: the diagnose counted" "$work/other1.out" \
	'verify\.1 +failed \(SQLSTATE 54000\); counting whether'
grep -q 'verification failed' "$work/other1.err" &&
	die "build_other: a build that failed for no duplicate was reported as a failed verification"
expect "build_other: no INVALID index left" \
	"$(val $db "SELECT pg_catalog.to_regclass('public.users_email_key') IS NULL")" t
expect "build_other: the journal says failed" \
	"$(val $db "SELECT state FROM zdm.migrations WHERE migration = 'users_email_unique'")" failed
q -d $db -c "UPDATE public.users SET email = 'user3001@example.com' WHERE id = 3001"
zdm_run other2 0 apply "$plan_add_unique" --db "dbname=$db" --approve-all
expect_grep "build_other: finished" "$work/other2.out" '^migration .*: done$'

# ---- orphans ---------------------------------------------------------------------
say "case orphans: an order of no user"
db=c_orphans
case_db $db "INSERT INTO public.orders (user_id, amount) VALUES (999999, 1)"
search_path=$(at_plan_get "$plan" new_version.search_path)
zdm_run orphans1 3 apply "$plan" --db "dbname=$db" --approve-all
stops_at orphans1 verify.2 'examples \(ctid, user_id\): \([0-9]+,[0-9]+\), 999999$'
refused $db old "INSERT INTO orders (user_id, amount) VALUES (888888, 1)" 23503
refused $db new "INSERT INTO orders (user_id, amount) VALUES (888888, 1)" 23503
q -d $db -c "DELETE FROM public.orders WHERE user_id = 999999"
zdm_run orphans2 0 apply "$plan" --db "dbname=$db" --approve-all
expect "orphans: validated" "$(convalidated $db orders_user_id_fkey)" t

# ---- pk_nulls -----------------------------------------------------------------------
user_tags="CREATE TABLE public.user_tags (user_id bigint NOT NULL, tag text, note text);
INSERT INTO public.user_tags SELECT g, 't' || g, NULL FROM pg_catalog.generate_series(1, 100) AS g;"
say "case pk_nulls: a NULL in the key"
db=c_pknull
case_db $db "$user_tags INSERT INTO public.user_tags VALUES (500, NULL, 'no tag')"
search_path=$(at_plan_get "$plan_add_primary_key" new_version.search_path)
zdm_run pknull1 3 apply "$plan_add_primary_key" --db "dbname=$db" --approve-all
stops_at pknull1 verify.4 'examples \(ctid, user_id, tag\): \([0-9]+,[0-9]+\), 500, NULL$'
expect "pk_nulls: zdm_nn_tag NOT VALID" "$(convalidated $db zdm_nn_tag)" f
expect "pk_nulls: no check for user_id (NOT NULL already)" \
	"$(val $db "SELECT count(*) FROM pg_catalog.pg_constraint WHERE conname = 'zdm_nn_user_id'")" 0
refused $db new "INSERT INTO user_tags (user_id, tag) VALUES (501, NULL)" 23514
q -d $db -c "UPDATE public.user_tags SET tag = 'found' WHERE user_id = 500"
zdm_run pknull2 0 apply "$plan_add_primary_key" --db "dbname=$db" --approve-all
expect "pk_nulls: the primary key" \
	"$(val $db "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint WHERE conname = 'user_tags_pkey'")" \
	"PRIMARY KEY (user_id, tag)"
expect "pk_nulls: tag NOT NULL" \
	"$(val $db "SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'public.user_tags'::regclass AND attname = 'tag'")" t
expect "pk_nulls: no zdm_nn_ check left" \
	"$(val $db "SELECT count(*) FROM pg_catalog.pg_constraint WHERE conname LIKE 'zdm%'")" 0

# ---- pk_exists -----------------------------------------------------------------------
say "case pk_exists: a table that has a primary key already"
db=c_pkexists
case_db $db "SELECT 1"
mkdir -p "$work/src"
cat >"$work/src/second_pkey.zdm" <<'ZDM'
migration second_pkey with (approve = none);
alter table public.users add constraint users_email_pkey primary key (email);
ZDM
zdm_run pkexists 3 apply "$(at_compile "$work/src/second_pkey.zdm" second_pkey)" --db "dbname=$db"
stops_at pkexists verify.1 'examples \(primary_key\): users_pkey$'

# ---- drop --------------------------------------------------------------------------
constraints="ALTER TABLE public.users ADD CONSTRAINT users_name_length CHECK (length(name) BETWEEN 1 AND 200);
COMMENT ON CONSTRAINT users_name_length ON public.users IS 'a name fits on a label';
ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES public.users (id) ON DELETE CASCADE DEFERRABLE;"
say "case drop: what the new version writes after switch, then rollback"
db=c_drop
case_db $db "$constraints"
at_dump $db "$work/drop.before"
search_path=$(at_plan_get "$plan_drop_constraint" new_version.search_path)
zdm_run drop1 4 apply "$plan_drop_constraint" --db "dbname=$db" --approve switch
expect_grep "drop: at the contract gate" "$work/drop1.out" '^zdm: paused at gate "contract"'
PGOPTIONS="-c search_path=${search_path// /}" q -d $db \
	-c "INSERT INTO users (id, name, email) VALUES (30001, '', 'blank@new.example')" \
	-c "INSERT INTO orders (user_id, amount) VALUES (999999, 1)"
refused $db new "INSERT INTO users (name, email) VALUES ('Twin', 'blank@new.example')" 23505
zdm_run drop2 1 rollback "$plan_drop_constraint" --db "dbname=$db"
expect_grep "drop: the rollback names the constraint" "$work/drop2.err" \
	'cannot put constraint orders_user_id_fkey of public\.orders back as it was'
expect_grep "drop: and the key that breaks it" "$work/drop2.err" 'Key \(user_id\)=\(999999\)'
expect "drop: the foreign key back, NOT VALID" "$(convalidated $db orders_user_id_fkey)" f
refused $db old "INSERT INTO orders (user_id, amount) VALUES (888888, 1)" 23503
q -d $db -c "DELETE FROM public.orders WHERE user_id = 999999" \
	-c "DELETE FROM public.users WHERE id = 30001"
zdm_run drop3 0 rollback "$plan_drop_constraint" --db "dbname=$db"
expect_grep "drop: rolled back" "$work/drop3.out" '^migration .*: rolled back$'
at_dump $db "$work/drop.after"
same_schema "$work/drop.before" "$work/drop.after" "rollback after the drop at switch"
same_data "$work/drop.before" "$work/drop.after" "rollback after the drop at switch"

# ---- inline -------------------------------------------------------------------------
say "case inline: add column's check and unique on data that breaks them"
db=c_inline
case_db $db "UPDATE public.users SET name = '' WHERE id = 3002;
             UPDATE public.users SET email = 'user3002@example.com' WHERE id = 3001"
mkdir -p "$work/src"
cat >"$work/src/inline.zdm" <<'ZDM'
migration inline with (approve = none);
alter table public.users
  add column name_len integer using (length(name)) check (name_len > 0),
  add column contact text using (email) unique;
ZDM
plan_inline=$(at_compile "$work/src/inline.zdm" inline)
search_path=$(at_plan_get "$plan_inline" new_version.search_path)
zdm_run inline1 3 apply "$plan_inline" --db "dbname=$db"
stops_at inline1 'verify\.[0-9]+' \
	'examples \(ctid, zdm_new_name_len, name\): \([0-9]+,[0-9]+\), 0, $'
expect "inline: users_name_len_check NOT VALID" "$(convalidated $db users_name_len_check)" f
refused $db old "INSERT INTO users (name, email) VALUES ('', 'blank@old.example')" 23514
refused $db new "INSERT INTO users (name, email, name_len) VALUES ('x', 'x@new.example', 0)" 23514
q -d $db -c "UPDATE public.users SET name = 'Named' WHERE id = 3002"
zdm_run inline2 3 apply "$plan_inline" --db "dbname=$db"
stops_at inline2 'verify\.[0-9]+' \
	'examples \(zdm_new_contact, rows\): user3002@example\.com, 2$'
expect "inline: no index (the failed build's INVALID one dropped)" \
	"$(val $db "SELECT pg_catalog.to_regclass('public.users_contact_key') IS NULL")" t
q -d $db -c "UPDATE public.users SET email = NULL WHERE id = 3001"
zdm_run inline3 0 apply "$plan_inline" --db "dbname=$db"
expect_grep "inline: finished" "$work/inline3.out" '^migration .*: done$'
expect "inline: users_name_len_check validated" "$(convalidated $db users_name_len_check)" t
expect "inline: the unique constraint" \
	"$(val $db "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint WHERE conname = 'users_contact_key'")" \
	"UNIQUE (contact)"
expect "inline: the index's column" \
	"$(val $db "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = 'public.users_contact_key'::pg_catalog.regclass")" \
	contact

# ---- preflight ----------------------------------------------------------------------
# preflight_case NAME PLAN SQL REGEX: refused before anything runs.
preflight_case()
{
	local name=$1 p=$2 setup=$3 re=$4 db=c_pf_$1
	say "case preflight: $name"
	case_db $db "$setup"
	at_dump $db "$work/$name.before"
	zdm_run "$name" 2 apply "$p" --db "dbname=$db" --approve-all
	expect_grep "$name: stderr" "$work/$name.err" '^zdm: error: preflight found [0-9]+ problems?$'
	expect_grep "$name: the problem" "$work/$name.err" "$re"
	expect "$name: no journal" "$(val $db "SELECT pg_catalog.to_regnamespace('zdm') IS NULL")" t
	at_dump $db "$work/$name.after"
	same_schema "$work/$name.before" "$work/$name.after" "$name"
}
preflight_case name_taken "$plan_add_check" \
	"ALTER TABLE public.users ADD CONSTRAINT users_email_at CHECK (true)" \
	'public\.users: constraint users_email_at already exists, and the change "add check users_email_at" creates it'
preflight_case index_taken "$plan_add_unique" \
	"CREATE INDEX users_email_key ON public.users (name)" \
	'index public\.users_email_key: already exists, and the change "add unique users_email_key \(email\)" creates it'
preflight_case inline_name_taken "$plan_inline" \
	"ALTER TABLE public.users ADD CONSTRAINT users_name_len_check CHECK (true)" \
	'public\.users: constraint users_name_len_check already exists, and the change "add name_len integer check \(name_len > 0\) using \(length\(name\)\)" creates it'
cat >"$work/src/inline_refs.zdm" <<'ZDM'
migration inline_refs with (approve = none);
alter table public.users add column buddy_id bigint references buddies;
ZDM
preflight_case inline_no_table "$(at_compile "$work/src/inline_refs.zdm" inline_refs)" \
	"SELECT 1" \
	'public\.users: the change "add buddy_id bigint references public\.buddies" references table public\.buddies, which does not exist'
preflight_case nothing_to_drop "$plan_drop_constraint" "SELECT 1" \
	'public\.orders: constraint orders_user_id_fkey does not exist, and the change "drop constraint orders_user_id_fkey" drops it'
at_done
