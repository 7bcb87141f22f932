/*
 * preflight_driver.c -- zdm_preflight_driver: run zdm_preflight on a plan.
 *
 *   zdm_preflight_driver PLAN [CONNINFO]
 *
 * A test harness for tests/runtime/preflight_test.sh, not the product (that
 * is `zdm apply`, whose runner calls zdm_preflight before the first step).
 * It loads the plan, connects (CONNINFO, else $DATABASE_URL, else libpq's
 * PG* environment) with an empty search_path, as the plan's steps run, and
 * prints the preflight's report on stdout; the summary or any other error
 * goes to stderr as zdm prints errors.
 *
 * Exit status: 0 no problem, 1 problems found (or a catalog query failed),
 * 2 usage, plan or connection errors.
 */
#include <stdio.h>

#include "plan_read.h"
#include "preflight.h"
#include "zdm.h"

int
main(int argc, char **argv)
{
	char errbuf[1024];
	zdm_plan *plan = NULL;
	zdm_error err;
	PGconn *conn;
	int status;

	if (argc < 2 || argc > 3) {
		fprintf(stderr,
		        "usage: zdm_preflight_driver PLAN [CONNINFO]\n");
		return ZDM_EXIT_USAGE;
	}
	if (zdm_plan_load(&plan, argv[1], errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "%s\n", errbuf);
		return ZDM_EXIT_USAGE;
	}
	conn = zdm_conn_open(argc == 3 ? argv[2] : NULL, "preflight", NULL,
	                     &err);
	if (!conn) {
		zdm_error_print(&err, stderr);
		zdm_plan_free(plan);
		return ZDM_EXIT_USAGE;
	}
	status = ZDM_EXIT_OK;
	if (zdm_preflight(conn, plan, stdout, &err) != 0) {
		zdm_error_print(&err, stderr);
		status = ZDM_EXIT_FAILED;
	}
	PQfinish(conn);
	zdm_plan_free(plan);
	return status;
}
