/*
 * pool_trace.c: what the pool records about the work it runs: the counters
 * of pool_stats and, when asked for, one trace record per task execution.
 *
 * Records are appended by the result handler as chunks arrive, and the
 * callback time is filled in after the job's callback returns, so a record
 * shows submit, start, end, result and callback on one CLOCK_MONOTONIC axis
 * (docs/architecture.md, "The trace"). Everything here is guarded by the
 * pool lock.
 *
 * Each record says what became of its task (enum pool_trace_state). A task
 * that never ends leaves a record too, or a killed task would vanish from
 * every report: a chunk failed by its worker's end is recorded as it is
 * delivered (the item the worker was on KILLED or TIMED_OUT, with its start,
 * the ones it had already run KILLED, the rest NOT_STARTED); for terminate,
 * an interrupt or a broken pool, whose jobs are failed whole and whose
 * chunks never come back, the chunks sent are remembered as they are queued
 * (pool_trace_sent) and the ones without records get them when the jobs are
 * stolen (pool_trace_abandon), the workers' shared-memory slots saying which
 * item each was on.
 */
#include "pool_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A chunk sent to the workers, remembered until the pool's jobs end. */
struct pool_trace_sent {
    uint64_t job;
    uint32_t chunk, first, count;
    uint16_t task;
    double t_submit;
};

const char *pool_trace_state_name(int state)
{
    static const char *const names[] = {"?", "done", "failed", "killed", "timed_out",
                                        "not_started"};
    return state >= 1 && state <= POOL_TRACE_NOT_STARTED ? names[state] : names[0];
}

/* Room for n more records (caller holds the lock); false when out of memory. */
static bool trace_room(pool *p, size_t n)
{
    if (p->trace_len + n <= p->trace_cap)
        return true;
    size_t cap = p->trace_cap ? p->trace_cap : 1024;
    while (cap < p->trace_len + n)
        cap *= 2;
    pool_trace_rec *t = realloc(p->trace, cap * sizeof *t);
    if (t == NULL)
        return false; /* tracing is best effort; results are not */
    p->trace = t;
    if (p->opt.trace_sink) {
        uint8_t *h = realloc(p->trace_hold, cap);
        if (h == NULL)
            return false;
        p->trace_hold = h;
    }
    p->trace_cap = cap;
    return true;
}

/* Records handed to the sink at a time: the pool's trace buffer stays near
 * this size whatever the number of tasks (plus the records held for a
 * callback still to run). */
#define TRACE_BATCH 1024

/* With a trace_sink: hands over the records before the first one held for
 * its callback (every record when all), and forgets them (caller holds the
 * lock). Their global numbers (trace_first) stay valid: trace_base counts
 * the records handed over. */
static void trace_emit(pool *p, bool all)
{
    if (p->opt.trace_sink == NULL)
        return;
    size_t k = 0;
    while (k < p->trace_len && (all || !p->trace_hold[k]))
        k++;
    if (k == 0)
        return;
    p->opt.trace_sink(p->opt.trace_ctx, p->trace, k);
    memmove(p->trace, p->trace + k, (p->trace_len - k) * sizeof *p->trace);
    memmove(p->trace_hold, p->trace_hold + k, p->trace_len - k);
    p->trace_len -= k;
    p->trace_base += k;
}

/* The state of item i of a chunk that came back without results: its
 * worker ended while on item lost_at - 1. */
static uint8_t lost_state(const pool_chunk *c, uint32_t i, double *t_start)
{
    if (c->culprit_msg != NULL && i == c->culprit) {
        *t_start = c->culprit_start; /* began, never ended: the time limit */
        return POOL_TRACE_TIMED_OUT;
    }
    if (c->lost_at == 0 || i + 1 > c->lost_at)
        return POOL_TRACE_NOT_STARTED;
    if (i + 1 < c->lost_at)
        return POOL_TRACE_KILLED; /* ran; its result died with the worker */
    *t_start = c->running_start;
    return c->running_start > 0 ? POOL_TRACE_KILLED : POOL_TRACE_NOT_STARTED;
}

static void forget_sent(pool *p, uint64_t job, uint32_t chunk);

/* Appends trace records for a chunk (caller holds the lock). */
static void trace_chunk(pool *p, pool_chunk *c, const pool_job *job, int slot, pid_t pid,
                        double now)
{
    forget_sent(p, job->id, c->index); /* it has its records now */
    if (!trace_room(p, c->count))
        return;
    c->trace_first = p->trace_base + p->trace_len;
    for (uint32_t i = 0; i < c->count; i++) {
        if (p->trace_hold)
            p->trace_hold[p->trace_len] = job->has_cb;
        pool_trace_rec *r = &p->trace[p->trace_len++];
        *r = (pool_trace_rec){
            .job = job->id, .item = c->first + i, .task = (uint16_t)job->task,
            .slot = (int16_t)slot, .pid = pid, .t_submit = job->t_submit, .t_result = now,
        };
        if (c->values) { /* a frame: its status and times columns */
            r->ok = c->ok == NULL || c->ok[i];
            r->state = r->ok ? POOL_TRACE_DONE : POOL_TRACE_FAILED;
            r->t_start = pool_chunk_time(c, i, false);
            r->t_end = pool_chunk_time(c, i, true);
        } else {
            r->state = lost_state(c, i, &r->t_start);
        }
    }
    if (p->trace_len >= TRACE_BATCH)
        trace_emit(p, false);
}

