/*
 * runner.c: a scenario's workload through each of its strategies (the
 * order is in runner.h).
 *
 * run_prepare resolves the parameters and the --impl filter; run_strategies
 * then runs each selected variant --repeat times and keeps what it measured:
 * the median, min and max wall time, the last repeat's outcome, per-worker
 * counts from the trace, and the parent's peak memory. The scenario's Lua is
 * reached through scenario.h (model, workload, setup) and
 * runner_callbacks.c (Lua tasks, stop rule, observe hook).
 *
 * Judging what was measured is runner_checks.c; run_execute, the whole run
 * for callers that want it in one call (tests, `poolbench lab -c`), calls it
 * last. Nothing there calls back here.
 */
#include "runner.h"
#include "run_spawn.h"

#include <lauxlib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "lua_strategy.h"
#include "runner_callbacks.h"

/* ---- preparing ------------------------------------------------------------ */

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* The machine and the date, for the echo and the reports. */
static void describe_machine(run_report *r)
{
    r->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(r->os, sizeof r->os, "%.60s %.60s", u.sysname, u.release);
    time_t now = time(NULL);
    struct tm tm;
    strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%S%z", localtime_r(&now, &tm));
}

/* --impl: every name must be a label or a strategy of this scenario. 0, or
 * -1 with the valid labels listed. */
static int check_impls(const scn_scenario *s, const char *impls, char *err, size_t errlen)
{
    for (const char *p = impls; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (int i = 0; i < s->nvariants && !found; i++)
            found = (strlen(s->variants[i].label) == n && !strncmp(s->variants[i].label, p, n)) ||
                    (strlen(s->variants[i].impl->name) == n &&
                     !strncmp(s->variants[i].impl->name, p, n));
        if (!found) {
            char list[1024] = "";
            for (int i = 0; i < s->nvariants; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i ? ", " : "", s->variants[i].label);
            snprintf(err, errlen, "unknown strategy '%.*s' for %s (valid: %s)", (int)n, p,
                     s->name, list);
            return -1;
        }
    }
    return 0;
}

/* A name that is a label selects that variant alone; a strategy name that
 * is no label selects every variant of that strategy; no --impl, all. */
static void select_variants(const scn_scenario *s, const char *impls, run_report *r)
{
    for (int i = 0; i < s->nvariants; i++) {
        const scn_variant *v = &s->variants[i];
        bool by_strategy = false;
        if (impls && in_list(impls, v->impl->name)) {
            by_strategy = true;
            for (int j = 0; j < s->nvariants && by_strategy; j++)
                by_strategy = strcmp(s->variants[j].label, v->impl->name) != 0;
        }
        if (impls == NULL || in_list(impls, v->label) || by_strategy)
            r->selected[r->nselected++] = v;
    }
}

/* Every selected variant's parameters, model and workload, evaluated once
 * before anything is printed: a mistake there (pos > n raised by workload,
 * a set function out of range) is the run's first and only output, not a
 * message after the table's header. The workload is evaluated again before
 * its strategy runs (after setup), so it must not count on being called
 * once. */
static int precheck_variants(run_report *r, char *err, size_t errlen)
{
    for (int i = 0; i < r->nselected; i++) {
        const scn_variant *v = r->selected[i];
        double m;
        scn_workload w;
        if (scn_params_for_eval(r->s, &r->p, v, &r->vparams[i], err, errlen) != 0 ||
            scn_model_eval(r->s, v, &r->vparams[i], &m, err, errlen) < 0 ||
            scn_workload_eval(r->s, &r->vparams[i], &w, err, errlen) != 0)
            return -1;
        scn_workload_free(r->s, &w);
    }
    return 0;
}

/* A variant's transport: its own transport =, else --transport, else
 * POOLBENCH_TRANSPORT (r->transport), except on an MPI job. A spawn variant whose transport only
 * comes from the environment runs on the socket, the one transport spawn
 * works with, so that make test-shm still runs the scenarios that compare
 * start methods; a transport asked for by name is kept (and refused). */
