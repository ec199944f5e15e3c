/*
 * runner.h: runs a scenario's workload through its strategies and checks
 * what was measured.
 *
 * The order of a run (run_register_tasks, run_prepare, run_strategies, then
 * run_judge; run_execute is the last two in one call):
 *
 *   1. the scenario's Lua tasks are registered with the engine, a C
 *      trampoline each, before any pool exists (workers see the registry as
 *      it was when their pool was created);
 *   2. the parameters are resolved and the strategies chosen (--impl);
 *   3. setup(p);
 *   4. for each variant: its parameters, model(p) and workload(p); the
 *      global P is set (the workers copy it when the strategy forks its pool);
 *      then the strategy runs --repeat times;
 *   5. checks(r, p, check) over the results; done(report).
 *
 * Threads: none of its own. The engine refuses to create a pool while the
 * process has more than one thread, and each strategy creates its pool
 * itself, so the runner must stay single-threaded between runs. Parent-side
 * Lua (the stop rule, Lua tasks that a strategy runs in the parent) happens
 * on the engine's threads, always under scn_lock().
 */
#ifndef RUNNER_H
#define RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scenario.h"
#include "strategy.h"

typedef struct run_options {
    const char *impls;  /* comma-separated labels or strategy names; NULL: all */
    bool quick;
    char *const *sets;  /* "key=value" strings */
    int nsets;
    int repeat;         /* >= 1; 0: the scenario's `repeat`, else 1 */
    bool trace;         /* keep the trace for checks (r[label].trace), as the
                           scenario's trace = true does (--trace, --timeline) */
    double task_timeout; /* --task-timeout, seconds; 0: the scenario's, if any */
    int start_method;    /* --start-method: 1 + enum pool_start_method; 0: none given. A
                            variant's own start_method wins over it (a scenario that
                            compares methods keeps its comparison), and it wins over
                            the scenario's (run_start_method) */
    int transport;       /* --transport (enum pool_transport_kind); 0: POOLBENCH_TRANSPORT,
                            else the socket. A variant's own transport = wins,
                            except on an MPI job, where every pool is on MPI. */
    /* Told when each repetition starts (begin = true) and ends; may be NULL.
     * The CLI hangs its progress line here. */
    void (*progress)(void *ctx, const char *label, int rep, int nrep, bool begin);
    void *progress_ctx;
} run_options;

/* One worker process as the trace saw it. */
typedef struct run_worker {
    int slot;
    int pid;
    size_t tasks;   /* task executions it ran */
    double busy_s;  /* sum of their t_end - t_start */
    const char *host; /* its host when the workers are elsewhere (MPI), else NULL */
} run_worker;
/* The host of a worker slot, when the workers are not this machine's
 * children (run_mpi.c sets it on an MPI job: slot k is rank k + 1); NULL
 * otherwise. The report's workers list names each worker's host. */
extern const char *(*run_worker_host)(int slot);

/* Percentiles of per-task times from the trace (nearest rank): queue wait
 * (t_start - t_submit) and run time (t_end - t_start) of the tasks that
 * began (and ended, for run time). n = 0: none. */
typedef struct run_pct {
    size_t n;
    double p50, p90, p99, max;
} run_pct;

/* Percentiles computed as the values come (run_trace.c): exact (nearest
 * rank over every value) up to RUN_PCT_EXACT values, then from a histogram
 * of 64 buckets per octave, so within 1.1% of the exact value, in a few KB
 * whatever the number of tasks. */
#define RUN_PCT_EXACT 65536
typedef struct run_pct_acc {
    double *v;
    size_t n, cap;
    uint32_t *hist; /* non-NULL once past RUN_PCT_EXACT */
    double max;
} run_pct_acc;

/* A job's item numbering for rows read back from the spool (run_stream.c). */
typedef struct run_jobno {
    uint64_t job;
    uint32_t rank; /* the job's one item's number; 0: a job of many items (item + 1) */
} run_jobno;

/* What one variant measured: the repeats' wall times, and the last
 * repeat's outcome (counts, trace). */
