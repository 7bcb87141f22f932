/*
 * plan_diff.c -- zdmc diff: what changed between two plans, and what the
 * change risks, as Markdown for a pull-request comment.
 *
 * Steps are aligned by a signature that survives renumbering -- phase, kind,
 * table, description (and gate) -- with a longest common subsequence, so
 * inserting one step shows one step added, not every later step changed.
 * Steps left over between two aligned ones are paired by phase, kind and
 * table (a description that changed with the expression in it), and only
 * what is still unpaired is added or removed.  Every added or changed step
 * gets its risk (sqlrisk.c: lock, scan, rewrite, point of no return,
 * approval), and changes in risk are said in words; SQL is shown as a
 * unified line diff, made here by the same LCS over lines.
 *
 * The report is a pure function of the two plans: same plans, same bytes
 * (tests/golden/diff pins it).  It exits 0 whether or not the plans differ;
 * judging is the reviewer's job.
 */
#include "plan.h"
#include "plan_review.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LCS tables larger than this are not built: the middle of the two
 * sequences is then shown as all removed and all added. */
#define DIFF_MAX_CELLS ((size_t)4 * 1024 * 1024)
/* Lines of context around a change in a SQL diff. */
#define DIFF_CONTEXT 3
#define DIFF_NONE SIZE_MAX

typedef bool (*diff_eq_fn)(const void *ctx, size_t i, size_t j);

/*
 * A longest common subsequence of a[0..n) and b[0..m): match_a[i] is the
 * index in b matched with a[i] (DIFF_NONE if none), match_b likewise.
 */
static void
diff_lcs(size_t n, size_t m, diff_eq_fn eq, const void *ctx, size_t *match_a,
         size_t *match_b)
{
	size_t lo = 0, hi_a = n, hi_b = m, rows, cols, i, j;
	unsigned *t;

	for (i = 0; i < n; i++)
		match_a[i] = DIFF_NONE;
	for (j = 0; j < m; j++)
		match_b[j] = DIFF_NONE;
	while (lo < n && lo < m && eq(ctx, lo, lo)) {
		match_a[lo] = match_b[lo] = lo;
		lo++;
	}
	while (hi_a > lo && hi_b > lo && eq(ctx, hi_a - 1, hi_b - 1)) {
		hi_a--;
		hi_b--;
		match_a[hi_a] = hi_b;
		match_b[hi_b] = hi_a;
	}
	rows = hi_a - lo;
	cols = hi_b - lo;
	if (rows == 0 || cols == 0 || (rows + 1) > DIFF_MAX_CELLS / (cols + 1))
		return;
	/* t[i][j]: LCS length of a[lo+i..hi_a) and b[lo+j..hi_b) */
	t = calloc((rows + 1) * (cols + 1), sizeof(*t));
	if (t == NULL)
		return;
#define T(i, j) t[(i) * (cols + 1) + (j)]
	for (i = rows; i-- > 0;)
		for (j = cols; j-- > 0;)
			T(i, j) = eq(ctx, lo + i, lo + j) ? T(i + 1, j + 1) + 1
			          : T(i + 1, j) >= T(i, j + 1) ? T(i + 1, j)
			                                       : T(i, j + 1);
	for (i = 0, j = 0; i < rows && j < cols;) {
		if (eq(ctx, lo + i, lo + j)) {
			match_a[lo + i] = lo + j;
			match_b[lo + j] = lo + i;
			i++;
			j++;
		} else if (T(i + 1, j) >= T(i, j + 1)) {
			i++;
		} else {
			j++;
		}
	}
#undef T
	free(t);
}

/* ---- line diff ---------------------------------------------------------- */

typedef struct diff_lines {
	const char **a, **b;
	size_t na, nb;
} diff_lines;

static bool
diff_line_eq(const void *ctx, size_t i, size_t j)
{
	const diff_lines *d = ctx;

	return strcmp(d->a[i], d->b[j]) == 0;
}

static const char **
diff_split(zdmc_arena *arena, const char *s, size_t *n)
{
	const char **lines;
	const char *p, *nl;
	size_t count = 1, k = 0;

	for (p = s; *p; p++)
		count += *p == '\n';
	lines = zdmc_arena_alloc(arena, count * sizeof(*lines));
	for (p = s;; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL) {
			if (*p != '\0' || k == 0)
				lines[k++] = zdmc_arena_strdup(arena, p);
			break;
		}
		lines[k++] = zdmc_arena_strndup(arena, p, (size_t)(nl - p));
	}
	*n = k;
	return lines;
}

typedef struct diff_op {
	char tag; /* ' ', '-', '+' */
	const char *line;
	size_t a, b; /* line numbers (0-based) on each side, before the op */
} diff_op;

/* "start,count" of a hunk side, as diff -u writes it. */
static void
diff_range(zdmc_buf *out, size_t start, size_t count)
{
	if (count == 1)
		zdmc_buf_printf(out, "%zu", start + 1);
	else
		zdmc_buf_printf(out, "%zu,%zu", count == 0 ? start : start + 1,
		                count);
}

