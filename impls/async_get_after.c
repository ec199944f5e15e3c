/*
 * strat_async_get_after.c: submit every apply_async first, call get() after.
 *
 * Document 001, its "basic use" and its first early-stop example:
 *
 *     result = [pool.apply_async(test, (i,)) for i in range(n)]
 *     for r in result:
 *         if r.get():              # checked in submission order
 *             pool.terminate()
 *             break
 *
 * What it teaches: the cure for P3. Collecting the handles and calling get()
 * after the loop keeps every worker busy: time ≈ ⌈n/w⌉·t instead of n·t.
 * With several stages it goes stage by stage: every item's stage s is
 * submitted, then waited for, and those values feed stage s+1 (a barrier
 * between stages, so the slowest item of a stage holds up the next one).
 *
 * The stop rule ("submit all, then check", P4): the answer can only be seen
 * once the whole submit loop is over, and only in submission order, so a
 * slow early item hides a quick answer behind it. Then terminate drops the
 * rest.
 *
 * Fire and forget (w->fire_and_forget, document 002's lost errors): every
 * task is submitted and its handle freed at once, with no get() and no
 * error callback, like `pool.apply_async(f, (i,))` whose return value is
 * ignored. close() and join() wait for the work; the errors are seen by
 * nobody, and the engine counts them as unobserved. With several stages
 * there are no values to feed the next stage, so each item's whole pipeline
 * is one strat_chain task (said in the note).
 */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>

static const msgpack_object sga_nil = {.type = MSGPACK_OBJECT_NIL};

static void sga_fire_and_forget(pool *p, const strat_workload *w, strat_outcome *out,
                                const strat_items *items, msgpack_sbuffer *args)
{
    bool chain = w->nstages > 1;
    if (chain)
        snprintf(out->note, sizeof out->note,
                 "fire and forget: each item's %d stages ran as one strat_chain task",
                 w->nstages);
    for (size_t i = 0; i < w->n; i++) {
        if (chain)
            strat_chain_args(args, w, 0, strat_item(items, i));
        else
            strat_args1(args, strat_item(items, i));
        pool_result *r = pool_apply_async(p, chain ? STRAT_CHAIN_TASK : w->stages[0],
                                          args->data, args->size, NULL, NULL, NULL);
        /* The handle is dropped unread: whatever happens to this task, nobody
         * here will know. A refused submit is not lost, though: say so. */
        if (r == NULL)
            strat_final(w, out, POOL_EINVAL, NULL, pool_last_error(), i);
        pool_result_free(r);
    }
}

/*
 * Stage s for every item: submit all, then get all in order. args_of[i] is
 * the handle holding item i's argument (NULL at stage 0: the item itself),
 * h[i] receives the new handle, NULL when the item is out of the pipeline
 * (it failed: its final error is recorded here). Returns true at the answer.
 */
static bool sga_stage(pool *p, const strat_workload *w, strat_outcome *out, int s,
                      const strat_items *items, pool_result **args_of, pool_result **h,
                      bool *alive, msgpack_sbuffer *args)
{
    bool last = s == w->nstages - 1;
    for (size_t i = 0; i < w->n; i++) {
        if (!alive[i])
            continue;
        const msgpack_object *v = s == 0 ? strat_item(items, i) : pool_result_value(args_of[i]);
        strat_args1(args, v ? v : &sga_nil);
        h[i] = pool_apply_async(p, w->stages[s], args->data, args->size, NULL, NULL, NULL);
        if (h[i] == NULL) {
            alive[i] = false;
            strat_final(w, out, POOL_EINVAL, NULL, pool_last_error(), i);
        }
    }
    for (size_t i = 0; i < w->n; i++) {
        if (!alive[i])
            continue;
        const msgpack_object *v;
        int st = pool_result_get(h[i], -1, &v);
        if (st != POOL_OK) {
            alive[i] = false;
            strat_final(w, out, st, NULL, pool_result_error(h[i]), i);
        } else if (last && strat_final(w, out, st, v, NULL, i)) {
            return true;
        }
    }
    return false;
}

static int sga_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    if (w->fire_and_forget) {
        sga_fire_and_forget(p, w, out, &items, &args);
        /* close + join are the only wait there is: the clock stops after them. */
        pool_close(p);
        pool_join(p);
        out->wall_s = pool_now() - out->t0;
        strat_pool_finish(p, out, false);
        msgpack_sbuffer_destroy(&args);
        strat_items_close(&items);
        return 0;
    }

    /* prev holds the handles of stage s-1, whose values are stage s's
     * arguments; cur those of stage s. */
    size_t n = w->n ? w->n : 1;
    pool_result **prev = calloc(n, sizeof *prev), **cur = calloc(n, sizeof *cur);
    bool *alive = malloc(n * sizeof *alive);
    if (prev == NULL || cur == NULL || alive == NULL) {
        snprintf(out->first_error, sizeof out->first_error, "async_get_after: out of memory");
        free(prev);
        free(cur);
        free(alive);
        msgpack_sbuffer_destroy(&args);
        strat_items_close(&items);
        strat_pool_finish(p, out, false);
        return -1;
    }
    for (size_t i = 0; i < w->n; i++)
        alive[i] = true;

    bool stop = false;
    for (int s = 0; s < w->nstages && !stop; s++) {
        stop = sga_stage(p, w, out, s, &items, prev, cur, alive, &args);
        for (size_t i = 0; i < w->n; i++) {
            pool_result_free(prev[i]);
            prev[i] = cur[i];
            cur[i] = NULL;
        }
    }
    out->wall_s = pool_now() - out->t0;

    out->stopped_early = stop;
    strat_pool_finish(p, out, stop);
    /* Freed after the pool is gone: handles stay valid (pool.h), and an
     * unread failure freed early would count as unobserved. */
    for (size_t i = 0; i < w->n; i++)
        pool_result_free(prev[i]);
    free(prev);
    free(cur);
    free(alive);
    msgpack_sbuffer_destroy(&args);
    strat_items_close(&items);
    return 0;
}

const strategy strat_async_get_after = {
    "async_get_after",
    "001, 002",
    "apply_async for every item, then get() on each in order (stage by stage)",
    sga_run,
};
