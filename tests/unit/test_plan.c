/*
 * test_plan.c -- the plan file, written by zdmc and read back by zdm.
 *
 * compiler/plan_write.c and runtime/plan_read.c share no code, only
 * docs/plan-format.md; this test is what holds them together.  It builds a
 * zdmc_plan in C with every kind of step and change, writes it, pins the
 * bytes, reads them back and compares every field.  Then it breaks plans on
 * purpose -- edits, truncation, a newer version, missing keys -- and pins the
 * exact message each one gets, since those messages are what a user sees
 * when a plan is refused.
 *
 * Both plan.h headers are included by relative path: the two directories
 * each have one, and which "plan.h" an -I path finds first is not something
 * a test should depend on.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../compiler/plan.h"
#include "../../runtime/plan_read.h"

#define NAME "plan.out"

/* ---- the fixture: every kind of step and change ------------------------- */

static zdmc_plan_column col_last = {
	.name = "last_name",
	.type = "text",
	.using = "split_part(name, ' ', 2)",
	.not_null = false,
};
static zdmc_plan_column col_first = {
	.name = "first_name",
	.type = "text",
	.using = "split_part(name, ' ', 1)",
	.not_null = true,
	.next = &col_last,
};
static const char *reads_name[] = {"name"};
static const char *reads_email[] = {"email"};
static const char *reads_amount[] = {"amount"};
static const char *reads_note[] = {"note"};
static zdmc_plan_column col_note = {
	.name = "note",
	.type = "varchar(10)",
	.using = "left(note, 10)",
};
static zdmc_plan_change change_lossy = {
	.change = "alter_column_type",
	.at = "split_name.zdm:15:3",
	.summary = "change note to varchar(10)",
	.reads = reads_note,
	.nreads = 1,
	.creates = &col_note,
	.replaces = reads_note,
	.nreplaces = 1,
	.irreversible = true,
};
static zdmc_plan_column col_amount = {
	.name = "amount",
	.type = "numeric(12,2)",
	.using = "amount / 100.0",
};
static zdmc_plan_reverse reverse_amount = {
	.column = "amount",
	.using = "(amount * 100)::integer",
};
static zdmc_plan_change change_retype = {
	.change = "alter_column_type",
	.at = "split_name.zdm:14:3",
	.summary = "change amount to numeric(12,2)",
	.reads = reads_amount,
	.nreads = 1,
	.creates = &col_amount,
	.replaces = reads_amount,
	.nreplaces = 1,
	.reverse = &reverse_amount,
	.next = &change_lossy,
};
static zdmc_plan_rename rename_email = {
	.name = "email",
	.to = "email_address",
};
static zdmc_plan_change change_rename = {
	.change = "rename_column",
	.at = "split_name.zdm:12:3",
	.summary = "rename email to email_address",
	.reads = reads_email,
	.nreads = 1,
	.renames = &rename_email,
};
static zdmc_plan_reverse reverse_name = {
	.column = "name",
	.using = "concat_ws(' ', first_name, last_name)",
};
static zdmc_plan_change change_split = {
	.change = "split_column",
	.at = "split_name.zdm:8:3",
	.summary = "split name into first_name, last_name",
	.reads = reads_name,
	.nreads = 1,
	.creates = &col_first,
	.replaces = reads_name,
	.nreplaces = 1,
	.reverse = &reverse_name,
	.next = &change_rename,
};
static zdmc_plan_table table_payments = {
	.name = "public.payments",
	.changes = &change_retype,
};
static zdmc_plan_table table_users = {
	.name = "public.users",
	.changes = &change_split,
	.next = &table_payments,
};

/* contract: a gate that needs no approval, then the drop */
static zdmc_plan_step step_contract_2 = {
	.kind = ZDMC_STEP_SQL,
	.id = "contract.2",
	.description = "drop the old column name",
	.table = "public.users",
	.transaction = "contract.2",
	.lock_timeout_ms = 500,
	.sql = "ALTER TABLE public.users DROP COLUMN name",
	.compensation = NULL,
	.point_of_no_return = true,
};
static zdmc_plan_step step_contract_1 = {
	.kind = ZDMC_STEP_GATE,
	.id = "contract.1",
	.description = "wait for approval to drop the old columns",
	.gate = "contract",
	.approval = false,
	.next = &step_contract_2,
};
static zdmc_plan_phase phase_contract = {
	.name = "contract",
	.steps = &step_contract_1,
};

/* switch: a gate with approval, two statements in one transaction */
static zdmc_plan_step step_switch_3 = {
	.kind = ZDMC_STEP_SQL,
	.id = "switch.3",
	.description = "publish the new version's view",
	.table = "public.users",
	.transaction = "switch.2",
	.lock_timeout_ms = 250,
	.sql = "CREATE VIEW public_split_user_name.users AS\n"
	       "SELECT id, first_name, last_name, email AS email_address\n"
	       "FROM public.users",
	.compensation = "DROP VIEW public_split_user_name.users",
};
static zdmc_plan_step step_switch_2 = {
	.kind = ZDMC_STEP_SQL,
	.id = "switch.2",
	.description = "make first_name NOT NULL (validated)",
	.table = "public.users",
	.transaction = "switch.2",
	.lock_timeout_ms = 250,
	.sql = "ALTER TABLE public.users ALTER COLUMN first_name SET NOT NULL",
	.compensation =
		"ALTER TABLE public.users ALTER COLUMN first_name DROP NOT NULL",
	.next = &step_switch_3,
};
static zdmc_plan_step step_switch_1 = {
	.kind = ZDMC_STEP_GATE,
	.id = "switch.1",
	.description = "wait for `zdm approve switch`",
	.gate = "switch",
	.approval = true,
	.next = &step_switch_2,
};
static zdmc_plan_phase phase_switch = {
	.name = "switch",
	.steps = &step_switch_1,
	.next = &phase_contract,
};

/* verify: one check with examples, one without */
static zdmc_plan_step step_verify_2 = {
	.kind = ZDMC_STEP_CHECK,
	.id = "verify.2",
	.description = "no negative amounts",
	.table = "public.payments",
	.transaction = "verify.2",
	.lock_timeout_ms = 500,
	.sql = "SELECT count(*) FROM public.payments WHERE amount_new < 0",
	.expect = -1,
};
static zdmc_plan_step step_verify_1 = {
	.kind = ZDMC_STEP_CHECK,
	.id = "verify.1",
	.description = "every row's first_name is filled",
	.table = "public.users",
	.transaction = "verify.1",
	.lock_timeout_ms = 500,
	.sql = "SELECT count(*)\n"
	       "FROM public.users\n"
	       "WHERE first_name IS NULL AND name IS NOT NULL",
	.expect = 0,
	.examples_sql = "SELECT ctid FROM public.users\n"
			"WHERE first_name IS NULL AND name IS NOT NULL\n"
			"LIMIT 5",
	.next = &step_verify_2,
};
static zdmc_plan_phase phase_verify = {
	.name = "verify",
	.steps = &step_verify_1,
	.next = &phase_switch,
};

static zdmc_plan_step step_backfill_1 = {
	.kind = ZDMC_STEP_BACKFILL,
	.id = "backfill.1",
	.description = "fill first_name and last_name from name",
	.table = "public.users",
	.transaction = "backfill.1",
	.lock_timeout_ms = 500,
	.key = "ctid",
	.batch_size = 10000,
	.batch_pause_ms = 20,
	.sql = "UPDATE public.users\n"
	       "SET first_name = split_part(name, ' ', 1),\n"
	       "    last_name = split_part(name, ' ', 2)\n"
	       "WHERE ctid >= $1::tid AND ctid < $2::tid\n",
	.compensation = NULL,
};
static zdmc_plan_phase phase_backfill = {
	.name = "backfill",
	.steps = &step_backfill_1,
	.next = &phase_verify,
};

static zdmc_plan_step step_expand_2 = {
	.kind = ZDMC_STEP_SQL,
	.id = "expand.2",
	.description = "add first_name",
	.table = "public.users",
	.transaction = "expand.1",
	.lock_timeout_ms = 500,
	.sql = "ALTER TABLE public.users ADD COLUMN first_name text",
	.compensation = "ALTER TABLE public.users DROP COLUMN first_name",
};
static zdmc_plan_step step_expand_1 = {
	.kind = ZDMC_STEP_SQL,
	.id = "expand.1",
	.description =
		"create schema public_split_user_name for the new version",
	.transaction = "expand.1",
	.lock_timeout_ms = 500,
	.sql = "CREATE SCHEMA public_split_user_name",
	.compensation = "DROP SCHEMA public_split_user_name",
	.next = &step_expand_2,
};
static zdmc_plan_phase phase_expand = {
	.name = "expand",
	.steps = &step_expand_1,
	.next = &phase_backfill,
};

static const char *approve_gates[] = {"switch", "contract"};

static zdmc_plan fixture = {
	.format_version = ZDMC_PLAN_FORMAT_VERSION,
	.compiler = "zdmc 0.1.0",
	.migration = "split_user_name",
	.source_file = "split_name.zdm",
	.source_sha256 =
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	.min_server_version_num = 150000,
	.batch_size = 10000,
	.batch_pause_ms = 0,
	.lock_timeout_ms = 500,
	.lock_retries = 10,
	.approve = approve_gates,
	.napprove = 2,
	.sync = "trigger",
	.verify_sample = 10000,
	.version_schema = "public_split_user_name",
	.search_path = "public_split_user_name, public",
	.tables = &table_users,
	.phases = &phase_expand,
};

/*
 * The fixture's bytes, as this zdmc writes it (format version 3).  A change
 * here is a change to the plan format: update docs/plan-format.md, and ask
 * whether old plans still read the same.
 */
