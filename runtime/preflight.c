/*
 * preflight.c -- what must hold of the live database before expand.
 *
 * zdmc compiles a migration without ever connecting anywhere, so a plan
 * assumes things about the tables that only the catalog can confirm.  This
 * file confirms them, all at once, and reports every problem it finds
 * rather than the first, so one run gives the whole list:
 *
 *   - the server is at least requires.server_version_num;
 *   - no other migration is in flight on a table of the plan (its claim
 *     in the journal's zdm.claims);
 *   - each table exists, is an ordinary table (not partitioned, not a
 *     partition, not in an inheritance hierarchy, not typed), and the
 *     current user can alter it;
 *   - the names the plan creates are free: the version schemas, columns,
 *     triggers, constraints and the sync function (zdm_* is reserved), and
 *     the new columns' names;
 *   - it works from each change's facts (plan_read.h's zdm_change), never
 *     from the change's name: each column a change reads or replaces
 *     exists; each new type exists; each column it creates and each
 *     rename's new name is free, unless a change of the table frees it
 *     (replaces it or renames it away);
 *   - the other objects a change names: constraints it creates are free on
 *     the table, those it drops or renames exist (and a rename's new name
 *     is free), indexes it creates do not exist, each table it references
 *     exists with a primary key or unique index on exactly the referenced
 *     columns, and the table's new name is free in its schema;
 *   - a column the migration replaces (the old column is dropped at
 *     contract) has nothing on it that the plan does not carry
 *     over.  The plan carries over NOT NULL and nothing else, so indexes,
 *     constraints (either end of a foreign key), a default, identity,
 *     generated columns, views, rules, policies, statistics objects, owned
 *     sequences, privileges, comments and per-column settings are each
 *     refused by name -- "never silently lost";
 *   - a column the migration drops (drop column) takes with it what depends
 *     on it alone (an index, a CHECK, a foreign key from it: listed), and
 *     nothing else: the primary key, the replica identity's index, what
 *     also reads another column, and what DROP COLUMN would refuse to lose
 *     are refused; a NOT NULL one without a default needs the change's
 *     reverse using (new-version inserts cannot name it), a generated one
 *     must not have one, and with cdc one that has it must have no default
 *     or identity (a NULL is how zdm sync knows a new-version insert);
 *   - a column made NOT NULL is nullable now, and one let be NULL is NOT
 *     NULL now and in no primary key or replica identity index;
 *   - no user trigger is on a changed table (zdm cannot know what it reads),
 *     and none, enabled or not, depends on a replaced column (UPDATE OF, a
 *     WHEN clause); the table is in no publication (subscribers match
 *     columns by name);
 *   - a table with a backfill has no enabled INSERT, UPDATE or DELETE rule
 *     (the backfill's UPDATEs fire them), and no column elsewhere stores its
 *     row type (PostgreSQL would refuse expand's ALTER TABLE);
 *   - each using expression is analysed, not run, by the server, in a
 *     VALUES list, which refuses what an UPDATE's SET refuses; so is each
 *     new default, cast to its column's type; and each reverse using,
 *     against the table's new shape (a subquery: the replaced columns gone,
 *     renamed ones under their new names, created ones as typed NULLs);
 *   - a column whose default a change sets or drops is no identity and no
 *     generated column (PostgreSQL refuses either on those, and would say
 *     so only at contract, after the view has had the default since
 *     expand);
 *   - with tables in several schemas, no relation in a schema earlier in
 *     the search_path has the name the new version knows a table by
 *     (the old version would find that one, the new version this table's
 *     view, and after contract that one again);
 *   - a table with a backfill has a key: its primary key, else a unique
 *     index over NOT NULL columns without expressions or a predicate, that
 *     survives the migration;
 *   - a cdc plan (plan->cdc): each synced table's key columns exist and are
 *     exactly those of such a key (zdm sync updates each row by its key, and a
 *     key that is not unique would update several rows), and every column
 *     its statements compare (the syncs' params: existing columns by their
 *     type, new ones by the plan's) has equality in a default btree or hash
 *     operator class, without which IS NOT DISTINCT FROM does not plan
 *     (json, xml, point).  With the native source also: wal_level is
 *     logical; the current role is a superuser or has REPLICATION (the slot,
 *     the walsender) and may execute the replication origin functions
 *     (superuser-only unless granted); a replication slot and a walsender
 *     are free; and the slot, publication and origin the plan creates do
 *     not exist yet (a leftover is reported with the SQL that drops it, as
 *     advice only: it may belong to a run still under way).
 *
 * Invariants: it changes nothing.  Every query runs in one READ ONLY,
 * REPEATABLE READ transaction (one snapshot, so the checks agree with each
 * other), ended by ROLLBACK; every catalog name is qualified with
 * pg_catalog, so the session's search_path cannot redirect a check.  The
 * only locks it takes are ACCESS SHARE, for the size, under the plan's
 * lock_timeout.  The SQL is here as named constants, each with why it is
 * shaped so.
 *
 * Debezium's connector, its slot and its topics are the operator's and are
 * not checked here.
 *
 * It must not guess at what user code does: a trigger or a publication is
 * refused because zdm cannot see inside it, not because it is known to
 * break.  Function bodies that name a column (PL/pgSQL, SQL in a string)
 * are invisible to the catalog and so are not checked at all.
 */
#include "preflight.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "strbuf.h"

/* ---- the SQL ------------------------------------------------------------ */

/*
 * REPEATABLE READ: every check below reads the same snapshot, so a DDL that
 * commits half way through cannot make two checks disagree.  READ ONLY: the
 * server itself guarantees that the preflight writes nothing.
 */