/* A unified diff of two texts, into out (no file headers). */
static void
diff_text(zdmc_buf *out, zdmc_arena *arena, const char *a, const char *b)
{
	diff_lines d;
	size_t *ma, *mb, i = 0, j = 0, nops = 0, k, start, end, next;
	diff_op *ops;

	d.a = diff_split(arena, a, &d.na);
	d.b = diff_split(arena, b, &d.nb);
	ma = zdmc_arena_alloc(arena, (d.na + 1) * sizeof(*ma));
	mb = zdmc_arena_alloc(arena, (d.nb + 1) * sizeof(*mb));
	diff_lcs(d.na, d.nb, diff_line_eq, &d, ma, mb);
	ops = zdmc_arena_alloc(arena, (d.na + d.nb + 1) * sizeof(*ops));
	while (i < d.na || j < d.nb) {
		diff_op *op = &ops[nops++];

		op->a = i;
		op->b = j;
		if (i < d.na && ma[i] == DIFF_NONE) {
			op->tag = '-';
			op->line = d.a[i++];
		} else if (j < d.nb && mb[j] == DIFF_NONE) {
			op->tag = '+';
			op->line = d.b[j++];
		} else {
			op->tag = ' ';
			op->line = d.a[i];
			i++;
			j++;
		}
	}
	for (k = 0; k < nops;) {
		size_t ca = 0, cb = 0, h;

		while (k < nops && ops[k].tag == ' ')
			k++;
		if (k == nops)
			break;
		start = k > DIFF_CONTEXT ? k - DIFF_CONTEXT : 0;
		/* extend over changes closer than two contexts apart */
		end = k;
		for (next = k; next < nops; next++) {
			if (ops[next].tag != ' ') {
				end = next;
				continue;
			}
			if (next - end > 2 * DIFF_CONTEXT)
				break;
		}
		end = end + DIFF_CONTEXT + 1 < nops ? end + DIFF_CONTEXT + 1
		                                    : nops;
		for (h = start; h < end; h++) {
			ca += ops[h].tag != '+';
			cb += ops[h].tag != '-';
		}
		zdmc_buf_puts(out, "@@ -");
		diff_range(out, ops[start].a, ca);
		zdmc_buf_puts(out, " +");
		diff_range(out, ops[start].b, cb);
		zdmc_buf_puts(out, " @@\n");
		for (h = start; h < end; h++) {
			zdmc_buf_append(out, &ops[h].tag, 1);
			zdmc_buf_puts(out, ops[h].line);
			zdmc_buf_puts(out, "\n");
		}
		k = end;
	}
}

/* Every line of s, each prefixed with tag. */
static void
diff_all_lines(zdmc_buf *out, char tag, const char *s)
{
	const char *p = s, *nl;

	for (;;) {
		nl = strchr(p, '\n');
		zdmc_buf_append(out, &tag, 1);
		if (nl == NULL) {
			zdmc_buf_puts(out, p);
			zdmc_buf_puts(out, "\n");
			return;
		}
		zdmc_buf_append(out, p, (size_t)(nl - p + 1));
		p = nl + 1;
		if (*p == '\0')
			return;
	}
}

/* ---- step alignment ------------------------------------------------------ */

static bool
diff_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static const char *
diff_kind_name(zdm_step_kind kind)
{
	switch (kind) {
	case ZDM_STEP_SQL:
		return "sql";
	case ZDM_STEP_BACKFILL:
		return "backfill";
	case ZDM_STEP_CHECK:
		return "check";
	case ZDM_STEP_GATE:
		return "gate";
	case ZDM_STEP_CATCH_UP:
		return "catch_up";
	case ZDM_STEP_STOP_SYNC:
		return "stop_sync";
	case ZDM_STEP_AUTOCOMMIT:
		return "autocommit";
	}
	return "?";
}

typedef struct diff_steps {
	const zdm_plan *a, *b;
	bool loose; /* phase, kind and table only */
} diff_steps;

static bool
diff_step_eq(const void *ctx, size_t i, size_t j)
{
	const diff_steps *d = ctx;
	const zdm_step *x = &d->a->steps[i], *y = &d->b->steps[j];

	return strcmp(x->phase, y->phase) == 0 && x->kind == y->kind &&
	       diff_str_eq(x->table, y->table) &&
	       (d->loose || (strcmp(x->description, y->description) == 0 &&
	                     diff_str_eq(x->gate, y->gate)));
}

/* A step's transaction label, with "its own" (the label is its id) made
 * independent of the id, so renumbering is not a change. */
static const char *
diff_txn(const zdm_step *s)
{
	if (s->transaction == NULL)
		return NULL;
	return strcmp(s->transaction, s->id) == 0 ? "" : s->transaction;
}

/* Do two steps' diagnoses (either NULL) differ? */
static bool
diff_diagnose_differs(const zdm_diagnosis *x, const zdm_diagnosis *y)
{
	if (x == NULL || y == NULL)
		return x != y;
	return strcmp(x->description, y->description) != 0 ||
	       strcmp(x->sql, y->sql) != 0 || x->expect != y->expect ||
	       !diff_str_eq(x->examples_sql, y->examples_sql);
}

/* Does anything a step runs or promises differ? */
static bool
diff_step_differs(const zdm_step *x, const zdm_step *y)
{
	return strcmp(x->description, y->description) != 0 ||
	       !diff_str_eq(x->table, y->table) ||
	       !diff_str_eq(diff_txn(x), diff_txn(y)) ||
	       x->lock_timeout_ms != y->lock_timeout_ms ||
	       !diff_str_eq(x->sql, y->sql) ||
	       !diff_str_eq(x->compensation, y->compensation) ||
	       x->point_of_no_return != y->point_of_no_return ||
	       !diff_str_eq(x->key, y->key) || x->batch_size != y->batch_size ||
	       x->batch_pause_ms != y->batch_pause_ms ||
	       x->expect != y->expect ||
	       !diff_str_eq(x->examples_sql, y->examples_sql) ||
	       !diff_str_eq(x->in_flight_offenders, y->in_flight_offenders) ||
	       !diff_str_eq(x->in_flight_recheck, y->in_flight_recheck) ||
	       diff_diagnose_differs(x->diagnose, y->diagnose) ||
	       !diff_str_eq(x->gate, y->gate) || x->approval != y->approval ||
	       x->max_lag_ms != y->max_lag_ms ||
	       x->stable_for_ms != y->stable_for_ms || x->barrier != y->barrier;
}

