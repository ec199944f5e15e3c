/*
 * pool_imap.c: the iterator behind imap, imap_unordered, Executor.map and
 * the iterator face of as_completed (whose work is in pool_as_completed.c):
 * its window of chunks in flight, how it is fed (pull, send, top up), what
 * the job table and the result handler do to it (deliver, abort), and how
 * the consumer takes its items (pool_iter_next). The public calls that build
 * and start one (pool_imap and its kin, as_completed) are in pool_imap_new.c;
 * the struct both files read is in pool_imap.h.
 *
 * Two shapes, CPython's (phenomena P12 and P25):
 *   - Eager, the default (buffersize 0). CPython's Pool.imap hands its whole
 *     input to the task handler at once (pool.py: IMapIterator, and
 *     _handle_tasks iterates it to the end) and Executor.map submits every
 *     item before it returns. So here: the whole input is read and every
 *     chunk submitted inside the call. One message per task then costs
 *     the same through imap as through map_async with chunksize 1, and the
 *     parent's memory grows with n (an endless input never returns).
 *   - Bounded, buffersize b > 0: CPython 3.14's Executor.map(buffersize=)
 *     and Pool.imap(buffersize=) (gh-64192, PR gh-136871): "limit the number
 *     of submitted tasks whose results have not yet been yielded. If the
 *     buffer is full, iteration over the iterables pauses until a result is
 *     yielded from the buffer" (Doc/library/concurrent.futures.rst). With a
 *     process pool a task is a chunk, so at most b chunks are out at any
 *     time (submitted and not yet consumed): an input of ten million items
 *     runs in the memory of b chunks (document 002's advice).
 *
 * Where the input is read. A lazy input (pool_input_fn) is only ever called
 * on the caller's thread: eagerly inside pool_imap() itself, or, with a
 * buffer, inside pool_iter_next(). CPython iterates a generator on its
 * task-handler thread instead; we do not, because an input written in Lua
 * must never be touched by two threads (a lua_State is not thread-safe), and
 * reading it at the call gives the same observable shape: every item taken
 * before the first result is returned. Eagerly read items are copied into
 * one buffer the iterator owns (read_all, pool_imap_new.c), then served as
 * an array input.
 *
 * imap yields in input order, so one slow item holds back everything after
 * it; imap_unordered yields each chunk as it arrives. Both default to
 * chunksize 1: one message per item, which is why they cost more than
 * map_async with its default chunksize on trivial tasks (P6), and about
 * as much as map_async with chunksize 1. An item whose task failed surfaces as an
 * error at that item, and the iteration can go on past it, as in CPython.
 *
 * Window slots: a chunk in flight occupies one slot, from submission until
 * the consumer has taken its last item. The window is the buffersize, or
 * every chunk when eager. imap puts chunk number s in slot s % window, which
 * is free because at most `window` chunks are out and they are consumed in
 * order; so does an eager imap_unordered (`direct`: a slot per chunk, never
 * reused), so that a delivery finds its slot in O(1); a bounded
 * imap_unordered takes any free slot. A chunk's number travels in its
 * messages, so a delivery finds its slot.
 *
 * The job table and the result handler reach an iterator only through
 * iter_ops (deliver, abort, chunk_count, ref, unref); the constructors
 * (pool_imap_new.c) only through pool_imap.h's three calls.
 *
 * Ended from outside: terminate and an interrupt end the whole iteration
 * with one error (index SIZE_MAX), as CPython's terminate does. A BROKEN
 * pool (its fork server died: pool.h) instead reports EACH remaining item
 * as an error of its own, so that no item is silently dropped: the chunks
 * in flight become failed chunks at once (iter_abort), and the items the
 * input still holds are pulled one at a time, each as the consumer asks
 * for it, and yielded as an error (top_up_broken), until the input ends or
 * the consumer stops.
 */
#include "pool_imap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const pool_job_ops iter_ops;

/* ---- life and death -------------------------------------------------------- */

