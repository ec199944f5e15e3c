/*
 * pool_imap_new.c: the public calls that make an iterator (pool.h): imap and
 * imap_unordered over an input function or a packed array, their star forms,
 * Executor.map and starmap, the calls without options (buffersize from
 * pool_options.imap_window), and the iterator face of as_completed.
 *
 * Each checks its options and its task, puts the input in the shape the
 * iterator reads, builds the iterator and fills its window once
 * (pool_iter_top_up), so that the work starts before the first next(). The
 * shapes: with a buffersize, an input function is left for pool_iter_next()
 * to call; without one, it is read whole now, on the caller's thread
 * (read_all), and served as an array; a packed array is split into its items.
 * Why the input is read where it is, and the eager and bounded shapes:
 * pool_imap.c's comment.
 *
 * Why a file of its own: the iterator (pool_imap.c) is one state machine, read
 * whole; these are a dozen entry points and their checks, which only fill
 * its fields before it starts. The dependency runs one way: this file ->
 * pool_imap.c, through pool_imap.h (pool_iter_new, pool_iter_unref,
 * pool_iter_top_up), never back.
 */
#include "pool_imap.h"

#include <stdlib.h>
#include <string.h>

/* ---- constructors ---------------------------------------------------------------- */

/* pool_check_submit for an iterator. A broken pool does not refuse one:
 * it makes it yield each input item as an error (pool_imap.c's comment), so
 * *broken_msg gets the pool's message (the caller frees it). */
static int iter_check_submit(pool *p, const char *task, char **broken_msg)
{
    int index = pool_check_submit(p, task);
    *broken_msg = NULL;
    if (index != POOL_EBROKEN || pool_task_index(task) < 0)
        return index;
    if ((*broken_msg = strdup(pool_last_error())) == NULL)
        return pool_seterr(POOL_ESYS, "imap: out of memory");
    return pool_task_index(task);
}

/* The iterator of a broken pool: ended before it began, item by item. */
static void born_broken(pool_iter *it, char *msg)
{
    it->aborted = it->per_item = true;
    it->abort_status = POOL_EBROKEN;
    it->abort_msg = msg;
}

/* Refuses a bad chunksize or buffersize before anything is read. */
static int opts_check(const pool_imap_opts *o)
{
    if (o->chunksize < 0)
        return pool_seterr(POOL_EINVAL,
                           "imap: chunksize must be 1 or more, or 0 for 1 (got %ld)",
                           o->chunksize);
    if (o->buffersize < 0)
        return pool_seterr(POOL_EINVAL,
                           "imap: buffersize must be 1 or more, or 0 for none (got %ld)",
                           o->buffersize);
    return POOL_OK;
}

static pool_iter *imap_new(pool *p, const char *task, long chunksize, bool ordered, long window)
{
    char *broken;
    int index = iter_check_submit(p, task, &broken);
    if (index < 0)
        return NULL;
    pool_iter *it = pool_iter_new(p, ITER_IMAP, window);
    if (it == NULL) {
        free(broken);
        pool_seterr(POOL_ESYS, "imap: out of memory");
        return NULL;
    }
    if (broken)
        born_broken(it, broken);
    it->ordered = it->direct = ordered;
    it->chunksize = chunksize > 0 ? chunksize : 1;
    /* ops: pool_iter_new's (pool_imap.c fills them, nothing else names them) */
    it->job = (pool_job){.ops = it->job.ops, .task = (unsigned)index, .t_submit = pool_now()};
    it->job.id = pool_new_job(p);
    return it;
}

/* Fills the window now, so work starts before the first next(): with no
 * buffersize, that submits every chunk. */
static pool_iter *imap_start(pool_iter *it)
{
    if (pool_iter_top_up(it) != POOL_OK && !it->registered) {
        pool_iter_free(it);
        return NULL;
    }
    return it;
}

/* With a buffer: the input is read inside pool_iter_next(), as room frees. */
static pool_iter *lazy_iter(pool *p, const char *task, pool_input_fn next, void *ctx,
                            const pool_imap_opts *o)
{
    pool_iter *it = imap_new(p, task, o->chunksize, o->ordered, o->buffersize);
    if (it == NULL)
        return NULL;
    it->next = next;
    it->ctx = ctx;
    it->star = o->star;
    return imap_start(it);
}

