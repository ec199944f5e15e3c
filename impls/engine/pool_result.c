/*
 * pool_result.c: the handle of an apply_async or map_async job, which is
 * also the future of pool_submit (CPython's ApplyResult, MapResult and
 * concurrent.futures.Future, in one object).
 *
 * A result collects its chunks as the result handler delivers them. When the
 * last one is in, the result handler builds the value, runs the callback (or
 * the error callback), then the done callbacks, and only then marks the
 * result ready. So, as in CPython, get() returns after the callback has run,
 * and a slow callback delays every result behind it (phenomenon P2).
 *
 * A map's error is the first failure to ARRIVE, and the map is ready only
 * when every chunk has ended (no fail-fast), exactly as CPython's MapResult.
 *
 * Two references keep a result alive: the caller's (dropped by
 * pool_result_free) and the job table's (dropped when the job completes or
 * is aborted). Whichever goes last frees it; so a caller may free a handle
 * it no longer wants while its job is still running (fire and forget).
 *
 * The job table and the result handler reach a result only through
 * result_ops (deliver, abort, chunk_count, ref, unref), at the end of the
 * section "the job's side".
 */
#include "pool_internal.h"
#include "pool_transport.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum result_phase {
    PHASE_PENDING,    /* chunks still missing */
    PHASE_COMPLETING, /* all in; the result handler is running the callbacks */
    PHASE_DONE,       /* ready: get() returns */
};

struct done_cb {
    struct done_cb *next;
    pool_callback fn;
    void *udata;
};

struct pool_result {
    pool_job job; /* first: the job table sees a pool_job */

    /* Set at creation, read-only after. */
    pool *pool;            /* valid while the pool exists */
    pthread_t result_thread;
    double wait_spin_s;    /* its transport's (pool_transport.h), 0: none */
    struct pool_unobserved *unobs; /* the pool's late errors_unobserved (referenced) */
    bool is_map;
    size_t nitems;
    long chunksize;
    uint32_t nchunks;
    pool_callback cb, ecb;
    void *udata;

    /* Atomic, so that the job table can take a reference while it holds the
     * pool lock without ever taking this object's lock (the lock order). */
    atomic_int refs;

    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum result_phase phase;
    atomic_bool done;      /* phase == PHASE_DONE, readable without the lock */
    int status;
    char *error;
    bool user_freed;
    bool observed;         /* the user read its status or error (get, status, ...) */
    bool had_done_cb;      /* a done callback was added */
    bool unobserved_checked; /* complete() looked at user_freed: a later free counts */
    uint32_t chunks_left;
    pool_chunk **chunks;         /* nchunks slots: &chunk0 when one, else allocated */
    pool_chunk *chunk0;          /* apply's one slot, one allocation fewer per task */
    struct done_cb *done_cbs;
    struct done_cb *waiters;     /* as_completed: told once the result is ready */
    pthread_t cb_thread;         /* the thread running its callbacks, while COMPLETING */
    const msgpack_object *value; /* set before the callbacks run */
    msgpack_object value_obj;    /* a map's array of item values */

    /* A map's array of item values, the value's (NULL until its first chunk
     * arrives). The result handler's alone: it grants a chunk its slots
     * (pool_job_ops.values_home), fills them and builds the value. */
    msgpack_object *slots;

    /* Result handler only (under the pool lock): an apply's room for its
     * chunk (pool_job_ops.room), so that a small result costs no block of
     * its own: room_size bytes at the end of this one (0 for a map). */
    bool room_taken;
    size_t room_size;
    max_align_t room[];
};

/* Room for a plain frame's chunk of one value in up to 64 bytes (a number,
 * a short string: pool_chunk_from_plain_frame's block). */
#define RESULT_ROOM (sizeof(pool_chunk) + sizeof(msgpack_object) + 64)

static const pool_job_ops result_ops;

/* ---- life and death ---------------------------------------------------------- */

