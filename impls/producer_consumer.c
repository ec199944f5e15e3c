/*
 * producer_consumer.c: a producer thread submits, the main thread consumes
 * the results as they come (document 001's second early stop,
 * "multithreading plus multiprocessing", for a long submit loop).
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
 * Teaches (P4, P5): overlapping submitting with checking shows the answer
 * as soon as it is computed, not after the whole submit loop. One change
 * from the document: apply_async's callbacks put each RESULT on the queue
 * as it completes (not the handle, in submission order), so a slow early
 * task hides nothing. Several stages run as one chain task per item. The
 * story: docs/labs/07-early_stop.md.
 */
#include "strategy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One final result on its way from a callback to the consumer. */
struct prodcons_result {
    struct prodcons_result *next;
    size_t item;
    int status;
    msgpack_sbuffer value; /* the packed value, when status is POOL_OK */
    char *error;           /* the message, otherwise */
};

struct prodcons_job;

struct prodcons_state {
    /* Set before the producer starts, read-only after. */
    const strat_workload *w;
    strat_outcome *out;
    pool *p;
    strat_items items;
    struct prodcons_job *jobs; /* one per item: the callbacks' udata */

    atomic_bool stop; /* set by the consumer at the answer: submit no more */

    /* Guarded by lock. cond: an entry was queued, or the producer is done. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct prodcons_result *head, *tail;
    size_t expected;    /* entries that will be queued: one per job, or refusal */
    bool producer_done; /* expected is final */
};

/* What the callbacks of item i's job know. `reported` is written by the
 * result callback and read by the done callback, which the engine always
 * runs after it, on the same job. */
struct prodcons_job {
    struct prodcons_state *state;
    size_t item;
    bool reported;
};

static void prodcons_panic(const char *why)
{
    /* A result that cannot be queued would leave the consumer waiting for
     * it forever: better to stop loudly. */
    fprintf(stderr, "panic: producer_consumer: %s\n", why);
    abort();
}

/* Queues one entry. Any thread. value (NULL for nil) is copied: a callback's
 * value lives only during the callback. */
static void prodcons_push(struct prodcons_state *c, size_t item, int status,
                          const msgpack_object *value, const char *error)
{
    struct prodcons_result *e = calloc(1, sizeof *e);
    if (e == NULL)
        prodcons_panic("out of memory queueing a result");
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
        prodcons_panic("out of memory queueing an error");
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

static void prodcons_result_free(struct prodcons_result *e)
{
    msgpack_sbuffer_destroy(&e->value);
    free(e->error);
    free(e);
}

/* ---- the callbacks: in the parent, on the result-handler thread ---------- */

static int prodcons_on_value(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct prodcons_job *j = udata;
    strat_callback_enter(j->state->out);
    prodcons_push(j->state, j->item, POOL_OK, pool_result_value(r), NULL);
    j->reported = true;
    strat_callback_leave(j->state->out);
    return 0;
}

static int prodcons_on_error(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct prodcons_job *j = udata;
    strat_callback_enter(j->state->out);
    /* pool_result_status, not get(): get() would wait for this very
     * callback to end. POOL_ETASK, or POOL_EWORKER for a dead worker. */
    prodcons_push(j->state, j->item, pool_result_status(r), NULL, pool_result_error(r));
    j->reported = true;
    strat_callback_leave(j->state->out);
    return 0;
}

/*
 * The safety net. A job the pool aborts (terminated, or the pool broke:
 * an initializer failed) runs neither callback, only its done callbacks. Its
 * error is queued here, or the consumer would wait for it forever. Runs on
 * the result handler, on the thread that aborted the job, or at once on the
 * producer's if the job was already done when it was added.
 */
static int prodcons_on_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct prodcons_job *j = udata;
    if (!j->reported) /* aborted: POOL_ETERMINATED, POOL_EBROKEN... */
        prodcons_push(j->state, j->item, pool_result_status(r), NULL, pool_result_error(r));
    return 0;
}

