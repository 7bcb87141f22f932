/*
 * constraint.h -- what the constraint operations share (add check, add
 * unique, add primary key, add foreign key, drop constraint, rename
 * constraint, and add column's inline constraints): checking a list of key
 * columns, and the three SQL patterns that keep every scan away from a lock
 * that blocks writes.
 *
 *   validate   a constraint added NOT VALID at expand (it binds every
 *              writer from then on) is validated at verify in three steps:
 *              VALIDATE in a DO block that leaves it NOT VALID when rows
 *              break it; a check that counts those rows (with examples)
 *              only while it is NOT VALID, so the run stops with a count
 *              when it must and scans nothing more when all is well; and a
 *              plain VALIDATE, which does nothing once validated and
 *              validates after the rows were fixed and the run resumed
 *              from the check.  One scan when the data is good, instead of
 *              a count and a VALIDATE.
 *   not null   the key columns of a primary key that are not NOT NULL get
 *              CHECK (c IS NOT NULL) NOT VALID (zdm_nn_<c>), validated the
 *              same way, so that contract's SET NOT NULL and ADD PRIMARY
 *              KEY USING INDEX scan nothing under ACCESS EXCLUSIVE.
 *   unique     the index is built by CREATE UNIQUE INDEX CONCURRENTLY,
 *              an autocommit step whose diagnose counts the key values
 *              more than one row holds (with examples): the runtime runs
 *              it only when the build failed, so that duplicates stop the
 *              run with a count and no scan is spent on them when the
 *              build succeeds; contract makes the index the constraint.
 *
 * Everything here adds steps through lower.h or reports through check.h;
 * it never looks at another change.
 */
#ifndef ZDMC_OPS_CONSTRAINT_H
#define ZDMC_OPS_CONSTRAINT_H

#include "ops.h"

/*
 * A key's columns (unique, primary key, a foreign key's own columns): each
 * named once, kept by every other action (check.h), and read from the
 * live table (the change's reads).  what names the list in messages.
 */
void zdmc_constraint_check_columns(zdmc_check_ctx *ck, zdmc_change *change,
                                   const zdmc_name_list *columns,
                                   const char *what);

/* The fact constraints_created: name appended (add column's inline
 * constraints are several). */
void zdmc_constraint_created(zdmc_arena *arena, zdmc_plan_change *out,
                             const char *name);

/*
 * The check of add constraint N unique (...) and primary key (...): the
 * name, the columns; the index the key builds (op_data, a string:
 * "schema.N"), whose facts zdmc_constraint_key_facts writes.
 */
void zdmc_constraint_check_key(zdmc_check_ctx *ck, zdmc_change *change,
                               const zdmc_add_key *key);
void zdmc_constraint_key_facts(zdmc_arena *arena, const zdmc_change *change,
                               const zdmc_add_key *key, zdmc_plan_change *out);

/* "a, b", each quoted as needed; with prefix ("t.") before each. */
const char *zdmc_constraint_column_list(zdmc_lower_ctx *l,
                                        const zdmc_name_list *columns,
                                        const char *prefix);

/* s as an element of a text[] literal: "double-quoted", with \ and "
 * escaped (the literal itself still needs quoting as a string). */
const char *zdmc_constraint_array_item(zdmc_arena *arena, const char *s);

/* 'schema.table'::pg_catalog.regclass */
const char *zdmc_constraint_regclass(zdmc_lower_ctx *l, const zdmc_table *t);

/* DO $tag$ body $tag$, with a tag the body cannot close. */
const char *zdmc_constraint_do(zdmc_lower_ctx *l, const char *body);

/*
 * Verify, for a constraint added NOT VALID: the three steps above.  name
 * is the constraint's (plain); violation the condition name VALIDATE
 * raises when a row breaks it (check_violation, foreign_key_violation);
 * offenders "FROM ... WHERE ..." of the rows that break it, as rows of
 * table; examples the query showing up to 5 of them; what describes the
 * rows that break it ("rows whose ... name no row of ...").
 */
void zdmc_constraint_validate(zdmc_lower_ctx *l, const zdmc_table *t,
                              const char *name, const char *violation,
                              const char *offenders, const char *examples,
                              const char *what);

/*
 * Verify, for a unique key (unique, primary key): the index's concurrent
 * build, with the count of duplicated key values as its diagnose.  name is
 * the constraint's and its index's.
 */
void zdmc_constraint_unique_index(zdmc_lower_ctx *l, const zdmc_table *t,
                                  const char *name,
                                  const zdmc_name_list *columns);

/* The index a unique key builds: "schema.name", quoted as needed. */
const char *zdmc_constraint_index_name(zdmc_arena *arena, const zdmc_table *t,
                                       const char *name);

/*
 * Each kind's own statements, for the add constraint actions and for add
 * column's inline check, unique and references (whose column goes by
 * zdm_new_<name> until contract, so columns and expressions come here as
 * the table names them when the steps run).  Each lives in its action's
 * file, its one home.
 */

/* add_check.c: ALTER TABLE ... ADD CONSTRAINT name CHECK (expr) NOT VALID
 * (undone by DROP CONSTRAINT), then, at verify, its validation; shown: the
 * columns the examples show ("ctid, a, b"). */
void zdmc_constraint_check_add(zdmc_lower_ctx *l, const zdmc_table *t,
                               const char *name, const char *expr);
void zdmc_constraint_check_validate(zdmc_lower_ctx *l, const zdmc_table *t,
                                    const char *name, const char *expr,
                                    const char *shown);

/* add_unique.c: at contract, the unique index name becomes the constraint
 * name (ADD CONSTRAINT ... UNIQUE USING INDEX: catalog only). */
void zdmc_constraint_unique_attach(zdmc_lower_ctx *l, const zdmc_table *t,
                                   const char *name);

/*
 * add_foreign_key.c.  The references part of a foreign key named name with
 * ncolumns columns (refs: its referenced table, columns and actions; its
 * own name and columns are not read): checked, returning the referenced
 * table quoted and qualified (the table's schema when none is written);
 * its fact references; ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID (undone
 * by DROP CONSTRAINT) and, at verify, its validation.
 */
const char *zdmc_constraint_check_references(zdmc_check_ctx *ck,
                                             const zdmc_add_foreign_key *refs,
                                             const char *name, size_t ncolumns);
void zdmc_constraint_references_fact(zdmc_arena *arena,
                                     const zdmc_add_foreign_key *refs,
                                     const char *ref_qname,
                                     zdmc_plan_change *out);
void zdmc_constraint_foreign_key_add(zdmc_lower_ctx *l, const zdmc_table *t,
                                     const char *name,
                                     const zdmc_name_list *columns,
                                     const zdmc_add_foreign_key *refs,
                                     const char *ref_qname);
void zdmc_constraint_foreign_key_validate(zdmc_lower_ctx *l,
                                          const zdmc_table *t, const char *name,
                                          const zdmc_name_list *columns,
                                          const zdmc_add_foreign_key *refs,
                                          const char *ref_qname);

#endif
