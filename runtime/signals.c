/*
 * signals.c -- the SIGINT/SIGTERM flag of signals.h.  The handler does
 * nothing but set the flag: anything more is not async-signal-safe.
 */
#include "signals.h"

#include <string.h>

volatile sig_atomic_t zdm_interrupted;

static void
zdm_on_signal(int signo)
{
	(void)signo;
	zdm_interrupted = 1;
}

void
zdm_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = zdm_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
