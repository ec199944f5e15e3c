/*
 * pool_map.c: map, map_async, starmap, starmap_async: many items, chunked.
 *
 * map cuts its input into chunks of `chunksize` items, one message each, so
 * it pays the per-message cost once per chunk instead of once per item: the
 * reason map_async beats apply_async by an order of magnitude on trivial
 * tasks (document 002, phenomenon P6). The price is balance: a chunk runs
 * on one worker from start to end, so a chunk too large leaves the other
 * workers idle (document 003, P7). CPython's default tries to have about
 * four chunks per worker: ceil(n / (4 * workers)).
 *
 * map materializes everything: every chunk is built at once, and every
 * result is kept until the last one (P12; imap streams instead).
 */
#include "pool_internal.h"

#include <stdlib.h>

long pool_default_chunksize(size_t n, int workers)
{
    if (n == 0 || workers < 1)
        return 0;
    size_t per = 4 * (size_t)workers;
    return (long)(n / per + (n % per != 0));
}

static pool_result *map_submit(pool *p, const char *task, const void *items, size_t items_len,
                               long chunksize, bool star, pool_callback callback,
                               pool_callback error_callback, void *udata)
{
    int index = pool_check_submit(p, task);
    if (index < 0)
        return NULL;
    if (chunksize < 0) {
        pool_seterr(POOL_EINVAL, "map: chunksize must be 1 or more, or 0 for the default "
                    "(got %ld)", chunksize);
        return NULL;
    }
    size_t *starts, n;
    if (pool_msg_split_array(items, items_len, &starts, &n, star) != POOL_OK)
        return NULL;
    if (chunksize == 0)
        chunksize = pool_default_chunksize(n, pool_workers(p));
    pool_result *r = pool_result_new(p, (unsigned)index, true, n, chunksize, callback,
                                     error_callback, udata);
    if (r == NULL) {
        free(starts);
        pool_seterr(POOL_ESYS, "map: out of memory");
        return NULL;
    }
    uint64_t id = pool_new_job(p);
    pool_result_head(r)->id = id;

    /* Every message is built before the job is registered, so a failure
     * here leaves nothing behind in the pool. */
    pool_taskmsg *first = NULL, *last = NULL;
    size_t nmsg = 0;
    for (size_t c0 = 0; c0 < n; c0 += (size_t)chunksize) {
        size_t k = n - c0 < (size_t)chunksize ? n - c0 : (size_t)chunksize;
        size_t end = c0 + k < n ? starts[c0 + k] : items_len;
        pool_taskmsg *m = pool_taskmsg_new(id, (uint32_t)nmsg, (uint32_t)c0, (unsigned)index,
                                           items, starts + c0, k, end, !star);
        if (m == NULL) {
            while (first) {
                pool_taskmsg *f = first;
                first = f->next;
                free(f);
            }
            free(starts);
            pool_result_free(r);
            pool_seterr(POOL_ESYS, "map: out of memory");
            return NULL;
        }
        if (last)
            last->next = m;
        else
            first = m;
        last = m;
        nmsg++;
    }
    free(starts);
    if (n == 0) {
        pool_result_finish_empty(r); /* CPython: ready at once, no callback */
        return r;
    }
    pool_result_ref(r); /* the job table's reference */
    if (pool_register(p, pool_result_head(r), false) != POOL_OK) {
        while (first) {
            pool_taskmsg *f = first;
            first = f->next;
            free(f);
        }
        pool_result_unref(r);
        pool_result_free(r);
        return NULL;
    }
    pool_enqueue(p, first, last, nmsg);
    return r;
}

pool_result *pool_map_async(pool *p, const char *task, const void *items, size_t items_len,
                            long chunksize, pool_callback callback,
                            pool_callback error_callback, void *udata)
{
    return map_submit(p, task, items, items_len, chunksize, false, callback, error_callback,
                      udata);
}

pool_result *pool_starmap_async(pool *p, const char *task, const void *items,
                                size_t items_len, long chunksize, pool_callback callback,
                                pool_callback error_callback, void *udata)
{
    return map_submit(p, task, items, items_len, chunksize, true, callback, error_callback,
                      udata);
}

pool_result *pool_map(pool *p, const char *task, const void *items, size_t items_len,
                      long chunksize)
{
    pool_result *r = pool_map_async(p, task, items, items_len, chunksize, NULL, NULL, NULL);
    if (r != NULL)
        pool_result_wait(r, -1);
    return r;
}

pool_result *pool_starmap(pool *p, const char *task, const void *items, size_t items_len,
                          long chunksize)
{
    pool_result *r = pool_starmap_async(p, task, items, items_len, chunksize, NULL, NULL, NULL);
    if (r != NULL)
        pool_result_wait(r, -1);
    return r;
}