/* ---- the report ---------------------------------------------------------- */

typedef struct diff_report {
	zdmc_arena *arena;
	const zdm_plan *a, *b;
	zdmc_plan_review *ra, *rb;
	size_t *old_of; /* for each new step: its old step, DIFF_NONE if added */
	size_t *new_of; /* for each old step: its new step, DIFF_NONE if gone */
	size_t added, removed, changed, same, renumbered;
	zdmc_buf highlights; /* "- ...\n" items */
	size_t ndanger, nnotes;
	zdmc_buf settings; /* table rows */
} diff_report;

static void
diff_highlight(diff_report *d, bool danger, const char *text)
{
	zdmc_buf_puts(&d->highlights, danger ? "- **DANGER** " : "- ");
	zdmc_buf_puts(&d->highlights, text);
	zdmc_buf_puts(&d->highlights, "\n");
	if (danger)
		d->ndanger++;
	else
		d->nnotes++;
}

static void
diff_align(diff_report *d)
{
	const zdm_plan *a = d->a, *b = d->b;
	diff_steps ds = {a, b, false};
	size_t i, j, gi, gj;

	d->old_of =
		zdmc_arena_alloc(d->arena, (b->nsteps + 1) * sizeof(size_t));
	d->new_of =
		zdmc_arena_alloc(d->arena, (a->nsteps + 1) * sizeof(size_t));
	diff_lcs(a->nsteps, b->nsteps, diff_step_eq, &ds, d->new_of, d->old_of);
	/* pair what is left between two aligned steps, loosely, in order */
	ds.loose = true;
	for (i = 0, j = 0; i <= a->nsteps && j <= b->nsteps;) {
		size_t ea = i, eb = j;

		while (ea < a->nsteps && d->new_of[ea] == DIFF_NONE)
			ea++;
		while (eb < b->nsteps && d->old_of[eb] == DIFF_NONE)
			eb++;
		for (gi = i; gi < ea; gi++)
			for (gj = j; gj < eb; gj++)
				if (d->old_of[gj] == DIFF_NONE &&
				    diff_step_eq(&ds, gi, gj)) {
					d->new_of[gi] = gj;
					d->old_of[gj] = gi;
					break;
				}
		i = ea + 1;
		j = eb + 1;
	}
}

/* Risk in words, for a step shown in the report. */
static void
diff_risk_lines(zdmc_buf *b, const zdmc_plan_review *rv, size_t i)
{
	const zdmc_step_review *sr = &rv->steps[i];
	const zdm_step *s = sr->step;

	if (s->kind == ZDM_STEP_GATE) {
		zdmc_buf_puts(b, "- Gate ");
		zdmc_md_code(b, s->gate, false);
		zdmc_buf_puts(b, s->approval ? ": **the run stops here until "
		                               "`zdm approve "
		                             : ": no approval needed");
		if (s->approval) {
			zdmc_md_text(b, s->gate, false);
			zdmc_buf_puts(b, "`**");
		}
		zdmc_buf_puts(b, ".\n");
	} else {
		size_t k;

		for (k = 0; k < sr->sql.nstmts; k++) {
			zdmc_buf_puts(b, "- ");
			zdmc_review_stmt(b, sr, &sr->sql.stmts[k], false);
			zdmc_buf_puts(b, "\n");
		}
		if (sr->group_note != NULL) {
			zdmc_buf_puts(b, "- **DANGER** ");
			zdmc_buf_puts(b, sr->group_note);
			zdmc_buf_puts(b, "\n");
		}
		zdmc_buf_puts(b, "- Transaction: ");
		zdmc_review_txn(b, rv, i);
		zdmc_buf_printf(b, "; lock timeout %ldms.\n",
		                s->lock_timeout_ms);
	}
	zdmc_buf_puts(b, "- Undo: ");
	zdmc_review_undo(b, s, false);
	zdmc_buf_puts(b, ".\n");
}

static void
diff_step_title(zdmc_buf *b, const zdm_step *s, const char *verb,
                const zdm_step *was)
{
	zdmc_buf_printf(b, "#### %s `%s`", verb, s->id);
	if (was != NULL && strcmp(was->id, s->id) != 0)
		zdmc_buf_printf(b, " (was `%s`)", was->id);
	zdmc_buf_printf(b, " (%s, %s)\n\n", s->phase, diff_kind_name(s->kind));
	zdmc_md_text(b, s->description, false);
	zdmc_buf_puts(b, "\n\n");
}

static void
diff_sql_block(zdmc_buf *b, const char *label, const char *old_sql,
               const char *new_sql)
{
	zdmc_buf body;

	zdmc_buf_init(&body, b->arena);
	if (old_sql == NULL)
		diff_all_lines(&body, '+', new_sql);
	else if (new_sql == NULL)
		diff_all_lines(&body, '-', old_sql);
	else
		diff_text(&body, b->arena, old_sql, new_sql);
	zdmc_buf_printf(b, "%s:\n\n", label);
	zdmc_md_fence(b, "diff", zdmc_buf_cstr(&body));
	zdmc_buf_puts(b, "\n");
}

