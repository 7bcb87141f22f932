/*
 * ast.h -- the syntax tree of one .zdm file.
 *
 * The parser builds it in the compile's arena and does no checking beyond
 * syntax; check.c and the ops (compiler/ops/) judge it, lower.c turns it
 * into a plan.  Each operation is a node type of its own behind the common
 * zdmc_action header; its tag, not a switch, leads to its op.  Every node
 * keeps the byte offset of where it was written, so later passes can point
 * at the exact token.  Names are stored as PostgreSQL would see them:
 * unquoted names folded to lower case, "quoted" ones as written.
 */
#ifndef ZDMC_AST_H
#define ZDMC_AST_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "diag.h"

typedef struct zdmc_name {
	const char *name; /* NULL when absent (e.g. no schema given) */
	size_t offset;
	bool quoted;
} zdmc_name;

/* SQL carried verbatim: the text between the parentheses of using (...). */
typedef struct zdmc_expr {
	const char *text; /* NULL when absent */
	size_t offset;    /* offset of text[0] in the source */
	size_t len;
} zdmc_expr;

/* A column type as written, e.g. "numeric(12,2)"; checked by libpg_query. */
typedef struct zdmc_type {
	const char *text;
	size_t offset;
} zdmc_type;

typedef enum zdmc_option_kind {
	ZDMC_OPTVAL_INTEGER, /* 5000 */
	ZDMC_OPTVAL_STRING,  /* '500ms' */
	ZDMC_OPTVAL_WORD,    /* trigger */
	ZDMC_OPTVAL_LIST     /* (switch, contract), possibly () */
} zdmc_option_kind;

typedef struct zdmc_option {
	zdmc_name name;
	zdmc_option_kind kind;
	const char *text; /* integer digits, string contents or word */
	size_t value_offset;
	zdmc_name *items; /* LIST */
	size_t nitems;
	struct zdmc_option *next;
} zdmc_option;

typedef enum zdmc_reverse_kind {
	ZDMC_REVERSE_MISSING, /* neither clause: an error unless ... nothing */
	ZDMC_REVERSE_USING,   /* reverse using (expr) */
	ZDMC_REVERSE_IRREVERSIBLE
} zdmc_reverse_kind;

typedef struct zdmc_reverse {
	zdmc_reverse_kind kind;
	zdmc_expr expr;
	size_t offset; /* of the clause, or where it was expected */
} zdmc_reverse;

/* A new column of a split: first_name text [not null] using (...) */
typedef struct zdmc_coldef {
	zdmc_name name;
	zdmc_type type;
	bool not_null;
	zdmc_expr using;      /* text NULL when missing */
	zdmc_reverse reverse; /* only as parsed; moved to the list's reverse */
	size_t offset;
	struct zdmc_coldef *next;
} zdmc_coldef;

/*
 * Column definitions that follow their action as separate list items (see
 * zdmc_ast_add_coldef): the action that opened the list owns it, and the
 * reverse clause written after the last definition closes it.
 */
typedef struct zdmc_coldef_list {
	zdmc_coldef *first;
	size_t n;
	bool closed;          /* its reverse clause was seen */
	zdmc_reverse reverse; /* MISSING until then */
} zdmc_coldef_list;

/*
 * One operation of an alter table statement.  Every operation has a node
 * type of its own whose first member is this header; the tag says which,
 * and compiler/ops/ops.c maps it to the operation's entry in the op table.
 * Adding an operation adds a tag, a node type and a grammar production.
 */
typedef enum zdmc_action_tag {
	ZDMC_ACTION_SPLIT_COLUMN,      /* split column c into coldef, ... */
	ZDMC_ACTION_ALTER_COLUMN_TYPE, /* alter column c type t [using] */
	ZDMC_ACTION_RENAME_COLUMN,     /* rename column c to d */
	ZDMC_ACTION_ADD_COLUMN,        /* add column c t [clauses] */
	ZDMC_ACTION_SET_DEFAULT,       /* alter column c set default expr */
	ZDMC_ACTION_DROP_DEFAULT,      /* alter column c drop default */
	ZDMC_ACTION_RENAME_TABLE,      /* rename to t */
	ZDMC_NACTION_TAGS
} zdmc_action_tag;

typedef struct zdmc_action {
	zdmc_action_tag tag;
	size_t offset; /* of its first token */
	struct zdmc_action *next;
} zdmc_action;

typedef struct zdmc_split_column {
	zdmc_action action;
	zdmc_name column;
	zdmc_coldef_list into;
} zdmc_split_column;

