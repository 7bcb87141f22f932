/*
 * plan_explain.c -- zdmc explain: a whole plan, in Markdown, for a first
 * review.
 *
 * In the order a reviewer asks: what migration this is and with which
 * options; what it changes (tables[].changes: each change's summary and
 * its facts, never interpreted by name); the
 * risks at a glance; then each phase as a table of its steps -- what each
 * does, the lock each statement takes and for how long, which steps share a
 * transaction, what undoes each one, where a person must approve -- and
 * last, what `zdm rollback` does after each phase.  Everything comes from
 * the plan as the runtime reads it; nothing is looked up anywhere else, so
 * the page is the same on every machine (tests/golden/explain pins it).
 */
#include "plan_review.h"

#include <string.h>

/* "`a`, `b` and `c`" */
static void
explain_names(zdmc_buf *b, char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			zdmc_buf_puts(b, i + 1 == n ? " and " : ", ");
		zdmc_md_code(b, names[i], false);
	}
}

/* ---- header, options, changes ------------------------------------------ */

static void
explain_header(zdmc_buf *b, const zdm_plan *plan, const char *source)
{
	const char *base = strrchr(source, '/');

	zdmc_buf_puts(b, "# Migration ");
	zdmc_md_code(b, plan->migration, false);
	zdmc_buf_puts(b, " (");
	zdmc_md_code(b, base != NULL ? base + 1 : source, false);
	zdmc_buf_puts(b, ")\n\n");
	zdmc_buf_puts(b, "Compiled from ");
	zdmc_md_code(b, plan->source_file, false);
	zdmc_buf_printf(b,
	                " (sha256 `%.12s`); plan sha256 `%.12s`. Needs "
	                "PostgreSQL %d or later (`server_version_num` %d).\n\n",
	                plan->source_sha256, plan->plan_sha256,
	                plan->min_server_version_num / 10000,
	                plan->min_server_version_num);
	zdmc_buf_puts(
		b,
		"Every statement `zdm apply` runs is below, with the lock it "
		"takes and for how long. \"Brief\" means catalog work only: "
		"the lock is held for milliseconds once granted, and no "
		"statement waits longer than its lock timeout for a lock. A "
		"lock is held until its transaction commits.\n\n");
}

