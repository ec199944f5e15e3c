/*
 * pool_apply.c: apply, apply_async and submit: one task, one message.
 *
 * apply_async is the building block of several traps in the documents:
 * calling get() right after it makes the program sequential (documents 000,
 * 001: phenomenon P1, P3), and dropping the handle without get() or an
 * error callback loses the task's error silently (P10). apply is simply
 * apply_async followed by get, and pays a full round trip per task (P6).
 */
#include "pool_internal.h"

#include <stdlib.h>

pool_result *pool_apply_async(pool *p, const char *task, const void *args, size_t args_len,
                              pool_callback callback, pool_callback error_callback, void *udata)
{
    /* The pool's state is checked once, under the hold of its lock that
     * submits (pool_job_submit_one refuses a pool that accepts no work). On
     * an error, pool_check_submit runs first, so that a closed, broken or
     * interrupted pool is the error reported, as it was before. */
    int index = p ? pool_task_index(task) : -1;
    if (index < 0) {
        pool_check_submit(p, task); /* says why: the pool's state, or the task unknown */
        return NULL;
    }
    if (pool_msg_check_value(args, args_len, true, "arguments") != POOL_OK) {
        pool_check_submit(p, task); /* the pool's state first, else the arguments' */
        return NULL;
    }
    pool_result *r = pool_result_new(p, (unsigned)index, false, 1, 1, callback, error_callback,
                                     udata);
    if (r == NULL) {
        pool_seterr(POOL_ESYS, "apply_async: out of memory");
        return NULL;
    }
    pool_taskmsg *m = pool_taskmsg_new(0, 0, 0, (unsigned)index, args, 0, 1, args_len, false);
    if (m == NULL) {
        pool_result_free(r);
        pool_seterr(POOL_ESYS, "apply_async: out of memory");
        return NULL;
    }
    /* The id, the job table and the task queue under one hold of the lock. */
    if (pool_job_submit_one(p, pool_result_head(r), m) != POOL_OK) {
        pool_result_free(r);
        return NULL;
    }
    return r;
}

pool_result *pool_apply(pool *p, const char *task, const void *args, size_t args_len)
{
    pool_result *r = pool_apply_async(p, task, args, args_len, NULL, NULL, NULL);
    if (r != NULL)
        pool_result_wait(r, -1);
    return r;
}

pool_result *pool_submit(pool *p, const char *task, const void *args, size_t args_len)
{
    return pool_apply_async(p, task, args, args_len, NULL, NULL, NULL);
}
