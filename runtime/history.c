/*
 * history.c -- the journal's readable copy, committed to git with libgit2.
 *
 * Each record reads one migration's state from the journal (a read-only,
 * repeatable-read transaction on the caller's connection, so the steps, the
 * backfill checkpoints and the events are one snapshot), writes it as
 * <migration>/state.yaml next to <migration>/plan.yaml (the plan as applied,
 * byte for byte from zdm.migrations.plan), and commits a new root tree on
 * top of the tip of refs/zdm/history: the parent's root tree with only that
 * migration's subtree replaced, so other migrations' records are kept.
 *
 * Invariants:
 * - Only objects and the one ref are written.  The index, the working tree,
 *   HEAD and every other ref stay as they are; no hook runs (libgit2 runs
 *   none).
 * - The ref moves by compare-and-swap (git_reference_create_matching with
 *   the tip the commit was built on, or a create that fails if the ref
 *   appeared meanwhile).  A runner that loses the race rebuilds its commit
 *   on the new tip and tries again, so concurrent runners lose nothing.
 * - state.yaml is a pure function of the journal: no clock, no host, no
 *   session setting (timestamps are rendered in UTC by the server).  That is
 *   what lets `zdm history sync` compare bytes to find what is missing.
 * - Nothing derived from a connection string is written: this file never
 *   sees one except to hand it to zdm_conn_open.
 * - Recording failures are returned, never fatal: the journal stays the
 *   source of truth and sync repairs the copy later.
 * - A --history repository is created whole or not at all (built under a
 *   temp name, renamed into place), so runners that start together never
 *   see one half made.  Objects and the ref are fsynced: a commit the ref
 *   points at survives a crash of the machine.
 */
#include "history.h"
#include "journal.h"
#include "plan_read.h"
#include "strbuf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <git2.h>
#include <yaml.h>

/* Author and committer of every history commit: the record is the tool's;
 * who approved what is in state.yaml and in the message. */
#define HISTORY_SIGNATURE_NAME "zdm"
#define HISTORY_SIGNATURE_EMAIL "zdm@localhost"
/* Compare-and-swap attempts on refs/zdm/history before giving up (with the
 * backoff, a few seconds at most). */
#define HISTORY_CAS_ATTEMPTS 50

struct zdm_history {
	git_repository *repo;
	char *where; /* the repository's path, for messages */
};

/* ---- errors -------------------------------------------------------------- */

/* "what: libgit2's message" */
static void
history_git_error(zdm_error *err, const char *what)
{
	const git_error *e = git_error_last();

	zdm_error_set(err, "%s: %s", what,
	              e && e->message ? e->message : "unknown libgit2 error");
}

/* ---- opening ------------------------------------------------------------- */

