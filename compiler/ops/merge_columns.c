/*
 * merge_columns.c -- merge columns A, B [, ...] into C TYPE [not null]
 * using (...) reverse using (A = ..., B = ...) | irreversible.
 *
 * The inverse of a split: several old columns become one new one, computed
 * from them by using; each old column is computed back from C by its own
 * reverse expression, so old-version clients keep working until contract
 * and a rollback loses nothing.  The work is the column replacement's
 * (replace.h): this file judges the clause, states its facts -- reads the
 * merged columns, creates [C], replaces the merged columns, reverse one
 * entry per merged column in the order listed -- and hooks the
 * replacement's per-change steps into its slots.  The new version's view
 * shows C in the place of the first column listed.
 *
 * Its own rules, beyond those every change gets from check.c: at least two
 * columns, each once; using reads every merged column (a column it does
 * not read would be dropped at contract with nothing keeping its values);
 * the reverse list assigns every merged column exactly once, nothing
 * else, and each of its expressions reads C.  It must not generate SQL of
 * its own or look at other changes.
 */
#include <string.h>

#include "ident.h"
#include "ops.h"
#include "replace.h"

/* Does expr read column (as a bare or qualified reference)?  A name too
 * long for PostgreSQL (reported already) reads as read: the parser cuts
 * it to 63 bytes, so it could not match. */
static bool
merge_reads(const zdmc_sqlexpr *expr, const char *column)
{
	if (strlen(column) > ZDMC_MAX_IDENT_BYTES)
		return true;
	for (size_t i = 0; expr != NULL && i < expr->nrefs; i++)
		if (strcmp(expr->refs[i].column, column) == 0)
			return true;
	return false;
}

/* Is the i-th listed column a repeat of an earlier one (reported)? */
static bool
merge_repeated(const zdmc_merge_columns *n, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(n->columns[j].name, n->columns[i].name) == 0)
			return true;
	return false;
}

/* The listed columns: at least two, each once; their facts. */
static bool
merge_check_columns(zdmc_check_ctx *ck, zdmc_change *change,
                    const zdmc_merge_columns *n)
{
	zdmc_diag *diag = zdmc_check_diag(ck);
	bool ok = true;

	if (n->ncolumns < 2) {
		zdmc_diag_error(
			diag, n->action.offset,
			"merge columns needs at least two columns; to transform one column use alter column ... type ... using");
		ok = false;
	}
	for (size_t i = 0; i < n->ncolumns; i++) {
		const zdmc_name *col = &n->columns[i];

		if (merge_repeated(n, i)) {
			size_t j = 0;

			while (strcmp(n->columns[j].name, col->name) != 0)
				j++;
			zdmc_diag_error(
				diag, col->offset,
				"column \"%s\" is listed twice in merge columns",
				col->name);
			zdmc_diag_note(diag, n->columns[j].offset,
			               "first listed here");
			ok = false;
			continue;
		}
		zdmc_check_ident_length(ck, col);
		zdmc_check_changed_column(ck, change, col);
		zdmc_change_add_read(ck, change, col->name);
		zdmc_change_add_replace(ck, change, col->name);
	}
	return ok;
}

/* reverse using (A = ..., B = ...): one expression per merged column, in
 * any order, each reading C; the facts list them as the columns are
 * listed. */
