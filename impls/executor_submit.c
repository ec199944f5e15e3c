/*
 * executor_submit.c: concurrent.futures, submit() every item, then
 * as_completed() (document 002, section 2.3).
 *
 *     work_dict = {executor.submit(fib, i): i for i in numbers}
 *     for future in as_completed(work_dict):
 *         data = future.result()
 *
 * Teaches: a future per task costs a message each way, like apply_async
 * (P6); as_completed yields in completion order, so the dict (here the
 * future's position) says which item it was; an error raises only at
 * result() (P10), and fire and forget (w->fire_and_forget, futures dropped
 * unread) loses it; the answer is seen only after the submit loop (P4, P5).
 * Several stages run as one chain task per item. The story:
 * docs/labs/04-overhead.md, docs/labs/08-errors.md.
 */
#include "strategy.h"

#include <stdio.h>

/* The submit loop; futures[i] is item i's future. Returns how many were
 * submitted: submit() raises at the first refusal (closed, broken, unknown
 * task), and every later one would too, so one error and stop. */
static size_t executor_submit_all(pool *p, const strat_workload *w, strat_outcome *out,
                                  const strat_items *items, pool_result **futures)
{
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    size_t nsub = 0;
    for (; nsub < w->n; nsub++) {
        const char *task = strat_pipeline_args(&args, w, strat_item(items, nsub));
        futures[nsub] = pool_submit(p, task, args.data, args.size);
        if (futures[nsub] == NULL) {
            strat_final(w, out, pool_last_status(), NULL, pool_last_error(), nsub);
            break;
        }
    }
    msgpack_sbuffer_destroy(&args);
    return nsub;
}

/* for future in as_completed(...): future.result(), which returns at once
 * since as_completed yields only futures that are done. True at the answer. */
static bool executor_as_completed(const strat_workload *w, strat_outcome *out,
                                  pool_result **futures, pool_iter *ac)
{
    if (ac == NULL) {
        strat_final(w, out, pool_last_status(), NULL, pool_last_error(), w->n);
        return false;
    }
    size_t i;
    while (pool_iter_next(ac, -1, NULL, &i) == POOL_OK) {
        const msgpack_object *v;
        int st = pool_result_get(futures[i], -1, &v);
        if (strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_result_error(futures[i]), i))
            return true;
    }
    return false;
}

static int executor_submit_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_ITEM);
    if (p == NULL)
        return -1;
    pool_result **futures = strat_handles_new(w->n);
    if (futures == NULL)
        return strat_give_up(p, out, &items, "executor_submit: out of memory");
    size_t nsub = executor_submit_all(p, w, out, &items, futures);

    if (w->fire_and_forget) {
        snprintf(out->note, sizeof out->note,
                 "fire and forget: futures dropped unread, errors unobserved");
        for (size_t k = 0; k < nsub; k++) {
            pool_result_free(futures[k]); /* no result(), no done callback */
            futures[k] = NULL;
        }
        pool_close(p);
        pool_join(p); /* leaving `with`: the only wait, so the clock stops after it */
        strat_pool_finish(p, out, &items, false);
    } else {
        pool_iter *ac = pool_as_completed(futures, nsub);
        bool answer = executor_as_completed(w, out, futures, ac);
        strat_stop_clock(out);
        pool_iter_free(ac); /* before the futures it watches */
        strat_pool_finish(p, out, &items, answer);
    }
    strat_handles_free(futures, nsub);
    return 0;
}

const strategy strat_executor_submit = {
    "executor_submit",
    "002",
    "concurrent.futures: submit() every item, then as_completed(); stop = terminate",
    executor_submit_run,
};
