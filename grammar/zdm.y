/*
 * zdm.y -- the grammar of the .zdm language.
 *
 * A pure, reentrant LALR(1) parser with no conflicts (%expect 0).  It builds
 * the AST -- a tagged node per operation, made with zdmc_action_new -- and
 * judges nothing but syntax: every semantic rule lives in
 * compiler/check.c and the ops' checks (compiler/ops/), so one run reports
 * every problem.  After a syntax error
 * the parser skips to the next ";" and carries on (the "error ';'" rule).
 * Anything that can be left to a later pass with a better message is
 * accepted here: a missing header, a column type PostgreSQL would refuse
 * (libpg_query judges it), a change with no reverse clause.
 */
%code requires {
#include <stddef.h>

#include "ast.h"

typedef struct zdmc_loc {
	size_t first; /* byte offsets, [first, last) */
	size_t last;
} zdmc_loc;

typedef void *yyscan_t;
struct zdmc_parse_ctx;
}

%code provides {
/* flex's generated header still speaks of the unprefixed names. */
#define YYSTYPE ZDMC_YYSTYPE
#define YYLTYPE ZDMC_YYLTYPE
}

%code {
#include <string.h>

#include "grammar_state.h"
#include "zdm_lexer.h"

static void zdmc_yyerror(ZDMC_YYLTYPE *loc, yyscan_t scanner,
                         zdmc_parse_ctx *ctx, const char *msg);
static zdmc_reverse grammar_no_reverse(size_t offset);
static zdmc_type grammar_type(zdmc_parse_ctx *ctx, zdmc_loc loc);
static zdmc_colclause *grammar_clause(zdmc_parse_ctx *ctx,
                                      zdmc_colclause_kind kind, size_t offset);
static zdmc_name_list grammar_name_list(const struct grammar_names *names,
                                        size_t offset);
static zdmc_add_foreign_key *grammar_fkey(zdmc_parse_ctx *ctx, size_t offset);
static zdmc_stmt *grammar_stmt(zdmc_parse_ctx *ctx, const zdmc_name *schema,
                               const zdmc_name *table, size_t offset);
static struct grammar_names grammar_names_add(zdmc_parse_ctx *ctx,
                                              const struct grammar_names *list,
                                              const zdmc_name *name);
static zdmc_enum_stmt *grammar_enum(zdmc_parse_ctx *ctx, zdmc_action_tag tag,
                                    const zdmc_name *schema,
                                    const zdmc_name *name, size_t offset);

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                \
	do {                                                       \
		if (N) {                                           \
			(Cur).first = YYRHSLOC(Rhs, 1).first;      \
			(Cur).last = YYRHSLOC(Rhs, N).last;        \
		} else {                                           \
			(Cur).first = (Cur).last = YYRHSLOC(Rhs, 0).last; \
		}                                                  \
	} while (0)
}

%define api.pure full
%define api.prefix {zdmc_yy}
%define api.location.type {zdmc_loc}
%define parse.error detailed
%locations
%param {yyscan_t scanner}
%parse-param {struct zdmc_parse_ctx *ctx}
%expect 0

%union {
	zdmc_name name;
	struct {
		const char *text;
		size_t offset;
	} word;
	zdmc_expr expr;
	zdmc_option *option;
	zdmc_coldef *coldef;
	zdmc_colclause *colclause;
	zdmc_stmt *stmt;
	zdmc_reverse reverse;
	zdmc_type type;
	bool flag;
	struct grammar_names {
		zdmc_name *items;
		size_t n;
		size_t cap;
	} names;
	zdmc_add_foreign_key *fkey;
	zdmc_enum_stmt *enumstmt;
	struct {
		zdmc_name schema; /* name NULL: none written */
		zdmc_name name;
	} qname;
}

