/*
 * pool_imap.c: the iterators: imap, imap_unordered, Executor.map and
 * as_completed.
 *
 * imap streams. Where map builds every chunk at once and keeps every result
 * (memory grows with n), imap pulls its input only as fast as results are
 * consumed: at most `window` chunks are out at any time (submitted and not
 * yet consumed), so an input of ten million items runs in the memory of a
 * few chunks (document 002's advice, phenomenon P12). The input is pulled
 * on the consumer's own thread, inside pool_iter_next(), never on a pool
 * thread: an input written in Lua is then never touched by two threads.
 *
 * imap yields in input order, so one slow item holds back everything after
 * it; imap_unordered yields each chunk as it arrives. Both default to
 * chunksize 1: one message per item, which is why they cost more than
 * map_async on trivial tasks (P6). An item whose task failed surfaces as an
 * error at that item, and the iteration can go on past it, as in CPython.
 *
 * Window slots: a chunk in flight occupies one slot, from submission until
 * the consumer has taken its last item. imap puts chunk number s in slot
 * s % window, which is free because at most `window` chunks are out and
 * they are consumed in order; imap_unordered takes any free slot. A
 * chunk's number travels in its messages, so a delivery finds its slot.
 */
#include "pool_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_FREE, SLOT_INFLIGHT, SLOT_ARRIVED };
enum iter_mode { ITER_IMAP, ITER_AS_COMPLETED };

struct ac_entry {
    pool_iter *it;
    size_t index;
};

struct pool_iter {
    pool_job job; /* first: the job table sees a pool_job */

    /* Set at creation, read-only after. */
    pool *pool;
    pthread_t result_thread;
    enum iter_mode mode;
    bool ordered;
    bool star;     /* items are argument arrays: task(*item) */
    long chunksize;
    long window;

    /* The consumer's alone (the thread calling pool_iter_next). */
    pool_input_fn next;
    void *ctx;
    const char *items;     /* array input: the packed items and their offsets */
    size_t items_len, nitems, pos;
    size_t *starts;
    msgpack_sbuffer inbuf; /* the items of the chunk being built */
    size_t *chunk_starts;
    uint32_t items_submitted;
    pool_chunk *cur;       /* the chunk being yielded */
    long cur_slot;
    uint32_t cur_pos;
    char *err;
    char *input_err; /* the input failed: reported at its position, then the end */
    bool ended;

    /* Atomic: the job table takes references under the pool lock, and must
     * not take this object's lock there (the lock order). */
    atomic_int refs;

    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool registered, abandoned, aborted, input_done;
    int abort_status;
    char *abort_msg;
    uint64_t submitted, consumed; /* chunks */
    long inflight;                /* slots SLOT_INFLIGHT */
    enum slot_state *state;
    uint64_t *seq;
    uint32_t *counts;
    pool_chunk **ring;
    long *fifo; /* imap_unordered: arrived slots, oldest first */
    long fifo_head, fifo_len;

    /* as_completed */
    struct ac_entry *ac;
    size_t *done_q;
    size_t n_futures, dq_len, dq_head;
};

/* ---- life and death -------------------------------------------------------- */

static pool_iter *iter_new(pool *p, enum iter_mode mode, long window)
{
    pool_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return NULL;
    it->mode = mode;
    it->pool = p;
    it->result_thread = p ? pool_result_thread_id(p) : pthread_self();
    it->window = window > 0 ? window : 1;
    it->cur_slot = -1;
    atomic_init(&it->refs, 1);
    pthread_mutex_init(&it->lock, NULL);
    pool_cond_init(&it->cond);
    msgpack_sbuffer_init(&it->inbuf);
    if (mode == ITER_IMAP) {
        size_t w = (size_t)it->window;
        it->state = calloc(w, sizeof *it->state);
        it->seq = calloc(w, sizeof *it->seq);
        it->counts = calloc(w, sizeof *it->counts);
        it->ring = calloc(w, sizeof *it->ring);
        it->fifo = calloc(w, sizeof *it->fifo);
        if (!it->state || !it->seq || !it->counts || !it->ring || !it->fifo) {
            pool_iter_unref(it);
            return NULL;
        }
    }
    return it;
}

void pool_iter_ref(pool_iter *it)
{
    atomic_fetch_add(&it->refs, 1);
}

