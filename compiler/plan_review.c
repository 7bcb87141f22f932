/*
 * plan_review.c -- a plan's steps classified once, and the words zdmc
 * explain and zdmc diff both use for them.
 *
 * Every step's SQL goes through sqlrisk.c in plan order, through one
 * context, so what an earlier step established (a validated NOT NULL
 * check) informs a later one.  Then the transaction groups are walked: a
 * lock is held until its transaction commits, so a scan that is harmless on
 * its own blocks the application when an earlier statement of the same
 * transaction took a lock that blocks writes on that table.
 *
 * The Markdown written here is meant to be read raw in a terminal as much
 * as rendered in a pull request: text is escaped only where Markdown would
 * misread it, and SQL goes in code spans and fenced blocks.
 */
#include "plan_review.h"

#include <string.h>

static const char *const review_std_phases[] = {
	"expand", "backfill", "verify", "switch", "contract",
};
#define REVIEW_NSTD (sizeof(review_std_phases) / sizeof(*review_std_phases))

/* ---- Markdown ----------------------------------------------------------- */

static bool
review_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (unsigned char)c >= 0x80;
}

void
zdmc_md_text(zdmc_buf *b, const char *s, bool in_table)
{
	const char *p;

	for (p = s; *p; p++) {
		bool esc = false;

		switch (*p) {
		case '\\':
		case '`':
		case '*':
		case '[':
		case ']':
		case '<':
		case '>':
			esc = true;
			break;
		case '_': /* GitHub leaves intraword underscores alone */
			esc = !(p > s && review_is_alnum(p[-1]) &&
			        review_is_alnum(p[1]));
			break;
		case '|':
			esc = in_table;
			break;
		case '\n':
			zdmc_buf_puts(b, " ");
			continue;
		default:
			break;
		}
		if (esc)
			zdmc_buf_puts(b, "\\");
		zdmc_buf_append(b, p, 1);
	}
}

static bool
review_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