static bool
history_dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *ent;
	bool empty = true;

	if (d == NULL)
		return false;
	while ((ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") != 0 &&
		    strcmp(ent->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

/* rm -r path, for a temp repository that lost the race to another. */
static void
history_remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *ent;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((ent = readdir(d)) != NULL) {
			size_t len;
			char *child;

			if (strcmp(ent->d_name, ".") == 0 ||
			    strcmp(ent->d_name, "..") == 0)
				continue;
			len = strlen(path) + strlen(ent->d_name) + 2;
			child = malloc(len);
			if (child == NULL)
				break;
			snprintf(child, len, "%s/%s", path, ent->d_name);
			history_remove_tree(child);
			free(child);
		}
		closedir(d);
		(void)rmdir(path);
		return;
	}
	(void)unlink(path);
}

/*
 * A new bare repository at dir (missing or an empty directory), made
 * whole before anyone can see it: created under a temp name beside it,
 * then renamed into place.  Two runners creating the same history at once
 * both succeed: the rename of the one that comes second fails, and it opens
 * the winner's.
 */
static int
history_create_dir(git_repository **out, const char *dir, zdm_error *err)
{
	git_repository *tmp_repo = NULL;
	size_t n = strlen(dir), len = n + 40;
	char *tmp = malloc(len);
	int rc = -1;

	if (tmp == NULL) {
		zdm_error_set(err, "out of memory");
		return -1;
	}
	while (n > 1 && dir[n - 1] == '/') /* "hist/": the sibling of hist */
		n--;
	snprintf(tmp, len, "%.*s.zdm-new-%ld", (int)n, dir, (long)getpid());
	history_remove_tree(tmp); /* a leftover of a crashed run of ours */
	if (git_repository_init(&tmp_repo, tmp, 1) < 0) {
		history_git_error(err, "cannot create the history repository");
		goto cleanup;
	}
	git_repository_free(tmp_repo);
	if (rename(tmp, dir) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
		zdm_error_set(err,
		              "cannot create the history repository %s: %s",
		              dir, strerror(errno));
		goto cleanup;
	}
	if (git_repository_open_ext(out, dir, GIT_REPOSITORY_OPEN_NO_SEARCH,
	                            NULL) < 0) {
		history_git_error(err, "cannot open the history repository");
		goto cleanup;
	}
	rc = 0;
cleanup:
	history_remove_tree(tmp); /* gone after a rename; else the loser's */
	free(tmp);
	return rc;
}

/*
 * --history DIR: the repository at DIR (a work tree or a bare repository),
 * not one above it.  With create, a missing DIR (or an empty one) becomes a
 * new bare repository: the history needs no work tree.  An existing DIR with
 * files in it that is not a repository is refused rather than littered.
 */
static int
history_open_dir(git_repository **out, const char *dir, bool create,
                 zdm_error *err)
{
	struct stat st;
	int rc;

	rc = git_repository_open_ext(out, dir, GIT_REPOSITORY_OPEN_NO_SEARCH,
	                             NULL);
	if (rc == 0)
		return 0;
	if (rc != GIT_ENOTFOUND) {
		history_git_error(err, "cannot open the history repository");
		return -1;
	}
	if (!create) {
		zdm_error_set(err, "%s is not a git repository", dir);
		return -1;
	}
	if (stat(dir, &st) == 0 &&
	    (!S_ISDIR(st.st_mode) || !history_dir_is_empty(dir))) {
		zdm_error_set(
			err,
			"%s exists and is not a git repository; give --history an existing repository or a new path",
			dir);
		return -1;
	}
	return history_create_dir(out, dir, err);
}

/* The repository holding start (a directory), found upward; what and hint
 * make the message when there is none. */
static int
history_discover(git_repository **out, const char *start, const char *what,
                 const char *hint, zdm_error *err)
{
	git_buf found = {NULL, 0, 0};
	int rc;

	rc = git_repository_discover(&found, start, 0, NULL);
	if (rc == GIT_ENOTFOUND) {
		zdm_error_set(err, "%s is not in a git repository; %s", what,
		              hint);
		goto cleanup;
	}
	if (rc < 0 || (rc = git_repository_open(out, found.ptr)) < 0) {
		history_git_error(err, "cannot open the git repository");
		rc = -1;
	}
cleanup:
	git_buf_dispose(&found);
	return rc < 0 ? -1 : 0;
}

/* The directory of plan_path, made absolute (NULL: the current
 * directory). */
static char *
history_start_dir(const char *plan_path, zdm_error *err)
{
	char *cwd = NULL, *abs = NULL, *slash;
	size_t len;

	cwd = getcwd(NULL, 0);
	if (cwd == NULL) {
		zdm_error_set(err, "cannot tell the current directory: %s",
		              strerror(errno));
		return NULL;
	}
	if (plan_path == NULL)
		return cwd;
	len = strlen(cwd) + strlen(plan_path) + 2;
	abs = malloc(len);
	if (abs == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	if (plan_path[0] == '/')
		snprintf(abs, len, "%s", plan_path);
	else
		snprintf(abs, len, "%s/%s", cwd, plan_path);
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0'; /* a plan in / */
	else
		*slash = '\0';
cleanup:
	free(cwd);
	return abs;
}

static int
history_open(zdm_history **out, const char *history_dir, const char *plan_path,
             bool create, zdm_error *err)
{
	zdm_history *h = NULL;
	char *start = NULL;
	const char *where;
	int rc = -1;

	*out = NULL;
	if (git_libgit2_init() < 0) {
		history_git_error(err, "cannot initialize libgit2");
		return -1;
	}
	/* a commit the ref points at must survive a crash of the machine */
	(void)git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	if (history_dir != NULL) {
		if (history_open_dir(&h->repo, history_dir, create, err) != 0)
			goto cleanup;
	} else {
		start = history_start_dir(plan_path, err);
		if (start == NULL ||
		    history_discover(
			    &h->repo, start,
			    plan_path ? plan_path : "the current directory",
			    plan_path
				    ? "give --history DIR to record the run"
				    : "run this in the repository that holds the history, or give --history DIR",
			    err) != 0)
			goto cleanup;
	}
	where = git_repository_workdir(h->repo);
	if (where == NULL)
		where = git_repository_path(h->repo);
	h->where = strdup(where ? where : "?");
	if (h->where == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	*out = h;
	h = NULL;
	rc = 0;
cleanup:
	free(start);
	if (h != NULL)
		zdm_history_close(h);
	else if (rc != 0)
		git_libgit2_shutdown();
	return rc;
}

int
zdm_history_open(zdm_history **out, const char *history_dir,
                 const char *plan_path, zdm_error *err)
{
	return history_open(out, history_dir, plan_path, true, err);
}

void
zdm_history_close(zdm_history *history)
{
	if (history == NULL)
		return;
	git_repository_free(history->repo);
	free(history->where);
	free(history);
	git_libgit2_shutdown();
}

/* ---- state.yaml -------------------------------------------------------- */

typedef struct history_yaml {
	yaml_emitter_t emitter;
	zdm_strbuf out;
	bool failed;
} history_yaml;

static int
history_yaml_write(void *data, unsigned char *bytes, size_t size)
{
	history_yaml *y = data;

	return zdm_strbuf_put(&y->out, (const char *)bytes, size) == 0;
}

static void
history_yaml_emit(history_yaml *y, yaml_event_t *event, int made)
{
	if (!made) {
		y->failed = true;
		return;
	}
	if (y->failed) {
		yaml_event_delete(event);
		return;
	}
	if (!yaml_emitter_emit(&y->emitter, event))
		y->failed = true; /* the emitter deleted the event */
}

/* A copy with every byte that is not part of valid UTF-8 replaced by '?':
 * libyaml refuses invalid UTF-8, and a database in another encoding must not
 * stop the record. */
static char *
history_utf8_copy(const char *s)
{
	size_t n = strlen(s), i = 0;
	unsigned char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, s, n + 1);
	while (i < n) {
		unsigned char c = out[i];
		size_t width = c < 0x80             ? 1
		               : (c & 0xe0) == 0xc0 ? 2
		               : (c & 0xf0) == 0xe0 ? 3
		               : (c & 0xf8) == 0xf0 ? 4
		                                    : 0;
		unsigned long cp = width == 2   ? c & 0x1fu
		                   : width == 3 ? c & 0x0fu
		                                : c & 0x07u;
		size_t k;
		bool ok = width > 0 && i + width <= n;

		for (k = 1; ok && k < width; k++) {
			if ((out[i + k] & 0xc0) != 0x80)
				ok = false;
			else
				cp = (cp << 6) | (out[i + k] & 0x3fu);
		}
		if (ok && width > 1 &&
		    ((width == 2 && cp < 0x80) || (width == 3 && cp < 0x800) ||
		     (width == 4 && cp < 0x10000) || cp > 0x10ffff ||
		     (cp >= 0xd800 && cp <= 0xdfff)))
			ok = false;
		if (!ok) {
			out[i++] = '?';
			continue;
		}
		i += width;
	}
	return (char *)out;
}

/* True when a plain scalar with this text would be read back as something
 * other than a string (null, a boolean, a number, YAML 1.1's sexagesimals):
 * such strings are emitted quoted. */
static bool
history_plain_resolves(const char *s)
{
	static const char *const words[] = {
		"null", "~",  "true", "false", "yes",
		"no",   "on", "off",  "y",     "n",
	};
	char *end;
	size_t i;

	if (*s == '\0' || *s == '.')
		return true;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	(void)strtod(s, &end);
	if (*end == '\0')
		return true;
	if ((*s >= '0' && *s <= '9') || *s == '+' || *s == '-')
		return strspn(s, "0123456789:._+-eExXoOabcdefABCDEF") ==
		       strlen(s);
	return false;
}

static void
history_yaml_scalar(history_yaml *y, const char *text, bool plain_implicit,
                    yaml_scalar_style_t style)
{
	yaml_event_t event;
	size_t len = strlen(text);

	if (y->failed)
		return;
	if (len > INT_MAX) {
		y->failed = true;
		return;
	}
	history_yaml_emit(y, &event,
	                  yaml_scalar_event_initialize(
				  &event, NULL, NULL, (const yaml_char_t *)text,
				  (int)len, plain_implicit, 1, style));
}

static void
history_yaml_key(history_yaml *y, const char *key)
{
	history_yaml_scalar(y, key, true, YAML_PLAIN_SCALAR_STYLE);
}

static void
history_yaml_null(history_yaml *y)
{
	history_yaml_scalar(y, "null", true, YAML_PLAIN_SCALAR_STYLE);
}

/* A string (NULL: null).  One line: plain, quoted by libyaml when needed;
 * several lines: a literal block, unless its ending needs escapes. */
static void
history_yaml_string(history_yaml *y, const char *value)
{
	yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
	char *text;
	size_t len;

	if (value == NULL) {
		history_yaml_null(y);
		return;
	}
	text = history_utf8_copy(value);
	if (text == NULL) {
		y->failed = true;
		return;
	}
	len = strlen(text);
	if (strchr(text, '\r') != NULL ||
	    (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	else if (strchr(text, '\n') != NULL)
		style = YAML_LITERAL_SCALAR_STYLE;
	history_yaml_scalar(y, text, !history_plain_resolves(text), style);
	free(text);
}

/* An integer as the server printed it (NULL: null). */
static void
history_yaml_number(history_yaml *y, const char *value)
{
	if (value == NULL || strspn(value, "-0123456789") != strlen(value) ||
	    value[0] == '\0')
		history_yaml_string(y, value);
	else
		history_yaml_scalar(y, value, true, YAML_PLAIN_SCALAR_STYLE);
}

static void
history_yaml_map_start(history_yaml *y)
{
	yaml_event_t event;

	history_yaml_emit(
		y, &event,
		yaml_mapping_start_event_initialize(&event, NULL, NULL, 1,
	                                            YAML_BLOCK_MAPPING_STYLE));
}

static void
history_yaml_map_end(history_yaml *y)
{
	yaml_event_t event;

	history_yaml_emit(y, &event, yaml_mapping_end_event_initialize(&event));
}

static void
history_yaml_seq_start(history_yaml *y)
{
	yaml_event_t event;

	history_yaml_emit(
		y, &event,
		yaml_sequence_start_event_initialize(
			&event, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static void
history_yaml_seq_end(history_yaml *y)
{
	yaml_event_t event;

	history_yaml_emit(y, &event,
	                  yaml_sequence_end_event_initialize(&event));
}

/* A result's field, NULL when SQL NULL. */
static const char *
history_field(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* key: string value of res[row][col] */
static void
history_yaml_kv(history_yaml *y, const char *key, const PGresult *res, int row,
                int col)
{
	history_yaml_key(y, key);
	history_yaml_string(y, res ? history_field(res, row, col) : NULL);
}

static void
history_yaml_kn(history_yaml *y, const char *key, const PGresult *res, int row,
                int col)
{
	history_yaml_key(y, key);
	history_yaml_number(y, res ? history_field(res, row, col) : NULL);
}

/* ---- reading the journal ------------------------------------------------- */

/*
 * The queries take the migration as $1 and the timestamp format as $2:
 * timestamps are rendered in UTC with milliseconds, whatever the session's
 * TimeZone, so the same journal always gives the same bytes.
 */
static const char history_ts_format[] = "YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"";

static const char history_migration_sql[] =
	"SELECT state, plan_sha256,"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', started_at), $2),"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', updated_at), $2),"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', finished_at), $2),"
	" current_step, waiting_gate, last_error, last_sqlstate, plan"
	" FROM zdm.migrations WHERE migration = $1";

static const char history_steps_sql[] =
	"SELECT step_id, phase, state, attempts,"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', started_at), $2),"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', finished_at), $2),"
	" rows, result, error, sqlstate"
	" FROM zdm.steps WHERE migration = $1 ORDER BY position, step_id";

/* No rows: sums are NULL, and so is every field of backfill.  (Only $1.) */
static const char history_backfill_sql[] =
	"SELECT sum(rows), sum(next_page - first_page), sum(end_page - first_page)"
	" FROM zdm.backfill WHERE migration = $1";

static const char history_approvals_sql[] =
	"SELECT gate, approved_by,"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', approved_at), $2)"
	" FROM zdm.approvals WHERE migration = $1 ORDER BY approved_at, gate";

/* The newest 50 events, oldest of them first: enough to see what led to
 * the state, without growing every record with the whole run. */
static const char history_events_sql[] =
	"SELECT pg_catalog.to_char(pg_catalog.timezone('UTC', e.at), $2),"
	" e.step_id, e.event, e.message"
	" FROM (SELECT id, at, step_id, event, message FROM zdm.events"
	"       WHERE migration = $1 ORDER BY id DESC LIMIT 50) e"
	" ORDER BY e.id";

/* Earlier attempts of the migration (zdm.attempts, when the journal has
 * it), oldest first, each with the last step that failed and its error:
 * what made someone roll it back.  No rows: state.yaml is as before
 * attempts existed, so `zdm history sync` finds nothing new in records of
 * migrations that ran once. */
static const char history_attempts_exist_sql[] =
	"SELECT pg_catalog.to_regclass('zdm.attempts') IS NOT NULL";
static const char history_attempts_sql[] =
	"SELECT a.attempt, a.plan_sha256, a.state,"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', a.started_at), $2),"
	" pg_catalog.to_char(pg_catalog.timezone('UTC', a.replaced_at), $2),"
	" f.value->>'step_id', f.value->>'error', f.value->>'sqlstate'"
	" FROM zdm.attempts a LEFT JOIN LATERAL"
	"  (SELECT e.value FROM pg_catalog.jsonb_array_elements(a.steps)"
	"     WITH ORDINALITY AS e(value, n)"
	"   WHERE e.value->>'error' IS NOT NULL ORDER BY e.n DESC LIMIT 1) f"
	"  ON true"
	" WHERE a.migration = $1 ORDER BY a.attempt";

typedef struct history_state {
	char *yaml; /* state.yaml */
	size_t yaml_len;
	char *plan; /* plan.yaml; NULL when the journal has no row yet */
	size_t plan_len;
	char state[32]; /* the migration's state, "not_started" without a row */
} history_state;

static void
history_state_free(history_state *st)
{
	free(st->yaml);
	free(st->plan);
	memset(st, 0, sizeof(*st));
}

static void
history_state_emit(history_yaml *y, const char *migration, PGresult *mig,
                   PGresult *steps, PGresult *backfill, PGresult *approvals,
                   PGresult *events, PGresult *attempts)
{
	int nattempts = attempts ? PQntuples(attempts) : 0;
	char number[32];

	yaml_event_t event;
	int row;

	history_yaml_emit(
		y, &event,
		yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING));
	history_yaml_emit(y, &event,
	                  yaml_document_start_event_initialize(&event, NULL,
	                                                       NULL, NULL, 1));
	history_yaml_map_start(y);
	history_yaml_key(y, "migration");
	history_yaml_string(y, migration);
	history_yaml_key(y, "state");
	history_yaml_string(y, mig ? PQgetvalue(mig, 0, 0) : "not_started");
	history_yaml_kv(y, "plan_sha256", mig, 0, 1);
	if (nattempts > 0) {
		snprintf(number, sizeof(number), "%d", nattempts + 1);
		history_yaml_key(y, "attempt");
		history_yaml_number(y, number);
	}
	history_yaml_kv(y, "started_at", mig, 0, 2);
	history_yaml_kv(y, "updated_at", mig, 0, 3);
	history_yaml_kv(y, "finished_at", mig, 0, 4);
	history_yaml_kv(y, "current_step", mig, 0, 5);
	history_yaml_kv(y, "waiting_gate", mig, 0, 6);
	history_yaml_key(y, "last_error");
	history_yaml_map_start(y);
	history_yaml_kv(y, "message", mig, 0, 7);
	history_yaml_kv(y, "sqlstate", mig, 0, 8);
	history_yaml_map_end(y);

	history_yaml_key(y, "steps");
	history_yaml_seq_start(y);
	for (row = 0; steps && row < PQntuples(steps); row++) {
		history_yaml_map_start(y);
		history_yaml_kv(y, "id", steps, row, 0);
		history_yaml_kv(y, "phase", steps, row, 1);
		history_yaml_kv(y, "state", steps, row, 2);
		history_yaml_kn(y, "attempts", steps, row, 3);
		history_yaml_kv(y, "started_at", steps, row, 4);
		history_yaml_kv(y, "finished_at", steps, row, 5);
		history_yaml_kn(y, "rows", steps, row, 6);
		history_yaml_kv(y, "result", steps, row, 7);
		history_yaml_kv(y, "error", steps, row, 8);
		history_yaml_kv(y, "sqlstate", steps, row, 9);
		history_yaml_map_end(y);
	}
	history_yaml_seq_end(y);

	history_yaml_key(y, "backfill");
	history_yaml_map_start(y);
	history_yaml_kn(y, "rows", backfill, 0, 0);
	history_yaml_kn(y, "pages_done", backfill, 0, 1);
	history_yaml_kn(y, "pages_total", backfill, 0, 2);
	history_yaml_map_end(y);

	history_yaml_key(y, "approvals");
	history_yaml_seq_start(y);
	for (row = 0; approvals && row < PQntuples(approvals); row++) {
		history_yaml_map_start(y);
		history_yaml_kv(y, "gate", approvals, row, 0);
		history_yaml_kv(y, "approved_by", approvals, row, 1);
		history_yaml_kv(y, "approved_at", approvals, row, 2);
		history_yaml_map_end(y);
	}
	history_yaml_seq_end(y);

	history_yaml_key(y, "events");
	history_yaml_seq_start(y);
	for (row = 0; events && row < PQntuples(events); row++) {
		history_yaml_map_start(y);
		history_yaml_kv(y, "at", events, row, 0);
		history_yaml_kv(y, "step", events, row, 1);
		history_yaml_kv(y, "event", events, row, 2);
		history_yaml_kv(y, "message", events, row, 3);
		history_yaml_map_end(y);
	}
	history_yaml_seq_end(y);

	if (nattempts > 0) {
		history_yaml_key(y, "earlier_attempts");
		history_yaml_seq_start(y);
		for (row = 0; row < nattempts; row++) {
			history_yaml_map_start(y);
			history_yaml_kn(y, "attempt", attempts, row, 0);
			history_yaml_kv(y, "plan_sha256", attempts, row, 1);
			history_yaml_kv(y, "state", attempts, row, 2);
			history_yaml_kv(y, "started_at", attempts, row, 3);
			history_yaml_kv(y, "replaced_at", attempts, row, 4);
			history_yaml_key(y, "failed");
			history_yaml_map_start(y);
			history_yaml_kv(y, "step", attempts, row, 5);
			history_yaml_kv(y, "error", attempts, row, 6);
			history_yaml_kv(y, "sqlstate", attempts, row, 7);
			history_yaml_map_end(y);
			history_yaml_map_end(y);
		}
		history_yaml_seq_end(y);
	}

	history_yaml_map_end(y);
	history_yaml_emit(y, &event,
	                  yaml_document_end_event_initialize(&event, 1));
	history_yaml_emit(y, &event, yaml_stream_end_event_initialize(&event));
	if (!y->failed && !yaml_emitter_flush(&y->emitter))
		y->failed = true;
}

/*
 * The migration's state.yaml and plan.yaml, from one snapshot of the
 * journal.  conn must be idle (outside any transaction); the read runs in
 * its own read-only transaction and leaves the session as it was.
 */
static int
history_state_read(history_state *out, PGconn *conn, const char *migration,
                   zdm_error *err)
{
	const char *params[2] = {migration, history_ts_format};
	PGresult *res = NULL, *mig = NULL, *steps = NULL, *backfill = NULL,
		 *approvals = NULL, *events = NULL, *attempts = NULL;
	history_yaml y;
	bool in_tx = false, emitter = false;
	int rc = -1, exists;

	memset(out, 0, sizeof(*out));
	memset(&y, 0, sizeof(y));
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		zdm_error_set(err,
		              "the history is read outside a transaction, and "
		              "the connection is in one");
		return -1;
	}
	if (zdm_conn_exec(conn,
	                  "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
	                  err) != 0)
		goto cleanup;
	in_tx = true;
	if ((exists = zdm_journal_exists(conn, err)) < 0)
		goto cleanup;
	if (exists) {
		if (zdm_conn_query(conn, history_migration_sql, 2, params, &mig,
		                   err) != 0 ||
		    zdm_conn_query(conn, history_steps_sql, 2, params, &steps,
		                   err) != 0 ||
		    zdm_conn_query(conn, history_backfill_sql, 1, params,
		                   &backfill, err) != 0 ||
		    zdm_conn_query(conn, history_approvals_sql, 2, params,
		                   &approvals, err) != 0 ||
		    zdm_conn_query(conn, history_events_sql, 2, params, &events,
		                   err) != 0 ||
		    zdm_conn_query(conn, history_attempts_exist_sql, 0, NULL,
		                   &res, err) != 0)
			goto cleanup;
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0 &&
		    zdm_conn_query(conn, history_attempts_sql, 2, params,
		                   &attempts, err) != 0)
			goto cleanup;
	}
	if (zdm_conn_exec(conn, "COMMIT", err) != 0)
		goto cleanup;
	in_tx = false;
	if (mig != NULL && PQntuples(mig) == 0) {
		PQclear(mig);
		mig = NULL;
	}

	if (!yaml_emitter_initialize(&y.emitter)) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	emitter = true;
	yaml_emitter_set_output(&y.emitter, history_yaml_write, &y);
	yaml_emitter_set_encoding(&y.emitter, YAML_UTF8_ENCODING);
	yaml_emitter_set_unicode(&y.emitter, 1);
	yaml_emitter_set_width(&y.emitter, -1);
	yaml_emitter_set_indent(&y.emitter, 2);
	yaml_emitter_set_break(&y.emitter, YAML_LN_BREAK);
	history_state_emit(&y, migration, mig, steps, backfill, approvals,
	                   events, attempts);
	if (y.failed) {
		zdm_error_set(err, "cannot write state.yaml of %s: %s",
		              migration,
		              y.emitter.problem ? y.emitter.problem
		                                : "out of memory");
		goto cleanup;
	}
	out->yaml = y.out.data;
	out->yaml_len = y.out.len;
	y.out.data = NULL;
	snprintf(out->state, sizeof(out->state), "%s",
	         mig ? PQgetvalue(mig, 0, 0) : "not_started");
	if (mig != NULL && !PQgetisnull(mig, 0, 9)) {
		out->plan_len = (size_t)PQgetlength(mig, 0, 9);
		out->plan = malloc(out->plan_len + 1);
		if (out->plan == NULL) {
			zdm_error_set(err, "out of memory");
			goto cleanup;
		}
		memcpy(out->plan, PQgetvalue(mig, 0, 9), out->plan_len + 1);
	}
	rc = 0;
cleanup:
	if (in_tx) {
		zdm_error ignored;

		(void)zdm_conn_exec(conn, "ROLLBACK", &ignored);
	}
	if (emitter)
		yaml_emitter_delete(&y.emitter);
	zdm_strbuf_free(&y.out);
	PQclear(res);
	PQclear(mig);
	PQclear(steps);
	PQclear(backfill);
	PQclear(approvals);
	PQclear(events);
	PQclear(attempts);
	if (rc != 0)
		history_state_free(out);
	return rc;
}

/* ---- committing ---------------------------------------------------------- */

/* The tip of refs/zdm/history: 1 found, 0 none, -1 error. */
static int
history_tip(git_oid *out, git_repository *repo, zdm_error *err)
{
	int rc = git_reference_name_to_id(out, repo, ZDM_HISTORY_REF);

	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0) {
		history_git_error(err, "cannot read " ZDM_HISTORY_REF);
		return -1;
	}
	return 1;
}

