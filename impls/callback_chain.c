/*
 * strat_callback_chain.c: the first stage in the pool, the rest in its callback.
 *
 * Document 000's second fix ("use a callback function"):
 *
 *     for info in infoList:
 *         pool.apply_async(getA, args=(info,), callback=getB)
 *     pool.close()
 *     pool.join()
 *
 * and its printout shows "getB pid" equal to the parent's pid: CPython runs
 * a callback in the parent, on the pool's result-handler thread.
 *
 * What it teaches (P1, P2): the submit loop no longer waits, so every getA
 * runs in parallel; but every getB now runs in the parent, one callback at a
 * time, in completion order. Time ≈ a + n·b: a fix only when b is cheap,
 * which the document does not say. With b = a it is as slow as the get() in
 * the loop it replaced. A slow callback also delays every result behind it.
 *
 * Here the callback runs the remaining stages with pool_task_call, in this
 * process, through the strat_chain task (every stage from the second on, in
 * one call). With one stage the callback only records the result.
 * error_callback records the error. A stop rule is applied inside the
 * callback, which then terminates the pool from there (allowed: pool.h).
 *
 * Threads: callbacks run on the result handler, the submit loop on the
 * caller's thread. They share the scc_run below; the fields say who may
 * touch what.
 */
#include "strategy.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct scc_run {
    /* Set before the first submit, read-only after. */
    const strat_workload *w;
    strat_outcome *out; /* written through strat_final/strat_callback_* (locked) */
    pool *p;

    /* Set by the callback that saw the answer, read by both threads. */
    atomic_bool stopped;

    /* Result-handler thread only: callbacks never overlap (P2), so one pair
     * of buffers serves them all. */
    msgpack_sbuffer args, res;
} scc_run;

typedef struct scc_item {
    scc_run *run;
    size_t item;
    /* Written by a callback before its job is marked ready, read by the
     * caller after pool_result_wait: the handle's lock orders the two. */
    bool recorded;
} scc_item;

/* Runs stages 1.. of the pipeline here, in the parent: document 000's getB. */
static int scc_rest_of_chain(scc_run *run, const msgpack_object *v, msgpack_unpacked *u,
                             const msgpack_object **value, const char **err)
{
    static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    strat_chain_args(&run->args, run->w, 1, v ? v : &nil);
    msgpack_sbuffer_clear(&run->res);
    if (pool_task_call(STRAT_CHAIN_TASK, run->args.data, run->args.size, &run->res) != POOL_OK) {
        *err = pool_last_error();
        return POOL_ETASK;
    }
    size_t off = 0;
    if (msgpack_unpack_next(u, run->res.data, run->res.size, &off) != MSGPACK_UNPACK_SUCCESS) {
        *err = "callback_chain: the later stages returned an unreadable value";
        return POOL_ETASK;
    }
    *value = &u->data;
    return POOL_OK;
}

/* callback: the first stage succeeded. */
static int scc_on_result(pool_result *r, void *udata, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    scc_item *it = udata;
    scc_run *run = it->run;
    strat_callback_enter(run->out);
    /* After the answer, results still in flight are not final results. */
    if (!atomic_load(&run->stopped)) {
        const msgpack_object *v = pool_result_value(r);
        const char *err = NULL;
        int st = POOL_OK;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        if (run->w->nstages > 1)
            st = scc_rest_of_chain(run, v, &u, &v, &err);
        it->recorded = true;
        if (strat_final(run->w, run->out, st, st == POOL_OK ? v : NULL, err, it->item)) {
            /* Set before terminating, so the submit loop knows why it is refused. */
            atomic_store(&run->stopped, true);
            pool_terminate(run->p);
        }
        msgpack_unpacked_destroy(&u);
    }
    strat_callback_leave(run->out);
    return 0;
}

/* error_callback: the first stage failed (task error or dead worker). */
static int scc_on_error(pool_result *r, void *udata, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    scc_item *it = udata;
    strat_callback_enter(it->run->out);
    if (!atomic_load(&it->run->stopped)) {
        it->recorded = true;
        /* Not pool_result_get: inside a callback the job is not "ready" yet
         * (get returns after the callback), and waiting here would refuse.
         * The message says what failed; any error status will do. */
        strat_final(it->run->w, it->run->out, POOL_ETASK, NULL, pool_result_error(r),
                    it->item);
    }
    strat_callback_leave(it->run->out);
    return 0;
}

static int scc_run_fn(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items);
    if (p == NULL)
        return -1;
    out->tasks_total = w->n; /* the workers run stage 0; the rest runs here */
    size_t n = w->n ? w->n : 1;
    scc_item *ctx = calloc(n, sizeof *ctx);
    pool_result **h = calloc(n, sizeof *h);
    if (ctx == NULL || h == NULL) {
        snprintf(out->first_error, sizeof out->first_error, "callback_chain: out of memory");
        free(ctx);
        free(h);
        strat_items_close(&items);
        strat_pool_finish(p, out, false);
        return -1;
    }
    scc_run run = {.w = w, .out = out, .p = p};
    atomic_init(&run.stopped, false);
    msgpack_sbuffer_init(&run.args);
    msgpack_sbuffer_init(&run.res);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    /* The engine counts what the workers ran: the first stage only. */
    if (w->nstages > 1)
        snprintf(out->note, sizeof out->note,
                 "stages 2..%d ran in the parent, in callbacks: tasks_run counts stage 1 only",
                 w->nstages);

    /* The submit loop: nothing waits here. */
    for (size_t i = 0; i < w->n && !atomic_load(&run.stopped); i++) {
        ctx[i] = (scc_item){.run = &run, .item = i};
        strat_args1(&args, strat_item(&items, i));
        h[i] = pool_apply_async(p, w->stages[0], args.data, args.size, scc_on_result,
                                scc_on_error, &ctx[i]);
        /* Refused: an error of this item, unless a callback has just
         * terminated the pool at the answer. */
        if (h[i] == NULL && !atomic_load(&run.stopped)) {
            ctx[i].recorded = true;
            strat_final(w, out, POOL_EINVAL, NULL, pool_last_error(), i);
        }
    }

    /* Document 000's close() and join(): wait until every job is done, which
     * means its callback has run. */
    for (size_t i = 0; i < w->n; i++) {
        if (h[i] == NULL)
            continue;
        pool_result_wait(h[i], -1);
        /* A job can end with no callback at all: aborted by terminate (after
         * the answer: not a final result) or by a broken pool (an error that
         * must not go uncounted). */
        if (!ctx[i].recorded && !atomic_load(&run.stopped)) {
            int st = pool_result_get(h[i], 0, NULL);
            strat_final(w, out, st, NULL, pool_result_error(h[i]), i);
        }
    }
    out->wall_s = pool_now() - out->t0;

    bool stop = atomic_load(&run.stopped);
    out->stopped_early = stop;
    strat_pool_finish(p, out, stop);
    for (size_t i = 0; i < w->n; i++)
        pool_result_free(h[i]);
    free(h);
    free(ctx);
    msgpack_sbuffer_destroy(&args);
    msgpack_sbuffer_destroy(&run.args);
    msgpack_sbuffer_destroy(&run.res);
    strat_items_close(&items);
    return 0;
}

const strategy strat_callback_chain = {
    "callback_chain",
    "000",
    "apply_async(first stage, callback=the other stages): the callback runs them in the parent",
    scc_run_fn,
};