static int run_variant_transport(const run_report *r, const scn_variant *v,
                                 const run_options *o, int start_method)
{
    /* On an MPI job every pool is on MPI, pinned or not, since a pool on
     * the socket or shm forks, and rank 0 has called MPI_Init (docs/mpi.md).
     * The report then says mpi for it. */
    if (r->transport == POOL_TRANSPORT_MPI)
        return POOL_TRANSPORT_MPI;
    if (v->transport > 0)
        return v->transport;
    if (o->transport <= 0 && start_method == POOL_START_SPAWN &&
        pool_start_method_check(start_method, r->transport) != POOL_OK)
        return POOL_TRANSPORT_SOCKET;
    return r->transport;
}

int run_prepare(scn_scenario *s, const run_options *o, run_report *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->quick = o->quick;
    /* --repeat, else the scenario's repeat = N, else 1 */
    r->repeat = o->repeat != 0 ? o->repeat : s->repeat > 0 ? s->repeat : 1;
    r->keep_trace = o->trace || s->trace;
    if (r->repeat < 1) {
        snprintf(err, errlen, "--repeat must be at least 1 (got %d)", o->repeat);
        return -1;
    }
    if (scn_params_resolve(s, o->quick, o->sets, o->nsets, &r->p, err, errlen) != 0)
        return -1;
    r->task_timeout = o->task_timeout > 0 ? o->task_timeout : s->task_timeout;
    r->transport = o->transport > 0 ? o->transport : pool_transport_default();
    if (r->transport < 0) {
        snprintf(err, errlen, "POOLBENCH_TRANSPORT='%s' is not a transport (valid: socket, shm); "
                 "and mpi under mpirun (docs/mpi.md)",
                 getenv("POOLBENCH_TRANSPORT"));
        return -1;
    }
    describe_machine(r);
    if (check_impls(s, o->impls, err, errlen) != 0)
        return -1;
    select_variants(s, o->impls, r);
    for (int i = 0; i < r->nselected; i++) {
        r->start_method[i] = run_start_method(s, r->selected[i], o);
        /* A pair the engine cannot start (spawn on shm, say) is refused
         * here, before anything runs, with what works. */
        int tr = r->vtransport[i] = run_variant_transport(r, r->selected[i], o,
                                                          r->start_method[i]);
        if (pool_start_method_check(r->start_method[i], tr) != POOL_OK) {
            const char *e = pool_last_error();
            if (strncmp(e, "pool_create: ", 13) == 0)
                e += 13;
            snprintf(err, errlen, "variant '%s': %s", r->selected[i]->label, e);
            return -1;
        }
    }
    return precheck_variants(r, err, errlen);
}

/* ---- one variant ------------------------------------------------------------ */

/*
 * The parent's peak memory during one strategy's runs. The kernel keeps a
 * high-water mark per process (VmHWM); writing 5 to /proc/self/clear_refs
 * resets it, so each strategy's peak is its own and not the largest of all
 * that ran before it (map's would hide imap's: phenomenon P12). Where the
 * reset is not allowed, the process-wide ru_maxrss is all there is.
 */