pool_iter *pool_iter_new(pool *p, enum iter_mode mode, long window)
{
    pool_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return NULL;
    it->job.ops = &iter_ops;
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
        it->firsts = calloc(w, sizeof *it->firsts);
        it->ring = calloc(w, sizeof *it->ring);
        it->fifo = calloc(w, sizeof *it->fifo);
        if (!it->state || !it->seq || !it->counts || !it->firsts || !it->ring || !it->fifo) {
            pool_iter_unref(it);
            return NULL;
        }
    }
    return it;
}

static void iter_ref(pool_iter *it)
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
    free(it->firsts);
    free(it->ring);
    free(it->fifo);
    free(it->starts);
    free(it->owned);
    free(it->err);
    free(it->input_err);
    free(it->abort_msg);
    if (it->ac)
        pool_completion_release(it->ac);
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
    return pool_job_unregister(it->pool, it->job.id);
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
    if (it->direct) {
        long i = (long)(s % (uint64_t)it->window);
        return it->state[i] != SLOT_FREE && it->seq[i] == s ? i : -1;
    }
    for (long i = 0; i < it->window; i++)
        if (it->state[i] != SLOT_FREE && it->seq[i] == s)
            return i;
    return -1;
}

static uint32_t iter_chunk_count(pool_iter *it, uint32_t chunk)
{
    pthread_mutex_lock(&it->lock);
    long i = slot_of(it, chunk);
    uint32_t n = i >= 0 ? it->counts[i] : 0;
    pthread_mutex_unlock(&it->lock);
    return n;
}

static void iter_deliver(pool_iter *it, pool_chunk *c)
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

/* A chunk of `count` items, number s from item `first`, that failed whole
 * without running (a broken pool). */
static pool_chunk *failed_chunk(uint64_t s, uint32_t first, uint32_t count, int status,
                                const char *msg)
{
    pool_chunk *c = calloc(1, sizeof *c);
    if (c == NULL || (c->errmsg = strdup(msg)) == NULL)
        pool_panic("imap: out of memory failing a chunk");
    c->index = (uint32_t)s;
    c->first = first;
    c->count = count;
    c->status = status;
    c->trace_first = SIZE_MAX;
    return c;
}

/* Puts a failed chunk in slot i as arrived (caller holds the lock). */
static void arrive_failed(pool_iter *it, long i)
{
    it->ring[i] = failed_chunk(it->seq[i], it->firsts[i], it->counts[i], it->abort_status,
                               it->abort_msg);
    it->state[i] = SLOT_ARRIVED;
    if (!it->ordered)
        it->fifo[(it->fifo_head + it->fifo_len++) % it->window] = i;
}

static void iter_abort(pool_iter *it, int status, const char *msg)
{
    pthread_mutex_lock(&it->lock);
    if (!it->aborted) {
        it->aborted = true;
        it->abort_status = status;
        it->abort_msg = strdup(msg);
        if (it->abort_msg == NULL)
            pool_panic("imap: out of memory");
        /* A broken pool: the chunks in flight fail item by item, now. */
        it->per_item = status == POOL_EBROKEN && it->mode == ITER_IMAP && !it->abandoned;
        for (long i = 0; it->per_item && i < it->window; i++)
            if (it->state[i] == SLOT_INFLIGHT) {
                arrive_failed(it, i);
                it->inflight--;
            }
    }
    it->registered = false; /* whoever aborts has emptied the table */
    pthread_cond_broadcast(&it->cond);
    pthread_mutex_unlock(&it->lock);
}

/* The operations the job table and the result handler call (pool_job_ops). */
static void op_deliver(pool_job *j, pool_chunk *c) { iter_deliver((pool_iter *)j, c); }
static void op_abort(pool_job *j, int status, const char *msg)
{
    iter_abort((pool_iter *)j, status, msg);
}
static uint32_t op_chunk_count(pool_job *j, uint32_t chunk)
{
    return iter_chunk_count((pool_iter *)j, chunk);
}
static void op_ref(pool_job *j) { iter_ref((pool_iter *)j); }
static void op_unref(pool_job *j) { pool_iter_unref((pool_iter *)j); }

static const pool_job_ops iter_ops = {
    .deliver = op_deliver, .abort = op_abort, .chunk_count = op_chunk_count,
    .ref = op_ref, .unref = op_unref,
};

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

/* Pulls up to chunksize items into it->inbuf: how many, and in *rc the
 * last pull's answer (1 more may follow, 0 the end, < 0 an error). */
