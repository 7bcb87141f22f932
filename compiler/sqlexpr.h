/*
 * sqlexpr.h -- SQL expressions and types, checked by PostgreSQL's own parser.
 *
 * A using (...) expression is handed to libpg_query wrapped as a SELECT; a
 * syntax error is reported at its exact place in the .zdm file.  From the
 * parse tree we keep the column references (with their byte spans in the
 * expression text), which lets check.c enforce "using sees the old shape,
 * reverse using the new one" and lets lower.c rebind each reference (NEW.x in
 * a trigger, a physical column in the backfill) without touching anything
 * else in the text.  This file never connects to a database.
 */
#ifndef ZDMC_SQLEXPR_H
#define ZDMC_SQLEXPR_H

#include <stddef.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"

/* Longest expression text accepted (see zdmc_sqlexpr_parse). */
#define ZDMC_SQLEXPR_MAX_BYTES 16384

typedef struct zdmc_colref {
	const char *column;    /* last field, as PostgreSQL resolves it */
	const char *qualifier; /* "users" or "public.users", NULL if bare */
	size_t offset;         /* span of the whole reference in the text */
	size_t length;
} zdmc_colref;

/*
 * What an expression is, judged from its parse tree alone (the compiler
 * knows no function's volatility): a literal, or a cast of one ('x'::text,
 * interval '1 day', -1), is a constant; anything else may give a different
 * value each time it runs.  add column tells a default PostgreSQL stores
 * once in the catalog from one that must be computed for every row.
 */
typedef enum zdmc_sqlexpr_kind {
	ZDMC_SQLEXPR_COMPUTED = 0, /* anything but a (cast) literal */
	ZDMC_SQLEXPR_CONSTANT,     /* a literal or a cast of one, not NULL */
	ZDMC_SQLEXPR_NULL          /* NULL, or a cast of NULL */
} zdmc_sqlexpr_kind;

typedef struct zdmc_sqlexpr {
	const char *text; /* verbatim from the source */
	size_t len;
	size_t src_offset; /* where text starts in the .zdm file */
	zdmc_colref *refs; /* in text order */
	size_t nrefs;
	zdmc_sqlexpr_kind kind;
} zdmc_sqlexpr;

/*
 * Parse expr with libpg_query.  Reports into diag, at source positions:
 * syntax errors; an empty expression; constructs a using expression may not
 * contain, because they cannot be evaluated per row inside a trigger or
 * would make the result depend on other rows: subqueries, aggregate-like
 * window calls (OVER), parameters ($1), whole-row or star references
 * (t.*), and column references with more than three parts.  what names the
 * clause in messages ("using", "reverse using").  Returns NULL on error.
 */
zdmc_sqlexpr *zdmc_sqlexpr_parse(zdmc_arena *arena, zdmc_diag *diag,
                                 const zdmc_expr *expr, const char *what);

/* One "column = expression" of a list (merge's reverse using). */
typedef struct zdmc_sqlassign {
	zdmc_name column; /* folded as PostgreSQL folds it */
	zdmc_expr value;  /* the text after "=", to zdmc_sqlexpr_parse */
} zdmc_sqlassign;

/*
 * Split list -- an expression token, whose top-level commas the scanner
 * noted -- into "column = expression" items, in order.  Reports, at its
 * source position, an item that is not a column name (plain or "quoted")
 * followed by "=", and an empty item; what names the clause.  The values
 * are not parsed here.  Returns the number of well-formed items, *out in
 * the arena.
 */
size_t zdmc_sqlexpr_assignments(zdmc_arena *arena, zdmc_diag *diag,
                                const zdmc_expr *list, const char *what,
                                zdmc_sqlassign **out);

/*
 * Check a column type written in the source (e.g. "numeric(12,2)",
 * "timestamp with time zone", "text[]") by parsing "SELECT NULL::<type>".
 * Reports a syntax error at its source position.  Returns 0 or -1.
 */
int zdmc_sqlexpr_check_type(zdmc_arena *arena, zdmc_diag *diag,
                            const zdmc_type *type);

/*
 * The body of create index -- what follows the table's name: [using
 * METHOD] (ELEMENTS) [include (...)] [nulls [not] distinct] [with (...)]
 * [tablespace T] [where PREDICATE] -- parsed as PostgreSQL parses
 * CREATE INDEX.  Reports at its source position a syntax error, an empty
 * body, a text that is more than one statement, and in its expressions and
 * predicate what a using expression may not hold either (subqueries,
 * parameters, window or aggregate calls).  On success out is filled:
 * name_part, what PostgreSQL's default index name is made of (the
 * elements' column names joined by "_", an expression as "expr"); columns,
 * every column the body names (elements, include, expressions, predicate),
 * with source offsets, the elements first when they are all plain
 * columns (nplain); has_where.  Returns 0 or -1.
 */
typedef struct zdmc_sqlindex {
	const char *name_part;
	zdmc_name *columns;
	size_t ncolumns;
	/* the elements, when each is a plain column: their number (else 0) */
	size_t nplain;
	bool has_where; /* a partial index */
} zdmc_sqlindex;
int zdmc_sqlexpr_check_index(zdmc_arena *arena, zdmc_diag *diag,
                             const zdmc_expr *body, zdmc_sqlindex *out);

/*
 * The body of create table -- what follows the table's name: (COLUMNS AND
 * CONSTRAINTS) [partition by ...] [using METHOD] [with (...)] [tablespace
 * T] -- parsed as PostgreSQL parses CREATE TABLE.  Reports at its source
 * position a syntax error, an empty body, or a text that is not one
 * CREATE TABLE.  Returns 0 or -1.
 */
int zdmc_sqlexpr_check_table(zdmc_arena *arena, zdmc_diag *diag,
                             const zdmc_expr *body);

/*
 * The body of a sql (...) statement or its reverse: one or more of
 * PostgreSQL's statements, parsed as they are.  Reports at its source
 * position a syntax error, an empty body, and a statement a zdm step cannot
 * hold, with the reason: a transaction command (BEGIN, COMMIT, SAVEPOINT,
 * ...: each step is its own transaction), and what PostgreSQL will not run
 * in a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, CREATE
 * DATABASE, ...).  what names the clause ("sql", "reverse").  Returns 0 or
 * -1.
 */
int zdmc_sqlexpr_check_statements(zdmc_arena *arena, zdmc_diag *diag,
                                  const zdmc_expr *body, const char *what);

/*
 * Rebind column references: a copy of the expression's text in which every
 * reference is replaced by map(ctx, ref) (or left as written when map returns
 * NULL).  The rest of the text, comments included, is kept byte for byte.
 */
typedef const char *(*zdmc_colref_map)(void *ctx, const zdmc_colref *ref);
const char *zdmc_sqlexpr_rewrite(zdmc_arena *arena, const zdmc_sqlexpr *expr,
                                 zdmc_colref_map map, void *ctx);

#endif