/* ---- the producer thread -------------------------------------------------- */

static void *prodcons_producer(void *arg)
{
    struct prodcons_state *c = arg;
    const strat_workload *w = c->w;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);

    for (size_t i = 0; i < w->n && !atomic_load(&c->stop) && !strat_interrupted(); i++) {
        const char *task = strat_pipeline_args(&args, w, strat_item(&c->items, i));
        struct prodcons_job *j = &c->jobs[i];
        *j = (struct prodcons_job){.state = c, .item = i};
        pool_result *r = pool_apply_async(c->p, task, args.data, args.size, prodcons_on_value,
                                          prodcons_on_error, j);
        if (r == NULL) {
            /* Refused: after the answer that is the terminate, and nothing
             * is owed; before it, the pool will refuse everything from now
             * on (closed, broken, unknown task): one error, and stop. */
            if (!atomic_load(&c->stop)) {
                prodcons_push(c, i, pool_last_status(), NULL, pool_last_error());
                pthread_mutex_lock(&c->lock);
                c->expected++;
                pthread_mutex_unlock(&c->lock);
            }
            break;
        }
        pthread_mutex_lock(&c->lock);
        c->expected++; /* the job will queue exactly one entry */
        pthread_mutex_unlock(&c->lock);
        if (pool_result_add_done_callback(r, prodcons_on_done, j) != POOL_OK)
            prodcons_panic("cannot add a done callback");
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
static struct prodcons_result *prodcons_take(struct prodcons_state *c, size_t *taken)
{
    pthread_mutex_lock(&c->lock);
    while (c->head == NULL && !(c->producer_done && *taken == c->expected))
        pthread_cond_wait(&c->cond, &c->lock);
    struct prodcons_result *e = c->head;
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
static bool prodcons_consume(struct prodcons_state *c, struct prodcons_result *e)
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

/* The consumer's loop, until the answer or the last result. */
static bool prodcons_consume_all(struct prodcons_state *c)
{
    size_t taken = 0;
    struct prodcons_result *e;
    bool answer = false;
    while (!answer && (e = prodcons_take(c, &taken)) != NULL) {
        answer = prodcons_consume(c, e);
        prodcons_result_free(e);
    }
    return answer;
}

/* The producer starts only once the pool exists (pool_create() forks, and
 * refuses a caller that already has threads) and is joined before the pool
 * is finished. */
static int producer_consumer_run(const strat_workload *w, strat_outcome *out)
{
    struct prodcons_state c = {.w = w, .out = out};
    pool *p = strat_pool_create(w, out, &c.items, STRAT_TASK_PER_ITEM);
    if (p == NULL)
        return -1;
    c.p = p;
    atomic_init(&c.stop, false);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    int rc = 0;
    pthread_t producer;
    c.jobs = calloc(w->n ? w->n : 1, sizeof *c.jobs);
    int err = c.jobs ? pthread_create(&producer, NULL, prodcons_producer, &c) : -1;
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof why, "producer_consumer: cannot start the producer thread (%s)",
                 err > 0 ? strerror(err) : "out of memory");
        rc = strat_give_up(p, out, &c.items, why);
    } else {
        bool answer = prodcons_consume_all(&c);
        strat_stop_clock(out);
        if (answer) {
            atomic_store(&c.stop, true); /* the producer submits no more */
            pool_terminate(p);           /* and the tasks still out die now */
        }
        pthread_join(producer, NULL);
        strat_pool_finish(p, out, &c.items, answer);
    }

    /* The pool is gone, so no callback can queue anything more: free what
     * the consumer left unread (everything after the answer). */
    struct prodcons_result *e;
    while ((e = c.head) != NULL) {
        c.head = e->next;
        prodcons_result_free(e);
    }
    free(c.jobs);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
    return rc;
}

const strategy strat_producer_consumer = {
    "producer_consumer",
    "001",
    "a producer thread submits apply_async; callbacks queue results; the main thread checks them",
    producer_consumer_run,
};