/* The risk of a step that was added, as a highlight when it matters. */
static void
diff_added_highlights(diff_report *d, size_t j)
{
	const zdmc_step_review *sr = &d->rb->steps[j];
	zdmc_buf t;

	zdmc_buf_init(&t, d->arena);
	if (zdmc_review_is_danger(sr) || (sr->flags & ZDMC_RISK_UNKNOWN)) {
		zdmc_buf_printf(&t, "`%s` (added): ", sr->step->id);
		zdmc_review_headline(&t, sr);
		diff_highlight(d, zdmc_review_is_danger(sr), zdmc_buf_cstr(&t));
	}
	if (sr->step->kind == ZDM_STEP_GATE && sr->step->approval) {
		zdmc_buf_init(&t, d->arena);
		zdmc_buf_puts(&t, "approval gate added: ");
		zdmc_md_code(&t, sr->step->gate, false);
		zdmc_buf_printf(&t, " (`%s`) stops the run until approved",
		                sr->step->id);
		diff_highlight(d, false, zdmc_buf_cstr(&t));
	}
}

static const char *
diff_flag_words(unsigned flag)
{
	switch (flag) {
	case ZDMC_RISK_SCAN:
		return "scans a whole table";
	case ZDMC_RISK_REWRITE:
		return "rewrites a whole table";
	case ZDMC_RISK_DATA_LOSS:
		return "drops data";
	case ZDMC_RISK_NO_TXN:
		return "cannot run in a transaction";
	case ZDMC_RISK_ALL_ROWS:
		return "writes every row in one transaction";
	case ZDMC_RISK_UNKNOWN:
		return "has a statement zdmc cannot classify";
	case ZDMC_RISK_WRITES_ROWS:
		return "writes rows";
	default:
		return "?";
	}
}

/* What changed in a step's risk, as "- ..." lines into b (and the
 * highlights that follow). */
static void
diff_changed_risk(diff_report *d, zdmc_buf *b, size_t i, size_t j)
{
	static const unsigned flags[] = {
		ZDMC_RISK_SCAN,        ZDMC_RISK_REWRITE,  ZDMC_RISK_DATA_LOSS,
		ZDMC_RISK_NO_TXN,      ZDMC_RISK_ALL_ROWS, ZDMC_RISK_UNKNOWN,
		ZDMC_RISK_WRITES_ROWS,
	};
	const zdmc_step_review *ro = &d->ra->steps[i], *rn = &d->rb->steps[j];
	const zdm_step *o = ro->step, *n = rn->step;
	zdmc_buf t;
	size_t f;

	zdmc_buf_init(&t, d->arena);
	if (ro->lock != rn->lock)
		zdmc_buf_printf(b, "- Lock: %s -> **%s** (%s).\n",
		                zdmc_lock_name(ro->lock),
		                zdmc_lock_name(rn->lock),
		                zdmc_lock_blocks(rn->lock));
	for (f = 0; f < sizeof(flags) / sizeof(*flags); f++) {
		bool was = (ro->flags & flags[f]) != 0;
		bool now = (rn->flags & flags[f]) != 0;

		if (was != now)
			zdmc_buf_printf(b,
			                now ? "- **Now %s**.\n"
			                    : "- No longer %s.\n",
			                diff_flag_words(flags[f]));
	}
	if (zdmc_review_is_danger(rn)) {
		zdmc_buf_printf(&t, "`%s` (changed): ", n->id);
		zdmc_review_headline(&t, rn);
		diff_highlight(d, true, zdmc_buf_cstr(&t));
	} else if (rn->flags & ZDMC_RISK_UNKNOWN) {
		zdmc_buf_printf(&t, "`%s` (changed): ", n->id);
		zdmc_review_headline(&t, rn);
		diff_highlight(d, false, zdmc_buf_cstr(&t));
	} else if (zdmc_review_is_danger(ro)) {
		zdmc_buf_printf(&t, "`%s` is no longer dangerous", n->id);
		diff_highlight(d, false, zdmc_buf_cstr(&t));
	}
	if (o->point_of_no_return != n->point_of_no_return)
		zdmc_buf_printf(b, "- %s.\n",
		                n->point_of_no_return
		                        ? "**Becomes a point of no return**: "
		                          "rollback is refused once it has run"
		                        : "No longer a point of no return");
	if ((o->compensation == NULL) != (n->compensation == NULL) &&
	    o->kind != ZDM_STEP_GATE)
		zdmc_buf_printf(
			b, "- %s.\n",
			n->compensation == NULL
				? "**Loses its undo**: rollback no longer "
				  "undoes it"
				: "Gains an undo");
	if (o->kind == ZDM_STEP_GATE && o->approval != n->approval) {
		zdmc_buf_init(&t, d->arena);
		zdmc_buf_printf(&t, "approval %s at gate ",
		                n->approval ? "added" : "removed");
		zdmc_md_code(&t, n->gate, false);
		zdmc_buf_printf(&t, " (`%s`", n->id);
		zdmc_buf_puts(
			&t,
			n->approval
				? "): the run now stops there until approved"
				: "): the run no longer stops there for a "
				  "person");
		zdmc_buf_printf(b, "- **Approval %s**.\n",
		                n->approval ? "added" : "removed");
		diff_highlight(d, false, zdmc_buf_cstr(&t));
	}
	if (!diff_str_eq(diff_txn(o), diff_txn(n))) {
		zdmc_buf_puts(b, "- Transaction: ");
		zdmc_md_code(b, o->transaction ? o->transaction : "none",
		             false);
		zdmc_buf_puts(b, " -> ");
		zdmc_md_code(b, n->transaction ? n->transaction : "none",
		             false);
		zdmc_buf_puts(b, " (locks are held until a transaction "
		                 "commits).\n");
	}
	if (o->lock_timeout_ms != n->lock_timeout_ms)
		zdmc_buf_printf(b, "- Lock timeout: %ldms -> %ldms.\n",
		                o->lock_timeout_ms, n->lock_timeout_ms);
	if (o->batch_size != n->batch_size)
		zdmc_buf_printf(b, "- Batch size: %ld -> %ld rows.\n",
		                o->batch_size, n->batch_size);
	if (o->batch_pause_ms != n->batch_pause_ms)
		zdmc_buf_printf(b, "- Batch pause: %ldms -> %ldms.\n",
		                o->batch_pause_ms, n->batch_pause_ms);
	if (!diff_str_eq(o->key, n->key)) {
		zdmc_buf_puts(b, "- Batch key: ");
		zdmc_md_code(b, o->key ? o->key : "none", false);
		zdmc_buf_puts(b, " -> ");
		zdmc_md_code(b, n->key ? n->key : "none", false);
		zdmc_buf_puts(b, ".\n");
	}
	if (o->expect != n->expect && n->kind == ZDM_STEP_CHECK)
		zdmc_buf_printf(b, "- Expected value: %lld -> %lld.\n",
		                o->expect, n->expect);
	if (!diff_str_eq(o->gate, n->gate)) {
		zdmc_buf_puts(b, "- Gate: ");
		zdmc_md_code(b, o->gate ? o->gate : "none", false);
		zdmc_buf_puts(b, " -> ");
		zdmc_md_code(b, n->gate ? n->gate : "none", false);
		zdmc_buf_puts(b, ".\n");
	}
	if (!diff_str_eq(o->table, n->table)) {
		zdmc_buf_puts(b, "- Table: ");
		zdmc_md_code(b, o->table ? o->table : "none", false);
		zdmc_buf_puts(b, " -> ");
		zdmc_md_code(b, n->table ? n->table : "none", false);
		zdmc_buf_puts(b, ".\n");
	}
}