static const char fixture_yaml[] =
	"zdm_plan: 3\n"
	"compiler: zdmc 0.1.0\n"
	"migration: split_user_name\n"
	"source:\n"
	"  file: split_name.zdm\n"
	"  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	"requires:\n"
	"  server_version_num: 150000\n"
	"options:\n"
	"  batch_size: 10000\n"
	"  batch_pause: 0ms\n"
	"  lock_timeout: 500ms\n"
	"  lock_retries: 10\n"
	"  approve: [switch, contract]\n"
	"  sync: trigger\n"
	"  verify_sample: 10000\n"
	"new_version:\n"
	"  schema: public_split_user_name\n"
	"  search_path: public_split_user_name, public\n"
	"tables:\n"
	"- table: public.users\n"
	"  changes:\n"
	"  - change: split_column\n"
	"    at: split_name.zdm:8:3\n"
	"    summary: split name into first_name, last_name\n"
	"    reads: [name]\n"
	"    creates:\n"
	"    - column: first_name\n"
	"      type: text\n"
	"      not_null: true\n"
	"      using: split_part(name, ' ', 1)\n"
	"    - column: last_name\n"
	"      type: text\n"
	"      not_null: false\n"
	"      using: split_part(name, ' ', 2)\n"
	"    replaces: [name]\n"
	"    reverse:\n"
	"    - column: name\n"
	"      using: concat_ws(' ', first_name, last_name)\n"
	"  - change: rename_column\n"
	"    at: split_name.zdm:12:3\n"
	"    summary: rename email to email_address\n"
	"    reads: [email]\n"
	"    renames:\n"
	"    - column: email\n"
	"      to: email_address\n"
	"- table: public.payments\n"
	"  changes:\n"
	"  - change: alter_column_type\n"
	"    at: split_name.zdm:14:3\n"
	"    summary: change amount to numeric(12,2)\n"
	"    reads: [amount]\n"
	"    creates:\n"
	"    - column: amount\n"
	"      type: numeric(12,2)\n"
	"      not_null: false\n"
	"      using: amount / 100.0\n"
	"    replaces: [amount]\n"
	"    reverse:\n"
	"    - column: amount\n"
	"      using: (amount * 100)::integer\n"
	"  - change: alter_column_type\n"
	"    at: split_name.zdm:15:3\n"
	"    summary: change note to varchar(10)\n"
	"    reads: [note]\n"
	"    creates:\n"
	"    - column: note\n"
	"      type: varchar(10)\n"
	"      not_null: false\n"
	"      using: left(note, 10)\n"
	"    replaces: [note]\n"
	"    irreversible: true\n"
	"phases:\n"
	"- phase: expand\n"
	"  steps:\n"
	"  - id: expand.1\n"
	"    kind: sql\n"
	"    description: create schema public_split_user_name for the new version\n"
	"    transaction: expand.1\n"
	"    lock_timeout: 500ms\n"
	"    sql: CREATE SCHEMA public_split_user_name\n"
	"    compensation: DROP SCHEMA public_split_user_name\n"
	"  - id: expand.2\n"
	"    kind: sql\n"
	"    description: add first_name\n"
	"    table: public.users\n"
	"    transaction: expand.1\n"
	"    lock_timeout: 500ms\n"
	"    sql: ALTER TABLE public.users ADD COLUMN first_name text\n"
	"    compensation: ALTER TABLE public.users DROP COLUMN first_name\n"
	"- phase: backfill\n"
	"  steps:\n"
	"  - id: backfill.1\n"
	"    kind: backfill\n"
	"    description: fill first_name and last_name from name\n"
	"    table: public.users\n"
	"    transaction: backfill.1\n"
	"    lock_timeout: 500ms\n"
	"    key: ctid\n"
	"    batch_size: 10000\n"
	"    batch_pause: 20ms\n"
	"    sql: |\n"
	"      UPDATE public.users\n"
	"      SET first_name = split_part(name, ' ', 1),\n"
	"          last_name = split_part(name, ' ', 2)\n"
	"      WHERE ctid >= $1::tid AND ctid < $2::tid\n"
	"    compensation: null\n"
	"- phase: verify\n"
	"  steps:\n"
	"  - id: verify.1\n"
	"    kind: check\n"
	"    description: every row's first_name is filled\n"
	"    table: public.users\n"
	"    transaction: verify.1\n"
	"    lock_timeout: 500ms\n"
	"    sql: |-\n"
	"      SELECT count(*)\n"
	"      FROM public.users\n"
	"      WHERE first_name IS NULL AND name IS NOT NULL\n"
	"    compensation: null\n"
	"    expect: 0\n"
	"    examples: |-\n"
	"      SELECT ctid FROM public.users\n"
	"      WHERE first_name IS NULL AND name IS NOT NULL\n"
	"      LIMIT 5\n"
	"  - id: verify.2\n"
	"    kind: check\n"
	"    description: no negative amounts\n"
	"    table: public.payments\n"
	"    transaction: verify.2\n"
	"    lock_timeout: 500ms\n"
	"    sql: SELECT count(*) FROM public.payments WHERE amount_new < 0\n"
	"    compensation: null\n"
	"    expect: -1\n"
	"- phase: switch\n"
	"  steps:\n"
	"  - id: switch.1\n"
	"    kind: gate\n"
	"    description: wait for `zdm approve switch`\n"
	"    gate: switch\n"
	"    approval: true\n"
	"  - id: switch.2\n"
	"    kind: sql\n"
	"    description: make first_name NOT NULL (validated)\n"
	"    table: public.users\n"
	"    transaction: switch.2\n"
	"    lock_timeout: 250ms\n"
	"    sql: ALTER TABLE public.users ALTER COLUMN first_name SET NOT NULL\n"
	"    compensation: ALTER TABLE public.users ALTER COLUMN first_name DROP NOT NULL\n"
	"  - id: switch.3\n"
	"    kind: sql\n"
	"    description: publish the new version's view\n"
	"    table: public.users\n"
	"    transaction: switch.2\n"
	"    lock_timeout: 250ms\n"
	"    sql: |-\n"
	"      CREATE VIEW public_split_user_name.users AS\n"
	"      SELECT id, first_name, last_name, email AS email_address\n"
	"      FROM public.users\n"
	"    compensation: DROP VIEW public_split_user_name.users\n"
	"- phase: contract\n"
	"  steps:\n"
	"  - id: contract.1\n"
	"    kind: gate\n"
	"    description: wait for approval to drop the old columns\n"
	"    gate: contract\n"
	"    approval: false\n"
	"  - id: contract.2\n"
	"    kind: sql\n"
	"    description: drop the old column name\n"
	"    table: public.users\n"
	"    transaction: contract.2\n"
	"    lock_timeout: 500ms\n"
	"    sql: ALTER TABLE public.users DROP COLUMN name\n"
	"    compensation: null\n"
	"    point_of_no_return: true\n"
	"plan_sha256: ";

/*
 * The fixture as zdmc 0.1 wrote it, in format version 1: what the reader's
 * refusals are pinned against (their line numbers are this text's), and
 * how a version 1 plan still reads.  A change here is a change to the plan format: update
 * docs/plan-format.md, and ask whether old plans still read the same.
 */
static const char fixture_v1_yaml[] =
	"zdm_plan: 1\n"
	"compiler: zdmc 0.1.0\n"
	"migration: split_user_name\n"
	"source:\n"
	"  file: split_name.zdm\n"
	"  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	"requires:\n"
	"  server_version_num: 150000\n"
	"options:\n"
	"  batch_size: 10000\n"
	"  batch_pause: 0ms\n"
	"  lock_timeout: 500ms\n"
	"  lock_retries: 10\n"
	"  approve: [switch, contract]\n"
	"  sync: trigger\n"
	"  verify_sample: 10000\n"
	"new_version:\n"
	"  schema: public_split_user_name\n"
	"  search_path: public_split_user_name, public\n"
	"tables:\n"
	"- table: public.users\n"
	"  changes:\n"
	"  - change: split_column\n"
	"    at: split_name.zdm:8:3\n"
	"    column: name\n"
	"    into:\n"
	"    - column: first_name\n"
	"      type: text\n"
	"      not_null: true\n"
	"      using: split_part(name, ' ', 1)\n"
	"    - column: last_name\n"
	"      type: text\n"
	"      not_null: false\n"
	"      using: split_part(name, ' ', 2)\n"
	"    reverse_using: concat_ws(' ', first_name, last_name)\n"
	"  - change: rename_column\n"
	"    at: split_name.zdm:12:3\n"
	"    column: email\n"
	"    to: email_address\n"
	"- table: public.payments\n"
	"  changes:\n"
	"  - change: alter_column_type\n"
	"    at: split_name.zdm:14:3\n"
	"    column: amount\n"
	"    type: numeric(12,2)\n"
	"    using: amount / 100.0\n"
	"    reverse_using: (amount * 100)::integer\n"
	"  - change: alter_column_type\n"
	"    at: split_name.zdm:15:3\n"
	"    column: note\n"
	"    type: varchar(10)\n"
	"    using: left(note, 10)\n"
	"    irreversible: true\n"
	"phases:\n"
	"- phase: expand\n"
	"  steps:\n"
	"  - id: expand.1\n"
	"    kind: sql\n"
	"    description: create schema public_split_user_name for the new version\n"
	"    transaction: expand.1\n"
	"    lock_timeout: 500ms\n"
	"    sql: CREATE SCHEMA public_split_user_name\n"
	"    compensation: DROP SCHEMA public_split_user_name\n"
	"  - id: expand.2\n"
	"    kind: sql\n"
	"    description: add first_name\n"
	"    table: public.users\n"
	"    transaction: expand.1\n"
	"    lock_timeout: 500ms\n"
	"    sql: ALTER TABLE public.users ADD COLUMN first_name text\n"
	"    compensation: ALTER TABLE public.users DROP COLUMN first_name\n"
	"- phase: backfill\n"
	"  steps:\n"
	"  - id: backfill.1\n"
	"    kind: backfill\n"
	"    description: fill first_name and last_name from name\n"
	"    table: public.users\n"
	"    transaction: backfill.1\n"
	"    lock_timeout: 500ms\n"
	"    key: ctid\n"
	"    batch_size: 10000\n"
	"    batch_pause: 20ms\n"
	"    sql: |\n"
	"      UPDATE public.users\n"
	"      SET first_name = split_part(name, ' ', 1),\n"
	"          last_name = split_part(name, ' ', 2)\n"
	"      WHERE ctid >= $1::tid AND ctid < $2::tid\n"
	"    compensation: null\n"
	"- phase: verify\n"
	"  steps:\n"
	"  - id: verify.1\n"
	"    kind: check\n"
	"    description: every row's first_name is filled\n"
	"    table: public.users\n"
	"    transaction: verify.1\n"
	"    lock_timeout: 500ms\n"
	"    sql: |-\n"
	"      SELECT count(*)\n"
	"      FROM public.users\n"
	"      WHERE first_name IS NULL AND name IS NOT NULL\n"
	"    compensation: null\n"
	"    expect: 0\n"
	"    examples: |-\n"
	"      SELECT ctid FROM public.users\n"
	"      WHERE first_name IS NULL AND name IS NOT NULL\n"
	"      LIMIT 5\n"
	"  - id: verify.2\n"
	"    kind: check\n"
	"    description: no negative amounts\n"
	"    table: public.payments\n"
	"    transaction: verify.2\n"
	"    lock_timeout: 500ms\n"
	"    sql: SELECT count(*) FROM public.payments WHERE amount_new < 0\n"
	"    compensation: null\n"
	"    expect: -1\n"
	"- phase: switch\n"
	"  steps:\n"
	"  - id: switch.1\n"
	"    kind: gate\n"
	"    description: wait for `zdm approve switch`\n"
	"    gate: switch\n"
	"    approval: true\n"
	"  - id: switch.2\n"
	"    kind: sql\n"
	"    description: make first_name NOT NULL (validated)\n"
	"    table: public.users\n"
	"    transaction: switch.2\n"
	"    lock_timeout: 250ms\n"
	"    sql: ALTER TABLE public.users ALTER COLUMN first_name SET NOT NULL\n"
	"    compensation: ALTER TABLE public.users ALTER COLUMN first_name DROP NOT NULL\n"
	"  - id: switch.3\n"
	"    kind: sql\n"
	"    description: publish the new version's view\n"
	"    table: public.users\n"
	"    transaction: switch.2\n"
	"    lock_timeout: 250ms\n"
	"    sql: |-\n"
	"      CREATE VIEW public_split_user_name.users AS\n"
	"      SELECT id, first_name, last_name, email AS email_address\n"
	"      FROM public.users\n"
	"    compensation: DROP VIEW public_split_user_name.users\n"
	"- phase: contract\n"
	"  steps:\n"
	"  - id: contract.1\n"
	"    kind: gate\n"
	"    description: wait for approval to drop the old columns\n"
	"    gate: contract\n"
	"    approval: false\n"
	"  - id: contract.2\n"
	"    kind: sql\n"
	"    description: drop the old column name\n"
	"    table: public.users\n"
	"    transaction: contract.2\n"
	"    lock_timeout: 500ms\n"
	"    sql: ALTER TABLE public.users DROP COLUMN name\n"
	"    compensation: null\n"
	"    point_of_no_return: true\n"
	"plan_sha256: ";