pool_result *pool_result_new(pool *p, unsigned task, bool is_map, size_t nitems, long chunksize,
                             pool_callback cb, pool_callback ecb, void *udata)
{
    size_t room = is_map ? 0 : RESULT_ROOM;
    pool_result *r = calloc(1, sizeof *r + room);
    if (r == NULL)
        return NULL;
    r->room_size = room;
    r->nchunks = is_map ? (uint32_t)(chunksize > 0 ? (nitems + (size_t)chunksize - 1) / (size_t)chunksize : 0)
                        : 1;
    r->chunks = r->nchunks <= 1 ? &r->chunk0 : calloc(r->nchunks, sizeof *r->chunks);
    if (r->chunks == NULL) {
        free(r);
        return NULL;
    }
    /* t_submit is the trace's alone: no clock read per task without one. */
    r->job = (pool_job){.ops = &result_ops, .task = task,
                        .t_submit = p->opt.trace ? pool_now() : 0,
                        .has_cb = cb != NULL || ecb != NULL};
    r->pool = p;
    r->result_thread = pool_result_thread_id(p);
    r->wait_spin_s = p->tx->ops->wait_spin_s;
    r->unobs = p->unobs;
    atomic_fetch_add(&r->unobs->refs, 1);
    r->is_map = is_map;
    r->nitems = is_map ? nitems : 1;
    r->chunksize = is_map ? chunksize : 1;
    r->cb = cb;
    r->ecb = ecb;
    r->udata = udata;
    r->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER; /* no call per task */
    pool_cond_init(&r->cond);
    atomic_init(&r->refs, 1);
    r->chunks_left = r->nchunks;
    return r;
}

static void result_ref(pool_result *r)
{
    atomic_fetch_add(&r->refs, 1);
}

