/*
 * async_get_after.c: apply_async for every item first, get() after
 * (document 001's basic use and first early stop; document 002's lost errors).
 *
 *     result = [pool.apply_async(test, (i,)) for i in range(n)]
 *     for r in result:
 *         if r.get():              # in submission order
 *             pool.terminate()
 *             break
 *
 * Teaches: the cure for P3, every worker busy, time ≈ ⌈n/w⌉·t; but "submit
 * all, then check" (P4) sees the answer only after the submit loop, in
 * submission order. Several stages go stage by stage, a barrier between
 * them. Fire and forget (w->fire_and_forget) drops every handle unread: the
 * errors go unobserved (P10). The story: docs/labs/07-early_stop.md,
 * docs/labs/08-errors.md.
 */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>

/* `pool.apply_async(f, (i,))`, its return value ignored. With several
 * stages there is no value to feed the next, so each item is one chain task. */
static void get_after_fire_and_forget(pool *p, const strat_workload *w, strat_outcome *out,
                                      const strat_items *items, msgpack_sbuffer *args)
{
    if (w->nstages > 1)
        snprintf(out->note, sizeof out->note,
                 "fire and forget: each item's %d stages ran as one strat_chain task",
                 w->nstages);
    for (size_t i = 0; i < w->n; i++) {
        const char *task = strat_pipeline_args(args, w, strat_item(items, i));
        pool_result *r = strat_apply_async(p, task, args);
        if (r == NULL)
            strat_refused(w, out, i); /* a refusal is not lost: it raises here */
        pool_result_free(r);          /* whatever happens to this task, nobody will know */
    }
}

/*
 * Stage s for every live item: submit all, then get all in order. prev[i]
 * holds item i's argument (unused at stage 0: the item itself); cur[i]
 * receives the new handle. An item that fails leaves the pipeline (alive[i]
 * false) with its final error recorded. True at the answer.
 */
static bool get_after_stage(pool *p, const strat_workload *w, strat_outcome *out, int s,
                            const strat_items *items, pool_result **prev, pool_result **cur,
                            bool *alive, msgpack_sbuffer *args)
{
    for (size_t i = 0; i < w->n; i++) {
        if (!alive[i])
            continue;
        strat_args1(args, s == 0 ? strat_item(items, i) : pool_result_value(prev[i]));
        cur[i] = strat_apply_async(p, w->stages[s], args);
        if (cur[i] == NULL) {
            alive[i] = false;
            strat_refused(w, out, i);
        }
    }
    bool last = s == w->nstages - 1;
    for (size_t i = 0; i < w->n; i++) {
        if (!alive[i])
            continue;
        const msgpack_object *v;
        int st = pool_result_get(cur[i], -1, &v);
        if (st != POOL_OK) {
            alive[i] = false;
            strat_final(w, out, st, NULL, pool_result_error(cur[i]), i);
        } else if (last && strat_final(w, out, st, v, NULL, i)) {
            return true;
        }
    }
    return false;
}

static int async_get_after_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_STAGE);
    if (p == NULL)
        return -1;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    if (w->fire_and_forget) {
        get_after_fire_and_forget(p, w, out, &items, &args);
        pool_close(p);
        pool_join(p); /* the only wait there is: the clock stops after it */
        strat_pool_finish(p, out, &items, false);
        msgpack_sbuffer_destroy(&args);
        return 0;
    }

    /* prev: stage s-1's handles, whose values are stage s's arguments. */
    pool_result **prev = strat_handles_new(w->n), **cur = strat_handles_new(w->n);
    bool *alive = malloc((w->n ? w->n : 1) * sizeof *alive);
    if (prev == NULL || cur == NULL || alive == NULL) {
        free(prev);
        free(cur);
        free(alive);
        msgpack_sbuffer_destroy(&args);
        return strat_give_up(p, out, &items, "async_get_after: out of memory");
    }
    for (size_t i = 0; i < w->n; i++)
        alive[i] = true;

    bool answer = false;
    for (int s = 0; s < w->nstages && !answer; s++) {
        answer = get_after_stage(p, w, out, s, &items, prev, cur, alive, &args);
        for (size_t i = 0; i < w->n; i++) {
            pool_result_free(prev[i]);
            prev[i] = cur[i];
            cur[i] = NULL;
        }
    }
    strat_pool_finish(p, out, &items, answer);
    strat_handles_free(prev, w->n);
    free(cur);
    free(alive);
    msgpack_sbuffer_destroy(&args);
    return 0;
}

const strategy strat_async_get_after = {
    "async_get_after",
    "001, 002",
    "apply_async for every item, then get() on each in order (stage by stage)",
    async_get_after_run,
};
