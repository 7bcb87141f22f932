/*
 * ops.c -- the one table of operations, indexed by AST tag.
 *
 * The only place that maps a tag to behaviour: the grammar tags a node,
 * this table names its op, and from then on the compiler holds the op.
 * It must stay a table (no logic): a missing entry is a programming error
 * caught by the assert.
 */
#include <assert.h>

#include "ops.h"

static const zdmc_op *const ops_by_tag[ZDMC_NACTION_TAGS] = {
	[ZDMC_ACTION_SPLIT_COLUMN] = &zdmc_op_split_column,
	[ZDMC_ACTION_ALTER_COLUMN_TYPE] = &zdmc_op_alter_column_type,
	[ZDMC_ACTION_RENAME_COLUMN] = &zdmc_op_rename_column,
	[ZDMC_ACTION_ADD_COLUMN] = &zdmc_op_add_column,
	[ZDMC_ACTION_DROP_COLUMN] = &zdmc_op_drop_column,
	[ZDMC_ACTION_SET_NOT_NULL] = &zdmc_op_set_not_null,
	[ZDMC_ACTION_DROP_NOT_NULL] = &zdmc_op_drop_not_null,
	[ZDMC_ACTION_SET_DEFAULT] = &zdmc_op_set_default,
	[ZDMC_ACTION_DROP_DEFAULT] = &zdmc_op_drop_default,
	[ZDMC_ACTION_RENAME_TABLE] = &zdmc_op_rename_table,
	[ZDMC_ACTION_MERGE_COLUMNS] = &zdmc_op_merge_columns,
	[ZDMC_ACTION_ADD_CHECK] = &zdmc_op_add_check,
	[ZDMC_ACTION_ADD_UNIQUE] = &zdmc_op_add_unique,
	[ZDMC_ACTION_ADD_PRIMARY_KEY] = &zdmc_op_add_primary_key,
	[ZDMC_ACTION_ADD_FOREIGN_KEY] = &zdmc_op_add_foreign_key,
	[ZDMC_ACTION_DROP_CONSTRAINT] = &zdmc_op_drop_constraint,
	[ZDMC_ACTION_RENAME_CONSTRAINT] = &zdmc_op_rename_constraint,
	[ZDMC_ACTION_CREATE_INDEX] = &zdmc_op_create_index,
	[ZDMC_ACTION_CREATE_TABLE] = &zdmc_op_create_table,
	[ZDMC_ACTION_DROP_TABLE] = &zdmc_op_drop_table,
	[ZDMC_ACTION_SPLIT_TABLE] = &zdmc_op_split_table,
};

const zdmc_op *
zdmc_op_for(const zdmc_action *action)
{
	assert(action->tag < ZDMC_NACTION_TAGS && ops_by_tag[action->tag]);
	return ops_by_tag[action->tag];
}
