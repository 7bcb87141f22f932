/*
 * sequence.c -- several migrations in order, as a project's db/ folder holds
 * them: `zdm apply A.plan B.plan ...` or `zdm apply DIR` (the directory's
 * files ending in .plan, in byte order of their names), and `zdm status` of
 * such a list or of every migration in the journal, one line each.
 *
 * A sequence adds an order and nothing else.  Each plan that is not done is
 * applied by zdm_apply, exactly as `zdm apply PLAN` applies it (its own
 * connection, advisory lock, preflight, journal rows, gates and record in
 * git); a plan the journal says is done is skipped.  The sequence stops at
 * the first plan that does not finish (a gate that needs approval, a
 * failure, a stop) with that run's exit status, and says which plan stopped
 * and which were not started; the same command run again continues.
 *
 * Invariants, checked before anything runs (exit 2, nothing touched): every
 * plan reads, no two plans are of one migration, every --approve gate is a
 * gate of some plan, the journal's plan_sha256 of each migration it knows is
 * the plan file's (a done migration whose file was edited afterwards is
 * refused, not skipped: the file no longer says what the database holds),
 * and no plan that is not done comes before one that has started (a plan
 * added in front of applied ones would run after them).  Between those
 * checks and a plan's turn another runner may move a migration on;
 * zdm_apply checks its own migration again under its lock.
 *
 * It must not write to the journal or take a migration's lock itself: the
 * only writer is zdm_apply.  Its journal queries read zdm.migrations and
 * zdm.steps only (they belong with journal.c's; kept here as named
 * constants until the journal's SQL moves there).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal.h"
#include "sequence.h"
#include "signals.h"

/*
 * Every migration in the journal, oldest first, with what one line of the
 * listing shows.  The journal holds one row per migration ever run, so the
 * sequence reads it whole and matches plans to rows by name itself rather
 * than passing an array of names.  The phase is that of current_step (the
 * last step started, or the gate waited at).
 */
static const char seq_journal_sql[] =
	"SELECT m.migration, " ZDM_JOURNAL_STATE_SQL ", m.plan_sha256,"
	"       m.current_step,"
	"       (SELECT s.phase FROM zdm.steps s WHERE s.migration = m.migration"
	"         AND s.step_id = m.current_step),"
	"       m.waiting_gate,"
	"       pg_catalog.to_char(m.started_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'),"
	"       pg_catalog.to_char(m.finished_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'),"
	"       (SELECT count(*) FROM zdm.steps s WHERE s.migration = m.migration"
	"         AND s.state = 'done'),"
	"       (SELECT count(*) FROM zdm.steps s WHERE s.migration = m.migration)"
	"  FROM zdm.migrations m"
	" ORDER BY m.started_at, m.migration";

/* One plan of the sequence, or one journal row for the listing. */
typedef struct seq_item {
	char *path;      /* NULL for a journal row without a plan */
	zdm_plan *plan;  /* loaded; NULL for a journal row */
	char *migration; /* the plan's, or the row's */
	/* the journal row: all NULL when the migration has not started */
	char *state, *sha, *step, *phase, *gate, *started, *finished;
	long steps_done, steps_total;
} seq_item;

typedef struct seq {
	seq_item *items;
	size_t n, cap;
} seq;

static void
seq_free(seq *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		seq_item *it = &s->items[i];

		free(it->path);
		zdm_plan_free(it->plan);
		free(it->migration);
		free(it->state);
		free(it->sha);
		free(it->step);
		free(it->phase);
		free(it->gate);
		free(it->started);
		free(it->finished);
	}
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static seq_item *
seq_push(seq *s)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		seq_item *grown = realloc(s->items, cap * sizeof(*grown));

		if (grown == NULL)
			return NULL;
		s->items = grown;
		s->cap = cap;
	}
	memset(&s->items[s->n], 0, sizeof(s->items[0]));
	return &s->items[s->n++];
}

static bool
seq_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool
zdm_sequence_wanted(const char *const *args, size_t nargs)
{
	return nargs > 1 || (nargs == 1 && seq_is_dir(args[0]));
}

static int
seq_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
seq_is_plan_name(const char *name)
{
	size_t len = strlen(name);

	/* dot files are editor and tool leftovers, never plans */
	return name[0] != '.' && len > 5 &&
	       strcmp(name + len - 5, ".plan") == 0;
}

/*
 * DIR's plan files in name order, appended to s.  Byte order, not the
 * locale's: the order must not depend on who runs it.
 */
