/*
 * imap.c: imap and imap_unordered, the items streamed through the pool
 * (document 002, section 1.2.5; document 001's best early stop).
 *
 *     for found in pool.imap_unordered(test, range(50000), chunksize=16):
 *         if found:
 *             pool.terminate()
 *             break
 *
 * Teaches (P12): the input is pulled like a generator, only while a window
 * of chunks is out, so memory stays flat; the price is a message per chunk
 * (P6: chunksize 1 by default). imap yields in input order, so a slow item
 * holds back every result behind it; imap_unordered yields each chunk as it
 * arrives, so the answer is seen as soon as it is computed (P4). A failed
 * item is an error at its position and the iteration goes on. Several
 * stages run as one chain task per item, through imap's star form. The
 * story: docs/labs/10-imap_memory.md, docs/labs/07-early_stop.md.
 */
#include "strategy.h"

/* The two strategies differ by this one choice. */
static int imap_run(const strat_workload *w, strat_outcome *out, bool ordered)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_ITEM);
    if (p == NULL)
        return -1;
    strat_input in; /* the "generator", pulled on this thread (pool.h) */
    strat_input_init(&in, w, &items);

    pool_iter *it;
    if (w->nstages > 1)
        it = pool_imap_star(p, STRAT_CHAIN_TASK, strat_input_next, &in, w->chunksize, ordered);
    else if (ordered)
        it = pool_imap(p, w->stages[0], strat_input_next, &in, w->chunksize);
    else
        it = pool_imap_unordered(p, w->stages[0], strat_input_next, &in, w->chunksize);
    bool answer = strat_drain_iter(w, out, it);
    strat_stop_clock(out);

    pool_iter_free(it); /* the `break`: nothing more is pulled from the input */
    strat_pool_finish(p, out, &items, answer);
    strat_input_destroy(&in);
    return 0;
}

static int imap_ordered_run(const strat_workload *w, strat_outcome *out)
{
    return imap_run(w, out, true);
}

static int imap_unordered_run(const strat_workload *w, strat_outcome *out)
{
    return imap_run(w, out, false);
}

const strategy strat_imap = {
    "imap",
    "002",
    "imap over a lazy input (window of chunks in flight), results in input order",
    imap_ordered_run,
};

const strategy strat_imap_unordered = {
    "imap_unordered",
    "001, 002",
    "imap_unordered over a lazy input, results as they finish; stop = break + terminate",
    imap_unordered_run,
};
