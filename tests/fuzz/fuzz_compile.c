/*
 * fuzz_compile.c -- libFuzzer target for the whole compiler.
 *
 * Feeds arbitrary bytes to zdmc_compile(), the function the CLI calls, so
 * the scanner, parser, checks, lowering and the plan writer are all in
 * reach.  Any input must end in a plan or in diagnostics: a crash, a
 * sanitizer report or a leak is a bug.  Diagnostics go to /dev/null, opened
 * once, so the fuzzer spends its time compiling rather than printing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "zdmc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char *plan = NULL;
	size_t plan_len = 0;

	if (devnull == NULL) {
		devnull = fopen("/dev/null", "w");
		if (devnull == NULL)
			abort();
	}
	if (zdmc_compile("fuzz.zdm", (const char *)data, size, devnull, &plan,
	                 &plan_len) == 0 &&
	    (plan == NULL || plan_len == 0))
		abort(); /* success must produce a plan */
	free(plan);
	return 0;
}
