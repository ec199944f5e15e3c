/*
 * report.h: what a run says, for people and for programs.
 *
 *   rep_echo      every parameter first, OSTEP style ("ARG n 8"), with the
 *                 machine and the date: any output says what produced it;
 *   rep_table     one row per strategy, and under it each one's first
 *                 error, note, per-task queue wait and run time, bytes;
 *   rep_checks    the checks (PASS/FAIL/SKIP) and how many passed;
 *   rep_json      one object for the whole run (jansson);
 *   rep_csv       one row per strategy, a header first;
 *   rep_trace     one row per task execution, for timelines in gnuplot;
 *   rep_progress  a line on stderr while a run takes more than a second
 *                 (progress.c; the others are report.c; the text timeline
 *                 is report_timeline.h).
 *
 * The formats are documented in docs/report-format.md; the fields of a
 * result come from run_result_visit() (result_fields.c), shared with the
 * Lua side.
 * Writers return 0, or -1 with a message ("FILE: reason") in err.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "runner.h"

#define POOLBENCH_VERSION "0.1.0"

void rep_echo(FILE *f, const run_report *r);

/* text on stdout, wrapped at 76 columns: first before the first line, rest
 * before the others; a blank line in text starts a new paragraph. */
void rep_wrap(const char *text, const char *first, const char *rest);
void rep_table(FILE *f, const run_report *r);
void rep_checks(FILE *f, const run_report *r);

int rep_json(const char *path, const run_report *r, char *err, size_t errlen);
int rep_csv(const char *path, const run_report *r, char *err, size_t errlen);
int rep_trace(const char *path, const run_report *r, char *err, size_t errlen);

/*
 * A run_options.progress callback: from one second into a repetition, and
 * every second after, rewrites one line on stderr ("poolbench: merged,
 * repeat 1 of 3: 4 s"). Install it only when stderr is a terminal. It
 * starts no thread (progress.c says how and why), so the strategies may
 * still create their pools.
 */
void rep_progress(void *ctx, const char *label, int rep, int nrep, bool begin);

#endif