static void
diff_step_changed(diff_report *d, zdmc_buf *b, size_t i, size_t j)
{
	const zdm_step *o = &d->a->steps[i], *n = &d->b->steps[j];
	zdmc_buf risk;

	diff_step_title(b, n, "Changed", o);
	if (strcmp(o->description, n->description) != 0) {
		zdmc_buf_puts(b, "Was: ");
		zdmc_md_text(b, o->description, false);
		zdmc_buf_puts(b, "\n\n");
	}
	zdmc_buf_init(&risk, d->arena);
	diff_changed_risk(d, &risk, i, j);
	if (risk.len > 0) {
		zdmc_buf_puts(b, "Risk changes:\n\n");
		zdmc_buf_puts(b, zdmc_buf_cstr(&risk));
		zdmc_buf_puts(b, "\n");
	}
	zdmc_buf_puts(b, "Risk now:\n\n");
	diff_risk_lines(b, d->rb, j);
	zdmc_buf_puts(b, "\n");
	if (!diff_str_eq(o->sql, n->sql) && (o->sql || n->sql))
		diff_sql_block(b, "SQL", o->sql, n->sql);
	if (!diff_str_eq(o->compensation, n->compensation) &&
	    o->compensation != NULL && n->compensation != NULL)
		diff_sql_block(b, "Undo", o->compensation, n->compensation);
	if (!diff_str_eq(o->examples_sql, n->examples_sql) &&
	    (o->examples_sql || n->examples_sql))
		diff_sql_block(b, "Examples query", o->examples_sql,
		               n->examples_sql);
	if (diff_diagnose_differs(o->diagnose, n->diagnose)) {
		const zdm_diagnosis *od = o->diagnose, *nd = n->diagnose;

		diff_sql_block(b, "Diagnose count (after a failure)",
		               od ? od->sql : NULL, nd ? nd->sql : NULL);
		if ((od && od->examples_sql) || (nd && nd->examples_sql))
			diff_sql_block(b, "Diagnose examples",
			               od ? od->examples_sql : NULL,
			               nd ? nd->examples_sql : NULL);
	}
}

static void
diff_step_added(zdmc_buf *b, const zdmc_plan_review *rv, size_t j)
{
	const zdm_step *n = &rv->plan->steps[j];

	diff_step_title(b, n, "Added", NULL);
	diff_risk_lines(b, rv, j);
	zdmc_buf_puts(b, "\n");
	if (n->sql != NULL)
		diff_sql_block(b, "SQL", NULL, n->sql);
}

/* Does the plan still change table (NULL: a step on no table)? */
static bool
diff_has_table(const zdm_plan *p, const char *table)
{
	size_t i;

	if (table == NULL)
		return true;
	for (i = 0; i < p->ntables; i++)
		if (strcmp(p->tables[i], table) == 0)
			return true;
	return false;
}

static void
diff_step_removed(diff_report *d, zdmc_buf *b, size_t i)
{
	const zdm_step *o = &d->a->steps[i];
	zdmc_buf t;

	diff_step_title(b, o, "Removed", NULL);
	if (o->sql != NULL)
		diff_sql_block(b, "SQL", o->sql, NULL);
	zdmc_buf_init(&t, d->arena);
	if (o->kind == ZDM_STEP_CHECK && diff_has_table(d->b, o->table)) {
		zdmc_buf_printf(&t, "check `%s` removed; it verified: ", o->id);
		zdmc_md_text(&t, o->description, false);
		diff_highlight(d, false, zdmc_buf_cstr(&t));
	} else if (o->kind == ZDM_STEP_GATE && o->approval) {
		zdmc_buf_puts(&t, "approval gate removed: ");
		zdmc_md_code(&t, o->gate, false);
		zdmc_buf_printf(&t, " (`%s`) no longer stops the run", o->id);
		diff_highlight(d, false, zdmc_buf_cstr(&t));
	}
}

