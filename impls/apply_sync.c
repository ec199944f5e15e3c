/*
 * apply_sync.c: pool.apply() in a loop, one task at a time (document 002,
 * section 1.2.1: "synchronous and blocking ... not recommended").
 *
 *     for info in infoList:
 *         b = pool.apply(getB, (pool.apply(getA, (info,)),))
 *         if is_answer(b):
 *             pool.terminate()
 *             break
 *
 * Teaches: through apply() a pool is one worker plus a round trip per task
 * (P6); it stops perfectly, since nothing else is running at the answer.
 * The story: docs/labs/02-get_placement.md, docs/labs/04-overhead.md.
 */
#include "strategy.h"

/* Every stage of one item, each waited for; true when its result is the answer. */
static bool apply_sync_item(pool *p, const strat_workload *w, strat_outcome *out,
                            const msgpack_object *item, size_t i, msgpack_sbuffer *args)
{
    pool_result *r = NULL;
    const msgpack_object *v = item;
    int st = POOL_OK;
    const char *err = NULL;
    for (int s = 0; s < w->nstages; s++) {
        strat_args1(args, v); /* before freeing r, which v lives in */
        pool_result_free(r);
        r = pool_apply(p, w->stages[s], args->data, args->size);
        if (r == NULL) {
            st = POOL_EINVAL;
            err = pool_last_error();
            break;
        }
        st = pool_result_get(r, -1, &v);
        if (st != POOL_OK) {
            err = pool_result_error(r);
            break;
        }
    }
    bool answer = strat_final(w, out, st, st == POOL_OK ? v : NULL, err, i);
    pool_result_free(r);
    return answer;
}

static int apply_sync_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_STAGE);
    if (p == NULL)
        return -1;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    bool answer = false;
    for (size_t i = 0; i < w->n && !answer && !strat_interrupted(); i++)
        answer = apply_sync_item(p, w, out, strat_item(&items, i), i, &args);

    strat_pool_finish(p, out, &items, answer);
    msgpack_sbuffer_destroy(&args);
    return 0;
}

const strategy strat_apply_sync = {
    "apply_sync",
    "002",
    "pool.apply() for every stage of every item: one task in flight at a time",
    apply_sync_run,
};
