/*
 * strat_async_get_loop.c: apply_async with get() right after it, in the loop.
 *
 * Documents 000 and 001. Document 000's program (getA then getB per item):
 *
 *     for info in infoList:
 *         basicinfo = pool.apply_async(getA, (info,))
 *         baseinfo = basicinfo.get()           # waits for getA, here
 *         pool.apply_async(getB, (baseinfo,))  # not waited for
 *     pool.close()
 *     pool.join()
 *
 * Document 001 warns about the one-stage form: "get() inside the for loop
 * makes it synchronous, and very slow":
 *
 *     for i in range(n):
 *         print(pool.apply_async(test, (i,)).get())
 *
 * What it teaches (phenomena P1 and P3): apply_async is only asynchronous
 * until you call get(). Here every stage but the last is waited for before
 * the loop moves on, so the first stages of all items run one after the
 * other: time ≈ n·a + b (document 000's "1 minute became 10"). With a
 * single stage that stage is waited for at once, and the pool runs one task
 * at a time: time ≈ n·t, no better than apply (document 001).
 *
 * In the several-stage form the last stage's handles are collected after
 * the loop, standing in for document 000's close() and join(); the stop
 * rule can only look at results there, once the loop has ended.
 */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>

static const msgpack_object sgl_nil = {.type = MSGPACK_OBJECT_NIL};

/* apply_async then get() at once: the trap itself. Returns the status; the
 * handle (if any) goes to *r, the value to *v, an error message to *err. */
static int sgl_apply_and_wait(pool *p, const char *task, const msgpack_sbuffer *args,
                              pool_result **r, const msgpack_object **v, const char **err)
{
    *r = pool_apply_async(p, task, args->data, args->size, NULL, NULL, NULL);
    if (*r == NULL) {
        *err = pool_last_error(); /* refused at submit: unknown task, broken pool */
        return POOL_EINVAL;
    }
    int st = pool_result_get(*r, -1, v);
    if (st != POOL_OK)
        *err = pool_result_error(*r);
    return st;
}

static int sgl_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    /* The last stage's handles, one per item (NULL: no last stage to wait for). */
    pool_result **last = calloc(w->n ? w->n : 1, sizeof *last);
    if (last == NULL) {
        snprintf(out->first_error, sizeof out->first_error, "async_get_loop: out of memory");
        strat_items_close(&items);
        strat_pool_finish(p, out, false);
        return -1;
    }
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    /* The stages waited for inside the loop: all but the last, or the only one. */
    int waited = w->nstages > 1 ? w->nstages - 1 : 1;
    bool stop = false;
    for (size_t i = 0; i < w->n && !stop; i++) {
        pool_result *r = NULL;
        const msgpack_object *v = strat_item(&items, i);
        const char *err = NULL;
        int st = POOL_OK;
        for (int s = 0; s < waited && st == POOL_OK; s++) {
            strat_args1(&args, v ? v : &sgl_nil); /* packed before r, which v lives in, is freed */
            pool_result_free(r);
            st = sgl_apply_and_wait(p, w->stages[s], &args, &r, &v, &err);
        }
        if (st != POOL_OK || w->nstages == 1) {
            /* A failed stage ends the item; with one stage its result is final. */
            stop = strat_final(w, out, st, st == POOL_OK ? v : NULL, err, i);
        } else {
            /* The last stage: submitted, not waited for (document 000's getB). */
            strat_args1(&args, v ? v : &sgl_nil);
            last[i] = pool_apply_async(p, w->stages[w->nstages - 1], args.data, args.size,
                                       NULL, NULL, NULL);
            if (last[i] == NULL)
                strat_final(w, out, POOL_EINVAL, NULL, pool_last_error(), i);
        }
        pool_result_free(r);
    }

    /* After the loop: the last stage's results, in submission order. */
    for (size_t i = 0; i < w->n && !stop; i++) {
        if (last[i] == NULL)
            continue;
        const msgpack_object *v;
        int st = pool_result_get(last[i], -1, &v);
        stop = strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_result_error(last[i]), i);
    }
    out->wall_s = pool_now() - out->t0;

    out->stopped_early = stop;
    strat_pool_finish(p, out, stop);
    /* Handles outlive their pool (pool.h), so they are freed last: freeing
     * an unfinished one earlier could count its error as unobserved. */
    for (size_t i = 0; i < w->n; i++)
        pool_result_free(last[i]);
    free(last);
    msgpack_sbuffer_destroy(&args);
    strat_items_close(&items);
    return 0;
}

const strategy strat_async_get_loop = {
    "async_get_loop",
    "000, 001",
    "apply_async + get() at once for every stage but the last (which is collected after)",
    sgl_run,
};
