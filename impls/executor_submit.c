/*
 * strat_executor_submit.c: concurrent.futures, submit() every item, then
 * as_completed().
 *
 * Document 002 (section 2.3), with ProcessPoolExecutor:
 *
 *     work_dict = {executor.submit(fib, i): i for i in numbers}
 *     for future in as_completed(work_dict):
 *         num = work_dict[future]
 *         try:
 *             data = future.result()
 *         except Exception as e:
 *             print(e)
 *
 * What it teaches:
 *   - A future per task: one message each way per item, like apply_async
 *     (P6: submit + as_completed costs about what apply_async + callback
 *     does, far more than a chunked map).
 *   - as_completed yields the futures as they finish, not as they were
 *     submitted ("submit did not return results in order", the document
 *     notes), so a dict (here the futures' positions) tells which item a
 *     future was.
 *   - Errors: a failed task raises only when its future's result() is asked
 *     for (P10). Every future is asked here, so none is lost.
 *   - Stopping ("submit all, then check", P4): the answer can be seen only
 *     once the submit loop is over, since as_completed() starts after it;
 *     then terminate drops what is still queued. With a long input the
 *     submit loop is the cost (P5): see producer_consumer for the cure.
 *
 * Several stages: each item's whole pipeline is one strat_chain task (every
 * stage in the worker), so an item's future completes with its last stage.
 *
 * Fire and forget (w->fire_and_forget), the document's warning that
 * "submit() needs add_done_callback() to catch exceptions" (P10):
 *
 *     for i in numbers:
 *         executor.submit(test, i)      # the future is dropped
 *
 * every future is freed unread; the pool still runs the tasks, and the
 * errors are seen by nobody: the engine counts them as unobserved.
 */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>

static int ses_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    if (w->nstages > 1)
        out->tasks_total = w->n; /* one chain task per item */
    pool_result **futures = calloc(w->n ? w->n : 1, sizeof *futures);
    if (futures == NULL) {
        snprintf(out->first_error, sizeof out->first_error, "executor_submit: out of memory");
        strat_items_close(&items);
        strat_pool_finish(p, out, false);
        return -1;
    }
    bool chain = w->nstages > 1;
    const char *task = chain ? STRAT_CHAIN_TASK : w->stages[0];
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    /* The submit loop. futures[i] is item i's future: the position is the
     * dict of the document. */
    size_t nsub = 0;
    for (; nsub < w->n; nsub++) {
        if (chain)
            strat_chain_args(&args, w, 0, strat_item(&items, nsub));
        else
            strat_args1(&args, strat_item(&items, nsub));
        futures[nsub] = pool_submit(p, task, args.data, args.size);
        if (futures[nsub] == NULL) {
            /* Refused (closed, broken, unknown task): submit() would raise
             * here, and every later submit the same way. One error, stop. */
            strat_final(w, out, pool_last_status(), NULL, pool_last_error(), nsub);
            break;
        }
    }

    if (w->fire_and_forget) {
        snprintf(out->note, sizeof out->note,
                 "fire and forget: futures dropped unread, errors unobserved");
        for (size_t k = 0; k < nsub; k++)
            pool_result_free(futures[k]); /* no result(), no done callback */
        /* The leaving of `with`: close and join are the only wait, so the
         * wall time ends after them. */
        pool_close(p);
        pool_join(p);
        out->wall_s = pool_now() - out->t0;
        strat_pool_finish(p, out, false);
        goto done;
    }

    bool answer = false;
    pool_iter *ac = pool_as_completed(futures, nsub);
    if (ac == NULL)
        strat_final(w, out, pool_last_status(), NULL, pool_last_error(), w->n);
    size_t i;
    while (ac != NULL && pool_iter_next(ac, -1, NULL, &i) == POOL_OK) {
        /* as_completed yields only futures that are done: this get() (the
         * document's future.result()) returns at once. */
        const msgpack_object *v;
        int st = pool_result_get(futures[i], -1, &v);
        if (strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_result_error(futures[i]), i)) {
            answer = true;
            break;
        }
    }
    out->wall_s = pool_now() - out->t0;

    pool_iter_free(ac);
    out->stopped_early = answer;
    strat_pool_finish(p, out, answer);
    /* After the iterator (it watched them) and after the pool: a future
     * stays valid until freed (pool.h). */
    for (size_t k = 0; k < nsub; k++)
        pool_result_free(futures[k]);
done:
    free(futures);
    msgpack_sbuffer_destroy(&args);
    strat_items_close(&items);
    return 0;
}

const strategy strat_executor_submit = {
    "executor_submit",
    "002",
    "concurrent.futures: submit() every item, then as_completed(); stop = terminate",
    ses_run,
};
