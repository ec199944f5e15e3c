/*
 * strat_imap.c: imap, the items streamed through the pool, results in order.
 *
 * Document 002 (section 1.2.5), its advice for when memory is short:
 *
 *     for result in pool.imap(run, range(20000)):   # chunksize=1
 *         if is_answer(result):
 *             pool.terminate()
 *             break
 *
 * What it teaches:
 *   - imap streams (P12). The items come from an input function that packs
 *     them one at a time, like a Python generator, and the engine pulls it
 *     only while fewer than a window of chunks (2 * workers by default) are
 *     out, so the tasks and results in flight take flat memory however many
 *     items there are. map would build every chunk first. (Here the input
 *     is the workload's array, already in memory; a real generator would
 *     add nothing.)
 *   - The price is one message per item at the default chunksize of 1
 *     (P6: imap is far slower than map_async on trivial tasks). A larger
 *     w->chunksize puts that many items in one message.
 *   - Results come back in input order. A slow item holds back every result
 *     behind it, even those already computed, so a stop rule may see its
 *     answer later than with imap_unordered (P4).
 *   - A failed item surfaces as an error at its position, and the iteration
 *     goes on past it, as CPython's IMapIterator does.
 *   - Stopping: break out of the loop, free the iterator (nothing more is
 *     pulled from the input), terminate the pool (the chunks in flight die).
 *
 * Several stages: the whole pipeline of an item is one strat_chain task,
 * which runs every stage in the worker, so each item goes through all its
 * stages before its result streams back. Its arguments are two values
 * ([[stages], item]), so it goes through pool_imap_star, imap's star form
 * (task(*args), as starmap). Chaining one imap per stage would also stream,
 * but at one message per stage per item.
 */
#include "strategy.h"

#include <stdint.h>
#include <stdio.h>

static int sim_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    if (w->nstages > 1)
        out->tasks_total = w->n; /* one chain task per item */
    /* The input "generator": the items one by one, pulled only as fast as
     * the window of chunks in flight allows, on this thread (pool.h). */
    strat_input in;
    strat_input_init(&in, w, &items);

    pool_iter *it = w->nstages == 1
                        ? pool_imap(p, w->stages[0], strat_input_next, &in, w->chunksize)
                        : pool_imap_star(p, STRAT_CHAIN_TASK, strat_input_next, &in, w->chunksize, true);
    bool answer = strat_drain_iter(w, out, it);
    out->wall_s = pool_now() - out->t0;

    pool_iter_free(it); /* stops pulling the input; chunks in flight end unseen */
    out->stopped_early = answer;
    strat_pool_finish(p, out, answer);
    strat_input_destroy(&in);
    strat_items_close(&items);
    return 0;
}

const strategy strat_imap = {
    "imap",
    "002",
    "imap over a lazy input (window of chunks in flight), results in input order",
    sim_run,
};