static const char SQL_BEGIN[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/* set_config(..., true) is SET LOCAL with the value as a parameter. */
static const char SQL_LOCK_TIMEOUT[] =
	"SELECT pg_catalog.set_config('lock_timeout', $1, true)";

/* Nothing to keep: ROLLBACK says so louder than COMMIT. */
static const char SQL_ROLLBACK[] = "ROLLBACK";

/*
 * Around a query whose error is a finding, not a failure: an error aborts
 * the whole transaction unless a savepoint catches it.
 */
static const char SQL_SAVEPOINT[] = "SAVEPOINT zdm_preflight";
static const char SQL_ROLLBACK_TO_SAVEPOINT[] =
	"ROLLBACK TO SAVEPOINT zdm_preflight";
static const char SQL_RELEASE_SAVEPOINT[] = "RELEASE SAVEPOINT zdm_preflight";

/* The number, for comparing; the text, for the message. */
static const char SQL_SERVER[] =
	"SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4,\n"
	"       pg_catalog.current_setting('server_version')";

/*
 * Expand creates new_version.schema (CREATE needs the database's CREATE
 * privilege), which must not exist yet.  $1 is the plan's schema name as
 * PostgreSQL stores it (the plan writes it unquoted), so it is compared to
 * nspname and quoted only for the message.
 */
static const char SQL_DATABASE[] =
	"SELECT pg_catalog.quote_ident(pg_catalog.current_database()),\n"
	"       pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE'),\n"
	"       pg_catalog.quote_ident(CURRENT_USER::pg_catalog.text),\n"
	"       pg_catalog.quote_ident($1::pg_catalog.text),\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_namespace AS n\n"
	"                WHERE n.nspname = $1::pg_catalog.text::pg_catalog.name)";

/*
 * A column whose default a change sets or drops ($2, plain, of table oid
 * $1): whether it is an identity or a generated column, which PostgreSQL
 * refuses a default on, and its type, to analyse the new default against.
 * No row: the column does not exist (reported with the change's reads).
 */
static const char SQL_DEFAULT_COLUMN[] =
	"SELECT a.attidentity <> '', a.attgenerated <> '',\n"
	"       pg_catalog.format_type(a.atttypid, a.atttypmod)\n"
	"  FROM pg_catalog.pg_attribute AS a\n"
	" WHERE a.attrelid = $1::pg_catalog.oid\n"
	"   AND a.attname = $2::pg_catalog.text::pg_catalog.name\n"
	"   AND a.attnum > 0 AND NOT a.attisdropped";

/*
 * Several schemas: the new version's search_path is every version schema,
 * then every schema, in the order the plan's tables first name them ($1,
 * the tables' quoted qualified names in plan order; $2, each one's new
 * name or ''), and it names tables without their schema.  A relation in an
 * earlier schema with the name the new version knows a later table by
 * would be found first by the old version (search_path "public, sales"),
 * while the new version finds the view until contract and the other
 * relation after it.  One row per such pair.  Indexes, TOAST tables and
 * composite types are not named in FROM, so they do not count.
 */
static const char SQL_SHADOWED[] =
	"WITH t AS (\n"
	"    SELECT u.ord, c.oid, c.relnamespace AS nsp,\n"
	"           coalesce(NULLIF(u.new_name, ''), c.relname::pg_catalog.text) AS known_as\n"
	"      FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),\n"
	"                      pg_catalog.unnest($2::pg_catalog.text[]))\n"
	"           WITH ORDINALITY AS u(tab, new_name, ord)\n"
	"      JOIN pg_catalog.pg_class AS c ON c.oid = pg_catalog.to_regclass(u.tab)),\n"
	"s AS (SELECT nsp, pg_catalog.min(ord) AS first FROM t GROUP BY nsp)\n"
	"SELECT t.oid::pg_catalog.regclass::pg_catalog.text,\n"
	"       pg_catalog.quote_ident(t.known_as),\n"
	"       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(o.relname),\n"
	"       pg_catalog.quote_ident(tn.nspname)\n"
	"  FROM t\n"
	"  JOIN s AS ts ON ts.nsp = t.nsp\n"
	"  JOIN s AS es ON es.first < ts.first\n"
	"  JOIN pg_catalog.pg_class AS o\n"
	"    ON o.relnamespace = es.nsp AND o.relname = t.known_as::pg_catalog.name\n"
	"   AND o.relkind NOT IN ('i', 'I', 't', 'c')\n"
	"  JOIN pg_catalog.pg_namespace AS n ON n.oid = o.relnamespace\n"
	"  JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.nsp\n"
	" ORDER BY t.ord, es.first";

/*
 * The table, by the plan's quoted qualified name: to_regclass parses the
 * quoting and returns NULL, not an error, when there is no such relation,
 * and unlike ::regclass takes no lock.  One row with everything the
 * table-level checks need, or no row.  pg_has_role(owner, 'USAGE') is
 * PostgreSQL's own ownership test (the owner or a member of the owning
 * role, or a superuser); FORCE ROW LEVEL SECURITY matters because the
 * backfill runs as the current user, and policies would hide rows from it.
 * reltuples is -1 until the table is first vacuumed or analyzed.
 */
static const char SQL_TABLE[] =
	"SELECT c.oid, c.relkind, c.relispartition, c.relname,\n"
	"       pg_catalog.quote_ident(n.nspname),\n"
	"       CASE WHEN c.reloftype <> 0\n"
	"            THEN pg_catalog.format_type(c.reloftype, NULL) END,\n"
	"       (SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', pn.nspname, p.relname),\n"
	"                                     ', ' ORDER BY pn.nspname, p.relname)\n"
	"          FROM pg_catalog.pg_inherits AS i\n"
	"          JOIN pg_catalog.pg_class AS p ON p.oid = i.inhparent\n"
	"          JOIN pg_catalog.pg_namespace AS pn ON pn.oid = p.relnamespace\n"
	"         WHERE i.inhrelid = c.oid),\n"
	"       (SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', pn.nspname, p.relname),\n"
	"                                     ', ' ORDER BY pn.nspname, p.relname)\n"
	"          FROM pg_catalog.pg_inherits AS i\n"
	"          JOIN pg_catalog.pg_class AS p ON p.oid = i.inhrelid\n"
	"          JOIN pg_catalog.pg_namespace AS pn ON pn.oid = p.relnamespace\n"
	"         WHERE i.inhparent = c.oid),\n"
	"       pg_catalog.pg_has_role(c.relowner, 'USAGE'),\n"
	"       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text),\n"
	"       pg_catalog.has_schema_privilege(c.relnamespace, 'CREATE'),\n"
	"       c.relrowsecurity AND c.relforcerowsecurity\n"
	"         AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r\n"
	"                          WHERE r.rolname = CURRENT_USER\n"
	"                            AND (r.rolsuper OR r.rolbypassrls)),\n"
	"       c.reltuples::pg_catalog.int8\n"
	"  FROM pg_catalog.pg_class AS c\n"
	"  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n"
	" WHERE c.oid = pg_catalog.to_regclass($1::pg_catalog.text)";

/*
 * Table, indexes and TOAST, for the report.  The only statement here that
 * locks anything (ACCESS SHARE, to open the files): it runs in a savepoint
 * under lock_timeout, so a table held by someone's ACCESS EXCLUSIVE lock
 * costs the size, not the preflight.
 */
static const char SQL_TABLE_SIZE[] =
	"SELECT pg_catalog.pg_size_pretty(pg_catalog.pg_total_relation_size($1::pg_catalog.oid))";

/*
 * Columns named zdm_*: the plan adds zdm_new_<column> and zdm_sync_pending,
 * and the new version's view hides every column matching '^zdm_' (the same
 * case-sensitive pattern as the view's DO block), so any such column would
 * clash or vanish from the new version.
 */
static const char SQL_RESERVED_COLUMNS[] =
	"SELECT 'column ' || pg_catalog.quote_ident(a.attname::pg_catalog.text)\n"
	"  FROM pg_catalog.pg_attribute AS a\n"
	" WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
	"   AND a.attname ~ '^zdm_'\n"
	" ORDER BY a.attnum";

/*
 * The other objects expand and verify create on the table: the two sync
 * triggers, zdm_nn_* check constraints (any zdm_* constraint is refused, as
 * the verify phase checks every one of them), and the sync function
 * <schema>.zdm_sync_<table>, whatever its arguments (a leftover with other
 * arguments is still zdm's name).
 */
static const char SQL_RESERVED_OBJECTS[] =
	"SELECT 'trigger ' || pg_catalog.quote_ident(t.tgname::pg_catalog.text)\n"
	"  FROM pg_catalog.pg_trigger AS t\n"
	" WHERE t.tgrelid = $1::pg_catalog.oid\n"
	"   AND t.tgname IN ('zdm_sync_insert', 'zdm_sync_update')\n"
	"UNION ALL\n"
	"SELECT 'constraint ' || pg_catalog.quote_ident(c.conname::pg_catalog.text)\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	" WHERE c.conrelid = $1::pg_catalog.oid AND c.conname ~ '^zdm_'\n"
	"UNION ALL\n"
	"SELECT 'function ' || pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,\n"
	"                                        pg_catalog.pg_get_function_identity_arguments(p.oid))\n"
	"  FROM pg_catalog.pg_class AS r\n"
	"  JOIN pg_catalog.pg_proc AS p ON p.pronamespace = r.relnamespace\n"
	"  JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace\n"
	" WHERE r.oid = $1::pg_catalog.oid\n"
	"   AND p.proname = ('zdm_sync_' || r.relname::pg_catalog.text)::pg_catalog.name\n"
	" ORDER BY 1";

/*
 * pg_publication_tables already resolves the three ways a table is
 * published (FOR TABLE, FOR TABLES IN SCHEMA, FOR ALL TABLES), including a
 * partition published through its root.
 */
static const char SQL_PUBLICATIONS[] =
	"SELECT pg_catalog.quote_ident(pt.pubname::pg_catalog.text)\n"
	"  FROM pg_catalog.pg_class AS c\n"
	"  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n"
	"  JOIN pg_catalog.pg_publication_tables AS pt\n"
	"    ON pt.schemaname = n.nspname AND pt.tablename = c.relname\n"
	" WHERE c.oid = $1::pg_catalog.oid\n"
	" ORDER BY pt.pubname";

/*
 * One column by its plain name ($2, as the plan writes it), always one row:
 * the quoted name for messages comes from the server (quote_ident knows the
 * keywords), and a missing column is a NULL attnum.  Everything on the
 * column itself that dropping it loses: the default or generation
 * expression, privileges, comment, and the settings ALTER COLUMN SET can
 * give it (an explicit COLLATE, a statistics target, options, storage or
 * compression that differ from the type's defaults).  attstattarget >= 0 is
 * "explicitly set" on 15 (-1 is the default) and on 17 (NULL is).
 */
static const char SQL_COLUMN[] =
	"SELECT pg_catalog.quote_ident($2::pg_catalog.text),\n"
	"       a.attnum,\n"
	"       pg_catalog.format_type(a.atttypid, a.atttypmod),\n"
	"       a.attnotnull, a.attidentity, a.attgenerated,\n"
	"       pg_catalog.pg_get_expr(d.adbin, d.adrelid),\n"
	"       CASE WHEN pg_catalog.cardinality(a.attacl) > 0\n"
	"            THEN a.attacl::pg_catalog.text END,\n"
	"       pg_catalog.col_description(a.attrelid, a.attnum) IS NOT NULL,\n"
	"       CASE WHEN a.attcollation <> t.typcollation\n"
	"            THEN pg_catalog.quote_ident(co.collname::pg_catalog.text) END,\n"
	"       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END,\n"
	"       pg_catalog.array_to_string(a.attoptions, ', '),\n"
	"       CASE WHEN a.attstorage <> t.typstorage\n"
	"            THEN CASE a.attstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external'\n"
	"                                   WHEN 'm' THEN 'main' ELSE 'extended' END END,\n"
	"       CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END\n"
	"  FROM (SELECT) AS one\n"
	"  LEFT JOIN pg_catalog.pg_attribute AS a\n"
	"    ON a.attrelid = $1::pg_catalog.oid\n"
	"   AND a.attname = $2::pg_catalog.text::pg_catalog.name\n"
	"   AND NOT a.attisdropped\n"
	"  LEFT JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid\n"
	"  LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation\n"
	"  LEFT JOIN pg_catalog.pg_attrdef AS d\n"
	"    ON d.adrelid = a.attrelid AND d.adnum = a.attnum";

/*
 * The new shape of table $1, in which a reverse using is analysed: the
 * table's own name (quoted, for the alias of a subquery, so that a column
 * qualified with it still resolves), and a select list of every column no
 * change replaces ($2), in attnum order, a renamed one ($3 -> $4) under its
 * new name, each quoted by the server.  The caller adds each created column
 * as a typed NULL.  The list is NULL when every column is replaced.
 */
static const char SQL_NEW_SHAPE[] =
	"SELECT pg_catalog.quote_ident(c.relname::pg_catalog.text),\n"
	"       (SELECT pg_catalog.string_agg(\n"
	"                   pg_catalog.quote_ident(a.attname::pg_catalog.text)\n"
	"                   || coalesce(' AS ' || pg_catalog.quote_ident(r.new_name), ''),\n"
	"                   ', ' ORDER BY a.attnum)\n"
	"          FROM pg_catalog.pg_attribute AS a\n"
	"          LEFT JOIN ROWS FROM (pg_catalog.unnest($3::pg_catalog.text[]),\n"
	"                               pg_catalog.unnest($4::pg_catalog.text[]))\n"
	"               AS r(old_name, new_name)\n"
	"            ON r.old_name = a.attname::pg_catalog.text\n"
	"         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
	"           AND a.attname::pg_catalog.text <> ALL ($2::pg_catalog.text[]))\n"
	"  FROM pg_catalog.pg_class AS c\n"
	" WHERE c.oid = $1::pg_catalog.oid";

/*
 * A new type, resolved as expand will resolve it (the session's
 * search_path).  to_regtype returns NULL for an unknown type but raises a
 * syntax error for a malformed one, so this runs in a savepoint.
 */
static const char SQL_TYPE_EXISTS[] =
	"SELECT pg_catalog.to_regtype($1::pg_catalog.text) IS NOT NULL";

/*
 * A constraint of table $1 by its plain name $2: the quoted name for
 * messages, and whether it exists.  Constraint names are unique per table
 * (per relation for ALTER TABLE ... RENAME CONSTRAINT and DROP CONSTRAINT),
 * which is what the plan's facts are about.
 */
static const char SQL_CONSTRAINT[] =
	"SELECT pg_catalog.quote_ident($2::pg_catalog.text),\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_constraint AS c\n"
	"                WHERE c.conrelid = $1::pg_catalog.oid\n"
	"                  AND c.conname = $2::pg_catalog.text::pg_catalog.name)";

/*
 * Renaming a constraint that owns an index (unique, primary key, exclusion)
 * renames the index with it, so the new name ($3) must also be free among
 * the relations of the index's schema: otherwise contract's RENAME
 * CONSTRAINT fails.  $1 the table's oid, $2 the constraint.  No row: the
 * constraint has no index (or does not exist, which SQL_CONSTRAINT says).
 */
static const char SQL_CONSTRAINT_INDEX_NAME[] =
	"SELECT pg_catalog.quote_ident($3::pg_catalog.text),\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_class AS r\n"
	"                WHERE r.relnamespace = i.relnamespace\n"
	"                  AND r.relname = $3::pg_catalog.text::pg_catalog.name)\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	"  JOIN pg_catalog.pg_class AS i ON i.oid = c.conindid\n"
	" WHERE c.conrelid = $1::pg_catalog.oid\n"
	"   AND c.conname = $2::pg_catalog.text::pg_catalog.name";

/*
 * A relation the plan creates, by its qualified name as the plan writes it
 * ("schema.name", quoted where needed): to_regclass parses the quoting,
 * takes no lock and gives NULL when nothing has the name.  It raises an
 * error on a malformed name, so this runs in a savepoint.  An index that
 * exists and is not valid is what a failed CREATE INDEX CONCURRENTLY leaves
 * behind, which the message says.
 */
static const char SQL_RELATION_EXISTS[] =
	"SELECT c.relkind, i.indisvalid\n"
	"  FROM pg_catalog.pg_class AS c\n"
	"  LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid\n"
	" WHERE c.oid = pg_catalog.to_regclass($1::pg_catalog.text)";

/*
 * A table a foreign key will reference ($1, quoted and qualified as the
 * plan writes it) and the columns it names ($2, a text[] of plain names;
 * '{}' for the primary key): PostgreSQL accepts a foreign key only onto a
 * primary key or a unique, immediate index without expressions or a
 * predicate whose key columns are exactly those, in any order.  One row,
 * always: whether the table exists (and is a table), and whether such a key
 * does.  Both sides are sorted bytewise, as in SQL_KEYS.
 */
static const char SQL_REFERENCED_KEY[] =
	"SELECT c.oid IS NOT NULL AND c.relkind IN ('r', 'p'),\n"
	"       EXISTS (\n"
	"         SELECT FROM pg_catalog.pg_index AS i\n"
	"          WHERE i.indrelid = c.oid\n"
	"            AND i.indisunique AND i.indimmediate AND i.indisvalid\n"
	"            AND i.indexprs IS NULL AND i.indpred IS NULL\n"
	"            AND CASE WHEN pg_catalog.cardinality($2::pg_catalog.text[]) = 0\n"
	"                     THEN i.indisprimary\n"
	"                     ELSE (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text\n"
	"                                  ORDER BY a.attname::pg_catalog.text COLLATE pg_catalog.\"C\")\n"
	"                             FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[])\n"
	"                                  WITH ORDINALITY AS k(attnum, n)\n"
	"                             JOIN pg_catalog.pg_attribute AS a\n"
	"                               ON a.attrelid = i.indrelid AND a.attnum = k.attnum\n"
	"                            WHERE k.n <= i.indnkeyatts)\n"
	"                          OPERATOR(pg_catalog.=)\n"
	"                          (SELECT pg_catalog.array_agg(DISTINCT u.x COLLATE pg_catalog.\"C\"\n"
	"                                  ORDER BY u.x COLLATE pg_catalog.\"C\")\n"
	"                             FROM pg_catalog.unnest($2::pg_catalog.text[]) AS u(x))\n"
	"                END)\n"
	"  FROM (SELECT) AS one\n"
	"  LEFT JOIN pg_catalog.pg_class AS c\n"
	"    ON c.oid = pg_catalog.to_regclass($1::pg_catalog.text)";

/*
 * A table's new name ($2, plain) in the table's own schema: a relation
 * there has it, or a type (the table's row type is renamed with it, and
 * PostgreSQL refuses a name a type already has).
 */
static const char SQL_TABLE_NAME_TAKEN[] =
	"SELECT pg_catalog.quote_ident($2::pg_catalog.text),\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_class AS o\n"
	"                WHERE o.relnamespace = r.relnamespace\n"
	"                  AND o.relname = $2::pg_catalog.text::pg_catalog.name)\n"
	"       OR EXISTS (SELECT FROM pg_catalog.pg_type AS t\n"
	"                   WHERE t.typnamespace = r.relnamespace\n"
	"                     AND t.typname = $2::pg_catalog.text::pg_catalog.name)\n"
	"  FROM pg_catalog.pg_class AS r\n"
	" WHERE r.oid = $1::pg_catalog.oid";

/*
 * The default of column $2 (plain) of table oid $1, as SQL text; no row
 * when it has none.  A change that replaces a column by one of its own
 * name and another type keeps it, cast (zdmc's replace.c), so preflight
 * analyses the cast.
 */
static const char SQL_KEPT_DEFAULT[] =
	"SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)\n"
	"  FROM pg_catalog.pg_attrdef AS d\n"
	"  JOIN pg_catalog.pg_attribute AS a\n"
	"    ON a.attrelid = d.adrelid AND a.attnum = d.adnum\n"
	" WHERE d.adrelid = $1::pg_catalog.oid AND a.attname = $2";

/*
 * An index the plan drops ($1, quoted and qualified): its kind ('i', or
 * 'I' for a partitioned index, which DROP INDEX CONCURRENTLY refuses) and
 * the constraints that depend on it (a primary key, unique or exclusion
 * constraint it backs, a foreign key that references its columns), which
 * make DROP INDEX fail: no row when nothing has the name.  to_regclass
 * raises an error on a malformed name: run in a savepoint.
 */
static const char SQL_INDEX_TO_DROP[] =
	"SELECT c.relkind,\n"
	"       (SELECT pg_catalog.string_agg(pg_catalog.format('constraint %I of %s',\n"
	"                 con.conname, con.conrelid::pg_catalog.regclass), ', '\n"
	"                 ORDER BY con.conname)\n"
	"          FROM pg_catalog.pg_constraint AS con\n"
	"         WHERE con.conindid = c.oid)\n"
	"  FROM pg_catalog.pg_class AS c\n"
	" WHERE c.oid = pg_catalog.to_regclass($1::pg_catalog.text)";

/*
 * An enum type a statement changes ($1, quoted and qualified): whether it
 * is an enum, and whether it has the labels $2 and $3 (NULL: not asked).
 * No row: nothing has the name.  to_regtype raises an error on a
 * malformed name: run in a savepoint.
 */
static const char SQL_ENUM_LABELS[] =
	"SELECT t.typtype = 'e',\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_enum AS e\n"
	"                WHERE e.enumtypid = t.oid AND e.enumlabel = $2),\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_enum AS e\n"
	"                WHERE e.enumtypid = t.oid AND e.enumlabel = $3)\n"
	"  FROM pg_catalog.pg_type AS t\n"
	" WHERE t.oid = pg_catalog.to_regtype($1::pg_catalog.text)";

/*
 * A table the plan creates ($1, quoted and qualified): whether its schema
 * exists, and whether a relation or type of its name is there already (a
 * table's row type has the table's name).
 */
/* A type the plan creates is checked the same way (a table's row type
 * takes a type's name). */
static const char SQL_NEW_TABLE[] =
	"SELECT n.oid IS NOT NULL,\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_class AS c\n"
	"                WHERE c.relnamespace = n.oid AND c.relname = p.id[2])\n"
	"       OR EXISTS (SELECT FROM pg_catalog.pg_type AS t\n"
	"                   WHERE t.typnamespace = n.oid AND t.typname = p.id[2])\n"
	"  FROM (SELECT pg_catalog.parse_ident($1::pg_catalog.text) AS id) AS p\n"
	"  LEFT JOIN pg_catalog.pg_namespace AS n ON n.nspname = p.id[1]";

/*
 * What outside table $1 depends on it, which DROP TABLE would refuse: a
 * foreign key of another table, a view or materialized view (their
 * rules), one row each, named for the message.
 */
static const char SQL_TABLE_DEPENDENTS[] =
	"SELECT 'foreign key ' || pg_catalog.quote_ident(c.conname)\n"
	"       || ' of table ' || c.conrelid::pg_catalog.regclass::pg_catalog.text\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	" WHERE c.contype = 'f' AND c.confrelid = $1::pg_catalog.oid\n"
	"   AND c.conrelid <> $1::pg_catalog.oid\n"
	"UNION ALL\n"
	"SELECT DISTINCT 'view ' || r.ev_class::pg_catalog.regclass::pg_catalog.text\n"
	"  FROM pg_catalog.pg_depend AS d\n"
	"  JOIN pg_catalog.pg_rewrite AS r ON r.oid = d.objid\n"
	" WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass\n"
	"   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"   AND d.refobjid = $1::pg_catalog.oid AND r.ev_class <> $1::pg_catalog.oid\n"
	"ORDER BY 1";

/*
 * Everything outside the column that depends on column $2 of table $1,
 * one row per object: what it is (kind and name, for the message), how it
 * depends (a verb), and an order.  Contract drops the column: what depends
 * on it automatically (indexes, CHECKs, generated columns, statistics
 * objects, owned sequences) silently goes with it, and what depends on it
 * normally (views, foreign keys, policies) makes the DROP fail after the
 * point of no return.  Both are refused.
 *
 * pg_depend is the source of truth for references inside expressions
 * (index expressions and predicates, CHECK, policies, view queries,
 * statistics expressions); indkey, conkey, confkey and stxkeys are read too,
 * for plain column references.  A generated column's expression depends on
 * the columns it reads as its pg_attrdef row (up to 16) or as the column
 * itself (later versions): both are looked for.  An index that implements a constraint is
 * reported as the constraint; an expression or a WHERE predicate of an
 * EXCLUDE constraint is recorded as a dependency of its index, not of the
 * constraint, so the constraint is also matched by its conindid.  The last branch catches any other dependent
 * the catalog knows (a BEGIN ATOMIC function body, ...) by its
 * pg_describe_object, so a new kind of object is refused, not missed.
 * Triggers and the column's own default are checked elsewhere.
 */
static const char SQL_COLUMN_DEPENDENTS[] =
	"WITH dep AS (\n"
	"    SELECT DISTINCT d.classid, d.objid, d.objsubid\n"
	"      FROM pg_catalog.pg_depend AS d\n"
	"     WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"       AND d.refobjid = $1::pg_catalog.oid\n"
	"       AND d.refobjsubid = $2::pg_catalog.int4\n"
	"       AND d.deptype <> 'i')\n"
	"SELECT 1, 'index ' || pg_catalog.quote_ident(ic.relname::pg_catalog.text), 'uses'\n"
	"  FROM pg_catalog.pg_index AS i\n"
	"  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid\n"
	" WHERE i.indrelid = $1::pg_catalog.oid\n"
	"   AND ($2::pg_catalog.int2 = ANY (i.indkey::pg_catalog.int2[])\n"
	"        OR i.indexrelid IN (SELECT objid FROM dep\n"
	"                             WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass))\n"
	"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c\n"
	"                    WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid\n"
	"                      AND c.contype IN ('p', 'u', 'x'))\n"
	"UNION ALL\n"
	"SELECT 2, CASE c.contype WHEN 'p' THEN 'primary key ' WHEN 'u' THEN 'unique constraint '\n"
	"                         WHEN 'c' THEN 'check constraint ' WHEN 'x' THEN 'exclusion constraint '\n"
	"                         ELSE 'foreign key ' END\n"
	"          || pg_catalog.quote_ident(c.conname::pg_catalog.text)\n"
	"          || CASE WHEN c.contype = 'f'\n"
	"                  THEN pg_catalog.format(' (to %I.%I)', rn.nspname, r.relname) ELSE '' END,\n"
	"       'uses'\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	"  LEFT JOIN pg_catalog.pg_class AS r ON r.oid = c.confrelid\n"
	"  LEFT JOIN pg_catalog.pg_namespace AS rn ON rn.oid = r.relnamespace\n"
	" WHERE c.conrelid = $1::pg_catalog.oid AND c.contype IN ('p', 'u', 'c', 'x', 'f')\n"
	"   AND ($2::pg_catalog.int2 = ANY (c.conkey)\n"
	"        OR c.oid IN (SELECT objid FROM dep\n"
	"                      WHERE classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass)\n"
	"        OR (c.contype IN ('p', 'u', 'x')\n"
	"            AND c.conindid IN (SELECT objid FROM dep\n"
	"                                WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass)))\n"
	"UNION ALL\n"
	"SELECT 3, pg_catalog.format('foreign key %I on %I.%I', c.conname, rn.nspname, r.relname),\n"
	"       'references'\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	"  JOIN pg_catalog.pg_class AS r ON r.oid = c.conrelid\n"
	"  JOIN pg_catalog.pg_namespace AS rn ON rn.oid = r.relnamespace\n"
	" WHERE c.contype = 'f' AND c.confrelid = $1::pg_catalog.oid\n"
	"   AND c.conrelid <> $1::pg_catalog.oid\n"
	"   AND $2::pg_catalog.int2 = ANY (c.confkey)\n"
	"UNION ALL\n"
	"SELECT 4, 'generated column ' || pg_catalog.quote_ident(a.attname::pg_catalog.text),\n"
	"       'is computed from'\n"
	"  FROM pg_catalog.pg_attribute AS a\n"
	" WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
	"   AND a.attgenerated <> ''\n"
	"   AND (EXISTS (SELECT FROM dep\n"
	"                  JOIN pg_catalog.pg_attrdef AS ad ON ad.oid = dep.objid\n"
	"                 WHERE dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass\n"
	"                   AND ad.adrelid = a.attrelid AND ad.adnum = a.attnum\n"
	"                   AND ad.adnum <> $2::pg_catalog.int2)\n"
	"        OR EXISTS (SELECT FROM dep\n"
	"                    WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"                      AND dep.objid = a.attrelid AND dep.objsubid = a.attnum))\n"
	"UNION ALL\n"
	"SELECT 5, CASE WHEN rw.rulename <> '_RETURN'\n"
	"               THEN pg_catalog.format('rule %I on %I.%I', rw.rulename, vn.nspname, v.relname)\n"
	"               WHEN v.relkind = 'm'\n"
	"               THEN pg_catalog.format('materialized view %I.%I', vn.nspname, v.relname)\n"
	"               ELSE pg_catalog.format('view %I.%I', vn.nspname, v.relname) END,\n"
	"       'uses'\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_rewrite AS rw ON rw.oid = dep.objid\n"
	"  JOIN pg_catalog.pg_class AS v ON v.oid = rw.ev_class\n"
	"  JOIN pg_catalog.pg_namespace AS vn ON vn.oid = v.relnamespace\n"
	" WHERE dep.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass\n"
	"UNION ALL\n"
	"SELECT 6, pg_catalog.format('row-level security policy %I on %I.%I',\n"
	"                            pol.polname, pn.nspname, p.relname),\n"
	"       'uses'\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_policy AS pol ON pol.oid = dep.objid\n"
	"  JOIN pg_catalog.pg_class AS p ON p.oid = pol.polrelid\n"
	"  JOIN pg_catalog.pg_namespace AS pn ON pn.oid = p.relnamespace\n"
	" WHERE dep.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass\n"
	"UNION ALL\n"
	"SELECT 7, pg_catalog.format('statistics object %I.%I', sn.nspname, s.stxname), 'uses'\n"
	"  FROM pg_catalog.pg_statistic_ext AS s\n"
	"  JOIN pg_catalog.pg_namespace AS sn ON sn.oid = s.stxnamespace\n"
	" WHERE s.stxrelid = $1::pg_catalog.oid\n"
	"   AND ($2::pg_catalog.int2 = ANY (s.stxkeys::pg_catalog.int2[])\n"
	"        OR s.oid IN (SELECT objid FROM dep\n"
	"                      WHERE classid = 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass))\n"
	"UNION ALL\n"
	"SELECT 8, pg_catalog.format('sequence %I.%I', qn.nspname, q.relname), 'is owned by'\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_class AS q ON q.oid = dep.objid\n"
	"  JOIN pg_catalog.pg_namespace AS qn ON qn.oid = q.relnamespace\n"
	" WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND q.relkind = 'S'\n"
	"UNION ALL\n"
	"SELECT 9, pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid), 'depends on'\n"
	"  FROM dep\n"
	" WHERE dep.classid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_constraint'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_rewrite'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_policy'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_statistic_ext'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_trigger'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_attrdef'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_publication_rel'::pg_catalog.regclass)\n"
	" ORDER BY 1, 2";

