/*
 * strat_imap_unordered.c: imap_unordered, results in the order they finish.
 *
 * Document 002 (section 1.2.5) lists it as "the unordered version of imap";
 * document 001's early stop is best done with it (P4: 1.13 s against an
 * ideal of 1.0 s, where collecting everything first took 6.20 s):
 *
 *     for found in pool.imap_unordered(test, range(50000), chunksize=16):
 *         if found:
 *             pool.terminate()
 *             break
 *
 * What it teaches:
 *   - The same streaming as imap (P12: the input is pulled only while a
 *     window of chunks is out, so memory stays flat), but each chunk is
 *     yielded as soon as it arrives: a slow item holds back nothing, and
 *     the answer is seen as soon as it is computed.
 *   - The price of order-freedom: results come in completion order, so
 *     the loop must learn which item a result belongs to. CPython gives
 *     only the value; the engine also gives the item's index.
 *   - chunksize (w->chunksize, default 1) trades messages for reaction
 *     time: chunksize 16 sends 16 times fewer messages (P6), but the answer
 *     arrives only with the rest of its chunk.
 *   - Stopping: break, free the iterator (nothing more is pulled), then
 *     terminate (the chunks in flight die). Few tasks run after the answer:
 *     at most the window of chunks that was out.
 *   - A failed item is an error at that item; the iteration goes on.
 *
 * Several stages: each item's whole pipeline is one strat_chain task, run
 * in the worker, so an item goes through every stage before its result
 * streams back. Its arguments are two values ([[stages], item]), hence
 * pool_imap_star, imap's star form (task(*args)), unordered.
 */
#include "strategy.h"

#include <stdint.h>
#include <stdio.h>

static int siu_run(const strat_workload *w, strat_outcome *out)
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

    pool_iter *it =
        w->nstages == 1
            ? pool_imap_unordered(p, w->stages[0], strat_input_next, &in, w->chunksize)
            : pool_imap_star(p, STRAT_CHAIN_TASK, strat_input_next, &in, w->chunksize, false);
    bool answer = strat_drain_iter(w, out, it);
    out->wall_s = pool_now() - out->t0;

    pool_iter_free(it); /* stops pulling the input; chunks in flight end unseen */
    out->stopped_early = answer;
    strat_pool_finish(p, out, answer);
    strat_input_destroy(&in);
    strat_items_close(&items);
    return 0;
}

const strategy strat_imap_unordered = {
    "imap_unordered",
    "001, 002",
    "imap_unordered over a lazy input, results as they finish; stop = break + terminate",
    siu_run,
};
