/*
 * pool_trace.c: what the pool records about the work it runs: the counters
 * of pool_stats and, when asked for, one trace record per task execution.
 *
 * Records are appended by the result handler as chunks arrive, and the
 * callback time is filled in after the job's callback returns, so a record
 * shows submit, start, end, result and callback on one CLOCK_MONOTONIC axis
 * (docs/architecture.md, "The trace"). Everything here is guarded by the
 * pool lock.
 */
#include "pool_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* Appends trace records for a chunk (caller holds the lock). */
static void trace_chunk(pool *p, pool_chunk *c, const pool_job *job, int slot, pid_t pid,
                        double now)
{
    if (p->trace_len + c->count > p->trace_cap) {
        size_t cap = p->trace_cap ? p->trace_cap : 1024;
        while (cap < p->trace_len + c->count)
            cap *= 2;
        pool_trace_rec *t = realloc(p->trace, cap * sizeof *t);
        if (t == NULL)
            return; /* tracing is best effort; results are not */
        p->trace = t;
        p->trace_cap = cap;
    }
    c->trace_first = p->trace_len;
    for (uint32_t i = 0; i < c->count; i++) {
        pool_trace_rec *r = &p->trace[p->trace_len++];
        *r = (pool_trace_rec){
            .job = job->id, .item = c->first + i, .task = (uint16_t)job->task,
            .slot = (int16_t)slot, .pid = pid, .t_submit = job->t_submit, .t_result = now,
        };
        if (c->items) {
            const msgpack_object *f = c->items[i].via.array.ptr;
            r->ok = f[0].via.boolean;
            r->t_start = f[2].via.f64;
            r->t_end = f[3].via.f64;
        } else if (c->culprit_msg != NULL && i == c->culprit) {
            r->t_start = c->culprit_start; /* began, never ended: the time limit */
        }
    }
}

void pool_record_chunk(pool *p, pool_chunk *c, const pool_job *job, int slot, pid_t pid,
                       double now)
{
    for (uint32_t i = 0; i < c->count; i++) {
        const msgpack_object *v;
        const char *msg;
        if (pool_chunk_item(c, i, &v, &msg) == POOL_OK)
            p->stats.tasks_done++;
        else
            p->stats.tasks_failed++;
    }
    if (p->opt.trace)
        trace_chunk(p, c, job, slot, pid, now);
}

void pool_trace_mark_callback(pool *p, size_t first, size_t count, double t)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = first; i < first + count && i < p->trace_len; i++)
        p->trace[i].t_callback = t;
    pthread_mutex_unlock(&p->lock);
}

void pool_count_callback(pool *p, int rc, const char *what, uint64_t job, const char *err)
{
    pthread_mutex_lock(&p->lock);
    p->stats.callbacks_run++;
    if (rc != 0)
        p->stats.callback_errors++;
    pthread_mutex_unlock(&p->lock);
    if (rc != 0)
        fprintf(stderr, "pool: %s of job %llu failed: %s\n", what, (unsigned long long)job,
                err[0] ? err : "(no message)");
}

void pool_count_unobserved(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stats.errors_unobserved++;
    pthread_mutex_unlock(&p->lock);
}

/* ---- what a caller may read (pool.h) -------------------------------------- */

void pool_get_stats(pool *p, pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}

size_t pool_trace_count(pool *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->trace_len;
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t pool_trace_copy(pool *p, size_t from, pool_trace_rec *out, size_t max)
{
    pthread_mutex_lock(&p->lock);
    size_t n = 0;
    for (size_t i = from; i < p->trace_len && n < max; i++)
        out[n++] = p->trace[i];
    pthread_mutex_unlock(&p->lock);
    return n;
}