/*
 * What depends on column $2 of table $1, for a column the migration drops
 * (drop column): one row per object, its kind and name, and why it is
 * refused, or NULL when it goes with the column at contract as the drop
 * intends.  PostgreSQL's DROP COLUMN drops every index, CHECK and
 * statistics object that reads the column, even one that also reads
 * others, silently; and fails on views, foreign keys of other tables,
 * policies, generated columns and triggers.  So what reads this column
 * alone goes (an index with its UNIQUE or EXCLUDE constraint, a CHECK, a
 * foreign key from it, a statistics object, a sequence it owns), and
 * everything else is refused: the primary key (a table's key is dropped
 * on purpose), the replica identity's index, whatever also reads another
 * column, and what PostgreSQL itself would refuse.  "Alone" is read from
 * the object's own column list (indkey, conkey, stxkeys) and from every
 * pg_depend row it has on the table's columns (expressions, predicates,
 * INCLUDE columns).  The last branch catches any other dependent the
 * catalog knows, by its pg_describe_object, so a new kind of object is
 * refused, not missed.  The column's own default goes with it and is not
 * listed.
 */
static const char SQL_DROPPED_COLUMN_DEPENDENTS[] =
	"WITH dep AS (\n"
	"    SELECT DISTINCT d.classid, d.objid, d.objsubid\n"
	"      FROM pg_catalog.pg_depend AS d\n"
	"     WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"       AND d.refobjid = $1::pg_catalog.oid\n"
	"       AND d.refobjsubid = $2::pg_catalog.int4\n"
	"       AND d.deptype <> 'i'),\n"
	"reads AS (\n"
	"    SELECT d.classid, d.objid,\n"
	"           pg_catalog.array_agg(DISTINCT d.refobjsubid::pg_catalog.int2) AS cols\n"
	"      FROM pg_catalog.pg_depend AS d\n"
	"     WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"       AND d.refobjid = $1::pg_catalog.oid\n"
	"       AND d.refobjsubid > 0\n"
	"     GROUP BY d.classid, d.objid),\n"
	"idx AS (\n"
	"    SELECT i.indexrelid, i.indisreplident, ic.relname,\n"
	"           (SELECT pg_catalog.array_agg(DISTINCT k)\n"
	"              FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[] || coalesce(r.cols, '{}')) AS k\n"
	"             WHERE k <> 0) AS cols\n"
	"      FROM pg_catalog.pg_index AS i\n"
	"      JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid\n"
	"      LEFT JOIN reads AS r\n"
	"        ON r.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.objid = i.indexrelid\n"
	"     WHERE i.indrelid = $1::pg_catalog.oid)\n"
	"SELECT 1, 'index ' || pg_catalog.quote_ident(idx.relname::pg_catalog.text),\n"
	"       CASE WHEN idx.indisreplident THEN 'is the index of the table''s replica identity'\n"
	"            WHEN idx.cols <> ARRAY[$2::pg_catalog.int2] THEN 'also reads another column, and PostgreSQL would drop all of it'\n"
	"       END\n"
	"  FROM idx\n"
	" WHERE $2::pg_catalog.int2 = ANY (idx.cols)\n"
	"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c\n"
	"                    WHERE c.conindid = idx.indexrelid AND c.conrelid = $1::pg_catalog.oid\n"
	"                      AND c.contype IN ('p', 'u', 'x'))\n"
	"UNION ALL\n"
	"SELECT 2, CASE c.contype WHEN 'p' THEN 'primary key ' WHEN 'u' THEN 'unique constraint '\n"
	"                         WHEN 'c' THEN 'check constraint ' WHEN 'x' THEN 'exclusion constraint '\n"
	"                         ELSE 'foreign key ' END\n"
	"          || pg_catalog.quote_ident(c.conname::pg_catalog.text)\n"
	"          || CASE WHEN c.contype = 'f'\n"
	"                  THEN pg_catalog.format(' (to %I.%I)', rn.nspname, r.relname) ELSE '' END,\n"
	"       CASE WHEN c.contype = 'p' THEN 'is the table''s primary key: drop a key on purpose, in a migration of its own'\n"
	"            WHEN idx.indisreplident THEN 'is the index of the table''s replica identity'\n"
	"            WHEN (SELECT pg_catalog.array_agg(DISTINCT k)\n"
	"                    FROM pg_catalog.unnest(c.conkey || coalesce(rc.cols, '{}') || coalesce(idx.cols, '{}')) AS k)\n"
	"                 <> ARRAY[$2::pg_catalog.int2]\n"
	"            THEN 'also reads another column, and PostgreSQL would drop all of it'\n"
	"       END\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	"  LEFT JOIN pg_catalog.pg_class AS r ON r.oid = c.confrelid\n"
	"  LEFT JOIN pg_catalog.pg_namespace AS rn ON rn.oid = r.relnamespace\n"
	"  LEFT JOIN reads AS rc\n"
	"    ON rc.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND rc.objid = c.oid\n"
	"  LEFT JOIN idx ON idx.indexrelid = c.conindid AND c.contype IN ('p', 'u', 'x')\n"
	" WHERE c.conrelid = $1::pg_catalog.oid AND c.contype IN ('p', 'u', 'c', 'x', 'f')\n"
	"   AND ($2::pg_catalog.int2 = ANY (c.conkey) OR $2::pg_catalog.int2 = ANY (rc.cols)\n"
	"        OR $2::pg_catalog.int2 = ANY (idx.cols))\n"
	"UNION ALL\n"
	"SELECT 3, pg_catalog.format('foreign key %I on %I.%I', c.conname, rn.nspname, r.relname),\n"
	"       'references it'\n"
	"  FROM pg_catalog.pg_constraint AS c\n"
	"  JOIN pg_catalog.pg_class AS r ON r.oid = c.conrelid\n"
	"  JOIN pg_catalog.pg_namespace AS rn ON rn.oid = r.relnamespace\n"
	" WHERE c.contype = 'f' AND c.confrelid = $1::pg_catalog.oid\n"
	"   AND $2::pg_catalog.int2 = ANY (c.confkey)\n"
	"UNION ALL\n"
	"SELECT 4, 'generated column ' || pg_catalog.quote_ident(a.attname::pg_catalog.text),\n"
	"       'is computed from it'\n"
	"  FROM pg_catalog.pg_attribute AS a\n"
	" WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
	"   AND a.attgenerated <> '' AND a.attnum <> $2::pg_catalog.int2\n"
	"   AND (EXISTS (SELECT FROM dep\n"
	"                  JOIN pg_catalog.pg_attrdef AS ad ON ad.oid = dep.objid\n"
	"                 WHERE dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass\n"
	"                   AND ad.adrelid = a.attrelid AND ad.adnum = a.attnum)\n"
	"        OR EXISTS (SELECT FROM dep\n"
	"                    WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"                      AND dep.objid = a.attrelid AND dep.objsubid = a.attnum))\n"
	"UNION ALL\n"
	"SELECT 5, CASE WHEN rw.rulename <> '_RETURN'\n"
	"               THEN pg_catalog.format('rule %I on %I.%I', rw.rulename, vn.nspname, v.relname)\n"
	"               WHEN v.relkind = 'm'\n"
	"               THEN pg_catalog.format('materialized view %I.%I', vn.nspname, v.relname)\n"
	"               ELSE pg_catalog.format('view %I.%I', vn.nspname, v.relname) END,\n"
	"       'uses it'\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_rewrite AS rw ON rw.oid = dep.objid\n"
	"  JOIN pg_catalog.pg_class AS v ON v.oid = rw.ev_class\n"
	"  JOIN pg_catalog.pg_namespace AS vn ON vn.oid = v.relnamespace\n"
	" WHERE dep.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass\n"
	"UNION ALL\n"
	"SELECT 6, pg_catalog.format('row-level security policy %I on %I.%I',\n"
	"                            pol.polname, pn.nspname, p.relname),\n"
	"       'uses it'\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_policy AS pol ON pol.oid = dep.objid\n"
	"  JOIN pg_catalog.pg_class AS p ON p.oid = pol.polrelid\n"
	"  JOIN pg_catalog.pg_namespace AS pn ON pn.oid = p.relnamespace\n"
	" WHERE dep.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass\n"
	"UNION ALL\n"
	"SELECT 7, pg_catalog.format('trigger %I', t.tgname), 'depends on it (UPDATE OF or WHEN)'\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_trigger AS t ON t.oid = dep.objid\n"
	" WHERE dep.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass\n"
	"UNION ALL\n"
	"SELECT 8, pg_catalog.format('statistics object %I.%I', sn.nspname, s.stxname),\n"
	"       CASE WHEN (SELECT pg_catalog.array_agg(DISTINCT k)\n"
	"                    FROM pg_catalog.unnest(s.stxkeys::pg_catalog.int2[] || coalesce(rs.cols, '{}')) AS k)\n"
	"                 <> ARRAY[$2::pg_catalog.int2]\n"
	"            THEN 'also reads another column, and PostgreSQL would drop all of it' END\n"
	"  FROM pg_catalog.pg_statistic_ext AS s\n"
	"  JOIN pg_catalog.pg_namespace AS sn ON sn.oid = s.stxnamespace\n"
	"  LEFT JOIN reads AS rs\n"
	"    ON rs.classid = 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass AND rs.objid = s.oid\n"
	" WHERE s.stxrelid = $1::pg_catalog.oid\n"
	"   AND ($2::pg_catalog.int2 = ANY (s.stxkeys::pg_catalog.int2[]) OR $2::pg_catalog.int2 = ANY (rs.cols))\n"
	"UNION ALL\n"
	"SELECT 9, pg_catalog.format('sequence %I.%I', qn.nspname, q.relname), NULL\n"
	"  FROM dep\n"
	"  JOIN pg_catalog.pg_class AS q ON q.oid = dep.objid\n"
	"  JOIN pg_catalog.pg_namespace AS qn ON qn.oid = q.relnamespace\n"
	" WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND q.relkind = 'S'\n"
	"UNION ALL\n"
	"SELECT 10, pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid), 'depends on it'\n"
	"  FROM dep\n"
	" WHERE dep.classid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_constraint'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_rewrite'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_policy'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_statistic_ext'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_trigger'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_attrdef'::pg_catalog.regclass,\n"
	"                           'pg_catalog.pg_publication_rel'::pg_catalog.regclass)\n"
	" ORDER BY 1, 2";

/*
 * What requires column $2 (attnum) of table $1 to stay NOT NULL: the
 * primary key and the replica identity's index (PostgreSQL refuses DROP NOT
 * NULL on their columns).
 */
static const char SQL_NOT_NULL_REQUIRED[] =
	"SELECT 'primary key ' || pg_catalog.quote_ident(ic.relname::pg_catalog.text)\n"
	"  FROM pg_catalog.pg_index AS i\n"
	"  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid\n"
	" WHERE i.indrelid = $1::pg_catalog.oid AND i.indisprimary\n"
	"   AND $2::pg_catalog.int2 = ANY (i.indkey::pg_catalog.int2[])\n"
	"UNION ALL\n"
	"SELECT 'index ' || pg_catalog.quote_ident(ic.relname::pg_catalog.text)\n"
	"       || ' of the replica identity'\n"
	"  FROM pg_catalog.pg_index AS i\n"
	"  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid\n"
	" WHERE i.indrelid = $1::pg_catalog.oid AND i.indisreplident\n"
	"   AND $2::pg_catalog.int2 = ANY (i.indkey::pg_catalog.int2[])";

/*
 * User triggers on the table ($2: the attnums the migration replaces, as
 * an int2[] literal).  Internal triggers (foreign keys' RI triggers) are
 * the constraints' business; zdm_sync_* are reported as reserved names.
 * The second column names the replaced columns in the trigger's UPDATE OF
 * list, the fourth those its WHEN clause reads (its pg_depend rows, which
 * cover both): such a trigger depends on the column and is refused even
 * when disabled, since DROP COLUMN would fail on it.
 */
static const char SQL_TRIGGERS[] =
	"SELECT pg_catalog.quote_ident(t.tgname::pg_catalog.text),\n"
	"       (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname::pg_catalog.text),\n"
	"                                     ', ' ORDER BY a.attnum)\n"
	"          FROM pg_catalog.pg_attribute AS a\n"
	"         WHERE a.attrelid = t.tgrelid\n"
	"           AND a.attnum = ANY (t.tgattr::pg_catalog.int2[])\n"
	"           AND a.attnum = ANY ($2::pg_catalog.int2[])),\n"
	"       t.tgenabled = 'D',\n"
	"       (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname::pg_catalog.text),\n"
	"                                     ', ' ORDER BY a.attnum)\n"
	"          FROM pg_catalog.pg_attribute AS a\n"
	"         WHERE a.attrelid = t.tgrelid\n"
	"           AND a.attnum = ANY ($2::pg_catalog.int2[])\n"
	"           AND EXISTS (SELECT FROM pg_catalog.pg_depend AS d\n"
	"                        WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass\n"
	"                          AND d.objid = t.oid\n"
	"                          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass\n"
	"                          AND d.refobjid = t.tgrelid\n"
	"                          AND d.refobjsubid = a.attnum))\n"
	"  FROM pg_catalog.pg_trigger AS t\n"
	" WHERE t.tgrelid = $1::pg_catalog.oid AND NOT t.tgisinternal\n"
	"   AND t.tgname NOT IN ('zdm_sync_insert', 'zdm_sync_update')\n"
	" ORDER BY t.tgname";

/*
 * Rewrite rules that fire on writes to the table (ev_type '1' is ON SELECT,
 * a view's _RETURN, and a table has none): the backfill's UPDATEs fire an
 * ON UPDATE rule once per row, and a DO INSTEAD rule makes them do
 * something else or nothing.  A disabled rule fires for no one.
 */
static const char SQL_RULES[] =
	"SELECT pg_catalog.quote_ident(rw.rulename::pg_catalog.text),\n"
	"       CASE rw.ev_type WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT'\n"
	"                       ELSE 'DELETE' END\n"
	"  FROM pg_catalog.pg_rewrite AS rw\n"
	" WHERE rw.ev_class = $1::pg_catalog.oid AND rw.ev_type <> '1'\n"
	"   AND rw.ev_enabled <> 'D'\n"
	" ORDER BY rw.rulename";

/*
 * Columns elsewhere whose type is the table's row type or an array of it:
 * PostgreSQL refuses ALTER TABLE ... ADD COLUMN with a default, or a type
 * change, on such a table ("cannot alter table ... because column ... uses
 * its row type"), so expand would fail.  Only tables and materialized
 * views store the values; a view's column of that type does not count.
 */
static const char SQL_ROW_TYPE_USERS[] =
	"SELECT pg_catalog.format('%I.%I.%I', n.nspname, c.relname, a.attname),\n"
	"       a.atttypid <> t.reltype\n"
	"  FROM pg_catalog.pg_class AS t\n"
	"  JOIN pg_catalog.pg_type AS ty ON ty.oid = t.reltype\n"
	"  JOIN pg_catalog.pg_attribute AS a ON a.atttypid IN (ty.oid, ty.typarray)\n"
	"  JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid\n"
	"  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n"
	" WHERE t.oid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
	"   AND c.relkind IN ('r', 'm', 'p')\n"
	" ORDER BY 1";

/*
 * Keys that identify a row, best first: the primary key, then unique
 * indexes that are valid, plain (no expression, no predicate: an expression
 * key cannot be compared with a row's columns, a partial index does not
 * cover every row) and over NOT NULL columns only (NULLs are never equal,
 * so they identify nothing), fewest columns first.  Only the key columns
 * count (indkey holds INCLUDE columns after indnkeyatts; cast to int2[] it
 * starts at index 0).  The fourth column says whether the key uses a column
 * the migration replaces ($2), which would not survive contract.  The fifth
 * whether its columns are exactly $3 (a text[] of plain names, in any
 * order; '{}' when there is none), the key a cdc plan names rows by: both
 * sides sorted bytewise, so the comparison ignores order and collation.
 */
static const char SQL_KEYS[] =
	"SELECT pg_catalog.quote_ident(ic.relname::pg_catalog.text),\n"
	"       i.indisprimary,\n"
	"       (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname::pg_catalog.text),\n"
	"                                     ', ' ORDER BY k.n)\n"
	"          FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)\n"
	"          JOIN pg_catalog.pg_attribute AS a\n"
	"            ON a.attrelid = i.indrelid AND a.attnum = k.attnum\n"
	"         WHERE k.n <= i.indnkeyatts),\n"
	"       (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1]\n"
	"         OPERATOR(pg_catalog.&&) $2::pg_catalog.int2[],\n"
	"       (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text\n"
	"                                    ORDER BY a.attname::pg_catalog.text COLLATE pg_catalog.\"C\")\n"
	"          FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)\n"
	"          JOIN pg_catalog.pg_attribute AS a\n"
	"            ON a.attrelid = i.indrelid AND a.attnum = k.attnum\n"
	"         WHERE k.n <= i.indnkeyatts)\n"
	"         OPERATOR(pg_catalog.=)\n"
	"       (SELECT pg_catalog.array_agg(DISTINCT u.x COLLATE pg_catalog.\"C\"\n"
	"                                    ORDER BY u.x COLLATE pg_catalog.\"C\")\n"
	"          FROM pg_catalog.unnest($3::pg_catalog.text[]) AS u(x))\n"
	"  FROM pg_catalog.pg_index AS i\n"
	"  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid\n"
	" WHERE i.indrelid = $1::pg_catalog.oid\n"
	"   AND i.indisunique AND i.indisvalid AND i.indisready AND i.indislive\n"
	"   AND i.indexprs IS NULL AND i.indpred IS NULL\n"
	"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a\n"
	"                    WHERE a.attrelid = i.indrelid\n"
	"                      AND a.attnum = ANY ((i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1])\n"
	"                      AND NOT a.attnotnull)\n"
	" ORDER BY i.indisprimary DESC, i.indnkeyatts, ic.relname";