/* ---- settings and changes ------------------------------------------------- */

static void
diff_setting(diff_report *d, const char *name, const char *o, const char *n,
             bool highlight)
{
	zdmc_buf t;

	if (diff_str_eq(o, n))
		return;
	zdmc_buf_printf(&d->settings, "| `%s` | ", name);
	zdmc_md_code(&d->settings, o ? o : "(none)", true);
	zdmc_buf_puts(&d->settings, " | ");
	zdmc_md_code(&d->settings, n ? n : "(none)", true);
	zdmc_buf_puts(&d->settings, " |\n");
	if (!highlight)
		return;
	zdmc_buf_init(&t, d->arena);
	zdmc_buf_printf(&t, "`%s`: ", name);
	zdmc_md_code(&t, o ? o : "(none)", false);
	zdmc_buf_puts(&t, " -> ");
	zdmc_md_code(&t, n ? n : "(none)", false);
	diff_highlight(d, false, zdmc_buf_cstr(&t));
}

static const char *
diff_num(zdmc_arena *arena, long long v, const char *unit)
{
	return zdmc_arena_printf(arena, "%lld%s", v, unit);
}

static const char *
diff_list(zdmc_arena *arena, char *const *items, size_t n)
{
	zdmc_buf b;
	size_t i;

	zdmc_buf_init(&b, arena);
	zdmc_buf_puts(&b, "[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			zdmc_buf_puts(&b, ", ");
		zdmc_buf_puts(&b, items[i]);
	}
	zdmc_buf_puts(&b, "]");
	return zdmc_buf_cstr(&b);
}

/* The cdc statements and rules as one fingerprint line: a changed forward
 * or reverse shows as a changed setting (the SQL is in the plans). */
static const char *
diff_cdc_text(zdmc_arena *arena, const zdm_plan *p)
{
	zdmc_buf b;
	char hex[65];
	size_t t, i;

	if (p->cdc == NULL)
		return NULL;
	zdmc_buf_init(&b, arena);
	for (t = 0; t < p->cdc->ntables; t++)
		for (i = 0; i < p->cdc->tables[t].nsyncs; i++) {
			const zdm_cdc_sync *s = &p->cdc->tables[t].syncs[i];

			zdmc_buf_printf(
				&b, "%s\n%s\n%s\n", s->forward,
				s->reverse ? s->reverse : "",
				diff_list(arena, s->params, s->nparams));
		}
	zdmc_sha256_hex(b.len ? zdmc_buf_cstr(&b) : "", b.len, hex);
	return zdmc_arena_printf(arena, "sha256 %.12s", hex);
}

static void
diff_settings(diff_report *d)
{
	const zdm_plan *a = d->a, *b = d->b;
	zdmc_arena *ar = d->arena;

	diff_setting(d, "migration", a->migration, b->migration, false);
	if (strcmp(a->migration, b->migration) != 0)
		diff_highlight(d, false,
		               "the migration's name changes: zdm journals a "
		               "run by name, so a run of the old plan already "
		               "under way is not continued by the new one");
	diff_setting(d, "source.file", a->source_file, b->source_file, false);
	diff_setting(d, "source.sha256", a->source_sha256, b->source_sha256,
	             false);
	diff_setting(d, "requires.server_version_num",
	             diff_num(ar, a->min_server_version_num, ""),
	             diff_num(ar, b->min_server_version_num, ""), true);
	diff_setting(d, "options.batch_size", diff_num(ar, a->batch_size, ""),
	             diff_num(ar, b->batch_size, ""), true);
	diff_setting(d, "options.batch_pause",
	             diff_num(ar, a->batch_pause_ms, "ms"),
	             diff_num(ar, b->batch_pause_ms, "ms"), true);
	diff_setting(d, "options.lock_timeout",
	             diff_num(ar, a->lock_timeout_ms, "ms"),
	             diff_num(ar, b->lock_timeout_ms, "ms"), true);
	diff_setting(d, "options.lock_retries",
	             diff_num(ar, a->lock_retries, ""),
	             diff_num(ar, b->lock_retries, ""), true);
	diff_setting(d, "options.statement_timeout",
	             diff_num(ar, a->statement_timeout_ms, "ms"),
	             diff_num(ar, b->statement_timeout_ms, "ms"), true);
	diff_setting(d, "options.approve",
	             diff_list(ar, a->approve, a->napprove),
	             diff_list(ar, b->approve, b->napprove), true);
	diff_setting(d, "options.sync", a->sync, b->sync, true);
	diff_setting(d, "cdc.source", a->cdc ? a->cdc->source : NULL,
	             b->cdc ? b->cdc->source : NULL, true);
	diff_setting(d, "cdc.max_lag",
	             a->cdc ? diff_num(ar, a->cdc->max_lag_ms, "ms") : NULL,
	             b->cdc ? diff_num(ar, b->cdc->max_lag_ms, "ms") : NULL,
	             true);
	diff_setting(d, "cdc.stable_for",
	             a->cdc ? diff_num(ar, a->cdc->stable_for_ms, "ms") : NULL,
	             b->cdc ? diff_num(ar, b->cdc->stable_for_ms, "ms") : NULL,
	             true);
	diff_setting(d, "cdc sync statements", diff_cdc_text(ar, a),
	             diff_cdc_text(ar, b), false);
	diff_setting(d, "options.verify_sample",
	             diff_num(ar, a->verify_sample, ""),
	             diff_num(ar, b->verify_sample, ""), true);
	diff_setting(d, "new_version.schema", a->version_schema,
	             b->version_schema, false);
	diff_setting(d, "new_version.search_path", a->search_path,
	             b->search_path, true);
}

