/*
 * drop_index.c -- drop index [concurrently] [S.]N: a statement on no table
 * (sqlstmt.h).
 *
 * The old version may depend on the index until it is gone (a query plan,
 * a uniqueness it relies on), so the index lives until contract, where
 * DROP INDEX CONCURRENTLY runs as an autocommit step: it waits for the
 * queries using the index instead of locking the table against them.  IF
 * EXISTS makes a step resumed after a crash, with the index already gone,
 * succeed.  The compiler does not know the index's definition, so rollback
 * cannot bring it back: the step is a point of no return.  Preflight wants
 * the index to exist and to back no constraint (DROP INDEX refuses one:
 * drop the constraint instead).
 *
 * Must not: guess the index's table (the database knows it; preflight
 * reads it).
 */
#include "../sqlstmt.h"

int
zdmc_drop_index_check(zdmc_check_ctx *ck, const zdmc_options *options,
                      const zdmc_action *action, zdmc_sqlstmt *out)
{
	const zdmc_drop_index *n = ZDMC_ACTION_CAST(
		zdmc_drop_index, ZDMC_ACTION_DROP_INDEX, action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	const char *index = zdmc_sqlstmt_object(ck, &n->schema, &n->name);

	(void)options;
	out->statement = "drop_index";
	out->index_dropped = index;
	out->summary =
		zdmc_arena_printf(arena, "drop index %s at contract", index);
	out->description = zdmc_arena_printf(
		arena,
		"drop index %s concurrently (rollback cannot rebuild it: a point of no return)",
		index);
	out->sql = zdmc_arena_printf(
		arena, "DROP INDEX CONCURRENTLY IF EXISTS %s", index);
	out->at_contract = true;
	out->autocommit = true;
	return 0;
}
