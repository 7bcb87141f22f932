/*
 * preflight.h -- the checks before the first step of a migration.
 *
 * The compiler never sees the database, so everything a plan assumes about
 * the live tables is checked here, before expand: the server is new enough,
 * each table and changed column exists and is of a kind zdm handles, the
 * names the plan creates are free, there is a key to batch by, and nothing
 * on a column the migration replaces would be lost at contract ("never
 * silently lost": what zdm does not carry over is refused, by name).  A cdc
 * plan's key and compared columns are checked too, and for the native
 * source what a logical slot, its walsender and a replication origin need.
 */
#ifndef ZDM_PREFLIGHT_H
#define ZDM_PREFLIGHT_H

#include <stdio.h>

#include "plan_read.h"
#include "zdm.h"

/*
 * Check that the migration may start.  Every problem is printed to report as
 * one line "zdm: preflight: <object>: <problem>" (plus a "HINT: ..." line
 * where useful); facts worth a look (size, estimated rows, the key, a
 * column's current type) as "zdm: preflight: info: <object>: <fact>".
 * Returns 0 when there is no problem, else -1 with err summarising
 * ("preflight found N problems", no SQLSTATE), or -1 with the server's
 * error when a catalog query itself failed.  Read-only: runs in one READ ONLY
 * REPEATABLE READ transaction (one snapshot for every check) and changes
 * nothing.  conn must not be inside a transaction.
 */
int zdm_preflight(PGconn *conn, const zdm_plan *plan, FILE *report,
                  zdm_error *err);

#endif
