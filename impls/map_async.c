/*
 * map_async.c: one map_async per stage, then get() (documents 002 and 003).
 *
 *     a = pool.map_async(getA, infoList, chunksize).get()
 *     b = pool.map_async(getB, a, chunksize).get()
 *
 * Teaches: one message per chunk, not per item, so it beats every
 * one-task-per-message API on small tasks (P6); a chunk runs on one worker,
 * so too large a chunksize idles the others (P7; 0 is CPython's default,
 * ceil(n / (4 * workers))); one failed item fails the whole map, late (P10);
 * and it cannot stop early: the stop rule only sees the finished list. Each
 * stage's map is a barrier; avoiding it is the merged strategy's lesson.
 * The story: docs/labs/04-overhead.md, 05-chunk_skew.md, 08-errors.md.
 */
#include "strategy.h"

#include <stdio.h>

/* One final result per item: the list's values, or the map's error for
 * every item. All are recorded, even after the answer: they were all
 * computed before the stop rule could look at any. */
static void map_async_record(const strat_workload *w, strat_outcome *out, int st,
                             const msgpack_object *v, const char *err)
{
    if (st == POOL_OK && (v == NULL || v->type != MSGPACK_OBJECT_ARRAY ||
                          v->via.array.size != w->n)) {
        st = POOL_EINVAL; /* the engine broke its promise: say so, per item */
        err = "map_async: the result is not an array of one value per item";
    }
    for (size_t i = 0; i < w->n; i++)
        strat_final(w, out, st, st == POOL_OK ? &v->via.array.ptr[i] : NULL, err, i);
}

/* One map per stage, each over the previous one's values (a map's value
 * is a packed array: exactly the next map's items). Returns the last
 * status; *r is the last map (its value in *v), or *err says why not. */
static int map_async_stages(pool *p, const strat_workload *w, pool_result **r,
                            const msgpack_object **v, const char **err)
{
    msgpack_sbuffer next;
    msgpack_sbuffer_init(&next);
    size_t items_len;
    const char *items = strat_items_packed(w, &next, &items_len); /* a count: packed here */
    int st = POOL_OK;
    for (int s = 0; s < w->nstages; s++) {
        if (s > 0) {
            msgpack_packer pk;
            msgpack_sbuffer_clear(&next);
            msgpack_packer_init(&pk, &next, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, **v);
            items = next.data;
            items_len = next.size;
        }
        /* The map copies its items into its messages, so the previous map,
         * which *v lives in, may go now. */
        pool_result *nr = pool_map_async(p, w->stages[s], items, items_len, w->chunksize,
                                         NULL, NULL, NULL);
        pool_result_free(*r);
        *r = nr;
        if (nr == NULL) {
            st = POOL_EINVAL;
            *err = pool_last_error();
            break;
        }
        st = pool_result_get(nr, -1, v);
        if (st != POOL_OK) {
            *err = pool_result_error(nr);
            break;
        }
    }
    msgpack_sbuffer_destroy(&next);
    return st;
}

static int map_async_run(const strat_workload *w, strat_outcome *out)
{
    pool *p = strat_pool_create(w, out, NULL, STRAT_TASK_PER_STAGE); /* maps w->items as is */
    if (p == NULL)
        return -1;
    if (w->stop)
        snprintf(out->note, sizeof out->note,
                 "map_async waits for every chunk before any result can be checked");
    else if (w->nstages > 1)
        snprintf(out->note, sizeof out->note,
                 "map_async runs stage by stage: each stage waits for its slowest chunk");

    pool_result *r = NULL;
    const msgpack_object *v = NULL;
    const char *err = NULL;
    int st = map_async_stages(p, w, &r, &v, &err);
    strat_stop_clock(out);
    map_async_record(w, out, st, v, err);

    strat_pool_finish(p, out, NULL, false); /* nothing is left to stop, even at the answer */
    pool_result_free(r);
    return 0;
}

const strategy strat_map_async = {
    "map_async",
    "002, 003",
    "map_async(stage, items, chunksize).get() per stage; no early stop, one error fails all",
    map_async_run,
};
