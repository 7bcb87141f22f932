/*
 * sqlstmt.c -- the statements on no table (sqlstmt.h): their table, and
 * the sql (...) statement itself.
 *
 * Each runs in a step of its own: a transaction of its own with the
 * plan's lock_timeout, or, for what PostgreSQL refuses in a transaction
 * block, an autocommit step.  It is placed among the tables' steps in the
 * order written: at expand, before the tables that come after it in the
 * source (a function or a type created here can be used by a table's
 * change below it), or at contract.  Its reverse is its compensation;
 * without one, rollback cannot undo it and the step is a point of no
 * return.
 *
 * sql (...)'s text runs exactly as written.  Without reverse, the compiler
 * wants a person to approve the phase it runs in, since nobody but its
 * author knows what it does.  Its locks are the explain's to show, like
 * any step's.
 *
 * Must not: rewrite sql's statements, or guess what they touch (sql has
 * no facts; preflight knows nothing of it).
 */
#include "sqlstmt.h"

#include <string.h>
#include <strings.h>

#include "ident.h"
#include "sqlexpr.h"

/* The statements on no table, by the tag of their action. */
static const struct {
	zdmc_action_tag tag;
	zdmc_sqlstmt_check_fn check;
} sqlstmt_table[] = {
	{ZDMC_ACTION_SQL, zdmc_sql_check},
	{ZDMC_ACTION_DROP_INDEX, zdmc_drop_index_check},
	{ZDMC_ACTION_CREATE_TYPE, zdmc_create_type_check},
	{ZDMC_ACTION_ADD_ENUM_VALUE, zdmc_add_enum_value_check},
	{ZDMC_ACTION_RENAME_ENUM_VALUE, zdmc_rename_enum_value_check},
};

static zdmc_sqlstmt_check_fn
sqlstmt_check_for(const zdmc_action *action)
{
	for (size_t i = 0; i < sizeof(sqlstmt_table) / sizeof(sqlstmt_table[0]);
	     i++)
		if (sqlstmt_table[i].tag == action->tag)
			return sqlstmt_table[i].check;
	return NULL;
}

bool
zdmc_sqlstmt_is(const zdmc_action *action)
{
	return sqlstmt_check_for(action) != NULL;
}

void
zdmc_sqlstmt_check(zdmc_check_ctx *ck, const zdmc_options *options,
                   const zdmc_action *action, zdmc_sqlstmt **sqls,
                   size_t *nsqls)
{
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_sqlstmt s, *grown;

	memset(&s, 0, sizeof(s));
	s.offset = action->offset;
	if (sqlstmt_check_for(action)(ck, options, action, &s) < 0)
		return;
	grown = zdmc_arena_alloc(arena, (*nsqls + 1) * sizeof(*grown));
	if (*nsqls)
		memcpy(grown, *sqls, *nsqls * sizeof(*grown));
	grown[*nsqls] = s;
	*sqls = grown;
	(*nsqls)++;
}

const char *
zdmc_sqlstmt_object(zdmc_check_ctx *ck, const zdmc_name *schema,
                    const zdmc_name *name)
{
	zdmc_check_ident_length(ck, name);
	if (schema->name == NULL)
		return zdmc_ident_qualified(zdmc_check_arena(ck), "public",
		                            name->name);
	zdmc_check_ident_length(ck, schema);
	if (strncasecmp(schema->name, "zdm", 3) == 0)
		zdmc_diag_error(
			zdmc_check_diag(ck), schema->offset,
			"schema \"%s\": schema names starting with \"zdm\" are reserved for zdm's own objects",
			schema->name);
	return zdmc_ident_qualified(zdmc_check_arena(ck), schema->name,
	                            name->name);
}

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

int
zdmc_sql_check(zdmc_check_ctx *ck, const zdmc_options *options,
               const zdmc_action *action, zdmc_sqlstmt *out)
{
	const zdmc_sql *n = ZDMC_ACTION_CAST(zdmc_sql, ZDMC_ACTION_SQL, action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	zdmc_phase phase;
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
		return -1;
	out->statement = "sql";
	out->sql = sqlstmt_trim(arena, n->body.text);
	out->reverse =
		n->reverse.text ? sqlstmt_trim(arena, n->reverse.text) : NULL;
	out->at_contract = n->at.name != NULL;
	out->summary = out->reverse
	                       ? "the migration's own SQL"
	                       : "the migration's own SQL, without reverse";
	return 0;
}

void
zdmc_sqlstmt_lower(zdmc_lower_ctx *l, const zdmc_sqlstmt *s)
{
	const char *description = s->description;
	zdmc_plan_step *step;

	if (description == NULL)
		description = zdmc_arena_printf(
			l->arena, "the migration's own SQL (%s)%s",
			zdmc_lower_at(l, s->offset),
			s->reverse
				? ""
				: "; rollback cannot undo it: a point of no return");
	if (s->autocommit)
		step = zdmc_lower_autocommit_step(
			l, NULL, description,
			zdmc_arena_strdup(l->arena, s->sql), s->reverse, NULL);
	else
		step = zdmc_lower_step(l, ZDMC_STEP_SQL, NULL, description,
		                       zdmc_arena_strdup(l->arena, s->sql),
		                       s->reverse);
	step->point_of_no_return = s->reverse == NULL;
}