%token <name> IDENT "identifier"
%token <name> QIDENT "quoted identifier"
%token <word> STRING "string"
%token <word> INTEGER "integer"
%token <expr> EXPR "expression"
%token LEX_ERROR "invalid token"
%token <name> ALTER "alter" COLUMN "column" DATA "data" DEFAULT "default"
%token <name> DROP "drop" INTO "into"
%token <name> IRREVERSIBLE "irreversible" MIGRATION "migration" NOT "not"
%token <name> NULL_P "null" RENAME "rename" REVERSE "reverse" SET "set"
%token <name> SPLIT "split" TABLE "table" TO "to" TYPE "type" USING "using"
%token <name> WITH "with" MERGE "merge" COLUMNS "columns"
%token <name> ACTION "action" ADD "add" CASCADE "cascade" CHECK "check"
%token <name> CONSTRAINT "constraint" DELETE "delete"
%token <name> FOREIGN "foreign" KEY "key" NO "no" ON "on"
%token <name> PRIMARY "primary" REFERENCES "references" RESTRICT "restrict"
%token <name> UNIQUE "unique" UPDATE "update"
%token <name> CREATE "create" INDEX "index" CONCURRENTLY "concurrently"
%token <name> SQL_P "sql"

%type <name> name type_word label
%type <qname> object_name
%type <option> opt_with option_list option
%type <names> name_list label_list
%type <enumstmt> type_head
%type <fkey> fk_references
%type <coldef> coldef
%type <reverse> opt_reverse
%type <expr> opt_using
%type <flag> opt_not_null
%type <stmt> alter_head
%type <word> fk_action
%type <names> column_list
%type <colclause> colclauses colclause
%type <flag> opt_unique
%type <name> opt_index_name

%%

file:
	%empty
	| file toplevel
	;

toplevel:
	header ';'
	| alter_stmt ';'        { ctx->in_stmt = false; }
	| create_index_stmt ';' { ctx->in_stmt = false; }
	| create_table_stmt ';' { ctx->in_stmt = false; }
	| drop_table_stmt ';'   { ctx->in_stmt = false; }
	| split_table_stmt ';'  { ctx->in_stmt = false; }
	| sql_stmt ';'          { ctx->in_stmt = false; }
	| drop_index_stmt ';'   { ctx->in_stmt = false; }
	| type_stmt ';'         { ctx->in_stmt = false; }
	| error ';'             { yyerrok; ctx->in_stmt = false; }
	;

header:
	MIGRATION name opt_with
	{
		zdmc_migration *mig = ctx->mig;

		if (mig->has_header) {
			zdmc_diag_error(ctx->diag, @1.first,
			                "a file holds one migration; \"migration\" appears again here");
			zdmc_diag_note(ctx->diag, mig->offset, "first declared here");
		} else {
			if (mig->stmts != NULL)
				zdmc_diag_error(ctx->diag, @1.first,
				                "the migration header must come before any statement");
			mig->has_header = true;
			mig->name = $2;
			mig->offset = @1.first;
			mig->options = $3;
		}
	}
	;

opt_with:
	%empty                  { $$ = NULL; }
	| WITH '(' ')'          { $$ = NULL; }
	| WITH '(' option_list ')' { $$ = $3; }
	;

option_list:
	option                  { $$ = $1; }
	| option_list ',' option
	{
		zdmc_option *o = $1;

		while (o->next != NULL)
			o = o->next;
		o->next = $3;
		$$ = $1;
	}
	;

option:
	name '=' INTEGER
	{
		$$ = ZDMC_NEW(ctx->arena, zdmc_option);
		$$->name = $1;
		$$->kind = ZDMC_OPTVAL_INTEGER;
		$$->text = $3.text;
		$$->value_offset = @3.first;
	}
	| name '=' STRING
	{
		$$ = ZDMC_NEW(ctx->arena, zdmc_option);
		$$->name = $1;
		$$->kind = ZDMC_OPTVAL_STRING;
		$$->text = $3.text;
		$$->value_offset = @3.first;
	}
	| name '=' name
	{
		$$ = ZDMC_NEW(ctx->arena, zdmc_option);
		$$->name = $1;
		$$->kind = ZDMC_OPTVAL_WORD;
		$$->text = $3.name;
		$$->value_offset = @3.first;
	}
	| name '=' '(' ')'
	{
		$$ = ZDMC_NEW(ctx->arena, zdmc_option);
		$$->name = $1;
		$$->kind = ZDMC_OPTVAL_LIST;
		$$->value_offset = @3.first;
	}
	| name '=' '(' name_list ')'
	{
		$$ = ZDMC_NEW(ctx->arena, zdmc_option);
		$$->name = $1;
		$$->kind = ZDMC_OPTVAL_LIST;
		$$->items = $4.items;
		$$->nitems = $4.n;
		$$->value_offset = @3.first;
	}
	;