void pool_iter_unref(pool_iter *it)
{
    if (atomic_fetch_sub(&it->refs, 1) > 1)
        return;
    if (it->ring)
        for (long i = 0; i < it->window; i++)
            pool_chunk_free(it->ring[i]);
    pool_chunk_free(it->cur);
    free(it->state);
    free(it->seq);
    free(it->counts);
    free(it->ring);
    free(it->fifo);
    free(it->starts);
    free(it->chunk_starts);
    free(it->err);
    free(it->input_err);
    free(it->abort_msg);
    free(it->ac);
    free(it->done_q);
    msgpack_sbuffer_destroy(&it->inbuf);
    pthread_mutex_destroy(&it->lock);
    pthread_cond_destroy(&it->cond);
    free(it);
}

/*
 * Leaves the job table once nothing is in flight and nothing more will be
 * sent. Caller holds it->lock; drops the table's reference itself only
 * after unlocking, so it returns whether the caller must do that.
 */
static bool iter_leave_table(pool_iter *it)
{
    if (!it->registered || it->inflight > 0 || !(it->input_done || it->abandoned))
        return false;
    it->registered = false;
    return pool_unregister(it->pool, it->job.id);
}

void pool_iter_free(pool_iter *it)
{
    if (it == NULL)
        return;
    pthread_mutex_lock(&it->lock);
    it->abandoned = true;
    bool drop = it->mode == ITER_IMAP && iter_leave_table(it);
    pthread_mutex_unlock(&it->lock);
    if (drop)
        pool_iter_unref(it);
    pool_iter_unref(it);
}

/* ---- the result handler's side ----------------------------------------------- */

/* Finds the slot of chunk number s, or -1. Caller holds the lock. */
static long slot_of(pool_iter *it, uint64_t s)
{
    if (it->ordered) {
        long i = (long)(s % (uint64_t)it->window);
        return it->state[i] != SLOT_FREE && it->seq[i] == s ? i : -1;
    }
    for (long i = 0; i < it->window; i++)
        if (it->state[i] != SLOT_FREE && it->seq[i] == s)
            return i;
    return -1;
}

uint32_t pool_iter_chunk_count(pool_iter *it, uint32_t chunk)
{
    pthread_mutex_lock(&it->lock);
    long i = slot_of(it, chunk);
    uint32_t n = i >= 0 ? it->counts[i] : 0;
    pthread_mutex_unlock(&it->lock);
    return n;
}

void pool_iter_deliver(pool_iter *it, pool_chunk *c)
{
    pthread_mutex_lock(&it->lock);
    long i = slot_of(it, c->index);
    if (i < 0 || it->state[i] != SLOT_INFLIGHT) {
        pthread_mutex_unlock(&it->lock); /* a chunk run twice: keep the first */
        pool_chunk_free(c);
        return;
    }
    it->inflight--;
    if (it->abandoned || it->aborted) {
        it->state[i] = SLOT_FREE;
        pool_chunk_free(c);
    } else {
        it->state[i] = SLOT_ARRIVED;
        it->ring[i] = c;
        if (!it->ordered)
            it->fifo[(it->fifo_head + it->fifo_len++) % it->window] = i;
        pthread_cond_broadcast(&it->cond);
    }
    bool drop = iter_leave_table(it);
    pthread_mutex_unlock(&it->lock);
    if (drop)
        pool_iter_unref(it);
}

void pool_iter_abort(pool_iter *it, int status, const char *msg)
{
    pthread_mutex_lock(&it->lock);
    if (!it->aborted) {
        it->aborted = true;
        it->abort_status = status;
        it->abort_msg = strdup(msg);
    }
    it->registered = false; /* whoever aborts has emptied the table */
    pthread_cond_broadcast(&it->cond);
    pthread_mutex_unlock(&it->lock);
}

/* ---- the consumer's side: feeding ---------------------------------------------- */

/* Pulls the next input item into it->inbuf. 1: got one, 0: end, <0: error. */
static int pull_item(pool_iter *it)
{
    if (it->items) {
        if (it->pos == it->nitems)
            return 0;
        size_t s = it->starts[it->pos];
        size_t e = it->pos + 1 < it->nitems ? it->starts[it->pos + 1] : it->items_len;
        msgpack_sbuffer_write(&it->inbuf, it->items + s, e - s);
        it->pos++;
        return 1;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &it->inbuf, msgpack_sbuffer_write);
    size_t before = it->inbuf.size;
    char err[512] = "";
    int rc = it->next(it->ctx, &pk, err, sizeof err);
    if (rc < 0)
        return pool_seterr(POOL_EINVAL, "imap input failed: %s", err[0] ? err : "(no message)");
    if (rc == 0)
        return 0;
    char what[64];
    snprintf(what, sizeof what, "imap input item %u", it->items_submitted);
    if (pool_msg_check_value(it->inbuf.data + before, it->inbuf.size - before, it->star, what) !=
        POOL_OK)
        return POOL_EINVAL;
    return 1;
}

