/*
 * zdmc.h -- the compiler as a library: source text in, plan bytes out.
 *
 * main.c (the CLI) and the fuzz target both go through zdmc_compile(), so the
 * fuzzer exercises exactly what users run.  It never touches the file system
 * or the network.
 */
#ifndef ZDMC_H
#define ZDMC_H

#include <stddef.h>
#include <stdio.h>

#define ZDMC_VERSION "0.1.0"

/*
 * Compile text.  display_name is used in messages (file:line:col); its last
 * path component is recorded in the plan.  Diagnostics are printed to
 * diag_out (NULL: discarded).  On success returns 0 and a malloc'd plan in
 * *plan and *plan_len; returns 1 when the input has errors (nothing in *plan).
 */
int zdmc_compile(const char *display_name, const char *text, size_t len,
                 FILE *diag_out, char **plan, size_t *plan_len);

#endif
