/*
 * test_pool_api.c: the engine's calls that produce values, checked against
 * pool.h's contract: apply, apply_async, map and starmap with every kind of
 * chunksize, imap and imap_unordered (over arrays, over a lazy generator, and
 * in the star form), the executor side (submit, as_completed, executor map),
 * timeouts, and the pure helpers (default chunksize, in-process task calls).
 * Callbacks have their own file, test_pool_callbacks.c.
 *
 * The cases follow what CPython's _TestPool covers for multiprocessing.Pool,
 * since the engine promises the same semantics; CPython's own phrasing is in
 * the comments where a case reproduces one of its tests. Every check is
 * structural (values, order, counts, which thread, which process); the only
 * times compared are against sleeps of a second, never against speed.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test_helpers.h"

#include "pool_internal.h" /* pool_task_index, for the name it remembers */

/* ---- tasks registered by the cases --------------------------------------- */

/* add(a, b): the starmap task, as in CPython's test_starmap (mul). */
static int task_add(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    int64_t a, b;
    if (args->size != 2 || task_int_arg(args, 0, &a) || task_int_arg(args, 1, &b))
        return pool_task_fail(ctx, "add: wants two integers");
    msgpack_pack_int64(out, a + b);
    return 0;
}

/* slot(): the worker slot, to check pool_task_slot in and out of a pool. */
static int task_slot(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    (void)args;
    msgpack_pack_int(out, pool_task_slot(ctx));
    return 0;
}

/* udata(): what the udata given at registration points to. Workers are forked
 * after registration, so the pointer is valid in them too. */
static int task_udata(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    (void)args;
    msgpack_pack_int(out, *(const int *)pool_task_udata(ctx));
    return 0;
}

/* ---- apply, map, starmap --------------------------------------------------- */

static void apply_square(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 7);

    pool_result *r = pool_apply(p, "square", a.data, a.size);
    assert_non_null(r);
    /* apply blocks: the handle is ready when it returns. */
    assert_true(pool_result_ready(r));
    assert_int_equal(pool_result_successful(r), 1);
    assert_int_equal(obj_int(get_ok(r)), 49);
    assert_int_equal(obj_int(pool_result_value(r)), 49);
    assert_null(pool_result_error(r));
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
}

static void apply_async_get(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 12);
    pool_result *r = pool_apply_async(p, "square", a.data, a.size, NULL, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(obj_int(get_ok(r)), 144);
    /* A second get returns the same value: the handle keeps it. */
    assert_int_equal(obj_int(get_ok(r)), 144);

    pool_args_double(&a, 1.5);
    pool_result *f = pool_apply_async(p, "square", a.data, a.size, NULL, NULL, NULL);
    const msgpack_object *v = get_ok(f);
    assert_true(v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32);
    assert_true(v->via.f64 == 2.25);
    assert_true(pool_result_job(r) != pool_result_job(f));
    pool_result_free(r);
    pool_result_free(f);
    msgpack_sbuffer_destroy(&a);
}

/* Results come back in input order whatever the chunking, and the chunking is
 * real: one task message per chunk (the cause of phenomena P6 and P7). */
static void map_chunksizes(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 100);
    const long sizes[] = { 1, 7, 100, 0 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        long cs = sizes[k];
        long eff = cs ? cs : pool_default_chunksize(100, 2);
        pool_stats before, after;
        pool_get_stats(p, &before);
        pool_result *r = pool_map(p, "square", items.data, items.size, cs);
        const msgpack_object_array *arr = get_array(r, 100);
        for (uint32_t i = 0; i < 100; i++)
            assert_int_equal(obj_int(&arr->ptr[i]), (int64_t)i * i);
        pool_get_stats(p, &after);
        assert_int_equal(after.messages_sent - before.messages_sent, (100 + eff - 1) / eff);
        pool_result_free(r);
    }
    msgpack_sbuffer_destroy(&items);
}

/* CPython's test_empty_iterable: map over nothing returns [] at once. */
static void map_empty(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 0);

    pool_result *r = pool_map_async(p, "square", items.data, items.size, 0, NULL, NULL, NULL);
    assert_non_null(r);
    assert_true(pool_result_ready(r)); /* no chunk, so nothing to wait for */
    get_array(r, 0);
    pool_result_free(r);

    r = pool_map(p, "square", items.data, items.size, 5);
    get_array(r, 0);
    pool_result_free(r);
    r = pool_starmap(p, "square", items.data, items.size, 0);
    get_array(r, 0);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&items);
}

