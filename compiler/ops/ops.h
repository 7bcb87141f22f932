/*
 * ops.h -- the operations of the language, as a table of small vtables.
 *
 * Every operation (split column, alter column type, rename column, ...) is
 * one file in this directory defining one `const zdmc_op`, listed in the
 * table of ops.c under its AST tag.  The rest of the compiler reaches an
 * operation only through this interface, never by testing which one it is.
 *
 * The contract an op keeps:
 *
 *   check    judges its own AST node (and nothing else) with check.h,
 *            reporting at the token it is about and carrying on; it
 *            declares the change's facts -- reads, creates, replaces,
 *            renames, reverse, irreversible -- which are both plan format
 *            3's description of the change and what the shared rules of
 *            check.c and the lowering work from.  A change that replaces
 *            columns through shadow columns registers with replace.h here.
 *   summary  one sentence for people ("split name into first_name,
 *            last_name"), written to the plan; never parsed back.
 *   facts    (optional) the plan's facts that model.h has no field for
 *            (constraints, indexes, references, a table's new name,
 *            defaults); the common ones are written from the change.
 *   cdc_sync (optional) with sync = cdc, the sync of the plan's cdc
 *            section for a change that keeps a second shape in step on its
 *            own (split table); the column replacement makes its own.
 *   lower    its steps, slot by slot.  The phase driver (lower.c) walks
 *            the phases table by table and, at each slot, calls the hook
 *            of every change of the table in source order; a NULL hook
 *            contributes nothing.  Slots run inside the table's
 *            transaction label unless their comment says otherwise, so a
 *            hook adds plain sql steps with zdmc_lower_step and never
 *            changes labels; a statement PostgreSQL refuses in a
 *            transaction block goes in an *_AFTER slot, or verify, as
 *            zdmc_lower_autocommit_step.  The shared column replacement
 *            (replace.h) runs its table-wide steps itself; its per-change
 *            steps are hooks an op puts in its slots.
 *
 * An op must not report errors after check (lowering never fails), read
 * another change's node, or touch the database (the compiler never
 * connects anywhere).  Adding an op: a tag and node type in ast.h, one
 * grammar production, one file here, one line in ops.c, its tests.
 */
#ifndef ZDMC_OPS_H
#define ZDMC_OPS_H

#include "check.h"
#include "lower.h"

/* Where in a phase a hook's steps go, in the order the driver runs them. */
typedef enum zdmc_slot {
	/* expand, in the table's transaction, first of all: what creates the
	 * table itself */
	ZDMC_SLOT_EXPAND_CREATE,
	/* expand, in the table's transaction: after the shared machinery's
	 * columns, sync and cdc steps, before the new version's view */
	ZDMC_SLOT_EXPAND,
	/* expand, in the table's transaction, after the new version's view:
	 * what the view itself needs (a column default) */
	ZDMC_SLOT_EXPAND_VIEW,
	/* expand, after the table's transaction: each step its own (e.g.
	 * CREATE UNIQUE INDEX CONCURRENTLY as an autocommit step) */
	ZDMC_SLOT_EXPAND_AFTER,
	/* backfill, after the shared backfill of the table */
	ZDMC_SLOT_BACKFILL,
	/* verify, each step its own transaction: the change's checks
	 * (VALIDATE CONSTRAINT, counts), and a concurrent index build as an
	 * autocommit step */
	ZDMC_SLOT_VERIFY,
	/* switch, after the switch gate: what must happen as applications
	 * move (e.g. a view under a table's new name) */
	ZDMC_SLOT_SWITCH,
	/* contract, in the table's transaction, after the view and the sync
	 * are gone: drop what the new shape no longer has */
	ZDMC_SLOT_CONTRACT_DROP,
	/* contract, after the backfill marker is gone: put the new shape's
	 * names in place (renames) */
	ZDMC_SLOT_CONTRACT,
	/* contract, in the table's transaction, last: what renames the table
	 * (every statement before names it by its old name) */
	ZDMC_SLOT_CONTRACT_LAST,
	/* contract, after the table's transaction: each step its own */
	ZDMC_SLOT_CONTRACT_AFTER,
	ZDMC_NSLOTS
} zdmc_slot;

typedef void (*zdmc_op_lower_fn)(zdmc_lower_ctx *l, const zdmc_table *table,
                                 const zdmc_change *change);

typedef struct zdmc_op {
	const char *name; /* the plan's change: value, e.g. "split_column" */
	void (*check)(zdmc_check_ctx *ck, zdmc_change *change);
	const char *(*summary)(zdmc_arena *arena, const zdmc_change *change);
	/* the plan's facts beyond those of model.h (constraints_created,
	 * indexes_created, references, table_renamed_to, defaults, ...),
	 * added to out; NULL: none */
	void (*facts)(zdmc_arena *arena, const zdmc_change *change,
	              zdmc_plan_change *out);
	zdmc_op_lower_fn lower[ZDMC_NSLOTS];
	/* sync = cdc, for a change that keeps a second shape in step without
	 * the column replacement: what zdm sync does with the table's change
	 * events (one sync of the plan's cdc section); NULL: nothing */
	zdmc_plan_cdc_sync *(*cdc_sync)(zdmc_lower_ctx *l,
	                                const zdmc_table *table,
	                                const zdmc_change *change);
} zdmc_op;

extern const zdmc_op zdmc_op_split_column;
extern const zdmc_op zdmc_op_alter_column_type;
extern const zdmc_op zdmc_op_rename_column;
extern const zdmc_op zdmc_op_add_column;
extern const zdmc_op zdmc_op_drop_column;
extern const zdmc_op zdmc_op_set_not_null;
extern const zdmc_op zdmc_op_drop_not_null;
extern const zdmc_op zdmc_op_set_default;
extern const zdmc_op zdmc_op_drop_default;
extern const zdmc_op zdmc_op_rename_table;
extern const zdmc_op zdmc_op_merge_columns;
extern const zdmc_op zdmc_op_add_check;
extern const zdmc_op zdmc_op_add_unique;
extern const zdmc_op zdmc_op_add_primary_key;
extern const zdmc_op zdmc_op_add_foreign_key;
extern const zdmc_op zdmc_op_drop_constraint;
extern const zdmc_op zdmc_op_rename_constraint;
extern const zdmc_op zdmc_op_create_index;
extern const zdmc_op zdmc_op_create_table;
extern const zdmc_op zdmc_op_drop_table;
extern const zdmc_op zdmc_op_split_table;

/* The op of an action (by its tag). */
const zdmc_op *zdmc_op_for(const zdmc_action *action);

#endif
