#!/usr/bin/env bash
#
# preflight_test.sh -- runtime/preflight.c against a real PostgreSQL.
#
#   tests/runtime/preflight_test.sh [CASE...]
#
# On a throwaway cluster (tests/lib/pg.sh), a template database holds small
# copies of the examples' tables (public.users, public.orders).  Each case
# gets a fresh copy, changes it with a few statements so that exactly one
# thing is wrong (or nothing is), runs zdm_preflight_driver with a compiled
# plan and compares:
#   - every line of the report except the info lines ("zdm: preflight:
#     <object>: <problem>" and "HINT: ..."), exactly and in order;
#   - the exit status (0 without problems, else 1) and, on 1, the summary on
#     stderr ("zdm: error: preflight found N problems");
#   - a pg_dump of the whole database (schema and data) before and after:
#     the preflight changes nothing.
# Some cases also require given info lines.  Every case runs, and the
# failures are listed at the end.  With CASE arguments only those run.
#
# Plans: plans/split_name.zdm (split users.name, rename users.email),
# orders_amount.zdm (retype orders.amount), rename_email.zdm (a rename
# only), users_and_orders.zdm (two tables), and some written here: an
# irreversible split, a retype on quoted names, using expressions that do
# not work (a type error, a set-returning function, an aggregate), merges
# of users.name and email whose reverse using does or does not work on the
# new shape (or names the schema, and is not analysed), a plan that requires
# a newer server (split_name's, edited and resealed), add column's examples
# and defaults that do not work (bad_default),
# and cdc plans: a split with a native source keyed by id, one with a
# debezium source keyed by email, and type changes whose columns have no
# equality (json); drop column (users.email, users.id, orders.amount with
# and without reverse using, orders.note with cdc), and set / drop not null
# on users.  zdmc writes every plan in format version 3, its changes
# as facts; facts.plan is a version 3 plan written here by hand, with the
# facts no compiler writes yet (constraints, indexes, references, a table's
# new name).
#
# The cdc cases that need other server settings (wal_level = replica, no
# free replication slot or walsender) run last, after the server has been
# restarted with those settings.
#
# The programs come from the environment (ctest sets them): ZDMC and
# ZDM_PREFLIGHT_DRIVER; by default from build/release.
#
# The setup SQL is single-quoted on purpose: its $$dollar quotes$$ and $1
# are SQL's, not the shell's.
# shellcheck disable=SC2016
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ZDMC=${ZDMC:-$root/build/release/zdmc}
ZDM_PREFLIGHT_DRIVER=${ZDM_PREFLIGHT_DRIVER:-$root/build/release/tests/zdm_preflight_driver}

for f in "$ZDMC" "$ZDM_PREFLIGHT_DRIVER"; do
	[ -x "$f" ] || { echo "preflight_test.sh: $f is not built" >&2; exit 2; }
done

# shellcheck source=../lib/pg.sh
. "$root/tests/lib/pg.sh"
# shellcheck source=../lib/assert.sh
. "$root/tests/lib/assert.sh"
me=preflight_test.sh
work=$(mktemp -d)
zdm_on_exit "rm -rf '$work'"
only=("$@")
failed=()
ran=0

# ---- plans ---------------------------------------------------------------------
compile()
{
	local name=$1 dir=$2
	(cd "$dir" && "$ZDMC" compile -o "$work/$name.plan" "$name.zdm") ||
		die "$name.zdm does not compile"
}

for p in split_name orders_amount rename_email users_and_orders \
	user_defaults rename_table two_schemas add_created_at add_user_columns; do
	compile "$p" "$root/plans"
done
mkdir "$work/src"
cat >"$work/src/split_irreversible.zdm" <<'ZDM'
migration split_irreversible;
alter table users
  split column name into
    first_name text using (split_part(name, ' ', 1)),
    last_name  citext using (split_part(name, ' ', 2))
  irreversible;
ZDM
cat >"$work/src/quoted.zdm" <<'ZDM'
migration quoted;
alter table "Sales"."Order"
  alter column "Amount" type numeric(12,2)
    using ("Amount" / 100.0)
    reverse using (("Amount" * 100)::integer);
ZDM
cat >"$work/src/bad_expression.zdm" <<'ZDM'
migration bad_expression;
alter table users
  split column name into
    first_name text using (name + 1),
    last_name  text using (no_such_function(name))
  reverse using (concat_ws(' ', first_name, last_name));
alter table orders alter column amount type numeric(12,2) using (amount / 100.0)
  reverse using ((amount * 100)::integer);
ZDM
# add column: a default is analysed as the value of the existing rows, in
# the column's type, catalog only (a constant) or backfilled (computed)
cat >"$work/src/bad_default.zdm" <<'ZDM'
migration bad_default;
alter table users
  add column visits integer not null default 'many',
  add column token text default no_such_function();
ZDM
# reverse using is analysed against the new shape: the merged columns gone,
# the new one a typed NULL, a renamed column under its new name
cat >"$work/src/bad_reverse.zdm" <<'ZDM'
migration bad_reverse;
alter table users
  merge columns name, email into contact text
    using (concat_ws(' <', name, email) || '>')
    reverse using (name = spilt_part(contact, ' <', 1),
                   email = users.contact + 1),
  rename column updated_at to changed_at;
alter table orders alter column amount type numeric(12,2) using (amount / 100.0)
  reverse using ((amount * 100)::integer);
ZDM
cat >"$work/src/good_reverse.zdm" <<'ZDM'
migration good_reverse;
alter table users
  merge columns name, email into contact text
    using (concat_ws(' <', name, email) || '>')
    reverse using (name = split_part(contact, ' <', 1) || to_char(changed_at, ''),
                   email = nullif(rtrim(split_part(users.contact, ' <', 2), '>'), '')),
  rename column updated_at to changed_at;
ZDM
# "public.users.x" names the table itself, which the new shape's subquery
# cannot stand for: not analysed, said as info
cat >"$work/src/qualified_reverse.zdm" <<'ZDM'
migration qualified_reverse;
alter table users
  merge columns name, email into contact text
    using (concat_ws(' <', name, email) || '>')
    reverse using (name = split_part(public.users.contact, ' <', 1),
                   email = nullif(rtrim(split_part(contact, ' <', 2), '>'), ''));
ZDM
# set-returning and aggregate functions are legal in a SELECT list but not
# in the backfill's UPDATE ... SET or the sync trigger's assignment
cat >"$work/src/bad_srf.zdm" <<'ZDM'
migration bad_srf;
alter table orders
  alter column amount type numeric(12,2)
    using (generate_series(amount, amount + 1) / 100.0)
    reverse using ((amount * 100)::integer);
ZDM
cat >"$work/src/bad_aggregate.zdm" <<'ZDM'
migration bad_aggregate;
alter table orders
  alter column amount type numeric(12,2)
    using (sum(amount) / 100.0)
    reverse using ((amount * 100)::integer);
ZDM
# sync = cdc: the plan has its cdc section (zdmc writes zdm_plan: 3 for
# every plan)
cat >"$work/src/cdc_users.zdm" <<'ZDM'
migration cdc_users
  with (sync = cdc, key = (id));
alter table public.users
  split column name into
    first_name text not null using (split_part(name, ' ', 1)),
    last_name  text using (nullif(substr(name, length(split_part(name, ' ', 1)) + 2), ''))
  reverse using (concat_ws(' ', first_name, last_name));
ZDM
cat >"$work/src/cdc_email_key.zdm" <<'ZDM'
migration cdc_email_key
  with (sync = cdc, cdc_source = debezium, key = (email));
alter table public.users
  split column name into
    first_name text not null using (split_part(name, ' ', 1)),
    last_name  text using (nullif(substr(name, length(split_part(name, ' ', 1)) + 2), ''))
  reverse using (concat_ws(' ', first_name, last_name));
ZDM
# prefs is json now (no equality); email becomes json
cat >"$work/src/cdc_json.zdm" <<'ZDM'
migration cdc_json
  with (sync = cdc, cdc_source = debezium, key = (id));
alter table public.users
  alter column prefs type jsonb using (prefs::jsonb) reverse using (prefs::json);
