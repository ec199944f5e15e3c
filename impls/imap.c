/*
 * imap.c: imap and imap_unordered, the items streamed through the pool
 * (document 002, section 1.2.5; document 001's best early stop).
 *
 *     for found in pool.imap_unordered(test, range(50000), chunksize=16):
 *         if found:
 *             pool.terminate()
 *             break
 *
 * Teaches (P12, P25): as in CPython, the whole input is handed over at the
 * call (every item submitted before the first result: memory grows with
 * n), unless the workload sets a buffersize: then the input is pulled like
 * a generator, only while at most buffersize chunks are out, so memory
 * stays flat. Either way the price is a message per chunk (P6: chunksize 1
 * by default, the same cost per task as map_async with chunksize 1). imap yields in input order, so a slow item
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

    pool_imap_opts o = {.chunksize = w->chunksize, .buffersize = w->buffersize,
                        .ordered = ordered, .star = w->nstages > 1};
    const char *task = w->nstages > 1 ? STRAT_CHAIN_TASK : w->stages[0];
    pool_iter *it = pool_imap_opt(p, task, strat_input_next, &in, &o);
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
    "imap over a lazy input (all submitted at the call, or buffersize chunks out), in order",
    imap_ordered_run,
};

const strategy strat_imap_unordered = {
    "imap_unordered",
    "001, 002",
    "imap_unordered over a lazy input, results as they finish; stop = break + terminate",
    imap_unordered_run,
};
