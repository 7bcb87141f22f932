/*
 * split_column.c -- split column C into A type using (...), B type using
 * (...) reverse using (...) | irreversible.
 *
 * One old column becomes two or more new ones, each computed from the old
 * shape by its using; reverse using computes C back from the new columns
 * so the old version keeps working until contract.  The work is the
 * column replacement's (replace.h): this file judges the clause, states
 * its facts -- reads [C], creates the new columns, replaces [C], reverse
 * [C] -- and hooks the replacement's per-change steps into its slots.  It
 * must not generate SQL of its own or look at other changes.
 */
#include <string.h>

#include "ops.h"
#include "replace.h"

static void
split_column_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_split_column *n = ZDMC_ACTION_CAST(
		zdmc_split_column, ZDMC_ACTION_SPLIT_COLUMN, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	const zdmc_coldef *def;
	zdmc_buf names;

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_change_add_read(ck, change, n->column.name);
	if (n->into.n < 2)
		zdmc_diag_error(
			zdmc_check_diag(ck), n->action.offset,
			"split column \"%s\" needs at least two new columns; to transform one column use alter column ... type ... using",
			n->column.name);
	zdmc_buf_init(&names, arena);
	for (def = n->into.first; def != NULL; def = def->next) {
		zdmc_newcol *col = zdmc_change_add_create(
			ck, change, def->name.name, def->type.text);

		col->not_null = def->not_null;
		zdmc_buf_printf(&names, "%s%s", names.len ? ", " : "",
		                def->name.name);
		zdmc_check_ident_length(ck, &def->name);
		zdmc_check_added_column(ck, &def->name);
		zdmc_check_new_name(ck, change, &def->name);
		zdmc_check_type(ck, &def->type);
		if (def->using.text == NULL)
			zdmc_diag_error(
				zdmc_check_diag(ck), def->name.offset,
				"new column \"%s\" needs a using (...) expression computing it from the old shape",
				def->name.name);
		else
			col->forward =
				zdmc_check_expr(ck, &def->using, "using");
	}
	zdmc_change_add_replace(ck, change, n->column.name);
	zdmc_check_reverse(ck, change, &n->into.reverse, &n->column,
	                   "split of column");
	zdmc_replace_register(
		ck, change,
		zdmc_arena_printf(arena, "split column %s into %s",
	                          n->column.name, zdmc_buf_cstr(&names)));
}

/* "split name into first_name, last_name" */
static const char *
split_column_summary(zdmc_arena *arena, const zdmc_change *change)
{
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_printf(&b, "split %s into ", change->replaces[0]);
	for (size_t i = 0; i < change->ncols; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : "",
		                change->cols[i].name);
	return zdmc_buf_cstr(&b);
}

const zdmc_op zdmc_op_split_column = {
	.name = "split_column",
	.check = split_column_check,
	.summary = split_column_summary,
	.lower =
		{
			[ZDMC_SLOT_VERIFY] = zdmc_replace_verify_change,
			[ZDMC_SLOT_CONTRACT_DROP] = zdmc_replace_drop_replaced,
			[ZDMC_SLOT_CONTRACT] = zdmc_replace_rename_into_place,
		},
};