static void starmap_add(void **state)
{
    (void)state;
    assert_status(pool_task_register("add", task_add, NULL), POOL_OK);
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_packer pk;
    msgpack_sbuffer_init(&items);
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int(&pk, i);
        msgpack_pack_int(&pk, 1000 * i);
    }
    const long sizes[] = { 0, 1, 3 };
    for (size_t k = 0; k < 3; k++) {
        pool_result *r = pool_starmap(p, "add", items.data, items.size, sizes[k]);
        const msgpack_object_array *arr = get_array(r, 20);
        for (uint32_t i = 0; i < 20; i++)
            assert_int_equal(obj_int(&arr->ptr[i]), 1001 * (int64_t)i);
        pool_result_free(r);
    }
    /* starmap_async too, with its callback. */
    pool_result *r = pool_starmap_async(p, "add", items.data, items.size, 4, NULL, NULL, NULL);
    assert_int_equal(obj_int(&get_array(r, 20)->ptr[19]), 19019);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&items);
}

/* ---- imap ---------------------------------------------------------------- */

static void imap_ordered(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 50);
    const long sizes[] = { 1, 3 };
    for (size_t k = 0; k < 2; k++) {
        pool_iter *it = pool_imap_array(p, "square", items.data, items.size, sizes[k], true);
        assert_non_null(it);
        for (size_t i = 0; i < 50; i++) {
            const msgpack_object *v = NULL;
            size_t idx = 999;
            assert_status(pool_iter_next(it, WAIT_S, &v, &idx), POOL_OK);
            assert_int_equal(idx, i);
            assert_int_equal(obj_int(v), (int64_t)(i * i));
        }
        assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
        /* The end is sticky, as a Python iterator's StopIteration. */
        assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
        pool_iter_free(it);
    }
    msgpack_sbuffer_destroy(&items);
}

static void imap_unordered(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 50);
    const long sizes[] = { 1, 3 };
    for (size_t k = 0; k < 2; k++) {
        pool_iter *it = pool_imap_array(p, "square", items.data, items.size, sizes[k], false);
        assert_non_null(it);
        int seen[50] = { 0 };
        for (size_t n = 0; n < 50; n++) {
            const msgpack_object *v = NULL;
            size_t idx = 999;
            assert_status(pool_iter_next(it, WAIT_S, &v, &idx), POOL_OK);
            assert_true(idx < 50);
            assert_int_equal(obj_int(v), (int64_t)(idx * idx)); /* index names its item */
            seen[idx]++;
        }
        for (size_t i = 0; i < 50; i++)
            assert_int_equal(seen[i], 1);
        assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
        pool_iter_free(it);
    }
    msgpack_sbuffer_destroy(&items);
}

/* A lazy input: counts how far it was pulled and from which thread. */
typedef struct gen {
    int next, n, fail_at;
    int calls;
    pthread_t owner;
    atomic_int foreign_calls;
} gen;

static int gen_next(void *ctx, msgpack_packer *pk, char *err, size_t errlen)
{
    gen *g = ctx;
    if (!pthread_equal(pthread_self(), g->owner))
        atomic_fetch_add(&g->foreign_calls, 1);
    if (g->next == g->fail_at) {
        snprintf(err, errlen, "gen broke at %d", g->next);
        return -1;
    }
    if (g->next >= g->n)
        return 0;
    g->calls++;
    msgpack_pack_int(pk, g->next++);
    return 1;
}

/* imap over a generator with a buffer (imap_window 2: the buffersize of the
 * calls without options) runs in flat memory: the input is pulled only as
 * far as the buffer needs, and only on the iterating thread. Without one it
 * is all pulled at the call, as CPython's (test_pool_imap.c). */
static void imap_generator(void **state)
{
    (void)state;
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.imap_window = 2;
    pool *p = make_pool_opt(&opt);
    gen g = { .n = 1000, .fail_at = -1, .owner = pthread_self() };
    pool_iter *it = pool_imap(p, "square", gen_next, &g, 1);
    assert_non_null(it);
    for (int i = 0; i < 1000; i++) {
        const msgpack_object *v = NULL;
        size_t idx;
        assert_status(pool_iter_next(it, WAIT_S, &v, &idx), POOL_OK);
        assert_int_equal(idx, (size_t)i);
        assert_int_equal(obj_int(v), (int64_t)i * i);
        /* Window 2 of one-item chunks: a few items ahead at most, not 1000. */
        if (g.calls > i + 1 + 8)
            fail_msg("after %d results the generator was pulled %d times", i + 1, g.calls);
    }
    assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
    assert_int_equal(g.calls, 1000);
    assert_int_equal(atomic_load(&g.foreign_calls), 0);
    pool_iter_free(it);

    /* imap_unordered over a generator, chunksize 4. */
    gen h = { .n = 30, .fail_at = -1, .owner = pthread_self() };
    it = pool_imap_unordered(p, "square", gen_next, &h, 4);
    int64_t sum = 0;
    for (int i = 0; i < 30; i++) {
        const msgpack_object *v = NULL;
        assert_status(pool_iter_next(it, WAIT_S, &v, NULL), POOL_OK);
        sum += obj_int(v);
    }
    assert_int_equal(sum, 29 * 30 * 59 / 6); /* sum of squares 0..29 */
    assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
    pool_iter_free(it);
}