/* The commit message: the given line (control characters made spaces), a
 * blank line, and trailers that `zdm log` and `git log --grep` can use. */
static char *
history_message(const char *line, const char *migration, const char *state)
{
	size_t n = strlen(line), i;
	size_t size = n + strlen(migration) + strlen(state) + 64;
	char *msg = malloc(size);

	if (msg == NULL)
		return NULL;
	memcpy(msg, line, n);
	for (i = 0; i < n; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = ' ';
	while (n > 0 && msg[n - 1] == ' ')
		n--;
	snprintf(msg + n, size - n, "\n\nZdm-Migration: %s\nZdm-State: %s\n",
	         migration, state);
	return msg;
}

/* The record's file contents, written once per record: a retry after a
 * lost race only rebuilds the trees and the commit. */
typedef struct history_blobs {
	git_oid state;
	git_oid plan;
	bool has_plan;
} history_blobs;

static int
history_write_blobs(history_blobs *out, git_repository *repo,
                    const history_state *st, zdm_error *err)
{
	memset(out, 0, sizeof(*out));
	if (git_blob_create_from_buffer(&out->state, repo, st->yaml,
	                                st->yaml_len) < 0 ||
	    (st->plan != NULL &&
	     git_blob_create_from_buffer(&out->plan, repo, st->plan,
	                                 st->plan_len) < 0)) {
		history_git_error(err, "cannot write the record");
		return -1;
	}
	out->has_plan = st->plan != NULL;
	return 0;
}

/*
 * One commit on top of parent (NULL: the first): the parent's root tree with
 * <migration>/ replaced by state.yaml and plan.yaml (plan.yaml kept from the
 * parent when there is none).
 */
static int
history_commit_on(git_oid *out, git_repository *repo, const git_oid *parent,
                  const char *migration, const history_blobs *blobs,
                  const char *message, zdm_error *err)
{
	git_commit *parent_commit = NULL;
	git_tree *parent_tree = NULL, *old_sub = NULL, *root = NULL;
	git_tree_entry *old_entry = NULL;
	git_treebuilder *sub_builder = NULL, *root_builder = NULL;
	git_signature *sig = NULL;
	git_oid sub_id, root_id;
	const git_commit *parents[1];
	int rc = -1;

	if (parent != NULL) {
		if (git_commit_lookup(&parent_commit, repo, parent) < 0 ||
		    git_commit_tree(&parent_tree, parent_commit) < 0) {
			history_git_error(
				err, "cannot read the tip of " ZDM_HISTORY_REF);
			goto cleanup;
		}
		if (git_tree_entry_bypath(&old_entry, parent_tree, migration) ==
		            0 &&
		    git_tree_entry_type(old_entry) == GIT_OBJECT_TREE &&
		    git_tree_lookup(&old_sub, repo,
		                    git_tree_entry_id(old_entry)) < 0) {
			history_git_error(err,
			                  "cannot read the previous record");
			goto cleanup;
		}
	}
	if (git_treebuilder_new(&sub_builder, repo, old_sub) < 0 ||
	    git_treebuilder_insert(NULL, sub_builder, "state.yaml",
	                           &blobs->state, GIT_FILEMODE_BLOB) < 0 ||
	    (blobs->has_plan &&
	     git_treebuilder_insert(NULL, sub_builder, "plan.yaml",
	                            &blobs->plan, GIT_FILEMODE_BLOB) < 0) ||
	    git_treebuilder_write(&sub_id, sub_builder) < 0 ||
	    git_treebuilder_new(&root_builder, repo, parent_tree) < 0 ||
	    git_treebuilder_insert(NULL, root_builder, migration, &sub_id,
	                           GIT_FILEMODE_TREE) < 0 ||
	    git_treebuilder_write(&root_id, root_builder) < 0 ||
	    git_tree_lookup(&root, repo, &root_id) < 0 ||
	    git_signature_now(&sig, HISTORY_SIGNATURE_NAME,
	                      HISTORY_SIGNATURE_EMAIL) < 0)
		goto git_failed;
	parents[0] = parent_commit;
	if (git_commit_create(out, repo, NULL, sig, sig, "UTF-8", message, root,
	                      parent_commit ? 1 : 0, parents) < 0)
		goto git_failed;
	rc = 0;
	goto cleanup;
git_failed:
	history_git_error(err, "cannot write the record");
cleanup:
	git_signature_free(sig);
	git_treebuilder_free(root_builder);
	git_treebuilder_free(sub_builder);
	git_tree_free(root);
	git_tree_free(old_sub);
	git_tree_entry_free(old_entry);
	git_tree_free(parent_tree);
	git_commit_free(parent_commit);
	return rc;
}

/* A random pause before another compare-and-swap attempt, its range
 * doubling with the attempts (up to 100 ms) so that many runners spread
 * out. */
static void
history_backoff(int attempt)
{
	static unsigned seed;
	long range = 2L << (attempt < 6 ? attempt : 6);

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	if (range > 100)
		range = 100;
	zdm_sleep_ms(1 + (long)(rand_r(&seed) % range));
}

/* Commit st as the new tip, compare-and-swap, retried on a lost race. */
static int
history_commit(zdm_history *h, const char *migration, const history_state *st,
               const char *line, git_oid *out, zdm_error *err)
{
	git_reference *ref = NULL;
	history_blobs blobs;
	git_oid tip, id;
	char *message = NULL, *reflog = NULL;
	int attempt, found, rc = -1, grc = 0;

	if (!zdm_plan_migration_name_ok(migration)) {
		zdm_error_set(
			err,
			"migration name \"%s\" cannot name a directory of "
			"the history",
			migration);
		return -1;
	}
	message = history_message(line, migration, st->state);
	if (message == NULL || (reflog = malloc(strlen(message) + 8)) == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	/* the reflog (when the repository keeps one for this ref) gets the
	 * message's first line */
	snprintf(reflog, strlen(message) + 8, "zdm: %.*s",
	         (int)strcspn(message, "\n"), message);
	if (history_write_blobs(&blobs, h->repo, st, err) != 0)
		goto cleanup;
	for (attempt = 0; attempt < HISTORY_CAS_ATTEMPTS; attempt++) {
		if (attempt > 0)
			history_backoff(attempt);
		found = history_tip(&tip, h->repo, err);
		if (found < 0)
			goto cleanup;
		if (history_commit_on(&id, h->repo, found ? &tip : NULL,
		                      migration, &blobs, message, err) != 0)
			goto cleanup;
		if (found)
			grc = git_reference_create_matching(
				&ref, h->repo, ZDM_HISTORY_REF, &id, 1, &tip,
				reflog);
		else
			grc = git_reference_create(
				&ref, h->repo, ZDM_HISTORY_REF, &id, 0, reflog);
		git_reference_free(ref);
		ref = NULL;
		if (grc == 0) {
			if (out != NULL)
				git_oid_cpy(out, &id);
			rc = 0;
			goto cleanup;
		}
		/* another runner moved, created, deleted or holds the ref */
		if (grc != GIT_EMODIFIED && grc != GIT_EEXISTS &&
		    grc != GIT_ELOCKED && grc != GIT_ENOTFOUND) {
			history_git_error(err, "cannot move " ZDM_HISTORY_REF);
			goto cleanup;
		}
	}
	history_git_error(err, "cannot move " ZDM_HISTORY_REF
	                       ": other runners kept moving it");
cleanup:
	free(message);
	free(reflog);
	return rc;
}

int
zdm_history_record(zdm_history *history, PGconn *conn, const char *migration,
                   const char *message, zdm_error *err)
{
	history_state st;
	int rc;

	if (history == NULL || conn == NULL || migration == NULL ||
	    message == NULL) {
		zdm_error_set(err, "zdm_history_record: missing argument");
		return -1;
	}
	if (history_state_read(&st, conn, migration, err) != 0)
		return -1;
	rc = history_commit(history, migration, &st, message, NULL, err);
	history_state_free(&st);
	return rc;
}

/* ---- sync ---------------------------------------------------------------- */

/* The content of PATH at commit tip; *out NULL when absent. */
static int
history_read_blob(char **out, size_t *len, git_repository *repo,
                  const git_oid *tip, const char *path, zdm_error *err)
{
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	int rc = -1, found;

	*out = NULL;
	*len = 0;
	if (git_commit_lookup(&commit, repo, tip) < 0 ||
	    git_commit_tree(&tree, commit) < 0) {
		history_git_error(err,
		                  "cannot read the tip of " ZDM_HISTORY_REF);
		goto cleanup;
	}
	found = git_tree_entry_bypath(&entry, tree, path);
	if (found == GIT_ENOTFOUND ||
	    (found == 0 && git_tree_entry_type(entry) != GIT_OBJECT_BLOB)) {
		rc = 0;
		goto cleanup;
	}
	if (found < 0 ||
	    git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) < 0) {
		history_git_error(err, "cannot read the history");
		goto cleanup;
	}
	*len = (size_t)git_blob_rawsize(blob);
	*out = malloc(*len + 1);
	if (*out == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	memcpy(*out, git_blob_rawcontent(blob), *len);
	(*out)[*len] = '\0';
	rc = 0;
cleanup:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	git_commit_free(commit);
	return rc;
}

/* 1 when the tip already holds st for migration, 0 when not, -1 error. */
static int
history_up_to_date(zdm_history *h, const char *migration,
                   const history_state *st, zdm_error *err)
{
	git_oid tip;
	char path[256], *have = NULL;
	size_t len;
	int found, same = 0;

	found = history_tip(&tip, h->repo, err);
	if (found <= 0)
		return found;
	snprintf(path, sizeof(path), "%s/state.yaml", migration);
	if (history_read_blob(&have, &len, h->repo, &tip, path, err) != 0)
		return -1;
	same = have != NULL && len == st->yaml_len &&
	       memcmp(have, st->yaml, len) == 0;
	free(have);
	if (same && st->plan != NULL) {
		snprintf(path, sizeof(path), "%s/plan.yaml", migration);
		if (history_read_blob(&have, &len, h->repo, &tip, path, err) !=
		    0)
			return -1;
		same = have != NULL && len == st->plan_len &&
		       memcmp(have, st->plan, len) == 0;
		free(have);
	}
	return same;
}

static const char history_sync_list_sql[] =
	"SELECT migration FROM ("
	"  SELECT migration, started_at FROM zdm.migrations"
	"  UNION ALL"
	"  SELECT migration, min(approved_at) FROM zdm.approvals"
	"   WHERE migration NOT IN (SELECT migration FROM zdm.migrations)"
	"   GROUP BY migration) m"
	" WHERE $1::text IS NULL OR migration = $1"
	" ORDER BY started_at, migration";

int
zdm_history_sync(const char *conninfo, const char *history_dir,
                 const char *plan_path, const char *migration)
{
	zdm_history *h = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	zdm_error err;
	const char *params[1] = {migration};
	int rc = ZDM_EXIT_FAILED, row, failures = 0;

	zdm_error_clear(&err);
	conn = zdm_conn_open(conninfo, "history", NULL, &err);
	if (conn == NULL)
		goto cleanup;
	if (history_open(&h, history_dir, plan_path, true, &err) != 0) {
		rc = ZDM_EXIT_USAGE;
		goto cleanup;
	}
	switch (zdm_journal_exists(conn, &err)) {
	case -1:
		goto cleanup;
	case 0:
		printf("no zdm migration has run in this database: nothing to record\n");
		rc = ZDM_EXIT_OK;
		goto cleanup;
	}
	if (zdm_conn_query(conn, history_sync_list_sql, 1, params, &res,
	                   &err) != 0)
		goto cleanup;
	if (PQntuples(res) == 0)
		printf("%s%s: nothing to record\n",
		       migration ? "migration "
		                 : "no zdm migration in the journal",
		       migration ? migration : "");
	for (row = 0; row < PQntuples(res); row++) {
		const char *name = PQgetvalue(res, row, 0);
		history_state st;
		char line[512], hex[GIT_OID_HEXSZ + 1];
		git_oid id;
		int same;

		if (history_state_read(&st, conn, name, &err) != 0) {
			fprintf(stderr, "zdm: error: %s: %s\n", name,
			        err.message);
			failures++;
			continue;
		}
		same = history_up_to_date(h, name, &st, &err);
		if (same == 1) {
			printf("%s: up to date (state %s)\n", name, st.state);
		} else if (same == 0) {
			snprintf(line, sizeof(line),
			         "%s: synced from the journal (state %s)", name,
			         st.state);
			if (history_commit(h, name, &st, line, &id, &err) ==
			    0) {
				git_oid_tostr(hex, 11, &id);
				printf("%s: recorded %s (state %s)\n", name,
				       hex, st.state);
			} else {
				same = -1;
			}
		}
		if (same < 0) {
			fprintf(stderr, "zdm: error: %s: %s\n", name,
			        err.message);
			failures++;
		}
		history_state_free(&st);
	}
	fflush(stdout);
	rc = failures ? ZDM_EXIT_FAILED : ZDM_EXIT_OK;
	zdm_error_clear(&err);
cleanup:
	if (rc != ZDM_EXIT_OK && err.message[0])
		zdm_error_print(&err, stderr);
	PQclear(res);
	if (conn != NULL)
		PQfinish(conn);
	zdm_history_close(h);
	return rc;
}

/* ---- log ----------------------------------------------------------------- */

/* 1 when the commit's trailer names migration. */
static int
history_commit_is_for(const git_commit *commit, const char *migration)
{
	git_message_trailer_array trailers;
	size_t i;
	int match = 0;

	memset(&trailers, 0, sizeof(trailers));
	if (git_message_trailers(&trailers, git_commit_message(commit)) < 0)
		return 0;
	for (i = 0; i < trailers.count; i++)
		if (strcmp(trailers.trailers[i].key, "Zdm-Migration") == 0 &&
		    strcmp(trailers.trailers[i].value, migration) == 0)
			match = 1;
	git_message_trailer_array_free(&trailers);
	return match;
}

/* "2026-11-21 20:53:01 +0100", in the commit's own time zone, like git's
 * --date=iso. */
static void
history_format_time(char *buf, size_t len, git_time_t when, int offset_min)
{
	time_t t = (time_t)when + (time_t)offset_min * 60;
	struct tm tm;
	int off = offset_min < 0 ? -offset_min : offset_min;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d %c%02d%02d",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, offset_min < 0 ? '-' : '+', off / 60,
	         off % 60);
}

int
zdm_history_log(const char *history_dir, const char *plan_path,
                const char *migration)
{
	zdm_history *h = NULL;
	git_revwalk *walk = NULL;
	git_commit *commit = NULL;
	git_oid id, tip;
	zdm_error err;
	char hex[GIT_OID_HEXSZ + 1], when[64];
	long shown = 0;
	int rc = ZDM_EXIT_FAILED, found, next;

	zdm_error_clear(&err);
	if (history_open(&h, history_dir, plan_path, false, &err) != 0) {
		zdm_error_print(&err, stderr);
		return ZDM_EXIT_USAGE;
	}
	found = history_tip(&tip, h->repo, &err);
	if (found < 0)
		goto cleanup;
	if (found == 0) {
		printf("no zdm history in %s yet (%s does not exist); "
		       "zdm apply records one\n",
		       h->where, ZDM_HISTORY_REF);
		rc = ZDM_EXIT_OK;
		goto cleanup;
	}
	if (git_revwalk_new(&walk, h->repo) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) <
	            0 ||
	    git_revwalk_push(walk, &tip) < 0) {
		history_git_error(&err, "cannot walk " ZDM_HISTORY_REF);
		goto cleanup;
	}
	while ((next = git_revwalk_next(&id, walk)) == 0) {
		const char *summary;
		const git_signature *who;

		if (git_commit_lookup(&commit, h->repo, &id) < 0) {
			history_git_error(&err, "cannot read " ZDM_HISTORY_REF);
			goto cleanup;
		}
		if (migration == NULL ||
		    history_commit_is_for(commit, migration)) {
			summary = git_commit_summary(commit);
			who = git_commit_committer(commit);
			git_oid_tostr(hex, 11, &id);
			history_format_time(
				when, sizeof(when),
				who ? who->when.time : git_commit_time(commit),
				who ? who->when.offset
				    : git_commit_time_offset(commit));
			printf("%s  %s  %s\n", hex, when,
			       summary ? summary : "");
			shown++;
		}
		git_commit_free(commit);
		commit = NULL;
	}
	if (next != GIT_ITEROVER) {
		history_git_error(&err, "cannot walk " ZDM_HISTORY_REF);
		goto cleanup;
	}
	if (shown == 0 && migration != NULL)
		printf("no zdm history of migration %s in %s\n", migration,
		       h->where);
	rc = ZDM_EXIT_OK;
cleanup:
	if (rc != ZDM_EXIT_OK)
		zdm_error_print(&err, stderr);
	fflush(stdout);
	git_commit_free(commit);
	git_revwalk_free(walk);
	zdm_history_close(h);
	return rc;
}
