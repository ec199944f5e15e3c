/*
 * strat_producer_consumer.c: a producer thread submits, the main thread
 * consumes the results as they come.
 *
 * Document 001, its second early-stop example ("multithreading plus
 * multiprocessing"), for when the submit loop itself is long:
 *
 *     def pool_th():                       # the producer thread
 *         for i in range(50000000):
 *             try:
 *                 result.put(pool.apply_async(test, args=(i,)))
 *             except:
 *                 break                    # the pool was terminated
 *     def result_th():                     # the consumer
 *         while 1:
 *             if result.get().get():
 *                 pool.terminate()
 *                 break
 *
 * What it teaches (P4, P5): submitting has a cost per task, and with
 * "submit everything, then check" the answer cannot be seen before the
 * whole submit loop is over. A producer thread overlaps submitting with
 * checking, so the consumer sees the answer as soon as it is computed.
 *
 * One change from the document: its queue holds the handles and the
 * consumer get()s them in submission order, so a slow early task hides a
 * quick answer behind it. Here apply_async's callback (or error callback)
 * puts each RESULT on the queue as it completes: the consumer sees them in
 * completion order, and no handle piles up. The callbacks run in the parent
 * on the pool's result-handler thread, one at a time (P2); the value they
 * are handed lives only during the callback, so they queue a packed copy.
 *
 * Stopping: the consumer tells the producer to stop (an atomic flag),
 * terminates the pool (the producer's next submit would be refused anyway,
 * like the document's `except: break`), then joins the producer.
 *
 * Several stages: each item's whole pipeline is one strat_chain task (every
 * stage in the worker), so items stream end to end.
 *
 * Threads: the producer starts only after the pool exists (pool_create()
 * forks, and refuses a caller that already has threads) and is joined
 * before the pool is finished.
 */
#include "strategy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One final result on its way from a callback to the consumer. */
struct spc_entry {
    struct spc_entry *next;
    size_t item;
    int status;
    msgpack_sbuffer value; /* the packed value, when status is POOL_OK */
    char *error;           /* the message, otherwise */
};

struct spc_job;

struct spc_ctx {
    /* Set before the producer starts, read-only after. */
    const strat_workload *w;
    strat_outcome *out;
    pool *p;
    strat_items items;
    struct spc_job *jobs; /* one per item: the callbacks' udata */

    atomic_bool stop; /* set by the consumer at the answer: submit no more */

    /* Guarded by lock. cond: an entry was queued, or the producer is done. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct spc_entry *head, *tail;
    size_t expected;    /* entries that will be queued: one per job, or refusal */
    bool producer_done; /* expected is final */
};

/* What the callbacks of item i's job know. `reported` is written by the
 * result callback and read by the done callback, which the engine always
 * runs after it, on the same job. */
struct spc_job {
    struct spc_ctx *ctx;
    size_t item;
    bool reported;
};

static void spc_panic(const char *why)
{
    /* A result that cannot be queued would leave the consumer waiting for
     * it forever: better to stop loudly. */
    fprintf(stderr, "panic: producer_consumer: %s\n", why);
    abort();
}

/* Queues one entry; value (NULL for nil) is copied. Any thread. */
static void spc_push(struct spc_ctx *c, size_t item, int status, const msgpack_object *value,
                     const char *error)
{
    struct spc_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        spc_panic("out of memory queueing a result");
    e->item = item;
    e->status = status;
    msgpack_sbuffer_init(&e->value);
    if (status == POOL_OK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &e->value, msgpack_sbuffer_write);
        if (value)
            msgpack_pack_object(&pk, *value);
        else
            msgpack_pack_nil(&pk);
    } else if ((e->error = strdup(error ? error : pool_status_name(status))) == NULL) {
        spc_panic("out of memory queueing an error");
    }
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = e;
    else
        c->head = e;
    c->tail = e;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void spc_entry_free(struct spc_entry *e)
{
    msgpack_sbuffer_destroy(&e->value);
    free(e->error);
    free(e);
}

/* ---- the callbacks: in the parent, on the result-handler thread ---------- */

static int spc_on_value(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct spc_job *j = udata;
    strat_callback_enter(j->ctx->out);
    spc_push(j->ctx, j->item, POOL_OK, pool_result_value(r), NULL);
    j->reported = true;
    strat_callback_leave(j->ctx->out);
    return 0;
}

static int spc_on_error(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct spc_job *j = udata;
    strat_callback_enter(j->ctx->out);
    /* pool_result_status, not get(): get() would wait for this very
     * callback to end. POOL_ETASK, or POOL_EWORKER for a dead worker. */
    spc_push(j->ctx, j->item, pool_result_status(r), NULL, pool_result_error(r));
    j->reported = true;
    strat_callback_leave(j->ctx->out);
    return 0;
}

/*
 * The safety net. A job the pool aborts (terminated, or the pool broke:
 * an initializer failed) runs neither callback, only its done callbacks. Its
 * error is queued here, or the consumer would wait for it forever. Runs on
 * the result handler, on the thread that aborted the job, or at once on the
 * producer's if the job was already done when it was added.
 */