static size_t pull_chunk(pool_iter *it, int *rc)
{
    msgpack_sbuffer_clear(&it->inbuf);
    size_t k = 0;
    *rc = 1;
    while (k < (size_t)it->chunksize && (*rc = pull_item(it)) > 0)
        k++;
    return k;
}

/* The input has ended (or failed: failed says so). */
static void end_input(pool_iter *it, bool failed)
{
    pthread_mutex_lock(&it->lock);
    it->input_done = true; /* an input error also ends the input */
    bool drop = iter_leave_table(it);
    pthread_mutex_unlock(&it->lock);
    if (drop)
        pool_iter_unref(it);
    /* As in CPython, the error surfaces where it happened: after the items
     * before it (take_chunk reports it). */
    if (failed && it->input_err == NULL)
        it->input_err = strdup(pool_last_error());
}

/* The window slot for chunk number s (caller holds the lock). */
static long free_slot(pool_iter *it, uint64_t s)
{
    long i = -1;
    if (it->direct)
        i = (long)(s % (uint64_t)it->window);
    else
        for (long j = 0; j < it->window && i < 0; j++)
            if (it->state[j] == SLOT_FREE)
                i = j;
    if (i < 0 || it->state[i] != SLOT_FREE)
        pool_panic("top_up: no free window slot (submitted %llu, consumed %llu)",
                   (unsigned long long)it->submitted, (unsigned long long)it->consumed);
    return i;
}

/* Counts k pulled items as chunk number s in slot i, failed at once with
 * the abort's error (a broken pool; caller holds the lock). */
static void place_failed(pool_iter *it, long i, uint64_t s, size_t k)
{
    it->seq[i] = s;
    it->counts[i] = (uint32_t)k;
    it->firsts[i] = it->items_submitted;
    arrive_failed(it, i);
    it->submitted++;
    it->items_submitted += (uint32_t)k;
    pthread_cond_broadcast(&it->cond);
}

/* Sends the k items in it->inbuf as the next chunk, registering the job
 * with its first chunk. */
static int send_chunk(pool_iter *it, size_t k)
{
    pthread_mutex_lock(&it->lock);
    uint64_t s = it->submitted;
    long i = free_slot(it, s);
    pool_taskmsg *m = pool_taskmsg_new(it->job.id, (uint32_t)s, it->items_submitted,
                                       it->job.task, it->inbuf.data, 0, k, it->inbuf.size,
                                       !it->star);
    if (m == NULL) {
        pthread_mutex_unlock(&it->lock);
        return pool_seterr(POOL_ESYS, "imap: out of memory");
    }
    if (it->aborted) {
        /* Ended since pool_iter_top_up looked: a broken pool fails these
         * items one by one; after a terminate the iteration's one error
         * covers them. */
        if (it->per_item)
            place_failed(it, i, s, k);
        pthread_mutex_unlock(&it->lock);
        free(m);
        return POOL_OK;
    }
    if (!it->registered) {
        int r = pool_job_register(it->pool, &it->job, true);
        if (r != POOL_OK) {
            it->input_done = true;
            pthread_mutex_unlock(&it->lock);
            free(m);
            return r;
        }
        it->registered = true;
    }
    it->state[i] = SLOT_INFLIGHT;
    it->seq[i] = s;
    it->counts[i] = (uint32_t)k;
    it->firsts[i] = it->items_submitted;
    it->submitted++;
    it->inflight++;
    it->items_submitted += (uint32_t)k;
    pthread_mutex_unlock(&it->lock);
    pool_taskq_push(it->pool, m, m, 1);
    return POOL_OK;
}

/* A broken pool: pulls ONE input item, when everything before it has been
 * yielded, and yields it as an error of its own, so the consumer sees every
 * item and may stop at any one (the iterator's comment). */
static int top_up_broken(pool_iter *it)
{
    pthread_mutex_lock(&it->lock);
    bool wanted = !it->input_done && it->submitted == it->consumed;
    pthread_mutex_unlock(&it->lock);
    if (!wanted)
        return POOL_OK;
    msgpack_sbuffer_clear(&it->inbuf);
    int rc = pull_item(it);
    if (rc <= 0) {
        end_input(it, rc < 0);
        return POOL_OK;
    }
    pthread_mutex_lock(&it->lock);
    uint64_t s = it->submitted;
    place_failed(it, free_slot(it, s), s, 1);
    pthread_mutex_unlock(&it->lock);
    return POOL_OK;
}