/* Submits chunks until the window is full or the input ends. */
static int top_up(pool_iter *it)
{
    for (;;) {
        pthread_mutex_lock(&it->lock);
        bool room = !it->input_done && !it->aborted &&
                    it->submitted - it->consumed < (uint64_t)it->window;
        pthread_mutex_unlock(&it->lock);
        if (!room)
            return POOL_OK;
        msgpack_sbuffer_clear(&it->inbuf);
        size_t k = 0;
        int rc = 1;
        while (k < (size_t)it->chunksize) {
            size_t off = it->inbuf.size;
            rc = pull_item(it);
            if (rc <= 0)
                break;
            it->chunk_starts[k++] = off;
        }
        if (k == 0 || rc < 0) {
            pthread_mutex_lock(&it->lock);
            it->input_done = true; /* an input error also ends the input */
            bool drop = iter_leave_table(it);
            pthread_mutex_unlock(&it->lock);
            if (drop)
                pool_iter_unref(it);
            /* As in CPython, the error surfaces where it happened: after
             * the items before it (take_chunk reports it). */
            if (rc < 0 && it->input_err == NULL)
                it->input_err = strdup(pool_last_error());
            if (k == 0)
                return POOL_OK;
        }
        pool_taskmsg *m;
        pthread_mutex_lock(&it->lock);
        uint64_t s = it->submitted;
        long i = -1;
        if (it->ordered)
            i = (long)(s % (uint64_t)it->window);
        else
            for (long j = 0; j < it->window && i < 0; j++)
                if (it->state[j] == SLOT_FREE)
                    i = j;
        if (i < 0 || it->state[i] != SLOT_FREE)
            pool_panic("top_up: no free window slot (submitted %llu, consumed %llu)",
                       (unsigned long long)it->submitted, (unsigned long long)it->consumed);
        m = pool_taskmsg_new(it->job.id, (uint32_t)s, it->items_submitted, it->job.task,
                             it->inbuf.data, it->chunk_starts, k, it->inbuf.size, !it->star);
        if (m == NULL) {
            pthread_mutex_unlock(&it->lock);
            return pool_seterr(POOL_ESYS, "imap: out of memory");
        }
        if (!it->registered) {
            int r = pool_register(it->pool, &it->job, true);
            if (r != POOL_OK) {
                it->input_done = true;
                pthread_mutex_unlock(&it->lock);
                free(m);
                return r;
            }
            it->registered = true;
            pool_iter_ref(it); /* the job table's reference */
        }
        it->state[i] = SLOT_INFLIGHT;
        it->seq[i] = s;
        it->counts[i] = (uint32_t)k;
        it->submitted++;
        it->inflight++;
        it->items_submitted += (uint32_t)k;
        pthread_mutex_unlock(&it->lock);
        pool_enqueue(it->pool, m, m, 1);
        if (rc <= 0)
            return POOL_OK; /* the input ended inside this chunk */
    }
}

/* ---- the consumer's side: taking ------------------------------------------------ */

/* Frees the chunk whose items have all been yielded. */
static void release_current(pool_iter *it)
{
    pthread_mutex_lock(&it->lock);
    it->state[it->cur_slot] = SLOT_FREE;
    it->consumed++;
    pthread_mutex_unlock(&it->lock);
    pool_chunk_free(it->cur);
    it->cur = NULL;
    it->cur_slot = -1;
}

