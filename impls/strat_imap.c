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

/* The input "generator": hands out the items one by one. Only the thread
 * iterating calls it (pool.h), so it needs no lock. */
struct sim_input {
    const strat_workload *w;
    strat_items items;
    size_t next;          /* the next item to hand out */
    msgpack_sbuffer args; /* scratch for the chain's packed arguments */
};

static int sim_next(void *ctx, msgpack_packer *pk, char *err, size_t errlen)
{
    struct sim_input *in = ctx;
    if (in->next == in->w->n)
        return 0; /* the end */
    const msgpack_object *item = strat_item(&in->items, in->next++);
    if (in->w->nstages == 1) {
        msgpack_pack_object(pk, *item); /* imap calls stage(item) */
        return 1;
    }
    /* The chain's argument array is packed by strategy.c's helper; the
     * packer appends those bytes as they are: they are one whole value. */
    strat_chain_args(&in->args, in->w, 0, item);
    if (pk->callback(pk->data, in->args.data, in->args.size) != 0) {
        snprintf(err, errlen, "imap: out of memory packing item %zu", in->next - 1);
        return -1;
    }
    return 1;
}

static int sim_run(const strat_workload *w, strat_outcome *out)
{
    pool *p = strat_pool_create(w, out);
    if (p == NULL)
        return -1;
    if (w->nstages > 1)
        out->tasks_total = w->n; /* one chain task per item */
    struct sim_input in = {.w = w};
    if (strat_items_open(&in.items, w) != 0) {
        snprintf(out->first_error, sizeof out->first_error,
                 "imap: the items are not a packed array of %zu values", w->n);
        strat_pool_finish(p, out, false);
        return -1;
    }
    msgpack_sbuffer_init(&in.args);

    pool_iter *it = w->nstages == 1
                        ? pool_imap(p, w->stages[0], sim_next, &in, w->chunksize)
                        : pool_imap_star(p, STRAT_CHAIN_TASK, sim_next, &in, w->chunksize, true);
    bool answer = false;
    if (it == NULL) {
        /* Refused (an unknown task, a broken pool): Python's imap() would
         * raise once, here, so it counts as one error. */
        strat_final(w, out, pool_last_status(), NULL, pool_last_error(), w->n);
    }
    while (it != NULL) {
        const msgpack_object *v;
        size_t index = SIZE_MAX; /* stays so when the iteration itself fails */
        int st = pool_iter_next(it, -1, &v, &index);
        if (st == POOL_EEND)
            break;
        if (index == SIZE_MAX) {
            /* Not an item's error: the pool was terminated or broke, and
             * the iterator ends here (CPython raises once, then stops). */
            strat_final(w, out, st, NULL, pool_iter_error(it), w->n);
            break;
        }
        if (strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_iter_error(it), index)) {
            answer = true;
            break;
        }
    }
    out->wall_s = pool_now() - out->t0;

    pool_iter_free(it); /* stops pulling the input; chunks in flight end unseen */
    out->stopped_early = answer;
    strat_pool_finish(p, out, answer);
    msgpack_sbuffer_destroy(&in.args);
    strat_items_close(&in.items);
    return 0;
}

const strategy strat_imap = {
    "imap",
    "002",
    "imap over a lazy input (window of chunks in flight), results in input order",
    sim_run,
};
