/*
 * diag.h -- diagnostics in the form file:line:col: error: message.
 *
 * Each message is followed by the source line and a caret under the column.
 * Diagnostics are collected, not printed at once, so every pass can keep
 * going and one run reports every problem; they print in the order they were
 * reported, which follows the source within each pass.
 */
#ifndef ZDMC_DIAG_H
#define ZDMC_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"
#include "source.h"

typedef enum zdmc_diag_level {
	ZDMC_DIAG_ERROR,
	ZDMC_DIAG_NOTE /* attached to the error before it: "first changed here" */
} zdmc_diag_level;

typedef struct zdmc_diagnostic {
	zdmc_diag_level level;
	size_t offset;
	const char *message;
	struct zdmc_diagnostic *next;
} zdmc_diagnostic;

typedef struct zdmc_diag {
	zdmc_arena *arena;
	const zdmc_source *src;
	zdmc_diagnostic *first;
	zdmc_diagnostic *last;
	int nerrors;   /* every error reported, kept or not */
	bool dropping; /* past the limit: the last error was not kept */
} zdmc_diag;

void zdmc_diag_init(zdmc_diag *diag, zdmc_arena *arena, const zdmc_source *src);
void zdmc_diag_error(zdmc_diag *diag, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void zdmc_diag_note(zdmc_diag *diag, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reported already at exactly this offset?  Used to avoid a lexer error and a
 * parser error for the same token. */
bool zdmc_diag_has_error_at(const zdmc_diag *diag, size_t offset);
void zdmc_diag_print(const zdmc_diag *diag, FILE *out);

#endif