/* An input of [i, 1000 * i] pairs, for the star form. */
static int pairs_next(void *ctx, msgpack_packer *pk, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    int *next = ctx;
    if (*next >= 25)
        return 0;
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, *next);
    msgpack_pack_int(pk, 1000 * *next);
    ++*next;
    return 1;
}

/* imap's star form calls task(*item), as starmap does. */
static void imap_star_add(void **state)
{
    (void)state;
    assert_status(pool_task_register("add", task_add, NULL), POOL_OK);
    pool *p = make_pool(2);
    for (int ordered = 0; ordered < 2; ordered++) {
        int next = 0;
        pool_iter *it = pool_imap_star(p, "add", pairs_next, &next, 3, ordered);
        assert_non_null(it);
        int seen[25] = { 0 };
        for (int n = 0; n < 25; n++) {
            const msgpack_object *v = NULL;
            size_t idx = 99;
            assert_status(pool_iter_next(it, WAIT_S, &v, &idx), POOL_OK);
            assert_true(idx < 25);
            if (ordered)
                assert_int_equal(idx, (size_t)n);
            assert_int_equal(obj_int(v), 1001 * (int64_t)idx);
            seen[idx]++;
        }
        for (int i = 0; i < 25; i++)
            assert_int_equal(seen[i], 1);
        assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
        pool_iter_free(it);
    }
}

/* CPython's test_imap_handle_iterable_exception: an error raised by the input
 * iterator surfaces from next() in its place, after the items before it,
 * which are not lost. The order is checked last, so that a misplaced error
 * does not hide whether the items and the message are right. */
static void imap_generator_error(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    gen g = { .n = 100, .fail_at = 5, .owner = pthread_self() };
    pool_iter *it = pool_imap(p, "square", gen_next, &g, 1);
    assert_non_null(it);
    int values = 0, errors = 0, error_at = -1;
    for (int n = 0; n < 20; n++) {
        const msgpack_object *v = NULL;
        int rc = pool_iter_next(it, WAIT_S, &v, NULL);
        if (rc == POOL_EEND)
            break;
        assert_int_not_equal(rc, POOL_ETIMEDOUT);
        if (rc == POOL_OK) {
            assert_int_equal(obj_int(v), values * values); /* in order, none lost */
            values++;
        } else {
            assert_contains(pool_iter_error(it), "gen broke at 5");
            if (errors++ == 0)
                error_at = values;
        }
    }
    pool_iter_free(it);
    assert_int_equal(values, 5);
    assert_int_equal(errors, 1);
    if (error_at != 5)
        fail_msg("the input's error came after %d of the 5 items before it", error_at);
}

/* ---- the executor side ---------------------------------------------------- */

/* A user's done callback that takes its time. */
static int slow_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)r, (void)udata, (void)err, (void)errlen;
    sleep_s(0.05);
    return 0;
}

/* as_completed yields a future once it is done (CPython's waiters see it
 * FINISHED), whatever other done callbacks the user added: each future gets
 * a slow one after as_completed's, so that a future yielded before it is
 * ready would be seen as not ready. */
