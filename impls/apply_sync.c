/*
 * strat_apply_sync.c: pool.apply() in a loop, one task at a time.
 *
 * Document 002 (section 1.2.1) lists apply() first and warns against it:
 * "synchronous and blocking: the next task starts only when the previous
 * one has ended (not recommended)". The Python it mirrors, for a pipeline
 * of getA then getB as in document 000:
 *
 *     for info in infoList:
 *         a = pool.apply(getA, (info,))
 *         b = pool.apply(getB, (a,))
 *         if is_answer(b):
 *             pool.terminate()
 *             break
 *
 * What it teaches: a pool used through apply() is a single worker with a
 * round trip added to every task. Only one task is ever in flight, so the
 * time is n * (a + b) plus one message each way per task, whatever the
 * number of workers (phenomenon P6: apply is the slowest API by far). The
 * one thing it does perfectly is stopping: when the answer arrives nothing
 * else is running, so nothing is wasted.
 */
#include "strategy.h"

#include <stdio.h>

/* What a stage hands on when a task's value came back as NULL (pool.h
 * allows it for nil). */
static const msgpack_object sap_nil = {.type = MSGPACK_OBJECT_NIL};

/*
 * Runs every stage of one item, each with pool_apply, which blocks until
 * its task is done. Records the item's final result and returns true when
 * it was the answer.
 */
static bool sap_item(pool *p, const strat_workload *w, strat_outcome *out,
                     const msgpack_object *item, size_t i, msgpack_sbuffer *args)
{
    pool_result *r = NULL;
    const msgpack_object *v = item;
    int st = POOL_OK;
    const char *err = NULL;
    for (int s = 0; s < w->nstages; s++) {
        /* Stage s's argument is stage s-1's value: pack it before freeing
         * the handle that value lives in. */
        strat_args1(args, v ? v : &sap_nil);
        pool_result_free(r);
        r = pool_apply(p, w->stages[s], args->data, args->size);
        if (r == NULL) {
            /* Refused at submit (unknown task, broken pool): this item's error. */
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

static int sap_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    bool stop = false;
    for (size_t i = 0; i < w->n && !stop; i++)
        stop = sap_item(p, w, out, strat_item(&items, i), i, &args);
    out->wall_s = pool_now() - out->t0; /* the last result is in: the join is not ours */

    /* After the answer nothing is running, but terminate is what the Python
     * does, and it also skips the orderly shutdown. */
    out->stopped_early = stop;
    strat_pool_finish(p, out, stop);
    msgpack_sbuffer_destroy(&args);
    strat_items_close(&items);
    return 0;
}

const strategy strat_apply_sync = {
    "apply_sync",
    "002",
    "pool.apply() for every stage of every item: one task in flight at a time",
    sap_run,
};