static int
seq_add_dir(seq *s, const char *dir, zdm_error *err)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int rc = -1;

	d = opendir(dir);
	if (d == NULL) {
		zdm_error_set(err, "cannot read directory %s: %s", dir,
		              strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char *path;
		size_t len;

		if (!seq_is_plan_name(de->d_name))
			continue;
		len = strlen(dir) + strlen(de->d_name) + 2;
		path = malloc(len);
		if (path == NULL)
			goto cleanup;
		snprintf(path, len, "%s%s%s", dir,
		         dir[strlen(dir) - 1] == '/' ? "" : "/", de->d_name);
		if (seq_is_dir(path)) {
			free(path);
			continue;
		}
		if (n == cap) {
			char **grown;

			cap = cap ? cap * 2 : 16;
			grown = realloc(names, cap * sizeof(*grown));
			if (grown == NULL) {
				free(path);
				goto cleanup;
			}
			names = grown;
		}
		names[n++] = path;
	}
	if (n == 0) {
		zdm_error_set(err, "directory %s holds no .plan file", dir);
		snprintf(
			err->hint, sizeof(err->hint),
			"compile its .zdm files first: zdmc compile X.zdm -o X.plan");
		goto cleanup;
	}
	qsort(names, n, sizeof(*names), seq_cmp_names);
	for (i = 0; i < n; i++) {
		seq_item *it = seq_push(s);

		if (it == NULL)
			goto cleanup;
		it->path = names[i];
		names[i] = NULL;
	}
	rc = 0;
cleanup:
	if (rc != 0 && err->message[0] == '\0')
		zdm_error_set(err, "out of memory listing %s", dir);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/*
 * The plans named on the command line, directories expanded, each loaded.
 * Every plan that cannot be read is reported, not only the first.
 */
static int
seq_load(seq *s, const char *const *args, size_t nargs)
{
	zdm_error err;
	char errbuf[1024];
	size_t i, j;
	int rc = 0;

	for (i = 0; i < nargs; i++) {
		zdm_error_clear(&err);
		if (seq_is_dir(args[i])) {
			if (seq_add_dir(s, args[i], &err) != 0) {
				zdm_error_print(&err, stderr);
				rc = -1;
			}
			continue;
		}
		seq_item *it = seq_push(s);

		if (it == NULL || (it->path = strdup(args[i])) == NULL) {
			fprintf(stderr, "zdm: out of memory\n");
			return -1;
		}
	}
	for (i = 0; i < s->n; i++) {
		seq_item *it = &s->items[i];

		if (zdm_plan_load(&it->plan, it->path, errbuf,
		                  sizeof(errbuf)) != 0) {
			fprintf(stderr, "zdm: %s\n", errbuf);
			rc = -1;
			continue;
		}
		it->migration = strdup(it->plan->migration);
		if (it->migration == NULL) {
			fprintf(stderr, "zdm: out of memory\n");
			return -1;
		}
	}
	if (rc != 0)
		return rc;
	for (i = 0; i < s->n; i++)
		for (j = 0; j < i; j++)
			if (strcmp(s->items[i].migration,
			           s->items[j].migration) == 0) {
				zdm_error_clear(&err);
				zdm_error_set(
					&err,
					"%s and %s are both of migration %s",
					s->items[j].path, s->items[i].path,
					s->items[i].migration);
				snprintf(err.hint, sizeof(err.hint),
				         "each migration is applied once: name "
				         "each plan's migration differently");
				zdm_error_print(&err, stderr);
				rc = -1;
			}
	return rc;
}

static char *
seq_dup_value(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
	                                  : strdup(PQgetvalue(res, row, col));
}

static void
seq_fill_row(seq_item *it, PGresult *res, int row)
{
	it->state = seq_dup_value(res, row, 1);
	it->sha = seq_dup_value(res, row, 2);
	it->step = seq_dup_value(res, row, 3);
	it->phase = seq_dup_value(res, row, 4);
	it->gate = seq_dup_value(res, row, 5);
	it->started = seq_dup_value(res, row, 6);
	it->finished = seq_dup_value(res, row, 7);
	it->steps_done = strtol(PQgetvalue(res, row, 8), NULL, 10);
	it->steps_total = strtol(PQgetvalue(res, row, 9), NULL, 10);
}

/*
 * The journal's rows: into the plans' items by migration, or, with all,
 * one new item per row.  A database without the journal has no rows.
 */
static int
seq_read_journal(seq *s, const char *conninfo, bool all, zdm_error *err)
{
	PGconn *conn;
	PGresult *res = NULL;
	int rc = -1, row;
	size_t i;

	conn = zdm_conn_open(conninfo, "status", NULL, err);
	if (conn == NULL)
		return -1;
	/* status never creates the journal: none yet means nothing started */
	switch (zdm_journal_exists(conn, err)) {
	case 0:
		rc = 0;
		goto cleanup;
	case 1:
		break;
	default:
		goto cleanup;
	}
	if (zdm_conn_query(conn, seq_journal_sql, 0, NULL, &res, err) != 0)
		goto cleanup;
	for (row = 0; row < PQntuples(res); row++) {
		const char *migration = PQgetvalue(res, row, 0);

		if (all) {
			seq_item *it = seq_push(s);

			if (it == NULL ||
			    (it->migration = strdup(migration)) == NULL) {
				zdm_error_set(err, "out of memory");
				goto cleanup;
			}
			seq_fill_row(it, res, row);
			continue;
		}
		for (i = 0; i < s->n; i++)
			if (strcmp(s->items[i].migration, migration) == 0)
				seq_fill_row(&s->items[i], res, row);
	}
	rc = 0;
cleanup:
	if (res)
		PQclear(res);
	PQfinish(conn);
	return rc;
}

static bool
seq_is_done(const seq_item *it)
{
	return it->state != NULL && strcmp(it->state, "done") == 0;
}

/* Started and not undone: a later plan in this state fixes the order. */
static bool
seq_has_started(const seq_item *it)
{
	return it->state != NULL && strcmp(it->state, "rolled_back") != 0;
}

static bool
seq_same_plan(const seq_item *it)
{
	return it->sha == NULL || strcmp(it->sha, it->plan->plan_sha256) == 0;
}

/*
 * What the journal says against the plan files: every problem printed,
 * -1 when there is one.
 */
static int
seq_check_journal(const seq *s)
{
	zdm_error err;
	size_t i, j;
	int rc = 0;

	for (i = 0; i < s->n; i++) {
		const seq_item *it = &s->items[i];

		if (seq_same_plan(it))
			continue;
		zdm_error_clear(&err);
		if (seq_is_done(it)) {
			zdm_error_set(
				&err,
				"%s: migration %s is done, but with another plan (plan_sha256 %.12s... in the journal); this file is %.12s...",
				it->path, it->migration, it->sha,
				it->plan->plan_sha256);
			snprintf(
				err.hint, sizeof(err.hint),
				"the file was changed after it was applied: restore it as it was (the journal holds the plan as applied), and put a further change in a new migration");
		} else {
			zdm_error_set(
				&err,
				"%s: migration %s was started with a different plan (plan_sha256 %.12s...); this file is %.12s...",
				it->path, it->migration, it->sha,
				it->plan->plan_sha256);
			snprintf(
				err.hint, sizeof(err.hint),
				"a migration in flight runs the plan it started with; finish or roll back with that plan first");
		}
		zdm_error_print(&err, stderr);
		rc = -1;
	}
	for (i = 0; i < s->n; i++) {
		if (seq_is_done(&s->items[i]))
			continue;
		for (j = i + 1; j < s->n; j++) {
			if (!seq_has_started(&s->items[j]))
				continue;
			zdm_error_clear(&err);
			zdm_error_set(
				&err,
				"the plans are out of order: %s (migration %s) is %s, but %s after it (migration %s) is already %s",
				s->items[i].path, s->items[i].migration,
				s->items[i].state ? s->items[i].state
						  : "not started",
				s->items[j].path, s->items[j].migration,
				s->items[j].state);
			snprintf(
				err.hint, sizeof(err.hint),
				"a sequence applies its plans in name order; rename %s to sort after %s, or apply it alone with zdm apply %s",
				s->items[i].path, s->items[j].path,
				s->items[i].path);
			zdm_error_print(&err, stderr);
			rc = -1;
			break;
		}
	}
	return rc;
}

/* Does the plan have a gate of that name? */
static bool
seq_plan_has_gate(const zdm_plan *plan, const char *gate)
{
	size_t k;

	for (k = 0; k < plan->nsteps; k++)
		if (plan->steps[k].kind == ZDM_STEP_GATE &&
		    strcmp(plan->steps[k].gate, gate) == 0)
			return true;
	return false;
}

/*
 * --approve names gates for the whole sequence: each plan gets those it
 * has (a rename has no contract gate), and a name that no plan has is a
 * mistake worth refusing before anything runs.
 */
static int
seq_check_approvals(const seq *s, const zdm_apply_opts *opts)
{
	size_t g, i;
	int rc = 0;

	for (g = 0; g < opts->napprove; g++) {
		bool known = false;

		for (i = 0; i < s->n && !known; i++)
			known = seq_plan_has_gate(s->items[i].plan,
			                          opts->approve[g]);
		if (!known) {
			fprintf(stderr,
			        "zdm: error: --approve %s: no plan of the sequence has a gate of that name\n",
			        opts->approve[g]);
			rc = -1;
		}
	}
	return rc;
}

/* The end of a stop line: the plans from index first on, not started. */
static void
seq_print_rest(const seq *s, size_t first, FILE *out)
{
	size_t j;

	if (first >= s->n) {
		fputs("; it was the last plan of the sequence\n", out);
		return;
	}
	fputs("; not started: ", out);
	for (j = first; j < s->n; j++)
		fprintf(out, "%s%s", j > first ? ", " : "", s->items[j].path);
	fputc('\n', out);
}

static const char *
seq_why(int rc)
{
	switch (rc) {
	case ZDM_EXIT_GATE:
		return "paused at a gate that needs approval";
	case ZDM_EXIT_STOPPED:
		return "stopped, an operator is needed";
	case ZDM_EXIT_USAGE:
		return "refused, nothing of it touched";
	default:
		return "failed";
	}
}

int
zdm_sequence_apply(const char *const *args, size_t nargs,
                   const zdm_apply_opts *opts)
{
	seq s;
	zdm_error err;
	zdm_apply_opts one;
	char **approve = NULL;
	size_t i, g, skipped = 0, applied = 0;
	int rc = ZDM_EXIT_USAGE;

	memset(&s, 0, sizeof(s));
	zdm_error_clear(&err);
	if (seq_load(&s, args, nargs) != 0 ||
	    seq_check_approvals(&s, opts) != 0)
		goto cleanup;
	if (seq_read_journal(&s, opts->conninfo, false, &err) != 0) {
		zdm_error_print(&err, stderr);
		rc = ZDM_EXIT_FAILED;
		goto cleanup;
	}
	if (seq_check_journal(&s) != 0)
		goto cleanup;
	approve = calloc(opts->napprove + 1, sizeof(*approve));
	if (approve == NULL) {
		rc = ZDM_EXIT_FAILED;
		goto cleanup;
	}
	printf("sequence of %zu plans\n", s.n);
	for (i = 0; i < s.n; i++) {
		seq_item *it = &s.items[i];

		if (seq_is_done(it)) {
			printf("sequence: %s (migration %s), %zu of %zu: already done, skipped\n",
			       it->path, it->migration, i + 1, s.n);
			skipped++;
			continue;
		}
		/* a signal between two plans: the next one is not begun */
		if (zdm_interrupted) {
			fprintf(stderr, "zdm: sequence interrupted before %s",
			        it->path);
			seq_print_rest(&s, i, stderr);
			rc = ZDM_EXIT_STOPPED;
			goto cleanup;
		}
		printf("sequence: %s (migration %s), %zu of %zu\n", it->path,
		       it->migration, i + 1, s.n);
		fflush(stdout);
		one = *opts;
		one.plan_path = it->path;
		one.approve = approve;
		one.napprove = 0;
		for (g = 0; g < opts->napprove; g++)
			if (seq_plan_has_gate(it->plan, opts->approve[g]))
				approve[one.napprove++] = opts->approve[g];
		rc = zdm_apply(it->plan, &one);
		fflush(stdout);
		if (rc != ZDM_EXIT_OK) {
			FILE *out = rc == ZDM_EXIT_GATE ? stdout : stderr;

			fprintf(out,
			        "zdm: sequence stopped at %s (migration %s): %s (exit %d)",
			        it->path, it->migration, seq_why(rc), rc);
			seq_print_rest(&s, i + 1, out);
			if (rc == ZDM_EXIT_GATE) {
				/* the runner's line continues that plan only */
				fputs("Once it is approved, the sequence "
				      "continues with:\n    zdm apply",
				      out);
				for (g = 0; g < nargs; g++)
					fprintf(out, " %s", args[g]);
				fputc('\n', out);
			}
			goto cleanup;
		}
		applied++;
	}
	printf("sequence done: %zu migrations, %zu applied by this run, %zu already done\n",
	       s.n, applied, skipped);
	rc = ZDM_EXIT_OK;
cleanup:
	free(approve);
	seq_free(&s);
	return rc;
}

/* ---- status -------------------------------------------------------------- */

static const char *
seq_or_dash(const char *value)
{
	return value ? value : "-";
}

/* The STATE column: the journal's state, and what stands out about it. */
static void
seq_state_text(const seq_item *it, char *buf, size_t len)
{
	if (it->state == NULL)
		snprintf(buf, len, "not started");
	else if (it->plan && !seq_same_plan(it))
		snprintf(buf, len, "%s (another plan!)", it->state);
	else if (it->gate)
		snprintf(buf, len, "%s at %s", it->state, it->gate);
	else
		snprintf(buf, len, "%s", it->state);
}

static void
seq_step_text(const seq_item *it, char *buf, size_t len)
{
	if (it->state == NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%ld/%ld %s%s%s%s", it->steps_done,
		         it->steps_total, seq_or_dash(it->step),
		         it->phase ? " (" : "", it->phase ? it->phase : "",
		         it->phase ? ")" : "");
}

#define SEQ_NCOLS 6

static void
seq_print_table(const seq *s, bool with_plans)
{
	static const char *const heads[SEQ_NCOLS] = {
		"PLAN", "MIGRATION", "STATE", "STEPS", "STARTED", "FINISHED"};
	char state[128], step[192];
	const char *cells[SEQ_NCOLS];
	int width[SEQ_NCOLS];
	size_t i;
	int c, pass;

	for (c = 0; c < SEQ_NCOLS; c++)
		width[c] = (int)strlen(heads[c]);
	/* pass 0 measures, pass 1 prints: the cells are rebuilt, not kept */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (c = with_plans ? 0 : 1; c < SEQ_NCOLS; c++)
				printf("%-*s%s",
				       c == SEQ_NCOLS - 1 ? 0 : width[c],
				       heads[c],
				       c == SEQ_NCOLS - 1 ? "\n" : "  ");
		}
		for (i = 0; i < s->n; i++) {
			const seq_item *it = &s->items[i];

			seq_state_text(it, state, sizeof(state));
			seq_step_text(it, step, sizeof(step));
			cells[0] = seq_or_dash(it->path);
			cells[1] = it->migration;
			cells[2] = state;
			cells[3] = step;
			cells[4] = seq_or_dash(it->started);
			cells[5] = seq_or_dash(it->finished);
			for (c = with_plans ? 0 : 1; c < SEQ_NCOLS; c++) {
				if (pass == 0) {
					if ((int)strlen(cells[c]) > width[c])
						width[c] =
							(int)strlen(cells[c]);
					continue;
				}
				printf("%-*s%s",
				       c == SEQ_NCOLS - 1 ? 0 : width[c],
				       cells[c],
				       c == SEQ_NCOLS - 1 ? "\n" : "  ");
			}
		}
	}
}