/* Waits for the next chunk to yield. Caller holds the lock. */
static int take_chunk(pool_iter *it, double deadline)
{
    for (;;) {
        long i = -1;
        if (it->ordered) {
            long h = (long)(it->consumed % (uint64_t)it->window);
            if (it->state[h] == SLOT_ARRIVED && it->seq[h] == it->consumed)
                i = h;
        } else if (it->fifo_len > 0) {
            i = it->fifo[it->fifo_head];
            it->fifo_head = (it->fifo_head + 1) % it->window;
            it->fifo_len--;
        }
        if (i >= 0) {
            it->cur = it->ring[i];
            it->ring[i] = NULL;
            it->cur_slot = i;
            it->cur_pos = 0;
            return POOL_OK;
        }
        if (it->aborted) {
            it->ended = true;
            return pool_seterr(it->abort_status, "%s", it->abort_msg);
        }
        if (it->input_done && it->submitted == it->consumed) {
            if (it->input_err) {
                free(it->err);
                it->err = it->input_err; /* reported once; the end comes next */
                it->input_err = NULL;
                return pool_seterr(POOL_EINVAL, "%s", it->err);
            }
            it->ended = true;
            return pool_seterr(POOL_EEND, "no more items");
        }
        if (pthread_equal(pthread_self(), it->result_thread))
            return pool_seterr(POOL_ESTATE, "iterating inside a callback would wait forever: "
                               "callbacks run on the thread that delivers results");
        if (pool_cond_wait_until(&it->cond, &it->lock, deadline) == ETIMEDOUT)
            return pool_seterr(POOL_ETIMEDOUT, "no item ready in time (the work goes on)");
    }
}

static int ac_next(pool_iter *it, double timeout, size_t *index);

int pool_iter_next(pool_iter *it, double timeout, const msgpack_object **value, size_t *index)
{
    if (value)
        *value = NULL;
    if (it->mode == ITER_AS_COMPLETED)
        return ac_next(it, timeout, index);
    if (index)
        *index = SIZE_MAX;
    if (it->ended)
        return pool_seterr(POOL_EEND, "no more items");
    if (it->cur && it->cur_pos >= it->cur->count)
        release_current(it);
    int rc = top_up(it);
    if (rc != POOL_OK)
        return rc;
    if (it->cur == NULL) {
        pthread_mutex_lock(&it->lock);
        rc = take_chunk(it, pool_deadline(timeout));
        pthread_mutex_unlock(&it->lock);
        if (rc != POOL_OK) {
            if (index)
                *index = SIZE_MAX; /* not one item's error: the iteration's */
            return rc;
        }
    }
    uint32_t k = it->cur_pos++;
    const msgpack_object *v;
    const char *msg;
    rc = pool_chunk_item(it->cur, k, &v, &msg);
    if (index)
        *index = it->cur->first + k;
    if (rc != POOL_OK) {
        free(it->err);
        it->err = strdup(msg);
        return pool_seterr(rc, "%s", msg);
    }
    if (value)
        *value = v;
    return POOL_OK;
}

const char *pool_iter_error(pool_iter *it)
{
    return it->err ? it->err : pool_last_error();
}

/* ---- constructors ---------------------------------------------------------------- */

static pool_iter *imap_new(pool *p, const char *task, long chunksize, bool ordered, long window)
{
    int index = pool_check_submit(p, task);
    if (index < 0)
        return NULL;
    if (chunksize < 0) {
        pool_seterr(POOL_EINVAL, "imap: chunksize must be 1 or more, or 0 for 1 (got %ld)",
                    chunksize);
        return NULL;
    }
    pool_iter *it = iter_new(p, ITER_IMAP, window);
    if (it == NULL) {
        pool_seterr(POOL_ESYS, "imap: out of memory");
        return NULL;
    }
    it->ordered = ordered;
    it->chunksize = chunksize > 0 ? chunksize : 1;
    it->chunk_starts = malloc((size_t)it->chunksize * sizeof *it->chunk_starts);
    if (it->chunk_starts == NULL) {
        pool_iter_unref(it);
        pool_seterr(POOL_ESYS, "imap: out of memory");
        return NULL;
    }
    it->job = (pool_job){.kind = POOL_JOB_ITER, .task = (unsigned)index, .t_submit = pool_now()};
    it->job.id = pool_new_job(p);
    return it;
}

/* Fills the window now, so work starts before the first next(). */
static pool_iter *imap_start(pool_iter *it)
{
    if (top_up(it) != POOL_OK && !it->registered) {
        pool_iter_free(it);
        return NULL;
    }
    return it;
}

pool_iter *pool_imap(pool *p, const char *task, pool_input_fn next, void *ctx, long chunksize)
{
    pool_iter *it = imap_new(p, task, chunksize, true, pool_imap_window(p));
    if (it == NULL)
        return NULL;
    it->next = next;
    it->ctx = ctx;
    return imap_start(it);
}

pool_iter *pool_imap_star(pool *p, const char *task, pool_input_fn next, void *ctx,
                          long chunksize, bool ordered)
{
    pool_iter *it = imap_new(p, task, chunksize, ordered, pool_imap_window(p));
    if (it == NULL)
        return NULL;
    it->next = next;
    it->ctx = ctx;
    it->star = true;
    return imap_start(it);
}

