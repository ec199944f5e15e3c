/*
 * runner.c: a scenario's workload through each of its strategies, then its
 * checks (the order is in runner.h).
 *
 * Lua tasks. The engine runs named C tasks, so each Lua task is registered
 * under its name with one C trampoline, lua_task(), whose udata is the name.
 * In a worker, the trampoline runs in the worker's own copy of the parent's
 * Lua state (a worker is a fork of the fork server, itself a fork of this
 * process at pool_create, after the runner set P): it finds tasks[name],
 * pushes the arguments (luav_push_args), calls the function under a message
 * handler that appends a traceback, and packs the result (luav_pack). The
 * same trampoline may run in the parent, on the result-handler thread, when
 * a strategy runs a stage there (callback_chain): hence scn_lock() around
 * every use, in workers too (there it is simply free).
 *
 * The stop rule is the same idea the other way: strategy.c calls
 * run_stop() under its own lock, and run_stop() calls the Lua stop(result,
 * item) under ours. Lock order: strategy.c's lock, then scn_lock; the
 * trampoline takes only scn_lock, so no cycle.
 *
 * After the runs, runner_checks.c hands the results to the scenario's
 * checks and done hooks.
 */
#include "runner.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "lua_values.h"

/* The scenario whose tasks are registered: set once, before any pool. */
static scn_scenario *run_cur;

/* ---- the Lua task trampoline ---------------------------------------------- */

typedef struct task_call {
    const char *name;
    const msgpack_object_array *args;
} task_call;

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Under lua_pcall: luav_push_args may raise, as may the task. */
static int call_task(lua_State *L)
{
    const task_call *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_cur->tasks_ref);
    lua_getfield(L, -1, c->name);
    luav_push_args(L, c->args); /* checks the stack room itself */
    lua_call(L, (int)c->args->size, 1);
    return 1;
}

static int lua_task(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    const char *name = pool_task_udata(ctx);
    if (run_cur == NULL)
        return pool_task_fail(ctx, "Lua task '%s': no scenario is loaded", name);
    scn_lock();
    lua_State *L = run_cur->L;
    int top = lua_gettop(L), rc = 0;
    task_call c = {name, args};
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, call_task);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
        rc = pool_task_fail(ctx, "%s", lua_tostring(L, -1));
    } else {
        /* Packed aside first: on failure luav_pack may leave a partial
         * value, which must not reach the engine's buffer. */
        msgpack_sbuffer buf;
        msgpack_packer pk;
        char why[256];
        msgpack_sbuffer_init(&buf);
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        if (luav_pack(L, -1, &pk, why, sizeof why) != 0)
            rc = pool_task_fail(ctx, "task '%s' returned a value that cannot cross processes: %s",
                                name, why);
        else
            out->callback(out->data, buf.data, buf.size);
        msgpack_sbuffer_destroy(&buf);
    }
    lua_settop(L, top);
    scn_unlock();
    return rc;
}

void run_register_tasks(scn_scenario *s)
{
    run_cur = s;
    strat_register_tasks();
    for (int i = 0; i < s->ntasks; i++)
        pool_task_register(s->tasks[i], lua_task, s->tasks[i]);
}

/* ---- the stop rule -------------------------------------------------------- */

typedef struct stop_ctx {
    scn_scenario *s;
    int ref;                      /* stop, or LUA_NOREF */
    int observe_ref;              /* observe, or LUA_NOREF */
    const msgpack_object *result; /* the call in progress */
    const char *error;            /* its error message (observe only) */
    size_t item;
    bool failed;                  /* the first error is kept, the rule then says no */
    char err[SCN_ERR];
} stop_ctx;

static int call_stop(lua_State *L)
{
    stop_ctx *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    if (c->result)
        luav_push(L, c->result);
    else
        lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)c->item + 1); /* 1-based, as Lua lists are */
    lua_call(L, 2, 1);
    return 1;
}

static int call_observe(lua_State *L)
{
    stop_ctx *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->observe_ref);
    if (c->result)
        luav_push(L, c->result);
    else
        lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)c->item + 1);
    if (c->error)
        lua_pushstring(L, c->error);
    else
        lua_pushnil(L);
    lua_call(L, 3, 0);
    return 0;
}