/* Submits chunks until the window is full or the input ends. */
int pool_iter_top_up(pool_iter *it)
{
    for (;;) {
        pthread_mutex_lock(&it->lock);
        bool room = !it->input_done && !it->aborted &&
                    it->submitted - it->consumed < (uint64_t)it->window;
        bool broken = it->per_item;
        pthread_mutex_unlock(&it->lock);
        if (broken)
            return top_up_broken(it);
        if (!room)
            return POOL_OK;
        int rc;
        size_t k = pull_chunk(it, &rc);
        if (k == 0 || rc < 0)
            end_input(it, rc < 0);
        if (k == 0)
            return POOL_OK;
        int sent = send_chunk(it, k);
        if (sent != POOL_OK)
            return sent;
        if (rc <= 0)
            return POOL_OK; /* the input ended inside this chunk */
    }
}

/* ---- the consumer's side: taking ------------------------------------------------ */

/* Lets go of the chunk whose items have all been yielded, if it has been
 * (caller holds the lock); returns it for the caller to free after
 * unlocking, or NULL. */
static pool_chunk *release_current(pool_iter *it)
{
    if (it->cur == NULL || it->cur_pos < it->cur->count)
        return NULL;
    pool_chunk *done = it->cur;
    it->state[it->cur_slot] = SLOT_FREE;
    it->consumed++;
    it->cur = NULL;
    it->cur_slot = -1;
    return done;
}

/* Whether pool_iter_top_up has anything to do (caller holds the lock): the
 * window has room and the input has not ended, or the pool broke. */
static bool wants_top_up(const pool_iter *it)
{
    return it->per_item || (!it->input_done && !it->aborted &&
                            it->submitted - it->consumed < (uint64_t)it->window);
}

/* take_chunk's answer when a broken pool's iterator must pull the next
 * input item before it has anything to yield (not a pool_status). */
#define PULL_MORE 1

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
        if (it->aborted && !it->per_item) {
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
        if (it->per_item)
            return PULL_MORE; /* broken: the next item is still in the input */
        if (pthread_equal(pthread_self(), it->result_thread))
            return pool_seterr(POOL_ESTATE, "iterating inside a callback would wait forever: "
                               "callbacks run on the thread that delivers results");
        if (pool_cond_wait_until(&it->cond, &it->lock, deadline) == ETIMEDOUT)
            return pool_seterr(POOL_ETIMEDOUT, "no item ready in time (the work goes on)");
    }
}

int pool_iter_next(pool_iter *it, double timeout, const msgpack_object **value, size_t *index)
{
    if (value)
        *value = NULL;
    if (it->mode == ITER_AS_COMPLETED)
        return pool_completion_next(it->ac, timeout, index);
    if (index)
        *index = SIZE_MAX;
    if (it->ended)
        return pool_seterr(POOL_EEND, "no more items");
    double deadline = pool_deadline(timeout);
    int rc = PULL_MORE;
    while (rc == PULL_MORE) {
        /* One hold of the lock for the common case (nothing to submit: the
         * release, the look at the window and the take), where three cost
         * a one-item chunk three rounds with the result handler's thread. */
        pthread_mutex_lock(&it->lock);
        pool_chunk *done = release_current(it);
        bool top_up = wants_top_up(it);
        rc = POOL_OK;
        if (!top_up && it->cur == NULL)
            rc = take_chunk(it, deadline);
        pthread_mutex_unlock(&it->lock);
        pool_chunk_free(done);
        if (!top_up)
            continue; /* taken, or the current chunk has items left, or an error */
        rc = pool_iter_top_up(it);
        if (rc != POOL_OK)
            return rc;
        if (it->cur != NULL)
            break;
        pthread_mutex_lock(&it->lock);
        rc = take_chunk(it, deadline);
        pthread_mutex_unlock(&it->lock);
    }
    if (it->cur == NULL) {
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
