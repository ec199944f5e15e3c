/*
 * strategy.c: the vocabulary the strategies share, so that each strategy
 * file shows only its own way of using the pool: argument packing (and the
 * "chain" task that runs every stage in one task, document 000's merged
 * getC), starting and finishing the pool with the same timing rules for
 * all, handle arrays and the in-order collect, and the bookkeeping of final
 * results, stop rules and callbacks.
 *
 * Final results may arrive on two threads (a callback on the result
 * handler, the main thread's get()), so their bookkeeping takes one lock;
 * that lock is also what guarantees the stop rule never runs on two threads
 * at once.
 */
#include "strategy.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t strat_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int strat_cb_running;

/* ---- the chain task: every stage in one task -------------------------- */

static int chain_task(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    if (args->size != 2 || args->ptr[0].type != MSGPACK_OBJECT_ARRAY)
        return pool_task_fail(ctx, "strat_chain: expects [[stage names...], value]");
    const msgpack_object_array *names = &args->ptr[0].via.array;
    /* Three buffers: the next stage's arguments, the bytes the current value
     * points into, and the stage's fresh result. After each stage the last
     * two swap, so `cur` always points into `val`. */
    msgpack_sbuffer next_args, val, res;
    msgpack_sbuffer_init(&next_args);
    msgpack_sbuffer_init(&val);
    msgpack_sbuffer_init(&res);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    msgpack_object cur = args->ptr[1];
    int rc = 0;
    for (uint32_t s = 0; s < names->size && rc == 0; s++) {
        char name[64];
        const msgpack_object *n = &names->ptr[s];
        if (n->type != MSGPACK_OBJECT_STR || n->via.str.size >= sizeof name) {
            rc = pool_task_fail(ctx, "strat_chain: stage %u is not a task name", s);
            break;
        }
        memcpy(name, n->via.str.ptr, n->via.str.size);
        name[n->via.str.size] = '\0';
        strat_args1(&next_args, &cur);
        msgpack_sbuffer_clear(&res);
        if (pool_task_call(name, next_args.data, next_args.size, &res) != POOL_OK) {
            rc = pool_task_fail(ctx, "stage '%s': %s", name, pool_last_error());
            break;
        }
        msgpack_sbuffer tmp = val;
        val = res;
        res = tmp;
        size_t off = 0;
        msgpack_unpacked_destroy(&u);
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, val.data, val.size, &off) != MSGPACK_UNPACK_SUCCESS) {
            rc = pool_task_fail(ctx, "stage '%s' returned an unreadable value", name);
            break;
        }
        cur = u.data;
    }
    if (rc == 0)
        msgpack_pack_object(out, cur);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&next_args);
    msgpack_sbuffer_destroy(&val);
    msgpack_sbuffer_destroy(&res);
    return rc;
}

void strat_register_tasks(void)
{
    pool_task_register(STRAT_CHAIN_TASK, chain_task, NULL);
}

/* The argument a NULL value stands for (pool.h: NULL is a nil result). */
static const msgpack_object strat_nil = {.type = MSGPACK_OBJECT_NIL};

void strat_chain_args(msgpack_sbuffer *out, const strat_workload *w, int from_stage,
                      const msgpack_object *value)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, (size_t)(w->nstages - from_stage));
    for (int s = from_stage; s < w->nstages; s++)
        pool_pack_str(&pk, w->stages[s]);
    msgpack_pack_object(&pk, value ? *value : strat_nil);
}

void strat_args1(msgpack_sbuffer *out, const msgpack_object *value)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_object(&pk, value ? *value : strat_nil);
}

const char *strat_pipeline_args(msgpack_sbuffer *args, const strat_workload *w,
                                const msgpack_object *item)
{
    if (w->nstages == 1) {
        strat_args1(args, item);
        return w->stages[0];
    }
    strat_chain_args(args, w, 0, item);
    return STRAT_CHAIN_TASK;
}

pool_result *strat_apply_async(pool *p, const char *task, const msgpack_sbuffer *args)
{
    return pool_apply_async(p, task, args->data, args->size, NULL, NULL, NULL);
}

/* ---- items ------------------------------------------------------------- */

int strat_items_open(strat_items *it, const strat_workload *w)
{
    size_t off = 0;
    msgpack_unpacked_init(&it->u);
    if (msgpack_unpack_next(&it->u, w->items, w->items_len, &off) != MSGPACK_UNPACK_SUCCESS ||
        it->u.data.type != MSGPACK_OBJECT_ARRAY || it->u.data.via.array.size != w->n) {
        msgpack_unpacked_destroy(&it->u);
        return -1;
    }
    return 0;
}

const msgpack_object *strat_item(const strat_items *it, size_t i)
{
    return &it->u.data.via.array.ptr[i];
}

void strat_items_close(strat_items *it)
{
    msgpack_unpacked_destroy(&it->u);
}

/* ---- the items as an imap input ------------------------------------------ */

