/*
 * pool_as_completed.c: concurrent.futures.as_completed over pool futures:
 * the indexes of the futures, in the order they finish.
 *
 * Each future gets a waiter (pool_result_add_waiter), which the result
 * handler calls once the future is ready, after its callbacks, like
 * CPython's Future._waiters. The waiter appends the future's index to a
 * queue that pool_completion_next() reads. A waiter may fire after the
 * caller has dropped the iterator, so every waiter not yet fired holds a
 * reference on this state, and whoever drops the last one frees it.
 * pool_imap_new.c wraps it in a pool_iter (pool_as_completed), so
 * pool_iter_next() (pool_imap.c) serves it.
 */
#include "pool_internal.h"

#include <errno.h>
#include <stdlib.h>

struct ac_entry {
    pool_completion *c;
    size_t index;
};

struct pool_completion {
    /* Set at creation, read-only after. */
    struct ac_entry *entries; /* one per future: a waiter's udata */
    size_t n;

    /* Atomic: the caller and every waiter not yet fired. */
    atomic_int refs;

    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t *done_q;           /* indexes in completion order */
    size_t dq_len, dq_head;
};

void pool_completion_release(pool_completion *c)
{
    if (atomic_fetch_sub(&c->refs, 1) > 1)
        return;
    free(c->entries);
    free(c->done_q);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* A future is ready: queue its index (result handler thread, or the
 * caller's when the future was ready already). */
static int ac_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)r;
    (void)err;
    (void)errlen;
    struct ac_entry *e = udata;
    pool_completion *c = e->c;
    pthread_mutex_lock(&c->lock);
    c->done_q[c->dq_len++] = e->index;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pool_completion_release(c); /* the reference this waiter held */
    return 0;
}

pool_completion *pool_completion_new(pool_result *const *futures, size_t n)
{
    pool_completion *c = calloc(1, sizeof *c);
    if (c == NULL) {
        pool_seterr(POOL_ESYS, "as_completed: out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);
    pool_cond_init(&c->cond);
    c->entries = calloc(n ? n : 1, sizeof *c->entries);
    c->done_q = calloc(n ? n : 1, sizeof *c->done_q);
    if (c->entries == NULL || c->done_q == NULL) {
        pool_completion_release(c);
        pool_seterr(POOL_ESYS, "as_completed: out of memory");
        return NULL;
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        c->entries[i] = (struct ac_entry){c, i};
        atomic_fetch_add(&c->refs, 1);
        if (pool_result_add_waiter(futures[i], ac_done, &c->entries[i]) != POOL_OK)
            pool_panic("as_completed: cannot watch future %zu", i);
    }
    return c;
}

int pool_completion_next(pool_completion *c, double timeout, size_t *index)
{
    double deadline = pool_deadline(timeout);
    pthread_mutex_lock(&c->lock);
    int rc = POOL_OK;
    while (c->dq_head == c->dq_len) {
        if (c->dq_head == c->n) {
            rc = pool_seterr(POOL_EEND, "every future has been yielded");
            break;
        }
        if (pool_cond_wait_until(&c->cond, &c->lock, deadline) == ETIMEDOUT &&
            c->dq_head == c->dq_len) {
            rc = pool_seterr(POOL_ETIMEDOUT, "%zu of %zu futures unfinished after %g s",
                             c->n - c->dq_len, c->n, timeout);
            break;
        }
    }
    if (rc == POOL_OK && index)
        *index = c->done_q[c->dq_head];
    if (rc == POOL_OK)
        c->dq_head++;
    pthread_mutex_unlock(&c->lock);
    return rc;
}