typedef struct run_result {
    const scn_variant *v;
    scn_params p;                      /* the variant's parameters */
    char *stages[STRAT_MAX_STAGES];    /* the workload's stage names (trace) */
    int nstages;
    double wall_s, wall_min_s, wall_max_s; /* median, min, max of the repeats */
    double cpu_s;        /* this process's CPU seconds (user + system, every thread) over
                            the strategy's run, pool creation to teardown; median of the
                            repeats. Per-message costs are CPU; a descheduled worker
                            adds wall time but none of it (scenarios/overhead.lua) */
    double model_s;
    bool has_model;
    bool run_failed;                   /* the strategy could not run at all */
    int start_method;                  /* how its pool started workers (enum pool_start_method) */
    bool interrupted;                  /* the run was cut short (SIGINT, SIGTERM, time limit) */
    strat_outcome out;                 /* the last repeat */
    run_worker *workers;               /* from out.trace, by slot */
    int nworkers;
    long peak_rss_kb;                  /* the parent's high-water mark after the run */
    int parent_pid;
    run_pct queue_wait, run_time;      /* from out.trace (run_trace_stats) */
    /* Per trace record: the item's number from 1 (run_trace_index says how
     * it is found), 0 when unknown; NULL when no trace. */
    uint32_t *trace_index;
    /* The trace as it streamed from the engine (run_stream.c): the
     * aggregates above were computed as the records came, and the records
     * themselves are kept only when rows are wanted (keep_rows: --trace,
     * --timeline, trace = true), in an unnamed temporary file, the spool,
     * read back by run_trace_each. Nothing here grows with the number of
     * tasks but the spool on disk (and jobno, with the number of jobs). */
    size_t nstreamed;                  /* records seen in the last repeat */
    bool keep_rows;
    FILE *spool;
    size_t nspool;
    bool spool_failed;                 /* a write failed: rows are missing */
    run_jobno *jobno;
    size_t njobno;
    run_pct_acc wait_acc, run_acc;
} run_result;

typedef struct run_check {
    char *name;
    bool ok;
    char *detail; /* "" when none */
    char *reads;  /* a run_report.cannot field the check read, or NULL */
} run_check;

typedef struct run_report {
    scn_scenario *s;
    scn_params p;        /* resolved, before any variant's overrides */
    bool quick;
    int repeat;
    int cores;
    char os[128];        /* uname: sysname release */
    char date[40];       /* ISO 8601, local time */
    const scn_variant *selected[SCN_MAX_VARIANTS];
    int nselected;
    run_result results[SCN_MAX_VARIANTS];
    int nresults;
    run_check *checks;
    int nchecks;
    char skipped[256];   /* why checks stopped early (--impl left a label out), or "" */
    double task_timeout; /* seconds one task may run, 0: no limit */
    int start_method[SCN_MAX_VARIANTS]; /* each selected variant's, as run_start_method
                                           resolved it (enum pool_start_method) */
    int transport;       /* the run's transport (--transport, POOLBENCH_TRANSPORT, socket),
                            for the variants that name none */
    int vtransport[SCN_MAX_VARIANTS]; /* each selected variant's (run_variant_transport) */
    int interrupted;     /* 0, or why the run was cut short: SIGINT, SIGTERM or
                          * RUN_TIME_LIMIT (strat_interrupted()) */
    bool keep_trace;     /* checks get r[label].trace (trace = true, --trace, --timeline) */
    scn_params vparams[SCN_MAX_VARIANTS]; /* each selected variant's parameters, as
                                             run_prepare resolved them (the echo) */
    /* Fields the engine judged cannot report (compare sets them for CPython:
     * the twin's `cannot` keys): checks still read them from r[label], but
     * through a metamethod that notes the read, so the check that used one
     * is known (run_check.reads) and compare can show it as n/a. */
    const char *cannot[16];
    int ncannot;
    char cannot_seen[64]; /* the last such field read since the previous check() */
} run_report;

/* What strat_interrupt() is given when the run's time limit (--run-timeout)
 * expires; a signal number otherwise. */
#define RUN_TIME_LIMIT 1000

/* A variant's start method: its own start_method, else --start-method,
 * else the scenario's, else the fork server. */
int run_start_method(const scn_scenario *s, const scn_variant *v, const run_options *o);

/* "SIGINT", "SIGTERM", "run time limit": why for the reports. */
const char *run_interrupt_name(int why);

/*
 * The functions below come in the order of the files that define them, each
 * calling only the ones above it (and scenario.h):
 *
 *   result_fields.c     the fields of a result, for every report
 *   run_trace.c         the trace's item numbers, percentiles, Lua rows
 *   run_stream.c        the trace as it streams: aggregates, the spool
 *   runner_checks.c     checks(r, p, check) and done(report)
 *   runner_callbacks.c  Lua tasks, stop rule, observe hook
 *   runner.c            prepare, run the strategies, free
 */

/* ---- the fields of a result (result_fields.c) ------------------------------ */

/*
 * The fields of a result, in the order reports list them, handed to a
 * visitor: one list for the Lua table r[label], the JSON object and the CSV
 * row, so that the three cannot drift apart (docs/report-format.md).
 * A number that is absent (no model) comes with present = false.
 */