void strat_input_init(strat_input *in, const strat_workload *w, const strat_items *items)
{
    *in = (strat_input){.w = w, .items = items};
    msgpack_sbuffer_init(&in->args);
}

int strat_input_next(void *ctx, msgpack_packer *pk, char *err, size_t errlen)
{
    strat_input *in = ctx;
    if (in->next == in->w->n)
        return 0; /* the end */
    const msgpack_object *item = strat_item(in->items, in->next++);
    if (in->w->nstages == 1) {
        msgpack_pack_object(pk, *item); /* imap calls stage(item) */
        return 1;
    }
    /* The chain's argument array is one whole packed value: the packer
     * appends its bytes as they are. */
    strat_chain_args(&in->args, in->w, 0, item);
    if (pk->callback(pk->data, in->args.data, in->args.size) != 0) {
        snprintf(err, errlen, "out of memory packing item %zu", in->next - 1);
        return -1;
    }
    return 1;
}

void strat_input_destroy(strat_input *in)
{
    msgpack_sbuffer_destroy(&in->args);
}

/* ---- the pool's life, timed the same way for every strategy ------------ */

pool *strat_pool_create(const strat_workload *w, strat_outcome *out, strat_items *items,
                        strat_tasks tasks)
{
    if (items && strat_items_open(items, w) != 0) {
        snprintf(out->first_error, sizeof out->first_error,
                 "the items are not a packed array of %zu values", w->n);
        return NULL;
    }
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = w->workers;
    opt.task_timeout = w->task_timeout;
    opt.transport = w->transport;
    opt.maxtasksperchild = w->maxtasksperchild;
    opt.initializer = w->initializer;
    opt.initargs = w->initargs;
    opt.initargs_len = w->initargs_len;
    opt.trace = w->trace;
    out->tasks_total = tasks == STRAT_TASK_PER_ITEM ? w->n : w->n * (size_t)w->nstages;
    double t = pool_now();
    pool *p = pool_create(&opt);
    out->t0 = pool_now();
    out->startup_s = out->t0 - t;
    if (p != NULL)
        snprintf(out->transport, sizeof out->transport, "%s", pool_transport_name(p));
    if (p == NULL) {
        snprintf(out->first_error, sizeof out->first_error, "%s", pool_last_error());
        if (items)
            strat_items_close(items);
    }
    return p;
}

void strat_stop_clock(strat_outcome *out)
{
    out->wall_s = pool_now() - out->t0;
}

/* Copies the engine's stats and trace into out: what ran, and which
 * processes ran it. */
static void strat_pool_report(pool *p, strat_outcome *out)
{
    pool_get_stats(p, &out->stats);
    out->tasks_run = out->stats.tasks_done + out->stats.tasks_failed;
    out->errors_unobserved = out->stats.errors_unobserved;
    size_t n = pool_trace_count(p);
    free(out->trace);
    out->trace = malloc((n ? n : 1) * sizeof *out->trace);
    out->ntrace = out->trace ? pool_trace_copy(p, 0, out->trace, n) : 0;
    for (size_t i = 0; i < out->ntrace; i++) {
        const pool_trace_rec *r = &out->trace[i];
        if (out->answer_s > 0 && r->t_start > out->t0 + out->answer_s)
            out->tasks_after_stop++;
        if (r->pid == 0)
            continue;
        int k = 0;
        while (k < out->nworker_pids && out->worker_pids[k] != r->pid)
            k++;
        if (k == out->nworker_pids && k < (int)(sizeof out->worker_pids / sizeof(int)))
            out->worker_pids[out->nworker_pids++] = r->pid;
    }
}

void strat_pool_finish(pool *p, strat_outcome *out, strat_items *items, bool answer)
{
    if (out->wall_s == 0)
        strat_stop_clock(out);
    out->stopped_early = answer;
    if (answer)
        pool_terminate(p);
    else
        pool_close(p); /* again harmless, after a strategy's own close */
    pool_join(p);
    if (out->answer_s > 0 && out->stopped_s == 0)
        out->stopped_s = pool_now() - out->t0;
    strat_pool_report(p, out);
    pool_destroy(p);
    if (items)
        strat_items_close(items);
}

int strat_give_up(pool *p, strat_outcome *out, strat_items *items, const char *why)
{
    snprintf(out->first_error, sizeof out->first_error, "%s", why);
    strat_pool_finish(p, out, items, false);
    return -1;
}

/* ---- handles ------------------------------------------------------------- */

pool_result **strat_handles_new(size_t n)
{
    return calloc(n ? n : 1, sizeof(pool_result *));
}

void strat_handles_free(pool_result **h, size_t n)
{
    for (size_t i = 0; h && i < n; i++)
        pool_result_free(h[i]);
    free(h);
}

bool strat_collect_in_order(const strat_workload *w, strat_outcome *out, pool_result **h,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i] == NULL)
            continue;
        const msgpack_object *v;
        int st = pool_result_get(h[i], -1, &v);
        if (strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_result_error(h[i]), i))
            return true;
    }
    return false;
}

/* ---- final results, the stop rule, callbacks ----------------------------- */

