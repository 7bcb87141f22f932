/*
 * sqlstmt.c -- the sql (...) statement (sqlstmt.h).
 *
 * Its text runs exactly as written, in a step of its own (a transaction of
 * its own, with the plan's lock_timeout): at expand, before the tables that
 * come after it in the source (a function created here can be used by an
 * index built below it), or at contract with "at contract".  Its reverse is
 * its compensation.  Without one, rollback cannot undo it: the step is a
 * point of no return, and the compiler wants a person to approve the phase
 * it runs in.  Its locks are the explain's to show, like any step's.
 *
 * Must not: rewrite the statements, or guess what they touch (no facts;
 * preflight knows nothing of them).
 */
#include "sqlstmt.h"

#include <string.h>

#include "sqlexpr.h"

/* The statements without the blank lines and spaces around them (the
 * parentheses' own layout in the source). */
static const char *
sqlstmt_trim(zdmc_arena *arena, const char *text)
{
	size_t len;

	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	len = strlen(text);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
	                   text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	return zdmc_arena_strndup(arena, text, len);
}

void
zdmc_sqlstmt_check(zdmc_arena *arena, zdmc_diag *diag,
                   const zdmc_options *options, const zdmc_action *action,
                   zdmc_sqlstmt **sqls, size_t *nsqls)
{
	const zdmc_sql *n = ZDMC_ACTION_CAST(zdmc_sql, ZDMC_ACTION_SQL, action);
	zdmc_phase phase;
	zdmc_sqlstmt *grown;
	int bad = 0;

	bad |= zdmc_sqlexpr_check_statements(arena, diag, &n->body, "sql");
	if (n->reverse.text != NULL)
		bad |= zdmc_sqlexpr_check_statements(arena, diag, &n->reverse,
		                                     "reverse");
	if (n->at.name != NULL && (strcmp(n->at.name, "at") != 0 ||
	                           strcmp(n->at_phase.name, "contract") != 0)) {
		zdmc_diag_error(
			diag, n->at.offset,
			"after sql's statements: \"at contract\", or nothing (at expand), not \"%s %s\"",
			n->at.name, n->at_phase.name);
		bad = -1;
	}
	phase = n->at.name != NULL ? ZDMC_PHASE_CONTRACT : ZDMC_PHASE_EXPAND;
	if (n->reverse.text == NULL &&
	    !(options->approve & (1u << (unsigned)phase))) {
		zdmc_diag_error(
			diag, action->offset,
			"sql without reverse (...) is a point of no return: rollback cannot undo it; write its reverse, or let a person approve it with approve = (%s) in the header",
			phase == ZDMC_PHASE_CONTRACT ? "contract" : "expand");
		bad = -1;
	}
	if (bad)
		return;
	grown = zdmc_arena_alloc(arena, (*nsqls + 1) * sizeof(*grown));
	if (*nsqls)
		memcpy(grown, *sqls, *nsqls * sizeof(*grown));
	grown[*nsqls].sql = sqlstmt_trim(arena, n->body.text);
	grown[*nsqls].reverse =
		n->reverse.text ? sqlstmt_trim(arena, n->reverse.text) : NULL;
	grown[*nsqls].at_contract = n->at.name != NULL;
	grown[*nsqls].offset = action->offset;
	*sqls = grown;
	(*nsqls)++;
}

void
zdmc_sqlstmt_lower(zdmc_lower_ctx *l, const zdmc_sqlstmt *s)
{
	zdmc_plan_step *step = zdmc_lower_step(
		l, ZDMC_STEP_SQL, NULL,
		zdmc_arena_printf(
			l->arena, "the migration's own SQL (%s)%s",
			zdmc_lower_at(l, s->offset),
			s->reverse
				? ""
				: "; rollback cannot undo it: a point of no return"),
		zdmc_arena_strdup(l->arena, s->sql), s->reverse);

	step->point_of_no_return = s->reverse == NULL;
}