/* The number of items in a task message: its payload is
 * [task_index, [items...], single] (pool_taskmsg_new), so the count is the
 * second array header, after a task index of one to five bytes. 0 if
 * unreadable. */
static uint32_t taskmsg_count(const pool_taskmsg *m)
{
    const unsigned char *d = (const unsigned char *)m->data;
    size_t off = 1, len = m->len;
    if (len < 3 || d[0] != 0x93)
        return 0;
    off += d[off] < 0x80 ? 1 : d[off] == 0xcc ? 2 : d[off] == 0xcd ? 3 : 5;
    if (off >= len)
        return 0;
    if ((d[off] & 0xf0) == 0x90)
        return d[off] & 0x0f;
    if (d[off] == 0xdc && off + 2 < len)
        return (uint32_t)d[off + 1] << 8 | d[off + 2];
    if (d[off] == 0xdd && off + 4 < len)
        return (uint32_t)d[off + 1] << 24 | (uint32_t)d[off + 2] << 16 |
               (uint32_t)d[off + 3] << 8 | d[off + 4];
    return 0;
}

/*
 * The chunks sent and not yet recorded, sorted by (job, chunk): a chunk
 * leaves (forget_sent) when its records are made, so the list holds the
 * chunks in flight, not every chunk of the run. Chunks are mostly sent in
 * that order (an insert is an append); a forgotten one is marked dead
 * (count 0) and the dead are swept out once they are half the list.
 */
static int sent_before(const struct pool_trace_sent *e, uint64_t job, uint32_t chunk)
{
    return e->job < job || (e->job == job && e->chunk < chunk);
}

/* The first entry not before (job, chunk). */
static size_t sent_lower(const pool *p, uint64_t job, uint32_t chunk)
{
    size_t lo = 0, hi = p->sent_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sent_before(&p->sent[mid], job, chunk))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void sweep_sent(pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->sent_len; i++)
        if (p->sent[i].count > 0)
            p->sent[k++] = p->sent[i];
    p->sent_len = k;
    p->sent_dead = 0;
}

static void forget_sent(pool *p, uint64_t job, uint32_t chunk)
{
    size_t i = sent_lower(p, job, chunk);
    if (i == p->sent_len || p->sent[i].job != job || p->sent[i].chunk != chunk ||
        p->sent[i].count == 0)
        return;
    p->sent[i].count = 0;
    if (++p->sent_dead * 2 > p->sent_len)
        sweep_sent(p);
}

/* Remembers one sent chunk (caller holds the lock). */
static void remember_sent(pool *p, const pool_taskmsg *m)
{
    pool_job *job = pool_job_find(p, m->hdr.job);
    uint32_t count = taskmsg_count(m);
    if (job == NULL || count == 0)
        return;
    if (p->sent_len == p->sent_cap) {
        size_t cap = p->sent_cap ? 2 * p->sent_cap : 256;
        struct pool_trace_sent *v = realloc(p->sent, cap * sizeof *v);
        if (v == NULL)
            return; /* best effort, as the trace */
        p->sent = v;
        p->sent_cap = cap;
    }
    size_t at = p->sent_len > 0 && sent_before(&p->sent[p->sent_len - 1], m->hdr.job,
                                               m->hdr.chunk)
                    ? p->sent_len
                    : sent_lower(p, m->hdr.job, m->hdr.chunk);
    memmove(p->sent + at + 1, p->sent + at, (p->sent_len - at) * sizeof *p->sent);
    p->sent_len++;
    p->sent[at] = (struct pool_trace_sent){
        .job = m->hdr.job, .chunk = m->hdr.chunk, .first = m->hdr.first, .count = count,
        .task = (uint16_t)job->task, .t_submit = job->t_submit,
    };
}

void pool_trace_sent(pool *p, const pool_taskmsg *first)
{
    for (const pool_taskmsg *m = first; m != NULL; m = m->next) {
        size_t frags = m->len / POOL_FRAG_MAX + 1;
        p->stats.bytes_sent += m->len + frags * sizeof m->hdr;
        if (p->opt.trace && m->hdr.kind == POOL_WIRE_FIRST)
            remember_sent(p, m);
    }
}

/* (job, item) keys of the records so far, sorted, for pool_trace_abandon. */
struct trace_key {
    uint64_t job;
    uint32_t item;
};

