/*
 * main.c -- the zdmc command line.
 *
 *   zdmc compile FILE [-o OUT]        write the plan (default plan.out)
 *   zdmc compile --check -o PLAN FILE exit 1 if PLAN is not what FILE gives
 *   zdmc check FILE                   parse and check, write nothing
 *   zdmc explain PLAN                 the plan for a reviewer, in Markdown
 *   zdmc diff OLD_PLAN NEW_PLAN       what changed, with its risks
 *
 * Exit status: 0 success, 1 errors in the input (or a stale plan with
 * --check), 2 usage or I/O errors, or a plan explain or diff cannot read.
 * The plan is written to a temporary file, flushed to disk and renamed into
 * place, so a crash or a full disk never leaves a truncated plan where a
 * reviewed one was.  This is the only file of the compiler that touches the
 * file system: explain and diff read plans here and hand the bytes to the
 * runtime's own reader (zdm_plan_parse), so they accept and refuse exactly
 * the plans zdm would.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan_read.h"
#include "plan_review.h"
#include "zdmc.h"

#define EXIT_INPUT 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"usage: zdmc compile [-o OUT] FILE      compile FILE into a plan (default OUT: plan.out; -o - for stdout)\n"
	"       zdmc compile --check -o PLAN FILE  exit 1 if PLAN differs from what FILE compiles to\n"
	"       zdmc check FILE                 parse and check FILE, write nothing\n"
	"       zdmc explain PLAN               describe PLAN for a reviewer (Markdown on stdout)\n"
	"       zdmc diff OLD_PLAN NEW_PLAN     what changed between two plans, with its risks (Markdown)\n"
	"       zdmc --help | --version\n"
	"\n"
	"Diagnostics are printed as file:line:col: error: message, with the line and a caret.\n"
	"A PLAN may be - for standard input.  diff reports, it does not judge: it exits 0 whether\n"
	"or not the plans differ (\"No changes.\" when they do not).\n"
	"Exit status: 0 success, 1 errors in the input or a stale plan (--check), 2 usage or I/O\n"
	"error, or a plan that cannot be read (the plan reader's message on stderr).\n"
	"The language: docs/language.md; the plan: docs/plan-format.md; review: docs/review.md.\n";

static void
usage_error(const char *fmt, const char *arg)
{
	fputs("zdmc: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'zdmc --help'.\n", stderr);
}

static int
read_file(const char *path, char **data, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 65536, n = 0;
	char *buf;

	if (f == NULL) {
		fprintf(stderr, "zdmc: cannot open \"%s\": %s\n", path,
		        strerror(errno));
		return -1;
	}
	buf = malloc(cap);
	if (buf == NULL)
		goto nomem;
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (bigger == NULL)
				goto nomem;
			buf = bigger;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "zdmc: cannot read \"%s\": %s\n", path,
		        strerror(errno));
		free(buf);
		if (f != stdin)
			fclose(f);
		return -1;
	}
	if (f != stdin)
		fclose(f);
	*data = buf;
	*len = n;
	return 0;

nomem:
	fprintf(stderr, "zdmc: out of memory reading \"%s\"\n", path);
	free(buf);
	if (f != stdin)
		fclose(f);
	return -1;
}

/* temp file in the same directory -> fsync -> rename -> fsync(dir) */
static int
write_file_atomically(const char *path, const char *data, size_t len)
{
	char *tmp = malloc(strlen(path) + 16);
	char *dir = strdup(path);
	char *slash;
	int fd = -1, dfd, rc = -1;
	size_t done = 0;

	if (tmp == NULL || dir == NULL) {
		fprintf(stderr, "zdmc: out of memory\n");
		goto cleanup;
	}
	sprintf(tmp, "%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr,
		        "zdmc: cannot create a temporary file next to \"%s\": %s\n",
		        path, strerror(errno));
		goto cleanup;
	}
	while (done < len) {
		ssize_t w = write(fd, data + done, len - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "zdmc: cannot write \"%s\": %s\n", tmp,
			        strerror(errno));
			goto cleanup;
		}
		done += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "zdmc: cannot write \"%s\": %s\n", tmp,
		        strerror(errno));
		goto cleanup;
	}
	if (close(fd) != 0) {
		fd = -1;
		fprintf(stderr, "zdmc: cannot write \"%s\": %s\n", tmp,
		        strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "zdmc: cannot rename \"%s\" to \"%s\": %s\n",
		        tmp, path, strerror(errno));
		goto cleanup;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	dfd = open(dir, O_RDONLY);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = 0;

cleanup:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	} else if (rc != 0 && tmp != NULL) {
		unlink(tmp);
	}
	free(tmp);
	free(dir);
	return rc;
}

