/*
 * run_trace.c: what the harness reads out of a strategy's trace beyond
 * per-worker counts: each record's item number, the percentiles of queue
 * wait and run time, and the rows a check reads (r[label].trace).
 *
 * The engine numbers items within their job from 0 (pool.h): a map's items
 * are 0..n-1 of one job, while an apply loop makes n jobs of item 0 each.
 * A scenario thinks in items 1..n, so each record gets the item's number
 * (run_trace_stats): a job over many items gives it directly (index + 1);
 * a job of one item gives its place among the jobs of its task, in
 * submission order (job ids grow), which is the item's number wherever a
 * strategy submits in item order. Records of tasks that never ended
 * (killed, timed out, never started) are numbered the same way, so a check
 * or the timeline can say which item was lost.
 *
 * Percentiles are nearest-rank over the tasks that began (queue wait) and
 * ended (run time), so a task killed before it began does not count as a
 * wait of zero.
 */
#include "runner.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int run_trace_stage(const run_result *res, const pool_trace_rec *t)
{
    const char *task = pool_task_name(t->task);
    for (int s = 0; s < res->nstages; s++)
        if (strcmp(res->stages[s], task) == 0)
            return s + 1;
    return 0;
}

/* Record order by (job, item): to find each job's records together. */
typedef struct rec_ref {
    const pool_trace_rec *t;
    size_t at;
} rec_ref;

static int by_job(const void *a, const void *b)
{
    const pool_trace_rec *x = ((const rec_ref *)a)->t, *y = ((const rec_ref *)b)->t;
    if (x->job != y->job)
        return x->job < y->job ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* The jobs of one item, by (task, job): their rank within a task is the
 * item's number. */
typedef struct single {
    unsigned task;
    uint64_t job;
    size_t at; /* its record */
} single;

static int by_task_job(const void *a, const void *b)
{
    const single *x = a, *y = b;
    if (x->task != y->task)
        return x->task < y->task ? -1 : 1;
    return (x->job > y->job) - (x->job < y->job);
}

static void number_items(run_result *res)
{
    const strat_outcome *o = &res->out;
    rec_ref *refs = malloc(o->ntrace * sizeof *refs);
    single *one = malloc(o->ntrace * sizeof *one);
    res->trace_index = calloc(o->ntrace, sizeof *res->trace_index);
    size_t none = 0;
    for (size_t i = 0; refs && one && res->trace_index && i < o->ntrace; i++)
        refs[i] = (rec_ref){&o->trace[i], i};
    if (refs && one && res->trace_index) {
        qsort(refs, o->ntrace, sizeof *refs, by_job);
        for (size_t i = 0, j; i < o->ntrace; i = j) {
            for (j = i + 1; j < o->ntrace && refs[j].t->job == refs[i].t->job; j++) {
            }
            if (j - i == 1 && refs[i].t->item == 0) {
                one[none++] = (single){refs[i].t->task, refs[i].t->job, refs[i].at};
                continue;
            }
            for (size_t k = i; k < j; k++)
                res->trace_index[refs[k].at] = refs[k].t->item + 1;
        }
        qsort(one, none, sizeof *one, by_task_job);
        for (size_t i = 0, rank = 0; i < none; i++) {
            rank = i > 0 && one[i].task == one[i - 1].task ? rank + 1 : 1;
            res->trace_index[one[i].at] = (uint32_t)rank;
        }
    }
    free(refs);
    free(one);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of them at or below. */
static double rank_of(const double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k > 0 ? k - 1 : 0];
}

static run_pct percentiles(double *v, size_t n)
{
    if (n == 0)
        return (run_pct){0};
    qsort(v, n, sizeof *v, cmp_double);
    return (run_pct){n, rank_of(v, n, 50), rank_of(v, n, 90), rank_of(v, n, 99), v[n - 1]};
}

void run_trace_stats(run_result *res)
{
    const strat_outcome *o = &res->out;
    free(res->trace_index);
    res->trace_index = NULL;
    res->queue_wait = res->run_time = (run_pct){0};
    if (o->ntrace == 0)
        return;
    number_items(res);
    double *wait = malloc(o->ntrace * sizeof *wait), *run = malloc(o->ntrace * sizeof *run);
    size_t nw = 0, nr = 0;
    for (size_t i = 0; wait && run && i < o->ntrace; i++) {
        const pool_trace_rec *t = &o->trace[i];
        if (t->t_start <= 0)
            continue;
        if (t->t_submit > 0)
            wait[nw++] = fmax(0, t->t_start - t->t_submit);
        if (t->t_end >= t->t_start)
            run[nr++] = t->t_end - t->t_start;
    }
    if (wait && run) {
        res->queue_wait = percentiles(wait, nw);
        res->run_time = percentiles(run, nr);
    }
    free(wait);
    free(run);
}

/* t as seconds from the strategy's start into row[k]; absent stays nil. */
static void row_time(lua_State *L, const char *k, double t, double t0)
{
    if (t > 0) {
        lua_pushnumber(L, t - t0);
        lua_setfield(L, -2, k);
    }
}

void run_push_trace(lua_State *L, const run_result *res)
{
    const strat_outcome *o = &res->out;
    lua_createtable(L, o->ntrace > 0x7fffffff ? 0x7fffffff : (int)o->ntrace, 0);
    for (size_t i = 0; i < o->ntrace && i < 0x7fffffff; i++) {
        const pool_trace_rec *t = &o->trace[i];
        lua_createtable(L, 0, 13);
        lua_pushstring(L, pool_task_name(t->task));
        lua_setfield(L, -2, "task");
        lua_pushinteger(L, run_trace_stage(res, t));
        lua_setfield(L, -2, "stage");
        lua_pushinteger(L, t->slot);
        lua_setfield(L, -2, "slot");
        lua_pushinteger(L, t->pid);
        lua_setfield(L, -2, "pid");
        if (run_worker_host && t->slot >= 0) { /* MPI: the worker's host */
            lua_pushstring(L, run_worker_host(t->slot));
            lua_setfield(L, -2, "host");
        }
        lua_pushinteger(L, (lua_Integer)t->job);
        lua_setfield(L, -2, "job");
        lua_pushinteger(L, t->item);
        lua_setfield(L, -2, "item");
        lua_pushinteger(L, res->trace_index ? res->trace_index[i] : 0);
        lua_setfield(L, -2, "index");
        lua_pushstring(L, pool_trace_state_name(t->state));
        lua_setfield(L, -2, "state");
        row_time(L, "t_submit", t->t_submit, o->t0);
        row_time(L, "t_start", t->t_start, o->t0);
        row_time(L, "t_end", t->t_end, o->t0);
        row_time(L, "t_result", t->t_result, o->t0);
        row_time(L, "t_callback", t->t_callback, o->t0);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}
