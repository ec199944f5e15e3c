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
#include <stdio.h>
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
static size_t rank_k(size_t n, double p)
{
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return k > 0 ? k - 1 : 0;
}

/* The histogram past RUN_PCT_EXACT: 64 buckets per octave from 1 ns, so a
 * bucket's upper edge is within 1.1% of any value in it; below 1 ns (or 0)
 * is bucket 0, beyond 2^40 ns (18 min) the last. */
#define PCT_PER_OCTAVE 64
#define PCT_BUCKETS (PCT_PER_OCTAVE * 40)
#define PCT_FLOOR 1e-9

static size_t pct_bucket(double x)
{
    if (!(x > PCT_FLOOR))
        return 0;
    double b = ceil(log2(x / PCT_FLOOR) * PCT_PER_OCTAVE);
    return b >= PCT_BUCKETS ? PCT_BUCKETS - 1 : (size_t)b;
}

static double pct_edge(size_t b)
{
    return PCT_FLOOR * exp2((double)b / PCT_PER_OCTAVE);
}

void run_pct_add(run_pct_acc *a, double x)
{
    a->max = a->n == 0 || x > a->max ? x : a->max;
    a->n++;
    if (a->hist) {
        a->hist[pct_bucket(x)]++;
        return;
    }
    if (a->n <= RUN_PCT_EXACT && a->n > a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        double *v = realloc(a->v, cap * sizeof *v);
        if (v != NULL) {
            a->v = v;
            a->cap = cap;
        }
    }
    if (a->n <= a->cap) {
        a->v[a->n - 1] = x;
        return;
    }
    /* Past the exact part (or out of memory): every value into buckets. */
    a->hist = calloc(PCT_BUCKETS, sizeof *a->hist);
    if (a->hist == NULL) {
        a->n--; /* uncounted: best effort, as the trace */
        return;
    }
    for (size_t i = 0; i + 1 < a->n && i < a->cap; i++)
        a->hist[pct_bucket(a->v[i])]++;
    a->hist[pct_bucket(x)]++;
    free(a->v);
    a->v = NULL;
    a->cap = 0;
}

static double hist_rank(const run_pct_acc *a, size_t k)
{
    size_t seen = 0;
    for (size_t b = 0; b < PCT_BUCKETS; b++) {
        seen += a->hist[b];
        if (seen > k)
            return fmin(b == 0 ? 0 : pct_edge(b), a->max);
    }
    return a->max;
}

run_pct run_pct_done(run_pct_acc *a)
{
    run_pct r = {0};
    if (a->n > 0 && a->hist) {
        r = (run_pct){a->n, hist_rank(a, rank_k(a->n, 50)), hist_rank(a, rank_k(a->n, 90)),
                      hist_rank(a, rank_k(a->n, 99)), a->max};
    } else if (a->n > 0 && a->v) {
        qsort(a->v, a->n, sizeof *a->v, cmp_double);
        r = (run_pct){a->n, a->v[rank_k(a->n, 50)], a->v[rank_k(a->n, 90)],
                      a->v[rank_k(a->n, 99)], a->v[a->n - 1]};
    }
    free(a->v);
    free(a->hist);
    *a = (run_pct_acc){0};
    return r;
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
    run_pct_acc wait = {0}, run = {0};
    for (size_t i = 0; i < o->ntrace; i++) {
        const pool_trace_rec *t = &o->trace[i];
        if (t->t_start <= 0)
            continue;
        if (t->t_submit > 0)
            run_pct_add(&wait, fmax(0, t->t_start - t->t_submit));
        if (t->t_end >= t->t_start)
            run_pct_add(&run, t->t_end - t->t_start);
    }
    res->queue_wait = run_pct_done(&wait);
    res->run_time = run_pct_done(&run);
}

/* ---- reading the records back ------------------------------------------------- */

static uint32_t spool_index(const run_result *res, const pool_trace_rec *t)
{
    size_t lo = 0, hi = res->njobno;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (res->jobno[mid].job < t->job)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < res->njobno && res->jobno[lo].job == t->job && res->jobno[lo].rank > 0)
        return res->jobno[lo].rank;
    return t->item + 1;
}

size_t run_trace_each(const run_result *res, run_trace_fn fn, void *ctx)
{
    if (res->spool == NULL) {
        for (size_t i = 0; i < res->out.ntrace; i++)
            fn(ctx, &res->out.trace[i], res->trace_index ? res->trace_index[i] : 0);
        return res->out.ntrace;
    }
    pool_trace_rec buf[512];
    size_t seen = 0, got;
    if (fflush(res->spool) != 0 || fseek(res->spool, 0, SEEK_SET) != 0)
        return 0;
    while (seen < res->nspool &&
           (got = fread(buf, sizeof *buf, sizeof buf / sizeof *buf, res->spool)) > 0)
        for (size_t i = 0; i < got && seen < res->nspool; i++, seen++)
            fn(ctx, &buf[i], spool_index(res, &buf[i]));
    fseek(res->spool, 0, SEEK_END); /* later records append */
    return seen;
}

size_t run_trace_rows(const run_result *res)
{
    return res->spool ? res->nspool : res->out.ntrace;
}

/* t as seconds from the strategy's start into row[k]; absent stays nil. */
static void row_time(lua_State *L, const char *k, double t, double t0)
{
    if (t > 0) {
        lua_pushnumber(L, t - t0);
        lua_setfield(L, -2, k);
    }
}

typedef struct push_ctx {
    lua_State *L;
    const run_result *res;
    lua_Integer i;
} push_ctx;

static void push_row(void *c, const pool_trace_rec *t, uint32_t index)
{
    push_ctx *p = c;
    lua_State *L = p->L;
    double t0 = p->res->out.t0;
    if (p->i >= 0x7fffffff)
        return;
    lua_createtable(L, 0, 13);
    lua_pushstring(L, pool_task_name(t->task));
    lua_setfield(L, -2, "task");
    lua_pushinteger(L, run_trace_stage(p->res, t));
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
    lua_pushinteger(L, index);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, pool_trace_state_name(t->state));
    lua_setfield(L, -2, "state");
    row_time(L, "t_submit", t->t_submit, t0);
    row_time(L, "t_start", t->t_start, t0);
    row_time(L, "t_end", t->t_end, t0);
    row_time(L, "t_result", t->t_result, t0);
    row_time(L, "t_callback", t->t_callback, t0);
    lua_rawseti(L, -2, ++p->i);
}

void run_push_trace(lua_State *L, const run_result *res)
{
    size_t n = run_trace_rows(res);
    lua_createtable(L, n > 0x7fffffff ? 0x7fffffff : (int)n, 0);
    push_ctx c = {L, res, 0};
    run_trace_each(res, push_row, &c);
}