/*
 * What a native cdc plan needs of the server and of the current user, in
 * one row.  wal_level: a logical slot needs logical.  The slot: creating
 * (and at contract dropping) one takes superuser or the REPLICATION
 * attribute of the role itself (has_rolreplication does not look at
 * membership), and zdm sync's walsender connection needs the same.  The
 * origin: pg_replication_origin_create, _session_setup (zdm sync marks its
 * own writes with it) and _drop (contract, rollback) are revoked from
 * PUBLIC, so they run for a superuser or for whoever was granted EXECUTE;
 * has_function_privilege says yes for a superuser.  The counts: expand
 * creates one slot and zdm sync holds one walsender, so both need a free
 * place; every slot counts against max_replication_slots, in use or not.
 * pg_stat_get_wal_senders() lists every walsender to everyone (details are
 * hidden, the rows are not), unlike pg_stat_activity's backend_type.
 */
static const char SQL_CDC_SERVER[] =
	"SELECT pg_catalog.current_setting('wal_level'),\n"
	"       r.rolsuper OR r.rolreplication,\n"
	"       pg_catalog.has_function_privilege(\n"
	"           'pg_catalog.pg_replication_origin_create(pg_catalog.text)', 'EXECUTE'),\n"
	"       pg_catalog.has_function_privilege(\n"
	"           'pg_catalog.pg_replication_origin_session_setup(pg_catalog.text)', 'EXECUTE'),\n"
	"       pg_catalog.has_function_privilege(\n"
	"           'pg_catalog.pg_replication_origin_drop(pg_catalog.text)', 'EXECUTE'),\n"
	"       pg_catalog.current_setting('max_replication_slots')::pg_catalog.int4,\n"
	"       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots),\n"
	"       pg_catalog.current_setting('max_wal_senders')::pg_catalog.int4,\n"
	"       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_get_wal_senders())\n"
	"  FROM pg_catalog.pg_roles AS r\n"
	" WHERE r.rolname = CURRENT_USER";

/*
 * The slot ($1), publication ($2) and origin ($3) a native plan creates,
 * one row each when it exists already.  Slots and origins are the
 * cluster's, publications the database's.  A slot keeps WAL from its
 * restart_lsn on until it is dropped, so the amount it holds back goes in
 * the last column (NULL on a standby, where pg_current_wal_lsn fails, and
 * for a slot that reserves nothing).  pg_replication_origin is readable by
 * PUBLIC, unlike pg_replication_origin_oid().  The names for the advice
 * come quoted from the server: a literal for the functions, an identifier
 * for DROP PUBLICATION.
 */
static const char SQL_CDC_LEFTOVERS[] =
	"SELECT 1, pg_catalog.quote_ident(s.slot_name::pg_catalog.text),\n"
	"       pg_catalog.quote_literal(s.slot_name::pg_catalog.text),\n"
	"       s.slot_type, pg_catalog.quote_ident(s.database::pg_catalog.text), s.active,\n"
	"       CASE WHEN NOT pg_catalog.pg_is_in_recovery()\n"
	"            THEN pg_catalog.pg_size_pretty(pg_catalog.pg_wal_lsn_diff(\n"
	"                     pg_catalog.pg_current_wal_lsn(), s.restart_lsn)) END\n"
	"  FROM pg_catalog.pg_replication_slots AS s\n"
	" WHERE s.slot_name = $1::pg_catalog.text::pg_catalog.name\n"
	"UNION ALL\n"
	"SELECT 2, pg_catalog.quote_ident(p.pubname::pg_catalog.text),\n"
	"       pg_catalog.quote_ident(p.pubname::pg_catalog.text), NULL, NULL, NULL, NULL\n"
	"  FROM pg_catalog.pg_publication AS p\n"
	" WHERE p.pubname = $2::pg_catalog.text::pg_catalog.name\n"
	"UNION ALL\n"
	"SELECT 3, pg_catalog.quote_ident(o.roname),\n"
	"       pg_catalog.quote_literal(o.roname), NULL, NULL, NULL, NULL\n"
	"  FROM pg_catalog.pg_replication_origin AS o\n"
	" WHERE o.roname = $3::pg_catalog.text\n"
	" ORDER BY 1";

/*
 * The columns of a cdc plan's key ($2, a text[] of plain names), in the
 * plan's order: the name quoted by the server, and whether the table has
 * it.  The uniqueness of the whole key is SQL_KEYS' fifth column.
 */
static const char SQL_CDC_KEY_COLUMNS[] =
	"SELECT pg_catalog.quote_ident(k.name),\n"
	"       EXISTS (SELECT FROM pg_catalog.pg_attribute AS a\n"
	"                WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0\n"
	"                  AND NOT a.attisdropped\n"
	"                  AND a.attname = k.name::pg_catalog.name)\n"
	"  FROM pg_catalog.unnest($2::pg_catalog.text[]) WITH ORDINALITY AS k(name, n)\n"
	" ORDER BY k.n";

/*
 * Whether a type has equality the way the sync's statements need it: they
 * find the row a change event describes by "column IS NOT DISTINCT FROM
 * $n", which fails to plan without an = operator (json, point, xml), and
 * an = that belongs to no default btree or hash operator class need not be
 * equality at all (box's compares areas).  SELECT DISTINCT asks the
 * server's type cache for exactly that operator class (through a domain
 * to its base type, and into the elements of arrays, composites and
 * ranges) and refuses the type otherwise ("could not identify an equality
 * operator", SQLSTATE 42883) while being parsed, so it is only prepared,
 * never run, and touches no table.  %s: the type, as format_type or the
 * plan writes it.
 */
static const char SQL_CDC_EQUALITY_FMT[] = "SELECT DISTINCT NULL::%s";
#define ZDM_SQLSTATE_UNDEFINED_FUNCTION "42883"
#define ZDM_SQLSTATE_UNDEFINED_OBJECT "42704"

/* ---- reporting ---------------------------------------------------------- */

typedef struct preflight {
	PGconn *conn;
	const zdm_plan *plan;
	FILE *report;
	zdm_error *err;
	int problems;
	char user[256]; /* the current user, quoted, for messages */
} preflight;