static json_t *
seq_json_str(const char *value)
{
	json_t *str = value ? json_string(value) : NULL;

	return str ? str : json_null();
}

static int
seq_print_json(const seq *s)
{
	json_t *all = json_array(), *entry;
	char *text;
	size_t i;

	if (all == NULL)
		return -1;
	for (i = 0; i < s->n; i++) {
		const seq_item *it = &s->items[i];

		entry = json_pack(
			"{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			"plan", seq_json_str(it->path), "migration",
			seq_json_str(it->migration), "state",
			seq_json_str(it->state ? it->state : "not_started"),
			"same_plan",
			it->state ? json_boolean(seq_same_plan(it))
				  : json_null(),
			"current_step", seq_json_str(it->step), "phase",
			seq_json_str(it->phase), "waiting_gate",
			seq_json_str(it->gate), "steps_done",
			json_integer(it->steps_done), "steps_total",
			json_integer(it->steps_total), "started_at",
			seq_json_str(it->started), "finished_at",
			seq_json_str(it->finished));
		if (entry == NULL || json_array_append_new(all, entry) != 0) {
			json_decref(all);
			return -1;
		}
	}
	text = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(all);
	if (text == NULL)
		return -1;
	puts(text);
	free(text);
	return 0;
}

int
zdm_sequence_status(const char *const *args, size_t nargs, const char *conninfo,
                    bool json)
{
	seq s;
	zdm_error err;
	int rc = ZDM_EXIT_USAGE;

	memset(&s, 0, sizeof(s));
	zdm_error_clear(&err);
	if (nargs > 0 && seq_load(&s, args, nargs) != 0)
		goto cleanup;
	if (seq_read_journal(&s, conninfo, nargs == 0, &err) != 0) {
		zdm_error_print(&err, stderr);
		rc = ZDM_EXIT_FAILED;
		goto cleanup;
	}
	rc = ZDM_EXIT_OK;
	if (json) {
		if (seq_print_json(&s) != 0) {
			fprintf(stderr, "zdm: out of memory\n");
			rc = ZDM_EXIT_FAILED;
		}
	} else if (s.n == 0)
		printf("no zdm migration has run in this database\n");
	else
		seq_print_table(&s, nargs > 0);
cleanup:
	seq_free(&s);
	return rc;
}
