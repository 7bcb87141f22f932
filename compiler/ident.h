/*
 * ident.h -- SQL identifiers as PostgreSQL spells them.
 *
 * Generated SQL quotes an identifier only when PostgreSQL would need it
 * (upper case, odd characters, keywords), so plans read like hand-written
 * SQL and stay correct for "Quoted" names.
 */
#ifndef ZDMC_IDENT_H
#define ZDMC_IDENT_H

#include <stdbool.h>

#include "arena.h"

/* PostgreSQL's identifier limit (NAMEDATALEN - 1). */
#define ZDMC_MAX_IDENT_BYTES 63

/* name, double-quoted if PostgreSQL requires it (like quote_ident()). */
const char *zdmc_ident_quote(zdmc_arena *arena, const char *name);
/* schema.name, each part quoted as needed. */
const char *zdmc_ident_qualified(zdmc_arena *arena, const char *schema,
                                 const char *name);
/* A single-quoted SQL string literal of s. */
const char *zdmc_ident_literal(zdmc_arena *arena, const char *s);
bool zdmc_ident_is_keyword(const char *lowercase_word);

#endif
