/*
 * report_timeline.h: a run drawn as text (`poolbench run FILE --timeline`,
 * `poolbench lab NAME -c --timeline`), so that it can be seen without
 * gnuplot, as OSTEP's simulators print theirs.
 */
#ifndef REPORT_TIMELINE_H
#define REPORT_TIMELINE_H

#include <stdio.h>

#include "runner.h"

/* The width to draw at: $COLUMNS, else the terminal's (TIOCGWINSZ on
 * stdout), else 80; never below 32. */
int rep_timeline_width(void);

/*
 * One strategy's timeline, `width` characters per lane: a lane per worker
 * slot and one for the parent's callbacks, then a time axis in seconds
 * from the strategy's start. Each task is a run of its item's character
 * (1-9, a-z, A-Z, 0, then again: run_trace_stats numbers the items), a
 * killed or timed-out task '#', idle '.'. Draws nothing when res has no
 * trace.
 */
void rep_timeline(FILE *f, const run_report *r, const run_result *res, int width);

/* rep_timeline for every result of r, in the table's order. */
void rep_timelines(FILE *f, const run_report *r, int width);

#endif
