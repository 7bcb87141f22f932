/*
 * ast.c -- helpers the parser uses to assemble statements.
 *
 * The grammar sees "split column c into a t using (..), b t using (..)
 * reverse using (..)" as a split followed by column definitions, because
 * after a comma LALR(1) cannot yet tell a new column from a new action.
 * Here each column definition joins the open split before it; the reverse
 * clause, written after the last new column, closes the split.
 */
#include "ast.h"

void
zdmc_ast_add_action(zdmc_diag *diag, zdmc_stmt *stmt, zdmc_action *action)
{
	(void)diag;
	if (stmt->last_action)
		stmt->last_action->next = action;
	else
		stmt->actions = action;
	stmt->last_action = action;
}

void
zdmc_ast_add_coldef(zdmc_diag *diag, zdmc_stmt *stmt, zdmc_coldef *coldef)
{
	zdmc_action *split = stmt->last_action;
	zdmc_coldef **tail;

	if (split == NULL || split->kind != ZDMC_ACTION_SPLIT) {
		zdmc_diag_error(
			diag, coldef->offset,
			"column definition \"%s\" outside a split: expected split, rename or alter column",
			coldef->name.name);
		stmt->broken = true;
		return;
	}
	if (split->split_closed) {
		zdmc_diag_error(
			diag, coldef->offset,
			"new column \"%s\" comes after the split's reverse clause; write reverse using after the last new column",
			coldef->name.name);
		stmt->broken = true;
		return;
	}
	for (tail = &split->into; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = coldef;
	split->ninto++;
	if (coldef->reverse.kind != ZDMC_REVERSE_MISSING) {
		split->reverse = coldef->reverse;
		split->split_closed = true;
	}
}