/* An unstarted iterator over n packed items (starts: each item's offset,
 * taken over). No buffersize: a window of one slot per chunk. */
static pool_iter *array_iter_new(pool *p, const char *task, const char *items,
                                 size_t items_len, size_t *starts, size_t n,
                                 const pool_imap_opts *o, bool ordered)
{
    size_t cs = o->chunksize > 0 ? (size_t)o->chunksize : 1;
    long window = o->buffersize > 0 ? o->buffersize : (long)((n + cs - 1) / cs);
    pool_iter *it = imap_new(p, task, o->chunksize, ordered, window);
    if (it == NULL) {
        free(starts);
        return NULL;
    }
    it->direct = ordered || o->buffersize == 0;
    it->items = items;
    it->items_len = items_len;
    it->starts = starts;
    it->nitems = n;
    it->star = o->star;
    return it;
}

/* Grows the offsets array when full. */
static int starts_room(size_t **starts, size_t n, size_t *cap)
{
    if (n < *cap)
        return POOL_OK;
    size_t c = *cap ? 2 * *cap : 64;
    size_t *s = realloc(*starts, c * sizeof *s);
    if (s == NULL)
        return pool_seterr(POOL_ESYS, "imap: out of memory reading the input");
    *starts = s;
    *cap = c;
    return POOL_OK;
}

/* Reads the whole lazy input now, on the caller's thread (pool_imap.c's
 * comment): the items into buf, their offsets into *starts. An input that
 * fails ends the reading, and *failed gets its message, reported after the
 * items before it (CPython's _guarded_task_generation). */
static int read_all(pool_input_fn next, void *ctx, bool star, msgpack_sbuffer *buf,
                    size_t **starts, size_t *n, char **failed)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    size_t cap = 0;
    for (;;) {
        if (starts_room(starts, *n, &cap) != POOL_OK)
            return POOL_ESYS;
        size_t before = buf->size;
        char err[512] = "", what[64];
        int rc = next(ctx, &pk, err, sizeof err);
        if (rc == 0)
            return POOL_OK;
        snprintf(what, sizeof what, "imap input item %zu", *n);
        if (rc < 0)
            pool_seterr(POOL_EINVAL, "imap input failed: %s", err[0] ? err : "(no message)");
        if (rc < 0 ||
            pool_msg_check_value(buf->data + before, buf->size - before, star, what) != POOL_OK) {
            buf->size = before;
            *failed = strdup(pool_last_error());
            return *failed ? POOL_OK : pool_seterr(POOL_ESYS, "imap: out of memory");
        }
        (*starts)[(*n)++] = before;
    }
}

/* No buffersize: the whole input read at the call, every chunk submitted. */
static pool_iter *eager_iter(pool *p, const char *task, pool_input_fn next, void *ctx,
                             const pool_imap_opts *o)
{
    char *broken; /* refuse a bad task before reading anything; imap_new looks again */
    int index = iter_check_submit(p, task, &broken);
    free(broken);
    if (index < 0)
        return NULL;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    size_t *starts = NULL, n = 0;
    char *failed = NULL;
    if (read_all(next, ctx, o->star, &buf, &starts, &n, &failed) != POOL_OK) {
        msgpack_sbuffer_destroy(&buf);
        free(starts);
        return NULL;
    }
    size_t len = buf.size;
    char *data = msgpack_sbuffer_release(&buf);
    if (data == NULL)
        data = malloc(1); /* an empty input: still an array input, not a lazy one */
    pool_iter *it = data ? array_iter_new(p, task, data, len, starts, n, o, o->ordered) : NULL;
    if (it == NULL) {
        if (data == NULL)
            pool_seterr(POOL_ESYS, "imap: out of memory");
        free(data);
        free(failed);
        return NULL;
    }
    it->owned = data;
    it->input_err = failed;
    return imap_start(it);
}