static void executor_submit_as_completed(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_result *f[6];
    /* Future 0 sleeps a second while the other worker runs the rest: it
     * cannot be the first to complete. */
    pool_args_double(&a, slack(1.0));
    f[0] = pool_submit(p, "sleep", a.data, a.size);
    for (int i = 1; i < 6; i++) {
        pool_args_int(&a, i);
        f[i] = pool_submit(p, "square", a.data, a.size);
        assert_non_null(f[i]);
    }
    assert_non_null(f[0]);
    pool_iter *it = pool_as_completed(f, 6);
    assert_non_null(it);
    for (int i = 0; i < 6; i++)
        assert_status(pool_result_add_done_callback(f[i], slow_done, NULL), POOL_OK);
    int seen[6] = { 0 };
    for (int n = 0; n < 6; n++) {
        size_t idx = 99;
        static const msgpack_object sentinel;
        const msgpack_object *v = &sentinel; /* next() must set it to NULL */
        assert_status(pool_iter_next(it, WAIT_S, &v, &idx), POOL_OK);
        assert_null(v);
        assert_true(idx < 6);
        if (!pool_result_ready(f[idx]))
            fail_msg("as_completed yielded future %zu before it was ready", idx);
        if (n == 0)
            assert_int_not_equal(idx, 0);
        seen[idx]++;
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(seen[i], 1);
    assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
    pool_iter_free(it);
    for (int i = 1; i < 6; i++)
        assert_int_equal(obj_int(get_ok(f[i])), i * i);
    assert_true(is_nil(get_ok(f[0])));
    for (int i = 0; i < 6; i++)
        pool_result_free(f[i]);
    msgpack_sbuffer_destroy(&a);
}

static void executor_map(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, -10, 20);
    const long sizes[] = { 0, 4 };
    for (size_t k = 0; k < 2; k++) {
        pool_iter *it = pool_executor_map(p, "square", items.data, items.size, sizes[k]);
        assert_non_null(it);
        for (int i = 0; i < 20; i++) {
            const msgpack_object *v = NULL;
            size_t idx;
            assert_status(pool_iter_next(it, WAIT_S, &v, &idx), POOL_OK);
            assert_int_equal(idx, (size_t)i);
            assert_int_equal(obj_int(v), (int64_t)(i - 10) * (i - 10));
        }
        assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
        pool_iter_free(it);
    }
    msgpack_sbuffer_destroy(&items);
}

/* ---- timeouts ---------------------------------------------------------------- */

/* CPython's test_async_timeout: a timed-out get leaves the job running. */
static void async_timeout(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_double(&a, 1.0);
    double t0 = pool_now();
    pool_result *r = pool_apply_async(p, "sleep", a.data, a.size, NULL, NULL, NULL);
    assert_non_null(r);
    assert_status(pool_result_get(r, 0.05, NULL), POOL_ETIMEDOUT);
    /* It gave up while the job was still running, not after waiting it out. */
    assert_false(pool_result_ready(r));
    assert_status(pool_result_successful(r), POOL_ENOTREADY);
    assert_status(pool_result_wait(r, 0.01), POOL_ETIMEDOUT);
    assert_true(is_nil(get_ok(r)));
    assert_true(pool_now() - t0 >= 0.9); /* the job really slept */
    assert_int_equal(pool_result_successful(r), 1);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
}

/* ---- tasks and helpers ----------------------------------------------------- */

