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
	/* source offsets of the commas outside any parenthesis, string,
	 * quoted name or comment, as the scanner stepped over them: where a
	 * list such as merge's reverse using (a = ..., b = ...) splits */
	const size_t *commas;
	size_t ncommas;
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
	ZDMC_ACTION_DROP_COLUMN,       /* drop column c [reverse using] */
	ZDMC_ACTION_SET_NOT_NULL,      /* alter column c set not null [using] */
	ZDMC_ACTION_DROP_NOT_NULL, /* alter column c drop not null [reverse] */
	ZDMC_ACTION_SET_DEFAULT,   /* alter column c set default expr */
	ZDMC_ACTION_DROP_DEFAULT,  /* alter column c drop default */
	ZDMC_ACTION_RENAME_TABLE,  /* rename to t */
	ZDMC_ACTION_MERGE_COLUMNS, /* merge columns a, b into coldef */
	ZDMC_ACTION_ADD_CHECK,     /* add constraint n check (e) */
	ZDMC_ACTION_ADD_UNIQUE,    /* add constraint n unique (c, ...) */
	ZDMC_ACTION_ADD_PRIMARY_KEY, /* add constraint n primary key (c, ...) */
	ZDMC_ACTION_ADD_FOREIGN_KEY, /* add constraint n foreign key ... */
	ZDMC_ACTION_DROP_CONSTRAINT, /* drop constraint n */
	ZDMC_ACTION_RENAME_CONSTRAINT, /* rename constraint n to m */
	ZDMC_ACTION_CREATE_INDEX,      /* create [unique] index [n] on t body */
	ZDMC_ACTION_CREATE_TABLE,      /* create table t body */
	ZDMC_ACTION_DROP_TABLE,        /* drop table t */
	ZDMC_ACTION_SPLIT_TABLE, /* split table t move (c, ...) into t2 key */
	ZDMC_ACTION_SQL, /* sql (...) [reverse (...)] [at contract]; no table */
	ZDMC_ACTION_DROP_INDEX,     /* drop index [s.]n; no table */
	ZDMC_ACTION_CREATE_TYPE,    /* create type [s.]n as enum ('a', ...) */
	ZDMC_ACTION_ADD_ENUM_VALUE, /* alter type n add value 'v' [before 'w'] */
	ZDMC_ACTION_RENAME_ENUM_VALUE, /* alter type n rename value 'a' to 'b' */
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
	ZDMC_COLCLAUSE_REFERENCES /* references T [(C)] [on delete/update A] */
} zdmc_colclause_kind;

struct zdmc_add_foreign_key;

typedef struct zdmc_colclause {
	zdmc_colclause_kind kind;
	size_t offset;  /* of its first keyword */
	zdmc_expr expr; /* DEFAULT, USING, CHECK */
	/* REFERENCES: the referenced table, columns and actions, as add
	 * constraint foreign key's tail (its name and columns unset) */
	const struct zdmc_add_foreign_key *fkey;
	struct zdmc_colclause *next;
} zdmc_colclause;

typedef struct zdmc_add_column {
	zdmc_action action;
	zdmc_name column;
	zdmc_type type;
	zdmc_colclause *clauses; /* in source order */
} zdmc_add_column;

typedef struct zdmc_drop_column {
	zdmc_action action;
	zdmc_name column;
	zdmc_reverse reverse; /* MISSING: new-version inserts get the default */
} zdmc_drop_column;

/*
 * alter column c set not null [using (...)] and alter column c drop not null
 * [reverse using (...)]: one node type, two tags.  The grammar takes both
 * clauses after either, so that the op can say which one does not belong
 * rather than leave it to a syntax error.
 */
typedef struct zdmc_alter_not_null {
	zdmc_action action;
	zdmc_name column;
	zdmc_expr using; /* text NULL when not written */
	size_t using_offset;
	zdmc_reverse reverse;
} zdmc_alter_not_null;
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

/* merge columns a, b [, ...] into c type [not null] using (...)
 * reverse using (a = ..., b = ...) | irreversible */
typedef struct zdmc_merge_columns {
	zdmc_action action;
	zdmc_name *columns; /* as listed */
	size_t ncolumns;
	zdmc_coldef *into; /* its reverse clause is the merge's */
} zdmc_merge_columns;

/* A list of names as written, e.g. the columns of unique (a, b). */
typedef struct zdmc_name_list {
	zdmc_name *items;
	size_t n;
	size_t offset; /* of the "(" */
} zdmc_name_list;