/* " key a, b" for a non-empty list of names */
static void
diff_names(zdmc_buf *b, const char *key, char *const *names, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	zdmc_buf_printf(b, " %s", key);
	for (i = 0; i < n; i++)
		zdmc_buf_printf(b, "%s%s", i == 0 ? " " : ", ", names[i]);
}

/*
 * tables[].changes and statements[] as plain lines, one per change, for
 * a line diff: the
 * change's name, then its facts (never interpreted by name), so two plans
 * that do the same thing read the same whatever version wrote them.  The
 * summary is left out: it restates the facts.
 */
static const char *
diff_changes_text(zdmc_arena *arena, const zdm_plan *p)
{
	zdmc_buf b;
	size_t t, c, k;

	zdmc_buf_init(&b, arena);
	for (t = 0; t < p->ntable_info; t++) {
		const zdm_table_info *ti = &p->table_info[t];

		if (ti->nchanges == 0)
			zdmc_buf_printf(&b, "%s: no changes\n", ti->name);
		for (c = 0; c < ti->nchanges; c++) {
			const zdm_change *ch = &ti->changes[c];

			zdmc_buf_printf(&b, "%s: %s", ti->name, ch->change);
			diff_names(&b, "reads", ch->reads, ch->nreads);
			for (k = 0; k < ch->ncreates; k++) {
				const zdm_created_column *col = &ch->creates[k];

				zdmc_buf_printf(
					&b, "%s %s %s%s",
					k == 0 ? " creates" : ",", col->column,
					col->type ? col->type
						  : "(its present type)",
					col->not_null ? " not null" : "");
				if (col->using != NULL)
					zdmc_buf_printf(&b, " using (%s)",
					                col->using);
			}
			diff_names(&b, "replaces", ch->replaces, ch->nreplaces);
			for (k = 0; k < ch->nrenames; k++)
				zdmc_buf_printf(&b, "%s %s to %s",
				                k == 0 ? " renames" : ",",
				                ch->renames[k].column,
				                ch->renames[k].to);
			for (k = 0; k < ch->nreverse; k++)
				zdmc_buf_printf(&b, "%s %s using (%s)",
				                k == 0 ? " reverse" : ",",
				                ch->reverse[k].column,
				                ch->reverse[k].using);
			if (ch->irreversible)
				zdmc_buf_puts(&b, " irreversible");
			if (ch->table_created)
				zdmc_buf_puts(&b, " creates the table");
			if (ch->table_dropped)
				zdmc_buf_puts(&b, " drops the table");
			diff_names(&b, "creates constraints",
			           ch->constraints_created,
			           ch->nconstraints_created);
			diff_names(&b, "drops constraints",
			           ch->constraints_dropped,
			           ch->nconstraints_dropped);
			for (k = 0; k < ch->nconstraint_renames; k++)
				zdmc_buf_printf(
					&b, "%s %s to %s",
					k == 0 ? " renames constraints" : ",",
					ch->constraint_renames[k].constraint,
					ch->constraint_renames[k].to);
			diff_names(&b, "creates indexes", ch->indexes_created,
			           ch->nindexes_created);
			for (k = 0; k < ch->nreferences; k++) {
				zdmc_buf_printf(&b, "%s %s",
				                k == 0 ? " references" : ",",
				                ch->references[k].table);
				diff_names(&b, "columns",
				           ch->references[k].columns,
				           ch->references[k].ncolumns);
			}
			if (ch->split_into != NULL)
				zdmc_buf_printf(&b, " splits into %s",
				                ch->split_into);
			if (ch->table_renamed_to != NULL)
				zdmc_buf_printf(&b, " renames the table to %s",
				                ch->table_renamed_to);
			for (k = 0; k < ch->ndefaults; k++)
				zdmc_buf_printf(&b, "%s %s %s",
				                k == 0 ? " defaults" : ",",
				                ch->defaults[k].column,
				                ch->defaults[k].value != NULL
				                        ? ch->defaults[k].value
				                        : "dropped");
			diff_names(&b, "drops", ch->drops, ch->ndrops);
			diff_names(&b, "sets not null", ch->not_null_set,
			           ch->nnot_null_set);
			diff_names(&b, "drops not null", ch->not_null_dropped,
			           ch->nnot_null_dropped);
			zdmc_buf_puts(&b, "\n");
		}
	}
	/* a statement on no table: its summary names its object and labels,
	 * which are all its facts say */
	for (t = 0; t < p->nstatements; t++)
		zdmc_buf_printf(&b, "statement %s: %s\n",
		                p->statements[t].statement,
		                p->statements[t].summary);
	return zdmc_buf_cstr(&b);
}

/* The first step marked point of no return, or NULL. */
static const zdm_step *
diff_first_ponr(const zdm_plan *p)
{
	size_t i;

	for (i = 0; i < p->nsteps; i++)
		if (p->steps[i].point_of_no_return)
			return &p->steps[i];
	return NULL;
}