typedef struct zdmc_alter_column_type {
	zdmc_action action;
	zdmc_name column;
	zdmc_type type;
	zdmc_expr using; /* text NULL: a plain cast */
	zdmc_reverse reverse;
} zdmc_alter_column_type;

typedef struct zdmc_rename_column {
	zdmc_action action;
	zdmc_name column;
	zdmc_name to;
} zdmc_rename_column;

/*
 * A clause of add column, as written: the grammar takes them in any order
 * and any number, and the op's check judges repeats and what is not
 * supported, so that each gets a message at its own place.
 */
typedef enum zdmc_colclause_kind {
	ZDMC_COLCLAUSE_NOT_NULL,  /* not null */
	ZDMC_COLCLAUSE_DEFAULT,   /* default EXPR (expr: its text) */
	ZDMC_COLCLAUSE_USING,     /* using (EXPR) */
	ZDMC_COLCLAUSE_CHECK,     /* check (EXPR) */
	ZDMC_COLCLAUSE_UNIQUE,    /* unique */
	ZDMC_COLCLAUSE_REFERENCES /* references T [(C)] [on delete ACTION] */
} zdmc_colclause_kind;

typedef struct zdmc_colclause {
	zdmc_colclause_kind kind;
	size_t offset;        /* of its first keyword */
	zdmc_expr expr;       /* DEFAULT, USING, CHECK */
	zdmc_name ref_schema; /* REFERENCES: name NULL when not given */
	zdmc_name ref_table;
	zdmc_name ref_column;  /* name NULL when not given */
	const char *on_delete; /* "cascade", "set null", ...; NULL: none */
	size_t on_delete_offset;
	struct zdmc_colclause *next;
} zdmc_colclause;

typedef struct zdmc_add_column {
	zdmc_action action;
	zdmc_name column;
	zdmc_type type;
	zdmc_colclause *clauses; /* in source order */
} zdmc_add_column;
/* set default and drop default: one node type for the two tags (value's
 * text is NULL for drop default). */
typedef struct zdmc_column_default {
	zdmc_action action;
	zdmc_name column;
	zdmc_expr value; /* unparenthesised, to the next , or ; */
} zdmc_column_default;

typedef struct zdmc_rename_table {
	zdmc_action action;
	zdmc_name to; /* the new name, in the table's schema */
} zdmc_rename_table;

/* The node behind a header, checked against its tag (as PostgreSQL's
 * castNode): a mismatch is a programming error. */
const void *zdmc_action_cast(const zdmc_action *action, zdmc_action_tag tag);
#define ZDMC_ACTION_CAST(type, tag, action) \
	((const type *)zdmc_action_cast((action), (tag)))

/* A zeroed node of size bytes (the node type's sizeof) with its header
 * filled in. */
zdmc_action *zdmc_action_new(zdmc_arena *arena, zdmc_action_tag tag,
                             size_t size, size_t offset);

typedef struct zdmc_stmt {
	zdmc_name schema; /* name NULL: public */
	zdmc_name table;
	size_t offset;
	zdmc_action *actions;
	zdmc_action *last_action;
	zdmc_coldef_list *open_coldefs; /* the last action's, if it takes
	                                 * column definitions; else NULL */
	bool broken; /* had a syntax error: later passes skip it */
	struct zdmc_stmt *next;
} zdmc_stmt;

typedef struct zdmc_migration {
	bool has_header;
	zdmc_name name;
	size_t offset;
	zdmc_option *options;
	zdmc_stmt *stmts;
	zdmc_stmt *last_stmt;
	size_t end_offset;  /* end of file, for "no statements" */
	bool header_broken; /* a syntax error before any header or statement */
} zdmc_migration;

/* Parse src into *out (allocated in arena); syntax errors go to diag.
 * Returns the number of syntax errors. */
int zdmc_parse(zdmc_arena *arena, zdmc_diag *diag, const zdmc_source *src,
               zdmc_migration **out);

/*
 * Grammar helpers: the column definitions of a split are separate list items
 * to the LALR(1) grammar (a comma may start another new column or another
 * action), so the parser hands every item here.  An action that takes column
 * definitions passes its list (coldefs, else NULL) and the definitions after
 * it join that list; a column definition with no such action before it is
 * reported.
 */
void zdmc_ast_add_action(zdmc_diag *diag, zdmc_stmt *stmt, zdmc_action *action,
                         zdmc_coldef_list *coldefs);
void zdmc_ast_add_coldef(zdmc_diag *diag, zdmc_stmt *stmt, zdmc_coldef *coldef);

#endif