name_list:
	name                    { $$ = grammar_names_add(ctx, NULL, &$1); }
	| name_list ',' name    { $$ = grammar_names_add(ctx, &$1, &$3); }
	;

alter_stmt:
	alter_head alter_items
	;

alter_head:
	ALTER TABLE name
	{
		$$ = grammar_stmt(ctx, NULL, &$3, @1.first);
	}
	| ALTER TABLE name '.' name
	{
		$$ = grammar_stmt(ctx, &$3, &$5, @1.first);
	}
	;

/* create [unique] index [concurrently] [name] on [schema.]table BODY: the
 * body (elements, using, include, with, where), from its "(" or USING to the
 * ";", is one EXPR token that libpg_query judges.  The statement is one
 * action on its table, like an alter table with one item. */
create_index_stmt:
	CREATE opt_unique INDEX opt_concurrently opt_index_name ON alter_target
	    EXPR
	{
		zdmc_create_index *n = (zdmc_create_index *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_CREATE_INDEX,
			sizeof(zdmc_create_index), @1.first);

		ctx->mig->last_stmt->offset = @1.first;
		n->unique = $2;
		n->name = $5;
		n->body = $8;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	;

/* create table [schema.]table BODY: the body, from its "(" to the ";"
 * (columns, constraints, partitioning, ...), is one EXPR token that
 * libpg_query judges; one action on the new table. */
create_table_stmt:
	CREATE TABLE alter_target EXPR
	{
		zdmc_create_table *n = (zdmc_create_table *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_CREATE_TABLE,
			sizeof(zdmc_create_table), @1.first);

		ctx->mig->last_stmt->offset = @1.first;
		n->body = $4;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	;

/* drop table [schema.]table: one action on it, its only one */
drop_table_stmt:
	DROP TABLE alter_target
	{
		zdmc_drop_table *n = (zdmc_drop_table *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_DROP_TABLE,
			sizeof(zdmc_drop_table), @1.first);

		ctx->mig->last_stmt->offset = @1.first;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	;

/* split table [schema.]table move (c, ...) into [schema.]table2
 * [key (k, ...)]: one action on the table ("move" is a plain word) */
split_table_stmt:
	SPLIT TABLE alter_target IDENT column_list INTO object_name
	{
		zdmc_split_table *n = (zdmc_split_table *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_SPLIT_TABLE,
			sizeof(zdmc_split_table), @1.first);

		ctx->mig->last_stmt->offset = @1.first;
		n->move = $4;
		n->columns = grammar_name_list(&$5, @5.first);
		n->into_schema = $7.schema;
		n->into = $7.name;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	opt_split_key
	;

opt_split_key:
	%empty
	| KEY column_list
	{
		zdmc_split_table *n =
			(zdmc_split_table *)ctx->mig->last_stmt->actions;

		n->key = grammar_name_list(&$2, @2.first);
	}
	;

/* sql (STATEMENTS) [reverse (STATEMENTS)] [at contract]: PostgreSQL's
 * statements as they are, for libpg_query to judge; a statement on no
 * table (compiler/sqlstmt.c) */
sql_stmt:
	SQL_P EXPR
	{
		zdmc_name none = {NULL, @1.first, false};
		zdmc_sql *n = (zdmc_sql *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_SQL, sizeof(zdmc_sql), @1.first);

		grammar_stmt(ctx, NULL, &none, @1.first);
		n->body = $2;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	opt_sql_reverse opt_sql_at
	;

opt_sql_reverse:
	%empty
	| REVERSE EXPR
	{
		zdmc_sql *n = (zdmc_sql *)ctx->mig->last_stmt->actions;

		n->reverse = $2;
	}
	;

/* "at contract": two plain words, judged by the check (not keywords, so
 * that neither stops being a name) */
opt_sql_at:
	%empty
	| IDENT IDENT
	{
		zdmc_sql *n = (zdmc_sql *)ctx->mig->last_stmt->actions;

		n->at = $1;
		n->at_phase = $2;
	}
	;

/* drop index [concurrently] [schema.]name: on no table, the index's
 * table is the database's to know (compiler/ops/drop_index.c) */
drop_index_stmt:
	DROP INDEX opt_concurrently object_name
	{
		zdmc_name none = {NULL, @1.first, false};
		zdmc_drop_index *n = (zdmc_drop_index *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_DROP_INDEX,
			sizeof(zdmc_drop_index), @1.first);

		grammar_stmt(ctx, NULL, &none, @1.first);
		n->schema = $4.schema;
		n->name = $4.name;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	;

/*
 * create type [schema.]name as enum ('a', ...);
 * alter type [schema.]name add value 'v' [before | after 'w'];
 * alter type [schema.]name rename value 'a' to 'b';
 * statements on no table (compiler/ops/enum_type.c).  "as enum", "value",
 * "before" and "after" are plain words the check judges.
 */
type_stmt:
	CREATE TYPE object_name IDENT IDENT '(' label_list ')'
	{
		zdmc_enum_stmt *n = grammar_enum(ctx, ZDMC_ACTION_CREATE_TYPE,
		                                 &$3.schema, &$3.name, @1.first);

		n->words[0] = $4;
		n->words[1] = $5;
		n->labels = grammar_name_list(&$7, @6.first);
	}
	| type_head ADD IDENT label
	{
		$1->action.tag = ZDMC_ACTION_ADD_ENUM_VALUE;
		$1->words[0] = $3;
		$1->label = $4;
	}
	| type_head ADD IDENT label IDENT label
	{
		$1->action.tag = ZDMC_ACTION_ADD_ENUM_VALUE;
		$1->words[0] = $3;
		$1->label = $4;
		$1->position = $5;
		$1->neighbour = $6;
	}
	| type_head RENAME IDENT label TO label
	{
		$1->action.tag = ZDMC_ACTION_RENAME_ENUM_VALUE;
		$1->words[0] = $3;
		$1->label = $4;
		$1->to = $6;
	}
	;

/* alter type [schema.]name: what follows sets the node's tag */
type_head:
	ALTER TYPE object_name
	{
		$$ = grammar_enum(ctx, ZDMC_ACTION_ADD_ENUM_VALUE, &$3.schema,
		                  &$3.name, @1.first);
	}
	;

/* an enum label: a string, kept as a quoted name */
label:
	STRING
	{
		$$.name = $1.text;
		$$.offset = $1.offset;
		$$.quoted = true;
	}
	;

label_list:
	label                   { $$ = grammar_names_add(ctx, NULL, &$1); }
	| label_list ',' label  { $$ = grammar_names_add(ctx, &$1, &$3); }
	;

object_name:
	name
	{
		$$.schema.name = NULL;
		$$.schema.offset = @1.first;
		$$.schema.quoted = false;
		$$.name = $1;
	}
	| name '.' name
	{
		$$.schema = $1;
		$$.name = $3;
	}
	;

opt_unique:
	%empty                  { $$ = false; }
	| UNIQUE                { $$ = true; }
	;

/* every index zdm builds is built concurrently: the word may be written */
opt_concurrently:
	%empty
	| CONCURRENTLY
	;

opt_index_name:
	%empty                  { $$.name = NULL; $$.offset = @$.first; $$.quoted = false; }
	| name
	;

alter_target:
	name
	{
		grammar_stmt(ctx, NULL, &$1, @1.first);
	}
	| name '.' name
	{
		grammar_stmt(ctx, &$1, &$3, @1.first);
	}
	;

alter_items:
	alter_item
	| alter_items ',' alter_item
	;

alter_item:
	SPLIT opt_column name INTO coldef
	{
		zdmc_split_column *n = (zdmc_split_column *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_SPLIT_COLUMN,
			sizeof(zdmc_split_column), @1.first);

		n->column = $3;
		n->into.reverse = grammar_no_reverse(@1.first);
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    &n->into);
		zdmc_ast_add_coldef(ctx->diag, ctx->mig->last_stmt, $5);
	}
	| coldef
	{
		zdmc_ast_add_coldef(ctx->diag, ctx->mig->last_stmt, $1);
	}
	/* "columns" is required, unlike "column" elsewhere: were it optional,
	 * "merge columns into into ..." could be read two ways ("columns" and
	 * "into" are names too).  The reverse clause, in the coldef, ends the
	 * merge: a column definition after it is not the merge's. */
	| MERGE COLUMNS name_list INTO coldef
	{
		zdmc_merge_columns *n = (zdmc_merge_columns *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_MERGE_COLUMNS,
			sizeof(zdmc_merge_columns), @1.first);

		n->columns = $3.items;
		n->ncolumns = $3.n;
		n->into = $5;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| RENAME opt_column name TO name
	{
		zdmc_rename_column *n = (zdmc_rename_column *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_RENAME_COLUMN,
			sizeof(zdmc_rename_column), @1.first);

		n->column = $3;
		n->to = $5;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| RENAME TO name
	{
		zdmc_rename_table *n = (zdmc_rename_table *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_RENAME_TABLE,
			sizeof(zdmc_rename_table), @1.first);

		n->to = $3;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ALTER opt_column name SET DEFAULT EXPR
	{
		zdmc_column_default *n = (zdmc_column_default *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_SET_DEFAULT,
			sizeof(zdmc_column_default), @1.first);

		n->column = $3;
		n->value = $6;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ALTER opt_column name DROP DEFAULT
	{
		zdmc_column_default *n = (zdmc_column_default *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_DROP_DEFAULT,
			sizeof(zdmc_column_default), @1.first);

		n->column = $3;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ALTER opt_column name TYPE type_name opt_using opt_reverse
	{
		zdmc_alter_column_type *n = (zdmc_alter_column_type *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_ALTER_COLUMN_TYPE,
			sizeof(zdmc_alter_column_type), @1.first);

		n->column = $3;
		n->type = grammar_type(ctx, @5);
		n->using = $6;
		n->reverse = $7;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| alter_item_add
	| DROP opt_column name opt_reverse
	{
		zdmc_drop_column *n = (zdmc_drop_column *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_DROP_COLUMN,
			sizeof(zdmc_drop_column), @1.first);

		n->column = $3;
		n->reverse = $4;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ALTER opt_column name SET NOT NULL_P opt_using opt_reverse
	{
		zdmc_alter_not_null *n = (zdmc_alter_not_null *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_SET_NOT_NULL,
			sizeof(zdmc_alter_not_null), @1.first);

		n->column = $3;
		n->using = $7;
		n->using_offset = @7.first;
		n->reverse = $8;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ALTER opt_column name DROP NOT NULL_P opt_using opt_reverse
	{
		zdmc_alter_not_null *n = (zdmc_alter_not_null *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_DROP_NOT_NULL,
			sizeof(zdmc_alter_not_null), @1.first);

		n->column = $3;
		n->using = $7;
		n->using_offset = @7.first;
		n->reverse = $8;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ALTER opt_column name SET DATA TYPE type_name opt_using opt_reverse
	{
		zdmc_alter_column_type *n = (zdmc_alter_column_type *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_ALTER_COLUMN_TYPE,
			sizeof(zdmc_alter_column_type), @1.first);

		n->column = $3;
		n->type = grammar_type(ctx, @7);
		n->using = $8;
		n->reverse = $9;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ADD CONSTRAINT name CHECK EXPR opt_using
	{
		zdmc_add_check *n = (zdmc_add_check *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_ADD_CHECK, sizeof(zdmc_add_check),
			@1.first);

		n->name = $3;
		n->expr = $5;
		n->using = $6;
		n->using_offset = @6.first;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ADD CONSTRAINT name UNIQUE column_list
	{
		zdmc_add_key *n = (zdmc_add_key *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_ADD_UNIQUE, sizeof(zdmc_add_key),
			@1.first);

		n->name = $3;
		n->columns = grammar_name_list(&$5, @5.first);
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ADD CONSTRAINT name PRIMARY KEY column_list
	{
		zdmc_add_key *n = (zdmc_add_key *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_ADD_PRIMARY_KEY, sizeof(zdmc_add_key),
			@1.first);

		n->name = $3;
		n->columns = grammar_name_list(&$6, @6.first);
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| ADD CONSTRAINT name FOREIGN KEY column_list fk_references
	{
		zdmc_add_foreign_key *n = $7;

		n->action.offset = @1.first;
		n->name = $3;
		n->columns = grammar_name_list(&$6, @6.first);
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| DROP CONSTRAINT name
	{
		zdmc_drop_constraint *n = (zdmc_drop_constraint *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_DROP_CONSTRAINT,
			sizeof(zdmc_drop_constraint), @1.first);

		n->name = $3;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	| RENAME CONSTRAINT name TO name
	{
		zdmc_rename_constraint *n = (zdmc_rename_constraint *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_RENAME_CONSTRAINT,
			sizeof(zdmc_rename_constraint), @1.first);

		n->name = $3;
		n->to = $5;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	;

/*
 * references [s.]t [(c, ...)], then its referential actions, each at most
 * once (a repeat is remembered and reported by the op's check, which
 * reports everything else too): the tail of add constraint n foreign key
 * (c, ...) and add column's references clause, one node type for both.
 */
fk_references:
	REFERENCES name
	{
		$$ = grammar_fkey(ctx, @1.first);
		$$->ref_table = $2;
	}
	| REFERENCES name '.' name
	{
		$$ = grammar_fkey(ctx, @1.first);
		$$->ref_schema = $2;
		$$->ref_table = $4;
	}
	| fk_references column_list
	{
		$$ = $1;
		if ($$->ref_columns.items != NULL || $$->on_delete.sql != NULL ||
		    $$->on_update.sql != NULL)
			zdmc_diag_error(ctx->diag, @2.first,
			                "the referenced columns come right after the referenced table");
		else
			$$->ref_columns = grammar_name_list(&$2, @2.first);
	}
	| fk_references ON DELETE fk_action
	{
		$$ = $1;
		if ($$->on_delete.sql != NULL && $$->repeated_action == 0)
			$$->repeated_action = @2.first;
		$$->on_delete.sql = $4.text;
		$$->on_delete.offset = @2.first;
	}
	| fk_references ON UPDATE fk_action
	{
		$$ = $1;
		if ($$->on_update.sql != NULL && $$->repeated_action == 0)
			$$->repeated_action = @2.first;
		$$->on_update.sql = $4.text;
		$$->on_update.offset = @2.first;
	}
	;

fk_action:
	NO ACTION               { $$.text = "NO ACTION"; $$.offset = @1.first; }
	| RESTRICT              { $$.text = "RESTRICT"; $$.offset = @1.first; }
	| CASCADE               { $$.text = "CASCADE"; $$.offset = @1.first; }
	| SET NULL_P            { $$.text = "SET NULL"; $$.offset = @1.first; }
	| SET DEFAULT           { $$.text = "SET DEFAULT"; $$.offset = @1.first; }
	;

column_list:
	'(' name_list ')'       { $$ = $2; }
	;

opt_column:
	%empty
	| COLUMN
	;

/*
 * add column: the column's clauses in any order, as PostgreSQL takes
 * them; repeats and combinations are the op's to judge.  default's
 * expression comes from the scanner as one EXPR token (zdm.l).
 */
alter_item_add:
	ADD opt_column name type_name colclauses
	{
		zdmc_add_column *n = (zdmc_add_column *)zdmc_action_new(
			ctx->arena, ZDMC_ACTION_ADD_COLUMN,
			sizeof(zdmc_add_column), @1.first);

		n->column = $3;
		n->type = grammar_type(ctx, @4);
		n->clauses = $5;
		zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action,
		                    NULL);
	}
	;

colclauses:
	%empty                  { $$ = NULL; }
	| colclauses colclause
	{
		zdmc_colclause **tail = &$1;

		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = $2;
		$$ = $1;
	}
	;

colclause:
	NOT NULL_P              { $$ = grammar_clause(ctx, ZDMC_COLCLAUSE_NOT_NULL, @1.first); }
	| DEFAULT EXPR
	{
		$$ = grammar_clause(ctx, ZDMC_COLCLAUSE_DEFAULT, @1.first);
		$$->expr = $2;
	}
	| USING EXPR
	{
		$$ = grammar_clause(ctx, ZDMC_COLCLAUSE_USING, @1.first);
		$$->expr = $2;
	}
	| CHECK EXPR
	{
		$$ = grammar_clause(ctx, ZDMC_COLCLAUSE_CHECK, @1.first);
		$$->expr = $2;
	}
	| UNIQUE                { $$ = grammar_clause(ctx, ZDMC_COLCLAUSE_UNIQUE, @1.first); }
	| fk_references
	{
		$$ = grammar_clause(ctx, ZDMC_COLCLAUSE_REFERENCES, @1.first);
		$$->fkey = $1;
	}
	;

coldef:
	name type_name opt_not_null opt_using opt_reverse
	{
		zdmc_coldef *c = ZDMC_NEW(ctx->arena, zdmc_coldef);

		c->name = $1;
		c->type = grammar_type(ctx, @2);
		c->not_null = $3;
		c->using = $4;
		c->reverse = $5;
		c->offset = @1.first;
		$$ = c;
	}
	;

opt_not_null:
	%empty                  { $$ = false; }
	| NOT NULL_P            { $$ = true; }
	;

opt_using:
	%empty                  { memset(&$$, 0, sizeof($$)); }
	| USING EXPR            { $$ = $2; }
	;

opt_reverse:
	%empty
	{
		memset(&$$, 0, sizeof($$));
		$$.kind = ZDMC_REVERSE_MISSING;
		$$.offset = @$.first;
	}
	| REVERSE USING EXPR
	{
		$$.kind = ZDMC_REVERSE_USING;
		$$.expr = $3;
		$$.offset = @1.first;
	}
	| IRREVERSIBLE
	{
		memset(&$$, 0, sizeof($$));
		$$.kind = ZDMC_REVERSE_IRREVERSIBLE;
		$$.offset = @1.first;
	}
	;

/*
 * Types are kept as the text the user wrote and checked by libpg_query, so
 * the grammar only has to find where a type ends: words ("double
 * precision", "timestamp with time zone", "interval day to second"),
 * dotted names, modifiers "(12,2)" and array brackets.
 */
type_name:
	type_word
	| type_name type_word
	| type_name '.' type_word
	| type_name '(' typmods ')'
	| type_name '[' ']'
	| type_name '[' INTEGER ']'
	;

type_word:
	IDENT | QIDENT | WITH | TO | DATA
	;

typmods:
	INTEGER
	| typmods ',' INTEGER
	;

name:
	IDENT | QIDENT | DATA | MIGRATION | IRREVERSIBLE | TYPE | INTO | REVERSE
	| COLUMNS | ACTION | CASCADE | DELETE | KEY | NO | RESTRICT | UPDATE
	| INDEX | SQL_P
	;

%%

static void
zdmc_yyerror(ZDMC_YYLTYPE *loc, yyscan_t scanner, zdmc_parse_ctx *ctx,
             const char *msg)
{
	(void)scanner;
	if (ctx->in_stmt && ctx->mig->last_stmt != NULL)
		ctx->mig->last_stmt->broken = true;
	if (!ctx->mig->has_header && ctx->mig->stmts == NULL)
		ctx->mig->header_broken = true; /* don't also say "missing" */
	/* the scanner already explained an invalid token at this place */
	if (zdmc_diag_has_error_at(ctx->diag, loc->first))
		return;
	zdmc_diag_error(ctx->diag, loc->first, "%s", msg);
}

/* A reverse clause that was not written: reported, if the operation
 * needs one, at offset. */
static zdmc_reverse
grammar_no_reverse(size_t offset)
{
	zdmc_reverse r;

	memset(&r, 0, sizeof(r));
	r.kind = ZDMC_REVERSE_MISSING;
	r.offset = offset;
	return r;
}

static zdmc_colclause *
grammar_clause(zdmc_parse_ctx *ctx, zdmc_colclause_kind kind, size_t offset)
{
	zdmc_colclause *c = ZDMC_NEW(ctx->arena, zdmc_colclause);

	c->kind = kind;
	c->offset = offset;
	return c;
}

static zdmc_type
grammar_type(zdmc_parse_ctx *ctx, zdmc_loc loc)
{
	zdmc_type t;

	t.text = zdmc_arena_strndup(ctx->arena, ctx->src->text + loc.first,
	                            loc.last - loc.first);
	t.offset = loc.first;
	return t;
}

/* A name_list's items (the parser's growing array, as the node keeps it). */
static zdmc_name_list
grammar_name_list(const struct grammar_names *names, size_t offset)
{
	zdmc_name_list l;

	l.items = names->items;
	l.n = names->n;
	l.offset = offset;
	return l;
}

/* A foreign key's references clause, from its REFERENCES at offset; add
 * constraint fills in its name and columns. */
static zdmc_add_foreign_key *
grammar_fkey(zdmc_parse_ctx *ctx, size_t offset)
{
	return (zdmc_add_foreign_key *)zdmc_action_new(
		ctx->arena, ZDMC_ACTION_ADD_FOREIGN_KEY,
		sizeof(zdmc_add_foreign_key), offset);
}

int
zdmc_parse(zdmc_arena *arena, zdmc_diag *diag, const zdmc_source *src,
           zdmc_migration **out)
{
	zdmc_lexer_state lexer;
	zdmc_parse_ctx ctx;
	yyscan_t scanner;
	YY_BUFFER_STATE buffer;
	int before = diag->nerrors;

	memset(&lexer, 0, sizeof(lexer));
	lexer.arena = arena;
	lexer.diag = diag;
	lexer.src = src;
	ctx.arena = arena;
	ctx.diag = diag;
	ctx.src = src;
	ctx.in_stmt = false;
	ctx.mig = ZDMC_NEW(arena, zdmc_migration);
	ctx.mig->end_offset = src->len;

	if (zdmc_yylex_init_extra(&lexer, &scanner) != 0) {
		zdmc_diag_error(diag, 0, "cannot initialise the scanner");
		*out = ctx.mig;
		return 1;
	}
	buffer = zdmc_yy_scan_bytes(src->text, (int)src->len, scanner);
	(void)zdmc_yyparse(scanner, &ctx);
	zdmc_yy_delete_buffer(buffer, scanner);
	zdmc_yylex_destroy(scanner);
	*out = ctx.mig;
	return diag->nerrors - before;
}

/* A statement on [schema.]table (schema NULL: none written), appended to
 * the migration's; the actions that follow are its. */
static zdmc_stmt *
grammar_stmt(zdmc_parse_ctx *ctx, const zdmc_name *schema,
             const zdmc_name *table, size_t offset)
{
	zdmc_stmt *s = ZDMC_NEW(ctx->arena, zdmc_stmt);

	if (schema != NULL)
		s->schema = *schema;
	s->table = *table;
	s->offset = offset;
	if (ctx->mig->last_stmt)
		ctx->mig->last_stmt->next = s;
	else
		ctx->mig->stmts = s;
	ctx->mig->last_stmt = s;
	ctx->in_stmt = true;
	return s;
}

/* list (NULL: a new one) with name appended; doubling, so that a list of
 * n names costs O(n), not O(n^2) */
static struct grammar_names
grammar_names_add(zdmc_parse_ctx *ctx, const struct grammar_names *list,
                  const zdmc_name *name)
{
	struct grammar_names l;

	if (list == NULL) {
		l.cap = 4;
		l.n = 0;
		l.items = zdmc_arena_alloc(ctx->arena, l.cap * sizeof(zdmc_name));
	} else
		l = *list;
	if (l.n == l.cap) {
		zdmc_name *items =
			zdmc_arena_alloc(ctx->arena, 2 * l.cap * sizeof(zdmc_name));

		memcpy(items, l.items, l.n * sizeof(zdmc_name));
		l.items = items;
		l.cap *= 2;
	}
	l.items[l.n++] = *name;
	return l;
}

/* A statement on enum type [schema.]name, on no table: its node, the
 * statement's only action. */
static zdmc_enum_stmt *
grammar_enum(zdmc_parse_ctx *ctx, zdmc_action_tag tag, const zdmc_name *schema,
             const zdmc_name *name, size_t offset)
{
	zdmc_name none = {NULL, offset, false};
	zdmc_enum_stmt *n = (zdmc_enum_stmt *)zdmc_action_new(
		ctx->arena, tag, sizeof(zdmc_enum_stmt), offset);

	grammar_stmt(ctx, NULL, &none, offset);
	n->schema = *schema;
	n->name = *name;
	zdmc_ast_add_action(ctx->diag, ctx->mig->last_stmt, &n->action, NULL);
	return n;
}
