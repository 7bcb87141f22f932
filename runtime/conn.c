/*
 * conn.c -- connections to PostgreSQL and the errors they return.
 *
 * Every session zdm opens names itself (application_name "zdm ...", so a
 * DBA sees it in pg_stat_activity), uses standard_conforming_strings (the
 * plan's literals assume it) and the plan's schema as search_path.  Results
 * are cleared next to the call that made them.  Passwords never reach a
 * message: zdm_conninfo_redact is the only way a conninfo is printed.
 * Each session's statement_timeout is the plan's (zdm_conn_set_statement_
 * timeout), never the role's or the database's.
 */
#include "zdm.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One plan per process: every session takes its statement_timeout. */
static long conn_statement_timeout_ms;

/* The server's message when statement_timeout cancels a statement (57014
 * is also a cancel by pg_cancel_backend or Ctrl-C, which need no hint). */
#define CONN_STATEMENT_TIMEOUT_MESSAGE \
	"canceling statement due to statement timeout"

void
zdm_conn_set_statement_timeout(long ms)
{
	conn_statement_timeout_ms = ms;
}

void
zdm_error_clear(zdm_error *err)
{
	memset(err, 0, sizeof(*err));
}

void
zdm_error_set(zdm_error *err, const char *fmt, ...)
{
	va_list ap;

	zdm_error_clear(err);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static void
error_copy_trimmed(char *dst, size_t len, const char *src)
{
	size_t n;

	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	snprintf(dst, len, "%s", src);
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

void
zdm_error_from_result(zdm_error *err, const PGresult *res, const PGconn *conn)
{
	const char *primary = NULL;

	zdm_error_clear(err);
	if (res != NULL) {
		error_copy_trimmed(err->sqlstate, sizeof(err->sqlstate),
		                   PQresultErrorField(res, PG_DIAG_SQLSTATE));
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		error_copy_trimmed(
			err->detail, sizeof(err->detail),
			PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
		error_copy_trimmed(
			err->hint, sizeof(err->hint),
			PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
		if (primary == NULL)
			primary = PQresultErrorMessage(res);
	}
	if ((primary == NULL || primary[0] == '\0') && conn != NULL)
		primary = PQerrorMessage(conn);
	error_copy_trimmed(err->message, sizeof(err->message),
	                   primary && primary[0] ? primary : "unknown error");
	if (conn != NULL && PQstatus(conn) == CONNECTION_BAD &&
	    err->sqlstate[0] == '\0')
		snprintf(err->sqlstate, sizeof(err->sqlstate), "08006");
	if (zdm_error_is_statement_timeout(err) && err->hint[0] == '\0')
		snprintf(
			err->hint, sizeof(err->hint),
			"zdm's sessions run with statement_timeout = %ldms, the "
			"plan's statement_timeout option; raise it (with "
			"(statement_timeout = '...'), or 0 for no limit), "
			"recompile and run again: what committed stays done",
			conn_statement_timeout_ms);
}

void
zdm_error_print(const zdm_error *err, FILE *out)
{
	fprintf(out, "zdm: error: ");
	if (err->step[0])
		fprintf(out, "step %s: ", err->step);
	fprintf(out, "%s", err->message);
	if (err->sqlstate[0])
		fprintf(out, " (SQLSTATE %s)", err->sqlstate);
	fputc('\n', out);
	if (err->detail[0])
		fprintf(out, "DETAIL: %s\n", err->detail);
	if (err->hint[0])
		fprintf(out, "HINT: %s\n", err->hint);
}

bool
zdm_error_is_statement_timeout(const zdm_error *err)
{
	return strcmp(err->sqlstate, "57014") == 0 &&
	       strcmp(err->message, CONN_STATEMENT_TIMEOUT_MESSAGE) == 0;
}

bool
zdm_error_is_lock_conflict(const zdm_error *err)
{
	return strcmp(err->sqlstate, ZDM_SQLSTATE_LOCK_NOT_AVAILABLE) == 0 ||
	       strcmp(err->sqlstate, ZDM_SQLSTATE_DEADLOCK) == 0;
}

/* what libpq's expand_dbname treats as a conninfo rather than a name */
static bool
conninfo_is_expanded(const char *conninfo)
{
	if (conninfo == NULL || conninfo[0] == '\0')
		return false;
	return strchr(conninfo, '=') != NULL ||
	       strncmp(conninfo, "postgresql://", 13) == 0 ||
	       strncmp(conninfo, "postgres://", 11) == 0;
}

char *
zdm_conninfo_options(const char *conninfo, const char *forced)
{
	const char *user_opts = NULL;
	PQconninfoOption *parsed = NULL, *o;
	char *errmsg = NULL, *options;
	size_t n;

	if (conninfo != NULL && conninfo[0] != '\0')
		parsed = PQconninfoParse(conninfo, &errmsg);
	PQfreemem(errmsg);
	for (o = parsed; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val != NULL)
			user_opts = o->val;
	if (user_opts == NULL)
		user_opts = getenv("PGOPTIONS");
	n = (user_opts ? strlen(user_opts) : 0) + strlen(forced) + 2;
	options = malloc(n);
	if (options != NULL)
		snprintf(options, n, "%s%s%s", user_opts ? user_opts : "",
		         user_opts && user_opts[0] ? " " : "", forced);
	PQconninfoFree(parsed);
	return options;
}

PGconn *
zdm_conn_open(const char *conninfo, const char *purpose, const char *schema,
              zdm_error *err)
{
	const char *keywords[5], *values[5];
	char appname[64];
	PGconn *conn;
	PGresult *res;
	const char *params[1];
	char forced[64], *options;

	if (conninfo == NULL)
		conninfo = getenv("DATABASE_URL");
	if (conninfo_is_expanded(conninfo)) {
		PQconninfoOption *opts;
		char *errmsg = NULL;

		/*
		 * libpq's parse error quotes the text it choked on, which can
		 * be a password: check first and say it without that text.
		 */
		opts = PQconninfoParse(conninfo, &errmsg);
		PQfreemem(errmsg);
		if (opts == NULL) {
			zdm_error_set(err, "the connection string cannot be "
			                   "parsed (check its quoting and "
			                   "percent-encoding)");
			snprintf(err->sqlstate, sizeof(err->sqlstate), "08001");
			return NULL;
		}
		PQconninfoFree(opts);
	}
	snprintf(appname, sizeof(appname), "zdm %s", purpose);
	keywords[0] = "dbname";
	values[0] = conninfo ? conninfo : "";
	keywords[1] = "application_name";
	values[1] = appname;
	/*
	 * Plans are UTF-8 and so is every text zdm prints or stores; after
	 * dbname so it overrides PGCLIENTENCODING and the database default.
	 */
	keywords[2] = "client_encoding";
	values[2] = "UTF8";
	/*
	 * The plan's statement_timeout from the first statement on, never the
	 * role's or the database's: set at startup, so not even the query
	 * below runs under another (a set_config there would itself run
	 * under the role's, and a 1 ms one could cancel it).
	 */
	snprintf(forced, sizeof(forced), "-c statement_timeout=%ld",
	         conn_statement_timeout_ms);
	options = zdm_conninfo_options(conninfo, forced);
	if (options == NULL) {
		zdm_error_set(err, "out of memory connecting to the database");
		return NULL;
	}
	keywords[3] = "options";
	values[3] = options;
	keywords[4] = NULL;
	values[4] = NULL;
	/* expand_dbname: dbname may be a full conninfo or URI */
	conn = PQconnectdbParams(keywords, values, 1);
	free(options);
	if (conn == NULL) {
		zdm_error_set(err, "out of memory connecting to the database");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		zdm_error_from_result(err, NULL, conn);
		snprintf(err->sqlstate, sizeof(err->sqlstate), "08001");
		PQfinish(conn);
		return NULL;
	}
	params[0] = schema ? schema : "";
	res = PQexecParams(
		conn,
		"SELECT pg_catalog.set_config('search_path', $1, false),"
		" pg_catalog.set_config('standard_conforming_strings', 'on', false)",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		zdm_error_from_result(err, res, conn);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

int
zdm_conn_exec(PGconn *conn, const char *sql, zdm_error *err)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
	    st != PGRES_EMPTY_QUERY) {
		zdm_error_from_result(err, res, conn);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
zdm_conn_query(PGconn *conn, const char *sql, int nparams,
               const char *const *params, PGresult **out, zdm_error *err)
{
	PGresult *res =
		PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	*out = NULL;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		zdm_error_from_result(err, res, conn);
		PQclear(res);
		return -1;
	}
	*out = res;
	return 0;
}

void
zdm_conninfo_redact(const char *conninfo, char *buf, size_t len)
{
	PQconninfoOption *opts, *o;
	char *errmsg = NULL;
	size_t n = 0;

	if (conninfo == NULL || conninfo[0] == '\0') {
		snprintf(buf, len, "(from the environment)");
		return;
	}
	opts = PQconninfoParse(conninfo, &errmsg);
	if (opts == NULL) {
		PQfreemem(errmsg);
		snprintf(buf, len, "(unparsable connection string)");
		return;
	}
	buf[0] = '\0';
	for (o = opts; o->keyword != NULL && n < len; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		n += (size_t)snprintf(
			buf + n, len - n, "%s%s=%s", n ? " " : "", o->keyword,
			strcmp(o->keyword, "password") == 0 ? "********"
							    : o->val);
	}
	PQconninfoFree(opts);
}

double
zdm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
zdm_sleep_ms(long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}