static void
merge_check_reverse(zdmc_check_ctx *ck, zdmc_change *change,
                    const zdmc_merge_columns *n)
{
	zdmc_diag *diag = zdmc_check_diag(ck);
	const zdmc_coldef *into = n->into;
	const zdmc_reverse *rev = &into->reverse;
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_sqlassign *items;
	zdmc_sqlexpr **exprs; /* by merged column; NULL: did not parse */
	bool *given;          /* by merged column: assigned in the list */
	size_t nitems, i, j;

	if (rev->kind == ZDMC_REVERSE_IRREVERSIBLE) {
		change->irreversible = true;
		change->irreversible_offset = rev->offset;
		return;
	}
	if (rev->kind == ZDMC_REVERSE_MISSING) {
		zdmc_diag_error(
			diag, rev->offset,
			"merge into column \"%s\" has no reverse using; add reverse using (%s = ..., ...) computing each merged column from \"%s\", or mark it irreversible",
			into->name.name, n->columns[0].name, into->name.name);
		return;
	}
	nitems = zdmc_sqlexpr_assignments(arena, diag, &rev->expr,
	                                  "reverse using", &items);
	exprs = zdmc_arena_alloc(arena, n->ncolumns * sizeof(*exprs));
	given = zdmc_arena_alloc(arena, n->ncolumns * sizeof(*given));
	memset(exprs, 0, n->ncolumns * sizeof(*exprs));
	memset(given, 0, n->ncolumns * sizeof(*given));
	for (i = 0; i < nitems; i++) {
		const zdmc_sqlassign *a = &items[i];
		zdmc_sqlexpr *e;

		for (j = 0; j < n->ncolumns; j++)
			if (strcmp(n->columns[j].name, a->column.name) == 0)
				break;
		if (j == n->ncolumns) {
			zdmc_diag_error(
				diag, a->column.offset,
				"reverse using assigns \"%s\", which is not a merged column; it computes each merged column from \"%s\"",
				a->column.name, into->name.name);
			continue;
		}
		if (given[j]) {
			zdmc_diag_error(diag, a->column.offset,
			                "reverse using assigns \"%s\" twice",
			                a->column.name);
			continue;
		}
		e = zdmc_check_expr(ck, &a->value, "reverse using");
		given[j] = true;
		exprs[j] = e;
		if (e != NULL && !merge_reads(e, into->name.name))
			zdmc_diag_error(
				diag, a->value.offset,
				"reverse using for \"%s\" does not read \"%s\", so it cannot give the merged column back",
				a->column.name, into->name.name);
	}
	/* the facts, in the order the columns are listed */
	for (j = 0; j < n->ncolumns; j++)
		if (!merge_repeated(n, j) && exprs[j] != NULL)
			zdmc_change_add_reverse(ck, change, n->columns[j].name,
			                        exprs[j]);
	/* a malformed item may be the missing column's: then say only that */
	if (nitems < rev->expr.ncommas + 1)
		return;
	for (j = 0; j < n->ncolumns; j++) {
		if (merge_repeated(n, j) || given[j])
			continue;
		zdmc_diag_error(
			diag, rev->expr.offset,
			"reverse using gives no expression for merged column \"%s\"; write %s = ... computing it from \"%s\"",
			n->columns[j].name, n->columns[j].name,
			into->name.name);
		zdmc_diag_note(diag, n->columns[j].offset,
		               "\"%s\" is merged here", n->columns[j].name);
	}
}

static void
merge_columns_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_merge_columns *n = ZDMC_ACTION_CAST(
		zdmc_merge_columns, ZDMC_ACTION_MERGE_COLUMNS, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	const zdmc_coldef *into = n->into;
	bool columns_ok = merge_check_columns(ck, change, n);
	zdmc_newcol *col;
	zdmc_buf names;

	zdmc_check_ident_length(ck, &into->name);
	zdmc_check_added_column(ck, &into->name);
	zdmc_check_new_name(ck, change, &into->name);
	col = zdmc_change_add_create(ck, change, into->name.name,
	                             into->type.text);
	col->not_null = into->not_null;
	zdmc_check_type(ck, &into->type);
	if (into->using.text == NULL) {
		zdmc_diag_error(
			diag, into->name.offset,
			"merged column \"%s\" needs a using (...) expression computing it from the merged columns",
			into->name.name);
	} else {
		col->forward = zdmc_check_expr(ck, &into->using, "using");
		for (size_t i = 0;
		     columns_ok && col->forward != NULL && i < n->ncolumns; i++)
			if (!merge_reads(col->forward, n->columns[i].name))
				zdmc_diag_error(
					diag, n->columns[i].offset,
					"using of \"%s\" does not read merged column \"%s\", whose values would be lost at contract",
					into->name.name, n->columns[i].name);
	}
	merge_check_reverse(ck, change, n);
	zdmc_buf_init(&names, arena);
	for (size_t i = 0; i < n->ncolumns; i++)
		zdmc_buf_printf(&names, "%s%s", i ? ", " : "",
		                n->columns[i].name);
	zdmc_replace_register(
		ck, change,
		zdmc_arena_printf(arena, "merge columns %s into %s",
	                          zdmc_buf_cstr(&names), into->name.name));
}

/* "merge first_name, last_name into name" */
static const char *
merge_columns_summary(zdmc_arena *arena, const zdmc_change *change)
{
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_puts(&b, "merge ");
	for (size_t i = 0; i < change->nreplaces; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : "", change->replaces[i]);
	zdmc_buf_printf(&b, " into %s", change->cols[0].name);
	return zdmc_buf_cstr(&b);
}

const zdmc_op zdmc_op_merge_columns = {
	.name = "merge_columns",
	.check = merge_columns_check,
	.summary = merge_columns_summary,
	.lower =
		{
			[ZDMC_SLOT_VERIFY] = zdmc_replace_verify_change,
			[ZDMC_SLOT_CONTRACT_DROP] = zdmc_replace_drop_replaced,
			[ZDMC_SLOT_CONTRACT] = zdmc_replace_rename_into_place,
		},
};
