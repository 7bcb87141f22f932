/*
 * ast.c -- helpers the parser uses to assemble statements, and the checked
 * cast from an action's header to its node.
 *
 * The grammar sees "split column c into a t using (..), b t using (..)
 * reverse using (..)" as a split followed by column definitions, because
 * after a comma LALR(1) cannot yet tell a new column from a new action.
 * Here each column definition joins the open list of the action before it;
 * the reverse clause, written after the last new column, closes the list.
 * Nothing here knows which operation owns a list: the action hands it over.
 */
#include <assert.h>

#include "ast.h"

const void *
zdmc_action_cast(const zdmc_action *action, zdmc_action_tag tag)
{
	(void)tag; /* NDEBUG */
	assert(action != NULL && action->tag == tag);
	return action;
}

zdmc_action *
zdmc_action_new(zdmc_arena *arena, zdmc_action_tag tag, size_t size,
                size_t offset)
{
	zdmc_action *a = zdmc_arena_alloc(arena, size);

	assert(size >= sizeof(zdmc_action));
	a->tag = tag;
	a->offset = offset;
	return a;
}

void
zdmc_ast_add_action(zdmc_diag *diag, zdmc_stmt *stmt, zdmc_action *action,
                    zdmc_coldef_list *coldefs)
{
	(void)diag;
	if (stmt->last_action)
		stmt->last_action->next = action;
	else
		stmt->actions = action;
	stmt->last_action = action;
	stmt->open_coldefs = coldefs;
}

void
zdmc_ast_add_coldef(zdmc_diag *diag, zdmc_stmt *stmt, zdmc_coldef *coldef)
{
	zdmc_coldef_list *list = stmt->open_coldefs;
	zdmc_coldef **tail;

	if (list == NULL) {
		zdmc_diag_error(
			diag, coldef->offset,
			"column definition \"%s\" outside a split: expected split, rename, drop or alter column",
			coldef->name.name);
		stmt->broken = true;
		return;
	}
	if (list->closed) {
		zdmc_diag_error(
			diag, coldef->offset,
			"new column \"%s\" comes after the split's reverse clause; write reverse using after the last new column",
			coldef->name.name);
		stmt->broken = true;
		return;
	}
	for (tail = &list->first; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = coldef;
	list->n++;
	if (coldef->reverse.kind != ZDMC_REVERSE_MISSING) {
		list->reverse = coldef->reverse;
		list->closed = true;
	}
}