static void
explain_options(zdmc_buf *b, const zdm_plan *plan)
{
	zdmc_buf_puts(b, "## Options\n\n"
	                 "| option | value | meaning |\n"
	                 "| --- | --- | --- |\n");
	zdmc_buf_printf(b,
	                "| `batch_size` | %ld | rows per backfill batch; each "
	                "batch is its own transaction |\n",
	                plan->batch_size);
	zdmc_buf_printf(b,
	                "| `batch_pause` | %ldms | pause between batches |\n",
	                plan->batch_pause_ms);
	zdmc_buf_printf(b,
	                "| `lock_timeout` | %ldms | the longest a statement "
	                "waits for a lock, so application queries never queue "
	                "behind zdm for longer |\n",
	                plan->lock_timeout_ms);
	zdmc_buf_printf(b,
	                "| `lock_retries` | %ld | how often a transaction that "
	                "timed out on a lock is tried again, with backoff, "
	                "before the run stops safely |\n",
	                plan->lock_retries);
	if (plan->statement_timeout_ms > 0)
		zdmc_buf_printf(
			b,
			"| `statement_timeout` | %ldms | the longest any "
			"statement of zdm's runs, whatever the role or "
			"database sets; a backfill batch that does not "
			"fit is halved |\n",
			plan->statement_timeout_ms);
	else
		zdmc_buf_puts(b,
		              "| `statement_timeout` | 0 | no limit on zdm's "
		              "statements, whatever the role or database "
		              "sets (zdm sizes them itself) |\n");
	zdmc_buf_puts(b, "| `approve` | ");
	if (plan->napprove == 0) {
		zdmc_buf_puts(b, "none | no gate stops the run |\n");
	} else {
		explain_names(b, plan->approve, plan->napprove);
		zdmc_buf_puts(b, " | the run stops at these gates until "
		                 "`zdm approve GATE` |\n");
	}
	zdmc_buf_puts(b, "| `sync` | ");
	zdmc_md_text(b, plan->sync, true);
	zdmc_buf_puts(b, strcmp(plan->sync, "trigger") == 0
	                         ? " | triggers keep both shapes of each row "
	                           "in step while both application versions "
	                           "write |\n"
	                         : " | how both shapes are kept in step |\n");
	if (plan->cdc != NULL) {
		zdmc_buf_puts(b, "| `cdc.source` | ");
		zdmc_md_text(b, plan->cdc->source, true);
		zdmc_buf_puts(
			b,
			strcmp(plan->cdc->source, "native") == 0
				? " | a running `zdm sync` reads the tables' "
				  "changes from the slot the plan creates and "
				  "applies the transforms |\n"
				: " | a running `zdm sync` reads Debezium "
				  "events from Kafka and applies the "
				  "transforms |\n");
		zdmc_buf_printf(b,
		                "| `cdc.max_lag`, `cdc.stable_for` | %ldms, "
		                "%ldms | a catch-up step passes when the lag "
		                "stays under the first for the second |\n",
		                plan->cdc->max_lag_ms,
		                plan->cdc->stable_for_ms);
	}
	zdmc_buf_printf(b,
	                "| `verify_sample` | %ld | rows in the random sample "
	                "of the round-trip check |\n\n",
	                plan->verify_sample);
	zdmc_buf_puts(b, "New-version clients use `SET search_path = ");
	zdmc_md_text(b, plan->search_path, false);
	zdmc_buf_puts(b, plan->nversion_schemas > 1 ? "` (views in schemas "
	                                            : "` (views in schema ");
	for (size_t i = 0; i < plan->nversion_schemas; i++) {
		if (i > 0)
			zdmc_buf_puts(b, i + 1 < plan->nversion_schemas
			                         ? ", "
			                         : " and ");
		zdmc_md_code(b, plan->version_schemas[i], false);
	}
	zdmc_buf_puts(b, ").\n\n");
}

/* "`a`, `b` and `c`" for a list of plain names */
static void
explain_fact_names(zdmc_buf *b, const char *label, char *const *names, size_t n)
{
	if (n == 0)
		return;
	zdmc_buf_puts(b, "  - ");
	zdmc_buf_puts(b, label);
	zdmc_buf_puts(b, " ");
	explain_names(b, names, n);
	zdmc_buf_puts(b, "\n");
}

/*
 * One item of tables[].changes: its summary, where it comes from, then its
 * facts, one line each (docs/plan-format.md, "Changes").  Only the facts
 * are read, never the change's name, so a change zdmc explain has never
 * heard of is shown as well as any other.
 */