/* add constraint n check (expr) [using (...)] */
typedef struct zdmc_add_check {
	zdmc_action action;
	zdmc_name name;
	zdmc_expr expr;
	zdmc_expr using; /* (c = e, ...); text NULL when absent */
	size_t using_offset;
} zdmc_add_check;

/* add constraint n unique (c, ...) and add constraint n primary key (c,
 * ...): one node type, two tags */
typedef struct zdmc_add_key {
	zdmc_action action;
	zdmc_name name;
	zdmc_name_list columns;
} zdmc_add_key;

/* A referential action as written: "cascade", "set null", ... (NULL: not
 * written), with the offset of its ON for messages. */
typedef struct zdmc_fk_action {
	const char *sql; /* CASCADE, SET NULL, ...; NULL when absent */
	size_t offset;
} zdmc_fk_action;

/* add constraint n foreign key (c, ...) references [s.]t [(c, ...)]
 * [on delete a] [on update a] */
typedef struct zdmc_add_foreign_key {
	zdmc_action action;
	zdmc_name name;
	zdmc_name_list columns;
	zdmc_name ref_schema; /* name NULL: the table's own schema */
	zdmc_name ref_table;
	zdmc_name_list ref_columns; /* n 0: the referenced primary key */
	zdmc_fk_action on_delete, on_update;
	size_t repeated_action; /* offset of an on delete / on update given
	                         * twice, 0 when none */
} zdmc_add_foreign_key;

/* drop constraint n */
typedef struct zdmc_drop_constraint {
	zdmc_action action;
	zdmc_name name;
} zdmc_drop_constraint;

/* rename constraint n to m */
typedef struct zdmc_rename_constraint {
	zdmc_action action;
	zdmc_name name;
	zdmc_name to;
} zdmc_rename_constraint;

/* create [unique] index [n] on t BODY: the statement is its table's one
 * action; body is everything after the table name, as written ("(email)
 * where deleted_at IS NULL"), for libpg_query to judge */
typedef struct zdmc_create_index {
	zdmc_action action;
	bool unique;
	zdmc_name name; /* name NULL: not written (zdmc names it) */
	zdmc_expr body;
} zdmc_create_index;

/* create table t BODY: body is everything after the name ("(id bigint
 * PRIMARY KEY, ...) [partition by ...]"), for libpg_query to judge */
typedef struct zdmc_create_table {
	zdmc_action action;
	zdmc_expr body;
} zdmc_create_table;

/* split table t move (c, ...) into [s.]t2 [key (k, ...)]: one action on
 * t; "move" is a plain word the check judges */
typedef struct zdmc_split_table {
	zdmc_action action;
	zdmc_name move; /* the word "move" */
	zdmc_name_list columns;
	zdmc_name into_schema; /* name NULL: t's schema */
	zdmc_name into;
	zdmc_name_list key; /* items NULL: none written */
} zdmc_split_table;

/* drop table t: nothing but the table, which the statement names */
typedef struct zdmc_drop_table {
	zdmc_action action;
} zdmc_drop_table;

/* sql (STATEMENTS) [reverse (STATEMENTS)] [at contract]: the one action
 * of a statement on no table (its zdmc_stmt's table.name is NULL) */
typedef struct zdmc_sql {
	zdmc_action action;
	zdmc_expr body;
	zdmc_expr reverse; /* text NULL: none */
	bool at_contract;
	zdmc_name at; /* the two words after the bodies, when written */
	zdmc_name at_phase;
} zdmc_sql;

/* drop index [concurrently] [schema.]name: on no table */
typedef struct zdmc_drop_index {
	zdmc_action action;
	zdmc_name schema; /* name NULL: none written */
	zdmc_name name;
} zdmc_drop_index;

/*
 * create type [schema.]name as enum ('a', ...), and alter type's add value
 * and rename value: on no table.  The words "as enum", "value", "before"
 * and "after" are plain words the check judges (keywords would stop them
 * being names).  An enum label is a zdmc_name with quoted set.
 */
typedef struct zdmc_enum_stmt {
	zdmc_action action;
	zdmc_name schema; /* name NULL: none written */
	zdmc_name name;
	zdmc_name words[2];    /* "as" "enum", or "value" (words[1] unused) */
	zdmc_name_list labels; /* create type: the labels */
	zdmc_name label;       /* add value 'v', rename value 'a' */
	zdmc_name to;          /* rename value: 'b' */
	zdmc_name position;    /* add value: "before" or "after", or none */
	zdmc_name neighbour;   /* add value: the label it is placed by */
} zdmc_enum_stmt;

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