pool_iter *pool_imap_opt(pool *p, const char *task, pool_input_fn next, void *ctx,
                         const pool_imap_opts *o)
{
    if (opts_check(o) != POOL_OK)
        return NULL;
    if (next == NULL) {
        pool_seterr(POOL_EINVAL, "imap: no input function");
        return NULL;
    }
    return o->buffersize > 0 ? lazy_iter(p, task, next, ctx, o) : eager_iter(p, task, next, ctx, o);
}

/* Over a packed array: split it, then eager or bounded as o says. */
static pool_iter *array_iter(pool *p, const char *task, const void *items, size_t items_len,
                             const pool_imap_opts *o, bool ordered)
{
    if (opts_check(o) != POOL_OK)
        return NULL;
    char *broken; /* a broken pool: imap_new looks again */
    int index = iter_check_submit(p, task, &broken);
    free(broken);
    if (index < 0)
        return NULL;
    size_t *starts, n;
    if (pool_msg_split_array(items, items_len, 1, &starts, &n, o->star) != POOL_OK)
        return NULL;
    pool_iter *it = array_iter_new(p, task, items, items_len, starts, n, o, ordered);
    return it ? imap_start(it) : NULL;
}

pool_iter *pool_imap_array_opt(pool *p, const char *task, const void *items, size_t items_len,
                               const pool_imap_opts *o)
{
    return array_iter(p, task, items, items_len, o, o->ordered);
}

pool_iter *pool_executor_map_opt(pool *p, const char *task, const void *items,
                                 size_t items_len, const pool_imap_opts *o)
{
    return array_iter(p, task, items, items_len, o, true);
}

/* ---- the legacy calls: buffersize from pool_options.imap_window ------------------ */

static pool_imap_opts legacy(const pool *p, long chunksize, bool ordered, bool star)
{
    return (pool_imap_opts){.chunksize = chunksize, .buffersize = p ? p->opt.imap_window : 0,
                            .ordered = ordered, .star = star};
}

pool_iter *pool_imap(pool *p, const char *task, pool_input_fn next, void *ctx, long chunksize)
{
    pool_imap_opts o = legacy(p, chunksize, true, false);
    return pool_imap_opt(p, task, next, ctx, &o);
}

pool_iter *pool_imap_star(pool *p, const char *task, pool_input_fn next, void *ctx,
                          long chunksize, bool ordered)
{
    pool_imap_opts o = legacy(p, chunksize, ordered, true);
    return pool_imap_opt(p, task, next, ctx, &o);
}

pool_iter *pool_imap_unordered(pool *p, const char *task, pool_input_fn next, void *ctx,
                               long chunksize)
{
    pool_imap_opts o = legacy(p, chunksize, false, false);
    return pool_imap_opt(p, task, next, ctx, &o);
}

pool_iter *pool_imap_array(pool *p, const char *task, const void *items, size_t items_len,
                           long chunksize, bool ordered)
{
    pool_imap_opts o = legacy(p, chunksize, ordered, false);
    return pool_imap_array_opt(p, task, items, items_len, &o);
}

/* Executor.map submits everything unless told a buffersize (CPython 3.14). */
pool_iter *pool_executor_map(pool *p, const char *task, const void *items, size_t items_len,
                             long chunksize)
{
    pool_imap_opts o = {.chunksize = chunksize, .ordered = true};
    return pool_executor_map_opt(p, task, items, items_len, &o);
}

pool_iter *pool_executor_starmap(pool *p, const char *task, const void *items,
                                 size_t items_len, long chunksize)
{
    pool_imap_opts o = {.chunksize = chunksize, .ordered = true, .star = true};
    return pool_executor_map_opt(p, task, items, items_len, &o);
}

/* ---- as_completed: a thin iterator over pool_as_completed.c ---------------------- */

pool_iter *pool_as_completed(pool_result *const *futures, size_t n)
{
    pool_completion *ac = pool_completion_new(futures, n);
    if (ac == NULL)
        return NULL;
    pool_iter *it = pool_iter_new(NULL, ITER_AS_COMPLETED, 1);
    if (it == NULL) {
        pool_completion_release(ac);
        pool_seterr(POOL_ESYS, "as_completed: out of memory");
        return NULL;
    }
    it->ac = ac;
    return it;
}