static void task_call_in_process(void **state)
{
    (void)state;
    static const int magic = 1234;
    assert_status(pool_task_register("slot", task_slot, NULL), POOL_OK);
    assert_status(pool_task_register("udata", task_udata, (void *)&magic), POOL_OK);
    assert_true(pool_task_exists("square"));
    assert_true(pool_task_exists("slot"));
    assert_false(pool_task_exists("no_such_task"));

    msgpack_sbuffer a, out;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&out);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);

    pool_args_int(&a, 9);
    assert_status(pool_task_call("square", a.data, a.size, &out), POOL_OK);
    assert_int_equal(msgpack_unpack_next(&u, out.data, out.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(obj_int(&u.data), 81);

    pool_args0(&a);
    msgpack_sbuffer_clear(&out);
    assert_status(pool_task_call("slot", a.data, a.size, &out), POOL_OK);
    assert_int_equal(msgpack_unpack_next(&u, out.data, out.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(obj_int(&u.data), -1); /* -1: not on a worker */

    msgpack_sbuffer_clear(&out);
    assert_status(pool_task_call("getpid", a.data, a.size, &out), POOL_OK);
    assert_int_equal(msgpack_unpack_next(&u, out.data, out.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(obj_int(&u.data), getpid()); /* really in this process */

    pool_args_str(&a, "in-process failure");
    msgpack_sbuffer_clear(&out);
    assert_status(pool_task_call("fail", a.data, a.size, &out), POOL_ETASK);
    assert_contains(pool_last_error(), "in-process failure");
    assert_int_not_equal(pool_task_call("no_such_task", a.data, a.size, &out), POOL_OK);

    /* In a pool, the same tasks see a worker slot and their udata. */
    pool *p = make_pool(2);
    pack_range(&a, 0, 20);
    pool_result *r = pool_map(p, "slot", a.data, a.size, 1); /* slot(item) ignores item */
    const msgpack_object_array *slots = get_array(r, 20);
    for (uint32_t i = 0; i < 20; i++) {
        int64_t slot = obj_int(&slots->ptr[i]);
        assert_true(slot >= 0 && slot < 2);
    }
    pool_result_free(r);
    pool_args0(&a);
    r = pool_apply(p, "udata", a.data, a.size);
    assert_int_equal(obj_int(get_ok(r)), magic);
    pool_result_free(r);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&out);
}

/* CPython: chunksize, extra = divmod(n, 4 * workers); if extra: chunksize += 1. */
static void default_chunksize(void **state)
{
    (void)state;
    assert_int_equal(pool_default_chunksize(0, 4), 0);
    assert_int_equal(pool_default_chunksize(16, 2), 2);
    assert_int_equal(pool_default_chunksize(20000, 6), 834);
    assert_int_equal(pool_default_chunksize(1, 4), 1);
    assert_int_equal(pool_default_chunksize(8, 2), 1);
    assert_int_equal(pool_default_chunksize(9, 2), 2);
    assert_string_equal(pool_status_name(POOL_ETIMEDOUT), "POOL_ETIMEDOUT");
    assert_string_equal(pool_status_name(POOL_OK), "POOL_OK");
    assert_string_equal(pool_status_name(POOL_EBROKEN), "POOL_EBROKEN");
}

/* pool_task_index remembers the last name it found (pool_registry.c): by
 * content, so a buffer that holds another name next time, a name that is a
 * prefix of the remembered one, or one not registered, each reads right. */
static void task_index_by_name_not_by_pointer(void **state)
{
    (void)state;
    assert_status(pool_task_register("sq", task_add, NULL), POOL_OK);
    char name[16];
    strcpy(name, "square");
    int square = pool_task_index(name);
    assert_true(square >= 0);
    assert_int_equal(pool_task_index(name), square); /* remembered */
    strcpy(name, "sq"); /* same buffer, another name, a prefix of the last */
    int sq = pool_task_index(name);
    assert_true(sq >= 0 && sq != square);
    assert_string_equal(pool_task_name((unsigned)sq), "sq");
    strcpy(name, "squarex");
    assert_int_equal(pool_task_index(name), -1);
    assert_int_equal(pool_task_index(NULL), -1);
    assert_int_equal(pool_task_index("square"), square);
}

/* apply_async checks the pool's state under the lock that submits it, not
 * before (one lock round fewer per task): still a closed pool is the error
 * reported, before an unknown task or bad arguments, and a pool that runs
 * reports those. */
static void apply_async_errors_in_order(void **state)
{
    (void)state;
    pool *p = make_pool(1);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 3);
    static const char not_array[] = {5};
    assert_null(pool_apply_async(p, "no_such_task", a.data, a.size, NULL, NULL, NULL));
    assert_status(pool_last_status(), POOL_EINVAL);
    assert_non_null(strstr(pool_last_error(), "unknown task 'no_such_task'"));
    assert_null(pool_apply_async(p, "square", not_array, 1, NULL, NULL, NULL));
    assert_status(pool_last_status(), POOL_EINVAL);
    assert_non_null(strstr(pool_last_error(), "arguments"));
    assert_status(pool_close(p), POOL_OK);
    const char *tasks[] = {"square", "no_such_task", "square"};
    for (int k = 0; k < 3; k++) {
        const char *args = k < 2 ? a.data : not_array;
        size_t len = k < 2 ? a.size : 1;
        assert_null(pool_apply_async(p, tasks[k], args, len, NULL, NULL, NULL));
        assert_status(pool_last_status(), POOL_ESTATE);
        assert_string_equal(pool_last_error(), "the pool is closed: it accepts no new work");
    }
    assert_status(pool_join(p), POOL_OK);
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.jobs_submitted, 0); /* no refused job counted */
    msgpack_sbuffer_destroy(&a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(apply_square),
        CASE(apply_async_get),
        CASE(map_chunksizes),
        CASE(map_empty),
        CASE(starmap_add),
        CASE(imap_ordered),
        CASE(imap_unordered),
        CASE(imap_generator),
        CASE(imap_star_add),
        CASE(imap_generator_error),
        CASE(executor_submit_as_completed),
        CASE(executor_map),
        CASE(async_timeout),
        CASE(task_call_in_process),
        CASE(default_chunksize),
        CASE(task_index_by_name_not_by_pointer),
        CASE(apply_async_errors_in_order),
    };
    return test_main(argc, argv, "test_pool_api", tests, sizeof tests / sizeof tests[0]);
}
