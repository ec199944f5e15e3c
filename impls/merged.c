/*
 * merged.c: every stage in one task, one apply_async per item (document
 * 000's first fix, "merge the functions").
 *
 *     def getC(info):
 *         return getB(getA(info))
 *     results = [pool.apply_async(getC, (info,)) for info in infoList]
 *
 * Teaches (P1): when stage B needs stage A's value, let the worker go on
 * with it instead of fetching it in the parent: time ≈ ⌈n/w⌉·(a+b), the
 * best of document 000's three versions. getC is the chain task
 * (strategy.c); results are read in submission order and the pool is
 * terminated at the answer. The story: docs/labs/03-serialized_get.md.
 */
#include "strategy.h"

#include <stdio.h>

static int merged_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_ITEM);
    if (p == NULL)
        return -1;
    pool_result **h = strat_handles_new(w->n);
    if (h == NULL)
        return strat_give_up(p, out, &items, "merged: out of memory");
    if (w->nstages > 1)
        snprintf(out->note, sizeof out->note, "each item's %d stages ran as one task",
                 w->nstages);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    for (size_t i = 0; i < w->n; i++) { /* one getC per item, nothing waited for */
        strat_chain_args(&args, w, 0, strat_item(&items, i));
        h[i] = strat_apply_async(p, STRAT_CHAIN_TASK, &args);
        if (h[i] == NULL)
            strat_refused(w, out, i);
    }
    bool answer = strat_collect_in_order(w, out, h, w->n);

    strat_pool_finish(p, out, &items, answer);
    strat_handles_free(h, w->n);
    msgpack_sbuffer_destroy(&args);
    return 0;
}

const strategy strat_merged = {
    "merged",
    "000",
    "one apply_async per item of a task running every stage in the worker (getC)",
    merged_run,
};