/* ---- helpers ------------------------------------------------------------ */

static void reseal(char *text);

static char *
write_plan(const zdmc_plan *plan, size_t *len)
{
	char err[512];
	char *out = NULL;

	if (zdmc_plan_write(plan, &out, len, err, sizeof(err)) != 0)
		fail_msg("zdmc_plan_write: %s", err);
	assert_non_null(out);
	assert_int_equal(strlen(out), *len);
	return out;
}

/* The version 1 fixture, sealed (malloc'd, like write_plan's). */
static char *
write_v1(size_t *len)
{
	size_t body = sizeof(fixture_v1_yaml) - 1;
	char *text = malloc(body + 64 + 2);

	assert_non_null(text);
	memcpy(text, fixture_v1_yaml, body);
	memset(text + body, '0', 64);
	strcpy(text + body + 64, "\n");
	*len = body + 64 + 1;
	reseal(text);
	return text;
}

static zdm_plan *
parse_ok(const char *text, size_t len)
{
	char err[512];
	zdm_plan *plan = NULL;

	if (zdm_plan_parse(&plan, NAME, text, len, err, sizeof(err)) != 0)
		fail_msg("zdm_plan_parse: %s", err);
	assert_non_null(plan);
	return plan;
}

/* The plan must be refused with exactly this message. */
static void
assert_refused(const char *text, size_t len, const char *message)
{
	char err[512];
	zdm_plan *plan = NULL;

	memset(err, 'x', sizeof(err));
	assert_int_equal(
		zdm_plan_parse(&plan, NAME, text, len, err, sizeof(err)), -1);
	assert_null(plan);
	assert_string_equal(err, message);
}

static void
assert_same_string(const char *want, const char *got)
{
	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(want, got);
}

/* A copy of text with the first "from" replaced by "to". */
static char *
edit(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	size_t len = strlen(text) - strlen(from) + strlen(to);
	char *out;

	if (!at)
		fail_msg("edit: \"%s\" not in the plan", from);
	out = malloc(len + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), to);
	strcat(out, at + strlen(from));
	return out;
}

/*
 * Recompute plan_sha256 after an edit, as a tool writing its own plans
 * would: so a test can reach the checks that come after the checksum.
 */
static void
reseal(char *text)
{
	char *line = strstr(text, "\nplan_sha256: ");
	char hex[65];

	assert_non_null(line);
	while (strstr(line + 1, "\nplan_sha256: "))
		line = strstr(line + 1, "\nplan_sha256: ");
	line++;
	zdmc_sha256_hex(text, (size_t)(line - text), hex);
	memcpy(line + strlen("plan_sha256: "), hex, 64);
}

/* Edit the version 1 fixture, reseal it, and expect this message. */
static void
assert_edit_refused(const char *from, const char *to, const char *message)
{
	size_t len;
	char *text = write_v1(&len);
	char *edited = edit(text, from, to);

	reseal(edited);
	assert_refused(edited, strlen(edited), message);
	free(edited);
	free(text);
}

static void
assert_same_step(const zdmc_plan_step *want, const char *phase,
                 const zdm_step *got)
{
	assert_int_equal((int)want->kind, (int)got->kind);
	assert_same_string(want->id, got->id);
	assert_same_string(phase, got->phase);
	assert_same_string(want->description, got->description);
	assert_same_string(want->table, got->table);
	assert_same_string(want->transaction, got->transaction);
	assert_int_equal(want->lock_timeout_ms, got->lock_timeout_ms);
	assert_same_string(want->sql, got->sql);
	assert_same_string(want->compensation, got->compensation);
	assert_int_equal(want->point_of_no_return, got->point_of_no_return);
	assert_same_string(want->key, got->key);
	assert_int_equal(want->batch_size, got->batch_size);
	assert_int_equal(want->batch_pause_ms, got->batch_pause_ms);
	assert_true(want->expect == got->expect);
	assert_same_string(want->examples_sql, got->examples_sql);
	assert_same_string(want->gate, got->gate);
	assert_int_equal(want->approval, got->approval);
}

static void
assert_same_names(const char *const *want, size_t nwant, char **got,
                  size_t ngot)
{
	assert_int_equal(nwant, ngot);
	if (nwant == 0)
		assert_null(got);
	for (size_t i = 0; i < nwant; i++)
		assert_same_string(want[i], got[i]);
}

/*
 * A change as zdm reads it: every fact zdmc wrote (plan format 3), and an
 * empty list where zdmc wrote none.  A version 1 plan of the same changes
 * reads as the same facts (test_v1_changes_become_facts).
 */
static void
assert_same_change(const zdmc_plan_change *want, const zdm_change *got)
{
	size_t n;

	assert_same_string(want->change, got->change);
	assert_same_string(want->at, got->at);
	assert_same_string(want->summary, got->summary);
	assert_same_names(want->reads, want->nreads, got->reads, got->nreads);
	n = 0;
	for (const zdmc_plan_column *c = want->creates; c; c = c->next, n++) {
		assert_true(n < got->ncreates);
		assert_same_string(c->name, got->creates[n].column);
		assert_same_string(c->type, got->creates[n].type);
		assert_int_equal(c->not_null, got->creates[n].not_null);
		assert_same_string(c->using, got->creates[n].using);
	}
	assert_int_equal(n, got->ncreates);
	assert_same_names(want->replaces, want->nreplaces, got->replaces,
	                  got->nreplaces);
	n = 0;
	for (const zdmc_plan_rename *r = want->renames; r; r = r->next, n++) {
		assert_true(n < got->nrenames);
		assert_same_string(r->name, got->renames[n].column);
		assert_same_string(r->to, got->renames[n].to);
	}
	assert_int_equal(n, got->nrenames);
	n = 0;
	for (const zdmc_plan_reverse *r = want->reverse; r; r = r->next, n++) {
		assert_true(n < got->nreverse);
		assert_same_string(r->column, got->reverse[n].column);
		assert_same_string(r->using, got->reverse[n].using);
	}
	assert_int_equal(n, got->nreverse);
	assert_int_equal(want->irreversible, got->irreversible);
	assert_same_names(want->constraints_created, want->nconstraints_created,
	                  got->constraints_created, got->nconstraints_created);
	assert_same_names(want->constraints_dropped, want->nconstraints_dropped,
	                  got->constraints_dropped, got->nconstraints_dropped);
	n = 0;
	for (const zdmc_plan_rename *r = want->constraint_renames; r;
	     r = r->next, n++) {
		assert_true(n < got->nconstraint_renames);
		assert_same_string(r->name,
		                   got->constraint_renames[n].constraint);
		assert_same_string(r->to, got->constraint_renames[n].to);
	}
	assert_int_equal(n, got->nconstraint_renames);
	assert_same_names(want->indexes_created, want->nindexes_created,
	                  got->indexes_created, got->nindexes_created);
	n = 0;
	for (const zdmc_plan_reference *r = want->references; r;
	     r = r->next, n++) {
		assert_true(n < got->nreferences);
		assert_same_string(r->table, got->references[n].table);
		assert_same_names(r->columns, r->ncolumns,
		                  got->references[n].columns,
		                  got->references[n].ncolumns);
	}
	assert_int_equal(n, got->nreferences);
	assert_same_string(want->table_renamed_to, got->table_renamed_to);
	assert_same_string(want->split_into, got->split_into);
	n = 0;
	for (const zdmc_plan_default *d = want->defaults; d; d = d->next, n++) {
		assert_true(n < got->ndefaults);
		assert_same_string(d->column, got->defaults[n].column);
		assert_same_string(d->value, got->defaults[n].value);
	}
	assert_int_equal(n, got->ndefaults);
}

static void
assert_same_table(const zdmc_plan_table *want, const zdm_table_info *got)
{
	size_t n = 0;

	assert_same_string(want->name, got->name);
	for (const zdmc_plan_change *c = want->changes; c; c = c->next, n++) {
		assert_true(n < got->nchanges);
		assert_same_change(c, &got->changes[n]);
	}
	assert_int_equal(n, got->nchanges);
	if (n == 0)
		assert_null(got->changes);
}

/* Every field zdm sees equals the field zdmc wrote. */
static void
assert_same_plan(const zdmc_plan *want, const zdm_plan *got)
{
	size_t i = 0;

	assert_int_equal(want->format_version, got->format_version);
	assert_same_string(want->migration, got->migration);
	assert_same_string(want->source_file, got->source_file);
	assert_same_string(want->source_sha256, got->source_sha256);
	assert_non_null(got->plan_sha256);
	assert_int_equal(strlen(got->plan_sha256), 64);
	assert_int_equal(want->min_server_version_num,
	                 got->min_server_version_num);
	assert_int_equal(want->batch_size, got->batch_size);
	assert_int_equal(want->batch_pause_ms, got->batch_pause_ms);
	assert_int_equal(want->lock_timeout_ms, got->lock_timeout_ms);
	assert_int_equal(want->lock_retries, got->lock_retries);
	assert_int_equal(want->napprove, got->napprove);
	for (size_t k = 0; k < want->napprove; k++)
		assert_same_string(want->approve[k], got->approve[k]);
	assert_same_string(want->sync, got->sync);
	assert_int_equal(want->verify_sample, got->verify_sample);
	assert_same_string(want->version_schema, got->version_schema);
	assert_same_string(want->search_path, got->search_path);

	for (const zdmc_plan_table *t = want->tables; t; t = t->next, i++) {
		assert_true(i < got->ntables);
		assert_true(i < got->ntable_info);
		assert_same_string(t->name, got->tables[i]);
		assert_same_table(t, &got->table_info[i]);
	}
	assert_int_equal(i, got->ntables);
	assert_int_equal(i, got->ntable_info);

	i = 0;
	for (const zdmc_plan_phase *ph = want->phases; ph; ph = ph->next)
		for (const zdmc_plan_step *s = ph->steps; s; s = s->next, i++) {
			assert_true(i < got->nsteps);
			assert_same_step(s, ph->name, &got->steps[i]);
		}
	assert_int_equal(i, got->nsteps);
}

/* ---- writing ------------------------------------------------------------ */