static void report_problem(preflight *pf, const char *object, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));
static void report_hint(preflight *pf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report_info(preflight *pf, const char *object, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "zdm: preflight: <object>: <problem>", counted. */
static void
report_problem(preflight *pf, const char *object, const char *fmt, ...)
{
	va_list ap;

	fprintf(pf->report, "zdm: preflight: %s: ", object);
	va_start(ap, fmt);
	vfprintf(pf->report, fmt, ap);
	va_end(ap);
	fputc('\n', pf->report);
	pf->problems++;
}

/* "HINT: ...", after the problem(s) it is about. */
static void
report_hint(preflight *pf, const char *fmt, ...)
{
	va_list ap;

	fputs("HINT: ", pf->report);
	va_start(ap, fmt);
	vfprintf(pf->report, fmt, ap);
	va_end(ap);
	fputc('\n', pf->report);
}

/* "zdm: preflight: info: <object>: <fact>", not a problem. */
static void
report_info(preflight *pf, const char *object, const char *fmt, ...)
{
	va_list ap;

	fprintf(pf->report, "zdm: preflight: info: %s: ", object);
	va_start(ap, fmt);
	vfprintf(pf->report, fmt, ap);
	va_end(ap);
	fputc('\n', pf->report);
}

/* ---- queries ------------------------------------------------------------ */

static int
query(preflight *pf, const char *sql, int nparams, const char *const *params,
      PGresult **res)
{
	return zdm_conn_query(pf->conn, sql, nparams, params, res, pf->err);
}

/* The value, or NULL for SQL NULL. */
static const char *
value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static bool
value_true(const PGresult *res, int row, int col)
{
	const char *v = value(res, row, col);

	return v && strcmp(v, "t") == 0;
}

/*
 * A query whose failure is a finding, not the end of the preflight (a
 * malformed type name, a lock timeout): it runs in a savepoint, and on
 * failure *res is NULL, the savepoint is rolled back and the server's
 * message is copied to why.  Returns -1 only when the savepoint itself
 * fails.
 */
static int
query_guarded(preflight *pf, const char *sql, int nparams,
              const char *const *params, PGresult **res, char *why,
              size_t whylen)
{
	zdm_error qerr;

	*res = NULL;
	if (zdm_conn_exec(pf->conn, SQL_SAVEPOINT, pf->err) < 0)
		return -1;
	if (zdm_conn_query(pf->conn, sql, nparams, params, res, &qerr) < 0) {
		size_t n = strlen(qerr.message);

		/* cut to fit: a finding's reason, not worth -Wformat-truncation */
		if (n >= whylen)
			n = whylen - 1;
		memcpy(why, qerr.message, n);
		why[n] = '\0';
		return zdm_conn_exec(pf->conn, SQL_ROLLBACK_TO_SAVEPOINT,
		                     pf->err);
	}
	if (zdm_conn_exec(pf->conn, SQL_RELEASE_SAVEPOINT, pf->err) < 0) {
		PQclear(*res);
		*res = NULL;
		return -1;
	}
	return 0;
}

/* ---- the checks --------------------------------------------------------- */

/* What the checks of one table share. */
typedef struct table_check {
	const zdm_table_info *info;
	char oid[16];
	/* a change replaces a column or fills a new one from the old shape:
	 * the table gets a sync trigger and a backfill */
	bool has_replaced;
	char replaced[512]; /* int2[] literal of the replaced attnums */
	char removed[512];  /* the same with the dropped ones: what no key
	                     * that must survive the migration may use */
	/* cdc plans: the table's item of cdc.tables, else NULL */
	const zdm_cdc_table *cdc;
	char *cdc_key; /* its key as a text[] literal (malloc) */
	char cdc_key_shown
		[512];       /* the same, quoted by the server, for messages */
	bool cdc_key_exists; /* every column of it exists */
} table_check;

/* Does the change rewrite rows: a replaced column, or a new one with a
 * value from the old shape (the backfill fills it, the trigger syncs it). */
static bool
change_replaces(const zdm_change *c)
{
	if (c->nreplaces > 0 || c->nreverse > 0)
		return true;
	for (size_t i = 0; i < c->ncreates; i++)
		if (c->creates[i].using)
			return true;
	return false;
}

static bool
names_contain(char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* The column of the change's creates[] named name, or NULL. */
static const zdm_created_column *
change_created(const zdm_change *c, const char *name)
{
	for (size_t i = 0; i < c->ncreates; i++)
		if (strcmp(c->creates[i].column, name) == 0)
			return &c->creates[i];
	return NULL;
}

/*
 * Does some change of the table free the column name: replace it (it is
 * dropped at contract, and the new column takes its name then) or rename
 * it away?
 */
static bool
table_frees_name(const zdm_table_info *info, const char *name)
{
	for (size_t i = 0; i < info->nchanges; i++) {
		const zdm_change *c = &info->changes[i];

		if (names_contain(c->replaces, c->nreplaces, name))
			return true;
		for (size_t k = 0; k < c->nrenames; k++)
			if (strcmp(c->renames[k].column, name) == 0)
				return true;
	}
	return false;
}

static int
check_server(preflight *pf, bool *ok)
{
	PGresult *res;

	*ok = true;
	if (query(pf, SQL_SERVER, 0, NULL, &res) < 0)
		return -1;
	if (atoi(PQgetvalue(res, 0, 0)) < pf->plan->min_server_version_num) {
		report_problem(
			pf, "server",
			"PostgreSQL %s (server_version_num %s) is older than the plan requires (server_version_num %d)",
			PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0),
			pf->plan->min_server_version_num);
		*ok = false;
	}
	PQclear(res);
	return 0;
}

/* One version schema: free, and the database lets the user create it
 * (said once, with the first). */
static int
check_version_schema(preflight *pf, const char *schema, bool first)
{
	const char *params[1] = {schema};
	PGresult *res;
	char object[600];

	if (query(pf, SQL_DATABASE, 1, params, &res) < 0)
		return -1;
	snprintf(pf->user, sizeof(pf->user), "%s", PQgetvalue(res, 0, 2));
	if (first && !value_true(res, 0, 1)) {
		snprintf(object, sizeof(object), "database %s",
		         PQgetvalue(res, 0, 0));
		report_problem(
			pf, object,
			"the current user %s may not create schemas in it (CREATE privilege), and expand creates schema %s",
			pf->user, PQgetvalue(res, 0, 3));
	}
	if (value_true(res, 0, 4)) {
		snprintf(object, sizeof(object), "schema %s",
		         PQgetvalue(res, 0, 3));
		report_problem(
			pf, object,
			"already exists, and expand creates it for the new version's views");
		report_hint(
			pf,
			"a run of this migration that did not finish may have left it (see zdm status); otherwise drop or rename it");
	}
	PQclear(res);
	return 0;
}

/* The database, and each version schema expand creates (several when the
 * plan's tables are in several schemas). */
static int
check_database(preflight *pf)
{
	for (size_t i = 0; i < pf->plan->nversion_schemas; i++)
		if (check_version_schema(pf, pf->plan->version_schemas[i],
		                         i == 0) < 0)
			return -1;
	return 0;
}

/* The table's own kind, owner and privileges.  *usable is false when it is
 * no table zdm can check further. */
static int
check_table_kind(preflight *pf, table_check *tc, bool *usable)
{
	const char *name = tc->info->name;
	const char *params[1] = {name};
	PGresult *res;
	const char *kind;

	*usable = false;
	if (query(pf, SQL_TABLE, 1, params, &res) < 0)
		return -1;
	if (PQntuples(res) == 0) {
		report_problem(pf, name, "table does not exist");
		PQclear(res);
		return 0;
	}
	snprintf(tc->oid, sizeof(tc->oid), "%s", PQgetvalue(res, 0, 0));
	kind = PQgetvalue(res, 0, 1);
	if (strcmp(kind, "p") == 0) {
		report_problem(
			pf, name,
			"is a partitioned table, which zdm does not migrate: its rows are in its partitions, and the backfill walks the pages of one table");
		PQclear(res);
		return 0;
	}
	if (strcmp(kind, "r") != 0) {
		static const struct {
			const char *relkind, *what;
		} kinds[] = {
			{"v", "a view"},           {"m", "a materialized view"},
			{"f", "a foreign table"},  {"S", "a sequence"},
			{"i", "an index"},         {"I", "a partitioned index"},
			{"c", "a composite type"}, {"t", "a TOAST table"},
		};
		const char *what = "not a table";

		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strcmp(kind, kinds[i].relkind) == 0)
				what = kinds[i].what;
		report_problem(pf, name, "is %s, not a table", what);
		PQclear(res);
		return 0;
	}
	*usable = true;

	if (value_true(res, 0, 2))
		report_problem(
			pf, name,
			"is a partition of %s, which zdm does not migrate: columns are added and dropped on the partitioned table",
			PQgetvalue(res, 0, 6));
	else if (value(res, 0, 6))
		report_problem(
			pf, name,
			"inherits from %s; zdm does not migrate inheritance hierarchies",
			PQgetvalue(res, 0, 6));
	if (value(res, 0, 7))
		report_problem(
			pf, name,
			"has inheritance children (%s); zdm does not migrate inheritance hierarchies",
			PQgetvalue(res, 0, 7));
	if (value(res, 0, 5))
		report_problem(
			pf, name,
			"is a typed table (OF %s), and PostgreSQL adds no columns to one",
			PQgetvalue(res, 0, 5));
	if (!value_true(res, 0, 8))
		report_problem(
			pf, name,
			"is owned by %s, and the current user %s is not a member of that role: ALTER TABLE needs the owner's rights",
			PQgetvalue(res, 0, 9), pf->user);
	else if (tc->has_replaced && !value_true(res, 0, 10))
		report_problem(
			pf, name,
			"the current user %s may not create objects in schema %s (CREATE privilege), and expand creates the sync function there",
			pf->user, PQgetvalue(res, 0, 4));
	if (tc->has_replaced && value_true(res, 0, 11))
		report_problem(
			pf, name,
			"has FORCE ROW LEVEL SECURITY: the backfill and the checks would see only the rows its policies show %s",
			pf->user);

	{
		long long tuples = atoll(PQgetvalue(res, 0, 12));
		PGresult *size;
		char why[256];
		const char *size_params[1] = {tc->oid};
		char rows[64];

		if (tuples < 0)
			snprintf(rows, sizeof(rows),
			         "row count unknown (never analyzed)");
		else
			snprintf(rows, sizeof(rows), "about %lld rows", tuples);
		PQclear(res);
		if (query_guarded(pf, SQL_TABLE_SIZE, 1, size_params, &size,
		                  why, sizeof(why)) < 0)
			return -1;
		if (size) {
			report_info(pf, name, "%s, %s with indexes and TOAST",
			            rows, PQgetvalue(size, 0, 0));
			PQclear(size);
		} else {
			report_info(pf, name, "%s, size unknown (%s)", rows,
			            why);
		}
	}
	return 0;
}

/* zdm_* columns and objects, and the sync function's name. */
static int
check_reserved_names(preflight *pf, const table_check *tc)
{
	static const char *const sqls[] = {SQL_RESERVED_COLUMNS,
	                                   SQL_RESERVED_OBJECTS};
	const char *params[1] = {tc->oid};
	int found = 0;

	for (size_t q = 0; q < 2; q++) {
		PGresult *res;

		if (q == 1 && !tc->has_replaced)
			break; /* a rename creates no trigger, function or check */
		if (query(pf, sqls[q], 1, params, &res) < 0)
			return -1;
		for (int i = 0; i < PQntuples(res); i++, found++)
			report_problem(
				pf, tc->info->name,
				"%s has a name zdm reserves for its own objects",
				PQgetvalue(res, i, 0));
		PQclear(res);
	}
	if (found)
		report_hint(
			pf,
			"zdm_* names are zdm's own: a run of a migration that did not finish may have left %s (see zdm status); otherwise rename %s",
			found > 1 ? "them" : "it", found > 1 ? "them" : "it");
	return 0;
}

static int
check_publications(preflight *pf, const table_check *tc)
{
	const char *params[1] = {tc->oid};
	PGresult *res;

	if (query(pf, SQL_PUBLICATIONS, 1, params, &res) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		/* the Debezium connector reads the table through a publication
		 * of its own, and follows column changes from the relation
		 * messages: with sync = cdc from debezium, that is the point */
		if (pf->plan->cdc &&
		    strcmp(pf->plan->cdc->source, "debezium") == 0) {
			report_info(
				pf, tc->info->name,
				"is in publication %s (the Debezium connector's, presumably); any other subscriber of it matches columns by name and would see zdm's columns come and go",
				PQgetvalue(res, i, 0));
			continue;
		}
		report_problem(
			pf, tc->info->name,
			"is in publication %s: its subscribers match columns by name, so the columns zdm adds, drops and renames would break them",
			PQgetvalue(res, i, 0));
	}
	PQclear(res);
	return 0;
}

/*
 * Is type (as a column change writes it: "status_t", "public.status_t",
 * "status_t[]") one that a statement of the plan creates ("public.status_t",
 * quoted as needed)?  Such a type does not exist before expand, and
 * preflight, which changes nothing, cannot create it to try.
 */
static bool
plan_creates_type(const zdm_plan *plan, const char *type)
{
	size_t len = strlen(type);

	while (len > 0 && (type[len - 1] == ']' || type[len - 1] == '[' ||
	                   type[len - 1] == ' '))
		len--;
	for (size_t i = 0; i < plan->nstatements; i++) {
		const char *created = plan->statements[i].type_created;
		const char *dot;

		if (created == NULL)
			continue;
		dot = strrchr(created, '.');
		if ((strlen(created) == len &&
		     strncmp(created, type, len) == 0) ||
		    (dot && strlen(dot + 1) == len &&
		     strncmp(dot + 1, type, len) == 0))
			return true;
	}
	return false;
}

/* Does a server error message name a type the plan creates ("type
 * \"public.status_t\" does not exist")? */
static bool
message_names_created_type(const zdm_plan *plan, const char *msg)
{
	const char *open, *close;
	char *name;
	bool found;

	if (msg == NULL || (open = strchr(msg, '"')) == NULL ||
	    (close = strchr(open + 1, '"')) == NULL)
		return false;
	name = strndup(open + 1, (size_t)(close - open - 1));
	if (name == NULL)
		return false;
	found = plan_creates_type(plan, name);
	free(name);
	return found;
}

/* A type the plan will create a column of. */
static int
check_type(preflight *pf, const char *object, const char *type)
{
	const char *params[1] = {type};
	PGresult *res;
	char why[256];

	if (plan_creates_type(pf->plan, type))
		return 0;
	if (query_guarded(pf, SQL_TYPE_EXISTS, 1, params, &res, why,
	                  sizeof(why)) < 0)
		return -1;
	if (!res)
		report_problem(pf, object, "type %s is not a type name (%s)",
		               type, why);
	else if (!value_true(res, 0, 0))
		report_problem(pf, object, "type %s does not exist", type);
	PQclear(res);
	return 0;
}

/*
 * A name the plan gives a column (a new column, a rename's new name): no
 * column may have it yet, unless taken_ok (a change of the table frees
 * it).  The quoted name goes to object.
 */
static int
check_new_name(preflight *pf, const table_check *tc, const char *new_name,
               bool taken_ok, const char *why, char *object, size_t objlen)
{
	const char *params[2] = {tc->oid, new_name};
	PGresult *res;

	if (query(pf, SQL_COLUMN, 2, params, &res) < 0)
		return -1;
	snprintf(object, objlen, "%s.%s", tc->info->name,
	         PQgetvalue(res, 0, 0));
	if (value(res, 0, 1) && !taken_ok)
		report_problem(pf, object, "column already exists, and %s",
		               why);
	PQclear(res);
	return 0;
}

/*
 * Does c replace column name by a column of the same name with no default
 * of its own?  Such a column keeps name's default, cast (zdmc's
 * replace.c): the new version's view has it from expand, the table from
 * contract.  So a new-version insert that leaves the column out sets the
 * new column, and the sync trigger takes it for what it is.
 */
static bool
change_keeps_default(const zdm_change *c, const char *name)
{
	bool created = false;

	for (size_t k = 0; k < c->ncreates; k++)
		created |= strcmp(c->creates[k].column, name) == 0;
	for (size_t i = 0; i < c->ndefaults; i++)
		if (strcmp(c->defaults[i].column, name) == 0)
			return false;
	return created;
}

/*
 * A column the migration replaces: everything on it or depending on it is
 * refused, except NOT NULL, which the plan carries over, and a default
 * that the column replacing it keeps.  col is the SQL_COLUMN row.
 */
static int
check_replaced_column(preflight *pf, const table_check *tc, const zdm_change *c,
                      const char *name, const char *object, const char *quoted,
                      const PGresult *col)
{
	const char *attnum = value(col, 0, 1);
	const char *params[2] = {tc->oid, attnum};
	const char *v;
	PGresult *res;
	int before;

	if (value_true(col, 0, 3) && c->irreversible) {
		report_problem(
			pf, object,
			"is NOT NULL and the change is irreversible: rows the new version inserts leave it NULL, so they would fail");
		report_hint(
			pf,
			"give the change a reverse using, or drop NOT NULL from %s before the migration",
			quoted);
	}
	before = pf->problems;
	if ((v = value(col, 0, 4)) && v[0])
		report_problem(
			pf, object,
			"is an identity column (GENERATED %s AS IDENTITY); zdm does not carry it over",
			v[0] == 'a' ? "ALWAYS" : "BY DEFAULT");
	if ((v = value(col, 0, 5)) && v[0])
		report_problem(
			pf, object,
			"is a generated column (GENERATED ALWAYS AS (%s) %s); zdm does not carry it over",
			value(col, 0, 6) ? value(col, 0, 6) : "?",
			v[0] == 's' ? "STORED" : "VIRTUAL");
	else if ((v = value(col, 0, 6)) && change_keeps_default(c, name))
		report_info(
			pf, object,
			"has a default (%s), which the column that replaces it keeps (cast to its type); while both versions run, a new-version insert that writes NULL to it gets the default",
			v);
	else if (v)
		report_problem(
			pf, object,
			"has a default (%s); zdm does not carry it over, and its sync trigger would take a new-version insert, which gets the default, for an old-version write",
			v);
	if ((v = value(col, 0, 7)))
		report_problem(
			pf, object,
			"has column privileges (%s); zdm does not carry them over",
			v);
	if (value_true(col, 0, 8))
		report_problem(pf, object,
		               "has a comment; zdm does not carry it over");
	if ((v = value(col, 0, 9)))
		report_problem(pf, object,
		               "has collation %s; zdm does not carry it over",
		               v);
	if ((v = value(col, 0, 10)))
		report_problem(
			pf, object,
			"has a statistics target (%s); zdm does not carry it over",
			v);
	if ((v = value(col, 0, 11)) && v[0])
		report_problem(pf, object,
		               "has options (%s); zdm does not carry them over",
		               v);
	if ((v = value(col, 0, 12)))
		report_problem(pf, object,
		               "has storage %s; zdm does not carry it over", v);
	if ((v = value(col, 0, 13)))
		report_problem(pf, object,
		               "has compression %s; zdm does not carry it over",
		               v);

	if (query(pf, SQL_COLUMN_DEPENDENTS, 2, params, &res) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		report_problem(pf, object,
		               "%s %s the column; zdm does not carry it over",
		               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
	PQclear(res);

	if (pf->problems > before) {
		/* a column the change creates under the same name replaces it
		 * one for one (a new type); else new columns take its place */
		const zdm_created_column *same = change_created(c, name);

		if (same)
			report_hint(
				pf,
				"zdm replaces %s with a new column of type %s and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new column needs after contract",
				quoted, same->type ? same->type : "(its own)");
		else
			report_hint(
				pf,
				"zdm replaces %s with new columns and drops it at contract, carrying over nothing but NOT NULL: remove what is listed first, and recreate what the new columns need after contract",
				quoted);
	}
	return 0;
}

/* Add attnum to an int2[] literal of 512 bytes ("" is the empty one). */
static int
append_to_array(preflight *pf, const table_check *tc, char *array,
                const char *attnum)
{
	size_t used = strlen(array);
	int n;

	if (used == 0)
		used = (size_t)snprintf(array, 512, "{");
	else
		array[--used] = ','; /* over the closing brace */
	n = snprintf(array + used, 512 - used, "%s}", attnum);
	if (n < 0 || (size_t)n >= 512 - used) {
		zdm_error_set(pf->err, "too many changed columns in %s",
		              tc->info->name);
		return -1;
	}
	return 0;
}

static int
append_attnum(preflight *pf, table_check *tc, const char *attnum)
{
	if (append_to_array(pf, tc, tc->replaced, attnum) < 0)
		return -1;
	return append_to_array(pf, tc, tc->removed, attnum);
}

static char *text_array_literal(preflight *pf, char *const *items, size_t n);

/* "the split of name" or the change's summary, quoted: what a message says
 * needs a name.  One replaced column and new ones in its place is a split,
 * whatever the change is called. */
static void
change_phrase(const zdm_change *c, char *out, size_t len)
{
	if (c->nreplaces == 1 && c->ncreates > 0 &&
	    !change_created(c, c->replaces[0]))
		snprintf(out, len, "the split of %s", c->replaces[0]);
	else
		snprintf(out, len, "the change \"%s\"",
		         c->summary ? c->summary : c->change);
}

/*
 * An existing column the change reads or replaces: it must exist and not be
 * a system column; a replaced one must have nothing on it the plan would
 * lose.  When the change creates a column of the same name (a new type),
 * the info line says what it becomes.
 */
static int
check_existing_column(preflight *pf, table_check *tc, const zdm_change *c,
                      const char *name)
{
	const char *params[2] = {tc->oid, name};
	bool replaced = names_contain(c->replaces, c->nreplaces, name);
	const zdm_created_column *same =
		replaced ? change_created(c, name) : NULL;
	PGresult *res;
	char object[512];
	const char *attnum, *quoted;
	int error = 0;

	if (query(pf, SQL_COLUMN, 2, params, &res) < 0)
		return -1;
	quoted = PQgetvalue(res, 0, 0);
	snprintf(object, sizeof(object), "%s.%s", tc->info->name, quoted);
	attnum = value(res, 0, 1);
	if (!attnum)
		report_problem(pf, object, "column does not exist");
	else if (atoi(attnum) < 0)
		report_problem(pf, object, "is a system column");
	else if (same)
		/* a created column without a type keeps the column's */
		report_info(pf, object, "%s%s, becomes %s%s",
		            PQgetvalue(res, 0, 2),
		            value_true(res, 0, 3) ? " NOT NULL" : "",
		            same->type ? same->type : PQgetvalue(res, 0, 2),
		            (value_true(res, 0, 3) &&
		             !names_contain(c->not_null_dropped,
		                            c->nnot_null_dropped, name)) ||
		                            same->not_null
		                    ? " NOT NULL"
		                    : "");

	if (attnum && atoi(attnum) > 0 && replaced &&
	    ((error = append_attnum(pf, tc, attnum)) < 0 ||
	     (error = check_replaced_column(pf, tc, c, name, object, quoted,
	                                    res)) < 0))
		goto cleanup;
	/* a new type: the object is the existing column's */
	if (same && same->type)
		error = check_type(pf, object, same->type);

cleanup:
	PQclear(res);
	return error;
}

/* Does the change compute column name back from the new shape? */
static bool
change_reverses(const zdm_change *c, const char *name)
{
	for (size_t i = 0; i < c->nreverse; i++)
		if (strcmp(c->reverse[i].column, name) == 0)
			return true;
	return false;
}

/*
 * A column the change drops (drop column): what depends on it alone goes
 * with it and is listed; anything else is refused (see
 * SQL_DROPPED_COLUMN_DEPENDENTS).  New-version inserts cannot name it, so
 * a NOT NULL column needs a default or the change's reverse using; a
 * generated column has no use for one; and with sync = cdc an insert is the
 * new version's when it leaves the column NULL, which a default or an
 * identity would hide.
 */
static int
check_dropped_column(preflight *pf, table_check *tc, const zdm_change *c,
                     const char *name)
{
	const char *params[2] = {tc->oid, name};
	bool reverse = change_reverses(c, name);
	PGresult *col, *res;
	const char *attnum, *identity, *generated, *def;
	char object[512];
	int refused = 0;

	if (query(pf, SQL_COLUMN, 2, params, &col) < 0)
		return -1;
	attnum = value(col, 0, 1);
	if (!attnum || atoi(attnum) <= 0) {
		PQclear(col); /* check_existing_column said so */
		return 0;
	}
	snprintf(object, sizeof(object), "%s.%s", tc->info->name,
	         PQgetvalue(col, 0, 0));
	identity = value(col, 0, 4);
	generated = value(col, 0, 5);
	def = value(col, 0, 6);
	if (generated && !generated[0])
		generated = NULL;
	if (identity && !identity[0])
		identity = NULL;
	if (generated && reverse)
		report_problem(
			pf, object,
			"is a generated column, which its own expression gives a value: drop it without reverse using");
	else if (value_true(col, 0, 3) && !def && !identity && !generated &&
	         !reverse)
		report_problem(
			pf, object,
			"is NOT NULL without a default: rows the new version inserts cannot name it, and would fail");
	else if (reverse && tc->cdc && (def || identity))
		report_problem(
			pf, object,
			"has %s: with sync = cdc, zdm sync knows a new-version insert by this column being NULL, which %s hides",
			identity ? "an identity" : "a default",
			identity ? "the identity" : "the default");
	if (append_to_array(pf, tc, tc->removed, attnum) < 0) {
		PQclear(col);
		return -1;
	}
	params[1] = attnum;
	if (query(pf, SQL_DROPPED_COLUMN_DEPENDENTS, 2, params, &res) < 0) {
		PQclear(col);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *why = value(res, i, 2);

		if (why) {
			report_problem(pf, object, "%s %s",
			               PQgetvalue(res, i, 1), why);
			refused++;
		} else {
			report_info(pf, object, "%s goes with it at contract",
			            PQgetvalue(res, i, 1));
		}
	}
	PQclear(res);
	if (refused)
		report_hint(
			pf,
			"drop column %s drops only what depends on it alone: drop or replace what is listed before the migration (an index or constraint without %s: CREATE INDEX CONCURRENTLY, ADD CONSTRAINT ... NOT VALID)",
			name, name);
	PQclear(col);
	return 0;
}

/* Columns made NOT NULL must be nullable now; columns let be NULL must be
 * NOT NULL now, and in nothing that requires NOT NULL. */
static int
check_not_null_facts(preflight *pf, table_check *tc, const zdm_change *c)
{
	for (size_t i = 0; i < c->nnot_null_set + c->nnot_null_dropped; i++) {
		bool set = i < c->nnot_null_set;
		const char *name =
			set ? c->not_null_set[i]
			    : c->not_null_dropped[i - c->nnot_null_set];
		const char *params[2] = {tc->oid, name};
		const char *attnum;
		PGresult *col, *res;
		char object[512];

		if (query(pf, SQL_COLUMN, 2, params, &col) < 0)
			return -1;
		attnum = value(col, 0, 1);
		snprintf(object, sizeof(object), "%s.%s", tc->info->name,
		         PQgetvalue(col, 0, 0));
		if (!attnum || atoi(attnum) <= 0) {
			PQclear(col);
			continue;
		}
		if (set && value_true(col, 0, 3))
			report_problem(pf, object,
			               "is NOT NULL already: nothing to set");
		else if (!set && !value_true(col, 0, 3))
			report_problem(pf, object,
			               "is nullable already: nothing to drop");
		if (!set) {
			params[1] = attnum;
			if (query(pf, SQL_NOT_NULL_REQUIRED, 2, params, &res) <
			    0) {
				PQclear(col);
				return -1;
			}
			for (int k = 0; k < PQntuples(res); k++)
				report_problem(
					pf, object,
					"is in %s, which requires NOT NULL",
					PQgetvalue(res, k, 0));
			PQclear(res);
		}
		PQclear(col);
	}
	return 0;
}

/* The column facts of one change: reads, replaces, creates, renames,
 * drops and NOT NULL. */
static int
check_change(preflight *pf, table_check *tc, const zdm_change *c)
{
	char new_object[512], why[600], phrase[400];
	int error = 0;

	for (size_t i = 0; error == 0 && i < c->ndrops; i++)
		error = check_dropped_column(pf, tc, c, c->drops[i]);
	if (error == 0)
		error = check_not_null_facts(pf, tc, c);

	for (size_t i = 0; error == 0 && i < c->nreads; i++)
		error = check_existing_column(pf, tc, c, c->reads[i]);
	for (size_t i = 0; error == 0 && i < c->nreplaces; i++)
		if (!names_contain(c->reads, c->nreads, c->replaces[i]))
			error = check_existing_column(pf, tc, c,
			                              c->replaces[i]);

	change_phrase(c, phrase, sizeof(phrase));
	snprintf(why, sizeof(why), "%s creates it", phrase);
	for (size_t i = 0; error == 0 && i < c->ncreates; i++) {
		const zdm_created_column *col = &c->creates[i];

		/* a column replaced under its own name was checked above */
		if (names_contain(c->replaces, c->nreplaces, col->column))
			continue;
		if ((error = check_new_name(
			     pf, tc, col->column,
			     table_frees_name(tc->info, col->column), why,
			     new_object, sizeof(new_object))) == 0)
			error = check_type(pf, new_object, col->type);
	}
	for (size_t i = 0; error == 0 && i < c->nrenames; i++) {
		snprintf(why, sizeof(why), "the rename of %s needs the name",
		         c->renames[i].column);
		error = check_new_name(
			pf, tc, c->renames[i].to,
			table_frees_name(tc->info, c->renames[i].to), why,
			new_object, sizeof(new_object));
	}
	return error;
}

/* "the change \"...\"" for the object facts' messages. */
static void
change_name_for(const zdm_change *c, char *out, size_t len)
{
	snprintf(out, len, "the change \"%s\"",
	         c->summary ? c->summary : c->change);
}

static int
check_constraint(preflight *pf, const table_check *tc, const char *name,
                 bool want, const char *what)
{
	const char *params[2] = {tc->oid, name};
	PGresult *res;

	if (query(pf, SQL_CONSTRAINT, 2, params, &res) < 0)
		return -1;
	if (value_true(res, 0, 1) != want)
		report_problem(pf, tc->info->name, "constraint %s %s, and %s",
		               PQgetvalue(res, 0, 0),
		               want ? "does not exist" : "already exists",
		               what);
	PQclear(res);
	return 0;
}

/* The new name of a constraint with an index, as the index's new name. */
static int
check_constraint_index_name(preflight *pf, const table_check *tc,
                            const zdm_constraint_rename *r, const char *what)
{
	const char *params[3] = {tc->oid, r->constraint, r->to};
	PGresult *res;

	if (query(pf, SQL_CONSTRAINT_INDEX_NAME, 3, params, &res) < 0)
		return -1;
	if (PQntuples(res) > 0 && value_true(res, 0, 1))
		report_problem(
			pf, tc->info->name,
			"a relation named %s already exists in the schema of the index of constraint %s, and %s renames the constraint, and with it the index, to it",
			PQgetvalue(res, 0, 0), r->constraint, what);
	PQclear(res);
	return 0;
}

static int
check_index_free(preflight *pf, const char *index, const char *what)
{
	const char *params[1] = {index};
	PGresult *res;
	char why[256], object[400];

	snprintf(object, sizeof(object), "index %s", index);
	if (query_guarded(pf, SQL_RELATION_EXISTS, 1, params, &res, why,
	                  sizeof(why)) < 0)
		return -1;
	if (!res) {
		report_problem(pf, object, "is not a relation name (%s)", why);
		return 0;
	}
	if (PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "i") == 0 &&
	    !value_true(res, 0, 1)) {
		report_problem(pf, object,
		               "already exists and is not valid, and %s", what);
		report_hint(
			pf,
			"a CREATE INDEX CONCURRENTLY that failed leaves an invalid index behind: if no run is under way (see zdm status), drop it with DROP INDEX CONCURRENTLY %s",
			index);
	} else if (PQntuples(res) > 0) {
		report_problem(pf, object, "already exists, and %s", what);
	}
	PQclear(res);
	return 0;
}

static int
check_reference(preflight *pf, const table_check *tc, const zdm_reference *ref,
                const char *what)
{
	char *columns = text_array_literal(pf, ref->columns, ref->ncolumns);
	const char *params[2] = {ref->table, columns};
	PGresult *res;
	char why[256];

	if (!columns)
		return -1;
	if (query_guarded(pf, SQL_REFERENCED_KEY, 2, params, &res, why,
	                  sizeof(why)) < 0) {
		free(columns);
		return -1;
	}
	if (!res)
		report_problem(
			pf, tc->info->name,
			"%s references %s, which is not a table name (%s)",
			what, ref->table, why);
	else if (!value_true(res, 0, 0))
		report_problem(pf, tc->info->name,
		               "%s references table %s, which does not exist",
		               what, ref->table);
	else if (!value_true(res, 0, 1) && ref->ncolumns == 0)
		report_problem(
			pf, tc->info->name,
			"%s references table %s by its primary key, and it has none",
			what, ref->table);
	else if (!value_true(res, 0, 1)) {
		size_t len = 1;
		char *shown;

		for (size_t i = 0; i < ref->ncolumns; i++)
			len += strlen(ref->columns[i]) + 2;
		if ((shown = malloc(len)) == NULL) {
			PQclear(res);
			free(columns);
			zdm_error_set(pf->err, "out of memory");
			return -1;
		}
		shown[0] = '\0';
		for (size_t i = 0; i < ref->ncolumns; i++) {
			if (i > 0)
				strcat(shown, ", ");
			strcat(shown, ref->columns[i]);
		}
		report_problem(
			pf, tc->info->name,
			"%s references (%s) of table %s, which is neither its primary key nor a unique index without expressions or a predicate on exactly those columns",
			what, shown, ref->table);
		report_hint(
			pf,
			"a foreign key needs a key on the columns it references: CREATE UNIQUE INDEX CONCURRENTLY on %s (%s) first",
			ref->table, shown);
		free(shown);
	}
	PQclear(res);
	free(columns);
	return 0;
}

static int
check_table_name_free(preflight *pf, const table_check *tc, const char *name,
                      const char *what)
{
	const char *params[2] = {tc->oid, name};
	PGresult *res;

	if (query(pf, SQL_TABLE_NAME_TAKEN, 2, params, &res) < 0)
		return -1;
	if (PQntuples(res) > 0 && value_true(res, 0, 1))
		report_problem(
			pf, tc->info->name,
			"a relation or type named %s already exists in its schema, and %s renames the table to it",
			PQgetvalue(res, 0, 0), what);
	PQclear(res);
	return 0;
}

/* split table's new table: its schema exists and its name is free. */
static int
check_split_into(preflight *pf, const char *name, const char *what)
{
	const char *params[1] = {name};
	PGresult *res;

	if (query(pf, SQL_NEW_TABLE, 1, params, &res) < 0)
		return -1;
	if (PQntuples(res) == 0 || !value_true(res, 0, 0))
		report_problem(pf, name,
		               "its schema does not exist, and %s creates it",
		               what);
	else if (value_true(res, 0, 1))
		report_problem(
			pf, name,
			"already exists (a relation or a type of that name), and %s creates it",
			what);
	PQclear(res);
	return 0;
}

/*
 * The facts about objects other than columns: constraints, indexes,
 * referenced tables, the table's new name.
 */
static int
check_change_objects(preflight *pf, const table_check *tc, const zdm_change *c)
{
	char what[512], why[600];

	change_name_for(c, what, sizeof(what));
	snprintf(why, sizeof(why), "%s creates it", what);
	for (size_t i = 0; i < c->nconstraints_created; i++)
		if (check_constraint(pf, tc, c->constraints_created[i], false,
		                     why) < 0)
			return -1;
	snprintf(why, sizeof(why), "%s drops it", what);
	for (size_t i = 0; i < c->nconstraints_dropped; i++)
		if (check_constraint(pf, tc, c->constraints_dropped[i], true,
		                     why) < 0)
			return -1;
	for (size_t i = 0; i < c->nconstraint_renames; i++) {
		snprintf(why, sizeof(why), "%s renames it", what);
		if (check_constraint(pf, tc,
		                     c->constraint_renames[i].constraint, true,
		                     why) < 0)
			return -1;
		snprintf(why, sizeof(why), "%s renames constraint %s to it",
		         what, c->constraint_renames[i].constraint);
		if (check_constraint(pf, tc, c->constraint_renames[i].to, false,
		                     why) < 0 ||
		    check_constraint_index_name(
			    pf, tc, &c->constraint_renames[i], what) < 0)
			return -1;
	}
	snprintf(why, sizeof(why), "%s creates it", what);
	for (size_t i = 0; i < c->nindexes_created; i++)
		if (check_index_free(pf, c->indexes_created[i], why) < 0)
			return -1;
	for (size_t i = 0; i < c->nreferences; i++)
		if (check_reference(pf, tc, &c->references[i], what) < 0)
			return -1;
	if (c->table_renamed_to &&
	    check_table_name_free(pf, tc, c->table_renamed_to, what) < 0)
		return -1;
	if (c->split_into && check_split_into(pf, c->split_into, what) < 0)
		return -1;
	return 0;
}

static int
check_triggers(preflight *pf, const table_check *tc)
{
	const char *params[2] = {tc->oid,
	                         tc->replaced[0] ? tc->replaced : "{}"};
	PGresult *res;
	int generic = 0;

	if (query(pf, SQL_TRIGGERS, 2, params, &res) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *update_of = value(res, i, 1);
		const char *reads = value(res, i, 3);

		if (update_of) {
			report_problem(
				pf, tc->info->name,
				"trigger %s fires on UPDATE OF %s, which the migration replaces; zdm does not carry it over",
				PQgetvalue(res, i, 0), update_of);
		} else if (reads) {
			report_problem(
				pf, tc->info->name,
				"trigger %s reads %s in its WHEN clause, which the migration replaces; zdm does not carry it over",
				PQgetvalue(res, i, 0), reads);
		} else if (!value_true(res, i, 2)) {
			report_problem(
				pf, tc->info->name,
				"has trigger %s, and zdm cannot know what it reads or writes while the table has two shapes",
				PQgetvalue(res, i, 0));
			generic++;
		}
	}
	PQclear(res);
	if (generic)
		report_hint(
			pf,
			"zdm cannot tell whether a trigger reads a column the migration replaces or renames, and one that does fails once contract runs: disable it for the migration (ALTER TABLE ... DISABLE TRIGGER) or drop it, and recreate it for the new shape after contract");
	return 0;
}

/* Rules that the backfill's writes would fire. */
static int
check_rules(preflight *pf, const table_check *tc)
{
	const char *params[1] = {tc->oid};
	PGresult *res;
	int n;

	if (query(pf, SQL_RULES, 1, params, &res) < 0)
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		report_problem(
			pf, tc->info->name,
			"has rule %s (ON %s), and zdm cannot know what it does while the backfill updates every row and the table has two shapes",
			PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	if (n)
		report_hint(
			pf,
			"a rule rewrites the backfill's writes too: a DO ALSO rule runs once for every row, and a DO INSTEAD rule keeps the backfill from writing at all; disable it for the migration (ALTER TABLE ... DISABLE RULE) or drop it, and recreate it for the new shape after contract");
	return 0;
}

/* Columns elsewhere of the table's row type, which block expand. */
static int
check_row_type(preflight *pf, const table_check *tc)
{
	const char *params[1] = {tc->oid};
	PGresult *res;
	int n;

	if (query(pf, SQL_ROW_TYPE_USERS, 1, params, &res) < 0)
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		report_problem(
			pf, tc->info->name,
			"column %s is of %s, and PostgreSQL does not add columns with a default to, or change column types of, a table whose row type a column uses",
			PQgetvalue(res, i, 0),
			value_true(res, i, 1) ? "an array of its row type"
					      : "its row type");
	PQclear(res);
	if (n)
		report_hint(
			pf,
			"change the type of %s or drop %s before the migration",
			n > 1 ? "those columns" : "that column",
			n > 1 ? "them" : "it");
	return 0;
}

/* "name (columns), name (columns)" of SQL_KEYS' rows, cut to fit. */
static void
format_keys(const PGresult *res, char *keys, size_t len)
{
	size_t used = 0;

	keys[0] = '\0';
	for (int i = 0; i < PQntuples(res) && used < len; i++) {
		int w = snprintf(keys + used, len - used, "%s%s (%s)",
		                 i ? ", " : "", PQgetvalue(res, i, 0),
		                 PQgetvalue(res, i, 2));
		if (w > 0)
			used += (size_t)w;
	}
}

/*
 * The cdc plan's key (tc->cdc_key, when every column of it exists) must be
 * exactly the columns of one of the keys SQL_KEYS found: zdm sync updates
 * each row by its key, and a key that is not unique would update every row
 * that shares the event's values.  res is SQL_KEYS' result.
 */
static void
check_cdc_key(preflight *pf, const table_check *tc, const PGresult *res)
{
	int n = PQntuples(res);
	char keys[1024];

	for (int i = 0; i < n; i++)
		if (value_true(res, i, 4))
			return;
	report_problem(
		pf, tc->info->name,
		"the sync's key (%s) is not the primary key or a unique index over NOT NULL columns without expressions or a predicate: zdm sync finds the row of a change event by the key's values, and a key that is not unique would update several rows",
		tc->cdc_key_shown);
	if (n > 0) {
		format_keys(res, keys, sizeof(keys));
		report_hint(
			pf,
			"name the columns of one of its keys in the migration's key = (...): %s; or make (%s) one: its columns NOT NULL and CREATE UNIQUE INDEX CONCURRENTLY on exactly them",
			keys, tc->cdc_key_shown);
	} else {
		report_hint(
			pf,
			"make (%s) a key: its columns NOT NULL and CREATE UNIQUE INDEX CONCURRENTLY on exactly them",
			tc->cdc_key_shown);
	}
}

static int
check_key(preflight *pf, const table_check *tc)
{
	const char *params[3] = {tc->oid, tc->removed[0] ? tc->removed : "{}",
	                         tc->cdc_key ? tc->cdc_key : "{}"};
	PGresult *res;
	int chosen = -1, n;

	if (query(pf, SQL_KEYS, 3, params, &res) < 0)
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n && chosen < 0; i++)
		if (!value_true(res, i, 3))
			chosen = i;
	if (chosen >= 0) {
		report_info(pf, tc->info->name, "key %s (%s), %s",
		            PQgetvalue(res, chosen, 0),
		            PQgetvalue(res, chosen, 2),
		            value_true(res, chosen, 1) ? "the primary key"
		                                       : "a unique index");
	} else if (n > 0) {
		char keys[1024];

		format_keys(res, keys, sizeof(keys));
		report_problem(
			pf, tc->info->name,
			"%s %s %s a column the migration replaces; zdm needs a key that survives the migration",
			n > 1 ? "keys" : "key", keys,
			n > 1 ? "each use" : "uses");
		report_hint(
			pf,
			"add a unique index over NOT NULL columns the migration keeps (CREATE UNIQUE INDEX CONCURRENTLY)");
	} else {
		report_problem(
			pf, tc->info->name,
			"has no primary key and no unique index over NOT NULL columns without expressions or a predicate; zdm needs a key to batch by and to name rows");
		report_hint(
			pf,
			"add one first: CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE ... ADD PRIMARY KEY USING INDEX");
	}
	if (tc->cdc && tc->cdc_key_exists)
		check_cdc_key(pf, tc, res);
	PQclear(res);
	return 0;
}

/*
 * Have the server analyse sql, which holds expr, never running it: it is
 * parsed and planned by PQprepare inside a savepoint.  A failure is a
 * problem of object ("<clause> (<expr>) does not work on <where>: ..."),
 * except a lock timeout (the table is locked by someone else: not the
 * expression's fault) and, with why_not set, a failure of that SQLSTATE,
 * which are reported as info.
 */
static int
analyse_expression(preflight *pf, const char *object, const char *clause,
                   const char *expr, const char *where, const char *sql,
                   const char *why_not_state, const char *why_not)
{
	PGresult *res;
	const char *msg, *state;

	if (zdm_conn_exec(pf->conn, "SAVEPOINT zdm_preflight_expression",
	                  pf->err) < 0)
		return -1;
	res = PQprepare(pf->conn, "", sql, 0, NULL);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		return zdm_conn_exec(
			pf->conn, "RELEASE SAVEPOINT zdm_preflight_expression",
			pf->err);
	}
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state && strcmp(state, ZDM_SQLSTATE_LOCK_NOT_AVAILABLE) == 0)
		report_info(pf, object, "%s not analysed (%s); expand will",
		            clause, msg ? msg : "lock timeout");
	else if (state && strcmp(state, ZDM_SQLSTATE_UNDEFINED_OBJECT) == 0 &&
	         message_names_created_type(pf->plan, msg))
		report_info(
			pf, object,
			"%s not analysed: it uses a type the plan creates; expand will",
			clause);
	else if (state && why_not_state && strcmp(state, why_not_state) == 0)
		report_info(pf, object, "%s not analysed: %s", clause, why_not);
	else
		report_problem(pf, object, "%s (%s) does not work on %s: %s",
		               clause, expr, where,
		               msg ? msg : PQerrorMessage(pf->conn));
	PQclear(res);
	return zdm_conn_exec(pf->conn,
	                     "ROLLBACK TO SAVEPOINT zdm_preflight_expression",
	                     pf->err);
}

