/*
 * callback_chain.c: the first stage in the pool, the rest in its callback
 * (document 000's second fix, "use a callback function").
 *
 *     for info in infoList:
 *         pool.apply_async(getA, args=(info,), callback=getB)
 *     pool.close(); pool.join()
 *
 * Teaches (P1, P2): the submit loop no longer waits, but every getB runs in
 * the parent, on the result-handler thread, one callback at a time: time ≈
 * a + n·b, a fix only when b is cheap. Here the callback runs stages 2.. with
 * pool_task_call (the chain task) and applies the stop rule, terminating the
 * pool from inside the callback (pool.h allows it). The story:
 * docs/labs/03-serialized_get.md; errors: docs/labs/08-errors.md.
 */
#include "strategy.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Shared by the submit loop (caller's thread) and the callbacks (result
 * handler); the fields say who may touch what. */
typedef struct callback_chain_state {
    /* Set before the first submit, read-only after. */
    const strat_workload *w;
    strat_outcome *out; /* written through strat_final/strat_callback_* (locked) */
    pool *p;

    /* Set by the callback that saw the answer, read by both threads. */
    atomic_bool stopped;

    /* Result-handler thread only: callbacks never overlap (P2), so one pair
     * of buffers serves them all. */
    msgpack_sbuffer args, res;
} callback_chain_state;

/* One item's job, the callbacks' udata. */
typedef struct callback_chain_job {
    callback_chain_state *state;
    size_t item;
    /* Written by a callback before its job is marked ready, read by the
     * caller after pool_result_wait: the handle's lock orders the two. */
    bool recorded;
} callback_chain_job;

/* Document 000's getB: stages 1.. here, in the parent. */
static int callback_chain_rest(callback_chain_state *cs, const msgpack_object *v,
                               msgpack_unpacked *u, const msgpack_object **value,
                               const char **err)
{
    strat_chain_args(&cs->args, cs->w, 1, v);
    msgpack_sbuffer_clear(&cs->res);
    if (pool_task_call(STRAT_CHAIN_TASK, cs->args.data, cs->args.size, &cs->res) != POOL_OK) {
        *err = pool_last_error();
        return POOL_ETASK;
    }
    size_t off = 0;
    if (msgpack_unpack_next(u, cs->res.data, cs->res.size, &off) != MSGPACK_UNPACK_SUCCESS) {
        *err = "callback_chain: the later stages returned an unreadable value";
        return POOL_ETASK;
    }
    *value = &u->data;
    return POOL_OK;
}

/* callback: the first stage succeeded. */
static int callback_chain_on_result(pool_result *r, void *udata, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    callback_chain_job *job = udata;
    callback_chain_state *cs = job->state;
    strat_callback_enter(cs->out);
    /* After the answer, results still in flight are not final results. */
    if (!atomic_load(&cs->stopped)) {
        const msgpack_object *v = pool_result_value(r);
        const char *err = NULL;
        int st = POOL_OK;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        if (cs->w->nstages > 1)
            st = callback_chain_rest(cs, v, &u, &v, &err);
        job->recorded = true;
        if (strat_final(cs->w, cs->out, st, st == POOL_OK ? v : NULL, err, job->item)) {
            /* Set before terminating, so the submit loop knows why it is refused. */
            atomic_store(&cs->stopped, true);
            pool_terminate(cs->p);
        }
        msgpack_unpacked_destroy(&u);
    }
    strat_callback_leave(cs->out);
    return 0;
}

/* error_callback: the first stage failed (task error or dead worker). */
static int callback_chain_on_error(pool_result *r, void *udata, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    callback_chain_job *job = udata;
    callback_chain_state *cs = job->state;
    strat_callback_enter(cs->out);
    if (!atomic_load(&cs->stopped)) {
        job->recorded = true;
        /* Not pool_result_get: inside a callback the job is not "ready" yet
         * and waiting here would be refused. Any error status will do: the
         * message says what failed. */
        strat_final(cs->w, cs->out, POOL_ETASK, NULL, pool_result_error(r), job->item);
    }
    strat_callback_leave(cs->out);
    return 0;
}

/* The submit loop: nothing waits here. h[i] is item i's handle. */
static void callback_chain_submit_all(callback_chain_state *cs, const strat_items *items,
                                      callback_chain_job *jobs, pool_result **h)
{
    const strat_workload *w = cs->w;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    for (size_t i = 0; i < w->n && !atomic_load(&cs->stopped) && !strat_interrupted(); i++) {
        jobs[i] = (callback_chain_job){.state = cs, .item = i};
        strat_args1(&args, strat_item(items, i));
        h[i] = pool_apply_async(cs->p, w->stages[0], args.data, args.size,
                                callback_chain_on_result, callback_chain_on_error, &jobs[i]);
        /* Refused: this item's error, unless a callback has just terminated
         * the pool at the answer. */
        if (h[i] == NULL && !atomic_load(&cs->stopped)) {
            jobs[i].recorded = true;
            strat_refused(w, cs->out, i);
        }
    }
    msgpack_sbuffer_destroy(&args);
}

/* Document 000's close() and join(): wait until every job is done, which
 * means its callback has run. */
static void callback_chain_wait_all(callback_chain_state *cs, callback_chain_job *jobs,
                                    pool_result **h)
{
    for (size_t i = 0; i < cs->w->n; i++) {
        if (h[i] == NULL)
            continue;
        pool_result_wait(h[i], -1);
        /* A job can end with no callback at all: aborted by terminate (after
         * the answer: not a final result) or by a broken pool (an error that
         * must not go uncounted). */
        if (!jobs[i].recorded && !atomic_load(&cs->stopped)) {
            int st = pool_result_get(h[i], 0, NULL);
            strat_final(cs->w, cs->out, st, NULL, pool_result_error(h[i]), i);
        }
    }
}

static int callback_chain_run(const strat_workload *w, strat_outcome *out)
{
    strat_items items;
    pool *p = strat_pool_create(w, out, &items, STRAT_TASK_PER_ITEM); /* stage 1 only */
    if (p == NULL)
        return -1;
    callback_chain_job *jobs = calloc(w->n ? w->n : 1, sizeof *jobs);
    pool_result **h = strat_handles_new(w->n);
    if (jobs == NULL || h == NULL) {
        free(jobs);
        free(h);
        return strat_give_up(p, out, &items, "callback_chain: out of memory");
    }
    if (w->nstages > 1)
        snprintf(out->note, sizeof out->note,
                 "stages 2..%d ran in the parent, in callbacks: tasks_run counts stage 1 only",
                 w->nstages);
    callback_chain_state cs = {.w = w, .out = out, .p = p};
    atomic_init(&cs.stopped, false);
    msgpack_sbuffer_init(&cs.args);
    msgpack_sbuffer_init(&cs.res);

    callback_chain_submit_all(&cs, &items, jobs, h);
    callback_chain_wait_all(&cs, jobs, h);

    strat_pool_finish(p, out, &items, atomic_load(&cs.stopped));
    strat_handles_free(h, w->n);
    free(jobs);
    msgpack_sbuffer_destroy(&cs.args);
    msgpack_sbuffer_destroy(&cs.res);
    return 0;
}

const strategy strat_callback_chain = {
    "callback_chain",
    "000",
    "apply_async(first stage, callback=the other stages): the callback runs them in the parent",
    callback_chain_run,
};
