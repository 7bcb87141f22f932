/*
 * enum_type.c -- the enum type statements, on no table (sqlstmt.h):
 *
 *   create type [S.]N as enum ('a', ...)
 *       at expand, before the tables written after it, so that a column
 *       change below it can use the type (alter column status type N
 *       using (status::N)); rollback drops it.  Preflight wants the name
 *       free (a table's row type takes a type's name too).
 *   alter type [S.]N add value 'v' [before | after 'w']
 *       at expand.  PostgreSQL cannot take a label out of an enum, so
 *       rollback cannot undo it: a point of no return.  ADD VALUE runs in
 *       a transaction of its own, so the label is usable by the steps
 *       after it.
 *   alter type [S.]N rename value 'a' to 'b'
 *       at contract: the old version writes and compares the old label
 *       until it is gone, and a rename at expand would break it; the new
 *       version sees the old label until contract too.  Rollback before
 *       the point of no return renames it back.
 *
 * Preflight wants the type of add and rename to be an enum, or one
 * created above in the migration, and the labels to be there or not as
 * the statement needs.  Must not: check labels against the data (verify
 * does, through the column change that uses the type).
 */
#include <string.h>

#include "../ident.h"
#include "../sqlstmt.h"

/* PostgreSQL's limit on a label (NAMEDATALEN - 1 bytes), at least one. */
static int
enum_label_check(zdmc_check_ctx *ck, const zdmc_name *label)
{
	size_t len = strlen(label->name);

	if (len >= 1 && len <= ZDMC_MAX_IDENT_BYTES)
		return 0;
	zdmc_diag_error(zdmc_check_diag(ck), label->offset,
	                "enum label '%s': a label has 1 to %d bytes",
	                label->name, ZDMC_MAX_IDENT_BYTES);
	return -1;
}

/* The plain words of the statement, as PostgreSQL spells them. */
static int
enum_words_check(zdmc_check_ctx *ck, const zdmc_name *word, const char *want,
                 const char *where)
{
	if (strcmp(word->name, want) == 0)
		return 0;
	zdmc_diag_error(zdmc_check_diag(ck), word->offset,
	                "expected \"%s\" %s, not \"%s\"", want, where,
	                word->name);
	return -1;
}

