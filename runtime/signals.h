/*
 * signals.h -- SIGINT and SIGTERM as a flag that long waits look at.
 *
 * zdm apply and zdm sync both stop cleanly on a signal: the handler only
 * sets zdm_interrupted, and the code that waits (sleeps in slices, polls a
 * socket) checks it and winds down at a safe point.  No SA_RESTART, so a
 * blocking poll or sleep returns at once.  Nothing here cancels a running
 * statement.
 */
#ifndef ZDM_SIGNALS_H
#define ZDM_SIGNALS_H

#include <signal.h>

/* Set (to 1) by SIGINT or SIGTERM once zdm_catch_signals has run. */
extern volatile sig_atomic_t zdm_interrupted;

void zdm_catch_signals(void);

#endif
