/*
 * compile.c -- source text to plan bytes: parse, check, lower, write.
 *
 * The one entry point for the CLI and the fuzzer.  All memory of a compile
 * lives in one arena, freed on every path; only the finished plan is
 * handed out (malloc'd).  A plan is produced only from a source with no
 * errors at all, so a plan file can never be half right.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "plan.h"
#include "zdmc.h"

int
zdmc_compile(const char *display_name, const char *text, size_t len,
             FILE *diag_out, char **plan_out, size_t *plan_len)
{
	zdmc_arena *arena = zdmc_arena_new();
	zdmc_source *src;
	zdmc_diag diag;
	zdmc_migration *mig = NULL;
	zdmc_model model;
	zdmc_plan plan;
	char errbuf[256];
	int rc = 1;

	*plan_out = NULL;
	*plan_len = 0;
	src = zdmc_source_new(arena, display_name, text, len);
	zdmc_diag_init(&diag, arena, src);
	if (memchr(text, '\0', len) != NULL) {
		zdmc_diag_error(
			&diag,
			(size_t)((const char *)memchr(text, '\0', len) - text),
			"the source contains a NUL byte; .zdm files are text");
		goto cleanup;
	}
	zdmc_parse(arena, &diag, src, &mig);
	if (zdmc_check(arena, &diag, mig, &model) != 0 || diag.nerrors > 0)
		goto cleanup;

	zdmc_lower(arena, &model, src, &plan);
	plan.source_sha256 = zdmc_arena_alloc(arena, 65);
	zdmc_sha256_hex(text, len, (char *)plan.source_sha256);
	if (zdmc_plan_write(&plan, plan_out, plan_len, errbuf,
	                    sizeof(errbuf)) != 0) {
		zdmc_diag_error(&diag, 0, "cannot write the plan: %s", errbuf);
		goto cleanup;
	}
	rc = 0;

cleanup:
	zdmc_diag_print(&diag, diag_out);
	zdmc_arena_free(arena);
	return rc;
}
