/*
 * cdc_apply_driver.c -- runs `zdm sync` (runtime/sync.c) on a cdc plan
 * built here by hand, for cdc_apply_test.sh: the split of users.name into
 * first_name/last_name, key id, native source, with the statements a
 * compiled plan carries (docs/plan-format.md, "Change data capture").  It
 * exists so the applier can be tested before, and independently of, the
 * plan reader's and compiler's cdc support.
 *
 *   zdm_cdc_apply_driver init            create the zdm journal
 *   zdm_cdc_apply_driver sync [-x] [-P S] run zdm sync on the plan
 *
 *   -x    the forward statement names a column that does not exist (a
 *         prepare failure)
 *   -P S  progress line every S seconds (default 5)
 *
 * The connection comes from the environment (PG*), as zdm's does.  Exit
 * status: zdm_sync's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "plan_read.h"
#include "sync.h"
#include "zdm.h"

static const char forward_sql[] =
	"WITH zdm_event AS MATERIALIZED (SELECT "
	"pg_catalog.jsonb_populate_record(NULL::public.users, zdm_e.j) AS "
	"zdm_row, zdm_e.j -> 'zdm_touched' AS zdm_touched FROM "
	"pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) AS zdm_e(j))"
	" UPDATE public.users SET zdm_new_first_name = (split_part(name, ' "
	"', 1)), zdm_new_last_name = (nullif(substr(name, "
	"length(split_part(name, ' ', 1)) + 2), '')), zdm_sync_pending = "
	"false FROM zdm_event WHERE id = (zdm_event.zdm_row).id AND name IS"
	" NOT DISTINCT FROM (zdm_event.zdm_row).name AND zdm_new_first_name"
	" IS NOT DISTINCT FROM (zdm_event.zdm_row).zdm_new_first_name AND "
	"zdm_new_last_name IS NOT DISTINCT FROM "
	"(zdm_event.zdm_row).zdm_new_last_name AND zdm_sync_pending IS NOT "
	"DISTINCT FROM (zdm_event.zdm_row).zdm_sync_pending AND "
	"(zdm_sync_pending OR zdm_new_first_name IS DISTINCT FROM "
	"(split_part(name, ' ', 1)) OR zdm_new_last_name IS DISTINCT FROM "
	"(nullif(substr(name, length(split_part(name, ' ', 1)) + 2), '')))";

static const char broken_forward_sql[] =
	"WITH zdm_event AS MATERIALIZED (SELECT "
	"pg_catalog.jsonb_populate_record(NULL::public.users, zdm_e.j) AS "
	"zdm_row, zdm_e.j -> 'zdm_touched' AS zdm_touched FROM "
	"pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) AS zdm_e(j))"
	" UPDATE public.users SET zdm_new_first_name = no_such_column FROM "
	"zdm_event WHERE id = (zdm_event.zdm_row).id AND name IS NOT "
	"DISTINCT FROM (zdm_event.zdm_row).name AND zdm_new_first_name IS "
	"NOT DISTINCT FROM (zdm_event.zdm_row).zdm_new_first_name AND "
	"zdm_new_last_name IS NOT DISTINCT FROM "
	"(zdm_event.zdm_row).zdm_new_last_name AND zdm_sync_pending IS NOT "
	"DISTINCT FROM (zdm_event.zdm_row).zdm_sync_pending";

static const char reverse_sql[] =
	"WITH zdm_event AS MATERIALIZED (SELECT "
	"pg_catalog.jsonb_populate_record(NULL::public.users, zdm_e.j) AS "
	"zdm_row, zdm_e.j -> 'zdm_touched' AS zdm_touched FROM "
	"pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) AS zdm_e(j))"
	" UPDATE public.users SET (zdm_new_first_name, zdm_new_last_name, "
	"name, zdm_sync_pending) = (SELECT zdm_new_first_name, "
	"zdm_new_last_name, (concat_ws(' ', zdm_new_first_name, "
	"zdm_new_last_name)), false FROM (SELECT CASE WHEN "
	"users.zdm_sync_pending AND NOT (zdm_event.zdm_touched ->> "
	"'zdm_new_first_name')::pg_catalog.bool THEN "
	"(split_part(users.name, ' ', 1)) ELSE users.zdm_new_first_name "
	"END, CASE WHEN users.zdm_sync_pending AND NOT "
	"(zdm_event.zdm_touched ->> 'zdm_new_last_name')::pg_catalog.bool "
	"THEN (nullif(substr(users.name, length(split_part(users.name, ' ',"
	" 1)) + 2), '')) ELSE users.zdm_new_last_name END) AS "
	"zdm_merged(zdm_new_first_name, zdm_new_last_name)) FROM zdm_event "
	"WHERE id = (zdm_event.zdm_row).id AND name IS NOT DISTINCT FROM "
	"(zdm_event.zdm_row).name AND zdm_new_first_name IS NOT DISTINCT "
	"FROM (zdm_event.zdm_row).zdm_new_first_name AND zdm_new_last_name "
	"IS NOT DISTINCT FROM (zdm_event.zdm_row).zdm_new_last_name AND "
	"zdm_sync_pending IS NOT DISTINCT FROM "
	"(zdm_event.zdm_row).zdm_sync_pending AND (zdm_sync_pending OR name"
	" IS DISTINCT FROM (concat_ws(' ', zdm_new_first_name, "
	"zdm_new_last_name)))";

static char *params[] = {"id", "name", "zdm_new_first_name",
                         "zdm_new_last_name", "zdm_sync_pending"};
static char *touched[] = {"zdm_new_first_name", "zdm_new_last_name"};
static char *name_only[] = {"name"};
static char *key[] = {"id"};

static int
driver_init(void)
{
	zdm_error err;
	PGconn *conn;
	int rc;

	zdm_error_clear(&err);
	conn = zdm_conn_open(NULL, "test", "public", &err);
	if (conn == NULL) {
		zdm_error_print(&err, stderr);
		return 1;
	}
	rc = zdm_journal_init(conn, &err);
	if (rc != 0)
		zdm_error_print(&err, stderr);
	PQfinish(conn);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	zdm_cdc_rule on_insert[2], on_update[4];
	zdm_cdc_sync sync;
	zdm_cdc_table table;
	zdm_cdc_plan cdc;
	zdm_plan plan;
	zdm_sync_opts opts;
	bool broken = false;
	int a;

	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return driver_init();
	if (argc < 2 || strcmp(argv[1], "sync") != 0) {
		fprintf(stderr, "usage: zdm_cdc_apply_driver init | sync [-x] "
		                "[-P SECONDS]\n");
		return 2;
	}
	memset(&opts, 0, sizeof(opts));
	for (a = 2; a < argc; a++) {
		if (strcmp(argv[a], "-x") == 0)
			broken = true;
		else if (strcmp(argv[a], "-P") == 0 && a + 1 < argc)
			opts.progress_interval = atof(argv[++a]);
		else {
			fprintf(stderr, "unknown argument %s\n", argv[a]);
			return 2;
		}
	}

	memset(on_insert, 0, sizeof(on_insert));
	on_insert[0].cond = ZDM_CDC_COND_NOT_NULL;
	on_insert[0].columns = touched;
	on_insert[0].ncolumns = 2;
	on_insert[0].apply = ZDM_CDC_APPLY_REVERSE;
	on_insert[1].cond = ZDM_CDC_COND_ALWAYS;
	on_insert[1].apply = ZDM_CDC_APPLY_FORWARD;
	memset(on_update, 0, sizeof(on_update));
	on_update[0].cond = ZDM_CDC_COND_CHANGED;
	on_update[0].columns = name_only;
	on_update[0].ncolumns = 1;
	on_update[0].apply = ZDM_CDC_APPLY_FORWARD;
	on_update[1].cond = ZDM_CDC_COND_CHANGED;
	on_update[1].columns = touched;
	on_update[1].ncolumns = 2;
	on_update[1].apply = ZDM_CDC_APPLY_REVERSE;
	on_update[2].cond = ZDM_CDC_COND_PENDING;
	on_update[2].apply = ZDM_CDC_APPLY_FORWARD;
	on_update[3].cond = ZDM_CDC_COND_ALWAYS;
	on_update[3].apply = ZDM_CDC_APPLY_NOTHING;

	memset(&sync, 0, sizeof(sync));
	sync.at = "split_name_cdc.zdm:4:3";
	sync.params = params;
	sync.nparams = 5;
	sync.touched = touched;
	sync.ntouched = 2;
	sync.on_insert = on_insert;
	sync.non_insert = 2;
	sync.on_update = on_update;
	sync.non_update = 4;
	sync.forward = (char *)(broken ? broken_forward_sql : forward_sql);
	sync.reverse = (char *)reverse_sql;

	memset(&table, 0, sizeof(table));
	table.table = "public.users";
	table.nspname = "public";
	table.relname = "users";
	table.key = key;
	table.nkey = 1;
	table.syncs = &sync;
	table.nsyncs = 1;

	memset(&cdc, 0, sizeof(cdc));
	cdc.source = "native";
	cdc.publication = "zdm_split_name";
	cdc.slot = "zdm_split_name";
	cdc.origin = "zdm_split_name";
	cdc.max_lag_ms = 1000;
	cdc.stable_for_ms = 5000;
	cdc.tables = &table;
	cdc.ntables = 1;

	memset(&plan, 0, sizeof(plan));
	plan.format_version = 2;
	plan.migration = "split_name";
	plan.sync = "cdc";
	plan.search_path = "public";
	plan.cdc = &cdc;

	opts.plan_path = "split_name_cdc.plan";
	return zdm_sync(&plan, &opts);
}