void
zdmc_md_code(zdmc_buf *b, const char *s, bool in_table)
{
	size_t run = 0, longest = 0, i, n;
	const char *p;
	bool space = false, pad;

	for (p = s; *p; p++) {
		run = *p == '`' ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	while (review_is_space(*s))
		s++;
	/* a span that starts or ends with a backtick needs a space inside */
	n = strlen(s);
	while (n > 0 && review_is_space(s[n - 1]))
		n--;
	pad = n > 0 && (s[0] == '`' || s[n - 1] == '`');
	for (i = 0; i <= longest; i++)
		zdmc_buf_puts(b, "`");
	if (pad)
		zdmc_buf_puts(b, " ");
	for (i = 0; i < n; i++) {
		if (review_is_space(s[i])) {
			space = true;
			continue;
		}
		if (space)
			zdmc_buf_puts(b, " ");
		space = false;
		if (s[i] == '|' && in_table)
			zdmc_buf_puts(b, "\\");
		zdmc_buf_append(b, &s[i], 1);
	}
	if (pad)
		zdmc_buf_puts(b, " ");
	for (i = 0; i <= longest; i++)
		zdmc_buf_puts(b, "`");
}

void
zdmc_md_fence(zdmc_buf *b, const char *info, const char *body)
{
	size_t run = 0, longest = 2, i, n = strlen(body);
	const char *p;

	for (p = body; *p; p++) {
		run = *p == '`' ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	for (i = 0; i <= longest; i++)
		zdmc_buf_puts(b, "`");
	zdmc_buf_puts(b, info);
	zdmc_buf_puts(b, "\n");
	zdmc_buf_puts(b, body);
	if (n > 0 && body[n - 1] != '\n')
		zdmc_buf_puts(b, "\n");
	for (i = 0; i <= longest; i++)
		zdmc_buf_puts(b, "`");
	zdmc_buf_puts(b, "\n");
}

/* ---- classification -------------------------------------------------- */

/* Does the ", "-separated list contain name as a whole item? */
static bool
review_list_has(const char *list, const char *name)
{
	size_t len = strlen(name);
	const char *hit;

	for (hit = strstr(list, name); hit != NULL; hit = strstr(hit + 1, name))
		if ((hit == list || hit[-1] == ' ') &&
		    (hit[len] == '\0' || hit[len] == ','))
			return true;
	return false;
}

/* A lock that blocks writes, taken earlier in a transaction. */
typedef struct review_held {
	const char *table;
	zdmc_lock lock;
	size_t step;
} review_held;

/* Why a statement blocks the application through its transaction, in
 * Markdown. */
static const char *
review_group_note(zdmc_arena *arena, const zdmc_plan_review *rv,
                  const review_held *h, size_t i, const zdmc_stmt_risk *s)
{
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	if (h->step == i)
		zdmc_buf_puts(&b, "an earlier statement of this step holds ");
	else
		zdmc_buf_printf(&b, "`%s` holds ", rv->plan->steps[h->step].id);
	zdmc_buf_printf(&b, "%s on ", zdmc_lock_name(h->lock));
	zdmc_md_code(&b, h->table, false);
	zdmc_buf_printf(&b,
	                " until the transaction commits, so %s wait while "
	                "this step %s the table",
	                h->lock == ZDMC_LOCK_ACCESS_EXCLUSIVE
	                        ? "reads and writes"
	                        : "writes",
	                s->hold == ZDMC_HOLD_REWRITE ? "rewrites"
	                : s->hold == ZDMC_HOLD_SCAN  ? "scans"
	                                             : "updates every row of");
	return zdmc_buf_cstr(&b);
}

/*
 * The statements of an autocommit step: one that cannot run in a
 * transaction block is what the kind is for.  Its danger stays only when
 * something else makes it one (a lock that blocks writes held through a
 * scan, every row written).
 */
static void
review_outside_transaction(zdmc_sqlrisk *sql)
{
	for (size_t k = 0; k < sql->nstmts; k++) {
		zdmc_stmt_risk *s = &sql->stmts[k];

		if (!(s->flags & ZDMC_RISK_NO_TXN))
			continue;
		s->flags &= ~(unsigned)(ZDMC_RISK_NO_TXN | ZDMC_RISK_DANGER);
		if ((zdmc_lock_blocks_writes(s->lock) &&
		     (s->hold == ZDMC_HOLD_SCAN ||
		      s->hold == ZDMC_HOLD_REWRITE)) ||
		    (s->flags & ZDMC_RISK_ALL_ROWS))
			s->flags |= ZDMC_RISK_DANGER;
		s->note = "outside a transaction block, as an autocommit step";
	}
}

/*
 * Within each transaction group, a statement that scans or rewrites a table
 * (or writes all its rows) after an earlier statement of the group took a
 * lock on that table that blocks writes: the lock is held all that time.
 */
static void
review_group_locks(zdmc_arena *arena, zdmc_plan_review *rv, size_t first,
                   size_t last)
{
	review_held *held = NULL;
	size_t nheld = 0, cap = 0, i, k, h;

	for (i = first; i <= last; i++) {
		zdmc_step_review *sr = &rv->steps[i];

		for (k = 0; k < sr->sql.nstmts; k++) {
			const zdmc_stmt_risk *s = &sr->sql.stmts[k];
			bool long_hold = s->hold == ZDMC_HOLD_SCAN ||
			                 s->hold == ZDMC_HOLD_REWRITE ||
			                 (s->flags & ZDMC_RISK_ALL_ROWS);

			for (h = 0; long_hold && s->target != NULL && h < nheld;
			     h++) {
				if (held[h].lock <= s->lock ||
				    !review_list_has(s->target, held[h].table))
					continue;
				sr->flags |= ZDMC_RISK_DANGER;
				sr->group_note = review_group_note(
					arena, rv, &held[h], i, s);
				break;
			}
			if (s->target == NULL ||
			    s->target_kind != ZDMC_TARGET_TABLE ||
			    !zdmc_lock_blocks_writes(s->lock))
				continue;
			if (nheld == cap) {
				review_held *grown;

				cap = cap ? cap * 2 : 8;
				grown = zdmc_arena_alloc(arena,
				                         cap * sizeof(*grown));
				if (nheld > 0)
					memcpy(grown, held,
					       nheld * sizeof(*grown));
				held = grown;
			}
			held[nheld].table = s->target;
			held[nheld].lock = s->lock;
			held[nheld].step = i;
			nheld++;
		}
	}
}

static bool
review_is_std_phase(const char *name, size_t *pos)
{
	size_t i;

	for (i = 0; i < REVIEW_NSTD; i++)
		if (strcmp(name, review_std_phases[i]) == 0) {
			*pos = i;
			return true;
		}
	return false;
}

/* The standard five when the plan's phases are among them, in order (a
 * phase with no steps leaves no trace in the steps); otherwise the phases
 * as the steps name them. */
static void
review_phases(zdmc_arena *arena, zdmc_plan_review *rv)
{
	const zdm_plan *plan = rv->plan;
	size_t i, pos, last = 0, n = 0;
	bool standard = true;

	for (i = 0; i < plan->nsteps; i++) {
		if (i > 0 &&
		    strcmp(plan->steps[i].phase, plan->steps[i - 1].phase) == 0)
			continue;
		n++;
		if (!review_is_std_phase(plan->steps[i].phase, &pos) ||
		    (i > 0 && pos <= last))
			standard = false;
		else
			last = pos;
	}
	if (standard) {
		rv->phases = (const char **)review_std_phases;
		rv->nphases = REVIEW_NSTD;
		return;
	}
	rv->phases = zdmc_arena_alloc(arena, (n ? n : 1) * sizeof(char *));
	for (i = 0; i < plan->nsteps; i++)
		if (i == 0 ||
		    strcmp(plan->steps[i].phase, plan->steps[i - 1].phase) != 0)
			rv->phases[rv->nphases++] = plan->steps[i].phase;
}

zdmc_plan_review *
zdmc_plan_review_new(zdmc_arena *arena, const zdm_plan *plan)
{
	zdmc_plan_review *rv = ZDMC_NEW(arena, zdmc_plan_review);
	zdmc_sqlrisk_ctx *ctx = zdmc_sqlrisk_ctx_new(arena);
	size_t i, k, first;

	rv->plan = plan;
	rv->nsteps = plan->nsteps;
	rv->steps = zdmc_arena_alloc(arena, (plan->nsteps ? plan->nsteps : 1) *
	                                            sizeof(*rv->steps));
	for (i = 0; i < plan->nsteps; i++) {
		zdmc_step_review *sr = &rv->steps[i];

		sr->step = &plan->steps[i];
		sr->group_first = sr->group_last = i;
		if (sr->step->kind == ZDM_STEP_GATE || sr->step->sql == NULL)
			continue;
		(void)zdmc_sqlrisk_classify(ctx, sr->step->sql, &sr->sql);
		/* an autocommit step runs outside a transaction block, as
		 * CONCURRENTLY needs: not a danger there */
		if (sr->step->kind == ZDM_STEP_AUTOCOMMIT)
			review_outside_transaction(&sr->sql);
		for (k = 0; k < sr->sql.nstmts; k++) {
			if (sr->sql.stmts[k].lock > sr->lock)
				sr->lock = sr->sql.stmts[k].lock;
			sr->flags |= sr->sql.stmts[k].flags;
		}
		/* a backfill's UPDATE covers every row, but batch by batch */
		if (sr->step->kind == ZDM_STEP_BACKFILL)
			sr->flags &= ~(unsigned)ZDMC_RISK_ALL_ROWS;
	}
	/* transaction groups: consecutive steps with one label; a backfill
	 * (a transaction per batch) and a gate are always alone */
	for (first = 0; first < plan->nsteps; first = i) {
		const zdm_step *a = &plan->steps[first];

		for (i = first + 1; i < plan->nsteps; i++) {
			const zdm_step *s = &plan->steps[i];

			if (a->kind == ZDM_STEP_GATE ||
			    a->kind == ZDM_STEP_BACKFILL ||
			    s->kind == ZDM_STEP_GATE ||
			    s->kind == ZDM_STEP_BACKFILL ||
			    a->transaction == NULL || s->transaction == NULL ||
			    strcmp(a->transaction, s->transaction) != 0)
				break;
		}
		for (k = first; k < i; k++) {
			rv->steps[k].group_first = first;
			rv->steps[k].group_last = i - 1;
		}
		review_group_locks(arena, rv, first, i - 1);
	}
	review_phases(arena, rv);
	return rv;
}

/* ---- wording --------------------------------------------------------- */

static void
review_target(zdmc_buf *b, const zdmc_stmt_risk *s, bool in_table)
{
	switch (s->target_kind) {
	case ZDMC_TARGET_VIEW:
		zdmc_buf_puts(b, "the view ");
		break;
	case ZDMC_TARGET_INDEX:
		zdmc_buf_puts(b, "the table of index ");
		break;
	case ZDMC_TARGET_TABLE:
	case ZDMC_TARGET_NONE:
		break;
	}
	zdmc_md_code(b, s->target != NULL ? s->target : "?", in_table);
}

void
zdmc_review_stmt(zdmc_buf *b, const zdmc_step_review *sr,
                 const zdmc_stmt_risk *s, bool in_table)
{
	const zdm_step *step = sr->step;
	const char *note = s->note;

	if (s->flags & ZDMC_RISK_IN_DO) {
		zdmc_buf_puts(b, "in the DO block");
		if (s->flags & ZDMC_RISK_CONDITIONAL)
			zdmc_buf_puts(b, ", if a condition holds");
		if (s->flags & ZDMC_RISK_LOOP)
			zdmc_buf_puts(b, ", in a loop");
		if (s->flags & ZDMC_RISK_DYNAMIC)
			zdmc_buf_puts(b, ", built at run time");
		zdmc_buf_puts(b, ": ");
	}
	if (s->flags & ZDMC_RISK_DANGER)
		zdmc_buf_puts(b, "**DANGER** ");
	zdmc_md_code(b, s->what, in_table);
	zdmc_buf_puts(b, ": ");
	if (s->hold == ZDMC_HOLD_UNKNOWN) {
		zdmc_buf_puts(b, "lock not known, read the SQL");
	} else if (s->lock == ZDMC_LOCK_NONE ||
	           (s->flags & ZDMC_RISK_CATALOG)) {
		zdmc_buf_puts(b, "no table lock");
	} else {
		zdmc_buf_puts(b, zdmc_lock_name(s->lock));
		zdmc_buf_puts(b, " on ");
		review_target(b, s, in_table);
		zdmc_buf_printf(b, " (%s), ", zdmc_lock_blocks(s->lock));
		switch (s->hold) {
		case ZDMC_HOLD_BRIEF:
			zdmc_buf_puts(b, "brief");
			break;
		case ZDMC_HOLD_ROWS:
			zdmc_buf_puts(b, "and row locks on the rows it writes");
			break;
		case ZDMC_HOLD_TXN:
			zdmc_buf_puts(b, "held until the transaction ends");
			break;
		case ZDMC_HOLD_SCAN:
			zdmc_buf_puts(b,
			              "held during a full scan of the table");
			break;
		case ZDMC_HOLD_REWRITE:
			zdmc_buf_puts(
				b, "held while the whole table is rewritten");
			break;
		case ZDMC_HOLD_NONE:
		case ZDMC_HOLD_UNKNOWN:
			break;
		}
	}
	if (step->kind == ZDM_STEP_BACKFILL &&
	    (s->flags & ZDMC_RISK_WRITES_ROWS) && !(s->flags & ZDMC_RISK_IN_DO))
		note = zdmc_arena_printf(
			b->arena,
			"a transaction per batch of about %ld rows (key %s)%s, so "
			"a row stays locked only until its batch commits; every "
			"row gets a new version",
			step->batch_size, step->key ? step->key : "?",
			step->batch_pause_ms > 0
				? zdmc_arena_printf(b->arena, ", %ldms apart",
		                                    step->batch_pause_ms)
				: "");
	if (note != NULL) {
		zdmc_buf_puts(b, " -- ");
		zdmc_md_text(b, note, in_table);
	}
}

void
zdmc_review_step_locks(zdmc_buf *b, const zdmc_step_review *sr, const char *sep,
                       bool in_table)
{
	size_t k;

	if (sr->step->kind == ZDM_STEP_GATE ||
	    sr->step->kind == ZDM_STEP_CATCH_UP ||
	    sr->step->kind == ZDM_STEP_STOP_SYNC) {
		zdmc_buf_puts(b, "--"); /* runs no SQL */
		return;
	}
	for (k = 0; k < sr->sql.nstmts; k++) {
		if (k > 0)
			zdmc_buf_puts(b, sep);
		zdmc_review_stmt(b, sr, &sr->sql.stmts[k], in_table);
	}
	if (sr->group_note != NULL) {
		zdmc_buf_puts(b, sep);
		zdmc_buf_puts(b, "**DANGER** ");
		zdmc_buf_puts(b, sr->group_note);
	}
}

void
zdmc_review_undo(zdmc_buf *b, const zdm_step *step, bool in_table)
{
	if (step->point_of_no_return)
		zdmc_buf_puts(b, "**point of no return**");
	else if (step->kind == ZDM_STEP_GATE || step->compensation == NULL)
		zdmc_buf_puts(b, "nothing to undo");
	else
		zdmc_md_code(b, step->compensation, in_table);
}

void
zdmc_review_txn(zdmc_buf *b, const zdmc_plan_review *rv, size_t i)
{
	const zdmc_step_review *sr = &rv->steps[i];
	const zdm_step *step = sr->step;

	if (step->kind == ZDM_STEP_GATE || step->kind == ZDM_STEP_CATCH_UP ||
	    step->kind == ZDM_STEP_STOP_SYNC)
		zdmc_buf_puts(b, "--");
	else if (step->kind == ZDM_STEP_BACKFILL)
		zdmc_buf_puts(b, "one per batch");
	else if (step->kind == ZDM_STEP_AUTOCOMMIT)
		zdmc_buf_puts(b, "none (autocommit)");
	else if (sr->group_first == sr->group_last)
		zdmc_buf_puts(b, "its own");
	else
		zdmc_buf_printf(b, "with `%s`-`%s`",
		                rv->plan->steps[sr->group_first].id,
		                rv->plan->steps[sr->group_last].id);
}

bool
zdmc_review_is_danger(const zdmc_step_review *sr)
{
	return (sr->flags & ZDMC_RISK_DANGER) != 0;
}

void
zdmc_review_headline(zdmc_buf *b, const zdmc_step_review *sr)
{
	size_t k, start = b->len;

	for (k = 0; k < sr->sql.nstmts; k++) {
		const zdmc_stmt_risk *s = &sr->sql.stmts[k];
		zdmc_stmt_risk plain;

		if (!(s->flags & (ZDMC_RISK_DANGER | ZDMC_RISK_UNKNOWN)))
			continue;
		if (b->len > start)
			zdmc_buf_puts(b, "; ");
		plain = *s;
		plain.flags &= ~(unsigned)ZDMC_RISK_DANGER;
		zdmc_review_stmt(b, sr, &plain, false);
	}
	if (sr->group_note != NULL) {
		if (b->len > start)
			zdmc_buf_puts(b, "; ");
		zdmc_buf_puts(b, sr->group_note);
	}
}
