/*
 * sequence.h -- several migrations in order: `zdm apply A.plan B.plan ...`
 * or `zdm apply DIR` (DIR's *.plan files in name order), and `zdm status`
 * of such a list or of every migration in the journal.
 *
 * A sequence is only an order: each plan is applied by zdm_apply exactly as
 * `zdm apply PLAN` would, one after the other, and the sequence stops where
 * one of them does not finish.  Nothing about a sequence is stored: the
 * journal's rows of its migrations say where it stands.
 */
#ifndef ZDM_SEQUENCE_H
#define ZDM_SEQUENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "runner.h"

/*
 * True when these command-line arguments name a sequence rather than one
 * plan: more than one, or a directory.
 */
bool zdm_sequence_wanted(const char *const *args, size_t nargs);

/*
 * Apply the plans named by args (files, or directories whose *.plan files
 * are taken in name order) in turn.  opts->plan_path is ignored: each run
 * gets its own.  Returns the exit code of the plan that stopped the
 * sequence, ZDM_EXIT_OK when every one is done, or ZDM_EXIT_USAGE before
 * anything runs (a plan cannot be read, two plans of one migration, a done
 * migration whose plan file changed, plans out of order).
 */
int zdm_sequence_apply(const char *const *args, size_t nargs,
                       const zdm_apply_opts *opts);

/*
 * One line per migration: with nargs 0 every migration in the journal
 * (human form only: --json without a plan is zdm_status's), else the plans
 * named by args, those not started included.
 */
int zdm_sequence_status(const char *const *args, size_t nargs,
                        const char *conninfo, bool json);

#endif