static void
explain_change(zdmc_buf *b, const zdm_change *c)
{
	size_t i;

	zdmc_md_text(b, c->summary != NULL ? c->summary : c->change, false);
	if (c->at != NULL) {
		zdmc_buf_puts(b, " (");
		zdmc_md_text(b, c->at, false);
		zdmc_buf_puts(b, ")");
	}
	zdmc_buf_puts(b, "\n");
	explain_fact_names(b, "reads", c->reads, c->nreads);
	if (c->ncreates > 0) {
		zdmc_buf_puts(b, "  - creates ");
		for (i = 0; i < c->ncreates; i++) {
			const zdm_created_column *col = &c->creates[i];

			if (i > 0)
				zdmc_buf_puts(b, i + 1 == c->ncreates ? " and "
				                                      : ", ");
			zdmc_md_code(b, col->column, false);
			zdmc_buf_puts(b, " ");
			if (col->type != NULL)
				zdmc_md_text(b, col->type, false);
			else
				zdmc_buf_puts(b, "(its present type)");
			if (col->not_null)
				zdmc_buf_puts(b, " NOT NULL");
			if (col->using != NULL) {
				zdmc_buf_puts(b, " using ");
				zdmc_md_code(b, col->using, false);
			}
		}
		zdmc_buf_puts(b, "\n");
	}
	if (c->nreplaces > 0) {
		zdmc_buf_puts(b, "  - replaces ");
		explain_names(b, c->replaces, c->nreplaces);
		zdmc_buf_puts(b, c->nreplaces == 1
		                         ? ": the old column is dropped at "
		                           "contract\n"
		                         : ": the old columns are dropped at "
		                           "contract\n");
	}
	for (i = 0; i < c->nrenames; i++) {
		zdmc_buf_puts(b, "  - renames ");
		zdmc_md_code(b, c->renames[i].column, false);
		zdmc_buf_puts(b, " to ");
		zdmc_md_code(b, c->renames[i].to, false);
		zdmc_buf_puts(b, "\n");
	}
	for (i = 0; i < c->nreverse; i++) {
		zdmc_buf_puts(b, "  - reverse: ");
		zdmc_md_code(b, c->reverse[i].column, false);
		zdmc_buf_puts(b, " using ");
		zdmc_md_code(b, c->reverse[i].using, false);
		zdmc_buf_puts(b, "\n");
	}
	if (c->irreversible)
		zdmc_buf_puts(b, "  - **irreversible**: the old shape is not "
		                 "kept up to date once the new version writes, "
		                 "and switch is a point of no return\n");
	if (c->table_created)
		zdmc_buf_puts(b, "  - **creates the table**: it must not exist "
		                 "yet\n");
	if (c->table_dropped)
		zdmc_buf_puts(b,
		              "  - **drops the table** at contract, with its "
		              "rows: hidden from the new version from expand "
		              "on\n");
	explain_fact_names(b, "creates constraint", c->constraints_created,
	                   c->nconstraints_created);
	explain_fact_names(b, "drops constraint", c->constraints_dropped,
	                   c->nconstraints_dropped);
	for (i = 0; i < c->nconstraint_renames; i++) {
		zdmc_buf_puts(b, "  - renames constraint ");
		zdmc_md_code(b, c->constraint_renames[i].constraint, false);
		zdmc_buf_puts(b, " to ");
		zdmc_md_code(b, c->constraint_renames[i].to, false);
		zdmc_buf_puts(b, "\n");
	}
	explain_fact_names(b, "creates index", c->indexes_created,
	                   c->nindexes_created);
	for (i = 0; i < c->nreferences; i++) {
		zdmc_buf_puts(b, "  - references ");
		zdmc_md_code(b, c->references[i].table, false);
		if (c->references[i].ncolumns == 0) {
			zdmc_buf_puts(b, " by its primary key\n");
		} else {
			zdmc_buf_puts(b, " (");
			explain_names(b, c->references[i].columns,
			              c->references[i].ncolumns);
			zdmc_buf_puts(b, ")\n");
		}
	}
	if (c->table_renamed_to != NULL) {
		zdmc_buf_puts(b, "  - renames the table to ");
		zdmc_md_code(b, c->table_renamed_to, false);
		zdmc_buf_puts(b, "\n");
	}
	if (c->split_into != NULL) {
		zdmc_buf_puts(b, "  - creates the table ");
		zdmc_md_code(b, c->split_into, false);
		zdmc_buf_puts(b, " for the dropped columns, kept equal to them "
		                 "until contract\n");
	}
	if (c->ndrops > 0) {
		zdmc_buf_puts(b, "  - drops ");
		explain_names(b, c->drops, c->ndrops);
		zdmc_buf_puts(b, ": hidden from the new version at expand, "
		                 "dropped at contract with what depends on it "
		                 "alone\n");
	}
	for (i = 0; i < c->nnot_null_set; i++) {
		zdmc_buf_puts(b, "  - makes ");
		zdmc_md_code(b, c->not_null_set[i], false);
		zdmc_buf_puts(b, " NOT NULL at contract\n");
	}
	for (i = 0; i < c->nnot_null_dropped; i++) {
		zdmc_buf_puts(b, "  - lets ");
		zdmc_md_code(b, c->not_null_dropped[i], false);
		zdmc_buf_puts(b, " be NULL\n");
	}
	for (i = 0; i < c->ndefaults; i++) {
		zdmc_buf_puts(b, "  - default of ");
		zdmc_md_code(b, c->defaults[i].column, false);
		if (c->defaults[i].value != NULL) {
			zdmc_buf_puts(b, " becomes ");
			zdmc_md_code(b, c->defaults[i].value, false);
			zdmc_buf_puts(b, "\n");
		} else {
			zdmc_buf_puts(b, " is dropped\n");
		}
	}
}

