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

/* Builds one task message per chunk, linked in order: the list's head, or
 * NULL (out of memory; nothing is left allocated). starts[c] is chunk c's
 * offset in items. *last and *nmsg describe the list. Every message is
 * built before the job is registered, so a failure here leaves nothing
 * behind in the pool. */
static pool_taskmsg *build_chunks(uint64_t id, unsigned task, const char *items,
                                  size_t items_len, const size_t *starts, size_t n,
                                  size_t chunksize, bool star, pool_taskmsg **last,
                                  size_t *nmsg)
{
    pool_taskmsg *first = NULL;
    *last = NULL;
    *nmsg = 0;
    for (size_t c0 = 0, c = 0; c0 < n; c0 += chunksize, c++) {
        size_t k = n - c0 < chunksize ? n - c0 : chunksize;
        size_t end = c0 + k < n ? starts[c + 1] : items_len;
        pool_taskmsg *m = pool_taskmsg_new(id, (uint32_t)*nmsg, (uint32_t)c0, task, items,
                                           starts[c], k, end, !star);
        if (m == NULL) {
            pool_taskmsg_free_list(first);
            return NULL;
        }
        if (*last)
            (*last)->next = m;
        else
            first = m;
        *last = m;
        (*nmsg)++;
    }
    return first;
}

/* Checks a map's arguments and locates its chunks: the task index, or an
 * error status. Sets *n, *chunksize (the default's needs n: the array's
 * header first) and *starts, each chunk's offset (the caller frees it). */
static int map_check(pool *p, const char *task, const void *items, size_t items_len, bool star,
                     size_t **starts, size_t *n, long *chunksize)
{
    *starts = NULL;
    int index = pool_check_submit(p, task);
    if (index < 0)
        return index;
    if (*chunksize < 0)
        return pool_seterr(POOL_EINVAL, "map: chunksize must be 1 or more, or 0 for the "
                           "default (got %ld)", *chunksize);
    int rc = pool_msg_array_count(items, items_len, n);
    if (rc != POOL_OK)
        return rc;
    if (*chunksize == 0)
        *chunksize = pool_default_chunksize(*n, pool_workers(p));
    rc = pool_msg_split_array(items, items_len, (size_t)*chunksize, starts, n, star);
    if (rc != POOL_OK)
        return rc;
    return index;
}

static pool_result *map_submit(pool *p, const char *task, const void *items, size_t items_len,
                               long chunksize, bool star, pool_callback callback,
                               pool_callback error_callback, void *udata)
{
    size_t *starts, n;
    int index = map_check(p, task, items, items_len, star, &starts, &n, &chunksize);
    if (index < 0)
        return NULL;
    pool_result *r = pool_result_new(p, (unsigned)index, true, n, chunksize, callback,
                                     error_callback, udata);
    pool_taskmsg *first = NULL, *last;
    size_t nmsg = 0;
    if (r != NULL) {
        pool_result_head(r)->id = pool_new_job(p);
        first = build_chunks(pool_result_head(r)->id, (unsigned)index, items, items_len, starts,
                             n, (size_t)chunksize, star, &last, &nmsg);
    }
    free(starts);
    if (r == NULL || (first == NULL && n > 0)) {
        pool_result_free(r);
        pool_seterr(POOL_ESYS, "map: out of memory");
        return NULL;
    }
    if (n == 0) {
        pool_result_finish_empty(r); /* CPython: ready at once, no callback */
        return r;
    }
    if (pool_job_register(p, pool_result_head(r), false) != POOL_OK) {
        pool_taskmsg_free_list(first);
        pool_result_free(r);
        return NULL;
    }
    pool_taskq_push(p, first, last, nmsg);
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