alter table public.users
  alter column email type json using (to_json(email)) reverse using (email #>> '{}');
ZDM
# drop column, set not null, drop not null: their facts (drops,
# not_null_set, not_null_dropped) against the catalog
cat >"$work/src/drop_email.zdm" <<'ZDM'
migration drop_email;
alter table users drop column email;
ZDM
cat >"$work/src/drop_id.zdm" <<'ZDM'
migration drop_id;
alter table users drop column id;
ZDM
cat >"$work/src/drop_amount.zdm" <<'ZDM'
migration drop_amount;
alter table orders drop column amount;
ZDM
cat >"$work/src/drop_amount_reverse.zdm" <<'ZDM'
migration drop_amount_reverse;
alter table orders drop column amount reverse using (0);
ZDM
cat >"$work/src/drop_note_cdc.zdm" <<'ZDM'
migration drop_note_cdc
  with (sync = cdc, cdc_source = debezium, key = (id));
alter table orders drop column note reverse using ('none');
ZDM
cat >"$work/src/not_null.zdm" <<'ZDM'
migration not_null;
alter table users
  alter column email set not null,
  alter column name drop not null;
ZDM
cat >"$work/src/not_null_key.zdm" <<'ZDM'
migration not_null_key;
alter table users alter column id drop not null;
ZDM
for p in drop_email drop_id drop_amount drop_amount_reverse drop_note_cdc \
	not_null not_null_key; do
	compile "$p" "$work/src"
done
for p in cdc_users cdc_email_key cdc_json; do
	compile "$p" "$work/src"
	[ "$(head -1 "$work/$p.plan")" = 'zdm_plan: 3' ] ||
		die "$p.plan is not a version 3 plan"
done
compile bad_srf "$work/src"
compile bad_aggregate "$work/src"
compile split_irreversible "$work/src"
compile quoted "$work/src"
compile bad_expression "$work/src"
compile bad_default "$work/src"
compile bad_reverse "$work/src"
compile good_reverse "$work/src"
compile qualified_reverse "$work/src"
# A plan for a server from the future: the checksum is recomputed as
# docs/plan-format.md says, so only the version differs.
sed '$d' "$work/split_name.plan" |
	sed 's/^  server_version_num: 150000$/  server_version_num: 990000/' \
		>"$work/future.plan"
grep -qx '  server_version_num: 990000' "$work/future.plan" ||
	die "could not edit the plan's server_version_num"
echo "plan_sha256: $(sha256sum "$work/future.plan" | cut -d' ' -f1)" \
	>>"$work/future.plan"

# Format version 3 (docs/plan-format.md): changes described by their facts.
# No compiler writes the object facts yet, so this plan is written by hand
# and sealed as the format says; its first change's name is one zdm does
# not know, which the facts make no matter.  It has no steps: the preflight
# reads only the changes.
cat >"$work/facts.plan" <<'PLAN'
zdm_plan: 3
compiler: hand
migration: facts
source:
  file: facts.zdm
  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
requires:
  server_version_num: 150000
options:
  batch_size: 1000
  batch_pause: 0ms
  lock_timeout: 500ms
  lock_retries: 3
  approve: []
  sync: trigger
  verify_sample: 100
new_version:
  schema: public_facts
  search_path: public_facts, public
tables:
- table: public.orders
  changes:
  - change: tidy_orders
    at: facts.zdm:3:3
    summary: tidy orders
    reads: [note]
    creates:
    - column: status
      type: text
      not_null: false
      using: null
    - column: user_id
      type: bigint
      not_null: false
      using: null
    renames:
    - column: note
      to: remark
    constraints_created: [orders_amount_positive]
    constraints_dropped: [orders_old_check]
    constraint_renames:
    - constraint: orders_note_check
      to: orders_note_nonempty
    indexes_created: [public.orders_user_id_idx]
    references:
    - table: public.users
      columns: [id]
    - table: public.users
      columns: [email]
    - table: public.customers
      columns: []
    table_renamed_to: purchases
  - change: rename_column
    at: facts.zdm:9:3
    summary: rename user_id to customer_id
    reads: [user_id]
    renames:
    - column: user_id
      to: customer_id
phases: []
PLAN
echo "plan_sha256: $(sha256sum "$work/facts.plan" | cut -d' ' -f1)" \
	>>"$work/facts.plan"

# ---- the server and the template ------------------------------------------------
pg_start
echo "server on port $PGPORT"
q -c 'CREATE ROLE alice LOGIN' -c 'CREATE ROLE app' \
	-c 'CREATE ROLE replicator LOGIN REPLICATION'
q -c 'CREATE DATABASE pf_template'
q -d pf_template <<'SQL'
CREATE TABLE public.users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.users (name, email)
SELECT 'First' || g || ' Last' || g, 'user' || g || '@example.com'
  FROM pg_catalog.generate_series(1, 100) AS g;
CREATE TABLE public.orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL,
    amount integer NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.orders (user_id, amount)
SELECT g, g * 100 FROM pg_catalog.generate_series(1, 100) AS g;
ANALYZE;
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN RETURN NEW; END$$;
SQL

# ---- one case ----------------------------------------------------------------------
#
#   check NAME PLAN 'SETUP SQL' [CONNINFO-EXTRA] <<'EOF'
#   the report without its info lines, exactly
#   EOF
#
# INFO='line|line' (one info line each) must also be in the report.
# HOLD=TABLE: another session holds an ACCESS EXCLUSIVE lock on TABLE while
# the preflight runs.
# CLEANUP='SQL': run in the case's database after the preflight, before it
# is dropped (a logical slot keeps DROP DATABASE from working; slots and
# replication origins outlive the database).
check()
{
	local name=$1 plan=$2 setup=$3 extra=${4:-}
	local db=pf_$name dir=$work/$name want got problems rc=0 msg=()
	want=$(cat)
	if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then
		INFO=
		return 0
	fi
	ran=$((ran + 1))
	mkdir "$dir"
	q -c "CREATE DATABASE $db TEMPLATE pf_template"
	q -d "$db" -c "$setup" >/dev/null
	dump "$db" >"$dir/before.sql"
	[ -z "${HOLD:-}" ] || hold_lock "$db" "$HOLD"
	"$ZDM_PREFLIGHT_DRIVER" "$work/$plan.plan" "dbname=$db $extra" \
		>"$dir/report" 2>"$dir/stderr" || rc=$?
	[ -z "${HOLD:-}" ] || release_lock "$db"
	dump "$db" >"$dir/after.sql"
	[ -z "${CLEANUP:-}" ] || q -d "$db" -c "$CLEANUP" >/dev/null

	got=$(grep -v '^zdm: preflight: info: ' "$dir/report" || true)
	problems=$(grep -c '^zdm: preflight: ' <<<"$got" || true)
	[ "$got" = "$want" ] ||
		msg+=("report differs (want, got):
$(diff <(echo "$want") <(echo "$got") | sed 's/^/    /' || true)")
	if [ "$problems" -eq 0 ]; then
		[ "$rc" -eq 0 ] || msg+=("exit status $rc, want 0")
		[ ! -s "$dir/stderr" ] ||
			msg+=("stderr: $(cat "$dir/stderr")")
	else
		[ "$rc" -eq 1 ] || msg+=("exit status $rc, want 1")
		local s=s
		[ "$problems" -eq 1 ] && s=
		[ "$(cat "$dir/stderr")" = "zdm: error: preflight found $problems problem$s" ] ||
			msg+=("stderr: $(cat "$dir/stderr")")
	fi
	if [ -n "${INFO:-}" ]; then
		local line
		while IFS= read -r line; do
			grep -Fqx "zdm: preflight: info: $line" "$dir/report" ||
				msg+=("no info line \"$line\"")
		done < <(tr '|' '\n' <<<"$INFO")
	fi
	cmp -s "$dir/before.sql" "$dir/after.sql" ||
		msg+=("the database changed:
$(diff "$dir/before.sql" "$dir/after.sql" | head -20 | sed 's/^/    /' || true)")
	INFO=

	if [ ${#msg[@]} -eq 0 ]; then
		echo "ok   $name"
	else
		echo "FAIL $name"
		printf '  %s\n' "${msg[@]}"
		echo "  the report:"
		sed 's/^/    /' "$dir/report"
		failed+=("$name")
	fi
	q -c "DROP DATABASE $db"
}

INFO=

# The whole database, schema and data.  Newer pg_dumps open and close the
# script with \restrict and a random key: that pair is left out.
dump()
{
	pg_dump --no-sync -d "$1" | grep -Ev '^\\(un)?restrict '
}

# hold_lock DB TABLE: a session that holds an ACCESS EXCLUSIVE lock on TABLE
# until release_lock DB cancels its sleep (its transaction then rolls back).
hold_lock()
{
	local i
	psql -X -q -v ON_ERROR_STOP=1 -d "$1" \
		-c 'SET application_name = pf_locker' -c 'BEGIN' \
		-c "LOCK TABLE $2 IN ACCESS EXCLUSIVE MODE" \
		-c 'SELECT pg_catalog.pg_sleep(60)' >/dev/null 2>&1 &
	locker=$!
	for ((i = 0; i < 100; i++)); do
		[ "$(q -d "$1" -Atc "SELECT count(*) FROM pg_catalog.pg_locks
		     WHERE relation = '$2'::pg_catalog.regclass
		       AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && return
		sleep 0.1
	done
	die "the lock on $2 was never granted"
}

release_lock()
{
	q -d "$1" -Atc "SELECT pg_catalog.pg_cancel_backend(pid)
	                  FROM pg_catalog.pg_stat_activity
	                 WHERE application_name = 'pf_locker'" >/dev/null
	wait "$locker" || true
}

# ---- tables that pass --------------------------------------------------------------
INFO='public.users: about 100 rows, 64 kB with indexes and TOAST|public.users: key users_pkey (id), the primary key'
check clean_split split_name 'SELECT 1' <<'EOF'
EOF
INFO='public.orders.amount: integer NOT NULL, becomes numeric(12,2) NOT NULL|public.orders: key orders_pkey (id), the primary key'
check clean_retype orders_amount 'SELECT 1' <<'EOF'
EOF
check clean_two_tables users_and_orders 'SELECT 1' <<'EOF'
EOF
# a rename needs no key: nothing is batched, no row is named
check clean_rename_without_key rename_email \
	'ALTER TABLE public.users DROP CONSTRAINT users_pkey' <<'EOF'
EOF
# what a rename keeps needs no carrying over
check clean_rename_keeps_everything rename_email '
CREATE UNIQUE INDEX users_email_idx ON public.users (email);
ALTER TABLE public.users ALTER COLUMN email SET DEFAULT $$x$$;
CREATE VIEW public.user_emails AS SELECT email FROM public.users;
GRANT SELECT (email) ON public.users TO app;' <<'EOF'
EOF
# a disabled trigger does not fire during the migration
check clean_disabled_trigger split_name '
CREATE TRIGGER users_off AFTER INSERT ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.touch();
ALTER TABLE public.users DISABLE TRIGGER users_off;' <<'EOF'
EOF
# a unique index over NOT NULL columns the migration keeps is a key
INFO='public.users: key users_email_idx (email), a unique index'
check clean_unique_index_key split_name '
ALTER TABLE public.users DROP CONSTRAINT users_pkey;
ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_idx ON public.users (email) INCLUDE (updated_at);' <<'EOF'
EOF
# someone holds an ACCESS EXCLUSIVE lock on the table: the size is given up
# after lock_timeout, nothing else waits
INFO='public.users: about 100 rows, size unknown (canceling statement due to lock timeout)|public.users: key users_pkey (id), the primary key'
HOLD=public.users check locked split_name 'SELECT 1' <<'EOF'
EOF

# ---- the server ------------------------------------------------------------------
version=$(q -Atc "SELECT pg_catalog.current_setting('server_version')")
version_num=$(q -Atc "SELECT pg_catalog.current_setting('server_version_num')")
check server_too_old future 'SELECT 1' <<EOF
zdm: preflight: server: PostgreSQL $version (server_version_num $version_num) is older than the plan requires (server_version_num 990000)
EOF

# ---- the table -------------------------------------------------------------------
check missing_table split_name 'DROP TABLE public.users' <<'EOF'
zdm: preflight: public.users: table does not exist
EOF
check view split_name '
DROP TABLE public.users;
CREATE VIEW public.users AS SELECT 1 AS id, $$a b$$ AS name, $$e$$ AS email;' <<'EOF'
zdm: preflight: public.users: is a view, not a table
EOF
check partitioned split_name '
DROP TABLE public.users;
CREATE TABLE public.users (id bigint, name text, email text) PARTITION BY RANGE (id);
CREATE TABLE public.users_1 PARTITION OF public.users FOR VALUES FROM (0) TO (1000);' <<'EOF'
zdm: preflight: public.users: is a partitioned table, which zdm does not migrate: its rows are in its partitions, and the backfill walks the pages of one table
EOF
check partition split_name '
CREATE TABLE public.users_root (LIKE public.users) PARTITION BY RANGE (id);
ALTER TABLE public.users_root ATTACH PARTITION public.users FOR VALUES FROM (0) TO (1000);' <<'EOF'
zdm: preflight: public.users: is a partition of public.users_root, which zdm does not migrate: columns are added and dropped on the partitioned table
EOF
check inheritance_parent split_name '
CREATE TABLE public.admins (level int) INHERITS (public.users);' <<'EOF'
zdm: preflight: public.users: has inheritance children (public.admins); zdm does not migrate inheritance hierarchies
EOF
check inheritance_child split_name '
ALTER TABLE public.users RENAME TO people;
CREATE TABLE public.users (level int, PRIMARY KEY (id)) INHERITS (public.people);' <<'EOF'
zdm: preflight: public.users: inherits from public.people; zdm does not migrate inheritance hierarchies
EOF
check typed_table split_name '
DROP TABLE public.users;
CREATE TYPE public.user_t AS (id bigint, name text, email text);
CREATE TABLE public.users OF public.user_t (PRIMARY KEY (id));' <<'EOF'
zdm: preflight: public.users: is a typed table (OF public.user_t), and PostgreSQL adds no columns to one
EOF
check not_owner split_name 'SELECT 1' 'user=alice' <<'EOF'
zdm: preflight: database pf_not_owner: the current user alice may not create schemas in it (CREATE privilege), and expand creates schema public_split_user_name
zdm: preflight: public.users: is owned by postgres, and the current user alice is not a member of that role: ALTER TABLE needs the owner's rights
EOF
check no_schema_create split_name '
ALTER TABLE public.users OWNER TO alice;
GRANT CREATE ON DATABASE pf_no_schema_create TO alice;' 'user=alice' <<'EOF'
zdm: preflight: public.users: the current user alice may not create objects in schema public (CREATE privilege), and expand creates the sync function there
EOF
check force_rls split_name '
ALTER TABLE public.users OWNER TO alice;
GRANT CREATE ON DATABASE pf_force_rls TO alice;
GRANT CREATE ON SCHEMA public TO alice;
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;' 'user=alice' <<'EOF'
zdm: preflight: public.users: has FORCE ROW LEVEL SECURITY: the backfill and the checks would see only the rows its policies show alice
EOF
check publication split_name '
CREATE PUBLICATION users_pub FOR TABLE public.users;
CREATE PUBLICATION public_pub FOR TABLES IN SCHEMA public;
CREATE PUBLICATION all_pub FOR ALL TABLES;' <<'EOF'
zdm: preflight: public.users: is in publication all_pub: its subscribers match columns by name, so the columns zdm adds, drops and renames would break them
zdm: preflight: public.users: is in publication public_pub: its subscribers match columns by name, so the columns zdm adds, drops and renames would break them
zdm: preflight: public.users: is in publication users_pub: its subscribers match columns by name, so the columns zdm adds, drops and renames would break them
EOF
# a rename alone breaks subscribers too
check publication_rename rename_email '
CREATE PUBLICATION users_pub FOR TABLE public.users;' <<'EOF'
zdm: preflight: public.users: is in publication users_pub: its subscribers match columns by name, so the columns zdm adds, drops and renames would break them
EOF

# ---- names -------------------------------------------------------------------------
check missing_columns split_name '
ALTER TABLE public.users DROP COLUMN name, DROP COLUMN email;' <<'EOF'
zdm: preflight: public.users.name: column does not exist
zdm: preflight: public.users.email: column does not exist
EOF
check new_names_taken split_name '
ALTER TABLE public.users ADD COLUMN first_name text, ADD COLUMN email_address text;' <<'EOF'
zdm: preflight: public.users.first_name: column already exists, and the split of name creates it
zdm: preflight: public.users.email_address: column already exists, and the rename of email needs the name
EOF
check reserved_names split_name '
ALTER TABLE public.users ADD COLUMN zdm_sync_pending boolean, ADD COLUMN zdm_notes text;
ALTER TABLE public.users ADD CONSTRAINT zdm_nn_first_name CHECK (id > 0);
CREATE FUNCTION public.zdm_sync_users() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER zdm_sync_insert BEFORE INSERT ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.zdm_sync_users();
CREATE TRIGGER zdm_sync_update BEFORE UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.zdm_sync_users();' <<'EOF'
zdm: preflight: public.users: column zdm_sync_pending has a name zdm reserves for its own objects
zdm: preflight: public.users: column zdm_notes has a name zdm reserves for its own objects
zdm: preflight: public.users: constraint zdm_nn_first_name has a name zdm reserves for its own objects
zdm: preflight: public.users: function public.zdm_sync_users() has a name zdm reserves for its own objects
zdm: preflight: public.users: trigger zdm_sync_insert has a name zdm reserves for its own objects
zdm: preflight: public.users: trigger zdm_sync_update has a name zdm reserves for its own objects
HINT: zdm_* names are zdm's own: a run of a migration that did not finish may have left them (see zdm status); otherwise rename them
EOF
check version_schema_exists split_name '
CREATE SCHEMA public_split_user_name;' <<'EOF'
zdm: preflight: schema public_split_user_name: already exists, and expand creates it for the new version's views
HINT: a run of this migration that did not finish may have left it (see zdm status); otherwise drop or rename it
EOF
check missing_type split_irreversible '
ALTER TABLE public.users ALTER COLUMN name DROP NOT NULL;' <<'EOF'
zdm: preflight: public.users.last_name: type citext does not exist
EOF

# using expressions are analysed by the server (never run) before anything
# is touched: a type error would otherwise first show in the sync trigger
check bad_expression bad_expression 'SELECT 1' <<'EOF'
zdm: preflight: public.users.first_name: using (name + 1) does not work on this table: operator does not exist: text + integer
zdm: preflight: public.users.last_name: using (no_such_function(name)) does not work on this table: function no_such_function(text) does not exist
EOF

# add column: the new columns must be free; the defaults are analysed too
check clean_add_columns add_user_columns 'SELECT 1' <<'EOF'
EOF
check add_column_exists add_created_at \
	'ALTER TABLE public.users ADD COLUMN created_at timestamptz' <<'EOF'
zdm: preflight: public.users.created_at: column already exists, and the change "add created_at timestamptz not null default now()" creates it
EOF
check bad_default bad_default 'SELECT 1' <<'EOF'
zdm: preflight: public.users.visits: using ('many') does not work on this table: invalid input syntax for type integer: "many"
zdm: preflight: public.users.token: using (no_such_function()) does not work on this table: function no_such_function() does not exist
EOF
# and so is each reverse using, against the table's new shape
check bad_reverse bad_reverse 'SELECT 1' <<'EOF'
zdm: preflight: public.users.name: reverse using (spilt_part(contact, ' <', 1)) does not work on the new shape of this table: function spilt_part(text, unknown, integer) does not exist
zdm: preflight: public.users.email: reverse using (users.contact + 1) does not work on the new shape of this table: operator does not exist: text + integer
EOF
check good_reverse good_reverse 'SELECT 1' </dev/null
INFO="public.users.name: reverse using not analysed: it names a column with its schema, which only the live trigger resolves" \
	check qualified_reverse qualified_reverse 'SELECT 1' </dev/null

check bad_srf bad_srf 'SELECT 1' <<'EOF'
zdm: preflight: public.orders.amount: using (generate_series(amount, amount + 1) / 100.0) does not work on this table: set-returning functions are not allowed in VALUES
EOF
check bad_aggregate bad_aggregate 'SELECT 1' <<'EOF'
zdm: preflight: public.orders.amount: using (sum(amount) / 100.0) does not work on this table: aggregate functions are not allowed in FROM clause of their own query level
EOF

# ---- drop column, set not null, drop not null -------------------------------------
# What depends on a dropped column alone goes with it (info lines); anything
# that also reads another column, or that PostgreSQL would refuse to lose,
# is refused.
INFO='public.users.email: index users_email_idx goes with it at contract
public.users.email: unique constraint users_email_key goes with it at contract
public.users.email: check constraint users_email_check goes with it at contract' \
	check drop_alone drop_email '
CREATE INDEX users_email_idx ON public.users (lower(email)) WHERE email <> $$$$;
ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TABLE public.users ADD CONSTRAINT users_email_check CHECK (email LIKE $$%@%$$);' <<'EOF'
EOF
check drop_shared drop_email '
CREATE INDEX users_email_name_idx ON public.users (email, name);
CREATE INDEX users_name_idx ON public.users (name) WHERE email IS NOT NULL;
ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TABLE public.users ADD CONSTRAINT users_contact_check CHECK (email <> name);
CREATE STATISTICS public.users_stats ON email, name FROM public.users;
CREATE TABLE public.invites (email text REFERENCES public.users (email));
CREATE VIEW public.emails AS SELECT email FROM public.users;' <<'EOF'
zdm: preflight: public.users.email: index users_email_name_idx also reads another column, and PostgreSQL would drop all of it
zdm: preflight: public.users.email: index users_name_idx also reads another column, and PostgreSQL would drop all of it
zdm: preflight: public.users.email: check constraint users_contact_check also reads another column, and PostgreSQL would drop all of it
zdm: preflight: public.users.email: foreign key invites_email_fkey on public.invites references it
zdm: preflight: public.users.email: view public.emails uses it
zdm: preflight: public.users.email: statistics object public.users_stats also reads another column, and PostgreSQL would drop all of it
HINT: drop column email drops only what depends on it alone: drop or replace what is listed before the migration (an index or constraint without email: CREATE INDEX CONCURRENTLY, ADD CONSTRAINT ... NOT VALID)
EOF
check drop_replica_identity drop_email '
ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_idx ON public.users (email);
ALTER TABLE public.users REPLICA IDENTITY USING INDEX users_email_idx;' <<'EOF'
zdm: preflight: public.users.email: is NOT NULL without a default: rows the new version inserts cannot name it, and would fail
zdm: preflight: public.users.email: index users_email_idx is the index of the table's replica identity
HINT: drop column email drops only what depends on it alone: drop or replace what is listed before the migration (an index or constraint without email: CREATE INDEX CONCURRENTLY, ADD CONSTRAINT ... NOT VALID)
EOF
check drop_primary_key drop_id 'SELECT 1' <<'EOF'
zdm: preflight: public.users.id: primary key users_pkey is the table's primary key: drop a key on purpose, in a migration of its own
HINT: drop column id drops only what depends on it alone: drop or replace what is listed before the migration (an index or constraint without id: CREATE INDEX CONCURRENTLY, ADD CONSTRAINT ... NOT VALID)
EOF
check drop_not_null_column drop_amount 'SELECT 1' <<'EOF'
zdm: preflight: public.orders.amount: is NOT NULL without a default: rows the new version inserts cannot name it, and would fail
EOF
check drop_with_default drop_amount 'ALTER TABLE public.orders ALTER COLUMN amount SET DEFAULT 0' <<'EOF'
EOF
check drop_reverse drop_amount_reverse 'SELECT 1' <<'EOF'
EOF
check drop_generated drop_amount_reverse '
ALTER TABLE public.orders DROP COLUMN amount;
ALTER TABLE public.orders ADD COLUMN amount integer GENERATED ALWAYS AS (user_id * 100) STORED;' <<'EOF'
zdm: preflight: public.orders.amount: is a generated column, which its own expression gives a value: drop it without reverse using
EOF
check drop_cdc_default drop_note_cdc "ALTER TABLE public.orders ALTER COLUMN note SET DEFAULT 'n/a'" <<'EOF'
zdm: preflight: public.orders.note: has a default: with sync = cdc, zdm sync knows a new-version insert by this column being NULL, which the default hides
EOF
check not_null_ok not_null 'SELECT 1' <<'EOF'
EOF
check not_null_already not_null '
ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;
ALTER TABLE public.users ALTER COLUMN name DROP NOT NULL;' <<'EOF'
zdm: preflight: public.users.email: is NOT NULL already: nothing to set
zdm: preflight: public.users.name: is nullable already: nothing to drop
EOF
check not_null_key not_null_key 'SELECT 1' <<'EOF'
zdm: preflight: public.users.id: is in primary key users_pkey, which requires NOT NULL
EOF

# ---- set/drop default, rename to, several schemas ------------------------------------
# user_defaults sets email's default and drops tier's; rename_table renames
# users to accounts; two_schemas changes public.users and sales.orders
check clean_defaults user_defaults '
ALTER TABLE public.users ADD COLUMN tier text DEFAULT $$free$$;' <<'EOF'
EOF
# PostgreSQL refuses a default on an identity or generated column (on the
# table at contract, not on the view at expand); a default that cannot be
# the column's type is found by the server
check defaults_wrong user_defaults '
ALTER TABLE public.users ALTER COLUMN email TYPE integer USING NULL;
ALTER TABLE public.users ADD COLUMN tier integer GENERATED ALWAYS AS (id * 2) STORED;' <<'EOF'
zdm: preflight: public.users.email: default ('unknown@example.invalid') does not work on this table: invalid input syntax for type integer: "unknown@example.invalid"
zdm: preflight: public.users.tier: is a generated column, and PostgreSQL refuses to drop its default (contract would fail after its point of no return)
EOF
check defaults_identity user_defaults '
ALTER TABLE public.users ADD COLUMN tier bigint GENERATED ALWAYS AS IDENTITY;' <<'EOF'
zdm: preflight: public.users.tier: is an identity column, and PostgreSQL refuses to drop its default (contract would fail after its point of no return)
HINT: ALTER TABLE ... ALTER COLUMN ... DROP IDENTITY first, in a migration of its own
EOF
check defaults_missing_column user_defaults 'SELECT 1' <<'EOF'
zdm: preflight: public.users.tier: column does not exist
EOF
check renamed_table_taken rename_table '
CREATE TABLE public.accounts ();' <<'EOF'
zdm: preflight: public.users: a relation or type named accounts already exists in its schema, and the change "rename the table to accounts" renames the table to it
EOF
check clean_two_schemas two_schemas '
CREATE SCHEMA sales;
ALTER TABLE public.orders SET SCHEMA sales;' <<'EOF'
EOF
# both version schemas must be free; and a public.orders beside sales.orders
# is what the old version (search_path public, sales) finds as "orders"
check two_schemas_wrong two_schemas '
CREATE SCHEMA sales;
CREATE TABLE sales.orders (LIKE public.orders INCLUDING ALL);
CREATE SCHEMA sales_users_and_sales;' <<'EOF'
zdm: preflight: schema sales_users_and_sales: already exists, and expand creates it for the new version's views
HINT: a run of this migration that did not finish may have left it (see zdm status); otherwise drop or rename it
zdm: preflight: sales.orders: the new version knows it as orders, without a schema, and public.orders has that name in a schema before sales in the search_path: the old version's orders is public.orders, the new version's would be this table until contract and public.orders after
HINT: rename one of them first, in a migration of its own
EOF

# ---- the key -----------------------------------------------------------------------
check no_key split_name '
ALTER TABLE public.users DROP CONSTRAINT users_pkey;
CREATE UNIQUE INDEX users_email_idx ON public.users (email);
CREATE UNIQUE INDEX users_lower_idx ON public.users (lower(name));
CREATE UNIQUE INDEX users_partial_idx ON public.users (id) WHERE id > 0;
CREATE INDEX users_id_idx ON public.users (id);' <<'EOF'
zdm: preflight: public.users.name: index users_lower_idx uses the column; zdm does not carry it over
HINT: zdm replaces name with new columns and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new columns need after contract
zdm: preflight: public.users: has no primary key and no unique index over NOT NULL columns without expressions or a predicate; zdm needs a key to batch by and to name rows
HINT: add one first: CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE ... ADD PRIMARY KEY USING INDEX
EOF
check key_replaced split_name '
ALTER TABLE public.users DROP CONSTRAINT users_pkey;
ALTER TABLE public.users ADD PRIMARY KEY (name);' <<'EOF'
zdm: preflight: public.users.name: primary key users_pkey uses the column; zdm does not carry it over
HINT: zdm replaces name with new columns and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new columns need after contract
zdm: preflight: public.users: key users_pkey (name) uses a column the migration replaces; zdm needs a key that survives the migration
HINT: add a unique index over NOT NULL columns the migration keeps (CREATE UNIQUE INDEX CONCURRENTLY)
EOF

# ---- on a replaced column: what the plan does not carry over -------------------------
# Each case adds one thing to users.name (split) or orders.amount (retype).
replaced()
{
	local name=$1 plan=$2 setup=$3 line=$4 hint
	if [ "$plan" = split_name ]; then
		hint='HINT: zdm replaces name with new columns and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new columns need after contract'
	else
		hint='HINT: zdm replaces amount with a new column of type numeric(12,2) and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new column needs after contract'
	fi
	check "$name" "$plan" "$setup" <<EOF
$line
$hint
EOF
}
U=public.users.name
O=public.orders.amount
replaced col_index split_name '
CREATE INDEX users_name_idx ON public.users (name);' \
	"zdm: preflight: $U: index users_name_idx uses the column; zdm does not carry it over"
replaced col_index_expression split_name '
CREATE INDEX users_lower_name_idx ON public.users (lower(name));' \
	"zdm: preflight: $U: index users_lower_name_idx uses the column; zdm does not carry it over"
replaced col_index_predicate split_name '
CREATE INDEX users_email_idx ON public.users (email) WHERE name <> $$$$;' \
	"zdm: preflight: $U: index users_email_idx uses the column; zdm does not carry it over"
replaced col_index_include orders_amount '
CREATE INDEX orders_user_idx ON public.orders (user_id) INCLUDE (amount);' \
	"zdm: preflight: $O: index orders_user_idx uses the column; zdm does not carry it over"
replaced col_check_constraint orders_amount '
ALTER TABLE public.orders ADD CONSTRAINT orders_amount_check CHECK (amount >= 0);' \
	"zdm: preflight: $O: check constraint orders_amount_check uses the column; zdm does not carry it over"
replaced col_unique_constraint split_name '
ALTER TABLE public.users ADD CONSTRAINT users_name_key UNIQUE (name);' \
	"zdm: preflight: $U: unique constraint users_name_key uses the column; zdm does not carry it over"
replaced col_exclusion_constraint split_name '
ALTER TABLE public.users ADD CONSTRAINT users_name_excl EXCLUDE USING btree (name WITH =);' \
	"zdm: preflight: $U: exclusion constraint users_name_excl uses the column; zdm does not carry it over"
# an expression or a predicate of an EXCLUDE constraint is a dependency of
# its index, not of the constraint
replaced col_exclusion_expression orders_amount '
ALTER TABLE public.orders ADD CONSTRAINT orders_amount_excl EXCLUDE USING btree ((-amount) WITH =);' \
	"zdm: preflight: $O: exclusion constraint orders_amount_excl uses the column; zdm does not carry it over"
replaced col_exclusion_predicate orders_amount '
ALTER TABLE public.orders ADD CONSTRAINT orders_user_excl EXCLUDE USING btree (user_id WITH =) WHERE (amount > 0);' \
	"zdm: preflight: $O: exclusion constraint orders_user_excl uses the column; zdm does not carry it over"
replaced col_foreign_key_out split_name '
CREATE TABLE public.people (name text PRIMARY KEY);
ALTER TABLE public.users ADD CONSTRAINT users_person_fk
    FOREIGN KEY (name) REFERENCES public.people (name) NOT VALID;' \
	"zdm: preflight: $U: foreign key users_person_fk (to public.people) uses the column; zdm does not carry it over"
replaced col_foreign_key_in split_name '
ALTER TABLE public.users ADD CONSTRAINT users_name_key UNIQUE (name);
CREATE TABLE public.notes (
    user_name text CONSTRAINT notes_user_fk REFERENCES public.users (name));' \
	"zdm: preflight: $U: unique constraint users_name_key uses the column; zdm does not carry it over
zdm: preflight: $U: foreign key notes_user_fk on public.notes references the column; zdm does not carry it over"
replaced col_default split_name '
ALTER TABLE public.users ALTER COLUMN name SET DEFAULT $$anonymous$$;' \
	"zdm: preflight: $U: has a default ('anonymous'::text); zdm does not carry it over, and its sync trigger would take a new-version insert, which gets the default, for an old-version write"
replaced col_identity orders_amount '
ALTER TABLE public.orders ALTER COLUMN amount ADD GENERATED ALWAYS AS IDENTITY;' \
	"zdm: preflight: $O: is an identity column (GENERATED ALWAYS AS IDENTITY); zdm does not carry it over"
replaced col_generated orders_amount '
ALTER TABLE public.orders DROP COLUMN amount;
ALTER TABLE public.orders ADD COLUMN amount integer GENERATED ALWAYS AS (user_id * 100) STORED;' \
	"zdm: preflight: $O: is a generated column (GENERATED ALWAYS AS ((user_id * 100)) STORED); zdm does not carry it over"
replaced col_generated_from split_name '
ALTER TABLE public.users ADD COLUMN initial text GENERATED ALWAYS AS (left(name, 1)) STORED;' \
	"zdm: preflight: $U: generated column initial is computed from the column; zdm does not carry it over"
replaced col_view split_name '
CREATE VIEW public.user_names AS SELECT name FROM public.users;' \
	"zdm: preflight: $U: view public.user_names uses the column; zdm does not carry it over"
replaced col_materialized_view split_name '
CREATE MATERIALIZED VIEW public.user_names AS SELECT name FROM public.users;' \
	"zdm: preflight: $U: materialized view public.user_names uses the column; zdm does not carry it over"
# the rule is also one the backfill fires (see rules below)
check col_rule split_name '
CREATE TABLE public.name_log (name text);
CREATE RULE users_log AS ON UPDATE TO public.users
    DO ALSO INSERT INTO public.name_log VALUES (NEW.name);' <<'EOF'
zdm: preflight: public.users.name: rule users_log on public.users uses the column; zdm does not carry it over
HINT: zdm replaces name with new columns and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new columns need after contract
zdm: preflight: public.users: has rule users_log (ON UPDATE), and zdm cannot know what it does while the backfill updates every row and the table has two shapes
HINT: a rule rewrites the backfill's writes too: a DO ALSO rule runs once for every row, and a DO INSTEAD rule keeps the backfill from writing at all; disable it for the migration (ALTER TABLE ... DISABLE RULE) or drop it, and recreate it for the new shape after contract
EOF
replaced col_policy split_name '
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_not_root ON public.users USING (name <> $$root$$);' \
	"zdm: preflight: $U: row-level security policy users_not_root on public.users uses the column; zdm does not carry it over"
replaced col_statistics split_name '
CREATE STATISTICS public.users_stats ON name, email FROM public.users;' \
	"zdm: preflight: $U: statistics object public.users_stats uses the column; zdm does not carry it over"
replaced col_owned_sequence orders_amount '
CREATE SEQUENCE public.orders_amount_seq OWNED BY public.orders.amount;' \
	"zdm: preflight: $O: sequence public.orders_amount_seq is owned by the column; zdm does not carry it over"
replaced col_function_body split_name '
CREATE FUNCTION public.user_name(bigint) RETURNS text LANGUAGE sql
    BEGIN ATOMIC SELECT name FROM public.users WHERE id = $1; END;' \
	"zdm: preflight: $U: function public.user_name(bigint) depends on the column; zdm does not carry it over"
replaced col_column_privileges split_name '
GRANT SELECT (name), UPDATE (name) ON public.users TO app;' \
	"zdm: preflight: $U: has column privileges ({app=rw/postgres}); zdm does not carry them over"
replaced col_comment split_name "
COMMENT ON COLUMN public.users.name IS 'full name';" \
	"zdm: preflight: $U: has a comment; zdm does not carry it over"
replaced col_collation split_name '
ALTER TABLE public.users ALTER COLUMN name TYPE text COLLATE "C";' \
	"zdm: preflight: $U: has collation \"C\"; zdm does not carry it over"
replaced col_statistics_target split_name '
ALTER TABLE public.users ALTER COLUMN name SET STATISTICS 500;' \
	"zdm: preflight: $U: has a statistics target (500); zdm does not carry it over"
replaced col_column_options split_name '
ALTER TABLE public.users ALTER COLUMN name SET (n_distinct = 100);' \
	"zdm: preflight: $U: has options (n_distinct=100); zdm does not carry them over"
replaced col_storage split_name '
ALTER TABLE public.users ALTER COLUMN name SET STORAGE EXTERNAL;' \
	"zdm: preflight: $U: has storage external; zdm does not carry it over"
replaced col_compression split_name '
ALTER TABLE public.users ALTER COLUMN name SET COMPRESSION pglz;' \
	"zdm: preflight: $U: has compression pglz; zdm does not carry it over"
check irreversible_not_null split_irreversible 'SELECT 1' <<'EOF'
zdm: preflight: public.users.name: is NOT NULL and the change is irreversible: rows the new version inserts leave it NULL, so they would fail
HINT: give the change a reverse using, or drop NOT NULL from name before the migration
zdm: preflight: public.users.last_name: type citext does not exist
EOF
check quoted_names quoted '
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Order" (id int PRIMARY KEY, "Amount" int);
CREATE INDEX "Order_Amount" ON "Sales"."Order" ("Amount");' <<'EOF'
zdm: preflight: "Sales"."Order"."Amount": index "Order_Amount" uses the column; zdm does not carry it over
HINT: zdm replaces "Amount" with a new column of type numeric(12,2) and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new column needs after contract
EOF

# ---- triggers ----------------------------------------------------------------------
check trigger_update_of split_name '
CREATE TRIGGER users_touch BEFORE UPDATE OF name, email ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.touch();
ALTER TABLE public.users DISABLE TRIGGER users_touch;' <<'EOF'
zdm: preflight: public.users: trigger users_touch fires on UPDATE OF name, which the migration replaces; zdm does not carry it over
EOF
# a WHEN clause depends on the columns it reads, disabled or not
check trigger_when_disabled split_name '
CREATE TRIGGER users_when BEFORE UPDATE ON public.users
    FOR EACH ROW WHEN (NEW.name IS DISTINCT FROM OLD.name)
    EXECUTE FUNCTION public.touch();
ALTER TABLE public.users DISABLE TRIGGER users_when;' <<'EOF'
zdm: preflight: public.users: trigger users_when reads name in its WHEN clause, which the migration replaces; zdm does not carry it over
EOF
check trigger split_name '
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.touch();' <<'EOF'
zdm: preflight: public.users: has trigger users_audit, and zdm cannot know what it reads or writes while the table has two shapes
HINT: zdm cannot tell whether a trigger reads a column the migration replaces or renames, and one that does fails once contract runs: disable it for the migration (ALTER TABLE ... DISABLE TRIGGER) or drop it, and recreate it for the new shape after contract
EOF
check trigger_rename rename_email '
CREATE TRIGGER users_audit BEFORE INSERT ON public.users
    FOR EACH STATEMENT EXECUTE FUNCTION public.touch();' <<'EOF'
zdm: preflight: public.users: has trigger users_audit, and zdm cannot know what it reads or writes while the table has two shapes
HINT: zdm cannot tell whether a trigger reads a column the migration replaces or renames, and one that does fails once contract runs: disable it for the migration (ALTER TABLE ... DISABLE TRIGGER) or drop it, and recreate it for the new shape after contract
EOF

# ---- rules: the backfill's UPDATEs fire them ---------------------------------------
check rules split_name '
CREATE TABLE public.audit (id bigint);
CREATE RULE users_audit AS ON UPDATE TO public.users
    DO ALSO INSERT INTO public.audit VALUES (NEW.id);
CREATE RULE users_keep AS ON DELETE TO public.users DO INSTEAD NOTHING;' <<'EOF'
zdm: preflight: public.users: has rule users_audit (ON UPDATE), and zdm cannot know what it does while the backfill updates every row and the table has two shapes
zdm: preflight: public.users: has rule users_keep (ON DELETE), and zdm cannot know what it does while the backfill updates every row and the table has two shapes
HINT: a rule rewrites the backfill's writes too: a DO ALSO rule runs once for every row, and a DO INSTEAD rule keeps the backfill from writing at all; disable it for the migration (ALTER TABLE ... DISABLE RULE) or drop it, and recreate it for the new shape after contract
EOF
# a disabled rule fires for no one
check clean_disabled_rule split_name '
CREATE RULE users_nothing AS ON UPDATE TO public.users DO INSTEAD NOTHING;
ALTER TABLE public.users DISABLE RULE users_nothing;' <<'EOF'
EOF

# ---- the row type: stored in a column elsewhere, it keeps expand from altering the table
check row_type_used split_name '
CREATE TABLE public.snap (u public.users);
CREATE TABLE public.snaps (us public.users[]);
CREATE VIEW public.user_rows AS SELECT u FROM public.users AS u;' <<'EOF'
zdm: preflight: public.users: column public.snap.u is of its row type, and PostgreSQL does not add columns with a default to, or change column types of, a table whose row type a column uses
zdm: preflight: public.users: column public.snaps.us is of an array of its row type, and PostgreSQL does not add columns with a default to, or change column types of, a table whose row type a column uses
HINT: change the type of those columns or drop them before the migration
EOF

# ---- all at once: every problem reported in one run ---------------------------------
check many_problems users_and_orders '
CREATE SCHEMA public_users_and_orders;
CREATE INDEX users_name_idx ON public.users (name);
ALTER TABLE public.users ADD COLUMN first_name text;
ALTER TABLE public.orders DROP CONSTRAINT orders_pkey;
ALTER TABLE public.orders ADD CONSTRAINT orders_amount_check CHECK (amount >= 0);' <<'EOF'
zdm: preflight: schema public_users_and_orders: already exists, and expand creates it for the new version's views
HINT: a run of this migration that did not finish may have left it (see zdm status); otherwise drop or rename it
zdm: preflight: public.users.name: index users_name_idx uses the column; zdm does not carry it over
HINT: zdm replaces name with new columns and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new columns need after contract
zdm: preflight: public.users.first_name: column already exists, and the split of name creates it
zdm: preflight: public.orders.amount: check constraint orders_amount_check uses the column; zdm does not carry it over
HINT: zdm replaces amount with a new column of type numeric(12,2) and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new column needs after contract
zdm: preflight: public.orders: has no primary key and no unique index over NOT NULL columns without expressions or a predicate; zdm needs a key to batch by and to name rows
HINT: add one first: CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE ... ADD PRIMARY KEY USING INDEX
EOF

# ---- format version 3: the facts of a change ------------------------------------
# everything the facts need is there (user_id is free for the first change
# because the second renames it away)
check clean_facts facts '
ALTER TABLE public.orders ADD CONSTRAINT orders_old_check CHECK (amount > -1);
ALTER TABLE public.orders ADD CONSTRAINT orders_note_check CHECK (note <> $$$$);
CREATE UNIQUE INDEX users_email_key ON public.users (email);
CREATE TABLE public.customers (id bigint PRIMARY KEY);' <<'EOF'
EOF
# every fact wrong: names taken, constraints missing, an index left invalid
# by a failed concurrent build, no key to reference, a taken table name
check facts_wrong facts '
ALTER TABLE public.orders ADD COLUMN status text, ADD COLUMN remark text;
ALTER TABLE public.orders ADD CONSTRAINT orders_amount_positive CHECK (amount > 0);
ALTER TABLE public.orders ADD CONSTRAINT orders_note_nonempty CHECK (note <> $$$$);
CREATE INDEX orders_user_id_idx ON public.orders (user_id);
UPDATE pg_catalog.pg_index SET indisvalid = false
 WHERE indexrelid = $$public.orders_user_id_idx$$::pg_catalog.regclass;
CREATE VIEW public.purchases AS SELECT 1 AS one;' <<'EOF'
zdm: preflight: public.orders.status: column already exists, and the change "tidy orders" creates it
zdm: preflight: public.orders.remark: column already exists, and the rename of note needs the name
zdm: preflight: public.orders: constraint orders_amount_positive already exists, and the change "tidy orders" creates it
zdm: preflight: public.orders: constraint orders_old_check does not exist, and the change "tidy orders" drops it
zdm: preflight: public.orders: constraint orders_note_check does not exist, and the change "tidy orders" renames it
zdm: preflight: public.orders: constraint orders_note_nonempty already exists, and the change "tidy orders" renames constraint orders_note_check to it
zdm: preflight: index public.orders_user_id_idx: already exists and is not valid, and the change "tidy orders" creates it
HINT: a CREATE INDEX CONCURRENTLY that failed leaves an invalid index behind: if no run is under way (see zdm status), drop it with DROP INDEX CONCURRENTLY public.orders_user_id_idx
zdm: preflight: public.orders: the change "tidy orders" references (email) of table public.users, which is neither its primary key nor a unique index without expressions or a predicate on exactly those columns
HINT: a foreign key needs a key on the columns it references: CREATE UNIQUE INDEX CONCURRENTLY on public.users (email) first
zdm: preflight: public.orders: the change "tidy orders" references table public.customers, which does not exist
zdm: preflight: public.orders: a relation or type named purchases already exists in its schema, and the change "tidy orders" renames the table to it
EOF
# a referenced table without a primary key, and a partial unique index
# (no foreign key can use it)
check facts_no_primary_key facts '
ALTER TABLE public.orders ADD CONSTRAINT orders_old_check CHECK (amount > -1);
ALTER TABLE public.orders ADD CONSTRAINT orders_note_check CHECK (note <> $$$$);
CREATE UNIQUE INDEX users_email_key ON public.users (email) WHERE email IS NOT NULL;
CREATE TABLE public.customers (id bigint UNIQUE);' <<'EOF'
zdm: preflight: public.orders: the change "tidy orders" references (email) of table public.users, which is neither its primary key nor a unique index without expressions or a predicate on exactly those columns
HINT: a foreign key needs a key on the columns it references: CREATE UNIQUE INDEX CONCURRENTLY on public.users (email) first
zdm: preflight: public.orders: the change "tidy orders" references table public.customers by its primary key, and it has none
EOF

# renaming a unique constraint renames its index: the new name must be free
# among the schema's relations too
check facts_rename_index facts '
ALTER TABLE public.orders ADD CONSTRAINT orders_old_check CHECK (amount > -1);
ALTER TABLE public.orders ADD CONSTRAINT orders_note_check UNIQUE (note);
CREATE UNIQUE INDEX users_email_key ON public.users (email);
CREATE TABLE public.customers (id bigint PRIMARY KEY);
CREATE TABLE public.orders_note_nonempty ();' <<'EOF'
zdm: preflight: public.orders: a relation named orders_note_nonempty already exists in the schema of the index of constraint orders_note_check, and the change "tidy orders" renames the constraint, and with it the index, to it
EOF

# ---- sync = cdc ------------------------------------------------------------------
INFO='public.users: key users_pkey (id), the primary key'
check clean_cdc cdc_users 'SELECT 1' <<'EOF'
EOF
# a role that is no superuser passes with REPLICATION and EXECUTE on the
# origin functions
check clean_cdc_replication_role cdc_users '
ALTER TABLE public.users OWNER TO replicator;
GRANT CREATE ON DATABASE pf_clean_cdc_replication_role TO replicator;
GRANT CREATE ON SCHEMA public TO replicator;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text),
    pg_catalog.pg_replication_origin_session_setup(text),
    pg_catalog.pg_replication_origin_drop(text) TO replicator;' \
	'user=replicator' <<'EOF'
EOF
check cdc_role cdc_users '
ALTER TABLE public.users OWNER TO alice;
GRANT CREATE ON DATABASE pf_cdc_role TO alice;
GRANT CREATE ON SCHEMA public TO alice;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_drop(text) TO alice;' \
	'user=alice' <<'EOF'
zdm: preflight: role alice: is not a superuser and has no REPLICATION attribute, which creating replication slot zdm_cdc_users at expand, and zdm sync's replication connection, both need
HINT: ALTER ROLE alice REPLICATION
zdm: preflight: role alice: may not execute pg_catalog.pg_replication_origin_create(text), pg_catalog.pg_replication_origin_session_setup(text), which only a superuser may unless EXECUTE was granted: expand creates replication origin zdm_cdc_users, zdm sync marks its own writes with it, and contract drops it
HINT: GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text), pg_catalog.pg_replication_origin_session_setup(text) TO alice
EOF
# what an earlier run that failed or was abandoned left behind; the
# publication also puts the table in a publication
CLEANUP='SELECT pg_catalog.pg_drop_replication_slot($$zdm_cdc_users$$);
SELECT pg_catalog.pg_replication_origin_drop($$zdm_cdc_users$$);' \
check cdc_leftovers cdc_users '
SELECT pg_catalog.pg_create_logical_replication_slot($$zdm_cdc_users$$, $$pgoutput$$);
SELECT pg_catalog.pg_replication_origin_create($$zdm_cdc_users$$);
CREATE PUBLICATION zdm_cdc_users FOR TABLE public.users;' <<'EOF'
zdm: preflight: replication slot zdm_cdc_users: already exists (logical, database pf_cdc_leftovers, inactive), and expand creates it; a slot left by a run that failed or was abandoned is an orphan, and it pins WAL on the server until it is dropped
HINT: if no run of this migration is under way (see zdm status) and nothing else reads the slot, drop it: SELECT pg_catalog.pg_drop_replication_slot('zdm_cdc_users')
zdm: preflight: publication zdm_cdc_users: already exists, and expand creates it; one left by a run that failed or was abandoned is an orphan
HINT: if no run of this migration is under way (see zdm status) and nothing else uses the publication, drop it: DROP PUBLICATION zdm_cdc_users
zdm: preflight: replication origin zdm_cdc_users: already exists, and expand creates it; one left by a run that failed or was abandoned is an orphan
HINT: if no run of this migration is under way (see zdm status), drop it: SELECT pg_catalog.pg_replication_origin_drop('zdm_cdc_users')
zdm: preflight: public.users: is in publication zdm_cdc_users: its subscribers match columns by name, so the columns zdm adds, drops and renames would break them
EOF
# every slot is taken (physical ones reserve no WAL: cheap to fill with)
CLEANUP='SELECT pg_catalog.pg_drop_replication_slot($$pf_fill_$$ || g)
           FROM pg_catalog.generate_series(1, 10) AS g' \
check cdc_no_free_slot cdc_users '
SELECT pg_catalog.pg_create_physical_replication_slot($$pf_fill_$$ || g)
  FROM pg_catalog.generate_series(1, 10) AS g;' <<'EOF'
zdm: preflight: server: max_replication_slots is 10 and 10 slots exist, and expand creates replication slot zdm_cdc_users
HINT: raise max_replication_slots (it changes only at a restart), or drop a slot that nothing reads any more (pg_replication_slots lists them): an abandoned slot also pins WAL
EOF
check cdc_key_missing cdc_users '
ALTER TABLE public.users RENAME COLUMN id TO user_id;' <<'EOF'
zdm: preflight: public.users.id: column does not exist, and the sync's key (id) names it
EOF
# key = (email): no unique index, then one over a column that may be NULL
check cdc_key_not_unique cdc_email_key 'SELECT 1' <<'EOF'
zdm: preflight: public.users: the sync's key (email) is not the primary key or a unique index over NOT NULL columns without expressions or a predicate: zdm sync finds the row of a change event by the key's values, and a key that is not unique would update several rows
HINT: name the columns of one of its keys in the migration's key = (...): users_pkey (id); or make (email) one: its columns NOT NULL and CREATE UNIQUE INDEX CONCURRENTLY on exactly them
EOF
check cdc_key_nullable cdc_email_key '
CREATE UNIQUE INDEX users_email_idx ON public.users (email);' <<'EOF'
zdm: preflight: public.users: the sync's key (email) is not the primary key or a unique index over NOT NULL columns without expressions or a predicate: zdm sync finds the row of a change event by the key's values, and a key that is not unique would update several rows
HINT: name the columns of one of its keys in the migration's key = (...): users_pkey (id); or make (email) one: its columns NOT NULL and CREATE UNIQUE INDEX CONCURRENTLY on exactly them
EOF
# a partial unique index covers some rows only; a key is its columns exactly
check cdc_key_partial cdc_email_key '
ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_idx ON public.users (email) WHERE id > 0;
CREATE UNIQUE INDEX users_email_id_idx ON public.users (email, id);' <<'EOF'
zdm: preflight: public.users: the sync's key (email) is not the primary key or a unique index over NOT NULL columns without expressions or a predicate: zdm sync finds the row of a change event by the key's values, and a key that is not unique would update several rows
HINT: name the columns of one of its keys in the migration's key = (...): users_pkey (id), users_email_id_idx (email, id); or make (email) one: its columns NOT NULL and CREATE UNIQUE INDEX CONCURRENTLY on exactly them
EOF
check clean_cdc_email_key cdc_email_key '
ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_idx ON public.users (email) INCLUDE (updated_at);' <<'EOF'
EOF
# the sync compares prefs (json now) and the new email (json) with IS NOT
# DISTINCT FROM; the new prefs (jsonb) and id (bigint) have equality
check cdc_json cdc_json '
ALTER TABLE public.users ADD COLUMN prefs json;' <<'EOF'
zdm: preflight: public.users.prefs: is of type json, which has no equality operator in a default btree or hash operator class, and zdm sync compares the column with a change event's value to find the row (IS NOT DISTINCT FROM)
zdm: preflight: public.users.email: its new type json has no equality operator in a default btree or hash operator class, and zdm sync compares the new column (zdm_new_email until contract) with a change event's value to find the row (IS NOT DISTINCT FROM)
HINT: give such a column a type with equality before the migration (jsonb for json, text for xml), or the change a new type with one; or migrate public.users with sync = trigger
EOF
# a domain is compared as its base type: over json, there is no equality
check cdc_no_equality cdc_json '
CREATE DOMAIN public.doc AS json;
ALTER TABLE public.users ADD COLUMN prefs public.doc;' <<'EOF'
zdm: preflight: public.users.prefs: is of type public.doc, which has no equality operator in a default btree or hash operator class, and zdm sync compares the column with a change event's value to find the row (IS NOT DISTINCT FROM)
zdm: preflight: public.users.email: its new type json has no equality operator in a default btree or hash operator class, and zdm sync compares the new column (zdm_new_email until contract) with a change event's value to find the row (IS NOT DISTINCT FROM)
HINT: give such a column a type with equality before the migration (jsonb for json, text for xml), or the change a new type with one; or migrate public.users with sync = trigger
EOF
# the sync builds each event as a row of the table: a NOT NULL domain
# forbids the all-NULL row it starts from
check cdc_not_null_domain cdc_users '
CREATE DOMAIN public.code AS text NOT NULL;
ALTER TABLE public.users ADD COLUMN code public.code DEFAULT '"'x'"';' <<'EOF'
zdm: preflight: public.users: zdm sync gives its statements each change event as a row of this table with the columns the event does not carry NULL, and such a row cannot be made: domain public.code does not allow null values
HINT: a column's domain does not allow NULL: make the domain allow it (the column itself can stay NOT NULL), or migrate public.users with sync = trigger
EOF

# ---- sync = cdc on a server restarted without logical WAL, slots or walsenders ----
# Last: every case after this runs on that server.
if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" cdc_server_settings "* ]]; then
	q -c 'ALTER SYSTEM SET wal_level = replica' \
		-c 'ALTER SYSTEM SET max_wal_senders = 0' \
		-c 'ALTER SYSTEM SET max_replication_slots = 0'
	pg_as_server "$PGBIN/pg_ctl" -D "$ZDM_PG_DIR/data" -l "$ZDM_PG_DIR/log" \
		-w -t 60 restart >/dev/null || die "the server did not restart"
fi
check cdc_server_settings cdc_users 'SELECT 1' <<'EOF'
zdm: preflight: server: wal_level is replica, and a native cdc plan needs logical: expand creates a logical replication slot, and only logical WAL can be decoded into change events
HINT: set wal_level = logical (ALTER SYSTEM SET wal_level = logical) and restart the server: wal_level changes only at a restart
zdm: preflight: server: max_replication_slots is 0 and 0 slots exist, and expand creates replication slot zdm_cdc_users
HINT: raise max_replication_slots (it changes only at a restart), or drop a slot that nothing reads any more (pg_replication_slots lists them): an abandoned slot also pins WAL
zdm: preflight: server: max_wal_senders is 0 and 0 are in use, and zdm sync reads replication slot zdm_cdc_users over a replication connection, which takes one
HINT: raise max_wal_senders (it changes only at a restart), or end a replication connection that is no longer needed (pg_stat_replication lists them)
EOF
# a debezium source: the slot is the connector's, not the plan's
check clean_cdc_debezium_without_logical cdc_email_key '
ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_idx ON public.users (email);' <<'EOF'
EOF

echo "$ran cases, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