/* The workload's observe(result, item, error): every final result, in the
 * parent, under the same lock as the stop rule. */
static void run_observe(void *ctx, int status, const msgpack_object *result, const char *error,
                        size_t item)
{
    stop_ctx *c = ctx;
    char err[SCN_ERR];
    scn_lock();
    int top = lua_gettop(c->s->L);
    c->result = result;
    c->error = status == POOL_OK ? NULL : (error ? error : pool_status_name(status));
    c->item = item;
    lua_pushcfunction(c->s->L, call_observe);
    lua_pushlightuserdata(c->s->L, c);
    int rc = scn_pcall(c->s, 1, 0, err, sizeof err);
    if (rc != 0 && !c->failed) {
        c->failed = true;
        snprintf(c->err, sizeof c->err, "%s", rc > 0 ? "observe raised a table" : err);
    }
    lua_settop(c->s->L, top);
    scn_unlock();
}

static bool run_stop(void *ctx, const msgpack_object *result, size_t item)
{
    stop_ctx *c = ctx;
    bool yes = false;
    char err[SCN_ERR];
    scn_lock();
    int top = lua_gettop(c->s->L);
    c->result = result;
    c->item = item;
    lua_pushcfunction(c->s->L, call_stop);
    lua_pushlightuserdata(c->s->L, c);
    int rc = scn_pcall(c->s, 1, 1, err, sizeof err);
    if (rc == 0)
        yes = lua_toboolean(c->s->L, -1);
    else if (!c->failed) {
        c->failed = true;
        snprintf(c->err, sizeof c->err, "%s", rc > 0 ? "stop raised a table" : err);
    }
    lua_settop(c->s->L, top);
    scn_unlock();
    return yes;
}

/* ---- preparing ------------------------------------------------------------ */

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