bool strat_final(const strat_workload *w, strat_outcome *out, int status,
                 const msgpack_object *value, const char *error, size_t item)
{
    bool answer = false;
    pthread_mutex_lock(&strat_lock);
    if (w->observe)
        w->observe(w->observe_ctx, status, status == POOL_OK ? value : NULL, error, item);
    out->results++;
    if (status != POOL_OK) {
        /* An item's error from the engine (a worker died, a time limit, an
         * interruption) names the item as Lua numbers it, from 1: the
         * engine's message numbers within a job, from 0. A task's own
         * error (POOL_ETASK) and an error of the whole call (item n) are
         * as they came. */
        if (out->errors++ == 0 && item < w->n && status != POOL_ETASK)
            snprintf(out->first_error, sizeof out->first_error, "item %zu: %s", item + 1,
                     error ? error : pool_status_name(status));
        else if (out->errors == 1)
            snprintf(out->first_error, sizeof out->first_error, "%s",
                     error ? error : pool_status_name(status));
    } else if (w->stop && out->answer_s == 0 && w->stop(w->stop_ctx, value, item)) {
        out->answer_s = pool_now() - out->t0;
        answer = true;
    }
    pthread_mutex_unlock(&strat_lock);
    return answer;
}

void strat_refused(const strat_workload *w, strat_outcome *out, size_t item)
{
    strat_final(w, out, POOL_EINVAL, NULL, pool_last_error(), item);
}

bool strat_drain_iter(const strat_workload *w, strat_outcome *out, pool_iter *it)
{
    if (it == NULL) { /* refused: Python's call would raise once, there */
        strat_final(w, out, pool_last_status(), NULL, pool_last_error(), w->n);
        return false;
    }
    for (;;) {
        const msgpack_object *v;
        size_t index;
        int st = pool_iter_next(it, -1, &v, &index);
        if (st == POOL_EEND)
            return false;
        if (index == SIZE_MAX) { /* the iteration's error, not an item's */
            strat_final(w, out, st, NULL, pool_iter_error(it), w->n);
            return false;
        }
        /* index is the item's input position (imap_unordered: any order). */
        if (strat_final(w, out, st, v, st == POOL_OK ? NULL : pool_iter_error(it), index))
            return true;
    }
}

void strat_callback_enter(strat_outcome *out)
{
    int now = atomic_fetch_add(&strat_cb_running, 1) + 1;
    pthread_mutex_lock(&strat_lock);
    out->callbacks++;
    out->callback_pid = getpid();
    if (now > out->callbacks_max_overlap)
        out->callbacks_max_overlap = now;
    pthread_mutex_unlock(&strat_lock);
}

void strat_callback_leave(strat_outcome *out)
{
    (void)out;
    atomic_fetch_sub(&strat_cb_running, 1);
}

void strat_fact_set(strat_outcome *out, const char *name, double value)
{
    int i = 0;
    while (i < out->nfacts && strcmp(out->facts[i].name, name) != 0)
        i++;
    if (i == STRAT_MAX_FACTS)
        return;
    if (i == out->nfacts)
        out->nfacts++;
    snprintf(out->facts[i].name, sizeof out->facts[i].name, "%s", name);
    out->facts[i].value = value;
}

void strat_outcome_free(strat_outcome *out)
{
    free(out->trace);
    out->trace = NULL;
    out->ntrace = 0;
}

/* ---- interruption ---------------------------------------------------------- */

static volatile sig_atomic_t strat_intr_why;
static volatile sig_atomic_t strat_child_pid;

void strat_interrupt(int why)
{
    if (strat_intr_why == 0)
        strat_intr_why = why ? why : -1;
    pool_interrupt_all();
    pid_t c = (pid_t)strat_child_pid;
    if (c > 0)
        kill(c, SIGKILL);
}

int strat_interrupted(void)
{
    return strat_intr_why;
}

void strat_interrupt_reset(void)
{
    strat_intr_why = 0;
}

void strat_set_child(int pid)
{
    strat_child_pid = pid;
}

/* ---- the catalogue -------------------------------------------------------- */

extern const strategy strat_apply_sync, strat_async_get_loop, strat_async_get_after,
    strat_callback_chain, strat_merged, strat_map_async, strat_imap, strat_imap_unordered,
    strat_producer_consumer, strat_executor_submit, strat_executor_map, strat_process_per_task,
    strat_lifecycle;

const strategy *const strat_all[] = {
    &strat_apply_sync,      &strat_async_get_loop,  &strat_async_get_after,
    &strat_callback_chain,  &strat_merged,          &strat_map_async,
    &strat_imap,            &strat_imap_unordered,  &strat_producer_consumer,
    &strat_executor_submit, &strat_executor_map,    &strat_process_per_task,
    &strat_lifecycle,       NULL,
};

const strategy *strat_find(const char *name)
{
    for (int i = 0; strat_all[i]; i++)
        if (strcmp(strat_all[i]->name, name) == 0)
            return strat_all[i];
    return NULL;
}