pool_iter *pool_imap_unordered(pool *p, const char *task, pool_input_fn next, void *ctx,
                               long chunksize)
{
    pool_iter *it = imap_new(p, task, chunksize, false, pool_imap_window(p));
    if (it == NULL)
        return NULL;
    it->next = next;
    it->ctx = ctx;
    return imap_start(it);
}

/* An iterator over a packed array: window < 0 means "every chunk at once". */
static pool_iter *array_iter(pool *p, const char *task, const void *items, size_t items_len,
                             long chunksize, bool ordered, long window, bool star)
{
    if (pool_check_submit(p, task) < 0)
        return NULL;
    size_t *starts, n;
    if (pool_msg_split_array(items, items_len, &starts, &n, star) != POOL_OK)
        return NULL;
    long cs = chunksize > 0 ? chunksize : 1;
    if (window < 0)
        window = (long)((n + (size_t)cs - 1) / (size_t)cs);
    pool_iter *it = imap_new(p, task, chunksize, ordered, window);
    if (it == NULL) {
        free(starts);
        return NULL;
    }
    it->items = items;
    it->items_len = items_len;
    it->starts = starts;
    it->nitems = n;
    it->star = star;
    pool_iter *r = imap_start(it);
    /* Executor.map submits everything now, so the caller's buffer is no
     * longer needed; imap_array reads it lazily and needs it kept. */
    return r;
}

pool_iter *pool_imap_array(pool *p, const char *task, const void *items, size_t items_len,
                           long chunksize, bool ordered)
{
    return array_iter(p, task, items, items_len, chunksize, ordered, pool_imap_window(p), false);
}

pool_iter *pool_executor_map(pool *p, const char *task, const void *items, size_t items_len,
                             long chunksize)
{
    return array_iter(p, task, items, items_len, chunksize, true, -1, false);
}

pool_iter *pool_executor_starmap(pool *p, const char *task, const void *items,
                                 size_t items_len, long chunksize)
{
    return array_iter(p, task, items, items_len, chunksize, true, -1, true);
}

/* ---- as_completed ------------------------------------------------------------------ */

static int ac_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)r;
    (void)err;
    (void)errlen;
    struct ac_entry *e = udata;
    pool_iter *it = e->it;
    pthread_mutex_lock(&it->lock);
    it->done_q[it->dq_len++] = e->index;
    pthread_cond_broadcast(&it->cond);
    pthread_mutex_unlock(&it->lock);
    pool_iter_unref(it); /* the reference this callback held */
    return 0;
}

pool_iter *pool_as_completed(pool_result *const *futures, size_t n)
{
    pool_iter *it = iter_new(NULL, ITER_AS_COMPLETED, 1);
    if (it == NULL) {
        pool_seterr(POOL_ESYS, "as_completed: out of memory");
        return NULL;
    }
    it->ac = calloc(n ? n : 1, sizeof *it->ac);
    it->done_q = calloc(n ? n : 1, sizeof *it->done_q);
    if (it->ac == NULL || it->done_q == NULL) {
        pool_iter_unref(it);
        pool_seterr(POOL_ESYS, "as_completed: out of memory");
        return NULL;
    }
    it->n_futures = n;
    for (size_t i = 0; i < n; i++) {
        it->ac[i] = (struct ac_entry){it, i};
        pool_iter_ref(it);
        if (pool_result_add_waiter(futures[i], ac_done, &it->ac[i]) != POOL_OK)
            pool_panic("as_completed: cannot watch future %zu", i);
    }
    return it;
}

static int ac_next(pool_iter *it, double timeout, size_t *index)
{
    double deadline = pool_deadline(timeout);
    pthread_mutex_lock(&it->lock);
    int rc = POOL_OK;
    while (it->dq_head == it->dq_len) {
        if (it->dq_head == it->n_futures) {
            rc = pool_seterr(POOL_EEND, "every future has been yielded");
            break;
        }
        if (pool_cond_wait_until(&it->cond, &it->lock, deadline) == ETIMEDOUT &&
            it->dq_head == it->dq_len) {
            rc = pool_seterr(POOL_ETIMEDOUT, "%zu of %zu futures unfinished after %g s",
                             it->n_futures - it->dq_len, it->n_futures, timeout);
            break;
        }
    }
    if (rc == POOL_OK && index)
        *index = it->done_q[it->dq_head];
    if (rc == POOL_OK)
        it->dq_head++;
    pthread_mutex_unlock(&it->lock);
    return rc;
}
