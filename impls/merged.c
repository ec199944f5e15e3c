/*
 * strat_merged.c: every stage in one task, one apply_async per item.
 *
 * Document 000's first fix ("merge the functions"):
 *
 *     def getC(info):
 *         return getB(getA(info))
 *
 *     for info in infoList:
 *         pool.apply_async(getC, (info,))
 *     pool.close()
 *     pool.join()
 *
 * Here getC is the strat_chain task (strategy.c): it runs the stages one
 * after the other inside the worker, so no value crosses back to the parent
 * between stages. The handles are collected after the submit loop and read
 * in submission order, as document 001 reads its results.
 *
 * What it teaches (P1): when stage B needs stage A's value, do not fetch
 * that value in the parent; let the worker go on with it. Every item's
 * pipeline runs in parallel with the others: time ≈ ⌈n/w⌉·(a+b), the best
 * of the three versions of document 000 whatever a and b are.
 *
 * The stop rule reads the results in submission order and terminates the
 * pool at the answer, like async_get_after's "submit all, then check".
 */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>

static int smg_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    out->tasks_total = w->n; /* one task per item runs every stage */
    pool_result **h = calloc(w->n ? w->n : 1, sizeof *h);
    if (h == NULL) {
        snprintf(out->first_error, sizeof out->first_error, "merged: out of memory");
        strat_items_close(&items);
        strat_pool_finish(p, out, false);
        return -1;
    }
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    if (w->nstages > 1)
        snprintf(out->note, sizeof out->note, "each item's %d stages ran as one task",
                 w->nstages);

    /* The submit loop: one getC per item, nothing waited for. */
    for (size_t i = 0; i < w->n; i++) {
        strat_chain_args(&args, w, 0, strat_item(&items, i));
        h[i] = pool_apply_async(p, STRAT_CHAIN_TASK, args.data, args.size, NULL, NULL, NULL);
        if (h[i] == NULL)
            strat_final(w, out, POOL_EINVAL, NULL, pool_last_error(), i);
    }

    /* Then the results, in submission order. */
    bool stop = false;
    for (size_t i = 0; i < w->n && !stop; i++) {
        if (h[i] == NULL)
            continue;
        const msgpack_object *v;
        int st = pool_result_get(h[i], -1, &v);
        stop = strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_result_error(h[i]), i);
    }
    out->wall_s = pool_now() - out->t0;

    out->stopped_early = stop;
    strat_pool_finish(p, out, stop);
    /* After the pool is gone: an unread failure freed while the pool runs
     * would count as unobserved. */
    for (size_t i = 0; i < w->n; i++)
        pool_result_free(h[i]);
    free(h);
    msgpack_sbuffer_destroy(&args);
    strat_items_close(&items);
    return 0;
}

const strategy strat_merged = {
    "merged",
    "000",
    "one apply_async per item of a task running every stage in the worker (getC)",
    smg_run,
};