static int
cmd_compile(int argc, char **argv, int check_only)
{
	const char *out = "plan.out", *file = NULL;
	int check_drift = 0, out_given = 0, i, rc;
	char *text = NULL, *plan = NULL;
	size_t len = 0, plan_len = 0;

	for (i = 0; i < argc; i++) {
		if (!check_only && strcmp(argv[i], "-o") == 0) {
			if (i + 1 >= argc) {
				usage_error("option -o needs a file name%s",
				            "");
				return EXIT_USAGE;
			}
			out = argv[++i];
			out_given = 1;
		} else if (!check_only && strcmp(argv[i], "--check") == 0) {
			check_drift = 1;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			usage_error("unknown option \"%s\"", argv[i]);
			return EXIT_USAGE;
		} else if (file == NULL) {
			file = argv[i];
		} else {
			usage_error(
				"one source file at a time; \"%s\" is one too many",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (file == NULL) {
		usage_error("no source file given%s", "");
		return EXIT_USAGE;
	}
	if (check_drift && (!out_given || strcmp(out, "-") == 0)) {
		usage_error("--check needs the plan to compare with: -o PLAN%s",
		            "");
		return EXIT_USAGE;
	}
	if (read_file(file, &text, &len) != 0)
		return EXIT_USAGE;
	rc = zdmc_compile(strcmp(file, "-") == 0 ? "<stdin>" : file, text, len,
	                  stderr, &plan, &plan_len);
	free(text);
	if (rc != 0)
		return EXIT_INPUT;

	if (check_only) {
		rc = 0;
	} else if (check_drift) {
		char *old = NULL;
		size_t old_len = 0;

		if (read_file(out, &old, &old_len) != 0) {
			rc = EXIT_USAGE;
		} else if (old_len != plan_len ||
		           memcmp(old, plan, plan_len) != 0) {
			fprintf(stderr,
			        "zdmc: %s is not what %s compiles to; run: zdmc compile -o %s %s\n",
			        out, file, out, file);
			rc = EXIT_INPUT;
		} else {
			rc = 0;
		}
		free(old);
	} else if (strcmp(out, "-") == 0) {
		rc = fwrite(plan, 1, plan_len, stdout) == plan_len &&
		                     fflush(stdout) == 0
		             ? 0
		             : EXIT_USAGE;
		if (rc != 0)
			fprintf(stderr,
			        "zdmc: cannot write the plan to standard output: %s\n",
			        strerror(errno));
	} else {
		rc = write_file_atomically(out, plan, plan_len) == 0
		             ? 0
		             : EXIT_USAGE;
	}
	free(plan);
	return rc;
}

/* Read and validate a plan with the runtime's reader; its message on
 * failure.  The caller zdm_plan_free()s *plan. */
static int
load_plan(const char *path, zdm_plan **plan)
{
	const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	char *data = NULL, errbuf[1024];
	size_t len = 0;
	int rc;

	if (read_file(path, &data, &len) != 0)
		return -1;
	rc = zdm_plan_parse(plan, name, data, len, errbuf, sizeof(errbuf));
	free(data);
	if (rc != 0)
		fprintf(stderr, "%s\n", errbuf);
	return rc;
}

static int
write_report(zdmc_buf *report)
{
	const char *text = zdmc_buf_cstr(report);

	if (fwrite(text, 1, report->len, stdout) != report->len ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "zdmc: cannot write to standard output: %s\n",
		        strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

static int
cmd_explain(int argc, char **argv)
{
	zdm_plan *plan = NULL;
	zdmc_arena *arena;
	zdmc_buf report;
	int rc;

	if (argc != 1 || (argv[0][0] == '-' && argv[0][1] != '\0')) {
		usage_error(
			argc == 0 ? "explain needs a plan%s"
			: argc > 1
				? "explain takes one plan; \"%s\" is one too many"
				: "unknown option \"%s\"",
			argc > 1    ? argv[1]
			: argc == 1 ? argv[0]
				    : "");
		return EXIT_USAGE;
	}
	if (load_plan(argv[0], &plan) != 0)
		return EXIT_USAGE;
	arena = zdmc_arena_new();
	zdmc_buf_init(&report, arena);
	zdmc_plan_explain(&report, plan,
	                  strcmp(argv[0], "-") == 0 ? "<stdin>" : argv[0]);
	rc = write_report(&report);
	zdmc_arena_free(arena);
	zdm_plan_free(plan);
	return rc;
}

static int
cmd_diff(int argc, char **argv)
{
	zdm_plan *old_plan = NULL, *new_plan = NULL;
	zdmc_arena *arena;
	zdmc_buf report;
	int i, rc = EXIT_USAGE;

	for (i = 0; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			usage_error("unknown option \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	if (argc != 2) {
		usage_error(
			argc < 2
				? "diff needs two plans: OLD_PLAN NEW_PLAN%s"
				: "diff takes two plans; \"%s\" is one too many",
			argc < 2 ? "" : argv[2]);
		return EXIT_USAGE;
	}
	if (strcmp(argv[0], "-") == 0 && strcmp(argv[1], "-") == 0) {
		usage_error("only one plan can come from standard input%s", "");
		return EXIT_USAGE;
	}
	if (load_plan(argv[0], &old_plan) != 0 ||
	    load_plan(argv[1], &new_plan) != 0)
		goto cleanup;
	arena = zdmc_arena_new();
	zdmc_buf_init(&report, arena);
	zdmc_plan_diff(&report, old_plan,
	               strcmp(argv[0], "-") == 0 ? "<stdin>" : argv[0],
	               new_plan,
	               strcmp(argv[1], "-") == 0 ? "<stdin>" : argv[1]);
	rc = write_report(&report);
	zdmc_arena_free(arena);

cleanup:
	zdm_plan_free(old_plan);
	zdm_plan_free(new_plan);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("zdmc %s (plan format 1)\n", ZDMC_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "compile") == 0)
		return cmd_compile(argc - 2, argv + 2, 0);
	if (strcmp(argv[1], "check") == 0)
		return cmd_compile(argc - 2, argv + 2, 1);
	if (strcmp(argv[1], "explain") == 0)
		return cmd_explain(argc - 2, argv + 2);
	if (strcmp(argv[1], "diff") == 0)
		return cmd_diff(argc - 2, argv + 2);
	usage_error("unknown command \"%s\"", argv[1]);
	return EXIT_USAGE;
}