static int key_cmp(const void *a, const void *b)
{
    const struct trace_key *x = a, *y = b;
    if (x->job != y->job)
        return x->job < y->job ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* The record of a task that never ended, for sent chunk e, item i (job-wide). */
static pool_trace_rec abandoned_rec(pool *p, const struct pool_trace_sent *e, uint32_t i)
{
    pool_trace_rec r = {.job = e->job, .item = i, .task = e->task, .slot = -1,
                        .state = POOL_TRACE_NOT_STARTED, .t_submit = e->t_submit};
    for (int k = 0; k < p->nworkers; k++) {
        struct pool_slot_shm *s = pool_slot(p, k);
        if (atomic_load(&s->job) != e->job || atomic_load(&s->chunk) != e->chunk)
            continue;
        uint32_t on = atomic_load(&s->item);
        double t0 = atomic_load(&s->t_start);
        if (i < on || (i == on && t0 > 0)) {
            r.state = POOL_TRACE_KILLED;
            r.slot = (int16_t)k;
            /* the worker's own record: p->pids[k] is 0 once it was reaped,
             * which terminate may do before this record is made */
            r.pid = atomic_load(&s->pid) > 0 ? atomic_load(&s->pid) : p->pids ? p->pids[k] : 0;
            r.t_start = i == on ? t0 : 0;
        }
    }
    return r;
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The ids of the jobs being failed, sorted (NULL when none or no memory). */
static uint64_t *stolen_ids(pool_job *const *v, size_t n)
{
    uint64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = v[i]->id;
    if (ids)
        qsort(ids, n, sizeof *ids, id_cmp);
    return ids;
}

void pool_trace_abandon(pool *p, pool_job *const *v, size_t n)
{
    uint64_t *ids = stolen_ids(v, n);
    size_t nsent = ids ? p->sent_len : 0;
    struct trace_key *keys = nsent ? malloc((p->trace_len + 1) * sizeof *keys) : NULL;
    for (size_t i = 0; keys && i < p->trace_len; i++)
        keys[i] = (struct trace_key){p->trace[i].job, p->trace[i].item};
    if (keys)
        qsort(keys, p->trace_len, sizeof *keys, key_cmp);
    size_t nkeys = keys ? p->trace_len : 0;
    for (size_t k = 0; keys && k < nsent; k++) {
        const struct pool_trace_sent *e = &p->sent[k];
        if (e->count == 0 || bsearch(&e->job, ids, n, sizeof *ids, id_cmp) == NULL)
            continue; /* ended already, or abandoned by its caller (ran unseen) */
        for (uint32_t i = e->first; i < e->first + e->count; i++) {
            struct trace_key want = {e->job, i};
            if (bsearch(&want, keys, nkeys, sizeof *keys, key_cmp) != NULL ||
                !trace_room(p, 1))
                continue;
            if (p->trace_hold)
                p->trace_hold[p->trace_len] = 0;
            p->trace[p->trace_len++] = abandoned_rec(p, e, i);
        }
    }
    free(keys);
    free(ids);
    free(p->sent); /* every job has ended: nothing more comes back */
    p->sent = NULL;
    p->sent_len = p->sent_cap = p->sent_dead = 0;
}

void pool_record_chunk(pool *p, pool_chunk *c, const pool_job *job, int slot, pid_t pid,
                       double now)
{
    uint32_t failed = pool_chunk_failed(c); /* counted once, by the result handler */
    p->stats.tasks_done += c->count - failed;
    p->stats.tasks_failed += failed;
    if (p->opt.trace)
        trace_chunk(p, c, job, slot, pid, now);
}

void pool_trace_mark_callback(pool *p, size_t first, size_t count, double t)
{
    pthread_mutex_lock(&p->lock);
    /* first is global: records before trace_base have left (never held ones) */
    for (size_t g = first; g < first + count; g++) {
        if (g < p->trace_base || g - p->trace_base >= p->trace_len)
            continue;
        if (t > 0)
            p->trace[g - p->trace_base].t_callback = t;
        if (p->trace_hold)
            p->trace_hold[g - p->trace_base] = 0;
    }
    if (p->trace_len >= TRACE_BATCH)
        trace_emit(p, false);
    pthread_mutex_unlock(&p->lock);
}

void pool_trace_drain(pool *p)
{
    pthread_mutex_lock(&p->lock);
    trace_emit(p, true);
    pthread_mutex_unlock(&p->lock);
}

void pool_count_callback(pool *p, int rc, const char *what, uint64_t job, const char *err)
{
    atomic_fetch_add(&p->callbacks_run, 1);
    if (rc != 0) {
        atomic_fetch_add(&p->callback_errors, 1);
        fprintf(stderr, "pool: %s of job %llu failed: %s\n", what, (unsigned long long)job,
                err[0] ? err : "(no message)");
    }
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
    out->callbacks_run += atomic_load(&p->callbacks_run);
    out->callback_errors += atomic_load(&p->callback_errors);
    out->errors_unobserved += atomic_load(&p->unobs->late);
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
