/*
 * pool_jobs.c: the job table, where a job waits for its chunks.
 *
 * A job is one submit call (apply, map, imap). From registration until its
 * last chunk is in, it sits in the job table, an open-addressing hash on its
 * id, where the result handler finds it when a chunk arrives. The table
 * holds one reference on each job; whoever removes a job drops it.
 *
 * The API files (pool_apply.c, pool_map.c, pool_imap.c) admit a job here in
 * three steps: pool_check_submit (the pool accepts work, the task exists),
 * pool_new_job (its id), pool_job_register (into the table, refused once the
 * pool is terminated, so a job is either in the table when terminate empties
 * it, or refused); then they put its messages on the task queue
 * (pool_taskq.c). The table reaches a job only through its operations
 * (pool_job_ops): it never knows whether it holds a result or an iterator.
 */
#include "pool_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the job table: open addressing on the job id ------------------------ */

static size_t tab_bucket(const pool *p, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull) & (p->tab_cap - 1);
}

pool_job *pool_job_find(pool *p, uint64_t id)
{
    for (size_t i = tab_bucket(p, id);; i = (i + 1) & (p->tab_cap - 1)) {
        if (p->tab[i].id == id)
            return p->tab[i].job;
        if (p->tab[i].id == 0)
            return NULL;
    }
}

pool_job *pool_job_get(pool *p, uint64_t id)
{
    pthread_mutex_lock(&p->lock);
    pool_job *job = pool_job_find(p, id);
    if (job)
        job->ops->ref(job);
    pthread_mutex_unlock(&p->lock);
    return job;
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


/* ---- the whole table at once: terminate, a broken pool ----------------- */

pool_job **pool_jobs_steal(pool *p, size_t *n)
{
    pool_job **v = malloc((p->tab_len ? p->tab_len : 1) * sizeof *v);
    if (v == NULL)
        pool_panic("pool_jobs_steal: out of memory");
    *n = 0;
    for (size_t i = 0; i < p->tab_cap; i++)
        if (p->tab[i].id != 0) {
            v[(*n)++] = p->tab[i].job;
            p->tab[i] = (struct pool_jobslot){0, NULL};
        }
    p->tab_len = 0;
    pool_trace_abandon(p, v, *n); /* their unfinished tasks leave trace records */
    pthread_cond_broadcast(&p->cond);
    return v;
}

void pool_jobs_abort(pool_job **v, size_t n, int status, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        v[i]->ops->abort(v[i], status, msg);
        v[i]->ops->unref(v[i]);
    }
    free(v);
}

/* ---- admission: what the API files call to submit ------------------------ */

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
    if (p->interrupted)
        rc = pool_seterr(POOL_EINTR, "the pool was interrupted (SIGINT or SIGTERM): it "
                         "accepts no new work");
    else if (p->broken)
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

/* Caller holds the pool lock. */
static int job_register_locked(pool *p, pool_job *job, bool continuing)
{
    /* Checked under the lock that terminate, an interrupt and a broken
     * pool hold while they empty the table: a job is either in the table
     * when they look, or refused. So no job waits on a pool that ended. */
    if (p->interrupted)
        return pool_seterr(POOL_EINTR, "the pool was interrupted (SIGINT or SIGTERM): it "
                           "accepts no new work");
    if (p->broken)
        return pool_seterr(POOL_EBROKEN, "%s", p->broken_msg);
    if (p->state == POOL_TERMINATE || p->shutting_down ||
        (p->state == POOL_CLOSE && !continuing))
        return pool_seterr(POOL_ESTATE, "the pool is %s: it accepts no new work",
                           p->state == POOL_TERMINATE ? "terminated" : "closed");
    /* Ref before the unlock: the result handler may find it at once. */
    job->ops->ref(job);
    tab_put(p, job);
    return POOL_OK;
}

int pool_job_register(pool *p, pool_job *job, bool continuing)
{
    pthread_mutex_lock(&p->lock);
    int rc = job_register_locked(p, job, continuing);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/*
 * pool_new_job, pool_job_register and pool_taskq_push in one hold of the
 * pool lock, for a job of one message (apply_async pays this per task: one
 * lock round instead of three, each one the result handler may be waiting
 * on). Same checks in the same order; the id goes into the message's header
 * here (the body does not hold it). On refusal the message is freed; a
 * message the queue refuses after the job was registered (cannot happen
 * under one hold: register refuses first) would leave the job to terminate.
 */
int pool_job_submit_one(pool *p, pool_job *job, pool_taskmsg *m)
{
    pthread_mutex_lock(&p->lock);
    /* apply_async checks the pool's state here alone: a refused job takes
     * no id and is not counted. */
    job->id = m->hdr.job = p->next_job + 1;
    int rc = job_register_locked(p, job, false);
    if (rc == POOL_OK) {
        p->next_job++;
        p->stats.jobs_submitted++;
    }
    bool taken = rc == POOL_OK && pool_taskq_push_locked(p, m, m, 1);
    pthread_mutex_unlock(&p->lock);
    if (!taken)
        pool_taskmsg_free_list(m);
    return rc;
}
bool pool_job_unregister(pool *p, uint64_t id)
{
    pthread_mutex_lock(&p->lock);
    bool found = tab_remove(p, id);
    if (found && p->tab_len == 0)
        pthread_cond_broadcast(&p->cond); /* join may be waiting for this */
    pthread_mutex_unlock(&p->lock);
    return found;
}