static void
explain_changes(zdmc_buf *b, const zdm_plan *plan)
{
	size_t t, i;

	zdmc_buf_puts(b, "## Changes\n\n");
	if (plan->ntable_info == 0 && plan->nstatements == 0)
		zdmc_buf_puts(b, "The plan lists no tables.\n\n");
	for (t = 0; t < plan->ntable_info; t++) {
		const zdm_table_info *ti = &plan->table_info[t];

		zdmc_buf_puts(b, "### ");
		zdmc_md_code(b, ti->name, false);
		zdmc_buf_puts(b, "\n\n");
		if (ti->nchanges == 0)
			zdmc_buf_puts(b, "- no changes listed\n");
		for (i = 0; i < ti->nchanges; i++) {
			zdmc_buf_puts(b, "- ");
			explain_change(b, &ti->changes[i]);
		}
		zdmc_buf_puts(b, "\n");
	}
	/* statements on no table, in the order written */
	if (plan->nstatements > 0)
		zdmc_buf_puts(b, "### Statements on no table\n\n");
	for (i = 0; i < plan->nstatements; i++) {
		const zdm_statement *st = &plan->statements[i];

		zdmc_buf_puts(b, "- ");
		zdmc_md_text(b, st->summary, false);
		zdmc_buf_puts(b, " (");
		zdmc_md_text(b, st->at, false);
		zdmc_buf_puts(b, ")\n");
	}
	if (plan->nstatements > 0)
		zdmc_buf_puts(b, "\n");
}

/* ---- at a glance ------------------------------------------------------- */

/* Step ids, consecutive ones as ranges: "`a.1`-`a.4`, `b.2`". */
typedef struct explain_ids {
	zdmc_buf buf;
	const zdm_plan *plan;
	size_t run_first, run_last; /* the open range */
	bool open;
	size_t count;
} explain_ids;

static void
explain_ids_init(explain_ids *ids, zdmc_arena *arena, const zdm_plan *plan)
{
	memset(ids, 0, sizeof(*ids));
	zdmc_buf_init(&ids->buf, arena);
	ids->plan = plan;
}

static void
explain_ids_close(explain_ids *ids)
{
	if (!ids->open)
		return;
	if (ids->buf.len > 0)
		zdmc_buf_puts(&ids->buf, ", ");
	zdmc_buf_printf(&ids->buf, "`%s`", ids->plan->steps[ids->run_first].id);
	if (ids->run_last > ids->run_first)
		zdmc_buf_printf(&ids->buf, "%s`%s`",
		                ids->run_last == ids->run_first + 1 ? ", "
		                                                    : "-",
		                ids->plan->steps[ids->run_last].id);
	ids->open = false;
}

static void
explain_ids_add(explain_ids *ids, size_t i)
{
	ids->count++;
	if (ids->open && i == ids->run_last + 1 &&
	    strcmp(ids->plan->steps[i].phase,
	           ids->plan->steps[ids->run_last].phase) == 0) {
		ids->run_last = i;
		return;
	}
	explain_ids_close(ids);
	ids->open = true;
	ids->run_first = ids->run_last = i;
}

static const char *
explain_ids_done(explain_ids *ids)
{
	explain_ids_close(ids);
	return zdmc_buf_cstr(&ids->buf);
}

