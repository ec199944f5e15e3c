/*
 * pool_jobs.c: the pool's job table and what the API files use to submit.
 *
 * A job is one submit call (apply, map, imap). While it waits for chunks it
 * sits in the job table, an open-addressing hash on its id, from which the
 * result handler finds it when a chunk arrives. The table holds one
 * reference on each job; whoever removes a job drops it.
 *
 * The API files (pool_apply.c, pool_map.c, pool_imap.c) submit in three
 * steps: pool_check_submit (the pool accepts work, the task exists),
 * pool_register (into the table, refused once the pool is terminated, so a
 * job is either in the table when terminate empties it, or refused), and
 * pool_enqueue (onto the task queue, or straight onto the shared queue when
 * nothing is waiting: one thread hand-off fewer for apply).
 */
#include "pool_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the job table: open addressing on the job id ------------------------ */

static size_t tab_bucket(const pool *p, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull) & (p->tab_cap - 1);
}

pool_job *pool_tab_find(pool *p, uint64_t id)
{
    for (size_t i = tab_bucket(p, id);; i = (i + 1) & (p->tab_cap - 1)) {
        if (p->tab[i].id == id)
            return p->tab[i].job;
        if (p->tab[i].id == 0)
            return NULL;
    }
}

static void tab_put(pool *p, pool_job *job);

static void tab_grow(pool *p)
{
    struct pool_jobslot *old = p->tab;
    size_t old_cap = p->tab_cap;
    p->tab_cap *= 2;
    p->tab = calloc(p->tab_cap, sizeof *p->tab);
    if (p->tab == NULL)
        pool_panic("tab_grow: out of memory for %zu jobs", p->tab_cap);
    p->tab_len = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].id != 0)
            tab_put(p, old[i].job);
    free(old);
}

static void tab_put(pool *p, pool_job *job)
{
    if (2 * (p->tab_len + 1) > p->tab_cap)
        tab_grow(p);
    size_t i = tab_bucket(p, job->id);
    while (p->tab[i].id != 0)
        i = (i + 1) & (p->tab_cap - 1);
    p->tab[i] = (struct pool_jobslot){job->id, job};
    p->tab_len++;
}

/* Removes by backward shift, so lookups never need tombstones. */
static bool tab_remove(pool *p, uint64_t id)
{
    size_t i = tab_bucket(p, id);
    while (p->tab[i].id != id) {
        if (p->tab[i].id == 0)
            return false;
        i = (i + 1) & (p->tab_cap - 1);
    }
    for (size_t j = (i + 1) & (p->tab_cap - 1); p->tab[j].id != 0; j = (j + 1) & (p->tab_cap - 1)) {
        size_t home = tab_bucket(p, p->tab[j].id);
        /* Move j into the hole at i if its home is not in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            p->tab[i] = p->tab[j];
            i = j;
        }
    }
    p->tab[i] = (struct pool_jobslot){0, NULL};
    p->tab_len--;
    return true;
}


/* ---- helpers for the API files ------------------------------------------ */

void pool_job_ref(pool_job *job)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_ref((pool_result *)job);
    else
        pool_iter_ref((pool_iter *)job);
}

void pool_job_unref(pool_job *job)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_unref((pool_result *)job);
    else
        pool_iter_unref((pool_iter *)job);
}

void pool_job_abort(pool_job *job, int status, const char *msg)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_abort((pool_result *)job, status, msg);
    else
        pool_iter_abort((pool_iter *)job, status, msg);
}

/* Takes every job out of the table (caller holds the lock). The caller
 * aborts them and drops the table's references. */
pool_job **pool_steal_jobs(pool *p, size_t *n)
{
    pool_job **v = malloc((p->tab_len ? p->tab_len : 1) * sizeof *v);
    if (v == NULL)
        pool_panic("steal_jobs: out of memory");
    *n = 0;
    for (size_t i = 0; i < p->tab_cap; i++)
        if (p->tab[i].id != 0) {
            v[(*n)++] = p->tab[i].job;
            p->tab[i] = (struct pool_jobslot){0, NULL};
        }
    p->tab_len = 0;
    pthread_cond_broadcast(&p->cond);
    return v;
}

void pool_abort_jobs(pool_job **v, size_t n, int status, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        pool_job_abort(v[i], status, msg);
        pool_job_unref(v[i]);
    }
    free(v);
}

