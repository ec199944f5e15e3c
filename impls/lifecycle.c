/*
 * lifecycle.c: the pool's rules of life, probed (documents 002 and 004, P13).
 *
 *     pool = Pool(4)
 *     pool.join()              # ValueError: Pool is still running
 *     pool.close()
 *     pool.apply_async(f, ())  # ValueError: Pool not running
 *     pool.join()              # waits: queued work still finishes
 *     ...
 *     pool.terminate()         # kills the workers; unfinished work is dropped
 *
 * Runs the workload on two pools and reports what each rule did as facts:
 * join_before_close_refused, submit_after_close_refused, done_after_close
 * (first pool: close lets queued work finish; the wall time is this run's),
 * then terminated_jobs, done_before_terminate and terminate_s (second pool,
 * terminated with work queued). The story: docs/labs/11-lifecycle.md.
 */
#include "strategy.h"

/* Submits stage 0 of every item into a new handle array (NULL entries where
 * refused); NULL when out of memory. */
static pool_result **lifecycle_submit_all(pool *p, const strat_workload *w,
                                          const strat_items *items)
{
    pool_result **h = strat_handles_new(w->n);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    for (size_t i = 0; h && i < w->n; i++) {
        strat_args1(&args, strat_item(items, i));
        h[i] = strat_apply_async(p, w->stages[0], &args);
    }
    msgpack_sbuffer_destroy(&args);
    return h;
}

/* Rules 1 and 2 on a running pool with work queued (h). */
static void lifecycle_join_then_close(pool *p, const strat_workload *w, strat_outcome *out,
                                      const strat_items *items, pool_result **h)
{
    strat_fact_set(out, "join_before_close_refused", pool_join(p) == POOL_ESTATE);

    pool_close(p);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    strat_args1(&args, strat_item(items, 0));
    pool_result *late = strat_apply_async(p, w->stages[0], &args);
    strat_fact_set(out, "submit_after_close_refused",
                   late == NULL && pool_last_status() == POOL_ESTATE);
    pool_result_free(late);
    msgpack_sbuffer_destroy(&args);

    size_t done = 0;
    for (size_t i = 0; i < w->n; i++) {
        const msgpack_object *v = NULL;
        int st = h[i] ? pool_result_get(h[i], -1, &v) : pool_last_status();
        done += st == POOL_OK;
        strat_final(w, out, st, v, h[i] ? pool_result_error(h[i]) : pool_last_error(), i);
    }
    strat_fact_set(out, "done_after_close", (double)done);
}

/* Rule 3, on a second pool: terminate kills the workers and fails what was
 * unfinished. Its own outcome is thrown away; only the facts go to out. */
static void lifecycle_terminate(const strat_workload *w, strat_outcome *out)
{
    strat_outcome second = {0};
    strat_items items;
    pool *q = strat_pool_create(w, &second, &items, STRAT_TASK_PER_STAGE);
    if (q == NULL)
        return;
    pool_result **h = lifecycle_submit_all(q, w, &items);
    if (h != NULL) {
        double t = pool_now();
        pool_terminate(q);
        strat_fact_set(out, "terminate_s", pool_now() - t);
        size_t terminated = 0, finished = 0;
        for (size_t i = 0; i < w->n; i++) {
            int st = h[i] ? pool_result_get(h[i], -1, NULL) : POOL_ESTATE;
            terminated += st == POOL_ETERMINATED;
            finished += st == POOL_OK;
        }
        strat_fact_set(out, "terminated_jobs", (double)terminated);
        strat_fact_set(out, "done_before_terminate", (double)finished);
    }
    strat_pool_finish(q, &second, &items, true);
    strat_handles_free(h, w->n);
    strat_outcome_free(&second);
}

static int lifecycle_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_STAGE);
    if (p == NULL)
        return -1;
    pool_result **h = lifecycle_submit_all(p, w, &items);
    if (h == NULL)
        return strat_give_up(p, out, &items, "lifecycle: out of memory");
    lifecycle_join_then_close(p, w, out, &items, h);
    strat_pool_finish(p, out, &items, false);
    strat_handles_free(h, w->n);

    lifecycle_terminate(w, out);
    return 0;
}

const strategy strat_lifecycle = {
    "lifecycle",
    "002, 004",
    "probes join before close, submit after close, terminate with work queued",
    lifecycle_run,
};
