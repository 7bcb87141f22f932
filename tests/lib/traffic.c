/*
 * traffic.c -- zdm_traffic: an application version, simulated.
 *
 *   zdm_traffic --db CONNINFO --search-path SP --script FILE --stop-file PATH
 *               [--clients N] [--max-seconds S] [--id-range LO:HI] [--tag T]
 *               [--pause-ms MS]
 *
 * The integration tests run one of these for the old application version
 * and one for the new while a plan's phases run, and require that neither
 * saw a single error: that is what "zero downtime" means to a client.
 *
 * Each client is a thread with its own connection (application_name
 * zdm_traffic_T, search_path SP) running the script's statements round-robin
 * in autocommit mode until the stop file exists or max-seconds pass, pausing
 * MS milliseconds after each statement (default 0: as fast as it can).  A
 * statement may use $1, a random integer in the id range (bound as bigint),
 * and $2, a string unique to the run, "T-<client>-<counter>" (bound as
 * text).  Every failure counts, a lost connection too (the client then
 * reconnects once; if that fails it stops).  The summary is exactly one line,
 * "traffic T: N statements, M failed", then the first few failures; the exit
 * status is 1 when anything failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_CLIENTS 64
#define MAX_REPORTED 5
#define INT8OID 20
#define TEXTOID 25

typedef struct stmt {
	char *sql;
	int nparams; /* highest $n used: 0, 1 or 2 */
} stmt;

typedef struct traffic {
	const char *conninfo;
	const char *search_path;
	const char *stop_file;
	const char *tag;
	char appname[64];
	int clients;
	double max_seconds;
	long pause_ms;
	long long id_lo, id_hi;
	stmt *stmts;
	size_t nstmts;
	struct timespec start;

	pthread_mutex_t lock; /* guards everything below */
	long long statements;
	long long failed;
	char *reported[MAX_REPORTED];
	int nreported;
} traffic;

typedef struct client {
	traffic *t;
	int number;
	uint64_t rng;
} client;

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: zdm_traffic --db CONNINFO --search-path SP --script FILE\n"
	        "                   --stop-file PATH [--clients N] "
	        "[--max-seconds S]\n"
	        "                   [--id-range LO:HI] [--tag T] [--pause-ms MS]\n");
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("zdm_traffic: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

/* Highest $n in sql outside quoted strings and identifiers. */
static int
count_params(const char *sql)
{
	int highest = 0;
	char quote = 0;

	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (p[0] == '$' && (p[1] == '1' || p[1] == '2') &&
		           !(p[2] >= '0' && p[2] <= '9')) {
			if (p[1] - '0' > highest)
				highest = p[1] - '0';
		}
	}
	return highest;
}

static void
load_script(traffic *t, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t n;

	if (f == NULL)
		fatal("cannot open %s: %s", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s = line, *e = line + n;

		while (*s == ' ' || *s == '\t')
			s++;
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' ||
		                 e[-1] == ' ' || e[-1] == '\t' || e[-1] == ';'))
			e--;
		*e = '\0';
		if (*s == '\0' || strncmp(s, "--", 2) == 0)
			continue;
		if (t->nstmts == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			t->stmts = realloc(t->stmts, alloc * sizeof(stmt));
			if (t->stmts == NULL)
				fatal("out of memory");
		}
		t->stmts[t->nstmts].sql = xstrdup(s);
		t->stmts[t->nstmts].nparams = count_params(s);
		t->nstmts++;
	}
	if (ferror(f))
		fatal("cannot read %s: %s", path, strerror(errno));
	free(line);
	fclose(f);
	if (t->nstmts == 0)
		fatal("%s has no statements", path);
}

static double
elapsed(const traffic *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->start.tv_sec) +
	       (double)(now.tv_nsec - t->start.tv_nsec) / 1e9;
}

static bool
should_stop(const traffic *t)
{
	if (t->max_seconds > 0 && elapsed(t) >= t->max_seconds)
		return true;
	return access(t->stop_file, F_OK) == 0;
}

/* xorshift64*: good enough to spread ids, and per client (no locking). */
static uint64_t
next_random(client *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545F4914F6CDD1DULL;
}

static void
record(traffic *t, bool ok, const char *what)
{
	pthread_mutex_lock(&t->lock);
	t->statements++;
	if (!ok) {
		t->failed++;
		if (t->nreported < MAX_REPORTED)
			t->reported[t->nreported++] = xstrdup(what);
	}
	pthread_mutex_unlock(&t->lock);
}

/* One line: "SQLSTATE: message (statement)", from a result or connection. */
static char *
describe(const PGresult *res, PGconn *conn, const char *sql)
{
	const char *state =
		res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg =
		res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char buf[1024];

	if (msg == NULL)
		msg = PQerrorMessage(conn);
	snprintf(buf, sizeof(buf), "%s: %.*s (%s)",
	         state ? state : "connection", (int)strcspn(msg, "\n"), msg,
	         sql);
	return xstrdup(buf);
}