void pool_free_task_queue(pool *p)
{
    while (p->q_head) {
        pool_taskmsg *m = p->q_head;
        p->q_head = m->next;
        free(m);
    }
    p->q_tail = NULL;
}

/* Lists the registered task names into buf, for "unknown task" errors. */
static void list_tasks(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < POOL_MAX_TASKS && off < len; i++) {
        const char *name = pool_task_name(i);
        if (strcmp(name, "?") == 0)
            break;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", name);
    }
}

int pool_check_submit(pool *p, const char *task)
{
    if (p == NULL)
        return pool_seterr(POOL_EINVAL, "no pool");
    pthread_mutex_lock(&p->lock);
    int rc = POOL_OK;
    if (p->broken)
        rc = pool_seterr(POOL_EBROKEN, "%s", p->broken_msg);
    else if (p->state != POOL_RUN)
        rc = pool_seterr(POOL_ESTATE, "the pool is %s: it accepts no new work",
                         p->state == POOL_CLOSE ? "closed" : "terminated");
    pthread_mutex_unlock(&p->lock);
    if (rc != POOL_OK)
        return rc;
    int index = pool_task_index(task);
    if (index < 0) {
        char names[2048];
        list_tasks(names, sizeof names);
        return pool_seterr(POOL_EINVAL, "unknown task '%s'; the registered tasks are: %s",
                           task ? task : "(null)", names);
    }
    return index;
}

uint64_t pool_new_job(pool *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t id = ++p->next_job;
    p->stats.jobs_submitted++;
    pthread_mutex_unlock(&p->lock);
    return id;
}

int pool_register(pool *p, pool_job *job, bool continuing)
{
    int rc = POOL_OK;
    pthread_mutex_lock(&p->lock);
    /* Checked under the lock that terminate holds while it empties the
     * table: a job is either in the table when terminate looks, or refused. */
    if (p->broken)
        rc = pool_seterr(POOL_EBROKEN, "%s", p->broken_msg);
    else if (p->state == POOL_TERMINATE || p->shutting_down ||
             (p->state == POOL_CLOSE && !continuing))
        rc = pool_seterr(POOL_ESTATE, "the pool is %s: it accepts no new work",
                         p->state == POOL_TERMINATE ? "terminated" : "closed");
    else
        tab_put(p, job);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

bool pool_unregister(pool *p, uint64_t id)
{
    pthread_mutex_lock(&p->lock);
    bool found = tab_remove(p, id);
    if (found && p->tab_len == 0)
        pthread_cond_broadcast(&p->cond); /* join may be waiting for this */
    pthread_mutex_unlock(&p->lock);
    return found;
}

void pool_enqueue(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_TERMINATE || p->task_stop) {
        /* Terminated between register and here: the job is already failed. */
        pthread_mutex_unlock(&p->lock);
        while (first) {
            pool_taskmsg *m = first;
            first = m->next;
            free(m);
        }
        return;
    }
    p->stats.messages_sent += n;
    /* Nothing queued and nothing being sent: put a one-fragment message on
     * the shared queue from this thread, saving a hand-off to the task
     * handler (apply pays it on every task). Order is kept: the task
     * handler only sends what it popped under this same lock. */
    while (first && p->q_head == NULL && !p->task_busy && first->len <= POOL_FRAG_MAX &&
           pool_frag_send(p, &first->hdr, first->data, first->len) == 1) {
        pool_taskmsg *m = first;
        first = m->next;
        free(m);
    }
    if (first) {
        if (p->q_tail)
            p->q_tail->next = first;
        else
            p->q_head = first;
        p->q_tail = last;
        pthread_cond_signal(&p->task_cond);
    }
    pthread_mutex_unlock(&p->lock);
}

bool pool_on_result_thread(pool *p)
{
    return pthread_equal(pthread_self(), p->result_thread);
}

pthread_t pool_result_thread_id(pool *p)
{
    return p->result_thread;
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

pid_t pool_job_holder(pool *p, uint64_t id)
{
    for (int i = 0; i < p->nworkers; i++)
        if (atomic_load(&p->shm->slot[i].job) == id)
            return atomic_load(&p->shm->slot[i].pid);
    return 0;
}

long pool_imap_window(pool *p)
{
    return p->opt.imap_window > 0 ? p->opt.imap_window : 2L * p->nworkers;
}