static void
explain_glance(zdmc_buf *b, const zdmc_plan_review *rv)
{
	const zdm_plan *plan = rv->plan;
	zdmc_arena *arena = b->arena;
	explain_ids brief_ael, scans_w, scans_r, rewrites, rows, drops, unknown,
		gates;
	size_t i, k, p, danger = 0, first_ponr = plan->nsteps;

	explain_ids_init(&brief_ael, arena, plan);
	explain_ids_init(&scans_w, arena, plan);
	explain_ids_init(&scans_r, arena, plan);
	explain_ids_init(&rewrites, arena, plan);
	explain_ids_init(&rows, arena, plan);
	explain_ids_init(&drops, arena, plan);
	explain_ids_init(&unknown, arena, plan);
	explain_ids_init(&gates, arena, plan);
	zdmc_buf_puts(b, "## At a glance\n\n");
	zdmc_buf_printf(b, "- %zu steps: ", plan->nsteps);
	for (p = 0; p < rv->nphases; p++) {
		size_t n = 0;

		for (i = 0; i < plan->nsteps; i++)
			n += strcmp(plan->steps[i].phase, rv->phases[p]) == 0;
		zdmc_buf_printf(b, "%s%s %zu", p > 0 ? ", " : "", rv->phases[p],
		                n);
	}
	zdmc_buf_puts(b, ".\n");
	for (i = 0; i < plan->nsteps; i++) {
		const zdmc_step_review *sr = &rv->steps[i];
		bool ael = false, scan_w = false, scan_r = false;

		if (zdmc_review_is_danger(sr))
			danger++;
		if (sr->step->point_of_no_return && first_ponr == plan->nsteps)
			first_ponr = i;
		if (sr->step->kind == ZDM_STEP_GATE && sr->step->approval) {
			zdmc_buf_puts(&gates.buf, gates.count > 0 ? ", " : "");
			zdmc_buf_puts(&gates.buf, "gate ");
			zdmc_md_code(&gates.buf, sr->step->gate, false);
			zdmc_buf_printf(&gates.buf, " (`%s`)", sr->step->id);
			gates.count++;
		}
		for (k = 0; k < sr->sql.nstmts; k++) {
			const zdmc_stmt_risk *s = &sr->sql.stmts[k];

			if (s->lock == ZDMC_LOCK_ACCESS_EXCLUSIVE &&
			    s->hold == ZDMC_HOLD_BRIEF &&
			    s->target_kind == ZDMC_TARGET_TABLE)
				ael = true;
			if (s->flags & ZDMC_RISK_SCAN) {
				if (zdmc_lock_blocks_writes(s->lock))
					scan_w = true;
				else
					scan_r = true;
			}
		}
		if (ael)
			explain_ids_add(&brief_ael, i);
		if (scan_w)
			explain_ids_add(&scans_w, i);
		if (scan_r && !scan_w)
			explain_ids_add(&scans_r, i);
		if (sr->flags & ZDMC_RISK_REWRITE)
			explain_ids_add(&rewrites, i);
		if ((sr->flags & ZDMC_RISK_WRITES_ROWS) &&
		    !(sr->flags & ZDMC_RISK_DATA_LOSS))
			explain_ids_add(&rows, i);
		if (sr->flags & ZDMC_RISK_DATA_LOSS)
			explain_ids_add(&drops, i);
		if (sr->flags & ZDMC_RISK_UNKNOWN)
			explain_ids_add(&unknown, i);
	}
	if (danger == 0) {
		zdmc_buf_puts(b,
		              "- Danger: none. No statement holds a lock that "
		              "blocks writes for longer than catalog work.\n");
	} else {
		zdmc_buf_printf(b, "- **DANGER** in %zu step%s:\n", danger,
		                danger == 1 ? "" : "s");
		for (i = 0; i < plan->nsteps; i++) {
			if (!zdmc_review_is_danger(&rv->steps[i]))
				continue;
			zdmc_buf_printf(b, "  - `%s`: ", plan->steps[i].id);
			zdmc_review_headline(b, &rv->steps[i]);
			zdmc_buf_puts(b, "\n");
		}
	}
	if (brief_ael.count > 0)
		zdmc_buf_printf(b,
		                "- ACCESS EXCLUSIVE (blocks reads and writes), "
		                "brief: %s.\n",
		                explain_ids_done(&brief_ael));
	if (scans_r.count > 0)
		zdmc_buf_printf(
			b,
			"- Full-table scans under a lock that lets reads "
			"and writes go on: %s.\n",
			explain_ids_done(&scans_r));
	if (scans_w.count > 0)
		zdmc_buf_printf(b,
		                "- **Full-table scans under a lock that blocks "
		                "writes**: %s.\n",
		                explain_ids_done(&scans_w));
	if (rewrites.count > 0)
		zdmc_buf_printf(b, "- **Table rewrites**: %s.\n",
		                explain_ids_done(&rewrites));
	if (rows.count > 0)
		zdmc_buf_printf(b, "- Rows written: %s.\n",
		                explain_ids_done(&rows));
	if (drops.count > 0)
		zdmc_buf_printf(b, "- Data dropped: %s.\n",
		                explain_ids_done(&drops));
	if (unknown.count > 0)
		zdmc_buf_printf(b, "- **Not classified** (read the SQL): %s.\n",
		                explain_ids_done(&unknown));
	if (gates.count > 0)
		zdmc_buf_printf(
			b,
			"- Approval: the run stops at %s until a person "
			"runs `zdm approve GATE`.\n",
			zdmc_buf_cstr(&gates.buf));
	else
		zdmc_buf_puts(b, "- Approval: no gate stops the run.\n");
	if (first_ponr < plan->nsteps)
		zdmc_buf_printf(b,
		                "- Point of no return: `%s`; once it has run, "
		                "`zdm rollback` is refused.\n\n",
		                plan->steps[first_ponr].id);
	else
		zdmc_buf_puts(b, "- Point of no return: none; `zdm rollback` "
		                 "works at every point.\n\n");
}