static void
test_write_is_deterministic(void **state)
{
	size_t len1, len2;
	char *a, *b;

	(void)state;
	a = write_plan(&fixture, &len1);
	b = write_plan(&fixture, &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(a, b, len1);
	free(a);
	free(b);
}

static void
test_write_matches_format(void **state)
{
	size_t len, body = sizeof(fixture_yaml) - 1;
	char *text;

	(void)state;
	text = write_plan(&fixture, &len);
	/* everything up to the checksum's value, byte for byte */
	assert_int_equal(len, body + 64 + 1);
	assert_memory_equal(text, fixture_yaml, body);
	assert_int_equal(strspn(text + body, "0123456789abcdef"), 64);
	assert_int_equal(text[len - 1], '\n');
	free(text);
}

static void
test_checksum_covers_every_byte_before_last_line(void **state)
{
	size_t len, start;
	char *text, hex[65];

	(void)state;
	text = write_plan(&fixture, &len);
	start = len - strlen("plan_sha256: ") - 64 - 1;
	assert_memory_equal(text + start, "plan_sha256: ", 13);
	zdmc_sha256_hex(text, start, hex);
	assert_memory_equal(text + start + 13, hex, 64);
	free(text);
}

static void
test_sha256_hex(void **state)
{
	char hex[65];

	(void)state;
	zdmc_sha256_hex("", 0, hex);
	assert_string_equal(
		hex,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	zdmc_sha256_hex("abc", 3, hex);
	assert_string_equal(
		hex,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_write_refuses_missing_required_field(void **state)
{
	zdmc_plan_step step = step_expand_1;
	zdmc_plan_phase phase = {.name = "expand", .steps = &step};
	zdmc_plan plan = fixture;
	char err[256];
	char *out = (char *)"untouched";
	size_t len = 99;

	(void)state;
	step.next = NULL;
	step.sql = NULL;
	plan.phases = &phase;
	assert_int_equal(zdmc_plan_write(&plan, &out, &len, err, sizeof(err)),
	                 -1);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_string_equal(err, "step expand.1: \"sql\" is missing");

	step.sql = "SELECT 1";
	step.batch_size = 0;
	step.kind = ZDMC_STEP_BACKFILL;
	step.key = "ctid";
	assert_int_equal(zdmc_plan_write(&plan, &out, &len, err, sizeof(err)),
	                 -1);
	assert_string_equal(
		err, "step expand.1: \"batch_size\" is 0, below its minimum 1");

	step.kind = ZDMC_STEP_SQL;
	step.sql = "SELECT '\xff'";
	assert_int_equal(zdmc_plan_write(&plan, &out, &len, err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "step expand.1: \"sql\" is not valid UTF-8");

	plan = fixture;
	plan.migration = NULL;
	assert_int_equal(zdmc_plan_write(&plan, &out, &len, err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "\"migration\" is missing");

	plan = fixture;
	plan.format_version = 2;
	assert_int_equal(zdmc_plan_write(&plan, &out, &len, err, sizeof(err)),
	                 -1);
	assert_string_equal(err,
	                    "this zdmc writes plan format version 3, not 2");
}

/* ---- reading back ------------------------------------------------------- */

static void
test_round_trip(void **state)
{
	size_t len;
	char *text;
	zdm_plan *plan;

	(void)state;
	text = write_plan(&fixture, &len);
	plan = parse_ok(text, len);
	assert_same_plan(&fixture, plan);
	assert_memory_equal(plan->plan_sha256, text + len - 65, 64);
	zdm_plan_free(plan);

	/* an editor that strips the final newline changes nothing hashed */
	plan = parse_ok(text, len - 1);
	zdm_plan_free(plan);
	free(text);
}

/* No tables, no phases, no gates to approve: empty lists, not absent keys. */
static void
test_empty_lists(void **state)
{
	zdmc_plan plan = fixture;
	size_t len;
	char *text;
	zdm_plan *got;

	(void)state;
	plan.tables = NULL;
	plan.phases = NULL;
	plan.napprove = 0;
	text = write_plan(&plan, &len);
	assert_non_null(strstr(text, "\n  approve: []\n"));
	assert_non_null(
		strstr(text, "\ntables: []\nphases: []\nplan_sha256: "));
	got = parse_ok(text, len);
	assert_same_plan(&plan, got);
	assert_null(got->steps);
	assert_null(got->tables);
	assert_null(got->table_info);
	assert_null(got->approve);
	zdm_plan_free(got);
	free(text);
}

static void
test_load_file(void **state)
{
	char path[] = "/tmp/zdm-test-plan-XXXXXX";
	char err[512];
	size_t len;
	char *text;
	zdm_plan *plan = NULL;
	FILE *f;
	int fd;

	(void)state;
	text = write_plan(&fixture, &len);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);

	if (zdm_plan_load(&plan, path, err, sizeof(err)) != 0)
		fail_msg("zdm_plan_load: %s", err);
	assert_same_plan(&fixture, plan);
	zdm_plan_free(plan);
	unlink(path);

	assert_int_equal(zdm_plan_load(&plan, path, err, sizeof(err)), -1);
	assert_null(plan);
	{
		char want[128];

		snprintf(
			want, sizeof(want),
			"%s: error: could not open plan: No such file or directory",
			path);
		assert_string_equal(err, want);
	}
	assert_int_equal(zdm_plan_load(&plan, "/tmp", err, sizeof(err)), -1);
	assert_string_equal(err,
	                    "/tmp: error: could not read plan: Is a directory");
	free(text);
}

static void
test_unknown_keys_are_ignored(void **state)
{
	size_t len;
	char *text, *a, *b;
	zdm_plan *plan;

	(void)state;
	text = write_v1(&len);
	a = edit(text, "migration: split_user_name\n",
	         "migration: split_user_name\nfuture:\n  nested: [1, 2]\n");
	b = edit(a, "    kind: backfill\n",
	         "    kind: backfill\n    parallelism: 4\n");
	reseal(b);
	plan = parse_ok(b, strlen(b));
	{
		zdmc_plan v1 = fixture;

		v1.format_version = 1;
		assert_same_plan(&v1, plan);
	}
	zdm_plan_free(plan);
	free(b);
	free(a);
	free(text);
}

/* ---- refusing ----------------------------------------------------------- */

static void
test_edited_sql_is_caught(void **state)
{
	size_t len;
	char *text;
	const char *sql;
	size_t start, end;

	(void)state;
	text = write_v1(&len);
	/* every byte of the backfill's SQL, literal block and all */
	sql = strstr(text, "      UPDATE public.users\n");
	assert_non_null(sql);
	start = (size_t)(sql - text);
	end = (size_t)(strstr(text, "    compensation: null\n- phase: verify") -
	               text);
	for (size_t i = start; i < end; i++) {
		char saved = text[i];

		if (saved == '\n' || saved == ' ')
			continue; /* would change the YAML's shape, not just the SQL */
		text[i] = saved == 'X' ? 'Y' : 'X';
		assert_refused(
			text, len,
			NAME
			": error: plan checksum mismatch: the plan was edited after it was compiled; recompile it with zdmc");
		text[i] = saved;
	}
	/* and a one-line SQL value */
	{
		char *edited =
			edit(text, "DROP COLUMN name", "DROP COLUMN nime");

		assert_refused(
			edited, len,
			NAME
			": error: plan checksum mismatch: the plan was edited after it was compiled; recompile it with zdmc");
		free(edited);
	}
	free(text);
}

/* No change to any single byte gets past the reader, whatever it breaks. */
static void
test_every_byte_matters(void **state)
{
	size_t len;
	char *text;

	(void)state;
	text = write_v1(&len);
	for (size_t i = 0; i < len; i++) {
		char err[512];
		zdm_plan *plan = NULL;

		text[i] ^= 0x01;
		if (zdm_plan_parse(&plan, NAME, text, len, err, sizeof(err)) ==
		    0)
			fail_msg("flipping byte %zu was not noticed", i);
		assert_null(plan);
		text[i] ^= 0x01;
	}
	free(text);
}

/*
 * Hostile plans are refused cheaply: 400 KB of '[' used to cost libyaml 95 s
 * of CPU before the reader said anything; now the depth walk stops at the
 * limit's level.  (The test fails by taking minutes, which ctest's timeout
 * reports, not by a measured time.)
 */
static void
test_hostile_nesting(void **state)
{
	const size_t n = 400000;
	char *text = malloc(n + 1);
	char want[256];

	(void)state;
	assert_non_null(text);
	snprintf(want, sizeof(want),
	         NAME ":1:%d: error: the plan nests deeper than %d levels (the "
	              "limit for a plan; zdmc writes far fewer): not a plan "
	              "zdmc wrote",
	         ZDM_PLAN_MAX_DEPTH + 1, ZDM_PLAN_MAX_DEPTH);
	memset(text, '[', n);
	text[n] = '\n';
	assert_refused(text, n + 1, want);
	memset(text, '{', n);
	assert_refused(text, n + 1, want);
	/* block style: "- " per level, one level deeper each */
	for (size_t i = 0; i < n; i += 2) {
		text[i] = '-';
		text[i + 1] = ' ';
	}
	snprintf(want, sizeof(want),
	         NAME ":1:%d: error: the plan nests deeper than %d levels (the "
	              "limit for a plan; zdmc writes far fewer): not a plan "
	              "zdmc wrote",
	         2 * ZDM_PLAN_MAX_DEPTH + 1, ZDM_PLAN_MAX_DEPTH);
	assert_refused(text, n, want);
	/* at the limit the walk goes on: the plan is refused for what it is */
	memset(text, '[', ZDM_PLAN_MAX_DEPTH);
	memset(text + ZDM_PLAN_MAX_DEPTH, ']', ZDM_PLAN_MAX_DEPTH);
	text[2 * ZDM_PLAN_MAX_DEPTH] = '\n';
	assert_refused(text, 2 * ZDM_PLAN_MAX_DEPTH + 1,
	               NAME ":1:1: error: not a zdm plan: the top level is a "
	                    "list, not a mapping");
	free(text);
}

/* A plan over the size limit is refused before it is parsed, from memory
 * and from a file (which is not read past the limit). */
static void
test_hostile_size(void **state)
{
	const size_t n = (size_t)ZDM_PLAN_MAX_BYTES + 1;
	char *text = malloc(n);
	char want[256], err[512], path[] = "/tmp/zdm_test_plan_XXXXXX";
	zdm_plan *plan = NULL;
	FILE *f;
	int fd;

	(void)state;
	assert_non_null(text);
	memset(text, '[', n);
	snprintf(want, sizeof(want),
	         NAME
	         ": error: the plan is larger than %d bytes (the limit for "
	         "a plan): not a plan zdmc wrote",
	         ZDM_PLAN_MAX_BYTES);
	assert_refused(text, n, want);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	fclose(f);
	assert_int_equal(zdm_plan_load(&plan, path, err, sizeof(err)), -1);
	assert_null(plan);
	snprintf(want, sizeof(want),
	         "%s: error: the plan is larger than %d bytes (the limit for "
	         "a plan): not a plan zdmc wrote",
	         path, ZDM_PLAN_MAX_BYTES);
	assert_string_equal(err, want);
	unlink(path);
	free(text);
}

static void
test_truncated(void **state)
{
	size_t len;
	char *text;

	(void)state;
	text = write_v1(&len);
	/*
	 * Every cut refuses the plan (len - 1 only drops the final newline).
	 * Each prefix is copied to a buffer of exactly its size, so that a
	 * reader looking one byte past the end trips AddressSanitizer.
	 */
	for (size_t cut = 0; cut < len - 1; cut++) {
		char err[512];
		zdm_plan *plan = NULL;
		char *prefix = malloc(cut ? cut : 1);

		assert_non_null(prefix);
		memcpy(prefix, text, cut);
		if (zdm_plan_parse(&plan, NAME, prefix, cut, err,
		                   sizeof(err)) == 0)
			fail_msg("a plan cut to %zu bytes was accepted", cut);
		free(prefix);
	}
	/* at a line boundary: still YAML, but the seal is gone */
	assert_refused(
		text, (size_t)(strstr(text, "- phase: verify") - text),
		NAME
		": error: the plan does not end with a plan_sha256 line; it is truncated or was not written by zdmc");
	/* inside the hex */
	assert_refused(
		text, len - 10,
		NAME
		":158:14: error: malformed plan_sha256: expected 64 lower-case hexadecimal digits");
	assert_refused(text, 0, NAME ": error: the plan is empty");
	free(text);

	/* inside a quoted string: libyaml's own words */
	{
		const char *cut = "zdm_plan: 1\nmigration: \"split_us";

		assert_refused(
			cut, strlen(cut),
			NAME
			":2:21: error: not valid YAML: found unexpected end of stream (while scanning a quoted scalar at line 2, column 12)");
	}
}

static void
test_missing_checksum(void **state)
{
	size_t len;
	char *text;

	(void)state;
	text = write_v1(&len);
	assert_refused(
		text, len - 65 - 13,
		NAME
		": error: the plan does not end with a plan_sha256 line; it is truncated or was not written by zdmc");
	free(text);
}

static void
test_malformed_checksum(void **state)
{
	size_t len;
	char *text, *appended, *upper;

	(void)state;
	text = write_v1(&len);

	upper = strdup(text);
	for (char *p = upper + len - 65; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	if (strcmp(upper, text) != 0)
		assert_refused(
			upper, len,
			NAME
			":158:14: error: malformed plan_sha256: expected 64 lower-case hexadecimal digits");
	free(upper);

	appended = malloc(len + 32);
	assert_non_null(appended);
	memcpy(appended, text, len);
	strcpy(appended + len, "extra: 1\n");
	assert_refused(
		appended, strlen(appended),
		NAME
		":158:1: error: plan_sha256 must be the last line of the plan");
	free(appended);

	appended = malloc(len + 32);
	assert_non_null(appended);
	memcpy(appended, text, len);
	strcpy(appended + len, "\n");
	assert_refused(
		appended, strlen(appended),
		NAME
		":158:1: error: plan_sha256 must be the last line of the plan");
	free(appended);
	free(text);

	/* the right shape of line, but inside a string, not the key */
	{
		char hex[65];
		char plan[512];
		size_t body;

		body = (size_t)snprintf(plan, sizeof(plan),
		                        "zdm_plan: 1\nmigration: \"abc\n");
		zdmc_sha256_hex(plan, body, hex);
		snprintf(plan + body, sizeof(plan) - body,
		         "plan_sha256: %s\"\n", hex);
		assert_refused(
			plan, strlen(plan),
			NAME
			":3:14: error: malformed plan_sha256: expected 64 lower-case hexadecimal digits");
	}
}

static void
test_not_a_plan(void **state)
{
	(void)state;
	assert_refused(
		"a: [b\n", 6,
		NAME
		":2:1: error: not valid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)");
	assert_refused(
		"- a\n- b\n", 8,
		NAME
		":1:1: error: not a zdm plan: the top level is a list, not a mapping");
	assert_refused(
		"migration: x\n", 13,
		NAME
		":1:1: error: not a zdm plan: no \"zdm_plan\" key at the top level");
	assert_refused(
		"zdm_plan: one\n", 14,
		NAME
		":1:11: error: \"zdm_plan\" must be an integer (the plan format version)");
	assert_refused(
		"zdm_plan: 1\n---\nzdm_plan: 1\n", 28,
		NAME ":2:1: error: the plan holds more than one YAML document");
	assert_refused(
		"zdm_plan: 1\n\x01\n", 14,
		NAME
		": error: not valid YAML: control characters are not allowed at byte 12");
}

static void
test_newer_version(void **state)
{
	size_t len;
	char *text, *edited;

	(void)state;
	text = write_v1(&len);
	/* no reseal: the version is checked before the checksum, so a plan
	 * from a newer zdmc says "newer", whatever else changed */
	edited = edit(text, "zdm_plan: 1\n", "zdm_plan: 4\n");
	assert_refused(
		edited, len,
		NAME
		":1:11: error: unsupported plan format version 4; this zdm reads versions 1 to 3");
	free(edited);
	free(text);
}

static void
test_missing_keys(void **state)
{
	size_t len;
	char *text, *edited;
	char *phases;

	(void)state;
	/* phases removed, checksum recomputed */
	text = write_v1(&len);
	phases = strstr(text, "phases:\n");
	edited = malloc(len + 1);
	assert_non_null(edited);
	memcpy(edited, text, (size_t)(phases - text));
	strcpy(edited + (phases - text), strstr(phases, "plan_sha256: "));
	reseal(edited);
	assert_refused(edited, strlen(edited),
	               NAME ":1:1: error: missing required key \"phases\"");
	free(edited);
	free(text);

	assert_edit_refused(
		"options:\n  batch_size: 10000\n", "options:\n",
		NAME
		":10:3: error: options: missing required key \"batch_size\"");
	assert_edit_refused("migration: split_user_name\n", "",
	                    NAME
	                    ":1:1: error: missing required key \"migration\"");
	assert_edit_refused(
		"    compensation: DROP SCHEMA public_split_user_name\n", "",
		NAME
		":57:5: error: step expand.1: missing required key \"compensation\"");
	assert_edit_refused(
		"    key: ctid\n    batch_size: 10000\n", "",
		NAME
		":74:5: error: step backfill.1: missing required keys \"key\", \"batch_size\"");
	assert_edit_refused(
		"    gate: switch\n", "",
		NAME
		":118:5: error: step switch.1: missing required key \"gate\"");
	assert_edit_refused(
		"  - id: expand.2\n", "  - ident: expand.2\n",
		NAME
		":64:5: error: phases[1].steps[2]: missing required key \"id\"");
}

static void
test_wrong_types(void **state)
{
	(void)state;
	assert_edit_refused(
		"  batch_size: 10000\n", "  batch_size: lots\n",
		NAME
		":10:15: error: options: \"batch_size\" must be an integer");
	assert_edit_refused(
		"  batch_size: 10000\n", "  batch_size: '10000'\n",
		NAME
		":10:15: error: options: \"batch_size\" must be an integer");
	assert_edit_refused(
		"  batch_size: 10000\n", "  batch_size: 0\n",
		NAME
		":10:15: error: options: \"batch_size\" must be at least 1, not 0");
	assert_edit_refused(
		"  server_version_num: 150000\n",
		"  server_version_num: 99999999999\n",
		NAME
		":8:23: error: requires: \"server_version_num\" must be between 150000 and 2147483647, not 99999999999");
	assert_edit_refused(
		"    expect: -1\n", "    expect: 99999999999999999999\n",
		NAME
		":115:13: error: step verify.2: \"expect\" is out of range");
	assert_edit_refused(
		"  lock_timeout: 500ms\n", "  lock_timeout: 500\n",
		NAME
		":12:17: error: options: \"lock_timeout\" must be a duration in milliseconds, like 500ms");
	assert_edit_refused(
		"    batch_pause: 20ms\n", "    batch_pause: 2s\n",
		NAME
		":82:18: error: step backfill.1: \"batch_pause\" must be a duration in milliseconds, like 500ms");
	assert_edit_refused(
		"migration: split_user_name\n",
		"migration: [split_user_name]\n",
		NAME
		":3:12: error: \"migration\" must be a string, not a list");
	assert_edit_refused(
		"migration: split_user_name\n", "migration: ~\n",
		NAME ":3:12: error: \"migration\" must be a string, not null");
	assert_edit_refused(
		"    sql: CREATE SCHEMA public_split_user_name\n",
		"    sql: null\n",
		NAME
		":62:10: error: step expand.1: \"sql\" must be a string, not null");
	assert_edit_refused(
		"    approval: true\n", "    approval: yes\n",
		NAME
		":122:15: error: step switch.1: \"approval\" must be true or false");
	assert_edit_refused(
		"  approve: [switch, contract]\n", "  approve: switch\n",
		NAME
		":14:12: error: options: \"approve\" must be a list, not a scalar");
	assert_edit_refused(
		"source:\n  file: split_name.zdm\n",
		"source: split_name.zdm\nxsource:\n  file: x\n",
		NAME ":4:9: error: \"source\" must be a mapping, not a scalar");
	assert_edit_refused(
		"    expect: 0\n", "    expect: 0.0\n",
		NAME
		":102:13: error: step verify.1: \"expect\" must be an integer");
	assert_edit_refused(
		"    kind: check\n", "    kind: chekc\n",
		NAME
		":92:11: error: step verify.1: unknown step kind \"chekc\" (expected sql, backfill, check, gate, catch_up, stop_sync or autocommit)");
	assert_edit_refused(
		"  - id: expand.2\n", "  - id: expand.1\n",
		NAME
		":64:9: error: duplicate step id \"expand.1\" (first at line 57)");
	assert_edit_refused(
		"    kind: backfill\n", "    kind: backfill\n    kind: sql\n",
		NAME
		":76:5: error: phases[2].steps[1] has key \"kind\" twice (first at line 75)");
}

/* tables[].changes: the kinds, and the keys each kind requires. */
/* Values the format allows but this runtime cannot run: refused before
 * anything touches a database. */
static void
test_values_this_zdm_cannot_run(void **state)
{
	(void)state;
	assert_edit_refused(
		"  lock_timeout: 500ms\n", "  lock_timeout: 0ms\n",
		NAME
		":12:17: error: options: \"lock_timeout\" must be between 1ms and 2147483647ms (PostgreSQL takes 0 as forever), not 0ms");
	assert_edit_refused(
		"  lock_timeout: 500ms\n", "  lock_timeout: 2147483648ms\n",
		NAME
		":12:17: error: options: \"lock_timeout\" must be between 1ms and 2147483647ms (PostgreSQL takes 0 as forever), not 2147483648ms");
	assert_edit_refused(
		"    lock_timeout: 250ms\n", "    lock_timeout: 0ms\n",
		NAME
		":128:19: error: step switch.2: \"lock_timeout\" must be between 1ms and 2147483647ms (PostgreSQL takes 0 as forever), not 0ms");
	assert_edit_refused(
		"    key: ctid\n", "    key: id\n",
		NAME
		":80:10: error: step backfill.1: \"key\" is \"id\", and this zdm backfills by ctid only; the plan needs a newer zdm");
	assert_edit_refused(
		"  sync: trigger\n", "  sync: cdc\n",
		NAME
		":15:9: error: options: \"sync\" is \"cdc\" in a version-1 plan; cdc plans are format version 2");
	assert_edit_refused(
		"  sync: trigger\n", "  sync: logical\n",
		NAME
		":15:9: error: options: \"sync\" is \"logical\", and this zdm syncs by trigger or cdc only; the plan needs a newer zdm");
	assert_edit_refused(
		"  server_version_num: 150000\n",
		"  server_version_num: 140000\n",
		NAME
		":8:23: error: requires: \"server_version_num\" must be between 150000 and 2147483647, not 140000");
	assert_edit_refused(
		"    gate: switch\n", "    gate: swtich\n",
		NAME
		":121:11: error: step switch.1: \"gate\" is \"swtich\", which is not a gate (expected expand, backfill, verify, switch or contract)");
	assert_edit_refused(
		"  approve: [switch, contract]\n",
		"  approve: [switch, contrat]\n",
		NAME
		":14:21: error: options: \"approve\" holds \"contrat\", which is not a gate (expected expand, backfill, verify, switch or contract)");
}

static void
test_changes_refused(void **state)
{
	size_t len;
	char *text, *edited, *into, *into_end;

	(void)state;
	assert_edit_refused(
		"  - change: rename_column\n", "  - change: drop_column\n",
		NAME
		":36:13: error: tables[1].changes[2]: unknown change \"drop_column\" (expected split_column, rename_column or alter_column_type)");
	assert_edit_refused(
		"  - change: split_column\n", "  - change: [split_column]\n",
		NAME
		":23:13: error: tables[1].changes[1]: \"change\" must be a string, not a list");
	assert_edit_refused(
		"    to: email_address\n", "",
		NAME
		":36:5: error: tables[1].changes[2]: missing required key \"to\"");
	assert_edit_refused(
		"    column: amount\n", "",
		NAME
		":42:5: error: tables[2].changes[1]: missing required key \"column\"");
	assert_edit_refused(
		"    type: numeric(12,2)\n", "",
		NAME
		":42:5: error: tables[2].changes[1]: missing required key \"type\"");
	assert_edit_refused(
		"    into:\n", "    onto:\n",
		NAME
		":23:5: error: tables[1].changes[1]: missing required key \"into\"");
	assert_edit_refused(
		"    into:\n", "    into: first_name\n    xinto:\n",
		NAME
		":26:11: error: tables[1].changes[1]: \"into\" must be a list, not a scalar");
	assert_edit_refused(
		"      not_null: false\n", "",
		NAME
		":31:7: error: tables[1].changes[1].into[2]: missing required key \"not_null\"");
	assert_edit_refused(
		"      not_null: true\n", "      not_null: yes\n",
		NAME
		":29:17: error: tables[1].changes[1].into[1]: \"not_null\" must be true or false");
	assert_edit_refused(
		"    irreversible: true\n", "    irreversible: 1\n",
		NAME
		":53:19: error: tables[2].changes[2]: \"irreversible\" must be true or false");
	assert_edit_refused(
		"- table: public.payments\n  changes:\n",
		"- table: public.payments\n  changes: none\n  xchanges:\n",
		NAME
		":41:12: error: tables[2]: \"changes\" must be a list, not a scalar");

	/* a split into nothing */
	text = write_v1(&len);
	into = strstr(text, "    into:\n");
	assert_non_null(into);
	into_end = strstr(into, "    reverse_using:");
	assert_non_null(into_end);
	edited = malloc(len + 16);
	assert_non_null(edited);
	memcpy(edited, text, (size_t)(into - text));
	strcpy(edited + (into - text), "    into: []\n");
	strcat(edited, into_end);
	reseal(edited);
	assert_refused(
		edited, strlen(edited),
		NAME
		":26:11: error: tables[1].changes[1]: \"into\" must list the new columns");
	free(edited);
	free(text);
}

/* A table with no changes: zdmc writes "changes: []"; the key is optional
 * to a reader, and both read as no changes. */
static void
test_table_without_changes(void **state)
{
	zdmc_plan_table bare = {.name = "public.audit"};
	zdmc_plan plan = fixture;
	size_t len;
	char *text, *edited;
	zdm_plan *got;

	(void)state;
	plan.tables = &bare;
	text = write_plan(&plan, &len);
	got = parse_ok(text, len);
	assert_same_plan(&plan, got);
	assert_int_equal(got->ntable_info, 1);
	assert_int_equal(got->table_info[0].nchanges, 0);
	zdm_plan_free(got);

	edited = edit(text, "  changes: []\n", "");
	reseal(edited);
	got = parse_ok(edited, strlen(edited));
	assert_same_plan(&plan, got);
	zdm_plan_free(got);
	free(edited);
	free(text);
}

/* ---- format version 3: changes as facts, the autocommit step ------------ */

/*
 * A version 3 plan written by hand, as docs/plan-format.md describes it:
 * one change with every fact, one with a name this zdm has never heard of
 * (accepted: the facts say everything), and two autocommit steps.  The
 * last line is a placeholder that v3_plan() seals.
 */
static const char v3_yaml[] =
	"zdm_plan: 3\n"
	"compiler: zdmc 0.2.0\n"
	"migration: facts\n"
	"source:\n"
	"  file: facts.zdm\n"
	"  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	"requires:\n"
	"  server_version_num: 150000\n"
	"options:\n"
	"  batch_size: 1000\n"
	"  batch_pause: 0ms\n"
	"  lock_timeout: 500ms\n"
	"  lock_retries: 3\n"
	"  approve: []\n"
	"  sync: trigger\n"
	"  verify_sample: 100\n"
	"new_version:\n"
	"  schema: public_facts\n"
	"  search_path: public_facts, public\n"
	"tables:\n"
	"- table: public.users\n"
	"  changes:\n"
	"  - change: split_column\n"
	"    at: facts.zdm:8:3\n"
	"    summary: split name into first_name, last_name\n"
	"    reads: [name]\n"
	"    creates:\n"
	"    - column: first_name\n"
	"      type: text\n"
	"      not_null: true\n"
	"      using: split_part(name, ' ', 1)\n"
	"    - column: last_name\n"
	"      type: text\n"
	"      not_null: false\n"
	"      using: null\n"
	"    replaces: [name]\n"
	"    renames:\n"
	"    - column: email\n"
	"      to: email_address\n"
	"    reverse:\n"
	"    - column: name\n"
	"      using: concat_ws(' ', first_name, last_name)\n"
	"    constraints_created: [users_email_check]\n"
	"    constraints_dropped: [users_old_check]\n"
	"    constraint_renames:\n"
	"    - constraint: users_a\n"
	"      to: users_b\n"
	"    indexes_created: [public.users_email_key]\n"
	"    references:\n"
	"    - table: public.customers\n"
	"      columns: [id, region]\n"
	"    - table: public.accounts\n"
	"      columns: []\n"
	"    table_renamed_to: people\n"
	"    defaults:\n"
	"    - column: status\n"
	"      default: '''new''::text'\n"
	"    - column: note\n"
	"      default: null\n"
	"    drops: [legacy_code]\n"
	"    not_null_set: [email]\n"
	"    not_null_dropped: [phone, region]\n"
	"  - change: merge_galaxies\n"
	"    at: facts.zdm:20:3\n"
	"    summary: a change this zdm has never heard of\n"
	"    irreversible: true\n"
	"phases:\n"
	"- phase: expand\n"
	"  steps:\n"
	"  - id: expand.1\n"
	"    kind: autocommit\n"
	"    description: build index users_email_key without blocking writes\n"
	"    table: public.users\n"
	"    transaction: expand.1\n"
	"    lock_timeout: 500ms\n"
	"    index: public.users_email_key\n"
	"    sql: CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON public.users (email)\n"
	"    compensation: DROP INDEX CONCURRENTLY public.users_email_key\n"
	"  - id: expand.2\n"
	"    kind: autocommit\n"
	"    description: add a value to an enum\n"
	"    table: null\n"
	"    transaction: expand.2\n"
	"    lock_timeout: 500ms\n"
	"    sql: ALTER TYPE public.mood ADD VALUE 'meh'\n"
	"    compensation: null\n"
	"plan_sha256: 0000000000000000000000000000000000000000000000000000000000000000\n";

/* v3_yaml with from replaced by to (when from is not NULL), sealed. */
static char *
v3_plan(const char *from, const char *to)
{
	char *text = from ? edit(v3_yaml, from, to) : strdup(v3_yaml);

	assert_non_null(text);
	reseal(text);
	return text;
}

/* statements[]: the statements on no table and their facts survive the
 * round trip; a label without its type, or half a rename, is refused. */
static void
test_statements_round_trip(void **state)
{
	zdmc_plan_statement rename = {
		.statement = "rename_enum_value",
		.at = "m.zdm:5:1",
		.summary =
			"rename label 'a' of enum type public.t to 'b' at contract",
		.enum_type = "public.t",
		.label_renamed = "a",
		.label_renamed_to = "b"};
	zdmc_plan_statement add = {
		.statement = "add_enum_value",
		.at = "m.zdm:4:1",
		.summary = "add label 'c' to enum type public.t",
		.enum_type = "public.t",
		.label_added = "c",
		.label_neighbour = "it's",
		.next = &rename};
	zdmc_plan_statement drop = {
		.statement = "drop_index",
		.at = "m.zdm:3:1",
		.summary = "drop index public.\"Odd\"\"idx\" at contract",
		.index_dropped = "public.\"Odd\"\"idx\"",
		.next = &add};
	zdmc_plan plan = fixture;
	size_t len;
	char *text, *edited;
	zdm_plan *got;

	(void)state;
	plan.statements = &drop;
	text = write_plan(&plan, &len);
	got = parse_ok(text, len);
	assert_int_equal(got->nstatements, 3);
	assert_string_equal(got->statements[0].statement, "drop_index");
	assert_string_equal(got->statements[0].index_dropped,
	                    "public.\"Odd\"\"idx\"");
	assert_null(got->statements[0].enum_type);
	assert_string_equal(got->statements[1].label_added, "c");
	assert_string_equal(got->statements[1].label_neighbour, "it's");
	assert_string_equal(got->statements[2].label_renamed, "a");
	assert_string_equal(got->statements[2].label_renamed_to, "b");
	assert_string_equal(got->statements[2].at, "m.zdm:5:1");
	zdm_plan_free(got);

	edited = edit(text, "  enum_type: public.t\n  label_added: c\n",
	              "  label_added: c\n");
	reseal(edited);
	assert_refused(
		edited, strlen(edited),
		"plan.out:78:3: error: statements[2]: a label without \"enum_type\"");
	free(edited);
	edited = edit(text, "  label_renamed_to: b\n", "");
	reseal(edited);
	assert_refused(
		edited, strlen(edited),
		"plan.out:84:3: error: statements[3]: \"label_renamed\" and \"label_renamed_to\" go together");
	free(edited);
	free(text);
}

static void
assert_v3_refused(const char *from, const char *to, const char *message)
{
	char *text = v3_plan(from, to);

	assert_refused(text, strlen(text), message);
	free(text);
}

/* creates[].type: null is a column that keeps the type of the existing
 * column of its name (set or drop not null with an expression). */
static void
test_v3_created_type_null(void **state)
{
	char *text = v3_plan("      type: text\n      not_null: false\n",
	                     "      type: null\n      not_null: false\n");
	zdm_plan *plan = parse_ok(text, strlen(text));
	const zdm_change *c = &plan->table_info[0].changes[0];

	(void)state;
	assert_string_equal(c->creates[0].type, "text");
	assert_string_equal(c->creates[1].column, "last_name");
	assert_null(c->creates[1].type);
	zdm_plan_free(plan);
	free(text);
}

static void
test_v3_every_fact(void **state)
{
	char *text = v3_plan(NULL, NULL);
	zdm_plan *plan = parse_ok(text, strlen(text));
	const zdm_change *c, *u;

	(void)state;
	assert_int_equal(plan->format_version, 3);
	assert_int_equal(plan->ntable_info, 1);
	assert_int_equal(plan->table_info[0].nchanges, 2);
	c = &plan->table_info[0].changes[0];
	assert_string_equal(c->change, "split_column");
	assert_string_equal(c->at, "facts.zdm:8:3");
	assert_string_equal(c->summary,
	                    "split name into first_name, last_name");
	assert_int_equal(c->nreads, 1);
	assert_string_equal(c->reads[0], "name");
	assert_int_equal(c->ncreates, 2);
	assert_string_equal(c->creates[0].column, "first_name");
	assert_string_equal(c->creates[0].type, "text");
	assert_true(c->creates[0].not_null);
	assert_string_equal(c->creates[0].using, "split_part(name, ' ', 1)");
	assert_string_equal(c->creates[1].column, "last_name");
	assert_false(c->creates[1].not_null);
	assert_null(c->creates[1].using);
	assert_int_equal(c->nreplaces, 1);
	assert_string_equal(c->replaces[0], "name");
	assert_int_equal(c->nrenames, 1);
	assert_string_equal(c->renames[0].column, "email");
	assert_string_equal(c->renames[0].to, "email_address");
	assert_int_equal(c->nreverse, 1);
	assert_string_equal(c->reverse[0].column, "name");
	assert_string_equal(c->reverse[0].using,
	                    "concat_ws(' ', first_name, last_name)");
	assert_false(c->irreversible);
	assert_int_equal(c->nconstraints_created, 1);
	assert_string_equal(c->constraints_created[0], "users_email_check");
	assert_int_equal(c->nconstraints_dropped, 1);
	assert_string_equal(c->constraints_dropped[0], "users_old_check");
	assert_int_equal(c->nconstraint_renames, 1);
	assert_string_equal(c->constraint_renames[0].constraint, "users_a");
	assert_string_equal(c->constraint_renames[0].to, "users_b");
	assert_int_equal(c->nindexes_created, 1);
	assert_string_equal(c->indexes_created[0], "public.users_email_key");
	assert_int_equal(c->nreferences, 2);
	assert_string_equal(c->references[0].table, "public.customers");
	assert_int_equal(c->references[0].ncolumns, 2);
	assert_string_equal(c->references[0].columns[0], "id");
	assert_string_equal(c->references[0].columns[1], "region");
	assert_string_equal(c->references[1].table, "public.accounts");
	assert_int_equal(c->references[1].ncolumns, 0);
	assert_null(c->references[1].columns);
	assert_string_equal(c->table_renamed_to, "people");
	assert_int_equal(c->ndefaults, 2);
	assert_string_equal(c->defaults[0].column, "status");
	assert_string_equal(c->defaults[0].value, "'new'::text");
	assert_string_equal(c->defaults[1].column, "note");
	assert_null(c->defaults[1].value);
	assert_int_equal(c->ndrops, 1);
	assert_string_equal(c->drops[0], "legacy_code");
	assert_int_equal(c->nnot_null_set, 1);
	assert_string_equal(c->not_null_set[0], "email");
	assert_int_equal(c->nnot_null_dropped, 2);
	assert_string_equal(c->not_null_dropped[0], "phone");
	assert_string_equal(c->not_null_dropped[1], "region");

	/* an unknown name, no facts but irreversible: every list empty */
	u = &plan->table_info[0].changes[1];
	assert_string_equal(u->change, "merge_galaxies");
	assert_string_equal(u->summary, "a change this zdm has never heard of");
	assert_true(u->irreversible);
	assert_int_equal(u->nreads + u->ncreates + u->nreplaces + u->nrenames +
	                         u->nreverse + u->nconstraints_created +
	                         u->nconstraints_dropped +
	                         u->nconstraint_renames + u->nindexes_created +
	                         u->nreferences + u->ndefaults + u->ndrops +
	                         u->nnot_null_set + u->nnot_null_dropped,
	                 0);
	assert_null(u->reads);
	assert_null(u->creates);
	assert_null(u->table_renamed_to);
	assert_null(u->split_into);

	assert_int_equal(plan->nsteps, 2);
	assert_int_equal(plan->steps[0].kind, ZDM_STEP_AUTOCOMMIT);
	assert_string_equal(plan->steps[0].index, "public.users_email_key");
	assert_string_equal(plan->steps[0].transaction, "expand.1");
	assert_int_equal(plan->steps[0].lock_timeout_ms, 500);
	assert_string_equal(plan->steps[0].compensation,
	                    "DROP INDEX CONCURRENTLY public.users_email_key");
	assert_int_equal(plan->steps[1].kind, ZDM_STEP_AUTOCOMMIT);
	assert_null(plan->steps[1].index);
	assert_null(plan->steps[1].table);
	assert_null(plan->steps[1].compensation);
	zdm_plan_free(plan);
	free(text);
}

/* A version 1 plan's change keys mean nothing in version 3: only facts. */
static void
test_v3_ignores_version1_keys(void **state)
{
	char *text =
		v3_plan("    summary: a change this zdm has never heard of\n",
	                "    summary: rename a to b\n"
	                "    column: a\n"
	                "    to: b\n");
	zdm_plan *plan = parse_ok(text, strlen(text));
	const zdm_change *c = &plan->table_info[0].changes[1];

	(void)state;
	assert_int_equal(c->nreads, 0);
	assert_int_equal(c->nrenames, 0);
	zdm_plan_free(plan);
	free(text);
}

/* The version 1 fixture, read: every kind converted into facts.  (The
 * round trip compares field by field; this pins one of each as plain
 * values, independent of the writer's structs.) */
static void
test_v1_changes_become_facts(void **state)
{
	size_t len;
	char *text = write_v1(&len);
	zdm_plan *plan = parse_ok(text, len);
	const zdm_change *split, *rename, *retype, *lossy;

	(void)state;
	split = &plan->table_info[0].changes[0];
	rename = &plan->table_info[0].changes[1];
	retype = &plan->table_info[1].changes[0];
	lossy = &plan->table_info[1].changes[1];

	assert_string_equal(split->summary,
	                    "split name into first_name, last_name");
	assert_string_equal(split->reads[0], "name");
	assert_string_equal(split->replaces[0], "name");
	assert_int_equal(split->ncreates, 2);
	assert_string_equal(split->creates[1].using,
	                    "split_part(name, ' ', 2)");
	assert_string_equal(split->reverse[0].column, "name");

	assert_string_equal(rename->summary, "rename email to email_address");
	assert_int_equal(rename->nreplaces, 0);
	assert_int_equal(rename->ncreates, 0);
	assert_string_equal(rename->renames[0].to, "email_address");

	assert_string_equal(retype->summary, "change amount to numeric(12,2)");
	assert_string_equal(retype->creates[0].column, "amount");
	assert_string_equal(retype->creates[0].type, "numeric(12,2)");
	assert_false(retype->creates[0].not_null);
	assert_string_equal(retype->creates[0].using, "amount / 100.0");
	assert_string_equal(retype->replaces[0], "amount");
	assert_string_equal(retype->reverse[0].using,
	                    "(amount * 100)::integer");

	assert_true(lossy->irreversible);
	assert_int_equal(lossy->nreverse, 0);
	assert_null(lossy->reverse);
	zdm_plan_free(plan);
	free(text);
}

static void
test_v3_refused(void **state)
{
	(void)state;
	assert_v3_refused(
		"    summary: split name into first_name, last_name\n", "",
		NAME
		":23:5: error: tables[1].changes[1]: missing required key \"summary\"");
	assert_v3_refused(
		"    reads: [name]\n", "    reads: name\n",
		NAME
		":26:12: error: tables[1].changes[1]: \"reads\" must be a list, not a scalar");
	assert_v3_refused(
		"    reads: [name]\n", "    reads: [[name]]\n",
		NAME
		":26:13: error: tables[1].changes[1]: \"reads\" must be a list of names");
	assert_v3_refused(
		"      not_null: true\n", "      not_null: maybe\n",
		NAME
		":30:17: error: tables[1].changes[1].creates[1]: \"not_null\" must be true or false");
	assert_v3_refused(
		"      type: text\n      not_null: true\n",
		"      not_null: true\n",
		NAME
		":28:7: error: tables[1].changes[1].creates[1]: missing required key \"type\"");
	assert_v3_refused(
		"    - column: email\n      to: email_address\n",
		"    - column: email\n",
		NAME
		":38:7: error: tables[1].changes[1].renames[1]: missing required key \"to\"");
	assert_v3_refused(
		"      using: concat_ws(' ', first_name, last_name)\n",
		"      using: null\n",
		NAME
		":42:14: error: tables[1].changes[1].reverse[1]: \"using\" must be a string, not null");
	assert_v3_refused(
		"    - table: public.accounts\n      columns: []\n",
		"    - table: public.accounts\n",
		NAME
		":52:7: error: tables[1].changes[1].references[2]: missing required key \"columns\"");
	assert_v3_refused(
		"    table_renamed_to: people\n",
		"    table_renamed_to: [people]\n",
		NAME
		":54:23: error: tables[1].changes[1]: \"table_renamed_to\" must be a string, not a list");
	assert_v3_refused(
		"    - column: note\n      default: null\n",
		"    - column: note\n",
		NAME
		":58:7: error: tables[1].changes[1].defaults[2]: missing required key \"default\"");
	assert_v3_refused(
		"    drops: [legacy_code]\n", "    drops: legacy_code\n",
		NAME
		":60:12: error: tables[1].changes[1]: \"drops\" must be a list, not a scalar");
	assert_v3_refused(
		"    not_null_dropped: [phone, region]\n",
		"    not_null_dropped: [phone, [region]]\n",
		NAME
		":62:31: error: tables[1].changes[1]: \"not_null_dropped\" must be a list of names");
	assert_v3_refused(
		"    creates:\n", "    creates: first_name\n    xcreates:\n",
		NAME
		":27:14: error: tables[1].changes[1]: \"creates\" must be a list, not a scalar");
	assert_v3_refused(
		"  - change: merge_galaxies\n",
		"  - change: [merge_galaxies]\n",
		NAME
		":63:13: error: tables[1].changes[2]: \"change\" must be a string, not a list");
	assert_v3_refused(
		"    index: public.users_email_key\n",
		"    index: [public.users_email_key]\n",
		NAME
		":76:12: error: step expand.1: \"index\" must be a string, not a list");
	/* an autocommit step runs alone: no label shared */
	assert_v3_refused(
		"    transaction: expand.2\n", "    transaction: expand.1\n",
		NAME
		": error: step expand.1 is autocommit, and step expand.2 shares its transaction \"expand.1\"");
	/* and autocommit needs version 3 */
	assert_v3_refused(
		"zdm_plan: 3\n", "zdm_plan: 2\n",
		NAME
		":23:5: error: tables[1].changes[1]: missing required key \"column\"");
}

/*
 * new_version.schemas (version 3, tables in several schemas): every
 * version schema, schema first; zdm's sessions take the search_path after
 * them.  Without it a plan has one, and the search_path's last entry.
 */
#define SP "  search_path: public_facts, public\n"
static void
test_v3_version_schemas(void **state)
{
	const char *one = "  search_path: public_facts, public\n";
	const char *two =
		"  schemas: [public_facts, \"Sales_facts\"]\n"
		"  search_path: public_facts, \"Sales_facts\", public, \"Sales, Inc\"\n";
	char *text = v3_plan(NULL, NULL);
	zdm_plan *plan = parse_ok(text, strlen(text));
	char *schema;

	(void)state;
	assert_int_equal(plan->nversion_schemas, 1);
	assert_string_equal(plan->version_schemas[0], "public_facts");
	schema = zdm_plan_schema(plan);
	assert_string_equal(schema, "public");
	free(schema);
	zdm_plan_free(plan);
	free(text);

	text = v3_plan(one, two);
	plan = parse_ok(text, strlen(text));
	assert_int_equal(plan->nversion_schemas, 2);
	assert_string_equal(plan->version_schemas[0], "public_facts");
	assert_string_equal(plan->version_schemas[1], "Sales_facts");
	schema = zdm_plan_schema(plan);
	assert_string_equal(schema, "public, \"Sales, Inc\"");
	free(schema);
	zdm_plan_free(plan);
	free(text);

	assert_v3_refused(
		one, "  schemas: [sales_facts, public_facts]\n" SP,
		NAME
		":19:12: error: new_version: \"schemas\" must start with \"schema\" (public_facts)");
	assert_v3_refused(
		one, "  schemas: [public_facts, public_facts]\n" SP,
		NAME
		":19:12: error: new_version: schema public_facts is listed twice in \"schemas\"");
	assert_v3_refused(
		one, "  schemas: public_facts\n" SP,
		NAME
		":19:12: error: new_version: \"schemas\" must be a list, not a scalar");
	assert_edit_refused(
		"  search_path: public_split_user_name, public\n",
		"  schemas: [public_split_user_name, x]\n"
		"  search_path: public_split_user_name, public\n",
		NAME
		":19:12: error: new_version: \"schemas\" needs plan format version 3");
}
#undef SP

/*
 * An autocommit step's diagnose: read with its four keys; examples
 * optional; description, sql and expect required; a mapping.
 */
#define V3_DIAGNOSE_AT \
	"    compensation: DROP INDEX CONCURRENTLY public.users_email_key\n"

static void
test_v3_diagnose(void **state)
{
	char *text = v3_plan(
		V3_DIAGNOSE_AT, V3_DIAGNOSE_AT
		"    diagnose:\n"
		"      description: no two rows of public.users have the same (email)\n"
		"      sql: SELECT count(*) FROM (SELECT FROM public.users GROUP BY email HAVING count(*) > 1) AS d\n"
		"      expect: 0\n"
		"      examples: SELECT email FROM public.users GROUP BY email HAVING count(*) > 1 LIMIT 5\n");
	zdm_plan *plan = parse_ok(text, strlen(text));
	const zdm_diagnosis *d = plan->steps[0].diagnose;

	(void)state;
	assert_non_null(d);
	assert_string_equal(
		d->description,
		"no two rows of public.users have the same (email)");
	assert_string_equal(
		d->sql,
		"SELECT count(*) FROM (SELECT FROM public.users GROUP BY email HAVING count(*) > 1) AS d");
	assert_int_equal(d->expect, 0);
	assert_string_equal(
		d->examples_sql,
		"SELECT email FROM public.users GROUP BY email HAVING count(*) > 1 LIMIT 5");
	assert_null(plan->steps[1].diagnose);
	zdm_plan_free(plan);
	free(text);

	text = v3_plan(V3_DIAGNOSE_AT, V3_DIAGNOSE_AT "    diagnose:\n"
	                                              "      description: d\n"
	                                              "      sql: SELECT 0\n"
	                                              "      expect: 3\n");
	plan = parse_ok(text, strlen(text));
	assert_int_equal(plan->steps[0].diagnose->expect, 3);
	assert_null(plan->steps[0].diagnose->examples_sql);
	zdm_plan_free(plan);
	free(text);

	assert_v3_refused(
		V3_DIAGNOSE_AT,
		V3_DIAGNOSE_AT "    diagnose:\n"
			       "      description: d\n"
			       "      sql: SELECT 0\n",
		NAME
		":80:7: error: step expand.1: diagnose: missing required key \"expect\"");
	assert_v3_refused(
		V3_DIAGNOSE_AT, V3_DIAGNOSE_AT "    diagnose: SELECT 0\n",
		NAME
		":79:15: error: step expand.1: diagnose must be a mapping, not a scalar");
}

/* The autocommit step kind in an older plan is refused by kind. */
static void
test_autocommit_needs_version3(void **state)
{
	(void)state;
	assert_edit_refused(
		"    kind: backfill\n", "    kind: autocommit\n",
		NAME
		":75:11: error: step backfill.1: step kind \"autocommit\" needs plan format version 3");
}

/* ---- strings that YAML could get wrong ---------------------------------- */

static const char *const tricky[] = {
	"SELECT 'it''s', \"quoted\" FROM t",
	"a: b",
	"key:value",
	"# not a comment",
	"x # y",
	"  leading spaces",
	"trailing spaces  ",
	" ",
	"",
	"\ttab first",
	"tab\tinside",
	"unicode: naïve café — 日本語 ✓ 🐘",
	"null",
	"Null",
	"NULL",
	"~",
	"true",
	"False",
	"yes",
	"no",
	"on",
	"OFF",
	"y",
	"n",
	"123",
	"-5",
	"+7",
	"0",
	"007",
	"1.5",
	".5",
	"1e3",
	"1_000",
	"0x1F",
	"0o17",
	"0b101",
	"1:30",
	".inf",
	"-.INF",
	".nan",
	"2024-01-01",
	"2001-12-14t21:59:43.10-05:00",
	"<<",
	"=",
	"0ms",
	"500ms",
	"expand.1",
	"public.users",
	"SELECT 1\n",
	"SELECT 1\n\n",
	"SELECT 1\n\n\n",
	"\nleading newline",
	"  indented first line\nsecond",
	"line\n  indented\nline",
	"trailing space \nbefore a break",
	"tab\tin\nmulti-line\ttext\n",
	"\ttab-led\nlines",
	"crlf\r\nline",
	"lone\rcr",
	"nel\xc2\x85line sep\xe2\x80\xa8para sep\xe2\x80\xa9",
	"bom\xef\xbb\xbfinside",
	"control\x01\x7f",
	"back\\slash \\n not a newline",
	"- dash",
	"-",
	"--",
	"---",
	"--- doc",
	"...",
	"a\n---\nb",
	"a\n...\nb",
	"[",
	"]",
	"{a}",
	",",
	"&anchor",
	"*alias",
	"!tag",
	"!!str x",
	"%YAML",
	"@at",
	"`tick",
	"|",
	">",
	"? q",
	"?",
	"'",
	"\"",
	"''",
	"\"\"",
	"x\nplan_sha256: 0000000000000000000000000000000000000000000000000000000000000000",
	"plan_sha256: abc",
};

/* One plan that carries s in every kind of string field. */
static void
round_trip_string(const char *s)
{
	zdmc_plan_step gate = {
		.kind = ZDMC_STEP_GATE,
		.id = "switch.1",
		.description = s,
		.gate = "switch", /* one of five names, checked */
		.approval = true,
	};
	zdmc_plan_step check = {
		.kind = ZDMC_STEP_CHECK,
		.id = "verify.1",
		.description = s,
		.table = s,
		.transaction = s,
		.lock_timeout_ms = 1,
		.sql = s,
		.compensation = s,
		.examples_sql = s,
		.next = &gate,
	};
	zdmc_plan_step backfill = {
		.kind = ZDMC_STEP_BACKFILL,
		.id = "backfill.1",
		.description = s,
		.table = s,
		.transaction = s,
		.key = "ctid", /* the only key, checked */
		.lock_timeout_ms = 1,
		.batch_size = 1,
		.sql = s,
		.compensation = s,
		.next = &check,
	};
	zdmc_plan_phase phase = {.name = s, .steps = &backfill};
	zdmc_plan_column col = {.name = s, .type = s, .using = s};
	/* a name in a list of names is never empty (the reader refuses one) */
	const char *name = *s ? s : "empty";
	const char *names[] = {name, name};
	zdmc_plan_rename rename = {.name = s, .to = s};
	zdmc_plan_reverse reverse = {.column = s, .using = s};
	zdmc_plan_reference reference = {
		.table = s, .columns = names, .ncolumns = 2};

	zdmc_plan_default dflt = {.column = s, .value = s};
	/* the change's name is one of the writer's; every fact carries s */
	zdmc_plan_change change = {
		.change = "split_column",
		.at = s,
		.summary = s,
		.reads = names,
		.nreads = 2,
		.creates = &col,
		.replaces = names,
		.nreplaces = 1,
		.renames = &rename,
		.reverse = &reverse,
		.irreversible = true,
		.constraints_created = names,
		.nconstraints_created = 1,
		.constraints_dropped = names,
		.nconstraints_dropped = 2,
		.constraint_renames = &rename,
		.indexes_created = names,
		.nindexes_created = 1,
		.references = &reference,
		.table_renamed_to = s,
		.split_into = s,
		.defaults = &dflt,
	};
	zdmc_plan_table table = {.name = s, .changes = &change};
	const char *approve[] = {"switch", "contract"};
	zdmc_plan plan = fixture;
	char *text;
	size_t len;
	zdm_plan *got;

	plan.compiler = s;
	/* not the migration: its name is one plain path component, and the
	 * reader refuses any other (apply_badplan, case path-name) */
	plan.source_file = s;
	plan.source_sha256 = s;
	plan.approve = approve;
	plan.napprove = 2;
	plan.version_schema = s;
	plan.search_path = s;
	plan.tables = &table;
	plan.phases = &phase;

	text = write_plan(&plan, &len);
	got = parse_ok(text, len);
	assert_same_plan(&plan, got);
	zdm_plan_free(got);
	free(text);
}

static void
test_tricky_strings_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
		round_trip_string(tricky[i]);
}

/* The same, for strings glued together from troublesome pieces, with a
 * fixed seed so a failure reproduces. */
static void
test_random_strings_round_trip(void **state)
{
	static const char *const pieces[] = {
		"a",
		"Z",
		"0",
		"1",
		".",
		" ",
		"  ",
		"\n",
		"\n\n",
		"\t",
		"'",
		"\"",
		":",
		": ",
		"#",
		" #",
		"-",
		"- ",
		"?",
		"[",
		"]",
		"{",
		"}",
		",",
		"&",
		"*",
		"!",
		"|",
		">",
		"%",
		"@",
		"`",
		"\\",
		"é",
		"日本",
		"🐘",
		"\r",
		"\xc2\x85",
		"\xe2\x80\xa8",
		"\xef\xbb\xbf",
		"\x01",
		"\x7f",
		"null",
		"true",
		"e",
		"x",
		"~",
		"---",
		"...",
		"ms",
		"$1",
		";",
	};
	uint32_t seed = 12345;
	char s[256];

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t n, used = 0;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % 10;
		s[0] = '\0';
		for (size_t k = 0; k < n; k++) {
			const char *p;

			seed = seed * 1103515245u + 12345u;
			p = pieces[(seed >> 16) %
			           (sizeof(pieces) / sizeof(pieces[0]))];
			assert_true(used + strlen(p) < sizeof(s));
			strcpy(s + used, p);
			used += strlen(p);
		}
		round_trip_string(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_write_is_deterministic),
		cmocka_unit_test(test_write_matches_format),
		cmocka_unit_test(
			test_checksum_covers_every_byte_before_last_line),
		cmocka_unit_test(test_write_refuses_missing_required_field),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_lists),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_unknown_keys_are_ignored),
		cmocka_unit_test(test_edited_sql_is_caught),
		cmocka_unit_test(test_every_byte_matters),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_hostile_nesting),
		cmocka_unit_test(test_hostile_size),
		cmocka_unit_test(test_missing_checksum),
		cmocka_unit_test(test_malformed_checksum),
		cmocka_unit_test(test_not_a_plan),
		cmocka_unit_test(test_newer_version),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_changes_refused),
		cmocka_unit_test(test_values_this_zdm_cannot_run),
		cmocka_unit_test(test_table_without_changes),
		cmocka_unit_test(test_v3_every_fact),
		cmocka_unit_test(test_v3_created_type_null),
		cmocka_unit_test(test_v3_ignores_version1_keys),
		cmocka_unit_test(test_v1_changes_become_facts),
		cmocka_unit_test(test_v3_refused),
		cmocka_unit_test(test_v3_diagnose),
		cmocka_unit_test(test_autocommit_needs_version3),
		cmocka_unit_test(test_v3_version_schemas),
		cmocka_unit_test(test_statements_round_trip),
		cmocka_unit_test(test_tricky_strings_round_trip),
		cmocka_unit_test(test_random_strings_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