/*
 * One using expression, analysed by the server against the table as it is:
 * a type error or an unknown function is found now, with nothing touched,
 * instead of at expand, where PL/pgSQL would first meet it in the sync
 * trigger on the application's writes.  The expression sits in a VALUES
 * list, not a SELECT list: VALUES refuses set-returning, aggregate and
 * window functions, as the backfill's UPDATE ... SET and the trigger's
 * assignment do, while a SELECT list would let them through.  The table is
 * not aliased, so a column qualified with the table's name still resolves;
 * ONLY, because expand alters this table and not its children.
 */
static int
check_one_expression(preflight *pf, const char *what, const char *table,
                     const char *column, const char *expr, const char *type)
{
	size_t len = strlen(expr) + strlen(type) + strlen(table) + 80;
	char *sql = malloc(len);
	char object[512];
	int rc;

	if (sql == NULL) {
		zdm_error_set(pf->err, "out of memory");
		return -1;
	}
	/* the newline: a trailing -- comment in expr must not swallow ")" */
	snprintf(
		sql, len,
		"SELECT v.x FROM ONLY %s, LATERAL (VALUES ((%s\n)::%s)) AS v(x)",
		table, expr, type);
	snprintf(object, sizeof(object), "%s.%s", table, column);
	rc = analyse_expression(pf, object, what, expr, "this table", sql, NULL,
	                        NULL);
	free(sql);
	return rc;
}