/* ---- phases ------------------------------------------------------------ */

static void
explain_what(zdmc_buf *b, const zdm_step *step)
{
	zdmc_md_text(b, step->description, true);
	if (step->kind == ZDM_STEP_GATE) {
		zdmc_buf_puts(b, "<br>");
		if (step->approval) {
			zdmc_buf_puts(b, "**Gate ");
			zdmc_md_code(b, step->gate, true);
			zdmc_buf_puts(
				b, ": the run stops here until `zdm approve ");
			zdmc_md_text(b, step->gate, true);
			zdmc_buf_puts(b, "`.**");
		} else {
			zdmc_buf_puts(b, "Gate ");
			zdmc_md_code(b, step->gate, true);
			zdmc_buf_puts(b,
			              ": marks the point, no approval needed.");
		}
	} else if (step->kind == ZDM_STEP_CHECK) {
		zdmc_buf_printf(b,
		                "<br>Check: the run stops unless it returns "
		                "%lld.",
		                step->expect);
		if (step->in_flight_offenders != NULL)
			zdmc_buf_puts(
				b, " Offending rows are rechecked after a "
				   "barrier: only those that still offend once "
				   "every earlier change is applied fail it.");
	} else if (step->kind == ZDM_STEP_CATCH_UP && step->barrier) {
		zdmc_buf_puts(b, "<br>Waits until `zdm sync` has applied "
		                 "every change committed before this step.");
	} else if (step->kind == ZDM_STEP_CATCH_UP) {
		zdmc_buf_printf(b,
		                "<br>Waits until `zdm sync` reports a lag of "
		                "at most %ldms for %ldms.",
		                step->max_lag_ms, step->stable_for_ms);
	} else if (step->kind == ZDM_STEP_STOP_SYNC) {
		zdmc_buf_puts(b, "<br>Waits for `zdm sync` to apply every "
		                 "change so far, then stops it.");
	} else if (step->kind == ZDM_STEP_AUTOCOMMIT) {
		zdmc_buf_puts(b, "<br>Runs outside a transaction block, as "
		                 "PostgreSQL requires of it.");
		if (step->index != NULL) {
			zdmc_buf_puts(b, " If it fails or is interrupted, "
			                 "the invalid index ");
			zdmc_md_code(b, step->index, true);
			zdmc_buf_puts(b, " it leaves is dropped first.");
		}
		if (step->diagnose != NULL) {
			zdmc_buf_puts(b, "<br>If it fails (not for a lock), "
			                 "a count follows: ");
			zdmc_md_text(b, step->diagnose->description, true);
			zdmc_buf_printf(
				b,
				". Unless it returns %lld, the run stops "
				"there as a failed check does, with the "
				"count and examples; otherwise with the "
				"statement's own error. Nothing is counted "
				"when the statement succeeds.",
				step->diagnose->expect);
		}
	}
}

/*
 * ", and ACCESS EXCLUSIVE on `t` (from `x.2`) is held until the commit":
 * for each table, the strongest lock of the group that blocks writes and
 * the first step that takes it.
 */