typedef struct run_visitor {
    void (*num)(void *ctx, const char *key, double v, bool present);
    void (*integer)(void *ctx, const char *key, long long v);
    void (*str)(void *ctx, const char *key, const char *v); /* NULL: absent */
    void (*boolean)(void *ctx, const char *key, bool v);
    void (*workers)(void *ctx, const char *key, const run_worker *w, int n);
    void (*params)(void *ctx, const char *key, const scn_params *p);
    /* The strategy's named figures (strat_fact_set): a table/object. */
    void (*facts)(void *ctx, const char *key, const strat_outcome *o);
    /* Percentiles (queue_wait, run_time): {n, p50, p90, p99, max}. */
    void (*pct)(void *ctx, const char *key, const run_pct *p);
    void *ctx;
} run_visitor;

void run_result_visit(const run_report *r, const run_result *res, const run_visitor *v);

/* ---- judging (runner_checks.c) --------------------------------------------- */

/* Step 5: checks(r, p, check) over the results, then done(report). 0, or
 * -1 with "file:line: message". */
int run_judge(run_report *r, char *err, size_t errlen);

/* Pushes the table checks(r, ...) receives: r[label] for every result, and
 * a marker error for a label --impl left out (caller holds scn_lock). */
void run_push_results(run_report *r);

/* ---- Lua tasks (runner_callbacks.c) ---------------------------------------- */

/*
 * Step 1: registers the scenario's Lua tasks (and the strategies' own) with
 * the engine; the trampolines call into s from then on, so s must outlive
 * every pool. Call once per process, before any pool exists.
 */
void run_register_tasks(scn_scenario *s);

/* ---- the trace, for every report (run_trace.c) -------------------------------- */

/* The item's number (from 1) of each trace record, into res->trace_index:
 * for a job over many items (map, imap, executor map) its index in the job
 * plus 1; for a job of one item (apply, submit), the job's place among the
 * jobs of its task in submission order, which is the item's number wherever
 * the strategy submits in item order (every C strategy's first stage). And
 * res->queue_wait, res->run_time. */
void run_trace_stats(run_result *res);

/* The percentile accumulators: add a value; then the percentiles, which
 * frees what the accumulator held (it starts again empty). */
void run_pct_add(run_pct_acc *a, double x);
run_pct run_pct_done(run_pct_acc *a);

/* Visits every trace record of res (the last repeat) with its item number,
 * in the order they came: from the spool when the rows streamed there, else
 * from out.trace. Returns how many were visited. */
typedef void (*run_trace_fn)(void *ctx, const pool_trace_rec *t, uint32_t index);
size_t run_trace_each(const run_result *res, run_trace_fn fn, void *ctx);
/* How many records run_trace_each visits. */
size_t run_trace_rows(const run_result *res);

/* Pushes res's trace as an array of rows {task, stage, slot, pid, job, item,
 * index, state, t_submit, t_start, t_end, t_result, t_callback} (times from
 * the strategy's start, nil when they did not happen). Caller holds the lock. */
void run_push_trace(lua_State *L, const run_result *res);
/* The workload stage a record's task is (1..nstages), 0 for the chain task
 * or a task that is no stage. */
int run_trace_stage(const run_result *res, const pool_trace_rec *t);

/* ---- the trace as it streams (run_stream.c) -------------------------------- */

/* Before each repeat: forgets the previous repeat's records and aggregates,
 * and (keep_rows) starts an empty spool. */
void run_stream_begin(run_result *res, bool keep_rows);
/* The strategy's trace_sink (ctx: the run_result): per-worker counts and
 * percentiles from each record, and the record into the spool. Called on
 * the engine's threads, one call at a time (under the pool's lock). */
void run_stream_take(void *ctx, const pool_trace_rec *recs, size_t n);
/* After the repeat: workers sorted by slot, percentiles, item numbers. */
void run_stream_end(run_result *res);
/* One record into res->workers (per_worker's counting). */
void run_worker_add(run_result *res, const pool_trace_rec *t);
/* res->workers, stable by slot. */
void run_workers_sort(run_result *res);
void run_stream_free(run_result *res);

/* ---- running (runner.c) ---------------------------------------------------- */

/* Step 2: resolves parameters and the --impl filter into r. 0, or -1 with a
 * usage message (unknown parameter or strategy: the valid ones are listed). */
int run_prepare(scn_scenario *s, const run_options *o, run_report *r, char *err,
                size_t errlen);

/* Steps 3 and 4. 0, or -1 with "file:line: message" when the scenario
 * itself failed (its model, workload, stop rule or setup raised an error). */
int run_strategies(run_report *r, const run_options *o, char *err, size_t errlen);

/* run_strategies, then run_judge: steps 3 to 5 in one call. */
int run_execute(run_report *r, const run_options *o, char *err, size_t errlen);

/* 0 when every check held and every strategy ran, else 1. */
int run_exit_status(const run_report *r);

void run_report_free(run_report *r);

#endif
