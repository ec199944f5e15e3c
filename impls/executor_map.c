/*
 * executor_map.c: concurrent.futures' Executor.map, results in order
 * (document 002, sections 2.1 and 2.3).
 *
 *     with ProcessPoolExecutor(max_workers=3) as executor:
 *         for num, result in zip(numbers, executor.map(fib, numbers)):
 *             if is_answer(result):
 *                 break                 # leaving `with` cancels the rest
 *
 * Teaches: Executor.map submits every item at once (P25; CPython 3.14's
 * buffersize, the workload's, bounds the chunks out instead) and yields in
 * input order; its chunksize defaults to 1, a
 * message per item (P6: 2.08 s against 0.024 s with chunksize 834 in
 * CPython). A failed item surfaces at its position; here the iteration goes
 * on so that every error is counted. Several stages: the items become chain
 * argument arrays, mapped with the star form. The story:
 * docs/labs/04-overhead.md.
 */
#include "strategy.h"

#include <stdio.h>

/* Packs the array of every item's chain arguments, [[stages], item]. */
static void executor_map_chain_items(msgpack_sbuffer *out, const strat_workload *w,
                                     const strat_items *items)
{
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, w->n);
    for (size_t i = 0; i < w->n; i++) {
        strat_chain_args(&one, w, 0, strat_item(items, i));
        msgpack_sbuffer_write(out, one.data, one.size); /* one whole packed value */
    }
    msgpack_sbuffer_destroy(&one);
}

static int executor_map_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_ITEM);
    if (p == NULL)
        return -1;
    msgpack_sbuffer chain;
    msgpack_sbuffer_init(&chain);

    pool_imap_opts o = {.chunksize = w->chunksize, .buffersize = w->buffersize,
                        .ordered = true};
    pool_iter *it;
    if (w->nstages == 1) {
        size_t len; /* items = n: packed here, 1..n */
        const char *packed = strat_items_packed(w, &chain, &len);
        it = pool_executor_map_opt(p, w->stages[0], packed, len, &o);
    } else {
        snprintf(out->note, sizeof out->note,
                 "%d stages ran as one strat_chain task per item", w->nstages);
        executor_map_chain_items(&chain, w, &items);
        o.star = true;
        it = pool_executor_map_opt(p, STRAT_CHAIN_TASK, chain.data, chain.size, &o);
    }
    bool answer = strat_drain_iter(w, out, it);
    strat_stop_clock(out);

    pool_iter_free(it);
    strat_pool_finish(p, out, &items, answer);
    msgpack_sbuffer_destroy(&chain);
    return 0;
}

const strategy strat_executor_map = {
    "executor_map",
    "002",
    "Executor.map: every item submitted at once (chunksize 1 by default), results in order",
    executor_map_run,
};