static int
check_expressions(preflight *pf, const table_check *tc)
{
	const zdm_table_info *info = tc->info;

	for (size_t i = 0; i < info->nchanges; i++) {
		const zdm_change *c = &info->changes[i];

		for (size_t k = 0; k < c->ncreates; k++) {
			const zdm_created_column *col = &c->creates[k];
			const char *params[2] = {tc->oid, col->column};
			PGresult *res = NULL;
			int rc;

			if (!col->using)
				continue;
			/* no type: the existing column's, as expand reads it */
			if (!col->type &&
			    query(pf, SQL_COLUMN, 2, params, &res) < 0)
				return -1;
			rc = check_one_expression(
				pf, "using", info->name, col->column,
				col->using,
				col->type ? col->type : PQgetvalue(res, 0, 2));
			PQclear(res);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

static char *text_array_literal(preflight *pf, char *const *items, size_t n);

/* An identifier, always double-quoted (" doubled), appended to b. */
static int
put_quoted(zdm_strbuf *b, const char *name)
{
	if (zdm_strbuf_puts(b, "\"") < 0)
		return -1;
	for (const char *c = name; *c; c++)
		if (zdm_strbuf_put(b, c, 1) < 0 ||
		    (*c == '"' && zdm_strbuf_put(b, c, 1) < 0))
			return -1;
	return zdm_strbuf_puts(b, "\"");
}

/*
 * The FROM item of the table's new shape: "(SELECT <columns no change
 * replaces, renamed ones as their new name>, NULL::<type> AS <created>, ...
 * FROM ONLY <table>) AS <the table's name>", into b.
 */
static int
new_shape_from(preflight *pf, const table_check *tc, zdm_strbuf *b)
{
	const zdm_table_info *info = tc->info;
	size_t nrep = 0, nren = 0, k = 0, r = 0;
	char **replaced = NULL, **from = NULL, **to = NULL;
	char *lits[3] = {NULL, NULL, NULL};
	const char *params[4];
	PGresult *res = NULL;
	int rc = -1;

	for (size_t i = 0; i < info->nchanges; i++) {
		nrep += info->changes[i].nreplaces;
		nren += info->changes[i].nrenames;
	}
	replaced = calloc(nrep + 1, sizeof(char *));
	from = calloc(nren + 1, sizeof(char *));
	to = calloc(nren + 1, sizeof(char *));
	if (replaced == NULL || from == NULL || to == NULL) {
		zdm_error_set(pf->err, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < info->nchanges; i++) {
		const zdm_change *c = &info->changes[i];

		for (size_t j = 0; j < c->nreplaces; j++)
			replaced[k++] = c->replaces[j];
		for (size_t j = 0; j < c->nrenames; j++, r++) {
			from[r] = c->renames[j].column;
			to[r] = c->renames[j].to;
		}
	}
	if ((lits[0] = text_array_literal(pf, replaced, nrep)) == NULL ||
	    (lits[1] = text_array_literal(pf, from, nren)) == NULL ||
	    (lits[2] = text_array_literal(pf, to, nren)) == NULL)
		goto cleanup;
	params[0] = tc->oid;
	params[1] = lits[0];
	params[2] = lits[1];
	params[3] = lits[2];
	if (query(pf, SQL_NEW_SHAPE, 4, params, &res) < 0)
		goto cleanup;
	if (zdm_strbuf_puts(b, "(SELECT ") < 0)
		goto oom;
	if (value(res, 0, 1) && zdm_strbuf_puts(b, value(res, 0, 1)) < 0)
		goto oom;
	for (size_t i = 0, n = value(res, 0, 1) != NULL; i < info->nchanges;
	     i++)
		for (size_t j = 0; j < info->changes[i].ncreates; j++, n++) {
			const zdm_created_column *col =
				&info->changes[i].creates[j];

			/* type null: the column keeps the type of the existing
			 * column of its name (set/drop not null's shadow), so
			 * that column itself stands for it */
			if (zdm_strbuf_puts(b, n ? ", " : "") < 0 ||
			    (col->type != NULL
			             ? zdm_strbuf_puts(b, "NULL::") < 0 ||
			                       zdm_strbuf_puts(b, col->type) < 0
			             : put_quoted(b, col->column) < 0) ||
			    zdm_strbuf_puts(b, " AS ") < 0 ||
			    put_quoted(b, col->column) < 0)
				goto oom;
		}
	if (zdm_strbuf_puts(b, " FROM ONLY ") < 0 ||
	    zdm_strbuf_puts(b, info->name) < 0 ||
	    zdm_strbuf_puts(b, ") AS ") < 0 ||
	    zdm_strbuf_puts(b, PQgetvalue(res, 0, 0)) < 0)
		goto oom;
	rc = 0;
	goto cleanup;
oom:
	zdm_error_set(pf->err, "out of memory");
cleanup:
	PQclear(res);
	for (int i = 0; i < 3; i++)
		free(lits[i]);
	free(replaced);
	free(from);
	free(to);
	return rc;
}

/*
 * Each reverse using, analysed as each using is, but against the table's
 * new shape (new_shape_from), which is what its names mean, and as the
 * type of the old column it computes.  A broken reverse using would
 * otherwise fail the new version's every write from expand on.  A column
 * qualified with the schema as well as the table ("public.users.name")
 * cannot be told to mean the subquery (SQLSTATE 42P01): that one is only
 * reported as not analysed.
 */
static int
check_reverse_expressions(preflight *pf, const table_check *tc)
{
	const zdm_table_info *info = tc->info;
	zdm_strbuf from = {0}, sql = {0};
	bool any = false;
	int rc = -1;

	for (size_t i = 0; i < info->nchanges; i++)
		any = any || info->changes[i].nreverse > 0;
	if (!any)
		return 0;
	if (new_shape_from(pf, tc, &from) < 0)
		goto cleanup;
	for (size_t i = 0; i < info->nchanges; i++) {
		const zdm_change *c = &info->changes[i];

		for (size_t j = 0; j < c->nreverse; j++) {
			const zdm_reverse_column *rv = &c->reverse[j];
			const char *params[2] = {tc->oid, rv->column};
			char object[512];
			PGresult *res;
			int arc;

			if (query(pf, SQL_COLUMN, 2, params, &res) < 0)
				goto cleanup;
			snprintf(object, sizeof(object), "%s.%s", info->name,
			         PQgetvalue(res, 0, 0));
			zdm_strbuf_reset(&sql);
			/* the newline: a trailing -- comment must not
			 * swallow ")" */
			if (zdm_strbuf_puts(&sql, "SELECT v.x FROM ") < 0 ||
			    zdm_strbuf_puts(&sql, from.data) < 0 ||
			    zdm_strbuf_puts(&sql, ", LATERAL (VALUES ((") < 0 ||
			    zdm_strbuf_puts(&sql, rv->using) < 0 ||
			    zdm_strbuf_puts(&sql, "\n)::") < 0 ||
			    zdm_strbuf_puts(&sql, value(res, 0, 2)
			                                  ? value(res, 0, 2)
			                                  : "text") < 0 ||
			    zdm_strbuf_puts(&sql, ")) AS v(x)") < 0) {
				PQclear(res);
				zdm_error_set(pf->err, "out of memory");
				goto cleanup;
			}
			PQclear(res);
			arc = analyse_expression(
				pf, object, "reverse using", rv->using,
				"the new shape of this table", sql.data,
				ZDM_SQLSTATE_UNDEFINED_TABLE,
				"it names a column with its schema, which only the live trigger resolves");
			if (arc < 0)
				goto cleanup;
		}
	}
	rc = 0;
cleanup:
	zdm_strbuf_free(&from);
	zdm_strbuf_free(&sql);
	return rc;
}

/*
 * The columns whose default a change sets or drops: PostgreSQL refuses a
 * default on an identity or a generated column, on the table (at
 * contract, after the point of no return) but not on the view (at
 * expand), so it is refused here.  A new default is analysed as a using
 * expression is, cast to the column's type: an explicit cast, where the
 * DEFAULT's own is an assignment, so the rare value only an explicit cast
 * takes is found at expand instead, which stops there with nothing lost.
 * analyse: the table is otherwise as the plan expects (a missing column
 * is reported once, by the change's reads).
 */
/*
 * A column c replaces by one of its own name and another type keeps its
 * default, cast to the new type (as ALTER COLUMN ... TYPE keeps it): the
 * cast is analysed as a default the plan sets is.  It is not run: a value
 * the new type refuses at run time only (an enum label the type lacks)
 * makes the new version's inserts that leave the column out fail, which
 * docs/language.md says.
 */
static int
check_kept_defaults(preflight *pf, const table_check *tc, const zdm_change *c)
{
	for (size_t k = 0; k < c->ncreates; k++) {
		const zdm_created_column *col = &c->creates[k];
		const char *params[2] = {tc->oid, col->column};
		bool replaced = false, own = false;
		PGresult *res;
		int rc = 0;

		for (size_t i = 0; i < c->nreplaces; i++)
			replaced |= strcmp(c->replaces[i], col->column) == 0;
		for (size_t i = 0; i < c->ndefaults; i++)
			own |= strcmp(c->defaults[i].column, col->column) == 0;
		if (!replaced || own || col->type == NULL)
			continue;
		if (query(pf, SQL_KEPT_DEFAULT, 2, params, &res) < 0)
			return -1;
		if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
			rc = check_one_expression(
				pf, "its default, kept", tc->info->name,
				col->column, PQgetvalue(res, 0, 0), col->type);
		PQclear(res);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int
check_defaults(preflight *pf, const table_check *tc, bool analyse)
{
	const zdm_table_info *info = tc->info;

	for (size_t i = 0; i < info->nchanges; i++) {
		const zdm_change *c = &info->changes[i];

		for (size_t k = 0; k < c->ndefaults; k++) {
			const zdm_column_default *d = &c->defaults[k];
			const char *params[2] = {tc->oid, d->column};
			char object[512];
			PGresult *res;
			int rc = 0;

			if (query(pf, SQL_DEFAULT_COLUMN, 2, params, &res) < 0)
				return -1;
			snprintf(object, sizeof(object), "%s.%s", info->name,
			         d->column);
			if (PQntuples(res) == 0) {
				/* missing: the change's reads say so */
			} else if (value_true(res, 0, 0)) {
				report_problem(
					pf, object,
					"is an identity column, and PostgreSQL refuses to %s its default (contract would fail after its point of no return)",
					d->value ? "set" : "drop");
				report_hint(
					pf,
					"ALTER TABLE ... ALTER COLUMN ... DROP IDENTITY first, in a migration of its own");
			} else if (value_true(res, 0, 1)) {
				report_problem(
					pf, object,
					"is a generated column, and PostgreSQL refuses to %s its default (contract would fail after its point of no return)",
					d->value ? "set" : "drop");
			} else if (analyse && d->value) {
				rc = check_one_expression(
					pf, "default", info->name, d->column,
					d->value, PQgetvalue(res, 0, 2));
			}
			PQclear(res);
			if (rc < 0)
				return -1;
		}
		if (analyse && check_kept_defaults(pf, tc, c) < 0)
			return -1;
	}
	return 0;
}

/* ---- cdc plans ------------------------------------------------------------ */

/*
 * A text[] literal of n plain names, each double-quoted with " and \
 * escaped, so no name can break out of it.  Returns NULL (err set) when
 * out of memory; the caller frees.
 */
static char *
text_array_literal(preflight *pf, char *const *items, size_t n)
{
	size_t len = 3, used = 0;
	char *out;

	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(items[i]) + 3;
	if ((out = malloc(len)) == NULL) {
		zdm_error_set(pf->err, "out of memory");
		return NULL;
	}
	out[used++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			out[used++] = ',';
		out[used++] = '"';
		for (const char *c = items[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				out[used++] = '\\';
			out[used++] = *c;
		}
		out[used++] = '"';
	}
	out[used++] = '}';
	out[used] = '\0';
	return out;
}

/*
 * Every column of the plan's key exists (whether they make a key is
 * check_key's part, from the same catalog rows as the backfill's key).
 * Fills tc->cdc_key_shown and tc->cdc_key_exists.
 */
static int
check_cdc_key_columns(preflight *pf, table_check *tc)
{
	const char *params[2] = {tc->oid, tc->cdc_key};
	PGresult *res;
	size_t used = 0;

	if (query(pf, SQL_CDC_KEY_COLUMNS, 2, params, &res) < 0)
		return -1;
	tc->cdc_key_exists = PQntuples(res) > 0;
	for (int i = 0; i < PQntuples(res); i++) {
		int w = snprintf(tc->cdc_key_shown + used,
		                 sizeof(tc->cdc_key_shown) - used, "%s%s",
		                 i ? ", " : "", PQgetvalue(res, i, 0));
		if (w > 0 && (size_t)w < sizeof(tc->cdc_key_shown) - used)
			used += (size_t)w;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		char object[600];

		if (value_true(res, i, 1))
			continue;
		tc->cdc_key_exists = false;
		snprintf(object, sizeof(object), "%s.%s", tc->info->name,
		         PQgetvalue(res, i, 0));
		report_problem(
			pf, object,
			"column does not exist, and the sync's key (%s) names it",
			tc->cdc_key_shown);
	}
	PQclear(res);
	return 0;
}

/*
 * Whether type has the equality the sync's statements compare with
 * (SQL_CDC_EQUALITY_FMT).  object is the column in messages; physical,
 * when not NULL, the name the column has until contract (a new column's).
 * A type from the plan that does not parse or exist is check_type's
 * finding, not this one's.  Sets *found when it reports a problem.
 */
static int
check_cdc_equality(preflight *pf, const char *object, const char *type,
                   const char *physical, bool *found)
{
	size_t len = sizeof(SQL_CDC_EQUALITY_FMT) + strlen(type);
	char *sql = malloc(len);
	PGresult *res;

	if (sql == NULL) {
		zdm_error_set(pf->err, "out of memory");
		return -1;
	}
	snprintf(sql, len, SQL_CDC_EQUALITY_FMT, type);
	if (zdm_conn_exec(pf->conn, SQL_SAVEPOINT, pf->err) < 0) {
		free(sql);
		return -1;
	}
	res = PQprepare(pf->conn, "", sql, 0, NULL);
	free(sql);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		return zdm_conn_exec(pf->conn, SQL_RELEASE_SAVEPOINT, pf->err);
	}
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *msg =
			PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (state &&
		    strcmp(state, ZDM_SQLSTATE_UNDEFINED_FUNCTION) == 0) {
			if (physical)
				report_problem(
					pf, object,
					"its new type %s has no equality operator in a default btree or hash operator class, and zdm sync compares the new column (%s until contract) with a change event's value to find the row (IS NOT DISTINCT FROM)",
					type, physical);
			else
				report_problem(
					pf, object,
					"is of type %s, which has no equality operator in a default btree or hash operator class, and zdm sync compares the column with a change event's value to find the row (IS NOT DISTINCT FROM)",
					type);
			*found = true;
		} else if (!physical) {
			report_problem(
				pf, object,
				"type %s cannot be checked for equality: %s",
				type, msg ? msg : PQerrorMessage(pf->conn));
			*found = true;
		}
	}
	PQclear(res);
	return zdm_conn_exec(pf->conn, SQL_ROLLBACK_TO_SAVEPOINT, pf->err);
}

/*
 * zdm sync hands its statements each event as a row of the table built
 * from JSON, every column it does not carry NULL (jsonb_populate_record(
 * NULL::table, ...); plan-format.md, "The set of events").  A column whose
 * domain does not allow NULL makes that row impossible: every statement
 * would fail.  Asking the server is the exact test.
 */
static int
check_cdc_row_type(preflight *pf, const table_check *tc)
{
	static const char fmt[] =
		"SELECT pg_catalog.jsonb_populate_record(NULL::%s, '{}')";
	size_t len = sizeof(fmt) + strlen(tc->info->name);
	char *sql = malloc(len);
	PGresult *res;

	if (sql == NULL) {
		zdm_error_set(pf->err, "out of memory");
		return -1;
	}
	snprintf(sql, len, fmt, tc->info->name);
	if (zdm_conn_exec(pf->conn, SQL_SAVEPOINT, pf->err) < 0) {
		free(sql);
		return -1;
	}
	res = PQexec(pf->conn, sql);
	free(sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		return zdm_conn_exec(pf->conn, SQL_RELEASE_SAVEPOINT, pf->err);
	}
	{
		const char *msg =
			PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		report_problem(
			pf, tc->info->name,
			"zdm sync gives its statements each change event as a row of this table with the columns the event does not carry NULL, and such a row cannot be made: %s",
			msg ? msg : PQerrorMessage(pf->conn));
		report_hint(
			pf,
			"a column's domain does not allow NULL: make the domain allow it (the column itself can stay NOT NULL), or migrate %s with sync = trigger",
			tc->info->name);
	}
	PQclear(res);
	return zdm_conn_exec(pf->conn, SQL_ROLLBACK_TO_SAVEPOINT, pf->err);
}

/* The type the plan gives the new column zdm_new_<name>, or NULL. */
static const char *
cdc_new_column_type(const zdm_table_info *info, const char *name)
{
	for (size_t i = 0; i < info->nchanges; i++) {
		const zdm_created_column *col =
			change_created(&info->changes[i], name);

		if (col)
			return col->type;
	}
	return NULL;
}

/*
 * Every column the sync's statements compare (the params of the table's
 * syncs) has a type with equality.  Columns that exist now are checked by
 * their type; the new columns (zdm_new_<name>, created by expand) by the
 * type the plan gives them; other zdm_* columns (zdm_sync_pending,
 * boolean) are zdm's own.  A param that is no column at all is left to the
 * checks that name it (a missing key column, a missing changed column).
 */
static int
check_cdc_params(preflight *pf, const table_check *tc)
{
	static const char NEW_PREFIX[] = "zdm_new_";
	const zdm_cdc_table *t = tc->cdc;
	bool found = false;

	for (size_t s = 0; s < t->nsyncs; s++) {
		const zdm_cdc_sync *sync = &t->syncs[s];

		for (size_t p = 0; p < sync->nparams; p++) {
			const char *name = sync->params[p];
			const char *column = name, *type = NULL;
			const char *params[2] = {tc->oid, NULL};
			bool seen = false, is_new;
			char object[600];
			PGresult *res;
			int rc = 0;

			for (size_t s2 = 0; s2 <= s && !seen; s2++)
				for (size_t p2 = 0;
				     p2 < (s2 == s ? p : t->syncs[s2].nparams);
				     p2++)
					if (strcmp(t->syncs[s2].params[p2],
					           name) == 0)
						seen = true;
			if (seen)
				continue;
			is_new = strncmp(name, NEW_PREFIX,
			                 sizeof(NEW_PREFIX) - 1) == 0;
			if (is_new) {
				column = name + sizeof(NEW_PREFIX) - 1;
				if ((type = cdc_new_column_type(
					     tc->info, column)) == NULL)
					continue;
			} else if (strncmp(name, "zdm_", 4) == 0) {
				continue;
			}
			params[1] = column;
			if (query(pf, SQL_COLUMN, 2, params, &res) < 0)
				return -1;
			snprintf(object, sizeof(object), "%s.%s",
			         tc->info->name, PQgetvalue(res, 0, 0));
			if (is_new)
				rc = check_cdc_equality(pf, object, type, name,
				                        &found);
			else if (value(res, 0, 1) &&
			         atoi(PQgetvalue(res, 0, 1)) > 0)
				rc = check_cdc_equality(pf, object,
				                        PQgetvalue(res, 0, 2),
				                        NULL, &found);
			PQclear(res);
			if (rc < 0)
				return -1;
		}
	}
	if (found)
		report_hint(
			pf,
			"give such a column a type with equality before the migration (jsonb for json, text for xml), or the change a new type with one; or migrate %s with sync = trigger",
			tc->info->name);
	return 0;
}

/*
 * What a native source needs of the server, the current user and the
 * names the plan creates (SQL_CDC_SERVER, SQL_CDC_LEFTOVERS).  A leftover
 * slot, publication or origin is reported with the statement that drops
 * it, as advice only: it may belong to a run that is still under way.
 */
static int
check_cdc_source(preflight *pf)
{
	const zdm_cdc_plan *cdc = pf->plan->cdc;
	const char *names[3] = {cdc->slot, cdc->publication, cdc->origin};
	static const char *const origin_functions[3] = {
		"pg_catalog.pg_replication_origin_create(text)",
		"pg_catalog.pg_replication_origin_session_setup(text)",
		"pg_catalog.pg_replication_origin_drop(text)",
	};
	char object[600], missing[256];
	PGresult *res;
	long max, used;
	size_t nmissing = 0, len = 0;

	if (query(pf, SQL_CDC_SERVER, 0, NULL, &res) < 0)
		return -1;
	if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0) {
		report_problem(
			pf, "server",
			"wal_level is %s, and a native cdc plan needs logical: expand creates a logical replication slot, and only logical WAL can be decoded into change events",
			PQgetvalue(res, 0, 0));
		report_hint(
			pf,
			"set wal_level = logical (ALTER SYSTEM SET wal_level = logical) and restart the server: wal_level changes only at a restart");
	}
	snprintf(object, sizeof(object), "role %s", pf->user);
	if (!value_true(res, 0, 1)) {
		report_problem(
			pf, object,
			"is not a superuser and has no REPLICATION attribute, which creating replication slot %s at expand, and zdm sync's replication connection, both need",
			cdc->slot);
		report_hint(pf, "ALTER ROLE %s REPLICATION", pf->user);
	}
	missing[0] = '\0';
	for (size_t i = 0; i < 3; i++) {
		int w;

		if (value_true(res, 0, 2 + (int)i))
			continue;
		w = snprintf(missing + len, sizeof(missing) - len, "%s%s",
		             nmissing ? ", " : "", origin_functions[i]);
		if (w > 0 && (size_t)w < sizeof(missing) - len)
			len += (size_t)w;
		nmissing++;
	}
	if (nmissing) {
		report_problem(
			pf, object,
			"may not execute %s, which only a superuser may unless EXECUTE was granted: expand creates replication origin %s, zdm sync marks its own writes with it, and contract drops it",
			missing, cdc->origin);
		report_hint(pf, "GRANT EXECUTE ON FUNCTION %s TO %s", missing,
		            pf->user);
	}
	max = atol(PQgetvalue(res, 0, 5));
	used = atol(PQgetvalue(res, 0, 6));
	if (used >= max) {
		report_problem(
			pf, "server",
			"max_replication_slots is %ld and %ld slot%s exist%s, and expand creates replication slot %s",
			max, used, used == 1 ? "" : "s", used == 1 ? "s" : "",
			cdc->slot);
		report_hint(
			pf,
			"raise max_replication_slots (it changes only at a restart), or drop a slot that nothing reads any more (pg_replication_slots lists them): an abandoned slot also pins WAL");
	}
	max = atol(PQgetvalue(res, 0, 7));
	used = atol(PQgetvalue(res, 0, 8));
	if (used >= max) {
		report_problem(
			pf, "server",
			"max_wal_senders is %ld and %ld %s in use, and zdm sync reads replication slot %s over a replication connection, which takes one",
			max, used, used == 1 ? "is" : "are", cdc->slot);
		report_hint(
			pf,
			"raise max_wal_senders (it changes only at a restart), or end a replication connection that is no longer needed (pg_stat_replication lists them)");
	}
	PQclear(res);

	if (query(pf, SQL_CDC_LEFTOVERS, 3, names, &res) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *kind = PQgetvalue(res, i, 0);
		const char *name = PQgetvalue(res, i, 1);
		const char *literal = PQgetvalue(res, i, 2);

		if (strcmp(kind, "1") == 0) {
			const char *database = value(res, i, 4);
			const char *held = value(res, i, 6);

			snprintf(object, sizeof(object), "replication slot %s",
			         name);
			report_problem(
				pf, object,
				"already exists (%s%s%s, %s), and expand creates it; a slot left by a run that failed or was abandoned is an orphan, and it pins WAL on the server until it is dropped",
				PQgetvalue(res, i, 3),
				database ? ", database " : "",
				database ? database : "",
				value_true(res, i, 5) ? "active" : "inactive");
			report_hint(
				pf,
				"if no run of this migration is under way (see zdm status) and nothing else reads the slot, drop it: SELECT pg_catalog.pg_drop_replication_slot(%s)",
				literal);
			if (held)
				report_info(pf, object, "holds back %s of WAL",
				            held);
		} else if (strcmp(kind, "2") == 0) {
			snprintf(object, sizeof(object), "publication %s",
			         name);
			report_problem(
				pf, object,
				"already exists, and expand creates it; one left by a run that failed or was abandoned is an orphan");
			report_hint(
				pf,
				"if no run of this migration is under way (see zdm status) and nothing else uses the publication, drop it: DROP PUBLICATION %s",
				literal);
		} else {
			snprintf(object, sizeof(object),
			         "replication origin %s", name);
			report_problem(
				pf, object,
				"already exists, and expand creates it; one left by a run that failed or was abandoned is an orphan");
			report_hint(
				pf,
				"if no run of this migration is under way (see zdm status), drop it: SELECT pg_catalog.pg_replication_origin_drop(%s)",
				literal);
		}
	}
	PQclear(res);
	return 0;
}

/*
 * Several schemas: a table the new version would know by a name that a
 * relation in an earlier schema of its search_path also has.  The table's
 * new name is its change's table_renamed_to, else its own.
 */
static int
check_shadowed(preflight *pf)
{
	const zdm_plan *plan = pf->plan;
	char **new_names = calloc(plan->ntable_info + 1, sizeof(char *));
	char **names = calloc(plan->ntable_info + 1, sizeof(char *));
	char *tables = NULL, *renamed = NULL;
	const char *params[2];
	PGresult *res;
	int rc = -1;

	if (new_names == NULL || names == NULL) {
		zdm_error_set(pf->err, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < plan->ntable_info; i++) {
		const zdm_table_info *info = &plan->table_info[i];

		names[i] = info->name;
		new_names[i] = "";
		for (size_t j = 0; j < info->nchanges; j++)
			if (info->changes[j].table_renamed_to)
				new_names[i] =
					info->changes[j].table_renamed_to;
	}
	if ((tables = text_array_literal(pf, names, plan->ntable_info)) ==
	            NULL ||
	    (renamed = text_array_literal(pf, new_names, plan->ntable_info)) ==
	            NULL)
		goto cleanup;
	params[0] = tables;
	params[1] = renamed;
	if (query(pf, SQL_SHADOWED, 2, params, &res) < 0)
		goto cleanup;
	for (int i = 0; i < PQntuples(res); i++) {
		report_problem(
			pf, PQgetvalue(res, i, 0),
			"the new version knows it as %s, without a schema, and %s has that name in a schema before %s in the search_path: the old version's %s is %s, the new version's would be this table until contract and %s after",
			PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			PQgetvalue(res, i, 3), PQgetvalue(res, i, 1),
			PQgetvalue(res, i, 2), PQgetvalue(res, i, 2));
		report_hint(
			pf,
			"rename one of them first, in a migration of its own");
	}
	PQclear(res);
	rc = 0;
cleanup:
	free(tables);
	free(renamed);
	free(names);
	free(new_names);
	return rc;
}

/* The checks of one table; check_table prepares tc. */
/*
 * A table the plan drops: nothing outside it may depend on it, or the
 * contract's DROP TABLE fails past the point where the new version uses
 * the new shape.
 */
static int
check_dropped_table(preflight *pf, const table_check *tc)
{
	const char *params[1] = {tc->oid};
	PGresult *res;

	if (query(pf, SQL_TABLE_DEPENDENTS, 1, params, &res) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		report_problem(
			pf, tc->info->name,
			"%s depends on it, and the plan drops the table at contract: drop or change that first",
			PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

static int
check_table_checks(preflight *pf, table_check *tc)
{
	bool usable;
	int problems_before = pf->problems;

	if (check_table_kind(pf, tc, &usable) < 0)
		return -1;
	if (!usable)
		return 0;
	if (check_reserved_names(pf, tc) < 0 || check_publications(pf, tc) < 0)
		return -1;
	for (size_t i = 0; i < tc->info->nchanges; i++)
		if (check_change(pf, tc, &tc->info->changes[i]) < 0 ||
		    check_change_objects(pf, tc, &tc->info->changes[i]) < 0 ||
		    (tc->info->changes[i].table_dropped &&
		     check_dropped_table(pf, tc) < 0))
			return -1;
	if (check_triggers(pf, tc) < 0)
		return -1;
	/* a rename writes no row and changes no column's type */
	if (tc->has_replaced &&
	    (check_rules(pf, tc) < 0 || check_row_type(pf, tc) < 0))
		return -1;
	if (tc->cdc && check_cdc_key_columns(pf, tc) < 0)
		return -1;
	/* only a backfill batches and only checks name rows: a table that is
	 * just renamed needs no key (unless the sync names rows by one) */
	if ((tc->has_replaced || tc->cdc) && check_key(pf, tc) < 0)
		return -1;
	/* only on a table that is otherwise as the plan expects: a missing
	 * column would be reported twice */
	if (pf->problems == problems_before &&
	    (check_expressions(pf, tc) < 0 ||
	     check_reverse_expressions(pf, tc) < 0))
		return -1;
	if (check_defaults(pf, tc, pf->problems == problems_before) < 0)
		return -1;
	if (tc->cdc &&
	    (check_cdc_params(pf, tc) < 0 || check_cdc_row_type(pf, tc) < 0))
		return -1;
	return 0;
}

/*
 * A table the plan creates: its schema must exist and its name be free.
 * Nothing else of it can be checked before it exists; the other changes of
 * the table (an index on it) act on the new table.
 */
static int
check_new_table(preflight *pf, const zdm_table_info *info)
{
	const char *params[1] = {info->name};
	PGresult *res;

	if (query(pf, SQL_NEW_TABLE, 1, params, &res) < 0)
		return -1;
	if (PQntuples(res) != 1 || !value_true(res, 0, 0))
		report_problem(
			pf, info->name,
			"the schema of the table to create does not exist");
	else if (value_true(res, 0, 1))
		report_problem(
			pf, info->name,
			"already exists (a relation or a type of that name), and the plan creates it");
	PQclear(res);
	return 0;
}

static int
check_table(preflight *pf, const zdm_table_info *info)
{
	const zdm_cdc_plan *cdc = pf->plan->cdc;
	table_check tc;
	int rc;

	for (size_t i = 0; i < info->nchanges; i++)
		if (info->changes[i].table_created)
			return check_new_table(pf, info);

	memset(&tc, 0, sizeof(tc));
	tc.info = info;
	for (size_t i = 0; i < info->nchanges; i++)
		if (change_replaces(&info->changes[i]))
			tc.has_replaced = true;
	for (size_t i = 0; cdc && i < cdc->ntables && !tc.cdc; i++)
		if (strcmp(cdc->tables[i].table, info->name) == 0)
			tc.cdc = &cdc->tables[i];
	if (tc.cdc && (tc.cdc_key = text_array_literal(pf, tc.cdc->key,
	                                               tc.cdc->nkey)) == NULL)
		return -1;
	rc = check_table_checks(pf, &tc);
	free(tc.cdc_key);
	return rc;
}

/* Was type created by a statement before statement i of the plan? */
static bool
created_before(const zdm_plan *plan, size_t i, const char *type)
{
	for (size_t j = 0; j < i; j++)
		if (plan->statements[j].type_created &&
		    strcmp(plan->statements[j].type_created, type) == 0)
			return true;
	return false;
}

/* drop index: the index exists, can be dropped concurrently, and no
 * constraint needs it. */
static int
check_index_dropped(preflight *pf, const zdm_statement *st)
{
	const char *params[1] = {st->index_dropped};
	PGresult *res;
	char why[256], object[400];
	const char *kind;

	snprintf(object, sizeof(object), "index %s", st->index_dropped);
	if (query_guarded(pf, SQL_INDEX_TO_DROP, 1, params, &res, why,
	                  sizeof(why)) < 0)
		return -1;
	if (!res) {
		report_problem(pf, object, "is not a relation name (%s)", why);
		return 0;
	}
	if (PQntuples(res) == 0) {
		report_problem(pf, object, "does not exist (%s)", st->at);
		PQclear(res);
		return 0;
	}
	kind = value(res, 0, 0);
	if (strcmp(kind, "I") == 0)
		report_problem(
			pf, object,
			"is an index of a partitioned table, which PostgreSQL cannot drop concurrently (%s)",
			st->at);
	else if (strcmp(kind, "i") != 0)
		report_problem(pf, object, "is not an index (%s)", st->at);
	else if (!PQgetisnull(res, 0, 1)) {
		report_problem(pf, object,
		               "cannot be dropped while %s depends on it (%s)",
		               value(res, 0, 1), st->at);
		report_hint(
			pf,
			"drop the constraint instead (alter table ... drop constraint)");
	}
	PQclear(res);
	return 0;
}

/* create type: the schema exists and the name is free. */
static int
check_type_created(preflight *pf, const zdm_statement *st)
{
	const char *params[1] = {st->type_created};
	PGresult *res;
	char object[400];

	snprintf(object, sizeof(object), "type %s", st->type_created);
	if (query(pf, SQL_NEW_TABLE, 1, params, &res) < 0)
		return -1;
	if (PQntuples(res) == 0 || !value_true(res, 0, 0))
		report_problem(pf, object, "its schema does not exist (%s)",
		               st->at);
	else if (value_true(res, 0, 1))
		report_problem(pf, object,
		               "a type or relation of that name exists (%s)",
		               st->at);
	PQclear(res);
	return 0;
}

/* add value, rename value: the type is an enum with the labels the
 * statement needs.  ADD VALUE IF NOT EXISTS would let a label that is
 * there pass silently; preflight says so instead (the plan would do
 * nothing). */
static int
check_enum_labels(preflight *pf, const zdm_statement *st)
{
	const char *params[3];
	PGresult *res;
	char why[256], object[400];

	snprintf(object, sizeof(object), "type %s", st->enum_type);
	params[0] = st->enum_type;
	params[1] = st->label_added ? st->label_added : st->label_renamed;
	params[2] =
		st->label_added ? st->label_neighbour : st->label_renamed_to;
	if (query_guarded(pf, SQL_ENUM_LABELS, 3, params, &res, why,
	                  sizeof(why)) < 0)
		return -1;
	if (!res) {
		report_problem(pf, object, "is not a type name (%s)", why);
		return 0;
	}
	if (PQntuples(res) == 0)
		report_problem(pf, object, "does not exist (%s)", st->at);
	else if (!value_true(res, 0, 0))
		report_problem(pf, object, "is not an enum type (%s)", st->at);
	else if (st->label_added && value_true(res, 0, 1))
		report_problem(pf, object, "already has the label '%s' (%s)",
		               st->label_added, st->at);
	else if (st->label_neighbour && !value_true(res, 0, 2))
		report_problem(pf, object,
		               "has no label '%s' to place '%s' by (%s)",
		               st->label_neighbour, st->label_added, st->at);
	else if (st->label_renamed && !value_true(res, 0, 1))
		report_problem(pf, object, "has no label '%s' (%s)",
		               st->label_renamed, st->at);
	else if (st->label_renamed && value_true(res, 0, 2))
		report_problem(pf, object, "already has the label '%s' (%s)",
		               st->label_renamed_to, st->at);
	PQclear(res);
	return 0;
}

/*
 * The statements on no table: what each needs of the database.  A label
 * statement on a type created above in the plan needs nothing (the
 * compiler saw both).
 */
static int
check_statements(preflight *pf)
{
	const zdm_plan *plan = pf->plan;

	for (size_t i = 0; i < plan->nstatements; i++) {
		const zdm_statement *st = &plan->statements[i];

		if (st->index_dropped && check_index_dropped(pf, st) < 0)
			return -1;
		if (st->type_created && check_type_created(pf, st) < 0)
			return -1;
		if (st->enum_type && !created_before(plan, i, st->enum_type) &&
		    check_enum_labels(pf, st) < 0)
			return -1;
	}
	return 0;
}

/*
 * No other migration is in flight on a table of the plan (its claim in the
 * journal, journal.h).  An early, complete report only: two runners can
 * both pass here, and zdm_journal_start checks again, under a lock, in the
 * transaction that takes the claims.
 */
static int
check_claims(preflight *pf)
{
	for (size_t i = 0; i < pf->plan->ntables; i++) {
		zdm_claim_holder holder;
		char problem[1024], hint[512];

		switch (zdm_journal_claim_holder(pf->conn, pf->plan->migration,
		                                 pf->plan->tables[i], &holder,
		                                 pf->err)) {
		case -1:
			return -1;
		case 0:
			continue;
		}
		zdm_journal_claim_problem(&holder, problem, sizeof(problem),
		                          hint, sizeof(hint));
		report_problem(pf, pf->plan->tables[i], "%s", problem);
		report_hint(pf, "%s", hint);
	}
	return 0;
}

int
zdm_preflight(PGconn *conn, const zdm_plan *plan, FILE *report, zdm_error *err)
{
	preflight pf;
	char timeout[32];
	const char *params[1] = {timeout};
	PGresult *res;
	bool server_ok;
	int error = -1;

	assert(conn && plan && report && err);
	assert(PQtransactionStatus(conn) == PQTRANS_IDLE);
	memset(&pf, 0, sizeof(pf));
	pf.conn = conn;
	pf.plan = plan;
	pf.report = report;
	pf.err = err;
	zdm_error_clear(err);

	if (zdm_conn_exec(conn, SQL_BEGIN, err) < 0)
		return -1;
	snprintf(timeout, sizeof(timeout), "%ldms", plan->lock_timeout_ms);
	if (query(&pf, SQL_LOCK_TIMEOUT, 1, params, &res) < 0)
		goto cleanup;
	PQclear(res);

	if (check_server(&pf, &server_ok) < 0)
		goto cleanup;
	/* an older server's catalogs may lack what the checks below read */
	if (server_ok) {
		if (check_database(&pf) < 0 || check_claims(&pf) < 0)
			goto cleanup;
		if (plan->cdc && strcmp(plan->cdc->source, "native") == 0 &&
		    check_cdc_source(&pf) < 0)
			goto cleanup;
		for (size_t i = 0; i < plan->ntable_info; i++)
			if (check_table(&pf, &plan->table_info[i]) < 0)
				goto cleanup;
		if (plan->nversion_schemas > 1 && check_shadowed(&pf) < 0)
			goto cleanup;
		if (check_statements(&pf) < 0)
			goto cleanup;
	}
	error = 0;

cleanup:
	fflush(report);
	if (error < 0) {
		/* keep the server's error, not the rollback's */
		zdm_error saved = *err;

		zdm_conn_exec(conn, SQL_ROLLBACK, err);
		*err = saved;
		return -1;
	}
	if (zdm_conn_exec(conn, SQL_ROLLBACK, err) < 0)
		return -1;
	if (pf.problems > 0) {
		zdm_error_set(err, "preflight found %d problem%s", pf.problems,
		              pf.problems == 1 ? "" : "s");
		return -1;
	}
	return 0;
}
