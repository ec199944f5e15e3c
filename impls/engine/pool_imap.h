/*
 * pool_imap.h: what the iterator's two files share, and no other file uses.
 *
 * pool_imap.c is the iterator: its window, its feeding, its delivery and
 * pool_iter_next. pool_imap_new.c holds the public calls that build one and
 * start it. The dependency runs one way, pool_imap_new.c -> pool_imap.c,
 * through the three calls below. The struct is here rather than in
 * pool_internal.h because nothing else in the engine may look inside an
 * iterator: the job table and the result handler reach it only through the
 * pool_job_ops that pool_imap.c fills.
 */
#ifndef POOL_IMAP_H
#define POOL_IMAP_H

#include "pool_internal.h"

enum slot_state { SLOT_FREE, SLOT_INFLIGHT, SLOT_ARRIVED };
enum iter_mode { ITER_IMAP, ITER_AS_COMPLETED };

struct pool_iter {
    pool_job job; /* first: the job table sees a pool_job */

    /* Set at creation, read-only after. */
    pool *pool;
    pthread_t result_thread;
    enum iter_mode mode;
    bool ordered;
    bool star;     /* items are argument arrays: task(*item) */
    bool direct;   /* chunk s always sits in slot s % window (ordered, or eager) */
    long chunksize;
    long window;

    /* The consumer's alone (the thread calling pool_iter_next). */
    pool_input_fn next;
    void *ctx;
    const char *items;     /* array input: the packed items and their offsets */
    size_t items_len, nitems, pos;
    size_t *starts;
    char *owned;           /* an eagerly read input: the iterator's copy of it */
    msgpack_sbuffer inbuf; /* the items of the chunk being built */
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
    bool per_item;                /* aborted by a broken pool: every item its own error */
    int abort_status;
    char *abort_msg;
    uint64_t submitted, consumed; /* chunks */
    long inflight;                /* slots SLOT_INFLIGHT */
    enum slot_state *state;
    uint64_t *seq;
    uint32_t *counts;
    uint32_t *firsts;             /* job-wide index of each slot's first item */
    pool_chunk **ring;
    long *fifo; /* imap_unordered: arrived slots, oldest first */
    long fifo_head, fifo_len;

    /* as_completed: its own state, locks and references (pool_as_completed.c) */
    pool_completion *ac;
};

/* An iterator holding one reference (the caller's), its job ops set; an imap
 * one (mode ITER_IMAP) gets its window of `window` slots. p is NULL for
 * as_completed. NULL when out of memory. */
pool_iter *pool_iter_new(pool *p, enum iter_mode mode, long window);
/* Drops one reference; the last frees the iterator and all it holds. */
void pool_iter_unref(pool_iter *it);
/* Submits chunks until the window is full or the input ends; on the
 * consumer's thread (the constructors call it once, to start the work). */
int pool_iter_top_up(pool_iter *it);

#endif
