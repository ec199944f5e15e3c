/*
 * test_pool_imap.c: imap's two shapes, CPython's (issue 12; P25).
 *
 *   - Eager, the default: every input item is pulled, on the caller's
 *     thread, before the call returns, so before the first result (CPython's
 *     Pool.imap hands its whole input to the task handler; Executor.map
 *     submits everything).
 *   - buffersize b (CPython 3.14's Executor.map, Pool.imap after gh-64192):
 *     at most b chunks submitted and not yet consumed at any time, counted
 *     by the input callback against the items the consumer has taken, and
 *     for an array input by the messages the pool has sent.
 *   - In both shapes: a failed item is an error at its index and the
 *     iteration goes on; a worker that dies fails its chunk only; a dead
 *     fork server makes each remaining item an error of its own; a consumer
 *     that stops early and destroys the pool leaves nothing behind (ASan
 *     checks the memory, the case checks descriptors and children).
 *
 * No case depends on timing: counts are exact, every wait bounded by WAIT_S.
 */
#include "test_helpers.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/wait.h>

/* ---- tasks and inputs --------------------------------------------------- */

/* odd_fails(x): odd x fails with a message naming it; even x returns x. */
static int task_odd_fails(const msgpack_object_array *args, msgpack_packer *out,
                          pool_task_ctx *ctx)
{
    int64_t x;
    if (task_int_arg(args, 0, &x))
        return pool_task_fail(ctx, "odd_fails: wants an integer");
    if (x % 2)
        return pool_task_fail(ctx, "odd input %lld", (long long)x);
    msgpack_pack_int64(out, x);
    return 0;
}

/* die_at_5(x): the worker exits on 5; other x are returned. */
static int task_die_at_5(const msgpack_object_array *args, msgpack_packer *out,
                         pool_task_ctx *ctx)
{
    int64_t x;
    if (task_int_arg(args, 0, &x))
        return pool_task_fail(ctx, "die_at_5: wants an integer");
    if (x == 5)
        _exit(3);
    msgpack_pack_int64(out, x);
    return 0;
}

/* A counted input 0..n-1: how many items were pulled, from which thread,
 * and the most chunks ever out (pulled and not consumed) at a pull. */
typedef struct counted {
    int n, pulled;
    long chunksize;
    int yielded;     /* items the consumer has taken, set by the case */
    long max_out;    /* chunks out, counting the one this pull starts */
    pthread_t owner;
    int foreign;     /* pulls on another thread */
} counted;

static int counted_next(void *ctx, msgpack_packer *pk, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    counted *c = ctx;
    if (!pthread_equal(pthread_self(), c->owner))
        c->foreign++;
    if (c->pulled == c->n)
        return 0;
    /* A chunk is consumed once each of its items was taken (ordered or not,
     * a chunk is yielded whole before the next), so consumed = yielded / c. */
    long out = c->pulled / c->chunksize - c->yielded / c->chunksize + 1;
    if (out > c->max_out)
        c->max_out = out;
    msgpack_pack_int(pk, c->pulled++);
    return 1;
}

static counted make_counted(int n, long chunksize)
{
    return (counted){.n = n, .chunksize = chunksize, .owner = pthread_self()};
}

/* Takes every item of an iterator over identity/square-like tasks: returns
 * how many came back OK, bumping *yielded after each. */
static int drain_ok(pool_iter *it, int *yielded)
{
    int ok = 0, rc;
    const msgpack_object *v;
    while ((rc = pool_iter_next(it, WAIT_S, &v, NULL)) != POOL_EEND) {
        assert_status(rc, POOL_OK);
        ok++;
        if (yielded)
            (*yielded)++;
    }
    return ok;
}

/* ---- eager ----------------------------------------------------------------- */

/* No buffersize: the whole input is pulled inside the call, on this thread. */
static void eager_pulls_everything_at_the_call(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    for (int ordered = 0; ordered < 2; ordered++) {
        counted c = make_counted(500, 3);
        pool_imap_opts o = {.chunksize = 3, .ordered = ordered};
        pool_iter *it = pool_imap_opt(p, "identity", counted_next, &c, &o);
        assert_non_null(it);
        assert_int_equal(c.pulled, 500); /* before the first next() */
        assert_int_equal(drain_ok(it, NULL), 500);
        assert_int_equal(c.foreign, 0);
        pool_iter_free(it);
    }
    /* The legacy call is eager too (imap_window 0), and an empty input ends. */
    counted c = make_counted(0, 1);
    pool_iter *it = pool_imap(p, "identity", counted_next, &c, 1);
    assert_non_null(it);
    assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
    pool_iter_free(it);
    counted d = make_counted(200, 1);
    it = pool_imap_unordered(p, "identity", counted_next, &d, 1);
    assert_int_equal(d.pulled, 200);
    assert_int_equal(drain_ok(it, NULL), 200);
    pool_iter_free(it);
}