static int spc_on_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct spc_job *j = udata;
    if (!j->reported) /* aborted: POOL_ETERMINATED, POOL_EBROKEN... */
        spc_push(j->ctx, j->item, pool_result_status(r), NULL, pool_result_error(r));
    return 0;
}

/* ---- the producer thread -------------------------------------------------- */

static void *spc_producer(void *arg)
{
    struct spc_ctx *c = arg;
    const strat_workload *w = c->w;
    bool chain = w->nstages > 1;
    const char *task = chain ? STRAT_CHAIN_TASK : w->stages[0];
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    for (size_t i = 0; i < w->n && !atomic_load(&c->stop); i++) {
        if (chain)
            strat_chain_args(&args, w, 0, strat_item(&c->items, i));
        else
            strat_args1(&args, strat_item(&c->items, i));
        struct spc_job *j = &c->jobs[i];
        *j = (struct spc_job){.ctx = c, .item = i};
        pool_result *r = pool_apply_async(c->p, task, args.data, args.size, spc_on_value,
                                          spc_on_error, j);
        if (r == NULL) {
            /* Refused: after the answer that is the terminate, and nothing
             * is owed; before it, the pool will refuse everything from now
             * on (closed, broken, unknown task): one error, and stop. */
            if (!atomic_load(&c->stop)) {
                spc_push(c, i, pool_last_status(), NULL, pool_last_error());
                pthread_mutex_lock(&c->lock);
                c->expected++;
                pthread_mutex_unlock(&c->lock);
            }
            break;
        }
        pthread_mutex_lock(&c->lock);
        c->expected++; /* the job will queue exactly one entry */
        pthread_mutex_unlock(&c->lock);
        if (pool_result_add_done_callback(r, spc_on_done, j) != POOL_OK)
            spc_panic("cannot add a done callback");
        pool_result_free(r); /* the callbacks hold what they need */
    }

    pthread_mutex_lock(&c->lock);
    c->producer_done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    msgpack_sbuffer_destroy(&args);
    return NULL;
}

/* ---- the consumer: the main thread ------------------------------------------ */

/* Takes the next entry, waiting for one; NULL when no more will come. */
static struct spc_entry *spc_take(struct spc_ctx *c, size_t *taken)
{
    pthread_mutex_lock(&c->lock);
    while (c->head == NULL && !(c->producer_done && *taken == c->expected))
        pthread_cond_wait(&c->cond, &c->lock);
    struct spc_entry *e = c->head;
    if (e) {
        c->head = e->next;
        if (c->head == NULL)
            c->tail = NULL;
        (*taken)++;
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

/* Records one entry's final result; true at the answer. */
static bool spc_consume(struct spc_ctx *c, struct spc_entry *e)
{
    if (e->status != POOL_OK)
        return strat_final(c->w, c->out, e->status, NULL, e->error, e->item);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool answer;
    if (msgpack_unpack_next(&u, e->value.data, e->value.size, &off) == MSGPACK_UNPACK_SUCCESS)
        answer = strat_final(c->w, c->out, POOL_OK, &u.data, NULL, e->item);
    else
        answer = strat_final(c->w, c->out, POOL_ESYS, NULL, "a queued value was unreadable",
                             e->item);
    msgpack_unpacked_destroy(&u);
    return answer;
}

static int spc_run(const strat_workload *w, strat_outcome *out)
{
    struct spc_ctx c = {.w = w, .out = out};
    pool *p = strat_pool_create(w, out, &c.items);
    if (p == NULL)
        return -1;
    c.p = p;
    if (w->nstages > 1)
        out->tasks_total = w->n; /* one chain task per item */
    atomic_init(&c.stop, false);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    int rc = -1;
    bool answer = false;
    pthread_t producer;
    struct spc_entry *e;
    size_t taken = 0;

    c.jobs = calloc(w->n ? w->n : 1, sizeof *c.jobs);
    int err = c.jobs ? pthread_create(&producer, NULL, spc_producer, &c) : -1;
    if (err != 0) {
        snprintf(out->first_error, sizeof out->first_error,
                 "producer_consumer: cannot start the producer thread (%s)",
                 err > 0 ? strerror(err) : "out of memory");
        strat_pool_finish(p, out, false);
        goto done;
    }

    while (!answer && (e = spc_take(&c, &taken)) != NULL) {
        answer = spc_consume(&c, e);
        spc_entry_free(e);
    }
    out->wall_s = pool_now() - out->t0;

    if (answer) {
        atomic_store(&c.stop, true); /* the producer submits no more */
        pool_terminate(p);           /* and the tasks still out die now */
    }
    pthread_join(producer, NULL);
    out->stopped_early = answer;
    strat_pool_finish(p, out, answer);
    rc = 0;

done:
    /* The pool is gone, so no callback can queue anything more: free what
     * the consumer left unread (everything after the answer). */
    while ((e = c.head) != NULL) {
        c.head = e->next;
        spc_entry_free(e);
    }
    free(c.jobs);
    strat_items_close(&c.items);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
    return rc;
}

const strategy strat_producer_consumer = {
    "producer_consumer",
    "001",
    "a producer thread submits apply_async; callbacks queue results; the main thread checks them",
    spc_run,
};
