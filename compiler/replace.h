/*
 * replace.h -- column replacement: the machinery every change shares that
 * replaces existing columns by new ones while both application versions
 * write (split column, alter column type; later set not null with using,
 * add column with a volatile default, drop column with reverse using,
 * merge columns).
 *
 * Its unit is a change's facts (model.h): the old columns it replaces, the
 * columns it creates (each with using, in old-shape names), and the old
 * columns it computes back from the new shape (reverse, in new-shape
 * names; none when irreversible).  A change registers with
 * zdmc_replace_register in its op's check; from then on, per table:
 *
 *   expand    the created columns as nullable zdm_new_<name> plus the
 *             backfill marker zdm_sync_pending, in one ALTER TABLE; then
 *             either the sync trigger function and its two triggers
 *             (trigger), or the replica identity and the old columns' NOT
 *             NULL (cdc), whose syncs zdmc_replace_cdc_syncs describes;
 *   backfill  one batched UPDATE filling every created column;
 *   verify    nothing left pending, per change the parity and round-trip
 *             checks (zdmc_replace_verify_change), the created columns'
 *             NOT NULL as validated checks;
 *   contract  the sync gone, the replaced columns dropped
 *             (zdmc_replace_drop_replaced), the marker dropped, the
 *             created columns renamed into place
 *             (zdmc_replace_rename_into_place), NOT NULL set.
 *
 * The table-wide steps are called by the phase driver for every table with
 * a registered change (needs_sync); the per-change ones are hooks the op
 * puts in its slots (ops.h).  The generated SQL reads a change's facts
 * only: no op is named here, and adding an op that replaces columns adds
 * nothing here.  This file must not report errors.
 */
#ifndef ZDMC_REPLACE_H
#define ZDMC_REPLACE_H

#include "check.h"
#include "lower.h"

/* The column that marks rows whose created columns were never computed. */
#define ZDMC_PENDING_COLUMN "zdm_sync_pending"

typedef struct zdmc_replace {
	/* what the generated SQL's comments call the change, e.g. "split
	 * column name into first_name, last_name" */
	const char *title;
} zdmc_replace;

/* In an op's check: change replaces columns through shadow columns. */
void zdmc_replace_register(zdmc_check_ctx *ck, zdmc_change *change,
                           const char *title);

/* expand, for a table without needs_sync: the columns its changes create
 * (catalog only), if any. */
void zdmc_replace_add_created(zdmc_lower_ctx *l, const zdmc_table *table);

/* Table-wide steps, for a table with needs_sync, by phase. */
void zdmc_replace_expand(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_backfill(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_verify_begin(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_verify_end(zdmc_lower_ctx *l, const zdmc_table *table);
/* contract with cdc, before zdm sync stops: the NOT NULL checks that
 * verify leaves to contract (an old-version INSERT leaves the created
 * columns NULL until the sync fills them) */
/* expand, after the table's view: the view's defaults of the created
 * columns that keep a replaced column's name (its default, cast) */
void zdmc_replace_view_defaults(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_contract_prepare(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_contract_sync(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_contract_marker(zdmc_lower_ctx *l, const zdmc_table *table);
void zdmc_replace_contract_finish(zdmc_lower_ctx *l, const zdmc_table *table);
/* sync = cdc: the syncs of the table's registered changes, in order. */
zdmc_plan_cdc_sync *zdmc_replace_cdc_syncs(zdmc_lower_ctx *l,
                                           const zdmc_table *table);

/* Per-change hooks (zdmc_op_lower_fn), for an op's slots. */
void zdmc_replace_verify_change(zdmc_lower_ctx *l, const zdmc_table *table,
                                const zdmc_change *change);
void zdmc_replace_drop_replaced(zdmc_lower_ctx *l, const zdmc_table *table,
                                const zdmc_change *change);
void zdmc_replace_rename_into_place(zdmc_lower_ctx *l, const zdmc_table *table,
                                    const zdmc_change *change);

#endif
