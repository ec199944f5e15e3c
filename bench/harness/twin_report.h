/*
 * twin_report.h: a scenario's CPython twin (bench/python/NAME.py), found,
 * run, and read back into a run_report, so that the scenario's own checks
 * (run_judge) can judge CPython's figures as they judge poolbench's.
 *
 * The twin reports the same result fields as poolbench's JSON
 * (docs/report-format.md, "The CPython twins' JSON"); twin_report.c turns
 * one twin result into a run_result, field by field, under the variant of
 * the same label. The model is the scenario's, so model_s comes from
 * poolbench's result for that label.
 *
 * Used by `poolbench compare` (compare.c) and by `poolbench lab -c` (lab.c).
 * Nothing here starts a thread: the twin is a child process, read with
 * poll() and a deadline, killed with its process group if it overruns, and
 * always reaped.
 */
#ifndef TWIN_REPORT_H
#define TWIN_REPORT_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

#include "runner.h"

#define TWIN_MAX_PARAMS SCN_MAX_PARAMS

typedef struct twin {
    char python[PATH_MAX];  /* $PYTHON, or python3 from PATH */
    char script[PATH_MAX];  /* .../bench/python/NAME.py */
    char version[64];       /* Python's, from the twin's JSON ("" until a run) */
    char *params[TWIN_MAX_PARAMS]; /* the twin's parameter names (--params) */
    int nparams;
    double timeout_s;       /* one run of the twin at most this long (900 s, or
                             * $POOLBENCH_TWIN_TIMEOUT) */
    char why[256];          /* why it cannot run, one line ("" when it can) */
    bool killed;            /* a run was killed at timeout_s: do not start another */
} twin;

/*
 * Finds python and the twin of scenario `name`: $PYTHON, else python3 on
 * PATH; $POOLBENCH_PYTHON_DIR, else bench/python in the repository holding
 * this binary (searched upward from it), else ./bench/python. Asks the twin
 * for its parameters. 0, or -1 with t->why set ("python3 not found on PATH").
 */
int twin_open(twin *t, const char *name);
void twin_close(twin *t);

/*
 * Runs the twin once for `labels` (comma-separated; NULL all) with the
 * resolved parameters of r (every one the twin takes, as --set), --repeat 1,
 * --json -. Returns the parsed JSON (the caller json_decref's it), or NULL
 * with t->why set. Sets t->version if twin_open could not.
 */
json_t *twin_run(twin *t, const run_report *r, const char *labels);

/* The twin's labels (--list) into buf as ",a,,b,", for strstr(",label,").
 * 0, or -1 (buf ""). */
int twin_labels(twin *t, char *buf, size_t len);

/* The result object for label in a twin's JSON, or NULL. */
json_t *twin_result(json_t *root, const char *label);

/*
 * Builds in out a report of CPython's figures, shaped like pb (same
 * scenario, parameters, labels, machine, date, repeat): for every result of
 * pb, the twin's result of that label (res[i], NULL when the twin gave
 * none: the result is then marked run_failed with the reason), with the wall
 * times walls[i][0..nwalls[i]) (median, min, max). out->nresults may be
 * less than pb's when a label had no figures at all. No checks yet:
 * run_judge(out) judges them. Free with run_report_free.
 */
void twin_build_report(const run_report *pb, json_t *const *res, double *const *walls,
                       const int *nwalls, run_report *out);

/* The twin's reason for a check in one of its result's maps, or NULL:
 * `cannot` (CPython cannot do what the check asks: n/a) or `differs` (it
 * does it otherwise, by design: the FAIL is expected, and why). A key
 * matches a check name that contains it, that starts with it (a label), or
 * that contains it less a leading field name ("first_error names the
 * worker" matches "x: the error names the worker"). */
const char *twin_reason(json_t *res, const char *map, const char *check);

/* The median of v[0..n), sorting v. */
double twin_median(double *v, int n);

#endif
