/*
 * grammar_state.h -- state shared by the scanner (zdm.l) and parser (zdm.y).
 *
 * Private to grammar/: the rest of the compiler sees only zdmc_parse() from
 * compiler/ast.h.
 */
#ifndef ZDMC_GRAMMAR_STATE_H
#define ZDMC_GRAMMAR_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "source.h"

typedef struct zdmc_lexer_state {
	zdmc_arena *arena;
	zdmc_diag *diag;
	const zdmc_source *src;
	size_t offset;             /* bytes consumed so far */
	bool expect_expr;          /* the previous token was USING or CHECK */
	bool after_drop;           /* the previous token was DROP */
	int prev_word, prev_word2; /* the last two words' tokens (SET after
	                            * DELETE or UPDATE: a referential action,
	                            * and DEFAULT after it no expression) */
	bool bare_pending;         /* DEFAULT: a bare expression follows */
	bool bare_started;      /* a bare expression's first token was seen */
	int expr_state;         /* SC_EXPR or SC_BARE: where a string returns */
	int depth;              /* parenthesis depth inside an expression */
	size_t expr_start;      /* offset just after the expression's "(", or
	                         * of a bare expression's first token */
	size_t expr_end;        /* a bare expression: end of its last token */
	size_t construct_start; /* where an open string or comment began */
	int comment_depth;      /* slash-star comments nest, as in PostgreSQL */
	const char *dolq_tag;   /* the $tag$ that closes a dollar quote */
	int brackets;           /* [ depth inside an expression */
	size_t *commas;         /* the expression's top-level commas */
	size_t ncommas, commas_cap;
	/* statements whose body is PostgreSQL's own: 1 after CREATE [UNIQUE]
	 * INDEX, 2 after its ON or after CREATE TABLE; at 2 the first "(" or
	 * USING starts the body, which runs to the ";" as one bare
	 * expression with no stop words (sql_body) */
	int body_state;
	bool sql_body;
} zdmc_lexer_state;

typedef struct zdmc_parse_ctx {
	zdmc_arena *arena;
	zdmc_diag *diag;
	const zdmc_source *src;
	zdmc_migration *mig;
	bool in_stmt; /* between "alter table" and its ";" */
} zdmc_parse_ctx;

#endif