static void
explain_group_locks(zdmc_buf *b, const zdmc_plan_review *rv, size_t first,
                    size_t last)
{
	const char *tables[16];
	zdmc_lock locks[16];
	size_t from[16] = {0}, n = 0, i, k, t;

	for (i = first; i <= last; i++) {
		const zdmc_step_review *sr = &rv->steps[i];

		for (k = 0; k < sr->sql.nstmts; k++) {
			const zdmc_stmt_risk *s = &sr->sql.stmts[k];

			if (s->target == NULL ||
			    s->target_kind != ZDMC_TARGET_TABLE ||
			    !zdmc_lock_blocks_writes(s->lock))
				continue;
			for (t = 0; t < n; t++)
				if (strcmp(tables[t], s->target) == 0)
					break;
			if (t == n) {
				if (n == sizeof(tables) / sizeof(*tables))
					continue;
				tables[n] = s->target;
				locks[n] = ZDMC_LOCK_NONE;
				n++;
			}
			if (s->lock > locks[t]) {
				locks[t] = s->lock;
				from[t] = i;
			}
		}
	}
	for (t = 0; t < n; t++) {
		zdmc_buf_puts(b, t == 0       ? ", and "
		                 : t + 1 == n ? " and "
		                              : ", ");
		zdmc_buf_printf(b, "%s on ", zdmc_lock_name(locks[t]));
		zdmc_md_code(b, tables[t], false);
		zdmc_buf_printf(b, " (from `%s`)", rv->plan->steps[from[t]].id);
	}
	if (n > 0)
		zdmc_buf_puts(b, n == 1 ? " is held until the commit"
		                        : " are held until the commit");
}

static void
explain_phase(zdmc_buf *b, const zdmc_plan_review *rv, size_t p)
{
	const zdm_plan *plan = rv->plan;
	const char *phase = rv->phases[p];
	size_t i, n = 0;

	for (i = 0; i < plan->nsteps; i++)
		n += strcmp(plan->steps[i].phase, phase) == 0;
	zdmc_buf_printf(b, "## Phase %zu: ", p + 1);
	zdmc_md_text(b, phase, false);
	zdmc_buf_puts(b, "\n\n");
	if (n == 0) {
		zdmc_buf_puts(b, "No steps.\n\n");
		return;
	}
	zdmc_buf_puts(b, "| step | what it does | lock, and for how long | "
	                 "transaction | undo |\n"
	                 "| --- | --- | --- | --- | --- |\n");
	for (i = 0; i < plan->nsteps; i++) {
		const zdmc_step_review *sr = &rv->steps[i];

		if (strcmp(sr->step->phase, phase) != 0)
			continue;
		zdmc_buf_puts(b, "| ");
		zdmc_md_code(b, sr->step->id, true);
		zdmc_buf_puts(b, " | ");
		explain_what(b, sr->step);
		zdmc_buf_puts(b, " | ");
		zdmc_review_step_locks(b, sr, "<br>", true);
		zdmc_buf_puts(b, " | ");
		zdmc_review_txn(b, rv, i);
		zdmc_buf_puts(b, " | ");
		zdmc_review_undo(b, sr->step, true);
		zdmc_buf_puts(b, " |\n");
	}
	zdmc_buf_puts(b, "\n");
	/* what a multi-step transaction holds, and until when */
	for (i = 0; i < plan->nsteps; i++) {
		const zdmc_step_review *sr = &rv->steps[i];

		if (strcmp(sr->step->phase, phase) != 0 ||
		    sr->group_first != i || sr->group_last == i)
			continue;
		zdmc_buf_printf(
			b,
			"`%s`-`%s` run in one transaction: all commit or "
			"none do",
			plan->steps[i].id, plan->steps[sr->group_last].id);
		explain_group_locks(b, rv, i, sr->group_last);
		zdmc_buf_puts(b, ".\n\n");
	}
}

/* ---- rollback ----------------------------------------------------------- */

