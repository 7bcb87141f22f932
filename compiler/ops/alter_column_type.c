/*
 * alter_column_type.c -- alter column C [set data] type T [using (...)]
 * reverse using (...) | irreversible.
 *
 * The column is replaced by a shadow column of the new type under the
 * same name (replace.h): using (or, without one, C itself converted by the
 * assignment, as ALTER TABLE ... TYPE would) fills it; reverse using
 * writes C back for the old version.  Its facts: reads [C], creates [C of
 * type T], replaces [C], reverse [C].  The old column's NOT NULL is carried
 * over at run time from the catalog (the compiler cannot know it), so the
 * created column says not_null: false.  This file must not generate SQL of
 * its own or look at other changes.
 */
#include <string.h>

#include "ident.h"
#include "ops.h"
#include "replace.h"

static void
alter_column_type_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_alter_column_type *n =
		ZDMC_ACTION_CAST(zdmc_alter_column_type,
	                         ZDMC_ACTION_ALTER_COLUMN_TYPE, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_newcol *col;

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_check_added_column(ck, &n->column);
	zdmc_check_new_name(ck, change, &n->column);
	zdmc_change_add_read(ck, change, n->column.name);
	col = zdmc_change_add_create(ck, change, n->column.name, n->type.text);
	col->carry_not_null = true;
	zdmc_change_add_replace(ck, change, n->column.name);
	zdmc_replace_register(ck, change,
	                      zdmc_arena_printf(arena,
	                                        "alter column %s type %s",
	                                        n->column.name, n->type.text));
	if (zdmc_check_type(ck, &n->type) != 0)
		return;
	if (n->using.text != NULL) {
		col->forward = zdmc_check_expr(ck, &n->using, "using");
	} else {
		/* no using: the column itself, converted by the assignment to
		 * the new column as ALTER TABLE ... TYPE would (an assignment
		 * cast: a value too long for varchar(5) is an error, where an
		 * explicit CAST would cut it silently) */
		zdmc_expr cast;

		memset(&cast, 0, sizeof(cast)); /* no commas */
		cast.text = zdmc_ident_quote(arena, n->column.name);
		cast.len = strlen(cast.text);
		cast.offset = n->type.offset;
		col->forward = zdmc_check_expr(ck, &cast, "using");
		col->forward_implied = true;
	}
	zdmc_check_reverse(ck, change, &n->reverse, &n->column,
	                   "type change of column");
}

/* "change amount to numeric(12,2)" */
static const char *
alter_column_type_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "change %s to %s", change->replaces[0],
	                         change->cols[0].type);
}

const zdmc_op zdmc_op_alter_column_type = {
	.name = "alter_column_type",
	.check = alter_column_type_check,
	.summary = alter_column_type_summary,
	.lower =
		{
			[ZDMC_SLOT_VERIFY] = zdmc_replace_verify_change,
			[ZDMC_SLOT_CONTRACT_DROP] = zdmc_replace_drop_replaced,
			[ZDMC_SLOT_CONTRACT] = zdmc_replace_rename_into_place,
		},
};
