/*
 * strat_map_async.c: one map_async per stage, then get().
 *
 * Documents 002 and 003. Document 002 (section 1.2.4) times it against
 * apply_async on 20 000 trivial tasks, 0.45 s against 3.02 s:
 *
 *     result = pool.map_async(run, range(20000), chunksize).get()
 *
 * and a pipeline of two stages is two maps, the second over the first's
 * values:
 *
 *     a = pool.map_async(getA, infoList).get()
 *     b = pool.map_async(getB, a).get()
 *
 * What it teaches:
 *   - P6: map sends one message per chunk, not per item, so on small tasks
 *     it beats every one-task-per-message API by far;
 *   - P7: a chunk runs on one worker from start to end, so a chunksize too
 *     large leaves workers idle (document 003); chunksize 0 is CPython's
 *     default, ceil(n / (4 * workers));
 *   - P10: map_async has no per-item errors. If any item fails, the whole
 *     map fails with the first error, and only after every chunk has ended
 *     (no fail-fast). So a failed map is recorded as one error per item,
 *     each with the map's message;
 *   - it cannot stop early: the result is one list, ready only when every
 *     chunk has ended. A stop rule is checked on that list afterwards (the
 *     answer is found, nothing is saved) and the note says so.
 *
 * With several stages this goes stage by stage, as the program above does:
 * each map is a barrier, and stage s+1 starts only when the slowest chunk of
 * stage s has ended. One map of the strat_chain task would avoid the
 * barrier; that is the merged strategy's lesson, not this one's.
 */
#include "strategy.h"

#include <stdio.h>

/* Records one final result per item: the values, or the map's error for all. */
static void sma_record(const strat_workload *w, strat_outcome *out, int st,
                       const msgpack_object *v, const char *err)
{
    if (st == POOL_OK && (v == NULL || v->type != MSGPACK_OBJECT_ARRAY ||
                          v->via.array.size != w->n)) {
        st = POOL_EINVAL; /* the engine broke its promise: say so, per item */
        err = "map_async: the result is not an array of one value per item";
    }
    /* Every item is recorded even after the answer: they were all computed
     * and collected before the stop rule could look at any of them. */
    for (size_t i = 0; i < w->n; i++)
        strat_final(w, out, st, st == POOL_OK ? &v->via.array.ptr[i] : NULL, err, i);
}

static int sma_run(const strat_workload *w, strat_outcome *out)
{
    pool *p = strat_pool_create(w, out, NULL); /* maps straight over w->items */
    if (p == NULL)
        return -1;
    if (w->stop)
        snprintf(out->note, sizeof out->note,
                 "map_async waits for every chunk before any result can be checked");
    else if (w->nstages > 1)
        snprintf(out->note, sizeof out->note,
                 "map_async runs stage by stage: each stage waits for its slowest chunk");

    /* The items of stage s: the workload's own at stage 0, then the packed
     * values of stage s-1 (a map's value is an array, exactly what the next
     * map wants as its items). */
    msgpack_sbuffer next;
    msgpack_sbuffer_init(&next);
    const char *items = w->items;
    size_t items_len = w->items_len;

    pool_result *r = NULL;
    const msgpack_object *v = NULL;
    const char *err = NULL;
    int st = POOL_OK;
    for (int s = 0; s < w->nstages; s++) {
        if (s > 0) {
            msgpack_packer pk;
            msgpack_sbuffer_clear(&next);
            msgpack_packer_init(&pk, &next, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, *v);
            items = next.data;
            items_len = next.size;
        }
        /* The map copies its items into its messages, so the previous map,
         * which v lives in, may go now. */
        pool_result *nr = pool_map_async(p, w->stages[s], items, items_len, w->chunksize,
                                         NULL, NULL, NULL);
        pool_result_free(r);
        r = nr;
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
    out->wall_s = pool_now() - out->t0;
    sma_record(w, out, st, v, err);

    /* Nothing is left to stop: close, even when the stop rule said yes. */
    strat_pool_finish(p, out, false);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&next);
    return 0;
}

const strategy strat_map_async = {
    "map_async",
    "002, 003",
    "map_async(stage, items, chunksize).get() per stage; no early stop, one error fails all",
    sma_run,
};