int run_prepare(scn_scenario *s, const run_options *o, run_report *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->quick = o->quick;
    r->repeat = o->repeat;
    if (o->repeat < 1) {
        snprintf(err, errlen, "--repeat must be at least 1 (got %d)", o->repeat);
        return -1;
    }
    if (scn_params_resolve(s, o->quick, o->sets, o->nsets, &r->p, err, errlen) != 0)
        return -1;
    r->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(r->os, sizeof r->os, "%.60s %.60s", u.sysname, u.release);
    time_t now = time(NULL);
    struct tm tm;
    strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%S%z", localtime_r(&now, &tm));

    /* --impl: every name must be a label or a strategy of this scenario. */
    for (const char *p = o->impls; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
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
    /* A name that is a label selects that variant alone; a strategy name
     * that is no label selects every variant of that strategy. */
    for (int i = 0; i < s->nvariants; i++) {
        const scn_variant *v = &s->variants[i];
        bool by_strategy = false;
        if (o->impls && in_list(o->impls, v->impl->name)) {
            by_strategy = true;
            for (int j = 0; j < s->nvariants && by_strategy; j++)
                by_strategy = strcmp(s->variants[j].label, v->impl->name) != 0;
        }
        if (o->impls == NULL || in_list(o->impls, v->label) || by_strategy)
            r->selected[r->nselected++] = v;
    }
    return 0;
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

static int cmp_worker(const void *a, const void *b)
{
    const run_worker *x = a, *y = b;
    return x->slot != y->slot ? x->slot - y->slot : 0;
}

/* Per-worker counts from the trace: every pid that ran a task. A record
 * with no pid (its worker died before saying who it was) counts for its
 * slot with pid 0. Records that never reached a worker (slot -1) count for
 * nobody. */
static void per_worker(run_result *res)
{
    const strat_outcome *o = &res->out;
    if (o->ntrace == 0 && o->nworker_pids > 0) {
        /* No pool, no trace (process_per_task): each process ran one
         * item's stages, so list the processes it reported (the first 64). */
        res->workers = calloc((size_t)o->nworker_pids, sizeof *res->workers);
        for (int k = 0; res->workers && k < o->nworker_pids; k++)
            res->workers[res->nworkers++] = (run_worker){
                .slot = -1, .pid = o->worker_pids[k],
                .tasks = (size_t)(res->nstages > 0 ? res->nstages : 1)};
        return;
    }
    for (size_t i = 0; i < o->ntrace; i++) {
        const pool_trace_rec *t = &o->trace[i];
        if (t->slot < 0)
            continue;
        int k = 0;
        while (k < res->nworkers &&
               !(res->workers[k].pid == t->pid && (t->pid != 0 || res->workers[k].slot == t->slot)))
            k++;
        if (k == res->nworkers) {
            run_worker *w = realloc(res->workers, (size_t)(k + 1) * sizeof *w);
            if (w == NULL)
                return;
            res->workers = w;
            w[k] = (run_worker){.slot = t->slot, .pid = t->pid};
            res->nworkers++;
        }
        res->workers[k].tasks++;
        if (t->t_start > 0 && t->t_end >= t->t_start)
            res->workers[k].busy_s += t->t_end - t->t_start;
    }
    /* Stable by slot: qsort is not stable, so order ties by first sight
     * with a tiny insertion sort instead when slots repeat (respawns). */
    for (int i = 1; i < res->nworkers; i++)
        for (int j = i; j > 0 && cmp_worker(&res->workers[j - 1], &res->workers[j]) > 0; j--) {
            run_worker t = res->workers[j];
            res->workers[j] = res->workers[j - 1];
            res->workers[j - 1] = t;
        }
}

static int run_variant(run_report *r, const scn_variant *v, const run_options *o,
                       run_result *res, char *err, size_t errlen)
{
    scn_scenario *s = r->s;
    scn_workload w;
    res->v = v;
    scn_params_for(s, &r->p, v, &res->p);
    int rc = scn_model_eval(s, v, &res->p, &res->model_s, err, errlen);
    if (rc < 0 || scn_workload_eval(s, &res->p, &w, err, errlen) != 0)
        return -1;
    res->has_model = rc == 1;
    for (int i = 0; i < w.nstages; i++)
        res->stages[res->nstages++] = strdup(w.stages[i]);

    stop_ctx sc = {.s = s, .ref = w.stop_ref, .observe_ref = w.observe_ref};
    strat_workload sw = {
        .workers = (int)scn_param_long(s, &res->p, "workers", r->cores),
        .chunksize = scn_param_long(s, &res->p, "chunksize", 0),
        .maxtasksperchild = scn_param_long(s, &res->p, "maxtasksperchild", 0),
        .initializer = w.initializer,
        .trace = true,
        .items = w.items.data,
        .items_len = w.items.size,
        .n = w.n,
        .nstages = w.nstages,
        .stop = w.stop_ref != LUA_NOREF ? run_stop : NULL,
        .stop_ctx = &sc,
        .observe = w.observe_ref != LUA_NOREF ? run_observe : NULL,
        .observe_ctx = &sc,
        .fire_and_forget = w.fire_and_forget,
    };
    for (int i = 0; i < w.nstages; i++)
        sw.stages[i] = w.stages[i];
    scn_set_P(s, &res->p); /* before the strategy forks its pool */

    bool hwm_reset = run_peak_reset();
    double *walls = calloc((size_t)r->repeat, sizeof *walls);
    int done = 0;
    for (int rep = 0; rep < r->repeat && walls; rep++) {
        strat_outcome out;
        memset(&out, 0, sizeof out);
        if (o->progress)
            o->progress(o->progress_ctx, v->label, rep + 1, r->repeat, true);
        int ran = v->impl->run(&sw, &out);
        if (o->progress)
            o->progress(o->progress_ctx, v->label, rep + 1, r->repeat, false);
        walls[done++] = out.wall_s;
        strat_outcome_free(&res->out);
        res->out = out; /* the last repeat's outcome is the one reported */
        if (ran != 0) {
            res->run_failed = true;
            break; /* the pool could not start: repeating will not help */
        }
        if (sc.failed)
            break;
    }
    if (done > 0) {
        qsort(walls, (size_t)done, sizeof *walls, cmp_double);
        res->wall_min_s = walls[0];
        res->wall_max_s = walls[done - 1];
        res->wall_s = done % 2 ? walls[done / 2] : (walls[done / 2 - 1] + walls[done / 2]) / 2;
    }
    free(walls);
    per_worker(res);
    res->peak_rss_kb = run_peak_kb(hwm_reset);
    res->parent_pid = (int)getpid();
    scn_workload_free(s, &w);
    if (sc.failed) {
        snprintf(err, errlen, "%s", sc.err);
        return -1;
    }
    return 0;
}

/* ---- the fields of a result ------------------------------------------------- */

void run_result_visit(const run_report *r, const run_result *res, const run_visitor *v)
{
    const strat_outcome *o = &res->out;
    void *c = v->ctx;
    bool dev = res->has_model && res->model_s > 0 && !res->run_failed;
    v->str(c, "impl", res->v->impl->name);
    v->str(c, "label", res->v->label);
    v->num(c, "wall_s", res->wall_s, true);
    v->num(c, "wall_min_s", res->wall_min_s, true);
    v->num(c, "wall_max_s", res->wall_max_s, true);
    v->integer(c, "repeats", r->repeat);
    v->num(c, "model_s", res->model_s, res->has_model);
    v->num(c, "deviation", dev ? res->wall_s / res->model_s - 1 : 0, dev);
    v->num(c, "startup_s", o->startup_s, true);
    v->num(c, "answer_s", o->answer_s, true);
    v->num(c, "stopped_s", o->stopped_s, true);
    v->integer(c, "tasks_run", (long long)o->tasks_run);
    v->integer(c, "tasks_total", (long long)o->tasks_total);
    v->integer(c, "tasks_after_stop", (long long)o->tasks_after_stop);
    v->integer(c, "results", (long long)o->results);
    v->integer(c, "errors", (long long)o->errors);
    v->integer(c, "errors_unobserved", (long long)o->errors_unobserved);
    v->str(c, "first_error", o->first_error[0] ? o->first_error : NULL);
    v->str(c, "note", o->note[0] ? o->note : NULL);
    v->integer(c, "callbacks", (long long)o->callbacks);
    v->integer(c, "callback_pid", o->callback_pid);
    v->integer(c, "callbacks_max_overlap", o->callbacks_max_overlap);
    v->integer(c, "parent_pid", res->parent_pid);
    v->boolean(c, "stopped_early", o->stopped_early);
    v->boolean(c, "run_failed", res->run_failed);
    v->integer(c, "peak_rss_kb", res->peak_rss_kb);
    v->integer(c, "messages_sent", (long long)o->stats.messages_sent);
    v->integer(c, "messages_received", (long long)o->stats.messages_received);
    v->integer(c, "workers_started", (long long)o->stats.workers_started);
    v->integer(c, "worker_deaths", (long long)o->stats.worker_deaths);
    v->facts(c, "facts", o);
    v->workers(c, "per_worker", res->workers, res->nworkers);
    v->integer(c, "cores", r->cores);
    v->params(c, "params", &res->p);
}

/* ---- the whole run ------------------------------------------------------------ */

int run_execute(run_report *r, const run_options *o, char *err, size_t errlen)
{
    if (scn_setup(r->s, &r->p, err, errlen) != 0)
        return -1;
    for (int i = 0; i < r->nselected; i++) {
        run_result *res = &r->results[r->nresults++];
        if (run_variant(r, r->selected[i], o, res, err, errlen) != 0) {
            /* A model or workload that failed before anything ran leaves
             * no row; a stop rule that failed mid-run leaves its figures. */
            if (res->out.t0 == 0 && !res->run_failed && res->out.ntrace == 0)
                r->nresults--;
            return -1;
        }
    }
    if (run_checks(r, err, errlen) != 0)
        return -1;
    return run_done(r, err, errlen);
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
        for (int k = 0; k < res->nstages; k++)
            free(res->stages[k]);
    }
    for (int i = 0; i < r->nchecks; i++) {
        free(r->checks[i].name);
        free(r->checks[i].detail);
    }
    free(r->checks);
    memset(r, 0, sizeof *r);
}
