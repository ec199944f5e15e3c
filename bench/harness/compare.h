/*
 * compare.h: `poolbench compare FILE`: a scenario and its CPython twin
 * (bench/python/NAME.py) in one run, interleaved, timed the same way and
 * judged by the same checks (compare.c; docs/report-format.md, "What
 * `poolbench compare` writes").
 */
#ifndef COMPARE_H
#define COMPARE_H

#include <stdbool.h>

#include "runner.h"

/*
 * The `compare` command: argv[1] is "compare". Returns the exit status: 0
 * when poolbench's checks hold (CPython's failures are reported, not
 * failing: they measure CPython), 1 when one of poolbench's fails, 2 for bad
 * usage or a bad scenario. Without python3 or the twin it says so in one
 * line and runs poolbench's side alone. The caller installs the signal
 * handlers and removes the run's temporary directory afterwards, as for run.
 */
int compare_main(int argc, char **argv);

/*
 * For `poolbench lab -c` (lab.c): runs r's scenario's twin once with r's
 * resolved parameters, for the labels r ran that the twin has (impls, what
 * r was asked to run, is not needed: r's results say it; a student's
 * --solution strategy has no twin), and builds CPython's report in out (no
 * checks judged). true when it did (free out with run_report_free); false after
 * printing one line on stdout that says why not ("CPython: not measured:
 * python3 not found on PATH").
 */
bool compare_twin_once(const run_report *r, const char *impls, run_report *out);

#endif