static bool run_peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static long run_peak_kb(bool was_reset)
{
    if (was_reset) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        long kb = -1;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
                break;
        if (f)
            fclose(f);
        if (kb >= 0)
            return kb;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

const char *(*run_worker_host)(int slot);

/* Per-worker counts from a trace copied whole (out.trace; a run streams
 * its records into run_stream_take instead): every pid that ran a task. A
 * record with no pid (its worker died before saying who it was) counts for
 * its slot with pid 0. Records that never reached a worker (slot -1) count
 * for nobody. */
static void per_worker(run_result *res)
{
    const strat_outcome *o = &res->out;
    if (o->ntrace == 0 && res->nstreamed == 0 && o->nworker_pids > 0) {
        /* No pool, no trace (process_per_task): each process ran one
         * item's stages, so list the processes it reported (the first 64). */
        free(res->workers);
        res->nworkers = 0;
        res->workers = calloc((size_t)o->nworker_pids, sizeof *res->workers);
        for (int k = 0; res->workers && k < o->nworker_pids; k++)
            res->workers[res->nworkers++] = (run_worker){
                .slot = -1, .pid = o->worker_pids[k],
                .tasks = (size_t)(res->nstages > 0 ? res->nstages : 1)};
        return;
    }
    if (o->ntrace == 0)
        return;
    for (size_t i = 0; i < o->ntrace; i++)
        run_worker_add(res, &o->trace[i]);
    run_workers_sort(res);
}


/* What the strategy is handed: the workload, the runner's parameters, and
 * the stop rule and observe hook (sc) when the workload has them. */
static void strategy_input(const run_report *r, run_result *res, const scn_workload *w,
                           stop_ctx *sc, strat_workload *sw)
{
    const scn_scenario *s = r->s;
    *sw = (strat_workload){
        .workers = (int)scn_param_long(s, &res->p, "workers", r->cores),
        .chunksize = scn_param_long(s, &res->p, "chunksize", 0),
        .buffersize = scn_param_long(s, &res->p, "buffersize", 0),
        .maxtasksperchild = scn_param_long(s, &res->p, "maxtasksperchild", 0),
        .initializer = w->initializer,
        .initargs = w->initargs.size ? w->initargs.data : NULL,
        .initargs_len = w->initargs.size,
        .trace = true,
        .trace_sink = run_stream_take, /* aggregates as the run goes (run_stream.c) */
        .trace_ctx = (void *)res,
        .items = w->items.data,
        .items_len = w->items.size,
        .items_count = w->count,
        .n = w->n,
        .nstages = w->nstages,
        .stop = w->stop_ref != LUA_NOREF ? run_stop : NULL,
        .stop_ctx = sc,
        .observe = w->observe_ref != LUA_NOREF ? run_observe : NULL,
        .observe_ctx = sc,
        .fire_and_forget = w->fire_and_forget,
        .task_timeout = r->task_timeout,
        .transport = r->transport, /* run_variant sets the variant's: run_variant_transport */
    };
    for (int i = 0; i < w->nstages; i++)
        sw->stages[i] = w->stages[i];
}

/* The median of n values (sorted in place); 0 when there are none. */
static double median(double *v, int n)
{
    if (v == NULL || n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median, min and max of the n wall times (sorted in place). */
static void wall_stats(run_result *res, double *walls, int n)
{
    if (n == 0)
        return;
    res->wall_s = median(walls, n); /* sorts them */
    res->wall_min_s = walls[0];
    res->wall_max_s = walls[n - 1];
}

/* This process's CPU time so far, every thread, in seconds. */
static double process_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The strategy, --repeat times; the last repeat's outcome is the one
 * reported. Stops early when the pool could not start (repeating will not
 * help) or a stop rule raised an error. */
static void run_repeats(const run_report *r, const scn_variant *v, const run_options *o,
                        const strat_workload *sw, const stop_ctx *sc, run_result *res)
{
    double *walls = calloc((size_t)r->repeat, sizeof *walls);
    double *cpus = calloc((size_t)r->repeat, sizeof *cpus);
    int done = 0;
    for (int rep = 0; rep < r->repeat && walls; rep++) {
        strat_outcome out;
        memset(&out, 0, sizeof out);
        if (o->progress)
            o->progress(o->progress_ctx, v->label, rep + 1, r->repeat, true);
        run_facts_begin(r->s); /* pb.fact's figures for this repeat */
        run_stream_begin(res, r->keep_trace); /* the rows kept only when wanted */
        double cpu0 = process_cpu_s();
        int ran = v->impl->run(sw, &out);
        if (cpus)
            cpus[done] = process_cpu_s() - cpu0;
        run_facts_end(r->s, &out);
        if (o->progress)
            o->progress(o->progress_ctx, v->label, rep + 1, r->repeat, false);
        walls[done++] = out.wall_s;
        strat_outcome_free(&res->out);
        res->out = out;
        if (strat_interrupted()) { /* what was measured so far stands, marked */
            res->interrupted = true;
            break;
        }
        if (ran != 0) {
            res->run_failed = true;
            break;
        }
        if (sc->failed)
            break;
    }
    wall_stats(res, walls, done);
    res->cpu_s = median(cpus, done);
    free(cpus);
    free(walls);
}

int run_start_method(const scn_scenario *s, const scn_variant *v, const run_options *o)
{
    if (v->start_method >= 0)
        return v->start_method;
    if (o->start_method > 0)
        return o->start_method - 1;
    return s->start_method >= 0 ? s->start_method : POOL_START_FORKSERVER;
}

/* One variant: its parameters, model and workload, then its runs. */
static int run_variant(run_report *r, const scn_variant *v, const run_options *o,
                       run_result *res, char *err, size_t errlen)
{
    scn_scenario *s = r->s;
    scn_workload w;
    res->v = v;
    if (scn_params_for_eval(s, &r->p, v, &res->p, err, errlen) != 0)
        return -1;
    int rc = scn_model_eval(s, v, &res->p, &res->model_s, err, errlen);
    if (rc < 0 || scn_workload_eval(s, &res->p, &w, err, errlen) != 0)
        return -1;
    res->has_model = rc == 1;
    for (int i = 0; i < w.nstages; i++)
        res->stages[res->nstages++] = strdup(w.stages[i]);

    stop_ctx sc = {.s = s, .ref = w.stop_ref, .observe_ref = w.observe_ref};
    strat_workload sw;
    strategy_input(r, res, &w, &sc, &sw);
    scn_set_P(s, &res->p); /* before the strategy forks its pool */
    res->start_method = sw.start_method = run_start_method(s, v, o);
    sw.transport = run_variant_transport(r, v, o, sw.start_method);
    char **spawn_argv = NULL;
    if (sw.start_method == POOL_START_SPAWN &&
        (spawn_argv = run_spawn_argv(s, &res->p, err, errlen)) == NULL) {
        scn_workload_free(s, &w);
        return -1;
    }
    sw.spawn_argv = (const char *const *)spawn_argv;
    bool hwm_reset = run_peak_reset();
    lua_strat_bind(s, v->impl); /* a Lua strategy's run needs its scenario */
    run_repeats(r, v, o, &sw, &sc, res);
    run_stream_end(res); /* per_worker, queue wait, run time, item numbers */
    per_worker(res);     /* a strategy that copied its trace whole, or none */
    if (res->out.ntrace > 0)
        run_trace_stats(res);
    res->peak_rss_kb = run_peak_kb(hwm_reset);
    res->parent_pid = (int)getpid();
    run_spawn_argv_free(spawn_argv);
    scn_workload_free(s, &w);
    if (sc.failed) {
        snprintf(err, errlen, "%s", sc.err);
        return -1;
    }
    return 0;
}

/* ---- the whole run ------------------------------------------------------------ */

int run_strategies(run_report *r, const run_options *o, char *err, size_t errlen)
{
    if (strat_interrupted()) { /* before anything ran: not even setup */
        r->interrupted = strat_interrupted();
        return 0;
    }
    if (scn_setup(r->s, &r->p, err, errlen) != 0) {
        r->interrupted = strat_interrupted();
        return -1;
    }
    for (int i = 0; i < r->nselected && !strat_interrupted(); i++) {
        run_result *res = &r->results[r->nresults++];
        if (run_variant(r, r->selected[i], o, res, err, errlen) != 0) {
            /* A model or workload that failed before anything ran leaves
             * no row; a stop rule that failed mid-run leaves its figures. */
            if (res->out.t0 == 0 && !res->run_failed && res->out.ntrace == 0)
                r->nresults--;
            r->interrupted = strat_interrupted();
            return -1;
        }
    }
    r->interrupted = strat_interrupted();
    return 0;
}

const char *run_interrupt_name(int why)
{
    switch (why) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case RUN_TIME_LIMIT: return "run time limit";
    default: return why ? "a signal" : NULL;
    }
}

int run_execute(run_report *r, const run_options *o, char *err, size_t errlen)
{
    if (run_strategies(r, o, err, errlen) != 0)
        return -1;
    return run_judge(r, err, errlen);
}

int run_exit_status(const run_report *r)
{
    for (int i = 0; i < r->nchecks; i++)
        if (!r->checks[i].ok)
            return 1;
    return 0;
}

void run_report_free(run_report *r)
{
    for (int i = 0; i < r->nresults; i++) {
        run_result *res = &r->results[i];
        strat_outcome_free(&res->out);
        free(res->workers);
        free(res->trace_index);
        run_stream_free(res);
        for (int k = 0; k < res->nstages; k++)
            free(res->stages[k]);
    }
    for (int i = 0; i < r->nchecks; i++) {
        free(r->checks[i].name);
        free(r->checks[i].detail);
        free(r->checks[i].reads);
    }
    free(r->checks);
    memset(r, 0, sizeof *r);
}