static void
explain_rollback(zdmc_buf *b, const zdmc_plan_review *rv)
{
	const zdm_plan *plan = rv->plan;
	const char *prev = NULL, *refused_by = NULL;
	size_t p, i;

	zdmc_buf_puts(
		b,
		"## What rollback does at each point\n\n"
		"`zdm rollback` runs the undo of every step that has run, newest "
		"first, a transaction at a time. It is refused once a step "
		"marked point of no return has run: from there the only way is "
		"forward, with `zdm apply`, and going back takes a new "
		"migration. A phase stopped part-way is undone as far as it "
		"ran.\n\n");
	for (p = 0; p < rv->nphases; p++) {
		const char *phase = rv->phases[p];
		size_t ponr = plan->nsteps, nsteps = 0, nundo = 0;
		bool has_switch = false;

		for (i = 0; i < plan->nsteps; i++) {
			const zdm_step *s = &plan->steps[i];

			if (strcmp(s->phase, phase) != 0)
				continue;
			nsteps++;
			if (s->point_of_no_return && ponr == plan->nsteps)
				ponr = i;
			if (ponr == plan->nsteps && s->compensation != NULL &&
			    s->kind != ZDM_STEP_GATE)
				nundo++;
			if (s->kind == ZDM_STEP_GATE && s->gate != NULL &&
			    strcmp(s->gate, "switch") == 0)
				has_switch = true;
		}
		zdmc_buf_puts(b, "- **");
		if (ponr < plan->nsteps && refused_by == NULL)
			zdmc_buf_puts(b, "During or after ");
		else
			zdmc_buf_puts(b, "After ");
		zdmc_md_text(b, phase, false);
		zdmc_buf_puts(b, "**: ");
		if (refused_by != NULL) {
			zdmc_buf_printf(b, "refused (`%s` has run).\n",
			                refused_by);
			prev = phase;
			continue;
		}
		if (nsteps == 0) {
			zdmc_buf_puts(b, "no steps; ");
		} else if (nundo == 0 && ponr == plan->nsteps) {
			zdmc_buf_puts(b, "nothing of its own to undo; ");
		} else if (ponr < plan->nsteps) {
			zdmc_buf_printf(
				b, "refused once `%s` has run. Before that, ",
				plan->steps[ponr].id);
			refused_by = plan->steps[ponr].id;
		}
		if (nundo > 0) {
			zdmc_buf_puts(b, "undoes, newest first:\n");
			for (i = plan->nsteps; i-- > 0;) {
				const zdm_step *s = &plan->steps[i];

				if (strcmp(s->phase, phase) != 0 ||
				    s->compensation == NULL ||
				    s->kind == ZDM_STEP_GATE ||
				    (refused_by != NULL && i >= ponr))
					continue;
				zdmc_buf_printf(b, "  - `%s`: ", s->id);
				zdmc_md_code(b, s->compensation, false);
				zdmc_buf_puts(b, "\n");
			}
			zdmc_buf_puts(b, "  ");
		}
		if (prev != NULL) {
			zdmc_buf_puts(b, nundo > 0 ? "Then as after "
			                           : "as after ");
			zdmc_md_text(b, prev, false);
			zdmc_buf_puts(b, ".");
		} else {
			zdmc_buf_puts(b,
			              nundo > 0 ? "Nothing of the migration is "
			                          "left."
			                        : "nothing to do.");
		}
		if (has_switch && ponr == plan->nsteps)
			zdmc_buf_printf(
				b,
				" Move applications back to the old version "
				"first: the undo drops %s `%s`%s, which "
				"new-version clients read through.",
				plan->nversion_schemas > 1 ? "schemas"
							   : "schema",
				plan->version_schema,
				plan->nversion_schemas > 1 ? " and the others"
							   : "");
		zdmc_buf_puts(b, "\n");
		prev = phase;
	}
}

void
zdmc_plan_explain(zdmc_buf *out, const zdm_plan *plan, const char *source)
{
	zdmc_plan_review *rv = zdmc_plan_review_new(out->arena, plan);
	size_t p;

	explain_header(out, plan, source);
	explain_options(out, plan);
	explain_changes(out, plan);
	explain_glance(out, rv);
	for (p = 0; p < rv->nphases; p++)
		explain_phase(out, rv, p);
	explain_rollback(out, rv);
}