void
zdmc_plan_diff(zdmc_buf *out, const zdm_plan *old_plan, const char *old_name,
               const zdm_plan *new_plan, const char *new_name)
{
	diff_report d;
	zdmc_buf added, removed, changed;
	const char *ca, *cb;
	const zdm_step *pa, *pb;
	size_t i, j;

	memset(&d, 0, sizeof(d));
	d.arena = out->arena;
	d.a = old_plan;
	d.b = new_plan;
	d.ra = zdmc_plan_review_new(d.arena, old_plan);
	d.rb = zdmc_plan_review_new(d.arena, new_plan);
	zdmc_buf_init(&d.highlights, d.arena);
	zdmc_buf_init(&d.settings, d.arena);
	zdmc_buf_init(&added, d.arena);
	zdmc_buf_init(&removed, d.arena);
	zdmc_buf_init(&changed, d.arena);

	diff_settings(&d);
	diff_align(&d);
	/* where rollback stops being possible */
	pa = diff_first_ponr(old_plan);
	pb = diff_first_ponr(new_plan);
	if ((pa == NULL) != (pb == NULL) ||
	    (pa != NULL && pb != NULL && strcmp(pa->phase, pb->phase) != 0)) {
		zdmc_buf t;

		zdmc_buf_init(&t, d.arena);
		zdmc_buf_printf(&t,
		                "the point of no return moves from %s%s%s to "
		                "%s%s%s",
		                pa ? "`" : "", pa ? pa->id : "nowhere",
		                pa ? "`" : "", pb ? "`" : "",
		                pb ? pb->id : "nowhere", pb ? "`" : "");
		diff_highlight(&d, false, zdmc_buf_cstr(&t));
	}
	for (j = 0; j < new_plan->nsteps; j++) {
		i = d.old_of[j];
		if (i == DIFF_NONE) {
			d.added++;
			diff_step_added(&added, d.rb, j);
			diff_added_highlights(&d, j);
		} else if (diff_step_differs(&old_plan->steps[i],
		                             &new_plan->steps[j])) {
			d.changed++;
			diff_step_changed(&d, &changed, i, j);
		} else {
			d.same++;
			d.renumbered += strcmp(old_plan->steps[i].id,
			                       new_plan->steps[j].id) != 0;
		}
	}
	for (i = 0; i < old_plan->nsteps; i++)
		if (d.new_of[i] == DIFF_NONE) {
			d.removed++;
			diff_step_removed(&d, &removed, i);
		}
	ca = diff_changes_text(d.arena, old_plan);
	cb = diff_changes_text(d.arena, new_plan);

	if (d.added + d.removed + d.changed == 0 && d.settings.len == 0 &&
	    strcmp(ca, cb) == 0) {
		zdmc_buf_puts(out, "No changes.\n");
		return;
	}
	zdmc_buf_printf(out,
	                "**%zu step%s added, %zu removed, %zu changed** "
	                "(%zu unchanged",
	                d.added, d.added == 1 ? "" : "s", d.removed, d.changed,
	                d.same);
	if (d.renumbered > 0)
		zdmc_buf_printf(out, ", %zu of them renumbered", d.renumbered);
	zdmc_buf_puts(out, ") in migration ");
	zdmc_md_code(out, new_plan->migration, false);
	zdmc_buf_puts(out, ": ");
	zdmc_md_code(out, old_name, false);
	zdmc_buf_puts(out, " -> ");
	zdmc_md_code(out, new_name, false);
	zdmc_buf_puts(out, ".\n\n");
	if (d.ndanger + d.nnotes == 0) {
		zdmc_buf_puts(out, "Risk: nothing to flag. No added or changed "
		                   "step holds a lock that blocks writes for "
		                   "longer than catalog work.\n\n");
	} else {
		zdmc_buf_puts(out, "Risk: ");
		if (d.ndanger > 0)
			zdmc_buf_printf(out, "**%zu danger%s**%s", d.ndanger,
			                d.ndanger == 1 ? "" : "s",
			                d.nnotes > 0 ? ", " : "");
		if (d.nnotes > 0)
			zdmc_buf_printf(out, "%zu to note", d.nnotes);
		zdmc_buf_puts(out, ".\n\n");
		zdmc_buf_puts(out, zdmc_buf_cstr(&d.highlights));
		zdmc_buf_puts(out, "\n");
	}
	if (d.settings.len > 0) {
		zdmc_buf_puts(out, "### Settings\n\n"
		                   "| setting | old | new |\n"
		                   "| --- | --- | --- |\n");
		zdmc_buf_puts(out, zdmc_buf_cstr(&d.settings));
		zdmc_buf_puts(out, "\n");
	}
	if (strcmp(ca, cb) != 0) {
		zdmc_buf body;

		zdmc_buf_init(&body, d.arena);
		diff_text(&body, d.arena, ca, cb);
		zdmc_buf_puts(out, "### Changes (the source's intent)\n\n");
		zdmc_md_fence(out, "diff", zdmc_buf_cstr(&body));
		zdmc_buf_puts(out, "\n");
	}
	if (d.added > 0) {
		zdmc_buf_printf(out, "### Steps added (%zu)\n\n", d.added);
		zdmc_buf_puts(out, zdmc_buf_cstr(&added));
	}
	if (d.removed > 0) {
		zdmc_buf_printf(out, "### Steps removed (%zu)\n\n", d.removed);
		zdmc_buf_puts(out, zdmc_buf_cstr(&removed));
	}
	if (d.changed > 0) {
		zdmc_buf_printf(out, "### Steps changed (%zu)\n\n", d.changed);
		zdmc_buf_puts(out, zdmc_buf_cstr(&changed));
	}
}
