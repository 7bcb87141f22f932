/*
 * ident.c -- quote identifiers and literals the way PostgreSQL does.
 *
 * zdmc_ident_quote() follows quote_identifier() in PostgreSQL's ruleutils.c:
 * a name stays bare only if it would read back as itself -- lower-case
 * ASCII letters, digits and underscores, not starting with a digit, and not a
 * keyword the grammar would take as something other than a name.  Getting
 * this wrong in the permissive direction breaks a plan at run time (user,
 * order), in the strict direction it only adds quotes, so when in doubt we
 * quote.  Everything returned lives in the arena; nothing here fails.
 */
#include "ident.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/*
 * The keywords PostgreSQL 15 does not accept as a bare column name
 * everywhere: the RESERVED, COL_NAME and TYPE_FUNC_NAME categories of
 * src/include/parser/kwlist.h (unreserved keywords such as "name" need no
 * quotes).  Checked against the list compiled into libpg_query 15-4.0.0.
 * Sorted in ASCII order for bsearch; kept as a table, not one word a line.
 */
/* clang-format off */
static const char *const ident_keywords[] = {
	"all", "analyse", "analyze", "and", "any", "array", "as", "asc",
	"asymmetric", "authorization", "between", "bigint", "binary", "bit",
	"boolean", "both", "case", "cast", "char", "character", "check",
	"coalesce", "collate", "collation", "column", "concurrently",
	"constraint", "create", "cross", "current_catalog", "current_date",
	"current_role", "current_schema", "current_time", "current_timestamp",
	"current_user", "dec", "decimal", "default", "deferrable", "desc",
	"distinct", "do", "else", "end", "except", "exists", "extract", "false",
	"fetch", "float", "for", "foreign", "freeze", "from", "full", "grant",
	"greatest", "group", "grouping", "having", "ilike", "in", "initially",
	"inner", "inout", "int", "integer", "intersect", "interval", "into",
	"is", "isnull", "join", "lateral", "leading", "least", "left", "like",
	"limit", "localtime", "localtimestamp", "national", "natural", "nchar",
	"none", "normalize", "not", "notnull", "null", "nullif", "numeric",
	"offset", "on", "only", "or", "order", "out", "outer", "overlaps",
	"overlay", "placing", "position", "precision", "primary", "real",
	"references", "returning", "right", "row", "select", "session_user",
	"setof", "similar", "smallint", "some", "substring", "symmetric",
	"table", "tablesample", "then", "time", "timestamp", "to", "trailing",
	"treat", "trim", "true", "union", "unique", "user", "using", "values",
	"varchar", "variadic", "verbose", "when", "where", "window", "with",
	"xmlattributes", "xmlconcat", "xmlelement", "xmlexists", "xmlforest",
	"xmlnamespaces", "xmlparse", "xmlpi", "xmlroot", "xmlserialize",
	"xmltable",
};
/* clang-format on */

static int
ident_keyword_cmp(const void *key, const void *entry)
{
	return strcmp(key, *(const char *const *)entry);
}

/* True for the keywords above only: the ones that force quoting. */
bool
zdmc_ident_is_keyword(const char *lowercase_word)
{
	assert(lowercase_word != NULL);
	return bsearch(lowercase_word, ident_keywords,
	               sizeof(ident_keywords) / sizeof(ident_keywords[0]),
	               sizeof(ident_keywords[0]), ident_keyword_cmp) != NULL;
}

/* Wrap s in quote characters, doubling any inside. */
static const char *
ident_wrap(zdmc_arena *arena, const char *s, char quote)
{
	zdmc_buf buf;
	const char *p;

	zdmc_buf_init(&buf, arena);
	zdmc_buf_append(&buf, &quote, 1);
	for (p = s; *p != '\0'; p++) {
		if (*p == quote)
			zdmc_buf_append(&buf, &quote, 1);
		zdmc_buf_append(&buf, p, 1);
	}
	zdmc_buf_append(&buf, &quote, 1);
	return zdmc_buf_cstr(&buf);
}

const char *
zdmc_ident_quote(zdmc_arena *arena, const char *name)
{
	const char *p;
	bool safe;

	assert(arena != NULL && name != NULL);
	/* ASCII only, like PostgreSQL: a bare "é" would also read back fine,
	 * but quote_identifier() quotes it and we match its output. */
	safe = (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_';
	for (p = name; safe && *p != '\0'; p++)
		safe = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		       *p == '_';
	if (safe && zdmc_ident_is_keyword(name))
		safe = false;
	return safe ? zdmc_arena_strdup(arena, name)
	            : ident_wrap(arena, name, '"');
}

const char *
zdmc_ident_qualified(zdmc_arena *arena, const char *schema, const char *name)
{
	assert(arena != NULL && name != NULL);
	if (schema == NULL)
		return zdmc_ident_quote(arena, name);
	return zdmc_arena_printf(arena, "%s.%s",
	                         zdmc_ident_quote(arena, schema),
	                         zdmc_ident_quote(arena, name));
}

/*
 * Backslashes are left alone: plans assume standard_conforming_strings = on
 * (the default since PostgreSQL 9.1), where a backslash in '...' is an
 * ordinary character, so no E'' form is needed.
 */
const char *
zdmc_ident_literal(zdmc_arena *arena, const char *s)
{
	assert(arena != NULL && s != NULL);
	return ident_wrap(arena, s, '\'');
}