/* ---- buffersize ------------------------------------------------------------ */

/* At most b chunks out at any pull, and the bound is reached. */
static void buffersize_bounds_chunks_out(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    const long sizes[][2] = {{1, 1}, {3, 1}, {4, 2}, {2, 5}}; /* {buffersize, chunksize} */
    for (int ordered = 0; ordered < 2; ordered++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            long b = sizes[k][0], cs = sizes[k][1];
            counted c = make_counted(100, cs);
            pool_imap_opts o = {.chunksize = cs, .buffersize = b, .ordered = ordered};
            pool_iter *it = pool_imap_opt(p, "identity", counted_next, &c, &o);
            assert_non_null(it);
            assert_true(c.pulled <= b * cs); /* the call fills the buffer, no more */
            assert_int_equal(drain_ok(it, &c.yielded), 100);
            if (c.max_out != b)
                fail_msg("buffersize %ld, chunksize %ld, %s: at most %ld chunks out", b, cs,
                         ordered ? "imap" : "imap_unordered", c.max_out);
            assert_int_equal(c.foreign, 0);
            pool_iter_free(it);
        }
}

/* Executor.map and imap over an array: messages sent never run more than b
 * chunks ahead of the items taken. */
static void buffersize_bounds_array_input(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 60);
    for (int api = 0; api < 2; api++) {
        pool_imap_opts o = {.chunksize = 2, .buffersize = 3, .ordered = true};
        pool_stats before, now;
        pool_get_stats(p, &before);
        pool_iter *it = api ? pool_executor_map_opt(p, "identity", items.data, items.size, &o)
                            : pool_imap_array_opt(p, "identity", items.data, items.size, &o);
        assert_non_null(it);
        int taken = 0, rc;
        const msgpack_object *v;
        while ((rc = pool_iter_next(it, WAIT_S, &v, NULL)) == POOL_OK) {
            assert_int_equal(obj_int(v), taken);
            taken++;
            pool_get_stats(p, &now);
            uint64_t sent = now.messages_sent - before.messages_sent;
            if (sent > (uint64_t)((taken - 1) / 2 + 3))
                fail_msg("%s: %llu chunks sent after %d items taken, buffersize 3",
                         api ? "executor map" : "imap", (unsigned long long)sent, taken);
        }
        assert_status(rc, POOL_EEND);
        assert_int_equal(taken, 60);
        pool_iter_free(it);
    }
    msgpack_sbuffer_destroy(&items);
}

/* A negative buffersize or chunksize is refused before the input is read. */
static void bad_options_refused(void **state)
{
    (void)state;
    pool *p = make_pool(1);
    counted c = make_counted(10, 1);
    pool_imap_opts o = {.chunksize = 1, .buffersize = -1, .ordered = true};
    assert_null(pool_imap_opt(p, "identity", counted_next, &c, &o));
    assert_status(pool_last_status(), POOL_EINVAL);
    assert_contains(pool_last_error(), "buffersize");
    o = (pool_imap_opts){.chunksize = -2, .ordered = true};
    assert_null(pool_imap_opt(p, "identity", counted_next, &c, &o));
    assert_int_equal(c.pulled, 0);
}

/* ---- failures, in both shapes ---------------------------------------------- */

/* Each odd item is an error at its index; the iteration goes on. */
static void errors_per_item(void **state)
{
    (void)state;
    assert_status(pool_task_register("odd_fails", task_odd_fails, NULL), POOL_OK);
    pool *p = make_pool(2);
    for (long b = 0; b <= 4; b += 4) {
        counted c = make_counted(40, 2);
        pool_imap_opts o = {.chunksize = 2, .buffersize = b, .ordered = true};
        pool_iter *it = pool_imap_opt(p, "odd_fails", counted_next, &c, &o);
        assert_non_null(it);
        int rc, seen = 0;
        size_t idx;
        while ((rc = pool_iter_next(it, WAIT_S, NULL, &idx)) != POOL_EEND) {
            assert_int_equal(idx, (size_t)seen);
            if (seen % 2) {
                assert_status(rc, POOL_ETASK);
                assert_contains(pool_iter_error(it), "odd input");
            } else {
                assert_status(rc, POOL_OK);
            }
            seen++;
        }
        assert_int_equal(seen, 40);
        pool_iter_free(it);
    }
}