static PGconn *
client_connect(traffic *t, char **err)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *values[] = {t->conninfo, t->appname, NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	const char *params[1] = {t->search_path};
	PGresult *res;

	if (PQstatus(conn) != CONNECTION_OK) {
		*err = describe(NULL, conn, "connect");
		PQfinish(conn);
		return NULL;
	}
	res = PQexecParams(
		conn, "SELECT pg_catalog.set_config('search_path', $1, false)",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*err = describe(res, conn, "set search_path");
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

static void *
client_run(void *arg)
{
	client *c = arg;
	traffic *t = c->t;
	char *err = NULL;
	PGconn *conn = client_connect(t, &err);
	long long counter = 0;
	size_t next = 0;

	if (conn == NULL) {
		record(t, false, err);
		free(err);
		return NULL;
	}
	while (!should_stop(t)) {
		const stmt *s = &t->stmts[next];
		const Oid types[2] = {INT8OID, TEXTOID};
		char id[32], unique[96];
		const char *values[2] = {id, unique};
		PGresult *res;
		ExecStatusType st;

		next = (next + 1) % t->nstmts;
		counter++;
		snprintf(id, sizeof(id), "%lld",
		         t->id_lo + (long long)(next_random(c) %
		                                (uint64_t)(t->id_hi - t->id_lo +
		                                           1)));
		snprintf(unique, sizeof(unique), "%s-%d-%lld", t->tag,
		         c->number, counter);
		res = PQexecParams(conn, s->sql, s->nparams, types, values,
		                   NULL, NULL, 0);
		st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			record(t, true, NULL);
		} else {
			err = describe(res, conn, s->sql);
			record(t, false, err);
			free(err);
		}
		PQclear(res);
		if (t->pause_ms > 0) {
			struct timespec pause = {t->pause_ms / 1000,
			                         (t->pause_ms % 1000) *
			                                 1000000L};

			nanosleep(&pause, NULL);
		}
		if (PQstatus(conn) == CONNECTION_BAD) {
			PQfinish(conn);
			conn = client_connect(t, &err);
			if (conn == NULL) {
				record(t, false, err);
				free(err);
				return NULL;
			}
		}
	}
	PQfinish(conn);
	return NULL;
}

static long long
parse_ll(const char *s, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		fatal("%s: not an integer: '%s'", what, s);
	return v;
}

int
main(int argc, char **argv)
{
	traffic t = {0};
	const char *script = NULL;
	client clients[MAX_CLIENTS];
	pthread_t threads[MAX_CLIENTS];
	int started = 0;

	t.clients = 1;
	t.id_lo = 1;
	t.id_hi = 1000;
	t.tag = "t";
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (val == NULL) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(opt, "--db") == 0) {
			t.conninfo = val;
		} else if (strcmp(opt, "--search-path") == 0) {
			t.search_path = val;
		} else if (strcmp(opt, "--script") == 0) {
			script = val;
		} else if (strcmp(opt, "--stop-file") == 0) {
			t.stop_file = val;
		} else if (strcmp(opt, "--clients") == 0) {
			t.clients = (int)parse_ll(val, opt);
		} else if (strcmp(opt, "--max-seconds") == 0) {
			t.max_seconds = (double)parse_ll(val, opt);
		} else if (strcmp(opt, "--pause-ms") == 0) {
			t.pause_ms = (long)parse_ll(val, opt);
		} else if (strcmp(opt, "--tag") == 0) {
			t.tag = val;
		} else if (strcmp(opt, "--id-range") == 0) {
			const char *colon = strchr(val, ':');
			char lo[32];

			if (colon == NULL ||
			    (size_t)(colon - val) >= sizeof(lo))
				fatal("--id-range: expected LO:HI, got '%s'",
				      val);
			memcpy(lo, val, (size_t)(colon - val));
			lo[colon - val] = '\0';
			t.id_lo = parse_ll(lo, opt);
			t.id_hi = parse_ll(colon + 1, opt);
		} else {
			fprintf(stderr, "zdm_traffic: unknown option %s\n",
			        opt);
			usage(stderr);
			return 2;
		}
	}
	if (t.conninfo == NULL || t.search_path == NULL || script == NULL ||
	    t.stop_file == NULL) {
		usage(stderr);
		return 2;
	}
	if (t.clients < 1 || t.clients > MAX_CLIENTS)
		fatal("--clients must be between 1 and %d", MAX_CLIENTS);
	if (t.id_hi < t.id_lo)
		fatal("--id-range: HI is below LO");
	snprintf(t.appname, sizeof(t.appname), "zdm_traffic_%s", t.tag);
	load_script(&t, script);
	pthread_mutex_init(&t.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t.start);

	for (int i = 0; i < t.clients; i++) {
		clients[i].t = &t;
		clients[i].number = i + 1;
		clients[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^
		                 (uint64_t)time(NULL);
		if (pthread_create(&threads[i], NULL, client_run,
		                   &clients[i]) != 0) {
			fprintf(stderr, "zdm_traffic: cannot start client %d\n",
			        i + 1);
			record(&t, false, "cannot start a client thread");
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);

	printf("traffic %s: %lld statements, %lld failed\n", t.tag,
	       t.statements, t.failed);
	for (int i = 0; i < t.nreported; i++) {
		printf("  %s\n", t.reported[i]);
		free(t.reported[i]);
	}
	for (size_t i = 0; i < t.nstmts; i++)
		free(t.stmts[i].sql);
	free(t.stmts);
	pthread_mutex_destroy(&t.lock);
	return t.failed > 0 ? 1 : 0;
}
