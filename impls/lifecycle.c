/*
 * strat_lifecycle.c: the pool's rules of life, probed (documents 002, 004;
 * phenomenon P13).
 *
 * The Python these rules come from:
 *
 *     pool = Pool(4)
 *     pool.join()              # ValueError: Pool is still running
 *     pool.close()
 *     pool.apply_async(f, ())  # ValueError: Pool not running
 *     pool.join()              # waits: queued work still finishes
 *
 *     pool = Pool(4)
 *     for x in items: pool.apply_async(f, (x,))
 *     pool.terminate()         # kills the workers; unfinished work is dropped
 *
 * This strategy runs the workload twice and reports what each rule did, as
 * facts a scenario can check:
 *   join_before_close_refused   1 if join on a running pool was refused
 *   submit_after_close_refused  1 if apply_async after close was refused
 *   done_after_close            results that still arrived after close
 *   terminated_jobs             jobs failed by terminate
 *   done_before_terminate       jobs that had finished when terminate came
 *   terminate_s                 seconds terminate took to kill the workers
 * The wall time is the first run's (close lets queued work finish).
 */
#include "strategy.h"

#include <stdlib.h>

/* Submits stage 0 of every item; returns the handles (NULL entries where refused). */
static pool_result **lc_submit_all(pool *p, const strat_workload *w, const strat_items *it)
{
    pool_result **rs = calloc(w->n ? w->n : 1, sizeof *rs);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    for (size_t i = 0; rs && i < w->n; i++) {
        strat_args1(&args, strat_item(it, i));
        rs[i] = pool_apply_async(p, w->stages[0], args.data, args.size, NULL, NULL, NULL);
    }
    msgpack_sbuffer_destroy(&args);
    return rs;
}

static void lc_free_all(pool_result **rs, size_t n)
{
    for (size_t i = 0; rs && i < n; i++)
        pool_result_free(rs[i]);
    free(rs);
}

static int lc_run(const strat_workload *w, strat_outcome *out)
{
    strat_items it;
    pool *p = strat_pool_create(w, out, &it);
    if (p == NULL)
        return -1;

    /* Rule 1: join is for a pool that no longer accepts work. */
    pool_result **rs = lc_submit_all(p, w, &it);
    strat_fact_set(out, "join_before_close_refused", pool_join(p) == POOL_ESTATE);

    /* Rule 2: close refuses new work, and lets queued work finish. */
    pool_close(p);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    strat_args1(&args, strat_item(&it, 0));
    pool_result *late = pool_apply_async(p, w->stages[0], args.data, args.size, NULL, NULL, NULL);
    strat_fact_set(out, "submit_after_close_refused",
                   late == NULL && pool_last_status() == POOL_ESTATE);
    pool_result_free(late);
    size_t done = 0;
    for (size_t i = 0; i < w->n; i++) {
        const msgpack_object *v = NULL;
        int st = rs[i] ? pool_result_get(rs[i], -1, &v) : pool_last_status();
        done += st == POOL_OK;
        strat_final(w, out, st, v, rs[i] ? pool_result_error(rs[i]) : pool_last_error(), i);
    }
    strat_fact_set(out, "done_after_close", (double)done);
    strat_pool_finish(p, out, false);
    lc_free_all(rs, w->n);

    /* Rule 3: terminate kills the workers and fails what was unfinished. */
    strat_outcome second = {0};
    pool *q = strat_pool_create(w, &second, NULL);
    if (q != NULL) {
        rs = lc_submit_all(q, w, &it);
        double t = pool_now();
        pool_terminate(q);
        strat_fact_set(out, "terminate_s", pool_now() - t);
        size_t terminated = 0, finished = 0;
        for (size_t i = 0; i < w->n; i++) {
            int st = rs[i] ? pool_result_get(rs[i], -1, NULL) : POOL_ESTATE;
            terminated += st == POOL_ETERMINATED;
            finished += st == POOL_OK;
        }
        strat_fact_set(out, "terminated_jobs", (double)terminated);
        strat_fact_set(out, "done_before_terminate", (double)finished);
        strat_pool_finish(q, &second, true);
        lc_free_all(rs, w->n);
        strat_outcome_free(&second);
    }
    msgpack_sbuffer_destroy(&args);
    strat_items_close(&it);
    return 0;
}

const strategy strat_lifecycle = {
    "lifecycle", "002, 004",
    "probes join before close, submit after close, terminate with work queued",
    lc_run,
};