int
zdmc_create_type_check(zdmc_check_ctx *ck, const zdmc_options *options,
                       const zdmc_action *action, zdmc_sqlstmt *out)
{
	const zdmc_enum_stmt *n = ZDMC_ACTION_CAST(
		zdmc_enum_stmt, ZDMC_ACTION_CREATE_TYPE, action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	const char *type = zdmc_sqlstmt_object(ck, &n->schema, &n->name);
	const char *labels = "";
	int bad = 0;

	(void)options;
	bad |= enum_words_check(ck, &n->words[0], "as",
	                        "after the type's name");
	if (!bad)
		bad |= enum_words_check(
			ck, &n->words[1], "enum",
			"after \"as\" (zdm creates enum types)");
	for (size_t i = 0; i < n->labels.n; i++) {
		bad |= enum_label_check(ck, &n->labels.items[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(n->labels.items[i].name,
			           n->labels.items[j].name) == 0) {
				zdmc_diag_error(
					zdmc_check_diag(ck),
					n->labels.items[i].offset,
					"enum label '%s' is listed twice",
					n->labels.items[i].name);
				bad = -1;
				break;
			}
		labels = zdmc_arena_printf(
			arena, "%s%s%s", labels, i ? ", " : "",
			zdmc_ident_literal(arena, n->labels.items[i].name));
	}
	if (bad)
		return -1;
	out->statement = "create_type";
	out->type_created = type;
	out->summary = zdmc_arena_printf(arena, "create enum type %s (%s)",
	                                 type, labels);
	out->description =
		zdmc_arena_printf(arena, "create enum type %s", type);
	out->sql = zdmc_arena_printf(arena, "CREATE TYPE %s AS ENUM (%s)", type,
	                             labels);
	out->reverse = zdmc_arena_printf(arena, "DROP TYPE %s", type);
	return 0;
}

int
zdmc_add_enum_value_check(zdmc_check_ctx *ck, const zdmc_options *options,
                          const zdmc_action *action, zdmc_sqlstmt *out)
{
	const zdmc_enum_stmt *n = ZDMC_ACTION_CAST(
		zdmc_enum_stmt, ZDMC_ACTION_ADD_ENUM_VALUE, action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	const char *type = zdmc_sqlstmt_object(ck, &n->schema, &n->name);
	const char *label, *where = "";
	int bad = 0;

	(void)options;
	bad |= enum_words_check(ck, &n->words[0], "value", "after \"add\"");
	bad |= enum_label_check(ck, &n->label);
	if (n->position.name != NULL) {
		if (strcmp(n->position.name, "before") != 0 &&
		    strcmp(n->position.name, "after") != 0) {
			zdmc_diag_error(
				zdmc_check_diag(ck), n->position.offset,
				"after the new label: \"before\" or \"after\" a label, not \"%s\"",
				n->position.name);
			bad = -1;
		} else if (enum_label_check(ck, &n->neighbour) < 0)
			bad = -1;
		else
			where = zdmc_arena_printf(
				arena, " %s %s",
				strcmp(n->position.name, "before") == 0
					? "BEFORE"
					: "AFTER",
				zdmc_ident_literal(arena, n->neighbour.name));
	}
	if (bad)
		return -1;
	label = zdmc_ident_literal(arena, n->label.name);
	out->statement = "add_enum_value";
	out->enum_type = type;
	out->label_added = n->label.name;
	out->label_neighbour = n->position.name ? n->neighbour.name : NULL;
	out->summary = zdmc_arena_printf(arena, "add label %s to enum type %s",
	                                 label, type);
	out->description = zdmc_arena_printf(
		arena,
		"add label %s to enum type %s (PostgreSQL cannot take it out: a point of no return)",
		label, type);
	/* IF NOT EXISTS: a step resumed after its commit, before the journal
	 * said so, finds the label there (preflight refused it at the start) */
	out->sql = zdmc_arena_printf(
		arena, "ALTER TYPE %s ADD VALUE IF NOT EXISTS %s%s", type,
		label, where);
	return 0;
}

int
zdmc_rename_enum_value_check(zdmc_check_ctx *ck, const zdmc_options *options,
                             const zdmc_action *action, zdmc_sqlstmt *out)
{
	const zdmc_enum_stmt *n = ZDMC_ACTION_CAST(
		zdmc_enum_stmt, ZDMC_ACTION_RENAME_ENUM_VALUE, action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	const char *type = zdmc_sqlstmt_object(ck, &n->schema, &n->name);
	const char *from, *to;
	int bad = 0;

	(void)options;
	bad |= enum_words_check(ck, &n->words[0], "value", "after \"rename\"");
	bad |= enum_label_check(ck, &n->label);
	bad |= enum_label_check(ck, &n->to);
	if (!bad && strcmp(n->label.name, n->to.name) == 0) {
		zdmc_diag_error(zdmc_check_diag(ck), n->to.offset,
		                "enum label '%s' renamed to itself",
		                n->to.name);
		bad = -1;
	}
	if (bad)
		return -1;
	from = zdmc_ident_literal(arena, n->label.name);
	to = zdmc_ident_literal(arena, n->to.name);
	out->statement = "rename_enum_value";
	out->enum_type = type;
	out->label_renamed = n->label.name;
	out->label_renamed_to = n->to.name;
	out->summary = zdmc_arena_printf(
		arena, "rename label %s of enum type %s to %s at contract",
		from, type, to);
	out->description = zdmc_arena_printf(
		arena, "rename label %s of enum type %s to %s", from, type, to);
	out->sql = zdmc_arena_printf(
		arena, "ALTER TYPE %s RENAME VALUE %s TO %s", type, from, to);
	out->reverse = zdmc_arena_printf(
		arena, "ALTER TYPE %s RENAME VALUE %s TO %s", type, to, from);
	out->at_contract = true;
	return 0;
}