static void result_unref(pool_result *r)
{
    if (atomic_fetch_sub(&r->refs, 1) > 1)
        return;
    for (uint32_t i = 0; i < r->nchunks; i++)
        pool_chunk_free(r->chunks[i]);
    if (r->chunks != &r->chunk0)
        free(r->chunks);
    free(r->slots); /* a map's value, when built, is this array */
    free(r->error);
    while (r->done_cbs) {
        struct done_cb *d = r->done_cbs;
        r->done_cbs = d->next;
        free(d);
    }
    while (r->waiters) {
        struct done_cb *d = r->waiters;
        r->waiters = d->next;
        free(d);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    pool_unobserved_unref(r->unobs);
    free(r);
}

struct pool_unobserved *pool_unobserved_new(void)
{
    struct pool_unobserved *u = calloc(1, sizeof *u);
    if (u)
        atomic_init(&u->refs, 1);
    return u;
}

void pool_unobserved_unref(struct pool_unobserved *u)
{
    if (u && atomic_fetch_sub(&u->refs, 1) == 1)
        free(u);
}

/* A failed job freed unread counts in errors_unobserved once, whichever
 * comes first: freed before it completed, complete() counts it (it sees
 * user_freed); completed first, the free counts it here (complete() has
 * looked, unobserved_checked), into the count the pool shares with its
 * results, since the pool may be gone by now. */
void pool_result_free(pool_result *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->user_freed = true;
    bool late = r->unobserved_checked && r->status != POOL_OK && !r->observed &&
                r->ecb == NULL && !r->had_done_cb;
    pthread_mutex_unlock(&r->lock);
    if (late)
        atomic_fetch_add(&r->unobs->late, 1);
    result_unref(r);
}

/* ---- the job's side: delivery, completion, abort ------------------------------ */

static uint32_t result_chunk_count(pool_result *r, uint32_t chunk)
{
    if (!r->is_map)
        return 1;
    size_t first = (size_t)chunk * (size_t)r->chunksize;
    if (first >= r->nitems)
        return 0;
    size_t left = r->nitems - first;
    return (uint32_t)(left < (size_t)r->chunksize ? left : (size_t)r->chunksize);
}

/* A map's array of nitems values, not zeroed: each slot is written before
 * the value is built. False when out of memory. */
static bool slots_alloc(pool_result *r)
{
    if (r->slots == NULL)
        r->slots = malloc((r->nitems ? r->nitems : 1) * sizeof *r->slots);
    return r->slots != NULL;
}

/* Builds the value once every chunk is in (caller holds the lock). */
static void build_value(pool_result *r)
{
    const char *msg;
    if (!r->is_map) {
        pool_chunk_item(r->chunks[0], 0, &r->value, &msg);
        return;
    }
    if (!slots_alloc(r)) {
        r->status = POOL_ESYS;
        r->error = strdup("out of memory assembling the map's results");
        return;
    }
    /* status POOL_OK: every item of every chunk succeeded, so each chunk's
     * values column is its items' values, in order. A chunk settled into
     * its slots (values_home) is there already; another is copied. */
    msgpack_object *v = r->slots;
    size_t k = 0;
    for (uint32_t c = 0; c < r->nchunks; c++) {
        const pool_chunk *ch = r->chunks[c];
        if (ch->count > 0 && ch->values != v + k) /* an empty frame's values may be NULL */
            memcpy(v + k, ch->values, ch->count * sizeof *v);
        k += ch->count;
    }
    r->value_obj.type = MSGPACK_OBJECT_ARRAY;
    r->value_obj.via.array.size = (uint32_t)k;
    r->value_obj.via.array.ptr = v;
    r->value = &r->value_obj;
}

/*
 * Runs the done callbacks, then marks the result ready, so that get()
 * returns after every callback has run (pool.h). A done callback added
 * while these run is appended to the list, hence the loop. Entered with
 * the lock held (complete's hold goes on here: one round fewer per
 * result); returns with it released.
 */
static void finish_locked(pool_result *r)
{
    r->phase = PHASE_COMPLETING;
    r->cb_thread = pthread_self();
    while (r->done_cbs) {
        struct done_cb *list = r->done_cbs;
        r->done_cbs = NULL;
        pthread_mutex_unlock(&r->lock);
        while (list) {
            struct done_cb *d = list;
            list = d->next;
            char err[512];
            err[0] = '\0'; /* not the whole buffer: this runs per result */
            int rc = d->fn(r, d->udata, err, sizeof err);
            if (r->pool)
                pool_count_callback(r->pool, rc, "a done callback", r->job.id, err);
            free(d);
        }
        pthread_mutex_lock(&r->lock);
    }
    r->phase = PHASE_DONE;
    atomic_store(&r->done, true);
    struct done_cb *waiters = r->waiters;
    r->waiters = NULL;
    pthread_mutex_unlock(&r->lock);
    /* After the unlock: a waiter woken under the lock would only block on
     * it again (two wake-ups per get(), each a context switch; sync apply
     * pays them on every task). r stays alive: every caller of finish holds
     * a reference of its own (the job table's, or the creator's). */
    pthread_cond_broadcast(&r->cond);
    while (waiters) {
        struct done_cb *w = waiters;
        waiters = w->next;
        w->fn(r, w->udata, NULL, 0);
        free(w);
    }
}

static void finish(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    finish_locked(r);
}

/* The last chunk is in (result_deliver, under r's lock, has built the value
 * and set the phase): callbacks, then ready. Runs on the result handler. */
static void complete(pool_result *r)
{
    pool *p = r->pool;
    bool ok = r->status == POOL_OK; /* final: written by this thread, under the lock */
    pool_callback fn = ok ? r->cb : r->ecb;
    if (fn) {
        char err[512];
        err[0] = '\0'; /* not the whole buffer: this runs per result */
        int rc = fn(r, r->udata, err, sizeof err);
        pool_count_callback(p, rc, ok ? "the callback" : "the error callback", r->job.id, err);
    }
    /* Marks (or, no callback run, only releases) the held trace records;
     * the clock is read only when there is one to mark. */
    double t = -1;
    for (uint32_t c = 0; r->job.has_cb && c < r->nchunks; c++)
        if (r->chunks[c] && r->chunks[c]->trace_first != SIZE_MAX) {
            if (t < 0)
                t = fn ? pool_now() : 0;
            pool_trace_mark_callback(p, r->chunks[c]->trace_first, r->chunks[c]->count, t);
        }
    pthread_mutex_lock(&r->lock);
    r->unobserved_checked = true;
    if (!ok && r->user_freed && r->ecb == NULL && !r->had_done_cb)
        pool_count_unobserved(p); /* apply_async without get(): the error is lost.
                                     The pool lock inside r's: the lock order allows it. */
    finish_locked(r);
    if (pool_job_unregister(p, r->job.id))
        result_unref(r);
}

static void result_deliver(pool_result *r, pool_chunk *c)
{
    pthread_mutex_lock(&r->lock);
    if (r->phase != PHASE_PENDING || c->index >= r->nchunks || r->chunks[c->index] != NULL) {
        /* Aborted meanwhile, or a chunk run twice (a worker died between
         * saying it held the chunk and taking it): keep the first. */
        pthread_mutex_unlock(&r->lock);
        pool_chunk_free(c);
        return;
    }
    r->chunks[c->index] = c;
    /* Only a chunk with failures is walked, for its first failed item. */
    uint32_t walk = pool_chunk_failed(c) > 0 ? c->count : 0;
    for (uint32_t i = 0; i < walk && r->status == POOL_OK; i++) {
        const msgpack_object *v;
        const char *msg;
        int st = pool_chunk_item(c, i, &v, &msg);
        if (st != POOL_OK) {
            r->status = st; /* only the first error to arrive is kept */
            r->error = strdup(msg);
        }
    }
    bool last = --r->chunks_left == 0;
    if (last) { /* the value and the phase in this hold, before the callbacks */
        if (r->status == POOL_OK)
            build_value(r);
        r->phase = PHASE_COMPLETING;
        r->cb_thread = pthread_self();
    }
    pthread_mutex_unlock(&r->lock);
    if (last)
        complete(r);
}

static void result_abort(pool_result *r, int status, const char *msg)
{
    pthread_mutex_lock(&r->lock);
    if (r->phase != PHASE_PENDING) {
        pthread_mutex_unlock(&r->lock);
        return; /* completing: its callbacks are running, let them finish */
    }
    r->status = status;
    free(r->error);
    r->error = strdup(msg);
    pthread_mutex_unlock(&r->lock);
    finish(r);
}

/* The operations the job table and the result handler call (pool_job_ops). */
static void op_deliver(pool_job *j, pool_chunk *c) { result_deliver((pool_result *)j, c); }
static void op_abort(pool_job *j, int status, const char *msg)
{
    result_abort((pool_result *)j, status, msg);
}
static uint32_t op_chunk_count(pool_job *j, uint32_t chunk)
{
    return result_chunk_count((pool_result *)j, chunk);
}
static void *op_room(pool_job *j, size_t size)
{
    pool_result *r = (pool_result *)j;
    if (r->room_taken || size > r->room_size)
        return NULL;
    r->room_taken = true; /* once: a chunk run twice gets a block of its own */
    return r->room;
}
/* A map's chunk goes into its slots of the final array if it is the chunk
 * it claims to be (index, first item and count as the map cut it) and no
 * chunk of its index was kept before it. The result handler settles and
 * delivers one chunk before it reads the next, and alone writes chunks[],
 * so it may read chunks[] here without r's lock (which the pool lock held
 * here may not nest): a chunk run twice gets a block of its own, never
 * writing over the kept one's values, nor over a value built (every slot
 * kept by then). */
static msgpack_object *op_values_home(pool_job *j, const pool_chunk *c)
{
    pool_result *r = (pool_result *)j;
    if (!r->is_map || c->index >= r->nchunks || r->chunks[c->index] != NULL ||
        c->count == 0 || c->first != (size_t)c->index * (size_t)r->chunksize ||
        c->count != result_chunk_count(r, c->index) || !slots_alloc(r))
        return NULL;
    return r->slots + c->first;
}
static void op_ref(pool_job *j) { result_ref((pool_result *)j); }
static void op_unref(pool_job *j) { result_unref((pool_result *)j); }

static const pool_job_ops result_ops = {
    .deliver = op_deliver, .abort = op_abort, .chunk_count = op_chunk_count,
    .room = op_room, .values_home = op_values_home, .ref = op_ref, .unref = op_unref,
};

void pool_result_finish_empty(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    r->value_obj.type = MSGPACK_OBJECT_ARRAY;
    r->value_obj.via.array.size = 0;
    r->value_obj.via.array.ptr = NULL;
    r->value = &r->value_obj;
    pthread_mutex_unlock(&r->lock);
    finish(r);
}

/* ---- the caller's side ------------------------------------------------------- */

/* Before it sleeps on the condition, a waiter looks for the result for its
 * transport's wait_spin_s, yielding its core (the result handler and the
 * worker may need it): a result that is that close costs the caller no
 * wake-up. Not on the result handler (its own job would never come). */
static void result_spin(pool_result *r, double deadline)
{
    if (r->wait_spin_s <= 0 || pthread_equal(pthread_self(), r->result_thread))
        return;
    double until = pool_now() + r->wait_spin_s;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    while (!atomic_load(&r->done) && pool_now() < until)
        sched_yield();
}

int pool_result_wait(pool_result *r, double timeout)
{
    if (atomic_load(&r->done))
        return POOL_OK; /* ready: no lock round (done is set after the phase) */
    double deadline = pool_deadline(timeout);
    int rc = POOL_OK;
    result_spin(r, deadline);
    pthread_mutex_lock(&r->lock);
    while (r->phase != PHASE_DONE) {
        /* A callback waiting for its own job (on the result handler, or a
         * done callback run by terminate) would wait for itself. */
        if (pthread_equal(pthread_self(), r->result_thread) ||
            (r->phase == PHASE_COMPLETING && pthread_equal(pthread_self(), r->cb_thread))) {
            rc = pool_seterr(POOL_ESTATE, "waiting for job %llu inside a callback would wait "
                             "forever: callbacks run on the thread that delivers results",
                             (unsigned long long)r->job.id);
            break;
        }
        if (pool_cond_wait_until(&r->cond, &r->lock, deadline) == ETIMEDOUT &&
            r->phase != PHASE_DONE) {
            rc = pool_seterr(POOL_ETIMEDOUT, "job %llu not ready after %g s (it goes on)",
                             (unsigned long long)r->job.id, timeout);
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int pool_result_get(pool_result *r, double timeout, const msgpack_object **value)
{
    if (value)
        *value = NULL;
    int rc = pool_result_wait(r, timeout);
    if (rc != POOL_OK)
        return rc;
    pthread_mutex_lock(&r->lock);
    rc = r->status;
    r->observed = true;
    if (rc == POOL_OK) {
        if (value)
            *value = r->value;
    } else {
        pool_seterr(rc, "%s", r->error ? r->error : "job failed");
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

bool pool_result_ready(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    bool ready = r->phase == PHASE_DONE;
    pthread_mutex_unlock(&r->lock);
    return ready;
}

int pool_result_successful(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    /* COMPLETING counts as ready here: the status is final, and callbacks
     * (which run in that phase) must be able to ask. */
    int rc = r->phase == PHASE_PENDING
                 ? pool_seterr(POOL_ENOTREADY, "job %llu is not ready", (unsigned long long)r->job.id)
                 : r->status == POOL_OK;
    r->observed = r->observed || r->phase != PHASE_PENDING;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int pool_result_status(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    int st = r->phase == PHASE_PENDING ? POOL_ENOTREADY : r->status;
    r->observed = r->observed || r->phase != PHASE_PENDING;
    pthread_mutex_unlock(&r->lock);
    return st;
}

const char *pool_result_error(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    const char *e = r->phase == PHASE_PENDING ? NULL : r->error;
    r->observed = r->observed || r->phase != PHASE_PENDING;
    pthread_mutex_unlock(&r->lock);
    return e;
}

const msgpack_object *pool_result_value(pool_result *r)
{
    pthread_mutex_lock(&r->lock);
    const msgpack_object *v = r->phase != PHASE_PENDING && r->status == POOL_OK ? r->value : NULL;
    pthread_mutex_unlock(&r->lock);
    return v;
}

uint64_t pool_result_job(const pool_result *r)
{
    return r->job.id;
}

pid_t pool_result_holder(pool_result *r)
{
    return pool_result_ready(r) ? 0 : pool_job_holder(r->pool, r->job.id);
}

int pool_result_add_done_callback(pool_result *r, pool_callback fn, void *udata)
{
    if (fn == NULL)
        return pool_seterr(POOL_EINVAL, "add_done_callback: no function");
    pthread_mutex_lock(&r->lock);
    r->had_done_cb = true;
    if (r->phase != PHASE_DONE) {
        struct done_cb *d = malloc(sizeof *d);
        if (d == NULL) {
            pthread_mutex_unlock(&r->lock);
            return pool_seterr(POOL_ESYS, "add_done_callback: out of memory");
        }
        /* Appended, so done callbacks run in the order they were added. */
        d->fn = fn;
        d->udata = udata;
        d->next = NULL;
        struct done_cb **tail = &r->done_cbs;
        while (*tail)
            tail = &(*tail)->next;
        *tail = d;
        pthread_mutex_unlock(&r->lock);
        return POOL_OK;
    }
    pthread_mutex_unlock(&r->lock);
    char err[512] = "";
    if (fn(r, udata, err, sizeof err) != 0)
        return pool_seterr(POOL_EINVAL, "done callback failed: %s", err);
    return POOL_OK;
}

int pool_result_add_waiter(pool_result *r, pool_callback fn, void *udata)
{
    pthread_mutex_lock(&r->lock);
    if (r->phase != PHASE_DONE) {
        struct done_cb *w = malloc(sizeof *w);
        if (w == NULL) {
            pthread_mutex_unlock(&r->lock);
            return pool_seterr(POOL_ESYS, "as_completed: out of memory");
        }
        *w = (struct done_cb){.next = r->waiters, .fn = fn, .udata = udata};
        r->waiters = w;
        pthread_mutex_unlock(&r->lock);
        return POOL_OK;
    }
    pthread_mutex_unlock(&r->lock);
    fn(r, udata, NULL, 0);
    return POOL_OK;
}