/* The worker dies on item 5: that item fails with POOL_EWORKER, every other
 * item comes back, and the iterator ends. */
static void worker_death_fails_its_items(void **state)
{
    (void)state;
    assert_status(pool_task_register("die_at_5", task_die_at_5, NULL), POOL_OK);
    pool *p = make_pool(2);
    for (long b = 0; b <= 3; b += 3) {
        counted c = make_counted(30, 1);
        pool_imap_opts o = {.chunksize = 1, .buffersize = b, .ordered = true};
        pool_iter *it = pool_imap_opt(p, "die_at_5", counted_next, &c, &o);
        assert_non_null(it);
        int rc, ok = 0, failed = 0;
        size_t idx;
        const msgpack_object *v;
        while ((rc = pool_iter_next(it, WAIT_S, &v, &idx)) != POOL_EEND) {
            if (rc == POOL_OK) {
                assert_int_equal(obj_int(v), (int64_t)idx);
                ok++;
                continue;
            }
            assert_status(rc, POOL_EWORKER);
            assert_int_equal(idx, 5);
            failed++;
        }
        assert_int_equal(ok, 29);
        assert_int_equal(failed, 1);
        pool_iter_free(it);
    }
}

/* The fork server dies mid-iteration: each remaining item is an error of
 * its own, in order, none skipped, and the iterator then ends. */
static void forkserver_death_each_item_errs(void **state)
{
    (void)state;
    for (long b = 0; b <= 4; b += 4) {
        pool *p = make_pool(2);
        msgpack_sbuffer items;
        msgpack_packer pk;
        msgpack_sbuffer_init(&items);
        msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 40);
        for (int i = 0; i < 40; i++)
            msgpack_pack_double(&pk, i == 0 ? 0.0 : 60.0); /* all but the first hang */
        pool_imap_opts o = {.chunksize = 1, .buffersize = b, .ordered = true};
        pool_iter *it = pool_imap_array_opt(p, "sleep", items.data, items.size, &o);
        assert_non_null(it);
        assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_OK);
        assert_int_equal(kill(pool_forkserver_pid(p), SIGKILL), 0);
        int rc, errors = 0;
        size_t idx;
        while ((rc = pool_iter_next(it, WAIT_S, NULL, &idx)) != POOL_EEND) {
            assert_status(rc, POOL_EBROKEN);
            assert_int_equal(idx, (size_t)(errors + 1));
            errors++;
        }
        assert_int_equal(errors, 39);
        pool_iter_free(it);
        drop_pool();
        msgpack_sbuffer_destroy(&items);
    }
}

/* ---- stopping early ---------------------------------------------------------- */

/* A consumer that takes a few items, frees the iterator and destroys the
 * pool: no descriptor, child or allocation (ASan) is left behind. */
static void early_stop_leaves_nothing(void **state)
{
    (void)state;
    int fds = count_fds();
    for (long b = 0; b <= 4; b += 4)
        for (int ordered = 0; ordered < 2; ordered++) {
            pool *p = make_pool(2);
            counted c = make_counted(3000, 1);
            pool_imap_opts o = {.chunksize = 1, .buffersize = b, .ordered = ordered};
            pool_iter *it = pool_imap_opt(p, "identity", counted_next, &c, &o);
            assert_non_null(it);
            for (int i = 0; i < 5; i++)
                assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_OK);
            pool_iter_free(it);
            drop_pool();
            if (b > 0)
                assert_true(c.pulled < c.n); /* stopped: the rest never read */
        }
    assert_int_equal(count_fds(), fds);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left */
    assert_int_equal(errno, ECHILD);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(eager_pulls_everything_at_the_call),
        CASE(buffersize_bounds_chunks_out),
        CASE(buffersize_bounds_array_input),
        CASE(bad_options_refused),
        CASE(errors_per_item),
        CASE(worker_death_fails_its_items),
        CASE(forkserver_death_each_item_errs),
        CASE(early_stop_leaves_nothing),
    };
    return test_main(argc, argv, "test_pool_imap", tests, sizeof tests / sizeof tests[0]);
}
