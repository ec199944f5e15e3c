/*
 * run_stream.c: the trace as it streams out of the engine, so that the
 * harness keeps nothing per task unless rows are asked for.
 *
 * Every strategy runs with the engine's trace on and a trace_sink
 * (strat_workload.trace_sink): the engine hands its records over in batches
 * as the run goes and keeps none (pool.h). Here each record feeds the
 * aggregates the reports show (per_worker counts and busy time, the
 * percentiles of queue wait and run time, computed as they come:
 * run_pct_add) and is then dropped, unless rows are wanted (--trace F,
 * --timeline, a scenario's trace = true: r[label].trace). Then it is
 * appended to the spool, an unnamed temporary file (tmpfile: gone when
 * closed or when the process ends), and the features that need every row
 * read them back from there (run_trace_each): the trace file, the Lua rows
 * of the checks, the text timeline. So the parent's memory stays flat with
 * or without a trace; the rows cost disk, not memory.
 *
 * Item numbers (a row's `index`, run_trace.c) need the whole run for jobs
 * of one item (their rank among their task's jobs), so they are worked out
 * once the repeat is over, from one pass over the spool: a table of the
 * run's jobs (one entry per job: one for an imap or a map, n for an apply
 * loop, whose handles the strategy holds anyway).
 */
#include "runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void run_worker_add(run_result *res, const pool_trace_rec *t)
{
    if (t->slot < 0)
        return; /* never reached a worker: counts for nobody */
    int k = 0;
    while (k < res->nworkers &&
           !(res->workers[k].pid == t->pid && (t->pid != 0 || res->workers[k].slot == t->slot)))
        k++;
    if (k == res->nworkers) {
        run_worker *w = realloc(res->workers, (size_t)(k + 1) * sizeof *w);
        if (w == NULL)
            return;
        res->workers = w;
        w[k] = (run_worker){.slot = t->slot, .pid = t->pid,
                            .host = run_worker_host ? run_worker_host(t->slot) : NULL};
        res->nworkers++;
    }
    res->workers[k].tasks++;
    if (t->t_start > 0 && t->t_end >= t->t_start)
        res->workers[k].busy_s += t->t_end - t->t_start;
}

void run_workers_sort(run_result *res)
{
    /* Stable by slot (ties by first sight: respawns), a tiny insertion sort. */
    for (int i = 1; i < res->nworkers; i++)
        for (int j = i; j > 0 && res->workers[j - 1].slot > res->workers[j].slot; j--) {
            run_worker t = res->workers[j];
            res->workers[j] = res->workers[j - 1];
            res->workers[j - 1] = t;
        }
}

void run_stream_begin(run_result *res, bool keep_rows)
{
    free(res->workers);
    res->workers = NULL;
    res->nworkers = 0;
    free(res->jobno);
    res->jobno = NULL;
    res->njobno = 0;
    run_pct_done(&res->wait_acc);
    run_pct_done(&res->run_acc);
    res->nstreamed = res->nspool = 0;
    res->spool_failed = false;
    res->keep_rows = keep_rows;
    if (res->spool)
        fclose(res->spool);
    res->spool = keep_rows ? tmpfile() : NULL;
    if (keep_rows && res->spool == NULL)
        res->spool_failed = true;
}

void run_stream_take(void *ctx, const pool_trace_rec *recs, size_t n)
{
    run_result *res = ctx;
    for (size_t i = 0; i < n; i++) {
        const pool_trace_rec *t = &recs[i];
        run_worker_add(res, t);
        if (t->t_start > 0) { /* as run_trace_stats: only the tasks that began */
            if (t->t_submit > 0)
                run_pct_add(&res->wait_acc, fmax(0, t->t_start - t->t_submit));
            if (t->t_end >= t->t_start)
                run_pct_add(&res->run_acc, t->t_end - t->t_start);
        }
    }
    res->nstreamed += n;
    if (res->spool && !res->spool_failed) {
        if (fwrite(recs, sizeof *recs, n, res->spool) == n)
            res->nspool += n;
        else
            res->spool_failed = true;
    }
}

/* ---- item numbers for the spooled rows -------------------------------------- */

/* The run's jobs, by an open-addressing table on the job id. */
typedef struct job_seen {
    uint64_t job; /* 0: empty (job ids start at 1) */
    unsigned task;
    uint32_t records;
    bool item0;
} job_seen;

typedef struct job_tab {
    job_seen *v;
    size_t cap, len;
} job_tab;

static job_seen *job_slot(job_seen *v, size_t cap, uint64_t job)
{
    size_t h = (size_t)(job * 0x9e3779b97f4a7c15ULL) & (cap - 1);
    while (v[h].job != 0 && v[h].job != job)
        h = (h + 1) & (cap - 1);
    return &v[h];
}

static bool job_grow(job_tab *t)
{
    size_t cap = t->cap ? 2 * t->cap : 64;
    job_seen *v = calloc(cap, sizeof *v);
    if (v == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].job != 0)
            *job_slot(v, cap, t->v[i].job) = t->v[i];
    free(t->v);
    t->v = v;
    t->cap = cap;
    return true;
}

static void job_note(void *ctx, const pool_trace_rec *r, uint32_t index)
{
    (void)index;
    job_tab *t = ctx;
    if ((t->len + 1) * 2 > t->cap && !job_grow(t))
        return;
    job_seen *s = job_slot(t->v, t->cap, r->job);
    if (s->job == 0) {
        *s = (job_seen){.job = r->job, .task = r->task};
        t->len++;
    }
    s->records++;
    s->item0 |= r->item == 0;
}

/* Jobs of one record of item 0, by (task, job): their rank is the number. */
static int by_task_job(const void *a, const void *b)
{
    const job_seen *x = a, *y = b;
    if (x->task != y->task)
        return x->task < y->task ? -1 : 1;
    return (x->job > y->job) - (x->job < y->job);
}

static int by_job(const void *a, const void *b)
{
    const run_jobno *x = a, *y = b;
    return (x->job > y->job) - (x->job < y->job);
}

/* The same numbering as run_trace_stats gives out.trace (run_trace.c). */
static void number_spool(run_result *res)
{
    job_tab t = {0};
    run_trace_each(res, job_note, &t); /* jobno empty yet: indexes unused */
    size_t k = 0;
    for (size_t i = 0; i < t.cap; i++)
        if (t.v[i].job != 0)
            t.v[k++] = t.v[i];
    qsort(t.v, k, sizeof *t.v, by_task_job);
    res->jobno = malloc((k ? k : 1) * sizeof *res->jobno);
    uint32_t rank = 0; /* the jobs of one item seen so far of this task */
    for (size_t i = 0; res->jobno && i < k; i++) {
        bool one = t.v[i].records == 1 && t.v[i].item0;
        if (i == 0 || t.v[i - 1].task != t.v[i].task)
            rank = 0;
        rank += one;
        res->jobno[res->njobno++] = (run_jobno){t.v[i].job, one ? rank : 0};
    }
    if (res->jobno)
        qsort(res->jobno, res->njobno, sizeof *res->jobno, by_job);
    free(t.v);
}

void run_stream_end(run_result *res)
{
    run_workers_sort(res);
    res->queue_wait = run_pct_done(&res->wait_acc);
    res->run_time = run_pct_done(&res->run_acc);
    if (res->spool && res->nspool > 0)
        number_spool(res);
}

void run_stream_free(run_result *res)
{
    if (res->spool)
        fclose(res->spool);
    res->spool = NULL;
    free(res->jobno);
    res->jobno = NULL;
    res->njobno = 0;
    run_pct_done(&res->wait_acc);
    run_pct_done(&res->run_acc);
}
