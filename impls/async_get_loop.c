/*
 * async_get_loop.c: apply_async with get() right after it, in the loop
 * (documents 000 and 001: "get() inside the for loop makes it synchronous").
 *
 *     for info in infoList:
 *         baseinfo = pool.apply_async(getA, (info,)).get()   # waits here
 *         pool.apply_async(getB, (baseinfo,))                # not waited for
 *     pool.close(); pool.join()
 *
 * Teaches (P1, P3): apply_async is asynchronous only until get(). Every
 * stage but the last is waited for in the loop, so time ≈ n·a + b; with one
 * stage, n·t, no better than apply. The last stage's handles are collected
 * after the loop (document 000's join), so the stop rule looks only there.
 * The story: docs/labs/02-get_placement.md, docs/labs/03-serialized_get.md.
 */
#include "strategy.h"

/* The trap itself: apply_async, then get() at once. The handle goes to *r
 * (NULL: refused at submit), the value to *v, an error message to *err. */
static int get_loop_apply_and_wait(pool *p, const char *task, const msgpack_sbuffer *args,
                                   pool_result **r, const msgpack_object **v, const char **err)
{
    *r = strat_apply_async(p, task, args);
    if (*r == NULL) {
        *err = pool_last_error();
        return POOL_EINVAL;
    }
    int st = pool_result_get(*r, -1, v);
    if (st != POOL_OK)
        *err = pool_result_error(*r);
    return st;
}

/* Item i: its waited-for stages, then the last one submitted into *last
 * (left NULL when the item already has its final result). True at the answer. */
static bool get_loop_item(pool *p, const strat_workload *w, strat_outcome *out, size_t i,
                          const msgpack_object *item, msgpack_sbuffer *args, pool_result **last)
{
    int waited = w->nstages > 1 ? w->nstages - 1 : 1; /* all but the last, or the only one */
    pool_result *r = NULL;
    const msgpack_object *v = item;
    const char *err = NULL;
    int st = POOL_OK;
    for (int s = 0; s < waited && st == POOL_OK; s++) {
        strat_args1(args, v); /* before freeing r, which v lives in */
        pool_result_free(r);
        st = get_loop_apply_and_wait(p, w->stages[s], args, &r, &v, &err);
    }
    bool answer = false;
    if (st != POOL_OK || w->nstages == 1) {
        answer = strat_final(w, out, st, st == POOL_OK ? v : NULL, err, i);
    } else {
        strat_args1(args, v); /* document 000's getB: submitted, not waited for */
        *last = strat_apply_async(p, w->stages[w->nstages - 1], args);
        if (*last == NULL)
            strat_refused(w, out, i);
    }
    pool_result_free(r);
    return answer;
}

static int async_get_loop_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_STAGE);
    if (p == NULL)
        return -1;
    pool_result **last = strat_handles_new(w->n);
    if (last == NULL)
        return strat_give_up(p, out, &items, "async_get_loop: out of memory");
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    bool answer = false;
    for (size_t i = 0; i < w->n && !answer && !strat_interrupted(); i++)
        answer = get_loop_item(p, w, out, i, strat_item(&items, i), &args, &last[i]);
    if (!answer)
        answer = strat_collect_in_order(w, out, last, w->n);

    strat_pool_finish(p, out, &items, answer);
    strat_handles_free(last, w->n);
    msgpack_sbuffer_destroy(&args);
    return 0;
}

const strategy strat_async_get_loop = {
    "async_get_loop",
    "000, 001",
    "apply_async + get() at once for every stage but the last (which is collected after)",
    async_get_loop_run,
};
